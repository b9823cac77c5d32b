//! `bench_pager`: the external-pager benchmarks (`cargo image bench pager --icount`).
//!
//! Each benchmark forks: the parent is the pager of one memory object (it serves
//! `libipc::pager::memory_object` and answers every `data_request` at once with
//! `Supply::Data`: pages it allocates and fills), the child maps the object, touches it and
//! prints the figures.
//!
//! - `bench pager.fault_round_trip <median> instructions`: one read of an absent page of the
//!   object, from the user-mode fault to the read completing, timed with `rdtsc` around the
//!   read (guest instructions under `-icount`); the median of many samples after a warm-up,
//!   each on a fresh page. The object has one-page clusters and the region the `random`
//!   strategy, so each fault is exactly one `data_request` of one page (checked). The figure
//!   includes the kernel's fault path, the request message, the pager's receive, its
//!   allocation of the page (a `vm_allocate` and the zero-fill fault of its first write) and
//!   its fill, the reply with the page moved out of line, the install of the page in the
//!   object and the child's map, the pager's next receive (on the one CPU the woken child
//!   runs once the pager blocks), and the child's resume at the faulting instruction.
//! - `bench pager.<scan>_pages_per_request <x.yy> pages` and
//!   `bench pager.<scan>_prefetch_used_ratio <x.yy> ratio`: a scan reads pages of a
//!   1024-page object with the default clusters (4 pages), each once; the figures are the pages
//!   asked for per `data_request`, and the share of the pages asked for ahead of a fault that
//!   were later faulted on, from the kernel's `vm_statistics` counters before and after the
//!   scan. `sequential` reads every page in order under the `sequential` strategy; `random`
//!   reads half the pages, the first half of a shuffled order (Fisher-Yates driven by
//!   SplitMix64 from a fixed seed, so the same pages in the same order every run), under the
//!   `normal` strategy (one page ahead). Half, because a scan that reads every page uses
//!   every page read ahead, whatever the order: its ratio would be 1 by construction. They
//!   are counts, not times: the same on every run.
//!
//! - `bench pager.zpager_fault_round_trip <median> instructions`: as `fault_round_trip`,
//!   on an object zpager serves and never held pages of (made with its `create`, mapped
//!   with `vm_map`): each fault a `data_request` answered unavailable (the kernel fills the
//!   page with zeros). With the kernel's `collocate=zpager`, zpager runs collocated in the
//!   kernel.
//! - `bench pager.pages_per_return <x.yy> pages`: with `zpager` as the default pager, one
//!   word is written to each page of anonymous memory 4,096 pages larger than the free
//!   memory; the figure is the pages per `data_return` the pageout daemon sent (clusters of
//!   4 built around each victim from dirty, not recently used neighbours).
//!
//! Remarks and failures go out as lines starting `bench_pager:`; the program exits with the
//! number of benchmarks that failed.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(any(test, target_os = "none"))]
extern crate alloc;

#[cfg(any(test, target_os = "none"))]
mod order;
#[cfg(target_os = "none")]
mod pager;
#[cfg(any(test, target_os = "none"))]
mod ratio;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod run {
    use alloc::format;
    use libipc::abi::syscall::*;
    use libipc::bench::measure::{remark, time_iterations, Failure};
    use libipc::pager::DEFAULT_CLUSTER_PAGES;
    use libipc::sys;

    use crate::order;
    use crate::pager::{holds_pattern, read, with_pager, PAGE};
    use crate::ratio::Hundredths;

    /// Untimed faults before the timed ones.
    const FAULT_WARM_UP: usize = 50;
    /// Timed faults, one page each.
    const FAULT_SAMPLES: usize = 1000;
    /// Pages of the object a scan reads.
    const SCAN_PAGES: u64 = 1024;
    /// Pages the random scan reads: half, so that some pages read ahead are never used.
    const RANDOM_SCAN_READS: usize = SCAN_PAGES as usize / 2;

    /// One benchmark: prints its figures, or says why it could not.
    type Benchmark = fn() -> Result<(), Failure>;

    fn statistics() -> Result<VmStatistics, Failure> {
        sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))
    }

    /// The child's exit status for `result`, saying why it failed.
    fn status(name: &str, result: Result<(), Failure>) -> i32 {
        match result {
            Ok(()) => 0,
            Err(why) => {
                libipc::println!("bench_pager: {name}: {why}");
                1
            }
        }
    }

    fn fault_round_trip() -> Result<(), Failure> {
        let pages = (FAULT_WARM_UP + FAULT_SAMPLES) as u64;
        with_pager(1, pages, |base| {
            status("fault_round_trip", time_faults(base, pages))
        })
    }

    /// In the child: faults on each page of the `pages`-page mapping at `base` in turn.
    fn time_faults(base: u64, pages: u64) -> Result<(), Failure> {
        sys::vm_behavior_set(base, pages * PAGE, VM_BEHAVIOR_RANDOM)
            .map_err(|e| format!("vm_behavior_set: {e}"))?;
        let before = statistics()?;
        let mut next = 0;
        let summary = time_iterations(FAULT_WARM_UP, FAULT_SAMPLES, || {
            read(base + next * PAGE);
            next += 1;
            Ok(())
        })?;
        let after = statistics()?;
        if let Some(page) = (0..pages).find(|&page| !holds_pattern(base, page)) {
            return Err(format!("page {page} does not hold what the pager wrote"));
        }
        let requests = after.requests() - before.requests();
        let single = after.requests_by_pages[1] - before.requests_by_pages[1];
        if requests != pages || single != pages {
            return Err(format!(
                "{requests} data_requests ({single} of one page) for {pages} faults"
            ));
        }
        remark("bench_pager", "fault_round_trip", FAULT_SAMPLES, &summary);
        libipc::println!(
            "bench pager.fault_round_trip {} instructions",
            summary.median
        );
        Ok(())
    }

    fn sequential_scan() -> Result<(), Failure> {
        with_pager(DEFAULT_CLUSTER_PAGES, SCAN_PAGES, |base| {
            let result = scan("sequential", base, VM_BEHAVIOR_SEQUENTIAL, 0..SCAN_PAGES);
            status("sequential_scan", result)
        })
    }

    fn random_scan() -> Result<(), Failure> {
        with_pager(DEFAULT_CLUSTER_PAGES, SCAN_PAGES, |base| {
            let mut pages = order::shuffled(SCAN_PAGES, order::SEED);
            pages.truncate(RANDOM_SCAN_READS);
            let result = scan("random", base, VM_BEHAVIOR_NORMAL, pages);
            status("random_scan", result)
        })
    }

    /// In the child: reads the pages of the mapping at `base` in `pages` order under
    /// `strategy` and prints the read-ahead figures of scan `name`.
    fn scan(
        name: &str,
        base: u64,
        strategy: u64,
        pages: impl IntoIterator<Item = u64>,
    ) -> Result<(), Failure> {
        sys::vm_behavior_set(base, SCAN_PAGES * PAGE, strategy)
            .map_err(|e| format!("vm_behavior_set: {e}"))?;
        let before = statistics()?;
        for page in pages {
            if !holds_pattern(base, page) {
                return Err(format!("page {page} does not hold what the pager wrote"));
            }
        }
        let after = statistics()?;
        let requests = after.requests() - before.requests();
        let requested = after.requested_pages() - before.requested_pages();
        let prefetched = after.prefetched - before.prefetched;
        let used = after.prefetch_used - before.prefetch_used;
        libipc::println!(
            "bench_pager: {name} scan: {requested} pages in {requests} data_requests, \
             {used} of {prefetched} prefetched pages used"
        );
        let per_request =
            Hundredths::of_ratio(requested, requests).ok_or("no data_request was sent")?;
        let used_ratio =
            Hundredths::of_ratio(used, prefetched).ok_or("no page was asked for ahead")?;
        libipc::println!("bench pager.{name}_pages_per_request {per_request} pages");
        libipc::println!("bench pager.{name}_prefetch_used_ratio {used_ratio} ratio");
        Ok(())
    }

    /// Pages written beyond the free memory in `pageout`: they leave through the default
    /// pager.
    const PAGEOUT_EXCESS: u64 = 4096;

    /// Writes one word to every page of anonymous memory the size of the free memory and
    /// `PAGEOUT_EXCESS` pages more, with zpager as the default pager: the pageout daemon
    /// returns dirty pages in clusters built around its victims. Needs the host port
    /// (`host`), so it runs when `bench_pager` is the first task; it goes last, as zpager
    /// stays the default pager.
    fn pageout(host: u32) -> Result<(), Failure> {
        use libipc::pager::DEFAULT_PAGER_NAME;
        let (zpager, port) = libipc::names::spawn_registered("zpager", DEFAULT_PAGER_NAME, 5000)
            .map_err(|e| format!("starting zpager: {e}"))?;
        sys::host_set_default_pager(host, port.name())
            .map_err(|e| format!("host_set_default_pager: {e}"))?;
        zpager_fault_round_trip(port)?;
        let before = statistics()?;
        let pages = before.free_frames + PAGEOUT_EXCESS;
        let base = sys::vm_allocate(0, pages * PAGE, VM_ANYWHERE)
            .map_err(|e| format!("allocate {pages} pages: {e}"))?;
        for page in 0..pages {
            // SAFETY: inside the region just allocated read-write.
            unsafe { core::ptr::write_volatile((base + page * PAGE) as *mut u64, page) };
        }
        let after = statistics()?;
        let wrong = (0..pages)
            .filter(|&page| read(base + page * PAGE) != page)
            .count();
        // SAFETY: nothing lives in the region any more.
        unsafe { sys::vm_deallocate(base, pages * PAGE) }
            .map_err(|e| format!("deallocate: {e}"))?;
        let returns = after.returns() - before.returns();
        let returned = after.returned_pages() - before.returned_pages();
        libipc::println!(
            "bench_pager: pageout: {pages} pages written, {returned} pages out in {returns} data_returns, {} clean pages freed",
            after.reclaimed - before.reclaimed
        );
        if wrong > 0 {
            return Err(format!("{wrong} pages read back wrong"));
        }
        let per_return = Hundredths::of_ratio(returned, returns).ok_or("nothing was paged out")?;
        libipc::println!("bench pager.pages_per_return {per_return} pages");
        // zpager stays: it may hold pages of this task's own (its heap, paged out under the
        // same pressure); the kernel ends it when this first task exits.
        drop(zpager);
        Ok(())
    }

    /// Faults on pages of an object zpager serves (made with its `create`, mapped with
    /// `vm_map`) that it never held, one page a request: each is a `data_request` to zpager
    /// and its answer (unavailable: the kernel fills the page with zeros). With the kernel's
    /// `collocate=zpager`, zpager answers collocated in the kernel.
    fn zpager_fault_round_trip(zpager: libipc::interface::SendRight) -> Result<(), Failure> {
        use libipc::interface::ReceiveRight;
        use libipc::pager::default_pager;
        let pages = (FAULT_WARM_UP + FAULT_SAMPLES) as u64;
        fn failed<E: core::fmt::Debug>(what: &'static str) -> impl Fn(E) -> Failure {
            move |e| format!("{what}: {e:?}")
        }
        let object = ReceiveRight::allocate().map_err(failed("port"))?;
        let send = object.make_send().map_err(failed("send right"))?;
        let control = ReceiveRight::allocate().map_err(failed("control port"))?;
        let control_send = control.make_send().map_err(failed("send right"))?;
        default_pager::Client::new(zpager)
            .create(object, &control_send, pages * PAGE)
            .map_err(failed("create"))?;
        let base = sys::vm_map(
            0,
            pages * PAGE,
            VM_ANYWHERE,
            send.name(),
            0,
            VM_PROT_READ | VM_PROT_WRITE,
        )
        .map_err(failed("vm_map"))?;
        sys::vm_behavior_set(base, pages * PAGE, VM_BEHAVIOR_RANDOM)
            .map_err(failed("vm_behavior_set"))?;
        let before = statistics()?;
        let mut next = 0;
        let summary = time_iterations(FAULT_WARM_UP, FAULT_SAMPLES, || {
            read(base + next * PAGE);
            next += 1;
            Ok(())
        })?;
        let after = statistics()?;
        let zeros = (0..pages).all(|page| read(base + page * PAGE) == 0);
        // SAFETY: nothing lives in the region.
        unsafe { sys::vm_deallocate(base, pages * PAGE) }.map_err(failed("deallocate"))?;
        let requests = after.requests() - before.requests();
        if requests != pages || !zeros {
            return Err(format!(
                "{requests} data_requests for {pages} faults; all zeros: {zeros}"
            ));
        }
        remark(
            "bench_pager",
            "zpager_fault_round_trip",
            FAULT_SAMPLES,
            &summary,
        );
        libipc::println!(
            "bench pager.zpager_fault_round_trip {} instructions",
            summary.median
        );
        drop(control);
        Ok(())
    }

    pub fn benchmarks(host: u32) -> i32 {
        let all: [(&str, Benchmark); 3] = [
            ("fault_round_trip", fault_round_trip),
            ("sequential_scan", sequential_scan),
            ("random_scan", random_scan),
        ];
        let mut failed = 0;
        for (name, benchmark) in all {
            if let Err(why) = benchmark() {
                libipc::println!("bench_pager: {name} failed: {why}");
                failed += 1;
            }
        }
        if let Err(why) = pageout(host) {
            libipc::println!("bench_pager: pageout failed: {why}");
            failed += 1;
        }
        libipc::println!("bench_pager: all benchmarks done");
        failed
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    run::benchmarks(args.arg0 as u32)
}

#[cfg(not(target_os = "none"))]
fn main() {}

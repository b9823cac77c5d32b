//! `sheeptest`: the heavy-load workload of seed 004 §4. Run as the first task
//! (`init=sheeptest args=P,S,R`, defaults 4, 4M, 1), it makes a default pager the kernel's
//! (the disk pager `default_pager` with a disk, else zpager); started from the shell
//! (`sheeptest P S R`) it uses the system's. It forks P workers that each fill
//! S bytes of fresh memory with verifiable words, wait until all have (so the P x S bytes are
//! live at once, not one worker's after another's), and scan them R times forward and
//! backward, verifying every word; then it reports the elapsed time and the paging the run caused
//! (`sheeptest: ...` lines, and `bench sheeptest.<metric> <value> <unit>` figures). Exit
//! status: 0 if every worker verified everything, 1 if not, 2 for bad arguments.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

/// The exit status for arguments that are refused.
#[cfg(target_os = "none")]
const BAD_ARGUMENTS: i32 = 2;

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::println;
    use libipc::rt::selftest::{disk_present, with_disk_pager, with_pager};
    let mut buffer = [0u8; 256];
    let params = match sheeptest::parse(libipc::rt::first_task_args(&mut buffer)) {
        Ok(params) => params,
        Err(why) => {
            println!(
                "sheeptest: bad arguments: {why}; expected args=P,S,R (processes 1 to {}, \
                 bytes each with a K, M or G suffix up to 1G, rounds 1 to {}; defaults {},{}M,{})",
                sheeptest::MAX_PROCESSES,
                sheeptest::MAX_ROUNDS,
                sheeptest::DEFAULT_PROCESSES,
                sheeptest::DEFAULT_BYTES >> 20,
                sheeptest::DEFAULT_ROUNDS,
            );
            return BAD_ARGUMENTS;
        }
    };
    let host = args.arg0 as u32;
    if libipc::sys::host_info(libipc::abi::syscall::HOST_DEFAULT_PAGER) == Ok(1) {
        // Started from the shell: the system's default pager serves.
        return workload::run(params, "the system's default pager");
    }
    if disk_present(host) {
        with_disk_pager(host, || workload::run(params, "default_pager (disk)"))
    } else {
        with_pager(
            host,
            "zpager",
            libipc::pager::DEFAULT_PAGER_NAME,
            libipc::sys::host_set_default_pager,
            || workload::run(params, "zpager (no disk)"),
        )
    }
}

#[cfg(target_os = "none")]
mod workload {
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicU32, Ordering};
    use libipc::abi::swapper::{name_str, why_name, SwapperInfo};
    use libipc::abi::syscall::{VmStatistics, HOST_TICKS, VM_ANYWHERE, VM_INHERIT_SHARE};
    use libipc::println;
    use libipc::sys;
    use sheeptest::{check, fill, Direction, Params, WORDS_PER_PAGE};

    /// Host ticks per second.
    const TICKS_PER_SECOND: u64 = 100;

    /// Ticks a worker waits at the barrier without anyone arriving before it goes on.
    const BARRIER_PATIENCE: u64 = 60 * TICKS_PER_SECOND;

    /// A worker's exit status when it found a wrong word.
    const WRONG_WORD: i32 = 1;
    /// A worker's exit status when it could not allocate its memory.
    const NO_MEMORY: i32 = 3;

    /// The time-stamp counter: under QEMU's `-icount shift=0` it counts guest instructions.
    fn timestamp() -> u64 {
        // SAFETY: `rdtsc` only reads the counter; user mode may run it (the kernel leaves
        // CR4.TSD clear, else this faults and the task is ended).
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// The kernel's count of idle cycles.
    fn idle() -> u64 {
        sys::host_info(libipc::abi::syscall::HOST_IDLE_CYCLES).unwrap_or(0)
    }

    fn ticks() -> u64 {
        sys::host_info(HOST_TICKS).unwrap_or(0)
    }

    fn statistics() -> VmStatistics {
        sys::vm_statistics().unwrap_or_default()
    }

    /// Where the workers meet after their fill: a page shared with them (inherited shared).
    /// Without it each worker, quick under QEMU, could fill, scan and exit within its time
    /// slices before the next starts, and the memory would never be under pressure.
    #[derive(Clone, Copy)]
    struct Barrier {
        /// Workers done with their fill (or failed before it).
        arrived: &'static AtomicU32,
        /// Set by the parent when it could not fork every worker: nobody waits any more.
        abandoned: &'static AtomicU32,
    }

    impl Barrier {
        fn new() -> Result<Barrier, libipc::abi::KernReturn> {
            let page = sys::vm_allocate(0, sheeptest::PAGE, VM_ANYWHERE)?;
            sys::vm_inherit(page, sheeptest::PAGE, VM_INHERIT_SHARE)?;
            // The page is never deallocated, and parent and workers (sharing it) touch it only
            // through these two atomics.
            // SAFETY: the page was just allocated read-write and zero-filled: a valid atomic.
            let arrived = unsafe { &*(page as *const AtomicU32) };
            // SAFETY: as above, the page's second word.
            let abandoned = unsafe { &*((page + 4) as *const AtomicU32) };
            Ok(Barrier { arrived, abandoned })
        }

        /// Counts this worker in and waits for the `workers` others, or until the parent
        /// gives up (a worker failed) or nobody has arrived for [`BARRIER_PATIENCE`] ticks
        /// (a worker the kernel ended never arrives, and the parent may be waiting for
        /// this one).
        fn arrive_and_wait(self, worker: u32, workers: u32) {
            let mut seen = self.arrived.fetch_add(1, Ordering::AcqRel) + 1;
            let mut since = ticks();
            while seen < workers && self.abandoned.load(Ordering::Acquire) == 0 {
                libipc::rt::sleep_ms(5);
                let arrived = self.arrived.load(Ordering::Acquire);
                if arrived != seen {
                    (seen, since) = (arrived, ticks());
                } else if ticks() - since > BARRIER_PATIENCE {
                    println!(
                        "sheeptest: worker {worker}: {seen} of {workers} workers at the \
                         barrier and none for 60 s; going on"
                    );
                    return;
                }
            }
        }
    }

    /// Forks the workers, waits for them and reports; the exit status.
    pub fn run(params: Params, pager: &str) -> i32 {
        let before = statistics();
        let swapper_before = sys::swapper_info().unwrap_or_default();
        println!(
            "sheeptest: {} processes x {} KiB ({} pages each, {} KiB in all), {} round(s) \
             forward and backward after all have filled theirs; pager {pager}; {} free pages at \
             start",
            params.processes(),
            params.bytes() >> 10,
            params.pages(),
            (params.bytes() * u64::from(params.processes())) >> 10,
            params.rounds(),
            before.free_frames,
        );
        let barrier = match Barrier::new() {
            Ok(barrier) => barrier,
            Err(e) => {
                println!("sheeptest: the workers' shared page: {e}");
                return 1;
            }
        };
        let (ticks_before, tsc_before, idle_before) = (ticks(), timestamp(), idle());
        let mut workers = Vec::new();
        let mut failed = false;
        for worker in 0..params.processes() {
            match sys::task_fork() {
                Ok(sys::Forked::Child) => sys::task_exit(work(worker, params, barrier)),
                Ok(sys::Forked::Parent(task)) => workers.push((worker, task)),
                Err(e) => {
                    println!("sheeptest: fork of worker {worker}: {e}");
                    barrier.abandoned.store(1, Ordering::Release);
                    failed = true;
                    break;
                }
            }
        }
        for &(worker, task) in &workers {
            match sys::task_wait(task) {
                Ok(0) => {}
                Ok(status) => {
                    println!(
                        "sheeptest: worker {worker} exited with status {}",
                        status as i64
                    );
                    failed = true;
                }
                Err(e) => {
                    println!("sheeptest: waiting for worker {worker}: {e}");
                    failed = true;
                }
            }
            if failed {
                // The others need not wait for it at the barrier.
                barrier.abandoned.store(1, Ordering::Release);
            }
            let _ = sys::port_deallocate(task);
        }
        let (ticks_after, tsc_after, idle_after) = (ticks(), timestamp(), idle());
        let after = statistics();
        report(
            &before,
            &after,
            ticks_after - ticks_before,
            (tsc_after - tsc_before, idle_after - idle_before),
            &params.label(),
        );
        report_swapper(&swapper_before, ticks_before, &params.label());
        if failed {
            println!("sheeptest: FAILED");
            1
        } else {
            println!(
                "sheeptest: passed: {} workers verified every byte",
                workers.len()
            );
            0
        }
    }

    /// One worker (a forked child): fills its memory, waits at `barrier` for the others, and
    /// scans it; its exit status.
    fn work(worker: u32, params: Params, barrier: Barrier) -> i32 {
        let words = params.pages() as usize * WORDS_PER_PAGE;
        let base = match sys::vm_allocate(0, params.bytes(), VM_ANYWHERE) {
            Ok(base) => base,
            Err(e) => {
                println!(
                    "sheeptest: worker {worker}: allocating {} bytes: {e}",
                    params.bytes()
                );
                barrier.arrive_and_wait(worker, params.processes());
                return NO_MEMORY;
            }
        };
        // SAFETY: the region was just allocated read-write (zero-filled, so initialized),
        // whole pages of it, and only this slice refers to it until the task exits.
        let memory = unsafe { core::slice::from_raw_parts_mut(base as *mut u64, words) };
        fill(memory, worker);
        barrier.arrive_and_wait(worker, params.processes());
        for round in 0..params.rounds() {
            for direction in [Direction::Forward, Direction::Backward] {
                if let Some(wrong) = check(memory, worker, direction) {
                    println!(
                        "sheeptest: worker {worker}: WRONG WORD in round {round} {direction}: \
                         page {} offset {:#x}: expected {:#018x}, found {:#018x}",
                        wrong.page, wrong.offset, wrong.expected, wrong.found
                    );
                    return WRONG_WORD;
                }
            }
        }
        0
    }

    /// The report lines of a run that took `ticks` host ticks and `cycles` TSC cycles, from
    /// the kernel's counters before and after.
    /// The run's figures; `label` names the run in the `bench` lines (`sheeptest.<metric>.
    /// <label>`), so a suite of several runs keeps them apart.
    /// `(cycles, idle)`: the time-stamp counter's advance over the run and how much of it
    /// the CPU spent idle; under `-icount` the difference is the guest instructions executed
    /// (the counter jumps ahead while the CPU waits for the disk).
    fn report(
        before: &VmStatistics,
        after: &VmStatistics,
        ticks: u64,
        (cycles, idle): (u64, u64),
        label: &str,
    ) {
        let delta = |f: fn(&VmStatistics) -> u64| f(after).wrapping_sub(f(before));
        let elapsed = Seconds(ticks);
        let busy = cycles.saturating_sub(idle);
        println!(
            "sheeptest: elapsed {elapsed} s ({ticks} ticks), {cycles} TSC cycles of which {idle} \
             idle: {busy} executed (guest instructions under -icount)"
        );
        println!(
            "sheeptest: faults {} (zero fills {}, copies on write {})",
            delta(|s| s.faults),
            delta(|s| s.zero_fills),
            delta(|s| s.copies_on_write),
        );
        println!(
            "sheeptest: pageins {} pages in {} requests",
            delta(|s| s.pageins),
            delta(|s| s.requests_by_pages.iter().sum()),
        );
        println!(
            "sheeptest: pageouts {} pages in {} returns ({} refused), {} clean pages reclaimed",
            delta(VmStatistics::returned_pages),
            delta(VmStatistics::returns),
            delta(|s| s.returns_refused),
            delta(|s| s.reclaimed),
        );
        let disk_ops = delta(|s| s.device_reads) + delta(|s| s.device_writes);
        println!(
            "sheeptest: device operations {disk_ops}: {} reads of {} pages, {} writes of {} \
             pages, {} errors",
            delta(|s| s.device_reads),
            delta(|s| s.device_pages_read),
            delta(|s| s.device_writes),
            delta(|s| s.device_pages_written),
            delta(|s| s.device_errors),
        );
        let lengths = |f: fn(&VmStatistics) -> &[u64; 17]| -> [u64; 16] {
            core::array::from_fn(|n| f(after)[n + 1].wrapping_sub(f(before)[n + 1]))
        };
        println!(
            "sheeptest: requests by length in pages (1..16): {:?}; returns: {:?}",
            lengths(|s| &s.requests_by_pages),
            lengths(|s| &s.returns_by_pages),
        );
        println!(
            "sheeptest: prefetch hits {} of {} prefetched pages",
            delta(|s| s.prefetch_used),
            delta(|s| s.prefetched),
        );
        println!(
            "sheeptest: pager timeouts {}, memory errors {}",
            delta(|s| s.pager_timeouts),
            delta(|s| s.memory_errors),
        );
        // The memory the workload had: what Linux's run of the same point is given.
        println!(
            "bench sheeptest.free_kib.{label} {} KiB",
            before.free_frames * (sheeptest::PAGE >> 10)
        );
        println!("bench sheeptest.instructions.{label} {busy} instructions");
        println!("bench sheeptest.disk_ops.{label} {disk_ops} operations");
        println!("bench sheeptest.elapsed_s.{label} {elapsed} s");
    }

    /// What the task swapper did during the run (since tick `since`): its counts, each
    /// decision traced, and the swap-outs as a figure.
    fn report_swapper(before: &SwapperInfo, since: u64, label: &str) {
        let Ok(after) = sys::swapper_info() else {
            println!("sheeptest: swapper events: unknown (no swapper_info)");
            return;
        };
        let outs = after.swap_outs - before.swap_outs;
        println!(
            "sheeptest: swapper events: {outs} out, {} in ({} as paging fell, {} with room in \
             memory, {} by a message, {} after the longest wait); swapper {}, paging {}/s (5 s) \
             {}/s (30 s), device busy {}% (5 s) {}% (30 s), capacity {}/s, start above {}/s, \
             stop below {}/s",
            after.swap_ins - before.swap_ins,
            after.ins_rate_fell - before.ins_rate_fell,
            after.ins_room - before.ins_room,
            after.ins_message - before.ins_message,
            after.ins_starved - before.ins_starved,
            if after.enabled == 1 { "on" } else { "off" },
            after.short_rate,
            after.long_rate,
            after.busy_short,
            after.busy_long,
            after.capacity,
            after.start,
            after.stop,
        );
        for e in after.events().iter().filter(|e| e.tick >= since) {
            println!(
                "sheeptest: swapper: {}.{:02} s {} task {} ({}, {} pages): {}; paging {}/s \
                 (5 s) {}/s (30 s), threshold {}/s",
                (e.tick - since) / TICKS_PER_SECOND,
                (e.tick - since) % TICKS_PER_SECOND,
                if e.out == 1 { "out" } else { "in" },
                e.task,
                name_str(&e.name),
                e.pages,
                why_name(e.why),
                e.short_rate,
                e.long_rate,
                e.threshold,
            );
        }
        println!("bench sheeptest.swap_outs.{label} {outs} tasks");
    }

    /// Host ticks shown as seconds with two decimals.
    struct Seconds(u64);

    impl core::fmt::Display for Seconds {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let hundredths = self.0 * 100 / TICKS_PER_SECOND;
            write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}

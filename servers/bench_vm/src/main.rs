//! `bench_vm`: the virtual-memory benchmarks (`cargo image bench vm --icount`).
//!
//! Prints `bench vm.<metric> <median> instructions` for fork-exit-wait, fork-exec-wait, a
//! zero-fill fault and a copy-on-write fault, each the median of many warm iterations timed
//! on their own with `rdtsc` (guest instructions under QEMU's `-icount`). Spawned or exec'd
//! with a role in its second start argument it is the other side of a figure.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod run {
    use libipc::abi::syscall::*;
    use libipc::bench::measure::{remark, time_iterations, Failure};
    use libipc::bench::workloads::{self, wait_child};
    use libipc::ipc::{self, MessageBuffer, ReceiveRight};
    use libipc::sys::{self, Forked};

    /// Role: exit at once (the program a fork-exec child runs).
    pub const EXIT: u64 = 1;
    const PAGE: u64 = 4096;

    fn figure(metric: &str, samples: usize, summary: &libipc::bench::stats::Summary) {
        remark("bench_vm", metric, samples, summary);
        libipc::println!("bench vm.{metric} {} instructions", summary.median);
    }

    fn fork_exit_wait_samples() -> Result<libipc::bench::stats::Summary, Failure> {
        workloads::fork_exit_wait(20, 200)
    }

    /// Runs `f` with 2 KiB more of stack below the caller's.
    #[inline(never)]
    fn deeper<R>(f: impl FnOnce() -> R) -> R {
        let pad = [0u8; 2048];
        core::hint::black_box(&pad);
        let result = f();
        core::hint::black_box(&pad);
        result
    }

    /// The summary of `measure` taken twice, at stack depths 2 KiB apart, the one with the
    /// lower median: where the frames around a `fork` call straddle a page boundary, parent
    /// and child each write two stack pages after the fork and the child copies one page
    /// more (about 6,000 instructions), which says where the program's stack happens to lie,
    /// not what a fork costs. Both medians are remarked.
    fn at_best_stack_depth(
        metric: &str,
        measure: fn() -> Result<libipc::bench::stats::Summary, Failure>,
    ) -> Result<libipc::bench::stats::Summary, Failure> {
        let here = measure()?;
        let deeper = deeper(measure)?;
        libipc::println!(
            "bench_vm: {metric}: medians {} and {} at stack depths 2 KiB apart",
            here.median,
            deeper.median
        );
        Ok(if deeper.median < here.median {
            deeper
        } else {
            here
        })
    }

    fn fork_exit_wait() -> Result<(), Failure> {
        let summary = at_best_stack_depth("fork_exit_wait", fork_exit_wait_samples)?;
        figure("fork_exit_wait", 200, &summary);
        Ok(())
    }

    fn fork_exec_wait() -> Result<(), Failure> {
        let summary = at_best_stack_depth("fork_exec_wait", fork_exec_wait_samples)?;
        figure("fork_exec_wait", 100, &summary);
        Ok(())
    }

    fn fork_exec_wait_samples() -> Result<libipc::bench::stats::Summary, Failure> {
        time_iterations(10, 100, || {
            match sys::task_fork().map_err(|e| alloc::format!("fork: {e}"))? {
                Forked::Child => {
                    let error = sys::task_exec("bench_vm", EXIT);
                    libipc::println!("bench_vm: exec failed: {error}");
                    sys::task_exit(2)
                }
                Forked::Parent(task) => wait_child(task),
            }
        })
    }

    fn zero_fill_fault() -> Result<(), Failure> {
        const PAGES: u64 = 2100;
        let base = sys::vm_allocate(0, PAGES * PAGE, VM_ANYWHERE)
            .map_err(|e| alloc::format!("allocate: {e}"))?;
        let mut next = 0;
        let summary = time_iterations(100, 2000, || {
            // SAFETY: the page is in the region just allocated read-write.
            unsafe { core::ptr::write_volatile((base + next * PAGE) as *mut u64, next) };
            next += 1;
            Ok(())
        })?;
        figure("zero_fill_fault", 2000, &summary);
        // SAFETY: nothing of ours lives in the region.
        unsafe { sys::vm_deallocate(base, PAGES * PAGE) }
            .map_err(|e| alloc::format!("deallocate: {e}"))?;
        Ok(())
    }

    fn cow_fault() -> Result<(), Failure> {
        const PAGES: u64 = 2100;
        let base = sys::vm_allocate(0, PAGES * PAGE, VM_ANYWHERE)
            .map_err(|e| alloc::format!("allocate: {e}"))?;
        for i in 0..PAGES {
            // SAFETY: the page is in the region just allocated read-write.
            unsafe { core::ptr::write_volatile((base + i * PAGE) as *mut u64, i) };
        }
        // A child that keeps the pages shared, waiting forever.
        let child = match sys::task_fork().map_err(|e| alloc::format!("fork: {e}"))? {
            Forked::Child => {
                let Ok(port) = ReceiveRight::allocate() else {
                    sys::task_exit(3)
                };
                let mut buffer = MessageBuffer::new();
                loop {
                    let _ = ipc::receive(port.name(), &mut buffer, None);
                }
            }
            Forked::Parent(task) => task,
        };
        let mut next = 0;
        let result = time_iterations(100, 2000, || {
            // SAFETY: as above; the write copies the page the child still shares.
            unsafe { core::ptr::write_volatile((base + next * PAGE) as *mut u64, !next) };
            next += 1;
            Ok(())
        });
        let _ = sys::task_terminate(child);
        let _ = sys::task_wait(child);
        let _ = sys::port_deallocate(child);
        let summary = result?;
        figure("cow_fault", 2000, &summary);
        // SAFETY: nothing of ours lives in the region.
        unsafe { sys::vm_deallocate(base, PAGES * PAGE) }
            .map_err(|e| alloc::format!("deallocate: {e}"))?;
        Ok(())
    }

    /// Not inlined: `main` stays small, so the program `fork_exec_wait` execs (this one,
    /// role `EXIT`) touches one stack page, not the kilobytes of frames the benchmarks use.
    #[inline(never)]
    pub fn benchmarks() -> i32 {
        type Benchmark = fn() -> Result<(), Failure>;
        let all: [(&str, Benchmark); 4] = [
            ("fork_exit_wait", fork_exit_wait),
            ("fork_exec_wait", fork_exec_wait),
            ("zero_fill_fault", zero_fill_fault),
            ("cow_fault", cow_fault),
        ];
        let mut failed = 0;
        for (name, benchmark) in all {
            if let Err(why) = benchmark() {
                libipc::println!("bench_vm: {name} failed: {why}");
                failed += 1;
            }
        }
        libipc::println!("bench_vm: all benchmarks done");
        failed
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    match args.arg1 {
        0 => run::benchmarks(),
        run::EXIT => 0,
        other => {
            libipc::println!("bench_vm: no role {other}");
            1
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}

//! `smp_test`: in-guest tests of the kernel on several processors. Run as the first task
//! with `init_arg=N`, N the processors QEMU was given (`-smp N`):
//!
//! - `every_cpu_runs_threads`: the kernel counts N CPUs online, and N threads of one task
//!   spinning at once are seen on every one of them.
//! - `a_childs_memory_stays_put_while_the_parent_writes`: a thread of the parent writes a
//!   page in a loop on another CPU while the parent forks; the child's copy must not change
//!   after the fork. Fork write-protects the parent's page, and without a TLB shootdown the
//!   writer's CPU would go on writing through its stale writable translation into the frame
//!   the child now shares.
//! - `a_thread_running_elsewhere_is_stopped`: tasks whose thread spins in system calls on
//!   another CPU are terminated, and swapped out and in by hand, many times: each call they
//!   make must still return its right result (a call cut off by the stop is made again).
//! - `a_bound_thread_runs_only_on_its_cpu`: a thread bound to each CPU in turn
//!   (`ThreadBind`) runs only there, through yields, sleeps and RPCs to a server task, while
//!   unbound spinners keep every CPU busy; an offline CPU is refused.
//!
//! It reports `ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`, and
//! exits with the number of failures.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod cases;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    if args.arg1 & !0xffff == cases::CALLER {
        return cases::caller(args.arg1 - cases::CALLER);
    }
    if args.arg1 == cases::SERVER {
        return libipc::bench::workloads::serve("smp_test", args.arg0 as libipc::ipc::Name);
    }
    cases::EXPECTED_CPUS.store(args.arg2, core::sync::atomic::Ordering::Relaxed);
    libipc::rt::selftest::run(cases::ALL)
}

#[cfg(not(target_os = "none"))]
fn main() {}

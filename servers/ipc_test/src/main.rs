//! `ipc_test`: in-guest tests of tasks, ports and messages.
//!
//! Run as the first task (`init=ipc_test`), it runs a registry of named cases and reports
//! `ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`, and exits with
//! the number of failures. Its third start argument (the kernel's `init_arg=`) picks the
//! suite: 0 the main cases, 1 memory exhaustion (run with a small `mem=`). The same program, spawned with a role in its second start
//! argument, plays the other side of a case (an echo server, a task that crashes, ...).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod cases;
#[cfg(target_os = "none")]
mod held;
#[cfg(target_os = "none")]
mod hostile;
#[cfg(target_os = "none")]
mod roles;
#[cfg(target_os = "none")]
mod stale;
#[cfg(target_os = "none")]
mod threads;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    if args.arg1 != roles::RUNNER {
        return roles::play(args);
    }
    // The first task's first start argument is the host port.
    cases::HOST_PORT.store(args.arg0 as u32, core::sync::atomic::Ordering::Relaxed);
    // The third start argument picks the suite (the kernel's `init_arg=`).
    let suite = match args.arg2 {
        0 => cases::ALL,
        1 => cases::EXHAUSTION,
        other => {
            libipc::println!("ipc_test: no suite {other}");
            return 1;
        }
    };
    libipc::rt::selftest::run(suite)
}

#[cfg(not(target_os = "none"))]
fn main() {}

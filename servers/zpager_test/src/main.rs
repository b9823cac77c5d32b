//! `zpager_test`: in-guest tests of `zpager`, the compressing default pager. Each case starts
//! a zpager of its own with a send right to a tiny name service the test serves itself,
//! takes the port zpager registers there, and then speaks to it as the kernel would:
//! `default_pager::create` with an object's receive right, then `memory_object` calls on a
//! send right to the object's port.
//!
//! With `init_arg=1` (and little memory, `mem=32M`) it runs the pressure case instead: a
//! zpager becomes the kernel's default pager (through the host port the kernel gives the
//! first task) and the test writes more memory than the machine has, then reads it back.
//!
//! Run as the first task (`init=zpager_test`), it reports `ktest <name> ok` / `ktest <name>
//! FAILED: why`, then `N passed, M failed`, and exits with the number of failures.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod cases;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use core::sync::atomic::Ordering;
    cases::HOST.store(args.arg0 as u32, Ordering::Relaxed);
    let failed = match args.arg2 {
        1 => libipc::rt::selftest::run(cases::PRESSURE),
        _ => libipc::rt::selftest::run(cases::ALL),
    };
    // The default pager goes last: the report is out, and the memory is no longer short, so
    // nothing more is paged out and the little left to run is resident.
    let pager = cases::DEFAULT_PAGER_TASK.load(Ordering::Relaxed);
    if pager != 0 {
        let _ = libipc::sys::task_terminate(pager);
    }
    failed
}

#[cfg(not(target_os = "none"))]
fn main() {}

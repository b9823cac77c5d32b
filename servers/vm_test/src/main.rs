//! `vm_test`: in-guest tests of the virtual-memory calls on a task's own address space.
//!
//! Run as the first task (`init=vm_test`), it reports `ktest <name> ok` / `ktest <name>
//! FAILED: why`, then `N passed, M failed`, and exits with the number of failures. Spawned
//! with a role in its second start argument, it is a child that faults on purpose.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod cases;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    if args.arg1 != 0 {
        return cases::child(args.arg1);
    }
    libipc::rt::selftest::run(cases::ALL)
}

#[cfg(not(target_os = "none"))]
fn main() {}

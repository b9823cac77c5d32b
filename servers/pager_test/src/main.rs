//! `pager_test`: in-guest tests of external pagers. Each case forks: the child maps a memory
//! object whose pager is the parent (serving `libipc::pager::memory_object` as a test
//! dictates) and touches it; the parent serves until the kernel terminates the object, then
//! checks what it was asked for and how the child ended.
//!
//! Run as the first task (`init=pager_test`), it reports `ktest <name> ok` / `ktest <name>
//! FAILED: why`, then `N passed, M failed`, and exits with the number of failures.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod cases;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(_args: libipc::rt::StartArgs) -> i32 {
    libipc::rt::selftest::run(cases::ALL)
}

#[cfg(not(target_os = "none"))]
fn main() {}

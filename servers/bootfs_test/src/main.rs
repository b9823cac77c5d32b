//! `bootfs_test`: in-guest tests of the program pager. Run as the first task
//! (`init=bootfs_test`), it starts `bootfs`, makes it the kernel's program pager (it holds
//! the host port), then spawns and execs programs whose text must now page in through it,
//! and reads archive files through bootfs's file interface, bad requests included.
//! Reports `ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`.
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
    libipc::rt::selftest::with_pager_port(
        args.arg0 as u32,
        "bootfs",
        libipc::pager::PROGRAM_PAGER_NAME,
        libipc::sys::host_set_program_pager,
        |bootfs| {
            cases::BOOTFS.store(bootfs.name(), Ordering::Relaxed);
            libipc::rt::selftest::run(cases::ALL)
        },
    )
}

#[cfg(not(target_os = "none"))]
fn main() {}

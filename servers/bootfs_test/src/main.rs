//! `bootfs_test`: in-guest tests of the program pager. Run as the first task
//! (`init=bootfs_test`), it starts `bootfs`, makes it the kernel's program pager (it holds
//! the host port), then spawns and execs programs whose text must now page in through it.
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
    use libipc::pager::PROGRAM_PAGER_NAME;
    let host = args.arg0 as u32;
    let (bootfs, port) = match libipc::names::spawn_registered("bootfs", PROGRAM_PAGER_NAME, 5000) {
        Ok(started) => started,
        Err(e) => {
            libipc::println!("bootfs_test: starting bootfs: {e}");
            return 1;
        }
    };
    if let Err(e) = libipc::sys::host_set_program_pager(host, port.name()) {
        libipc::println!("bootfs_test: host_set_program_pager: {e}");
        return 1;
    }
    let failed = libipc::rt::selftest::run(cases::ALL);
    // The pager serves for good: it goes with the tests.
    let _ = bootfs.terminate();
    failed
}

#[cfg(not(target_os = "none"))]
fn main() {}

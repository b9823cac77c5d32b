//! `pageout_test`: in-guest tests of the pageout daemon with the default pager. Run as the
//! first task (`init=pageout_test`, with a small `mem=`), it starts `zpager`, makes it the
//! kernel's default pager (it holds the host port), then fills and checks anonymous memory
//! several times the size of the free memory.
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
    libipc::rt::selftest::run_with_pager(
        args.arg0 as u32,
        "zpager",
        libipc::pager::DEFAULT_PAGER_NAME,
        libipc::sys::host_set_default_pager,
        cases::ALL,
    )
}

#[cfg(not(target_os = "none"))]
fn main() {}

//! `pageout_test`: in-guest tests of the pageout daemon with the default pager. Run as the
//! first task (`init=pageout_test`, with a small `mem=`), it starts `zpager` (or, by its
//! `init_arg`, the disk pager `default_pager`), makes it the kernel's default pager (it holds
//! the host port), then fills and checks anonymous memory several times the size of the free
//! memory; the disk suites also fill the disk and make it fail.
//! Reports `ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod cases;
#[cfg(target_os = "none")]
mod disk;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::rt::selftest::run_with_disk_pager;
    let host = args.arg0 as u32;
    // The third start argument (the kernel's `init_arg=`) picks the default pager and the
    // cases: 0 zpager; with a disk, 1 the disk's cases, 6 zpager's cases through the disk, 2 a
    // full disk (boot
    // with `swap=0+8M`), 3 a disk failing writes of its first clusters, 4 one failing reads
    // at 16 MiB (where only a child's memory goes: earlier clusters take everyone's idle
    // pages first), 5
    // segments of two cluster sizes (`swap=0+8M:4,8M+8M:4,16M+8M:2,24M+8M:2`), 7 fork generations
    // and copies of shared memory while it is paged out, 8 zpager (2 MiB) stacked in front
    // of the disk pager.
    match args.arg2 {
        0 => libipc::rt::selftest::run_with_pager(
            host,
            "zpager",
            libipc::pager::DEFAULT_PAGER_NAME,
            libipc::sys::host_set_default_pager,
            cases::ALL,
        ),
        1 => run_with_disk_pager(host, disk::DISK),
        6 => run_with_disk_pager(host, cases::ALL),
        7 => run_with_disk_pager(host, disk::GENERATIONS),
        8 => libipc::rt::selftest::run_with_stacked_pagers(host, 2 << 20, disk::STACKED),
        2 => run_with_disk_pager(host, disk::FULL),
        3 => run_with_disk_pager(host, disk::WRITE_ERRORS),
        4 => run_with_disk_pager(host, disk::READ_ERRORS),
        5 => run_with_disk_pager(host, disk::SEGMENTS),
        9 => run_with_disk_pager(host, disk::ONE_BAD_PAGE),
        other => {
            libipc::println!("pageout_test: no suite {other}");
            1
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}

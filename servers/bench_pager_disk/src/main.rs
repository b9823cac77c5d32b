//! `bench_pager_disk`: the disk default pager's benchmarks (`cargo image bench pager-disk
//! --icount`).
//!
//! Runs as the first task (it needs the host port) on a machine with a disk: starts
//! `default_pager` with the device master port, makes it the default pager, and measures
//! paging through the disk with the cluster size the boot's `swap=` option gave the pager
//! (the host boots it once per cluster size, with `mem=32M`):
//!
//! - `bench pager.disk_ops_per_page_out.cluster<N> <x.yy> ops/page` and
//!   `bench pager.disk_ops_per_page_in.cluster<N> <x.yy> ops/page`: device writes per page
//!   returned and device reads per page paged in, over a sequential scan of memory four times
//!   the free memory (see [`scan`]); with the default clusters (4 pages) also without the
//!   `.cluster4` suffix.
//! - `stopwatch pager.disk_scan_wall_time.cluster<N> start` and `... stop` around the scan:
//!   the host times the two lines (wall time means something only without `-icount`).
//! - `bench pager.disk_fault_round_trip <median> instructions` (clusters of 1 page only, after
//!   the scan): a read of a page that is on the disk, from the fault to the read completing,
//!   the disk's own time left out (see [`fault`] and [`spinner`]).
//!
//! Remarks and failures go out as lines starting `bench_pager_disk:`; the program exits with
//! the number of benchmarks that failed.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(any(test, target_os = "none"))]
extern crate alloc;

#[cfg(target_os = "none")]
mod fault;
#[cfg(any(test, target_os = "none"))]
mod figures;
#[cfg(target_os = "none")]
mod paging;
// The ratios of `bench_pager`, in the same form.
#[cfg(any(test, target_os = "none"))]
#[path = "../../bench_pager/src/ratio.rs"]
mod ratio;
#[cfg(target_os = "none")]
mod scan;
#[cfg(target_os = "none")]
mod spinner;

#[cfg(target_os = "none")]
libipc::program!(main);

/// A benchmark that prints its failure before handing it on (the suite's `ktest` lines are
/// not shown while `cargo image bench` runs).
#[cfg(target_os = "none")]
macro_rules! benchmark {
    ($name:literal, $run:path) => {
        ($name, || {
            $run().map_err(|why| {
                libipc::println!("bench_pager_disk: {} failed: {why}", $name);
                why
            })
        })
    };
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let benchmarks: [(&str, libipc::rt::selftest::Case); 2] = [
        benchmark!("sequential_scan", scan::sequential_scan),
        benchmark!("disk_fault_round_trip", fault::fault_round_trip),
    ];
    let failed = libipc::rt::selftest::run_with_disk_pager(args.arg0 as u32, &benchmarks);
    libipc::println!("bench_pager_disk: all benchmarks done");
    failed
}

#[cfg(not(target_os = "none"))]
fn main() {}

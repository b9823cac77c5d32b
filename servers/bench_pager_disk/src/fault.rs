//! `pager.disk_fault_round_trip`: a read of one page the disk pager holds, from the fault to
//! the read completing, with clusters of one page.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::VM_BEHAVIOR_RANDOM;
use libipc::bench::measure::{remark, time_iterations};

use crate::paging::{allocate, behave, deallocate, read, settle, statistics, store, value, write};

/// Untimed faults before the timed ones.
const WARM_UP: usize = 20;
/// Timed faults, one page each.
const SAMPLES: usize = 500;
/// The memory written to push the sampled pages out, in multiples of the free memory.
const PUSH_MULTIPLE: u64 = 2;

/// Writes the sampled pages, pushes them to the disk by writing twice the free memory after
/// them (the pageout daemon takes the least recently used pages first), frees that memory
/// and waits for the disk to be idle; then reads the sampled pages in turn under the
/// `random` strategy, each read timed with `rdtsc` (guest instructions under `-icount`). Each
/// is one `data_request` of one page and one device read (checked: a page that stayed
/// resident would be a sample of nothing). Only with clusters of one page: other boots say
/// so and measure nothing.
pub fn fault_round_trip() -> Result<(), String> {
    let cluster = store()?.cluster_pages;
    if cluster != 1 {
        libipc::println!(
            "bench_pager_disk: disk_fault_round_trip: measured with clusters of 1 page only \
             (this boot's are {cluster})"
        );
        return Ok(());
    }
    let pages = (WARM_UP + SAMPLES) as u64;
    let base = allocate(pages)?;
    for page in 0..pages {
        write(base, page);
    }
    let push = PUSH_MULTIPLE * statistics()?.free_frames;
    let pusher = allocate(push)?;
    for page in 0..push {
        write(pusher, page);
    }
    deallocate(pusher, push)?;
    settle()?;
    behave(base, pages, VM_BEHAVIOR_RANDOM)?;

    let before = statistics()?;
    let mut next = 0;
    let summary = time_iterations(WARM_UP, SAMPLES, || {
        read(base, next);
        next += 1;
        Ok(())
    })?;
    let after = statistics()?;
    let wrong = (0..pages)
        .filter(|&page| read(base, page) != value(page))
        .count();
    deallocate(base, pages)?;
    if wrong > 0 {
        return Err(format!("{wrong} of {pages} pages came back wrong"));
    }
    let pageins = after.pageins - before.pageins;
    let single = after.requests_by_pages[1] - before.requests_by_pages[1];
    let reads = after.device_reads - before.device_reads;
    if pageins != pages || single != pages || reads != pages {
        return Err(format!(
            "{pages} faults made {pageins} page-ins, {single} requests of one page and {reads} \
             device reads: some pages were not on the disk, or a fault read more"
        ));
    }
    remark(
        "bench_pager_disk",
        "disk_fault_round_trip",
        SAMPLES,
        &summary,
    );
    libipc::println!(
        "bench pager.disk_fault_round_trip {} instructions",
        summary.median
    );
    Ok(())
}

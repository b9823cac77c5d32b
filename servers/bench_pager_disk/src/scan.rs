//! The scan: anonymous memory four times the free memory written a page at a time in order
//! (paged out), then read back in order (paged in), through the disk pager; device
//! operations per page each way, and the host's stopwatch around it.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::VM_BEHAVIOR_SEQUENTIAL;
use libipc::pager::DEFAULT_CLUSTER_PAGES;

use crate::figures::{per_cluster, Traffic};
use crate::paging::{allocate, behave, deallocate, read, settle, statistics, store, value, write};

/// The scan's memory, in multiples of the free memory at its start.
const SCAN_MULTIPLE: u64 = 4;

/// Allocates the memory, sets the `sequential` strategy on it (a fault then asks for the
/// rest of its cluster, which is what a sequential scan wants), writes the first word of
/// every page in order, reads them all back in order and checks them; the counters span the
/// whole scan and the disk's settling after it (page-outs continue into the read-back, which
/// pushes out what the writes left dirty). Prints the figures for this boot's cluster size,
/// and with the default clusters (4 pages) the headline figures without the suffix.
pub fn sequential_scan() -> Result<(), String> {
    let cluster = store()?.cluster_pages;
    settle()?;
    let free = statistics()?.free_frames;
    let pages = SCAN_MULTIPLE * free;
    let base = allocate(pages)?;
    behave(base, pages, VM_BEHAVIOR_SEQUENTIAL)?;
    let store_before = store()?;
    let wall = per_cluster("pager.disk_scan_wall_time", cluster);

    let before = statistics()?;
    libipc::println!("stopwatch {wall} start");
    for page in 0..pages {
        write(base, page);
    }
    let written = statistics()?;
    let wrong = (0..pages)
        .filter(|&page| read(base, page) != value(page))
        .count();
    libipc::println!("stopwatch {wall} stop");
    settle()?;
    let after = statistics()?;
    let store_after = store()?;
    deallocate(base, pages)?;

    let out = Traffic::between(&before, &written);
    let back = Traffic::between(&written, &after);
    let all = Traffic::between(&before, &after);
    libipc::println!(
        "bench_pager_disk: scan of {pages} pages ({SCAN_MULTIPLE} x {free} free), clusters of \
         {cluster}: writing: {} pages out in {} returns, {} device writes of {} pages; reading \
         back: {} pages in from {} requests of {} pages, {} device reads of {} pages, {} pages \
         out in {} returns, {} device writes",
        out.returned_pages,
        out.returns,
        out.device_writes,
        out.device_pages_written,
        back.pageins,
        back.requests,
        back.requested_pages,
        back.device_reads,
        back.device_pages_read,
        back.returned_pages,
        back.returns,
        back.device_writes,
    );
    if wrong > 0 {
        return Err(format!("{wrong} of {pages} pages came back wrong"));
    }
    if all.device_errors > 0
        || store_after.io_errors != store_before.io_errors
        || store_after.refused_returns != store_before.refused_returns
    {
        return Err(format!(
            "{} device errors, {} refused returns: the disk is too small or failing",
            all.device_errors,
            store_after.refused_returns - store_before.refused_returns
        ));
    }
    let per_out = all.ops_per_page_out().ok_or("nothing was paged out")?;
    let per_in = all.ops_per_page_in().ok_or("nothing was paged in")?;
    let out_metric = per_cluster("pager.disk_ops_per_page_out", cluster);
    let in_metric = per_cluster("pager.disk_ops_per_page_in", cluster);
    libipc::println!("bench {out_metric} {per_out} ops/page");
    libipc::println!("bench {in_metric} {per_in} ops/page");
    if cluster == u64::from(DEFAULT_CLUSTER_PAGES) {
        libipc::println!("bench pager.disk_ops_per_page_out {per_out} ops/page");
        libipc::println!("bench pager.disk_ops_per_page_in {per_in} ops/page");
    }
    Ok(())
}

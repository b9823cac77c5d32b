//! `pager.disk_fault_round_trip`: a read of one page the disk pager holds, from the fault to
//! the read completing, with clusters of one page.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libipc::abi::syscall::VM_BEHAVIOR_RANDOM;
use libipc::bench::stats::Summary;

use crate::paging::{
    allocate, behave, deallocate, read, settle, statistics, store, timestamp, value, write,
};
use crate::spinner::Spinner;

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
///
/// A [`Spinner`] runs meanwhile so that the processor never idles (an idle processor under
/// `-icount` jumps to the next timer deadline), and each sample is the read's instructions
/// less those of the spinner's turns in it: the instructions of the fault's round trip (the
/// kernel's fault path, the request to the pager, its device read through the kernel's
/// driver, the disk's interrupt, the replies and the resume), the disk's own time left out.
/// The remark gives the raw samples' median and the spinner's share too.
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

    let spinner = Spinner::start()?;
    let timed = time_faults(base, pages, &spinner);
    let stopped = spinner.stop();
    let wrong = (0..pages)
        .filter(|&page| read(base, page) != value(page))
        .count();
    deallocate(base, pages)?;
    let samples = timed?;
    stopped?;
    if wrong > 0 {
        return Err(format!("{wrong} of {pages} pages came back wrong"));
    }
    let Samples {
        mut raw,
        mut turns,
        mut net,
        turn_cost,
    } = samples;
    let raw = Summary::of(&mut raw).ok_or("no samples")?;
    let turns = Summary::of(&mut turns).ok_or("no samples")?;
    let net = Summary::of(&mut net).ok_or("no samples")?;
    libipc::println!(
        "bench_pager_disk: disk_fault_round_trip: {SAMPLES} samples less the spinner's turns \
         ({turn_cost} instructions each, median {} turns a sample): min {}, median {}, max {}; \
         as timed: min {}, median {}, max {}",
        turns.median,
        net.min,
        net.median,
        net.max,
        raw.min,
        raw.median,
        raw.max
    );
    libipc::println!(
        "bench pager.disk_fault_round_trip {} instructions",
        net.median
    );
    Ok(())
}

/// The timed faults: as timed, the spinner's turns in each, and the difference.
struct Samples {
    raw: Vec<u64>,
    turns: Vec<u64>,
    net: Vec<u64>,
    turn_cost: u64,
}

/// Reads each of the `pages` pages at `base` in turn, timing each read; checks that each was
/// one page-in of one page through one device read.
fn time_faults(base: u64, pages: u64, spinner: &Spinner) -> Result<Samples, String> {
    let mut samples = Samples {
        raw: Vec::new(),
        turns: Vec::new(),
        net: Vec::new(),
        turn_cost: spinner.turn_cost(),
    };
    for list in [&mut samples.raw, &mut samples.turns, &mut samples.net] {
        list.try_reserve_exact(SAMPLES)
            .map_err(|_| String::from("no heap for the samples"))?;
    }
    let before = statistics()?;
    for page in 0..pages {
        let turns = spinner.turns();
        let start = timestamp();
        read(base, page);
        let end = timestamp();
        let turns = spinner.turns() - turns;
        if page >= WARM_UP as u64 {
            let raw = end.wrapping_sub(start);
            samples.raw.push(raw);
            samples.turns.push(turns);
            samples
                .net
                .push(raw.saturating_sub(spinner.instructions(turns)));
        }
    }
    let after = statistics()?;
    let pageins = after.pageins - before.pageins;
    let single = after.requests_by_pages[1] - before.requests_by_pages[1];
    let reads = after.device_reads - before.device_reads;
    if pageins != pages || single != pages || reads != pages {
        return Err(format!(
            "{pages} faults made {pageins} page-ins, {single} requests of one page and {reads} \
             device reads: some pages were not on the disk, or a fault read more"
        ));
    }
    Ok(samples)
}

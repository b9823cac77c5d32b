//! The cases that need the disk default pager: memory four times the machine's written and
//! checked through the disk, swap released when memory goes, a full disk, disk errors, and
//! paging segments of different cluster sizes. Which run is chosen by `init_arg` (see
//! `main.rs`); each boot gives its disk and `swap=` layout.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::{VmStatistics, VM_ANYWHERE, VM_INHERIT_SHARE};

use libipc::pager::BackingStoreInfo;
use libipc::rt::sleep_ms;
use libipc::sys;

use crate::cases::Case;

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

const PAGE: u64 = 4096;
const WORDS_PER_PAGE: u64 = PAGE / 8;

/// The cases of a plain disk boot (after the pageout cases every default pager passes).
pub const DISK: &[(&str, Case)] = &[
    (
        "four_times_memory_through_the_disk",
        four_times_memory_through_the_disk,
    ),
    (
        "swap_is_released_when_memory_goes",
        swap_is_released_when_memory_goes,
    ),
];

/// Fork generations while memory is paged out (with shared memory copied too).
pub const GENERATIONS: &[(&str, Case)] = &[
    (
        "fork_generations_with_memory_paged_out_stay_bounded",
        fork_generations_with_memory_paged_out_stay_bounded,
    ),
    (
        "shared_memory_partly_paged_out_is_copied",
        shared_memory_partly_paged_out_is_copied,
    ),
];

/// zpager stacked in front of the disk pager.
pub const STACKED: &[(&str, Case)] = &[(
    "zpager_in_front_of_the_disk_keeps_some_and_sends_on_the_rest",
    zpager_in_front_of_the_disk_keeps_some_and_sends_on_the_rest,
)];

/// A boot with less swap than memory (`swap=0+8M`).
pub const FULL: &[(&str, Case)] = &[(
    "a_full_disk_loses_nothing_and_work_resumes",
    a_full_disk_loses_nothing_and_work_resumes,
)];

/// A boot whose disk fails writes to its first clusters.
pub const WRITE_ERRORS: &[(&str, Case)] =
    &[("failed_writes_keep_the_pages", failed_writes_keep_the_pages)];

/// A boot whose disk fails reads of its first clusters.
pub const READ_ERRORS: &[(&str, Case)] = &[(
    "failed_reads_end_the_faulting_task_only",
    failed_reads_end_the_faulting_task_only,
)];

/// A boot whose disk fails reads of one page's blocks in the middle of a cluster.
pub const ONE_BAD_PAGE: &[(&str, Case)] = &[(
    "a_failed_read_loses_only_the_page_on_the_failing_blocks",
    a_failed_read_loses_only_the_page_on_the_failing_blocks,
)];

/// A boot with two segments of each of two cluster sizes
/// (`swap=0+8M:4,8M+8M:4,16M+8M:2,24M+8M:2`).
pub const SEGMENTS: &[(&str, Case)] = &[(
    "segments_of_two_cluster_sizes_and_an_object_larger_than_one",
    segments_of_two_cluster_sizes_and_an_object_larger_than_one,
)];

fn statistics() -> Result<VmStatistics, String> {
    sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))
}

/// The default pager's counters.
fn store() -> Result<BackingStoreInfo, String> {
    libipc::rt::selftest::backing_store_info()
}

/// The word `word` of page `page` in a fill with `seed`: every word differs.
fn value(seed: u64, page: u64, word: u64) -> u64 {
    (seed << 56) ^ (page << 12) ^ (word << 3) ^ 0x5a5a_0f0f_3c3c_9696
}

/// Writes every word of `pages` pages from `base`.
fn fill(base: u64, pages: u64, seed: u64) {
    for page in 0..pages {
        for word in 0..WORDS_PER_PAGE {
            let address = base + page * PAGE + word * 8;
            // SAFETY: inside a region the caller allocated read-write.
            unsafe { core::ptr::write_volatile(address as *mut u64, value(seed, page, word)) };
        }
    }
}

/// The first page with a word that is not the fill's.
fn first_wrong(base: u64, pages: u64, seed: u64) -> Option<u64> {
    (0..pages).find(|&page| page_wrong(base, page, seed))
}

/// Whether page `page` of the region at `base` has a word that is not the fill's.
fn page_wrong(base: u64, page: u64, seed: u64) -> bool {
    (0..WORDS_PER_PAGE).any(|word| {
        let address = base + page * PAGE + word * 8;
        // SAFETY: as in `fill`.
        unsafe { core::ptr::read_volatile(address as *const u64) != value(seed, page, word) }
    })
}

fn allocate(pages: u64) -> Result<u64, String> {
    sys::vm_allocate(0, pages * PAGE, VM_ANYWHERE)
        .map_err(|e| format!("allocate {pages} pages: {e}"))
}

fn deallocate(base: u64, pages: u64) -> Result<(), String> {
    // SAFETY: the caller's region, which nothing uses any more.
    unsafe { sys::vm_deallocate(base, pages * PAGE) }.map_err(|e| format!("deallocate: {e}"))
}

/// Waits (up to 5 s) until the pager holds no more clusters than `clusters`.
fn wait_for_clusters(clusters: u64) -> Result<BackingStoreInfo, String> {
    for _ in 0..500 {
        let info = store()?;
        if info.clusters_used <= clusters {
            return Ok(info);
        }
        sleep_ms(10);
    }
    let info = store()?;
    Err(format!(
        "the pager still holds {} clusters, not {clusters} or fewer",
        info.clusters_used
    ))
}

fn four_times_memory_through_the_disk() -> Result<(), String> {
    let before = statistics()?;
    let store_before = store()?;
    let pages = 4 * before.free_frames;
    let base = allocate(pages)?;
    fill(base, pages, 1);
    if let Some(page) = first_wrong(base, pages, 1) {
        return Err(format!("page {page} of {pages} lost its contents"));
    }
    let after = statistics()?;
    let store_after = store()?;
    libipc::println!(
        "pageout_test: {pages} pages through the disk: {} out in {} returns, {} in; device \
         {} writes of {} pages, {} reads of {} pages; pager {} clusters in use of {}",
        after.returned_pages() - before.returned_pages(),
        after.returns() - before.returns(),
        after.pageins - before.pageins,
        after.device_writes - before.device_writes,
        after.device_pages_written - before.device_pages_written,
        after.device_reads - before.device_reads,
        after.device_pages_read - before.device_pages_read,
        store_after.clusters_used,
        store_after.clusters_total,
    );
    check!(
        after.returned_pages() - before.returned_pages() >= pages / 2,
        "only {} pages went out",
        after.returned_pages() - before.returned_pages()
    );
    check!(
        after.device_pages_written - before.device_pages_written
            >= after.returned_pages() - before.returned_pages(),
        "returned pages did not all reach the disk"
    );
    check!(
        after.device_writes - before.device_writes
            < after.device_pages_written - before.device_pages_written,
        "the disk was written a page at a time"
    );
    check!(
        after.pageins - before.pageins >= pages / 2,
        "only {} pages came back",
        after.pageins - before.pageins
    );
    check!(
        store_after.refused_returns == store_before.refused_returns
            && store_after.io_errors == store_before.io_errors,
        "refusals or I/O errors on a healthy disk with room"
    );
    // Whole clusters go out in one operation each.
    let by_pages: [u64; 8] = core::array::from_fn(|i| {
        store_after.operations_by_pages[i] - store_before.operations_by_pages[i]
    });
    libipc::println!("pageout_test: device operations by pages (1..8+): {by_pages:?}");
    let whole = (store_after.cluster_pages.clamp(1, 8) - 1) as usize;
    check!(
        by_pages[whole] * 2 > by_pages.iter().sum::<u64>() / 2,
        "few operations of a whole cluster of {} pages: {by_pages:?}",
        store_after.cluster_pages
    );
    check!(
        after.memory_errors == before.memory_errors,
        "{} memory errors",
        after.memory_errors - before.memory_errors
    );
    deallocate(base, pages)
}

fn swap_is_released_when_memory_goes() -> Result<(), String> {
    let baseline = wait_for_clusters(u64::MAX)?.clusters_used;
    let free = statistics()?.free_frames;
    // Memory of our own, paged out and freed.
    let pages = 2 * free;
    let base = allocate(pages)?;
    fill(base, pages, 2);
    let held = store()?.clusters_used;
    check!(
        held > baseline,
        "nothing reached the disk ({held} clusters)"
    );
    deallocate(base, pages)?;
    wait_for_clusters(baseline)?;
    // A child's, released when it exits.
    let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let Ok(base) = allocate(pages) else {
                sys::task_exit(1)
            };
            fill(base, pages, 3);
            sys::task_exit(if first_wrong(base, pages, 3).is_none() {
                0
            } else {
                2
            })
        }
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status?
        }
    };
    check!(status == 0, "child status {status}");
    let info = wait_for_clusters(baseline)?;
    check!(
        info.clusters_peak > baseline,
        "the child's memory never reached the disk"
    );
    Ok(())
}

/// A page shared by parent and children: word 0 says "ready" (child A filled and checked
/// its memory), word 1 "exit now" (for child A).
struct Shared(u64);

impl Shared {
    fn new() -> Result<Shared, String> {
        let base = allocate(1)?;
        sys::vm_inherit(base, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
        Ok(Shared(base))
    }

    fn set(&self, word: u64) {
        // SAFETY: the shared page, allocated read-write.
        unsafe { core::ptr::write_volatile((self.0 + word * 8) as *mut u64, 1) };
    }

    fn get(&self, word: u64) -> bool {
        // SAFETY: as in `set`.
        unsafe { core::ptr::read_volatile((self.0 + word * 8) as *const u64) != 0 }
    }
}

fn a_full_disk_loses_nothing_and_work_resumes() -> Result<(), String> {
    let info = store()?;
    let swap_pages = info.clusters_total * info.cluster_pages;
    let free = statistics()?.free_frames;
    // A holds the swap's worth and half of memory; B then needs the other half and more:
    // together more than memory and swap, so the disk fills and B waits, until A exits.
    let a_pages = swap_pages + free / 2;
    let b_pages = free * 3 / 4;
    let shared = Shared::new()?;
    let a = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let Ok(base) = allocate(a_pages) else {
                sys::task_exit(1)
            };
            fill(base, a_pages, 4);
            if first_wrong(base, a_pages, 4).is_some() {
                sys::task_exit(2)
            }
            shared.set(0);
            while !shared.get(1) {
                sleep_ms(5);
            }
            sys::task_exit(0)
        }
        sys::Forked::Parent(task) => task,
    };
    while !shared.get(0) {
        sleep_ms(10);
    }
    let refused_before = store()?.refused_returns;
    let b = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let Ok(base) = allocate(b_pages) else {
                sys::task_exit(1)
            };
            fill(base, b_pages, 5);
            sys::task_exit(if first_wrong(base, b_pages, 5).is_none() {
                0
            } else {
                2
            })
        }
        sys::Forked::Parent(task) => task,
    };
    // B runs until the disk is full: returns are refused (and the pages kept).
    let mut refused = false;
    for _ in 0..300 {
        if store()?.refused_returns > refused_before {
            refused = true;
            break;
        }
        sleep_ms(10);
    }
    shared.set(1);
    let a_status = sys::task_wait(a).map_err(|e| format!("wait for A: {e}"))?;
    let b_status = sys::task_wait(b).map_err(|e| format!("wait for B: {e}"))?;
    let _ = (sys::port_deallocate(a), sys::port_deallocate(b));
    check!(refused, "the disk never filled (swap {swap_pages} pages)");
    check!(a_status == 0, "A: status {a_status}");
    check!(
        b_status == 0,
        "B: status {b_status} (its memory did not survive)"
    );
    deallocate(shared.0, 1)
}

fn failed_writes_keep_the_pages() -> Result<(), String> {
    let before = store()?;
    let free = statistics()?.free_frames;
    let pages = 2 * free;
    let base = allocate(pages)?;
    fill(base, pages, 6);
    let wrong = first_wrong(base, pages, 6);
    let after = store()?;
    deallocate(base, pages)?;
    if let Some(page) = wrong {
        return Err(format!("page {page} lost its contents"));
    }
    check!(
        after.io_errors > before.io_errors,
        "no write failed (is the disk set to fail writes?)"
    );
    check!(
        after.refused_returns > before.refused_returns,
        "failed writes were not refused"
    );
    Ok(())
}

fn failed_reads_end_the_faulting_task_only() -> Result<(), String> {
    let free = statistics()?.free_frames;
    let pages = 2 * free;
    let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let Ok(base) = allocate(pages) else {
                sys::task_exit(1)
            };
            fill(base, pages, 7);
            // Reading back what went to the failing clusters ends this task.
            let _ = first_wrong(base, pages, 7);
            sys::task_exit(0)
        }
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status?
        }
    };
    check!(
        status != 0,
        "the child read back memory whose disk reads fail (status {status})"
    );
    let info = store()?;
    check!(info.io_errors > 0, "no read failed");
    // The rest goes on: the pager still serves, memory of our own still pages.
    let base = allocate(pages)?;
    fill(base, pages, 8);
    let wrong = first_wrong(base, pages, 8);
    deallocate(base, pages)?;
    check!(
        wrong.is_none(),
        "after the failure, page {wrong:?} lost its contents"
    );
    Ok(())
}

/// Memory shared with forked readers goes out to a disk that fails the reads of one page's
/// blocks. Each reader checks every page from where the last one stopped and notes where it
/// is in a shared page; a reader ended by a memory error marks that page lost, and the next
/// goes on after it. Exactly one page may be lost (the one on the failing blocks), every
/// other page must read back as written, and the pager must have said which it lost.
/// `task_fork`, tried again while the kernel refuses new tasks for want of memory: a case
/// that has just filled twice the free memory forks while the pageout daemon still frees
/// some, and the refusal is the kernel's answer at that moment, not the case's failure. Up to
/// two seconds; any other error at once.
fn fork_when_memory_allows() -> Result<sys::Forked, String> {
    for _ in 0..200 {
        match sys::task_fork() {
            Err(libipc::abi::KernReturn::ResourceShortage) => sleep_ms(10),
            other => return other.map_err(|e| format!("fork: {e}")),
        }
    }
    sys::task_fork().map_err(|e| format!("fork, refused for two seconds: {e}"))
}

fn a_failed_read_loses_only_the_page_on_the_failing_blocks() -> Result<(), String> {
    let pages = 2 * statistics()?.free_frames;
    let base = allocate(pages)?;
    sys::vm_inherit(base, pages * PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    // Word 0: the page a reader is at; word 1: 1 + a page a reader found wrong.
    let place = allocate(1)?;
    sys::vm_inherit(place, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    let word = |n: u64| (place + n * 8) as *mut u64;
    fill(base, pages, 11);
    let mut lost = alloc::vec::Vec::new();
    let mut from = 0;
    let outcome = loop {
        if lost.len() > 4 {
            break Err(format!(
                "more pages lost than the failing blocks hold: {lost:?}"
            ));
        }
        match fork_when_memory_allows()? {
            sys::Forked::Child => {
                for page in from..pages {
                    // SAFETY: the shared page, allocated read-write.
                    unsafe { core::ptr::write_volatile(word(0), page) };
                    if page_wrong(base, page, 11) {
                        // SAFETY: as above.
                        unsafe { core::ptr::write_volatile(word(1), page + 1) };
                        sys::task_exit(2)
                    }
                }
                sys::task_exit(0)
            }
            sys::Forked::Parent(task) => {
                let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
                let _ = sys::port_deallocate(task);
                // SAFETY: the shared page; the reader has ended.
                let (at, wrong) = unsafe { (*word(0), *word(1)) };
                match status? {
                    0 => break Ok(()),
                    2 => break Err(format!("page {} read back wrong", wrong - 1)),
                    // Ended by the kernel: the page it was at is lost.
                    _ => {
                        lost.push(at);
                        from = at + 1;
                    }
                }
            }
        }
    };
    let info = store()?;
    deallocate(base, pages)?;
    deallocate(place, 1)?;
    outcome?;
    check!(info.io_errors > 0, "no read failed");
    check!(
        lost.len() == 1,
        "pages lost: {lost:?} (the failing blocks hold one page)"
    );
    libipc::println!(
        "pageout_test: page {} of {pages} lost, as its blocks fail",
        lost[0]
    );
    Ok(())
}

fn segments_of_two_cluster_sizes_and_an_object_larger_than_one() -> Result<(), String> {
    let info = store()?;
    check!(
        info.segment_clusters_used.iter().all(|&used| used == 0),
        "segments in use at the start: {:?}",
        info.segment_clusters_used
    );
    // 12 MiB: more than a segment of 8 MiB, in clusters of 4 (the first two segments).
    let big = 3 * 1024;
    let free = statistics()?.free_frames;
    let base = allocate(big)?;
    fill(base, big, 9);
    // Then another object, pushed out too: the segment with clusters of 2 has the most room.
    // (A read-only page between the regions keeps the second from growing the first's
    // object.)
    let spacer = allocate(1)?;
    sys::vm_protect(spacer, PAGE, false, libipc::abi::syscall::VM_PROT_READ)
        .map_err(|e| format!("protect: {e}"))?;
    let other_pages = free * 2 / 3;
    let other = allocate(other_pages)?;
    fill(other, other_pages, 10);
    let wrong = (
        first_wrong(base, big, 9),
        first_wrong(other, other_pages, 10),
    );
    let info = store()?;
    deallocate(base, big)?;
    deallocate(other, other_pages)?;
    deallocate(spacer, 1)?;
    check!(wrong == (None, None), "pages lost: {wrong:?}");
    let used = info.segment_clusters_used;
    libipc::println!("pageout_test: clusters used per segment: {used:?}");
    // New objects take turns between the sizes; the 12 MiB object, whichever size it got,
    // needed both segments of that size (8 MiB each).
    check!(
        (used[0] > 0 && used[1] > 0) || (used[2] > 0 && used[3] > 0),
        "no object spread over both segments of its cluster size: {used:?}"
    );
    check!(
        used[0] + used[1] > 0 && used[2] + used[3] > 0,
        "one cluster size was never used: {used:?}"
    );
    Ok(())
}

/// Dirties `pages` pages of fresh memory (a word each) and frees them: whatever else is
/// resident and idle goes out to the pager.
fn push_out(pages: u64) -> Result<(), String> {
    let base = allocate(pages)?;
    for page in 0..pages {
        // SAFETY: inside the region just allocated read-write.
        unsafe { core::ptr::write_volatile((base + page * PAGE) as *mut u64, page) };
    }
    deallocate(base, pages)
}

fn host(selector: u64) -> u64 {
    sys::host_info(selector).unwrap_or(u64::MAX)
}

fn fork_generations_with_memory_paged_out_stay_bounded() -> Result<(), String> {
    use libipc::abi::syscall::{HOST_VM_COLLAPSES, HOST_VM_OBJECTS};
    const PAGES: u64 = 64;
    const GENERATIONS: u64 = 1000;
    const SAMPLE_EVERY: u64 = 100;
    let base = allocate(PAGES)?;
    fill(base, PAGES, 30);
    let push = statistics()?.free_frames * 3 / 2;
    // Word 0 of page `g % PAGES` holds the generation that last wrote it.
    let mut last = [u64::MAX; PAGES as usize];
    let mut samples = alloc::vec::Vec::new();
    // A page both share, where the parent says it has written (on several CPUs the child
    // could otherwise end first).
    let flag = allocate(1)?;
    sys::vm_inherit(flag, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    let collapses_before = host(HOST_VM_COLLAPSES);
    for generation in 0..GENERATIONS {
        let page = generation % PAGES;
        match sys::task_fork().map_err(|e| format!("fork {generation}: {e}"))? {
            sys::Forked::Child => {
                // SAFETY: the shared page allocated above.
                while unsafe { core::ptr::read_volatile(flag as *const u64) } != generation + 1 {
                    core::hint::spin_loop();
                }
                sys::task_exit(0)
            }
            sys::Forked::Parent(task) => {
                // The parent writes while the child lives: a shadow in front of what they
                // shared, which the child's end leaves to be merged.
                // SAFETY: inside the region allocated above.
                unsafe { core::ptr::write_volatile((base + page * PAGE) as *mut u64, generation) };
                // SAFETY: the shared page allocated above.
                unsafe { core::ptr::write_volatile(flag as *mut u64, generation + 1) };
                let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"))?;
                let _ = sys::port_deallocate(task);
                check!(status == 0, "child {generation}: status {status}");
            }
        }
        last[page as usize] = generation;
        if generation % SAMPLE_EVERY == SAMPLE_EVERY - 1 {
            push_out(push)?;
            for (page, &written) in last.iter().enumerate() {
                let address = base + page as u64 * PAGE;
                // SAFETY: as above.
                let word0 = unsafe { core::ptr::read_volatile(address as *const u64) };
                let expected = if written == u64::MAX {
                    value(30, page as u64, 0)
                } else {
                    written
                };
                check!(
                    word0 == expected,
                    "generation {generation}: page {page} holds {word0:#x}, not {expected:#x}"
                );
                // The rest of the page is still the first fill.
                // SAFETY: as above.
                let word9 = unsafe { core::ptr::read_volatile((address + 72) as *const u64) };
                check!(
                    word9 == value(30, page as u64, 9),
                    "generation {generation}: page {page} lost its first fill"
                );
            }
            let info = store()?;
            samples.push((
                host(HOST_VM_OBJECTS),
                info.clusters_used,
                statistics()?.free_frames,
            ));
        }
    }
    let collapses = host(HOST_VM_COLLAPSES) - collapses_before;
    libipc::println!(
        "pageout_test: {GENERATIONS} generations, {collapses} collapses; (objects, clusters, \
         free frames) every {SAMPLE_EVERY}: {samples:?}"
    );
    // After the first round the system is in its steady state: nothing grows with the
    // generations (frames move a little with the kernel heap and the pager's queues).
    let first = samples[1];
    for &(objects, clusters, frames) in &samples[2..] {
        check!(
            objects <= first.0 + 2,
            "objects grew from {} to {objects}",
            first.0
        );
        check!(
            clusters <= first.1 + 16,
            "clusters grew from {} to {clusters}",
            first.1
        );
        check!(
            frames + 128 >= first.2,
            "free frames fell from {} to {frames}",
            first.2
        );
    }
    check!(collapses >= GENERATIONS / 2, "only {collapses} collapses");
    deallocate(flag, 1)?;
    deallocate(base, PAGES)
}

fn shared_memory_partly_paged_out_is_copied() -> Result<(), String> {
    // A region shared with a child (inherit share), paged out in part; then a fork copies it
    // (the grandchild's inheritance is copy), and an out-of-line message would too.
    let free = statistics()?.free_frames;
    let pages = 256;
    let base = allocate(pages)?;
    sys::vm_inherit(base, pages * PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    fill(base, pages, 40);
    let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            // The region is shared with the parent. Push it out, then fork with it copied.
            if push_out(free * 3 / 2).is_err() {
                sys::task_exit(1)
            }
            if sys::vm_inherit(base, pages * PAGE, libipc::abi::syscall::VM_INHERIT_COPY).is_err() {
                sys::task_exit(2)
            }
            let code = match sys::task_fork() {
                Ok(sys::Forked::Child) => {
                    // The copy as it was at the fork, whatever the sharers do since.
                    sys::task_exit(if first_wrong(base, pages, 40).is_none() {
                        0
                    } else {
                        3
                    })
                }
                Ok(sys::Forked::Parent(task)) => {
                    // Change the shared memory: the copy must not see it.
                    fill(base, pages, 41);
                    let status = sys::task_wait(task).unwrap_or(99);
                    let _ = sys::port_deallocate(task);
                    status
                }
                Err(_) => 4,
            };
            sys::task_exit(code as i32)
        }
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status?
        }
    };
    check!(status == 0, "child: status {status}");
    // The parent shares the region: it sees the child's second fill.
    let wrong = first_wrong(base, pages, 41);
    deallocate(base, pages)?;
    check!(
        wrong.is_none(),
        "the shared region's page {wrong:?} lacks the child's writes"
    );
    Ok(())
}

fn zpager_in_front_of_the_disk_keeps_some_and_sends_on_the_rest() -> Result<(), String> {
    let before = statistics()?;
    let disk_before = store()?;
    let pages = 3 * before.free_frames;
    let base = allocate(pages)?;
    fill(base, pages, 50);
    let wrong = first_wrong(base, pages, 50);
    let after = statistics()?;
    let disk_after = store()?;
    deallocate(base, pages)?;
    if let Some(page) = wrong {
        return Err(format!("page {page} of {pages} lost its contents"));
    }
    let returned = after.returned_pages() - before.returned_pages();
    let on_disk = disk_after.pages_out - disk_before.pages_out;
    libipc::println!(
        "pageout_test: stacked: {returned} pages returned, {on_disk} of them sent on to the \
         disk, {} read back from it",
        disk_after.pages_in - disk_before.pages_in
    );
    check!(returned >= pages / 2, "only {returned} pages went out");
    check!(on_disk > 0, "nothing reached the disk behind zpager");
    check!(
        on_disk < returned,
        "zpager kept nothing: all {returned} returned pages went to the disk"
    );
    check!(
        disk_after.pages_in > disk_before.pages_in,
        "nothing came back from the disk through zpager"
    );
    Ok(())
}

//! The cases: anonymous memory larger than the machine, through the default pager.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::{VmStatistics, HOST_CREATES_DEFERRED, VM_ANYWHERE};
use libipc::sys;

pub use libipc::rt::selftest::Case;

pub const ALL: &[(&str, Case)] = &[
    (
        "three_times_free_memory_survives_pageout",
        three_times_free_memory_survives_pageout,
    ),
    (
        "forked_memory_survives_pageout",
        forked_memory_survives_pageout,
    ),
    (
        "pages_written_after_page_in_survive_fork_and_pageout",
        pages_written_after_page_in_survive_fork_and_pageout,
    ),
    (
        "many_objects_go_to_the_pager_a_few_at_a_time",
        many_objects_go_to_the_pager_a_few_at_a_time,
    ),
];

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

const PAGE: u64 = 4096;

fn statistics() -> Result<VmStatistics, String> {
    sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))
}

/// The word `word` of page `page` in a fill with `seed`.
fn value(seed: u64, page: u64, word: u64) -> u64 {
    seed ^ (page << 20) ^ (word << 4) ^ 0x0123_4567_89ab_cdef
}

/// Words of each page written and checked: spread over the page.
const WORDS: [u64; 4] = [0, 100, 300, 511];

fn fill(base: u64, pages: u64, seed: u64) {
    for page in 0..pages {
        for word in WORDS {
            let address = base + page * PAGE + word * 8;
            // SAFETY: inside a region the caller allocated read-write.
            unsafe { core::ptr::write_volatile(address as *mut u64, value(seed, page, word)) };
        }
    }
}

/// The first page whose words are not the fill's.
fn first_wrong(base: u64, pages: u64, seed: u64) -> Option<u64> {
    (0..pages).find(|&page| {
        WORDS.iter().any(|&word| {
            let address = base + page * PAGE + word * 8;
            // SAFETY: as in `fill`.
            let found = unsafe { core::ptr::read_volatile(address as *const u64) };
            found != value(seed, page, word)
        })
    })
}

fn three_times_free_memory_survives_pageout() -> Result<(), String> {
    let before = statistics()?;
    let pages = 3 * before.free_frames;
    let base = sys::vm_allocate(0, pages * PAGE, VM_ANYWHERE)
        .map_err(|e| format!("allocate {pages} pages: {e}"))?;
    fill(base, pages, 7);
    if let Some(page) = first_wrong(base, pages, 7) {
        return Err(format!("page {page} of {pages} lost its contents"));
    }
    let after = statistics()?;
    // SAFETY: nothing lives in the region any more.
    unsafe { sys::vm_deallocate(base, pages * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    let returns = after.returns() - before.returns();
    let returned = after.returned_pages() - before.returned_pages();
    libipc::println!(
        "pageout_test: {pages} pages: {returned} pages out in {returns} returns, {} in in {} \
         requests, {} reclaimed clean",
        after.pageins - before.pageins,
        after.requests() - before.requests(),
        after.reclaimed - before.reclaimed
    );
    check!(returned >= pages / 2, "only {returned} pages went out");
    check!(
        returned > returns,
        "{returned} pages in {returns} returns: no clusters"
    );
    check!(
        after.pageins - before.pageins >= pages / 2,
        "only {} pages came back",
        after.pageins - before.pageins
    );
    check!(
        after.memory_errors == before.memory_errors,
        "{} memory errors",
        after.memory_errors - before.memory_errors
    );
    Ok(())
}

fn forked_memory_survives_pageout() -> Result<(), String> {
    // A parent's memory copied on write to a child, both checked after twice the free
    // memory went through the default pager.
    let free = statistics()?.free_frames;
    let pages = free / 2;
    let base =
        sys::vm_allocate(0, pages * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    fill(base, pages, 11);
    let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            // Push everything out with memory of its own, then check the inherited pages.
            let pressure = 3 * free / 2;
            let Ok(other) = sys::vm_allocate(0, pressure * PAGE, VM_ANYWHERE) else {
                sys::task_exit(1)
            };
            fill(other, pressure, 12);
            if first_wrong(base, pages, 11).is_some() {
                sys::task_exit(2)
            }
            fill(base, pages / 2, 13);
            let ok = first_wrong(base, pages / 2, 13).is_none()
                && first_wrong(other, pressure, 12).is_none();
            sys::task_exit(if ok { 0 } else { 3 })
        }
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status?
        }
    };
    check!(status == 0, "child status {status}");
    if let Some(page) = first_wrong(base, pages, 11) {
        return Err(format!("the parent's page {page} changed"));
    }
    // SAFETY: nothing lives in the region any more.
    unsafe { sys::vm_deallocate(base, pages * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

/// Fills and frees `pages` pages of fresh memory: everything else resident goes out.
fn push(pages: u64) -> Result<(), String> {
    let other = sys::vm_allocate(0, pages * PAGE, VM_ANYWHERE)
        .map_err(|e| format!("allocate {pages} pages: {e}"))?;
    fill(other, pages, 99);
    // SAFETY: nothing lives in the region.
    unsafe { sys::vm_deallocate(other, pages * PAGE) }.map_err(|e| format!("deallocate: {e}"))
}

fn pages_written_after_page_in_survive_fork_and_pageout() -> Result<(), String> {
    // Pages that come back from the default pager are clean; written again, only the page
    // tables know they are dirty. A fork write-protects them (their entries go): that
    // knowledge must reach the pages' records, or pageout drops them as clean and they come
    // back with the contents of before.
    let free = statistics()?.free_frames;
    let pages = free / 2;
    let base =
        sys::vm_allocate(0, pages * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    fill(base, pages, 21);
    push(3 * free / 2)?;
    if let Some(page) = first_wrong(base, pages, 21) {
        return Err(format!("page {page} lost its first contents"));
    }
    fill(base, pages, 22);
    let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => sys::task_exit(0),
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status?
        }
    };
    check!(status == 0, "child status {status}");
    push(3 * free / 2)?;
    if let Some(page) = first_wrong(base, pages, 22) {
        return Err(format!(
            "page {page} of {pages} came back with older contents"
        ));
    }
    // SAFETY: nothing lives in the region any more.
    unsafe { sys::vm_deallocate(base, pages * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

/// 400 small regions, each its own memory object with dirty pages, then memory pressure: the
/// pageout daemon must give each a default-pager object, and makes them a few at a time
/// (it passes over the others' pages until answers come); every page comes back intact.
fn many_objects_go_to_the_pager_a_few_at_a_time() -> Result<(), String> {
    const OBJECTS: u64 = 400;
    let deferred = || sys::host_info(HOST_CREATES_DEFERRED).unwrap_or(0);
    let (before, deferred_before) = (statistics()?, deferred());
    // Two pages each, a page apart, so no two regions share an object.
    let span = OBJECTS * 3 * PAGE;
    let base = sys::vm_allocate(0, span, VM_ANYWHERE).map_err(|e| format!("reserve: {e}"))?;
    // SAFETY: just reserved, untouched.
    unsafe { sys::vm_deallocate(base, span) }.map_err(|e| format!("deallocate: {e}"))?;
    for i in 0..OBJECTS {
        let at = base + i * 3 * PAGE;
        sys::vm_allocate(at, 2 * PAGE, 0).map_err(|e| format!("region {i}: {e}"))?;
        fill(at, 2, 100 + i);
    }
    let pressure = 2 * before.free_frames;
    let other = sys::vm_allocate(0, pressure * PAGE, VM_ANYWHERE)
        .map_err(|e| format!("allocate {pressure} pages: {e}"))?;
    fill(other, pressure, 9);
    let wrong = (0..OBJECTS).find(|&i| first_wrong(base + i * 3 * PAGE, 2, 100 + i).is_some());
    let missing = first_wrong(other, pressure, 9);
    // SAFETY: nothing lives in the regions any more.
    unsafe { sys::vm_deallocate(other, pressure * PAGE) }.map_err(|e| format!("free: {e}"))?;
    for i in 0..OBJECTS {
        // SAFETY: as above.
        unsafe { sys::vm_deallocate(base + i * 3 * PAGE, 2 * PAGE) }
            .map_err(|e| format!("free {i}: {e}"))?;
    }
    let after = statistics()?;
    let passed_over = deferred() - deferred_before;
    libipc::println!(
        "pageout_test: {OBJECTS} objects: {} pages out, pages of objects without a pager object \
         passed over {passed_over} times",
        after.returned_pages() - before.returned_pages()
    );
    check!(wrong.is_none(), "region {wrong:?} lost its contents");
    check!(
        missing.is_none(),
        "pressure page {missing:?} lost its contents"
    );
    check!(
        passed_over > 0,
        "{OBJECTS} objects went to the pager with no create ever held back"
    );
    check!(
        after.memory_errors == before.memory_errors,
        "{} memory errors",
        after.memory_errors - before.memory_errors
    );
    Ok(())
}

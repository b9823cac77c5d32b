//! Counters of the virtual-memory system, read through `host_info` and `vm_statistics`.

use core::sync::atomic::{AtomicU64, Ordering};

/// Page faults resolved (in user mode or for the kernel's access to user memory).
pub static FAULTS: AtomicU64 = AtomicU64::new(0);
/// Pages zero-filled on first touch.
pub static ZERO_FILLS: AtomicU64 = AtomicU64::new(0);
/// Pages copied on write from a backing object.
pub static COPIES_ON_WRITE: AtomicU64 = AtomicU64::new(0);
/// Backing objects merged into the single object in front of them.
pub static COLLAPSES: AtomicU64 = AtomicU64::new(0);
/// Shadows made at a write through an entry a fork left needing a copy, while the object
/// still had another user (a fork's copies made late: `AddressSpace::copy_now`).
pub static DELAYED_COPIES: AtomicU64 = AtomicU64::new(0);

/// Pages pagers supplied (data moved into objects).
pub static PAGEINS: AtomicU64 = AtomicU64::new(0);
/// Pages a pager said it had no data for (zero-filled).
pub static UNAVAILABLE: AtomicU64 = AtomicU64::new(0);
/// Clean pages the pageout daemon freed (their pager has them).
pub static RECLAIMED: AtomicU64 = AtomicU64::new(0);
/// Dirty pages returned to pagers (pageout).
pub static PAGEOUTS: AtomicU64 = AtomicU64::new(0);
/// `data_request`s sent, by length in pages (index 0 unused).
pub static REQUESTS_BY_PAGES: [AtomicU64; 17] = [const { AtomicU64::new(0) }; 17];
/// `data_return`s sent, by length in pages (index 0 unused).
pub static RETURNS_BY_PAGES: [AtomicU64; 17] = [const { AtomicU64::new(0) }; 17];
/// Pages asked for beyond the faulting one (read-ahead).
pub static PREFETCHED: AtomicU64 = AtomicU64::new(0);
/// Of those, pages later faulted on.
pub static PREFETCH_USED: AtomicU64 = AtomicU64::new(0);
/// Pager answers and calls the kernel refused (wrong offset or size, unknown object, bad
/// attributes, malformed).
pub static PAGER_REJECTS: AtomicU64 = AtomicU64::new(0);
/// Times the pageout daemon passed over a page because as many `default_pager.create`s as
/// it allows were unanswered (`pageout::MAX_CREATES_PENDING`) or memory was too short for
/// another.
pub static CREATES_DEFERRED: AtomicU64 = AtomicU64::new(0);
/// Page-table pages freed because their task had not run for a while (`kern::pmap_collect`);
/// faults build them again when it does.
pub static TABLES_COLLECTED: AtomicU64 = AtomicU64::new(0);
/// Faults on a page on its way to its pager, served from the page in flight.
pub static RETURN_HITS: AtomicU64 = AtomicU64::new(0);
/// `data_return`s a pager refused (their pages kept, dirty).
pub static RETURNS_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Waits for a pager that ended with no answer in time.
pub static PAGER_TIMEOUTS: AtomicU64 = AtomicU64::new(0);
/// Memory errors given to faulting threads (pager error, death or timeout).
pub static MEMORY_ERRORS: AtomicU64 = AtomicU64::new(0);

pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

//! Counters of the virtual-memory system, read through `host_info` (and, with the pager
//! work, a `vm_statistics` call).

use core::sync::atomic::{AtomicU64, Ordering};

/// Page faults resolved (in user mode or for the kernel's access to user memory).
pub static FAULTS: AtomicU64 = AtomicU64::new(0);
/// Pages zero-filled on first touch.
pub static ZERO_FILLS: AtomicU64 = AtomicU64::new(0);
/// Pages copied on write from a backing object.
pub static COPIES_ON_WRITE: AtomicU64 = AtomicU64::new(0);
/// Backing objects merged into the single object in front of them.
pub static COLLAPSES: AtomicU64 = AtomicU64::new(0);

pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

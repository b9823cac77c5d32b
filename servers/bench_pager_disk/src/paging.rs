//! What both benchmarks use: the kernel's and the default pager's counters, anonymous memory
//! written and read a word per page, and waiting until the disk is idle.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::{VmStatistics, VM_ANYWHERE};

use libipc::pager::BackingStoreInfo;
use libipc::rt::sleep_ms;
use libipc::sys;

pub const PAGE: u64 = 4096;

/// How long [`settle`] waits for the pager to finish its transfers, in milliseconds.
const SETTLE_LIMIT_MS: u64 = 10_000;

pub fn statistics() -> Result<VmStatistics, String> {
    sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))
}

/// The default pager's counters.
pub fn store() -> Result<BackingStoreInfo, String> {
    libipc::rt::selftest::backing_store_info()
}

pub fn allocate(pages: u64) -> Result<u64, String> {
    sys::vm_allocate(0, pages * PAGE, VM_ANYWHERE)
        .map_err(|e| format!("allocate {pages} pages: {e}"))
}

pub fn deallocate(base: u64, pages: u64) -> Result<(), String> {
    // SAFETY: the caller's region, which nothing uses any more.
    unsafe { sys::vm_deallocate(base, pages * PAGE) }.map_err(|e| format!("deallocate: {e}"))
}

pub fn behave(base: u64, pages: u64, strategy: u64) -> Result<(), String> {
    sys::vm_behavior_set(base, pages * PAGE, strategy).map_err(|e| format!("vm_behavior_set: {e}"))
}

/// The word written at the start of page `page` of a region: differs from page to page and
/// from zero, so a page that came back wrong (or zero-filled) shows.
pub fn value(page: u64) -> u64 {
    page.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a_0f0f_3c3c_9696
}

/// Writes [`value`] to the first word of page `page` of the region at `base`.
pub fn write(base: u64, page: u64) {
    // SAFETY: callers pass pages of a region they allocated read-write.
    unsafe { core::ptr::write_volatile((base + page * PAGE) as *mut u64, value(page)) };
}

/// The first word of page `page` of the region at `base`.
pub fn read(base: u64, page: u64) -> u64 {
    // SAFETY: as in `write`.
    unsafe { core::ptr::read_volatile((base + page * PAGE) as *const u64) }
}

/// Waits until the pager has no transfer in flight and the kernel returned and read nothing
/// since the last look (10 ms before): what the pageout daemon started is done, and counters
/// read now hold all of it.
pub fn settle() -> Result<(), String> {
    let mut last = statistics()?;
    for _ in 0..SETTLE_LIMIT_MS / 10 {
        sleep_ms(10);
        let now = statistics()?;
        let idle = store()?.transfers == 0;
        let quiet = now.returns() == last.returns()
            && now.device_reads == last.device_reads
            && now.device_writes == last.device_writes;
        if idle && quiet {
            return Ok(());
        }
        last = now;
    }
    Err(format!(
        "the disk is still busy after {SETTLE_LIMIT_MS} ms: {} transfers in flight",
        store()?.transfers
    ))
}

/// The time-stamp counter: under QEMU's `-icount shift=0` it counts guest instructions.
#[inline(always)]
pub fn timestamp() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; user mode may run it (the kernel leaves
    // CR4.TSD clear, else this faults and the task is ended).
    unsafe { core::arch::x86_64::_rdtsc() }
}

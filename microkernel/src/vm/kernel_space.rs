//! The kernel's address space and memory at boot: the frame allocator over the boot memory
//! map, kernel-owned page tables (a direct map of RAM plus the kernel image with per-section
//! protection), and the heap that backs `alloc`.

use super::frame_allocator::{FrameAllocator, FRAME_SIZE};
use super::heap::{HeapStats, LockedHeap, PageSource};
use super::page::Mappings;
use crate::arch::entry::kernel_image;
use crate::arch::paging::{self, flags, PageTables, TableMemory};
use crate::boot::{BootInfo, MemoryKind};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use spin::Mutex;

/// Where the frame allocator never looks: the first MiB (BIOS data, option ROMs, and later
/// the application processors' start-up page).
const LOW_MEMORY_END: u64 = 0x10_0000;

/// The least usable memory the kernel accepts (with `mem=`): page tables, the frame bitmap,
/// the heap and its self-tests need a few MiB.
pub const MINIMUM_MEMORY: u64 = 8 * 1024 * 1024;

static DIRECT_MAP_BASE: AtomicU64 = AtomicU64::new(0);
static NO_EXECUTE: AtomicBool = AtomicBool::new(false);
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);
static FRAMES: Mutex<Option<FrameAllocator>> = Mutex::new(None);

/// Every frame's mappings (the pv lists), made once the heap exists.
static MAPPINGS: Mutex<Option<Mappings>> = Mutex::new(None);

/// Runs `f` on the mapping lists.
pub fn with_mappings<R>(f: impl FnOnce(&mut Mappings) -> R) -> Option<R> {
    MAPPINGS.lock().as_mut().map(f)
}

#[global_allocator]
static HEAP: LockedHeap<FramePages> = LockedHeap::empty();

/// The kernel virtual address of physical address `phys`, through the direct map.
pub fn phys_to_virt(phys: u64) -> u64 {
    DIRECT_MAP_BASE.load(Ordering::Relaxed) + phys
}

/// One free frame, or `None` when memory is exhausted.
pub fn allocate_frame() -> Option<u64> {
    FRAMES.lock().as_mut()?.allocate()
}

/// Frames kept back from user demand (page faults, program loading, user page tables) so
/// the kernel's own allocations (its heap: tasks, threads, ports, messages) can still be
/// made when users have taken everything else; an exhausted user gets an error, the kernel
/// never an allocation failure it cannot report. Set at start-up by the memory's size
/// (`frame_allocator::reserves`).
static KERNEL_RESERVE: AtomicUsize = AtomicUsize::new(512);

/// Frames above the kernel's reserve kept for the VM-privileged task (the default pager),
/// which frees memory by taking pages in: it must not wait for memory itself.
static PAGER_RESERVE: AtomicUsize = AtomicUsize::new(256);

/// Frames not even the default pager may take.
const PAGER_EMERGENCY_FRAMES: usize = 16;

/// Frames not even the default pager may take.
pub fn pager_emergency_frames() -> usize {
    PAGER_EMERGENCY_FRAMES
}

/// The kernel's reserve, in frames.
pub fn kernel_reserve() -> usize {
    KERNEL_RESERVE.load(Ordering::Relaxed)
}

/// Whether the running task is VM-privileged (set on each entry from user mode while a
/// default pager exists; one kernel lock, one CPU: a single flag).
static PRIVILEGED: AtomicBool = AtomicBool::new(false);
/// Free frames below which the pageout daemon runs (set at start-up from the memory size).
static FREE_TARGET: AtomicU64 = AtomicU64::new(1024);
/// Work the kernel defers to its next exit to user mode, one bit each ([`PAGEOUT_WANTED`],
/// [`PAGERS_RELEASED`], [`MEMORY_WAITERS`]), in one word so that exit checks for any with one
/// load.
static DEFERRED: AtomicU8 = AtomicU8::new(0);
/// Set when an allocation leaves fewer than the target free: the daemon should run.
const PAGEOUT_WANTED: u8 = 1;
/// Set when a pager object's last reference went: its pager must be told.
const PAGERS_RELEASED: u8 = 2;
/// Set while threads wait for free memory (to be woken once there is some).
const MEMORY_WAITERS: u8 = 4;
/// Set when a device has finished transfers (its interrupt came): their replies go out.
const DEVICE_WORK: u8 = 8;

/// Set when a backing object with pages at the default pager can be collapsed
/// (`paged_collapse`).
const COLLAPSE_WANTED: u8 = 16;

/// Set when console input has come (readers are woken).
const CONSOLE_INPUT: u8 = 32;

/// Notes that console input has come.
pub fn want_console_input() {
    DEFERRED.fetch_or(CONSOLE_INPUT, Ordering::Release);
}

/// Whether console input has come, clearing the note.
#[inline(always)]
pub fn take_console_input() -> bool {
    DEFERRED.load(Ordering::Relaxed) & CONSOLE_INPUT != 0
        && DEFERRED.fetch_and(!CONSOLE_INPUT, Ordering::Acquire) & CONSOLE_INPUT != 0
}

/// Asks for the collapses noted in `paged_collapse`.
pub fn want_collapse() {
    DEFERRED.fetch_or(COLLAPSE_WANTED, Ordering::Release);
}

/// Whether collapses were noted, clearing the note.
#[inline(always)]
pub fn take_collapse_wanted() -> bool {
    DEFERRED.load(Ordering::Relaxed) & COLLAPSE_WANTED != 0
        && DEFERRED.fetch_and(!COLLAPSE_WANTED, Ordering::Acquire) & COLLAPSE_WANTED != 0
}

/// Notes that devices have finished transfers to reply to.
pub fn want_device_work() {
    DEFERRED.fetch_or(DEVICE_WORK, Ordering::Release);
}

/// Whether devices have finished transfers, clearing the note.
#[inline(always)]
pub fn take_device_work() -> bool {
    DEFERRED.load(Ordering::Relaxed) & DEVICE_WORK != 0
        && DEFERRED.fetch_and(!DEVICE_WORK, Ordering::Acquire) & DEVICE_WORK != 0
}

/// Notes whether threads wait for free memory.
pub fn note_memory_waiters(waiting: bool) {
    if waiting {
        DEFERRED.fetch_or(MEMORY_WAITERS, Ordering::Relaxed);
    } else {
        DEFERRED.fetch_and(!MEMORY_WAITERS, Ordering::Relaxed);
    }
}

/// Whether any deferred work waits (the pageout daemon, pager objects to terminate, threads
/// waiting for memory).
#[inline(always)]
pub fn deferred_work() -> bool {
    DEFERRED.load(Ordering::Relaxed) != 0
}

/// Notes that pager objects wait to be terminated.
pub fn note_pagers_released() {
    DEFERRED.fetch_or(PAGERS_RELEASED, Ordering::Release);
}

/// Whether pager objects wait to be terminated (cheap: checked on every exit).
#[inline(always)]
pub fn pagers_released() -> bool {
    DEFERRED.load(Ordering::Relaxed) & PAGERS_RELEASED != 0
}

/// Whether pager objects wait to be terminated, clearing the note.
pub fn take_pagers_released() -> bool {
    DEFERRED.fetch_and(!PAGERS_RELEASED, Ordering::Acquire) & PAGERS_RELEASED != 0
}

/// Marks the task now running VM-privileged or not.
pub fn set_privileged(privileged: bool) {
    PRIVILEGED.store(privileged, Ordering::Relaxed);
}

/// Whether the task now running is marked VM-privileged (`set_privileged`).
pub fn privileged() -> bool {
    PRIVILEGED.load(Ordering::Relaxed)
}

/// Free frames the pageout daemon keeps.
pub fn free_target() -> usize {
    FREE_TARGET.load(Ordering::Relaxed) as usize
}

/// Whether the pageout daemon should run (and clears the request).
#[inline(always)]
pub fn take_pageout_wanted() -> bool {
    DEFERRED.load(Ordering::Relaxed) & PAGEOUT_WANTED != 0
        && DEFERRED.fetch_and(!PAGEOUT_WANTED, Ordering::Relaxed) & PAGEOUT_WANTED != 0
}

/// Asks for the pageout daemon.
pub fn want_pageout() {
    DEFERRED.fetch_or(PAGEOUT_WANTED, Ordering::Relaxed);
}

/// Free frames now.
pub fn free_frames() -> usize {
    FRAMES.lock().as_ref().map_or(0, |f| f.free_frames())
}

/// Whether free memory is too short to make a task (`task_fork`, `task_spawn` fail with
/// `ResourceShortage`, and callers retry): below half the pageout daemon's slack above the
/// users' floor. A task's kernel records come from the kernel's reserve; with thousands of
/// tasks made while memory is that short, the kernel's growth eats the reserve the default
/// pager needs to page (NONAIM at 1,000 users in 128 MiB: the pager starved).
///
/// Also refused while the heap and the tasks' page tables hold more than
/// `libipc::abi::syscall::KERNEL_MEMORY_BUDGET_PERCENT` of memory: each task costs some of both
/// that pageout cannot take back.
///
/// The free frames counted are those not promised already to tasks made and not yet run:
/// `libipc::abi::syscall::FRAMES_PER_PROMISED_TABLE` for each table page they have yet to
/// build (`pmap::promised_tables`).
///
/// `collect` runs first when memory is short, and the check is made again after it: it frees
/// what can be had back at once (the kernel's `pmap_collect` under pressure: the page tables
/// of every task not running). Only a refusal after it is reported.
pub fn memory_too_short_for_new_tasks(collect: impl FnOnce()) -> bool {
    let floor = user_floor();
    let slack = free_target().saturating_sub(floor);
    // The free frames new tasks need: the line, and what those made already will take.
    let needed = || {
        floor
            + slack / 2
            + libipc::abi::syscall::FRAMES_PER_PROMISED_TABLE as usize
                * super::pmap::promised_tables()
    };
    let short = || free_frames() < needed() || kernel_memory_over_budget();
    if !short() {
        return false;
    }
    collect();
    if !short() {
        return false;
    }
    report_refusal(needed());
    true
}

/// The tick of the last refusal reported (one line a second at most).
static REFUSAL_REPORTED: AtomicU64 = AtomicU64::new(0);
/// Refusals since the last line.
static REFUSALS: AtomicU64 = AtomicU64::new(0);

/// Says why new tasks are refused, once a second at most, with how many were since: free
/// frames against the line `needed`, and the heap and page tables against the budget.
fn report_refusal(needed: usize) {
    let refused = REFUSALS.fetch_add(1, Ordering::Relaxed) + 1;
    let now = crate::arch::percpu::ticks();
    let last = REFUSAL_REPORTED.load(Ordering::Relaxed);
    if last != 0 && now < last + crate::arch::apic::HZ {
        return;
    }
    REFUSAL_REPORTED.store(now.max(1), Ordering::Relaxed);
    REFUSALS.store(0, Ordering::Relaxed);
    let heap = heap_stats().map_or(0, |h| h.bytes_in_use.div_ceil(FRAME_SIZE as usize));
    let tables = super::pmap::table_frames();
    let promised = super::pmap::promised_tables();
    let total = frame_counts().1;
    log::warn!(
        "vm: {refused} new tasks refused: {} frames free (new tasks need {needed}); heap \
         {heap} pages in use and page tables {tables} pages, {promised} more promised to new \
         tasks: {} % of memory (budget {} %)",
        free_frames(),
        (heap + tables + promised) * 100 / total.max(1),
        libipc::abi::syscall::KERNEL_MEMORY_BUDGET_PERCENT
    );
}

/// Whether the heap and the tasks' page tables hold more memory than the kernel's budget.
/// The heap counts what is in use, not the pages it keeps: its free objects serve the next
/// task's records (counted as held, a run of NONAIM steps left the budget half spent on
/// free objects and the 1,000-user step failed 1,987 jobs for want of forks). The tables
/// count those new tasks will build and have not yet (`pmap::promised_tables`).
pub fn kernel_memory_over_budget() -> bool {
    let heap = heap_stats().map_or(0, |h| h.bytes_in_use.div_ceil(FRAME_SIZE as usize));
    super::frame_allocator::kernel_memory_over_budget(
        heap,
        super::pmap::table_frames() + super::pmap::promised_tables(),
        frame_counts().1,
    )
}

/// The fewest free frames at which an ordinary task may still allocate.
pub fn user_floor() -> usize {
    kernel_reserve() + PAGER_RESERVE.load(Ordering::Relaxed)
}

/// A frame for user memory or user page tables, or `None` when only the reserves are left
/// (the kernel's; and the default pager's, unless the running task is the default pager).
/// Dipping below the free target asks for the pageout daemon.
pub fn allocate_user_frame() -> Option<u64> {
    let mut frames = FRAMES.lock();
    let frames = frames.as_mut()?;
    if !user_may_allocate(frames) {
        return None;
    }
    frames.allocate()
}

/// As [`allocate_user_frame`], for a page-table page: a frame that holds only zeros if one
/// was freed so ([`free_clean_frame`]), and whether it does.
pub fn allocate_user_table_frame() -> Option<(u64, bool)> {
    let mut frames = FRAMES.lock();
    let frames = frames.as_mut()?;
    if !user_may_allocate(frames) {
        return None;
    }
    frames.allocate_clean()
}

/// Returns frame `phys`, which holds only zeros (a page-table page emptied entry by entry),
/// to be handed to a new page table without clearing it.
pub fn free_clean_frame(phys: u64) -> Result<(), super::frame_allocator::FreeError> {
    FRAMES
        .lock()
        .as_mut()
        .expect("frame allocator not set up")
        .free_clean(phys)
}

/// The cleared frames kept apart for page tables: how many, or the first that holds a
/// word other than zero (a self-test's check that teardown empties every entry).
pub fn cleared_frames_hold_only_zeros() -> Result<usize, u64> {
    let frames = FRAMES.lock();
    let Some(frames) = frames.as_ref() else {
        return Ok(0);
    };
    for frame in frames.clean_list() {
        // SAFETY: a free frame, which nobody writes while the allocator's lock is held
        // (taking it needs the lock), mapped by the direct map.
        let words = unsafe { &*(phys_to_virt(frame) as *const [u64; 512]) };
        if words.iter().any(|&w| w != 0) {
            return Err(frame);
        }
    }
    Ok(frames.clean_frames())
}

/// Whether a user allocation may take a frame now (see [`allocate_user_frame`]); asks for
/// the pageout daemon when memory runs below its target.
fn user_may_allocate(frames: &FrameAllocator) -> bool {
    let free = frames.free_frames();
    if free < free_target() {
        want_pageout();
    }
    let floor = if PRIVILEGED.load(Ordering::Relaxed) {
        // The default pager may go into the kernel's reserve too (all but the last few
        // frames): the kernel's own growth (thousands of tasks' records) can eat into the
        // reserve, and the pager that frees memory must still get the pages it works with
        // (the tables that map the pages returned to it).
        PAGER_EMERGENCY_FRAMES
    } else {
        user_floor()
    };
    free > floor
}

/// Frames in device runs ([`allocate_device_run`]), for reports.
static DEVICE_FRAMES: AtomicUsize = AtomicUsize::new(0);

/// Frames held for devices now (their buffers and queues).
pub fn device_frames() -> usize {
    DEVICE_FRAMES.load(Ordering::Relaxed)
}

/// `count` contiguous frames aligned to `align` bytes (for DMA).
pub fn allocate_contiguous(count: usize, align: u64) -> Option<u64> {
    FRAMES.lock().as_mut()?.allocate_contiguous(count, align)
}

/// [`allocate_contiguous`] for a device's buffers or queues, counted as theirs.
pub fn allocate_device_run(count: usize, align: u64) -> Option<u64> {
    let run = allocate_contiguous(count, align)?;
    DEVICE_FRAMES.fetch_add(count, Ordering::Relaxed);
    Some(run)
}

/// Returns a run from [`allocate_device_run`].
pub fn free_device_run(phys: u64, count: usize) -> Result<(), super::frame_allocator::FreeError> {
    free_contiguous(phys, count)?;
    DEVICE_FRAMES.fetch_sub(count, Ordering::Relaxed);
    Ok(())
}

/// Returns a frame (and, if it held an object's page, takes it off the page queue).
pub fn free_frame(phys: u64) -> Result<(), super::frame_allocator::FreeError> {
    with_mappings(|m| m.clear_owner(phys / FRAME_SIZE));
    FRAMES
        .lock()
        .as_mut()
        .expect("frame allocator not set up")
        .free(phys)
}

/// Returns a run from [`allocate_contiguous`].
pub fn free_contiguous(phys: u64, count: usize) -> Result<(), super::frame_allocator::FreeError> {
    FRAMES
        .lock()
        .as_mut()
        .expect("frame allocator not set up")
        .free_contiguous(phys, count)
}

/// (free, managed) frame counts.
pub fn frame_counts() -> (usize, usize) {
    FRAMES
        .lock()
        .as_ref()
        .map_or((0, 0), |f| (f.free_frames(), f.total_frames()))
}

/// Heap statistics, once the heap exists.
pub fn heap_stats() -> Option<HeapStats> {
    HEAP.stats()
}

/// The no-execute page bit, or 0 when the CPU has none.
pub fn no_execute_bit() -> u64 {
    if NO_EXECUTE.load(Ordering::Relaxed) {
        flags::NO_EXECUTE
    } else {
        0
    }
}

/// Physical address of the kernel's PML4.
pub fn kernel_root() -> u64 {
    KERNEL_ROOT.load(Ordering::Relaxed)
}

/// Page tables reached through the direct map; new tables come from the frame allocator.
pub struct DirectMapTables;

impl TableMemory for DirectMapTables {
    fn table(&mut self, phys: u64) -> &mut [u64; 512] {
        // SAFETY: page-table pages are direct-mapped, 4096-aligned frames of these tables, edited
        // only through this walker (single-threaded), so no other reference to the page exists.
        unsafe { &mut *(phys_to_virt(phys) as *mut [u64; 512]) }
    }

    fn allocate_table(&mut self) -> Option<u64> {
        let frame = allocate_frame()?;
        // SAFETY: a frame just taken from the allocator belongs to nobody else and is mapped.
        unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, FRAME_SIZE as usize) };
        Some(frame)
    }
}

/// The heap's pages: frames seen through the direct map.
struct FramePages;

impl PageSource for FramePages {
    /// A page through the direct map; a larger run in the kernel map, of whatever frames are
    /// free (physically contiguous runs are scarce once memory has been paged for a while).
    fn allocate_pages(&mut self, count: usize) -> Option<NonNull<u8>> {
        if count > 1 {
            return super::kernel_map::allocate(count);
        }
        NonNull::new(phys_to_virt(allocate_frame()?) as *mut u8)
    }

    /// A page through the direct map; a slab of several pages in the kernel map, aligned to
    /// its size there.
    fn allocate_aligned_pages(&mut self, count: usize) -> Option<NonNull<u8>> {
        if count > 1 {
            return super::kernel_map::allocate_aligned(count, count);
        }
        self.allocate_pages(1)
    }

    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, count: usize) {
        if super::kernel_map::contains(ptr.as_ptr() as u64) {
            super::kernel_map::free(ptr, count);
            return;
        }
        let phys = ptr.as_ptr() as u64 - DIRECT_MAP_BASE.load(Ordering::Relaxed);
        if let Err(e) = free_contiguous(phys, count) {
            log::error!("heap returned pages it does not own at {phys:#x}: {e}");
        }
    }
}

/// What `init` set up, for the boot report.
#[derive(Clone, Copy, Debug)]
pub struct MemorySummary {
    pub usable: u64,
    pub free: u64,
    pub kernel: u64,
    pub modules: u64,
    pub bitmap: u64,
    pub page_tables: u64,
}

fn maps_as_ram(kind: MemoryKind) -> bool {
    matches!(
        kind,
        MemoryKind::Usable
            | MemoryKind::BootloaderReclaimable
            | MemoryKind::AcpiReclaimable
            | MemoryKind::AcpiNvs
            | MemoryKind::KernelAndModules
    )
}

/// Sets up frames, page tables and heap from the boot memory map, and switches to the
/// kernel's own page tables. `nx`: the CPU supports no-execute pages.
pub fn init(boot: &BootInfo, nx: bool) -> MemorySummary {
    DIRECT_MAP_BASE.store(boot.hhdm_offset(), Ordering::Relaxed);
    NO_EXECUTE.store(nx, Ordering::Relaxed);
    let map = boot.memory_map();
    let usable = boot.bytes_of(MemoryKind::Usable);
    if usable < MINIMUM_MEMORY {
        panic!(
            "only {} KiB of usable memory (mem= or -m too small?): the kernel needs at least {} MiB",
            usable / 1024,
            MINIMUM_MEMORY >> 20
        );
    }

    // The frame bitmap goes in the first usable region above low memory that holds it; below
    // 4 GiB, because that is all the PVH boot tables map.
    let max_phys = map
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                MemoryKind::Usable | MemoryKind::BootloaderReclaimable
            )
        })
        .map(|r| r.end)
        .max()
        .unwrap_or(0);
    let words = FrameAllocator::storage_words(max_phys);
    let bitmap_bytes = (words as u64 * 8).next_multiple_of(FRAME_SIZE);
    let bitmap_phys = map
        .iter()
        .filter(|r| r.kind == MemoryKind::Usable)
        .map(|r| (r.start.max(LOW_MEMORY_END), r.end))
        .find(|&(start, end)| start + bitmap_bytes <= end && start + bitmap_bytes <= 1 << 32)
        .map(|(start, _)| start)
        .unwrap_or_else(|| panic!("no usable region holds the {bitmap_bytes}-byte frame bitmap"));
    let storage =
        // SAFETY: [bitmap_phys, +bitmap_bytes) is direct-mapped, u64-aligned usable RAM that
        // nothing else uses (it is removed from the allocator below).
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(bitmap_phys) as *mut u64, words) };
    let mut frames = FrameAllocator::new(storage, max_phys);
    for r in map.iter().filter(|r| r.kind == MemoryKind::Usable) {
        if r.end > LOW_MEMORY_END {
            frames.add_free_range(r.start.max(LOW_MEMORY_END), r.end);
        }
    }
    frames.remove_range(bitmap_phys, bitmap_phys + bitmap_bytes);
    // The reserves and the daemon's slack above them, by the memory's size.
    let reserves = super::frame_allocator::reserves(frames.total_frames());
    KERNEL_RESERVE.store(reserves.kernel, Ordering::Relaxed);
    PAGER_RESERVE.store(reserves.pager, Ordering::Relaxed);
    FREE_TARGET.store(reserves.target as u64, Ordering::Relaxed);
    *FRAMES.lock() = Some(frames);
    let free_before_tables = frame_counts().0;

    // The kernel's page tables: the direct map, then the image section by section.
    let nx_bit = if nx { flags::NO_EXECUTE } else { 0 };
    let mut memory = DirectMapTables;
    let mut tables =
        PageTables::create(&mut memory).expect("no memory for the kernel's page tables");
    for r in map.iter().filter(|r| maps_as_ram(r.kind)) {
        let start = r.start & !(paging::PAGE_SIZE - 1);
        let end = r.end.next_multiple_of(paging::PAGE_SIZE);
        tables
            .map_range(
                phys_to_virt(start),
                start,
                end - start,
                flags::WRITABLE | flags::GLOBAL | nx_bit,
            )
            .unwrap_or_else(|e| panic!("direct map of {start:#x}..{end:#x}: {e}"));
    }
    let image = kernel_image();
    let sections = [
        (image.start, image.rodata, flags::GLOBAL),
        (image.rodata, image.data, flags::GLOBAL | nx_bit),
        (
            image.data,
            image.end,
            flags::GLOBAL | flags::WRITABLE | nx_bit,
        ),
    ];
    // The lowest pages of the boot stack and of the collocated servers' stack stay
    // unmapped: an overflow faults there, and the fault becomes a double fault handled on
    // its own stack instead of silent corruption.
    let guard_pages = [
        crate::arch::entry::boot_stack().0,
        crate::arch::entry::server_stack().0,
    ];
    for (start, end, section_flags) in sections {
        for virt in (start..end).step_by(paging::PAGE_SIZE as usize) {
            if guard_pages.contains(&virt) {
                continue;
            }
            let phys = boot.kernel_phys() + (virt - image.start);
            tables
                .map_page(virt, phys, section_flags)
                .unwrap_or_else(|e| panic!("kernel image mapping at {virt:#x}: {e}"));
        }
    }
    let root = tables.root();
    KERNEL_ROOT.store(root, Ordering::Relaxed);
    // Before any task's tables copy the kernel half, and before the heap uses it.
    super::kernel_map::init(root);
    // SAFETY: the new tables map the direct map (boot information, bitmap, page tables) and the
    // whole kernel image with its boot stack at the same virtual addresses as the boot tables.
    unsafe { paging::activate(root) };
    let page_tables = (free_before_tables - frame_counts().0) as u64 * FRAME_SIZE;

    // Whatever the boot loader used is ours now: the boot information has been copied.
    {
        let mut guard = FRAMES.lock();
        let frames = guard.as_mut().expect("frame allocator");
        for r in map
            .iter()
            .filter(|r| r.kind == MemoryKind::BootloaderReclaimable)
        {
            frames.add_free_range(r.start.max(LOW_MEMORY_END), r.end);
        }
    }
    HEAP.init(FramePages);
    // A record per frame that can be mapped into a task: RAM the allocator manages and the
    // boot modules (program text is mapped straight from the boot archive).
    let mappable_end = map
        .iter()
        .filter(|r| maps_as_ram(r.kind))
        .map(|r| r.end)
        .max()
        .unwrap_or(0)
        .max(max_phys);
    match Mappings::new((mappable_end / FRAME_SIZE) as usize) {
        Ok(mappings) => *MAPPINGS.lock() = Some(mappings),
        Err(_) => panic!(
            "no memory for the page records of {} MiB",
            mappable_end >> 20
        ),
    }

    let modules = boot.modules().iter().map(|m| m.len).sum();
    let summary = MemorySummary {
        usable,
        free: frame_counts().0 as u64 * FRAME_SIZE,
        kernel: image.end - image.start,
        modules,
        bitmap: bitmap_bytes,
        page_tables,
    };
    *BOOT_SUMMARY.lock() = Some(summary);
    summary
}

/// What `init` found, kept for reports.
static BOOT_SUMMARY: spin::Mutex<Option<MemorySummary>> = spin::Mutex::new(None);

/// What start-up found and set aside ([`init`]'s summary), once it has run.
pub fn boot_summary() -> Option<MemorySummary> {
    *BOOT_SUMMARY.lock()
}

/// Maps device registers at `[phys, phys + len)` uncached into the direct-map area and returns
/// their virtual address.
pub fn map_mmio(phys: u64, len: u64) -> u64 {
    map_device_memory(phys, len)
}

/// Maps `[phys, phys + len)` uncached into the direct-map area, leaving pages that are mapped
/// already (RAM, or registers mapped before) as they are, and returns the virtual address of
/// `phys`. For device registers and firmware tables outside RAM.
pub fn map_device_memory(phys: u64, len: u64) -> u64 {
    let start = phys & !(paging::PAGE_SIZE - 1);
    let end = (phys + len.max(1)).next_multiple_of(paging::PAGE_SIZE);
    let mut memory = DirectMapTables;
    let mut tables = PageTables::new(kernel_root(), &mut memory);
    let mmio = flags::WRITABLE | flags::NO_CACHE | flags::WRITE_THROUGH | flags::GLOBAL;
    for page in (start..end).step_by(paging::PAGE_SIZE as usize) {
        if tables.translate(phys_to_virt(page)).is_some() {
            continue;
        }
        tables
            .map_page(phys_to_virt(page), page, mmio)
            .unwrap_or_else(|e| panic!("mapping device memory at {page:#x}: {e}"));
    }
    phys_to_virt(phys)
}

/// The physical address behind `virt`, a kernel heap or direct-map address. A heap block of
/// more than a page lies in the kernel map, its pages in frames of their own: only the
/// bytes within one page of such a block are physically contiguous.
pub fn direct_map_phys(virt: u64) -> u64 {
    if let Some(phys) = super::kernel_map::translate(virt) {
        return phys;
    }
    virt - DIRECT_MAP_BASE.load(Ordering::Relaxed)
}

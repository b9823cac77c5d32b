//! Kernel virtual memory for the heap's large blocks: a run of pages is made of single
//! frames, wherever they are, mapped side by side in an area of the kernel's address space.
//!
//! Before this, a block larger than a page (a big task's IPC space, the port and task tables
//! of thousands of tasks) needed that many physically contiguous frames. After hours of
//! paging, free memory is scattered: NONAIM at a thousand users had 400 frames free and no
//! run of 64, so the default pager's IPC space could not grow and every new object was
//! refused. Here any free frames will do.
//!
//! The area is one top-level slot of the kernel half ([`BASE`], [`PAGES`] pages). Its
//! page-directory-pointer table is made at boot ([`init`], before any task's page tables
//! copy the kernel half), so tables made later under it are seen by every address space.
//! Which pages of the area are in use is a bitmap ([`Runs`], host-tested); the frames are
//! found again through the page tables when a block is freed, and its translations are
//! dropped on every CPU (`tlb::flush_kernel_page`).

/// Where the area starts: top-level slot 448 of the kernel half, clear of the direct map
/// (slot 256 on), the device mappings in it and the kernel image (slot 511).
pub const BASE: u64 = 0xffff_e000_0000_0000;

/// Pages in the area: 1 GiB.
pub const PAGES: usize = 1 << 18;

const WORDS: usize = PAGES / 64;

/// Which pages of the area are in use, one bit each, and a page below which none is free.
pub struct Runs {
    used: [u64; WORDS],
    hint: usize,
}

impl Runs {
    pub const fn new() -> Runs {
        Runs {
            used: [0; WORDS],
            hint: 0,
        }
    }

    fn is_used(&self, page: usize) -> bool {
        self.used[page / 64] & (1 << (page % 64)) != 0
    }

    fn set(&mut self, start: usize, count: usize, used: bool) {
        for page in start..start + count {
            if used {
                self.used[page / 64] |= 1 << (page % 64);
            } else {
                self.used[page / 64] &= !(1 << (page % 64));
            }
        }
    }

    /// Takes the first run of `count` free pages: its first page. `None` if no run is long
    /// enough. First fit keeps the area packed at its start, so the page tables mapping it
    /// (made once per 2 MiB, never freed) stay few: a next fit from where the last search
    /// ended walked all of the area, a 1 MiB block at a time, and left a table page behind
    /// for every 2 MiB it passed (the fuzzer found 316 of them).
    pub fn allocate(&mut self, count: usize) -> Option<usize> {
        self.allocate_aligned(count, 1)
    }

    /// As [`Runs::allocate`], the run starting at a multiple of `align` pages (a power of two
    /// up to 64: the heap's slabs are aligned to their size).
    pub fn allocate_aligned(&mut self, count: usize, align: usize) -> Option<usize> {
        if count == 0 || count > PAGES || !align.is_power_of_two() || align > 64 {
            return None;
        }
        // No page below the hint is free, so searching from it is first fit.
        let start = self.first_fit(self.hint, PAGES, count, align)?;
        self.set(start, count, true);
        if start == self.hint {
            self.hint = start + count;
        }
        Some(start)
    }

    /// The first run of `count` free pages starting in `[from, to)` at a multiple of `align`
    /// (and ending by [`PAGES`]).
    fn first_fit(&self, from: usize, to: usize, count: usize, align: usize) -> Option<usize> {
        let mut page = from.next_multiple_of(align);
        let mut run = 0;
        while page < PAGES && (page - run) < to {
            if run == 0 && page.is_multiple_of(64) && self.used[page / 64] == !0 {
                // A full word: no run starts in it.
                page += 64;
                continue;
            }
            if self.is_used(page) {
                run = 0;
                page = (page + 1).next_multiple_of(align);
                continue;
            }
            run += 1;
            if run == count {
                return Some(page + 1 - count);
            }
            page += 1;
        }
        None
    }

    /// Gives back the run of `count` pages at `start`. `false` (nothing changed) unless every
    /// page of it was in use.
    pub fn free(&mut self, start: usize, count: usize) -> bool {
        let Some(end) = start.checked_add(count).filter(|&end| end <= PAGES) else {
            return false;
        };
        if count == 0 || !(start..end).all(|page| self.is_used(page)) {
            return false;
        }
        self.set(start, count, false);
        self.hint = self.hint.min(start);
        true
    }

    /// Pages in use.
    pub fn used(&self) -> usize {
        self.used.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl Default for Runs {
    fn default() -> Self {
        Runs::new()
    }
}

/// Whether `virt` lies in the area.
pub fn contains(virt: u64) -> bool {
    (BASE..BASE + (PAGES as u64) * 4096).contains(&virt)
}

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::{contains, Runs, BASE};
    use crate::arch::paging::{flags, PageTables};
    use crate::vm::kernel_space::{self, DirectMapTables};
    use core::ptr::NonNull;
    use spin::Mutex;

    const PAGE: u64 = 4096;

    static AREA: Mutex<Runs> = Mutex::new(Runs::new());

    /// Makes the area's top-level entry in the kernel's tables `root` (before any task's
    /// tables copy the kernel half). Panics without memory for it: this is boot.
    pub fn init(root: u64) {
        let mut memory = DirectMapTables;
        let mut tables = PageTables::new(root, &mut memory);
        // Mapping a page makes the tables down to it; unmapping leaves them.
        let frame = kernel_space::allocate_frame().expect("a frame for the kernel map's tables");
        tables
            .map_page(BASE, frame, flags::WRITABLE | flags::GLOBAL)
            .unwrap_or_else(|e| panic!("the kernel map's tables: {e}"));
        tables.unmap_range(BASE, BASE + PAGE, |_, _, _| {});
        flush(BASE);
        let _ = kernel_space::free_contiguous(frame, 1);
    }

    /// `count` pages, each a frame of its own, mapped side by side and writable: their
    /// address. `None` (nothing taken) without enough frames or room.
    pub fn allocate(count: usize) -> Option<NonNull<u8>> {
        allocate_aligned(count, 1)
    }

    /// As [`allocate`], at an address that is a multiple of `align` pages (a power of two
    /// up to 64).
    pub fn allocate_aligned(count: usize, align: usize) -> Option<NonNull<u8>> {
        let mut area = AREA.lock();
        let first = area.allocate_aligned(count, align)?;
        let start = BASE + first as u64 * PAGE;
        let mut memory = DirectMapTables;
        let mut tables = PageTables::new(kernel_space::kernel_root(), &mut memory);
        let page_flags = flags::WRITABLE | flags::GLOBAL | kernel_space::no_execute_bit();
        for i in 0..count as u64 {
            let mapped = kernel_space::allocate_frame()
                .map(|frame| (frame, tables.map_page(start + i * PAGE, frame, page_flags)));
            match mapped {
                Some((_, Ok(()))) => {}
                failed => {
                    if let Some((frame, Err(_))) = failed {
                        let _ = kernel_space::free_contiguous(frame, 1);
                    }
                    unmap(&mut tables, start, start + i * PAGE);
                    area.free(first, count);
                    return None;
                }
            }
        }
        NonNull::new(start as *mut u8)
    }

    /// `count` pages as [`allocate`] makes them, with one more page below them left
    /// unmapped, so that running off their bottom faults (a stack's guard page): the
    /// address of the first mapped page. Never freed (it is for stacks kept for good).
    pub fn allocate_guarded(count: usize) -> Option<NonNull<u8>> {
        let guard = allocate(count + 1)?;
        let start = guard.as_ptr() as u64;
        let _area = AREA.lock();
        let mut memory = DirectMapTables;
        let mut tables = PageTables::new(kernel_space::kernel_root(), &mut memory);
        unmap(&mut tables, start, start + PAGE);
        NonNull::new((start + PAGE) as *mut u8)
    }

    /// Gives back `count` pages from [`allocate`] at `ptr`: unmapped, their frames freed.
    pub fn free(ptr: NonNull<u8>, count: usize) {
        let start = ptr.as_ptr() as u64;
        let first = ((start - BASE) / PAGE) as usize;
        let mut area = AREA.lock();
        let mut memory = DirectMapTables;
        let mut tables = PageTables::new(kernel_space::kernel_root(), &mut memory);
        unmap(&mut tables, start, start + count as u64 * PAGE);
        if !area.free(first, count) {
            log::error!("kernel map: freed {count} pages at {start:#x} that were not in use");
        }
    }

    /// Unmaps `[start, end)`, freeing the frames and flushing the TLB entries.
    fn unmap(tables: &mut PageTables<'_, DirectMapTables>, start: u64, end: u64) {
        tables.unmap_range(start, end, |virt, frame, _| {
            flush(virt);
            if let Err(e) = kernel_space::free_contiguous(frame, 1) {
                log::error!("kernel map: frame {frame:#x} at {virt:#x}: {e}");
            }
        });
    }

    /// The physical address behind `virt` in the area.
    pub fn translate(virt: u64) -> Option<u64> {
        if !contains(virt) {
            return None;
        }
        let _area = AREA.lock();
        let mut memory = DirectMapTables;
        let mut tables = PageTables::new(kernel_space::kernel_root(), &mut memory);
        tables.translate(virt).map(|(phys, _)| phys)
    }

    /// Drops the translation of `virt` from every CPU's TLB.
    fn flush(virt: u64) {
        crate::arch::tlb::flush_kernel_page(virt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_first_fit_and_do_not_overlap() {
        let mut runs = Box::new(Runs::new());
        assert_eq!(runs.allocate(3), Some(0));
        assert_eq!(runs.allocate(64), Some(3));
        assert_eq!(runs.allocate(1), Some(67));
        assert_eq!(runs.used(), 68);
        // A hole of 3 at the start: too small for 4, taken by 2.
        assert!(runs.free(0, 3));
        assert_eq!(runs.allocate(4), Some(68));
        assert_eq!(runs.allocate(2), Some(0));
        assert_eq!(runs.allocate(PAGES), None);
        assert_eq!(runs.used(), 71);
    }

    #[test]
    fn a_block_freed_and_taken_again_reuses_the_same_pages() {
        // What the page tables cost: a block allocated and freed over and over must not walk
        // the area (each new 2 MiB of it costs a table page that is never freed).
        let mut runs = Box::new(Runs::new());
        let keep = runs.allocate(8).unwrap();
        let block = runs.allocate(256).unwrap();
        for _ in 0..10_000 {
            assert!(runs.free(block, 256));
            assert_eq!(runs.allocate(256), Some(block));
        }
        assert_eq!(runs.used(), 264);
        assert!(runs.free(keep, 8));
        assert_eq!(runs.allocate(4), Some(keep));
    }

    #[test]
    fn the_search_wraps_to_holes_behind_the_hint() {
        let mut runs = Box::new(Runs::new());
        let a = runs.allocate(PAGES - 10).unwrap();
        assert_eq!(runs.allocate(10), Some(PAGES - 10));
        assert_eq!(runs.allocate(1), None);
        assert!(runs.free(a + 100, 200));
        assert_eq!(runs.allocate(150), Some(a + 100));
        assert_eq!(runs.allocate(51), None);
        assert_eq!(runs.allocate(50), Some(a + 250));
        assert_eq!(runs.used(), PAGES);
    }

    #[test]
    fn bad_frees_change_nothing() {
        let mut runs = Box::new(Runs::new());
        assert_eq!(runs.allocate(8), Some(0));
        assert!(!runs.free(4, 8), "half of it was never in use");
        assert!(!runs.free(0, 0));
        assert!(!runs.free(PAGES - 1, 2));
        assert_eq!(runs.used(), 8);
        assert!(runs.free(0, 8));
        assert!(!runs.free(0, 8), "freed twice");
        assert_eq!(runs.used(), 0);
        assert_eq!(runs.allocate(0), None);
    }

    #[test]
    fn aligned_runs_start_at_their_alignment() {
        let mut runs = Box::new(Runs::new());
        assert_eq!(runs.allocate(3), Some(0));
        assert_eq!(runs.allocate_aligned(4, 4), Some(4));
        assert_eq!(runs.allocate(2), Some(8));
        // Pages 3 and 10 to 15 are free, but no run of 8 starts at a multiple of 8 before 16.
        assert_eq!(runs.allocate_aligned(8, 8), Some(16));
        // First fit: page 3 for one page, then the hole at 4 for an aligned four.
        assert_eq!(runs.allocate(1), Some(3));
        assert!(runs.free(4, 4));
        assert_eq!(runs.allocate_aligned(4, 4), Some(4));
        assert_eq!(runs.allocate(PAGES - 24), Some(24));
        // Left: 10 to 15.
        assert_eq!(runs.allocate_aligned(4, 4), Some(12));
        assert_eq!(runs.allocate_aligned(2, 4), None);
        assert_eq!(runs.allocate_aligned(2, 2), Some(10));
        assert_eq!(runs.allocate_aligned(4, 3), None);
        assert_eq!(runs.allocate_aligned(4, 128), None);
    }

    #[test]
    fn full_words_are_skipped_and_runs_cross_words() {
        let mut runs = Box::new(Runs::new());
        assert_eq!(runs.allocate(130), Some(0));
        assert!(runs.free(100, 10));
        // The hole of 10 is too small for 20: the run from 130 crosses a word.
        assert_eq!(runs.allocate(20), Some(130));
        assert_eq!(runs.allocate(10), Some(100));
        assert!(runs.free(0, 100));
        assert_eq!(runs.allocate(125), Some(150));
        assert_eq!(runs.allocate(100), Some(0));
        assert!(contains(BASE) && contains(BASE + PAGES as u64 * 4096 - 1));
        assert!(!contains(BASE - 1) && !contains(BASE + PAGES as u64 * 4096));
    }
}

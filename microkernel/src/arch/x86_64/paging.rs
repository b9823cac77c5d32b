//! x86_64 four-level page tables: building and editing mappings.
//!
//! The walker reaches tables through a [`TableMemory`], so the same code runs in the kernel
//! (tables reached through the direct map) and in host tests (tables in a vector).

use core::fmt;

pub const PAGE_SIZE: u64 = 4096;
pub const LARGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;

/// Page-table entry bits.
pub mod flags {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITABLE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const WRITE_THROUGH: u64 = 1 << 3;
    pub const NO_CACHE: u64 = 1 << 4;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    pub const HUGE: u64 = 1 << 7;
    pub const GLOBAL: u64 = 1 << 8;
    pub const NO_EXECUTE: u64 = 1 << 63;
}

const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// How the walker reaches physical page-table pages and gets new ones.
pub trait TableMemory {
    /// The 512 entries of the table at physical address `phys`.
    fn table(&mut self, phys: u64) -> &mut [u64; 512];
    /// A zeroed page for a new table, or `None` when memory is exhausted.
    fn allocate_table(&mut self) -> Option<u64>;
    /// The table just allocated is linked from the entry at physical address `entry`
    /// (in its parent table), which now holds its address.
    fn linked(&mut self, _entry: u64) {}
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No memory for an intermediate table.
    OutOfMemory,
    /// The address is already mapped (by a page of another size, or to another frame).
    AlreadyMapped(u64),
    /// An address or size is not aligned as the page size requires.
    Misaligned(u64),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::OutOfMemory => f.write_str("out of memory for page tables"),
            MapError::AlreadyMapped(a) => write!(f, "{a:#x} is already mapped"),
            MapError::Misaligned(a) => write!(f, "{a:#x} is not aligned"),
        }
    }
}

fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * (level - 1))) & 511) as usize
}

/// A set of page tables rooted at a PML4.
pub struct PageTables<'m, M: TableMemory> {
    root: u64,
    memory: &'m mut M,
}

impl<'m, M: TableMemory> PageTables<'m, M> {
    /// Tables rooted at an existing PML4 page.
    pub fn new(root: u64, memory: &'m mut M) -> Self {
        PageTables { root, memory }
    }

    /// A fresh, empty PML4.
    pub fn create(memory: &'m mut M) -> Result<Self, MapError> {
        let root = memory.allocate_table().ok_or(MapError::OutOfMemory)?;
        Ok(PageTables { root, memory })
    }

    /// Physical address of the PML4 (what CR3 takes).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The entry for `virt` at `level` (1 = page table, 2 = page directory), creating
    /// intermediate tables as needed. Intermediate entries are permissive (the leaf decides
    /// the protection) and carry `USER` when `user` is set.
    fn entry(&mut self, virt: u64, level: u32, user: bool) -> Result<&mut u64, MapError> {
        let table = self.table_at(virt, level, user)?;
        Ok(&mut self.memory.table(table)[index(virt, level)])
    }

    /// The table at `level` (1 = page table, 2 = page directory) on the way to `virt`,
    /// creating it and the tables above it as needed; intermediate entries as for `entry`.
    #[inline(always)]
    fn table_at(&mut self, virt: u64, level: u32, user: bool) -> Result<u64, MapError> {
        let intermediate = flags::PRESENT | flags::WRITABLE | if user { flags::USER } else { 0 };
        let mut table = self.root;
        for l in (level + 1..=4).rev() {
            let i = index(virt, l);
            let entry = self.memory.table(table)[i];
            if entry & flags::PRESENT == 0 {
                let new = self.memory.allocate_table().ok_or(MapError::OutOfMemory)?;
                self.memory.table(table)[i] = new | intermediate;
                self.memory.linked(table + i as u64 * 8);
                table = new;
            } else if entry & flags::HUGE != 0 {
                return Err(MapError::AlreadyMapped(virt));
            } else {
                self.memory.table(table)[i] = entry | intermediate;
                table = entry & ADDRESS_MASK;
            }
        }
        Ok(table)
    }

    /// The page table (4 KiB entries) that maps `virt`'s 2 MiB, created with the tables
    /// above it if needed (user-accessible links): its physical address.
    pub fn page_table(&mut self, virt: u64) -> Result<u64, MapError> {
        self.table_at(virt, 1, true)
    }

    /// Links page table `table` (another set of tables' page table, shared) as the one that
    /// maps `virt`'s 2 MiB here, creating the tables above it if needed: returns the physical
    /// address of the entry that links it. Refused if another table or a large page is
    /// there already; linking the same table again changes nothing.
    pub fn link_page_table(&mut self, virt: u64, table: u64) -> Result<u64, MapError> {
        if !table.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned(table));
        }
        let directory = self.table_at(virt, 2, true)?;
        let i = index(virt, 2);
        let entry = &mut self.memory.table(directory)[i];
        if *entry & flags::PRESENT != 0 && *entry & (ADDRESS_MASK | flags::HUGE) != table {
            return Err(MapError::AlreadyMapped(virt));
        }
        *entry = table | flags::PRESENT | flags::WRITABLE | flags::USER;
        Ok(directory + i as u64 * 8)
    }

    /// Maps one 4 KiB page, replacing whatever was mapped there (the caller's map decided:
    /// copy-on-write puts a new frame where a shared one was); returns the entry it replaced
    /// (0 if none).
    pub fn remap_page(&mut self, virt: u64, phys: u64, page_flags: u64) -> Result<u64, MapError> {
        if !virt.is_multiple_of(PAGE_SIZE) || !phys.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned(virt | phys));
        }
        let entry = self.entry(virt, 1, page_flags & flags::USER != 0)?;
        let old = *entry;
        *entry = phys | page_flags | flags::PRESENT;
        Ok(old)
    }

    /// Maps one 4 KiB page. Mapping the same frame again with new flags updates them.
    pub fn map_page(&mut self, virt: u64, phys: u64, page_flags: u64) -> Result<(), MapError> {
        if !virt.is_multiple_of(PAGE_SIZE) || !phys.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned(virt | phys));
        }
        let entry = self.entry(virt, 1, page_flags & flags::USER != 0)?;
        if *entry & flags::PRESENT != 0 && *entry & ADDRESS_MASK != phys {
            return Err(MapError::AlreadyMapped(virt));
        }
        *entry = phys | page_flags | flags::PRESENT;
        Ok(())
    }

    /// Maps one 2 MiB page.
    pub fn map_large_page(
        &mut self,
        virt: u64,
        phys: u64,
        page_flags: u64,
    ) -> Result<(), MapError> {
        if !virt.is_multiple_of(LARGE_PAGE_SIZE) || !phys.is_multiple_of(LARGE_PAGE_SIZE) {
            return Err(MapError::Misaligned(virt | phys));
        }
        let entry = self.entry(virt, 2, page_flags & flags::USER != 0)?;
        if *entry & flags::PRESENT != 0
            && (*entry & flags::HUGE == 0 || *entry & ADDRESS_MASK != phys)
        {
            return Err(MapError::AlreadyMapped(virt));
        }
        *entry = phys | page_flags | flags::PRESENT | flags::HUGE;
        Ok(())
    }

    /// Maps `[phys, phys + len)` at `virt` with the largest pages alignment allows.
    pub fn map_range(
        &mut self,
        virt: u64,
        phys: u64,
        len: u64,
        page_flags: u64,
    ) -> Result<(), MapError> {
        let mut offset = 0;
        while offset < len {
            let (v, p, left) = (virt + offset, phys + offset, len - offset);
            if v % LARGE_PAGE_SIZE == 0 && p % LARGE_PAGE_SIZE == 0 && left >= LARGE_PAGE_SIZE {
                self.map_large_page(v, p, page_flags)?;
                offset += LARGE_PAGE_SIZE;
            } else {
                self.map_page(v, p, page_flags)?;
                offset += PAGE_SIZE;
            }
        }
        Ok(())
    }

    /// Removes the 4 KiB mappings in `[start, end)` (page-aligned), calling `unmapped` with
    /// each address, frame and the entry's flags (accessed, dirty) it unmapped; skips absent
    /// tables whole, so a sparse range costs what is mapped, not its size. The caller flushes
    /// the TLB.
    pub fn unmap_range(&mut self, start: u64, end: u64, mut unmapped: impl FnMut(u64, u64, u64)) {
        self.each_leaf(start, end, |virt, entry| {
            let (frame, old) = (*entry & ADDRESS_MASK, *entry);
            *entry = 0;
            unmapped(virt, frame, old & !ADDRESS_MASK);
        });
    }

    /// Takes write access from the 4 KiB mappings in `[start, end)` (page-aligned), calling
    /// `protected` with the address of each that had it; the frames stay mapped. The bit is
    /// cleared atomically: a CPU running these tables may set an entry's dirty bit meanwhile.
    /// The caller flushes the TLB.
    pub fn write_protect_range(&mut self, start: u64, end: u64, mut protected: impl FnMut(u64)) {
        self.each_leaf(start, end, |virt, entry| {
            if *entry & flags::WRITABLE != 0 {
                // SAFETY: `entry` is an aligned word of a live page table, which only this
                // walker (under the caller's lock) and the CPUs' atomic bit updates change.
                let atomic = unsafe { core::sync::atomic::AtomicU64::from_ptr(entry) };
                atomic.fetch_and(!flags::WRITABLE, core::sync::atomic::Ordering::SeqCst);
                protected(virt);
            }
        });
    }

    /// Calls `visit` with each present 4 KiB leaf entry in `[start, end)` and its address,
    /// skipping absent tables whole.
    fn each_leaf(&mut self, start: u64, end: u64, mut visit: impl FnMut(u64, &mut u64)) {
        let mut virt = start;
        while virt < end {
            // Find the page table covering `virt`, or how far to skip.
            let mut table = self.root;
            let mut skip = 0;
            for level in (2..=4).rev() {
                let entry = self.memory.table(table)[index(virt, level)];
                if entry & flags::PRESENT == 0 || entry & flags::HUGE != 0 {
                    skip = 1u64 << (12 + 9 * (level - 1));
                    break;
                }
                table = entry & ADDRESS_MASK;
            }
            if skip != 0 {
                virt = (virt & !(skip - 1)).saturating_add(skip);
                continue;
            }
            let table_end = ((virt >> 21) + 1) << 21;
            while virt < end && virt < table_end {
                let entry = &mut self.memory.table(table)[index(virt, 1)];
                if *entry & flags::PRESENT != 0 {
                    visit(virt, entry);
                }
                virt += PAGE_SIZE;
            }
        }
    }

    /// The 4 KiB leaf entry mapping `virt`, if there is one (no tables are made).
    pub fn leaf_entry(&mut self, virt: u64) -> Option<&mut u64> {
        let mut table = self.root;
        for level in (2..=4).rev() {
            let entry = self.memory.table(table)[index(virt, level)];
            if entry & flags::PRESENT == 0 || entry & flags::HUGE != 0 {
                return None;
            }
            table = entry & ADDRESS_MASK;
        }
        let entry = &mut self.memory.table(table)[index(virt, 1)];
        (*entry & flags::PRESENT != 0).then_some(entry)
    }

    /// The physical address and leaf flags `virt` translates to, if mapped.
    pub fn translate(&mut self, virt: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let entry = self.memory.table(table)[index(virt, level)];
            if entry & flags::PRESENT == 0 {
                return None;
            }
            let page_mask = (1u64 << (12 + 9 * (level - 1))) - 1;
            if level == 1 || (level == 2 && entry & flags::HUGE != 0) {
                let flags = entry & !ADDRESS_MASK;
                return Some((
                    (entry & ADDRESS_MASK & !page_mask) | (virt & page_mask),
                    flags,
                ));
            }
            table = entry & ADDRESS_MASK;
        }
        None
    }
}

/// Loads `root` into CR3, switching address spaces (and flushing non-global TLB entries).
///
/// # Safety
/// `root` must be a PML4 that maps the running code, its stack and everything it will touch.
#[cfg(target_os = "none")]
pub unsafe fn activate(root: u64) {
    // SAFETY: the caller guarantees the new tables map all that is in use.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
    super::percpu::note_loaded_root(root);
}

/// CR3 as it is, flag bits and all (equal to a root `activate` loaded).
#[cfg(target_os = "none")]
#[inline(always)]
pub fn loaded_root() -> u64 {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nostack, nomem, preserves_flags))
    };
    cr3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Physical memory of `pages` pages starting at 0; page 0 is never handed out.
    struct Memory {
        pages: Vec<[u64; 512]>,
        limit: usize,
    }

    impl Memory {
        fn new(limit: usize) -> Self {
            Memory {
                pages: vec![[0; 512]],
                limit,
            }
        }
    }

    impl TableMemory for Memory {
        fn table(&mut self, phys: u64) -> &mut [u64; 512] {
            &mut self.pages[(phys / PAGE_SIZE) as usize]
        }
        fn allocate_table(&mut self) -> Option<u64> {
            if self.pages.len() > self.limit {
                return None;
            }
            self.pages.push([0; 512]);
            Some((self.pages.len() as u64 - 1) * PAGE_SIZE)
        }
    }

    const KERNEL: u64 = 0xffff_ffff_8020_0000;

    #[test]
    fn maps_and_translates_small_pages() {
        let mut m = Memory::new(16);
        let mut t = PageTables::create(&mut m).unwrap();
        t.map_page(KERNEL, 0x200000, flags::WRITABLE).unwrap();
        t.map_page(KERNEL + 0x1000, 0x7000, flags::NO_EXECUTE)
            .unwrap();
        assert_eq!(
            t.translate(KERNEL + 0x123),
            Some((0x200123, flags::PRESENT | flags::WRITABLE))
        );
        assert_eq!(
            t.translate(KERNEL + 0x1fff),
            Some((0x7fff, flags::PRESENT | flags::NO_EXECUTE))
        );
        assert_eq!(t.translate(KERNEL + 0x2000), None);
        // root + PDPT + PD + PT
        assert_eq!(m.pages.len(), 5);
    }

    #[test]
    fn map_range_uses_large_pages_where_aligned() {
        let mut m = Memory::new(64);
        let base = 0xffff_8000_0000_0000;
        let mut t = PageTables::create(&mut m).unwrap();
        // 4 KiB head, two 2 MiB pages, 4 KiB tail.
        t.map_range(
            base + 0x1ff000,
            0x1ff000,
            0x1000 + 2 * LARGE_PAGE_SIZE + 0x3000,
            flags::WRITABLE,
        )
        .unwrap();
        assert_eq!(t.translate(base + 0x1ff000).unwrap().0, 0x1ff000);
        let (phys, f) = t.translate(base + 0x345678).unwrap();
        assert_eq!(phys, 0x345678);
        assert!(f & flags::HUGE != 0);
        assert_eq!(t.translate(base + 0x602fff).unwrap().0, 0x602fff);
        assert_eq!(t.translate(base + 0x603000), None);
    }

    #[test]
    fn a_linked_page_table_maps_the_same_pages_in_both() {
        let mut m = Memory::new(32);
        let (text, other) = (0x40_0000, 0x60_0000);
        let (shared_root, table) = {
            let mut t = PageTables::create(&mut m).unwrap();
            let table = t.page_table(text).unwrap();
            t.map_page(text + 0x3000, 0x9000, flags::USER).unwrap();
            (t.root(), table)
        };
        let root = PageTables::create(&mut m).unwrap().root();
        let mut t = PageTables::new(root, &mut m);
        t.map_page(other, 0xb000, flags::USER | flags::WRITABLE)
            .unwrap();
        let link = t.link_page_table(text + 0x1000, table).unwrap();
        assert_eq!(t.translate(text + 0x3010).unwrap().0, 0x9010);
        // Linking the same table again changes nothing; another is refused.
        assert_eq!(t.link_page_table(text, table), Ok(link));
        assert_eq!(
            t.link_page_table(text, table + PAGE_SIZE),
            Err(MapError::AlreadyMapped(text))
        );
        // The other 2 MiB keeps a table of its own, and the link's entry holds the table.
        assert_ne!(t.page_table(other).unwrap(), table);
        assert_eq!(
            m.pages[(link / PAGE_SIZE) as usize][((link % PAGE_SIZE) / 8) as usize] & ADDRESS_MASK,
            table
        );
        // A page entered through the shared tables shows in both.
        PageTables::new(shared_root, &mut m)
            .map_page(text + 0x4000, 0xc000, flags::USER)
            .unwrap();
        assert_eq!(
            PageTables::new(root, &mut m)
                .translate(text + 0x4000)
                .unwrap()
                .0,
            0xc000
        );
    }

    #[test]
    fn write_protecting_a_range_keeps_the_frames() {
        let mut m = Memory::new(16);
        let mut t = PageTables::create(&mut m).unwrap();
        let writable = flags::USER | flags::WRITABLE;
        t.map_page(0x40_0000, 0x9000, writable).unwrap();
        t.map_page(0x40_1000, 0xa000, flags::USER).unwrap();
        t.map_page(0x40_3000, 0xb000, writable | flags::DIRTY)
            .unwrap();
        t.map_page(0x40_5000, 0xc000, writable).unwrap();
        let mut protected = Vec::new();
        t.write_protect_range(0x40_0000, 0x40_5000, |virt| protected.push(virt));
        assert_eq!(protected, [0x40_0000, 0x40_3000]);
        assert_eq!(
            t.translate(0x40_0000),
            Some((0x9000, flags::PRESENT | flags::USER))
        );
        assert_eq!(
            t.translate(0x40_3000),
            Some((0xb000, flags::PRESENT | flags::USER | flags::DIRTY))
        );
        // Outside the range: still writable.
        assert_eq!(
            t.translate(0x40_5000).unwrap().1 & flags::WRITABLE,
            flags::WRITABLE
        );
    }

    #[test]
    fn remapping_replaces_the_frame() {
        let mut m = Memory::new(16);
        let mut t = PageTables::create(&mut m).unwrap();
        t.map_page(0x40_0000, 0x9000, flags::USER).unwrap();
        t.remap_page(0x40_0000, 0xa000, flags::USER | flags::WRITABLE)
            .unwrap();
        assert_eq!(
            t.translate(0x40_0000),
            Some((0xa000, flags::PRESENT | flags::USER | flags::WRITABLE))
        );
    }

    #[test]
    fn conflicting_mappings_are_refused() {
        let mut m = Memory::new(16);
        let mut t = PageTables::create(&mut m).unwrap();
        t.map_large_page(0x4000_0000, 0x20_0000, 0).unwrap();
        assert_eq!(
            t.map_page(0x4000_1000, 0x9000, 0),
            Err(MapError::AlreadyMapped(0x4000_1000))
        );
        t.map_page(0x1000, 0x5000, 0).unwrap();
        assert_eq!(
            t.map_page(0x1000, 0x6000, 0),
            Err(MapError::AlreadyMapped(0x1000))
        );
        assert_eq!(
            t.map_large_page(0x0, 0x0, 0),
            Err(MapError::AlreadyMapped(0x0))
        );
        assert_eq!(
            t.map_page(0x1001, 0x5000, 0),
            Err(MapError::Misaligned(0x5001 | 0x1001))
        );
    }

    #[test]
    fn user_leaves_make_user_intermediates() {
        let mut m = Memory::new(16);
        let mut t = PageTables::create(&mut m).unwrap();
        t.map_page(0x40_0000, 0x9000, flags::USER).unwrap();
        let root = t.root();
        let pml4e = m.pages[(root / PAGE_SIZE) as usize][0];
        assert!(pml4e & flags::USER != 0);
        let mut t = PageTables::new(root, &mut m);
        t.map_page(0x40_1000, 0xa000, 0).unwrap();
        // A kernel-only leaf next to it does not take USER away from the shared tables.
        assert_eq!(t.translate(0x40_0000).unwrap().1 & flags::USER, flags::USER);
    }

    #[test]
    fn unmap_range_removes_what_is_mapped_and_skips_holes() {
        let mut m = Memory::new(64);
        let mut t = PageTables::create(&mut m).unwrap();
        for i in 0..4u64 {
            t.map_page(0x40_0000 + i * 0x1000, 0x10_0000 + i * 0x1000, flags::USER)
                .unwrap();
        }
        t.map_page(0x7f00_0000_0000, 0x9000, flags::USER).unwrap();
        let mut seen = Vec::new();
        t.unmap_range(0x40_1000, 0x7f00_0000_1000, |v, f, _| seen.push((v, f)));
        assert_eq!(
            seen,
            vec![
                (0x40_1000, 0x10_1000),
                (0x40_2000, 0x10_2000),
                (0x40_3000, 0x10_3000),
                (0x7f00_0000_0000, 0x9000)
            ]
        );
        assert_eq!(t.translate(0x40_0000).map(|(p, _)| p), Some(0x10_0000));
        assert_eq!(t.translate(0x40_1000), None);
    }

    #[test]
    fn running_out_of_table_memory_is_an_error() {
        let mut m = Memory::new(2);
        let mut t = PageTables::create(&mut m).unwrap();
        assert_eq!(t.map_page(0x1000, 0x1000, 0), Err(MapError::OutOfMemory));
    }
}

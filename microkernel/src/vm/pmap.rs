//! The pmap: a task's hardware page tables, a cache of its `vm_map`. The kernel half (PML4
//! entries 256..512) is shared with the kernel's own tables, so every address space sees the
//! direct map and the kernel image.

use super::kernel_space::{self, phys_to_virt, DirectMapTables};
use super::map::Protection;
use super::page::Dropped;
use crate::arch::paging::{self, flags, PageTables};
use crate::base::object_table::OutOfMemory;
use alloc::vec::Vec;
use core::cell::Cell;
use core::sync::atomic::{AtomicU64, Ordering};

const PAGE: u64 = 4096;
const FRAME: u64 = 0x000f_ffff_ffff_f000;

/// First PML4 entry of the kernel half.
const KERNEL_HALF: usize = 256;

/// A task's page tables. Owns the PML4 and every lower-half table page (not the leaf frames,
/// which belong to memory objects).
pub struct Pmap {
    root: u64,
    /// The last translation looked up: (page, frame | leaf flags, epoch), page `u64::MAX`
    /// when empty. Message buffers are used over and over, so most lookups hit; every change
    /// to these tables clears it, and taking a page from every mapping (`remove_everywhere`)
    /// moves the epoch on.
    last: Cell<(u64, u64, u64)>,
    /// This pmap's sentinel in the mapping lists.
    sentinel: u32,
    /// Every lower-half table page, by the entry that links it: the physical address of
    /// that entry in its parent table (or the root), which holds the page's address. So
    /// teardown finds the pages without walking all the tables' entries (most of which are
    /// empty), and empties the links as it goes ([`free_tables`]).
    tables: Vec<u64>,
    /// Table pages a new task will build as it runs that are not built yet (of
    /// [`PROMISED_TABLES`]): counted against the kernel's budget from the start.
    promised: u8,
    /// [`SHARED_OWNER`] if other pmaps link a page table of these ([`Pmap::new_shared`]),
    /// else 0: a change to an entry then concerns every CPU, whatever it has loaded.
    tag: u64,
    /// A page table of another pmap's linked here ([`Pmap::link`]): the 2 MiB it maps and
    /// the physical address of the entry that links it, which teardown empties before it
    /// frees the table holding it (the linked table is not this pmap's to free).
    link: Option<(u64, u64)>,
}

/// Marks, in the mapping lists, the owner name of a pmap whose page tables others link
/// (a root is page-aligned, so bit 0 is free).
const SHARED_OWNER: u64 = 1;

/// The root of the tables an owner name in the mapping lists names.
fn tables_of(owner: u64) -> u64 {
    owner & !SHARED_OWNER
}

/// The table pages below the root a small task builds as it runs (a PDPT, a PD and a page
/// table for its stack and program): admission counts them when the task is made, not as it
/// runs. A fork loop makes a scheduler quantum's worth of children before any of them has
/// built a table, so counted as they were built, the tables of 2,000 users of NONAIM took
/// the kernel past its budget by half again and memory ran out.
pub const PROMISED_TABLES: u8 = 3;

/// Table pages promised by all pmaps and not built yet.
static PROMISED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Table pages new tasks will build and have not yet (see [`PROMISED_TABLES`]).
pub fn promised_tables() -> usize {
    PROMISED.load(Ordering::Relaxed)
}

const NO_TRANSLATION: (u64, u64, u64) = (u64::MAX, 0, 0);

/// Moves on whenever pages are taken from pmaps other than through their own methods.
static EPOCH: AtomicU64 = AtomicU64::new(1);

/// Moves on with every change to any pmap's entries (`enter`, `clear`, `remove`, `destroy`,
/// `remove_everywhere`): a translation taken while it read `s` still holds while it reads `s`.
/// Never 0 (0 marks no translation kept).
static STAMP: AtomicU64 = AtomicU64::new(1);

/// The current value of the change stamp: a translation read from a pmap (through
/// `translate`) after this value was read is still the pmap's while `stamp()` returns it.
/// (The IPC fast path keeps a waiting receiver's buffer page this way.)
#[inline(always)]
pub fn stamp() -> u64 {
    STAMP.load(Ordering::Relaxed)
}

/// `root` while a pmap has none ([`Pmap::release_root`]): frame 0 is never a table.
const NO_ROOT: u64 = 0;

/// The entries of the kernel half in use, by index, taken from the kernel's root when the
/// first task root is made. The kernel makes no top-level entry after start-up (the direct
/// map and the image are mapped then, and the kernel map is one slot set up before any task,
/// `kernel_map`; a top-level entry made later would be missing from every root made before
/// it anyway), so a root needs only these copied, and only these emptied when it goes.
static KERNEL_SLOTS: spin::Once<([u16; KERNEL_HALF], usize)> = spin::Once::new();

fn kernel_slots() -> &'static [u16] {
    let (slots, n) = KERNEL_SLOTS.call_once(|| {
        // SAFETY: the kernel's PML4 is a live table, mapped by the direct map, only read.
        let kernel = unsafe { &*pml4(kernel_space::kernel_root()) };
        let mut slots = [0; KERNEL_HALF];
        let mut n = 0;
        for (index, entry) in kernel.iter().enumerate().skip(KERNEL_HALF) {
            if *entry != 0 {
                slots[n] = index as u16;
                n += 1;
            }
        }
        (slots, n)
    });
    &slots[..*n]
}

/// A fresh root: the user half empty, the kernel half the kernel's. It comes cleared if a
/// page table's (or a root's) frame went back cleared, so it usually costs the kernel's few
/// top-level entries and no clearing.
fn allocate_root() -> Option<u64> {
    let (root, clear) = kernel_space::allocate_user_table_frame()?;
    // `root` is a fresh frame owned by nobody else, distinct from the kernel's PML4.
    // SAFETY: both are live tables mapped by the direct map.
    unsafe {
        let new = &mut *pml4(root);
        let kernel = &*pml4(kernel_space::kernel_root());
        if !clear {
            new.fill(0);
        }
        for &index in kernel_slots() {
            new[usize::from(index)] = kernel[usize::from(index)];
        }
    }
    Some(root)
}

/// Root rebuilds still to fail as if no frame were free (the kernel's `fail_roots=`, for
/// tests of the wait that follows).
static ROOT_FAILURES_INJECTED: AtomicU64 = AtomicU64::new(0);

/// Makes the next `count` roots built again ([`Pmap::ensure_root`]) fail (`fail_roots=`).
pub fn inject_root_failures(count: u32) {
    ROOT_FAILURES_INJECTED.store(u64::from(count), Ordering::Relaxed);
}

/// Whether this root rebuild is to fail (one of those `inject_root_failures` asked for).
fn take_injected_root_failure() -> bool {
    ROOT_FAILURES_INJECTED
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// Roots freed since start-up. Code that saved the root loaded before something that may end
/// a task (a collocated server's run, `kern::colloc`) must not load it again once this has
/// moved on: it may have been freed, and a freed root goes back cleared, without the
/// kernel's entries.
static ROOTS_FREED: AtomicU64 = AtomicU64::new(0);

/// Roots freed since start-up (see `ROOTS_FREED`).
#[inline(always)]
pub fn roots_freed() -> u64 {
    ROOTS_FREED.load(Ordering::Relaxed)
}

/// Frees a root whose user half is empty (its links emptied by [`free_tables`]) and that no
/// CPU has loaded: the kernel's entries are emptied too, and it goes back cleared.
fn free_root(root: u64) {
    // SAFETY: the root is this pmap's own frame, loaded by no CPU, mapped by the direct map.
    let entries = unsafe { &mut *pml4(root) };
    for &index in kernel_slots() {
        entries[usize::from(index)] = 0;
    }
    ROOTS_FREED.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = kernel_space::free_clean_frame(root) {
        log::error!("pmap: freeing a root {root:#x}: {e}");
    }
}

fn pml4(phys: u64) -> *mut [u64; 512] {
    phys_to_virt(phys) as *mut [u64; 512]
}

impl Pmap {
    /// Empty user half, kernel half copied from the kernel's tables.
    pub fn new() -> Result<Pmap, OutOfMemory> {
        Pmap::with_tag(0, PROMISED_TABLES)
    }

    /// Tables that are never loaded, whose page tables other pmaps link ([`Pmap::link`]):
    /// the page tables of program text that the tasks running one program share
    /// (`vm::shared_text`). Their entries are changed through their own methods and the
    /// mapping lists as any pmap's, but each change is dropped from every CPU's TLB.
    pub fn new_shared() -> Result<Pmap, OutOfMemory> {
        Pmap::with_tag(SHARED_OWNER, 0)
    }

    fn with_tag(tag: u64, promised: u8) -> Result<Pmap, OutOfMemory> {
        let root = allocate_root().ok_or(OutOfMemory)?;
        let sentinel = match kernel_space::with_mappings(|m| m.new_owner(root | tag)) {
            Some(Ok(sentinel)) => sentinel,
            _ => {
                free_root(root);
                return Err(OutOfMemory);
            }
        };
        count_tables(true, 1);
        Ok(Pmap {
            root,
            last: Cell::new(NO_TRANSLATION),
            sentinel,
            tables: Vec::new(),
            promised: {
                PROMISED.fetch_add(usize::from(promised), Ordering::Relaxed);
                promised
            },
            tag,
            link: None,
        })
    }

    /// These tables' name in the mapping lists.
    fn owner(&self) -> u64 {
        self.root | self.tag
    }

    /// For a change that may build tables: makes sure there is a root and notes the change
    /// (the cached translation goes); the root and the walker's memory for new tables.
    fn building(&mut self) -> Result<(u64, UserTables<'_>), paging::MapError> {
        self.ensure_root()
            .map_err(|_| paging::MapError::OutOfMemory)?;
        self.changed();
        let memory = UserTables {
            tables: &mut self.tables,
            promised: &mut self.promised,
        };
        Ok((self.root, memory))
    }

    /// The page table that maps `address`'s 2 MiB, built if it is not (with the tables
    /// above it): its physical address, for other pmaps to [`Pmap::link`].
    pub fn page_table(&mut self, address: u64) -> Result<u64, paging::MapError> {
        let (root, mut memory) = self.building()?;
        PageTables::new(root, &mut memory).page_table(address)
    }

    /// Links page table `table` (another pmap's, [`Pmap::page_table`]) as the one that maps
    /// the 2 MiB at `base` here, building the tables above it if needed: every entry in it
    /// then translates here too. One link at a time; refused if this pmap has a table of its
    /// own there (or links another).
    pub fn link(&mut self, base: u64, table: u64) -> Result<(), paging::MapError> {
        if let Some((linked, _)) = self.link {
            if linked != base {
                return Err(paging::MapError::AlreadyMapped(base));
            }
        }
        let (root, mut memory) = self.building()?;
        let entry = PageTables::new(root, &mut memory).link_page_table(base, table)?;
        self.link = Some((base, entry));
        Ok(())
    }

    /// The 2 MiB a linked page table maps here ([`Pmap::link`]), if one is linked.
    pub fn linked(&self) -> Option<u64> {
        self.link.map(|(base, _)| base)
    }

    /// Empties the entry that links another pmap's page table, if there is one, and drops
    /// what any CPU cached through it: nothing translates there until it is linked again or
    /// tables of this pmap's own are built there.
    #[inline(never)]
    pub fn unlink(&mut self) {
        if self.empty_link() {
            crate::arch::tlb::flush_space(self.root);
        }
    }

    /// [`Pmap::unlink`] without the flush, for teardown that drops the whole space from
    /// every CPU anyway: whether there was a link to empty.
    fn empty_link(&mut self) -> bool {
        let Some((_, entry)) = self.link.take() else {
            return false;
        };
        self.changed();
        if self.root == NO_ROOT {
            return false;
        }
        // The link is emptied before any of this pmap's tables is freed, and edited only
        // under the kernel lock.
        // SAFETY: `entry` is the physical address of an aligned word in a page directory of
        // this pmap's, mapped by the direct map.
        unsafe { *(phys_to_virt(entry) as *mut u64) = 0 };
        true
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    /// Whether the pmap has a root (not after [`Pmap::release_root`] until
    /// [`Pmap::ensure_root`]).
    #[inline(always)]
    pub fn has_root(&self) -> bool {
        self.root != NO_ROOT
    }

    /// Frees the root too, once the tables below it are gone ([`Pmap::discard`]): an idle
    /// task then holds no page-table page. [`Pmap::ensure_root`] makes one again before the
    /// task runs or anything is mapped; until then nothing translates.
    pub fn release_root(&mut self) {
        if self.root == NO_ROOT || !self.tables.is_empty() {
            return;
        }
        self.changed();
        // No CPU may walk the root once it is free.
        crate::arch::tlb::leave_space(self.root);
        free_root(self.root);
        count_tables(false, 1);
        self.root = NO_ROOT;
    }

    /// Makes a root again after [`Pmap::release_root`] (the kernel half copied, the user
    /// half empty); nothing if there is one.
    pub fn ensure_root(&mut self) -> Result<(), OutOfMemory> {
        if self.root != NO_ROOT {
            return Ok(());
        }
        if take_injected_root_failure() {
            return Err(OutOfMemory);
        }
        let root = allocate_root().ok_or(OutOfMemory)?;
        // The page records name this pmap's mappings by its root: it has none now, so only
        // its name changes.
        kernel_space::with_mappings(|m| m.rename_owner(self.sentinel, root | self.tag));
        count_tables(true, 1);
        self.root = root;
        self.changed();
        Ok(())
    }

    /// Maps `frame` at user address `address` with `protection`.
    pub fn enter(
        &mut self,
        address: u64,
        frame: u64,
        protection: Protection,
    ) -> Result<(), paging::MapError> {
        let mut page_flags = flags::USER;
        if protection.allows(Protection::WRITE) {
            page_flags |= flags::WRITABLE;
        }
        if !protection.allows(Protection::EXECUTE) {
            page_flags |= kernel_space::no_execute_bit();
        }
        if self
            .link
            .is_some_and(|(base, _)| (base..base + paging::LARGE_PAGE_SIZE).contains(&address))
        {
            // A mapping of this pmap's own where it links another's table: the link goes
            // (never an entry written into the other's table behind its mapping lists).
            self.unlink();
        }
        let (sentinel, tag) = (self.sentinel, self.tag);
        let (root, mut memory) = self.building()?;
        let mut tables = PageTables::new(root, &mut memory);
        let replaced = tables.remap_page(address, frame, page_flags)?;
        let old = (replaced & flags::PRESENT != 0).then_some(replaced & FRAME);
        if old != Some(frame) {
            // The page's mapping list learns of it; if it cannot, the entry goes back.
            let added = kernel_space::with_mappings(|m| m.add(sentinel, frame / PAGE, address));
            if !matches!(added, Some(Ok(()))) {
                if let Some(entry) = tables.leaf_entry(address) {
                    *entry = replaced;
                }
                return Err(paging::MapError::OutOfMemory);
            }
            if let Some(old) = old {
                kernel_space::with_mappings(|m| {
                    m.remove(sentinel, old / PAGE, address);
                    m.note_flags(old / PAGE, harvested(replaced));
                });
            }
        } else if replaced & flags::DIRTY != 0 {
            // The same frame with other rights (write access back after a fork took it):
            // the write the entry recorded must not go with it.
            kernel_space::with_mappings(|m| m.note_flags(frame / PAGE, harvested(replaced)));
        }
        // The entry may have been present with fewer rights: drop any stale translation (on
        // other CPUs too; one absent was in no TLB).
        if replaced & flags::PRESENT != 0 {
            flush(root | tag, address);
        } else {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(address));
        }
        Ok(())
    }

    /// Removes every user mapping, keeping the tables (a program about to be replaced by
    /// another, which will map the same areas): costs the mappings there are. What the
    /// hardware said of each page's use goes into its record.
    pub fn clear(&mut self) {
        self.unlink();
        self.changed();
        if self.root == NO_ROOT {
            return;
        }
        let (root, sentinel) = (self.owner(), self.sentinel);
        kernel_space::with_mappings(|m| {
            m.clear_owner_mappings(sentinel, |address| {
                let mut memory = DirectMapTables;
                let mut old = 0;
                let tables = tables_of(root);
                if let Some(entry) = PageTables::new(tables, &mut memory).leaf_entry(address) {
                    old = *entry;
                    *entry = 0;
                }
                flush(root, address);
                harvested(old)
            })
        });
    }

    /// Throws these tables away: every user mapping goes, its hardware bits kept in the
    /// page records as `dropped` says (for a task the swapper stopped, [`Dropped::Cold`]:
    /// the dirty bits kept, the referenced ones not, and the pages the task alone maps go
    /// to the head of the inactive queue, to leave first), then every lower-half table page
    /// is freed. Faults build the tables again when the task runs. Returns the mappings
    /// there were.
    pub fn discard(&mut self, dropped: Dropped) -> usize {
        // Dropped from every CPU with the rest of the tables (`free_tables`, below).
        self.empty_link();
        self.changed();
        if self.root == NO_ROOT {
            return 0;
        }
        let (root, sentinel) = (self.root, self.sentinel);
        let cleared = kernel_space::with_mappings(|m| {
            m.clear_owner_tables(sentinel, dropped, |address| {
                let mut memory = DirectMapTables;
                let mut old = 0;
                if let Some(entry) = PageTables::new(root, &mut memory).leaf_entry(address) {
                    old = *entry;
                    *entry = 0;
                }
                harvested(old)
            })
        });
        count_tables(false, self.tables.len());
        PROMISED.fetch_sub(usize::from(self.promised), Ordering::Relaxed);
        self.promised = 0;
        // The lower half points only at table pages listed in `tables`: their links go
        // (the root's user half is empty after), then every CPU with these tables loaded
        // drops what it cached of them, then the pages go.
        free_tables(&mut self.tables, cleared.is_some(), || {
            crate::arch::tlb::flush_space(root)
        });
        cleared.unwrap_or(0)
    }

    /// Whether the CPU walked these tables since the last call: the Accessed bits of the
    /// root's user-half entries, cleared here. A task whose tables were not walked between
    /// two calls did not run in between: loading CR3 to run it drops what earlier walks
    /// cached, so its first access walks again and sets a bit.
    pub fn walked_since_last_look(&mut self) -> bool {
        if self.tables.is_empty() {
            return false;
        }
        // SAFETY: the PML4 is this pmap's own frame, mapped by the direct map; only the
        // Accessed bits of its user half change, which the CPU sets again on its next walk.
        let root = unsafe { &mut *pml4(self.root) };
        let mut walked = false;
        for entry in root[..KERNEL_HALF].iter_mut() {
            if *entry & flags::ACCESSED != 0 {
                *entry &= !flags::ACCESSED;
                walked = true;
            }
        }
        walked
    }

    /// Lower-half table pages (the root not counted): what discarding the tables frees.
    pub fn table_pages(&self) -> usize {
        self.tables.len()
    }

    /// Pages these tables map (costs them).
    pub fn resident(&self) -> usize {
        let sentinel = self.sentinel;
        kernel_space::with_mappings(|m| m.owner_len(sentinel)).unwrap_or(0)
    }

    /// Removes the mappings of `[start, end)` and flushes them from the TLB; the pages stay
    /// with their objects, and faults map them again as the map then allows.
    /// A linked page table's 2 MiB in the range is unlinked first (its entries are not this
    /// pmap's to remove).
    pub fn remove(&mut self, start: u64, end: u64) {
        if self
            .link
            .is_some_and(|(base, _)| start < base + paging::LARGE_PAGE_SIZE && base < end)
        {
            self.unlink();
        }
        self.changed();
        if self.root == NO_ROOT {
            return;
        }
        let mut memory = DirectMapTables;
        let (root, owner, sentinel) = (self.root, self.owner(), self.sentinel);
        kernel_space::with_mappings(|m| {
            PageTables::new(root, &mut memory).unmap_range(start, end, |page, frame, old| {
                m.remove(sentinel, frame / PAGE, page);
                // The page may outlive the mapping (shared, or paged out later): what the
                // hardware said of its use must not go with the entry.
                m.note_flags(frame / PAGE, harvested(old));
                flush(owner, page);
            })
        });
    }

    /// Takes write access from the mappings of `[start, end)` and flushes it from the TLB;
    /// the pages stay mapped for reading (a fork's copy-on-write: a write faults and copies,
    /// a read does not fault at all). A linked shared table's entries are never writable.
    pub fn write_protect_range(&mut self, start: u64, end: u64) {
        self.changed();
        if self.root == NO_ROOT {
            return;
        }
        let mut memory = DirectMapTables;
        let owner = self.owner();
        PageTables::new(self.root, &mut memory)
            .write_protect_range(start, end, |page| flush(owner, page));
    }

    /// These tables are about to change: the cached translation goes, the stamp moves on.
    fn changed(&self) {
        self.last.set(NO_TRANSLATION);
        STAMP.fetch_add(1, Ordering::Relaxed);
    }

    /// The frame and entry flags `address` translates to. The last translation is cached
    /// (inlined: the IPC path asks for the same buffer pages message after message).
    #[inline(always)]
    pub fn translate(&self, address: u64) -> Option<(u64, u64)> {
        let page = address & !0xfff;
        let epoch = EPOCH.load(Ordering::Relaxed);
        let (cached_page, entry, cached_epoch) = self.last.get();
        if cached_page == page && cached_epoch == epoch {
            return Some(((entry & FRAME) | (address & 0xfff), entry & !FRAME));
        }
        self.walk(address, page, epoch)
    }

    /// `translate` through the tables, caching the result.
    #[inline(never)]
    fn walk(&self, address: u64, page: u64, epoch: u64) -> Option<(u64, u64)> {
        if self.root == NO_ROOT {
            return None;
        }
        let mut memory = DirectMapTables;
        let (phys, leaf_flags) = PageTables::new(self.root, &mut memory).translate(address)?;
        self.last.set((page, (phys & !0xfff) | leaf_flags, epoch));
        Some((phys, leaf_flags))
    }

    /// Marks the page at `address` written (its entry's dirty and accessed bits): the kernel
    /// writes user memory through the direct map, which sets no dirty bit of the user's
    /// entry, so a page paged in clean and then written by the kernel (a message copied in,
    /// a call's result) would be dropped as clean, and the write lost. Keeps the cached
    /// translation; changes no translation (the stamp stays).
    pub fn mark_written(&mut self, address: u64) {
        if self.root == NO_ROOT {
            return;
        }
        let page = address & !0xfff;
        let mut memory = DirectMapTables;
        if let Some(entry) = PageTables::new(self.root, &mut memory).leaf_entry(page) {
            if *entry & flags::PRESENT != 0 {
                *entry |= flags::DIRTY | flags::ACCESSED;
                let (cached_page, cached, epoch) = self.last.get();
                if cached_page == page {
                    self.last
                        .set((page, cached | flags::DIRTY | flags::ACCESSED, epoch));
                }
            }
        }
    }

    /// Makes this the current address space, if it is not already.
    pub fn activate(&self) {
        debug_assert!(self.root != NO_ROOT, "a pmap without a root loaded");
        // Compared as loaded: `paging::activate` loads the bare root, and a CR3 with flag bits
        // (as a boot loader may leave it) only costs one needless reload.
        if paging::loaded_root() != self.root {
            // SAFETY: the kernel half of every pmap is the kernel's, so the kernel keeps
            // running with its code, stack and data mapped after the switch.
            unsafe { paging::activate(self.root) };
        }
    }

    /// Makes this the current address space without asking which one is loaded: for a
    /// switch from another task's (the IPC fast path hands off only between two tasks, each
    /// with its own tables), where the question would always answer no.
    #[inline(always)]
    pub fn activate_from_another(&self) {
        debug_assert!(self.root != NO_ROOT, "a pmap without a root loaded");
        // SAFETY: as in `activate`.
        unsafe { paging::activate(self.root) };
    }

    /// Frees the table pages. Switches to the kernel's tables first if these are loaded.
    /// What the hardware said of each mapped page's use goes into its record first (pages of
    /// shared objects outlive the tables).
    pub fn destroy(mut self) {
        // Every CPU leaves the tables below, before anything is freed.
        self.empty_link();
        self.changed();
        let (root, sentinel) = (self.root, self.sentinel);
        // Every leaf entry is in the mapping list: emptied here, the table pages hold only
        // their links, which `free_tables` empties.
        let cleared = kernel_space::with_mappings(|m| {
            m.clear_owner_mappings(sentinel, |address| {
                let mut memory = DirectMapTables;
                PageTables::new(root, &mut memory)
                    .leaf_entry(address)
                    .map_or(0, |entry| harvested(core::mem::take(entry)))
            });
            m.remove_owner(sentinel)
        });
        if self.root != NO_ROOT {
            // No CPU may walk the tables once they are free (nor set a bit in them once
            // they are empty).
            crate::arch::tlb::leave_space(self.root);
        }
        count_tables(false, self.tables.len() + usize::from(self.root != NO_ROOT));
        PROMISED.fetch_sub(usize::from(self.promised), Ordering::Relaxed);
        free_tables(&mut self.tables, cleared.is_some(), || {});
        if self.root != NO_ROOT {
            free_root(self.root);
        }
    }
}

/// Frames held by the page tables of all tasks, roots included (what admission control
/// counts as kernel memory besides the heap: pageout cannot take them).
static TABLE_FRAMES: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Frames held by the page tables of all tasks, roots included.
pub fn table_frames() -> usize {
    TABLE_FRAMES.load(core::sync::atomic::Ordering::Relaxed)
}

fn count_tables(more: bool, n: usize) {
    use core::sync::atomic::Ordering::Relaxed;
    if more {
        TABLE_FRAMES.fetch_add(n, Relaxed);
    } else {
        TABLE_FRAMES.fetch_sub(n, Relaxed);
    }
}

/// Empties the entries `links` names (see `Pmap::tables`), calls `unlinked`, and frees the
/// table pages they linked. With `cleared` (every leaf entry in them was emptied first) the
/// pages hold only zeros after, and are kept apart for new tables, which then need no
/// clearing. A link may lie in another of these pages: every link is read and emptied before
/// any page is freed.
fn free_tables(links: &mut Vec<u64>, cleared: bool, unlinked: impl FnOnce()) {
    for link in links.iter_mut() {
        // `link` is the physical address of an entry in one of this pmap's table pages or
        // its root, all still this pmap's, and edited only under the kernel lock (a CPU that
        // still has the root loaded, before `unlinked` flushes it, only reads the entry).
        // SAFETY: an aligned word of a live table page, mapped by the direct map.
        let entry = unsafe { &mut *(phys_to_virt(*link) as *mut u64) };
        *link = core::mem::take(entry) & FRAME;
    }
    unlinked();
    for table in links.drain(..) {
        let freed = if cleared {
            kernel_space::free_clean_frame(table)
        } else {
            kernel_space::free_frame(table)
        };
        if let Err(e) = freed {
            log::error!("pmap: freeing table {table:#x}: {e}");
        }
    }
}

/// Page tables of a user address space: new table pages come from the frames users may have
/// (never the kernel's reserve) and are recorded in the pmap's list.
struct UserTables<'a> {
    tables: &'a mut Vec<u64>,
    /// The pmap's promised table pages: each one built fulfils one.
    promised: &'a mut u8,
}

impl crate::arch::paging::TableMemory for UserTables<'_> {
    fn table(&mut self, phys: u64) -> &mut [u64; 512] {
        // SAFETY: as for `DirectMapTables`: page-table pages are frames owned by the tables,
        // mapped by the direct map, edited only through this walker under the kernel lock.
        unsafe { &mut *(phys_to_virt(phys) as *mut [u64; 512]) }
    }

    fn allocate_table(&mut self) -> Option<u64> {
        // Room for the link `linked` records.
        self.tables.try_reserve(1).ok()?;
        let (frame, clear) = kernel_space::allocate_user_table_frame()?;
        if !clear {
            // SAFETY: a fresh frame owned by nobody, mapped by the direct map.
            unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, 4096) };
        }
        count_tables(true, 1);
        if *self.promised > 0 {
            *self.promised -= 1;
            PROMISED.fetch_sub(1, Ordering::Relaxed);
        }
        Some(frame)
    }

    fn linked(&mut self, entry: u64) {
        // Room was reserved by `allocate_table`, just before.
        self.tables.push(entry);
    }
}

/// Takes `frame` away from every page table that maps it, at the cost of its own mappings;
/// returns how many there were. (The pageout daemon's tool; the objects keep the page.)
pub fn remove_everywhere(frame: u64) -> usize {
    let mut flags = 0;
    let removed = kernel_space::with_mappings(|m| {
        let removed = m.remove_all(frame / PAGE, |root, address| {
            let mut memory = DirectMapTables;
            let tables = tables_of(root);
            if let Some(entry) = PageTables::new(tables, &mut memory).leaf_entry(address) {
                flags |= harvested(*entry);
                *entry = 0;
            }
            flush(root, address);
        });
        m.note_flags(frame / PAGE, flags);
        removed
    });
    EPOCH.fetch_add(1, Ordering::Relaxed);
    STAMP.fetch_add(1, Ordering::Relaxed);
    removed.unwrap_or(0)
}

/// Whether any mapping of `frame` was used since the last call (the hardware's accessed
/// bits, cleared as they are read), and whether any wrote it (the dirty bits, left set):
/// what the pageout daemon's LRU reads.
pub fn referenced_and_modified(frame: u64) -> (bool, bool) {
    let (mut referenced, mut modified) = (false, false);
    kernel_space::with_mappings(|m| {
        m.scan(frame / PAGE, |root, address| {
            let mut memory = DirectMapTables;
            let tables = tables_of(root);
            if let Some(entry) = PageTables::new(tables, &mut memory).leaf_entry(address) {
                referenced |= *entry & flags::ACCESSED != 0;
                modified |= *entry & flags::DIRTY != 0;
                *entry &= !flags::ACCESSED;
                // An entry of a shared table would be dropped from every CPU, for a hint: a
                // CPU that keeps it cached sets no Accessed bit until it walks again, so
                // the page only looks less used than it is (x86 Linux does not flush when
                // it clears the bit at all).
                if root & SHARED_OWNER == 0 {
                    flush(root, address);
                }
            }
        })
    });
    kernel_space::with_mappings(|m| {
        use super::page::page_flags::{DIRTY, REFERENCED};
        m.note_flags(
            frame / PAGE,
            if referenced { REFERENCED } else { 0 } | if modified { DIRTY } else { 0 },
        )
    });
    (referenced, modified)
}

/// The page flags (referenced, dirty) a page-table entry's accessed and dirty bits say.
fn harvested(entry: u64) -> u8 {
    use super::page::page_flags::{DIRTY, REFERENCED};
    (if entry & flags::ACCESSED != 0 {
        REFERENCED
    } else {
        0
    }) | if entry & flags::DIRTY != 0 { DIRTY } else { 0 }
}

/// Takes write access from every mapping of `frame` and clears their dirty bits, noting
/// what they said in the page's record first, on every CPU: the page can then be copied
/// (a clean, `lock_request`) without a write slipping in unmarked between the copy and the
/// page being called clean. A thread of another CPU writing meanwhile sets the dirty bit
/// atomically, so the entry is changed atomically too; its next write faults, and is marked
/// anew. Then [`mark_clean`] once the copy is taken.
pub fn write_protect(frame: u64) {
    kernel_space::with_mappings(|m| {
        let mut noted = 0;
        m.scan(frame / PAGE, |root, address| {
            let mut memory = DirectMapTables;
            let tables = tables_of(root);
            if let Some(entry) = PageTables::new(tables, &mut memory).leaf_entry(address) {
                // The CPU's own updates to the entry (accessed and dirty bits) are atomic;
                // every kernel change to it is made under the kernel lock.
                // SAFETY: the entry is an aligned word of a live page table (direct map).
                let atomic = unsafe { AtomicU64::from_ptr(entry) };
                let old = atomic.fetch_and(!(flags::WRITABLE | flags::DIRTY), Ordering::SeqCst);
                noted |= harvested(old);
                flush(root, address);
            }
        });
        m.note_flags(frame / PAGE, noted);
    });
    // A translation kept while its page was writable (a receive buffer's, by the IPC fast
    // path) must not be written through: the kernel writes through the direct map, which
    // sets no dirty bit, so such a write to a page now clean would be lost.
    EPOCH.fetch_add(1, Ordering::Relaxed);
    STAMP.fetch_add(1, Ordering::Relaxed);
}

/// Marks `frame`'s record clean (its contents were just saved by its pager, after
/// [`write_protect`]): clean until written again.
pub fn mark_clean(frame: u64) {
    kernel_space::with_mappings(|m| m.take_flag(frame / PAGE, super::page::page_flags::DIRTY));
}

/// Mappings `frame` has.
pub fn mapping_count(frame: u64) -> usize {
    kernel_space::with_mappings(|m| m.count(frame / PAGE)).unwrap_or(0)
}

/// Mappings visited by `remove_everywhere` and `referenced_and_modified` so far.
pub fn mapping_visits() -> u64 {
    kernel_space::with_mappings(|m| m.visits()).unwrap_or(0)
}

/// Drops the translation of `address` in the tables `owner` names (in the mapping lists)
/// from every CPU's TLB that may hold it: those with the tables loaded, or every CPU for
/// tables whose page tables others link.
fn flush(owner: u64, address: u64) {
    if owner & SHARED_OWNER != 0 {
        crate::arch::tlb::flush_shared_page(address);
    } else {
        crate::arch::tlb::flush_page(owner, address);
    }
}

//! A task's address space: its `vm_map` and the pmap that caches it, with the page-fault path
//! (map entry → object → resident page or zero fill → pmap) and teardown.

use super::kernel_space::{self, phys_to_virt};
use super::map::{Inheritance, MapEntry, MapError, Protection, Strategy, VmMap, PAGE_SIZE};
use super::object::{ObjectKind, VmObject};
use super::page::Dropped;
use super::pmap::Pmap;
use super::shared_text::SharedText;
use super::statistics;
use crate::arch::paging::LARGE_PAGE_SIZE;
use crate::base::object_table::{Id, OutOfMemory, Table};
use libipc::abi::syscall::{USER_BASE, USER_END};
use libipc::abi::KernReturn;

pub type ObjectId = Id<VmObject>;

/// Why a fault could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No region contains the address.
    NotMapped,
    /// The region does not allow the access.
    Protection,
    /// No memory for the page or a page table.
    OutOfMemory,
    /// The page is absent from a pager's object: it must be asked for (`kern::memory::pager`), and the
    /// access tried again once it is there. `strategy` is the faulting region's.
    Absent {
        object: ObjectId,
        offset: u64,
        strategy: Strategy,
    },
    /// The pager could not supply the page (an error, its death, no answer in time).
    MemoryError,
}

impl core::fmt::Display for FaultError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FaultError::NotMapped => "no region at this address",
            FaultError::Protection => "access not allowed by the region's protection",
            FaultError::OutOfMemory => "out of memory",
            FaultError::Absent { .. } => "page not yet supplied by its pager",
            FaultError::MemoryError => "memory error: the pager could not supply the page",
        })
    }
}

/// Memory taken out of one address space to be put into another (Mach's `vm_map_copy`):
/// the entries of a range as they were (addresses, objects, offsets, protections), in
/// order. It holds a reference to each entry's object.
pub struct MapCopy {
    pub start: u64,
    pub size: u64,
    pub(super) entries: alloc::vec::Vec<MapEntry<ObjectId>>,
}

impl MapCopy {
    /// All of `object` (`size` bytes, whose reference the copy takes), to travel in a
    /// message: the kernel's own out-of-line memory (pages it returns to a pager). `Err`
    /// (the reference still the caller's) when the kernel heap is exhausted.
    pub fn whole_object(object: ObjectId, size: u64) -> Result<MapCopy, OutOfMemory> {
        let mut entries = alloc::vec::Vec::new();
        entries.try_reserve_exact(1).map_err(|_| OutOfMemory)?;
        entries.push(MapEntry::new(0, size, object, 0, Protection::READ_WRITE));
        Ok(MapCopy {
            start: 0,
            size,
            entries,
        })
    }

    /// Gives back the references (the copy was never put anywhere).
    pub fn release(self, objects: &mut Table<VmObject>) {
        for entry in self.entries {
            release_object(objects, entry.object);
        }
    }
}

pub struct AddressSpace {
    map: VmMap<ObjectId>,
    pmap: Pmap,
    /// A collocated server's: the addresses its calls name in the kernel half are its kernel
    /// memory (`kern::user` reads and writes them directly); its map holds what it allocates
    /// or receives out of line, as any task's, and its tables are loaded while it runs.
    kernel_memory: bool,
    /// The page table of its program's text that it shares with the other tasks running
    /// the program, while its map holds that text as the table's ([`SharedText`]).
    shared: Option<SharedText>,
}

impl AddressSpace {
    pub fn new() -> Result<AddressSpace, OutOfMemory> {
        Ok(AddressSpace {
            map: VmMap::new(USER_BASE, USER_END),
            pmap: Pmap::new()?,
            kernel_memory: false,
            shared: None,
        })
    }

    /// Shares `text`'s page table from now on, if this space's map holds the entries it was
    /// made for (a program just loaded, `kern::loader`); whether it does. Faults there then
    /// map pages for every task sharing it, and link it into these tables.
    pub fn share_text(&mut self, text: &SharedText) -> bool {
        if !text.matches(&self.map) {
            return false;
        }
        self.use_text(text);
        true
    }

    /// [`AddressSpace::share_text`] without looking at the map: a fork's child whose map
    /// holds in the table's span whatever its parent's does, which shares it.
    fn use_text(&mut self, text: &SharedText) {
        self.unshare();
        self.shared = Some(text.clone());
        // Linked now: what the program's other tasks faulted in translates from the start.
        // (Without memory for the tables above it, the first fault there links it.)
        if self.pmap.has_root() {
            let _ = self.pmap.link(text.base(), text.table());
        }
    }

    /// The shared page table of its program's text, while it uses one.
    pub fn shared_text(&self) -> Option<&SharedText> {
        self.shared.as_ref()
    }

    /// Stops sharing a page table of program text: these tables map the span themselves
    /// from now on.
    fn unshare(&mut self) {
        if self.shared.take().is_some() {
            self.pmap.unlink();
        }
    }

    /// Maps `frame` at `page`: in the shared table of program text when the page is in its
    /// span and the map still holds that text as the table's (linking the table here if it
    /// is not), else in these tables (leaving the shared table for good if the page is in
    /// its span).
    #[inline(always)]
    fn enter_page(&mut self, page: u64, frame: u64, protection: Protection) -> Result<(), ()> {
        if self.shared.as_ref().is_some_and(|t| t.covers(page))
            && self.enter_shared(page, frame, protection)
        {
            return Ok(());
        }
        self.pmap.enter(page, frame, protection).map_err(|_| ())
    }

    /// [`AddressSpace::enter_page`] in the shared table's span: whether the page went into
    /// the shared table (if not, the space has left it).
    #[inline(never)]
    fn enter_shared(&mut self, page: u64, frame: u64, protection: Protection) -> bool {
        if let Some(text) = &self.shared {
            if text.matches(&self.map)
                && text.enter(page, frame, protection).is_ok()
                && self.pmap.link(text.base(), text.table()).is_ok()
            {
                return true;
            }
        }
        self.unshare();
        false
    }

    /// The space of a collocated server: an empty map, and its calls' addresses in the kernel
    /// half are kernel memory.
    pub fn kernel_memory() -> Result<AddressSpace, OutOfMemory> {
        Ok(AddressSpace {
            kernel_memory: true,
            ..AddressSpace::new()?
        })
    }

    /// Whether this is a collocated server's space ([`AddressSpace::kernel_memory`]).
    #[inline(always)]
    pub fn is_kernel_memory(&self) -> bool {
        self.kernel_memory
    }

    pub fn map(&self) -> &VmMap<ObjectId> {
        &self.map
    }

    pub fn pmap(&self) -> &Pmap {
        &self.pmap
    }

    /// Calls `visit(frame)` for each page resident in an object this space's entries name
    /// directly, within the entries: the task's own memory, mapped or not (not what it
    /// shares through a backing object, nor device memory).
    pub fn for_each_own_page(&self, objects: &Table<VmObject>, mut visit: impl FnMut(u64)) {
        for e in self.map.entries() {
            let Some(o) = objects.get(e.object) else {
                continue;
            };
            // Nor an object still shared with a fork's other side.
            if matches!(o.kind(), ObjectKind::Physical { .. })
                || (e.needs_copy && o.references() > 1)
            {
                continue;
            }
            let range = e.offset..e.offset + (e.end - e.start);
            for offset in o.resident_offsets().filter(|at| range.contains(at)) {
                if let Some(frame) = o.resident_page(offset) {
                    visit(frame);
                }
            }
        }
    }

    /// Whether the CPU walked this space's tables since the last call
    /// ([`Pmap::walked_since_last_look`]).
    pub fn tables_walked_since_last_look(&mut self) -> bool {
        self.pmap.walked_since_last_look()
    }

    /// Frees the tables' root too, after [`AddressSpace::discard_translations`] (an idle
    /// task's, `kern::pmap_collect`).
    pub fn release_tables_root(&mut self) {
        self.pmap.release_root();
    }

    /// Makes the tables' root again if it was freed.
    pub fn ensure_tables_root(&mut self) -> Result<(), OutOfMemory> {
        self.pmap.ensure_root()
    }

    /// Drops every translation and the page tables themselves (the task swapper's, and
    /// `pmap_collect`'s: `dropped` says which): the map stays, and faults build the tables
    /// again. Returns the mappings there were.
    pub fn discard_translations(&mut self, dropped: Dropped) -> usize {
        self.pmap.discard(dropped)
    }

    /// Maps `object` (whose reference the caller passes to the map) at `[start, end)`.
    pub fn enter(&mut self, entry: MapEntry<ObjectId>) -> Result<(), MapError> {
        self.map.insert(entry)
    }

    /// Resolves a fault at `address` for `access`: finds the page along the entry's object
    /// and its backing chain (zero-filling anonymous memory nobody has written, copying a
    /// backing page into the front object on a write) and enters it in the pmap. A page
    /// found in a backing object is mapped read-only, so a later write faults and copies.
    /// Returns the frame.
    pub fn resolve_fault(
        &mut self,
        objects: &mut Table<VmObject>,
        address: u64,
        access: Protection,
    ) -> Result<u64, FaultError> {
        let mut entry = *self.map.lookup(address).ok_or(FaultError::NotMapped)?;
        if !entry.protection.allows(access) {
            return Err(FaultError::Protection);
        }
        statistics::count(&statistics::FAULTS);
        if entry.needs_copy && access.allows(Protection::WRITE) {
            entry = self.copy_now(objects, address)?;
        }
        collapse(objects, entry.object);
        let page = address & !(PAGE_SIZE - 1);
        let offset = entry.object_offset(page);
        let top = entry.object;
        let found = match find_page(objects, top, offset).ok_or(FaultError::NotMapped)? {
            Found::Resident(object, frame) => {
                if let Some(o) = objects.get_mut(object) {
                    if (o.kind() == ObjectKind::Pager || o.has_default_pager())
                        && note_prefetch_used(frame)
                    {
                        o.note_prefetch_used();
                    }
                }
                Some((object, frame))
            }
            Found::Absent(object, at) => {
                return Err(FaultError::Absent {
                    object,
                    offset: at,
                    strategy: entry.strategy,
                });
            }
            Found::Nowhere => None,
        };
        // An object still shared with a fork's copy is mapped read-only until written.
        let own = if entry.needs_copy {
            read_only(entry.protection)
        } else {
            entry.protection
        };
        let (frame, protection) = match found {
            Some((object, frame)) if object == top => (frame, own),
            Some((_, frame)) if !access.allows(Protection::WRITE) => {
                // Still shared with the backing object: read-only until written.
                (frame, read_only(entry.protection))
            }
            Some((_, source)) => {
                let (frame, references) = new_frame_in::<true>(objects, top, offset)?;
                copy_page(source, frame);
                if references > 1 && references as usize > self.entries_over(top) {
                    // Other maps share this object (inheritance share) and may map the page
                    // it read through to, read-only: they must fault and find this copy.
                    super::pmap::remove_everywhere(source);
                }
                (frame, own)
            }
            None => {
                let o = objects.get(top).ok_or(FaultError::NotMapped)?;
                if o.kind() != ObjectKind::Anonymous || offset >= o.size() {
                    return Err(FaultError::NotMapped);
                }
                let frame = new_frame(objects, top, offset)?;
                // SAFETY: a fresh frame, mapped by the direct map, owned by nobody yet.
                unsafe {
                    core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, PAGE_SIZE as usize)
                };
                statistics::count(&statistics::ZERO_FILLS);
                (frame, own)
            }
        };
        self.enter_page(page, frame, protection)
            .map_err(|()| FaultError::OutOfMemory)?;
        Ok(frame)
    }

    /// Maps the page at `address` for a read or an instruction fetch ahead of the fault the
    /// task is sure to take on it (a forked child's first instruction), if the page is
    /// resident along its entry's chain: as the fault would map it (read-only when found in a
    /// backing object), but never zero-filling, copying or asking a pager, and not counted as
    /// a fault. Whether it mapped it.
    pub fn premap(&mut self, objects: &Table<VmObject>, address: u64, access: Protection) -> bool {
        let Some(entry) = self.map.lookup(address).copied() else {
            return false;
        };
        if access.allows(Protection::WRITE) || !entry.protection.allows(access) {
            return false;
        }
        if self.pmap.translate(address).is_some() {
            // Mapped already (the shared table of the program's text, linked).
            return true;
        }
        let page = address & !(PAGE_SIZE - 1);
        let Some(Found::Resident(object, frame)) =
            find_page(objects, entry.object, entry.object_offset(page))
        else {
            return false;
        };
        let protection = if object == entry.object && !entry.needs_copy {
            entry.protection
        } else {
            read_only(entry.protection)
        };
        self.enter_page(page, frame, protection).is_ok()
    }

    /// The address space a child gets at fork: per entry, by its inheritance, the same object
    /// (share; and program text, which is never written), a copy-on-write copy (copy: both
    /// entries keep the object and need a copy, this space's mappings of it are
    /// write-protected, and the first write through either side gives that side an object
    /// of its own: [`AddressSpace::copy_now`]), or nothing (none).
    pub fn fork(&mut self, objects: &mut Table<VmObject>) -> Result<AddressSpace, KernReturn> {
        let mut child = AddressSpace::new().map_err(|_| KernReturn::ResourceShortage)?;
        let result = self.fork_into(objects, &mut child);
        match result {
            Ok(whole) => {
                // The child's text is this space's (shared, not copied): it shares the
                // table too, at once if it got everything this space has in the table's
                // span (its map there is then as this one's, which shares it).
                if let Some(text) = &self.shared {
                    if whole {
                        child.use_text(text);
                    } else {
                        child.share_text(text);
                    }
                }
                Ok(child)
            }
            Err(e) => {
                child.destroy(objects);
                Err(e)
            }
        }
    }

    /// Whether every entry in the span of the shared text table went to the child.
    fn fork_into(
        &mut self,
        objects: &mut Table<VmObject>,
        child: &mut AddressSpace,
    ) -> Result<bool, KernReturn> {
        let span = self
            .shared
            .as_ref()
            .map(|t| (t.base(), t.base() + LARGE_PAGE_SIZE));
        let mut whole = true;
        let count = self.map.len();
        let snapshots = self.written_elsewhere(objects, 0..count)?;
        child.map.reserve(count).map_err(map_error)?;
        for i in 0..count {
            let mut entry = self.map.entries()[i];
            let shared = match entry.inheritance {
                Inheritance::None => {
                    if span.is_some_and(|(start, end)| entry.start < end && entry.end > start) {
                        whole = false;
                    }
                    continue;
                }
                Inheritance::Share => true,
                // Program text the shared table maps is never written either (the loader
                // mapped it so, over the program's file).
                Inheritance::Copy => {
                    objects
                        .get(entry.object)
                        .is_some_and(|o| matches!(o.kind(), ObjectKind::Physical { .. }))
                        || self.shared.as_ref().is_some_and(|t| t.holds(&entry))
                }
            };
            if shared {
                if entry.needs_copy {
                    // What the child shares is this entry's own memory: made first.
                    entry = self
                        .copy_now(objects, entry.start)
                        .map_err(|_| KernReturn::ResourceShortage)?;
                }
                child
                    .map
                    .insert(MapEntry {
                        object: duplicate(objects, entry.object),
                        ..entry
                    })
                    .map_err(|e| {
                        release_object(objects, entry.object);
                        map_error(e)
                    })?;
                continue;
            }
            if snapshots.get(i) == Some(&true) {
                // Others go on writing the object: this space keeps sharing it, and the
                // child gets a copy of it as it is now.
                let copy = snapshot(objects, &entry)?;
                child
                    .map
                    .insert(MapEntry {
                        object: copy,
                        offset: 0,
                        ..entry
                    })
                    .map_err(|e| {
                        release_object(objects, copy);
                        map_error(e)
                    })?;
                continue;
            }
            collapse(objects, entry.object);
            // Both entries keep the object (no new object now: Mach's delayed copy), and
            // whichever writes first gets one of its own then.
            child
                .map
                .insert(MapEntry {
                    object: duplicate(objects, entry.object),
                    needs_copy: true,
                    ..entry
                })
                .map_err(|e| {
                    release_object(objects, entry.object);
                    map_error(e)
                })?;
            if !entry.needs_copy {
                // (An entry that needed a copy already is mapped read-only already.)
                self.map.entries_mut()[i].needs_copy = true;
                self.write_protect(objects, &entry);
            }
        }
        Ok(whole)
    }

    /// How many of this map's entries name `object`: its references that are this map's
    /// (entries split from one region map disjoint parts of it). Any more are another
    /// task's entries sharing it, a shadow reading through it, or a message in flight.
    fn entries_over(&self, object: ObjectId) -> usize {
        self.map
            .entries()
            .iter()
            .filter(|e| e.object == object)
            .count()
    }

    /// Gives the entry at `address`, which needs a copy, memory of its own to write, and
    /// returns it as it is then: its object itself when every reference to the object is
    /// one of this map's entries (the fork's other side has gone, or written and left it;
    /// this map's entries over it map disjoint parts of it), else a new shadow in front of
    /// it that takes the entry's reference. Nothing changes in the pmap: the object's pages
    /// stay mapped read-only, and writes fault and copy (or, for the object itself, map
    /// them writable).
    fn copy_now(
        &mut self,
        objects: &mut Table<VmObject>,
        address: u64,
    ) -> Result<MapEntry<ObjectId>, FaultError> {
        let entry = *self.map.lookup(address).ok_or(FaultError::NotMapped)?;
        let object = objects.get(entry.object).ok_or(FaultError::NotMapped)?;
        let alone = object.kind() == ObjectKind::Anonymous
            && object.references() as usize == self.entries_over(entry.object);
        let (object, offset) = if alone {
            (entry.object, entry.offset)
        } else {
            let size = entry.end - entry.start;
            let shadow = objects
                .insert(VmObject::shadow(entry.object, entry.offset, size))
                .map_err(|_| FaultError::OutOfMemory)?;
            note_shadow_made(objects, entry.object, shadow);
            statistics::count(&statistics::DELAYED_COPIES);
            (shadow, 0)
        };
        let e = self.map.lookup_mut(address).expect("looked up above");
        e.object = object;
        e.offset = offset;
        e.needs_copy = false;
        Ok(*e)
    }

    /// Which of the entries in `range` (by position in it) map an object that others write
    /// directly: one with references from outside this map (another task's map, a message
    /// in flight). A shadow in front of such an object could not keep a copy still, so it is
    /// copied at once. (Entries of this map over one object, split from one region, map
    /// disjoint parts of it.) Decided for all before any entry changes; empty when no object
    /// has a second reference, the usual case.
    fn written_elsewhere(
        &self,
        objects: &Table<VmObject>,
        range: core::ops::Range<usize>,
    ) -> Result<alloc::vec::Vec<bool>, KernReturn> {
        let all = self.map.entries();
        // Program text (physical objects) is never written: only anonymous memory counts.
        let references = |id| {
            objects
                .get(id)
                .filter(|o: &&VmObject| o.kind() == ObjectKind::Anonymous)
                .map_or(0, |o| o.references() as usize)
        };
        let mut snapshots = alloc::vec::Vec::new();
        // (An object entries need a copy of is written by nobody: every write through them
        // makes a copy first.)
        if all[range.clone()]
            .iter()
            .all(|e| e.needs_copy || references(e.object) <= 1)
        {
            return Ok(snapshots);
        }
        snapshots
            .try_reserve(range.len())
            .map_err(|_| KernReturn::ResourceShortage)?;
        snapshots.extend(all[range].iter().map(|entry| {
            !entry.needs_copy && references(entry.object) > self.entries_over(entry.object)
        }));
        Ok(snapshots)
    }

    /// Makes writes through `entry`'s mappings fault again (it now needs a copy), keeping
    /// the pages mapped for reading: only pages resident in its object can be mapped
    /// writable (pages of backing objects are mapped read-only), so when they are few, only
    /// the span from the first to the last of them is walked, or they alone when they lie
    /// far apart.
    fn write_protect(&mut self, objects: &Table<VmObject>, entry: &MapEntry<ObjectId>) {
        let pages = (entry.end - entry.start) / PAGE_SIZE;
        let Some(object) = objects.get(entry.object) else {
            return;
        };
        if object.resident_count() as u64 * 8 > pages {
            self.pmap.write_protect_range(entry.start, entry.end);
            return;
        }
        let end_offset = entry.offset + (entry.end - entry.start);
        let ours = || {
            object
                .resident_offsets()
                .filter(|o| (entry.offset..end_offset).contains(o))
        };
        let (count, first, last) = ours().fold((0, u64::MAX, 0), |(n, first, last), o| {
            (n + 1, first.min(o), last.max(o))
        });
        if count == 0 {
            return;
        }
        let address = |offset: u64| entry.start + (offset - entry.offset);
        // A walk costs about as much per slot as a sixth of a walk from the root.
        if (last - first) / PAGE_SIZE < 6 * count {
            self.pmap
                .write_protect_range(address(first), address(last) + PAGE_SIZE);
            return;
        }
        for offset in ours() {
            self.pmap
                .write_protect_range(address(offset), address(offset) + PAGE_SIZE);
        }
    }

    /// The frame behind user page `page` if it is mapped with at least `access`, faulting it
    /// in if needed: how the kernel reads and writes user memory without touching user
    /// addresses (so a bad address is an error code, never a kernel fault). Inlined: the
    /// IPC path calls it twice a message, and a resident page costs a lookup only.
    #[inline(always)]
    pub fn frame_for(
        &mut self,
        objects: &mut Table<VmObject>,
        page: u64,
        access: Protection,
    ) -> Result<u64, FaultError> {
        self.frame_and_writable(objects, page, access)
            .map(|(frame, _)| frame)
    }

    /// `frame_for`, and whether the page is also mapped writable for user mode (`false` when
    /// it had to be faulted in).
    #[inline(always)]
    pub fn frame_and_writable(
        &mut self,
        objects: &mut Table<VmObject>,
        page: u64,
        access: Protection,
    ) -> Result<(u64, bool), FaultError> {
        use crate::arch::paging::flags;
        let write = access.allows(Protection::WRITE);
        if let Some((frame, entry_flags)) = self.pmap.translate(page) {
            let writable = entry_flags & flags::WRITABLE != 0;
            if entry_flags & flags::USER != 0 && (writable || !write) {
                // The kernel is about to write the page through the direct map: it must be
                // seen as written (`Pmap::mark_written`).
                if write && entry_flags & flags::DIRTY == 0 {
                    self.pmap.mark_written(page);
                }
                return Ok((frame & !(PAGE_SIZE - 1), writable));
            }
        }
        let frame = self.resolve_fault(objects, page, access)?;
        if write {
            self.pmap.mark_written(page);
        }
        Ok((frame, false))
    }

    /// A new anonymous region of `size` bytes at `address` (or anywhere at or above `from`
    /// when `address` is `None`); its start.
    pub fn allocate(
        &mut self,
        objects: &mut Table<VmObject>,
        address: Option<u64>,
        from: u64,
        size: u64,
    ) -> Result<u64, KernReturn> {
        let start = match address {
            Some(a) => a,
            None => self.map.find_space(from, size).ok_or(KernReturn::NoSpace)?,
        };
        let end = start.checked_add(size).ok_or(KernReturn::NoSpace)?;
        let object = objects
            .insert(VmObject::new(ObjectKind::Anonymous, size))
            .map_err(|_| KernReturn::ResourceShortage)?;
        match self
            .map
            .insert(MapEntry::new(start, end, object, 0, Protection::READ_WRITE))
        {
            Ok(()) => Ok(start),
            Err(e) => {
                release_object(objects, object);
                Err(map_error(e))
            }
        }
    }

    /// Maps `size` bytes of `object` from `offset` at `address` (or anywhere at or above
    /// `from`) with `protection`; its start. The map takes the caller's reference to
    /// `object` on success only.
    pub fn map_object(
        &mut self,
        address: Option<u64>,
        from: u64,
        size: u64,
        object: ObjectId,
        offset: u64,
        protection: Protection,
    ) -> Result<u64, KernReturn> {
        let start = match address {
            Some(a) => a,
            None => self.map.find_space(from, size).ok_or(KernReturn::NoSpace)?,
        };
        let end = start.checked_add(size).ok_or(KernReturn::NoSpace)?;
        self.map
            .insert(MapEntry::new(start, end, object, offset, protection))
            .map_err(map_error)?;
        Ok(start)
    }

    /// Removes every mapping in `[start, end)`. Pages of anonymous memory in the range are
    /// freed with it when nothing else can map them (no other task shares the object, no
    /// shadow reads through to it); otherwise they go when the object does.
    pub fn deallocate(
        &mut self,
        objects: &mut Table<VmObject>,
        start: u64,
        end: u64,
    ) -> Result<(), KernReturn> {
        let mut removed: alloc::vec::Vec<MapEntry<ObjectId>> = alloc::vec::Vec::new();
        let count = self
            .map
            .clipped_range(start, end, |o| duplicate(objects, *o))
            .map_err(map_error)?
            .len();
        removed
            .try_reserve(count)
            .map_err(|_| KernReturn::ResourceShortage)?;
        self.map
            .remove_range(start, end, |o| duplicate(objects, *o), |e| removed.push(e))
            .map_err(map_error)?;
        self.pmap.remove(start, end);
        for (i, entry) in removed.iter().enumerate() {
            // The removed range's pages can go now only if every reference to the object is
            // one of this map's entries (which map disjoint parts of it): not when another
            // task shares it, or a shadow reads through to it.
            let ours = self
                .map
                .entries()
                .iter()
                .filter(|e| e.object == entry.object)
                .count()
                + removed[i..]
                    .iter()
                    .filter(|e| e.object == entry.object)
                    .count();
            if let Some(object) = objects.get_mut(entry.object) {
                if object.kind() == ObjectKind::Anonymous && object.references() as usize == ours {
                    let (from, to) = (entry.offset, entry.offset + (entry.end - entry.start));
                    object.remove_pages(from, to, |frame| {
                        let _ = kernel_space::free_frame(frame);
                    });
                }
            }
        }
        for entry in removed {
            release_object(objects, entry.object);
        }
        Ok(())
    }

    /// Changes the protection (or maximum protection) of the fully mapped `[start, end)`.
    pub fn protect(
        &mut self,
        objects: &mut Table<VmObject>,
        start: u64,
        end: u64,
        set_maximum: bool,
        protection: Protection,
    ) -> Result<(), KernReturn> {
        if !self.map.is_fully_mapped(start, end) {
            return Err(KernReturn::InvalidAddress);
        }
        // Decode: no region may be given more than its maximum.
        let exceeds = self
            .map
            .entries()
            .iter()
            .filter(|e| e.start < end && e.end > start)
            .any(|e| !set_maximum && !e.max_protection.allows(protection));
        if exceeds {
            return Err(KernReturn::ProtectionFailure);
        }
        for entry in self
            .map
            .clipped_range(start, end, |o| duplicate(objects, *o))
            .map_err(map_error)?
        {
            if set_maximum {
                entry.max_protection = protection;
                entry.protection =
                    Protection::from_bits(entry.protection.bits() & protection.bits());
            } else {
                entry.protection = protection;
            }
        }
        // Mappings made under the old protection go; faults remake them under the new.
        self.pmap.remove(start, end);
        Ok(())
    }

    /// Takes `[start, end)` (fully mapped and readable) out as a [`MapCopy`]: moved (the
    /// range leaves this map; its pages change owner, nothing is copied) or copied on write
    /// (this map keeps the range; each entry gets a fresh object in front of the old one and
    /// the copy another, so whichever side writes copies the page).
    pub fn copy_out_range(
        &mut self,
        objects: &mut Table<VmObject>,
        start: u64,
        end: u64,
        move_out: bool,
    ) -> Result<MapCopy, KernReturn> {
        if !self.map.is_fully_mapped(start, end) {
            return Err(KernReturn::InvalidAddress);
        }
        if self
            .map
            .entries()
            .iter()
            .any(|e| e.start < end && e.end > start && !e.protection.allows(Protection::READ))
        {
            return Err(KernReturn::ProtectionFailure);
        }
        let count = self
            .map
            .clipped_range(start, end, |o| duplicate(objects, *o))
            .map_err(map_error)?
            .len();
        let mut segments: alloc::vec::Vec<MapEntry<ObjectId>> = alloc::vec::Vec::new();
        segments
            .try_reserve(count)
            .map_err(|_| KernReturn::ResourceShortage)?;
        let give_back = |segments, objects: &mut Table<VmObject>| {
            MapCopy {
                start,
                size: 0,
                entries: segments,
            }
            .release(objects)
        };
        let first = self
            .map
            .entries()
            .iter()
            .position(|e| e.start >= start)
            .unwrap_or(0);
        let snapshots = match self.written_elsewhere(objects, first..first + count) {
            Ok(snapshots) => snapshots,
            Err(e) => {
                give_back(segments, objects);
                return Err(e);
            }
        };
        for i in first..first + count {
            let entry = self.map.entries()[i];
            let len = entry.end - entry.start;
            let physical = objects
                .get(entry.object)
                .is_some_and(|o| matches!(o.kind(), ObjectKind::Physical { .. }));
            if move_out && !physical {
                segments.push(MapEntry {
                    object: duplicate(objects, entry.object),
                    ..entry
                });
                continue;
            }
            if physical {
                // Boot-archive pages are never written: the receiver writes into a copy.
                let Ok(theirs) = objects.insert(VmObject::shadow(entry.object, entry.offset, len))
                else {
                    give_back(segments, objects);
                    return Err(KernReturn::ResourceShortage);
                };
                duplicate(objects, entry.object);
                segments.push(MapEntry {
                    object: theirs,
                    offset: 0,
                    needs_copy: false,
                    ..entry
                });
                continue;
            }
            if snapshots.get(i - first) == Some(&true) {
                // Others go on writing the object: the receiver gets a copy of it as it is.
                match snapshot(objects, &entry) {
                    Ok(copy) => segments.push(MapEntry {
                        object: copy,
                        offset: 0,
                        needs_copy: false,
                        ..entry
                    }),
                    Err(e) => {
                        give_back(segments, objects);
                        return Err(e);
                    }
                }
                continue;
            }
            collapse(objects, entry.object);
            let theirs = match objects.insert(VmObject::shadow(entry.object, entry.offset, len)) {
                Ok(theirs) => theirs,
                Err(_) => {
                    give_back(segments, objects);
                    return Err(KernReturn::ResourceShortage);
                }
            };
            let ours = match objects.insert(VmObject::shadow(entry.object, entry.offset, len)) {
                Ok(ours) => ours,
                Err(_) => {
                    objects.remove(theirs);
                    give_back(segments, objects);
                    return Err(KernReturn::ResourceShortage);
                }
            };
            // The entry's reference moves to `ours`; `theirs` adds one.
            duplicate(objects, entry.object);
            make_siblings(objects, ours, theirs);
            let e = &mut self.map.entries_mut()[i];
            e.object = ours;
            e.offset = 0;
            e.needs_copy = false;
            segments.push(MapEntry {
                object: theirs,
                offset: 0,
                needs_copy: false,
                ..entry
            });
        }
        if move_out {
            // Already clipped at both ends: nothing splits, so nothing is duplicated; the
            // map's references go (the copy took its own above).
            let mut removed = alloc::vec::Vec::new();
            if removed.try_reserve(count).is_err() {
                give_back(segments, objects);
                return Err(KernReturn::ResourceShortage);
            }
            self.map
                .remove_range(start, end, |o| *o, |e| removed.push(e.object))
                .map_err(map_error)?;
            for object in removed {
                release_object(objects, object);
            }
        }
        self.pmap.remove(start, end);
        Ok(MapCopy {
            start,
            size: end - start,
            entries: segments,
        })
    }

    /// Whether anything is mapped in `[start, start + size)`.
    pub fn overlaps(&self, start: u64, size: u64) -> bool {
        let end = start.saturating_add(size);
        self.map
            .entries()
            .iter()
            .any(|e| e.start < end && e.end > start)
    }

    /// Puts a moved range back where it came from (a send that failed after taking it).
    pub fn restore_range(&mut self, copy: MapCopy) {
        for entry in copy.entries {
            // The range was taken out of this map just before: it is free.
            let _ = self.map.insert(entry);
        }
    }

    /// Puts `copy` into this map at a free address at or above `from`, read-write; returns
    /// the address. On failure the copy is given back to the caller untouched.
    pub fn copy_in_range(
        &mut self,
        from: u64,
        copy: MapCopy,
    ) -> Result<u64, (MapCopy, KernReturn)> {
        let Some(start) = self.map.find_space(from, copy.size) else {
            return Err((copy, KernReturn::NoSpace));
        };
        let mut address = start;
        for &old in &copy.entries {
            let len = old.end - old.start;
            // (Memory moved out of a fork's copy still needs its copy.)
            let entry = MapEntry {
                needs_copy: old.needs_copy,
                ..MapEntry::new(
                    address,
                    address + len,
                    old.object,
                    old.offset,
                    Protection::READ_WRITE,
                )
            };
            if let Err(e) = self.map.insert(entry) {
                // Undo the entries made so far; their references stay with `copy`.
                if address > start {
                    let _ = self.map.remove_range(start, address, |o| *o, |_| {});
                }
                return Err((copy, map_error(e)));
            }
            address += len;
        }
        // The map's entries hold the copy's references now.
        Ok(start)
    }

    /// Applies `change` to every entry of `[start, end)` (holes allowed).
    pub fn update(
        &mut self,
        objects: &mut Table<VmObject>,
        start: u64,
        end: u64,
        mut change: impl FnMut(&mut MapEntry<ObjectId>),
    ) -> Result<(), KernReturn> {
        for entry in self
            .map
            .clipped_range(start, end, |o| duplicate(objects, *o))
            .map_err(map_error)?
        {
            change(entry);
        }
        Ok(())
    }

    /// Empties the address space for another program (exec): every region goes, the page
    /// tables stay to be reused.
    pub fn reset(&mut self, objects: &mut Table<VmObject>) {
        self.map
            .clear(|entry| release_object(objects, entry.object));
        self.unshare();
        self.pmap.clear();
    }

    /// Unmaps everything, releasing the objects (freeing those that lose their last
    /// reference, with their pages), then the page tables.
    pub fn destroy(mut self, objects: &mut Table<VmObject>) {
        self.map
            .clear(|entry| release_object(objects, entry.object));
        self.pmap.destroy();
    }
}

/// One more reference to `id` (a map entry split in two), returning it.
fn duplicate(objects: &mut Table<VmObject>, id: ObjectId) -> ObjectId {
    if let Some(object) = objects.get_mut(id) {
        object.add_reference();
    }
    id
}

fn map_error(e: MapError) -> KernReturn {
    match e {
        MapError::InvalidRange => KernReturn::InvalidArgument,
        MapError::Overlap => KernReturn::NoSpace,
        MapError::OutOfMemory => KernReturn::ResourceShortage,
    }
}

/// A copy of what `entry` maps of its object, as it is now, for an object others write
/// directly (so neither a shadow in front of it nor write protection here would keep the
/// copy still): its resident pages are copied at once; the rest reads through to its backing
/// object, which nobody writes.
fn snapshot(
    objects: &mut Table<VmObject>,
    entry: &MapEntry<ObjectId>,
) -> Result<ObjectId, KernReturn> {
    let size = entry.end - entry.start;
    let source = objects
        .get(entry.object)
        .ok_or(KernReturn::InvalidArgument)?;
    let range = entry.offset..entry.offset + size;
    if let Some(offset) = source.first_missing(range.start, range.end) {
        // A page of it is with the default pager: the copy waits for it. The caller's system
        // call (a fork, a message carrying the memory) changes nothing, waits for the page
        // and runs again, until every page is resident and the copy can be made.
        super::notes::note_absent(super::notes::Absent {
            object: entry.object,
            offset,
            strategy: Strategy::Sequential,
            access: Protection::READ,
        });
        return Err(KernReturn::MemoryError);
    }
    let mut pages = alloc::vec::Vec::new();
    pages
        .try_reserve(source.resident_count())
        .map_err(|_| KernReturn::ResourceShortage)?;
    pages.extend(source.resident_offsets().filter(|o| range.contains(o)));
    let backing = source
        .backing()
        .map(|(backing, offset)| (backing, offset + entry.offset));
    let mut copy = VmObject::new(ObjectKind::Anonymous, size);
    copy.set_backing(backing);
    let copy = objects
        .insert(copy)
        .map_err(|_| KernReturn::ResourceShortage)?;
    if let Some((backing, _)) = backing {
        duplicate(objects, backing);
    }
    for offset in pages {
        let source = objects
            .get(entry.object)
            .and_then(|o| o.resident_page(offset))
            .expect("listed above");
        let Ok(frame) = new_frame(objects, copy, offset - entry.offset) else {
            release_object(objects, copy);
            return Err(KernReturn::ResourceShortage);
        };
        copy_page(source, frame);
    }
    Ok(copy)
}

/// Where the page at `offset` of `top` is along its backing chain.
enum Found {
    /// Resident in this object (`top` or one it is backed by), in this frame.
    Resident(ObjectId, u64),
    /// Only its pager has it: this object's, at this offset.
    Absent(ObjectId, u64),
    /// Nowhere: never written, or beyond the chain's objects.
    Nowhere,
}

/// Walks `top`'s backing chain for the page at `offset`; `None` if an object of the chain
/// is gone. (A fault's walk: inlined into it.)
#[inline(always)]
fn find_page(objects: &Table<VmObject>, top: ObjectId, offset: u64) -> Option<Found> {
    let (mut object, mut at) = (top, offset);
    loop {
        let o = objects.get(object)?;
        if at >= o.size() {
            return Some(Found::Nowhere);
        }
        if let Some(frame) = o.resident_page(at) {
            return Some(Found::Resident(object, frame));
        }
        if o.kind() == ObjectKind::Pager || o.is_paged_out(at) {
            return Some(Found::Absent(object, at));
        }
        match o.backing() {
            Some((backing, backing_offset)) => {
                object = backing;
                at += backing_offset;
            }
            None => return Some(Found::Nowhere),
        }
    }
}

/// `protection` without write: a page still shared with a backing object.
fn read_only(protection: Protection) -> Protection {
    Protection::from_bits(protection.bits() & !Protection::WRITE.bits())
}

/// Counts a page a pager supplied ahead of need the first time it is faulted on; whether
/// it was one (its object counts it too).
fn note_prefetch_used(frame: u64) -> bool {
    use super::page::page_flags::PREFETCHED;
    let used =
        kernel_space::with_mappings(|m| m.take_flag(frame / PAGE_SIZE, PREFETCHED)) == Some(true);
    if used {
        statistics::count(&statistics::PREFETCH_USED);
    }
    used
}

/// A page of memory that arrived in a message, as `take_frames` found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrived {
    /// A frame now the caller's.
    Frame(u64),
    /// Never touched: zeros.
    Zero,
    /// With a pager (paged out while in flight): it cannot be had now.
    Missing,
}

/// The frames holding the contents of `copy` (memory that arrived in a message), page by
/// page, now owned by the caller and by no object: a page only the copy held is taken as it
/// is, a shared one copied, a page never touched is `Zero`, a paged-out one `Missing`. The
/// copy's references are released. `Err` when no frame could be had for a copy; nothing is
/// lost then either (the copy is released, the frames taken so far freed).
pub fn take_frames(
    objects: &mut Table<VmObject>,
    copy: MapCopy,
) -> Result<alloc::vec::Vec<Arrived>, OutOfMemory> {
    let pages = (copy.size / PAGE_SIZE) as usize;
    let mut frames = alloc::vec::Vec::new();
    if frames.try_reserve_exact(pages).is_err() {
        copy.release(objects);
        return Err(OutOfMemory);
    }
    let mut failed = false;
    for entry in &copy.entries {
        let mut address = entry.start;
        while address < entry.end && !failed {
            let at = entry.object_offset(address);
            let frame = match page_at(objects, entry.object, at) {
                PageAt::Resident { holder, .. }
                    if holder == entry.object
                        && objects.get(holder).is_some_and(|o| {
                            o.references() == 1 && o.kind() == ObjectKind::Anonymous
                        }) =>
                {
                    let frame = objects.get_mut(holder).and_then(|o| o.take_page(at));
                    if let Some(frame) = frame {
                        kernel_space::with_mappings(|m| m.clear_owner(frame / PAGE_SIZE));
                    }
                    frame.map_or(Arrived::Zero, Arrived::Frame)
                }
                PageAt::Resident { frame: source, .. } => match kernel_space::allocate_user_frame()
                {
                    Some(frame) => {
                        copy_page(source, frame);
                        Arrived::Frame(frame)
                    }
                    None => {
                        failed = true;
                        Arrived::Zero
                    }
                },
                PageAt::WithPager => Arrived::Missing,
                PageAt::Zero => Arrived::Zero,
            };
            frames.push(frame);
            address += PAGE_SIZE;
        }
    }
    copy.release(objects);
    if failed {
        for arrived in frames {
            if let Arrived::Frame(frame) = arrived {
                let _ = kernel_space::free_frame(frame);
            }
        }
        return Err(OutOfMemory);
    }
    Ok(frames)
}

/// Where the contents of the page at `offset` of `object` are, following its backing chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAt {
    /// In frame `frame` of object `holder` (`object` itself or one it reads through to).
    Resident { holder: ObjectId, frame: u64 },
    /// With a pager (a pager's object, or paged out to the default pager): not in memory.
    WithPager,
    /// Nowhere: never written, zeros.
    Zero,
}

/// Where the page at `offset` of `object` is (see [`PageAt`]).
pub fn page_at(objects: &Table<VmObject>, object: ObjectId, offset: u64) -> PageAt {
    let (mut object, mut at) = (object, offset);
    while let Some(o) = objects.get(object) {
        if let Some(frame) = o.resident_page(at) {
            return PageAt::Resident {
                holder: object,
                frame,
            };
        }
        if o.kind() == ObjectKind::Pager || o.is_paged_out(at) {
            return PageAt::WithPager;
        }
        let Some((backing, backing_offset)) = o.backing() else {
            break;
        };
        (object, at) = (backing, at + backing_offset);
    }
    PageAt::Zero
}

/// Copies resident page `source` into `frame`, a fresh frame (counted as a copy).
fn copy_page(source: u64, frame: u64) {
    copy_frame(source, frame);
    statistics::count(&statistics::COPIES_ON_WRITE);
}

/// Copies the page in frame `source` into `frame`, a fresh frame nothing else uses.
pub fn copy_frame(source: u64, frame: u64) {
    debug_assert_ne!(source, frame);
    // SAFETY: both are frames of user memory, mapped by the direct map; `frame` is fresh,
    // referenced by nothing else yet, and distinct from `source`.
    unsafe {
        core::ptr::copy_nonoverlapping(
            phys_to_virt(source) as *const u8,
            phys_to_virt(frame) as *mut u8,
            PAGE_SIZE as usize,
        )
    };
}

/// A fresh frame for user memory, recorded as `object`'s page at `offset`.
fn new_frame(
    objects: &mut Table<VmObject>,
    object: ObjectId,
    offset: u64,
) -> Result<u64, FaultError> {
    new_frame_in::<false>(objects, object, offset).map(|(frame, _)| frame)
}

/// [`new_frame`], and with `COUNT` the object's reference count (read while it is at hand;
/// else 0).
#[inline(always)]
fn new_frame_in<const COUNT: bool>(
    objects: &mut Table<VmObject>,
    object: ObjectId,
    offset: u64,
) -> Result<(u64, u32), FaultError> {
    let frame = kernel_space::allocate_user_frame().ok_or(FaultError::OutOfMemory)?;
    match objects.get_mut(object).map(|o| {
        o.insert_page(offset, frame)
            .map(|()| if COUNT { o.references() } else { 0 })
    }) {
        Some(Ok(references)) => {
            kernel_space::with_mappings(|m| {
                m.set_owner(frame / PAGE_SIZE, object.to_raw(), offset);
                // Anonymous memory no pager has yet: pageout must return it, not drop it.
                m.note_flags(frame / PAGE_SIZE, super::page::page_flags::DIRTY);
            });
            Ok((frame, references))
        }
        _ => {
            let _ = kernel_space::free_frame(frame);
            Err(FaultError::OutOfMemory)
        }
    }
}

/// Merges into `id` every backing object that only `id` still uses (its last reference is
/// `id`'s): the backing's pages that `id` does not shadow move in front, the rest are
/// freed, and `id` then reads through to what the backing read through to. This is what
/// keeps repeated forks from growing chains without bound.
pub fn collapse(objects: &mut Table<VmObject>, id: ObjectId) {
    loop {
        let Some(object) = objects.get(id) else {
            return;
        };
        let Some((backing, backing_offset)) = object.backing() else {
            return;
        };
        let size = object.size();
        let Some(b) = objects.get(backing) else {
            return;
        };
        if b.references() != 1 || b.kind() != ObjectKind::Anonymous {
            return;
        }
        // A backing object with pages at the default pager is merged where its pager link
        // is at hand, on the way out of the kernel: the object in front takes over its pager.
        if b.has_default_pager() {
            if backing_offset == 0 && !object.has_default_pager() {
                super::notes::note_candidate(id, backing);
            }
            return;
        }
        let needed = b.resident_count();
        if objects
            .get_mut(id)
            .map(|o| o.reserve_pages(needed))
            .is_none_or(|r| r.is_err())
        {
            return; // no memory to merge now; the chain stays as it is
        }
        let Some(mut b) = objects.remove(backing) else {
            return;
        };
        let grandparent = b
            .backing()
            .map(|(g, g_offset)| (g, g_offset + backing_offset));
        let o = objects.get_mut(id).expect("checked above");
        for (offset, frame) in b.take_resident() {
            let front = offset.wrapping_sub(backing_offset);
            if offset >= backing_offset
                && front < size
                && !o.has_page(front)
                && !o.is_paged_out(front)
            {
                let _ = o.insert_page(front, frame); // room reserved above
                kernel_space::with_mappings(|m| m.set_owner(frame / PAGE_SIZE, id.to_raw(), front));
            } else if let Err(e) = kernel_space::free_frame(frame) {
                log::error!("vm: collapsed page {frame:#x}: {e}");
            }
        }
        // `b`'s reference to its own backing passes to `id`.
        o.set_backing(grandparent);
        statistics::count(&statistics::COLLAPSES);
    }
}

/// Records `shadow`, just made in front of `backing` by a write through an entry that
/// needed a copy, so that whichever of the object's users goes last but one lets the other
/// merge it at once: `backing`'s sibling hint names the newest shadow in front of it, and
/// that shadow's the one before it, if it is still in front ([`VmObject::sibling`]).
fn note_shadow_made(objects: &mut Table<VmObject>, backing: ObjectId, shadow: ObjectId) {
    let before = objects.get(backing).and_then(|b| b.sibling()).filter(|&s| {
        objects
            .get(s)
            .is_some_and(|o| o.backing().is_some_and(|(b, _)| b == backing))
    });
    if let Some(o) = objects.get_mut(shadow) {
        o.set_sibling(before);
    }
    if let Some(o) = objects.get_mut(backing) {
        o.set_sibling(Some(shadow));
    }
}

/// Records `a` and `b`, the two shadows one copy made over one backing object, as each
/// other's sibling (see [`VmObject::sibling`]).
fn make_siblings(objects: &mut Table<VmObject>, a: ObjectId, b: ObjectId) {
    if let Some(o) = objects.get_mut(a) {
        o.set_sibling(Some(b));
    }
    if let Some(o) = objects.get_mut(b) {
        o.set_sibling(Some(a));
    }
}

/// Drops one reference to `id`; frees the object and the frames it owns with the last one,
/// and so on down its backing chain. A backing object left to the freed object's sibling
/// alone is noted for the kernel to merge into it on its way out (`notes::note_front`):
/// otherwise its pages that the sibling has copies of would stay until the sibling's next
/// fork or fault (a parent's, after its child exits).
pub fn release_object(objects: &mut Table<VmObject>, id: ObjectId) {
    let mut next = Some(id);
    // The sibling of the object freed last (whose backing object `next` now is).
    let mut freed_sibling: Option<ObjectId> = None;
    while let Some(id) = next.take() {
        let Some(object) = objects.get_mut(id) else {
            return;
        };
        if !object.release() {
            if object.references() != 1 {
                return;
            }
            // Left to one user: the freed object's sibling, or the shadow a write through
            // an entry that needed a copy made in front of it last (`note_shadow_made`).
            let own = object.sibling();
            if let Some(front) = [freed_sibling, own].into_iter().flatten().find(|&front| {
                objects
                    .get(front)
                    .is_some_and(|f| f.backing().is_some_and(|(b, _)| b == id))
            }) {
                super::notes::note_front(front);
            }
            return;
        }
        // A pager's object with changes not yet returned stays until the kernel's next exit
        // (`Kernel::reap_pagers`), which returns them to the pager before its `terminate`
        // (Mach's clean at termination), then frees it. Nothing maps it meanwhile.
        if object.kind() == ObjectKind::Pager && has_dirty_pages(object) {
            super::notes::object_released(id, true);
            return;
        }
        let Some(mut object) = objects.remove(id) else {
            return;
        };
        if object.kind() == ObjectKind::Pager || object.has_default_pager() {
            super::notes::object_released(id, false);
        }
        freed_sibling = object.sibling();
        next = free_object(&mut object);
    }
}

/// Frees `object`'s frames; what it was backed by (its reference passes to the caller).
pub fn free_object(object: &mut VmObject) -> Option<ObjectId> {
    for frame in object.take_pages() {
        if let Err(e) = kernel_space::free_frame(frame) {
            log::error!("vm: object page {frame:#x}: {e}");
        }
    }
    object.backing().map(|(backing, _)| backing)
}

/// Whether a page of `object` was written since its pager last had it.
fn has_dirty_pages(object: &VmObject) -> bool {
    object
        .resident_offsets()
        .any(|offset| object.resident_page(offset).is_some_and(frame_is_dirty))
}

/// Whether the page in `frame` was written since it was last clean (its mappings' modified
/// bits gathered first).
pub fn frame_is_dirty(frame: u64) -> bool {
    super::pmap::referenced_and_modified(frame);
    kernel_space::with_mappings(|m| {
        m.flags(frame / PAGE_SIZE) & super::page::page_flags::DIRTY != 0
    }) == Some(true)
}

//! `vm_object`: a memory object's resident pages by offset, and where absent pages come from.
//!
//! An object is anonymous (absent pages are zero-filled), physical (its pages are a fixed run
//! of frames, such as program text inside the boot archive, shared by every task that maps
//! it and never freed), or backed by a pager (absent pages are asked of it; `kern::memory::pager`
//! keeps the link).

use crate::base::object_table::Id;
use alloc::boxed::Box;
use hashbrown::{HashMap, HashSet};

/// Where an object's absent pages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// Temporary memory: zero-filled on first touch, freed with the object.
    Anonymous,
    /// Frames `base + offset` that the object does not own (boot archive contents).
    Physical { base: u64 },
    /// A memory object of a pager's: absent pages are requested from it (`kern::memory::pager`);
    /// resident ones are owned by the object as an anonymous object's are.
    Pager,
}

/// An [`ObjectKind`] in one word: a physical object's base (page-aligned) with its low bits
/// clear, the other kinds as small tags (an object is 96 bytes, a size class of the heap's,
/// with its sibling link).
#[derive(Clone, Copy)]
struct PackedKind(u64);

impl PackedKind {
    const ANONYMOUS: u64 = 1;
    const PAGER: u64 = 2;

    fn pack(kind: ObjectKind) -> PackedKind {
        PackedKind(match kind {
            ObjectKind::Anonymous => Self::ANONYMOUS,
            ObjectKind::Pager => Self::PAGER,
            ObjectKind::Physical { base } => {
                assert!(
                    base.is_multiple_of(super::map::PAGE_SIZE),
                    "a physical object's base {base:#x} is not page-aligned"
                );
                base
            }
        })
    }

    #[inline(always)]
    fn unpack(self) -> ObjectKind {
        match self.0 {
            Self::ANONYMOUS => ObjectKind::Anonymous,
            Self::PAGER => ObjectKind::Pager,
            base => ObjectKind::Physical { base },
        }
    }
}

/// A memory object. Invariant: every resident offset is page-aligned and below `size`.
pub struct VmObject {
    kind: PackedKind,
    size: u64,
    /// For copy-on-write: the object (and the offset in it of this object's offset 0) that
    /// supplies the pages this one does not have. This object holds a reference to it.
    backing: Option<(Id<VmObject>, u64)>,
    /// Resident pages of an anonymous or pager object: offset → frame (owned by the object). A hash
    /// map because its growth is fallible (`try_reserve`): a full kernel heap is an error for
    /// the faulting task, never a kernel panic.
    pages: HashMap<u64, u64>,
    /// Map entries referring to this object.
    references: u32,
    /// Pages a pager supplied ahead of need that were then faulted on (a pager object's
    /// figure, `libipc::pager::ObjectStatistics::prefetch_used`).
    prefetch_used: u32,
    /// For anonymous memory with a default-pager object: the offsets whose contents the
    /// pager holds (returned by pageout); absent pages there are asked of it, the others
    /// read through to the backing object or are zero-filled. `None` until the object is
    /// first paged out.
    paged_out: Option<Box<HashSet<u64>>>,
    /// The other shadow made over the same backing object by the same copy (a fork's: this
    /// task's and the child's). When one goes and leaves the backing object to the other
    /// alone, the other merges it at once ([`notes::note_front`](super::notes::note_front))
    /// rather than at its next fork or fault. A hint: checked before it is used.
    sibling: Option<Id<VmObject>>,
}

impl VmObject {
    pub fn new(kind: ObjectKind, size: u64) -> Self {
        VmObject {
            kind: PackedKind::pack(kind),
            size: size.next_multiple_of(super::map::PAGE_SIZE),
            pages: HashMap::new(),
            references: 1,
            prefetch_used: 0,
            backing: None,
            paged_out: None,
            sibling: None,
        }
    }

    /// The other shadow made with this one over its backing object, if any (a hint).
    pub fn sibling(&self) -> Option<Id<VmObject>> {
        self.sibling
    }

    pub fn set_sibling(&mut self, sibling: Option<Id<VmObject>>) {
        self.sibling = sibling;
    }

    /// Pages supplied ahead of need and then faulted on, since the object was made.
    pub fn prefetch_used(&self) -> u32 {
        self.prefetch_used
    }

    /// One more page supplied ahead of need was faulted on.
    pub fn note_prefetch_used(&mut self) {
        self.prefetch_used = self.prefetch_used.saturating_add(1);
    }

    /// An anonymous object of `size` bytes in front of `backing` from `offset`: it reads
    /// through to the backing object until a page is written, which copies it here.
    pub fn shadow(backing: Id<VmObject>, offset: u64, size: u64) -> Self {
        VmObject {
            backing: Some((backing, offset)),
            ..Self::new(ObjectKind::Anonymous, size)
        }
    }

    /// Makes the object at least `size` bytes (a pager's object, mapped further than before).
    pub fn grow(&mut self, size: u64) {
        self.size = self.size.max(size.next_multiple_of(super::map::PAGE_SIZE));
    }

    /// The backing object and the offset in it of this object's offset 0.
    pub fn backing(&self) -> Option<(Id<VmObject>, u64)> {
        self.backing
    }

    pub fn set_backing(&mut self, backing: Option<(Id<VmObject>, u64)>) {
        self.backing = backing;
    }

    pub fn references(&self) -> u32 {
        self.references
    }

    /// Makes room for `additional` more resident pages (so that inserting them cannot fail).
    pub fn reserve_pages(
        &mut self,
        additional: usize,
    ) -> Result<(), crate::base::object_table::OutOfMemory> {
        self.pages
            .try_reserve(additional)
            .map_err(|_| crate::base::object_table::OutOfMemory)
    }

    /// Whether a page is resident at `offset` in this object itself (not its backing).
    pub fn has_page(&self, offset: u64) -> bool {
        self.pages.contains_key(&offset)
    }

    #[inline(always)]
    pub fn kind(&self) -> ObjectKind {
        self.kind.unpack()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frame holding the page at `offset`, if there is one without allocating.
    pub fn resident_page(&self, offset: u64) -> Option<u64> {
        match self.kind() {
            ObjectKind::Physical { base } => (offset < self.size).then_some(base + offset),
            ObjectKind::Anonymous | ObjectKind::Pager => self.pages.get(&offset).copied(),
        }
    }

    /// Records `frame` as the page at `offset` (now owned by the object); `Err` (nothing
    /// recorded) when the kernel heap is exhausted.
    pub fn insert_page(
        &mut self,
        offset: u64,
        frame: u64,
    ) -> Result<(), crate::base::object_table::OutOfMemory> {
        debug_assert!(offset.is_multiple_of(super::map::PAGE_SIZE) && offset < self.size);
        debug_assert!(matches!(
            self.kind(),
            ObjectKind::Anonymous | ObjectKind::Pager
        ));
        self.pages
            .try_reserve(1)
            .map_err(|_| crate::base::object_table::OutOfMemory)?;
        self.pages.insert(offset, frame);
        Ok(())
    }

    /// Whether the default pager holds the page at `offset` (see `paged_out`).
    pub fn is_paged_out(&self, offset: u64) -> bool {
        self.paged_out
            .as_ref()
            .is_some_and(|set| set.contains(&offset))
    }

    /// Pages in `[start, end)` the default pager holds and memory does not.
    pub fn paged_out_in(&self, start: u64, end: u64) -> u64 {
        self.paged_out.as_ref().map_or(0, |set| {
            set.iter()
                .filter(|&&o| (start..end).contains(&o) && !self.pages.contains_key(&o))
                .count() as u64
        })
    }

    /// Whether the object has a default-pager object (it was chosen for pageout once).
    pub fn has_default_pager(&self) -> bool {
        self.paged_out.is_some()
    }

    /// The lowest offset in `[start, end)` whose page is with the default pager and not
    /// resident: its contents can only be had by asking the pager.
    pub fn first_missing(&self, start: u64, end: u64) -> Option<u64> {
        self.paged_out.as_ref().and_then(|set| {
            set.iter()
                .copied()
                .filter(|o| (start..end).contains(o) && !self.pages.contains_key(o))
                .min()
        })
    }

    /// Takes the record of the pages the default pager holds (the object's pager moves to
    /// another object: `kern::memory::paged_collapse`).
    pub fn take_paged_out(&mut self) -> Option<Box<HashSet<u64>>> {
        self.paged_out.take()
    }

    /// Gives the object a record of the pages the default pager holds (taken from the
    /// object whose pager it takes over), less the offsets it has resident pages of: its
    /// own pages shadow those, and a clean one must not be taken for the pager's copy.
    pub fn adopt_paged_out(&mut self, mut set: Box<HashSet<u64>>) {
        set.retain(|offset| !self.pages.contains_key(offset) && *offset < self.size);
        self.paged_out = Some(set);
    }

    /// Gives the object its (empty) record of paged-out pages: it has a default-pager object.
    pub fn attach_default_pager(&mut self) -> Result<(), crate::base::object_table::OutOfMemory> {
        if self.paged_out.is_none() {
            self.paged_out = Some(
                crate::base::object_table::try_box(HashSet::new())
                    .map_err(|_| crate::base::object_table::OutOfMemory)?,
            );
        }
        Ok(())
    }

    /// Records that the default pager now holds the page at `offset`; `Err` (nothing
    /// recorded) when the kernel heap is exhausted.
    pub fn note_paged_out(
        &mut self,
        offset: u64,
    ) -> Result<(), crate::base::object_table::OutOfMemory> {
        let set = self
            .paged_out
            .as_mut()
            .ok_or(crate::base::object_table::OutOfMemory)?;
        set.try_reserve(1)
            .map_err(|_| crate::base::object_table::OutOfMemory)?;
        set.insert(offset);
        Ok(())
    }

    /// Takes the page at `offset` out of the object: its frame is the caller's.
    pub fn take_page(&mut self, offset: u64) -> Option<u64> {
        self.pages.remove(&offset)
    }

    /// Offsets of the pages resident in this object itself.
    pub fn resident_offsets(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.keys().copied()
    }

    pub fn resident_count(&self) -> usize {
        self.pages.len()
    }

    pub fn add_reference(&mut self) {
        self.references += 1;
    }

    /// Drops one reference; true when it was the last (the caller then frees the object).
    pub fn release(&mut self) -> bool {
        self.references -= 1;
        self.references == 0
    }

    /// Takes the resident pages in `[start, end)` (object offsets), for freeing: the range is
    /// no longer mapped by anyone.
    pub fn remove_pages(&mut self, start: u64, end: u64, mut free: impl FnMut(u64)) {
        self.pages.retain(|offset, frame| {
            let inside = (start..end).contains(offset);
            if inside {
                free(*frame);
            }
            !inside
        });
    }

    /// Takes the resident pages with their offsets.
    pub fn take_resident(&mut self) -> impl Iterator<Item = (u64, u64)> {
        core::mem::take(&mut self.pages).into_iter()
    }

    /// Takes the frames the object owns, for freeing.
    pub fn take_pages(&mut self) -> impl Iterator<Item = u64> {
        core::mem::take(&mut self.pages).into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_objects_map_offsets_to_frames() {
        let o = VmObject::new(ObjectKind::Physical { base: 0x7000_0000 }, 0x2100);
        assert_eq!(o.size(), 0x3000);
        assert_eq!(o.resident_page(0x1000), Some(0x7000_1000));
        assert_eq!(o.resident_page(0x3000), None);
    }

    #[test]
    fn anonymous_objects_own_their_pages() {
        let mut o = VmObject::new(ObjectKind::Anonymous, 0x4000);
        assert_eq!(o.resident_page(0), None);
        o.insert_page(0x1000, 0xa000).unwrap();
        o.insert_page(0x3000, 0xb000).unwrap();
        assert_eq!(o.resident_page(0x1000), Some(0xa000));
        assert_eq!(o.resident_count(), 2);
        let mut frames: Vec<u64> = o.take_pages().collect();
        frames.sort();
        assert_eq!(frames, vec![0xa000, 0xb000]);
        assert_eq!(o.resident_count(), 0);
    }

    #[test]
    fn removing_a_range_of_pages() {
        let mut o = VmObject::new(ObjectKind::Anonymous, 0x4000);
        for i in 0..4 {
            o.insert_page(i * 0x1000, 0xa000 + i * 0x1000).unwrap();
        }
        let mut freed = Vec::new();
        o.remove_pages(0x1000, 0x3000, |f| freed.push(f));
        freed.sort();
        assert_eq!(freed, vec![0xb000, 0xc000]);
        assert_eq!(o.resident_page(0x1000), None);
        assert_eq!(o.resident_page(0x3000), Some(0xd000));
    }

    #[test]
    fn references_count_down_to_release() {
        let mut o = VmObject::new(ObjectKind::Anonymous, 0x1000);
        o.add_reference();
        assert!(!o.release());
        assert!(o.release());
    }
}

#[cfg(test)]
mod packing {
    use super::*;

    #[test]
    fn an_object_stays_in_the_heaps_96_byte_class_and_its_kind_round_trips() {
        assert!(core::mem::size_of::<VmObject>() <= 96);
        for kind in [
            ObjectKind::Anonymous,
            ObjectKind::Pager,
            ObjectKind::Physical { base: 0 },
            ObjectKind::Physical {
                base: 0x7fff_f000_0000,
            },
        ] {
            assert_eq!(VmObject::new(kind, 4096).kind(), kind);
        }
    }
}

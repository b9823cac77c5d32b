//! `vm_map`: a task's address space as a sorted set of entries over memory objects.
//!
//! Entries are kept in a vector sorted by start address: lookups are binary searches
//! (O(log n)), insertions are fallible (`try_reserve`), and maps have tens of entries, so the
//! occasional shift on insertion costs less than a tree's allocations.

use alloc::vec::Vec;
use core::fmt;

pub const PAGE_SIZE: u64 = 4096;

/// Access rights to a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection(u8);

impl Protection {
    pub const NONE: Protection = Protection(0);
    pub const READ: Protection = Protection(1);
    pub const WRITE: Protection = Protection(2);
    pub const EXECUTE: Protection = Protection(4);
    pub const READ_WRITE: Protection = Protection(3);
    pub const READ_EXECUTE: Protection = Protection(5);
    pub const ALL: Protection = Protection(7);

    pub const fn union(self, other: Protection) -> Protection {
        Protection(self.0 | other.0)
    }

    /// Whether every right in `other` is in `self`.
    pub const fn allows(self, other: Protection) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From read (1), write (2), execute (4) bits; other bits are dropped.
    pub const fn from_bits(bits: u8) -> Protection {
        Protection(bits & 7)
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = if self.allows(Protection::READ) {
            'r'
        } else {
            '-'
        };
        let w = if self.allows(Protection::WRITE) {
            'w'
        } else {
            '-'
        };
        let x = if self.allows(Protection::EXECUTE) {
            'x'
        } else {
            '-'
        };
        write!(f, "{r}{w}{x}")
    }
}

/// What a child task gets of a region at fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inheritance {
    Share,
    Copy,
    None,
}

/// How the region will be accessed; drives read-ahead once pagers exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Normal,
    Sequential,
    Reverse,
    Random,
}

/// One region `[start, end)` mapping `object` from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry<O> {
    pub start: u64,
    pub end: u64,
    pub object: O,
    pub offset: u64,
    pub protection: Protection,
    pub max_protection: Protection,
    pub inheritance: Inheritance,
    pub strategy: Strategy,
    /// Mach's `needs_copy`: a fork left the object shared with the copy's entries, every one
    /// of them mapping it read-only; the first write through this entry gives it an object
    /// of its own (a shadow in front, or the object itself once nobody else has it).
    pub needs_copy: bool,
}

impl<O> MapEntry<O> {
    /// A region with the usual defaults (max protection all, copy on fork, normal access).
    pub fn new(start: u64, end: u64, object: O, offset: u64, protection: Protection) -> Self {
        MapEntry {
            start,
            end,
            object,
            offset,
            protection,
            max_protection: Protection::ALL,
            inheritance: Inheritance::Copy,
            strategy: Strategy::Normal,
            needs_copy: false,
        }
    }

    /// Offset in the object of address `address` (inside the entry).
    pub fn object_offset(&self, address: u64) -> u64 {
        self.offset + (address - self.start)
    }
}

/// Why an entry could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Not page-aligned, empty, or outside the map's range.
    InvalidRange,
    /// Overlaps an existing entry.
    Overlap,
    /// No kernel memory for the entry.
    OutOfMemory,
}

/// A sorted, non-overlapping set of entries within `[min, max)`.
pub struct VmMap<O> {
    entries: Vec<MapEntry<O>>,
    min: u64,
    max: u64,
}

impl<O> VmMap<O> {
    pub const fn new(min: u64, max: u64) -> Self {
        VmMap {
            entries: Vec::new(),
            min,
            max,
        }
    }

    /// Index of the first entry whose end is above `address`.
    fn first_ending_above(&self, address: u64) -> usize {
        self.entries.partition_point(|e| e.end <= address)
    }

    /// The entry containing `address`.
    pub fn lookup(&self, address: u64) -> Option<&MapEntry<O>> {
        let entry = self.entries.get(self.first_ending_above(address))?;
        (entry.start <= address).then_some(entry)
    }

    pub fn lookup_mut(&mut self, address: u64) -> Option<&mut MapEntry<O>> {
        let i = self.first_ending_above(address);
        let entry = self.entries.get_mut(i)?;
        (entry.start <= address).then_some(entry)
    }

    /// Adds an entry; its range must be page-aligned, non-empty, inside the map and free.
    pub fn insert(&mut self, entry: MapEntry<O>) -> Result<(), MapError> {
        if entry.start >= entry.end
            || !entry.start.is_multiple_of(PAGE_SIZE)
            || !entry.end.is_multiple_of(PAGE_SIZE)
            || entry.start < self.min
            || entry.end > self.max
        {
            return Err(MapError::InvalidRange);
        }
        let i = self.first_ending_above(entry.start);
        if self
            .entries
            .get(i)
            .is_some_and(|next| next.start < entry.end)
        {
            return Err(MapError::Overlap);
        }
        self.entries
            .try_reserve(1)
            .map_err(|_| MapError::OutOfMemory)?;
        self.entries.insert(i, entry);
        Ok(())
    }

    /// The lowest page-aligned address at or above `from` with `size` bytes free.
    pub fn find_space(&self, from: u64, size: u64) -> Option<u64> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        let mut candidate = from.max(self.min).next_multiple_of(PAGE_SIZE);
        for e in &self.entries[self.first_ending_above(candidate)..] {
            if candidate.checked_add(size)? <= e.start {
                break;
            }
            candidate = candidate.max(e.end);
        }
        (candidate.checked_add(size)? <= self.max).then_some(candidate)
    }

    /// Splits the entry that strictly contains `at`, so that `at` is an entry boundary; the
    /// right half's object reference comes from `duplicate` (which takes a new reference).
    pub fn clip(&mut self, at: u64, duplicate: impl FnOnce(&O) -> O) -> Result<(), MapError> {
        let i = self.first_ending_above(at);
        let Some(entry) = self.entries.get(i) else {
            return Ok(());
        };
        if entry.start >= at || !at.is_multiple_of(PAGE_SIZE) {
            return Ok(());
        }
        self.entries
            .try_reserve(1)
            .map_err(|_| MapError::OutOfMemory)?;
        let left = &mut self.entries[i];
        let mut right = MapEntry {
            start: at,
            offset: left.object_offset(at),
            object: duplicate(&left.object),
            ..*left
        };
        right.end = left.end;
        left.end = at;
        self.entries.insert(i + 1, right);
        Ok(())
    }

    /// Whether `[start, end)` is covered by entries with no hole.
    pub fn is_fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut cursor = start;
        for e in &self.entries[self.first_ending_above(start)..] {
            if cursor >= end {
                break;
            }
            if e.start > cursor {
                return false;
            }
            cursor = e.end;
        }
        cursor >= end
    }

    /// Clips at `start` and `end` and returns the entries inside `[start, end)`.
    pub fn clipped_range(
        &mut self,
        start: u64,
        end: u64,
        mut duplicate: impl FnMut(&O) -> O,
    ) -> Result<&mut [MapEntry<O>], MapError> {
        if !start.is_multiple_of(PAGE_SIZE)
            || !end.is_multiple_of(PAGE_SIZE)
            || start >= end
            || start < self.min
            || end > self.max
        {
            return Err(MapError::InvalidRange);
        }
        self.clip(start, &mut duplicate)?;
        self.clip(end, &mut duplicate)?;
        // After the clips no entry straddles `start` or `end`.
        let first = self.first_ending_above(start);
        let last = self.first_ending_above(end);
        Ok(&mut self.entries[first..last])
    }

    /// Removes the parts of entries inside `[start, end)`, handing each removed entry to
    /// `release`.
    pub fn remove_range(
        &mut self,
        start: u64,
        end: u64,
        duplicate: impl FnMut(&O) -> O,
        mut release: impl FnMut(MapEntry<O>),
    ) -> Result<(), MapError> {
        let count = self.clipped_range(start, end, duplicate)?.len();
        let first = self.first_ending_above(start);
        for entry in self.entries.drain(first..first + count) {
            release(entry);
        }
        Ok(())
    }

    /// Removes every entry, handing each to `release`.
    pub fn clear(&mut self, mut release: impl FnMut(MapEntry<O>)) {
        for entry in self.entries.drain(..) {
            release(entry);
        }
    }

    /// Kernel heap bytes the map's entries take (its capacity, used or not).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * core::mem::size_of::<MapEntry<O>>()
    }

    pub fn entries(&self) -> &[MapEntry<O>] {
        &self.entries
    }

    /// The entries, to change what they map or how (not their ranges: those stay sorted and
    /// disjoint only through the other methods).
    pub fn entries_mut(&mut self) -> &mut [MapEntry<O>] {
        &mut self.entries
    }

    /// Room for `additional` more entries (a fork's child, built entry by entry).
    pub fn reserve(&mut self, additional: usize) -> Result<(), MapError> {
        self.entries
            .try_reserve_exact(additional)
            .map_err(|_| MapError::OutOfMemory)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start: u64, end: u64) -> MapEntry<u32> {
        MapEntry::new(start, end, 0, 0, Protection::READ)
    }

    #[test]
    fn lookup_finds_the_containing_entry() {
        let mut m = VmMap::new(0x1000, 0x100_0000);
        m.insert(entry(0x4000, 0x6000)).unwrap();
        m.insert(entry(0x1000, 0x2000)).unwrap();
        m.insert(entry(0x8000, 0x9000)).unwrap();
        assert_eq!(m.lookup(0x4000).unwrap().start, 0x4000);
        assert_eq!(m.lookup(0x5fff).unwrap().start, 0x4000);
        assert!(m.lookup(0x6000).is_none());
        assert!(m.lookup(0x3000).is_none());
        assert_eq!(m.lookup(0x1234).unwrap().end, 0x2000);
        assert!(m.lookup(0x9000).is_none());
        assert_eq!(
            m.entries().iter().map(|e| e.start).collect::<Vec<_>>(),
            vec![0x1000, 0x4000, 0x8000]
        );
    }

    #[test]
    fn overlapping_and_malformed_entries_are_refused() {
        let mut m = VmMap::new(0x1000, 0x10_0000);
        m.insert(entry(0x4000, 0x6000)).unwrap();
        assert_eq!(m.insert(entry(0x5000, 0x7000)), Err(MapError::Overlap));
        assert_eq!(m.insert(entry(0x3000, 0x5000)), Err(MapError::Overlap));
        assert_eq!(m.insert(entry(0x3000, 0x7000)), Err(MapError::Overlap));
        assert_eq!(m.insert(entry(0x3000, 0x3000)), Err(MapError::InvalidRange));
        assert_eq!(m.insert(entry(0x3001, 0x4000)), Err(MapError::InvalidRange));
        assert_eq!(m.insert(entry(0x0, 0x1000)), Err(MapError::InvalidRange));
        assert_eq!(
            m.insert(entry(0xf_f000, 0x11_0000)),
            Err(MapError::InvalidRange)
        );
        m.insert(entry(0x3000, 0x4000)).unwrap();
        m.insert(entry(0x6000, 0x7000)).unwrap();
    }

    #[test]
    fn find_space_is_first_fit() {
        let mut m = VmMap::new(0x1000, 0x20000);
        m.insert(entry(0x1000, 0x3000)).unwrap();
        m.insert(entry(0x4000, 0x8000)).unwrap();
        assert_eq!(m.find_space(0, 0x1000), Some(0x3000));
        assert_eq!(m.find_space(0, 0x2000), Some(0x8000));
        assert_eq!(m.find_space(0x9000, 0x1000), Some(0x9000));
        assert_eq!(m.find_space(0, 0x18000), Some(0x8000));
        assert_eq!(m.find_space(0, 0x19000), None);
        assert_eq!(m.find_space(0, 0x1234), None);
    }

    fn starts(m: &VmMap<u32>) -> Vec<(u64, u64, u64, u32)> {
        m.entries()
            .iter()
            .map(|e| (e.start, e.end, e.offset, e.object))
            .collect()
    }

    #[test]
    fn clipping_splits_with_adjusted_offsets() {
        let mut m = VmMap::new(0x1000, 0x100_0000);
        m.insert(MapEntry::new(0x4000, 0x8000, 7, 0x10000, Protection::READ))
            .unwrap();
        m.clip(0x6000, |o| o + 100).unwrap();
        assert_eq!(
            starts(&m),
            vec![(0x4000, 0x6000, 0x10000, 7), (0x6000, 0x8000, 0x12000, 107)]
        );
        // Clipping at a boundary or outside any entry changes nothing.
        m.clip(0x6000, |_| unreachable!()).unwrap();
        m.clip(0x9000, |_| unreachable!()).unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn clipped_range_gives_the_inside_entries() {
        let mut m = VmMap::new(0x1000, 0x100_0000);
        m.insert(entry(0x2000, 0x4000)).unwrap();
        m.insert(entry(0x5000, 0x9000)).unwrap();
        let inside = m.clipped_range(0x3000, 0x7000, |o| *o).unwrap();
        assert_eq!(
            inside.iter().map(|e| (e.start, e.end)).collect::<Vec<_>>(),
            vec![(0x3000, 0x4000), (0x5000, 0x7000)]
        );
        for e in inside.iter_mut() {
            e.protection = Protection::NONE;
        }
        let all: Vec<_> = m
            .entries()
            .iter()
            .map(|e| (e.start, e.end, e.protection))
            .collect();
        assert_eq!(
            all,
            vec![
                (0x2000, 0x3000, Protection::READ),
                (0x3000, 0x4000, Protection::NONE),
                (0x5000, 0x7000, Protection::NONE),
                (0x7000, 0x9000, Protection::READ)
            ]
        );
        assert_eq!(
            m.clipped_range(0x3001, 0x4000, |o| *o).err(),
            Some(MapError::InvalidRange)
        );
        assert_eq!(
            m.clipped_range(0x4000, 0x4000, |o| *o).err(),
            Some(MapError::InvalidRange)
        );
    }

    #[test]
    fn removing_a_range_releases_its_parts() {
        let mut m = VmMap::new(0x1000, 0x100_0000);
        m.insert(entry(0x2000, 0x8000)).unwrap();
        let mut released = Vec::new();
        m.remove_range(0x3000, 0x5000, |o| *o, |e| released.push((e.start, e.end)))
            .unwrap();
        assert_eq!(released, vec![(0x3000, 0x5000)]);
        assert_eq!(
            m.entries()
                .iter()
                .map(|e| (e.start, e.end))
                .collect::<Vec<_>>(),
            vec![(0x2000, 0x3000), (0x5000, 0x8000)]
        );
        assert!(m.lookup(0x4000).is_none());
        assert!(m.is_fully_mapped(0x5000, 0x8000));
        assert!(!m.is_fully_mapped(0x2000, 0x8000));
        assert!(m.is_fully_mapped(0x2000, 0x3000));
    }

    #[test]
    fn protection_checks() {
        assert!(Protection::READ_WRITE.allows(Protection::READ));
        assert!(!Protection::READ.allows(Protection::WRITE));
        assert_eq!(Protection::READ_EXECUTE.to_string(), "r-x");
    }
}

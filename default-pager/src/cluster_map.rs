//! A memory object's cluster map: where on disk each of its clusters is, and which pages of
//! each cluster have a place, hold data, are being written or were lost (OSF's `vs_map`).
//!
//! Small objects keep their entries inline ([`DIRECT_CLUSTERS`] of them: 64 KiB to 512 KiB
//! of object, by cluster size), with no allocation at all. Bigger objects keep a table of
//! blocks of [`BLOCK_CLUSTERS`] entries; the table reaches only as far as the last block in
//! use and a block is allocated when the first of its clusters is, so a big sparse object
//! costs little. A map switches from direct to indirect when its object grows past the
//! inline entries. Every allocation is fallible and refused with [`MapError::NoMemory`].
//!
//! A page's life: [`crate::runs::plan_write`] gives it a place (`allocated`) and marks it
//! `writing`; the write's completion makes it `present` ([`ObjectMap::mark_written`]) or
//! `failed` ([`ObjectMap::mark_failed`]); a cancelled write takes it back
//! ([`ObjectMap::cancel_write`]). A cluster with a failed page is in error: reads of it are
//! refused until its failed pages are written again, because the failed write may have left
//! any of its sectors damaged.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use crate::segment::{Location, Segments};
use crate::{cluster_bytes, valid_cluster_pages, PAGE_SIZE};

/// Clusters whose entries a map keeps inline, before it needs an indirect table.
pub const DIRECT_CLUSTERS: usize = 16;

/// Entries in one block of an indirect map (a block is 2 KiB).
pub const BLOCK_CLUSTERS: usize = 128;

/// Why a map operation was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The cluster size is not a power of two from 1 to 8 pages.
    BadClusterSize,
    /// A cluster or page past the object's end, or an empty range.
    OutOfRange,
    /// No memory for the map's entries.
    NoMemory,
    /// No segment of the object's cluster size has a free cluster.
    Full,
    /// A page of a cluster that has no place on disk, or a page without a place (written or
    /// failed without a write planned).
    NotAllocated,
    /// A page being written: wait for the write's completion.
    WriteInFlight,
    /// `grow` to a smaller size: objects do not shrink.
    WouldShrink,
}

impl fmt::Display for MapError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            MapError::BadClusterSize => "cluster size is not a power of two from 1 to 8 pages",
            MapError::OutOfRange => "outside the object",
            MapError::NoMemory => "no memory for the object's cluster map",
            MapError::Full => "no free cluster on the paging segments",
            MapError::NotAllocated => "page has no place on disk",
            MapError::WriteInFlight => "page is being written",
            MapError::WouldShrink => "objects do not shrink",
        })
    }
}

/// One allocated cluster of an object: its place on disk and bitmaps of its pages (bit `n`
/// is the cluster's page `n`).
///
/// Invariants: `present`, `writing` and `failed` are within `allocated`; `present` and
/// `failed` are disjoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterEntry {
    location: Location,
    /// Pages with a place on disk (written, being written, or failed).
    allocated: u8,
    /// Pages whose data is on disk.
    present: u8,
    /// Pages with a write in flight.
    writing: u8,
    /// Pages whose last write (or a read) failed.
    failed: u8,
    /// A read of the cluster failed: its blocks are bad, and it is never reused.
    unreadable: bool,
}

impl ClusterEntry {
    /// Where the cluster is on disk.
    pub fn location(&self) -> Location {
        self.location
    }

    /// Bitmap of the pages with a place on disk.
    pub fn allocated_pages(&self) -> u8 {
        self.allocated
    }

    /// Bitmap of the pages whose data is on disk.
    pub fn present_pages(&self) -> u8 {
        self.present
    }

    /// Bitmap of the pages with a write in flight.
    pub fn writing_pages(&self) -> u8 {
        self.writing
    }

    /// Bitmap of the pages whose last write failed.
    pub fn failed_pages(&self) -> u8 {
        self.failed
    }

    /// Whether a write of the cluster failed and was not redone: reads of it get an error.
    pub fn has_error(&self) -> bool {
        self.failed != 0
    }
}

/// What the map knows of one page in an allocated cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLocation {
    /// The cluster holding the page.
    pub location: Location,
    /// The page's index within the cluster.
    pub page_in_cluster: u32,
    pub allocated: bool,
    pub present: bool,
    pub writing: bool,
    /// The page's data is lost: its last write, or a read of it, failed.
    pub failed: bool,
    /// The cluster is in error (see [`ClusterEntry::has_error`]).
    pub cluster_error: bool,
}

/// An object cluster's entry: `None` while it has no place on disk.
type Slot = Option<ClusterEntry>;

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "inline entries are the point of a direct map: a small object allocates nothing"
)]
enum Storage {
    /// The entries of an object of at most [`DIRECT_CLUSTERS`] clusters.
    Direct([Slot; DIRECT_CLUSTERS]),
    /// Blocks of [`BLOCK_CLUSTERS`] entries. An empty block, or one past the table's end,
    /// holds only unallocated clusters.
    Indirect(Vec<Vec<Slot>>),
}

/// The cluster map of one memory object of `size` bytes, in clusters of `cluster_pages`.
///
/// Invariants: no entry lies past the object's last cluster; `clusters_held`,
/// `pages_allocated`, `pages_present` and `pages_writing` sum up the entries.
#[derive(Debug)]
pub struct ObjectMap {
    size: u64,
    cluster_pages: u32,
    storage: Storage,
    clusters_held: u64,
    pages_allocated: u64,
    pages_present: u64,
    pages_writing: u64,
}

/// Which bits of a cluster's bitmaps one operation touches: per object cluster, a mask.
struct ClusterMask {
    object_cluster: u64,
    mask: u8,
}

impl ObjectMap {
    /// An empty map for an object of `size` bytes with clusters of `cluster_pages` pages.
    /// Allocates nothing: entries come as clusters are allocated.
    pub fn new(size: u64, cluster_pages: u32) -> Result<ObjectMap, MapError> {
        if !valid_cluster_pages(cluster_pages) {
            return Err(MapError::BadClusterSize);
        }
        let mut map = ObjectMap {
            size,
            cluster_pages,
            storage: Storage::Direct([None; DIRECT_CLUSTERS]),
            clusters_held: 0,
            pages_allocated: 0,
            pages_present: 0,
            pages_writing: 0,
        };
        if map.object_clusters() > DIRECT_CLUSTERS as u64 {
            map.storage = Storage::Indirect(Vec::new());
        }
        Ok(map)
    }

    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Pages per cluster.
    pub fn cluster_pages(&self) -> u32 {
        self.cluster_pages
    }

    /// Bytes per cluster.
    pub fn cluster_bytes(&self) -> u64 {
        cluster_bytes(self.cluster_pages)
    }

    /// Clusters the object spans (the last may be partly past its end).
    pub fn object_clusters(&self) -> u64 {
        self.size.div_ceil(self.cluster_bytes())
    }

    /// Pages the object spans.
    pub fn object_pages(&self) -> u64 {
        self.size.div_ceil(PAGE_SIZE)
    }

    /// Whether the entries are inline (no indirect table).
    pub fn is_direct(&self) -> bool {
        matches!(self.storage, Storage::Direct(_))
    }

    /// Clusters with a place on disk.
    pub fn clusters_held(&self) -> u64 {
        self.clusters_held
    }

    /// Pages with a place on disk.
    pub fn pages_allocated(&self) -> u64 {
        self.pages_allocated
    }

    /// Pages whose data is on disk.
    pub fn pages_present(&self) -> u64 {
        self.pages_present
    }

    /// Pages with a write in flight.
    pub fn pages_writing(&self) -> u64 {
        self.pages_writing
    }

    /// Makes the object `new_size` bytes long, turning the map indirect when it gets more
    /// clusters than fit inline. Objects never shrink.
    pub fn grow(&mut self, new_size: u64) -> Result<(), MapError> {
        if new_size < self.size {
            return Err(MapError::WouldShrink);
        }
        let new_clusters = new_size.div_ceil(self.cluster_bytes());
        if let Storage::Direct(entries) = &self.storage {
            if new_clusters > DIRECT_CLUSTERS as u64 {
                // Everything is allocated before the map changes.
                let mut table = Vec::new();
                if entries.iter().any(Option::is_some) {
                    let mut block = Vec::new();
                    block
                        .try_reserve_exact(BLOCK_CLUSTERS)
                        .map_err(|_| MapError::NoMemory)?;
                    table.try_reserve_exact(1).map_err(|_| MapError::NoMemory)?;
                    block.extend_from_slice(entries);
                    block.resize(BLOCK_CLUSTERS, None);
                    table.push(block);
                }
                self.storage = Storage::Indirect(table);
            }
        }
        self.size = new_size;
        Ok(())
    }

    /// The entry of object cluster `object_cluster`, if it has a place on disk.
    pub fn cluster(&self, object_cluster: u64) -> Option<&ClusterEntry> {
        if object_cluster >= self.object_clusters() {
            return None;
        }
        match &self.storage {
            Storage::Direct(entries) => entries.get(usize::try_from(object_cluster).ok()?)?,
            Storage::Indirect(table) => {
                let (block, index) = block_and_index(object_cluster)?;
                table.get(block)?.get(index)?
            }
        }
        .as_ref()
    }

    /// What the map knows of page `page_index` of the object: `None` when its cluster has
    /// no place on disk or it is past the object's end.
    pub fn lookup(&self, page_index: u64) -> Option<PageLocation> {
        if page_index >= self.object_pages() {
            return None;
        }
        let pages = u64::from(self.cluster_pages);
        let entry = self.cluster(page_index / pages)?;
        let page_in_cluster = (page_index % pages) as u32;
        let bit = 1u8 << page_in_cluster;
        Some(PageLocation {
            location: entry.location,
            page_in_cluster,
            allocated: entry.allocated & bit != 0,
            present: entry.present & bit != 0,
            writing: entry.writing & bit != 0,
            failed: entry.failed & bit != 0,
            cluster_error: entry.has_error(),
        })
    }

    /// Gives object cluster `object_cluster` a place on disk, from the segment
    /// [`Segments::choose`] picks for the object's cluster size, and returns it (the place
    /// it has already, if any). [`MapError::Full`] when no segment has room; on any error
    /// neither the map nor the segments change.
    pub fn allocate_cluster(
        &mut self,
        object_cluster: u64,
        segments: &mut Segments,
    ) -> Result<Location, MapError> {
        if object_cluster >= self.object_clusters() {
            return Err(MapError::OutOfRange);
        }
        if let Some(entry) = self.cluster(object_cluster) {
            return Ok(entry.location);
        }
        if segments.choose(self.cluster_pages).is_none() {
            return Err(MapError::Full);
        }
        let cluster_pages = self.cluster_pages;
        let slot = self.slot_for_allocation(object_cluster)?;
        // Cannot fail: `choose` found a segment with a free cluster.
        let location = segments.allocate(cluster_pages).ok_or(MapError::Full)?;
        *slot = Some(ClusterEntry {
            location,
            allocated: 0,
            present: 0,
            writing: 0,
            failed: 0,
            unreadable: false,
        });
        self.clusters_held += 1;
        Ok(location)
    }

    /// Marks pages `pages` (object page indexes) as being written: they get a place in their
    /// clusters, which must be allocated. Refused if one of them is being written already.
    pub fn start_write(&mut self, pages: Range<u64>) -> Result<(), MapError> {
        self.update(
            pages,
            |entry, mask| {
                if entry.writing & mask != 0 {
                    return Err(MapError::WriteInFlight);
                }
                Ok(())
            },
            |entry, mask| {
                entry.allocated |= mask;
                entry.writing |= mask;
            },
        )
    }

    /// Records that the write of `pages` completed: their data is on disk, and pages that
    /// had failed before are good again.
    pub fn mark_written(&mut self, pages: Range<u64>) -> Result<(), MapError> {
        self.update(pages, require_writing, |entry, mask| {
            entry.writing &= !mask;
            entry.present |= mask;
            entry.failed &= !mask;
        })
    }

    /// Records that the write of `pages` failed: their cluster is in error and what was on
    /// disk for them is lost.
    pub fn mark_failed(&mut self, pages: Range<u64>) -> Result<(), MapError> {
        self.update(pages, require_writing, |entry, mask| {
            entry.writing &= !mask;
            entry.present &= !mask;
            entry.failed |= mask;
        })
    }

    /// Records that reading `pages` (which had data on disk) failed: their data is lost and
    /// their cluster in error (later reads of it are errors), and the cluster is never given
    /// back to its segment (see [`ObjectMap::free_all`]): its blocks are bad.
    pub fn mark_unreadable(&mut self, pages: Range<u64>) -> Result<(), MapError> {
        self.update(
            pages,
            |entry, mask| {
                if entry.present & mask != mask {
                    return Err(MapError::NotAllocated);
                }
                Ok(())
            },
            |entry, mask| {
                entry.present &= !mask;
                entry.failed |= mask;
                entry.unreadable = true;
            },
        )
    }

    /// Takes back a write of `pages` that was planned but not issued (the return was
    /// refused): pages that had no data on disk lose their place, and a cluster left with
    /// no page that has a place goes back to its segment. Returns the clusters freed.
    pub fn cancel_write(
        &mut self,
        pages: Range<u64>,
        segments: &mut Segments,
    ) -> Result<u64, MapError> {
        let first_cluster = pages.start / u64::from(self.cluster_pages);
        self.update(pages.clone(), require_writing, |entry, mask| {
            entry.writing &= !mask;
            entry.allocated &= !(mask & !entry.present & !entry.failed);
        })?;
        let last_cluster = (pages.end - 1) / u64::from(self.cluster_pages);
        let mut freed = 0;
        for object_cluster in first_cluster..=last_cluster {
            if self.cluster(object_cluster).map(|e| e.allocated) == Some(0)
                && self.free_cluster(object_cluster, segments) == Ok(true)
            {
                freed += 1;
            }
        }
        Ok(freed)
    }

    /// Gives object cluster `object_cluster`'s place on disk back to its segment, dropping
    /// whatever it held. `Ok(false)` if it had none; refused while one of its pages is
    /// being written (the write could land on the cluster's next owner).
    pub fn free_cluster(
        &mut self,
        object_cluster: u64,
        segments: &mut Segments,
    ) -> Result<bool, MapError> {
        let Some(entry) = self.cluster(object_cluster).copied() else {
            return Ok(false);
        };
        if entry.writing != 0 {
            return Err(MapError::WriteInFlight);
        }
        // A segment that does not know the cluster is a bookkeeping bug; the entry goes
        // anyway so that the map stays consistent with itself.
        let _ = segments.free(entry.location);
        if let Some(slot) = self.slot_mut(object_cluster) {
            *slot = None;
        }
        self.forget(&entry);
        Ok(true)
    }

    /// Gives every cluster back to its segment (the object is terminated) and returns how
    /// many were given back. A cluster a read failed on stays taken for good (its blocks are
    /// bad; a failed write's cluster is given back: writing it again may work). Refused,
    /// with nothing changed, while a write is in flight. Fewer than
    /// [`ObjectMap::clusters_held`] given back means some were bad, or a segment did not
    /// know one of them (a bookkeeping bug).
    pub fn free_all(&mut self, segments: &mut Segments) -> Result<u64, MapError> {
        if self.pages_writing != 0 {
            return Err(MapError::WriteInFlight);
        }
        let mut freed = 0;
        let mut give_back = |slot: &Slot| {
            if let Some(entry) = slot {
                if !entry.unreadable && segments.free(entry.location).is_ok() {
                    freed += 1;
                }
            }
        };
        match &mut self.storage {
            Storage::Direct(entries) => {
                entries.iter().for_each(&mut give_back);
                *entries = [None; DIRECT_CLUSTERS];
            }
            Storage::Indirect(table) => {
                table.iter().flatten().for_each(&mut give_back);
                *table = Vec::new();
            }
        }
        self.clusters_held = 0;
        self.pages_allocated = 0;
        self.pages_present = 0;
        Ok(freed)
    }

    /// Checks every cluster `pages` touches with `check`, then, if all pass, applies
    /// `change` to each and keeps the page counts up to date.
    fn update(
        &mut self,
        pages: Range<u64>,
        check: impl Fn(&ClusterEntry, u8) -> Result<(), MapError>,
        change: impl Fn(&mut ClusterEntry, u8),
    ) -> Result<(), MapError> {
        if pages.start >= pages.end || pages.end > self.object_pages() {
            return Err(MapError::OutOfRange);
        }
        for ClusterMask {
            object_cluster,
            mask,
        } in self.masks(pages.clone())
        {
            let entry = self.cluster(object_cluster).ok_or(MapError::NotAllocated)?;
            check(entry, mask)?;
        }
        for ClusterMask {
            object_cluster,
            mask,
        } in self.masks(pages)
        {
            let Some(Some(entry)) = self.slot_mut(object_cluster) else {
                continue;
            };
            let before = *entry;
            change(entry, mask);
            let after = *entry;
            self.forget(&before);
            self.count(&after);
        }
        Ok(())
    }

    /// The clusters `pages` touches, each with the mask of its pages in the range.
    fn masks(&self, pages: Range<u64>) -> impl Iterator<Item = ClusterMask> {
        let cluster_pages = u64::from(self.cluster_pages);
        let first = pages.start / cluster_pages;
        let last = (pages.end - 1) / cluster_pages;
        (first..=last).map(move |object_cluster| {
            let cluster_start = object_cluster * cluster_pages;
            let from = pages.start.max(cluster_start) - cluster_start;
            let to = pages.end.min(cluster_start + cluster_pages) - cluster_start;
            ClusterMask {
                object_cluster,
                mask: page_mask(from as u32, to as u32),
            }
        })
    }

    /// Takes an entry's pages out of the counts (its cluster too when it is going).
    fn forget(&mut self, entry: &ClusterEntry) {
        self.pages_allocated -= u64::from(entry.allocated.count_ones());
        self.pages_present -= u64::from(entry.present.count_ones());
        self.pages_writing -= u64::from(entry.writing.count_ones());
        self.clusters_held -= 1;
    }

    /// Puts an entry's pages (and cluster) into the counts.
    fn count(&mut self, entry: &ClusterEntry) {
        self.pages_allocated += u64::from(entry.allocated.count_ones());
        self.pages_present += u64::from(entry.present.count_ones());
        self.pages_writing += u64::from(entry.writing.count_ones());
        self.clusters_held += 1;
    }

    /// The slot of `object_cluster` if its storage exists.
    fn slot_mut(&mut self, object_cluster: u64) -> Option<&mut Slot> {
        match &mut self.storage {
            Storage::Direct(entries) => entries.get_mut(usize::try_from(object_cluster).ok()?),
            Storage::Indirect(table) => {
                let (block, index) = block_and_index(object_cluster)?;
                table.get_mut(block)?.get_mut(index)
            }
        }
    }

    /// The slot of `object_cluster` (inside the object), allocating its block and growing
    /// the table as needed.
    fn slot_for_allocation(&mut self, object_cluster: u64) -> Result<&mut Slot, MapError> {
        match &mut self.storage {
            Storage::Direct(entries) => usize::try_from(object_cluster)
                .ok()
                .and_then(|index| entries.get_mut(index))
                .ok_or(MapError::OutOfRange),
            Storage::Indirect(table) => {
                let (block, index) = block_and_index(object_cluster).ok_or(MapError::NoMemory)?;
                if table.len() <= block {
                    table
                        .try_reserve(block + 1 - table.len())
                        .map_err(|_| MapError::NoMemory)?;
                    table.resize_with(block + 1, Vec::new);
                }
                let entries = &mut table[block];
                if entries.is_empty() {
                    entries
                        .try_reserve_exact(BLOCK_CLUSTERS)
                        .map_err(|_| MapError::NoMemory)?;
                    entries.resize(BLOCK_CLUSTERS, None);
                }
                Ok(&mut entries[index])
            }
        }
    }
}

/// Refuses pages that have no write in flight.
fn require_writing(entry: &ClusterEntry, mask: u8) -> Result<(), MapError> {
    if entry.writing & mask != mask {
        return Err(MapError::NotAllocated);
    }
    Ok(())
}

/// The block of an indirect table holding `object_cluster`, and its index in the block.
fn block_and_index(object_cluster: u64) -> Option<(usize, usize)> {
    let block = usize::try_from(object_cluster / BLOCK_CLUSTERS as u64).ok()?;
    Some((block, (object_cluster % BLOCK_CLUSTERS as u64) as usize))
}

/// The bitmap of pages `from..to` of a cluster (`to` at most 8).
pub(crate) fn page_mask(from: u32, to: u32) -> u8 {
    ((1u16 << to) - (1u16 << from)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Segment;

    /// One segment of `clusters` clusters of `pages` pages.
    fn segments(clusters: u32, pages: u32) -> Segments {
        let mut segments = Segments::new();
        segments
            .add(Segment::new(0, 0, clusters, pages, 0).unwrap())
            .unwrap();
        segments
    }

    #[test]
    fn page_masks() {
        assert_eq!(page_mask(0, 8), 0xff);
        assert_eq!(page_mask(0, 1), 0b1);
        assert_eq!(page_mask(1, 3), 0b110);
        assert_eq!(page_mask(2, 2), 0);
    }

    #[test]
    fn new_validates_and_sizes() {
        assert_eq!(
            ObjectMap::new(4096, 5).unwrap_err(),
            MapError::BadClusterSize
        );
        let map = ObjectMap::new(10 * 4096 + 1, 4).unwrap();
        assert_eq!(map.object_pages(), 11);
        assert_eq!(map.object_clusters(), 3);
        assert!(map.is_direct());
        let big = ObjectMap::new(17 * 4 * 4096, 4).unwrap();
        assert!(!big.is_direct());
        assert_eq!(big.object_clusters(), 17);
    }

    #[test]
    fn allocation_and_lookup() {
        let mut segments = segments(10, 4);
        let mut map = ObjectMap::new(64 * 1024, 4).unwrap();
        assert_eq!(map.lookup(5), None);
        let location = map.allocate_cluster(1, &mut segments).unwrap();
        assert_eq!((location.segment(), location.cluster()), (0, 0));
        // Allocating again gives the same place and takes nothing.
        assert_eq!(map.allocate_cluster(1, &mut segments), Ok(location));
        assert_eq!(segments.free_clusters(), 9);
        assert_eq!(map.clusters_held(), 1);
        assert_eq!(
            map.allocate_cluster(4, &mut segments),
            Err(MapError::OutOfRange)
        );

        let page = map.lookup(6).unwrap();
        assert_eq!(page.location, location);
        assert_eq!(page.page_in_cluster, 2);
        assert!(!page.allocated && !page.present && !page.writing && !page.cluster_error);
        assert_eq!(map.lookup(3), None);
        assert_eq!(map.lookup(16), None);
    }

    #[test]
    fn page_bitmaps_follow_writes() {
        let mut segments = segments(10, 4);
        let mut map = ObjectMap::new(64 * 1024, 4).unwrap();
        map.allocate_cluster(1, &mut segments).unwrap();
        // Pages 5 and 6: bits 1 and 2 of cluster 1.
        map.start_write(5..7).unwrap();
        let entry = *map.cluster(1).unwrap();
        assert_eq!(entry.allocated_pages(), 0b0110);
        assert_eq!(entry.writing_pages(), 0b0110);
        assert_eq!(entry.present_pages(), 0);
        assert_eq!(map.start_write(6..8), Err(MapError::WriteInFlight));
        assert_eq!(map.pages_writing(), 2);

        map.mark_written(5..7).unwrap();
        let entry = *map.cluster(1).unwrap();
        assert_eq!(entry.present_pages(), 0b0110);
        assert_eq!(entry.writing_pages(), 0);
        assert_eq!(
            (
                map.pages_allocated(),
                map.pages_present(),
                map.pages_writing()
            ),
            (2, 2, 0)
        );
        assert!(map.lookup(5).unwrap().present);
        assert!(!map.lookup(4).unwrap().present);
        // Completing a write that was never started is refused.
        assert_eq!(map.mark_written(4..5), Err(MapError::NotAllocated));
        // A range in an unallocated cluster is refused, and so is one past the end.
        assert_eq!(map.start_write(0..2), Err(MapError::NotAllocated));
        assert_eq!(map.start_write(15..17), Err(MapError::OutOfRange));
    }

    #[test]
    fn failed_write_puts_the_cluster_in_error_until_rewritten() {
        let mut segments = segments(10, 4);
        let mut map = ObjectMap::new(16 * 4096, 4).unwrap();
        map.allocate_cluster(0, &mut segments).unwrap();
        map.start_write(0..4).unwrap();
        map.mark_written(0..4).unwrap();
        map.start_write(1..2).unwrap();
        map.mark_failed(1..2).unwrap();
        let entry = *map.cluster(0).unwrap();
        assert!(entry.has_error());
        assert_eq!(entry.failed_pages(), 0b0010);
        assert_eq!(entry.present_pages(), 0b1101);
        assert!(map.lookup(3).unwrap().cluster_error);
        assert!(map.lookup(1).unwrap().failed && !map.lookup(3).unwrap().failed);
        assert_eq!(map.pages_present(), 3);

        map.start_write(1..2).unwrap();
        map.mark_written(1..2).unwrap();
        assert!(!map.cluster(0).unwrap().has_error());
        assert_eq!(map.pages_present(), 4);
    }

    #[test]
    fn cancelled_write_gives_the_place_back() {
        let mut segments = segments(10, 4);
        let mut map = ObjectMap::new(16 * 4096, 4).unwrap();
        map.allocate_cluster(0, &mut segments).unwrap();
        map.start_write(0..1).unwrap();
        map.mark_written(0..1).unwrap();
        map.allocate_cluster(1, &mut segments).unwrap();
        // Pages 0..8 spanning two clusters: page 0 keeps its data, the rest lose their place
        // and cluster 1, left with nothing, goes back.
        map.start_write(0..8).unwrap();
        assert_eq!(map.cancel_write(0..8, &mut segments), Ok(1));
        assert_eq!(map.cluster(0).unwrap().allocated_pages(), 0b0001);
        assert_eq!(map.cluster(0).unwrap().present_pages(), 0b0001);
        assert_eq!(map.cluster(1), None);
        assert_eq!(map.clusters_held(), 1);
        assert_eq!(segments.free_clusters(), 9);
        assert_eq!(
            (
                map.pages_allocated(),
                map.pages_present(),
                map.pages_writing()
            ),
            (1, 1, 0)
        );
    }

    #[test]
    fn growth_turns_direct_into_indirect_and_keeps_entries() {
        let mut segments = segments(1000, 1);
        let mut map = ObjectMap::new(16 * 4096, 1).unwrap();
        assert!(map.is_direct());
        let location = map.allocate_cluster(15, &mut segments).unwrap();
        map.start_write(15..16).unwrap();
        map.mark_written(15..16).unwrap();
        assert_eq!(map.grow(8 * 4096), Err(MapError::WouldShrink));
        map.grow(16 * 4096).unwrap();
        assert!(map.is_direct());

        map.grow(1000 * 4096).unwrap();
        assert!(!map.is_direct());
        assert_eq!(map.object_clusters(), 1000);
        assert_eq!(map.cluster(15).unwrap().location(), location);
        assert!(map.lookup(15).unwrap().present);
        // A cluster far out gets its block on demand.
        let far = map.allocate_cluster(999, &mut segments).unwrap();
        assert_eq!(map.cluster(999).unwrap().location(), far);
        assert_eq!(map.cluster(998), None);
        assert_eq!(map.clusters_held(), 2);
    }

    #[test]
    fn empty_direct_map_grows_without_allocating() {
        let mut map = ObjectMap::new(4096, 4).unwrap();
        map.grow(1 << 40).unwrap();
        assert!(!map.is_direct());
        assert_eq!(map.cluster((1 << 40) / 16384 - 1), None);
        let Storage::Indirect(table) = &map.storage else {
            panic!("indirect expected");
        };
        assert_eq!(table.capacity(), 0);
    }

    #[test]
    fn free_all_restores_the_segments() {
        let mut segments = segments(300, 2);
        let mut map = ObjectMap::new(300 * 2 * 4096, 2).unwrap();
        for object_cluster in (0..300).step_by(3) {
            map.allocate_cluster(object_cluster, &mut segments).unwrap();
        }
        map.start_write(0..2).unwrap();
        assert_eq!(segments.free_clusters(), 200);
        assert_eq!(map.free_all(&mut segments), Err(MapError::WriteInFlight));
        assert_eq!(segments.free_clusters(), 200);
        map.mark_written(0..2).unwrap();
        assert_eq!(map.free_all(&mut segments), Ok(100));
        assert_eq!(segments.free_clusters(), 300);
        assert_eq!(map.clusters_held(), 0);
        assert_eq!(map.pages_allocated(), 0);
        assert_eq!(map.pages_present(), 0);
        assert_eq!(map.cluster(0), None);
        // The object can be used again.
        assert!(map.allocate_cluster(5, &mut segments).is_ok());
    }

    #[test]
    fn free_all_on_a_direct_map() {
        let mut segments = segments(8, 8);
        let mut map = ObjectMap::new(3 * 8 * 4096, 8).unwrap();
        for object_cluster in 0..3 {
            map.allocate_cluster(object_cluster, &mut segments).unwrap();
        }
        assert_eq!(segments.free_clusters(), 5);
        assert_eq!(map.free_all(&mut segments), Ok(3));
        assert_eq!(segments.free_clusters(), 8);
        assert_eq!(map.free_all(&mut segments), Ok(0));
    }

    #[test]
    fn full_segments_refuse_cleanly() {
        let mut segments = segments(2, 4);
        let mut map = ObjectMap::new(100 * 16384, 4).unwrap();
        map.allocate_cluster(0, &mut segments).unwrap();
        map.allocate_cluster(50, &mut segments).unwrap();
        assert_eq!(map.allocate_cluster(99, &mut segments), Err(MapError::Full));
        assert_eq!(map.cluster(99), None);
        assert_eq!(map.clusters_held(), 2);
        assert_eq!(segments.free_clusters(), 0);
        // No segment of the cluster size: full as well.
        let mut other = ObjectMap::new(16384, 2).unwrap();
        let mut roomy = self::segments(10, 4);
        assert_eq!(other.allocate_cluster(0, &mut roomy), Err(MapError::Full));
        assert_eq!(roomy.free_clusters(), 10);
        // Once a cluster comes back, the allocation succeeds.
        assert_eq!(map.free_cluster(0, &mut segments), Ok(true));
        assert_eq!(map.free_cluster(0, &mut segments), Ok(false));
        assert!(map.allocate_cluster(99, &mut segments).is_ok());
    }

    #[test]
    fn a_cluster_that_failed_a_read_is_never_reused() {
        let mut segments = Segments::new();
        segments.add(Segment::new(0, 0, 4, 4, 0).unwrap()).unwrap();
        let mut map = ObjectMap::new(8 * PAGE_SIZE, 4).unwrap();
        map.allocate_cluster(0, &mut segments).unwrap();
        map.allocate_cluster(1, &mut segments).unwrap();
        map.start_write(0..8).unwrap();
        map.mark_written(0..8).unwrap();
        // Only pages with data on disk can fail a read.
        assert_eq!(map.mark_unreadable(0..1), Ok(()));
        assert_eq!(map.lookup(0).map(|p| p.cluster_error), Some(true));
        assert_eq!(map.free_all(&mut segments), Ok(1));
        assert_eq!(segments.free_clusters(), 3, "the bad cluster stays taken");
        let mut other = ObjectMap::new(4 * PAGE_SIZE, 4).unwrap();
        assert_eq!(other.mark_unreadable(0..1), Err(MapError::NotAllocated));
    }
}

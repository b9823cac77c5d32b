//! Paging segments: ranges of a disk handed out in clusters, each with a bitmap of used
//! clusters, and the set of segments a new cluster is taken from.
//!
//! As OSF's paging segments: a segment has one cluster size (1 to 8 pages) and a priority;
//! a new cluster comes from the highest priority segment that has one free in the cluster
//! size asked for, round-robin among the segments of that priority so that they share the
//! load (and, on separate disks, the bandwidth).

use alloc::vec::Vec;
use core::fmt;

use heapless::{LinearMap, Vec as FixedVec};

use crate::{cluster_bytes, valid_cluster_pages, DEFAULT_CLUSTER_PAGES, MAX_SEGMENTS, PAGE_SIZE};

/// Why a segment operation was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// The cluster size is not a power of two from 1 to 8 pages.
    BadClusterSize,
    /// The start on the device is not page aligned.
    Misaligned,
    /// A segment of no clusters.
    NoClusters,
    /// The segment would end past the largest byte offset (`u64`).
    TooLarge,
    /// No memory for the bitmap.
    NoMemory,
    /// The cluster is not one of the segment's.
    ClusterOutOfRange,
    /// The cluster is free already (a double free).
    NotAllocated,
    /// No segment has that index.
    NoSuchSegment,
    /// All [`MAX_SEGMENTS`] segments are in use.
    TooMany,
    /// The new segment shares bytes of its device with the segment of that index.
    Overlap(usize),
}

impl fmt::Display for SegmentError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentError::BadClusterSize => {
                write!(
                    formatter,
                    "cluster size is not a power of two from 1 to 8 pages"
                )
            }
            SegmentError::Misaligned => write!(formatter, "segment start is not page aligned"),
            SegmentError::NoClusters => write!(formatter, "segment holds no cluster"),
            SegmentError::TooLarge => write!(formatter, "segment ends past the largest offset"),
            SegmentError::NoMemory => write!(formatter, "no memory for the segment bitmap"),
            SegmentError::ClusterOutOfRange => write!(formatter, "cluster outside the segment"),
            SegmentError::NotAllocated => write!(formatter, "cluster is free already"),
            SegmentError::NoSuchSegment => write!(formatter, "no such segment"),
            SegmentError::TooMany => write!(formatter, "more than {MAX_SEGMENTS} segments"),
            SegmentError::Overlap(index) => write!(formatter, "overlaps segment {index}"),
        }
    }
}

/// Where a cluster of backing store is: a segment (by index in [`Segments`]) and a cluster
/// of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Index in [`Segments`]: at most [`MAX_SEGMENTS`], so a byte keeps object maps small.
    segment: u8,
    cluster: u32,
}

impl Location {
    pub(crate) const fn new(segment: u8, cluster: u32) -> Location {
        Location { segment, cluster }
    }

    /// The segment's index in [`Segments`].
    pub const fn segment(&self) -> usize {
        self.segment as usize
    }

    /// The cluster within the segment.
    pub const fn cluster(&self) -> u32 {
        self.cluster
    }
}

/// One paging segment: `clusters` clusters of `cluster_pages` pages each, from byte `start`
/// of device `device` on.
///
/// Invariants: a bit set in `bitmap` is a cluster in use, and the bits past `clusters` in
/// the last word are set so that no search ever finds them; `free` is the number of clear
/// bits; every cluster below `hint` is in use (so a first-fit search may start there).
#[derive(Debug)]
pub struct Segment {
    device: u8,
    start: u64,
    clusters: u32,
    cluster_pages: u32,
    priority: u8,
    bitmap: Vec<u64>,
    free: u32,
    /// OSF's `ps_hint`: the lowest cluster that may be free.
    hint: u32,
}

/// Bits in a bitmap word.
const WORD_BITS: u32 = u64::BITS;

impl Segment {
    /// A segment with every cluster free. The bitmap is allocated here, fallibly: no memory
    /// is [`SegmentError::NoMemory`], not an abort.
    pub fn new(
        device: u8,
        start: u64,
        clusters: u32,
        cluster_pages: u32,
        priority: u8,
    ) -> Result<Segment, SegmentError> {
        if !valid_cluster_pages(cluster_pages) {
            return Err(SegmentError::BadClusterSize);
        }
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(SegmentError::Misaligned);
        }
        if clusters == 0 {
            return Err(SegmentError::NoClusters);
        }
        u64::from(clusters)
            .checked_mul(cluster_bytes(cluster_pages))
            .and_then(|length| start.checked_add(length))
            .ok_or(SegmentError::TooLarge)?;

        let words = clusters.div_ceil(WORD_BITS) as usize;
        let mut bitmap = Vec::new();
        bitmap
            .try_reserve_exact(words)
            .map_err(|_| SegmentError::NoMemory)?;
        bitmap.resize(words, 0);
        let tail_bits = clusters % WORD_BITS;
        if tail_bits != 0 {
            // The clusters that do not exist are marked used for good.
            bitmap[words - 1] = !0 << tail_bits;
        }
        Ok(Segment {
            device,
            start,
            clusters,
            cluster_pages,
            priority,
            bitmap,
            free: clusters,
            hint: 0,
        })
    }

    /// The device the segment lies on.
    pub fn device(&self) -> u8 {
        self.device
    }

    /// The segment's first byte on its device.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// One past the segment's last byte on its device.
    pub fn end(&self) -> u64 {
        self.start + u64::from(self.clusters) * cluster_bytes(self.cluster_pages)
    }

    /// Clusters in the segment.
    pub fn clusters(&self) -> u32 {
        self.clusters
    }

    /// Pages per cluster.
    pub fn cluster_pages(&self) -> u32 {
        self.cluster_pages
    }

    /// Higher is used first.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Clusters free.
    pub fn free_clusters(&self) -> u32 {
        self.free
    }

    /// Clusters in use.
    pub fn used_clusters(&self) -> u32 {
        self.clusters - self.free
    }

    /// Whether `cluster` is in use (false for a cluster outside the segment).
    pub fn is_allocated(&self, cluster: u32) -> bool {
        cluster < self.clusters && self.bitmap[(cluster / WORD_BITS) as usize] & bit(cluster) != 0
    }

    /// Takes the lowest free cluster (first fit, searching from the hint), or `None` when
    /// the segment is full.
    pub fn allocate(&mut self) -> Option<u32> {
        if self.free == 0 {
            return None;
        }
        let first_word = (self.hint / WORD_BITS) as usize;
        // Every cluster below the hint is in use, so the first clear bit at or after the
        // hint's word is the lowest free cluster.
        let (index, word) = self.bitmap[first_word..]
            .iter_mut()
            .enumerate()
            .find(|(_, word)| **word != u64::MAX)?;
        let cluster = (first_word + index) as u32 * WORD_BITS + word.trailing_ones();
        *word |= bit(cluster);
        self.free -= 1;
        self.hint = cluster + 1;
        Some(cluster)
    }

    /// Gives `cluster` back. Freeing a cluster that is not in use is an error and changes
    /// nothing.
    pub fn free(&mut self, cluster: u32) -> Result<(), SegmentError> {
        if cluster >= self.clusters {
            return Err(SegmentError::ClusterOutOfRange);
        }
        let word = &mut self.bitmap[(cluster / WORD_BITS) as usize];
        if *word & bit(cluster) == 0 {
            return Err(SegmentError::NotAllocated);
        }
        *word &= !bit(cluster);
        self.free += 1;
        self.hint = self.hint.min(cluster);
        Ok(())
    }

    /// The byte offset of `cluster` on the device, or `None` for a cluster outside the
    /// segment.
    pub fn cluster_offset(&self, cluster: u32) -> Option<u64> {
        (cluster < self.clusters)
            .then(|| self.start + u64::from(cluster) * cluster_bytes(self.cluster_pages))
    }

    /// The segment's figures.
    pub fn usage(&self) -> SegmentUsage {
        SegmentUsage {
            device: self.device,
            start: self.start,
            cluster_pages: self.cluster_pages,
            priority: self.priority,
            clusters: self.clusters,
            free_clusters: self.free,
        }
    }

    /// Whether the segment shares a byte with `other` (same device, ranges intersecting).
    fn overlaps(&self, other: &Segment) -> bool {
        self.device == other.device && self.start < other.end() && other.start < self.end()
    }
}

/// The bit of `cluster` in its bitmap word.
const fn bit(cluster: u32) -> u64 {
    1 << (cluster % WORD_BITS)
}

/// What a segment holds, for statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentUsage {
    pub device: u8,
    pub start: u64,
    pub cluster_pages: u32,
    pub priority: u8,
    pub clusters: u32,
    pub free_clusters: u32,
}

impl SegmentUsage {
    pub fn used_clusters(&self) -> u32 {
        self.clusters - self.free_clusters
    }
}

/// The pager's paging segments, at most [`MAX_SEGMENTS`]; a segment's index never changes.
///
/// Invariants: no two segments overlap; `last_used` maps a priority to the index of the
/// segment of that priority that gave the last cluster (keys are priorities of segments, so
/// there are never more than [`MAX_SEGMENTS`]).
#[derive(Debug, Default)]
pub struct Segments {
    segments: FixedVec<Segment, MAX_SEGMENTS>,
    last_used: LinearMap<u8, usize, MAX_SEGMENTS>,
}

impl Segments {
    /// No segments.
    pub fn new() -> Segments {
        Segments::default()
    }

    /// Adds `segment` and returns its index. Refused, and the segment dropped, when there
    /// are [`MAX_SEGMENTS`] already or it overlaps one of them.
    pub fn add(&mut self, segment: Segment) -> Result<usize, SegmentError> {
        if let Some(index) = self.segments.iter().position(|old| old.overlaps(&segment)) {
            return Err(SegmentError::Overlap(index));
        }
        self.segments
            .push(segment)
            .map_err(|_| SegmentError::TooMany)?;
        Ok(self.segments.len() - 1)
    }

    /// The segment of index `index`.
    pub fn get(&self, index: usize) -> Option<&Segment> {
        self.segments.get(index)
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segments, by index.
    pub fn iter(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    /// Each segment's figures, by index.
    pub fn usage(&self) -> impl Iterator<Item = SegmentUsage> + '_ {
        self.segments.iter().map(Segment::usage)
    }

    /// Clusters in all segments.
    pub fn total_clusters(&self) -> u64 {
        self.segments.iter().map(|s| u64::from(s.clusters())).sum()
    }

    /// Free clusters in all segments.
    pub fn free_clusters(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| u64::from(s.free_clusters()))
            .sum()
    }

    /// Used clusters in all segments.
    pub fn used_clusters(&self) -> u64 {
        self.total_clusters() - self.free_clusters()
    }

    /// Free pages in the segments of cluster size `cluster_pages` (what objects of that
    /// cluster size can still get).
    pub fn free_pages(&self, cluster_pages: u32) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.cluster_pages() == cluster_pages)
            .map(|s| u64::from(s.free_clusters()) * u64::from(cluster_pages))
            .sum()
    }

    /// The cluster size for a new memory object (all of an object's clusters have one
    /// size, so it lives in the segments of that size): the sizes of the highest-priority
    /// segments that have room take turns, in configuration order, `turn` counting the
    /// objects placed so far. So segments of different cluster sizes and one priority each
    /// serve their share of the objects (OSF gave an object its segment's `clsize`). With
    /// no room anywhere, the first segment's size ([`DEFAULT_CLUSTER_PAGES`] with none).
    pub fn cluster_for_new_object(&self, turn: &mut usize) -> u32 {
        let Some(top) = self
            .iter()
            .filter(|s| s.free_clusters() > 0)
            .map(Segment::priority)
            .max()
        else {
            return self
                .iter()
                .next()
                .map_or(DEFAULT_CLUSTER_PAGES, Segment::cluster_pages);
        };
        let mut sizes: FixedVec<u32, MAX_SEGMENTS> = FixedVec::new();
        for segment in self.iter() {
            let size = segment.cluster_pages();
            if segment.priority() == top && segment.free_clusters() > 0 && !sizes.contains(&size) {
                // At most one size per segment: cannot overflow.
                let _ = sizes.push(size);
            }
        }
        let size = sizes[*turn % sizes.len()];
        *turn = turn.wrapping_add(1);
        size
    }

    /// The segment a new cluster of `cluster_pages` pages would come from: of the segments
    /// of that cluster size with a free cluster, one of highest priority, the next after the
    /// one last used at that priority. `None` when none has room.
    pub fn choose(&self, cluster_pages: u32) -> Option<usize> {
        let fits = |segment: &Segment| {
            segment.cluster_pages() == cluster_pages && segment.free_clusters() > 0
        };
        let priority = self
            .segments
            .iter()
            .filter(|s| fits(s))
            .map(Segment::priority)
            .max()?;
        let count = self.segments.len();
        let first = self
            .last_used
            .get(&priority)
            .map_or(0, |last| (last + 1) % count);
        (0..count)
            .map(|step| (first + step) % count)
            .find(|&index| {
                let segment = &self.segments[index];
                segment.priority() == priority && fits(segment)
            })
    }

    /// Takes a cluster of `cluster_pages` pages from the segment [`Segments::choose`] picks.
    /// `None`, with nothing changed, when no segment of that cluster size has one free.
    pub fn allocate(&mut self, cluster_pages: u32) -> Option<Location> {
        let index = self.choose(cluster_pages)?;
        let segment = &mut self.segments[index];
        let cluster = segment.allocate()?;
        let priority = segment.priority();
        // Cannot fail: there are no more priorities than segments.
        let _ = self.last_used.insert(priority, index);
        Some(Location::new(index as u8, cluster))
    }

    /// Gives a cluster back to its segment.
    pub fn free(&mut self, location: Location) -> Result<(), SegmentError> {
        self.segments
            .get_mut(location.segment())
            .ok_or(SegmentError::NoSuchSegment)?
            .free(location.cluster())
    }

    /// The device and the byte offset on it of the cluster at `location`.
    pub fn device_offset(&self, location: Location) -> Option<(u8, u64)> {
        let segment = self.segments.get(location.segment())?;
        Some((
            segment.device(),
            segment.cluster_offset(location.cluster())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn segment(device: u8, start: u64, clusters: u32, pages: u32, priority: u8) -> Segment {
        Segment::new(device, start, clusters, pages, priority).unwrap()
    }

    #[test]
    fn creation_is_validated() {
        assert_eq!(
            Segment::new(0, 0, 10, 3, 0).unwrap_err(),
            SegmentError::BadClusterSize
        );
        assert_eq!(
            Segment::new(0, 0, 10, 16, 0).unwrap_err(),
            SegmentError::BadClusterSize
        );
        assert_eq!(
            Segment::new(0, 0, 10, 0, 0).unwrap_err(),
            SegmentError::BadClusterSize
        );
        assert_eq!(
            Segment::new(0, 512, 10, 4, 0).unwrap_err(),
            SegmentError::Misaligned
        );
        assert_eq!(
            Segment::new(0, 0, 0, 4, 0).unwrap_err(),
            SegmentError::NoClusters
        );
        assert_eq!(
            Segment::new(0, u64::MAX - 4095, 2, 1, 0).unwrap_err(),
            SegmentError::TooLarge
        );
        let s = segment(2, MIB, 100, 8, 3);
        assert_eq!((s.device(), s.start(), s.clusters()), (2, MIB, 100));
        assert_eq!(
            (s.cluster_pages(), s.priority(), s.free_clusters()),
            (8, 3, 100)
        );
        assert_eq!(s.end(), MIB + 100 * 8 * 4096);
    }

    #[test]
    fn allocation_is_first_fit_and_stops_at_the_end() {
        // 70 clusters: the last word holds 6 real clusters and 58 that must never be found.
        let mut s = segment(0, 0, 70, 1, 0);
        for expected in 0..70 {
            assert_eq!(s.allocate(), Some(expected));
        }
        assert_eq!(s.allocate(), None);
        assert_eq!((s.free_clusters(), s.used_clusters()), (0, 70));

        s.free(65).unwrap();
        s.free(3).unwrap();
        s.free(40).unwrap();
        assert_eq!(s.free_clusters(), 3);
        // The hint went back to 3: lowest first.
        assert_eq!(s.allocate(), Some(3));
        assert_eq!(s.allocate(), Some(40));
        assert_eq!(s.allocate(), Some(65));
        assert_eq!(s.allocate(), None);
    }

    #[test]
    fn free_refuses_double_free_and_strangers() {
        let mut s = segment(0, 0, 10, 4, 0);
        let cluster = s.allocate().unwrap();
        assert!(s.is_allocated(cluster));
        s.free(cluster).unwrap();
        assert!(!s.is_allocated(cluster));
        assert_eq!(s.free(cluster), Err(SegmentError::NotAllocated));
        assert_eq!(s.free(10), Err(SegmentError::ClusterOutOfRange));
        assert_eq!(s.free_clusters(), 10);
        assert!(!s.is_allocated(10));
    }

    #[test]
    fn cluster_offsets() {
        let s = segment(1, 16 * MIB, 4, 4, 0);
        assert_eq!(s.cluster_offset(0), Some(16 * MIB));
        assert_eq!(s.cluster_offset(3), Some(16 * MIB + 3 * 16384));
        assert_eq!(s.cluster_offset(4), None);
    }

    #[test]
    fn add_refuses_overlap_and_the_ninth() {
        let mut segments = Segments::new();
        assert_eq!(segments.add(segment(0, 0, 16, 4, 0)), Ok(0));
        // Bytes [0, 256 KiB) are taken on device 0; [192 KiB, ...) overlaps.
        assert_eq!(
            segments.add(segment(0, 192 * 1024, 4, 4, 0)).unwrap_err(),
            SegmentError::Overlap(0)
        );
        // Right after, or on another device: fine.
        assert_eq!(segments.add(segment(0, 256 * 1024, 4, 4, 0)), Ok(1));
        assert_eq!(segments.add(segment(1, 0, 4, 4, 0)), Ok(2));
        for index in 3..MAX_SEGMENTS {
            assert_eq!(segments.add(segment(index as u8, 0, 1, 1, 0)), Ok(index));
        }
        assert_eq!(
            segments.add(segment(100, 0, 1, 1, 0)).unwrap_err(),
            SegmentError::TooMany
        );
        assert_eq!(segments.len(), MAX_SEGMENTS);
    }

    #[test]
    fn choice_prefers_priority_then_goes_round_robin() {
        let mut segments = Segments::new();
        segments.add(segment(0, 0, 2, 4, 1)).unwrap(); // 0: low
        segments.add(segment(1, 0, 2, 4, 5)).unwrap(); // 1: high
        segments.add(segment(2, 0, 1, 4, 5)).unwrap(); // 2: high
        segments.add(segment(3, 0, 100, 2, 9)).unwrap(); // 3: other cluster size

        let mut taken = std::vec::Vec::new();
        while let Some(location) = segments.allocate(4) {
            taken.push((location.segment(), location.cluster()));
        }
        // High priority alternating 1, 2, 1 until both are full, then the low one.
        assert_eq!(taken, [(1, 0), (2, 0), (1, 1), (0, 0), (0, 1)]);
        assert_eq!(segments.get(3).unwrap().free_clusters(), 100);
        assert_eq!(segments.free_pages(4), 0);
        assert_eq!(segments.free_pages(2), 200);

        // A freed high-priority cluster is used before the low priority segment again.
        segments.free(Location::new(2, 0)).unwrap();
        assert_eq!(segments.choose(4), Some(2));
        assert_eq!(segments.allocate(4), Some(Location::new(2, 0)));
    }

    #[test]
    fn round_robin_is_per_priority() {
        let mut segments = Segments::new();
        for device in 0..3 {
            segments.add(segment(device, 0, 10, 1, 7)).unwrap();
        }
        let order: std::vec::Vec<usize> = (0..7)
            .map(|_| segments.allocate(1).unwrap().segment())
            .collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn cluster_size_must_match() {
        let mut segments = Segments::new();
        segments.add(segment(0, 0, 10, 2, 0)).unwrap();
        assert_eq!(segments.choose(4), None);
        assert_eq!(segments.allocate(4), None);
        assert_eq!(segments.free_clusters(), 10);
        assert_eq!(segments.allocate(2), Some(Location::new(0, 0)));
    }

    #[test]
    fn statistics_and_device_offsets() {
        let mut segments = Segments::new();
        segments.add(segment(0, 0, 10, 4, 0)).unwrap();
        segments.add(segment(1, MIB, 5, 8, 0)).unwrap();
        segments.allocate(4).unwrap();
        let second = segments.allocate(8).unwrap();
        segments.allocate(8).unwrap();
        assert_eq!(segments.total_clusters(), 15);
        assert_eq!(segments.free_clusters(), 12);
        assert_eq!(segments.used_clusters(), 3);
        let usage: std::vec::Vec<_> = segments.usage().collect();
        assert_eq!(usage[1].used_clusters(), 2);
        assert_eq!(usage[1].free_clusters, 3);
        assert_eq!(usage[0].used_clusters(), 1);
        assert_eq!(segments.device_offset(second), Some((1, MIB)));
        assert_eq!(
            segments.device_offset(Location::new(1, 1)),
            Some((1, MIB + 8 * 4096))
        );
        assert_eq!(segments.device_offset(Location::new(1, 5)), None);
        assert_eq!(segments.device_offset(Location::new(7, 0)), None);
        assert_eq!(
            segments.free(Location::new(7, 0)),
            Err(SegmentError::NoSuchSegment)
        );
    }

    #[test]
    fn new_objects_take_turns_among_the_cluster_sizes_of_the_top_priority() {
        let mut segments = Segments::new();
        segments.add(Segment::new(0, 0, 2, 4, 1).unwrap()).unwrap();
        segments
            .add(Segment::new(0, 1 << 20, 4, 4, 1).unwrap())
            .unwrap();
        segments
            .add(Segment::new(0, 2 << 20, 8, 2, 1).unwrap())
            .unwrap();
        segments
            .add(Segment::new(0, 3 << 20, 8, 8, 0).unwrap())
            .unwrap();
        let mut turn = 0;
        let sizes: Vec<u32> = (0..4)
            .map(|_| segments.cluster_for_new_object(&mut turn))
            .collect();
        assert_eq!(
            sizes,
            [4, 2, 4, 2],
            "priority 0's size 8 waits for room above"
        );
        // The 2-page segment full: only 4 is left at priority 1.
        while segments.allocate(2).is_some() {}
        assert_eq!(segments.cluster_for_new_object(&mut turn), 4);
        assert_eq!(segments.cluster_for_new_object(&mut turn), 4);
        // Priority 1 full: priority 0's size.
        while segments.allocate(4).is_some() {}
        assert_eq!(segments.cluster_for_new_object(&mut turn), 8);
        // Nothing free: the first segment's size.
        while segments.allocate(8).is_some() {}
        assert_eq!(segments.cluster_for_new_object(&mut turn), 4);
        assert_eq!(
            Segments::new().cluster_for_new_object(&mut turn),
            DEFAULT_CLUSTER_PAGES
        );
    }
}

//! I/O planning: turns a kernel request on a memory object into device operations, one per
//! contiguous run of pages on disk.
//!
//! A request covers whole pages inside one of the object's clusters ([`cluster_pieces`]
//! splits a longer one). A cluster's pages are contiguous on disk, so a read needs one
//! device operation per run of present pages ([`plan_read`]: the runs of absent pages are
//! answered "unavailable", to be zero filled) and a write one per contiguous stretch of the
//! pages returned ([`plan_write`], [`plan_write_pages`]). Planning a write gives the pages
//! their place and marks them being written; the caller then reports the outcome to the
//! map ([`ObjectMap::mark_written`], [`ObjectMap::mark_failed`], or
//! [`ObjectMap::cancel_write`] when it does not issue the write).

use core::fmt;

use heapless::Vec as FixedVec;

use crate::cluster_map::{page_mask, MapError, ObjectMap};
use crate::segment::{Location, Segments};
use crate::{MAX_CLUSTER_PAGES, PAGE_SIZE};

/// Why a request could not be planned. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// Offset or length is not a whole number of pages, or the length is zero.
    Misaligned,
    /// The request reaches past the object's end.
    OutOfRange,
    /// The request spans more than one of the object's clusters.
    CrossesCluster,
    /// A requested page lies in a cluster whose write failed: answer with an error.
    ClusterError,
    /// A requested page is being written: wait for the write's completion.
    WriteInFlight,
    /// No segment has a free cluster for the pages: refuse the return.
    Full,
    /// No memory for the object's map: refuse the return.
    NoMemory,
    /// The map and the segments disagree, e.g. the map names a segment cluster the segments
    /// do not have (a bookkeeping bug).
    Inconsistent,
}

impl fmt::Display for PlanError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            PlanError::Misaligned => "request is not whole pages",
            PlanError::OutOfRange => "request reaches past the object's end",
            PlanError::CrossesCluster => "request spans more than one cluster",
            PlanError::ClusterError => "a write of the cluster failed",
            PlanError::WriteInFlight => "pages are being written",
            PlanError::Full => "no free cluster on the paging segments",
            PlanError::NoMemory => "no memory for the object's cluster map",
            PlanError::Inconsistent => "cluster map and paging segments disagree",
        })
    }
}

impl From<MapError> for PlanError {
    fn from(error: MapError) -> PlanError {
        match error {
            MapError::Full => PlanError::Full,
            MapError::NoMemory => PlanError::NoMemory,
            MapError::WriteInFlight => PlanError::WriteInFlight,
            MapError::BadClusterSize | MapError::NotAllocated | MapError::WouldShrink => {
                PlanError::Inconsistent
            }
            MapError::OutOfRange => PlanError::OutOfRange,
        }
    }
}

/// One device operation: `pages` pages at byte `device_offset` of device `device`, which are
/// the object's pages from byte `object_offset` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRun {
    pub device: u8,
    pub device_offset: u64,
    pub pages: u32,
    pub object_offset: u64,
}

impl DeviceRun {
    /// Bytes the operation moves.
    pub fn bytes(&self) -> u64 {
        u64::from(self.pages) * PAGE_SIZE
    }

    /// The object pages it covers (page indexes), as the map's methods take them.
    pub fn object_pages(&self) -> core::ops::Range<u64> {
        let first = self.object_offset / PAGE_SIZE;
        first..first + u64::from(self.pages)
    }
}

/// A piece of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRun {
    /// Pages on disk: read them.
    Device(DeviceRun),
    /// Pages never written: answer "unavailable" (the kernel zero fills them).
    Absent { object_offset: u64, pages: u32 },
}

/// Runs per cluster at most: pages alternating present and absent.
const MAX_READ_RUNS: usize = MAX_CLUSTER_PAGES as usize;

/// Contiguous stretches per cluster at most: pages alternating returned and not.
const MAX_WRITE_RUNS: usize = MAX_CLUSTER_PAGES as usize / 2;

/// How to answer a read: its runs, in object order, covering the request exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadPlan {
    runs: FixedVec<ReadRun, MAX_READ_RUNS>,
}

impl ReadPlan {
    /// The runs in object order.
    pub fn runs(&self) -> &[ReadRun] {
        &self.runs
    }

    /// The device operations to issue.
    pub fn device_runs(&self) -> impl Iterator<Item = &DeviceRun> {
        self.runs.iter().filter_map(|run| match run {
            ReadRun::Device(run) => Some(run),
            ReadRun::Absent { .. } => None,
        })
    }

    /// Pages read from disk.
    pub fn present_pages(&self) -> u32 {
        self.device_runs().map(|run| run.pages).sum()
    }

    /// Pages answered "unavailable".
    pub fn absent_pages(&self) -> u32 {
        self.runs
            .iter()
            .map(|run| match run {
                ReadRun::Absent { pages, .. } => *pages,
                ReadRun::Device(_) => 0,
            })
            .sum()
    }
}

/// Where a write goes: one device operation per contiguous stretch of the pages returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritePlan {
    runs: FixedVec<DeviceRun, MAX_WRITE_RUNS>,
    /// The cluster was given its place on disk for this write.
    newly_allocated: bool,
}

impl WritePlan {
    /// The device operations to issue, in object order.
    pub fn runs(&self) -> &[DeviceRun] {
        &self.runs
    }

    /// Whether the write took a new cluster from the segments.
    pub fn newly_allocated(&self) -> bool {
        self.newly_allocated
    }

    /// Pages written.
    pub fn pages(&self) -> u32 {
        self.runs.iter().map(|run| run.pages).sum()
    }
}

/// A request checked: its object cluster and the mask of its pages in it.
struct Request {
    object_cluster: u64,
    mask: u8,
}

/// Checks that `[offset, offset + length)` is whole pages inside one cluster of the object.
fn check_request(map: &ObjectMap, offset: u64, length: u64) -> Result<Request, PlanError> {
    if length == 0 || !offset.is_multiple_of(PAGE_SIZE) || !length.is_multiple_of(PAGE_SIZE) {
        return Err(PlanError::Misaligned);
    }
    let end = offset.checked_add(length).ok_or(PlanError::OutOfRange)?;
    if end > map.object_pages().saturating_mul(PAGE_SIZE) {
        return Err(PlanError::OutOfRange);
    }
    let cluster_bytes = map.cluster_bytes();
    let object_cluster = offset / cluster_bytes;
    if (end - 1) / cluster_bytes != object_cluster {
        return Err(PlanError::CrossesCluster);
    }
    let from = (offset % cluster_bytes / PAGE_SIZE) as u32;
    let to = from + (length / PAGE_SIZE) as u32;
    Ok(Request {
        object_cluster,
        mask: page_mask(from, to),
    })
}

/// The device run of `pages` pages from page `first_page` on of the cluster at `location`,
/// which holds the object's bytes from `cluster_start` on.
fn device_run(
    segments: &Segments,
    location: Location,
    cluster_start: u64,
    first_page: u32,
    pages: u32,
) -> Result<DeviceRun, PlanError> {
    let (device, cluster_offset) = segments
        .device_offset(location)
        .ok_or(PlanError::Inconsistent)?;
    Ok(DeviceRun {
        device,
        device_offset: cluster_offset + u64::from(first_page) * PAGE_SIZE,
        pages,
        object_offset: cluster_start + u64::from(first_page) * PAGE_SIZE,
    })
}

/// The stretches of equal bits in `mask` over the set bits of `within`: `(first page,
/// pages, bit)` in order.
fn stretches(mask: u8, within: u8) -> impl Iterator<Item = (u32, u32, bool)> {
    let first = within.trailing_zeros();
    let end = u8::BITS - within.leading_zeros();
    let bit = move |page: u32| mask & (1 << page) != 0;
    let mut page = first;
    core::iter::from_fn(move || {
        if page >= end {
            return None;
        }
        let start = page;
        let value = bit(start);
        while page < end && bit(page) == value {
            page += 1;
        }
        Some((start, page - start, value))
    })
}

/// Plans the read of `[offset, offset + length)` (byte offsets in the object, whole pages,
/// inside one cluster): the runs of present pages to read and of absent pages to answer
/// "unavailable", up to the first page whose data is lost (a failed write or read). Refused
/// with [`PlanError::ClusterError`] when the first page asked for is such a page, and
/// [`PlanError::WriteInFlight`] while a requested page is being written.
pub fn plan_read(
    map: &ObjectMap,
    segments: &Segments,
    offset: u64,
    length: u64,
) -> Result<ReadPlan, PlanError> {
    let request = check_request(map, offset, length)?;
    let cluster_start = request.object_cluster * map.cluster_bytes();
    let mut runs = FixedVec::new();
    let Some(entry) = map.cluster(request.object_cluster) else {
        // Never written: all absent. (Cannot overflow: one run at most.)
        let _ = runs.push(ReadRun::Absent {
            object_offset: offset,
            pages: (length / PAGE_SIZE) as u32,
        });
        return Ok(ReadPlan { runs });
    };
    // A page whose data is lost (its write or read failed) is an error when asked for first,
    // and otherwise ends the request: the pages before it are read, and the kernel asks
    // again for those after it in requests that stop short of it.
    let mut mask = request.mask;
    let failed = entry.failed_pages() & mask;
    if failed != 0 {
        if failed & (1 << mask.trailing_zeros()) != 0 {
            return Err(PlanError::ClusterError);
        }
        mask &= (1u8 << failed.trailing_zeros()) - 1;
    }
    if entry.writing_pages() & mask != 0 {
        return Err(PlanError::WriteInFlight);
    }
    for (first_page, pages, present) in stretches(entry.present_pages(), mask) {
        let run = if present {
            ReadRun::Device(device_run(
                segments,
                entry.location(),
                cluster_start,
                first_page,
                pages,
            )?)
        } else {
            ReadRun::Absent {
                object_offset: cluster_start + u64::from(first_page) * PAGE_SIZE,
                pages,
            }
        };
        // Cannot overflow: a cluster has at most MAX_READ_RUNS pages.
        let _ = runs.push(run);
    }
    Ok(ReadPlan { runs })
}

/// Plans the write of `[offset, offset + length)` (byte offsets in the object, whole pages,
/// inside one cluster): one device run. See [`plan_write_pages`].
pub fn plan_write(
    map: &mut ObjectMap,
    segments: &mut Segments,
    offset: u64,
    length: u64,
) -> Result<WritePlan, PlanError> {
    let request = check_request(map, offset, length)?;
    plan_write_pages(map, segments, request.object_cluster, request.mask)
}

/// Plans the write of the pages of object cluster `object_cluster` set in `mask` (bit `n`:
/// the cluster's page `n`): gives the cluster a place on disk if it has none, marks the
/// pages being written, and returns one device run per contiguous stretch of them.
/// [`PlanError::Full`] or [`PlanError::NoMemory`] mean the return must be refused; on any
/// error nothing changed.
pub fn plan_write_pages(
    map: &mut ObjectMap,
    segments: &mut Segments,
    object_cluster: u64,
    mask: u8,
) -> Result<WritePlan, PlanError> {
    let cluster_pages = u64::from(map.cluster_pages());
    let last_page = u64::from(u8::BITS - mask.leading_zeros());
    if mask == 0 || last_page > cluster_pages {
        return Err(PlanError::Misaligned);
    }
    if object_cluster >= map.object_clusters()
        || object_cluster * cluster_pages + last_page > map.object_pages()
    {
        return Err(PlanError::OutOfRange);
    }
    let existing = map.cluster(object_cluster).copied();
    if existing.is_some_and(|entry| entry.writing_pages() & mask != 0) {
        return Err(PlanError::WriteInFlight);
    }
    let location = map.allocate_cluster(object_cluster, segments)?;
    let newly_allocated = existing.is_none();

    let cluster_start = object_cluster * map.cluster_bytes();
    let mut runs = FixedVec::new();
    for (first_page, pages, _) in stretches(mask, mask).filter(|(_, _, set)| *set) {
        match device_run(segments, location, cluster_start, first_page, pages) {
            // Cannot overflow: at most MAX_WRITE_RUNS stretches of set bits in 8 bits.
            Ok(run) => {
                let _ = runs.push(run);
            }
            Err(error) => {
                if newly_allocated {
                    let _ = map.free_cluster(object_cluster, segments);
                }
                return Err(error);
            }
        }
    }
    for run in &runs {
        // Cannot fail: the cluster is allocated and none of its pages is being written.
        map.start_write(run.object_pages())?;
    }
    Ok(WritePlan {
        runs,
        newly_allocated,
    })
}

/// Splits `[offset, offset + length)` at the boundaries of clusters of `cluster_bytes`
/// bytes (a power of two): the pieces, `(offset, length)` each, the planners take.
pub fn cluster_pieces(
    offset: u64,
    length: u64,
    cluster_bytes: u64,
) -> impl Iterator<Item = (u64, u64)> {
    let end = offset.saturating_add(length);
    let mut start = offset;
    core::iter::from_fn(move || {
        if start >= end {
            return None;
        }
        let boundary = (start / cluster_bytes + 1).saturating_mul(cluster_bytes);
        let piece_end = boundary.min(end);
        let piece = (start, piece_end - start);
        start = piece_end;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Segment;

    const PAGE: u64 = PAGE_SIZE;

    /// Device 3, from 1 MiB on, 8 clusters of 4 pages; an object of 8 clusters.
    fn setup() -> (ObjectMap, Segments) {
        let mut segments = Segments::new();
        segments
            .add(Segment::new(3, 1 << 20, 8, 4, 0).unwrap())
            .unwrap();
        (ObjectMap::new(32 * PAGE, 4).unwrap(), segments)
    }

    /// Writes the pages of `mask` in object cluster `object_cluster`, successfully.
    fn write(map: &mut ObjectMap, segments: &mut Segments, object_cluster: u64, mask: u8) {
        let plan = plan_write_pages(map, segments, object_cluster, mask).unwrap();
        for run in plan.runs() {
            map.mark_written(run.object_pages()).unwrap();
        }
    }

    #[test]
    fn requests_are_checked() {
        let (map, segments) = setup();
        let read = |offset, length| plan_read(&map, &segments, offset, length);
        assert_eq!(read(100, PAGE), Err(PlanError::Misaligned));
        assert_eq!(read(0, 100), Err(PlanError::Misaligned));
        assert_eq!(read(0, 0), Err(PlanError::Misaligned));
        assert_eq!(read(31 * PAGE, 2 * PAGE), Err(PlanError::OutOfRange));
        assert_eq!(read(u64::MAX - PAGE + 1, PAGE), Err(PlanError::OutOfRange));
        assert_eq!(read(3 * PAGE, 2 * PAGE), Err(PlanError::CrossesCluster));
        assert!(read(4 * PAGE, 4 * PAGE).is_ok());
    }

    #[test]
    fn never_written_cluster_is_one_absent_run() {
        let (map, segments) = setup();
        let plan = plan_read(&map, &segments, 5 * PAGE, 2 * PAGE).unwrap();
        assert_eq!(
            plan.runs(),
            [ReadRun::Absent {
                object_offset: 5 * PAGE,
                pages: 2
            }]
        );
        assert_eq!((plan.present_pages(), plan.absent_pages()), (0, 2));
    }

    #[test]
    fn present_cluster_is_one_device_run() {
        let (mut map, mut segments) = setup();
        // Cluster 0 of the segment goes to object cluster 2.
        write(&mut map, &mut segments, 2, 0b1111);
        let plan = plan_read(&map, &segments, 8 * PAGE, 4 * PAGE).unwrap();
        assert_eq!(
            plan.runs(),
            [ReadRun::Device(DeviceRun {
                device: 3,
                device_offset: 1 << 20,
                pages: 4,
                object_offset: 8 * PAGE
            })]
        );
        // Part of it: the run starts inside the cluster on disk too.
        let plan = plan_read(&map, &segments, 9 * PAGE, 2 * PAGE).unwrap();
        assert_eq!(
            plan.runs(),
            [ReadRun::Device(DeviceRun {
                device: 3,
                device_offset: (1 << 20) + PAGE,
                pages: 2,
                object_offset: 9 * PAGE
            })]
        );
    }

    #[test]
    fn mixed_cluster_alternates_runs() {
        let (mut map, mut segments) = setup();
        write(&mut map, &mut segments, 0, 0b0001);
        // The second cluster of the segment, for object cluster 1; pages 0, 2, 3 present.
        write(&mut map, &mut segments, 1, 0b1101);
        let cluster = (1 << 20) + 4 * PAGE;
        let plan = plan_read(&map, &segments, 4 * PAGE, 4 * PAGE).unwrap();
        assert_eq!(
            plan.runs(),
            [
                ReadRun::Device(DeviceRun {
                    device: 3,
                    device_offset: cluster,
                    pages: 1,
                    object_offset: 4 * PAGE
                }),
                ReadRun::Absent {
                    object_offset: 5 * PAGE,
                    pages: 1
                },
                ReadRun::Device(DeviceRun {
                    device: 3,
                    device_offset: cluster + 2 * PAGE,
                    pages: 2,
                    object_offset: 6 * PAGE
                }),
            ]
        );
        assert_eq!((plan.present_pages(), plan.absent_pages()), (3, 1));
        assert_eq!(plan.device_runs().count(), 2);
        // Only the absent page: one absent run.
        let plan = plan_read(&map, &segments, 5 * PAGE, PAGE).unwrap();
        assert_eq!(
            plan.runs(),
            [ReadRun::Absent {
                object_offset: 5 * PAGE,
                pages: 1
            }]
        );
    }

    #[test]
    fn failed_cluster_and_writes_in_flight_refuse_reads() {
        let (mut map, mut segments) = setup();
        write(&mut map, &mut segments, 0, 0b1111);
        let plan = plan_write(&mut map, &mut segments, 0, PAGE).unwrap();
        // The other pages are readable, the one being written is not.
        assert!(plan_read(&map, &segments, PAGE, 3 * PAGE).is_ok());
        assert_eq!(
            plan_read(&map, &segments, 0, 2 * PAGE),
            Err(PlanError::WriteInFlight)
        );
        map.mark_failed(plan.runs()[0].object_pages()).unwrap();
        // Now the failed page is an error when asked for first; the cluster's other pages
        // are read as before, and a request running into the failed page stops short of it.
        assert_eq!(
            plan_read(&map, &segments, 0, 2 * PAGE),
            Err(PlanError::ClusterError)
        );
        assert!(plan_read(&map, &segments, 3 * PAGE, PAGE).is_ok());
        // Other clusters are unaffected.
        assert!(plan_read(&map, &segments, 4 * PAGE, PAGE).is_ok());
    }

    #[test]
    fn a_page_whose_read_failed_costs_only_itself() {
        let (mut map, mut segments) = setup();
        write(&mut map, &mut segments, 0, 0b1111);
        map.mark_unreadable(1..2).unwrap();
        // Asked for first: an error.
        assert_eq!(
            plan_read(&map, &segments, PAGE, 3 * PAGE),
            Err(PlanError::ClusterError)
        );
        // Asked for after a good page: the read stops short of it.
        let plan = plan_read(&map, &segments, 0, 4 * PAGE).unwrap();
        assert_eq!(plan.present_pages(), 1);
        assert_eq!((plan.runs().len(), plan.absent_pages()), (1, 0));
        // The pages after it read as before.
        let plan = plan_read(&map, &segments, 2 * PAGE, 2 * PAGE).unwrap();
        assert_eq!(plan.present_pages(), 2);
    }

    #[test]
    fn whole_cluster_write_is_one_run() {
        let (mut map, mut segments) = setup();
        let plan = plan_write(&mut map, &mut segments, 12 * PAGE, 4 * PAGE).unwrap();
        assert!(plan.newly_allocated());
        assert_eq!(
            plan.runs(),
            [DeviceRun {
                device: 3,
                device_offset: 1 << 20,
                pages: 4,
                object_offset: 12 * PAGE
            }]
        );
        assert_eq!(plan.pages(), 4);
        assert_eq!(map.pages_writing(), 4);
        // Rewriting part of it uses the same place.
        map.mark_written(12..16).unwrap();
        let plan = plan_write(&mut map, &mut segments, 14 * PAGE, PAGE).unwrap();
        assert!(!plan.newly_allocated());
        assert_eq!(plan.runs()[0].device_offset, (1 << 20) + 2 * PAGE);
        assert_eq!(segments.free_clusters(), 7);
    }

    #[test]
    fn sparse_write_is_one_run_per_stretch() {
        let (mut map, mut segments) = setup();
        let plan = plan_write_pages(&mut map, &mut segments, 1, 0b1011).unwrap();
        let cluster = 1 << 20;
        assert_eq!(
            plan.runs(),
            [
                DeviceRun {
                    device: 3,
                    device_offset: cluster,
                    pages: 2,
                    object_offset: 4 * PAGE
                },
                DeviceRun {
                    device: 3,
                    device_offset: cluster + 3 * PAGE,
                    pages: 1,
                    object_offset: 7 * PAGE
                },
            ]
        );
        assert_eq!(map.cluster(1).unwrap().writing_pages(), 0b1011);
        assert_eq!(
            plan_write_pages(&mut map, &mut segments, 1, 0b0010),
            Err(PlanError::WriteInFlight)
        );
        assert_eq!(
            plan_write_pages(&mut map, &mut segments, 1, 0b10000),
            Err(PlanError::Misaligned)
        );
        assert_eq!(
            plan_write_pages(&mut map, &mut segments, 8, 0b1),
            Err(PlanError::OutOfRange)
        );
    }

    #[test]
    fn full_disk_refuses_the_write_and_changes_nothing() {
        let (mut map, mut segments) = setup();
        for object_cluster in 0..8 {
            write(&mut map, &mut segments, object_cluster, 0b1);
        }
        let mut big = ObjectMap::new(8 * PAGE, 4).unwrap();
        assert_eq!(
            plan_write(&mut big, &mut segments, 0, 4 * PAGE),
            Err(PlanError::Full)
        );
        assert_eq!(big.clusters_held(), 0);
        assert_eq!(big.pages_writing(), 0);
        // Clusters already held still take writes.
        assert!(plan_write(&mut map, &mut segments, PAGE, PAGE).is_ok());
    }

    #[test]
    fn partial_last_cluster() {
        // An object of 6 pages: its second cluster has only 2 pages.
        let (_, mut segments) = setup();
        let mut map = ObjectMap::new(6 * PAGE, 4).unwrap();
        assert_eq!(
            plan_write(&mut map, &mut segments, 4 * PAGE, 4 * PAGE),
            Err(PlanError::OutOfRange)
        );
        assert_eq!(
            plan_write_pages(&mut map, &mut segments, 1, 0b0111),
            Err(PlanError::OutOfRange)
        );
        assert_eq!(
            plan_write(&mut map, &mut segments, 4 * PAGE, 2 * PAGE)
                .unwrap()
                .pages(),
            2
        );
    }

    #[test]
    fn pieces_split_at_cluster_boundaries() {
        let cluster = 4 * PAGE;
        let pieces: std::vec::Vec<_> = cluster_pieces(2 * PAGE, 12 * PAGE, cluster).collect();
        assert_eq!(
            pieces,
            [
                (2 * PAGE, 2 * PAGE),
                (4 * PAGE, 4 * PAGE),
                (8 * PAGE, 4 * PAGE),
                (12 * PAGE, 2 * PAGE)
            ]
        );
        assert_eq!(cluster_pieces(0, 0, cluster).count(), 0);
        assert_eq!(
            cluster_pieces(0, cluster, cluster).collect::<std::vec::Vec<_>>(),
            [(0, cluster)]
        );
    }
}

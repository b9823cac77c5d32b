//! Property tests of the paging segments, the cluster maps and I/O planning, against a
//! model: any sequence of operations on two objects sharing the segments keeps every
//! bitmap and count consistent, never puts two objects (or two clusters of one) on one disk
//! cluster, changes nothing when it refuses, gives freed clusters out again, and plans reads
//! and writes that cover exactly the pages asked for.

use std::collections::BTreeSet;
use std::ops::Range;

use libipc::props::config;
use proptest::prelude::*;

use crate::cluster_map::{ClusterEntry, MapError, ObjectMap};
use crate::runs::{plan_read, plan_write, PlanError, ReadRun};
use crate::segment::{Location, Segment, SegmentError, Segments};
use crate::{MAX_CLUSTER_PAGES, PAGE_SIZE};

/// One operation on object `object` (0 or 1) of the two.
#[derive(Clone, Debug)]
enum Op {
    Allocate(usize, u64),
    StartWrite(usize, Range<u64>),
    MarkWritten(usize, Range<u64>),
    MarkFailed(usize, Range<u64>),
    MarkUnreadable(usize, Range<u64>),
    CancelWrite(usize, Range<u64>),
    FreeCluster(usize, u64),
    FreeAll(usize),
    Grow(usize, u64),
    PlanWrite(usize, u64, u64),
    PlanRead(usize, u64, u64),
    /// Ends every write in flight, as the server does when a device answers: written (0),
    /// failed (1), or taken back unissued (2).
    Finish(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let object = 0usize..2;
    // Pages and clusters a little past the objects' ends too, but mostly inside, where
    // operations succeed and build up state.
    let range = (0u64..20, 1u64..5).prop_map(|(start, len)| start..start + len);
    let bytes = (0u64..20, 1u64..5).prop_map(|(page, pages)| (page * PAGE_SIZE, pages * PAGE_SIZE));
    prop_oneof![
        4 => (object.clone(), 0u64..10).prop_map(|(o, c)| Op::Allocate(o, c)),
        3 => (object.clone(), range.clone()).prop_map(|(o, r)| Op::StartWrite(o, r)),
        3 => (object.clone(), range.clone()).prop_map(|(o, r)| Op::MarkWritten(o, r)),
        1 => (object.clone(), range.clone()).prop_map(|(o, r)| Op::MarkFailed(o, r)),
        1 => (object.clone(), range.clone()).prop_map(|(o, r)| Op::MarkUnreadable(o, r)),
        2 => (object.clone(), range).prop_map(|(o, r)| Op::CancelWrite(o, r)),
        2 => (object.clone(), 0u64..10).prop_map(|(o, c)| Op::FreeCluster(o, c)),
        1 => object.clone().prop_map(Op::FreeAll),
        1 => (object.clone(), 0u64..20).prop_map(|(o, p)| Op::Grow(o, p)),
        4 => (object.clone(), bytes.clone()).prop_map(|(o, (at, len))| Op::PlanWrite(o, at, len)),
        3 => (object.clone(), bytes).prop_map(|(o, (at, len))| Op::PlanRead(o, at, len)),
        3 => (object, 0u8..3).prop_map(|(o, how)| Op::Finish(o, how)),
    ]
}

/// What can be seen of a map from outside: every entry and the counts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    size: u64,
    entries: Vec<Option<ClusterEntry>>,
    counts: (u64, u64, u64, u64),
}

fn snapshot(map: &ObjectMap) -> Snapshot {
    Snapshot {
        size: map.size(),
        entries: (0..map.object_clusters())
            .map(|c| map.cluster(c).copied())
            .collect(),
        counts: (
            map.clusters_held(),
            map.pages_allocated(),
            map.pages_present(),
            map.pages_writing(),
        ),
    }
}

/// The test's state: the segments, two objects, and which disk clusters are bad for good
/// (given up by `free_all` after a failed read) and which object clusters failed a read.
struct World {
    segments: Segments,
    maps: [ObjectMap; 2],
    bad: BTreeSet<(usize, u32)>,
    unreadable: [BTreeSet<u64>; 2],
}

impl World {
    /// Checks every invariant the map and segment types state, and the model's accounts.
    fn check(&self) -> Result<(), TestCaseError> {
        let mut held = BTreeSet::new();
        for map in &self.maps {
            let cluster_bits = u8::MAX >> (8 - map.cluster_pages());
            let (mut clusters, mut allocated, mut present, mut writing) = (0, 0, 0, 0);
            for c in 0..map.object_clusters() {
                let Some(entry) = map.cluster(c) else {
                    continue;
                };
                let a = entry.allocated_pages();
                prop_assert_eq!(a & !cluster_bits, 0, "pages past the cluster");
                for (name, bits) in [
                    ("present", entry.present_pages()),
                    ("writing", entry.writing_pages()),
                    ("failed", entry.failed_pages()),
                ] {
                    prop_assert_eq!(bits & !a, 0, "{} pages without a place", name);
                }
                prop_assert_eq!(entry.present_pages() & entry.failed_pages(), 0);
                let location = entry.location();
                let segment = self.segments.get(location.segment());
                prop_assert!(segment.is_some_and(|s| s.is_allocated(location.cluster())));
                prop_assert_eq!(
                    segment.map(Segment::cluster_pages),
                    Some(map.cluster_pages())
                );
                let new = held.insert((location.segment(), location.cluster()));
                prop_assert!(new, "two clusters on disk cluster {:?}", location);
                prop_assert!(!self.bad.contains(&(location.segment(), location.cluster())));
                clusters += 1;
                allocated += u64::from(a.count_ones());
                present += u64::from(entry.present_pages().count_ones());
                writing += u64::from(entry.writing_pages().count_ones());
            }
            prop_assert_eq!(
                (
                    map.clusters_held(),
                    map.pages_allocated(),
                    map.pages_present(),
                    map.pages_writing()
                ),
                (clusters, allocated, present, writing)
            );
            // Nothing past the object's end.
            prop_assert!(map.cluster(map.object_clusters()).is_none());
            prop_assert!(map.lookup(map.object_pages()).is_none());
        }
        // Every used disk cluster belongs to one object, or is bad for good.
        prop_assert_eq!(
            self.segments.used_clusters(),
            (held.len() + self.bad.len()) as u64
        );
        let bad_and_held = self.bad.len() + held.len();
        let mut used = 0;
        for (index, segment) in self.segments.iter().enumerate() {
            for cluster in 0..segment.clusters() {
                if segment.is_allocated(cluster) {
                    used += 1;
                    let known =
                        held.contains(&(index, cluster)) || self.bad.contains(&(index, cluster));
                    prop_assert!(
                        known,
                        "segment {} cluster {} used by nobody",
                        index,
                        cluster
                    );
                }
            }
        }
        prop_assert_eq!(used, bad_and_held);
        Ok(())
    }

    /// Runs `op`; checks that a refusal changed nothing and that what succeeded did what it
    /// says.
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let before: Vec<_> = self.maps.iter().map(snapshot).collect();
        let free_before = self.segments.free_clusters();
        let refused = match op.clone() {
            Op::Allocate(o, c) => {
                let existing = self.maps[o].cluster(c).copied();
                let room = self.segments.choose(self.maps[o].cluster_pages()).is_some();
                let result = self.maps[o].allocate_cluster(c, &mut self.segments);
                match (&result, existing) {
                    (Ok(location), Some(entry)) => prop_assert_eq!(*location, entry.location()),
                    (Ok(_), None) => {
                        prop_assert_eq!(self.segments.free_clusters(), free_before - 1)
                    }
                    (Err(MapError::Full), None) => prop_assert!(!room, "refused with room"),
                    (Err(MapError::OutOfRange), _) => {
                        prop_assert!(c >= self.maps[o].object_clusters())
                    }
                    (Err(e), _) => return Err(TestCaseError::fail(format!("allocate: {e:?}"))),
                }
                result.is_err()
            }
            Op::StartWrite(o, r) => self.maps[o].start_write(r).is_err(),
            Op::MarkWritten(o, r) => self.maps[o].mark_written(r).is_err(),
            Op::MarkFailed(o, r) => self.maps[o].mark_failed(r).is_err(),
            Op::MarkUnreadable(o, r) => {
                let ok = self.maps[o].mark_unreadable(r.clone()).is_ok();
                if ok {
                    let pages = u64::from(self.maps[o].cluster_pages());
                    self.unreadable[o].extend(r.start / pages..=(r.end - 1) / pages);
                }
                !ok
            }
            Op::CancelWrite(o, r) => {
                let result = self.maps[o].cancel_write(r, &mut self.segments);
                if let Ok(freed) = result {
                    prop_assert_eq!(self.segments.free_clusters(), free_before + freed);
                    self.forget_freed(o);
                }
                result.is_err()
            }
            Op::FreeCluster(o, c) => {
                let result = self.maps[o].free_cluster(c, &mut self.segments);
                if result == Ok(true) {
                    prop_assert_eq!(self.segments.free_clusters(), free_before + 1);
                    prop_assert!(self.maps[o].cluster(c).is_none());
                    // The cluster can be had again.
                    prop_assert!(self.segments.choose(self.maps[o].cluster_pages()).is_some());
                    self.unreadable[o].remove(&c);
                }
                result.is_err()
            }
            Op::FreeAll(o) => {
                let bad: Vec<Location> = self.unreadable[o]
                    .iter()
                    .filter_map(|&c| self.maps[o].cluster(c).map(ClusterEntry::location))
                    .collect();
                let held = self.maps[o].clusters_held();
                let result = self.maps[o].free_all(&mut self.segments);
                if let Ok(freed) = result {
                    // Every cluster comes back but those a read failed on.
                    prop_assert_eq!(freed, held - bad.len() as u64);
                    prop_assert_eq!(self.maps[o].clusters_held(), 0);
                    self.bad
                        .extend(bad.iter().map(|l| (l.segment(), l.cluster())));
                    self.unreadable[o].clear();
                }
                result.is_err()
            }
            Op::Grow(o, pages) => {
                let size = self.maps[o].size() + pages * PAGE_SIZE;
                let entries = snapshot(&self.maps[o]).entries;
                prop_assert_eq!(self.maps[o].grow(size), Ok(()));
                prop_assert_eq!(self.maps[o].size(), size);
                // Growing keeps every entry where it was.
                let kept = &snapshot(&self.maps[o]).entries[..entries.len()];
                prop_assert_eq!(kept, &entries[..]);
                false
            }
            Op::PlanWrite(o, at, len) => {
                let had = self.maps[o]
                    .cluster(at / self.maps[o].cluster_bytes())
                    .is_some();
                match plan_write(&mut self.maps[o], &mut self.segments, at, len) {
                    Ok(plan) => {
                        prop_assert_eq!(u64::from(plan.pages()) * PAGE_SIZE, len);
                        prop_assert_eq!(plan.newly_allocated(), !had);
                        let mut next = at;
                        for run in plan.runs() {
                            prop_assert_eq!(run.object_offset, next);
                            next += run.bytes();
                            self.check_on_disk(
                                o,
                                run.device,
                                run.device_offset,
                                run.object_pages(),
                            )?;
                            for page in run.object_pages() {
                                prop_assert!(self.maps[o].lookup(page).is_some_and(|p| p.writing));
                            }
                        }
                        prop_assert_eq!(next, at + len);
                        false
                    }
                    Err(error) => {
                        prop_assert!(
                            error != PlanError::Inconsistent,
                            "the map and segments disagree"
                        );
                        true
                    }
                }
            }
            Op::PlanRead(o, at, len) => {
                match plan_read(&self.maps[o], &self.segments, at, len) {
                    Ok(plan) => {
                        prop_assert!(
                            u64::from(plan.present_pages() + plan.absent_pages()) * PAGE_SIZE
                                <= len
                        );
                        let mut next = at;
                        for run in plan.runs() {
                            let (offset, pages, present) = match *run {
                                ReadRun::Device(run) => {
                                    self.check_on_disk(
                                        o,
                                        run.device,
                                        run.device_offset,
                                        run.object_pages(),
                                    )?;
                                    (run.object_offset, run.pages, true)
                                }
                                ReadRun::Absent {
                                    object_offset,
                                    pages,
                                } => (object_offset, pages, false),
                            };
                            prop_assert_eq!(offset, next);
                            next += u64::from(pages) * PAGE_SIZE;
                            for page in offset / PAGE_SIZE..next / PAGE_SIZE {
                                let found = self.maps[o].lookup(page);
                                prop_assert_eq!(found.is_some_and(|p| p.present), present);
                                prop_assert!(!found.is_some_and(|p| p.writing || p.failed));
                            }
                        }
                        // The whole request, or up to a page whose data is lost.
                        prop_assert!(
                            next == at + len
                                || (next > at
                                    && self.maps[o]
                                        .lookup(next / PAGE_SIZE)
                                        .is_some_and(|p| p.failed))
                        );
                    }
                    Err(PlanError::ClusterError) => {
                        let first = self.maps[o].lookup(at / PAGE_SIZE);
                        prop_assert!(first.is_some_and(|p| p.failed));
                    }
                    Err(error) => prop_assert!(error != PlanError::Inconsistent),
                }
                // A read changes nothing either way.
                true
            }
            Op::Finish(o, how) => {
                for page in 0..self.maps[o].object_pages() {
                    let Some(was) = self.maps[o].lookup(page).filter(|p| p.writing) else {
                        continue;
                    };
                    let pages = page..page + 1;
                    match how {
                        0 => prop_assert_eq!(self.maps[o].mark_written(pages), Ok(())),
                        1 => prop_assert_eq!(self.maps[o].mark_failed(pages), Ok(())),
                        _ => {
                            let free = self.segments.free_clusters();
                            let freed = self.maps[o].cancel_write(pages, &mut self.segments);
                            prop_assert_eq!(
                                freed.map(|n| free + n),
                                Ok(self.segments.free_clusters())
                            );
                            self.forget_freed(o);
                        }
                    }
                    if let Some(now) = self.maps[o].lookup(page) {
                        prop_assert!(!now.writing);
                        match how {
                            0 => prop_assert!(now.present && now.allocated),
                            1 => prop_assert!(!now.present && now.allocated),
                            // Taken back: the page keeps its place only if it has data (or
                            // lost data) there.
                            _ => {
                                prop_assert_eq!(now.allocated, was.present || self.failed(o, page))
                            }
                        }
                    }
                }
                prop_assert_eq!(self.maps[o].pages_writing(), 0);
                false
            }
        };
        if refused {
            let after: Vec<_> = self.maps.iter().map(snapshot).collect();
            prop_assert_eq!(after, before, "a refused {:?} changed the maps", op);
            prop_assert_eq!(self.segments.free_clusters(), free_before);
        }
        self.check()
    }

    /// Whether page `page` of object `o` holds lost data (its last write or read failed).
    fn failed(&self, o: usize, page: u64) -> bool {
        let map = &self.maps[o];
        let pages = u64::from(map.cluster_pages());
        map.cluster(page / pages)
            .is_some_and(|entry| entry.failed_pages() & (1 << (page % pages)) != 0)
    }

    /// Drops the model's unreadable marks of clusters that no longer have a place.
    fn forget_freed(&mut self, o: usize) {
        let map = &self.maps[o];
        self.unreadable[o].retain(|&c| map.cluster(c).is_some());
    }

    /// Checks that a device run of object `o`'s `pages` lies where the map puts them: in the
    /// cluster of their object cluster, at their place in it.
    fn check_on_disk(
        &self,
        o: usize,
        device: u8,
        device_offset: u64,
        pages: Range<u64>,
    ) -> Result<(), TestCaseError> {
        let map = &self.maps[o];
        let first = map.lookup(pages.start).expect("a page with a place");
        let last = map.lookup(pages.end - 1).expect("a page with a place");
        prop_assert_eq!(first.location, last.location, "a run across clusters");
        let (segment_device, cluster_offset) = self
            .segments
            .device_offset(first.location)
            .expect("a known cluster");
        prop_assert_eq!(device, segment_device);
        prop_assert_eq!(
            device_offset,
            cluster_offset + u64::from(first.page_in_cluster) * PAGE_SIZE
        );
        let segment = self
            .segments
            .get(first.location.segment())
            .expect("a segment");
        prop_assert!(device_offset + (pages.end - pages.start) * PAGE_SIZE <= segment.end());
        Ok(())
    }
}

/// Segments: one or two of the objects' cluster size (and maybe one of another size), few
/// clusters each so that they fill up.
fn world() -> impl Strategy<Value = World> {
    let cluster_pages = prop_oneof![Just(1u32), Just(2), Just(4), Just(8)];
    (
        cluster_pages.clone(),
        proptest::collection::vec((1u32..12, 0u8..3), 1..3),
        proptest::option::of((cluster_pages, 1u32..8)),
        (0u64..20, 0u64..20),
    )
        .prop_map(|(pages, ours, other, (size0, size1))| {
            let mut segments = Segments::new();
            let mut start = 0;
            for (clusters, priority) in ours {
                let segment = Segment::new(1, start, clusters, pages, priority).expect("valid");
                start = segment.end();
                segments.add(segment).expect("room");
            }
            if let Some((other_pages, clusters)) = other {
                let segment = Segment::new(2, 0, clusters, other_pages, 0).expect("valid");
                segments.add(segment).expect("room");
            }
            World {
                segments,
                maps: [
                    ObjectMap::new(size0 * PAGE_SIZE, pages).expect("valid"),
                    ObjectMap::new(size1 * PAGE_SIZE + 100, pages).expect("valid"),
                ],
                bad: BTreeSet::new(),
                unreadable: [BTreeSet::new(), BTreeSet::new()],
            }
        })
}

impl core::fmt::Debug for World {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("World")
            .field("segments", &self.segments.usage().collect::<Vec<_>>())
            .field("sizes", &[self.maps[0].size(), self.maps[1].size()])
            .field("cluster_pages", &self.maps[0].cluster_pages())
            .finish()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_operations_keep_maps_and_segments_consistent(
        world in world(),
        ops in proptest::collection::vec(op(), 0..100),
    ) {
        let mut world = world;
        world.check()?;
        for op in &ops {
            world.apply(op)?;
        }
    }

    #[test]
    fn a_segment_allocates_first_fit_and_frees_what_it_gave(
        clusters in 1u32..200,
        ops in proptest::collection::vec(
            prop_oneof![Just(None), (0u32..220).prop_map(Some)],
            0..300
        ),
    ) {
        let mut segment = Segment::new(0, 0, clusters, 1, 0).expect("valid");
        let mut used = BTreeSet::new();
        for op in ops {
            match op {
                None => {
                    let lowest_free = (0..clusters).find(|c| !used.contains(c));
                    prop_assert_eq!(segment.allocate(), lowest_free);
                    if let Some(c) = lowest_free {
                        used.insert(c);
                    }
                }
                Some(cluster) => {
                    let expected = if cluster >= clusters {
                        Err(SegmentError::ClusterOutOfRange)
                    } else if used.remove(&cluster) {
                        Ok(())
                    } else {
                        Err(SegmentError::NotAllocated)
                    };
                    prop_assert_eq!(segment.free(cluster), expected);
                }
            }
            prop_assert_eq!(segment.free_clusters(), clusters - used.len() as u32);
            for c in 0..clusters + 70 {
                prop_assert_eq!(segment.is_allocated(c), used.contains(&c));
            }
        }
    }

    #[test]
    fn clusters_go_round_the_segments_of_one_priority_and_never_twice(
        sizes in proptest::collection::vec((1u32..20, 0u8..2), 1..5),
        takes in 0usize..100,
    ) {
        let mut segments = Segments::new();
        let mut start = 0;
        for &(clusters, priority) in &sizes {
            let segment =
                Segment::new(0, start, clusters, MAX_CLUSTER_PAGES, priority).expect("valid");
            start = segment.end();
            segments.add(segment).expect("room");
        }
        let mut taken = BTreeSet::new();
        for _ in 0..takes {
            let top = segments
                .iter()
                .filter(|s| s.free_clusters() > 0)
                .map(Segment::priority)
                .max();
            match segments.allocate(MAX_CLUSTER_PAGES) {
                Some(location) => {
                    let segment = segments.get(location.segment()).expect("a segment");
                    // From a segment of the highest priority that had room.
                    prop_assert_eq!(Some(segment.priority()), top);
                    prop_assert!(taken.insert((location.segment(), location.cluster())));
                }
                None => prop_assert!(top.is_none()),
            }
        }
        let total: u32 = sizes.iter().map(|s| s.0).sum();
        prop_assert_eq!(taken.len() as u64, u64::from(total).min(takes as u64));
    }
}

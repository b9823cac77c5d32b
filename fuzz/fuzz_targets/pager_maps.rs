//! Fuzzes the disk default pager: its segment configuration (the `swap=` text from the boot
//! loader) and its cluster maps and segments under any sequence of operations, whose books
//! must always balance.
#![no_main]

use decoder_fuzz::{Result, Unstructured};
use default_pager::{parse_config, plan_read, plan_write, ObjectMap, Segment, Segments, PAGE_SIZE};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fn config(u: &mut Unstructured<'_>) -> Result<()> {
    let disk: u64 = u.arbitrary()?;
    let text = String::from_utf8_lossy(u.bytes(u.len())?);
    if let Ok(specs) = parse_config(&text, disk) {
        for (i, spec) in specs.iter().enumerate() {
            assert!(spec.start.is_multiple_of(PAGE_SIZE) && spec.length.is_multiple_of(PAGE_SIZE));
            assert!(spec
                .start
                .checked_add(spec.length)
                .is_some_and(|end| end <= disk));
            assert!(spec.clusters() >= 1);
            for earlier in &specs[..i] {
                assert!(
                    spec.start + spec.length <= earlier.start
                        || earlier.start + earlier.length <= spec.start
                );
            }
        }
    }
    Ok(())
}

/// Checks that the segments' used clusters are exactly the maps' (a cluster a read failed on
/// stays used for good, so `bad` counts those given up).
fn check(maps: &[ObjectMap; 2], segments: &Segments, bad: u64) {
    let mut held = BTreeSet::new();
    for map in maps {
        let mut clusters = 0;
        for c in 0..map.object_clusters() {
            if let Some(entry) = map.cluster(c) {
                let l = entry.location();
                assert!(segments
                    .get(l.segment())
                    .is_some_and(|s| s.is_allocated(l.cluster())));
                assert!(
                    held.insert((l.segment(), l.cluster())),
                    "one disk cluster, two owners"
                );
                assert_eq!(entry.present_pages() & entry.failed_pages(), 0);
                assert_eq!(entry.writing_pages() & !entry.allocated_pages(), 0);
                clusters += 1;
            }
        }
        assert_eq!(map.clusters_held(), clusters);
    }
    assert!(segments.used_clusters() >= held.len() as u64);
    assert!(segments.used_clusters() <= held.len() as u64 + bad);
}

fn maps(u: &mut Unstructured<'_>) -> Result<()> {
    let cluster_pages = *u.choose(&[1, 2, 4, 8])?;
    let mut segments = Segments::new();
    let mut start = 0;
    for _ in 0..u.int_in_range(1..=3)? {
        let segment = Segment::new(
            0,
            start,
            u.int_in_range(1..=16)?,
            cluster_pages,
            u.arbitrary()?,
        )
        .expect("valid");
        start = segment.end();
        segments.add(segment).expect("room");
    }
    let mut maps = [
        ObjectMap::new(u.int_in_range(0..=64)? * PAGE_SIZE, cluster_pages).expect("valid"),
        ObjectMap::new(u.int_in_range(0..=64)? * PAGE_SIZE, cluster_pages).expect("valid"),
    ];
    let mut bad = 0;
    while !u.is_empty() {
        let o = usize::from(u.arbitrary::<bool>()?);
        let map = &mut maps[o];
        let page: u64 = u.int_in_range(0..=70)?;
        let pages = page..page + u.int_in_range(1..=8)?;
        match u.int_in_range(0..=9)? {
            0 => drop(map.allocate_cluster(page / 4, &mut segments)),
            1 => drop(map.start_write(pages)),
            2 => drop(map.mark_written(pages)),
            3 => drop(map.mark_failed(pages)),
            4 => drop(map.mark_unreadable(pages)),
            5 => drop(map.cancel_write(pages, &mut segments)),
            6 => drop(map.free_cluster(page / 4, &mut segments)),
            7 => {
                let held = map.clusters_held();
                if let Ok(freed) = map.free_all(&mut segments) {
                    bad += held - freed;
                }
            }
            8 => drop(plan_write(
                map,
                &mut segments,
                page * PAGE_SIZE,
                (pages.end - page) * PAGE_SIZE,
            )),
            _ => {
                if let Ok(plan) = plan_read(
                    map,
                    &segments,
                    page * PAGE_SIZE,
                    (pages.end - page) * PAGE_SIZE,
                ) {
                    assert_eq!(
                        u64::from(plan.present_pages() + plan.absent_pages()),
                        pages.end - page
                    );
                }
            }
        }
        check(&maps, &segments, bad);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let _ = if which.is_multiple_of(2) {
        config(&mut u)
    } else {
        maps(&mut u)
    };
});

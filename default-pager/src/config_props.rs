//! Property tests of the paging segment configuration parser (its text is the kernel
//! command line's `swap=`, which the boot loader passes): any text is refused or gives
//! segments that are page aligned, inside the disk, at least one cluster and disjoint;
//! written-out valid layouts parse back to themselves.

use libipc::props::config;
use proptest::prelude::*;

use crate::config::{parse, SegmentSpec};
use crate::{cluster_bytes, valid_cluster_pages, DEFAULT_CLUSTER_PAGES, MAX_SEGMENTS, PAGE_SIZE};

/// Checks what a parsed configuration promises for a disk of `disk` bytes.
fn check_specs(specs: &[SegmentSpec], disk: u64) -> Result<(), TestCaseError> {
    prop_assert!(!specs.is_empty() && specs.len() <= MAX_SEGMENTS);
    for (i, spec) in specs.iter().enumerate() {
        prop_assert!(valid_cluster_pages(spec.cluster_pages));
        prop_assert_eq!(spec.start % PAGE_SIZE, 0);
        prop_assert_eq!(spec.length % PAGE_SIZE, 0);
        let end = spec.start.checked_add(spec.length);
        prop_assert!(
            end.is_some_and(|end| end <= disk),
            "{:?} past the disk",
            spec
        );
        let clusters = spec.length / cluster_bytes(spec.cluster_pages);
        prop_assert!((1..=u64::from(u32::MAX)).contains(&clusters));
        prop_assert_eq!(u64::from(spec.clusters()), clusters);
        for earlier in &specs[..i] {
            prop_assert!(
                spec.start + spec.length <= earlier.start
                    || earlier.start + earlier.length <= spec.start,
                "{:?} overlaps {:?}",
                spec,
                earlier
            );
        }
    }
    Ok(())
}

/// Disks: small (in pages, or in 512-byte sectors as virtio disks are), large, and the
/// largest there can be.
fn disk() -> impl Strategy<Value = u64> {
    prop_oneof![
        (1u64..1 << 16).prop_map(|pages| pages * PAGE_SIZE),
        (1u64..1 << 20).prop_map(|sectors| sectors * 512),
        Just(64 << 20),
        Just(1 << 40),
        any::<u64>(),
        Just(u64::MAX),
    ]
}

/// A byte count written with a unit where it divides evenly (either case), or in bytes.
fn write_size(bytes: u64, style: u8) -> String {
    let units = [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')];
    match units
        .iter()
        .find(|(shift, _)| bytes != 0 && bytes.is_multiple_of(1 << shift))
    {
        Some(&(shift, unit)) if !style.is_multiple_of(3) => {
            let unit = if style % 3 == 1 {
                unit
            } else {
                unit.to_ascii_lowercase()
            };
            format!("{}{unit}", bytes >> shift)
        }
        _ => format!("{bytes}"),
    }
}

/// Valid layouts: up to eight segments in order, apart by whole pages, on a disk that ends
/// at or after the last; and how to write each (units, which fields to leave out).
fn layout() -> impl Strategy<Value = (Vec<SegmentSpec>, u64, Vec<u8>)> {
    let segment = (
        0u64..64,
        1u64..64,
        prop_oneof![Just(1u32), Just(2), Just(4), Just(8)],
        any::<u8>(),
    );
    (
        proptest::collection::vec(segment, 1..=MAX_SEGMENTS),
        0u64..4,
        proptest::collection::vec(any::<u8>(), MAX_SEGMENTS),
    )
        .prop_map(|(segments, tail, styles)| {
            let mut specs = Vec::new();
            let mut at = 0;
            for (gap, clusters, cluster_pages, priority) in segments {
                let start = at + gap * PAGE_SIZE;
                let length = clusters * cluster_bytes(cluster_pages);
                specs.push(SegmentSpec {
                    start,
                    length,
                    cluster_pages,
                    priority,
                });
                at = start + length;
            }
            (specs, at + tail * PAGE_SIZE, styles)
        })
}

/// Writes `spec` as a configuration item, fields left out where they have their default.
fn write_spec(spec: &SegmentSpec, disk: u64, style: u8) -> String {
    let mut item = write_size(spec.start, style);
    // The length may be left out when the segment runs to the disk's end.
    if spec.start + spec.length == disk && style & 4 != 0 {
        item.push('+');
    } else {
        item.push('+');
        item.push_str(&write_size(spec.length, style >> 3));
    }
    let cluster = if spec.cluster_pages == DEFAULT_CLUSTER_PAGES && style & 32 != 0 {
        String::new()
    } else {
        spec.cluster_pages.to_string()
    };
    if spec.priority != 0 || style & 64 != 0 {
        item.push_str(&format!(":{cluster}:{}", spec.priority));
    } else if !cluster.is_empty() {
        item.push_str(&format!(":{cluster}"));
    }
    if style & 128 != 0 {
        item = format!(" {item} ");
    }
    item
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_refused_or_a_layout_inside_the_disk(
        text in any::<String>(),
        disk in disk(),
    ) {
        if let Ok(specs) = parse(&text, disk) {
            check_specs(&specs, disk)?;
        }
    }

    #[test]
    fn layout_like_text_is_refused_or_a_layout_inside_the_disk(
        text in "[0-9KMGTkmgt+:, ]{0,60}",
        disk in disk(),
    ) {
        if let Ok(specs) = parse(&text, disk) {
            check_specs(&specs, disk)?;
        }
    }

    #[test]
    fn written_layouts_parse_back_to_themselves((specs, disk, styles) in layout()) {
        let text = specs
            .iter()
            .zip(&styles)
            .map(|(spec, &style)| write_spec(spec, disk, style))
            .collect::<Vec<_>>()
            .join(",");
        let parsed = parse(&text, disk);
        prop_assert!(parsed.is_ok(), "{:?}: {:?}", text, parsed);
        let parsed = parsed.unwrap();
        check_specs(&parsed, disk)?;
        prop_assert_eq!(parsed.as_slice(), &specs[..], "{}", text);
    }

    #[test]
    fn the_whole_disk_shorthand_is_one_segment(pages in 0u32..20, disk in disk()) {
        match parse(&pages.to_string(), disk) {
            Ok(specs) => {
                check_specs(&specs, disk)?;
                prop_assert_eq!(specs.len(), 1);
                prop_assert_eq!((specs[0].start, specs[0].cluster_pages), (0, pages));
            }
            Err(_) => prop_assert!(
                !valid_cluster_pages(pages)
                    || disk / cluster_bytes(pages) == 0
                    || disk / cluster_bytes(pages) > u64::from(u32::MAX)
            ),
        }
    }
}

//! The paging segment configuration: parsing the layout string the pager is given and
//! checking it against the disk.
//!
//! Syntax:
//!
//! - A plain number with no suffix, such as `4`, is one segment over the whole disk with
//!   clusters of that many pages and priority 0.
//! - Otherwise, a comma-separated list of at most 8 segments (spaces around items are
//!   ignored), each `start[+[length]][:[cluster_pages][:priority]]`:
//!   - `start` and `length` are byte counts: decimal digits with an optional suffix `K`,
//!     `M`, `G` or `T` (binary units, either case). Both must be page aligned (4096). A
//!     missing length (`16M` or `16M+`) means to the end of the disk: a whole-disk segment
//!     is `0+`, since a plain `0` would be the first form.
//!   - `cluster_pages` is 1, 2, 4 or 8 (default 8); `priority` 0 to 255 (default 0, higher
//!     is used first). An empty field takes the default: `0+1G::2`.
//!   - A segment's clusters are whole: a length that is not a multiple of the cluster
//!     leaves its tail unused, and a segment needs at least one cluster.
//!
//! Example: `0+16M:4:1,16M+16M:2:1,32M:8` is two segments of priority 1 (16 MiB in
//! clusters of 4 pages, then 16 MiB in clusters of 2) and one of priority 0 from 32 MiB to
//! the end of the disk in clusters of 8. Segments must not overlap and must end within the
//! disk. Segment `n` of the list becomes segment `n` of [`crate::Segments`].

use core::fmt;

use heapless::Vec as FixedVec;

use crate::segment::{Segment, SegmentError};
use crate::{cluster_bytes, valid_cluster_pages, DEFAULT_CLUSTER_PAGES, MAX_SEGMENTS, PAGE_SIZE};

/// Why a configuration was rejected. `segment` counts from 0 in list order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// No segment given.
    Empty,
    /// More than [`MAX_SEGMENTS`] segments.
    TooMany,
    /// A segment is not `start[+[length]][:[cluster_pages][:priority]]`.
    Syntax { segment: usize },
    /// A start, length, cluster size or priority is not a number, or too big for one.
    BadNumber { segment: usize },
    /// A cluster size other than 1, 2, 4 or 8 pages.
    BadClusterSize { segment: usize },
    /// A priority above 255.
    BadPriority { segment: usize },
    /// A start or length not page aligned.
    Misaligned { segment: usize },
    /// A segment starting or ending past the end of the disk.
    PastEnd { segment: usize },
    /// A segment with less than one cluster.
    TooSmall { segment: usize },
    /// A segment with more clusters than a segment can count (2^32 - 1).
    TooLarge { segment: usize },
    /// Two segments sharing bytes of the disk.
    Overlap { first: usize, second: usize },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::Empty => write!(formatter, "no paging segment given"),
            ConfigError::TooMany => write!(formatter, "more than {MAX_SEGMENTS} paging segments"),
            ConfigError::Syntax { segment } => write!(
                formatter,
                "segment {segment}: expected start[+[length]][:[cluster_pages][:priority]]"
            ),
            ConfigError::BadNumber { segment } => {
                write!(formatter, "segment {segment}: not a number, or too big")
            }
            ConfigError::BadClusterSize { segment } => {
                write!(
                    formatter,
                    "segment {segment}: cluster size must be 1, 2, 4 or 8 pages"
                )
            }
            ConfigError::BadPriority { segment } => {
                write!(formatter, "segment {segment}: priority must be 0 to 255")
            }
            ConfigError::Misaligned { segment } => write!(
                formatter,
                "segment {segment}: start and length must be multiples of {PAGE_SIZE} bytes"
            ),
            ConfigError::PastEnd { segment } => {
                write!(
                    formatter,
                    "segment {segment}: reaches past the end of the disk"
                )
            }
            ConfigError::TooSmall { segment } => {
                write!(formatter, "segment {segment}: smaller than one cluster")
            }
            ConfigError::TooLarge { segment } => {
                write!(formatter, "segment {segment}: more than 2^32 - 1 clusters")
            }
            ConfigError::Overlap { first, second } => {
                write!(formatter, "segments {first} and {second} overlap")
            }
        }
    }
}

/// One segment of a checked configuration: bytes `start..start + length` of the disk.
/// Invariant (from [`parse`]): page aligned, within the disk, at least one cluster and at
/// most `u32::MAX` of them, a valid cluster size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSpec {
    pub start: u64,
    pub length: u64,
    pub cluster_pages: u32,
    pub priority: u8,
}

impl SegmentSpec {
    /// Whole clusters in the segment.
    pub fn clusters(&self) -> u32 {
        u32::try_from(self.length / cluster_bytes(self.cluster_pages)).unwrap_or(u32::MAX)
    }

    /// The segment on device `device`, its bitmap allocated (fallibly).
    pub fn into_segment(self, device: u8) -> Result<Segment, SegmentError> {
        Segment::new(
            device,
            self.start,
            self.clusters(),
            self.cluster_pages,
            self.priority,
        )
    }

    fn end(&self) -> u64 {
        self.start + self.length
    }
}

/// Parses `text` (see the module documentation) for a disk of `disk_bytes` bytes and checks
/// the segments against it and against each other.
pub fn parse(
    text: &str,
    disk_bytes: u64,
) -> Result<FixedVec<SegmentSpec, MAX_SEGMENTS>, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ConfigError::Empty);
    }
    let mut specs = FixedVec::new();
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        // The whole-disk shorthand: the number is the cluster size.
        let cluster_pages = parse_small(text, 0)?;
        let spec = check(0, 0, None, Some(cluster_pages), 0, disk_bytes)?;
        let _ = specs.push(spec);
        return Ok(specs);
    }
    for (segment, item) in text.split(',').enumerate() {
        let spec = parse_item(segment, item.trim(), disk_bytes)?;
        specs.push(spec).map_err(|_| ConfigError::TooMany)?;
    }
    for (second, later) in specs.iter().enumerate() {
        if let Some(first) = specs[..second]
            .iter()
            .position(|earlier| earlier.start < later.end() && later.start < earlier.end())
        {
            return Err(ConfigError::Overlap { first, second });
        }
    }
    Ok(specs)
}

/// Parses one `start[+[length]][:[cluster_pages][:priority]]`.
fn parse_item(segment: usize, item: &str, disk_bytes: u64) -> Result<SegmentSpec, ConfigError> {
    let mut fields = item.split(':');
    let range = fields.next().unwrap_or("");
    let cluster_field = fields.next().unwrap_or("");
    let priority_field = fields.next().unwrap_or("");
    if fields.next().is_some() {
        return Err(ConfigError::Syntax { segment });
    }
    let (start_field, length_field) = match range.split_once('+') {
        Some((start, length)) => (start, length),
        None => (range, ""),
    };
    if start_field.is_empty() {
        return Err(ConfigError::Syntax { segment });
    }
    let start = parse_size(start_field, segment)?;
    let length = match length_field {
        "" => None,
        field => Some(parse_size(field, segment)?),
    };
    let cluster_pages = match cluster_field {
        "" => None,
        field => Some(parse_small(field, segment)?),
    };
    let priority = match priority_field {
        "" => 0,
        field => u8::try_from(parse_small(field, segment)?)
            .map_err(|_| ConfigError::BadPriority { segment })?,
    };
    check(segment, start, length, cluster_pages, priority, disk_bytes)
}

/// Checks one segment against the disk; `None` length is to the end of the disk, `None`
/// cluster size the default.
fn check(
    segment: usize,
    start: u64,
    length: Option<u64>,
    cluster_pages: Option<u32>,
    priority: u8,
    disk_bytes: u64,
) -> Result<SegmentSpec, ConfigError> {
    let cluster_pages = cluster_pages.unwrap_or(DEFAULT_CLUSTER_PAGES);
    if !valid_cluster_pages(cluster_pages) {
        return Err(ConfigError::BadClusterSize { segment });
    }
    let aligned = |bytes: u64| bytes.is_multiple_of(PAGE_SIZE);
    if !aligned(start) || !length.is_none_or(aligned) {
        return Err(ConfigError::Misaligned { segment });
    }
    if start >= disk_bytes {
        return Err(ConfigError::PastEnd { segment });
    }
    // To the end of the disk: its last whole page (a disk is sectors, not always pages).
    let length = length.unwrap_or((disk_bytes - start) & !(PAGE_SIZE - 1));
    if start.checked_add(length).is_none_or(|end| end > disk_bytes) {
        return Err(ConfigError::PastEnd { segment });
    }
    let clusters = length / cluster_bytes(cluster_pages);
    if clusters == 0 {
        return Err(ConfigError::TooSmall { segment });
    }
    if clusters > u64::from(u32::MAX) {
        return Err(ConfigError::TooLarge { segment });
    }
    Ok(SegmentSpec {
        start,
        length,
        cluster_pages,
        priority,
    })
}

/// A byte count: digits and an optional binary suffix.
fn parse_size(field: &str, segment: usize) -> Result<u64, ConfigError> {
    let bad = ConfigError::BadNumber { segment };
    let (digits, shift) = match field.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (&field[..field.len() - 1], 10),
        Some(b'M') => (&field[..field.len() - 1], 20),
        Some(b'G') => (&field[..field.len() - 1], 30),
        Some(b'T') => (&field[..field.len() - 1], 40),
        _ => (field, 0),
    };
    let value = parse_digits(digits).ok_or(bad)?;
    value.checked_mul(1 << shift).ok_or(bad)
}

/// A cluster size or priority: plain digits that fit a `u32`.
fn parse_small(field: &str, segment: usize) -> Result<u32, ConfigError> {
    parse_digits(field)
        .and_then(|value| u32::try_from(value).ok())
        .ok_or(ConfigError::BadNumber { segment })
}

/// Decimal digits only (no sign, no spaces), fitting a `u64`.
fn parse_digits(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const DISK: u64 = 64 * MIB;

    fn spec(start: u64, length: u64, cluster_pages: u32, priority: u8) -> SegmentSpec {
        SegmentSpec {
            start,
            length,
            cluster_pages,
            priority,
        }
    }

    #[test]
    fn whole_disk_shorthand() {
        let specs = parse("4", DISK).unwrap();
        assert_eq!(specs.as_slice(), [spec(0, DISK, 4, 0)]);
        assert_eq!(specs[0].clusters(), 4096);
        assert_eq!(parse(" 8 ", DISK).unwrap()[0].cluster_pages, 8);
        assert_eq!(
            parse("3", DISK),
            Err(ConfigError::BadClusterSize { segment: 0 })
        );
        assert_eq!(
            parse("0", DISK),
            Err(ConfigError::BadClusterSize { segment: 0 })
        );
    }

    #[test]
    fn list_of_segments() {
        let specs = parse("0+16M:4:1, 16M+16M:2:1,32M:8", DISK).unwrap();
        assert_eq!(
            specs.as_slice(),
            [
                spec(0, 16 * MIB, 4, 1),
                spec(16 * MIB, 16 * MIB, 2, 1),
                spec(32 * MIB, 32 * MIB, 8, 0)
            ]
        );
        assert_eq!(specs[1].clusters(), 2048);
        let segment = specs[2].into_segment(5).unwrap();
        assert_eq!(segment.device(), 5);
        assert_eq!(segment.start(), 32 * MIB);
        assert_eq!(segment.clusters(), 1024);
        assert_eq!(segment.priority(), 0);
    }

    #[test]
    fn defaults_suffixes_and_open_ends() {
        const D: u32 = crate::DEFAULT_CLUSTER_PAGES;
        assert_eq!(parse("0+", DISK).unwrap().as_slice(), [spec(0, DISK, D, 0)]);
        assert_eq!(
            parse("4k+32K::200", DISK).unwrap().as_slice(),
            [spec(4096, 32768, D, 200)]
        );
        assert_eq!(
            parse("1m+:1", DISK).unwrap().as_slice(),
            [spec(MIB, DISK - MIB, 1, 0)]
        );
        assert_eq!(
            parse("0+1G", 2 << 30).unwrap().as_slice(),
            [spec(0, 1 << 30, D, 0)]
        );
        // A length that is not whole clusters leaves the tail unused.
        assert_eq!(parse("0+20K:4", DISK).unwrap()[0].clusters(), 1);
    }

    #[test]
    fn syntax_and_number_errors() {
        assert_eq!(parse("", DISK), Err(ConfigError::Empty));
        assert_eq!(parse("   ", DISK), Err(ConfigError::Empty));
        assert_eq!(
            parse("0+16M:4:1:9", DISK),
            Err(ConfigError::Syntax { segment: 0 })
        );
        assert_eq!(
            parse("0+16M,+16M", DISK),
            Err(ConfigError::Syntax { segment: 1 })
        );
        assert_eq!(
            parse("0+x", DISK),
            Err(ConfigError::BadNumber { segment: 0 })
        );
        assert_eq!(
            parse("0+16Q", DISK),
            Err(ConfigError::BadNumber { segment: 0 })
        );
        assert_eq!(
            parse("0+-4K", DISK),
            Err(ConfigError::BadNumber { segment: 0 })
        );
        assert_eq!(
            parse("0+99999999999999999999", DISK),
            Err(ConfigError::BadNumber { segment: 0 })
        );
        assert_eq!(
            parse("0+17179869184G", DISK),
            Err(ConfigError::BadNumber { segment: 0 })
        );
        assert_eq!(
            parse("0+4M:4:256", DISK),
            Err(ConfigError::BadPriority { segment: 0 })
        );
        assert_eq!(
            parse("0+4M:16", DISK),
            Err(ConfigError::BadClusterSize { segment: 0 })
        );
    }

    #[test]
    fn disk_errors() {
        assert_eq!(
            parse("0+4M,512+4M", DISK),
            Err(ConfigError::Misaligned { segment: 1 })
        );
        assert_eq!(
            parse("0+4097", DISK),
            Err(ConfigError::Misaligned { segment: 0 })
        );
        assert_eq!(parse("64M", DISK), Err(ConfigError::PastEnd { segment: 0 }));
        assert_eq!(
            parse("60M+8M", DISK),
            Err(ConfigError::PastEnd { segment: 0 })
        );
        assert_eq!(
            parse("0+8K:4", DISK),
            Err(ConfigError::TooSmall { segment: 0 })
        );
        assert_eq!(parse("4", 8192), Err(ConfigError::TooSmall { segment: 0 }));
        assert_eq!(
            parse("0+20T:1", 32 << 40),
            Err(ConfigError::TooLarge { segment: 0 })
        );
    }

    #[test]
    fn overlaps_and_count() {
        assert_eq!(
            parse("0+16M,32M+4M,8M+16M", DISK),
            Err(ConfigError::Overlap {
                first: 0,
                second: 2
            })
        );
        // An open end reaches everything after it.
        assert_eq!(
            parse("32M,40M+4M", DISK),
            Err(ConfigError::Overlap {
                first: 0,
                second: 1
            })
        );
        // Touching is fine.
        assert_eq!(parse("0+16M,16M+16M", DISK).unwrap().len(), 2);
        assert_eq!(
            parse("0+1M,1M+1M,2M+1M,3M+1M,4M+1M,5M+1M,6M+1M,7M+1M,8M+1M", DISK),
            Err(ConfigError::TooMany)
        );
        assert_eq!(
            parse("0+1M,1M+1M,2M+1M,3M+1M,4M+1M,5M+1M,6M+1M,7M+1M", DISK)
                .unwrap()
                .len(),
            8
        );
    }

    #[test]
    fn errors_display_clearly() {
        assert_eq!(
            std::format!(
                "{}",
                ConfigError::Overlap {
                    first: 0,
                    second: 2
                }
            ),
            "segments 0 and 2 overlap"
        );
        assert_eq!(
            std::format!("{}", ConfigError::PastEnd { segment: 1 }),
            "segment 1: reaches past the end of the disk"
        );
    }
}

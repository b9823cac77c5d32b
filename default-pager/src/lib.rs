//! The disk-backed default pager's pure logic, host-tested: paging segments, per-object
//! cluster maps, I/O planning, segment configuration and statistics.
//!
//! After the OSF/Mach default pager: backing store is a set of paging segments (ranges of a
//! disk, [`segment`]), each handed out in clusters of 1 to 8 pages with a bitmap of used
//! clusters; each memory object has a map from its clusters to segment clusters with, per
//! cluster, which pages have a place and which hold data (OSF's `vs_map`, [`cluster_map`]).
//! [`runs`] turns a kernel request into device operations, [`config`] reads the segment
//! layout the pager is given, [`in_flight`] keeps the device operations not yet completed and
//! [`statistics`] counts what the pager did.
//!
//! Nothing here talks to a device or the kernel, and nothing panics or aborts when memory is
//! short: every allocation is fallible and its failure is an error value, so the pager can
//! refuse a request and carry on.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod cluster_map;
pub mod config;
pub mod in_flight;
pub mod runs;
pub mod segment;
/// The pager itself (the program's and the collocated server's).
#[cfg(target_os = "none")]
pub mod serve;
pub mod statistics;

#[cfg(test)]
mod cluster_map_props;
#[cfg(test)]
mod config_props;

pub use cluster_map::{ClusterEntry, MapError, ObjectMap, PageLocation};
pub use config::{parse as parse_config, ConfigError, SegmentSpec};
pub use in_flight::{InFlight, Tag};
pub use runs::{
    cluster_pieces, plan_read, plan_write, plan_write_pages, DeviceRun, PlanError, ReadPlan,
    ReadRun, WritePlan,
};
pub use segment::{Location, Segment, SegmentError, SegmentUsage, Segments};
pub use statistics::Statistics;

/// Bytes in a page (the kernel's page size).
pub const PAGE_SIZE: u64 = 4096;

/// The largest cluster, in pages. A cluster's pages fit a `u8` bitmap.
pub const MAX_CLUSTER_PAGES: u32 = 8;

/// The cluster size used when the configuration does not give one: 8 pages (32 KiB), the
/// largest, which halves the disk operations of 4-page clusters (OSF's `clsize`) and beats
/// Linux's 8-page swap read-ahead on sheeptest (docs/performance.md).
pub const DEFAULT_CLUSTER_PAGES: u32 = 8;

/// The most paging segments the pager manages.
pub const MAX_SEGMENTS: usize = 8;

/// Whether `pages` is a cluster size the pager supports: a power of two from 1 to
/// [`MAX_CLUSTER_PAGES`].
pub const fn valid_cluster_pages(pages: u32) -> bool {
    pages.is_power_of_two() && pages <= MAX_CLUSTER_PAGES
}

/// Bytes in a cluster of `cluster_pages` pages.
pub const fn cluster_bytes(cluster_pages: u32) -> u64 {
    cluster_pages as u64 * PAGE_SIZE
}

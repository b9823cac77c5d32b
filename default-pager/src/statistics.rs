//! The default pager's counters: pages and clusters moved, device operations by size,
//! refusals, I/O errors and segment usage, printable as one line.

use core::fmt;

use crate::segment::Segments;
use crate::MAX_CLUSTER_PAGES;

/// Buckets of the operation-size histogram: 1, 2, ... 7 pages, and 8 or more.
const SIZE_BUCKETS: usize = MAX_CLUSTER_PAGES as usize;

/// What the pager has done since it started. Counters only grow, except the segment usage,
/// which is the latest seen ([`Statistics::record_segments`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    pages_in: u64,
    pages_out: u64,
    clusters_in: u64,
    clusters_out: u64,
    device_reads: u64,
    device_writes: u64,
    /// Device operations (reads and writes) of 1, 2, ... 7 and 8 or more pages.
    operations_by_pages: [u64; SIZE_BUCKETS],
    refused_returns: u64,
    io_errors: u64,
    clusters_used: u64,
    clusters_total: u64,
    peak_clusters_used: u64,
}

impl Statistics {
    /// All zero.
    pub fn new() -> Statistics {
        Statistics::default()
    }

    /// A device read of `pages` pages was issued (a page-in).
    pub fn record_read(&mut self, pages: u32) {
        self.device_reads += 1;
        self.pages_in += u64::from(pages);
        self.record_operation(pages);
    }

    /// A device write of `pages` pages was issued (a page-out).
    pub fn record_write(&mut self, pages: u32) {
        self.device_writes += 1;
        self.pages_out += u64::from(pages);
        self.record_operation(pages);
    }

    /// A data request on one cluster was answered from disk.
    pub fn record_cluster_in(&mut self) {
        self.clusters_in += 1;
    }

    /// A data return on one cluster was written.
    pub fn record_cluster_out(&mut self) {
        self.clusters_out += 1;
    }

    /// A data return was refused (no room, no memory, or a failed write): the kernel keeps
    /// the pages.
    pub fn record_refused_return(&mut self) {
        self.refused_returns += 1;
    }

    /// A device operation failed.
    pub fn record_io_error(&mut self) {
        self.io_errors += 1;
    }

    /// Takes the segments' current usage.
    pub fn record_segments(&mut self, segments: &Segments) {
        self.clusters_used = segments.used_clusters();
        self.clusters_total = segments.total_clusters();
        self.peak_clusters_used = self.peak_clusters_used.max(self.clusters_used);
    }

    fn record_operation(&mut self, pages: u32) {
        let bucket = (pages.max(1) as usize).min(SIZE_BUCKETS) - 1;
        self.operations_by_pages[bucket] += 1;
    }

    pub fn pages_in(&self) -> u64 {
        self.pages_in
    }

    pub fn pages_out(&self) -> u64 {
        self.pages_out
    }

    pub fn clusters_in(&self) -> u64 {
        self.clusters_in
    }

    pub fn clusters_out(&self) -> u64 {
        self.clusters_out
    }

    pub fn device_reads(&self) -> u64 {
        self.device_reads
    }

    pub fn device_writes(&self) -> u64 {
        self.device_writes
    }

    /// Device operations of `pages` pages (of 8 or more for 8); 0 for 0.
    pub fn operations_of(&self, pages: u32) -> u64 {
        match pages {
            0 => 0,
            _ => self.operations_by_pages[(pages as usize).min(SIZE_BUCKETS) - 1],
        }
    }

    pub fn refused_returns(&self) -> u64 {
        self.refused_returns
    }

    pub fn io_errors(&self) -> u64 {
        self.io_errors
    }

    /// Clusters in use at the last [`Statistics::record_segments`].
    pub fn clusters_used(&self) -> u64 {
        self.clusters_used
    }

    /// Clusters of all segments at the last [`Statistics::record_segments`].
    pub fn clusters_total(&self) -> u64 {
        self.clusters_total
    }

    /// The most clusters seen in use.
    pub fn peak_clusters_used(&self) -> u64 {
        self.peak_clusters_used
    }
}

impl fmt::Display for Statistics {
    /// One line, e.g. `pages in 12 out 40, clusters in 3 out 10, reads 3 writes 10, sizes
    /// 1:2 2:0 3:0 4:11 5:0 6:0 7:0 8+:0, refused 0, I/O errors 0, clusters used 10/2048
    /// (peak 10)`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "pages in {} out {}, clusters in {} out {}, reads {} writes {}, sizes",
            self.pages_in,
            self.pages_out,
            self.clusters_in,
            self.clusters_out,
            self.device_reads,
            self.device_writes
        )?;
        for (index, count) in self.operations_by_pages.iter().enumerate() {
            let plus = if index + 1 == SIZE_BUCKETS { "+" } else { "" };
            write!(formatter, " {}{plus}:{count}", index + 1)?;
        }
        write!(
            formatter,
            ", refused {}, I/O errors {}, clusters used {}/{} (peak {})",
            self.refused_returns,
            self.io_errors,
            self.clusters_used,
            self.clusters_total,
            self.peak_clusters_used
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Segment;

    #[test]
    fn counters_and_histogram() {
        let mut statistics = Statistics::new();
        statistics.record_read(4);
        statistics.record_read(1);
        statistics.record_write(4);
        statistics.record_write(16);
        statistics.record_cluster_in();
        statistics.record_cluster_out();
        statistics.record_cluster_out();
        statistics.record_refused_return();
        statistics.record_io_error();
        assert_eq!((statistics.pages_in(), statistics.pages_out()), (5, 20));
        assert_eq!(
            (statistics.device_reads(), statistics.device_writes()),
            (2, 2)
        );
        assert_eq!(
            (statistics.clusters_in(), statistics.clusters_out()),
            (1, 2)
        );
        assert_eq!(statistics.operations_of(1), 1);
        assert_eq!(statistics.operations_of(4), 2);
        assert_eq!(statistics.operations_of(8), 1);
        assert_eq!(statistics.operations_of(9), 1);
        assert_eq!(statistics.operations_of(2), 0);
        assert_eq!(statistics.operations_of(0), 0);
        assert_eq!(
            (statistics.refused_returns(), statistics.io_errors()),
            (1, 1)
        );
    }

    #[test]
    fn segment_usage_and_peak() {
        let mut segments = Segments::new();
        segments.add(Segment::new(0, 0, 10, 4, 0).unwrap()).unwrap();
        let mut statistics = Statistics::new();
        let first = segments.allocate(4).unwrap();
        segments.allocate(4).unwrap();
        statistics.record_segments(&segments);
        segments.free(first).unwrap();
        statistics.record_segments(&segments);
        assert_eq!(statistics.clusters_used(), 1);
        assert_eq!(statistics.clusters_total(), 10);
        assert_eq!(statistics.peak_clusters_used(), 2);
    }

    #[test]
    fn display_is_one_line() {
        let mut statistics = Statistics::new();
        statistics.record_read(2);
        statistics.record_write(8);
        let line = std::format!("{statistics}");
        assert_eq!(
            line,
            "pages in 2 out 8, clusters in 0 out 0, reads 1 writes 1, sizes 1:0 2:1 3:0 4:0 \
             5:0 6:0 7:0 8+:1, refused 0, I/O errors 0, clusters used 0/0 (peak 0)"
        );
    }
}

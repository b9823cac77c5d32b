//! Clustered page-in: which pages one `data_request` asks a pager for, given the faulting
//! page, the region's access strategy and the object's cluster size (seed 004, §2).
//!
//! A cluster is `cluster_pages` contiguous pages aligned on that many pages. A request never
//! leaves the faulting page's cluster or the object, and covers only pages that are absent
//! (neither resident nor already asked for): it is the contiguous run of such pages around
//! the faulting page, within the window the strategy predicts.

use super::map::{Strategy, PAGE_SIZE};
use core::ops::Range;

/// The window of pages the strategy predicts will be used, around the faulting page at
/// `offset` (all in bytes, page-aligned), before clipping to the cluster.
fn window(offset: u64, strategy: Strategy) -> Range<u64> {
    match strategy {
        // One page ahead: what a fault usually leads to.
        Strategy::Normal => offset..offset.saturating_add(2 * PAGE_SIZE),
        Strategy::Sequential => offset..u64::MAX,
        Strategy::Reverse => 0..offset + PAGE_SIZE,
        Strategy::Random => offset..offset + PAGE_SIZE,
    }
}

/// The range `[start, end)` of object offsets to ask for after a fault at `offset`, for an
/// object of `size` bytes with clusters of `cluster_pages` pages. `absent(o)` says whether
/// the page at `o` is neither resident nor already requested; the faulting page must be.
pub fn request_range(
    offset: u64,
    strategy: Strategy,
    cluster_pages: u32,
    size: u64,
    absent: impl Fn(u64) -> bool,
) -> Range<u64> {
    run_around(
        offset,
        window(offset, strategy),
        cluster_pages,
        size,
        absent,
    )
}

/// [`request_range`] for memory the default pager holds, whose pages went out a cluster at
/// a time and lie together on its disk: reading the rest of the run costs no more device
/// operations than reading the faulting page, so under the normal strategy the request is
/// the whole run of absent pages around the faulting page in its cluster (OSF's clustered
/// page-in). Other strategies keep their windows: the task said how it reads.
pub fn default_pager_request_range(
    offset: u64,
    strategy: Strategy,
    cluster_pages: u32,
    size: u64,
    absent: impl Fn(u64) -> bool,
) -> Range<u64> {
    let window = match strategy {
        Strategy::Normal => 0..u64::MAX,
        other => window(offset, other),
    };
    run_around(offset, window, cluster_pages, size, absent)
}

/// The run of absent pages around the faulting page at `offset`, inside its cluster and
/// `window`.
fn run_around(
    offset: u64,
    window: Range<u64>,
    cluster_pages: u32,
    size: u64,
    absent: impl Fn(u64) -> bool,
) -> Range<u64> {
    debug_assert!(offset.is_multiple_of(PAGE_SIZE) && offset < size);
    let cluster = u64::from(cluster_pages.max(1)) * PAGE_SIZE;
    let cluster_start = offset - offset % cluster;
    let cluster_end = (cluster_start + cluster).min(size.next_multiple_of(PAGE_SIZE));
    let low = window.start.max(cluster_start);
    let high = window.end.min(cluster_end);
    let mut start = offset;
    while start > low && absent(start - PAGE_SIZE) {
        start -= PAGE_SIZE;
    }
    let mut end = offset + PAGE_SIZE;
    while end < high && absent(end) {
        end += PAGE_SIZE;
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;

    fn pages(range: Range<u64>) -> (u64, u64) {
        (range.start / P, range.end / P)
    }

    fn all_absent(_: u64) -> bool {
        true
    }

    #[test]
    fn each_strategy_reads_its_own_way() {
        // Fault on page 5 of an object of 32 pages, clusters of 4 (pages 4..8).
        let r = |s| pages(request_range(5 * P, s, 4, 32 * P, all_absent));
        assert_eq!(r(Strategy::Normal), (5, 7));
        assert_eq!(r(Strategy::Sequential), (5, 8));
        assert_eq!(r(Strategy::Reverse), (4, 6));
        assert_eq!(r(Strategy::Random), (5, 6));
    }

    #[test]
    fn a_request_stays_in_its_cluster() {
        // The last page of a cluster: nothing ahead fits.
        let r = request_range(7 * P, Strategy::Sequential, 4, 32 * P, all_absent);
        assert_eq!(pages(r), (7, 8));
        // The first page: nothing behind.
        let r = request_range(8 * P, Strategy::Reverse, 4, 32 * P, all_absent);
        assert_eq!(pages(r), (8, 9));
        // Sixteen-page clusters: a sequential fault mid-cluster reads to its end.
        let r = request_range(19 * P, Strategy::Sequential, 16, 64 * P, all_absent);
        assert_eq!(pages(r), (19, 32));
    }

    #[test]
    fn a_request_stops_at_the_object_end() {
        let r = request_range(9 * P, Strategy::Sequential, 8, 10 * P + 100, all_absent);
        assert_eq!(
            pages(r),
            (9, 11),
            "the partial last page is part of the object"
        );
        let r = request_range(9 * P, Strategy::Sequential, 8, 10 * P, all_absent);
        assert_eq!(pages(r), (9, 10));
    }

    #[test]
    fn resident_and_requested_pages_cut_the_run() {
        // Pages 6 and 2 are resident (or already asked for).
        let absent = |o: u64| o != 6 * P && o != 2 * P;
        let r = request_range(4 * P, Strategy::Sequential, 8, 64 * P, absent);
        assert_eq!(pages(r), (4, 6));
        let r = request_range(4 * P, Strategy::Reverse, 8, 64 * P, absent);
        assert_eq!(pages(r), (3, 5));
    }

    #[test]
    fn single_page_clusters_ask_for_one_page() {
        for s in [
            Strategy::Normal,
            Strategy::Sequential,
            Strategy::Reverse,
            Strategy::Random,
        ] {
            assert_eq!(pages(request_range(3 * P, s, 1, 8 * P, all_absent)), (3, 4));
        }
    }

    #[test]
    fn default_pager_memory_comes_in_whole_runs_of_its_cluster() {
        let all = |_| true;
        // Normal: the whole cluster, either side of the faulting page.
        assert_eq!(
            pages(default_pager_request_range(
                5 * P,
                Strategy::Normal,
                4,
                64 * P,
                all
            )),
            (4, 8)
        );
        // Only pages the pager holds and nobody asked for: the run stops at the others.
        let held = |o: u64| o != 4 * P;
        assert_eq!(
            pages(default_pager_request_range(
                6 * P,
                Strategy::Normal,
                4,
                64 * P,
                held
            )),
            (5, 8)
        );
        // The other strategies keep their windows.
        assert_eq!(
            pages(default_pager_request_range(
                5 * P,
                Strategy::Random,
                4,
                64 * P,
                all
            )),
            (5, 6)
        );
        assert_eq!(
            pages(default_pager_request_range(
                5 * P,
                Strategy::Reverse,
                4,
                64 * P,
                all
            )),
            (4, 6)
        );
        // A user pager's object under the normal strategy: one page ahead, as before.
        assert_eq!(
            pages(request_range(5 * P, Strategy::Normal, 4, 64 * P, all)),
            (5, 7)
        );
    }
}

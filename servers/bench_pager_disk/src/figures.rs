//! What a scan moved through the disk, from the kernel's counters before and after it, and
//! the figures made of it: device operations per page out and per page in. Pure, so it is
//! host-tested.

use libipc::abi::syscall::VmStatistics;

use crate::ratio::Hundredths;

/// Counters of the paging traffic between two `vm_statistics` snapshots. Every counter in
/// it is kernel-wide: the benchmark's own memory is the only thing paging while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// `data_return`s sent to the default pager, and the pages in them.
    pub returns: u64,
    pub returned_pages: u64,
    /// `data_request`s sent, the pages asked for, and the pages pagers supplied.
    pub requests: u64,
    pub requested_pages: u64,
    pub pageins: u64,
    /// What the disk driver did.
    pub device_reads: u64,
    pub device_writes: u64,
    pub device_pages_read: u64,
    pub device_pages_written: u64,
    pub device_errors: u64,
}

impl Traffic {
    pub fn between(before: &VmStatistics, after: &VmStatistics) -> Traffic {
        let delta = |f: fn(&VmStatistics) -> u64| f(after).saturating_sub(f(before));
        Traffic {
            returns: delta(VmStatistics::returns),
            returned_pages: delta(VmStatistics::returned_pages),
            requests: delta(VmStatistics::requests),
            requested_pages: delta(VmStatistics::requested_pages),
            pageins: delta(|s| s.pageins),
            device_reads: delta(|s| s.device_reads),
            device_writes: delta(|s| s.device_writes),
            device_pages_read: delta(|s| s.device_pages_read),
            device_pages_written: delta(|s| s.device_pages_written),
            device_errors: delta(|s| s.device_errors),
        }
    }

    /// Device writes per page returned to the default pager; `None` if none was.
    pub fn ops_per_page_out(&self) -> Option<Hundredths> {
        Hundredths::of_ratio(self.device_writes, self.returned_pages)
    }

    /// Device reads per page the pager supplied; `None` if it supplied none.
    pub fn ops_per_page_in(&self) -> Option<Hundredths> {
        Hundredths::of_ratio(self.device_reads, self.pageins)
    }
}

/// `<base>.cluster<pages>`: the name of a figure measured with clusters of `pages` pages.
pub fn per_cluster(base: &str, pages: u64) -> alloc::string::String {
    alloc::format!("{base}.cluster{pages}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(returns: &[(usize, u64)], pageins: u64, reads: u64, writes: u64) -> VmStatistics {
        let mut s = VmStatistics {
            pageins,
            device_reads: reads,
            device_writes: writes,
            ..VmStatistics::default()
        };
        for &(pages, count) in returns {
            s.returns_by_pages[pages] = count;
        }
        s
    }

    #[test]
    fn ops_per_page_come_from_the_deltas() {
        let before = snapshot(&[(4, 10), (1, 3)], 100, 20, 13);
        // 100 more returns of 4 pages and 8 of 1 page (408 pages) in 108 writes; 400 pages
        // supplied in 100 reads.
        let after = snapshot(&[(4, 110), (1, 11)], 500, 120, 121);
        let traffic = Traffic::between(&before, &after);
        assert_eq!(traffic.returns, 108);
        assert_eq!(traffic.returned_pages, 408);
        assert_eq!(traffic.pageins, 400);
        assert_eq!(traffic.ops_per_page_out().unwrap().to_string(), "0.26");
        assert_eq!(traffic.ops_per_page_in().unwrap().to_string(), "0.25");
    }

    #[test]
    fn no_figure_without_pages() {
        let same = snapshot(&[(4, 10)], 100, 20, 13);
        let traffic = Traffic::between(&same, &same);
        assert_eq!(traffic.ops_per_page_out(), None);
        assert_eq!(traffic.ops_per_page_in(), None);
    }

    #[test]
    fn cluster_names() {
        assert_eq!(
            per_cluster("pager.disk_ops_per_page_in", 8),
            "pager.disk_ops_per_page_in.cluster8"
        );
    }
}

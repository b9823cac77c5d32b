//! The counters the Linux guest reads before and after a run: a block device's
//! `/sys/block/<dev>/stat` (requests completed) and `/proc/vmstat` (pages swapped in and
//! out, major faults).

/// A block device's requests completed, from its `stat` file (Documentation/block/stat.rst:
/// reads, merged reads, sectors read, read ticks, writes, ... , discards at 12, flushes at 16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStat {
    pub reads: u64,
    pub sectors_read: u64,
    pub writes: u64,
    pub sectors_written: u64,
    /// Zero when the kernel's file has no such field.
    pub discards: u64,
    pub flushes: u64,
}

impl DiskStat {
    /// Reads a `stat` file's text; `None` if it has fewer than the 11 fields every kernel
    /// since 2.6 writes, or one is not a number.
    pub fn parse(text: &str) -> Option<DiskStat> {
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        if fields.len() < 11 {
            return None;
        }
        let at = |index: usize| fields.get(index).copied().unwrap_or(0);
        Some(DiskStat {
            reads: at(0),
            sectors_read: at(2),
            writes: at(4),
            sectors_written: at(6),
            discards: at(11),
            flushes: at(15),
        })
    }

    /// Requests of every kind: what a throttled disk (QEMU's `iops-total`) counts.
    pub fn operations(&self) -> u64 {
        self.reads + self.writes + self.discards + self.flushes
    }

    /// The counts since `before`.
    pub fn since(&self, before: &DiskStat) -> DiskStat {
        DiskStat {
            reads: self.reads.wrapping_sub(before.reads),
            sectors_read: self.sectors_read.wrapping_sub(before.sectors_read),
            writes: self.writes.wrapping_sub(before.writes),
            sectors_written: self.sectors_written.wrapping_sub(before.sectors_written),
            discards: self.discards.wrapping_sub(before.discards),
            flushes: self.flushes.wrapping_sub(before.flushes),
        }
    }
}

/// The value of `key` in `/proc/vmstat`'s text (lines `name value`).
pub fn vmstat(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_file_of_a_recent_kernel() {
        // 17 fields: reads, merges, sectors, ticks; writes, ...; in flight, io ticks, queue
        // time; discards, merges, sectors, ticks; flushes, ticks.
        let text = "    1673 2 53232 900    1052 0 33072 1200    0 1800 2100    3 0 24 1    5 7\n";
        let stat = DiskStat::parse(text).unwrap();
        assert_eq!(
            stat,
            DiskStat {
                reads: 1673,
                sectors_read: 53232,
                writes: 1052,
                sectors_written: 33072,
                discards: 3,
                flushes: 5,
            }
        );
        assert_eq!(stat.operations(), 1673 + 1052 + 3 + 5);
    }

    #[test]
    fn an_old_stat_file_has_no_discards_or_flushes() {
        let stat = DiskStat::parse("1 0 8 0 2 0 16 0 0 0 0").unwrap();
        assert_eq!(
            (stat.reads, stat.writes, stat.discards, stat.flushes),
            (1, 2, 0, 0)
        );
        assert_eq!(DiskStat::parse("1 0 8 0 2"), None);
        assert_eq!(DiskStat::parse("1 0 8 0 2 0 16 0 0 0 x"), None);
    }

    #[test]
    fn differences() {
        let before = DiskStat::parse("10 0 80 0 20 0 160 0 0 0 0").unwrap();
        let after = DiskStat::parse("15 0 120 0 27 0 216 0 0 0 0").unwrap();
        let delta = after.since(&before);
        assert_eq!((delta.reads, delta.writes, delta.sectors_read), (5, 7, 40));
        assert_eq!(delta.operations(), 12);
    }

    #[test]
    fn vmstat_values_by_name() {
        let text = "nr_free_pages 1200\npswpin 431\npswpout 9876\npgmajfault 12\n";
        assert_eq!(vmstat(text, "pswpin"), Some(431));
        assert_eq!(vmstat(text, "pswpout"), Some(9876));
        assert_eq!(vmstat(text, "pswp"), None);
        assert_eq!(vmstat("pswpin x\n", "pswpin"), None);
    }
}

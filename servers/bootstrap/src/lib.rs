//! What bootstrap is made of besides its main, host-tested: the name table, and when it is
//! done with the programs it started.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use libipc::names::{check_name, NameError};

/// Most names the service holds.
pub const NAME_TABLE_CAPACITY: usize = 64;

/// A program bootstrap starts at boot: an entry of `servers/boot.toml` with `start = true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    /// Its name in the boot archive.
    pub name: &'static str,
    /// It serves for good (`daemon = true`): bootstrap does not wait for it to exit.
    pub daemon: bool,
    /// It may look up the device master port (`devices = true`).
    pub devices: bool,
    /// Started only with a disk (`Some(true)`, `disk = "present"`) or only without one
    /// (`Some(false)`, `disk = "absent"`); `None`: always.
    pub disk: Option<bool>,
    /// A server linked into the kernel (`collocated = true`): started with
    /// `task_spawn_collocated`, and registered with the name service by bootstrap under its
    /// name (it cannot wait for the service's answer itself).
    pub collocated: bool,
}

impl Program {
    /// Whether bootstrap starts the program when a disk is (`disk_present`) or is not there.
    pub fn starts_with(&self, disk_present: bool) -> bool {
        self.disk.is_none_or(|wanted| wanted == disk_present)
    }

    /// Whether bootstrap starts the program, and its second start argument: by the disk
    /// condition, except that with a disk and `zcache` (a budget in bytes, the kernel's
    /// `zcache=`) zpager starts too, stacked in front of the disk pager
    /// (`libipc::pager::STACKED` and the budget), and the disk pager serves behind it (1).
    pub fn start_argument(&self, disk_present: bool, zcache: Option<u64>) -> Option<u64> {
        let stacked = disk_present && zcache.is_some();
        match self.name {
            "zpager" if stacked => Some(libipc::pager::STACKED | zcache.unwrap_or(0)),
            "default_pager" if stacked => Some(1),
            _ => self.starts_with(disk_present).then_some(0),
        }
    }
}

/// A size with an optional K, M or G suffix (the kernel's `zcache=`), in bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Whether bootstrap is done: every child it waits for (all but daemons) has exited.
/// `children`: each child's `daemon` flag and its exit status once it exited.
pub fn waited_for_have_exited(children: impl IntoIterator<Item = (bool, Option<u64>)>) -> bool {
    children
        .into_iter()
        .all(|(daemon, status)| daemon || status.is_some())
}

/// bootstrap's exit status once done: 0 if every program started and every one that exited
/// (daemons may still serve) exited with 0; else the first non-zero status (the shell's last
/// command's, say) when it is 1 to 255, else 1. `children` as for
/// [`waited_for_have_exited`].
pub fn exit_status(
    children: impl IntoIterator<Item = (bool, Option<u64>)>,
    failed_to_start: usize,
) -> i32 {
    let mut first = None;
    for (daemon, status) in children {
        match status {
            Some(0) => {}
            None if daemon => {}
            Some(status @ 1..=255) => first = first.or(Some(status as i32)),
            _ => first = first.or(Some(1)),
        }
    }
    match (first, failed_to_start) {
        (Some(status), _) => status,
        (None, 0) => 0,
        (None, _) => 1,
    }
}

/// Names and the rights registered under them: at most `capacity` entries, names distinct and
/// valid (see [`check_name`]).
#[derive(Debug)]
pub struct NameTable<R> {
    entries: Vec<(String, R)>,
    capacity: usize,
}

impl<R> NameTable<R> {
    pub fn new(capacity: usize) -> Self {
        NameTable {
            entries: Vec::new(),
            capacity,
        }
    }

    /// Registers `right` under `name`. On error the right is dropped (given back).
    pub fn register(&mut self, name: String, right: R) -> Result<(), NameError> {
        check_name(&name)?;
        if self.entries.iter().any(|(n, _)| *n == name) {
            return Err(NameError::Duplicate);
        }
        if self.entries.len() >= self.capacity || self.entries.try_reserve(1).is_err() {
            return Err(NameError::TableFull);
        }
        self.entries.push((name, right));
        Ok(())
    }

    /// The right registered under `name`.
    pub fn lookup(&self, name: &str) -> Result<&R, NameError> {
        check_name(name)?;
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, right)| right)
            .ok_or(NameError::Unknown)
    }

    /// Removes (and drops) every entry whose right `dead` says is gone; how many.
    pub fn remove_where(&mut self, mut dead: impl FnMut(&R) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(_, right)| !dead(right));
        before - self.entries.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libipc::names::MAX_NAME_LEN;

    #[test]
    fn registers_looks_up_and_refuses() {
        let mut table = NameTable::new(2);
        assert_eq!(table.register("echo".into(), 7), Ok(()));
        assert_eq!(table.lookup("echo"), Ok(&7));
        assert_eq!(table.register("echo".into(), 8), Err(NameError::Duplicate));
        assert_eq!(table.lookup("nope"), Err(NameError::Unknown));
        assert_eq!(table.register(String::new(), 8), Err(NameError::Empty));
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert_eq!(table.register(long.clone(), 8), Err(NameError::TooLong));
        assert_eq!(table.lookup(&long), Err(NameError::TooLong));
        assert_eq!(table.register("n".repeat(MAX_NAME_LEN), 9), Ok(()));
        assert_eq!(
            table.register("third".into(), 10),
            Err(NameError::TableFull)
        );
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn disk_conditions_choose_what_starts() {
        let program = |disk| Program {
            name: "p",
            daemon: true,
            devices: false,
            disk,
            collocated: false,
        };
        assert!(program(None).starts_with(true) && program(None).starts_with(false));
        assert!(program(Some(true)).starts_with(true));
        assert!(!program(Some(true)).starts_with(false));
        assert!(program(Some(false)).starts_with(false));
        assert!(!program(Some(false)).starts_with(true));
    }

    #[test]
    fn a_zcache_stacks_zpager_in_front_of_the_disk_pager() {
        let program = |name, disk| Program {
            name,
            daemon: true,
            devices: false,
            disk,
            collocated: false,
        };
        let zpager = program("zpager", Some(false));
        let disk_pager = program("default_pager", Some(true));
        assert_eq!(zpager.start_argument(false, None), Some(0));
        assert_eq!(zpager.start_argument(true, None), None);
        assert_eq!(disk_pager.start_argument(true, None), Some(0));
        assert_eq!(
            zpager.start_argument(true, Some(4 << 20)),
            Some(libipc::pager::STACKED | 4 << 20)
        );
        assert_eq!(disk_pager.start_argument(true, Some(4 << 20)), Some(1));
        // Without a disk there is nothing to stack on.
        assert_eq!(zpager.start_argument(false, Some(4 << 20)), Some(0));
        assert_eq!(disk_pager.start_argument(false, Some(4 << 20)), None);
        assert_eq!(parse_size("4M"), Some(4 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn daemons_are_not_waited_for() {
        // (daemon, status)
        assert!(!waited_for_have_exited([(false, None), (true, None)]));
        assert!(waited_for_have_exited([(false, Some(0)), (true, None)]));
        assert!(waited_for_have_exited([(true, None)]));
        assert_eq!(exit_status([(false, Some(0)), (true, None)], 0), 0);
        assert_eq!(exit_status([(false, Some(3)), (true, None)], 0), 3);
        assert_eq!(
            exit_status([(false, Some(u64::MAX)), (false, Some(4))], 0),
            1
        );
        // A daemon that exited counts as any child.
        assert_eq!(exit_status([(false, Some(0)), (true, Some(101))], 0), 101);
        assert_eq!(exit_status([(false, Some(0)), (true, Some(0))], 0), 0);
        assert_eq!(exit_status([(false, Some(0))], 1), 1);
    }

    #[test]
    fn dead_entries_go_and_free_their_names() {
        let mut table = NameTable::new(4);
        table.register("a".into(), 1).unwrap();
        table.register("b".into(), 2).unwrap();
        table.register("c".into(), 1).unwrap();
        assert_eq!(table.remove_where(|&r| r == 1), 2);
        assert_eq!(table.lookup("a"), Err(NameError::Unknown));
        assert_eq!(table.lookup("b"), Ok(&2));
        assert_eq!(table.register("a".into(), 3), Ok(()));
    }
}

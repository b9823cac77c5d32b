//! What bootstrap is made of besides its main, host-tested: which programs it starts, and
//! when it is done with them.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}

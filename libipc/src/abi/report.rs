//! The guest's report protocol: how a booted kernel tells the host tool what happened.
//!
//! The kernel prints report lines on the first serial port and ends QEMU by writing an
//! [`ExitCode`] to the `isa-debug-exit` device at [`DEBUG_EXIT_PORT`]; QEMU then exits with
//! status `(code << 1) | 1`, which the host maps back with [`ExitCode::from_qemu_status`].

/// I/O port of QEMU's `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Prefix of a self-test result line: `ktest <name> ok` or `ktest <name> FAILED: <reason>`.
pub const KTEST_PREFIX: &str = "ktest ";

/// What the guest reports when it ends.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked for ran and passed.
    Success = 0,
    /// At least one self-test failed.
    TestsFailed = 1,
    /// The kernel panicked or took a fatal exception.
    Panic = 2,
}

impl ExitCode {
    /// The guest's code from QEMU's exit status; `None` when QEMU ended without the guest
    /// writing to the exit device (even statuses: a reset with `-no-reboot`, a shutdown, or an
    /// error of QEMU itself).
    pub fn from_qemu_status(status: i32) -> Option<u32> {
        (status > 0 && status & 1 == 1).then(|| (status as u32 - 1) >> 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_status_maps_back_to_guest_code() {
        for code in [ExitCode::Success, ExitCode::TestsFailed, ExitCode::Panic] {
            let status = ((code as i32) << 1) | 1;
            assert_eq!(ExitCode::from_qemu_status(status), Some(code as u32));
        }
        assert_eq!(ExitCode::from_qemu_status(0), None);
        assert_eq!(ExitCode::from_qemu_status(2), None);
        assert_eq!(ExitCode::from_qemu_status(-1), None);
    }
}

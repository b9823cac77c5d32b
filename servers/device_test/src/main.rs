//! `device_test`: in-guest tests of the kernel's devices behind device ports (`libipc::device`):
//! the first disk's status, reads and writes of 1 to 64 pages read back byte for byte, many
//! requests in flight at once (more than the device's ring holds), and every refusal (bad
//! names, offsets, sizes and ranges, pages not in memory, unknown messages, no host port).
//!
//! Run as the first task (`init=device_test`, with a disk), it gets the device master port
//! through the host port the kernel gives the first task. `init_arg=1` runs the cases for a
//! disk that fails some requests instead (booted with `--disk-fault` as [`faults::SPEC`]
//! says), `init_arg=2` those for a slow disk (`--disk-iops 100`), where requests wait for
//! room in the device's ring, and `init_arg=3` (with `mem=32M`) has pages read from the disk
//! paged out to zpager, made the default pager, and back. It reports `ktest <name> ok` /
//! `ktest <name> FAILED: why`, then `N passed, M failed`, and exits with the number of
//! failures; without a disk it says so and exits with [`NO_DISK`] instead.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod cases;
#[cfg(target_os = "none")]
mod faults;
#[cfg(target_os = "none")]
mod pressure;
#[cfg(target_os = "none")]
mod refusals;
#[cfg(target_os = "none")]
mod transfers;

/// The exit status when the kernel found no disk: no case runs (each would fail the same
/// way). 77 is what test harnesses take for "skipped".
#[cfg(target_os = "none")]
pub const NO_DISK: i32 = 77;

/// The exit status for an `init_arg` that selects no suite.
#[cfg(target_os = "none")]
pub const BAD_ARGUMENT: i32 = 64;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::device::{DeviceError, FIRST_DISK};
    use libipc::interface::RemoteError;
    if args.arg1 == refusals::CHILD_WITHOUT_HOST {
        return refusals::child_without_host(args.arg0 as u32);
    }
    cases::HOST.store(args.arg0 as u32, core::sync::atomic::Ordering::Relaxed);
    let suite = match args.arg2 {
        0 => cases::ALL,
        1 => cases::FAULTY,
        2 => cases::SLOW,
        3 => cases::PRESSURE,
        other => {
            libipc::println!(
                "device_test: init_arg={other} selects no suite (0: a healthy disk, 1: the \
                 faulty disk of --disk-fault {}, 2: a slow disk, --disk-iops 100, 3: little \
                 memory, mem=32M)",
                faults::SPEC
            );
            return BAD_ARGUMENT;
        }
    };
    let mut master = match cases::device_master() {
        Ok(master) => master,
        Err(why) => {
            libipc::println!("device_test: {why}");
            return 1;
        }
    };
    match master.open(FIRST_DISK.into()) {
        Ok(_) => {}
        Err(RemoteError::Server(DeviceError::NoSuchDevice)) => {
            libipc::println!(
                "device_test: no disk: the kernel has no device {FIRST_DISK} (open answered \
                 NoSuchDevice); boot with one (not --no-disk). No case run."
            );
            return NO_DISK;
        }
        Err(e) => {
            libipc::println!("device_test: cannot open {FIRST_DISK}: {e}");
            return 1;
        }
    }
    if args.arg2 == 3 {
        return libipc::rt::selftest::run_with_pager(
            args.arg0 as u32,
            "zpager",
            libipc::pager::DEFAULT_PAGER_NAME,
            libipc::sys::host_set_default_pager,
            suite,
        );
    }
    libipc::rt::selftest::run(suite)
}

#[cfg(not(target_os = "none"))]
fn main() {}

//! Harness for the QEMU integration tests: builds the kernel and the boot archive once, boots
//! them, keeps failure logs.
//!
//! Each test boots through [`boot`] (or [`boot_with`]) and gets a [`GuestRun`] whose serial log
//! is already written to `target/test-logs/<test name>.log`; the `expect_*` methods fail with
//! the end of the serial output and the log's path. When the test passes the log is removed.
//!
//! Guests boot without a disk unless a test asks for one ([`direct_options_with_disk`]); each
//! such boot gets a fresh image of its own, removed like the log.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

pub use image::disk::{Disk, DiskImage, DiskSize, Fault};
pub use image::report::{Report, Summary, Verdict};
pub use image::{Boot, BootOptions, Built, Media, Outcome};

/// Timeout of a direct (PVH) boot.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// QEMU runs at most this many guests at once: TCG needs a core each.
const MAX_CONCURRENT_GUESTS: usize = 2;

/// The kernel, the user programs and the boot archive, built (release profile) once per test
/// binary. Panics if the build fails.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        image::build_all(image::Profile::Release).map_err(|error| format!("{error:#}"))
    });
    match built {
        Ok(built) => built,
        Err(error) => panic!(
            "could not build the kernel and the boot archive (compiler output above): {error}"
        ),
    }
}

/// The kernel ELF (see [`built`]).
pub fn kernel() -> PathBuf {
    built().kernel.clone()
}

/// The boot archive (see [`built`]).
pub fn archive() -> PathBuf {
    built().archive.clone()
}

/// Direct-boot options for `cmdline` with the boot archive and [`DEFAULT_TIMEOUT`]; set
/// `archive` to `None` to boot the kernel alone.
pub fn direct_options(cmdline: &str) -> BootOptions {
    let mut opts = BootOptions::direct(kernel(), cmdline);
    opts.archive = Some(archive());
    opts.timeout = Some(DEFAULT_TIMEOUT);
    opts
}

/// A disk of `size_mib` MiB for the default pager with an image for each boot alone (sparse,
/// all zeros, under `target/disk/run/`: tests run two guests at once), healthy and unthrottled;
/// `with_iops` and `with_faults` change that. Panics if the size is 0 or too large.
pub fn test_disk(size_mib: u32) -> Disk {
    let size = DiskSize::from_mib(size_mib).unwrap_or_else(|why| panic!("test disk: {why}"));
    Disk::per_run(size)
}

/// [`direct_options`] with a [`test_disk`] of `size_mib` MiB attached (virtio-blk).
pub fn direct_options_with_disk(cmdline: &str, size_mib: u32) -> BootOptions {
    direct_options(cmdline).with_disk(test_disk(size_mib))
}

/// [`direct_options_with_disk`] whose disk fails requests as fault `spec` says: comma-separated
/// rules `OP[@SECTOR[+COUNT]][:once]` (e.g. `write@800+8:once,read@0`; see [`image::disk`]).
/// Panics if `spec` is malformed or goes past the end of the disk.
pub fn direct_options_with_faulty_disk(cmdline: &str, size_mib: u32, spec: &str) -> BootOptions {
    let disk = test_disk(size_mib)
        .with_faults(spec)
        .unwrap_or_else(|error| panic!("test disk: {error:#}"));
    direct_options(cmdline).with_disk(disk)
}

/// The Limine ISO (empty kernel command line, with the boot archive as its module), built once
/// per test binary, or `None` when
/// `LIMINE_DIR` is not set. Panics if the build fails.
pub fn limine_iso() -> Option<PathBuf> {
    std::env::var_os("LIMINE_DIR").filter(|dir| !dir.is_empty())?;
    static ISO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = ISO.get_or_init(|| {
        let build = || -> anyhow::Result<PathBuf> {
            let limine = image::iso::LimineRelease::from_env()?;
            let built = built();
            let spec = image::iso::IsoSpec {
                kernel: &built.kernel,
                cmdline: "",
                archive: Some(&built.archive),
            };
            image::iso::build_iso(&limine, &spec)
        };
        build().map_err(|error| format!("{error:#}"))
    });
    match built {
        Ok(path) => Some(path.clone()),
        Err(error) => panic!("could not build the Limine ISO: {error}"),
    }
}

/// Boots the kernel directly, with the boot archive, with `cmdline` under [`DEFAULT_TIMEOUT`];
/// `name` names the log.
pub fn boot(name: &str, cmdline: &str) -> GuestRun {
    boot_with(name, &direct_options(cmdline))
}

/// Boots with `opts` and writes the serial log of test `name`.
pub fn boot_with(name: &str, opts: &BootOptions) -> GuestRun {
    let archive = if opts.archive.is_some() {
        ""
    } else {
        " without archive"
    };
    let mut what = match &opts.media {
        Media::Direct(_) if opts.cmdline.is_empty() => {
            format!("direct boot{archive}, empty command line")
        }
        Media::Direct(_) => format!("direct boot{archive}, command line `{}`", opts.cmdline),
        Media::Iso { uefi: false, .. } => "Limine ISO under BIOS".to_string(),
        Media::Iso { uefi: true, .. } => "Limine ISO under UEFI".to_string(),
    };
    if let Some(disk) = &opts.disk {
        what.push_str(&format!(", {disk}"));
    }
    let boot = {
        let _slot = GuestSlot::take();
        image::boot(opts).unwrap_or_else(|error| panic!("{name} ({what}): {error:#}"))
    };
    let log = image::target_dir()
        .join("test-logs")
        .join(format!("{name}.log"));
    write_log(&log, &boot);
    GuestRun {
        name: name.to_string(),
        what,
        timeout: opts.timeout,
        report: Report::parse(&boot.serial),
        boot,
        log,
    }
}

fn write_log(path: &std::path::Path, boot: &Boot) {
    let mut text = boot.serial.clone();
    if !boot.qemu_stderr.trim().is_empty() {
        text.push_str("\n--- QEMU's stderr ---\n");
        text.push_str(&boot.qemu_stderr);
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, text));
    if let Err(error) = written {
        eprintln!("could not write serial log {}: {error}", path.display());
    }
}

/// One finished boot. Its log file and its disk image (if it had a disk) are removed on drop
/// unless the test is failing.
pub struct GuestRun {
    name: String,
    what: String,
    timeout: Option<Duration>,
    pub boot: Boot,
    pub report: Report,
    log: PathBuf,
}

impl GuestRun {
    /// Fails unless the boot ended with `expected`.
    #[track_caller]
    pub fn expect_outcome(&self, expected: Outcome) -> &Self {
        if self.boot.outcome != expected {
            let actual = match (self.boot.outcome, self.timeout) {
                (Outcome::TimedOut, Some(timeout)) => {
                    format!("the guest timed out after {} s", timeout.as_secs())
                }
                (outcome, _) => outcome.to_string(),
            };
            self.fail(&format!("expected {}, but {actual}", describe(expected)));
        }
        self
    }

    /// The first line starting with `prefix`; fails (saying it was looking for `what`) if none.
    #[track_caller]
    pub fn expect_line_starting_with(&self, prefix: &str, what: &str) -> &str {
        match self.report.line_starting_with(prefix) {
            Some(line) => line,
            None => self.fail(&format!("no {what} (a line starting with `{prefix}`)")),
        }
    }

    /// The first line containing all `needles`; fails (saying it wanted `what`) if none.
    #[track_caller]
    pub fn expect_line_containing(&self, needles: &[&str], what: &str) -> &str {
        match self.report.line_containing(needles) {
            Some(line) => line,
            None => {
                let needles: Vec<String> = needles.iter().map(|n| format!("`{n}`")).collect();
                self.fail(&format!(
                    "no {what} (a line containing {})",
                    needles.join(" and ")
                ))
            }
        }
    }

    /// Fails unless the guest exited with 0 and each of `names` reported `ok`, none failed.
    #[track_caller]
    pub fn expect_all_passed(&self, names: &[&str]) -> &Self {
        self.expect_all_passed_ending(names, Outcome::Guest(0))
    }

    /// [`GuestRun::expect_all_passed`] for a boot that ends with `outcome`.
    #[track_caller]
    pub fn expect_all_passed_ending(&self, names: &[&str], outcome: Outcome) -> &Self {
        if let Err(message) = image::report::check_all_passed_ending(&self.boot, names, outcome) {
            panic!(
                "{} ({}): {message}full serial log: {}",
                self.name,
                self.what,
                self.log.display()
            );
        }
        self
    }

    /// Fails unless the guest exited with 0 and the suite reported exactly `names`: each of
    /// them `ok`, and a summary of that many passed and none failed.
    #[track_caller]
    pub fn expect_exactly(&self, names: &[&str]) -> &Self {
        self.expect_exactly_ending(names, Outcome::Guest(0))
    }

    /// [`GuestRun::expect_exactly`] for a boot that ends with `outcome`.
    #[track_caller]
    pub fn expect_exactly_ending(&self, names: &[&str], outcome: Outcome) -> &Self {
        self.expect_all_passed_ending(names, outcome);
        let expected = Summary {
            passed: names.len() as u32,
            failed: 0,
        };
        if self.report.summary != Some(expected) {
            self.fail(&format!(
                "expected {expected:?}, got {:?}",
                self.report.summary
            ));
        }
        self
    }

    /// What a suite's `selftest: without messages:` line says (`libipc::rt::selftest`): calls
    /// to collocated servers short-circuited, memory-object calls made on collocated pagers,
    /// and device transfers collocated servers started, all without a message. Fails if
    /// the line is missing or unreadable.
    #[track_caller]
    pub fn calls_without_messages(&self) -> (u64, u64, u64) {
        let line = self.expect_line_containing(
            &["selftest: without messages:"],
            "the suite's count of calls without messages",
        );
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|word| word.parse().ok())
            .collect();
        match numbers[..] {
            [short, pager, device] => (short, pager, device),
            _ => self.fail(&format!("unreadable: {line:?}")),
        }
    }

    /// Fails unless the suite's memory-object calls went to a collocated pager without
    /// messages (`collocated`), or none did, and likewise its pager's device transfers
    /// (`device`: the pager is the disk pager).
    #[track_caller]
    pub fn expect_direct_pager_calls(&self, collocated: bool, device: bool) {
        let (_, pager_calls, transfers) = self.calls_without_messages();
        let expected = (collocated, collocated && device);
        if (pager_calls > 0, transfers > 0) != expected {
            self.fail(&format!(
                "{pager_calls} memory-object calls and {transfers} device transfers made \
                 without messages; expected some of each: {expected:?}"
            ));
        }
    }

    /// Panics with `message`, the end of the serial output and where the full log is.
    #[track_caller]
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{} ({}): {message}\nlast serial output:\n{}full serial log: {}",
            self.name,
            self.what,
            image::report::tail(&self.boot.serial, 30),
            self.log.display()
        );
    }
}

impl Drop for GuestRun {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("serial log kept at {}", self.log.display());
            if let Some(image) = &self.boot.disk_image {
                eprintln!("disk image kept at {}", image.display());
            }
        } else {
            let _ = std::fs::remove_file(&self.log);
            self.boot.remove_disk_image();
        }
    }
}

fn describe(outcome: Outcome) -> String {
    match outcome {
        Outcome::Guest(0) => "the guest to report code 0 (success)".to_string(),
        Outcome::Guest(1) => "the guest to report code 1 (a self-test failed)".to_string(),
        Outcome::Guest(2) => {
            "the guest to report code 2 (kernel panic or fatal exception)".to_string()
        }
        Outcome::Guest(code) => format!("the guest to report code {code}"),
        Outcome::NoStatus(status) => format!("QEMU to exit with status {status}"),
        Outcome::TimedOut => "a timeout".to_string(),
    }
}

/// A permit to run one guest; at most [`MAX_CONCURRENT_GUESTS`] exist at once.
struct GuestSlot;

static BUSY_SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

impl GuestSlot {
    fn take() -> GuestSlot {
        let mut busy = BUSY_SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy >= MAX_CONCURRENT_GUESTS {
            busy = SLOT_FREED
                .wait(busy)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *busy += 1;
        GuestSlot
    }
}

impl Drop for GuestSlot {
    fn drop(&mut self) {
        *BUSY_SLOTS.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        SLOT_FREED.notify_one();
    }
}

//! Boots the kernel (directly through PVH, or a Limine ISO) in QEMU and collects what it reports.
//!
//! The guest reports its exit code through the `isa-debug-exit` device: writing `c` to port
//! 0xf4 makes QEMU exit with status `(c << 1) | 1`. An even status means QEMU ended some other
//! way (a triple fault under `-no-reboot`, a shutdown) without the guest saying how it went.
//!
//! A boot may attach a virtio-blk disk ([`crate::disk`]) for the default pager to page to.

use libipc::abi::report::ExitCode;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::disk::Disk;
use crate::disk_image::AttachedImage;
use crate::tools::{self, Ovmf};

/// What to boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Media {
    /// The kernel ELF, loaded by QEMU itself through the PVH entry point (`-kernel`).
    Direct(PathBuf),
    /// A Limine ISO (`-cdrom`), under SeaBIOS or, with `uefi`, under OVMF. The kernel command
    /// line then comes from the ISO's `limine.conf`, not from [`BootOptions::cmdline`].
    Iso { path: PathBuf, uefi: bool },
}

/// How to run QEMU.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Kernel command line (`-append`); ignored for [`Media::Iso`].
    pub cmdline: String,
    pub mem_mib: u32,
    pub smp: u32,
    /// Kill QEMU after this long; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Deterministic instruction counting (`-icount`), for reproducible timing.
    pub icount: bool,
    /// Wait for a debugger on TCP port 1234 before running (`-s -S`); disables the timeout.
    pub gdb: bool,
    pub media: Media,
    /// The boot archive, handed to the kernel as its first boot module (`-initrd`: QEMU's PVH
    /// loader lists it as module 0 in `hvm_start_info`). Ignored for [`Media::Iso`], whose
    /// `limine.conf` names the archive on the ISO.
    pub archive: Option<PathBuf>,
    /// Copy the serial output to our stdout as it arrives (and QEMU's stderr to ours).
    pub echo: bool,
    /// Our stdin goes to the serial console: from a terminal as typed (Ctrl-C goes to the
    /// guest; Ctrl-A x ends QEMU), from a pipe or file as it comes, followed by an end of
    /// input (Ctrl-D, which the shell takes as one). Off (tests, benchmarks), the console
    /// gets just the end of input.
    pub interactive: bool,
    /// Without `interactive`: bytes typed into the console before the end of input (a
    /// test's keystrokes for the shell).
    pub console_input: Vec<u8>,
    /// Also write the serial output to this file as it arrives.
    pub log_file: Option<PathBuf>,
    /// A virtio-blk disk for the default pager; `None` boots without one (the kernel then
    /// pages to memory only).
    pub disk: Option<Disk>,
}

impl BootOptions {
    /// Direct (PVH) boot of `kernel` with `cmdline` and the defaults of `cargo image run`.
    pub fn direct(kernel: impl Into<PathBuf>, cmdline: impl Into<String>) -> Self {
        BootOptions {
            cmdline: cmdline.into(),
            mem_mib: 256,
            smp: 1,
            timeout: Some(Duration::from_secs(300)),
            icount: false,
            gdb: false,
            media: Media::Direct(kernel.into()),
            archive: None,
            echo: false,
            interactive: false,
            console_input: Vec::new(),
            log_file: None,
            disk: None,
        }
    }

    /// The same options with `disk` attached.
    pub fn with_disk(self, disk: Disk) -> Self {
        BootOptions {
            disk: Some(disk),
            ..self
        }
    }
}

/// How a boot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The guest reported this code through `isa-debug-exit` (0 success, 1 a self-test failed,
    /// 2 kernel panic or fatal exception).
    Guest(u32),
    /// QEMU exited with this status without the guest reporting one (128 + signal number if
    /// QEMU was killed by a signal).
    NoStatus(i32),
    /// The timeout ran out and QEMU was killed.
    TimedOut,
}

impl Outcome {
    /// Maps QEMU's exit status: an odd status `s` carries guest code `(s - 1) / 2`.
    pub fn from_qemu_status(code: Option<i32>, signal: Option<i32>) -> Outcome {
        match code {
            Some(status) => match ExitCode::from_qemu_status(status) {
                Some(guest) => Outcome::Guest(guest),
                None => Outcome::NoStatus(status),
            },
            None => Outcome::NoStatus(128 + signal.unwrap_or(0)),
        }
    }

    fn from_exit_status(status: ExitStatus) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        Outcome::from_qemu_status(status.code(), status.signal())
    }

    /// Exit code of `cargo image run` for this outcome: the guest's code, 3 if QEMU ended
    /// without one, 124 (like `timeout(1)`) on timeout.
    pub fn process_exit_code(self) -> u8 {
        match self {
            Outcome::Guest(code) => u8::try_from(code).unwrap_or(u8::MAX),
            Outcome::NoStatus(_) => 3,
            Outcome::TimedOut => 124,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Outcome::Guest(0) => write!(f, "the guest reported success (code 0)"),
            Outcome::Guest(1) => write!(f, "the guest reported code 1 (a self-test failed)"),
            Outcome::Guest(2) => {
                write!(
                    f,
                    "the guest reported code 2 (kernel panic or fatal exception)"
                )
            }
            Outcome::Guest(code) => write!(f, "the guest reported code {code}"),
            Outcome::NoStatus(status) => write!(
                f,
                "QEMU exited with status {status} without the guest reporting a status \
                 (a triple fault, a reset or a shutdown?)"
            ),
            Outcome::TimedOut => write!(f, "the guest timed out (QEMU was killed)"),
        }
    }
}

/// The result of one boot.
#[derive(Clone, Debug)]
pub struct Boot {
    pub outcome: Outcome,
    /// Everything the guest wrote to its serial port (invalid UTF-8 replaced).
    pub serial: String,
    /// What QEMU itself wrote to stderr (warnings, mostly).
    pub qemu_stderr: String,
    pub wall: Duration,
    /// The per-run disk image this boot used (for [`crate::disk::DiskImage::PerRun`], or
    /// because the shared image was in use), left in place: remove it with
    /// [`Boot::remove_disk_image`] once the run has passed, keep it to look at after a failure.
    /// `None` for the shared image or no disk.
    pub disk_image: Option<PathBuf>,
}

impl Boot {
    /// Removes the per-run disk image, if there is one.
    pub fn remove_disk_image(&self) {
        if let Some(path) = &self.disk_image {
            crate::disk_image::remove_run_image(path);
        }
    }
}

/// Boots under QEMU and waits for the guest to finish (or the timeout).
pub fn boot(opts: &BootOptions) -> Result<Boot> {
    let qemu = tools::qemu()?;
    let vars = match &opts.media {
        Media::Iso { uefi: true, .. } => Some(VarsCopy::new(&tools::ovmf()?)?),
        _ => None,
    };
    let (Media::Direct(file) | Media::Iso { path: file, .. }) = &opts.media;
    if !file.is_file() {
        bail!("{} does not exist", file.display());
    }
    if let (Media::Direct(_), Some(archive)) = (&opts.media, &opts.archive) {
        if !archive.is_file() {
            bail!("boot archive {} does not exist", archive.display());
        }
    }
    crate::cmdline::check_line(&opts.cmdline)?;
    // If the boot fails from here on, dropping a per-run image removes it.
    let disk = match &opts.disk {
        Some(disk) => {
            disk.check()?;
            Some((disk, AttachedImage::attach(disk.image)?))
        }
        None => None,
    };
    let log = match &opts.log_file {
        Some(path) => Some(open_log(path)?),
        None => None,
    };
    let firmware = vars
        .as_ref()
        .map(|vars| (vars.code.as_path(), vars.path.as_path()));
    let mut command = Command::new(&qemu);
    command
        .args(qemu_args(
            opts,
            firmware,
            disk.as_ref().map(|(disk, image)| (*disk, image.path())),
        ))
        .stdin(if console_is_terminal(opts) {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start {}", qemu.display()))?;
    let spoke = Arc::new(AtomicBool::new(false));
    let serial_reader = spawn_serial_reader(
        child.stdout.take().expect("piped"),
        opts.echo,
        log,
        Arc::clone(&spoke),
    );
    // The console's input (ours, or the test's keys), then the end of input; the pipe stays
    // open until QEMU has ended (`qemu_done` dropped).
    let (qemu_done, done) = std::sync::mpsc::channel::<()>();
    let feeder = child.stdin.take().map(|stdin| {
        let input = if opts.interactive {
            ConsoleInput::Ours
        } else {
            ConsoleInput::Bytes(opts.console_input.clone())
        };
        spawn_console_feeder(stdin, input, spoke, done)
    });
    let stderr_reader = spawn_stderr_reader(child.stderr.take().expect("piped"), opts.echo);
    let timeout = if opts.gdb { None } else { opts.timeout };
    let status = wait_with_timeout(&mut child, timeout)?;
    let wall = start.elapsed();
    drop(qemu_done);
    if !opts.interactive {
        // (Ours may never end: that thread is left to the process's end.)
        if let Some(feeder) = feeder {
            let _ = feeder.join();
        }
    }
    let serial = serial_reader.join().expect("serial reader panicked");
    let qemu_stderr = stderr_reader.join().expect("stderr reader panicked");
    drop(vars);
    let outcome = match status {
        Some(status) => {
            let outcome = Outcome::from_exit_status(status);
            if is_start_failure(outcome, &serial, &qemu_stderr) {
                bail!(
                    "QEMU failed to start ({status}):\n{}",
                    qemu_stderr.trim_end()
                );
            }
            outcome
        }
        None => Outcome::TimedOut,
    };
    Ok(Boot {
        outcome,
        serial,
        qemu_stderr,
        wall,
        disk_image: disk.and_then(|(_, image)| image.keep()),
    })
}

/// QEMU's arguments for `opts`; `firmware` is (OVMF code, private copy of the variable store),
/// `disk` the disk to attach and its image file (`opts.disk` itself is not read here).
pub fn qemu_args(
    opts: &BootOptions,
    firmware: Option<(&Path, &Path)>,
    disk: Option<(&Disk, &Path)>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    push(&["-machine", "q35", "-cpu", "max"]);
    push(&[
        "-m",
        &opts.mem_mib.to_string(),
        "-smp",
        &opts.smp.to_string(),
    ]);
    if console_is_terminal(opts) {
        // Raw keys to the guest, Ctrl-C included; Ctrl-A x still ends QEMU.
        push(&["-chardev", "stdio,id=console,mux=on,signal=off"]);
        push(&["-serial", "chardev:console", "-mon", "chardev=console"]);
    } else {
        push(&["-serial", "stdio"]);
    }
    push(&["-display", "none", "-no-reboot"]);
    push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    // No network card: the guest has no driver, and firmware would try to network-boot.
    push(&["-nic", "none"]);
    if opts.icount {
        push(&["-icount", "shift=0,align=off,sleep=off"]);
    }
    if opts.gdb {
        push(&["-s", "-S"]);
    }
    match &opts.media {
        Media::Direct(kernel) => {
            args.push("-kernel".into());
            args.push(kernel.into());
            if let Some(archive) = &opts.archive {
                args.push("-initrd".into());
                args.push(archive.into());
            }
            if !opts.cmdline.is_empty() {
                args.push("-append".into());
                args.push(opts.cmdline.clone().into());
            }
        }
        Media::Iso { path, uefi } => {
            if let (true, Some((code, vars))) = (*uefi, firmware) {
                args.push("-drive".into());
                args.push(pflash_drive(0, code, true));
                args.push("-drive".into());
                args.push(pflash_drive(1, vars, false));
            }
            args.push("-cdrom".into());
            args.push(path.into());
        }
    }
    if let Some((disk, image)) = disk {
        args.extend(disk.qemu_args(image));
    }
    args
}

fn pflash_drive(unit: u32, file: &Path, readonly: bool) -> OsString {
    // QEMU option values escape a comma by doubling it.
    let file = file.to_string_lossy().replace(',', ",,");
    let readonly = if readonly { ",readonly=on" } else { "" };
    format!("if=pflash,format=raw,unit={unit}{readonly},file={file}").into()
}

/// QEMU exits with 1 both for a bad option and when the guest reports code 0; tell them apart by
/// the guest having said nothing and QEMU having complained (warnings aside).
fn is_start_failure(outcome: Outcome, serial: &str, qemu_stderr: &str) -> bool {
    outcome == Outcome::Guest(0)
        && serial.trim().is_empty()
        && qemu_stderr
            .lines()
            .any(|line| !line.trim().is_empty() && !line.contains("warning:"))
}

/// A private copy of OVMF's variable store (QEMU locks it, and the firmware writes it), removed
/// when dropped.
struct VarsCopy {
    code: PathBuf,
    path: PathBuf,
}

impl VarsCopy {
    fn new(ovmf: &Ovmf) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = crate::target_dir().join("ovmf");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = format!(
            "vars-{}-{}.fd",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        std::fs::copy(&ovmf.vars, &path)
            .with_context(|| format!("copying {} to {}", ovmf.vars.display(), path.display()))?;
        Ok(VarsCopy {
            code: ovmf.code.clone(),
            path,
        })
    }
}

impl Drop for VarsCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn open_log(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    File::create(path).with_context(|| format!("creating serial log {}", path.display()))
}

/// The byte the shell takes as the end of input (Ctrl-D).
pub const END_OF_INPUT: u8 = 0x04;

/// Whether the guest's console is our terminal (`interactive` with stdin a terminal).
pub fn console_is_terminal(opts: &BootOptions) -> bool {
    use std::io::IsTerminal;
    opts.interactive && !opts.gdb && std::io::stdin().is_terminal()
}

/// What goes into the guest's console.
enum ConsoleInput {
    /// Our stdin (a pipe or a file), as it comes.
    Ours,
    /// These bytes.
    Bytes(Vec<u8>),
}

/// What the kernel prints first, once its UART is set up (firmware may print before).
const KERNEL_BANNER: &[u8] = b"microkernel v";

/// Feeds QEMU's console `input`, then [`END_OF_INPUT`], once the kernel has printed its
/// banner (`spoke`): its UART is set up then (setting it up empties its receive queue, so
/// earlier bytes would be lost). Then holds the pipe open until `done` says QEMU has ended.
fn spawn_console_feeder(
    mut qemu: std::process::ChildStdin,
    input: ConsoleInput,
    spoke: Arc<AtomicBool>,
    done: std::sync::mpsc::Receiver<()>,
) -> JoinHandle<()> {
    use std::io::Write;
    thread::spawn(move || {
        loop {
            if spoke.load(Ordering::Acquire) {
                break;
            }
            match done.recv_timeout(Duration::from_millis(10)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
        let fed = match input {
            ConsoleInput::Ours => std::io::copy(&mut std::io::stdin().lock(), &mut qemu).map(drop),
            ConsoleInput::Bytes(bytes) => qemu.write_all(&bytes),
        };
        let _ = fed
            .and_then(|()| qemu.write_all(&[END_OF_INPUT]))
            .and_then(|()| qemu.flush());
        let _ = done.recv();
    })
}

/// Reads the serial output until QEMU closes it, in a thread so the timeout works even when the
/// guest prints nothing.
fn spawn_serial_reader(
    mut stdout: ChildStdout,
    echo: bool,
    mut log: Option<File>,
    spoke: Arc<AtomicBool>,
) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut serial = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let count = match stdout.read(&mut chunk) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let bytes = &chunk[..count];
            serial.extend_from_slice(bytes);
            if !spoke.load(Ordering::Relaxed) {
                let from = serial.len().saturating_sub(count + KERNEL_BANNER.len());
                if serial[from..]
                    .windows(KERNEL_BANNER.len())
                    .any(|w| w == KERNEL_BANNER)
                {
                    spoke.store(true, Ordering::Release);
                }
            }
            if echo {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }
            if let Some(file) = log.as_mut() {
                // A full disk must not stop the boot; the output is still in `serial`.
                let _ = file.write_all(bytes);
            }
        }
        String::from_utf8_lossy(&serial).into_owned()
    })
}

fn spawn_stderr_reader(mut stderr: ChildStderr, echo: bool) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = Vec::new();
        let mut chunk = [0u8; 1024];
        while let Ok(count) = stderr.read(&mut chunk) {
            if count == 0 {
                break;
            }
            text.extend_from_slice(&chunk[..count]);
            if echo {
                let _ = std::io::stderr().write_all(&chunk[..count]);
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// Waits for QEMU; `None` if it was killed because `timeout` ran out.
fn wait_with_timeout(child: &mut Child, timeout: Option<Duration>) -> Result<Option<ExitStatus>> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            return Ok(Some(status));
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            stop(child)?;
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Ends QEMU: SIGTERM first, so that it restores a terminal it put into raw mode, then SIGKILL.
fn stop(child: &mut Child) -> Result<()> {
    // The child is not reaped yet, so its pid cannot have been reused.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if child.try_wait().context("waiting for QEMU")?.is_some() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().context("waiting for QEMU after killing it")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|arg| arg.to_str().unwrap()).collect()
    }

    #[test]
    fn odd_status_carries_the_guest_code() {
        assert_eq!(Outcome::from_qemu_status(Some(1), None), Outcome::Guest(0));
        assert_eq!(Outcome::from_qemu_status(Some(3), None), Outcome::Guest(1));
        assert_eq!(Outcome::from_qemu_status(Some(5), None), Outcome::Guest(2));
        assert_eq!(
            Outcome::from_qemu_status(Some(255), None),
            Outcome::Guest(127)
        );
    }

    #[test]
    fn even_status_or_signal_means_no_guest_status() {
        assert_eq!(
            Outcome::from_qemu_status(Some(0), None),
            Outcome::NoStatus(0)
        );
        assert_eq!(
            Outcome::from_qemu_status(Some(2), None),
            Outcome::NoStatus(2)
        );
        assert_eq!(
            Outcome::from_qemu_status(None, Some(9)),
            Outcome::NoStatus(137)
        );
    }

    #[test]
    fn run_exit_codes() {
        assert_eq!(Outcome::Guest(0).process_exit_code(), 0);
        assert_eq!(Outcome::Guest(2).process_exit_code(), 2);
        assert_eq!(Outcome::NoStatus(0).process_exit_code(), 3);
        assert_eq!(Outcome::TimedOut.process_exit_code(), 124);
    }

    #[test]
    fn start_failure_is_told_from_guest_success() {
        let bad_option = "qemu-system-x86_64: -bogus: invalid option\n";
        assert!(is_start_failure(Outcome::Guest(0), "", bad_option));
        assert!(is_start_failure(
            Outcome::Guest(0),
            "",
            "qemu: could not open kernel file 'x'\n"
        ));
        assert!(!is_start_failure(
            Outcome::Guest(0),
            "microkernel v0.1.0\n",
            bad_option
        ));
        assert!(!is_start_failure(
            Outcome::Guest(0),
            "",
            "qemu-system-x86_64: warning: x\n"
        ));
        assert!(!is_start_failure(Outcome::Guest(1), "", bad_option));
    }

    #[test]
    fn direct_boot_arguments() {
        let mut opts = BootOptions::direct("/k/microkernel", "test=all log=debug");
        opts.icount = true;
        opts.smp = 2;
        let args = qemu_args(&opts, None, None);
        assert_eq!(
            strings(&args),
            [
                "-machine",
                "q35",
                "-cpu",
                "max",
                "-m",
                "256",
                "-smp",
                "2",
                "-serial",
                "stdio",
                "-display",
                "none",
                "-no-reboot",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-nic",
                "none",
                "-icount",
                "shift=0,align=off,sleep=off",
                "-kernel",
                "/k/microkernel",
                "-append",
                "test=all log=debug",
            ]
        );
        assert!(!strings(&args).contains(&"-enable-kvm"));
    }

    #[test]
    fn disk_goes_last_and_only_when_given() {
        let size = crate::DiskSize::from_mib(64).unwrap();
        let opts = BootOptions::direct("/k/microkernel", "log=debug")
            .with_disk(Disk::per_run(size).with_iops(100));
        assert_eq!(opts.disk, Some(Disk::per_run(size).with_iops(100)));
        // `qemu_args` attaches the disk it is handed, with its image file.
        assert!(!strings(&qemu_args(&opts, None, None)).contains(&"-drive"));
        let disk = opts.disk.as_ref().unwrap();
        let args = qemu_args(&opts, None, Some((disk, Path::new("/t/disk/run/r.img"))));
        let args = strings(&args);
        assert_eq!(&args[..2], ["-machine", "q35"]);
        assert!(args.ends_with(&[
            "-append",
            "log=debug",
            "-drive",
            "format=raw,if=none,id=disk0,cache=unsafe,werror=report,rerror=report,\
             throttling.iops-total=100,file=/t/disk/run/r.img",
            "-device",
            "virtio-blk-pci,drive=disk0",
        ]));
    }

    #[test]
    fn archive_goes_to_initrd_after_the_kernel() {
        let mut opts = BootOptions::direct("/k/microkernel", "log=debug");
        opts.archive = Some("/t/guest/archive-release.bin".into());
        let args = qemu_args(&opts, None, None);
        assert!(strings(&args).ends_with(&[
            "-kernel",
            "/k/microkernel",
            "-initrd",
            "/t/guest/archive-release.bin",
            "-append",
            "log=debug",
        ]));
        opts.archive = None;
        assert!(!strings(&qemu_args(&opts, None, None)).contains(&"-initrd"));
    }

    #[test]
    fn iso_boot_ignores_the_archive() {
        let mut opts = BootOptions::direct("/unused", "");
        opts.archive = Some("/t/archive.bin".into());
        opts.media = Media::Iso {
            path: "/t/microkernel.iso".into(),
            uefi: false,
        };
        assert!(!strings(&qemu_args(&opts, None, None)).contains(&"-initrd"));
    }

    #[test]
    fn empty_cmdline_passes_no_append_and_gdb_waits() {
        let mut opts = BootOptions::direct("/k", "");
        opts.gdb = true;
        let args = qemu_args(&opts, None, None);
        let args = strings(&args);
        assert!(!args.contains(&"-append"));
        assert!(args.windows(2).any(|pair| pair == ["-s", "-S"]));
    }

    #[test]
    fn iso_boot_arguments() {
        let mut opts = BootOptions::direct("/unused", "ignored");
        opts.media = Media::Iso {
            path: "/t/microkernel.iso".into(),
            uefi: false,
        };
        let bios = qemu_args(&opts, None, None);
        let bios = strings(&bios);
        assert!(bios.ends_with(&["-cdrom", "/t/microkernel.iso"]));
        assert!(!bios.contains(&"-kernel") && !bios.contains(&"-append"));

        opts.media = Media::Iso {
            path: "/t/microkernel.iso".into(),
            uefi: true,
        };
        let code = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
        let vars = Path::new("/t/ovmf/a,b.fd");
        let uefi = qemu_args(&opts, Some((code, vars)), None);
        let uefi = strings(&uefi);
        assert!(uefi.ends_with(&[
            "-drive",
            "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            "-drive",
            "if=pflash,format=raw,unit=1,file=/t/ovmf/a,,b.fd",
            "-cdrom",
            "/t/microkernel.iso",
        ]));
    }
}

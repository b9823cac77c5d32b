//! The guest's virtio-blk disk, where the default pager pages to: its size, which image file
//! backs it, throttling, injected I/O errors, and the QEMU arguments that attach it.
//!
//! Fault SPEC syntax (`--disk-fault`): comma-separated rules `OP[@SECTOR[+COUNT]][:once]`.
//! `OP` is `read` or `write`; without `@SECTOR` every such request fails, with it the requests
//! that touch sector `SECTOR` (512 bytes) or, with `+COUNT`, any of the `COUNT` sectors from it;
//! `:once` makes each sector's rule fire once, then the sector works again. A failing request
//! completes with EIO (the guest sees `VIRTIO_BLK_S_IOERR`). Each rule becomes one QEMU blkdebug
//! `inject-error` rule per sector (event `read_aio`/`write_aio`, errno 5).

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Result};

/// Bytes per disk sector, the unit of fault rules (virtio-blk's sector size).
pub const SECTOR_SIZE: u64 = 512;

/// The largest image the tool makes: the shared image is written in full, so a typo such as
/// `1000G` must not fill the host's disk.
pub const MAX_SIZE_MIB: u32 = 64 * 1024;

/// At most this many sector rules in all: they travel in one QEMU argument, which Linux limits
/// to 128 KiB (a rule takes about 150 bytes).
pub const MAX_FAULT_SECTORS: u64 = 256;

/// QEMU's id of the drive, which the virtio-blk device names.
pub const DRIVE_ID: &str = "disk0";

/// The size of a disk image: a whole number of MiB, from 1 MiB to [`MAX_SIZE_MIB`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiskSize {
    mib: u32,
}

impl DiskSize {
    /// The default, 256 MiB: as much as the default guest memory (`--mem 256`), so the default
    /// pager can page out all of it, as with swap the size of RAM; and small enough to write in
    /// a second or two the first time.
    pub const DEFAULT: DiskSize = DiskSize { mib: 256 };

    pub fn from_mib(mib: u32) -> Result<DiskSize, String> {
        if mib == 0 {
            return Err("a disk must be at least 1M".to_string());
        }
        if mib > MAX_SIZE_MIB {
            return Err(format!(
                "{mib}M is more than the largest disk the tool makes ({}G)",
                MAX_SIZE_MIB / 1024
            ));
        }
        Ok(DiskSize { mib })
    }

    pub fn mib(self) -> u32 {
        self.mib
    }

    pub fn bytes(self) -> u64 {
        u64::from(self.mib) << 20
    }

    pub fn sectors(self) -> u64 {
        self.bytes() / SECTOR_SIZE
    }
}

/// `64M`, `1G`, `256MiB`, `2GiB` (units in either case); nothing else.
impl FromStr for DiskSize {
    type Err = String;

    fn from_str(text: &str) -> Result<DiskSize, String> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let hint = "write it as MiB or GiB, e.g. 64M, 256M or 1G";
        if number.is_empty() {
            return Err(format!(
                "disk size `{text}` does not start with a number: {hint}"
            ));
        }
        if unit.starts_with(['.', ',']) {
            return Err(format!(
                "disk size `{text}`: use a whole number of MiB or GiB (e.g. 1536M for 1.5G)"
            ));
        }
        let shift = match unit.to_ascii_lowercase().as_str() {
            "m" | "mib" => 0,
            "g" | "gib" => 10,
            "" => return Err(format!("disk size `{text}` has no unit: {hint}")),
            _ => return Err(format!("disk size `{text}`: unknown unit `{unit}`: {hint}")),
        };
        let too_big = || {
            format!(
                "disk size `{text}` is more than the largest disk the tool makes ({}G)",
                MAX_SIZE_MIB / 1024
            )
        };
        let count: u32 = number.parse().map_err(|_| too_big())?;
        let mib = count.checked_mul(1 << shift).ok_or_else(too_big)?;
        DiskSize::from_mib(mib).map_err(|why| format!("disk size `{text}`: {why}"))
    }
}

/// `256M`, or `1G` when a whole number of GiB; [`FromStr`] reads it back.
impl fmt::Display for DiskSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mib.is_multiple_of(1024) {
            write!(f, "{}G", self.mib / 1024)
        } else {
            write!(f, "{}M", self.mib)
        }
    }
}

/// Which requests a [`Fault`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    Read,
    Write,
}

impl FaultOp {
    fn name(self) -> &'static str {
        match self {
            FaultOp::Read => "read",
            FaultOp::Write => "write",
        }
    }

    /// The blkdebug event raised before each such request (by QEMU's raw format driver).
    fn event(self) -> &'static str {
        match self {
            FaultOp::Read => "read_aio",
            FaultOp::Write => "write_aio",
        }
    }
}

/// One rule of a fault SPEC (see the module documentation): `OP[@SECTOR[+COUNT]][:once]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub op: FaultOp,
    /// `(first sector, count)`, count at least 1; `None` fails every `op` request.
    pub sectors: Option<(u64, u64)>,
    /// Each sector's rule fires once, then the sector works again.
    pub once: bool,
}

impl Fault {
    /// How many blkdebug rules this one becomes.
    fn rule_count(&self) -> u64 {
        self.sectors.map_or(1, |(_, count)| count)
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(rule: &str) -> Result<Fault, String> {
        let rule = rule.trim();
        let syntax = "a fault rule is OP[@SECTOR[+COUNT]][:once], OP `read` or `write`";
        if rule.is_empty() {
            return Err(format!("empty fault rule: {syntax}"));
        }
        let (rest, once) = match rule.split_once(':') {
            Some((rest, "once")) => (rest, true),
            Some((_, flag)) => {
                return Err(format!(
                    "fault rule `{rule}`: unknown flag `{flag}` (the only one is `once`)"
                ))
            }
            None => (rule, false),
        };
        let (op, place) = match rest.split_once('@') {
            Some((op, place)) => (op, Some(place)),
            None => (rest, None),
        };
        let op = match op {
            "read" => FaultOp::Read,
            "write" => FaultOp::Write,
            _ => {
                return Err(format!(
                    "fault rule `{rule}`: unknown operation `{op}`: {syntax}"
                ))
            }
        };
        let number = |text: &str, what: &str| -> Result<u64, String> {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "fault rule `{rule}`: {what} `{text}` is not a number: {syntax}"
                ));
            }
            text.parse()
                .map_err(|_| format!("fault rule `{rule}`: {what} `{text}` is too large"))
        };
        let sectors = match place {
            None => None,
            Some(place) => {
                let (first, count) = match place.split_once('+') {
                    Some((first, count)) => (number(first, "sector")?, number(count, "count")?),
                    None => (number(place, "sector")?, 1),
                };
                if count == 0 {
                    return Err(format!("fault rule `{rule}`: a count of 0 sectors"));
                }
                if count > MAX_FAULT_SECTORS {
                    return Err(format!(
                        "fault rule `{rule}`: {count} sectors, at most {MAX_FAULT_SECTORS}"
                    ));
                }
                Some((first, count))
            }
        };
        Ok(Fault { op, sectors, once })
    }
}

/// The rule as written in a SPEC; [`FromStr`] reads it back.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.name())?;
        match self.sectors {
            Some((first, 1)) => write!(f, "@{first}")?,
            Some((first, count)) => write!(f, "@{first}+{count}")?,
            None => {}
        }
        if self.once {
            f.write_str(":once")?;
        }
        Ok(())
    }
}

/// Reads a fault SPEC: comma-separated rules (see the module documentation).
pub fn parse_faults(spec: &str) -> Result<Vec<Fault>, String> {
    spec.split(',').map(str::parse).collect()
}

/// A fault SPEC as written: `write@8+8:once,read`.
pub fn faults_spec(faults: &[Fault]) -> String {
    let rules: Vec<String> = faults.iter().map(Fault::to_string).collect();
    rules.join(",")
}

/// Which file backs the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskImage {
    /// `target/disk/disk-<MiB>M.img`: written in full the first time, then reused by every run
    /// with this size (`cargo image run` and `bench`). A run that finds it in use by another
    /// gets a per-run image instead.
    Shared(DiskSize),
    /// A fresh sparse file (all zeros) for this boot alone, under `target/disk/run/`; what tests
    /// use, since two guests run at once. [`crate::Boot::disk_image`] names it afterwards.
    PerRun(DiskSize),
}

impl DiskImage {
    pub fn size(self) -> DiskSize {
        match self {
            DiskImage::Shared(size) | DiskImage::PerRun(size) => size,
        }
    }
}

/// A virtio-blk disk (PCI, MSI-X) for the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    pub image: DiskImage,
    /// Throttle the disk to this many requests per second (QEMU `throttling.iops-total`), so
    /// that clustering pays as on a real disk; `None` runs at host speed.
    pub iops: Option<u32>,
    /// I/O errors to inject (QEMU's blkdebug driver); empty for a healthy disk.
    pub faults: Vec<Fault>,
}

impl Disk {
    /// The shared image of `size`, healthy and unthrottled.
    pub fn shared(size: DiskSize) -> Disk {
        Disk {
            image: DiskImage::Shared(size),
            iops: None,
            faults: Vec::new(),
        }
    }

    /// A per-run image of `size`, healthy and unthrottled.
    pub fn per_run(size: DiskSize) -> Disk {
        Disk {
            image: DiskImage::PerRun(size),
            ..Disk::shared(size)
        }
    }

    /// The same disk throttled to `iops` requests per second.
    pub fn with_iops(self, iops: u32) -> Disk {
        Disk {
            iops: Some(iops),
            ..self
        }
    }

    /// The same disk with the faults of `spec` added; fails if `spec` is malformed or names a
    /// sector past the end.
    pub fn with_faults(mut self, spec: &str) -> Result<Disk> {
        let faults = parse_faults(spec).map_err(anyhow::Error::msg)?;
        self.faults.extend(faults);
        self.check()?;
        Ok(self)
    }

    pub fn size(&self) -> DiskSize {
        self.image.size()
    }

    /// Checks what the parsers cannot: faults inside the disk, not too many, a throttle of at
    /// least one request per second.
    pub fn check(&self) -> Result<()> {
        let size = self.size();
        if self.iops == Some(0) {
            bail!("a disk throttled to 0 requests per second would never answer (--disk-iops)");
        }
        for fault in &self.faults {
            if let Some((first, count)) = fault.sectors {
                if first.saturating_add(count) > size.sectors() {
                    bail!(
                        "fault rule `{fault}` goes past the end of the {size} disk \
                         (sectors 0 to {})",
                        size.sectors() - 1
                    );
                }
            }
        }
        let rules: u64 = self.faults.iter().map(Fault::rule_count).sum();
        if rules > MAX_FAULT_SECTORS {
            bail!(
                "fault SPEC `{}` makes {rules} sector rules, at most {MAX_FAULT_SECTORS}",
                faults_spec(&self.faults)
            );
        }
        Ok(())
    }

    /// QEMU's arguments that attach `image` as this disk: a raw `-drive` (through blkdebug if
    /// there are faults) and a `virtio-blk-pci` device with its default MSI-X vectors.
    pub fn qemu_args(&self, image: &Path) -> Vec<OsString> {
        // QEMU option values escape a comma by doubling it.
        let file = image.to_string_lossy().replace(',', ",,");
        // Errors go to the guest: with QEMU's default `werror=enospc`, a full host disk would
        // pause the machine until the timeout.
        let mut drive =
            format!("format=raw,if=none,id={DRIVE_ID},cache=unsafe,werror=report,rerror=report");
        if let Some(iops) = self.iops {
            drive.push_str(&format!(",throttling.iops-total={iops}"));
        }
        if self.faults.is_empty() {
            drive.push_str(&format!(",file={file}"));
        } else {
            // raw -> blkdebug -> file: the raw driver raises `read_aio`/`write_aio` on its child.
            drive.push_str(&format!(
                ",file.driver=blkdebug,file.image.driver=file,file.image.filename={file}"
            ));
            let mut index = 0;
            for fault in &self.faults {
                let sectors = match fault.sectors {
                    Some((first, count)) => (first..first + count).map(Some).collect(),
                    None => vec![None],
                };
                for sector in sectors {
                    let rule = format!(",file.inject-error.{index}.");
                    drive.push_str(&format!(
                        "{rule}event={}{rule}iotype={}{rule}errno=5",
                        fault.op.event(),
                        fault.op.name()
                    ));
                    if let Some(sector) = sector {
                        drive.push_str(&format!("{rule}sector={sector}"));
                    }
                    if fault.once {
                        drive.push_str(&format!("{rule}once=on"));
                    }
                    index += 1;
                }
            }
        }
        vec![
            "-drive".into(),
            drive.into(),
            "-device".into(),
            format!("virtio-blk-pci,drive={DRIVE_ID}").into(),
        ]
    }
}

/// `a 64M disk`, `a 1G disk at 500 requests/s failing `write@8+8``: for messages.
impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} disk", self.size())?;
        if let Some(iops) = self.iops {
            write!(f, " at {iops} requests/s")?;
        }
        if !self.faults.is_empty() {
            write!(f, " failing `{}`", faults_spec(&self.faults))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(text: &str) -> Result<DiskSize, String> {
        text.parse()
    }

    fn mib(mib: u32) -> DiskSize {
        DiskSize::from_mib(mib).unwrap()
    }

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|arg| arg.to_str().unwrap()).collect()
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(size("64M"), Ok(mib(64)));
        assert_eq!(size("64m"), Ok(mib(64)));
        assert_eq!(size("256MiB"), Ok(mib(256)));
        assert_eq!(size("1G"), Ok(mib(1024)));
        assert_eq!(size("2gib"), Ok(mib(2048)));
        assert_eq!(size(" 1M "), Ok(mib(1)));
        assert_eq!(size("64G"), Ok(mib(MAX_SIZE_MIB)));
        assert_eq!(mib(256).bytes(), 256 << 20);
        assert_eq!(mib(1).sectors(), 2048);
        assert_eq!(DiskSize::DEFAULT, mib(256));
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        for (text, complaint) in [
            ("", "does not start with a number"),
            ("M", "does not start with a number"),
            ("256", "has no unit"),
            ("1.5G", "whole number"),
            ("12T", "unknown unit `T`"),
            ("64MB", "unknown unit `MB`"),
            ("-1M", "does not start with a number"),
            ("0M", "at least 1M"),
            ("65G", "largest disk"),
            ("65537M", "largest disk"),
            ("4194304G", "largest disk"),
            ("99999999999999999999M", "largest disk"),
        ] {
            let error = size(text).unwrap_err();
            assert!(error.contains(complaint), "{text:?}: {error}");
        }
    }

    #[test]
    fn sizes_print_as_they_parse() {
        for (mib_count, text) in [(64, "64M"), (1024, "1G"), (1536, "1536M"), (3072, "3G")] {
            assert_eq!(mib(mib_count).to_string(), text);
            assert_eq!(size(text), Ok(mib(mib_count)));
        }
    }

    #[test]
    fn fault_rules_parse() {
        let fault = |text: &str| text.parse::<Fault>().unwrap();
        assert_eq!(
            fault("write"),
            Fault {
                op: FaultOp::Write,
                sectors: None,
                once: false
            }
        );
        assert_eq!(
            fault("read@100"),
            Fault {
                op: FaultOp::Read,
                sectors: Some((100, 1)),
                once: false
            }
        );
        assert_eq!(
            fault("write@8+8:once"),
            Fault {
                op: FaultOp::Write,
                sectors: Some((8, 8)),
                once: true
            }
        );
        assert_eq!(
            fault("write:once"),
            Fault {
                op: FaultOp::Write,
                sectors: None,
                once: true
            }
        );
        let spec = parse_faults("write@8+8:once,read@0, write").unwrap();
        assert_eq!(spec.len(), 3);
        assert_eq!(faults_spec(&spec), "write@8+8:once,read@0,write");
    }

    #[test]
    fn bad_fault_rules_say_what_is_wrong() {
        for (spec, complaint) in [
            ("", "empty fault rule"),
            ("write,", "empty fault rule"),
            ("erase@1", "unknown operation `erase`"),
            ("Write", "unknown operation `Write`"),
            ("write@", "sector `` is not a number"),
            ("write@x", "sector `x` is not a number"),
            ("write@-1", "sector `-1` is not a number"),
            ("write@1+", "count `` is not a number"),
            ("write@1+0", "a count of 0"),
            ("write@1+257", "at most 256"),
            ("write:twice", "unknown flag `twice`"),
            ("write@99999999999999999999", "too large"),
        ] {
            let error = parse_faults(spec).unwrap_err();
            assert!(error.contains(complaint), "{spec:?}: {error}");
        }
    }

    #[test]
    fn faults_must_fit_the_disk() {
        let disk = Disk::per_run(mib(1)); // sectors 0..2048
        assert!(disk.clone().with_faults("write@2047").is_ok());
        assert!(disk.clone().with_faults("read@2040+8").is_ok());
        let past = disk.clone().with_faults("read@2041+8").unwrap_err();
        assert!(
            past.to_string().contains("past the end of the 1M disk"),
            "{past}"
        );
        assert!(disk.clone().with_faults("write@2048").is_err());
        let many = disk
            .clone()
            .with_faults("write@0+200,read@0+57")
            .unwrap_err();
        assert!(many.to_string().contains("257 sector rules"), "{many}");
        assert!(disk.clone().with_faults("write@0+200,read@0+56").is_ok());
        assert!(disk.clone().with_faults("bogus").is_err());
        assert!(disk.with_iops(0).check().is_err());
    }

    #[test]
    fn disks_describe_themselves() {
        assert_eq!(Disk::shared(mib(1024)).to_string(), "a 1G disk");
        let disk = Disk::per_run(mib(64))
            .with_iops(500)
            .with_faults("write@8+8")
            .unwrap();
        assert_eq!(
            disk.to_string(),
            "a 64M disk at 500 requests/s failing `write@8+8`"
        );
    }

    #[test]
    fn plain_disk_arguments() {
        let disk = Disk::shared(mib(256));
        let args = disk.qemu_args(Path::new("/t/disk/disk-256M.img"));
        assert_eq!(
            strings(&args),
            [
                "-drive",
                "format=raw,if=none,id=disk0,cache=unsafe,werror=report,rerror=report,\
                 file=/t/disk/disk-256M.img",
                "-device",
                "virtio-blk-pci,drive=disk0",
            ]
        );
        // MSI-X stays on: nothing sets `vectors`.
        assert!(!strings(&args).iter().any(|arg| arg.contains("vectors")));
    }

    #[test]
    fn throttled_disk_arguments() {
        let disk = Disk::per_run(mib(64)).with_iops(200);
        let args = disk.qemu_args(Path::new("/t/a,b.img"));
        assert_eq!(
            strings(&args)[1],
            "format=raw,if=none,id=disk0,cache=unsafe,werror=report,rerror=report,\
             throttling.iops-total=200,file=/t/a,,b.img"
        );
    }

    #[test]
    fn faulty_disk_arguments() {
        let disk = Disk::per_run(mib(64))
            .with_iops(50)
            .with_faults("write@100+2:once,read")
            .unwrap();
        let args = disk.qemu_args(Path::new("/t/run.img"));
        let rule = |index: u32, tail: &str| {
            tail.split(',')
                .map(|option| format!(",file.inject-error.{index}.{option}"))
                .collect::<String>()
        };
        let expected = format!(
            "format=raw,if=none,id=disk0,cache=unsafe,werror=report,rerror=report,\
             throttling.iops-total=50,\
             file.driver=blkdebug,file.image.driver=file,file.image.filename=/t/run.img{}{}{}",
            rule(0, "event=write_aio,iotype=write,errno=5,sector=100,once=on"),
            rule(1, "event=write_aio,iotype=write,errno=5,sector=101,once=on"),
            rule(2, "event=read_aio,iotype=read,errno=5"),
        );
        assert_eq!(
            strings(&args),
            ["-drive", &expected, "-device", "virtio-blk-pci,drive=disk0"]
        );
    }

    /// Runs QEMU (stopped before the guest starts) with the arguments of `disk` and monitor
    /// `commands`; returns the monitor's output.
    fn qemu_monitor(disk: &Disk, image: &Path, commands: &[&str]) -> Option<String> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Ok(qemu) = crate::tools::qemu() else {
            eprintln!("qemu-system-x86_64 not found: QEMU's view of the disk not checked");
            return None;
        };
        let mut child = Command::new(qemu)
            .args(["-machine", "q35", "-S", "-display", "none", "-nic", "none"])
            .args(["-serial", "none", "-monitor", "stdio"])
            .args(disk.qemu_args(image))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("QEMU starts");
        let mut input = child.stdin.take().unwrap();
        for command in commands.iter().chain(&["quit"]) {
            writeln!(input, "{command}").unwrap();
        }
        drop(input);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "QEMU refused the disk: {stderr}");
        Some(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    #[test]
    fn qemu_accepts_the_disk_and_injects_the_faults() {
        let dir = std::env::temp_dir().join(format!("image-disk-qemu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("a,b.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let disk = Disk::per_run(mib(1))
            .with_iops(1000)
            .with_faults("write@100:once,read@8+8")
            .unwrap();
        // QEMU's `qemu-io` monitor command sends requests through the drive's whole stack.
        let requests = [
            ("write 51200 512", "write failed"), // sector 100, once
            ("write 51200 512", "wrote"),        // the rule is spent
            ("write 0 4096", "wrote"),           // sectors 0-7
            ("read 0 4096", "read 4096"),        // sectors 0-7
            ("read 4096 512", "read failed"),    // sector 8
            ("read 7680 4096", "read failed"),   // sectors 15-22 touch 15
            ("read 8192 512", "read 512"),       // sector 16
            ("write 4096 4096", "wrote"),        // read faults leave writes alone
        ];
        let mut commands = vec!["info block -v".to_string()];
        commands.extend(
            requests
                .iter()
                .map(|(request, _)| format!("qemu-io {DRIVE_ID} \"{request}\"")),
        );
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let output = qemu_monitor(&disk, &image, &commands);
        let _ = std::fs::remove_dir_all(&dir);
        let Some(output) = output else { return };
        assert!(output.contains("iops=1000 "), "{output}");
        assert!(output.contains("ignore flushes"), "{output}");
        assert!(output.contains("virtual size: 1 MiB"), "{output}");
        let results: Vec<&str> = output
            .lines()
            .filter(|line| {
                ["wrote ", "write failed", "read failed"]
                    .iter()
                    .any(|start| line.starts_with(start))
                    || (line.starts_with("read ") && line.contains(" bytes at offset"))
            })
            .collect();
        assert_eq!(results.len(), requests.len(), "{output}");
        for ((request, expected), result) in requests.iter().zip(&results) {
            assert!(
                result.starts_with(expected),
                "`{request}`: expected `{expected}`, got `{result}`"
            );
        }
    }
}

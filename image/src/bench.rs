//! `cargo image bench <suite>`: boots the kernel with `init=bench_<suite>`, collects the
//! program's `bench <metric> <value> <unit>` lines and writes them to `target/bench/<suite>.json`.
//!
//! The guest's side of the contract: a figure is one line `bench <group>.<name> <value> <unit>`
//! (value an integer or a decimal, e.g. `bench ipc.null_rpc_round_trip 1234 instructions`);
//! remarks and warnings are lines starting `bench_<suite>:`; the program exits with 0 when every
//! measurement worked. Timed figures count `rdtsc` ticks, which are guest instructions only
//! under QEMU's `-icount`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libipc::abi::syscall::PROGRAM_NAME_MAX;
use serde::Serialize;
use serde_json::Number;

use crate::disk::{self, Disk};
use crate::manifest::{self, Manifest};
use crate::qemu::{BootOptions, Media, Outcome};
use crate::report::{clean_line, tail};
use crate::Profile;

/// What a figure's value means when QEMU ran without `-icount`.
pub const NO_ICOUNT_NOTE: &str = "run without --icount: `instructions` figures are TSC cycles \
     of an emulated (TCG) CPU, not instruction counts, and not meaningful";

/// One figure the guest reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// `<group>.<name>`, e.g. `ipc.null_rpc_round_trip`.
    pub metric: String,
    /// As printed: an integer or a decimal.
    pub value: Number,
    pub unit: String,
}

/// Reads one (cleaned) serial line: `None` if it is no `bench ` line, else the figure or why
/// the line is malformed.
pub fn parse_line(line: &str) -> Option<Result<Measurement, String>> {
    let rest = line.trim_end().strip_prefix("bench ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let [metric, value, unit] = fields[..] else {
        return Some(Err(format!(
            "`{line}`: expected `bench <metric> <value> <unit>`"
        )));
    };
    if !is_metric(metric) {
        return Some(Err(format!(
            "`{line}`: metric {metric:?} is not `<group>.<name>` in lower case, digits and `_`"
        )));
    }
    if !is_number(value) {
        return Some(Err(format!(
            "`{line}`: value {value:?} is neither an integer nor a decimal"
        )));
    }
    let Ok(value) = Number::from_str(value) else {
        return Some(Err(format!("`{line}`: value {value:?} is out of range")));
    };
    Some(Ok(Measurement {
        metric: metric.to_string(),
        value,
        unit: unit.to_string(),
    }))
}

fn is_metric(metric: &str) -> bool {
    let word = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    metric.contains('.') && metric.split('.').all(word)
}

/// `-?digits(.digits)?`
fn is_number(text: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(unsigned),
    }
}

/// The figures in `serial`, in order, and the malformed `bench` lines' complaints.
pub fn collect(serial: &str) -> (Vec<Measurement>, Vec<String>) {
    let mut measurements = Vec::new();
    let mut malformed = Vec::new();
    for line in serial.lines().map(clean_line) {
        match parse_line(&line) {
            Some(Ok(measurement)) => measurements.push(measurement),
            Some(Err(why)) => malformed.push(why),
            None => {}
        }
    }
    (measurements, malformed)
}

/// What `target/bench/<suite>.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Results {
    pub suite: String,
    /// Whether QEMU counted instructions (`-icount`), which makes `instructions` figures real.
    pub icount: bool,
    /// The kernel command line of the run.
    pub cmdline: String,
    pub mem_mib: u32,
    /// The disk the default pager paged to; absent if the run had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskFigures>,
    /// [`NO_ICOUNT_NOTE`] when `icount` is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub measurements: Vec<Measurement>,
}

/// What `Results` records of the disk: what changes the figures of paging to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiskFigures {
    pub size_mib: u32,
    /// The throttle (`--disk-iops`), absent if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// The fault SPEC (`--disk-fault`), absent if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<String>,
}

impl DiskFigures {
    pub fn of(disk: &Disk) -> DiskFigures {
        DiskFigures {
            size_mib: disk.size().mib(),
            iops: disk.iops,
            faults: (!disk.faults.is_empty()).then(|| disk::faults_spec(&disk.faults)),
        }
    }
}

impl Results {
    pub fn new(suite: &str, icount: bool, cmdline: &str, mem_mib: u32) -> Results {
        Results {
            suite: suite.to_string(),
            icount,
            cmdline: cmdline.to_string(),
            mem_mib,
            disk: None,
            note: (!icount).then(|| NO_ICOUNT_NOTE.to_string()),
            measurements: Vec::new(),
        }
    }

    /// The JSON text (pretty, ending in a newline).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("plain data serialises");
        text.push('\n');
        text
    }

    /// Writes [`Results::to_json`] to `path`, creating its directory.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, self.to_json()).with_context(|| format!("writing {}", path.display()))
    }
}

/// The program that runs suite `suite`: `bench_<suite>`. Refuses names the archive could not
/// hold or that would not make one word on the kernel command line.
pub fn program_name(suite: &str) -> Result<String> {
    let valid = !suite.is_empty()
        && suite
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        bail!("suite name {suite:?}: use lower-case letters, digits and `_` (e.g. `ipc`)");
    }
    let program = format!("bench_{suite}");
    if program.len() > PROGRAM_NAME_MAX {
        bail!(
            "suite name {suite:?} is too long: program {program} exceeds {PROGRAM_NAME_MAX} bytes"
        );
    }
    Ok(program)
}

/// `<workspace>/target/bench/<suite>.json`.
pub fn json_path(suite: &str) -> PathBuf {
    crate::target_dir()
        .join("bench")
        .join(format!("{suite}.json"))
}

/// How to run a suite.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub suite: String,
    pub icount: bool,
    pub mem_mib: u32,
    pub timeout: Duration,
    /// Echo the whole serial output rather than only the figures and the program's remarks.
    pub verbose: bool,
    /// More kernel arguments, after `init=bench_<suite>`.
    pub kernel_args: Vec<String>,
    /// The disk for the default pager; `None` runs without one.
    pub disk: Option<Disk>,
}

/// Builds, boots, collects, writes the JSON; the process exit code (0 only if the guest
/// exited with 0 and printed at least one well-formed figure). Problems with the host side
/// (the build, QEMU) are errors.
pub fn run(options: &BenchOptions) -> Result<u8> {
    let program = program_name(&options.suite)?;
    let manifest = Manifest::load(&manifest::manifest_path())?;
    if !manifest.programs().iter().any(|p| p.name == program) {
        bail!(
            "suite {:?} needs a program named {program} in {}",
            options.suite,
            manifest::MANIFEST_PATH
        );
    }
    if let Some(arg) = options.kernel_args.iter().find(|a| a.starts_with("init=")) {
        bail!("kernel argument {arg}: `bench` chooses init= itself (init={program})");
    }
    let mut args = vec![format!("init={program}")];
    args.extend(options.kernel_args.iter().cloned());
    let cmdline = crate::cmdline::join(&args)?;
    if let Some(disk) = &options.disk {
        disk.check()?;
    }
    let built = crate::build_all(Profile::Release)?;

    let log_file = crate::target_dir()
        .join("logs")
        .join(format!("bench-{}.log", options.suite));
    // Never follow the previous run's log.
    let _ = std::fs::remove_file(&log_file);
    println!(
        "bench {}: booting with `{cmdline}`, {} MiB, {}, {}",
        options.suite,
        options.mem_mib,
        if options.icount {
            "-icount (figures in guest instructions)"
        } else {
            "no -icount"
        },
        options
            .disk
            .as_ref()
            .map_or("no disk".to_string(), Disk::to_string)
    );
    if !options.icount {
        println!("note: {NO_ICOUNT_NOTE}");
    }
    let follower = (!options.verbose).then(|| {
        let remark = format!("{program}:");
        LogFollower::start(log_file.clone(), move |line| is_shown(line, &remark))
    });
    let boot = crate::boot(&BootOptions {
        cmdline: cmdline.clone(),
        mem_mib: options.mem_mib,
        smp: 1,
        timeout: Some(options.timeout),
        icount: options.icount,
        gdb: false,
        media: Media::Direct(built.kernel.clone()),
        archive: Some(built.archive.clone()),
        echo: options.verbose,
        interactive: false,
        log_file: Some(log_file.clone()),
        disk: options.disk.clone(),
    });
    if let Some(follower) = follower {
        follower.finish();
    }
    let boot = boot?;

    let (measurements, malformed) = collect(&boot.serial);
    let json = json_path(&options.suite);
    if let Err(problem) = judge(boot.outcome, &boot.serial, &measurements, &malformed) {
        let timed_out = match boot.outcome {
            Outcome::TimedOut => format!(" after {} s (--timeout)", options.timeout.as_secs()),
            _ => String::new(),
        };
        eprintln!(
            "bench {} failed{timed_out}:{problem}\nlast serial output:\n{}serial log: {}\n\
             {} was not written",
            options.suite,
            tail(&boot.serial, 30),
            log_file.display(),
            json.display()
        );
        if let Some(image) = &boot.disk_image {
            eprintln!("disk image kept at {}", image.display());
        }
        return Ok(match boot.outcome {
            Outcome::Guest(0) => 1,
            outcome => outcome.process_exit_code(),
        });
    }
    boot.remove_disk_image();
    let mut results = Results::new(&options.suite, options.icount, &cmdline, options.mem_mib);
    results.disk = options.disk.as_ref().map(DiskFigures::of);
    results.measurements = measurements;
    results.write(&json)?;
    println!(
        "bench {}: {} figures written to {}",
        options.suite,
        results.measurements.len(),
        json.display()
    );
    Ok(0)
}

/// Whether a run succeeded: the guest exited with 0 and printed at least one figure and no
/// malformed `bench` line. The error says what went wrong.
pub fn judge(
    outcome: Outcome,
    serial: &str,
    measurements: &[Measurement],
    malformed: &[String],
) -> Result<(), String> {
    let mut problems = Vec::new();
    if outcome != Outcome::Guest(0) {
        let init = serial
            .lines()
            .map(clean_line)
            .find(|line| line.starts_with("all tasks have exited"));
        problems.push(match init {
            Some(line) => format!("the guest did not exit with status 0: {outcome} (`{line}`)"),
            None => format!("the guest did not exit with status 0: {outcome}"),
        });
    }
    for why in malformed {
        problems.push(format!("malformed bench line {why}"));
    }
    if measurements.is_empty() {
        problems.push("the guest printed no `bench <metric> <value> <unit>` line".to_string());
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut message = String::new();
    for problem in problems {
        let _ = write!(message, "\n  - {problem}");
    }
    Err(message)
}

/// The lines shown while a suite runs: figures, the program's remarks (`remark_prefix`, e.g.
/// `bench_ipc:`), and what the kernel says when something dies or everything ends.
pub fn is_shown(line: &str, remark_prefix: &str) -> bool {
    line.starts_with("bench ")
        || line.starts_with(remark_prefix)
        || line.starts_with("panic")
        || line.starts_with("exception:")
        || line.starts_with("all tasks have exited")
}

/// Follows the serial log as QEMU's output is written to it and prints the lines a filter
/// picks, so that figures appear as they come rather than after the run.
struct LogFollower {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl LogFollower {
    fn start(path: PathBuf, show: impl Fn(&str) -> bool + Send + 'static) -> LogFollower {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut file = None;
            let mut pending = Vec::new();
            loop {
                // Read once more after being told to stop: the log is complete by then.
                let last = stopping.load(Ordering::Acquire);
                if file.is_none() {
                    file = File::open(&path).ok();
                }
                if let Some(file) = file.as_mut() {
                    let _ = file.read_to_end(&mut pending);
                }
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    show_line(&line, &show);
                }
                if last {
                    show_line(&pending, &show);
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        LogFollower { stop, thread }
    }

    /// Prints what is left and stops.
    fn finish(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

fn show_line(bytes: &[u8], show: &impl Fn(&str) -> bool) {
    let line = clean_line(&String::from_utf8_lossy(bytes));
    if !line.is_empty() && show(&line) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(metric: &str, value: &str, unit: &str) -> Measurement {
        Measurement {
            metric: metric.to_string(),
            value: Number::from_str(value).unwrap(),
            unit: unit.to_string(),
        }
    }

    #[test]
    fn figures_parse() {
        assert_eq!(
            parse_line("bench ipc.null_rpc_round_trip 1234 instructions"),
            Some(Ok(figure(
                "ipc.null_rpc_round_trip",
                "1234",
                "instructions"
            )))
        );
        assert_eq!(
            parse_line("bench kern.frames_per_blocked_task 12.5 frames\n"),
            Some(Ok(figure("kern.frames_per_blocked_task", "12.5", "frames")))
        );
        assert_eq!(
            parse_line("bench kern.heap_bytes_per_blocked_task -3 bytes"),
            Some(Ok(figure(
                "kern.heap_bytes_per_blocked_task",
                "-3",
                "bytes"
            )))
        );
        let big = parse_line("bench a.b 18446744073709551615 x")
            .unwrap()
            .unwrap();
        assert_eq!(big.value.as_u64(), Some(u64::MAX));
    }

    #[test]
    fn other_lines_are_not_figures() {
        for line in [
            "bench_ipc: all benchmarks done",
            "benchmark ipc.x 1 y",
            "task bench_ipc exited with status 0",
            "",
            "bench",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn malformed_figures_are_errors() {
        for line in [
            "bench ipc.x 12",
            "bench ipc.x 12 bytes extra",
            "bench ipc 12 bytes",
            "bench ipc. 12 bytes",
            "bench IPC.x 12 bytes",
            "bench ipc.x 1e6 bytes",
            "bench ipc.x 1. bytes",
            "bench ipc.x .5 bytes",
            "bench ipc.x 0x10 bytes",
            "bench ipc.x NaN bytes",
        ] {
            assert!(
                matches!(parse_line(line), Some(Err(_))),
                "{line:?} gave {:?}",
                parse_line(line)
            );
        }
    }

    #[test]
    fn collect_keeps_order_and_reports_malformed_lines() {
        let serial = "microkernel v0.1.0\r\n\
                      bench a.one 1 x\r\n\
                      bench_ipc: remark\n\
                      bench a.bad one x\n\
                      \u{1b}[0mbench a.two 2.5 y\n";
        let (figures, malformed) = collect(serial);
        assert_eq!(
            figures,
            [figure("a.one", "1", "x"), figure("a.two", "2.5", "y")]
        );
        assert_eq!(malformed.len(), 1);
        assert!(malformed[0].contains("a.bad"), "{malformed:?}");
    }

    #[test]
    fn json_has_suite_icount_cmdline_and_figures() {
        let mut results = Results::new("ipc", true, "init=bench_ipc", 256);
        results.measurements = vec![
            figure("ipc.null_rpc_round_trip", "1234", "instructions"),
            figure("kern.frames_per_blocked_task", "3.5", "frames"),
        ];
        let json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "suite": "ipc",
                "icount": true,
                "cmdline": "init=bench_ipc",
                "mem_mib": 256,
                "measurements": [
                    {"metric": "ipc.null_rpc_round_trip", "value": 1234, "unit": "instructions"},
                    {"metric": "kern.frames_per_blocked_task", "value": 3.5, "unit": "frames"},
                ],
            })
        );
        assert!(results.to_json().ends_with("}\n"));
    }

    #[test]
    fn json_records_the_disk() {
        let size = crate::DiskSize::from_mib(64).unwrap();
        let mut results = Results::new("pager", true, "init=bench_pager", 256);
        results.disk = Some(DiskFigures::of(&Disk::shared(size)));
        let json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert_eq!(json["disk"], serde_json::json!({"size_mib": 64}));

        let disk = Disk::shared(size)
            .with_iops(500)
            .with_faults("write@8+8")
            .unwrap();
        results.disk = Some(DiskFigures::of(&disk));
        let json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert_eq!(
            json["disk"],
            serde_json::json!({"size_mib": 64, "iops": 500, "faults": "write@8+8"})
        );
    }

    #[test]
    fn json_without_icount_carries_the_note() {
        let results = Results::new("ipc", false, "init=bench_ipc log=warn", 64);
        let json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert_eq!(json["icount"], false);
        assert_eq!(json["note"], NO_ICOUNT_NOTE);
        assert_eq!(json["measurements"], serde_json::json!([]));
    }

    #[test]
    fn json_is_written_where_asked() {
        let dir = std::env::temp_dir().join(format!("image-bench-json-{}", std::process::id()));
        let path = dir.join("nested").join("ipc.json");
        let results = Results::new("ipc", true, "init=bench_ipc", 256);
        results.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text, results.to_json());
        assert!(json_path("ipc").ends_with("target/bench/ipc.json"));
    }

    #[test]
    fn suite_names_map_to_programs() {
        assert_eq!(program_name("ipc").unwrap(), "bench_ipc");
        assert_eq!(program_name("vm_2").unwrap(), "bench_vm_2");
        for bad in ["", "IPC", "a b", "a=b", "../x", &"x".repeat(42)] {
            assert!(program_name(bad).is_err(), "{bad:?}");
        }
        assert!(program_name(&"x".repeat(41)).is_ok());
    }

    #[test]
    fn judging_a_run() {
        let one = [figure("a.b", "1", "x")];
        assert_eq!(judge(Outcome::Guest(0), "", &one, &[]), Ok(()));

        let serial = "bench a.b 1 x\nall tasks have exited (init status 1); shutting down\n";
        let failed = judge(Outcome::Guest(1), serial, &one, &[]).unwrap_err();
        assert!(failed.contains("did not exit with status 0"), "{failed}");
        assert!(failed.contains("init status 1"), "{failed}");

        let silent = judge(Outcome::Guest(0), "", &[], &[]).unwrap_err();
        assert!(silent.contains("no `bench"), "{silent}");

        let timed_out = judge(Outcome::TimedOut, "", &[], &[]).unwrap_err();
        assert!(timed_out.contains("timed out"), "{timed_out}");
        assert!(timed_out.contains("no `bench"), "{timed_out}");

        let malformed = judge(Outcome::Guest(0), "", &one, &["`bench a.b` ...".into()]);
        assert!(malformed.unwrap_err().contains("malformed"));
    }

    #[test]
    fn shown_lines() {
        assert!(is_shown("bench ipc.x 1 y", "bench_ipc:"));
        assert!(is_shown("bench_ipc: WARNING: frames", "bench_ipc:"));
        assert!(is_shown("panic in bench_ipc: boom at x:1", "bench_ipc:"));
        assert!(is_shown("panic: kernel", "bench_ipc:"));
        assert!(is_shown(
            "all tasks have exited (init status 0); shutting down",
            "bench_ipc:"
        ));
        assert!(!is_shown(
            "task bench_ipc exited with status 0",
            "bench_ipc:"
        ));
        assert!(!is_shown("memory: usable 250 MiB", "bench_ipc:"));
    }
}

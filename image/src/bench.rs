//! `cargo image bench <suite>`: boots the kernel with `init=bench_<suite>` (once, or once per
//! setting for a suite that compares settings fixed at boot: [`plan`]; the compared workloads
//! also with the task swapper off and, with `--linux`, on Linux: [`runs`]), collects the
//! program's `bench <metric> <value> <unit>` lines and writes them to
//! `target/bench/<suite>.json`, a table of them to `<suite>.csv` and, for the compared
//! workloads, their plots to `<suite>.svg` ([`series`]). A bar shows how the boots go
//! ([`progress`]).
//!
//! The guest's side of the contract: a figure is one line `bench <group>.<name> <value> <unit>`
//! (value an integer or a decimal, e.g. `bench ipc.null_rpc_round_trip 1234 instructions`);
//! a span the host times is a pair of lines `stopwatch <group>.<name> start` / `... stop`
//! ([`stopwatch`]: a figure in seconds, reported only without `-icount`); remarks and warnings
//! are lines starting `bench_<suite>:`; the program exits with 0 when every measurement
//! worked. Timed figures count `rdtsc` ticks, which are guest instructions only under QEMU's
//! `-icount`.

pub mod plan;
pub mod progress;
pub mod runs;
pub mod series;
pub mod stopwatch;

pub use plan::program_name;

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Number;

use crate::disk::{self, Disk};
use crate::manifest::{self, Manifest};
use crate::qemu::{BootOptions, Media, Outcome};
use crate::report::{clean_line, tail};
use crate::Profile;
use runs::System;

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
    /// The kernel command line of the run; of a suite that boots more than once, the part
    /// every boot shares.
    pub cmdline: String,
    /// Each boot's whole command line, when the suite boots more than once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boots: Vec<String>,
    pub mem_mib: u32,
    /// The disk the default pager paged to; absent if the run had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskFigures>,
    /// The Linux kernel's release, when the suite also ran on Linux (`--linux`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux: Option<String>,
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
            boots: Vec::new(),
            mem_mib,
            disk: None,
            linux: None,
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

/// How often the host reads the serial log while a suite runs: a figure shows this late at
/// most, and each end of a stopwatch span is seen this late at most.
pub const POLL: Duration = Duration::from_millis(10);

/// `<workspace>/target/bench/<suite>.json`.
pub fn json_path(suite: &str) -> PathBuf {
    crate::target_dir()
        .join("bench")
        .join(format!("{suite}.json"))
}

/// `<workspace>/target/logs/bench-<suite>.log`, or `bench-<suite>-<label>.log` for boot
/// `label` of a suite that boots more than once.
pub fn log_path(suite: &str, label: Option<&str>) -> PathBuf {
    let name = match label {
        Some(label) => format!("bench-{suite}-{label}.log"),
        None => format!("bench-{suite}.log"),
    };
    crate::target_dir().join("logs").join(name)
}

/// How to run a suite.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub suite: String,
    /// Processors QEMU gives each boot; `None`: the suite's own (1, or 4 for `smp`).
    pub smp: Option<u32>,
    pub icount: bool,
    /// `--mem`: the guest memory in MiB, or for sheeptest the memory of its one point
    /// ([`runs::at_memory`]); `None`: 256 MiB, and sheeptest's sweep.
    pub mem: Option<u32>,
    /// Each boot's limit.
    pub timeout: Duration,
    /// Echo the whole serial output rather than only the figures and the program's remarks.
    pub verbose: bool,
    /// More kernel arguments, after `init=bench_<suite>`.
    pub kernel_args: Vec<String>,
    /// The disk for the default pager; `None` runs without one.
    pub disk: Option<Disk>,
    /// Also run the workload on Linux in the same QEMU (compared suites only).
    pub linux: bool,
}

/// Builds, boots (each run of the suite: [`plan::Plan`]'s boots, expanded by [`runs`]) in
/// turn, collects, writes the JSON, the CSV and the plots; the process exit code (0 only if
/// every boot's guest exited with 0 and printed at least one well-formed figure, and no two
/// boots printed the same metric). Problems with the host side (the build, QEMU, the Linux
/// kernel's download) are errors.
pub fn run(options: &BenchOptions) -> Result<u8> {
    let suite = options.suite.as_str();
    let plan = plan::of(suite, &options.kernel_args, options.disk.is_some())?;
    let plan = runs::at_memory(suite, plan, options.mem, &options.kernel_args)?;
    let manifest = Manifest::load(&manifest::manifest_path())?;
    for boot in &plan.boots {
        if !manifest.programs().iter().any(|p| p.name == boot.program) {
            bail!(
                "suite {:?} needs a program named {} in {}",
                options.suite,
                boot.program,
                manifest::MANIFEST_PATH
            );
        }
    }
    let runs = runs::expand(suite, &plan, options.linux, options.icount)?;
    let mem_mib = runs::qemu_memory(suite, options.mem);
    let common = crate::cmdline::join(&plan.common)?;
    // Checked before anything is built; a Linux run's line is made again when its turn
    // comes, with the memory our kernel's run of the same point had free.
    for run in &runs {
        match run.system {
            System::Linux => {
                crate::cmdline::join(&crate::linux::cmdline_for(&run.args, options.icount)?)?
            }
            _ => crate::cmdline::join(&run.args)?,
        };
    }
    let mut disk = options.disk.clone();
    if let Some(disk) = &mut disk {
        if disk.iops.is_none() {
            disk.iops = runs::default_iops(suite, options.icount);
            if let Some(iops) = disk.iops {
                println!(
                    "bench {suite}: the disk is throttled to {iops} requests a second (its \
                     default; --disk-iops N for another)"
                );
            }
        }
        disk.check()?;
    }
    let built = crate::build_all(Profile::Release)?;
    let linux = if options.linux {
        Some(crate::linux::prepare()?)
    } else {
        None
    };
    if !options.icount {
        println!("note: {NO_ICOUNT_NOTE}");
    }

    let progress = progress::Progress::new(runs.len(), !options.verbose);
    let mut per_boot = Vec::new();
    let mut cmdlines = Vec::new();
    // What the workload had free in our kernel's run of each point (KiB).
    let mut free_memory: Vec<(Option<String>, u64)> = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let cmdline = match run.system {
            System::Linux => {
                let free = free_memory
                    .iter()
                    .find(|(point, _)| *point == run.point)
                    .map(|&(_, kib)| kib);
                let args = runs::linux_args(run, free);
                crate::cmdline::join(&crate::linux::cmdline_for(&args, options.icount)?)?
            }
            _ => crate::cmdline::join(&run.args)?,
        };
        let guest = match (run.system, &linux) {
            (System::Linux, Some(linux)) => Guest {
                kernel: linux.kernel.vmlinuz.clone(),
                archive: linux.initramfs.clone(),
                remarks: vec![format!("{}:", run.program), "linux-workloads:".to_string()],
            },
            _ => Guest {
                kernel: built.kernel.clone(),
                archive: built.archive.clone(),
                remarks: vec![format!("{}:", run.program)],
            },
        };
        let boot = BootSpec {
            options,
            mem_mib,
            disk: disk.as_ref(),
            label: run.label.as_deref(),
            cmdline: &cmdline,
            guest: &guest,
            progress: &progress,
            number: (index + 1, runs.len()),
            cpus: options.smp.unwrap_or(plan.cpus),
        };
        match run_boot(&boot)? {
            BootOutcome::Passed(figures) => {
                if run.system == System::Ours {
                    if let Some(kib) = runs::free_memory(&figures) {
                        free_memory.push((run.point.clone(), kib));
                    }
                }
                per_boot.push(runs::rename(figures, run.suffix.as_deref()));
                cmdlines.push(cmdline);
            }
            BootOutcome::Failed(code) => {
                progress.finish();
                return Ok(code);
            }
        }
    }
    progress.finish();
    let json = json_path(suite);
    let measurements = match plan::merge(per_boot) {
        Ok(measurements) => plan::rename_prefixes(measurements, plan.renames),
        Err(problem) => {
            eprintln!(
                "bench {} failed: {problem}\n{} was not written",
                options.suite,
                json.display()
            );
            return Ok(1);
        }
    };
    let mut results = Results::new(suite, options.icount, &common, mem_mib);
    if cmdlines.len() > 1 {
        results.boots = cmdlines;
    }
    results.disk = disk.as_ref().map(DiskFigures::of);
    results.linux = linux.map(|linux| linux.kernel.release);
    results.measurements = measurements;
    write_outputs(&results)?;
    Ok(0)
}

/// Writes the JSON, the CSV and (for a compared suite) the plots of `results`, and says where.
pub fn write_outputs(results: &Results) -> Result<()> {
    let suite = results.suite.as_str();
    let json = json_path(suite);
    results.write(&json)?;
    println!(
        "bench {suite}: {} figures written to {}",
        results.measurements.len(),
        json.display()
    );
    let csv = series::csv_path(suite);
    series::write(&csv, &series::csv(suite, &results.measurements))?;
    println!("bench {suite}: table in {}", csv.display());
    let charts = series::charts(suite, &results.measurements, results.icount);
    if runs::COMPARED.contains(&suite) {
        let svg = series::svg_path(suite);
        match crate::plot::svg(&charts) {
            Ok(text) => {
                series::write(&svg, &text)?;
                println!("bench {suite}: plots in {}", svg.display());
            }
            Err(why) => println!("bench {suite}: no plots ({why:#})"),
        }
    }
    Ok(())
}

/// How one boot of a suite went.
enum BootOutcome {
    /// Its figures: the guest's, then the host's stopwatch figures (without `-icount`).
    Passed(Vec<Measurement>),
    /// The process exit code; what went wrong has been printed.
    Failed(u8),
}

/// Each boot's time limit when the user gives no `--timeout`: two minutes, half an hour for
/// the scale suite, and an hour for NONAIM, whose default schedule's last steps take many
/// minutes (Linux's 500-user step under `-icount`: 7).
pub fn default_timeout_secs(suite: &str) -> u64 {
    match suite {
        "nonaim" | "fuzz" => 3600,
        // Blocked tasks until the kernel refuses one: some hundred thousand, started one at a
        // time.
        "scale" => 1800,
        _ => 120,
    }
}

/// The fuzzer's arguments for `--calls N` (calls in all): ten rounds, or more so that a round
/// makes at most [`FUZZ_ROUND_CALLS`]. Workers slow down as a long round piles up their state
/// (ports and regions to their quotas, forks), so ten rounds of a million calls take hours
/// where forty of 250,000 take minutes; and each round ends with a census.
pub fn fuzz_calls_args(calls: u64) -> String {
    let rounds = calls.div_ceil(FUZZ_ROUND_CALLS).max(10);
    format!(
        "args=calls={},rounds={rounds}",
        calls.div_ceil(rounds).max(1)
    )
}

/// The most calls a round of `cargo image bench fuzz --calls N` makes.
pub const FUZZ_ROUND_CALLS: u64 = 250_000;

/// How to run the soak (`cargo image soak`).
pub struct SoakOptions {
    pub minutes: u64,
    pub mem_mib: u32,
    pub seed: u64,
    pub disk: Disk,
    /// More kernel command line arguments.
    pub kernel_args: Vec<String>,
}

/// The soak: boots to the shell with the disk pager, which runs `soak` (tests/soak) for
/// `minutes`: sheeptest, NONAIM and the fuzzer together, cycle after cycle, the kernel's
/// memory checked for drift between cycles. Shows the soak's lines as they come; the serial
/// log is `target/logs/soak.log`. Exit code: the guest's (0 passed, 1 failed), 3 for a hang
/// of the whole machine or a crash.
pub fn soak(options: &SoakOptions) -> Result<u8> {
    let built = crate::build_all(Profile::Release)?;
    let mut args = vec![
        format!(
            "sh=run soak minutes={} seed={}",
            options.minutes, options.seed
        ),
        "log=warn".to_string(),
    ];
    args.extend(options.kernel_args.iter().cloned());
    let cmdline = crate::cmdline::join(&args)?;
    let log_file = crate::target_dir().join("logs").join("soak.log");
    let _ = std::fs::remove_file(&log_file);
    let progress = progress::Progress::new(1, true);
    progress.println(&format!(
        "soak: {} minutes, {} MiB, {}; serial log {}",
        options.minutes,
        options.mem_mib,
        options.disk,
        log_file.display()
    ));
    progress.start_boot("soak");
    let follower = LogFollower::start(log_file.clone(), progress.clone(), |line| {
        line.starts_with("soak:")
            || line.starts_with("bench soak.")
            || line.starts_with("panic")
            || line.starts_with("exception:")
    });
    // A cycle that has not ended after ten minutes is the soak's own hang; past that, the
    // whole machine's.
    let timeout = Duration::from_secs(options.minutes * 60 + 15 * 60);
    let boot = crate::boot(&BootOptions {
        cmdline,
        mem_mib: options.mem_mib,
        smp: 1,
        timeout: Some(timeout),
        icount: false,
        gdb: false,
        media: Media::Direct(built.kernel.clone()),
        archive: Some(built.archive.clone()),
        echo: false,
        interactive: false,
        console_input: Vec::new(),
        log_file: Some(log_file.clone()),
        disk: Some(options.disk.clone()),
    });
    let _ = follower.finish();
    progress.finish();
    let boot = boot?;
    boot.remove_disk_image();
    match boot.outcome {
        Outcome::Guest(0) => Ok(0),
        Outcome::Guest(_) => {
            eprintln!(
                "soak: failed; the end of the serial log:\n{}",
                tail(&boot.serial, 30)
            );
            Ok(1)
        }
        outcome => {
            eprintln!(
                "soak: {outcome}; the end of the serial log:\n{}",
                tail(&boot.serial, 30)
            );
            Ok(3)
        }
    }
}

/// What QEMU boots: our kernel and archive, or Linux and its initramfs.
struct Guest {
    kernel: PathBuf,
    archive: PathBuf,
    /// Prefixes of the lines that are the program's remarks (shown as they come).
    remarks: Vec<String>,
}

/// One boot of a suite.
struct BootSpec<'a> {
    options: &'a BenchOptions,
    mem_mib: u32,
    disk: Option<&'a Disk>,
    /// Names its log; `None` for a suite's only boot.
    label: Option<&'a str>,
    cmdline: &'a str,
    guest: &'a Guest,
    progress: &'a progress::Progress,
    /// This boot's number (from 1) and how many the suite has.
    number: (usize, usize),
    /// Processors QEMU gives the guest.
    cpus: u32,
}

/// Boots once, prints the figures as they come and judges the run.
fn run_boot(spec: &BootSpec<'_>) -> Result<BootOutcome> {
    let options = spec.options;
    let progress = spec.progress;
    let log_file = log_path(&options.suite, spec.label);
    // Never follow the previous run's log.
    let _ = std::fs::remove_file(&log_file);
    let (number, boots) = spec.number;
    let which = if boots > 1 {
        format!(" (boot {number} of {boots}: {})", spec.label.unwrap_or("-"))
    } else {
        String::new()
    };
    progress.println(&format!(
        "bench {}{which}: booting with `{}`, {} MiB, {}, {}",
        options.suite,
        spec.cmdline,
        spec.mem_mib,
        if options.icount {
            "-icount (figures in guest instructions)"
        } else {
            "no -icount"
        },
        spec.disk.map_or("no disk".to_string(), Disk::to_string)
    ));
    progress.start_boot(spec.label.unwrap_or(&options.suite));
    // The follower also notes when stopwatch lines arrive, so it runs even when the boot
    // echoes everything itself.
    let remarks = spec.guest.remarks.clone();
    let quiet = !options.verbose;
    let follower = LogFollower::start(log_file.clone(), progress.clone(), move |line| {
        quiet && remarks.iter().any(|remark| is_shown(line, remark))
    });
    let boot = crate::boot(&BootOptions {
        cmdline: spec.cmdline.to_string(),
        mem_mib: spec.mem_mib,
        smp: spec.cpus,
        timeout: Some(options.timeout),
        icount: options.icount,
        gdb: false,
        media: Media::Direct(spec.guest.kernel.clone()),
        archive: Some(spec.guest.archive.clone()),
        echo: options.verbose,
        interactive: false,
        console_input: Vec::new(),
        log_file: Some(log_file.clone()),
        disk: spec.disk.cloned(),
    });
    let stopwatch_lines = follower.finish();
    let boot = boot?;

    let (mut measurements, malformed) = collect(&boot.serial);
    let (timed, stopwatch_problems) = stopwatch::figures(&stopwatch_lines);
    let mut problems: Vec<String> = malformed
        .iter()
        .map(|why| format!("malformed bench line {why}"))
        .collect();
    problems.extend(stopwatch_problems);
    if let Err(problem) = judge(boot.outcome, &boot.serial, &measurements, &problems) {
        let timed_out = match boot.outcome {
            Outcome::TimedOut => format!(" after {} s (--timeout)", options.timeout.as_secs()),
            _ => String::new(),
        };
        let which = spec
            .label
            .map_or(String::new(), |label| format!(" (boot {label})"));
        progress.eprintln(&format!(
            "bench {} failed{which}{timed_out}:{problem}\nlast serial output:\n{}serial log: \
             {}\n{} was not written",
            options.suite,
            tail(&boot.serial, 30),
            log_file.display(),
            json_path(&options.suite).display()
        ));
        if let Some(image) = &boot.disk_image {
            progress.eprintln(&format!("disk image kept at {}", image.display()));
        }
        return Ok(BootOutcome::Failed(match boot.outcome {
            Outcome::Guest(0) => 1,
            outcome => outcome.process_exit_code(),
        }));
    }
    boot.remove_disk_image();
    if !progress.is_animated() && boots > 1 {
        println!(
            "bench {}: boot {number} of {boots} done in {:.1} s",
            options.suite,
            boot.wall.as_secs_f64()
        );
    }
    if options.icount {
        if !timed.is_empty() {
            progress.println(&format!(
                "bench {}: {} stopwatch figures left out: under -icount the host's time is \
                 not the guest's",
                options.suite,
                timed.len()
            ));
        }
    } else {
        for figure in &timed {
            progress.println(&format!(
                "bench {} {} {}",
                figure.metric, figure.value, figure.unit
            ));
        }
        measurements.extend(timed);
    }
    Ok(BootOutcome::Passed(measurements))
}

/// Whether a boot succeeded: the guest exited with 0 and printed at least one figure, and
/// there are no `problems_found` (malformed lines, unpaired stopwatch lines, each said in full).
/// The error says what went wrong.
pub fn judge(
    outcome: Outcome,
    serial: &str,
    measurements: &[Measurement],
    problems_found: &[String],
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
    problems.extend(problems_found.iter().cloned());
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

/// Follows the serial log as QEMU's output is written to it (reading it every [`POLL`]),
/// prints the lines a filter picks (above the progress bar, whose message is the last line), so that figures appear as they come rather than after the
/// run, and notes when each stopwatch line arrived.
struct LogFollower {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Duration, String)>>,
}

impl LogFollower {
    fn start(
        path: PathBuf,
        progress: progress::Progress,
        show: impl Fn(&str) -> bool + Send + 'static,
    ) -> LogFollower {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let mut stopwatch_lines = Vec::new();
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
                let now = started.elapsed();
                let mut take = |bytes: &[u8]| {
                    let line = clean_line(&String::from_utf8_lossy(bytes));
                    if line.is_empty() {
                        return;
                    }
                    progress.guest_line(&line, show(&line));
                    if stopwatch::parse_line(&line).is_some() {
                        stopwatch_lines.push((now, line));
                    }
                };
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    take(&line);
                }
                if last {
                    take(&pending);
                    return stopwatch_lines;
                }
                thread::sleep(POLL);
            }
        });
        LogFollower { stop, thread }
    }

    /// Prints what is left and stops; the stopwatch lines, each with when it was read (from
    /// the follower's start).
    fn finish(self) -> Vec<(Duration, String)> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or_default()
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
    fn json_lists_the_boots_of_a_suite_that_boots_more_than_once() {
        let mut results = Results::new("pager-disk", true, "init=bench_pager_disk mem=32M", 256);
        let one: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert!(one.get("boots").is_none(), "{one}");
        results.boots = vec![
            "init=bench_pager_disk mem=32M swap=1".to_string(),
            "init=bench_pager_disk mem=32M".to_string(),
        ];
        let json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert_eq!(json["cmdline"], "init=bench_pager_disk mem=32M");
        assert_eq!(
            json["boots"],
            serde_json::json!([
                "init=bench_pager_disk mem=32M swap=1",
                "init=bench_pager_disk mem=32M"
            ])
        );
        assert!(log_path("pager-disk", Some("cluster1"))
            .ends_with("target/logs/bench-pager-disk-cluster1.log"));
        assert!(log_path("ipc", None).ends_with("target/logs/bench-ipc.log"));
    }

    #[test]
    fn json_names_the_linux_kernel_when_linux_ran() {
        let mut results = Results::new("sheeptest", true, "init=sheeptest args=4,4M,1", 256);
        let ours: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert!(ours.get("linux").is_none(), "{ours}");
        results.linux = Some("6.1.0-57-cloud-amd64".into());
        results.measurements = vec![figure("sheeptest.elapsed_s.4x4m.mem16m.linux", "2.33", "s")];
        let json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
        assert_eq!(json["linux"], "6.1.0-57-cloud-amd64");
        assert_eq!(
            json["measurements"][0],
            serde_json::json!({"metric": "sheeptest.elapsed_s.4x4m.mem16m.linux", "value": 2.33, "unit": "s"})
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

        let malformed = judge(
            Outcome::Guest(0),
            "",
            &one,
            &["malformed bench line `bench a.b` ...".into()],
        );
        assert!(malformed
            .unwrap_err()
            .contains("malformed bench line `bench a.b`"));
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

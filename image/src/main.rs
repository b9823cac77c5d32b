//! `cargo image`: builds the kernel, the user programs and the boot archive, makes boot media,
//! boots them in QEMU, runs the tests and the benchmarks.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use image::bench::BenchOptions;
use image::disk::{Disk, DiskSize, Fault};
use image::iso::{self, IsoSpec, LimineRelease};
use image::kernel_build::cargo_program;
use image::tools::{self, SetupOutcome};
use image::{BootOptions, Built, Media, Outcome, Profile};

#[derive(Parser)]
#[command(
    name = "cargo image",
    bin_name = "cargo image",
    about = "Build the microkernel and its boot archive, make boot media and boot them in QEMU"
)]
struct Cli {
    #[command(subcommand)]
    command: Subcommands,
}

#[derive(Subcommand)]
enum Subcommands {
    /// Build the kernel ELF, the user programs of servers/boot.toml and the boot archive
    /// (release unless --debug); print the kernel's and the archive's paths.
    Build {
        /// Build the debug profile.
        #[arg(long)]
        debug: bool,
    },
    /// Build everything and boot it in QEMU; exits with the code the guest reports.
    Run(RunArgs),
    /// Build a hybrid BIOS/UEFI Limine ISO under target/iso/ (needs LIMINE_DIR).
    ///
    /// LIMINE_DIR must name a Limine 8.x (or newer) binary release, e.g. a checkout of Limine's
    /// v8.x-binary branch: limine-bios.sys, limine-bios-cd.bin, limine-uefi-cd.bin and
    /// BOOTX64.EFI (BOOTIA32.EFI optional). If it has limine.c, the host tool is compiled with cc
    /// and `limine bios-install` makes the ISO bootable as a disk image too.
    Iso {
        /// Build the debug profile.
        #[arg(long)]
        debug: bool,
        /// Kernel command line arguments (after `--`).
        #[arg(last = true)]
        kernel_args: Vec<String>,
    },
    /// Install what the tool needs from the system (QEMU, xorriso, OVMF) if it is missing.
    Setup,
    /// Boot with init=bench_<SUITE>, print its `bench <metric> <value> <unit>` figures as they
    /// come and write them to target/bench/<SUITE>.json and <SUITE>.csv (and, for sheeptest
    /// and nonaim, plots to <SUITE>.svg); fails unless the guest exits with 0 after printing
    /// at least one figure.
    Bench(BenchArgs),
    /// Run the soak: sheeptest, NONAIM and the fuzzer together, cycle after cycle, on a small
    /// machine with the disk pager and the task swapper; fails on a wrong byte, a failed job,
    /// a panic, a hang, or drift of the kernel's memory between cycles.
    Soak(SoakArgs),
    /// Make a new pager crate NAME and its client test from servers/template_pager, add them
    /// to the workspace and the boot manifest.
    ///
    /// Copies servers/template_pager to servers/NAME, servers/template_pager_test to
    /// servers/NAME_test and tests/tests/template_pager.rs to tests/tests/NAME.rs, with
    /// `template_pager` replaced by NAME in file names and contents; lists the two crates in
    /// the root Cargo.toml's members and default-members and their programs in
    /// servers/boot.toml, after the template's. Changes nothing if any check fails.
    NewPager {
        /// The pager's name: a lowercase letter, then lowercase letters, digits and
        /// underscores, at most 40 bytes (e.g. ram_disk).
        name: String,
    },
    /// Check the system packages, build everything, then run `cargo test --workspace`.
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Build and boot the debug profile.
    #[arg(long)]
    debug: bool,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    mem: u32,
    /// Kill QEMU after this many seconds (0: never) [default: never when typing into the
    /// shell at a terminal, else 300].
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Deterministic instruction counting (-icount shift=0).
    #[arg(long)]
    icount: bool,
    /// Wait for gdb on port 1234 before running (no timeout).
    #[arg(long)]
    gdb: bool,
    /// Number of CPUs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    smp: u32,
    /// Boot the Limine ISO (needs LIMINE_DIR) instead of loading the kernel directly (PVH).
    #[arg(long)]
    iso: bool,
    /// With --iso: boot under OVMF (UEFI) instead of SeaBIOS.
    #[arg(long)]
    uefi: bool,
    #[command(flatten)]
    disk: DiskArgs,
    /// Kernel command line arguments (after `--`).
    #[arg(last = true)]
    kernel_args: Vec<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// The suite: `ipc` runs the program bench_ipc, `pager-disk` bench_pager_disk (booted
    /// once per cluster size of the disk pager), `sheeptest` the workload over a sweep of
    /// memory sizes, `nonaim` its schedule of 1 to 2,000 users in 128 MiB, each with the task
    /// swapper on and off.
    suite: String,
    /// Count guest instructions (-icount shift=0): without it `instructions` figures are TSC
    /// cycles of an emulated CPU, not meaningful.
    #[arg(long)]
    icount: bool,
    /// Guest memory in MiB (default 256). For sheeptest: one run in MIB MiB (the kernel's
    /// mem=), 4 workers of MIB/4 each, instead of the sweep; `--mem 16` is the paper's
    /// setting.
    #[arg(long, value_name = "MIB")]
    mem: Option<u32>,
    /// Kill QEMU after this many seconds (each boot's limit, for a suite of several boots);
    /// default 120, and 3600 for nonaim (its last steps take many minutes).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Echo the whole serial output, not only the figures and the program's remarks (and no
    /// progress bar).
    #[arg(long)]
    verbose: bool,
    /// Also run the workload on Linux (Debian's cloud kernel, fetched with apt-get download
    /// into target/linux/ the first time) in the same QEMU, memory and disk; sheeptest and
    /// nonaim.
    #[arg(long)]
    linux: bool,
    /// Processors QEMU gives each boot (default 1, and 4 for the smp suite, whose boots use
    /// 1, 2 and 4 of them); give the kernel `cpus=N` to use fewer.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    smp: Option<u32>,
    /// For the fuzz suite: how many system calls to make in all (ten rounds, or more of at
    /// most 250,000 calls each).
    #[arg(long, value_name = "N")]
    calls: Option<u64>,
    #[command(flatten)]
    disk: DiskArgs,
    /// More kernel command line arguments (after `--`), e.g. `log=warn`.
    #[arg(last = true)]
    kernel_args: Vec<String>,
}

#[derive(Args)]
struct SoakArgs {
    /// How long, in guest minutes.
    #[arg(long, value_name = "N", default_value_t = 60)]
    minutes: u64,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    mem: u32,
    /// The workloads' seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    disk: DiskArgs,
    /// More kernel command line arguments (after `--`), e.g. `collocate=default_pager`.
    #[arg(last = true)]
    kernel_args: Vec<String>,
}

/// The virtio-blk disk the kernel's default pager pages to.
#[derive(Args)]
struct DiskArgs {
    /// Boot without the disk (the kernel then pages to memory only).
    #[arg(long, conflicts_with_all = ["disk_size", "disk_iops", "disk_fault"])]
    no_disk: bool,
    /// Size of the disk, in M or G (64M, 1G); the default is as much as the default guest
    /// memory. Its image target/disk/disk-<MiB>M.img is written in full on first use and
    /// reused by later runs of that size.
    #[arg(long, value_name = "SIZE", default_value_t = DiskSize::DEFAULT)]
    disk_size: DiskSize,
    /// Throttle the disk to N requests per second (QEMU throttling.iops-total), so that
    /// clustering pays as on a real disk (`bench sheeptest`: 400 unless given, none under
    /// --icount).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    disk_iops: Option<u32>,
    /// Inject I/O errors (EIO): comma-separated rules OP[@SECTOR[+COUNT]][:once], OP `read` or
    /// `write`; SECTOR in 512-byte sectors (a rule fails the requests that touch it, or any of
    /// COUNT sectors from it; without @SECTOR every such request); `:once` fails each sector
    /// once. E.g. `write@800+8:once,read@0`. Repeatable.
    #[arg(long, value_name = "SPEC", value_delimiter = ',')]
    disk_fault: Vec<Fault>,
}

impl DiskArgs {
    /// The disk to attach (the shared image of the size asked for), or `None` for --no-disk.
    fn disk(&self) -> Result<Option<Disk>> {
        if self.no_disk {
            return Ok(None);
        }
        let disk = Disk {
            iops: self.disk_iops,
            faults: self.disk_fault.clone(),
            ..Disk::shared(self.disk_size)
        };
        disk.check()?;
        Ok(Some(disk))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Subcommands) -> Result<ExitCode> {
    match command {
        Subcommands::Build { debug } => {
            let built = image::build_all(Profile::from_debug_flag(debug))?;
            println!("{}", built.kernel.display());
            println!("{}", built.archive.display());
            Ok(ExitCode::SUCCESS)
        }
        Subcommands::Run(args) => run(args),
        Subcommands::Iso { debug, kernel_args } => {
            let (iso, _) = make_iso(Profile::from_debug_flag(debug), &kernel_args)?;
            println!("{}", iso.display());
            Ok(ExitCode::SUCCESS)
        }
        Subcommands::Setup => {
            setup()?;
            Ok(ExitCode::SUCCESS)
        }
        Subcommands::Bench(args) => bench(args),
        Subcommands::Soak(args) => soak(args),
        Subcommands::NewPager { name } => {
            image::new_pager::new_pager(&image::workspace_root(), &name)?;
            println!("{}", image::new_pager::summary(&name));
            Ok(ExitCode::SUCCESS)
        }
        Subcommands::Test { cargo_args } => test(&cargo_args),
    }
}

/// Validates LIMINE_DIR before the (slow) build, then builds everything and the ISO.
fn make_iso(profile: Profile, kernel_args: &[String]) -> Result<(PathBuf, Built)> {
    let limine = LimineRelease::from_env()?;
    let cmdline = image::cmdline::join(kernel_args)?;
    let built = image::build_all(profile)?;
    let spec = IsoSpec {
        kernel: &built.kernel,
        cmdline: &cmdline,
        archive: Some(&built.archive),
    };
    Ok((iso::build_iso(&limine, &spec)?, built))
}

fn run(args: RunArgs) -> Result<ExitCode> {
    if args.uefi && !args.iso {
        bail!(
            "--uefi needs --iso: direct boot loads the kernel through QEMU's PVH entry point, \
             which involves no firmware to choose"
        );
    }
    let profile = Profile::from_debug_flag(args.debug);
    let cmdline = image::cmdline::join(&args.kernel_args)?;
    let disk = args.disk.disk()?;
    install_missing_tools()?;
    let (media, built) = if args.iso {
        let (iso, built) = make_iso(profile, &args.kernel_args)?;
        let media = Media::Iso {
            path: iso,
            uefi: args.uefi,
        };
        (media, built)
    } else {
        let built = image::build_all(profile)?;
        (Media::Direct(built.kernel.clone()), built)
    };
    let timeout_secs = args.timeout.unwrap_or_else(|| {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            0
        } else {
            300
        }
    });
    let timeout = (timeout_secs > 0 && !args.gdb).then(|| Duration::from_secs(timeout_secs));
    if args.gdb {
        eprintln!(
            "QEMU waits for a debugger; attach with:\n    gdb {} -ex 'target remote :1234'",
            built.kernel.display()
        );
    }
    let log_file = image::target_dir().join("logs").join("run.log");
    let opts = BootOptions {
        cmdline,
        mem_mib: args.mem,
        smp: args.smp,
        timeout,
        icount: args.icount,
        gdb: args.gdb,
        media,
        archive: Some(built.archive.clone()),
        echo: true,
        interactive: true,
        console_input: Vec::new(),
        log_file: Some(log_file.clone()),
        disk,
    };
    let boot = image::boot(&opts)?;
    match &boot.disk_image {
        Some(image) if boot.outcome != Outcome::Guest(0) => {
            eprintln!("the run's disk image is kept at {}", image.display())
        }
        _ => boot.remove_disk_image(),
    }
    match boot.outcome {
        Outcome::Guest(0) => {}
        Outcome::TimedOut => eprintln!(
            "timed out after {timeout_secs} s; serial log in {}",
            log_file.display()
        ),
        outcome => eprintln!(
            "{}; serial log in {}",
            image::report::describe_outcome(outcome, &boot.serial),
            log_file.display()
        ),
    }
    Ok(ExitCode::from(boot.outcome.process_exit_code()))
}

fn bench(args: BenchArgs) -> Result<ExitCode> {
    let timeout = args
        .timeout
        .unwrap_or_else(|| image::bench::default_timeout_secs(&args.suite));
    if timeout == 0 {
        bail!("--timeout must be at least 1 second: a benchmark always runs with a timeout");
    }
    let mut kernel_args = args.kernel_args;
    if let Some(calls) = args.calls {
        if args.suite != "fuzz" {
            bail!("--calls is the fuzz suite's (`cargo image bench fuzz --calls N`)");
        }
        if calls == 0 || kernel_args.iter().any(|arg| arg.starts_with("args=")) {
            bail!("--calls takes a count of at least 1, and no `args=` besides it");
        }
        kernel_args.push(image::bench::fuzz_calls_args(calls));
    }
    install_missing_tools()?;
    let code = image::bench::run(&BenchOptions {
        suite: args.suite,
        icount: args.icount,
        mem: args.mem,
        timeout: Duration::from_secs(timeout),
        verbose: args.verbose,
        kernel_args,
        disk: args.disk.disk()?,
        linux: args.linux,
        smp: args.smp,
    })?;
    Ok(ExitCode::from(code))
}

fn soak(args: SoakArgs) -> Result<ExitCode> {
    if !(1..=1440).contains(&args.minutes) {
        bail!("--minutes takes 1 to 1440");
    }
    let Some(disk) = args.disk.disk()? else {
        bail!("the soak pages to a disk: leave out --no-disk");
    };
    install_missing_tools()?;
    let code = image::bench::soak(&image::bench::SoakOptions {
        minutes: args.minutes,
        mem_mib: args.mem,
        seed: args.seed,
        disk,
        kernel_args: args.kernel_args,
    })?;
    Ok(ExitCode::from(code))
}

/// What `run` and `bench` need on a fresh machine, as `test` does: missing QEMU (and the ISO
/// tools) installed with apt-get when running as root, or the exact command to run.
fn install_missing_tools() -> Result<()> {
    if let SetupOutcome::Installed(packages) = tools::setup()? {
        eprintln!("setup: installed {}", packages.join(" "));
    }
    Ok(())
}

fn setup() -> Result<()> {
    match tools::setup()? {
        SetupOutcome::AlreadyPresent => {
            eprintln!("setup: qemu-system-x86_64, xorriso and OVMF are installed")
        }
        SetupOutcome::Installed(packages) => {
            eprintln!("setup: installed {}", packages.join(" "))
        }
    }
    Ok(())
}

fn test(cargo_args: &[String]) -> Result<ExitCode> {
    setup()?;
    image::build_all(Profile::Release)
        .context("building the kernel and the boot archive before the tests")?;
    let status = Command::new(cargo_program())
        .current_dir(image::workspace_root())
        .args(["test", "--workspace"])
        .args(cargo_args)
        .status()
        .context("could not run cargo test")?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

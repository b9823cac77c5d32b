//! Linux in the same QEMU, for comparison: Debian's cloud kernel ([`kernel`]) booted with an
//! initramfs ([`initramfs`]) whose `/init` is the static program of `linux-workloads/`,
//! which runs the same workload (the same fill and checks, from the same library) with the
//! virtio disk as its swap and prints the same figures on the serial console.
//!
//! A boot of the microkernel (`init=PROGRAM args=... mem=SIZE`) has its Linux counterpart
//! ([`cmdline_for`]): `workload=PROGRAM args=... workload_memory=SIZE`, the memory limit
//! applying to the workload's processes through a memory cgroup (Linux itself does not fit
//! in the 16 MiB of the paper's machine; see docs/decisions.md).

pub mod initramfs;
pub mod kernel;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::kernel_build::{cargo_program, STRIPPED_ENV};

/// The package of the Linux program and its binary.
pub const PROGRAM_PACKAGE: &str = "linux-workloads";
/// The target it is built for (static, so the initramfs needs no libraries).
pub const PROGRAM_TARGET: &str = "x86_64-unknown-linux-gnu";
/// The workloads the program knows (`workload=`).
pub const WORKLOADS: &[&str] = &["sheeptest", "nonaim"];
/// Kernel arguments every Linux boot gets: its console on the serial port, few messages, a
/// panic ends the machine (QEMU runs with `-no-reboot`), and the host tells time.
pub const BASE_ARGS: &[&str] = &["console=ttyS0", "quiet", "panic=-1"];

/// What QEMU boots for Linux.
#[derive(Clone, Debug)]
pub struct LinuxGuest {
    pub kernel: kernel::LinuxKernel,
    /// `target/linux/initramfs.cpio`.
    pub initramfs: PathBuf,
}

/// `target/linux`.
pub fn linux_dir() -> PathBuf {
    crate::target_dir().join("linux")
}

/// Fetches the kernel if needed, builds the program and writes the initramfs (with the boot
/// manifest's data files at its root).
pub fn prepare() -> Result<LinuxGuest> {
    let kernel = kernel::ensure()?;
    let program = build_program()?;
    let modules = kernel::load_order(&kernel.modules, kernel::DISK_MODULES)?;
    let manifest = crate::manifest::Manifest::load(&crate::manifest::manifest_path())?;
    let files = manifest
        .files()
        .iter()
        .map(|file| (file.name.clone(), file.contents()))
        .collect();
    let bytes = initramfs::build(&initramfs::Contents {
        init: program,
        modules,
        files,
    })?;
    let initramfs = linux_dir().join("initramfs.cpio");
    std::fs::write(&initramfs, bytes)
        .with_context(|| format!("writing {}", initramfs.display()))?;
    Ok(LinuxGuest { kernel, initramfs })
}

/// `cargo build -p linux-workloads --release --target x86_64-unknown-linux-gnu`, statically
/// linked, into `target/linux/build` (so its flags never touch the host tool's builds).
pub fn build_program_command(root: &Path) -> Command {
    let mut command = Command::new(cargo_program());
    command.current_dir(root).args([
        "build",
        "--release",
        "-p",
        PROGRAM_PACKAGE,
        "--target",
        PROGRAM_TARGET,
    ]);
    for name in STRIPPED_ENV {
        command.env_remove(name);
    }
    command
        .env("CARGO_TARGET_DIR", program_target_dir(root))
        // With an explicit --target these flags reach only the program's crates, not build
        // scripts. The program carries no debug information into the initramfs.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            ["-Ctarget-feature=+crt-static", "-Cstrip=debuginfo"].join("\x1f"),
        );
    command
}

fn program_target_dir(root: &Path) -> PathBuf {
    root.join("target").join("linux").join("build")
}

fn build_program() -> Result<PathBuf> {
    let root = crate::workspace_root();
    let mut command = build_program_command(&root);
    let status = command
        .status()
        .context("could not run cargo to build the Linux workload program")?;
    if !status.success() {
        bail!(
            "building {PROGRAM_PACKAGE} for {PROGRAM_TARGET} failed ({status}); a static glibc \
             program needs glibc's static library (install `{}`)",
            crate::tools::install_command(&["libc6-dev"])
        );
    }
    let binary = program_target_dir(&root)
        .join(PROGRAM_TARGET)
        .join("release")
        .join(PROGRAM_PACKAGE);
    if !binary.is_file() {
        bail!("{} was not built", binary.display());
    }
    Ok(binary)
}

/// Added under `-icount`: an idle CPU's clock there jumps to its next timer, which for
/// Linux's tickless idle is tens of milliseconds each time it waits for the disk (sheeptest
/// 4 x 64 MiB counted 395 G "instructions" for 13,361 disk operations); polling instead, it
/// counts the instructions it runs while waiting, as a busy CPU would.
pub const ICOUNT_ARGS: &[&str] = &["idle=poll"];

/// The Linux kernel command line for a boot of the microkernel with arguments `args`: the
/// program (`init=`) becomes `workload=`, `args=` stays, `mem=` becomes the workload's memory
/// limit; other arguments (the microkernel's own: `swap=`, `log=`, `swapper=`) are dropped;
/// [`ICOUNT_ARGS`] under `icount`.
pub fn cmdline_for(args: &[String], icount: bool) -> Result<Vec<String>> {
    let value = |key: &str| {
        args.iter()
            .rev()
            .find_map(|arg| arg.strip_prefix(key)?.strip_prefix('='))
    };
    let program = value("init").context("a boot without init= has no Linux counterpart")?;
    if !WORKLOADS.contains(&program) {
        bail!(
            "the Linux program cannot run {program} (it runs: {}); see linux-workloads/src/main.rs",
            WORKLOADS.join(", ")
        );
    }
    let mut line: Vec<String> = BASE_ARGS.iter().map(|arg| arg.to_string()).collect();
    if icount {
        line.extend(ICOUNT_ARGS.iter().map(|arg| arg.to_string()));
    }
    line.push(format!("workload={program}"));
    if let Some(workload_args) = value("args") {
        line.push(format!("args={workload_args}"));
    }
    if let Some(memory) = value("mem") {
        line.push(format!("workload_memory={memory}"));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_microkernel_boot_becomes_its_linux_counterpart() {
        let ours = strings(&[
            "init=sheeptest",
            "args=4,4M,1",
            "log=warn",
            "mem=16M",
            "swapper=off",
        ]);
        assert_eq!(
            cmdline_for(&ours, false).unwrap(),
            strings(&[
                "console=ttyS0",
                "quiet",
                "panic=-1",
                "workload=sheeptest",
                "args=4,4M,1",
                "workload_memory=16M"
            ])
        );
        let unlimited = cmdline_for(&strings(&["init=sheeptest"]), false).unwrap();
        assert_eq!(unlimited.last().unwrap(), "workload=sheeptest");
        let counted = cmdline_for(&ours, true).unwrap();
        assert_eq!(counted[3], "idle=poll", "{counted:?}");
    }

    #[test]
    fn only_known_workloads_have_a_counterpart() {
        let error = cmdline_for(&strings(&["init=bench_ipc"]), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot run bench_ipc"), "{error}");
        assert!(cmdline_for(&strings(&["mem=16M"]), false).is_err());
    }

    #[test]
    fn the_program_is_built_static_into_its_own_directory() {
        let command = build_program_command(Path::new("/ws"));
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(
            args,
            [
                "build",
                "--release",
                "-p",
                "linux-workloads",
                "--target",
                "x86_64-unknown-linux-gnu"
            ]
        );
        let envs: Vec<_> = command.get_envs().collect();
        assert!(envs.contains(&(
            std::ffi::OsStr::new("CARGO_TARGET_DIR"),
            Some(std::ffi::OsStr::new("/ws/target/linux/build"))
        )));
        assert!(envs.contains(&(
            std::ffi::OsStr::new("CARGO_ENCODED_RUSTFLAGS"),
            Some(std::ffi::OsStr::new(
                "-Ctarget-feature=+crt-static\x1f-Cstrip=debuginfo"
            ))
        )));
    }
}

//! Builds the kernel ELF with a nested `cargo build` for the bare-metal target.
//!
//! The same command, with other packages, builds the user programs (`guest_build`).
//!
//! The nested build uses its own target directory (`target/guest`): integration tests call this
//! from inside an outer `cargo test`, which holds the lock on the main target directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The bare-metal target the kernel is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Environment variables an outer cargo (or make) sets that would derail the nested build:
/// target and flags meant for the host crates, and a jobserver the nested cargo cannot join.
pub(crate) const STRIPPED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
];

/// Cargo profile of the kernel build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

impl Profile {
    /// `Debug` when `debug` is set (the `--debug` flag), else `Release`.
    pub fn from_debug_flag(debug: bool) -> Self {
        if debug {
            Profile::Debug
        } else {
            Profile::Release
        }
    }

    /// Name of the profile's output directory below `target/<triple>/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }
}

/// `target/guest`: the target directory of the nested kernel build.
pub fn guest_target_dir() -> PathBuf {
    crate::target_dir().join("guest")
}

/// Where the kernel ELF of `profile` ends up.
pub fn kernel_path(profile: Profile) -> PathBuf {
    guest_binary_path(profile, "microkernel")
}

/// Where binary `name` of a guest build of `profile` ends up.
pub fn guest_binary_path(profile: Profile, name: &str) -> PathBuf {
    guest_target_dir()
        .join(KERNEL_TARGET)
        .join(profile.dir_name())
        .join(name)
}

/// The `cargo` to run: `$CARGO` (set when we run under cargo) or `cargo` from `PATH`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds the kernel and returns the path of its ELF. Compiler output goes to our stderr.
pub fn build_kernel(profile: Profile) -> Result<PathBuf> {
    let root = crate::workspace_root();
    crate::toolchain::ensure_guest_target(&root)?;
    let mut command = kernel_build_command(&root, profile);
    let status = command.status().with_context(|| {
        format!(
            "could not run {:?} to build the kernel",
            command.get_program()
        )
    })?;
    if !status.success() {
        bail!("kernel build failed ({status}); the compiler's messages are above");
    }
    let elf = kernel_path(profile);
    if !elf.is_file() {
        bail!(
            "kernel build succeeded but {} does not exist: is the kernel binary still named \
             `microkernel`?",
            elf.display()
        );
    }
    Ok(elf)
}

fn kernel_build_command(root: &Path, profile: Profile) -> Command {
    guest_build_command(root, profile, &["microkernel"])
}

/// `cargo build -p <package>... --target x86_64-unknown-none [--release]` into `target/guest`,
/// with the outer cargo's environment stripped (see [`STRIPPED_ENV`]).
pub fn guest_build_command(root: &Path, profile: Profile, packages: &[&str]) -> Command {
    let mut command = Command::new(cargo_program());
    command.current_dir(root).arg("build");
    for package in packages {
        command.args(["-p", package]);
    }
    command.args(["--target", KERNEL_TARGET]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    for name in STRIPPED_ENV {
        command.env_remove(name);
    }
    command.env("CARGO_TARGET_DIR", root.join("target").join("guest"));
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_command_targets_the_guest_dir() {
        let root = Path::new("/src/ws");
        let command = kernel_build_command(root, Profile::Release);
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(
            args,
            [
                "build",
                "-p",
                "microkernel",
                "--target",
                KERNEL_TARGET,
                "--release"
            ]
        );
        let envs: Vec<_> = command.get_envs().collect();
        assert!(envs.contains(&(
            std::ffi::OsStr::new("CARGO_TARGET_DIR"),
            Some(std::ffi::OsStr::new("/src/ws/target/guest"))
        )));
        for name in [
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_MAKEFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
        ] {
            assert!(envs.contains(&(std::ffi::OsStr::new(name), None)), "{name}");
        }
        let debug = kernel_build_command(root, Profile::Debug);
        assert!(!debug.get_args().any(|arg| arg == "--release"));
    }

    #[test]
    fn kernel_path_follows_the_profile() {
        assert!(
            kernel_path(Profile::Debug).ends_with("guest/x86_64-unknown-none/debug/microkernel")
        );
        assert!(kernel_path(Profile::Release).ends_with("release/microkernel"));
    }
}

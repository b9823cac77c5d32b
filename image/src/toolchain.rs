//! The guest target of the pinned toolchain: checked before a guest build, added with rustup
//! when missing (rustup installs `rust-toolchain.toml`'s targets only when it installs the
//! toolchain itself, so a toolchain that was already there may lack it).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The target the kernel and the user programs are built for.
pub const GUEST_TARGET: &str = "x86_64-unknown-none";

/// The command that adds the guest target, as a person would type it.
pub fn add_target_command() -> String {
    format!("rustup target add {GUEST_TARGET}")
}

/// Whether the toolchain whose sysroot is `sysroot` has the guest target's standard library.
pub fn sysroot_has_target(sysroot: &Path, target: &str) -> bool {
    sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

/// The sysroot of the toolchain that builds in `root` (`rustc --print sysroot` there, so
/// `rust-toolchain.toml` picks it).
fn sysroot(root: &Path) -> Result<PathBuf> {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(root)
        .output()
        .context("could not run `rustc --print sysroot`: is Rust installed (rustup)?")?;
    if !output.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}

/// Makes sure the toolchain used in `root` can build for [`GUEST_TARGET`]: adds it with
/// `rustup target add` when it is missing, or fails naming the command to run.
pub fn ensure_guest_target(root: &Path) -> Result<()> {
    let sysroot = sysroot(root)?;
    if sysroot_has_target(&sysroot, GUEST_TARGET) {
        return Ok(());
    }
    eprintln!(
        "image: the toolchain lacks the {GUEST_TARGET} target; running `{}`",
        add_target_command()
    );
    let status = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .current_dir(root)
        .status();
    match status {
        Ok(status) if status.success() && sysroot_has_target(&sysroot, GUEST_TARGET) => Ok(()),
        Ok(status) => bail!(
            "`{}` failed ({status}); run it yourself in {}",
            add_target_command(),
            root.display()
        ),
        Err(error) => bail!(
            "the toolchain lacks the {GUEST_TARGET} target and rustup could not be run \
             ({error}); install rustup and run `{}`",
            add_target_command()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysroot_has_a_target_when_its_library_directory_exists() {
        let dir = std::env::temp_dir().join(format!("image-sysroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lib/rustlib/x86_64-unknown-linux-gnu/lib")).unwrap();
        assert!(!sysroot_has_target(&dir, GUEST_TARGET));
        std::fs::create_dir_all(dir.join("lib/rustlib/x86_64-unknown-none/lib")).unwrap();
        assert!(sysroot_has_target(&dir, GUEST_TARGET));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_command_names_the_target() {
        assert_eq!(
            add_target_command(),
            "rustup target add x86_64-unknown-none"
        );
    }

    #[test]
    fn the_toolchain_used_here_has_the_guest_target() {
        ensure_guest_target(&crate::workspace_root()).unwrap();
    }
}

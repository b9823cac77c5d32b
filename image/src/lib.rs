//! Host tool library: builds the kernel, the user programs and the boot archive, makes boot
//! media and boots them in QEMU.
//!
//! `main.rs` (the `cargo image` command) and the QEMU integration tests in `tests/` both use it.

pub mod archive;
pub mod bench;
pub mod cmdline;
pub mod disk;
pub mod disk_image;
pub mod guest_build;
pub mod iso;
pub mod kernel_build;
pub mod linux;
pub mod manifest;
pub mod new_pager;
pub mod plot;
pub mod qemu;
pub mod report;
pub mod toolchain;
pub mod tools;

use std::path::{Path, PathBuf};

pub use disk::{Disk, DiskImage, DiskSize};
pub use guest_build::{build_all, Built};
pub use kernel_build::{build_kernel, Profile};
pub use qemu::{boot, Boot, BootOptions, Media, Outcome};

/// The workspace root: the nearest ancestor of this crate's source directory (or, if the tool was
/// moved away from its sources, of the current directory) whose `Cargo.toml` has `[workspace]`.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    find_workspace_root(manifest_dir)
        .or_else(|| {
            std::env::current_dir()
                .ok()
                .and_then(|dir| find_workspace_root(&dir))
        })
        .unwrap_or_else(|| manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf())
}

/// `<workspace root>/target`: everything the tool writes goes below it.
pub fn target_dir() -> PathBuf {
    workspace_root().join("target")
}

fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| is_workspace_manifest(&dir.join("Cargo.toml")))
        .map(Path::to_path_buf)
}

fn is_workspace_manifest(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|text| text.lines().any(|line| line.trim() == "[workspace]"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        assert!(
            is_workspace_manifest(&root.join("Cargo.toml")),
            "{}",
            root.display()
        );
        assert!(root.join("image").is_dir());
    }
}

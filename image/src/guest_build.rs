//! Builds everything the guest boots: the kernel, the user programs of the boot manifest, and
//! the boot archive packing them and the manifest's data files
//! (`target/guest/archive-<profile>.bin`).
//!
//! Two nested cargo invocations, one after the other, into the same `target/guest`: the kernel
//! alone, then every program. They must stay separate: cargo unifies the features of the
//! packages one invocation builds, and the programs turn on libipc's `runtime` feature, which
//! the kernel must never get.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::kernel_build::{self, guest_build_command, Profile};
use crate::manifest::{self, Manifest};

/// What [`build_all`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The kernel ELF.
    pub kernel: PathBuf,
    /// The boot archive.
    pub archive: PathBuf,
    /// Each program's archive name and ELF, in archive order.
    pub programs: Vec<(String, PathBuf)>,
}

/// Where the boot archive of `profile` is written.
pub fn archive_path(profile: Profile) -> PathBuf {
    kernel_build::guest_target_dir().join(format!("archive-{}.bin", profile.dir_name()))
}

/// Builds the kernel, the programs of `servers/boot.toml` and the boot archive (the programs,
/// then the manifest's data files).
pub fn build_all(profile: Profile) -> Result<Built> {
    let manifest = Manifest::load(&manifest::manifest_path())?;
    let kernel = kernel_build::build_kernel(profile)?;
    let programs = build_programs(profile, &manifest)?;
    let archive = archive_path(profile);
    let data: Vec<(String, Vec<u8>)> = manifest
        .files()
        .iter()
        .map(|file| (file.name.clone(), file.contents()))
        .collect();
    pack_archive(&programs, &data, &archive)?;
    Ok(Built {
        kernel,
        archive,
        programs,
    })
}

/// Builds the programs of `manifest` in one cargo invocation; returns (archive name, ELF).
pub fn build_programs(profile: Profile, manifest: &Manifest) -> Result<Vec<(String, PathBuf)>> {
    let root = crate::workspace_root();
    let packages = manifest.packages();
    let mut command = guest_build_command(&root, profile, &packages);
    let status = command.status().with_context(|| {
        format!(
            "could not run {:?} to build the user programs",
            command.get_program()
        )
    })?;
    if !status.success() {
        bail!(
            "building the user programs ({}) failed ({status}); the compiler's messages are above",
            packages.join(", ")
        );
    }
    manifest
        .programs()
        .iter()
        .map(|program| {
            let elf = kernel_build::guest_binary_path(profile, &program.package);
            if !elf.is_file() {
                bail!(
                    "the build of package `{}` succeeded but {} does not exist: a program's \
                     package must have a binary of the same name",
                    program.package,
                    elf.display()
                );
            }
            Ok((program.name.clone(), elf))
        })
        .collect()
}

/// Writes the archive of `programs` (name, ELF path) and then `data` (name, contents) to
/// `output`, unless it already holds exactly those bytes. The file is replaced atomically
/// (written aside, then renamed), so a concurrent boot never reads half an archive.
pub fn pack_archive(
    programs: &[(String, PathBuf)],
    data: &[(String, Vec<u8>)],
    output: &Path,
) -> Result<()> {
    let mut files = Vec::with_capacity(programs.len() + data.len());
    for (name, elf) in programs {
        let bytes = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
        files.push((name.as_str(), bytes));
    }
    for (name, bytes) in data {
        files.push((name.as_str(), bytes.clone()));
    }
    let bytes = crate::archive::write(&files)?;
    if std::fs::read(output).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let partial = output.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, output)
        .with_context(|| format!("renaming {} to {}", partial.display(), output.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use libipc::abi::archive::Archive;

    #[test]
    fn archive_path_follows_the_profile() {
        assert!(archive_path(Profile::Release).ends_with("target/guest/archive-release.bin"));
        assert!(archive_path(Profile::Debug).ends_with("target/guest/archive-debug.bin"));
    }

    #[test]
    fn programs_build_in_one_invocation_without_the_kernel() {
        let manifest = Manifest::parse(
            "[[program]]\nname = \"a\"\npackage = \"hello\"\n\
             [[program]]\nname = \"b\"\npackage = \"bootstrap\"\n\
             [[program]]\nname = \"c\"\npackage = \"hello\"\n",
            "test",
        )
        .unwrap();
        let command = guest_build_command(Path::new("/ws"), Profile::Debug, &manifest.packages());
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(
            args,
            [
                "build",
                "-p",
                "hello",
                "-p",
                "bootstrap",
                "--target",
                "x86_64-unknown-none"
            ]
        );
    }

    #[test]
    fn pack_writes_a_parsable_archive_once() {
        let dir = std::env::temp_dir().join(format!("image-pack-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (one, two) = (dir.join("one"), dir.join("two"));
        std::fs::write(&one, b"first program").unwrap();
        std::fs::write(&two, vec![9u8; 5000]).unwrap();
        let programs = vec![("one".to_string(), one), ("two".to_string(), two.clone())];
        let output = dir.join("out/archive.bin");
        let data = vec![("three".to_string(), b"data".to_vec())];
        pack_archive(&programs, &data, &output).unwrap();
        let bytes = std::fs::read(&output).unwrap();
        let archive = Archive::parse(&bytes).unwrap();
        assert_eq!(archive.find("one").unwrap().data, b"first program");
        assert_eq!(archive.find("two").unwrap().data.len(), 5000);
        assert_eq!(archive.file(2).unwrap().name, "three");
        assert_eq!(archive.find("three").unwrap().data, b"data");

        // Unchanged contents leave the file alone; changed contents replace it.
        let modified = std::fs::metadata(&output).unwrap().modified().unwrap();
        pack_archive(&programs, &data, &output).unwrap();
        assert_eq!(
            std::fs::metadata(&output).unwrap().modified().unwrap(),
            modified
        );
        std::fs::write(&two, b"second").unwrap();
        pack_archive(&programs, &data, &output).unwrap();
        let bytes = std::fs::read(&output).unwrap();
        assert_eq!(
            Archive::parse(&bytes).unwrap().find("two").unwrap().data,
            b"second"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("out")).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_program_elf_is_reported() {
        let programs = vec![("x".to_string(), PathBuf::from("/no/such/elf"))];
        let error = format!(
            "{:#}",
            pack_archive(&programs, &[], Path::new("/tmp/unused-archive")).unwrap_err()
        );
        assert!(error.contains("/no/such/elf"), "{error}");
    }
}

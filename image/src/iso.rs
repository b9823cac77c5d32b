//! Makes a hybrid BIOS/UEFI ISO that boots the kernel through Limine.
//!
//! Limine itself is not vendored: `LIMINE_DIR` names a Limine 8.x (or newer) binary release,
//! laid out like Limine's `v8.x-binary` branch. It is only read, never written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::tools;

/// Files the ISO cannot do without.
pub const REQUIRED_FILES: [&str; 4] = [
    "limine-bios.sys",
    "limine-bios-cd.bin",
    "limine-uefi-cd.bin",
    "BOOTX64.EFI",
];

/// Where the boot archive goes inside the ISO, when there is one.
pub const ARCHIVE_ISO_PATH: &str = "/boot/archive";

const EXPECTED_RELEASE: &str =
    "expected a Limine 8.x (or newer) binary release, e.g. a checkout of \
     Limine's v8.x-binary branch";

/// A validated Limine binary release directory.
#[derive(Clone, Debug)]
pub struct LimineRelease {
    dir: PathBuf,
}

impl LimineRelease {
    /// The release named by `LIMINE_DIR`.
    pub fn from_env() -> Result<Self> {
        match std::env::var_os("LIMINE_DIR") {
            Some(dir) if !dir.is_empty() => Self::open(Path::new(&dir)),
            _ => bail!("LIMINE_DIR is not set: building the ISO needs it to name a directory; {EXPECTED_RELEASE}"),
        }
    }

    /// Checks that `dir` holds the files the ISO needs.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!(
                "LIMINE_DIR={} is not a directory; {EXPECTED_RELEASE}",
                dir.display()
            );
        }
        let missing: Vec<&str> = REQUIRED_FILES
            .iter()
            .copied()
            .filter(|file| !dir.join(file).is_file())
            .collect();
        if !missing.is_empty() {
            bail!(
                "LIMINE_DIR={} lacks {}; {EXPECTED_RELEASE}",
                dir.display(),
                missing.join(", ")
            );
        }
        Ok(LimineRelease {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What goes on the ISO.
#[derive(Clone, Debug)]
pub struct IsoSpec<'a> {
    pub kernel: &'a Path,
    pub cmdline: &'a str,
    /// A boot archive, loaded by Limine as a module at [`ARCHIVE_ISO_PATH`].
    pub archive: Option<&'a Path>,
}

/// `target/iso`.
pub fn iso_dir() -> PathBuf {
    crate::target_dir().join("iso")
}

/// Where [`build_iso`] writes the ISO.
pub fn iso_path() -> PathBuf {
    iso_dir().join("microkernel.iso")
}

/// The `limine.conf` (Limine 8 syntax) booting `/boot/kernel` with `cmdline`, plus `module`
/// (a path inside the ISO) if given. Both `kernel_path:` (Limine 8.x) and `path:` (newer) are
/// written.
pub fn limine_conf(cmdline: &str, module: Option<&str>) -> String {
    let mut conf = String::from("timeout: 0\nverbose: yes\n\n/microkernel\n");
    conf.push_str("    protocol: limine\n");
    conf.push_str("    kernel_path: boot():/boot/kernel\n");
    conf.push_str("    path: boot():/boot/kernel\n");
    if !cmdline.is_empty() {
        let _ = writeln!(conf, "    cmdline: {cmdline}");
    }
    if let Some(module) = module {
        let _ = writeln!(conf, "    module_path: boot():{module}");
    }
    conf
}

/// Builds `target/iso/microkernel.iso` from `spec` and returns its path.
pub fn build_iso(limine: &LimineRelease, spec: &IsoSpec<'_>) -> Result<PathBuf> {
    crate::cmdline::check_line(spec.cmdline)?;
    let xorriso = tools::xorriso()?;
    let iso_dir = iso_dir();
    let root = iso_dir.join("root");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let limine_dir = root.join("boot/limine");
    let efi_dir = root.join("EFI/BOOT");
    for dir in [&limine_dir, &efi_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    copy(spec.kernel, &root.join("boot/kernel"))?;
    let module = match spec.archive {
        Some(archive) => {
            copy(
                archive,
                &root.join(ARCHIVE_ISO_PATH.trim_start_matches('/')),
            )?;
            Some(ARCHIVE_ISO_PATH)
        }
        None => None,
    };
    let conf_path = limine_dir.join("limine.conf");
    std::fs::write(&conf_path, limine_conf(spec.cmdline, module))
        .with_context(|| format!("writing {}", conf_path.display()))?;
    for file in [
        "limine-bios.sys",
        "limine-bios-cd.bin",
        "limine-uefi-cd.bin",
    ] {
        copy(&limine.dir.join(file), &limine_dir.join(file))?;
    }
    for file in ["BOOTX64.EFI", "BOOTIA32.EFI"] {
        let source = limine.dir.join(file);
        if file == "BOOTX64.EFI" || source.is_file() {
            copy(&source, &efi_dir.join(file))?;
        }
    }

    let iso = iso_path();
    let _ = std::fs::remove_file(&iso);
    tools::run_captured(
        Command::new(&xorriso).args(xorriso_args(&root, &iso)),
        "xorriso (making the ISO)",
    )?;
    let limine_c = limine.dir.join("limine.c");
    if limine_c.is_file() {
        let host_tool = build_host_tool(&limine_c, &iso_dir.join("limine"))?;
        tools::run_captured(
            Command::new(&host_tool).arg("bios-install").arg(&iso),
            "limine bios-install",
        )?;
    } else {
        eprintln!(
            "warning: {} has no limine.c, so `limine bios-install` was skipped: the ISO boots \
             as a CD only (not as a disk image)",
            limine.dir.display()
        );
    }
    Ok(iso)
}

/// The xorriso command line making a hybrid BIOS (El Torito) / UEFI ISO of `root`.
pub fn xorriso_args(root: &Path, iso: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "-as",
        "mkisofs",
        "-R",
        "-r",
        "-J",
        "-b",
        "boot/limine/limine-bios-cd.bin",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-boot-info-table",
        "-hfsplus",
        "-apm-block-size",
        "2048",
        "--efi-boot",
        "boot/limine/limine-uefi-cd.bin",
        "-efi-boot-part",
        "--efi-boot-image",
        "--protective-msdos-label",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(root.into());
    args.push("-o".into());
    args.push(iso.into());
    args
}

/// Compiles Limine's host tool from `limine_c` into `output` unless it is already newer.
fn build_host_tool(limine_c: &Path, output: &Path) -> Result<PathBuf> {
    let modified = |path: &Path| path.metadata().and_then(|meta| meta.modified()).ok();
    let up_to_date = match (modified(output), modified(limine_c)) {
        (Some(built), Some(source)) => built >= source,
        _ => false,
    };
    if !up_to_date {
        let cc = tools::cc()?;
        tools::run_captured(
            Command::new(cc)
                .args(["-O2", "-std=c99"])
                .arg(limine_c)
                .arg("-o")
                .arg(output),
            "compiling limine.c",
        )?;
    }
    Ok(output.to_path_buf())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("image-test-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn limine_conf_without_module() {
        assert_eq!(
            limine_conf("test=all log=debug", None),
            "timeout: 0\nverbose: yes\n\n/microkernel\n    protocol: limine\n    \
             kernel_path: boot():/boot/kernel\n    path: boot():/boot/kernel\n    \
             cmdline: test=all log=debug\n"
        );
    }

    #[test]
    fn limine_conf_with_module_and_no_cmdline() {
        let conf = limine_conf("", Some(ARCHIVE_ISO_PATH));
        assert!(!conf.contains("cmdline"), "{conf}");
        assert!(
            conf.ends_with("    module_path: boot():/boot/archive\n"),
            "{conf}"
        );
    }

    #[test]
    fn empty_limine_dir_names_the_missing_files() {
        let dir = TempDir::new("empty-limine");
        let error = LimineRelease::open(&dir.0).unwrap_err().to_string();
        for file in REQUIRED_FILES {
            assert!(error.contains(file), "{error}");
        }
        assert!(
            error.contains("Limine 8.x (or newer) binary release"),
            "{error}"
        );
        assert!(error.contains("v8.x-binary"), "{error}");
    }

    #[test]
    fn partial_limine_dir_names_only_what_is_missing() {
        let dir = TempDir::new("partial-limine");
        for file in [
            "limine-bios.sys",
            "limine-bios-cd.bin",
            "limine-uefi-cd.bin",
        ] {
            std::fs::write(dir.0.join(file), b"").unwrap();
        }
        let error = LimineRelease::open(&dir.0).unwrap_err().to_string();
        assert!(error.contains("lacks BOOTX64.EFI;"), "{error}");
        std::fs::write(dir.0.join("BOOTX64.EFI"), b"").unwrap();
        assert!(LimineRelease::open(&dir.0).is_ok());
    }

    #[test]
    fn missing_limine_dir_is_reported() {
        let error = LimineRelease::open(Path::new("/no/such/limine"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/no/such/limine is not a directory"),
            "{error}"
        );
    }

    #[test]
    fn xorriso_makes_a_hybrid_image() {
        let args = xorriso_args(
            Path::new("/t/iso/root"),
            Path::new("/t/iso/microkernel.iso"),
        );
        let args: Vec<&str> = args.iter().map(|arg| arg.to_str().unwrap()).collect();
        assert_eq!(&args[..2], ["-as", "mkisofs"]);
        assert!(args.ends_with(&["/t/iso/root", "-o", "/t/iso/microkernel.iso"]));
        assert!(args.contains(&"--protective-msdos-label"));
    }
}

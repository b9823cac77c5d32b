//! Debian's cloud kernel for the Linux guest: fetched with `apt-get download` (no root
//! needed) and unpacked with `dpkg-deb -x` into `target/linux/kernel/`, once; and the
//! modules the guest must load for its virtio disk, in dependency order (read from each
//! module's `.modinfo` section, since the package ships no `modules.dep`: `depmod` makes it
//! at install time).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::tools;

/// The metapackage that names the current cloud kernel (virtio drivers, no hardware drivers).
pub const PACKAGE: &str = "linux-image-cloud-amd64";
/// The modules the guest needs for its disk: the PCI transport and the block driver.
pub const DISK_MODULES: &[&str] = &["virtio_pci", "virtio_blk"];

/// An unpacked kernel package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxKernel {
    /// The kernel's release, e.g. `6.1.0-57-cloud-amd64`.
    pub release: String,
    /// The compressed kernel (`bzImage`), which QEMU boots with `-kernel`.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>`.
    pub modules: PathBuf,
}

/// `target/linux/kernel`: where the package is unpacked.
pub fn unpack_dir() -> PathBuf {
    crate::target_dir().join("linux").join("kernel")
}

/// The kernel unpacked in `dir`, if there is one (the newest release if several).
pub fn find_unpacked(dir: &Path) -> Option<LinuxKernel> {
    let boot = std::fs::read_dir(dir.join("boot")).ok()?;
    let mut releases: Vec<String> = boot
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_prefix("vmlinuz-").map(str::to_string)
        })
        .filter(|release| dir.join("lib/modules").join(release).is_dir())
        .collect();
    releases.sort();
    let release = releases.pop()?;
    Some(LinuxKernel {
        vmlinuz: dir.join("boot").join(format!("vmlinuz-{release}")),
        modules: dir.join("lib/modules").join(&release),
        release,
    })
}

/// The kernel in `target/linux/kernel`, downloaded and unpacked first if it is not there.
pub fn ensure() -> Result<LinuxKernel> {
    let dir = unpack_dir();
    if let Some(kernel) = find_unpacked(&dir) {
        return Ok(kernel);
    }
    let package = kernel_package()?;
    let download = crate::target_dir().join("linux").join("download");
    std::fs::create_dir_all(&download)
        .with_context(|| format!("creating {}", download.display()))?;
    eprintln!("linux: downloading {package} (Debian's cloud kernel) with apt-get download");
    let apt_get = tools::find_program("apt-get").with_context(|| {
        format!(
            "apt-get not found: the Linux comparison fetches Debian's {PACKAGE} with it \
             (install `{}`)",
            tools::install_command(&["apt"])
        )
    })?;
    tools::run_captured(
        Command::new(apt_get)
            .current_dir(&download)
            .args(["download", &package]),
        &format!("apt-get download {package}"),
    )?;
    let deb = std::fs::read_dir(&download)
        .with_context(|| format!("reading {}", download.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with(&format!("{package}_")) && name.ends_with(".deb")
                })
        })
        .with_context(|| {
            format!(
                "apt-get download left no {package}_*.deb in {}",
                download.display()
            )
        })?;
    let dpkg_deb = tools::find_program("dpkg-deb").with_context(|| {
        format!(
            "dpkg-deb not found: it unpacks the kernel package (install `{}`)",
            tools::install_command(&["dpkg"])
        )
    })?;
    // Unpack beside the final place and rename, so a half-unpacked kernel is never used.
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    tools::run_captured(
        Command::new(dpkg_deb).arg("-x").arg(&deb).arg(&partial),
        &format!("dpkg-deb -x {}", deb.display()),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
    find_unpacked(&dir).with_context(|| {
        format!(
            "{deb} holds no boot/vmlinuz-<release> with lib/modules/<release>",
            deb = deb.display()
        )
    })
}

/// The versioned package the metapackage depends on (`linux-image-<release>`), from
/// `apt-cache depends`; refreshes the package lists once when running as root and apt knows
/// no such package.
fn kernel_package() -> Result<String> {
    let apt_cache = tools::find_program("apt-cache").with_context(|| {
        format!(
            "apt-cache not found: the Linux comparison fetches Debian's {PACKAGE} with apt \
             (install `{}`)",
            tools::install_command(&["apt"])
        )
    })?;
    let query = || -> Result<Option<String>> {
        let output = Command::new(&apt_cache)
            .args(["depends", PACKAGE])
            .output()
            .context("could not run apt-cache")?;
        Ok(output
            .status
            .success()
            .then(|| versioned_dependency(&String::from_utf8_lossy(&output.stdout)))
            .flatten())
    };
    if let Some(package) = query()? {
        return Ok(package);
    }
    if tools::is_root() {
        eprintln!("linux: apt knows no {PACKAGE}; running apt-get update");
        tools::run_captured(Command::new("apt-get").arg("update"), "apt-get update")?;
        if let Some(package) = query()? {
            return Ok(package);
        }
    }
    bail!(
        "apt knows no {PACKAGE} (Debian's cloud kernel, for the Linux comparison): run `sudo \
         apt-get update` (its lists may be empty) on a Debian machine with the main archive \
         in its sources"
    )
}

/// The `linux-image-...` package among `apt-cache depends` output's `Depends:` lines.
pub fn versioned_dependency(apt_cache_depends: &str) -> Option<String> {
    apt_cache_depends.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends:")?.trim();
        (name.starts_with("linux-image-") && !name.starts_with('<')).then(|| name.to_string())
    })
}

/// A module's name as the kernel knows it: the file name without `.ko`, `-` read as `_`.
pub fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    Some(file.strip_suffix(".ko")?.replace('-', "_"))
}

/// The module files `wanted` needs under `modules` (a `lib/modules/<release>` directory),
/// dependencies first; modules built into the kernel (`modules.builtin`) are left out.
pub fn load_order(modules: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>> {
    let builtin = std::fs::read_to_string(modules.join("modules.builtin")).unwrap_or_default();
    let builtin: Vec<String> = builtin
        .lines()
        .filter_map(|line| module_name(Path::new(line)))
        .collect();
    let mut files = BTreeMap::new();
    collect_modules(&modules.join("kernel"), &mut files)?;
    let depends_of = |name: &str| -> Result<Module> {
        if builtin.iter().any(|b| b == name) {
            return Ok(None);
        }
        let path = files.get(name).with_context(|| {
            format!(
                "module {name} is neither built in nor under {}",
                modules.display()
            )
        })?;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let depends = modinfo_depends(&bytes)
            .with_context(|| format!("reading the module information of {}", path.display()))?;
        Ok(Some((path.clone(), depends)))
    };
    order(wanted, depends_of)
}

fn collect_modules(dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_modules(&path, files)?;
        } else if let Some(name) = module_name(&path) {
            files.insert(name, path);
        }
    }
    Ok(())
}

/// What [`order`] learns of a module: its file and the modules it depends on, or `None` for
/// one that needs no loading (built in).
pub type Module = Option<(PathBuf, Vec<String>)>;

/// Dependencies first, each module once: `lookup` gives a module's file and the modules it
/// depends on, or `None` for one that needs no loading (built in).
pub fn order(
    wanted: &[&str],
    mut lookup: impl FnMut(&str) -> Result<Module>,
) -> Result<Vec<PathBuf>> {
    fn visit(
        name: &str,
        lookup: &mut dyn FnMut(&str) -> Result<Module>,
        done: &mut Vec<String>,
        path_so_far: &mut Vec<String>,
        files: &mut Vec<PathBuf>,
    ) -> Result<()> {
        if done.iter().any(|d| d == name) {
            return Ok(());
        }
        if path_so_far.iter().any(|p| p == name) {
            bail!(
                "modules depend on each other in a cycle: {} -> {name}",
                path_so_far.join(" -> ")
            );
        }
        let Some((file, depends)) = lookup(name)? else {
            done.push(name.to_string());
            return Ok(());
        };
        path_so_far.push(name.to_string());
        for dependency in &depends {
            visit(dependency, lookup, done, path_so_far, files)?;
        }
        path_so_far.pop();
        done.push(name.to_string());
        files.push(file);
        Ok(())
    }
    let mut done = Vec::new();
    let mut files = Vec::new();
    for name in wanted {
        visit(name, &mut lookup, &mut done, &mut Vec::new(), &mut files)?;
    }
    Ok(files)
}

/// The `depends=` list of a kernel module (an ELF64 relocatable file): its `.modinfo`
/// section holds NUL-separated `key=value` strings.
pub fn modinfo_depends(elf: &[u8]) -> Result<Vec<String>> {
    let modinfo = section(elf, ".modinfo")?;
    let depends = modinfo
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .unwrap_or(b"");
    let depends = std::str::from_utf8(depends).context("depends= is not UTF-8")?;
    Ok(depends
        .split(',')
        .filter(|name| !name.is_empty())
        .map(|name| name.replace('-', "_"))
        .collect())
}

/// The bytes of section `wanted` of a little-endian ELF64 file.
fn section<'a>(elf: &'a [u8], wanted: &str) -> Result<&'a [u8]> {
    let bytes = |at: usize, len: usize| -> Result<&'a [u8]> {
        at.checked_add(len)
            .and_then(|end| elf.get(at..end))
            .context("the file ends inside a header or section")
    };
    let u16_at = |at: usize| -> Result<usize> {
        Ok(u16::from_le_bytes(bytes(at, 2)?.try_into().expect("2 bytes")).into())
    };
    let u32_at = |at: usize| -> Result<usize> {
        Ok(u32::from_le_bytes(bytes(at, 4)?.try_into().expect("4 bytes")) as usize)
    };
    let u64_at = |at: usize| -> Result<usize> {
        let value = u64::from_le_bytes(bytes(at, 8)?.try_into().expect("8 bytes"));
        usize::try_from(value).context("an offset beyond the address space")
    };
    if bytes(0, 6)? != b"\x7fELF\x02\x01" {
        bail!("not a little-endian ELF64 file");
    }
    let (table, entry_size, count, names_index) =
        (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    if entry_size < 0x40 {
        bail!("section headers of {entry_size} bytes");
    }
    let header = |index: usize| table + index * entry_size;
    let names = header(names_index);
    let names = bytes(u64_at(names + 0x18)?, u64_at(names + 0x20)?)?;
    for index in 0..count {
        let at = header(index);
        let name_at = u32_at(at)?;
        let name = names
            .get(name_at..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .context("a section name outside the name table")?;
        if name == wanted.as_bytes() {
            return bytes(u64_at(at + 0x18)?, u64_at(at + 0x20)?);
        }
    }
    bail!("no {wanted} section")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 relocatable file: the null section, `.modinfo` holding `modinfo`,
    /// and the section-name table.
    fn module_elf(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.modinfo\0.shstrtab\0";
        let mut elf = vec![0u8; 0x40];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let modinfo_at = elf.len();
        elf.extend_from_slice(modinfo);
        let names_at = elf.len();
        elf.extend_from_slice(names);
        while !elf.len().is_multiple_of(8) {
            elf.push(0);
        }
        let table = elf.len();
        let mut section = |name: u32, offset: usize, size: usize| {
            let mut header = vec![0u8; 0x40];
            header[..4].copy_from_slice(&name.to_le_bytes());
            header[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            header[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&header);
        };
        section(0, 0, 0);
        section(1, modinfo_at, modinfo.len());
        section(10, names_at, names.len());
        elf[0x28..0x30].copy_from_slice(&(table as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        elf
    }

    #[test]
    fn depends_come_from_the_modinfo_section() {
        let elf = module_elf(b"license=GPL\0depends=virtio_ring,virtio-pci-modern-dev\0name=x\0");
        assert_eq!(
            modinfo_depends(&elf).unwrap(),
            ["virtio_ring", "virtio_pci_modern_dev"]
        );
        let none = module_elf(b"depends=\0name=virtio_ring\0");
        assert!(modinfo_depends(&none).unwrap().is_empty());
        let absent = module_elf(b"name=y\0");
        assert!(modinfo_depends(&absent).unwrap().is_empty());
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(modinfo_depends(b"not an elf").is_err());
        let elf = module_elf(b"depends=a\0");
        assert!(
            modinfo_depends(&elf[..elf.len() - 100]).is_err(),
            "cut in the section headers"
        );
        let mut no_section = elf.clone();
        // Rename `.modinfo` in the name table.
        let at = no_section
            .windows(8)
            .position(|w| w == b".modinfo")
            .unwrap();
        no_section[at + 1] = b'M';
        assert!(modinfo_depends(&no_section).is_err());
    }

    #[test]
    fn modules_load_after_their_dependencies_each_once() {
        let graph: &[(&str, &[&str])] = &[
            (
                "virtio_pci",
                &["virtio_ring", "virtio_pci_modern_dev", "virtio"],
            ),
            ("virtio_blk", &["virtio", "virtio_ring"]),
            ("virtio", &["virtio_ring"]),
            ("virtio_ring", &[]),
            ("virtio_pci_modern_dev", &[]),
        ];
        let lookup = |name: &str| -> Result<Module> {
            let (_, depends) = graph.iter().find(|(n, _)| *n == name).expect("known");
            Ok(Some((
                PathBuf::from(format!("{name}.ko")),
                depends.iter().map(|d| d.to_string()).collect(),
            )))
        };
        let files = order(&["virtio_pci", "virtio_blk"], lookup).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "virtio_ring.ko",
                "virtio_pci_modern_dev.ko",
                "virtio.ko",
                "virtio_pci.ko",
                "virtio_blk.ko"
            ]
        );
    }

    #[test]
    fn built_in_modules_are_skipped_and_cycles_refused() {
        let builtin = |name: &str| -> Result<Module> {
            Ok((name != "virtio")
                .then(|| (PathBuf::from(format!("{name}.ko")), vec!["virtio".into()])))
        };
        let files = order(&["virtio_blk"], builtin).unwrap();
        assert_eq!(files, [PathBuf::from("virtio_blk.ko")]);

        let cycle = |name: &str| -> Result<Module> {
            let other = if name == "a" { "b" } else { "a" };
            Ok(Some((PathBuf::from(name), vec![other.to_string()])))
        };
        let error = order(&["a"], cycle).unwrap_err().to_string();
        assert!(error.contains("cycle"), "{error}");
    }

    #[test]
    fn the_versioned_package_is_read_from_apt_cache() {
        let output = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n";
        assert_eq!(
            versioned_dependency(output).as_deref(),
            Some("linux-image-6.1.0-57-cloud-amd64")
        );
        assert_eq!(versioned_dependency("linux-image-cloud-amd64\n"), None);
        assert_eq!(
            versioned_dependency("x\n  Depends: <linux-image-virtual>\n"),
            None
        );
    }

    #[test]
    fn module_names_as_the_kernel_knows_them() {
        assert_eq!(
            module_name(Path::new("a/virtio-pci-modern-dev.ko")).as_deref(),
            Some("virtio_pci_modern_dev")
        );
        assert_eq!(
            module_name(Path::new("kernel/drivers/block/virtio_blk.ko")).as_deref(),
            Some("virtio_blk")
        );
        assert_eq!(module_name(Path::new("modules.order")), None);
    }

    #[test]
    fn an_unpacked_kernel_is_found_by_its_release() {
        let dir = std::env::temp_dir().join(format!("image-linux-kernel-{}", std::process::id()));
        let release = "6.1.0-57-cloud-amd64";
        std::fs::create_dir_all(dir.join("boot")).unwrap();
        assert_eq!(find_unpacked(&dir), None);
        std::fs::write(dir.join("boot").join(format!("vmlinuz-{release}")), b"").unwrap();
        assert_eq!(find_unpacked(&dir), None, "no modules yet");
        std::fs::create_dir_all(dir.join("lib/modules").join(release)).unwrap();
        let kernel = find_unpacked(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(kernel.release, release);
        assert!(kernel.vmlinuz.ends_with(format!("boot/vmlinuz-{release}")));
        assert!(kernel.modules.ends_with(format!("lib/modules/{release}")));
    }
}

//! The boot manifest, `servers/boot.toml`: which programs go into the boot archive, in order,
//! and the data files after them.
//!
//! ```toml
//! [[program]]
//! name = "bootstrap"      # name in the archive (at most 47 bytes, unique)
//! package = "bootstrap"   # cargo package whose binary of the same name is the program
//!
//! [[program]]
//! name = "zpager"
//! package = "zpager"
//! start = true            # bootstrap starts it at boot (default false)
//! daemon = true           # it serves for good: bootstrap does not wait for it (default false)
//! disk = "absent"         # started only without a disk ("present": only with one)
//! devices = true          # bootstrap gives it the device master port (default false)
//! collocated = true       # a server linked into the kernel, started as a collocated task
//!                         # (default false; its name must be its package's, or
//!                         # `<package>.<instance>` for another instance of it)
//!
//! [[file]]
//! name = "nonaim_data"    # a data file, after the programs (names unique among all files)
//! pattern_bytes = 1048576 # its size; its contents libipc::abi::archive::pattern_byte
//! ```
//!
//! A package lives in `servers/<package>/`, in `tests/<package>/` (the fuzzer), or at the
//! workspace's top level (`default-pager`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Where the manifest lives, relative to the workspace root.
pub const MANIFEST_PATH: &str = "servers/boot.toml";

/// A validated manifest: at least one program, names (of programs and data files) valid for
/// the archive and distinct, package names that are plain cargo package names, data files of
/// 1 byte to [`MAX_DATA_FILE_BYTES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    programs: Vec<Program>,
    files: Vec<DataFile>,
}

/// The largest data file (the archive is one boot module in guest memory).
pub const MAX_DATA_FILE_BYTES: u64 = 64 << 20;

/// A data file of the boot archive, after the programs: `pattern_bytes` bytes of the
/// verifiable pattern (`libipc::abi::archive::pattern_byte`), which a reader checks without
/// a copy of its own.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// The file's name in the archive.
    pub name: String,
    /// Its size in bytes.
    pub pattern_bytes: u64,
}

impl DataFile {
    /// The file's contents.
    pub fn contents(&self) -> Vec<u8> {
        use libipc::abi::archive::pattern_word;
        let mut bytes: Vec<u8> = (0..self.pattern_bytes.div_ceil(8))
            .flat_map(|index| pattern_word(index).to_le_bytes())
            .collect();
        bytes.truncate(self.pattern_bytes as usize);
        bytes
    }
}

/// One program of the boot archive.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// The file's name in the archive.
    pub name: String,
    /// The cargo package that builds it (its binary has the package's name).
    pub package: String,
    /// Whether bootstrap starts the program at boot (read by servers/bootstrap/build.rs).
    #[serde(default)]
    pub start: bool,
    /// Whether the program serves for good, so that bootstrap does not wait for it to exit
    /// (read by servers/bootstrap/build.rs).
    #[serde(default)]
    pub daemon: bool,
    /// Started only when a disk is (`"present"`) or is not (`"absent"`) there; always when
    /// absent (read by servers/bootstrap/build.rs).
    #[serde(default)]
    pub disk: Option<DiskCondition>,
    /// Whether bootstrap answers the program's lookup of the device master port (read by
    /// servers/bootstrap/build.rs).
    #[serde(default)]
    pub devices: bool,
    /// Whether bootstrap starts it collocated, as a server linked into the kernel (read by
    /// servers/bootstrap/build.rs); its name is then its package's, a dependency of the
    /// kernel, or `<package>.<instance>` for another instance of it.
    #[serde(default)]
    pub collocated: bool,
}

/// When a program that depends on the disk is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskCondition {
    Present,
    Absent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    program: Vec<Program>,
    #[serde(default)]
    file: Vec<DataFile>,
}

impl Manifest {
    /// Parses and validates manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let raw: RawManifest =
            toml::from_str(text).with_context(|| format!("{origin} is not a valid manifest"))?;
        if raw.program.is_empty() {
            bail!(
                "{origin} lists no programs (add `[[program]]` tables with `name` and `package`)"
            );
        }
        let mut first_use: HashMap<&str, usize> = HashMap::new();
        for (index, program) in raw.program.iter().enumerate() {
            let number = index + 1;
            let what = format!("{origin}: program {number} ({:?})", program.name);
            crate::archive::check_name(&program.name).with_context(|| what.clone())?;
            if let Some(first) = first_use.insert(&program.name, number) {
                bail!("{what}: the name is already used by program {first}");
            }
            check_package(&program.package).with_context(|| what.clone())?;
            let instance_of = |package: &str| {
                program.name == package
                    || program
                        .name
                        .strip_prefix(package)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .is_some_and(|instance| !instance.is_empty())
            };
            if program.collocated && !instance_of(&program.package) {
                bail!(
                    "{what}: a collocated server is named as its package ({:?}), which the \
                     kernel links in, or as an instance of it (`{}.<instance>`)",
                    program.package,
                    program.package
                );
            }
        }
        for (index, file) in raw.file.iter().enumerate() {
            let what = format!("{origin}: file {} ({:?})", index + 1, file.name);
            crate::archive::check_name(&file.name).with_context(|| what.clone())?;
            if let Some(program) = first_use.get(file.name.as_str()) {
                bail!("{what}: the name is already used by program {program}");
            }
            if raw.file[..index].iter().any(|f| f.name == file.name) {
                bail!("{what}: the name is already used by another file");
            }
            if !(1..=MAX_DATA_FILE_BYTES).contains(&file.pattern_bytes) {
                bail!(
                    "{what}: pattern_bytes is {}, not between 1 and {MAX_DATA_FILE_BYTES}",
                    file.pattern_bytes
                );
            }
        }
        Ok(Manifest {
            programs: raw.program,
            files: raw.file,
        })
    }

    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the boot manifest {}", path.display()))?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// The programs, in archive order.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// The data files, in archive order (after the programs).
    pub fn files(&self) -> &[DataFile] {
        &self.files
    }

    /// The packages to build, each once, in order of first appearance.
    pub fn packages(&self) -> Vec<&str> {
        let mut packages: Vec<&str> = Vec::new();
        for program in &self.programs {
            if !packages.contains(&program.package.as_str()) {
                packages.push(&program.package);
            }
        }
        packages
    }
}

/// `<workspace root>/servers/boot.toml`.
pub fn manifest_path() -> PathBuf {
    crate::workspace_root().join(MANIFEST_PATH)
}

/// A cargo package name: ASCII letters, digits, `-` and `_`, not starting with `-` (so it can
/// never read as an option of the cargo command line).
fn check_package(package: &str) -> Result<()> {
    if package.is_empty() {
        bail!("the package is empty");
    }
    let valid = package
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid || package.starts_with('-') {
        bail!("package {package:?} is not a cargo package name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!("{:#}", Manifest::parse(text, "boot.toml").unwrap_err())
    }

    #[test]
    fn parses_programs_in_order() {
        let manifest = Manifest::parse(
            "# comment\n[[program]]\nname = \"bootstrap\"\npackage = \"bootstrap\"\n\
             [[program]]\nname = \"hello\"\npackage = \"hello\"\n\
             [[program]]\nname = \"hello-again\"\npackage = \"hello\"\n",
            "boot.toml",
        )
        .unwrap();
        let names: Vec<&str> = manifest
            .programs()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["bootstrap", "hello", "hello-again"]);
        assert_eq!(manifest.packages(), ["bootstrap", "hello"]);
    }

    #[test]
    fn start_and_daemon_default_to_false() {
        let manifest = Manifest::parse(
            "[[program]]\nname = \"a\"\npackage = \"a\"\n\
             [[program]]\nname = \"b\"\npackage = \"b\"\nstart = true\ndaemon = true\n",
            "boot.toml",
        )
        .unwrap();
        let flags: Vec<(bool, bool)> = manifest
            .programs()
            .iter()
            .map(|p| (p.start, p.daemon))
            .collect();
        assert_eq!(flags, [(false, false), (true, true)]);
    }

    #[test]
    fn the_workspace_manifest_is_valid() {
        let manifest = Manifest::load(&manifest_path()).unwrap();
        assert!(manifest.programs().iter().any(|p| p.name == "bootstrap"));
        for package in manifest.packages() {
            let root = crate::workspace_root();
            let found = [
                root.join("servers").join(package),
                root.join("tests").join(package),
                root.join(package),
            ]
            .iter()
            .any(|dir| dir.join("Cargo.toml").is_file());
            assert!(
                found,
                "no package {package} in servers/, tests/ or the workspace root"
            );
        }
    }

    #[test]
    fn refuses_bad_names() {
        let long = "n".repeat(48);
        let message = error(&format!(
            "[[program]]\nname = \"{long}\"\npackage = \"x\"\n"
        ));
        assert!(
            message.contains("program 1") && message.contains("at most 47"),
            "{message}"
        );
        let message = error("[[program]]\nname = \"\"\npackage = \"x\"\n");
        assert!(message.contains("name is empty"), "{message}");
        let message = error("[[program]]\nname = \"a\\u0000b\"\npackage = \"x\"\n");
        assert!(message.contains("control character"), "{message}");
    }

    #[test]
    fn refuses_duplicate_names() {
        let message = error(
            "[[program]]\nname = \"a\"\npackage = \"x\"\n\
             [[program]]\nname = \"b\"\npackage = \"x\"\n\
             [[program]]\nname = \"a\"\npackage = \"y\"\n",
        );
        assert!(
            message.contains("program 3 (\"a\")") && message.contains("used by program 1"),
            "{message}"
        );
    }

    #[test]
    fn refuses_bad_packages() {
        let message = error("[[program]]\nname = \"a\"\npackage = \"\"\n");
        assert!(message.contains("package is empty"), "{message}");
        let message = error("[[program]]\nname = \"a\"\npackage = \"--release\"\n");
        assert!(message.contains("not a cargo package name"), "{message}");
        let message = error("[[program]]\nname = \"a\"\npackage = \"a b\"\n");
        assert!(message.contains("not a cargo package name"), "{message}");
    }

    #[test]
    fn refuses_malformed_toml_and_unknown_keys() {
        let message = error("[[program]]\nname = \"a\"\n");
        assert!(message.contains("missing field `package`"), "{message}");
        let message = error("[[program]]\nname = \"a\"\npackage = \"a\"\npath = \"x\"\n");
        assert!(message.contains("unknown field `path`"), "{message}");
        let message = error("[[programs]]\nname = \"a\"\npackage = \"a\"\n");
        assert!(message.contains("unknown field `programs`"), "{message}");
        let message = error("[[program]\n");
        assert!(
            message.contains("boot.toml is not a valid manifest"),
            "{message}"
        );
    }

    #[test]
    fn refuses_an_empty_manifest() {
        assert!(error("").contains("lists no programs"));
        assert!(error("# nothing\n").contains("lists no programs"));
    }

    #[test]
    fn data_files_follow_the_programs_with_their_pattern() {
        let manifest = Manifest::parse(
            "[[program]]\nname = \"a\"\npackage = \"a\"\n\
             [[file]]\nname = \"data\"\npattern_bytes = 21\n",
            "boot.toml",
        )
        .unwrap();
        let file = &manifest.files()[0];
        assert_eq!(file.name, "data");
        let contents = file.contents();
        assert_eq!(contents.len(), 21);
        assert_eq!(libipc::abi::archive::pattern_mismatch(0, &contents), None);
        assert_eq!(contents[9], libipc::abi::archive::pattern_byte(9));
    }

    #[test]
    fn refuses_bad_data_files() {
        let program = "[[program]]\nname = \"a\"\npackage = \"a\"\n";
        let message = error(&format!(
            "{program}[[file]]\nname = \"a\"\npattern_bytes = 1\n"
        ));
        assert!(message.contains("used by program 1"), "{message}");
        let message = error(&format!(
            "{program}[[file]]\nname = \"d\"\npattern_bytes = 1\n\
             [[file]]\nname = \"d\"\npattern_bytes = 2\n"
        ));
        assert!(
            message.contains("file 2") && message.contains("another file"),
            "{message}"
        );
        let message = error(&format!(
            "{program}[[file]]\nname = \"d\"\npattern_bytes = 0\n"
        ));
        assert!(message.contains("not between 1 and"), "{message}");
        let message = error(&format!("{program}[[file]]\nname = \"d\"\n"));
        assert!(
            message.contains("missing field `pattern_bytes`"),
            "{message}"
        );
        let message = error(&format!("{program}[[file]]\nname = \"d\"\nsize = 3\n"));
        assert!(message.contains("unknown field `size`"), "{message}");
    }

    #[test]
    fn a_collocated_server_is_named_as_its_package_which_the_kernel_links() {
        for name in ["e", "echo.", "echop", "echo_peer"] {
            let message = error(&format!(
                "[[program]]\nname = \"{name}\"\npackage = \"echo\"\ncollocated = true\n"
            ));
            assert!(
                message.contains("named as its package"),
                "{name}: {message}"
            );
        }
        let second = "[[program]]\nname = \"echo.peer\"\npackage = \"echo\"\ncollocated = true\n";
        assert!(Manifest::parse(second, "test").is_ok(), "an instance");
        // Every collocated server of the real manifest is a dependency of the kernel.
        let manifest = Manifest::load(&manifest_path()).unwrap();
        let kernel =
            std::fs::read_to_string(crate::workspace_root().join("microkernel/Cargo.toml"))
                .unwrap();
        let kernel: toml::Table = kernel.parse().unwrap();
        let linked = |package: &str| {
            kernel
                .get("target")
                .and_then(|t| t.as_table())
                .into_iter()
                .flat_map(|targets| targets.values())
                .chain(core::iter::once(&toml::Value::Table(kernel.clone())))
                .filter_map(|t| t.get("dependencies").and_then(|d| d.as_table()))
                .any(|deps| deps.contains_key(package))
        };
        let collocated: Vec<_> = manifest
            .programs()
            .iter()
            .filter(|p| p.collocated)
            .collect();
        assert!(
            !collocated.is_empty(),
            "the manifest has a collocated server"
        );
        for program in collocated {
            assert!(
                linked(&program.package),
                "{} is not linked into the kernel",
                program.package
            );
        }
    }
}

//! Finds the host programs and firmware the tool needs, with install hints; `cargo image setup`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Something the tool needs from the host system and the Debian package that provides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// What is missing, as shown to the user.
    pub tool: &'static str,
    /// Debian package that provides it.
    pub package: &'static str,
    /// Whether `cargo image setup` installs it.
    pub installed_by_setup: bool,
}

pub const QEMU: Requirement = Requirement {
    tool: "qemu-system-x86_64",
    package: "qemu-system-x86",
    installed_by_setup: true,
};
pub const XORRISO: Requirement = Requirement {
    tool: "xorriso",
    package: "xorriso",
    installed_by_setup: true,
};
pub const OVMF: Requirement = Requirement {
    tool: "OVMF UEFI firmware (/usr/share/OVMF/OVMF_CODE_4M.fd)",
    package: "ovmf",
    installed_by_setup: true,
};
pub const CC: Requirement = Requirement {
    tool: "cc (C compiler, for Limine's limine.c)",
    package: "gcc",
    installed_by_setup: false,
};

/// What `cargo image setup` makes sure of.
pub const SETUP_REQUIREMENTS: [Requirement; 3] = [QEMU, XORRISO, OVMF];

/// Pairs of (firmware code, variable store template), in order of preference.
const OVMF_CANDIDATES: &[(&str, &str)] = &[
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
];

impl Requirement {
    /// The error text for a missing requirement: what is missing and how to install it.
    pub fn missing_message(&self) -> String {
        let setup = if self.installed_by_setup {
            " (or run `cargo image setup`)"
        } else {
            ""
        };
        format!(
            "{} not found: install it with `{}`{setup}",
            self.tool,
            install_command(&[self.package])
        )
    }
}

/// The command a user should run to install `packages`.
pub fn install_command(packages: &[&str]) -> String {
    format!("sudo apt-get install -y {}", packages.join(" "))
}

/// Looks `name` up in `PATH` (or takes it as a path if it has a slash).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn require_program(name: &str, requirement: &Requirement) -> Result<PathBuf> {
    find_program(name).ok_or_else(|| anyhow::anyhow!(requirement.missing_message()))
}

/// `qemu-system-x86_64`.
pub fn qemu() -> Result<PathBuf> {
    require_program("qemu-system-x86_64", &QEMU)
}

/// `xorriso`.
pub fn xorriso() -> Result<PathBuf> {
    require_program("xorriso", &XORRISO)
}

/// `cc`.
pub fn cc() -> Result<PathBuf> {
    require_program("cc", &CC)
}

/// OVMF firmware: its read-only code and the template of its variable store (which must be
/// copied before use, since the firmware writes to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ovmf {
    pub code: PathBuf,
    pub vars: PathBuf,
}

/// Finds OVMF: `OVMF_CODE` and `OVMF_VARS` from the environment if both are set, else Debian's.
pub fn ovmf() -> Result<Ovmf> {
    if let (Some(code), Some(vars)) = (std::env::var_os("OVMF_CODE"), std::env::var_os("OVMF_VARS"))
    {
        let found = Ovmf {
            code: code.into(),
            vars: vars.into(),
        };
        for file in [&found.code, &found.vars] {
            if !file.is_file() {
                bail!("OVMF_CODE/OVMF_VARS: {} does not exist", file.display());
            }
        }
        return Ok(found);
    }
    OVMF_CANDIDATES
        .iter()
        .map(|(code, vars)| Ovmf {
            code: code.into(),
            vars: vars.into(),
        })
        .find(|found| found.code.is_file() && found.vars.is_file())
        .ok_or_else(|| anyhow::anyhow!(OVMF.missing_message()))
}

fn is_present(requirement: &Requirement) -> bool {
    match *requirement {
        QEMU => qemu().is_ok(),
        XORRISO => xorriso().is_ok(),
        OVMF => ovmf().is_ok(),
        CC => cc().is_ok(),
        _ => false,
    }
}

/// What `setup` found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupOutcome {
    /// Everything was already there.
    AlreadyPresent,
    /// These packages were installed.
    Installed(Vec<&'static str>),
}

/// Makes sure QEMU, xorriso and OVMF are installed, installing the missing ones with `apt-get`
/// when running as root; otherwise fails with the command to run.
pub fn setup() -> Result<SetupOutcome> {
    let missing: Vec<&'static str> = SETUP_REQUIREMENTS
        .iter()
        .filter(|requirement| !is_present(requirement))
        .map(|requirement| requirement.package)
        .collect();
    if missing.is_empty() {
        return Ok(SetupOutcome::AlreadyPresent);
    }
    let command = install_command(&missing);
    if !is_root() {
        bail!(
            "missing system packages {}: install them with `{command}`",
            missing.join(", ")
        );
    }
    let Some(apt_get) = find_program("apt-get") else {
        bail!(
            "missing system packages {} and no apt-get here: install the equivalents with your \
             package manager (on Debian: `{command}`)",
            missing.join(", ")
        );
    };
    eprintln!("setup: installing {}", missing.join(" "));
    run_checked(Command::new(&apt_get).arg("update"), "apt-get update")?;
    run_checked(
        Command::new(&apt_get)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y"])
            .args(&missing),
        "apt-get install",
    )?;
    if let Some(still) = SETUP_REQUIREMENTS
        .iter()
        .find(|requirement| !is_present(requirement))
    {
        bail!(
            "after installing {}: {}",
            missing.join(" "),
            still.missing_message()
        );
    }
    Ok(SetupOutcome::Installed(missing))
}

fn run_checked(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Whether we run as root, as `id -u` says (no libc call needed).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `command` with captured output; on failure the error holds what it printed.
pub fn run_captured(command: &mut Command, what: &str) -> Result<()> {
    let program = command.get_program().to_owned();
    let output = command
        .output()
        .with_context(|| format!("could not run {}", Path::new(&program).display()))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_message_names_tool_and_install_command() {
        assert_eq!(
            QEMU.missing_message(),
            "qemu-system-x86_64 not found: install it with \
             `sudo apt-get install -y qemu-system-x86` (or run `cargo image setup`)"
        );
        let cc = CC.missing_message();
        assert!(
            cc.contains("`sudo apt-get install -y gcc`") && !cc.contains("setup"),
            "{cc}"
        );
    }

    #[test]
    fn install_command_lists_packages() {
        assert_eq!(
            install_command(&["xorriso", "ovmf"]),
            "sudo apt-get install -y xorriso ovmf"
        );
    }

    #[test]
    fn find_program_searches_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-anywhere").is_none());
        assert!(find_program("/bin/sh").is_some());
    }
}

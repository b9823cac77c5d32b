//! A fresh machine: `cargo image setup` and `cargo image run` find QEMU and xorriso missing
//! and, as root, install them with apt-get (here a stand-in that records its calls and puts
//! stand-in programs on the PATH); not as root, they name the command to run. No kernel is
//! built and nothing is installed on the machine.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory of stand-ins: `id` (the real one), and `apt-get` that logs its arguments
/// and, for `install`, makes `qemu-system-x86_64` and `xorriso` (or fails when `failing`).
fn stand_ins(name: &str, failing: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("image-fresh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let id = ["/usr/bin/id", "/bin/id"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("id");
    std::os::unix::fs::symlink(id, dir.join("id")).unwrap();
    // Only shell built-ins and absolute paths: the PATH holds nothing else.
    let here = dir.display();
    let script = if failing {
        format!("#!/bin/sh\necho \"$@\" >> '{here}/apt.log'\nexit 100\n")
    } else {
        format!(
            "#!/bin/sh\n\
             echo \"$@\" >> '{here}/apt.log'\n\
             if [ \"$1\" = install ]; then\n\
             \x20 for tool in qemu-system-x86_64 xorriso; do\n\
             \x20   printf '#!/bin/sh\\nexit 0\\n' > '{here}'/$tool; /bin/chmod +x '{here}'/$tool\n\
             \x20 done\n\
             fi\n"
        )
    };
    let apt = dir.join("apt-get");
    std::fs::write(&apt, script).unwrap();
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
    // OVMF (files, found through the environment) counts as present.
    for file in ["code.fd", "vars.fd"] {
        std::fs::write(dir.join(file), b"").unwrap();
    }
    dir
}

fn image(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_image"))
        .args(args)
        .env("PATH", dir)
        .env("OVMF_CODE", dir.join("code.fd"))
        .env("OVMF_VARS", dir.join("vars.fd"))
        .output()
        .expect("could not run the image binary")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn setup_installs_what_a_fresh_machine_lacks() {
    let dir = stand_ins("setup", false);
    let output = image(&dir, &["setup"]);
    let message = String::from_utf8_lossy(&output.stderr).into_owned();
    let log = std::fs::read_to_string(dir.join("apt.log")).unwrap_or_default();
    if is_root() {
        assert!(output.status.success(), "{message}");
        assert!(
            message.contains("setup: installed qemu-system-x86 xorriso"),
            "{message}"
        );
        assert_eq!(log, "update\ninstall -y qemu-system-x86 xorriso\n");
        assert!(dir.join("qemu-system-x86_64").exists());
    } else {
        assert!(!output.status.success());
        assert!(
            message.contains("sudo apt-get install -y qemu-system-x86 xorriso"),
            "{message}"
        );
        assert!(log.is_empty(), "apt-get ran without root: {log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_installs_qemu_before_anything_else() {
    // apt-get fails here: `run` stops at the install, before building anything.
    let dir = stand_ins("run", true);
    let output = image(&dir, &["run"]);
    let message = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{message}");
    if is_root() {
        assert!(message.contains("apt-get update failed"), "{message}");
        let log = std::fs::read_to_string(dir.join("apt.log")).unwrap_or_default();
        assert_eq!(log, "update\n");
    } else {
        assert!(message.contains("sudo apt-get install -y"), "{message}");
    }
    assert!(!message.contains("Compiling"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

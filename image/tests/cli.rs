//! Host-only checks of the `image` command's errors that need no kernel build or QEMU.

use std::process::{Command, Output};

fn image(args: &[&str], limine_dir: Option<&std::path::Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_image"));
    command.args(args);
    match limine_dir {
        Some(dir) => command.env("LIMINE_DIR", dir),
        None => command.env_remove("LIMINE_DIR"),
    };
    command.output().expect("could not run the image binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn iso_with_empty_limine_dir_names_the_missing_files() {
    let dir = std::env::temp_dir().join(format!("image-cli-empty-limine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = image(&["iso"], Some(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    for file in [
        "limine-bios.sys",
        "limine-bios-cd.bin",
        "limine-uefi-cd.bin",
        "BOOTX64.EFI",
    ] {
        assert!(message.contains(file), "{message}");
    }
    assert!(
        message.contains("Limine 8.x (or newer) binary release"),
        "{message}"
    );
}

#[test]
fn iso_without_limine_dir_says_so() {
    let output = image(&["iso"], None);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("LIMINE_DIR is not set"), "{message}");
}

#[test]
fn uefi_without_iso_is_refused() {
    let output = image(&["run", "--uefi"], None);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("--uefi needs --iso"), "{message}");
}

#[test]
fn kernel_arguments_with_spaces_are_refused() {
    let output = image(&["run", "--", "a b"], None);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("whitespace"), "{message}");
}

#[test]
fn bad_disk_options_name_the_problem_before_any_build() {
    for (args, complaint) in [
        (&["run", "--disk-size", "256"][..], "has no unit"),
        (&["run", "--disk-size", "2T"], "unknown unit `T`"),
        (&["bench", "ipc", "--disk-size", "0M"], "at least 1M"),
        (
            &["run", "--disk-fault", "erase@1"],
            "unknown operation `erase`",
        ),
        (&["run", "--disk-fault", "write@8,"], "empty fault rule"),
        (
            &["run", "--disk-size", "1M", "--disk-fault", "write@2048"],
            "past the end of the 1M disk",
        ),
        (&["run", "--disk-iops", "0"], "--disk-iops"),
        (
            &["run", "--no-disk", "--disk-iops", "10"],
            "cannot be used with",
        ),
    ] {
        let output = image(args, None);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(complaint), "{args:?}: {message}");
        assert!(!message.contains("Compiling"), "{args:?} built: {message}");
    }
}

#[test]
fn command_lines_longer_than_the_kernel_keeps_are_refused() {
    let long = format!("args={}", "a".repeat(1100));
    let output = image(&["run", "--", &long], None);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("takes at most 1024"), "{message}");
}

//! Host-only checks of `image bench`'s refusals, which come before any build or boot.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_image"))
        .arg("bench")
        .args(args)
        .output()
        .expect("could not run the image binary")
}

fn refused_with(args: &[&str], expected: &str) {
    let output = bench(args);
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
    assert!(message.contains(expected), "{args:?}: {message}");
}

#[test]
fn bad_suite_names_are_refused() {
    refused_with(&["IPC"], "lower-case letters, digits, `_` and `-`");
    refused_with(&["a=b"], "lower-case letters, digits, `_` and `-`");
}

#[test]
fn a_suite_without_its_program_is_refused() {
    refused_with(
        &["no_such_suite"],
        "needs a program named bench_no_such_suite",
    );
}

#[test]
fn init_is_the_tools_choice() {
    refused_with(&["ipc", "--", "init=hello"], "chooses init= itself");
}

#[test]
fn a_benchmark_always_has_a_timeout() {
    refused_with(
        &["ipc", "--timeout", "0"],
        "--timeout must be at least 1 second",
    );
}

#[test]
fn only_the_compared_workloads_run_on_linux() {
    refused_with(&["ipc", "--linux"], "suite ipc has no Linux counterpart");
}

#[test]
fn the_swapper_is_sheeptests_to_switch() {
    refused_with(
        &["sheeptest", "--", "swapper=off"],
        "boots with the swapper on and off itself",
    );
}

//! Collocated servers: the echo server (`servers/echo`) linked into the kernel and started by
//! bootstrap as a collocated task, and the same crate as a task (`echo_task`), pass the same
//! suite (`colloc_test`): answers, deferred replies, rights passing, quotas, their name in
//! the task list, calls of a second collocated server (direct from the collocated build,
//! and one in which that server fails), and a failure that ends the server, not the kernel.

use kernel_tests::{boot, Outcome};

const SUITE: [&str; 9] = [
    "null",
    "device_refusals",
    "echo",
    "deferred",
    "rights",
    "memory",
    "quota",
    "identity",
    "peer",
];

fn cases(build: &str) -> Vec<String> {
    SUITE
        .iter()
        .map(|case| format!("colloc_{build}_{case}"))
        .collect()
}

/// The collocated server's failure makes bootstrap's status 1 (a daemon that did not exit
/// with 0), after the shell's 0.
fn expect_shell_passed_and_echo_failed(run: &kernel_tests::GuestRun) {
    run.expect_outcome(Outcome::Guest(1));
    run.expect_line_starting_with("shell: done, status 0", "colloc_test's status 0");
    run.expect_line_starting_with(
        "bootstrap: echo exited with status -1",
        "bootstrap's report of the failed collocated server",
    );
}

#[test]
fn a_collocated_server_passes_the_suite_its_task_build_passes() {
    // 32 MiB: a quota of 4 MiB, which stops the server's ports well before its space's
    // 65,535 names.
    let run = boot(
        "a_collocated_server_passes_the_suite_its_task_build_passes",
        r#"sh="run colloc_test" mem=32M"#,
    );
    let mut names = cases("collocated");
    names.extend(cases("task"));
    names.push("colloc_task_crash".into());
    names.push("colloc_collocated_peer_crash".into());
    names.push("colloc_collocated_crash".into());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    run.expect_exactly_ending(&names, Outcome::Guest(1));
    run.expect_line_starting_with(
        "collocated server echo.peer failed: panic: echo: crash requested",
        "the collocated peer's panic in a direct call, reported by name",
    );
    run.expect_line_starting_with(
        "collocated server echo failed: panic: echo: crash requested",
        "the collocated server's panic, reported by name",
    );
    run.expect_line_starting_with(
        "bootstrap: echo.peer exited with status -1",
        "bootstrap's report of the failed collocated peer",
    );
    expect_shell_passed_and_echo_failed(&run);
}

#[test]
fn a_collocated_server_that_faults_is_reported_by_name_and_the_kernel_goes_on() {
    let run = boot(
        "a_collocated_server_that_faults_is_reported_by_name_and_the_kernel_goes_on",
        r#"sh="run colloc_test fault" mem=32M"#,
    );
    let mut names = cases("task");
    names.push("colloc_task_crash".into());
    names.push("colloc_collocated_fault".into());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    run.expect_exactly_ending(&names, Outcome::Guest(1));
    run.expect_line_starting_with(
        "collocated server echo failed: exception #PF page fault",
        "the collocated server's fault, reported by name",
    );
    expect_shell_passed_and_echo_failed(&run);
}

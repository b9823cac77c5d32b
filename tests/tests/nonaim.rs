//! The NONAIM workload (`servers/nonaim`) as the first task with the disk pager: a small
//! schedule whose every step must run all its jobs without a failure and report its figures,
//! and each job once (`calibrate`), every one passing its own check.

use kernel_tests::{boot_with, direct_options_with_disk, GuestRun, Outcome};
use std::time::Duration;

/// Boots `init=nonaim args=ARGS mem=64M` with a 64 MiB disk and expects exit status 0.
fn nonaim(name: &str, args: &str) -> GuestRun {
    let cmdline = format!("init=nonaim args={args} mem=64M");
    let mut opts = direct_options_with_disk(&cmdline, 64);
    opts.timeout = Some(Duration::from_secs(90));
    let run = boot_with(name, &opts);
    run.expect_outcome(Outcome::Guest(0));
    run
}

/// The number after `key` in `line` (`... key N ...`).
fn number_after(run: &GuestRun, line: &str, key: &str) -> u64 {
    line.split_once(key)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| run.fail(&format!("no number after {key:?} in {line:?}")))
}

#[test]
fn nonaim_steps_run_every_job_without_a_failure() {
    let run = nonaim("nonaim_steps_run_every_job_without_a_failure", "1,2,5,20");
    run.expect_line_containing(
        &[
            "nonaim: schedule 1,2,5,20 users, 10 jobs each",
            "pager default_pager (disk)",
        ],
        "the schedule",
    );
    for users in [1u64, 2, 5, 20] {
        let prefix = format!("nonaim: users {users} jobs ");
        let line = run.expect_line_starting_with(&prefix, "a step's line");
        assert_eq!(
            number_after(&run, line, "jobs "),
            users * 10,
            "every job completes: {line}"
        );
        assert_eq!(
            number_after(&run, line, "failed "),
            0,
            "no job fails: {line}"
        );
        assert!(
            line.contains(" elapsed ") && line.contains(" jpm "),
            "{line}"
        );
        for metric in [
            "jpm",
            "failed",
            "forks_retried",
            "elapsed_s",
            "instructions",
        ] {
            let figure = format!("bench nonaim.{metric}.{users}u ");
            run.expect_line_starting_with(&figure, "a step's figure");
        }
        let failed = run.expect_line_starting_with(&format!("bench nonaim.failed.{users}u "), "");
        assert_eq!(failed, format!("bench nonaim.failed.{users}u 0 jobs"));
    }
    run.expect_line_containing(&["nonaim: schedule done; peak "], "the summary");
    run.expect_line_starting_with("bench nonaim.peak_jpm ", "the peak");
    let most = run.expect_line_starting_with("bench nonaim.max_users_without_failure ", "");
    assert_eq!(most, "bench nonaim.max_users_without_failure 20 users");
}

#[test]
fn nonaim_calibration_runs_each_job_once_and_each_checks_out() {
    let run = nonaim(
        "nonaim_calibration_runs_each_job_once_and_each_checks_out",
        "calibrate",
    );
    let jobs = [
        "add_int",
        "add_double",
        "mul_int",
        "div_double",
        "string",
        "sieve",
        "sort",
        "matrix",
        "mem",
        "page_test",
        "brk_test",
        "fork_test",
        "exec_test",
        "pipe_test",
        "shm_test",
        "file_test",
    ];
    for job in jobs {
        let work = run.expect_line_starting_with(&format!("nonaim: job {job} work "), "a job");
        assert!(work.ends_with("instructions (Passed)"), "{work}");
        run.expect_line_starting_with(&format!("bench nonaim.work.{job} "), "its work");
        run.expect_line_starting_with(&format!("bench nonaim.total.{job} "), "its total");
    }
}

#[test]
fn nonaim_refuses_bad_arguments_with_status_2() {
    let cmdline = "init=nonaim args=5,2 mem=64M";
    let mut opts = direct_options_with_disk(cmdline, 64);
    opts.timeout = Some(Duration::from_secs(60));
    let run = boot_with("nonaim_refuses_bad_arguments_with_status_2", &opts);
    // Any status but 0 ends the guest with code 1; the status is in the kernel's last line.
    run.expect_outcome(Outcome::Guest(1));
    run.expect_line_containing(
        &["nonaim: bad arguments: steps must increase: 2 users after 5"],
        "the refusal",
    );
    run.expect_line_containing(&["(init status 2)"], "exit status 2");
}

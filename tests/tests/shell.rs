//! The shell a default boot ends in (bootstrap starts it): its commands from the kernel's
//! `sh=` option, keystrokes through the console (line editing, history, Ctrl-C stopping a
//! job), the end of input powering the machine off with status 0, and a failing command's
//! status becoming the machine's.

use kernel_tests::{boot_with, direct_options, test_disk, Outcome};
use std::time::Duration;

fn shell(name: &str, cmdline: &str, keys: &[u8]) -> kernel_tests::GuestRun {
    let mut opts = direct_options(cmdline).with_disk(test_disk(64));
    opts.console_input = keys.to_vec();
    opts.timeout = Some(Duration::from_secs(90));
    boot_with(name, &opts)
}

#[test]
fn the_shell_runs_the_commands_of_sh_and_powers_off() {
    let run = shell(
        "the_shell_runs_the_commands_of_sh_and_powers_off",
        r#"mem=64M sh="help; ps; vmstat 1 2; swapinfo; echo all done""#,
        b"",
    );
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_containing(&["ps", "tasks: threads, resident"], "help's list");
    run.expect_line_containing(
        &["id", "name", "threads", "res KiB", "out KiB"],
        "ps's header",
    );
    run.expect_line_containing(&["default_pager", "pager"], "the default pager in ps");
    run.expect_line_containing(&[" shell ", " in"], "the shell in ps");
    run.expect_line_containing(
        &["kern.tasks ", "kern.threads ", "kern.ports "],
        "ps's counts",
    );
    // The memory by kind: every kind named, and the parts add up to the whole.
    let memory = run.expect_line_starting_with("memory KiB: ", "ps's memory by kind");
    let (whole, parts) = memory["memory KiB: ".len()..]
        .split_once(" managed = ")
        .expect("the managed memory, then its parts");
    let whole: u64 = whole.parse().expect("a number of KiB");
    let mut sum = 0;
    for (part, kind) in parts.split(" + ").zip([
        "free",
        "object pages",
        "task page tables",
        "kernel heap",
        "device buffers",
        "kernel page tables",
        "other kernel",
    ]) {
        let (kib, named) = part.split_once(' ').expect("KiB, then the kind");
        assert_eq!(named, kind, "in {memory}");
        let kib: u64 = kib.parse().expect("a number of KiB");
        assert!(kib > 0 || kind == "other kernel", "no {kind} in {memory}");
        sum += kib;
    }
    assert_eq!(sum, whole, "the parts of {memory}");
    run.expect_line_containing(
        &["outside them: kernel image ", "boot modules "],
        "ps's rest",
    );
    // The programs running (bootstrap, the name service, the pagers, the shell) share their
    // text's page tables, and some pages are mapped through them.
    let shared = run.expect_line_starting_with("shared text: ", "ps's shared text");
    let numbers: Vec<u64> = shared
        .split(' ')
        .filter_map(|word| word.parse().ok())
        .collect();
    assert!(
        numbers.len() == 2 && numbers[0] >= 2 && numbers[1] > 0,
        "shared text tables and pages in {shared}"
    );
    run.expect_line_containing(&["free KiB", "pageins", "swpout"], "vmstat's header");
    run.expect_line_containing(
        &["paging space: ", "clusters of 8 pages"],
        "the paging space",
    );
    run.expect_line_starting_with("swapper: on; paging ", "the swapper's state");
    run.expect_line_starting_with("all done", "echo");
    run.expect_line_starting_with("shell: done, status 0", "the end of the script");
    run.expect_line_containing(
        &["bootstrap: shell exited with status 0"],
        "bootstrap's report",
    );
}

#[test]
fn programs_and_workloads_run_from_the_shell_with_their_arguments() {
    let run = shell(
        "programs_and_workloads_run_from_the_shell_with_their_arguments",
        r#"mem=64M sh="sheeptest 2 1M 1; run hello; nonaim 1 2""#,
        b"",
    );
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_containing(
        &[
            "sheeptest: 2 processes x 1024 KiB",
            "the system's default pager",
        ],
        "sheeptest's arguments",
    );
    run.expect_line_starting_with("sheeptest: passed: 2 workers", "sheeptest's verdict");
    run.expect_line_starting_with("hello from user space", "hello");
    run.expect_line_containing(&["nonaim: users 2 ", " failed 0 "], "NONAIM's second step");
}

#[test]
fn a_failing_commands_status_is_the_machines() {
    let run = shell(
        "a_failing_commands_status_is_the_machines",
        r#"sh="echo first; nosuch""#,
        b"",
    );
    run.expect_outcome(Outcome::Guest(1));
    run.expect_line_starting_with("shell: nosuch: no such command", "the complaint");
    run.expect_line_containing(&["bootstrap: shell exited with status 2"], "the status");
}

#[test]
fn typed_lines_are_edited_and_the_end_of_input_powers_off() {
    // "ech" + backspace + "ho hi", Ctrl-U over garbage, the up arrow repeating the last
    // line, then a job stopped by Ctrl-C (typed ahead: the shell sees it at its first look)
    // with its workers, and `ps`.
    let keys =
        b"echx\x7fo hi\rgarbage\x15echo there\r\x1b[A\rsheeptest 2 8M 1000\r\x03echo after\rps\r";
    let run = shell(
        "typed_lines_are_edited_and_the_end_of_input_powers_off",
        "mem=64M",
        keys,
    );
    run.expect_outcome(Outcome::Guest(0));
    let lines: Vec<&str> = run.boot.serial.lines().collect();
    let count = |text: &str| lines.iter().filter(|l| l.trim_end() == text).count();
    assert_eq!(count("hi"), 1, "the edited echo:\n{}", run.boot.serial);
    assert_eq!(
        count("there"),
        2,
        "the line and its repeat:\n{}",
        run.boot.serial
    );
    run.expect_line_starting_with("shell: sheeptest stopped", "Ctrl-C");
    run.expect_line_starting_with("after", "the line after the job");
    // Ctrl-C ended the job's forked workers too: `ps` lists none of its tasks.
    let after = run.boot.serial.split("\nafter").nth(1).unwrap_or("");
    assert!(
        after.contains("tasks") && !after.contains("sheeptest"),
        "the job's tasks outlived Ctrl-C:\n{}",
        run.boot.serial
    );
    run.expect_line_starting_with("shell: end of input; powering off", "the end of input");
}

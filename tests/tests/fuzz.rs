//! The kernel fuzzer (`tests/fuzz`, program `fuzz`): a short run of random and mutated system
//! calls and messages from several tasks at once, one of them killed mid-run each round, must
//! end with every frame, heap byte, port, task, thread, VM object and timer given back, no
//! hang and no panic; and the fuzzer's own census must catch a task left behind holding
//! memory and ports (`leak=1`), or a clean run would prove nothing.

use kernel_tests::{boot, Outcome};

/// The figure `bench fuzz.<name> <value> ...` of `run`'s serial output.
fn figure(run: &kernel_tests::GuestRun, name: &str) -> u64 {
    let prefix = format!("bench fuzz.{name} ");
    let line = run.expect_line_starting_with(&prefix, &format!("the fuzz.{name} figure"));
    line[prefix.len()..]
        .split_whitespace()
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| run.fail(&format!("fuzz.{name}: no number in `{line}`")))
}

#[test]
fn random_calls_from_dying_tasks_leave_nothing_behind() {
    // Each census waits for the kernel's tables to be trimmed first (over a second).
    let mut opts =
        kernel_tests::direct_options("init=fuzz args=calls=6000,rounds=3,workers=3,seed=7");
    opts.timeout = Some(std::time::Duration::from_secs(90));
    let run = kernel_tests::boot_with("random_calls_from_dying_tasks_leave_nothing_behind", &opts);
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_starting_with("fuzz: passed", "the fuzzer's verdict");
    assert!(figure(&run, "calls") >= 12_000, "too few calls made");
    for zero in [
        "kernel_panics",
        "leaked_frames",
        "leaked_heap_bytes",
        "leaked_ports",
        "hangs",
    ] {
        if figure(&run, zero) != 0 {
            run.fail(&format!("fuzz.{zero} is not 0"));
        }
    }
    if figure(&run, "workers_killed") < 2 {
        run.fail("a worker should have been killed mid-run in each round");
    }
}

#[test]
fn the_census_catches_a_task_left_behind() {
    let run = boot(
        "the_census_catches_a_task_left_behind",
        "init=fuzz args=calls=600,rounds=2,workers=2,leak=1,kill=0",
    );
    run.expect_outcome(Outcome::Guest(1));
    run.expect_line_starting_with("fuzz: LEAK: round 1", "the leak report");
    if figure(&run, "leaked_ports") < 8 || figure(&run, "leaked_frames") < 16 {
        run.fail("the left task's 8 ports and 16 pages were not all counted");
    }
}

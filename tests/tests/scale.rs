//! Issue 18's many tasks: `bench_scale` with `args=100000` in a 1 GiB guest measures the
//! null RPC and fork at 10 and at 10,000 tasks, starts 100,000 tasks that block in a receive
//! (in groups of 10,000: a group is a task holding their ports), checks the kernel counts
//! them all, terminates them all, checks every task's pages and tables came back, and that
//! two later identical rounds lose nothing; then one task starts 1,000,000 threads that block
//! in a receive, the kernel counts them, they all wake and exit when their port goes, and
//! their memory comes back. The figures themselves come from `cargo image bench scale
//! --icount`, which goes on until the kernel refuses a task.

use kernel_tests::{boot_with, direct_options};
use std::time::Duration;

#[test]
fn a_hundred_thousand_tasks_and_a_million_threads_fit_in_a_gigabyte_and_give_everything_back() {
    let mut opts = direct_options("init=bench_scale args=100000");
    opts.mem_mib = 1024;
    opts.timeout = Some(Duration::from_secs(300));
    let run = boot_with(
        "a_hundred_thousand_tasks_and_a_million_threads_fit_in_a_gigabyte_and_give_everything_back",
        &opts,
    );
    run.expect_line_containing(
        &["bench_scale: 100000 blocked tasks in 10 groups (as many as asked for): 100011 tasks"],
        "the 100,000 blocked tasks counted (with the 10 groups and the driver)",
    );
    run.expect_line_starting_with("bench_scale: every frame returned", "the frames back");
    run.expect_line_containing(
        &["bench_scale: 1000000 blocked threads in one task (as many as asked for)"],
        "a million blocked threads in one task, counted",
    );
    run.expect_line_containing(
        &["bench_scale: all 1000000 blocked threads woke and exited"],
        "the million threads woken and gone",
    );
    run.expect_line_starting_with(
        "bench_scale: every thread's memory returned",
        "the threads' memory back",
    );
    run.expect_line_starting_with("bench_scale: all benchmarks done", "the end of the run");
    run.expect_outcome(kernel_tests::Outcome::Guest(0));
}

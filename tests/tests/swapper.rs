//! The task swapper: `swapper_test` swaps forked children out by hand and checks they come
//! back (by a message or by hand) with every word of their memory, which went to the disk
//! meanwhile, and their ports; that their threads do not run while out; that the kernel
//! refuses what it must; that `ps` lists every task; that a swapped-out task's pages leave
//! before those of an idle task whose tables were collected; and that a message the kernel
//! writes into a page paged in clean survives that page's next pageout. Then sheeptest with twice the guest's
//! memory in workers on a throttled disk, where the swapper must act on its own (and, with
//! `swapper=off`, must not), every byte verified either way.

use kernel_tests::{boot_with, direct_options, test_disk, Outcome};
use std::time::Duration;

/// Every case of `swapper_test`, in its order.
const SWAPPER_TEST_CASES: &[&str] = &[
    "a_swapped_out_task_comes_back_by_a_message_with_its_memory_and_ports",
    "a_swapped_out_tasks_threads_do_not_run_until_it_is_swapped_in",
    "the_kernel_refuses_what_it_must",
    "an_idle_tasks_page_tables_are_freed_and_built_again",
    "a_swapped_out_tasks_pages_leave_before_those_of_a_task_whose_tables_were_collected",
    "ps_lists_every_task",
    "a_message_received_into_a_page_paged_in_clean_survives_its_pageout",
];

#[test]
fn swapped_out_tasks_come_back_whole() {
    let mut opts = direct_options("init=swapper_test mem=16M").with_disk(test_disk(64));
    opts.timeout = Some(Duration::from_secs(120));
    let run = boot_with("swapped_out_tasks_come_back_whole", &opts);
    run.expect_exactly(SWAPPER_TEST_CASES);
    run.expect_line_containing(
        &["swapper: out swapper_test (Asked)"],
        "the swap-out's trace",
    );
    run.expect_line_containing(
        &["swapper: in swapper_test (Message)"],
        "the swap-in's trace",
    );
}

/// A thread whose task's page-table root cannot be built again (the first three rebuilds
/// fail, `fail_roots=3`, as with no frame free) waits for memory and runs once the pageout
/// daemon says there is some, rather than its task being ended: every case still passes
/// (one calls a task whose tables were collected), and the wait was taken.
#[test]
fn a_thread_whose_root_cannot_be_built_waits_for_memory() {
    let mut opts =
        direct_options("init=swapper_test mem=16M fail_roots=3").with_disk(test_disk(64));
    opts.timeout = Some(Duration::from_secs(120));
    let run = boot_with(
        "a_thread_whose_root_cannot_be_built_waits_for_memory",
        &opts,
    );
    run.expect_exactly(SWAPPER_TEST_CASES);
    run.expect_line_containing(
        &["a thread waits for memory to run"],
        "the wait for a frame for a root",
    );
}

/// Boots sheeptest with 8 workers of 3 MiB (3 rounds) in 16 MiB on a disk throttled to 400
/// requests a second; expects every byte verified; returns the swap-outs it reported.
fn overloaded_sheeptest(name: &str, extra: &str) -> (u64, String) {
    let cmdline = format!("init=sheeptest args=8,3M,3 mem=16M {extra}");
    let mut opts = direct_options(&cmdline).with_disk(test_disk(64).with_iops(400));
    opts.timeout = Some(Duration::from_secs(150));
    let run = boot_with(name, &opts);
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_containing(
        &["sheeptest: passed: 8 workers verified every byte"],
        "the verdict",
    );
    let line = run.expect_line_starting_with("sheeptest: swapper events: ", "the swapper's report");
    let outs = line["sheeptest: swapper events: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| run.fail("the swapper's report has no count"));
    (outs, line.to_string())
}

#[test]
fn under_twice_its_memory_the_swapper_swaps_tasks_out_and_back() {
    let (outs, line) = overloaded_sheeptest(
        "under_twice_its_memory_the_swapper_swaps_tasks_out_and_back",
        "",
    );
    assert!(outs >= 1, "the swapper swapped nothing out: {line}");
    assert!(
        line.contains(&format!("{outs} in")),
        "not every task came back: {line}"
    );
    assert!(line.contains("swapper on"), "{line}");
}

#[test]
fn switched_off_the_swapper_swaps_nothing() {
    let (outs, line) =
        overloaded_sheeptest("switched_off_the_swapper_swaps_nothing", "swapper=off");
    assert_eq!(outs, 0, "{line}");
    assert!(line.contains("swapper off"), "{line}");
}

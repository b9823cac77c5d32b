//! Tasks, ports and messages, tested from user space: `ipc_test` runs as the first task and
//! reports one `ktest` line per case.

use kernel_tests::{boot_with, direct_options};
use std::time::Duration;

/// Every case of `ipc_test`, in its order.
const CASES: &[&str] = &[
    "rpc_echo",
    "short_messages_in_registers",
    "rights_and_reference_counts",
    "port_sets",
    "timeouts",
    "waits_cut_short_leave_no_timers",
    "dead_name_notification",
    "no_senders_notification",
    "send_once_notification",
    "hostile_messages",
    "hostile_calls",
    "threads_start_and_end_on_their_own",
    "two_calls_held_and_answered_in_the_other_order",
    "a_call_whose_reply_goes_to_another_port",
    "a_call_to_a_destroyed_port_never_reaches_the_port_made_after_it",
    "faulting_task_is_isolated",
    "a_system_call_at_the_top_of_user_space_ends_only_its_task",
    "a_system_call_after_a_fault_returns_through_sysret",
    "priorities",
    "preemption",
    "create_terminate_cycles",
    "ten_thousand_blocked_receivers",
    "collocated_servers_start_refuse_and_leave_nothing",
];

/// Boots `ipc_test` on `cpus` processors and checks every case passed.
fn ipc_cases_pass_on(name: &str, cpus: u32) -> kernel_tests::GuestRun {
    let mut opts = direct_options("init=ipc_test");
    // Ten thousand blocked tasks take some 650 MiB (page tables and stacks).
    opts.mem_mib = 1024;
    opts.smp = cpus;
    opts.timeout = Some(Duration::from_secs(if cpus > 2 { 180 } else { 120 }));
    let run = boot_with(name, &opts);
    run.expect_exactly(CASES);
    run
}

#[test]
fn ipc_cases_pass_on_two_cpus() {
    ipc_cases_pass_on("ipc_cases_pass_on_two_cpus", 2);
}

#[test]
fn ipc_cases_pass_on_four_cpus() {
    ipc_cases_pass_on("ipc_cases_pass_on_four_cpus", 4);
}

#[test]
fn ipc_cases_pass_in_the_guest() {
    let run = ipc_cases_pass_on("ipc_cases_pass_in_the_guest", 1);
    run.expect_line_containing(
        &["tasks blocked in receive", "KiB of guest memory"],
        "the memory report",
    );
    run.expect_line_containing(
        &["task ipc_test terminated: #PF page fault"],
        "the crashing child's report",
    );
}

#[test]
fn memory_exhaustion_is_an_error_for_the_asker() {
    let mut opts = direct_options("init=ipc_test init_arg=1 mem=48M");
    opts.timeout = Some(Duration::from_secs(120));
    let run = boot_with("memory_exhaustion_is_an_error_for_the_asker", &opts);
    run.expect_all_passed(&[
        "memory_exhaustion",
        "a_task_at_its_quota_gets_errors_and_others_go_on",
        "messages_a_task_queues_count_against_its_quota",
        "a_task_that_fills_the_kernel_heap_gives_it_all_back",
    ]);
    run.expect_line_containing(&["memory ran out after"], "the exhaustion report");
}

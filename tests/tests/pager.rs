//! External pagers, tested from user space: `pager_test` runs as the first task, each case a
//! pager (the test) and a child faulting on its object: fault-in, read-ahead by strategy,
//! cluster alignment and clipping, zero fill, errors, a dying and a silent pager, rejected
//! answers and calls, flushes, system calls and receives that wait for a page, terminate, a
//! page on its way out served from the page in flight.

use kernel_tests::{boot_with, direct_options};

const CASES: &[&str] = &[
    "fault_in_through_a_pager",
    "read_ahead_by_strategy",
    "clusters_are_aligned_and_clipped",
    "unavailable_is_zero_filled",
    "data_error_is_a_memory_error",
    "pager_death_is_a_memory_error",
    "silent_pager_times_out",
    "wrong_size_supply_is_rejected",
    "bad_control_calls_are_rejected",
    "invalid_init_attributes_are_refused_to_the_pager",
    "supply_ahead_and_flush",
    "a_flood_of_unrequested_supplies_costs_nothing",
    "system_calls_on_paged_memory_run_again",
    "blocked_receiver_buffer_paged_in",
    "terminate_when_unmapped",
    "clean_pages_are_reclaimed_under_pressure",
    "lock_request_cleans",
    "read_only_mappings_refuse_writes",
    "lock_request_cleans_and_flushes",
    "a_page_on_its_way_out_is_served_from_it",
    "writes_during_cleans_are_never_lost",
];

/// Boots `pager_test` on `cpus` processors and checks every case passed.
fn external_pagers_work_on(name: &str, cpus: u32) -> kernel_tests::GuestRun {
    // A short pager timeout keeps the silent-pager case quick, a small memory the pressure
    // case.
    let mut opts = direct_options("init=pager_test pager_timeout=300 mem=48M");
    opts.smp = cpus;
    let run = boot_with(name, &opts);
    run.expect_exactly(CASES);
    run
}

#[test]
fn external_pagers_work_on_two_cpus() {
    external_pagers_work_on("external_pagers_work_on_two_cpus", 2);
}

#[test]
fn external_pagers_work_on_four_cpus() {
    external_pagers_work_on("external_pagers_work_on_four_cpus", 4);
}

#[test]
fn external_pagers_work_in_the_guest() {
    let run = external_pagers_work_on("external_pagers_work_in_the_guest", 1);
    // A memory error ends the faulting task with a report; the kernel goes on.
    run.expect_line_containing(
        &["task pager_test terminated: #PF", "memory error"],
        "the memory-error report",
    );
}

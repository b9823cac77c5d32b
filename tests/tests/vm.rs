//! The virtual-memory calls and fork (copy-on-write, inheritance, collapse of shadow
//! chains), tested from user space: `vm_test` runs as the first task.

use kernel_tests::{boot_with, direct_options};

const CASES: &[&str] = &[
    "allocate_touch_deallocate",
    "allocate_fixed_and_overlap",
    "deallocate_part_of_a_region",
    "protection_is_enforced",
    "maximum_protection_only_shrinks",
    "program_text_stays_read_only",
    "inheritance_and_behavior",
    "regions_are_listed",
    "bad_arguments",
    "fork_isolates_writes",
    "fork_copies_nothing_until_written",
    "fork_by_inheritance",
    "a_copy_stays_still_when_the_region_is_shared_later",
    "forked_child_keeps_send_rights",
    "fork_generations_stay_bounded",
    "exec_replaces_the_program",
    "exec_keeps_port_rights",
    "exec_of_a_missing_program_fails_cleanly",
    "shared_region_outlives_its_deallocation",
    "copy_of_a_shared_region",
    "out_of_line_move_changes_owner",
    "out_of_line_copy_is_copy_on_write",
    "out_of_line_between_tasks",
    "undelivered_out_of_line_memory_is_freed",
    "memory_by_kind_accounts_for_every_frame",
    "a_fork_bomb_is_refused_within_the_kernel_budget",
];

/// Boots `vm_test` on `cpus` processors and checks every case passed.
fn vm_calls_work_on(name: &str, cpus: u32) -> kernel_tests::GuestRun {
    // 128 MiB: the fork bomb at the end forks until the kernel's budget, a share of memory.
    let mut opts = direct_options("init=vm_test mem=128M");
    opts.smp = cpus;
    opts.timeout = Some(std::time::Duration::from_secs(180));
    let run = boot_with(name, &opts);
    run.expect_exactly(CASES);
    run
}

#[test]
fn vm_calls_work_on_two_cpus() {
    vm_calls_work_on("vm_calls_work_on_two_cpus", 2);
}

#[test]
fn vm_calls_work_on_four_cpus() {
    vm_calls_work_on("vm_calls_work_on_four_cpus", 4);
}

#[test]
fn vm_calls_work_in_the_guest() {
    let run = vm_calls_work_on("vm_calls_work_in_the_guest", 1);
    // The children that fault on purpose are reported and ended; the kernel goes on.
    run.expect_line_containing(
        &["task vm_test terminated: #PF", "write of", "protection"],
        "the write-to-read-only report",
    );
}

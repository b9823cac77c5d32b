//! The disk default pager (`default-pager/`), tested from user space: `pageout_test` runs as
//! the first task in 32 MiB with a disk and makes `default_pager` the default pager; each
//! boot picks a suite with `init_arg` (see `servers/pageout_test/src/main.rs`): memory four
//! times the machine's through the disk, swap released, zpager's cases through the disk,
//! 1,000 fork generations and copies of shared memory while paged out, a full disk, failing
//! writes and reads (a failing page's blocks losing that page only), segments of two cluster
//! sizes. And bootstrap starts
//! the disk pager when there is a disk, zpager when there is none.

use kernel_tests::{
    boot_with, direct_options, direct_options_with_disk, direct_options_with_faulty_disk, GuestRun,
};
use std::time::Duration;

/// Boots `pageout_test` with suite `suite`, a disk of `disk_mib` MiB (failing as `faults`
/// says) and kernel options `extra`, and expects exactly `cases` to pass.
fn suite(
    name: &str,
    suite: u32,
    disk_mib: u32,
    faults: Option<&str>,
    extra: &str,
    cases: &[&str],
) -> GuestRun {
    let cmdline = format!("init=pageout_test init_arg={suite} mem=32M {extra}");
    let mut opts = match faults {
        Some(spec) => direct_options_with_faulty_disk(&cmdline, disk_mib, spec),
        None => direct_options_with_disk(&cmdline, disk_mib),
    };
    opts.timeout = Some(Duration::from_secs(150));
    let run = boot_with(name, &opts);
    run.expect_exactly(cases);
    run.expect_line_containing(&["vm: default pager registered"], "the registration");
    let collocated = run
        .report
        .line_containing(&["colloc: default_pager runs collocated in the kernel"])
        .is_some();
    if collocated != extra.contains("collocate=default_pager") {
        run.fail(&format!(
            "the disk pager collocated: {collocated}, with options {extra:?}"
        ));
    }
    // Collocated, the kernel calls it and it calls the disk without messages.
    run.expect_direct_pager_calls(collocated, true);
    run
}

/// The suites that page most through the disk, with the disk pager collocated in the kernel
/// (`collocate=default_pager`): its device transfers are started and finished on the
/// threads of the faulting tasks and of the kernel's way out.
#[test]
fn four_times_memory_through_a_collocated_disk_pager() {
    suite(
        "four_times_memory_through_a_collocated_disk_pager",
        1,
        256,
        None,
        "collocate=default_pager",
        &[
            "four_times_memory_through_the_disk",
            "swap_is_released_when_memory_goes",
        ],
    );
}

#[test]
fn zpager_cases_pass_through_a_collocated_disk_pager() {
    suite(
        "zpager_cases_pass_through_a_collocated_disk_pager",
        6,
        256,
        None,
        "collocate=default_pager",
        &[
            "three_times_free_memory_survives_pageout",
            "forked_memory_survives_pageout",
            "pages_written_after_page_in_survive_fork_and_pageout",
            "many_objects_go_to_the_pager_a_few_at_a_time",
        ],
    );
}

#[test]
fn four_times_memory_through_the_disk_and_swap_released() {
    suite(
        "four_times_memory_through_the_disk_and_swap_released",
        1,
        256,
        None,
        "",
        &[
            "four_times_memory_through_the_disk",
            "swap_is_released_when_memory_goes",
        ],
    );
}

#[test]
fn zpager_cases_pass_through_the_disk() {
    suite(
        "zpager_cases_pass_through_the_disk",
        6,
        256,
        None,
        "",
        &[
            "three_times_free_memory_survives_pageout",
            "forked_memory_survives_pageout",
            "pages_written_after_page_in_survive_fork_and_pageout",
            "many_objects_go_to_the_pager_a_few_at_a_time",
        ],
    );
}

#[test]
fn fork_generations_and_shared_copies_while_paged_out() {
    suite(
        "fork_generations_and_shared_copies_while_paged_out",
        7,
        64,
        None,
        "",
        &[
            "fork_generations_with_memory_paged_out_stay_bounded",
            "shared_memory_partly_paged_out_is_copied",
        ],
    );
}

#[test]
fn zpager_stacked_in_front_of_the_disk() {
    suite(
        "zpager_stacked_in_front_of_the_disk",
        8,
        64,
        None,
        "",
        &["zpager_in_front_of_the_disk_keeps_some_and_sends_on_the_rest"],
    );
}

#[test]
fn bootstrap_stacks_zpager_in_front_of_the_disk_pager_with_zcache() {
    let run = boot_with(
        "bootstrap_stacks_zpager_in_front_of_the_disk_pager_with_zcache",
        &direct_options_with_disk("zcache=2M", 64),
    );
    run.expect_line_containing(
        &["zpager: a compressed cache of 2097152 bytes in front of the backing store"],
        "zpager stacked",
    );
    run.expect_line_containing(
        &["names: the backing store is registered"],
        "the disk pager behind it",
    );
    run.expect_line_containing(
        &["names: the default pager is registered"],
        "zpager in front",
    );
}

#[test]
fn a_full_disk_loses_nothing() {
    suite(
        "a_full_disk_loses_nothing",
        2,
        64,
        None,
        "swap=0+8M",
        &["a_full_disk_loses_nothing_and_work_resumes"],
    );
}

/// The same with the disk pager collocated: a failed device transfer is answered as for the
/// task, on whatever thread the device's completion runs the pager.
#[test]
fn failed_writes_are_refused_by_a_collocated_disk_pager() {
    suite(
        "failed_writes_are_refused_by_a_collocated_disk_pager",
        3,
        64,
        Some("write@0+64"),
        "collocate=default_pager",
        &["failed_writes_keep_the_pages"],
    );
}

#[test]
fn failed_writes_are_refused_and_nothing_is_lost() {
    // The first two clusters (sectors 0..64) fail every write.
    suite(
        "failed_writes_are_refused_and_nothing_is_lost",
        3,
        64,
        Some("write@0+64"),
        "",
        &["failed_writes_keep_the_pages"],
    );
}

#[test]
fn failed_reads_end_only_the_faulting_task() {
    // One cluster at 16 MiB fails every read.
    suite(
        "failed_reads_end_only_the_faulting_task",
        4,
        64,
        Some("read@32768+32"),
        "",
        &["failed_reads_end_the_faulting_task_only"],
    );
}

/// One page's blocks fail every read (the second page of the cluster at 16 MiB): only that
/// page is lost, the others of its cluster read back, and the pager says which it lost.
#[test]
fn a_failed_read_loses_only_the_page_on_the_failing_blocks() {
    let run = suite(
        "a_failed_read_loses_only_the_page_on_the_failing_blocks",
        9,
        64,
        Some("read@32776+8"),
        "",
        &["a_failed_read_loses_only_the_page_on_the_failing_blocks"],
    );
    run.expect_line_containing(
        &[
            "default_pager: lost 1 page(s) of an object",
            "disk offset 0x1001000",
        ],
        "the pager's word on the lost page",
    );
}

/// The same with the disk pager collocated in the kernel.
#[test]
fn a_failed_read_loses_only_its_page_with_a_collocated_disk_pager() {
    let run = suite(
        "a_failed_read_loses_only_its_page_with_a_collocated_disk_pager",
        9,
        64,
        Some("read@32776+8"),
        "collocate=default_pager",
        &["a_failed_read_loses_only_the_page_on_the_failing_blocks"],
    );
    run.expect_line_containing(
        &[
            "default_pager: lost 1 page(s) of an object",
            "disk offset 0x1001000",
        ],
        "the pager's word on the lost page",
    );
}

#[test]
fn segments_of_two_cluster_sizes() {
    suite(
        "segments_of_two_cluster_sizes",
        5,
        64,
        None,
        "swap=0+8M:4,8M+8M:4,16M+8M:2,24M+8M:2",
        &["segments_of_two_cluster_sizes_and_an_object_larger_than_one"],
    );
}

#[test]
fn bootstrap_starts_the_disk_pager_with_a_disk() {
    let run = boot_with(
        "bootstrap_starts_the_disk_pager_with_a_disk",
        &direct_options_with_disk("", 64),
    );
    run.expect_line_containing(
        &["default_pager: segment of disk0 at 0 MiB: 64 MiB in clusters of 8 pages"],
        "the disk pager's segment",
    );
    run.expect_line_containing(
        &["names: the default pager is registered"],
        "its registration",
    );
    if run.boot.serial.contains("zpager: cannot register") {
        run.fail("zpager was started although there is a disk");
    }
}

#[test]
fn bootstrap_starts_zpager_without_a_disk() {
    let run = boot_with(
        "bootstrap_starts_zpager_without_a_disk",
        &direct_options(""),
    );
    run.expect_line_containing(
        &["names: the default pager is registered"],
        "zpager's registration",
    );
    if run.boot.serial.contains("default_pager:") {
        run.fail("the disk pager ran without a disk");
    }
}

#[test]
fn a_bad_swap_layout_is_reported() {
    let run = boot_with(
        "a_bad_swap_layout_is_reported",
        &direct_options_with_disk("swap=0+128M", 64),
    );
    run.expect_line_containing(&["default_pager: swap=0+128M:"], "the layout error");
}

/// One page's blocks fail every write: the returns that touch them are refused (the kernel
/// keeps the pages), and the pages of that cluster whose writes worked read back.
#[test]
fn a_failed_write_of_one_page_loses_nothing() {
    suite(
        "a_failed_write_of_one_page_loses_nothing",
        3,
        64,
        Some("write@32776+8"),
        "",
        &["failed_writes_keep_the_pages"],
    );
}

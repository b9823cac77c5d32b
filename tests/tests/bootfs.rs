//! The program pager, tested from user space: `bootfs_test` runs as the first task, makes
//! `bootfs` the kernel's program pager, then spawns and execs programs whose text must page
//! in through it, in clusters, shared between tasks; and reads boot-archive files through
//! bootfs's file interface, which refuses bad requests, and maps one through the pager kit's
//! open-object interface.

use kernel_tests::boot;

const CASES: &[&str] = &[
    "spawned_text_pages_in_through_the_pager",
    "text_is_shared_between_tasks",
    "exec_maps_text_through_the_pager",
    "archive_files_read_through_the_file_interface",
    "bad_file_requests_are_refused",
    "archive_files_map_through_the_standard_open",
];

#[test]
fn programs_page_in_through_bootfs() {
    let run = boot("programs_page_in_through_bootfs", "init=bootfs_test");
    run.expect_exactly(CASES);
    run.expect_line_containing(&["vm: program pager registered"], "the registration");
    if run.report.line_containing(&["colloc: bootfs"]).is_some() {
        run.fail("bootfs ran collocated without `collocate=bootfs`");
    }
    run.expect_direct_pager_calls(false, false);
}

/// The same suite with bootfs collocated in the kernel (`collocate=bootfs`): program text
/// pages in through a pager that runs on the faulting thread, the kernel's `create` and
/// requests calls of its routines, no messages.
#[test]
fn programs_page_in_through_bootfs_collocated() {
    let run = boot(
        "programs_page_in_through_bootfs_collocated",
        "init=bootfs_test collocate=bootfs",
    );
    run.expect_exactly(CASES);
    run.expect_line_containing(&["vm: program pager registered"], "the registration");
    run.expect_line_containing(
        &["colloc: bootfs runs collocated in the kernel"],
        "bootfs collocated",
    );
    run.expect_direct_pager_calls(true, false);
}

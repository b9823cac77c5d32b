//! Runs the kernel's in-guest self-tests (`test=...`) and checks every case reports `ok`.

use kernel_tests::{boot, Summary};

/// Boots with self-test `name` alone (the run named after it) and checks it passed.
fn one_self_test(name: &str) {
    let run = boot(name, &format!("test={name}"));
    run.expect_all_passed(&[name]);
}

#[test]
fn self_tests_pass() {
    let run = boot("self_tests_pass", "test=frame_allocator,heap,timer");
    run.expect_all_passed(&["frame_allocator", "heap", "timer"]);
    if run.report.summary
        != Some(Summary {
            passed: 3,
            failed: 0,
        })
    {
        run.fail(&format!(
            "expected the summary `3 passed, 0 failed`, got {:?}",
            run.report.summary
        ));
    }
}

#[test]
fn all_self_tests_pass() {
    let run = boot("all_self_tests_pass", "test=all");
    run.expect_all_passed(&[]);
    match run.report.summary {
        Some(Summary { passed, failed: 0 }) if passed >= 3 => {}
        summary => run.fail(&format!(
            "expected at least 3 passed and 0 failed with test=all, got {summary:?}"
        )),
    }
}

/// Unmapping a page shared by 1,000 forked children visits only that page's mappings.
#[test]
fn page_shared_by_forked_children() {
    let run = boot(
        "page_shared_by_forked_children",
        "test=page_mappings,forked_children_share_a_page",
    );
    run.expect_all_passed(&["page_mappings", "forked_children_share_a_page"]);
}

/// A child's end leaves the object it shared with its parent to the parent's copy, which
/// merges it at once: the pages the parent has copies of are freed.
#[test]
fn a_dead_childs_copy_is_merged_at_once() {
    one_self_test("a_dead_childs_copy_is_merged_at_once");
}

#[test]
fn timer_ticks_advance() {
    let run = boot("timer_ticks_advance", "test=timer");
    run.expect_all_passed(&["timer"]);
}

/// Page-table pages freed by a task's end or its tables' collection hold only zeros (they
/// go to new tables uncleared).
#[test]
fn freed_tables_hold_only_zeros() {
    one_self_test("freed_tables_hold_only_zeros");
}

/// Fork maps the child's first page ahead of its fault, as a read fault would and no more.
#[test]
fn a_forked_childs_first_page_is_premapped() {
    one_self_test("a_forked_childs_first_page_is_premapped");
}

/// The tasks running one program share the page table of its text, and leave it when their
/// text changes.
#[test]
fn tasks_running_one_program_share_its_text_table() {
    one_self_test("tasks_running_one_program_share_its_text_table");
}

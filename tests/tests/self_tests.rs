//! Runs the kernel's in-guest self-tests (`test=...`) and checks every case reports `ok`.

use kernel_tests::{boot, Summary};

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
    let run = boot(
        "a_dead_childs_copy_is_merged_at_once",
        "test=a_dead_childs_copy_is_merged_at_once",
    );
    run.expect_all_passed(&["a_dead_childs_copy_is_merged_at_once"]);
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
    let run = boot(
        "freed_tables_hold_only_zeros",
        "test=freed_tables_hold_only_zeros",
    );
    run.expect_all_passed(&["freed_tables_hold_only_zeros"]);
}

/// Fork maps the child's first page ahead of its fault, as a read fault would and no more.
#[test]
fn a_forked_childs_first_page_is_premapped() {
    let run = boot(
        "a_forked_childs_first_page_is_premapped",
        "test=a_forked_childs_first_page_is_premapped",
    );
    run.expect_all_passed(&["a_forked_childs_first_page_is_premapped"]);
}

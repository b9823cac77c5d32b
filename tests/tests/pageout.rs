//! The pageout daemon with the default pager, tested from user space: `pageout_test` runs
//! as the first task in a small memory, makes `zpager` the default pager, and fills and
//! checks anonymous memory three times the free memory (nothing lost, pageouts in clusters),
//! memory copied on write to a forked child, pages written again after coming back, and 400
//! small objects given pager objects a few at a time.

use kernel_tests::{boot_with, direct_options};
use std::time::Duration;

const CASES: &[&str] = &[
    "three_times_free_memory_survives_pageout",
    "forked_memory_survives_pageout",
    "pages_written_after_page_in_survive_fork_and_pageout",
    "many_objects_go_to_the_pager_a_few_at_a_time",
];

#[test]
fn anonymous_memory_pages_out_to_zpager() {
    pages_out("anonymous_memory_pages_out_to_zpager", "");
}

/// The same with zpager collocated in the kernel (`collocate=zpager`).
#[test]
fn anonymous_memory_pages_out_to_zpager_collocated() {
    let run = pages_out(
        "anonymous_memory_pages_out_to_zpager_collocated",
        " collocate=zpager",
    );
    run.expect_line_containing(
        &["colloc: zpager runs collocated in the kernel"],
        "zpager collocated",
    );
}

fn pages_out(name: &str, extra: &str) -> kernel_tests::GuestRun {
    // 16 MiB: three times the free memory is some 30 MiB through the default pager, all of it
    // compressed and decompressed by zpager under TCG (about 8 s).
    let mut opts = direct_options(&format!("init=pageout_test mem=16M{extra}"));
    opts.timeout = Some(Duration::from_secs(90));
    let run = boot_with(name, &opts);
    run.expect_exactly(CASES);
    run.expect_line_containing(&["vm: default pager registered"], "the registration");
    run
}

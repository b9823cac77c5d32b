//! The sheeptest workload (`servers/sheeptest`) as the first task with the disk pager: a run
//! that fits in memory and one whose workers need more memory than the guest has, so that it
//! pages; each must verify every byte and report its figures.

use kernel_tests::{boot_with, direct_options_with_disk, Outcome};
use std::time::Duration;

/// Boots `init=sheeptest args=ARGS mem=16M` with a 64 MiB disk, expects exit status 0 and
/// the report; returns the pageouts it reported.
fn sheeptest(name: &str, args: &str) -> u64 {
    let cmdline = format!("init=sheeptest args={args} mem=16M");
    let mut opts = direct_options_with_disk(&cmdline, 64);
    opts.timeout = Some(Duration::from_secs(120));
    let run = boot_with(name, &opts);
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_containing(
        &["sheeptest: ", "pager default_pager (disk)"],
        "the parameters",
    );
    run.expect_line_starting_with("sheeptest: elapsed ", "the elapsed time");
    run.expect_line_starting_with("sheeptest: faults ", "the faults");
    run.expect_line_starting_with("sheeptest: pageins ", "the pageins");
    run.expect_line_starting_with("sheeptest: device operations ", "the device operations");
    run.expect_line_starting_with("sheeptest: prefetch hits ", "the prefetch hits");
    run.expect_line_starting_with("sheeptest: swapper events: ", "the swapper events");
    run.expect_line_containing(&["sheeptest: passed: "], "the verdict");
    for metric in ["instructions", "disk_ops", "elapsed_s"] {
        let prefix = format!("bench sheeptest.{metric}.");
        run.expect_line_starting_with(&prefix, "a bench figure");
    }
    let line = run.expect_line_starting_with("sheeptest: pageouts ", "the pageouts");
    line["sheeptest: pageouts ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| run.fail("the pageouts line has no number"))
}

#[test]
fn sheeptest_within_memory_verifies_every_byte() {
    sheeptest("sheeptest_within_memory_verifies_every_byte", "2,2M,1");
}

#[test]
fn sheeptest_with_more_memory_than_the_guest_pages_and_verifies_every_byte() {
    let pageouts = sheeptest(
        "sheeptest_with_more_memory_than_the_guest_pages_and_verifies_every_byte",
        "4,4M,1",
    );
    // 16 MiB of workers in a 16 MiB guest (12 MiB free): at least a quarter goes out.
    assert!(pageouts >= 1024, "only {pageouts} pages went out");
}

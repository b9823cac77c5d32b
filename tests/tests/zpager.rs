//! zpager, the compressing default pager, tested from user space: `zpager_test` runs as the
//! first task, starts zpagers through a name service of its own and drives them as the kernel
//! does: create, pages returned (compressible, incompressible, zero, twice), asked for back,
//! ranges never returned, more than the heap arena holds, bad ranges, objects apart,
//! terminate, a full store refusing. And with little memory, the kernel paging out to a
//! zpager made its default pager.

use std::time::Duration;

use kernel_tests::{boot, boot_with, direct_options};

const CASES: &[&str] = &[
    "registers_under_the_default_pager_name",
    "create_answers_default_attributes",
    "returned_pages_come_back",
    "zero_pages_read_as_zeros",
    "a_page_returned_twice_keeps_the_newest",
    "never_returned_is_unavailable",
    "incompressible_pages_come_back",
    "the_store_grows_past_the_heap_arena",
    "objects_are_kept_apart",
    "clean_return_keeps_the_held_copy",
    "requests_outside_the_object_are_errors",
    "terminate_drops_the_object",
    "a_full_store_refuses_and_loses_nothing",
];

#[test]
fn zpager_stores_and_supplies_pages() {
    stores_and_supplies_pages("zpager_stores_and_supplies_pages", false);
}

/// The same suite against zpager collocated in the kernel (`collocate=zpager`: every zpager
/// the test spawns runs in the kernel).
#[test]
fn zpager_stores_and_supplies_pages_collocated() {
    stores_and_supplies_pages("zpager_stores_and_supplies_pages_collocated", true);
}

/// The `colloc:` line the kernel prints for a collocated zpager: there when `collocated`,
/// absent otherwise.
fn expect_collocated(run: &kernel_tests::GuestRun, collocated: bool) {
    let line = run
        .report
        .line_containing(&["colloc: zpager runs collocated in the kernel"]);
    if line.is_some() != collocated {
        run.fail(&format!(
            "zpager collocated: expected {collocated}, found {line:?}"
        ));
    }
}

fn stores_and_supplies_pages(name: &str, collocated: bool) {
    let cmdline = if collocated {
        "init=zpager_test collocate=zpager"
    } else {
        "init=zpager_test"
    };
    let run = boot(name, cmdline);
    run.expect_exactly(CASES);
    expect_collocated(&run, collocated);
    // terminate_drops_the_object returned four pages, one of them zero, and terminated the
    // object: zpager reports what it let go of.
    run.expect_line_containing(
        &["zpager: terminated an object holding 4 pages (1 zero)"],
        "zpager's report of a terminated object",
    );
}

#[test]
fn the_kernel_pages_out_to_zpager() {
    pages_out_to_zpager("the_kernel_pages_out_to_zpager", false);
}

/// The same with zpager collocated in the kernel: the kernel's pageout runs it on its way out.
#[test]
fn the_kernel_pages_out_to_zpager_collocated() {
    pages_out_to_zpager("the_kernel_pages_out_to_zpager_collocated", true);
}

fn pages_out_to_zpager(name: &str, collocated: bool) {
    // 32 MiB of memory, 48 MiB written: the kernel pages out to a zpager made the default pager.
    let mut cmdline = String::from("init=zpager_test init_arg=1 mem=32M");
    if collocated {
        cmdline.push_str(" collocate=zpager");
    }
    let mut opts = direct_options(&cmdline);
    opts.timeout = Some(Duration::from_secs(120));
    let run = boot_with(name, &opts);
    run.expect_all_passed(&["the_kernel_pages_out_to_zpager"]);
    expect_collocated(&run, collocated);
    // Collocated, the kernel's pageout calls it without messages (it has no disk).
    run.expect_direct_pager_calls(collocated, false);
    run.expect_line_containing(
        &["zpager_test: 48 MiB written and read back", "0 words wrong"],
        "the pressure report",
    );
    // The 48 MiB object, terminated when the test let go of it: its pages compress (each
    // repeats a 32-byte pattern) to far less than a quarter.
    let line = run.expect_line_containing(
        &["zpager: terminated an object holding"],
        "zpager's report of the object",
    );
    match held(line) {
        Some((pages, bytes)) if pages >= 4096 && bytes * 4 < pages * 4096 => {}
        other => run.fail(&format!(
            "expected thousands of pages in well under a quarter of their size, got {other:?} \
             from {line:?}"
        )),
    }
}

/// `(pages, bytes)` from zpager's `... holding <pages> pages (<zero> zero) in <bytes> bytes`.
fn held(line: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |word: &str| -> Option<u64> {
        let at = words.iter().position(|w| *w == word)?;
        words.get(at + 1)?.parse().ok()
    };
    Some((after("holding")?, after("in")?))
}

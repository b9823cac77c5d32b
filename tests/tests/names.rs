//! bootstrap and the name service: a default boot starts bootstrap, which starts the name
//! server (`names`, a task, or collocated with `collocate=names`), then the shell (marked
//! `start = true` in servers/boot.toml), which starts `name_test` (`run name_test` from the
//! kernel's `sh=`) with the name service; it registers, looks up and calls servers through
//! the generated interfaces, `zpager`, the default pager, and `bootfs`, the program pager.

use kernel_tests::{boot, Outcome};

#[test]
fn bootstrap_serves_names_to_the_programs_it_starts() {
    serves_names(
        "bootstrap_serves_names_to_the_programs_it_starts",
        "",
        false,
    );
}

/// The same suite with the name server collocated in the kernel (`collocate=names`).
#[test]
fn bootstrap_serves_names_from_a_collocated_name_server() {
    serves_names(
        "bootstrap_serves_names_from_a_collocated_name_server",
        "collocate=names",
        true,
    );
}

/// Boots to the shell running `name_test` with kernel options `extra`, the name server
/// collocated if `collocated`.
fn serves_names(name: &str, extra: &str, collocated: bool) {
    let run = boot(name, &format!(r#"sh="run name_test" {extra}"#));
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_starting_with("bootstrap: started", "bootstrap's start");
    let names = [
        "names_register",
        "names_duplicate",
        "names_bad_names",
        "names_unknown",
        "names_lookup",
        "names_lookup_waits",
        "names_lookup_wait_times_out",
        "names_call_through",
        "names_right_through_call",
        "names_malformed_request",
        "names_server_exit",
        "names_dead_name_removed",
    ];
    run.expect_exactly(&names);
    run.expect_line_starting_with("shell: done, status 0", "name_test's status 0");
    run.expect_line_containing(
        &["bootstrap: shell exited with status 0"],
        "the shell's exit report",
    );
    // zpager (`start = true`, `daemon = true`) registered as the default pager, and bootstrap
    // shut down without waiting for it.
    run.expect_line_starting_with(
        "names: the default pager is registered",
        "the default pager's registration",
    );
    run.expect_line_starting_with(
        "names: the program pager is registered",
        "the program pager's registration",
    );
    let hosted = run
        .report
        .line_containing(&["colloc: names runs collocated in the kernel"])
        .is_some();
    if hosted != collocated {
        run.fail(&format!(
            "the name server collocated: {hosted}, expected {collocated}"
        ));
    }
}

/// A boot whose pagers, zpager and bootfs, both run collocated in the kernel (bootstrap starts
/// them as always; `collocate=` makes the kernel host them): the name service's suite passes,
/// every program's text paging in through the collocated bootfs.
#[test]
fn bootstrap_serves_names_with_its_pagers_collocated() {
    let run = boot(
        "bootstrap_serves_names_with_its_pagers_collocated",
        r#"sh="run name_test" collocate=zpager,bootfs"#,
    );
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_starting_with("shell: done, status 0", "name_test's status 0");
    for pager in ["zpager", "bootfs"] {
        run.expect_line_containing(
            &["colloc:", pager, "runs collocated in the kernel"],
            "a pager collocated",
        );
    }
    run.expect_line_starting_with(
        "names: the default pager is registered",
        "the default pager's registration",
    );
    run.expect_line_starting_with(
        "names: the program pager is registered",
        "the program pager's registration",
    );
}

/// `start=` adds programs to bootstrap's start set at run time, without rebuilding and
/// without dropping the default servers: hello runs and is waited for beside the shell, and
/// the pagers are registered as always.
#[test]
fn start_adds_programs_to_bootstraps_start_set() {
    let run = boot(
        "start_adds_programs_to_bootstraps_start_set",
        r#"start=hello sh="echo done""#,
    );
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_starting_with("hello from user space", "hello's greeting");
    run.expect_line_containing(
        &["bootstrap: hello exited with status 0"],
        "hello's exit, waited for",
    );
    run.expect_line_containing(
        &["bootstrap: shell exited with status 0"],
        "the shell's exit",
    );
    run.expect_line_starting_with(
        "names: the program pager is registered",
        "the default servers, still started",
    );
}

//! Deliberate faults (`crash=...`): each must be reported on the serial port and end with code 2.

use kernel_tests::{boot, boot_with, direct_options, GuestRun, Outcome};

/// Boots with `crash=<kind>` and returns the `exception:` line, after checking it names `vector`.
fn expect_exception(name: &str, kind: &str, vector: &str) -> (GuestRun, String) {
    let run = boot(name, &format!("crash={kind}"));
    run.expect_outcome(Outcome::Guest(2));
    let line = run
        .expect_line_starting_with("exception:", "exception report")
        .to_string();
    if !line.contains(vector) {
        run.fail(&format!(
            "the exception line does not name {vector}: {line:?}"
        ));
    }
    (run, line)
}

#[test]
fn page_fault_is_reported() {
    let (run, _) = expect_exception("page_fault_is_reported", "page_fault", "#PF");
    run.expect_line_containing(&["cr2=0x"], "faulting address (`cr2=0x...`)");
}

#[test]
fn divide_error_is_reported() {
    expect_exception("divide_error_is_reported", "divide_error", "#DE");
}

#[test]
fn invalid_opcode_is_reported() {
    expect_exception("invalid_opcode_is_reported", "invalid_opcode", "#UD");
}

#[test]
fn panic_is_reported() {
    let run = boot("panic_is_reported", "crash=panic");
    run.expect_outcome(Outcome::Guest(2));
    run.expect_line_starting_with("panic:", "panic line");
}

#[test]
fn stack_overflow_is_a_reported_double_fault() {
    let (run, _) = expect_exception(
        "stack_overflow_is_a_reported_double_fault",
        "stack_overflow",
        "#DF",
    );
    run.expect_line_containing(&["kernel stack overflow"], "stack overflow diagnosis");
}

#[test]
fn an_application_processors_stack_overflow_is_a_reported_double_fault() {
    // Its stack lies in the kernel map with an unmapped page below: without that page the
    // recursion would run on into whatever the heap put there.
    let name = "an_application_processors_stack_overflow_is_a_reported_double_fault";
    let mut opts = direct_options("crash=ap_stack_overflow");
    opts.smp = 2;
    let run = boot_with(name, &opts);
    run.expect_outcome(Outcome::Guest(2));
    let line = run.expect_line_starting_with("exception:", "exception report");
    if !line.contains("#DF") {
        run.fail(&format!("the exception line does not name #DF: {line:?}"));
    }
    run.expect_line_containing(
        &["kernel stack overflow", "CPU 1's stack"],
        "stack overflow diagnosis naming CPU 1",
    );
}

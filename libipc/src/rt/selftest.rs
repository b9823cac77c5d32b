//! In-guest test suites: runs named cases and reports them in the guest report protocol
//! (`ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`).

use alloc::string::String;

/// One case: `Err` says what went wrong.
pub type Case = fn() -> Result<(), String>;

/// Runs every case in order, printing a line for each and the summary; returns the number
/// that failed (the program's exit status).
pub fn run(cases: &[(&str, Case)]) -> i32 {
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        match case() {
            Ok(()) => {
                crate::println!("ktest {name} ok");
                passed += 1;
            }
            Err(why) => {
                crate::println!("ktest {name} FAILED: {why}");
                failed += 1;
            }
        }
    }
    crate::println!("{passed} passed, {failed} failed");
    failed
}

//! Parses what the guest printed on its serial port: banner, self-test results, faults.
//!
//! The kernel's contract: a banner line starting `microkernel v`, then a `memory:` line;
//! self-tests print `ktest <name> ok` or `ktest <name> FAILED: <reason>` and finally exactly
//! `N passed, M failed`; a panic prints a line starting `panic:`, a CPU exception one starting
//! `exception:`. Firmware (OVMF) may mix terminal escape sequences into the serial output, so
//! lines are cleaned of them first.

use std::fmt::Write as _;

use crate::qemu::{Boot, Outcome};

/// How one self-test went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Failed(String),
}

/// One `ktest` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub verdict: Verdict,
}

/// The closing `N passed, M failed` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
}

/// Everything recognised in the serial output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Cleaned lines (no `\r`, no escape sequences), in order.
    pub lines: Vec<String>,
    pub cases: Vec<TestCase>,
    pub summary: Option<Summary>,
}

impl Report {
    pub fn parse(serial: &str) -> Report {
        let lines: Vec<String> = serial.lines().map(clean_line).collect();
        let cases = lines.iter().filter_map(|line| parse_case(line)).collect();
        let summary = lines.iter().rev().find_map(|line| parse_summary(line));
        Report {
            lines,
            cases,
            summary,
        }
    }

    /// The verdict reported for test `name` (the last one if it was reported twice).
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.cases
            .iter()
            .rev()
            .find(|case| case.name == name)
            .map(|case| &case.verdict)
    }

    /// The failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &TestCase> {
        self.cases
            .iter()
            .filter(|case| matches!(case.verdict, Verdict::Failed(_)))
    }

    /// The first line starting with `prefix`.
    pub fn line_starting_with(&self, prefix: &str) -> Option<&str> {
        self.lines
            .iter()
            .map(String::as_str)
            .find(|line| line.starts_with(prefix))
    }

    /// The first line containing all of `needles`.
    pub fn line_containing(&self, needles: &[&str]) -> Option<&str> {
        self.lines
            .iter()
            .map(String::as_str)
            .find(|line| needles.iter().all(|needle| line.contains(needle)))
    }

    /// The banner, from `microkernel v` on. Found anywhere in a line, since firmware output
    /// without a final newline may precede it on the same line.
    pub fn banner(&self) -> Option<&str> {
        self.lines
            .iter()
            .find_map(|line| line.find("microkernel v").map(|at| &line[at..]))
    }

    pub fn memory_line(&self) -> Option<&str> {
        self.line_starting_with("memory:")
    }

    /// `N` from `usable <N> MiB` in the `memory:` line.
    pub fn usable_memory_mib(&self) -> Option<u64> {
        self.memory_line().and_then(usable_mib)
    }

    pub fn panic_line(&self) -> Option<&str> {
        self.line_starting_with("panic:")
    }

    pub fn exception_line(&self) -> Option<&str> {
        self.line_starting_with("exception:")
    }
}

/// Removes `\r`, ANSI escape sequences and other control characters from one line.
pub fn clean_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                // CSI: ESC [ parameters... final byte in '@'..='~'.
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // Two-character escapes such as ESC c or ESC (B's first part.
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn parse_case(line: &str) -> Option<TestCase> {
    let rest = line.strip_prefix("ktest ")?;
    let (name, result) = rest.split_once(' ')?;
    let verdict = if result.trim_end() == "ok" {
        Verdict::Ok
    } else {
        let reason = result.strip_prefix("FAILED")?;
        let reason = reason.strip_prefix(':').unwrap_or(reason);
        Verdict::Failed(reason.trim().to_string())
    };
    Some(TestCase {
        name: name.to_string(),
        verdict,
    })
}

fn parse_summary(line: &str) -> Option<Summary> {
    let (passed, failed) = line.trim_end().split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    let number = |text: &str| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    Some(Summary {
        passed: number(passed)?,
        failed: number(failed)?,
    })
}

/// `N` from the first `usable <N> MiB` in `line`.
pub fn usable_mib(line: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(3).find_map(|window| match window {
        ["usable", number, "MiB" | "MiB,"] => number.parse().ok(),
        _ => None,
    })
}

/// The last `count` lines of `serial`, indented, for failure messages.
pub fn tail(serial: &str, count: usize) -> String {
    let lines: Vec<String> = serial.lines().map(clean_line).collect();
    let skipped = lines.len().saturating_sub(count);
    let mut out = String::new();
    if skipped > 0 {
        let _ = writeln!(out, "    [... {skipped} earlier lines]");
    }
    if lines.is_empty() {
        out.push_str("    [no serial output]\n");
    }
    for line in &lines[skipped..] {
        let _ = writeln!(out, "    {line}");
    }
    out
}

/// Checks that the guest exited with code 0 and that every test in `expected` reported `ok`,
/// none failed and the summary agrees; the error is a readable list of what went wrong followed
/// by the end of the serial output.
pub fn check_all_passed(boot: &Boot, expected: &[&str]) -> Result<(), String> {
    check_all_passed_ending(boot, expected, Outcome::Guest(0))
}

/// [`check_all_passed`], for a boot that ends with `outcome` (a suite whose last case leaves
/// a failed server behind, which bootstrap reports in its status).
pub fn check_all_passed_ending(
    boot: &Boot,
    expected: &[&str],
    outcome: Outcome,
) -> Result<(), String> {
    let report = Report::parse(&boot.serial);
    let mut problems = Vec::new();
    if boot.outcome != outcome {
        let expected = match outcome {
            Outcome::Guest(code) => format!("the guest to report code {code}"),
            other => other.to_string(),
        };
        problems.push(format!("expected {expected}, but {}", boot.outcome));
    }
    for name in expected {
        match report.verdict(name) {
            Some(Verdict::Ok) => {}
            Some(Verdict::Failed(reason)) => {
                problems.push(format!("ktest {name} FAILED: {reason}"))
            }
            None => problems.push(format!("ktest {name} was not reported")),
        }
    }
    for case in report.failures() {
        if !expected.contains(&case.name.as_str()) {
            if let Verdict::Failed(reason) = &case.verdict {
                problems.push(format!("ktest {} FAILED: {reason}", case.name));
            }
        }
    }
    let reported_ok = report
        .cases
        .iter()
        .filter(|case| case.verdict == Verdict::Ok)
        .count();
    match report.summary {
        None => problems.push("no summary line `N passed, M failed`".to_string()),
        Some(summary) if summary.failed != 0 => {
            problems.push(format!("summary says {} failed", summary.failed));
        }
        Some(summary) if summary.passed as usize != reported_ok => problems.push(format!(
            "summary says {} passed but {reported_ok} `ktest ... ok` lines were printed",
            summary.passed
        )),
        Some(_) => {}
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut message = String::from("kernel self-tests did not all pass:\n");
    for problem in problems {
        let _ = writeln!(message, "  - {problem}");
    }
    let _ = write!(message, "last serial output:\n{}", tail(&boot.serial, 30));
    Err(message)
}

/// Panics with [`check_all_passed`]'s message unless all of `expected` passed.
#[track_caller]
pub fn assert_all_passed(boot: &Boot, expected: &[&str]) {
    if let Err(message) = check_all_passed(boot, expected) {
        panic!("{message}");
    }
}

/// What a boot's outcome means, for the message `cargo image run` ends with: guest code 1
/// is both a failed self-test and a program's non-zero status (the first task's, or the
/// status bootstrap powers the machine off with), which `serial` tells apart.
pub fn describe_outcome(outcome: crate::qemu::Outcome, serial: &str) -> String {
    use crate::qemu::Outcome;
    if outcome != Outcome::Guest(1) {
        return outcome.to_string();
    }
    if let Some(line) = serial
        .lines()
        .find(|line| line.trim_start().starts_with("host: shutdown by "))
    {
        let what = line.trim_start().trim_start_matches("host: shutdown by ");
        return format!(
            "the guest reported code 1: {what} (a program's status, not a self-test's: \
             `host: shutdown by` in the log)"
        );
    }
    let report = Report::parse(serial);
    match report.summary {
        Some(summary) if summary.failed > 0 => format!(
            "the guest reported code 1 (a self-test failed: {} of {} cases)",
            summary.failed,
            summary.failed + summary.passed
        ),
        _ => match serial.lines().find_map(|line| {
            line.split("all tasks have exited (init status ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
        }) {
            Some(status) => format!(
                "the guest reported code 1: the first task exited with status {status} (not a \
                 self-test: it reported no failed cases)"
            ),
            None => outcome.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_1_is_told_apart_by_the_log() {
        use crate::qemu::Outcome;
        let shutdown =
            "bootstrap: shell exited with status 1\nhost: shutdown by bootstrap with status 1\n";
        let message = describe_outcome(Outcome::Guest(1), shutdown);
        assert!(
            message.contains("bootstrap with status 1") && message.contains("not a self-test"),
            "{message}"
        );
        let tests = "ktest a ok\nktest b FAILED: no\n1 passed, 1 failed\nall tasks have exited (init status 1); shutting down\n";
        let message = describe_outcome(Outcome::Guest(1), tests);
        assert!(
            message.contains("a self-test failed: 1 of 2 cases"),
            "{message}"
        );
        let program =
            "hello from user space\nall tasks have exited (init status 3); shutting down\n";
        let message = describe_outcome(Outcome::Guest(1), program);
        assert!(
            message.contains("the first task exited with status 3"),
            "{message}"
        );
        assert_eq!(
            describe_outcome(Outcome::Guest(0), ""),
            Outcome::Guest(0).to_string()
        );
        assert_eq!(
            describe_outcome(Outcome::Guest(1), ""),
            Outcome::Guest(1).to_string()
        );
    }
    use super::*;
    use std::time::Duration;

    const SERIAL: &str = "microkernel v0.1.0 (boot: pvh)\r\n\
        memory: 255 MiB total, usable 250 MiB in 3 regions\r\n\
        ktest frame_allocator ok\r\n\
        ktest heap FAILED: alloc of 64 KiB returned null\r\n\
        ktest timer ok\r\n\
        2 passed, 1 failed\r\n";

    fn boot(outcome: Outcome, serial: &str) -> Boot {
        Boot {
            outcome,
            serial: serial.to_string(),
            qemu_stderr: String::new(),
            wall: Duration::ZERO,
            disk_image: None,
        }
    }

    #[test]
    fn parses_cases_and_summary() {
        let report = Report::parse(SERIAL);
        assert_eq!(report.banner(), Some("microkernel v0.1.0 (boot: pvh)"));
        assert_eq!(report.verdict("frame_allocator"), Some(&Verdict::Ok));
        assert_eq!(
            report.verdict("heap"),
            Some(&Verdict::Failed("alloc of 64 KiB returned null".into()))
        );
        assert_eq!(report.verdict("nope"), None);
        assert_eq!(
            report.summary,
            Some(Summary {
                passed: 2,
                failed: 1
            })
        );
        assert_eq!(report.usable_memory_mib(), Some(250));
        assert_eq!(report.failures().count(), 1);
    }

    #[test]
    fn summary_must_be_exact() {
        assert_eq!(
            parse_summary("3 passed, 0 failed"),
            Some(Summary {
                passed: 3,
                failed: 0
            })
        );
        assert_eq!(parse_summary("x3 passed, 0 failed"), None);
        assert_eq!(parse_summary("3 passed, 0 failed tests"), None);
        assert_eq!(parse_summary("-1 passed, 0 failed"), None);
        assert_eq!(parse_summary("passed, failed"), None);
    }

    #[test]
    fn test_lines_start_at_column_zero() {
        assert_eq!(parse_case("[info] ktest heap ok"), None);
        assert_eq!(parse_case("ktest heap"), None);
        assert_eq!(parse_case("ktest heap maybe"), None);
        assert_eq!(
            parse_case("ktest heap FAILED"),
            Some(TestCase {
                name: "heap".into(),
                verdict: Verdict::Failed(String::new())
            })
        );
    }

    #[test]
    fn cleans_escape_sequences_from_firmware() {
        assert_eq!(
            clean_line("\u{1b}[2J\u{1b}[01;01H\u{1b}[0mmicrokernel v1\r"),
            "microkernel v1"
        );
        let report = Report::parse("\u{1b}[=3h\u{1b}[2Jmicrokernel v0.1.0 (boot: limine)\n");
        assert_eq!(report.banner(), Some("microkernel v0.1.0 (boot: limine)"));
        let report = Report::parse("BdsDxe: loading Boot0001microkernel v0.1.0 (boot: limine)\n");
        assert_eq!(report.banner(), Some("microkernel v0.1.0 (boot: limine)"));
    }

    #[test]
    fn finds_fault_lines() {
        let report = Report::parse(
            "exception: #PF page fault\n  rip=0xffff800000001234 cr2=0xdead000\npanic: boom at src/main.rs:1:1\n",
        );
        assert_eq!(report.exception_line(), Some("exception: #PF page fault"));
        assert!(report.line_containing(&["cr2=0x"]).is_some());
        assert_eq!(report.panic_line(), Some("panic: boom at src/main.rs:1:1"));
    }

    #[test]
    fn usable_memory() {
        assert_eq!(usable_mib("memory: usable 63 MiB"), Some(63));
        assert_eq!(
            usable_mib("memory: usable 63 MiB, reserved 1 MiB"),
            Some(63)
        );
        assert_eq!(usable_mib("memory: 63 MiB"), None);
    }

    #[test]
    fn check_lists_every_problem() {
        let message = check_all_passed(
            &boot(Outcome::Guest(1), SERIAL),
            &["frame_allocator", "heap", "vm"],
        )
        .unwrap_err();
        assert!(message.contains("code 1 (a self-test failed)"), "{message}");
        assert!(
            message.contains("ktest heap FAILED: alloc of 64 KiB"),
            "{message}"
        );
        assert!(message.contains("ktest vm was not reported"), "{message}");
        assert!(message.contains("summary says 1 failed"), "{message}");
        assert!(message.contains("    2 passed, 1 failed"), "{message}");
    }

    #[test]
    fn check_accepts_a_clean_run() {
        let serial = "ktest a ok\nktest b ok\n2 passed, 0 failed\n";
        assert_eq!(
            check_all_passed(&boot(Outcome::Guest(0), serial), &["a", "b"]),
            Ok(())
        );
        let missing_summary = check_all_passed(&boot(Outcome::Guest(0), "ktest a ok\n"), &["a"]);
        assert!(missing_summary.unwrap_err().contains("no summary line"));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(
            tail("a\nb\nc\n", 2),
            "    [... 1 earlier lines]\n    b\n    c\n"
        );
        assert_eq!(tail("", 5), "    [no serial output]\n");
    }
}

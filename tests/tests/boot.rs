//! Boot-path tests: the banner, command-line handling and the `mem=` cap.

use kernel_tests::{boot, Outcome};

#[test]
fn pvh_boot_reaches_banner() {
    let run = boot("pvh_boot_reaches_banner", "");
    run.expect_outcome(Outcome::Guest(0));
    if run.report.banner().is_none() {
        run.fail("no banner (a line starting with `microkernel v`)");
    }
    run.expect_line_starting_with("memory:", "memory line");
}

#[test]
fn unknown_option_is_reported() {
    let run = boot("unknown_option_is_reported", "frobnicate=1");
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_containing(
        &["unknown option", "frobnicate"],
        "complaint about the option",
    );
}

#[test]
fn mem_cap_is_applied() {
    let run = boot("mem_cap_is_applied", "mem=64M test=frame_allocator");
    run.expect_all_passed(&["frame_allocator"]);
    let line = run.expect_line_starting_with("memory:", "memory line");
    match image::report::usable_mib(line) {
        Some(usable) if usable <= 64 => {}
        Some(usable) => run.fail(&format!(
            "mem=64M but the kernel reports usable {usable} MiB"
        )),
        None => run.fail(&format!("no `usable <N> MiB` in the memory line {line:?}")),
    }
}

/// The smallest machine the kernel accepts is not in pageout at rest (its reserves and the
/// pageout target scale with memory): it boots to the shell and runs a workload that pages.
#[test]
fn an_8_mib_machine_boots_to_the_shell_and_pages() {
    let run = boot(
        "an_8_mib_machine_boots_to_the_shell_and_pages",
        r#"mem=8M sh="ps; sheeptest 2 2M 1""#,
    );
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_starting_with("sheeptest: passed: 2 workers", "sheeptest's verdict");
    let line = run.expect_line_starting_with("sheeptest: pageouts ", "the pageouts");
    assert!(
        !line.starts_with("sheeptest: pageouts 0 "),
        "nothing paged: {line}"
    );
}

#[test]
fn mem_too_small_panics() {
    let run = boot("mem_too_small_panics", "mem=1M");
    run.expect_outcome(Outcome::Guest(2));
    let line = run.expect_line_starting_with("panic:", "panic line");
    if !line.contains("mem=") {
        run.fail(&format!("the panic line does not mention `mem=`: {line:?}"));
    }
}

#[test]
fn archive_arrives_as_a_module() {
    let run = boot("archive_arrives_as_a_module", "");
    run.expect_outcome(Outcome::Guest(0));
    let line = run.expect_line_starting_with("memory:", "memory line");
    match modules_kib(line) {
        Some(kib) if kib > 0 => {}
        Some(_) => run.fail(&format!(
            "booted with the archive ({}) but the kernel reports no modules: {line:?}",
            kernel_tests::archive().display()
        )),
        None => run.fail(&format!("no `modules <N> KiB` in the memory line {line:?}")),
    }
}

/// `N` from `modules <N> KiB` in the kernel's memory line.
fn modules_kib(line: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(3).find_map(|window| match window {
        ["modules", number, "KiB" | "KiB,"] => number.parse().ok(),
        _ => None,
    })
}

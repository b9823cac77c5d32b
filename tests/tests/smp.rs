//! The kernel on several processors: `smp_test` (every CPU runs threads, TLB shootdown on
//! fork, threads stopped on other CPUs) on one, two and four CPUs, and `cpus=` keeping the
//! kernel to fewer than QEMU gives it. The IPC, VM and pager suites also run on two and four
//! CPUs (in their own files).

use kernel_tests::{boot_with, direct_options, GuestRun};
use std::time::Duration;

const CASES: &[&str] = &[
    "every_cpu_runs_threads",
    "a_childs_memory_stays_put_while_the_parent_writes",
    "a_thread_running_elsewhere_is_stopped",
    "a_bound_thread_runs_only_on_its_cpu",
];

fn smp_test(name: &str, qemu_cpus: u32, cmdline: &str) -> GuestRun {
    let mut opts = direct_options(cmdline);
    opts.smp = qemu_cpus;
    opts.timeout = Some(Duration::from_secs(120));
    let run = boot_with(name, &opts);
    run.expect_exactly(CASES);
    run
}

#[test]
fn one_cpu() {
    let run = smp_test("smp_one_cpu", 1, "init=smp_test init_arg=1");
    if run
        .report
        .line_containing(&["smp:", "CPUs online"])
        .is_some()
    {
        run.fail("one CPU reported as several");
    }
}

#[test]
fn two_cpus() {
    let run = smp_test("smp_two_cpus", 2, "init=smp_test init_arg=2");
    run.expect_line_containing(&["smp: 2 CPUs online"], "the CPUs started");
}

#[test]
fn four_cpus() {
    let run = smp_test("smp_four_cpus", 4, "init=smp_test init_arg=4");
    run.expect_line_containing(&["smp: 4 CPUs online"], "the CPUs started");
}

#[test]
fn cpus_option_keeps_the_kernel_to_fewer() {
    smp_test("smp_cpus_option", 4, "init=smp_test init_arg=2 cpus=2");
}

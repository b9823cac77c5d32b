//! Linux in the same QEMU (`cargo image bench sheeptest --linux`): Debian's cloud kernel with
//! the initramfs the tool writes runs sheeptest from `linux-workloads/` on the virtio disk as
//! swap, under a memory cgroup, and reports the figures the microkernel's program reports.
//!
//! It needs the kernel package unpacked in `target/linux/kernel` (the first `cargo image
//! bench sheeptest --linux` downloads it); without it the test says so and passes, so the
//! suite stays offline.

use kernel_tests::{boot_with, test_disk, BootOptions, Outcome};
use std::time::Duration;

#[test]
fn linux_runs_sheeptest_in_a_memory_cgroup_and_reports_the_same_figures() {
    let unpacked = image::linux::kernel::unpack_dir();
    if image::linux::kernel::find_unpacked(&unpacked).is_none() {
        eprintln!(
            "skipped: no Linux kernel in {} (run `cargo image bench sheeptest --linux` once to \
             fetch Debian's {})",
            unpacked.display(),
            image::linux::kernel::PACKAGE
        );
        return;
    }
    let guest = image::linux::prepare().expect("the Linux kernel, program and initramfs");
    let ours = ["init=sheeptest", "args=2,8M,1", "mem=12M"].map(String::from);
    let cmdline = image::linux::cmdline_for(&ours, false).unwrap().join(" ");
    let mut opts = BootOptions::direct(guest.kernel.vmlinuz.clone(), cmdline);
    opts.archive = Some(guest.initramfs.clone());
    opts.timeout = Some(Duration::from_secs(180));
    let opts = opts.with_disk(test_disk(64));
    let run = boot_with(
        "linux_runs_sheeptest_in_a_memory_cgroup_and_reports_the_same_figures",
        &opts,
    );
    run.expect_outcome(Outcome::Guest(0));
    run.expect_line_containing(
        &["memory limit 12288 KiB (memory cgroup)"],
        "the cgroup's limit",
    );
    run.expect_line_containing(
        &["sheeptest: passed: 2 workers verified every byte"],
        "the verdict",
    );
    let line = run.expect_line_starting_with("sheeptest: faults ", "the swapping");
    let swapped_out: u64 = line
        .split(" out ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| run.fail("no pages swapped out in the report"));
    assert!(
        swapped_out > 0,
        "16 MiB of workers in a 12 MiB cgroup swapped nothing: {line}"
    );
    for metric in ["free_kib", "instructions", "disk_ops", "elapsed_s"] {
        run.expect_line_starting_with(
            &format!("bench sheeptest.{metric}.2x8m "),
            "a figure as the microkernel's program prints it",
        );
    }
}

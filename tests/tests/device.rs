//! The kernel's virtio-blk disk behind device ports, tested from user space: `device_test`
//! runs as the first task with a 64 MiB disk and reads and writes it through `libipc::device`
//! (status, round trips of 1 to 64 pages, requests in flight, every refusal); then with a
//! disk that fails some requests (`--disk-fault`), with a slow one (requests wait for room in
//! the ring), and with none (it says so and runs nothing). And with little memory: pages read
//! from the disk paged out to zpager and back.

use std::time::Duration;

use kernel_tests::{boot_with, direct_options, direct_options_with_disk, test_disk, Outcome};
use kernel_tests::{direct_options_with_faulty_disk, Verdict};

/// The disk every boot here gets: `device_test` needs at least 48 MiB.
const DISK_MIB: u32 = 64;

const CASES: &[&str] = &[
    "status_describes_the_disk",
    "open_gives_the_same_port_each_time",
    "zeros_written_read_back_as_zeros",
    "pages_written_read_back",
    "a_later_write_replaces_what_it_covers",
    "pages_from_the_disk_are_pageable",
    "copied_memory_is_written_and_kept",
    "many_requests_in_flight_each_answered_once",
    "many_answers_to_one_reply_port",
    "transfers_lose_no_memory",
    "a_reply_port_destroyed_early_loses_nothing",
    "unknown_device_names_are_refused",
    "misaligned_offsets_are_bad_offset",
    "bad_lengths_are_bad_size",
    "transfers_past_the_end_are_out_of_range",
    "untouched_memory_is_not_resident_and_comes_back",
    "unknown_and_malformed_messages_get_error_replies",
    "requests_without_a_reply_port_do_nothing",
    "the_device_master_needs_the_host_port",
];

/// `device_test`'s faults (its `faults::SPEC`): writes of the page at sector 2048 fail, reads
/// of the page at sector 4096 fail, and each sector of the page at 6144 fails one write.
const FAULTS: &str = "write@2048+8,read@4096+8,write@6144+8:once";

const FAULTY_CASES: &[&str] = &[
    "a_failed_write_gives_its_pages_back",
    "a_failed_read_is_an_io_error",
    "a_write_that_failed_once_works_when_sent_again",
    "failures_in_flight_leave_the_others_alone",
    "the_rest_of_the_disk_still_works",
];

const SLOW_CASES: &[&str] = &[
    "many_requests_in_flight_each_answered_once",
    "many_answers_to_one_reply_port",
    "a_reply_port_destroyed_early_loses_nothing",
];

/// Requests a second the slow disk takes: 48 requests sent at once outlast QEMU's burst
/// allowance, so some wait for room in the driver's 32 slots.
const SLOW_IOPS: u32 = 100;

#[test]
fn device_ports_read_and_write_the_disk() {
    let run = boot_with(
        "device_ports_read_and_write_the_disk",
        &direct_options_with_disk("init=device_test", DISK_MIB),
    );
    run.expect_exactly(CASES);
    run.expect_line_containing(
        &["devices: disk0: virtio-blk", "64 MiB", "MSI-X interrupts"],
        "the kernel's line for the disk",
    );
    let bytes = format!("{} bytes", u64::from(DISK_MIB) << 20);
    run.expect_line_containing(
        &[
            "device_test: disk0:",
            &bytes,
            "block size 512",
            "max transfer 262144",
        ],
        "the disk's status as device_test got it",
    );
}

#[test]
fn device_errors_reach_the_client_with_its_pages() {
    let run = boot_with(
        "device_errors_reach_the_client_with_its_pages",
        &direct_options_with_faulty_disk("init=device_test init_arg=1", DISK_MIB, FAULTS),
    );
    run.expect_exactly(FAULTY_CASES);
}

#[test]
fn device_requests_wait_for_room_on_a_slow_disk() {
    let opts = direct_options("init=device_test init_arg=2")
        .with_disk(test_disk(DISK_MIB).with_iops(SLOW_IOPS));
    let run = boot_with("device_requests_wait_for_room_on_a_slow_disk", &opts);
    run.expect_exactly(SLOW_CASES);
}

#[test]
fn device_test_without_a_disk_says_so() {
    let run = boot_with(
        "device_test_without_a_disk_says_so",
        &direct_options("init=device_test"),
    );
    run.expect_outcome(Outcome::Guest(1));
    run.expect_line_containing(
        &["device_test: no disk", "NoSuchDevice"],
        "device_test's report that there is no disk",
    );
    run.expect_line_containing(
        &["task device_test exited with status 77"],
        "device_test's exit status for no disk",
    );
    if run.report.line_containing(&["devices: disk0"]).is_some() {
        run.fail("the kernel found a disk in a boot without one");
    }
    if let Some(case) = run.report.cases.first() {
        let verdict = match &case.verdict {
            Verdict::Ok => "ok".to_string(),
            Verdict::Failed(why) => format!("FAILED: {why}"),
        };
        run.fail(&format!(
            "no case should run without a disk, but {} {verdict}",
            case.name
        ));
    }
}

/// Pages read from the disk are ordinary memory: paged out (to zpager) and back. Every read
/// is an object of its own; this once sent nearly all memory to zpager at once (the pageout
/// daemon counted only free frames toward its target), until pages in flight to pagers
/// counted too.
#[test]
fn pages_read_from_the_disk_are_paged_out_and_back() {
    let mut opts = direct_options_with_disk("init=device_test init_arg=3 mem=32M", DISK_MIB);
    opts.timeout = Some(Duration::from_secs(60));
    let run = boot_with("pages_read_from_the_disk_are_paged_out_and_back", &opts);
    run.expect_exactly(&["pages_read_from_the_disk_are_paged_out_and_back"]);
    run.expect_line_containing(
        &["device_test: 40 MiB read and kept", "0 words wrong"],
        "the pressure report",
    );
}

//! A disk that fails some requests (`init_arg=1`, booted with `--disk-fault` as [`SPEC`]
//! says): a failed write gives its pages back intact, a failed read is an `Io` error, a
//! failure among requests in flight touches none of the others, and the rest of the disk
//! keeps working.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use libipc::device::{device, DeviceError, Written, MAX_TRANSFER};
use libipc::interface::{decode_reply, Pages, RemoteError};
use libipc::ipc::MessageBuffer;

use crate::cases::{check, check_pattern, patterned, Disk, ReplyPorts, PAGE};

/// The faults the suite expects, as `--disk-fault` takes them (in 512-byte sectors; the
/// host test boots with this very string): writes of the page at 1 MiB always fail, reads of
/// the page at 2 MiB always fail, and each sector of the page at 3 MiB fails one write.
pub const SPEC: &str = "write@2048+8,read@4096+8,write@6144+8:once";

/// The page writes to which fail.
const WRITE_FAILS_AT: u64 = 2048 * 512;
/// The page reads of which fail.
const READ_FAILS_AT: u64 = 4096 * 512;
/// The page each sector of which fails one write.
const WRITE_FAILS_ONCE_AT: u64 = 6144 * 512;
/// Where requests that work go (no fault there).
const HEALTHY: u64 = 16 << 20;

pub fn a_failed_write_gives_its_pages_back() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = WRITE_FAILS_AT;
    // The failing page alone, as the third of four, and inside a whole transfer.
    for (offset, length, seed) in [
        (at, PAGE, 1),
        (at - 2 * PAGE, 4 * PAGE, 2),
        (at - 32 * PAGE, MAX_TRANSFER, 3),
    ] {
        let back = disk.write_refused(offset, patterned(offset, length, seed)?, DeviceError::Io)?;
        check_pattern(back.as_slice(), offset, seed)
            .map_err(|why| format!("{length:#x} at {offset:#x} given back: {why}"))?;
        // The pages given back are as good as any: written elsewhere, they read back.
        disk.write(HEALTHY, back)?;
        let again = disk.read(HEALTHY, length)?;
        check_pattern(again.as_slice(), offset, seed)
            .map_err(|why| format!("the given-back pages written again: {why}"))?;
    }
    // The pages on either side take writes.
    for (offset, seed) in [(at - PAGE, 4), (at + PAGE, 5)] {
        disk.write_pattern(offset, PAGE, seed)?;
        disk.read_pattern(offset, PAGE, seed)?;
    }
    Ok(())
}

pub fn a_failed_read_is_an_io_error() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = READ_FAILS_AT;
    // Writes there work.
    disk.write_pattern(at - PAGE, 3 * PAGE, 10)?;
    for (offset, length) in [
        (at, PAGE),
        (at - PAGE, 3 * PAGE),
        (at - 32 * PAGE, MAX_TRANSFER),
    ] {
        disk.read_refused(offset, length, DeviceError::Io)?;
    }
    disk.read_pattern(at - PAGE, PAGE, 10)?;
    disk.read_pattern(at + PAGE, PAGE, 10)
}

pub fn a_write_that_failed_once_works_when_sent_again() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = WRITE_FAILS_ONCE_AT;
    let length = 2 * PAGE;
    let mut pages = patterned(at, length, 20)?;
    let mut failures = 0;
    loop {
        match disk.client.write(at, pages) {
            Ok(Written::Done) => break,
            Ok(Written::Failed(DeviceError::Io, back)) => {
                failures += 1;
                check!(back.len() == length, "{:#x} bytes given back", back.len());
                check_pattern(back.as_slice(), at, 20)
                    .map_err(|why| format!("given back after failure {failures}: {why}"))?;
                // Each of the page's 8 sectors fails once at most.
                check!(failures <= 8, "the write failed {failures} times");
                pages = back;
            }
            other => return Err(format!("write {length:#x} at {at:#x}: {other:?}")),
        }
    }
    libipc::println!("device_test: the write failed {failures} times, then worked");
    check!(
        failures >= 1,
        "the write never failed: is the disk faulty as {SPEC}?"
    );
    disk.read_pattern(at, length, 20)?;
    // It works from now on.
    disk.write_pattern(at, length, 21)?;
    disk.read_pattern(at, length, 21)
}

/// Request `i` of the batch in flight: 2 pages in a 64 KiB slot of its own.
fn slot(i: usize) -> u64 {
    HEALTHY + (4 << 20) + i as u64 * 16 * PAGE
}

pub fn failures_in_flight_leave_the_others_alone() -> Result<(), String> {
    const COUNT: usize = 40;
    const FAILING: usize = 5;
    let disk = Disk::open()?;
    let mut device = disk.async_client()?;
    let replies = ReplyPorts::new(COUNT)?;
    let mut buffer = Box::new(MessageBuffer::new());
    // Write `FAILING` goes where writes fail; the others where they work.
    let write_at = |i: usize| {
        if i == FAILING {
            WRITE_FAILS_AT
        } else {
            slot(i)
        }
    };
    for i in 0..COUNT {
        let offset = write_at(i);
        device
            .write(
                replies.name(i),
                offset,
                patterned(offset, 2 * PAGE, 30 + i as u64)?,
            )
            .map_err(|e| format!("send write {i}: {e:?}"))?;
    }
    for _ in 0..COUNT {
        let (i, answer) = replies.receive(&mut buffer)?;
        match decode_reply::<Written, DeviceError>(&answer, device::ids::write) {
            Ok(Written::Done) if i != FAILING => {}
            Ok(Written::Failed(DeviceError::Io, back)) if i == FAILING => {
                check_pattern(back.as_slice(), WRITE_FAILS_AT, 30 + i as u64)
                    .map_err(|why| format!("write {i} given back: {why}"))?;
            }
            other => return Err(format!("write {i}: {other:?}")),
        }
    }
    replies.expect_quiet()?;
    // Read `FAILING` reads where reads fail.
    let read_at = |i: usize| if i == FAILING { READ_FAILS_AT } else { slot(i) };
    for i in 0..COUNT {
        device
            .read(replies.name(i), read_at(i), 2 * PAGE)
            .map_err(|e| format!("send read {i}: {e:?}"))?;
    }
    for _ in 0..COUNT {
        let (i, answer) = replies.receive(&mut buffer)?;
        let read = decode_reply::<Pages, DeviceError>(&answer, device::ids::read);
        match read {
            Ok(pages) if i != FAILING => check_pattern(pages.as_slice(), slot(i), 30 + i as u64)
                .map_err(|why| format!("read {i}: {why}"))?,
            Err(RemoteError::Server(DeviceError::Io)) if i == FAILING => {}
            other => return Err(format!("read {i}: {other:?}")),
        }
    }
    replies.expect_quiet()
}

pub fn the_rest_of_the_disk_still_works() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let end = disk.status.size;
    let mut seed = 100;
    for offset in [0, 8 << 20, HEALTHY + 512, end - MAX_TRANSFER] {
        for length in [PAGE, 16 * PAGE, MAX_TRANSFER] {
            seed += 1;
            disk.write_pattern(offset, length, seed)?;
            disk.read_pattern(offset, length, seed)?;
        }
    }
    crate::transfers::many_requests_in_flight_each_answered_once()
}

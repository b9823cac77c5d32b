//! Transfers that work: the disk's status, pages written and read back byte for byte, many
//! requests in flight answered in any order, and no memory lost on the way.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use libipc::abi::message::Disposition;
use libipc::device::{device, DeviceError, Written, FIRST_DISK, MAX_TRANSFER};
use libipc::interface::{decode_reply, Encoder, Pages, MAX_BODY};
use libipc::ipc::{self, MessageBuffer, ReceiveRight};
use libipc::sys;

use crate::cases::{
    check, check_pattern, check_zeros, err, fill, free_frames, open, patterned, pause, region,
    Disk, ReplyPorts, MIN_DISK, PAGE,
};

/// Pages in the largest transfer.
const MAX_PAGES: u64 = MAX_TRANSFER / PAGE;

/// Requests sent before any answer is taken: more than the 32 the device's ring holds.
const IN_FLIGHT: usize = 48;

pub fn status_describes_the_disk() -> Result<(), String> {
    let disk = Disk::open()?;
    let s = disk.status;
    libipc::println!(
        "device_test: {FIRST_DISK}: {} bytes, block size {}, max transfer {}{}",
        s.size,
        s.block_size,
        s.max_transfer,
        if s.read_only { ", read-only" } else { "" }
    );
    check!(s.block_size == 512, "block size {}, not 512", s.block_size);
    check!(
        s.size >= MIN_DISK && s.size % u64::from(s.block_size) == 0,
        "size {:#x}",
        s.size
    );
    check!(!s.read_only, "the disk says it is read-only");
    check!(
        s.max_transfer == MAX_TRANSFER,
        "max transfer {:#x}, not MAX_TRANSFER ({MAX_TRANSFER:#x})",
        s.max_transfer
    );
    Ok(())
}

pub fn open_gives_the_same_port_each_time() -> Result<(), String> {
    let first = open(FIRST_DISK)?;
    let second = open(FIRST_DISK)?;
    check!(
        first.name() == second.name(),
        "two opens gave names {:#x} and {:#x}: not one port",
        first.name(),
        second.name()
    );
    // Each open gave a reference of its own: the port still answers with one of them gone.
    drop(first);
    let mut client = device::Client::new(second);
    client.get_status().map_err(err("get_status"))?;
    Ok(())
}

/// Zeros written over data read back as zeros: the pages a read brings hold what the device
/// put there, nothing of what the frames held before. (The disk image may have been used by
/// an earlier run, so never-written sectors prove nothing.)
pub fn zeros_written_read_back_as_zeros() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = region::ZEROS;
    disk.write_pattern(at, MAX_TRANSFER, 90)?;
    disk.read_pattern(at, MAX_TRANSFER, 90)?;
    let mut zeros = Pages::allocate(MAX_TRANSFER).map_err(err("allocate"))?;
    // Written to, so that they are in memory.
    zeros.as_mut_slice().fill(0);
    disk.write(at, zeros)?;
    let pages = disk.read(at, MAX_TRANSFER)?;
    check_zeros(pages.as_slice(), "zeros written")
}

pub fn pages_written_read_back() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let end = disk.status.size;
    let base = region::ROUND_TRIP;
    // Page-aligned or only sector-aligned offsets, and the disk's very end.
    let offsets = [
        base,
        base + 3 * 512,
        base + (1 << 20) + 7 * 512,
        base + (4 << 20),
        end - MAX_TRANSFER,
    ];
    let mut seed = 1000;
    for pages in [1, 4, 16, MAX_PAGES] {
        for &offset in &offsets {
            seed += 1;
            let length = pages * PAGE;
            let offset = offset.min(end - length);
            disk.write_pattern(offset, length, seed)?;
            disk.read_pattern(offset, length, seed)?;
        }
    }
    // The last page alone, and a read that spans two earlier writes.
    disk.write_pattern(end - PAGE, PAGE, 77)?;
    disk.read_pattern(end - PAGE, PAGE, 77)?;
    disk.write_pattern(base + (6 << 20), 4 * PAGE, 78)?;
    disk.write_pattern(base + (6 << 20) + 4 * PAGE, 4 * PAGE, 79)?;
    let both = disk.read(base + (6 << 20), 8 * PAGE)?;
    let (first, second) = both.as_slice().split_at(4 * PAGE as usize);
    check_pattern(first, base + (6 << 20), 78).map_err(|why| format!("first half: {why}"))?;
    check_pattern(second, base + (6 << 20) + 4 * PAGE, 79)
        .map_err(|why| format!("second half: {why}"))
}

pub fn a_later_write_replaces_what_it_covers() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = region::OVERWRITE;
    disk.write_pattern(at, 16 * PAGE, 200)?;
    // Three pages from a sector-aligned offset inside the fourth page.
    let inner = at + 3 * PAGE + 5 * 512;
    disk.write_pattern(inner, 3 * PAGE, 201)?;
    let pages = disk.read(at, 16 * PAGE)?;
    let bytes = pages.as_slice();
    let (from, to) = ((inner - at) as usize, (inner - at + 3 * PAGE) as usize);
    check_pattern(&bytes[..from], at, 200).map_err(|why| format!("before: {why}"))?;
    check_pattern(&bytes[from..to], inner, 201).map_err(|why| format!("the new: {why}"))?;
    check_pattern(&bytes[to..], at + to as u64, 200).map_err(|why| format!("after: {why}"))
}

/// Pages a read brings, and pages a refused write gives back, are memory like any other:
/// the pageout daemon knows them (they count as resident pages), so they can be paged out.
pub fn pages_from_the_disk_are_pageable() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let resident = || -> Result<u64, String> {
        Ok(sys::vm_statistics()
            .map_err(err("vm_statistics"))?
            .resident_pages)
    };
    let before = resident()?;
    let pages = disk.read(region::ROUND_TRIP, MAX_TRANSFER)?;
    let with_read = resident()?;
    check!(
        with_read >= before + MAX_PAGES - 4,
        "{} resident pages before a read of {MAX_PAGES} pages, {with_read} after",
        before
    );
    drop(pages);
    let sent = patterned(region::ROUND_TRIP, MAX_TRANSFER, 1)?;
    let before = resident()?;
    let back = disk.write_refused(region::ROUND_TRIP + 1, sent, DeviceError::BadOffset)?;
    let with_back = resident()?;
    check!(
        with_back + 4 >= before,
        "{before} resident pages before a refused write of {MAX_PAGES} pages, {with_back} \
         once they came back"
    );
    drop(back);
    Ok(())
}

/// A write whose memory travels copied (not moved): the kernel writes from a copy and the
/// sender keeps its pages as they were.
pub fn copied_memory_is_written_and_kept() -> Result<(), String> {
    let disk = Disk::open()?;
    let at = region::OVERWRITE + (1 << 20);
    let length = 8 * PAGE;
    let mut pages = patterned(at, length, 300)?;
    let reply = ReceiveRight::allocate().map_err(err("reply port"))?;
    let mut body = vec![0u8; MAX_BODY];
    let mut encoder = Encoder::new(&mut body);
    encoder.data(&at).map_err(err("encode"))?;
    encoder
        .memory(pages.address(), length as u32, false)
        .map_err(err("encode"))?;
    let message = encoder
        .message(device::ids::write)
        .map_err(err("message"))?
        .to(disk.port(), Disposition::CopySend)
        .reply_to(reply.name());
    let mut buffer = Box::new(MessageBuffer::new());
    let answer =
        ipc::call(&message, reply.name(), &mut buffer, Some(10_000)).map_err(err("call write"))?;
    match decode_reply::<Written, DeviceError>(&answer, device::ids::write) {
        Ok(Written::Done) => {}
        other => return Err(format!("a copied write: {other:?}")),
    }
    check_pattern(pages.as_slice(), at, 300).map_err(|why| format!("the sender's: {why}"))?;
    let mut disk = disk;
    disk.read_pattern(at, length, 300)?;
    // The sender's pages are still its own: changed now, the disk keeps what was sent.
    fill(pages.as_mut_slice(), at, 301);
    disk.read_pattern(at, length, 300)
}

/// The offset, length and seed of in-flight request `i` from `base`: sizes from 1 to 16
/// pages, each in its own 64 KiB, some only sector-aligned.
fn in_flight_request(base: u64, i: usize) -> (u64, u64, u64) {
    let offset = base + i as u64 * (16 * PAGE) + if i.is_multiple_of(5) { 512 } else { 0 };
    let pages = 1 + (i as u64 * 7) % 15;
    (offset, pages * PAGE, 5000 + i as u64)
}

pub fn many_requests_in_flight_each_answered_once() -> Result<(), String> {
    let disk = Disk::open()?;
    let mut device = disk.async_client()?;
    let replies = ReplyPorts::new(IN_FLIGHT)?;
    let mut buffer = Box::new(MessageBuffer::new());
    for i in 0..IN_FLIGHT {
        let (offset, length, seed) = in_flight_request(region::IN_FLIGHT, i);
        let pages = patterned(offset, length, seed)?;
        device
            .write(replies.name(i), offset, pages)
            .map_err(err("send a write"))?;
    }
    let mut answered = [false; IN_FLIGHT];
    for _ in 0..IN_FLIGHT {
        let (i, answer) = replies.receive(&mut buffer)?;
        check!(!answered[i], "write {i} was answered twice");
        answered[i] = true;
        match decode_reply::<Written, DeviceError>(&answer, device::ids::write) {
            Ok(Written::Done) => {}
            other => return Err(format!("write {i}: {other:?}")),
        }
    }
    replies.expect_quiet()?;
    for i in 0..IN_FLIGHT {
        let (offset, length, _) = in_flight_request(region::IN_FLIGHT, i);
        device
            .read(replies.name(i), offset, length)
            .map_err(err("send a read"))?;
    }
    let mut answered = [false; IN_FLIGHT];
    for _ in 0..IN_FLIGHT {
        let (i, answer) = replies.receive(&mut buffer)?;
        check!(!answered[i], "read {i} was answered twice");
        answered[i] = true;
        let (offset, length, seed) = in_flight_request(region::IN_FLIGHT, i);
        let pages = decode_reply::<Pages, DeviceError>(&answer, device::ids::read)
            .map_err(|e| format!("read {i}: {e}"))?;
        check!(pages.len() == length, "read {i}: {:#x} bytes", pages.len());
        check_pattern(pages.as_slice(), offset, seed).map_err(|why| format!("read {i}: {why}"))?;
    }
    replies.expect_quiet()
}

/// Every answer to one port: the writes are counted, the reads known by their length and
/// contents.
pub fn many_answers_to_one_reply_port() -> Result<(), String> {
    let disk = Disk::open()?;
    let mut device = disk.async_client()?;
    let replies = ReplyPorts::new(1)?;
    let mut buffer = Box::new(MessageBuffer::new());
    const COUNT: usize = 40;
    // Distinct lengths tell the reads apart: 1 to 40 pages.
    let request = |i: usize| {
        let pages = i as u64 + 1;
        (
            region::ONE_PORT + i as u64 * COUNT as u64 * PAGE,
            pages * PAGE,
            7000 + i as u64,
        )
    };
    for i in 0..COUNT {
        let (offset, length, seed) = request(i);
        device
            .write(replies.name(0), offset, patterned(offset, length, seed)?)
            .map_err(err("send a write"))?;
    }
    for i in 0..COUNT {
        let (_, answer) = replies.receive(&mut buffer)?;
        match decode_reply::<Written, DeviceError>(&answer, device::ids::write) {
            Ok(Written::Done) => {}
            other => return Err(format!("answer {i} to the writes: {other:?}")),
        }
    }
    replies.expect_quiet()?;
    for i in 0..COUNT {
        let (offset, length, _) = request(i);
        device
            .read(replies.name(0), offset, length)
            .map_err(err("send a read"))?;
    }
    let mut answered = [false; COUNT];
    for _ in 0..COUNT {
        let (_, answer) = replies.receive(&mut buffer)?;
        let pages = decode_reply::<Pages, DeviceError>(&answer, device::ids::read)
            .map_err(|e| format!("a read: {e}"))?;
        let i = (pages.len() / PAGE) as usize - 1;
        check!(
            i < COUNT && !answered[i],
            "a read of {:#x} bytes",
            pages.len()
        );
        answered[i] = true;
        let (offset, _, seed) = request(i);
        check_pattern(pages.as_slice(), offset, seed).map_err(|why| format!("read {i}: {why}"))?;
    }
    replies.expect_quiet()
}

/// Free frames may move by this much for reasons of their own (the kernel heap, page
/// tables): far less than one round of the cases below moves.
const FRAME_SLACK: u64 = 24;

/// One round of transfers and refusals, every page let go afterwards.
fn round(
    disk: &mut Disk,
    device: &mut device::AsyncClient,
    replies: &ReplyPorts,
) -> Result<(), String> {
    let at = region::ACCOUNTING;
    for i in 0..8 {
        disk.write_pattern(at + i * 16 * PAGE, 16 * PAGE, 400 + i)?;
        disk.read_pattern(at + i * 16 * PAGE, 16 * PAGE, 400 + i)?;
    }
    // Refused writes bring their pages back; they go here.
    drop(disk.write_refused(
        at + 512 + 1,
        patterned(at, 4 * PAGE, 1)?,
        DeviceError::BadOffset,
    )?);
    let untouched = Pages::allocate(4 * PAGE).map_err(err("allocate"))?;
    drop(disk.write_refused(at, untouched, DeviceError::NotResident)?);
    disk.read_refused(disk.status.size, PAGE, DeviceError::OutOfRange)?;
    // A batch in flight.
    let mut buffer = Box::new(MessageBuffer::new());
    for i in 0..IN_FLIGHT {
        let (offset, length, seed) = in_flight_request(at, i);
        device
            .write(replies.name(0), offset, patterned(offset, length, seed)?)
            .map_err(err("send a write"))?;
    }
    for i in 0..IN_FLIGHT {
        let (offset, length, _) = in_flight_request(at, i);
        device
            .read(replies.name(0), offset, length)
            .map_err(err("send a read"))?;
    }
    for _ in 0..2 * IN_FLIGHT {
        let (_, answer) = replies.receive(&mut buffer)?;
        if answer.id() == libipc::interface::reply_id(device::ids::write) {
            match decode_reply::<Written, DeviceError>(&answer, device::ids::write) {
                Ok(Written::Done) => {}
                other => return Err(format!("a write in flight: {other:?}")),
            }
        } else {
            decode_reply::<Pages, DeviceError>(&answer, device::ids::read)
                .map_err(|e| format!("a read in flight: {e}"))?;
        }
    }
    Ok(())
}

pub fn transfers_lose_no_memory() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let mut device = disk.async_client()?;
    let replies = ReplyPorts::new(1)?;
    // The first round grows what is kept for reuse (heaps, tables); later ones must not.
    round(&mut disk, &mut device, &replies)?;
    let before = free_frames()?;
    for _ in 0..8 {
        round(&mut disk, &mut device, &replies)?;
    }
    let after = free_frames()?;
    check!(
        after + FRAME_SLACK >= before,
        "{} frames fewer free after 8 rounds ({before} before, {after} after)",
        before - after
    );
    Ok(())
}

/// Requests whose reply port is destroyed before they finish: the device finishes them,
/// the answers (and read pages) are thrown away, nothing is kept.
pub fn a_reply_port_destroyed_early_loses_nothing() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let mut device = disk.async_client()?;
    let at = region::ACCOUNTING + (4 << 20);
    let batch = |device: &mut device::AsyncClient, reply: u32, seed: u64| -> Result<(), String> {
        for i in 0..16 {
            let offset = at + i * MAX_TRANSFER;
            device
                .write(reply, offset, patterned(offset, MAX_TRANSFER, seed + i)?)
                .map_err(err("send a write"))?;
            device
                .read(reply, at + (16 + i) * MAX_TRANSFER, MAX_TRANSFER)
                .map_err(err("send a read"))?;
        }
        Ok(())
    };
    // A round whose answers are taken, so that what is kept for reuse has grown.
    let replies = ReplyPorts::new(1)?;
    batch(&mut device, replies.name(0), 500)?;
    let mut buffer = Box::new(MessageBuffer::new());
    for _ in 0..32 {
        replies.receive(&mut buffer)?;
    }
    drop(replies);
    let before = free_frames()?;
    let reply = ReceiveRight::allocate().map_err(err("reply port"))?;
    batch(&mut device, reply.name(), 600)?;
    drop(reply);
    // The device finishes in its own time: every frame is back once it has.
    let mut after = free_frames()?;
    for _ in 0..200 {
        if after + FRAME_SLACK >= before {
            break;
        }
        pause(50)?;
        after = free_frames()?;
    }
    check!(
        after + FRAME_SLACK >= before,
        "{} frames fewer free 10 s after 32 requests lost their reply port ({before} before, \
         {after} after)",
        before - after
    );
    // The writes were done all the same.
    for i in 0..16 {
        disk.read_pattern(at + i * MAX_TRANSFER, MAX_TRANSFER, 600 + i)?;
    }
    Ok(())
}

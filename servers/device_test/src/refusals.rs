//! Requests the kernel must refuse, each with its reason and nothing transferred: unknown
//! names, bad offsets, sizes and ranges, pages not in memory (given back), unknown and
//! malformed messages, requests nobody can be answered for, and no device master without the
//! host port.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use libipc::abi::message::{notify, Disposition};
use libipc::abi::KernReturn;
use libipc::device::{device, device_master, DeviceError, Written, FIRST_DISK, MAX_TRANSFER};
use libipc::interface::{decode_reply, Encoder, Pages, RemoteError, SendRight, Wire, MAX_BODY};
use libipc::ipc::{self, MessageBuffer, MessageError, PortSet, ReceiveRight, Task};
use libipc::sys;

use crate::cases::{
    check, check_pattern, check_zeros, device_master, err, fill, open, patterned, region, Disk,
    HOST, PAGE,
};

pub fn unknown_device_names_are_refused() -> Result<(), String> {
    let mut master = device_master()?;
    for name in [
        "disk9", "disk1", "", "disk", "Disk0", "disk0 ", " disk0", "disk00", "tape0",
    ] {
        match master.open(name.into()) {
            Err(RemoteError::Server(DeviceError::NoSuchDevice)) => {}
            other => return Err(format!("open {name:?}: {other:?}, not NoSuchDevice")),
        }
    }
    // Names longer than any device's are refused too (the kernel reads at most 32 bytes).
    for length in [33, 300, 4000] {
        let mut name = String::from(FIRST_DISK);
        while name.len() < length {
            name.push('x');
        }
        match master.open(name) {
            Err(RemoteError::Server(DeviceError::NoSuchDevice) | RemoteError::BadRequest) => {}
            other => return Err(format!("open of a {length}-byte name: {other:?}")),
        }
    }
    master
        .open(FIRST_DISK.into())
        .map_err(|e| format!("open {FIRST_DISK} after the refusals: {e}"))?;
    Ok(())
}

pub fn misaligned_offsets_are_bad_offset() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = region::REFUSALS;
    for offset in [at + 1, at + 100, at + 511, at + 4095, at + PAGE + 256] {
        disk.read_refused(offset, PAGE, DeviceError::BadOffset)?;
        let back = disk.write_refused(offset, patterned(at, PAGE, 1)?, DeviceError::BadOffset)?;
        check_pattern(back.as_slice(), at, 1).map_err(|why| format!("given back: {why}"))?;
    }
    // Reasons are checked in order: the offset first.
    disk.read_refused(at + 1, 0, DeviceError::BadOffset)
}

pub fn bad_lengths_are_bad_size() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = region::REFUSALS;
    for length in [
        0,
        512,
        1000,
        PAGE - 1,
        PAGE + 512,
        MAX_TRANSFER + PAGE,
        2 * MAX_TRANSFER,
        u64::MAX,
        u64::MAX - PAGE + 1,
    ] {
        disk.read_refused(at, length, DeviceError::BadSize)?;
    }
    let too_long = MAX_TRANSFER + 4 * PAGE;
    let back = disk.write_refused(at, patterned(at, too_long, 2)?, DeviceError::BadSize)?;
    check_pattern(back.as_slice(), at, 2).map_err(|why| format!("given back: {why}"))?;
    // No pages at all: refused, whether as a bad size or as a malformed request.
    match disk.client.write(at, Pages::empty()) {
        Ok(Written::Failed(DeviceError::BadSize, pages)) if pages.is_empty() => Ok(()),
        Err(RemoteError::BadRequest) => Ok(()),
        other => Err(format!("a write of no pages: {other:?}")),
    }
}

pub fn transfers_past_the_end_are_out_of_range() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let end = disk.status.size;
    for (offset, length) in [
        (end, PAGE),
        (end - PAGE, 2 * PAGE),
        (end - 512, PAGE),
        (end - MAX_TRANSFER + 512, MAX_TRANSFER),
        (end + (1 << 30), PAGE),
        (u64::MAX - 511, PAGE),
        (u64::MAX - 511 - PAGE, 2 * PAGE),
    ] {
        disk.read_refused(offset, length, DeviceError::OutOfRange)?;
    }
    for (offset, length) in [(end, PAGE), (end - PAGE, 2 * PAGE), (u64::MAX - 511, PAGE)] {
        let back = disk.write_refused(offset, patterned(0, length, 3)?, DeviceError::OutOfRange)?;
        check_pattern(back.as_slice(), 0, 3).map_err(|why| format!("given back: {why}"))?;
    }
    // Up to the end is fine.
    disk.read(end - MAX_TRANSFER, MAX_TRANSFER)?;
    Ok(())
}

pub fn untouched_memory_is_not_resident_and_comes_back() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = region::REFUSALS + (1 << 20);
    disk.write_pattern(at, 4 * PAGE, 10)?;
    // Never touched: nothing of it is in memory.
    let fresh = Pages::allocate(4 * PAGE).map_err(err("allocate"))?;
    let back = disk.write_refused(at, fresh, DeviceError::NotResident)?;
    check_zeros(back.as_slice(), "untouched pages given back")?;
    // Pages 0 and 2 written, 1 and 3 untouched: refused, and what was written comes back.
    let mut partly = Pages::allocate(4 * PAGE).map_err(err("allocate"))?;
    let page = PAGE as usize;
    fill(&mut partly.as_mut_slice()[..page], at, 11);
    fill(
        &mut partly.as_mut_slice()[2 * page..3 * page],
        at + 2 * PAGE,
        11,
    );
    let mut back = disk.write_refused(at, partly, DeviceError::NotResident)?;
    let bytes = back.as_slice();
    check_pattern(&bytes[..page], at, 11).map_err(|why| format!("page 0 back: {why}"))?;
    check_pattern(&bytes[2 * page..3 * page], at + 2 * PAGE, 11)
        .map_err(|why| format!("page 2 back: {why}"))?;
    check_zeros(&bytes[page..2 * page], "page 1 back")?;
    check_zeros(&bytes[3 * page..], "page 3 back")?;
    // Only the last page of a whole transfer missing.
    let mut most = Pages::allocate(MAX_TRANSFER).map_err(err("allocate"))?;
    let most_len = most.as_slice().len();
    fill(&mut most.as_mut_slice()[..most_len - page], at, 12);
    drop(disk.write_refused(at, most, DeviceError::NotResident)?);
    // Nothing reached the disk.
    disk.read_pattern(at, 4 * PAGE, 10)?;
    // Touched in full, the pages given back write.
    fill(back.as_mut_slice(), at, 13);
    disk.write(at, back)?;
    disk.read_pattern(at, 4 * PAGE, 13)
}

/// Sends message `id` to `port`, built by `build`, and reads its answer as routine `id`'s.
fn raw_call<R: Wire>(
    port: u32,
    id: u32,
    build: impl FnOnce(&mut Encoder<'_>) -> Result<(), MessageError>,
) -> Result<Result<R, RemoteError<DeviceError>>, String> {
    let reply = ReceiveRight::allocate().map_err(err("reply port"))?;
    let mut body = vec![0u8; MAX_BODY];
    let mut encoder = Encoder::new(&mut body);
    build(&mut encoder).map_err(err("encode"))?;
    let message = encoder
        .message(id)
        .map_err(err("message"))?
        .to(port, Disposition::CopySend)
        .reply_to(reply.name());
    let mut buffer = Box::new(MessageBuffer::new());
    let answer = ipc::call(&message, reply.name(), &mut buffer, Some(10_000))
        .map_err(|e| format!("message {id}: no answer: {e:?}"))?;
    Ok(decode_reply::<R, DeviceError>(&answer, id))
}

/// `result` must be the error reply `expected`.
fn expect_error<R: core::fmt::Debug>(
    what: &str,
    result: Result<R, RemoteError<DeviceError>>,
    expected: RemoteError<DeviceError>,
) -> Result<(), String> {
    match result {
        Err(e) if e == expected => Ok(()),
        other => Err(format!("{what}: {other:?}, not {expected:?}")),
    }
}

pub fn unknown_and_malformed_messages_get_error_replies() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let port = disk.port();
    let master = device_master()?;
    let master_port = master.transport().server().name();
    let unknown = RemoteError::UnknownRoutine;
    for id in [1, 2600, 2703, 2750, 2799, 9999] {
        let answer = raw_call::<()>(port, id, |_| Ok(()))?;
        expect_error(&format!("id {id} to the disk"), answer, unknown)?;
    }
    for id in [2601, 2700, 2701, 2702, 9999] {
        let answer = raw_call::<()>(master_port, id, |_| Ok(()))?;
        expect_error(&format!("id {id} to the device master"), answer, unknown)?;
    }
    let bad = RemoteError::BadRequest;
    let (read, write, open_id) = (
        device::ids::read,
        device::ids::write,
        device_master::ids::open,
    );
    let answer = raw_call::<Pages>(port, read, |_| Ok(()))?;
    expect_error("a read without arguments", answer, bad)?;
    let answer = raw_call::<Pages>(port, read, |e| e.data(&0u64))?;
    expect_error("a read without a length", answer, bad)?;
    let answer = raw_call::<Written>(port, write, |e| e.data(&0u64))?;
    expect_error("a write without pages", answer, bad)?;
    // Copied, not moved: the pages stay here whatever the kernel does with the request.
    let pages = patterned(0, PAGE, 4)?;
    let answer = raw_call::<Written>(port, write, |e| {
        e.memory(pages.address(), PAGE as u32, false)
    })?;
    expect_error("a write without an offset", answer, bad)?;
    check_pattern(pages.as_slice(), 0, 4).map_err(|why| format!("the sender's pages: {why}"))?;
    let answer = raw_call::<SendRight>(master_port, open_id, |_| Ok(()))?;
    expect_error("an open without a name", answer, bad)?;
    let answer = raw_call::<SendRight>(master_port, open_id, |e| e.data(&[3u8, 0xff, 0xfe, 0xfd]))?;
    expect_error("an open of a name that is not UTF-8", answer, bad)?;
    let answer = raw_call::<SendRight>(master_port, open_id, |e| e.data(&7u8))?;
    expect_error("an open of a name cut short", answer, bad)?;
    // A body of junk: some error, never a transfer.
    let junk = [0xa5u8; 4000];
    let answer = raw_call::<Pages>(port, read, |e| e.data(&junk[..]))?;
    check!(answer.is_err(), "a read of junk was answered with pages");
    // Rights that come with a request are let go of: a send right the request carried is
    // gone once it is answered (its port's no-senders notification says so).
    let carried = ReceiveRight::allocate().map_err(err("allocate"))?;
    let notifications = ReceiveRight::allocate().map_err(err("allocate"))?;
    let send = carried.make_send().map_err(err("make send"))?;
    sys::port_request_notification(carried.name(), notify::NO_SENDERS, notifications.name())
        .map_err(err("request no-senders"))?;
    let answer = raw_call::<Pages>(port, read, |e| {
        e.data(&region::REFUSALS)?;
        e.data(&PAGE)?;
        e.right(send.name(), Disposition::CopySend)
    })?;
    check!(answer.is_ok(), "a read carrying a right: {answer:?}");
    drop(send);
    let mut buffer = Box::new(MessageBuffer::new());
    let note = ipc::receive(notifications.name(), &mut buffer, Some(1000))
        .map_err(|e| format!("no no-senders notification: the kernel kept the right? ({e:?})"))?;
    check!(
        note.id() == notify::NO_SENDERS,
        "notification {:#x}",
        note.id()
    );
    // After all that, the disk works.
    disk.write_pattern(region::REFUSALS, PAGE, 5)?;
    disk.read_pattern(region::REFUSALS, PAGE, 5)
}

pub fn requests_without_a_reply_port_do_nothing() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let at = region::REFUSALS + (2 << 20);
    disk.write_pattern(at, 4 * PAGE, 20)?;
    for (id, moved) in [(device::ids::write, true), (device::ids::read, false)] {
        let pages = patterned(at, 4 * PAGE, 21)?;
        let mut body = vec![0u8; MAX_BODY];
        let mut encoder = Encoder::new(&mut body);
        encoder.data(&at).map_err(err("encode"))?;
        if moved {
            encoder
                .memory(pages.address(), 4 * PAGE as u32, true)
                .map_err(err("encode"))?;
        } else {
            encoder.data(&(4 * PAGE)).map_err(err("encode"))?;
        }
        let message = encoder
            .message(id)
            .map_err(err("message"))?
            .to(disk.port(), Disposition::CopySend);
        ipc::send_message(&message, Some(1000)).map_err(err("send"))?;
        if moved {
            // The pages left with the message.
            let _ = pages.into_raw();
        }
    }
    // The write was not done: nobody could have been told how it went.
    disk.read_pattern(at, 4 * PAGE, 20)
}

/// What the child started by [`the_device_master_needs_the_host_port`] is told to do (its
/// second start argument).
pub const CHILD_WITHOUT_HOST: u64 = 0xd15c;

pub fn the_device_master_needs_the_host_port() -> Result<(), String> {
    let host = HOST.load(core::sync::atomic::Ordering::Relaxed);
    let master = device_master()?;
    let disk = open(FIRST_DISK)?;
    let own = ReceiveRight::allocate().map_err(err("allocate"))?;
    let own_send = ReceiveRight::allocate().map_err(err("allocate"))?;
    let own_send_right = own_send.make_send().map_err(err("make send"))?;
    let set = PortSet::allocate().map_err(err("allocate a set"))?;
    let master_name = master.transport().server().name();
    for (name, what, expected) in [
        (0, "name 0", KernReturn::InvalidName),
        (
            0xdead_beef,
            "a name that names nothing",
            KernReturn::InvalidName,
        ),
        (own.name(), "a receive right", KernReturn::InvalidRight),
        (
            own_send_right.name(),
            "a send right of its own",
            KernReturn::InvalidRight,
        ),
        (set.name(), "a port set", KernReturn::InvalidRight),
        (master_name, "the device master", KernReturn::InvalidRight),
        (disk.name(), "a device port", KernReturn::InvalidRight),
    ] {
        match sys::host_device_master(name) {
            Err(e) if e == expected => {}
            other => return Err(format!("host_device_master of {what}: {other:?}")),
        }
    }
    // The host port gives the same port every time.
    let again = sys::host_device_master(host).map_err(err("with the host port"))?;
    let again = SendRight::from_raw(again);
    check!(
        again.name() == master_name,
        "the device master came as {:#x}, then {:#x}",
        master_name,
        again.name()
    );
    // A task given the device master but not the host port opens devices and cannot ask
    // for the device master itself.
    let give = SendRight::from_raw(master_name);
    let child = Task::spawn("device_test", Some(&give), CHILD_WITHOUT_HOST);
    let _ = give.into_raw();
    let child = child.map_err(err("spawn a child"))?;
    let status = child.wait().map_err(err("wait for the child"))?;
    check!(
        status == 0,
        "the child without the host port: {}",
        child_failure(status)
    );
    Ok(())
}

/// Why the child of [`the_device_master_needs_the_host_port`] exited with `status`.
fn child_failure(status: u64) -> String {
    match status {
        1 => "it got the device master with the device master as host".into(),
        2 => "it could not open the disk through the device master it was given".into(),
        3 => "the disk it opened did not answer get_status".into(),
        other => format!("exit status {other:#x}"),
    }
}

/// The child's side: `master` is the device master it was given (its only right).
pub fn child_without_host(master: u32) -> i32 {
    match sys::host_device_master(master) {
        Err(KernReturn::InvalidRight) => {}
        _ => return 1,
    }
    let mut master = device_master::Client::new(SendRight::from_raw(master));
    let Ok(disk) = master.open(FIRST_DISK.into()) else {
        return 2;
    };
    match device::Client::new(disk).get_status() {
        Ok(_) => 0,
        Err(_) => 3,
    }
}

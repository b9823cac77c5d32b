//! The cases, and what they share: the disk opened through the host port, pages filled with
//! a pattern that says where on the disk each word belongs, reply ports gathered in a set to
//! take answers in any order, and the machine's free frames.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use libipc::abi::syscall::{HOST_FREE_FRAMES, PAGE_SIZE};
use libipc::device::{device, device_master, DeviceError, DeviceStatus, Written, FIRST_DISK};
use libipc::interface::{Pages, RemoteError, SendRight};
use libipc::ipc::{self, MessageBuffer, PortSet, ReceiveRight, Received};
use libipc::sys;

use crate::{faults, pressure, refusals, transfers};

pub use libipc::rt::selftest::Case;

/// With a healthy disk of at least [`MIN_DISK`] bytes.
pub const ALL: &[(&str, Case)] = &[
    (
        "status_describes_the_disk",
        transfers::status_describes_the_disk,
    ),
    (
        "open_gives_the_same_port_each_time",
        transfers::open_gives_the_same_port_each_time,
    ),
    (
        "zeros_written_read_back_as_zeros",
        transfers::zeros_written_read_back_as_zeros,
    ),
    (
        "pages_written_read_back",
        transfers::pages_written_read_back,
    ),
    (
        "a_later_write_replaces_what_it_covers",
        transfers::a_later_write_replaces_what_it_covers,
    ),
    (
        "pages_from_the_disk_are_pageable",
        transfers::pages_from_the_disk_are_pageable,
    ),
    (
        "copied_memory_is_written_and_kept",
        transfers::copied_memory_is_written_and_kept,
    ),
    (
        "many_requests_in_flight_each_answered_once",
        transfers::many_requests_in_flight_each_answered_once,
    ),
    (
        "many_answers_to_one_reply_port",
        transfers::many_answers_to_one_reply_port,
    ),
    (
        "transfers_lose_no_memory",
        transfers::transfers_lose_no_memory,
    ),
    (
        "a_reply_port_destroyed_early_loses_nothing",
        transfers::a_reply_port_destroyed_early_loses_nothing,
    ),
    (
        "unknown_device_names_are_refused",
        refusals::unknown_device_names_are_refused,
    ),
    (
        "misaligned_offsets_are_bad_offset",
        refusals::misaligned_offsets_are_bad_offset,
    ),
    (
        "bad_lengths_are_bad_size",
        refusals::bad_lengths_are_bad_size,
    ),
    (
        "transfers_past_the_end_are_out_of_range",
        refusals::transfers_past_the_end_are_out_of_range,
    ),
    (
        "untouched_memory_is_not_resident_and_comes_back",
        refusals::untouched_memory_is_not_resident_and_comes_back,
    ),
    (
        "unknown_and_malformed_messages_get_error_replies",
        refusals::unknown_and_malformed_messages_get_error_replies,
    ),
    (
        "requests_without_a_reply_port_do_nothing",
        refusals::requests_without_a_reply_port_do_nothing,
    ),
    (
        "the_device_master_needs_the_host_port",
        refusals::the_device_master_needs_the_host_port,
    ),
];

/// With the faulty disk of [`faults::SPEC`] (`init_arg=1`).
pub const FAULTY: &[(&str, Case)] = &[
    (
        "a_failed_write_gives_its_pages_back",
        faults::a_failed_write_gives_its_pages_back,
    ),
    (
        "a_failed_read_is_an_io_error",
        faults::a_failed_read_is_an_io_error,
    ),
    (
        "a_write_that_failed_once_works_when_sent_again",
        faults::a_write_that_failed_once_works_when_sent_again,
    ),
    (
        "failures_in_flight_leave_the_others_alone",
        faults::failures_in_flight_leave_the_others_alone,
    ),
    (
        "the_rest_of_the_disk_still_works",
        faults::the_rest_of_the_disk_still_works,
    ),
];

/// With a disk throttled so that requests wait for room in its ring (`init_arg=2`,
/// `--disk-iops 100`): more requests in flight than it holds, answered all the same, and
/// reply ports that die while the device still works on their requests.
pub const SLOW: &[(&str, Case)] = &[
    (
        "many_requests_in_flight_each_answered_once",
        transfers::many_requests_in_flight_each_answered_once,
    ),
    (
        "many_answers_to_one_reply_port",
        transfers::many_answers_to_one_reply_port,
    ),
    (
        "a_reply_port_destroyed_early_loses_nothing",
        transfers::a_reply_port_destroyed_early_loses_nothing,
    ),
];

/// With little memory (`init_arg=3 mem=32M`), run with zpager as the kernel's default pager.
pub const PRESSURE: &[(&str, Case)] = &[(
    "pages_read_from_the_disk_are_paged_out_and_back",
    pressure::pages_read_from_the_disk_are_paged_out_and_back,
)];

/// The host port the kernel gave this task (its first start argument, as the first task).
pub static HOST: AtomicU32 = AtomicU32::new(0);

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($why)*));
        }
    };
}
pub(crate) use check;

/// Turns an error into a case's failure, saying what was being done.
pub fn err<E: core::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

pub const PAGE: u64 = PAGE_SIZE;

/// Where the healthy disk's cases work, apart so that what one wrote never confuses
/// another; the disk must hold at least [`MIN_DISK`] bytes.
pub mod region {
    /// Round trips (and the page at the disk's end, wherever that is).
    pub const ROUND_TRIP: u64 = 0;
    /// Zeros written over a pattern.
    pub const ZEROS: u64 = 8 << 20;
    /// Overlapping writes, copied memory.
    pub const OVERWRITE: u64 = 12 << 20;
    /// Requests in flight.
    pub const IN_FLIGHT: u64 = 16 << 20;
    /// The same through one reply port (6.25 MiB).
    pub const ONE_PORT: u64 = 20 << 20;
    /// Memory accounting (12 MiB).
    pub const ACCOUNTING: u64 = 28 << 20;
    /// Requests sent without a reply port, refusals.
    pub const REFUSALS: u64 = 40 << 20;
}

/// The smallest disk the cases run on: their regions' end.
pub const MIN_DISK: u64 = 48 << 20;

/// How long an answer may take before a case gives up on it (the guest may share a busy
/// host's CPU).
pub const ANSWER_TIMEOUT_MS: u64 = 10_000;

/// The device master port, through the host port.
pub fn device_master() -> Result<device_master::Client, String> {
    let host = HOST.load(Ordering::Relaxed);
    let name = sys::host_device_master(host).map_err(err("host_device_master"))?;
    Ok(device_master::Client::new(SendRight::from_raw(name)))
}

/// The device port of `name`.
pub fn open(name: &str) -> Result<SendRight, String> {
    device_master()?
        .open(name.into())
        .map_err(|e| format!("open {name}: {e}"))
}

/// The first disk: a client of its port and what it said of itself.
pub struct Disk {
    pub client: device::Client,
    pub status: DeviceStatus,
}

impl Disk {
    /// Opens the first disk and asks its status.
    pub fn open() -> Result<Disk, String> {
        let mut client = device::Client::new(open(FIRST_DISK)?);
        let status = client.get_status().map_err(err("get_status"))?;
        check!(
            status.size >= MIN_DISK,
            "the cases need a disk of at least {MIN_DISK} bytes, this one has {}",
            status.size
        );
        Ok(Disk { client, status })
    }

    /// The name of the send right to the disk's port.
    pub fn port(&self) -> u32 {
        self.client.transport().server().name()
    }

    /// A client for requests sent without waiting, on a send right of its own.
    pub fn async_client(&self) -> Result<device::AsyncClient, String> {
        Ok(device::AsyncClient::new(open(FIRST_DISK)?))
    }

    /// Writes `pages` at `offset`, which must work.
    pub fn write(&mut self, offset: u64, pages: Pages) -> Result<(), String> {
        let length = pages.len();
        match self.client.write(offset, pages) {
            Ok(Written::Done) => Ok(()),
            Ok(Written::Failed(e, _)) => Err(format!("write {length:#x} at {offset:#x}: {e:?}")),
            Err(e) => Err(format!("write {length:#x} at {offset:#x}: {e}")),
        }
    }

    /// Writes the pattern of `seed` over `length` bytes at `offset`.
    pub fn write_pattern(&mut self, offset: u64, length: u64, seed: u64) -> Result<(), String> {
        self.write(offset, patterned(offset, length, seed)?)
    }

    /// Reads `length` bytes at `offset`, which must work.
    pub fn read(&mut self, offset: u64, length: u64) -> Result<Pages, String> {
        let pages = self
            .client
            .read(offset, length)
            .map_err(|e| format!("read {length:#x} at {offset:#x}: {e}"))?;
        check!(
            pages.len() == length,
            "read {length:#x} at {offset:#x}: {:#x} bytes came",
            pages.len()
        );
        Ok(pages)
    }

    /// Reads `length` bytes at `offset` and checks they are the pattern of `seed`.
    pub fn read_pattern(&mut self, offset: u64, length: u64, seed: u64) -> Result<(), String> {
        let pages = self.read(offset, length)?;
        check_pattern(pages.as_slice(), offset, seed)
            .map_err(|why| format!("read {length:#x} at {offset:#x}: {why}"))
    }

    /// A read that must be refused with `expected`.
    pub fn read_refused(
        &mut self,
        offset: u64,
        length: u64,
        expected: DeviceError,
    ) -> Result<(), String> {
        match self.client.read(offset, length) {
            Err(RemoteError::Server(e)) if e == expected => Ok(()),
            Err(e) => Err(format!(
                "read {length:#x} at {offset:#x}: {e}, not {expected:?}"
            )),
            Ok(pages) => Err(format!(
                "read {length:#x} at {offset:#x} gave {:#x} bytes, not {expected:?}",
                pages.len()
            )),
        }
    }

    /// A write of `pages` that must fail with `expected` and give the pages back: returns
    /// them.
    pub fn write_refused(
        &mut self,
        offset: u64,
        pages: Pages,
        expected: DeviceError,
    ) -> Result<Pages, String> {
        let length = pages.len();
        match self.client.write(offset, pages) {
            Ok(Written::Failed(e, back)) if e == expected => {
                check!(
                    back.len() == length,
                    "write {length:#x} at {offset:#x}: {e:?} gave back {:#x} bytes",
                    back.len()
                );
                Ok(back)
            }
            Ok(Written::Failed(e, _)) => Err(format!(
                "write {length:#x} at {offset:#x}: {e:?}, not {expected:?}"
            )),
            Ok(Written::Done) => Err(format!(
                "write {length:#x} at {offset:#x} was done, not refused with {expected:?}"
            )),
            Err(e) => Err(format!(
                "write {length:#x} at {offset:#x}: {e}, not {expected:?}"
            )),
        }
    }
}

/// The word the pattern of `seed` has at disk byte `address` (a multiple of 8): never 0, so
/// that a page of zeros (never written) is never taken for it.
pub fn word(seed: u64, address: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ address;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) | 1
}

/// Fills `bytes`, meant for disk byte `offset`, with the pattern of `seed`.
pub fn fill(bytes: &mut [u8], offset: u64, seed: u64) {
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&word(seed, offset + i as u64 * 8).to_le_bytes());
    }
}

/// `length` bytes of new memory holding the pattern of `seed` for disk byte `offset` on.
pub fn patterned(offset: u64, length: u64, seed: u64) -> Result<Pages, String> {
    let mut pages = Pages::allocate(length).map_err(err("allocate"))?;
    fill(pages.as_mut_slice(), offset, seed);
    Ok(pages)
}

/// Checks that `bytes`, read from disk byte `offset`, hold the pattern of `seed`; says
/// where the first wrong word is and how many are wrong.
pub fn check_pattern(bytes: &[u8], offset: u64, seed: u64) -> Result<(), String> {
    let mut first = None;
    let mut wrong = 0u64;
    for (i, chunk) in bytes.chunks_exact(8).enumerate() {
        let address = offset + i as u64 * 8;
        let found = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let expected = word(seed, address);
        if found != expected {
            wrong += 1;
            first.get_or_insert((address, found, expected));
        }
    }
    match first {
        None => Ok(()),
        Some((address, found, expected)) => Err(format!(
            "{wrong} of {} words wrong, the first at disk byte {address:#x}: {found:#018x}, \
             not {expected:#018x}{}",
            bytes.len() / 8,
            if found == 0 { " (never written?)" } else { "" }
        )),
    }
}

/// Checks that `bytes` are all zeros.
pub fn check_zeros(bytes: &[u8], what: &str) -> Result<(), String> {
    match bytes.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(at) => Err(format!("{what}: byte {at:#x} is {:#x}, not 0", bytes[at])),
    }
}

/// The machine's free frames.
pub fn free_frames() -> Result<u64, String> {
    sys::host_info(HOST_FREE_FRAMES).map_err(err("host_info"))
}

/// Waits `ms` milliseconds (a receive that times out on a port nobody sends to).
pub fn pause(ms: u64) -> Result<(), String> {
    let port = ReceiveRight::allocate().map_err(err("allocate a port"))?;
    let mut buffer = Box::new(MessageBuffer::new());
    match ipc::receive(port.name(), &mut buffer, Some(ms)) {
        Err(_) => Ok(()),
        Ok(m) => Err(format!("a message {} on a port nobody knows", m.id())),
    }
}

/// Reply ports in one set, so that answers are taken in whatever order they come and each
/// is known by the port it arrived on.
pub struct ReplyPorts {
    set: PortSet,
    ports: Vec<ReceiveRight>,
}

impl ReplyPorts {
    pub fn new(count: usize) -> Result<ReplyPorts, String> {
        let set = PortSet::allocate().map_err(err("allocate a port set"))?;
        let mut ports = Vec::with_capacity(count);
        for _ in 0..count {
            let port = ReceiveRight::allocate().map_err(err("allocate a reply port"))?;
            set.insert(&port)
                .map_err(err("put a reply port in the set"))?;
            ports.push(port);
        }
        Ok(ReplyPorts { set, ports })
    }

    /// The name of reply port `index`.
    pub fn name(&self, index: usize) -> u32 {
        self.ports[index].name()
    }

    /// The next answer on any of the ports, and the index of the port it came to.
    pub fn receive<'b>(
        &self,
        buffer: &'b mut MessageBuffer,
    ) -> Result<(usize, Received<'b>), String> {
        let received = ipc::receive(self.set.name(), buffer, Some(ANSWER_TIMEOUT_MS))
            .map_err(err("receive an answer"))?;
        let local = received.header.local_port;
        let index = self
            .ports
            .iter()
            .position(|p| p.name() == local)
            .ok_or_else(|| format!("an answer came to port {local:#x}, not a reply port"))?;
        Ok((index, received))
    }

    /// Checks that no more answers come (within a short wait).
    pub fn expect_quiet(&self) -> Result<(), String> {
        let mut buffer = Box::new(MessageBuffer::new());
        match ipc::receive(self.set.name(), &mut buffer, Some(50)) {
            Err(_) => Ok(()),
            Ok(m) => Err(format!(
                "an extra message {} came to reply port {:#x}",
                m.id(),
                m.header.local_port
            )),
        }
    }
}

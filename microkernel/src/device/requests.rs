//! Device requests decoded: what a message to the device master port or a device's port
//! asks, checked against the devices' names and states and nothing else, so the check is a
//! pure function (the decode half of the kernel receiver in `kern::device_port`).

use super::{check_transfer, DeviceIndex, Devices};
use crate::ipc::request::{Incoming, Request};
use alloc::string::String;
use libipc::abi::body::status;
use libipc::device::{ids, DeviceError, DeviceStatus};

/// The longest device name `open` reads.
const MAX_NAME: usize = 32;

/// A device port as a kernel receiver: the device master port, or one device's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePort {
    Master,
    Device(DeviceIndex),
}

/// What decoding a device request reads: the devices' names and states.
pub trait DeviceTable {
    fn find(&self, name: &str) -> Option<DeviceIndex>;
    fn status(&self, device: DeviceIndex) -> Option<DeviceStatus>;
}

impl<T> DeviceTable for Devices<T> {
    fn find(&self, name: &str) -> Option<DeviceIndex> {
        Devices::find(self, name)
    }

    fn status(&self, device: DeviceIndex) -> Option<DeviceStatus> {
        Devices::status(self, device)
    }
}

/// A device request checked in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceCall {
    /// `device_master.open` of this device: a send right to its port.
    Open(DeviceIndex),
    /// `device.get_status`: the answer.
    GetStatus(DeviceStatus),
    /// `device.read` of `length` bytes from `sector`, inside the device.
    Read {
        device: DeviceIndex,
        sector: u64,
        length: u64,
    },
    /// `device.write` of the message's region from `sector`, inside the device.
    Write { device: DeviceIndex, sector: u64 },
}

/// Why a device request is not carried out, and so how it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRefusal {
    /// It has no reply right: nothing is done (a transfer's result would be lost).
    NoReply,
    /// Answered with this status alone (`BAD_REQUEST`, `UNKNOWN_ROUTINE`).
    Status(u8),
    /// Answered with this error.
    Error(DeviceError),
    /// A write answered `FAILED` with this error, its pages given back.
    WriteRefused(DeviceError),
}

/// Decodes `request` sent to `port`, with the devices `devices`; changes nothing.
pub fn decode(
    port: DevicePort,
    devices: &dyn DeviceTable,
    request: &Request<'_>,
) -> Result<DeviceCall, DeviceRefusal> {
    use DeviceRefusal::*;
    if !request.reply {
        return Err(NoReply);
    }
    let incoming = Incoming::new(request.body, request.complex);
    let bad = Status(status::BAD_REQUEST);
    match (port, request.id) {
        (DevicePort::Master, ids::OPEN) => {
            let name = incoming
                .filter(|i| i.remaining() <= MAX_NAME + 2)
                .and_then(|mut i| i.take::<String>())
                .ok_or(bad)?;
            devices
                .find(&name)
                .map(DeviceCall::Open)
                .ok_or(Error(DeviceError::NoSuchDevice))
        }
        (DevicePort::Device(device), ids::GET_STATUS) => devices
            .status(device)
            .map(DeviceCall::GetStatus)
            .ok_or(Error(DeviceError::NoSuchDevice)),
        (DevicePort::Device(device), ids::READ) => {
            let (offset, length) = incoming
                .and_then(|mut i| Some((i.take::<u64>()?, i.take::<u64>()?)))
                .ok_or(bad)?;
            transfer(device, devices, false, offset, length)
        }
        (DevicePort::Device(device), ids::WRITE) => {
            let offset = incoming.and_then(|mut i| i.take::<u64>());
            let (Some(offset), Some(size)) = (offset, request.memory) else {
                return Err(bad);
            };
            transfer(device, devices, true, offset, size)
        }
        _ => Err(Status(status::UNKNOWN_ROUTINE)),
    }
}

/// A read of `length` bytes at byte `offset` of `device` (`write` false), or a write of a
/// region of `length` bytes there, checked against the device: what a `device.read` or
/// `device.write` message with these values decodes to, and what a collocated server's
/// `DeviceTransfer` call (the same request without a message) is checked with.
pub fn transfer(
    device: DeviceIndex,
    devices: &dyn DeviceTable,
    write: bool,
    offset: u64,
    length: u64,
) -> Result<DeviceCall, DeviceRefusal> {
    use DeviceRefusal::*;
    let refused = |error| match write {
        true => WriteRefused(error),
        false => Error(error),
    };
    let status = devices
        .status(device)
        .ok_or(refused(DeviceError::NoSuchDevice))?;
    let sector = check_transfer(&status, offset, length, write).map_err(refused)?;
    Ok(match write {
        true => DeviceCall::Write { device, sector },
        false => DeviceCall::Read {
            device,
            sector,
            length,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::request::tests::{body_of, request};
    use libipc::abi::body::status;

    /// One disk, `disk0`, of 1 MiB.
    struct OneDisk;

    const DISK: DeviceStatus = DeviceStatus {
        size: 1 << 20,
        block_size: 512,
        read_only: false,
        max_transfer: 64 * 1024,
    };

    impl DeviceTable for OneDisk {
        fn find(&self, name: &str) -> Option<DeviceIndex> {
            (name == "disk0").then_some(DeviceIndex(0))
        }

        fn status(&self, device: DeviceIndex) -> Option<DeviceStatus> {
            (device.0 == 0).then_some(DISK)
        }
    }

    const DISK0: DevicePort = DevicePort::Device(DeviceIndex(0));

    #[test]
    fn open_finds_a_device_by_name() {
        let body = body_of(&"disk0");
        let open = request(ids::OPEN, &body, None);
        assert_eq!(
            decode(DevicePort::Master, &OneDisk, &open),
            Ok(DeviceCall::Open(DeviceIndex(0)))
        );
        let body = body_of(&"disk7");
        let open = request(ids::OPEN, &body, None);
        assert_eq!(
            decode(DevicePort::Master, &OneDisk, &open),
            Err(DeviceRefusal::Error(DeviceError::NoSuchDevice))
        );
        // A name longer than any device's is not even read.
        let body = body_of(&"d".repeat(MAX_NAME + 8).as_str());
        let open = request(ids::OPEN, &body, None);
        assert_eq!(
            decode(DevicePort::Master, &OneDisk, &open),
            Err(DeviceRefusal::Status(status::BAD_REQUEST))
        );
    }

    #[test]
    fn a_read_is_checked_against_the_device() {
        let read = |offset: u64, length: u64| {
            let body = body_of(&(offset, length));
            decode(DISK0, &OneDisk, &request(ids::READ, &body, None))
        };
        assert_eq!(
            read(4096, 8192),
            Ok(DeviceCall::Read {
                device: DeviceIndex(0),
                sector: 8,
                length: 8192
            })
        );
        assert_eq!(
            read(100, 4096),
            Err(DeviceRefusal::Error(DeviceError::BadOffset))
        );
        assert_eq!(
            read(0, 100),
            Err(DeviceRefusal::Error(DeviceError::BadSize))
        );
        assert_eq!(
            read((1 << 20) - 4096, 8192),
            Err(DeviceRefusal::Error(DeviceError::OutOfRange))
        );
        assert_eq!(
            read(u64::MAX - 511, 4096),
            Err(DeviceRefusal::Error(DeviceError::OutOfRange))
        );
        let other = DevicePort::Device(DeviceIndex(3));
        let body = body_of(&(0u64, 4096u64));
        assert_eq!(
            decode(other, &OneDisk, &request(ids::READ, &body, None)),
            Err(DeviceRefusal::Error(DeviceError::NoSuchDevice))
        );
        // One value missing.
        let body = body_of(&0u64);
        assert_eq!(
            decode(DISK0, &OneDisk, &request(ids::READ, &body, None)),
            Err(DeviceRefusal::Status(status::BAD_REQUEST))
        );
    }

    #[test]
    fn a_write_needs_its_region_and_gives_it_back_when_refused() {
        let body = body_of(&4096u64);
        assert_eq!(
            decode(DISK0, &OneDisk, &request(ids::WRITE, &body, Some(8192))),
            Ok(DeviceCall::Write {
                device: DeviceIndex(0),
                sector: 8
            })
        );
        assert_eq!(
            decode(DISK0, &OneDisk, &request(ids::WRITE, &body, None)),
            Err(DeviceRefusal::Status(status::BAD_REQUEST))
        );
        assert_eq!(
            decode(DISK0, &OneDisk, &request(ids::WRITE, &body, Some(1 << 20))),
            Err(DeviceRefusal::WriteRefused(DeviceError::BadSize))
        );
    }

    #[test]
    fn requests_without_a_reply_or_for_the_wrong_port_are_refused() {
        let body = body_of(&(0u64, 4096u64));
        let mut read = request(ids::READ, &body, None);
        read.reply = false;
        assert_eq!(decode(DISK0, &OneDisk, &read), Err(DeviceRefusal::NoReply));
        // A device's routine sent to the master port, the master's to a device, an unknown id.
        for (port, id) in [
            (DevicePort::Master, ids::READ),
            (DISK0, ids::OPEN),
            (DISK0, 9999),
        ] {
            assert_eq!(
                decode(port, &OneDisk, &request(id, &body, None)),
                Err(DeviceRefusal::Status(status::UNKNOWN_ROUTINE))
            );
        }
    }

    #[test]
    fn a_transfer_without_a_message_is_checked_as_its_message_is() {
        let cases = [
            (4096, 8192),
            (100, 4096),
            (0, 100),
            (0, 0),
            ((1 << 20) - 4096, 8192),
            (u64::MAX - 511, 4096),
        ];
        for (offset, length) in cases {
            let body = body_of(&(offset, length));
            assert_eq!(
                transfer(DeviceIndex(0), &OneDisk, false, offset, length),
                decode(DISK0, &OneDisk, &request(ids::READ, &body, None)),
                "read {offset:#x} +{length:#x}"
            );
            let body = body_of(&offset);
            assert_eq!(
                transfer(DeviceIndex(0), &OneDisk, true, offset, length),
                decode(DISK0, &OneDisk, &request(ids::WRITE, &body, Some(length))),
                "write {offset:#x} +{length:#x}"
            );
        }
        assert_eq!(
            transfer(DeviceIndex(3), &OneDisk, true, 0, 4096),
            Err(DeviceRefusal::WriteRefused(DeviceError::NoSuchDevice))
        );
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        for body in [&[][..], &[9, 0, 1][..], &[0xff; 40][..]] {
            assert_eq!(
                decode(DISK0, &OneDisk, &request(ids::READ, body, None)),
                Err(DeviceRefusal::Status(status::BAD_REQUEST))
            );
        }
    }
}

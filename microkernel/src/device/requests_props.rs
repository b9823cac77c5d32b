//! Property tests of device request decoding (messages from any task holding a device
//! port): any body, id, port and region decode without a panic, every call decoded is inside
//! its device, block-aligned, whole pages and at most the device's transfer, and a request
//! is accepted exactly when it is.

use proptest::prelude::*;

use super::requests::{decode, DeviceCall, DevicePort, DeviceRefusal, DeviceTable};
use super::{DeviceIndex, SECTOR_SIZE};
use crate::ipc::request::tests::body_of;
use crate::ipc::request::Request;
use libipc::abi::body::status;
use libipc::device::{ids, DeviceError, DeviceStatus, MAX_TRANSFER};
use libipc::props::config;

const PAGE: u64 = 4096;

/// Devices `disk0`, `disk1` ... with these statuses.
#[derive(Clone, Debug)]
struct Disks(Vec<DeviceStatus>);

impl DeviceTable for Disks {
    fn find(&self, name: &str) -> Option<DeviceIndex> {
        let index: u8 = name.strip_prefix("disk")?.parse().ok()?;
        (usize::from(index) < self.0.len() && name == format!("disk{index}"))
            .then_some(DeviceIndex(index))
    }

    fn status(&self, device: DeviceIndex) -> Option<DeviceStatus> {
        self.0.get(usize::from(device.0)).copied()
    }
}

/// A disk as the kernel describes one: blocks of 512 bytes or more, any size.
fn status() -> impl Strategy<Value = DeviceStatus> {
    (
        prop_oneof![
            Just(1u64 << 20),
            (1u64..1 << 16).prop_map(|s| s * 512),
            any::<u64>()
        ],
        prop_oneof![Just(512u32), Just(1024), Just(4096)],
        any::<bool>(),
        prop_oneof![Just(MAX_TRANSFER), (1u64..64).prop_map(|p| p * PAGE)],
    )
        .prop_map(|(size, block_size, read_only, max_transfer)| DeviceStatus {
            size,
            block_size,
            read_only,
            max_transfer,
        })
}

fn disks() -> impl Strategy<Value = Disks> {
    proptest::collection::vec(status(), 0..3).prop_map(Disks)
}

fn port() -> impl Strategy<Value = DevicePort> {
    prop_oneof![
        Just(DevicePort::Master),
        (0u8..4).prop_map(|d| DevicePort::Device(DeviceIndex(d))),
    ]
}

/// Offsets and lengths on the edges of the checks.
fn position() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..600).prop_map(|p| p * PAGE),
        (0u64..2048).prop_map(|s| s * 512),
        Just(1u64 << 20),
        (1u64..64).prop_map(|k| (1u64 << 20) - k * PAGE),
        any::<u64>(),
        (0u64..8).prop_map(|k| u64::MAX - k * 512),
    ]
}

/// Whether a transfer of `length` bytes at `offset` is one the device takes.
fn transfer_ok(status: &DeviceStatus, offset: u64, length: u64) -> bool {
    offset.is_multiple_of(u64::from(status.block_size))
        && length != 0
        && length.is_multiple_of(PAGE)
        && length <= status.max_transfer
        && offset
            .checked_add(length)
            .is_some_and(|end| end <= status.size)
}

/// Checks a decoded call against what it promises, for the request it came from.
fn check_call(
    port: DevicePort,
    disks: &Disks,
    request: &Request<'_>,
    call: DeviceCall,
) -> Result<(), TestCaseError> {
    prop_assert!(request.reply, "a request without a reply right is refused");
    match call {
        DeviceCall::Open(device) => {
            prop_assert_eq!((port, request.id), (DevicePort::Master, ids::OPEN));
            prop_assert!(disks.status(device).is_some());
        }
        DeviceCall::GetStatus(found) => {
            prop_assert_eq!(request.id, ids::GET_STATUS);
            let DevicePort::Device(device) = port else {
                return Err(TestCaseError::fail("get_status on the master port"));
            };
            prop_assert_eq!(disks.status(device), Some(found));
        }
        DeviceCall::Read {
            device,
            sector,
            length,
        } => {
            prop_assert_eq!((port, request.id), (DevicePort::Device(device), ids::READ));
            let status = disks.status(device).expect("a device's read");
            prop_assert!(transfer_ok(&status, sector * SECTOR_SIZE, length));
        }
        DeviceCall::Write { device, sector } => {
            prop_assert_eq!((port, request.id), (DevicePort::Device(device), ids::WRITE));
            let status = disks.status(device).expect("a device's write");
            let size = request.memory.expect("a write carries its region");
            prop_assert!(transfer_ok(&status, sector * SECTOR_SIZE, size));
            prop_assert!(!status.read_only);
        }
    }
    Ok(())
}

/// Checks a refusal against the request it came from.
fn check_refusal(request: &Request<'_>, refusal: DeviceRefusal) -> Result<(), TestCaseError> {
    match refusal {
        DeviceRefusal::NoReply => prop_assert!(!request.reply),
        DeviceRefusal::Status(code) => {
            prop_assert!(code == status::BAD_REQUEST || code == status::UNKNOWN_ROUTINE)
        }
        DeviceRefusal::Error(_) => prop_assert!(request.id != ids::WRITE),
        // A refused write gives its pages back: only a write has them.
        DeviceRefusal::WriteRefused(_) => prop_assert_eq!(request.id, ids::WRITE),
    }
    Ok(())
}

/// Bodies: any bytes (half of them with a length prefix that fits), or well-formed values.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (proptest::collection::vec(any::<u8>(), 0..48), any::<bool>()).prop_map(|(mut b, fix)| {
            if fix && b.len() >= 2 {
                let length = (b.len() - 2) as u16;
                b[..2].copy_from_slice(&length.to_le_bytes());
            }
            b
        }),
        (position(), position()).prop_map(|values| body_of(&values)),
        position().prop_map(|offset| body_of(&offset)),
        // Names: a device's, or any (at most 60 bytes: `body_of` encodes into 64).
        "disk[0-9]{1,3}|[ -~]{0,60}|.{0,15}".prop_map(|name| body_of(&name.as_str())),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_request_decodes_to_a_call_inside_its_device_or_a_refusal(
        port in port(),
        disks in disks(),
        id in prop_oneof![
            4 => proptest::sample::select(vec![ids::OPEN, ids::READ, ids::WRITE, ids::GET_STATUS]),
            1 => any::<u32>(),
        ],
        body in body(),
        complex in any::<bool>(),
        memory in proptest::option::of(position()),
        reply in prop_oneof![4 => Just(true), 1 => Just(false)],
    ) {
        let request = Request {
            id,
            complex,
            body: &body,
            memory,
            reply,
        };
        match decode(port, &disks, &request) {
            Ok(call) => check_call(port, &disks, &request, call)?,
            Err(refusal) => check_refusal(&request, refusal)?,
        }
    }

    #[test]
    fn a_transfer_is_accepted_exactly_when_it_is_inside_the_device_and_aligned(
        disks in disks(),
        device in 0u8..3,
        offset in position(),
        length in position(),
        write in any::<bool>(),
    ) {
        let port = DevicePort::Device(DeviceIndex(device));
        let (id, body, memory) = if write {
            (ids::WRITE, body_of(&offset), Some(length))
        } else {
            (ids::READ, body_of(&(offset, length)), None)
        };
        let request = Request {
            id,
            complex: false,
            body: &body,
            memory,
            reply: true,
        };
        let decoded = decode(port, &disks, &request);
        let Some(status) = disks.status(DeviceIndex(device)) else {
            let refusal = if write {
                DeviceRefusal::WriteRefused(DeviceError::NoSuchDevice)
            } else {
                DeviceRefusal::Error(DeviceError::NoSuchDevice)
            };
            prop_assert_eq!(decoded, Err(refusal));
            return Ok(());
        };
        let index = DeviceIndex(device);
        let sector = offset / SECTOR_SIZE;
        match (transfer_ok(&status, offset, length), write) {
            (true, false) => prop_assert_eq!(
                decoded,
                Ok(DeviceCall::Read {
                    device: index,
                    sector,
                    length
                })
            ),
            (true, true) if !status.read_only => {
                prop_assert_eq!(
                    decoded,
                    Ok(DeviceCall::Write {
                        device: index,
                        sector
                    })
                )
            }
            (true, true) => prop_assert_eq!(
                decoded,
                Err(DeviceRefusal::WriteRefused(DeviceError::ReadOnly))
            ),
            (false, _) => prop_assert!(matches!(
                decoded,
                Err(DeviceRefusal::Error(_) | DeviceRefusal::WriteRefused(_))
            )),
        }
    }

    #[test]
    fn open_finds_exactly_the_devices_there_are(
        disks in disks(),
        name in "disk[0-9]{1,2}|[ -~]{0,60}|.{0,15}",
    ) {
        let body = body_of(&name.as_str());
        let request = Request {
            id: ids::OPEN,
            complex: false,
            body: &body,
            memory: None,
            reply: true,
        };
        let decoded = decode(DevicePort::Master, &disks, &request);
        match disks.find(&name) {
            Some(index) => prop_assert_eq!(decoded, Ok(DeviceCall::Open(index))),
            // Unknown, or too long a name to be read.
            None => prop_assert!(matches!(
                decoded,
                Err(DeviceRefusal::Error(DeviceError::NoSuchDevice))
                    | Err(DeviceRefusal::Status(status::BAD_REQUEST))
            )),
        }
    }
}

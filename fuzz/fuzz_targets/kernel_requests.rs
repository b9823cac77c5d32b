//! Fuzzes the kernel's decoders of messages to its receivers: device requests, pagers'
//! `memory_control` calls and answers, and the body reader under them. Every call accepted
//! keeps the checks it promises.
#![no_main]

use decoder_fuzz::device::requests::{decode, DeviceCall, DevicePort, DeviceTable};
use decoder_fuzz::device::{DeviceIndex, SECTOR_SIZE};
use decoder_fuzz::ipc::request::{Incoming, Request};
use decoder_fuzz::kern::memory::pager_requests::{
    decode_answer, decode_control, AnswerCall, AnswerView, ControlCall, ControlView, DataAnswer,
    ReplyKind, ReturnAnswer,
};
use decoder_fuzz::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use libipc::device::DeviceStatus;

const PAGE: u64 = 4096;

/// Devices `disk0`, `disk1` ... with these statuses.
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

fn transfer_ok(status: &DeviceStatus, offset: u64, length: u64) -> bool {
    offset.is_multiple_of(u64::from(status.block_size))
        && length != 0
        && length.is_multiple_of(PAGE)
        && length <= status.max_transfer
        && offset
            .checked_add(length)
            .is_some_and(|end| end <= status.size)
}

/// A range a `memory_control` call may name for `view`.
fn range_ok(view: &ControlView, start: u64, end: u64) -> bool {
    start.is_multiple_of(PAGE)
        && end.is_multiple_of(PAGE)
        && start < end
        && end <= view.size
        && view.cluster != 0
        && start / view.cluster == (end - 1) / view.cluster
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let id = if u.arbitrary()? {
        *u.choose(&[2600, 2700, 2701, 2702, 2300, 2301, 2302, 2303, 2304])?
    } else {
        u.arbitrary()?
    };
    let complex = u.arbitrary()?;
    let memory: Option<u64> = u.arbitrary()?;
    let reply = u.arbitrary()?;
    let which: u8 = u.arbitrary()?;
    let mut disks = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        disks.push(DeviceStatus {
            size: u.arbitrary()?,
            block_size: *u.choose(&[512, 1024, 4096])?,
            read_only: u.arbitrary()?,
            max_transfer: u.int_in_range(1..=64)? * PAGE,
        });
    }
    let cluster = *u.choose(&[0, PAGE, 2 * PAGE, 4 * PAGE, 8 * PAGE, 16 * PAGE])?;
    let size = u.int_in_range(0..=1u64 << 20)? * PAGE;
    let pending = if u.arbitrary()? {
        let first: u64 = u.int_in_range(0..=1000)?;
        Some(first * PAGE..(first + u.int_in_range(1..=16)?) * PAGE)
    } else {
        None
    };
    let linked = u.arbitrary()?;
    let body = u.bytes(u.len())?;
    let request = Request {
        id,
        complex,
        body,
        memory,
        reply,
    };

    if let Some(mut incoming) = Incoming::new(body, complex) {
        let before = incoming.remaining();
        let _ = incoming.take::<(u64, String, Option<u32>)>();
        assert!(incoming.remaining() <= before && before + 2 <= body.len());
    }

    let disks = Disks(disks);
    let port = match which % 5 {
        4 => DevicePort::Master,
        d => DevicePort::Device(DeviceIndex(d)),
    };
    match decode(port, &disks, &request) {
        Ok(DeviceCall::Read {
            device,
            sector,
            length,
        }) => {
            let status = disks.status(device).expect("a device");
            assert!(reply && transfer_ok(&status, sector * SECTOR_SIZE, length));
        }
        Ok(DeviceCall::Write { device, sector }) => {
            let status = disks.status(device).expect("a device");
            let size = memory.expect("a region");
            assert!(reply && !status.read_only && transfer_ok(&status, sector * SECTOR_SIZE, size));
        }
        Ok(DeviceCall::Open(device)) => assert!(disks.status(device).is_some()),
        Ok(DeviceCall::GetStatus(_)) | Err(_) => {}
    }

    let view = (which & 0x80 == 0).then_some(ControlView { cluster, size });
    if let (Ok(call), Some(view)) = (decode_control(view, &request), view) {
        let range = match call {
            ControlCall::Supply { offset } => Some(offset..offset + memory.expect("a region")),
            ControlCall::Lock { range, .. }
            | ControlCall::Unavailable { range }
            | ControlCall::Error { range, .. } => Some(range),
            ControlCall::SetAttributes { .. } | ControlCall::Statistics => None,
        };
        if let Some(range) = range {
            assert!(range_ok(&view, range.start, range.end));
        }
    }

    let view = AnswerView { linked, pending };
    let kind = [ReplyKind::Init, ReplyKind::Data, ReplyKind::Return][usize::from(which % 3)];
    match decode_answer(kind, &view, &request) {
        Ok(AnswerCall::Data(DataAnswer::Supply)) => {
            let asked = view.pending.expect("a request answered");
            let size = memory.expect("a region");
            assert!(size != 0 && size.is_multiple_of(PAGE) && size <= asked.end - asked.start);
        }
        Ok(AnswerCall::Return(ReturnAnswer::Refused)) => {
            let returned = view.pending.expect("a return answered");
            assert_eq!(memory, Some(returned.end - returned.start));
        }
        Ok(_) => assert!(view.linked),
        Err(_) => {}
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

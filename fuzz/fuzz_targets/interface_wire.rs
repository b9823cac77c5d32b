//! Fuzzes interface decoding, on both sides: a subsystem's dispatch given any request, and a
//! client's reply decoding given any reply. Neither may panic, and a right handed to a routine
//! is one the kernel could have delivered.
#![no_main]

use decoder_fuzz::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use libipc::abi::message::{Descriptor, MessageHeader, COMPLEX, HEADER_SIZE};
use libipc::device::{DeviceError, Written};
use libipc::interface::{
    decode_reply, Dispatched, Outbox, Pages, ReceiveRight, Replied, Reply, SendRight,
};
use libipc::ipc::message::Received;

libipc::interface! {
    /// A subsystem with a routine per kind of argument.
    pub mod shapes = 5300 {
        type Error = u8;

        /// Reply: `b`.
        fn numbers(a: u8, b: u64, c: i64) -> u64;
        /// Reply: the length of `name`.
        fn text(name: String, bytes: Vec<u8>) -> u32;
        /// Retired.
        skip;
        /// Reply: `tag`.
        fn nested(tag: Option<Vec<(u16, String)>>, flag: bool) -> bool;
        /// Reply: `tag`; the server keeps `port`.
        fn port(tag: u16, port: SendRight) -> u16;
        /// Reply: `()`; the server keeps both.
        fn pages(pages: Pages, receive: ReceiveRight) -> ();
    }
}

/// A server that checks what it is handed and keeps it.
#[derive(Default)]
struct Keeper {
    sends: Vec<SendRight>,
    receives: Vec<ReceiveRight>,
    pages: Vec<Pages>,
}

impl shapes::Server for Keeper {
    fn numbers(&mut self, _: u8, b: u64, _: i64, reply: Reply<'_, u64, u8>) -> Replied {
        reply.ok(b)
    }

    fn text(&mut self, name: String, _: Vec<u8>, reply: Reply<'_, u32, u8>) -> Replied {
        reply.ok(name.len() as u32)
    }

    fn nested(
        &mut self,
        tag: Option<Vec<(u16, String)>>,
        flag: bool,
        reply: Reply<'_, bool, u8>,
    ) -> Replied {
        reply.ok(tag.is_some() && flag)
    }

    fn port(&mut self, tag: u16, port: SendRight, reply: Reply<'_, u16, u8>) -> Replied {
        assert_ne!(port.name(), 0);
        self.sends.push(port);
        reply.ok(tag)
    }

    fn pages(&mut self, pages: Pages, receive: ReceiveRight, reply: Reply<'_, (), u8>) -> Replied {
        assert_ne!(receive.name(), 0);
        assert!(pages.is_empty() || (pages.address() != 0 && pages.address().is_multiple_of(4096)));
        self.pages.push(pages);
        self.receives.push(receive);
        reply.ok(())
    }
}

/// A message as the kernel delivers one: a reply right (or none), descriptors, a body.
fn message(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let id = if u.arbitrary()? {
        u.int_in_range(shapes::BASE..=shapes::BASE + shapes::COUNT)?
    } else {
        u.arbitrary()?
    };
    let reply: Option<(u32, u8)> = if u.arbitrary()? {
        Some((u.int_in_range(1..=u32::MAX)?, u.int_in_range(16..=18)?))
    } else {
        None
    };
    let mut bytes = vec![0u8; HEADER_SIZE];
    let count = u.int_in_range(0..=9)?;
    if count > 0 {
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
        for _ in 0..count {
            let descriptor = if u.arbitrary()? {
                Descriptor::out_of_line(u.arbitrary()?, u.arbitrary()?, true)
            } else {
                Descriptor {
                    value: u64::from(u.arbitrary::<u32>()?),
                    disposition: u.arbitrary()?,
                    ..Descriptor::default()
                }
            };
            bytes.extend_from_slice(&descriptor.to_bytes());
        }
    }
    bytes.extend_from_slice(u.bytes(u.len())?);
    let header = MessageHeader {
        bits: reply.map_or(0, |(_, kind)| u32::from(kind)) | if count > 0 { COMPLEX } else { 0 },
        size: bytes.len() as u32,
        remote_port: reply.map_or(0, |(name, _)| name),
        local_port: 0x105,
        voucher: 0,
        id,
    };
    bytes[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    Ok(bytes)
}

fuzz_target!(|data: &[u8]| {
    let Ok(bytes) = message(&mut Unstructured::new(data)) else {
        return;
    };
    let received = Received::parse(&bytes, bytes.len()).expect("a message as delivered");
    let mut outbox = Box::new(Outbox::new());
    let mut keeper = Keeper::default();
    let outcome = shapes::dispatch(&mut keeper, &received, &mut outbox);
    let mine = received.id().wrapping_sub(shapes::BASE) < shapes::COUNT;
    assert_eq!(outcome == Dispatched::NotMine, !mine);
    let _ = outbox.take_reply();

    // The same message as the reply to each routine, decoded by a client.
    let id = received.id().wrapping_sub(100);
    let _ = decode_reply::<u64, u8>(&received, id);
    let _ = decode_reply::<(String, Vec<u8>), u8>(&received, id);
    let _ = decode_reply::<SendRight, DeviceError>(&received, id);
    let _ = decode_reply::<Pages, DeviceError>(&received, id);
    let _ = decode_reply::<Written, DeviceError>(&received, id);
    let _ = decode_reply::<Option<Vec<(u16, String)>>, u8>(&received, id);
});

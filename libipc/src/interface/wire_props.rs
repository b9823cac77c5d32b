//! Property tests of interface decoding, server and client side: any request a subsystem's
//! dispatch is given, and any reply a client stub decodes, is decoded or refused without a
//! panic, and every right and region that arrived with it is handed over or given back
//! exactly once; valid calls round-trip from client to server and back.

extern crate std;

use std::boxed::Box;
use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::abi::message::{
    descriptor_kind, Descriptor, Disposition, MessageHeader, ReceivedRight, COMPLEX,
    DESCRIPTOR_SIZE, HEADER_SIZE, MAX_MESSAGE_SIZE,
};
use crate::abi::syscall::PAGE_SIZE;
use crate::device::{DeviceError, Written};
use crate::ipc::message::{Name, OutMessage, Received};
use crate::props::{config, mutate, mutations};

/// A serde type with a bit of everything postcard encodes: variants, strings, sequences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    Empty,
    Point(i32, i32),
    Named { name: String, sides: Vec<u16> },
}

crate::interface! {
    /// A subsystem with a routine per kind of argument, for the properties.
    pub mod shapes = 5300 {
        type Error = u8;

        /// Reply: `b + a`.
        fn numbers(a: u8, b: u64, c: i64) -> u64;
        /// Reply: the length of `name`.
        fn text(name: String, bytes: Vec<u8>) -> u32;
        /// Retired.
        skip;
        /// Reply: `shape`, or the error `flag` when there is none.
        fn shape(shape: Option<Shape>, flag: bool) -> Shape;
        /// Reply: `tag`; the server keeps `port`.
        fn port(tag: u16, port: SendRight) -> u16;
        /// Reply: `()`; the server keeps both.
        fn pages(pages: Pages, receive: ReceiveRight) -> ();
    }
}

/// The server's port, and the range the reply rights' names are drawn from.
const SERVER: Name = 0x105;
const REPLIES: Name = 0x9000_0000;

/// A call as the server saw it (rights and regions by name and address).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Numbers(u8, u64, i64),
    Text(String, Vec<u8>),
    Shape(Option<Shape>, bool),
    Port(u16, Name),
    Pages(u64, u64, Name),
}

/// A server that records its calls and keeps what they carried (given back when dropped).
#[derive(Default)]
struct Keeper {
    calls: Vec<Call>,
    sends: Vec<SendRight>,
    receives: Vec<ReceiveRight>,
    pages: Vec<Pages>,
}

impl shapes::Server for Keeper {
    fn numbers(&mut self, a: u8, b: u64, c: i64, reply: Reply<'_, u64, u8>) -> Replied {
        self.calls.push(Call::Numbers(a, b, c));
        reply.ok(b.wrapping_add(u64::from(a)))
    }

    fn text(&mut self, name: String, bytes: Vec<u8>, reply: Reply<'_, u32, u8>) -> Replied {
        let length = name.len() as u32;
        self.calls.push(Call::Text(name, bytes));
        reply.ok(length)
    }

    fn shape(&mut self, shape: Option<Shape>, flag: bool, reply: Reply<'_, Shape, u8>) -> Replied {
        self.calls.push(Call::Shape(shape.clone(), flag));
        match shape {
            Some(shape) => reply.ok(shape),
            None => reply.err(u8::from(flag)),
        }
    }

    fn port(&mut self, tag: u16, port: SendRight, reply: Reply<'_, u16, u8>) -> Replied {
        // What the decoder promises of a right it hands over (a dead name is a right whose
        // port died on the way: the server finds out when it uses it).
        assert_ne!(port.name(), 0);
        self.calls.push(Call::Port(tag, port.name()));
        self.sends.push(port);
        reply.ok(tag)
    }

    fn pages(&mut self, pages: Pages, receive: ReceiveRight, reply: Reply<'_, (), u8>) -> Replied {
        assert_ne!(receive.name(), 0);
        assert!(
            pages.is_empty() || (pages.address() != 0 && pages.address().is_multiple_of(PAGE_SIZE))
        );
        self.calls
            .push(Call::Pages(pages.address(), pages.len(), receive.name()));
        self.pages.push(pages);
        self.receives.push(receive);
        reply.ok(())
    }
}

/// Any call, with valid arguments.
fn call() -> impl Strategy<Value = Call> {
    let shape = prop_oneof![
        Just(Shape::Empty),
        any::<(i32, i32)>().prop_map(|(x, y)| Shape::Point(x, y)),
        (".{0,12}", proptest::collection::vec(any::<u16>(), 0..6))
            .prop_map(|(name, sides)| Shape::Named { name, sides }),
    ];
    prop_oneof![
        any::<(u8, u64, i64)>().prop_map(|(a, b, c)| Call::Numbers(a, b, c)),
        (".{0,20}", proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(name, bytes)| Call::Text(name, bytes)),
        (proptest::option::of(shape), any::<bool>()).prop_map(|(s, f)| Call::Shape(s, f)),
        (any::<u16>(), 1u32..0x1000).prop_map(|(tag, name)| Call::Port(tag, name)),
        // No pages arrive as an empty `Pages`, whose address is 0.
        (1u64..0x1000, 0u64..4, 1u32..0x1000).prop_map(|(page, pages, name)| {
            let address = if pages == 0 { 0 } else { page * PAGE_SIZE };
            Call::Pages(address, pages * PAGE_SIZE, name)
        }),
    ]
}

/// The id of `call`'s routine.
fn id_of(call: &Call) -> u32 {
    match call {
        Call::Numbers(..) => shapes::ids::numbers,
        Call::Text(..) => shapes::ids::text,
        Call::Shape(..) => shapes::ids::shape,
        Call::Port(..) => shapes::ids::port,
        Call::Pages(..) => shapes::ids::pages,
    }
}

/// Encodes `call`'s arguments as a client does, into `body`.
fn encode_call<'b>(call: &Call, body: &'b mut [u8]) -> Encoder<'b> {
    let mut encoder = Encoder::new(body);
    match call.clone() {
        Call::Numbers(a, b, c) => {
            a.encode_into(&mut encoder);
            b.encode_into(&mut encoder);
            c.encode_into(&mut encoder);
        }
        Call::Text(name, bytes) => {
            name.encode_into(&mut encoder);
            bytes.encode_into(&mut encoder);
        }
        Call::Shape(shape, flag) => {
            shape.encode_into(&mut encoder);
            flag.encode_into(&mut encoder);
        }
        Call::Port(tag, name) => {
            tag.encode_into(&mut encoder);
            let right = SendRight::from_raw(name);
            SendRight::encode(&right, &mut encoder).expect("room for a right");
            // The client keeps its right: the message carries a copy.
            right.into_raw();
        }
        Call::Pages(address, size, name) => {
            // SAFETY: on the host `Pages` only records its release; nothing is mapped.
            let pages = unsafe { Pages::from_raw(address, size) };
            Pages::encode(pages, &mut encoder).expect("room for a region");
            ReceiveRight::encode(ReceiveRight::from_raw(name), &mut encoder)
                .expect("room for a right");
        }
    }
    encoder
}

/// `Wire::encode` for serde values, which cannot fail in these small bodies.
trait EncodeInto {
    fn encode_into(self, encoder: &mut Encoder<'_>);
}

impl<T: Serialize + serde::de::DeserializeOwned> EncodeInto for T {
    fn encode_into(self, encoder: &mut Encoder<'_>) {
        T::encode(self, encoder).expect("room for the value");
    }
}

/// Lays `message` out as the kernel delivers it to the receiver: the reply right (named
/// `reply`, of kind `reply_kind`) in `remote_port`, the destination in `local_port`, each
/// carried right with the kind the receiver gets.
fn deliver(message: &OutMessage<'_>, reply: Option<(Name, ReceivedRight)>) -> Vec<u8> {
    let mut bytes = vec![0u8; MAX_MESSAGE_SIZE];
    let size = message.encode(&mut bytes).expect("fits");
    bytes.truncate(size);
    let sent = MessageHeader::from_bytes(bytes[..HEADER_SIZE].try_into().expect("header"));
    let header = MessageHeader {
        bits: reply.map_or(0, |(_, kind)| kind as u32) | (sent.bits & COMPLEX),
        remote_port: reply.map_or(0, |(name, _)| name),
        local_port: SERVER,
        ..sent
    };
    bytes[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    if header.is_complex() {
        let count = u32::from_le_bytes(bytes[HEADER_SIZE..HEADER_SIZE + 4].try_into().unwrap());
        for i in 0..count as usize {
            let at = HEADER_SIZE + 4 + i * DESCRIPTOR_SIZE;
            let mut d = Descriptor::from_bytes(bytes[at..at + DESCRIPTOR_SIZE].try_into().unwrap());
            if d.kind == descriptor_kind::PORT {
                d.disposition = Disposition::from_raw(d.disposition)
                    .map_or(d.disposition, |d| d.received() as u8);
            }
            bytes[at..at + DESCRIPTOR_SIZE].copy_from_slice(&d.to_bytes());
        }
    }
    bytes
}

/// The bytes of a request for `call` as its server receives it.
fn request_bytes(call: &Call, reply: Option<(Name, ReceivedRight)>) -> Vec<u8> {
    let mut body = [0u8; 256];
    let encoder = encode_call(call, &mut body);
    let message = encoder.message(id_of(call)).expect("a few rights");
    deliver(&message, reply)
}

/// A descriptor of a hostile message: a port right (name and disposition byte as delivered)
/// or a region (address and size).
#[derive(Clone, Debug)]
enum Carried {
    Port(Name, u8),
    Memory(u64, u32),
}

/// Any descriptor; port names are mostly small, sometimes 0 or the dead name.
fn carried() -> impl Strategy<Value = Carried> {
    let name = prop_oneof![
        8 => 1u32..0x1000,
        1 => Just(0u32),
        1 => Just(DEAD_NAME),
    ];
    let disposition = prop_oneof![8 => 16u8..=18, 1 => any::<u8>()];
    let address = prop_oneof![
        (0u64..0x1000).prop_map(|page| page * PAGE_SIZE),
        any::<u64>(),
    ];
    let size = prop_oneof![(0u32..4).prop_map(|p| p * PAGE_SIZE as u32), any::<u32>()];
    prop_oneof![
        (name, disposition).prop_map(|(n, d)| Carried::Port(n, d)),
        (address, size).prop_map(|(a, s)| Carried::Memory(a, s)),
    ]
}

/// A reply right as the kernel delivers one: none, or a name and the kind received.
fn reply_right() -> impl Strategy<Value = Option<(Name, ReceivedRight)>> {
    let kind = prop_oneof![
        4 => Just(ReceivedRight::SendOnce),
        1 => Just(ReceivedRight::Send),
        1 => Just(ReceivedRight::Receive),
    ];
    proptest::option::of((0u32..0x100, kind).prop_map(|(n, kind)| (REPLIES + n, kind)))
}

/// The bytes of a message with `id`, `reply`, `carried` descriptors and `body` (after
/// them), as the kernel would deliver it.
fn raw_message(
    id: u32,
    reply: Option<(Name, ReceivedRight)>,
    carried: &[Carried],
    body: &[u8],
) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_SIZE];
    if !carried.is_empty() {
        bytes.extend_from_slice(&(carried.len() as u32).to_le_bytes());
        for c in carried {
            let d = match *c {
                Carried::Port(name, disposition) => Descriptor {
                    value: u64::from(name),
                    disposition,
                    ..Descriptor::default()
                },
                Carried::Memory(address, size) => Descriptor::out_of_line(address, size, true),
            };
            bytes.extend_from_slice(&d.to_bytes());
        }
    }
    bytes.extend_from_slice(body);
    let header = MessageHeader {
        bits: reply.map_or(0, |(_, kind)| kind as u32)
            | if carried.is_empty() { 0 } else { COMPLEX },
        size: bytes.len() as u32,
        remote_port: reply.map_or(0, |(name, _)| name),
        local_port: SERVER,
        voucher: 0,
        id,
    };
    bytes[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    bytes
}

/// A body: bytes with a length prefix that fits them (so the values are read), or any.
fn body() -> impl Strategy<Value = Vec<u8>> {
    (proptest::collection::vec(any::<u8>(), 0..48), any::<bool>()).prop_map(|(mut b, fix)| {
        if fix && b.len() >= LENGTH_PREFIX {
            let length = (b.len() - LENGTH_PREFIX) as u16;
            b[..LENGTH_PREFIX].copy_from_slice(&length.to_le_bytes());
        }
        b
    })
}

/// Rights (name and kind) and regions (address and size), sorted: what arrived with a
/// message, or what was given back.
type Accounts = (Vec<(Name, Option<ReceivedRight>)>, Vec<(u64, u32)>);

/// Sorted multisets of what the host stand-ins gave back: rights and regions. A dead name
/// holds nothing, so giving it back (as a dropped stand-in does) does not count.
fn given_back(log: &[Event]) -> Accounts {
    let mut rights = Vec::new();
    let mut regions = Vec::new();
    for event in log {
        match event {
            Event::Released(DEAD_NAME, _) => {}
            Event::Released(name, kind) => rights.push((*name, *kind)),
            Event::Unmapped(address, size) => regions.push((*address, *size)),
            Event::Sent(_) => {}
        }
    }
    rights.sort_by_key(|&(name, kind)| (name, kind.map(|k| k as u8)));
    regions.sort();
    (rights, regions)
}

/// What arrived with `message` that someone must give back: its carried rights and regions
/// (those that hold something), sorted.
fn arrived(message: &Received<'_>) -> Accounts {
    let mut rights: Vec<_> = message
        .rights()
        .filter(|&(name, _)| name != 0 && name != DEAD_NAME)
        .collect();
    let mut regions: Vec<_> = message
        .memory()
        .filter(|&(address, size)| address != 0 && size != 0)
        .collect();
    rights.sort_by_key(|&(name, kind)| (name, kind.map(|k| k as u8)));
    regions.sort();
    (rights, regions)
}

/// Dispatches `bytes` (a message as delivered) to a fresh `Keeper` and checks that it was
/// handled as the ids say, that a request with a reply right got exactly one reply, and that
/// every right and region that came with it ended up given back exactly once (the server's
/// share when the server is dropped). Returns the calls the server saw and the reply.
fn dispatch_and_account(bytes: &[u8]) -> Result<(Vec<Call>, Option<Vec<u8>>), TestCaseError> {
    let Ok(request) = Received::parse(bytes, bytes.len()) else {
        return Ok((Vec::new(), None));
    };
    host_log();
    let mut keeper = Keeper::default();
    let mut outbox = Box::new(Outbox::new());
    let outcome = shapes::dispatch(&mut keeper, &request, &mut outbox);
    let mine = request.id().wrapping_sub(shapes::BASE) < shapes::COUNT;
    if !mine {
        prop_assert_eq!(outcome, Dispatched::NotMine);
        prop_assert!(!outbox.has_reply());
        prop_assert_eq!(host_log(), [], "a message not handled is left alone");
        return Ok((Vec::new(), None));
    }
    prop_assert_eq!(outcome, Dispatched::Handled);
    let reply = outbox.take_reply().map(|reply| {
        let mut out = vec![0u8; reply.size()];
        reply.encode(&mut out).expect("a reply fits");
        out
    });
    let calls = core::mem::take(&mut keeper.calls);
    drop(keeper);
    let log = host_log();
    let sent_now = log.iter().filter(|e| matches!(e, Event::Sent(_))).count();
    let (mut expected_rights, expected_regions) = arrived(&request);
    match request.reply() {
        Some((_, ReceivedRight::SendOnce | ReceivedRight::Send)) => {
            prop_assert_eq!(
                usize::from(reply.is_some()) + sent_now,
                1,
                "one reply to a request with a reply right"
            );
        }
        Some((name, kind @ ReceivedRight::Receive)) => {
            // Not a right a reply can go through: given back at once.
            prop_assert!(reply.is_none() && sent_now == 0);
            if name != DEAD_NAME {
                expected_rights.push((name, Some(kind)));
            }
        }
        None => prop_assert!(reply.is_none() && sent_now == 0),
    }
    expected_rights.sort_by_key(|&(name, kind)| (name, kind.map(|k| k as u8)));
    let (rights, regions) = given_back(&log);
    prop_assert_eq!(rights, expected_rights, "rights given back exactly once");
    prop_assert_eq!(regions, expected_regions, "regions given back exactly once");
    Ok((calls, reply))
}

/// Decodes `bytes` (a reply as delivered) as the reply to routine `id` with result type `R`,
/// drops the result, and checks that every right and region that came with it (a stray
/// reply right too) was given back exactly once.
fn decode_and_account<R: Wire + core::fmt::Debug>(
    bytes: &[u8],
    id: u32,
) -> Result<(), TestCaseError> {
    let Ok(reply) = Received::parse(bytes, bytes.len()) else {
        return Ok(());
    };
    host_log();
    let result = decode_reply::<R, DeviceError>(&reply, id);
    if result.is_ok() {
        prop_assert_eq!(reply.id(), reply_id(id));
        prop_assert!(reply.reply().is_none(), "a reply carries no reply right");
    }
    drop(result);
    let (mut expected_rights, expected_regions) = arrived(&reply);
    if let Some((name, kind)) = reply.reply() {
        if name != DEAD_NAME {
            expected_rights.push((name, Some(kind)));
        }
    }
    expected_rights.sort_by_key(|&(name, kind)| (name, kind.map(|k| k as u8)));
    let (rights, regions) = given_back(&host_log());
    prop_assert_eq!(rights, expected_rights, "rights given back exactly once");
    prop_assert_eq!(regions, expected_regions, "regions given back exactly once");
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_request_is_dispatched_or_refused_and_its_rights_accounted_for(
        id in prop_oneof![4 => shapes::BASE..shapes::BASE + shapes::COUNT + 1, 1 => any::<u32>()],
        reply in reply_right(),
        carried in proptest::collection::vec(carried(), 0..7),
        body in body(),
    ) {
        let bytes = raw_message(id, reply, &carried, &body);
        dispatch_and_account(&bytes)?;
    }

    #[test]
    fn mutated_requests_are_dispatched_or_refused_and_their_rights_accounted_for(
        call in call(),
        reply in reply_right(),
        mutations in mutations(),
    ) {
        let mut bytes = request_bytes(&call, reply);
        // The header's dispositions are the kernel's to write: a mutation keeps them.
        let bits = bytes[..2].to_vec();
        mutate(&mut bytes, &mutations);
        if bytes.len() >= 2 {
            bytes[..2].copy_from_slice(&bits);
        }
        dispatch_and_account(&bytes)?;
    }

    #[test]
    fn valid_calls_reach_the_server_unchanged_and_their_replies_decode(
        call in call(),
        reply_name in 0u32..0x100,
    ) {
        let reply = Some((REPLIES + reply_name, ReceivedRight::SendOnce));
        let bytes = request_bytes(&call, reply);
        let (calls, answer) = dispatch_and_account(&bytes)?;
        prop_assert_eq!(&calls, core::slice::from_ref(&call));
        let answer = answer.expect("a reply in the outbox");
        let sent = Received::parse(&answer, answer.len()).expect("a valid reply");
        prop_assert_eq!(sent.header.remote_port, REPLIES + reply_name);
        // As the client receives it: the send-once right used up, nothing carried.
        let mut header = sent.header;
        header.bits &= COMPLEX;
        header.remote_port = 0;
        let mut delivered = answer.clone();
        delivered[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
        let received = Received::parse(&delivered, delivered.len()).expect("a valid reply");
        let id = id_of(&call);
        host_log();
        match call {
            Call::Numbers(a, b, _) => prop_assert_eq!(
                decode_reply::<u64, u8>(&received, id),
                Ok(b.wrapping_add(u64::from(a)))
            ),
            Call::Text(name, _) => {
                prop_assert_eq!(
                    decode_reply::<u32, u8>(&received, id),
                    Ok(name.len() as u32)
                )
            }
            Call::Shape(shape, flag) => prop_assert_eq!(
                decode_reply::<Shape, u8>(&received, id),
                shape.ok_or(RemoteError::Server(u8::from(flag)))
            ),
            Call::Port(tag, _) => prop_assert_eq!(decode_reply::<u16, u8>(&received, id), Ok(tag)),
            Call::Pages(..) => prop_assert_eq!(decode_reply::<(), u8>(&received, id), Ok(())),
        }
        prop_assert_eq!(host_log(), []);
    }

    #[test]
    fn any_reply_is_decoded_or_refused_and_its_rights_accounted_for(
        id in any::<u32>(),
        same_id in any::<bool>(),
        stray in reply_right(),
        carried in proptest::collection::vec(carried(), 0..7),
        body in body(),
    ) {
        let reply_to = if same_id { reply_id(id) } else { id };
        let bytes = raw_message(reply_to, stray, &carried, &body);
        decode_and_account::<u64>(&bytes, id)?;
        decode_and_account::<Shape>(&bytes, id)?;
        decode_and_account::<SendRight>(&bytes, id)?;
        decode_and_account::<Pages>(&bytes, id)?;
        decode_and_account::<Written>(&bytes, id)?;
        decode_and_account::<(String, Vec<u8>)>(&bytes, id)?;
    }
}

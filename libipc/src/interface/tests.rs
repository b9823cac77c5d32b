//! Host tests of the generated code: a test subsystem, its dispatch called on messages laid
//! out as the kernel delivers them, and its client over a loopback transport.

extern crate std;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::*;
use crate::abi::message::{
    notify, Disposition, MessageHeader, ReceivedRight, DESCRIPTOR_SIZE, HEADER_SIZE,
};
use crate::ipc::message::{MessageBuffer, Name, OutMessage, Received};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CalcError {
    DivideByZero,
    Big(String),
}

crate::interface! {
    /// A subsystem for the tests.
    pub mod calc = 5000 {
        type Error = CalcError;

        /// Divides.
        ///
        /// Reply: `a / b`, or `DivideByZero`.
        fn divide(a: u32, b: u32) -> u32;
        /// Retired.
        skip;
        /// Reply: `tag` and a copy of `port`.
        fn bounce(tag: String, port: SendRight) -> Tagged;
        /// Reply: `value + 1`, later (after `release_later`).
        fn later(value: u64) -> u64;
        /// Reply: `()`, or the error `Big` with a message too large for any reply.
        fn nothing(huge: bool) -> ();
        /// Reply: how many `later` replies were sent.
        fn release_later() -> u32;
    }
}

/// The server's port and the client's reply port, as the loopback names them.
const SERVER: Name = 0x105;
const REPLY: Name = 0x207;

#[derive(Default)]
struct Calc {
    waiting: Vec<(u64, Deferred<u64, CalcError>)>,
    bounced: Vec<SendRight>,
}

impl calc::Server for Calc {
    fn divide(&mut self, a: u32, b: u32, reply: Reply<'_, u32, CalcError>) -> Replied {
        match a.checked_div(b) {
            Some(q) => reply.ok(q),
            None => reply.err(CalcError::DivideByZero),
        }
    }

    fn bounce(
        &mut self,
        tag: String,
        port: SendRight,
        reply: Reply<'_, Tagged, CalcError>,
    ) -> Replied {
        self.bounced.push(port);
        let port = self.bounced.last().expect("just pushed");
        // The String goes in the body, the right as a descriptor.
        reply.ok((tag, port))
    }

    fn later(&mut self, value: u64, reply: Reply<'_, u64, CalcError>) -> Replied {
        let (deferred, replied) = reply.defer();
        self.waiting.push((value, deferred));
        replied
    }

    fn nothing(&mut self, huge: bool, reply: Reply<'_, (), CalcError>) -> Replied {
        if huge {
            reply.err(CalcError::Big("x".repeat(MAX_BODY + 1)))
        } else {
            reply.ok(())
        }
    }

    fn release_later(&mut self, reply: Reply<'_, u32, CalcError>) -> Replied {
        let mut sent = 0;
        for (value, deferred) in self.waiting.drain(..) {
            deferred.send(Ok(value + 1)).unwrap();
            sent += 1;
        }
        reply.ok(sent)
    }
}

/// A result of a data value and a right. Types with rights implement `Wire` themselves (serde
/// types have it from the blanket impl).
#[derive(Debug)]
pub struct Tagged {
    tag: String,
    port: SendRight,
}

impl Wire for Tagged {
    type Give<'a> = (String, &'a SendRight);

    fn encode(
        (tag, port): (String, &SendRight),
        encoder: &mut Encoder<'_>,
    ) -> Result<(), crate::ipc::message::MessageError> {
        String::encode(tag, encoder)?;
        SendRight::encode(port, encoder)
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, Malformed> {
        Ok(Tagged {
            tag: String::decode(decoder)?,
            port: SendRight::decode(decoder)?,
        })
    }
}

/// Lays out `message` as the kernel delivers it: the reply right in `remote_port` with the
/// kind the receiver gets, the destination's name in `local_port`, carried rights with their
/// received kinds (names unchanged: the test's two spaces are one).
fn deliver<'b>(message: &OutMessage<'_>, buffer: &'b mut [u8]) -> Received<'b> {
    let size = message.encode(buffer).unwrap();
    let sent = MessageHeader::from_bytes(buffer[..HEADER_SIZE].try_into().unwrap());
    let reply_kind =
        Disposition::from_raw(sent.local_disposition()).map_or(0, |d| d.received() as u32);
    let header = MessageHeader {
        bits: reply_kind | (sent.bits & crate::abi::message::COMPLEX),
        remote_port: sent.local_port,
        local_port: sent.remote_port,
        ..sent
    };
    buffer[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    for (i, &(_, disposition)) in message.rights().iter().enumerate() {
        buffer[HEADER_SIZE + 4 + i * DESCRIPTOR_SIZE + 12] = disposition.received() as u8;
    }
    Received::parse(buffer, size).unwrap()
}

/// Re-reads the bytes of a message a stand-in sent at once as an `OutMessage`'s parts.
fn sent_messages() -> Vec<Vec<u8>> {
    host_log()
        .into_iter()
        .filter_map(|event| match event {
            Event::Sent(bytes) => Some(bytes),
            Event::Released(..) | Event::Unmapped(..) => None,
        })
        .collect()
}

/// Delivers raw message bytes (as a sender laid them out) into `buffer`.
fn deliver_bytes<'b>(bytes: &[u8], buffer: &'b mut [u8]) -> Received<'b> {
    let sent = Received::parse(bytes, bytes.len()).unwrap();
    let header = sent.header;
    let mut message = OutMessage::new(header.id, header.remote_port)
        .to(
            header.remote_port,
            Disposition::from_raw(header.remote_disposition()).unwrap(),
        )
        .with_body(sent.body);
    if header.local_disposition() != 0 {
        message = message.with_reply(
            header.local_port,
            Disposition::from_raw(header.local_disposition()).unwrap(),
        );
    }
    let rights: Vec<(Name, Disposition)> = bytes[HEADER_SIZE + 4..]
        .chunks_exact(DESCRIPTOR_SIZE)
        .take(if header.is_complex() {
            u32::from_le_bytes(bytes[HEADER_SIZE..HEADER_SIZE + 4].try_into().unwrap()) as usize
        } else {
            0
        })
        .map(|d| {
            let d = crate::abi::message::Descriptor::from_bytes(d.try_into().unwrap());
            (
                d.value as Name,
                Disposition::from_raw(d.disposition).unwrap(),
            )
        })
        .collect();
    for (name, disposition) in rights {
        message = message.carry(name, disposition).unwrap();
    }
    deliver(&message, buffer)
}

/// A transport that hands the request straight to a `calc` server's dispatch and brings the
/// reply back, from the outbox or from what was sent at once.
struct Loopback {
    server: Calc,
    outbox: Outbox,
    dispatched: Vec<Dispatched>,
}

impl Loopback {
    fn new() -> Self {
        Loopback {
            server: Calc::default(),
            outbox: Outbox::new(),
            dispatched: Vec::new(),
        }
    }
}

impl Transport for Loopback {
    fn call<'b>(
        &mut self,
        request: &OutMessage<'_>,
        buffer: &'b mut MessageBuffer,
    ) -> Result<Received<'b>, TransportError> {
        let request = request.to(SERVER, Disposition::CopySend).reply_to(REPLY);
        let mut incoming = MessageBuffer::new();
        let received = deliver(&request, &mut incoming.0);
        assert_eq!(received.reply(), Some((REPLY, ReceivedRight::SendOnce)));
        let outcome = calc::dispatch(&mut self.server, &received, &mut self.outbox);
        self.dispatched.push(outcome);
        let bytes = match self.outbox.take_reply() {
            Some(reply) => {
                let mut out = vec![0; reply.size()];
                reply.encode(&mut out).unwrap();
                out
            }
            None => sent_messages()
                .pop()
                .ok_or(TransportError::Ipc(IpcError::Msg(
                    crate::abi::message::MsgReturn::RcvTimedOut,
                )))?,
        };
        Ok(deliver_bytes(&bytes, &mut buffer.0))
    }
}

/// A loopback whose calls may also go direct (`direct_port`): the collocated client's.
struct DirectLoopback(Loopback);

impl Transport for DirectLoopback {
    fn call<'b>(
        &mut self,
        request: &OutMessage<'_>,
        buffer: &'b mut MessageBuffer,
    ) -> Result<Received<'b>, TransportError> {
        self.0.call(request, buffer)
    }

    fn direct_port(&self) -> Option<Name> {
        Some(SERVER)
    }
}

/// Stands in for the kernel: direct calls on `SERVER` lend `server` (its `calc` interface)
/// and count themselves; `outcome` is what the kernel answers instead (not taken, the server
/// failed), if set.
fn lend(
    server: std::rc::Rc<core::cell::RefCell<Calc>>,
    count: std::rc::Rc<core::cell::Cell<u32>>,
    outcome: Option<direct::Direct>,
) {
    direct::tests::LENDER.with(|lender| {
        *lender.borrow_mut() = Some(alloc::boxed::Box::new(move |port, visit| {
            assert_eq!(port, SERVER);
            if let Some(outcome) = outcome {
                return outcome;
            }
            count.set(count.get() + 1);
            match calc::local(&mut *server.borrow_mut(), visit) {
                true => direct::Direct::Called,
                false => direct::Direct::NotTaken,
            }
        }))
    });
}

#[test]
fn plain_calls_go_direct_with_results_errors_and_deferrals_and_the_rest_as_messages() {
    use std::rc::Rc;
    host_log();
    let server = Rc::new(core::cell::RefCell::new(Calc::default()));
    let count = Rc::new(core::cell::Cell::new(0));
    lend(server.clone(), count.clone(), None);
    let mut c = calc::Client::with_transport(DirectLoopback(Loopback::new()));
    assert_eq!(c.divide(7, 2), Ok(3));
    assert_eq!(
        c.divide(1, 0),
        Err(RemoteError::Server(CalcError::DivideByZero))
    );
    assert_eq!(count.get(), 2, "each plain call direct");
    assert_eq!(
        c.transport().0.dispatched,
        [],
        "no message reached the dispatch"
    );
    // A reply kept for later: the caller, which cannot wait, is told at once; the server
    // keeps the deferral, which answers nobody.
    assert_eq!(
        c.later(41),
        Err(RemoteError::Transport(TransportError::Ipc(IpcError::Msg(
            crate::abi::message::MsgReturn::RcvTimedOut
        ))))
    );
    assert_eq!(server.borrow().waiting.len(), 1);
    assert_eq!(c.release_later(), Ok(1));
    assert_eq!(count.get(), 4);
    // A right does not change spaces in a direct call: a message.
    let port = SendRight::from_raw(0x333);
    let tagged = c.bounce("t".into(), &port);
    assert!(tagged.is_ok(), "{tagged:?}");
    assert_eq!(count.get(), 4, "bounce carries a right: not direct");
    assert_eq!(c.transport().0.dispatched, [Dispatched::Handled]);
    core::mem::forget(port);
    core::mem::forget(tagged);
    // Not taken (a task server, say): the same call as a message, its arguments intact.
    lend(
        server.clone(),
        count.clone(),
        Some(direct::Direct::NotTaken),
    );
    assert_eq!(c.divide(9, 3), Ok(3));
    assert_eq!(c.transport().0.dispatched.len(), 2, "went as a message");
    // The server failed during the call: as a dropped request.
    lend(server, count, Some(direct::Direct::ServerFailed));
    assert_eq!(c.divide(9, 3), Err(RemoteError::NoReply));
    direct::tests::LENDER.with(|lender| *lender.borrow_mut() = None);
}

#[test]
fn a_lent_server_is_taken_only_as_its_own_interface() {
    let mut server = Calc::default();
    let mut visits = 0;
    // A visitor expecting another interface's server finds none.
    let taken = calc::local(&mut server, &mut |lent: &mut dyn core::any::Any| {
        visits += 1;
        lent.downcast_mut::<u32>().is_some()
    });
    assert!(!taken && visits == 1);
    let taken = calc::local(&mut server, &mut |lent: &mut dyn core::any::Any| {
        lent.downcast_mut::<calc::Local>().is_some()
    });
    assert!(taken);
}

// Plain data goes direct; rights and memory do not.
const _: () = assert!(<u32 as Wire>::PLAIN && <String as Wire>::PLAIN && <() as Wire>::PLAIN);
const _: () = assert!(!<SendRight as Wire>::PLAIN && !<ReceiveRight as Wire>::PLAIN);
const _: () = assert!(!<Pages as Wire>::PLAIN);

fn client() -> calc::Client<Loopback> {
    host_log();
    calc::Client::with_transport(Loopback::new())
}

/// Dispatches a hand-made request to a fresh server; returns what the client would decode
/// as the reply to routine `id`.
fn dispatch_raw<R: Wire>(
    message: OutMessage<'_>,
    expect_reply_to: u32,
) -> Result<R, RemoteError<CalcError>> {
    let mut server = Calc::default();
    let mut outbox = Outbox::new();
    let mut buffer = MessageBuffer::new();
    let received = deliver(&message.reply_to(REPLY), &mut buffer.0);
    assert_eq!(
        calc::dispatch(&mut server, &received, &mut outbox),
        Dispatched::Handled
    );
    let reply = outbox.take_reply().expect("an error reply");
    let mut back = MessageBuffer::new();
    decode_reply(&deliver(&reply, &mut back.0), expect_reply_to)
}

#[test]
fn ids_are_base_plus_index_and_skip_keeps_its_slot() {
    assert_eq!(calc::BASE, 5000);
    assert_eq!(calc::ids::divide, 5000);
    assert_eq!(calc::ids::bounce, 5002);
    assert_eq!(calc::ids::later, 5003);
    assert_eq!(calc::ids::nothing, 5004);
    assert_eq!(calc::ids::release_later, 5005);
    assert_eq!(calc::COUNT, 6);
    assert_eq!(reply_id(calc::ids::divide), 5100);
    assert_eq!(crate::names::ids::register, 400);
    assert_eq!(crate::names::ids::lookup, 401);
}

#[test]
fn calls_round_trip_with_results_and_errors() {
    let mut calc = client();
    assert_eq!(calc.divide(84, 2), Ok(42));
    assert_eq!(
        calc.divide(1, 0),
        Err(RemoteError::Server(CalcError::DivideByZero))
    );
    assert_eq!(calc.nothing(false), Ok(()));
    assert_eq!(calc.transport().dispatched, [Dispatched::Handled; 3]);
}

#[test]
fn a_send_right_travels_both_ways_as_a_descriptor() {
    let mut calc = client();
    let port = SendRight::from_raw(0x333);
    let Tagged { tag, port: back } = calc.bounce("hi".into(), &port).unwrap();
    assert_eq!(tag, "hi");
    // The server got its own right (same name: one space in this test) and kept it; the
    // reply carried a copy, sent at once while the server held it.
    assert_eq!(back.name(), 0x333);
    assert_eq!(calc.transport().server.bounced.len(), 1);
    assert_eq!(calc.transport().server.bounced[0].name(), 0x333);
    back.into_raw();
    port.into_raw();
    assert_eq!(host_log(), []);
}

/// A `later` request dispatched to `server`, which defers it.
fn defer_later(server: &mut Calc, value: u64) {
    let mut outbox = Outbox::new();
    let mut buffer = MessageBuffer::new();
    let mut body = [0u8; 16];
    let mut encoder = Encoder::new(&mut body);
    encoder.data(&value).unwrap();
    let request = encoder.message(calc::ids::later).unwrap();
    let request = request.to(SERVER, Disposition::CopySend).reply_to(REPLY);
    let received = deliver(&request, &mut buffer.0);
    assert_eq!(
        calc::dispatch(server, &received, &mut outbox),
        Dispatched::Handled
    );
    assert!(!outbox.has_reply(), "no reply yet");
}

#[test]
fn deferred_replies_go_out_when_the_server_sends_them() {
    host_log();
    let mut server = Calc::default();
    defer_later(&mut server, 41);
    assert_eq!(server.waiting.len(), 1);
    assert_eq!(host_log(), []);

    // Another request completes it: the deferred reply is sent at once, the other's reply
    // goes with the loop's next receive.
    let mut calc = calc::Client::with_transport(Loopback {
        server,
        outbox: Outbox::new(),
        dispatched: Vec::new(),
    });
    assert_eq!(calc.release_later(), Ok(1));
    let sent = sent_messages();
    assert_eq!(sent.len(), 1);
    let mut back = MessageBuffer::new();
    let reply = deliver_bytes(&sent[0], &mut back.0);
    assert_eq!(reply.id(), reply_id(calc::ids::later));
    assert_eq!(
        decode_reply::<u64, CalcError>(&reply, calc::ids::later),
        Ok(42)
    );
}

#[test]
fn a_dropped_deferred_reply_fails_the_call() {
    host_log();
    let mut server = Calc::default();
    defer_later(&mut server, 1);
    // Dropped unused, the reply right is given back: the kernel then sends the client a
    // send-once notification, which its stub reads as NoReply.
    drop(server);
    assert_eq!(
        host_log(),
        [Event::Released(REPLY, Some(ReceivedRight::SendOnce))]
    );
    let notification =
        OutMessage::new(notify::SEND_ONCE, REPLY).to(REPLY, Disposition::MoveSendOnce);
    let mut back = MessageBuffer::new();
    assert_eq!(
        decode_reply::<u64, CalcError>(&deliver(&notification, &mut back.0), calc::ids::later),
        Err(RemoteError::NoReply)
    );
}

#[test]
fn malformed_requests_get_an_error_reply_and_lose_their_rights() {
    host_log();
    // A length prefix longer than the body.
    let garbage = [0xff; 8];
    let message = OutMessage::new(calc::ids::divide, SERVER)
        .with_body(&garbage)
        .carry(0x444, Disposition::CopySend)
        .unwrap();
    assert_eq!(
        dispatch_raw::<u32>(message, calc::ids::divide),
        Err(RemoteError::BadRequest)
    );
    assert_eq!(
        host_log(),
        [Event::Released(0x444, Some(ReceivedRight::Send))]
    );

    // Not a valid postcard u32 (a varint that never ends).
    let endless = [6u8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let message = OutMessage::new(calc::ids::divide, SERVER).with_body(&endless);
    assert_eq!(
        dispatch_raw::<u32>(message, calc::ids::divide),
        Err(RemoteError::BadRequest)
    );
    // Too short (zero padding does not stand in for the missing argument), and bytes left
    // after the arguments, inside or after the length.
    let short = [1u8, 0, 7];
    let message = OutMessage::new(calc::ids::divide, SERVER).with_body(&short);
    assert_eq!(
        dispatch_raw::<u32>(message, calc::ids::divide),
        Err(RemoteError::BadRequest)
    );
    for long in [&[6u8, 0, 1, 1, 9, 9, 9, 9][..], &[2, 0, 1, 1, 9]] {
        let message = OutMessage::new(calc::ids::divide, SERVER).with_body(long);
        assert_eq!(
            dispatch_raw::<u32>(message, calc::ids::divide),
            Err(RemoteError::BadRequest)
        );
    }
    // Exactly two arguments plus padding to 4 bytes is fine.
    let padded = [2u8, 0, 8, 2];
    let message = OutMessage::new(calc::ids::divide, SERVER).with_body(&padded);
    assert_eq!(dispatch_raw::<u32>(message, calc::ids::divide), Ok(4));

    // More rights and regions than any routine has: malformed, and every one given back.
    host_log();
    let rights: Vec<(u32, Disposition)> =
        (0..6).map(|i| (0x500 + i, Disposition::CopySend)).collect();
    let regions: Vec<(u64, u32, bool)> = (0..5)
        .map(|i| (0x10_0000 + i * 0x1000, 0x1000, true))
        .collect();
    let message = OutMessage::new(calc::ids::divide, SERVER)
        .with_body(&padded)
        .with_rights(&rights)
        .unwrap()
        .with_memory(&regions)
        .unwrap();
    assert_eq!(
        dispatch_raw::<u32>(message, calc::ids::divide),
        Err(RemoteError::BadRequest)
    );
    let log = host_log();
    for (name, _) in &rights {
        assert!(
            log.contains(&Event::Released(*name, Some(ReceivedRight::Send))),
            "right {name:#x} kept: {log:?}"
        );
    }
    for (address, size, _) in &regions {
        assert!(
            log.contains(&Event::Unmapped(*address, *size)),
            "region {address:#x} kept: {log:?}"
        );
    }
}

#[test]
fn a_missing_or_wrong_right_is_a_bad_request() {
    host_log();
    let tag = [3u8, 0, 2, b'h', b'i'];
    let no_right = OutMessage::new(calc::ids::bounce, SERVER).with_body(&tag);
    assert_eq!(
        dispatch_raw::<u32>(no_right, calc::ids::bounce),
        Err(RemoteError::BadRequest)
    );
    let once = OutMessage::new(calc::ids::bounce, SERVER)
        .with_body(&tag)
        .carry(0x555, Disposition::MakeSendOnce)
        .unwrap();
    assert_eq!(
        dispatch_raw::<u32>(once, calc::ids::bounce),
        Err(RemoteError::BadRequest)
    );
    let two = OutMessage::new(calc::ids::bounce, SERVER)
        .with_body(&tag)
        .carry(0x556, Disposition::CopySend)
        .unwrap()
        .carry(0x557, Disposition::MoveReceive)
        .unwrap();
    assert_eq!(
        dispatch_raw::<u32>(two, calc::ids::bounce),
        Err(RemoteError::BadRequest)
    );
    let log = host_log();
    assert!(log.contains(&Event::Released(0x555, Some(ReceivedRight::SendOnce))));
    // The right the routine would have taken is given back too, as is the extra one.
    assert!(log.contains(&Event::Released(0x556, Some(ReceivedRight::Send))));
    assert!(log.contains(&Event::Released(0x557, Some(ReceivedRight::Receive))));
}

#[test]
fn unknown_and_retired_ids() {
    host_log();
    // A retired slot of the subsystem: answered UnknownRoutine.
    let retired = OutMessage::new(5001, SERVER)
        .carry(0x666, Disposition::CopySend)
        .unwrap();
    assert_eq!(
        dispatch_raw::<()>(retired, 5001),
        Err(RemoteError::UnknownRoutine)
    );
    assert_eq!(
        host_log(),
        [Event::Released(0x666, Some(ReceivedRight::Send))]
    );

    // Outside the subsystem: not touched, so another dispatcher may take it; the server
    // loop answers what nobody takes.
    let mut server = Calc::default();
    let mut outbox = Outbox::new();
    let mut buffer = MessageBuffer::new();
    let message = OutMessage::new(6000, SERVER).reply_to(REPLY);
    let received = deliver(&message, &mut buffer.0);
    assert_eq!(
        calc::dispatch(&mut server, &received, &mut outbox),
        Dispatched::NotMine
    );
    assert_eq!(
        calc::Dispatcher(&mut server).dispatch(&received, &mut outbox),
        Dispatched::NotMine
    );
    assert!(!outbox.has_reply());
    assert_eq!(host_log(), []);
    assert_eq!(reject_unknown(&received, &mut outbox), Dispatched::Handled);
    let reply = outbox.take_reply().unwrap();
    let mut back = MessageBuffer::new();
    assert_eq!(
        decode_reply::<(), CalcError>(&deliver(&reply, &mut back.0), 6000),
        Err(RemoteError::UnknownRoutine)
    );
}

#[test]
fn a_pair_of_dispatchers_tries_both() {
    struct Notifications(u32);
    impl Dispatch for Notifications {
        fn dispatch(&mut self, request: &Received<'_>, _: &mut Outbox) -> Dispatched {
            if request.id() == notify::DEAD_NAME {
                self.0 += 1;
                Dispatched::Stop
            } else {
                Dispatched::NotMine
            }
        }
    }
    let mut server = Calc::default();
    let mut notifications = Notifications(0);
    let mut both = (calc::Dispatcher(&mut server), &mut notifications);
    let mut outbox = Outbox::new();
    let mut buffer = MessageBuffer::new();
    let dead = OutMessage::new(notify::DEAD_NAME, SERVER).with_body(&[1, 0, 0, 0]);
    let received = deliver(&dead, &mut buffer.0);
    assert_eq!(both.dispatch(&received, &mut outbox), Dispatched::Stop);
    let body = [2u8, 0, 6, 3];
    let divide = OutMessage::new(calc::ids::divide, SERVER)
        .with_body(&body)
        .reply_to(REPLY);
    let received = deliver(&divide, &mut buffer.0);
    assert_eq!(both.dispatch(&received, &mut outbox), Dispatched::Handled);
    assert!(outbox.has_reply());
    assert_eq!(notifications.0, 1);
}

#[test]
fn one_way_requests_get_no_reply() {
    host_log();
    let mut server = Calc::default();
    let mut outbox = Outbox::new();
    let mut buffer = MessageBuffer::new();
    let body = [2u8, 0, 6, 3];
    let message = OutMessage::new(calc::ids::divide, SERVER).with_body(&body);
    let received = deliver(&message, &mut buffer.0);
    assert_eq!(received.reply(), None);
    assert_eq!(
        calc::dispatch(&mut server, &received, &mut outbox),
        Dispatched::Handled
    );
    assert!(!outbox.has_reply());
    assert_eq!(host_log(), []);
}

#[test]
fn a_reply_too_large_to_encode_is_reported_not_lost() {
    let mut calc = client();
    assert_eq!(calc.nothing(true), Err(RemoteError::BadReply));
}

#[test]
fn malformed_replies_are_bad_replies() {
    host_log();
    let mut back = MessageBuffer::new();
    let check = |message: OutMessage<'_>, back: &mut MessageBuffer| {
        decode_reply::<u32, CalcError>(&deliver(&message, &mut back.0), calc::ids::divide)
    };
    // Wrong id.
    let ok = [2u8, 0, 0, 5];
    let wrong = OutMessage::new(calc::ids::divide, REPLY).with_body(&ok);
    assert_eq!(check(wrong, &mut back), Err(RemoteError::BadReply));
    let right = OutMessage::new(5100, REPLY).with_body(&ok);
    assert_eq!(check(right, &mut back), Ok(5));
    // No status, an unknown status, no result, trailing bytes, an error that does not
    // decode.
    for body in [
        &[0u8, 0][..],
        &[2, 0, 9, 5],
        &[1, 0, 0],
        &[3, 0, 0, 5, 5],
        &[2, 0, 1, 77],
    ] {
        let message = OutMessage::new(5100, REPLY).with_body(body);
        assert_eq!(
            check(message, &mut back),
            Err(RemoteError::BadReply),
            "{body:?}"
        );
    }
    // A reply with rights it should not have: an error, and the rights are given back.
    let message = OutMessage::new(5100, REPLY)
        .with_body(&ok)
        .carry(0x777, Disposition::CopySend)
        .unwrap()
        .with_reply(0x778, Disposition::MakeSendOnce);
    assert_eq!(check(message, &mut back), Err(RemoteError::BadReply));
    let log = host_log();
    assert!(log.contains(&Event::Released(0x777, Some(ReceivedRight::Send))));
    assert!(log.contains(&Event::Released(0x778, Some(ReceivedRight::SendOnce))));
}

#[test]
fn client_side_encoding_failures_are_transport_errors() {
    let mut calc = client();
    let port = SendRight::from_raw(0x333);
    let huge = "y".repeat(MAX_BODY + 1);
    assert_eq!(
        calc.bounce(huge, &port).err(),
        Some(RemoteError::Transport(TransportError::Ipc(
            IpcError::Message(crate::ipc::message::MessageError::TooLarge)
        )))
    );
    assert!(calc.transport().dispatched.is_empty());
    port.into_raw();
}

#[test]
fn names_are_checked() {
    use crate::names::{check_name, NameError, MAX_NAME_LEN};
    assert_eq!(check_name(""), Err(NameError::Empty));
    assert_eq!(check_name("echo"), Ok(()));
    assert_eq!(check_name(&"n".repeat(MAX_NAME_LEN)), Ok(()));
    assert_eq!(
        check_name(&"n".repeat(MAX_NAME_LEN + 1)),
        Err(NameError::TooLong)
    );
}

/// A transport for the asynchronous client: it keeps each request sent (with the reply port
/// it names) for the test to deliver to the server when it likes.
#[derive(Default)]
struct Postbox {
    sent: Vec<(Vec<u8>, Name)>,
}

impl Transport for Postbox {
    fn call<'b>(
        &mut self,
        _request: &OutMessage<'_>,
        _buffer: &'b mut MessageBuffer,
    ) -> Result<Received<'b>, TransportError> {
        unreachable!("the asynchronous client only sends")
    }

    fn send(&mut self, request: &OutMessage<'_>, reply: Name) -> Result<(), TransportError> {
        let request = request.to(SERVER, Disposition::CopySend).reply_to(reply);
        let mut bytes = vec![0; request.size()];
        request.encode(&mut bytes).unwrap();
        self.sent.push((bytes, reply));
        Ok(())
    }
}

#[test]
fn requests_sent_without_waiting_are_answered_in_any_order_to_the_named_port() {
    host_log();
    let mut calc = calc::AsyncClient::with_transport(Postbox::default());
    const FIRST: Name = 0x71;
    const SECOND: Name = 0x72;
    calc.divide(FIRST, 84, 2).unwrap();
    calc.divide(SECOND, 1, 0).unwrap();
    let sent = core::mem::take(&mut calc.transport_mut().sent);
    assert_eq!(sent.len(), 2);
    // The server answers the second request first; each reply is read on its own.
    let mut server = Calc::default();
    let mut answers = Vec::new();
    for (bytes, reply) in sent.iter().rev() {
        let mut incoming = MessageBuffer::new();
        let received = deliver_bytes(bytes, &mut incoming.0);
        assert_eq!(received.reply(), Some((*reply, ReceivedRight::SendOnce)));
        let mut outbox = Outbox::new();
        assert_eq!(
            calc::dispatch(&mut server, &received, &mut outbox),
            Dispatched::Handled
        );
        let answer = outbox.take_reply().expect("a reply");
        let mut back = MessageBuffer::new();
        answers.push((
            *reply,
            decode_reply::<u32, CalcError>(&deliver(&answer, &mut back.0), calc::ids::divide),
        ));
    }
    assert_eq!(
        answers,
        [
            (SECOND, Err(RemoteError::Server(CalcError::DivideByZero))),
            (FIRST, Ok(42)),
        ]
    );
}

//! The server side: replying now or later, dispatching a request to a routine, and the
//! server loop.
//!
//! A routine gets its request's [`Reply`] and must use it up: [`Reply::send`] answers now,
//! [`Reply::defer`] keeps the reply right as a [`Deferred`] to answer later (Mach's "no reply
//! yet": the server waits for a disk or another server without holding a thread). Either way
//! the routine returns the [`Replied`] that only these methods make, so no path forgets.

use core::marker::PhantomData;

use serde::Serialize;

use super::direct;
use super::rights::{self, IpcError};
use super::wire::{reply_id, status, Decoder, Encoder, Give, Malformed, Wire, MAX_BODY};
use crate::abi::message::{Disposition, ReceivedRight};
use crate::ipc::message::{MessageError, Name, OutMessage, Received};

/// The right a reply goes through (a send-once right, usually), and the reply's id. Dropped
/// unused, it is given back: the client then gets a send-once notification
/// ([`RemoteError::NoReply`](super::RemoteError::NoReply)).
#[derive(Debug)]
pub struct ReplyRight {
    name: Name,
    disposition: Disposition,
    id: u32,
}

impl ReplyRight {
    /// The reply right of `request`, now owned; `None` if it has none (a one-way message).
    pub fn take(request: &Received<'_>) -> Option<ReplyRight> {
        let (name, kind) = request.reply()?;
        match rights::reply_disposition(kind) {
            Some(disposition) => Some(ReplyRight {
                name,
                disposition,
                id: reply_id(request.id()),
            }),
            None => {
                rights::release(name, Some(kind));
                None
            }
        }
    }

    /// The send-once right `name` of the caller's, for the reply (of id `id`) to a request
    /// that came as a call rather than a message: a collocated pager's
    /// [`PagerCall`](crate::hosted::PagerCall), whose reply right the kernel put in its space.
    pub fn send_once(name: Name, id: u32) -> ReplyRight {
        ReplyRight {
            name,
            disposition: Disposition::MoveSendOnce,
            id,
        }
    }

    /// The reply message with `body`, `rights` from `encoder` (consumed by the send).
    fn message<'a>(&self, encoder: &'a Encoder<'_>) -> Result<OutMessage<'a>, IpcError> {
        Ok(encoder.message(self.id)?.to(self.name, self.disposition))
    }

    /// Sends the reply `encoder` holds, now; the right is gone either way.
    fn send_now(self, encoder: &Encoder<'_>) -> Result<(), IpcError> {
        let message = self.message(encoder)?;
        let sent = rights::send_now(&message);
        if sent.is_ok() {
            core::mem::forget(self);
        }
        // Else dropping `self` gives the name back, as `release_after_failed_send` explains.
        sent
    }
}

impl Drop for ReplyRight {
    fn drop(&mut self) {
        let kind = match self.disposition {
            Disposition::MoveSendOnce => ReceivedRight::SendOnce,
            _ => ReceivedRight::Send,
        };
        rights::release(self.name, Some(kind));
    }
}

/// Where a server loop keeps the reply a routine gave now, to send it with its next receive
/// (one system call for both), and room to encode replies.
pub struct Outbox {
    body: [u8; MAX_BODY],
    pending: Option<(ReplyRight, usize)>,
}

impl Outbox {
    /// An empty outbox (its room for a reply is 8 KiB: keep it in a `Box` or a long-lived
    /// frame, as the server loop `serve` does).
    pub const fn new() -> Self {
        Outbox {
            body: [0; MAX_BODY],
            pending: None,
        }
    }

    /// The reply waiting to be sent, as a message, handing over its reply right (the send
    /// uses it up). `None` when there is none.
    pub fn take_reply(&mut self) -> Option<OutMessage<'_>> {
        let (right, len) = self.pending.take()?;
        let message = OutMessage::new(right.id, 0)
            .to(right.name, right.disposition)
            .with_body(&self.body[..len]);
        core::mem::forget(right);
        Some(message)
    }

    /// Whether a reply is waiting.
    pub fn has_reply(&self) -> bool {
        self.pending.is_some()
    }

    /// Encodes a reply (`write` fills in the body after the status byte) and queues it, or
    /// sends it now if it carries rights: those are borrowed from the routine and must travel
    /// before it lets go of them.
    fn reply(
        &mut self,
        right: Option<ReplyRight>,
        write: impl FnOnce(&mut Encoder<'_>) -> Result<(), MessageError>,
    ) {
        let Some(right) = right else { return };
        self.pending = None;
        let mut encoder = Encoder::new(&mut self.body);
        if write(&mut encoder).is_err() {
            encoder = Encoder::new(&mut self.body);
            let _ = encoder.data(&status::REPLY_FAILED);
        }
        if encoder.has_rights() {
            // A reply that cannot be sent (the client died) is lost: nobody waits for it.
            let _ = right.send_now(&encoder);
        } else {
            let len = encoder.len();
            self.pending = Some((right, len));
        }
    }

    /// Answers `right` with a bare status (an error of the request itself).
    fn reply_status(&mut self, right: Option<ReplyRight>, code: u8) {
        self.reply(right, |e| e.data(&code));
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

/// Proof that a routine replied or deferred its reply; only [`Reply`]'s methods make one.
#[must_use = "a routine returns its `Replied`"]
#[derive(Debug)]
pub struct Replied(());

/// The pending reply of one request: a result of type `T` or an error `E`, sent now through
/// the server loop, or handed straight to a collocated caller's direct call.
#[must_use = "a routine must send or defer its reply"]
pub struct Reply<'a, T: Wire, E> {
    to: ReplyTo<'a, T, E>,
}

/// Where a [`Reply`] goes.
enum ReplyTo<'a, T, E> {
    /// A message to the reply right (if any), kept in the outbox until it goes.
    Message {
        right: Option<ReplyRight>,
        outbox: &'a mut Outbox,
    },
    /// The caller's slot: a direct call's ([`direct`](super::direct)), no message.
    Direct(&'a mut Option<Result<T, E>>),
}

impl<'a, T: Wire, E: Serialize> Reply<'a, T, E> {
    /// The reply to a request whose reply right is `right`, kept in `outbox`.
    pub fn new(right: Option<ReplyRight>, outbox: &'a mut Outbox) -> Self {
        Reply {
            to: ReplyTo::Message { right, outbox },
        }
    }

    /// The reply to a direct call ([`direct`](super::direct)): the result goes into `slot`
    /// as it is, for a plain-data `T` (anything else leaves the slot empty, as a deferred
    /// reply does: the caller cannot wait for either).
    pub fn direct(slot: &'a mut Option<Result<T, E>>) -> Self {
        Reply {
            to: ReplyTo::Direct(slot),
        }
    }

    /// Replies with `result`.
    pub fn send(self, result: Result<Give<'_, T>, E>) -> Replied {
        match self.to {
            ReplyTo::Message { right, outbox } => {
                outbox.reply(right, |encoder| encode_result::<T, E>(result, encoder))
            }
            ReplyTo::Direct(slot) => {
                *slot = match result {
                    Ok(value) => T::given(value).ok().map(Ok),
                    Err(error) => Some(Err(error)),
                }
            }
        }
        Replied(())
    }

    /// Replies with a result.
    pub fn ok(self, value: Give<'_, T>) -> Replied {
        self.send(Ok(value))
    }

    /// Replies with the routine's error.
    pub fn err(self, error: E) -> Replied {
        self.send(Err(error))
    }

    /// Replies later: the reply right moves into the returned [`Deferred`]. A direct call's
    /// reply has no right: its caller, which cannot wait, is told so at once, and the
    /// `Deferred` answers nobody.
    pub fn defer(self) -> (Deferred<T, E>, Replied) {
        let right = match self.to {
            ReplyTo::Message { right, .. } => right,
            ReplyTo::Direct(_) => None,
        };
        (
            Deferred {
                right,
                types: PhantomData,
            },
            Replied(()),
        )
    }
}

/// A reply kept for later (the reply token). Dropping it unused tells the client
/// [`RemoteError::NoReply`](super::RemoteError::NoReply).
#[must_use = "dropping a deferred reply fails the client's call"]
pub struct Deferred<T: Wire, E> {
    right: Option<ReplyRight>,
    types: PhantomData<fn(T, E)>,
}

impl<T: Wire, E: Serialize> Deferred<T, E> {
    /// Sends the reply now. An error means the client could not be reached (it died).
    pub fn send(self, result: Result<Give<'_, T>, E>) -> Result<(), IpcError> {
        let Some(right) = self.right else {
            return Ok(());
        };
        let mut body = [0u8; MAX_BODY];
        let mut encoder = Encoder::new(&mut body);
        if encode_result::<T, E>(result, &mut encoder).is_err() {
            encoder = Encoder::new(&mut body);
            encoder.data(&status::REPLY_FAILED)?;
        }
        right.send_now(&encoder)
    }
}

impl<T: Wire, E> core::fmt::Debug for Deferred<T, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Deferred")
            .field("right", &self.right)
            .finish()
    }
}

fn encode_result<T: Wire, E: Serialize>(
    result: Result<Give<'_, T>, E>,
    encoder: &mut Encoder<'_>,
) -> Result<(), MessageError> {
    match result {
        Ok(value) => {
            encoder.data(&status::OK)?;
            T::encode(value, encoder)
        }
        Err(error) => {
            encoder.data(&status::ERROR)?;
            encoder.data(&error)
        }
    }
}

/// What a dispatch function did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// Handled (replied, deferred, or answered with an error); its rights are taken care of.
    Handled,
    /// Not this dispatcher's message: nothing was touched, the next may try.
    NotMine,
    /// Handled, and the server loop should end (after sending any reply).
    Stop,
}

/// Something a server loop can hand requests to: a generated subsystem's `Dispatcher`, a
/// server's own type (to see notifications first, say), or a pair of them, tried in order.
pub trait Dispatch {
    /// Handles `request`, putting a reply to send now in `outbox`. A message it handles is
    /// its own, rights included; one it does not ([`Dispatched::NotMine`]) it leaves alone.
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched;

    /// Lends the typed server behind `port` (a receive right of the server's) to `visit`,
    /// for a collocated caller's direct call ([`direct`](super::direct)): each interface
    /// module's `local(server, visit)` does it for one server. `false` (the default) when
    /// there is none, or `visit` did not take it: the call then goes as a message.
    fn local(&mut self, port: Name, visit: &mut direct::Visit<'_>) -> bool {
        let _ = (port, visit);
        false
    }
}

impl<A: Dispatch, B: Dispatch> Dispatch for (A, B) {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        match self.0.dispatch(request, outbox) {
            Dispatched::NotMine => self.1.dispatch(request, outbox),
            done => done,
        }
    }

    fn local(&mut self, port: Name, visit: &mut direct::Visit<'_>) -> bool {
        self.0.local(port, visit) || self.1.local(port, visit)
    }
}

impl<D: Dispatch + ?Sized> Dispatch for &mut D {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        (**self).dispatch(request, outbox)
    }

    fn local(&mut self, port: Name, visit: &mut direct::Visit<'_>) -> bool {
        (**self).local(port, visit)
    }
}

/// Dispatches `request` to one routine (what generated dispatch functions do per id):
/// decodes the arguments with `decode`, then calls `invoke` with them and the reply. A
/// request that does not decode is answered [`RemoteError::BadRequest`](super::RemoteError)
/// and its rights are released.
pub fn dispatch_routine<T: Wire, E: Serialize, A>(
    request: &Received<'_>,
    outbox: &mut Outbox,
    decode: impl FnOnce(&mut Decoder<'_>) -> Result<A, Malformed>,
    invoke: impl FnOnce(A, Reply<'_, T, E>) -> Replied,
) -> Dispatched {
    let right = ReplyRight::take(request);
    let arguments = {
        let mut decoder = Decoder::new(request);
        decode(&mut decoder).and_then(|arguments| decoder.finish().map(|()| arguments))
    };
    match arguments {
        Ok(arguments) => {
            let Replied(()) = invoke(arguments, Reply::new(right, outbox));
        }
        Err(Malformed) => outbox.reply_status(right, status::BAD_REQUEST),
    }
    Dispatched::Handled
}

/// Answers `request` [`RemoteError::UnknownRoutine`](super::RemoteError) and releases its
/// rights: for ids nobody handles.
pub fn reject_unknown(request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
    let right = ReplyRight::take(request);
    drop(Decoder::new(request));
    outbox.reply_status(right, status::UNKNOWN_ROUTINE);
    Dispatched::Handled
}

/// A port or port set a server loop receives from.
pub trait ReceiveFrom {
    /// Its name in the caller's space.
    fn receive_name(&self) -> Name;
}

impl ReceiveFrom for rights::ReceiveRight {
    fn receive_name(&self) -> Name {
        self.name()
    }
}

impl ReceiveFrom for Name {
    fn receive_name(&self) -> Name {
        *self
    }
}

impl ReceiveFrom for rights::PortSet {
    fn receive_name(&self) -> Name {
        self.name()
    }
}

/// The server loop: receives from `from`, hands each message to `dispatch` and sends its
/// reply with the next receive (one `mach_msg` for both). Messages nobody handles are
/// answered [`RemoteError::UnknownRoutine`](super::RemoteError). Returns when `dispatch`
/// says [`Dispatched::Stop`], or with the error when receiving fails (the port or set is
/// gone).
#[cfg(target_os = "none")]
pub fn serve<D: Dispatch + ?Sized>(
    from: &impl ReceiveFrom,
    dispatch: &mut D,
) -> Result<(), IpcError> {
    use crate::ipc::message::MessageBuffer;
    use alloc::boxed::Box;

    let mut buffer = Box::new(MessageBuffer::new());
    let mut outbox = Box::new(Outbox::new());
    serve_until(from.receive_name(), dispatch, &mut buffer, &mut outbox)
}

/// What serving a message left (a collocated server's, `hosted::Hosted::dispatch_delivered`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// Served; more will come.
    Idle,
    /// The dispatcher said [`Dispatched::Stop`].
    Stopped,
}

/// The server loop on port or set `from`.
#[cfg(target_os = "none")]
fn serve_until<D: Dispatch + ?Sized>(
    from: Name,
    dispatch: &mut D,
    buffer: &mut crate::ipc::message::MessageBuffer,
    outbox: &mut Outbox,
) -> Result<(), IpcError> {
    use crate::abi::message::{MessageHeader, MsgReturn, HEADER_SIZE};
    use crate::ipc::transport::{exchange_raw, Arrived};

    loop {
        let reply = outbox.take_reply();
        let reply_right = reply.as_ref().map(|message| message.destination.0);
        let arrived = match exchange_raw(reply.as_ref(), 0, from, buffer, 0) {
            Ok(arrived) => arrived,
            // Some right could not be put in our space (it was destroyed); the message is
            // in the buffer all the same, and a request missing a right decodes as malformed.
            Err(IpcError::Msg(MsgReturn::RcvBodyError)) => {
                let header = buffer.0[..HEADER_SIZE].try_into().expect("header size");
                Arrived::Buffer(MessageHeader::from_bytes(header).size as usize)
            }
            // The reply could not be sent (its client is gone): nobody waits for it.
            Err(IpcError::Msg(code)) if is_send_error(code) => {
                if let Some(name) = reply_right {
                    release_after_failed_send(name);
                }
                continue;
            }
            Err(error) => return Err(error),
        };
        let Ok(received) = arrived.read(buffer) else {
            continue;
        };
        match dispatch.dispatch(&received, outbox) {
            Dispatched::Handled => {}
            Dispatched::NotMine => {
                reject_unknown(&received, outbox);
            }
            Dispatched::Stop => {
                if let Some(reply) = outbox.take_reply() {
                    let _ = rights::send_now(&reply);
                }
                return Ok(());
            }
        }
    }
}

/// Whether `code` is a failure of the send half of a `mach_msg` (the receive did not happen).
#[cfg(target_os = "none")]
fn is_send_error(code: crate::abi::message::MsgReturn) -> bool {
    use crate::abi::message::MsgReturn::*;
    matches!(
        code,
        SendInvalidData
            | SendInvalidDest
            | SendTimedOut
            | SendMsgTooSmall
            | SendInvalidReply
            | SendInvalidRight
            | SendNoBuffer
            | SendTooLarge
            | SendInvalidType
            | SendInvalidHeader
    )
}

/// Gives back the reply right `name` of a reply whose send failed. The kernel checks every
/// right before it moves any, so a send that fails mostly leaves the right (or the dead name
/// it became) with us; only a send that waited for room and then found the port dead used it
/// up. Then the name is free, and giving it back is a harmless `InvalidName`, because a task
/// with one thread receives no new right (so no name is reused) in between. A multi-threaded
/// server would need the kernel to say which case it was.
#[cfg(target_os = "none")]
fn release_after_failed_send(name: Name) {
    rights::release(name, Some(ReceivedRight::SendOnce));
}

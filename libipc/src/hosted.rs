//! Servers the kernel hosts (`servers/boot.toml`'s `collocated = true`): what the kernel
//! needs of one, and how a server crate offers itself.
//!
//! A collocated server is the same code as its task build: it allocates its ports, keeps
//! rights in its own IPC space and answers through [`Reply`](crate::interface::Reply); only
//! `sys` differs (a call into the kernel instead of the `syscall` instruction). What it
//! cannot do is wait: the kernel takes the messages queued for it and hands each over
//! ([`Hosted::dispatch_delivered`]) on the thread of whoever sent it, after the send and
//! before that thread's receive, or serves a short call at once
//! ([`Hosted::call_in_registers`]); so a routine replies at once or keeps its reply
//! ([`Reply::defer`](crate::interface::Reply::defer)) and answers later, when another message
//! gives it the chance.
//!
//! A server crate offers a [`Start`] function: it makes the server's ports and returns the
//! server and the send right its starter registers (the task build registers that right
//! itself, through the name service, which a collocated start cannot wait for).

use alloc::boxed::Box;

use crate::abi::message::Disposition;
use crate::abi::KernReturn;
use crate::interface::{reject_unknown, send_now};
use crate::interface::{Dispatch, Dispatched, Outbox, Served};
use crate::interface::{ReceiveRight, SendRight};
use crate::ipc::{MessageBuffer, Name, Received};
use crate::rt::StartArgs;

/// What the kernel calls a collocated server through (`Send`: the kernel keeps it in its
/// state, behind the kernel lock).
pub trait Hosted: Send {
    /// Serves one short request handed over in registers (the kernel's short circuit for a
    /// call to an idle server: no message queued, none copied): `words` and `size` as a
    /// receive in registers gives them (`abi::message::registers`), the reply right already
    /// in the server's space.
    fn call_in_registers(&mut self, words: [u64; 4], size: usize) -> Answer;

    /// Where the kernel puts a message it takes for the server (a receive's buffer and its
    /// size), and the port or port set it takes them from, in the server's space.
    fn inbox(&mut self) -> (*mut u8, usize, Name);

    /// Serves the message the kernel put in the inbox (`size` bytes, as a receive leaves
    /// it; `damaged`: some right could not be put in the server's space, as a receive's
    /// `RcvBodyError`), sending its reply (if any) now.
    fn dispatch_delivered(&mut self, size: usize, damaged: bool) -> Served;
}

/// What a short-circuited call ([`Hosted::call_in_registers`]) left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The reply, short and simple, in registers as a send would put it (its destination
    /// the request's reply right, moved): the kernel hands it to the caller itself.
    Reply([u64; 4], usize),
    /// No reply here: it was sent through the kernel (it carried rights, or was long), or
    /// kept for later, or there is none.
    Elsewhere,
    /// As `Elsewhere`, and the server is done (the kernel ends its task).
    Stopped,
}

/// A [`Dispatch`] served from one port or port set, with its message buffer and outbox:
/// the [`Hosted`] most servers are.
pub struct Host<D: Dispatch> {
    from: Name,
    dispatch: D,
    buffer: Box<MessageBuffer>,
    outbox: Box<Outbox>,
}

impl<D: Dispatch> Host<D> {
    /// `dispatch`, serving what arrives on `from` (a receive right or port set of the
    /// server's).
    pub fn new(from: Name, dispatch: D) -> Self {
        Host {
            from,
            dispatch,
            buffer: Box::new(MessageBuffer::new()),
            outbox: Box::new(Outbox::new()),
        }
    }
}

impl<D: Dispatch + Send> Hosted for Host<D> {
    fn inbox(&mut self) -> (*mut u8, usize, Name) {
        (self.buffer.0.as_mut_ptr(), self.buffer.0.len(), self.from)
    }

    fn dispatch_delivered(&mut self, size: usize, damaged: bool) -> Served {
        // A damaged message decodes as malformed where a right is missing: served as the
        // server loop serves one.
        let _ = damaged;
        let Ok(request) = Received::parse(&self.buffer.0, size) else {
            return Served::Idle;
        };
        let dispatched = match self.dispatch.dispatch(&request, &mut self.outbox) {
            Dispatched::NotMine => reject_unknown(&request, &mut self.outbox),
            dispatched => dispatched,
        };
        if let Some(reply) = self.outbox.take_reply() {
            // The client may be gone: nobody waits for the reply then.
            let _ = send_now(&reply);
        }
        match dispatched {
            Dispatched::Stop => Served::Stopped,
            _ => Served::Idle,
        }
    }

    fn call_in_registers(&mut self, words: [u64; 4], size: usize) -> Answer {
        let Ok(request) = Received::from_registers(&mut self.buffer.0, &words, size) else {
            return Answer::Elsewhere;
        };
        let dispatched = match self.dispatch.dispatch(&request, &mut self.outbox) {
            Dispatched::NotMine => reject_unknown(&request, &mut self.outbox),
            dispatched => dispatched,
        };
        // A reply given now goes back in registers when it can; else through the kernel
        // (the client may be gone: nobody waits for the reply then).
        let reply_right = request.reply().map(|(name, _)| name);
        let Some(reply) = self.outbox.take_reply() else {
            return match dispatched {
                Dispatched::Stop => Answer::Stopped,
                _ => Answer::Elsewhere,
            };
        };
        match reply.in_registers() {
            Some((words, size))
                if dispatched != Dispatched::Stop
                    && Some(reply.destination.0) == reply_right
                    && reply.destination.1 == Disposition::MoveSendOnce =>
            {
                Answer::Reply(words, size)
            }
            _ => {
                let _ = send_now(&reply);
                match dispatched {
                    Dispatched::Stop => Answer::Stopped,
                    _ => Answer::Elsewhere,
                }
            }
        }
    }
}

/// A collocated server just started: itself, and the send right (a name in its own space)
/// that the kernel moves to its starter.
pub struct Started {
    pub server: Box<dyn Hosted>,
    pub service: Name,
}

impl Started {
    /// `dispatch`, serving from `from` (its port or port set); `port` is its service port,
    /// kept for good (it goes with the server's task), and `service` the send right to it
    /// for the starter.
    pub fn new<D: Dispatch + Send + 'static>(
        from: Name,
        dispatch: D,
        port: ReceiveRight,
        service: SendRight,
    ) -> Started {
        let started = Started {
            server: Box::new(Host::new(from, dispatch)),
            service: service.name(),
        };
        core::mem::forget(port);
        core::mem::forget(service);
        started
    }
}

/// Registers `service` under `name` with the name service whose send right is the first
/// start argument in `args` (if any), as a program registers itself, but without waiting for
/// the answer, which a collocated start cannot (it comes later, and goes nowhere). The right
/// to the name service is kept for good, as a program keeps it until it ends (bootstrap
/// reads a child's end from that right going).
pub fn register(args: &StartArgs, name: &str, service: &SendRight) {
    if let Some(mut names) = crate::names::Client::from_start_args(args) {
        let _ = names.register(name.into(), service);
        core::mem::forget(names);
    }
}

/// How a server crate starts collocated: from the arguments its starter gave (the first, as
/// for a task, a send right to the name service, or 0).
pub type Start = fn(StartArgs) -> Result<Started, KernReturn>;

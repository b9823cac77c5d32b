//! Servers the kernel hosts (`servers/boot.toml`'s `collocated = true`): what the kernel
//! needs of one, and how a server crate offers itself.
//!
//! A collocated server is the same code as its task build: it allocates its ports, keeps
//! rights in its own IPC space and answers through [`Reply`]; only
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
//!
//! A pager does better with [`Started::pager`]: its dispatch also implements
//! [`DirectPager`] (its objects' `memory_object` servers, and its `default_pager` server, by
//! port name), and the kernel then makes its memory-object calls as calls of those routines
//! ([`Hosted::pager_call`] with a [`PagerCall`]): no message is built or parsed.

use alloc::boxed::Box;

use crate::abi::message::Disposition;
use crate::abi::KernReturn;
use crate::interface::direct::Visit;
use crate::interface::{reject_unknown, reply_id, send_now};
use crate::interface::{Dispatch, Dispatched, Outbox, Reply, ReplyRight, Served};
use crate::interface::{Pages, ReceiveRight, SendRight};
use crate::ipc::{MessageBuffer, Name, Received};
use crate::pager::{default_pager, memory_object, program_pager};
use crate::rt::StartArgs;
use alloc::string::String;

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

    /// Lends the typed server behind `port` (the server's name for it) to `visit`, for a
    /// direct call from another collocated server ([`direct`](crate::interface::direct)):
    /// `false` (the default) when there is none here, or `visit` did not take it.
    fn direct(&mut self, port: Name, visit: &mut Visit<'_>) -> bool {
        let _ = (port, visit);
        false
    }

    /// Whether the kernel makes its memory-object calls on this server as calls of its
    /// routines ([`Hosted::pager_call`]) rather than as messages: a pager built with
    /// [`Started::pager`].
    fn takes_pager_calls(&self) -> bool {
        false
    }

    /// Serves the kernel's memory-object call `call`, made directly (no message): the
    /// rights it carries and `reply`, the send-once right its answer goes to, are already in
    /// the server's space. The answer goes to `reply` now, through the kernel, as a
    /// message's would, or is kept for later. A server that takes no such calls gives the
    /// rights back (the kernel then takes the call as unanswered).
    fn pager_call(&mut self, call: PagerCall, reply: Name) -> Served {
        call.release();
        drop(crate::interface::SendOnceRight::from_raw(reply));
        Served::Idle
    }
}

/// A memory-object call the kernel makes on a collocated pager as a call of the pager's
/// routine: no message is built, queued or received. Names are the pager's: the rights
/// are in its space, as a received message would have put them there.
#[derive(Debug, PartialEq, Eq)]
pub enum PagerCall {
    /// `memory_object.init` on the object whose port is `object`; `control` a send right.
    Init {
        object: Name,
        control: Name,
        size: u64,
    },
    /// `memory_object.data_request` on `object`.
    DataRequest {
        object: Name,
        offset: u64,
        length: u64,
        access: u32,
    },
    /// `memory_object.terminate` on `object`.
    Terminate { object: Name },
    /// `memory_object.data_return` on `object`: the pages are the pager's now, at
    /// `data.0` in its map, `data.1` bytes.
    DataReturn {
        object: Name,
        offset: u64,
        data: (u64, u64),
        dirty: bool,
    },
    /// `default_pager.create` on port `pager`: `object` is the receive right of the new
    /// object's port, `control` a send right to its control port.
    Create {
        pager: Name,
        object: Name,
        control: Name,
        size: u64,
    },
    /// `program_pager.create` on port `pager` of boot-archive file `name`, `size` bytes,
    /// its pages at `file.0` in the pager's map (`file.1` bytes); the rights as for
    /// `Create`.
    CreateProgram {
        pager: Name,
        object: Name,
        control: Name,
        name: String,
        size: u64,
        file: (u64, u64),
    },
}

impl PagerCall {
    /// The routine's message id (its reply's is 100 more).
    pub fn id(&self) -> u32 {
        use crate::pager::ids;
        match self {
            PagerCall::Init { .. } => ids::INIT,
            PagerCall::DataRequest { .. } => ids::DATA_REQUEST,
            PagerCall::Terminate { .. } => ids::TERMINATE,
            PagerCall::DataReturn { .. } => ids::DATA_RETURN,
            PagerCall::Create { .. } => ids::CREATE,
            PagerCall::CreateProgram { .. } => ids::CREATE_PROGRAM,
        }
    }

    /// Gives back what the call carries (nobody serves it).
    fn release(self) {
        use crate::interface::{ReceiveRight, SendRight};
        match self {
            PagerCall::Init { control, .. } => drop(SendRight::from_raw(control)),
            PagerCall::DataRequest { .. } | PagerCall::Terminate { .. } => {}
            PagerCall::DataReturn { data, .. } => {
                // SAFETY: the kernel put these pages in our map for this call; nothing else
                // refers to them.
                drop(unsafe { crate::interface::Pages::from_raw(data.0, data.1) })
            }
            PagerCall::Create {
                object, control, ..
            } => {
                drop(ReceiveRight::from_raw(object));
                drop(SendRight::from_raw(control));
            }
            PagerCall::CreateProgram {
                object,
                control,
                file,
                ..
            } => {
                drop(ReceiveRight::from_raw(object));
                drop(SendRight::from_raw(control));
                // SAFETY: as for `DataReturn`: the kernel put these pages in our map for
                // this call.
                drop(unsafe { crate::interface::Pages::from_raw(file.0, file.1) })
            }
        }
    }
}

/// A pager the kernel can call directly when it is collocated ([`Started::pager`]): how its
/// objects' `memory_object` servers and its `default_pager` server are reached without a
/// message. Each runs its routine exactly as dispatching a message that arrived on that port
/// would (the pager's `Dispatch` should use these too, so that both ways are one code).
pub trait DirectPager {
    /// Runs `serve` on the `memory_object` server of the object whose port is `object` (its
    /// name in the pager's space); `None` when that is none of the pager's objects.
    fn with_object<R>(
        &mut self,
        object: Name,
        serve: impl FnOnce(&mut dyn memory_object::Server) -> R,
    ) -> Option<R>;

    /// Runs `serve` on the `default_pager` server on port `pager`; `None` (the default)
    /// when that is not the pager's port.
    fn with_default_pager<R>(
        &mut self,
        pager: Name,
        serve: impl FnOnce(&mut dyn default_pager::Server) -> R,
    ) -> Option<R> {
        let _ = (pager, serve);
        None
    }

    /// Runs `serve` on the `program_pager` server on port `pager`; `None` (the default)
    /// when that is not the pager's port.
    fn with_program_pager<R>(
        &mut self,
        pager: Name,
        serve: impl FnOnce(&mut dyn program_pager::Server) -> R,
    ) -> Option<R> {
        let _ = (pager, serve);
        None
    }
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

    fn direct(&mut self, port: Name, visit: &mut Visit<'_>) -> bool {
        self.dispatch.local(port, visit)
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

/// A [`Host`] whose dispatch is a [`DirectPager`]: the kernel's memory-object calls to it
/// are calls of its routines ([`Hosted::pager_call`]), other messages are served as
/// [`Host`] serves them.
pub struct PagerHost<D: Dispatch + DirectPager> {
    host: Host<D>,
}

impl<D: Dispatch + DirectPager + Send> Hosted for PagerHost<D> {
    fn call_in_registers(&mut self, words: [u64; 4], size: usize) -> Answer {
        self.host.call_in_registers(words, size)
    }

    fn inbox(&mut self) -> (*mut u8, usize, Name) {
        self.host.inbox()
    }

    fn dispatch_delivered(&mut self, size: usize, damaged: bool) -> Served {
        self.host.dispatch_delivered(size, damaged)
    }

    fn direct(&mut self, port: Name, visit: &mut Visit<'_>) -> bool {
        self.host.direct(port, visit)
    }

    fn takes_pager_calls(&self) -> bool {
        true
    }

    fn pager_call(&mut self, call: PagerCall, reply: Name) -> Served {
        let Host {
            dispatch, outbox, ..
        } = &mut self.host;
        let right = Some(ReplyRight::send_once(reply, reply_id(call.id())));
        let outbox = &mut **outbox;
        // (When the object or port is none of the pager's, the closure is dropped uncalled
        // and the rights it holds are given back: the reply right too, so the kernel sees
        // the call unanswered.)
        match call {
            PagerCall::Init {
                object,
                control,
                size,
            } => {
                let control = SendRight::from_raw(control);
                dispatch.with_object(object, |s| {
                    let _ = s.init(control, size, Reply::new(right, outbox));
                })
            }
            PagerCall::DataRequest {
                object,
                offset,
                length,
                access,
            } => dispatch.with_object(object, |s| {
                let _ = s.data_request(offset, length, access, Reply::new(right, outbox));
            }),
            PagerCall::Terminate { object } => dispatch.with_object(object, |s| {
                let _ = s.terminate(Reply::new(right, outbox));
            }),
            PagerCall::DataReturn {
                object,
                offset,
                data,
                dirty,
            } => {
                // SAFETY: the kernel put these pages in our map for this call; nothing else
                // refers to them.
                let data = unsafe { Pages::from_raw(data.0, data.1) };
                dispatch.with_object(object, |s| {
                    let _ = s.data_return(offset, data, dirty, Reply::new(right, outbox));
                })
            }
            PagerCall::Create {
                pager,
                object,
                control,
                size,
            } => {
                let (object, control) =
                    (ReceiveRight::from_raw(object), SendRight::from_raw(control));
                dispatch.with_default_pager(pager, |s| {
                    let _ = s.create(object, control, size, Reply::new(right, outbox));
                })
            }
            PagerCall::CreateProgram {
                pager,
                object,
                control,
                name,
                size,
                file,
            } => {
                let (object, control) =
                    (ReceiveRight::from_raw(object), SendRight::from_raw(control));
                // SAFETY: as for `DataReturn`.
                let file = unsafe { Pages::from_raw(file.0, file.1) };
                dispatch.with_program_pager(pager, |s| {
                    let reply = Reply::new(right, outbox);
                    let _ = s.create(object, control, name, size, file, reply);
                })
            }
        };
        if let Some(reply) = outbox.take_reply() {
            // The kernel's reply port takes every answer at once.
            let _ = send_now(&reply);
        }
        Served::Idle
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
        Started::keeping(Box::new(Host::new(from, dispatch)), port, service)
    }

    /// As [`Started::new`], for a pager the kernel calls directly ([`PagerHost`]).
    pub fn pager<D: Dispatch + DirectPager + Send + 'static>(
        from: Name,
        dispatch: D,
        port: ReceiveRight,
        service: SendRight,
    ) -> Started {
        let host = Host::new(from, dispatch);
        Started::keeping(Box::new(PagerHost { host }), port, service)
    }

    /// As [`Started::pager`], for a pager that holds its service port's receive right
    /// itself (a [`kit::Pager`](crate::pager::kit::Pager)): `service` is the send right
    /// to it for the starter.
    pub fn pager_holding_its_port<D: Dispatch + DirectPager + Send + 'static>(
        from: Name,
        dispatch: D,
        service: SendRight,
    ) -> Started {
        let host = Host::new(from, dispatch);
        Started::serving(Box::new(PagerHost { host }), service)
    }

    /// `server` started: its service port `port` kept for good (it goes with the server's
    /// task), `service` the send right for the starter.
    fn keeping(server: Box<dyn Hosted>, port: ReceiveRight, service: SendRight) -> Started {
        core::mem::forget(port);
        Started::serving(server, service)
    }

    /// `server` started, `service` the send right for the starter (kept for good: the
    /// kernel moves it by name).
    fn serving(server: Box<dyn Hosted>, service: SendRight) -> Started {
        let started = Started {
            server,
            service: service.name(),
        };
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

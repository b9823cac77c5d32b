//! Servers the kernel hosts (`servers/boot.toml`'s `collocated = true`): what the kernel
//! needs of one, and how a server crate offers itself.
//!
//! A collocated server is the same code as its task build: it allocates its ports, keeps
//! rights in its own IPC space and answers through [`Reply`](crate::interface::Reply); only
//! `sys` differs (a call into the kernel instead of the `syscall` instruction). What it
//! cannot do is wait: the kernel runs [`Hosted::serve_waiting`] on the thread of whoever
//! sent to its port, after the send and before that thread's receive, so a routine replies
//! at once or keeps its reply ([`Reply::defer`](crate::interface::Reply::defer)) and answers
//! later, when another message gives it the chance.
//!
//! A server crate offers a [`Start`] function: it makes the server's ports and returns the
//! server and the send right its starter registers (the task build registers that right
//! itself, through the name service, which a collocated start cannot wait for).

use alloc::boxed::Box;

use crate::abi::KernReturn;
use crate::interface::{serve_waiting, Dispatch, IpcError, Outbox, Served};
use crate::ipc::{MessageBuffer, Name};
use crate::rt::StartArgs;

/// What the kernel calls a collocated server through (`Send`: the kernel keeps it in its
/// state, behind the kernel lock).
pub trait Hosted: Send {
    /// Serves every message waiting for the server, without waiting for more. `Stopped`:
    /// the server is done (the kernel ends its task).
    fn serve_waiting(&mut self) -> Result<Served, IpcError>;
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
    fn serve_waiting(&mut self) -> Result<Served, IpcError> {
        serve_waiting(
            self.from,
            &mut self.dispatch,
            &mut self.buffer,
            &mut self.outbox,
        )
    }
}

/// A collocated server just started: itself, and the send right (a name in its own space)
/// that the kernel moves to its starter.
pub struct Started {
    pub server: Box<dyn Hosted>,
    pub service: Name,
}

/// How a server crate starts collocated: from the arguments its starter gave (the first, as
/// for a task, a send right to the name service, or 0).
pub type Start = fn(StartArgs) -> Result<Started, KernReturn>;

//! Direct calls between collocated servers: a routine of plain data (no rights, no memory)
//! called by a server the kernel hosts on another server it hosts is a call of the other
//! server's routine, typed, with no message built, queued or parsed (OSF MK6's short-circuited
//! RPC).
//!
//! A generated client method tries it first when its routine's arguments and result are all
//! plain ([`Wire::PLAIN`]) and its transport says where the call goes
//! ([`Transport::direct_port`](super::Transport::direct_port): a [`PortTransport`](super::PortTransport) does, in the
//! kernel's build). The kernel checks the caller's send right, finds the server that
//! receives on the port, and runs it as its own task (its identity, and a failure of its
//! own code ends it, not the caller); the server lends the typed server of the port
//! ([`Dispatch::local`](super::Dispatch::local), each interface module's `local`) and the
//! client calls the routine with a [`Reply`] that writes the result into the
//! client's slot. Anything else (a task server, a server running now, messages queued on
//! the port, a routine it does not serve this way) goes as a message, as before.
//!
//! A collocated caller never waits, so a routine that defers its reply answers a direct
//! call with "no reply yet" ([`MsgReturn::RcvTimedOut`], what its message call would get).

use core::any::Any;

use super::client::{RemoteError, TransportError};
use super::rights::IpcError;
use super::server::{Replied, Reply};
use super::wire::Wire;
use crate::abi::message::MsgReturn;
use crate::ipc::message::Name;

/// What the server is lent to: it takes the interface module's `Local` it expects
/// (`downcast_mut`) and calls the routine on it, `true`; `false` when it is not there.
pub type Visit<'a> = dyn FnMut(&mut dyn Any) -> bool + 'a;

/// What the kernel did with a direct call (`libipc_collocated_direct`'s result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Direct {
    /// The server's routine ran (the result is in the caller's slot, unless it deferred).
    Called = 0,
    /// Not taken: the call goes as a message (nothing happened).
    NotTaken = 1,
    /// The server's own code failed during the call: it is gone, as its task.
    ServerFailed = 2,
}

#[cfg(all(feature = "collocated", target_os = "none"))]
extern "Rust" {
    /// The kernel's entry for direct calls: the server receiving on `port` (a send right
    /// of the running server's), lent to `visit`.
    fn libipc_collocated_direct(port: Name, visit: &mut Visit<'_>) -> u32;
}

/// Asks the kernel to lend the server behind `port` to `visit` (see the module doc).
#[inline]
pub fn call(port: Name, visit: &mut Visit<'_>) -> Direct {
    #[cfg(all(feature = "collocated", target_os = "none"))]
    {
        // SAFETY: the kernel that links this server defines the entry with this signature.
        match unsafe { libipc_collocated_direct(port, visit) } {
            0 => Direct::Called,
            2 => Direct::ServerFailed,
            _ => Direct::NotTaken,
        }
    }
    #[cfg(all(test, not(target_os = "none")))]
    {
        tests::LENDER.with(|lender| match lender.borrow_mut().as_mut() {
            Some(lend) => lend(port, visit),
            None => Direct::NotTaken,
        })
    }
    #[cfg(not(any(test, all(feature = "collocated", target_os = "none"))))]
    {
        let _ = (port, visit);
        Direct::NotTaken
    }
}

/// On the host, tests stand in for the kernel.
#[cfg(all(test, not(target_os = "none")))]
pub(crate) mod tests {
    extern crate std;

    use alloc::boxed::Box;
    use core::cell::RefCell;

    use super::{Direct, Visit};
    use crate::ipc::message::Name;

    /// What the kernel does with a direct call.
    pub(crate) type Lender = Box<dyn FnMut(Name, &mut Visit<'_>) -> Direct>;

    std::thread_local! {
        /// The kernel's part of direct calls made on this thread, if a test set one.
        pub(crate) static LENDER: RefCell<Option<Lender>> = const { RefCell::new(None) };
    }
}

/// A generated client method's direct call: on the server behind `port` (if any), lent as an
/// `L` (its interface module's `Local`), runs `invoke` with `arguments` and a direct reply.
/// `Err(arguments)`, untouched, when the call was not taken (it goes as a message).
pub fn try_call<L: 'static, A, R: Wire, E: serde::Serialize>(
    port: Option<Name>,
    arguments: A,
    invoke: impl FnOnce(&mut L, A, Reply<'_, R, E>) -> Replied,
) -> Result<Result<R, RemoteError<E>>, A> {
    let Some(port) = port else {
        return Err(arguments);
    };
    let mut arguments = Some(arguments);
    let mut invoke = Some(invoke);
    let mut slot = None;
    let outcome = call(port, &mut |lent: &mut dyn Any| {
        let Some(local) = lent.downcast_mut::<L>() else {
            return false;
        };
        let (Some(arguments), Some(invoke)) = (arguments.take(), invoke.take()) else {
            return false;
        };
        let _ = invoke(local, arguments, Reply::direct(&mut slot));
        true
    });
    match outcome {
        Direct::Called => Ok(match slot {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(RemoteError::Server(error)),
            // Deferred (or not plain after all): the caller cannot wait for it.
            None => Err(RemoteError::Transport(TransportError::Ipc(IpcError::Msg(
                MsgReturn::RcvTimedOut,
            )))),
        }),
        // Its reply right goes with the server's task, as a message call's would.
        Direct::ServerFailed => Ok(Err(RemoteError::NoReply)),
        Direct::NotTaken => match arguments {
            Some(arguments) => Err(arguments),
            // (Taken only with the call made: not reached.)
            None => Ok(Err(RemoteError::BadRequest)),
        },
    }
}

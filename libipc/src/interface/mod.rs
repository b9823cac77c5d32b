//! Interfaces declared once: [`interface!`](crate::interface!) turns a subsystem's declaration
//! into stable message ids, a client stub, a server trait and its dispatch function.
//!
//! # On the wire
//!
//! A request has the routine's id; its body is the length of what follows (`u16`, little
//! endian), then the routine's data arguments, postcard-encoded one after another; each [`SendRight`] argument is a port descriptor
//! (`CopySend`) and each [`Pages`] argument an out-of-line region (moved), in order, after
//! the rights; the reply port is the client's. A reply has id + 100; its body (after the length)
//! is a status byte, then for success the result (encoded the same way), for the routine's error that error.
//! The other statuses say the server could not decode the request, has no such routine, or
//! could not encode its reply; they reach the client as a [`RemoteError`]. A server answers
//! every malformed or unknown request with such a status and never panics on one, and every
//! right that arrives is either handed to the routine or given back.
//!
//! # Replying now or later
//!
//! A routine gets a [`Reply`] and returns the [`Replied`] that [`Reply::send`] or
//! [`Reply::defer`] gives. A reply sent now waits in the server loop's [`Outbox`] and goes out
//! with the loop's next receive, in the same `mach_msg` (a reply that carries rights goes at
//! once, while the routine still holds them). A deferred reply is a [`Deferred`], kept as
//! long as the server likes and sent when the answer is known; dropped, it fails the client's
//! call with [`RemoteError::NoReply`].
//!
//! # The transport
//!
//! Generated code never calls `mach_msg` itself: clients go through a [`Transport`]
//! ([`PortTransport`] in user tasks), and servers through [`Outbox`] and [`serve`]. Their few
//! contacts with the machine (releasing a right, sending a reply now) are in one file, which
//! on the host records what would have happened instead: that is how the generated code is
//! unit-tested, and where a collocated (in-kernel) transport would plug in.

mod client;
pub mod direct;
mod macros;
mod pages;
mod rights;
mod server;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_props;

pub use client::{decode_reply, PortTransport, RemoteError, Stub, Transport, TransportError};
pub use pages::Pages;
#[cfg(target_os = "none")]
pub(crate) use rights::send_now;
#[cfg(not(target_os = "none"))]
pub use rights::{host_log, Event};
pub use rights::{IpcError, PortSet, ReceiveRight, SendOnceRight, SendRight, DEAD_NAME};
#[cfg(target_os = "none")]
pub use server::serve;
pub use server::{
    dispatch_routine, reject_unknown, Deferred, Dispatch, Dispatched, Outbox, ReceiveFrom, Replied,
    Reply, ReplyRight, Served,
};
pub use wire::{
    reply_id, status, values, Decoder, Encoder, Give, Malformed, NoError, Wire, LENGTH_PREFIX,
    MAX_BODY, MAX_REGIONS, MAX_RIGHTS,
};

/// Names in scope inside every generated subsystem module, for the types of declarations.
pub mod prelude {
    pub use super::{Pages, ReceiveRight, SendRight};
    pub use alloc::boxed::Box;
    pub use alloc::string::String;
    pub use alloc::vec::Vec;
}

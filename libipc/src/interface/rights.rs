//! The one seam between generated interfaces and the machine: port rights, the `mach_msg`
//! error type, releasing a right and sending a reply.
//!
//! In the guest these are [`crate::ipc`]'s own types and calls. On the host (unit tests, and the
//! empty host builds of programs) there is no kernel: the rights are plain names whose release
//! and sends are recorded for tests ([`host_log`]), so the generated code builds and is tested
//! there unchanged. A collocated (in-kernel) transport would be a third implementation of this
//! file.

use crate::abi::message::{Disposition, ReceivedRight};
use crate::ipc::message::{Name, OutMessage};

#[cfg(target_os = "none")]
pub use crate::ipc::port::{PortSet, ReceiveRight, SendOnceRight, SendRight};
#[cfg(target_os = "none")]
pub use crate::ipc::transport::IpcError;

#[cfg(not(target_os = "none"))]
pub use host::{IpcError, PortSet, ReceiveRight, SendOnceRight, SendRight};

/// The name a received right has when its port died on the way (Mach's `MACH_PORT_DEAD`): it
/// is not in the receiver's space.
pub const DEAD_NAME: Name = !0;

/// Gives back a right that arrived in a message and that nobody took: a send or send-once
/// right loses its reference (a send-once right then notifies its port), a receive right
/// destroys its port. Names 0 and [`DEAD_NAME`] hold nothing.
pub(crate) fn release(name: Name, kind: Option<ReceivedRight>) {
    if name == 0 || name == DEAD_NAME {
        return;
    }
    #[cfg(target_os = "none")]
    {
        // Errors mean the name holds nothing any more: there is nothing left to give back.
        let _ = match kind {
            Some(ReceivedRight::Receive) => crate::sys::port_destroy(name),
            _ => crate::sys::port_deallocate(name),
        };
    }
    #[cfg(not(target_os = "none"))]
    host::record(Event::Released(name, kind));
}

/// Gives back an out-of-line region that arrived in a message and that nobody took (its
/// pages are unmapped). A region that could not be received (address 0) holds nothing.
pub(crate) fn release_memory(address: u64, size: u32) {
    if address == 0 || size == 0 {
        return;
    }
    #[cfg(target_os = "none")]
    {
        // SAFETY: the region arrived in a message this code decoded and nothing else
        // refers to it; an error means it is gone already.
        let _ = unsafe { crate::sys::vm_deallocate(address, u64::from(size)) };
    }
    #[cfg(not(target_os = "none"))]
    host::record(Event::Unmapped(address, size));
}

/// Sends `message` now (a reply through a send-once right, which cannot wait for room).
pub(crate) fn send_now(message: &OutMessage<'_>) -> Result<(), IpcError> {
    #[cfg(target_os = "none")]
    {
        crate::ipc::transport::send_message(message, None)
    }
    #[cfg(not(target_os = "none"))]
    {
        let mut buffer = crate::ipc::message::MessageBuffer::new();
        let size = message.encode(&mut buffer.0).map_err(IpcError::Message)?;
        host::record(Event::Sent(buffer.0[..size].to_vec()));
        Ok(())
    }
}

/// The disposition that moves a reply right of kind `kind` into the reply's header.
pub(crate) fn reply_disposition(kind: ReceivedRight) -> Option<Disposition> {
    match kind {
        ReceivedRight::SendOnce => Some(Disposition::MoveSendOnce),
        ReceivedRight::Send => Some(Disposition::MoveSend),
        ReceivedRight::Receive => None,
    }
}

#[cfg(not(target_os = "none"))]
pub use host::{host_log, Event};

/// Host stand-ins: the same names and methods as the guest's, without a kernel behind them.
#[cfg(not(target_os = "none"))]
mod host {
    use super::Name;
    use crate::abi::message::{MsgReturn, ReceivedRight};
    use crate::ipc::message::MessageError;
    use alloc::vec::Vec;
    #[cfg(test)]
    extern crate std;

    /// Why a send or receive failed (the guest's `ipc::IpcError`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum IpcError {
        /// The kernel's answer.
        Msg(MsgReturn),
        /// A code this library does not know.
        Unknown(u64),
        /// The message could not be built or read.
        Message(MessageError),
    }

    impl From<MessageError> for IpcError {
        fn from(e: MessageError) -> Self {
            IpcError::Message(e)
        }
    }

    macro_rules! stand_in {
        ($(#[$doc:meta])* $t:ident, $kind:expr) => {
            $(#[$doc])*
            #[derive(Debug, PartialEq, Eq)]
            pub struct $t(Name);

            impl $t {
                /// Takes ownership of the right under `name`.
                pub fn from_raw(name: Name) -> Self {
                    $t(name)
                }

                pub fn name(&self) -> Name {
                    self.0
                }

                /// Gives up ownership without releasing the right.
                pub fn into_raw(self) -> Name {
                    let name = self.0;
                    core::mem::forget(self);
                    name
                }
            }

            impl Drop for $t {
                fn drop(&mut self) {
                    record(Event::Released(self.0, $kind));
                }
            }
        };
    }

    stand_in!(
        /// A send right (host stand-in).
        SendRight,
        Some(ReceivedRight::Send)
    );
    stand_in!(
        /// A send-once right (host stand-in).
        SendOnceRight,
        Some(ReceivedRight::SendOnce)
    );
    stand_in!(
        /// A receive right (host stand-in).
        ReceiveRight,
        Some(ReceivedRight::Receive)
    );
    stand_in!(
        /// A port set (host stand-in).
        PortSet,
        None
    );

    /// What the host stand-ins did, for tests to check.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Event {
        /// A right was given back (dropped, or released unused from a message).
        Released(Name, Option<ReceivedRight>),
        /// A message was sent at once: its encoded bytes.
        Sent(Vec<u8>),
        /// An out-of-line region was unmapped (released unused from a message, or a
        /// [`Pages`](crate::interface::Pages) dropped): address and size.
        Unmapped(u64, u32),
    }

    #[cfg(test)]
    std::thread_local! {
        static LOG: core::cell::RefCell<Vec<Event>> = const { core::cell::RefCell::new(Vec::new()) };
    }

    pub(super) fn record(event: Event) {
        #[cfg(test)]
        LOG.with(|log| log.borrow_mut().push(event));
        #[cfg(not(test))]
        drop(event);
    }

    /// Takes what the stand-ins recorded on this thread since the last call (always empty
    /// outside tests).
    pub fn host_log() -> Vec<Event> {
        #[cfg(test)]
        return LOG.with(|log| log.take());
        #[cfg(not(test))]
        Vec::new()
    }
}

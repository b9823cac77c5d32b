//! Messages inside the kernel: the bytes as sent and the port rights they carry.
//!
//! A message's rights are owned by the message while it is queued ("in transit"); delivering
//! it moves them into the receiver's space, destroying it releases them.

use super::port::PortId;
use crate::base::TaskId;
use crate::vm::address_space::MapCopy;
use alloc::vec::Vec;
use libipc::abi::message::ReceivedRight;

/// A port right held by a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarriedRight {
    Receive(PortId),
    Send(PortId),
    SendOnce(PortId),
}

impl CarriedRight {
    pub fn port(self) -> PortId {
        match self {
            CarriedRight::Receive(p) | CarriedRight::Send(p) | CarriedRight::SendOnce(p) => p,
        }
    }

    pub fn received(self) -> ReceivedRight {
        match self {
            CarriedRight::Receive(_) => ReceivedRight::Receive,
            CarriedRight::Send(_) => ReceivedRight::Send,
            CarriedRight::SendOnce(_) => ReceivedRight::SendOnce,
        }
    }
}

/// A queued message. `body` is everything after the header as the sender wrote it
/// (descriptor count and descriptors if complex, then inline bytes); `rights[i]` is the right
/// of the i-th port descriptor, whose name field is rewritten on delivery.
pub struct KMessage {
    pub id: u32,
    pub complex: bool,
    /// The reply right (the header's local port when sent, its remote port when received).
    pub reply: Option<CarriedRight>,
    pub rights: Vec<Option<CarriedRight>>,
    /// `memory[i]`: the out-of-line memory of the i-th descriptor (for memory descriptors).
    pub memory: Vec<Option<MapCopy>>,
    pub body: Vec<u8>,
    /// The right the sender sent with: a send right is released when the message is
    /// received, a send-once right is used up by it.
    pub destination: Option<CarriedRight>,
    /// The task whose quota the message's kernel memory is charged to while it waits in a
    /// queue, and how many bytes (`None`: nobody's, a kernel message or one not queued).
    pub charge: Option<(TaskId, u32)>,
}

impl KMessage {
    /// Bytes of the message as the receiver will see it, header included.
    pub fn size(&self) -> usize {
        libipc::abi::message::HEADER_SIZE + self.body.len()
    }

    /// The kernel heap a queued message with `body` bytes and `descriptors` descriptors
    /// takes (what its sender is charged).
    pub fn queued_bytes(body: usize, descriptors: usize) -> u32 {
        let slot =
            core::mem::size_of::<Option<CarriedRight>>() + core::mem::size_of::<Option<MapCopy>>();
        (core::mem::size_of::<KMessage>() + body + descriptors * slot) as u32
    }
}

/// A message on its way out to a receiver: its rights (owned, taken out as they are
/// delivered) and its bytes, borrowed from a queued [`KMessage`] or from the sender's staging
/// buffer, so a message handed straight to a waiting receiver is never allocated.
pub struct Parts<'a> {
    pub id: u32,
    pub complex: bool,
    pub reply: Option<CarriedRight>,
    pub rights: &'a mut [Option<CarriedRight>],
    pub memory: &'a mut [Option<MapCopy>],
    pub body: &'a mut [u8],
    pub destination: Option<CarriedRight>,
}

impl Parts<'_> {
    pub fn size(&self) -> usize {
        libipc::abi::message::HEADER_SIZE + self.body.len()
    }
}

impl KMessage {
    /// The message's parts for delivery; its rights move into them.
    pub fn parts(&mut self) -> Parts<'_> {
        Parts {
            id: self.id,
            complex: self.complex,
            reply: self.reply.take(),
            rights: &mut self.rights,
            memory: &mut self.memory,
            body: &mut self.body,
            destination: self.destination.take(),
        }
    }
}

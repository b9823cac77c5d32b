//! Building and reading messages: pure byte layout, host-tested.
//!
//! An [`OutMessage`] names a destination, an optional reply right, port rights to carry and
//! inline bytes; [`OutMessage::encode`] lays it out as the kernel expects. A received message
//! is read back with [`Received::parse`].

use crate::abi::message::{
    descriptor_kind, registers, Descriptor, Disposition, MessageHeader, ReceivedRight,
    DESCRIPTOR_SIZE, HEADER_SIZE, MAX_DESCRIPTORS, MAX_MESSAGE_SIZE,
};

/// A port name in the caller's space (0 is "no port").
pub type Name = u32;

/// A buffer that holds any message, for sending and receiving.
#[repr(C, align(16))]
pub struct MessageBuffer(pub [u8; MAX_MESSAGE_SIZE]);

impl MessageBuffer {
    pub const fn new() -> Self {
        MessageBuffer([0; MAX_MESSAGE_SIZE])
    }
}

impl Default for MessageBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a message could not be built or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// More than [`MAX_DESCRIPTORS`] port rights.
    TooManyRights,
    /// Larger than [`MAX_MESSAGE_SIZE`].
    TooLarge,
    /// A received message whose layout is inconsistent.
    Malformed,
}

/// Rights [`OutMessage::carry`] holds inline; more go through [`OutMessage::with_rights`].
pub const INLINE_RIGHTS: usize = 4;

/// A message to send. Small (a few words: building one costs next to nothing); the body and
/// any long list of rights are borrowed.
#[derive(Clone, Copy)]
pub struct OutMessage<'a> {
    pub id: u32,
    pub destination: (Name, Disposition),
    pub reply: Option<(Name, Disposition)>,
    inline_rights: [(Name, Disposition); INLINE_RIGHTS],
    right_count: usize,
    borrowed_rights: &'a [(Name, Disposition)],
    /// Out-of-line regions: (address, size, move instead of copy on write).
    memory: &'a [(u64, u32, bool)],
    pub body: &'a [u8],
}

impl<'a> OutMessage<'a> {
    /// A message `id` to `destination` (a send right the sender keeps: `CopySend`).
    pub fn new(id: u32, destination: Name) -> Self {
        OutMessage {
            id,
            destination: (destination, Disposition::CopySend),
            reply: None,
            inline_rights: [(0, Disposition::CopySend); INLINE_RIGHTS],
            right_count: 0,
            borrowed_rights: &[],
            memory: &[],
            body: &[],
        }
    }

    /// Sends through `destination` with `disposition` (e.g. `MoveSendOnce` for a reply).
    pub fn to(mut self, destination: Name, disposition: Disposition) -> Self {
        self.destination = (destination, disposition);
        self
    }

    /// Asks for a reply on `port` (a receive right of the sender's) through a send-once right.
    pub fn reply_to(mut self, port: Name) -> Self {
        self.reply = Some((port, Disposition::MakeSendOnce));
        self
    }

    /// Sets the reply right and its disposition.
    pub fn with_reply(mut self, reply: Name, disposition: Disposition) -> Self {
        self.reply = Some((reply, disposition));
        self
    }

    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Carries the right `name` names, with `disposition` (up to [`INLINE_RIGHTS`] this way).
    pub fn carry(mut self, name: Name, disposition: Disposition) -> Result<Self, MessageError> {
        if self.right_count == INLINE_RIGHTS || !self.borrowed_rights.is_empty() {
            return Err(MessageError::TooManyRights);
        }
        self.inline_rights[self.right_count] = (name, disposition);
        self.right_count += 1;
        Ok(self)
    }

    /// Carries these rights (up to [`MAX_DESCRIPTORS`]) instead of any carried inline.
    pub fn with_rights(mut self, rights: &'a [(Name, Disposition)]) -> Result<Self, MessageError> {
        if rights.len() > MAX_DESCRIPTORS {
            return Err(MessageError::TooManyRights);
        }
        self.right_count = 0;
        self.borrowed_rights = rights;
        Ok(self)
    }

    /// Carries these regions of the sender's memory out of line, after the rights: each
    /// `(address, size, move)`; page-aligned; copied on write, or moved when `move` is set.
    pub fn with_memory(mut self, memory: &'a [(u64, u32, bool)]) -> Result<Self, MessageError> {
        if memory.len() + self.rights().len() > MAX_DESCRIPTORS {
            return Err(MessageError::TooManyRights);
        }
        self.memory = memory;
        Ok(self)
    }

    pub fn rights(&self) -> &[(Name, Disposition)] {
        if self.borrowed_rights.is_empty() {
            &self.inline_rights[..self.right_count]
        } else {
            self.borrowed_rights
        }
    }

    /// Bytes the encoded message takes.
    pub fn size(&self) -> usize {
        let count = self.rights().len() + self.memory.len();
        let descriptors = if count > 0 {
            4 + count * DESCRIPTOR_SIZE
        } else {
            0
        };
        (HEADER_SIZE + descriptors + self.body.len()).next_multiple_of(4)
    }

    /// Whether the message carries neither rights nor memory: a header and a body.
    fn is_simple(&self) -> bool {
        self.right_count == 0 && self.borrowed_rights.is_empty() && self.memory.is_empty()
    }

    /// The message as the four register words of a short message and its size, if it is
    /// one: no rights, no memory, a body of at most
    /// [`registers::MAX_BODY`] bytes (see
    /// [`registers`]).
    #[inline]
    pub fn in_registers(&self) -> Option<([u64; 4], usize)> {
        let body = self.body;
        if !self.is_simple() || body.len() > registers::MAX_BODY {
            return None;
        }
        let size = (HEADER_SIZE + body.len()).next_multiple_of(4);
        Some((registers::pack(&self.header(size, false), body), size))
    }

    /// The message's header, for a message of `size` bytes.
    #[inline(always)]
    fn header(&self, size: usize, complex: bool) -> MessageHeader {
        MessageHeader {
            bits: MessageHeader::bits(self.destination.1, self.reply.map(|r| r.1), complex),
            size: size as u32,
            remote_port: self.destination.0,
            local_port: self.reply.map_or(0, |r| r.0),
            voucher: 0,
            id: self.id,
        }
    }

    /// Lays the message out in `buffer`; returns its size.
    #[inline]
    pub fn encode(&self, buffer: &mut [u8]) -> Result<usize, MessageError> {
        if self.is_simple() {
            self.encode_simple(buffer)
        } else {
            self.encode_complex(buffer)
        }
    }

    /// `encode` for the usual message, a header and a body: the header written as six
    /// words, no descriptor count, the body copied only if there is one.
    #[inline]
    fn encode_simple(&self, buffer: &mut [u8]) -> Result<usize, MessageError> {
        let end = HEADER_SIZE + self.body.len();
        let size = end.next_multiple_of(4);
        if size > MAX_MESSAGE_SIZE || size > buffer.len() {
            return Err(MessageError::TooLarge);
        }
        buffer[..HEADER_SIZE].copy_from_slice(&self.header(size, false).to_bytes());
        if !self.body.is_empty() {
            copy_small(&mut buffer[HEADER_SIZE..end], self.body);
        }
        if end < size {
            buffer[end..size].fill(0);
        }
        Ok(size)
    }

    /// `encode` for a message with rights or out-of-line memory.
    #[inline(never)]
    fn encode_complex(&self, buffer: &mut [u8]) -> Result<usize, MessageError> {
        let size = self.size();
        if size > MAX_MESSAGE_SIZE || size > buffer.len() {
            return Err(MessageError::TooLarge);
        }
        let rights = self.rights();
        let complex = !rights.is_empty() || !self.memory.is_empty();
        buffer[..HEADER_SIZE].copy_from_slice(&self.header(size, complex).to_bytes());
        let mut at = HEADER_SIZE;
        if complex {
            let count = rights.len() + self.memory.len();
            buffer[at..at + 4].copy_from_slice(&(count as u32).to_le_bytes());
            at += 4;
            for &(name, disposition) in rights {
                buffer[at..at + DESCRIPTOR_SIZE]
                    .copy_from_slice(&Descriptor::port(name, disposition).to_bytes());
                at += DESCRIPTOR_SIZE;
            }
            for &(address, size, move_out) in self.memory {
                buffer[at..at + DESCRIPTOR_SIZE]
                    .copy_from_slice(&Descriptor::out_of_line(address, size, move_out).to_bytes());
                at += DESCRIPTOR_SIZE;
            }
        }
        // Neither a call to copy nothing (an empty reply) nor one to clear no padding.
        let end = at + self.body.len();
        if !self.body.is_empty() {
            buffer[at..end].copy_from_slice(self.body);
        }
        if end < size {
            buffer[end..size].fill(0);
        }
        Ok(size)
    }
}

/// Copies `source` into `target` (the same length): a few words one by one, as a body of a
/// few words usually is, rather than a call to `memcpy`.
#[inline]
fn copy_small(target: &mut [u8], source: &[u8]) {
    let len = source.len();
    if len > 32 || target.len() != len {
        target.copy_from_slice(source);
        return;
    }
    // Straight-line, not a loop (which the compiler makes a `memcpy` call or a long loop).
    let words = len / 8;
    if words > 0 {
        target[..8].copy_from_slice(&source[..8]);
    }
    if words > 1 {
        target[8..16].copy_from_slice(&source[8..16]);
    }
    if words > 2 {
        target[16..24].copy_from_slice(&source[16..24]);
    }
    if words > 3 {
        target[24..32].copy_from_slice(&source[24..32]);
    }
    if !len.is_multiple_of(8) {
        target[words * 8..].copy_from_slice(&source[words * 8..]);
    }
}

/// A received message, borrowed from the buffer it arrived in.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    pub header: MessageHeader,
    descriptors: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Received<'a> {
    /// Reads the first `size` bytes of `buffer` as a message.
    pub fn parse(buffer: &'a [u8], size: usize) -> Result<Self, MessageError> {
        if size < HEADER_SIZE || size > buffer.len() {
            return Err(MessageError::Malformed);
        }
        let header = MessageHeader::from_bytes(buffer[..HEADER_SIZE].try_into().expect("header"));
        let rest = &buffer[HEADER_SIZE..size];
        if !header.is_complex() {
            return Ok(Received {
                header,
                descriptors: &[],
                body: rest,
            });
        }
        let count = u32::from_le_bytes(
            rest.get(..4)
                .ok_or(MessageError::Malformed)?
                .try_into()
                .expect("4"),
        ) as usize;
        let end = 4 + count
            .checked_mul(DESCRIPTOR_SIZE)
            .ok_or(MessageError::Malformed)?;
        if count > MAX_DESCRIPTORS || end > rest.len() {
            return Err(MessageError::Malformed);
        }
        Ok(Received {
            header,
            descriptors: &rest[4..end],
            body: &rest[end..],
        })
    }

    /// A message that came in registers (`registers::pack`'s words, `size` bytes): its body
    /// is laid into `buffer` after where a header would be, its header taken from the words
    /// as they are. Such a message is never complex (it carries no rights or memory).
    #[inline(always)]
    pub fn from_registers(
        buffer: &'a mut [u8],
        words: &[u64; 4],
        size: usize,
    ) -> Result<Self, MessageError> {
        let header = registers::header(words, size as u32);
        let room = buffer
            .get_mut(HEADER_SIZE..registers::MAX_SIZE)
            .ok_or(MessageError::Malformed)?;
        if !(HEADER_SIZE..=registers::MAX_SIZE).contains(&size) || header.is_complex() {
            return Err(MessageError::Malformed);
        }
        room[..8].copy_from_slice(&words[2].to_le_bytes());
        room[8..].copy_from_slice(&words[3].to_le_bytes());
        let body = &buffer[HEADER_SIZE..size];
        Ok(Received {
            header,
            descriptors: &[],
            body,
        })
    }

    pub fn id(&self) -> u32 {
        self.header.id
    }

    /// The reply right that came with the message: its name and kind.
    pub fn reply(&self) -> Option<(Name, ReceivedRight)> {
        let kind = match self.header.remote_disposition() {
            16 => ReceivedRight::Receive,
            17 => ReceivedRight::Send,
            18 => ReceivedRight::SendOnce,
            _ => return None,
        };
        (self.header.remote_port != 0).then_some((self.header.remote_port, kind))
    }

    /// The out-of-line regions carried, in order: the address where each arrived (0 if it
    /// could not be put in this task's memory) and its size.
    pub fn memory(&self) -> impl Iterator<Item = (u64, u32)> + 'a {
        memory_in(self.descriptors)
    }

    /// The port rights carried, in order: name (0 if it could not be received) and kind.
    pub fn rights(&self) -> impl Iterator<Item = (Name, Option<ReceivedRight>)> + 'a {
        rights_in(self.descriptors)
    }

    /// The message's descriptors as they came (empty for a simple message): what
    /// [`rights_in`] and [`memory_in`] read (for the interfaces' `Decoder`).
    #[cfg(any(test, feature = "transport"))]
    pub(crate) fn descriptor_bytes(&self) -> &'a [u8] {
        self.descriptors
    }
}

/// The out-of-line regions the descriptors `descriptors` carry, in order (see
/// [`Received::memory`]).
pub(crate) fn memory_in(descriptors: &[u8]) -> impl Iterator<Item = (u64, u32)> + '_ {
    descriptors
        .chunks_exact(DESCRIPTOR_SIZE)
        .filter_map(|chunk| {
            let d = Descriptor::from_bytes(chunk.try_into().expect("descriptor"));
            (d.kind == descriptor_kind::OUT_OF_LINE).then_some((d.value, d.size))
        })
}

/// The port rights the descriptors `descriptors` carry, in order (see [`Received::rights`]).
pub(crate) fn rights_in(
    descriptors: &[u8],
) -> impl Iterator<Item = (Name, Option<ReceivedRight>)> + '_ {
    descriptors
        .chunks_exact(DESCRIPTOR_SIZE)
        .filter_map(|chunk| {
            let d = Descriptor::from_bytes(chunk.try_into().expect("descriptor"));
            (d.kind == descriptor_kind::PORT).then(|| {
                let kind = match d.disposition {
                    16 => Some(ReceivedRight::Receive),
                    17 => Some(ReceivedRight::Send),
                    18 => Some(ReceivedRight::SendOnce),
                    _ => None,
                };
                (d.value as Name, kind)
            })
        })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::abi::message::COMPLEX;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn simple_message_layout() {
        let body = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let m = OutMessage::new(77, 0x101).reply_to(0x205).with_body(&body);
        let mut buffer = [0u8; 64];
        let size = m.encode(&mut buffer).unwrap();
        assert_eq!(size, 32);
        let h = MessageHeader::from_bytes(buffer[..24].try_into().unwrap());
        assert_eq!(
            (h.remote_port, h.local_port, h.id, h.size),
            (0x101, 0x205, 77, 32)
        );
        assert_eq!(h.remote_disposition(), Disposition::CopySend as u8);
        assert_eq!(h.local_disposition(), Disposition::MakeSendOnce as u8);
        assert_eq!(h.bits & COMPLEX, 0);
        assert_eq!(&buffer[24..32], &body);
    }

    #[test]
    fn rights_make_a_complex_message_that_parses_back() {
        let m = OutMessage::new(5, 0x101)
            .carry(0x301, Disposition::MakeSend)
            .unwrap()
            .carry(0x402, Disposition::MoveReceive)
            .unwrap()
            .with_body(b"hey");
        let mut buffer = [0u8; 128];
        let size = m.encode(&mut buffer).unwrap();
        assert_eq!(size, (24 + 4 + 32 + 3usize).next_multiple_of(4));
        // As the kernel rewrites it for the receiver: names and received kinds.
        buffer[28 + 12] = ReceivedRight::Send as u8;
        buffer[44 + 12] = ReceivedRight::Receive as u8;
        let r = Received::parse(&buffer, size).unwrap();
        assert_eq!(r.id(), 5);
        let rights: Vec<_> = r.rights().collect();
        assert_eq!(
            rights,
            vec![
                (0x301, Some(ReceivedRight::Send)),
                (0x402, Some(ReceivedRight::Receive))
            ]
        );
        assert_eq!(&r.body[..3], b"hey");
    }

    #[test]
    fn a_message_in_registers_reads_as_it_would_from_a_buffer() {
        let body = *b"twelve bytes";
        let m = OutMessage::new(2001, 0x1203)
            .reply_to(0x305)
            .with_body(&body);
        let (words, size) = m.in_registers().unwrap();
        let mut from_memory = [0u8; 64];
        from_memory[..registers::MAX_SIZE]
            .copy_from_slice(&registers::to_bytes(&words, size as u32));
        let expected = Received::parse(&from_memory, size).unwrap();
        let mut buffer = [0xaau8; 64];
        let r = Received::from_registers(&mut buffer, &words, size).unwrap();
        assert_eq!(r.header, expected.header);
        assert_eq!((r.body, r.id()), (expected.body, 2001));
        assert_eq!(&r.body[..12], &body);
        assert_eq!(r.rights().count(), 0);
        // Sizes outside a message in registers, a complex header, a buffer without room.
        for bad in [HEADER_SIZE - 4, registers::MAX_SIZE + 4] {
            assert_eq!(
                Received::from_registers(&mut buffer, &words, bad).err(),
                Some(MessageError::Malformed)
            );
        }
        let complex = [words[0] | u64::from(COMPLEX), words[1], words[2], words[3]];
        assert!(Received::from_registers(&mut buffer, &complex, size).is_err());
        assert!(Received::from_registers(&mut buffer[..30], &words, size).is_err());
    }

    #[test]
    fn out_of_line_regions_follow_the_rights() {
        let regions = [(0x10_0000, 8192, true), (0x20_0000, 4096, false)];
        let m = OutMessage::new(3, 0x101)
            .carry(0x301, Disposition::CopySend)
            .unwrap()
            .with_memory(&regions)
            .unwrap();
        let mut buffer = [0u8; 256];
        let size = m.encode(&mut buffer).unwrap();
        assert_eq!(size, HEADER_SIZE + 4 + 3 * DESCRIPTOR_SIZE);
        let r = Received::parse(&buffer, size).unwrap();
        let memory: Vec<_> = r.memory().collect();
        assert_eq!(memory, vec![(0x10_0000, 8192), (0x20_0000, 4096)]);
        assert_eq!(r.rights().count(), 1);
        let d = Descriptor::from_bytes(buffer[28 + 16..28 + 32].try_into().unwrap());
        assert_eq!(d.flags, crate::abi::message::out_of_line_flags::DEALLOCATE);
    }

    #[test]
    fn limits_are_errors() {
        let mut m = OutMessage::new(1, 1);
        for _ in 0..INLINE_RIGHTS {
            m = m.carry(1, Disposition::CopySend).unwrap();
        }
        assert_eq!(
            m.carry(1, Disposition::CopySend).err(),
            Some(MessageError::TooManyRights)
        );
        let many = [(7, Disposition::CopySend); MAX_DESCRIPTORS];
        let m = OutMessage::new(1, 1).with_rights(&many).unwrap();
        assert_eq!(m.rights().len(), MAX_DESCRIPTORS);
        let mut buffer = [0u8; MAX_MESSAGE_SIZE];
        let size = m.encode(&mut buffer).unwrap();
        assert_eq!(size, HEADER_SIZE + 4 + MAX_DESCRIPTORS * DESCRIPTOR_SIZE);
        let too_many = [(7, Disposition::CopySend); MAX_DESCRIPTORS + 1];
        assert_eq!(
            OutMessage::new(1, 1).with_rights(&too_many).err(),
            Some(MessageError::TooManyRights)
        );
        let big = [0u8; MAX_MESSAGE_SIZE];
        let mut buffer = [0u8; MAX_MESSAGE_SIZE];
        assert_eq!(
            OutMessage::new(1, 1).with_body(&big).encode(&mut buffer),
            Err(MessageError::TooLarge)
        );
        assert_eq!(
            Received::parse(&buffer, 10).err(),
            Some(MessageError::Malformed)
        );
        let mut lying = [0u8; 64];
        let h = MessageHeader {
            bits: COMPLEX,
            size: 32,
            ..Default::default()
        };
        lying[..24].copy_from_slice(&h.to_bytes());
        lying[24..28].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            Received::parse(&lying, 32).err(),
            Some(MessageError::Malformed)
        );
    }
}

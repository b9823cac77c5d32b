//! The message format and `mach_msg` options and return codes.
//!
//! A message is a [`MessageHeader`], then, if the header's `COMPLEX` bit is set, a `u32`
//! descriptor count and that many 16-byte [`Descriptor`]s, then inline bytes. Numbers follow
//! Mach's where Mach has them, so the vocabulary carries over.

/// The fixed start of every message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageHeader {
    /// Dispositions of `remote_port` (bits 0..8) and `local_port` (bits 8..16); [`COMPLEX`].
    pub bits: u32,
    /// Bytes in the whole message, header included.
    pub size: u32,
    /// Sending: the destination. Received: the reply right, in the receiver's space.
    pub remote_port: u32,
    /// Sending: the reply port. Received: the name of the port it arrived on.
    pub local_port: u32,
    /// Reserved, 0.
    pub voucher: u32,
    /// What the message means, by the interface's numbering.
    pub id: u32,
}

pub const HEADER_SIZE: usize = core::mem::size_of::<MessageHeader>();
/// The header bit saying descriptors follow.
pub const COMPLEX: u32 = 1 << 31;
/// Largest message the kernel carries (header, descriptors and inline bytes).
pub const MAX_MESSAGE_SIZE: usize = 8192;
/// Most descriptors in one message.
pub const MAX_DESCRIPTORS: usize = 64;

impl MessageHeader {
    pub const fn bits(remote: Disposition, local: Option<Disposition>, complex: bool) -> u32 {
        let local = match local {
            Some(d) => d as u32,
            None => 0,
        };
        (remote as u32) | (local << 8) | if complex { COMPLEX } else { 0 }
    }

    pub const fn remote_disposition(&self) -> u8 {
        self.bits as u8
    }

    pub const fn local_disposition(&self) -> u8 {
        (self.bits >> 8) as u8
    }

    pub const fn is_complex(&self) -> bool {
        self.bits & COMPLEX != 0
    }

    /// The header as bytes (it is `repr(C)` with no padding).
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0; HEADER_SIZE];
        for (i, word) in [
            self.bits,
            self.size,
            self.remote_port,
            self.local_port,
            self.voucher,
            self.id,
        ]
        .into_iter()
        .enumerate()
        {
            out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8; HEADER_SIZE]) -> Self {
        let word = |i: usize| {
            u32::from_le_bytes([
                bytes[4 * i],
                bytes[4 * i + 1],
                bytes[4 * i + 2],
                bytes[4 * i + 3],
            ])
        };
        MessageHeader {
            bits: word(0),
            size: word(1),
            remote_port: word(2),
            local_port: word(3),
            voucher: word(4),
            id: word(5),
        }
    }
}

/// What the sender does with a right it names in a message.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Gives away the receive right.
    MoveReceive = 16,
    /// Gives away one send right (one user reference).
    MoveSend = 17,
    /// Gives away a send-once right.
    MoveSendOnce = 18,
    /// Sends a copy of a send right the sender keeps.
    CopySend = 19,
    /// Makes a send right from the receive right the sender holds.
    MakeSend = 20,
    /// Makes a send-once right from the receive right the sender holds.
    MakeSendOnce = 21,
}

impl Disposition {
    pub fn from_raw(raw: u8) -> Option<Disposition> {
        Some(match raw {
            16 => Disposition::MoveReceive,
            17 => Disposition::MoveSend,
            18 => Disposition::MoveSendOnce,
            19 => Disposition::CopySend,
            20 => Disposition::MakeSend,
            21 => Disposition::MakeSendOnce,
            _ => return None,
        })
    }

    /// The kind of right the receiver gets.
    pub const fn received(self) -> ReceivedRight {
        match self {
            Disposition::MoveReceive => ReceivedRight::Receive,
            Disposition::MoveSend | Disposition::CopySend | Disposition::MakeSend => {
                ReceivedRight::Send
            }
            Disposition::MoveSendOnce | Disposition::MakeSendOnce => ReceivedRight::SendOnce,
        }
    }
}

/// The right a received message carries, in the disposition field of what arrives.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceivedRight {
    Receive = 16,
    Send = 17,
    SendOnce = 18,
}

/// `Descriptor::kind` values.
pub mod descriptor_kind {
    /// A port right: `name` and `disposition`.
    pub const PORT: u8 = 0;
    /// Out-of-line memory: `value` is the address (page-aligned) and `size` the length of a
    /// region of the sender's, copied on write (or moved, with
    /// [`DEALLOCATE`](super::out_of_line_flags::DEALLOCATE)); the receiver gets it at a new
    /// address, written into `value`.
    pub const OUT_OF_LINE: u8 = 1;
}

/// `Descriptor::flags` for out-of-line memory.
pub mod out_of_line_flags {
    /// Remove the region from the sender (the pages move instead of being copied on write).
    pub const DEALLOCATE: u8 = 1;
}

impl Descriptor {
    /// Out-of-line memory `[address, address + size)`, moved if `deallocate`.
    pub const fn out_of_line(address: u64, size: u32, deallocate: bool) -> Descriptor {
        Descriptor {
            value: address,
            size,
            disposition: 0,
            flags: if deallocate {
                out_of_line_flags::DEALLOCATE
            } else {
                0
            },
            reserved: 0,
            kind: descriptor_kind::OUT_OF_LINE,
        }
    }
}

/// One descriptor: 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// A port name (kind PORT) or an address (kind OUT_OF_LINE).
    pub value: u64,
    /// Bytes of out-of-line memory.
    pub size: u32,
    pub disposition: u8,
    pub flags: u8,
    pub reserved: u8,
    pub kind: u8,
}

pub const DESCRIPTOR_SIZE: usize = core::mem::size_of::<Descriptor>();

impl Descriptor {
    pub const fn port(name: u32, disposition: Disposition) -> Descriptor {
        Descriptor {
            value: name as u64,
            size: 0,
            disposition: disposition as u8,
            flags: 0,
            reserved: 0,
            kind: descriptor_kind::PORT,
        }
    }

    pub fn to_bytes(&self) -> [u8; DESCRIPTOR_SIZE] {
        let mut out = [0; DESCRIPTOR_SIZE];
        out[..8].copy_from_slice(&self.value.to_le_bytes());
        out[8..12].copy_from_slice(&self.size.to_le_bytes());
        out[12] = self.disposition;
        out[13] = self.flags;
        out[14] = self.reserved;
        out[15] = self.kind;
        out
    }

    pub fn from_bytes(b: &[u8; DESCRIPTOR_SIZE]) -> Descriptor {
        Descriptor {
            value: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            disposition: b[12],
            flags: b[13],
            reserved: b[14],
            kind: b[15],
        }
    }
}

/// `mach_msg` option bits.
pub mod options {
    pub const SEND: u64 = 1;
    pub const RECEIVE: u64 = 2;
    /// Give up sending after the timeout (a full queue) instead of waiting.
    pub const SEND_TIMEOUT: u64 = 0x10;
    /// Give up receiving after the timeout.
    pub const RECEIVE_TIMEOUT: u64 = 0x100;
    /// The message to send is in registers (see [`registers`](super::registers)), not in
    /// the buffer: at most [`registers::MAX_SIZE`](super::registers::MAX_SIZE) bytes.
    pub const SEND_REGISTERS: u64 = 0x1000;
    /// A message received may come back in registers instead of the buffer (the received
    /// size then has [`registers::IN_REGISTERS`](super::registers::IN_REGISTERS) set).
    pub const RECEIVE_REGISTERS: u64 = 0x2000;
    /// Every bit above: any other bit set makes `mach_msg` fail with
    /// [`MsgReturn::InvalidOptions`](super::MsgReturn::InvalidOptions), doing nothing.
    pub const KNOWN: u64 =
        SEND | RECEIVE | SEND_TIMEOUT | RECEIVE_TIMEOUT | SEND_REGISTERS | RECEIVE_REGISTERS;
}

/// Short messages in registers, as seL4 and L4 carry theirs: a message of at most
/// [`MAX_SIZE`](registers::MAX_SIZE) bytes with no descriptors goes in `r12`..`r15` rather than through memory,
/// so neither side's buffer is touched on the way (`options::SEND_REGISTERS`,
/// `options::RECEIVE_REGISTERS`).
///
/// The four words: `r12` = `bits | id << 32`, `r13` = `remote_port | local_port << 32`,
/// `r14` and `r15` = body bytes 0..8 and 8..16 (little-endian; bytes past the size are
/// undefined). The size is the call's send size; the voucher is 0. A message received this
/// way has the same layout, its size in `rdx` with
/// [`IN_REGISTERS`](registers::IN_REGISTERS) set. The kernel delivers
/// into registers only to a receiver that allowed it; otherwise into the buffer as always.
pub mod registers {
    use super::{MessageHeader, HEADER_SIZE};

    /// Body bytes a message in registers carries.
    pub const MAX_BODY: usize = 16;
    /// Largest message in registers, header included.
    pub const MAX_SIZE: usize = HEADER_SIZE + MAX_BODY;
    /// Set in a received size when the message came in registers.
    pub const IN_REGISTERS: u64 = 1 << 63;

    /// The four register words of `header` and `body` (at most [`MAX_BODY`] bytes).
    #[inline(always)]
    pub fn pack(header: &MessageHeader, body: &[u8]) -> [u64; 4] {
        // A body word: 8 bytes read whole, or the few bytes of a short tail (no `memcpy` call
        // for a body of a word or two).
        let word = |at: usize| match body.get(at..at + 8) {
            Some(bytes) => u64::from_le_bytes(bytes.try_into().expect("8 bytes")),
            None => body
                .iter()
                .skip(at)
                .take(MAX_BODY - at)
                .enumerate()
                .fold(0, |w, (i, b)| w | u64::from(*b) << (8 * i)),
        };
        [
            u64::from(header.bits) | u64::from(header.id) << 32,
            u64::from(header.remote_port) | u64::from(header.local_port) << 32,
            if body.is_empty() { 0 } else { word(0) },
            if body.len() > 8 { word(8) } else { 0 },
        ]
    }

    /// The header of the words `pack` made, for a message of `size` bytes.
    #[inline(always)]
    pub fn header(words: &[u64; 4], size: u32) -> MessageHeader {
        MessageHeader {
            bits: words[0] as u32,
            size,
            remote_port: words[1] as u32,
            local_port: (words[1] >> 32) as u32,
            voucher: 0,
            id: (words[0] >> 32) as u32,
        }
    }

    /// The message as it would lie in a buffer: header and body, `size` bytes of it valid.
    #[inline(always)]
    pub fn to_bytes(words: &[u64; 4], size: u32) -> [u8; MAX_SIZE] {
        let mut out = [0u8; MAX_SIZE];
        out[..HEADER_SIZE].copy_from_slice(&header(words, size).to_bytes());
        out[HEADER_SIZE..HEADER_SIZE + 8].copy_from_slice(&words[2].to_le_bytes());
        out[HEADER_SIZE + 8..].copy_from_slice(&words[3].to_le_bytes());
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::abi::message::Disposition;

        #[test]
        fn pack_and_unpack_agree() {
            let sent = MessageHeader {
                bits: MessageHeader::bits(
                    Disposition::CopySend,
                    Some(Disposition::MakeSendOnce),
                    false,
                ),
                size: 36,
                remote_port: 0x1203,
                local_port: 0xffff_ff05,
                voucher: 0,
                id: 2001,
            };
            let body: [u8; 12] = core::array::from_fn(|i| i as u8 + 1);
            let words = pack(&sent, &body);
            assert_eq!(header(&words, 36), sent);
            let bytes = to_bytes(&words, 36);
            assert_eq!(bytes[..HEADER_SIZE], sent.to_bytes());
            assert_eq!(bytes[HEADER_SIZE..HEADER_SIZE + 12], body);
            assert_eq!(bytes[HEADER_SIZE + 12..], [0; 4]);
        }
    }
}

/// What `mach_msg` returns in `rax` (Mach's `mach_msg_return_t` values).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgReturn {
    Success = 0,
    /// The message buffer is not readable, or a field is malformed.
    SendInvalidData = 0x1000_0002,
    /// The destination is not a send or send-once right, or its port is dead.
    SendInvalidDest = 0x1000_0003,
    SendTimedOut = 0x1000_0004,
    SendMsgTooSmall = 0x1000_0008,
    /// The reply port is not a right the sender can give.
    SendInvalidReply = 0x1000_0009,
    /// A port descriptor names a right the sender does not hold.
    SendInvalidRight = 0x1000_000a,
    /// An out-of-line region is not page-aligned, not fully mapped, or not readable.
    SendInvalidMemory = 0x1000_000c,
    SendNoBuffer = 0x1000_000d,
    SendTooLarge = 0x1000_000e,
    /// A descriptor of a kind the kernel does not carry.
    SendInvalidType = 0x1000_000f,
    SendInvalidHeader = 0x1000_0010,
    /// The receive name is not a receive right or port set.
    RcvInvalidName = 0x1000_4002,
    RcvTimedOut = 0x1000_4003,
    /// The message is larger than the receive buffer; it stays queued, `rdx` says its size.
    RcvTooLarge = 0x1000_4004,
    /// The receive buffer is not writable.
    RcvInvalidData = 0x1000_4008,
    /// The port died while the thread waited on it.
    RcvPortDied = 0x1000_4009,
    /// A right in the message could not be given to the receiver (its space is full); the
    /// right was destroyed and the rest of the message delivered.
    RcvBodyError = 0x1000_400c,
    /// An option bit the kernel does not know (outside [`options::KNOWN`]): nothing was
    /// sent or received.
    InvalidOptions = 0x1000_8001,
}

impl MsgReturn {
    pub const ALL: [MsgReturn; 19] = [
        MsgReturn::Success,
        MsgReturn::SendInvalidData,
        MsgReturn::SendInvalidDest,
        MsgReturn::SendTimedOut,
        MsgReturn::SendMsgTooSmall,
        MsgReturn::SendInvalidReply,
        MsgReturn::SendInvalidRight,
        MsgReturn::SendInvalidMemory,
        MsgReturn::SendNoBuffer,
        MsgReturn::SendTooLarge,
        MsgReturn::SendInvalidType,
        MsgReturn::SendInvalidHeader,
        MsgReturn::RcvInvalidName,
        MsgReturn::RcvTimedOut,
        MsgReturn::RcvTooLarge,
        MsgReturn::RcvInvalidData,
        MsgReturn::RcvPortDied,
        MsgReturn::RcvBodyError,
        MsgReturn::InvalidOptions,
    ];

    pub fn from_raw(raw: u32) -> Option<MsgReturn> {
        Self::ALL.into_iter().find(|r| *r as u32 == raw)
    }
}

/// Message ids of kernel notifications (Mach's `MACH_NOTIFY_*`).
pub mod notify {
    /// A send-once right was destroyed unused. Body: none.
    pub const SEND_ONCE: u32 = 0o107;
    /// The port a dead-name request named died. Body: the dead name (`u32`).
    pub const DEAD_NAME: u32 = 0o110;
    /// The last send right of the port is gone. Body: the send-right make count (`u32`).
    pub const NO_SENDERS: u32 = 0o106;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_bytes() {
        let h = MessageHeader {
            bits: MessageHeader::bits(Disposition::CopySend, Some(Disposition::MakeSendOnce), true),
            size: 64,
            remote_port: 0x103,
            local_port: 0x201,
            voucher: 0,
            id: 4242,
        };
        assert_eq!(MessageHeader::from_bytes(&h.to_bytes()), h);
        assert_eq!(h.remote_disposition(), 19);
        assert_eq!(h.local_disposition(), 21);
        assert!(h.is_complex());
        assert_eq!(HEADER_SIZE, 24);
    }

    #[test]
    fn descriptor_round_trips_through_bytes() {
        let d = Descriptor::port(0x305, Disposition::MoveReceive);
        assert_eq!(Descriptor::from_bytes(&d.to_bytes()), d);
        assert_eq!(DESCRIPTOR_SIZE, 16);
    }

    #[test]
    fn dispositions_decode() {
        for raw in 0..=255u8 {
            if let Some(d) = Disposition::from_raw(raw) {
                assert_eq!(d as u8, raw);
            } else {
                assert!(!(16..=21).contains(&raw));
            }
        }
        assert_eq!(Disposition::MakeSend.received(), ReceivedRight::Send);
        for r in MsgReturn::ALL {
            assert_eq!(MsgReturn::from_raw(r as u32), Some(r));
        }
    }
}

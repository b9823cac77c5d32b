//! How a routine's arguments and results travel: data as postcard-encoded serde values in the
//! body, one after another after a length prefix; a [`SendRight`] as a port descriptor and
//! [`Pages`](super::Pages) as an out-of-line region, in order.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::rights::{self, ReceiveRight, SendRight};
use crate::abi::message::{Disposition, ReceivedRight, HEADER_SIZE};
use crate::ipc::message::{memory_in, rights_in, MessageError, Name, OutMessage, Received};

/// Most body bytes a message can have (no descriptors).
pub const MAX_BODY: usize = crate::abi::message::MAX_MESSAGE_SIZE - HEADER_SIZE;

/// A type that can be an argument or result of a routine.
///
/// Every serde type (`Serialize + DeserializeOwned`) is one and travels postcard-encoded in
/// the body. A [`SendRight`] travels as a port descriptor: the sender passes a borrow of a
/// right it keeps (`CopySend`, see [`Give`]) and the receiver gets its own [`SendRight`].
pub trait Wire: Sized {
    /// What a sender passes for a value of this type.
    type Give<'a>;

    /// Appends `value` to the message being built.
    fn encode(value: Self::Give<'_>, encoder: &mut Encoder<'_>) -> Result<(), MessageError>;

    /// Takes the next value of this type from a received message.
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, Malformed>;

    /// Whether values of this type are plain data (no port right, no memory): what a
    /// direct call between collocated servers ([`direct`](super::direct)) hands over as
    /// it is, where a right or memory must travel in a message to change spaces.
    const PLAIN: bool = false;

    /// The value a sender gives, as the receiver's own: plain data is the value itself;
    /// anything else is given back (`Err`), to travel in a message.
    fn given(value: Self::Give<'_>) -> Result<Self, Self::Give<'_>> {
        Err(value)
    }
}

/// What a sender passes for a `T`: `T` itself, or for [`SendRight`] a `&SendRight` (the right
/// travels as a copy; the sender keeps its own).
pub type Give<'a, T> = <T as Wire>::Give<'a>;

impl<T: Serialize + DeserializeOwned> Wire for T {
    type Give<'a> = T;

    fn encode(value: T, encoder: &mut Encoder<'_>) -> Result<(), MessageError> {
        encoder.data(&value)
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<T, Malformed> {
        decoder.data()
    }

    const PLAIN: bool = true;

    fn given(value: Self::Give<'_>) -> Result<T, Self::Give<'_>> {
        Ok(value)
    }
}

impl Wire for SendRight {
    type Give<'a> = &'a SendRight;

    fn encode(value: &SendRight, encoder: &mut Encoder<'_>) -> Result<(), MessageError> {
        encoder.right(value.name(), Disposition::CopySend)
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<SendRight, Malformed> {
        match decoder.right()? {
            (name, Some(ReceivedRight::Send)) if name != 0 => Ok(SendRight::from_raw(name)),
            (name, kind) => {
                rights::release(name, kind);
                Err(Malformed)
            }
        }
    }
}

impl Wire for ReceiveRight {
    /// A receive right travels moved: the sender gives up the port.
    type Give<'a> = ReceiveRight;

    fn encode(value: ReceiveRight, encoder: &mut Encoder<'_>) -> Result<(), MessageError> {
        encoder.right(value.name(), Disposition::MoveReceive)?;
        // The right leaves with the message (it stays here if the send fails).
        core::mem::forget(value);
        Ok(())
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<ReceiveRight, Malformed> {
        match decoder.right()? {
            (name, Some(ReceivedRight::Receive)) if name != 0 => Ok(ReceiveRight::from_raw(name)),
            (name, kind) => {
                rights::release(name, kind);
                Err(Malformed)
            }
        }
    }
}

/// The error type of a subsystem whose routines cannot fail: it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoError {}

/// A received request or reply does not have the layout its id promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

pub use crate::abi::body::{reply_id, status, values, LENGTH_PREFIX};

/// Port rights a routine's message carries at most: what an [`OutMessage`] carries inline.
pub const MAX_RIGHTS: usize = crate::ipc::message::INLINE_RIGHTS;
/// Out-of-line regions a routine's message carries at most.
pub const MAX_REGIONS: usize = 4;

/// Builds a message body (its length prefix, then encoded values), its port rights and its
/// out-of-line regions (at most [`MAX_RIGHTS`] and [`MAX_REGIONS`]: small arrays, so making
/// an encoder for every call costs next to nothing).
pub struct Encoder<'a> {
    body: &'a mut [u8],
    used: usize,
    rights: [(Name, Disposition); MAX_RIGHTS],
    right_count: usize,
    memory: [(u64, u32, bool); MAX_REGIONS],
    memory_count: usize,
}

impl<'a> Encoder<'a> {
    /// An empty message whose body goes into `body` (at least [`LENGTH_PREFIX`] bytes).
    pub fn new(body: &'a mut [u8]) -> Self {
        body[..LENGTH_PREFIX].fill(0);
        Encoder {
            body,
            used: LENGTH_PREFIX,
            rights: [(0, Disposition::CopySend); MAX_RIGHTS],
            right_count: 0,
            memory: [(0, 0, false); MAX_REGIONS],
            memory_count: 0,
        }
    }

    /// Appends a postcard-encoded value to the body.
    pub fn data<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), MessageError> {
        let room = &mut self.body[self.used..];
        let used = postcard::to_slice(value, room)
            .map_err(|_| MessageError::TooLarge)?
            .len();
        self.used += used;
        let length = (self.used - LENGTH_PREFIX) as u16;
        self.body[..LENGTH_PREFIX].copy_from_slice(&length.to_le_bytes());
        Ok(())
    }

    /// Appends a port right: `name`, given with `disposition`.
    pub fn right(&mut self, name: Name, disposition: Disposition) -> Result<(), MessageError> {
        if self.right_count == MAX_RIGHTS {
            return Err(MessageError::TooManyRights);
        }
        self.rights[self.right_count] = (name, disposition);
        self.right_count += 1;
        Ok(())
    }

    /// Appends an out-of-line region of the sender's (`size` bytes at page-aligned
    /// `address`), moved out of the sender's memory when `move_out` is set, else copied.
    pub fn memory(&mut self, address: u64, size: u32, move_out: bool) -> Result<(), MessageError> {
        if self.memory_count == MAX_REGIONS {
            return Err(MessageError::TooManyRights);
        }
        self.memory[self.memory_count] = (address, size, move_out);
        self.memory_count += 1;
        Ok(())
    }

    /// Whether the message carries port rights or memory (and so must be sent while the
    /// sender still holds them).
    pub fn has_rights(&self) -> bool {
        self.right_count > 0 || self.memory_count > 0
    }

    /// Bytes of body written so far, the length prefix included.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether no value was written yet.
    pub fn is_empty(&self) -> bool {
        self.used == LENGTH_PREFIX
    }

    /// The message `id` with this body and these rights; its destination (0) and reply port
    /// are the transport's to fill in.
    pub fn message(&self, id: u32) -> Result<OutMessage<'_>, MessageError> {
        let mut message = OutMessage::new(id, 0).with_body(&self.body[..self.used]);
        for &(name, disposition) in &self.rights[..self.right_count] {
            message = message.carry(name, disposition)?;
        }
        message.with_memory(&self.memory[..self.memory_count])
    }
}

/// Reads a received message's body and takes its port rights and out-of-line regions, in
/// order. Rights and regions not taken by the time it is dropped are released, so a message
/// never leaks either, whatever its shape. A message with more than [`MAX_RIGHTS`] rights or
/// [`MAX_REGIONS`] regions (no routine has that many) decodes as malformed, and all it
/// carried is released with the decoder.
///
/// The rights and regions are read from the message's descriptors as they are taken, not
/// copied out first: a message that carries none (most calls and replies) costs the decoder
/// its length prefix and nothing else (copying them into arrays at the start took about
/// 110 instructions on each side of a null call).
pub struct Decoder<'a> {
    /// The values still to read; `None` if the body has no valid length prefix.
    values: Option<&'a [u8]>,
    /// What follows the values: padding.
    padding: &'a [u8],
    /// The message's descriptors (empty for a simple message).
    descriptors: &'a [u8],
    /// Rights and regions taken so far: the first ones of each, in order.
    rights_taken: usize,
    regions_taken: usize,
}

impl<'a> Decoder<'a> {
    /// Takes over the carried rights and regions of `message` (not its reply right).
    pub fn new(message: &Received<'a>) -> Self {
        let length = message
            .body
            .get(..LENGTH_PREFIX)
            .map(|prefix| usize::from(u16::from_le_bytes([prefix[0], prefix[1]])));
        let (values, padding) = match length {
            Some(length) if LENGTH_PREFIX + length <= message.body.len() => {
                let (values, padding) = message.body[LENGTH_PREFIX..].split_at(length);
                (Some(values), padding)
            }
            _ => (None, &[][..]),
        };
        Decoder {
            values,
            padding,
            descriptors: message.descriptor_bytes(),
            rights_taken: 0,
            regions_taken: 0,
        }
    }

    /// The next postcard-encoded value of the body.
    pub fn data<T: DeserializeOwned>(&mut self) -> Result<T, Malformed> {
        let values = self.values.ok_or(Malformed)?;
        let (value, rest) = postcard::take_from_bytes(values).map_err(|_| Malformed)?;
        self.values = Some(rest);
        Ok(value)
    }

    /// The next carried right, now the caller's (no more than [`MAX_RIGHTS`] are taken).
    pub fn right(&mut self) -> Result<(Name, Option<ReceivedRight>), Malformed> {
        if self.rights_taken == MAX_RIGHTS {
            return Err(Malformed);
        }
        let right = rights_in(self.descriptors)
            .nth(self.rights_taken)
            .ok_or(Malformed)?;
        self.rights_taken += 1;
        Ok(right)
    }

    /// The next out-of-line region: its address in this task (0 if the kernel could not
    /// map it) and size, now the caller's (no more than [`MAX_REGIONS`] are taken).
    pub fn memory(&mut self) -> Result<(u64, u32), Malformed> {
        if self.regions_taken == MAX_REGIONS {
            return Err(Malformed);
        }
        let region = memory_in(self.descriptors)
            .nth(self.regions_taken)
            .ok_or(Malformed)?;
        self.regions_taken += 1;
        Ok(region)
    }

    /// Checks that everything was read: every value, right and region (so none past the
    /// most a routine takes), and after the values at most the zero padding that rounds a
    /// message to 4 bytes.
    pub fn finish(&self) -> Result<(), Malformed> {
        let values_read = self.values.is_some_and(|values| values.is_empty());
        let padding = self.padding.len() < 4 && self.padding.iter().all(|&b| b == 0);
        let all_taken = self.descriptors.is_empty()
            || (rights_in(self.descriptors).count() == self.rights_taken
                && memory_in(self.descriptors).count() == self.regions_taken);
        if values_read && padding && all_taken {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

impl Decoder<'_> {
    /// Gives back the rights and regions not taken (out of line: most messages carry none).
    #[cold]
    #[inline(never)]
    fn release_the_rest(&mut self) {
        for (name, kind) in rights_in(self.descriptors).skip(self.rights_taken) {
            rights::release(name, kind);
        }
        for (address, size) in memory_in(self.descriptors).skip(self.regions_taken) {
            rights::release_memory(address, size);
        }
    }
}

impl Drop for Decoder<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.descriptors.is_empty() {
            self.release_the_rest();
        }
    }
}

//! A message to a kernel receiver as its decoding sees it, and reading the values of a body
//! (the memory-object protocol's and the devices' requests and answers).

use alloc::vec::Vec;
use libipc::abi::message::DESCRIPTOR_SIZE;
use serde::Serialize;

/// What the answer on a kernel reply port answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// `init`, or `default_pager.create`: the object's attributes.
    Init,
    /// A `data_request`.
    Data,
    /// A `data_return`.
    Return,
}

/// A message sent to a kernel receiver, as decoding sees it (nothing here can change).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub id: u32,
    pub complex: bool,
    /// Everything after the header (the descriptor count and descriptors first, when
    /// `complex`).
    pub body: &'a [u8],
    /// The size in bytes of the message's first out-of-line region, if it has one.
    pub memory: Option<u64>,
    /// Whether it carries a reply right.
    pub reply: bool,
}

/// Encodes values as a body's data: the `u16` length prefix, then postcard.
pub(crate) fn encode_values<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), ()> {
    let mut buffer = [0u8; 64];
    let encoded = postcard::to_slice(value, &mut buffer).map_err(|_| ())?;
    let length = encoded.len() as u16;
    out.try_reserve(2 + encoded.len()).map_err(|_| ())?;
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(encoded);
    Ok(())
}

/// A decoded call or answer from a pager: its data values and its out-of-line regions.
pub struct Incoming<'a> {
    values: &'a [u8],
}

impl<'a> Incoming<'a> {
    /// The data of a body with `descriptors` descriptors in front (complex messages).
    pub fn new(body: &'a [u8], complex: bool) -> Option<Incoming<'a>> {
        let data = if complex {
            let count = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
            body.get(4 + count * DESCRIPTOR_SIZE..)?
        } else {
            body
        };
        Some(Incoming {
            values: libipc::abi::body::values(data)?,
        })
    }

    pub fn take<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let (value, rest) = postcard::take_from_bytes(self.values).ok()?;
        self.values = rest;
        Some(value)
    }

    /// Bytes of values not yet taken.
    pub fn remaining(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The body of a message whose values are `value`.
    pub fn body_of<T: Serialize>(value: &T) -> Vec<u8> {
        let mut body = Vec::new();
        encode_values(value, &mut body).expect("fits");
        body
    }

    /// A simple message to a kernel receiver, with a reply right.
    pub fn request(id: u32, body: &[u8], memory: Option<u64>) -> Request<'_> {
        Request {
            id,
            complex: false,
            body,
            memory,
            reply: true,
        }
    }

    #[test]
    fn values_are_read_in_order_and_past_descriptors() {
        let body = body_of(&(7u64, true));
        let mut incoming = Incoming::new(&body, false).expect("prefix");
        assert_eq!(incoming.take::<u64>(), Some(7));
        assert_eq!(incoming.take::<bool>(), Some(true));
        assert_eq!(incoming.take::<u8>(), None);
        let mut complex = Vec::from(1u32.to_le_bytes());
        complex.extend_from_slice(&[0; DESCRIPTOR_SIZE]);
        complex.extend_from_slice(&body);
        let mut incoming = Incoming::new(&complex, true).expect("prefix");
        assert_eq!(incoming.take::<u64>(), Some(7));
        // A descriptor count running past the body.
        let mut short = Vec::from(3u32.to_le_bytes());
        short.extend_from_slice(&body);
        assert!(Incoming::new(&short, true).is_none());
        // A length prefix longer than the body.
        assert!(Incoming::new(&[200, 0, 1], false).is_none());
    }
}

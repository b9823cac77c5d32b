//! The frame of an interface message's body, shared by the generated interfaces and the
//! kernel (which speaks the memory-object protocol without them): a length prefix before the
//! encoded values, a status byte first in every reply, and reply ids.

/// Bytes before the encoded values of a body: their length, as a little-endian `u16`. A
/// message's size is rounded up to 4 bytes, so without it zero padding would read as values.
pub const LENGTH_PREFIX: usize = 2;

/// The encoded values of a message body (what follows its descriptors) without their length
/// prefix; `None` without a valid prefix.
pub fn values(body: &[u8]) -> Option<&[u8]> {
    let length = usize::from(u16::from_le_bytes(
        body.get(..LENGTH_PREFIX)?.try_into().ok()?,
    ));
    body.get(LENGTH_PREFIX..LENGTH_PREFIX + length)
}

/// The first byte of every reply body: how the request went.
pub mod status {
    /// The routine's result follows.
    pub const OK: u8 = 0;
    /// The routine's error follows.
    pub const ERROR: u8 = 1;
    /// The server could not decode the request.
    pub const BAD_REQUEST: u8 = 2;
    /// The server has no routine with the request's id.
    pub const UNKNOWN_ROUTINE: u8 = 3;
    /// The server could not encode its reply (too large).
    pub const REPLY_FAILED: u8 = 4;
}

/// The id of the reply to request `id` (MIG's convention: request id + 100).
pub const fn reply_id(id: u32) -> u32 {
    id.wrapping_add(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_their_length() {
        assert_eq!(values(&[2, 0, 7, 8, 0, 0]), Some(&[7, 8][..]));
        assert_eq!(values(&[3, 0, 7]), None);
        assert_eq!(values(&[1]), None);
    }
}

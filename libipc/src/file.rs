//! Files: reading the boot archive's files, programs and data alike, through a file server.
//! `bootfs` serves it on its port (the one it registers as
//! [`PROGRAM_PAGER_NAME`](crate::pager::PROGRAM_PAGER_NAME): it is the program pager too),
//! from the archive the kernel maps for it (`sys::boot_archive`).
//!
//! [`file_server::Client::open`] turns a file's name into a *file port*; [`mod@file`] reads it at
//! any offset (`pread`-style: a file port has no position, so one port per file serves every
//! client, and a client that drops its right leaves nothing behind at the server).
//!
//! ```ignore
//! let mut files = file_server::Client::new(bootfs_port);
//! let mut data = file::Client::new(files.open("nonaim_data".into())?);
//! let size = data.size()?;
//! let first_page: Vec<u8> = data.read(0, 4096)?.into_vec();
//! ```
//!
//! Bad requests (an unknown name, an offset past the end, a read longer than [`MAX_READ`]) get
//! a [`FileError`]; nothing else happens.

use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The most bytes one `read` returns (they travel inline, in the reply).
pub const MAX_READ: u32 = 4096;

/// Why a file request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileError {
    /// `open`: no file has that name.
    NoSuchFile,
    /// `open`: the name is empty or longer than an archive name may be (47 bytes).
    BadName,
    /// `read`: the offset lies past the end of the file (whose size this is).
    PastEnd { size: u64 },
    /// `read`: more than `max` ([`MAX_READ`]) bytes asked for.
    TooLong { max: u32 },
    /// The server has no archive to serve files from.
    NoArchive,
    /// The server is out of memory or ports now; the request may be tried again.
    NoResources,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FileError::NoSuchFile => f.write_str("no such file"),
            FileError::BadName => f.write_str("bad file name"),
            FileError::PastEnd { size } => write!(f, "offset past the end ({size} bytes)"),
            FileError::TooLong { max } => write!(f, "read longer than {max} bytes"),
            FileError::NoArchive => f.write_str("no boot archive"),
            FileError::NoResources => f.write_str("the file server is out of resources"),
        }
    }
}

/// Bytes as one length and the bytes themselves on the wire (serde's `bytes`), not as a
/// sequence of one-byte values: a 4 KiB read is copied, not decoded value by value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
                let mut vec = Vec::new();
                vec.try_reserve_exact(bytes.len())
                    .map_err(|_| E::custom("no memory for the bytes"))?;
                vec.extend_from_slice(bytes);
                Ok(Bytes(vec))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

crate::interface! {
    /// File server → file ports (ids 2800..), on the file server's port.
    pub mod file_server = 2800 {
        type Error = FileError;

        /// Opens the file called `name`.
        ///
        /// Reply: a send right to the file's port, or `NoSuchFile`, `BadName`, `NoArchive`,
        /// `NoResources`.
        fn open(name: String) -> SendRight;
    }
}

crate::interface! {
    /// One file's requests (ids 2900..), on its file port.
    pub mod file = 2900 {
        type Error = FileError;

        /// The file's size.
        ///
        /// Reply: its size in bytes.
        fn size() -> u64;

        /// Reads up to `length` bytes (at most `MAX_READ`, 4 KiB) from byte `offset`.
        ///
        /// Reply: the bytes, fewer than `length` only where the file ends (none at an
        /// `offset` equal to its size); or `PastEnd` (an `offset` beyond the size) or
        /// `TooLong`.
        fn read(offset: u64, length: u32) -> Bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn bytes_travel_as_one_length_and_the_bytes() {
        let bytes = Bytes((0..=255).collect());
        let mut buffer = [0u8; 300];
        let encoded = postcard::to_slice(&bytes, &mut buffer).unwrap();
        // A two-byte varint length (256), then the bytes as they are.
        assert_eq!(encoded.len(), 2 + 256);
        assert_eq!(&encoded[2..], &bytes.0[..]);
        let decoded: Bytes = postcard::from_bytes(encoded).unwrap();
        assert_eq!(decoded, bytes);
    }

    #[test]
    fn ids_follow_the_device_interfaces() {
        assert_eq!(file_server::ids::open, 2800);
        assert_eq!(file::ids::size, 2900);
        assert_eq!(file::ids::read, 2901);
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            FileError::PastEnd { size: 10 }.to_string(),
            "offset past the end (10 bytes)"
        );
        assert_eq!(
            FileError::TooLong { max: MAX_READ }.to_string(),
            "read longer than 4096 bytes"
        );
    }
}

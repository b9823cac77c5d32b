//! Devices: the drivers live in the kernel behind ports, as in OSF MK (Mach's device
//! interface). A privileged task gets the *device master* port (bootstrap holds it through
//! the host port and hands it only to the programs its manifest marks `devices = true`);
//! [`device_master::Client::open`] turns a device's name into a *device port*, on which
//! [`device`] reads and writes whole pages as out-of-line memory.
//!
//! - Reads and writes move page runs: the device transfers straight into or out of the
//!   pages (DMA, no copy); physically discontiguous pages go as one device operation with a
//!   descriptor each.
//! - Every reply comes when the device has finished: a `write`'s reply means the data is on
//!   the disk. A client may keep several requests in flight by sending them with an
//!   [`device::AsyncClient`] and receiving the replies where it likes (the disk default pager
//!   does), or call and wait (the ordinary [`device::Client`]).
//! - Bad requests get a [`DeviceError`]; nothing is transferred then.

use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "transport"))]
use crate::interface::{Decoder, Encoder, Malformed, Pages, Wire};
#[cfg(any(test, feature = "transport"))]
use crate::ipc::message::MessageError;

/// The message ids, for code that speaks the interface without the generated stubs (the
/// kernel); the same as the generated ones (a test checks).
pub mod ids {
    pub const OPEN: u32 = 2600;
    pub const READ: u32 = 2700;
    pub const WRITE: u32 = 2701;
    pub const GET_STATUS: u32 = 2702;
}

/// The name the first disk is opened by; the next ones are `disk1`, `disk2` ...
pub const FIRST_DISK: &str = "disk0";

/// The name-service name of the device master port (answered only to privileged programs).
pub const DEVICE_MASTER_NAME: &str = "device_master";

/// The most bytes one `read` or `write` moves.
pub const MAX_TRANSFER: u64 = 64 * 4096;

/// Why a device request was refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceError {
    /// `open`: no device has that name.
    NoSuchDevice,
    /// The offset is not a multiple of the device's block size.
    BadOffset,
    /// The length is zero, not whole pages, or more than [`MAX_TRANSFER`].
    BadSize,
    /// The transfer would run past the device's end.
    OutOfRange,
    /// A write to a read-only device.
    ReadOnly,
    /// A page of the region to write is not in memory (touch it first).
    NotResident,
    /// The kernel has no memory for the request now; it may be tried again.
    NoMemory,
    /// The device reported an error; nothing can be said of the data it touched.
    Io,
}

/// The first value of an encoded [`Written`]: which variant follows.
pub mod written_tag {
    /// [`Written::Done`](super::Written::Done).
    pub const DONE: u8 = 0;
    /// [`Written::Failed`](super::Written::Failed): the error, then one out-of-line region.
    pub const FAILED: u8 = 1;
}

/// The answer to `write`.
#[cfg(any(test, feature = "transport"))]
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// The data is on the device; the pages are gone (the kernel freed them).
    Done,
    /// The write was refused or failed: the pages come back, unchanged, so nothing is lost.
    Failed(DeviceError, Pages),
}

#[cfg(any(test, feature = "transport"))]
impl Wire for Written {
    type Give<'a> = Written;

    fn encode(value: Written, encoder: &mut Encoder<'_>) -> Result<(), MessageError> {
        match value {
            Written::Done => encoder.data(&written_tag::DONE),
            Written::Failed(error, pages) => {
                encoder.data(&(written_tag::FAILED, error))?;
                Pages::encode(pages, encoder)
            }
        }
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Written, Malformed> {
        match decoder.data::<u8>()? {
            written_tag::DONE => Ok(Written::Done),
            written_tag::FAILED => {
                let error = decoder.data::<DeviceError>()?;
                Ok(Written::Failed(error, Pages::decode(decoder)?))
            }
            _ => Err(Malformed),
        }
    }
}

/// What `get_status` tells of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Its size in bytes.
    pub size: u64,
    /// The unit of offsets, in bytes (512 for a virtio disk).
    pub block_size: u32,
    /// Whether writes are refused.
    pub read_only: bool,
    /// The most bytes one request moves.
    pub max_transfer: u64,
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// Device master → device ports (ids 2600..), on the device master port.
    pub mod device_master = 2600 {
        type Error = DeviceError;

        /// Opens the device called `name` (such as [`FIRST_DISK`](super::FIRST_DISK)).
        ///
        /// Reply: a send right to its device port, or `NoSuchDevice`.
        fn open(name: String) -> SendRight;
    }
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// One device's requests (ids 2700..), on its device port.
    pub mod device = 2700 {
        type Error = DeviceError;

        /// Reads `length` bytes (whole pages, at most `MAX_TRANSFER`) from byte `offset` (a
        /// multiple of the block size).
        ///
        /// Reply, once the device is done: the data in new pages of the caller's, or
        /// `BadOffset`, `BadSize`, `OutOfRange`, `NoMemory`, `Io`.
        fn read(offset: u64, length: u64) -> Pages;

        /// Writes `data` (whole pages, resident, at most `MAX_TRANSFER`) at byte `offset` (a
        /// multiple of the block size). The pages move to the kernel, which writes from them
        /// and frees them.
        ///
        /// Reply, once the data is on the device: [`Written::Done`](super::Written::Done);
        /// or, when the write is refused (`BadOffset`, `BadSize`, `OutOfRange`, `ReadOnly`,
        /// `NotResident`, `NoMemory`) or fails (`Io`), [`Written::Failed`](super::Written::Failed)
        /// with the pages given back.
        fn write(offset: u64, data: Pages) -> Written;

        /// The device's size, block size and limits.
        ///
        /// Reply: a [`DeviceStatus`](super::DeviceStatus).
        fn get_status() -> DeviceStatus;
    }
}

/// Transfers on one device started without waiting, each answered on a reply port of the
/// caller's with `device.read`'s or `device.write`'s reply (what [`device::AsyncClient`]
/// sends). In a program they are `device` messages; built into a collocated server (libipc's
/// `collocated` transport) they are calls of the kernel ([`crate::sys::device_transfer`]):
/// no message is built, the kernel starts the transfer at once.
#[cfg(feature = "transport")]
pub struct Transfers {
    client: device::AsyncClient,
}

#[cfg(feature = "transport")]
impl Transfers {
    /// Transfers on the device whose port `device` is a send right to.
    pub fn new(device: crate::interface::SendRight) -> Self {
        Transfers {
            client: device::AsyncClient::new(device),
        }
    }

    /// Starts `device.read` of `length` bytes at `offset`, answered on `reply`.
    #[inline]
    pub fn read(
        &mut self,
        reply: crate::ipc::Name,
        offset: u64,
        length: u64,
    ) -> Result<(), crate::interface::TransportError> {
        #[cfg(all(feature = "collocated", target_os = "none"))]
        {
            let device = self.client.transport().server().name();
            // SAFETY: a read takes none of our memory.
            unsafe { crate::sys::device_transfer(device, reply, offset, 0, length, false) }
                .map_err(crate::interface::TransportError::Refused)
        }
        #[cfg(not(all(feature = "collocated", target_os = "none")))]
        self.client.read(reply, offset, length)
    }

    /// Starts `device.write` of `data` at `offset`, answered on `reply`. The pages go to the
    /// kernel (a refused write gives them back in its reply); when the write cannot be
    /// started at all (`Err`) they are dropped, as a failed send drops them.
    #[inline]
    pub fn write(
        &mut self,
        reply: crate::ipc::Name,
        offset: u64,
        data: Pages,
    ) -> Result<(), crate::interface::TransportError> {
        #[cfg(all(feature = "collocated", target_os = "none"))]
        {
            let device = self.client.transport().server().name();
            let (address, length) = (data.address(), data.len());
            // SAFETY: the pages are `data`'s, which owns them and is forgotten below.
            unsafe { crate::sys::device_transfer(device, reply, offset, address, length, true) }
                .map_err(crate::interface::TransportError::Refused)?;
            // The pages left our map with the call: nothing to unmap.
            let _ = data.into_raw();
            Ok(())
        }
        #[cfg(not(all(feature = "collocated", target_os = "none")))]
        self.client.write(reply, offset, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_brings_its_pages_back() {
        use crate::ipc::message::{MessageBuffer, Received};
        let mut body = [0u8; 64];
        let mut encoder = Encoder::new(&mut body);
        // SAFETY: on the host `Pages` only records its release; nothing is mapped.
        let pages = unsafe { Pages::from_raw(0x20_0000, 0x4000) };
        Written::encode(Written::Failed(DeviceError::Io, pages), &mut encoder).unwrap();
        let message = encoder.message(9).unwrap();
        let mut buffer = MessageBuffer::new();
        let size = message.encode(&mut buffer.0).unwrap();
        let received = Received::parse(&buffer.0, size).unwrap();
        let mut decoder = Decoder::new(&received);
        let Written::Failed(error, pages) = Written::decode(&mut decoder).unwrap() else {
            panic!("a failure expected")
        };
        decoder.finish().unwrap();
        assert_eq!(error, DeviceError::Io);
        assert_eq!((pages.address(), pages.len()), (0x20_0000, 0x4000));
        let _ = pages.into_raw();
    }

    #[test]
    fn ids_match_the_generated_ones() {
        assert_eq!(device_master::ids::open, ids::OPEN);
        assert_eq!(device::ids::read, ids::READ);
        assert_eq!(device::ids::write, ids::WRITE);
        assert_eq!(device::ids::get_status, ids::GET_STATUS);
    }
}

//! [`Pages`]: whole pages of a task's memory that travel out of line, moved (never copied)
//! from sender to receiver: how pagers and the kernel pass page contents.

use super::rights;
use super::wire::{Decoder, Encoder, Malformed, Wire};
use crate::abi::syscall::PAGE_SIZE;
use crate::ipc::message::MessageError;

/// A page-aligned region of this task's memory that it owns: allocated here, or received in
/// a message. Sending it (as a routine's argument or result) moves the pages to the receiver
/// and unmaps them here, with no copy; dropping it unmaps them.
#[derive(Debug, PartialEq, Eq)]
pub struct Pages {
    address: u64,
    size: u64,
}

impl Pages {
    /// No pages.
    pub const fn empty() -> Pages {
        Pages {
            address: 0,
            size: 0,
        }
    }

    /// `size` bytes (rounded up to whole pages) of fresh zero-filled memory.
    #[cfg(target_os = "none")]
    pub fn allocate(size: u64) -> Result<Pages, crate::abi::KernReturn> {
        let size = size.next_multiple_of(PAGE_SIZE);
        if size == 0 {
            return Ok(Pages::empty());
        }
        let address = crate::sys::vm_allocate(0, size, crate::abi::syscall::VM_ANYWHERE)?;
        Ok(Pages { address, size })
    }

    /// Takes ownership of `[address, address + size)`.
    ///
    /// # Safety
    /// The range must be page-aligned whole pages of this task's memory that nothing else
    /// uses or will unmap: the `Pages` unmaps it when dropped or sent.
    pub const unsafe fn from_raw(address: u64, size: u64) -> Pages {
        Pages { address, size }
    }

    /// Gives up ownership: the range is the caller's again.
    pub fn into_raw(self) -> (u64, u64) {
        let raw = (self.address, self.size);
        core::mem::forget(self);
        raw
    }

    pub fn address(&self) -> u64 {
        self.address
    }

    /// Bytes (a multiple of the page size).
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The pages' bytes.
    #[cfg(target_os = "none")]
    pub fn as_slice(&self) -> &[u8] {
        if self.size == 0 {
            return &[];
        }
        // SAFETY: the range is mapped memory of this task that this value owns.
        unsafe { core::slice::from_raw_parts(self.address as *const u8, self.size as usize) }
    }

    /// The pages' bytes, to fill in.
    #[cfg(target_os = "none")]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.size == 0 {
            return &mut [];
        }
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.address as *mut u8, self.size as usize) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        rights::release_memory(self.address, self.size as u32);
    }
}

impl Wire for Pages {
    type Give<'a> = Pages;

    fn encode(value: Pages, encoder: &mut Encoder<'_>) -> Result<(), MessageError> {
        let size = u32::try_from(value.size).map_err(|_| MessageError::TooLarge)?;
        encoder.memory(value.address, size, true)?;
        // The pages leave with the message (or come back where they were if the send fails).
        core::mem::forget(value);
        Ok(())
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Pages, Malformed> {
        match decoder.memory()? {
            (_, 0) => Ok(Pages::empty()),
            (0, _) => Err(Malformed),
            (address, size) if address % PAGE_SIZE != 0 => {
                rights::release_memory(address, size);
                Err(Malformed)
            }
            (address, size) => Ok(Pages {
                address,
                size: u64::from(size),
            }),
        }
    }
}

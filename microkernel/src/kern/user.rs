//! User memory as the kernel sees it: addresses and lengths from a task are allegations
//! ([`UserSlice`]) until validated, and are then read and written through the task's own
//! address space (its map, faulting pages in as needed) and the direct map, never by touching
//! user addresses. A bad address is an error code for the caller, never a kernel fault.

use crate::base::object_table::Table;
use crate::vm::address_space::{AddressSpace, FaultError};
use crate::vm::kernel_space::phys_to_virt;
use crate::vm::map::{Protection, PAGE_SIZE};
pub use crate::vm::notes::{note_absent, take_absent, Absent};
use crate::vm::object::VmObject;
use libipc::abi::syscall::USER_END;
use libipc::abi::KernReturn;

/// A range of user memory as a task named it: unchecked.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    address: u64,
    len: u64,
}

/// A user range that lies inside user space and is no longer than its caller allows.
#[derive(Clone, Copy, Debug)]
pub struct ValidUserSlice {
    address: u64,
    len: usize,
}

impl UserSlice {
    pub fn new(address: u64, len: u64) -> UserSlice {
        UserSlice { address, len }
    }

    /// Checks the range: at most `max_len` bytes (else `InvalidArgument`), inside user space
    /// without wrapping (else `InvalidAddress`). During a collocated server's call the range
    /// may be kernel memory too: only the server's own space reaches it directly (see
    /// `each_page`), any other is walked as always and finds nothing there.
    pub fn validate(self, max_len: usize) -> Result<ValidUserSlice, KernReturn> {
        if self.len > max_len as u64 {
            return Err(KernReturn::InvalidArgument);
        }
        let end = self
            .address
            .checked_add(self.len)
            .ok_or(KernReturn::InvalidAddress)?;
        if end > USER_END && !COLLOCATED_CALL.load(core::sync::atomic::Ordering::Relaxed) {
            return Err(KernReturn::InvalidAddress);
        }
        Ok(ValidUserSlice {
            address: self.address,
            len: self.len as usize,
        })
    }
}

impl ValidUserSlice {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The first `at` bytes and the rest (`at` at most the length).
    pub fn split_at(self, at: usize) -> (ValidUserSlice, ValidUserSlice) {
        let at = at.min(self.len);
        (
            ValidUserSlice {
                address: self.address,
                len: at,
            },
            ValidUserSlice {
                address: self.address + at as u64,
                len: self.len - at,
            },
        )
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether a collocated server's call is running (`syscall::dispatch_collocated`): its
/// addresses are kernel memory. One kernel lock, one CPU: one flag.
static COLLOCATED_CALL: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Runs `f` as a collocated server's call: ranges it validates may lie in kernel memory.
pub fn as_collocated_call<R>(f: impl FnOnce() -> R) -> R {
    use core::sync::atomic::Ordering;
    let outer = COLLOCATED_CALL.swap(true, Ordering::Relaxed);
    let result = f();
    COLLOCATED_CALL.store(outer, Ordering::Relaxed);
    result
}

fn fault_code(e: FaultError, access: Protection) -> KernReturn {
    match e {
        FaultError::NotMapped | FaultError::Protection => KernReturn::InvalidAddress,
        FaultError::OutOfMemory => KernReturn::ResourceShortage,
        FaultError::MemoryError => KernReturn::MemoryError,
        FaultError::Absent {
            object,
            offset,
            strategy,
        } => {
            crate::vm::notes::note_absent(Absent {
                object,
                offset,
                strategy,
                access,
            });
            KernReturn::MemoryError
        }
    }
}

/// Calls `f(frame offset pointer, chunk range in the slice)` page by page. A collocated
/// server's range in the kernel half is its kernel memory (its heap and stack): `f` is called
/// once, with the slice's own address (the server is kernel code, trusted as the kernel is);
/// its user-range memory (what it allocated, or received out of line) is its map's, as for
/// any task.
fn each_page(
    space: &mut AddressSpace,
    objects: &mut Table<VmObject>,
    slice: ValidUserSlice,
    access: Protection,
    mut f: impl FnMut(*mut u8, core::ops::Range<usize>),
) -> Result<(), KernReturn> {
    if slice.address.saturating_add(slice.len as u64) > USER_END {
        if space.is_kernel_memory() && slice.address >= USER_END {
            // A collocated server's own memory in the kernel half (its heap, its stack):
            // the kernel's, named by its own references.
            f(slice.address as *mut u8, 0..slice.len);
            return Ok(());
        }
        // Kernel memory named in a collocated server's call, for another task's space (or
        // a range across the boundary).
        return Err(KernReturn::InvalidAddress);
    }
    let mut done = 0;
    while done < slice.len {
        let address = slice.address + done as u64;
        let page = address & !(PAGE_SIZE - 1);
        let in_page = (address - page) as usize;
        let chunk = (PAGE_SIZE as usize - in_page).min(slice.len - done);
        let frame = space
            .frame_for(objects, page, access)
            .map_err(|e| fault_code(e, access))?;
        f(
            (phys_to_virt(frame) as *mut u8).wrapping_add(in_page),
            done..done + chunk,
        );
        done += chunk;
    }
    Ok(())
}

/// Copies the user bytes of `slice` into `buffer` (which must be `slice.len()` long).
pub fn copy_in(
    space: &mut AddressSpace,
    objects: &mut Table<VmObject>,
    slice: ValidUserSlice,
    buffer: &mut [u8],
) -> Result<(), KernReturn> {
    debug_assert_eq!(buffer.len(), slice.len);
    each_page(space, objects, slice, Protection::READ, |source, range| {
        // SAFETY: `source` points into a frame of the task's, mapped by the direct map, with
        // `range.len()` bytes left in the page, or (a collocated server's space) at the
        // server's own memory of that length; `buffer` is kernel memory distinct from it.
        unsafe {
            core::ptr::copy_nonoverlapping(source, buffer[range.clone()].as_mut_ptr(), range.len())
        }
    })
}

/// Copies `data` to the user range `slice` (which must be `data.len()` long).
pub fn copy_out(
    space: &mut AddressSpace,
    objects: &mut Table<VmObject>,
    slice: ValidUserSlice,
    data: &[u8],
) -> Result<(), KernReturn> {
    debug_assert_eq!(data.len(), slice.len);
    each_page(space, objects, slice, Protection::WRITE, |target, range| {
        // SAFETY: as in `copy_in`, with the task's page writable.
        unsafe { core::ptr::copy_nonoverlapping(data[range.clone()].as_ptr(), target, range.len()) }
    })
}

/// Faults in every page of `slice` for writing, so a later `copy_out` cannot fail halfway.
pub fn prepare_write(
    space: &mut AddressSpace,
    objects: &mut Table<VmObject>,
    slice: ValidUserSlice,
) -> Result<(), KernReturn> {
    each_page(space, objects, slice, Protection::WRITE, |_, _| {})
}

/// Copies the user bytes of `slice` into uninitialised kernel memory (a message buffer that
/// need not be cleared first); returns the now initialised bytes.
pub fn copy_in_uninit<'b>(
    space: &mut AddressSpace,
    objects: &mut Table<VmObject>,
    slice: ValidUserSlice,
    buffer: &'b mut [core::mem::MaybeUninit<u8>],
) -> Result<&'b mut [u8], KernReturn> {
    let buffer = &mut buffer[..slice.len];
    let target = buffer.as_mut_ptr() as *mut u8;
    each_page(space, objects, slice, Protection::READ, |source, range| {
        // SAFETY: `source` has `range.len()` readable bytes left in its page (see `copy_in`);
        // `target + range.start` lies inside `buffer`, which is distinct kernel memory.
        unsafe { core::ptr::copy_nonoverlapping(source, target.add(range.start), range.len()) }
    })?;
    // SAFETY: every byte of `buffer` was written above (the pages cover the whole slice).
    Ok(unsafe { core::slice::from_raw_parts_mut(target, slice.len) })
}

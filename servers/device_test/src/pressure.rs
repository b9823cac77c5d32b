//! With little memory and zpager as the default pager (`init_arg=3 mem=32M`): pages read
//! from the disk are memory like any other, paged out when memory runs short and paged back
//! in intact; a read the kernel has no frames for is refused with `NoMemory` and works when
//! tried again.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libipc::device::{DeviceError, MAX_TRANSFER};
use libipc::interface::{Pages, RemoteError};
use libipc::sys;

use crate::cases::{check, err, pause, word, Disk, PAGE};

/// Read and kept: more than the machine's memory (`mem=32M`).
const HELD_BYTES: u64 = 40 << 20;

/// Fills `bytes` (for disk byte `offset` on) with one word per page, repeated: compressible,
/// so that zpager holds a lot of them in little memory.
fn fill_compressible(bytes: &mut [u8], offset: u64) {
    for (p, page) in bytes.chunks_exact_mut(PAGE as usize).enumerate() {
        let w = word(17, offset + p as u64 * PAGE).to_le_bytes();
        for chunk in page.chunks_exact_mut(8) {
            chunk.copy_from_slice(&w);
        }
    }
}

/// The number of words in `bytes` (from disk byte `offset`) that are not as
/// [`fill_compressible`] wrote them.
fn wrong_words(bytes: &[u8], offset: u64) -> u64 {
    let mut wrong = 0;
    for (p, page) in bytes.chunks_exact(PAGE as usize).enumerate() {
        let w = word(17, offset + p as u64 * PAGE);
        for chunk in page.chunks_exact(8) {
            wrong += u64::from(u64::from_le_bytes(chunk.try_into().expect("8 bytes")) != w);
        }
    }
    wrong
}

pub fn pages_read_from_the_disk_are_paged_out_and_back() -> Result<(), String> {
    let mut disk = Disk::open()?;
    let count = HELD_BYTES / MAX_TRANSFER;
    for i in 0..count {
        let offset = i * MAX_TRANSFER;
        let mut pages = Pages::allocate(MAX_TRANSFER).map_err(err("allocate"))?;
        fill_compressible(pages.as_mut_slice(), offset);
        disk.write(offset, pages)?;
    }
    let before = sys::vm_statistics().map_err(err("vm_statistics"))?;
    let mut held = Vec::new();
    let mut refusals = 0u64;
    for i in 0..count {
        let offset = i * MAX_TRANSFER;
        // Short of frames, the kernel refuses (the pageout daemon is making room): again.
        let pages = loop {
            match disk.client.read(offset, MAX_TRANSFER) {
                Ok(pages) => break pages,
                Err(RemoteError::Server(DeviceError::NoMemory)) if refusals < 2000 => {
                    refusals += 1;
                    pause(5)?;
                }
                Err(e) => {
                    return Err(format!(
                        "read {i} of {count} at {offset:#x}: {e} (after {refusals} refusals \
                         for no memory)"
                    ))
                }
            }
        };
        held.push((offset, pages));
    }
    let mut wrong = 0;
    for (offset, pages) in &held {
        wrong += wrong_words(pages.as_slice(), *offset);
    }
    drop(held);
    let after = sys::vm_statistics().map_err(err("vm_statistics"))?;
    let (pageouts, pageins) = (
        after.pageouts - before.pageouts,
        after.pageins - before.pageins,
    );
    libipc::println!(
        "device_test: {} MiB read and kept: {pageouts} pages out, {pageins} pages in, \
         {refusals} reads refused for no memory, {wrong} words wrong",
        HELD_BYTES >> 20
    );
    check!(wrong == 0, "{wrong} words read back wrong");
    check!(
        pageouts > 0 && pageins > 0,
        "{pageouts} pages out, {pageins} in: no pressure"
    );
    Ok(())
}

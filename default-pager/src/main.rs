//! `default_pager`: the disk-backed default pager. Anonymous memory the kernel pages out goes
//! to a virtio disk in clusters (OSF's design: paging segments with used-cluster bitmaps, a
//! cluster map per object; the logic is this crate's library), through the kernel's device
//! port, several transfers in flight.
//!
//! Start: its first start argument is a send right to a name service. It looks up the device
//! master port there (bootstrap answers only the programs its manifest marks `devices`),
//! opens `disk0` and lays its paging segments out by the kernel's `swap=` option (default:
//! the whole disk in clusters of 8 pages). Without a disk it exits with status 0 and zpager
//! stays the default pager. Then it registers as the default pager and serves:
//!
//! - `data_return`: the pages' cluster gets a place on disk (first fit from the segment's
//!   hint) and one device write takes them there; the reply (`Stored`) goes once the data is
//!   on the disk. A full disk or a failed write refuses the return with the pages (the kernel
//!   keeps them dirty): nothing is lost.
//! - `data_request`: one device read for the run of present pages at the request's start, or
//!   "unavailable" (zero fill) for pages never written, or an error for a cluster whose write
//!   failed; a read of pages whose write is in flight waits for it.
//! - `terminate`: the object's clusters are freed.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    default_pager::serve::main(args)
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}

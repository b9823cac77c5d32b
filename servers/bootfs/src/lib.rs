//! bootfs's library: the pager and file server ([`serve`]) and the file interface over the
//! boot archive (`files`), built into the program and into the kernel (collocated).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(target_os = "none")]
mod files;
#[cfg(target_os = "none")]
pub mod serve;

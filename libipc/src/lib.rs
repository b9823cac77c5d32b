//! `libipc`: what servers are written against: the ABI shared with the kernel, and the runtime.
//!
//! [`abi`] is the small, dependency-free part that the kernel links too: error codes, system
//! call numbers, the boot archive format and the guest's report protocol (how the kernel tells
//! the host what happened).
//!
//! With the `runtime` feature, built for `target_os = "none"`, it is also the user runtime:
//! [`program!`] makes a crate a user program (entry point, panic handler, heap), [`sys`] wraps
//! the system calls and [`print!`]/[`println!`] write to the kernel console. The kernel never
//! enables `runtime`.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod ipc;

#[cfg(any(test, feature = "runtime"))]
pub mod rt;

#[cfg(all(feature = "runtime", target_os = "none"))]
pub mod sys;

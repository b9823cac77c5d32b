//! `libipc`: what servers are written against; for now the ABI shared with the kernel.
//!
//! [`abi`] is the small, dependency-free part that the kernel links too: error codes and the
//! guest's report protocol (how the kernel tells the host what happened).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;

//! What the kernel fuzzer is made of besides its calls, host-tested: its arguments, its
//! random numbers, and the census of kernel resources whose return it checks between rounds.
#![cfg_attr(not(test), no_std)]

pub mod args;
pub mod census;
pub mod rng;

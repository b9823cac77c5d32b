//! The microkernel: a Mach-style kernel that keeps only tasks, threads, scheduling, ports and
//! the mechanism of virtual memory; pagers in user space decide where pages live.
//!
//! Built for `x86_64-unknown-none` this is the kernel image. Built for the host it is an
//! empty program, so that `cargo test` unit-tests the pure parts (boot-information
//! normalisation, command line, frame allocator, heap, page-table walker) on the host.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

pub mod arch;
pub mod base;
pub mod boot;
pub mod colloc;
pub mod device;
pub mod ipc;
pub mod kern;
#[cfg(test)]
mod layers;
pub mod vm;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("microkernel: this is the kernel; build and boot it with `cargo image run`");
    std::process::exit(2);
}

//! x86_64: the only architecture. Boot entry, CPU tables, traps, page tables, the local APIC.
//!
//! Only `paging` and `icr` are plain logic and also build on the host (for their unit
//! tests); the rest is machine code and exists only in the kernel build.

pub mod icr;
pub mod paging;

#[cfg(target_os = "none")]
pub mod apic;
#[cfg(target_os = "none")]
pub mod cpu;
#[cfg(target_os = "none")]
pub mod entry;
#[cfg(target_os = "none")]
pub mod gdt;
#[cfg(target_os = "none")]
pub mod idt;
#[cfg(target_os = "none")]
pub mod legacy;
#[cfg(target_os = "none")]
pub mod percpu;
#[cfg(target_os = "none")]
pub mod recover;
#[cfg(target_os = "none")]
pub mod serial;
#[cfg(target_os = "none")]
pub mod smp;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod tlb;
#[cfg(target_os = "none")]
pub mod trap;

#[cfg(target_os = "none")]
pub use cpu::{exit_qemu, halt_forever, poll_for_interrupt, rdtsc, wait_for_interrupt};

//! The kernel proper: the `Kernel` and every path that uses more than one subsystem — system
//! calls, `mach_msg` and its fast path, the kernel's receivers, faults and the memory-object
//! protocol, pageout, tasks and threads, scheduling and waits, start-up, the console, panics
//! and the in-kernel self-tests.
//!
//! The subsystems below (`vm`, `ipc`, `device`) keep their own state and know nothing of
//! `kern`; `kern` is where they meet (`base`'s module doc gives the layers).

#[cfg(target_os = "none")]
pub mod colloc;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod cpus;
#[cfg(target_os = "none")]
pub mod device_port;
#[cfg(target_os = "none")]
pub mod entry;
#[cfg(target_os = "none")]
pub mod fast_path;
#[cfg(target_os = "none")]
pub mod ipc_calls;
#[cfg(target_os = "none")]
pub mod kernel;
#[cfg(target_os = "none")]
pub mod ktest;
#[cfg(target_os = "none")]
pub mod loader;
#[cfg(target_os = "none")]
pub mod mach_msg;
pub mod memory;
#[cfg(target_os = "none")]
pub mod panic;
#[cfg(target_os = "none")]
pub mod pmap_collect;
pub mod program;
#[cfg(test)]
mod program_props;
#[cfg(target_os = "none")]
pub mod quota;
#[cfg(target_os = "none")]
pub mod receiver;
#[cfg(target_os = "none")]
pub mod rights;
#[cfg(target_os = "none")]
pub mod sched;
#[cfg(target_os = "none")]
pub mod startup;
pub mod swapper;
#[cfg(target_os = "none")]
pub mod swapper_calls;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod task;
#[cfg(target_os = "none")]
pub mod thread;
#[cfg(target_os = "none")]
pub mod thread_calls;
pub mod timer_wheel;
#[cfg(target_os = "none")]
pub mod user;

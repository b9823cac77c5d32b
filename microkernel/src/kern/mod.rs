//! The kernel proper: console and logging, start-up, panics and the in-kernel self-tests.

#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod entry;
#[cfg(target_os = "none")]
pub mod kernel;
#[cfg(target_os = "none")]
pub mod ktest;
#[cfg(target_os = "none")]
pub mod loader;
pub mod object_table;
#[cfg(target_os = "none")]
pub mod panic;
pub mod program;
#[cfg(test)]
mod program_props;
pub mod queue;
#[cfg(target_os = "none")]
pub mod quota;
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
pub mod timer_wheel;
#[cfg(target_os = "none")]
pub mod user;
#[cfg(target_os = "none")]
pub mod wait;

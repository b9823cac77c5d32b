//! The kernel proper: console and logging, start-up, panics and the in-kernel self-tests.

#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod ktest;
#[cfg(target_os = "none")]
pub mod panic;
#[cfg(target_os = "none")]
pub mod startup;

//! The kernel/user ABI: one place for every number both sides must agree on.

pub mod archive;
pub mod body;
pub mod kern_return;
pub mod message;
pub mod report;
pub mod swapper;
pub mod syscall;

pub use kern_return::KernReturn;

#[cfg(test)]
mod archive_props;
#[cfg(test)]
mod message_props;

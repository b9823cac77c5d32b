//! The kernel/user ABI: one place for every number both sides must agree on.

pub mod kern_return;
pub mod report;

pub use kern_return::KernReturn;

//! Architecture support. The rest of the kernel uses only what `arch` re-exports here.

pub mod x86_64;

pub use self::x86_64::*;

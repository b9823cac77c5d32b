//! The kernel's decoders for the fuzz targets, compiled from the kernel's own sources: the
//! microkernel is a binary crate, so the modules that decode untrusted input (and the few
//! they use) are included here by path, unchanged, at the paths they have in the kernel.
#![allow(dead_code)]

extern crate alloc;

pub use arbitrary::{Result, Unstructured};
use libfuzzer_sys::arbitrary;

/// Boot information, the command line, PVH start info and Limine responses.
#[path = "../../microkernel/src/boot/mod.rs"]
pub mod boot;

/// ACPI tables and device requests (and the device table they are checked against).
#[path = "../../microkernel/src/device/mod.rs"]
pub mod device;

#[path = "../../microkernel/src/ipc"]
pub mod ipc {
    /// Reading a kernel receiver's message body.
    pub mod request;
}

#[path = "../../microkernel/src/kern"]
pub mod kern {
    /// The program (ELF) checker.
    pub mod program;
    pub mod memory {
        /// Pagers' calls and answers.
        pub mod pager_requests;
    }
}

#[path = "../../microkernel/src/vm"]
pub mod vm {
    /// Page size and protections (what the program checker uses of the address map).
    pub mod map;
}

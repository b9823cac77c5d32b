//! Virtual memory. For now: physical frames, the kernel's own address space (direct map and
//! kernel image) and the kernel heap. Maps, objects and pagers come with the VM issue.

pub mod frame_allocator;
pub mod heap;
#[cfg(target_os = "none")]
pub mod kernel_space;

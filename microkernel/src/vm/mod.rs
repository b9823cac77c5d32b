//! Virtual memory: physical frames, the kernel's own address space and heap, and Mach's
//! `vm_map` and `vm_object` (anonymous zero-fill and physical objects for now; pagers, shadow
//! chains and `vm_page` records come with the VM and pager issues).

#[cfg(target_os = "none")]
pub mod address_space;
pub mod cluster;
pub mod frame_allocator;
pub mod heap;
pub mod kernel_map;
#[cfg(target_os = "none")]
pub mod kernel_space;
pub mod map;
#[cfg(target_os = "none")]
pub mod notes;
pub mod object;
pub mod page;
#[cfg(target_os = "none")]
pub mod pmap;
#[cfg(target_os = "none")]
pub mod shared_text;
pub mod statistics;
#[cfg(target_os = "none")]
pub mod transit;

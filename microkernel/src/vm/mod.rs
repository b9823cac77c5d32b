//! Virtual memory: physical frames, the kernel's own address space and heap, and Mach's
//! `vm_map` and `vm_object` (anonymous zero-fill and physical objects for now; pagers, shadow
//! chains and `vm_page` records come with the VM and pager issues).

#[cfg(target_os = "none")]
pub mod address_space;
#[cfg(target_os = "none")]
pub mod calls;
pub mod cluster;
pub mod frame_allocator;
pub mod heap;
pub mod kernel_map;
#[cfg(target_os = "none")]
pub mod kernel_space;
pub mod map;
pub mod object;
pub mod page;
#[cfg(target_os = "none")]
pub mod paged_collapse;
#[cfg(target_os = "none")]
pub mod pageout;
#[cfg(target_os = "none")]
pub mod pager;
pub mod pager_requests;
#[cfg(test)]
mod pager_requests_props;
#[cfg(target_os = "none")]
pub mod pmap;
pub mod statistics;
#[cfg(target_os = "none")]
pub mod transit;

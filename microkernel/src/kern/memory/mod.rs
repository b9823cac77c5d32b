//! The kernel's side of virtual memory: faults that wait for pagers, the memory-object
//! protocol ([`pager`]), pageout ([`pageout`]), collapsing paged objects, and the `vm_*`
//! calls ([`calls`]); `crate::vm` is the mechanism they drive.
//!
//! Its state is [`Vm`]: every memory object, the pager side of each pager-backed one, and
//! who the default pager, the program pager and the backing store are. Only this module and
//! its children touch `Vm`'s fields; the rest of the kernel goes through its methods.

#[cfg(target_os = "none")]
pub mod calls;
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
mod state;
#[cfg(target_os = "none")]
pub use state::Vm;

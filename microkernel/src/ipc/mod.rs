//! Mach IPC: ports, rights and name spaces, messages, port sets and notifications.

pub mod space;

#[cfg(target_os = "none")]
pub mod message;
#[cfg(target_os = "none")]
pub mod port;
#[cfg(target_os = "none")]
pub mod port_set;
#[cfg(target_os = "none")]
mod state;
#[cfg(target_os = "none")]
pub use state::{Ipc, PortHint};
pub mod request;
#[cfg(test)]
mod request_props;

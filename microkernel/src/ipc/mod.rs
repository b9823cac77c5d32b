//! Mach IPC: ports, rights and name spaces, messages, port sets and notifications.

pub mod space;

#[cfg(target_os = "none")]
pub mod calls;

#[cfg(target_os = "none")]
pub mod device_port;
#[cfg(target_os = "none")]
pub mod fast_path;
#[cfg(target_os = "none")]
pub mod mach_msg;
#[cfg(target_os = "none")]
pub mod message;
#[cfg(target_os = "none")]
pub mod port;
#[cfg(target_os = "none")]
pub mod port_set;
#[cfg(target_os = "none")]
pub mod receiver;
pub mod request;
#[cfg(test)]
mod request_props;
#[cfg(target_os = "none")]
pub mod rights;

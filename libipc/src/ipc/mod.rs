//! Ports and messages for user programs: message layout (host-tested), and with the runtime,
//! owned port rights, tasks and the `mach_msg` transport.

pub mod message;
#[cfg(test)]
mod message_props;
#[cfg(all(feature = "transport", target_os = "none"))]
pub mod port;
#[cfg(all(feature = "transport", target_os = "none"))]
pub mod transport;

pub use message::{MessageBuffer, MessageError, Name, OutMessage, Received};
#[cfg(all(feature = "transport", target_os = "none"))]
pub use port::{PortSet, ReceiveRight, SendOnceRight, SendRight, Task};
#[cfg(all(feature = "transport", target_os = "none"))]
pub use transport::{call, receive, reply_and_receive, send, send_message, IpcError};

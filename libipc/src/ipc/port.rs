//! Port rights as owned values: dropping one gives the right back to the kernel.

use super::message::Name;
use crate::abi::syscall::{PORT_KIND_RECEIVE, PORT_KIND_SET};
use crate::abi::KernReturn;
use crate::sys;

/// A receive right: the port's message queue is the holder's. Dropping it destroys the port
/// (its senders then hold dead names).
#[derive(Debug)]
pub struct ReceiveRight(Name);

/// A send right (one user reference). Dropping it releases the reference.
#[derive(Debug)]
pub struct SendRight(Name);

/// A send-once right: good for one message (typically a reply). Dropping it unused sends the
/// port a send-once notification.
#[derive(Debug)]
pub struct SendOnceRight(Name);

/// A port set: receive from all its member ports at once.
#[derive(Debug)]
pub struct PortSet(Name);

macro_rules! raw_name {
    ($t:ident) => {
        impl $t {
            /// Takes ownership of the right under `name` (e.g. one received in a message).
            pub fn from_raw(name: Name) -> Self {
                $t(name)
            }

            pub fn name(&self) -> Name {
                self.0
            }

            /// Gives up ownership without releasing the right.
            pub fn into_raw(self) -> Name {
                let name = self.0;
                core::mem::forget(self);
                name
            }
        }
    };
}

raw_name!(ReceiveRight);
raw_name!(SendRight);
raw_name!(SendOnceRight);
raw_name!(PortSet);

impl ReceiveRight {
    /// A new port.
    pub fn allocate() -> Result<Self, KernReturn> {
        sys::port_allocate(PORT_KIND_RECEIVE).map(ReceiveRight)
    }

    /// A send right to this port (under the same name).
    pub fn make_send(&self) -> Result<SendRight, KernReturn> {
        sys::port_insert_send(self.0).map(|()| SendRight(self.0))
    }
}

impl Drop for ReceiveRight {
    fn drop(&mut self) {
        let _ = sys::port_destroy(self.0);
    }
}

impl Drop for SendRight {
    fn drop(&mut self) {
        let _ = sys::port_deallocate(self.0);
    }
}

impl Drop for SendOnceRight {
    fn drop(&mut self) {
        let _ = sys::port_deallocate(self.0);
    }
}

impl PortSet {
    pub fn allocate() -> Result<Self, KernReturn> {
        sys::port_allocate(PORT_KIND_SET).map(PortSet)
    }

    /// Moves `port` into this set.
    pub fn insert(&self, port: &ReceiveRight) -> Result<(), KernReturn> {
        sys::port_move(port.name(), self.0)
    }

    /// Takes `port` out of whatever set it is in.
    pub fn remove(port: &ReceiveRight) -> Result<(), KernReturn> {
        sys::port_move(port.name(), 0)
    }
}

impl Drop for PortSet {
    fn drop(&mut self) {
        let _ = sys::port_deallocate(self.0);
    }
}

/// A task started from the boot archive, named by a send right to its task port.
#[derive(Debug)]
pub struct Task(SendRight);

impl Task {
    /// The task behind this task port.
    pub fn from_port(port: SendRight) -> Task {
        Task(port)
    }

    /// Starts `program`; the child gets a copy of `give` as its first start argument, and
    /// `argument` as its second.
    pub fn spawn(
        program: &str,
        give: Option<&SendRight>,
        argument: u64,
    ) -> Result<Task, KernReturn> {
        sys::task_spawn(program, give.map_or(0, SendRight::name), argument)
            .map(|n| Task(SendRight(n)))
    }

    /// Waits for the task to exit; its status (`u64::MAX` if the kernel ended it).
    pub fn wait(&self) -> Result<u64, KernReturn> {
        sys::task_wait(self.0.name())
    }

    pub fn terminate(&self) -> Result<(), KernReturn> {
        sys::task_terminate(self.0.name())
    }

    pub fn port(&self) -> &SendRight {
        &self.0
    }

    /// Sets its kernel memory quota in bytes (0: the default); the quota it had.
    pub fn set_quota(&self, bytes: u64) -> Result<u64, KernReturn> {
        sys::task_set_quota(self.0.name(), bytes)
    }
}

//! Ports: a kernel message queue with one receive right, counted send rights and send-once
//! rights, the threads waiting on it, and the notifications requested of it.

use super::message::KMessage;
use super::port_set::PortSetId;
use super::request::ReplyKind;
use super::space::PortName;
use crate::base::object_table::{Id, TaggedRecord};
use crate::base::queue::Fifo;
use crate::base::{TaskId, ThreadId, ThreadTag};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::Cell;

pub type PortId = Id<Port>;

/// Messages a port queues before senders wait (Mach's default queue limit is 5; a little more
/// slack here costs nothing).
pub const QUEUE_LIMIT: usize = 16;

/// Who holds the receive right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receiver {
    /// A task's IPC space.
    Task(TaskId),
    /// In a message on its way.
    InTransit,
    /// The kernel: the port stands for a kernel object.
    Kernel(KernelObject),
}

/// Kernel objects named by ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelObject {
    /// A live task.
    Task(TaskId),
    /// A task that has exited, and its status (kept for `task_wait`).
    ExitedTask(u64),
    /// The privileged host port: whoever holds a send right may power the machine off (and,
    /// later, register the default pager).
    Host,
    /// A pager-backed memory object's control port: its pager's `memory_control` calls.
    MemoryControl(crate::vm::address_space::ObjectId),
    /// The device master port: `device_master.open` gives device ports.
    DeviceMaster,
    /// A device's port (its index among the kernel's devices): `device` requests.
    Device(u8),
    /// Where a pager's answer to one kernel request about `object` comes (the request's
    /// kind and offset); destroyed once it has come.
    PagerReply {
        object: crate::vm::address_space::ObjectId,
        offset: u64,
        kind: ReplyKind,
    },
}

/// A dead-name notification someone asked for: when this port dies, send
/// `notify::DEAD_NAME` naming `name` to `notify`.
#[derive(Clone, Copy, Debug)]
pub struct DeadNameRequest {
    pub name: PortName,
    pub notify: PortId,
}

pub struct Port {
    pub receiver: Receiver,
    pub messages: VecDeque<KMessage>,
    /// Senders waiting for room, with the message each will queue.
    pub blocked_senders: VecDeque<(ThreadId, KMessage)>,
    /// Threads waiting to receive from this port directly (not through a set).
    pub receivers: Fifo<ThreadId>,
    /// A thread that was at the head of `receivers` and its record, as the IPC fast path
    /// last looked it up: good while that thread is the head again (a queued thread is live,
    /// and its boxed record does not move), so a server waiting on its port call after call
    /// is found without a table lookup. Stale otherwise, and then ignored.
    pub first_receiver: Cell<Option<(ThreadId, TaggedRecord<ThreadTag>)>>,
    pub set: Option<PortSetId>,
    /// Send rights in spaces and in messages.
    pub send_rights: u32,
    /// Send rights ever made from the receive right (the no-senders notification reports it).
    pub make_send_count: u32,
    pub send_once_rights: u32,
    /// Where to send the no-senders notification.
    pub no_senders: Option<PortId>,
    pub dead_name_requests: Vec<DeadNameRequest>,
    /// Whether a [`super::state::PortHint`] was ever taken of the port: its removal then
    /// makes every hint stale (`Ipc::remove_port`).
    pub hinted: bool,
}

impl Port {
    pub fn new(receiver: Receiver) -> Port {
        Port {
            receiver,
            messages: VecDeque::new(),
            blocked_senders: VecDeque::new(),
            receivers: Fifo::new(),
            first_receiver: Cell::new(None),
            set: None,
            send_rights: 0,
            make_send_count: 0,
            send_once_rights: 0,
            no_senders: None,
            dead_name_requests: Vec::new(),
            hinted: false,
        }
    }

    pub fn is_full(&self) -> bool {
        self.messages.len() >= QUEUE_LIMIT
    }
}

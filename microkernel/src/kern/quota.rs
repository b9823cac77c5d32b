//! Kernel memory quotas: what a task is charged for the kernel objects it holds, and the
//! check the calls that make them run, so that one task cannot take the kernel's memory from
//! the others: past its quota the call that asked gets `ResourceShortage` and nothing else
//! happens to the task.
//!
//! The charge is counted without walking anything (each check runs on every port and
//! region made): the task's records, its threads', its name space's table with a port record
//! for every name (exact for the receive rights a hostile task makes, an overcharge for send
//! rights, which cost the holder only its name), its map's table and its page tables.
//! `ps` shows the exact figure (`held_bytes` and the ports it receives on). Messages waiting
//! in queues are charged to their senders ([`Kernel::charge_message`]), not to the tasks
//! they are queued for: a quota must not let senders make a receiver's own calls fail; a
//! send that would queue past the sender's quota is refused (`SendNoBuffer`). The pagers the
//! kernel depends on (default pager, backing store, program pager) have no quota: refusing
//! them memory would stop paging for everyone.

use super::kernel::Kernel;
use super::syscall::{Caller, Outcome};
use super::task::TaskId;
use crate::ipc::message::KMessage;
use libipc::abi::syscall::DEFAULT_QUOTA_DIVISOR;
use libipc::abi::KernReturn;

const PAGE: u64 = 4096;

/// The quota of a task none was set for: the machine's memory over
/// [`DEFAULT_QUOTA_DIVISOR`].
pub fn default_quota() -> u64 {
    crate::vm::kernel_space::frame_counts().1 as u64 * PAGE / DEFAULT_QUOTA_DIVISOR
}

/// The kernel memory `t` holds in its own records and tables: its record, its threads', its
/// name space's and map's tables (by capacity) and its page tables with the root. The charge
/// adds a port record per name; `ps` adds the ports it receives on, with their messages.
pub fn held_bytes(t: &super::task::Task) -> u64 {
    (super::task::bytes_per_task()
        + t.threads.len() * super::thread::bytes_per_thread()
        + t.ipc.heap_bytes()
        + t.space.map().heap_bytes()) as u64
        + (t.space.pmap().table_pages() as u64 + 1) * PAGE
}

impl Kernel {
    /// What `task` is charged, in bytes (see the module's comment).
    pub fn charge(&self, task: TaskId) -> u64 {
        let Some(t) = self.tasks.get(task) else {
            return 0;
        };
        let port = core::mem::size_of::<crate::ipc::port::Port>();
        held_bytes(t) + (t.ipc.len() * port) as u64 + t.queued_bytes
    }

    /// Charges `message`, about to wait in a queue, to its sender `task`.
    pub fn charge_message(&mut self, task: TaskId, message: &mut KMessage) {
        if message.charge.is_some() {
            return;
        }
        let bytes = KMessage::queued_bytes(message.body.capacity(), message.rights.capacity());
        if let Some(t) = self.tasks.get_mut(task) {
            t.queued_bytes += u64::from(bytes);
            message.charge = Some((task, bytes));
        }
    }

    /// Takes `message`'s charge off its sender (it left its queue: received, or destroyed).
    /// A sender gone meanwhile has nothing to take off.
    pub fn uncharge_message(&mut self, message: &mut KMessage) {
        if let Some((task, bytes)) = message.charge.take() {
            if let Some(t) = self.tasks.get_mut(task) {
                t.queued_bytes = t.queued_bytes.saturating_sub(u64::from(bytes));
            }
        }
    }

    /// `Ok` if `task` may take `more` bytes of kernel memory beyond its charge;
    /// `ResourceShortage` past its quota.
    pub fn check_quota(&self, task: TaskId, more: usize) -> Result<(), KernReturn> {
        let Some(t) = self.tasks.get(task) else {
            return Err(KernReturn::InvalidArgument);
        };
        if self.memory_privileged(Some(task)) {
            return Ok(());
        }
        let quota = t.quota.unwrap_or_else(default_quota);
        if self.charge(task) + more as u64 > quota {
            return Err(KernReturn::ResourceShortage);
        }
        Ok(())
    }
}

/// `task_set_quota(task, bytes)`.
pub fn task_set_quota(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let [name, bytes, ..] = a;
    let Ok(name) = u32::try_from(name) else {
        return Outcome::Return(Err(KernReturn::InvalidName));
    };
    let target = match kernel.task_of_port(caller.task, name) {
        Ok(target) => target,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let Some(t) = kernel.tasks.get_mut(target) else {
        return Outcome::Return(Err(KernReturn::InvalidArgument));
    };
    let previous = t.quota.unwrap_or_else(default_quota);
    t.quota = (bytes != 0).then_some(bytes);
    Outcome::Return(Ok(previous))
}

//! Tasks: an address space, an IPC name space, threads, and the kernel port naming the task.

use super::thread::ThreadId;
use crate::ipc::port::PortId;
use crate::kern::rights::{Space, SPACE_LIMIT};
use crate::vm::address_space::AddressSpace;
use alloc::vec::Vec;

pub use crate::base::TaskId;

const NAME_LEN: usize = 32;

/// A task's program name, for reports (truncated to 32 bytes).
#[derive(Clone, Copy)]
pub struct TaskName {
    bytes: [u8; NAME_LEN],
    len: u8,
}

impl TaskName {
    pub fn new(name: &str) -> TaskName {
        let mut n = name.len().min(NAME_LEN);
        while !name.is_char_boundary(n) {
            n -= 1;
        }
        let mut bytes = [0; NAME_LEN];
        bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
        TaskName {
            bytes,
            len: n as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

pub struct Task {
    pub name: TaskName,
    pub space: AddressSpace,
    pub ipc: Space,
    pub threads: Vec<ThreadId>,
    /// The kernel port that names this task (`task_wait`, `task_terminate`).
    pub port: Option<PortId>,
    /// Stopped by the task swapper: its threads do not run (one woken is held), its page
    /// tables are gone.
    pub swapped_out: bool,
    /// Left to the general path by the IPC fast path: swapped out, idle with its page
    /// tables freed, root included (`pmap_collect`), which the general path builds again
    /// before the task runs, or with threads bound to processors (the fast path runs a
    /// receiver on the sender's processor; the general path queues it on its own). Kept by
    /// [`Task::note_cold`].
    pub cold: bool,
    /// Its threads bound to a processor (`ThreadBind`).
    pub bound_threads: u32,
    /// The tick it was created or last swapped in at (the swapper leaves young tasks be).
    pub resident_since: u64,
    /// Its job: a spawned task starts one, a forked task is in its parent's (what a
    /// shell's Ctrl-C ends: `task_terminate` with `TERMINATE_JOB`).
    pub job: u32,
    /// Its kernel memory quota in bytes, if one was set (`quota::default_quota` otherwise);
    /// a forked task inherits its parent's.
    pub quota: Option<u64>,
    /// Kernel heap bytes of the messages it sent that wait in queues (charged to it until
    /// they are received or destroyed: `KMessage::charge`).
    pub queued_bytes: u64,
}

impl Task {
    pub fn new(name: &str, space: AddressSpace) -> Task {
        Task::named(TaskName::new(name), space)
    }

    /// [`Task::new`] with its name made already (a fork's child: its parent's).
    pub fn named(name: TaskName, space: AddressSpace) -> Task {
        Task {
            name,
            space,
            ipc: Space::new(SPACE_LIMIT),
            threads: Vec::new(),
            port: None,
            swapped_out: false,
            cold: false,
            bound_threads: 0,
            job: 0,
            quota: None,
            queued_bytes: 0,
            resident_since: crate::arch::percpu::ticks(),
        }
    }

    /// Sets [`Task::cold`] from the task's state (after a swap, a change of its root or of
    /// its bound threads).
    pub fn note_cold(&mut self) {
        self.cold = self.swapped_out || !self.space.pmap().has_root() || self.bound_threads > 0;
    }

    /// The program the task runs, for reports.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

/// Kernel heap bytes a task costs besides its threads, memory and page tables: its record,
/// its table slot, its kernel port and its space's first slots.
pub fn bytes_per_task() -> usize {
    use crate::base::object_table::Table;
    use crate::ipc::port::Port;
    core::mem::size_of::<Task>()
        + Table::<Task, crate::base::TaskTag>::slot_overhead()
        + core::mem::size_of::<Port>()
        + Table::<Port>::slot_overhead()
}

//! Tasks: an address space, an IPC name space (with the IPC work), and threads.

use super::object_table::Id;
use super::thread::ThreadId;
use crate::vm::address_space::AddressSpace;
use alloc::vec::Vec;

pub type TaskId = Id<Task>;

const NAME_LEN: usize = 32;

pub struct Task {
    name: [u8; NAME_LEN],
    name_len: usize,
    pub space: AddressSpace,
    pub threads: Vec<ThreadId>,
}

impl Task {
    pub fn new(name: &str, space: AddressSpace) -> Task {
        let mut task = Task { name: [0; NAME_LEN], name_len: 0, space, threads: Vec::new() };
        let mut n = name.len().min(NAME_LEN);
        while !name.is_char_boundary(n) {
            n -= 1;
        }
        task.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        task.name_len = n;
        task
    }

    /// The program the task runs, for reports.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }
}

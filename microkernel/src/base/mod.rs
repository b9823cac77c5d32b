//! What every subsystem builds on and that depends on none of them: tables of kernel objects
//! named by generation-checked ids, intrusive queues, and the ids of tasks and threads.
//!
//! The kernel's folders form layers, each importing only those below it (checked by
//! `layers.rs`): `base`, then `boot` and `arch`, then `vm`
//! (memory), `device`, `ipc` (ports, spaces, messages), and at the top `kern` and `colloc`,
//! the kernel's paths that use several subsystems at once.

pub mod bit_lock;
pub mod object_table;
pub mod queue;

use object_table::Id;

/// What a task id names (the task record itself is `kern::task::Task`): subsystems below
/// `kern` name tasks without knowing what a task is.
pub enum TaskTag {}
/// What a thread id names (the record is `kern::thread::Thread`).
pub enum ThreadTag {}

pub type TaskId = Id<TaskTag>;
pub type ThreadId = Id<ThreadTag>;

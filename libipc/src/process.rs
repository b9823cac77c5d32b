//! The process layer: `fork`, `exec`, `wait` and `exit` over tasks, in the Unix manner.
//!
//! `fork` copies the calling task (its memory copy-on-write, its send rights under the same
//! names); `exec` replaces the task's program with another from the boot archive; `wait`
//! waits for a child's exit status; `exit` ends the task.

use crate::abi::KernReturn;
use crate::ipc::{SendRight, Task};
use crate::sys;

/// Which side of a fork this is.
#[derive(Debug)]
pub enum Fork {
    /// The parent, with the child.
    Parent(Task),
    /// The child.
    Child,
}

/// Copies the calling task.
pub fn fork() -> Result<Fork, KernReturn> {
    Ok(match sys::task_fork()? {
        sys::Forked::Parent(port) => Fork::Parent(Task::from_port(SendRight::from_raw(port))),
        sys::Forked::Child => Fork::Child,
    })
}

/// Replaces this task's program with `program` from the boot archive, which starts with
/// `argument` as its second start argument. Returns only the error (this program goes on).
pub fn exec(program: &str, argument: u64) -> KernReturn {
    sys::task_exec(program, argument)
}

/// Waits for `child` to exit; its status (`u64::MAX` if the kernel ended it).
pub fn wait(child: &Task) -> Result<u64, KernReturn> {
    child.wait()
}

/// Ends this task with `status`.
pub fn exit(status: i32) -> ! {
    sys::task_exit(status)
}

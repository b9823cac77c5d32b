//! Threads a task makes and ends itself: `thread_create`, `thread_exit` and `thread_bind`,
//! and the task's list of its threads, which a thread leaves in constant time (a task may
//! have a million).
//!
//! A new thread costs its record and table slot (`thread::bytes_per_thread`), charged to the
//! task's quota and admitted as a new task is (the kernel's budget, the free-memory line);
//! it has no port, so a task's name space does not limit how many it has. `task_exec` still
//! refuses a task with more than one thread, `task_fork` copies only the calling thread,
//! and `task_exit` (or a fault) ends every thread of the task.

use super::kernel::Kernel;
use super::loader::Exit;
use super::syscall::{Caller, Outcome};
use super::task::TaskId;
use super::thread::{TaskRecord, Thread, ThreadId};
use libipc::abi::syscall::{THREAD_UNBOUND, USER_BASE, USER_END};
use libipc::abi::KernReturn;

/// `ThreadCreate(entry, stack, argument)`.
pub fn thread_create(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let [entry, stack, argument, ..] = a;
    Outcome::Return(kernel.create_thread(caller, entry, stack, argument))
}

/// `ThreadExit(status)`.
pub fn thread_exit(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    kernel.exit_thread(caller, a[0]);
    Outcome::NoReturn
}

/// `ThreadBind(cpu)`.
pub fn thread_bind(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    Outcome::Return(kernel.bind_thread(caller, a[0]))
}

impl Kernel {
    /// Adds `thread`, just inserted in the thread table, to `task`'s threads. `Err` (and
    /// nothing changed) when the task is gone or its list cannot grow.
    pub(crate) fn attach_thread(&mut self, task: TaskId, thread: ThreadId) -> Result<(), ()> {
        let t = self.tasks.get_mut(task).ok_or(())?;
        t.threads.try_reserve(1).map_err(|_| ())?;
        let index = u32::try_from(t.threads.len()).map_err(|_| ())?;
        t.threads.push(thread);
        if let Some(record) = self.threads.get_mut(thread) {
            record.index_in_task = index;
        }
        Ok(())
    }

    /// Takes `thread` out of its task's list: the last thread of the list takes its place.
    fn detach_thread(&mut self, task: TaskId, thread: ThreadId) {
        let Some(index) = self.threads.get(thread).map(|t| t.index_in_task as usize) else {
            return;
        };
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        if t.threads.get(index) != Some(&thread) {
            debug_assert!(false, "a thread's index in its task is stale");
            return;
        }
        t.threads.swap_remove(index);
        if let Some(&moved) = t.threads.get(index) {
            if let Some(record) = self.threads.get_mut(moved) {
                record.index_in_task = index as u32;
            }
        }
    }

    /// A new thread of the caller's task, ready to start at `entry` with stack pointer
    /// `stack` and `argument` in rdi, at the caller's priority. Returns how many threads the
    /// task has now.
    fn create_thread(
        &mut self,
        caller: Caller,
        entry: u64,
        stack: u64,
        argument: u64,
    ) -> Result<u64, KernReturn> {
        // Decode: both addresses in user space (a stack pointer may sit at its very top).
        if !(USER_BASE..USER_END).contains(&entry) || !(USER_BASE..=USER_END).contains(&stack) {
            return Err(KernReturn::InvalidAddress);
        }
        let task = caller.task;
        self.check_quota(task, super::thread::bytes_per_thread())?;
        if crate::vm::kernel_space::memory_too_short_for_new_tasks(|| {
            self.collect_tables_under_pressure()
        }) {
            return Err(KernReturn::ResourceShortage);
        }
        let priority = self
            .threads
            .get(caller.thread)
            .map_or(super::thread::DEFAULT_PRIORITY, |t| t.priority);
        let t = self
            .tasks
            .get_mut(task)
            .ok_or(KernReturn::InvalidArgument)?;
        let record = TaskRecord::new(t);
        let mut new = Thread::new(task, record, entry, stack, [argument, 0, 0]);
        new.priority = priority;
        let thread = self
            .threads
            .insert(new)
            .map_err(|_| KernReturn::ResourceShortage)?;
        if self.attach_thread(task, thread).is_err() {
            self.threads.remove(thread);
            return Err(KernReturn::ResourceShortage);
        }
        self.make_ready(thread);
        Ok(self.tasks.get(task).map_or(0, |t| t.threads.len() as u64))
    }

    /// Binds the calling thread to processor `cpu`, or unbinds it ([`THREAD_UNBOUND`]):
    /// the processor it runs on when the call returns. A thread bound to another processor
    /// than this one gives this one up and is queued on its own at once.
    fn bind_thread(&mut self, caller: Caller, cpu: u64) -> Result<u64, KernReturn> {
        let here = crate::arch::percpu::index();
        let bind = cpu != THREAD_UNBOUND;
        // Decode: an online processor (its index fits the thread's `cpu` byte).
        if bind && cpu >= crate::arch::percpu::online() as u64 {
            return Err(KernReturn::InvalidArgument);
        }
        let t = self
            .threads
            .get_mut(caller.thread)
            .ok_or(KernReturn::InvalidArgument)?;
        let was = t.bound;
        t.bound = bind;
        if bind {
            t.cpu = cpu as u8;
        }
        self.count_bound(caller.task, was, bind);
        if bind && cpu as usize != here {
            // Its return value goes with it; it runs again only there.
            self.yield_current();
            return Ok(cpu);
        }
        Ok(here as u64)
    }

    /// Keeps `task`'s count of bound threads (and so whether the IPC fast path leaves it to
    /// the general path) as one of its threads goes from bound `was` to bound `now`.
    fn count_bound(&mut self, task: TaskId, was: bool, now: bool) {
        if was == now {
            return;
        }
        if let Some(t) = self.tasks.get_mut(task) {
            if now {
                t.bound_threads += 1;
            } else {
                t.bound_threads = t.bound_threads.saturating_sub(1);
            }
            t.note_cold();
        }
    }

    /// Ends the calling thread; the task's last thread ends the task with `status`.
    fn exit_thread(&mut self, caller: Caller, status: u64) {
        let last = self
            .tasks
            .get(caller.task)
            .is_none_or(|t| t.threads.len() <= 1);
        if last {
            self.terminate_task(caller.task, Exit::Status(status));
            return;
        }
        self.unqueue(caller.thread);
        let bound = self.threads.get(caller.thread).is_some_and(|t| t.bound);
        self.count_bound(caller.task, bound, false);
        self.detach_thread(caller.task, caller.thread);
        self.threads.remove(caller.thread);
    }
}

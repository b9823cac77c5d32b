//! Thread waits, the scheduler's side of blocking: a thread parks with a continuation (what
//! to do when it runs again) and an optional deadline; whoever ends the wait writes its
//! result; a wait can be cancelled (a timeout, the task's end) whatever it waits on, each
//! subsystem taking the thread off its own queue.

use crate::kern::kernel::Kernel;
use crate::kern::thread::{Continuation, ReceiveFrom, ThreadId, ThreadState};
use libipc::abi::message::MsgReturn;

impl Kernel {
    /// Parks `thread` (already put on its wait queue by the caller) with `continuation`.
    pub fn block(&mut self, thread: ThreadId, continuation: Continuation, deadline: Option<u64>) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        t.state = ThreadState::Blocked;
        t.continuation = continuation;
        if self.sched.current() == Some(thread) {
            self.sched.hand_off_none();
        }
        if let Some(deadline) = deadline {
            self.sched
                .timers
                .insert(&mut self.threads, thread, deadline);
        }
    }

    /// Writes a thread's result registers without ending any wait.
    pub(crate) fn set_result(&mut self, thread: ThreadId, rax: u64, rdx: u64) {
        if let Some(t) = self.threads.get_mut(thread) {
            t.frame.rax = rax;
            t.frame.rdx = rdx;
        }
    }

    /// Ends `thread`'s wait with result (`rax`, `rdx`); the caller queues it to run (or runs
    /// it). The thread must already be off its wait queue.
    pub fn finish_wait(&mut self, thread: ThreadId, rax: u64, rdx: u64) {
        self.sched.timers.remove(&mut self.threads, thread);
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        t.frame.rax = rax;
        t.frame.rdx = rdx;
        t.continuation = Continuation::ReturnToUser;
        t.state = ThreadState::Ready;
    }

    /// Ends a wait and queues the thread to run.
    pub fn wake(&mut self, thread: ThreadId, rax: u32, rdx: u64) {
        self.finish_wait(thread, u64::from(rax), rdx);
        self.make_ready(thread);
    }

    /// Takes a blocked thread off whatever it waits on (for a timeout or its task's end).
    /// A waiting sender gets its message's rights back in its space.
    pub fn cancel_wait(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get(thread) else {
            return;
        };
        if t.state != ThreadState::Blocked {
            return;
        }
        let task = t.task;
        let continuation = t.continuation;
        self.sched.timers.remove(&mut self.threads, thread);
        match continuation {
            Continuation::Receive(args) => self.leave_receive_queue(thread, args.from.get()),
            Continuation::TaskWait { port } => {
                self.leave_receive_queue(thread, ReceiveFrom::Port(port))
            }
            Continuation::Send { port, .. } => self.withdraw_send(thread, task, port),
            Continuation::PageWait { object, .. } => self.remove_page_waiter(thread, object),
            Continuation::MemoryWait { .. } => {
                self.sched.memory_waiters.remove(&mut self.threads, thread);
                crate::vm::kernel_space::note_memory_waiters(!self.sched.memory_waiters.is_empty());
            }
            Continuation::ConsoleWait => {
                self.sched.console_readers.remove(&mut self.threads, thread);
            }
            Continuation::ReturnToUser => {}
        }
    }

    /// Ends the waits whose deadline has passed.
    pub fn expire_timeouts(&mut self, now: u64) {
        while let Some(thread) = self.sched.timers.pop_expired(&mut self.threads, now) {
            let Some(t) = self.threads.get(thread) else {
                continue;
            };
            if t.state != ThreadState::Blocked {
                continue;
            }
            let code = match t.continuation {
                Continuation::Send { .. } => MsgReturn::SendTimedOut,
                Continuation::PageWait { .. } => {
                    self.page_wait_expired(thread);
                    continue;
                }
                Continuation::MemoryWait { .. } => {
                    self.memory_wait_expired(thread);
                    continue;
                }
                // Calls other than `mach_msg` time out with their own code.
                Continuation::TaskWait { .. } | Continuation::ConsoleWait => {
                    self.cancel_wait(thread);
                    self.wake(thread, libipc::abi::KernReturn::OperationTimedOut as u32, 0);
                    continue;
                }
                _ => MsgReturn::RcvTimedOut,
            };
            self.cancel_wait(thread);
            self.wake(thread, code as u32, 0);
        }
    }
}

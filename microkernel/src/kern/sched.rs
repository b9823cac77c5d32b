//! Scheduling: O(1) priority run queues, time slices from the APIC timer, hand-off, and the
//! dispatcher loop that picks the next thread (or idles) and returns to user mode.

use super::kernel::{Kernel, KERNEL};
use super::thread::{ThreadId, ThreadState, QUANTUM_TICKS};
use crate::arch::{self, trap};
use crate::ipc::fast_path::Handoff;
use crate::kprintln;
use libipc::abi::report::ExitCode;
use spin::MutexGuard;

impl Kernel {
    /// Puts `thread` at the back of its priority's run queue.
    pub fn make_ready(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        t.state = ThreadState::Ready;
        let priority = t.priority;
        self.run_queues.enqueue(&mut self.threads, thread, priority);
    }

    /// The highest priority with a thread ready to run.
    pub fn run_queues_highest(&self) -> Option<u8> {
        self.run_queues.highest()
    }

    /// The running thread gives up the processor but stays ready.
    pub fn yield_current(&mut self) {
        if let Some(current) = self.current.take() {
            self.make_ready(current);
        }
    }

    /// A timer tick in user mode: charges the running thread and preempts it when its quantum
    /// is spent and another thread of at least its priority is ready.
    pub fn tick(&mut self) {
        self.expire_timeouts(crate::arch::percpu::current().ticks());
        let Some(current) = self.current else { return };
        let highest = self.run_queues.highest();
        let Some(t) = self.threads.get_mut(current) else {
            return;
        };
        t.quantum = t.quantum.saturating_sub(1);
        if t.quantum == 0 {
            t.quantum = QUANTUM_TICKS;
            if highest.is_some_and(|p| p >= t.priority) {
                self.yield_current();
            }
        }
    }

    /// Removes `thread` from whatever queue holds it (before it is destroyed).
    pub fn unqueue(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get(thread) else {
            return;
        };
        match t.state {
            ThreadState::Ready => {
                let priority = t.priority;
                self.run_queues.remove(&mut self.threads, thread, priority);
            }
            ThreadState::Running => {
                if self.current == Some(thread) {
                    self.current = None;
                }
            }
            ThreadState::Blocked => self.cancel_wait(thread),
        }
    }

    /// The thread to run next: the current one if it still runs and nothing of a higher
    /// priority is ready (a thread woken at a higher priority, such as a pager whose disk
    /// has answered, runs at once rather than at the end of the current quantum), else the
    /// first of the highest ready priority.
    fn pick_next(&mut self) -> Option<ThreadId> {
        if let Some(current) = self.current {
            let priority = self.threads.get(current).map(|t| t.priority);
            let higher = self
                .run_queues
                .highest()
                .is_some_and(|p| priority.is_some_and(|mine| p > mine));
            if !higher {
                return Some(current);
            }
            self.yield_current();
        }
        let (next, _) = self.run_queues.dequeue(&mut self.threads)?;
        if let Some(t) = self.threads.get_mut(next) {
            t.state = ThreadState::Running;
        }
        self.current = Some(next);
        Some(next)
    }
}

/// Runs the next thread: never returns. Idles with interrupts on when nothing is ready, and
/// powers off once every task has exited.
pub fn run(mut guard: MutexGuard<'static, Option<Kernel>>) -> ! {
    loop {
        let kernel = guard.as_mut().expect("kernel state");
        if crate::vm::kernel_space::pagers_released() {
            kernel.reap_pagers();
        }
        if crate::vm::kernel_space::take_device_work() {
            kernel.device_work();
        }
        if crate::vm::kernel_space::take_collapse_wanted() {
            kernel.collapse_paged_objects();
        }
        kernel.pageout_if_wanted();
        if kernel.tasks.is_empty() {
            shut_down(kernel);
        }
        if let Some(next) = kernel.pick_next() {
            let thread = kernel.threads.get(next).expect("picked thread exists");
            let task = kernel.tasks.get(thread.task).expect("thread's task exists");
            task.space.pmap().activate();
            let frame: *const trap::TrapFrame = &thread.frame;
            drop(guard);
            // SAFETY: the boxed (unmoving) frame of the thread just made current, whose space is
            // active, holds a user context built by `Thread::new` or saved by the entry code.
            unsafe { trap::return_to_user(frame) };
        }
        drop(guard);
        // Interrupts (the timer, later devices) may make a thread ready.
        arch::wait_for_interrupt();
        x86_64::instructions::interrupts::disable();
        guard = KERNEL.lock();
    }
}

/// Returns to the receiver a fast-path hand-off made current, without `run`'s pick or
/// lookups. The caller has checked there is no work for the way out
/// ([`Kernel::way_out_work`]); when there is, it calls `run` instead, which does that work
/// first, as after any other call.
pub fn resume_handoff(guard: MutexGuard<'static, Option<Kernel>>, handoff: Handoff) -> ! {
    // SAFETY: the hand-off's pointers are into the current thread's and its task's boxed
    // records, which nothing has removed since (the kernel lock is still held).
    unsafe { (*handoff.pmap).activate() };
    drop(guard);
    // SAFETY: the current thread's frame (as above), whose space is now active, holds the
    // user context the syscall entry saved when it blocked.
    unsafe { trap::return_to_user(handoff.frame) }
}

impl Kernel {
    /// Whether an exit to user mode has work to do first: pager objects to terminate, the
    /// pageout daemon wanted, threads waiting for memory.
    #[inline(always)]
    pub fn way_out_work(&self) -> bool {
        debug_assert!(self.memory_waiters.is_empty() || crate::vm::kernel_space::deferred_work());
        crate::vm::kernel_space::deferred_work()
    }
}

fn shut_down(kernel: &Kernel) -> ! {
    let status = kernel.init_status.unwrap_or(0);
    kprintln!(
        "all tasks have exited (init status {}); shutting down",
        status as i64
    );
    arch::exit_qemu(if status == 0 {
        ExitCode::Success
    } else {
        ExitCode::TestsFailed
    })
}

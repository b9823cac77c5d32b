//! Scheduling: O(1) priority run queues, time slices from the APIC timer, hand-off, the
//! dispatcher loop that picks the next thread (or idles) and returns to user mode, and
//! thread waits ([`wait`]).
//!
//! The scheduler's state is [`Scheduler`], whose fields only this module and `wait` touch:
//! the rest of the kernel makes threads ready, blocks and wakes them through `Kernel`'s
//! methods here, and reaches the running thread, deadlines and wait queues through
//! `Scheduler`'s.

use super::kernel::{Kernel, KernelGuard};
use super::swapper::{Action, Candidate, Reading, Why};
use super::task::TaskId;
use super::thread::Thread;
use super::thread::{ThreadId, ThreadState, QUANTUM_TICKS};
use super::timer_wheel::TimerWheel;
use crate::arch::{self, trap};
use crate::base::object_table::Table;
use crate::base::queue::{Fifo, RunQueues};
use crate::base::ThreadTag;
use crate::ipc::port::Receiver;
use crate::kern::fast_path::Handoff;
use crate::kprintln;
use crate::vm::map::PAGE_SIZE as PAGE;
use crate::vm::page::Dropped;
use alloc::vec::Vec;

mod wait;

/// The thread table, which the scheduler's queues link through.
type Threads = Table<Thread, ThreadTag>;

/// Queues of threads waiting for something that is neither a port nor a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitQueue {
    /// Faults that found no free page, waiting for the pageout daemon.
    Memory,
    /// `console_read` calls waiting for input.
    Console,
}

/// The scheduler's state.
pub struct Scheduler {
    /// Each CPU's run queues, by CPU index: a ready thread waits on one CPU's
    /// (`Thread::cpu`); a CPU with none of its own takes one from a busy CPU's.
    /// (On the heap, one per possible CPU: 1 KiB each.)
    run_queues: alloc::boxed::Box<[RunQueues<ThreadId>; arch::percpu::MAX_CPUS]>,
    // The thread each CPU runs is in its per-CPU area (`percpu::thread`), one load away.
    /// Deadlines of waiting threads.
    timers: TimerWheel<ThreadId>,
    memory_waiters: Fifo<ThreadId>,
    console_readers: Fifo<ThreadId>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler {
            run_queues: (0..arch::percpu::MAX_CPUS)
                .map(|_| RunQueues::new())
                .collect::<Vec<_>>()
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("MAX_CPUS queues were made")),
            timers: TimerWheel::new(),
            memory_waiters: Fifo::new(),
            console_readers: Fifo::new(),
        }
    }

    /// The thread running on this CPU.
    #[inline(always)]
    pub fn current(&self) -> Option<ThreadId> {
        ThreadId::option_from_raw(arch::percpu::thread())
    }

    /// Sets the thread running on this CPU.
    #[inline(always)]
    fn set_current(&mut self, thread: Option<ThreadId>) {
        arch::percpu::set_thread(ThreadId::option_to_raw(thread));
    }

    /// Takes the thread running on this CPU off it.
    #[inline(always)]
    fn take_current(&mut self) -> Option<ThreadId> {
        let current = self.current();
        self.set_current(None);
        current
    }

    /// Makes `thread`, taken off every queue by the caller and marked running, the running
    /// thread: a hand-off from a caller that now waits.
    #[inline(always)]
    pub fn hand_off(&mut self, thread: ThreadId) {
        self.set_current(Some(thread));
    }

    /// This CPU runs no thread now (its thread blocked).
    #[inline(always)]
    pub fn hand_off_none(&mut self) {
        self.set_current(None);
    }

    /// Takes `thread` from whichever CPU runs it (this one included); which that was.
    pub fn take_running(&mut self, thread: ThreadId) -> Option<usize> {
        if self.current() == Some(thread) {
            self.set_current(None);
            return Some(arch::percpu::index());
        }
        let raw = ThreadId::option_to_raw(Some(thread));
        (0..arch::percpu::online()).find(|&index| {
            arch::percpu::cpu(index).is_some_and(|cpu| {
                let running = cpu.running() == raw;
                if running {
                    cpu.clear_running();
                }
                running
            })
        })
    }

    /// Cancels `thread`'s deadline, if it has one (its wait ended some other way).
    #[inline(always)]
    pub fn disarm(&mut self, threads: &mut Threads, thread: ThreadId) {
        self.timers.remove(threads, thread);
    }

    /// Gives `thread`, still waiting, a new deadline.
    pub fn rearm(&mut self, threads: &mut Threads, thread: ThreadId, deadline: u64) {
        self.timers.insert(threads, thread, deadline);
    }

    /// Deadlines armed now (for reports).
    pub fn armed_timers(&self) -> usize {
        self.timers.armed()
    }

    fn queue(&mut self, which: WaitQueue) -> &mut Fifo<ThreadId> {
        match which {
            WaitQueue::Memory => &mut self.memory_waiters,
            WaitQueue::Console => &mut self.console_readers,
        }
    }

    /// Puts `thread` at the back of `which` (then block it: [`Kernel::block`]).
    pub fn enqueue_waiter(&mut self, which: WaitQueue, threads: &mut Threads, thread: ThreadId) {
        self.queue(which).push_back(threads, thread);
    }

    /// Takes the first thread off `which`.
    pub fn first_waiter(&mut self, which: WaitQueue, threads: &mut Threads) -> Option<ThreadId> {
        self.queue(which).pop_front(threads)
    }

    /// Takes `thread` off `which`.
    pub fn remove_waiter(&mut self, which: WaitQueue, threads: &mut Threads, thread: ThreadId) {
        self.queue(which).remove(threads, thread);
    }

    /// Whether any thread waits on `which`.
    pub fn any_waiting(&self, which: WaitQueue) -> bool {
        match which {
            WaitQueue::Memory => !self.memory_waiters.is_empty(),
            WaitQueue::Console => !self.console_readers.is_empty(),
        }
    }
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}
use core::sync::atomic::{AtomicBool, Ordering};
use libipc::abi::report::ExitCode;

/// `idle=poll`: the idle loop spins with interrupts enabled instead of halting (set once at
/// start-up, before any thread runs).
static IDLE_POLL: AtomicBool = AtomicBool::new(false);

/// Makes the idle loop poll (`idle=poll`) rather than halt.
pub fn set_idle_poll(poll: bool) {
    IDLE_POLL.store(poll, Ordering::Relaxed);
}
use libipc::abi::KernReturn;

impl Kernel {
    /// Puts `thread` at the back of its priority's run queue.
    /// A thread of a task the swapper has stopped is held instead, until the task comes
    /// back ([`Kernel::swap_in`]).
    pub fn make_ready(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        if self.swapper.any_out() && self.tasks.get(t.task).is_some_and(|task| task.swapped_out) {
            t.state = ThreadState::Held;
            return;
        }
        t.state = ThreadState::Ready;
        let priority = t.priority;
        let target = if arch::percpu::online() <= 1 {
            0
        } else if t.bound {
            usize::from(t.cpu)
        } else {
            place(usize::from(t.cpu))
        };
        t.cpu = target as u8;
        self.sched.run_queues[target].enqueue(&mut self.threads, thread, priority);
        if target != arch::percpu::index() {
            super::cpus::wake_if_idle(target);
        }
    }

    /// The highest priority with a thread ready to run on this CPU.
    #[inline(always)]
    pub fn run_queues_highest(&self) -> Option<u8> {
        self.sched.run_queues[this_cpu()].highest()
    }

    /// The running thread gives up the processor but stays ready.
    pub fn yield_current(&mut self) {
        if let Some(current) = self.sched.take_current() {
            self.make_ready(current);
        }
    }

    /// A timer tick in user mode: charges the running thread and preempts it when its quantum
    /// is spent and another thread of at least its priority is ready.
    pub fn tick(&mut self) {
        self.expire_timeouts(crate::arch::percpu::ticks());
        let Some(current) = self.sched.current() else {
            return;
        };
        let highest = self.run_queues_highest();
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
                let (priority, cpu) = (t.priority, usize::from(t.cpu));
                self.sched.run_queues[cpu].remove(&mut self.threads, thread, priority);
            }
            ThreadState::Running => self.stop_running(thread),
            ThreadState::Blocked => self.cancel_wait(thread),
            ThreadState::Held => {}
        }
    }

    /// The thread to run next: the current one if it still runs and nothing of a higher
    /// priority is ready (a thread woken at a higher priority, such as a pager whose disk
    /// has answered, runs at once rather than at the end of the current quantum), else the
    /// first of the highest ready priority.
    fn pick_next(&mut self) -> Option<ThreadId> {
        if let Some(current) = self.sched.current() {
            let priority = self.threads.get(current).map(|t| t.priority);
            let higher = self
                .run_queues_highest()
                .is_some_and(|p| priority.is_some_and(|mine| p > mine));
            if !higher {
                return Some(current);
            }
            self.yield_current();
        }
        let me = this_cpu();
        let next = match self.sched.run_queues[me].dequeue(&mut self.threads) {
            Some((next, _)) => next,
            None => self.steal(me)?,
        };
        if let Some(t) = self.threads.get_mut(next) {
            t.state = ThreadState::Running;
            t.cpu = me as u8;
        }
        self.sched.set_current(Some(next));
        Some(next)
    }

    /// A thread for idle CPU `me` from the queue of a CPU that is busy running another: the
    /// load balancing. (An idle CPU's queue is its own to run: it was woken for it.) A queue
    /// whose next thread is bound to its CPU is left alone (the threads behind it too: they
    /// run there after it).
    fn steal(&mut self, me: usize) -> Option<ThreadId> {
        let online = arch::percpu::online();
        for step in 1..online {
            let victim = (me + step) % online;
            let busy = arch::percpu::cpu(victim).is_some_and(|cpu| cpu.running() != 0);
            let movable = self.sched.run_queues[victim]
                .first()
                .and_then(|next| self.threads.get(next))
                .is_some_and(|t| !t.bound);
            if busy && movable {
                let (next, _) = self.sched.run_queues[victim].dequeue(&mut self.threads)?;
                STOLEN.fetch_add(1, Ordering::Relaxed);
                return Some(next);
            }
        }
        None
    }

    /// Takes running `thread` from its CPU. On another CPU it is stopped there first
    /// (`tlb::stop`): once this returns, that CPU waits in the kernel with the thread's
    /// registers saved, and the thread may be freed or held. A system call it had entered
    /// and not run is made again when the thread next runs.
    pub fn stop_running(&mut self, thread: ThreadId) {
        let Some(cpu) = self.sched.take_running(thread) else {
            return;
        };
        if cpu != arch::percpu::index() && arch::tlb::stop(cpu) {
            if let Some(t) = self.threads.get_mut(thread) {
                if t.frame.vector == trap::SYSCALL_VECTOR {
                    // Back over the two-byte `syscall` instruction.
                    t.frame.rip = t.frame.rip.wrapping_sub(2);
                }
            }
        }
    }
}

/// This CPU's index, in bounds of the per-CPU arrays by construction (no bounds check).
#[inline(always)]
fn this_cpu() -> usize {
    const _: () = assert!(arch::percpu::MAX_CPUS.is_power_of_two());
    arch::percpu::index() & (arch::percpu::MAX_CPUS - 1)
}

/// Threads a CPU took from another's queue (`steal`), since start-up.
pub static STOLEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The CPU a thread made ready waits on: the one it last ran on if that one runs nothing
/// (it is idle, or about to pick), else any that runs nothing, else the last one still
/// (a busy CPU's queue is taken from by the next to go idle).
fn place(last: usize) -> usize {
    let idle = |index: usize| arch::percpu::cpu(index).is_some_and(|cpu| cpu.running() == 0);
    let online = arch::percpu::online();
    let last = if last < online { last } else { 0 };
    if idle(last) {
        return last;
    }
    (0..online).find(|&index| idle(index)).unwrap_or(last)
}

/// Time-stamp counter cycles spent idle (halted, waiting for an interrupt): under QEMU's
/// `-icount` the clock jumps ahead while the CPU idles, so guest instructions executed are
/// the counter's advance less these.
pub static IDLE_CYCLES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Runs the next thread: never returns. Idles with interrupts on when nothing is ready, and
/// powers off once every task has exited.
pub fn run(mut guard: KernelGuard) -> ! {
    loop {
        let kernel = guard.as_mut().expect("kernel state");
        if crate::vm::kernel_space::pagers_released() {
            kernel.reap_pagers();
        }
        if crate::vm::kernel_space::take_device_work() {
            kernel.device_work();
        }
        if crate::vm::kernel_space::take_console_input() {
            kernel.wake_console_readers();
        }
        if crate::vm::kernel_space::take_collapse_wanted() {
            kernel.collapse_paged_objects();
        }
        if kernel.colloc.any_pending() {
            crate::kern::colloc::run_pending(kernel);
        }
        kernel.pageout_if_wanted();
        kernel.swapper_if_due();
        if kernel.tasks.is_empty() {
            shut_down(kernel);
        }
        if let Some(next) = kernel.pick_next() {
            let thread = kernel.threads.get(next).expect("picked thread exists");
            let frame: *const trap::TrapFrame = &thread.frame;
            let task_id = thread.task;
            let task = kernel.tasks.get_mut(task_id).expect("thread's task exists");
            if task.cold {
                // Idle long enough to lose its page-table root (`pmap_collect`): a new one
                // first (a swapped-out task's threads are not picked). Without a frame for
                // it the thread waits for the pageout daemon to free one, as a fault that
                // found no page does, and is picked again then; its task ends only if no
                // pager can free memory, or none comes free in the wait's time.
                if task.space.ensure_tables_root().is_err() {
                    log::warn!(
                        "vm: a thread waits for memory to run: no frame for its task's \
                         page-table root ({} frames free)",
                        crate::vm::kernel_space::free_frames()
                    );
                    if !kernel.wait_for_memory(next, crate::kern::memory::pager::Resume::Run) {
                        kernel.terminate_task(
                            task_id,
                            super::loader::Exit::Fault(format_args!(
                                "no memory for its page-table root"
                            )),
                        );
                    }
                    continue;
                }
                task.note_cold();
            }
            task.space.pmap().activate();
            if arch::percpu::online() > 1 && kernel.run_queues_highest().is_some() {
                // Threads this CPU leaves ready: an idle CPU runs them. (Woken here, on the
                // way out, not as each is made ready: most are picked by this CPU itself.)
                super::cpus::wake_an_idle_cpu();
            }
            release(guard);
            super::entry::wake_a_lock_sleeper();
            // SAFETY: the boxed (unmoving) frame of the thread just made current, whose space is
            // active, holds a user context built by `Thread::new` or saved by the entry code.
            unsafe { trap::return_to_user(frame) };
        }
        // Marked idle while the lock is held, so a CPU that makes a thread ready after the
        // lock goes sees the mark and wakes this one (`cpus::wake_an_idle_cpu`).
        arch::percpu::current().set_idle(true);
        release(guard);
        super::entry::wake_a_lock_sleeper();
        // Interrupts (the timer, the devices) may make a thread ready. The time waiting is
        // counted idle, halted or (`idle=poll`) spinning.
        let idle_from = crate::device::cycles();
        if IDLE_POLL.load(Ordering::Relaxed) {
            arch::poll_for_interrupt();
        } else {
            arch::wait_for_interrupt();
        }
        IDLE_CYCLES.fetch_add(
            crate::device::cycles().saturating_sub(idle_from),
            Ordering::Relaxed,
        );
        x86_64::instructions::interrupts::disable();
        arch::percpu::current().set_idle(false);
        guard = super::entry::lock_kernel(false, true);
    }
}

/// Returns to the receiver a fast-path hand-off made current, without `run`'s pick or
/// lookups. The caller has checked there is no work for the way out
/// ([`Kernel::way_out_work`]); when there is, it calls `run` instead, which does that work
/// first, as after any other call. Inlined into the syscall entry's fast path.
/// `ANOTHER_TASK`: the thread handed off to is another task's than the caller's (the fast
/// path's receiver), so its tables are not the ones loaded and are loaded without asking;
/// otherwise (a short-circuited collocated call) they are loaded if they are not.
#[inline(always)]
pub fn resume_handoff<const ANOTHER_TASK: bool>(guard: KernelGuard, handoff: Handoff) -> ! {
    // SAFETY: the hand-off's thread is the current one, which nothing has removed since (the
    // kernel lock is still held).
    let (frame, pmap) = unsafe { handoff.frame_and_pmap() };
    // SAFETY: the pointers are into the current thread's and its task's boxed records (as
    // above).
    let pmap = unsafe { &*pmap };
    if ANOTHER_TASK {
        pmap.activate_from_another();
    } else {
        pmap.activate();
    }
    release(guard);
    // The frame was saved by the syscall entry: the receiver's when it blocked in its
    // receive (or a caller short-circuited to a collocated server's, when it made the call).
    // SAFETY: the current thread's frame (as above), whose space is now active.
    unsafe { trap::return_from_syscall(frame) }
}

/// Lets the kernel lock go: `guard`'s lock, which is [`KERNEL`](super::kernel::KERNEL)
/// (the one lock of its type), unlocked as that static, so the way out need not carry the
/// guard's pointer (a guard that came through a function returning `Option` no longer
/// tells the compiler which lock it is).
#[inline(always)]
fn release(guard: KernelGuard) {
    // Given up without unlocking (nothing uses it again).
    let _: &mut Option<Kernel> = KernelGuard::leak(guard);
    // SAFETY: the guard just given up held KERNEL (the only `BitLock<Option<Kernel>>`), so
    // this CPU holds the lock.
    unsafe { super::kernel::KERNEL.force_unlock() };
}

impl Kernel {
    /// Whether an exit to user mode has work to do first: pager objects to terminate, the
    /// pageout daemon wanted, threads waiting for memory.
    #[inline(always)]
    pub fn way_out_work(&self) -> bool {
        debug_assert!(
            self.sched.memory_waiters.is_empty() || crate::vm::kernel_space::deferred_work()
        );
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

/// Ticks between the task swapper's passes.
const SWAPPER_PERIOD: u64 = super::swapper::TICKS_PER_SECOND;

impl Kernel {
    /// Runs the task swapper's pass once a second: cheap between passes.
    #[inline(always)]
    fn swapper_if_due(&mut self) {
        let now = arch::percpu::ticks();
        if now >= self.swapper_next {
            self.swapper_next = now + SWAPPER_PERIOD;
            self.swapper_pass(now);
            // On the same clock: the tables of tasks that did not run in the last period.
            self.collect_idle_tables(super::pmap_collect::Pass::Idle);
            // And the object tables' empty ends, after many tasks are gone.
            self.trim_tables();
        }
    }

    /// The swapper's pass: reads the paging counters, asks the policy what to do, does it.
    fn swapper_pass(&mut self, now: u64) {
        use crate::vm::statistics::{read, PAGEINS, PAGEOUTS};
        let devices = self.devices.counters();
        let now_cycles = crate::device::cycles();
        self.swapper.sample(Reading {
            now,
            paged: read(&PAGEINS) + read(&PAGEOUTS),
            device_pages: devices.pages_read + devices.pages_written,
            cycles: now_cycles,
            device_busy_cycles: crate::device::busy_cycles(now_cycles),
            free_pages: (crate::vm::kernel_space::free_frames() as u64)
                .saturating_sub(crate::vm::kernel_space::free_target() as u64),
        });
        let Some(servers) = self.pager_servers() else {
            return;
        };
        let mut candidates = Vec::new();
        if candidates.try_reserve(self.tasks.len()).is_err() {
            return;
        }
        candidates.extend(self.tasks.iter().map(|(id, t)| Candidate {
            task: id,
            resident_pages: if t.swapped_out {
                0
            } else {
                t.space.pmap().resident() as u64
            },
            resident_since: t.resident_since,
            // A collocated server has no memory of its own to give back.
            privileged: self.memory_privileged(Some(id))
                || servers.contains(&id)
                || self.colloc.hosts(id),
        }));
        match self.swapper.decide(now, &candidates) {
            Some(Action::SwapOut(task)) => {
                let _ = self.swap_out(task, Why::Thrashing);
            }
            Some(Action::SwapIn(task)) => {
                let why = self.swapper.why_in(now);
                self.swap_in(task, why);
            }
            None => {}
        }
    }

    /// The tasks that receive on a port the kernel sends pager requests to, each once
    /// (few: the pagers); `None` if the kernel heap has no room for the list.
    fn pager_servers(&self) -> Option<Vec<TaskId>> {
        let mut servers = Vec::new();
        for port in self.vm.pager_ports() {
            if let Some(Receiver::Task(task)) = self.ipc.port(port).map(|p| p.receiver) {
                if !servers.contains(&task) {
                    servers.try_reserve(1).ok()?;
                    servers.push(task);
                }
            }
        }
        Some(servers)
    }

    /// Whether the swapper must leave `task` be: a VM-privileged task, any pager, or a
    /// collocated server (which has no memory of its own).
    pub fn is_vm_privileged(&self, task: TaskId) -> bool {
        self.memory_privileged(Some(task))
            || self.colloc.hosts(task)
            || self.vm.pager_ports().any(|port| {
                self.ipc
                    .port(port)
                    .is_some_and(|p| p.receiver == Receiver::Task(task))
            })
    }

    /// Stops `task`: its threads stop (a running or ready one is held, a blocked one is held
    /// when woken), its page tables go, its pages (which it alone mapped) go to the head of
    /// the inactive queue, so the pageout daemon sends them to their pagers in clusters.
    /// `InvalidArgument` for a VM-privileged task; `Failure` if it is out already.
    pub fn swap_out(&mut self, task: TaskId, why: Why) -> Result<(), KernReturn> {
        if self.is_vm_privileged(task) {
            return Err(KernReturn::InvalidArgument);
        }
        let now = arch::percpu::ticks();
        let t = self.tasks.get(task).ok_or(KernReturn::InvalidArgument)?;
        if t.swapped_out {
            return Err(KernReturn::Failure);
        }
        // Its own pages, mapped or not (an idle task's tables may have been collected).
        let mut own = 0;
        t.space.for_each_own_page(self.vm.objects(), |_| own += 1);
        let pages = (t.space.pmap().resident() as u64).max(own);
        if !self.swapper.note_out(task, now, pages, why) {
            return Err(KernReturn::ResourceShortage);
        }
        let threads = core::mem::take(&mut self.tasks.get_mut(task).expect("live").threads);
        for &thread in &threads {
            let Some(t) = self.threads.get(thread) else {
                continue;
            };
            match t.state {
                ThreadState::Ready => {
                    let (priority, cpu) = (t.priority, usize::from(t.cpu));
                    self.sched.run_queues[cpu].remove(&mut self.threads, thread, priority);
                }
                ThreadState::Running => self.stop_running(thread),
                ThreadState::Blocked | ThreadState::Held => continue,
            }
            if let Some(t) = self.threads.get_mut(thread) {
                t.state = ThreadState::Held;
            }
        }
        let t = self.tasks.get_mut(task).expect("live");
        t.threads = threads;
        t.swapped_out = true;
        t.note_cold();
        let cleared = t.space.discard_translations(Dropped::Cold);
        // Its own pages go first, those no mapping named too (tables collected while it was
        // idle); pages it shared that another task maps stay where they are.
        let mut cold = 0;
        t.space.for_each_own_page(self.vm.objects(), |frame| {
            cold += u64::from(
                crate::vm::kernel_space::with_mappings(|m| m.make_cold(frame / PAGE)) == Some(true),
            );
        });
        log::info!(
            "swapper: out {} ({:?}): {pages} pages resident, {cleared} mappings dropped, \
             {cold} pages first for pageout; {}",
            t.name(),
            why,
            RatesNow(self.swapper.rates()),
        );
        Ok(())
    }

    /// Lets a swapped-out task run again: its held threads are queued, its tables are
    /// rebuilt by faults as it runs.
    pub fn swap_in(&mut self, task: TaskId, why: Why) {
        let now = arch::percpu::ticks();
        let Some(t) = self.tasks.get_mut(task) else {
            self.swapper.forget(task);
            return;
        };
        if !t.swapped_out {
            return;
        }
        t.swapped_out = false;
        t.note_cold();
        t.resident_since = now;
        let threads = core::mem::take(&mut t.threads);
        log::info!(
            "swapper: in {} ({:?}) after {} ticks; {}",
            t.name(),
            why,
            self.swapper
                .swapped_out()
                .find(|&(out, _)| out == task)
                .map_or(0, |(_, at)| now.saturating_sub(at)),
            RatesNow(self.swapper.rates()),
        );
        self.swapper.note_in(task, now, why);
        for &thread in &threads {
            if self
                .threads
                .get(thread)
                .is_some_and(|t| t.state == ThreadState::Held)
            {
                self.make_ready(thread);
            }
        }
        if let Some(t) = self.tasks.get_mut(task) {
            t.threads = threads;
        }
    }

    /// A message has been delivered to `thread`: an explicit wake-up, which brings its task
    /// back at once if the swapper had it out.
    #[inline(always)]
    pub fn woken_by_message(&mut self, thread: ThreadId) {
        if !self.swapper.any_out() {
            return;
        }
        let Some(t) = self.threads.get(thread) else {
            return;
        };
        let task = t.task;
        if self.tasks.get(task).is_some_and(|t| t.swapped_out) {
            self.swap_in(task, Why::Message);
        }
    }
}

/// The swapper's rates for a log line.
struct RatesNow(super::swapper::Rates);

impl core::fmt::Display for RatesNow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let r = &self.0;
        write!(
            f,
            "paging {}/s (5 s), {}/s (30 s), device busy {}% (5 s), {}% (30 s); start above \
             {}/s, stop below {}/s (capacity {}/s)",
            r.short, r.long, r.busy_short, r.busy_long, r.start, r.stop, r.capacity
        )
    }
}

impl Kernel {
    /// Console input has come: every thread waiting for it wakes to read (its call returns
    /// 0, and `console_read` reads again).
    pub fn wake_console_readers(&mut self) {
        while let Some(thread) = self.sched.console_readers.pop_front(&mut self.threads) {
            self.wake(thread, KernReturn::Success as u32, 0);
        }
    }
}

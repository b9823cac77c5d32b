//! Threads: saved user registers, scheduling state, and what to finish when woken.
//!
//! A thread blocked in the kernel holds no kernel stack: only this record (its registers and
//! a small continuation). Keep it small: it is the cost of every blocked thread.

use super::task::{Task, TaskId};
use super::timer_wheel::Timer;
use crate::arch::gdt::{USER_CODE, USER_DATA};
use crate::arch::trap::TrapFrame;
use crate::base::object_table::{EitherId, OneOf, Record};
use crate::ipc::port::PortId;
use crate::ipc::port_set::PortSetId;

pub use crate::base::ThreadId;

/// Default priority of user threads (0 is the lowest, 63 the highest).
pub const DEFAULT_PRIORITY: u8 = libipc::abi::syscall::DEFAULT_PRIORITY as u8;
/// Timer ticks a thread runs before others of its priority get the processor.
pub const QUANTUM_TICKS: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// On this CPU now.
    Running,
    /// In a run queue.
    Ready,
    /// Waiting; the continuation says for what.
    Blocked,
    /// Ready, but its task is swapped out: it runs once the task is swapped in.
    Held,
}

/// Where a receive takes messages from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveFrom {
    Port(PortId),
    Set(PortSetId),
}

/// A [`ReceiveFrom`] in one word: the port's id or the port set's, marked
/// (`object_table::EitherId`).
pub type PackedFrom = EitherId<crate::ipc::port::Port, crate::ipc::port_set::PortSet>;

impl PackedFrom {
    /// A port.
    #[inline(always)]
    pub fn port(port: PortId) -> Self {
        EitherId::first(port)
    }

    #[inline(always)]
    pub fn get(self) -> ReceiveFrom {
        match self.unpack() {
            OneOf::First(port) => ReceiveFrom::Port(port),
            OneOf::Second(set) => ReceiveFrom::Set(set),
        }
    }
}

impl From<ReceiveFrom> for PackedFrom {
    fn from(from: ReceiveFrom) -> Self {
        match from {
            ReceiveFrom::Port(port) => EitherId::first(port),
            ReceiveFrom::Set(set) => EitherId::second(set),
        }
    }
}

/// The receive half of a `mach_msg`, kept while the thread waits: what the call's
/// registers do not say. The rest (buffer, limit, receive name, options) stays in the
/// thread's saved registers, which nothing changes while it waits: [`ReceiveCall::of`] reads
/// it there, so a thread that starts to wait stores three fields, not seven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveArgs {
    pub from: PackedFrom,
    /// Tick at which to give up, if any.
    pub deadline: Option<u64>,
    /// The buffer's page as translated when the wait began, if it was then mapped writable.
    pub kept: Option<KeptPage>,
}

/// What a `mach_msg`'s arguments say about its receive half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveCall {
    /// User address of the receive buffer.
    pub buffer: u64,
    /// Its size.
    pub limit: u64,
    /// The name the thread receives on (the receiving port's name when it receives from a
    /// port).
    pub name: u32,
    /// A short message may come in registers (`options::RECEIVE_REGISTERS`): the fast path
    /// delivers one there; everything else still goes into the buffer.
    pub registers: bool,
}

impl ReceiveCall {
    /// From the six arguments of a `mach_msg` call.
    #[inline(always)]
    pub fn from_arguments(a: &[u64; 6]) -> Self {
        let [buffer, option, _, limit, name, _] = *a;
        ReceiveCall {
            buffer,
            limit,
            name: name as u32,
            registers: option & libipc::abi::message::options::RECEIVE_REGISTERS != 0,
        }
    }

    /// From the saved registers of a thread that waits in `mach_msg` (they hold its call's
    /// arguments while it waits: only the result registers are written when it wakes).
    #[inline(always)]
    pub fn of(frame: &TrapFrame) -> Self {
        Self::from_arguments(&frame.syscall_arguments())
    }
}

/// A receive buffer's page kept translated while its thread waits: its direct-map address
/// and the pmaps' change stamp (`pmap::stamp`) read before the translation. Good only while
/// the stamp still reads the same: any change to any pmap (an unmap, a pageout, a fork's
/// write protection, an exec) moves it on. (The stamp is never 0: `Option<KeptPage>` is two
/// words, and `None` one store.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptPage {
    /// Direct-map address of the page's frame.
    pub page: u64,
    pub stamp: core::num::NonZeroU64,
}

const _: () = assert!(core::mem::size_of::<Option<KeptPage>>() == 16);

impl KeptPage {
    /// The page, if the translation still holds.
    #[inline(always)]
    pub fn get(kept: Option<KeptPage>) -> Option<u64> {
        kept.filter(|k| k.stamp.get() == crate::vm::pmap::stamp())
            .map(|k| k.page)
    }
}

/// What a blocked thread finishes when it wakes, instead of a kernel stack to return to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Continuation {
    /// Nothing to finish: return to user mode with the registers as saved.
    ReturnToUser,
    /// Waiting for a message; the sender writes it straight into the buffer.
    Receive(ReceiveArgs),
    /// Waiting for room on a full port (the message waits with the port); then receiving.
    Send {
        port: PortId,
        then: Option<ReceiveArgs>,
    },
    /// Waiting for the task behind a task port to exit.
    TaskWait { port: PortId },
    /// Waiting for console input (`console_read`); woken to read again.
    ConsoleWait,
    /// Waiting for free memory (the pageout daemon) to fault again.
    MemoryWait {
        resume: crate::kern::memory::pager::Resume,
    },
    /// Waiting for a pager to supply the page at `offset` of `object`.
    PageWait {
        object: crate::vm::address_space::ObjectId,
        offset: u64,
        resume: crate::kern::memory::pager::Resume,
    },
}

#[repr(C)]
pub struct Thread {
    /// Saved user registers; the entry code writes them here directly.
    pub frame: TrapFrame,
    pub task: TaskId,
    pub state: ThreadState,
    pub continuation: Continuation,
    pub priority: u8,
    pub quantum: u8,
    /// The CPU whose run queue holds the thread while it is ready, and where it last ran
    /// (`kern::sched`). In what was padding.
    pub cpu: u8,
    /// Bound to `cpu` (`ThreadBind`): it is queued and run there alone, and load balancing
    /// leaves it there. In what was padding.
    pub bound: bool,
    /// Where the thread is in its task's list of threads (`Task::threads`), so that it
    /// leaves the list in constant time (`kern::thread_calls`). In what was padding.
    pub index_in_task: u32,
    /// Links in the run queue or a wait queue (a thread is in at most one): the next, and
    /// the previous (stale while the thread is the head: `base::queue::Links`), so that a
    /// thread leaves any queue in constant time (a task of a million threads dies in linear
    /// time whatever the order they wait in).
    pub queue_next: Option<ThreadId>,
    pub queue_previous: Option<ThreadId>,
    /// The deadline of the current wait, linked into the kernel's timer wheel.
    pub timer: Timer<ThreadId>,
    /// `task`'s record: the IPC fast path reaches a thread's task through it without a
    /// lookup.
    pub task_record: TaskRecord,
}

/// A pointer to a thread's task record. Valid while the thread lives: a task's threads are
/// removed before the task.
pub type TaskRecord = Record<Task>;

/// A pointer to a thread's record, kept beside the thread's id: valid while that id names a
/// live thread.
pub type ThreadRecord = Record<Thread>;

impl Thread {
    /// A thread of `task` (whose record `task_record` is) that will start in user mode at
    /// `entry` with stack `stack` and the three start arguments in rdi, rsi, rdx.
    pub fn new(
        task: TaskId,
        task_record: TaskRecord,
        entry: u64,
        stack: u64,
        arguments: [u64; 3],
    ) -> Thread {
        Thread {
            frame: Self::initial_frame(entry, stack, arguments),
            task,
            state: ThreadState::Ready,
            continuation: Continuation::ReturnToUser,
            priority: DEFAULT_PRIORITY,
            quantum: QUANTUM_TICKS,
            cpu: 0,
            bound: false,
            index_in_task: 0,
            queue_next: None,
            queue_previous: None,
            timer: Timer::DISARMED,
            task_record,
        }
    }

    /// The user registers of a thread about to start at `entry` with stack `stack` and the
    /// three start arguments in rdi, rsi, rdx.
    pub fn initial_frame(entry: u64, stack: u64, arguments: [u64; 3]) -> TrapFrame {
        TrapFrame {
            rip: entry,
            cs: u64::from(USER_CODE),
            rflags: 0x202, // IF
            rsp: stack,
            ss: u64::from(USER_DATA),
            rdi: arguments[0],
            rsi: arguments[1],
            rdx: arguments[2],
            ..TrapFrame::default()
        }
    }
}

/// Kernel bytes a thread costs, blocked or not: its record and its table slot. There is no
/// kernel stack to add: blocked threads keep none.
pub fn bytes_per_thread() -> usize {
    core::mem::size_of::<Thread>()
        + crate::base::object_table::Table::<Thread, crate::base::ThreadTag>::slot_overhead()
}

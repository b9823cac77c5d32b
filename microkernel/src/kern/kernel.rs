//! The kernel's state: every kernel object table and the scheduler, behind one lock.
//!
//! The kernel is not preemptible and runs with interrupts disabled, so the lock is only
//! contended once other CPUs run (it is then the big kernel lock DESIGN.md allows to start
//! with). A guard is never held across a return to user mode or an idle wait.

use super::program::ProgramImage;
use super::task::{Task, TaskId};
use super::thread::{Thread, ThreadId};
use super::timer_wheel::{Timer, TimerLinks};
use crate::base::bit_lock::{BitLock, BitLockGuard};
use crate::base::object_table::Table;
use crate::base::queue::Links;
use crate::base::{TaskTag, ThreadTag};
use crate::ipc::port::PortId;
use crate::vm::address_space::ObjectId;
use crate::vm::shared_text::SharedText;
use alloc::string::String;
use alloc::vec::Vec;

pub struct Kernel {
    pub tasks: Table<Task, TaskTag>,
    pub threads: Table<Thread, ThreadTag>,
    /// Memory objects and their pagers.
    pub vm: super::memory::Vm,
    /// Ports and port sets.
    pub ipc: crate::ipc::Ipc,
    /// The scheduler: run queues, the running thread, deadlines and wait queues.
    pub(crate) sched: super::sched::Scheduler,
    /// The boot archive: its bytes (through the direct map) and physical address.
    pub(super) archive: Option<(&'static [u8], u64)>,
    /// Objects over program files in the archive, shared by every task running them, and
    /// the page table of each program's text that they share (made with its first task).
    pub(super) programs: Vec<(String, ObjectId, Option<SharedText>)>,
    /// Programs already checked: name, image, and where the file lies in the archive, so
    /// spawn and exec do not parse the archive and the ELF again.
    pub(super) parsed: Vec<(String, ProgramImage, usize, usize)>,
    /// The first task and, once it has exited, its status.
    pub(super) init: Option<TaskId>,
    pub(super) init_status: Option<u64>,
    /// The devices the kernel drives; a finished transfer's tag is the reply right of the
    /// request that started it (and, for a write from borrowed frames, their memory).
    pub(crate) devices: crate::device::Devices<crate::kern::device_port::DeviceTag>,
    /// The device master port (`device_master.open`) and each device's port, by index.
    pub(crate) device_master: Option<PortId>,
    pub(crate) device_ports: Vec<PortId>,
    /// The `zcache=` option, for bootstrap (`KernelOption`).
    pub(crate) zcache_option: Option<String>,
    /// The `args=` option, for the first task (`KernelOption`).
    pub(crate) args_option: Option<String>,
    /// The `sh=` option, for the shell (`KernelOption`).
    pub(crate) sh_option: Option<String>,
    /// `start=`: programs bootstrap starts besides its own list (read with `KernelOption`).
    pub(crate) start_option: Option<String>,
    /// The `swap=` option, for the default pager (`KernelOption`).
    pub(crate) swap_option: Option<String>,
    /// The task swapper's policy and record (`kern::swapper`); `kern::sched` applies it.
    pub(crate) swapper: super::swapper::Swapper<TaskId>,
    /// The tick of the swapper's next pass.
    pub(super) swapper_next: u64,
    /// The last job number given to a spawned task.
    pub(super) next_job: u32,
    /// The collocated servers (`colloc`).
    pub(crate) colloc: crate::kern::colloc::KernelServers,
}

/// The kernel lock and what it guards (one lock: see docs/decisions.md).
pub static KERNEL: BitLock<Option<Kernel>> = BitLock::new(None);

/// The kernel lock held.
pub type KernelGuard = BitLockGuard<'static, Option<Kernel>>;

impl Links<ThreadId> for Table<Thread, ThreadTag> {
    fn next(&self, thread: ThreadId) -> Option<ThreadId> {
        self.get(thread).and_then(|t| t.queue_next)
    }

    fn set_next(&mut self, thread: ThreadId, next: Option<ThreadId>) {
        if let Some(t) = self.get_mut(thread) {
            t.queue_next = next;
        }
    }

    fn previous(&self, thread: ThreadId) -> Option<ThreadId> {
        self.get(thread).and_then(|t| t.queue_previous)
    }

    fn set_previous(&mut self, thread: ThreadId, previous: Option<ThreadId>) {
        if let Some(t) = self.get_mut(thread) {
            t.queue_previous = previous;
        }
    }
}

impl TimerLinks<ThreadId> for Table<Thread, ThreadTag> {
    fn timer(&self, thread: ThreadId) -> Timer<ThreadId> {
        self.get(thread).map_or(Timer::DISARMED, |t| t.timer)
    }

    fn set_timer(&mut self, thread: ThreadId, timer: Timer<ThreadId>) {
        if let Some(t) = self.get_mut(thread) {
            t.timer = timer;
        }
    }
}

impl Kernel {
    /// Gives back the unused ends of the kernel's object tables (tasks, threads, ports and
    /// sets, VM objects: `Table::trim`) and of the reverse map's pool (`Mappings::trim`)
    /// once most of one is empty; how many slots and entries went.
    /// Once a second, after the swapper's pass: each walks its table.
    pub fn trim_tables(&mut self) -> usize {
        self.tasks.trim()
            + self.threads.trim()
            + self.ipc.trim_tables()
            + self.vm.objects_mut().trim()
            + crate::vm::kernel_space::with_mappings(|m| m.trim()).unwrap_or(0)
    }

    pub fn new(archive: Option<(&'static [u8], u64)>) -> Kernel {
        Kernel {
            tasks: Table::new(),
            threads: Table::new(),
            vm: super::memory::Vm::new(),
            ipc: crate::ipc::Ipc::new(),
            sched: super::sched::Scheduler::new(),
            archive,
            programs: Vec::new(),
            parsed: Vec::new(),
            init: None,
            init_status: None,
            devices: crate::device::Devices::new(),
            device_master: None,
            device_ports: Vec::new(),
            swap_option: None,
            zcache_option: None,
            args_option: None,
            sh_option: None,
            start_option: None,
            swapper: super::swapper::Swapper::new(super::swapper::Config::OSF),
            swapper_next: 0,
            next_job: 0,
            colloc: crate::colloc::Servers::new(),
        }
    }

    /// Whether `task` is VM-privileged for memory: the default pager, the backing store
    /// behind it or the program pager, which free memory or serve every task's text and so
    /// may take the last free pages and are never ended for want of memory.
    #[inline(always)]
    pub fn memory_privileged(&self, task: Option<TaskId>) -> bool {
        self.vm.memory_privileged(task)
    }

    /// The thread running on this CPU.
    #[inline(always)]
    pub fn current(&self) -> Option<ThreadId> {
        self.sched.current()
    }
}

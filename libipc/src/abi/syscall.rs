//! System call numbers and the register convention.
//!
//! `syscall` with the number in `rax` and arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`.
//! On return `rax` holds a [`KernReturn`](super::KernReturn) code and `rdx` a result value
//! where the call has one; `rcx` and `r11` are clobbered (the CPU uses them), every other
//! register is preserved, except `rsi` of `MachMsg`: a call whose receive had to wait for a
//! pager's page after its send went runs again as a receive only, with `rsi`'s send bits
//! cleared.

/// The system calls. Numbers are stable: retired calls keep their number, unused.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// `(bytes: *const u8, len: usize)`: writes to the kernel console. Success, or
    /// `InvalidAddress` if the bytes are not readable, `InvalidArgument` if `len` exceeds
    /// [`DEBUG_WRITE_MAX`].
    DebugWrite = 0,
    /// `(status: u64)`: terminates the calling task. Does not return.
    TaskExit = 1,
    /// `()`: gives up the processor to another thread of the same or higher priority.
    ThreadYield = 2,
    /// `(buffer, options, send_size, receive_limit, receive_name, timeout_ms)`: sends the
    /// message in `buffer` and/or receives one into it (see [`super::message`]). `rax` is a
    /// [`MsgReturn`](super::message::MsgReturn); `rdx` the size of the message received.
    MachMsg = 3,
    /// `(kind)`: a new port whose receive right the caller gets ([`PORT_KIND_RECEIVE`]) or a
    /// new empty port set ([`PORT_KIND_SET`]). Returns the name.
    PortAllocate = 4,
    /// `(name)`: drops one user reference of a send right, a send-once right or a dead name,
    /// or destroys a port set.
    PortDeallocate = 5,
    /// `(name)`: destroys the port whose receive right `name` holds (senders then see a dead
    /// name) and frees the name.
    PortDestroy = 6,
    /// `(name)`: makes a send right from the receive right under `name`, under the same name.
    PortInsertSend = 7,
    /// `(name, right)`: user references of `right` ([`RIGHT_RECEIVE`] ...) under `name`.
    PortGetRefs = 8,
    /// `(member, set)`: moves the port whose receive right is `member` into port set `set`,
    /// or out of its set when `set` is 0.
    PortMove = 9,
    /// `(name, kind, notify)`: asks for a notification on `notify` (a receive right of the
    /// caller's): `notify::DEAD_NAME` when the port of send right `name` dies, or
    /// `notify::NO_SENDERS` when the port whose receive right is `name` loses its last send
    /// right.
    PortRequestNotification = 10,
    /// `(program, program_len, give, argument, args, args_len)`: starts `program` from the
    /// boot archive as a new task. Its first thread gets, in rdi, the name of a copy of the
    /// caller's send right `give` (0 for none) and `argument` in rsi; the `args_len` bytes at
    /// `args` (at most [`ARGS_MAX`]; none when 0) go into its arguments block
    /// ([`ARGS_BLOCK`]). Returns a send right to the new task's port.
    TaskSpawn = 11,
    /// `(task, timeout_ms)`: waits until the task behind task port `task` exits; returns its
    /// status (`u64::MAX` if the kernel terminated it). Waits at most `timeout_ms`
    /// (`u64::MAX`: for ever; 0: not at all), then `OperationTimedOut`.
    TaskWait = 12,
    /// `(task, flags)`: terminates the task behind task port `task`; with
    /// [`TERMINATE_JOB`], every other task of its job too (the tasks forked from it and from
    /// each other since a task was spawned: what a shell's Ctrl-C ends), the caller never.
    TaskTerminate = 13,
    /// `(selector)`: a kernel statistic ([`HOST_FREE_FRAMES`] ...).
    HostInfo = 14,
    /// `(priority)`: sets the calling thread's scheduling priority, 0 (lowest) to
    /// [`MAX_PRIORITY`]; returns the previous one.
    ThreadSetPriority = 15,
    /// `(host, status)`: powers the machine off, reporting `status` (0: success). Needs a
    /// send right to the privileged host port, which the kernel gives only the first task
    /// (as its first start argument). Returns only on error.
    HostShutdown = 16,
    /// `(address, size, flags)`: a new zero-filled region of `size` bytes (rounded up to
    /// pages) at `address` (page-aligned), or anywhere with [`VM_ANYWHERE`]. Returns its
    /// address. `NoSpace` if it does not fit.
    VmAllocate = 17,
    /// `(address, size)`: removes every mapping in the range (holes are fine); memory no
    /// one maps any more is freed.
    VmDeallocate = 18,
    /// `(address, size, set_maximum, protection)`: sets the current (or, with
    /// `set_maximum` 1, the maximum) protection ([`VM_PROT_READ`] ...) of a fully mapped
    /// range. `ProtectionFailure` if it exceeds a region's maximum.
    VmProtect = 19,
    /// `(address, size, inheritance)`: what children get at fork ([`VM_INHERIT_SHARE`] ...).
    VmInherit = 20,
    /// `(address, size, strategy)`: the expected access pattern ([`VM_BEHAVIOR_NORMAL`] ...),
    /// which drives read-ahead once pagers exist.
    VmBehaviorSet = 21,
    /// `(address, info)`: describes the first region at or above `address` into the
    /// [`RegionInfo`] at `info`; returns its start. `InvalidAddress` when there is none.
    VmRegion = 22,
    /// `()`: a copy of the calling task: its memory by each region's inheritance (copied
    /// on write by default), its send rights and dead names under the same names, and one
    /// thread that returns from this call as the caller does. Returns, in the parent, a send
    /// right to the child's task port; in the child, 0.
    TaskFork = 23,
    /// `(program, program_len, argument)`: replaces the calling task's memory with
    /// `program` from the boot archive and starts it (its start arguments 0, `argument`, 0);
    /// the task keeps its port rights. Returns only on error (the old program goes on).
    TaskExec = 24,
    /// `(address, size, flags, object, offset, protection)`: maps `size` bytes of memory
    /// object `object` (a send right to a pager's port) from `offset` (page-aligned) at
    /// `address`, or anywhere with [`VM_ANYWHERE`], with `protection` (`VM_PROT_*`). The
    /// pager serves its pages (see `libipc::pager`). Returns the address. `InvalidName` or
    /// `InvalidRight` for a bad name, `InvalidArgument` for a bad size, offset or
    /// protection, `NoSpace` if it does not fit.
    VmMap = 25,
    /// `(statistics)`: writes the VM counters as a [`VmStatistics`] at `statistics`.
    VmStatistics = 26,
    /// `(host, pager)`: makes the port behind send right `pager` the default pager, which
    /// the kernel asks to back anonymous memory it pages out (`libipc::pager::default_pager`),
    /// and the task holding its receive right VM-privileged (it may use the last free pages).
    /// Needs a send right to the host port. Only a pager no object uses yet can be replaced.
    HostSetDefaultPager = 27,
    /// `(host, pager)`: makes the port behind send right `pager` the program pager: programs
    /// loaded from the boot archive from now on map their files from memory objects it
    /// serves (`libipc::pager::program_pager`), text shared and paged in clusters. Needs a
    /// send right to the host port.
    HostSetProgramPager = 28,
    /// `(host)`: a new send right to the device master port (`libipc::device`), whose
    /// `open` gives device ports. Needs a send right to the host port. Returns its name.
    HostDeviceMaster = 29,
    /// `(key, key_len, buffer, buffer_len)`: copies the value of the kernel command-line
    /// option `key` meant for programs (`swap`, `zcache`, `args`, `sh`, `collocate`, `start`)
    /// to `buffer`; returns its length.
    /// `InvalidArgument` for a key that is not such an option or was not given, `NoSpace`
    /// (nothing copied) when the buffer is too short, `InvalidAddress` for a bad buffer.
    KernelOption = 30,
    /// `(host, store)`: the task serving the port behind send right `store` is the backing
    /// store of the default pager (stacked behind it): VM-privileged like the default pager.
    /// Needs a send right to the host port.
    HostSetBackingStore = 31,
    /// `(task, operation)`: swaps the task behind task-port send right `task` out
    /// ([`super::swapper::SWAP_OUT`]: its threads stop, its page tables go, its pages leave
    /// first) or back in ([`super::swapper::SWAP_IN`]), as the task swapper would.
    /// `InvalidArgument` for a VM-privileged task or an unknown operation, `Failure` if it
    /// is already out (or in).
    TaskSwap = 32,
    /// `(info)`: writes the task swapper's state, counters and trace as a
    /// [`super::swapper::SwapperInfo`] at `info`.
    SwapperInfo = 33,
    /// `(buffer, count)`: writes up to `count` [`super::swapper::TaskInfo`] records, one per
    /// task, at `buffer`; returns how many tasks there are (more than `count` when the
    /// buffer was too short).
    HostTasks = 34,
    /// `(buffer, len, timeout_ms)`: reads up to `len` bytes (at most [`CONSOLE_READ_MAX`]) of
    /// console input into `buffer`; returns how many. With none waiting: 0 at once if
    /// `timeout_ms` is 0, else waits (at most `timeout_ms`, `u64::MAX` for ever) and returns
    /// 0 when input has come (read again) or `OperationTimedOut`.
    ConsoleRead = 35,
    /// `()`: maps the whole boot archive (format `libipc::abi::archive`, padded to whole
    /// pages) anywhere in the caller's space, readable only (its maximum protection: a
    /// copy-on-write view, so even a later write could never reach the archive). Returns its
    /// address; its size is the region's (`VmRegion`). For a file server (`bootfs`) serving
    /// any archive file, programs or data. No privilege: every task may run the archive's
    /// programs anyway. `InvalidArgument` when the kernel has no archive, `NoSpace` or
    /// `ResourceShortage` when it cannot be mapped.
    BootArchive = 36,
    /// `(task, bytes)`: sets the kernel memory quota of the task behind task port `task`:
    /// past it, the calls by which a task makes kernel objects (`PortAllocate`, `VmAllocate`,
    /// `VmMap`) return `ResourceShortage`, and nothing else happens to it. 0 restores the
    /// default ([`DEFAULT_QUOTA_DIVISOR`]). Returns the quota it had. VM-privileged tasks (the
    /// pagers) have none.
    TaskSetQuota = 37,
    /// `(host, server, server_len, give, argument)`: starts `server`, a server linked into
    /// the kernel (`servers/boot.toml`'s `collocated = true`), as a collocated task: a task
    /// with no user memory whose code runs in the kernel, on the thread of whoever sends to
    /// its ports. It starts as a spawned task does (`give` and `argument` its first two start
    /// arguments) and returns its service port. Returns the caller's name for a send right
    /// to the new task's port in the low 32 bits, and for a send right to the server's
    /// service port in the high 32. Privileged: `host` must be the host port.
    /// `InvalidArgument` when no server of that name is linked in; the server's own error
    /// when its start fails.
    TaskSpawnCollocated = 38,
    /// `(device, reply, offset, address, length, write)`, collocated servers only (a task's
    /// trap gets `InvalidSyscall`): a transfer on the device whose port `device` is a send
    /// right to, made as a call instead of a message. `write` 0: `device.read` of `length`
    /// bytes at `offset`; 1: `device.write` at `offset` of the pages `[address, +length)`,
    /// which leave the caller's map (as a moved out-of-line region does). The answer comes
    /// as `device.read`'s or `device.write`'s reply to `reply` (a receive right of the
    /// caller's, which gets a send-once right made from it), just as for the message. Errors
    /// here: `InvalidName` (no device port, or no receive right `reply`), `InvalidArgument`,
    /// `InvalidAddress` (the pages are not the caller's); a transfer the device refuses is
    /// answered in the reply.
    DeviceTransfer = 39,
    /// `(entry, stack, argument)`: a new thread of the caller's task, started at `entry` in
    /// user mode with stack pointer `stack` and `argument` in rdi, at the caller's priority.
    /// It has no port (a task may have more threads than names); it ends with
    /// [`Syscall::ThreadExit`], or with its task. Returns how many threads the task has now.
    /// `InvalidAddress` when `entry` or `stack` is outside user space, `ResourceShortage`
    /// past the task's quota (each thread is charged its kernel record) or when the kernel
    /// is refusing new tasks for want of memory. With more than one thread a task cannot
    /// `TaskExec` (`InvalidArgument`); `TaskFork` copies only the calling thread.
    ThreadCreate = 40,
    /// `(status)`: ends the calling thread. Its task's last thread ends the task, as
    /// `TaskExit(status)` does. Never returns.
    ThreadExit = 41,
    /// `(cpu)`: binds the calling thread to processor `cpu` (an index below `HostInfo`'s
    /// `HOST_CPUS`; the boot CPU is 0): from the call's return on it runs there alone, and
    /// load balancing leaves it there. [`THREAD_UNBOUND`] unbinds it. Returns the processor
    /// it runs on. `InvalidArgument` for a processor that is not online. Not inherited by a
    /// forked child. IPC to a task with bound threads takes the general path (the fast path
    /// runs a receiver on the sender's processor).
    ThreadBind = 42,
}

/// `ThreadBind`'s argument that unbinds the thread.
pub const THREAD_UNBOUND: u64 = u64::MAX;

/// `DeviceTransfer`'s `write` argument.
pub mod transfer {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
}

/// A task's kernel memory quota is the machine's memory divided by this, unless set
/// (`TaskSetQuota`). What a task is charged is `abi::swapper::TaskInfo::kernel_bytes` as the
/// kernel counts it without walking its ports: its records, its name space's table with a
/// port record for every name, its map's table and its page tables.
pub const DEFAULT_QUOTA_DIVISOR: u64 = 8;

/// Most bytes one `ConsoleRead` returns.
pub const CONSOLE_READ_MAX: usize = 4096;

impl Syscall {
    pub const ALL: [Syscall; 43] = [
        Syscall::DebugWrite,
        Syscall::TaskExit,
        Syscall::ThreadYield,
        Syscall::MachMsg,
        Syscall::PortAllocate,
        Syscall::PortDeallocate,
        Syscall::PortDestroy,
        Syscall::PortInsertSend,
        Syscall::PortGetRefs,
        Syscall::PortMove,
        Syscall::PortRequestNotification,
        Syscall::TaskSpawn,
        Syscall::TaskWait,
        Syscall::TaskTerminate,
        Syscall::HostInfo,
        Syscall::ThreadSetPriority,
        Syscall::HostShutdown,
        Syscall::VmAllocate,
        Syscall::VmDeallocate,
        Syscall::VmProtect,
        Syscall::VmInherit,
        Syscall::VmBehaviorSet,
        Syscall::VmRegion,
        Syscall::TaskFork,
        Syscall::TaskExec,
        Syscall::VmMap,
        Syscall::VmStatistics,
        Syscall::HostSetDefaultPager,
        Syscall::HostSetProgramPager,
        Syscall::HostDeviceMaster,
        Syscall::KernelOption,
        Syscall::HostSetBackingStore,
        Syscall::TaskSwap,
        Syscall::SwapperInfo,
        Syscall::HostTasks,
        Syscall::ConsoleRead,
        Syscall::BootArchive,
        Syscall::TaskSetQuota,
        Syscall::TaskSpawnCollocated,
        Syscall::DeviceTransfer,
        Syscall::ThreadCreate,
        Syscall::ThreadExit,
        Syscall::ThreadBind,
    ];

    /// Decodes a call number; the numbers are dense, so this is a bounds check.
    pub fn from_raw(raw: u64) -> Option<Syscall> {
        Self::ALL.get(usize::try_from(raw).ok()?).copied()
    }
}

/// Longest kernel command line, in bytes: the kernel keeps only the whole words of a
/// longer one (and says so), and `cargo image` refuses one.
pub const KERNEL_CMDLINE_MAX: usize = 1024;

/// `TaskTerminate` flag: the task's whole job.
pub const TERMINATE_JOB: u64 = 1;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;

/// Longest console write the kernel accepts in one call.
pub const DEBUG_WRITE_MAX: usize = 4096;

/// The lowest address a task may map: everything below stays unmapped, so a null pointer
/// (plus up to 2 MiB) faults.
pub const USER_BASE: u64 = 0x0020_0000;
/// Where user programs are linked: their text and read-only data (`servers/user.ld`), alone
/// in the 2 MiB from here, so that the tasks running one program share the page table that
/// maps them (docs/decisions.md, "Shared page tables of program text").
pub const USER_IMAGE_BASE: u64 = 0x0040_0000;
/// Where a program's data and bss are linked: in the next 2 MiB, above the stack.
pub const USER_DATA_BASE: u64 = 0x0070_0000;
/// The first address above user space: one page below the end of the lower canonical half
/// (`2^47`), as in Linux. The page under that end is never mapped, so no `syscall` can sit
/// in its last two bytes: every return address `syscall` saves is canonical, and the way
/// back to user mode can use `sysret` without checking it (docs/decisions.md, "Registers
/// saved straight into the thread").
pub const USER_END: u64 = CANONICAL_LOWER_END - 4096;
/// One past the highest canonical lower-half address (47 bits).
pub const CANONICAL_LOWER_END: u64 = 0x0000_8000_0000_0000;
/// Top of the initial thread's stack; the stack grows down from here, right below the
/// program's data. A task's stack, data and first `VM_ANYWHERE` regions thus share one page
/// table, and with the shared table of its text one page-directory page and its upper
/// levels: a small task's page tables are four pages of its own (root, PDPT, PD and a page
/// table), not the ten that a stack at the top of user space and regions at 16 TiB took,
/// each in its own top-level slot (see docs/decisions.md, "A small task's page tables").
/// Below the stack is the text's 2 MiB, whose end no program fills and which is never
/// writable: an overflowing stack faults.
pub const USER_STACK_TOP: u64 = USER_DATA_BASE;
/// A new task's arguments block, at the top of its stack: [`ARGS_MAGIC`], the length, then
/// the bytes (its arguments as text: `libipc::rt::args`). The first task gets the kernel's
/// `args=` option there; a spawned task what its parent gave `TaskSpawn`.
pub const ARGS_BLOCK: u64 = USER_STACK_TOP - 512;
/// Most bytes of arguments.
pub const ARGS_MAX: usize = 256;
/// Marks an arguments block (the stack is zero where there is none).
pub const ARGS_MAGIC: u64 = u64::from_le_bytes(*b"umk_args");
/// Where a new thread's stack pointer starts: below the arguments block.
pub const INITIAL_STACK_POINTER: u64 = ARGS_BLOCK;
const _: () = assert!(ARGS_BLOCK + 16 + ARGS_MAX as u64 <= USER_STACK_TOP);
const _: () = assert!(USER_STACK_TOP - USER_STACK_SIZE >= USER_IMAGE_BASE + 0x20_0000);

/// Largest size of the initial thread's stack (zero-filled on demand).
pub const USER_STACK_SIZE: u64 = 1024 * 1024;

/// `PortAllocate` kinds.
pub const PORT_KIND_RECEIVE: u64 = 0;
pub const PORT_KIND_SET: u64 = 1;

/// `PortGetRefs` rights.
pub const RIGHT_RECEIVE: u64 = 0;
pub const RIGHT_SEND: u64 = 1;
pub const RIGHT_SEND_ONCE: u64 = 2;
pub const RIGHT_PORT_SET: u64 = 3;
pub const RIGHT_DEAD_NAME: u64 = 4;

/// `HostInfo` selectors.
pub const HOST_FREE_FRAMES: u64 = 0;
pub const HOST_TASKS: u64 = 1;
pub const HOST_THREADS: u64 = 2;
pub const HOST_PORTS: u64 = 3;
pub const HOST_HEAP_BYTES: u64 = 4;
pub const HOST_TICKS: u64 = 5;
/// Kernel bytes a blocked thread costs (its record and table slot).
pub const HOST_BYTES_PER_THREAD: u64 = 6;
/// Kernel bytes a task costs besides its threads and memory (record, slot, port, empty
/// space), not counting the page-table root.
pub const HOST_BYTES_PER_TASK: u64 = 7;

/// The highest thread priority; new threads start at [`DEFAULT_PRIORITY`].
pub const MAX_PRIORITY: u64 = 63;
pub const DEFAULT_PRIORITY: u64 = 31;
/// The priority default pagers run at: above ordinary threads, so that a pager woken by its
/// disk or by the kernel's pageout runs at once (memory comes back sooner under load).
pub const PAGER_PRIORITY: u64 = DEFAULT_PRIORITY + 8;

/// Pages the kernel heap holds (in use or cached for reuse).
pub const HOST_HEAP_PAGES: u64 = 8;

/// Deadlines armed by threads waiting with a timeout.
pub const HOST_TIMERS: u64 = 9;

/// `VmAllocate` flag: place the region anywhere (the address argument is ignored).
pub const VM_ANYWHERE: u64 = 1;
/// Where `VM_ANYWHERE` starts looking (first fit): the stack's start, so the first regions go
/// right after the program's data, in the page table the stack and data already have (and
/// never in the 2 MiB of the program's text, which would then need a table of its own).
pub const VM_ANYWHERE_BASE: u64 = USER_STACK_TOP - USER_STACK_SIZE;

/// Protection bits.
pub const VM_PROT_READ: u64 = 1;
pub const VM_PROT_WRITE: u64 = 2;
pub const VM_PROT_EXECUTE: u64 = 4;

/// Inheritance values.
pub const VM_INHERIT_SHARE: u64 = 0;
pub const VM_INHERIT_COPY: u64 = 1;
pub const VM_INHERIT_NONE: u64 = 2;

/// Access strategies.
pub const VM_BEHAVIOR_NORMAL: u64 = 0;
pub const VM_BEHAVIOR_SEQUENTIAL: u64 = 1;
pub const VM_BEHAVIOR_REVERSE: u64 = 2;
pub const VM_BEHAVIOR_RANDOM: u64 = 3;

/// What `VmRegion` reports about a region.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionInfo {
    pub start: u64,
    pub end: u64,
    /// Offset of `start` in the region's memory object.
    pub offset: u64,
    pub protection: u8,
    pub max_protection: u8,
    pub inheritance: u8,
    pub behavior: u8,
    pub reserved: u32,
    /// For a region mapping a pager's object (directly or behind copy-on-write copies of
    /// it): what the kernel did with that object since it was made, as
    /// `libipc::pager::ObjectStatistics` says (`data_request`s and their pages, pages asked
    /// for ahead and those then faulted on, `data_return`s and their pages). Zeros for
    /// other memory.
    pub pager_requests: u64,
    pub pager_pages_requested: u64,
    pub pager_prefetched: u64,
    pub pager_prefetch_used: u64,
    pub pager_returns: u64,
    pub pager_pages_returned: u64,
}

impl RegionInfo {
    pub const SIZE: usize = core::mem::size_of::<RegionInfo>();

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        b[..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..16].copy_from_slice(&self.end.to_le_bytes());
        b[16..24].copy_from_slice(&self.offset.to_le_bytes());
        b[24] = self.protection;
        b[25] = self.max_protection;
        b[26] = self.inheritance;
        b[27] = self.behavior;
        let pager = [
            self.pager_requests,
            self.pager_pages_requested,
            self.pager_prefetched,
            self.pager_prefetch_used,
            self.pager_returns,
            self.pager_pages_returned,
        ];
        for (i, value) in pager.iter().enumerate() {
            b[32 + 8 * i..40 + 8 * i].copy_from_slice(&value.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> RegionInfo {
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        RegionInfo {
            start: word(0),
            end: word(8),
            offset: word(16),
            protection: b[24],
            max_protection: b[25],
            inheritance: b[26],
            behavior: b[27],
            reserved: 0,
            pager_requests: word(32),
            pager_pages_requested: word(40),
            pager_prefetched: word(48),
            pager_prefetch_used: word(56),
            pager_returns: word(64),
            pager_pages_returned: word(72),
        }
    }
}

/// VM counters: faults resolved, pages zero-filled, pages copied on write, backing objects
/// collapsed, and memory objects alive.
pub const HOST_VM_FAULTS: u64 = 10;
pub const HOST_VM_ZERO_FILLS: u64 = 11;
pub const HOST_VM_COPIES_ON_WRITE: u64 = 12;
pub const HOST_VM_COLLAPSES: u64 = 13;
pub const HOST_VM_OBJECTS: u64 = 14;
/// Pages of memory objects resident (the page queue's length).
pub const HOST_VM_RESIDENT_PAGES: u64 = 15;
/// 1 once a default pager is registered (`HostSetDefaultPager`), else 0: a workload started
/// from the shell finds the system's, one run as the first task starts its own.
pub const HOST_DEFAULT_PAGER: u64 = 16;
/// Total pages of memory the kernel manages (free or not).
pub const HOST_TOTAL_FRAMES: u64 = 17;
/// Time-stamp counter cycles the CPU has spent idle (halted) since boot: under QEMU's
/// `-icount`, where the counter counts instructions and jumps ahead while the CPU idles,
/// instructions executed over a span are the counter's advance less this one's.
pub const HOST_IDLE_CYCLES: u64 = 18;
/// Pages held by all tasks' page tables, roots included. With the heap's bytes in use
/// (`HOST_HEAP_BYTES`, in pages), the memory counted against the kernel's budget for tasks
/// ([`KERNEL_MEMORY_BUDGET_PERCENT`] of `HOST_TOTAL_FRAMES`): past it `task_fork` and
/// `task_spawn` return `ResourceShortage`.
pub const HOST_TABLE_FRAMES: u64 = 19;
/// Times the pageout daemon passed over a page of an object that had no default-pager object
/// yet because too many were being made (at most 64 unanswered `default_pager.create`s).
pub const HOST_CREATES_DEFERRED: u64 = 20;
/// The time-stamp counter's rate measured at boot against the PIT, in kHz (0 if it could
/// not be): with `rdtsc`, a clock finer than `HOST_TICKS`. Under QEMU's `-icount shift=0`
/// the counter counts instructions and guest time runs at one instruction a nanosecond, so
/// this is about 1,000,000 there.
pub const HOST_TSC_KHZ: u64 = 21;
/// Page-table pages new tasks will build and have not yet (three a task, fulfilled as it
/// builds them), which the kernel's budget for tasks counts with `HOST_TABLE_FRAMES`.
pub const HOST_TABLES_PROMISED: u64 = 22;
/// Calls to collocated servers since boot that the kernel short-circuited (served by calling
/// the server at once, the reply handed back in registers, no message queued).
pub const HOST_SHORT_CIRCUITS: u64 = 23;
/// Runs of collocated servers since boot to serve messages queued for them.
pub const HOST_COLLOCATED_RUNS: u64 = 24;
/// Memory-object calls the kernel made on collocated pagers since boot as calls of the
/// pager's routines (`libipc::hosted::PagerCall`): no message built, queued or received.
pub const HOST_DIRECT_PAGER_CALLS: u64 = 25;
/// Device transfers collocated servers started since boot with `DeviceTransfer` (a call,
/// no message).
pub const HOST_DIRECT_DEVICE_CALLS: u64 = 26;
/// Frames the kernel holds in contiguous runs: device buffers and queues (DMA).
pub const HOST_DEVICE_FRAMES: u64 = 27;
/// Bytes of the kernel image (text, read-only data, data and bss), outside the frames the
/// kernel manages (`HOST_TOTAL_FRAMES`).
pub const HOST_KERNEL_IMAGE_BYTES: u64 = 28;
/// Bytes of the boot modules (the boot archive), outside the managed frames.
pub const HOST_BOOT_MODULE_BYTES: u64 = 29;
/// Frames of the kernel's own page tables as start-up built them (the direct map and the
/// image), taken from the managed frames.
pub const HOST_KERNEL_TABLE_FRAMES: u64 = 30;
/// Page-table pages freed since boot because their task had not run for a while (the
/// kernel's tables are a cache of each task's map: faults build them again).
pub const HOST_TABLES_COLLECTED: u64 = 31;
/// Calls collocated servers made since boot on other collocated servers as direct calls of
/// their routines (`libipc::interface::direct`): typed, no message built or parsed.
pub const HOST_DIRECT_SERVER_CALLS: u64 = 32;
/// Mappings the reverse map visited since boot (`remove_everywhere`, which takes a page from
/// every map that has it, and the pageout daemon's reference scan): a page's removal visits
/// its own mappings, whatever the number of tasks.
pub const HOST_MAPPING_VISITS: u64 = 33;
/// Processors online (the boot CPU and the application processors started).
pub const HOST_CPUS: u64 = 34;
/// The index of the processor the caller runs on (0 is the boot CPU): a hint, stale as soon
/// as it is read, for tests and reports.
pub const HOST_CPU: u64 = 35;
/// Requests one CPU made of another since boot (TLB shootdowns and stopping a thread that
/// runs elsewhere), each one interrupt and one wait for the answer.
pub const HOST_CROSS_CPU_REQUESTS: u64 = 36;
/// Times a CPU found the kernel lock held and waited for it, since boot ...
pub const HOST_LOCK_WAITS: u64 = 37;
/// ... and the time-stamp counter cycles those waits took, all CPUs together.
pub const HOST_LOCK_WAIT_CYCLES: u64 = 38;
/// Ready threads an idle CPU took from a busy CPU's run queue, since boot.
pub const HOST_THREADS_STOLEN: u64 = 39;
/// Programs whose tasks share the page table of their text (one table each, made with the
/// program's first task: docs/decisions.md, "Shared page tables of program text").
pub const HOST_SHARED_TEXT_TABLES: u64 = 41;
/// Pages mapped through those tables: each mapped once for every task of its program.
pub const HOST_SHARED_TEXT_PAGES: u64 = 42;
/// Copies a fork delayed that a write then made: shadows put in front of an object a fork
/// left shared by both sides (Mach's `needs_copy`), at the first write through one of them
/// while the other still had it. A fork itself makes no object.
pub const HOST_VM_DELAYED_COPIES: u64 = 43;
/// Percent of memory the kernel heap (bytes in use) and all page tables may hold before new
/// tasks are refused: pageout can take none of it, and past this the tasks there are leave
/// too little to page in (NONAIM at 1,000 users in 128 MiB: 10,000 frames of 29,000, then
/// every last frame, went to heap and tables).
pub const KERNEL_MEMORY_BUDGET_PERCENT: u64 = 40;
/// Frames a new task is expected to take for each table page it has still to build
/// (`HOST_TABLES_PROMISED`): the table and the first pages it writes (a forked child copies
/// its stack; the tables above it and the shared text's were built at the fork). New tasks are
/// refused when the free frames less this many for each promised table fall below the line
/// that keeps memory for paging: on one CPU a fork bomb's children start after their parent's
/// next tick, on several while it forks more, and each refusal must leave that room once they
/// have.
pub const FRAMES_PER_PROMISED_TABLE: u64 = 4;

/// What `VmStatistics` reports: the VM system's counters since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStatistics {
    pub free_frames: u64,
    /// Pages of memory objects resident.
    pub resident_pages: u64,
    /// Page faults resolved (user mode, or the kernel reaching user memory).
    pub faults: u64,
    pub zero_fills: u64,
    pub copies_on_write: u64,
    /// Pages pagers supplied.
    pub pageins: u64,
    /// Pages pagers had no data for (zero-filled).
    pub unavailable: u64,
    /// Dirty pages returned to pagers.
    pub pageouts: u64,
    /// Pages requested ahead of the faulting one.
    pub prefetched: u64,
    /// Prefetched pages later faulted on.
    pub prefetch_used: u64,
    /// Pager answers and calls the kernel refused.
    pub pager_rejects: u64,
    /// Waits for a pager that timed out.
    pub pager_timeouts: u64,
    /// Memory errors given to faulting threads.
    pub memory_errors: u64,
    /// Clean pages the pageout daemon freed (their pager had them).
    pub reclaimed: u64,
    /// `data_request`s by length in pages (`[n]`: requests of n pages; `[0]` unused).
    pub requests_by_pages: [u64; 17],
    /// `data_return`s by length in pages.
    pub returns_by_pages: [u64; 17],
    /// `data_return`s a pager refused (the pages stayed, dirty).
    pub returns_refused: u64,
    /// Device operations the kernel's drivers did: reads, writes, the pages they moved,
    /// those that failed, and requests that waited for room in a device's queue.
    pub device_reads: u64,
    pub device_writes: u64,
    pub device_pages_read: u64,
    pub device_pages_written: u64,
    pub device_errors: u64,
    pub device_queued: u64,
}

impl VmStatistics {
    /// The counters as words, in declaration order.
    pub const WORDS: usize = 14 + 2 * 17 + 7;
    pub const SIZE: usize = Self::WORDS * 8;

    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut w = [0; Self::WORDS];
        w[..14].copy_from_slice(&[
            self.free_frames,
            self.resident_pages,
            self.faults,
            self.zero_fills,
            self.copies_on_write,
            self.pageins,
            self.unavailable,
            self.pageouts,
            self.prefetched,
            self.prefetch_used,
            self.pager_rejects,
            self.pager_timeouts,
            self.memory_errors,
            self.reclaimed,
        ]);
        w[14..31].copy_from_slice(&self.requests_by_pages);
        w[31..48].copy_from_slice(&self.returns_by_pages);
        w[48..].copy_from_slice(&[
            self.returns_refused,
            self.device_reads,
            self.device_writes,
            self.device_pages_read,
            self.device_pages_written,
            self.device_errors,
            self.device_queued,
        ]);
        w
    }

    pub fn from_words(w: &[u64; Self::WORDS]) -> VmStatistics {
        VmStatistics {
            free_frames: w[0],
            resident_pages: w[1],
            faults: w[2],
            zero_fills: w[3],
            copies_on_write: w[4],
            pageins: w[5],
            unavailable: w[6],
            pageouts: w[7],
            prefetched: w[8],
            prefetch_used: w[9],
            pager_rejects: w[10],
            pager_timeouts: w[11],
            memory_errors: w[12],
            reclaimed: w[13],
            requests_by_pages: w[14..31].try_into().expect("17 words"),
            returns_by_pages: w[31..48].try_into().expect("17 words"),
            returns_refused: w[48],
            device_reads: w[49],
            device_writes: w[50],
            device_pages_read: w[51],
            device_pages_written: w[52],
            device_errors: w[53],
            device_queued: w[54],
        }
    }

    /// Requests sent, of any length.
    pub fn requests(&self) -> u64 {
        self.requests_by_pages.iter().sum()
    }

    /// Pages asked for in all requests.
    pub fn requested_pages(&self) -> u64 {
        (0..17u64)
            .map(|n| n * self.requests_by_pages[n as usize])
            .sum()
    }

    /// Returns sent, of any length.
    pub fn returns(&self) -> u64 {
        self.returns_by_pages.iter().sum()
    }

    /// Pages in all returns.
    pub fn returned_pages(&self) -> u64 {
        (0..17u64)
            .map(|n| n * self.returns_by_pages[n as usize])
            .sum()
    }
}

/// Longest program name `TaskSpawn` accepts.
pub const PROGRAM_NAME_MAX: usize = 47;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_info_round_trips() {
        let r = RegionInfo {
            start: 0x1000,
            end: 0x5000,
            offset: 0x2000,
            protection: 3,
            max_protection: 7,
            inheritance: 1,
            behavior: 2,
            reserved: 0,
            pager_requests: 8,
            pager_pages_requested: 16,
            pager_prefetched: 8,
            pager_prefetch_used: 7,
            pager_returns: 2,
            pager_pages_returned: 5,
        };
        assert_eq!(RegionInfo::from_bytes(&r.to_bytes()), r);
        assert_eq!(RegionInfo::SIZE, 80);
    }

    #[test]
    fn vm_statistics_round_trip() {
        let mut s = VmStatistics {
            faults: 3,
            memory_errors: 9,
            reclaimed: 4,
            ..Default::default()
        };
        s.requests_by_pages[4] = 2;
        s.requests_by_pages[1] = 1;
        s.returns_by_pages[16] = 5;
        s.returns_refused = 6;
        s.device_queued = 7;
        assert_eq!(VmStatistics::from_words(&s.to_words()), s);
        assert_eq!((s.requests(), s.requested_pages()), (3, 9));
        assert_eq!((s.returns(), s.returned_pages()), (5, 80));
    }

    #[test]
    fn numbers_are_distinct_and_decode() {
        for (i, call) in Syscall::ALL.iter().enumerate() {
            assert_eq!(Syscall::from_raw(*call as u64), Some(*call));
            assert_eq!(*call as u64, i as u64, "numbers are dense and in order");
        }
        assert_eq!(Syscall::from_raw(999), None);
    }
}

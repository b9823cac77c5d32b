//! System call wrappers: raw `syscall0`..`syscall6` and one typed function per call.
//!
//! The register convention is [`crate::abi::syscall`]'s: number in `rax`, arguments in `rdi`,
//! `rsi`, `rdx`, `r10`, `r8`, `r9`; on return `rax` holds a [`KernReturn`] code and `rdx` a
//! value; `rcx` and `r11` are clobbered by the `syscall` instruction itself.

use crate::abi::syscall::{Syscall, DEBUG_WRITE_MAX};
use crate::abi::KernReturn;

/// The two registers a system call returns: `code` (`rax`) and `value` (`rdx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallResult {
    pub code: u64,
    pub value: u64,
}

impl SyscallResult {
    /// `Ok(value)` on success, else the error. A code that is no [`KernReturn`] (a newer
    /// kernel, or a bug) reads as [`KernReturn::Failure`].
    pub fn into_result(self) -> Result<u64, KernReturn> {
        match u32::try_from(self.code).ok().and_then(KernReturn::from_raw) {
            Some(KernReturn::Success) => Ok(self.value),
            Some(error) => Err(error),
            None => Err(KernReturn::Failure),
        }
    }
}

#[cfg(not(feature = "collocated"))]
mod trap;
#[cfg(not(feature = "collocated"))]
pub use trap::*;
#[cfg(feature = "collocated")]
mod collocated;
#[cfg(feature = "collocated")]
pub use collocated::*;

/// Writes `bytes` to the kernel console, in as many `DebugWrite` calls of at most
/// [`DEBUG_WRITE_MAX`] bytes as it takes; stops at the first error.
pub fn debug_write(bytes: &[u8]) -> Result<(), KernReturn> {
    for chunk in bytes.chunks(DEBUG_WRITE_MAX) {
        // SAFETY: the kernel only reads `chunk`, which is valid for its length.
        let result = unsafe {
            syscall2(
                Syscall::DebugWrite as u64,
                chunk.as_ptr() as u64,
                chunk.len() as u64,
            )
        };
        result.into_result()?;
    }
    Ok(())
}

/// Ends the calling task with `status` (sign-extended into the 64-bit argument register, so
/// the kernel reads back the same value as an `i32` or an `i64`).
pub fn task_exit(status: i32) -> ! {
    // SAFETY: ending the task cannot affect memory safety: nothing of it runs again.
    unsafe {
        syscall1(Syscall::TaskExit as u64, i64::from(status) as u64);
    }
    // TaskExit does not return; if a kernel bug made it, fault rather than run on. (A
    // collocated server cannot exit: the kernel refuses the call, and the server faults.)
    #[cfg(not(feature = "collocated"))]
    // SAFETY: `ud2` raises an invalid-opcode exception; the kernel ends the task.
    unsafe {
        core::arch::asm!("ud2", options(noreturn, nomem, nostack))
    }
    #[cfg(feature = "collocated")]
    panic!("a collocated server tried to exit with status {status}")
}

/// Starts a new thread of this task at `entry`, with stack pointer `stack` and `argument` in
/// rdi; returns how many threads the task has now (`Syscall::ThreadCreate`).
///
/// # Safety
/// `entry` must be code that is sound to run on another thread with that stack and argument:
/// the stack belongs to the new thread alone (or is never touched, as by a thread that only
/// makes system calls), and whatever the code shares with other threads is synchronised.
/// The thread must end with [`thread_exit`] (or with the task): returning from `entry` has
/// nowhere to go.
pub unsafe fn thread_create(entry: u64, stack: u64, argument: u64) -> Result<u64, KernReturn> {
    // SAFETY: the kernel only reads the three words; the caller vouches for the new thread.
    unsafe { syscall3(Syscall::ThreadCreate as u64, entry, stack, argument) }.into_result()
}

/// Ends the calling thread; the task's last thread ends the task with `status`.
pub fn thread_exit(status: i32) -> ! {
    // SAFETY: ending the thread cannot affect memory safety: it never runs again, and what
    // it owned on its stack is not dropped (as at `task_exit`).
    unsafe {
        syscall1(Syscall::ThreadExit as u64, i64::from(status) as u64);
    }
    // SAFETY: `ud2` raises an invalid-opcode exception; the kernel ends the task. Not
    // reached: ThreadExit does not return.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Gives up the processor to another thread of the same or higher priority.
pub fn thread_yield() {
    // SAFETY: yielding touches no memory of ours. It cannot fail, so the result is ignored.
    unsafe {
        syscall0(Syscall::ThreadYield as u64);
    }
}

/// `mach_msg`: the raw result, `rax` a [`MsgReturn`](crate::abi::message::MsgReturn) code and
/// `rdx` the received size.
///
/// # Safety
/// `buffer` must be valid for reads of `send_size` bytes and writes of `receive_limit` bytes
/// (the kernel checks the addresses, but writes where it is told).
pub unsafe fn mach_msg(
    buffer: *mut u8,
    options: u64,
    send_size: usize,
    receive_limit: usize,
    receive_name: u32,
    timeout_ms: u64,
) -> SyscallResult {
    // SAFETY: the caller vouches for the buffer.
    unsafe {
        syscall6(
            Syscall::MachMsg as u64,
            buffer as u64,
            options,
            send_size as u64,
            receive_limit as u64,
            u64::from(receive_name),
            timeout_ms,
        )
    }
}

fn call1(call: Syscall, a0: u64) -> Result<u64, KernReturn> {
    // SAFETY: the calls made through here touch no user memory.
    unsafe { syscall1(call as u64, a0) }.into_result()
}

fn call2(call: Syscall, a0: u64, a1: u64) -> Result<u64, KernReturn> {
    // SAFETY: as in `call1`.
    unsafe { syscall2(call as u64, a0, a1) }.into_result()
}

fn call3(call: Syscall, a0: u64, a1: u64, a2: u64) -> Result<u64, KernReturn> {
    // SAFETY: as in `call1`.
    unsafe { syscall3(call as u64, a0, a1, a2) }.into_result()
}

/// A new port (`PORT_KIND_RECEIVE`) or port set (`PORT_KIND_SET`); its name.
pub fn port_allocate(kind: u64) -> Result<u32, KernReturn> {
    call1(Syscall::PortAllocate, kind).map(|n| n as u32)
}

/// Drops a user reference of a send, send-once or dead name, or destroys a port set.
pub fn port_deallocate(name: u32) -> Result<(), KernReturn> {
    call1(Syscall::PortDeallocate, u64::from(name)).map(drop)
}

/// Destroys the port whose receive right `name` holds.
pub fn port_destroy(name: u32) -> Result<(), KernReturn> {
    call1(Syscall::PortDestroy, u64::from(name)).map(drop)
}

/// Makes a send right from the receive right `name`, under the same name.
pub fn port_insert_send(name: u32) -> Result<(), KernReturn> {
    call1(Syscall::PortInsertSend, u64::from(name)).map(drop)
}

/// User references of `right` (`RIGHT_*`) under `name`.
pub fn port_get_refs(name: u32, right: u64) -> Result<u32, KernReturn> {
    call2(Syscall::PortGetRefs, u64::from(name), right).map(|n| n as u32)
}

/// Moves receive right `member` into port set `set` (0: out of its set).
pub fn port_move(member: u32, set: u32) -> Result<(), KernReturn> {
    call2(Syscall::PortMove, u64::from(member), u64::from(set)).map(drop)
}

/// Asks for notification `kind` (`notify::DEAD_NAME`, `notify::NO_SENDERS`) about `name`,
/// delivered to the caller's receive right `notify`.
pub fn port_request_notification(name: u32, kind: u32, notify: u32) -> Result<(), KernReturn> {
    call3(
        Syscall::PortRequestNotification,
        u64::from(name),
        u64::from(kind),
        u64::from(notify),
    )
    .map(drop)
}

/// Starts `program` from the boot archive; the child gets a copy of send right `give` (0: none)
/// in `rdi` and `argument` in `rsi`. Returns a send right to the child's task port.
pub fn task_spawn(program: &str, give: u32, argument: u64) -> Result<u32, KernReturn> {
    task_spawn_with_args(program, give, argument, "")
}

/// Starts the server `server` linked into the kernel as a collocated task (see
/// [`Syscall::TaskSpawnCollocated`]), giving it a copy of send right `give` and `argument`;
/// returns the send rights to its task port and to its service port. `host`: the host port.
pub fn task_spawn_collocated(
    host: u32,
    server: &str,
    give: u32,
    argument: u64,
) -> Result<(u32, u32), KernReturn> {
    // SAFETY: the kernel only reads the name, which is valid for its length.
    let names = unsafe {
        syscall5(
            Syscall::TaskSpawnCollocated as u64,
            u64::from(host),
            server.as_ptr() as u64,
            server.len() as u64,
            u64::from(give),
            argument,
        )
    }
    .into_result()?;
    Ok((names as u32, (names >> 32) as u32))
}

/// A transfer on a device without a message (collocated servers only, see
/// [`Syscall::DeviceTransfer`]): `device.read` of `length` bytes at `offset` (`write`
/// false), or `device.write` at `offset` of the pages `[address, +length)`, which leave the
/// caller's map. The answer comes to `reply` (a receive right) as the message's would.
///
/// # Safety
/// For a write, `[address, +length)` must be pages of the caller's that nothing else uses
/// or will unmap (as for [`vm_deallocate`]): they leave the caller's map.
pub unsafe fn device_transfer(
    device: u32,
    reply: u32,
    offset: u64,
    address: u64,
    length: u64,
    write: bool,
) -> Result<(), KernReturn> {
    use crate::abi::syscall::transfer;
    let write = match write {
        true => transfer::WRITE,
        false => transfer::READ,
    };
    // SAFETY: the pages a write takes are the caller's to give, per the contract.
    unsafe {
        syscall6(
            Syscall::DeviceTransfer as u64,
            u64::from(device),
            u64::from(reply),
            offset,
            address,
            length,
            write,
        )
    }
    .into_result()
    .map(|_| ())
}

/// Starts `program` as [`task_spawn`] does, with `args` (at most `abi::syscall::ARGS_MAX`
/// bytes) as its arguments (`rt::args`).
pub fn task_spawn_with_args(
    program: &str,
    give: u32,
    argument: u64,
    args: &str,
) -> Result<u32, KernReturn> {
    // SAFETY: the kernel only reads `program`'s and `args`' bytes.
    unsafe {
        syscall6(
            Syscall::TaskSpawn as u64,
            program.as_ptr() as u64,
            program.len() as u64,
            u64::from(give),
            argument,
            args.as_ptr() as u64,
            args.len() as u64,
        )
    }
    .into_result()
    .map(|n| n as u32)
}

/// Waits for the task behind task port `task` to exit; its status.
pub fn task_wait(task: u32) -> Result<u64, KernReturn> {
    call2(Syscall::TaskWait, u64::from(task), u64::MAX)
}

/// Waits at most `timeout_ms` (0: not at all) for the task behind task port `task` to
/// exit: its status, or `OperationTimedOut`.
pub fn task_wait_timeout(task: u32, timeout_ms: u64) -> Result<u64, KernReturn> {
    call2(Syscall::TaskWait, u64::from(task), timeout_ms)
}

/// Terminates the task behind task port `task`.
pub fn task_terminate(task: u32) -> Result<(), KernReturn> {
    call2(Syscall::TaskTerminate, u64::from(task), 0).map(drop)
}

/// Terminates the task behind task port `task` and the rest of its job (the tasks forked
/// from it and from each other).
pub fn task_terminate_job(task: u32) -> Result<(), KernReturn> {
    call2(
        Syscall::TaskTerminate,
        u64::from(task),
        crate::abi::syscall::TERMINATE_JOB,
    )
    .map(drop)
}

/// A kernel statistic (`HOST_*`).
pub fn host_info(selector: u64) -> Result<u64, KernReturn> {
    call1(Syscall::HostInfo, selector)
}

/// Sets the calling thread's priority (0..=`MAX_PRIORITY`); returns the previous one.
pub fn thread_set_priority(priority: u64) -> Result<u64, KernReturn> {
    call1(Syscall::ThreadSetPriority, priority)
}

/// Binds the calling thread to processor `cpu` (`None`: unbinds it); the processor it runs
/// on when the call returns (`Syscall::ThreadBind`).
pub fn thread_bind(cpu: Option<u64>) -> Result<u64, KernReturn> {
    call1(
        Syscall::ThreadBind,
        cpu.unwrap_or(crate::abi::syscall::THREAD_UNBOUND),
    )
}

/// Powers the machine off with `status`, given a send right to the privileged host port.
/// Returns only the error when `host` is not one.
pub fn host_shutdown(host: u32, status: u64) -> KernReturn {
    match call2(Syscall::HostShutdown, u64::from(host), status) {
        Ok(_) => KernReturn::Failure,
        Err(e) => e,
    }
}

/// A new zero-filled region (`flags`: `VM_ANYWHERE` or 0 for exactly at `address`); its address.
pub fn vm_allocate(address: u64, size: u64, flags: u64) -> Result<u64, KernReturn> {
    call3(Syscall::VmAllocate, address, size, flags)
}

/// Removes the mappings in `[address, address + size)`.
///
/// # Safety
/// Nothing of the caller's may still be in use in the range (its memory disappears).
pub unsafe fn vm_deallocate(address: u64, size: u64) -> Result<(), KernReturn> {
    call2(Syscall::VmDeallocate, address, size).map(drop)
}

/// Sets the current (or maximum, with `set_maximum`) protection of a range.
pub fn vm_protect(
    address: u64,
    size: u64,
    set_maximum: bool,
    protection: u64,
) -> Result<(), KernReturn> {
    // SAFETY: changing protection touches no memory; accesses it forbids fault the caller.
    unsafe {
        syscall4(
            Syscall::VmProtect as u64,
            address,
            size,
            u64::from(set_maximum),
            protection,
        )
    }
    .into_result()
    .map(drop)
}

/// Sets the inheritance of a range.
pub fn vm_inherit(address: u64, size: u64, inheritance: u64) -> Result<(), KernReturn> {
    call3(Syscall::VmInherit, address, size, inheritance).map(drop)
}

/// Sets the access strategy of a range.
pub fn vm_behavior_set(address: u64, size: u64, behavior: u64) -> Result<(), KernReturn> {
    call3(Syscall::VmBehaviorSet, address, size, behavior).map(drop)
}

/// The first region at or above `address`.
pub fn vm_region(address: u64) -> Result<crate::abi::syscall::RegionInfo, KernReturn> {
    use crate::abi::syscall::RegionInfo;
    let mut bytes = [0u8; RegionInfo::SIZE];
    // SAFETY: the kernel writes `RegionInfo::SIZE` bytes into `bytes`.
    unsafe { syscall2(Syscall::VmRegion as u64, address, bytes.as_mut_ptr() as u64) }
        .into_result()?;
    Ok(RegionInfo::from_bytes(&bytes))
}

/// Maps `size` bytes of memory object `object` (a send right to a pager's port) from
/// `offset` at `address` (or anywhere, with `flags` [`VM_ANYWHERE`]) with `protection`;
/// returns the address. See [`Syscall::VmMap`] and [`crate::pager`].
///
/// [`VM_ANYWHERE`]: crate::abi::syscall::VM_ANYWHERE
pub fn vm_map(
    address: u64,
    size: u64,
    flags: u64,
    object: u32,
    offset: u64,
    protection: u64,
) -> Result<u64, KernReturn> {
    // SAFETY: mapping into free space (the kernel refuses overlaps) changes no memory the
    // caller uses.
    unsafe {
        syscall6(
            Syscall::VmMap as u64,
            address,
            size,
            flags,
            u64::from(object),
            offset,
            protection,
        )
    }
    .into_result()
}

/// Makes `pager` (a send right to a default pager's port) the default pager; needs the host
/// port. See [`Syscall::HostSetDefaultPager`].
pub fn host_set_default_pager(host: u32, pager: u32) -> Result<(), KernReturn> {
    call2(
        Syscall::HostSetDefaultPager,
        u64::from(host),
        u64::from(pager),
    )
    .map(drop)
}

/// The value of kernel command-line option `key` meant for programs (such as `swap`), copied
/// into `buffer`; its length. See [`Syscall::KernelOption`].
pub fn kernel_option(key: &str, buffer: &mut [u8]) -> Result<usize, KernReturn> {
    // SAFETY: the kernel reads `key` and writes at most `buffer.len()` bytes into `buffer`,
    // both live borrows for the call's duration.
    unsafe {
        syscall4(
            Syscall::KernelOption as u64,
            key.as_ptr() as u64,
            key.len() as u64,
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
        )
    }
    .into_result()
    .map(|length| length as usize)
}

/// Makes the task behind send right `store` the default pager's backing store (VM-privileged);
/// needs the host port. See [`Syscall::HostSetBackingStore`].
pub fn host_set_backing_store(host: u32, store: u32) -> Result<(), KernReturn> {
    call2(
        Syscall::HostSetBackingStore,
        u64::from(host),
        u64::from(store),
    )
    .map(drop)
}

/// A new send right to the device master port (see `libipc::device`); needs the host port.
/// See [`Syscall::HostDeviceMaster`].
pub fn host_device_master(host: u32) -> Result<u32, KernReturn> {
    call1(Syscall::HostDeviceMaster, u64::from(host)).map(|name| name as u32)
}

/// Makes `pager` (a send right to a program pager's port) the program pager; needs the host
/// port. See [`Syscall::HostSetProgramPager`].
pub fn host_set_program_pager(host: u32, pager: u32) -> Result<(), KernReturn> {
    call2(
        Syscall::HostSetProgramPager,
        u64::from(host),
        u64::from(pager),
    )
    .map(drop)
}

/// The boot archive mapped read-only into this task: its address and size in bytes (whole
/// pages; parse it with [`Archive::parse`](crate::abi::archive::Archive::parse)). Each call
/// maps it again. See [`Syscall::BootArchive`].
pub fn boot_archive() -> Result<(u64, u64), KernReturn> {
    // SAFETY: the call only adds a read-only region to this task's space.
    let address = unsafe { syscall0(Syscall::BootArchive as u64) }.into_result()?;
    let region = vm_region(address)?;
    Ok((address, region.end - region.start))
}

/// The VM system's counters.
pub fn vm_statistics() -> Result<crate::abi::syscall::VmStatistics, KernReturn> {
    use crate::abi::syscall::VmStatistics;
    let mut words = [0u64; VmStatistics::WORDS];
    // SAFETY: the kernel writes `VmStatistics::SIZE` bytes into `words`.
    unsafe { syscall1(Syscall::VmStatistics as u64, words.as_mut_ptr() as u64) }.into_result()?;
    Ok(VmStatistics::from_words(&words))
}

/// Swaps the task behind task port `task` out or in (`abi::swapper::SWAP_OUT`, `SWAP_IN`).
pub fn task_swap(task: u32, operation: u64) -> Result<(), KernReturn> {
    // SAFETY: no memory is passed.
    unsafe { syscall2(Syscall::TaskSwap as u64, u64::from(task), operation) }
        .into_result()
        .map(drop)
}

/// Sets the kernel memory quota of the task behind task port `task` (0: the default);
/// returns the one it had (see [`Syscall::TaskSetQuota`]).
pub fn task_set_quota(task: u32, bytes: u64) -> Result<u64, KernReturn> {
    // SAFETY: no memory is passed.
    unsafe { syscall2(Syscall::TaskSetQuota as u64, u64::from(task), bytes) }.into_result()
}

/// The task swapper's state, counters and trace.
pub fn swapper_info() -> Result<crate::abi::swapper::SwapperInfo, KernReturn> {
    use crate::abi::swapper::SwapperInfo;
    let mut words = alloc::vec![0u64; SwapperInfo::WORDS];
    // SAFETY: the kernel writes `SwapperInfo::SIZE` bytes into `words`.
    unsafe { syscall1(Syscall::SwapperInfo as u64, words.as_mut_ptr() as u64) }.into_result()?;
    Ok(SwapperInfo::from_words(
        words
            .as_slice()
            .try_into()
            .expect("SwapperInfo::WORDS words"),
    ))
}

/// The machine's memory by what holds it, in pages unless named in bytes ([`memory_by_kind`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryByKind {
    /// Frames the kernel manages: usable memory less low memory and the frame bitmap.
    pub total: u64,
    pub free: u64,
    /// Pages of memory objects: tasks' memory, program and file pages, pages on their way
    /// to or from pagers.
    pub object_pages: u64,
    /// Tasks' page tables, roots included.
    pub task_page_tables: u64,
    /// Pages the kernel heap holds (the records of tasks, threads, ports, messages, objects).
    pub kernel_heap: u64,
    /// Device buffers and queues (contiguous runs).
    pub device_buffers: u64,
    /// The kernel's own page tables as start-up built them.
    pub kernel_page_tables: u64,
    /// Everything else taken from the managed frames (the page records, the collocated
    /// servers' stacks, tables the kernel added since): `total` less all of the above.
    pub other: u64,
    /// Outside the managed frames: the kernel image, in bytes.
    pub kernel_image_bytes: u64,
    /// Outside the managed frames: the boot modules (the boot archive), in bytes.
    pub boot_module_bytes: u64,
}

impl MemoryByKind {
    /// The kinds taken from the managed frames, with their names, `free` first.
    pub fn kinds(&self) -> [(&'static str, u64); 7] {
        [
            ("free", self.free),
            ("object pages", self.object_pages),
            ("task page tables", self.task_page_tables),
            ("kernel heap", self.kernel_heap),
            ("device buffers", self.device_buffers),
            ("kernel page tables", self.kernel_page_tables),
            ("other kernel", self.other),
        ]
    }
}

/// The machine's memory by what holds it (several `host_info` readings; `other` is what is
/// left of `total`).
pub fn memory_by_kind() -> Result<MemoryByKind, KernReturn> {
    use crate::abi::syscall::*;
    let mut m = MemoryByKind {
        total: host_info(HOST_TOTAL_FRAMES)?,
        free: host_info(HOST_FREE_FRAMES)?,
        object_pages: host_info(HOST_VM_RESIDENT_PAGES)?,
        task_page_tables: host_info(HOST_TABLE_FRAMES)?,
        kernel_heap: host_info(HOST_HEAP_PAGES)?,
        device_buffers: host_info(HOST_DEVICE_FRAMES)?,
        kernel_page_tables: host_info(HOST_KERNEL_TABLE_FRAMES)?,
        other: 0,
        kernel_image_bytes: host_info(HOST_KERNEL_IMAGE_BYTES)?,
        boot_module_bytes: host_info(HOST_BOOT_MODULE_BYTES)?,
    };
    let counted: u64 = m.kinds().iter().map(|(_, pages)| pages).sum();
    m.other = m.total.saturating_sub(counted);
    Ok(m)
}

/// Every task, as `ps` shows them (up to `max`).
pub fn host_tasks(
    max: usize,
) -> Result<alloc::vec::Vec<crate::abi::swapper::TaskInfo>, KernReturn> {
    use crate::abi::swapper::TaskInfo;
    let mut words = alloc::vec![0u64; max * TaskInfo::WORDS];
    // SAFETY: the kernel writes at most `max` records of `TaskInfo::SIZE` bytes at `words`.
    let count = unsafe {
        syscall2(
            Syscall::HostTasks as u64,
            words.as_mut_ptr() as u64,
            max as u64,
        )
    }
    .into_result()? as usize;
    Ok(words
        .chunks_exact(TaskInfo::WORDS)
        .take(count.min(max))
        .map(TaskInfo::from_words)
        .collect())
}

/// Reads console input into `buffer`: how many bytes, waiting at most `timeout_ms` for some
/// (`u64::MAX`: for ever; 0: not at all); 0 when none came in time.
pub fn console_read(buffer: &mut [u8], timeout_ms: u64) -> Result<usize, KernReturn> {
    let len = buffer.len().min(crate::abi::syscall::CONSOLE_READ_MAX) as u64;
    let mut timeout = timeout_ms;
    loop {
        // SAFETY: the kernel writes at most `len` bytes into `buffer`.
        let result = unsafe {
            syscall3(
                Syscall::ConsoleRead as u64,
                buffer.as_mut_ptr() as u64,
                len,
                timeout,
            )
        }
        .into_result();
        match result {
            Ok(0) if timeout != 0 => {
                // Input came while waiting: read it (a reader woken with others may find it
                // gone, and then waits no longer than it would have).
                timeout = 0;
            }
            Ok(n) => return Ok(n as usize),
            Err(KernReturn::OperationTimedOut) => return Ok(0),
            Err(e) => return Err(e),
        }
    }
}

/// What `task_fork` returned to this side.
#[derive(Debug, PartialEq, Eq)]
pub enum Forked {
    /// The parent, with the send right to the child's task port.
    Parent(u32),
    Child,
}

/// Copies the calling task (see [`Syscall::TaskFork`]).
pub fn task_fork() -> Result<Forked, KernReturn> {
    // SAFETY: the child continues from here with a copy of this task's memory; nothing in
    // this process is shared by the copy except what the caller shared on purpose.
    let name = unsafe { syscall0(Syscall::TaskFork as u64) }.into_result()?;
    Ok(if name == 0 {
        Forked::Child
    } else {
        Forked::Parent(name as u32)
    })
}

/// Replaces the calling task's program (see [`Syscall::TaskExec`]); returns only the error.
pub fn task_exec(program: &str, argument: u64) -> KernReturn {
    // SAFETY: on success this task's memory is replaced and this call never returns; on
    // failure nothing changed.
    let r = unsafe {
        syscall3(
            Syscall::TaskExec as u64,
            program.as_ptr() as u64,
            program.len() as u64,
            argument,
        )
    };
    match r.into_result() {
        Ok(_) => KernReturn::Failure,
        Err(e) => e,
    }
}

//! System call dispatch. Every call has one signature: it gets the kernel, the calling thread
//! and the six raw argument registers, decodes (checks everything, changes nothing), then
//! acts; its result becomes `rax` (a `KernReturn`) and `rdx` in one place.

use super::kernel::Kernel;
use super::sched::WaitQueue;
use super::task::TaskId;
use super::thread::ThreadId;
use super::user::{copy_in, UserSlice};
use crate::kern::mach_msg::MsgOutcome;
use crate::kprint;
use libipc::abi::syscall::PROGRAM_NAME_MAX;
use libipc::abi::syscall::{Syscall, DEBUG_WRITE_MAX};
use libipc::abi::KernReturn;

/// What a call did to its thread.
pub enum Outcome {
    /// Return to the caller with this result.
    Return(Result<u64, KernReturn>),
    /// Return these raw register values (calls with their own codes, like `mach_msg`).
    Raw(u64, u64),
    /// The thread is gone or has blocked; nothing to write back now.
    NoReturn,
}

/// Who made a call: the thread, and its task, resolved once per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub thread: ThreadId,
    pub task: TaskId,
}

pub type Handler = fn(&mut Kernel, Caller, [u64; 6]) -> Outcome;

fn handler(call: Syscall) -> Handler {
    use super::ipc_calls as calls;
    use super::memory::calls as vm;
    use super::swapper_calls;
    match call {
        Syscall::DebugWrite => debug_write,
        Syscall::TaskExit => task_exit,
        Syscall::ThreadYield => thread_yield,
        Syscall::MachMsg => mach_msg,
        Syscall::PortAllocate => calls::port_allocate,
        Syscall::PortDeallocate => calls::port_deallocate,
        Syscall::PortDestroy => calls::port_destroy,
        Syscall::PortInsertSend => calls::port_insert_send,
        Syscall::PortGetRefs => calls::port_get_refs,
        Syscall::PortMove => calls::port_move,
        Syscall::PortRequestNotification => calls::port_request_notification,
        Syscall::TaskSpawn => task_spawn,
        Syscall::TaskWait => task_wait,
        Syscall::TaskTerminate => task_terminate,
        Syscall::HostInfo => host_info,
        Syscall::ThreadSetPriority => thread_set_priority,
        Syscall::HostShutdown => host_shutdown,
        Syscall::VmAllocate => vm::vm_allocate,
        Syscall::VmDeallocate => vm::vm_deallocate,
        Syscall::VmProtect => vm::vm_protect,
        Syscall::VmInherit => vm::vm_inherit,
        Syscall::VmBehaviorSet => vm::vm_behavior_set,
        Syscall::VmRegion => vm::vm_region,
        Syscall::TaskFork => task_fork,
        Syscall::TaskExec => task_exec,
        Syscall::VmMap => vm::vm_map,
        Syscall::VmStatistics => vm::vm_statistics,
        Syscall::HostSetDefaultPager => host_set_default_pager,
        Syscall::HostSetProgramPager => host_set_program_pager,
        Syscall::HostDeviceMaster => host_device_master,
        Syscall::KernelOption => kernel_option,
        Syscall::HostSetBackingStore => host_set_backing_store,
        Syscall::TaskSwap => swapper_calls::task_swap,
        Syscall::SwapperInfo => swapper_calls::swapper_info,
        Syscall::HostTasks => swapper_calls::host_tasks,
        Syscall::ConsoleRead => console_read,
        Syscall::BootArchive => boot_archive,
        Syscall::TaskSetQuota => super::quota::task_set_quota,
        Syscall::TaskSpawnCollocated => task_spawn_collocated,
        Syscall::DeviceTransfer => device_transfer,
        Syscall::ThreadCreate => super::thread_calls::thread_create,
        Syscall::ThreadExit => super::thread_calls::thread_exit,
        Syscall::ThreadBind => super::thread_calls::thread_bind,
    }
}

/// Whether a collocated server may make `call`: those that never wait (messages, ports, the
/// console, figures, kernel options) and those that manage the memory of its own map
/// (allocated, received out of line, or the boot archive mapped for bootfs). Others are
/// refused with `InvalidSyscall`.
fn collocated_may(call: Syscall) -> bool {
    matches!(
        call,
        Syscall::DebugWrite
            | Syscall::MachMsg
            | Syscall::PortAllocate
            | Syscall::PortDeallocate
            | Syscall::PortDestroy
            | Syscall::PortInsertSend
            | Syscall::PortGetRefs
            | Syscall::PortMove
            | Syscall::PortRequestNotification
            | Syscall::HostInfo
            | Syscall::KernelOption
            | Syscall::VmAllocate
            | Syscall::VmDeallocate
            | Syscall::VmStatistics
            | Syscall::VmRegion
            | Syscall::BootArchive
            | Syscall::DeviceTransfer
            | Syscall::HostDeviceMaster
            | Syscall::HostSetDefaultPager
            | Syscall::HostSetProgramPager
            | Syscall::HostSetBackingStore
    )
}

/// Runs system call `number` of collocated server `caller` (its `libipc_collocated_syscall`)
/// and returns `rax` and `rdx`. It never waits: a `mach_msg` gets both timeouts, of 0 (a
/// full queue or an empty one is an answer at once). `words` are the short message of a
/// `mach_msg` in registers, both ways.
pub fn dispatch_collocated(
    kernel: &mut Kernel,
    caller: Caller,
    number: u64,
    mut arguments: [u64; 6],
    words: &mut [u64; 4],
) -> (u64, u64) {
    let Some(call) = Syscall::from_raw(number).filter(|&call| collocated_may(call)) else {
        return (KernReturn::InvalidSyscall as u64, 0);
    };
    let is_message = call == Syscall::MachMsg;
    if is_message {
        use libipc::abi::message::options;
        arguments[1] |= options::SEND_TIMEOUT | options::RECEIVE_TIMEOUT;
        arguments[5] = 0;
        let Some(thread) = kernel.threads.get_mut(caller.thread) else {
            return (KernReturn::InvalidSyscall as u64, 0);
        };
        let f = &mut thread.frame;
        (f.r12, f.r13, f.r14, f.r15) = (words[0], words[1], words[2], words[3]);
    }
    let outcome = super::user::as_collocated_call(|| handler(call)(kernel, caller, arguments));
    // The server's memory is the kernel's: no page of it is ever absent.
    debug_assert!(super::user::take_absent().is_none());
    let result = match outcome {
        Outcome::Return(Ok(value)) => (KernReturn::Success as u64, value),
        Outcome::Return(Err(code)) => (code as u64, 0),
        Outcome::Raw(rax, rdx) => (rax, rdx),
        Outcome::NoReturn => {
            // Nothing a collocated server may call waits; were it to, the thread is taken
            // off whatever it waits on and the call fails.
            kernel.unqueue(caller.thread);
            if let Some(thread) = kernel.threads.get_mut(caller.thread) {
                thread.state = super::thread::ThreadState::Blocked;
            }
            (KernReturn::Failure as u64, 0)
        }
    };
    if is_message {
        if let Some(thread) = kernel.threads.get(caller.thread) {
            let f = &thread.frame;
            *words = [f.r12, f.r13, f.r14, f.r15];
        }
    }
    result
}

/// Runs the system call the current thread made.
pub fn dispatch(kernel: &mut Kernel) {
    let Some(current) = kernel.current() else {
        return;
    };
    let Some(thread) = kernel.threads.get(current) else {
        return;
    };
    let f = &thread.frame;
    let (number, arguments) = (f.rax, f.syscall_arguments());
    let caller = Caller {
        thread: current,
        task: thread.task,
    };
    let outcome = match Syscall::from_raw(number) {
        Some(call) => handler(call)(kernel, caller, arguments),
        None => Outcome::Return(Err(KernReturn::InvalidSyscall)),
    };
    if let Some(absent) = super::user::take_absent() {
        // The call needed a page its pager has not supplied: it runs again once the page is
        // there. (Calls touch the caller's memory before changing anything, so running
        // again is safe.) A call that blocked meanwhile has moved on: it keeps its wait.
        if kernel.current() == Some(current) {
            use crate::kern::memory::pager::Resume;
            let waited = kernel.wait_for_page(
                current,
                absent.object,
                absent.offset,
                absent.strategy,
                absent.access,
                Resume::Syscall,
            );
            if waited.is_ok() {
                return;
            }
        }
    }
    let (rax, rdx) = match outcome {
        Outcome::Return(Ok(value)) => (KernReturn::Success as u64, value),
        Outcome::Return(Err(code)) => (code as u64, 0),
        Outcome::Raw(rax, rdx) => (rax, rdx),
        Outcome::NoReturn => return,
    };
    if let Some(thread) = kernel.threads.get_mut(current) {
        thread.frame.rax = rax;
        thread.frame.rdx = rdx;
    }
}

/// `DeviceTransfer`: a device read or write without a message, for collocated servers only
/// (a task's trap gets `InvalidSyscall`, as for a call that does not exist).
fn device_transfer(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    match kernel.colloc.hosts(caller.task) {
        true => Outcome::Return(kernel.device_transfer(caller.task, a)),
        false => Outcome::Return(Err(KernReturn::InvalidSyscall)),
    }
}

fn mach_msg(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    match kernel.mach_msg(thread, a) {
        MsgOutcome::Return(rax, rdx) => Outcome::Raw(rax, rdx),
        MsgOutcome::Blocked => Outcome::NoReturn,
    }
}

/// Program name `[address, +len)` of `task`, copied into `buffer` and checked to be UTF-8.
fn program_name<'a>(
    kernel: &mut Kernel,
    task: TaskId,
    address: u64,
    len: u64,
    buffer: &'a mut [u8; PROGRAM_NAME_MAX],
) -> Result<&'a str, KernReturn> {
    let slice = UserSlice::new(address, len).validate(PROGRAM_NAME_MAX)?;
    let name = &mut buffer[..slice.len()];
    let t = kernel
        .tasks
        .get_mut(task)
        .ok_or(KernReturn::InvalidArgument)?;
    copy_in(&mut t.space, kernel.vm.objects_mut(), slice, name)?;
    core::str::from_utf8(name).map_err(|_| KernReturn::InvalidArgument)
}

fn task_spawn(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    use libipc::abi::syscall::ARGS_MAX;
    let [program, program_len, give, argument, args, args_len] = a;
    let task = caller.task;
    let mut args_buffer = [0u8; ARGS_MAX];
    let args = match UserSlice::new(args, args_len).validate(ARGS_MAX) {
        Ok(slice) => {
            let len = slice.len();
            let Some(t) = kernel.tasks.get_mut(task) else {
                return Outcome::NoReturn;
            };
            if let Err(e) = copy_in(
                &mut t.space,
                kernel.vm.objects_mut(),
                slice,
                &mut args_buffer[..len],
            ) {
                return Outcome::Return(Err(e));
            }
            &args_buffer[..len]
        }
        Err(e) => return Outcome::Return(Err(e)),
    };
    let mut buffer = [0u8; PROGRAM_NAME_MAX];
    let name = match program_name(kernel, task, program, program_len, &mut buffer) {
        Ok(name) => name,
        Err(e) => return Outcome::Return(Err(e)),
    };
    Outcome::Return(
        kernel
            .spawn_from(task, name, give as u32, argument, args)
            .map(u64::from),
    )
}

fn task_fork(kernel: &mut Kernel, caller: Caller, _: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    let task = caller.task;
    Outcome::Return(kernel.fork_task(task, thread).map(u64::from))
}

fn task_exec(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    let [program, program_len, argument, ..] = a;
    let task = caller.task;
    let mut buffer = [0u8; PROGRAM_NAME_MAX];
    let name = match program_name(kernel, task, program, program_len, &mut buffer) {
        Ok(name) => name,
        Err(e) => return Outcome::Return(Err(e)),
    };
    match kernel.exec(task, thread, name, argument) {
        Ok(()) => Outcome::NoReturn,
        Err(e) => Outcome::Return(Err(e)),
    }
}

fn task_wait(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    let task = caller.task;
    match kernel.task_wait(task, thread, a[0] as u32, a[1]) {
        Ok(Some(status)) => Outcome::Return(Ok(status)),
        Ok(None) => Outcome::NoReturn,
        Err(e) => Outcome::Return(Err(e)),
    }
}

fn console_read(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    use libipc::abi::syscall::CONSOLE_READ_MAX;
    let [buffer, len, timeout_ms, ..] = a;
    let task = caller.task;
    let out = match UserSlice::new(buffer, len).validate(CONSOLE_READ_MAX) {
        Ok(out) => out,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let mut bytes = [0u8; CONSOLE_READ_MAX];
    let n = super::console::peek_input(&mut bytes[..out.len()]);
    if n > 0 {
        let Some(t) = kernel.tasks.get_mut(task) else {
            return Outcome::NoReturn;
        };
        let (out, _) = out.split_at(n);
        let copied = super::user::copy_out(&mut t.space, kernel.vm.objects_mut(), out, &bytes[..n]);
        if copied.is_ok() {
            // Taken only once the program has them: a failed copy loses nothing.
            super::console::consume_input(n);
        }
        return Outcome::Return(copied.map(|()| n as u64));
    }
    if timeout_ms == 0 || out.is_empty() {
        return Outcome::Return(Ok(0));
    }
    let deadline = (timeout_ms != u64::MAX)
        .then(|| crate::arch::percpu::ticks() + crate::kern::mach_msg::ticks_from_ms(timeout_ms));
    kernel
        .sched
        .enqueue_waiter(WaitQueue::Console, &mut kernel.threads, thread);
    kernel.block(thread, super::thread::Continuation::ConsoleWait, deadline);
    Outcome::NoReturn
}

fn task_terminate(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let target = match kernel.task_of_port(task, a[0] as u32) {
        Ok(target) => target,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let by = kernel.tasks.get(task).map(|t| t.name);
    let by = by.as_ref().map_or("?", |n| n.as_str());
    let mut targets = alloc::vec![target];
    if a[1] & libipc::abi::syscall::TERMINATE_JOB != 0 {
        let job = kernel.tasks.get(target).map_or(0, |t| t.job);
        // Its job's other tasks (forked from it or each other), the caller never.
        let others: alloc::vec::Vec<TaskId> = kernel
            .tasks
            .iter()
            .filter(|&(id, t)| t.job == job && id != target && id != task)
            .map(|(id, _)| id)
            .collect();
        targets.extend(others);
    }
    for target in targets {
        kernel.terminate_task(
            target,
            super::loader::Exit::Terminated(format_args!("terminated by {by}")),
        );
    }
    // The caller may have terminated itself.
    if kernel.tasks.contains(task) {
        Outcome::Return(Ok(0))
    } else {
        Outcome::NoReturn
    }
}

fn thread_set_priority(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    if a[0] > libipc::abi::syscall::MAX_PRIORITY {
        return Outcome::Return(Err(KernReturn::InvalidValue));
    }
    let Some(t) = kernel.threads.get_mut(thread) else {
        return Outcome::NoReturn;
    };
    let previous = t.priority;
    t.priority = a[0] as u8;
    // A lower priority may let a waiting thread go first.
    if kernel.run_queues_highest().is_some_and(|p| p > a[0] as u8) {
        if let Some(t) = kernel.threads.get_mut(thread) {
            t.frame.rax = KernReturn::Success as u64;
            t.frame.rdx = u64::from(previous);
        }
        kernel.yield_current();
        return Outcome::NoReturn;
    }
    Outcome::Return(Ok(u64::from(previous)))
}

/// Checks that `name` is a send right of `task`'s to the host port.
fn check_host(kernel: &mut Kernel, task: TaskId, name: u64) -> Result<(), KernReturn> {
    use crate::ipc::port::{KernelObject, Receiver};
    use crate::ipc::space::{Object, Rights};
    let name = u32::try_from(name).map_err(|_| KernReturn::InvalidName)?;
    let entry = kernel.entry(task, name).ok_or(KernReturn::InvalidName)?;
    let is_host = match entry.object {
        Object::Port(port) if entry.rights.contains(Rights::SEND) => kernel
            .ipc
            .port(port)
            .is_some_and(|p| p.receiver == Receiver::Kernel(KernelObject::Host)),
        _ => false,
    };
    if is_host {
        Ok(())
    } else {
        Err(KernReturn::InvalidRight)
    }
}

/// `(host, pager)` calls: checks the host right, then `set` makes the port behind the
/// caller's send right `pager` the kernel's pager of its kind.
fn host_set_pager(
    kernel: &mut Kernel,
    task: TaskId,
    a: [u64; 6],
    set: fn(&mut Kernel, TaskId, u32) -> Result<(), KernReturn>,
) -> Outcome {
    if let Err(e) = check_host(kernel, task, a[0]) {
        return Outcome::Return(Err(e));
    }
    let Ok(name) = u32::try_from(a[1]) else {
        return Outcome::Return(Err(KernReturn::InvalidName));
    };
    Outcome::Return(set(kernel, task, name).map(|()| 0))
}

fn host_set_default_pager(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    host_set_pager(kernel, caller.task, a, Kernel::set_default_pager)
}

fn host_set_program_pager(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    host_set_pager(kernel, caller.task, a, Kernel::set_program_pager)
}

/// `(key, key_len, buffer, buffer_len)`: a command-line option meant for programs.
fn kernel_option(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    use super::user::copy_out;
    use crate::boot::cmdline::MAX_PROGRAM_OPTION;
    let task = caller.task;
    let key = match UserSlice::new(a[0], a[1]).validate(16) {
        Ok(key) => key,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let mut name = [0u8; 16];
    let name = &mut name[..key.len()];
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    if let Err(e) = copy_in(&mut t.space, kernel.vm.objects_mut(), key, name) {
        return Outcome::Return(Err(e));
    }
    let value = match &*name {
        b"swap" => kernel.swap_option.as_deref(),
        b"zcache" => kernel.zcache_option.as_deref(),
        b"args" => kernel.args_option.as_deref(),
        b"sh" => kernel.sh_option.as_deref(),
        b"collocate" => kernel.colloc.collocate_option(),
        b"start" => kernel.start_option.as_deref(),
        _ => None,
    };
    let Some(value) = value else {
        return Outcome::Return(Err(KernReturn::InvalidArgument));
    };
    if (value.len() as u64) > a[3] {
        return Outcome::Return(Err(KernReturn::NoSpace));
    }
    let out = match UserSlice::new(a[2], value.len() as u64).validate(MAX_PROGRAM_OPTION) {
        Ok(out) => out,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let mut copy = [0u8; MAX_PROGRAM_OPTION];
    let copy = &mut copy[..value.len()];
    copy.copy_from_slice(value.as_bytes());
    let length = value.len() as u64;
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    match copy_out(&mut t.space, kernel.vm.objects_mut(), out, copy) {
        Ok(()) => Outcome::Return(Ok(length)),
        Err(e) => Outcome::Return(Err(e)),
    }
}

fn task_spawn_collocated(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let [host, server, server_len, give, argument, _] = a;
    let task = caller.task;
    if let Err(e) = check_host(kernel, task, host) {
        return Outcome::Return(Err(e));
    }
    let mut buffer = [0u8; PROGRAM_NAME_MAX];
    let name = match program_name(kernel, task, server, server_len, &mut buffer) {
        Ok(name) => name,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let Ok(give) = u32::try_from(give) else {
        return Outcome::Return(Err(KernReturn::InvalidName));
    };
    #[cfg(target_os = "none")]
    let spawned = crate::kern::colloc::spawn(kernel, task, name, give, argument, true)
        .map(|(task_port, service)| u64::from(service) << 32 | u64::from(task_port));
    #[cfg(not(target_os = "none"))]
    let spawned = {
        let _ = (name, give, argument);
        Err(KernReturn::InvalidArgument)
    };
    Outcome::Return(spawned)
}

fn host_device_master(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    if let Err(e) = check_host(kernel, task, a[0]) {
        return Outcome::Return(Err(e));
    }
    let Some(right) = kernel.device_master_right() else {
        return Outcome::Return(Err(KernReturn::ResourceShortage));
    };
    match kernel.copyout(task, right) {
        Ok(name) => Outcome::Return(Ok(u64::from(name))),
        Err(()) => {
            kernel.release(right);
            Outcome::Return(Err(KernReturn::NoSpace))
        }
    }
}

fn host_set_backing_store(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    host_set_pager(kernel, caller.task, a, Kernel::set_backing_store)
}

fn boot_archive(kernel: &mut Kernel, caller: Caller, _: [u64; 6]) -> Outcome {
    let task = caller.task;
    Outcome::Return(kernel.map_boot_archive(task))
}

fn host_shutdown(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    if let Err(e) = check_host(kernel, task, a[0]) {
        return Outcome::Return(Err(e));
    }
    let status = a[1];
    let by = kernel.tasks.get(task).map(|t| t.name);
    crate::kprintln!(
        "host: shutdown by {} with status {status}",
        by.as_ref().map_or("?", |n| n.as_str())
    );
    crate::arch::exit_qemu(if status == 0 {
        libipc::abi::report::ExitCode::Success
    } else {
        libipc::abi::report::ExitCode::TestsFailed
    })
}

/// The shared page tables of program text and the pages mapped through them (for
/// `host_info`; out of line, so the common selectors' frame stays small).
#[inline(never)]
fn shared_text(kernel: &Kernel) -> (u64, u64) {
    kernel.shared_text().fold((0, 0), |(tables, pages), text| {
        (tables + 1, pages + text.resident() as u64)
    })
}

fn host_info(kernel: &mut Kernel, _: Caller, a: [u64; 6]) -> Outcome {
    use libipc::abi::syscall::*;
    let value = match a[0] {
        HOST_FREE_FRAMES => crate::vm::kernel_space::frame_counts().0 as u64,
        HOST_TASKS => kernel.tasks.len() as u64,
        HOST_THREADS => kernel.threads.len() as u64,
        HOST_PORTS => kernel.ipc.port_count() as u64,
        HOST_HEAP_BYTES => {
            crate::vm::kernel_space::heap_stats().map_or(0, |s| s.bytes_in_use as u64)
        }
        HOST_TICKS => crate::arch::percpu::ticks(),
        HOST_BYTES_PER_THREAD => super::thread::bytes_per_thread() as u64,
        HOST_BYTES_PER_TASK => super::task::bytes_per_task() as u64,
        HOST_TIMERS => kernel.sched.armed_timers() as u64,
        HOST_VM_FAULTS => crate::vm::statistics::read(&crate::vm::statistics::FAULTS),
        HOST_VM_ZERO_FILLS => crate::vm::statistics::read(&crate::vm::statistics::ZERO_FILLS),
        HOST_VM_COPIES_ON_WRITE => {
            crate::vm::statistics::read(&crate::vm::statistics::COPIES_ON_WRITE)
        }
        HOST_VM_COLLAPSES => crate::vm::statistics::read(&crate::vm::statistics::COLLAPSES),
        HOST_VM_DELAYED_COPIES => {
            crate::vm::statistics::read(&crate::vm::statistics::DELAYED_COPIES)
        }
        HOST_VM_OBJECTS => kernel.vm.objects().len() as u64,
        HOST_DEFAULT_PAGER => u64::from(kernel.vm.has_default_pager()),
        HOST_TOTAL_FRAMES => crate::vm::kernel_space::frame_counts().1 as u64,
        HOST_IDLE_CYCLES => super::sched::IDLE_CYCLES.load(core::sync::atomic::Ordering::Relaxed),
        HOST_TABLE_FRAMES => crate::vm::pmap::table_frames() as u64,
        HOST_CREATES_DEFERRED => {
            crate::vm::statistics::read(&crate::vm::statistics::CREATES_DEFERRED)
        }
        HOST_TSC_KHZ => crate::arch::apic::tsc_hz() / 1000,
        HOST_TABLES_PROMISED => crate::vm::pmap::promised_tables() as u64,
        HOST_VM_RESIDENT_PAGES => {
            crate::vm::kernel_space::with_mappings(|m| m.queued() as u64).unwrap_or(0)
        }
        HOST_HEAP_PAGES => {
            crate::vm::kernel_space::heap_stats().map_or(0, |s| s.pages_held() as u64)
        }
        HOST_SHORT_CIRCUITS => kernel.colloc.counts().0,
        HOST_COLLOCATED_RUNS => kernel.colloc.counts().1,
        HOST_DIRECT_PAGER_CALLS => kernel.colloc.counts().2,
        HOST_DIRECT_SERVER_CALLS => kernel.colloc.counts().3,
        HOST_MAPPING_VISITS => crate::vm::pmap::mapping_visits(),
        HOST_CPUS => crate::arch::percpu::online() as u64,
        HOST_CPU => crate::arch::percpu::index() as u64,
        HOST_CROSS_CPU_REQUESTS => crate::arch::tlb::requests_sent(),
        HOST_LOCK_WAITS => super::entry::LOCK_WAITS.load(core::sync::atomic::Ordering::Relaxed),
        HOST_LOCK_WAIT_CYCLES => {
            super::entry::LOCK_WAIT_CYCLES.load(core::sync::atomic::Ordering::Relaxed)
        }
        HOST_THREADS_STOLEN => super::sched::STOLEN.load(core::sync::atomic::Ordering::Relaxed),
        HOST_SHARED_TEXT_TABLES => shared_text(kernel).0,
        HOST_SHARED_TEXT_PAGES => shared_text(kernel).1,
        HOST_DIRECT_DEVICE_CALLS => crate::kern::device_port::direct_transfers(),
        HOST_TABLES_COLLECTED => {
            crate::vm::statistics::read(&crate::vm::statistics::TABLES_COLLECTED)
        }
        HOST_DEVICE_FRAMES => crate::vm::kernel_space::device_frames() as u64,
        HOST_KERNEL_IMAGE_BYTES => crate::vm::kernel_space::boot_summary().map_or(0, |s| s.kernel),
        HOST_BOOT_MODULE_BYTES => crate::vm::kernel_space::boot_summary().map_or(0, |s| s.modules),
        HOST_KERNEL_TABLE_FRAMES => crate::vm::kernel_space::boot_summary()
            .map_or(0, |s| s.page_tables / crate::vm::map::PAGE_SIZE),
        _ => return Outcome::Return(Err(KernReturn::InvalidArgument)),
    };
    Outcome::Return(Ok(value))
}

fn debug_write(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    let slice = match UserSlice::new(a[0], a[1]).validate(DEBUG_WRITE_MAX) {
        Ok(slice) => slice,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let mut buffer = [0u8; DEBUG_WRITE_MAX];
    let buffer = &mut buffer[..slice.len()];
    let Some(task) = kernel.threads.get(thread).map(|t| t.task) else {
        return Outcome::NoReturn;
    };
    let Some(task) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    if let Err(e) = copy_in(&mut task.space, kernel.vm.objects_mut(), slice, buffer) {
        return Outcome::Return(Err(e));
    }
    kprint!("{}", Utf8Lossy(buffer));
    Outcome::Return(Ok(0))
}

fn task_exit(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    if let Some(task) = kernel.threads.get(thread).map(|t| t.task) {
        kernel.terminate_task(task, super::loader::Exit::Status(a[0]));
    }
    Outcome::NoReturn
}

fn thread_yield(kernel: &mut Kernel, caller: Caller, _: [u64; 6]) -> Outcome {
    let thread = caller.thread;
    if let Some(t) = kernel.threads.get_mut(thread) {
        t.frame.rax = KernReturn::Success as u64;
        t.frame.rdx = 0;
    }
    kernel.yield_current();
    Outcome::NoReturn
}

/// Displays bytes as UTF-8, invalid sequences as U+FFFD.
struct Utf8Lossy<'a>(&'a [u8]);

impl core::fmt::Display for Utf8Lossy<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

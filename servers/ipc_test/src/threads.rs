//! Threads a task starts itself (`thread_create`, `thread_exit`): a thread runs with its own
//! stack and argument and ends alone; bad addresses are refused; a task of two threads
//! cannot exec, and its fork copies only the calling thread; the last thread's
//! `thread_exit` ends the task with its status. And calls held by a server and answered out
//! of order.

use crate::cases::{check, err};
use crate::roles;
use alloc::format;
use alloc::string::String;
use libipc::abi::message::{Disposition, ReceivedRight};
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;
use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight, Task};
use libipc::sys;

/// A new thread's message saying it runs; its body is the thread's argument.
const THREAD_HELLO: u32 = 40;
/// Bytes of a test thread's stack.
const STACK_BYTES: u64 = 64 * 1024;

/// A test thread: `argument` holds two port names, where to say hello (low half, a send
/// right) and where to wait afterwards (high half, a receive right; 0: do not wait). It
/// sends the hello with the argument as its body, waits there until the port is gone, and
/// ends with `thread_exit`.
extern "C" fn test_thread(argument: u64) -> ! {
    let (hello, park) = (argument as u32, (argument >> 32) as u32);
    let mut buffer = MessageBuffer::new();
    let body = argument.to_le_bytes();
    let said = ipc::send(
        &OutMessage::new(THREAD_HELLO, hello).with_body(&body),
        &mut buffer,
        Some(5_000),
    );
    if said.is_ok() && park != 0 {
        let _ = ipc::receive(park, &mut buffer, None);
    }
    sys::thread_exit(if said.is_ok() { 0 } else { 1 })
}

/// Starts [`test_thread`] on a fresh stack of its own (the region is left to it: it is freed
/// with the task).
fn start_thread(argument: u64) -> Result<u64, KernReturn> {
    let stack = sys::vm_allocate(0, STACK_BYTES, VM_ANYWHERE)?;
    // A function is entered with its stack 8 bytes off 16 (the call's return address).
    let top = stack + STACK_BYTES - 8;
    // SAFETY: the thread runs `test_thread` on a stack no one else uses; what it shares
    // with this thread (the allocator, the console) is locked by the runtime.
    unsafe { sys::thread_create(test_thread as *const () as usize as u64, top, argument) }
}

fn threads_now() -> u64 {
    sys::host_info(HOST_THREADS).unwrap_or(u64::MAX)
}

/// Waits (up to 5 s) until the kernel counts `count` threads.
fn wait_for_threads(count: u64, what: &str) -> Result<(), String> {
    for _ in 0..500 {
        if threads_now() == count {
            return Ok(());
        }
        libipc::rt::sleep_ms(10);
    }
    Err(format!(
        "{what}: {} threads, not {count}, after 5 s",
        threads_now()
    ))
}

pub fn threads_start_and_end_on_their_own() -> Result<(), String> {
    let before = threads_now();
    // Bad addresses: nothing is made.
    let entry = test_thread as *const () as usize as u64;
    for (entry, stack, what) in [
        (0, USER_STACK_TOP, "a null entry"),
        (USER_END, USER_STACK_TOP, "an entry past user space"),
        (0xffff_8000_0000_0000, USER_STACK_TOP, "a kernel entry"),
        (entry, USER_END + 4096, "a stack past user space"),
    ] {
        // SAFETY: refused before any thread exists (checked below).
        let result = unsafe { sys::thread_create(entry, stack, 0) };
        check!(
            result == Err(KernReturn::InvalidAddress),
            "thread_create with {what} gave {result:?}, not InvalidAddress"
        );
    }
    check!(
        threads_now() == before,
        "a refused thread_create made a thread"
    );

    // A thread runs with its argument and ends on its own.
    let hello = ReceiveRight::allocate().map_err(err("a port"))?;
    let give = hello.make_send().map_err(err("a send right"))?;
    let count = start_thread(u64::from(give.name())).map_err(err("thread_create"))?;
    check!(
        count == 2,
        "thread_create says the task has {count} threads, not 2"
    );
    let mut buffer = MessageBuffer::new();
    let said = ipc::receive(hello.name(), &mut buffer, Some(5_000)).map_err(err("hello"))?;
    check!(
        said.id() == THREAD_HELLO && said.body == u64::from(give.name()).to_le_bytes(),
        "the thread said id {} with body {:?}",
        said.id(),
        said.body
    );
    wait_for_threads(before, "after the thread's thread_exit")?;

    // With a second thread (parked on a port) the task cannot exec; a fork copies only the
    // calling thread, so the child can.
    let park = ReceiveRight::allocate().map_err(err("a port"))?;
    start_thread(u64::from(give.name()) | u64::from(park.name()) << 32)
        .map_err(err("thread_create"))?;
    ipc::receive(hello.name(), &mut buffer, Some(5_000)).map_err(err("hello"))?;
    let refused = sys::task_exec("ipc_test", roles::EXIT);
    check!(
        refused == KernReturn::InvalidArgument,
        "exec with two threads gave {refused:?}, not InvalidArgument"
    );
    match sys::task_fork().map_err(err("fork"))? {
        sys::Forked::Child => {
            // Only this thread came along: the exec goes ahead (and exits with 0).
            sys::task_exec("ipc_test", roles::EXIT);
            sys::task_exit(3)
        }
        sys::Forked::Parent(child) => {
            let status = sys::task_wait(child).map_err(err("wait"))?;
            let _ = sys::port_deallocate(child);
            check!(
                status == 0,
                "the fork of a two-thread task exited with {status} (3: its exec was refused)"
            );
        }
    }
    drop(park);
    wait_for_threads(before, "after the parked thread's port went")?;

    // The last thread's thread_exit ends the task with its status.
    let task = Task::spawn("ipc_test", None, roles::THREAD_EXIT).map_err(err("spawn"))?;
    let status = task.wait().map_err(err("wait"))?;
    check!(
        status == roles::THREAD_EXIT_STATUS,
        "a task whose only thread called thread_exit({}) exited with {status}",
        roles::THREAD_EXIT_STATUS
    );
    Ok(())
}

/// Threads that keep CPUs busy ([`occupy_cpus`]) spin until this is set.
static BUSY_STOP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// Threads spinning at their priority now.
static BUSY_SPINNING: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// A thread that takes priority `priority` and spins until [`BUSY_STOP`].
extern "C" fn busy_thread(priority: u64) -> ! {
    use core::sync::atomic::Ordering;
    let raised = sys::thread_set_priority(priority).is_ok();
    BUSY_SPINNING.fetch_add(1, Ordering::AcqRel);
    while !BUSY_STOP.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    BUSY_SPINNING.fetch_sub(1, Ordering::AcqRel);
    sys::thread_exit(if raised { 0 } else { 1 })
}

/// CPUs kept busy by threads of this task; [`Busy::release`] ends them.
pub struct Busy {
    threads_before: u64,
}

/// Keeps `count` more CPUs busy (the caller keeps its own) with threads of `priority` that
/// spin, so a lower-priority thread has nowhere to run; returns once they all spin.
pub fn occupy_cpus(count: u64, priority: u64) -> Result<Busy, String> {
    use core::sync::atomic::Ordering;
    let threads_before = threads_now();
    BUSY_STOP.store(false, Ordering::Release);
    for _ in 0..count {
        let stack = sys::vm_allocate(0, STACK_BYTES, VM_ANYWHERE).map_err(err("busy stack"))?;
        let top = stack + STACK_BYTES - 8;
        // SAFETY: the thread runs `busy_thread` on a stack no one else uses and shares only
        // the two atomics with this one.
        unsafe { sys::thread_create(busy_thread as *const () as usize as u64, top, priority) }
            .map_err(err("busy thread"))?;
    }
    for _ in 0..500 {
        if BUSY_SPINNING.load(Ordering::Acquire) == count {
            return Ok(Busy { threads_before });
        }
        libipc::rt::sleep_ms(10);
    }
    Err(format!(
        "{} of {count} busy threads spin after 5 s",
        BUSY_SPINNING.load(Ordering::Acquire)
    ))
}

impl Busy {
    /// Ends the busy threads and waits until they are gone.
    pub fn release(self) -> Result<(), String> {
        BUSY_STOP.store(true, core::sync::atomic::Ordering::Release);
        wait_for_threads(self.threads_before, "busy threads ended")
    }
}

/// A call from [`held_caller`]: its id is this plus the caller's index; the reply's id is
/// [`HELD_REPLY`] more, and the caller's report afterwards [`HELD_DONE`] more.
const HELD_CALL: u32 = 50;
const HELD_REPLY: u32 = 100;
const HELD_DONE: u32 = 200;

/// A caller in a forked child: calls the server (`server`, a send right's name the child got
/// from the fork), checks the reply is its own, and reports to the server (body a `u32`, 0:
/// the right reply came; 1: not).
fn held_caller(server: u32, index: u32) -> ! {
    let mut buffer = MessageBuffer::new();
    let good = match ReceiveRight::allocate() {
        Ok(reply_port) => {
            let request = OutMessage::new(HELD_CALL + index, server).reply_to(reply_port.name());
            ipc::call(&request, reply_port.name(), &mut buffer, Some(5_000))
                .is_ok_and(|reply| reply.id() == HELD_CALL + index + HELD_REPLY)
        }
        Err(_) => false,
    };
    let status = u32::from(!good).to_le_bytes();
    let said = ipc::send(
        &OutMessage::new(HELD_DONE + index, server).with_body(&status),
        &mut buffer,
        Some(5_000),
    );
    sys::task_exit(i32::from(!good || said.is_err()))
}

/// A server holding two calls at once (from two other tasks, so the fast path may carry
/// them) answers them in the other order: the first call's reply right is in the server's
/// reply slot when the second comes, so the second's gets a name of its own; each answer
/// uses its right up (neither name is left to the server), and each caller gets its own
/// answer.
pub fn two_calls_held_and_answered_in_the_other_order() -> Result<(), String> {
    let server = ReceiveRight::allocate().map_err(err("a port"))?;
    let give = server.make_send().map_err(err("a send right"))?;
    let mut children = alloc::vec::Vec::new();
    for index in 0..2 {
        match sys::task_fork().map_err(err("fork"))? {
            sys::Forked::Child => held_caller(give.name(), index),
            sys::Forked::Parent(child) => children.push(child),
        }
    }
    let mut buffer = MessageBuffer::new();
    let mut held = alloc::vec::Vec::new();
    for _ in 0..2 {
        let request =
            ipc::receive(server.name(), &mut buffer, Some(5_000)).map_err(err("receive a call"))?;
        let Some((to, ReceivedRight::SendOnce)) = request.reply() else {
            return Err(format!("call {} came without a reply right", request.id()));
        };
        held.push((request.id(), to));
    }
    check!(
        held[0].1 != held[1].1,
        "both calls' reply rights are named {:#x}",
        held[0].1
    );
    // The second first, waiting for its caller's report in the same call.
    for &(id, to) in held.iter().rev() {
        let reply = OutMessage::new(id + HELD_REPLY, to).to(to, Disposition::MoveSendOnce);
        let report = ipc::reply_and_receive(Some(&reply), server.name(), &mut buffer)
            .map_err(err("reply and receive"))?;
        check!(
            report.id() == id - HELD_CALL + HELD_DONE && report.body == [0; 4],
            "the caller of {id} reported {} with {:?}, not {} with 0 (its own reply)",
            report.id(),
            report.body,
            id - HELD_CALL + HELD_DONE
        );
        let left = sys::port_get_refs(to, RIGHT_SEND_ONCE);
        check!(
            left == Err(KernReturn::InvalidName),
            "after the answer to {id}, its reply right's name {to:#x} holds {left:?}"
        );
    }
    for child in children {
        let status = sys::task_wait(child).map_err(err("wait"))?;
        let _ = sys::port_deallocate(child);
        check!(status == 0, "a caller exited with {status}");
    }
    Ok(())
}

/// The last page of user space, where a `syscall` in its last two bytes returns to the first
/// address past it (not canonical).
const LAST_PAGE: u64 = USER_END - 4096;

/// A child that runs `syscall` (`host_info`) in the last two bytes of user space: its return
/// address is past the canonical end, which `sysret` must never be given (on Intel's CPUs it
/// faults in the kernel, on the user's stack) and `iretq` refuses. The child ends as a
/// faulting task; the kernel and this task go on. (QEMU's `sysret` faults in user mode, as
/// AMD's does, so this shows the end, not the kernel's check that keeps such a return from
/// `sysret`.)
pub fn a_system_call_at_the_top_of_user_space_ends_only_its_task() -> Result<(), String> {
    match sys::task_fork().map_err(err("fork"))? {
        sys::Forked::Child => {
            let code = match sys::vm_allocate(LAST_PAGE, 4096, 0) {
                // Mapped: run the call there. Not mapped (user space ends below): nothing to
                // run, and the child says so with status 2.
                Ok(_) => LAST_PAGE,
                Err(_) => sys::task_exit(2),
            };
            // SAFETY: the page is this child's, mapped writable just now; nothing else uses it.
            let page = unsafe { core::slice::from_raw_parts_mut(code as *mut u8, 4096) };
            page.fill(0x90); // nop
                             // mov eax, HostInfo; xor edi, edi (selector 0), then nops up to the syscall that
                             // fills the page's last two bytes.
            let start = 4096 - 16;
            page[start] = 0xb8;
            page[start + 1..start + 5].copy_from_slice(&(Syscall::HostInfo as u32).to_le_bytes());
            page[start + 5] = 0x31;
            page[start + 6] = 0xff;
            page[4094] = 0x0f;
            page[4095] = 0x05;
            if sys::vm_protect(code, 4096, false, VM_PROT_READ | VM_PROT_EXECUTE).is_err() {
                sys::task_exit(3);
            }
            // SAFETY: the page holds the code just written, executable; it never returns (it
            // runs off the end of user space), and the child ends either way.
            let run: extern "C" fn() = unsafe { core::mem::transmute(code + start as u64) };
            run();
            sys::task_exit(4)
        }
        sys::Forked::Parent(child) => {
            let status = sys::task_wait(child).map_err(err("wait"))?;
            let _ = sys::port_deallocate(child);
            check!(
                status == u64::MAX || status == 2,
                "the child that made a system call at the top of user space ended with {status}, \
                 not as a faulting task (or refused the page: 2)"
            );
            // And the kernel goes on: a system call answers.
            check!(
                sys::host_info(HOST_TASKS).is_ok(),
                "host_info failed after the child's end"
            );
            Ok(())
        }
    }
}

//! Threads a task starts itself (`thread_create`, `thread_exit`): a thread runs with its own
//! stack and argument and ends alone; bad addresses are refused; a task of two threads
//! cannot exec, and its fork copies only the calling thread; the last thread's
//! `thread_exit` ends the task with its status.

use crate::cases::{check, err};
use crate::roles;
use alloc::format;
use alloc::string::String;
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

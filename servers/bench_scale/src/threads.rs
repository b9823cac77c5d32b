//! A task of many threads: starts blocked threads one at a time until it has the number
//! asked for or the kernel refuses one, reports to the driver as a group does, and when told
//! to stop destroys the port they wait on, so that every one of them wakes and exits, and
//! checks they all did.
//!
//! A blocked thread here has no stack of its own: its code ([`blocked_thread`], a few
//! instructions of assembly) makes one `mach_msg` that says it is ready and waits on the
//! task's port, then `thread_exit` when that wait ends. All of them send the same message
//! from one shared buffer, which the kernel only reads (nothing is ever sent to the port
//! they receive on, so nothing is written into it). What a million of them cost is thus
//! the kernel's records alone.

use alloc::format;
use core::cell::UnsafeCell;

use libipc::abi::message::{options, Disposition};
use libipc::abi::syscall::{Syscall, HOST_THREADS};
use libipc::ipc::{receive, MessageBuffer, Name, OutMessage, ReceiveRight, SendRight};
use libipc::sys;

use crate::group::report_and_wait;
use crate::{Failure, BLOCKED_ID, SETUP_TIMEOUT_MS};

/// Bytes of the shared message buffer (and the receive limit).
const MESSAGE_BYTES: usize = 64;

/// How long the threads may take to wake and exit once their port is gone.
const EXIT_TIMEOUT_MS: u64 = 600_000;

/// The message every blocked thread sends, and their receive buffer: written once, before
/// the first thread starts; then only read, by the kernel.
#[repr(C, align(16))]
struct Shared {
    message: UnsafeCell<[u8; MESSAGE_BYTES]>,
    size: UnsafeCell<u64>,
    /// Never used as a stack: the threads push nothing. Their stack pointer points at its
    /// end so that it is a valid address all the same.
    stack: [u8; 16],
}

// SAFETY: `message` and `size` are written by the task's main thread before any blocked
// thread exists, and only read (by the kernel, in the blocked threads' `mach_msg`) after.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    message: UnsafeCell::new([0; MESSAGE_BYTES]),
    size: UnsafeCell::new(0),
    stack: [0; 16],
};

// A blocked thread: rdi holds the name of the port to wait on. One `mach_msg`: send the
// shared message (the ready message, to the task's ready port) and receive on that port;
// when the receive ends (the port destroyed), `thread_exit(0)`.
core::arch::global_asm!(
    ".global bench_scale_blocked_thread",
    "bench_scale_blocked_thread:",
    "mov r8, rdi",
    "lea rdi, [rip + {shared}]",
    "mov esi, {flags}",
    "mov rdx, qword ptr [rip + {shared} + {size_offset}]",
    "mov r10d, {limit}",
    "xor r9d, r9d",
    "mov eax, {mach_msg}",
    "syscall",
    "xor edi, edi",
    "mov eax, {thread_exit}",
    "syscall",
    "ud2",
    shared = sym SHARED,
    size_offset = const core::mem::offset_of!(Shared, size),
    flags = const options::SEND | options::RECEIVE,
    limit = const MESSAGE_BYTES,
    mach_msg = const Syscall::MachMsg as u64,
    thread_exit = const Syscall::ThreadExit as u64,
);

unsafe extern "C" {
    /// The code above; never called from Rust, only started as a thread.
    fn bench_scale_blocked_thread();
}

/// The role's main. `driver`: a send right to report on; `wanted`: how many blocked threads
/// to start. 0 when every thread woke and exited at the end, 1 otherwise (printed).
#[inline(never)]
pub fn run(driver: Name, wanted: u64) -> i32 {
    match serve(SendRight::from_raw(driver), wanted) {
        Ok(()) => 0,
        Err(why) => {
            libipc::println!("bench_scale: the task of many threads failed: {why}");
            1
        }
    }
}

fn host_threads() -> Result<u64, Failure> {
    sys::host_info(HOST_THREADS).map_err(|e| format!("host_info(HOST_THREADS): {e:?}"))
}

fn serve(driver: SendRight, wanted: u64) -> Result<(), Failure> {
    let control = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let ready = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let give = ready
        .make_send()
        .map_err(|e| format!("making a send right: {e:?}"))?;
    // The threads wait here; destroying it wakes them all.
    let waits = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let message = OutMessage::new(BLOCKED_ID, give.name()).to(give.name(), Disposition::CopySend);
    // SAFETY: no blocked thread exists yet, so nothing reads the shared buffer meanwhile.
    let size = message
        .encode(unsafe { &mut *SHARED.message.get() })
        .map_err(|e| format!("encoding the ready message: {e:?}"))?;
    // SAFETY: as above.
    unsafe { *SHARED.size.get() = size as u64 };
    let before = host_threads()?;
    let stack = SHARED.stack.as_ptr_range().end as u64;
    let mut buffer = MessageBuffer::new();
    let mut started = 0u64;
    while started < wanted {
        // SAFETY: the thread's code touches no memory but the shared buffer, which is set
        // up and only read, and ends with `thread_exit`; its stack pointer is never used.
        let created = unsafe {
            sys::thread_create(
                bench_scale_blocked_thread as *const () as usize as u64,
                stack,
                u64::from(waits.name()),
            )
        };
        if let Err(e) = created {
            libipc::println!(
                "bench_scale: the kernel refused blocked thread {} of {wanted}: {e:?}",
                started + 1
            );
            break;
        }
        let message = receive(ready.name(), &mut buffer, Some(SETUP_TIMEOUT_MS)).map_err(|e| {
            format!(
                "waiting for blocked thread {} to be ready: {e:?}",
                started + 1
            )
        })?;
        if message.id() != BLOCKED_ID {
            return Err(format!(
                "blocked thread {} said id {} instead of {BLOCKED_ID}",
                started + 1,
                message.id()
            ));
        }
        started += 1;
    }
    report_and_wait(driver, &control, started, &mut buffer)?;
    // Every thread wakes with its port gone and exits; this one waits until they have.
    drop(waits);
    let mut waited = 0;
    loop {
        let now = host_threads()?;
        if now == before {
            libipc::println!("bench_scale: all {started} blocked threads woke and exited");
            return Ok(());
        }
        if waited >= EXIT_TIMEOUT_MS {
            return Err(format!(
                "{} of {started} threads still there {EXIT_TIMEOUT_MS} ms after their port \
                 went",
                now - before
            ));
        }
        libipc::rt::sleep_ms(10);
        waited += 10;
    }
}

//! System call dispatch. Every call has one signature: it gets the kernel, the calling thread
//! and the six raw argument registers, decodes (checks everything, changes nothing), then
//! acts; its result becomes `rax` (a `KernReturn`) and `rdx` in one place.

use super::kernel::Kernel;
use super::thread::ThreadId;
use super::user::{copy_in, UserSlice};
use crate::kprint;
use libipc::abi::syscall::{Syscall, DEBUG_WRITE_MAX};
use libipc::abi::KernReturn;

/// What a call did to its thread.
pub enum Outcome {
    /// Return to the caller with this result.
    Return(Result<u64, KernReturn>),
    /// The thread is gone or has blocked; nothing to write back now.
    NoReturn,
}

type Handler = fn(&mut Kernel, ThreadId, [u64; 6]) -> Outcome;

fn handler(call: Syscall) -> Handler {
    match call {
        Syscall::DebugWrite => debug_write,
        Syscall::TaskExit => task_exit,
        Syscall::ThreadYield => thread_yield,
    }
}

/// Runs the system call the current thread made.
pub fn dispatch(kernel: &mut Kernel) {
    let Some(current) = kernel.current() else { return };
    let Some(thread) = kernel.threads.get(current) else { return };
    let f = &thread.frame;
    let (number, arguments) = (f.rax, [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9]);
    let outcome = match Syscall::from_raw(number) {
        Some(call) => handler(call)(kernel, current, arguments),
        None => Outcome::Return(Err(KernReturn::InvalidSyscall)),
    };
    if let Outcome::Return(result) = outcome {
        if let Some(thread) = kernel.threads.get_mut(current) {
            let (code, value) = match result {
                Ok(value) => (KernReturn::Success, value),
                Err(code) => (code, 0),
            };
            thread.frame.rax = code as u64;
            thread.frame.rdx = value;
        }
    }
}

fn debug_write(kernel: &mut Kernel, thread: ThreadId, a: [u64; 6]) -> Outcome {
    let slice = match UserSlice::new(a[0], a[1]).validate(DEBUG_WRITE_MAX) {
        Ok(slice) => slice,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let mut buffer = [0u8; DEBUG_WRITE_MAX];
    let buffer = &mut buffer[..slice.len()];
    let Some(task) = kernel.threads.get(thread).map(|t| t.task) else { return Outcome::NoReturn };
    let Some(task) = kernel.tasks.get_mut(task) else { return Outcome::NoReturn };
    if let Err(e) = copy_in(&mut task.space, &mut kernel.objects, slice, buffer) {
        return Outcome::Return(Err(e));
    }
    kprint!("{}", Utf8Lossy(buffer));
    Outcome::Return(Ok(0))
}

fn task_exit(kernel: &mut Kernel, thread: ThreadId, a: [u64; 6]) -> Outcome {
    if let Some(task) = kernel.threads.get(thread).map(|t| t.task) {
        kernel.terminate_task(task, super::loader::Exit::Status(a[0]));
    }
    Outcome::NoReturn
}

fn thread_yield(kernel: &mut Kernel, thread: ThreadId, _: [u64; 6]) -> Outcome {
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

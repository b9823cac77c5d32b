//! System call wrappers: raw `syscall0`..`syscall6` and one typed function per call.
//!
//! The register convention is [`crate::abi::syscall`]'s: number in `rax`, arguments in `rdi`,
//! `rsi`, `rdx`, `r10`, `r8`, `r9`; on return `rax` holds a [`KernReturn`] code and `rdx` a
//! value; `rcx` and `r11` are clobbered by the `syscall` instruction itself.

use core::arch::asm;

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

/// System call `number` without arguments.
///
/// # Safety
///
/// The call must be one whose effects cannot break memory safety, or the caller must uphold
/// its contract (e.g. calls that write into or unmap the caller's memory).
#[inline(always)]
pub unsafe fn syscall0(number: u64) -> SyscallResult {
    let (code, value);
    // SAFETY: `syscall` enters the kernel, which preserves every register but rax, rdx (the
    // results), rcx and r11 (declared clobbered) and does not use our stack; what the call does
    // to our memory is the caller's contract.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => code,
            lateout("rdx") value,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

/// System call `number` with one argument.
///
/// # Safety
///
/// As [`syscall0`]; the arguments must satisfy the call's contract.
#[inline(always)]
pub unsafe fn syscall1(number: u64, a0: u64) -> SyscallResult {
    let (code, value);
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => code,
            in("rdi") a0,
            lateout("rdx") value,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

/// System call `number` with two arguments.
///
/// # Safety
///
/// As [`syscall1`].
#[inline(always)]
pub unsafe fn syscall2(number: u64, a0: u64, a1: u64) -> SyscallResult {
    let (code, value);
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => code,
            in("rdi") a0,
            in("rsi") a1,
            lateout("rdx") value,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

/// System call `number` with three arguments.
///
/// # Safety
///
/// As [`syscall1`].
#[inline(always)]
pub unsafe fn syscall3(number: u64, a0: u64, a1: u64, a2: u64) -> SyscallResult {
    let (code, value);
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => code,
            in("rdi") a0,
            in("rsi") a1,
            inlateout("rdx") a2 => value,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

/// System call `number` with four arguments.
///
/// # Safety
///
/// As [`syscall1`].
#[inline(always)]
pub unsafe fn syscall4(number: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> SyscallResult {
    let (code, value);
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => code,
            in("rdi") a0,
            in("rsi") a1,
            inlateout("rdx") a2 => value,
            in("r10") a3,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

/// System call `number` with five arguments.
///
/// # Safety
///
/// As [`syscall1`].
#[inline(always)]
pub unsafe fn syscall5(number: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> SyscallResult {
    let (code, value);
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => code,
            in("rdi") a0,
            in("rsi") a1,
            inlateout("rdx") a2 => value,
            in("r10") a3,
            in("r8") a4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

/// System call `number` with six arguments.
///
/// # Safety
///
/// As [`syscall1`].
#[inline(always)]
pub unsafe fn syscall6(
    number: u64,
    a0: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> SyscallResult {
    let (code, value);
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => code,
            in("rdi") a0,
            in("rsi") a1,
            inlateout("rdx") a2 => value,
            in("r10") a3,
            in("r8") a4,
            in("r9") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

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
    // TaskExit does not return; if a kernel bug made it, fault rather than run on.
    // SAFETY: `ud2` raises an invalid-opcode exception; the kernel ends the task.
    unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Gives up the processor to another thread of the same or higher priority.
pub fn thread_yield() {
    // SAFETY: yielding touches no memory of ours. It cannot fail, so the result is ignored.
    unsafe {
        syscall0(Syscall::ThreadYield as u64);
    }
}

//! System calls by the `syscall` instruction: a user program's way into the kernel.

use core::arch::asm;

use super::SyscallResult;
use crate::abi::syscall::Syscall;

/// System call `number` without arguments.
///
/// # Safety
///
/// The call must be one whose effects cannot break memory safety, or the caller must uphold
/// its contract (e.g. calls that write into or unmap the caller's memory).
#[inline(always)]
pub unsafe fn syscall0(number: u64) -> SyscallResult {
    let (code, value);
    // SAFETY: the kernel keeps all registers but rax, rdx (results), rcx, r11 (clobbered), and
    // leaves our stack alone; what the call does to our memory is the caller's contract.
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
            // `mach_msg` may come back with its send bit cleared (a receive run again).
            inlateout("rsi") a1 => _,
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

/// `mach_msg` with a short message in registers (`options::SEND_REGISTERS`, see
/// [`registers`](crate::abi::message::registers)): `words` go out in `r12`..`r15`, and come
/// back holding the received message when the result's size has `IN_REGISTERS` set.
///
/// # Safety
/// As [`mach_msg`](super::mach_msg); the buffer is not read for the send.
#[inline(always)]
pub unsafe fn mach_msg_registers(
    buffer: *mut u8,
    options: u64,
    send_size: usize,
    receive_limit: usize,
    receive_name: u32,
    timeout_ms: u64,
    words: &mut [u64; 4],
) -> SyscallResult {
    let (code, value);
    // SAFETY: as in `syscall6`; the kernel also writes `r12`..`r15` (declared here), and the
    // caller vouches for the buffer.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") Syscall::MachMsg as u64 => code,
            in("rdi") buffer as u64,
            inlateout("rsi") options => _,
            inlateout("rdx") send_size as u64 => value,
            in("r10") receive_limit as u64,
            in("r8") u64::from(receive_name),
            in("r9") timeout_ms,
            inout("r12") words[0],
            inout("r13") words[1],
            inout("r14") words[2],
            inout("r15") words[3],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    SyscallResult { code, value }
}

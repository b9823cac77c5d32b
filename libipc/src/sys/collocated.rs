//! System calls of a server the kernel hosts (`collocated`): plain calls of the kernel's
//! `libipc_collocated_syscall`, with the same numbers, arguments and results as the
//! `syscall` instruction's, so everything above this module is the same in both builds.
//!
//! The kernel runs the call as the server's own task and never lets it wait: a `mach_msg`
//! that would block times out at once, and calls that can only wait are refused.

use super::SyscallResult;
use crate::abi::syscall::Syscall;

extern "Rust" {
    /// The kernel's entry for its collocated servers: system call `number` with `arguments`,
    /// and for `mach_msg` the short message `words` (in both directions, as `r12`..`r15`).
    fn libipc_collocated_syscall(
        number: u64,
        arguments: [u64; 6],
        words: &mut [u64; 4],
    ) -> SyscallResult;
}

/// System call `number` with six arguments.
///
/// # Safety
///
/// As for the `syscall` instruction's: the call's contract on the memory it names.
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
    let mut words = [0; 4];
    // SAFETY: the kernel that links this server defines the entry with this signature; the
    // memory contract is the caller's.
    unsafe { libipc_collocated_syscall(number, [a0, a1, a2, a3, a4, a5], &mut words) }
}

/// System call `number` without arguments.
///
/// # Safety
///
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall0(number: u64) -> SyscallResult {
    // SAFETY: as the caller's.
    unsafe { syscall6(number, 0, 0, 0, 0, 0, 0) }
}

/// System call `number` with one argument.
///
/// # Safety
///
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall1(number: u64, a0: u64) -> SyscallResult {
    // SAFETY: as the caller's.
    unsafe { syscall6(number, a0, 0, 0, 0, 0, 0) }
}

/// System call `number` with two arguments.
///
/// # Safety
///
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall2(number: u64, a0: u64, a1: u64) -> SyscallResult {
    // SAFETY: as the caller's.
    unsafe { syscall6(number, a0, a1, 0, 0, 0, 0) }
}

/// System call `number` with three arguments.
///
/// # Safety
///
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall3(number: u64, a0: u64, a1: u64, a2: u64) -> SyscallResult {
    // SAFETY: as the caller's.
    unsafe { syscall6(number, a0, a1, a2, 0, 0, 0) }
}

/// System call `number` with four arguments.
///
/// # Safety
///
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall4(number: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> SyscallResult {
    // SAFETY: as the caller's.
    unsafe { syscall6(number, a0, a1, a2, a3, 0, 0) }
}

/// System call `number` with five arguments.
///
/// # Safety
///
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall5(number: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> SyscallResult {
    // SAFETY: as the caller's.
    unsafe { syscall6(number, a0, a1, a2, a3, a4, 0) }
}

/// `mach_msg` with a short message in `words` (see the `syscall` build's).
///
/// # Safety
/// As for the `syscall` build's: `buffer` valid for the sizes given.
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
    let arguments = [
        buffer as u64,
        options,
        send_size as u64,
        receive_limit as u64,
        u64::from(receive_name),
        timeout_ms,
    ];
    // SAFETY: as in `syscall6`; the caller vouches for the buffer.
    unsafe { libipc_collocated_syscall(Syscall::MachMsg as u64, arguments, words) }
}

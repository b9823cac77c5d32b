//! The `syscall` instruction's entry: saves the user registers straight into the running
//! thread's frame (found through the TSS's `rsp0`, `gs:[28]`, where it ends), moves to the
//! kernel stack and calls `kern::entry::syscall_from_user`, which never returns (with the
//! frame in `rdi`, and `rsi`, `rdx` and `r8` still the user's: its next arguments). The direction
//! flag needs no `cld`: `syscall` clears it (DF is in the FMASK `init` sets).
//!
//! The entry stores only what a system call changes in the frame: the fifteen registers but
//! `rcx` and `r11`, which `syscall` overwrote with the return `rip` and `rflags` (stored in
//! those fields instead: the frame's `rcx` and `r11` keep what the last trap saw, as a
//! system call leaves both undefined). Not the vector: while a thread runs in user mode its
//! frame's vector is already the syscall's (every way back to user mode leaves it so:
//! `trap::resume_user` writes it, and `sysret` returns from a frame that has it). The
//! selectors are the user ones every thread's frame holds from its start (interrupts push
//! the same), and the error code is the last exception's, which nothing reads for a system
//! call.

use super::cpu::{read_msr, write_msr, IA32_EFER};
use super::gdt::{KERNEL_CODE, KERNEL_DATA, USER_CODE, USER_DATA};
use super::trap::TrapFrame;
use core::mem::{offset_of, size_of};

const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;

core::arch::global_asm!(
    r#"
    .section .text.syscall, "ax", @progbits
    .global syscall_entry
syscall_entry:
    swapgs
    movq %rsp, %gs:16
    movq %gs:28, %rsp
    movq %rax, {rax}-{end}(%rsp)
    movq %rbx, {rbx}-{end}(%rsp)
    movq %rdx, {rdx}-{end}(%rsp)
    movq %rsi, {rsi}-{end}(%rsp)
    movq %rdi, {rdi}-{end}(%rsp)
    movq %rbp, {rbp}-{end}(%rsp)
    movq %r8, {r8}-{end}(%rsp)
    movq %r9, {r9}-{end}(%rsp)
    movq %r10, {r10}-{end}(%rsp)
    movq %r12, {r12}-{end}(%rsp)
    movq %r13, {r13}-{end}(%rsp)
    movq %r14, {r14}-{end}(%rsp)
    movq %r15, {r15}-{end}(%rsp)
    movq %rcx, {rip}-{end}(%rsp)
    movq %r11, {rflags}-{end}(%rsp)
    movq %gs:16, %rax
    movq %rax, {rsp}-{end}(%rsp)
    leaq -{end}(%rsp), %rdi
    movq %gs:8, %rsp
    call {from_user}
    ud2
"#,
    end = const size_of::<TrapFrame>(),
    rax = const offset_of!(TrapFrame, rax),
    rbx = const offset_of!(TrapFrame, rbx),
    rdx = const offset_of!(TrapFrame, rdx),
    rsi = const offset_of!(TrapFrame, rsi),
    rdi = const offset_of!(TrapFrame, rdi),
    rbp = const offset_of!(TrapFrame, rbp),
    r8 = const offset_of!(TrapFrame, r8),
    r9 = const offset_of!(TrapFrame, r9),
    r10 = const offset_of!(TrapFrame, r10),
    r12 = const offset_of!(TrapFrame, r12),
    r13 = const offset_of!(TrapFrame, r13),
    r14 = const offset_of!(TrapFrame, r14),
    r15 = const offset_of!(TrapFrame, r15),
    rip = const offset_of!(TrapFrame, rip),
    rflags = const offset_of!(TrapFrame, rflags),
    rsp = const offset_of!(TrapFrame, rsp),
    from_user = sym crate::kern::entry::syscall_from_user,
    options(att_syntax)
);

unsafe extern "C" {
    fn syscall_entry();
}

/// Enables `syscall`/`sysret` and points them at the entry above.
pub fn init() {
    // STAR: kernel CS in 47:32 (SS = CS + 8); sysret's base in 63:48 (SS = base + 8, CS =
    // base + 16), which the GDT order kernel code, kernel data, user data, user code gives.
    let star = (u64::from(KERNEL_DATA & !3) << 48) | (u64::from(KERNEL_CODE) << 32);
    debug_assert_eq!((KERNEL_DATA & !3) + 8, USER_DATA & !3);
    debug_assert_eq!((KERNEL_DATA & !3) + 16, USER_CODE & !3);
    // SAFETY: these MSRs exist on every x86_64 CPU; the entry point is the code above, and
    // masking IF, DF, TF, AC and NT on entry gives the kernel a clean, uninterruptible state.
    unsafe {
        write_msr(IA32_STAR, star);
        write_msr(IA32_LSTAR, syscall_entry as *const () as u64);
        write_msr(IA32_FMASK, 0x4_7700);
        write_msr(IA32_EFER, read_msr(IA32_EFER) | 1);
    }
}

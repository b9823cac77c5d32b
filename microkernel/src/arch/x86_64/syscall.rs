//! The `syscall` instruction's entry: saves the user registers straight into the running
//! thread's frame (found through the TSS's `rsp0`, `gs:[28]`), moves to the kernel stack and calls
//! `kern::entry::syscall_from_user`, which never returns. The direction flag needs no `cld`:
//! `syscall` clears it (DF is in the FMASK `init` sets).

use super::cpu::{read_msr, write_msr, IA32_EFER};
use super::gdt::{KERNEL_CODE, KERNEL_DATA, USER_CODE, USER_DATA};
use super::trap::SYSCALL_VECTOR;

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
    pushq ${user_data}
    pushq %gs:16
    pushq %r11
    pushq ${user_code}
    pushq %rcx
    pushq $0
    pushq ${syscall_vector}
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    movq %gs:8, %rsp
    call {from_user}
    ud2
"#,
    user_data = const USER_DATA,
    user_code = const USER_CODE,
    syscall_vector = const SYSCALL_VECTOR,
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

//! Recovery points: a call that can be abandoned from deep inside (a collocated server's
//! panic or fault), returning to where it was made with the callee-saved registers and stack
//! it had. Nothing between is dropped or unwound: the caller decides what the abandoned work
//! leaves (a collocated server's objects are leaked, its task ended).

use core::ffi::c_void;

/// Where [`call`] returns to when the work is abandoned: its stack pointer after it saved
/// the callee-saved registers.
#[repr(C)]
pub struct Point {
    rsp: u64,
}

core::arch::global_asm!(
    r#"
    .section .text.recover, "ax", @progbits
    .global recover_call
    // recover_call(point: *mut Point, work: extern "C" fn(*mut c_void), data: *mut c_void,
    //     stack: u64) -> u64: 0 when `work` returned, 1 when abandoned (recover_abandon).
    // `work` runs on `stack` (its 16-byte aligned top) unless that is 0.
recover_call:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    movq %rsp, (%rdi)
    movq %rdi, %rbx
    movq %rsi, %rax
    movq %rdx, %rdi
    testq %rcx, %rcx
    jz 1f
    movq %rcx, %rsp
1:
    call *%rax
    movq (%rbx), %rsp
    xorl %eax, %eax
recover_return:
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

    .global recover_abandon
    // recover_abandon(point: *const Point) -> !
recover_abandon:
    movq (%rdi), %rsp
    movl $1, %eax
    jmp recover_return
"#,
    options(att_syntax)
);

// SAFETY: the two symbols are the assembly above, with these signatures (System V: the
// arguments in rdi, rsi, rdx, rcx; the result in rax).
unsafe extern "C" {
    fn recover_call(
        point: *mut Point,
        work: extern "C" fn(*mut c_void),
        data: *mut c_void,
        stack: u64,
    ) -> u64;
    fn recover_abandon(point: *const Point) -> !;
}

/// The work was abandoned ([`abandon`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abandoned;

/// Runs `work` after `on_point` has been given its recovery point (to record where
/// [`abandon`] returns to), on the stack whose top is `stack` (0: this one). `Err(Abandoned)`
/// when it was abandoned: then nothing `work` held was dropped.
///
/// # Safety
/// A non-zero `stack` must be the 16-byte aligned top of a mapped stack nothing else uses
/// until `work` returns or is abandoned.
#[inline(always)]
pub unsafe fn call(
    on_point: impl FnOnce(*const Point),
    stack: u64,
    mut work: impl FnMut(),
) -> Result<(), Abandoned> {
    extern "C" fn trampoline(data: *mut c_void) {
        // SAFETY: `data` is the `&mut dyn FnMut()` that `call` passed, alive on its stack
        // until `recover_call` returns, and only this function uses it meanwhile.
        let work = unsafe { &mut *(data as *mut &mut dyn FnMut()) };
        work();
    }
    let mut point = Point { rsp: 0 };
    let point = core::ptr::addr_of_mut!(point);
    let mut work: &mut dyn FnMut() = &mut work;
    on_point(point);
    // SAFETY: `recover_call` saves the callee-saved registers, records its stack in `point`
    // and calls `trampoline` with `work` (on `stack`, per the contract); it returns 0 from
    // there, or 1 from `recover_abandon`, with the registers and stack of this call restored
    // either way.
    let abandoned = unsafe {
        recover_call(
            point,
            trampoline,
            &mut work as *mut &mut dyn FnMut() as *mut c_void,
            stack,
        )
    };
    if abandoned != 0 {
        return Err(Abandoned);
    }
    Ok(())
}

/// Abandons the work running under recovery point `point`: returns from its [`call`] with
/// `Err(Abandoned)`.
///
/// # Safety
/// `point` must be the point of a [`call`] still running (its frame below on this stack),
/// and nothing that frame's callers rely on may live in the frames between.
pub unsafe fn abandon(point: *const Point) -> ! {
    // SAFETY: per the contract, the point's stack and saved registers are intact.
    unsafe { recover_abandon(point) }
}

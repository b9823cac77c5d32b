//! Trap entry: one 16-byte stub per vector, a common path that saves the registers into a
//! [`TrapFrame`], and the dispatcher that decides what each vector means.
//!
//! Entries from user mode save the registers straight into the running thread's frame and go
//! to `kern::entry`, which never returns (it resumes some thread with [`return_to_user`]).
//! Entries from kernel mode (the idle loop's interrupts, kernel faults) use the kernel stack.
//! What a trap in kernel mode means is the kernel's business: everything but breakpoints and
//! spurious interrupts goes to `kern::entry::trap_in_kernel`, the one way up from here.

use super::percpu;
use libipc::abi::syscall::{CANONICAL_LOWER_END, USER_END};

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0x30;
/// Vector the local APIC uses for spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Vectors with an error code pushed by the CPU: 8, 10-14, 17, 21, 29, 30.
const ERROR_CODE_VECTORS: u32 = 0x6022_7d00;

core::arch::global_asm!(
    r#"
    .section .text.trap, "ax", @progbits
    .balign 16
    .global trap_stubs
trap_stubs:
    .set trap_vector, 0
    .rept 256
    .balign 16
    .if trap_vector < 32
    .if ((({error_vectors}) >> trap_vector) & 1) == 0
    pushq $0
    .endif
    .else
    pushq $0
    .endif
    pushq $trap_vector
    jmp trap_common
    .set trap_vector, trap_vector + 1
    .endr

trap_common:
    /* From user mode (CS.RPL != 0) the CPU pushed into the running thread's frame (the TSS
       points there): finish saving into it, then move to the kernel stack for good. */
    testb $3, 24(%rsp)
    jz 1f
    swapgs
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
    cld
    call {from_user}
    ud2
1:
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
    cld
    call {dispatch}
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    /* resume_user(frame): loads a thread's saved registers and returns to user mode. The
       frame's vector becomes the syscall's, as every frame's is while its thread runs in
       user mode: the syscall entry does not store it. */
    .global resume_user
resume_user:
    movq %rdi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    movq ${syscall_vector}, (%rsp)
    addq $16, %rsp
    swapgs
    iretq

    /* resume_user_sysret(frame): the same through sysret, for a frame the syscall entry
       saved whose rip the caller checked canonical: rcx and r11 carry rip and rflags (the
       syscall instruction clobbered both anyway). The rflags are those `syscall` took from
       user mode, so IF is set and IOPL 0 (user code can change neither), and sysret itself
       clears RF and VM: they go back as they came. */
    .global resume_user_sysret
resume_user_sysret:
    movq {rip}(%rdi), %rcx
    movq {rflags}(%rdi), %r11
    movq {r15}(%rdi), %r15
    movq {r14}(%rdi), %r14
    movq {r13}(%rdi), %r13
    movq {r12}(%rdi), %r12
    movq {r10}(%rdi), %r10
    movq {r9}(%rdi), %r9
    movq {r8}(%rdi), %r8
    movq {rbp}(%rdi), %rbp
    movq {rsi}(%rdi), %rsi
    movq {rdx}(%rdi), %rdx
    movq {rbx}(%rdi), %rbx
    movq {rax}(%rdi), %rax
    movq {rsp}(%rdi), %rsp
    movq {rdi}(%rdi), %rdi
    swapgs
    sysretq
"#,
    rip = const core::mem::offset_of!(TrapFrame, rip),
    rflags = const core::mem::offset_of!(TrapFrame, rflags),
    rsp = const core::mem::offset_of!(TrapFrame, rsp),
    r15 = const core::mem::offset_of!(TrapFrame, r15),
    r14 = const core::mem::offset_of!(TrapFrame, r14),
    r13 = const core::mem::offset_of!(TrapFrame, r13),
    r12 = const core::mem::offset_of!(TrapFrame, r12),
    r10 = const core::mem::offset_of!(TrapFrame, r10),
    r9 = const core::mem::offset_of!(TrapFrame, r9),
    r8 = const core::mem::offset_of!(TrapFrame, r8),
    rbp = const core::mem::offset_of!(TrapFrame, rbp),
    rdi = const core::mem::offset_of!(TrapFrame, rdi),
    rsi = const core::mem::offset_of!(TrapFrame, rsi),
    rdx = const core::mem::offset_of!(TrapFrame, rdx),
    rbx = const core::mem::offset_of!(TrapFrame, rbx),
    rax = const core::mem::offset_of!(TrapFrame, rax),
    error_vectors = const ERROR_CODE_VECTORS,
    syscall_vector = const SYSCALL_VECTOR,
    dispatch = sym trap_dispatch,
    from_user = sym crate::kern::entry::trap_from_user,
    options(att_syntax)
);

unsafe extern "C" {
    static trap_stubs: u8;
    fn resume_user(frame: *const TrapFrame) -> !;
    fn resume_user_sysret(frame: *const TrapFrame) -> !;
}

/// Returns to user mode with the registers in `frame`, which must be the running thread's
/// (it stays where the next entry from user mode saves registers).
///
/// # Safety
/// `frame` must hold a user context the CPU accepts: user code and stack selectors, a
/// canonical lower-half `rip`, `rflags` with IF set and IOPL 0; the current address space
/// must be the thread's.
#[inline(always)]
pub unsafe fn return_to_user(frame: *const TrapFrame) -> ! {
    // SAFETY: the caller vouches for the frame.
    if unsafe { (*frame).vector } == SYSCALL_VECTOR {
        // SAFETY: as above; a frame with the syscall's vector is one the syscall entry saved.
        unsafe { return_from_syscall(frame) }
    }
    super::percpu::set_frame_end(frame as u64 + core::mem::size_of::<TrapFrame>() as u64);
    // SAFETY: the caller vouches for the frame; resume_user never returns.
    unsafe { resume_user(frame) }
}

/// [`return_to_user`] for a frame known to be a system call's (a thread that waits in a
/// receive entered it through `syscall`; so did a caller that goes on at once): no test of
/// the vector, and none of `rip`. `sysret` to a non-canonical `rip` would fault in ring 0 on
/// the user's stack, but a system call's `rip` is always canonical: it is the address after
/// a `syscall` in user memory (or that `syscall`'s own, to run it again), and user memory
/// ends a page below the canonical end (`USER_END`), so even a `syscall` in its last two
/// bytes returns to an address below `2^47`.
///
/// # Safety
/// As for [`return_to_user`], and the frame was saved by the syscall entry.
#[inline(always)]
pub unsafe fn return_from_syscall(frame: *const TrapFrame) -> ! {
    const _: () = assert!(USER_END < CANONICAL_LOWER_END);
    super::percpu::set_frame_end(frame as u64 + core::mem::size_of::<TrapFrame>() as u64);
    // SAFETY: the caller vouches for the frame.
    debug_assert_eq!(unsafe { (*frame).vector }, SYSCALL_VECTOR);
    // SAFETY: as above.
    debug_assert!(unsafe { (*frame).rip } <= USER_END);
    // What `syscall` saves from user mode (see `resume_user_sysret`): IF and the reserved
    // bit 1 set, and flags user code may set (NT too: `popf` sets it at CPL 3).
    // SAFETY: as above.
    debug_assert_eq!(unsafe { (*frame).rflags } & !(USER_FLAGS | 0x4000), 0x202);
    // SAFETY: a frame the syscall entry saved (the contract), its `rip` canonical (above);
    // `sysret` loads the user selectors `syscall::init` set in STAR.
    unsafe { resume_user_sysret(frame) }
}

/// The running thread's saved registers, where the last entry from user mode saved them
/// (the frame [`return_to_user`] made this CPU's): for a path that did not keep the pointer
/// the entry passed.
#[inline(always)]
pub fn running_frame() -> *mut TrapFrame {
    (super::percpu::frame_end() - core::mem::size_of::<TrapFrame>() as u64) as *mut TrapFrame
}

/// The `rflags` bits user code sets in the usual way: CF, PF, AF, ZF, SF, TF, DF, OF, AC and
/// ID (never IOPL, RF, VM, VIF or VIP; NT only through `popf`).
const USER_FLAGS: u64 = 0x24_0dd5;

/// Address of the stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    &raw const trap_stubs as u64 + 16 * u64::from(vector)
}

/// The registers as the stubs saved them, lowest address first. Also a thread's saved user
/// context: the syscall entry builds the same layout.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// A system call's six arguments as the syscall ABI passes them (`rax` is its number).
    #[inline(always)]
    pub fn syscall_arguments(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}

/// Mnemonic and name of an exception vector.
pub fn exception_name(vector: u64) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection fault"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point error"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        _ => ("#??", "reserved exception"),
    }
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        3 => percpu::current().count_breakpoint(),
        v if v == u64::from(SPURIOUS_VECTOR) => {}
        // Legacy PIC spurious interrupts (IRQ 7 and 15 after remapping) need no EOI.
        0x27 | 0x2f => {}
        // Everything else is the kernel's business (its one way in from here).
        _ => crate::kern::entry::trap_in_kernel(frame),
    }
}

pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Pseudo-vector recorded in frames saved by the syscall entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// Vector of device interrupts (MSI-X).
pub const DEVICE_VECTOR: u8 = 0x40;

/// The vector number a user-mode entry was for.
pub fn is_timer(vector: u64) -> bool {
    vector == u64::from(TIMER_VECTOR)
}

/// Whether `vector` is a spurious interrupt (the APIC's or the legacy PIC's), which needs
/// nothing done.
pub fn is_spurious(vector: u64) -> bool {
    vector == u64::from(SPURIOUS_VECTOR) || vector == 0x27 || vector == 0x2f
}

/// Writes what a CPU exception in `frame` was and every register, for a fatal report.
pub fn describe_exception(frame: &TrapFrame, out: &mut dyn core::fmt::Write) {
    let (mnemonic, name) = exception_name(frame.vector);
    let _ = writeln!(
        out,
        "exception: {mnemonic} {name} (vector {}) in {} mode, error code {:#x}",
        frame.vector,
        if frame.cs & 3 == 0 { "kernel" } else { "user" },
        frame.error_code
    );
    if frame.vector == 14 {
        let e = frame.error_code;
        let _ = writeln!(
            out,
            "  cr2={:#018x} ({} {}, {})",
            read_cr2(),
            if e & 1 != 0 {
                "protection violation on"
            } else {
                "not-present page on"
            },
            if e & 16 != 0 {
                "instruction fetch"
            } else if e & 2 != 0 {
                "write"
            } else {
                "read"
            },
            if e & 4 != 0 { "user" } else { "supervisor" }
        );
    }
    let owner = super::entry::stack_guard_owner(frame.rsp)
        .or_else(|| super::entry::stack_guard_owner(read_cr2()));
    match owner {
        Some(0) => {
            let _ = writeln!(
                out,
                "  kernel stack overflow: rsp or cr2 is in the boot stack's guard page"
            );
        }
        Some(cpu) => {
            let _ = writeln!(
                out,
                "  kernel stack overflow: rsp or cr2 is in the guard page of CPU {cpu}'s stack"
            );
        }
        None => {}
    }
    let f = frame;
    let _ = writeln!(
        out,
        "  rip={:#018x} cs={:#06x} rflags={:#010x} rsp={:#018x} ss={:#06x}",
        f.rip, f.cs, f.rflags, f.rsp, f.ss
    );
    let _ = writeln!(
        out,
        "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}",
        f.rax, f.rbx, f.rcx, f.rdx
    );
    let _ = writeln!(
        out,
        "  rsi={:#018x} rdi={:#018x} rbp={:#018x} r8 ={:#018x}",
        f.rsi, f.rdi, f.rbp, f.r8
    );
    let _ = writeln!(
        out,
        "  r9 ={:#018x} r10={:#018x} r11={:#018x} r12={:#018x}",
        f.r9, f.r10, f.r11, f.r12
    );
    let _ = writeln!(
        out,
        "  r13={:#018x} r14={:#018x} r15={:#018x} cr3={:#018x}",
        f.r13,
        f.r14,
        f.r15,
        x86_64::registers::control::Cr3::read_raw()
            .0
            .start_address()
            .as_u64()
    );
}

//! Per-CPU state, reached through the GS base. Only the boot CPU runs for now, but every
//! per-CPU datum already lives here so SMP needs no rewrite.

use super::cpu::{write_msr, IA32_GS_BASE, IA32_KERNEL_GS_BASE};
use core::sync::atomic::{AtomicU64, Ordering};

/// One CPU's private data. `repr(C)` because assembly (the syscall and trap entries) reads the
/// first fields at fixed offsets from GS.
#[repr(C)]
pub struct PerCpu {
    /// Points at this structure: `gs:[0]`.
    self_pointer: *const PerCpu,
    /// Top of this CPU's kernel stack: `gs:[8]`.
    kernel_stack_top: u64,
    /// End of the running thread's saved-register frame: `gs:[16]`. The syscall entry pushes
    /// the user registers below it, straight into the thread.
    frame_end: u64,
    /// The user stack pointer during the syscall entry: `gs:[24]`.
    user_rsp: u64,
    /// Index of the CPU (0 is the boot CPU).
    index: u32,
    /// Local APIC id.
    apic_id: u32,
    /// Timer interrupts taken on this CPU.
    ticks: AtomicU64,
    /// Breakpoint exceptions taken (kernel self-test of the trap return path).
    breakpoints: AtomicU64,
}

// The entry code in `syscall` and `trap` uses these offsets.
const _: () = assert!(core::mem::offset_of!(PerCpu, self_pointer) == 0);
const _: () = assert!(core::mem::offset_of!(PerCpu, kernel_stack_top) == 8);
const _: () = assert!(core::mem::offset_of!(PerCpu, frame_end) == 16);
const _: () = assert!(core::mem::offset_of!(PerCpu, user_rsp) == 24);

// SAFETY: a PerCpu is only written by its own CPU (through `current()`), except for the
// atomics, which are safe to share.
unsafe impl Sync for PerCpu {}

static mut BOOT_CPU: PerCpu = PerCpu {
    self_pointer: core::ptr::null(),
    kernel_stack_top: 0,
    frame_end: 0,
    user_rsp: 0,
    index: 0,
    apic_id: 0,
    ticks: AtomicU64::new(0),
    breakpoints: AtomicU64::new(0),
};

/// Sets up the boot CPU's area and points GS at it.
pub fn init_boot_cpu(kernel_stack_top: u64, apic_id: u32) {
    let area = &raw mut BOOT_CPU;
    // SAFETY: called once, on the boot CPU, before anything reads the area; the write goes
    // through a raw pointer so no reference to the static outlives this block.
    unsafe {
        (*area).self_pointer = area;
        (*area).kernel_stack_top = kernel_stack_top;
        (*area).apic_id = apic_id;
        write_msr(IA32_GS_BASE, area as u64);
        write_msr(IA32_KERNEL_GS_BASE, 0);
    }
}

/// Makes the saved-register frame ending at `frame_end` the one this CPU's user-mode entries
/// fill (syscalls through `gs:[16]`, interrupts and exceptions through the TSS).
#[inline(always)]
pub fn set_frame_end(frame_end: u64) {
    // Only this CPU writes its `frame_end`, with interrupts disabled, and only its own entry
    // code reads it.
    // SAFETY: GS base points at this CPU's initialised PerCpu (see `current`), whose
    // `frame_end` is at offset 16 (asserted above).
    unsafe {
        core::arch::asm!("mov gs:[16], {}", in(reg) frame_end, options(nostack, preserves_flags))
    };
    super::gdt::set_interrupt_stack(frame_end);
}

/// This CPU's area.
pub fn current() -> &'static PerCpu {
    let pointer: *const PerCpu;
    // SAFETY: GS base points at an initialised PerCpu from `init_boot_cpu` on (the kernel
    // never runs with a user GS base); its first field is the pointer to itself.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) pointer, options(nostack, readonly, preserves_flags));
        &*pointer
    }
}

impl PerCpu {
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn apic_id(&self) -> u32 {
        self.apic_id
    }
    pub fn kernel_stack_top(&self) -> u64 {
        self.kernel_stack_top
    }
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
    pub fn tick(&self) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }
    pub fn breakpoints(&self) -> u64 {
        self.breakpoints.load(Ordering::Relaxed)
    }
    pub(super) fn count_breakpoint(&self) {
        self.breakpoints.fetch_add(1, Ordering::Relaxed);
    }
    /// Whether `gs:[0]` really points at this area.
    pub fn is_self_consistent(&self) -> bool {
        core::ptr::eq(self.self_pointer, self)
    }
}

//! Starting the application processors.
//!
//! On the PVH path the kernel starts them itself: INIT and two start-up IPIs send each to a
//! real-mode trampoline copied to [`TRAMPOLINE`] (in the first MiB, which the frame
//! allocator never uses). The trampoline loads a GDT of its own and the PVH boot page tables
//! (which map the first 4 GiB at their physical addresses and the kernel image at its link
//! address), goes straight from real mode to long mode, and jumps to [`ap_start64`] in the
//! kernel image, which loads the kernel's own tables and the CPU's stack from [`AP_BOOT`]
//! and calls the kernel's entry for it. Under Limine the boot loader has started them
//! already; each is sent to [`limine_ap_entry`] through its MP response, and goes on the
//! same way from there. One processor starts at a time: `AP_BOOT` holds its arguments.

use core::sync::atomic::{AtomicU64, Ordering};

/// Physical address of the trampoline's page (start-up IPI vector 0x08).
pub const TRAMPOLINE: u64 = 0x8000;

/// What the next application processor to start needs, read by `ap_start64`.
#[repr(C)]
pub struct ApBoot {
    /// The kernel's page-table root.
    pub cr3: AtomicU64,
    /// Top of the CPU's kernel stack.
    pub stack_top: AtomicU64,
    /// The argument for the kernel's entry (its per-CPU set-up).
    pub argument: AtomicU64,
    /// The kernel's entry: `extern "C" fn(u64) -> !`.
    pub entry: AtomicU64,
    /// Set to 1 by the CPU once it runs on its own stack (the arguments may then change).
    pub started: AtomicU64,
    /// EFER bits to set before the kernel's tables are loaded (NXE, which they use).
    pub efer: AtomicU64,
}

// `ap_start64` reads the fields at these offsets.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(ApBoot, cr3) == 0 && offset_of!(ApBoot, stack_top) == 8);
    assert!(offset_of!(ApBoot, argument) == 16 && offset_of!(ApBoot, entry) == 24);
    assert!(offset_of!(ApBoot, started) == 32 && offset_of!(ApBoot, efer) == 40);
};

pub static AP_BOOT: ApBoot = ApBoot {
    cr3: AtomicU64::new(0),
    stack_top: AtomicU64::new(0),
    argument: AtomicU64::new(0),
    entry: AtomicU64::new(0),
    started: AtomicU64::new(0),
    efer: AtomicU64::new(0),
};

core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a", @progbits
    .balign 16
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_gdt_pointer - ap_trampoline_start)
    movl %cr4, %eax
    orl $0xa0, %eax                     /* PAE | PGE */
    movl %eax, %cr4
    movl (ap_boot_cr3 - ap_trampoline_start), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx              /* EFER */
    rdmsr
    orl (ap_efer_bits - ap_trampoline_start), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax               /* PG | WP | PE */
    movl %eax, %cr0
    ljmpl *(ap_far_pointer - ap_trampoline_start)
    .code64
ap_long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movabsq $ap_start64, %rax
    jmpq *%rax
    .balign 8
ap_gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
ap_gdt_pointer:
    .word 23
    .long 0                             /* patched: physical address of ap_gdt */
ap_far_pointer:
    .long 0                             /* patched: physical address of ap_long_mode */
    .word 0x08
ap_boot_cr3:
    .long 0                             /* patched: the PVH boot tables */
ap_efer_bits:
    .long 0                             /* patched: LME, and NXE if the CPU has it */
    .global ap_trampoline_end
ap_trampoline_end:

    .section .text.ap_start64, "ax", @progbits
    .global ap_start64
ap_start64:
    movabsq ${ap_boot}, %rbx
    movl $0xc0000080, %ecx              /* EFER */
    rdmsr
    orl 40(%rbx), %eax
    wrmsr
    movq 0(%rbx), %rax
    movq %rax, %cr3
    movq 8(%rbx), %rsp
    movq 16(%rbx), %rdi
    movq 24(%rbx), %rax
    movq $1, 32(%rbx)
    xorl %ebp, %ebp
    callq *%rax
    ud2
"#,
    ap_boot = sym AP_BOOT,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_gdt: u8;
    static ap_gdt_pointer: u8;
    static ap_far_pointer: u8;
    static ap_boot_cr3: u8;
    static ap_efer_bits: u8;
    static ap_long_mode: u8;
    fn ap_start64() -> !;
}

/// Copies the trampoline to [`TRAMPOLINE`] through `trampoline_page` (the page's kernel
/// address), patched for that address, the boot tables at `boot_root` and `efer_bits`.
///
/// # Safety
/// `trampoline_page` maps physical [`TRAMPOLINE`], a page of RAM nothing else uses.
pub unsafe fn install_trampoline(trampoline_page: *mut u8, boot_root: u64, efer_bits: u32) {
    let start = &raw const ap_trampoline_start as usize;
    let length = &raw const ap_trampoline_end as usize - start;
    assert!(length <= 4096, "the AP trampoline fits a page");
    let offset = |symbol: *const u8| symbol as usize - start;
    // SAFETY: per the contract; the source is the trampoline's bytes in the kernel image.
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, trampoline_page, length);
        let patch = |symbol: *const u8, value: u32| {
            let at = trampoline_page.add(offset(symbol)) as *mut u32;
            at.write_unaligned(value);
        };
        let physical = |symbol: *const u8| (TRAMPOLINE as usize + offset(symbol)) as u32;
        patch(
            (&raw const ap_gdt_pointer).add(2),
            physical(&raw const ap_gdt),
        );
        patch(&raw const ap_far_pointer, physical(&raw const ap_long_mode));
        patch(&raw const ap_boot_cr3, boot_root as u32);
        patch(&raw const ap_efer_bits, efer_bits);
    }
}

/// The boot page tables' root, as a virtual address (translated by the caller).
pub fn boot_tables() -> u64 {
    unsafe extern "C" {
        static boot_pml4: u8;
    }
    &raw const boot_pml4 as u64
}

/// Sets the arguments for the next processor to start, and clears `started`.
pub fn prepare(
    cr3: u64,
    efer_bits: u32,
    stack_top: u64,
    entry: extern "C" fn(u64) -> !,
    argument: u64,
) {
    AP_BOOT.efer.store(u64::from(efer_bits), Ordering::Relaxed);
    AP_BOOT.cr3.store(cr3, Ordering::Relaxed);
    AP_BOOT.stack_top.store(stack_top, Ordering::Relaxed);
    AP_BOOT.argument.store(argument, Ordering::Relaxed);
    AP_BOOT
        .entry
        .store(entry as usize as u64, Ordering::Relaxed);
    AP_BOOT.started.store(0, Ordering::Release);
}

/// Whether the processor last prepared runs on its own stack.
pub fn started() -> bool {
    AP_BOOT.started.load(Ordering::Acquire) != 0
}

/// Where Limine sends an application processor (through its MP response's `goto_address`):
/// on Limine's tables and stack, it goes on as from the trampoline.
///
/// # Safety
/// Only Limine calls this, once per processor, after [`prepare`].
pub unsafe extern "C" fn limine_ap_entry(_cpu: &limine::mp::Cpu) -> ! {
    // SAFETY: Limine's tables map the kernel image at its link address, as the kernel's do,
    // so `ap_start64` runs on after it loads the kernel's; it never returns.
    unsafe { ap_start64() }
}

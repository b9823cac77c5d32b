//! The kernel's two entry points: Limine's 64-bit `_start`, and the PVH note with its 32-bit
//! stub that QEMU's direct boot jumps to.
//!
//! The PVH stub runs at physical addresses with paging off. It installs boot page tables that
//! map the first 4 GiB three times (identity, at the direct-map base, and the first 2 GiB at
//! the kernel's link address in the top 2 GiB), enters long mode, moves to the boot stack and
//! calls [`pvh_entry`](crate::kern::startup::pvh_entry). Rust code replaces these tables with
//! the kernel's own before it uses any memory beyond them.

/// Where the PVH boot tables map physical memory (the direct map's base on that path).
pub const PVH_DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;

/// Bytes of the boot stack, which stays the boot CPU's kernel stack. Its lowest page is an
/// unmapped guard page once the kernel's own page tables are in use.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

/// Bytes of the stack collocated servers run on (`colloc`): their code was written for a
/// task's stack, and the kernel's is shared with the kernel's own frames. Its lowest page is
/// an unmapped guard page too, so an overflow is the server's fault (reported, its task
/// ended), not the kernel's corruption.
pub const SERVER_STACK_SIZE: usize = 128 * 1024;

core::arch::global_asm!(
    r#"
    .set KERNEL_VMA, 0xffffffff80000000

    /* XEN_ELFNOTE_PHYS32_ENTRY: QEMU's PVH loader jumps to this physical address. */
    .section .note.pvh, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_start32 - KERNEL_VMA
    .balign 4

    .section .text.boot32, "ax", @progbits
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    movl %ebx, %esi                     /* physical address of hvm_start_info */
    movl %cr4, %eax
    orl $0x20, %eax                     /* PAE */
    movl %eax, %cr4
    movl $(boot_pml4 - KERNEL_VMA), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx              /* EFER */
    rdmsr
    orl $0x100, %eax                    /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax               /* PG | WP | PE */
    movl %eax, %cr0
    lgdt (boot_gdt_pointer - KERNEL_VMA)
    ljmp $0x08, $(pvh_start64 - KERNEL_VMA)

    .code64
pvh_start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabs $boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl %esi, %edi                     /* first argument: start info */
    movabs ${pvh_entry}, %rax
    call *%rax
    ud2

    /* Limine enters here in long mode on its own page tables and stack. */
    .section .text._start, "ax", @progbits
    .global _start
_start:
    movabs $boot_stack_top, %rsp
    xorl %ebp, %ebp
    call {limine_entry}
    ud2

    .section .data.boot_page_tables, "aw", @progbits
    .balign 4096
    .global boot_pml4
boot_pml4:
    .quad boot_pdpt_low - KERNEL_VMA + 3
    .fill 255, 8, 0
    .quad boot_pdpt_low - KERNEL_VMA + 3    /* 0xffff800000000000: direct map */
    .fill 254, 8, 0
    .quad boot_pdpt_high - KERNEL_VMA + 3   /* top 512 GiB: the kernel image */
boot_pdpt_low:
    .quad boot_pd - KERNEL_VMA + 3
    .quad boot_pd + 0x1000 - KERNEL_VMA + 3
    .quad boot_pd + 0x2000 - KERNEL_VMA + 3
    .quad boot_pd + 0x3000 - KERNEL_VMA + 3
    .fill 508, 8, 0
boot_pdpt_high:
    .fill 510, 8, 0
    .quad boot_pd - KERNEL_VMA + 3
    .quad boot_pd + 0x1000 - KERNEL_VMA + 3
boot_pd:
    .set boot_pd_index, 0
    .rept 2048
    .quad (boot_pd_index << 21) | 0x83      /* present, writable, 2 MiB */
    .set boot_pd_index, boot_pd_index + 1
    .endr

    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff                /* 0x10: data */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt - KERNEL_VMA

    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip {stack_size}
    .global boot_stack_top
boot_stack_top:

    .section .bss.server_stack, "aw", @nobits
    .balign 4096
    .global server_stack_bottom
server_stack_bottom:
    .skip {server_stack_size}
    .global server_stack_top
server_stack_top:
"#,
    pvh_entry = sym crate::kern::startup::pvh_entry,
    limine_entry = sym crate::kern::startup::limine_entry,
    stack_size = const BOOT_STACK_SIZE,
    server_stack_size = const SERVER_STACK_SIZE,
    options(att_syntax)
);

unsafe extern "C" {
    static boot_stack_bottom: u8;
    static boot_stack_top: u8;
    static server_stack_bottom: u8;
    static server_stack_top: u8;
    static __kernel_start: u8;
    static __kernel_rodata_start: u8;
    static __kernel_data_start: u8;
    static __kernel_end: u8;
}

/// The kernel image's sections, as virtual addresses from the linker script.
#[derive(Clone, Copy, Debug)]
pub struct KernelImage {
    pub start: u64,
    pub rodata: u64,
    pub data: u64,
    pub end: u64,
}

/// Where the linker put the kernel's sections.
pub fn kernel_image() -> KernelImage {
    KernelImage {
        start: &raw const __kernel_start as u64,
        rodata: &raw const __kernel_rodata_start as u64,
        data: &raw const __kernel_data_start as u64,
        end: &raw const __kernel_end as u64,
    }
}

/// The collocated servers' stack's bounds `[bottom, top)` (its lowest page the guard).
pub fn server_stack() -> (u64, u64) {
    (
        &raw const server_stack_bottom as u64,
        &raw const server_stack_top as u64,
    )
}

/// The guard pages of the application processors' kernel stacks, by CPU index (0: none;
/// the boot CPU's is the boot stack's).
static STACK_GUARDS: [core::sync::atomic::AtomicU64; super::percpu::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; super::percpu::MAX_CPUS];

/// Notes that CPU `index`'s kernel stack has its guard page at `guard`.
pub fn note_stack_guard(index: usize, guard: u64) {
    if let Some(slot) = STACK_GUARDS.get(index) {
        slot.store(guard, core::sync::atomic::Ordering::Relaxed);
    }
}

/// The CPU whose kernel stack's guard page holds `address`, if any (0 for the boot stack's).
pub fn stack_guard_owner(address: u64) -> Option<usize> {
    let page = address & !0xfff;
    if page == boot_stack().0 {
        return Some(0);
    }
    STACK_GUARDS
        .iter()
        .position(|g| g.load(core::sync::atomic::Ordering::Relaxed) == page && page != 0)
}

/// The boot stack's bounds `[bottom, top)`.
pub fn boot_stack() -> (u64, u64) {
    (
        &raw const boot_stack_bottom as u64,
        &raw const boot_stack_top as u64,
    )
}

//! Architecture support. The rest of the kernel reaches the machine only through what this
//! file re-exports, grouped by purpose below; everything else in `x86_64` is private to
//! `arch`. A second architecture would provide the same names.

mod x86_64;

/// Paging: page tables, their flags, and loading an address space.
pub mod paging {
    #[cfg(target_os = "none")]
    pub use super::x86_64::paging::{activate, loaded_root};
    pub use super::x86_64::paging::{
        flags, MapError, PageTables, TableMemory, LARGE_PAGE_SIZE, PAGE_SIZE,
    };
}

/// Interrupt controller and timer.
#[cfg(target_os = "none")]
pub mod apic {
    pub use super::x86_64::apic::{
        end_of_interrupt, init, init_application_cpu, initial_apic_id, local_id, send_init,
        send_ipi, send_startup, tsc_hz, HZ,
    };
}

/// CPU features and start-up settings.
#[cfg(target_os = "none")]
pub mod cpu {
    pub use super::x86_64::cpu::{enable_nx, features};
}

/// The kernel image, its stacks, and where the boot entries put the direct map.
#[cfg(target_os = "none")]
pub mod entry {
    pub use super::x86_64::entry::{
        boot_stack, kernel_image, note_stack_guard, server_stack, PVH_DIRECT_MAP_BASE,
    };
}

/// Segments: the user selectors a new thread's frame holds.
#[cfg(target_os = "none")]
pub mod gdt {
    pub use super::x86_64::gdt::{
        init_application_cpu, init_boot_cpu, new_application_cpu, CpuTables, USER_CODE, USER_DATA,
    };
}

/// The interrupt table.
#[cfg(target_os = "none")]
pub mod idt {
    pub use super::x86_64::idt::{init, load};
}

/// Each CPU's own state: its index, its breakpoint count; the kernel's clock; the CPUs
/// online.
#[cfg(target_os = "none")]
pub mod percpu {
    pub use super::x86_64::percpu::{
        cpu, current, index, init_application_cpu, init_boot_cpu, new_application_cpu, online,
        set_thread, thread, ticks, PerCpu, MAX_CPUS,
    };
}

/// Starting the application processors.
#[cfg(target_os = "none")]
pub mod smp {
    pub use super::x86_64::smp::{
        boot_tables, install_trampoline, limine_ap_entry, prepare, started, TRAMPOLINE,
    };
}

/// Other CPUs' translations and threads: shootdowns and stopping a CPU's user thread.
#[cfg(target_os = "none")]
pub mod tlb {
    pub use super::x86_64::tlb::{
        flush_kernel_page, flush_page, flush_shared_page, flush_space, init, leave_space,
        requests_sent, serve, stop, CROSS_CALL_VECTOR,
    };
}

/// Running code that may fault, and leaving it when it does (collocated servers).
#[cfg(target_os = "none")]
pub mod recover {
    pub use super::x86_64::recover::{abandon, call, Abandoned, Point};
}

/// The serial console.
#[cfg(target_os = "none")]
pub mod serial {
    pub use super::x86_64::serial::{init, read_byte, write_bytes};
}

/// The `syscall` instruction's entry.
#[cfg(target_os = "none")]
pub mod syscall {
    pub use super::x86_64::syscall::init;
}

/// Saved registers, returning to user mode, and what a trap was.
#[cfg(target_os = "none")]
pub mod trap {
    pub use super::x86_64::trap::{
        describe_exception, exception_name, is_spurious, is_timer, read_cr2, return_from_syscall,
        return_to_user, running_frame, TrapFrame, DEVICE_VECTOR, SYSCALL_VECTOR,
    };
}

#[cfg(target_os = "none")]
pub use self::x86_64::{exit_qemu, halt_forever, poll_for_interrupt, rdtsc, wait_for_interrupt};

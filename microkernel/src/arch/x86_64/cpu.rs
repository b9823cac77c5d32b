//! CPU identification, model-specific registers, and stopping the machine.

use core::arch::asm;
use libipc::abi::report::{ExitCode, DEBUG_EXIT_PORT};
use x86_64::instructions::port::Port;

pub const IA32_EFER: u32 = 0xc000_0080;
pub const IA32_GS_BASE: u32 = 0xc000_0101;
pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const IA32_APIC_BASE: u32 = 0x1b;

/// `cpuid` leaf `leaf`, subleaf 0: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    // cpuid exists on every x86_64 CPU and has no side effects.
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Features the kernel cares about.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub x2apic: bool,
    pub nx: bool,
    pub pdpe1gb: bool,
    pub invariant_tsc: bool,
}

pub fn features() -> Features {
    let (_, _, ecx1, _) = cpuid(1);
    let (max_ext, ..) = cpuid(0x8000_0000);
    let (_, _, _, edx_ext1) = if max_ext >= 0x8000_0001 {
        cpuid(0x8000_0001)
    } else {
        (0, 0, 0, 0)
    };
    let (_, _, _, edx_ext7) = if max_ext >= 0x8000_0007 {
        cpuid(0x8000_0007)
    } else {
        (0, 0, 0, 0)
    };
    Features {
        x2apic: ecx1 & (1 << 21) != 0,
        nx: edx_ext1 & (1 << 20) != 0,
        pdpe1gb: edx_ext1 & (1 << 26) != 0,
        invariant_tsc: edx_ext7 & (1 << 8) != 0,
    }
}

/// # Safety
/// `msr` must exist on this CPU; reading some MSRs has side effects.
pub unsafe fn read_msr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller vouches for the MSR.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// # Safety
/// `msr` must exist and `value` must keep the machine in a state the kernel expects.
pub unsafe fn write_msr(msr: u32, value: u64) {
    // SAFETY: the caller vouches for the MSR and the value.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack))
    };
}

/// The time-stamp counter. Under QEMU `-icount shift=0` it counts guest instructions.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects; CR4.TSD is clear.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Turns on no-execute page protection if the CPU has it.
pub fn enable_nx(features: &Features) {
    if features.nx {
        // SAFETY: EFER exists on every x86_64 CPU; setting NXE only makes bit 63 of page-table
        // entries meaningful, and the kernel's entries set it only on purpose.
        unsafe { write_msr(IA32_EFER, read_msr(IA32_EFER) | (1 << 11)) };
    }
}

/// Enables interrupts and halts until the next one, atomically (`sti; hlt`).
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

/// Enables interrupts for one spin-loop hint, so that a pending one is taken (`sti` holds
/// interrupts off for one more instruction, the `pause`); the caller disables them again.
pub fn poll_for_interrupt() {
    x86_64::instructions::interrupts::enable();
    core::hint::spin_loop();
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Ends the machine with `code` through QEMU's `isa-debug-exit`; halts if there is none.
pub fn exit_qemu(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device the image tool always attaches; on a
    // machine without it the write is ignored and the CPU halts below.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(code as u32) };
    halt_forever()
}

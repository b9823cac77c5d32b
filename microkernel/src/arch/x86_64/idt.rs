//! The interrupt descriptor table: every vector goes to its stub in `trap`.

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI, KERNEL_CODE};

/// One 16-byte gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

const INTERRUPT_GATE: u8 = 0x8e; // present, DPL 0, 64-bit interrupt gate
const EMPTY: Gate = Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    attributes: 0,
    offset_middle: 0,
    offset_high: 0,
    reserved: 0,
};

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([EMPTY; 256]);

/// Fills the IDT with the trap stubs and loads it on the boot CPU (the others [`load`] it).
/// Vectors 2 (NMI), 8 (double fault) and 18 (machine check) run on their own stacks.
pub fn init() {
    let idt = &raw mut IDT;
    // SAFETY: runs once on the boot CPU with interrupts disabled, before any other CPU
    // starts; nobody else references IDT. Each gate points at a stub in `trap`, all of which
    // follow the interrupt calling convention.
    unsafe {
        for vector in 0..256 {
            let handler = super::trap::stub_address(vector as u8);
            let ist = match vector {
                2 => IST_NMI,
                8 => IST_DOUBLE_FAULT,
                18 => IST_MACHINE_CHECK,
                _ => 0,
            };
            (*idt).0[vector] = Gate {
                offset_low: handler as u16,
                selector: KERNEL_CODE,
                ist: ist as u8,
                attributes: INTERRUPT_GATE,
                offset_middle: (handler >> 16) as u16,
                offset_high: (handler >> 32) as u32,
                reserved: 0,
            };
        }
    }
    load();
}

/// Loads the IDT (filled by `init` on the boot CPU) on this CPU.
pub fn load() {
    let idt = &raw const IDT;
    let pointer = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::new(idt as u64),
    };
    // SAFETY: the table is filled (by `init`, before any other CPU starts) and lives forever.
    unsafe { x86_64::instructions::tables::lidt(&pointer) };
}

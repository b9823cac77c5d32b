//! The global descriptor table and task-state segment, with the interrupt stacks that let
//! double faults, NMIs and machine checks run even on a broken kernel stack.
//!
//! Segment order fits `syscall`/`sysret` (STAR): kernel code, kernel data, user data, user code.

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};

/// IST slots (1-based in the IDT, 0-based in the TSS array).
pub const IST_DOUBLE_FAULT: u16 = 1;
pub const IST_NMI: u16 = 2;
pub const IST_MACHINE_CHECK: u16 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;

pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
pub const USER_DATA: u16 = 0x18 | 3;
pub const USER_CODE: u16 = 0x20 | 3;
pub const TSS: u16 = 0x28;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

/// A CPU's GDT and interrupt stacks (its TSS is in its per-CPU area). The boot CPU's are a
/// static; the application processors' are leaked boxes.
pub struct CpuTables {
    gdt: GlobalDescriptorTable<8>,
    ist: [Stack; 3],
}

static mut BOOT_CPU_TABLES: CpuTables = CpuTables {
    gdt: GlobalDescriptorTable::empty(),
    ist: [
        Stack([0; IST_STACK_SIZE]),
        Stack([0; IST_STACK_SIZE]),
        Stack([0; IST_STACK_SIZE]),
    ],
};

/// Builds and loads the boot CPU's GDT and TSS (the TSS in its per-CPU area, which must be
/// installed).
pub fn init_boot_cpu() {
    // SAFETY: runs once on the boot CPU before interrupts are enabled; nothing else holds a
    // reference into BOOT_CPU_TABLES.
    unsafe { load(&raw mut BOOT_CPU_TABLES, super::percpu::current_area()) }
}

/// Tables for an application processor, loaded by [`init_application_cpu`] on it; `None`
/// without memory for them.
pub fn new_application_cpu() -> Option<*mut CpuTables> {
    let layout = core::alloc::Layout::new::<CpuTables>();
    // SAFETY: `CpuTables` has a non-zero size. Zero bytes are valid interrupt stacks; the GDT
    // is written whole before use. The block is never freed (the CPU uses it for good).
    unsafe {
        let tables = alloc::alloc::alloc_zeroed(layout) as *mut CpuTables;
        if tables.is_null() {
            return None;
        }
        (&raw mut (*tables).gdt).write(GlobalDescriptorTable::empty());
        Some(tables)
    }
}

/// Loads `tables` (from [`new_application_cpu`]) on the application processor running this.
///
/// # Safety
/// Runs once, on the CPU the tables were made for, after its per-CPU area is installed and
/// before it enables interrupts.
pub unsafe fn init_application_cpu(tables: *mut CpuTables) {
    // SAFETY: per the contract.
    unsafe { load(tables, super::percpu::current_area()) }
}

/// # Safety
/// `tables` and `area` belong to the running CPU, are never freed, and are not in use yet.
unsafe fn load(tables: *mut CpuTables, area: *mut super::percpu::PerCpu) {
    // SAFETY: per the contract; after this function the GDT and TSS are read only by the CPU
    // (and the TSS's `rsp0` written by `percpu::set_frame_end`), so the 'static shared
    // reference to the GDT is sound; the TSS is named by pointer.
    unsafe {
        let ist = &raw const (*tables).ist;
        for (slot, stack) in (*ist).iter().enumerate() {
            let top = stack.0.as_ptr() as u64 + IST_STACK_SIZE as u64;
            super::percpu::set_interrupt_stack_table(area, slot, top);
        }
        let tss = super::percpu::tss_of(area);
        let gdt: &'static mut GlobalDescriptorTable<8> = &mut (*tables).gdt;
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        let tss_selector = gdt.append(Descriptor::tss_segment_unchecked(tss));
        debug_assert_eq!(
            (code.0, data.0, user_data.0, user_code.0, tss_selector.0),
            (KERNEL_CODE, KERNEL_DATA, USER_DATA, USER_CODE, TSS)
        );
        let gdt: &'static GlobalDescriptorTable<8> = gdt;
        gdt.load();
        CS::set_reg(SegmentSelector(KERNEL_CODE));
        SS::set_reg(SegmentSelector(KERNEL_DATA));
        DS::set_reg(SegmentSelector(KERNEL_DATA));
        ES::set_reg(SegmentSelector(KERNEL_DATA));
        load_tss(SegmentSelector(TSS));
    }
}

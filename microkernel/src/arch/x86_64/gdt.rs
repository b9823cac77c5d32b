//! The global descriptor table and task-state segment, with the interrupt stacks that let
//! double faults, NMIs and machine checks run even on a broken kernel stack.
//!
//! Segment order fits `syscall`/`sysret` (STAR): kernel code, kernel data, user data, user code.

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

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

/// The boot CPU's tables and interrupt stacks. Other CPUs will get theirs from the heap.
struct CpuTables {
    gdt: GlobalDescriptorTable<8>,
    tss: TaskStateSegment,
    ist: [Stack; 3],
}

static mut BOOT_CPU_TABLES: CpuTables = CpuTables {
    gdt: GlobalDescriptorTable::empty(),
    tss: TaskStateSegment::new(),
    ist: [
        Stack([0; IST_STACK_SIZE]),
        Stack([0; IST_STACK_SIZE]),
        Stack([0; IST_STACK_SIZE]),
    ],
};

/// Builds and loads the boot CPU's GDT and TSS; `kernel_stack_top` is where the CPU switches
/// to on an interrupt from user mode.
pub fn init_boot_cpu(kernel_stack_top: u64) {
    let tables = &raw mut BOOT_CPU_TABLES;
    // SAFETY: runs once on the boot CPU before interrupts are enabled; nothing else holds a
    // reference into BOOT_CPU_TABLES, and after this function the GDT and TSS are only read
    // by the CPU, so handing out 'static shared references is sound.
    unsafe {
        let tss = &raw mut (*tables).tss;
        let ist = &raw const (*tables).ist;
        for (slot, stack) in (*ist).iter().enumerate() {
            let top = stack.0.as_ptr() as u64 + IST_STACK_SIZE as u64;
            (*tss).interrupt_stack_table[slot] = VirtAddr::new(top);
        }
        (*tss).privilege_stack_table[0] = VirtAddr::new(kernel_stack_top);
        let tss: &'static TaskStateSegment = &*tss;
        let gdt: &'static mut GlobalDescriptorTable<8> = &mut (*tables).gdt;
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        let tss_selector = gdt.append(Descriptor::tss_segment(tss));
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

/// Where the CPU pushes the interrupt frame on an interrupt or exception from user mode: the
/// end of the running thread's saved-register frame, so the registers land in the thread.
pub fn set_interrupt_stack(top: u64) {
    let tables = &raw mut BOOT_CPU_TABLES;
    // `top` is the top of a kernel stack or of a thread's frame, a kernel address: canonical.
    // SAFETY: the TSS is read by the CPU only on privilege changes, which cannot happen while
    // the kernel runs (interrupts are off in kernel code); a u64 store is atomic anyway.
    unsafe { (*tables).tss.privilege_stack_table[0] = VirtAddr::new_unsafe(top) };
}

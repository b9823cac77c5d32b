//! Per-CPU state, reached through the GS base: each CPU's own area (its kernel stack, the
//! running thread's frame, its task-state segment, the page tables it has loaded) and the
//! mailbox through which the CPU holding the kernel lock asks the others to flush
//! translations or leave user mode ([`crate::arch::x86_64::tlb`]).

use super::cpu::{write_msr, IA32_GS_BASE, IA32_KERNEL_GS_BASE};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use x86_64::structures::tss::TaskStateSegment;

/// The most CPUs the kernel runs on; more are left halted (and reported).
pub const MAX_CPUS: usize = 16;

/// One CPU's private data. `repr(C)` because assembly (the syscall and trap entries) reads the
/// first fields at fixed offsets from GS.
#[repr(C)]
pub struct PerCpu {
    /// Points at this structure: `gs:[0]`.
    self_pointer: *const PerCpu,
    /// Top of this CPU's kernel stack: `gs:[8]`.
    kernel_stack_top: u64,
    /// The user stack pointer during the syscall entry: `gs:[16]`.
    user_rsp: u64,
    /// This CPU's task-state segment, at `gs:[24]`: its `rsp0` (`gs:[28]`) is the end of the
    /// running thread's saved-register frame, below which an interrupt from user mode pushes
    /// and the syscall entry stores the user registers, straight into the thread.
    tss: TaskStateSegment,
    /// The thread this CPU runs, as the scheduler packs it (0: none). Read and written by
    /// this CPU through GS in one instruction ([`thread`], [`set_thread`]); another CPU
    /// clears it only while it holds the kernel lock and this CPU waits for it.
    thread: AtomicU64,
    /// Index of the CPU (0 is the boot CPU).
    index: u32,
    /// Local APIC id.
    apic_id: u32,
    /// Breakpoint exceptions taken (kernel self-test of the trap return path).
    breakpoints: AtomicU64,
    /// The page-table root this CPU has loaded: the address space whose translations its
    /// TLB may hold (no PCIDs, so loading another root drops them).
    pub(super) loaded_root: AtomicU64,
    /// The mailbox: the number of the last request posted to this CPU ...
    pub(super) request: AtomicU64,
    /// ... what it asks (a `tlb::Request` as a word) and its root and address ...
    pub(super) request_kind: AtomicU64,
    pub(super) request_root: AtomicU64,
    pub(super) request_address: AtomicU64,
    /// ... the number of the last one this CPU carried out ...
    pub(super) acked: AtomicU64,
    /// ... and whether, when it did, it had entered the kernel through a system call that
    /// has not run (its thread taken away meanwhile must make the call again).
    pub(super) acked_in_syscall: AtomicBool,
    /// Halted in the idle loop with nothing to run: a thread made ready wakes it.
    pub(super) idle: AtomicBool,
}

// The entry code in `syscall` and `trap` uses these offsets.
const _: () = assert!(core::mem::offset_of!(PerCpu, self_pointer) == 0);
const _: () = assert!(core::mem::offset_of!(PerCpu, kernel_stack_top) == 8);
const _: () = assert!(core::mem::offset_of!(PerCpu, user_rsp) == 16);
const _: () = assert!(core::mem::offset_of!(PerCpu, tss) == TSS_OFFSET);
const _: () = assert!(core::mem::offset_of!(TaskStateSegment, privilege_stack_table) == 4);
/// Where the task-state segment is in the area; its `rsp0` is 4 bytes in.
const TSS_OFFSET: usize = 24;

// SAFETY: a PerCpu's plain fields are written only by its own CPU (through GS, with
// interrupts disabled) or before the CPU starts; what other CPUs touch is atomic.
unsafe impl Sync for PerCpu {}

impl PerCpu {
    const fn new(index: u32) -> PerCpu {
        PerCpu {
            self_pointer: core::ptr::null(),
            kernel_stack_top: 0,
            user_rsp: 0,
            tss: TaskStateSegment::new(),
            thread: AtomicU64::new(0),
            index,
            apic_id: 0,
            breakpoints: AtomicU64::new(0),
            loaded_root: AtomicU64::new(0),
            request: AtomicU64::new(0),
            request_kind: AtomicU64::new(0),
            request_root: AtomicU64::new(0),
            request_address: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            acked_in_syscall: AtomicBool::new(false),
            idle: AtomicBool::new(false),
        }
    }
}

static mut BOOT_CPU: PerCpu = PerCpu::new(0);

/// Every started CPU's area, by index; null past the last.
static CPUS: [AtomicPtr<PerCpu>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
/// CPUs started (and so in `CPUS`); the boot CPU counts from the start.
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Timer ticks since start-up: the boot CPU's, the kernel's clock.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Sets up the boot CPU's area and points GS at it.
pub fn init_boot_cpu(kernel_stack_top: u64, apic_id: u32) {
    let area = &raw mut BOOT_CPU;
    // SAFETY: called once, on the boot CPU, before anything reads the area; the writes go
    // through a raw pointer so no reference to the static outlives this block.
    unsafe { install(area, kernel_stack_top, apic_id) };
}

/// Makes a new area for the application processor `index` (not yet started), its kernel
/// stack's top `kernel_stack_top`; it is installed by [`init_application_cpu`] on that CPU.
pub fn new_application_cpu(index: u32, apic_id: u32, kernel_stack_top: u64) -> *mut PerCpu {
    let area = alloc::boxed::Box::leak(alloc::boxed::Box::new(PerCpu::new(index)));
    area.apic_id = apic_id;
    area.kernel_stack_top = kernel_stack_top;
    area
}

/// Points this CPU's GS at `area` (from [`new_application_cpu`]) and counts it online.
///
/// # Safety
/// `area` comes from `new_application_cpu`, and this runs once, on the CPU it was made for,
/// with interrupts disabled.
pub unsafe fn init_application_cpu(area: *mut PerCpu) {
    // SAFETY: per the contract; nothing else writes the area's plain fields.
    unsafe {
        let (stack, apic_id) = ((*area).kernel_stack_top, (*area).apic_id);
        install(area, stack, apic_id)
    };
}

/// # Safety
/// `area` is a live area this CPU alone will use, not yet installed.
unsafe fn install(area: *mut PerCpu, kernel_stack_top: u64, apic_id: u32) {
    // SAFETY: per the contract.
    unsafe {
        (*area).self_pointer = area;
        (*area).kernel_stack_top = kernel_stack_top;
        (*area).apic_id = apic_id;
        (*area).tss.privilege_stack_table[0] = x86_64::VirtAddr::new(kernel_stack_top);
        (*area)
            .loaded_root
            .store(super::paging::loaded_root(), Ordering::Relaxed);
        write_msr(IA32_GS_BASE, area as u64);
        write_msr(IA32_KERNEL_GS_BASE, 0);
        let index = (*area).index as usize;
        CPUS[index].store(area, Ordering::Release);
        ONLINE.fetch_max(index + 1, Ordering::AcqRel);
    }
}

/// The task-state segment of the area `area` (for its GDT's descriptor).
pub fn tss_of(area: *const PerCpu) -> *const TaskStateSegment {
    // SAFETY: only the field's address is taken, of a live area.
    unsafe { &raw const (*area).tss }
}

/// Sets an interrupt-stack-table slot of `area`'s task-state segment, before it is loaded.
///
/// # Safety
/// `area`'s TSS is not loaded by any CPU yet.
pub unsafe fn set_interrupt_stack_table(area: *mut PerCpu, slot: usize, top: u64) {
    // SAFETY: per the contract, nothing reads the TSS yet.
    unsafe { (*area).tss.interrupt_stack_table[slot] = x86_64::VirtAddr::new(top) };
}

/// The area of the CPU running this code, as a raw pointer (for set-up).
pub fn current_area() -> *mut PerCpu {
    current() as *const PerCpu as *mut PerCpu
}

/// Makes the saved-register frame ending at `frame_end` the one this CPU's user-mode entries
/// fill (the TSS's `rsp0`, which interrupts and exceptions push below and the syscall entry
/// reads).
#[inline(always)]
pub fn set_frame_end(frame_end: u64) {
    // Only this CPU writes its TSS, with interrupts disabled; the CPU reads `rsp0` only on a
    // privilege change, which cannot happen in kernel code. `frame_end` is the top of a
    // thread's frame, a kernel address: canonical.
    // SAFETY: GS base points at this CPU's initialised PerCpu (see `current`), whose TSS
    // `rsp0` is at offset 28 (`TSS_OFFSET` + 4, asserted above).
    unsafe {
        core::arch::asm!(
            "mov gs:[28], {0}",
            in(reg) frame_end,
            options(nostack, preserves_flags)
        )
    };
}

/// The end of the running thread's saved-register frame ([`set_frame_end`]).
#[inline(always)]
pub fn frame_end() -> u64 {
    let frame_end: u64;
    // SAFETY: as in `set_frame_end`; `rsp0` is at offset 28, an unaligned word (the TSS is
    // packed), which `mov` reads as any.
    unsafe {
        core::arch::asm!("mov {}, gs:[28]", out(reg) frame_end, options(nostack, readonly, preserves_flags));
    }
    frame_end
}

/// This CPU's area.
#[inline(always)]
pub fn current() -> &'static PerCpu {
    let pointer: *const PerCpu;
    // SAFETY: GS base points at an initialised PerCpu from `init_boot_cpu` on (the kernel
    // never runs with a user GS base); its first field is the pointer to itself.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) pointer, options(nostack, pure, readonly, preserves_flags));
        &*pointer
    }
}

/// This CPU's index (0 is the boot CPU), in one load.
#[inline(always)]
pub fn index() -> usize {
    let index: u32;
    // SAFETY: as in `current`; `index` is at the offset asserted below.
    unsafe {
        core::arch::asm!("mov {:e}, gs:[{offset}]", out(reg) index, offset = const INDEX_OFFSET, options(nostack, pure, readonly, preserves_flags));
    }
    index as usize
}
const INDEX_OFFSET: usize = core::mem::offset_of!(PerCpu, index);

/// Notes that this CPU has loaded the tables at `root` (for shootdowns).
#[inline(always)]
pub fn note_loaded_root(root: u64) {
    // SAFETY: as in `current`; `loaded_root` is at the offset given, an aligned word (so the
    // store is as atomic as the field's other accesses).
    unsafe {
        core::arch::asm!("mov gs:[{offset}], {}", in(reg) root, offset = const LOADED_ROOT_OFFSET, options(nostack, nomem, preserves_flags));
    }
}
const LOADED_ROOT_OFFSET: usize = core::mem::offset_of!(PerCpu, loaded_root);

/// The thread this CPU runs, as the scheduler packed it (0: none).
#[inline(always)]
pub fn thread() -> u64 {
    let thread: u64;
    // SAFETY: as in `current`; `thread` is at the offset given, an aligned word.
    unsafe {
        core::arch::asm!("mov {}, gs:[{offset}]", out(reg) thread, offset = const THREAD_OFFSET, options(nostack, pure, readonly, preserves_flags));
    }
    thread
}

/// Sets the thread this CPU runs (0: none).
#[inline(always)]
pub fn set_thread(thread: u64) {
    // Not `nomem`: `thread` is `pure` (its reads may be merged while memory is unchanged),
    // so this store must count as a change to memory.
    // SAFETY: as in `thread`.
    unsafe {
        core::arch::asm!("mov gs:[{offset}], {}", in(reg) thread, offset = const THREAD_OFFSET, options(nostack, preserves_flags));
    }
}
const THREAD_OFFSET: usize = core::mem::offset_of!(PerCpu, thread);
const _: () = assert!(THREAD_OFFSET.is_multiple_of(8) && LOADED_ROOT_OFFSET.is_multiple_of(8));

/// CPUs started so far (at least 1, the boot CPU).
#[inline(always)]
pub fn online() -> usize {
    ONLINE.load(Ordering::Relaxed)
}

/// The area of CPU `index`, if it has started.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    let area = CPUS.get(index)?.load(Ordering::Acquire);
    // SAFETY: areas in `CPUS` are installed and never freed (the boot CPU's is a static,
    // the others are leaked boxes).
    (!area.is_null()).then(|| unsafe { &*area })
}

/// Ticks of the kernel's clock (the boot CPU's timer) since start-up.
#[inline(always)]
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
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
    /// A timer interrupt on this CPU: the boot CPU's moves the clock on.
    pub fn tick(&self) {
        if self.index == 0 {
            TICKS.fetch_add(1, Ordering::Relaxed);
        }
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
    /// The thread this CPU runs (0: none).
    pub fn running(&self) -> u64 {
        self.thread.load(Ordering::Relaxed)
    }
    /// Takes the thread from this CPU (the caller holds the kernel lock and stops the CPU).
    pub fn clear_running(&self) {
        self.thread.store(0, Ordering::Relaxed);
    }
    /// Marks this CPU idle (about to halt, holding the kernel lock until just before) or not.
    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }
    /// Takes the CPU's idle mark: true if it was idle (and so wants waking, once).
    pub fn take_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed) && self.idle.swap(false, Ordering::AcqRel)
    }
}

//! The processors: starting the application processors (those ACPI's MADT lists on the PVH
//! path, Limine's MP response under Limine), each one's way into the scheduler, and waking
//! an idle one when a thread becomes ready.
//!
//! Every CPU runs the same dispatcher (`sched::run`) under the one kernel lock; what is its
//! own is in its per-CPU area (`arch::percpu`) and its slot of the scheduler's running
//! threads. The state here is only the count of CPUs started; the rest lives in `arch`.

use crate::arch::{self, apic, percpu};
use crate::boot::{BootInfo, BootPath};
use crate::vm::kernel_space;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes of an application processor's kernel stack.
const STACK_SIZE: usize = 64 * 1024;

/// What an application processor sets itself up with (leaked: CPUs never stop).
struct Start {
    area: *mut percpu::PerCpu,
    tables: *mut arch::gdt::CpuTables,
}

/// Starts the application processors, at most `limit` CPUs in all; returns the CPUs online.
/// A processor that does not answer is reported and left alone, and no more are started.
pub fn start_application_processors(boot: &BootInfo, limit: usize) -> usize {
    let limit = limit.clamp(1, percpu::MAX_CPUS);
    let me = apic::local_id();
    let kernel_root = kernel_space::kernel_root();
    let efer_nx = if arch::cpu::features().nx { 1 << 11 } else { 0 };
    match boot.path() {
        BootPath::Limine => start_limine(me, limit, kernel_root, efer_nx),
        BootPath::Pvh => start_pvh(boot, me, limit, kernel_root, efer_nx),
    }
    let online = percpu::online();
    if online > 1 {
        log::info!("smp: {online} CPUs online");
    }
    online
}

fn start_pvh(boot: &BootInfo, me: u32, limit: usize, kernel_root: u64, efer_nx: u32) {
    let processors = match crate::device::processors::<{ percpu::MAX_CPUS }>(boot.rsdp()) {
        Ok(p) => p,
        Err(e) => {
            log::info!("smp: no processor table ({e:?}): one CPU");
            return;
        }
    };
    if processors.dropped > 0 {
        log::warn!(
            "smp: {} processors past the first {} left halted",
            processors.dropped,
            percpu::MAX_CPUS
        );
    }
    let others = processors.apic_ids[..processors.count]
        .iter()
        .copied()
        .filter(|&id| id != me);
    if processors.count <= 1 || limit <= 1 {
        return;
    }
    let image = arch::entry::kernel_image();
    let boot_root = boot.kernel_phys() + (arch::smp::boot_tables() - image.start);
    // SAFETY: the trampoline's page is in the first MiB, which the frame allocator never
    // hands out; the direct map covers it; nothing else uses it.
    unsafe {
        arch::smp::install_trampoline(
            kernel_space::phys_to_virt(arch::smp::TRAMPOLINE) as *mut u8,
            boot_root,
            0x100 | efer_nx,
        )
    };
    for apic_id in others {
        let index = percpu::online();
        if index >= limit {
            break;
        }
        if !prepare(index, apic_id, kernel_root, efer_nx) {
            break;
        }
        apic::send_init(apic_id);
        wait_us(10_000);
        let page = (arch::smp::TRAMPOLINE >> 12) as u8;
        apic::send_startup(apic_id, page);
        if !wait_for(200, arch::smp::started) {
            apic::send_startup(apic_id, page);
        }
        if !wait_for_online(index) {
            log::warn!("smp: the processor with APIC id {apic_id} did not start");
            break;
        }
    }
}

fn start_limine(me: u32, limit: usize, kernel_root: u64, efer_nx: u32) {
    let Some(response) = crate::boot::limine::requests::MP.get_response() else {
        return;
    };
    let cpus = crate::boot::limine::application_processors(
        response.cpus().iter(),
        |cpu| cpu.lapic_id,
        me,
        limit,
    );
    for cpu in cpus {
        let index = percpu::online();
        if !prepare(index, cpu.lapic_id, kernel_root, efer_nx) {
            break;
        }
        cpu.goto_address.write(arch::smp::limine_ap_entry);
        if !wait_for_online(index) {
            log::warn!(
                "smp: the processor with APIC id {} did not start",
                cpu.lapic_id
            );
            break;
        }
    }
}

/// Makes CPU `index`'s stack, per-CPU area and tables and sets the start-up arguments;
/// false without memory for them.
fn prepare(index: usize, apic_id: u32, kernel_root: u64, efer_nx: u32) -> bool {
    // Pages of the kernel map with an unmapped one below: an overflow faults (a double
    // fault, on the CPU's own interrupt stack, reported) instead of running into whatever
    // lies below.
    let Some(stack) = crate::vm::kernel_map::allocate_guarded(STACK_SIZE / 4096) else {
        log::warn!("smp: no memory for CPU {index}'s stack");
        return false;
    };
    let bottom = stack.as_ptr() as u64;
    arch::entry::note_stack_guard(index, bottom - 4096);
    let top = bottom + STACK_SIZE as u64;
    let Some(tables) = arch::gdt::new_application_cpu() else {
        log::warn!("smp: no memory for CPU {index}'s tables");
        return false;
    };
    let area = percpu::new_application_cpu(index as u32, apic_id, top);
    let start = Box::leak(Box::new(Start { area, tables }));
    arch::smp::prepare(
        kernel_root,
        efer_nx,
        top,
        application_processor_entry,
        start as *mut Start as u64,
    );
    true
}

/// Waits `us` microseconds by the time-stamp counter (a fixed spin if it was not measured).
fn wait_us(us: u64) {
    let hz = apic::tsc_hz();
    let cycles = if hz == 0 {
        us * 1000
    } else {
        hz / 1_000_000 * us
    };
    let end = arch::rdtsc() + cycles;
    while arch::rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// Waits up to `us` microseconds for `done`; whether it came.
fn wait_for(us: u64, done: impl Fn() -> bool) -> bool {
    for _ in 0..us.div_ceil(10) {
        if done() {
            return true;
        }
        wait_us(10);
    }
    done()
}

/// Waits up to a second for CPU `index` to come online.
fn wait_for_online(index: usize) -> bool {
    wait_for(1_000_000, || percpu::online() > index)
}

/// Where an application processor enters the kernel, on its own stack and the kernel's
/// tables: it sets itself up and joins the scheduler.
extern "C" fn application_processor_entry(argument: u64) -> ! {
    // SAFETY: `argument` is the leaked `Start` that `prepare` made for this CPU.
    let start = unsafe { &*(argument as *const Start) };
    // SAFETY: the area and tables were made for this CPU, which runs this once with
    // interrupts disabled; the area goes first (the tables put its TSS in the GDT).
    unsafe {
        percpu::init_application_cpu(start.area);
        arch::gdt::init_application_cpu(start.tables);
    }
    arch::idt::load();
    // SAFETY: as on the boot CPU (`startup`): CR4.PGE makes the kernel's global mappings
    // global; SSE stays off (the kernel and its collocated servers use none).
    unsafe {
        use x86_64::registers::control::{Cr4, Cr4Flags};
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
    }
    arch::syscall::init();
    let apic_id = apic::init_application_cpu();
    log::debug!(
        "smp: CPU {} (APIC id {apic_id}) online",
        percpu::current().index()
    );
    if percpu::current().index() == 1 && OVERFLOW_FIRST_AP.load(Ordering::Relaxed) {
        log::warn!("crash=ap_stack_overflow: CPU 1 overflows its stack on purpose");
        super::startup::overflow_the_stack();
    }
    let guard = super::entry::lock_kernel(false, true);
    super::sched::run(guard)
}

/// `crash=ap_stack_overflow`: the first application processor runs into its stack's guard
/// page once it is set up.
static OVERFLOW_FIRST_AP: AtomicBool = AtomicBool::new(false);

/// Makes the first application processor overflow its stack when it starts.
pub fn overflow_the_first_ap_stack() {
    OVERFLOW_FIRST_AP.store(true, Ordering::Relaxed);
}

/// Wakes one idle CPU other than this one, if there is one: a thread has become ready.
#[inline]
pub fn wake_an_idle_cpu() {
    let me = percpu::index();
    let _ = (0..percpu::online()).any(|index| index != me && wake_if_idle(index));
}

/// Wakes CPU `index` if it is halted idle (once: its mark is taken); whether it was.
pub fn wake_if_idle(index: usize) -> bool {
    let Some(cpu) = percpu::cpu(index).filter(|cpu| cpu.take_idle()) else {
        return false;
    };
    apic::send_ipi(cpu.apic_id(), arch::tlb::CROSS_CALL_VECTOR);
    true
}

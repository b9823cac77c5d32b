//! Kernel start-up: from either boot path to a running kernel, then whatever the command line
//! chose to run.

use crate::arch::{self, apic, cpu, entry, gdt, idt, percpu, serial, syscall};
use crate::boot::cmdline::{self, Crash};
use crate::boot::pvh::{self, PhysicalMemory};
use crate::boot::{limine, BootInfo, MemoryKind};
use crate::kern::kernel::{Kernel, KERNEL};
use crate::kern::{console, ktest, sched};
use crate::kprintln;
use crate::vm::kernel_space::{self, phys_to_virt};
use alloc::string::String;
use libipc::abi::archive::Archive;
use libipc::abi::report::ExitCode;

/// Physical memory through the PVH boot tables' direct map (the first 4 GiB).
struct BootDirectMap;

impl PhysicalMemory for BootDirectMap {
    fn read(&self, phys: u64, buf: &mut [u8]) -> bool {
        let Some(end) = phys.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > 1 << 32 {
            return false;
        }
        // SAFETY: the PVH boot tables map physical [0, 4 GiB) at PVH_DIRECT_MAP_BASE, checked
        // above; reading RAM or ROM there has no side effects.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (entry::PVH_DIRECT_MAP_BASE + phys) as *const u8,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        true
    }
}

/// Entered from the PVH stub on the boot stack, with the start info's physical address.
pub extern "C" fn pvh_entry(start_info: u32) -> ! {
    serial::init();
    let image = entry::kernel_image();
    const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
    let kernel = (image.start - KERNEL_VMA, image.end - KERNEL_VMA);
    match pvh::read_start_info(
        &BootDirectMap,
        u64::from(start_info),
        kernel,
        entry::PVH_DIRECT_MAP_BASE,
    ) {
        Ok(info) => kernel_main(info),
        Err(e) => panic!("PVH boot: {e}"),
    }
}

/// Entered from Limine's `_start` on the boot stack.
pub extern "C" fn limine_entry() -> ! {
    serial::init();
    match limine::requests::collect() {
        Ok(info) => kernel_main(info),
        Err(e) => panic!("Limine boot: {e}"),
    }
}

const MIB: u64 = 1024 * 1024;

fn kernel_main(mut boot: BootInfo) -> ! {
    let line = boot.cmdline();
    // The command line is copied out of `boot` so `boot` can be changed by `mem=`.
    let mut line_copy = [0u8; crate::boot::MAX_CMDLINE];
    line_copy[..line.len()].copy_from_slice(line.as_bytes());
    let line = core::str::from_utf8(&line_copy[..line.len()]).unwrap_or("");
    let options = cmdline::parse(line);
    console::init_logging(options.log_level());

    kprintln!(
        "microkernel v{} (boot: {}) loader \"{}\" cmdline \"{}\"",
        env!("CARGO_PKG_VERSION"),
        boot.path(),
        boot.loader(),
        line
    );
    if let Some(length) = boot.cmdline_cut() {
        log::warn!(
            "command line: {length} bytes or more, longer than {}: only its whole words up to \
             there are used",
            crate::boot::MAX_CMDLINE
        );
    }
    for problem in options.problems() {
        log::warn!("command line: {problem}");
    }
    if options.dropped_problems() > 0 {
        log::warn!(
            "command line: {} more problems not shown",
            options.dropped_problems()
        );
    }
    if boot.regions_dropped() > 0 {
        log::warn!(
            "memory map: {} regions dropped (too many or malformed)",
            boot.regions_dropped()
        );
    }
    let reported = boot.bytes_of(MemoryKind::Usable);
    if let Some(limit) = options.mem_limit() {
        let left = boot.cap_usable(limit);
        log::info!(
            "mem={} MiB: usable memory capped from {} MiB to {} MiB",
            limit / MIB,
            reported / MIB,
            left / MIB
        );
    }

    let features = cpu::features();
    let (_, stack_top) = entry::boot_stack();
    percpu::init_boot_cpu(stack_top, apic::initial_apic_id());
    gdt::init_boot_cpu();
    idt::init();
    cpu::enable_nx(&features);
    // SAFETY: CR4.PGE only makes the global bit of page-table entries effective; the kernel
    // sets it only on kernel mappings, which are the same in every address space.
    unsafe {
        use x86_64::registers::control::{Cr4, Cr4Flags};
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
    }

    let memory = kernel_space::init(&boot, features.nx);
    crate::arch::tlb::init(kernel_space::kernel_root());
    kprintln!(
        "memory: usable {} MiB, free {} MiB, kernel {} KiB, modules {} KiB, frame bitmap {} KiB, page tables {} KiB",
        memory.usable / MIB,
        memory.free / MIB,
        memory.kernel / 1024,
        memory.modules / 1024,
        memory.bitmap / 1024,
        memory.page_tables / 1024
    );
    for r in boot.memory_map() {
        log::debug!("  {:#014x}..{:#014x} {:?}", r.start, r.end, r.kind);
    }

    let timer = apic::init(&features, |phys| kernel_space::map_mmio(phys, 4096));
    if !timer.calibrated {
        log::warn!("timer: the PIT did not answer; assuming a 1 GHz APIC clock");
    }
    log::info!(
        "timer: {} APIC id {}, {} kHz after divide, tick {} Hz, TSC {} MHz",
        if timer.x2apic { "x2APIC" } else { "xAPIC" },
        timer.apic_id,
        timer.timer_hz / 1000,
        apic::HZ,
        timer.tsc_hz / 1_000_000
    );
    syscall::init();
    x86_64::instructions::interrupts::enable();
    log::info!(
        "boot: {} M TSC cycles since reset",
        arch::rdtsc() / 1_000_000
    );
    let archive = boot_archive(&boot);

    match options.crash() {
        // Once the first application processor is up (`cpus`).
        Some(Crash::ApStackOverflow) => super::cpus::overflow_the_first_ap_stack(),
        Some(crash) => deliberate_crash(crash),
        None => {}
    }
    if let Some(selection) = options.tests() {
        let failed = ktest::run(&selection);
        arch::exit_qemu(if failed == 0 {
            ExitCode::Success
        } else {
            ExitCode::TestsFailed
        });
    }
    x86_64::instructions::interrupts::disable();
    let Some(archive) = archive else {
        kprintln!("nothing to run: no boot archive; shutting down");
        arch::exit_qemu(ExitCode::Success)
    };
    if let Some(ms) = options.pager_timeout_ms() {
        crate::kern::memory::pager::set_timeout_ms(ms);
    }
    let mut guard = KERNEL.lock();
    let kernel = guard.insert(Kernel::new(Some(archive)));
    kernel
        .vm
        .set_pageout_whole_clusters(options.pageout_whole_clusters());
    kernel.swapper.config.enabled = !options.swapper_off();
    crate::vm::pmap::inject_root_failures(options.fail_roots());
    super::sched::set_idle_poll(options.idle_poll());
    kernel.swap_option = options.swap().map(alloc::string::String::from);
    kernel.zcache_option = options.zcache().map(alloc::string::String::from);
    kernel.args_option = options.args().map(alloc::string::String::from);
    kernel.sh_option = options.sh().map(alloc::string::String::from);
    kernel.start_option = options.start().map(alloc::string::String::from);
    if let Some(programs) = options.collocate() {
        if kernel.colloc.collocate(programs).is_err() {
            panic!("no kernel memory for the collocate= option at start-up");
        }
    }
    kernel.devices.probe(boot.rsdp(), timer.apic_id);
    if kernel.make_device_ports().is_err() {
        panic!("no kernel memory for the device ports at start-up");
    }
    super::cpus::start_application_processors(&boot, options.cpus());
    let init = options.init().unwrap_or("bootstrap");
    if let Err(e) = kernel.start_init(init, options.init_arg()) {
        panic!("cannot start the first task, init={init}: {e}");
    }
    sched::run(guard)
}

/// The boot archive (the first boot module), checked, as bytes and physical address.
fn boot_archive(boot: &BootInfo) -> Option<(&'static [u8], u64)> {
    let module = boot.modules().first()?;
    // SAFETY: boot modules lie in memory marked KernelAndModules, which the direct map covers
    // and the frame allocator never hands out, so the bytes stay valid and unchanged forever.
    let bytes = unsafe {
        core::slice::from_raw_parts(phys_to_virt(module.phys) as *const u8, module.len as usize)
    };
    match Archive::parse(bytes) {
        Ok(archive) => {
            let names = archive
                .files()
                .map(|f| f.name)
                .fold(String::new(), |mut all, name| {
                    if !all.is_empty() {
                        all.push_str(", ");
                    }
                    all.push_str(name);
                    all
                });
            log::info!("boot archive: {} programs: {names}", archive.len());
            Some((bytes, module.phys))
        }
        Err(e) => {
            log::error!("boot module {:?} is not a boot archive: {e}", module.name());
            None
        }
    }
}

/// Runs this CPU's kernel stack into its guard page (`crash=stack_overflow`, and
/// `ap_stack_overflow` on the first application processor).
pub(super) fn overflow_the_stack() -> ! {
    let depth = recurse(0);
    panic!("recursion to depth {depth} did not overflow the stack");
}

/// Recurses without end (1 KiB of stack a level) until the guard page stops it.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [depth; 128];
    core::hint::black_box(&mut frame);
    if depth == u64::MAX {
        return depth;
    }
    recurse(depth + 1) + frame[depth as usize % 128]
}

/// Faults on purpose, to show how the kernel reports it (`crash=`).
fn deliberate_crash(crash: Crash) -> ! {
    log::warn!("crash={}: faulting on purpose", crash.name());
    match crash {
        Crash::PageFault => {
            // An address in the lower half, where the kernel maps nothing.
            let address = 0xdead_b000 as *const u64;
            // SAFETY: not safe, on purpose: this read must fault; the fault handler reports it
            // and stops the machine, so execution never continues past it.
            let value = unsafe { core::ptr::read_volatile(address) };
            panic!("read of an unmapped address returned {value}");
        }
        Crash::DivideError => {
            // SAFETY: a division by zero traps (#DE); the handler stops the machine. Done in
            // assembly because Rust checks divisors before dividing.
            unsafe {
                core::arch::asm!("xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _)
            };
            panic!("division by zero did not trap");
        }
        Crash::InvalidOpcode => {
            // SAFETY: ud2 traps (#UD); the handler stops the machine.
            unsafe { core::arch::asm!("ud2") };
            panic!("ud2 did not trap");
        }
        Crash::StackOverflow | Crash::ApStackOverflow => overflow_the_stack(),
        Crash::Panic => panic!("deliberate panic (crash=panic)"),
    }
}

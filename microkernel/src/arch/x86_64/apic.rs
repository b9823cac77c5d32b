//! The local APIC: x2APIC through MSRs when the CPU has it, xAPIC through MMIO otherwise.
//! Its timer, calibrated against the PIT, gives the periodic tick (the scheduler's quantum).

use super::cpu::{self, read_msr, write_msr, Features, IA32_APIC_BASE};
use super::icr;
use super::legacy;
use super::trap::{SPURIOUS_VECTOR, TIMER_VECTOR};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Timer interrupts per second.
pub const HZ: u64 = 100;

const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xb0;
const REG_SPURIOUS: u32 = 0xf0;
const REG_LVT_TIMER: u32 = 0x320;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC registers (unused in x2APIC mode).
static MMIO_BASE: AtomicU64 = AtomicU64::new(0);
/// The time-stamp counter's rate measured at boot (0 if the PIT did not answer).
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// The timer's initial count for one tick, as the boot CPU calibrated it (the application
/// processors' timers use the same).
static TICK_COUNT: AtomicU64 = AtomicU64::new(0);

/// The time-stamp counter's rate measured at boot, in Hz; 0 if it could not be measured.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: in x2APIC mode every APIC register is the MSR 0x800 + reg/16.
        unsafe { read_msr(0x800 + (reg >> 4)) as u32 }
    } else {
        let base = MMIO_BASE.load(Ordering::Relaxed);
        // SAFETY: `base` maps the xAPIC page uncached (set by `init`), and `reg` is one of
        // the register offsets above, inside that page and 16-byte aligned.
        unsafe { core::ptr::read_volatile((base + u64::from(reg)) as *const u32) }
    }
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`; writes to these registers only program the local APIC.
        unsafe { write_msr(0x800 + (reg >> 4), u64::from(value)) }
    } else {
        let base = MMIO_BASE.load(Ordering::Relaxed);
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((base + u64::from(reg)) as *mut u32, value) }
    }
}

/// Signals the end of the interrupt being handled.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// What calibration found.
#[derive(Clone, Copy, Debug)]
pub struct TimerInfo {
    pub x2apic: bool,
    pub apic_id: u32,
    /// APIC timer ticks (after the divide-by-16) per second.
    pub timer_hz: u64,
    /// Time-stamp counter ticks per second, measured over the same interval.
    pub tsc_hz: u64,
    /// False when the PIT never answered and a default was assumed.
    pub calibrated: bool,
}

/// Enables the local APIC, masks the legacy PICs, calibrates the timer and starts it
/// periodically at [`HZ`]. `map_mmio` maps the xAPIC register page and returns its address.
pub fn init(features: &Features, map_mmio: impl FnOnce(u64) -> u64) -> TimerInfo {
    legacy::disable_pic();
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting the global-enable bit (and
    // the x2APIC bit when supported) only switches the local APIC on.
    let base = unsafe { read_msr(IA32_APIC_BASE) };
    if features.x2apic {
        // SAFETY: as above; x2APIC mode is supported per CPUID.
        unsafe { write_msr(IA32_APIC_BASE, base | (1 << 11) | (1 << 10)) };
        X2APIC.store(true, Ordering::Relaxed);
    } else {
        // SAFETY: as above.
        unsafe { write_msr(IA32_APIC_BASE, base | (1 << 11)) };
        MMIO_BASE.store(map_mmio(base & 0x000f_ffff_ffff_f000), Ordering::Relaxed);
    }
    write(REG_SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    let apic_id = if features.x2apic {
        read(REG_ID)
    } else {
        read(REG_ID) >> 24
    };

    // Count APIC timer and TSC ticks over 10 ms of the PIT.
    const CALIBRATION_MS: u64 = 10;
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    let mut samples = [(0u32, 0u64); 2];
    let mut n = 0;
    let calibrated = legacy::pit_wait(CALIBRATION_MS, || {
        if n == 0 {
            write(REG_TIMER_INITIAL, u32::MAX);
        }
        samples[n.min(1)] = (read(REG_TIMER_CURRENT), cpu::rdtsc());
        n += 1;
    });
    let (timer_hz, tsc_hz) = if calibrated && samples[0].0 > samples[1].0 {
        let per = 1000 / CALIBRATION_MS;
        (
            u64::from(samples[0].0 - samples[1].0) * per,
            (samples[1].1 - samples[0].1) * per,
        )
    } else {
        // QEMU's APIC runs at 1 GHz before the divider; assume that rather than stop.
        (1_000_000_000 / 16, 0)
    };
    TSC_HZ.store(tsc_hz, Ordering::Relaxed);
    TICK_COUNT.store(
        (timer_hz / HZ).clamp(1, u64::from(u32::MAX)),
        Ordering::Relaxed,
    );
    start_timer();
    TimerInfo {
        x2apic: features.x2apic,
        apic_id,
        timer_hz,
        tsc_hz,
        calibrated,
    }
}

/// The boot CPU's APIC id before the APIC is set up (from CPUID).
pub fn initial_apic_id() -> u32 {
    cpu::cpuid(1).1 >> 24
}

/// Starts this CPU's timer periodically at [`HZ`], with the boot CPU's calibration.
fn start_timer() {
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    write(REG_TIMER_INITIAL, 0);
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, TICK_COUNT.load(Ordering::Relaxed) as u32);
}

/// Enables an application processor's local APIC (in the boot CPU's mode) and starts its
/// timer with the boot CPU's calibration; returns its APIC id.
pub fn init_application_cpu() -> u32 {
    let x2apic = X2APIC.load(Ordering::Relaxed);
    // SAFETY: as in `init`: only switches this CPU's local APIC on, in the mode the boot CPU
    // chose (the same CPUID on every CPU).
    unsafe {
        let base = read_msr(IA32_APIC_BASE);
        let mode = if x2apic {
            (1 << 11) | (1 << 10)
        } else {
            1 << 11
        };
        write_msr(IA32_APIC_BASE, base | mode);
    }
    write(REG_SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    start_timer();
    local_id()
}

/// This CPU's APIC id.
pub fn local_id() -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        read(REG_ID)
    } else {
        read(REG_ID) >> 24
    }
}

/// Writes the interrupt command register: `command` (vector and delivery mode) to the CPU
/// with APIC id `destination`, waiting for an earlier command to be sent first (xAPIC).
fn command(destination: u32, command: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: in x2APIC mode the ICR is the one MSR 0x830, destination in its high half.
        unsafe { write_msr(0x830, icr::x2apic(destination, command)) };
    } else {
        // An id past 255 is never an xAPIC's (the processor table gives ids in the mode's
        // range): nothing is sent rather than the wrong CPU interrupted.
        let Some(high) = icr::xapic_high(destination) else {
            log::warn!("apic: APIC id {destination} is out of the xAPIC's reach");
            return;
        };
        while read(REG_ICR_LOW) & icr::PENDING != 0 {
            core::hint::spin_loop();
        }
        write(REG_ICR_HIGH, high);
        write(REG_ICR_LOW, command);
    }
}

/// Sends interrupt `vector` to the CPU with APIC id `destination` (fixed delivery).
pub fn send_ipi(destination: u32, vector: u8) {
    command(destination, icr::fixed(vector));
}

/// Sends INIT to the CPU with APIC id `destination`: it waits for a start-up IPI.
pub fn send_init(destination: u32) {
    command(destination, icr::init());
}

/// Sends a start-up IPI to the CPU with APIC id `destination`: it starts in real mode at
/// physical `page << 12`.
pub fn send_startup(destination: u32, page: u8) {
    command(destination, icr::startup(page));
}

//! The local APIC: x2APIC through MSRs when the CPU has it, xAPIC through MMIO otherwise.
//! Its timer, calibrated against the PIT, gives the periodic tick (the scheduler's quantum).

use super::cpu::{self, read_msr, write_msr, Features, IA32_APIC_BASE};
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

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC registers (unused in x2APIC mode).
static MMIO_BASE: AtomicU64 = AtomicU64::new(0);
/// The time-stamp counter's rate measured at boot (0 if the PIT did not answer).
static TSC_HZ: AtomicU64 = AtomicU64::new(0);

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
    write(REG_TIMER_INITIAL, 0);
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(
        REG_TIMER_INITIAL,
        ((timer_hz / HZ).max(1)).min(u64::from(u32::MAX)) as u32,
    );
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

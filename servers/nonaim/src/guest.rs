//! What NONAIM's programs share in the guest: the clocks, and fork retried after a pause.

use crate::mix::{retry_pause_ms, MAX_ATTEMPTS};
use libipc::abi::syscall::{HOST_TICKS, HOST_TSC_KHZ};
use libipc::abi::KernReturn;
use libipc::process::{self, Fork};

/// The time-stamp counter: under QEMU's `-icount shift=0` it counts guest instructions.
pub fn timestamp() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; user mode may run it (the kernel leaves
    // CR4.TSD clear, else this faults and the task is ended).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Host timer ticks since boot (100 a second).
pub fn ticks() -> u64 {
    libipc::sys::host_info(HOST_TICKS).unwrap_or(0)
}

/// A clock in microseconds: the time-stamp counter over its rate measured at boot
/// (`HOST_TSC_KHZ`), or the timer's ticks if that is unknown. Only differences mean
/// anything.
pub fn micros() -> u64 {
    match libipc::sys::host_info(HOST_TSC_KHZ) {
        Ok(khz) if khz > 0 => (u128::from(timestamp()) * 1000 / u128::from(khz)) as u64,
        _ => ticks() * 10_000,
    }
}

/// Pauses after failed attempt `attempt` (from 0), counting the retry in `retried`; `false`
/// when the attempts are used up (no pause then).
pub fn pause_before_retry(attempt: u32, retried: &mut u32) -> bool {
    if attempt + 1 >= MAX_ATTEMPTS {
        return false;
    }
    *retried += 1;
    libipc::rt::sleep_ms(retry_pause_ms(attempt));
    true
}

/// `fork`, tried again after a pause when it fails (memory, ports or tasks short), up to
/// [`MAX_ATTEMPTS`] times; each retry is counted in `retried`. The last error if every
/// attempt failed.
pub fn fork_retrying(retried: &mut u32) -> Result<Fork, KernReturn> {
    let mut attempt = 0;
    loop {
        match process::fork() {
            Ok(fork) => return Ok(fork),
            Err(e) if !pause_before_retry(attempt, retried) => return Err(e),
            Err(_) => attempt += 1,
        }
    }
}

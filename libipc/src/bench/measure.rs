//! Timing loops: warm-up iterations, then each timed iteration between two `rdtsc` reads.

use alloc::string::String;
use alloc::vec::Vec;

use super::stats::Summary;

/// Why a benchmark could not produce its figure.
pub type Failure = String;

/// The time-stamp counter: under QEMU's `-icount shift=0` it counts guest instructions
/// (for timing a part of each iteration; [`time_iterations`] times whole ones).
#[inline(always)]
pub fn timestamp() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; user mode may run it (the kernel leaves
    // CR4.TSD clear, else this faults and the task is ended).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Runs `iteration` `warm_up` times untimed, then `timed` times each timed on its own; the
/// summary of the timed samples. Stops at the first failed iteration.
pub fn time_iterations(
    warm_up: usize,
    timed: usize,
    mut iteration: impl FnMut() -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    let mut samples = Vec::new();
    samples
        .try_reserve_exact(timed)
        .map_err(|_| Failure::from("no heap for the samples"))?;
    // One loop, so `iteration` has one call site and is inlined into it: a call of the
    // closure (its prologue and epilogue) is no part of what is timed.
    for i in 0..warm_up + timed {
        let start = timestamp();
        let result = iteration();
        let end = timestamp();
        result?;
        if i >= warm_up {
            samples.push(end.wrapping_sub(start));
        }
    }
    Summary::of(&mut samples).ok_or_else(|| Failure::from("no timed iterations"))
}

/// Prints the spread of a timed figure as a remark of `program` (the `bench` line carries
/// the median).
pub fn remark(program: &str, metric: &str, samples: usize, summary: &Summary) {
    crate::println!(
        "{program}: {metric}: {samples} samples, min {}, median {}, max {}",
        summary.min,
        summary.median,
        summary.max
    );
}

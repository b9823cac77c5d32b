//! Helpers for in-guest benchmarks: timing loops with `rdtsc` (guest instructions under
//! QEMU's `-icount`) and the arithmetic of the figures (medians, ratios), which is
//! host-tested. Benchmarks print `bench <suite>.<metric> <value> <unit>` lines for
//! `cargo image bench`.

#[cfg(all(feature = "transport", target_os = "none"))]
pub mod measure;
pub mod stats;
#[cfg(all(feature = "runtime", target_os = "none"))]
pub mod workloads;

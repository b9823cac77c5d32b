//! The pure parts of the Linux side of the benchmarks, host-tested: what the kernel command
//! line asks the program to run ([`options`]), the swap area's header it writes on the disk
//! ([`swap`]), and the counters it reads from `/proc` and `/sys` ([`stats`]).
//!
//! The program itself (`main.rs`) is PID 1 of a Linux guest booted by `cargo image bench
//! <suite> --linux`: it mounts what it needs, loads the virtio modules, makes the disk its
//! swap, confines the workload's memory with a cgroup, runs the workload and prints the same
//! `bench <group>.<metric> <value> <unit>` lines as the microkernel's programs.

pub mod options;
pub mod stats;
pub mod swap;

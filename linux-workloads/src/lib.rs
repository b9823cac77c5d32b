//! The pure parts of the Linux side of the benchmarks, host-tested: what the kernel command
//! line asks the program to run ([`options`]), the swap area's header it writes on the disk
//! ([`swap`]), the counters it reads from `/proc` and `/sys` ([`stats`]), and NONAIM's job
//! exit status in a byte ([`job_status`]).
//!
//! The program itself (`main.rs`) is PID 1 of a Linux guest booted by `cargo image bench
//! <suite> --linux`: it mounts what it needs, loads the virtio modules, makes the disk its
//! swap, confines the workload's memory with a cgroup, runs the workload and prints the same
//! `bench <group>.<metric> <value> <unit>` lines as the microkernel's programs.

pub mod job_status;
pub mod options;
pub mod stats;
pub mod swap;

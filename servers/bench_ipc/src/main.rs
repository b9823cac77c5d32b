//! `bench_ipc`: measures IPC and task costs in the guest and prints them as
//! `bench <group>.<metric> <value> <unit>` lines for `cargo image bench ipc`.
//!
//! The same program plays every part, chosen by its second start argument (see [`role`]): run
//! as the first task it is the benchmark driver, which spawns copies of itself as the null-RPC
//! server, as tasks that exit at once, and as tasks that block forever. Timed figures are the
//! median of many warm iterations, each timed with `rdtsc` (guest instructions under QEMU's
//! `-icount`). Remarks and failures go out as lines starting `bench_ipc:`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod colloc;
#[cfg(target_os = "none")]
mod rpc;
#[cfg(target_os = "none")]
mod tasks;

#[cfg(target_os = "none")]
libipc::program!(main);

/// This program's name in the boot archive, for spawning copies of itself.
#[cfg(target_os = "none")]
const PROGRAM: &str = "bench_ipc";

/// How long a set-up message (an announcement, a task saying it is ready) may take before the
/// benchmark gives up, in milliseconds; the timed calls themselves wait without a timeout.
#[cfg(target_os = "none")]
const SETUP_TIMEOUT_MS: u64 = 10_000;

/// What a copy of the program does, by its second start argument.
#[cfg(target_os = "none")]
mod role {
    /// The driver: runs every benchmark (the first task gets 0).
    pub const DRIVER: u64 = 0;
    /// The null-RPC server: the first start argument is a send right to announce its port on.
    pub const SERVER: u64 = 1;
    /// Exits with 0 at once (task create/destroy).
    pub const EXIT: u64 = 2;
    /// Says it is ready on the port of its first start argument, then blocks in a receive
    /// forever (the cost of a blocked task).
    pub const BLOCKED: u64 = 3;
}

/// Why a measurement could not be made.
#[cfg(target_os = "none")]
type Failure = alloc::string::String;

/// One benchmark: prints its figures, or says why it could not.
#[cfg(target_os = "none")]
type Benchmark = dyn Fn() -> Result<(), Failure>;

/// Prints one figure in the form the host tool collects.
#[cfg(target_os = "none")]
macro_rules! figure {
    ($metric:expr, $value:expr, $unit:expr) => {
        libipc::println!("bench {} {} {}", $metric, $value, $unit)
    };
}
#[cfg(target_os = "none")]
use figure;

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    match args.arg1 {
        role::DRIVER => run_benchmarks(args.arg0 as u32),
        role::SERVER => libipc::bench::workloads::serve(PROGRAM, args.arg0 as libipc::ipc::Name),
        role::EXIT => 0,
        role::BLOCKED => libipc::bench::workloads::block_forever(
            PROGRAM,
            args.arg0 as libipc::ipc::Name,
            tasks::READY_ID,
        ),
        other => {
            libipc::println!("bench_ipc: unknown role {other}");
            2
        }
    }
}

/// Runs each benchmark, going on after a failed one so that every figure that can be had is
/// printed; 0 if all worked, 1 otherwise. `host`: the host port, which the first task gets.
#[cfg(target_os = "none")]
#[inline(never)]
fn run_benchmarks(host: u32) -> i32 {
    let collocated = move || colloc::bench(host);
    let benchmarks: [(&str, &Benchmark); 5] = [
        ("kernel object sizes", &tasks::report_object_sizes),
        ("null RPC round trip", &rpc::bench),
        ("task create/destroy", &tasks::bench_create_destroy),
        ("blocked tasks", &tasks::bench_blocked_tasks),
        // Last, so the figures before are measured as they always were.
        ("collocated RPC", &collocated),
    ];
    let mut failed = 0;
    for (name, benchmark) in benchmarks {
        if let Err(why) = benchmark() {
            libipc::println!("bench_ipc: FAILED {name}: {why}");
            failed += 1;
        }
    }
    if failed == 0 {
        libipc::println!("bench_ipc: all benchmarks done");
        0
    } else {
        libipc::println!(
            "bench_ipc: {failed} of {} benchmarks failed",
            benchmarks.len()
        );
        1
    }
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}

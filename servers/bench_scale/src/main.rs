//! `bench_scale`: how the kernel behaves with very many tasks (`cargo image bench scale`, a
//! 1 GiB guest; issue 18's "many tasks").
//!
//! The driver times the null RPC and fork-exit-wait with 10 tasks in the system, starts
//! 10,000 tasks that block in a receive, lets their page tables be collected, and times the
//! same two again; then it starts more blocked tasks until the kernel refuses one (or, with
//! `args=N`, until there are N), counts them, terminates them all and checks that every
//! frame came back. Figures go out as `bench scale.<metric> <value> <unit>` lines, remarks
//! and failures as lines starting `bench_scale:`.
//!
//! A task's name space holds at most 65,536 names, so the driver does not hold the blocked
//! tasks' ports itself: it starts *groups*, copies of this program that each start up to
//! [`GROUP_SIZE`] blocked tasks, report how many, and terminate them when told to stop.
//!
//! Then one task starts a million threads that block in a receive (`args=N,T`: T of them),
//! and the driver checks the kernel counts them, that they all wake and exit when their
//! port goes, and that their memory comes back.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod driver;
#[cfg(target_os = "none")]
mod flat;
#[cfg(target_os = "none")]
mod group;
#[cfg(target_os = "none")]
mod threads;

#[cfg(target_os = "none")]
libipc::program!(main);

/// This program's name in the boot archive, for spawning copies of itself.
#[cfg(target_os = "none")]
const PROGRAM: &str = "bench_scale";

/// How long a set-up message (a task saying it is ready) may take, in milliseconds.
#[cfg(target_os = "none")]
const SETUP_TIMEOUT_MS: u64 = 30_000;

/// The most blocked tasks one group starts.
#[cfg(target_os = "none")]
const GROUP_SIZE: u64 = 10_000;

/// What a copy of the program does: the low byte of its second start argument (the rest is
/// the role's parameter).
#[cfg(target_os = "none")]
mod role {
    /// The driver (the first task gets 0).
    pub const DRIVER: u64 = 0;
    /// The null-RPC server (`libipc::bench::workloads::serve`).
    pub const SERVER: u64 = 1;
    /// A group: starts (parameter) blocked tasks, reports on its first start argument.
    pub const GROUP: u64 = 2;
    /// A blocked task: says so on its first start argument and waits for good.
    pub const BLOCKED: u64 = 3;
    /// A task of many threads: starts (parameter) blocked threads, reports as a group does.
    pub const THREADS: u64 = 4;

    /// The second start argument for `role` with `parameter`.
    pub const fn with(role: u64, parameter: u64) -> u64 {
        role | parameter << 8
    }
}

/// A blocked task's message saying it is about to wait.
#[cfg(target_os = "none")]
const BLOCKED_ID: u32 = 4000;

/// Why a measurement could not be made.
#[cfg(target_os = "none")]
type Failure = alloc::string::String;

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let given = args.arg0 as libipc::ipc::Name;
    let parameter = args.arg1 >> 8;
    match args.arg1 & 0xff {
        role::DRIVER => driver::run(),
        role::SERVER => libipc::bench::workloads::serve(PROGRAM, given),
        role::GROUP => group::run(given, parameter),
        role::BLOCKED => libipc::bench::workloads::block_forever(PROGRAM, given, BLOCKED_ID),
        role::THREADS => threads::run(given, parameter),
        other => {
            libipc::println!("bench_scale: unknown role {other}");
            2
        }
    }
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}

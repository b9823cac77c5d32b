//! What runs around a program's main: `TaskExit` after it, and panics. (The heap sets itself
//! up at the first allocation, so a program that allocates nothing touches none of its pages.)

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use super::StartArgs;
use crate::sys;

/// Exit status of a task whose program panicked (as Rust's test harness uses).
pub const PANIC_EXIT_STATUS: i32 = 101;

/// Called by `_start` (see [`program!`](crate::program)): runs `main` and ends the task with
/// its return value.
pub fn start(args: StartArgs, main: fn(StartArgs) -> i32) -> ! {
    let status = main(args);
    sys::task_exit(status)
}

/// The panic handler's body: reports the panic on the console and ends the task with
/// [`PANIC_EXIT_STATUS`]. A panic while reporting (a `Display` that panics) ends the task
/// without a second report.
pub fn panic(info: &PanicInfo<'_>, program: &str) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if !PANICKING.swap(true, Ordering::Relaxed) {
        match info.location() {
            Some(location) => crate::println!(
                "panic in {program}: {} at {}:{}",
                info.message(),
                location.file(),
                location.line()
            ),
            None => crate::println!("panic in {program}: {}", info.message()),
        }
    }
    sys::task_exit(PANIC_EXIT_STATUS)
}

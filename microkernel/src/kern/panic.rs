//! The panic handler: report message and location, then end the machine with a failure code.

use crate::kern::console;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use libipc::abi::report::ExitCode;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    let mut out = console::emergency();
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while reporting a panic: say so and stop, without formatting again.
        let _ = out.write_str("\npanic: nested panic\n");
        crate::arch::exit_qemu(ExitCode::Panic);
    }
    match info.location() {
        Some(l) => {
            let _ = writeln!(
                out,
                "\npanic: {} at {}:{}:{}",
                info.message(),
                l.file(),
                l.line(),
                l.column()
            );
        }
        None => {
            let _ = writeln!(out, "\npanic: {}", info.message());
        }
    }
    crate::arch::exit_qemu(ExitCode::Panic)
}

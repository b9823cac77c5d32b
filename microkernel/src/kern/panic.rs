//! The panic handler: report message and location, then end the machine with a failure code
//! (or, for a collocated server's own panic, end that server's task and go on).

use crate::kern::console;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use libipc::abi::report::ExitCode;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    // A collocated server's own panic ends its task, not the kernel (this returns only if
    // the panic is the kernel's: then the report names the server it ran for).
    if !PANICKING.load(Ordering::SeqCst) {
        match info.location() {
            Some(l) => crate::kern::colloc::abandon_failed_server(format_args!(
                "panic: {} at {}:{}",
                info.message(),
                l.file(),
                l.line()
            )),
            None => crate::kern::colloc::abandon_failed_server(format_args!(
                "panic: {}",
                info.message()
            )),
        }
    }
    let mut out = console::emergency();
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while reporting a panic: say so and stop, without formatting again.
        let _ = out.write_str("\npanic: nested panic\n");
        crate::arch::exit_qemu(ExitCode::Panic);
    }
    if let Some(server) = crate::kern::colloc::running_server() {
        let _ = write!(
            out,
            "\npanic in a system call of collocated server {server}:"
        );
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

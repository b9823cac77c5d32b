//! The kernel console on the serial port: `kprintln!`, and the `log` crate's backend with levels.

use crate::arch::serial;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

static LOCK: Mutex<()> = Mutex::new(());

/// Writes straight to the serial port, holding nothing.
struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        serial::write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints under the console lock, with interrupts off so a handler cannot deadlock on it.
pub fn print(args: fmt::Arguments<'_>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let _guard = LOCK.lock();
        let _ = Raw.write_fmt(args);
    });
}

/// A writer for panics and fatal exceptions: takes no lock (the interrupted code may hold it),
/// so lines may interleave, but they always come out.
pub fn emergency() -> impl Write {
    Raw
}

#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::kern::console::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! kprintln {
    () => { $crate::kern::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::kern::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

static LOGGER: Logger = Logger;
static INSTALLED: AtomicBool = AtomicBool::new(false);

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                log::Level::Error => "error",
                log::Level::Warn => "warn",
                log::Level::Info => "info",
                log::Level::Debug => "debug",
                log::Level::Trace => "trace",
            };
            print(format_args!("[{level:>5}] {}\n", record.args()));
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once) at `level`.
pub fn init_logging(level: log::LevelFilter) {
    if !INSTALLED.swap(true, Ordering::SeqCst) {
        let _ = log::set_logger(&LOGGER);
    }
    log::set_max_level(level);
}

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

/// A writer for panics and fatal exceptions. It takes the console lock if the lock comes
/// free soon (another CPU finishing its line), so the report does not break into other
/// output, and writes without it otherwise (the interrupted code on this CPU may hold it):
/// the report always comes out. The lock, if taken, goes with the writer.
pub fn emergency() -> impl Write {
    let guard = (0..EMERGENCY_TRIES).find_map(|_| {
        let guard = LOCK.try_lock();
        if guard.is_none() {
            core::hint::spin_loop();
        }
        guard
    });
    Emergency { _guard: guard }
}

/// Tries at the console lock before an emergency writer goes without it: a few
/// milliseconds, far longer than any line takes.
const EMERGENCY_TRIES: u32 = 1_000_000;

/// The writer [`emergency`] returns.
struct Emergency {
    _guard: Option<spin::MutexGuard<'static, ()>>,
}

impl Write for Emergency {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Raw.write_str(s)
    }
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

/// Console input read from the UART that no program has read yet.
static INPUT: Mutex<InputRing> = Mutex::new(InputRing {
    bytes: [0; INPUT_BYTES],
    head: 0,
    len: 0,
});

/// Bytes of console input kept for programs; beyond that the UART (and QEMU behind it)
/// holds the rest until they are read.
const INPUT_BYTES: usize = 4096;

struct InputRing {
    bytes: [u8; INPUT_BYTES],
    head: usize,
    len: usize,
}

/// Moves what the UART has received into the input ring (the timer tick calls it); whether
/// anything came.
pub fn poll_input() -> bool {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut ring = INPUT.lock();
        let mut came = false;
        while ring.len < INPUT_BYTES {
            let Some(byte) = serial::read_byte() else {
                break;
            };
            let at = (ring.head + ring.len) % INPUT_BYTES;
            ring.bytes[at] = byte;
            ring.len += 1;
            came = true;
        }
        came
    })
}

/// Copies up to `out.len()` bytes of waiting input into `out` without taking them; how many.
pub fn peek_input(out: &mut [u8]) -> usize {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let ring = INPUT.lock();
        let n = out.len().min(ring.len);
        for (i, byte) in out[..n].iter_mut().enumerate() {
            *byte = ring.bytes[(ring.head + i) % INPUT_BYTES];
        }
        n
    })
}

/// Drops the first `n` bytes of waiting input (a program has them).
pub fn consume_input(n: usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut ring = INPUT.lock();
        let n = n.min(ring.len);
        ring.head = (ring.head + n) % INPUT_BYTES;
        ring.len -= n;
    });
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

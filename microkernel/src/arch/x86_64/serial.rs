//! The first 16550 UART (COM1): the kernel console.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

/// Programs COM1 for 115200 baud, 8N1, FIFOs on, no interrupts. (Switching the FIFOs on
/// empties them: input that came before is lost. The image tool types only once the
/// kernel's banner is out.)
pub fn init() {
    // SAFETY: COM1's registers are ports 0x3f8..0x3ff on every PC QEMU emulates; writing the
    // standard initialisation sequence has no effect beyond the UART.
    unsafe {
        Port::<u8>::new(COM1 + 1).write(0x00); // no interrupts
        Port::<u8>::new(COM1 + 3).write(0x80); // DLAB on
        Port::<u8>::new(COM1).write(0x01); // divisor 1: 115200 baud
        Port::<u8>::new(COM1 + 1).write(0x00);
        Port::<u8>::new(COM1 + 3).write(0x03); // 8N1, DLAB off
        Port::<u8>::new(COM1 + 2).write(0xc7); // FIFO on, cleared, 14-byte threshold
        Port::<u8>::new(COM1 + 4).write(0x03); // DTR, RTS
    }
}

/// A byte the UART has received, if any.
pub fn read_byte() -> Option<u8> {
    // SAFETY: reading COM1's line status and receive buffer only affects the UART (the read
    // takes the byte out of its FIFO).
    unsafe {
        if Port::<u8>::new(COM1 + 5).read() & 0x01 == 0 {
            return None;
        }
        Some(Port::<u8>::new(COM1).read())
    }
}

/// Writes bytes, waiting for the transmitter when it is full; `\n` becomes `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            write_byte(b'\r');
        }
        write_byte(b);
    }
}

fn write_byte(b: u8) {
    // SAFETY: reading the line status and writing the data register of COM1 only affect the UART.
    unsafe {
        let mut status = Port::<u8>::new(COM1 + 5);
        // Bounded wait: a missing UART must not hang the kernel.
        for _ in 0..100_000 {
            if status.read() & 0x20 != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        Port::<u8>::new(COM1).write(b);
    }
}

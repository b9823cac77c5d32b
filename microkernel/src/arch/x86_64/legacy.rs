//! Legacy PC timers and interrupt controllers: the PIT (only to calibrate other clocks) and the
//! 8259 PICs (remapped away from the exception vectors and masked for good).

use x86_64::instructions::port::Port;

/// PIT input clock, Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Busy-waits `ms` milliseconds (at most 50) on PIT channel 2, calling `sample` at the start
/// and at the end. Returns false if the PIT never signalled (no PIT, or a broken one).
pub fn pit_wait(ms: u64, mut sample: impl FnMut()) -> bool {
    let count = (PIT_HZ * ms.min(50) / 1000) as u16;
    // SAFETY: ports 0x42, 0x43 and 0x61 are PIT channel 2 and its gate on every PC; channel 2
    // drives only the speaker, which stays disconnected (bit 1 of port 0x61 cleared).
    unsafe {
        let mut gate = Port::<u8>::new(0x61);
        let g = gate.read();
        gate.write((g & !0x02) & !0x01); // gate low, speaker off
        Port::<u8>::new(0x43).write(0xb0); // channel 2, lobyte/hibyte, mode 0, binary
        Port::<u8>::new(0x42).write(count as u8);
        Port::<u8>::new(0x42).write((count >> 8) as u8);
        sample();
        gate.write((g & !0x02) | 0x01); // gate high: counting starts
        for _ in 0..50_000_000u64 {
            if gate.read() & 0x20 != 0 {
                sample();
                return true;
            }
        }
        false
    }
}

/// Remaps both 8259 PICs to vectors 0x20..0x2f (so a spurious legacy interrupt cannot look
/// like an exception) and masks every line: the local APIC does the kernel's interrupts.
pub fn disable_pic() {
    // SAFETY: ports 0x20/0x21 and 0xa0/0xa1 are the master and slave PIC; the standard
    // initialisation sequence followed by a full mask only silences them.
    unsafe {
        let mut master_cmd = Port::<u8>::new(0x20);
        let mut master_data = Port::<u8>::new(0x21);
        let mut slave_cmd = Port::<u8>::new(0xa0);
        let mut slave_data = Port::<u8>::new(0xa1);
        master_cmd.write(0x11);
        slave_cmd.write(0x11);
        master_data.write(0x20);
        slave_data.write(0x28);
        master_data.write(0x04);
        slave_data.write(0x02);
        master_data.write(0x01);
        slave_data.write(0x01);
        master_data.write(0xff);
        slave_data.write(0xff);
    }
}

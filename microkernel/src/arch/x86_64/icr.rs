//! The local APIC's interrupt command register, as values: what `apic` writes to send an
//! IPI, INIT or a start-up IPI in either mode. Plain logic, built on the host too, so the
//! x2APIC layout (which QEMU's TCG does not emulate) is checked by unit tests.

/// Delivery mode INIT.
pub const INIT: u32 = 0x500;
/// Delivery mode start-up (SIPI): the vector is the page the CPU starts at.
pub const STARTUP: u32 = 0x600;
/// Level assert (INIT and SIPI need it).
pub const LEVEL_ASSERT: u32 = 1 << 14;
/// Delivery status: an xAPIC command not yet sent.
pub const PENDING: u32 = 1 << 12;

/// The command for fixed delivery of `vector`.
pub const fn fixed(vector: u8) -> u32 {
    vector as u32
}

/// The command for INIT.
pub const fn init() -> u32 {
    INIT | LEVEL_ASSERT
}

/// The command for a start-up IPI to physical `page << 12`.
pub const fn startup(page: u8) -> u32 {
    STARTUP | LEVEL_ASSERT | page as u32
}

/// The x2APIC ICR (MSR 0x830, written at once): the destination's full 32-bit APIC id in
/// the high half, the command in the low.
pub const fn x2apic(destination: u32, command: u32) -> u64 {
    (destination as u64) << 32 | command as u64
}

/// The xAPIC ICR's high register (written first): the destination's 8-bit APIC id in bits
/// 24–31. `None` for an id that does not fit, which only x2APIC can reach.
pub const fn xapic_high(destination: u32) -> Option<u32> {
    if destination > 0xff {
        None
    } else {
        Some(destination << 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x2apic_puts_the_whole_id_in_the_high_half() {
        // APIC ids past 255 exist only in x2APIC mode (ACPI's x2APIC entries list them).
        assert_eq!(x2apic(300, fixed(0xf1)), 0x0000_012c_0000_00f1);
        assert_eq!(x2apic(0xffff_fffe, init()), 0xffff_fffe_0000_4500);
        assert_eq!(x2apic(1, startup(0x08)), 0x0000_0001_0000_4608);
    }

    #[test]
    fn xapic_ids_take_the_top_byte_and_no_more() {
        assert_eq!(xapic_high(0), Some(0));
        assert_eq!(xapic_high(3), Some(0x0300_0000));
        assert_eq!(xapic_high(0xff), Some(0xff00_0000));
        assert_eq!(xapic_high(0x100), None);
    }

    #[test]
    fn commands_carry_their_mode_and_vector() {
        assert_eq!(fixed(0x40), 0x40);
        assert_eq!(init() & 0x700, INIT);
        assert_ne!(init() & LEVEL_ASSERT, 0);
        assert_eq!(startup(0x9f) & 0xff, 0x9f);
        assert_eq!(startup(0x9f) & 0x700, STARTUP);
        // No command ever sets the status bit the xAPIC path waits on.
        assert_eq!((fixed(0xff) | init() | startup(0xff)) & PENDING, 0);
    }
}

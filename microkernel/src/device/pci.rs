//! PCI through ECAM (the memory-mapped configuration space QEMU's `q35` machine has): finding
//! devices on bus 0, their capabilities, and routing a device's interrupts to a local-APIC
//! vector with MSI-X.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

/// Bytes of configuration space per function under ECAM.
const FUNCTION_SPACE: u64 = 4096;

/// Capability id of MSI-X.
const CAPABILITY_MSIX: u8 = 0x11;
/// The MSI-X message control's enable bit (in the capability's upper half word).
const MSIX_ENABLE: u32 = 1 << 31;
/// The MSI-X message control's function mask bit.
const MSIX_FUNCTION_MASK: u32 = 1 << 30;
/// Where MSI messages go: the local APICs' address window.
const MSI_ADDRESS: u32 = 0xfee0_0000;

/// Configuration space of bus 0 through ECAM, mapped at `base` (1 MiB: 32 devices × 8
/// functions × 4 KiB). Only bus 0 is reached: QEMU puts its devices there.
pub struct Ecam {
    base: u64,
}

impl Ecam {
    /// # Safety
    /// `base` maps bus 0's configuration space (1 MiB) uncached, for as long as the value
    /// lives.
    pub unsafe fn new(base: u64) -> Self {
        Ecam { base }
    }

    fn address(&self, function: DeviceFunction, register: u8) -> Option<*mut u32> {
        if function.bus != 0 || function.device >= 32 || function.function >= 8 {
            return None;
        }
        let index = u64::from(function.device) * 8 + u64::from(function.function);
        Some((self.base + index * FUNCTION_SPACE + u64::from(register & !3)) as *mut u32)
    }

    /// The functions present on bus 0 (vendor id not 0xffff) with their vendor and device ids.
    pub fn functions(&self) -> impl Iterator<Item = (DeviceFunction, u16, u16)> + '_ {
        (0..32u8)
            .flat_map(|device| (0..8u8).map(move |function| (device, function)))
            .map(|(device, function)| DeviceFunction {
                bus: 0,
                device,
                function,
            })
            .filter_map(|f| {
                let id = self.read_word(f, 0);
                (id & 0xffff != 0xffff).then_some((f, id as u16, (id >> 16) as u16))
            })
    }

    /// The configuration-space offsets of `function`'s capabilities with id `id`.
    pub fn capabilities(&self, function: DeviceFunction, id: u8) -> impl Iterator<Item = u8> + '_ {
        let has_list = self.read_word(function, 0x04) & (1 << 20) != 0;
        let mut next = if has_list {
            (self.read_word(function, 0x34) & 0xfc) as u8
        } else {
            0
        };
        let mut visited = 0;
        core::iter::from_fn(move || loop {
            // A malformed list could loop: 48 capabilities fit in the 192 bytes after the
            // header.
            if next == 0 || visited > 48 {
                return None;
            }
            visited += 1;
            let at = next;
            let word = self.read_word(function, at);
            next = ((word >> 8) & 0xfc) as u8;
            if word as u8 == id {
                return Some(at);
            }
        })
    }

    /// The memory address of `function`'s BAR `index` (32 or 64 bits wide), as firmware set it;
    /// `None` for an I/O or unset BAR.
    pub fn bar_address(&self, function: DeviceFunction, index: u8) -> Option<u64> {
        if index >= 6 {
            return None;
        }
        let low = self.read_word(function, 0x10 + 4 * index);
        if low & 1 != 0 {
            return None;
        }
        let address = if low & 0b110 == 0b100 && index < 5 {
            u64::from(low & !0xf) | (u64::from(self.read_word(function, 0x14 + 4 * index)) << 32)
        } else {
            u64::from(low & !0xf)
        };
        (address != 0).then_some(address)
    }

    /// Turns on memory decoding and bus mastering (DMA) for `function`.
    pub fn enable_bus_master(&mut self, function: DeviceFunction) {
        let command = self.read_word(function, 0x04);
        // Memory space (bit 1) and bus master (bit 2); the status half is write-one-to-clear,
        // so it is written as zeros.
        self.write_word(function, 0x04, (command & 0xffff) | 0b110);
    }

    /// Sends MSI-X vector-table entry 0 of `function` to local-APIC `vector` on the CPU with
    /// APIC id `apic_id`, and enables MSI-X (every other entry stays masked). `map` maps the
    /// table's page(s) and returns their virtual address. `false` if the function has no
    /// MSI-X capability or its table is not in a memory BAR.
    pub fn route_msix(
        &mut self,
        function: DeviceFunction,
        apic_id: u32,
        vector: u8,
        map: impl FnOnce(u64, u64) -> u64,
    ) -> bool {
        let Some(capability) = self.capabilities(function, CAPABILITY_MSIX).next() else {
            return false;
        };
        let control = self.read_word(function, capability);
        let entries = ((control >> 16) & 0x7ff) + 1;
        let table = self.read_word(function, capability + 4);
        let Some(bar) = self.bar_address(function, (table & 7) as u8) else {
            return false;
        };
        let table_address = bar + u64::from(table & !7);
        let table = map(table_address, u64::from(entries) * 16);
        // Mask the whole function while the table is written.
        self.write_word(function, capability, control | MSIX_FUNCTION_MASK);
        for entry in 0..u64::from(entries) {
            let at = table + entry * 16;
            // SAFETY: `map` mapped the table's `entries` 16-byte entries at `table`, uncached;
            // each entry is message address low, high, data and vector control, 4 bytes each.
            unsafe {
                if entry == 0 {
                    core::ptr::write_volatile(
                        at as *mut u32,
                        MSI_ADDRESS | ((apic_id & 0xff) << 12),
                    );
                    core::ptr::write_volatile((at + 4) as *mut u32, 0);
                    core::ptr::write_volatile((at + 8) as *mut u32, u32::from(vector));
                    core::ptr::write_volatile((at + 12) as *mut u32, 0);
                } else {
                    core::ptr::write_volatile((at + 12) as *mut u32, 1);
                }
            }
        }
        self.write_word(
            function,
            capability,
            (control | MSIX_ENABLE) & !MSIX_FUNCTION_MASK,
        );
        true
    }
}

impl ConfigurationAccess for Ecam {
    fn read_word(&self, function: DeviceFunction, register: u8) -> u32 {
        match self.address(function, register) {
            // SAFETY: `new`'s contract: bus 0's configuration space is mapped at `base`, and
            // `address` stays inside it, 4-byte aligned.
            Some(at) => unsafe { core::ptr::read_volatile(at) },
            None => u32::MAX,
        }
    }

    fn write_word(&mut self, function: DeviceFunction, register: u8, data: u32) {
        if let Some(at) = self.address(function, register) {
            // SAFETY: as in `read_word`.
            unsafe { core::ptr::write_volatile(at, data) }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        Ecam { base: self.base }
    }
}

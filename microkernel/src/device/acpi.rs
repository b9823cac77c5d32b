//! The little of ACPI the kernel reads: from the RSDP through the RSDT or XSDT to the MCFG
//! table, which says where PCI Express configuration space (ECAM) lies, and to the MADT,
//! which lists the processors.
//!
//! Pure parsing over a `read` function that copies physical memory, so it runs on the host
//! against synthetic tables.

/// One ECAM window of the MCFG table: configuration space of buses `first_bus..=last_bus` of
/// PCI segment `segment`, from physical address `base` (1 MiB per bus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcamWindow {
    pub base: u64,
    pub segment: u16,
    pub first_bus: u8,
    pub last_bus: u8,
}

/// Why no ECAM window was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP signature, or its checksum is wrong.
    BadRsdp,
    /// The root table (RSDT or XSDT) is malformed.
    BadRootTable,
    /// No MCFG table, or one without a window.
    NoMcfg,
    /// No MADT (the table of processors and interrupt controllers).
    NoMadt,
}

const SDT_HEADER: usize = 36;

/// Reads `N` bytes of physical memory at an address.
pub trait PhysicalMemory {
    fn read(&self, address: u64, into: &mut [u8]);
}

fn read_array<const N: usize>(memory: &impl PhysicalMemory, address: u64) -> [u8; N] {
    let mut bytes = [0; N];
    memory.read(address, &mut bytes);
    bytes
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

/// The physical address and (bounded) length of the first table with `wanted` signature
/// reached from the RSDP at `rsdp`; `Ok(None)` if there is none.
fn find_table(
    memory: &impl PhysicalMemory,
    rsdp: u64,
    wanted: &[u8; 4],
) -> Result<Option<(u64, usize)>, AcpiError> {
    let head: [u8; 36] = read_array(memory, rsdp);
    if &head[..8] != b"RSD PTR " || !checksum_ok(&head[..20]) {
        return Err(AcpiError::BadRsdp);
    }
    let revision = head[15];
    let rsdt = u64::from(u32::from_le_bytes(head[16..20].try_into().expect("4")));
    let xsdt = u64::from_le_bytes(head[24..32].try_into().expect("8"));
    // ACPI 2+: the XSDT, with 8-byte entries; otherwise the RSDT, with 4-byte ones.
    let (root, entry_size) = if revision >= 2 && xsdt != 0 {
        (xsdt, 8)
    } else {
        (rsdt, 4)
    };
    let header: [u8; SDT_HEADER] = read_array(memory, root);
    let length = u32::from_le_bytes(header[4..8].try_into().expect("4")) as usize;
    // A table running past the end of the address space is as malformed as a short one.
    if !(SDT_HEADER..=64 * 1024).contains(&length) || root.checked_add(length as u64).is_none() {
        return Err(AcpiError::BadRootTable);
    }
    for i in 0..(length - SDT_HEADER) / entry_size {
        let at = root + (SDT_HEADER + i * entry_size) as u64;
        let table = if entry_size == 8 {
            u64::from_le_bytes(read_array(memory, at))
        } else {
            u64::from(u32::from_le_bytes(read_array(memory, at)))
        };
        let signature: [u8; 8] = read_array(memory, table);
        if &signature[..4] != wanted {
            continue;
        }
        // A table's length as firmware says, bounded: a damaged one cannot send the scan on
        // for gigabytes.
        let length =
            (u32::from_le_bytes(signature[4..8].try_into().expect("4")) as usize).min(64 * 1024);
        if table.checked_add(length as u64).is_none() {
            continue; // past the end of the address space: damaged
        }
        return Ok(Some((table, length)));
    }
    Ok(None)
}

/// The first ECAM window (segment 0) of the MCFG table reached from the RSDP at `rsdp`.
pub fn find_ecam(memory: &impl PhysicalMemory, rsdp: u64) -> Result<EcamWindow, AcpiError> {
    let (table, length) = find_table(memory, rsdp, b"MCFG")?.ok_or(AcpiError::NoMcfg)?;
    // Header, 8 reserved bytes, then 16-byte entries.
    let entries = length.saturating_sub(SDT_HEADER + 8) / 16;
    for e in 0..entries {
        let entry: [u8; 16] = read_array(memory, table + (SDT_HEADER + 8 + e * 16) as u64);
        let window = EcamWindow {
            base: u64::from_le_bytes(entry[..8].try_into().expect("8")),
            segment: u16::from_le_bytes([entry[8], entry[9]]),
            first_bus: entry[10],
            last_bus: entry[11],
        };
        if window.segment == 0 && window.base != 0 {
            return Ok(window);
        }
    }
    Err(AcpiError::NoMcfg)
}

/// The processors the MADT lists as usable (enabled, or online-capable), by local APIC id,
/// in the table's order; at most `N` (the count of the rest is returned too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Processors<const N: usize> {
    pub apic_ids: [u32; N],
    pub count: usize,
    pub dropped: usize,
}

/// The processors of the MADT reached from the RSDP at `rsdp`: its processor local APIC
/// (type 0) and local x2APIC (type 9) entries that are enabled or online-capable.
pub fn find_processors<const N: usize>(
    memory: &impl PhysicalMemory,
    rsdp: u64,
) -> Result<Processors<N>, AcpiError> {
    let (table, length) = find_table(memory, rsdp, b"APIC")?.ok_or(AcpiError::NoMadt)?;
    let mut found = Processors {
        apic_ids: [0; N],
        count: 0,
        dropped: 0,
    };
    // Header, the local APIC address and flags (8 bytes), then variable-length entries.
    let mut at = SDT_HEADER + 8;
    while at + 2 <= length {
        let head: [u8; 16] = read_array(memory, table + at as u64);
        let (kind, size) = (head[0], usize::from(head[1]));
        if size < 2 || at + size > length {
            break; // damaged: what came before stands
        }
        let usable = |flags: u32| flags & 0b11 != 0;
        let id = match kind {
            0 if size >= 8 => usable(u32::from_le_bytes(head[4..8].try_into().expect("4")))
                .then_some(u32::from(head[3])),
            9 if size >= 16 => usable(u32::from_le_bytes(head[8..12].try_into().expect("4")))
                .then(|| u32::from_le_bytes(head[4..8].try_into().expect("4"))),
            _ => None,
        };
        if let Some(id) = id {
            if found.apic_ids[..found.count].contains(&id) {
                // Listed twice (as an xAPIC and an x2APIC): one processor.
            } else if found.count < N {
                found.apic_ids[found.count] = id;
                found.count += 1;
            } else {
                found.dropped += 1;
            }
        }
        at += size;
    }
    Ok(found)
}

/// Where the RSDP is when the boot loader did not say: in the BIOS area `0xe0000..0x100000`
/// on a 16-byte boundary (ACPI 5.2.5.1).
pub fn scan_for_rsdp(memory: &impl PhysicalMemory) -> Option<u64> {
    (0xe_0000..0x10_0000u64).step_by(16).find(|&at| {
        let head: [u8; 20] = read_array(memory, at);
        &head[..8] == b"RSD PTR " && checksum_ok(&head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A sparse physical memory of byte ranges.
    struct Memory(Vec<(u64, Vec<u8>)>);

    impl PhysicalMemory for Memory {
        fn read(&self, address: u64, into: &mut [u8]) {
            into.fill(0);
            for (i, byte) in into.iter_mut().enumerate() {
                let at = address + i as u64;
                for (start, bytes) in &self.0 {
                    if (*start..*start + bytes.len() as u64).contains(&at) {
                        *byte = bytes[(at - start) as usize];
                    }
                }
            }
        }
    }

    fn fix_checksum(bytes: &mut [u8], at: usize, over: usize) {
        bytes[at] = 0;
        let sum = bytes[..over].iter().fold(0u8, |s, b| s.wrapping_add(*b));
        bytes[at] = 0u8.wrapping_sub(sum);
    }

    fn sdt(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(signature);
        t.extend_from_slice(&((SDT_HEADER + body.len()) as u32).to_le_bytes());
        t.resize(SDT_HEADER, 0);
        t.extend_from_slice(body);
        let len = t.len();
        fix_checksum(&mut t, 9, len);
        t
    }

    fn rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(b"RSD PTR ");
        r.push(0); // checksum
        r.extend_from_slice(b"QEMU  ");
        r.push(revision);
        r.extend_from_slice(&rsdt.to_le_bytes());
        r.extend_from_slice(&36u32.to_le_bytes());
        r.extend_from_slice(&xsdt.to_le_bytes());
        r.extend_from_slice(&[0; 4]);
        fix_checksum(&mut r, 8, 20);
        r
    }

    fn mcfg(base: u64, last_bus: u8) -> Vec<u8> {
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&base.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.push(0);
        body.push(last_bus);
        body.extend_from_slice(&[0; 4]);
        sdt(b"MCFG", &body)
    }

    #[test]
    fn the_ecam_window_is_found_through_the_rsdt() {
        let rsdt = sdt(
            b"RSDT",
            &[0x2000u32.to_le_bytes(), 0x3000u32.to_le_bytes()].concat(),
        );
        let memory = Memory(vec![
            (0xf5a40, rsdp(0, 0x1000, 0)),
            (0x1000, rsdt),
            (0x2000, sdt(b"FACP", &[0; 8])),
            (0x3000, mcfg(0xb000_0000, 0xff)),
        ]);
        assert_eq!(scan_for_rsdp(&memory), Some(0xf5a40));
        assert_eq!(
            find_ecam(&memory, 0xf5a40),
            Ok(EcamWindow {
                base: 0xb000_0000,
                segment: 0,
                first_bus: 0,
                last_bus: 0xff
            })
        );
    }

    #[test]
    fn the_xsdt_is_used_from_revision_two() {
        let xsdt = sdt(b"XSDT", &0x3000u64.to_le_bytes());
        // The RSDT points nowhere useful: only the XSDT leads to the MCFG.
        let memory = Memory(vec![
            (0x500, rsdp(2, 0x1000, 0x4000)),
            (0x1000, sdt(b"RSDT", &[])),
            (0x4000, xsdt),
            (0x3000, mcfg(0xe000_0000, 0x3f)),
        ]);
        let window = find_ecam(&memory, 0x500).unwrap();
        assert_eq!((window.base, window.last_bus), (0xe000_0000, 0x3f));
    }

    fn madt(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![0u8; 8];
        for e in entries {
            body.extend_from_slice(e);
        }
        sdt(b"APIC", &body)
    }

    fn local_apic(id: u8, flags: u32) -> Vec<u8> {
        let mut e = vec![0, 8, id, id];
        e.extend_from_slice(&flags.to_le_bytes());
        e
    }

    fn local_x2apic(id: u32, flags: u32) -> Vec<u8> {
        let mut e = vec![9, 16, 0, 0];
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&id.to_le_bytes());
        e
    }

    #[test]
    fn the_madt_lists_usable_processors_once_each() {
        let rsdt = sdt(
            b"RSDT",
            &[0x3000u32.to_le_bytes(), 0x2000u32.to_le_bytes()].concat(),
        );
        let io_apic = vec![1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0];
        let table = madt(&[
            local_apic(0, 1),
            io_apic,
            local_apic(1, 1),
            local_apic(2, 0),   // disabled: not started
            local_apic(3, 2),   // online-capable
            local_x2apic(1, 1), // the same processor as an x2APIC
            local_x2apic(300, 1),
        ]);
        let memory = Memory(vec![
            (0x500, rsdp(0, 0x1000, 0)),
            (0x1000, rsdt),
            (0x3000, mcfg(0xb000_0000, 0xff)),
            (0x2000, table),
        ]);
        let found = find_processors::<8>(&memory, 0x500).unwrap();
        assert_eq!(&found.apic_ids[..found.count], &[0, 1, 3, 300]);
        assert_eq!(found.dropped, 0);
        let few = find_processors::<2>(&memory, 0x500).unwrap();
        assert_eq!(
            (&few.apic_ids[..], few.count, few.dropped),
            (&[0, 1][..], 2, 2)
        );
        // A damaged entry ends the list; what came before stands.
        let broken = madt(&[local_apic(0, 1), vec![0, 0], local_apic(1, 1)]);
        let memory = Memory(vec![
            (0x500, rsdp(0, 0x1000, 0)),
            (0x1000, sdt(b"RSDT", &0x2000u32.to_le_bytes())),
            (0x2000, broken),
        ]);
        let found = find_processors::<8>(&memory, 0x500).unwrap();
        assert_eq!(&found.apic_ids[..found.count], &[0]);
        assert_eq!(
            find_processors::<8>(
                &Memory(vec![
                    (0x500, rsdp(0, 0x1000, 0)),
                    (0x1000, sdt(b"RSDT", &[]))
                ]),
                0x500
            ),
            Err(AcpiError::NoMadt)
        );
    }

    #[test]
    fn bad_tables_are_errors() {
        let mut broken = rsdp(0, 0x1000, 0);
        broken[8] ^= 1;
        let memory = Memory(vec![(0x500, broken)]);
        assert_eq!(find_ecam(&memory, 0x500), Err(AcpiError::BadRsdp));
        assert_eq!(scan_for_rsdp(&memory), None);
        let memory = Memory(vec![
            (0x500, rsdp(0, 0x1000, 0)),
            (0x1000, sdt(b"RSDT", &0x2000u32.to_le_bytes())),
            (0x2000, sdt(b"FACP", &[0; 8])),
        ]);
        assert_eq!(find_ecam(&memory, 0x500), Err(AcpiError::NoMcfg));
        let memory = Memory(vec![(0x500, rsdp(0, 0x1000, 0))]);
        assert_eq!(find_ecam(&memory, 0x500), Err(AcpiError::BadRootTable));
    }
}

//! Property tests of the ACPI reader (the firmware's tables, reached from the RSDP the boot
//! loader names): any memory, and mutations of valid tables, give an ECAM window of segment
//! 0 or a refusal, never a panic; valid tables give the first window of segment 0.

use proptest::prelude::*;

use super::acpi::{find_ecam, scan_for_rsdp, AcpiError, EcamWindow, PhysicalMemory};
use libipc::props::{config, mutate, mutations};

/// Bytes of memory the tables lie in, and where in them each table goes.
const SIZE: usize = 0x2000;
const ROOT: usize = 0x100;
const TABLES: usize = 0x400;
const TABLE_SPACING: usize = 0x200;

/// Physical memory of `bytes` at `base` (possibly at the top of the address space); zeros
/// elsewhere, as unbacked memory reads.
#[derive(Debug)]
struct Memory {
    base: u64,
    bytes: Vec<u8>,
}

impl PhysicalMemory for Memory {
    fn read(&self, address: u64, into: &mut [u8]) {
        for (i, byte) in into.iter_mut().enumerate() {
            *byte = address
                .checked_add(i as u64)
                .and_then(|at| at.checked_sub(self.base))
                .and_then(|at| usize::try_from(at).ok())
                .and_then(|at| self.bytes.get(at).copied())
                .unwrap_or(0);
        }
    }
}

/// Sets `bytes[at]` so that `bytes[..over]` sums to 0.
fn fix_checksum(bytes: &mut [u8], at: usize, over: usize) {
    bytes[at] = 0;
    let sum = bytes[..over].iter().fold(0u8, |s, b| s.wrapping_add(*b));
    bytes[at] = 0u8.wrapping_sub(sum);
}

/// A table: `signature`, its length, the rest of the 36-byte header zero, then `body`.
fn sdt(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut table = signature.to_vec();
    table.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    table.resize(36, 0);
    table.extend_from_slice(body);
    let len = table.len();
    fix_checksum(&mut table, 9, len);
    table
}

/// An MCFG's windows: `(base, segment, first bus, last bus)`.
type Windows = Vec<(u64, u16, u8, u8)>;

/// Valid tables: the RSDP (revision 0 with an RSDT or 2 with an XSDT), the root table, other
/// tables and an MCFG (or none) at a place among them, with its windows.
#[derive(Clone, Debug)]
struct Tables {
    base: u64,
    xsdt: bool,
    others: usize,
    mcfg: Option<(usize, Windows)>,
}

impl Tables {
    /// The memory holding them.
    fn memory(&self) -> Memory {
        let mut bytes = vec![0u8; SIZE];
        let table_at = |i: usize| self.base.wrapping_add((TABLES + i * TABLE_SPACING) as u64);
        let count = self.others + usize::from(self.mcfg.is_some());
        let mut root_body = Vec::new();
        for i in 0..count {
            if self.xsdt {
                root_body.extend_from_slice(&table_at(i).to_le_bytes());
            } else {
                root_body.extend_from_slice(&(table_at(i) as u32).to_le_bytes());
            }
        }
        let root = sdt(if self.xsdt { b"XSDT" } else { b"RSDT" }, &root_body);
        bytes[ROOT..ROOT + root.len()].copy_from_slice(&root);
        let mcfg_index = self.mcfg.as_ref().map(|(at, _)| at % count.max(1));
        for i in 0..count {
            let table = match (&self.mcfg, mcfg_index) {
                (Some((_, windows)), Some(at)) if at == i => {
                    let mut body = vec![0u8; 8];
                    for &(base, segment, first, last) in windows {
                        body.extend_from_slice(&base.to_le_bytes());
                        body.extend_from_slice(&segment.to_le_bytes());
                        body.extend_from_slice(&[first, last, 0, 0, 0, 0]);
                    }
                    sdt(b"MCFG", &body)
                }
                _ => sdt(b"APIC", &[7; 20]),
            };
            let at = TABLES + i * TABLE_SPACING;
            bytes[at..at + table.len()].copy_from_slice(&table);
        }
        let mut rsdp = b"RSD PTR ".to_vec();
        rsdp.push(0);
        rsdp.extend_from_slice(b"QEMU  ");
        rsdp.push(if self.xsdt { 2 } else { 0 });
        let root_address = self.base.wrapping_add(ROOT as u64);
        rsdp.extend_from_slice(&(if self.xsdt { 0 } else { root_address as u32 }).to_le_bytes());
        rsdp.extend_from_slice(&36u32.to_le_bytes());
        rsdp.extend_from_slice(&(if self.xsdt { root_address } else { 0 }).to_le_bytes());
        rsdp.extend_from_slice(&[0; 4]);
        fix_checksum(&mut rsdp, 8, 20);
        bytes[..rsdp.len()].copy_from_slice(&rsdp);
        Memory {
            base: self.base,
            bytes,
        }
    }

    /// What `find_ecam` should find.
    fn expected(&self) -> Result<EcamWindow, AcpiError> {
        self.mcfg
            .iter()
            .flat_map(|(_, windows)| windows)
            .find(|&&(base, segment, ..)| segment == 0 && base != 0)
            .map(|&(base, segment, first_bus, last_bus)| EcamWindow {
                base,
                segment,
                first_bus,
                last_bus,
            })
            .ok_or(AcpiError::NoMcfg)
    }
}

fn tables() -> impl Strategy<Value = Tables> {
    // Low memory for an RSDT (32-bit pointers); for an XSDT, also the top of the address
    // space, where a careless sum of address and offset wraps.
    let placement = prop_oneof![
        Just((0x1000u64, false)),
        Just((0x1000u64, true)),
        Just((u64::MAX - SIZE as u64 + 1, true)),
    ];
    let window = (
        prop_oneof![Just(0u64), any::<u64>()],
        prop_oneof![Just(0u16), any::<u16>()],
        any::<u8>(),
        any::<u8>(),
    );
    (
        placement,
        0usize..4,
        proptest::option::of((0usize..8, proptest::collection::vec(window, 0..5))),
    )
        .prop_map(|((base, xsdt), others, mcfg)| Tables {
            base,
            xsdt,
            others,
            mcfg,
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_tables_give_the_first_window_of_segment_zero(tables in tables()) {
        let memory = tables.memory();
        prop_assert_eq!(find_ecam(&memory, memory.base), tables.expected());
    }

    #[test]
    fn any_memory_gives_a_window_of_segment_zero_or_a_refusal(
        base in prop_oneof![
            Just(0x1000u64),
            Just(u64::MAX - SIZE as u64 + 1)
        ],
        bytes in proptest::collection::vec(any::<u8>(), SIZE),
        signed in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if signed {
            // A valid RSDP over random tables.
            bytes[..8].copy_from_slice(b"RSD PTR ");
            fix_checksum(&mut bytes, 8, 20);
        }
        let memory = Memory { base, bytes };
        if let Ok(window) = find_ecam(&memory, base) {
            prop_assert!(window.segment == 0 && window.base != 0);
        }
    }

    #[test]
    fn tables_at_the_end_of_the_address_space_are_read_or_refused(
        root_from_end in 1usize..80,
        root_length in 36u32..100,
        mcfg_from_end in 8usize..80,
        mcfg_length in 36u32..200,
    ) {
        // A root table, or the MCFG, whose last bytes would lie past the top of the address
        // space: reading them must not wrap around to address 0.
        let base = u64::MAX - SIZE as u64 + 1;
        let mut bytes = vec![0u8; SIZE];
        // Writes what fits below the top.
        let put = |bytes: &mut Vec<u8>, at: usize, value: &[u8]| {
            let at = at.min(SIZE);
            let end = (at + value.len()).min(SIZE);
            bytes[at..end].copy_from_slice(&value[..end - at]);
        };
        let near_root = SIZE - root_from_end;
        let mcfg = SIZE - mcfg_from_end;
        put(&mut bytes, mcfg, b"MCFG");
        put(&mut bytes, mcfg + 4, &mcfg_length.to_le_bytes());
        put(&mut bytes, mcfg + 44, &[0xff; 16]);
        for (root, root_length) in [(ROOT, 44u32), (near_root, root_length)] {
            let mut table = b"XSDT".to_vec();
            table.extend_from_slice(&root_length.to_le_bytes());
            table.resize(36, 0);
            table.extend_from_slice(&base.wrapping_add(mcfg as u64).to_le_bytes());
            put(&mut bytes, root, &table);
            let mut rsdp = b"RSD PTR \0QEMU  \x02\0\0\0\0".to_vec();
            rsdp.extend_from_slice(&36u32.to_le_bytes());
            rsdp.extend_from_slice(&base.wrapping_add(root as u64).to_le_bytes());
            fix_checksum(&mut rsdp, 8, 20);
            put(&mut bytes, 0, &rsdp);
            let memory = Memory {
                base,
                bytes: bytes.clone(),
            };
            if let Ok(window) = find_ecam(&memory, base) {
                prop_assert!(window.segment == 0 && window.base != 0);
            }
        }
    }

    #[test]
    fn mutated_tables_give_a_window_of_segment_zero_or_a_refusal(
        tables in tables(),
        mutations in mutations(),
        rsdp_valid in any::<bool>(),
    ) {
        let mut memory = tables.memory();
        mutate(&mut memory.bytes, &mutations);
        if rsdp_valid && memory.bytes.len() >= 20 {
            fix_checksum(&mut memory.bytes, 8, 20);
        }
        if let Ok(window) = find_ecam(&memory, memory.base) {
            prop_assert!(window.segment == 0 && window.base != 0);
        }
        // The BIOS-area scan reads whatever is there.
        if let Some(at) = scan_for_rsdp(&memory) {
            prop_assert!((0xe_0000..0x10_0000).contains(&at) && at.is_multiple_of(16));
        }
    }
}

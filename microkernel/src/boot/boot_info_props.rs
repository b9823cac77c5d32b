//! Property tests of what reads the boot loader's data: the memory map's normalisation and
//! the `mem=` cap, the command line and module names as copied, QEMU's PVH start info read
//! from (synthetic) physical memory and Limine's responses. Whatever the loader says, none
//! panics, and RAM handed out is RAM nothing else claims.

use ::limine::memory_map::{Entry, EntryType};
use proptest::prelude::*;

use super::limine::{self, Responses};
use super::pvh::{read_start_info, PhysicalMemory, START_INFO_MAGIC};
use super::{
    BootInfo, BootPath, MemoryKind, MemoryRegion, MAX_CMDLINE, MAX_MEMORY_REGIONS, MAX_MODULES,
    MAX_MODULE_NAME,
};
use libipc::props::config;

const PAGE: u64 = 4096;

const KINDS: [MemoryKind; 8] = [
    MemoryKind::Usable,
    MemoryKind::BootloaderReclaimable,
    MemoryKind::AcpiReclaimable,
    MemoryKind::AcpiNvs,
    MemoryKind::KernelAndModules,
    MemoryKind::Framebuffer,
    MemoryKind::Reserved,
    MemoryKind::BadMemory,
];

/// Whether the kind is memory the kernel hands out (after normalisation, in whole pages).
fn allocatable(kind: MemoryKind) -> bool {
    matches!(kind, MemoryKind::Usable | MemoryKind::BootloaderReclaimable)
}

/// A raw region as a loader might report it: mostly in a small range so that regions
/// overlap, sometimes anywhere (up to the top of the address space).
fn raw_region() -> impl Strategy<Value = (u64, u64, MemoryKind)> {
    let start = prop_oneof![
        4 => (0u64..64, 0u64..4).prop_map(|(page, odd)| page * PAGE + odd * 0x400),
        1 => any::<u64>(),
        1 => (0u64..0x10000).prop_map(|below| u64::MAX - below),
    ];
    let len = prop_oneof![
        4 => (0u64..16, 0u64..4).prop_map(|(pages, odd)| pages * PAGE + odd * 0x400),
        1 => any::<u64>(),
    ];
    (start, len, proptest::sample::select(KINDS.to_vec()))
}

/// Whether `[start, end)` is covered by the union of `regions`.
fn covered(start: u64, end: u64, regions: &[(u64, u64)]) -> bool {
    let mut regions = regions.to_vec();
    regions.sort();
    let mut reached = start;
    for (s, e) in regions {
        if s <= reached && e > reached {
            reached = e;
        }
        if reached >= end {
            return true;
        }
    }
    reached >= end
}

/// Checks the invariant of a normalised map against the raw regions it came from: sorted,
/// disjoint, merged, allocatable regions in whole pages, RAM only where nothing stronger
/// claims it, and every byte something stronger claims still claimed (below the map's end
/// if `cut`: pieces past a full table are left out).
fn check_normalized(
    map: &[MemoryRegion],
    raw: &[(u64, u64, MemoryKind)],
    cut: bool,
) -> Result<(), TestCaseError> {
    prop_assert!(map.len() <= MAX_MEMORY_REGIONS);
    for (i, r) in map.iter().enumerate() {
        prop_assert!(r.start < r.end, "{:?} is empty", r);
        if allocatable(r.kind) {
            prop_assert!(
                r.start.is_multiple_of(PAGE) && r.end.is_multiple_of(PAGE),
                "{:?} not whole pages",
                r
            );
        }
        if let Some(next) = map.get(i + 1) {
            prop_assert!(
                r.end <= next.start,
                "{:?} and {:?} overlap or are unsorted",
                r,
                next
            );
            prop_assert!(
                !(r.end == next.start && r.kind == next.kind),
                "{:?} and {:?} not merged",
                r,
                next
            );
        }
        // Everywhere in the region, its kind is the strongest of the raw regions there (the
        // strongest kind changes only at raw boundaries, so those are the points to look at).
        let points = raw
            .iter()
            .flat_map(|&(s, e, _)| [s, e])
            .filter(|&p| r.start < p && p < r.end)
            .chain([r.start]);
        for p in points {
            let strongest = raw
                .iter()
                .filter(|&&(s, e, _)| s <= p && p < e)
                .map(|&(_, _, kind)| kind)
                .max();
            prop_assert_eq!(strongest, Some(r.kind), "at {:#x} in {:?}", p, r);
        }
    }
    // Every byte claimed by a kind stronger than RAM is claimed at least as strongly.
    let bound = if cut {
        map.last().map_or(0, |r| r.end)
    } else {
        u64::MAX
    };
    for &(start, end, kind) in raw.iter().filter(|r| !allocatable(r.2)) {
        let end = end.min(bound);
        if start >= end {
            continue;
        }
        let stronger: Vec<_> = map
            .iter()
            .filter(|r| r.kind >= kind)
            .map(|r| (r.start, r.end))
            .collect();
        prop_assert!(
            covered(start, end, &stronger),
            "{:?} lost",
            (start, end, kind)
        );
    }
    Ok(())
}

/// A fresh `BootInfo` with `raw` regions added, as the boot paths build one.
fn boot_info(raw: &[(u64, u64, MemoryKind)]) -> Box<BootInfo> {
    let mut info = Box::new(BootInfo::new(BootPath::Pvh, 0));
    for &(start, len, kind) in raw {
        info.add_region(start, len, kind);
    }
    info
}

/// How many of `raw` `add_region` refuses (wrapping, or past the table).
fn refused(raw: &[(u64, u64, MemoryKind)]) -> usize {
    let wrapping = raw
        .iter()
        .filter(|r| r.0.checked_add(r.1).is_none())
        .count();
    let fitting = raw
        .iter()
        .filter(|r| r.0.checked_add(r.1).is_some() && r.1 != 0)
        .count();
    wrapping + fitting.saturating_sub(MAX_MEMORY_REGIONS)
}

/// The raw regions `add_region` keeps (non-empty, not wrapping, up to the table's size), as
/// `[start, end)`.
fn kept(raw: &[(u64, u64, MemoryKind)]) -> Vec<(u64, u64, MemoryKind)> {
    raw.iter()
        .filter_map(|&(start, len, kind)| {
            let end = start.checked_add(len)?;
            (len != 0).then_some((start, end, kind))
        })
        .take(MAX_MEMORY_REGIONS)
        .collect()
}

/// Physical memory of `bytes` at `base` (possibly at the very top of the address space);
/// reads elsewhere fail.
#[derive(Debug)]
struct FakeMemory {
    base: u64,
    bytes: Vec<u8>,
}

impl PhysicalMemory for FakeMemory {
    fn read(&self, phys: u64, buf: &mut [u8]) -> bool {
        let Some(at) = phys.checked_sub(self.base) else {
            return false;
        };
        let Ok(at) = usize::try_from(at) else {
            return false;
        };
        match at
            .checked_add(buf.len())
            .and_then(|end| self.bytes.get(at..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

/// Start info at offset 0 of 8 KiB of memory at `base`: QEMU's fields, with the memory
/// map, module list and command line where QEMU puts them (or anywhere in the memory, or
/// anywhere at all), module names in the memory or not, and every other byte random.
fn pvh_memory() -> impl Strategy<Value = FakeMemory> {
    const MEMMAP: u64 = 0x100;
    const MODLIST: u64 = 0xc00;
    const CMDLINE: u64 = 0xd00;
    const NAMES: u64 = 0x1800;
    let base = prop_oneof![Just(0x1000u64), Just(u64::MAX - 0x2000 + 1)];
    let pointer = |usual: u64| {
        prop_oneof![
            4 => Just(Some(usual)),
            1 => (0u64..0x2000).prop_map(Some),
            1 => Just(None),
        ]
    };
    (
        (base, proptest::collection::vec(any::<u8>(), 0x2000)),
        (any::<bool>(), 0u32..3, 0u32..10, 0u32..100),
        (
            pointer(MODLIST),
            pointer(CMDLINE),
            pointer(0),
            pointer(MEMMAP),
        ),
        proptest::collection::vec(any::<bool>(), 8),
    )
        .prop_map(
            |((base, mut bytes), (magic, version, modules, entries), pointers, named)| {
                let mut put = |at: u64, value: &[u8]| {
                    let at = at as usize;
                    bytes[at..at + value.len()].copy_from_slice(value);
                };
                if magic {
                    put(0, &START_INFO_MAGIC.to_le_bytes());
                    put(4, &version.to_le_bytes());
                    put(12, &modules.to_le_bytes());
                    put(48, &entries.to_le_bytes());
                    let (modlist, cmdline, rsdp, memmap) = pointers;
                    // modlist, cmdline, rsdp, memmap: into the memory, or left random.
                    for (field, pointer) in [(16, modlist), (24, cmdline), (32, rsdp), (40, memmap)]
                    {
                        if let Some(offset) = pointer {
                            put(field, &base.wrapping_add(offset).to_le_bytes());
                        }
                    }
                    // Module names (64 bytes apart) for the modules of the usual list.
                    for (i, named) in named.into_iter().enumerate() {
                        if named && modlist == Some(MODLIST) {
                            let name = NAMES + 64 * i as u64;
                            put(
                                MODLIST + 32 * i as u64 + 16,
                                &base.wrapping_add(name).to_le_bytes(),
                            );
                            put(name + 20, &[0]);
                        }
                    }
                    if cmdline == Some(CMDLINE) {
                        put(CMDLINE + 200, &[0]);
                    }
                }
                FakeMemory { base, bytes }
            },
        )
}

/// The Limine memory-map entry type `raw` (0 to 7 are known; the kernel must cope with
/// others).
fn entry_type(raw: u64) -> EntryType {
    // SAFETY: `EntryType` is `repr(transparent)` over a `u64`; every value is a valid bit
    // pattern, and a loader may write any of them.
    unsafe { core::mem::transmute::<u64, EntryType>(raw) }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_regions_normalise_to_a_sorted_disjoint_map_where_ram_is_claimed_by_nothing_else(
        raw in proptest::collection::vec(raw_region(), 0..40),
    ) {
        let mut info = boot_info(&raw);
        prop_assert_eq!(info.regions_dropped(), refused(&raw));
        info.normalize();
        let cut = info.regions_dropped() > refused(&raw);
        check_normalized(info.memory_map(), &kept(&raw), cut)?;
    }

    #[test]
    fn a_full_table_of_regions_normalises_without_overflowing(
        holes in proptest::collection::vec(
            (0u64..4, 1u64..3, 2usize..8),
            MAX_MEMORY_REGIONS
        ),
    ) {
        // One stretch of RAM with many small reserved holes: more pieces than regions in.
        let mut raw = vec![(0u64, 1u64 << 40, MemoryKind::Usable)];
        let mut at = PAGE;
        for (gap, pages, kind) in holes.into_iter().take(MAX_MEMORY_REGIONS - 1) {
            at += gap * PAGE + PAGE;
            raw.push((at, pages * PAGE, KINDS[kind]));
            at += pages * PAGE;
        }
        let mut info = boot_info(&raw);
        info.normalize();
        prop_assert!(
            info.regions_dropped() > 0,
            "more pieces than the table holds"
        );
        check_normalized(info.memory_map(), &kept(&raw), true)?;
    }

    #[test]
    fn the_mem_cap_keeps_the_lowest_ram_up_to_the_limit(
        raw in proptest::collection::vec(raw_region(), 0..40),
        limit in prop_oneof![0u64..0x80000, any::<u64>()],
    ) {
        let mut info = boot_info(&raw);
        info.normalize();
        let before: Vec<MemoryRegion> = info.memory_map().to_vec();
        let total = info.bytes_of(MemoryKind::Usable);
        let left = info.cap_usable(limit);
        prop_assert_eq!(left, total.min(limit & !(PAGE - 1)));
        prop_assert_eq!(left, info.bytes_of(MemoryKind::Usable));
        let after = info.memory_map();
        prop_assert!(after.windows(2).all(|w| w[0].end <= w[1].start));
        // Usable memory only shrank, from the top: what stays usable was usable, and lies
        // below everything that stopped being usable.
        let highest_kept = after
            .iter()
            .filter(|r| r.kind == MemoryKind::Usable)
            .map(|r| r.end)
            .max()
            .unwrap_or(0);
        for r in after {
            let was = before.iter().find(|b| b.start <= r.start && r.end <= b.end);
            prop_assert!(was.is_some(), "{:?} is new", r);
            let was = was.unwrap();
            if r.kind == MemoryKind::Usable {
                prop_assert_eq!(was.kind, MemoryKind::Usable);
            } else if was.kind == MemoryKind::Usable {
                prop_assert_eq!(r.kind, MemoryKind::Reserved);
                prop_assert!(r.start >= highest_kept);
            } else {
                prop_assert_eq!(r.kind, was.kind);
            }
        }
    }

    #[test]
    fn any_command_line_bytes_keep_whole_words_of_valid_text(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2 * MAX_CMDLINE),
            "[a-z= ]{0,1200}".prop_map(String::into_bytes),
        ],
    ) {
        let mut info = Box::new(BootInfo::new(BootPath::Limine, 0));
        info.set_cmdline(&bytes);
        let text = bytes.split(|&b| b == 0).next().unwrap_or(&[]);
        let valid = match core::str::from_utf8(text) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&text[..e.valid_up_to()]).unwrap(),
        };
        let line = info.cmdline();
        prop_assert!(line.len() <= MAX_CMDLINE);
        prop_assert!(
            valid.starts_with(line),
            "{:?} is not where {:?} starts",
            line,
            valid
        );
        if valid.len() <= MAX_CMDLINE {
            prop_assert_eq!(line, valid);
            prop_assert_eq!(info.cmdline_cut(), None);
        } else {
            prop_assert_eq!(info.cmdline_cut(), Some(valid.len()));
            // Cut before a space: no word is kept in part.
            prop_assert!(valid.as_bytes()[line.len()].is_ascii_whitespace());
        }
    }

    #[test]
    fn module_names_are_valid_text_and_the_table_bounded(
        modules in proptest::collection::vec(
            (
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..100)
            ),
            0..12,
        ),
    ) {
        let mut info = Box::new(BootInfo::new(BootPath::Pvh, 0));
        for (i, (phys, len, name)) in modules.iter().enumerate() {
            prop_assert_eq!(info.add_module(*phys, *len, name), i < MAX_MODULES);
        }
        prop_assert_eq!(info.modules().len(), modules.len().min(MAX_MODULES));
        for (module, (phys, len, name)) in info.modules().iter().zip(&modules) {
            prop_assert_eq!((module.phys, module.len), (*phys, *len));
            let kept = module.name();
            prop_assert!(kept.len() <= MAX_MODULE_NAME);
            prop_assert!(kept.is_empty() || name.starts_with(kept.as_bytes()));
        }
    }

    #[test]
    fn any_pvh_start_info_is_read_or_refused(memory in pvh_memory()) {
        let kernel = (0x20_0000, 0x40_0000);
        if let Ok(info) = read_start_info(&memory, memory.base, kernel, 0) {
            prop_assert_eq!(info.path(), BootPath::Pvh);
            prop_assert!(info.modules().len() <= MAX_MODULES);
            prop_assert!(info.cmdline().len() <= MAX_CMDLINE);
            prop_assert_eq!(info.kernel_phys(), kernel.0);
            prop_assert!(info.rsdp() != Some(0));
            // The kernel image is never RAM.
            prop_assert!(info
                .memory_map()
                .iter()
                .filter(|r| allocatable(r.kind))
                .all(|r| r.end <= kernel.0 || kernel.1 <= r.start));
            let map = info.memory_map();
            prop_assert!(map.windows(2).all(|w| w[0].end <= w[1].start));
        }
    }

    #[test]
    fn any_limine_responses_are_read(
        entries in proptest::collection::vec(
            (any::<u64>(), any::<u64>(), 0u64..12),
            0..20
        ),
        line in proptest::collection::vec(any::<u8>(), 0..1100),
        modules in proptest::collection::vec(
            (
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..80)
            ),
            0..10,
        ),
        rsdp in proptest::option::of(any::<u64>()),
        hhdm in any::<u64>(),
        loader in proptest::option::of(("\\PC{0,40}", "\\PC{0,40}")),
    ) {
        let entries: Vec<Entry> = entries
            .into_iter()
            .map(|(base, length, raw)| Entry {
                base,
                length,
                entry_type: entry_type(raw),
            })
            .collect();
        let refs: Vec<&Entry> = entries.iter().collect();
        let modules: Vec<(u64, u64, &[u8])> =
            modules.iter().map(|(v, s, p)| (*v, *s, &p[..])).collect();
        let responses = Responses {
            loader: loader.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
            hhdm_offset: hhdm,
            memory_map: &refs,
            cmdline: &line,
            modules: &modules,
            rsdp,
            kernel_phys: 0x20_0000,
        };
        let info = limine::boot_info(&responses);
        prop_assert_eq!(info.path(), BootPath::Limine);
        prop_assert!(info.loader().len() <= 64);
        prop_assert!(info.modules().len() <= MAX_MODULES);
        let raw: Vec<_> = entries
            .iter()
            .map(|e| (e.base, e.length, limine::kind_of(e.entry_type)))
            .collect();
        let cut = info.regions_dropped() > refused(&raw);
        check_normalized(info.memory_map(), &kept(&raw), cut)?;
    }
}

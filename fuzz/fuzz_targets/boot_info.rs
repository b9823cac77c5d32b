//! Fuzzes what reads the boot loader's and firmware's data: the boot archive, the memory
//! map's normalisation and `mem=` cap, QEMU's PVH start info, Limine's responses and the ACPI
//! tables. The first byte picks which; the rest is the data.
#![no_main]

use decoder_fuzz::boot::limine::{boot_info, Responses};
use decoder_fuzz::boot::pvh::{read_start_info, PhysicalMemory};
use decoder_fuzz::boot::{
    BootInfo, BootPath, MemoryKind, MemoryRegion, MAX_CMDLINE, MAX_MEMORY_REGIONS, MAX_MODULE_NAME,
};
use decoder_fuzz::device::acpi;
use decoder_fuzz::{Result, Unstructured};
use libfuzzer_sys::arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use libipc::abi::archive::{Archive, FILE_ALIGN, NAME_MAX};
use limine::memory_map::{Entry, EntryType};

const PAGE: u64 = 4096;

/// Physical memory: the fuzzer's bytes at `base`.
struct Memory<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl Memory<'_> {
    fn byte(&self, at: u64) -> Option<u8> {
        let offset = usize::try_from(at.checked_sub(self.base)?).ok()?;
        self.bytes.get(offset).copied()
    }
}

impl PhysicalMemory for Memory<'_> {
    fn read(&self, phys: u64, buf: &mut [u8]) -> bool {
        for (i, byte) in buf.iter_mut().enumerate() {
            match phys.checked_add(i as u64).and_then(|at| self.byte(at)) {
                Some(b) => *byte = b,
                None => return false,
            }
        }
        true
    }
}

impl acpi::PhysicalMemory for Memory<'_> {
    fn read(&self, address: u64, into: &mut [u8]) {
        for (i, byte) in into.iter_mut().enumerate() {
            *byte = address
                .checked_add(i as u64)
                .and_then(|at| self.byte(at))
                .unwrap_or(0);
        }
    }
}

/// The normalised map's invariant: sorted, disjoint, merged, RAM in whole pages.
fn check_map(map: &[MemoryRegion]) {
    assert!(map.len() <= MAX_MEMORY_REGIONS);
    for (i, r) in map.iter().enumerate() {
        assert!(r.start < r.end);
        if matches!(
            r.kind,
            MemoryKind::Usable | MemoryKind::BootloaderReclaimable
        ) {
            assert!(r.start.is_multiple_of(PAGE) && r.end.is_multiple_of(PAGE));
        }
        if let Some(next) = map.get(i + 1) {
            assert!(r.end <= next.start && !(r.end == next.start && r.kind == next.kind));
        }
    }
}

fn archive(data: &[u8]) {
    let Ok(archive) = Archive::parse(data) else {
        return;
    };
    let mut end = 0;
    for (i, file) in archive.files().enumerate() {
        assert!(!file.name.is_empty() && file.name.len() <= NAME_MAX);
        assert_eq!(file.offset % FILE_ALIGN, 0);
        assert!(file.offset >= end && file.offset as usize + file.data.len() <= data.len());
        end = file.offset + file.data.len() as u64;
        assert!(archive
            .files()
            .take(i)
            .all(|earlier| earlier.name != file.name));
    }
    assert_eq!(archive.files().count(), archive.len());
}

fn memory_map(u: &mut Unstructured<'_>) -> Result<()> {
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
    let mut info = Box::new(BootInfo::new(BootPath::Pvh, 0));
    let total_before_cap = {
        while !u.is_empty() && u.ratio(15, 16)? {
            let (start, len): (u64, u64) = (u.arbitrary()?, u.arbitrary()?);
            info.add_region(start, len, *u.choose(&KINDS)?);
        }
        info.normalize();
        check_map(info.memory_map());
        info.bytes_of(MemoryKind::Usable)
    };
    let limit: u64 = u.arbitrary()?;
    let left = info.cap_usable(limit);
    assert_eq!(left, total_before_cap.min(limit & !(PAGE - 1)));
    assert!(info.memory_map().windows(2).all(|w| w[0].end <= w[1].start));
    Ok(())
}

fn pvh(u: &mut Unstructured<'_>) -> Result<()> {
    let base = if u.arbitrary()? {
        u64::MAX - 0xffff
    } else {
        0x1000
    };
    let bytes = u.bytes(u.len())?;
    let memory = Memory { base, bytes };
    if let Ok(info) = read_start_info(&memory, base, (0x20_0000, 0x40_0000), 0) {
        check_map(info.memory_map());
        assert!(info.cmdline().len() <= MAX_CMDLINE);
        assert!(info
            .modules()
            .iter()
            .all(|m| m.name().len() <= MAX_MODULE_NAME));
    }
    Ok(())
}

fn limine(u: &mut Unstructured<'_>) -> Result<()> {
    let mut entries = Vec::new();
    for _ in 0..u.int_in_range(0..=40)? {
        let raw: u64 = u.int_in_range(0..=12)?;
        entries.push(Entry {
            base: u.arbitrary()?,
            length: u.arbitrary()?,
            // SAFETY: `EntryType` is `repr(transparent)` over a `u64`; every value is a valid
            // bit pattern, and a loader may write any of them.
            entry_type: unsafe { core::mem::transmute::<u64, EntryType>(raw) },
        });
    }
    let refs: Vec<&Entry> = entries.iter().collect();
    let mut modules = Vec::new();
    for _ in 0..u.int_in_range(0..=10)? {
        modules.push((u.arbitrary()?, u.arbitrary()?, <&[u8]>::arbitrary(u)?));
    }
    let loader: Option<(&str, &str)> = u.arbitrary()?;
    let responses = Responses {
        loader,
        hhdm_offset: u.arbitrary()?,
        memory_map: &refs,
        cmdline: u.arbitrary()?,
        modules: &modules,
        rsdp: u.arbitrary()?,
        kernel_phys: u.arbitrary()?,
    };
    let info = boot_info(&responses);
    check_map(info.memory_map());
    assert!(info.loader().len() <= 64);
    Ok(())
}

fn tables(u: &mut Unstructured<'_>) -> Result<()> {
    let base = if u.arbitrary()? { u64::MAX - 0xffff } else { 0 };
    let rsdp = base.wrapping_add(u.int_in_range(0..=0xff)?);
    let memory = Memory {
        base,
        bytes: u.bytes(u.len())?,
    };
    if let Ok(window) = acpi::find_ecam(&memory, rsdp) {
        assert!(window.segment == 0 && window.base != 0);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let _ = match which % 5 {
        0 => {
            archive(rest);
            Ok(())
        }
        1 => memory_map(&mut u),
        2 => pvh(&mut u),
        3 => limine(&mut u),
        _ => tables(&mut u),
    };
});

//! QEMU direct boot (PVH): reading `hvm_start_info` into a [`BootInfo`].
//!
//! QEMU loads the kernel ELF at its physical addresses, runs the PVH option ROM, and enters
//! the 32-bit stub named by the `XEN_ELFNOTE_PHYS32_ENTRY` note (see `arch::x86_64::entry`)
//! with `ebx` holding the physical address of the start-info structure. The parsing here
//! reads physical memory through a [`PhysicalMemory`] so it runs on synthetic data in tests.

use super::{BootError, BootInfo, BootPath, MemoryKind};

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

/// Longest command line or module name read from the loader.
/// Longest string read (one byte past the longest command line, to see it was longer).
const MAX_STRING: usize = super::MAX_CMDLINE + 1;

/// Read access to physical memory during boot.
pub trait PhysicalMemory {
    /// Fills `buf` from physical address `phys`; false if that memory cannot be read.
    fn read(&self, phys: u64, buf: &mut [u8]) -> bool;
}

/// The address `offset` bytes past `base`: pointers come from the loader, and one that
/// runs past the end of the address space points at nothing readable.
fn field(base: u64, offset: u64) -> Result<u64, BootError> {
    base.checked_add(offset).ok_or(BootError::Unreadable(base))
}

fn read_u32(mem: &impl PhysicalMemory, phys: u64) -> Result<u32, BootError> {
    let mut b = [0; 4];
    mem.read(phys, &mut b)
        .then_some(u32::from_le_bytes(b))
        .ok_or(BootError::Unreadable(phys))
}

fn read_u64(mem: &impl PhysicalMemory, phys: u64) -> Result<u64, BootError> {
    let mut b = [0; 8];
    mem.read(phys, &mut b)
        .then_some(u64::from_le_bytes(b))
        .ok_or(BootError::Unreadable(phys))
}

/// Reads a NUL-terminated string of at most `buf.len()` bytes; returns its length.
fn read_cstr(mem: &impl PhysicalMemory, phys: u64, buf: &mut [u8]) -> Result<usize, BootError> {
    for (i, byte) in buf.iter_mut().enumerate() {
        let mut b = [0];
        let at = field(phys, i as u64)?;
        if !mem.read(at, &mut b) {
            return Err(BootError::Unreadable(at));
        }
        if b[0] == 0 {
            return Ok(i);
        }
        *byte = b[0];
    }
    Ok(buf.len())
}

/// E820 memory type to our kind.
fn e820_kind(kind: u32) -> MemoryKind {
    match kind {
        1 => MemoryKind::Usable,
        3 => MemoryKind::AcpiReclaimable,
        4 => MemoryKind::AcpiNvs,
        5 => MemoryKind::BadMemory,
        _ => MemoryKind::Reserved,
    }
}

/// Fills `info` from the start-info structure at `start_info`.
///
/// `kernel` is the physical range of the loaded kernel image; it is recorded as
/// [`MemoryKind::KernelAndModules`], as are the modules, so they are never allocated.
pub fn read_start_info(
    mem: &impl PhysicalMemory,
    start_info: u64,
    kernel: (u64, u64),
    hhdm_offset: u64,
) -> Result<BootInfo, BootError> {
    let magic = read_u32(mem, start_info)?;
    if magic != START_INFO_MAGIC {
        return Err(BootError::BadMagic(magic));
    }
    let version = read_u32(mem, field(start_info, 4)?)?;
    let nr_modules = read_u32(mem, field(start_info, 12)?)?;
    let modlist = read_u64(mem, field(start_info, 16)?)?;
    let cmdline = read_u64(mem, field(start_info, 24)?)?;
    let rsdp = read_u64(mem, field(start_info, 32)?)?;
    if version < 1 {
        // Version 0 has no memory map; QEMU's PVH option ROM always writes version 1.
        return Err(BootError::NoMemoryMap);
    }
    let memmap = read_u64(mem, field(start_info, 40)?)?;
    let memmap_entries = read_u32(mem, field(start_info, 48)?)?;
    if memmap == 0 || memmap_entries == 0 {
        return Err(BootError::NoMemoryMap);
    }

    let mut info = BootInfo::new(BootPath::Pvh, hhdm_offset);
    info.set_loader("QEMU PVH direct boot");
    for i in 0..u64::from(memmap_entries) {
        let entry = field(memmap, i * 24)?;
        let addr = read_u64(mem, entry)?;
        let size = read_u64(mem, field(entry, 8)?)?;
        let kind = read_u32(mem, field(entry, 16)?)?;
        info.add_region(addr, size, e820_kind(kind));
    }
    info.add_region(kernel.0, kernel.1 - kernel.0, MemoryKind::KernelAndModules);
    info.set_kernel_phys(kernel.0);

    let mut text = [0u8; MAX_STRING];
    if cmdline != 0 {
        let n = read_cstr(mem, cmdline, &mut text)?;
        info.set_cmdline(&text[..n]);
    }
    for i in 0..u64::from(nr_modules) {
        let entry = field(modlist, i * 32)?;
        let paddr = read_u64(mem, entry)?;
        let size = read_u64(mem, field(entry, 8)?)?;
        let name_paddr = read_u64(mem, field(entry, 16)?)?;
        let n = if name_paddr != 0 {
            read_cstr(mem, name_paddr, &mut text[..64])?
        } else {
            0
        };
        info.add_region(paddr, size, MemoryKind::KernelAndModules);
        info.add_module(paddr, size, &text[..n]);
    }
    info.set_rsdp(Some(rsdp));
    info.normalize();
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Physical memory as a byte vector starting at address 0.
    struct FakeMemory(Vec<u8>);

    impl FakeMemory {
        fn new() -> Self {
            FakeMemory(vec![0; 0x10000])
        }
        fn put(&mut self, at: u64, bytes: &[u8]) {
            self.0[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
        }
        fn put32(&mut self, at: u64, v: u32) {
            self.put(at, &v.to_le_bytes());
        }
        fn put64(&mut self, at: u64, v: u64) {
            self.put(at, &v.to_le_bytes());
        }
    }

    impl PhysicalMemory for FakeMemory {
        fn read(&self, phys: u64, buf: &mut [u8]) -> bool {
            let Some(src) = self.0.get(phys as usize..phys as usize + buf.len()) else {
                return false;
            };
            buf.copy_from_slice(src);
            true
        }
    }

    /// What QEMU 7.2's option ROM writes for `-m 128M -append "test=all" -initrd archive`.
    fn qemu_like() -> FakeMemory {
        let mut m = FakeMemory::new();
        let si = 0x1000;
        m.put32(si, START_INFO_MAGIC);
        m.put32(si + 4, 1);
        m.put32(si + 12, 1); // nr_modules
        m.put64(si + 16, 0x3000); // modlist
        m.put64(si + 24, 0x2000); // cmdline
        m.put64(si + 32, 0xf5a40); // rsdp
        m.put64(si + 40, 0x4000); // memmap
        m.put32(si + 48, 3);
        m.put(0x2000, b"test=all mem=64M\0");
        m.put64(0x3000, 0x7f00000);
        m.put64(0x3008, 0x12345);
        m.put64(0x3010, 0x5000);
        m.put(0x5000, b"archive\0");
        let e820 = [
            (0u64, 0x9fc00u64, 1u32),
            (0xf0000, 0x10000, 2),
            (0x100000, 0x7f00000, 1),
        ];
        for (i, (addr, size, kind)) in e820.into_iter().enumerate() {
            let at = 0x4000 + 24 * i as u64;
            m.put64(at, addr);
            m.put64(at + 8, size);
            m.put32(at + 16, kind);
        }
        m
    }

    #[test]
    fn a_command_line_longer_than_kept_is_cut_at_a_word_and_noticed() {
        let mut m = qemu_like();
        // 2,200 bytes: the reader stops one byte past the limit and the line keeps its
        // whole words.
        let mut long = "init=hello ".repeat(200).into_bytes();
        long.push(0);
        m.put(0x8000, &long);
        m.put64(0x1000 + 24, 0x8000);
        let info =
            read_start_info(&m, 0x1000, (0x200000, 0x400000), 0xffff_8000_0000_0000).unwrap();
        assert_eq!(info.cmdline_cut(), Some(super::super::MAX_CMDLINE + 1));
        assert!(
            info.cmdline().split(' ').all(|w| w == "init=hello"),
            "{}",
            info.cmdline()
        );
    }

    #[test]
    fn reads_what_qemu_provides() {
        let m = qemu_like();
        let info =
            read_start_info(&m, 0x1000, (0x200000, 0x400000), 0xffff_8000_0000_0000).unwrap();
        assert_eq!(info.path(), BootPath::Pvh);
        assert_eq!(info.cmdline(), "test=all mem=64M");
        assert_eq!(info.rsdp(), Some(0xf5a40));
        assert_eq!(info.kernel_phys(), 0x200000);
        assert_eq!(info.modules().len(), 1);
        assert_eq!(info.modules()[0].name(), "archive");
        assert_eq!(
            (info.modules()[0].phys, info.modules()[0].len),
            (0x7f00000, 0x12345)
        );
        let kinds: Vec<_> = info
            .memory_map()
            .iter()
            .map(|r| (r.start, r.end, r.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (0, 0x9f000, MemoryKind::Usable),
                (0xf0000, 0x100000, MemoryKind::Reserved),
                (0x100000, 0x200000, MemoryKind::Usable),
                (0x200000, 0x400000, MemoryKind::KernelAndModules),
                (0x400000, 0x7f00000, MemoryKind::Usable),
                (0x7f00000, 0x7f12345, MemoryKind::KernelAndModules),
                (0x7f13000, 0x8000000, MemoryKind::Usable),
            ]
        );
    }

    #[test]
    fn bad_magic_is_an_error() {
        let mut m = qemu_like();
        m.put32(0x1000, 0xdeadbeef);
        assert_eq!(
            read_start_info(&m, 0x1000, (0, 0), 0).err(),
            Some(BootError::BadMagic(0xdeadbeef))
        );
    }

    #[test]
    fn version_zero_has_no_memory_map() {
        let mut m = qemu_like();
        m.put32(0x1004, 0);
        assert_eq!(
            read_start_info(&m, 0x1000, (0, 0), 0).err(),
            Some(BootError::NoMemoryMap)
        );
    }

    #[test]
    fn pointers_outside_memory_are_reported() {
        let mut m = qemu_like();
        m.put64(0x1000 + 40, 0x1_0000_0000);
        assert_eq!(
            read_start_info(&m, 0x1000, (0, 0), 0).err(),
            Some(BootError::Unreadable(0x1_0000_0000))
        );
    }

    #[test]
    fn missing_cmdline_is_empty() {
        let mut m = qemu_like();
        m.put64(0x1000 + 24, 0);
        let info = read_start_info(&m, 0x1000, (0x200000, 0x400000), 0).unwrap();
        assert_eq!(info.cmdline(), "");
    }
}

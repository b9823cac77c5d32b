//! The Limine boot protocol: requests placed in the kernel image, and their responses read
//! into a [`BootInfo`].
//!
//! The conversion works on plain values ([`Responses`]) so it is tested on the host with
//! synthetic memory maps; only [`requests`] touches the real protocol structures.

use super::{BootInfo, BootPath, MemoryKind};
use limine::memory_map::{Entry, EntryType};

/// What the Limine responses said, as plain values.
pub struct Responses<'a> {
    /// The loader's name and version.
    pub loader: Option<(&'a str, &'a str)>,
    pub hhdm_offset: u64,
    pub memory_map: &'a [&'a Entry],
    pub cmdline: &'a [u8],
    /// Loaded modules: (virtual address in the HHDM, size, path).
    pub modules: &'a [(u64, u64, &'a [u8])],
    /// RSDP address as reported: physical in base revision 3, an HHDM address before.
    pub rsdp: Option<u64>,
    /// Physical base of the kernel image.
    pub kernel_phys: u64,
}

/// Limine memory-map type to our kind.
pub fn kind_of(entry_type: EntryType) -> MemoryKind {
    match entry_type {
        EntryType::USABLE => MemoryKind::Usable,
        EntryType::ACPI_RECLAIMABLE => MemoryKind::AcpiReclaimable,
        EntryType::ACPI_NVS => MemoryKind::AcpiNvs,
        EntryType::BAD_MEMORY => MemoryKind::BadMemory,
        EntryType::BOOTLOADER_RECLAIMABLE => MemoryKind::BootloaderReclaimable,
        EntryType::EXECUTABLE_AND_MODULES => MemoryKind::KernelAndModules,
        EntryType::FRAMEBUFFER => MemoryKind::Framebuffer,
        _ => MemoryKind::Reserved,
    }
}

/// Builds the boot information from Limine's responses.
pub fn boot_info(r: &Responses<'_>) -> BootInfo {
    let mut info = BootInfo::new(BootPath::Limine, r.hhdm_offset);
    if let Some((name, version)) = r.loader {
        let mut buf = [0u8; 64];
        let mut w = Cursor {
            buf: &mut buf,
            len: 0,
        };
        let _ = core::fmt::write(&mut w, format_args!("{name} {version}"));
        let len = w.len;
        info.set_loader(core::str::from_utf8(&buf[..len]).unwrap_or(name));
    }
    for entry in r.memory_map {
        info.add_region(entry.base, entry.length, kind_of(entry.entry_type));
    }
    info.set_cmdline(r.cmdline);
    for &(virt, size, path) in r.modules {
        let phys = virt.wrapping_sub(r.hhdm_offset);
        let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
        info.add_module(phys, size, name);
    }
    info.set_rsdp(r.rsdp.map(|a| {
        if a >= r.hhdm_offset {
            a - r.hhdm_offset
        } else {
            a
        }
    }));
    info.set_kernel_phys(r.kernel_phys);
    info.normalize();
    info
}

/// A `fmt::Write` into a byte buffer that truncates.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The processors of Limine's MP response to start, in its order: every one but the CPU
/// running this (APIC id `me`, which the response lists too, anywhere), and no more than
/// make `limit` CPUs with it. `lapic_id` reads an entry's APIC id.
pub fn application_processors<T>(
    cpus: impl IntoIterator<Item = T>,
    lapic_id: impl Fn(&T) -> u32,
    me: u32,
    limit: usize,
) -> impl Iterator<Item = T> {
    cpus.into_iter()
        .filter(move |cpu| lapic_id(cpu) != me)
        .take(limit.saturating_sub(1))
}

/// The requests Limine answers, placed between the start and end markers in `.requests`.
#[cfg(target_os = "none")]
pub mod requests {
    use limine::request::*;
    use limine::BaseRevision;

    /// Limine 8.x supports base revision 2 (it reports 3 as unsupported).
    #[used]
    #[link_section = ".requests"]
    pub static BASE_REVISION: BaseRevision = BaseRevision::with_revision(2);

    #[used]
    #[link_section = ".requests_start_marker"]
    static START: RequestsStartMarker = RequestsStartMarker::new();
    #[used]
    #[link_section = ".requests_end_marker"]
    static END: RequestsEndMarker = RequestsEndMarker::new();

    #[used]
    #[link_section = ".requests"]
    pub static BOOTLOADER_INFO: BootloaderInfoRequest = BootloaderInfoRequest::new();
    #[used]
    #[link_section = ".requests"]
    pub static HHDM: HhdmRequest = HhdmRequest::new();
    #[used]
    #[link_section = ".requests"]
    pub static MEMORY_MAP: MemoryMapRequest = MemoryMapRequest::new();
    #[used]
    #[link_section = ".requests"]
    pub static CMDLINE: ExecutableCmdlineRequest = ExecutableCmdlineRequest::new();
    #[used]
    #[link_section = ".requests"]
    pub static MODULES: ModuleRequest = ModuleRequest::new();
    #[used]
    #[link_section = ".requests"]
    pub static RSDP: RsdpRequest = RsdpRequest::new();
    #[used]
    #[link_section = ".requests"]
    pub static EXECUTABLE_ADDRESS: ExecutableAddressRequest = ExecutableAddressRequest::new();
    /// The application processors, which Limine starts and parks until `kern::cpus` sends
    /// each to the kernel.
    #[used]
    #[link_section = ".requests"]
    pub static MP: MpRequest = MpRequest::new();

    /// Reads the responses into a [`BootInfo`](super::BootInfo); `Err` names what is missing.
    pub fn collect() -> Result<super::BootInfo, &'static str> {
        if !BASE_REVISION.is_supported() {
            return Err("the boot loader does not support Limine base revision 2");
        }
        let hhdm = HHDM.get_response().ok_or("no HHDM response")?.offset();
        let memory_map = MEMORY_MAP
            .get_response()
            .ok_or("no memory map response")?
            .entries();
        let kernel = EXECUTABLE_ADDRESS
            .get_response()
            .ok_or("no executable address response")?;
        let mut modules = [(0u64, 0u64, &[][..]); super::super::MAX_MODULES];
        let mut module_count = 0;
        if let Some(response) = MODULES.get_response() {
            for file in response.modules().iter().take(modules.len()) {
                modules[module_count] = (file.addr() as u64, file.size(), file.path().to_bytes());
                module_count += 1;
            }
        }
        let loader = BOOTLOADER_INFO
            .get_response()
            .map(|r| (r.name(), r.version()));
        let responses = super::Responses {
            loader,
            hhdm_offset: hhdm,
            memory_map,
            cmdline: CMDLINE
                .get_response()
                .map(|r| r.cmdline().to_bytes())
                .unwrap_or(&[]),
            modules: &modules[..module_count],
            rsdp: RSDP.get_response().map(|r| r.address() as u64),
            kernel_phys: kernel.physical_base(),
        };
        Ok(super::boot_info(&responses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HHDM: u64 = 0xffff_8000_0000_0000;

    fn entry(base: u64, length: u64, entry_type: EntryType) -> Entry {
        Entry {
            base,
            length,
            entry_type,
        }
    }

    /// A memory map like Limine 8 reports under SeaBIOS with `-m 256M`.
    fn bios_like() -> Vec<Entry> {
        vec![
            entry(0x1000, 0x9e000, EntryType::USABLE),
            entry(0x9fc00, 0x400, EntryType::RESERVED),
            entry(0xf0000, 0x10000, EntryType::RESERVED),
            entry(0x100000, 0x6f00000, EntryType::USABLE),
            entry(0x7000000, 0x200000, EntryType::EXECUTABLE_AND_MODULES),
            entry(0x7200000, 0xd00000, EntryType::BOOTLOADER_RECLAIMABLE),
            entry(0x7f00000, 0xe0000, EntryType::USABLE),
            entry(0x7fe0000, 0x20000, EntryType::RESERVED),
            entry(0xb0000000, 0x10000000, EntryType::RESERVED),
            entry(0xfd000000, 0x300000, EntryType::FRAMEBUFFER),
        ]
    }

    fn responses<'a>(map: &'a [&'a Entry], modules: &'a [(u64, u64, &'a [u8])]) -> Responses<'a> {
        Responses {
            loader: Some(("Limine", "8.7.0")),
            hhdm_offset: HHDM,
            memory_map: map,
            cmdline: b"test=all",
            modules,
            rsdp: Some(HHDM + 0xf52e0),
            kernel_phys: 0x7000000,
        }
    }

    #[test]
    fn converts_a_bios_memory_map() {
        let map = bios_like();
        let refs: Vec<&Entry> = map.iter().collect();
        let info = boot_info(&responses(&refs, &[]));
        assert_eq!(info.path(), BootPath::Limine);
        assert_eq!(info.hhdm_offset(), HHDM);
        assert_eq!(info.loader(), "Limine 8.7.0");
        assert_eq!(info.cmdline(), "test=all");
        assert_eq!(info.kernel_phys(), 0x7000000);
        assert_eq!(
            info.bytes_of(MemoryKind::Usable),
            0x9e000 + 0x6f00000 + 0xe0000
        );
        assert_eq!(info.bytes_of(MemoryKind::BootloaderReclaimable), 0xd00000);
        assert_eq!(info.bytes_of(MemoryKind::KernelAndModules), 0x200000);
        assert_eq!(info.bytes_of(MemoryKind::Framebuffer), 0x300000);
        let starts: Vec<u64> = info.memory_map().iter().map(|r| r.start).collect();
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rsdp_is_physical_in_either_revision() {
        let map = bios_like();
        let refs: Vec<&Entry> = map.iter().collect();
        let mut r = responses(&refs, &[]);
        assert_eq!(boot_info(&r).rsdp(), Some(0xf52e0));
        r.rsdp = Some(0xf52e0);
        assert_eq!(boot_info(&r).rsdp(), Some(0xf52e0));
        r.rsdp = None;
        assert_eq!(boot_info(&r).rsdp(), None);
    }

    #[test]
    fn modules_become_physical_with_their_file_name() {
        let map = bios_like();
        let refs: Vec<&Entry> = map.iter().collect();
        let modules = [(HHDM + 0x7100000, 0x4242, &b"/boot/archive"[..])];
        let info = boot_info(&responses(&refs, &modules));
        assert_eq!(info.modules().len(), 1);
        assert_eq!(info.modules()[0].phys, 0x7100000);
        assert_eq!(info.modules()[0].len, 0x4242);
        assert_eq!(info.modules()[0].name(), "archive");
    }

    #[test]
    fn application_processors_are_all_but_this_one_up_to_the_limit() {
        // An MP response as Limine gives it: (processor id, APIC id), the boot CPU anywhere,
        // x2APIC ids past 255 included.
        let cpus = [(0, 4), (1, 0), (2, 1), (3, 300)];
        let start = |me, limit| -> Vec<u32> {
            application_processors(cpus.iter(), |c| c.1, me, limit)
                .map(|c| c.1)
                .collect()
        };
        assert_eq!(start(0, 8), [4, 1, 300]);
        assert_eq!(start(4, 8), [0, 1, 300]);
        assert_eq!(start(0, 3), [4, 1]);
        assert_eq!(start(0, 1), [] as [u32; 0]);
        assert_eq!(start(0, 0), [] as [u32; 0]);
        // A response that does not list this CPU: the others, still one fewer than the limit.
        assert_eq!(start(9, 3), [4, 0]);
    }

    #[test]
    fn unknown_entry_types_are_reserved() {
        // A type this kernel does not know (from a newer protocol) must never become usable.
        // SAFETY: `EntryType` is `repr(transparent)` over a `u64`; every value is a valid
        // bit pattern, and a loader may write any of them.
        let unknown: EntryType = unsafe { core::mem::transmute::<u64, EntryType>(99) };
        assert_eq!(kind_of(unknown), MemoryKind::Reserved);
    }
}

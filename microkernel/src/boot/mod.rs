//! Boot information: what either boot path (Limine or QEMU's PVH direct boot) tells the kernel,
//! normalised into one [`BootInfo`].
//!
//! The kernel has no heap when this is built, so everything lives in fixed-capacity arrays
//! sized well beyond what firmware reports (QEMU gives under ten memory regions).

pub mod cmdline;
pub mod limine;
pub mod pvh;

#[cfg(test)]
mod boot_info_props;
#[cfg(test)]
mod cmdline_props;

use core::fmt;

/// Most memory-map regions kept; firmware maps with more are truncated with a warning.
pub const MAX_MEMORY_REGIONS: usize = 128;
/// Most boot modules kept.
pub const MAX_MODULES: usize = 8;
/// Longest command line kept, in bytes (`cargo image` refuses longer ones).
pub const MAX_CMDLINE: usize = libipc::abi::syscall::KERNEL_CMDLINE_MAX;
/// Longest module name kept, in bytes.
pub const MAX_MODULE_NAME: usize = 64;

const PAGE_SIZE: u64 = 4096;

/// What a range of physical memory is. Order matters: where firmware reports overlapping
/// regions, the later variant wins, so RAM is never handed out if anything else claims it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemoryKind {
    /// Free RAM the kernel may use.
    Usable,
    /// Used by the bootloader until the kernel has copied what it needs; usable afterwards.
    BootloaderReclaimable,
    /// ACPI tables; reclaimable once parsed.
    AcpiReclaimable,
    /// ACPI non-volatile storage: never touch.
    AcpiNvs,
    /// The kernel image and the boot modules.
    KernelAndModules,
    /// A framebuffer.
    Framebuffer,
    /// Reserved by firmware or hardware.
    Reserved,
    /// Reported as defective.
    BadMemory,
}

/// A range `[start, end)` of physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub end: u64,
    pub kind: MemoryKind,
}

impl MemoryRegion {
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    pub const fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// How the kernel was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootPath {
    /// Limine boot protocol (ISO under BIOS or UEFI).
    Limine,
    /// QEMU direct boot through the PVH entry note.
    Pvh,
}

impl fmt::Display for BootPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BootPath::Limine => "limine",
            BootPath::Pvh => "pvh",
        })
    }
}

/// A file the bootloader loaded next to the kernel (the boot archive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    pub phys: u64,
    pub len: u64,
    name: [u8; MAX_MODULE_NAME],
    name_len: usize,
}

impl Module {
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }
}

/// Why a boot path could not describe the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The PVH start-info structure has the wrong magic number.
    BadMagic(u32),
    /// The boot path gave no memory map.
    NoMemoryMap,
    /// A pointer from the loader points at memory that cannot be read.
    Unreadable(u64),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::BadMagic(m) => write!(f, "PVH start info has bad magic {m:#x}"),
            BootError::NoMemoryMap => f.write_str("the boot loader gave no memory map"),
            BootError::Unreadable(a) => write!(f, "boot data at {a:#x} cannot be read"),
        }
    }
}

/// Everything the kernel learns from its boot path.
///
/// Invariant after [`BootInfo::normalize`]: regions are sorted, do not overlap, adjacent
/// regions of one kind are merged, and usable regions are page-aligned.
pub struct BootInfo {
    path: BootPath,
    hhdm_offset: u64,
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    region_count: usize,
    regions_dropped: usize,
    modules: [Module; MAX_MODULES],
    module_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// The length of a command line too long to keep whole (only its whole words are).
    cmdline_cut: Option<usize>,
    rsdp: Option<u64>,
    kernel_phys: u64,
    loader: [u8; 64],
    loader_len: usize,
}

const EMPTY_REGION: MemoryRegion = MemoryRegion {
    start: 0,
    end: 0,
    kind: MemoryKind::Reserved,
};
const EMPTY_MODULE: Module = Module {
    phys: 0,
    len: 0,
    name: [0; MAX_MODULE_NAME],
    name_len: 0,
};

fn copy_truncated(dst: &mut [u8], src: &[u8]) -> usize {
    let mut n = src.len().min(dst.len());
    // Cut on a character boundary so the copy stays valid UTF-8 when the source was.
    while n > 0 && n < src.len() && (src[n] & 0xc0) == 0x80 {
        n -= 1;
    }
    dst[..n].copy_from_slice(&src[..n]);
    n
}

impl BootInfo {
    /// An empty description; `hhdm_offset` is where all physical memory is mapped.
    pub const fn new(path: BootPath, hhdm_offset: u64) -> Self {
        BootInfo {
            path,
            hhdm_offset,
            regions: [EMPTY_REGION; MAX_MEMORY_REGIONS],
            region_count: 0,
            regions_dropped: 0,
            modules: [EMPTY_MODULE; MAX_MODULES],
            module_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            cmdline_cut: None,
            rsdp: None,
            kernel_phys: 0,
            loader: [0; 64],
            loader_len: 0,
        }
    }

    pub fn path(&self) -> BootPath {
        self.path
    }

    /// Virtual address at which physical address 0 is mapped.
    pub fn hhdm_offset(&self) -> u64 {
        self.hhdm_offset
    }

    /// Records a raw region as the firmware reported it; call [`normalize`](Self::normalize)
    /// once all are in.
    pub fn add_region(&mut self, start: u64, len: u64, kind: MemoryKind) {
        let Some(end) = start.checked_add(len) else {
            self.regions_dropped += 1;
            return;
        };
        if len == 0 {
            return;
        }
        if self.region_count == MAX_MEMORY_REGIONS {
            self.regions_dropped += 1;
            return;
        }
        self.regions[self.region_count] = MemoryRegion { start, end, kind };
        self.region_count += 1;
    }

    /// Sorts the regions, resolves overlaps (the stronger kind wins, see [`MemoryKind`]),
    /// merges neighbours of one kind and trims usable regions to whole pages.
    pub fn normalize(&mut self) {
        let raw_count = self.region_count;
        let raw = self.regions;
        // Elementary intervals between all region boundaries.
        let mut points = [0u64; 2 * MAX_MEMORY_REGIONS];
        for (i, r) in raw[..raw_count].iter().enumerate() {
            points[2 * i] = r.start;
            points[2 * i + 1] = r.end;
        }
        let points = &mut points[..2 * raw_count];
        points.sort_unstable();
        let mut out = 0;
        for pair in points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a == b {
                continue;
            }
            let kind = raw[..raw_count]
                .iter()
                .filter(|r| r.start <= a && b <= r.end)
                .map(|r| r.kind)
                .max();
            let Some(kind) = kind else { continue };
            if out > 0 && self.regions[out - 1].end == a && self.regions[out - 1].kind == kind {
                self.regions[out - 1].end = b;
            } else if out == MAX_MEMORY_REGIONS {
                // Overlaps can cut n regions into up to 2n - 1 pieces: those past the table
                // are left out (memory not in the map is never handed out) and counted.
                self.regions_dropped += 1;
            } else {
                self.regions[out] = MemoryRegion {
                    start: a,
                    end: b,
                    kind,
                };
                out += 1;
            }
        }
        // Usable memory in whole pages only; the slivers are left out of the map.
        let mut kept = 0;
        for i in 0..out {
            let mut r = self.regions[i];
            if r.kind == MemoryKind::Usable || r.kind == MemoryKind::BootloaderReclaimable {
                // A region in the last page of the address space has no whole page.
                let Some(start) = r.start.checked_next_multiple_of(PAGE_SIZE) else {
                    continue;
                };
                let end = r.end & !(PAGE_SIZE - 1);
                if start >= end {
                    continue;
                }
                r.start = start;
                r.end = end;
            }
            self.regions[kept] = r;
            kept += 1;
        }
        self.region_count = kept;
    }

    /// The memory map (normalised once [`normalize`](Self::normalize) ran).
    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    /// Regions the firmware reported that did not fit or were malformed.
    pub fn regions_dropped(&self) -> usize {
        self.regions_dropped
    }

    /// Total bytes of one kind.
    pub fn bytes_of(&self, kind: MemoryKind) -> u64 {
        self.memory_map()
            .iter()
            .filter(|r| r.kind == kind)
            .map(MemoryRegion::len)
            .sum()
    }

    /// Caps usable RAM at `limit` bytes (the `mem=` option): usable regions are kept from the
    /// lowest address up; what lies beyond the cap is marked reserved. Returns the usable
    /// bytes left.
    pub fn cap_usable(&mut self, limit: u64) -> u64 {
        let mut left = limit & !(PAGE_SIZE - 1);
        let mut i = 0;
        while i < self.region_count {
            let r = self.regions[i];
            if r.kind == MemoryKind::Usable {
                if r.len() <= left {
                    left -= r.len();
                } else if left == 0 {
                    self.regions[i].kind = MemoryKind::Reserved;
                } else {
                    // Split: the first `left` bytes stay usable.
                    self.regions[i].end = r.start + left;
                    if self.region_count < MAX_MEMORY_REGIONS {
                        self.regions.copy_within(i + 1..self.region_count, i + 2);
                        self.regions[i + 1] = MemoryRegion {
                            start: r.start + left,
                            end: r.end,
                            kind: MemoryKind::Reserved,
                        };
                        self.region_count += 1;
                        i += 1;
                    }
                    left = 0;
                }
            }
            i += 1;
        }
        self.bytes_of(MemoryKind::Usable)
    }

    /// Copies the command line; invalid UTF-8 is cut at the first bad byte. A line longer
    /// than [`MAX_CMDLINE`] keeps only the words that fit whole (a cut word could name
    /// another program or size), and [`cmdline_cut`](Self::cmdline_cut) says how long it
    /// was (at least; a reader that stopped at the limit passes one byte more).
    pub fn set_cmdline(&mut self, bytes: &[u8]) {
        let bytes = bytes.split(|b| *b == 0).next().unwrap_or(&[]);
        let bytes = match core::str::from_utf8(bytes) {
            Ok(s) => s.as_bytes(),
            Err(e) => &bytes[..e.valid_up_to()],
        };
        self.cmdline_cut = None;
        let bytes = if bytes.len() > MAX_CMDLINE {
            self.cmdline_cut = Some(bytes.len());
            let end = if bytes[MAX_CMDLINE].is_ascii_whitespace() {
                MAX_CMDLINE
            } else {
                bytes[..MAX_CMDLINE]
                    .iter()
                    .rposition(u8::is_ascii_whitespace)
                    .unwrap_or(0)
            };
            &bytes[..end]
        } else {
            bytes
        };
        self.cmdline_len = copy_truncated(&mut self.cmdline, bytes);
    }

    /// The length of a command line too long to keep whole, if it was.
    pub fn cmdline_cut(&self) -> Option<usize> {
        self.cmdline_cut
    }

    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// Records a boot module; returns false if the table is full.
    pub fn add_module(&mut self, phys: u64, len: u64, name: &[u8]) -> bool {
        if self.module_count == MAX_MODULES {
            return false;
        }
        let mut module = Module {
            phys,
            len,
            ..EMPTY_MODULE
        };
        module.name_len = copy_truncated(&mut module.name, name);
        if core::str::from_utf8(&module.name[..module.name_len]).is_err() {
            module.name_len = 0;
        }
        self.modules[self.module_count] = module;
        self.module_count += 1;
        true
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.module_count]
    }

    pub fn set_rsdp(&mut self, phys: Option<u64>) {
        self.rsdp = phys.filter(|p| *p != 0);
    }

    /// Physical address of the ACPI RSDP, if the loader found one.
    pub fn rsdp(&self) -> Option<u64> {
        self.rsdp
    }

    pub fn set_kernel_phys(&mut self, phys: u64) {
        self.kernel_phys = phys;
    }

    /// Physical address the kernel image (its first byte, `__kernel_start`) was loaded at.
    pub fn kernel_phys(&self) -> u64 {
        self.kernel_phys
    }

    pub fn set_loader(&mut self, name: &str) {
        self.loader_len = copy_truncated(&mut self.loader, name.as_bytes());
    }

    /// The boot loader's name and version, when it says.
    pub fn loader(&self) -> &str {
        core::str::from_utf8(&self.loader[..self.loader_len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemoryKind::*;

    fn info(regions: &[(u64, u64, MemoryKind)]) -> Box<BootInfo> {
        let mut b = Box::new(BootInfo::new(BootPath::Pvh, 0));
        for &(start, len, kind) in regions {
            b.add_region(start, len, kind);
        }
        b.normalize();
        b
    }

    fn map(b: &BootInfo) -> Vec<(u64, u64, MemoryKind)> {
        b.memory_map()
            .iter()
            .map(|r| (r.start, r.end, r.kind))
            .collect()
    }

    #[test]
    fn sorts_and_merges_adjacent_regions() {
        let b = info(&[
            (0x200000, 0x100000, Usable),
            (0x100000, 0x100000, Usable),
            (0, 0x1000, Reserved),
        ]);
        assert_eq!(
            map(&b),
            vec![(0, 0x1000, Reserved), (0x100000, 0x300000, Usable)]
        );
    }

    #[test]
    fn reserved_wins_over_usable_where_they_overlap() {
        let b = info(&[(0, 0x400000, Usable), (0x100000, 0x100000, Reserved)]);
        assert_eq!(
            map(&b),
            vec![
                (0, 0x100000, Usable),
                (0x100000, 0x200000, Reserved),
                (0x200000, 0x400000, Usable)
            ]
        );
    }

    #[test]
    fn kernel_image_carved_out_of_ram() {
        let b = info(&[
            (0, 0x8000000, Usable),
            (0x200000, 0x123000, KernelAndModules),
        ]);
        assert_eq!(
            map(&b),
            vec![
                (0, 0x200000, Usable),
                (0x200000, 0x323000, KernelAndModules),
                (0x323000, 0x8000000, Usable)
            ]
        );
    }

    #[test]
    fn usable_trimmed_to_whole_pages() {
        let b = info(&[(0x1234, 0x5000, Usable), (0x9fc00, 0x400, Usable)]);
        assert_eq!(map(&b), vec![(0x2000, 0x6000, Usable)]);
    }

    #[test]
    fn overflowing_and_empty_regions_are_dropped() {
        let mut b = Box::new(BootInfo::new(BootPath::Limine, 0));
        b.add_region(u64::MAX - 10, 100, Usable);
        b.add_region(0x1000, 0, Usable);
        b.normalize();
        assert!(b.memory_map().is_empty());
        assert_eq!(b.regions_dropped(), 1);
    }

    #[test]
    fn cap_splits_the_region_that_crosses_the_limit() {
        let mut b = info(&[
            (0x100000, 0x100000, Usable),
            (0x300000, 0x400000, Usable),
            (0x800000, 0x100000, Usable),
        ]);
        assert_eq!(b.cap_usable(0x180000), 0x180000);
        assert_eq!(
            map(&b),
            vec![
                (0x100000, 0x200000, Usable),
                (0x300000, 0x380000, Usable),
                (0x380000, 0x700000, Reserved),
                (0x800000, 0x900000, Reserved)
            ]
        );
    }

    #[test]
    fn cap_above_total_changes_nothing() {
        let mut b = info(&[(0x100000, 0x100000, Usable)]);
        assert_eq!(b.cap_usable(1 << 40), 0x100000);
    }

    #[test]
    fn cmdline_stops_at_nul_and_bad_utf8() {
        let mut b = Box::new(BootInfo::new(BootPath::Pvh, 0));
        b.set_cmdline(b"test=all\0garbage");
        assert_eq!(b.cmdline(), "test=all");
        b.set_cmdline(b"mem=64M \xff rest");
        assert_eq!(b.cmdline(), "mem=64M ");
        assert_eq!(b.cmdline_cut(), None);
    }

    #[test]
    fn a_line_too_long_keeps_its_whole_words_and_says_so() {
        let mut b = Box::new(BootInfo::new(BootPath::Pvh, 0));
        // A word across the limit goes whole: no `init=hell` from `init=hello`.
        let mut line = "x".repeat(MAX_CMDLINE - 8);
        line.push_str(" init=hello mem=64M");
        b.set_cmdline(line.as_bytes());
        assert_eq!(b.cmdline(), &line[..MAX_CMDLINE - 8]);
        assert_eq!(b.cmdline_cut(), Some(line.len()));
        // A word ending right at the limit stays.
        let mut line = "y".repeat(MAX_CMDLINE - 5);
        line.push_str(" mem=");
        line.push_str(" rest");
        b.set_cmdline(line.as_bytes());
        assert!(b.cmdline().ends_with(" mem="), "{}", b.cmdline());
        // One word longer than the limit: nothing kept.
        b.set_cmdline(&[b'a'; MAX_CMDLINE + 10]);
        assert_eq!((b.cmdline(), b.cmdline_cut()), ("", Some(MAX_CMDLINE + 10)));
        b.set_cmdline(b"short");
        assert_eq!(b.cmdline_cut(), None);
    }

    #[test]
    fn modules_are_bounded() {
        let mut b = Box::new(BootInfo::new(BootPath::Pvh, 0));
        for i in 0..MAX_MODULES {
            assert!(b.add_module(i as u64 * 0x1000, 0x1000, b"archive"));
        }
        assert!(!b.add_module(0, 1, b"one too many"));
        assert_eq!(b.modules()[3].name(), "archive");
        assert_eq!(b.modules()[3].phys, 0x3000);
    }
}

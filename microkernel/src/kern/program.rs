//! Program images: an ELF executable from the boot archive, validated before anything of it is
//! mapped. The bytes come from the boot archive and are treated as untrusted.

use crate::vm::map::{Protection, PAGE_SIZE};
use elf::abi::{EM_X86_64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use libipc::abi::syscall::{USER_END, USER_IMAGE_BASE};

/// Most loadable segments accepted (text, rodata, data, and a little slack).
pub const MAX_SEGMENTS: usize = 8;

/// One loadable segment, checked: inside user space, not overlapping another, file range
/// inside the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    pub protection: Protection,
}

impl Segment {
    /// Page-aligned start and end of the region the segment occupies.
    pub fn pages(&self) -> (u64, u64) {
        (
            self.vaddr & !(PAGE_SIZE - 1),
            (self.vaddr + self.memsz).next_multiple_of(PAGE_SIZE),
        )
    }

    /// For a writable segment whose file data is whole pages (page-aligned in the file and in
    /// memory, its size a multiple of the page; `user.ld` pads it so): where those pages end
    /// in memory. They can be read from the file until written. `None`: the file data must be
    /// copied (a partial last page must read as zeros past the data), or there is none.
    pub fn file_pages_end(&self) -> Option<u64> {
        (self.filesz > 0
            && self.vaddr.is_multiple_of(PAGE_SIZE)
            && self.offset.is_multiple_of(PAGE_SIZE)
            && self.filesz.is_multiple_of(PAGE_SIZE))
        .then(|| self.vaddr + self.filesz)
    }

    /// Whether the segment can map the file's pages directly: read-only, and page-aligned in
    /// both the file and memory, with nothing to zero beyond the file data.
    pub fn maps_file_directly(&self) -> bool {
        !self.protection.allows(Protection::WRITE)
            && self.vaddr.is_multiple_of(PAGE_SIZE)
            && self.offset.is_multiple_of(PAGE_SIZE)
            && self.memsz == self.filesz
    }
}

/// A validated executable.
#[derive(Clone, Copy, Debug)]
pub struct ProgramImage {
    pub entry: u64,
    segments: [Option<Segment>; MAX_SEGMENTS],
}

impl ProgramImage {
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().flatten()
    }
}

/// Why a program cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramError {
    NotElf,
    WrongType,
    WrongMachine,
    TooManySegments,
    /// A segment lies outside user space, is misaligned, or overlaps another.
    BadSegment,
    /// A segment's file data lies outside the file.
    Truncated,
    /// The entry point is not inside an executable segment.
    BadEntry,
}

impl core::fmt::Display for ProgramError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ProgramError::NotElf => "not an ELF file",
            ProgramError::WrongType => "not a static executable (ET_EXEC)",
            ProgramError::WrongMachine => "not an x86_64 program",
            ProgramError::TooManySegments => "too many loadable segments",
            ProgramError::BadSegment => {
                "a segment is outside user space, misaligned or overlapping"
            }
            ProgramError::Truncated => "a segment's data lies beyond the end of the file",
            ProgramError::BadEntry => "the entry point is not in an executable segment",
        })
    }
}

/// Parses and checks an executable.
pub fn parse(file: &[u8]) -> Result<ProgramImage, ProgramError> {
    let elf = ElfBytes::<LittleEndian>::minimal_parse(file).map_err(|_| ProgramError::NotElf)?;
    if elf.ehdr.e_type != ET_EXEC {
        return Err(ProgramError::WrongType);
    }
    if elf.ehdr.e_machine != EM_X86_64 {
        return Err(ProgramError::WrongMachine);
    }
    let mut image = ProgramImage {
        entry: elf.ehdr.e_entry,
        segments: [None; MAX_SEGMENTS],
    };
    let mut count = 0;
    for ph in elf
        .segments()
        .ok_or(ProgramError::NotElf)?
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD)
    {
        if ph.p_memsz == 0 {
            continue;
        }
        if count == MAX_SEGMENTS {
            return Err(ProgramError::TooManySegments);
        }
        let end = ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .ok_or(ProgramError::BadSegment)?;
        if ph.p_vaddr < USER_IMAGE_BASE || end > USER_END || ph.p_filesz > ph.p_memsz {
            return Err(ProgramError::BadSegment);
        }
        if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
            return Err(ProgramError::BadSegment);
        }
        let file_end = ph
            .p_offset
            .checked_add(ph.p_filesz)
            .ok_or(ProgramError::Truncated)?;
        if file_end > file.len() as u64 {
            return Err(ProgramError::Truncated);
        }
        let mut protection = Protection::NONE;
        if ph.p_flags & PF_R != 0 {
            protection = protection.union(Protection::READ);
        }
        if ph.p_flags & PF_W != 0 {
            protection = protection.union(Protection::WRITE);
        }
        if ph.p_flags & PF_X != 0 {
            protection = protection.union(Protection::EXECUTE);
        }
        let segment = Segment {
            vaddr: ph.p_vaddr,
            memsz: ph.p_memsz,
            offset: ph.p_offset,
            filesz: ph.p_filesz,
            protection,
        };
        let (start, end) = segment.pages();
        if image.segments().any(|other| {
            let (other_start, other_end) = other.pages();
            start < other_end && other_start < end
        }) {
            return Err(ProgramError::BadSegment);
        }
        image.segments[count] = Some(segment);
        count += 1;
    }
    let entry_ok = image.segments().any(|s| {
        s.protection.allows(Protection::EXECUTE)
            && s.vaddr <= image.entry
            && image.entry < s.vaddr + s.memsz
    });
    if !entry_ok {
        return Err(ProgramError::BadEntry);
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 executable with the given (vaddr, memsz, offset, filesz, flags) loads.
    fn elf(entry: u64, segments: &[(u64, u64, u64, u64, u32)], file_len: usize) -> Vec<u8> {
        let mut f = vec![0u8; file_len.max(64 + 56 * segments.len())];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1; // version
        f[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        f[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for (i, &(vaddr, memsz, offset, filesz, flags)) in segments.iter().enumerate() {
            let p = 64 + 56 * i;
            f[p..p + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
            f[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
            f[p + 8..p + 16].copy_from_slice(&offset.to_le_bytes());
            f[p + 16..p + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[p + 24..p + 32].copy_from_slice(&vaddr.to_le_bytes());
            f[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
            f[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
            f[p + 48..p + 56].copy_from_slice(&4096u64.to_le_bytes());
        }
        f
    }

    const TEXT: (u64, u64, u64, u64, u32) = (0x50_0000, 0x1800, 0x1000, 0x1800, PF_R | PF_X);
    const DATA: (u64, u64, u64, u64, u32) = (0x50_3000, 0x5000, 0x3000, 0x100, PF_R | PF_W);

    #[test]
    fn only_whole_pages_of_file_data_are_read_from_the_file() {
        let data = |vaddr, offset, filesz, memsz| Segment {
            vaddr,
            memsz,
            offset,
            filesz,
            protection: Protection::READ_WRITE,
        };
        // A page of data, then bss: the page comes from the file until written.
        assert_eq!(
            data(0x511000, 0x12000, 0x1000, 0x41071).file_pages_end(),
            Some(0x512000)
        );
        // A partial last page must read as zeros past the data: copied instead.
        assert_eq!(
            data(0x511000, 0x12000, 0xa0, 0x41071).file_pages_end(),
            None
        );
        // Unaligned in memory or in the file, or no file data at all.
        assert_eq!(
            data(0x511008, 0x12000, 0x1000, 0x2000).file_pages_end(),
            None
        );
        assert_eq!(
            data(0x511000, 0x12008, 0x1000, 0x2000).file_pages_end(),
            None
        );
        assert_eq!(data(0x511000, 0x12000, 0, 0x2000).file_pages_end(), None);
    }

    #[test]
    fn parses_a_text_and_data_program() {
        let image = parse(&elf(0x50_0010, &[TEXT, DATA], 0x4000)).unwrap();
        assert_eq!(image.entry, 0x50_0010);
        let segments: Vec<_> = image.segments().copied().collect();
        assert_eq!(segments.len(), 2);
        assert!(segments[0].maps_file_directly());
        assert!(!segments[1].maps_file_directly());
        assert_eq!(segments[1].pages(), (0x50_3000, 0x50_8000));
        assert_eq!(segments[0].protection, Protection::READ_EXECUTE);
    }

    #[test]
    fn rejects_what_is_not_a_loadable_program() {
        assert_eq!(parse(b"not an elf").unwrap_err(), ProgramError::NotElf);
        let mut wrong_type = elf(0x50_0010, &[TEXT], 0x4000);
        wrong_type[16] = 3; // ET_DYN
        assert_eq!(parse(&wrong_type).unwrap_err(), ProgramError::WrongType);
        let mut wrong_machine = elf(0x50_0010, &[TEXT], 0x4000);
        wrong_machine[18] = 3; // EM_386
        assert_eq!(
            parse(&wrong_machine).unwrap_err(),
            ProgramError::WrongMachine
        );
    }

    #[test]
    fn rejects_segments_outside_user_space_or_the_file() {
        let kernel = (0xffff_ffff_8000_0000, 0x1000, 0x1000, 0x1000, PF_R | PF_X);
        assert_eq!(
            parse(&elf(0xffff_ffff_8000_0000, &[kernel], 0x4000)).unwrap_err(),
            ProgramError::BadSegment
        );
        let low = (0x1000, 0x1000, 0x1000, 0x1000, PF_R | PF_X);
        assert_eq!(
            parse(&elf(0x1000, &[low], 0x4000)).unwrap_err(),
            ProgramError::BadSegment
        );
        let wrapping = (0x50_0000, u64::MAX, 0x1000, 0x1000, PF_R | PF_X);
        assert_eq!(
            parse(&elf(0x50_0000, &[wrapping], 0x4000)).unwrap_err(),
            ProgramError::BadSegment
        );
        assert_eq!(
            parse(&elf(0x50_0010, &[TEXT], 0x2000)).unwrap_err(),
            ProgramError::Truncated
        );
        let overlapping = (0x50_1000, 0x1000, 0x3000, 0x100, PF_R | PF_W);
        assert_eq!(
            parse(&elf(0x50_0010, &[TEXT, overlapping], 0x4000)).unwrap_err(),
            ProgramError::BadSegment
        );
    }

    #[test]
    fn entry_must_be_in_executable_code() {
        assert_eq!(
            parse(&elf(0x50_3000, &[TEXT, DATA], 0x4000)).unwrap_err(),
            ProgramError::BadEntry
        );
        assert_eq!(
            parse(&elf(0x10, &[TEXT, DATA], 0x4000)).unwrap_err(),
            ProgramError::BadEntry
        );
    }
}

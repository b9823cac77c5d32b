//! Property tests of the program (ELF) checker: any bytes, and mutations of valid
//! executables, are refused or give segments that lie in user space and in the file without
//! overlapping, with the entry in executable code; valid executables give back their
//! segments.

use proptest::prelude::*;

use super::program::{parse, ProgramImage, MAX_SEGMENTS};
use crate::vm::map::{Protection, PAGE_SIZE};
use elf::abi::{EM_X86_64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
use libipc::abi::syscall::{USER_END, USER_IMAGE_BASE};
use libipc::props::{config, mutate, mutations};

/// Bytes of the ELF header and of one program header.
const EHDR: usize = 64;
const PHDR: usize = 56;

/// One program header: (type, vaddr, memsz, offset, filesz, flags).
type Header = (u32, u64, u64, u64, u64, u32);

/// An ELF64 executable for x86_64 with `headers` and `file_len` bytes (at least the
/// headers), its data bytes all `0xcc`.
fn elf(entry: u64, headers: &[Header], file_len: usize) -> Vec<u8> {
    let mut f = vec![0xccu8; file_len.max(EHDR + PHDR * headers.len())];
    f[..EHDR + PHDR * headers.len()].fill(0);
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // 64-bit
    f[5] = 1; // little-endian
    f[6] = 1; // version
    f[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
    f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&entry.to_le_bytes());
    f[32..40].copy_from_slice(&(EHDR as u64).to_le_bytes()); // phoff
    f[52..54].copy_from_slice(&(EHDR as u16).to_le_bytes()); // ehsize
    f[54..56].copy_from_slice(&(PHDR as u16).to_le_bytes()); // phentsize
    f[56..58].copy_from_slice(&(headers.len() as u16).to_le_bytes());
    for (i, &(kind, vaddr, memsz, offset, filesz, flags)) in headers.iter().enumerate() {
        let p = EHDR + PHDR * i;
        f[p..p + 4].copy_from_slice(&kind.to_le_bytes());
        f[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
        f[p + 8..p + 16].copy_from_slice(&offset.to_le_bytes());
        f[p + 16..p + 24].copy_from_slice(&vaddr.to_le_bytes());
        f[p + 24..p + 32].copy_from_slice(&vaddr.to_le_bytes());
        f[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
        f[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
        f[p + 48..p + 56].copy_from_slice(&PAGE_SIZE.to_le_bytes());
    }
    f
}

/// A valid program: its entry, loadable segments (in memory order, apart by whole pages,
/// the first executable), a non-loadable header among them, and the file's length.
fn program() -> impl Strategy<Value = (u64, Vec<Header>, usize)> {
    // Per segment: pages skipped before it, pages it spans, its start within its first
    // page, how much of it is file data, flags.
    let segment = (0u64..3, 1u64..4, 0u64..PAGE_SIZE, 0u64..=100, 0u32..8);
    (
        proptest::collection::vec(segment, 1..=MAX_SEGMENTS),
        any::<proptest::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(segments, entry_at, with_note)| {
            let mut headers = Vec::new();
            let mut page = USER_IMAGE_BASE / PAGE_SIZE;
            // File data starts after the headers, at page 1.
            let mut file_page = 1u64;
            let mut file_end = 0u64;
            for (i, (skip, pages, start, file_percent, flags)) in segments.into_iter().enumerate() {
                page += skip;
                let vaddr = page * PAGE_SIZE + start;
                let memsz = (pages * PAGE_SIZE - start).max(1);
                let filesz = memsz * file_percent / 100;
                let offset = file_page * PAGE_SIZE + start;
                let flags = if i == 0 { flags | PF_X } else { flags };
                headers.push((PT_LOAD, vaddr, memsz, offset, filesz, flags));
                page += pages;
                file_page += pages;
                file_end = file_end.max(offset + filesz);
            }
            let first = headers[0];
            let entry = first.1 + entry_at.index(first.2 as usize) as u64;
            if with_note {
                // A PT_NOTE anywhere: only loadable segments are checked.
                headers.insert(1, (4, 0, u64::MAX, u64::MAX, 7, 0));
            }
            (entry, headers, file_end as usize)
        })
}

/// Checks what an accepted program promises: segments inside user space and the file,
/// file data no larger than the segment, file and memory offsets congruent, no two
/// segments on one page, and the entry inside an executable segment.
fn check_accepted(file: &[u8], image: &ProgramImage) -> Result<(), TestCaseError> {
    let segments: Vec<_> = image.segments().copied().collect();
    prop_assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
    for (i, s) in segments.iter().enumerate() {
        prop_assert!(s.memsz > 0 && s.filesz <= s.memsz);
        prop_assert!(s.vaddr >= USER_IMAGE_BASE);
        let end = s.vaddr.checked_add(s.memsz);
        prop_assert!(
            end.is_some_and(|end| end <= USER_END),
            "{:?} leaves user space",
            s
        );
        prop_assert!(s
            .offset
            .checked_add(s.filesz)
            .is_some_and(|end| end <= file.len() as u64));
        prop_assert_eq!(s.vaddr % PAGE_SIZE, s.offset % PAGE_SIZE);
        let (start, end) = s.pages();
        prop_assert!(start <= s.vaddr && s.vaddr + s.memsz <= end && end <= USER_END);
        prop_assert_eq!(start % PAGE_SIZE, 0);
        prop_assert_eq!(end % PAGE_SIZE, 0);
        for other in &segments[..i] {
            let (other_start, other_end) = other.pages();
            prop_assert!(end <= other_start || other_end <= start, "{:?} overlaps", s);
        }
        if s.maps_file_directly() {
            prop_assert!(!s.protection.allows(Protection::WRITE));
            prop_assert_eq!(s.offset % PAGE_SIZE, 0);
        }
    }
    prop_assert!(segments
        .iter()
        .any(|s| s.protection.allows(Protection::EXECUTE)
            && s.vaddr <= image.entry
            && image.entry < s.vaddr + s.memsz));
    Ok(())
}

/// The protection of ELF flags.
fn protection(flags: u32) -> Protection {
    [
        (PF_R, Protection::READ),
        (PF_W, Protection::WRITE),
        (PF_X, Protection::EXECUTE),
    ]
    .into_iter()
    .filter(|&(flag, _)| flags & flag != 0)
    .fold(Protection::NONE, |p, (_, right)| p.union(right))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_refused_or_a_program_inside_user_space_and_the_file(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        looks_like_elf in any::<bool>(),
    ) {
        let mut bytes = bytes;
        // Half of the inputs start as an x86_64 executable does, so the checks behind the
        // ELF header are reached.
        if looks_like_elf && bytes.len() >= EHDR {
            bytes[..EHDR].copy_from_slice(&elf(0, &[], 0)[..EHDR]);
            bytes[56] %= 6; // a few program headers
        }
        if let Ok(image) = parse(&bytes) {
            check_accepted(&bytes, &image)?;
        }
    }

    #[test]
    fn valid_programs_give_back_their_segments((entry, headers, file_len) in program()) {
        let file = elf(entry, &headers, file_len);
        let image = parse(&file).expect("a valid program");
        check_accepted(&file, &image)?;
        prop_assert_eq!(image.entry, entry);
        let expected: Vec<_> = headers
            .iter()
            .filter(|h| h.0 == PT_LOAD)
            .map(|&(_, vaddr, memsz, offset, filesz, flags)| {
                (vaddr, memsz, offset, filesz, protection(flags))
            })
            .collect();
        let found: Vec<_> = image
            .segments()
            .map(|s| (s.vaddr, s.memsz, s.offset, s.filesz, s.protection))
            .collect();
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn mutated_programs_are_refused_or_inside_user_space_and_the_file(
        (entry, headers, file_len) in program(),
        mutations in mutations(),
        headers_only in any::<bool>(),
    ) {
        let mut file = elf(entry, &headers, file_len);
        if headers_only {
            // The ELF and program headers are what the checker reads.
            let end = EHDR + PHDR * headers.len();
            let mut head = file[..end].to_vec();
            mutate(&mut head, &mutations);
            let cut = head.len();
            file[..cut].copy_from_slice(&head);
            if cut < end {
                file.truncate(cut);
            }
        } else {
            mutate(&mut file, &mutations);
        }
        if let Ok(image) = parse(&file) {
            check_accepted(&file, &image)?;
        }
    }
}

//! The boot archive: one boot module that carries every initial program, and its parser.
//!
//! Layout, all integers little-endian:
//!
//! ```text
//! 0    magic    [u8; 8]   b"MKARCHV1"
//! 8    count    u32       number of entries
//! 12   reserved u32       0
//! 16   entries  count × 64 bytes:
//!        name   [u8; 48]  UTF-8, non-empty, NUL-padded (at most 47 bytes, then NULs)
//!        offset u64       from the start of the archive, a multiple of 4096
//!        size   u64       in bytes
//! ...  file data, each file at its offset
//! ```
//!
//! Files lie after the entry table, in entry order, without overlapping. Because every file
//! starts on a 4096-byte boundary of the archive (and boot loaders place modules on page
//! boundaries), the kernel can map a program's pages straight from the archive's frames.
//!
//! The kernel runs [`Archive::parse`] on bytes it did not make: every field is checked with
//! checked arithmetic before anything is handed out, and nothing here panics or allocates. The
//! writer lives in the host tool (`image/src/archive.rs`).

use core::fmt;

/// The first eight bytes of every archive.
pub const MAGIC: [u8; 8] = *b"MKARCHV1";
/// Size of the header (magic, count, reserved).
pub const HEADER_SIZE: usize = 16;
/// Size of one entry of the table.
pub const ENTRY_SIZE: usize = 64;
/// Size of an entry's name field.
pub const NAME_FIELD_SIZE: usize = 48;
/// Longest name: the field always ends with at least one NUL.
pub const NAME_MAX: usize = NAME_FIELD_SIZE - 1;
/// Every file starts at a multiple of this offset from the archive's start.
pub const FILE_ALIGN: u64 = 4096;

/// Why bytes are not a valid archive. `index` names the entry (from 0) at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// Shorter than the header.
    Truncated { len: usize },
    /// The first eight bytes are not [`MAGIC`].
    BadMagic,
    /// The reserved header field is not 0.
    ReservedNotZero { value: u32 },
    /// The entry table of `count` entries does not fit in the archive.
    TableOutOfBounds { count: u32 },
    /// The name is empty.
    EmptyName { index: usize },
    /// The name is not valid UTF-8.
    NameNotUtf8 { index: usize },
    /// The name field is not a name followed by NULs only (or has no NUL at all).
    BadNamePadding { index: usize },
    /// Two entries have the same name; `first` is the earlier one.
    DuplicateName { index: usize, first: usize },
    /// The file's offset is not a multiple of [`FILE_ALIGN`].
    Misaligned { index: usize, offset: u64 },
    /// The file starts inside the header or the entry table.
    OverlapsTable { index: usize, offset: u64 },
    /// The file starts before the end of the previous file.
    OverlapsPrevious { index: usize, offset: u64 },
    /// The file extends past the end of the archive.
    OutOfBounds {
        index: usize,
        offset: u64,
        size: u64,
    },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { len } => write!(
                f,
                "archive too short: {len} bytes, the header alone is {HEADER_SIZE}"
            ),
            Self::BadMagic => write!(f, "not a boot archive (bad magic)"),
            Self::ReservedNotZero { value } => {
                write!(f, "reserved header field is {value:#x}, not 0")
            }
            Self::TableOutOfBounds { count } => {
                write!(
                    f,
                    "the table of {count} entries does not fit in the archive"
                )
            }
            Self::EmptyName { index } => write!(f, "entry {index}: empty name"),
            Self::NameNotUtf8 { index } => write!(f, "entry {index}: name is not UTF-8"),
            Self::BadNamePadding { index } => write!(
                f,
                "entry {index}: name field is not a name of at most {NAME_MAX} bytes padded \
                 with NULs"
            ),
            Self::DuplicateName { index, first } => {
                write!(f, "entry {index}: same name as entry {first}")
            }
            Self::Misaligned { index, offset } => write!(
                f,
                "entry {index}: offset {offset:#x} is not a multiple of {FILE_ALIGN}"
            ),
            Self::OverlapsTable { index, offset } => write!(
                f,
                "entry {index}: offset {offset:#x} lies inside the header or entry table"
            ),
            Self::OverlapsPrevious { index, offset } => write!(
                f,
                "entry {index}: offset {offset:#x} lies before the end of the previous file"
            ),
            Self::OutOfBounds {
                index,
                offset,
                size,
            } => write!(
                f,
                "entry {index}: {size} bytes at offset {offset:#x} extend past the archive"
            ),
        }
    }
}

/// A validated archive borrowed from its bytes.
///
/// Invariant: `bytes` passed [`Archive::parse`], so the table of `count` entries and every
/// file they describe lie within `bytes`, names are valid, distinct and non-empty.
#[derive(Clone, Copy, Debug)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    count: usize,
}

/// One file of an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File<'a> {
    /// The file's name (non-empty, at most [`NAME_MAX`] bytes).
    pub name: &'a str,
    /// Its contents.
    pub data: &'a [u8],
    /// Where `data` starts, from the start of the archive (a multiple of [`FILE_ALIGN`]).
    pub offset: u64,
}

impl<'a> Archive<'a> {
    /// Validates `bytes` as an archive. Costs O(n²) name comparisons for n entries, and n is
    /// bounded by the length of `bytes` (one entry per 64 bytes).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        if bytes.len() < HEADER_SIZE {
            return Err(ArchiveError::Truncated { len: bytes.len() });
        }
        if bytes[..8] != MAGIC {
            return Err(ArchiveError::BadMagic);
        }
        let count_raw = read_u32(bytes, 8);
        let reserved = read_u32(bytes, 12);
        if reserved != 0 {
            return Err(ArchiveError::ReservedNotZero { value: reserved });
        }
        let table_end = usize::try_from(count_raw)
            .ok()
            .and_then(|count| count.checked_mul(ENTRY_SIZE))
            .and_then(|table| table.checked_add(HEADER_SIZE))
            .filter(|&end| end <= bytes.len())
            .ok_or(ArchiveError::TableOutOfBounds { count: count_raw })?;
        let count = count_raw as usize;
        let archive = Archive { bytes, count };

        // Files must start after the table and after the previous file's end.
        let mut next_free = table_end as u64;
        for index in 0..count {
            let entry = archive.raw_entry(index);
            decode_name(entry.name, index)?;
            for first in 0..index {
                if archive.raw_entry(first).name == entry.name {
                    return Err(ArchiveError::DuplicateName { index, first });
                }
            }
            let (offset, size) = (entry.offset, entry.size);
            if offset % FILE_ALIGN != 0 {
                return Err(ArchiveError::Misaligned { index, offset });
            }
            if offset < table_end as u64 {
                return Err(ArchiveError::OverlapsTable { index, offset });
            }
            if offset < next_free {
                return Err(ArchiveError::OverlapsPrevious { index, offset });
            }
            next_free = offset
                .checked_add(size)
                .filter(|&end| end <= bytes.len() as u64)
                .ok_or(ArchiveError::OutOfBounds {
                    index,
                    offset,
                    size,
                })?;
        }
        Ok(archive)
    }

    /// The archive's bytes, as given to [`Archive::parse`].
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The files, in table order.
    pub fn files(&self) -> impl Iterator<Item = File<'a>> + 'a {
        let archive = *self;
        (0..self.count).filter_map(move |index| archive.file(index))
    }

    /// The file named `name`.
    pub fn find(&self, name: &str) -> Option<File<'a>> {
        self.files().find(|file| file.name == name)
    }

    /// File number `index`; `None` past the end.
    pub fn file(&self, index: usize) -> Option<File<'a>> {
        if index >= self.count {
            return None;
        }
        let entry = self.raw_entry(index);
        // Cannot fail: `parse` checked every name and range (the type's invariant).
        let name = decode_name(entry.name, index).ok()?;
        let start = usize::try_from(entry.offset).ok()?;
        let end = start.checked_add(usize::try_from(entry.size).ok()?)?;
        Some(File {
            name,
            data: self.bytes.get(start..end)?,
            offset: entry.offset,
        })
    }

    /// Entry `index`, which must lie within the table (checked by `parse` before any call).
    fn raw_entry(&self, index: usize) -> RawEntry<'a> {
        let at = HEADER_SIZE + index * ENTRY_SIZE;
        let entry = &self.bytes[at..at + ENTRY_SIZE];
        RawEntry {
            name: &entry[..NAME_FIELD_SIZE],
            offset: read_u64(entry, NAME_FIELD_SIZE),
            size: read_u64(entry, NAME_FIELD_SIZE + 8),
        }
    }
}

/// An entry as stored, before validation.
struct RawEntry<'a> {
    name: &'a [u8],
    offset: u64,
    size: u64,
}

/// The name in a name field: bytes up to the first NUL, followed by NULs only, with at least
/// one NUL, non-empty and UTF-8.
fn decode_name(field: &[u8], index: usize) -> Result<&str, ArchiveError> {
    let len = field
        .iter()
        .position(|&byte| byte == 0)
        .ok_or(ArchiveError::BadNamePadding { index })?;
    if field[len..].iter().any(|&byte| byte != 0) {
        return Err(ArchiveError::BadNamePadding { index });
    }
    if len == 0 {
        return Err(ArchiveError::EmptyName { index });
    }
    core::str::from_utf8(&field[..len]).map_err(|_| ArchiveError::NameNotUtf8 { index })
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// Word `index` of a *pattern file*: a data file of the archive whose contents anyone can
/// check without a copy (the manifest's `[[file]]` entries, written by the host tool; read
/// through `bootfs`'s file interface by NONAIM's `file_test`). Byte `offset` of the file is
/// byte `offset % 8` of `pattern_word(offset / 8)`, little-endian. A splitmix64 step of the
/// index: no two words of a file alike in practice, no word predictable from its neighbour,
/// so a byte read from the wrong place or a stale page shows.
pub const fn pattern_word(index: u64) -> u64 {
    let mut z = index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Byte `offset` of a pattern file (see [`pattern_word`]).
pub const fn pattern_byte(offset: u64) -> u8 {
    pattern_word(offset / 8).to_le_bytes()[(offset % 8) as usize]
}

/// The first byte of `data` that is not what a pattern file holds from `offset` on: its
/// index in `data`. A word at a time where `offset` and the index line up on words.
pub fn pattern_mismatch(offset: u64, data: &[u8]) -> Option<usize> {
    let mut index = 0;
    // Bytes up to the next word boundary of the file.
    while index < data.len() && !(offset + index as u64).is_multiple_of(8) {
        if data[index] != pattern_byte(offset + index as u64) {
            return Some(index);
        }
        index += 1;
    }
    // Whole words.
    while index + 8 <= data.len() {
        let word = pattern_word((offset + index as u64) / 8).to_le_bytes();
        if data[index..index + 8] != word {
            let wrong = (0..8).find(|&i| data[index + i] != word[i]).unwrap_or(0);
            return Some(index + wrong);
        }
        index += 8;
    }
    // The tail.
    (index..data.len()).find(|&i| data[i] != pattern_byte(offset + i as u64))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    /// Builds archive bytes by hand: `entries` are (name field contents, offset, size), the
    /// result is `total` bytes long, and file `i` is filled with byte `i + 1`.
    fn build(count: u32, entries: &[(&[u8], u64, u64)], total: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; total];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&count.to_le_bytes());
        for (i, &(name, offset, size)) in entries.iter().enumerate() {
            let at = HEADER_SIZE + i * ENTRY_SIZE;
            bytes[at..at + name.len()].copy_from_slice(name);
            bytes[at + 48..at + 56].copy_from_slice(&offset.to_le_bytes());
            bytes[at + 56..at + 64].copy_from_slice(&size.to_le_bytes());
            if let Some(end) = offset.checked_add(size).filter(|&end| end <= total as u64) {
                bytes[offset as usize..end as usize].fill(i as u8 + 1);
            }
        }
        bytes
    }

    fn two_files() -> Vec<u8> {
        build(
            2,
            &[(b"bootstrap", 4096, 100), (b"hello", 8192, 4096)],
            12288,
        )
    }

    #[test]
    fn parses_a_well_formed_archive() {
        let bytes = two_files();
        let archive = Archive::parse(&bytes).unwrap();
        assert_eq!(archive.len(), 2);
        assert!(!archive.is_empty());
        let files: Vec<File<'_>> = archive.files().collect();
        assert_eq!(files[0].name, "bootstrap");
        assert_eq!(files[0].offset, 4096);
        assert_eq!(files[0].data, &[1u8; 100][..]);
        assert_eq!(files[1].name, "hello");
        assert_eq!(files[1].data, &[2u8; 4096][..]);
        assert_eq!(archive.find("hello"), Some(files[1]));
        assert_eq!(archive.find("hell"), None);
        assert_eq!(archive.file(2), None);
        assert_eq!(archive.as_bytes().len(), 12288);
    }

    #[test]
    fn empty_archive_and_empty_files_are_valid() {
        let bytes = build(0, &[], HEADER_SIZE);
        let archive = Archive::parse(&bytes).unwrap();
        assert!(archive.is_empty());
        assert_eq!(archive.files().count(), 0);

        // Zero-sized files may share an offset, even at the very end.
        let bytes = build(2, &[(b"a", 4096, 0), (b"b", 4096, 0)], 4096);
        let archive = Archive::parse(&bytes).unwrap();
        assert_eq!(archive.find("b").unwrap().data, &[] as &[u8]);
    }

    #[test]
    fn longest_name_and_utf8_names() {
        let long = [b'x'; NAME_MAX];
        let bytes = build(2, &[(&long, 4096, 1), ("grüße".as_bytes(), 8192, 1)], 8193);
        let archive = Archive::parse(&bytes).unwrap();
        assert_eq!(archive.file(0).unwrap().name.len(), NAME_MAX);
        assert!(archive.find("grüße").is_some());
    }

    #[test]
    fn refuses_bad_headers() {
        assert_eq!(
            Archive::parse(&[0; 15]).unwrap_err(),
            ArchiveError::Truncated { len: 15 }
        );
        assert_eq!(
            Archive::parse(&[]).unwrap_err(),
            ArchiveError::Truncated { len: 0 }
        );
        let mut bytes = two_files();
        bytes[7] = b'2';
        assert_eq!(Archive::parse(&bytes).unwrap_err(), ArchiveError::BadMagic);
        let mut bytes = two_files();
        bytes[12] = 1;
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::ReservedNotZero { value: 1 }
        );
    }

    #[test]
    fn refuses_a_table_that_does_not_fit() {
        // Two entries need 16 + 128 bytes.
        let bytes = build(2, &[], HEADER_SIZE + ENTRY_SIZE * 2 - 1);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::TableOutOfBounds { count: 2 }
        );
        // A count whose table size overflows on 32-bit hosts, and far exceeds the bytes here.
        let bytes = build(u32::MAX, &[], 4096);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::TableOutOfBounds { count: u32::MAX }
        );
    }

    #[test]
    fn refuses_bad_names() {
        let bytes = build(1, &[(b"", 4096, 1)], 8192);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::EmptyName { index: 0 }
        );
        let bytes = build(2, &[(b"ok", 4096, 1), (b"\xff\xfe", 8192, 1)], 8193);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::NameNotUtf8 { index: 1 }
        );
        // A byte after the terminating NUL.
        let bytes = build(1, &[(b"ab\0c", 4096, 1)], 8192);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::BadNamePadding { index: 0 }
        );
        // All 48 bytes used: no terminating NUL.
        let full = [b'x'; NAME_FIELD_SIZE];
        let bytes = build(1, &[(&full, 4096, 1)], 8192);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::BadNamePadding { index: 0 }
        );
        // An empty name with junk later in the field is a padding error.
        let bytes = build(1, &[(b"\0x", 4096, 1)], 8192);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::BadNamePadding { index: 0 }
        );
    }

    #[test]
    fn refuses_duplicate_names() {
        let bytes = build(
            3,
            &[(b"a", 4096, 1), (b"b", 8192, 1), (b"a", 12288, 1)],
            16384,
        );
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::DuplicateName { index: 2, first: 0 }
        );
    }

    #[test]
    fn refuses_misaligned_offsets() {
        let bytes = build(1, &[(b"a", 4097, 1)], 8192);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::Misaligned {
                index: 0,
                offset: 4097
            }
        );
    }

    #[test]
    fn refuses_files_inside_the_table() {
        let bytes = build(1, &[(b"a", 0, 0)], 4096);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OverlapsTable {
                index: 0,
                offset: 0
            }
        );
        // 70 entries end at 16 + 70 * 64 = 4496 > 4096: offset 4096 is inside the table.
        let mut entries = vec![];
        let names: Vec<std::string::String> = (0..70).map(|i| i.to_string()).collect();
        for (i, name) in names.iter().enumerate() {
            entries.push((name.as_bytes(), 4096 * (i as u64 + 1), 0));
        }
        let bytes = build(70, &entries, 4096 * 71);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OverlapsTable {
                index: 0,
                offset: 4096
            }
        );
    }

    #[test]
    fn refuses_overlapping_or_unordered_files() {
        let bytes = build(2, &[(b"a", 4096, 4097), (b"b", 8192, 1)], 12288);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OverlapsPrevious {
                index: 1,
                offset: 8192
            }
        );
        let bytes = build(2, &[(b"a", 8192, 1), (b"b", 4096, 1)], 12288);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OverlapsPrevious {
                index: 1,
                offset: 4096
            }
        );
    }

    #[test]
    fn refuses_files_past_the_end() {
        let bytes = build(1, &[(b"a", 4096, 4097)], 8192);
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OutOfBounds {
                index: 0,
                offset: 4096,
                size: 4097
            }
        );
        let bytes = build(1, &[(b"a", 8192, 0)], 4096);
        assert!(matches!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OutOfBounds { .. }
        ));
        // offset + size overflows u64.
        let bytes = build(1, &[(b"a", 4096, u64::MAX)], 8192);
        assert!(matches!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OutOfBounds { .. }
        ));
        let huge = !(FILE_ALIGN - 1); // the highest aligned offset
        let bytes = build(1, &[(b"a", huge, 1)], 8192);
        assert!(matches!(
            Archive::parse(&bytes).unwrap_err(),
            ArchiveError::OutOfBounds { .. }
        ));
    }

    #[test]
    fn errors_read_well() {
        let message = ArchiveError::Misaligned {
            index: 3,
            offset: 0x1001,
        }
        .to_string();
        assert_eq!(message, "entry 3: offset 0x1001 is not a multiple of 4096");
        assert!(ArchiveError::BadNamePadding { index: 0 }
            .to_string()
            .contains("47 bytes"));
    }

    #[test]
    fn pattern_bytes_are_their_words_little_endian_and_mismatches_are_found() {
        let bytes: Vec<u8> = (0..64).map(pattern_byte).collect();
        assert_eq!(&bytes[8..16], &pattern_word(1).to_le_bytes());
        assert_ne!(pattern_word(0), pattern_word(1));
        for start in [0usize, 3, 8, 13] {
            assert_eq!(
                pattern_mismatch(start as u64, &bytes[start..]),
                None,
                "{start}"
            );
        }
        let mut wrong = bytes.clone();
        wrong[21] ^= 1;
        assert_eq!(pattern_mismatch(0, &wrong), Some(21));
        assert_eq!(pattern_mismatch(5, &wrong[5..]), Some(16));
        assert_eq!(pattern_mismatch(20, &wrong[20..23]), Some(1));
        // The same bytes a word further on are wrong at once.
        assert_eq!(pattern_mismatch(8, &bytes), Some(0));
    }
}

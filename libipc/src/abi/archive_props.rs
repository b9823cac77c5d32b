//! Property tests of the boot archive parser (its bytes come from the boot loader): any
//! bytes, and mutations of valid archives, are refused or give an archive whose files all
//! satisfy the format's rules; valid archives give back the files they were built from.

extern crate std;

use std::collections::BTreeMap;
use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::archive::{Archive, ENTRY_SIZE, FILE_ALIGN, HEADER_SIZE, MAGIC, NAME_MAX};
use crate::props::{config, mutate, mutations};

/// An archive of `files` (in order), file `i` placed `gaps[i]` pages after the previous
/// one's end (rounded up to a page), as the host tool lays them out.
fn build(files: &[(String, Vec<u8>)], gaps: &[u8]) -> Vec<u8> {
    let table_end = HEADER_SIZE + files.len() * ENTRY_SIZE;
    let mut bytes = vec![0u8; table_end];
    bytes[..8].copy_from_slice(&MAGIC);
    bytes[8..12].copy_from_slice(&(files.len() as u32).to_le_bytes());
    let mut offset = (table_end as u64).next_multiple_of(FILE_ALIGN);
    for (index, (name, data)) in files.iter().enumerate() {
        offset += u64::from(gaps.get(index).copied().unwrap_or(0)) * FILE_ALIGN;
        let entry = HEADER_SIZE + index * ENTRY_SIZE;
        bytes[entry..entry + name.len()].copy_from_slice(name.as_bytes());
        bytes[entry + 48..entry + 56].copy_from_slice(&offset.to_le_bytes());
        bytes[entry + 56..entry + 64].copy_from_slice(&(data.len() as u64).to_le_bytes());
        let end = offset as usize + data.len();
        bytes.resize(end.max(bytes.len()), 0);
        bytes[offset as usize..end].copy_from_slice(data);
        offset = (end as u64).next_multiple_of(FILE_ALIGN);
    }
    bytes
}

/// Up to five files with distinct names (1 to 47 bytes, some of them not ASCII).
fn files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    proptest::collection::btree_map(
        "[a-z0-9_.ü-]{1,40}".prop_filter("at most NAME_MAX bytes", |n| n.len() <= NAME_MAX),
        proptest::collection::vec(any::<u8>(), 0..300),
        0..5,
    )
    .prop_map(|files: BTreeMap<String, Vec<u8>>| files.into_iter().collect())
}

/// Checks what the archive type promises of a parsed archive.
fn check_invariants(bytes: &[u8], archive: &Archive<'_>) -> Result<(), TestCaseError> {
    let table_end = (HEADER_SIZE + archive.len() * ENTRY_SIZE) as u64;
    prop_assert!(table_end <= bytes.len() as u64);
    let files: Vec<_> = archive.files().collect();
    prop_assert_eq!(files.len(), archive.len(), "every entry gives a file");
    let mut next_free = table_end;
    for (index, file) in files.iter().enumerate() {
        prop_assert!(!file.name.is_empty() && file.name.len() <= NAME_MAX);
        prop_assert!(!file.name.contains('\0'));
        prop_assert_eq!(file.offset % FILE_ALIGN, 0);
        prop_assert!(
            file.offset >= next_free,
            "file {} overlaps what precedes it",
            index
        );
        let end = file.offset + file.data.len() as u64;
        prop_assert!(end <= bytes.len() as u64);
        prop_assert_eq!(
            file.data,
            &bytes[file.offset as usize..end as usize],
            "file data is the archive's bytes"
        );
        next_free = end;
        prop_assert!(files[..index]
            .iter()
            .all(|earlier| earlier.name != file.name));
        prop_assert_eq!(archive.find(file.name), Some(*file));
    }
    prop_assert_eq!(archive.file(archive.len()), None);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_refused_or_a_consistent_archive(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        magic in any::<bool>(),
    ) {
        let mut bytes = bytes;
        // Half of the inputs get past the magic number, so the rest of the parser is reached.
        if magic && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(&MAGIC);
        }
        if let Ok(archive) = Archive::parse(&bytes) {
            check_invariants(&bytes, &archive)?;
        }
    }

    #[test]
    fn valid_archives_give_back_their_files(
        files in files(),
        gaps in proptest::collection::vec(0u8..3, 5),
    ) {
        let bytes = build(&files, &gaps);
        let archive = Archive::parse(&bytes).expect("a valid archive");
        check_invariants(&bytes, &archive)?;
        let back: Vec<(String, Vec<u8>)> = archive
            .files()
            .map(|file| (String::from(file.name), file.data.to_vec()))
            .collect();
        prop_assert_eq!(back, files);
    }

    #[test]
    fn mutated_archives_are_refused_or_consistent(
        files in files(),
        gaps in proptest::collection::vec(0u8..3, 5),
        mutations in mutations(),
        in_table in any::<bool>(),
    ) {
        let mut bytes = build(&files, &gaps);
        if in_table {
            // Mutations of the header and table only: the file data is not checked.
            let table_end = HEADER_SIZE + files.len() * ENTRY_SIZE;
            let mut table = bytes[..table_end].to_vec();
            mutate(&mut table, &mutations);
            let cut = table.len();
            bytes[..cut].copy_from_slice(&table);
            if cut < table_end {
                bytes.truncate(cut);
            }
        } else {
            mutate(&mut bytes, &mutations);
        }
        if let Ok(archive) = Archive::parse(&bytes) {
            check_invariants(&bytes, &archive)?;
        }
    }
}

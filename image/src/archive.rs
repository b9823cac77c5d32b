//! Writes the boot archive (format: `libipc::abi::archive`) from named files.
//!
//! Files go in the given order, each at the next 4096-byte boundary after the entry table or
//! the previous file, with zero padding between; the archive is padded to a whole number of
//! pages so that a file's last page lies inside the archive too (the kernel may map it).

use std::collections::HashSet;

use anyhow::{bail, Result};
use libipc::abi::archive::{ENTRY_SIZE, FILE_ALIGN, HEADER_SIZE, MAGIC, NAME_FIELD_SIZE, NAME_MAX};

/// Checks `name` as an archive file name: non-empty, at most [`NAME_MAX`] bytes, no NUL or
/// other control characters. The error says what is wrong, without naming the file.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the name is empty");
    }
    if name.len() > NAME_MAX {
        bail!(
            "the name is {} bytes long, the archive allows at most {NAME_MAX}",
            name.len()
        );
    }
    if name.chars().any(char::is_control) {
        bail!("the name contains a control character");
    }
    Ok(())
}

/// The archive holding `files` (name, contents), in order. Names must pass [`check_name`] and
/// be distinct.
pub fn write<N: AsRef<str>, D: AsRef<[u8]>>(files: &[(N, D)]) -> Result<Vec<u8>> {
    let count = u32::try_from(files.len())
        .map_err(|_| anyhow::anyhow!("{} files are too many for an archive", files.len()))?;
    let mut seen = HashSet::new();
    for (name, _) in files {
        let name = name.as_ref();
        if let Err(error) = check_name(name) {
            bail!("archive file {name:?}: {error}");
        }
        if !seen.insert(name) {
            bail!("archive file {name:?} appears twice");
        }
    }

    let table_end = HEADER_SIZE + files.len() * ENTRY_SIZE;
    let mut bytes = Vec::with_capacity(page_align(table_end));
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&count.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = page_align(table_end);
    let mut layout = Vec::with_capacity(files.len());
    for (name, data) in files {
        let size = data.as_ref().len();
        let mut field = [0u8; NAME_FIELD_SIZE];
        field[..name.as_ref().len()].copy_from_slice(name.as_ref().as_bytes());
        bytes.extend_from_slice(&field);
        bytes.extend_from_slice(&(offset as u64).to_le_bytes());
        bytes.extend_from_slice(&(size as u64).to_le_bytes());
        layout.push(offset);
        offset = page_align(offset + size);
    }
    for ((_, data), offset) in files.iter().zip(layout) {
        bytes.resize(offset, 0);
        bytes.extend_from_slice(data.as_ref());
    }
    bytes.resize(page_align(bytes.len()), 0);
    Ok(bytes)
}

fn page_align(offset: usize) -> usize {
    offset.next_multiple_of(FILE_ALIGN as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libipc::abi::archive::Archive;

    #[test]
    fn round_trips_through_libipc_parser() {
        let bootstrap = vec![0x7f; 5000];
        let hello = b"\x7fELF hello".to_vec();
        let empty = Vec::new();
        let files = [
            ("bootstrap", bootstrap.clone()),
            ("hello", hello.clone()),
            ("empty", empty),
            ("grüße/x", vec![1, 2, 3]),
        ];
        let bytes = write(&files).unwrap();
        assert_eq!(bytes.len() % 4096, 0);
        let archive = Archive::parse(&bytes).unwrap();
        let parsed: Vec<(&str, &[u8], u64)> = archive
            .files()
            .map(|file| (file.name, file.data, file.offset))
            .collect();
        assert_eq!(
            parsed,
            [
                ("bootstrap", &bootstrap[..], 4096),
                ("hello", &hello[..], 4096 * 3),
                ("empty", &[][..], 4096 * 4),
                ("grüße/x", &[1u8, 2, 3][..], 4096 * 4),
            ]
        );
        // Padding is zeros.
        assert!(bytes[HEADER_SIZE + 4 * ENTRY_SIZE..4096]
            .iter()
            .all(|&b| b == 0));
        assert!(bytes[4096 + 5000..4096 * 3].iter().all(|&b| b == 0));
    }

    #[test]
    fn empty_archive_is_a_header_and_padding() {
        let bytes = write::<&str, &[u8]>(&[]).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(bytes[..8], MAGIC);
        assert!(Archive::parse(&bytes).unwrap().is_empty());
    }

    #[test]
    fn large_tables_push_the_first_file_out() {
        // 70 entries end past 4096 bytes, so the first file starts at 8192.
        let files: Vec<(String, Vec<u8>)> = (0..70).map(|i| (format!("f{i}"), vec![i])).collect();
        let bytes = write(&files).unwrap();
        let archive = Archive::parse(&bytes).unwrap();
        assert_eq!(archive.len(), 70);
        assert_eq!(archive.file(0).unwrap().offset, 8192);
        assert_eq!(archive.find("f69").unwrap().data, &[69]);
    }

    #[test]
    fn longest_name_fits() {
        let name = "n".repeat(NAME_MAX);
        let bytes = write(&[(name.as_str(), b"x")]).unwrap();
        assert!(Archive::parse(&bytes).unwrap().find(&name).is_some());
    }

    #[test]
    fn refuses_bad_names() {
        let long = "n".repeat(NAME_MAX + 1);
        let error = write(&[(long.as_str(), b"x")]).unwrap_err().to_string();
        assert!(
            error.contains("48 bytes long") && error.contains("47"),
            "{error}"
        );
        let error = write(&[("", b"x")]).unwrap_err().to_string();
        assert!(error.contains("empty"), "{error}");
        let error = write(&[("a\0b", b"x")]).unwrap_err().to_string();
        assert!(error.contains("control character"), "{error}");
        let error = write(&[("a", b"x"), ("a", b"y")]).unwrap_err().to_string();
        assert!(error.contains("\"a\" appears twice"), "{error}");
    }
}

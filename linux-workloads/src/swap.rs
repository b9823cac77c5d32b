//! The header of a Linux swap area (what `mkswap` writes): page 0 of the device holds the
//! version-1 header at byte 1024 (version, last usable page, bad pages, UUID, label) and the
//! signature `SWAPSPACE2` in the page's last 10 bytes. `swapon(2)` accepts a device whose
//! first page is this.

use core::fmt;

/// The signature at the end of the header page.
pub const MAGIC: &[u8; 10] = b"SWAPSPACE2";
/// Where the version-1 fields start (after 1 KiB left for boot blocks and disk labels).
pub const INFO_OFFSET: usize = 1024;
/// The fewest pages `mkswap` accepts (the header and nine pages of swap).
pub const MIN_PAGES: u64 = 10;

/// Why no header can be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapError {
    /// The page size is not a power of two between 4 KiB and 64 KiB.
    PageSize(usize),
    /// The device holds fewer than [`MIN_PAGES`] pages.
    TooSmall { pages: u64 },
}

impl fmt::Display for SwapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SwapError::PageSize(size) => write!(f, "page size {size} is not supported"),
            SwapError::TooSmall { pages } => write!(
                f,
                "a swap area needs at least {MIN_PAGES} pages; the device has {pages}"
            ),
        }
    }
}

/// The first page of a swap area on a device of `device_bytes` bytes (pages of `page_size`
/// bytes), with `uuid` as its UUID and no bad pages. A device of more pages than a version-1
/// header can name (2^32) is used up to that many.
pub fn header(page_size: usize, device_bytes: u64, uuid: [u8; 16]) -> Result<Vec<u8>, SwapError> {
    if !page_size.is_power_of_two() || !(4096..=65536).contains(&page_size) {
        return Err(SwapError::PageSize(page_size));
    }
    let pages = device_bytes / page_size as u64;
    if pages < MIN_PAGES {
        return Err(SwapError::TooSmall { pages });
    }
    let last_page = u32::try_from(pages - 1).unwrap_or(u32::MAX);
    let mut page = vec![0u8; page_size];
    let fields = [1u32, last_page, 0];
    for (index, value) in fields.iter().enumerate() {
        let at = INFO_OFFSET + 4 * index;
        page[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }
    let uuid_at = INFO_OFFSET + 12;
    page[uuid_at..uuid_at + 16].copy_from_slice(&uuid);
    page[page_size - MAGIC.len()..].copy_from_slice(MAGIC);
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(page: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(page[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn a_header_has_the_version_the_last_page_and_the_signature() {
        let uuid = *b"0123456789abcdef";
        let page = header(4096, 256 << 20, uuid).unwrap();
        assert_eq!(page.len(), 4096);
        assert_eq!(&page[4086..], b"SWAPSPACE2");
        assert_eq!(word(&page, 1024), 1, "version");
        assert_eq!(word(&page, 1028), 65535, "last page of 65536");
        assert_eq!(word(&page, 1032), 0, "bad pages");
        assert_eq!(&page[1036..1052], &uuid);
        assert!(
            page[..1024].iter().all(|&b| b == 0),
            "boot blocks left alone"
        );
        assert!(
            page[1052..4086].iter().all(|&b| b == 0),
            "no label, no bad pages"
        );
    }

    #[test]
    fn a_partial_last_page_is_not_used() {
        let page = header(4096, 40 * 4096 + 100, [0; 16]).unwrap();
        assert_eq!(word(&page, 1028), 39);
    }

    #[test]
    fn other_page_sizes_put_the_signature_at_their_end() {
        let page = header(16384, 1 << 30, [0; 16]).unwrap();
        assert_eq!(&page[16384 - 10..], MAGIC);
        assert_eq!(word(&page, 1028), (1 << 16) - 1);
    }

    #[test]
    fn too_small_a_device_or_a_strange_page_size_is_refused() {
        assert_eq!(
            header(4096, 9 * 4096, [0; 16]),
            Err(SwapError::TooSmall { pages: 9 })
        );
        assert!(header(4096, 10 * 4096, [0; 16]).is_ok());
        assert_eq!(
            header(3000, 1 << 20, [0; 16]),
            Err(SwapError::PageSize(3000))
        );
        assert_eq!(
            header(2048, 1 << 20, [0; 16]),
            Err(SwapError::PageSize(2048))
        );
    }

    #[test]
    fn a_huge_device_is_named_up_to_the_headers_limit() {
        let page = header(4096, 64 << 40, [0; 16]).unwrap();
        assert_eq!(word(&page, 1028), u32::MAX);
    }
}

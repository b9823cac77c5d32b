//! What the system jobs write, send and expect, shared by both builds of them: the guest's
//! (`nonaim_job`, through libipc) and Linux's (`linux-workloads`, through libc). The two do
//! the same work with each system's own calls; the data, the sizes and the expected results
//! come from here, so a job checks the same words on both.

use crate::mix::splitmix64;

/// Bytes page_test allocates and touches a word of in every page.
pub const PAGE_TEST_BYTES: u64 = 1 << 20;
/// Bytes brk_test grows the break by, a page at a time.
pub const BRK_TEST_BYTES: u64 = 256 * 1024;
/// The page size both systems use.
pub const PAGE: u64 = 4096;
/// Children fork_test forks.
pub const FORK_TEST_CHILDREN: u64 = 20;
/// Children exec_test forks and execs.
pub const EXEC_TEST_CHILDREN: u64 = 5;
/// Round trips of pipe_test.
pub const PIPE_ROUND_TRIPS: u32 = 200;
/// Bytes each way of a pipe_test round trip.
pub const PIPE_BYTES: usize = 64;
/// Bytes shm_test shares with a child.
pub const SHM_BYTES: u64 = 64 * 1024;
/// Children shm_test lets write the shared bytes, one after the other.
pub const SHM_ROUNDS: u64 = 4;
/// Bytes of one file_test read.
pub const FILE_READ_BYTES: u64 = 4096;

/// The word page `page` of a job with seed `seed` holds (page_test, brk_test): never 0
/// (untouched memory is).
pub fn page_word(seed: u32, page: u64) -> u64 {
    splitmix64(u64::from(seed) << 32 | page) | 1
}

/// Where in page `page` page_test writes its word: the place moves through the page, so the
/// pages are not all alike. A byte offset from the page's start.
pub fn page_test_offset(page: u64) -> u64 {
    (page % 512) * 8
}

/// A word page_test never writes in page `page` (it must read 0).
pub fn page_test_untouched_offset(page: u64) -> u64 {
    ((page + 1) % 512) * 8
}

/// The status fork_test's child `child` exits with (1 to 100: never 0, and small enough for
/// any system's exit status).
pub fn fork_child_status(seed: u32, child: u64) -> u64 {
    (u64::from(seed) + child) % 100 + 1
}

/// The argument exec_test gives the program its child `child` execs (which exits with
/// [`crate::mix::exit_status_for`] of it).
pub fn exec_argument(seed: u32, child: u64) -> u64 {
    u64::from(seed) << 8 | child
}

/// The bytes of pipe_test's round trip `round` in direction `way` (0: the child's request,
/// 1: the parent's answer).
pub fn pipe_bytes(seed: u32, round: u32, way: u64) -> [u8; PIPE_BYTES] {
    let mut bytes = [0u8; PIPE_BYTES];
    let base = splitmix64(u64::from(seed) << 33 | u64::from(round) << 1 | way);
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&splitmix64(base + i as u64).to_le_bytes());
    }
    bytes
}

/// The word at word `index` of shm_test's region in round `round`.
pub fn shared_word(seed: u32, round: u64, index: u64) -> u64 {
    splitmix64(u64::from(seed) << 40 ^ round << 32 ^ index)
}

/// Where file_test starts reading a file of `size` bytes (at least
/// [`crate::FILE_TEST_BYTES`]): a multiple of [`FILE_READ_BYTES`] its seed picks, with room
/// for the whole read.
pub fn file_test_start(seed: u32, size: u64) -> u64 {
    let starts = (size - crate::FILE_TEST_BYTES) / FILE_READ_BYTES + 1;
    splitmix64(u64::from(seed)) % starts * FILE_READ_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_words_are_never_zero_and_differ_by_page_and_seed() {
        for page in 0..256 {
            assert_ne!(page_word(7, page), 0);
            assert_ne!(page_word(7, page), page_word(7, page + 1));
            assert_ne!(page_word(7, page), page_word(8, page));
        }
        // The written and the untouched word never share a place.
        for page in 0..1024 {
            assert_ne!(page_test_offset(page), page_test_untouched_offset(page));
            assert!(page_test_untouched_offset(page) + 8 <= PAGE);
        }
    }

    #[test]
    fn child_statuses_are_small_and_never_zero() {
        for seed in [0, 1, 99, (1 << 26) - 1] {
            for child in 0..FORK_TEST_CHILDREN {
                assert!((1..=100).contains(&fork_child_status(seed, child)));
            }
        }
        assert_ne!(exec_argument(3, 0), exec_argument(3, 1));
    }

    #[test]
    fn pipe_bytes_differ_by_round_and_way() {
        assert_ne!(pipe_bytes(5, 0, 0), pipe_bytes(5, 0, 1));
        assert_ne!(pipe_bytes(5, 0, 0), pipe_bytes(5, 1, 0));
        assert_ne!(shared_word(5, 0, 0), shared_word(5, 1, 0));
    }

    #[test]
    fn file_reads_start_on_a_read_boundary_with_room_for_the_whole_read() {
        for seed in 0..1000 {
            let start = file_test_start(seed, crate::DATA_FILE_BYTES);
            assert_eq!(start % FILE_READ_BYTES, 0);
            assert!(start + crate::FILE_TEST_BYTES <= crate::DATA_FILE_BYTES);
        }
        assert_eq!(file_test_start(9, crate::FILE_TEST_BYTES), 0);
    }
}

//! The order a random scan touches pages in: a shuffle of `0..count` driven by a fixed-seed
//! pseudo-random generator, so the scan, and the figures counted over it, are the same on
//! every run.

use alloc::vec::Vec;

/// The seed of every shuffled scan.
pub const SEED: u64 = 0x0123_4567_89ab_cdef;

/// SplitMix64 (Steele, Lea and Flood): small, fast, and good enough to shuffle pages.
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_word(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (multiply and shift: no division, a bias under
    /// `bound / 2^64`, nothing for page counts).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_word()) * u128::from(bound)) >> 64) as u64
    }
}

/// `0..count` in the order of a Fisher-Yates shuffle driven by `SplitMix64::new(seed)`.
pub fn shuffled(count: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..count).collect();
    let mut random = SplitMix64::new(seed);
    for i in (1..order.len()).rev() {
        let j = random.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_splitmix64() {
        // The reference implementation's first outputs from seed 0.
        let mut random = SplitMix64::new(0);
        assert_eq!(random.next_word(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(random.next_word(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn a_shuffle_is_a_permutation_and_repeats() {
        let order = shuffled(1024, SEED);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().copied().eq(0..1024));
        assert_ne!(order, sorted, "the order is shuffled");
        assert_eq!(order, shuffled(1024, SEED), "the same seed, the same order");
        assert_ne!(order, shuffled(1024, SEED + 1));
    }

    #[test]
    fn small_shuffles() {
        assert!(shuffled(0, SEED).is_empty());
        assert_eq!(shuffled(1, SEED), [0]);
        let mut random = SplitMix64::new(SEED);
        assert!((0..1000).all(|_| random.below(3) < 3));
    }
}

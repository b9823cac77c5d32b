//! Shared pieces of the property tests of the kernel's decoders: their configuration and
//! mutations that turn a valid encoding into a nearly valid one (where decoders' bugs hide:
//! arbitrary bytes rarely get past a magic number or a length check). The same as libipc's,
//! whose test modules other crates cannot reach.

use proptest::prelude::*;
use proptest::sample::Index;

/// The properties' configuration: the default case count (256, or `PROPTEST_CASES` for a
/// longer run), and no regression files written beside the sources (a failure prints its
/// minimal input instead).
pub fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One change to an encoding.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Sets one byte.
    Byte(Index, u8),
    /// Writes a little-endian integer of `width` bytes (cut at the end of the bytes).
    Word(Index, u64, usize),
    /// Cuts the bytes short.
    Truncate(Index),
}

/// Integers that sit on the edges decoders check: zero, ones, powers of two and near them.
fn edge_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::from(u32::MAX)),
        Just(u64::from(u16::MAX)),
        (0u32..64).prop_map(|shift| 1u64 << shift),
        (0u32..64).prop_map(|shift| (1u64 << shift).wrapping_sub(1)),
        (0u32..64).prop_map(|shift| u64::MAX << shift),
        any::<u64>(),
    ]
}

/// A few mutations (1 to 6).
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Byte(at, byte)),
        4 => (any::<Index>(), edge_value(), prop_oneof![Just(2usize), Just(4), Just(8)])
            .prop_map(|(at, value, width)| Mutation::Word(at, value, width)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ];
    proptest::collection::vec(one, 1..=6)
}

/// Applies `mutations` to `bytes`, in order.
pub fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for mutation in mutations {
        if bytes.is_empty() {
            return;
        }
        match mutation {
            Mutation::Byte(at, byte) => {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            Mutation::Word(at, value, width) => {
                let at = at.index(bytes.len());
                let end = (at + width).min(bytes.len());
                let len = end - at;
                bytes[at..end].copy_from_slice(&value.to_le_bytes()[..len]);
            }
            Mutation::Truncate(at) => {
                let at = at.index(bytes.len());
                bytes.truncate(at);
            }
        }
    }
}

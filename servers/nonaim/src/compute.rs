//! The compute jobs: AIM's arithmetic loops, string routines, sieve, sort, matrix multiply
//! and memory routines, each on data from its seed, each checking its own result against a
//! computation of a different kind (a closed form, an invariant, a replay), so a wrong
//! result is caught, never reported as work done. Pure `core` code: no system call, no
//! allocation and nothing from libipc, so the same module builds for a static Linux program
//! (the `--linux` comparison).
//!
//! Sizes: each job's loop counts are set so that the work alone takes about the number of
//! instructions the issue asks of it on x86-64 Linux (SSE doubles), measured with valgrind
//! on the host build (`examples/linux_job.rs`; figures in docs/decisions.md, "NONAIM").
//! Where doubles are computed in software ([`FLOAT_IN_HARDWARE`] false: the guest today,
//! whose programs are built for `x86_64-unknown-none` since the kernel saves no SSE state
//! yet) an operation costs 80 to 260 instructions instead of one, so the three float jobs
//! do less work there, sized to the same instruction counts: the mix keeps its shape (the
//! float jobs would otherwise be nine tenths of its instructions). Once programs compute in
//! SSE the full work comes back by itself.

use crate::mix::{splitmix64, Job};
use core::hint::black_box;

/// Whether this build computes doubles in hardware (SSE2: the host, Linux); not in the
/// guest, whose programs are built soft-float for now.
pub const FLOAT_IN_HARDWARE: bool = cfg!(target_feature = "sse2");

/// A check a job's result failed: what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wrong(pub &'static str);

/// Runs compute job `job` on data from `seed`: a digest of its result when every check
/// passed. `None` for a job that is not a compute job.
pub fn run(job: Job, seed: u32) -> Option<Result<u64, Wrong>> {
    Some(match job {
        Job::AddInt => add_int(seed, ADD_INT_ROUNDS),
        Job::AddDouble => add_double(seed, ADD_DOUBLE_ROUNDS),
        Job::MulInt => mul_int(seed, MUL_INT_ROUNDS),
        Job::DivDouble => div_double(seed, DIV_DOUBLE_ROUNDS),
        Job::String => string(seed, STRING_ROUNDS),
        Job::Sieve => sieve(SIEVE_LIMIT, SIEVE_ROUNDS),
        Job::Sort => sort(seed, SORT_ROUNDS),
        Job::Matrix if FLOAT_IN_HARDWARE => matrix::<MATRIX_ORDER>(seed, MATRIX_ROUNDS),
        Job::Matrix => matrix::<MATRIX_ORDER_SOFT>(seed, 1),
        Job::Mem => mem(seed, MEM_ROUNDS),
        _ => return None,
    })
}

/// Four words from `seed`, none alike.
fn start_words(seed: u32) -> [u64; 4] {
    let base = splitmix64(u64::from(seed));
    core::array::from_fn(|i| splitmix64(base ^ i as u64))
}

// ---------------------------------------------------------------------------------------
// add_int: four integers added into each other, round after round.

/// Rounds of add_int (about 1.3 million instructions on Linux).
pub const ADD_INT_ROUNDS: u32 = 286_000;

/// The additions: a += b; b += c; c += d; d += a, `rounds` times (wrapping).
pub fn add_int_loop(start: [u64; 4], rounds: u32) -> [u64; 4] {
    let [mut a, mut b, mut c, mut d] = start;
    for _ in 0..rounds {
        a = a.wrapping_add(b);
        b = b.wrapping_add(c);
        c = c.wrapping_add(d);
        d = d.wrapping_add(a);
    }
    [a, b, c, d]
}

/// A 4 × 4 matrix of words (arithmetic modulo 2^64).
type Matrix4 = [[u64; 4]; 4];

fn multiply4(x: &Matrix4, y: &Matrix4) -> Matrix4 {
    core::array::from_fn(|i| {
        core::array::from_fn(|j| {
            (0..4).fold(0u64, |sum, k| {
                sum.wrapping_add(x[i][k].wrapping_mul(y[k][j]))
            })
        })
    })
}

/// What [`add_int_loop`] gives, computed otherwise: one round is a linear map (a' = a + b,
/// b' = b + c, c' = c + d, d' = a + b + d), so `rounds` rounds are its matrix to that power,
/// by repeated squaring.
pub fn add_int_closed(start: [u64; 4], rounds: u32) -> [u64; 4] {
    let mut power: Matrix4 = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 1]];
    let mut result: Matrix4 = core::array::from_fn(|i| core::array::from_fn(|j| u64::from(i == j)));
    let mut n = rounds;
    while n > 0 {
        if n & 1 == 1 {
            result = multiply4(&result, &power);
        }
        power = multiply4(&power, &power);
        n >>= 1;
    }
    core::array::from_fn(|i| {
        (0..4).fold(0u64, |sum, k| {
            sum.wrapping_add(result[i][k].wrapping_mul(start[k]))
        })
    })
}

pub fn add_int(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let start = start_words(seed);
    let end = add_int_loop(black_box(start), black_box(rounds));
    if end != add_int_closed(start, rounds) {
        return Err(Wrong("add_int: the sums differ from the matrix power"));
    }
    Ok(end[3])
}

// ---------------------------------------------------------------------------------------
// mul_int: two chains of multiply-and-add.

/// Rounds of mul_int (about 1.0 million instructions on Linux).
pub const MUL_INT_ROUNDS: u32 = 222_000;

/// An affine map x ↦ m·x + c modulo 2^64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Affine {
    pub m: u64,
    pub c: u64,
}

impl Affine {
    fn apply(self, x: u64) -> u64 {
        self.m.wrapping_mul(x).wrapping_add(self.c)
    }

    /// `self` after `first`.
    fn after(self, first: Affine) -> Affine {
        Affine {
            m: self.m.wrapping_mul(first.m),
            c: self.apply(first.c),
        }
    }

    /// The map applied `n` times, by repeated squaring.
    pub fn power(self, mut n: u32) -> Affine {
        let (mut result, mut square) = (Affine { m: 1, c: 0 }, self);
        while n > 0 {
            if n & 1 == 1 {
                result = square.after(result);
            }
            square = square.after(square);
            n >>= 1;
        }
        result
    }
}

/// The two maps and starting values of a mul_int job.
fn mul_int_maps(seed: u32) -> ([Affine; 2], [u64; 2]) {
    let w = start_words(seed);
    (
        [
            Affine {
                m: w[0] | 1,
                c: w[1] | 1,
            },
            Affine {
                m: w[2] | 1,
                c: w[3] | 1,
            },
        ],
        [w[1], w[2]],
    )
}

/// x = m·x + c and y = m'·y + c', `rounds` times.
pub fn mul_int_loop(maps: [Affine; 2], start: [u64; 2], rounds: u32) -> [u64; 2] {
    let [mut x, mut y] = start;
    for _ in 0..rounds {
        x = x.wrapping_mul(maps[0].m).wrapping_add(maps[0].c);
        y = y.wrapping_mul(maps[1].m).wrapping_add(maps[1].c);
    }
    [x, y]
}

pub fn mul_int(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let (maps, start) = mul_int_maps(seed);
    let end = mul_int_loop(black_box(maps), black_box(start), black_box(rounds));
    let expected = [
        maps[0].power(rounds).apply(start[0]),
        maps[1].power(rounds).apply(start[1]),
    ];
    if end != expected {
        return Err(Wrong("mul_int: the products differ from the map's power"));
    }
    Ok(end[0] ^ end[1])
}

// ---------------------------------------------------------------------------------------
// add_double: doubles added, exactly (every value a multiple of 1/8 well below 2^53).

/// Rounds of add_double (about 1.1 million instructions on Linux).
pub const ADD_DOUBLE_ROUNDS_SSE: u32 = 314_000;
/// Rounds of add_double in software floating point (about 1.1 million instructions).
pub const ADD_DOUBLE_ROUNDS_SOFT: u32 = 4_150;
/// Rounds of add_double in this build.
pub const ADD_DOUBLE_ROUNDS: u32 = if FLOAT_IN_HARDWARE {
    ADD_DOUBLE_ROUNDS_SSE
} else {
    ADD_DOUBLE_ROUNDS_SOFT
};

/// a += b; b += 0.25; c += 0.5, `rounds` times from a = `base`, b = `step`, c = 0; (a, c).
pub fn add_double_loop(base: f64, step: f64, rounds: u32) -> (f64, f64) {
    let (mut a, mut b, mut c) = (base, step, 0.0f64);
    for _ in 0..rounds {
        a += b;
        b += 0.25;
        c += 0.5;
    }
    (a, c)
}

pub fn add_double(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let (base, step) = (u64::from(seed % 1000), u64::from(1 + seed % 7));
    let (a, c) = add_double_loop(
        black_box(base as f64),
        black_box(step as f64),
        black_box(rounds),
    );
    // a = base + n·step + (n(n-1)/2)/4: 8a = 8·base + 8·n·step + n(n-1), all exact.
    let n = u64::from(rounds);
    let eighths = 8 * base + 8 * n * step + n * n.saturating_sub(1);
    if a * 8.0 != eighths as f64 || c * 2.0 != n as f64 {
        return Err(Wrong("add_double: the sum differs from the closed form"));
    }
    Ok(eighths)
}

// ---------------------------------------------------------------------------------------
// div_double: doubles divided, each quotient exact (a multiple of the divisor divided by it).

/// Rounds of div_double (about 0.8 million instructions on Linux).
pub const DIV_DOUBLE_ROUNDS_SSE: u32 = 42_000;
/// Rounds of div_double in software floating point (about 0.8 million instructions).
pub const DIV_DOUBLE_ROUNDS_SOFT: u32 = 3_040;
/// Rounds of div_double in this build.
pub const DIV_DOUBLE_ROUNDS: u32 = if FLOAT_IN_HARDWARE {
    DIV_DOUBLE_ROUNDS_SSE
} else {
    DIV_DOUBLE_ROUNDS_SOFT
};

/// For k below `rounds`: (base + k)·d_k / d_k in doubles, d_k odd from 3 to 123 (a small
/// generator from `seed`); the sum of the quotients.
pub fn div_double_loop(seed: u64, base: u64, rounds: u32) -> f64 {
    let mut state = seed;
    let mut sum = 0.0f64;
    for k in 0..u64::from(rounds) {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let divisor = 3 + 2 * ((state >> 33) % 61);
        // Signed conversions: one instruction each with SSE (what a C `long` would be).
        let dividend = ((base + k) * divisor) as i64;
        sum += dividend as f64 / divisor as i64 as f64;
    }
    sum
}

pub fn div_double(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let base = u64::from(seed % 4096);
    let sum = div_double_loop(
        black_box(u64::from(seed)),
        black_box(base),
        black_box(rounds),
    );
    // Every quotient is base + k exactly: the sum is n·base + n(n-1)/2 (far below 2^53, so a
    // quotient off by a fraction would show).
    let n = u64::from(rounds);
    let expected = n * base + n * n.saturating_sub(1) / 2;
    if sum != expected as f64 {
        return Err(Wrong(
            "div_double: the quotients' sum differs from the closed form",
        ));
    }
    Ok(expected)
}

// ---------------------------------------------------------------------------------------
// string: C's string routines (strlen, strcpy, strcat, strcmp) on NUL-terminated words.

/// Words of the string job (about 1.4 million instructions on Linux).
pub const STRING_ROUNDS: u32 = 545;
/// The text words are appended to; when the next does not fit, it is hashed and emptied.
pub const STRING_TEXT: usize = 2048;
/// Room for a word and its NUL.
const WORD_ROOM: usize = 48;

/// Bytes before the first NUL (all of `s` if none).
pub fn strlen(s: &[u8]) -> usize {
    let mut n = 0;
    while n < s.len() && s[n] != 0 {
        n += 1;
    }
    n
}

/// Copies the string in `src` and its NUL to `dst`; `false` if it does not fit.
pub fn strcpy(dst: &mut [u8], src: &[u8]) -> bool {
    let mut i = 0;
    loop {
        if i >= dst.len() {
            return false;
        }
        let byte = if i < src.len() { src[i] } else { 0 };
        dst[i] = byte;
        if byte == 0 {
            return true;
        }
        i += 1;
    }
}

/// Appends the string in `src` to the one in `dst`; `false` (and `dst` unchanged) if it does
/// not fit.
pub fn strcat(dst: &mut [u8], src: &[u8]) -> bool {
    let end = strlen(dst);
    if end + strlen(src) >= dst.len() {
        return false;
    }
    strcpy(&mut dst[end..], src)
}

/// C's strcmp: negative, zero or positive as `a` sorts before, with or after `b`.
pub fn strcmp(a: &[u8], b: &[u8]) -> i32 {
    let mut i = 0;
    loop {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        if x != y || x == 0 {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
}

/// FNV-1a over `bytes`, continuing `hash`.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The next word of generator `state`: 8 to 40 lower-case letters and a NUL into `out`; its
/// length.
fn word(state: &mut u64, out: &mut [u8; WORD_ROOM]) -> usize {
    *state = splitmix64(*state);
    let len = 8 + (*state % 33) as usize;
    let mut letters = *state;
    for slot in out.iter_mut().take(len) {
        letters = letters.rotate_left(5) ^ 0x9e37_79b9;
        *slot = b'a' + (letters % 26) as u8;
    }
    out[len] = 0;
    len
}

pub fn string(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let mut text = [0u8; STRING_TEXT];
    let (mut w, mut copy) = ([0u8; WORD_ROOM], [0u8; WORD_ROOM]);
    let mut state = black_box(u64::from(seed));
    let (mut hash, mut total) = (FNV_OFFSET, 0usize);
    for _ in 0..rounds {
        let len = word(&mut state, &mut w);
        if !strcpy(&mut copy, &w) || strcmp(&copy, &w) != 0 || strlen(&copy) != len {
            return Err(Wrong("string: a copy differs from its word"));
        }
        // One letter up: the copy now sorts after the word.
        copy[len - 1] += 1;
        if strcmp(&copy, &w) <= 0 || strcmp(&w, &copy) >= 0 {
            return Err(Wrong("string: strcmp misorders two words"));
        }
        if !strcat(&mut text, &w) {
            let used = strlen(&text);
            hash = fnv1a(hash, &text[..used]);
            total += used;
            text[0] = 0;
            if !strcat(&mut text, &w) {
                return Err(Wrong("string: a word does not fit an empty text"));
            }
        }
        black_box(&mut text);
    }
    let used = strlen(&text);
    hash = fnv1a(hash, &text[..used]);
    total += used;
    // The texts, one after another, are the words one after another: hash those directly.
    let mut state = u64::from(seed);
    let (mut expected, mut expected_total) = (FNV_OFFSET, 0usize);
    for _ in 0..rounds {
        let len = word(&mut state, &mut w);
        expected = fnv1a(expected, &w[..len]);
        expected_total += len;
    }
    if (hash, total) != (expected, expected_total) {
        return Err(Wrong("string: the texts differ from the words appended"));
    }
    Ok(hash)
}

// ---------------------------------------------------------------------------------------
// sieve: the primes below 65,536 by Eratosthenes' sieve.

/// The sieve's limit.
pub const SIEVE_LIMIT: usize = 65_536;
/// Primes below 65,536.
pub const PRIMES_BELOW_65536: u32 = 6542;
/// Sieves per job (one: 1.0 million instructions on Linux, the 0.9).
pub const SIEVE_ROUNDS: u32 = 1;

/// The number of primes below `limit` (at most [`SIEVE_LIMIT`]).
pub fn sieve_count(limit: usize) -> u32 {
    let limit = limit.min(SIEVE_LIMIT);
    let mut composite = [false; SIEVE_LIMIT];
    let mut count = 0;
    for n in 2..limit {
        if composite[n] {
            continue;
        }
        count += 1;
        let mut multiple = n * n;
        while multiple < limit {
            composite[multiple] = true;
            multiple += n;
        }
    }
    count
}

pub fn sieve(limit: usize, rounds: u32) -> Result<u64, Wrong> {
    let mut count = 0;
    for _ in 0..rounds {
        count = sieve_count(black_box(limit));
        if limit == SIEVE_LIMIT && count != PRIMES_BELOW_65536 {
            return Err(Wrong("sieve: not 6542 primes below 65536"));
        }
    }
    Ok(u64::from(count))
}

// ---------------------------------------------------------------------------------------
// sort: 4,096 integers sorted.

/// Integers per sort.
pub const SORT_INTS: usize = 4096;
/// Sorts per job (two: 1.34 million instructions on Linux; the 1.6 lies between two
/// and three).
pub const SORT_ROUNDS: u32 = 2;

/// A fingerprint of a multiset of integers: the same for every order, different for other
/// contents (in practice).
pub fn fingerprint(values: &[u32]) -> (u64, u64) {
    values.iter().fold((0u64, 0u64), |(sum, mixed), &v| {
        (
            sum.wrapping_add(u64::from(v)),
            mixed.wrapping_add(splitmix64(u64::from(v))),
        )
    })
}

pub fn sort(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let mut values = [0u32; SORT_INTS];
    let mut state = u64::from(seed);
    let mut digest = 0;
    for _ in 0..rounds {
        for v in values.iter_mut() {
            state = splitmix64(state);
            *v = state as u32;
        }
        let before = fingerprint(&values);
        black_box(&mut values).sort_unstable();
        if values.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err(Wrong("sort: the integers are out of order"));
        }
        if fingerprint(&values) != before {
            return Err(Wrong("sort: the sorted integers are not the ones given"));
        }
        digest ^= before.1;
    }
    Ok(digest)
}

// ---------------------------------------------------------------------------------------
// matrix: a 48 × 48 matrix multiply in doubles.

/// The matrices' order.
pub const MATRIX_ORDER: usize = 48;
/// Multiplies per job (two: 0.82 million instructions on Linux, the 0.9).
pub const MATRIX_ROUNDS: u32 = 2;
/// The order of the one multiply in software floating point (about 0.9 million
/// instructions; one 48 × 48 multiply takes 17 million there).
pub const MATRIX_ORDER_SOFT: usize = 17;

type Square<const N: usize> = [[f64; N]; N];

/// C = A·B.
pub fn multiply<const N: usize>(a: &Square<N>, b: &Square<N>, c: &mut Square<N>) {
    for (row, c_row) in a.iter().zip(c.iter_mut()) {
        *c_row = [0.0; N];
        for (&a_ik, b_row) in row.iter().zip(b.iter()) {
            for (c_ij, &b_kj) in c_row.iter_mut().zip(b_row.iter()) {
                *c_ij += a_ik * b_kj;
            }
        }
    }
}

/// M·x.
fn times_vector<const N: usize>(m: &Square<N>, x: &[f64; N]) -> [f64; N] {
    core::array::from_fn(|i| m[i].iter().zip(x).map(|(a, b)| a * b).sum())
}

/// Freivalds' check: C·x = A·(B·x) for x = (1, 2, ..., N). Every entry is an integer far
/// below 2^53, so the doubles are exact and the test is equality.
pub fn product_checks_out<const N: usize>(a: &Square<N>, b: &Square<N>, c: &Square<N>) -> bool {
    let x: [f64; N] = core::array::from_fn(|j| (j + 1) as f64);
    times_vector(c, &x) == times_vector(a, &times_vector(b, &x))
}

pub fn matrix<const N: usize>(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let mut a = [[0.0; N]; N];
    let mut b = [[0.0; N]; N];
    let mut c = [[0.0; N]; N];
    let mut state = u64::from(seed);
    let mut trace = 0.0;
    for _ in 0..rounds {
        for entry in a.iter_mut().chain(b.iter_mut()).flatten() {
            state = splitmix64(state);
            *entry = (state % 16) as f64;
        }
        multiply(black_box(&a), black_box(&b), &mut c);
        if !product_checks_out(&a, &b, &c) {
            return Err(Wrong("matrix: C·x differs from A·(B·x)"));
        }
        trace = (0..N).map(|i| c[i][i]).sum();
    }
    Ok(trace as u64)
}

// ---------------------------------------------------------------------------------------
// mem: 64 KiB set, copied and compared, twelve times.

/// Bytes of each buffer.
pub const MEM_BYTES: usize = 64 * 1024;
/// Set-copy-compare rounds per job (the twelve: 1.85 million instructions on Linux).
pub const MEM_ROUNDS: u32 = 12;

pub fn mem(seed: u32, rounds: u32) -> Result<u64, Wrong> {
    let mut a = [0u8; MEM_BYTES];
    let mut b = [0u8; MEM_BYTES];
    let mut state = u64::from(seed);
    let mut digest = 0u64;
    for _ in 0..rounds {
        state = splitmix64(state);
        let value = (state >> 8) as u8;
        let place = (state >> 32) as usize % MEM_BYTES;
        black_box(&mut a).fill(value);
        black_box(&mut b).copy_from_slice(&a);
        if black_box(&a) != black_box(&b) {
            return Err(Wrong("mem: a copy compares unequal"));
        }
        b[place] ^= 0x5a;
        if black_box(&a) == black_box(&b) {
            return Err(Wrong("mem: buffers that differ compare equal"));
        }
        if a[place] != value || b[place] != value ^ 0x5a || a[MEM_BYTES - 1 - place] != value {
            return Err(Wrong("mem: a byte differs from the value set"));
        }
        digest = digest.wrapping_add(u64::from(value));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_int_matches_its_matrix_power_and_a_step_by_step_replay() {
        for seed in [0, 1, 77, u32::MAX] {
            let start = start_words(seed);
            for rounds in [0, 1, 2, 3, 17, 1000] {
                // The loop, written out once more by hand.
                let mut s = start;
                for _ in 0..rounds {
                    s[0] = s[0].wrapping_add(s[1]);
                    s[1] = s[1].wrapping_add(s[2]);
                    s[2] = s[2].wrapping_add(s[3]);
                    s[3] = s[3].wrapping_add(s[0]);
                }
                assert_eq!(add_int_loop(start, rounds), s);
                assert_eq!(add_int_closed(start, rounds), s, "{seed} {rounds}");
            }
            assert!(add_int(seed, 5000).is_ok());
        }
        // The closed form is no copy of the loop: a different round count disagrees.
        let start = start_words(3);
        assert_ne!(add_int_closed(start, 100), add_int_loop(start, 101));
    }

    #[test]
    fn mul_int_matches_the_maps_power() {
        for seed in [0, 9, 12345] {
            let (maps, start) = mul_int_maps(seed);
            for rounds in [0, 1, 5, 64, 999] {
                let mut x = start[0];
                for _ in 0..rounds {
                    x = x.wrapping_mul(maps[0].m).wrapping_add(maps[0].c);
                }
                assert_eq!(mul_int_loop(maps, start, rounds)[0], x);
                assert_eq!(maps[0].power(rounds).apply(start[0]), x);
            }
            assert!(mul_int(seed, 3000).is_ok());
        }
        let map = Affine { m: 3, c: 1 };
        assert_eq!(map.power(3), Affine { m: 27, c: 13 });
    }

    #[test]
    fn add_double_is_exact_and_checked() {
        let (a, c) = add_double_loop(10.0, 2.0, 4);
        // 10 + 2 + 2.25 + 2.5 + 2.75
        assert_eq!((a, c), (19.5, 2.0));
        for seed in [0, 5, 999_999] {
            assert!(add_double(seed, ADD_DOUBLE_ROUNDS_SSE).is_ok());
            assert!(add_double(seed, ADD_DOUBLE_ROUNDS_SOFT).is_ok());
        }
        assert!(add_double(1, 0).is_ok());
    }

    #[test]
    fn div_double_quotients_are_exact() {
        assert_eq!(div_double_loop(1, 10, 3), 33.0);
        for seed in [0, 3, 4095, 70_000] {
            assert!(div_double(seed, DIV_DOUBLE_ROUNDS_SSE).is_ok());
            assert!(div_double(seed, DIV_DOUBLE_ROUNDS_SOFT).is_ok());
        }
    }

    #[test]
    fn string_routines_behave_as_cs() {
        let mut buffer = [0xffu8; 16];
        assert!(strcpy(&mut buffer, b"abc\0"));
        assert_eq!(&buffer[..4], b"abc\0");
        assert_eq!(strlen(&buffer), 3);
        assert!(strcat(&mut buffer, b"defg\0"));
        assert_eq!(&buffer[..8], b"abcdefg\0");
        assert!(
            !strcat(&mut buffer, b"0123456789\0"),
            "17 bytes do not fit 16"
        );
        assert_eq!(&buffer[..8], b"abcdefg\0");
        assert!(!strcpy(&mut [0u8; 3], b"abc\0"));
        assert_eq!(strcmp(b"abc\0", b"abc\0"), 0);
        assert!(strcmp(b"abc\0", b"abd\0") < 0);
        assert!(strcmp(b"abcd\0", b"abc\0") > 0);
        assert!(strcmp(b"ab\0", b"abc\0") < 0);
        for seed in [0, 1, 2] {
            assert!(string(seed, STRING_ROUNDS).is_ok());
        }
        // The hash is of the words in order, whatever the text's size.
        let mut state = 7;
        let mut w = [0u8; WORD_ROOM];
        let len = word(&mut state, &mut w);
        assert!((8..=40).contains(&len) && w[len] == 0);
        assert!(w[..len].iter().all(u8::is_ascii_lowercase));
    }

    #[test]
    fn the_sieve_counts_the_primes() {
        let by_trial = |limit: usize| {
            (2..limit)
                .filter(|&n| (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0))
                .count() as u32
        };
        for limit in [0, 2, 3, 10, 100, 1000, 5000] {
            assert_eq!(sieve_count(limit), by_trial(limit), "{limit}");
        }
        assert_eq!(sieve_count(SIEVE_LIMIT), PRIMES_BELOW_65536);
        assert_eq!(sieve(SIEVE_LIMIT, 1), Ok(6542));
    }

    #[test]
    fn sort_sorts_and_the_fingerprint_sees_other_contents() {
        assert!(sort(11, SORT_ROUNDS).is_ok());
        let values = [3u32, 1, 2];
        assert_eq!(fingerprint(&values), fingerprint(&[1, 2, 3]));
        assert_ne!(fingerprint(&values), fingerprint(&[1, 2, 2]));
        assert_ne!(fingerprint(&[0, 3]), fingerprint(&[1, 2]));
    }

    #[test]
    fn the_matrix_product_is_checked_and_a_wrong_entry_is_caught() {
        let mut a = [[0.0; MATRIX_ORDER]; MATRIX_ORDER];
        let mut b = [[0.0; MATRIX_ORDER]; MATRIX_ORDER];
        for i in 0..MATRIX_ORDER {
            for j in 0..MATRIX_ORDER {
                a[i][j] = ((i * 7 + j) % 5) as f64;
                b[i][j] = ((i + 3 * j) % 4) as f64;
            }
        }
        let mut c = [[0.0; MATRIX_ORDER]; MATRIX_ORDER];
        multiply(&a, &b, &mut c);
        // Entry (2, 5) by the definition.
        let c25: f64 = (0..MATRIX_ORDER).map(|k| a[2][k] * b[k][5]).sum();
        assert_eq!(c[2][5], c25);
        assert!(product_checks_out(&a, &b, &c));
        c[7][9] += 1.0;
        assert!(!product_checks_out(&a, &b, &c));
        assert!(matrix::<MATRIX_ORDER>(4, MATRIX_ROUNDS).is_ok());
        assert!(matrix::<MATRIX_ORDER_SOFT>(4, 1).is_ok());
    }

    #[test]
    fn mem_runs_its_rounds() {
        assert!(mem(1, MEM_ROUNDS).is_ok());
        assert_ne!(mem(1, 3), mem(2, 3));
    }

    #[test]
    fn every_compute_job_runs_and_the_others_are_not_compute() {
        for job in crate::mix::ALL {
            match run(job, 42) {
                Some(result) => {
                    assert!(job.is_compute());
                    assert!(result.is_ok(), "{job}: {result:?}");
                }
                None => assert!(!job.is_compute()),
            }
        }
    }
}

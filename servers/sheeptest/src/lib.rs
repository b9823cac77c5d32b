//! sheeptest's pure parts, host-tested: its arguments (`P,S,R`), the word every address of a
//! worker's memory holds, and the fill and the checks of that memory in either direction.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use core::fmt;

/// Bytes in a page.
pub const PAGE: u64 = 4096;
/// 8-byte words in a page.
pub const WORDS_PER_PAGE: usize = (PAGE / 8) as usize;

/// Processes when `P` is not given.
pub const DEFAULT_PROCESSES: u32 = 4;
/// Bytes each process touches when `S` is not given (4 MiB).
pub const DEFAULT_BYTES: u64 = 4 << 20;
/// Forward-and-backward scans when `R` is not given.
pub const DEFAULT_ROUNDS: u32 = 1;

/// Most processes (each is a task with its own memory).
pub const MAX_PROCESSES: u32 = 64;
/// Most bytes a process touches (1 GiB).
pub const MAX_BYTES: u64 = 1 << 30;
/// Most rounds of scans.
pub const MAX_ROUNDS: u32 = 1000;

/// What the run does; every field is within its limits (`parse` checks them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    processes: u32,
    pages: u64,
    rounds: u32,
}

impl Params {
    /// Processes forked, each touching its own memory.
    pub fn processes(&self) -> u32 {
        self.processes
    }

    /// Pages each process touches (its `S` rounded up to whole pages).
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Bytes each process touches.
    pub fn bytes(&self) -> u64 {
        self.pages * PAGE
    }

    /// Rounds of scans, each forward then backward.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The run's name in its figures (lower case, as metric names are): processes `x` size,
    /// e.g. `4x4m` (`k` when the size is not whole MiB).
    pub fn label(&self) -> alloc::string::String {
        let bytes = self.bytes();
        if bytes.is_multiple_of(1 << 20) {
            alloc::format!("{}x{}m", self.processes, bytes >> 20)
        } else {
            alloc::format!("{}x{}k", self.processes, bytes >> 10)
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params {
            processes: DEFAULT_PROCESSES,
            pages: DEFAULT_BYTES / PAGE,
            rounds: DEFAULT_ROUNDS,
        }
    }
}

/// Why the arguments were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// More than three arguments (the count given).
    TooMany(usize),
    /// An argument that is not a number (with a K, M or G suffix for the size).
    NotANumber { what: &'static str, text: &'a str },
    /// A number outside its limits.
    OutOfRange {
        what: &'static str,
        text: &'a str,
        min: u64,
        max: u64,
    },
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArgError::TooMany(count) => {
                write!(f, "{count} arguments, expected at most 3 (P,S,R)")
            }
            ArgError::NotANumber { what, text } => write!(f, "{what} `{text}` is not a number"),
            ArgError::OutOfRange {
                what,
                text,
                min,
                max,
            } => write!(f, "{what} `{text}` is not between {min} and {max}"),
        }
    }
}

/// A size in bytes with an optional K, M or G suffix (either case).
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The run `args` asks for: `P` processes, `S` bytes each (K, M, G suffixes), `R` rounds, in
/// that order; those not given take their defaults.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Params, ArgError<'a>> {
    let args: [Option<&str>; 4] = {
        let mut iter = args.into_iter();
        let first: [Option<&str>; 3] = core::array::from_fn(|_| iter.next());
        let extra = iter.count();
        if extra > 0 {
            return Err(ArgError::TooMany(3 + extra));
        }
        [first[0], first[1], first[2], None]
    };
    let mut params = Params::default();
    if let Some(text) = args[0] {
        params.processes = number(text, "processes (P)", 1, MAX_PROCESSES.into())? as u32;
    }
    if let Some(text) = args[1] {
        let what = "size (S)";
        let bytes = parse_size(text).ok_or(ArgError::NotANumber { what, text })?;
        in_range(bytes, text, what, 1, MAX_BYTES)?;
        params.pages = bytes.div_ceil(PAGE);
    }
    if let Some(text) = args[2] {
        params.rounds = number(text, "rounds (R)", 1, MAX_ROUNDS.into())? as u32;
    }
    Ok(params)
}

fn number<'a>(text: &'a str, what: &'static str, min: u64, max: u64) -> Result<u64, ArgError<'a>> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArgError::NotANumber { what, text });
    }
    // All digits: only overflow fails, which is out of range.
    let value = text.parse::<u64>().unwrap_or(u64::MAX);
    in_range(value, text, what, min, max)?;
    Ok(value)
}

fn in_range<'a>(
    value: u64,
    text: &'a str,
    what: &'static str,
    min: u64,
    max: u64,
) -> Result<(), ArgError<'a>> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ArgError::OutOfRange {
            what,
            text,
            min,
            max,
        })
    }
}

/// Words after which a page's pattern repeats (256 bytes): the data compresses (zpager
/// keeps what it pages out compressed in memory) yet every word has a known value.
pub const PATTERN_WORDS: usize = 32;

/// The word at word `word` of page `page` of worker `worker`'s memory: the worker, the page
/// and the word's place in its 256-byte pattern, packed and XORed with a constant. So no
/// word is 0 (the constant's top byte stays), every (worker, page, word mod 32) gives a
/// different value, and a page lost, zero-filled, misplaced or another worker's is seen at
/// its first word; a wrong byte anywhere is seen at its word.
pub fn word_value(worker: u32, page: u64, word: usize) -> u64 {
    let packed = (u64::from(worker) << 40) | (page << 12) | ((word % PATTERN_WORDS) as u64) << 3;
    packed ^ 0x5a00_c3c3_0000_0a5b
}

/// Which way a scan goes: forward from the first word of the first page, backward from
/// the last word of the last page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        })
    }
}

/// A word that does not hold what the fill wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub page: u64,
    /// Byte offset of the word in its page.
    pub offset: u64,
    pub expected: u64,
    pub found: u64,
}

/// Writes every word of `memory` (whole pages) with worker `worker`'s values, page by page.
pub fn fill(memory: &mut [u64], worker: u32) {
    for (page, words) in memory.chunks_exact_mut(WORDS_PER_PAGE).enumerate() {
        for (word, slot) in words.iter_mut().enumerate() {
            // Volatile: the stores are the workload; none may be merged or left out.
            // SAFETY: `slot` is a valid, aligned, exclusive reference.
            unsafe { core::ptr::write_volatile(slot, word_value(worker, page as u64, word)) };
        }
    }
}

/// Reads every word of `memory` in `direction` and compares it with what [`fill`] wrote;
/// the first that differs.
pub fn check(memory: &[u64], worker: u32, direction: Direction) -> Option<Mismatch> {
    let check_word = |index: usize| {
        // Volatile: each read must reach memory (and fault), not a value the compiler
        // remembers from the fill.
        // SAFETY: `index` is within `memory`, so the reference is valid and aligned.
        let found = unsafe { core::ptr::read_volatile(&memory[index]) };
        let (page, word) = ((index / WORDS_PER_PAGE) as u64, index % WORDS_PER_PAGE);
        let expected = word_value(worker, page, word);
        (found != expected).then_some(Mismatch {
            page,
            offset: word as u64 * 8,
            expected,
            found,
        })
    };
    match direction {
        Direction::Forward => (0..memory.len()).find_map(check_word),
        Direction::Backward => (0..memory.len()).rev().find_map(check_word),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(processes: u32, bytes: u64, rounds: u32) -> Params {
        Params {
            processes,
            pages: bytes / PAGE,
            rounds,
        }
    }

    #[test]
    fn no_arguments_take_the_defaults() {
        assert_eq!(parse([]), Ok(params(4, 4 << 20, 1)));
        assert_eq!(Params::default().bytes(), 4 << 20);
    }

    #[test]
    fn arguments_omitted_at_the_end_take_their_defaults() {
        assert_eq!(parse(["2"]), Ok(params(2, 4 << 20, 1)));
        assert_eq!(parse(["2", "2M"]), Ok(params(2, 2 << 20, 1)));
        assert_eq!(parse(["8", "512K", "3"]), Ok(params(8, 512 << 10, 3)));
    }

    #[test]
    fn sizes_take_suffixes_in_either_case() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("4M"), Some(4 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        for bad in ["", "M", "4MB", "-4M", "+4", "4 M", "1.5M", "0x10"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(
            parse_size("17179869184G"),
            None,
            "overflow of the multiplication"
        );
    }

    #[test]
    fn sizes_round_up_to_whole_pages() {
        assert_eq!(parse(["1", "1"]).unwrap().pages(), 1);
        assert_eq!(parse(["1", "4097"]).unwrap().pages(), 2);
        assert_eq!(parse(["1", "1G"]).unwrap().bytes(), MAX_BYTES);
    }

    #[test]
    fn bad_arguments_say_which_and_why() {
        assert_eq!(
            parse(["x"]),
            Err(ArgError::NotANumber {
                what: "processes (P)",
                text: "x"
            })
        );
        assert_eq!(
            parse(["4", "lots"]),
            Err(ArgError::NotANumber {
                what: "size (S)",
                text: "lots"
            })
        );
        assert_eq!(
            parse(["0"]),
            Err(ArgError::OutOfRange {
                what: "processes (P)",
                text: "0",
                min: 1,
                max: 64
            })
        );
        assert!(matches!(parse(["65"]), Err(ArgError::OutOfRange { .. })));
        assert!(matches!(
            parse(["99999999999999999999999"]),
            Err(ArgError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse(["1", "0"]),
            Err(ArgError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse(["1", "2G"]),
            Err(ArgError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse(["1", "1M", "0"]),
            Err(ArgError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse(["1", "1M", "-1"]),
            Err(ArgError::NotANumber { .. })
        ));
        assert_eq!(parse(["1", "1M", "1", "1"]), Err(ArgError::TooMany(4)));
        let message = parse(["4", "4Q"]).unwrap_err().to_string();
        assert_eq!(message, "size (S) `4Q` is not a number");
        let message = parse(["0"]).unwrap_err().to_string();
        assert_eq!(message, "processes (P) `0` is not between 1 and 64");
    }

    #[test]
    fn word_values_differ_and_are_never_zero() {
        let mut seen = std::collections::HashSet::new();
        for worker in [0, 1, 2, MAX_PROCESSES - 1] {
            for page in [0, 1, 2, 255, MAX_BYTES / PAGE - 1] {
                for word in 0..PATTERN_WORDS {
                    let value = word_value(worker, page, word);
                    assert!(seen.insert(value), "{worker} {page} {word}");
                    assert_ne!(value, 0);
                    assert_eq!(value, word_value(worker, page, word + PATTERN_WORDS));
                }
            }
        }
    }

    fn filled(pages: usize, worker: u32) -> Vec<u64> {
        let mut memory = vec![0; pages * WORDS_PER_PAGE];
        fill(&mut memory, worker);
        memory
    }

    #[test]
    fn a_fill_checks_out_both_ways() {
        let memory = filled(3, 2);
        assert_eq!(check(&memory, 2, Direction::Forward), None);
        assert_eq!(check(&memory, 2, Direction::Backward), None);
    }

    #[test]
    fn one_wrong_byte_is_found_both_ways_with_its_page_and_offset() {
        let mut memory = filled(3, 1);
        let index = WORDS_PER_PAGE + 17;
        let expected = memory[index];
        memory[index] ^= 0x100;
        let mismatch = Mismatch {
            page: 1,
            offset: 17 * 8,
            expected,
            found: expected ^ 0x100,
        };
        assert_eq!(check(&memory, 1, Direction::Forward), Some(mismatch));
        assert_eq!(check(&memory, 1, Direction::Backward), Some(mismatch));
    }

    #[test]
    fn zero_pages_and_another_workers_pages_are_wrong_at_the_scans_first_word() {
        let zeros = vec![0; 2 * WORDS_PER_PAGE];
        let forward = check(&zeros, 0, Direction::Forward).unwrap();
        assert_eq!((forward.page, forward.offset, forward.found), (0, 0, 0));
        let backward = check(&zeros, 0, Direction::Backward).unwrap();
        assert_eq!((backward.page, backward.offset), (1, PAGE - 8));
        let other = filled(2, 3);
        assert_eq!(check(&other, 4, Direction::Forward).unwrap().page, 0);
    }

    #[test]
    fn a_run_is_named_by_its_processes_and_size() {
        let named = |args: &[&str]| parse(args.iter().copied()).unwrap().label();
        assert_eq!(named(&["4", "4M"]), "4x4m");
        assert_eq!(named(&["2", "1536K"]), "2x1536k");
        assert_eq!(named(&[]), "4x4m");
    }
}

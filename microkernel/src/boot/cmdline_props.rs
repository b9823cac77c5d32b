//! Property tests of the command-line parser (the boot loader's text): any line parses
//! without a panic to options that keep their documented limits, with at most
//! `MAX_PROBLEMS` problems kept; a line of valid options, in any order and spacing, gives
//! back every value with no problem.

use log::LevelFilter;
use proptest::prelude::*;

use super::cmdline::MAX_PROGRAM_OPTION;
use super::cmdline::{parse, CommandLine, Crash, Problem, TestSelection, MAX_PROBLEMS};
use libipc::abi::archive::NAME_MAX;
use libipc::props::config;

/// Whether `part` is a piece of `line` (the parser only ever borrows from it).
fn borrowed_from(line: &str, part: &str) -> bool {
    let start = line.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    part.is_empty() || (start <= at && at + part.len() <= start + line.len())
}

/// Checks the limits every parsed command line keeps, whatever its text.
fn check_limits(line: &str, parsed: &CommandLine<'_>) -> Result<(), TestCaseError> {
    let problems: Vec<_> = parsed.problems().copied().collect();
    prop_assert!(problems.len() <= MAX_PROBLEMS);
    if problems.len() < MAX_PROBLEMS {
        prop_assert_eq!(parsed.dropped_problems(), 0);
    }
    for problem in &problems {
        let words = match *problem {
            Problem::Unknown(word) | Problem::Repeated(word) => word,
            Problem::BadValue { option, why } => {
                prop_assert!(!why.is_empty());
                option
            }
        };
        prop_assert!(borrowed_from(line, words));
        // The warning the kernel prints is built without a panic.
        prop_assert!(!problem.to_string().is_empty());
    }
    prop_assert!(parsed.mem_limit() != Some(0));
    prop_assert!(parsed.pager_timeout_ms() != Some(0));
    for (value, limit) in [
        (parsed.swap(), MAX_PROGRAM_OPTION),
        (parsed.args(), MAX_PROGRAM_OPTION),
        (parsed.sh(), MAX_PROGRAM_OPTION),
        (parsed.zcache(), MAX_PROGRAM_OPTION),
        (parsed.init(), NAME_MAX),
    ] {
        if let Some(value) = value {
            prop_assert!(!value.is_empty() && value.len() <= limit, "{:?}", value);
            prop_assert!(borrowed_from(line, value));
        }
    }
    match parsed.tests() {
        Some(TestSelection::Named(list)) => {
            prop_assert!(borrowed_from(line, list));
            let names: Vec<_> = list.split(',').collect();
            prop_assert!(names.iter().all(|name| !name.is_empty() && *name != "all"));
            let selection = TestSelection::Named(list);
            prop_assert_eq!(selection.names().collect::<Vec<_>>(), names.clone());
            prop_assert!(names.iter().all(|name| selection.includes(name)));
            prop_assert!(!selection.includes("all") && !selection.includes(""));
        }
        Some(TestSelection::All) | None => {}
    }
    Ok(())
}

/// The known keys, and a few near misses.
const KEYS: &[&str] = &[
    "mem",
    "log",
    "test",
    "crash",
    "init",
    "init_arg",
    "pager_timeout",
    "pageout",
    "swap",
    "zcache",
    "args",
    "swapper",
    "sh",
    "idle",
    "MEM",
    "me",
    "",
];

/// Lines made of option-like words: known or near keys, `=` or not, values of any printable
/// ASCII (quotes included) and a few other characters, separated by spaces and tabs.
fn option_like_line() -> impl Strategy<Value = String> {
    let word = (
        proptest::sample::select(KEYS),
        any::<bool>(),
        "[ -~\t\"é]{0,12}",
    )
        .prop_map(|(key, equals, value)| {
            if equals {
                format!("{key}={value}")
            } else {
                format!("{key}{value}")
            }
        });
    (proptest::collection::vec(word, 0..14), "[ \t\n]{1,3}")
        .prop_map(|(words, gap)| words.join(&gap))
}

/// One valid option: its word on the line and a check that the parsed line has its value.
#[derive(Clone, Debug)]
enum Valid {
    Mem(String, u64),
    Log(&'static str, LevelFilter),
    Test(String),
    Crash(Crash),
    Init(String),
    InitArg(u64),
    PagerTimeout(u64),
    Pageout(bool),
    Swap(String),
    Zcache(String),
    Args(String),
    Swapper(bool),
    Sh(String),
    Idle(bool),
}

impl Valid {
    /// The option as written on the line.
    fn word(&self) -> String {
        match self {
            Valid::Mem(text, _) => format!("mem={text}"),
            Valid::Log(name, _) => format!("log={name}"),
            Valid::Test(list) => format!("test={list}"),
            Valid::Crash(crash) => format!("crash={}", crash.name()),
            Valid::Init(name) => format!("init={name}"),
            Valid::InitArg(n) => format!("init_arg={n}"),
            Valid::PagerTimeout(ms) => format!("pager_timeout={ms}"),
            Valid::Pageout(whole) => format!("pageout={}", if *whole { "whole" } else { "lru" }),
            Valid::Swap(text) => format!("swap={text}"),
            Valid::Zcache(text) => format!("zcache={text}"),
            Valid::Args(text) => format!("args={text}"),
            Valid::Swapper(off) => format!("swapper={}", if *off { "off" } else { "on" }),
            Valid::Sh(text) => format!("sh=\"{text}\""),
            Valid::Idle(poll) => format!("idle={}", if *poll { "poll" } else { "halt" }),
        }
    }

    /// Which option it is (a line has each at most once).
    fn key(&self) -> u8 {
        match self {
            Valid::Mem(..) => 0,
            Valid::Log(..) => 1,
            Valid::Test(..) => 2,
            Valid::Crash(..) => 3,
            Valid::Init(..) => 4,
            Valid::InitArg(..) => 5,
            Valid::PagerTimeout(..) => 6,
            Valid::Pageout(..) => 7,
            Valid::Swap(..) => 8,
            Valid::Zcache(..) => 9,
            Valid::Args(..) => 10,
            Valid::Swapper(..) => 11,
            Valid::Sh(..) => 12,
            Valid::Idle(..) => 13,
        }
    }

    /// Checks that `parsed` has this option's value.
    fn check(&self, parsed: &CommandLine<'_>) -> Result<(), TestCaseError> {
        match self {
            Valid::Mem(_, bytes) => prop_assert_eq!(parsed.mem_limit(), Some(*bytes)),
            Valid::Log(_, level) => prop_assert_eq!(parsed.log_level(), *level),
            Valid::Test(list) if list == "all" => {
                prop_assert_eq!(parsed.tests(), Some(TestSelection::All))
            }
            Valid::Test(list) => {
                prop_assert_eq!(parsed.tests(), Some(TestSelection::Named(list)))
            }
            Valid::Crash(crash) => prop_assert_eq!(parsed.crash(), Some(*crash)),
            Valid::Init(name) => prop_assert_eq!(parsed.init(), Some(name.as_str())),
            Valid::InitArg(n) => prop_assert_eq!(parsed.init_arg(), *n),
            Valid::PagerTimeout(ms) => prop_assert_eq!(parsed.pager_timeout_ms(), Some(*ms)),
            Valid::Pageout(whole) => prop_assert_eq!(parsed.pageout_whole_clusters(), *whole),
            Valid::Swap(text) => prop_assert_eq!(parsed.swap(), Some(text.as_str())),
            Valid::Zcache(text) => prop_assert_eq!(parsed.zcache(), Some(text.as_str())),
            Valid::Args(text) => prop_assert_eq!(parsed.args(), Some(text.as_str())),
            Valid::Swapper(off) => prop_assert_eq!(parsed.swapper_off(), *off),
            Valid::Sh(text) => prop_assert_eq!(parsed.sh(), Some(text.as_str())),
            Valid::Idle(poll) => prop_assert_eq!(parsed.idle_poll(), *poll),
        }
        Ok(())
    }
}

/// A size as `mem=` and `zcache=` take it, and its bytes.
fn size() -> impl Strategy<Value = (String, u64)> {
    (1u64..1 << 20, 0usize..7).prop_map(|(n, unit)| {
        let (suffix, shift) = [
            ("", 0),
            ("K", 10),
            ("k", 10),
            ("M", 20),
            ("m", 20),
            ("G", 30),
            ("g", 30),
        ][unit];
        (format!("{n}{suffix}"), n << shift)
    })
}

fn valid_option() -> impl Strategy<Value = Valid> {
    let levels = [
        ("error", LevelFilter::Error),
        ("warn", LevelFilter::Warn),
        ("info", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
    ];
    let crashes = [
        Crash::PageFault,
        Crash::DivideError,
        Crash::InvalidOpcode,
        Crash::StackOverflow,
        Crash::Panic,
    ];
    let test_list = prop_oneof![
        Just(String::from("all")),
        proptest::collection::vec("[a-z_]{1,8}".prop_filter("not all", |n| n != "all"), 1..4)
            .prop_map(|names| names.join(",")),
    ];
    prop_oneof![
        size().prop_map(|(text, bytes)| Valid::Mem(text, bytes)),
        proptest::sample::select(levels.to_vec()).prop_map(|(name, level)| Valid::Log(name, level)),
        test_list.prop_map(Valid::Test),
        proptest::sample::select(crashes.to_vec()).prop_map(Valid::Crash),
        "[a-z_]{1,47}".prop_map(Valid::Init),
        any::<u64>().prop_map(Valid::InitArg),
        (1u64..).prop_map(Valid::PagerTimeout),
        any::<bool>().prop_map(Valid::Pageout),
        "[0-9a-zA-Z+:,]{1,256}".prop_map(Valid::Swap),
        size().prop_map(|(text, _)| Valid::Zcache(text)),
        "[0-9a-zA-Z,]{1,256}".prop_map(Valid::Args),
        any::<bool>().prop_map(Valid::Swapper),
        "[a-z0-9;| ]{1,200}".prop_map(Valid::Sh),
        any::<bool>().prop_map(Valid::Idle),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_line_parses_within_the_options_limits(line in any::<String>()) {
        check_limits(&line, &parse(&line))?;
    }

    #[test]
    fn option_like_lines_parse_within_the_options_limits(line in option_like_line()) {
        check_limits(&line, &parse(&line))?;
    }

    #[test]
    fn valid_options_in_any_order_and_spacing_give_back_their_values(
        options in proptest::collection::vec(valid_option(), 0..14),
        gaps in proptest::collection::vec("[ \t\n]{1,3}", 15),
    ) {
        // Each option once: a later one of the same key would be a repeat.
        let mut seen = 0u16;
        let options: Vec<Valid> = options
            .into_iter()
            .filter(|option| {
                let first = seen & (1 << option.key()) == 0;
                seen |= 1 << option.key();
                first
            })
            .collect();
        let mut line = gaps[0].clone();
        for (option, gap) in options.iter().zip(&gaps[1..]) {
            line.push_str(&option.word());
            line.push_str(gap);
        }
        let parsed = parse(&line);
        prop_assert_eq!(
            parsed.problems().count(),
            0,
            "{:?}",
            parsed.problems().collect::<Vec<_>>()
        );
        for option in &options {
            option.check(&parsed)?;
        }
        check_limits(&line, &parsed)?;
    }

    #[test]
    fn repeated_options_are_reported_and_the_first_values_kept(
        // More options than there are keys: some are repeated.
        options in proptest::collection::vec(valid_option(), 15..24),
    ) {
        let line = options
            .iter()
            .map(Valid::word)
            .collect::<Vec<_>>()
            .join(" ");
        let parsed = parse(&line);
        let mut seen = 0u16;
        let mut repeats = Vec::new();
        for option in &options {
            if seen & (1 << option.key()) == 0 {
                option.check(&parsed)?;
            } else {
                repeats.push(option.word());
            }
            seen |= 1 << option.key();
        }
        let reported: Vec<String> = parsed
            .problems()
            .map(|problem| match problem {
                Problem::Repeated(word) => Ok(String::from(*word)),
                other => Err(TestCaseError::fail(format!("unexpected {other:?}"))),
            })
            .collect::<Result<_, _>>()?;
        prop_assert_eq!(&reported[..], &repeats[..repeats.len().min(MAX_PROBLEMS)]);
        prop_assert_eq!(
            parsed.dropped_problems(),
            repeats.len().saturating_sub(MAX_PROBLEMS)
        );
    }
}

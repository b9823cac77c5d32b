//! Kernel command line: whitespace-separated `key=value` or bare `key` options, parsed in place.
//!
//! Parsing happens before there is a heap, so the result borrows the line and keeps at most
//! `MAX_PROBLEMS` problems in a fixed array (counting the rest). Nothing is silently ignored:
//! an unknown option, a bad value or a repeated option is recorded as a `Problem` for the
//! kernel to print as a warning, and parsing goes on with the other options. Quoting is not
//! supported; no known option needs spaces in its value.

use core::fmt;
use log::LevelFilter;

/// How many problems are kept for reporting; further ones are only counted.
pub const MAX_PROBLEMS: usize = 8;

/// Which in-kernel tests `test=` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestSelection<'a> {
    /// `test=all`.
    All,
    /// `test=name1,name2,...`: the comma-separated list as written, every name non-empty and
    /// none of them `all`.
    Named(&'a str),
}

impl<'a> TestSelection<'a> {
    /// The names listed, in order; nothing for `All`, which names no test in particular.
    pub fn names(&self) -> impl Iterator<Item = &'a str> {
        let list = match *self {
            TestSelection::All => "",
            TestSelection::Named(list) => list,
        };
        list.split(',').filter(|name| !name.is_empty())
    }

    /// Whether the test called `name` should run.
    pub fn includes(&self, name: &str) -> bool {
        match self {
            TestSelection::All => true,
            TestSelection::Named(_) => self.names().any(|listed| listed == name),
        }
    }
}

/// A deliberate fault, `crash=`, to test how the kernel reports faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// `crash=page_fault`: touch an unmapped address.
    PageFault,
    /// `crash=divide_error`: divide by zero.
    DivideError,
    /// `crash=invalid_opcode`: execute `ud2`.
    InvalidOpcode,
    /// `crash=stack_overflow`: recurse into the kernel stack's guard page (a double fault,
    /// handled on its own interrupt stack).
    StackOverflow,
    /// `crash=ap_stack_overflow`: the same on the first application processor, once it is
    /// up (needs a second CPU; nothing happens without one).
    ApStackOverflow,
    /// `crash=panic`: a Rust panic.
    Panic,
}

impl Crash {
    /// The option value that selects this crash.
    pub fn name(self) -> &'static str {
        match self {
            Crash::PageFault => "page_fault",
            Crash::DivideError => "divide_error",
            Crash::InvalidOpcode => "invalid_opcode",
            Crash::StackOverflow => "stack_overflow",
            Crash::ApStackOverflow => "ap_stack_overflow",
            Crash::Panic => "panic",
        }
    }
}

/// Something wrong with the command line; `Display` gives the warning the kernel prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem<'a> {
    /// An option nobody knows: the whole word as written.
    Unknown(&'a str),
    /// A known option (its key) with a missing or malformed value, and what is wrong with it.
    BadValue {
        /// The key, without `=`.
        option: &'a str,
        /// What is wrong with the value.
        why: &'static str,
    },
    /// A known option given again (the whole word as written); the first one counts.
    Repeated(&'a str),
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unknown(word) => write!(f, "unknown option '{word}'"),
            Problem::BadValue { option, why } => write!(f, "bad value for {option}=: {why}"),
            Problem::Repeated(word) => write!(f, "repeated option '{word}' ignored"),
        }
    }
}

/// The options the kernel knows.
#[derive(Clone, Copy)]
enum Key {
    Mem,
    Log,
    Test,
    Crash,
    Init,
    InitArg,
    PagerTimeout,
    Pageout,
    Swap,
    Zcache,
    Args,
    Swapper,
    Sh,
    Idle,
    Collocate,
    Start,
    Cpus,
    FailRoots,
}

impl Key {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "mem" => Some(Key::Mem),
            "log" => Some(Key::Log),
            "test" => Some(Key::Test),
            "crash" => Some(Key::Crash),
            "init" => Some(Key::Init),
            "init_arg" => Some(Key::InitArg),
            "pager_timeout" => Some(Key::PagerTimeout),
            "pageout" => Some(Key::Pageout),
            "swap" => Some(Key::Swap),
            "zcache" => Some(Key::Zcache),
            "args" => Some(Key::Args),
            "swapper" => Some(Key::Swapper),
            "sh" => Some(Key::Sh),
            "idle" => Some(Key::Idle),
            "collocate" => Some(Key::Collocate),
            "start" => Some(Key::Start),
            "cpus" => Some(Key::Cpus),
            "fail_roots" => Some(Key::FailRoots),
            _ => None,
        }
    }

    /// This key's bit in `CommandLine::seen`.
    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// The parsed command line, borrowing the text it came from.
///
/// Invariants: `problems[..stored]` are `Some` and the rest `None`; `dropped` counts problems
/// found after all `MAX_PROBLEMS` slots were full; `seen` has the bit of every known key met.
#[derive(Clone, Debug)]
pub struct CommandLine<'a> {
    mem_limit: Option<u64>,
    log_level: LevelFilter,
    tests: Option<TestSelection<'a>>,
    crash: Option<Crash>,
    init: Option<&'a str>,
    init_arg: u64,
    pager_timeout_ms: Option<u64>,
    pageout_whole_clusters: bool,
    swapper_off: bool,
    idle_poll: bool,
    cpus: Option<usize>,
    fail_roots: u32,
    swap: Option<&'a str>,
    zcache: Option<&'a str>,
    args: Option<&'a str>,
    sh: Option<&'a str>,
    collocate: Option<&'a str>,
    start: Option<&'a str>,
    seen: u32,
    problems: [Option<Problem<'a>>; MAX_PROBLEMS],
    stored: usize,
    dropped: usize,
}

/// A list of program names separated by commas (`collocate=`, `start=`): each 1 to 47 bytes
/// of letters, digits, `_` and `-`, the whole at most [`MAX_PROGRAM_OPTION`] bytes.
fn program_names(value: &str) -> Result<&str, &'static str> {
    let valid = |name: &str| {
        !name.is_empty()
            && name.len() <= 47
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if value.len() <= MAX_PROGRAM_OPTION && value.split(',').all(valid) {
        Ok(value)
    } else {
        Err("expected program names separated by commas")
    }
}

/// Parses `line`. Never fails: whatever is wrong is listed in `problems()`.
pub fn parse(line: &str) -> CommandLine<'_> {
    let mut command_line = CommandLine {
        mem_limit: None,
        log_level: LevelFilter::Info,
        tests: None,
        crash: None,
        init: None,
        init_arg: 0,
        pager_timeout_ms: None,
        pageout_whole_clusters: false,
        swapper_off: false,
        idle_poll: false,
        cpus: None,
        fail_roots: 0,
        swap: None,
        zcache: None,
        args: None,
        sh: None,
        collocate: None,
        start: None,
        seen: 0,
        problems: [None; MAX_PROBLEMS],
        stored: 0,
        dropped: 0,
    };
    for word in words(line) {
        command_line.apply(word);
    }
    command_line
}

/// The words of `line`: split on whitespace, except inside double quotes, so a value may
/// hold spaces (`sh="ps; vmstat 1 3"`). An unclosed quote runs to the end of the line.
fn words(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    core::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && c.is_ascii_whitespace()
            })
            .map_or(rest.len(), |(i, _)| i);
        let (word, after) = rest.split_at(end);
        rest = after;
        Some(word)
    })
}

/// A value without the double quotes around it, if it has them.
fn unquoted(value: &str) -> &str {
    value
        .strip_prefix('"')
        .map(|v| v.strip_suffix('"').unwrap_or(v))
        .unwrap_or(value)
}

impl<'a> CommandLine<'a> {
    /// `mem=`: the most RAM the kernel may use, in bytes (never zero).
    pub fn mem_limit(&self) -> Option<u64> {
        self.mem_limit
    }

    /// `log=`: the console log level; `Info` unless given.
    pub fn log_level(&self) -> LevelFilter {
        self.log_level
    }

    /// `test=`: which in-kernel tests to run, if any.
    pub fn tests(&self) -> Option<TestSelection<'a>> {
        self.tests
    }

    /// `crash=`: the fault to provoke, if any.
    pub fn crash(&self) -> Option<Crash> {
        self.crash
    }

    /// `init=`: the boot-archive program to start as the first task (the kernel's default
    /// is `bootstrap`).
    pub fn init(&self) -> Option<&'a str> {
        self.init
    }

    /// `init_arg=`: a number for the first task (its third start argument); 0 unless given.
    pub fn init_arg(&self) -> u64 {
        self.init_arg
    }

    /// `pager_timeout=`: how long a thread waits for a pager before a memory error, in
    /// milliseconds (at least 1).
    pub fn pager_timeout_ms(&self) -> Option<u64> {
        self.pager_timeout_ms
    }

    /// `pageout=whole`: the pageout daemon returns whole clusters, used or not (the task
    /// swapper's mode); `pageout=lru` (the default) takes a victim's neighbours only if they
    /// are dirty and not used recently.
    pub fn pageout_whole_clusters(&self) -> bool {
        self.pageout_whole_clusters
    }

    /// `swapper=off`: the task swapper never swaps a task out (`swapper=on`, the default,
    /// lets it).
    pub fn swapper_off(&self) -> bool {
        self.swapper_off
    }

    /// `idle=poll`: an idle CPU spins with interrupts enabled instead of halting until the
    /// next one (`idle=halt`, the default). Under QEMU's `-icount ... sleep=off` a halted
    /// CPU's clock jumps to its next timer, so waits for the disk count as whole ticks; a
    /// polling one counts the instructions it runs while it waits (as Linux's `idle=poll`).
    pub fn idle_poll(&self) -> bool {
        self.idle_poll
    }

    /// `fail_roots=N`, for tests: the next N page-table roots built again for tasks whose
    /// tables were collected fail as if no frame were free (default 0), so that the wait for
    /// memory that follows runs.
    pub fn fail_roots(&self) -> u32 {
        self.fail_roots
    }

    /// `cpus=N`: use at most N processors (1 or more; default all the machine has, up to
    /// the kernel's limit).
    pub fn cpus(&self) -> usize {
        self.cpus.unwrap_or(usize::MAX)
    }

    /// `swap=`: the disk default pager's paging segments (its syntax is the pager's:
    /// `default_pager::config`), handed to it through the `KernelOption` call; the kernel
    /// only checks its length.
    pub fn swap(&self) -> Option<&'a str> {
        self.swap
    }

    /// `zcache=SIZE`: with a disk, bootstrap stacks zpager (a budget of SIZE) in front of the
    /// disk pager as a compressed cache; read by bootstrap through `KernelOption`.
    pub fn zcache(&self) -> Option<&'a str> {
        self.zcache
    }

    /// `args=A,B,...`: arguments for the first task, which reads them with `KernelOption`
    /// (`libipc::rt::first_task_args`), e.g. `init=sheeptest args=4,4M,1`.
    pub fn args(&self) -> Option<&'a str> {
        self.args
    }

    /// `sh="CMD; CMD"`: commands for the shell, which runs them and powers off with the
    /// last one's status; read by the shell through `KernelOption`.
    pub fn sh(&self) -> Option<&'a str> {
        self.sh
    }

    /// `collocate=NAME,NAME`: programs that, when spawned, start collocated in the kernel
    /// (those of them the kernel links; others start as tasks), e.g. `collocate=zpager`.
    pub fn collocate(&self) -> Option<&'a str> {
        self.collocate
    }

    /// `start=NAME,NAME`: programs bootstrap starts at boot besides those `servers/boot.toml`
    /// marks `start = true` (it waits for them as for those), read by bootstrap through
    /// `KernelOption`, e.g. `start=hello`.
    pub fn start(&self) -> Option<&'a str> {
        self.start
    }

    /// The problems found, in command-line order (the first `MAX_PROBLEMS` of them).
    pub fn problems(&self) -> impl Iterator<Item = &Problem<'a>> {
        self.problems.iter().flatten()
    }

    /// How many problems were found beyond the ones `problems()` returns.
    pub fn dropped_problems(&self) -> usize {
        self.dropped
    }

    /// Applies one option word.
    fn apply(&mut self, word: &'a str) {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name, unquoted(value)),
            None => (word, ""),
        };
        let Some(key) = Key::from_name(name) else {
            return self.report(Problem::Unknown(word));
        };
        if self.seen & key.bit() != 0 {
            return self.report(Problem::Repeated(word));
        }
        self.seen |= key.bit();
        if value.is_empty() {
            return self.report(Problem::BadValue {
                option: name,
                why: "missing value",
            });
        }
        let applied = match key {
            Key::Mem => parse_size(value).map(|bytes| self.mem_limit = Some(bytes)),
            Key::Log => parse_level(value).map(|level| self.log_level = level),
            Key::Test => parse_tests(value).map(|tests| self.tests = Some(tests)),
            Key::Crash => parse_crash(value).map(|crash| self.crash = Some(crash)),
            Key::Init => parse_program_name(value).map(|name| self.init = Some(name)),
            Key::InitArg => value
                .parse::<u64>()
                .map(|n| self.init_arg = n)
                .map_err(|_| "expected a decimal number"),
            Key::Pageout => match value {
                "lru" => Ok(()),
                "whole" => {
                    self.pageout_whole_clusters = true;
                    Ok(())
                }
                _ => Err("expected lru or whole"),
            },
            Key::Swapper => match value {
                "on" => Ok(()),
                "off" => {
                    self.swapper_off = true;
                    Ok(())
                }
                _ => Err("expected on or off"),
            },
            Key::FailRoots => match value.parse::<u32>() {
                Ok(n) => {
                    self.fail_roots = n;
                    Ok(())
                }
                _ => Err("expected a number of page-table roots"),
            },
            Key::Cpus => match value.parse::<usize>() {
                Ok(n) if n >= 1 => {
                    self.cpus = Some(n);
                    Ok(())
                }
                _ => Err("expected a number of processors, 1 or more"),
            },
            Key::Idle => match value {
                "halt" => Ok(()),
                "poll" => {
                    self.idle_poll = true;
                    Ok(())
                }
                _ => Err("expected halt or poll"),
            },
            Key::Swap if value.len() <= MAX_PROGRAM_OPTION => {
                self.swap = Some(value);
                Ok(())
            }
            Key::Swap => Err("at most 256 bytes"),
            Key::Zcache => parse_size(value).map(|_| self.zcache = Some(value)),
            Key::Args if value.len() <= MAX_PROGRAM_OPTION => {
                self.args = Some(value);
                Ok(())
            }
            Key::Args => Err("at most 256 bytes"),
            Key::Sh if value.len() <= MAX_PROGRAM_OPTION => {
                self.sh = Some(value);
                Ok(())
            }
            Key::Sh => Err("at most 256 bytes"),
            Key::Collocate => program_names(value).map(|names| self.collocate = Some(names)),
            Key::Start => program_names(value).map(|names| self.start = Some(names)),
            Key::PagerTimeout => match value.parse::<u64>() {
                Ok(ms) if ms > 0 => {
                    self.pager_timeout_ms = Some(ms);
                    Ok(())
                }
                _ => Err("expected milliseconds, at least 1"),
            },
        };
        if let Err(why) = applied {
            self.report(Problem::BadValue { option: name, why });
        }
    }

    fn report(&mut self, problem: Problem<'a>) {
        match self.problems.get_mut(self.stored) {
            Some(slot) => {
                *slot = Some(problem);
                self.stored += 1;
            }
            None => self.dropped += 1,
        }
    }
}

/// The longest value of an option meant for a program (`swap=`).
pub const MAX_PROGRAM_OPTION: usize = libipc::abi::syscall::ARGS_MAX;

/// A boot-archive program name: at most 47 bytes (the archive's limit), no commas.
fn parse_program_name(value: &str) -> Result<&str, &'static str> {
    if value.len() > libipc::abi::archive::NAME_MAX {
        return Err("program names are at most 47 bytes");
    }
    Ok(value)
}

/// `<digits>[K|M|G]`, binary units, in bytes; zero and overflow are refused.
fn parse_size(value: &str) -> Result<u64, &'static str> {
    let (digits, shift) = match value.as_bytes()[value.len() - 1] {
        b'K' | b'k' => (&value[..value.len() - 1], 10),
        b'M' | b'm' => (&value[..value.len() - 1], 20),
        b'G' | b'g' => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a number with an optional K, M or G suffix");
    }
    let bytes = digits
        .bytes()
        .try_fold(0u64, |n, digit| {
            n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or("too large")?;
    if bytes == 0 {
        return Err("must be greater than zero");
    }
    Ok(bytes)
}

fn parse_level(value: &str) -> Result<LevelFilter, &'static str> {
    match value {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err("expected error, warn, info, debug or trace"),
    }
}

fn parse_tests(value: &str) -> Result<TestSelection<'_>, &'static str> {
    if value == "all" {
        return Ok(TestSelection::All);
    }
    let mut names = value.split(',');
    if names.clone().any(str::is_empty) {
        return Err("empty test name");
    }
    if names.any(|name| name == "all") {
        return Err("'all' cannot be combined with test names");
    }
    Ok(TestSelection::Named(value))
}

fn parse_crash(value: &str) -> Result<Crash, &'static str> {
    [
        Crash::PageFault,
        Crash::DivideError,
        Crash::InvalidOpcode,
        Crash::StackOverflow,
        Crash::ApStackOverflow,
        Crash::Panic,
    ]
    .into_iter()
    .find(|crash| crash.name() == value)
    .ok_or(
        "expected page_fault, divide_error, invalid_opcode, stack_overflow, ap_stack_overflow \
         or panic",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(line: &str) -> Vec<String> {
        parse(line).problems().map(|p| p.to_string()).collect()
    }

    #[test]
    fn empty_line_gives_defaults() {
        for line in ["", "   ", "\t\n "] {
            let cmdline = parse(line);
            assert_eq!(cmdline.mem_limit(), None);
            assert_eq!(cmdline.log_level(), LevelFilter::Info);
            assert_eq!(cmdline.tests(), None);
            assert_eq!(cmdline.crash(), None);
            assert_eq!(cmdline.problems().count(), 0);
            assert_eq!(cmdline.dropped_problems(), 0);
        }
    }

    #[test]
    fn mem_sizes_and_units() {
        let mem = |line: &str| parse(line).mem_limit();
        assert_eq!(mem("mem=4096"), Some(4096));
        assert_eq!(mem("mem=64K"), Some(64 << 10));
        assert_eq!(mem("mem=512M"), Some(512 << 20));
        assert_eq!(mem("mem=512m"), Some(512 << 20));
        assert_eq!(mem("mem=3G"), Some(3 << 30));
        assert_eq!(mem("mem=18446744073709551615"), Some(u64::MAX));
        assert_eq!(mem("mem=17179869183G"), Some(17_179_869_183 << 30));
    }

    #[test]
    fn mem_rejects_zero_overflow_and_junk() {
        let why = |line: &str| match parse(line).problems().next() {
            Some(&Problem::BadValue { option: "mem", why }) => why,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(why("mem=0"), "must be greater than zero");
        assert_eq!(why("mem=0G"), "must be greater than zero");
        assert_eq!(why("mem=18446744073709551616"), "too large");
        assert_eq!(why("mem=17179869184G"), "too large");
        assert_eq!(why("mem=99999999999999999999999K"), "too large");
        for junk in [
            "mem=G", "mem=12T", "mem=1.5G", "mem=-1", "mem=+1", "mem=0x10",
        ] {
            assert!(why(junk).starts_with("expected a number"), "{junk}");
        }
        assert_eq!(why("mem="), "missing value");
        assert_eq!(why("mem"), "missing value");
        assert_eq!(parse("mem=0").mem_limit(), None);
        assert_eq!(
            problems("mem=0"),
            ["bad value for mem=: must be greater than zero"]
        );
    }

    #[test]
    fn the_swap_option_is_kept_for_the_default_pager() {
        let line = parse("swap=0+16M:4:1,16M+16M:2:1 mem=32M");
        assert_eq!(line.swap(), Some("0+16M:4:1,16M+16M:2:1"));
        assert_eq!(line.problems().count(), 0);
        assert_eq!(parse("").swap(), None);
        let long = format!("swap={}", "4".repeat(MAX_PROGRAM_OPTION + 1));
        assert_eq!(parse(&long).swap(), None);
        assert_eq!(parse(&long).problems().count(), 1);
        assert_eq!(parse("zcache=4M").zcache(), Some("4M"));
        assert_eq!(
            parse("collocate=zpager,echo").collocate(),
            Some("zpager,echo")
        );
        for bad in [
            "collocate=",
            "collocate=a,,b",
            "collocate=a/b",
            "collocate=zpager,",
        ] {
            let line = parse(bad);
            assert_eq!(line.collocate(), None, "{bad}");
            assert_eq!(line.problems().count(), 1, "{bad}");
        }
        assert_eq!(
            parse("start=hello,name_test").start(),
            Some("hello,name_test")
        );
        for bad in ["start=", "start=a/b", "start=hello,,x"] {
            let line = parse(bad);
            assert_eq!(line.start(), None, "{bad}");
        }
        assert_eq!(parse("init=sheeptest args=4,4M,1").args(), Some("4,4M,1"));
        assert_eq!(parse("zcache=lots").zcache(), None);
        assert_eq!(parse("zcache=lots").problems().count(), 1);
    }

    #[test]
    fn quoted_values_keep_their_spaces() {
        let line = parse(r#"init=bootstrap sh="ps; vmstat 1 3" mem=64M"#);
        assert_eq!(line.sh(), Some("ps; vmstat 1 3"));
        assert_eq!(line.mem_limit(), Some(64 << 20));
        assert_eq!(line.problems().count(), 0);
        assert_eq!(parse(r#"sh="help""#).sh(), Some("help"));
        // An unclosed quote runs to the end of the line.
        assert_eq!(parse(r#"mem=8M sh="ps  x"#).sh(), Some("ps  x"));
        assert_eq!(parse("sh=ps").sh(), Some("ps"));
        let words: Vec<_> = words("  a  b=\"c d\"  e ").collect();
        assert_eq!(words, ["a", "b=\"c d\"", "e"]);
    }

    #[test]
    fn pager_options() {
        let line = parse("pager_timeout=300 pageout=whole");
        assert_eq!(line.pager_timeout_ms(), Some(300));
        assert!(line.pageout_whole_clusters());
        assert_eq!(line.problems().count(), 0);
        let defaults = parse("");
        assert_eq!(defaults.pager_timeout_ms(), None);
        assert!(!defaults.pageout_whole_clusters());
        assert!(!parse("pageout=lru").pageout_whole_clusters());
        assert!(parse("swapper=off").swapper_off());
        assert!(!parse("swapper=on").swapper_off() && !defaults.swapper_off());
        assert_eq!(parse("swapper=maybe").problems().count(), 1);
        assert!(parse("idle=poll").idle_poll());
        assert_eq!(parse("fail_roots=3").fail_roots(), 3);
        assert_eq!(defaults.fail_roots(), 0);
        assert_eq!(parse("fail_roots=many").problems().count(), 1);
        assert_eq!(parse("cpus=2").cpus(), 2);
        assert_eq!(defaults.cpus(), usize::MAX);
        assert_eq!(parse("cpus=0").cpus(), usize::MAX);
        assert_eq!(parse("cpus=0").problems().count(), 1);
        assert!(!parse("idle=halt").idle_poll() && !defaults.idle_poll());
        assert_eq!(parse("idle=spin").problems().count(), 1);
        for bad in ["pager_timeout=0", "pager_timeout=soon", "pageout=all"] {
            let problems: Vec<_> = parse(bad).problems().cloned().collect();
            assert!(
                matches!(problems[..], [Problem::BadValue { .. }]),
                "{bad}: {problems:?}"
            );
        }
    }

    #[test]
    fn log_levels() {
        let level = |line: &str| parse(line).log_level();
        assert_eq!(level("log=error"), LevelFilter::Error);
        assert_eq!(level("log=warn"), LevelFilter::Warn);
        assert_eq!(level("log=info"), LevelFilter::Info);
        assert_eq!(level("log=debug"), LevelFilter::Debug);
        assert_eq!(level("log=trace"), LevelFilter::Trace);
        assert_eq!(level("log=loud"), LevelFilter::Info);
        assert_eq!(
            problems("log=loud"),
            ["bad value for log=: expected error, warn, info, debug or trace"]
        );
    }

    #[test]
    fn test_selection() {
        let all = parse("test=all").tests().unwrap();
        assert_eq!(all, TestSelection::All);
        assert!(all.includes("anything"));
        assert_eq!(all.names().count(), 0);

        let named = parse("test=ipc_basic,vm_fault").tests().unwrap();
        assert_eq!(named, TestSelection::Named("ipc_basic,vm_fault"));
        assert_eq!(named.names().collect::<Vec<_>>(), ["ipc_basic", "vm_fault"]);
        assert!(named.includes("vm_fault"));
        assert!(!named.includes("vm"));
        assert!(!named.includes("all"));

        assert_eq!(
            problems("test=a,,b"),
            ["bad value for test=: empty test name"]
        );
        assert_eq!(
            problems("test=a,"),
            ["bad value for test=: empty test name"]
        );
        assert_eq!(
            problems("test=all,a"),
            ["bad value for test=: 'all' cannot be combined with test names"]
        );
        assert_eq!(parse("test=a,,b").tests(), None);
    }

    #[test]
    fn init_arg_is_a_number() {
        assert_eq!(parse("init_arg=7").init_arg(), 7);
        assert_eq!(parse("").init_arg(), 0);
        assert_eq!(
            problems("init_arg=x"),
            ["bad value for init_arg=: expected a decimal number"]
        );
    }

    #[test]
    fn init_names_a_program() {
        assert_eq!(parse("init=hello").init(), Some("hello"));
        assert_eq!(parse("").init(), None);
        let long = format!("init={}", "x".repeat(48));
        assert_eq!(parse(&long).init(), None);
        assert_eq!(
            problems(&long),
            ["bad value for init=: program names are at most 47 bytes"]
        );
    }

    #[test]
    fn crash_kinds() {
        let crash = |line: &str| parse(line).crash();
        assert_eq!(crash("crash=page_fault"), Some(Crash::PageFault));
        assert_eq!(crash("crash=divide_error"), Some(Crash::DivideError));
        assert_eq!(crash("crash=invalid_opcode"), Some(Crash::InvalidOpcode));
        assert_eq!(crash("crash=panic"), Some(Crash::Panic));
        assert_eq!(crash("crash=stack_overflow"), Some(Crash::StackOverflow));
        assert_eq!(
            crash("crash=ap_stack_overflow"),
            Some(Crash::ApStackOverflow)
        );
        assert_eq!(crash("crash=reboot"), None);
        assert_eq!(
            problems("crash=reboot"),
            [
                "bad value for crash=: expected page_fault, divide_error, invalid_opcode, \
              stack_overflow, ap_stack_overflow or panic"
            ]
        );
    }

    #[test]
    fn unknown_bad_and_repeated_are_reported_and_parsing_continues() {
        let cmdline = parse("frobnicate=1 mem=1G quiet log=debug mem=2G log= crash=panic");
        assert_eq!(cmdline.mem_limit(), Some(1 << 30));
        assert_eq!(cmdline.log_level(), LevelFilter::Debug);
        assert_eq!(cmdline.crash(), Some(Crash::Panic));
        let found: Vec<String> = cmdline.problems().map(|p| p.to_string()).collect();
        assert_eq!(
            found,
            [
                "unknown option 'frobnicate=1'",
                "unknown option 'quiet'",
                "repeated option 'mem=2G' ignored",
                "repeated option 'log=' ignored",
            ]
        );
        // A bad first value still counts as the option having been given.
        assert_eq!(
            problems("mem=x mem=1G"),
            [
                "bad value for mem=: expected a number with an optional K, M or G suffix",
                "repeated option 'mem=1G' ignored"
            ]
        );
        // Keys are case-sensitive and an `=` inside a value is part of it.
        assert_eq!(problems("MEM=1G"), ["unknown option 'MEM=1G'"]);
        assert_eq!(problems("=1"), ["unknown option '=1'"]);
        assert_eq!(
            problems("log=info=x"),
            ["bad value for log=: expected error, warn, info, debug or trace"]
        );
    }

    #[test]
    fn problems_beyond_the_limit_are_counted() {
        let line = "a b c d e f g h i j mem=1K";
        let cmdline = parse(line);
        assert_eq!(cmdline.problems().count(), MAX_PROBLEMS);
        assert_eq!(cmdline.dropped_problems(), 2);
        assert_eq!(cmdline.problems().last(), Some(&Problem::Unknown("h")));
        assert_eq!(cmdline.mem_limit(), Some(1024));
    }

    #[test]
    fn extra_whitespace_is_ignored() {
        let cmdline = parse("  \tmem=2M \n\n log=warn\t\ttest=x   ");
        assert_eq!(cmdline.mem_limit(), Some(2 << 20));
        assert_eq!(cmdline.log_level(), LevelFilter::Warn);
        assert_eq!(cmdline.tests(), Some(TestSelection::Named("x")));
        assert_eq!(cmdline.problems().count(), 0);
    }
}

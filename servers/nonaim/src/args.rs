//! NONAIM's arguments (the kernel's `args=` for the first task), comma-separated:
//!
//! - `U`: a step of U simulated users (1 to [`MAX_USERS`]); steps in increasing order, at
//!   most [`MAX_STEPS`]. Without any, the default schedule [`DEFAULT_SCHEDULE`].
//! - `max=N`: the default schedule's steps of at most N users (instead of listing steps).
//! - `jobs=N`: jobs per user (1 to [`MAX_JOBS`], default [`DEFAULT_JOBS`]).
//! - `seed=N`: the run's seed (default 1): the same seed draws the same jobs.
//! - `tag=NAME`: a suffix for every figure's name (`nonaim.jpm.5u.NAME`), to tell apart the
//!   boots of one bench suite (1 to 16 of `a-z`, `0-9`, `_`).
//! - `calibrate`: no schedule; runs each job once, one after the other, and reports its
//!   instructions (under `-icount`): `bench nonaim.work.<job>` (the job's work alone) and
//!   `bench nonaim.total.<job>` (fork, exec, the work and the wait); takes `seed=` only.
//!
//! E.g. `args=1,2,5`, `args=max=100,tag=swapoff`, `args=calibrate`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The schedule without arguments: AIM's numbers of users.
pub const DEFAULT_SCHEDULE: [u32; 11] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
/// The most users of one step.
pub const MAX_USERS: u32 = 10_000;
/// The most steps of a schedule.
pub const MAX_STEPS: usize = 16;
/// Jobs each user runs when `jobs=` is not given.
pub const DEFAULT_JOBS: u32 = 10;
/// The most jobs per user.
pub const MAX_JOBS: u32 = 1000;
/// The run's seed when `seed=` is not given.
pub const DEFAULT_SEED: u64 = 1;
/// The longest tag.
pub const MAX_TAG: usize = 16;

/// What the run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The schedule: users per step, increasing.
    Steps(Vec<u32>),
    /// Each job once, measured.
    Calibrate,
}

/// A run's parameters, every one within its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub mode: Mode,
    pub jobs_per_user: u32,
    pub seed: u64,
    /// The figures' suffix, if any.
    pub tag: Option<String>,
}

/// Why the arguments were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// An argument that is no number, no `key=value` of a known key, nor `calibrate`.
    Unknown(String),
    /// A value that is not a number where one is needed.
    NotANumber { what: &'static str, text: String },
    /// A number outside its limits.
    OutOfRange {
        what: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    /// Steps not in increasing order (the step before, this one).
    NotIncreasing(u32, u32),
    /// More than [`MAX_STEPS`] steps.
    TooManySteps(usize),
    /// A key given twice.
    Repeated(&'static str),
    /// Two arguments that exclude each other.
    Conflict(&'static str, &'static str),
    /// A tag that is empty, too long or has other characters.
    BadTag(String),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Unknown(text) => write!(
                f,
                "`{text}` is not a number of users, max=, jobs=, seed=, tag= or calibrate"
            ),
            ArgError::NotANumber { what, text } => write!(f, "{what} `{text}` is not a number"),
            ArgError::OutOfRange {
                what,
                value,
                min,
                max,
            } => write!(f, "{what} {value} is not between {min} and {max}"),
            ArgError::NotIncreasing(before, step) => {
                write!(f, "steps must increase: {step} users after {before}")
            }
            ArgError::TooManySteps(count) => {
                write!(f, "{count} steps, at most {MAX_STEPS}")
            }
            ArgError::Repeated(key) => write!(f, "{key} given twice"),
            ArgError::Conflict(a, b) => write!(f, "{a} and {b} exclude each other"),
            ArgError::BadTag(tag) => write!(f, "tag `{tag}`: 1 to {MAX_TAG} of a-z, 0-9 and _"),
        }
    }
}

/// A decimal number of `what` between `min` and `max`.
fn number(text: &str, what: &'static str, min: u64, max: u64) -> Result<u64, ArgError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArgError::NotANumber {
            what,
            text: text.into(),
        });
    }
    // All digits: only overflow fails, which is out of range.
    let value = text.parse::<u64>().unwrap_or(u64::MAX);
    if !(min..=max).contains(&value) {
        return Err(ArgError::OutOfRange {
            what,
            value,
            min,
            max,
        });
    }
    Ok(value)
}

/// Sets `slot` once.
fn once<T>(slot: &mut Option<T>, key: &'static str, value: T) -> Result<(), ArgError> {
    if slot.is_some() {
        return Err(ArgError::Repeated(key));
    }
    *slot = Some(value);
    Ok(())
}

/// The run `args` asks for (see the module's documentation).
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Params, ArgError> {
    let mut steps: Vec<u32> = Vec::new();
    let (mut max, mut jobs, mut seed, mut tag, mut calibrate) = (None, None, None, None, false);
    for arg in args {
        match arg.split_once('=') {
            Some(("max", value)) => {
                let value = number(value, "max=", 1, MAX_USERS.into())? as u32;
                once(&mut max, "max=", value)?;
            }
            Some(("jobs", value)) => {
                let value = number(value, "jobs=", 1, MAX_JOBS.into())? as u32;
                once(&mut jobs, "jobs=", value)?;
            }
            Some(("seed", value)) => {
                let value = number(value, "seed=", 0, u64::MAX)?;
                once(&mut seed, "seed=", value)?;
            }
            Some(("tag", value)) => {
                let valid = (1..=MAX_TAG).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid {
                    return Err(ArgError::BadTag(value.into()));
                }
                once(&mut tag, "tag=", String::from(value))?;
            }
            Some(_) => return Err(ArgError::Unknown(arg.into())),
            None if arg == "calibrate" => {
                if calibrate {
                    return Err(ArgError::Repeated("calibrate"));
                }
                calibrate = true;
            }
            None if arg.bytes().all(|b| b.is_ascii_digit()) => {
                let users = number(arg, "users", 1, MAX_USERS.into())? as u32;
                if let Some(&before) = steps.last() {
                    if users <= before {
                        return Err(ArgError::NotIncreasing(before, users));
                    }
                }
                if steps.len() == MAX_STEPS {
                    return Err(ArgError::TooManySteps(MAX_STEPS + 1));
                }
                steps.push(users);
            }
            None => return Err(ArgError::Unknown(arg.into())),
        }
    }
    let mode = if calibrate {
        if !steps.is_empty() {
            return Err(ArgError::Conflict("calibrate", "a number of users"));
        }
        if max.is_some() {
            return Err(ArgError::Conflict("calibrate", "max="));
        }
        if jobs.is_some() {
            return Err(ArgError::Conflict("calibrate", "jobs="));
        }
        if tag.is_some() {
            return Err(ArgError::Conflict("calibrate", "tag="));
        }
        Mode::Calibrate
    } else {
        match max {
            Some(_) if !steps.is_empty() => {
                return Err(ArgError::Conflict("max=", "a number of users"))
            }
            Some(max) => Mode::Steps(
                DEFAULT_SCHEDULE
                    .iter()
                    .copied()
                    .filter(|&users| users <= max)
                    .collect(),
            ),
            None if steps.is_empty() => Mode::Steps(DEFAULT_SCHEDULE.to_vec()),
            None => Mode::Steps(steps),
        }
    };
    Ok(Params {
        mode,
        jobs_per_user: jobs.unwrap_or(DEFAULT_JOBS),
        seed: seed.unwrap_or(DEFAULT_SEED),
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(list: &[&str]) -> Vec<u32> {
        match parse(list.iter().copied()).unwrap().mode {
            Mode::Steps(steps) => steps,
            Mode::Calibrate => panic!("calibrate"),
        }
    }

    #[test]
    fn no_arguments_run_the_default_schedule() {
        let params = parse([]).unwrap();
        assert_eq!(params.mode, Mode::Steps(DEFAULT_SCHEDULE.to_vec()));
        assert_eq!(
            (params.jobs_per_user, params.seed, params.tag),
            (10, 1, None)
        );
    }

    #[test]
    fn steps_max_jobs_seed_and_tag() {
        assert_eq!(steps(&["1", "2", "5"]), [1, 2, 5]);
        assert_eq!(steps(&["max=100"]), [1, 2, 5, 10, 20, 50, 100]);
        assert_eq!(steps(&["max=3"]), [1, 2]);
        assert_eq!(steps(&["max=10000"]), DEFAULT_SCHEDULE);
        let params = parse(["3", "jobs=4", "seed=99", "tag=swap_on2"]).unwrap();
        assert_eq!(params.mode, Mode::Steps(vec![3]));
        assert_eq!(params.jobs_per_user, 4);
        assert_eq!(params.seed, 99);
        assert_eq!(params.tag.as_deref(), Some("swap_on2"));
        // Keys may come in any order, before or after the steps.
        assert_eq!(steps(&["tag=x", "1", "seed=0", "4"]), [1, 4]);
    }

    #[test]
    fn calibrate_takes_only_a_seed() {
        let params = parse(["calibrate", "seed=4"]).unwrap();
        assert_eq!((params.mode, params.seed), (Mode::Calibrate, 4));
        assert_eq!(
            parse(["calibrate", "tag=a"]),
            Err(ArgError::Conflict("calibrate", "tag="))
        );
        assert_eq!(
            parse(["calibrate", "5"]),
            Err(ArgError::Conflict("calibrate", "a number of users"))
        );
        assert!(parse(["max=5", "calibrate"]).is_err());
        assert!(parse(["calibrate", "jobs=2"]).is_err());
        assert_eq!(
            parse(["calibrate", "calibrate"]),
            Err(ArgError::Repeated("calibrate"))
        );
    }

    #[test]
    fn bad_arguments_say_which_and_why() {
        let error = |list: &[&str]| parse(list.iter().copied()).unwrap_err().to_string();
        assert_eq!(error(&["0"]), "users 0 is not between 1 and 10000");
        assert_eq!(
            error(&["99999999999999999999999"]),
            format!("users {} is not between 1 and 10000", u64::MAX)
        );
        assert_eq!(error(&["5", "2"]), "steps must increase: 2 users after 5");
        assert_eq!(error(&["5", "5"]), "steps must increase: 5 users after 5");
        assert_eq!(
            error(&["users"]),
            "`users` is not a number of users, max=, jobs=, seed=, tag= or calibrate"
        );
        assert!(error(&["speed=3"]).contains("`speed=3`"));
        assert!(error(&["-1"]).contains("`-1`"));
        assert_eq!(error(&["max=x"]), "max= `x` is not a number");
        assert_eq!(error(&["jobs=0"]), "jobs= 0 is not between 1 and 1000");
        assert_eq!(error(&["seed=1", "seed=2"]), "seed= given twice");
        assert_eq!(
            error(&["max=5", "1"]),
            "max= and a number of users exclude each other"
        );
        assert_eq!(
            error(&["tag=Swap"]),
            "tag `Swap`: 1 to 16 of a-z, 0-9 and _"
        );
        assert!(error(&["tag="]).contains("tag ``"));
        assert!(error(&["tag=a.b"]).contains("a.b"));
        assert!(error(&["tag=abcdefghijklmnopq"]).contains("1 to 16"));
        let many: Vec<String> = (1..=17).map(|n| n.to_string()).collect();
        assert_eq!(
            parse(many.iter().map(String::as_str)),
            Err(ArgError::TooManySteps(17))
        );
    }
}

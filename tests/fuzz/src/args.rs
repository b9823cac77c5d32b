//! The fuzzer's arguments (the kernel's `args=` for the first task), comma-separated
//! `key=value`:
//!
//! - `calls=N`: system calls per round, shared among the workers that are not killed (the
//!   killed one stops early), so that a round makes about N (default [`DEFAULT_CALLS`]).
//! - `rounds=N`: rounds (default [`DEFAULT_ROUNDS`]); the first is a warm-up whose kernel
//!   tables may grow, and the census taken after it is what every later round must return to.
//! - `workers=N`: tasks fuzzing at once in a round (1 to [`MAX_WORKERS`], default
//!   [`DEFAULT_WORKERS`]).
//! - `seed=N`: the run's seed (default 1): a seed, round and worker give the same calls.
//! - `kill=0|1`: whether one worker of each round is terminated mid-run (default 1).
//! - `mix=N`: which kinds of call the workers make, a bit mask over the worker's kinds
//!   (`worker::WEIGHTS`, in order; default all): to find which kind a leak comes from.
//! - `call=N`: the calls of any number (the last kind) all make system call N.
//! - `census=0`: no census between rounds (for a machine others are using too: the soak).
//! - `leak=1`: a self-check: one worker leaves a task behind it that holds ports and
//!   memory, which the census must report as a leak (the run then fails, as it should).
//!
//! E.g. `args=calls=20000,rounds=3`, `args=seed=42,workers=4`.

use core::fmt;

pub const DEFAULT_CALLS: u64 = 20_000;
pub const DEFAULT_ROUNDS: u32 = 4;
pub const DEFAULT_WORKERS: u32 = 3;
pub const MAX_WORKERS: u32 = 16;

/// A run's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub calls: u64,
    pub rounds: u32,
    pub workers: u32,
    pub seed: u64,
    pub kill: bool,
    pub leak: bool,
    pub mix: u32,
    pub call: Option<u64>,
    pub census: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            calls: DEFAULT_CALLS,
            rounds: DEFAULT_ROUNDS,
            workers: DEFAULT_WORKERS,
            seed: 1,
            kill: true,
            leak: false,
            mix: u32::MAX,
            call: None,
            census: true,
        }
    }
}

impl Params {
    /// The calls each worker of a round is given: the round's calls shared among the workers
    /// that are not killed, so that a round makes its calls although its victim stops early
    /// (a killed worker makes few of its share).
    pub fn calls_per_worker(&self) -> u64 {
        let sharers = match self.kill && self.workers > 1 {
            true => self.workers - 1,
            false => self.workers.max(1),
        };
        self.calls.div_ceil(u64::from(sharers))
    }
}

/// Why the arguments were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// Not `key=value` of a known key.
    Unknown(&'a str),
    /// A value that is no number, or out of its range.
    Bad { key: &'a str, value: &'a str },
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Unknown(arg) => write!(f, "unknown argument {arg:?}"),
            ArgError::Bad { key, value } => write!(f, "bad value {value:?} for {key}"),
        }
    }
}

/// Parses the arguments.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Params, ArgError<'a>> {
    let mut params = Params::default();
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or(ArgError::Unknown(arg))?;
        let bad = ArgError::Bad { key, value };
        let number = value.parse::<u64>().map_err(|_| bad)?;
        let flag = || match number {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad),
        };
        match key {
            "calls" if number > 0 => params.calls = number,
            "rounds" if (1..=1_000_000).contains(&number) => params.rounds = number as u32,
            "workers" if (1..=u64::from(MAX_WORKERS)).contains(&number) => {
                params.workers = number as u32
            }
            "seed" => params.seed = number,
            "kill" => params.kill = flag()?,
            "leak" => params.leak = flag()?,
            "mix" if number > 0 && number <= u64::from(u32::MAX) => params.mix = number as u32,
            "mix" => return Err(bad),
            "call" => params.call = Some(number),
            "census" => params.census = flag()?,
            "calls" | "rounds" | "workers" => return Err(bad),
            _ => return Err(ArgError::Unknown(arg)),
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rounds_calls_are_shared_by_the_workers_not_killed() {
        let mut params = Params {
            calls: 900,
            workers: 3,
            ..Params::default()
        };
        assert_eq!(params.calls_per_worker(), 450);
        params.kill = false;
        assert_eq!(params.calls_per_worker(), 300);
        params.kill = true;
        params.workers = 1;
        assert_eq!(params.calls_per_worker(), 900);
    }

    use super::*;

    #[test]
    fn defaults_and_every_key() {
        assert_eq!(parse([]), Ok(Params::default()));
        let p = parse([
            "calls=500",
            "rounds=2",
            "workers=5",
            "seed=9",
            "kill=0",
            "leak=1",
        ]);
        assert_eq!(
            p,
            Ok(Params {
                calls: 500,
                rounds: 2,
                workers: 5,
                seed: 9,
                kill: false,
                leak: true,
                mix: u32::MAX,
                call: None,
                census: true
            })
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(parse(["calls"]), Err(ArgError::Unknown("calls")));
        assert_eq!(parse(["speed=3"]), Err(ArgError::Unknown("speed=3")));
        assert_eq!(
            parse(["workers=0"]),
            Err(ArgError::Bad {
                key: "workers",
                value: "0"
            })
        );
        assert_eq!(
            parse(["kill=2"]),
            Err(ArgError::Bad {
                key: "kill",
                value: "2"
            })
        );
        assert!(parse(["calls=x"]).is_err());
        assert!(parse(["workers=17"]).is_err());
    }
}

//! What the soak is made of besides its guest calls, host-tested: its arguments and the drift
//! check over the census it takes after each cycle.
#![cfg_attr(not(test), no_std)]

use fuzz::census::Census;

/// The soak's parameters (the shell's `run soak minutes=N seed=S`, comma-joined).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub minutes: u64,
    pub seed: u64,
}

/// Parses `minutes=N` (1 to 1440, default 10) and `seed=N` (default 1).
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Params, &'a str> {
    let mut params = Params {
        minutes: 10,
        seed: 1,
    };
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or(arg)?;
        let number = value.parse::<u64>().map_err(|_| arg)?;
        match key {
            "minutes" if (1..=1440).contains(&number) => params.minutes = number,
            "seed" => params.seed = number,
            _ => return Err(arg),
        }
    }
    Ok(params)
}

/// How far the kernel's memory may grow past the first two cycles' before it is drift: what
/// caches and tables take as the load varies (a table's next size, the default pager's
/// objects, the pageout queues), and no more.
pub const HEAP_SLACK_BYTES: i64 = 512 * 1024;
pub const FRAME_SLACK: i64 = 256;
pub const PORT_SLACK: i64 = 64;
pub const OBJECT_SLACK: i64 = 64;

/// A quantity the drift check watches: its name, how it is read, its slack.
type Check = (&'static str, fn(&Census) -> i64, i64);

/// What grew past the baseline (the larger use of the first two cycles), if anything grew
/// beyond its slack: (what, by how much).
pub fn drift(baseline: &[Census], now: &Census) -> Option<(&'static str, i64)> {
    let most = |f: fn(&Census) -> i64| baseline.iter().map(f).max().unwrap_or(0);
    let used_frames = |c: &Census| -(c.free_frames as i64 + c.heap_pages as i64);
    let checks: [Check; 5] = [
        ("heap bytes", |c| c.heap_bytes as i64, HEAP_SLACK_BYTES),
        ("frames", used_frames, FRAME_SLACK),
        ("ports", |c| c.ports as i64, PORT_SLACK),
        ("VM objects", |c| c.vm_objects as i64, OBJECT_SLACK),
        ("tasks", |c| c.tasks as i64, 0),
    ];
    checks.into_iter().find_map(|(what, f, slack)| {
        let grown = f(now) - most(f);
        (grown > slack).then_some((what, grown))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn census(free_frames: u64, heap_bytes: u64, ports: u64, tasks: u64) -> Census {
        Census {
            free_frames,
            heap_pages: 100,
            heap_bytes,
            ports,
            tasks,
            threads: tasks,
            vm_objects: 20,
            timers: 0,
        }
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse([]),
            Ok(Params {
                minutes: 10,
                seed: 1
            })
        );
        assert_eq!(
            parse(["minutes=60", "seed=4"]),
            Ok(Params {
                minutes: 60,
                seed: 4
            })
        );
        assert_eq!(parse(["minutes=0"]), Err("minutes=0"));
        assert_eq!(parse(["hours=1"]), Err("hours=1"));
    }

    #[test]
    fn growth_within_slack_is_no_drift_and_beyond_it_is() {
        let baseline = [
            census(5000, 1_000_000, 40, 3),
            census(4990, 1_100_000, 42, 3),
        ];
        assert_eq!(drift(&baseline, &census(4900, 1_500_000, 60, 3)), None);
        assert_eq!(
            drift(&baseline, &census(4990, 1_700_000, 42, 3)),
            Some(("heap bytes", 600_000))
        );
        assert_eq!(
            drift(&baseline, &census(4000, 1_000_000, 42, 3)),
            Some(("frames", 990))
        );
        assert_eq!(
            drift(&baseline, &census(5000, 1_000_000, 42, 4)),
            Some(("tasks", 1))
        );
    }
}

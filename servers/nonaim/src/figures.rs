//! A step's figures from its users' counts, and the run's: jobs per minute, failures, forks
//! retried, and the figure names (`nonaim.<metric>.<users>u[.<tag>]`).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::mix::Verdict;

/// The unit of a step's elapsed time: microseconds (the guest's time-stamp counter and
/// Linux's clock both resolve them; the guest's timer ticks, 10 ms, gave a step of 10 jobs
/// done in one tick 60,000 jobs a minute, and half that in two).
pub const MICROS_PER_SECOND: u64 = 1_000_000;

/// What one user process did with its jobs (it sends these to the driver when done).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCounts {
    /// Jobs that ran and checked out.
    pub completed: u32,
    /// Jobs that did not: a wrong result, no resources after retries, killed.
    pub failed: u32,
    /// Of the failed, those with a wrong result.
    pub wrong: u32,
    /// Forks and execs that failed and were tried again, the jobs' own included.
    pub retried: u32,
}

impl UserCounts {
    /// Counts a job that ended with `verdict` (not `ExecFailed`, which the user retries),
    /// having retried `retries` forks.
    pub fn count(&mut self, verdict: Verdict, retries: u32) {
        self.retried = self.retried.saturating_add(retries);
        match verdict {
            Verdict::Passed => self.completed += 1,
            Verdict::Wrong => {
                self.failed += 1;
                self.wrong += 1;
            }
            _ => self.failed += 1,
        }
    }

    /// Bytes of a user's report: its number and its four counts, little-endian words.
    pub const REPORT_BYTES: usize = 20;

    /// User `user`'s report of these counts.
    pub fn report(&self, user: u32) -> [u8; Self::REPORT_BYTES] {
        let mut bytes = [0u8; Self::REPORT_BYTES];
        let words = [user, self.completed, self.failed, self.wrong, self.retried];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// The user and counts of a report; `None` if `bytes` is too short.
    pub fn from_report(bytes: &[u8]) -> Option<(u32, UserCounts)> {
        let word = |i: usize| {
            let raw = bytes.get(i * 4..i * 4 + 4)?;
            Some(u32::from_le_bytes(raw.try_into().ok()?))
        };
        Some((
            word(0)?,
            UserCounts {
                completed: word(1)?,
                failed: word(2)?,
                wrong: word(3)?,
                retried: word(4)?,
            },
        ))
    }
}

/// One step, measured: its users' counts summed, and what it took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub users: u32,
    pub completed: u64,
    pub failed: u64,
    pub wrong: u64,
    pub retried: u64,
    /// Microseconds from the users' start to the last one's exit.
    pub micros: u64,
    /// TSC cycles over the same time (guest instructions under `-icount`).
    pub instructions: u64,
}

impl Step {
    /// A step of `users` users that took `micros` microseconds and `instructions`, before
    /// any counts.
    pub fn new(users: u32, micros: u64, instructions: u64) -> Step {
        Step {
            users,
            micros,
            instructions,
            ..Step::default()
        }
    }

    /// Adds one user's counts.
    pub fn add(&mut self, user: UserCounts) {
        self.completed += u64::from(user.completed);
        self.failed += u64::from(user.failed);
        self.wrong += u64::from(user.wrong);
        self.retried += u64::from(user.retried);
    }

    /// Jobs completed × 60 / elapsed seconds.
    pub fn jobs_per_minute(&self) -> Tenths {
        // completed × 60 × MICROS_PER_SECOND / micros, in tenths, rounded to nearest; a step
        // shorter than a microsecond counts as one.
        let micros = u128::from(self.micros.max(1));
        let scaled = u128::from(self.completed) * 60 * u128::from(MICROS_PER_SECOND) * 10;
        Tenths(((scaled + micros / 2) / micros) as u64)
    }

    pub fn elapsed(&self) -> Seconds {
        Seconds(self.micros)
    }
}

/// A figure with one decimal: the value × 10.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tenths(pub u64);

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// Microseconds shown as seconds with two decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hundredths = self.0 / (MICROS_PER_SECOND / 100);
        write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

/// The name of metric `metric` of a step of `users` users: `nonaim.<metric>.<users>u`, then
/// `.<tag>`.
pub fn step_metric(metric: &str, users: u32, tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("nonaim.{metric}.{users}u.{tag}"),
        None => format!("nonaim.{metric}.{users}u"),
    }
}

/// The name of a metric of the whole run: `nonaim.<metric>`, then `.<tag>`.
pub fn run_metric(metric: &str, tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("nonaim.{metric}.{tag}"),
        None => format!("nonaim.{metric}"),
    }
}

/// The run's figures over the steps it finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The highest jobs per minute of any step.
    pub peak_jpm: Tenths,
    /// The users of the largest step with no failed job (0 if every step had one).
    pub max_users_without_failure: u32,
    /// Jobs with a wrong result, over all steps.
    pub wrong: u64,
}

impl Summary {
    pub fn add(&mut self, step: &Step) {
        self.peak_jpm = self.peak_jpm.max(step.jobs_per_minute());
        if step.failed == 0 {
            self.max_users_without_failure = self.max_users_without_failure.max(step.users);
        }
        self.wrong += step.wrong;
    }
}

/// The lines a finished step prints on either system: the step's line, a warning of wrong
/// results if any, and its `bench` figures (`nonaim.<metric>.<users>u[.<tag>]`).
pub fn step_report(step: &Step, tag: Option<&str>) -> Vec<String> {
    let users = step.users;
    let mut lines = vec![format!(
        "nonaim: users {users} jobs {} failed {} forks retried {} elapsed {} s jpm {}",
        step.completed,
        step.failed,
        step.retried,
        step.elapsed(),
        step.jobs_per_minute(),
    )];
    if step.wrong > 0 {
        lines.push(format!(
            "nonaim: users {users}: {} jobs computed a WRONG result",
            step.wrong
        ));
    }
    let figures: [(&str, String, &str); 5] = [
        ("jpm", format!("{}", step.jobs_per_minute()), "jobs/min"),
        ("failed", format!("{}", step.failed), "jobs"),
        ("forks_retried", format!("{}", step.retried), "forks"),
        ("elapsed_s", format!("{}", step.elapsed()), "s"),
        (
            "instructions",
            format!("{}", step.instructions),
            "instructions",
        ),
    ];
    for (metric, value, unit) in figures {
        lines.push(format!(
            "bench {} {value} {unit}",
            step_metric(metric, users, tag)
        ));
    }
    lines
}

/// The lines that end a schedule: where it stopped (`stopped`: the step whose users could
/// not all be started), the peak and the most users without a failure, and their `bench`
/// figures.
pub fn summary_report(summary: &Summary, stopped: Option<u32>, tag: Option<&str>) -> Vec<String> {
    let (peak, most) = (summary.peak_jpm, summary.max_users_without_failure);
    let first = match stopped {
        Some(users) => format!(
            "nonaim: stopped at {users} users; peak {peak} jobs/min, most users without a \
             failed job {most}"
        ),
        None => format!(
            "nonaim: schedule done; peak {peak} jobs/min, most users without a failed job {most}"
        ),
    };
    vec![
        first,
        format!("bench {} {peak} jobs/min", run_metric("peak_jpm", tag)),
        format!(
            "bench {} {most} users",
            run_metric("max_users_without_failure", tag)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_per_minute_is_completed_times_60_over_seconds() {
        // 100 jobs in 2.5 s: 2400 a minute.
        let mut step = Step::new(10, 2_500_000, 0);
        step.add(UserCounts {
            completed: 100,
            ..UserCounts::default()
        });
        assert_eq!(step.jobs_per_minute(), Tenths(24_000));
        assert_eq!(step.jobs_per_minute().to_string(), "2400.0");
        // 7 jobs in 3 s: 140; in 0.3 s: 1400; 1 job in 7 s: 8.571... rounds to 8.6.
        let jpm = |completed, centis: u64| {
            let mut step = Step::new(1, centis * 10_000, 0);
            step.add(UserCounts {
                completed,
                ..UserCounts::default()
            });
            step.jobs_per_minute().to_string()
        };
        assert_eq!(jpm(7, 300), "140.0");
        assert_eq!(jpm(7, 30), "1400.0");
        assert_eq!(jpm(1, 700), "8.6");
        assert_eq!(jpm(0, 700), "0.0");
        // A step under a microsecond counts as one.
        assert_eq!(jpm(1, 0), "60000000.0");
        // 10 jobs in 13.3 ms: not rounded to a timer tick.
        let mut quick = Step::new(1, 13_300, 0);
        quick.add(UserCounts {
            completed: 10,
            ..UserCounts::default()
        });
        assert_eq!(quick.jobs_per_minute().to_string(), "45112.8");
    }

    #[test]
    fn a_users_report_round_trips() {
        let counts = UserCounts {
            completed: 7,
            failed: 3,
            wrong: 1,
            retried: 70_000,
        };
        let report = counts.report(1999);
        assert_eq!(UserCounts::from_report(&report), Some((1999, counts)));
        assert_eq!(UserCounts::from_report(&report[..19]), None);
    }

    #[test]
    fn a_users_jobs_are_counted_by_verdict() {
        let mut counts = UserCounts::default();
        counts.count(Verdict::Passed, 2);
        counts.count(Verdict::Wrong, 0);
        counts.count(Verdict::NoResources, u32::MAX);
        assert_eq!(
            counts,
            UserCounts {
                completed: 1,
                failed: 2,
                wrong: 1,
                retried: u32::MAX,
            }
        );
    }

    #[test]
    fn users_counts_add_up() {
        let mut step = Step::new(2, 10_000, 1);
        step.add(UserCounts {
            completed: 9,
            failed: 1,
            wrong: 1,
            retried: 3,
        });
        step.add(UserCounts {
            completed: 10,
            failed: 0,
            wrong: 0,
            retried: 2,
        });
        assert_eq!(
            (step.completed, step.failed, step.wrong, step.retried),
            (19, 1, 1, 5)
        );
    }

    #[test]
    fn seconds_show_two_decimals() {
        assert_eq!(Seconds(0).to_string(), "0.00");
        assert_eq!(Seconds(70_000).to_string(), "0.07");
        assert_eq!(Seconds(12_345_678).to_string(), "12.34");
    }

    #[test]
    fn metric_names_carry_users_and_tag() {
        assert_eq!(step_metric("jpm", 5, None), "nonaim.jpm.5u");
        assert_eq!(
            step_metric("failed", 2000, Some("swapoff")),
            "nonaim.failed.2000u.swapoff"
        );
        assert_eq!(run_metric("peak_jpm", None), "nonaim.peak_jpm");
        assert_eq!(
            run_metric("peak_jpm", Some("swapon")),
            "nonaim.peak_jpm.swapon"
        );
    }

    #[test]
    fn the_summary_keeps_the_peak_and_the_largest_step_without_failure() {
        let step = |users, completed, failed, centis: u64| {
            let mut step = Step::new(users, centis * 10_000, 0);
            step.add(UserCounts {
                completed,
                failed,
                wrong: 0,
                retried: 0,
            });
            step
        };
        let mut summary = Summary::default();
        for s in [
            step(1, 10, 0, 100),
            step(2, 20, 0, 100),
            step(5, 49, 1, 100),
            step(10, 100, 0, 400),
        ] {
            summary.add(&s);
        }
        assert_eq!(summary.peak_jpm, Tenths(29_400));
        assert_eq!(summary.max_users_without_failure, 10);
        assert_eq!(Summary::default().max_users_without_failure, 0);
    }

    #[test]
    fn reports_name_every_figure_of_a_step_and_of_the_run() {
        let mut step = Step::new(20, 2_500_000, 12_345);
        step.add(UserCounts {
            completed: 199,
            failed: 1,
            wrong: 1,
            retried: 4,
        });
        let lines = step_report(&step, Some("x"));
        assert_eq!(
            lines[0],
            "nonaim: users 20 jobs 199 failed 1 forks retried 4 elapsed 2.50 s jpm 4776.0"
        );
        assert!(lines[1].contains("1 jobs computed a WRONG result"));
        assert_eq!(lines[2], "bench nonaim.jpm.20u.x 4776.0 jobs/min");
        assert_eq!(
            lines.last().unwrap(),
            "bench nonaim.instructions.20u.x 12345 instructions"
        );
        assert_eq!(lines.len(), 7);
        let mut summary = Summary::default();
        summary.add(&step);
        let end = summary_report(&summary, Some(50), None);
        assert!(
            end[0].starts_with("nonaim: stopped at 50 users; peak 4776.0"),
            "{}",
            end[0]
        );
        assert_eq!(end[1], "bench nonaim.peak_jpm 4776.0 jobs/min");
        assert_eq!(end[2], "bench nonaim.max_users_without_failure 0 users");
        assert!(summary_report(&summary, None, None)[0].starts_with("nonaim: schedule done"));
    }
}

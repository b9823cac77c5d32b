//! The job mix: the sixteen jobs and their weights (AIM's shared mix), the seeded draw of
//! each user's jobs, and what passes between a user process and the job program it execs
//! (the one-word argument and the exit status).

use core::fmt;

/// A NONAIM job. The discriminant is the job's number in the job program's argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Job {
    AddInt = 0,
    AddDouble = 1,
    MulInt = 2,
    DivDouble = 3,
    String = 4,
    Sieve = 5,
    Sort = 6,
    Matrix = 7,
    Mem = 8,
    PageTest = 9,
    BrkTest = 10,
    ForkTest = 11,
    ExecTest = 12,
    PipeTest = 13,
    ShmTest = 14,
    FileTest = 15,
}

/// Every job, in number order.
pub const ALL: [Job; 16] = [
    Job::AddInt,
    Job::AddDouble,
    Job::MulInt,
    Job::DivDouble,
    Job::String,
    Job::Sieve,
    Job::Sort,
    Job::Matrix,
    Job::Mem,
    Job::PageTest,
    Job::BrkTest,
    Job::ForkTest,
    Job::ExecTest,
    Job::PipeTest,
    Job::ShmTest,
    Job::FileTest,
];

/// The sum of the weights: a draw picks a number below it.
pub const TOTAL_WEIGHT: u32 = 290;

impl Job {
    /// The job's name in reports and figures.
    pub fn name(self) -> &'static str {
        match self {
            Job::AddInt => "add_int",
            Job::AddDouble => "add_double",
            Job::MulInt => "mul_int",
            Job::DivDouble => "div_double",
            Job::String => "string",
            Job::Sieve => "sieve",
            Job::Sort => "sort",
            Job::Matrix => "matrix",
            Job::Mem => "mem",
            Job::PageTest => "page_test",
            Job::BrkTest => "brk_test",
            Job::ForkTest => "fork_test",
            Job::ExecTest => "exec_test",
            Job::PipeTest => "pipe_test",
            Job::ShmTest => "shm_test",
            Job::FileTest => "file_test",
        }
    }

    /// How often the job is drawn, out of [`TOTAL_WEIGHT`]. AIM's shared mix weighs
    /// arithmetic and strings 30, exec and disk-like jobs 20, the rest 10: here the four
    /// arithmetic loops and the string routines 30 each; fork_test and exec_test (process
    /// creation, AIM's exec group) and file_test (the only job that reads a file, AIM's
    /// disk group) 20 each; sieve, sort, matrix, mem, page_test, brk_test, pipe_test and
    /// shm_test 10 each.
    pub fn weight(self) -> u32 {
        match self {
            Job::AddInt | Job::AddDouble | Job::MulInt | Job::DivDouble | Job::String => 30,
            Job::ForkTest | Job::ExecTest | Job::FileTest => 20,
            Job::Sieve
            | Job::Sort
            | Job::Matrix
            | Job::Mem
            | Job::PageTest
            | Job::BrkTest
            | Job::PipeTest
            | Job::ShmTest => 10,
        }
    }

    /// Job number `number`.
    pub fn from_number(number: u8) -> Option<Job> {
        ALL.get(usize::from(number)).copied()
    }

    /// Whether the job is pure computation (`compute`), with no system call in its work.
    pub fn is_compute(self) -> bool {
        (self as u8) <= Job::Mem as u8
    }

    /// The job a draw of `value` (below [`TOTAL_WEIGHT`]) picks: the jobs' weights laid end
    /// to end in number order.
    pub fn pick(value: u32) -> Job {
        let mut below = value % TOTAL_WEIGHT;
        for job in ALL {
            if below < job.weight() {
                return job;
            }
            below -= job.weight();
        }
        unreachable!("the weights sum to TOTAL_WEIGHT")
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// splitmix64: spreads a seed (consecutive seeds give unrelated streams).
pub const fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small generator (xorshift64*): deterministic per seed, never stuck at 0.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator for `seed` (any value; spread by [`splitmix64`]).
    pub fn new(seed: u64) -> Rng {
        let state = splitmix64(seed);
        Rng(if state == 0 {
            0x2545_f491_4f6c_dd1d
        } else {
            state
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The high 32 bits of the next value (xorshift's best).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value below `bound` (> 0); the bias of a 64-bit modulo is negligible here.
    pub fn below(&mut self, bound: u32) -> u32 {
        (self.next_u64() % u64::from(bound)) as u32
    }
}

/// Bits of a job's data seed that fit in the job program's argument.
pub const JOB_SEED_BITS: u32 = 26;

/// The jobs user `user` (from 1) runs: `jobs` of them, drawn by weight from a generator
/// seeded with the run's seed and the user's number, each with a data seed of its own. The
/// same user draws the same jobs at every step of a run.
pub fn draw(run_seed: u64, user: u32, jobs: u32) -> impl Iterator<Item = (Job, u32)> {
    let mut rng = Rng::new(run_seed ^ (u64::from(user) << 32) ^ u64::from(user));
    (0..jobs).map(move |_| {
        let job = Job::pick(rng.below(TOTAL_WEIGHT));
        (job, rng.next_u32() >> (32 - JOB_SEED_BITS))
    })
}

/// What the job program is told (its one start argument, a word): which job, its data seed,
/// whether to print the work's instruction count, and the name of a send right to the file
/// server in its space (for file_test; 0 for none). Rights survive fork and exec under
/// their names, so the name the user process holds is the job's too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobArgument {
    pub job: Job,
    /// Below `2^JOB_SEED_BITS`.
    pub seed: u32,
    pub measure: bool,
    pub files: u32,
}

/// Why a word is no job argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadJobArgument {
    /// The job number (the low five bits) names no job.
    NoSuchJob(u8),
}

impl fmt::Display for BadJobArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BadJobArgument::NoSuchJob(number) => write!(f, "no job number {number}"),
        }
    }
}

impl JobArgument {
    /// The word: bits 0-4 the job, bit 5 `measure`, bits 6-31 the seed, bits 32-63 the
    /// file server's name.
    pub fn encode(self) -> u64 {
        let seed = u64::from(self.seed & ((1 << JOB_SEED_BITS) - 1));
        u64::from(self.job as u8)
            | u64::from(self.measure) << 5
            | seed << 6
            | u64::from(self.files) << 32
    }

    pub fn decode(word: u64) -> Result<JobArgument, BadJobArgument> {
        let number = (word & 0x1f) as u8;
        let job = Job::from_number(number).ok_or(BadJobArgument::NoSuchJob(number))?;
        Ok(JobArgument {
            job,
            seed: ((word >> 6) & ((1 << JOB_SEED_BITS) - 1)) as u32,
            measure: word & (1 << 5) != 0,
            files: (word >> 32) as u32,
        })
    }
}

/// How a job ended, as its exit status says (low 8 bits), besides the forks it had to retry
/// (the bits above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    /// It ran and its result checked out.
    Passed = 0,
    /// It computed a wrong result (or read wrong data): the run's exit status becomes 1.
    Wrong = 1,
    /// The job program could not read its argument.
    BadArgument = 2,
    /// Memory, ports or forks ran out and stayed out after retries: the job did not finish.
    NoResources = 3,
    /// The exec of the job program failed (the user process's child says so; the user
    /// retries it).
    ExecFailed = 4,
}

/// Most retries a status carries (more are counted as this many).
pub const MAX_STATUS_RETRIES: u32 = (1 << 22) - 1;

impl Verdict {
    /// The exit status of a job that ended so, having retried `retries` forks.
    pub fn status(self, retries: u32) -> i32 {
        (self as i32) | (retries.min(MAX_STATUS_RETRIES) as i32) << 8
    }
}

/// A job's exit status read back (what `wait` gave).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// One of the job program's own statuses.
    Job { verdict: Verdict, retries: u32 },
    /// Anything else: the kernel ended it (a fault), it panicked (101), ...
    Other(u64),
}

impl Ended {
    pub fn of(status: u64) -> Ended {
        let verdict = match status & 0xff {
            0 => Verdict::Passed,
            1 => Verdict::Wrong,
            2 => Verdict::BadArgument,
            3 => Verdict::NoResources,
            4 => Verdict::ExecFailed,
            _ => return Ended::Other(status),
        };
        if status > i32::MAX as u64 {
            return Ended::Other(status);
        }
        Ended::Job {
            verdict,
            retries: (status >> 8) as u32,
        }
    }
}

/// Attempts at a fork (or a fork and exec) before giving up: a failed one is tried again
/// after a pause, and counted. The pauses of 67 attempts come to about a minute: under
/// extreme load the kernel refuses new tasks until memory and its budget for tasks allow
/// (the swapper sending idle tasks out, jobs ending), and a job waits its turn rather than
/// fail (the issue: "never fatal").
pub const MAX_ATTEMPTS: u32 = 67;

/// The pause after failed attempt `attempt` (from 0): 10 ms, doubling, at most 1 s.
pub fn retry_pause_ms(attempt: u32) -> u64 {
    (10u64 << attempt.min(16)).min(1000)
}

/// The status `nonaim_exit` ends with for `argument` (exec_test checks it): never 0, so an
/// exec that silently did nothing cannot pass.
pub fn exit_status_for(argument: u64) -> i32 {
    (splitmix64(argument) % 200) as i32 + 10
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_weights_sum_to_the_total_and_follow_aims_groups() {
        assert_eq!(ALL.iter().map(|j| j.weight()).sum::<u32>(), TOTAL_WEIGHT);
        let of = |w: u32| ALL.iter().filter(|j| j.weight() == w).count();
        assert_eq!((of(30), of(20), of(10)), (5, 3, 8));
        for (number, job) in ALL.iter().enumerate() {
            assert_eq!(*job as usize, number);
            assert_eq!(Job::from_number(number as u8), Some(*job));
        }
        assert_eq!(Job::from_number(16), None);
        let compute: Vec<&str> = ALL
            .iter()
            .filter(|j| j.is_compute())
            .map(|j| j.name())
            .collect();
        assert_eq!(
            compute,
            [
                "add_int",
                "add_double",
                "mul_int",
                "div_double",
                "string",
                "sieve",
                "sort",
                "matrix",
                "mem"
            ]
        );
    }

    #[test]
    fn every_value_picks_the_job_whose_share_it_falls_in() {
        let mut counts = HashMap::new();
        for value in 0..TOTAL_WEIGHT {
            *counts.entry(Job::pick(value)).or_insert(0) += 1;
        }
        for job in ALL {
            assert_eq!(counts[&job], job.weight(), "{job}");
        }
        assert_eq!(Job::pick(0), Job::AddInt);
        assert_eq!(Job::pick(TOTAL_WEIGHT - 1), Job::FileTest);
    }

    #[test]
    fn the_draw_is_the_same_for_a_seed_and_user_and_differs_otherwise() {
        let jobs = |seed, user| draw(seed, user, 10).collect::<Vec<_>>();
        assert_eq!(jobs(1, 1), jobs(1, 1));
        assert_eq!(jobs(1, 1).len(), 10);
        assert_ne!(jobs(1, 1), jobs(1, 2));
        assert_ne!(jobs(1, 1), jobs(2, 1));
        assert!(jobs(7, 3)
            .iter()
            .all(|&(_, seed)| seed < 1 << JOB_SEED_BITS));
    }

    #[test]
    fn the_draw_follows_the_weights() {
        let mut counts = HashMap::new();
        let users = 2000;
        for user in 1..=users {
            for (job, _) in draw(1, user, 10) {
                *counts.entry(job).or_insert(0u32) += 1;
            }
        }
        let total = f64::from(users * 10);
        for job in ALL {
            let share = f64::from(counts[&job]) / total;
            let expected = f64::from(job.weight()) / f64::from(TOTAL_WEIGHT);
            assert!(
                (share - expected).abs() < 0.01,
                "{job}: {share:.4} of the draws, expected {expected:.4}"
            );
        }
    }

    #[test]
    fn a_job_argument_round_trips_and_bad_numbers_are_refused() {
        for job in ALL {
            let argument = JobArgument {
                job,
                seed: (1 << JOB_SEED_BITS) - 1,
                measure: (job as u8).is_multiple_of(2),
                files: 0xffff_fe03,
            };
            assert_eq!(JobArgument::decode(argument.encode()), Ok(argument));
        }
        let plain = JobArgument {
            job: Job::Sort,
            seed: 5,
            measure: false,
            files: 0,
        };
        assert_eq!(plain.encode(), 6 | 5 << 6);
        assert_eq!(JobArgument::decode(16), Err(BadJobArgument::NoSuchJob(16)));
        assert_eq!(
            JobArgument::decode(31).unwrap_err().to_string(),
            "no job number 31"
        );
    }

    #[test]
    fn statuses_carry_the_verdict_and_the_retries() {
        assert_eq!(Verdict::Passed.status(0), 0);
        assert_eq!(
            Ended::of(Verdict::NoResources.status(7) as u64),
            Ended::Job {
                verdict: Verdict::NoResources,
                retries: 7
            }
        );
        assert_eq!(
            Ended::of(Verdict::Wrong.status(u32::MAX) as u64),
            Ended::Job {
                verdict: Verdict::Wrong,
                retries: MAX_STATUS_RETRIES
            }
        );
        assert_eq!(Ended::of(101), Ended::Other(101));
        assert_eq!(Ended::of(u64::MAX), Ended::Other(u64::MAX));
        assert_eq!(Ended::of(1 << 40), Ended::Other(1 << 40));
    }

    #[test]
    fn retry_pauses_double_up_to_a_second() {
        let pauses: Vec<u64> = (0..MAX_ATTEMPTS - 1).map(retry_pause_ms).collect();
        assert_eq!(pauses[..9], [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        let total: u64 = pauses.iter().sum();
        assert!((59_000..=61_000).contains(&total), "{total} ms of patience");
        assert_eq!(retry_pause_ms(u32::MAX), 1000);
    }

    #[test]
    fn exit_statuses_are_never_zero_and_vary() {
        let statuses: std::collections::HashSet<i32> = (0..50).map(exit_status_for).collect();
        assert!(statuses.iter().all(|&s| (10..210).contains(&s)));
        assert!(statuses.len() > 20);
    }
}

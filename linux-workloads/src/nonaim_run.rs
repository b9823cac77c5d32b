//! NONAIM on Linux, as `servers/nonaim` runs it on the microkernel: the same arguments
//! (`nonaim::args`), the same users drawing the same jobs (`nonaim::mix::draw`), every job a
//! forked child that execs the job program (here `/init nonaim-job WORD`, [`crate::nonaim_jobs`]),
//! and the same figures (`nonaim::figures`). Each step forks its users at once; each user joins
//! the workload's memory cgroup, says it is ready on a pipe and waits for the driver to close
//! another (the clock starts), runs its jobs one after the other and leaves its counts in a
//! page shared with the driver. The step ends when every process of it is gone: this program
//! is PID 1, so orphans come back to it and `wait` runs dry only then. A user the OOM killer
//! ends never reports: its jobs count as failed, as the microkernel's driver counts a user
//! that never reports.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use nonaim::args::{Mode, Params};
use nonaim::figures::Summary;
use nonaim::figures::{run_metric, step_report, summary_report, Step, UserCounts};
use nonaim::mix::{draw, Job, JobArgument, Verdict, ALL};

use crate::nonaim_jobs::{
    exec_self, exit_now, fork_retrying, pause_before_retry, timestamp, wait_for, ChildEnd, JOB,
};
use crate::system::{self, Machine};
use linux_workloads::job_status;

/// Words of a user's slot in the shared record: whether it reported, its counts
/// (`UserCounts`: completed, failed, wrong, retried), and its jobs killed by a signal.
const SLOT_WORDS: usize = 6;
/// Word 0 of the shared record: the driver's word to the users when the go pipe closes.
const ABORTED: usize = 0;

/// The record a step's users write their counts in: one mapping shared by the driver and
/// every user it forks.
struct Shared {
    base: *mut AtomicU32,
    words: usize,
}

impl Shared {
    fn new(users: u32) -> Result<Shared, String> {
        let words = 1 + users as usize * SLOT_WORDS;
        let bytes = words * 4;
        let base = system::map_anonymous(bytes, system::Sharing::Shared)
            .map_err(|e| format!("the users' shared record: {e}"))?;
        Ok(Shared {
            base: base as *mut AtomicU32,
            words,
        })
    }

    fn word(&self, index: usize) -> &AtomicU32 {
        assert!(index < self.words);
        // SAFETY: the mapping is `words` zero-filled, aligned words, live until `drop`, and
        // touched only through atomics.
        unsafe { &*self.base.add(index) }
    }

    /// User `number`'s (from 1) word `index`.
    fn slot(&self, number: u32, index: usize) -> &AtomicU32 {
        self.word(1 + (number as usize - 1) * SLOT_WORDS + index)
    }

    fn report(&self, number: u32, counts: &UserCounts, killed: u32) {
        let words = [
            counts.completed,
            counts.failed,
            counts.wrong,
            counts.retried,
            killed,
        ];
        for (index, value) in words.into_iter().enumerate() {
            self.slot(number, 1 + index).store(value, Ordering::Relaxed);
        }
        self.slot(number, 0).store(1, Ordering::Release);
    }

    /// User `number`'s counts and jobs killed, if it reported.
    fn read(&self, number: u32) -> Option<(UserCounts, u32)> {
        if self.slot(number, 0).load(Ordering::Acquire) == 0 {
            return None;
        }
        let word = |index| self.slot(number, index).load(Ordering::Relaxed);
        Some((
            UserCounts {
                completed: word(1),
                failed: word(2),
                wrong: word(3),
                retried: word(4),
            },
            word(5),
        ))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; nothing refers to it after this.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.words * 4) };
    }
}

/// A pipe's read and write ends.
fn pipe() -> Result<[libc::c_int; 2], String> {
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors.
    if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    Ok(ends)
}

fn close(fd: libc::c_int) {
    // SAFETY: closes a descriptor this process opened and uses no more.
    unsafe { libc::close(fd) };
}

/// Reads until end of file; the bytes read.
fn read_to_end(fd: libc::c_int) -> usize {
    let (mut total, mut buffer) = (0, [0u8; 512]);
    loop {
        // SAFETY: the pointer and length describe `buffer`.
        let n = unsafe { libc::read(fd, buffer.as_mut_ptr() as *mut libc::c_void, buffer.len()) };
        match n {
            0 => return total,
            n if n > 0 => total += n as usize,
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => return total,
        }
    }
}

/// Runs NONAIM with `args` (those of the microkernel's `nonaim`); the exit status.
pub fn run(machine: &Machine, args: &[&str]) -> i32 {
    let params = match nonaim::args::parse(args.iter().copied()) {
        Ok(params) => params,
        Err(why) => {
            println!("nonaim: bad arguments: {why}");
            return 2;
        }
    };
    match &params.mode {
        Mode::Steps(steps) => schedule(machine, &params, steps),
        Mode::Calibrate => calibrate(&params),
    }
}

fn schedule(machine: &Machine, params: &Params, steps: &[u32]) -> i32 {
    let tag = params.tag.as_deref();
    let free_kib = system::free_kib();
    let workload_kib = machine
        .memory_limit
        .map_or(free_kib, |limit| free_kib.min(limit >> 10));
    let list: Vec<String> = steps.iter().map(u32::to_string).collect();
    println!(
        "nonaim: schedule {} users, {} jobs each, seed {}; Linux {}, swap on /dev/{}, memory \
         limit {}; {free_kib} KiB free",
        list.join(","),
        params.jobs_per_user,
        params.seed,
        system::kernel_release(),
        system::DISK,
        machine
            .memory_limit
            .map_or("none".to_string(), |limit| format!(
                "{} KiB (memory cgroup)",
                limit >> 10
            )),
    );
    println!("bench {} {workload_kib} KiB", run_metric("free_kib", tag));
    let (mut summary, mut stopped) = (Summary::default(), None);
    for &users in steps {
        match step(users, params, machine) {
            Ok(step) => {
                for line in step_report(&step, tag) {
                    println!("{line}");
                }
                summary.add(&step);
            }
            Err(why) => {
                println!("nonaim: users {users}: {why}; resources are out: stopping the schedule");
                stopped = Some(users);
                break;
            }
        }
    }
    for line in summary_report(&summary, stopped, tag) {
        println!("{line}");
    }
    if summary.wrong > 0 {
        println!(
            "nonaim: FAILED: {} jobs computed a wrong result",
            summary.wrong
        );
        1
    } else {
        0
    }
}

/// One step of `users` users: its figures, or why not every user could be started.
fn step(users: u32, params: &Params, machine: &Machine) -> Result<Step, String> {
    let shared = Shared::new(users)?;
    let ready = pipe()?;
    let go = match pipe() {
        Ok(go) => go,
        Err(why) => {
            ready.into_iter().for_each(close);
            return Err(why);
        }
    };
    let (mut forked, mut retried, mut failure) = (0u32, 0u32, None);
    for number in 1..=users {
        match fork_retrying(&mut retried) {
            Ok(0) => {
                close(ready[0]);
                close(go[1]);
                user(number, params, &shared, ready[1], go[0], machine)
            }
            Ok(_) => forked += 1,
            Err(e) => {
                failure = Some(format!(
                    "only {forked} of {users} users could be started (fork: {e}, {retried} \
                     forks retried)"
                ));
                break;
            }
        }
    }
    close(ready[1]);
    close(go[0]);
    // Every user writes a byte and closes its end: the end of file says all are ready (or
    // gone).
    let arrived = read_to_end(ready[0]);
    close(ready[0]);
    if failure.is_some() {
        shared.word(ABORTED).store(1, Ordering::Release);
    }
    let (start, tsc_before) = (Instant::now(), timestamp());
    close(go[1]);
    reap_all();
    let (elapsed, instructions) = (start.elapsed(), timestamp() - tsc_before);
    if let Some(why) = failure {
        return Err(why);
    }
    let mut step = Step::new(users, elapsed.as_micros() as u64, instructions);
    step.retried += u64::from(retried);
    let (mut missing, mut killed) = (0u32, 0u64);
    for number in 1..=users {
        match shared.read(number) {
            Some((counts, jobs_killed)) => {
                step.add(counts);
                killed += u64::from(jobs_killed);
            }
            None => missing += 1,
        }
    }
    if arrived < users as usize {
        println!(
            "nonaim: users {users}: {} users died before they were ready",
            users as usize - arrived
        );
    }
    if missing > 0 {
        println!(
            "nonaim: users {users}: {missing} users never reported (killed: the OOM killer?); \
             their jobs count as failed"
        );
        step.failed += u64::from(missing) * u64::from(params.jobs_per_user);
    }
    if killed > 0 {
        println!("nonaim: users {users}: {killed} jobs were killed by a signal (the OOM killer)");
    }
    Ok(step)
}

/// Waits for every child, and every orphan that comes back to this PID 1, until none is
/// left.
fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: `status` is valid; waits for any child.
        if unsafe { libc::wait(&mut status) } == -1 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINTR) {
                return;
            }
        }
    }
}

/// User `number`'s life in a forked child: never returns.
fn user(
    number: u32,
    params: &Params,
    shared: &Shared,
    ready: libc::c_int,
    go: libc::c_int,
    machine: &Machine,
) -> ! {
    let mut counts = UserCounts::default();
    let mut killed = 0;
    let joined = match machine.cgroup.as_deref().map(system::join_cgroup) {
        Some(Err(why)) => {
            println!("nonaim: user {number}: {why}");
            false
        }
        _ => true,
    };
    // SAFETY: writes one byte from a live buffer.
    unsafe { libc::write(ready, [1u8].as_ptr() as *const libc::c_void, 1) };
    close(ready);
    read_to_end(go);
    close(go);
    if shared.word(ABORTED).load(Ordering::Acquire) != 0 {
        exit_now(0);
    }
    if joined {
        for (job, seed) in draw(params.seed, number, params.jobs_per_user) {
            run_job(number, job, seed, &mut counts, &mut killed);
        }
    } else {
        counts.failed = params.jobs_per_user;
    }
    shared.report(number, &counts, killed);
    exit_now(0)
}

/// Runs `job` in a forked child that execs the job program, and counts how it went.
fn run_job(user: u32, job: Job, seed: u32, counts: &mut UserCounts, killed: &mut u32) {
    let word = JobArgument {
        job,
        seed,
        measure: false,
        files: 0,
    }
    .encode()
    .to_string();
    let mut attempt = 0;
    loop {
        let why = match fork_retrying(&mut counts.retried) {
            Ok(0) => {
                exec_self(JOB, &word);
                exit_now(job_status::encode(Verdict::ExecFailed, 0))
            }
            Ok(pid) => match wait_for(pid) {
                Ok(ChildEnd::Exited(status)) => match job_status::decode(status) {
                    Some((Verdict::ExecFailed, _)) => "exec".to_string(),
                    Some((verdict, retries)) => {
                        counts.count(verdict, retries);
                        return;
                    }
                    None => {
                        println!("nonaim: user {user}: {job} (seed {seed}) exited with {status}");
                        counts.failed += 1;
                        return;
                    }
                },
                Ok(ChildEnd::Killed(_)) => {
                    counts.failed += 1;
                    *killed += 1;
                    return;
                }
                Err(why) => {
                    println!("nonaim: user {user}: waiting for {job}: {why}");
                    counts.failed += 1;
                    return;
                }
            },
            Err(e) => format!("fork: {e}"),
        };
        if !pause_before_retry(attempt, &mut counts.retried) {
            println!(
                "nonaim: user {user}: {job}: {why} failed {} times; the job fails",
                attempt + 1
            );
            counts.failed += 1;
            return;
        }
        attempt += 1;
    }
}

/// Each job once, one after the other: the job prints its work's instructions, this its
/// whole cost (fork, exec, work, exit, wait).
fn calibrate(params: &Params) -> i32 {
    println!("nonaim: calibrating: each job once, seed {}", params.seed);
    let mut wrong = 0;
    for job in ALL {
        let word = JobArgument {
            job,
            seed: (params.seed & 0x3ff_ffff) as u32,
            measure: true,
            files: 0,
        }
        .encode()
        .to_string();
        let mut retried = 0;
        let before = timestamp();
        let end = match fork_retrying(&mut retried) {
            Ok(0) => {
                exec_self(JOB, &word);
                exit_now(job_status::encode(Verdict::ExecFailed, 0))
            }
            Ok(pid) => wait_for(pid),
            Err(e) => Err(format!("fork: {e}")),
        };
        let total = timestamp() - before;
        match end {
            Ok(ChildEnd::Exited(status))
                if job_status::decode(status).map(|(v, _)| v) == Some(Verdict::Passed) =>
            {
                println!("nonaim: job {job} total {total} instructions");
                println!("bench nonaim.total.{job} {total} instructions");
            }
            other => {
                println!("nonaim: job {job} failed: {other:?}");
                wrong += 1;
            }
        }
    }
    i32::from(wrong > 0)
}

//! A simulated user: a process forked by the driver that says it is ready, waits for the
//! step to start, runs its jobs one after the other (each a forked child exec'ing
//! `nonaim_job`, waited for; a fork or exec that fails is retried after a pause and counted),
//! and reports its counts to the driver.

use crate::step::{DONE, GO, READY};
use alloc::boxed::Box;
use libipc::ipc::{self, MessageBuffer, Name, OutMessage, ReceiveRight};
use libipc::println;
use libipc::process::{self, Fork};
use nonaim::args::Params;
use nonaim::figures::UserCounts;
use nonaim::guest::pause_before_retry;
use nonaim::mix::{draw, Ended, Job, JobArgument, Verdict};

/// User `number`'s life; `driver` names the send right to the step's port, `files` the one
/// to the file server. Never returns: the process exits.
pub fn run(number: u32, params: &Params, driver: Name, files: Name) -> ! {
    let mut buffer = Box::new(MessageBuffer::new());
    let mut counts = UserCounts::default();
    match ready(driver, &mut buffer) {
        Some(true) => {
            for (job, seed) in draw(params.seed, number, params.jobs_per_user) {
                run_job(number, job, seed, files, &mut counts);
            }
        }
        // Told to abort: no job runs, nothing to report.
        Some(false) => process::exit(0),
        // No port for the answer: the jobs count as failed.
        None => counts.failed = params.jobs_per_user,
    }
    let report = counts.report(number);
    let message = OutMessage::new(DONE, driver).with_body(&report);
    if let Err(e) = ipc::send(&message, &mut buffer, None) {
        println!("nonaim: user {number}: reporting to the driver: {e:?}");
    }
    process::exit(0)
}

/// Tells the driver this user is ready and waits for its answer: whether to go. `None` if
/// there was no port to wait on.
fn ready(driver: Name, buffer: &mut MessageBuffer) -> Option<bool> {
    let reply = ReceiveRight::allocate().ok()?;
    let message = OutMessage::new(READY, driver).reply_to(reply.name());
    match ipc::call(&message, reply.name(), buffer, None) {
        Ok(answer) => Some(answer.id() == READY + 100 && answer.body.first() == Some(&GO)),
        // The driver is gone: nothing to run for.
        Err(_) => Some(false),
    }
}

/// Runs `job` with `seed` in a forked child that execs `nonaim_job`, and counts how it went.
fn run_job(user: u32, job: Job, seed: u32, files: Name, counts: &mut UserCounts) {
    let argument = JobArgument {
        job,
        seed,
        measure: false,
        files,
    }
    .encode();
    let mut attempt = 0;
    loop {
        let why = match process::fork() {
            Ok(Fork::Child) => {
                let _ = process::exec("nonaim_job", argument);
                process::exit(Verdict::ExecFailed.status(0))
            }
            Ok(Fork::Parent(task)) => match process::wait(&task).map(Ended::of) {
                Ok(Ended::Job {
                    verdict: Verdict::ExecFailed,
                    ..
                }) => "exec",
                Ok(Ended::Job { verdict, retries }) => {
                    counts.count(verdict, retries);
                    return;
                }
                Ok(Ended::Other(status)) => {
                    println!(
                        "nonaim: user {user}: {job} (seed {seed}) ended with status {}",
                        status as i64
                    );
                    counts.failed += 1;
                    return;
                }
                Err(e) => {
                    println!("nonaim: user {user}: waiting for {job}: {e}");
                    counts.failed += 1;
                    return;
                }
            },
            Err(_) => "fork",
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

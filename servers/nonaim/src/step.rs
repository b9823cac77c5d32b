//! One step of the schedule: U user processes forked, started together, their reports
//! collected, and what it took.
//!
//! The driver talks to its users over one port of its own (the *step port*), whose send
//! right the users inherit at fork. Each user calls it with `READY` and waits; once all are
//! ready (or none has come for [`READY_PATIENCE_MS`]) the driver answers them all `GO` (the
//! clock starts) or, if not every user could be forked, `ABORT`. A user sends `DONE` with
//! its counts when its jobs are done, then exits. The driver keeps no task port of its
//! users (each forked user would otherwise inherit its elder siblings' ports: U² rights in
//! all) and gave its own send right away after the last fork, so the port's no-senders
//! notification says every user (and every job they started) is gone: the clock stops.

use crate::user;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libipc::abi::message::{notify, Disposition, ReceivedRight};
use libipc::ipc::{self, MessageBuffer, Name, OutMessage, ReceiveRight};
use libipc::println;
use libipc::process::Fork;
use nonaim::args::Params;
use nonaim::figures::{Step, UserCounts};
use nonaim::guest::{fork_retrying, micros, timestamp};

/// A user's call saying it is ready; the answer (id + 100) is one byte, [`GO`] or [`ABORT`].
pub const READY: u32 = 7200;
/// A user's report (`UserCounts::report`) when its jobs are done.
pub const DONE: u32 = 7201;
/// The answer to `READY`: run the jobs.
pub const GO: u8 = 1;
/// The answer to `READY`: exit without running them.
pub const ABORT: u8 = 0;

/// How long the driver waits for the next user's `READY` before starting those that are.
const READY_PATIENCE_MS: u64 = 60_000;

/// How a step went.
pub enum Started {
    /// Every user was started: the step's figures.
    All(Step),
    /// Not every user could be forked (or the step's port made): those that were exited
    /// without running a job.
    Short {
        started: u32,
        why: String,
        retried: u32,
    },
}

/// Runs a step of `users` users; `files` names the send right to the file server, which
/// users and jobs inherit.
pub fn run(users: u32, params: &Params, files: Name) -> Started {
    let short = |started, why: String, retried| Started::Short {
        started,
        why,
        retried,
    };
    let port = match ReceiveRight::allocate() {
        Ok(port) => port,
        Err(e) => return short(0, format!("the step's port: {e}"), 0),
    };
    let send = match port.make_send() {
        Ok(send) => send,
        Err(e) => return short(0, format!("a send right to the step's port: {e}"), 0),
    };
    if let Err(e) =
        libipc::sys::port_request_notification(port.name(), notify::NO_SENDERS, port.name())
    {
        return short(
            0,
            format!("the step port's no-senders notification: {e}"),
            0,
        );
    }
    let (mut forked, mut retried, mut failure) = (0u32, 0u32, None);
    for number in 1..=users {
        match fork_retrying(&mut retried) {
            Ok(Fork::Child) => user::run(number, params, send.name(), files),
            // The task port goes at once: no later user inherits it.
            Ok(Fork::Parent(task)) => {
                drop(task);
                forked += 1;
            }
            Err(e) => {
                failure = Some(format!("fork: {e}"));
                break;
            }
        }
    }
    drop(send);
    let mut buffer = Box::new(MessageBuffer::new());
    let mut collector = Collector {
        port,
        step: Step::new(users, 0, 0),
        reported: 0,
        gone: false,
    };
    let waiting = collector.wait_until_ready(forked, &mut buffer);
    if let Some(why) = failure {
        for &user in &waiting {
            answer(user, ABORT);
        }
        collector.wait_until_gone(&mut buffer);
        return short(forked, why, retried);
    }
    let (micros_before, tsc_before) = (micros(), timestamp());
    for &user in &waiting {
        answer(user, GO);
    }
    collector.wait_until_gone(&mut buffer);
    let mut step = collector.step;
    step.micros = micros() - micros_before;
    step.instructions = timestamp() - tsc_before;
    step.retried += u64::from(retried);
    let missing = users - collector.reported.min(users);
    if missing > 0 {
        // Users that never reported (ended by the kernel, or started too late): none of
        // their jobs counts as done.
        println!(
            "nonaim: users {users}: {missing} users never reported; their jobs count as failed"
        );
        step.failed += u64::from(missing) * u64::from(params.jobs_per_user);
    }
    Started::All(step)
}

/// Answers a user's `READY` through its reply right `to`.
fn answer(to: Name, what: u8) {
    let message = OutMessage::new(READY + 100, to)
        .to(to, Disposition::MoveSendOnce)
        .with_body(core::slice::from_ref(&what));
    // A user that is gone meanwhile needs no answer.
    let _ = ipc::send_message(&message, Some(1000));
}

/// The driver's side of the step port.
struct Collector {
    port: ReceiveRight,
    /// The users' counts so far.
    step: Step,
    /// Users whose `DONE` came.
    reported: u32,
    /// The no-senders notification came: every user is gone.
    gone: bool,
}

impl Collector {
    /// Collects the `READY`s of `forked` users: their reply rights. Stops early when none
    /// comes for [`READY_PATIENCE_MS`] or every user is gone.
    fn wait_until_ready(&mut self, forked: u32, buffer: &mut MessageBuffer) -> Vec<Name> {
        let mut waiting = Vec::new();
        if waiting.try_reserve_exact(forked as usize).is_err() {
            println!("nonaim: no memory to start {forked} users; they are told to abort");
        }
        while !self.gone && (waiting.len() as u32) + self.reported < forked {
            let Ok(message) = ipc::receive(self.port.name(), buffer, Some(READY_PATIENCE_MS))
            else {
                println!(
                    "nonaim: {} of {forked} users ready and none for {} s: starting those",
                    waiting.len(),
                    READY_PATIENCE_MS / 1000
                );
                break;
            };
            match (message.id(), message.reply()) {
                (READY, Some((to, ReceivedRight::SendOnce)))
                    if waiting.len() < waiting.capacity() =>
                {
                    waiting.push(to)
                }
                (READY, Some((to, _))) => answer(to, ABORT),
                _ => self.note(message.id(), message.body),
            }
        }
        waiting
    }

    /// Receives until the no-senders notification: the `DONE` reports; a late `READY` is
    /// told to abort.
    fn wait_until_gone(&mut self, buffer: &mut MessageBuffer) {
        while !self.gone {
            let message = match ipc::receive(self.port.name(), buffer, None) {
                Ok(message) => message,
                Err(e) => {
                    println!("nonaim: receiving the users' reports: {e:?}; the step ends");
                    return;
                }
            };
            match (message.id(), message.reply()) {
                (READY, Some((to, _))) => answer(to, ABORT),
                _ => self.note(message.id(), message.body),
            }
        }
    }

    /// A message that is no `READY`: a report or the notification.
    fn note(&mut self, id: u32, body: &[u8]) {
        match id {
            DONE => match UserCounts::from_report(body) {
                Some((_, counts)) => {
                    self.step.add(counts);
                    self.reported += 1;
                }
                None => println!("nonaim: a user's report of {} bytes is short", body.len()),
            },
            notify::NO_SENDERS => self.gone = true,
            other => println!("nonaim: unexpected message {other} on the step's port"),
        }
    }
}

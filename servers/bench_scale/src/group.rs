//! A group: starts blocked tasks one at a time until it has the number asked for or the
//! kernel refuses one, reports to the driver how many, and terminates them all when the
//! driver says stop (or when anything fails: none is left behind).

use alloc::format;
use alloc::vec::Vec;

use libipc::abi::message::Disposition;
use libipc::ipc::{receive, send, MessageBuffer, Name, OutMessage, ReceiveRight, SendRight, Task};

use crate::{role, Failure, BLOCKED_ID, PROGRAM, SETUP_TIMEOUT_MS};

/// A group's report: a send right to its control port, and (body) how many blocked tasks it
/// has, a little-endian u64.
pub const REPORT_ID: u32 = 4001;
/// To a group's control port: terminate your blocked tasks and exit.
pub const STOP_ID: u32 = 4002;

/// The group's main. `driver`: a send right to report on; `wanted`: how many blocked tasks
/// to start. 0 when every blocked task was terminated at the end, 1 otherwise (printed).
/// Not inlined into `main`: its frame would be every role's, and a blocked task would
/// touch its pages.
#[inline(never)]
pub fn run(driver: Name, wanted: u64) -> i32 {
    let mut blocked = Blocked(Vec::new());
    match serve(SendRight::from_raw(driver), wanted, &mut blocked) {
        Ok(()) => match blocked.terminate_all() {
            0 => 0,
            failed => {
                libipc::println!("bench_scale: a group could not terminate {failed} tasks");
                1
            }
        },
        Err(why) => {
            libipc::println!("bench_scale: a group failed: {why}");
            1
        }
    }
}

/// The blocked tasks a group started; those still here when it is dropped are terminated.
struct Blocked(Vec<Task>);

impl Blocked {
    /// Terminates every task; how many could not be.
    fn terminate_all(&mut self) -> usize {
        self.0
            .drain(..)
            .filter(|task| task.terminate().is_err())
            .count()
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        self.terminate_all();
    }
}

fn serve(driver: SendRight, wanted: u64, blocked: &mut Blocked) -> Result<(), Failure> {
    let control = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let ready = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let give = ready
        .make_send()
        .map_err(|e| format!("making a send right: {e:?}"))?;
    blocked
        .0
        .try_reserve_exact(wanted as usize)
        .map_err(|_| Failure::from("no heap for the task list"))?;
    let mut buffer = MessageBuffer::new();
    for number in 1..=wanted {
        let task = match Task::spawn(PROGRAM, Some(&give), role::BLOCKED) {
            Ok(task) => task,
            Err(e) => {
                // The kernel's refusal ends the group's growth; the driver counts what is.
                libipc::println!(
                    "bench_scale: the kernel refused blocked task {number} of a group: {e:?}"
                );
                break;
            }
        };
        blocked.0.push(task);
        let message = receive(ready.name(), &mut buffer, Some(SETUP_TIMEOUT_MS))
            .map_err(|e| format!("waiting for blocked task {number} to be ready: {e:?}"))?;
        if message.id() != BLOCKED_ID {
            return Err(format!(
                "blocked task {number} said id {} instead of {BLOCKED_ID}",
                message.id()
            ));
        }
    }
    report_and_wait(driver, &control, blocked.0.len() as u64, &mut buffer)
}

/// Reports `count` to the driver with a send right to `control`, then waits there until
/// told to stop (the protocol of groups and of the task of many threads).
pub fn report_and_wait(
    driver: SendRight,
    control: &ReceiveRight,
    count: u64,
    buffer: &mut MessageBuffer,
) -> Result<(), Failure> {
    let count = count.to_le_bytes();
    let report = OutMessage::new(REPORT_ID, driver.name())
        .carry(control.name(), Disposition::MakeSend)
        .map_err(|e| format!("building the report: {e:?}"))?
        .with_body(&count);
    send(&report, buffer, Some(SETUP_TIMEOUT_MS))
        .map_err(|e| format!("reporting to the driver: {e:?}"))?;
    drop(driver);
    loop {
        let message = receive(control.name(), buffer, None)
            .map_err(|e| format!("waiting to be told to stop: {e:?}"))?;
        if message.id() == STOP_ID {
            return Ok(());
        }
    }
}

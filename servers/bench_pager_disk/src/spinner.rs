//! A task that keeps the processor busy while the benchmark waits for the disk, counting its
//! turns, so that a timed fault excludes the wait without the clock jumping.
//!
//! Under `-icount shift=0,sleep=off` an idle processor does not wait: QEMU moves the guest's
//! clock to the next timer deadline (the 100 Hz tick, or another device's), so a fault that
//! waits for the disk with nothing else to run reads as the rest of a tick period, up to
//! 10,000,000 "instructions", whatever the disk did. With this task ready at the lowest
//! priority the processor never idles: it runs the spinner's turns (a count in a shared page
//! and a `thread_yield`, which hands the processor to any thread of higher priority woken
//! meanwhile, e.g. the pager by the disk's reply), and the clock advances by instructions
//! only. A timed fault's instructions are then the round trip's own plus the spinner's turns
//! in it, which [`Spinner::instructions`] gives from the turns counted and the cost of a
//! turn measured while nothing else runs.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::VM_INHERIT_SHARE;
use libipc::sys::{self, Forked};

use crate::paging::{allocate, deallocate, timestamp, PAGE};
use libipc::rt::sleep_ms;

/// Words of the shared page: set by the benchmark to end the spinner; its turns so far.
const STOP: u64 = 0;
const TURNS: u64 = 1;

/// How long the cost of a turn is measured over, in milliseconds of guest time (under
/// `-icount`, 10 million instructions each).
const CALIBRATION_MS: u64 = 20;

/// The spinning child: its task port and the page it shares with the benchmark.
pub struct Spinner {
    task: u32,
    page: u64,
    /// Instructions of `turns` turns: `instructions / turns` per turn, kept as a fraction.
    cost: (u64, u64),
}

fn word(page: u64, word: u64) -> *mut u64 {
    (page + word * 8) as *mut u64
}

impl Spinner {
    /// Forks the spinner (it lowers its priority to 0 and spins until told to stop) and
    /// measures the cost of its turn: the turns it takes while the benchmark sleeps.
    pub fn start() -> Result<Spinner, String> {
        let page = allocate(1)?;
        sys::vm_inherit(page, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
        // SAFETY: the page just allocated read-write (these writes also make it resident
        // before the fork shares it).
        unsafe {
            core::ptr::write_volatile(word(page, STOP), 0);
            core::ptr::write_volatile(word(page, TURNS), 0);
        }
        let task = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
            Forked::Child => {
                let _ = sys::thread_set_priority(0);
                // SAFETY: the shared page, mapped read-write in the child too.
                while unsafe { core::ptr::read_volatile(word(page, STOP)) } == 0 {
                    // SAFETY: as above; only the spinner writes this word.
                    unsafe {
                        let turns = core::ptr::read_volatile(word(page, TURNS));
                        core::ptr::write_volatile(word(page, TURNS), turns + 1);
                    }
                    sys::thread_yield();
                }
                sys::task_exit(0)
            }
            Forked::Parent(task) => task,
        };
        let mut spinner = Spinner {
            task,
            page,
            cost: (0, 0),
        };
        let (turns, start) = (spinner.turns(), timestamp());
        sleep_ms(CALIBRATION_MS);
        let (turns_after, end) = (spinner.turns(), timestamp());
        if turns_after <= turns {
            let _ = spinner.stop();
            return Err("the spinner never ran while the benchmark slept".into());
        }
        spinner.cost = (end.wrapping_sub(start), turns_after - turns);
        Ok(spinner)
    }

    /// The turns the spinner has taken.
    pub fn turns(&self) -> u64 {
        // SAFETY: the shared page, alive until `stop`.
        unsafe { core::ptr::read_volatile(word(self.page, TURNS)) }
    }

    /// Instructions (timestamp ticks) of `turns` turns.
    pub fn instructions(&self, turns: u64) -> u64 {
        let (instructions, per) = self.cost;
        (u128::from(turns) * u128::from(instructions) / u128::from(per)) as u64
    }

    /// Instructions of one turn, rounded down.
    pub fn turn_cost(&self) -> u64 {
        self.instructions(1)
    }

    /// Tells the spinner to end and waits for it.
    pub fn stop(self) -> Result<(), String> {
        // SAFETY: the shared page.
        unsafe { core::ptr::write_volatile(word(self.page, STOP), 1) };
        let status = sys::task_wait(self.task).map_err(|e| format!("wait for the spinner: {e}"));
        let _ = sys::port_deallocate(self.task);
        deallocate(self.page, 1)?;
        match status? {
            0 => Ok(()),
            status => Err(format!("the spinner exited with {status}")),
        }
    }
}

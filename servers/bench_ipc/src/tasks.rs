//! What tasks cost: the kernel's own figures for a thread and a task, the time to create and
//! destroy one, and the kernel heap and frames that a thousand blocked tasks take.

use alloc::format;
use alloc::vec::Vec;

use libipc::abi::syscall::{
    HOST_BYTES_PER_TASK, HOST_BYTES_PER_THREAD, HOST_FREE_FRAMES, HOST_HEAP_BYTES, HOST_HEAP_PAGES,
    HOST_TASKS,
};
use libipc::ipc::{receive, MessageBuffer, ReceiveRight, SendRight, Task};
use libipc::sys;

use crate::{figure, role, Failure, PROGRAM, SETUP_TIMEOUT_MS};
use libipc::bench::measure::{remark, time_iterations};
use libipc::bench::stats::{rounded_ratio, Tenths};

const WARM_UP_TASKS: usize = 20;
const TIMED_TASKS: usize = 200;
/// How many blocked tasks the memory figures average over.
const BLOCKED_TASKS: usize = 1_000;
/// A blocked task's message saying it is about to wait.
pub const READY_ID: u32 = 3000;

fn host_info(selector: u64, what: &str) -> Result<u64, Failure> {
    sys::host_info(selector).map_err(|e| format!("host_info({what}): {e:?}"))
}

/// The kernel's own accounting of a blocked thread and of a task.
pub fn report_object_sizes() -> Result<(), Failure> {
    let thread = host_info(HOST_BYTES_PER_THREAD, "HOST_BYTES_PER_THREAD")?;
    let task = host_info(HOST_BYTES_PER_TASK, "HOST_BYTES_PER_TASK")?;
    figure!("kern.bytes_per_blocked_thread", thread, "bytes");
    figure!("kern.bytes_per_task", task, "bytes");
    Ok(())
}

/// Spawns a task that exits at once and waits for it, over and over; prints the median.
pub fn bench_create_destroy() -> Result<(), Failure> {
    let summary = time_iterations(WARM_UP_TASKS, TIMED_TASKS, || {
        let task = Task::spawn(PROGRAM, None, role::EXIT).map_err(|e| format!("spawn: {e:?}"))?;
        let status = task.wait().map_err(|e| format!("wait: {e:?}"))?;
        drop(task);
        match status {
            0 => Ok(()),
            status => Err(format!("the task exited with status {status}")),
        }
    })?;
    remark("bench_ipc", "task_create_destroy", TIMED_TASKS, &summary);
    figure!("ipc.task_create_destroy", summary.median, "instructions");
    Ok(())
}

/// The kernel's memory at one moment.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    heap_bytes: u64,
    /// Pages the kernel heap holds, in use or cached for reuse.
    heap_pages: u64,
    free_frames: u64,
    tasks: u64,
}

impl Snapshot {
    fn take() -> Result<Snapshot, Failure> {
        Ok(Snapshot {
            heap_bytes: host_info(HOST_HEAP_BYTES, "HOST_HEAP_BYTES")?,
            heap_pages: host_info(HOST_HEAP_PAGES, "HOST_HEAP_PAGES")?,
            free_frames: host_info(HOST_FREE_FRAMES, "HOST_FREE_FRAMES")?,
            tasks: host_info(HOST_TASKS, "HOST_TASKS")?,
        })
    }
}

/// One round: the kernel before, with [`BLOCKED_TASKS`] blocked tasks, and after they were
/// all terminated.
struct Round {
    before: Snapshot,
    blocked: Snapshot,
    /// After the blocked tasks had not run for [`IDLE_MS`]: the kernel has freed their page
    /// tables (`kern::pmap_collect`).
    idle: Snapshot,
    after: Snapshot,
}

/// How long the blocked tasks are left before the idle snapshot: two of the kernel's
/// one-second passes over idle tasks' tables, and a half.
const IDLE_MS: u64 = 2_500;

/// Starts [`BLOCKED_TASKS`] tasks that block in a receive, compares the kernel heap and the
/// free frames before and after, then terminates them all and checks the frames came back.
pub fn bench_blocked_tasks() -> Result<(), Failure> {
    let ready = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let give = ready
        .make_send()
        .map_err(|e| format!("making a send right: {e:?}"))?;
    let mut buffer = MessageBuffer::new();
    let Round {
        before,
        blocked,
        idle,
        after,
    } = blocked_round(&ready, &give, &mut buffer)?;
    libipc::println!(
        "bench_ipc: {BLOCKED_TASKS} blocked tasks: kernel heap {} -> {} bytes, free frames {} \
         -> {}, tasks {} -> {}",
        before.heap_bytes,
        blocked.heap_bytes,
        before.free_frames,
        blocked.free_frames,
        before.tasks,
        blocked.tasks
    );
    let count = BLOCKED_TASKS as i64;
    let heap_bytes = blocked.heap_bytes as i64 - before.heap_bytes as i64;
    let frames = before.free_frames as i64 - blocked.free_frames as i64;
    figure!(
        "kern.heap_bytes_per_blocked_task",
        rounded_ratio(heap_bytes, count),
        "bytes"
    );
    figure!(
        "kern.frames_per_blocked_task",
        Tenths::of_ratio(frames, count),
        "frames"
    );
    // Once they have not run for a while their page tables are gone: what a blocked task
    // costs for good, every byte taken from free memory counted (its pages, its table root,
    // the kernel heap's pages for its records).
    let idle_frames = before.free_frames as i64 - idle.free_frames as i64;
    libipc::println!(
        "bench_ipc: the same tasks after {IDLE_MS} ms without running: free frames {} -> {}, \
         kernel heap {} bytes",
        before.free_frames,
        idle.free_frames,
        idle.heap_bytes
    );
    figure!(
        "kern.frames_per_idle_task",
        Tenths::of_ratio(idle_frames, count),
        "frames"
    );
    figure!(
        "scale.bytes_per_blocked_task",
        rounded_ratio(idle_frames * 4096, count),
        "bytes"
    );
    if after.free_frames >= before.free_frames {
        libipc::println!(
            "bench_ipc: after terminating the blocked tasks: free frames {} (before: {}), \
             kernel heap {} bytes (before: {})",
            after.free_frames,
            before.free_frames,
            after.heap_bytes,
            before.heap_bytes
        );
        return Ok(());
    }
    let lost = before.free_frames - after.free_frames;
    libipc::println!(
        "bench_ipc: WARNING: {lost} free frames did not come back after terminating the blocked \
         tasks (free frames {} before, {} after), {} of them pages the kernel heap now holds \
         (heap {} bytes in {} pages before, {} bytes in {} pages after)",
        before.free_frames,
        after.free_frames,
        after.heap_pages as i64 - before.heap_pages as i64,
        before.heap_bytes,
        before.heap_pages,
        after.heap_bytes,
        after.heap_pages
    );
    // A leak loses memory again in every round; what the kernel keeps for reuse (heap pages,
    // grown tables) does not. A second round tells them apart.
    let again = blocked_round(&ready, &give, &mut buffer)?.after;
    let frames_lost = after.free_frames as i64 - again.free_frames as i64;
    let heap_pages_grown = again.heap_pages as i64 - after.heap_pages as i64;
    let heap_bytes_grown = again.heap_bytes as i64 - after.heap_bytes as i64;
    let outside_heap = frames_lost - heap_pages_grown;
    let verdict = if outside_heap <= 0 && heap_bytes_grown <= 0 {
        "no leak: the first round's frames stay with the kernel for reuse"
    } else if outside_heap > 0 {
        "WARNING: frames outside the kernel heap were lost again in an identical round"
    } else {
        "WARNING: live kernel heap bytes grew again in an identical round, so something in the \
         kernel grows with the number of tasks ever created"
    };
    libipc::println!(
        "bench_ipc: a second round of {BLOCKED_TASKS} blocked tasks: free frames {} -> {} \
         ({frames_lost} lost, heap pages {heap_pages_grown:+}), live heap bytes {} -> {} \
         ({heap_bytes_grown:+}): {verdict}",
        after.free_frames,
        again.free_frames,
        after.heap_bytes,
        again.heap_bytes
    );
    Ok(())
}

/// Spawns the blocked tasks, takes the snapshots, terminates them all (also after a failure).
fn blocked_round(
    ready: &ReceiveRight,
    give: &SendRight,
    buffer: &mut MessageBuffer,
) -> Result<Round, Failure> {
    let mut tasks = Vec::new();
    tasks
        .try_reserve_exact(BLOCKED_TASKS)
        .map_err(|_| Failure::from("no heap for the task list"))?;
    let before = Snapshot::take()?;
    let blocked = spawn_blocked(ready, give, &mut tasks, buffer).and_then(|()| Snapshot::take());
    let idle = blocked.as_ref().ok().map(|_| {
        libipc::rt::sleep_ms(IDLE_MS);
        Snapshot::take()
    });
    let terminated = terminate_all(&tasks);
    drop(tasks);
    let after = Snapshot::take()?;
    let blocked = blocked?;
    let idle = idle.expect("taken when `blocked` was")?;
    terminated?;
    Ok(Round {
        before,
        blocked,
        idle,
        after,
    })
}

/// Spawns the blocked tasks one at a time, each announcing on `ready` (through its copy of
/// `give`) in the same system call that starts its endless receive, so that once its message
/// is here it is blocked.
fn spawn_blocked(
    ready: &ReceiveRight,
    give: &SendRight,
    tasks: &mut Vec<Task>,
    buffer: &mut MessageBuffer,
) -> Result<(), Failure> {
    for number in 1..=BLOCKED_TASKS {
        let task = Task::spawn(PROGRAM, Some(give), role::BLOCKED)
            .map_err(|e| format!("spawning blocked task {number} of {BLOCKED_TASKS}: {e:?}"))?;
        tasks.push(task);
        let message = receive(ready.name(), buffer, Some(SETUP_TIMEOUT_MS))
            .map_err(|e| format!("waiting for blocked task {number} to be ready: {e:?}"))?;
        if message.id() != READY_ID {
            return Err(format!(
                "blocked task {number} said id {} instead of {READY_ID}",
                message.id()
            ));
        }
    }
    Ok(())
}

/// Terminates every task, going on past failures.
fn terminate_all(tasks: &[Task]) -> Result<(), Failure> {
    let failed = tasks
        .iter()
        .filter(|task| task.terminate().is_err())
        .count();
    match failed {
        0 => Ok(()),
        failed => Err(format!(
            "{failed} of {} blocked tasks could not be terminated",
            tasks.len()
        )),
    }
}

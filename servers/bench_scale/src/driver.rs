//! The driver: costs at 10 tasks and at 10,000, then as many blocked tasks as the kernel
//! gives (or `args=N`), every frame checked back at the end.

use alloc::format;
use alloc::vec::Vec;

use libipc::abi::message::ReceivedRight;
use libipc::abi::syscall::{HOST_HEAP_BYTES, HOST_TASKS, HOST_THREADS};
use libipc::bench::measure::remark;
use libipc::bench::stats::Summary;
use libipc::bench::workloads::{self, NullRpcServer};
use libipc::ipc::{receive, send, MessageBuffer, OutMessage, ReceiveRight, SendRight, Task};
use libipc::sys::{self, MemoryByKind};

use crate::group::{REPORT_ID, STOP_ID};
use crate::{role, Failure, GROUP_SIZE, PROGRAM};

/// The task count of the quiet measurement (issue 18: costs "at 10 tasks").
const QUIET_TASKS: u64 = 10;
/// The task count of the loaded measurement.
const LOADED_TASKS: u64 = 10_000;
/// How long the blocked tasks are left before the loaded measurement: two of the kernel's
/// one-second passes over idle tasks' tables, and a half, so that they cost what blocked
/// tasks cost for good.
const IDLE_MS: u64 = 2_500;
/// How long a group may take to start its blocked tasks (10,000 of them, with the pageout
/// daemon busy once memory runs short).
const GROUP_TIMEOUT_MS: u64 = 600_000;
/// The most groups the driver starts when it goes until the kernel refuses: a million
/// blocked tasks, far past what any memory this kernel boots in holds.
const MAX_GROUPS: usize = 100;
/// The later rounds' size: a leak shows as memory lost again in an identical round.
const SECOND_ROUND_TASKS: u64 = 10_000;
/// Pages the driver's own memory may have grown by between the first snapshot and the end
/// of the first round (its heap: the group list, the lines it printed).
const DRIVER_GROWTH_PAGES: u64 = 4;

/// Blocked threads in the one task of many threads, unless `args=` says otherwise.
const THREADS: u64 = 1_000_000;
/// The later rounds of threads' size.
const LATER_THREADS: u64 = 100_000;

const WARM_UP_CALLS: usize = 1_000;
const TIMED_CALLS: usize = 10_000;
const WARM_UP_FORKS: usize = 20;
const TIMED_FORKS: usize = 200;
const WARM_UP_FLUSHES: usize = 100;
const TIMED_FLUSHES: usize = 1_000;

/// Prints one figure in the form the host tool collects.
macro_rules! figure {
    ($metric:expr, $value:expr, $unit:expr) => {
        libipc::println!("bench {} {} {}", $metric, $value, $unit)
    };
}

/// The driver's main: 0 when every figure was measured and every check passed.
/// Not inlined into `main`: its frame would be every role's, and a blocked task would
/// touch its pages.
#[inline(never)]
pub fn run() -> i32 {
    let mut text = [0u8; 256];
    let targets = match parse_targets(libipc::rt::first_task_args(&mut text)) {
        Ok(targets) => targets,
        Err(why) => {
            libipc::println!(
                "bench_scale: bad arguments: {why}; expected args=N or args=N,T (stop at N \
                 blocked tasks instead of going until the kernel refuses one; start T blocked \
                 threads in one task instead of {THREADS})"
            );
            return 2;
        }
    };
    match measure(targets.tasks).and_then(|()| measure_threads(targets.threads)) {
        Ok(()) => {
            libipc::println!("bench_scale: all benchmarks done");
            0
        }
        Err(why) => {
            libipc::println!("bench_scale: FAILED: {why}");
            1
        }
    }
}

/// What `args=` asks for: the blocked tasks to stop at (none: until the kernel refuses one),
/// and the blocked threads of the one task of many threads.
struct Targets {
    tasks: Option<u64>,
    threads: u64,
}

/// `args=N` or `args=N,T`: stop at N blocked tasks (at least [`LOADED_TASKS`]) and start T
/// blocked threads (default [`THREADS`]); none: tasks until refused, and [`THREADS`].
fn parse_targets<'a>(mut args: impl Iterator<Item = &'a str>) -> Result<Targets, Failure> {
    let number = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| format!("{text:?} is not a number"))
    };
    let tasks = match args.next() {
        None => None,
        Some(text) => match number(text)? {
            n if n >= LOADED_TASKS => Some(n),
            n => {
                return Err(format!(
                    "{n} is below {LOADED_TASKS}, where the costs are measured"
                ))
            }
        },
    };
    let threads = match args.next() {
        None => THREADS,
        Some(text) => number(text)?,
    };
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    Ok(Targets { tasks, threads })
}

/// What the null RPC, fork-exit-wait, a context switch's round trip, a page's move and a
/// pager's flush of a mapped page cost, and with how many tasks in the system.
struct Costs {
    rpc: Summary,
    fork: Summary,
    switch: Summary,
    page_move: Summary,
    flush: Summary,
    tasks: u64,
}

fn host_info(selector: u64, what: &str) -> Result<u64, Failure> {
    sys::host_info(selector).map_err(|e| format!("host_info({what}): {e:?}"))
}

fn costs(what: &str) -> Result<Costs, Failure> {
    let server = NullRpcServer::start(PROGRAM, role::SERVER)?;
    let tasks = host_info(HOST_TASKS, "HOST_TASKS");
    let rpc = server.time_calls(WARM_UP_CALLS, TIMED_CALLS);
    let stopped = server.stop();
    let (rpc, tasks) = (rpc?, tasks?);
    stopped?;
    remark("bench_scale", &format!("rpc_{what}"), TIMED_CALLS, &rpc);
    let fork = workloads::fork_exit_wait(WARM_UP_FORKS, TIMED_FORKS)?;
    remark(
        "bench_scale",
        &format!("fork_exit_wait_{what}"),
        TIMED_FORKS,
        &fork,
    );
    let switch = crate::flat::switch_round_trip(WARM_UP_CALLS, TIMED_CALLS)?;
    remark(
        "bench_scale",
        &format!("switch_round_trip_{what}"),
        TIMED_CALLS,
        &switch,
    );
    let page_move = crate::flat::page_move_round_trip(WARM_UP_CALLS, TIMED_CALLS)?;
    remark(
        "bench_scale",
        &format!("page_move_{what}"),
        TIMED_CALLS,
        &page_move,
    );
    let flush = crate::flat::flush_page(WARM_UP_FLUSHES, TIMED_FLUSHES)?;
    remark(
        "bench_scale",
        &format!("flush_page_{what}"),
        TIMED_FLUSHES,
        &flush,
    );
    Ok(Costs {
        rpc,
        fork,
        switch,
        page_move,
        flush,
        tasks,
    })
}

/// Prints `name` at 10 tasks, at 10,000, and its growth in percent.
fn figures_both_ways(name: &str, quiet: &Summary, loaded: &Summary) {
    figure!(
        format!("scale.{name}_at_10_tasks"),
        quiet.median,
        "instructions"
    );
    figure!(
        format!("scale.{name}_at_10000_tasks"),
        loaded.median,
        "instructions"
    );
    figure!(
        format!("scale.{name}_growth"),
        growth_percent(quiet.median, loaded.median),
        "percent"
    );
}

/// A started group: its task, its control port, and how many blocked tasks it holds.
struct Group {
    task: Task,
    control: SendRight,
    blocked: u64,
}

/// The groups the driver started; those still here when it is dropped are stopped.
struct Groups {
    list: Vec<Group>,
    /// Where groups report.
    reports: ReceiveRight,
    give: SendRight,
    buffer: MessageBuffer,
}

impl Groups {
    fn new() -> Result<Groups, Failure> {
        let reports = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
        let give = reports
            .make_send()
            .map_err(|e| format!("making a send right: {e:?}"))?;
        Ok(Groups {
            list: Vec::new(),
            reports,
            give,
            buffer: MessageBuffer::new(),
        })
    }

    /// The blocked tasks of every group.
    fn blocked(&self) -> u64 {
        self.list.iter().map(|g| g.blocked).sum()
    }

    /// Starts a group of `wanted` blocked tasks; how many it got (fewer when the kernel
    /// refused one).
    fn start(&mut self, wanted: u64) -> Result<u64, Failure> {
        self.start_role(role::GROUP, wanted)
    }

    /// Starts a copy of the program in `role` (a group, or the task of many threads) with
    /// `wanted` as its parameter, and takes its report: how many it got.
    fn start_role(&mut self, role: u64, wanted: u64) -> Result<u64, Failure> {
        let task = Task::spawn(PROGRAM, Some(&self.give), role::with(role, wanted))
            .map_err(|e| format!("spawning a group: {e:?}"))?;
        // The task of many threads is charged a record per thread: its quota is the
        // machine's (the kernel's budget still holds).
        if role == role::THREADS {
            task.set_quota(u64::MAX / 2)
                .map_err(|e| format!("setting a quota: {e:?}"))?;
        }
        let report = receive(
            self.reports.name(),
            &mut self.buffer,
            Some(GROUP_TIMEOUT_MS),
        );
        let parsed = match report {
            Ok(m) if m.id() == REPORT_ID && m.body.len() == 8 => m
                .rights()
                .find_map(|(name, kind)| (kind == Some(ReceivedRight::Send)).then_some(name))
                .map(|control| {
                    let count = u64::from_le_bytes(m.body.try_into().expect("8 bytes"));
                    (SendRight::from_raw(control), count)
                })
                .ok_or_else(|| Failure::from("a group's report carried no send right")),
            Ok(m) => Err(format!(
                "a group reported with id {} and {} body bytes",
                m.id(),
                m.body.len()
            )),
            Err(e) => Err(format!("waiting for a group's report: {e:?}")),
        };
        match parsed {
            Ok((control, blocked)) => {
                self.list.push(Group {
                    task,
                    control,
                    blocked,
                });
                Ok(blocked)
            }
            Err(why) => {
                let _ = task.terminate();
                Err(why)
            }
        }
    }

    /// Starts groups until there are `target` blocked tasks or a group comes back short;
    /// whether the target was reached.
    fn grow_to(&mut self, target: u64) -> Result<bool, Failure> {
        while self.blocked() < target {
            if self.list.len() >= MAX_GROUPS {
                return Err(format!(
                    "{} blocked tasks in {MAX_GROUPS} groups and the kernel still takes more",
                    self.blocked()
                ));
            }
            let wanted = (target - self.blocked()).min(GROUP_SIZE);
            if self.start(wanted)? < wanted {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Tells every group to stop and waits for each; the groups that failed.
    fn stop_all(&mut self) -> Result<(), Failure> {
        let mut failed = 0;
        for group in self.list.drain(..) {
            let stop = OutMessage::new(STOP_ID, group.control.name());
            let stopped = send(&stop, &mut self.buffer, Some(GROUP_TIMEOUT_MS)).is_ok()
                && group.task.wait() == Ok(0);
            if !stopped {
                let _ = group.task.terminate();
                failed += 1;
            }
        }
        match failed {
            0 => Ok(()),
            failed => Err(format!("{failed} groups did not stop cleanly")),
        }
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}

/// The kernel's memory at one moment.
#[derive(Clone, Copy)]
struct Snapshot {
    memory: MemoryByKind,
    heap_bytes: u64,
    tasks: u64,
}

impl Snapshot {
    fn take() -> Result<Snapshot, Failure> {
        Ok(Snapshot {
            memory: sys::memory_by_kind().map_err(|e| format!("memory by kind: {e:?}"))?,
            heap_bytes: host_info(HOST_HEAP_BYTES, "HOST_HEAP_BYTES")?,
            tasks: host_info(HOST_TASKS, "HOST_TASKS")?,
        })
    }

    fn describe(&self) -> alloc::string::String {
        let kinds: Vec<_> = self
            .memory
            .kinds()
            .iter()
            .map(|(kind, pages)| format!("{kind} {pages}"))
            .collect();
        format!(
            "{} tasks; frames: {}; kernel heap {} live bytes",
            self.tasks,
            kinds.join(", "),
            self.heap_bytes
        )
    }
}

/// Percent by which `after` exceeds `before` (negative when it is below).
fn growth_percent(before: u64, after: u64) -> i64 {
    (after as i64 - before as i64) * 100 / (before.max(1) as i64)
}

fn measure(target: Option<u64>) -> Result<(), Failure> {
    // The quiet system brought to 10 tasks (the server counts): blocked ones make up the rest.
    let mut quiet_group = Groups::new()?;
    let now = host_info(HOST_TASKS, "HOST_TASKS")?;
    // The group itself and the server are two more.
    let fill = QUIET_TASKS.saturating_sub(now + 2);
    if fill > 0 {
        quiet_group.grow_to(fill)?;
    }
    let quiet = costs("at_10_tasks")?;
    quiet_group.stop_all()?;
    drop(quiet_group);

    let before = Snapshot::take()?;
    libipc::println!("bench_scale: before: {}", before.describe());
    let mut groups = Groups::new()?;
    if !groups.grow_to(LOADED_TASKS)? {
        return Err(format!(
            "the kernel refused a blocked task at {} of {LOADED_TASKS}",
            groups.blocked()
        ));
    }
    libipc::rt::sleep_ms(IDLE_MS);
    let loaded = costs("at_10000_tasks")?;
    libipc::println!(
        "bench_scale: costs with {} tasks, then with {} tasks",
        quiet.tasks,
        loaded.tasks
    );
    figures_both_ways("rpc", &quiet.rpc, &loaded.rpc);
    figures_both_ways("fork_exit_wait", &quiet.fork, &loaded.fork);
    figures_both_ways("switch_round_trip", &quiet.switch, &loaded.switch);
    figures_both_ways("page_move", &quiet.page_move, &loaded.page_move);
    figures_both_ways("flush_page", &quiet.flush, &loaded.flush);

    let reached = groups.grow_to(target.unwrap_or(u64::MAX))?;
    let blocked = groups.blocked();
    libipc::rt::sleep_ms(IDLE_MS);
    let full = Snapshot::take()?;
    libipc::println!(
        "bench_scale: {blocked} blocked tasks in {} groups ({}): {}",
        groups.list.len(),
        if reached {
            "as many as asked for"
        } else {
            "the kernel refused the next one"
        },
        full.describe()
    );
    // Counted by the kernel: the driver, the groups and every blocked task.
    let expected = before.tasks + groups.list.len() as u64 + blocked;
    if full.tasks != expected {
        return Err(format!(
            "the kernel counts {} tasks, not the {expected} started",
            full.tasks
        ));
    }
    match (target, reached) {
        (Some(target), false) => {
            return Err(format!(
                "the kernel refused a blocked task at {blocked} of {target}"
            ))
        }
        (None, _) => {
            let mib = (full.memory.total * 4096) >> 20;
            // The figure is named for the memory the suite boots in (1 GiB: the kernel
            // manages a little less than the machine has).
            if (896..=1024).contains(&mib) {
                figure!("scale.max_blocked_tasks_1gib", blocked, "tasks");
            } else {
                figure!("scale.max_blocked_tasks", blocked, "tasks");
                libipc::println!("bench_scale: (in {mib} MiB of managed memory)");
            }
        }
        (Some(_), true) => {}
    }
    figure!(
        "scale.bytes_per_task_at_scale",
        (before.memory.free - full.memory.free) * 4096 / blocked.max(1),
        "bytes"
    );
    groups.stop_all()?;
    drop(groups);
    // The kernel gives back the empty ends of its object tables once a second.
    libipc::rt::sleep_ms(IDLE_MS);
    let after = Snapshot::take()?;
    libipc::println!(
        "bench_scale: after terminating them all: {}",
        after.describe()
    );
    check_returned(&before, &after)
}

/// Every frame back: the tasks' own pages and page tables to what they were, and what the
/// kernel kept for reuse (heap pages, grown tables) not lost again in later rounds: a round
/// of [`SECOND_ROUND_TASKS`] to settle what the driver itself grows (its heap, its
/// name table), then an identical one that must not lose a frame or a heap byte more.
fn check_returned(before: &Snapshot, after: &Snapshot) -> Result<(), Failure> {
    if after.tasks != before.tasks {
        return Err(format!(
            "{} tasks before, {} after terminating them all",
            before.tasks, after.tasks
        ));
    }
    check_pages_back(before, after, "the tasks")?;
    let again = rounds_lose_nothing(&format!("{SECOND_ROUND_TASKS} blocked tasks"), || {
        round_of(SECOND_ROUND_TASKS)
    })?;
    libipc::println!(
        "bench_scale: every frame returned: free frames {} before, {} after ({} kept by the \
         kernel for reuse: heap pages {:+}, other {:+}; the driver's own pages {:+})",
        before.memory.free,
        again.memory.free,
        before.memory.free as i64 - again.memory.free as i64,
        again.memory.kernel_heap as i64 - before.memory.kernel_heap as i64,
        again.memory.other as i64 - before.memory.other as i64,
        again.memory.object_pages as i64 - before.memory.object_pages as i64
    );
    Ok(())
}

/// The pages and page tables of what was started and ended back to what they were (the
/// driver's own memory may have grown a little meanwhile).
fn check_pages_back(before: &Snapshot, after: &Snapshot, what: &str) -> Result<(), Failure> {
    if after.memory.object_pages > before.memory.object_pages + DRIVER_GROWTH_PAGES
        || after.memory.task_page_tables > before.memory.task_page_tables
    {
        return Err(format!(
            "memory not returned after {what}: object pages {} -> {}, task page tables {} -> \
             {}",
            before.memory.object_pages,
            after.memory.object_pages,
            before.memory.task_page_tables,
            after.memory.task_page_tables
        ));
    }
    Ok(())
}

/// Two more rounds of `what` (`round` starts and ends them): the first settles what the
/// kernel and the driver keep for reuse, the second, identical, must lose no frame and no
/// heap byte more. Each snapshot is taken once the kernel's once-a-second pass has trimmed
/// its tables, so both see them the same. The snapshot after the second.
fn rounds_lose_nothing(
    what: &str,
    round: impl Fn() -> Result<(), Failure>,
) -> Result<Snapshot, Failure> {
    let round_then_snapshot = |which: &str| -> Result<Snapshot, Failure> {
        round().map_err(|why| format!("{which} round of {what}: {why}"))?;
        libipc::rt::sleep_ms(IDLE_MS);
        let taken = Snapshot::take()?;
        libipc::println!(
            "bench_scale: after {which} round of {what}: {}",
            taken.describe()
        );
        Ok(taken)
    };
    let settled = round_then_snapshot("a second")?;
    let again = round_then_snapshot("a third")?;
    if again.memory.free < settled.memory.free || again.heap_bytes > settled.heap_bytes {
        return Err(format!(
            "an identical round of {what} lost memory again: free frames {} -> {}, kernel \
             heap live bytes {} -> {}",
            settled.memory.free, again.memory.free, settled.heap_bytes, again.heap_bytes
        ));
    }
    Ok(again)
}

/// Starts `count` blocked tasks and stops them all.
fn round_of(count: u64) -> Result<(), Failure> {
    let mut groups = Groups::new()?;
    if !groups.grow_to(count)? {
        return Err(format!(
            "the kernel refused a blocked task at {} of {count}",
            groups.blocked()
        ));
    }
    groups.stop_all()
}

/// The one task of many threads: `wanted` blocked threads started, counted by the kernel,
/// woken and exited, their memory back; then two rounds of [`LATER_THREADS`] that must
/// lose nothing.
fn measure_threads(wanted: u64) -> Result<(), Failure> {
    let before = Snapshot::take()?;
    let threads_before = host_info(HOST_THREADS, "HOST_THREADS")?;
    let mut many = Groups::new()?;
    let started = many.start_role(role::THREADS, wanted)?;
    let full = Snapshot::take()?;
    let threads_now = host_info(HOST_THREADS, "HOST_THREADS")?;
    libipc::println!(
        "bench_scale: {started} blocked threads in one task ({}): {}; {threads_now} threads",
        if started == wanted {
            "as many as asked for"
        } else {
            "the kernel refused the next one"
        },
        full.describe()
    );
    // The task of many threads has its main thread besides.
    if threads_now != threads_before + started + 1 {
        return Err(format!(
            "the kernel counts {threads_now} threads, not the {} started",
            threads_before + started + 1
        ));
    }
    if started < wanted {
        return Err(format!(
            "the kernel refused a thread at {started} of {wanted}"
        ));
    }
    figure!("scale.blocked_threads_in_one_task", started, "threads");
    figure!(
        "scale.bytes_per_blocked_thread_at_scale",
        (before.memory.free - full.memory.free) * 4096 / started.max(1),
        "bytes"
    );
    many.stop_all()?;
    drop(many);
    libipc::rt::sleep_ms(IDLE_MS);
    let after = Snapshot::take()?;
    libipc::println!(
        "bench_scale: after the threads exited: {}",
        after.describe()
    );
    check_pages_back(&before, &after, "the threads")?;
    let again = rounds_lose_nothing(&format!("{LATER_THREADS} blocked threads"), threads_round)?;
    libipc::println!(
        "bench_scale: every thread's memory returned: free frames {} before, {} after",
        before.memory.free,
        again.memory.free
    );
    Ok(())
}

/// Starts [`LATER_THREADS`] blocked threads in one task and ends them.
fn threads_round() -> Result<(), Failure> {
    let mut many = Groups::new()?;
    let started = many.start_role(role::THREADS, LATER_THREADS)?;
    if started < LATER_THREADS {
        return Err(format!(
            "the kernel refused a thread at {started} of {LATER_THREADS}"
        ));
    }
    many.stop_all()
}

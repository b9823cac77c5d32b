//! The cases (see the crate's doc) and the child they start.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use libipc::abi::swapper::{SWAP_IN, SWAP_OUT};
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;
use libipc::ipc::Task;
use libipc::process::{self, Fork};
use libipc::rt::sleep_ms;
use libipc::sys;

pub const ALL: &[(&str, libipc::rt::selftest::Case)] = &[
    ("every_cpu_runs_threads", every_cpu_runs_threads),
    (
        "a_childs_memory_stays_put_while_the_parent_writes",
        a_childs_memory_stays_put_while_the_parent_writes,
    ),
    (
        "a_thread_running_elsewhere_is_stopped",
        a_thread_running_elsewhere_is_stopped,
    ),
    (
        "a_bound_thread_runs_only_on_its_cpu",
        a_bound_thread_runs_only_on_its_cpu,
    ),
];

/// The processors the test was told to expect (`init_arg`).
pub static EXPECTED_CPUS: AtomicU64 = AtomicU64::new(0);

/// The start argument of a child that makes system calls until it is ended ([`caller`]),
/// plus the ticks it runs for (below 0x10000; 0: until it is ended).
pub const CALLER: u64 = 0x5a11_0000;

/// The second start argument of a null-RPC server
/// (`libipc::bench::workloads::serve`; the first is where it announces its port).
pub const SERVER: u64 = 0x5e4e_0001;

fn host(selector: u64) -> u64 {
    sys::host_info(selector).unwrap_or(u64::MAX)
}

fn err<E: core::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

/// Bytes of a test thread's stack.
const STACK_BYTES: u64 = 64 * 1024;

/// Starts a thread of this task at `entry` with `argument`, on a fresh stack.
fn start_thread(entry: extern "C" fn(u64) -> !, argument: u64) -> Result<(), String> {
    let stack = sys::vm_allocate(0, STACK_BYTES, VM_ANYWHERE).map_err(err("thread stack"))?;
    let top = stack + STACK_BYTES - 8;
    // SAFETY: the thread runs `entry` on a stack no one else uses and shares only atomics
    // and the page it is given with this one.
    unsafe { sys::thread_create(entry as *const () as usize as u64, top, argument) }
        .map(drop)
        .map_err(err("thread_create"))
}

/// Threads of the current case stop when this is set; how many run.
static STOP: AtomicBool = AtomicBool::new(false);
static RUNNING: AtomicU64 = AtomicU64::new(0);
/// The CPUs the current case's threads were seen on, a bit each.
static SEEN: AtomicU64 = AtomicU64::new(0);

fn note_cpu() {
    let cpu = host(HOST_CPU);
    if cpu < 64 {
        SEEN.fetch_or(1 << cpu, Ordering::Relaxed);
    }
}

extern "C" fn spinner(_: u64) -> ! {
    RUNNING.fetch_add(1, Ordering::AcqRel);
    while !STOP.load(Ordering::Acquire) {
        note_cpu();
        for _ in 0..10_000 {
            core::hint::spin_loop();
        }
    }
    RUNNING.fetch_sub(1, Ordering::AcqRel);
    sys::thread_exit(0)
}

/// Waits (up to `ms`) until `done`.
fn wait_until(ms: u64, done: impl Fn() -> bool) -> bool {
    for _ in 0..ms / 5 {
        if done() {
            return true;
        }
        sleep_ms(5);
    }
    done()
}

/// Stops the case's threads and waits for them to end.
fn stop_threads() -> Result<(), String> {
    STOP.store(true, Ordering::Release);
    if !wait_until(5_000, || RUNNING.load(Ordering::Acquire) == 0) {
        return Err(format!(
            "{} threads still run",
            RUNNING.load(Ordering::Acquire)
        ));
    }
    STOP.store(false, Ordering::Release);
    Ok(())
}

fn every_cpu_runs_threads() -> Result<(), String> {
    let expected = EXPECTED_CPUS.load(Ordering::Relaxed).max(1);
    let cpus = host(HOST_CPUS);
    if cpus != expected {
        return Err(format!("{cpus} CPUs online, {expected} expected"));
    }
    SEEN.store(0, Ordering::Relaxed);
    for _ in 1..cpus {
        start_thread(spinner, 0)?;
    }
    // This thread spins too, so that every CPU has a thread to run.
    let all = if cpus >= 64 {
        u64::MAX
    } else {
        (1 << cpus) - 1
    };
    let start = host(HOST_TICKS);
    while SEEN.load(Ordering::Relaxed) != all && host(HOST_TICKS) < start + 500 {
        note_cpu();
        for _ in 0..10_000 {
            core::hint::spin_loop();
        }
    }
    let seen = SEEN.load(Ordering::Relaxed);
    stop_threads()?;
    if seen != all {
        return Err(format!("threads ran on CPUs {seen:#b} of {all:#b} in 5 s"));
    }
    Ok(())
}

/// The writer of the fork case: increments the first word of the page at `page` until
/// [`STOP`], noting where it runs.
extern "C" fn writer(page: u64) -> ! {
    RUNNING.fetch_add(1, Ordering::AcqRel);
    let word = page as *mut u64;
    let mut n = 0u64;
    while !STOP.load(Ordering::Acquire) {
        n += 1;
        // SAFETY: `page` is a page of this task's, allocated for this case and freed only
        // after this thread ends; only this thread writes it.
        unsafe { word.write_volatile(n) };
        if n.is_multiple_of(100_000) {
            note_cpu();
        }
    }
    RUNNING.fetch_sub(1, Ordering::AcqRel);
    sys::thread_exit(0)
}

fn a_childs_memory_stays_put_while_the_parent_writes() -> Result<(), String> {
    let page = sys::vm_allocate(0, 4096, VM_ANYWHERE).map_err(err("page"))?;
    let word = page as *const u64;
    SEEN.store(0, Ordering::Relaxed);
    start_thread(writer, page)?;
    // SAFETY: the page is this task's; the writer only stores whole words to it.
    let read = || unsafe { word.read_volatile() };
    if !wait_until(5_000, || read() > 1_000_000) {
        return Err(format!("the writer wrote {} times in 5 s", read()));
    }
    let mut changed = 0;
    for _ in 0..20 {
        match process::fork().map_err(err("fork"))? {
            Fork::Child => {
                // The writer did not come along (fork copies the calling thread only): the
                // page is the parent's as it was at the fork, and must stay so.
                let first = read();
                for _ in 0..2_000_000 {
                    core::hint::spin_loop();
                }
                let second = read();
                sleep_ms(20);
                let third = read();
                process::exit(if first == second && second == third {
                    0
                } else {
                    1
                });
            }
            Fork::Parent(child) => {
                if child.wait().map_err(err("wait"))? != 0 {
                    changed += 1;
                }
            }
        }
    }
    let seen = SEEN.load(Ordering::Relaxed);
    stop_threads()?;
    // SAFETY: the page was allocated above and nothing refers to it now the writer is gone.
    let _ = unsafe { sys::vm_deallocate(page, 4096) };
    if changed != 0 {
        return Err(format!(
            "{changed} of 20 children saw their copy change after the fork (writer on CPUs \
             {seen:#b})"
        ));
    }
    Ok(())
}

/// A child that makes system calls whose results it knows, for `ticks` ticks (0: until it
/// is ended); exits 1 at the first wrong result, else 0.
pub fn caller(ticks: u64) -> i32 {
    let cpus = host(HOST_CPUS);
    let start = host(HOST_TICKS);
    let mut last = start;
    loop {
        if sys::host_info(HOST_CPUS) != Ok(cpus) {
            return 1;
        }
        let now = match sys::host_info(HOST_TICKS) {
            Ok(now) if now >= last => now,
            _ => return 2,
        };
        last = now;
        if ticks != 0 && now >= start + ticks {
            return 0;
        }
    }
}

fn a_thread_running_elsewhere_is_stopped() -> Result<(), String> {
    // Terminated while it calls, perhaps on another CPU.
    for i in 0..30 {
        let child = Task::spawn("smp_test", None, CALLER).map_err(err("spawn"))?;
        sleep_ms(5 + i % 7);
        child.terminate().map_err(err("terminate"))?;
        let status = child.wait().map_err(err("wait"))?;
        if status != u64::MAX {
            return Err(format!("a terminated caller exited with status {status}"));
        }
    }
    // Swapped out and in while it calls: every call it makes gives the right result.
    let child = Task::spawn("smp_test", None, CALLER + 300).map_err(err("spawn"))?;
    let mut swaps = 0;
    for i in 0..40 {
        sleep_ms(3 + i % 5);
        if sys::task_swap(child.port().name(), SWAP_OUT).is_ok() {
            swaps += 1;
            sleep_ms(2);
            sys::task_swap(child.port().name(), SWAP_IN).map_err(err("swap in"))?;
        }
    }
    let status = child.wait().map_err(err("wait"))?;
    if status != 0 {
        return Err(format!(
            "a caller swapped out and in {swaps} times got a wrong result (status {status})"
        ));
    }
    if swaps == 0 {
        return Err(String::from("the caller was never swapped out"));
    }
    Ok(())
}

/// A thread bound to each CPU in turn runs there alone while every CPU is busy with
/// unbound spinners (which load balancing moves around), through yields, sleeps and RPCs
/// to a server task (IPC to a task with bound threads takes the general path, which queues
/// the woken thread on its own CPU); a CPU that is not online is refused, and unbinding
/// works.
fn a_bound_thread_runs_only_on_its_cpu() -> Result<(), String> {
    use libipc::bench::workloads::NullRpcServer;
    let cpus = host(HOST_CPUS);
    match sys::thread_bind(Some(cpus)) {
        Err(KernReturn::InvalidArgument) => {}
        other => return Err(format!("binding to CPU {cpus} of {cpus}: {other:?}")),
    }
    let server = NullRpcServer::start("smp_test", SERVER)?;
    SEEN.store(0, Ordering::Relaxed);
    let started = (0..cpus).try_for_each(|_| start_thread(spinner, 0));
    let bound = started.and_then(|()| {
        for cpu in (0..cpus).rev() {
            let now = sys::thread_bind(Some(cpu)).map_err(err("bind"))?;
            if now != cpu {
                return Err(format!(
                    "bound to CPU {cpu}, the call returned on CPU {now}"
                ));
            }
            for step in 0..60 {
                let seen = host(HOST_CPU);
                if seen != cpu {
                    return Err(format!(
                        "a thread bound to CPU {cpu} ran on CPU {seen} (step {step})"
                    ));
                }
                match step % 3 {
                    0 => sys::thread_yield(),
                    1 => sleep_ms(1),
                    _ => server.time_calls(0, 1).map(drop)?,
                }
            }
        }
        sys::thread_bind(None).map_err(err("unbind")).map(drop)
    });
    let stopped = stop_threads();
    let server_stopped = server.stop();
    bound?;
    stopped?;
    server_stopped?;
    // The spinners were moved and ran everywhere meanwhile (the binding held them nowhere).
    let all = if cpus >= 64 {
        u64::MAX
    } else {
        (1 << cpus) - 1
    };
    if SEEN.load(Ordering::Relaxed) != all {
        return Err(format!(
            "the unbound threads ran on CPUs {:#b} only",
            SEEN.load(Ordering::Relaxed)
        ));
    }
    Ok(())
}

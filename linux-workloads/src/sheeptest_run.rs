//! sheeptest on Linux, as `servers/sheeptest` runs it on the microkernel: P forked workers
//! each map S bytes of fresh anonymous memory, fill it with `sheeptest::fill`'s verifiable
//! words, wait at a barrier in a shared page until all have, scan it R times forward and
//! backward with `sheeptest::check`, and exit; the parent reports the time from the first
//! fork to the last exit, the disk's requests and the swapping in the same figures
//! (`bench sheeptest.<metric>.<PxS> ...`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use linux_workloads::stats::vmstat;
use sheeptest::{check, fill, Direction, Params, WORDS_PER_PAGE};

use crate::system::{self, Machine};

/// How long a worker waits at the barrier without anyone arriving before it goes on.
const BARRIER_PATIENCE: Duration = Duration::from_secs(60);
/// Worker exit statuses (as the microkernel's program).
const WRONG_WORD: i32 = 1;
const NO_MEMORY: i32 = 3;
const NO_CGROUP: i32 = 4;

/// The time-stamp counter: guest instructions under QEMU's `-icount shift=0`.
fn timestamp() -> u64 {
    // SAFETY: rdtsc only reads the counter (Linux leaves it readable in user mode).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The barrier's two counters in a page shared by the parent and its workers.
#[derive(Clone, Copy)]
struct Barrier {
    arrived: &'static AtomicU32,
    abandoned: &'static AtomicU32,
}

impl Barrier {
    fn new() -> Result<Barrier, String> {
        let page = system::map_anonymous(sheeptest::PAGE as usize, system::Sharing::Shared)
            .map_err(|e| format!("the workers' shared page: {e}"))?;
        // The page is never unmapped, and parent and workers touch it only through these
        // two atomics.
        // SAFETY: the page is zero-filled, writable and aligned: a valid atomic.
        let arrived = unsafe { &*(page as *const AtomicU32) };
        // SAFETY: as above, the page's second word.
        let abandoned = unsafe { &*((page as usize + 4) as *const AtomicU32) };
        Ok(Barrier { arrived, abandoned })
    }

    /// Counts this worker in and waits for the others, or until the parent gives up, or
    /// nobody has arrived for [`BARRIER_PATIENCE`].
    fn arrive_and_wait(self, worker: u32, workers: u32) {
        let mut seen = self.arrived.fetch_add(1, Ordering::AcqRel) + 1;
        let mut since = Instant::now();
        while seen < workers && self.abandoned.load(Ordering::Acquire) == 0 {
            std::thread::sleep(Duration::from_millis(5));
            let arrived = self.arrived.load(Ordering::Acquire);
            if arrived != seen {
                (seen, since) = (arrived, Instant::now());
            } else if since.elapsed() > BARRIER_PATIENCE {
                println!(
                    "sheeptest: worker {worker}: {seen} of {workers} workers at the barrier \
                     and none for 60 s; going on"
                );
                return;
            }
        }
    }
}

/// Runs sheeptest with `args` (`P,S,R`); the exit status.
pub fn run(machine: &Machine, args: &[&str]) -> i32 {
    let params = match sheeptest::parse(args.iter().copied()) {
        Ok(params) => params,
        Err(why) => {
            println!("sheeptest: bad arguments: {why}; expected args=P,S,R");
            return 2;
        }
    };
    let barrier = match Barrier::new() {
        Ok(barrier) => barrier,
        Err(why) => {
            println!("sheeptest: {why}");
            return 1;
        }
    };
    let vmstat_now = || std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
    let free_kib = system::free_kib();
    // What the workload may use: the cgroup's limit, or what is free.
    let workload_kib = machine
        .memory_limit
        .map_or(free_kib, |limit| free_kib.min(limit >> 10));
    println!(
        "sheeptest: {} processes x {} KiB ({} pages each, {} KiB in all), {} round(s) forward \
         and backward after all have filled theirs; Linux {}, swap on /dev/{}, memory limit \
         {}; {free_kib} KiB free at start",
        params.processes(),
        params.bytes() >> 10,
        params.pages(),
        (params.bytes() * u64::from(params.processes())) >> 10,
        params.rounds(),
        system::kernel_release(),
        system::DISK,
        machine
            .memory_limit
            .map_or("none".to_string(), |limit| format!(
                "{} KiB (memory cgroup)",
                limit >> 10
            )),
    );
    let (vm_before, disk_before) = (vmstat_now(), machine.disk());
    let (start, tsc_before, idle_before) = (Instant::now(), timestamp(), idle_jiffies());
    let mut workers = Vec::new();
    let mut failed = false;
    for worker in 0..params.processes() {
        // SAFETY: this process has one thread, so the child starts in a consistent state;
        // it only runs `work` and leaves with `_exit`.
        match unsafe { libc::fork() } {
            0 => {
                let status = work(worker, params, barrier, machine.cgroup.as_deref());
                // SAFETY: ends the child at once, without running the parent's exit handlers.
                unsafe { libc::_exit(status) }
            }
            -1 => {
                println!(
                    "sheeptest: fork of worker {worker}: {}",
                    std::io::Error::last_os_error()
                );
                barrier.abandoned.store(1, Ordering::Release);
                failed = true;
                break;
            }
            pid => workers.push((worker, pid)),
        }
    }
    for &(worker, pid) in &workers {
        let mut status = 0;
        // SAFETY: `pid` is a child of this process not yet waited for; `status` is valid.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        let clean = waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if !clean {
            if waited != pid {
                println!(
                    "sheeptest: waiting for worker {worker}: {}",
                    std::io::Error::last_os_error()
                );
            } else if libc::WIFSIGNALED(status) {
                println!(
                    "sheeptest: worker {worker} was killed by signal {} (the OOM killer?)",
                    libc::WTERMSIG(status)
                );
            } else {
                println!(
                    "sheeptest: worker {worker} exited with status {}",
                    libc::WEXITSTATUS(status)
                );
            }
            failed = true;
            barrier.abandoned.store(1, Ordering::Release);
        }
    }
    let (elapsed, cycles) = (start.elapsed(), timestamp() - tsc_before);
    // What the CPU executed: the counter's advance less the time it was idle (polling,
    // under `idle=poll`; /proc/stat counts it in jiffies of 10 ms), as our kernel reports
    // (its idle cycles are exact).
    let idle_jiffies = idle_jiffies().saturating_sub(idle_before);
    let idle = match elapsed.as_secs_f64() {
        secs if secs > 0.0 => ((idle_jiffies as f64 / 100.0) / secs * cycles as f64) as u64,
        _ => 0,
    };
    let busy = cycles.saturating_sub(idle);
    let (vm_after, disk_after) = (vmstat_now(), machine.disk());
    let delta = |key: &str| {
        vmstat(&vm_after, key)
            .unwrap_or(0)
            .wrapping_sub(vmstat(&vm_before, key).unwrap_or(0))
    };
    let disk = disk_after.since(&disk_before);
    let label = params.label();
    println!(
        "sheeptest: elapsed {:.2} s, {cycles} TSC cycles of which about {idle} idle \
         ({idle_jiffies} jiffies): {busy} executed (guest instructions under -icount)",
        elapsed.as_secs_f64()
    );
    println!(
        "sheeptest: faults {} (major {}), swapped in {} pages, out {} pages; huge pages swapped \
         out whole {}, split {}",
        delta("pgfault"),
        delta("pgmajfault"),
        delta("pswpin"),
        delta("pswpout"),
        delta("thp_swpout"),
        delta("thp_split_page"),
    );
    println!(
        "sheeptest: device operations {}: {} reads of {} KiB, {} writes of {} KiB, {} \
         discards, {} flushes",
        disk.operations(),
        disk.reads,
        disk.sectors_read / 2,
        disk.writes,
        disk.sectors_written / 2,
        disk.discards,
        disk.flushes,
    );
    println!("bench sheeptest.free_kib.{label} {workload_kib} KiB");
    println!("bench sheeptest.instructions.{label} {busy} instructions");
    println!(
        "bench sheeptest.disk_ops.{label} {} operations",
        disk.operations()
    );
    println!(
        "bench sheeptest.elapsed_s.{label} {:.2} s",
        elapsed.as_secs_f64()
    );
    if failed {
        println!("sheeptest: FAILED");
        1
    } else {
        println!(
            "sheeptest: passed: {} workers verified every byte",
            workers.len()
        );
        0
    }
}

/// One worker (a forked child): joins the cgroup, fills its memory, waits for the others,
/// scans; its exit status.
fn work(worker: u32, params: Params, barrier: Barrier, cgroup: Option<&str>) -> i32 {
    if let Some(cgroup) = cgroup {
        if let Err(why) = system::join_cgroup(cgroup) {
            println!("sheeptest: worker {worker}: {why}");
            barrier.arrive_and_wait(worker, params.processes());
            return NO_CGROUP;
        }
    }
    let bytes = params.bytes() as usize;
    let base = match system::map_anonymous(bytes, system::Sharing::Private) {
        Ok(base) => base,
        Err(e) => {
            println!("sheeptest: worker {worker}: mapping {bytes} bytes: {e}");
            barrier.arrive_and_wait(worker, params.processes());
            return NO_MEMORY;
        }
    };
    let words = params.pages() as usize * WORDS_PER_PAGE;
    // SAFETY: the mapping is readable, writable, zero-filled (so initialized), `words` words
    // long, and only this slice refers to it until the process exits.
    let memory = unsafe { std::slice::from_raw_parts_mut(base as *mut u64, words) };
    fill(memory, worker);
    barrier.arrive_and_wait(worker, params.processes());
    for round in 0..params.rounds() {
        for direction in [Direction::Forward, Direction::Backward] {
            if let Some(wrong) = check(memory, worker, direction) {
                println!(
                    "sheeptest: worker {worker}: WRONG WORD in round {round} {direction}: page \
                     {} offset {:#x}: expected {:#018x}, found {:#018x}",
                    wrong.page, wrong.offset, wrong.expected, wrong.found
                );
                return WRONG_WORD;
            }
        }
    }
    0
}

/// The CPU's idle time so far, in jiffies (the `cpu` line of /proc/stat: its fourth field,
/// with iowait, the fifth); 0 if unreadable.
fn idle_jiffies() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().find(|l| l.starts_with("cpu "))?;
            let fields: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            Some(fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0))
        })
        .unwrap_or(0)
}

//! `fuzz`: the kernel fuzzer (issue 17), run as the first task (`init=fuzz args=...`, syntax
//! in `fuzz::args`). Each round it forks workers that issue random and mutated system calls
//! and messages (`worker`), terminates one of them mid-run, waits for all (a worker that
//! does not end in time is a hang: reported, with its last call, and terminated), then checks
//! that every frame, heap byte, port, task, thread, VM object and timer the round used came
//! back (the census after the first round, a warm-up in which the kernel's tables may grow,
//! is what every later round must return to). It prints each round and, at the end,
//! `bench fuzz.*` figures; its exit status is 0, or 1 for a leak or a hang, 2 for bad
//! arguments. A kernel panic ends the run with the kernel's report, so a run that reaches
//! its figures saw none.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod worker;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod run {
    use crate::worker::{self, Progress};
    use fuzz::args::Params;
    use fuzz::census::{Census, Leak};
    use fuzz::rng::Rng;
    use libipc::println;
    use libipc::rt::sleep_ms;
    use libipc::sys::{self, Forked};

    /// How long a worker may go without starting a call (guest milliseconds) before it is
    /// taken for hung: one call (a wait, say) may take that long, a round any time.
    const HANG_GRACE_MS: u64 = 60_000;

    /// How long the kernel may take to trim its tables (it gives back the empty end of a
    /// table that is mostly empty once a second): every census is taken after that, so a
    /// table trimmed between two censuses and grown again by the next round is not taken
    /// for a leak.
    const TRIM_MS: u64 = 1_200;

    /// How many times a round that kept something runs again before what it keeps is
    /// called a leak.
    const RERUNS: u32 = 3;

    /// The census once what the round left has come back, or the last one after two
    /// seconds (the kernel releases pagers' objects and expires timers a little later),
    /// after the kernel's tables were trimmed.
    fn settled(baseline: &Census) -> Census {
        sleep_ms(TRIM_MS);
        let mut now = Census::take();
        for _ in 0..200 {
            if Leak::between(baseline, &now).is_none() {
                break;
            }
            sleep_ms(10);
            now = Census::take();
        }
        now
    }

    /// What the run found.
    #[derive(Default)]
    pub struct Totals {
        pub calls: u64,
        pub hangs: u64,
        pub killed: u64,
        pub leak: Leak,
    }

    /// One round: forks the workers, kills one, waits for all. Calls made and hangs.
    fn round(params: &Params, round: u32, progress: &Progress, totals: &mut Totals) {
        let mut rng = Rng::new(params.seed, 0xfeed_0000 | u64::from(round));
        let per_worker = params.calls_per_worker();
        let mut workers = [0u32; fuzz::args::MAX_WORKERS as usize];
        let count = params.workers as usize;
        for (index, slot) in workers.iter_mut().enumerate().take(count) {
            progress.reset(index);
            let leak = params.leak && index == 0;
            loop {
                match sys::task_fork() {
                    Ok(Forked::Child) => worker::run(
                        params.seed,
                        round,
                        index,
                        per_worker,
                        (leak, params.mix, params.call),
                        progress,
                    ),
                    Ok(Forked::Parent(task)) => {
                        *slot = task;
                        break;
                    }
                    Err(error) => {
                        println!("fuzz: round {round}: cannot fork worker {index}: {error}; again");
                        sleep_ms(10);
                    }
                }
            }
        }
        let mut victim = None;
        if params.kill {
            sleep_ms(rng.below(5));
            let chosen = rng.below(count as u64) as usize;
            if sys::task_terminate(workers[chosen]).is_ok() {
                totals.killed += 1;
                victim = Some(chosen);
            }
        }
        for (index, task) in workers.iter().enumerate().take(count) {
            match wait_while_progressing(*task, index, progress) {
                // Ended by the kernel, and not by us: it faulted. A worker keeps out of its own
                // memory, so this is worth a look (the kernel said why just before).
                Ok(u64::MAX) if victim != Some(index) => println!(
                    "fuzz: round {round} worker {index} (seed {}) was ended by the kernel; its \
                     last call: {}",
                    params.seed,
                    progress.describe(index)
                ),
                Ok(_) => {}
                Err(error) => {
                    totals.hangs += 1;
                    println!(
                        "fuzz: HANG: round {round} worker {index} (seed {}) made no call for \
                         {HANG_GRACE_MS} ms ({error}); its last call: {}",
                        params.seed,
                        progress.describe(index)
                    );
                    let _ = sys::task_terminate(*task);
                    let _ = sys::task_wait_timeout(*task, 1000);
                }
            }
            let _ = sys::port_deallocate(*task);
            totals.calls += progress.calls(index);
        }
    }

    /// Waits for worker `index` (task `task`) to end: its status, or `OperationTimedOut`
    /// once it has made no call for `HANG_GRACE_MS` (a hang; a worker that is slow but goes
    /// on, a fork at a time, is waited for however long it takes).
    fn wait_while_progressing(
        task: u32,
        index: usize,
        progress: &Progress,
    ) -> Result<u64, libipc::abi::KernReturn> {
        const SLICE_MS: u64 = 5_000;
        let mut last = progress.calls(index);
        let mut idle_ms = 0;
        loop {
            match sys::task_wait_timeout(task, SLICE_MS) {
                Err(libipc::abi::KernReturn::OperationTimedOut) => {}
                done => return done,
            }
            let now = progress.calls(index);
            if now == last {
                idle_ms += SLICE_MS;
                if idle_ms >= HANG_GRACE_MS {
                    return Err(libipc::abi::KernReturn::OperationTimedOut);
                }
            } else {
                (last, idle_ms) = (now, 0);
            }
        }
    }

    pub fn run(params: &Params) -> Totals {
        let progress = Progress::new(params.workers as usize);
        let mut totals = Totals::default();
        let mut baseline = None;
        for r in 0..params.rounds {
            let before = totals.calls;
            round(params, r, &progress, &mut totals);
            if !params.census {
                println!("fuzz: round {r}: {} calls", totals.calls - before);
                continue;
            }
            let Some(base) = baseline else {
                sleep_ms(TRIM_MS);
                let warm = Census::quiet(20, 200);
                println!(
                    "fuzz: round {r} (warm-up): {} calls; census {warm:?}",
                    totals.calls
                );
                baseline = Some(warm);
                continue;
            };
            let now = settled(&base);
            let kept = Leak::between(&base, &now);
            if kept.is_none() {
                println!(
                    "fuzz: round {r}: {} calls, nothing kept",
                    totals.calls - before
                );
                continue;
            }
            // Kept something: a table of the kernel's that grew to a size it had not had
            // (kept for good, and no leak), or a leak. The same round again (the same calls)
            // tells them apart: a table does not grow every time for the same load. (Not
            // always the second time: how far the workers get before one is killed varies
            // with the host's load, so a rerun may reach a size the round did not; a leak
            // keeps something on every rerun.)
            let mut again = now;
            let mut leak = kept;
            for _ in 0..RERUNS {
                round(params, r, &progress, &mut totals);
                let next = settled(&again);
                leak = Leak::between(&again, &next);
                again = next;
                if leak.is_none() {
                    break;
                }
            }
            if leak.is_none() {
                println!(
                    "fuzz: round {r}: {} calls; the kernel kept {kept:?} once, and nothing when \
                     the round ran again (its tables grew)",
                    totals.calls - before
                );
            } else {
                println!(
                    "fuzz: LEAK: round {r} (seed {}) kept {kept:?}, and {leak:?} on the last of \
                     {RERUNS} reruns (census before it: {base:?}, after: {now:?}, \
                     after the last run: {again:?})",
                    params.seed
                );
                totals.leak = add(totals.leak, leak);
            }
            // Later rounds are checked against what this one left.
            baseline = Some(again);
        }
        totals
    }

    fn add(a: Leak, b: Leak) -> Leak {
        Leak {
            frames: a.frames + b.frames,
            heap_bytes: a.heap_bytes + b.heap_bytes,
            ports: a.ports + b.ports,
            tasks: a.tasks + b.tasks,
            threads: a.threads + b.threads,
            vm_objects: a.vm_objects + b.vm_objects,
            timers: a.timers + b.timers,
        }
    }

    /// Builds what the kernel builds once and keeps: a fork's (the tables' first growth),
    /// and the program file object and cached text of `nonaim_exit`, which workers spawn.
    pub fn warm_caches() {
        match sys::task_fork() {
            Ok(Forked::Child) => sys::task_exit(0),
            Ok(Forked::Parent(child)) => {
                let _ = sys::task_wait(child);
                let _ = sys::port_deallocate(child);
            }
            Err(_) => {}
        }
        if let Ok(child) = sys::task_spawn("nonaim_exit", 0, 0) {
            let _ = sys::task_wait(child);
            let _ = sys::port_deallocate(child);
        }
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::println;
    let mut buffer = [0u8; 256];
    let params = match fuzz::args::parse(libipc::rt::first_task_args(&mut buffer)) {
        Ok(params) => params,
        Err(why) => {
            println!(
                "fuzz: bad arguments: {why}; expected calls=N, rounds=N, workers=N, seed=N, \
                 kill=0|1, leak=0|1 (see fuzz::args)"
            );
            return 2;
        }
    };
    // The host port would let a worker's random calls power the machine off or make one of
    // its ports the default pager: nobody here keeps it.
    let _ = libipc::sys::port_deallocate(args.arg0 as u32);
    println!(
        "fuzz: seed {} rounds {} calls {} workers {} kill {} leak {}",
        params.seed, params.rounds, params.calls, params.workers, params.kill, params.leak
    );
    run::warm_caches();
    let totals = run::run(&params);
    println!("bench fuzz.calls {} calls", totals.calls);
    println!("bench fuzz.kernel_panics 0 panics");
    println!(
        "bench fuzz.leaked_frames {} frames",
        totals.leak.frames.max(0)
    );
    println!(
        "bench fuzz.leaked_heap_bytes {} bytes",
        totals.leak.heap_bytes.max(0)
    );
    println!("bench fuzz.leaked_ports {} ports", totals.leak.ports.max(0));
    println!("bench fuzz.hangs {} hangs", totals.hangs);
    println!("bench fuzz.workers_killed {} workers", totals.killed);
    if totals.hangs > 0 || !totals.leak.is_none() {
        println!("fuzz: FAILED (seed {})", params.seed);
        return 1;
    }
    println!("fuzz: passed");
    0
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}

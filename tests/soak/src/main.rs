//! `soak`: the soak (issue 17), started from the shell (`run soak minutes=N seed=S`) on a
//! system with its pagers (the disk default pager and bootfs) and the task swapper: cycle
//! after cycle until the time is up, it runs `sheeptest` (4 x 5 MiB, more than a 32 MiB
//! machine has free, so it pages; every word verified),
//! `nonaim` (1, 2 and 5 users, every job checking its result) and `fuzz` (a round of random
//! calls without its census, which the others would disturb) at the same time, waits for
//! all three, and requires each to exit with 0. After each cycle it takes the census of the
//! kernel's memory once the machine is quiet and checks it for drift against the first two
//! cycles' (`soak::drift`); every minute it prints free memory and the kernel heap while the
//! load runs. It prints `soak: ...` lines and, at the end, `bench soak.*` figures; exit
//! status 0, or 1 for a failed workload, drift or a hang, 2 for bad arguments.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod cycle {
    use alloc::format;
    use alloc::string::String;
    use libipc::abi::syscall::*;
    use libipc::println;
    use libipc::sys;

    /// A workload of a cycle: the program and its arguments (comma-joined).
    pub struct Load {
        pub program: &'static str,
        pub args: String,
    }

    /// The cycle's workloads.
    pub fn loads(seed: u64, cycle: u64) -> [Load; 3] {
        [
            Load {
                program: "sheeptest",
                args: String::from("4,5M,1"),
            },
            Load {
                program: "nonaim",
                args: format!("1,2,5,jobs=4,seed={}", seed + cycle),
            },
            Load {
                program: "fuzz",
                args: format!(
                    "calls=3000,rounds=1,workers=2,census=0,seed={}",
                    seed + cycle
                ),
            },
        ]
    }

    /// Ticks since boot, in milliseconds.
    pub fn now_ms() -> u64 {
        sys::host_info(HOST_TICKS).unwrap_or(0) * 10
    }

    fn sample(minute: u64) {
        let info = |selector| sys::host_info(selector).unwrap_or(0);
        println!(
            "soak: minute {minute}: {} KiB free, kernel heap {} KiB in use ({} pages held), {} \
             tasks, {} ports",
            info(HOST_FREE_FRAMES) * 4,
            info(HOST_HEAP_BYTES) / 1024,
            info(HOST_HEAP_PAGES),
            info(HOST_TASKS),
            info(HOST_PORTS)
        );
    }

    /// How one cycle went.
    pub struct Outcome {
        /// The workloads that failed, with their status (`u64::MAX`: ended by the kernel).
        pub failed: [Option<u64>; 3],
        pub hung: bool,
    }

    /// A cycle: the loads started together, each given the name service `names`, waited
    /// for (at most `limit_ms`), a sample printed each minute since `start_ms`.
    pub fn run(names: u32, loads: &[Load; 3], start_ms: u64, limit_ms: u64) -> Outcome {
        let mut tasks = [None; 3];
        let mut failed = [None; 3];
        for (i, load) in loads.iter().enumerate() {
            match sys::task_spawn_with_args(load.program, names, 0, &load.args) {
                Ok(task) => tasks[i] = Some(task),
                Err(error) => {
                    println!("soak: cannot start {}: {error}", load.program);
                    failed[i] = Some(u64::MAX - 1);
                }
            }
        }
        let began = now_ms();
        let mut next_minute = (began - start_ms) / 60_000 + 1;
        let mut hung = false;
        while tasks.iter().any(Option::is_some) {
            for (i, slot) in tasks.iter_mut().enumerate() {
                let Some(task) = *slot else { continue };
                match sys::task_wait_timeout(task, 200) {
                    Ok(status) => {
                        if status != 0 {
                            println!(
                                "soak: {} exited with status {}",
                                loads[i].program, status as i64
                            );
                            failed[i] = Some(status);
                        }
                        let _ = sys::port_deallocate(task);
                        *slot = None;
                    }
                    Err(libipc::abi::KernReturn::OperationTimedOut) => {}
                    Err(error) => {
                        println!("soak: waiting for {}: {error}", loads[i].program);
                        failed[i] = Some(u64::MAX);
                        *slot = None;
                    }
                }
            }
            let elapsed = now_ms() - start_ms;
            if elapsed >= next_minute * 60_000 {
                sample(next_minute);
                next_minute += 1;
            }
            if now_ms() - began > limit_ms {
                hung = true;
                for (i, slot) in tasks.iter_mut().enumerate() {
                    if let Some(task) = slot.take() {
                        println!(
                            "soak: HANG: {} did not end in {} s",
                            loads[i].program,
                            limit_ms / 1000
                        );
                        let _ = sys::task_terminate_job(task);
                        let _ = sys::task_wait_timeout(task, 5000);
                        failed[i] = Some(u64::MAX);
                    }
                }
            }
        }
        Outcome { failed, hung }
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use alloc::vec::Vec;
    use libipc::println;
    let mut buffer = [0u8; 256];
    let params = match soak::parse(libipc::rt::first_task_args(&mut buffer)) {
        Ok(params) => params,
        Err(bad) => {
            println!("soak: bad argument {bad:?}; expected minutes=N (1 to 1440), seed=N");
            return 2;
        }
    };
    if libipc::sys::host_info(libipc::abi::syscall::HOST_DEFAULT_PAGER) != Ok(1) {
        println!("soak: no default pager; start it from the shell (`run soak minutes=N`)");
        return 2;
    }
    let names = args.arg0 as u32;
    let start = cycle::now_ms();
    let end = start + params.minutes * 60_000;
    println!(
        "soak: {} minutes of sheeptest, NONAIM and the fuzzer together, seed {}",
        params.minutes, params.seed
    );
    let mut baseline: Vec<fuzz::census::Census> = Vec::new();
    let (mut cycles, mut failures, mut drifted) = (0u64, 0u64, None);
    let mut hangs = 0u64;
    while cycle::now_ms() < end {
        let loads = cycle::loads(params.seed, cycles);
        // A cycle takes seconds; ten minutes without an end is a hang.
        let outcome = cycle::run(names, &loads, start, 600_000);
        cycles += 1;
        hangs += u64::from(outcome.hung);
        for (load, failed) in loads.iter().zip(outcome.failed) {
            if let Some(status) = failed {
                failures += 1;
                println!(
                    "soak: cycle {cycles}: {} FAILED (status {})",
                    load.program, status as i64
                );
            }
        }
        // Quiet: three samples 100 ms apart the same (or ten seconds).
        let census = fuzz::census::Census::quiet(100, 100);
        println!(
            "soak: cycle {cycles} done at {} s: {} KiB free, kernel heap {} bytes in use, {} \
             ports, {} tasks, {} VM objects",
            (cycle::now_ms() - start) / 1000,
            census.free_frames * 4,
            census.heap_bytes,
            census.ports,
            census.tasks,
            census.vm_objects
        );
        if baseline.len() < 2 {
            baseline.push(census);
        } else if let Some((what, grown)) = soak::drift(&baseline, &census) {
            println!("soak: DRIFT: {what} grew by {grown} past the first cycles' (cycle {cycles})");
            drifted = Some((what, grown));
        }
        if failures > 0 || hangs > 0 || drifted.is_some() {
            break;
        }
    }
    println!(
        "bench soak.minutes {} minutes",
        (cycle::now_ms() - start) / 60_000
    );
    println!("bench soak.cycles {cycles} cycles");
    println!("bench soak.failed_workloads {failures} workloads");
    println!("bench soak.hangs {hangs} hangs");
    println!("bench soak.drifted {} checks", u64::from(drifted.is_some()));
    if failures > 0 || hangs > 0 || drifted.is_some() {
        println!("soak: FAILED");
        return 1;
    }
    println!("soak: passed");
    0
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}

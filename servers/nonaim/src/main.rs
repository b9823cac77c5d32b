//! `nonaim`: the NONAIM workload (seed 004 §4), AIM III's multiuser mix with every job
//! started by fork and exec. Run as the first task (`init=nonaim args=...`, syntax in
//! `nonaim::args`), it makes a default pager the kernel's (the disk pager `default_pager`
//! with a disk, else zpager) and `bootfs` its program pager and file server; started from
//! the shell (`nonaim 1 2 5`) it uses the system's. Then it runs the
//! schedule: for each number of users U, U user processes forked at once, each running its
//! jobs (drawn by weight from its seed) one after the other, each job a forked child that
//! execs `nonaim_job` (`step`, `user`). Per step it prints `nonaim: users U jobs J failed F
//! forks retried R elapsed S s jpm X` and `bench nonaim.<metric>.<U>u` figures; at the end
//! the peak jobs per minute and the most users of a step without a failed job. A step whose
//! users cannot all be started (forks failing after retries: resources out) ends the
//! schedule with a report. Exit status: 0, or 1 if a job computed a wrong result, 2 for bad
//! arguments.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod step;
#[cfg(target_os = "none")]
mod user;

#[cfg(target_os = "none")]
libipc::program!(main);

/// The exit status for arguments that are refused.
#[cfg(target_os = "none")]
const BAD_ARGUMENTS: i32 = 2;

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::pager::{DEFAULT_PAGER_NAME, PROGRAM_PAGER_NAME};
    use libipc::println;
    use libipc::rt::selftest::{disk_present, with_disk_pager, with_pager, with_pager_port};
    use libipc::sys::{host_set_default_pager, host_set_program_pager};
    let mut buffer = [0u8; 256];
    let params = match nonaim::args::parse(libipc::rt::first_task_args(&mut buffer)) {
        Ok(params) => params,
        Err(why) => {
            println!(
                "nonaim: bad arguments: {why}; expected args= of numbers of users in \
                 increasing order (1 to {}), or max=N, and jobs=N, seed=N, tag=NAME, or \
                 calibrate (see nonaim::args)",
                nonaim::args::MAX_USERS
            );
            return BAD_ARGUMENTS;
        }
    };
    let (host, params) = (args.arg0 as u32, &params);
    if libipc::sys::host_info(libipc::abi::syscall::HOST_DEFAULT_PAGER) == Ok(1) {
        // Started from the shell: the system's pagers serve; bootfs is found by name (the
        // first start argument is then the name service).
        let names = libipc::names::Client::from_start_args(&args);
        let bootfs = names.and_then(|mut names| {
            names
                .lookup(alloc::string::String::from(PROGRAM_PAGER_NAME))
                .ok()
        });
        let Some(bootfs) = bootfs else {
            println!("nonaim: no program pager ({PROGRAM_PAGER_NAME}) in the name service");
            return 1;
        };
        return workload::run(params, "the system's default pager", bootfs.name());
    }
    let run = |pager: &'static str| {
        move || {
            with_pager_port(
                host,
                "bootfs",
                PROGRAM_PAGER_NAME,
                host_set_program_pager,
                |bootfs| workload::run(params, pager, bootfs.name()),
            )
        }
    };
    if disk_present(host) {
        with_disk_pager(host, run("default_pager (disk)"))
    } else {
        with_pager(
            host,
            "zpager",
            DEFAULT_PAGER_NAME,
            host_set_default_pager,
            run("zpager (no disk)"),
        )
    }
}

#[cfg(target_os = "none")]
mod workload {
    use crate::step::{self, Started};
    use libipc::println;
    use nonaim::args::{Mode, Params};
    use nonaim::figures::{run_metric, step_report, summary_report, Step, Summary};
    use nonaim::guest::{fork_retrying, timestamp};
    use nonaim::mix::{Ended, JobArgument, Verdict, ALL};

    /// Runs what `params` asks for; `files` names the send right to bootfs (the file server).
    /// The exit status.
    pub fn run(params: &Params, pager: &str, files: u32) -> i32 {
        match &params.mode {
            Mode::Steps(steps) => schedule(params, steps, pager, files),
            Mode::Calibrate => calibrate(params, files),
        }
    }

    fn schedule(params: &Params, steps: &[u32], pager: &str, files: u32) -> i32 {
        let tag = params.tag.as_deref();
        let free = libipc::sys::vm_statistics().map_or(0, |s| s.free_frames);
        let list: alloc::vec::Vec<alloc::string::String> =
            steps.iter().map(|u| alloc::format!("{u}")).collect();
        println!(
            "nonaim: schedule {} users, {} jobs each, seed {}; pager {pager}; bootfs serves \
             programs and files; {free} free pages",
            list.join(","),
            params.jobs_per_user,
            params.seed,
        );
        // What the workload had free: `cargo image bench nonaim --linux` gives Linux's
        // workload as much (`bench::runs::linux_args`).
        println!(
            "bench {} {} KiB",
            run_metric("free_kib", tag),
            free * (libipc::abi::syscall::PAGE_SIZE / 1024)
        );
        let mut summary = Summary::default();
        let mut stopped = None;
        for &users in steps {
            match step::run(users, params, files) {
                Started::All(step) => {
                    report(&step, tag);
                    summary.add(&step);
                }
                Started::Short {
                    started,
                    why,
                    retried,
                } => {
                    println!(
                        "nonaim: users {users}: only {started} of {users} users could be \
                         started ({why}, {retried} forks retried); resources are out: \
                         stopping the schedule"
                    );
                    stopped = Some(users);
                    break;
                }
            }
        }
        for line in summary_report(&summary, stopped, tag) {
            println!("{line}");
        }
        if summary.wrong > 0 {
            println!(
                "nonaim: FAILED: {} jobs computed a wrong result",
                summary.wrong
            );
            1
        } else {
            0
        }
    }

    /// The lines of a finished step.
    fn report(step: &Step, tag: Option<&str>) {
        for line in step_report(step, tag) {
            println!("{line}");
        }
    }

    /// Each job once, one after the other: the job prints its work's instructions, this its
    /// whole cost (fork, exec, work, exit, wait).
    fn calibrate(params: &Params, files: u32) -> i32 {
        println!("nonaim: calibrating: each job once, seed {}", params.seed);
        let mut wrong = 0;
        for job in ALL {
            let argument = JobArgument {
                job,
                seed: (params.seed & 0x3ff_ffff) as u32,
                measure: true,
                files,
            };
            let mut retried = 0;
            let before = timestamp();
            let status = match fork_retrying(&mut retried) {
                Ok(libipc::process::Fork::Child) => {
                    let _ = libipc::process::exec("nonaim_job", argument.encode());
                    libipc::process::exit(Verdict::ExecFailed.status(0))
                }
                Ok(libipc::process::Fork::Parent(task)) => libipc::process::wait(&task),
                Err(e) => {
                    println!("nonaim: {job}: fork: {e}");
                    continue;
                }
            };
            let total = timestamp() - before;
            match status.map(Ended::of) {
                Ok(Ended::Job {
                    verdict: Verdict::Passed,
                    ..
                }) => {
                    println!("nonaim: job {job} total {total} instructions");
                    println!("bench nonaim.total.{job} {total} instructions");
                }
                other => {
                    println!("nonaim: job {job} failed: {other:?}");
                    wrong += 1;
                }
            }
        }
        i32::from(wrong > 0)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}

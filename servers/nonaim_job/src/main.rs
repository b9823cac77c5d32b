//! `nonaim_job`: NONAIM's job program. A user process forks a child for each job, which execs
//! this program with one word (`nonaim::mix::JobArgument`: the job, its data seed, whether to
//! print its instructions, the file server's right); it does the job, checks the result, and
//! exits with the verdict and the forks it had to retry (`nonaim::mix::Verdict::status`). The
//! compute jobs are `nonaim::compute`; the jobs that use the system are `system`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod system;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::println;
    use nonaim::compute::{self, Wrong};
    use nonaim::guest::timestamp;
    use nonaim::mix::{JobArgument, Verdict};
    let argument = match JobArgument::decode(args.arg1) {
        Ok(argument) => argument,
        Err(e) => {
            println!("nonaim_job: bad argument {:#x}: {e}", args.arg1);
            return Verdict::BadArgument.status(0);
        }
    };
    let job = argument.job;
    let before = timestamp();
    let (verdict, retried) = match compute::run(job, argument.seed) {
        Some(Ok(_)) => (Verdict::Passed, 0),
        Some(Err(Wrong(what))) => {
            println!("nonaim_job: WRONG RESULT: {what} (seed {})", argument.seed);
            (Verdict::Wrong, 0)
        }
        None => system::run(argument),
    };
    let work = timestamp() - before;
    if argument.measure {
        println!("nonaim: job {job} work {work} instructions ({verdict:?})");
        println!("bench nonaim.work.{job} {work} instructions");
    }
    verdict.status(retried)
}

/// On the host the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}

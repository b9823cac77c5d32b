//! Runs NONAIM compute jobs on the host (x86-64 Linux: SSE doubles, as a Linux guest would),
//! so their instructions can be counted without the guest:
//!
//!     cargo build --release -p nonaim --example linux_job
//!     valgrind --tool=callgrind --toggle-collect='nonaim::compute::run' \
//!         target/release/examples/linux_job add_int
//!
//! (`Collected` is the job's instructions, its self-check included.) Arguments: job names
//! (all compute jobs when none), each run once with seed 1.

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    for job in nonaim::mix::ALL.into_iter().filter(|j| j.is_compute()) {
        if !names.is_empty() && !names.iter().any(|n| n == job.name()) {
            continue;
        }
        let result = nonaim::compute::run(job, 1).expect("a compute job");
        println!("{job}: {result:?}");
        if result.is_err() {
            std::process::exit(1);
        }
    }
}

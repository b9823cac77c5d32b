//! `linux-workloads`: PID 1 (`/init`) of the Linux guest that `cargo image bench <suite>
//! --linux` boots. It mounts `/proc`, `/sys`, `/dev` and the cgroup hierarchy, loads the
//! virtio modules the initramfs carries (in the order listed in `/modules`), makes the
//! virtio disk its swap (writing the swap header itself), runs the workload the kernel
//! command line names inside a memory cgroup of the size asked for, prints the same
//! `bench <group>.<metric> <value> <unit>` lines as the microkernel's program, and ends the
//! machine through QEMU's `isa-debug-exit` with the status (0: every check passed), or by
//! powering off if that port is not there. NONAIM's jobs run this program again
//! (`/init nonaim-job WORD`, `/init nonaim-exit N`): those start no machine.

mod nonaim_jobs;
mod nonaim_run;
mod sheeptest_run;
mod system;

use linux_workloads::options::{self, Workload};

/// Status for a command line that names no known workload or bad arguments.
const BAD_OPTIONS: i32 = 2;
/// Status when the machine could not be set up (modules, disk, swap, cgroup).
const SETUP_FAILED: i32 = 3;
/// Status when the program panicked.
const PANICKED: i32 = 4;

fn main() {
    // NONAIM's jobs exec this program again: `/init nonaim-job WORD`, `/init nonaim-exit N`.
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1..3) {
        Some([first, word]) if first == nonaim_jobs::JOB => {
            nonaim_jobs::exit_now(nonaim_jobs::job_program(word))
        }
        Some([first, argument]) if first == nonaim_jobs::EXIT => {
            nonaim_jobs::exit_now(nonaim_jobs::exit_program(argument))
        }
        _ => {}
    }
    let status = std::panic::catch_unwind(run).unwrap_or_else(|_| {
        println!("linux-workloads: panicked");
        PANICKED
    });
    system::end(status);
}

fn run() -> i32 {
    if let Err(why) = system::mount_filesystems() {
        println!("linux-workloads: {why}");
        return SETUP_FAILED;
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let options = match options::parse(&cmdline) {
        Ok(options) => options,
        Err(why) => {
            println!("linux-workloads: {why}");
            return BAD_OPTIONS;
        }
    };
    let machine = match system::prepare(options.memory_limit) {
        Ok(machine) => machine,
        Err(why) => {
            println!("linux-workloads: {why}");
            return SETUP_FAILED;
        }
    };
    let args: Vec<&str> = options.args.iter().map(String::as_str).collect();
    match options.workload {
        Workload::Sheeptest => sheeptest_run::run(&machine, &args),
        Workload::Nonaim => nonaim_run::run(&machine, &args),
    }
}

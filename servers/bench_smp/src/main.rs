//! `bench_smp`: the kernel on several processors (`cargo image bench smp`, which boots it with
//! QEMU's four CPUs and `cpus=1`, `cpus=2` and `cpus=4`). Every figure's name ends with the
//! CPUs the kernel used (`.cpus2`). Without `--icount` (under it QEMU runs the CPUs in turn,
//! and a wait for another CPU lasts a whole turn): the times are nanoseconds of the emulated
//! machine's clock, host time under MTTCG.
//!
//! - `smp.rpc_same_cpu`: a null `call` between two tasks (send and receive in one system
//!   call): the kernel hands the CPU from caller to server and back, so the RPC stays on one
//!   CPU whatever the number online.
//! - `smp.rpc_cross_cpu`: the same exchange made of separate `send` and `receive` calls, so
//!   that nothing is handed off: each message wakes the other task on the CPU it last ran on
//!   (another one, idle, once two are online), by interrupt. A remark says how many of the
//!   exchanges did cross.
//! - `smp.shootdown`: one page's write access taken away (`vm_protect`) and given back by a
//!   write fault, while another thread of the task runs on another CPU, whose TLB must drop
//!   the translation (a cross-CPU request each time); `smp.protect_local` the same with the
//!   task alone; `smp.shootdown_requests_per_call` the requests each made.
//! - `smp.lock_wait_percent`: the share of the CPUs' time spent waiting for the kernel lock
//!   during the cross-CPU exchanges.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod benches;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    match args.arg1 {
        benches::DRIVER => benches::run(),
        benches::SERVER => libipc::bench::workloads::serve("bench_smp", args.arg0 as u32),
        benches::ONE_WAY_SERVER => benches::one_way_server(args.arg0 as u32),
        other => {
            libipc::println!("bench_smp: unknown role {other}");
            2
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}

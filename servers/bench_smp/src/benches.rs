//! The benchmarks (see the crate's doc) and the one-way server.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use libipc::abi::message::{Disposition, ReceivedRight};
use libipc::abi::syscall::*;
use libipc::bench::measure::{time_iterations, timestamp};
use libipc::bench::workloads::{NullRpcServer, ANNOUNCE_ID, QUIT_ID, REPLY_OFFSET, REQUEST_ID};
use libipc::ipc::{receive, send, MessageBuffer, Name, OutMessage, ReceiveRight, SendRight};
use libipc::sys;

/// Roles (the second start argument).
pub const DRIVER: u64 = 0;
pub const SERVER: u64 = 1;
pub const ONE_WAY_SERVER: u64 = 2;

/// A request the one-way server answers with the CPU it runs on (the body's 8 bytes).
const WHERE_ID: u32 = 2003;

const WARM_UP: usize = 200;
const TIMED: usize = 2_000;

type Failure = String;

fn host(selector: u64) -> u64 {
    sys::host_info(selector).unwrap_or(0)
}

/// Nanoseconds in `cycles` of the time-stamp counter.
fn ns(cycles: u64) -> u64 {
    let khz = host(HOST_TSC_KHZ).max(1);
    cycles.saturating_mul(1_000_000) / khz
}

pub fn run() -> i32 {
    let cpus = host(HOST_CPUS);
    let suffix = format!("cpus{cpus}");
    let mut failed = 0;
    for (name, bench) in [
        ("rpc", rpc as fn(&str) -> Result<(), Failure>),
        ("shootdown", shootdown),
    ] {
        if let Err(why) = bench(&suffix) {
            libipc::println!("bench_smp: {name} failed: {why}");
            failed += 1;
        }
    }
    libipc::println!("bench_smp: all benchmarks done");
    failed
}

fn rpc(suffix: &str) -> Result<(), Failure> {
    let same = NullRpcServer::start("bench_smp", SERVER)?;
    let summary = same.time_calls(WARM_UP, TIMED)?;
    same.stop()?;
    libipc::println!("bench smp.rpc_same_cpu.{suffix} {} ns", ns(summary.median));

    let server = NullRpcServer::start("bench_smp", ONE_WAY_SERVER)?;
    let reply_port = ReceiveRight::allocate().map_err(|e| format!("port: {e:?}"))?;
    let mut buffer = MessageBuffer::new();
    let (to, reply) = (server.port(), reply_port.name());
    let exchange = |buffer: &mut MessageBuffer, id: u32| -> Result<u64, Failure> {
        let request = OutMessage::new(id, to).reply_to(reply);
        send(&request, buffer, None).map_err(|e| format!("send: {e:?}"))?;
        let answer = receive(reply, buffer, None).map_err(|e| format!("receive: {e:?}"))?;
        if answer.id() != id + REPLY_OFFSET {
            return Err(format!("answer {} to request {id}", answer.id()));
        }
        Ok(answer.body.get(..8).map_or(u64::MAX, |b| {
            u64::from_le_bytes(b.try_into().expect("8 bytes"))
        }))
    };
    let (waits, waited, started) = (
        host(HOST_LOCK_WAITS),
        host(HOST_LOCK_WAIT_CYCLES),
        timestamp(),
    );
    let summary = time_iterations(WARM_UP, TIMED, || {
        exchange(&mut buffer, REQUEST_ID).map(drop)
    })?;
    let elapsed = timestamp().saturating_sub(started);
    let (waits, waited) = (
        host(HOST_LOCK_WAITS) - waits,
        host(HOST_LOCK_WAIT_CYCLES) - waited,
    );
    // Where each side ran, in exchanges of their own (the timed ones ask nothing more).
    let mut crossed = 0;
    for _ in 0..100 {
        let there = exchange(&mut buffer, WHERE_ID)?;
        if there != host(HOST_CPU) {
            crossed += 1;
        }
    }
    server.stop()?;
    libipc::println!(
        "bench_smp: cross-CPU exchanges: {crossed} of 100 answered on another CPU; the kernel \
         lock waited for {waits} times ({} ns) over {} ns",
        ns(waited),
        ns(elapsed)
    );
    libipc::println!("bench smp.rpc_cross_cpu.{suffix} {} ns", ns(summary.median));
    let cpus = host(HOST_CPUS).max(1);
    libipc::println!(
        "bench smp.lock_wait_percent.{suffix} {} %",
        waited * 100 / (elapsed * cpus).max(1)
    );
    Ok(())
}

/// Announces a port on `rendezvous`, then answers each request with a separate `send` and
/// waits with a separate `receive`: nothing is handed off.
pub fn one_way_server(rendezvous: Name) -> i32 {
    match serve_one_way(SendRight::from_raw(rendezvous)) {
        Ok(()) => 0,
        Err(why) => {
            libipc::println!("bench_smp: the one-way server failed: {why}");
            1
        }
    }
}

fn serve_one_way(rendezvous: SendRight) -> Result<(), Failure> {
    let port = ReceiveRight::allocate().map_err(|e| format!("port: {e:?}"))?;
    let mut buffer = MessageBuffer::new();
    let announce = OutMessage::new(ANNOUNCE_ID, rendezvous.name())
        .carry(port.name(), Disposition::MakeSend)
        .map_err(|e| format!("announcement: {e:?}"))?;
    send(&announce, &mut buffer, Some(10_000)).map_err(|e| format!("announce: {e:?}"))?;
    drop(rendezvous);
    loop {
        let request = receive(port.name(), &mut buffer, None).map_err(|e| format!("{e:?}"))?;
        let id = request.id();
        let Some((to, ReceivedRight::SendOnce)) = request.reply() else {
            return Err(format!("request {id} came without a send-once reply right"));
        };
        let cpu = host(HOST_CPU).to_le_bytes();
        let mut answer = OutMessage::new(id + REPLY_OFFSET, to).to(to, Disposition::MoveSendOnce);
        if id == WHERE_ID {
            answer = answer.with_body(&cpu);
        }
        send(&answer, &mut buffer, Some(10_000)).map_err(|e| format!("answer: {e:?}"))?;
        if id == QUIT_ID {
            return Ok(());
        }
    }
}

/// The sibling of the shootdown benchmark spins until this is set, noting its CPU.
static STOP: AtomicBool = AtomicBool::new(false);
static SIBLING_CPU: AtomicU64 = AtomicU64::new(u64::MAX);
static SIBLING_RUNS: AtomicBool = AtomicBool::new(false);

extern "C" fn sibling(_: u64) -> ! {
    SIBLING_RUNS.store(true, Ordering::Release);
    let mut n = 0u64;
    while !STOP.load(Ordering::Acquire) {
        n += 1;
        if n.is_multiple_of(1_000_000) {
            SIBLING_CPU.store(host(HOST_CPU), Ordering::Relaxed);
        }
    }
    SIBLING_RUNS.store(false, Ordering::Release);
    sys::thread_exit(0)
}

/// Times taking write access from a page and getting it back by a write fault.
fn time_protect(page: u64) -> Result<u64, Failure> {
    let summary = time_iterations(WARM_UP, TIMED, || {
        // SAFETY: `page` is this task's page; the write faults it back writable.
        unsafe { (page as *mut u64).write_volatile(1) };
        sys::vm_protect(page, 4096, false, VM_PROT_READ).map_err(|e| format!("protect: {e}"))?;
        sys::vm_protect(page, 4096, false, VM_PROT_READ | VM_PROT_WRITE)
            .map_err(|e| format!("unprotect: {e}"))
    })?;
    Ok(summary.median)
}

fn shootdown(suffix: &str) -> Result<(), Failure> {
    let page = sys::vm_allocate(0, 4096, VM_ANYWHERE).map_err(|e| format!("page: {e}"))?;
    let local = time_protect(page)?;
    libipc::println!("bench smp.protect_local.{suffix} {} ns", ns(local));
    // A sibling thread runs on (if there is one) another CPU, with the task's tables loaded.
    let stack = sys::vm_allocate(0, 64 * 1024, VM_ANYWHERE).map_err(|e| format!("stack: {e}"))?;
    STOP.store(false, Ordering::Release);
    // SAFETY: the sibling runs on a stack of its own and shares only the atomics.
    unsafe {
        sys::thread_create(
            sibling as *const () as usize as u64,
            stack + 64 * 1024 - 8,
            0,
        )
    }
    .map_err(|e| format!("thread: {e}"))?;
    while !SIBLING_RUNS.load(Ordering::Acquire) {
        libipc::rt::sleep_ms(1);
    }
    libipc::rt::sleep_ms(50);
    let requests = host(HOST_CROSS_CPU_REQUESTS);
    let remote = time_protect(page)?;
    let requests = host(HOST_CROSS_CPU_REQUESTS) - requests;
    STOP.store(true, Ordering::Release);
    while SIBLING_RUNS.load(Ordering::Acquire) {
        libipc::rt::sleep_ms(1);
    }
    libipc::println!(
        "bench_smp: the sibling ran on CPU {} (this thread on {})",
        SIBLING_CPU.load(Ordering::Relaxed) as i64,
        host(HOST_CPU)
    );
    libipc::println!("bench smp.shootdown.{suffix} {} ns", ns(remote));
    libipc::println!(
        "bench smp.shootdown_requests_per_call.{suffix} {}.{:02} requests",
        requests / (WARM_UP + TIMED) as u64,
        requests * 100 / (WARM_UP + TIMED) as u64 % 100
    );
    Ok(())
}

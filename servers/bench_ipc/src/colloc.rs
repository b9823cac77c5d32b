//! The null call to a collocated server: from a task, the same raw `mach_msg` call as the
//! null RPC's (a request with no arguments, a send-once reply right made from the caller's
//! reply port, the answer in registers) to the echo server's `null`, once collocated in the
//! kernel and once as a task (`echo_task`), so the two figures differ only in where the
//! server runs; and from another collocated server, through the client stub (a direct call:
//! `ipc.collocated_rpc`).

use alloc::format;

use libipc::abi::syscall::HOST_DIRECT_SERVER_CALLS;
use libipc::ipc::{call, MessageBuffer, OutMessage, ReceiveRight, SendRight, Task};

use crate::{figure, Failure, SETUP_TIMEOUT_MS};
use libipc::bench::measure::{remark, time_iterations};

const WARM_UP_CALLS: usize = 1_000;
const TIMED_CALLS: usize = 10_000;

/// Starts both servers, times the calls to each, prints the figures, ends the servers.
/// `host`: the host port (a collocated server is started through it).
pub fn bench(host: u32) -> Result<(), Failure> {
    // The floor under any call that takes the kernel's general path: a system call that
    // does nearly nothing.
    let summary = time_iterations(WARM_UP_CALLS, TIMED_CALLS, || {
        libipc::sys::host_info(libipc::abi::syscall::HOST_TASKS)
            .map(drop)
            .map_err(|e| format!("host_info: {e}"))
    })?;
    remark("bench_ipc", "ipc.null_syscall", TIMED_CALLS, &summary);
    figure!("ipc.null_syscall", summary.median, "instructions");
    let mut buffer = MessageBuffer::new();
    let (task, service) = libipc::sys::task_spawn_collocated(host, "echo", 0, 0)
        .map_err(|e| format!("starting the collocated echo server: {e}"))?;
    let collocated = Task::from_port(SendRight::from_raw(task));
    let service = SendRight::from_raw(service);
    let result = time_calls(&service, &mut buffer, "ipc.task_to_collocated_rpc")
        .and_then(|()| time_direct_calls(host, service));
    let _ = collocated.terminate();
    result?;
    let (task, service) =
        libipc::names::spawn_registered("echo_task", echo::TASK_NAME, SETUP_TIMEOUT_MS)
            .map_err(|e| format!("starting echo_task: {e}"))?;
    let result = time_calls(&service, &mut buffer, "ipc.task_server_rpc");
    let _ = task.terminate();
    result
}

/// The null call between two collocated servers: the echo server `service` (collocated)
/// times its calls of `null` on a second collocated instance, `echo.peer`, made through the
/// client stub: direct calls of the peer's routine. Prints the median as
/// `ipc.collocated_rpc`.
fn time_direct_calls(host: u32, service: SendRight) -> Result<(), Failure> {
    let (task, peer) = libipc::sys::task_spawn_collocated(host, "echo.peer", 0, 0)
        .map_err(|e| format!("starting a second collocated echo server: {e}"))?;
    let peer_task = Task::from_port(SendRight::from_raw(task));
    let peer = SendRight::from_raw(peer);
    let before = libipc::sys::host_info(HOST_DIRECT_SERVER_CALLS).unwrap_or(0);
    let times = echo::service::Client::new(service).time_null(
        &peer,
        WARM_UP_CALLS as u32,
        TIMED_CALLS as u32,
    );
    let direct = libipc::sys::host_info(HOST_DIRECT_SERVER_CALLS).unwrap_or(0) - before;
    let _ = peer_task.terminate();
    let times = times.map_err(|e| format!("time_null: {e:?}"))?;
    // Every call direct, or the figure is not what it says.
    if direct != (WARM_UP_CALLS + TIMED_CALLS) as u64 {
        return Err(format!(
            "{direct} of {} calls between the collocated servers were direct",
            WARM_UP_CALLS + TIMED_CALLS
        ));
    }
    libipc::println!(
        "bench_ipc: ipc.collocated_rpc: {TIMED_CALLS} samples, min {}, median {}, max {}",
        times.min,
        times.median,
        times.max
    );
    figure!("ipc.collocated_rpc", times.median, "instructions");
    Ok(())
}

/// Warms up, then times each call of `null` on its own; prints the median as `metric`.
fn time_calls(server: &SendRight, buffer: &mut MessageBuffer, metric: &str) -> Result<(), Failure> {
    let reply_port = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let (server, reply_port_name) = (server.name(), reply_port.name());
    let null = echo::service::ids::null;
    // An empty body: the length prefix of no arguments, as the client stub sends it.
    let body = [0u8; libipc::interface::LENGTH_PREFIX];
    let summary = time_iterations(WARM_UP_CALLS, TIMED_CALLS, || {
        let request = OutMessage::new(null, server)
            .reply_to(reply_port_name)
            .with_body(&body);
        let reply =
            call(&request, reply_port_name, buffer, None).map_err(|e| format!("call: {e:?}"))?;
        // The answer: `()`, as the client stub reads it (its id checked too).
        libipc::interface::decode_reply::<(), echo::EchoError>(&reply, null)
            .map_err(|e| format!("the reply: {e:?}"))
    })?;
    remark("bench_ipc", metric, TIMED_CALLS, &summary);
    figure!(metric, summary.median, "instructions");
    Ok(())
}

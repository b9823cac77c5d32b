//! The null RPC: a raw `mach_msg` call (8-byte body, a send-once reply right made from the
//! caller's reply port) to a server task that answers each request with an empty reply.
//!
//! Both tasks run on the one CPU, so every call is a round trip through the kernel: the
//! client's send hands the CPU to the waiting server, whose reply-and-receive hands it back.

use alloc::format;

use libipc::abi::message::{Disposition, ReceivedRight};
use libipc::ipc::{
    call, receive, reply_and_receive, send, MessageBuffer, Name, OutMessage, ReceiveRight,
    SendRight, Task,
};

use crate::{figure, role, Failure, PROGRAM, SETUP_TIMEOUT_MS};
use libipc::bench::measure::{remark, time_iterations};

/// The server's first message, carrying a send right to its request port.
const ANNOUNCE_ID: u32 = 2000;
/// A request to answer.
const REQUEST_ID: u32 = 2001;
/// The last request: answer, then exit with 0.
const QUIT_ID: u32 = 2002;
/// A reply's id is its request's plus this (MIG's convention).
const REPLY_OFFSET: u32 = 100;

const WARM_UP_CALLS: usize = 1_000;
const TIMED_CALLS: usize = 10_000;

/// Starts the server, times the calls, prints the figure, stops the server.
pub fn bench() -> Result<(), Failure> {
    let mut buffer = MessageBuffer::new();
    let (server, server_port) = start_server(&mut buffer)?;
    let result = time_calls(&server_port, &mut buffer)
        .and_then(|()| stop_server(&server, &server_port, &mut buffer));
    if result.is_err() {
        // The kernel shuts down only once every task has exited.
        let _ = server.terminate();
    }
    result
}

/// Spawns the server and receives the send right to its request port that it announces.
fn start_server(buffer: &mut MessageBuffer) -> Result<(Task, SendRight), Failure> {
    let rendezvous = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let give = rendezvous
        .make_send()
        .map_err(|e| format!("making a send right: {e:?}"))?;
    let server = Task::spawn(PROGRAM, Some(&give), role::SERVER)
        .map_err(|e| format!("spawning the server: {e:?}"))?;
    drop(give);
    let announced = match receive(rendezvous.name(), buffer, Some(SETUP_TIMEOUT_MS)) {
        Ok(message) if message.id() == ANNOUNCE_ID => message
            .rights()
            .find_map(|(name, kind)| (kind == Some(ReceivedRight::Send)).then_some(name)),
        Ok(message) => {
            let _ = server.terminate();
            return Err(format!(
                "the server announced itself with message id {} instead of {ANNOUNCE_ID}",
                message.id()
            ));
        }
        Err(e) => {
            let _ = server.terminate();
            return Err(format!("waiting for the server's port: {e:?}"));
        }
    };
    match announced {
        Some(name) => Ok((server, SendRight::from_raw(name))),
        None => {
            let _ = server.terminate();
            Err(Failure::from(
                "the server's announcement carried no send right",
            ))
        }
    }
}

/// Warms up, then times each call on its own; prints the median.
fn time_calls(server: &SendRight, buffer: &mut MessageBuffer) -> Result<(), Failure> {
    let reply_port = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let body = 0x0123_4567_89ab_cdef_u64.to_le_bytes();
    let (server, reply_port_name) = (server.name(), reply_port.name());
    let summary = time_iterations(WARM_UP_CALLS, TIMED_CALLS, || {
        // Built for each call, as an interface's client stub builds its request.
        let request = OutMessage::new(REQUEST_ID, server)
            .reply_to(reply_port_name)
            .with_body(&body);
        let reply =
            call(&request, reply_port_name, buffer, None).map_err(|e| format!("call: {e:?}"))?;
        if reply.id() != REQUEST_ID + REPLY_OFFSET || !reply.body.is_empty() {
            return Err(format!(
                "wrong reply: id {}, {} body bytes (expected id {}, none)",
                reply.id(),
                reply.body.len(),
                REQUEST_ID + REPLY_OFFSET
            ));
        }
        Ok(())
    })?;
    remark("bench_ipc", "null_rpc_round_trip", TIMED_CALLS, &summary);
    figure!("ipc.null_rpc_round_trip", summary.median, "instructions");
    Ok(())
}

/// Asks the server to exit and checks it did so with status 0.
fn stop_server(task: &Task, server: &SendRight, buffer: &mut MessageBuffer) -> Result<(), Failure> {
    let reply_port = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let quit = OutMessage::new(QUIT_ID, server.name()).reply_to(reply_port.name());
    call(&quit, reply_port.name(), buffer, Some(SETUP_TIMEOUT_MS))
        .map_err(|e| format!("asking the server to quit: {e:?}"))?;
    match task.wait() {
        Ok(0) => Ok(()),
        Ok(status) => Err(format!("the server exited with status {status}")),
        Err(e) => Err(format!("waiting for the server: {e:?}")),
    }
}

/// The server's main: announces its port through `rendezvous`, then answers requests until
/// told to quit. 0 after a quit request, 1 on an error (printed). Not inlined into `main`:
/// its message buffer would make every role's first frame as large (see `tasks::block`).
#[inline(never)]
pub fn serve(rendezvous: Name) -> i32 {
    match serve_requests(SendRight::from_raw(rendezvous)) {
        Ok(()) => 0,
        Err(why) => {
            libipc::println!("bench_ipc: the null-RPC server failed: {why}");
            1
        }
    }
}

fn serve_requests(rendezvous: SendRight) -> Result<(), Failure> {
    let port = ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
    let mut buffer = MessageBuffer::new();
    let announce = OutMessage::new(ANNOUNCE_ID, rendezvous.name())
        .carry(port.name(), Disposition::MakeSend)
        .map_err(|e| format!("building the announcement: {e:?}"))?;
    send(&announce, &mut buffer, Some(SETUP_TIMEOUT_MS))
        .map_err(|e| format!("announcing the port: {e:?}"))?;
    drop(rendezvous);
    // The reply owed for the last request: its id and send-once right.
    let mut owed: Option<(u32, Name)> = None;
    loop {
        let reply = owed.map(|(id, to)| {
            OutMessage::new(id + REPLY_OFFSET, to).to(to, Disposition::MoveSendOnce)
        });
        let request = reply_and_receive(reply.as_ref(), port.name(), &mut buffer)
            .map_err(|e| format!("reply and receive: {e:?}"))?;
        let id = request.id();
        let Some((to, ReceivedRight::SendOnce)) = request.reply() else {
            return Err(format!("request {id} came without a send-once reply right"));
        };
        if id == QUIT_ID {
            let goodbye = OutMessage::new(id + REPLY_OFFSET, to).to(to, Disposition::MoveSendOnce);
            return send(&goodbye, &mut buffer, Some(SETUP_TIMEOUT_MS))
                .map_err(|e| format!("answering the quit request: {e:?}"));
        }
        owed = Some((id, to));
    }
}

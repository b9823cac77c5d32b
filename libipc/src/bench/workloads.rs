//! Workloads more than one benchmark program times: the null RPC (its server and the timed
//! calls) and fork-exit-wait. `bench_ipc` and `bench_vm` give the figures on a quiet system,
//! `bench_scale` the same ones with ten thousand blocked tasks around.
//!
//! The null RPC is a raw `mach_msg` call (8-byte body, a send-once reply right made from the
//! caller's reply port) to a server task that answers each request with an empty reply. Both
//! tasks run on the one CPU, so every call is a round trip through the kernel: the client's
//! send hands the CPU to the waiting server, whose reply-and-receive hands it back.

use alloc::format;

use super::measure::{time_iterations, Failure};
use super::stats::Summary;
use crate::abi::message::{Disposition, ReceivedRight};
use crate::ipc::{
    call, receive, reply_and_receive, send, MessageBuffer, Name, OutMessage, ReceiveRight,
    SendRight, Task,
};
use crate::sys::{self, Forked};

/// The server's first message, carrying a send right to its request port.
pub const ANNOUNCE_ID: u32 = 2000;
/// A request to answer.
pub const REQUEST_ID: u32 = 2001;
/// The last request: answer, then exit with 0.
pub const QUIT_ID: u32 = 2002;
/// A reply's id is its request's plus this (MIG's convention).
pub const REPLY_OFFSET: u32 = 100;

/// How long a set-up message (the server's announcement, its answer to quit) may take.
const SETUP_TIMEOUT_MS: u64 = 10_000;

/// A running null-RPC server task and a send right to its request port.
pub struct NullRpcServer {
    task: Task,
    port: SendRight,
}

impl NullRpcServer {
    /// Spawns `program` with `role` as its second start argument (a program whose `main`
    /// calls [`serve`] for that role) and receives the send right it announces.
    pub fn start(program: &str, role: u64) -> Result<NullRpcServer, Failure> {
        let mut buffer = MessageBuffer::new();
        let rendezvous =
            ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
        let give = rendezvous
            .make_send()
            .map_err(|e| format!("making a send right: {e:?}"))?;
        let task = Task::spawn(program, Some(&give), role)
            .map_err(|e| format!("spawning the null-RPC server: {e:?}"))?;
        drop(give);
        let announced = match receive(rendezvous.name(), &mut buffer, Some(SETUP_TIMEOUT_MS)) {
            Ok(message) if message.id() == ANNOUNCE_ID => message
                .rights()
                .find_map(|(name, kind)| (kind == Some(ReceivedRight::Send)).then_some(name))
                .ok_or_else(|| Failure::from("the server's announcement carried no send right")),
            Ok(message) => Err(format!(
                "the server announced itself with message id {} instead of {ANNOUNCE_ID}",
                message.id()
            )),
            Err(e) => Err(format!("waiting for the server's port: {e:?}")),
        };
        match announced {
            Ok(name) => Ok(NullRpcServer {
                task,
                port: SendRight::from_raw(name),
            }),
            Err(why) => {
                // The kernel shuts down only once every task has exited.
                let _ = task.terminate();
                Err(why)
            }
        }
    }

    /// Times `timed` calls after `warm_up` untimed ones, each on its own.
    pub fn time_calls(&self, warm_up: usize, timed: usize) -> Result<Summary, Failure> {
        let mut buffer = MessageBuffer::new();
        let reply_port =
            ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
        let body = 0x0123_4567_89ab_cdef_u64.to_le_bytes();
        let (server, reply_port_name) = (self.port.name(), reply_port.name());
        time_iterations(warm_up, timed, || {
            // Built for each call, as an interface's client stub builds its request.
            let request = OutMessage::new(REQUEST_ID, server)
                .reply_to(reply_port_name)
                .with_body(&body);
            let reply = call(&request, reply_port_name, &mut buffer, None)
                .map_err(|e| format!("call: {e:?}"))?;
            if reply.id() != REQUEST_ID + REPLY_OFFSET || !reply.body.is_empty() {
                return Err(format!(
                    "wrong reply: id {}, {} body bytes (expected id {}, none)",
                    reply.id(),
                    reply.body.len(),
                    REQUEST_ID + REPLY_OFFSET
                ));
            }
            Ok(())
        })
    }

    /// Asks the server to exit and checks it did so with status 0; on a failure the server
    /// is terminated.
    /// The name of the send right to the server's port (for exchanges of one's own).
    pub fn port(&self) -> Name {
        self.port.name()
    }

    pub fn stop(self) -> Result<(), Failure> {
        let result = self.ask_to_quit();
        if result.is_err() {
            let _ = self.task.terminate();
        }
        result
    }

    fn ask_to_quit(&self) -> Result<(), Failure> {
        let mut buffer = MessageBuffer::new();
        let reply_port =
            ReceiveRight::allocate().map_err(|e| format!("allocating a port: {e:?}"))?;
        let quit = OutMessage::new(QUIT_ID, self.port.name()).reply_to(reply_port.name());
        call(
            &quit,
            reply_port.name(),
            &mut buffer,
            Some(SETUP_TIMEOUT_MS),
        )
        .map_err(|e| format!("asking the server to quit: {e:?}"))?;
        match self.task.wait() {
            Ok(0) => Ok(()),
            Ok(status) => Err(format!("the server exited with status {status}")),
            Err(e) => Err(format!("waiting for the server: {e:?}")),
        }
    }
}

/// The null-RPC server's main: announces its port through `rendezvous`, then answers
/// requests until told to quit. 0 after a quit request, 1 on an error (printed with
/// `program`'s name). Not inlined into a `main`: its message buffer would make every role's
/// first frame as large, and a task that only blocks would touch two more stack pages.
#[inline(never)]
pub fn serve(program: &str, rendezvous: Name) -> i32 {
    match serve_requests(SendRight::from_raw(rendezvous)) {
        Ok(()) => 0,
        Err(why) => {
            crate::println!("{program}: the null-RPC server failed: {why}");
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

/// Waits for the child named by the task port `task`, releases the port, and checks the
/// child exited with 0.
pub fn wait_child(task: u32) -> Result<(), Failure> {
    let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"))?;
    let _ = sys::port_deallocate(task);
    if status != 0 {
        return Err(format!("child exited with {status}"));
    }
    Ok(())
}

/// Fork, the child exits at once, the parent waits for it: `timed` times after `warm_up`.
pub fn fork_exit_wait(warm_up: usize, timed: usize) -> Result<Summary, Failure> {
    time_iterations(warm_up, timed, || {
        match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
            Forked::Child => sys::task_exit(0),
            Forked::Parent(task) => wait_child(task),
        }
    })
}

/// A blocked task's main: moves its send right `ready` back in a message with id `ready_id`
/// and, in the same system call, waits on a port of its own that nobody can send to, so that
/// once the message has arrived the task is blocked. Returns (1, with a line from `program`)
/// only if that receive ends, which it must not. It touches as little memory as a blocked
/// task needs: a small buffer on the stack, no heap.
#[inline(never)]
pub fn block_forever(program: &str, ready: Name, ready_id: u32) -> i32 {
    let port = match ReceiveRight::allocate() {
        Ok(port) => port,
        Err(e) => {
            crate::println!("{program}: a blocked task could not allocate its port: {e:?}");
            return 1;
        }
    };
    #[repr(C, align(16))]
    struct Buffer([u8; 64]);
    let mut buffer = Buffer([0; 64]);
    let message = OutMessage::new(ready_id, ready).to(ready, Disposition::MoveSend);
    let size = match message.encode(&mut buffer.0) {
        Ok(size) => size,
        Err(e) => {
            crate::println!("{program}: a blocked task could not encode its message: {e:?}");
            return 1;
        }
    };
    // SAFETY: the buffer holds the `size` encoded bytes and is writable for its whole length,
    // which is the receive limit.
    let result = unsafe {
        sys::mach_msg(
            buffer.0.as_mut_ptr(),
            crate::abi::message::options::SEND | crate::abi::message::options::RECEIVE,
            size,
            buffer.0.len(),
            port.name(),
            0,
        )
    };
    crate::println!("{program}: a blocked task stopped waiting: {result:?}");
    1
}

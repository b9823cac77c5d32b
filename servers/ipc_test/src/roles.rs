//! The other sides of the test cases: what a child spawned with a role does.

use libipc::abi::message::Disposition;
use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight, SendRight};
use libipc::rt::StartArgs;

pub const RUNNER: u64 = 0;
/// Serves echo requests on a new port (sent back through the given port) until id `QUIT`.
pub const ECHO: u64 = 1;
/// Sends the given port a send right to a new port of its own, then waits forever.
pub const HOLD_RECEIVE: u64 = 2;
/// Exits at once (holding whatever it was given).
pub const EXIT: u64 = 3;
/// Sends back a send right to a new port, receives one message there and exits without
/// answering it.
pub const DROP_REPLY: u64 = 4;
/// Writes to an unmapped address.
pub const CRASH: u64 = 5;
/// Tells the given port (if any) it is ready, then waits forever in receive.
pub const SLEEP: u64 = 6;

/// Spins forever without a system call.
pub const SPIN: u64 = 7;
/// Sends the given port a message with id `HELLO` and exits.
pub const SAY_HELLO: u64 = 8;
/// Fills the kernel heap: makes ports and queues 1 KiB messages on each until the kernel
/// refuses, then exits with 0 (or 2 if it could make nothing).
pub const FILL_HEAP: u64 = 9;

/// Sends the given port a send right to a new port of its own, waits for a message there,
/// then makes ports until the kernel refuses, then regions until the kernel refuses (at most
/// [`MAX_REGIONS_AT_QUOTA`]); reports (id `AT_QUOTA`, body: ports made, the port call's
/// error, the region call's error or 0 at the limit, regions made, as four `u64`) and waits
/// forever.
pub const QUOTA: u64 = 10;
/// The most regions `QUOTA` makes after its ports were refused: the room a refused port
/// leaves holds far fewer.
pub const MAX_REGIONS_AT_QUOTA: u64 = 1_000;
/// Ends its only thread with `thread_exit(THREAD_EXIT_STATUS)`: the task's exit status.
pub const THREAD_EXIT: u64 = 12;
pub const THREAD_EXIT_STATUS: u64 = 7;
/// The message id of `QUOTA`'s report.
pub const AT_QUOTA: u32 = 2;
/// As `QUOTA`, but queues 1 KiB messages on ports of its own (a port, its queue's limit of
/// messages, the next port) until a send is refused; then receives one port's messages and
/// sends once more. Reports (id `QUEUE_REFUSED`, body: messages queued, the refused send's
/// code, the code of the send after the receives, as three `u64`) and waits forever.
pub const QUEUE_QUOTA: u64 = 11;
/// The message id of `QUEUE_QUOTA`'s report.
pub const QUEUE_REFUSED: u32 = 3;

/// The message id that stops an echo server.
pub const QUIT: u32 = 999;
/// The message id of an echo request.
pub const ECHO_REQUEST: u32 = 100;
/// The message id carrying a new port's send right to the parent.
pub const HELLO: u32 = 1;

/// Sends `parent` a send right (made from `port`) with id `HELLO`.
pub fn introduce(parent: u32, port: &ReceiveRight) -> Result<(), ipc::IpcError> {
    let mut buffer = MessageBuffer::new();
    let message = OutMessage::new(HELLO, parent)
        .carry(port.name(), Disposition::MakeSend)
        .map_err(ipc::IpcError::Message)?;
    ipc::send(&message, &mut buffer, None)
}

fn wait_forever(port: &ReceiveRight) -> ! {
    let mut buffer = MessageBuffer::new();
    loop {
        let _ = ipc::receive(port.name(), &mut buffer, None);
    }
}

pub fn play(args: StartArgs) -> i32 {
    let parent = args.arg0 as u32;
    match args.arg1 {
        ECHO => echo(parent),
        HOLD_RECEIVE => {
            let Ok(port) = ReceiveRight::allocate() else {
                return 2;
            };
            if introduce(parent, &port).is_err() {
                return 3;
            }
            wait_forever(&port)
        }
        EXIT => 0,
        DROP_REPLY => {
            let Ok(port) = ReceiveRight::allocate() else {
                return 2;
            };
            if introduce(parent, &port).is_err() {
                return 3;
            }
            let mut buffer = MessageBuffer::new();
            // Receive the request, keep its send-once reply right unanswered, and exit: the
            // kernel destroys the right and the caller gets a send-once notification.
            match ipc::receive(port.name(), &mut buffer, None) {
                Ok(_) => 0,
                Err(_) => 4,
            }
        }
        CRASH => {
            // SAFETY: not safe, on purpose: the write faults and the kernel ends this task.
            unsafe { core::ptr::write_volatile(0xdead_0000 as *mut u64, 1) };
            5
        }
        SLEEP => {
            let Ok(port) = ReceiveRight::allocate() else {
                return 2;
            };
            let mut buffer = MessageBuffer::new();
            if parent != 0 && ipc::send(&OutMessage::new(HELLO, parent), &mut buffer, None).is_err()
            {
                return 3;
            }
            wait_forever(&port)
        }
        SPIN => loop {
            core::hint::spin_loop();
        },
        SAY_HELLO => {
            let mut buffer = MessageBuffer::new();
            match ipc::send(&OutMessage::new(HELLO, parent), &mut buffer, None) {
                Ok(()) => 0,
                Err(_) => 3,
            }
        }
        FILL_HEAP => fill_heap(),
        QUOTA => up_to_quota(parent),
        QUEUE_QUOTA => queue_to_quota(parent),
        THREAD_EXIT => libipc::sys::thread_exit(THREAD_EXIT_STATUS as i32),
        _ => 9,
    }
}

fn fill_heap() -> i32 {
    use libipc::abi::syscall::PORT_KIND_RECEIVE;
    use libipc::sys;
    let mut buffer = MessageBuffer::new();
    let body = [0x5a_u8; 1024];
    let mut made = 0u32;
    'fill: while let Ok(port) = sys::port_allocate(PORT_KIND_RECEIVE) {
        if sys::port_insert_send(port).is_err() {
            break;
        }
        made += 1;
        // The queue's limit, then the next port; a refusal ends the filling (the names,
        // the ports and their messages stay: the kernel must free them at exit).
        // (16: a port's queue limit.)
        for _ in 0..16 {
            let message = OutMessage::new(7, port).with_body(&body);
            if ipc::send(&message, &mut buffer, Some(0)).is_err() {
                break 'fill;
            }
        }
    }
    if made == 0 {
        2
    } else {
        0
    }
}

/// Sends `parent` a send right to a new port of its own and waits there for the word to go
/// on: the port and a buffer, or the exit status saying what failed.
fn wait_for_go(parent: u32) -> Result<(ReceiveRight, MessageBuffer), i32> {
    let port = ReceiveRight::allocate().map_err(|_| 2)?;
    introduce(parent, &port).map_err(|_| 3)?;
    let mut buffer = MessageBuffer::new();
    ipc::receive(port.name(), &mut buffer, None).map_err(|_| 4)?;
    Ok((port, buffer))
}

fn queue_to_quota(parent: u32) -> i32 {
    use libipc::abi::syscall::PORT_KIND_RECEIVE;
    use libipc::sys;
    let (port, mut buffer) = match wait_for_go(parent) {
        Ok(ready) => ready,
        Err(status) => return status,
    };
    let body = [0x5a_u8; 1024];
    let send = |to: u32, buffer: &mut MessageBuffer| match ipc::send(
        &OutMessage::new(7, to).with_body(&body),
        buffer,
        Some(0),
    ) {
        Ok(()) => 0,
        Err(ipc::IpcError::Msg(code)) => code as u64,
        Err(_) => u64::MAX,
    };
    let mut queued = 0u64;
    let mut first = 0;
    let refused = 'fill: loop {
        let Ok(name) = sys::port_allocate(PORT_KIND_RECEIVE) else {
            // The port's own charge ran out first: the messages were never refused.
            break 0;
        };
        if sys::port_insert_send(name).is_err() {
            return 5;
        }
        if first == 0 {
            first = name;
        }
        // (16: a port's queue limit.)
        for _ in 0..16 {
            match send(name, &mut buffer) {
                0 => queued += 1,
                code => break 'fill code,
            }
        }
    };
    // The first port's messages leave their queue: their charge goes, and a send goes again.
    for _ in 0..16 {
        if ipc::receive(first, &mut buffer, Some(0)).is_err() {
            break;
        }
    }
    let again = send(first, &mut buffer);
    let mut report = [0u8; 24];
    report[..8].copy_from_slice(&queued.to_le_bytes());
    report[8..16].copy_from_slice(&refused.to_le_bytes());
    report[16..].copy_from_slice(&again.to_le_bytes());
    if ipc::send(
        &OutMessage::new(QUEUE_REFUSED, parent).with_body(&report),
        &mut buffer,
        None,
    )
    .is_err()
    {
        return 6;
    }
    wait_forever(&port)
}

fn echo(parent: u32) -> i32 {
    let Ok(port) = ReceiveRight::allocate() else {
        return 2;
    };
    if introduce(parent, &port).is_err() {
        return 3;
    }
    // The parent's right is no longer needed.
    drop(SendRight::from_raw(parent));
    let mut buffer = MessageBuffer::new();
    let mut body = [0u8; 256];
    let mut reply: Option<(u32, usize)> = None;
    loop {
        let outgoing = reply.map(|(to, len)| {
            OutMessage::new(ECHO_REQUEST, to)
                .to(to, Disposition::MoveSendOnce)
                .with_body(&body[..len])
        });
        let received = match ipc::reply_and_receive(outgoing.as_ref(), port.name(), &mut buffer) {
            Ok(received) => received,
            Err(_) => return 6,
        };
        if received.id() == QUIT {
            return 0;
        }
        let len = received.body.len().min(body.len());
        body[..len].copy_from_slice(&received.body[..len]);
        reply = received.reply().map(|(name, _)| (name, len));
    }
}

fn up_to_quota(parent: u32) -> i32 {
    use libipc::abi::syscall::{PAGE_SIZE, PORT_KIND_RECEIVE, VM_ANYWHERE};
    use libipc::sys;
    let (port, mut buffer) = match wait_for_go(parent) {
        Ok(ready) => ready,
        Err(status) => return status,
    };
    let mut made = 0u64;
    let port_error = loop {
        match sys::port_allocate(PORT_KIND_RECEIVE) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        if made == 1_000_000 {
            return 5;
        }
    };
    // What the refused port would have cost may leave room for a few regions, which cost
    // less: make them until refused too.
    let mut regions = 0u64;
    let region_error = loop {
        match sys::vm_allocate(0, PAGE_SIZE, VM_ANYWHERE) {
            Ok(_) => regions += 1,
            Err(e) => break e as u64,
        }
        if regions == MAX_REGIONS_AT_QUOTA {
            break 0;
        }
    };
    let mut body = [0u8; 32];
    body[..8].copy_from_slice(&made.to_le_bytes());
    body[8..16].copy_from_slice(&(port_error as u64).to_le_bytes());
    body[16..24].copy_from_slice(&region_error.to_le_bytes());
    body[24..].copy_from_slice(&regions.to_le_bytes());
    if ipc::send(
        &OutMessage::new(AT_QUOTA, parent).with_body(&body),
        &mut buffer,
        None,
    )
    .is_err()
    {
        return 6;
    }
    wait_forever(&port)
}

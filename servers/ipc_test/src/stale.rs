//! A port destroyed while another task still names it: that task's next call fails as a
//! call to a dead name. The IPC fast path keeps each port's record beside the name that
//! resolved to it (the kernel's `PortHint`), and once the port is gone a new one may stand
//! where its record was: the hint must not reach it.

use crate::cases::{check, err};
use alloc::format;
use alloc::string::String;
use libipc::abi::message::{Disposition, MsgReturn, ReceivedRight};
use libipc::ipc::{self, IpcError, MessageBuffer, OutMessage, ReceiveRight};
use libipc::sys;

/// The calls [`renewing_server`] answers (with the id plus [`REPLY`]) until [`RENEW`].
const CALL: u32 = 60;
/// Answered like [`CALL`]; then the server destroys its port, makes a new one and says
/// [`RENEWED`] on the rendezvous port.
const RENEW: u32 = 61;
const RENEWED: u32 = 62;
/// What the server answers a call that reaches its new port (no task holds a right to it).
const WRONG: u32 = 63;
const REPLY: u32 = 100;
/// Calls made before the port goes, so that the caller's names and their hints are in use.
const CALLS: u32 = 5;

/// The server in a forked child: sends the parent a send right to a new port through
/// `rendezvous`, answers calls there until [`RENEW`], destroys the port, makes another and
/// waits there (in registers, as the fast path hands calls over) for a call that must never
/// come: it answers one with [`WRONG`] and exits with 1. The parent ends it otherwise.
fn renewing_server(rendezvous: u32) -> ! {
    let mut buffer = MessageBuffer::new();
    let Ok(first) = ReceiveRight::allocate() else {
        sys::task_exit(2)
    };
    if crate::roles::introduce(rendezvous, &first).is_err() {
        sys::task_exit(3)
    }
    let mut owed: Option<(u32, u32)> = None;
    loop {
        let reply =
            owed.map(|(id, to)| OutMessage::new(id + REPLY, to).to(to, Disposition::MoveSendOnce));
        let Ok(request) = ipc::reply_and_receive(reply.as_ref(), first.name(), &mut buffer) else {
            sys::task_exit(5)
        };
        let (id, Some((to, ReceivedRight::SendOnce))) = (request.id(), request.reply()) else {
            sys::task_exit(6)
        };
        if id == RENEW {
            let reply = OutMessage::new(id + REPLY, to).to(to, Disposition::MoveSendOnce);
            if ipc::send(&reply, &mut buffer, Some(5_000)).is_err() {
                sys::task_exit(7)
            }
            break;
        }
        owed = Some((id, to));
    }
    drop(first);
    let Ok(second) = ReceiveRight::allocate() else {
        sys::task_exit(8)
    };
    if ipc::send(
        &OutMessage::new(RENEWED, rendezvous),
        &mut buffer,
        Some(5_000),
    )
    .is_err()
    {
        sys::task_exit(9)
    }
    if let Ok(request) = ipc::reply_and_receive(None, second.name(), &mut buffer) {
        if let Some((to, ReceivedRight::SendOnce)) = request.reply() {
            let reply = OutMessage::new(WRONG, to).to(to, Disposition::MoveSendOnce);
            let _ = ipc::send(&reply, &mut buffer, Some(5_000));
        }
    }
    sys::task_exit(1)
}

/// Calls a server's port through the fast path until the server destroys it and makes a new
/// one, then calls the old name again: a dead name, not the new port.
pub fn a_call_to_a_destroyed_port_never_reaches_the_port_made_after_it() -> Result<(), String> {
    let rendezvous = ReceiveRight::allocate().map_err(err("a port"))?;
    let give = rendezvous.make_send().map_err(err("a send right"))?;
    let child = match sys::task_fork().map_err(err("fork"))? {
        sys::Forked::Child => renewing_server(give.name()),
        sys::Forked::Parent(child) => child,
    };
    let result = call_through_the_renewal(&rendezvous);
    // The server waits forever unless the stale call reached it.
    let _ = sys::task_terminate(child);
    let status = sys::task_wait(child).map_err(err("wait"));
    let _ = sys::port_deallocate(child);
    result?;
    let status = status?;
    check!(
        status != 1,
        "the server's new port received a call (the server exited with 1)"
    );
    Ok(())
}

fn call_through_the_renewal(rendezvous: &ReceiveRight) -> Result<(), String> {
    let mut buffer = MessageBuffer::new();
    let server = crate::cases::introduced_port(rendezvous)?;
    let reply_port = ReceiveRight::allocate().map_err(err("a reply port"))?;
    let call = |id: u32, buffer: &mut MessageBuffer| {
        let request = OutMessage::new(id, server).reply_to(reply_port.name());
        ipc::call(&request, reply_port.name(), buffer, None).map(|reply| reply.id())
    };
    for _ in 0..CALLS {
        let id = call(CALL, &mut buffer).map_err(err("a call"))?;
        check!(id == CALL + REPLY, "a call came back with id {id}");
    }
    let id = call(RENEW, &mut buffer).map_err(err("the last call"))?;
    check!(id == RENEW + REPLY, "the last call came back with id {id}");
    let renewed = ipc::receive(rendezvous.name(), &mut buffer, Some(5_000))
        .map_err(err("the server's renewal"))?;
    check!(
        renewed.id() == RENEWED,
        "the server said {} after the renewal",
        renewed.id()
    );
    // The port is gone: the same call again fails as a call to a dead name.
    match call(CALL, &mut buffer) {
        Err(IpcError::Msg(MsgReturn::SendInvalidDest)) => Ok(()),
        Ok(id) => Err(format!(
            "a call to the destroyed port was answered with id {id} ({WRONG}: by the port made \
             after it)"
        )),
        Err(other) => Err(format!(
            "a call to the destroyed port failed with {other:?}"
        )),
    }
}

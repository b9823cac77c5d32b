//! Calls a server holds and answers out of order: the reply slot taken by the first, the
//! second's reply right named anew, each name used up by its answer.

use crate::cases::{check, err};
use alloc::format;
use alloc::string::String;
use libipc::abi::message::{Disposition, ReceivedRight};
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;
use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight};
use libipc::sys;

/// A call from [`held_caller`]: its id is this plus the caller's index; the reply's id is
/// [`HELD_REPLY`] more, and the caller's report afterwards [`HELD_DONE`] more.
const HELD_CALL: u32 = 50;
const HELD_REPLY: u32 = 100;
const HELD_DONE: u32 = 200;

/// A caller in a forked child: calls the server (`server`, a send right's name the child got
/// from the fork), checks the reply is its own, and reports to the server (body a `u32`, 0:
/// the right reply came; 1: not).
fn held_caller(server: u32, index: u32) -> ! {
    let mut buffer = MessageBuffer::new();
    let good = match ReceiveRight::allocate() {
        Ok(reply_port) => {
            let request = OutMessage::new(HELD_CALL + index, server).reply_to(reply_port.name());
            ipc::call(&request, reply_port.name(), &mut buffer, Some(5_000))
                .is_ok_and(|reply| reply.id() == HELD_CALL + index + HELD_REPLY)
        }
        Err(_) => false,
    };
    let status = u32::from(!good).to_le_bytes();
    let said = ipc::send(
        &OutMessage::new(HELD_DONE + index, server).with_body(&status),
        &mut buffer,
        Some(5_000),
    );
    sys::task_exit(i32::from(!good || said.is_err()))
}

/// A server holding two calls at once (from two other tasks, so the fast path may carry
/// them) answers them in the other order: the first call's reply right is in the server's
/// reply slot when the second comes, so the second's gets a name of its own; each answer
/// uses its right up (neither name is left to the server), and each caller gets its own
/// answer.
pub fn two_calls_held_and_answered_in_the_other_order() -> Result<(), String> {
    let server = ReceiveRight::allocate().map_err(err("a port"))?;
    let give = server.make_send().map_err(err("a send right"))?;
    let mut children = alloc::vec::Vec::new();
    for index in 0..2 {
        match sys::task_fork().map_err(err("fork"))? {
            sys::Forked::Child => held_caller(give.name(), index),
            sys::Forked::Parent(child) => children.push(child),
        }
    }
    let mut buffer = MessageBuffer::new();
    let mut held = alloc::vec::Vec::new();
    for _ in 0..2 {
        let request =
            ipc::receive(server.name(), &mut buffer, Some(5_000)).map_err(err("receive a call"))?;
        let Some((to, ReceivedRight::SendOnce)) = request.reply() else {
            return Err(format!("call {} came without a reply right", request.id()));
        };
        held.push((request.id(), to));
    }
    check!(
        held[0].1 != held[1].1,
        "both calls' reply rights are named {:#x}",
        held[0].1
    );
    // The second first, waiting for its caller's report in the same call.
    for &(id, to) in held.iter().rev() {
        let reply = OutMessage::new(id + HELD_REPLY, to).to(to, Disposition::MoveSendOnce);
        let report = ipc::reply_and_receive(Some(&reply), server.name(), &mut buffer)
            .map_err(err("reply and receive"))?;
        check!(
            report.id() == id - HELD_CALL + HELD_DONE && report.body == [0; 4],
            "the caller of {id} reported {} with {:?}, not {} with 0 (its own reply)",
            report.id(),
            report.body,
            id - HELD_CALL + HELD_DONE
        );
        let left = sys::port_get_refs(to, RIGHT_SEND_ONCE);
        check!(
            left == Err(KernReturn::InvalidName),
            "after the answer to {id}, its reply right's name {to:#x} holds {left:?}"
        );
    }
    for child in children {
        let status = sys::task_wait(child).map_err(err("wait"))?;
        let _ = sys::port_deallocate(child);
        check!(status == 0, "a caller exited with {status}");
    }
    Ok(())
}

/// The server in [`a_call_whose_reply_goes_to_another_port`]: sends the parent a send right
/// to a new port through `rendezvous`, takes one call there, says [`NOTE`] on `note` (the
/// port the caller receives on) and answers the call's reply right; exits with 0, or the
/// step that failed.
fn noting_server(rendezvous: u32, note: u32) -> ! {
    let mut buffer = MessageBuffer::new();
    let Ok(port) = ReceiveRight::allocate() else {
        sys::task_exit(2)
    };
    if crate::roles::introduce(rendezvous, &port).is_err() {
        sys::task_exit(3)
    }
    let Ok(request) = ipc::reply_and_receive(None, port.name(), &mut buffer) else {
        sys::task_exit(5)
    };
    let (id, Some((to, ReceivedRight::SendOnce))) = (request.id(), request.reply()) else {
        sys::task_exit(6)
    };
    if ipc::send(&OutMessage::new(NOTE, note), &mut buffer, Some(5_000)).is_err() {
        sys::task_exit(7)
    }
    let reply = OutMessage::new(id + HELD_REPLY, to).to(to, Disposition::MoveSendOnce);
    if ipc::send(&reply, &mut buffer, Some(5_000)).is_err() {
        sys::task_exit(8)
    }
    sys::task_exit(0)
}

/// The id of [`noting_server`]'s messages but its answer.
const NOTE: u32 = 70;

/// A call (send and receive in one system call, in registers, no timeout: the usual call's
/// shape) whose reply right is made from another port than the one it receives on: the
/// answer goes to that other port, and the receive gets what comes to its own.
pub fn a_call_whose_reply_goes_to_another_port() -> Result<(), String> {
    let rendezvous = ReceiveRight::allocate().map_err(err("a port"))?;
    let give = rendezvous.make_send().map_err(err("a send right"))?;
    let own = ReceiveRight::allocate().map_err(err("a port"))?;
    let note = own.make_send().map_err(err("a send right"))?;
    let child = match sys::task_fork().map_err(err("fork"))? {
        sys::Forked::Child => noting_server(give.name(), note.name()),
        sys::Forked::Parent(child) => child,
    };
    let result = call_with_another_reply_port(&rendezvous, &own);
    if result.is_err() {
        let _ = sys::task_terminate(child);
    }
    let status = sys::task_wait(child).map_err(err("wait"));
    let _ = sys::port_deallocate(child);
    result?;
    let status = status?;
    check!(status == 0, "the server exited with {status}");
    Ok(())
}

fn call_with_another_reply_port(
    rendezvous: &ReceiveRight,
    own: &ReceiveRight,
) -> Result<(), String> {
    let mut buffer = MessageBuffer::new();
    let server = crate::cases::introduced_port(rendezvous)?;
    let other = ReceiveRight::allocate().map_err(err("a reply port"))?;
    let request = OutMessage::new(HELD_CALL, server).reply_to(other.name());
    let got = ipc::call(&request, own.name(), &mut buffer, None)
        .map_err(err("the call"))?
        .id();
    check!(
        got == NOTE,
        "the call's receive got {got}, not the note ({NOTE}) sent to its own port"
    );
    let reply = ipc::receive(other.name(), &mut buffer, Some(5_000))
        .map_err(err("the answer on the reply port"))?;
    check!(
        reply.id() == HELD_CALL + HELD_REPLY,
        "the reply port got {}, not the answer {}",
        reply.id(),
        HELD_CALL + HELD_REPLY
    );
    let left = ipc::receive(own.name(), &mut buffer, Some(0));
    check!(left.is_err(), "the call's own port got a second message");
    Ok(())
}

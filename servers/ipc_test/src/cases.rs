//! The test cases: each returns `Err(why)` on failure.

use crate::roles;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libipc::abi::message::{notify, Disposition, MsgReturn, ReceivedRight};
use libipc::abi::syscall::*;
use libipc::ipc::{
    self, IpcError, MessageBuffer, OutMessage, PortSet, ReceiveRight, SendRight, Task,
};
use libipc::sys;

pub use libipc::rt::selftest::Case;

pub const ALL: &[(&str, Case)] = &[
    ("rpc_echo", rpc_echo),
    ("short_messages_in_registers", short_messages_in_registers),
    ("rights_and_reference_counts", rights_and_reference_counts),
    ("port_sets", port_sets),
    ("timeouts", timeouts),
    (
        "waits_cut_short_leave_no_timers",
        waits_cut_short_leave_no_timers,
    ),
    ("dead_name_notification", dead_name_notification),
    ("no_senders_notification", no_senders_notification),
    ("send_once_notification", send_once_notification),
    ("hostile_messages", crate::hostile::hostile_messages),
    ("hostile_calls", crate::hostile::hostile_calls),
    (
        "threads_start_and_end_on_their_own",
        crate::threads::threads_start_and_end_on_their_own,
    ),
    (
        "two_calls_held_and_answered_in_the_other_order",
        crate::held::two_calls_held_and_answered_in_the_other_order,
    ),
    (
        "a_call_whose_reply_goes_to_another_port",
        crate::held::a_call_whose_reply_goes_to_another_port,
    ),
    (
        "a_call_to_a_destroyed_port_never_reaches_the_port_made_after_it",
        crate::stale::a_call_to_a_destroyed_port_never_reaches_the_port_made_after_it,
    ),
    ("faulting_task_is_isolated", faulting_task_is_isolated),
    (
        "a_system_call_at_the_top_of_user_space_ends_only_its_task",
        crate::hostile::a_system_call_at_the_top_of_user_space_ends_only_its_task,
    ),
    (
        "a_system_call_after_a_fault_returns_through_sysret",
        crate::hostile::a_system_call_after_a_fault_returns_through_sysret,
    ),
    ("priorities", priorities),
    ("preemption", preemption),
    ("create_terminate_cycles", create_terminate_cycles),
    (
        "ten_thousand_blocked_receivers",
        ten_thousand_blocked_receivers,
    ),
    (
        "collocated_servers_start_refuse_and_leave_nothing",
        collocated_servers_start_refuse_and_leave_nothing,
    ),
];

/// The host port, which the first task gets (set by `main`).
pub static HOST_PORT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// `task_spawn_collocated` refuses what it must (no host port, a server not linked in, a
/// bad name or right to give) and changes nothing then; a collocated server started, called
/// and ended 20 times leaves no task, port, heap or frame behind.
fn collocated_servers_start_refuse_and_leave_nothing() -> Result<(), String> {
    use core::sync::atomic::Ordering;
    let host_port = HOST_PORT.load(Ordering::Relaxed);
    let port = ReceiveRight::allocate().map_err(err("port"))?;
    let send = port.make_send().map_err(err("send right"))?;
    let census = || {
        (
            host(HOST_TASKS),
            host(HOST_PORTS),
            host(HOST_HEAP_BYTES),
            host(HOST_FREE_FRAMES),
        )
    };
    let before = census();
    let refusals: [(&str, u32, &str, u32, KernReturn); 5] = [
        (
            "no host port",
            send.name(),
            "echo",
            0,
            KernReturn::InvalidRight,
        ),
        (
            "no name at all",
            0x7777_0000,
            "echo",
            0,
            KernReturn::InvalidName,
        ),
        (
            "a server not linked in",
            host_port,
            "hello",
            0,
            KernReturn::InvalidArgument,
        ),
        (
            "an empty name",
            host_port,
            "",
            0,
            KernReturn::InvalidArgument,
        ),
        (
            "a right to give that is none",
            host_port,
            "echo",
            0x7777_0000,
            KernReturn::InvalidName,
        ),
    ];
    for (what, host_name, server, give, want) in refusals {
        let got = sys::task_spawn_collocated(host_name, server, give, 0);
        check!(got == Err(want), "{what}: {got:?}, not {want:?}");
    }
    check!(
        census() == before,
        "the refusals changed {before:?} to {:?}",
        census()
    );
    let round = || -> Result<(), String> {
        for _ in 0..20 {
            let (task, service) = sys::task_spawn_collocated(host_port, "echo", send.name(), 0)
                .map_err(err("task_spawn_collocated"))?;
            let (task, service) = (
                Task::from_port(SendRight::from_raw(task)),
                SendRight::from_raw(service),
            );
            // A null call (`echo`'s first routine, no arguments), answered at once.
            let reply_port = ReceiveRight::allocate().map_err(err("reply port"))?;
            let mut buffer = MessageBuffer::new();
            let request = OutMessage::new(echo::service::ids::null, service.name())
                .reply_to(reply_port.name())
                .with_body(&[0u8; libipc::interface::LENGTH_PREFIX]);
            let reply = ipc::call(&request, reply_port.name(), &mut buffer, Some(1000))
                .map_err(|e| format!("call: {e:?}"))?;
            check!(
                reply.id() == libipc::interface::reply_id(echo::service::ids::null),
                "reply id {}",
                reply.id()
            );
            task.terminate().map_err(err("terminate"))?;
            check!(
                task.wait() == Ok(u64::MAX),
                "the ended server's status: {:?}",
                task.wait()
            );
        }
        Ok(())
    };
    // A first round fills what the kernel keeps for reuse; a second must add nothing.
    round()?;
    let warm = census();
    round()?;
    let after = census();
    check!(
        after.0 == warm.0 && after.1 == warm.1,
        "tasks and ports: {warm:?} after a first round, {after:?} after a second"
    );
    check!(
        after.2 <= warm.2 + 1024 && after.3 + 4 >= warm.3,
        "heap bytes and free frames: {warm:?} after a first round, {after:?} after a second"
    );
    Ok(())
}

/// Run with little memory: exhausting it must be an error for the asker only.
pub const EXHAUSTION: &[(&str, Case)] = &[
    ("memory_exhaustion", memory_exhaustion),
    (
        "a_task_at_its_quota_gets_errors_and_others_go_on",
        a_task_at_its_quota_gets_errors_and_others_go_on,
    ),
    (
        "messages_a_task_queues_count_against_its_quota",
        messages_a_task_queues_count_against_its_quota,
    ),
    (
        "a_task_that_fills_the_kernel_heap_gives_it_all_back",
        a_task_that_fills_the_kernel_heap_gives_it_all_back,
    ),
];

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}
pub(crate) use check;

pub fn err<E: core::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

fn host(selector: u64) -> u64 {
    sys::host_info(selector).unwrap_or(u64::MAX)
}

/// Spawns this program in `role`, giving it a send right to a new port, and returns the task,
/// the port, and the send right the child sent back if `introduces`.
fn spawn_role(
    role: u64,
    introduces: bool,
) -> Result<(Task, ReceiveRight, Option<SendRight>), String> {
    let rendezvous = ReceiveRight::allocate().map_err(err("allocate"))?;
    let give = rendezvous.make_send().map_err(err("make send"))?;
    let task = Task::spawn("ipc_test", Some(&give), role).map_err(err("spawn"))?;
    drop(give);
    if !introduces {
        return Ok((task, rendezvous, None));
    }
    let name = introduced_port(&rendezvous)?;
    Ok((task, rendezvous, Some(SendRight::from_raw(name))))
}

/// The name of the send right a child sent on `rendezvous` (`roles::introduce`).
pub fn introduced_port(rendezvous: &ReceiveRight) -> Result<u32, String> {
    let mut buffer = MessageBuffer::new();
    let hello = ipc::receive(rendezvous.name(), &mut buffer, Some(5000))
        .map_err(err("hello from child"))?;
    check!(hello.id() == roles::HELLO, "hello has id {}", hello.id());
    let (name, kind) = hello.rights().next().ok_or("hello carries no right")?;
    check!(kind == Some(ReceivedRight::Send), "hello carries {kind:?}");
    Ok(name)
}

fn rpc_echo() -> Result<(), String> {
    let (task, _rendezvous, server) = spawn_role(roles::ECHO, true)?;
    let server = server.expect("introduced");
    let reply_port = ReceiveRight::allocate().map_err(err("reply port"))?;
    let mut buffer = MessageBuffer::new();
    for i in 0..100u32 {
        let body = format!("ping {i}");
        let request = OutMessage::new(roles::ECHO_REQUEST, server.name())
            .reply_to(reply_port.name())
            .with_body(body.as_bytes());
        let reply =
            ipc::call(&request, reply_port.name(), &mut buffer, Some(5000)).map_err(err("call"))?;
        check!(
            &reply.body[..body.len()] == body.as_bytes(),
            "reply {i} is {:?}",
            &reply.body[..body.len()]
        );
        check!(
            reply.header.local_port == reply_port.name(),
            "reply arrived on {:#x}",
            reply.header.local_port
        );
    }
    stop_echo(&task, &server, &mut buffer)
}

/// A short message sent in registers (`options::SEND_REGISTERS`) by a raw `mach_msg`: the
/// result and the four words that came back (the received message, when it came there).
fn raw_register_call(
    buffer: &mut MessageBuffer,
    option: u64,
    size: usize,
    receive_name: u32,
    words: [u64; 4],
) -> (sys::SyscallResult, [u64; 4]) {
    let mut words = words;
    // SAFETY: the buffer is ours and the kernel writes at most its length into it.
    let result = unsafe {
        sys::mach_msg_registers(
            buffer.0.as_mut_ptr(),
            option,
            size,
            buffer.0.len(),
            receive_name,
            5000,
            &mut words,
        )
    };
    (result, words)
}

/// Short messages in registers: queued when no one waits and received into the buffer as any
/// other (the general path), handed over register to register to a server waiting with
/// `RECEIVE_REGISTERS` (the fast path), refused when larger than registers hold.
fn short_messages_in_registers() -> Result<(), String> {
    use libipc::abi::message::{options, registers, MessageHeader, HEADER_SIZE};
    let port = ReceiveRight::allocate().map_err(err("allocate"))?;
    let send = port.make_send().map_err(err("make send"))?;
    let mut buffer = MessageBuffer::new();
    let body: [u8; 12] = core::array::from_fn(|i| 0xa0 + i as u8);
    let header = |id| MessageHeader {
        bits: MessageHeader::bits(Disposition::CopySend, None, false),
        size: 0,
        remote_port: send.name(),
        local_port: 0,
        voucher: 0,
        id,
    };
    let size = HEADER_SIZE + body.len();
    // Queued (nobody receives yet), then received by a receive that takes no registers and
    // by one that does: both find it in the buffer.
    for (id, receive_option) in [(41, options::RECEIVE), (42, options::RECEIVE_REGISTERS)] {
        let words = registers::pack(&header(id), &body);
        let (r, _) = raw_register_call(
            &mut buffer,
            options::SEND | options::SEND_REGISTERS | options::SEND_TIMEOUT,
            size,
            0,
            words,
        );
        check!(r.code == 0, "register send {id}: {:#x}", r.code);
        buffer.0[..64].fill(0xee);
        let (r, _) = raw_register_call(
            &mut buffer,
            options::RECEIVE | options::RECEIVE_TIMEOUT | receive_option,
            0,
            port.name(),
            [0; 4],
        );
        check!(r.code == 0, "receive {id}: {:#x}", r.code);
        check!(
            r.value == size as u64,
            "a queued message comes into the buffer ({:#x} bytes)",
            r.value
        );
        let received = ipc::Received::parse(&buffer.0, size).map_err(err("parse"))?;
        check!(
            received.id() == id && received.body == body && received.header.size == size as u32,
            "received {:?} with body {:?}",
            received.header,
            received.body
        );
    }
    // Larger than the registers hold.
    let (r, _) = raw_register_call(
        &mut buffer,
        options::SEND | options::SEND_REGISTERS | options::SEND_TIMEOUT,
        registers::MAX_SIZE + 4,
        0,
        registers::pack(&header(43), &body),
    );
    check!(
        r.code == MsgReturn::SendTooLarge as u64,
        "a register send of {} bytes: {:#x}",
        registers::MAX_SIZE + 4,
        r.code
    );

    // Calls to an echo server waiting in `reply_and_receive` (which takes registers): once it
    // waits, request and reply go register to register. Every reply is checked either way.
    let (task, _rendezvous, server) = spawn_role(roles::ECHO, true)?;
    let server = server.expect("introduced");
    let reply_port = ReceiveRight::allocate().map_err(err("reply port"))?;
    let request = MessageHeader {
        bits: MessageHeader::bits(
            Disposition::CopySend,
            Some(Disposition::MakeSendOnce),
            false,
        ),
        size: 0,
        remote_port: server.name(),
        local_port: reply_port.name(),
        voucher: 0,
        id: roles::ECHO_REQUEST,
    };
    let mut in_registers = 0;
    for i in 0..20u8 {
        let body: [u8; 16] = core::array::from_fn(|j| i.wrapping_mul(16) + j as u8);
        let (r, words) = raw_register_call(
            &mut buffer,
            options::SEND
                | options::RECEIVE
                | options::SEND_REGISTERS
                | options::RECEIVE_REGISTERS
                | options::RECEIVE_TIMEOUT,
            HEADER_SIZE + 16,
            reply_port.name(),
            registers::pack(&request, &body),
        );
        check!(r.code == 0, "call {i}: {:#x}", r.code);
        let size = (r.value & !registers::IN_REGISTERS) as usize;
        let bytes;
        let reply = if r.value & registers::IN_REGISTERS != 0 {
            in_registers += 1;
            bytes = registers::to_bytes(&words, size as u32);
            ipc::Received::parse(&bytes, size)
        } else {
            ipc::Received::parse(&buffer.0, size)
        }
        .map_err(err("parse reply"))?;
        check!(
            reply.body == body && reply.header.local_port == reply_port.name(),
            "reply {i}: {:?}, body {:?}",
            reply.header,
            reply.body
        );
    }
    check!(
        in_registers > 0,
        "no reply came in registers from a server waiting for requests"
    );
    // Bad sizes while the server waits (where the fast path is tried first): refused, and
    // nothing reaches the server (the next call is answered as usual).
    let call_options =
        options::SEND | options::RECEIVE | options::RECEIVE_REGISTERS | options::RECEIVE_TIMEOUT;
    for (size, in_registers, expected) in [
        (HEADER_SIZE + 2, true, MsgReturn::SendMsgTooSmall),
        (HEADER_SIZE - 4, true, MsgReturn::SendMsgTooSmall),
        (registers::MAX_SIZE + 4, true, MsgReturn::SendTooLarge),
        (HEADER_SIZE + 6, false, MsgReturn::SendMsgTooSmall),
    ] {
        let option = if in_registers {
            call_options | options::SEND_REGISTERS
        } else {
            buffer.0[..HEADER_SIZE].copy_from_slice(&request.to_bytes());
            call_options
        };
        let (r, _) = raw_register_call(
            &mut buffer,
            option,
            size,
            reply_port.name(),
            registers::pack(&request, &[]),
        );
        check!(
            r.code == expected as u64,
            "a call of {size} bytes (in registers: {in_registers}): {:#x}",
            r.code
        );
    }
    let (r, _) = raw_register_call(
        &mut buffer,
        call_options | options::SEND_REGISTERS,
        HEADER_SIZE,
        reply_port.name(),
        registers::pack(&request, &[]),
    );
    check!(r.code == 0, "a call after the refused ones: {:#x}", r.code);
    stop_echo(&task, &server, &mut buffer)
}

/// Tells an echo server to quit and checks it exited with 0.
fn stop_echo(task: &Task, server: &SendRight, buffer: &mut MessageBuffer) -> Result<(), String> {
    ipc::send(&OutMessage::new(roles::QUIT, server.name()), buffer, None).map_err(err("quit"))?;
    let status = task.wait().map_err(err("wait"))?;
    check!(status == 0, "echo server exited with {status}");
    Ok(())
}

fn refs(name: u32, right: u64) -> Result<u32, String> {
    sys::port_get_refs(name, right).map_err(err("get refs"))
}

fn rights_and_reference_counts() -> Result<(), String> {
    let port = ReceiveRight::allocate().map_err(err("allocate"))?;
    let n = port.name();
    check!(
        refs(n, RIGHT_RECEIVE)? == 1 && refs(n, RIGHT_SEND)? == 0,
        "fresh port has wrong rights"
    );
    let a = port.make_send().map_err(err("make send"))?;
    let b = port.make_send().map_err(err("make send"))?;
    check!(
        a.name() == n && b.name() == n,
        "send rights for one port get one name"
    );
    check!(
        refs(n, RIGHT_SEND)? == 2,
        "two send rights, {} references",
        refs(n, RIGHT_SEND)?
    );
    drop(b);
    check!(
        refs(n, RIGHT_SEND)? == 1,
        "after drop: {} references",
        refs(n, RIGHT_SEND)?
    );
    // A copy of the send right sent to the port itself comes back merged under the same name.
    let mut buffer = MessageBuffer::new();
    let m = OutMessage::new(7, n)
        .carry(n, Disposition::CopySend)
        .map_err(err("carry"))?;
    ipc::send(&m, &mut buffer, None).map_err(err("send"))?;
    check!(
        refs(n, RIGHT_SEND)? == 1,
        "sending a copy changed the count"
    );
    let got = ipc::receive(n, &mut buffer, Some(1000)).map_err(err("receive"))?;
    let (name, kind) = got.rights().next().ok_or("no right received")?;
    check!(
        name == n && kind == Some(ReceivedRight::Send),
        "received {name:#x} {kind:?}"
    );
    check!(
        refs(n, RIGHT_SEND)? == 2,
        "received copy did not merge: {}",
        refs(n, RIGHT_SEND)?
    );
    // Moving a send right away and back.
    let m = OutMessage::new(8, n)
        .carry(n, Disposition::MoveSend)
        .map_err(err("carry"))?;
    ipc::send(&m, &mut buffer, None).map_err(err("send move"))?;
    check!(refs(n, RIGHT_SEND)? == 1, "move did not take a reference");
    ipc::receive(n, &mut buffer, Some(1000)).map_err(err("receive move"))?;
    check!(refs(n, RIGHT_SEND)? == 2, "moved right did not come back");
    // A send-once right has its own name; moving the receive right to another port and back.
    let other = ReceiveRight::allocate().map_err(err("allocate"))?;
    let m = OutMessage::new(9, n)
        .carry(other.name(), Disposition::MakeSendOnce)
        .map_err(err("carry"))?;
    ipc::send(&m, &mut buffer, None).map_err(err("send once"))?;
    let got = ipc::receive(n, &mut buffer, Some(1000)).map_err(err("receive once"))?;
    let (once, kind) = got.rights().next().ok_or("no send-once right")?;
    check!(
        kind == Some(ReceivedRight::SendOnce) && once != other.name(),
        "send-once came as {once:#x} {kind:?}"
    );
    check!(refs(once, RIGHT_SEND_ONCE)? == 1, "send-once count");
    sys::port_deallocate(once).map_err(err("deallocate send-once"))?;
    // The send-once right destroyed unused: `other` gets a send-once notification.
    let note = ipc::receive(other.name(), &mut buffer, Some(1000))
        .map_err(err("send-once notification"))?;
    check!(
        note.id() == notify::SEND_ONCE,
        "notification id {}",
        note.id()
    );
    let other_name = other.into_raw();
    let m = OutMessage::new(10, n)
        .carry(other_name, Disposition::MoveReceive)
        .map_err(err("carry"))?;
    ipc::send(&m, &mut buffer, None).map_err(err("send receive right"))?;
    check!(
        sys::port_get_refs(other_name, RIGHT_RECEIVE) == Err(KernReturn::InvalidName),
        "receive right stayed"
    );
    let got = ipc::receive(n, &mut buffer, Some(1000)).map_err(err("receive receive right"))?;
    let (back, kind) = got.rights().next().ok_or("no receive right")?;
    check!(
        kind == Some(ReceivedRight::Receive),
        "came back as {kind:?}"
    );
    drop(ReceiveRight::from_raw(back));
    drop(a);
    sys::port_deallocate(n).map_err(err("drop merged send"))?;
    drop(port);
    check!(
        sys::port_get_refs(n, RIGHT_RECEIVE) == Err(KernReturn::InvalidName),
        "name survived destroy"
    );
    Ok(())
}

use libipc::abi::KernReturn;

fn port_sets() -> Result<(), String> {
    let set = PortSet::allocate().map_err(err("set"))?;
    let a = ReceiveRight::allocate().map_err(err("a"))?;
    let b = ReceiveRight::allocate().map_err(err("b"))?;
    let mut buffer = MessageBuffer::new();
    // Queued before `a` joins the set: still received through it.
    let sa = a.make_send().map_err(err("send a"))?;
    ipc::send(&OutMessage::new(1, sa.name()), &mut buffer, None).map_err(err("send 1"))?;
    set.insert(&a).map_err(err("insert a"))?;
    set.insert(&b).map_err(err("insert b"))?;
    let sb = b.make_send().map_err(err("send b"))?;
    ipc::send(&OutMessage::new(2, sb.name()), &mut buffer, None).map_err(err("send 2"))?;
    ipc::send(&OutMessage::new(3, sb.name()), &mut buffer, None).map_err(err("send 3"))?;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m =
            ipc::receive(set.name(), &mut buffer, Some(1000)).map_err(err("receive from set"))?;
        seen.push((m.id(), m.header.local_port));
    }
    seen.sort();
    check!(
        seen == [(1, a.name()), (2, b.name()), (3, b.name())],
        "received {seen:x?}"
    );
    let empty = ipc::receive(set.name(), &mut buffer, Some(0));
    check!(empty.is_err(), "empty set gave a message");
    // A member's own receive still works; removal from the set too.
    PortSet::remove(&a).map_err(err("remove"))?;
    ipc::send(&OutMessage::new(4, sa.name()), &mut buffer, None).map_err(err("send 4"))?;
    check!(
        ipc::receive(set.name(), &mut buffer, Some(0)).is_err(),
        "removed member still feeds the set"
    );
    let m = ipc::receive(a.name(), &mut buffer, Some(0)).map_err(err("receive a"))?;
    check!(m.id() == 4, "got id {}", m.id());
    Ok(())
}

fn timeouts() -> Result<(), String> {
    let port = ReceiveRight::allocate().map_err(err("allocate"))?;
    let mut buffer = MessageBuffer::new();
    let r = ipc::receive(port.name(), &mut buffer, Some(0));
    check!(
        matches!(r, Err(IpcError::Msg(MsgReturn::RcvTimedOut))),
        "zero timeout: {:?}",
        r.map(|m| m.id())
    );
    let before = host(HOST_TICKS);
    let r = ipc::receive(port.name(), &mut buffer, Some(50));
    check!(
        matches!(r, Err(IpcError::Msg(MsgReturn::RcvTimedOut))),
        "50 ms timeout: {:?}",
        r.map(|m| m.id())
    );
    let waited = host(HOST_TICKS) - before;
    check!(
        (5..=50).contains(&waited),
        "a 50 ms timeout took {waited} ticks"
    );
    // A full queue with a zero send timeout fails at once and keeps the sender's rights.
    let send = port.make_send().map_err(err("make send"))?;
    let mut sent = 0;
    loop {
        match ipc::send(&OutMessage::new(1, send.name()), &mut buffer, Some(0)) {
            Ok(()) => sent += 1,
            Err(IpcError::Msg(MsgReturn::SendTimedOut)) => break,
            Err(e) => return Err(format!("send {sent}: {e:?}")),
        }
        check!(sent < 1000, "the queue never filled");
    }
    check!(
        refs(send.name(), RIGHT_SEND)? == 1,
        "a timed-out send lost a reference"
    );
    Ok(())
}

/// Calls answered long before their timeout leave no armed timer behind.
fn waits_cut_short_leave_no_timers() -> Result<(), String> {
    let (task, _rendezvous, server) = spawn_role(roles::ECHO, true)?;
    let server = server.expect("introduced");
    let reply_port = ReceiveRight::allocate().map_err(err("reply port"))?;
    let mut buffer = MessageBuffer::new();
    let mut calls = |n: usize| -> Result<(), String> {
        for _ in 0..n {
            let request =
                OutMessage::new(roles::ECHO_REQUEST, server.name()).reply_to(reply_port.name());
            ipc::call(&request, reply_port.name(), &mut buffer, Some(60_000))
                .map_err(err("call"))?;
        }
        Ok(())
    };
    // Warmed up first: on several CPUs the server may still be running on another when a
    // call comes, and the message is queued rather than handed over; the queue keeps what it
    // grew to.
    calls(200)?;
    let (heap, timers) = (host(HOST_HEAP_BYTES), host(HOST_TIMERS));
    calls(2000)?;
    check!(
        host(HOST_TIMERS) == timers,
        "{} timers armed after 2000 answered calls",
        host(HOST_TIMERS)
    );
    // A leak would be bytes for every call; a table reaching a new size (a queue's first
    // message where none waited before, on another CPU) is one step.
    check!(
        host(HOST_HEAP_BYTES) <= heap + 1024,
        "kernel heap grew from {heap} to {}",
        host(HOST_HEAP_BYTES)
    );
    ipc::send(
        &OutMessage::new(roles::QUIT, server.name()),
        &mut buffer,
        None,
    )
    .map_err(err("quit"))?;
    check!(task.wait() == Ok(0), "echo server status");
    Ok(())
}

fn dead_name_notification() -> Result<(), String> {
    let (task, _rendezvous, held) = spawn_role(roles::HOLD_RECEIVE, true)?;
    let held = held.expect("introduced");
    let notify_port = ReceiveRight::allocate().map_err(err("notify port"))?;
    sys::port_request_notification(held.name(), notify::DEAD_NAME, notify_port.name())
        .map_err(err("request"))?;
    task.terminate().map_err(err("terminate"))?;
    let status = task.wait().map_err(err("wait"))?;
    check!(status == u64::MAX, "terminated task reports {status}");
    let mut buffer = MessageBuffer::new();
    let note =
        ipc::receive(notify_port.name(), &mut buffer, Some(1000)).map_err(err("notification"))?;
    check!(
        note.id() == notify::DEAD_NAME,
        "notification id {:#o}",
        note.id()
    );
    let named = u32::from_le_bytes(note.body[..4].try_into().unwrap());
    check!(
        named == held.name(),
        "notification names {named:#x}, not {:#x}",
        held.name()
    );
    check!(refs(held.name(), RIGHT_DEAD_NAME)? == 1, "not a dead name");
    let r = ipc::send(&OutMessage::new(1, held.name()), &mut buffer, None);
    check!(
        r == Err(IpcError::Msg(MsgReturn::SendInvalidDest)),
        "send to dead name: {r:?}"
    );
    Ok(())
}

fn no_senders_notification() -> Result<(), String> {
    let port = ReceiveRight::allocate().map_err(err("allocate"))?;
    let notify_port = ReceiveRight::allocate().map_err(err("notify port"))?;
    let send = port.make_send().map_err(err("make send"))?;
    sys::port_request_notification(port.name(), notify::NO_SENDERS, notify_port.name())
        .map_err(err("request"))?;
    // The child says hello through its right and then keeps it until it is terminated (a
    // child that exited by itself could do so before the first check below).
    let task = Task::spawn("ipc_test", Some(&send), roles::SLEEP).map_err(err("spawn"))?;
    drop(send);
    let mut buffer = MessageBuffer::new();
    let hello = ipc::receive(port.name(), &mut buffer, Some(5000)).map_err(err("hello"))?;
    check!(hello.id() == roles::HELLO, "hello has id {}", hello.id());
    check!(
        ipc::receive(notify_port.name(), &mut buffer, Some(0)).is_err(),
        "notified while the child holds a right"
    );
    task.terminate().map_err(err("terminate"))?;
    task.wait().map_err(err("wait"))?;
    let note =
        ipc::receive(notify_port.name(), &mut buffer, Some(1000)).map_err(err("notification"))?;
    check!(
        note.id() == notify::NO_SENDERS,
        "notification id {:#o}",
        note.id()
    );
    Ok(())
}

fn send_once_notification() -> Result<(), String> {
    let (task, _rendezvous, server) = spawn_role(roles::DROP_REPLY, true)?;
    let server = server.expect("introduced");
    let reply_port = ReceiveRight::allocate().map_err(err("reply port"))?;
    let mut buffer = MessageBuffer::new();
    let request = OutMessage::new(roles::ECHO_REQUEST, server.name()).reply_to(reply_port.name());
    let reply =
        ipc::call(&request, reply_port.name(), &mut buffer, Some(5000)).map_err(err("call"))?;
    check!(
        reply.id() == notify::SEND_ONCE,
        "the caller got id {:#o}",
        reply.id()
    );
    task.wait().map_err(err("wait"))?;
    Ok(())
}

fn faulting_task_is_isolated() -> Result<(), String> {
    let task = Task::spawn("ipc_test", None, roles::CRASH).map_err(err("spawn"))?;
    let status = task.wait().map_err(err("wait"))?;
    check!(status == u64::MAX, "crashing task exited with {status}");
    rpc_echo()
}

/// A higher-priority thread keeps the processor from a lower one until it waits.
fn priorities() -> Result<(), String> {
    let previous = sys::thread_set_priority(40).map_err(err("raise priority"))?;
    check!(
        previous == DEFAULT_PRIORITY,
        "started at priority {previous}"
    );
    check!(
        sys::thread_set_priority(64) == Err(KernReturn::InvalidValue),
        "priority 64 accepted"
    );
    // Every other CPU is kept busy at priority 40 too: with one free, the child would run
    // there, as it should.
    let busy = crate::threads::occupy_cpus(host(HOST_CPUS).max(1) - 1, 40)?;
    let (task, rendezvous, _) = spawn_role(roles::SAY_HELLO, false)?;
    // Spin across several timer ticks: the child (priority 31) must not run meanwhile.
    let start = host(HOST_TICKS);
    while host(HOST_TICKS) < start + 5 {
        core::hint::spin_loop();
    }
    let mut buffer = MessageBuffer::new();
    let early = ipc::receive(rendezvous.name(), &mut buffer, Some(0)).is_ok();
    busy.release()?;
    sys::thread_set_priority(DEFAULT_PRIORITY).map_err(err("restore priority"))?;
    check!(
        !early,
        "a lower-priority task ran while a higher one was busy"
    );
    let hello = ipc::receive(rendezvous.name(), &mut buffer, Some(2000))
        .map_err(err("hello after waiting"))?;
    check!(hello.id() == roles::HELLO, "got id {}", hello.id());
    check!(task.wait() == Ok(0), "child status");
    Ok(())
}

/// A task that never makes a system call does not keep others of its priority from running.
fn preemption() -> Result<(), String> {
    let spinner = Task::spawn("ipc_test", None, roles::SPIN).map_err(err("spawn"))?;
    let (task, rendezvous, _) = spawn_role(roles::SAY_HELLO, false)?;
    let mut buffer = MessageBuffer::new();
    let hello = ipc::receive(rendezvous.name(), &mut buffer, Some(2000))
        .map_err(err("hello past a spinner"))?;
    check!(hello.id() == roles::HELLO, "got id {}", hello.id());
    // A timeout still fires while the spinner runs.
    let port = ReceiveRight::allocate().map_err(err("allocate"))?;
    let r = ipc::receive(port.name(), &mut buffer, Some(30));
    check!(
        matches!(r, Err(IpcError::Msg(MsgReturn::RcvTimedOut))),
        "timeout beside a spinner"
    );
    spinner.terminate().map_err(err("terminate spinner"))?;
    check!(task.wait() == Ok(0), "child status");
    Ok(())
}

fn create_terminate_cycles() -> Result<(), String> {
    let cycle = |terminate: bool| -> Result<(), String> {
        let task = Task::spawn(
            "ipc_test",
            None,
            if terminate { roles::SLEEP } else { roles::EXIT },
        )
        .map_err(err("spawn"))?;
        if terminate {
            task.terminate().map_err(err("terminate"))?;
        }
        task.wait().map_err(err("wait"))?;
        Ok(())
    };
    for i in 0..100 {
        cycle(i % 2 == 0)?;
    }
    let (frames, tasks, ports, heap) = (
        host(HOST_FREE_FRAMES),
        host(HOST_TASKS),
        host(HOST_PORTS),
        host(HOST_HEAP_BYTES),
    );
    for i in 0..10_000 {
        cycle(i % 2 == 0)?;
    }
    let after = (
        host(HOST_FREE_FRAMES),
        host(HOST_TASKS),
        host(HOST_PORTS),
        host(HOST_HEAP_BYTES),
    );
    check!(
        after == (frames, tasks, ports, heap),
        "free frames, tasks, ports, heap bytes: {:?} before, {after:?} after 10,000 cycles",
        (frames, tasks, ports, heap)
    );
    Ok(())
}

fn ten_thousand_blocked_receivers() -> Result<(), String> {
    const TASKS: usize = 10_000;
    // What one blocked task of this program takes, with room to spare: about 50 KiB
    // measured (12 frames, 3.2 KiB of kernel heap).
    const BYTES_PER_TASK: u64 = 56 * 1024;
    let frames_before = host(HOST_FREE_FRAMES);
    let heap_before = host(HOST_HEAP_BYTES);
    let (need, free) = (TASKS as u64 * BYTES_PER_TASK, frames_before * 4096);
    check!(
        free >= need,
        "{TASKS} blocked tasks need about {} MiB of free memory, and this guest has {} MiB \
         free: boot it with more (`cargo image run --mem 1024`)",
        need >> 20,
        free >> 20
    );
    let rendezvous = ReceiveRight::allocate().map_err(err("rendezvous"))?;
    let give = rendezvous.make_send().map_err(err("make send"))?;
    let mut tasks = Vec::new();
    tasks.try_reserve(TASKS).map_err(err("task list"))?;
    if let Err(why) = block_tasks(TASKS, &mut tasks, &give, &rendezvous) {
        // The tasks made so far end with the case, so that the cases after it start clean.
        for task in &tasks {
            let _ = task.terminate();
        }
        return Err(why);
    }
    // Let the last ones reach their receive.
    for _ in 0..4 {
        sys::thread_yield();
    }
    let frames = frames_before - host(HOST_FREE_FRAMES);
    let heap = host(HOST_HEAP_BYTES) - heap_before;
    let threads = host(HOST_THREADS);
    libipc::println!(
        "ipc_test: {TASKS} tasks blocked in receive ({threads} threads in all) take {} KiB of guest memory: {frames} frames ({}.{} per task) and {heap} kernel heap bytes ({} per task)",
        (frames * 4096 + heap) / 1024,
        frames / TASKS as u64,
        frames * 10 / TASKS as u64 % 10,
        heap / TASKS as u64
    );
    for (i, task) in tasks.iter().enumerate() {
        task.terminate()
            .map_err(|e| format!("terminate {i}: {e:?}"))?;
    }
    drop(tasks);
    drop(give);
    check!(host(HOST_TASKS) == 1, "{} tasks left", host(HOST_TASKS));
    Ok(())
}

/// Spawns `count` tasks into `tasks` that each say so on `rendezvous` (through `give`) and
/// then wait in a receive, and waits for every one to have said so.
fn block_tasks(
    count: usize,
    tasks: &mut Vec<Task>,
    give: &SendRight,
    rendezvous: &ReceiveRight,
) -> Result<(), String> {
    for i in 0..count {
        tasks.push(
            Task::spawn("ipc_test", Some(give), roles::SLEEP)
                .map_err(|e| format!("spawn {i}: {e:?}"))?,
        );
    }
    let mut buffer = MessageBuffer::new();
    for i in 0..count {
        ipc::receive(rendezvous.name(), &mut buffer, Some(10_000))
            .map_err(|e| format!("ready {i}: {e:?}"))?;
    }
    Ok(())
}

/// A task fills the kernel heap with ports and queued messages until the kernel refuses and
/// exits: its teardown, which runs with the heap full, frees every port and message (issue
/// 17's B1: it used to skip what it could not record), and the heap gives the pages it grew
/// to back to the frame allocator (B2: they used to stay with it, so that spawns and forks
/// failed for everyone afterwards).
fn a_task_that_fills_the_kernel_heap_gives_it_all_back() -> Result<(), String> {
    let pages_before = host(HOST_HEAP_PAGES);
    let before = (host(HOST_PORTS), host(HOST_HEAP_BYTES));
    let (task, rendezvous, _) = spawn_role(roles::FILL_HEAP, false)?;
    let status = task.wait().map_err(err("wait"))?;
    check!(status == 0, "the filler exited with {status}");
    drop((task, rendezvous));
    let after = (host(HOST_PORTS), host(HOST_HEAP_BYTES));
    check!(
        after.0 == before.0,
        "ports: {} before, {} after the filler's exit",
        before.0,
        after.0
    );
    // The tables the filler grew keep their room (tens of KiB); its ports and messages
    // (megabytes) must be gone.
    check!(
        after.1 <= before.1 + 64 * 1024,
        "kernel heap bytes in use: {} before, {} after the filler's exit",
        before.1,
        after.1
    );
    let pages_after = host(HOST_HEAP_PAGES);
    libipc::println!(
        "ipc_test: kernel heap pages: {pages_before} before the filler, {pages_after} after \
         its exit"
    );
    check!(
        pages_after <= pages_before + 64,
        "the kernel heap kept {} of the pages the filler grew it by ({pages_before} before, \
         {pages_after} after)",
        pages_after - pages_before
    );
    Ok(())
}

/// The kernel memory the task spawned last holds now (`ps`'s figure; the task with the
/// newest job). A quota set from it does not depend on what the tests before grew in this
/// task (the name table of `memory_exhaustion`'s thousands of children).
fn held_by_newest() -> Result<u64, String> {
    sys::host_tasks(256)
        .map_err(err("host_tasks"))?
        .into_iter()
        .max_by_key(|t| t.job)
        .map(|t| t.kernel_bytes)
        .ok_or_else(|| String::from("no tasks in host_tasks"))
}

/// Tells a child waiting on `go` to go on, and takes its report on `rendezvous`.
fn go_and_report<'b>(
    go: &SendRight,
    rendezvous: &ReceiveRight,
    buffer: &'b mut MessageBuffer,
) -> Result<ipc::Received<'b>, String> {
    ipc::send(&OutMessage::new(1, go.name()), buffer, None).map_err(err("go"))?;
    ipc::receive(rendezvous.name(), buffer, Some(10_000)).map_err(err("the child's report"))
}

/// A child whose quota is set 64 KiB above what it holds queues 1 KiB messages on ports of
/// its own until a send is refused (`SendNoBuffer`: the queued messages are charged to it,
/// before its ports run out), and sends again once it has received some of them back.
fn messages_a_task_queues_count_against_its_quota() -> Result<(), String> {
    use libipc::abi::message::MsgReturn;
    let before = (host(HOST_PORTS), host(HOST_HEAP_BYTES));
    let (task, rendezvous, go) = spawn_role(roles::QUEUE_QUOTA, true)?;
    let go = go.ok_or("no port from the child")?;
    task.set_quota(held_by_newest()? + 64 * 1024)
        .map_err(err("task_set_quota"))?;
    let mut buffer = MessageBuffer::new();
    let report = go_and_report(&go, &rendezvous, &mut buffer)?;
    check!(
        report.id() == roles::QUEUE_REFUSED,
        "report id {}",
        report.id()
    );
    let word = |i: usize| u64::from_le_bytes(report.body[i * 8..i * 8 + 8].try_into().unwrap());
    let (queued, refused, again) = (word(0), word(1), word(2));
    libipc::println!(
        "ipc_test: a child with 64 KiB of quota to spare queued {queued} messages of 1 KiB"
    );
    check!(
        refused == MsgReturn::SendNoBuffer as u64,
        "the child's sends ended with code {refused:#x}, not SendNoBuffer (0 means its \
         ports ran out first: the messages were not charged)"
    );
    // Its quota is 64 KiB above what it held, so it has about that to spare; uncharged, it would have queued thousands (16 on each of hundreds of
    // ports).
    check!(
        (16..=200).contains(&queued),
        "the child queued {queued} messages of 1 KiB with about 64 KiB to spare"
    );
    check!(
        again == 0,
        "after receiving its messages back the child's send gave {again:#x}"
    );
    task.terminate().map_err(err("terminate"))?;
    let _ = task.wait();
    drop((task, rendezvous, go));
    let after = (host(HOST_PORTS), host(HOST_HEAP_BYTES));
    check!(
        after.0 == before.0 && after.1 <= before.1 + 64 * 1024,
        "ports {} and heap bytes {} before, {} and {} after",
        before.0,
        before.1,
        after.0,
        after.1
    );
    Ok(())
}

/// A child whose kernel memory quota is set 64 KiB above what it holds makes ports until
/// the kernel refuses: the refusal is `ResourceShortage` after a few hundred, a region is
/// refused too, and meanwhile this task makes ports, spawns and forks as before; everything
/// comes back when the child is gone.
fn a_task_at_its_quota_gets_errors_and_others_go_on() -> Result<(), String> {
    let before = (host(HOST_PORTS), host(HOST_HEAP_BYTES));
    let (task, rendezvous, go) = spawn_role(roles::QUOTA, true)?;
    let go = go.ok_or("no port from the child")?;
    let default = task.set_quota(0).map_err(err("task_set_quota"))?;
    let memory = host(HOST_TOTAL_FRAMES) * PAGE_SIZE;
    check!(
        default == memory / DEFAULT_QUOTA_DIVISOR,
        "the default quota is {default}, not the {memory} bytes of memory over {DEFAULT_QUOTA_DIVISOR}"
    );
    // What the child holds now and 64 KiB more, a few hundred ports (its charge overcounts
    // its few send rights by far less).
    let quota = held_by_newest()? + 64 * 1024;
    check!(
        task.set_quota(quota) == Ok(default),
        "setting the quota did not give back the default"
    );
    let mut buffer = MessageBuffer::new();
    let report = go_and_report(&go, &rendezvous, &mut buffer)?;
    check!(report.id() == roles::AT_QUOTA, "report id {}", report.id());
    let word = |i: usize| u64::from_le_bytes(report.body[i * 8..i * 8 + 8].try_into().unwrap());
    let (made, port_error, region_error, regions) = (word(0), word(1), word(2), word(3));
    check!(
        port_error == KernReturn::ResourceShortage as u64
            && region_error == KernReturn::ResourceShortage as u64,
        "at its quota the child's port_allocate gave {port_error:#x} and vm_allocate \
         {region_error:#x} after {regions} regions, not ResourceShortage"
    );
    libipc::println!(
        "ipc_test: a child with a quota of {quota} bytes made {made} ports, then {regions} \
         regions"
    );
    check!(
        (20..=4000).contains(&made),
        "the child made {made} ports under a quota of {quota} bytes"
    );
    // Everyone else goes on.
    let mine: Vec<ReceiveRight> = (0..500)
        .map(|_| ReceiveRight::allocate())
        .collect::<Result<_, _>>()
        .map_err(err("ports beside a task at its quota"))?;
    drop(mine);
    rpc_echo().map_err(|e| format!("beside a task at its quota: {e}"))?;
    match sys::task_fork().map_err(err("fork beside a task at its quota"))? {
        sys::Forked::Child => sys::task_exit(0),
        sys::Forked::Parent(child) => {
            check!(
                sys::task_wait(child) == Ok(0),
                "a forked child beside a task at its quota"
            );
            let _ = sys::port_deallocate(child);
        }
    }
    task.terminate().map_err(err("terminate"))?;
    let _ = task.wait();
    drop((task, rendezvous, go));
    let after = (host(HOST_PORTS), host(HOST_HEAP_BYTES));
    check!(
        after.0 == before.0 && after.1 <= before.1 + 64 * 1024,
        "ports and heap bytes {before:?} before the child, {after:?} after it"
    );
    Ok(())
}

/// Spawns waiting tasks until memory runs out: the spawn fails with an error, the kernel and
/// this task go on, and everything comes back once they are gone. Done twice, and the second
/// round compared with the first, so that what this task itself grew (its stack, its heap)
/// is not counted.
fn memory_exhaustion() -> Result<(), String> {
    // Task port names; the list's pages are touched now so its growth is not counted.
    let mut tasks: Vec<u32> = Vec::new();
    tasks.try_reserve(20_000).map_err(err("task list"))?;
    tasks.resize(20_000, 0);
    tasks.clear();
    let end = |name: u32| {
        let _ = sys::task_terminate(name);
        let _ = sys::port_deallocate(name);
    };
    let measure = || {
        (
            host(HOST_FREE_FRAMES) + host(HOST_HEAP_PAGES),
            host(HOST_TASKS),
            host(HOST_PORTS),
        )
    };
    let round = |tasks: &mut Vec<u32>| -> Result<usize, String> {
        let error = loop {
            match sys::task_spawn("ipc_test", 0, roles::SLEEP) {
                Ok(task) => tasks.push(task),
                Err(e) => break e,
            }
            check!(
                tasks.len() < 20_000,
                "20,000 tasks and memory not exhausted"
            );
        };
        check!(
            error == KernReturn::ResourceShortage,
            "spawn failed with {error:?}, not ResourceShortage"
        );
        let count = tasks.len();
        // Some children may have faulted for want of a stack page; the rest wait. Make room
        // and check the system still works.
        tasks.drain(..count / 2).for_each(end);
        rpc_echo().map_err(|e| format!("after exhaustion: {e}"))?;
        tasks.drain(..).for_each(end);
        Ok(count)
    };
    let first = round(&mut tasks)?;
    let before = measure();
    let second = round(&mut tasks)?;
    let mut after = measure();
    if after != before {
        // The kernel's once-a-second pass (table trims, idle tables freed) may not have come
        // yet for the second round's ends: measured again past it, as the fuzzer's census is.
        libipc::rt::sleep_ms(1_200);
        after = measure();
    }
    libipc::println!("ipc_test: memory ran out after {first} and {second} tasks; frames (free + heap), tasks, ports: {before:?} after the first round, {after:?} after the second");
    check!(
        after == before,
        "memory lost: {before:?} after the first round, {after:?} after the second"
    );
    Ok(())
}

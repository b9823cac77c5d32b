//! `mach_msg`: send, receive, or both (a call), with timeouts; delivery straight into a
//! waiting receiver's buffer, and hand-off from a caller that then waits to the server it
//! woke.
//!
//! A message is copied in once, into a kernel buffer, and out once, into the receiver's
//! memory; both go through the tasks' own maps (`kern::user`), so the sender writes into a
//! blocked receiver's buffer directly and the receiver returns to user mode with its message
//! in place and nothing left to do.

use super::message::{CarriedRight, KMessage};
use super::port::{PortId, Receiver};
use super::rights::Tally;
use crate::kern::kernel::Kernel;
use crate::kern::task::TaskId;
use crate::kern::thread::{Continuation, ReceiveArgs, ReceiveFrom, ThreadId, ThreadState};
use crate::kern::user::{self, UserSlice};
use alloc::vec::Vec;
use core::cmp::Reverse;
use libipc::abi::message::{
    descriptor_kind, options, Descriptor, Disposition, MessageHeader, MsgReturn, COMPLEX,
    DESCRIPTOR_SIZE, HEADER_SIZE, MAX_DESCRIPTORS, MAX_MESSAGE_SIZE,
};

/// What the calling thread gets back.
pub enum MsgOutcome {
    /// Return now with `rax`, `rdx`.
    Return(u64, u64),
    /// The thread waits; whoever wakes it writes its result.
    Blocked,
}

/// The result of a send.
enum Sent {
    /// Queued or delivered; `Some` names a receiver woken but not yet queued to run.
    Done(Option<ThreadId>),
    /// The sender waits for room.
    Blocked,
}

fn ret(code: MsgReturn, value: u64) -> MsgOutcome {
    MsgOutcome::Return(code as u64, value)
}

/// Milliseconds to timer ticks, rounding up.
fn ticks_from_ms(ms: u64) -> u64 {
    ms.div_ceil(1000 / crate::arch::apic::HZ)
}

fn now() -> u64 {
    crate::arch::percpu::current().ticks()
}

impl Kernel {
    /// The `mach_msg` system call of `thread`.
    pub fn mach_msg(&mut self, thread: ThreadId, a: [u64; 6]) -> MsgOutcome {
        let [buffer, option, send_size, receive_limit, receive_name, timeout] = a;
        let Some(task) = self.threads.get(thread).map(|t| t.task) else {
            return ret(MsgReturn::SendInvalidData, 0);
        };
        let wants_receive = option & options::RECEIVE != 0;
        let receive = if wants_receive {
            let from = match self.receive_source(task, receive_name as u32) {
                Some(from) => from,
                None => return ret(MsgReturn::RcvInvalidName, 0),
            };
            let deadline =
                (option & options::RECEIVE_TIMEOUT != 0).then(|| now() + ticks_from_ms(timeout));
            Some(ReceiveArgs {
                buffer,
                limit: receive_limit.min(u64::from(u32::MAX)) as u32,
                from,
                deadline,
            })
        } else {
            None
        };
        let mut woken = None;
        if option & options::SEND != 0 {
            let send_deadline =
                (option & options::SEND_TIMEOUT != 0).then(|| now() + ticks_from_ms(timeout));
            match self.send(
                task,
                thread,
                buffer,
                send_size,
                send_deadline,
                receive,
                wants_receive,
            ) {
                Err(code) => return ret(code, 0),
                Ok(Sent::Blocked) => return MsgOutcome::Blocked,
                Ok(Sent::Done(receiver)) => woken = receiver,
            }
        }
        let outcome = match receive {
            Some(args) => self.receive(task, thread, args),
            None => ret(MsgReturn::Success, 0),
        };
        if let Some(receiver) = woken {
            if matches!(outcome, MsgOutcome::Blocked) && self.current() == None {
                // Hand-off: the caller waits for the reply, the server it woke runs at once.
                if let Some(t) = self.threads.get_mut(receiver) {
                    t.state = ThreadState::Running;
                }
                self.current = Some(receiver);
            } else {
                self.make_ready(receiver);
            }
        }
        outcome
    }

    /// What `name` lets a task receive from: a receive right or a port set.
    fn receive_source(&mut self, task: TaskId, name: u32) -> Option<ReceiveFrom> {
        use super::space::{Object, Rights};
        let entry = self.entry(task, name)?;
        match entry.object {
            Object::Port(port) if entry.rights.contains(Rights::RECEIVE) => {
                Some(ReceiveFrom::Port(port))
            }
            Object::PortSet(set) => Some(ReceiveFrom::Set(set)),
            _ => None,
        }
    }

    /// Copies in and sends the message at `buffer`. `hand_off`: a receiver it wakes is
    /// returned rather than queued, for the caller to run.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        task: TaskId,
        thread: ThreadId,
        buffer: u64,
        size: u64,
        deadline: Option<u64>,
        then: Option<ReceiveArgs>,
        hand_off: bool,
    ) -> Result<Sent, MsgReturn> {
        if size < HEADER_SIZE as u64 || size % 4 != 0 {
            return Err(MsgReturn::SendMsgTooSmall);
        }
        if size > MAX_MESSAGE_SIZE as u64 {
            return Err(MsgReturn::SendTooLarge);
        }
        let slice = UserSlice::new(buffer, size)
            .validate(MAX_MESSAGE_SIZE)
            .map_err(|_| MsgReturn::SendInvalidData)?;
        let mut bytes = [0u8; MAX_MESSAGE_SIZE];
        let bytes = &mut bytes[..size as usize];
        {
            let t = self.tasks.get_mut(task).ok_or(MsgReturn::SendInvalidData)?;
            user::copy_in(&mut t.space, &mut self.objects, slice, bytes)
                .map_err(|_| MsgReturn::SendInvalidData)?;
        }
        let header =
            MessageHeader::from_bytes(bytes[..HEADER_SIZE].try_into().expect("header size"));
        let body = &bytes[HEADER_SIZE..];

        // Decode: check every name and descriptor; nothing changes until all are good.
        let remote = Disposition::from_raw(header.remote_disposition())
            .filter(|d| *d != Disposition::MoveReceive)
            .ok_or(MsgReturn::SendInvalidHeader)?;
        let local = match header.local_disposition() {
            0 => None,
            raw => Some(
                Disposition::from_raw(raw)
                    .filter(|d| *d != Disposition::MoveReceive)
                    .ok_or(MsgReturn::SendInvalidHeader)?,
            ),
        };
        if header.bits & !(COMPLEX | 0xffff) != 0 || (local.is_none() && header.local_port != 0) {
            return Err(MsgReturn::SendInvalidHeader);
        }
        let mut tally = Tally::default();
        let destination = self.check_copyin(
            task,
            header.remote_port,
            remote,
            &mut tally,
            MsgReturn::SendInvalidDest,
        )?;
        match self.ports.get(destination).map(|p| p.receiver) {
            Some(Receiver::Task(_)) | Some(Receiver::InTransit) => {}
            _ => return Err(MsgReturn::SendInvalidDest),
        }
        if let Some(local) = local {
            self.check_copyin(
                task,
                header.local_port,
                local,
                &mut tally,
                MsgReturn::SendInvalidReply,
            )?;
        }
        let mut descriptors: [Option<(u32, Disposition)>; MAX_DESCRIPTORS] =
            [None; MAX_DESCRIPTORS];
        let mut descriptor_count = 0;
        if header.is_complex() {
            let count = u32::from_le_bytes(
                body.get(..4)
                    .ok_or(MsgReturn::SendInvalidData)?
                    .try_into()
                    .expect("4"),
            );
            let count = count as usize;
            if count > MAX_DESCRIPTORS || body.len() < 4 + count * DESCRIPTOR_SIZE {
                return Err(MsgReturn::SendInvalidData);
            }
            for i in 0..count {
                let at = 4 + i * DESCRIPTOR_SIZE;
                let d = Descriptor::from_bytes(
                    body[at..at + DESCRIPTOR_SIZE]
                        .try_into()
                        .expect("descriptor"),
                );
                match d.kind {
                    descriptor_kind::PORT => {}
                    descriptor_kind::OUT_OF_LINE => return Err(MsgReturn::SendInvalidType),
                    _ => return Err(MsgReturn::SendInvalidData),
                }
                if d.value == 0 {
                    continue; // a null name carries nothing
                }
                let disposition =
                    Disposition::from_raw(d.disposition).ok_or(MsgReturn::SendInvalidRight)?;
                let name = u32::try_from(d.value).map_err(|_| MsgReturn::SendInvalidRight)?;
                let port = self.check_copyin(
                    task,
                    name,
                    disposition,
                    &mut tally,
                    MsgReturn::SendInvalidRight,
                )?;
                if disposition == Disposition::MoveReceive && port == destination {
                    // A port's receive right inside a message queued on that port.
                    return Err(MsgReturn::SendInvalidRight);
                }
                descriptors[i] = Some((name, disposition));
            }
            descriptor_count = count;
        }
        if self
            .ports
            .get(destination)
            .is_some_and(|p| p.is_full() && !has_waiting_receiver(self, destination))
            && deadline.is_some_and(|d| d <= now())
        {
            return Err(MsgReturn::SendTimedOut);
        }
        let mut rights: Vec<Option<CarriedRight>> = Vec::new();
        let mut body_copy: Vec<u8> = Vec::new();
        if rights.try_reserve(descriptor_count).is_err()
            || body_copy.try_reserve(body.len()).is_err()
        {
            return Err(MsgReturn::SendNoBuffer);
        }

        // Act: move the rights; from here nothing fails.
        let destination_right = self.copyin(task, header.remote_port, remote);
        let reply = local.and_then(|d| self.copyin(task, header.local_port, d));
        for slot in descriptors.iter().take(descriptor_count) {
            rights.push(slot.and_then(|(name, disposition)| self.copyin(task, name, disposition)));
        }
        body_copy.extend_from_slice(body);
        let message = KMessage {
            id: header.id,
            complex: header.is_complex(),
            reply,
            rights,
            body: body_copy,
            destination: destination_right,
        };
        Ok(self.enqueue(
            destination,
            message,
            Some((thread, deadline, then)),
            hand_off,
        ))
    }

    /// Delivers `message` to a receiver waiting on `port`, or queues it. A user sender
    /// (`sender`) waits when the queue is full; kernel notifications never wait.
    fn enqueue(
        &mut self,
        port: PortId,
        mut message: KMessage,
        sender: Option<(ThreadId, Option<u64>, Option<ReceiveArgs>)>,
        hand_off: bool,
    ) -> Sent {
        loop {
            let Some(receiver) = self.first_waiting_receiver(port) else {
                break;
            };
            match self.deliver(receiver, port, message) {
                Ok(()) => {
                    if !hand_off {
                        self.make_ready(receiver);
                        return Sent::Done(None);
                    }
                    return Sent::Done(Some(receiver));
                }
                // Too large for that receiver: it was told so; try the next or queue.
                Err(back) => message = back,
            }
        }
        let Some(p) = self.ports.get_mut(port) else {
            let mut ports = Vec::new();
            self.destroy_message(message, &mut ports);
            for p in ports {
                self.destroy_port(p);
            }
            return Sent::Done(None);
        };
        match sender {
            Some((thread, deadline, then)) if p.is_full() => {
                if p.blocked_senders.try_reserve(1).is_err() {
                    // No memory to wait with: queue beyond the limit rather than lose it.
                    let _ = p.messages.try_reserve(1);
                    p.messages.push_back(message);
                    return Sent::Done(None);
                }
                p.blocked_senders.push_back((thread, message));
                self.block(thread, Continuation::Send { port, then }, deadline);
                Sent::Blocked
            }
            _ => {
                if p.messages.try_reserve(1).is_err() {
                    let mut ports = Vec::new();
                    self.destroy_message(message, &mut ports);
                    for p in ports {
                        self.destroy_port(p);
                    }
                    return Sent::Done(None);
                }
                p.messages.push_back(message);
                Sent::Done(None)
            }
        }
    }

    /// A thread waiting to receive from `port`, directly or through its set; removed from
    /// its wait queue.
    fn first_waiting_receiver(&mut self, port: PortId) -> Option<ThreadId> {
        let p = self.ports.get_mut(port)?;
        if let Some(thread) = p.receivers.pop_front(&mut self.threads) {
            return Some(thread);
        }
        let set = p.set?;
        self.port_sets
            .get_mut(set)?
            .receivers
            .pop_front(&mut self.threads)
    }

    /// Copies `message` out to blocked `receiver` and wakes it (not queued to run: the caller
    /// decides). Gives the message back if the receiver's buffer is too small (the receiver
    /// is then woken with `RcvTooLarge`).
    fn deliver(
        &mut self,
        receiver: ThreadId,
        port: PortId,
        message: KMessage,
    ) -> Result<(), KMessage> {
        let Some(Continuation::Receive(args)) = self.threads.get(receiver).map(|t| t.continuation)
        else {
            return Err(message);
        };
        let size = message.size();
        if size > args.limit as usize {
            self.finish_wait(receiver, MsgReturn::RcvTooLarge as u64, size as u64);
            self.make_ready(receiver);
            return Err(message);
        }
        let task = self.threads.get(receiver).map(|t| t.task);
        let code = match task {
            Some(task) => self.copy_out_message(task, args.buffer, port, message),
            None => MsgReturn::RcvInvalidData,
        };
        self.finish_wait(receiver, code as u64, size as u64);
        Ok(())
    }

    /// Receives for `thread` now if a message is there, else blocks it.
    fn receive(&mut self, task: TaskId, thread: ThreadId, args: ReceiveArgs) -> MsgOutcome {
        match self.take_message(args.from, args.limit) {
            Taken::Message(port, message) => {
                let size = message.size();
                let code = self.copy_out_message(task, args.buffer, port, message);
                ret(code, size as u64)
            }
            Taken::TooLarge(size) => ret(MsgReturn::RcvTooLarge, size as u64),
            Taken::Nothing => {
                if args.deadline.is_some_and(|d| d <= now()) {
                    return ret(MsgReturn::RcvTimedOut, 0);
                }
                let queued = match args.from {
                    ReceiveFrom::Port(port) => self.ports.get_mut(port).map(|p| &mut p.receivers),
                    ReceiveFrom::Set(set) => self.port_sets.get_mut(set).map(|s| &mut s.receivers),
                };
                let Some(queue) = queued else {
                    return ret(MsgReturn::RcvPortDied, 0);
                };
                queue.push_back(&mut self.threads, thread);
                self.block(thread, Continuation::Receive(args), args.deadline);
                MsgOutcome::Blocked
            }
        }
    }

    /// Takes the next message for a receive from `from`, refilling the port from a blocked
    /// sender.
    fn take_message(&mut self, from: ReceiveFrom, limit: u32) -> Taken {
        let port = match from {
            ReceiveFrom::Port(port) => port,
            ReceiveFrom::Set(set) => {
                let Some(s) = self.port_sets.get(set) else {
                    return Taken::Nothing;
                };
                let ports = &self.ports;
                match s
                    .members
                    .iter()
                    .find(|m| ports.get(**m).is_some_and(|p| !p.messages.is_empty()))
                {
                    Some(port) => *port,
                    None => return Taken::Nothing,
                }
            }
        };
        let Some(p) = self.ports.get_mut(port) else {
            return Taken::Nothing;
        };
        let Some(front) = p.messages.front() else {
            return Taken::Nothing;
        };
        if front.size() > limit as usize {
            return Taken::TooLarge(front.size());
        }
        let message = p.messages.pop_front().expect("front exists");
        if let Some((sender, waiting)) = p.blocked_senders.pop_front() {
            p.messages.push_back(waiting);
            self.sender_done(sender);
        }
        Taken::Message(port, message)
    }

    /// A blocked sender's message went into the queue: it succeeds, and goes on to its
    /// receive if it asked for one.
    fn sender_done(&mut self, sender: ThreadId) {
        let Some(Continuation::Send { then, .. }) =
            self.threads.get(sender).map(|t| t.continuation)
        else {
            return;
        };
        self.finish_wait(sender, MsgReturn::Success as u64, 0);
        match (then, self.threads.get(sender).map(|t| t.task)) {
            (Some(args), Some(task)) => match self.receive(task, sender, args) {
                MsgOutcome::Return(rax, rdx) => {
                    self.set_result(sender, rax, rdx);
                    self.make_ready(sender);
                }
                MsgOutcome::Blocked => {}
            },
            _ => self.make_ready(sender),
        }
    }

    /// Writes a received message into `task`'s buffer: its rights into the task's space, the
    /// header as the receiver sees it. The message is consumed whatever happens.
    fn copy_out_message(
        &mut self,
        task: TaskId,
        buffer: u64,
        port: PortId,
        mut message: KMessage,
    ) -> MsgReturn {
        let size = message.size();
        let slice = match UserSlice::new(buffer, size as u64).validate(MAX_MESSAGE_SIZE) {
            Ok(slice) => slice,
            Err(_) => return self.discard(message, MsgReturn::RcvInvalidData),
        };
        // Make sure the whole buffer is writable before any right moves.
        let writable = match self.tasks.get_mut(task) {
            Some(t) => user::prepare_write(&mut t.space, &mut self.objects, slice).is_ok(),
            None => false,
        };
        if !writable {
            return self.discard(message, MsgReturn::RcvInvalidData);
        }
        if let Some(CarriedRight::Send(p)) = message.destination.take() {
            self.release_send_right(p);
        } else if let Some(CarriedRight::SendOnce(p)) = message.destination {
            if let Some(p) = self.ports.get_mut(p) {
                p.send_once_rights = p.send_once_rights.saturating_sub(1);
            }
        }
        let mut code = MsgReturn::Success;
        let (reply_name, reply_bits) = match message.reply.take() {
            Some(right) => {
                let kind = right.received() as u32;
                match self.copyout(task, right) {
                    Ok(name) => (name, kind),
                    Err(()) => {
                        code = MsgReturn::RcvBodyError;
                        (0, 0)
                    }
                }
            }
            None => (0, 0),
        };
        for (i, right) in core::mem::take(&mut message.rights).into_iter().enumerate() {
            let at = 4 + i * DESCRIPTOR_SIZE;
            let Some(right) = right else { continue };
            let kind = right.received() as u8;
            let name = match self.copyout(task, right) {
                Ok(name) => name,
                Err(()) => {
                    code = MsgReturn::RcvBodyError;
                    0
                }
            };
            message.body[at..at + 8].copy_from_slice(&u64::from(name).to_le_bytes());
            message.body[at + 12] = kind;
        }
        let local = self
            .tasks
            .get(task)
            .and_then(|t| t.ipc.name_of(port))
            .unwrap_or(0);
        let header = MessageHeader {
            bits: reply_bits | if message.complex { COMPLEX } else { 0 },
            size: size as u32,
            remote_port: reply_name,
            local_port: local,
            voucher: 0,
            id: message.id,
        };
        let mut out = [0u8; MAX_MESSAGE_SIZE];
        out[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
        out[HEADER_SIZE..size].copy_from_slice(&message.body);
        if let Some(t) = self.tasks.get_mut(task) {
            if user::copy_out(&mut t.space, &mut self.objects, slice, &out[..size]).is_err() {
                return MsgReturn::RcvInvalidData;
            }
        }
        code
    }

    /// Destroys a message that cannot be delivered; returns `code`.
    fn discard(&mut self, message: KMessage, code: MsgReturn) -> MsgReturn {
        let mut ports = Vec::new();
        self.destroy_message(message, &mut ports);
        for port in ports {
            self.destroy_port(port);
        }
        code
    }

    /// Parks `thread` (already put on its wait queue by the caller) with `continuation`.
    pub fn block(&mut self, thread: ThreadId, continuation: Continuation, deadline: Option<u64>) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        t.state = ThreadState::Blocked;
        t.continuation = continuation;
        t.wait_sequence = t.wait_sequence.wrapping_add(1);
        let sequence = t.wait_sequence;
        if self.current == Some(thread) {
            self.current = None;
        }
        if let Some(deadline) = deadline {
            if self.timeouts.try_reserve(1).is_ok() {
                self.timeouts
                    .push(Reverse((deadline, thread.to_raw(), sequence)));
            }
        }
    }

    fn set_result(&mut self, thread: ThreadId, rax: u64, rdx: u64) {
        if let Some(t) = self.threads.get_mut(thread) {
            t.frame.rax = rax;
            t.frame.rdx = rdx;
        }
    }

    /// Ends `thread`'s wait with result (`rax`, `rdx`); the caller queues it to run (or runs
    /// it). The thread must already be off its wait queue.
    pub fn finish_wait(&mut self, thread: ThreadId, rax: u64, rdx: u64) {
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        t.frame.rax = rax;
        t.frame.rdx = rdx;
        t.continuation = Continuation::ReturnToUser;
        t.wait_sequence = t.wait_sequence.wrapping_add(1);
        t.state = ThreadState::Ready;
    }

    /// Ends a wait and queues the thread to run.
    pub fn wake(&mut self, thread: ThreadId, rax: u32, rdx: u64) {
        self.finish_wait(thread, u64::from(rax), rdx);
        self.make_ready(thread);
    }

    /// Wakes every thread waiting to receive on `port` itself with `code`.
    pub fn wake_receivers_of(&mut self, port: PortId, code: MsgReturn) {
        loop {
            let Some(p) = self.ports.get_mut(port) else {
                return;
            };
            let Some(thread) = p.receivers.pop_front(&mut self.threads) else {
                return;
            };
            self.wake(thread, code as u32, 0);
        }
    }

    /// Takes a blocked thread off whatever it waits on (for a timeout or its task's end).
    /// A waiting sender gets its message's rights back in its space.
    pub fn cancel_wait(&mut self, thread: ThreadId) {
        let Some(t) = self.threads.get(thread) else {
            return;
        };
        if t.state != ThreadState::Blocked {
            return;
        }
        let task = t.task;
        match t.continuation {
            Continuation::Receive(args) => {
                let queue = match args.from {
                    ReceiveFrom::Port(port) => self.ports.get_mut(port).map(|p| &mut p.receivers),
                    ReceiveFrom::Set(set) => self.port_sets.get_mut(set).map(|s| &mut s.receivers),
                };
                if let Some(queue) = queue {
                    queue.remove(&mut self.threads, thread);
                }
            }
            Continuation::TaskWait { port } => {
                if let Some(p) = self.ports.get_mut(port) {
                    p.receivers.remove(&mut self.threads, thread);
                }
            }
            Continuation::Send { port, .. } => {
                let message = self.ports.get_mut(port).and_then(|p| {
                    let i = p.blocked_senders.iter().position(|(s, _)| *s == thread)?;
                    p.blocked_senders.remove(i).map(|(_, m)| m)
                });
                if let Some(message) = message {
                    self.return_rights(task, message);
                }
            }
            Continuation::ReturnToUser => {}
        }
    }

    /// Gives a message that was never sent its rights back (a send that timed out).
    fn return_rights(&mut self, task: TaskId, message: KMessage) {
        let rights = message
            .destination
            .into_iter()
            .chain(message.reply)
            .chain(message.rights.into_iter().flatten());
        for right in rights {
            // A full space destroys the right (`copyout` releases it): nothing dangles.
            let _ = self.copyout(task, right);
        }
    }

    /// Ends the waits whose deadline has passed.
    pub fn expire_timeouts(&mut self, now: u64) {
        while let Some(Reverse((deadline, raw, sequence))) = self.timeouts.peek().copied() {
            if deadline > now {
                break;
            }
            self.timeouts.pop();
            let thread = ThreadId::from_raw(raw);
            let Some(t) = self.threads.get(thread) else {
                continue;
            };
            if t.wait_sequence != sequence || t.state != ThreadState::Blocked {
                continue;
            }
            let code = match t.continuation {
                Continuation::Send { .. } => MsgReturn::SendTimedOut,
                _ => MsgReturn::RcvTimedOut,
            };
            self.cancel_wait(thread);
            self.wake(thread, code as u32, 0);
        }
    }

    /// Hands messages queued on `port` to threads waiting on its (new) set.
    pub fn feed_set_receivers(&mut self, port: PortId) {
        loop {
            let Some(set) = self
                .ports
                .get(port)
                .filter(|p| !p.messages.is_empty())
                .and_then(|p| p.set)
            else {
                return;
            };
            let Some(receiver) = self
                .port_sets
                .get_mut(set)
                .and_then(|s| s.receivers.pop_front(&mut self.threads))
            else {
                return;
            };
            let Some(message) = self
                .ports
                .get_mut(port)
                .and_then(|p| p.messages.pop_front())
            else {
                return;
            };
            match self.deliver(receiver, port, message) {
                Ok(()) => self.make_ready(receiver),
                Err(back) => {
                    if let Some(p) = self.ports.get_mut(port) {
                        p.messages.push_front(back);
                    }
                }
            }
        }
    }

    /// Sends a kernel notification (no reply, no rights) to `port`; never waits.
    pub fn notify(&mut self, port: PortId, id: u32, body: &[u8]) {
        if !self.ports.contains(port) {
            return;
        }
        let mut bytes = Vec::new();
        if bytes.try_reserve(body.len()).is_err() {
            return;
        }
        bytes.extend_from_slice(body);
        let message = KMessage {
            id,
            complex: false,
            reply: None,
            rights: Vec::new(),
            body: bytes,
            destination: None,
        };
        self.enqueue(port, message, None, false);
    }
}

enum Taken {
    Message(PortId, KMessage),
    TooLarge(usize),
    Nothing,
}

fn has_waiting_receiver(kernel: &Kernel, port: PortId) -> bool {
    let Some(p) = kernel.ports.get(port) else {
        return false;
    };
    !p.receivers.is_empty()
        || p.set
            .and_then(|s| kernel.port_sets.get(s))
            .is_some_and(|s| !s.receivers.is_empty())
}

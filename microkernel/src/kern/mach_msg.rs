//! `mach_msg`: send, receive, or both (a call), with timeouts; delivery straight into a
//! waiting receiver's buffer, and hand-off from a caller that then waits to the server it
//! woke.
//!
//! A message is copied in once, into a kernel buffer, and out once, into the receiver's
//! memory; both go through the tasks' own maps (`kern::user`), so the sender writes into a
//! blocked receiver's buffer directly and the receiver returns to user mode with its message
//! in place and nothing left to do.

use super::rights::Tally;
use crate::ipc::message::{CarriedRight, KMessage, Parts};
use crate::ipc::port::{PortId, Receiver};
use crate::ipc::request::Request;
use crate::kern::kernel::Kernel;
use crate::kern::task::TaskId;
use crate::kern::thread::{
    Continuation, ReceiveArgs, ReceiveCall, ReceiveFrom, ThreadId, ThreadState,
};
use crate::kern::user::{self, UserSlice};
use crate::vm::address_space::MapCopy;
use crate::vm::map::{Protection, PAGE_SIZE};
use alloc::vec::Vec;
use core::mem::MaybeUninit;
use libipc::abi::message::out_of_line_flags;
use libipc::abi::message::{
    descriptor_kind, options, registers, Descriptor, Disposition, MessageHeader, MsgReturn,
    COMPLEX, DESCRIPTOR_SIZE, HEADER_SIZE, MAX_DESCRIPTORS, MAX_MESSAGE_SIZE,
};
use libipc::abi::syscall::{USER_BASE, USER_END, VM_ANYWHERE_BASE};

/// What the calling thread gets back.
pub enum MsgOutcome {
    /// Return now with `rax`, `rdx`.
    Return(u64, u64),
    /// The thread waits; whoever wakes it writes its result.
    Blocked,
}

/// Where a message to send is: in the sender's buffer at this address, or in its registers
/// (`options::SEND_REGISTERS`: the four words of a short message).
#[derive(Clone, Copy)]
enum Source {
    Buffer(u64),
    Registers([u64; 4]),
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
pub(crate) fn ticks_from_ms(ms: u64) -> u64 {
    ms.div_ceil(1000 / crate::arch::apic::HZ)
}

fn now() -> u64 {
    crate::arch::percpu::ticks()
}

impl Kernel {
    /// The `mach_msg` system call of `thread`.
    pub fn mach_msg(&mut self, thread: ThreadId, a: [u64; 6]) -> MsgOutcome {
        let [buffer, option, send_size, _, receive_name, timeout] = a;
        let Some((task, words)) = self
            .threads
            .get(thread)
            .map(|t| (t.task, [t.frame.r12, t.frame.r13, t.frame.r14, t.frame.r15]))
        else {
            return ret(MsgReturn::SendInvalidData, 0);
        };
        if option & !options::KNOWN != 0 {
            return ret(MsgReturn::InvalidOptions, 0);
        }
        let wants_receive = option & options::RECEIVE != 0;
        let receive = if wants_receive {
            let from = match self.receive_source(task, receive_name as u32) {
                Some(from) => from,
                None => return ret(MsgReturn::RcvInvalidName, 0),
            };
            let deadline =
                (option & options::RECEIVE_TIMEOUT != 0).then(|| now() + ticks_from_ms(timeout));
            Some(ReceiveArgs {
                from: from.into(),
                deadline,
                kept: None,
            })
        } else {
            None
        };
        let mut woken = None;
        if option & options::SEND != 0 {
            let send_deadline =
                (option & options::SEND_TIMEOUT != 0).then(|| now() + ticks_from_ms(timeout));
            let source = if option & options::SEND_REGISTERS != 0 {
                Source::Registers(words)
            } else {
                Source::Buffer(buffer)
            };
            match self.send(
                task,
                thread,
                source,
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
        #[cfg(target_os = "none")]
        if self.colloc.any_pending() {
            // A collocated server has the message just sent: it runs now, on this thread,
            // so the reply (if it gives one at once) waits for the receive below.
            crate::kern::colloc::run_pending(self);
        }
        let outcome = match receive {
            Some(args) => self.receive(task, thread, args, ReceiveCall::from_arguments(&a)),
            None => ret(MsgReturn::Success, 0),
        };
        if let Some(receiver) = woken {
            // A receiver bound to another processor is queued there, never run here.
            let here = self
                .threads
                .get(receiver)
                .is_some_and(|t| !t.bound || usize::from(t.cpu) == crate::arch::percpu::index());
            if here && matches!(outcome, MsgOutcome::Blocked) && self.current().is_none() {
                // Hand-off: the caller waits for the reply, the server it woke runs at once.
                if let Some(t) = self.threads.get_mut(receiver) {
                    t.state = ThreadState::Running;
                }
                self.sched.hand_off(receiver);
            } else {
                self.make_ready(receiver);
            }
        }
        outcome
    }

    /// A receive that never waits, made by the kernel for collocated server `task` from its
    /// port or set `name` into its `buffer` (kernel memory, `limit` bytes): the message's
    /// size, or `RcvTimedOut` when none waits (and the receive's other errors). What a
    /// receive with a zero timeout would do, without the system call around it.
    #[cfg(target_os = "none")]
    pub(crate) fn receive_now(
        &mut self,
        task: TaskId,
        name: u32,
        buffer: u64,
        limit: u64,
    ) -> Result<usize, MsgReturn> {
        let from = self
            .receive_source(task, name)
            .ok_or(MsgReturn::RcvInvalidName)?;
        match self.take_message(from, limit) {
            Taken::Message(port, mut message) => {
                let size = message.size();
                let code = user::as_collocated_call(|| {
                    self.copy_out_message(task, buffer, port, message.parts())
                });
                match code {
                    MsgReturn::Success => Ok(size),
                    code => Err(code),
                }
            }
            Taken::TooLarge(_) => Err(MsgReturn::RcvTooLarge),
            Taken::Nothing => Err(MsgReturn::RcvTimedOut),
        }
    }

    /// What `name` lets a task receive from: a receive right or a port set.
    fn receive_source(&mut self, task: TaskId, name: u32) -> Option<ReceiveFrom> {
        use crate::ipc::space::{Object, Rights};
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
    // Out of line: its 8 KiB staging buffer would otherwise make every `mach_msg`, the fast
    // path's too, pay for probing a large stack frame.
    #[inline(never)]
    fn send(
        &mut self,
        task: TaskId,
        thread: ThreadId,
        source: Source,
        size: u64,
        deadline: Option<u64>,
        then: Option<ReceiveArgs>,
        hand_off: bool,
    ) -> Result<Sent, MsgReturn> {
        if size < HEADER_SIZE as u64 || !size.is_multiple_of(4) {
            return Err(MsgReturn::SendMsgTooSmall);
        }
        if size > MAX_MESSAGE_SIZE as u64 {
            return Err(MsgReturn::SendTooLarge);
        }
        // Not cleared: only the copied-in prefix is ever read.
        let mut staging = [const { MaybeUninit::<u8>::uninit() }; MAX_MESSAGE_SIZE];
        let mut short;
        let bytes = match source {
            Source::Buffer(buffer) => {
                let slice = UserSlice::new(buffer, size)
                    .validate(MAX_MESSAGE_SIZE)
                    .map_err(|_| MsgReturn::SendInvalidData)?;
                let t = self.tasks.get_mut(task).ok_or(MsgReturn::SendInvalidData)?;
                user::copy_in_uninit(&mut t.space, self.vm.objects_mut(), slice, &mut staging)
                    .map_err(|_| MsgReturn::SendInvalidData)?
            }
            Source::Registers(words) => {
                if size > registers::MAX_SIZE as u64 {
                    return Err(MsgReturn::SendTooLarge);
                }
                short = registers::to_bytes(&words, size as u32);
                &mut short[..size as usize]
            }
        };
        let (head, body) = bytes.split_at_mut(HEADER_SIZE);
        let header = MessageHeader::from_bytes((&*head).try_into().expect("header size"));

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
        // Ports of the memory-object protocol and device ports are served by the kernel
        // itself, in this call (`super::receiver`).
        let kernel_port = match self.ipc.port(destination).map(|p| p.receiver) {
            Some(Receiver::Task(_)) | Some(Receiver::InTransit) => None,
            Some(Receiver::Kernel(object)) if object.takes_messages() => Some(object),
            _ => return Err(MsgReturn::SendInvalidDest),
        };
        if let Some(local) = local {
            self.check_copyin(
                task,
                header.local_port,
                local,
                &mut tally,
                MsgReturn::SendInvalidReply,
            )?;
        }
        let mut descriptors: Vec<Option<(u32, Disposition)>> = Vec::new();
        let mut regions: Vec<Option<(u64, u64, bool)>> = Vec::new();
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
            descriptors
                .try_reserve(count)
                .map_err(|_| MsgReturn::SendNoBuffer)?;
            regions
                .try_reserve(count)
                .map_err(|_| MsgReturn::SendNoBuffer)?;
            for i in 0..count {
                let at = 4 + i * DESCRIPTOR_SIZE;
                let d = Descriptor::from_bytes(
                    body[at..at + DESCRIPTOR_SIZE]
                        .try_into()
                        .expect("descriptor"),
                );
                match d.kind {
                    descriptor_kind::PORT => {}
                    descriptor_kind::OUT_OF_LINE => {
                        regions.push(self.check_region(task, &d)?);
                        descriptors.push(None);
                        continue;
                    }
                    _ => return Err(MsgReturn::SendInvalidData),
                }
                regions.push(None);
                if d.value == 0 {
                    descriptors.push(None); // a null name carries nothing
                    continue;
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
                descriptors.push(Some((name, disposition)));
            }
        }
        // A kernel receiver decodes the message now, while nothing has changed.
        let decoded = match kernel_port {
            Some(object) => {
                let request = Request {
                    id: header.id,
                    complex: header.is_complex(),
                    body,
                    memory: regions
                        .iter()
                        .flatten()
                        .next()
                        .map(|(start, end, _)| end - start),
                    reply: local.is_some(),
                };
                Some(
                    self.decode_for_kernel(object, &request)
                        .ok_or(MsgReturn::SendInvalidDest)?,
                )
            }
            None => None,
        };
        let size = HEADER_SIZE + body.len();
        let mut rights: Vec<Option<CarriedRight>> = Vec::new();
        rights
            .try_reserve_exact(descriptors.len())
            .map_err(|_| MsgReturn::SendNoBuffer)?;
        let mut memory: Vec<Option<MapCopy>> = Vec::new();
        memory
            .try_reserve_exact(regions.len())
            .map_err(|_| MsgReturn::SendNoBuffer)?;
        // Out-of-line memory comes out of the sender first: it is the last step that can
        // fail, and a failure puts back what it took.
        for region in &regions {
            let copy = match *region {
                Some((start, end, move_out)) => {
                    let t = self.tasks.get_mut(task).ok_or(MsgReturn::SendInvalidData)?;
                    match t
                        .space
                        .copy_out_range(self.vm.objects_mut(), start, end, move_out)
                    {
                        Ok(copy) => Some(copy),
                        Err(_) => {
                            self.give_back_memory(task, &mut memory);
                            return Err(MsgReturn::SendNoBuffer);
                        }
                    }
                }
                None => None,
            };
            memory.push(copy);
        }

        // Where the message goes: straight to a waiting receiver, or into the queue (for
        // which the memory is found now, while failing still changes nothing).
        let receiver = match kernel_port {
            Some(_) => None,
            None => self.take_receiver_for(destination, size),
        };
        let mut queued_body: Vec<u8> = Vec::new();
        if receiver.is_none() && kernel_port.is_none() {
            let full = self.ipc.port(destination).is_some_and(|p| p.is_full());
            // Queued, the message is charged to the sender: past its quota it is refused.
            let charge = KMessage::queued_bytes(body.len(), descriptors.len());
            let no_room = self.check_quota(task, charge as usize).is_err()
                || queued_body.try_reserve_exact(body.len()).is_err();
            if (full && deadline.is_some_and(|d| d <= now())) || no_room {
                self.give_back_memory(task, &mut memory);
                return Err(if no_room {
                    MsgReturn::SendNoBuffer
                } else {
                    MsgReturn::SendTimedOut
                });
            }
        }

        // Act: move the rights; from here nothing fails.
        let destination_right = self.copyin(task, header.remote_port, remote);
        let reply = local.and_then(|d| self.copyin(task, header.local_port, d));
        for slot in &descriptors {
            rights.push(slot.and_then(|(name, disposition)| self.copyin(task, name, disposition)));
        }
        let mut parts = Parts {
            id: header.id,
            complex: header.is_complex(),
            reply,
            rights: &mut rights,
            memory: &mut memory,
            body,
            destination: destination_right,
        };
        if let Some(decoded) = decoded {
            self.invoke_kernel(destination, decoded, parts);
            return Ok(Sent::Done(None));
        }
        let mut sender = Some((thread, deadline, then));
        if let Some(receiver) = receiver {
            match self.deliver(receiver, destination, parts) {
                Ok(()) if hand_off => return Ok(Sent::Done(Some(receiver))),
                Ok(()) => {
                    self.make_ready(receiver);
                    return Ok(Sent::Done(None));
                }
                // The receiver's buffer is out with a pager: the message waits in the queue
                // (beyond its limit if need be: the sender was promised delivery).
                Err(back) => parts = back,
            }
            sender = None;
            if queued_body.try_reserve_exact(parts.body.len()).is_err() {
                log::error!("ipc: no memory to queue a message for a paged-out receiver");
                self.discard(parts, MsgReturn::Success);
                return Ok(Sent::Done(None));
            }
        }
        queued_body.extend_from_slice(parts.body);
        let (id, complex, reply, destination_right) =
            (parts.id, parts.complex, parts.reply, parts.destination);
        let message = KMessage {
            id,
            complex,
            reply,
            rights,
            memory,
            body: queued_body,
            destination: destination_right,
            charge: None,
        };
        Ok(self.queue(destination, message, sender))
    }

    /// Queues `message` on `port`. A user sender (`sender`) waits when the queue is full;
    /// kernel notifications never wait.
    fn queue(
        &mut self,
        port: PortId,
        mut message: KMessage,
        sender: Option<(ThreadId, Option<u64>, Option<ReceiveArgs>)>,
    ) -> Sent {
        if let Some(task) = sender
            .and_then(|(thread, ..)| self.threads.get(thread))
            .map(|t| t.task)
        {
            self.charge_message(task, &mut message);
        }
        let Some(p) = self.ipc.port_mut(port) else {
            self.discard_message(message);
            return Sent::Done(None);
        };
        match sender {
            Some((thread, deadline, then)) if p.is_full() => {
                if p.blocked_senders.try_reserve(1).is_err() {
                    // No memory to wait with: queue beyond the limit rather than lose it.
                    if p.messages.try_reserve(1).is_ok() {
                        p.messages.push_back(message);
                    } else {
                        self.discard_message(message);
                    }
                    return Sent::Done(None);
                }
                p.blocked_senders.push_back((thread, message));
                self.block(thread, Continuation::Send { port, then }, deadline);
                Sent::Blocked
            }
            _ => {
                if p.messages.try_reserve(1).is_err() {
                    self.discard_message(message);
                    return Sent::Done(None);
                }
                p.messages.push_back(message);
                if let Receiver::Task(task) = p.receiver {
                    self.colloc.note_message(task);
                }
                Sent::Done(None)
            }
        }
    }

    /// Takes a thread waiting to receive from `port` (directly or through its set) whose
    /// buffer holds `size` bytes; those whose buffers are too small are woken with
    /// `RcvTooLarge` on the way.
    fn take_receiver_for(&mut self, port: PortId, size: usize) -> Option<ThreadId> {
        loop {
            let receiver = self.first_waiting_receiver(port)?;
            let waiting = self.threads.get(receiver);
            match waiting.map(|t| (t.continuation, ReceiveCall::of(&t.frame).limit)) {
                Some((Continuation::Receive(_), limit)) if size as u64 <= limit => {
                    return Some(receiver)
                }
                Some((Continuation::Receive(_), _)) => {
                    self.finish_wait(receiver, MsgReturn::RcvTooLarge as u64, size as u64);
                    self.make_ready(receiver);
                }
                _ => {}
            }
        }
    }

    /// A thread waiting to receive from `port`, directly or through its set; removed from
    /// its wait queue.
    fn first_waiting_receiver(&mut self, port: PortId) -> Option<ThreadId> {
        let p = self.ipc.port_mut(port)?;
        if let Some(thread) = p.receivers.pop_front(&mut self.threads) {
            return Some(thread);
        }
        let set = p.set?;
        self.ipc
            .set_mut(set)?
            .receivers
            .pop_front(&mut self.threads)
    }

    /// Copies a message out to blocked `receiver` (taken off its wait queue, with room for
    /// it) and ends its wait; the caller queues it to run or runs it. When the receiver's
    /// buffer needs a page from a pager, the receiver waits for the page instead (and then
    /// receives again) and the message comes back (`Err`) for the caller to queue.
    fn deliver<'a>(
        &mut self,
        receiver: ThreadId,
        port: PortId,
        parts: Parts<'a>,
    ) -> Result<(), Parts<'a>> {
        let size = parts.size();
        // A message for a thread is an explicit wake-up: a task the swapper stopped comes
        // back at once (before its buffer is looked at: its pages may be out).
        self.woken_by_message(receiver);
        let target = match self.threads.get(receiver) {
            Some(t) => match t.continuation {
                Continuation::Receive(_) => Some((t.task, ReceiveCall::of(&t.frame).buffer)),
                _ => None,
            },
            None => None,
        };
        let code = match target {
            Some((task, buffer)) => {
                if let Some(absent) = self.buffer_absent(task, buffer, size) {
                    self.wait_for_receive_buffer(receiver, absent);
                    return Err(parts);
                }
                self.copy_out_message(task, buffer, port, parts)
            }
            None => self.discard(parts, MsgReturn::RcvInvalidData),
        };
        self.finish_wait(receiver, code as u64, size as u64);
        Ok(())
    }

    /// The page of a pager's that `task`'s receive buffer `[buffer, +size)` lacks, if it
    /// lacks one (other pages are faulted in on the way).
    fn buffer_absent(&mut self, task: TaskId, buffer: u64, size: usize) -> Option<user::Absent> {
        let slice = UserSlice::new(buffer, size as u64)
            .validate(MAX_MESSAGE_SIZE)
            .ok()?;
        let t = self.tasks.get_mut(task)?;
        user::prepare_write(&mut t.space, self.vm.objects_mut(), slice).err()?;
        user::take_absent()
    }

    /// Blocked receiver `thread` waits for a page of its buffer and then receives again.
    fn wait_for_receive_buffer(&mut self, thread: ThreadId, absent: user::Absent) {
        let resume = crate::kern::memory::pager::Resume::Receive;
        let waited = self.wait_for_page(
            thread,
            absent.object,
            absent.offset,
            absent.strategy,
            absent.access,
            resume,
        );
        if waited.is_err() {
            // The pager is gone: the receive fails as for an unwritable buffer.
            self.finish_wait(thread, MsgReturn::RcvInvalidData as u64, 0);
            self.make_ready(thread);
        }
    }

    /// Receives for `thread` now if a message is there, else blocks it.
    fn receive(
        &mut self,
        task: TaskId,
        thread: ThreadId,
        args: ReceiveArgs,
        call: ReceiveCall,
    ) -> MsgOutcome {
        match self.take_message(args.from.get(), call.limit) {
            Taken::Message(port, mut message) => {
                let size = message.size();
                if let Some(absent) = self.buffer_absent(task, call.buffer, size) {
                    // Back to the head of its queue until the buffer's page is here.
                    match self.ipc.port_mut(port) {
                        Some(p) => p.messages.push_front(message),
                        None => self.discard_message(message),
                    }
                    let resume = crate::kern::memory::pager::Resume::Receive;
                    return match self.wait_for_page(
                        thread,
                        absent.object,
                        absent.offset,
                        absent.strategy,
                        absent.access,
                        resume,
                    ) {
                        Ok(()) => MsgOutcome::Blocked,
                        // The pager is gone: as for an unwritable buffer (the message stays).
                        Err(_) => ret(MsgReturn::RcvInvalidData, 0),
                    };
                }
                let code = self.copy_out_message(task, call.buffer, port, message.parts());
                ret(code, size as u64)
            }
            Taken::TooLarge(size) => ret(MsgReturn::RcvTooLarge, size as u64),
            Taken::Nothing => {
                if args.deadline.is_some_and(|d| d <= now()) {
                    return ret(MsgReturn::RcvTimedOut, 0);
                }
                let queued = match args.from.get() {
                    ReceiveFrom::Port(port) => self.ipc.port_mut(port).map(|p| &mut p.receivers),
                    ReceiveFrom::Set(set) => self.ipc.set_mut(set).map(|s| &mut s.receivers),
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
    fn take_message(&mut self, from: ReceiveFrom, limit: u64) -> Taken {
        let port = match from {
            ReceiveFrom::Port(port) => port,
            ReceiveFrom::Set(set) => match self.ipc.member_with_messages(set) {
                Some(port) => port,
                None => return Taken::Nothing,
            },
        };
        let Some(p) = self.ipc.port_mut(port) else {
            return Taken::Nothing;
        };
        let Some(front) = p.messages.front() else {
            return Taken::Nothing;
        };
        if front.size() as u64 > limit {
            return Taken::TooLarge(front.size());
        }
        let mut message = p.messages.pop_front().expect("front exists");
        if let Some((sender, waiting)) = p.blocked_senders.pop_front() {
            p.messages.push_back(waiting);
            self.sender_done(sender);
        }
        self.uncharge_message(&mut message);
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
        // (The result just written leaves the call's arguments in its registers as they were.)
        let waiting = self.threads.get(sender);
        match (then, waiting.map(|t| (t.task, ReceiveCall::of(&t.frame)))) {
            (Some(args), Some((task, call))) => match self.receive(task, sender, args, call) {
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
    /// header as the receiver sees it. The message's rights are consumed whatever happens.
    fn copy_out_message(
        &mut self,
        task: TaskId,
        buffer: u64,
        port: PortId,
        mut parts: Parts<'_>,
    ) -> MsgReturn {
        let size = parts.size();
        let slice = match UserSlice::new(buffer, size as u64).validate(MAX_MESSAGE_SIZE) {
            Ok(slice) => slice,
            Err(_) => return self.discard(parts, MsgReturn::RcvInvalidData),
        };
        // Make sure the whole buffer is writable before any right moves.
        let writable = match self.tasks.get_mut(task) {
            Some(t) => user::prepare_write(&mut t.space, self.vm.objects_mut(), slice).is_ok(),
            None => false,
        };
        if !writable {
            return self.discard(parts, MsgReturn::RcvInvalidData);
        }
        self.release_destination(parts.destination.take());
        let mut code = MsgReturn::Success;
        let (reply_name, reply_bits) = match parts.reply.take() {
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
        for (i, slot) in parts.rights.iter_mut().enumerate() {
            let at = 4 + i * DESCRIPTOR_SIZE;
            let Some(right) = slot.take() else { continue };
            let kind = right.received() as u8;
            let name = match self.copyout(task, right) {
                Ok(name) => name,
                Err(()) => {
                    code = MsgReturn::RcvBodyError;
                    0
                }
            };
            parts.body[at..at + 8].copy_from_slice(&u64::from(name).to_le_bytes());
            parts.body[at + 12] = kind;
        }
        for (i, slot) in parts.memory.iter_mut().enumerate() {
            let at = 4 + i * DESCRIPTOR_SIZE;
            let Some(copy) = slot.take() else { continue };
            let Some(t) = self.tasks.get_mut(task) else {
                copy.release(self.vm.objects_mut());
                continue;
            };
            let address = match t.space.copy_in_range(VM_ANYWHERE_BASE, copy) {
                Ok(address) => address,
                Err((copy, _)) => {
                    copy.release(self.vm.objects_mut());
                    code = MsgReturn::RcvBodyError;
                    0
                }
            };
            parts.body[at..at + 8].copy_from_slice(&address.to_le_bytes());
        }
        let local = self
            .tasks
            .get(task)
            .and_then(|t| t.ipc.name_of(port))
            .unwrap_or(0);
        let header = MessageHeader {
            bits: reply_bits | if parts.complex { COMPLEX } else { 0 },
            size: size as u32,
            remote_port: reply_name,
            local_port: local,
            voucher: 0,
            id: parts.id,
        };
        let (head, body) = slice.split_at(HEADER_SIZE);
        if let Some(t) = self.tasks.get_mut(task) {
            let written = user::copy_out(
                &mut t.space,
                self.vm.objects_mut(),
                head,
                &header.to_bytes(),
            )
            .and_then(|()| user::copy_out(&mut t.space, self.vm.objects_mut(), body, parts.body));
            if written.is_err() {
                return MsgReturn::RcvInvalidData;
            }
        }
        code
    }

    /// The right a message was sent with is done: a send right is released, a send-once
    /// right used up (no notification: it was used).
    pub(crate) fn release_destination(&mut self, right: Option<CarriedRight>) {
        match right {
            Some(CarriedRight::Send(port)) => self.release_send_right(port),
            Some(CarriedRight::SendOnce(port)) => {
                if let Some(p) = self.ipc.port_mut(port) {
                    p.send_once_rights = p.send_once_rights.saturating_sub(1);
                }
            }
            _ => {}
        }
    }

    /// Destroys a message that cannot be delivered (its rights released); returns `code`.
    fn discard(&mut self, mut parts: Parts<'_>, code: MsgReturn) -> MsgReturn {
        self.release_destination(parts.destination.take());
        for copy in parts.memory.iter_mut().filter_map(Option::take) {
            copy.release(self.vm.objects_mut());
        }
        let mut ports = Vec::new();
        for right in parts
            .reply
            .take()
            .into_iter()
            .chain(parts.rights.iter_mut().filter_map(Option::take))
        {
            match right {
                CarriedRight::Receive(port) => {
                    if ports.try_reserve(1).is_ok() {
                        ports.push(port);
                    } else {
                        self.destroy_port(port);
                    }
                }
                other => self.release(other),
            }
        }
        for port in ports {
            self.destroy_port(port);
        }
        code
    }

    fn discard_message(&mut self, mut message: KMessage) {
        self.uncharge_message(&mut message);
        self.discard(message.parts(), MsgReturn::Success);
    }

    /// Checks an out-of-line memory descriptor: a page-aligned, fully mapped, readable range
    /// of the sender's (`None`: a null region, nothing carried). Changes nothing.
    fn check_region(
        &mut self,
        task: TaskId,
        d: &Descriptor,
    ) -> Result<Option<(u64, u64, bool)>, MsgReturn> {
        if d.flags & !out_of_line_flags::DEALLOCATE != 0 || d.disposition != 0 || d.reserved != 0 {
            return Err(MsgReturn::SendInvalidData);
        }
        if d.size == 0 {
            return Ok(None);
        }
        let start = d.value;
        let size = u64::from(d.size).next_multiple_of(PAGE_SIZE);
        let end = start
            .checked_add(size)
            .ok_or(MsgReturn::SendInvalidMemory)?;
        if !start.is_multiple_of(PAGE_SIZE) || start < USER_BASE || end > USER_END {
            return Err(MsgReturn::SendInvalidMemory);
        }
        let map = self
            .tasks
            .get(task)
            .ok_or(MsgReturn::SendInvalidData)?
            .space
            .map();
        let readable = map
            .entries()
            .iter()
            .filter(|e| e.start < end && e.end > start)
            .all(|e| e.protection.allows(Protection::READ));
        if !map.is_fully_mapped(start, end) || !readable {
            return Err(MsgReturn::SendInvalidMemory);
        }
        Ok(Some((
            start,
            end,
            d.flags & out_of_line_flags::DEALLOCATE != 0,
        )))
    }

    /// Gives out-of-line memory taken from `task` back: a moved range goes back where it
    /// was; a copy is dropped (the sender kept its range).
    fn give_back_memory(&mut self, task: TaskId, memory: &mut [Option<MapCopy>]) {
        for copy in memory.iter_mut().filter_map(Option::take) {
            match self.tasks.get_mut(task) {
                Some(t) if !t.space.overlaps(copy.start, copy.size) => t.space.restore_range(copy),
                _ => copy.release(self.vm.objects_mut()),
            }
        }
    }

    /// Wakes every thread waiting to receive on `port` itself with `code`.
    pub fn wake_receivers_of(&mut self, port: PortId, code: MsgReturn) {
        loop {
            let Some(p) = self.ipc.port_mut(port) else {
                return;
            };
            let Some(thread) = p.receivers.pop_front(&mut self.threads) else {
                return;
            };
            self.wake(thread, code as u32, 0);
        }
    }

    /// Takes `thread` off the queue of receivers of `from`.
    pub(crate) fn leave_receive_queue(&mut self, thread: ThreadId, from: ReceiveFrom) {
        let queue = match from {
            ReceiveFrom::Port(port) => self.ipc.port_mut(port).map(|p| &mut p.receivers),
            ReceiveFrom::Set(set) => self.ipc.set_mut(set).map(|s| &mut s.receivers),
        };
        if let Some(queue) = queue {
            queue.remove(&mut self.threads, thread);
        }
    }

    /// Withdraws the message `thread` of `task` waits to queue on `port`: its rights go back
    /// to the task.
    pub(crate) fn withdraw_send(&mut self, thread: ThreadId, task: TaskId, port: PortId) {
        let message = self.ipc.port_mut(port).and_then(|p| {
            let i = p.blocked_senders.iter().position(|(s, _)| *s == thread)?;
            p.blocked_senders.remove(i).map(|(_, m)| m)
        });
        if let Some(mut message) = message {
            self.uncharge_message(&mut message);
            self.return_rights(task, message);
        }
    }

    /// Gives a message that was never sent its rights back (a send that timed out).
    fn return_rights(&mut self, task: TaskId, mut message: KMessage) {
        self.give_back_memory(task, &mut message.memory);
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

    /// Hands messages queued on `port` to threads waiting on its (new) set.
    pub fn feed_set_receivers(&mut self, port: PortId) {
        loop {
            let Some(p) = self.ipc.port(port) else {
                return;
            };
            let (Some(size), Some(_)) = (p.messages.front().map(KMessage::size), p.set) else {
                return;
            };
            let Some(receiver) = self.take_receiver_for(port, size) else {
                return;
            };
            let Some(mut message) = self.ipc.port_mut(port).and_then(|p| p.messages.pop_front())
            else {
                return;
            };
            self.uncharge_message(&mut message);
            if let Err(parts) = self.deliver(receiver, port, message.parts()) {
                // The receiver waits for a page of its buffer; the message goes back.
                let (reply, destination) = (parts.reply, parts.destination);
                (message.reply, message.destination) = (reply, destination);
                if let Some(p) = self.ipc.port_mut(port) {
                    p.messages.push_front(message);
                }
                return;
            }
            self.make_ready(receiver);
        }
    }

    /// Sends a kernel notification (no reply, no rights) to `port`; never waits.
    pub fn notify(&mut self, port: PortId, id: u32, body: &[u8]) {
        if !self.ipc.port_alive(port) {
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
            memory: Vec::new(),
            body: bytes,
            destination: None,
            charge: None,
        };
        self.kernel_send(port, message);
    }

    /// Sends a message the kernel made (a notification, a request to a pager, a reply to
    /// one) to `port`: to a waiting receiver, or into the queue; never waits.
    pub fn kernel_send(&mut self, port: PortId, mut message: KMessage) {
        if !self.ipc.port_alive(port) {
            self.discard_message(message);
            return;
        }
        let Some(receiver) = self.take_receiver_for(port, message.size()) else {
            self.queue(port, message, None);
            return;
        };
        match self.deliver(receiver, port, message.parts()) {
            Ok(()) => self.make_ready(receiver),
            Err(parts) => {
                // The receiver waits for a page of its buffer: the message waits in the
                // queue, with the rights `parts` took out of it put back.
                let (reply, destination) = (parts.reply, parts.destination);
                (message.reply, message.destination) = (reply, destination);
                self.queue(port, message, None);
            }
        }
    }
}

enum Taken {
    Message(PortId, KMessage),
    TooLarge(usize),
    Nothing,
}

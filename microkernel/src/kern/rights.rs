//! Moving port rights between spaces and messages, and what happens when rights and ports go
//! away: send-right counting, no-senders, send-once and dead-name notifications, and port
//! destruction.

use crate::ipc::message::{CarriedRight, KMessage};
use crate::ipc::port::{KernelObject, Port, PortId, Receiver};
use crate::ipc::port_set::PortSetId;
use crate::ipc::space::{Entry, IpcSpace, Object, PortName, Rights, SendInsert};
use crate::kern::kernel::Kernel;
use crate::kern::task::TaskId;
use alloc::vec::Vec;
use libipc::abi::message::{notify, Disposition, MsgReturn};

/// A task's IPC space.
pub type Space = IpcSpace<PortId, PortSetId, crate::ipc::PortHint>;

/// Most names one task may hold.
pub const SPACE_LIMIT: usize = 1 << 16;

/// The name a receiver sees for a right whose port died in transit (`MACH_PORT_DEAD`).
pub const DEAD_NAME: PortName = !0;

/// What a check of the rights a message names found, per name, so that one message cannot
/// use a right twice. The header's two names fit inline; descriptors' names (complex
/// messages only) go to the heap.
#[derive(Default)]
pub struct Tally {
    inline: [(PortName, u32, bool); 2],
    inline_len: usize,
    more: Vec<(PortName, u32, bool)>,
}

impl Tally {
    /// (name, send references used, receive right used) for `name`.
    fn get(&mut self, name: PortName) -> Result<&mut (PortName, u32, bool), MsgReturn> {
        if let Some(i) = self.inline[..self.inline_len]
            .iter()
            .position(|u| u.0 == name)
        {
            return Ok(&mut self.inline[i]);
        }
        if let Some(i) = self.more.iter().position(|u| u.0 == name) {
            return Ok(&mut self.more[i]);
        }
        if self.inline_len < self.inline.len() {
            self.inline[self.inline_len] = (name, 0, false);
            self.inline_len += 1;
            return Ok(&mut self.inline[self.inline_len - 1]);
        }
        self.more
            .try_reserve(1)
            .map_err(|_| MsgReturn::SendNoBuffer)?;
        self.more.push((name, 0, false));
        Ok(self.more.last_mut().expect("just pushed"))
    }
}

impl Kernel {
    /// The entry for `name` in `task`'s space; a name whose port died reads as a dead name.
    pub fn entry(&mut self, task: TaskId, name: PortName) -> Option<Entry<PortId, PortSetId>> {
        let t = self.tasks.get_mut(task)?;
        let entry = *t.ipc.lookup(name)?;
        if let Object::Port(port) = entry.object {
            if !self.ipc.port_alive(port) {
                t.ipc.make_dead(name);
                return t.ipc.lookup(name).copied();
            }
        }
        Some(entry)
    }

    /// Checks that `name` can be put in a message with `disposition` (after the uses already
    /// in `tally`), changing nothing. `error` is what to report if not.
    pub fn check_copyin(
        &mut self,
        task: TaskId,
        name: PortName,
        disposition: Disposition,
        tally: &mut Tally,
        error: MsgReturn,
    ) -> Result<PortId, MsgReturn> {
        let entry = self.entry(task, name).ok_or(error)?;
        let Object::Port(port) = entry.object else {
            return Err(error);
        };
        let use_ = tally.get(name)?;
        let ok = match disposition {
            Disposition::MoveReceive | Disposition::MakeSend | Disposition::MakeSendOnce => {
                let ok = entry.rights.contains(Rights::RECEIVE) && !use_.2;
                if disposition == Disposition::MoveReceive {
                    use_.2 = true;
                }
                ok
            }
            Disposition::MoveSend | Disposition::CopySend => {
                let ok = entry.rights.contains(Rights::SEND) && entry.user_references > use_.1;
                if disposition == Disposition::MoveSend {
                    use_.1 += 1;
                }
                ok
            }
            Disposition::MoveSendOnce => {
                let ok = entry.rights.contains(Rights::SEND_ONCE) && use_.1 == 0;
                use_.1 += 1;
                ok
            }
        };
        if ok {
            Ok(port)
        } else {
            Err(error)
        }
    }

    /// Takes the right `name` names out of `task`'s space (or makes one) for a message. Only
    /// after `check_copyin` accepted it: then this cannot fail.
    pub fn copyin(
        &mut self,
        task: TaskId,
        name: PortName,
        disposition: Disposition,
    ) -> Option<CarriedRight> {
        let t = self.tasks.get_mut(task)?;
        let right = match disposition {
            Disposition::MoveReceive => {
                let port = t.ipc.take_receive(name).ok()?;
                self.receive_right_leaves(port);
                CarriedRight::Receive(port)
            }
            Disposition::MoveSend => {
                let (port, space_right_gone) = t.ipc.remove_send(name, 1).ok()?;
                if !space_right_gone {
                    self.ipc.port_mut(port)?.send_rights += 1;
                }
                CarriedRight::Send(port)
            }
            Disposition::CopySend => {
                let Object::Port(port) = t.ipc.lookup(name)?.object else {
                    return None;
                };
                self.ipc.port_mut(port)?.send_rights += 1;
                CarriedRight::Send(port)
            }
            Disposition::MakeSend => {
                let Object::Port(port) = t.ipc.lookup(name)?.object else {
                    return None;
                };
                let p = self.ipc.port_mut(port)?;
                p.send_rights += 1;
                p.make_send_count = p.make_send_count.wrapping_add(1);
                CarriedRight::Send(port)
            }
            Disposition::MakeSendOnce => {
                let Object::Port(port) = t.ipc.lookup(name)?.object else {
                    return None;
                };
                self.ipc.port_mut(port)?.send_once_rights += 1;
                CarriedRight::SendOnce(port)
            }
            Disposition::MoveSendOnce => CarriedRight::SendOnce(t.ipc.take_send_once(name).ok()?),
        };
        Some(right)
    }

    /// A receive right leaves its space: the port is in transit, out of its set, and threads
    /// waiting on it give up.
    fn receive_right_leaves(&mut self, port: PortId) {
        let Some(p) = self.ipc.port_mut(port) else {
            return;
        };
        p.receiver = Receiver::InTransit;
        let set = p.set.take();
        if let Some(set) = set {
            if let Some(s) = self.ipc.set_mut(set) {
                s.members.retain(|m| *m != port);
            }
        }
        self.wake_receivers_of(port, MsgReturn::RcvPortDied);
    }

    /// Puts a right from a message into `task`'s space. Returns the name, or `DEAD_NAME` for
    /// a right whose port died on the way; `Err(())` when the space is full (the right is
    /// then destroyed).
    #[allow(clippy::result_unit_err)] // the only failure: the space is full (right released)
    pub fn copyout(&mut self, task: TaskId, right: CarriedRight) -> Result<PortName, ()> {
        let port = right.port();
        if !self.ipc.port_alive(port) {
            return Ok(DEAD_NAME);
        }
        let Some(t) = self.tasks.get_mut(task) else {
            self.release(right);
            return Err(());
        };
        let inserted = match right {
            CarriedRight::Receive(_) => t.ipc.insert_receive(port),
            CarriedRight::Send(_) => t.ipc.insert_send(port).map(|insert| {
                if let SendInsert::Merged(_) = insert {
                    // The space already had a send right: the carried one merges into it.
                    if let Some(p) = self.ipc.port_mut(port) {
                        p.send_rights -= 1;
                    }
                }
                insert.name()
            }),
            CarriedRight::SendOnce(_) => t.ipc.insert_send_once(port),
        };
        match inserted {
            Ok(name) => {
                if let CarriedRight::Receive(_) = right {
                    if let Some(p) = self.ipc.port_mut(port) {
                        p.receiver = Receiver::Task(task);
                    }
                }
                Ok(name)
            }
            Err(_) => {
                self.release(right);
                Err(())
            }
        }
    }

    /// Destroys a right nobody will receive: a send right is uncounted (no-senders may
    /// follow), a send-once right sends its send-once notification, a receive right destroys
    /// its port.
    pub fn release(&mut self, right: CarriedRight) {
        match right {
            CarriedRight::Send(port) => self.release_send_right(port),
            CarriedRight::SendOnce(port) => {
                let Some(p) = self.ipc.port_mut(port) else {
                    return;
                };
                p.send_once_rights = p.send_once_rights.saturating_sub(1);
                match p.receiver {
                    // A pager let go of the right to answer a kernel request unanswered.
                    Receiver::Kernel(KernelObject::PagerReply {
                        object,
                        offset,
                        kind,
                    }) => self.pager_reply_dropped(port, object, offset, kind),
                    Receiver::Kernel(_) => {}
                    Receiver::Task(_) | Receiver::InTransit => {
                        self.notify(port, notify::SEND_ONCE, &[])
                    }
                }
            }
            CarriedRight::Receive(port) => self.destroy_port(port),
        }
    }

    /// One send right of `port` is gone.
    pub fn release_send_right(&mut self, port: PortId) {
        let Some(p) = self.ipc.port_mut(port) else {
            return;
        };
        p.send_rights = p.send_rights.saturating_sub(1);
        if p.send_rights > 0 {
            return;
        }
        match p.receiver {
            // A task's port lives while the task does; an exited task's status is kept
            // until the last holder of its port lets go.
            // ... and the host port goes with its last holder.
            Receiver::Kernel(KernelObject::ExitedTask(_) | KernelObject::Host) => {
                self.destroy_port(port)
            }
            // A control port lives as long as its object, a reply port until its answer.
            Receiver::Kernel(
                KernelObject::Task(_)
                | KernelObject::MemoryControl(_)
                | KernelObject::PagerReply { .. }
                | KernelObject::DeviceMaster
                | KernelObject::Device(_),
            ) => {}
            Receiver::Task(_) | Receiver::InTransit => {
                if let Some(notify_port) = p.no_senders.take() {
                    let count = p.make_send_count;
                    self.notify(notify_port, notify::NO_SENDERS, &count.to_le_bytes());
                }
            }
        }
    }

    /// Destroys `port` and, in turn, every port whose receive right was queued in it.
    pub fn destroy_port(&mut self, port: PortId) {
        // Ports whose receive rights the destroyed ones held (allocated only if there are).
        let mut work = Vec::new();
        let mut next = Some(port);
        while let Some(port) = next.take().or_else(|| work.pop()) {
            let Some(p) = self.ipc.remove_port(port) else {
                continue;
            };
            let Port {
                messages,
                blocked_senders,
                set,
                dead_name_requests,
                receivers,
                ..
            } = *p;
            if let Some(set) = set {
                if let Some(s) = self.ipc.set_mut(set) {
                    s.members.retain(|m| *m != port);
                }
            }
            let mut receivers = receivers;
            while let Some(thread) = receivers.pop_front(&mut self.threads) {
                self.wake(thread, MsgReturn::RcvPortDied as u32, 0);
            }
            for message in messages {
                self.destroy_message(message, &mut work);
            }
            for (thread, message) in blocked_senders {
                self.wake(thread, MsgReturn::SendInvalidDest as u32, 0);
                self.destroy_message(message, &mut work);
            }
            for request in dead_name_requests {
                self.notify(
                    request.notify,
                    notify::DEAD_NAME,
                    &request.name.to_le_bytes(),
                );
            }
            if self.vm.any_pager_ports() {
                // A pager's memory object died with it.
                self.pager_died(port);
            }
        }
    }

    /// Releases a message's rights; receive rights are added to `ports_to_destroy`.
    pub fn destroy_message(&mut self, mut message: KMessage, ports_to_destroy: &mut Vec<PortId>) {
        self.uncharge_message(&mut message);
        if let Some(CarriedRight::SendOnce(port)) = message.destination {
            // Used up by the message, not destroyed unused: no notification.
            if let Some(p) = self.ipc.port_mut(port) {
                p.send_once_rights = p.send_once_rights.saturating_sub(1);
            }
        } else if let Some(CarriedRight::Send(port)) = message.destination {
            self.release_send_right(port);
        }
        for copy in message.memory.into_iter().flatten() {
            copy.release(self.vm.objects_mut());
        }
        for right in message
            .reply
            .into_iter()
            .chain(message.rights.into_iter().flatten())
        {
            match right {
                CarriedRight::Receive(port) => {
                    if ports_to_destroy.try_reserve(1).is_ok() {
                        ports_to_destroy.push(port);
                    } else {
                        self.destroy_port(port);
                    }
                }
                other => self.release(other),
            }
        }
    }

    /// Releases everything a dying task's space held.
    pub fn drain_space(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        // The space leaves the task first; each entry is released as it is taken, so the
        // teardown needs no memory (a list of the entries could not be had with the heap
        // full, and every entry left out of it would leak: issue 17's B1).
        let mut space = core::mem::replace(&mut t.ipc, Space::new(0));
        space.drain(|_, entry| self.release_entry(entry));
    }

    /// Releases what a task's space entry held (the task is going).
    fn release_entry(&mut self, entry: Entry<PortId, PortSetId>) {
        match entry.object {
            Object::Port(port) => {
                if entry.rights.contains(Rights::SEND) {
                    self.release_send_right(port);
                }
                if entry.rights.contains(Rights::SEND_ONCE) {
                    self.release(CarriedRight::SendOnce(port));
                }
                if entry.rights.contains(Rights::RECEIVE) {
                    self.destroy_port(port);
                }
            }
            Object::PortSet(set) => self.destroy_port_set(set),
            Object::Dead => {}
        }
    }

    /// Destroys a port set: its members leave it, its waiting threads give up.
    pub fn destroy_port_set(&mut self, set: PortSetId) {
        let Some(s) = self.ipc.remove_set(set) else {
            return;
        };
        for member in &s.members {
            if let Some(p) = self.ipc.port_mut(*member) {
                p.set = None;
            }
        }
        let mut receivers = s.receivers;
        while let Some(thread) = receivers.pop_front(&mut self.threads) {
            self.wake(thread, MsgReturn::RcvPortDied as u32, 0);
        }
    }

    /// Makes a new port whose receive right `task` holds; returns its name.
    pub fn allocate_port(&mut self, task: TaskId) -> Result<PortName, libipc::abi::KernReturn> {
        use libipc::abi::KernReturn;
        let port = self
            .ipc
            .insert_port(Port::new(Receiver::Task(task)))
            .map_err(|_| KernReturn::ResourceShortage)?;
        let Some(t) = self.tasks.get_mut(task) else {
            self.ipc.remove_port(port);
            return Err(KernReturn::InvalidArgument);
        };
        match t.ipc.insert_receive(port) {
            Ok(name) => Ok(name),
            Err(e) => {
                self.ipc.remove_port(port);
                Err(e)
            }
        }
    }
}

//! The IPC subsystem's state: every port and port set, in tables only this module touches.
//! The kernel's paths reach them through [`Ipc`]'s methods.

use super::port::{Port, PortId};
use super::port_set::{PortSet, PortSetId};
use crate::base::object_table::{OutOfMemory, Record, Table};

/// Every port and port set.
pub struct Ipc {
    ports: Table<Port>,
    port_sets: Table<PortSet>,
    /// Moves on (from 1) whenever a port a [`PortHint`] was taken of is removed, so a hint
    /// taken at the current stamp is good.
    hint_stamp: u64,
}

/// A port's record kept beside a name that resolved to it (the hint a task's `IpcSpace`
/// keeps for the kernel), with the [`Ipc::hint_stamp`] it was taken at. While the stamp has
/// not moved, no port a hint was taken of has been removed, so the record is still that
/// live port's (its box does not move). The IPC fast path reaches the ports a call names
/// through these rather than through the table. `Default`: no hint (stamp 0, never good).
#[derive(Clone, Copy)]
pub struct PortHint {
    record: Record<Port>,
    stamp: u64,
}

impl Default for PortHint {
    fn default() -> Self {
        PortHint {
            record: Record::dangling(),
            stamp: 0,
        }
    }
}

impl PortHint {
    /// A hint of `port`, taken at `stamp` (the current [`Ipc::hint_stamp`]); the port's
    /// removal will move the stamp on.
    #[inline(always)]
    pub fn new(port: &mut Port, stamp: u64) -> PortHint {
        port.hinted = true;
        Self::of_hinted(port, stamp)
    }

    /// [`PortHint::new`] for a port a message is sent to, if it is hinted at all: only a port
    /// a task receives from is, so the kernel's ports for each pager request (made and
    /// destroyed by the thousand under paging) never move the stamp.
    #[inline(always)]
    pub fn of_destination(port: &mut Port, stamp: u64) -> Option<PortHint> {
        matches!(port.receiver, super::port::Receiver::Task(_)).then(|| Self::new(port, stamp))
    }

    /// [`PortHint::new`] for a port a hint was already taken of (so marked).
    #[inline(always)]
    pub fn of_hinted(port: &mut Port, stamp: u64) -> PortHint {
        debug_assert!(port.hinted);
        PortHint {
            record: Record::new(port),
            stamp,
        }
    }

    /// Whether the hint is good at `stamp` (the current [`Ipc::hint_stamp`]).
    #[inline(always)]
    pub fn is_good(self, stamp: u64) -> bool {
        self.stamp == stamp
    }

    /// The port.
    ///
    /// # Safety
    /// The hint is good ([`PortHint::is_good`] at the current stamp, the kernel lock held
    /// since), and no other reference to the port is in use while this one is.
    #[inline(always)]
    pub unsafe fn port<'a>(self) -> &'a mut Port {
        debug_assert!(self.stamp != 0);
        // SAFETY: a good hint was made by `new` of a port that is still live (see the
        // type); the caller vouches that nothing else refers to it.
        unsafe { self.record.get() }
    }
}

impl Default for Ipc {
    fn default() -> Self {
        Self::new()
    }
}

impl Ipc {
    pub const fn new() -> Ipc {
        Ipc {
            ports: Table::new(),
            port_sets: Table::new(),
            hint_stamp: 1,
        }
    }

    /// The stamp a [`PortHint`] taken now has, and one taken earlier must have to be good.
    #[inline(always)]
    pub fn hint_stamp(&self) -> u64 {
        self.hint_stamp
    }

    /// Gives back the unused ends of the port and port-set tables (`Table::trim`); how many
    /// slots went.
    pub fn trim_tables(&mut self) -> usize {
        self.ports.trim() + self.port_sets.trim()
    }

    /// The port `id` names, if it is alive.
    #[inline(always)]
    pub fn port(&self, id: PortId) -> Option<&Port> {
        self.ports.get(id)
    }

    #[inline(always)]
    pub fn port_mut(&mut self, id: PortId) -> Option<&mut Port> {
        self.ports.get_mut(id)
    }

    /// Two different live ports at once.
    #[inline(always)]
    pub fn port_pair_mut(&mut self, a: PortId, b: PortId) -> Option<(&mut Port, &mut Port)> {
        self.ports.get_pair_mut(a, b)
    }

    #[inline(always)]
    pub fn port_alive(&self, id: PortId) -> bool {
        self.ports.contains(id)
    }

    pub fn insert_port(&mut self, port: Port) -> Result<PortId, OutOfMemory> {
        self.ports.insert(port)
    }

    /// Takes a port out (its rights and queue are the caller's to settle first).
    pub fn remove_port(&mut self, id: PortId) -> Option<alloc::boxed::Box<Port>> {
        let port = self.ports.remove(id)?;
        if port.hinted {
            // Its box is freed: hints of it, and so every hint, are stale.
            self.hint_stamp += 1;
        }
        Some(port)
    }

    /// Live ports.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// The port set `id` names, if it is alive.
    #[inline(always)]
    pub fn set(&self, id: PortSetId) -> Option<&PortSet> {
        self.port_sets.get(id)
    }

    #[inline(always)]
    pub fn set_mut(&mut self, id: PortSetId) -> Option<&mut PortSet> {
        self.port_sets.get_mut(id)
    }

    pub fn insert_set(&mut self, set: PortSet) -> Result<PortSetId, OutOfMemory> {
        self.port_sets.insert(set)
    }

    /// The first member of set `id` with a message queued.
    pub fn member_with_messages(&self, id: PortSetId) -> Option<PortId> {
        let set = self.port_sets.get(id)?;
        set.members.iter().copied().find(|member| {
            self.ports
                .get(*member)
                .is_some_and(|port| !port.messages.is_empty())
        })
    }

    pub fn remove_set(&mut self, id: PortSetId) -> Option<alloc::boxed::Box<PortSet>> {
        self.port_sets.remove(id)
    }
}

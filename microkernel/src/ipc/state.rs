//! The IPC subsystem's state: every port and port set, in tables only this module touches.
//! The kernel's paths reach them through [`Ipc`]'s methods.

use super::port::{Port, PortId};
use super::port_set::{PortSet, PortSetId};
use crate::base::object_table::{OutOfMemory, Table};

/// Every port and port set.
pub struct Ipc {
    ports: Table<Port>,
    port_sets: Table<PortSet>,
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
        }
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
        self.ports.remove(id)
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

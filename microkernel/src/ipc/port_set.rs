//! Port sets: one receive point for many ports (a server's loop over all its ports).

use super::port::PortId;
use crate::base::object_table::Id;
use crate::base::queue::Fifo;
use crate::base::ThreadId;
use alloc::vec::Vec;

pub type PortSetId = Id<PortSet>;

pub struct PortSet {
    pub members: Vec<PortId>,
    /// Threads waiting to receive from any member.
    pub receivers: Fifo<ThreadId>,
}

impl PortSet {
    pub fn new() -> PortSet {
        PortSet {
            members: Vec::new(),
            receivers: Fifo::new(),
        }
    }
}

impl Default for PortSet {
    fn default() -> Self {
        Self::new()
    }
}

//! The VM subsystem's state, [`Vm`]: its fields are private to `kern::memory`.

use super::pager::PagerLink;
use crate::base::object_table::Table;
use crate::base::TaskId;
use crate::ipc::port::PortId;
use crate::vm::address_space::ObjectId;
use crate::vm::object::VmObject;
use hashbrown::HashMap;

/// Memory objects and their pagers.
pub struct Vm {
    pub(super) objects: Table<VmObject>,
    /// The pager side of each pager-backed object.
    pub(super) pagers: HashMap<ObjectId, PagerLink>,
    /// The object over each mapped pager port (a port is one memory object).
    pub(super) pager_ports: HashMap<PortId, ObjectId>,
    /// The default pager's port (the kernel holds a send right) and the task that serves
    /// it, which may use the last free pages (it frees memory by taking it).
    pub(super) default_pager: Option<(PortId, TaskId)>,
    /// The program pager's port (the kernel holds a send right): programs loaded from the
    /// boot archive map their files from its objects.
    pub(super) program_pager: Option<PortId>,
    /// The task serving the program pager's port: VM-privileged for memory as the default
    /// pager (every task's text comes through it).
    pub(super) program_pager_task: Option<TaskId>,
    /// The task of the backing store behind the default pager, if any: VM-privileged too.
    pub(super) backing_store: Option<TaskId>,
    /// The pageout daemon returns whole clusters, used or not (the task swapper's switch;
    /// `pageout=whole` on the command line).
    pub(super) pageout_whole_clusters: bool,
    /// New default-pager objects the pageout daemon may still ask for in this batch (it
    /// keeps at most `pageout::MAX_CREATES_PENDING` unanswered); `None` until the batch
    /// first needs one.
    pub(super) pageout_creates_left: Option<u32>,
}

impl Default for Vm {
    fn default() -> Self {
        Self::new()
    }
}

impl Vm {
    pub fn new() -> Vm {
        Vm {
            objects: Table::new(),
            pagers: HashMap::new(),
            pager_ports: HashMap::new(),
            default_pager: None,
            program_pager: None,
            program_pager_task: None,
            backing_store: None,
            pageout_whole_clusters: false,
            pageout_creates_left: None,
        }
    }

    /// The memory objects, for the VM mechanism's functions (mapping, copying, faults).
    #[inline(always)]
    pub fn objects(&self) -> &Table<VmObject> {
        &self.objects
    }

    #[inline(always)]
    pub fn objects_mut(&mut self) -> &mut Table<VmObject> {
        &mut self.objects
    }

    /// Whether `task` is VM-privileged for memory: the default pager, the backing store
    /// behind it or the program pager, which free memory or serve every task's text and so
    /// may take the last free pages and are never ended for want of memory.
    #[inline(always)]
    pub fn memory_privileged(&self, task: Option<TaskId>) -> bool {
        task.is_some()
            && (self.default_pager.map(|(_, t)| t) == task
                || self.backing_store == task
                || self.program_pager_task == task)
    }

    /// Whether a default pager is registered.
    #[inline(always)]
    pub fn has_default_pager(&self) -> bool {
        self.default_pager.is_some()
    }

    /// The program pager's port, once one is registered.
    pub fn program_pager(&self) -> Option<PortId> {
        self.program_pager
    }

    /// The pageout daemon returns whole clusters (`pageout=whole`).
    pub fn set_pageout_whole_clusters(&mut self, whole: bool) {
        self.pageout_whole_clusters = whole;
    }

    /// The port of each pager-backed object's pager (one per object; a pager serving
    /// several objects appears once for each).
    pub fn pager_ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.pagers.values().map(|link| link.port)
    }

    /// Whether any mapped object has a pager port (if none does, a dying port cannot be
    /// one).
    pub fn any_pager_ports(&self) -> bool {
        !self.pager_ports.is_empty()
    }
}

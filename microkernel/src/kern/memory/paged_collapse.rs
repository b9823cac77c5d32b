//! Collapsing a backing object whose pages are partly with the default pager: the object in
//! front takes over its pager (Mach's collapse that moves the backing object's pager to the
//! parent), so shadow chains stay bounded under fork and exit while memory is paged out.
//!
//! `address_space::collapse` merges backing objects that only the object in front still
//! uses; it works on the object table alone, so one with a default-pager object (whose link,
//! ports and requests the kernel keeps) is noted here as a candidate instead, and merged on
//! the way out of the kernel, where the links are at hand.

use crate::ipc::port::{KernelObject, Receiver};
use crate::kern::kernel::Kernel;
use crate::vm::address_space::ObjectId;
use crate::vm::kernel_space::{self, with_mappings};
use crate::vm::map::PAGE_SIZE;
use crate::vm::object::ObjectKind;
use crate::vm::statistics;

impl Kernel {
    /// Merges the noted candidates whose conditions still hold: first the backing objects
    /// left to one shadow (which may note paged ones), then those with pages at the default
    /// pager.
    pub fn collapse_paged_objects(&mut self) {
        while let Some(front) = crate::vm::notes::take_collapse_front() {
            crate::vm::address_space::collapse(self.vm.objects_mut(), front);
        }
        let candidates = crate::vm::notes::take_collapse_candidates();
        for (front, backing) in candidates {
            self.collapse_paged(front, backing);
        }
    }

    /// Merges `backing` (anonymous, used only by `front`, at offset 0, its pager idle) into
    /// `front` (which has no pager of its own): `backing`'s resident pages that `front` does
    /// not shadow move in front, `front` takes over its pager object and the record of what
    /// the pager holds, and reads through to what `backing` read through to.
    fn collapse_paged(&mut self, front: ObjectId, backing: ObjectId) {
        let (Some(f), Some(b)) = (self.vm.objects.get(front), self.vm.objects.get(backing)) else {
            return;
        };
        let eligible = f.backing() == Some((backing, 0))
            && !f.has_default_pager()
            && !self.vm.pagers.contains_key(&front)
            && b.references() == 1
            && b.kind() == ObjectKind::Anonymous
            && b.has_default_pager()
            && self.vm.pagers.get(&backing).is_some_and(|link| {
                link.state == super::pager::LinkState::Ready
                    && link.pending.is_empty()
                    && link.returns.is_empty()
                    && link.waiters.is_empty()
            });
        if !eligible {
            return;
        }
        let needed = b.resident_count();
        let room = self.vm.pagers.try_reserve(1).is_ok()
            && self
                .vm
                .objects
                .get_mut(front)
                .is_some_and(|o| o.reserve_pages(needed).is_ok());
        if !room {
            return;
        }
        let Some(mut b) = self.vm.objects.remove(backing) else {
            return;
        };
        let grandparent = b.backing();
        let paged_out = b.take_paged_out();
        let f = self.vm.objects.get_mut(front).expect("checked above");
        let size = f.size();
        for (offset, frame) in b.take_resident() {
            if offset < size && !f.has_page(offset) {
                let _ = f.insert_page(offset, frame); // room reserved above
                with_mappings(|m| m.set_owner(frame / PAGE_SIZE, front.to_raw(), offset));
            } else if let Err(e) = kernel_space::free_frame(frame) {
                log::error!("vm: collapsed page {frame:#x}: {e}");
            }
        }
        if let Some(set) = paged_out {
            f.adopt_paged_out(set);
        }
        // `b`'s reference to its own backing passes to `front`.
        f.set_backing(grandparent);
        let link = self.vm.pagers.remove(&backing).expect("checked above");
        if let Some(p) = self.ipc.port_mut(link.control) {
            p.receiver = Receiver::Kernel(KernelObject::MemoryControl(front));
        }
        self.vm.pager_ports.insert(link.port, front);
        self.vm.pagers.insert(front, link);
        statistics::count(&statistics::COLLAPSES);
    }
}

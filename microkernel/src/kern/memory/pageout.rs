//! The pageout daemon: keeps free memory above its target by taking pages from the inactive
//! queue: clean pages are freed, dirty ones go back to their pager (`data_return`) in
//! clusters built around the LRU victim; anonymous memory goes to the default pager, whose
//! object for it is made on the first pageout. Threads whose faults find no free page wait
//! for the daemon without a kernel stack.
//!
//! There is no daemon thread (a blocked thread holds no kernel stack, and the kernel has one
//! per CPU): the work runs on the way out of the kernel whenever an allocation has left free
//! memory below the target, a bounded batch at a time, like any other deferred kernel work.

use super::pager::{EmmiCall, PagerLink, PendingReturn, ReplyKind, Resume};
use crate::ipc::message::CarriedRight;
use crate::kern::kernel::Kernel;
use crate::kern::loader::Exit;
use crate::kern::sched::WaitQueue;
use crate::kern::thread::{Continuation, ThreadId, ThreadState};
use crate::vm::address_space::{MapCopy, ObjectId};
use crate::vm::kernel_space::{self, free_frames, free_target};
use crate::vm::map::PAGE_SIZE;
use crate::vm::object::{ObjectKind, VmObject};
use crate::vm::page::page_flags::{DIRTY, REFERENCED};
use crate::vm::page::{ACTIVE, INACTIVE};
use crate::vm::pmap;
use crate::vm::statistics::{self, count};
use alloc::vec::Vec;
use libipc::abi::syscall::Syscall;
use libipc::abi::KernReturn;

/// Pages the daemon looks at in one batch, at most.
const BATCH: usize = 512;

/// Free frames above the users' floor at which threads waiting for memory are let go.
const WAKE_MARGIN: usize = 64;

/// How long a thread waits for memory before its fault fails (timer ticks: 10 s).
const MEMORY_WAIT_TICKS: u64 = 1000;

/// Most `default_pager.create` requests the daemon keeps unanswered. Each new pager object
/// costs the kernel heap a link, two ports and a message, and the pager a record and a name;
/// made by the thousand in one burst (NONAIM at 1,000 users: 4,000 anonymous objects with
/// dirty pages) they took the kernel's last frames, and the pager could be handed no
/// more rights. The pages of objects beyond wait their turn on the active queue.
pub(crate) const MAX_CREATES_PENDING: u32 = 64;

/// Whether page `frame` (a frame number) was used since the daemon last looked: its
/// mappings' accessed bits, or those harvested into its record from mappings since gone
/// (tables collected from an idle task, an entry replaced or removed). Clears both.
fn used_since_looked_at(frame: u64) -> bool {
    let (referenced, _) = pmap::referenced_and_modified(frame * PAGE_SIZE);
    let harvested = kernel_space::with_mappings(|m| m.take_flag(frame, REFERENCED));
    referenced || harvested == Some(true)
}

impl Kernel {
    /// Runs a batch of pageout if memory is short. Cheap when it is not.
    #[inline(always)]
    pub fn pageout_if_wanted(&mut self) {
        if kernel_space::take_pageout_wanted() {
            self.pageout();
        }
        if self.sched.any_waiting(WaitQueue::Memory) {
            self.wake_memory_waiters();
        }
    }

    /// One batch: ages active pages into the inactive queue (a third of the pages are kept
    /// inactive) and takes inactive ones until the free target is met.
    pub fn pageout(&mut self) {
        let target = free_target() as u64;
        let floor = kernel_space::user_floor() as u64;
        // Pages on their way to pagers count as free: they will be once answered. But not
        // below the users' floor: a pager that needs memory to answer (the tables that map
        // what is returned to it) would wait for pages only the answers free, so the
        // daemon goes on (clean pages free at once).
        let short = || {
            let free = free_frames() as u64;
            free < floor || free + super::pager::pages_in_flight() < target
        };
        // Counted when this batch first needs a new pager object.
        self.vm.pageout_creates_left = None;
        let mut budget = BATCH;
        // Where the batch goes on in the inactive queue: past the pages whose pagers will
        // take them once answers on their way arrive, which keep their places (a
        // swapped-out task's, at the head, stay first).
        let mut cursor: Option<u64> = None;
        while budget > 0 && short() {
            budget -= 1;
            let Some((active, inactive)) =
                kernel_space::with_mappings(|m| (m.queue_len(ACTIVE), m.queue_len(INACTIVE)))
            else {
                return;
            };
            if inactive * 3 < active + inactive {
                self.age_one();
                continue;
            }
            let next = kernel_space::with_mappings(|m| {
                let at = cursor.filter(|&c| m.queue_of(c) == Some(INACTIVE));
                at.or_else(|| m.oldest(INACTIVE))
                    .map(|frame| (frame, m.next_in_queue(frame)))
            })
            .flatten();
            let Some((frame, after)) = next else {
                break;
            };
            let waits = self.consider(frame);
            cursor = after;
            if waits && after.is_none() {
                // Every inactive page left waits for its pager.
                break;
            }
        }
        if short() {
            // Not done (the batch ran out): go on at the next exit from the kernel. (Pages
            // on their way to pagers free memory when answered; an answer that frees too
            // little asks for the daemon again through the allocation that follows.)
            kernel_space::want_pageout();
        }
    }

    /// Moves the oldest active page to the inactive queue, or back to the active tail if it
    /// was used since it was last looked at (its referenced bits are cleared either way).
    fn age_one(&mut self) {
        let Some(frame) = kernel_space::with_mappings(|m| m.oldest(ACTIVE)).flatten() else {
            return;
        };
        let referenced = used_since_looked_at(frame);
        kernel_space::with_mappings(|m| {
            m.requeue(frame, if referenced { ACTIVE } else { INACTIVE })
        });
    }

    /// Whether `frame` is mapped by the VM-privileged task (the default pager), whose memory
    /// is never paged out: it pages everyone else's in.
    fn mapped_by_privileged(&self, frame: u64) -> bool {
        let root = |task: Option<crate::kern::task::TaskId>| {
            task.and_then(|t| self.tasks.get(t))
                .map(|t| t.space.pmap().root())
        };
        let roots = [
            root(self.vm.default_pager.map(|(_, t)| t)),
            root(self.vm.backing_store),
        ];
        if roots == [None, None] {
            return false;
        }
        let mut mapped = false;
        kernel_space::with_mappings(|m| {
            m.scan(frame, |owner, _| mapped |= roots.contains(&Some(owner)))
        });
        mapped
    }

    /// Looks at inactive page `frame` (a frame number): reactivated if used, freed if clean,
    /// returned to its pager with its cluster if dirty. `true` if it stays where it is,
    /// waiting for its pager (`PagerLink::busy_for_now`).
    fn consider(&mut self, frame: u64) -> bool {
        let reactivate = |frame| {
            kernel_space::with_mappings(|m| {
                m.take_flag(frame, REFERENCED);
                m.requeue(frame, ACTIVE);
            })
        };
        if used_since_looked_at(frame) || self.mapped_by_privileged(frame) {
            reactivate(frame);
            return false;
        }
        let Some(Some((raw, offset))) = kernel_space::with_mappings(|m| m.owner(frame)) else {
            return false;
        };
        let Some((object, o)) =
            ObjectId::from_raw(raw).and_then(|object| Some((object, self.vm.objects.get(object)?)))
        else {
            reactivate(frame);
            return false;
        };
        let dirty = kernel_space::with_mappings(|m| m.flags(frame) & DIRTY != 0).unwrap_or(true);
        let kind = o.kind();
        if !dirty && (kind == ObjectKind::Pager || o.is_paged_out(offset)) {
            // Its pager has this very data: drop it.
            pmap::remove_everywhere(frame * PAGE_SIZE);
            if let Some(o) = self.vm.objects.get_mut(object) {
                o.take_page(offset);
            }
            let _ = kernel_space::free_frame(frame * PAGE_SIZE);
            count(&statistics::RECLAIMED);
            return false;
        }
        let ready = match kind {
            ObjectKind::Pager => self
                .vm
                .pagers
                .get(&object)
                .is_some_and(PagerLink::takes_returns),
            ObjectKind::Anonymous => self.default_pager_object(object),
            ObjectKind::Physical { .. } => false,
        };
        if !ready {
            if self
                .vm
                .pagers
                .get(&object)
                .is_some_and(PagerLink::busy_for_now)
            {
                // Its pager will take it once the answers on their way arrive (its object's
                // create, returns in flight): it keeps its place.
                return true;
            }
            // No pager to take it now (none registered, its create deferred, returns
            // paused after a refusal): it stays, at the back of the line.
            reactivate(frame);
            return false;
        }
        self.return_cluster(object, offset);
        false
    }

    /// Whether anonymous `object` has a default-pager object ready for returns; makes one
    /// (sends `default_pager.create`) the first time.
    fn default_pager_object(&mut self, object: ObjectId) -> bool {
        if let Some(link) = self.vm.pagers.get(&object) {
            return link.takes_returns();
        }
        let Some((pager, _)) = self.vm.default_pager else {
            return false;
        };
        // Few at a time, and none from the last frames (the kernel's records for them
        // would take what the pager needs to answer). The unanswered ones are counted from
        // the links, once a batch, so no count can drift.
        let left = match self.vm.pageout_creates_left {
            Some(left) => left,
            None => {
                let pending = self
                    .vm
                    .pagers
                    .values()
                    .filter(|l| l.default_pager && l.state == super::pager::LinkState::Initializing)
                    .count() as u32;
                MAX_CREATES_PENDING.saturating_sub(pending)
            }
        };
        if left == 0 || free_frames() < 4 * kernel_space::pager_emergency_frames() {
            self.vm.pageout_creates_left = Some(left);
            count(&statistics::CREATES_DEFERRED);
            return false;
        }
        self.vm.pageout_creates_left = Some(left - 1);
        let size = self.vm.objects.get(object).map_or(0, VmObject::size);
        if self
            .vm
            .objects
            .get_mut(object)
            .is_none_or(|o| o.attach_default_pager().is_err())
        {
            return false;
        }
        // The object's port, whose receive right goes to the default pager.
        let Ok((port, control)) = self.new_object_port(object) else {
            return false;
        };
        if let Some(link) = self.vm.pagers.get_mut(&object) {
            link.default_pager = true;
        }
        let Ok(reply) = self.pager_reply_port(object, 0, ReplyKind::Init) else {
            return false;
        };
        let call = EmmiCall::Create {
            object: CarriedRight::Receive(port),
            control: CarriedRight::Send(control),
            size,
        };
        self.call_pager(pager, call, Some(reply));
        // Ready once the pager answers with the object's attributes.
        false
    }

    /// Returns the dirty run of `object`'s cluster around the page at `offset`: its
    /// neighbours go with it if dirty and not used recently (all resident ones, with the
    /// whole-cluster switch: the task swapper's).
    fn return_cluster(&mut self, object: ObjectId, offset: u64) {
        let Some(link) = self.vm.pagers.get(&object) else {
            return;
        };
        let cluster = u64::from(link.cluster_pages) * PAGE_SIZE;
        let size = self.vm.objects.get(object).map_or(0, VmObject::size);
        let cluster_start = offset - offset % cluster;
        let cluster_end = (cluster_start + cluster).min(size);
        let whole = self.vm.pageout_whole_clusters;
        let eligible = |kernel: &Kernel, at: u64| {
            let Some(frame) = kernel
                .vm
                .objects
                .get(object)
                .and_then(|o| o.resident_page(at))
            else {
                return false;
            };
            if kernel
                .vm
                .pagers
                .get(&object)
                .is_some_and(|l| l.returning(at))
                || kernel.mapped_by_privileged(frame / PAGE_SIZE)
            {
                return false;
            }
            if whole {
                return true;
            }
            let (referenced, _) = pmap::referenced_and_modified(frame);
            let dirty = kernel_space::with_mappings(|m| m.flags(frame / PAGE_SIZE) & DIRTY != 0)
                == Some(true);
            !referenced && dirty
        };
        let mut start = offset;
        while start > cluster_start && eligible(self, start - PAGE_SIZE) {
            start -= PAGE_SIZE;
        }
        let mut end = offset + PAGE_SIZE;
        while end < cluster_end && eligible(self, end) {
            end += PAGE_SIZE;
        }
        self.return_pages(object, start, end, false);
    }

    /// Sends the resident pages `[start, end)` of `object` to its pager with `data_return`:
    /// they leave every mapping and the object and travel out of line in a transit object
    /// (no copy), which the kernel keeps a reference to until the pager answers: a fault on
    /// one of them is served from it (`pager::serve_from_return`). With `keep` (a clean asked for
    /// with `lock_request`), copies travel instead and the pages stay, clean. `false` if
    /// nothing could be sent (no memory).
    pub(super) fn return_pages(
        &mut self,
        object: ObjectId,
        start: u64,
        end: u64,
        keep: bool,
    ) -> bool {
        let pages = (end - start) / PAGE_SIZE;
        let Some(port) = self.vm.pagers.get(&object).map(|l| l.port) else {
            return false;
        };
        let anonymous = self
            .vm
            .objects
            .get(object)
            .is_some_and(|o| o.kind() == ObjectKind::Anonymous);
        // Everything that can fail first: the transit object, the records, the message.
        let mut transit = VmObject::new(ObjectKind::Anonymous, end - start);
        let room = transit.reserve_pages(pages as usize).is_ok()
            && self
                .vm
                .pagers
                .get_mut(&object)
                .is_some_and(|l| l.returns.try_reserve(1).is_ok());
        if !room {
            return false;
        }
        // Copies, for pages that stay: all the frames first, so a shortage changes nothing.
        let mut copies = Vec::new();
        if keep {
            if copies.try_reserve_exact(pages as usize).is_err() {
                return false;
            }
            for _ in 0..pages {
                match kernel_space::allocate_user_frame() {
                    Some(frame) => copies.push(frame),
                    None => {
                        for frame in copies {
                            let _ = kernel_space::free_frame(frame);
                        }
                        return false;
                    }
                }
            }
        }
        let free_copies = |copies: Vec<u64>| {
            for frame in copies {
                let _ = kernel_space::free_frame(frame);
            }
        };
        let Ok(transit) = self.vm.objects.insert(transit) else {
            free_copies(copies);
            return false;
        };
        let Ok(reply) = self.pager_reply_port(object, start, ReplyKind::Return) else {
            self.vm.objects.remove(transit);
            free_copies(copies);
            return false;
        };
        let copy = match MapCopy::whole_object(transit, end - start) {
            Ok(copy) => copy,
            Err(_) => {
                self.destroy_port(reply);
                self.vm.objects.remove(transit);
                free_copies(copies);
                return false;
            }
        };
        let mut dirty_any = false;
        let mut copies = copies.into_iter();
        for at in (start..end).step_by(PAGE_SIZE as usize) {
            let frame = if keep {
                let Some(page) = self
                    .vm
                    .objects
                    .get(object)
                    .and_then(|o| o.resident_page(at))
                else {
                    continue;
                };
                let frame = copies.next().expect("one copy per page");
                // No write may land between the copy and the page being called clean (a
                // thread on another CPU): every mapping read-only first, its dirty bits in
                // the record.
                pmap::write_protect(page);
                crate::vm::address_space::copy_frame(page, frame);
                let flags = kernel_space::with_mappings(|m| m.flags(page / PAGE_SIZE));
                dirty_any |= flags.unwrap_or(DIRTY) & DIRTY != 0;
                // Saved: clean until written again (a write faults and marks it).
                pmap::mark_clean(page);
                frame
            } else {
                let Some(frame) = self
                    .vm
                    .objects
                    .get_mut(object)
                    .and_then(|o| o.take_page(at))
                else {
                    continue;
                };
                pmap::remove_everywhere(frame);
                let flags = kernel_space::with_mappings(|m| {
                    let flags = m.flags(frame / PAGE_SIZE);
                    m.clear_owner(frame / PAGE_SIZE);
                    flags
                });
                dirty_any |= flags.unwrap_or(DIRTY) & DIRTY != 0;
                frame
            };
            if let Some(t) = self.vm.objects.get_mut(transit) {
                // Room was reserved above.
                let _ = t.insert_page(at - start, frame);
            }
            if anonymous {
                if let Some(o) = self.vm.objects.get_mut(object) {
                    if o.note_paged_out(at).is_err() {
                        log::error!("vm: no memory to record a paged-out page");
                    }
                }
            }
        }
        // The kernel keeps a reference to the pages in flight until the pager answers: a
        // fault on one is served from it, and a pager that dies or drops the reply loses
        // nothing.
        if let Some(t) = self.vm.objects.get_mut(transit) {
            t.add_reference();
        }
        if let Some(link) = self.vm.pagers.get_mut(&object) {
            link.returns.push(PendingReturn {
                start,
                end,
                reply,
                transit,
            });
            link.in_flight += pages as u32;
            super::pager::count_in_flight(pages, false);
            link.statistics.returns += 1;
            link.statistics.pages_returned += pages;
        }
        for frame in copies {
            // Pages that were not resident after all: their copies are not needed.
            let _ = kernel_space::free_frame(frame);
        }
        count(&statistics::RETURNS_BY_PAGES[pages.min(16) as usize]);
        statistics::add(&statistics::PAGEOUTS, pages);
        let call = EmmiCall::DataReturn {
            offset: start,
            copy,
            dirty: dirty_any,
        };
        self.call_pager(port, call, Some(reply));
        true
    }

    /// `thread` found no free page for its fault: it waits for the pageout daemon (if there
    /// is anything the daemon can do), then faults again. `false` if waiting cannot help.
    pub fn wait_for_memory(&mut self, thread: ThreadId, resume: Resume) -> bool {
        // Only pages some pager can take (or has a copy of) can be freed: anonymous memory
        // needs the default pager.
        let can_help = self.vm.default_pager.is_some() || !self.vm.pagers.is_empty();
        if !can_help {
            return false;
        }
        kernel_space::want_pageout();
        self.sched
            .enqueue_waiter(WaitQueue::Memory, &mut self.threads, thread);
        kernel_space::note_memory_waiters(true);
        if let Some(t) = self.threads.get_mut(thread) {
            if resume == Resume::Syscall {
                t.frame.rip -= 2;
            }
        }
        let deadline = crate::arch::percpu::ticks() + MEMORY_WAIT_TICKS;
        self.block(thread, Continuation::MemoryWait { resume }, Some(deadline));
        true
    }

    /// Lets the threads waiting for memory fault again once there is some.
    fn wake_memory_waiters(&mut self) {
        if free_frames() < kernel_space::user_floor() + WAKE_MARGIN {
            return;
        }
        while let Some(thread) = self
            .sched
            .first_waiter(WaitQueue::Memory, &mut self.threads)
        {
            self.sched.disarm(&mut self.threads, thread);
            if let Some(t) = self.threads.get_mut(thread) {
                t.continuation = Continuation::ReturnToUser;
                t.state = ThreadState::Ready;
            }
            self.make_ready(thread);
        }
        kernel_space::note_memory_waiters(false);
    }

    /// A wait for memory ran out of time: the fault fails (the task ends, or the call
    /// returns `ResourceShortage`).
    pub fn memory_wait_expired(&mut self, thread: ThreadId) {
        // The default pager (and the backing store behind it) frees memory by taking pages
        // in: ending it for want of memory would lose every page it holds and stop all
        // paging. While there are frames it may take, it waits on instead; with none at
        // all it is ended as anyone (a wait for ever would hang everyone).
        let task = self.threads.get(thread).map(|t| t.task);
        if self.memory_privileged(task)
            && free_frames() > 2 * kernel_space::pager_emergency_frames()
        {
            let deadline = crate::arch::percpu::ticks() + MEMORY_WAIT_TICKS;
            self.sched.rearm(&mut self.threads, thread, deadline);
            log::warn!(
                "vm: the default pager still waits for memory ({} frames free)",
                free_frames()
            );
            return;
        }
        self.sched
            .remove_waiter(WaitQueue::Memory, &mut self.threads, thread);
        kernel_space::note_memory_waiters(self.sched.any_waiting(WaitQueue::Memory));
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        let Continuation::MemoryWait { resume } = t.continuation else {
            return;
        };
        t.continuation = Continuation::ReturnToUser;
        let queues = kernel_space::with_mappings(|m| (m.queue_len(ACTIVE), m.queue_len(INACTIVE)));
        let (tasks, tables) = (self.tasks.len(), crate::vm::pmap::table_frames());
        let heap = kernel_space::heap_stats().map_or(0, |h| h.pages_held());
        log::warn!(
            "vm: memory wait expired: {} frames free, queues {queues:?}, {} pager objects, {} \
             pages in flight; {tasks} tasks, {tables} page-table pages, {heap} kernel heap pages",
            free_frames(),
            self.vm.pagers.len(),
            self.vm.pagers.values().map(|l| l.in_flight).sum::<u32>()
        );
        match resume {
            Resume::Fault { address } => {
                let (task, rip) = (t.task, t.frame.rip);
                self.terminate_task(
                    task,
                    Exit::Fault(format_args!(
                        "#PF page fault at {address:#x} (rip={rip:#x}): out of memory (no page \
                         came free in 10 s)"
                    )),
                );
            }
            Resume::Run => {
                let task = t.task;
                self.terminate_task(
                    task,
                    Exit::Fault(format_args!(
                        "no memory for its page-table root (no page came free in 10 s)"
                    )),
                );
            }
            Resume::Syscall | Resume::Receive => {
                t.frame.rip += 2;
                let code = if t.frame.rax == Syscall::MachMsg as u64 {
                    libipc::abi::message::MsgReturn::SendNoBuffer as u64
                } else {
                    KernReturn::ResourceShortage as u64
                };
                self.finish_wait(thread, code, 0);
                self.make_ready(thread);
            }
        }
    }
}

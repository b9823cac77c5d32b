//! Page tables as a cache of each task's map (Mach's `pmap_collect`): the tables of a task
//! that has not run for a while are freed, and faults build them again from its map when it
//! runs. A small task blocked in a server loop or a `receive` then holds no page-table page:
//! its root goes too, and the dispatcher makes a new one before the task runs again (the IPC
//! fast path leaves such a receiver to the general path: `Task::cold`).
//!
//! A pass runs once a second from the dispatcher, after the task swapper's. It looks only at
//! tasks none of whose threads is running, ready, or waiting for a page or for memory
//! (stalled, not idle): if the CPU walked such a task's tables since the last pass (the
//! root's Accessed bits, [`Pmap::walked_since_last_look`]) it ran in between and is left be;
//! if not, it has not run for at least a second and its tables go.
//! VM-privileged tasks (pagers, which free memory and must not wait to rebuild tables) and
//! swapped-out tasks (whose tables the swapper already dropped) are skipped.
//!
//! Under pressure (a new task about to be refused for want of memory) a pass runs at once and
//! takes the tables of every such task, run lately or not, as Mach's `pmap_collect` does: a
//! burst of thousands of new tasks would otherwise hold a second's worth of tables each and
//! be refused with most of memory free.
//!
//! [`Pmap::walked_since_last_look`]: crate::vm::pmap::Pmap::walked_since_last_look

use super::kernel::Kernel;
use super::task::TaskId;
use super::thread::{Continuation, ThreadState};
use crate::vm::page::Dropped;
use crate::vm::statistics::{add, TABLES_COLLECTED};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Which tasks' tables a pass takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pass {
    /// The periodic pass: those not run since the last one.
    Idle,
    /// Memory is short: those of every task not running now.
    Pressure,
}

/// The tick of the last pressure pass that freed nothing: another in the same tick would
/// find nothing either, and each walks every task.
static FRUITLESS_PRESSURE_TICK: AtomicU64 = AtomicU64::new(u64::MAX);

impl Kernel {
    /// A pressure pass ([`Pass::Pressure`]), unless one this tick freed nothing.
    pub fn collect_tables_under_pressure(&mut self) {
        let now = crate::arch::percpu::ticks();
        if FRUITLESS_PRESSURE_TICK.load(Ordering::Relaxed) == now {
            return;
        }
        if self.collect_idle_tables(Pass::Pressure) == 0 {
            FRUITLESS_PRESSURE_TICK.store(now, Ordering::Relaxed);
        }
    }

    /// Frees the tables of every task that has not run since the last pass (or, under
    /// pressure, of every task not running); returns the table pages freed.
    pub fn collect_idle_tables(&mut self, pass: Pass) -> usize {
        let current_task = self
            .current()
            .and_then(|thread| self.threads.get(thread))
            .map(|thread| thread.task);
        let mut idle: Vec<TaskId> = Vec::new();
        for (id, task) in self.tasks.iter() {
            if task.swapped_out
                || !task.space.pmap().has_root()
                || task.space.pmap().table_pages() == 0
                || Some(id) == current_task
                || self.vm.memory_privileged(Some(id))
            {
                continue;
            }
            // A thread waiting for a page or for memory is busy, only stalled: freeing its
            // tables would make its pages look unused to the pageout daemon just as it
            // needs them.
            let runs = task.threads.iter().any(|&thread| {
                self.threads.get(thread).is_some_and(|t| {
                    matches!(t.state, ThreadState::Running | ThreadState::Ready)
                        || matches!(
                            t.continuation,
                            Continuation::PageWait { .. } | Continuation::MemoryWait { .. }
                        )
                })
            });
            if runs || idle.try_reserve(1).is_err() {
                continue;
            }
            idle.push(id);
        }
        let mut freed = 0;
        for id in idle {
            let Some(task) = self.tasks.get_mut(id) else {
                continue;
            };
            if pass == Pass::Idle && task.space.tables_walked_since_last_look() {
                continue;
            }
            let pages = task.space.pmap().table_pages();
            task.space.discard_translations(Dropped::InPlace);
            task.space.release_tables_root();
            task.note_cold();
            freed += pages + usize::from(!task.space.pmap().has_root());
        }
        add(&TABLES_COLLECTED, freed as u64);
        freed
    }
}

//! Page tables shared by the tasks that run one program: the page table that maps its text
//! and read-only data, linked into every such task's tables (seed 000's ten thousand nearly
//! identical page tables, as DESIGN.md's pmap section allows).
//!
//! A program is linked so that its text and read-only data fill one 2 MiB span alone
//! (`servers/user.ld`); its data, stack and heap lie in the next. The page table of that
//! span lives in tables of its own that no CPU ever loads (a [`Pmap::new_shared`]); each
//! task running the program links it from its page directory ([`Pmap::link`]). A page one
//! task faults in is then mapped for all of them, at no cost to the others: no fault, no
//! mapping record, no table page. The entries are changed only through the shared tables'
//! own pmap, so the mapping lists know each page's one mapping (pageout takes it from
//! everyone at once) and every change is dropped from every CPU's TLB.
//!
//! A task shares the table only while its map holds exactly the entries the table was made
//! for in that span ([`SharedText::matches`], checked at every fault there). Its pmap unlinks
//! the table when anything of the span is removed or protected (`Pmap::remove`), and the
//! task goes on with tables of its own; what it maps there later, a fault finds does not
//! match.

use super::address_space::ObjectId;
use super::map::{MapEntry, Protection, VmMap};
use super::object::{ObjectKind, VmObject};
use super::pmap::Pmap;
use crate::arch::paging::{MapError, LARGE_PAGE_SIZE};
use crate::base::object_table::{try_box, Table};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Most map entries a shared span holds (a program's text and read-only data, and slack).
const MAX_ENTRIES: usize = 4;

/// What a map entry in the span must be for every task's translations there to agree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Span {
    start: u64,
    end: u64,
    object: ObjectId,
    offset: u64,
    protection: Protection,
}

impl Span {
    fn of(entry: &MapEntry<ObjectId>) -> Span {
        Span {
            start: entry.start,
            end: entry.end,
            object: entry.object,
            offset: entry.offset,
            protection: entry.protection,
        }
    }
}

struct Inner {
    /// References: the program cache's and each sharing address space's.
    users: AtomicUsize,
    /// The 2 MiB the table maps.
    base: u64,
    entries: [Option<Span>; MAX_ENTRIES],
    /// The shared page table's physical address.
    table: u64,
    /// The tables it lives in (`None` only while they are destroyed).
    tables: spin::Mutex<Option<Pmap>>,
}

/// A counted reference to the shared page table of one program's text.
pub struct SharedText {
    inner: NonNull<Inner>,
}

// SAFETY: `Inner` is reached only under the kernel lock, its count is atomic, and the pmap is
// behind a mutex; nothing in it is tied to a CPU.
unsafe impl Send for SharedText {}
// SAFETY: as for `Send`: shared references only read the fixed fields or lock the pmap.
unsafe impl Sync for SharedText {}

impl SharedText {
    /// The shared table for the program `map` holds, if it can have one: the entries of
    /// program text (never writable, over an object of a file or the archive rather than
    /// anonymous memory) all lie in one 2 MiB span, with nothing else in it. `None` also
    /// when memory for the tables is short (the task then maps its text itself).
    pub fn of(map: &VmMap<ObjectId>, objects: &Table<VmObject>) -> Option<SharedText> {
        let first = map.entries().iter().find(|e| is_text(e, objects))?;
        let base = first.start & !(LARGE_PAGE_SIZE - 1);
        let entries = spans(map, base, |e| is_text(e, objects))?;
        let mut tables = Pmap::new_shared().ok()?;
        let table = match tables.page_table(base) {
            Ok(table) => table,
            Err(_) => {
                tables.destroy();
                return None;
            }
        };
        let inner = Inner {
            users: AtomicUsize::new(1),
            base,
            entries,
            table,
            tables: spin::Mutex::new(Some(tables)),
        };
        match try_box(inner) {
            Ok(boxed) => Some(SharedText {
                inner: NonNull::from(alloc::boxed::Box::leak(boxed)),
            }),
            Err(_) => None,
        }
    }

    #[inline(always)]
    fn inner(&self) -> &Inner {
        // SAFETY: the allocation lives while any reference does (`users` counts them).
        unsafe { self.inner.as_ref() }
    }

    /// The 2 MiB the table maps.
    #[inline(always)]
    pub fn base(&self) -> u64 {
        self.inner().base
    }

    /// The shared page table's physical address (for [`Pmap::link`]).
    pub fn table(&self) -> u64 {
        self.inner().table
    }

    /// Whether `address` is in the span.
    #[inline(always)]
    pub fn covers(&self, address: u64) -> bool {
        (self.base()..self.base() + LARGE_PAGE_SIZE).contains(&address)
    }

    /// Whether `map` holds exactly this table's entries in its span (nothing more, nothing
    /// less, nothing changed): a task whose map does may use the table.
    pub fn matches(&self, map: &VmMap<ObjectId>) -> bool {
        spans(map, self.base(), |_| true).is_some_and(|e| e == self.inner().entries)
    }

    /// Whether `entry` is one of the entries the table was made for (program text the
    /// loader mapped over the program's file).
    pub fn holds(&self, entry: &MapEntry<ObjectId>) -> bool {
        self.inner().entries.contains(&Some(Span::of(entry)))
    }

    /// Maps `frame` at `page` in the shared table (unless it is there already), for every
    /// task that links it.
    pub fn enter(&self, page: u64, frame: u64, protection: Protection) -> Result<(), MapError> {
        let mut tables = self.inner().tables.lock();
        let tables = tables.as_mut().ok_or(MapError::OutOfMemory)?;
        if tables
            .translate(page)
            .is_some_and(|(at, _)| at & !0xfff == frame)
        {
            return Ok(());
        }
        tables.enter(page, frame, protection)
    }

    /// Pages mapped in the shared table.
    pub fn resident(&self) -> usize {
        self.inner()
            .tables
            .lock()
            .as_ref()
            .map_or(0, Pmap::resident)
    }
}

impl Clone for SharedText {
    fn clone(&self) -> SharedText {
        self.inner().users.fetch_add(1, Ordering::Relaxed);
        SharedText { inner: self.inner }
    }
}

impl Drop for SharedText {
    fn drop(&mut self) {
        if self.inner().users.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // SAFETY: the last reference: the allocation came from `try_box` (a `Box`), and
        // nothing reaches it after this.
        let inner = unsafe { alloc::boxed::Box::from_raw(self.inner.as_ptr()) };
        // Every task that linked the table held a reference, so each has unlinked it.
        let tables = inner.tables.lock().take();
        if let Some(tables) = tables {
            tables.destroy();
        }
    }
}

/// Whether `entry` is program text as the shared tables take it: never writable, over a
/// file's or the archive's object (whose pages no task writes).
fn is_text(entry: &MapEntry<ObjectId>, objects: &Table<VmObject>) -> bool {
    !entry.max_protection.allows(Protection::WRITE)
        && objects
            .get(entry.object)
            .is_some_and(|o| o.kind() != ObjectKind::Anonymous)
}

/// The entries of `map` in the 2 MiB at `base`, if there are at most [`MAX_ENTRIES`], each
/// lies wholly inside and `each` takes it.
fn spans(
    map: &VmMap<ObjectId>,
    base: u64,
    each: impl Fn(&MapEntry<ObjectId>) -> bool,
) -> Option<[Option<Span>; MAX_ENTRIES]> {
    let end = base + LARGE_PAGE_SIZE;
    let mut spans = [None; MAX_ENTRIES];
    let mut n = 0;
    let entries = map.entries();
    // The entries are sorted and disjoint: the first that ends past `base` and those after it
    // that start before `end`.
    let first = entries.partition_point(|e| e.end <= base);
    for entry in entries[first..].iter().take_while(|e| e.start < end) {
        if entry.start < base || entry.end > end || n == MAX_ENTRIES || !each(entry) {
            return None;
        }
        spans[n] = Some(Span::of(entry));
        n += 1;
    }
    (n > 0).then_some(spans)
}

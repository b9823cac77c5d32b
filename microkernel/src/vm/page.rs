//! `vm_page`: a record per physical frame: the memory object and offset it holds a page
//! of, its flags, its place in the page queue, and the list of the (page tables, address)
//! pairs that map it (the "pv list"), so that taking a page away from everyone who maps it,
//! or reading whether anyone used or dirtied it, costs that page's own mappings and nothing
//! more: not a scan over every forked child's map (seed 002's anon_vma problem). The
//! pageout daemon is its main user.
//!
//! Object pages are kept in two queues, oldest first: active (new pages, and pages found
//! referenced again) and inactive (pages the pageout daemon aged out of the active queue,
//! their referenced bits cleared: the ones it takes unless they are used meanwhile).
//!
//! Every mapping is in two circular, doubly linked lists: its frame's (headed from the
//! frame's record) and its owner's (through a sentinel entry the owner keeps), so a mapping
//! leaves both in O(1), an owner's teardown costs its own mappings, and no list needs its
//! owner's struct to be changed.

use alloc::vec::Vec;

/// No entry.
pub const NONE: u32 = u32::MAX;

/// No object.
const NO_OBJECT: u64 = u64::MAX;

/// A free entry's `owner_previous` (a live one's is an entry's index).
const FREE: u32 = NONE - 1;

/// Pools with fewer entries are not trimmed.
const TRIM_MIN_ENTRIES: usize = 1024;

/// One frame's record.
#[derive(Clone, Copy, Debug)]
struct PageRecord {
    /// First mapping of the frame, or `NONE`.
    first: u32,
    /// How many mappings it has.
    count: u32,
    /// The memory object (its id, raw) whose page this frame holds, or `NO_OBJECT`.
    object: u64,
    /// The page's offset in that object.
    offset: u64,
    /// Neighbours in its page queue (frame numbers), `NONE` at the ends.
    queue_previous: u32,
    queue_next: u32,
    flags: u8,
    /// Which queue it is on ([`ACTIVE`] or [`INACTIVE`]), if an object page.
    queue: u8,
}

/// The active queue.
pub const ACTIVE: u8 = 0;
/// The inactive queue.
pub const INACTIVE: u8 = 1;

/// One page queue: a doubly linked list through the records, oldest first.
#[derive(Clone, Copy, Debug)]
struct Queue {
    head: u32,
    tail: u32,
    len: usize,
}

const EMPTY_QUEUE: Queue = Queue {
    head: NONE,
    tail: NONE,
    len: 0,
};

/// What an owner's tables going says of the pages it mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dropped {
    /// Its task was swapped out: the pages only it mapped are the coldest there are.
    Cold,
    /// The tables were only a cache of its map (`pmap_collect`): nothing about the pages.
    InPlace,
}

/// Page flags, as the hardware bits were last harvested into them.
pub mod page_flags {
    pub const REFERENCED: u8 = 1;
    pub const DIRTY: u8 = 2;
    /// Brought in by a pager ahead of need (read-ahead) and not yet faulted on.
    pub const PREFETCHED: u8 = 4;
}

const EMPTY: PageRecord = PageRecord {
    first: NONE,
    count: 0,
    object: NO_OBJECT,
    offset: 0,
    queue_previous: NONE,
    queue_next: NONE,
    flags: 0,
    queue: ACTIVE,
};

/// One mapping of a frame (or an owner's sentinel, whose `frame` is `NONE`).
#[derive(Clone, Copy, Debug)]
struct Mapping {
    /// The page tables' identity (their root's physical address).
    owner: u64,
    address: u64,
    frame: u32,
    frame_previous: u32,
    frame_next: u32,
    owner_previous: u32,
    owner_next: u32,
}

/// Allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// Every frame's mappings.
///
/// Invariants: each live mapping is in its frame's list and its owner's circular list; a
/// frame's `count` is the length of its list; freed entries are marked (`owner_previous` is
/// [`FREE`]) and chained through `frame_next` from `free_low` (those in the lower half of
/// the entries when they were freed) or `free_high`, `free_count` of them in all.
///
/// The entries shrink too ([`Mappings::trim`]): after 150,000 tasks came and went, the pool
/// sized for their sentinels and mappings held some 10 MB for good otherwise.
pub struct Mappings {
    records: Vec<PageRecord>,
    entries: Vec<Mapping>,
    free_low: u32,
    free_high: u32,
    free_count: usize,
    live: usize,
    /// The active and inactive queues of object pages.
    queues: [Queue; 2],
    /// Mappings visited by `remove_all` and `scan` (for tests and statistics).
    visits: u64,
}

impl Mappings {
    /// Records for frames `0..frames`.
    pub fn new(frames: usize) -> Result<Mappings, OutOfMemory> {
        let mut records = Vec::new();
        records.try_reserve_exact(frames).map_err(|_| OutOfMemory)?;
        records.resize(frames, EMPTY);
        Ok(Mappings {
            records,
            entries: Vec::new(),
            free_low: NONE,
            free_high: NONE,
            free_count: 0,
            live: 0,
            queues: [EMPTY_QUEUE; 2],
            visits: 0,
        })
    }

    fn take_entry(&mut self, entry: Mapping) -> Result<u32, OutOfMemory> {
        // The lower half's free entries first, so that the end of a pool that emptied
        // drains and can be trimmed.
        let chain = if self.free_low != NONE {
            &mut self.free_low
        } else {
            &mut self.free_high
        };
        if *chain != NONE {
            let index = *chain;
            *chain = self.entries[index as usize].frame_next;
            self.entries[index as usize] = entry;
            self.free_count -= 1;
            return Ok(index);
        }
        self.entries.try_reserve(1).map_err(|_| OutOfMemory)?;
        let index = u32::try_from(self.entries.len()).map_err(|_| OutOfMemory)?;
        if index == NONE {
            return Err(OutOfMemory);
        }
        self.entries.push(entry);
        Ok(index)
    }

    fn give_entry(&mut self, index: u32) {
        let upper = index as usize >= self.entries.len() / 2;
        let chain = if upper {
            &mut self.free_high
        } else {
            &mut self.free_low
        };
        let e = &mut self.entries[index as usize];
        e.frame = NONE;
        e.owner_previous = FREE;
        e.frame_next = *chain;
        *chain = index;
        self.free_count += 1;
    }

    /// When no more than a quarter of the entries is in use, gives back the free ones at the
    /// end if they are at least half of them, keeping [`TRIM_MIN_ENTRIES`]; returns how many
    /// went. Walks the pool (a periodic pass). Best effort: without memory for the smaller
    /// pool nothing changes.
    pub fn trim(&mut self) -> usize {
        let len = self.entries.len();
        if len < TRIM_MIN_ENTRIES || (len - self.free_count) * 4 > len {
            return 0;
        }
        let mut end = len;
        while end > TRIM_MIN_ENTRIES && self.entries[end - 1].owner_previous == FREE {
            end -= 1;
        }
        if end > len / 2 {
            return 0;
        }
        let mut entries = Vec::new();
        if entries.try_reserve_exact(end).is_err() {
            return 0;
        }
        entries.extend_from_slice(&self.entries[..end]);
        self.entries = entries;
        // The free chains again, of the entries kept: the lowest taken first.
        (self.free_low, self.free_high, self.free_count) = (NONE, NONE, 0);
        for index in (0..end as u32).rev() {
            if self.entries[index as usize].owner_previous == FREE {
                self.give_entry(index);
            }
        }
        len - end
    }

    /// Entries in the pool, in use or free (for tests and reports).
    pub fn pool_len(&self) -> usize {
        self.entries.len()
    }

    /// A new owner: returns its sentinel, which it passes to every other call.
    pub fn new_owner(&mut self, owner: u64) -> Result<u32, OutOfMemory> {
        let index = self.take_entry(Mapping {
            owner,
            address: 0,
            frame: NONE,
            frame_previous: NONE,
            frame_next: NONE,
            owner_previous: 0,
            owner_next: 0,
        })?;
        let e = &mut self.entries[index as usize];
        e.owner_previous = index;
        e.owner_next = index;
        Ok(index)
    }

    /// Gives an owner that maps nothing now a new name (its tables' new root).
    pub fn rename_owner(&mut self, sentinel: u32, owner: u64) {
        let e = &mut self.entries[sentinel as usize];
        debug_assert_eq!(
            e.owner_next, sentinel,
            "an owner renamed while it maps pages"
        );
        e.owner = owner;
    }

    /// Records that `owner` maps `frame` at `address`.
    pub fn add(&mut self, sentinel: u32, frame: u64, address: u64) -> Result<(), OutOfMemory> {
        let frame = u32::try_from(frame)
            .ok()
            .filter(|f| (*f as usize) < self.records.len())
            .ok_or(OutOfMemory)?;
        let owner = self.entries[sentinel as usize].owner;
        let first = self.records[frame as usize].first;
        let index = self.take_entry(Mapping {
            owner,
            address,
            frame,
            frame_previous: NONE,
            frame_next: first,
            owner_previous: sentinel,
            owner_next: self.entries[sentinel as usize].owner_next,
        })?;
        if first != NONE {
            self.entries[first as usize].frame_previous = index;
        }
        let record = &mut self.records[frame as usize];
        record.first = index;
        record.count += 1;
        let after = self.entries[index as usize].owner_next;
        self.entries[after as usize].owner_previous = index;
        self.entries[sentinel as usize].owner_next = index;
        self.live += 1;
        Ok(())
    }

    /// Unlinks mapping `index` from both its lists and frees it.
    fn unlink(&mut self, index: u32) {
        let e = self.entries[index as usize];
        match e.frame_previous {
            NONE => self.records[e.frame as usize].first = e.frame_next,
            previous => self.entries[previous as usize].frame_next = e.frame_next,
        }
        if e.frame_next != NONE {
            self.entries[e.frame_next as usize].frame_previous = e.frame_previous;
        }
        self.records[e.frame as usize].count -= 1;
        self.entries[e.owner_previous as usize].owner_next = e.owner_next;
        self.entries[e.owner_next as usize].owner_previous = e.owner_previous;
        self.give_entry(index);
        self.live -= 1;
    }

    /// `owner` no longer maps `frame` at `address`; false if it was not recorded. Costs the
    /// frame's mappings.
    pub fn remove(&mut self, sentinel: u32, frame: u64, address: u64) -> bool {
        let Some(record) = self.records.get(frame as usize) else {
            return false;
        };
        let owner = self.entries[sentinel as usize].owner;
        let mut cursor = record.first;
        while cursor != NONE {
            let e = self.entries[cursor as usize];
            if e.owner == owner && e.address == address {
                self.unlink(cursor);
                return true;
            }
            cursor = e.frame_next;
        }
        false
    }

    /// Forgets every mapping of an owner, calling `unmapped(address)` for each; the owner
    /// stays (its tables are being emptied for reuse).
    pub fn clear_owner_mappings(&mut self, sentinel: u32, mut unmapped: impl FnMut(u64) -> u8) {
        loop {
            let next = self.entries[sentinel as usize].owner_next;
            if next == sentinel {
                break;
            }
            let e = self.entries[next as usize];
            let flags = unmapped(e.address);
            if flags != 0 {
                self.records[e.frame as usize].flags |= flags;
            }
            self.unlink(next);
        }
    }

    /// Forgets every mapping of an owner whose tables go, calling `unmapped(address)` for
    /// each (it returns the hardware's flags). With [`Dropped::Cold`] only the dirty bit is
    /// kept and a page the owner was the last to map goes to the head of the inactive
    /// queue, unreferenced, so the pageout daemon takes it (in a cluster) before anything in
    /// use; with [`Dropped::InPlace`] every page keeps its place and both bits are kept.
    /// Returns the mappings there were.
    pub fn clear_owner_tables(
        &mut self,
        sentinel: u32,
        dropped: Dropped,
        mut unmapped: impl FnMut(u64) -> u8,
    ) -> usize {
        use page_flags::DIRTY;
        let mut cleared = 0;
        loop {
            let next = self.entries[sentinel as usize].owner_next;
            if next == sentinel {
                break;
            }
            let e = self.entries[next as usize];
            let frame = e.frame as usize;
            let flags = unmapped(e.address);
            self.unlink(next);
            cleared += 1;
            match dropped {
                Dropped::InPlace => self.records[frame].flags |= flags,
                Dropped::Cold => {
                    self.records[frame].flags |= flags & DIRTY;
                    self.make_cold(frame as u64);
                }
            }
        }
        cleared
    }

    /// Puts object page `frame` at the head of the inactive queue, unreferenced, if nothing
    /// maps it: the first the pageout daemon takes (its task was swapped out). Whether it
    /// did.
    pub fn make_cold(&mut self, frame: u64) -> bool {
        let Some(record) = self.records.get_mut(frame as usize) else {
            return false;
        };
        if record.count != 0 || record.object == NO_OBJECT {
            return false;
        }
        record.flags &= !page_flags::REFERENCED;
        self.dequeue(frame as u32);
        self.push_front(frame as u32, INACTIVE);
        true
    }

    /// Mappings an owner has: costs them.
    pub fn owner_len(&self, sentinel: u32) -> usize {
        let mut n = 0;
        let mut cursor = self.entries[sentinel as usize].owner_next;
        while cursor != sentinel {
            n += 1;
            cursor = self.entries[cursor as usize].owner_next;
        }
        n
    }

    /// Forgets every mapping of an owner (its tables are going away), and the owner.
    pub fn remove_owner(&mut self, sentinel: u32) {
        loop {
            let next = self.entries[sentinel as usize].owner_next;
            if next == sentinel {
                break;
            }
            self.unlink(next);
        }
        self.give_entry(sentinel);
    }

    /// Takes every mapping of `frame` away, calling `unmap(owner, address)` for each;
    /// returns how many there were. Costs exactly the frame's mappings.
    pub fn remove_all(&mut self, frame: u64, mut unmap: impl FnMut(u64, u64)) -> usize {
        let mut removed = 0;
        while let Some(&record) = self.records.get(frame as usize) {
            if record.first == NONE {
                break;
            }
            let e = self.entries[record.first as usize];
            unmap(e.owner, e.address);
            self.unlink(record.first);
            self.visits += 1;
            removed += 1;
        }
        removed
    }

    /// Calls `visit(owner, address)` for each mapping of `frame` (to read or clear the
    /// hardware's accessed and dirty bits).
    pub fn scan(&mut self, frame: u64, mut visit: impl FnMut(u64, u64)) {
        let Some(record) = self.records.get(frame as usize) else {
            return;
        };
        let mut cursor = record.first;
        while cursor != NONE {
            let e = self.entries[cursor as usize];
            visit(e.owner, e.address);
            self.visits += 1;
            cursor = e.frame_next;
        }
    }

    /// `frame` now holds the page at `offset` of `object` (a raw object id): recorded, and
    /// queued at the active tail if it was not an object page already.
    pub fn set_owner(&mut self, frame: u64, object: u64, offset: u64) {
        let Some(record) = self.records.get_mut(frame as usize) else {
            return;
        };
        let was_owned = record.object != NO_OBJECT;
        record.object = object;
        record.offset = offset;
        if was_owned {
            return;
        }
        record.flags = 0;
        self.push(frame as u32, ACTIVE);
    }

    /// Appends `frame` (on no queue) to queue `queue`.
    fn push(&mut self, frame: u32, queue: u8) {
        let q = &mut self.queues[queue as usize];
        let record = &mut self.records[frame as usize];
        record.queue = queue;
        record.queue_previous = q.tail;
        record.queue_next = NONE;
        match q.tail {
            NONE => q.head = frame,
            tail => self.records[tail as usize].queue_next = frame,
        }
        q.tail = frame;
        q.len += 1;
    }

    /// Puts `frame` (on no queue) at the head of queue `queue`: the oldest.
    fn push_front(&mut self, frame: u32, queue: u8) {
        let q = &mut self.queues[queue as usize];
        let record = &mut self.records[frame as usize];
        record.queue = queue;
        record.queue_previous = NONE;
        record.queue_next = q.head;
        match q.head {
            NONE => q.tail = frame,
            head => self.records[head as usize].queue_previous = frame,
        }
        q.head = frame;
        q.len += 1;
    }

    /// Takes `frame` off its queue.
    fn dequeue(&mut self, frame: u32) {
        let record = self.records[frame as usize];
        let q = &mut self.queues[record.queue as usize];
        match record.queue_previous {
            NONE => q.head = record.queue_next,
            previous => self.records[previous as usize].queue_next = record.queue_next,
        }
        match record.queue_next {
            NONE => q.tail = record.queue_previous,
            next => self.records[next as usize].queue_previous = record.queue_previous,
        }
        q.len -= 1;
    }

    /// `frame` is no longer an object's page (it is being freed): off its queue.
    pub fn clear_owner(&mut self, frame: u64) {
        let Some(&record) = self.records.get(frame as usize) else {
            return;
        };
        if record.object == NO_OBJECT {
            return;
        }
        self.dequeue(frame as u32);
        self.records[frame as usize] = PageRecord {
            first: record.first,
            count: record.count,
            ..EMPTY
        };
    }

    /// Moves object page `frame` to the tail of queue `queue` (from wherever it was).
    pub fn requeue(&mut self, frame: u64, queue: u8) {
        let Some(record) = self.records.get(frame as usize) else {
            return;
        };
        if record.object == NO_OBJECT {
            return;
        }
        self.dequeue(frame as u32);
        self.push(frame as u32, queue);
    }

    /// The oldest page of queue `queue`.
    pub fn oldest(&self, queue: u8) -> Option<u64> {
        match self.queues[queue as usize].head {
            NONE => None,
            frame => Some(u64::from(frame)),
        }
    }

    /// The page after `frame` on its queue (the next older to newer), if any.
    pub fn next_in_queue(&self, frame: u64) -> Option<u64> {
        match self.records.get(frame as usize)?.queue_next {
            NONE => None,
            next => Some(u64::from(next)),
        }
    }

    /// Pages on queue `queue`.
    pub fn queue_len(&self, queue: u8) -> usize {
        self.queues[queue as usize].len
    }

    /// The queue object page `frame` is on.
    pub fn queue_of(&self, frame: u64) -> Option<u8> {
        let record = self.records.get(frame as usize)?;
        (record.object != NO_OBJECT).then_some(record.queue)
    }

    /// The object (raw id) and offset whose page `frame` holds.
    pub fn owner(&self, frame: u64) -> Option<(u64, u64)> {
        let record = self.records.get(frame as usize)?;
        (record.object != NO_OBJECT).then_some((record.object, record.offset))
    }

    /// Records what the hardware said of `frame`'s use (harvested from its mappings).
    pub fn note_flags(&mut self, frame: u64, flags: u8) {
        if let Some(record) = self.records.get_mut(frame as usize) {
            record.flags |= flags;
        }
    }

    /// Clears `flag` of `frame`; whether it was set.
    pub fn take_flag(&mut self, frame: u64, flag: u8) -> bool {
        let Some(record) = self.records.get_mut(frame as usize) else {
            return false;
        };
        let was = record.flags & flag != 0;
        record.flags &= !flag;
        was
    }

    pub fn flags(&self, frame: u64) -> u8 {
        self.records.get(frame as usize).map_or(0, |r| r.flags)
    }

    /// Object pages: the active queue, then the inactive, each oldest first.
    pub fn queue(&self) -> impl Iterator<Item = u64> + '_ {
        self.queue_pages(ACTIVE).chain(self.queue_pages(INACTIVE))
    }

    /// The pages of queue `queue`, oldest first.
    pub fn queue_pages(&self, queue: u8) -> impl Iterator<Item = u64> + '_ {
        let mut cursor = self.queues[queue as usize].head;
        core::iter::from_fn(move || {
            let frame = cursor;
            if frame == NONE {
                return None;
            }
            cursor = self.records[frame as usize].queue_next;
            Some(u64::from(frame))
        })
    }

    /// Object pages resident.
    pub fn queued(&self) -> usize {
        self.queues[0].len + self.queues[1].len
    }

    /// Mappings of `frame`.
    pub fn count(&self, frame: u64) -> usize {
        self.records
            .get(frame as usize)
            .map_or(0, |r| r.count as usize)
    }

    /// Live mappings in all.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn visits(&self) -> u64 {
        self.visits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_that_emptied_gives_back_its_end_and_keeps_what_lives() {
        let mut m = Mappings::new(64).unwrap();
        // Each owner maps a page as it comes, as a task does.
        let owners: Vec<u32> = (0..4_000)
            .map(|i| {
                let o = m.new_owner(0x1000 * (i + 1)).unwrap();
                m.add(o, i % 64, 0x40_0000).unwrap();
                o
            })
            .collect();
        assert_eq!(m.pool_len(), 8_000);
        assert_eq!(m.trim(), 0, "trimmed while in use");
        // All but the first ten owners go, newest first.
        for &o in owners[10..].iter().rev() {
            m.remove_owner(o);
        }
        assert_eq!(m.trim(), 8_000 - TRIM_MIN_ENTRIES);
        assert_eq!(m.pool_len(), TRIM_MIN_ENTRIES);
        // The ten that stay are whole, and new owners and mappings take the lowest entries.
        for (i, &o) in owners[..10].iter().enumerate() {
            assert_eq!(m.owner_len(o), 1);
            assert_eq!(m.count(i as u64 % 64), 1);
        }
        let new = m.new_owner(0xdead_0000).unwrap();
        assert!((new as usize) < 40, "a new owner took entry {new}");
        m.add(new, 5, 0x40_0000).unwrap();
        assert_eq!(m.count(5), 2);
        assert_eq!(m.len(), 11);
    }

    #[test]
    fn add_remove_and_count() {
        let mut m = Mappings::new(16).unwrap();
        let a = m.new_owner(0xa000).unwrap();
        let b = m.new_owner(0xb000).unwrap();
        m.add(a, 3, 0x40_0000).unwrap();
        m.add(b, 3, 0x40_0000).unwrap();
        m.add(a, 4, 0x40_1000).unwrap();
        assert_eq!((m.count(3), m.count(4), m.len()), (2, 1, 3));
        assert!(m.remove(a, 3, 0x40_0000));
        assert!(!m.remove(a, 3, 0x40_0000));
        assert_eq!((m.count(3), m.len()), (1, 2));
    }

    #[test]
    fn remove_all_visits_only_the_frames_own_mappings() {
        let mut m = Mappings::new(2048).unwrap();
        let owners: Vec<u32> = (0..1000)
            .map(|i| m.new_owner(0x1000 * (i + 1)).unwrap())
            .collect();
        for (i, &o) in owners.iter().enumerate() {
            m.add(o, 7, 0x40_0000).unwrap(); // the shared page
            m.add(o, 100 + i as u64, 0x40_1000).unwrap(); // each one's own
        }
        let mut seen = Vec::new();
        let before = m.visits();
        assert_eq!(
            m.remove_all(7, |owner, address| seen.push((owner, address))),
            1000
        );
        assert_eq!(m.visits() - before, 1000);
        assert_eq!(seen.len(), 1000);
        assert_eq!(m.count(7), 0);
        assert_eq!(m.len(), 1000);
        assert_eq!(m.count(150), 1);
    }

    #[test]
    fn an_owner_leaves_with_all_its_mappings() {
        let mut m = Mappings::new(16).unwrap();
        let a = m.new_owner(1).unwrap();
        let b = m.new_owner(2).unwrap();
        for f in 0..5 {
            m.add(a, f, f * 0x1000).unwrap();
        }
        m.add(b, 2, 0x9000).unwrap();
        m.remove_owner(a);
        assert_eq!(m.len(), 1);
        assert_eq!(m.count(2), 1);
        let mut seen = Vec::new();
        m.scan(2, |o, addr| seen.push((o, addr)));
        assert_eq!(seen, vec![(2, 0x9000)]);
        // Freed entries are reused.
        let c = m.new_owner(3).unwrap();
        m.add(c, 1, 0).unwrap();
        assert_eq!(m.entries.len(), 8);
    }

    #[test]
    fn a_swapped_out_owners_own_pages_go_first_unreferenced_and_shared_ones_stay() {
        use page_flags::{DIRTY, REFERENCED};
        let mut m = Mappings::new(16).unwrap();
        let a = m.new_owner(1).unwrap();
        let b = m.new_owner(2).unwrap();
        for f in 1..=4 {
            m.set_owner(f, 9, f * 0x1000);
        }
        m.requeue(4, INACTIVE);
        for f in 1..=3 {
            m.add(a, f, f * 0x1000).unwrap();
        }
        m.add(b, 3, 0x9000).unwrap(); // shared with b
        assert_eq!(m.owner_len(a), 3);
        let cleared = m.clear_owner_tables(a, Dropped::Cold, |address| {
            if address == 0x1000 {
                REFERENCED | DIRTY
            } else {
                REFERENCED
            }
        });
        assert_eq!((cleared, m.owner_len(a), m.owner_len(b)), (3, 0, 1));
        // Frames 1 and 2 are a's alone: the head of the inactive queue, before frame 4;
        // frame 3 is still mapped by b and stays where it was.
        let inactive: Vec<_> = m.queue_pages(INACTIVE).collect();
        assert_eq!(inactive.len(), 3);
        assert_eq!(inactive[2], 4);
        assert!(inactive[..2].contains(&1) && inactive[..2].contains(&2));
        assert_eq!(m.queue_of(3), Some(ACTIVE));
        assert_eq!(m.flags(1), DIRTY);
        assert_eq!(m.flags(2), 0);
    }

    #[test]
    fn collected_tables_leave_pages_in_place_with_their_bits() {
        use page_flags::{DIRTY, REFERENCED};
        let mut m = Mappings::new(16).unwrap();
        let a = m.new_owner(1).unwrap();
        for f in 1..=3 {
            m.set_owner(f, 9, f * 0x1000);
        }
        m.requeue(3, INACTIVE);
        m.add(a, 1, 0x1000).unwrap();
        m.add(a, 2, 0x2000).unwrap();
        let cleared = m.clear_owner_tables(a, Dropped::InPlace, |address| {
            if address == 0x1000 {
                REFERENCED | DIRTY
            } else {
                0
            }
        });
        assert_eq!((cleared, m.owner_len(a)), (2, 0));
        // Nothing moved: the active pages in their order, the inactive one alone.
        assert_eq!(m.queue_pages(ACTIVE).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(m.queue_pages(INACTIVE).collect::<Vec<_>>(), vec![3]);
        assert_eq!(m.flags(1), REFERENCED | DIRTY);
        assert_eq!(m.flags(2), 0);
    }

    #[test]
    fn only_unmapped_object_pages_are_made_cold() {
        use page_flags::REFERENCED;
        let mut m = Mappings::new(16).unwrap();
        let a = m.new_owner(1).unwrap();
        for f in 1..=3 {
            m.set_owner(f, 9, f * 0x1000);
        }
        m.requeue(1, INACTIVE);
        m.note_flags(2, REFERENCED);
        m.add(a, 3, 0x3000).unwrap();
        assert!(m.make_cold(2));
        assert!(!m.make_cold(3), "a mapped page stays");
        assert!(!m.make_cold(7), "not an object page");
        assert_eq!(m.queue_pages(INACTIVE).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(m.flags(2), 0);
        assert_eq!(m.queue_of(3), Some(ACTIVE));
    }

    #[test]
    fn object_pages_are_recorded_and_queued_in_order() {
        let mut m = Mappings::new(16).unwrap();
        m.set_owner(5, 42, 0x3000);
        m.set_owner(2, 42, 0x1000);
        m.set_owner(9, 7, 0);
        m.set_owner(2, 43, 0x1000); // moved to another object (a collapse): keeps its place
        assert_eq!(m.owner(2), Some((43, 0x1000)));
        assert_eq!(m.queue().collect::<Vec<_>>(), vec![5, 2, 9]);
        m.clear_owner(2);
        m.clear_owner(2); // not an object page any more: nothing happens
        assert_eq!(m.owner(2), None);
        assert_eq!(m.queue().collect::<Vec<_>>(), vec![5, 9]);
        m.clear_owner(9);
        m.clear_owner(5);
        assert_eq!((m.queue().count(), m.queued()), (0, 0));
        m.set_owner(3, 1, 0);
        m.note_flags(3, page_flags::DIRTY);
        assert_eq!(m.flags(3), page_flags::DIRTY);
        assert_eq!(m.queue().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn pages_move_between_the_active_and_inactive_queues() {
        let mut m = Mappings::new(16).unwrap();
        for frame in [4, 5, 6] {
            m.set_owner(frame, 1, frame * 0x1000);
        }
        assert_eq!((m.queue_len(ACTIVE), m.queue_len(INACTIVE)), (3, 0));
        m.requeue(4, INACTIVE);
        m.requeue(6, INACTIVE);
        assert_eq!(m.queue_pages(INACTIVE).collect::<Vec<_>>(), vec![4, 6]);
        assert_eq!((m.oldest(ACTIVE), m.oldest(INACTIVE)), (Some(5), Some(4)));
        assert_eq!(m.queue_of(6), Some(INACTIVE));
        // Found referenced again: back to the active tail.
        m.requeue(4, ACTIVE);
        assert_eq!(m.queue_pages(ACTIVE).collect::<Vec<_>>(), vec![5, 4]);
        m.clear_owner(6);
        assert_eq!((m.queue_len(INACTIVE), m.oldest(INACTIVE)), (0, None));
        assert_eq!(m.queue_of(6), None);
        m.requeue(6, ACTIVE); // not an object page: nothing happens
        assert_eq!(m.queued(), 2);
    }

    #[test]
    fn frames_out_of_range_are_refused() {
        let mut m = Mappings::new(4).unwrap();
        let a = m.new_owner(1).unwrap();
        assert_eq!(m.add(a, 4, 0), Err(OutOfMemory));
        assert!(!m.remove(a, 99, 0));
        assert_eq!(m.remove_all(99, |_, _| {}), 0);
    }
}

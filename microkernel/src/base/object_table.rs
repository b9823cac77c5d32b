//! Tables of kernel objects named by generation-checked ids.
//!
//! Kernel objects (tasks, threads, ports, memory objects) live in boxes owned by a table and
//! are named by an [`Id`]: an index plus the generation of the slot, so an id kept after its
//! object died is recognised as stale rather than naming a newcomer. Boxes keep each object at
//! one address for its whole life (a thread's saved registers are reached from assembly), and
//! every allocation is fallible: a full memory is an error for whoever asked, never a panic.
//! There is no fixed size: 100,000 tasks fit when memory allows.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::num::{NonZeroU32, NonZeroU64};
use core::ptr::NonNull;

/// A name for an object of type `T` in a [`Table<T>`]: a slot index (low 32 bits) and the
/// slot's generation (high 32 bits, never 0), in one word, so ids compare in one instruction
/// and an `Option<Id>` is as small as an `Id` (the wait queues' links are).
pub struct Id<T> {
    raw: NonZeroU64,
    _type: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    #[inline(always)]
    fn new(index: u32, generation: NonZeroU32) -> Self {
        let raw = u64::from(generation.get()) << 32 | u64::from(index);
        Id {
            raw: NonZeroU64::new(raw).expect("the generation is not 0"),
            _type: PhantomData,
        }
    }

    /// The slot number (small, dense: usable for reports and as a per-table key).
    pub fn index(self) -> u32 {
        self.raw.get() as u32
    }

    fn generation(self) -> u32 {
        (self.raw.get() >> 32) as u32
    }

    /// Packs the id into 64 bits (for kernel-internal use only: it never reaches user space).
    pub fn to_raw(self) -> u64 {
        self.raw.get()
    }

    /// The id `to_raw` packed (`None` for a value it cannot have made).
    pub fn from_raw(raw: u64) -> Option<Self> {
        Some(Self::new(raw as u32, NonZeroU32::new((raw >> 32) as u32)?))
    }

    /// An optional id packed in one word, 0 for none (for a per-CPU slot): free both ways.
    #[inline(always)]
    pub fn option_to_raw(id: Option<Self>) -> u64 {
        id.map_or(0, |id| id.raw.get())
    }

    /// The optional id [`Id::option_to_raw`] packed.
    #[inline(always)]
    pub fn option_from_raw(raw: u64) -> Option<Self> {
        NonZeroU64::new(raw).map(|raw| Id {
            raw,
            _type: PhantomData,
        })
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.to_raw() == other.to_raw()
    }
}
impl<T> Eq for Id<T> {}
impl<T> core::hash::Hash for Id<T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.to_raw().hash(state);
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index(), self.generation())
    }
}

/// An id of one of two tables in one word: the second table's marked in the top bit of the
/// index half, which no table index has ([`MAX_INDEX`]). So it compares with a packed id of
/// the first kind in one instruction.
pub struct EitherId<A, B> {
    raw: NonZeroU64,
    _types: PhantomData<fn() -> (A, B)>,
}

/// What an [`EitherId`] holds.
#[derive(Debug, PartialEq, Eq)]
pub enum OneOf<A, B> {
    First(Id<A>),
    Second(Id<B>),
}

const SECOND_MARK: u64 = 1 << 31;
const _: () = assert!(MAX_INDEX as u64 & SECOND_MARK == 0);

impl<A, B> EitherId<A, B> {
    #[inline(always)]
    pub fn first(id: Id<A>) -> Self {
        EitherId {
            raw: id.raw,
            _types: PhantomData,
        }
    }

    #[inline(always)]
    pub fn second(id: Id<B>) -> Self {
        EitherId {
            raw: id.raw | SECOND_MARK,
            _types: PhantomData,
        }
    }

    #[inline(always)]
    pub fn unpack(self) -> OneOf<A, B> {
        let raw = self.raw.get();
        if raw & SECOND_MARK == 0 {
            OneOf::First(Id {
                raw: self.raw,
                _type: PhantomData,
            })
        } else {
            // The generation half is not 0, so neither is the id without its mark.
            let raw = NonZeroU64::new(raw & !SECOND_MARK).expect("the generation is not 0");
            OneOf::Second(Id {
                raw,
                _type: PhantomData,
            })
        }
    }
}

impl<A, B> Clone for EitherId<A, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, B> Copy for EitherId<A, B> {}
impl<A, B> PartialEq for EitherId<A, B> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<A, B> Eq for EitherId<A, B> {}
impl<A, B> fmt::Debug for EitherId<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unpack() {
            OneOf::First(id) => write!(f, "first {id:?}"),
            OneOf::Second(id) => write!(f, "second {id:?}"),
        }
    }
}

/// A pointer to an object's boxed record, kept beside its id where a lookup would cost too
/// much (the IPC fast path): good while the object lives, since a box does not move. Whoever
/// keeps one says, where it is used, why the object is still live.
pub struct Record<T>(NonNull<T>);

impl<T> Clone for Record<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Record<T> {}
impl<T> PartialEq for Record<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<T> Eq for Record<T> {}

// SAFETY: only dereferenced with the kernel lock held (through `&mut Kernel`), like the
// table that owns the record.
unsafe impl<T> Send for Record<T> {}

impl<T> Record<T> {
    pub fn new(object: &mut T) -> Self {
        Record(NonNull::from(object))
    }

    /// A record of no object, never to be used: a placeholder where a record's own validity
    /// is kept apart (`ipc::PortHint`'s stamp).
    pub const fn dangling() -> Self {
        Record(NonNull::dangling())
    }

    /// The record.
    ///
    /// # Safety
    /// The object must be live, and no other reference to it may be in use.
    pub unsafe fn get<'a>(self) -> &'a mut T {
        // SAFETY: as the caller vouches; a live object's box does not move.
        unsafe { &mut *self.0.as_ptr() }
    }
}

/// A [`Record`] kept where its type cannot be named: a port (in `ipc`) keeps the record of the
/// thread at the head of its queue, and threads are `kern`'s. `K` says what it points to, as
/// an id's tag does; only the subsystem that made it turns it back into a `Record`.
pub struct TaggedRecord<K>(NonNull<u8>, PhantomData<fn() -> K>);

impl<K> Clone for TaggedRecord<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for TaggedRecord<K> {}

// SAFETY: as for `Record`: only used with the kernel lock held.
unsafe impl<K> Send for TaggedRecord<K> {}

impl<T> Record<T> {
    /// The record, tagged `K`, for a subsystem that cannot name `T`.
    pub fn tag<K>(self) -> TaggedRecord<K> {
        TaggedRecord(self.0.cast(), PhantomData)
    }
}

impl<K> TaggedRecord<K> {
    /// The record again.
    ///
    /// # Safety
    /// `T` must be the type of the record it was made from ([`Record::tag`]).
    pub unsafe fn untag<T>(self) -> Record<T> {
        Record(self.0.cast())
    }
}

/// Allocation failed: the kernel heap is exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// `Box::new` without the abort on exhaustion (`Box::try_new` is not stable).
pub fn try_box<T>(value: T) -> Result<Box<T>, OutOfMemory> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: the layout has a non-zero size; a null result is handled below.
    let pointer = unsafe { alloc::alloc::alloc(layout) } as *mut T;
    if pointer.is_null() {
        return Err(OutOfMemory);
    }
    // SAFETY: `pointer` is a fresh allocation of `T`'s layout, so writing a `T` there and
    // handing it to a Box, which frees it with the same layout, is sound.
    unsafe {
        pointer.write(value);
        Ok(Box::from_raw(pointer))
    }
}

/// A slot's `id` while it is empty: this index, which no id of the slot has (insert never
/// hands it out), and the generation the next object will get.
const EMPTY_INDEX: u32 = u32::MAX;

/// The largest index a table hands out: the top bit of an id's index half is never set, so
/// another kind of id can be marked there ([`EitherId`]).
pub const MAX_INDEX: u32 = (1 << 31) - 1;

struct Slot<T> {
    /// The raw id of the object in the slot; while it is empty, [`EMPTY_INDEX`] with the next
    /// generation. So an id matches its slot's `id` only while its object is there, and a
    /// lookup is one comparison. Invariant: `object` is `Some` exactly when the low half of
    /// `id` is the slot's own index.
    id: u64,
    object: Option<Box<T>>,
}

impl<T> Slot<T> {
    fn empty(generation: NonZeroU32) -> Self {
        Slot {
            id: u64::from(generation.get()) << 32 | u64::from(EMPTY_INDEX),
            object: None,
        }
    }

    /// The object, if `id` names it.
    #[inline(always)]
    fn object_mut<K>(&mut self, id: Id<K>) -> Option<&mut T> {
        if self.id != id.to_raw() {
            return None;
        }
        debug_assert!(self.object.is_some());
        // SAFETY: `id` names this slot (its index is how the slot was found), so by the
        // invariant the slot holds an object.
        Some(unsafe { self.object.as_deref_mut().unwrap_unchecked() })
    }

    #[inline(always)]
    fn object<K>(&self, id: Id<K>) -> Option<&T> {
        if self.id != id.to_raw() {
            return None;
        }
        debug_assert!(self.object.is_some());
        // SAFETY: as in `object_mut`.
        Some(unsafe { self.object.as_deref().unwrap_unchecked() })
    }
}

/// A table's empty slots: two stacks in one array, the lower half's slots growing from its
/// start and the upper half's from its end, so that both push and pop without allocating
/// and a slot of the upper half is taken only when none of the lower is free.
struct FreeSlots {
    /// Its length is the capacity: `low` entries at the start, `high` at the end.
    array: Vec<u32>,
    low: usize,
    high: usize,
}

impl FreeSlots {
    const fn new() -> FreeSlots {
        FreeSlots {
            array: Vec::new(),
            low: 0,
            high: 0,
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<u32> {
        if self.low > 0 {
            self.low -= 1;
            Some(self.array[self.low])
        } else if self.high > 0 {
            let index = self.array[self.array.len() - self.high];
            self.high -= 1;
            Some(index)
        } else {
            None
        }
    }

    /// Adds a free slot, to the upper half's stack if `upper`. Never allocates: there is
    /// room for every slot of the table (`reserve_for`).
    #[inline]
    fn push(&mut self, index: u32, upper: bool) {
        debug_assert!(self.low + self.high < self.array.len());
        if upper {
            self.high += 1;
            let at = self.array.len() - self.high;
            self.array[at] = index;
        } else {
            self.array[self.low] = index;
            self.low += 1;
        }
    }

    /// Room for `slots` free slots (the whole table); growing doubles.
    fn reserve_for(&mut self, slots: usize) -> Result<(), OutOfMemory> {
        if self.array.len() >= slots {
            return Ok(());
        }
        let capacity = slots.max(2 * self.array.len()).max(16);
        let mut array = Vec::new();
        array.try_reserve_exact(capacity).map_err(|_| OutOfMemory)?;
        array.resize(capacity, 0);
        array[..self.low].copy_from_slice(&self.array[..self.low]);
        let old_high = self.array.len() - self.high;
        array[capacity - self.high..].copy_from_slice(&self.array[old_high..]);
        self.array = array;
        Ok(())
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.array[..self.low]
            .iter()
            .chain(&self.array[self.array.len() - self.high..])
            .copied()
    }

    /// Puts every free slot below `half` in the lower stack, the rest in the upper, each
    /// sorted so that the lowest is taken first.
    fn sort_lowest_first(&mut self, half: usize) {
        let (low, high) = (self.low, self.high);
        let len = self.array.len();
        // Gather both stacks at the start, sort them descending (the top, taken first, is
        // at the stack's end: so sorted descending the lowest is taken first) and split.
        self.array.copy_within(len - high.., low);
        let all = &mut self.array[..low + high];
        all.sort_unstable_by(|a, b| b.cmp(a));
        let in_upper = all
            .iter()
            .take_while(|&&index| index as usize >= half)
            .count();
        // `all[..in_upper]` are the upper half's slots, descending; they go to the end, the
        // lowest of them taken first (the top of the upper stack is its first element).
        let mut upper: Vec<u32> = Vec::new();
        if upper.try_reserve_exact(in_upper).is_err() {
            // Without room, leave both as they are now: all in the lower stack, sorted.
            self.low = low + high;
            self.high = 0;
            return;
        }
        upper.extend_from_slice(&all[..in_upper]);
        self.array.copy_within(in_upper..low + high, 0);
        self.low = low + high - in_upper;
        self.high = in_upper;
        // The top of the upper stack is at `len - high`: the lowest there, the highest at
        // the array's end.
        upper.reverse();
        self.array[len - in_upper..].copy_from_slice(&upper);
    }
}

/// Owns objects of one type and names them by [`Id`]s of `K`: by default the object's own
/// type; a subsystem below the one that defines the object names it by a tag instead
/// (`base::TaskTag`, `base::ThreadTag`).
///
/// Invariant: `free` lists exactly the slots whose `object` is `None`, and has room for every
/// slot; `live` counts the rest; every id ever handed out for an index past the slots
/// has a generation below `floor`.
///
/// The table shrinks too: [`Table::trim`] gives back the empty slots at its end once no more
/// than a quarter of it is live (the kernel calls it once a second). After 150,000 tasks
/// came and went, the tables of tasks, threads, ports and VM objects held some 40 MB for good
/// otherwise.
pub struct Table<T, K = T> {
    slots: Vec<Slot<T>>,
    /// Empty slots. One in the table's upper half is taken only when none below is free,
    /// so that the end of a table that emptied drains and can be trimmed.
    free: FreeSlots,
    live: usize,
    /// The generation a slot made anew starts at: past that of any slot given back, so that
    /// an id kept from before never names a newcomer.
    floor: NonZeroU32,
    _key: PhantomData<fn() -> K>,
}

/// Tables with fewer slots are not trimmed: a small table's slack costs little, and it
/// would trim and grow over and over.
const TRIM_MIN_SLOTS: usize = 1024;

impl<T, K> Default for Table<T, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, K> Table<T, K> {
    pub const fn new() -> Self {
        Table {
            slots: Vec::new(),
            free: FreeSlots::new(),
            live: 0,
            floor: NonZeroU32::MIN,
            _key: PhantomData,
        }
    }

    /// Stores `object` and returns its id.
    pub fn insert(&mut self, object: T) -> Result<Id<K>, OutOfMemory> {
        let boxed = try_box(object)?;
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                // The free list can always hold every slot, so `remove` never allocates.
                let slots = self.slots.len() + 1;
                self.slots.try_reserve(1).map_err(|_| OutOfMemory)?;
                self.free.reserve_for(slots)?;
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|index| *index <= MAX_INDEX)
                    .ok_or(OutOfMemory)?;
                self.slots.push(Slot::empty(self.floor));
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        let generation = NonZeroU32::new((slot.id >> 32) as u32).expect("generations are not 0");
        let id = Id::new(index, generation);
        slot.id = id.to_raw();
        slot.object = Some(boxed);
        self.live += 1;
        Ok(id)
    }

    pub fn get(&self, id: Id<K>) -> Option<&T> {
        self.slots.get(id.index() as usize)?.object(id)
    }

    #[inline]
    pub fn get_mut(&mut self, id: Id<K>) -> Option<&mut T> {
        self.slots.get_mut(id.index() as usize)?.object_mut(id)
    }

    /// Two different objects at once, both mutable: `None` if either id is stale or both
    /// name the same object.
    /// Inlined: the IPC fast path takes a pair a message.
    #[inline(always)]
    pub fn get_pair_mut(&mut self, a: Id<K>, b: Id<K>) -> Option<(&mut T, &mut T)> {
        if a == b {
            return None;
        }
        let x: *mut T = self.get_mut(a)?;
        let y = self.get_mut(b)?;
        // Two different ids that are both live name two different slots (one slot has one
        // generation at a time), so `x` and `y` are different boxes.
        // SAFETY: `x` points into a box this table owns, not removed since, and distinct from
        // `y` (above); both borrows are tied to `&mut self`.
        Some((unsafe { &mut *x }, y))
    }

    /// Removes the object; its id (and every copy of it) is stale from now on.
    pub fn remove(&mut self, id: Id<K>) -> Option<Box<T>> {
        let slot = self.slots.get_mut(id.index() as usize)?;
        if slot.id != id.to_raw() {
            return None;
        }
        let object = slot.object.take()?;
        let next = NonZeroU32::new(id.generation().wrapping_add(1)).unwrap_or(NonZeroU32::MIN);
        *slot = Slot::empty(next);
        // Never reallocates: `insert` keeps room in the free list for every slot.
        self.free
            .push(id.index(), id.index() as usize >= self.slots.len() / 2);
        self.live -= 1;
        Some(object)
    }

    /// When no more than a quarter of the table is live, gives back the empty slots at its
    /// end if they are at least half of it, keeping [`TRIM_MIN_SLOTS`]; returns how many
    /// went. Walks the table (a periodic pass, not a per-removal cost). Best effort: without
    /// memory for the smaller vectors nothing changes.
    pub fn trim(&mut self) -> usize {
        let before = self.slots.len();
        if before < TRIM_MIN_SLOTS || self.live * 4 > before {
            return 0;
        }
        let mut end = self.slots.len();
        while end > TRIM_MIN_SLOTS && self.slots[end - 1].object.is_none() {
            end -= 1;
        }
        if end > before / 2 {
            // Objects near the end keep the table long: the free slots are sorted so that
            // the lowest are taken first, new objects fill the table's start and the end
            // drains.
            self.free.sort_lowest_first(self.slots.len() / 2);
            return 0;
        }
        let mut slots = Vec::new();
        let mut free = FreeSlots::new();
        if slots.try_reserve_exact(end).is_err() || free.reserve_for(end).is_err() {
            return 0;
        }
        // The slots given back are empty: each id holds the generation its slot would have
        // given next.
        for slot in &self.slots[end..] {
            let next = (slot.id >> 32) as u32;
            if next > self.floor.get() {
                self.floor = NonZeroU32::new(next).expect("greater than a non-zero value");
            }
        }
        slots.extend(self.slots.drain(..end));
        for index in self.free.iter().filter(|&index| (index as usize) < end) {
            free.push(index, index as usize >= end / 2);
        }
        self.slots = slots;
        self.free = free;
        before - end
    }

    /// Slots the table has now, live or empty (for reports and tests).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub fn contains(&self, id: Id<K>) -> bool {
        self.get(id).is_some()
    }

    /// Live objects.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Bytes this table itself uses per slot (besides the objects), for memory reports.
    pub const fn slot_overhead() -> usize {
        core::mem::size_of::<Slot<T>>() + core::mem::size_of::<u32>()
    }

    /// Every live object with its id.
    pub fn iter(&self) -> impl Iterator<Item = (Id<K>, &T)> {
        self.slots.iter().filter_map(|slot| {
            let object = slot.object.as_deref()?;
            Some((Id::from_raw(slot.id)?, object))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_slots_give_the_lower_half_first_and_sort_lowest_first() {
        let mut f = FreeSlots::new();
        f.reserve_for(8).unwrap();
        for (index, upper) in [(1, false), (6, true), (2, false), (7, true)] {
            f.push(index, upper);
        }
        // Grown with both stacks in it: nothing lost.
        f.reserve_for(40).unwrap();
        assert_eq!(f.pop(), Some(2));
        assert_eq!(f.pop(), Some(1));
        assert_eq!(f.pop(), Some(7));
        for (index, upper) in [(5, true), (3, false), (0, false), (4, true)] {
            f.push(index, upper);
        }
        f.sort_lowest_first(4);
        let order: Vec<_> = core::iter::from_fn(|| f.pop()).collect();
        assert_eq!(order, [0, 3, 4, 5, 6]);
    }

    #[test]
    fn a_mostly_empty_table_gives_back_its_end_and_old_ids_stay_stale() {
        let mut t: Table<u32> = Table::new();
        let ids: Vec<_> = (0..10_000).map(|i| t.insert(i).unwrap()).collect();
        assert_eq!(t.slots(), 10_000);
        // The first ten stay; the rest go, newest first and oldest first alike.
        for &id in ids[10..5_000].iter().rev().chain(&ids[5_000..]) {
            assert!(t.remove(id).is_some());
        }
        assert_eq!(t.len(), 10);
        assert_eq!(t.slots(), 10_000, "trimmed before the pass");
        assert_eq!(t.trim(), 10_000 - TRIM_MIN_SLOTS);
        assert_eq!(t.slots(), TRIM_MIN_SLOTS);
        for (i, &id) in ids[..10].iter().enumerate() {
            assert_eq!(t.get(id), Some(&(i as u32)));
        }
        // New objects take indices that old ids had: those ids name none of them.
        let new: Vec<_> = (0..20_000)
            .map(|i| t.insert(100_000 + i).unwrap())
            .collect();
        for &old in &ids[10..] {
            assert_eq!(t.get(old), None, "a stale id names a newcomer");
        }
        for (i, &id) in new.iter().enumerate() {
            assert_eq!(t.get(id), Some(&(100_000 + i as u32)));
        }
        assert_eq!(t.len(), 20_010);
    }

    #[test]
    fn a_live_object_at_the_end_keeps_the_table_whole() {
        let mut t: Table<u32> = Table::new();
        let ids: Vec<_> = (0..4_096).map(|i| t.insert(i).unwrap()).collect();
        for &id in &ids[..4_095] {
            t.remove(id);
        }
        assert_eq!(t.trim(), 0);
        assert_eq!(t.slots(), 4_096);
        assert_eq!(t.get(ids[4_095]), Some(&4_095));
        // Meanwhile new objects take the lowest free slots, not those freed last.
        let low = t.insert(1).unwrap();
        assert_eq!(low.index(), 0);
        t.remove(low);
        // Without it the table shrinks at the next pass; not while a quarter is live.
        t.remove(ids[4_095]);
        let kept: Vec<_> = (0..1_100).map(|i| t.insert(i).unwrap()).collect();
        assert_eq!(t.trim(), 0, "trimmed with more than a quarter live");
        for id in kept {
            t.remove(id);
        }
        assert_eq!(t.trim(), 4_096 - TRIM_MIN_SLOTS);
    }

    #[test]
    fn either_id_unpacks_as_it_was_packed() {
        // Ids at both ends of the index range, with small and large generations.
        let raws = [
            1 << 32,
            1 << 32 | u64::from(MAX_INDEX),
            !0 << 32 | u64::from(MAX_INDEX),
        ];
        for raw in raws {
            let (a, b) = (
                Id::<u8>::from_raw(raw).unwrap(),
                Id::<u16>::from_raw(raw).unwrap(),
            );
            let (first, second) = (EitherId::<u8, u16>::first(a), EitherId::second(b));
            assert_eq!(first.unpack(), OneOf::First(a));
            assert_eq!(second.unpack(), OneOf::Second(b));
            assert_ne!(first, second, "the same raw id in the two tables differs");
        }
        assert_eq!(core::mem::size_of::<EitherId<u8, u16>>(), 8);
    }

    #[test]
    fn insert_get_remove() {
        let mut t: Table<_> = Table::new();
        let a = t.insert("a").unwrap();
        let b = t.insert("b").unwrap();
        assert_eq!(t.get(a), Some(&"a"));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(a).as_deref(), Some(&"a"));
        assert_eq!(t.get(a), None);
        assert_eq!(t.remove(a), None);
        assert_eq!(t.get(b), Some(&"b"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn pairs_are_two_live_different_objects() {
        let mut t: Table<_> = Table::new();
        let a = t.insert(1).unwrap();
        let b = t.insert(2).unwrap();
        let (x, y) = t.get_pair_mut(a, b).unwrap();
        core::mem::swap(x, y);
        assert_eq!((t.get(a), t.get(b)), (Some(&2), Some(&1)));
        assert!(t.get_pair_mut(a, a).is_none());
        t.remove(b);
        assert!(t.get_pair_mut(a, b).is_none());
        let c = t.insert(3).unwrap();
        assert!(t.get_pair_mut(a, b).is_none());
        assert!(t.get_pair_mut(c, a).is_some());
    }

    #[test]
    fn reused_slots_do_not_answer_to_stale_ids() {
        let mut t: Table<_> = Table::new();
        let old = t.insert(1).unwrap();
        t.remove(old);
        let new = t.insert(2).unwrap();
        assert_eq!(old.index(), new.index());
        assert_ne!(old, new);
        assert_eq!(t.get(old), None);
        assert_eq!(t.get(new), Some(&2));
        assert_eq!(Id::<i32>::from_raw(new.to_raw()), Some(new));
    }

    #[test]
    fn ids_are_never_zero_and_options_of_them_are_as_small() {
        assert_eq!(size_of::<Option<Id<u8>>>(), size_of::<Id<u8>>());
        assert_eq!(Id::<u8>::from_raw(7), None); // generation 0: no id has it
        let mut t: Table<_> = Table::new();
        let mut id = t.insert(0u8).unwrap();
        // The slot's generation wraps past u32::MAX to 1, never 0.
        id = Id::new(id.index(), NonZeroU32::MAX);
        t.slots[0].id = id.to_raw();
        t.remove(id);
        let next = t.insert(1u8).unwrap();
        assert_eq!(next.generation(), 1);
        assert_eq!(t.get(id), None);
    }

    #[test]
    fn an_empty_slot_answers_to_no_id() {
        let mut t: Table<_> = Table::new();
        let a = t.insert(1u8).unwrap();
        t.remove(a);
        // Every generation the empty slot could be asked with, the next one included.
        for generation in [a.generation(), a.generation() + 1, a.generation() + 2] {
            let id = Id::new(a.index(), NonZeroU32::new(generation).unwrap());
            assert_eq!(t.get(id), None);
            assert_eq!(t.get_mut(id), None);
            assert!(t.remove(id).is_none());
        }
        assert_eq!(t.slots[0].id as u32, EMPTY_INDEX);
        let b = t.insert(2u8).unwrap();
        assert_eq!((b.index(), b.generation()), (a.index(), a.generation() + 1));
        assert_eq!(t.get(b), Some(&2));
    }

    #[test]
    fn objects_stay_at_one_address() {
        let mut t: Table<_> = Table::new();
        let first = t.insert([7u64; 32]).unwrap();
        let address = t.get(first).unwrap().as_ptr();
        for i in 0..1000 {
            t.insert([i; 32]).unwrap();
        }
        assert_eq!(t.get(first).unwrap().as_ptr(), address);
    }

    #[test]
    fn iteration_sees_live_objects_only() {
        let mut t: Table<_> = Table::new();
        let ids: Vec<_> = (0..10).map(|i| t.insert(i).unwrap()).collect();
        for id in ids.iter().step_by(2) {
            t.remove(*id);
        }
        let seen: Vec<i32> = t.iter().map(|(_, v)| *v).collect();
        assert_eq!(seen, vec![1, 3, 5, 7, 9]);
        assert_eq!(t.iter().count(), t.len());
    }
}

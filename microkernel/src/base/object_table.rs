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

/// Owns objects of one type and names them by [`Id`]s of `K`: by default the object's own
/// type; a subsystem below the one that defines the object names it by a tag instead
/// (`base::TaskTag`, `base::ThreadTag`).
///
/// Invariant: `free` lists exactly the slots whose `object` is `None`; `live` counts the rest;
/// `free.capacity() >= slots.len()`.
pub struct Table<T, K = T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    live: usize,
    _key: PhantomData<fn() -> K>,
}

impl<T, K> Default for Table<T, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, K> Table<T, K> {
    pub const fn new() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
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
                self.free
                    .try_reserve(slots - self.free.len())
                    .map_err(|_| OutOfMemory)?;
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|index| *index <= MAX_INDEX)
                    .ok_or(OutOfMemory)?;
                self.slots.push(Slot::empty(NonZeroU32::MIN));
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
        // Never reallocates: `insert` keeps the free list's capacity at the slot count.
        debug_assert!(self.free.len() < self.free.capacity());
        self.free.push(id.index());
        self.live -= 1;
        Some(object)
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

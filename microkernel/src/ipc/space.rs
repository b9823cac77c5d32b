//! A task's IPC space: the small integer names by which it holds port rights.
//!
//! A name denotes one of: a receive right and/or send rights for one port (under the same
//! name, Mach's rule, found through a reverse map), one send-once right (each has its own
//! name), a port set, or a dead name. Send rights and dead names carry user references.
//! Names are `(index << 8) | generation`, so a name used after it was freed is caught (0 and
//! `!0` are never names). Kernel object ids never leave the kernel: only names do.
//!
//! One index is kept apart: the reply slot ([`REPLY_INDEX`]), where a send-once right goes
//! when the slot is free, so the common call (one reply owed at a time) neither takes nor
//! gives back a name from the free list, and the space's limit on names does not count it (a
//! space holds `limit` names besides it). Its names are ordinary names in every other respect.
//!
//! The space knows nothing of ports themselves: it is generic over the port and port-set id
//! types, so the bookkeeping is unit-tested on the host; `kern::rights` applies it to ports.
//! Beside the names it resolved last and the reply slot's right it keeps a hint of its
//! user's (`H`: the IPC fast path keeps the port's record there), forgotten with them.

use alloc::vec::Vec;
use core::cell::Cell;
use core::hash::Hash;
use hashbrown::HashMap;
use libipc::abi::KernReturn;

/// A name in an IPC space, as user space sees it.
pub type PortName = u32;

/// Most user references one name may carry (Mach's `MACH_PORT_UREFS_MAX`).
pub const MAX_USER_REFERENCES: u32 = 0xfffe;

/// The rights a name holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights(u8);

impl Rights {
    pub const RECEIVE: Rights = Rights(1);
    pub const SEND: Rights = Rights(2);
    pub const SEND_ONCE: Rights = Rights(4);
    pub const PORT_SET: Rights = Rights(8);
    pub const DEAD_NAME: Rights = Rights(16);

    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersects(self, other: Rights) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn with(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
    pub const fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
}

/// What a name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object<P, S> {
    Port(P),
    PortSet(S),
    /// A dead name: its port was destroyed.
    Dead,
}

/// One name's entry. Invariant: `rights` is non-empty; `user_references` counts send
/// rights (with SEND) or dead-name references (with DEAD_NAME), and is 1 for a send-once
/// right, 0 otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<P, S> {
    pub object: Object<P, S>,
    pub rights: Rights,
    pub user_references: u32,
}

struct Slot<P, S> {
    generation: u8,
    entry: Option<Entry<P, S>>,
}

/// The index of the reply slot: one past the largest index `allocate` hands out, so its names
/// (`0xffff_fe00` to `0xffff_feff`) never collide with the others; none is 0 or `!0`, so its
/// generation simply wraps.
pub const REPLY_INDEX: usize = (1 << 24) - 2;

/// Invariants: `free` lists the empty slots and has capacity for every slot, `by_port` maps
/// each port this space holds a receive or send right for to its name; `reply` (index
/// [`REPLY_INDEX`]) is empty or holds a send-once right (or the dead name one became), and
/// counts neither in `live` nor against `limit`.
pub struct IpcSpace<P, S, H = ()> {
    slots: Vec<Slot<P, S>>,
    reply: Slot<P, S>,
    free: Vec<u32>,
    by_port: HashMap<P, PortName>,
    limit: usize,
    live: usize,
    /// The generation new slots start from: 0, or in a forked space (whose table ends at
    /// its last inherited name) the highest generation the parent's slots past that end
    /// had, so that a name the child's memory kept from the parent stays stale rather than
    /// naming a new right there (a slot's generation only grows, so every old name of those
    /// slots is at or below it, up to the wrap of 8 bits that every slot has).
    past_generation: u8,
    /// The last name `port_with` resolved for a receive right, and for a send right, with
    /// its port: a server receives on one name, a client calls one name, call after call.
    /// Forgotten at every change to any entry (`lookup_mut`, `release`, `drain`), so a name
    /// here still holds that right for that port (the port itself may have died since: its
    /// id then finds nothing in the port table, as the entry's would). Each with the hint
    /// last set for it (`set_hint`; `H::default()` until then).
    resolved: [Resolved<P, H>; 2],
    /// The hint set for the reply slot's right when it was put there (`insert_reply_with`;
    /// `H::default()` when it came otherwise, and once any entry changes).
    reply_hint: Cell<H>,
}

/// A name resolved last, with its port and the hint set for it.
type Resolved<P, H> = Cell<Option<(PortName, P, H)>>;

fn split(name: PortName) -> (usize, u8) {
    ((name >> 8) as usize, name as u8)
}

/// What inserting a send right did, so the caller can keep the port's count of send rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendInsert {
    /// A new name now holds the send right.
    New(PortName),
    /// The space already held a send right for the port: one more user reference; the
    /// inserted right merged into the existing one (the port has one send right fewer).
    Merged(PortName),
}

impl SendInsert {
    pub fn name(self) -> PortName {
        match self {
            SendInsert::New(n) | SendInsert::Merged(n) => n,
        }
    }
}

impl<P: Copy + Eq + Hash, S: Copy + Eq, H: Copy + Default> IpcSpace<P, S, H> {
    /// An empty space holding at most `limit` names.
    pub fn new(limit: usize) -> Self {
        IpcSpace {
            slots: Vec::new(),
            reply: Slot {
                generation: 0,
                entry: None,
            },
            free: Vec::new(),
            past_generation: 0,
            by_port: HashMap::new(),
            limit,
            live: 0,
            resolved: [Cell::new(None), Cell::new(None)],
            reply_hint: Cell::new(H::default()),
        }
    }

    /// Forgets the names `port_with` resolved, and every hint (some entry changes).
    fn forget_resolved(&mut self) {
        self.resolved = [Cell::new(None), Cell::new(None)];
        self.reply_hint = Cell::new(H::default());
    }

    /// Names in use, the reply slot's included.
    pub fn len(&self) -> usize {
        self.live + usize::from(self.reply.entry.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kernel heap bytes the space's table takes (its capacity, used or not).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Slot<P, S>>()
    }

    fn slot(&self, index: usize) -> Option<&Slot<P, S>> {
        if index == REPLY_INDEX {
            Some(&self.reply)
        } else {
            self.slots.get(index)
        }
    }

    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<P, S>> {
        if index == REPLY_INDEX {
            Some(&mut self.reply)
        } else {
            self.slots.get_mut(index)
        }
    }

    pub fn lookup(&self, name: PortName) -> Option<&Entry<P, S>> {
        let (index, generation) = split(name);
        let slot = self.slot(index)?;
        (slot.generation == generation).then_some(())?;
        slot.entry.as_ref()
    }

    /// The port `name` names, if it holds (at least) `rights` for it: `lookup` and the
    /// checks of the entry in one match, for the IPC fast path.
    #[inline(always)]
    pub fn port_with(&self, name: PortName, rights: Rights) -> Option<P> {
        self.port_and_hint_with(name, rights).map(|(port, _)| port)
    }

    /// [`IpcSpace::port_with`], and the hint set for `name` when it is the name resolved last
    /// for `rights` (`H::default()` otherwise).
    #[inline(always)]
    pub fn port_and_hint_with(&self, name: PortName, rights: Rights) -> Option<(P, H)> {
        let resolved = self.resolved_for(rights);
        if let Some(Some((last, port, hint))) = resolved.map(Cell::get) {
            if last == name {
                return Some((port, hint));
            }
        }
        let port = self.look_up_port_with(name, rights)?;
        if let Some(resolved) = resolved {
            resolved.set(Some((name, port, H::default())));
        }
        Some((port, H::default()))
    }

    /// Keeps `hint` beside `name`, if it is the name resolved last for `rights` (as
    /// [`IpcSpace::port_and_hint_with`] just made it).
    #[inline(always)]
    pub fn set_hint(&self, name: PortName, rights: Rights, hint: H) {
        if let Some(resolved) = self.resolved_for(rights) {
            if let Some((last, port, _)) = resolved.get() {
                if last == name {
                    resolved.set(Some((last, port, hint)));
                }
            }
        }
    }

    /// Keeps `hint` beside the reply slot's right (as [`IpcSpace::send_once_port`] just found
    /// it there).
    #[inline(always)]
    pub fn set_reply_hint(&self, hint: H) {
        self.reply_hint.set(hint);
    }

    /// Where the name resolved last for `rights` is kept (receive and send rights only).
    #[inline(always)]
    fn resolved_for(&self, rights: Rights) -> Option<&Resolved<P, H>> {
        match rights {
            Rights::RECEIVE => Some(&self.resolved[0]),
            Rights::SEND => Some(&self.resolved[1]),
            _ => None,
        }
    }

    /// The port a send-once right's `name` names, whether the right is the one in the
    /// reply slot (which [`IpcSpace::clear_reply`] then takes without looking again), and
    /// the hint set for it there (`H::default()` for another name): for the IPC fast path's
    /// reply.
    #[inline(always)]
    pub fn send_once_port(&self, name: PortName) -> Option<(P, bool, H)> {
        if split(name) == (REPLY_INDEX, self.reply.generation) {
            return match self.reply.entry {
                // Only send-once rights go in the reply slot (or the dead names they become).
                Some(Entry {
                    object: Object::Port(port),
                    ..
                }) => Some((port, true, self.reply_hint.get())),
                _ => None,
            };
        }
        Some((
            self.look_up_port_with(name, Rights::SEND_ONCE)?,
            false,
            H::default(),
        ))
    }

    /// Takes the send-once right in the reply slot, which [`IpcSpace::send_once_port`] just
    /// found there.
    #[inline(always)]
    pub fn clear_reply(&mut self) {
        debug_assert!(matches!(
            self.reply.entry,
            Some(Entry {
                object: Object::Port(_),
                ..
            })
        ));
        self.reply.entry = None;
    }

    /// `port_with` without the names resolved last.
    #[inline(always)]
    fn look_up_port_with(&self, name: PortName, rights: Rights) -> Option<P> {
        let (index, generation) = split(name);
        // Only send-once rights go in the reply slot: a lookup for other rights need not
        // look there (the ordinary slots never reach its index).
        let slot = if rights.contains(Rights::SEND_ONCE) {
            self.slot(index)?
        } else {
            self.slots.get(index)?
        };
        match slot.entry {
            Some(Entry {
                object: Object::Port(port),
                rights: held,
                ..
            }) if slot.generation == generation && held.contains(rights) => Some(port),
            _ => None,
        }
    }

    fn lookup_mut(&mut self, name: PortName) -> Option<&mut Entry<P, S>> {
        self.forget_resolved();
        let (index, generation) = split(name);
        let slot = self.slot_mut(index)?;
        (slot.generation == generation).then_some(())?;
        slot.entry.as_mut()
    }

    /// The name under which this space holds a receive or send right for `port`.
    pub fn name_of(&self, port: P) -> Option<PortName> {
        self.by_port.get(&port).copied()
    }

    /// `name_of`, dropping a reverse-map entry that no longer names a live entry for `port`
    /// (which would be a bookkeeping bug: repaired here rather than trusted).
    fn live_name_of(&mut self, port: P) -> Option<PortName> {
        let name = self.name_of(port)?;
        match self.lookup(name) {
            Some(e) if e.object == Object::Port(port) => Some(name),
            _ => {
                debug_assert!(false, "stale reverse-map entry {name:#x}");
                self.by_port.remove(&port);
                None
            }
        }
    }

    /// Takes a free name and stores `entry` under it.
    fn allocate(&mut self, entry: Entry<P, S>) -> Result<PortName, KernReturn> {
        if self.live >= self.limit {
            return Err(KernReturn::NoSpace);
        }
        let index = match self.free.pop() {
            Some(index) => index as usize,
            None => {
                let index = self.slots.len();
                // The reply slot's index is never an ordinary slot's (`port_with` counts
                // on it).
                if index >= REPLY_INDEX {
                    return Err(KernReturn::NoSpace);
                }
                self.slots
                    .try_reserve(1)
                    .map_err(|_| KernReturn::ResourceShortage)?;
                self.free
                    .try_reserve(index + 1 - self.free.len())
                    .map_err(|_| KernReturn::ResourceShortage)?;
                self.slots.push(Slot {
                    generation: self.past_generation,
                    entry: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index];
        // Generation 0 with index 0 would be name 0 (null): skip it.
        slot.generation = slot.generation.wrapping_add(1).max(1);
        slot.entry = Some(entry);
        self.live += 1;
        Ok(((index as u32) << 8) | u32::from(slot.generation))
    }

    fn release(&mut self, name: PortName) {
        self.forget_resolved();
        let (index, _) = split(name);
        if index == REPLY_INDEX {
            self.reply.entry = None;
            return;
        }
        if let Some(slot) = self.slots.get_mut(index) {
            if let Some(entry) = slot.entry.take() {
                // Send-once rights are never in the reverse map: skip the hash lookup for them
                // (the common reply right). A receive or send name reaches here with its bits
                // already cleared, so test for what it is not.
                if let (Object::Port(port), false) =
                    (entry.object, entry.rights.contains(Rights::SEND_ONCE))
                {
                    if self.by_port.get(&port) == Some(&name) {
                        self.by_port.remove(&port);
                    }
                }
                self.live -= 1;
                debug_assert!(self.free.len() < self.free.capacity());
                self.free.push(index as u32);
            }
        }
    }

    fn reserve_reverse(&mut self) -> Result<(), KernReturn> {
        self.by_port
            .try_reserve(1)
            .map_err(|_| KernReturn::ResourceShortage)
    }

    /// Gives the space the receive right for `port` (a new port, or one moved in a message).
    pub fn insert_receive(&mut self, port: P) -> Result<PortName, KernReturn> {
        if let Some(name) = self.live_name_of(port) {
            let entry = self.lookup_mut(name).expect("live_name_of checked it");
            if entry.rights.contains(Rights::RECEIVE) {
                return Err(KernReturn::InvalidRight);
            }
            entry.rights = entry.rights.with(Rights::RECEIVE);
            return Ok(name);
        }
        self.reserve_reverse()?;
        let name = self.allocate(Entry {
            object: Object::Port(port),
            rights: Rights::RECEIVE,
            user_references: 0,
        })?;
        self.by_port.insert(port, name);
        Ok(name)
    }

    /// Gives the space one send right for `port`, under the port's existing name if it has one.
    pub fn insert_send(&mut self, port: P) -> Result<SendInsert, KernReturn> {
        if let Some(name) = self.live_name_of(port) {
            let entry = self.lookup_mut(name).expect("live_name_of checked it");
            if entry.rights.contains(Rights::SEND) {
                if entry.user_references >= MAX_USER_REFERENCES {
                    return Err(KernReturn::InvalidValue);
                }
                entry.user_references += 1;
                return Ok(SendInsert::Merged(name));
            }
            entry.rights = entry.rights.with(Rights::SEND);
            entry.user_references = 1;
            return Ok(SendInsert::New(name));
        }
        self.reserve_reverse()?;
        let name = self.allocate(Entry {
            object: Object::Port(port),
            rights: Rights::SEND,
            user_references: 1,
        })?;
        self.by_port.insert(port, name);
        Ok(SendInsert::New(name))
    }

    /// Gives the space a send-once right for `port`, always under a new name: the reply
    /// slot's when it is free, else one from the free list.
    pub fn insert_send_once(&mut self, port: P) -> Result<PortName, KernReturn> {
        if let Some(name) = self.insert_reply(port) {
            return Ok(name);
        }
        self.allocate(Entry {
            object: Object::Port(port),
            rights: Rights::SEND_ONCE,
            user_references: 1,
        })
    }

    /// Puts a send-once right for `port` in the reply slot if it is free (the limit on
    /// names does not count the slot); returns its new name.
    #[inline(always)]
    pub fn insert_reply(&mut self, port: P) -> Option<PortName> {
        self.insert_reply_with(port, H::default())
    }

    /// [`IpcSpace::insert_reply`], with `hint` kept beside the right.
    #[inline(always)]
    pub fn insert_reply_with(&mut self, port: P, hint: H) -> Option<PortName> {
        if self.reply.entry.is_some() {
            return None;
        }
        self.reply_hint.set(hint);
        let generation = self.reply.generation.wrapping_add(1);
        self.reply = Slot {
            generation,
            entry: Some(Entry {
                object: Object::Port(port),
                rights: Rights::SEND_ONCE,
                user_references: 1,
            }),
        };
        Some(((REPLY_INDEX as u32) << 8) | u32::from(generation))
    }

    /// Takes the send-once right under `name` if it is the reply slot's; returns its port.
    /// (`None`: `name` is some other name, or not a live one: ask `take_send_once`.)
    #[inline]
    pub fn take_reply(&mut self, name: PortName) -> Option<P> {
        if split(name) != (REPLY_INDEX, self.reply.generation) {
            return None;
        }
        match self.reply.entry {
            Some(Entry {
                object: Object::Port(port),
                ..
            }) => {
                // Only send-once rights ever go in the reply slot.
                self.reply.entry = None;
                Some(port)
            }
            _ => None,
        }
    }

    /// A new name for port set `set`.
    pub fn insert_port_set(&mut self, set: S) -> Result<PortName, KernReturn> {
        self.allocate(Entry {
            object: Object::PortSet(set),
            rights: Rights::PORT_SET,
            user_references: 0,
        })
    }

    /// Removes the receive right held under `name`; returns its port.
    pub fn take_receive(&mut self, name: PortName) -> Result<P, KernReturn> {
        let entry = self.lookup_mut(name).ok_or(KernReturn::InvalidName)?;
        let (Object::Port(port), true) = (entry.object, entry.rights.contains(Rights::RECEIVE))
        else {
            return Err(KernReturn::InvalidRight);
        };
        entry.rights = entry.rights.without(Rights::RECEIVE);
        if entry.rights.is_empty() {
            self.release(name);
        }
        Ok(port)
    }

    /// Removes `count` user references of the send right under `name`. Returns the port and
    /// whether the space's send right itself went (the port then has one send right fewer).
    pub fn remove_send(&mut self, name: PortName, count: u32) -> Result<(P, bool), KernReturn> {
        let entry = self.lookup_mut(name).ok_or(KernReturn::InvalidName)?;
        let (Object::Port(port), true) = (entry.object, entry.rights.contains(Rights::SEND)) else {
            return Err(KernReturn::InvalidRight);
        };
        if count == 0 || count > entry.user_references {
            return Err(KernReturn::InvalidValue);
        }
        entry.user_references -= count;
        if entry.user_references > 0 {
            return Ok((port, false));
        }
        entry.rights = entry.rights.without(Rights::SEND);
        if entry.rights.is_empty() {
            self.release(name);
        }
        Ok((port, true))
    }

    /// Removes the send-once right under `name`; returns its port.
    pub fn take_send_once(&mut self, name: PortName) -> Result<P, KernReturn> {
        let entry = self.lookup(name).ok_or(KernReturn::InvalidName)?;
        let (Object::Port(port), true) = (entry.object, entry.rights.contains(Rights::SEND_ONCE))
        else {
            return Err(KernReturn::InvalidRight);
        };
        self.release(name);
        Ok(port)
    }

    /// Removes a port-set name; returns the set.
    pub fn take_port_set(&mut self, name: PortName) -> Result<S, KernReturn> {
        let entry = self.lookup(name).ok_or(KernReturn::InvalidName)?;
        let Object::PortSet(set) = entry.object else {
            return Err(KernReturn::InvalidRight);
        };
        self.release(name);
        Ok(set)
    }

    /// The port under `name` died: its send and send-once rights become a dead name (with
    /// their user references); a receive right can no longer be there (it died with it).
    pub fn make_dead(&mut self, name: PortName) {
        let Some(entry) = self.lookup_mut(name) else {
            return;
        };
        let Object::Port(port) = entry.object else {
            return;
        };
        entry.object = Object::Dead;
        entry.rights = Rights::DEAD_NAME;
        entry.user_references = entry.user_references.max(1);
        if self.by_port.get(&port) == Some(&name) {
            self.by_port.remove(&port);
        }
    }

    /// Removes `count` references of the dead name `name`.
    pub fn remove_dead(&mut self, name: PortName, count: u32) -> Result<(), KernReturn> {
        let entry = self.lookup_mut(name).ok_or(KernReturn::InvalidName)?;
        if !entry.rights.contains(Rights::DEAD_NAME) {
            return Err(KernReturn::InvalidRight);
        }
        if count == 0 || count > entry.user_references {
            return Err(KernReturn::InvalidValue);
        }
        entry.user_references -= count;
        if entry.user_references == 0 {
            self.release(name);
        }
        Ok(())
    }

    /// A space for a forked child: the send rights and dead names of this one, under the
    /// same names (so names kept in the child's copy of memory still work), with the same
    /// user references; no receive rights, send-once rights or port sets. The ports whose
    /// send rights were copied (each gains one send right) are the child's
    /// [`IpcSpace::ports`].
    ///
    /// The child's table ends at the last name it inherits, not where this space's table
    /// ends: a server that once held thousands of names (NONAIM's driver, a reply right from
    /// each of its users) would otherwise give each child a table of thousands of empty
    /// slots (25 KiB each: the 2,000-user step ran out of the kernel's budget for tasks at
    /// 1,080 users, 7 heap pages each).
    pub fn fork_send_rights(&self) -> Result<Self, KernReturn> {
        let inherits = |slot: &Slot<P, S>| {
            slot.entry
                .is_some_and(|e| e.rights.intersects(Rights::SEND.with(Rights::DEAD_NAME)))
        };
        let used = self
            .slots
            .iter()
            .rposition(inherits)
            .map_or(0, |last| last + 1);
        let mut child = IpcSpace::new(self.limit);
        let short = KernReturn::ResourceShortage;
        child.slots.try_reserve(used).map_err(|_| short)?;
        child.free.try_reserve(used).map_err(|_| short)?;
        // New slots past `used` start above every generation the slots there had.
        child.past_generation = self.slots[used..]
            .iter()
            .map(|slot| slot.generation)
            .fold(self.past_generation, u8::max);
        // Room for every inherited port's reverse entry: the inserts below cannot allocate
        // (an allocation failing there would stop the kernel, not refuse the fork).
        child
            .by_port
            .try_reserve(self.by_port.len())
            .map_err(|_| short)?;
        for (index, slot) in self.slots[..used].iter().enumerate() {
            let inherited = slot.entry.and_then(|e| {
                if e.rights.contains(Rights::SEND) {
                    Some(Entry {
                        rights: Rights::SEND,
                        ..e
                    })
                } else if e.rights.contains(Rights::DEAD_NAME) {
                    Some(e)
                } else {
                    None
                }
            });
            child.slots.push(Slot {
                generation: slot.generation,
                entry: inherited,
            });
            match inherited {
                Some(entry) => {
                    child.live += 1;
                    if let Object::Port(port) = entry.object {
                        child
                            .by_port
                            .insert(port, ((index as u32) << 8) | u32::from(slot.generation));
                    }
                }
                None => child.free.push(index as u32),
            }
        }
        // Free slots are taken lowest first, as in a fresh space.
        child.free.reverse();
        Ok(child)
    }

    /// The ports the space holds a right to (each once, in no order).
    pub fn ports(&self) -> impl Iterator<Item = P> + '_ {
        self.by_port.keys().copied()
    }

    /// Every name with its entry.
    pub fn entries(&self) -> impl Iterator<Item = (PortName, &Entry<P, S>)> {
        let reply = core::iter::once((REPLY_INDEX, &self.reply));
        self.slots
            .iter()
            .enumerate()
            .chain(reply)
            .filter_map(|(index, slot)| {
                slot.entry
                    .as_ref()
                    .map(|e| (((index as u32) << 8) | u32::from(slot.generation), e))
            })
    }

    /// Empties the space, handing every entry to `release` (task termination).
    pub fn drain(&mut self, mut release: impl FnMut(PortName, Entry<P, S>)) {
        self.forget_resolved();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(entry) = slot.entry.take() {
                release(((index as u32) << 8) | u32::from(slot.generation), entry);
            }
        }
        if let Some(entry) = self.reply.entry.take() {
            release(
                ((REPLY_INDEX as u32) << 8) | u32::from(self.reply.generation),
                entry,
            );
        }
        self.by_port.clear();
        self.free.clear();
        self.free.extend((0..self.slots.len() as u32).rev());
        self.live = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Space = IpcSpace<u32, u32>;

    #[test]
    fn receive_and_send_share_a_name() {
        let mut s = Space::new(100);
        let name = s.insert_receive(7).unwrap();
        assert_ne!(name, 0);
        assert_eq!(s.insert_send(7).unwrap(), SendInsert::New(name));
        assert_eq!(s.insert_send(7).unwrap(), SendInsert::Merged(name));
        let e = s.lookup(name).unwrap();
        assert!(e.rights.contains(Rights::RECEIVE.with(Rights::SEND)));
        assert_eq!(e.user_references, 2);
        assert_eq!(s.insert_receive(7), Err(KernReturn::InvalidRight));
    }

    #[test]
    fn port_with_answers_only_for_the_rights_held() {
        let mut s = Space::new(100);
        let both = s.insert_receive(7).unwrap();
        s.insert_send(7).unwrap();
        let send = s.insert_send(8).unwrap().name();
        let once = s.insert_send_once(9).unwrap();
        let set = s.insert_port_set(1).unwrap();
        assert_eq!(s.port_with(both, Rights::RECEIVE), Some(7));
        assert_eq!(s.port_with(both, Rights::SEND), Some(7));
        assert_eq!(s.port_with(send, Rights::SEND), Some(8));
        assert_eq!(s.port_with(send, Rights::RECEIVE), None);
        assert_eq!(s.port_with(once, Rights::SEND_ONCE), Some(9)); // the reply slot
        assert_eq!(s.port_with(once, Rights::SEND), None);
        assert_eq!(s.port_with(once, Rights::RECEIVE), None);
        assert_eq!(s.port_with(set, Rights::RECEIVE), None);
        assert_eq!(s.port_with(send + 1, Rights::SEND), None); // another generation
        assert_eq!(s.port_with(0x7f_0001, Rights::SEND), None); // no such slot
        s.remove_send(send, 1).unwrap();
        assert_eq!(s.port_with(send, Rights::SEND), None);
    }

    #[test]
    fn names_resolved_last_are_forgotten_when_entries_change() {
        let mut s = Space::new(100);
        let name = s.insert_receive(7).unwrap();
        s.insert_send(7).unwrap();
        let other = s.insert_send(8).unwrap().name();
        // Resolved, then answered again from what was resolved.
        for _ in 0..2 {
            assert_eq!(s.port_with(name, Rights::RECEIVE), Some(7));
            assert_eq!(s.port_with(other, Rights::SEND), Some(8));
        }
        // The receive right leaves; the send right stays under the name.
        assert_eq!(s.take_receive(name), Ok(7));
        assert_eq!(s.port_with(name, Rights::RECEIVE), None);
        assert_eq!(s.port_with(name, Rights::SEND), Some(7));
        // The name dies; a new entry never answers to the old name.
        s.make_dead(other);
        assert_eq!(s.port_with(other, Rights::SEND), None);
        assert_eq!(s.remove_send(name, 1), Ok((7, true)));
        assert_eq!(s.port_with(name, Rights::SEND), None);
        let again = s.insert_receive(9).unwrap();
        assert_ne!(again, name);
        assert_eq!(s.port_with(again, Rights::RECEIVE), Some(9));
        assert_eq!(s.port_with(name, Rights::RECEIVE), None);
        // Emptied (a task's end): nothing answers.
        s.drain(|_, _| {});
        assert_eq!(s.port_with(again, Rights::RECEIVE), None);
    }

    #[test]
    fn send_rights_count_user_references() {
        let mut s = Space::new(100);
        let name = s.insert_send(3).unwrap().name();
        s.insert_send(3).unwrap();
        assert_eq!(s.remove_send(name, 3), Err(KernReturn::InvalidValue));
        assert_eq!(s.remove_send(name, 1), Ok((3, false)));
        assert_eq!(s.remove_send(name, 1), Ok((3, true)));
        assert_eq!(s.lookup(name), None);
        assert_eq!(s.name_of(3), None);
        assert_eq!(s.remove_send(name, 1), Err(KernReturn::InvalidName));
    }

    #[test]
    fn send_once_rights_get_their_own_names() {
        let mut s = Space::new(100);
        let send = s.insert_send(5).unwrap().name();
        let once_a = s.insert_send_once(5).unwrap();
        let once_b = s.insert_send_once(5).unwrap();
        assert!(send != once_a && once_a != once_b);
        assert_eq!(s.take_send_once(once_a), Ok(5));
        assert_eq!(s.take_send_once(once_a), Err(KernReturn::InvalidName));
        assert_eq!(s.take_send_once(send), Err(KernReturn::InvalidRight));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_send_once_name_says_whether_it_is_the_reply_slot() {
        let mut s = Space::new(100);
        let slot = s.insert_send_once(5).unwrap();
        let other = s.insert_send_once(6).unwrap();
        let send = s.insert_send(7).unwrap().name();
        assert_eq!(s.send_once_port(slot), Some((5, true, ())));
        assert_eq!(s.send_once_port(other), Some((6, false, ())));
        // Not a send-once right, or not a name at all.
        assert_eq!(s.send_once_port(send), None);
        assert_eq!(s.send_once_port(slot ^ 1), None);
        s.clear_reply();
        assert_eq!(s.lookup(slot), None);
        assert_eq!(s.send_once_port(slot), None);
        assert_eq!(s.len(), 2);
        // A dead name in the slot names no port.
        let again = s.insert_send_once(8).unwrap();
        s.make_dead(again);
        assert_eq!(s.send_once_port(again), None);
    }

    /// A space with hints (`u32`s, 0 for none).
    type Hinted = IpcSpace<u32, u32, u32>;

    #[test]
    fn a_hint_stays_beside_its_name_until_an_entry_changes() {
        let mut s = Hinted::new(100);
        let receive = s.insert_receive(7).unwrap();
        let send = s.insert_send(8).unwrap().name();
        // No hint until one is set, and one is set only for the name resolved last.
        assert_eq!(s.port_and_hint_with(receive, Rights::RECEIVE), Some((7, 0)));
        s.set_hint(receive, Rights::RECEIVE, 70);
        s.set_hint(send, Rights::SEND, 80); // not resolved yet: not kept
        assert_eq!(s.port_and_hint_with(send, Rights::SEND), Some((8, 0)));
        s.set_hint(send, Rights::SEND, 80);
        assert_eq!(
            s.port_and_hint_with(receive, Rights::RECEIVE),
            Some((7, 70))
        );
        assert_eq!(s.port_and_hint_with(send, Rights::SEND), Some((8, 80)));
        // For the other kind of right, or another name: none.
        assert_eq!(s.port_and_hint_with(receive, Rights::SEND), None);
        // Another name resolved in its place takes the place without the hint.
        let other = s.insert_send(9).unwrap().name();
        assert_eq!(s.port_and_hint_with(other, Rights::SEND), Some((9, 0)));
        s.set_hint(other, Rights::SEND, 90);
        assert_eq!(s.port_and_hint_with(send, Rights::SEND), Some((8, 0)));
        // A new name changes no entry; any change to an entry forgets them all.
        s.set_hint(send, Rights::SEND, 80);
        s.insert_send(10).unwrap();
        assert_eq!(s.port_and_hint_with(send, Rights::SEND), Some((8, 80)));
        s.insert_send(9).unwrap(); // one more reference on `other`
        assert_eq!(s.port_and_hint_with(receive, Rights::RECEIVE), Some((7, 0)));
        assert_eq!(s.port_and_hint_with(send, Rights::SEND), Some((8, 0)));
    }

    #[test]
    fn the_reply_slot_keeps_the_hint_it_was_given() {
        let mut s = Hinted::new(100);
        let slot = s.insert_reply_with(5, 50).unwrap();
        assert_eq!(s.send_once_port(slot), Some((5, true, 50)));
        // Taken and put back without a hint: none.
        assert_eq!(s.take_reply(slot), Some(5));
        let slot = s.insert_reply(6).unwrap();
        assert_eq!(s.send_once_port(slot), Some((6, true, 0)));
        s.clear_reply();
        // Forgotten when any entry changes.
        let slot = s.insert_reply_with(7, 70).unwrap();
        s.insert_send(9).unwrap();
        assert_eq!(s.send_once_port(slot), Some((7, true, 70)));
        s.insert_send(9).unwrap(); // one more reference
        assert_eq!(s.send_once_port(slot), Some((7, true, 0)));
        // A send-once right under another name has none.
        let other = s.insert_send_once(8).unwrap();
        assert_eq!(s.send_once_port(other), Some((8, false, 0)));
    }

    #[test]
    fn the_reply_slot_holds_one_send_once_right_at_a_time() {
        let mut s = Space::new(100);
        let first = s.insert_send_once(5).unwrap();
        assert_eq!(first >> 8, REPLY_INDEX as u32);
        // The slot is taken: the next one gets an ordinary name.
        let second = s.insert_send_once(6).unwrap();
        assert!(second >> 8 < REPLY_INDEX as u32);
        assert_eq!(s.lookup(first).unwrap().rights, Rights::SEND_ONCE);
        assert_eq!(s.len(), 2);
        assert_eq!(s.take_reply(second), None);
        assert_eq!(s.take_reply(first), Some(5));
        assert_eq!(s.take_reply(first), None);
        assert_eq!(s.lookup(first), None);
        // Used again, under a new generation: the old name stays stale.
        let third = s.insert_send_once(7).unwrap();
        assert_eq!(third >> 8, REPLY_INDEX as u32);
        assert_ne!(third, first);
        assert_eq!(s.take_send_once(first), Err(KernReturn::InvalidName));
        assert_eq!(s.take_send_once(third), Ok(7));
        assert_eq!(s.take_send_once(second), Ok(6));
        assert!(s.is_empty());
        // The slot's names never reach 0 or `!0`, and every generation comes round.
        let mut generations = [false; 256];
        for _ in 0..600 {
            let name = s.insert_send_once(1).unwrap();
            assert!(name != 0 && name != !0 && name >> 8 == REPLY_INDEX as u32);
            generations[(name & 0xff) as usize] = true;
            s.make_dead(name);
            assert_eq!(s.lookup(name).unwrap().rights, Rights::DEAD_NAME);
            s.remove_dead(name, 1).unwrap();
        }
        assert!(generations.iter().all(|seen| *seen));
        let mut seen = 0;
        s.insert_send_once(2).unwrap();
        s.drain(|_, e| {
            assert_eq!(e.object, Object::Port(2));
            seen += 1;
        });
        assert_eq!((seen, s.len()), (1, 0));
    }

    #[test]
    fn stale_names_are_not_reused_silently() {
        let mut s = Space::new(100);
        let old = s.insert_send(1).unwrap().name();
        s.remove_send(old, 1).unwrap();
        let new = s.insert_send(2).unwrap().name();
        assert_eq!(old >> 8, new >> 8);
        assert_ne!(old, new);
        assert_eq!(s.lookup(old), None);
    }

    #[test]
    fn dead_names_keep_references_until_removed() {
        let mut s = Space::new(100);
        let name = s.insert_send(9).unwrap().name();
        s.insert_send(9).unwrap();
        s.make_dead(name);
        let e = *s.lookup(name).unwrap();
        assert_eq!(
            (e.object, e.rights, e.user_references),
            (Object::Dead, Rights::DEAD_NAME, 2)
        );
        assert_eq!(s.name_of(9), None);
        // A new send right for the same (dead) port id cannot merge into the dead name.
        assert_ne!(s.insert_send(9).unwrap().name(), name);
        assert_eq!(s.remove_send(name, 1), Err(KernReturn::InvalidRight));
        s.remove_dead(name, 2).unwrap();
        assert_eq!(s.lookup(name), None);
    }

    #[test]
    fn a_name_given_up_right_by_right_leaves_no_reverse_entry() {
        let mut s = Space::new(100);
        let name = s.insert_receive(4).unwrap();
        s.insert_send(4).unwrap();
        s.remove_send(name, 1).unwrap();
        assert_eq!(s.take_receive(name), Ok(4));
        assert_eq!(s.name_of(4), None);
        // The slot is reused for another port; the old port gets a fresh name.
        let other = s.insert_send(5).unwrap().name();
        let again = s.insert_send(4).unwrap().name();
        assert_ne!(other, again);
        assert_eq!(s.name_of(4), Some(again));
        assert_eq!(s.name_of(5), Some(other));
    }

    #[test]
    fn a_fork_keeps_send_rights_under_their_names() {
        let mut s = Space::new(100);
        let both = s.insert_receive(1).unwrap();
        s.insert_send(1).unwrap();
        let send = s.insert_send(2).unwrap().name();
        s.insert_send(2).unwrap();
        let once = s.insert_send_once(3).unwrap();
        let set = s.insert_port_set(9).unwrap();
        let dead = s.insert_send(4).unwrap().name();
        s.make_dead(dead);
        let mut child = s.fork_send_rights().unwrap();
        let mut ports: Vec<_> = child.ports().collect();
        ports.sort();
        assert_eq!(ports, vec![1, 2]);
        let e = *child.lookup(both).unwrap();
        assert_eq!((e.rights, e.user_references), (Rights::SEND, 1));
        assert_eq!(child.lookup(send).unwrap().user_references, 2);
        assert_eq!(child.lookup(once), None);
        assert_eq!(child.lookup(set), None);
        assert_eq!(child.lookup(dead).unwrap().rights, Rights::DEAD_NAME);
        assert_eq!(child.name_of(2), Some(send));
        assert_eq!(child.len(), 3);
        // New names in the child do not collide with the inherited ones.
        let fresh = child.insert_send(7).unwrap().name();
        assert!(![both, send, dead].contains(&fresh));
    }

    #[test]
    fn a_forked_space_ends_at_its_last_inherited_name() {
        let mut s = Space::new(10_000);
        let kept = s.insert_send(1).unwrap().name();
        // A server's many reply rights, all gone by the fork.
        let rights: Vec<_> = (100..3100)
            .map(|p| s.insert_send(p).unwrap().name())
            .collect();
        let late = s.insert_send(2).unwrap().name();
        for &name in &rights {
            s.remove_send(name, 1).unwrap();
        }
        let child = s.fork_send_rights().unwrap();
        assert_eq!(child.slots.len(), (late >> 8) as usize + 1);
        s.remove_send(late, 1).unwrap();
        let mut child = s.fork_send_rights().unwrap();
        assert_eq!(child.ports().collect::<Vec<_>>(), vec![1]);
        assert_eq!(child.slots.len(), (kept >> 8) as usize + 1);
        assert_eq!(child.lookup(kept).unwrap().rights, Rights::SEND);
        // The child names new rights past the end of its table, never reusing `kept`, nor
        // any name the parent held there (one its memory may still keep).
        let fresh = child.insert_send(5).unwrap().name();
        assert_ne!(fresh, kept);
        assert_eq!(child.name_of(5), Some(fresh));
        for _ in 0..3200 {
            let name = child.insert_send_once(6).unwrap();
            assert!(
                !rights.contains(&name) && name != late,
                "{name:#x} was the parent's"
            );
        }
        let empty = Space::new(10).fork_send_rights().unwrap();
        assert!(empty.ports().next().is_none() && empty.slots.is_empty());
    }

    #[test]
    fn the_limit_is_an_error_not_a_panic() {
        let mut s = Space::new(3);
        for port in 0..3 {
            s.insert_send(port).unwrap();
        }
        assert_eq!(s.insert_send(99), Err(KernReturn::NoSpace));
        // The reply slot is not counted: one send-once right still goes there, no more.
        let reply = s.insert_send_once(1).unwrap();
        assert_eq!(reply >> 8, REPLY_INDEX as u32);
        assert_eq!(s.len(), 4);
        assert_eq!(s.insert_send_once(1), Err(KernReturn::NoSpace));
    }

    #[test]
    fn drain_hands_over_every_right() {
        let mut s = Space::new(100);
        s.insert_receive(1).unwrap();
        s.insert_send(2).unwrap();
        s.insert_send_once(2).unwrap();
        s.insert_port_set(40).unwrap();
        let mut seen = Vec::new();
        s.drain(|_, e| seen.push(e.rights));
        assert_eq!(seen.len(), 4);
        assert!(s.is_empty());
        assert!(s.insert_send(3).is_ok());
    }
}

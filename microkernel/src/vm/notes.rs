//! What the VM mechanism leaves for the kernel's paths (`kern`), which it cannot call: the
//! absent page a call must wait for, pager objects whose last reference went, and objects a
//! collapse could merge (a backing object left to one shadow, or one with pages at the
//! default pager). Each is noted here and taken on the kernel's way out.

use super::address_space::ObjectId;
use super::map::Protection;
use alloc::vec::Vec;

/// A page the kernel needed of a pager while reaching user memory: the caller waits for it
/// (`Kernel::wait_for_page`) and then does its work again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Absent {
    pub object: ObjectId,
    pub offset: u64,
    pub strategy: super::map::Strategy,
    pub access: Protection,
}

/// The last absent page met (one kernel lock, one CPU: a single slot). Whoever reached user
/// memory takes it after an error: the system-call dispatcher for the caller's own memory,
/// the message path for a receiver's buffer.
static ABSENT: spin::Mutex<Option<Absent>> = spin::Mutex::new(None);
/// Whether `ABSENT` holds a page: checked after every system call, so kept to one load.
static ANY_ABSENT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Takes the absent page the last failed access met, if that was why it failed.
#[inline(always)]
pub fn take_absent() -> Option<Absent> {
    use core::sync::atomic::Ordering;
    if !ANY_ABSENT.load(Ordering::Relaxed) {
        return None;
    }
    ANY_ABSENT.store(false, Ordering::Relaxed);
    ABSENT.lock().take()
}

/// Notes `absent` as the page the current system call needs: the dispatcher waits for it and
/// runs the call again (for kernel work that needs a page of a pager's outside a user
/// access: copying shared memory in a fork or a message).
pub fn note_absent(absent: Absent) {
    *ABSENT.lock() = Some(absent);
    ANY_ABSENT.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Pager objects whose last reference went (`release_object` cannot send messages): the
/// kernel terminates them at its next exit to user mode. `true`: the object is still in the
/// table, unreferenced, with changes to return first.
static RELEASED: spin::Mutex<Vec<(ObjectId, bool)>> = spin::Mutex::new(Vec::new());

/// The object was freed (or, with `write_back`, is to be once its changed pages are
/// returned): its pager is told, and its ports go, by `Kernel::reap_pagers`.
pub fn object_released(id: ObjectId, write_back: bool) {
    let mut released = RELEASED.lock();
    if released.try_reserve(1).is_err() {
        log::error!("vm: no memory to terminate a pager object; its ports leak");
        return;
    }
    released.push((id, write_back));
    super::kernel_space::note_pagers_released();
}

/// Takes the pager objects released since the last call.
pub fn take_released() -> Vec<(ObjectId, bool)> {
    core::mem::take(&mut *RELEASED.lock())
}

/// Front objects whose backing object could take the pager-moving collapse: (front, backing).
static CANDIDATES: spin::Mutex<Vec<(ObjectId, ObjectId)>> = spin::Mutex::new(Vec::new());

/// Most candidates kept; more are dropped (the next fault on the object notes it again).
const MAX_CANDIDATES: usize = 64;

/// Notes that `front`'s backing object `backing` (used by `front` alone, with pages at the
/// default pager) can be merged into it.
pub fn note_candidate(front: ObjectId, backing: ObjectId) {
    let mut candidates = CANDIDATES.lock();
    if candidates.contains(&(front, backing))
        || candidates.len() >= MAX_CANDIDATES
        || candidates.try_reserve(1).is_err()
    {
        return;
    }
    candidates.push((front, backing));
    super::kernel_space::want_collapse();
}

/// Takes the noted collapse candidates.
pub fn take_collapse_candidates() -> Vec<(ObjectId, ObjectId)> {
    core::mem::take(&mut *CANDIDATES.lock())
}

/// Front objects whose backing object has just been left to them alone (the other shadow of
/// a fork went): merged with `address_space::collapse` on the kernel's way out. A fixed
/// array: noted at every child's exit, so nothing is allocated for it.
struct Fronts {
    ids: [Option<ObjectId>; MAX_CANDIDATES],
    len: usize,
}

static FRONTS: spin::Mutex<Fronts> = spin::Mutex::new(Fronts {
    ids: [None; MAX_CANDIDATES],
    len: 0,
});

/// Notes that `front`'s backing object is used by `front` alone now: the kernel merges it at
/// its next exit (most kept: [`MAX_CANDIDATES`]; past that, the next fork or fault does).
pub fn note_front(front: ObjectId) {
    let mut fronts = FRONTS.lock();
    let len = fronts.len;
    if len == MAX_CANDIDATES || fronts.ids[..len].contains(&Some(front)) {
        return;
    }
    fronts.ids[len] = Some(front);
    fronts.len = len + 1;
    super::kernel_space::want_collapse();
}

/// Takes a noted front, the last noted first.
pub fn take_collapse_front() -> Option<ObjectId> {
    let mut fronts = FRONTS.lock();
    let len = fronts.len.checked_sub(1)?;
    fronts.len = len;
    fronts.ids[len].take()
}

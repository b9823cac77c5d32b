//! Memory between an address space and a device: the frames behind out-of-line memory a task
//! sends to be written, and out-of-line memory made of frames a device has read into.

use super::address_space::{copy_frame, page_at, release_object, MapCopy, ObjectId, PageAt};
use super::kernel_space;
use super::map::PAGE_SIZE;
use super::object::{ObjectKind, VmObject};
use super::pmap;
use crate::base::object_table::Table;
use alloc::vec::Vec;

/// Why the frames of out-of-line memory could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeError {
    /// A page is not in memory (never touched, or paged out).
    NotResident,
    /// No memory for a copy or for the list of frames.
    NoMemory,
}

/// The object holding the page at `offset` of `object` and its frame, if it is resident.
fn find_page(objects: &Table<VmObject>, object: ObjectId, offset: u64) -> Option<(ObjectId, u64)> {
    match page_at(objects, object, offset) {
        PageAt::Resident { holder, frame } => Some((holder, frame)),
        PageAt::WithPager | PageAt::Zero => None,
    }
}

/// The frames of `copy`'s pages, in address order, for a device to write from while the
/// caller keeps `copy` (so its objects keep the frames), if every page is resident and on
/// none of the pageout daemon's queues (pages in transit: a return on its way through a
/// pager, which the kernel still refers to). `None` if a page is not so; or no memory for
/// the list. Nothing is copied or moved: the device reads the pages where they are.
pub fn borrow_frames(objects: &Table<VmObject>, copy: &MapCopy) -> Option<Vec<u64>> {
    let mut frames = Vec::new();
    frames
        .try_reserve_exact((copy.size / PAGE_SIZE) as usize)
        .ok()?;
    for entry in &copy.entries {
        for address in (entry.start..entry.end).step_by(PAGE_SIZE as usize) {
            let offset = entry.object_offset(address);
            let (_, frame) = find_page(objects, entry.object, offset)?;
            let managed = kernel_space::with_mappings(|m| m.owner(frame / PAGE_SIZE).is_some())
                .unwrap_or(true);
            if managed {
                return None;
            }
            frames.push(frame);
        }
    }
    Some(frames)
}

/// Takes the frames of `copy`'s pages, in address order, for a device to write from, and
/// lets go of the copy. A page in an object that only this copy refers to moves out of it
/// (no copy is made); any other (shared, or read through to a backing object) is copied
/// into a new frame. `Err` gives the copy back unchanged.
pub fn take_frames(
    objects: &mut Table<VmObject>,
    copy: MapCopy,
) -> Result<Vec<u64>, (MapCopy, TakeError)> {
    // First every page is found, and copies are made where needed: nothing moves until all
    // are there.
    let pages = (copy.size / PAGE_SIZE) as usize;
    let mut frames: Vec<(u64, bool)> = Vec::new();
    if frames.try_reserve_exact(pages).is_err() {
        return Err((copy, TakeError::NoMemory));
    }
    let give_back = |frames: Vec<(u64, bool)>| {
        for (frame, copied) in frames {
            if copied {
                let _ = kernel_space::free_frame(frame);
            }
        }
    };
    for entry in &copy.entries {
        for address in (entry.start..entry.end).step_by(PAGE_SIZE as usize) {
            let offset = entry.object_offset(address);
            let Some((holder, frame)) = find_page(objects, entry.object, offset) else {
                give_back(frames);
                return Err((copy, TakeError::NotResident));
            };
            let alone = holder == entry.object
                && objects
                    .get(holder)
                    .is_some_and(|o| o.references() == 1 && o.kind() == ObjectKind::Anonymous);
            if alone {
                frames.push((frame, false));
                continue;
            }
            let Some(new) = kernel_space::allocate_user_frame() else {
                give_back(frames);
                return Err((copy, TakeError::NoMemory));
            };
            copy_frame(frame, new);
            frames.push((new, true));
        }
    }
    // Then the pages this copy alone holds leave their objects.
    let mut at = 0;
    for entry in &copy.entries {
        for address in (entry.start..entry.end).step_by(PAGE_SIZE as usize) {
            let (frame, copied) = frames[at];
            at += 1;
            if copied {
                continue;
            }
            let offset = entry.object_offset(address);
            if let Some(o) = objects.get_mut(entry.object) {
                o.take_page(offset);
            }
            pmap::remove_everywhere(frame);
            kernel_space::with_mappings(|m| m.clear_owner(frame / PAGE_SIZE));
        }
    }
    copy.release(objects);
    Ok(frames.into_iter().map(|(frame, _)| frame).collect())
}

/// Out-of-line memory made of `frames` (in order), to send in a message: a new anonymous
/// object holding them. `Err` gives the frames back when the kernel heap has no room.
pub fn from_frames(objects: &mut Table<VmObject>, frames: Vec<u64>) -> Result<MapCopy, Vec<u64>> {
    let size = frames.len() as u64 * PAGE_SIZE;
    let mut object = VmObject::new(ObjectKind::Anonymous, size);
    if object.reserve_pages(frames.len()).is_err() {
        return Err(frames);
    }
    for (i, &frame) in frames.iter().enumerate() {
        // Room was reserved above.
        let _ = object.insert_page(i as u64 * PAGE_SIZE, frame);
    }
    let Ok(id) = objects.insert(object) else {
        return Err(frames);
    };
    match MapCopy::whole_object(id, size) {
        Ok(copy) => {
            // The frames are the object's pages now, as a fault's new frames are: on the page
            // queues (so the pageout daemon can take them) and dirty (anonymous memory no
            // pager holds a copy of: pageout must return them, not drop them).
            kernel_space::with_mappings(|m| {
                for (i, &frame) in frames.iter().enumerate() {
                    m.set_owner(frame / PAGE_SIZE, id.to_raw(), i as u64 * PAGE_SIZE);
                    m.note_flags(frame / PAGE_SIZE, super::page::page_flags::DIRTY);
                }
            });
            Ok(copy)
        }
        Err(_) => {
            // The frames are the object's now: take them back before it goes.
            if let Some(o) = objects.get_mut(id) {
                let _ = o.take_pages().count();
            }
            release_object(objects, id);
            Err(frames)
        }
    }
}

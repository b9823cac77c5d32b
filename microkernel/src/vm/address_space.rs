//! A task's address space: its `vm_map` and the pmap that caches it, with the page-fault path
//! (map entry → object → resident page or zero fill → pmap) and teardown.

use super::kernel_space::{self, phys_to_virt};
use super::map::{MapEntry, MapError, Protection, VmMap, PAGE_SIZE};
use super::object::{ObjectKind, VmObject};
use super::pmap::Pmap;
use crate::kern::object_table::{Id, OutOfMemory, Table};
use libipc::abi::syscall::{USER_END, USER_IMAGE_BASE};
use libipc::abi::KernReturn;

pub type ObjectId = Id<VmObject>;

/// Why a fault could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No region contains the address.
    NotMapped,
    /// The region does not allow the access.
    Protection,
    /// No memory for the page or a page table.
    OutOfMemory,
}

impl core::fmt::Display for FaultError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FaultError::NotMapped => "no region at this address",
            FaultError::Protection => "access not allowed by the region's protection",
            FaultError::OutOfMemory => "out of memory",
        })
    }
}

pub struct AddressSpace {
    map: VmMap<ObjectId>,
    pmap: Pmap,
}

impl AddressSpace {
    pub fn new() -> Result<AddressSpace, OutOfMemory> {
        Ok(AddressSpace {
            map: VmMap::new(USER_IMAGE_BASE, USER_END),
            pmap: Pmap::new()?,
        })
    }

    pub fn map(&self) -> &VmMap<ObjectId> {
        &self.map
    }

    pub fn pmap(&self) -> &Pmap {
        &self.pmap
    }

    /// Maps `object` (whose reference the caller passes to the map) at `[start, end)`.
    pub fn enter(&mut self, entry: MapEntry<ObjectId>) -> Result<(), MapError> {
        self.map.insert(entry)
    }

    /// Resolves a fault at `address` for `access`: finds the page (zero-filling anonymous
    /// memory) and enters it in the pmap. Returns the frame.
    pub fn resolve_fault(
        &mut self,
        objects: &mut Table<VmObject>,
        address: u64,
        access: Protection,
    ) -> Result<u64, FaultError> {
        let entry = *self.map.lookup(address).ok_or(FaultError::NotMapped)?;
        if !entry.protection.allows(access) {
            return Err(FaultError::Protection);
        }
        let page = address & !(PAGE_SIZE - 1);
        let offset = entry.object_offset(page);
        let object = objects.get_mut(entry.object).ok_or(FaultError::NotMapped)?;
        let frame = match object.resident_page(offset) {
            Some(frame) => frame,
            None if object.kind() == ObjectKind::Anonymous && offset < object.size() => {
                let frame = kernel_space::allocate_user_frame().ok_or(FaultError::OutOfMemory)?;
                // SAFETY: a fresh frame, mapped by the direct map, owned by nobody yet.
                unsafe {
                    core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, PAGE_SIZE as usize)
                };
                if object.insert_page(offset, frame).is_err() {
                    let _ = kernel_space::free_frame(frame);
                    return Err(FaultError::OutOfMemory);
                }
                frame
            }
            None => return Err(FaultError::NotMapped),
        };
        self.pmap
            .enter(page, frame, entry.protection)
            .map_err(|_| FaultError::OutOfMemory)?;
        Ok(frame)
    }

    /// The frame behind user page `page` if it is mapped with at least `access`, faulting it
    /// in if needed: how the kernel reads and writes user memory without touching user
    /// addresses (so a bad address is an error code, never a kernel fault).
    pub fn frame_for(
        &mut self,
        objects: &mut Table<VmObject>,
        page: u64,
        access: Protection,
    ) -> Result<u64, FaultError> {
        use crate::arch::paging::flags;
        if let Some((frame, entry_flags)) = self.pmap.translate(page) {
            let writable = entry_flags & flags::WRITABLE != 0;
            if entry_flags & flags::USER != 0 && (writable || !access.allows(Protection::WRITE)) {
                return Ok(frame & !(PAGE_SIZE - 1));
            }
        }
        self.resolve_fault(objects, page, access)
    }

    /// A new anonymous region of `size` bytes at `address` (or anywhere at or above `from`
    /// when `address` is `None`); its start.
    pub fn allocate(
        &mut self,
        objects: &mut Table<VmObject>,
        address: Option<u64>,
        from: u64,
        size: u64,
    ) -> Result<u64, KernReturn> {
        let start = match address {
            Some(a) => a,
            None => self.map.find_space(from, size).ok_or(KernReturn::NoSpace)?,
        };
        let end = start.checked_add(size).ok_or(KernReturn::NoSpace)?;
        let object = objects
            .insert(VmObject::new(ObjectKind::Anonymous, size))
            .map_err(|_| KernReturn::ResourceShortage)?;
        match self
            .map
            .insert(MapEntry::new(start, end, object, 0, Protection::READ_WRITE))
        {
            Ok(()) => Ok(start),
            Err(e) => {
                release_object(objects, object);
                Err(map_error(e))
            }
        }
    }

    /// Removes every mapping in `[start, end)`. Pages of anonymous memory in the range are
    /// freed with it: an anonymous object is never shared between tasks yet, and after the
    /// split no other entry maps that part of it.
    pub fn deallocate(
        &mut self,
        objects: &mut Table<VmObject>,
        start: u64,
        end: u64,
    ) -> Result<(), KernReturn> {
        let mut removed: alloc::vec::Vec<MapEntry<ObjectId>> = alloc::vec::Vec::new();
        let count = self
            .map
            .clipped_range(start, end, |o| duplicate(objects, *o))
            .map_err(map_error)?
            .len();
        removed
            .try_reserve(count)
            .map_err(|_| KernReturn::ResourceShortage)?;
        self.map
            .remove_range(start, end, |o| duplicate(objects, *o), |e| removed.push(e))
            .map_err(map_error)?;
        self.pmap.remove(start, end);
        for entry in removed {
            if let Some(object) = objects.get_mut(entry.object) {
                if object.kind() == ObjectKind::Anonymous {
                    let (from, to) = (entry.offset, entry.offset + (entry.end - entry.start));
                    object.remove_pages(from, to, |frame| {
                        let _ = kernel_space::free_frame(frame);
                    });
                }
            }
            release_object(objects, entry.object);
        }
        Ok(())
    }

    /// Changes the protection (or maximum protection) of the fully mapped `[start, end)`.
    pub fn protect(
        &mut self,
        objects: &mut Table<VmObject>,
        start: u64,
        end: u64,
        set_maximum: bool,
        protection: Protection,
    ) -> Result<(), KernReturn> {
        if !self.map.is_fully_mapped(start, end) {
            return Err(KernReturn::InvalidAddress);
        }
        // Decode: no region may be given more than its maximum.
        let exceeds = self
            .map
            .entries()
            .iter()
            .filter(|e| e.start < end && e.end > start)
            .any(|e| !set_maximum && !e.max_protection.allows(protection));
        if exceeds {
            return Err(KernReturn::ProtectionFailure);
        }
        for entry in self
            .map
            .clipped_range(start, end, |o| duplicate(objects, *o))
            .map_err(map_error)?
        {
            if set_maximum {
                entry.max_protection = protection;
                entry.protection =
                    Protection::from_bits(entry.protection.bits() & protection.bits());
            } else {
                entry.protection = protection;
            }
        }
        // Mappings made under the old protection go; faults remake them under the new.
        self.pmap.remove(start, end);
        Ok(())
    }

    /// Applies `change` to every entry of `[start, end)` (holes allowed).
    pub fn update(
        &mut self,
        objects: &mut Table<VmObject>,
        start: u64,
        end: u64,
        mut change: impl FnMut(&mut MapEntry<ObjectId>),
    ) -> Result<(), KernReturn> {
        for entry in self
            .map
            .clipped_range(start, end, |o| duplicate(objects, *o))
            .map_err(map_error)?
        {
            change(entry);
        }
        Ok(())
    }

    /// Unmaps everything, releasing the objects (freeing those that lose their last
    /// reference, with their pages), then the page tables.
    pub fn destroy(mut self, objects: &mut Table<VmObject>) {
        self.map
            .clear(|entry| release_object(objects, entry.object));
        self.pmap.destroy();
    }
}

/// One more reference to `id` (a map entry split in two), returning it.
fn duplicate(objects: &mut Table<VmObject>, id: ObjectId) -> ObjectId {
    if let Some(object) = objects.get_mut(id) {
        object.add_reference();
    }
    id
}

fn map_error(e: MapError) -> KernReturn {
    match e {
        MapError::InvalidRange => KernReturn::InvalidArgument,
        MapError::Overlap => KernReturn::NoSpace,
        MapError::OutOfMemory => KernReturn::ResourceShortage,
    }
}

/// Drops one reference to `id`; frees the object and the frames it owns with the last one.
pub fn release_object(objects: &mut Table<VmObject>, id: ObjectId) {
    let Some(object) = objects.get_mut(id) else {
        return;
    };
    if object.release() {
        if let Some(mut object) = objects.remove(id) {
            for frame in object.take_pages() {
                if let Err(e) = kernel_space::free_frame(frame) {
                    log::error!("vm: object page {frame:#x}: {e}");
                }
            }
        }
    }
}

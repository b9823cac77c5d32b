//! The virtual-memory system calls on the caller's own address space: allocate, deallocate,
//! protect, inherit, set the access strategy, and describe regions. Each decodes its
//! arguments (addresses and sizes are allegations until checked) and then acts.

use crate::kern::kernel::Kernel;
use crate::kern::syscall::{Caller, Outcome};
use crate::kern::task::TaskId;
use crate::kern::user::{copy_out, UserSlice};
use crate::vm::map::{Inheritance, Protection, Strategy, PAGE_SIZE};
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;

fn result(r: Result<u64, KernReturn>) -> Outcome {
    Outcome::Return(r)
}

/// A page-aligned user range `[start, end)` from an address and a size (rounded up to
/// pages); `InvalidArgument` if misaligned or empty, `InvalidAddress` outside user space.
fn user_range(address: u64, size: u64) -> Result<(u64, u64), KernReturn> {
    if !address.is_multiple_of(PAGE_SIZE) || size == 0 {
        return Err(KernReturn::InvalidArgument);
    }
    let size = size
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(KernReturn::InvalidArgument)?;
    let end = address
        .checked_add(size)
        .ok_or(KernReturn::InvalidAddress)?;
    if address < USER_BASE || end > USER_END {
        return Err(KernReturn::InvalidAddress);
    }
    Ok((address, end))
}

/// Where a new region of `size` bytes goes, as `vm_allocate` and `vm_map` take it: at
/// `address` (page-aligned, inside user space), or anywhere with [`VM_ANYWHERE`] in
/// `flags`; and its size rounded up to pages. `InvalidArgument` for other flags or a size
/// of zero or past user space.
fn placement(address: u64, size: u64, flags: u64) -> Result<(Option<u64>, u64), KernReturn> {
    if flags & !VM_ANYWHERE != 0 || size == 0 || size > USER_END {
        return Err(KernReturn::InvalidArgument);
    }
    let size = size.next_multiple_of(PAGE_SIZE);
    if flags & VM_ANYWHERE != 0 {
        return Ok((None, size));
    }
    let (start, _) = user_range(address, size)?;
    Ok((Some(start), size))
}

/// What a new region costs its task's quota: a map entry, and a VM object's record.
const REGION_COST: usize = core::mem::size_of::<
    crate::vm::map::MapEntry<crate::vm::address_space::ObjectId>,
>() + core::mem::size_of::<crate::vm::object::VmObject>();

pub fn vm_allocate(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let (fixed, size) = match placement(a[0], a[1], a[2]) {
        Ok(placed) => placed,
        Err(e) => return result(Err(e)),
    };
    if let Err(e) = kernel.check_quota(task, REGION_COST) {
        return result(Err(e));
    }
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    result(
        t.space
            .allocate(&mut kernel.vm.objects, fixed, VM_ANYWHERE_BASE, size),
    )
}

pub fn vm_deallocate(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let (start, end) = match user_range(a[0], a[1]) {
        Ok(range) => range,
        Err(e) => return result(Err(e)),
    };
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    result(
        t.space
            .deallocate(&mut kernel.vm.objects, start, end)
            .map(|()| 0),
    )
}

pub fn vm_protect(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let [address, size, set_maximum, protection, ..] = a;
    if set_maximum > 1 || protection > 7 {
        return result(Err(KernReturn::InvalidArgument));
    }
    let (start, end) = match user_range(address, size) {
        Ok(range) => range,
        Err(e) => return result(Err(e)),
    };
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    let protection = Protection::from_bits(protection as u8);
    result(
        t.space
            .protect(
                &mut kernel.vm.objects,
                start,
                end,
                set_maximum == 1,
                protection,
            )
            .map(|()| 0),
    )
}

pub fn vm_inherit(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let inheritance = match a[2] {
        VM_INHERIT_SHARE => Inheritance::Share,
        VM_INHERIT_COPY => Inheritance::Copy,
        VM_INHERIT_NONE => Inheritance::None,
        _ => return result(Err(KernReturn::InvalidArgument)),
    };
    update(kernel, caller.task, a, |e| e.inheritance = inheritance)
}

pub fn vm_behavior_set(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let strategy = match a[2] {
        VM_BEHAVIOR_NORMAL => Strategy::Normal,
        VM_BEHAVIOR_SEQUENTIAL => Strategy::Sequential,
        VM_BEHAVIOR_REVERSE => Strategy::Reverse,
        VM_BEHAVIOR_RANDOM => Strategy::Random,
        _ => return result(Err(KernReturn::InvalidArgument)),
    };
    update(kernel, caller.task, a, |e| e.strategy = strategy)
}

fn update(
    kernel: &mut Kernel,
    task: TaskId,
    a: [u64; 6],
    change: impl FnMut(&mut crate::vm::map::MapEntry<crate::vm::address_space::ObjectId>),
) -> Outcome {
    let (start, end) = match user_range(a[0], a[1]) {
        Ok(range) => range,
        Err(e) => return result(Err(e)),
    };
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    result(
        t.space
            .update(&mut kernel.vm.objects, start, end, change)
            .map(|()| 0),
    )
}

pub fn vm_region(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let out = match UserSlice::new(a[1], RegionInfo::SIZE as u64).validate(RegionInfo::SIZE) {
        Ok(out) => out,
        Err(e) => return result(Err(e)),
    };
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    let Some(entry) = t
        .space
        .map()
        .entries()
        .iter()
        .find(|e| e.end > a[0])
        .copied()
    else {
        return result(Err(KernReturn::InvalidAddress));
    };
    let pager = kernel.region_pager_statistics(entry.object);
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    let info = RegionInfo {
        pager_requests: pager.requests,
        pager_pages_requested: pager.pages_requested,
        pager_prefetched: pager.prefetched,
        pager_prefetch_used: pager.prefetch_used,
        pager_returns: pager.returns,
        pager_pages_returned: pager.pages_returned,
        start: entry.start,
        end: entry.end,
        offset: entry.offset,
        protection: entry.protection.bits(),
        max_protection: entry.max_protection.bits(),
        inheritance: match entry.inheritance {
            Inheritance::Share => VM_INHERIT_SHARE,
            Inheritance::Copy => VM_INHERIT_COPY,
            Inheritance::None => VM_INHERIT_NONE,
        } as u8,
        behavior: match entry.strategy {
            Strategy::Normal => VM_BEHAVIOR_NORMAL,
            Strategy::Sequential => VM_BEHAVIOR_SEQUENTIAL,
            Strategy::Reverse => VM_BEHAVIOR_REVERSE,
            Strategy::Random => VM_BEHAVIOR_RANDOM,
        } as u8,
        reserved: 0,
    };
    result(
        copy_out(&mut t.space, &mut kernel.vm.objects, out, &info.to_bytes()).map(|()| entry.start),
    )
}

/// `vm_map`: maps a pager's memory object (see `kern::memory::pager`).
pub fn vm_map(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let [address, size, flags, object, offset, protection] = a;
    if !offset.is_multiple_of(PAGE_SIZE)
        || protection & !Protection::ALL.bits() as u64 != 0
        || protection == 0
    {
        return result(Err(KernReturn::InvalidArgument));
    }
    let (fixed, size) = match placement(address, size, flags) {
        Ok(placed) => placed,
        Err(e) => return result(Err(e)),
    };
    let Ok(name) = u32::try_from(object) else {
        return result(Err(KernReturn::InvalidName));
    };
    if let Err(e) = kernel.check_quota(task, REGION_COST) {
        return result(Err(e));
    }
    let protection = Protection::from_bits(protection as u8);
    result(kernel.map_memory_object(task, fixed, size, name, offset, protection))
}

/// `vm_statistics`: the VM counters, written to the caller's buffer.
pub fn vm_statistics(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    use crate::vm::statistics::{self as s, read};
    let task = caller.task;
    let out = match UserSlice::new(a[0], VmStatistics::SIZE as u64).validate(VmStatistics::SIZE) {
        Ok(out) => out,
        Err(e) => return result(Err(e)),
    };
    let devices = kernel.devices.counters();
    let statistics = VmStatistics {
        free_frames: crate::vm::kernel_space::frame_counts().0 as u64,
        resident_pages: crate::vm::kernel_space::with_mappings(|m| m.queued() as u64).unwrap_or(0),
        faults: read(&s::FAULTS),
        zero_fills: read(&s::ZERO_FILLS),
        copies_on_write: read(&s::COPIES_ON_WRITE),
        pageins: read(&s::PAGEINS),
        unavailable: read(&s::UNAVAILABLE),
        pageouts: read(&s::PAGEOUTS),
        prefetched: read(&s::PREFETCHED),
        prefetch_used: read(&s::PREFETCH_USED),
        pager_rejects: read(&s::PAGER_REJECTS),
        pager_timeouts: read(&s::PAGER_TIMEOUTS),
        memory_errors: read(&s::MEMORY_ERRORS),
        reclaimed: read(&s::RECLAIMED),
        requests_by_pages: core::array::from_fn(|i| read(&s::REQUESTS_BY_PAGES[i])),
        returns_by_pages: core::array::from_fn(|i| read(&s::RETURNS_BY_PAGES[i])),
        returns_refused: read(&s::RETURNS_REFUSED),
        device_reads: devices.reads,
        device_writes: devices.writes,
        device_pages_read: devices.pages_read,
        device_pages_written: devices.pages_written,
        device_errors: devices.errors,
        device_queued: devices.queued,
    };
    let mut bytes = [0u8; VmStatistics::SIZE];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(statistics.to_words()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    result(copy_out(&mut t.space, &mut kernel.vm.objects, out, &bytes).map(|()| 0))
}

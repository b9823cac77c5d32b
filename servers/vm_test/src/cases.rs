//! The cases, and the children that fault on purpose.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;
use libipc::ipc::Task;
use libipc::sys;

pub use libipc::rt::selftest::Case;

pub const ALL: &[(&str, Case)] = &[
    ("allocate_touch_deallocate", allocate_touch_deallocate),
    ("allocate_fixed_and_overlap", allocate_fixed_and_overlap),
    ("deallocate_part_of_a_region", deallocate_part_of_a_region),
    ("protection_is_enforced", protection_is_enforced),
    (
        "maximum_protection_only_shrinks",
        maximum_protection_only_shrinks,
    ),
    ("program_text_stays_read_only", program_text_stays_read_only),
    ("inheritance_and_behavior", inheritance_and_behavior),
    ("regions_are_listed", regions_are_listed),
    ("bad_arguments", bad_arguments),
    ("fork_isolates_writes", fork_isolates_writes),
    (
        "fork_copies_nothing_until_written",
        fork_copies_nothing_until_written,
    ),
    ("fork_by_inheritance", fork_by_inheritance),
    (
        "a_copy_stays_still_when_the_region_is_shared_later",
        a_copy_stays_still_when_the_region_is_shared_later,
    ),
    (
        "forked_child_keeps_send_rights",
        forked_child_keeps_send_rights,
    ),
    (
        "fork_generations_stay_bounded",
        fork_generations_stay_bounded,
    ),
    ("exec_replaces_the_program", exec_replaces_the_program),
    ("exec_keeps_port_rights", exec_keeps_port_rights),
    (
        "exec_of_a_missing_program_fails_cleanly",
        exec_of_a_missing_program_fails_cleanly,
    ),
    (
        "shared_region_outlives_its_deallocation",
        shared_region_outlives_its_deallocation,
    ),
    ("copy_of_a_shared_region", copy_of_a_shared_region),
    (
        "out_of_line_move_changes_owner",
        out_of_line_move_changes_owner,
    ),
    (
        "out_of_line_copy_is_copy_on_write",
        out_of_line_copy_is_copy_on_write,
    ),
    ("out_of_line_between_tasks", out_of_line_between_tasks),
    (
        "undelivered_out_of_line_memory_is_freed",
        undelivered_out_of_line_memory_is_freed,
    ),
    (
        "memory_by_kind_accounts_for_every_frame",
        memory_by_kind_accounts_for_every_frame,
    ),
    // Last: the children it leaves sleep until this first task's end ends them.
    (
        "a_fork_bomb_is_refused_within_the_kernel_budget",
        a_fork_bomb_is_refused_within_the_kernel_budget,
    ),
];

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

const PAGE: u64 = 4096;
/// Child roles.
const WRITE_READ_ONLY: u64 = 1;
const READ_NO_ACCESS: u64 = 2;
const WRITE_TEXT: u64 = 3;
/// After an exec: exits 77 if the parent's probe region is gone.
const EXEC_CHECK: u64 = 10;
/// After an exec: sends a message to the name in the argument's upper bits.
const EXEC_SEND: u64 = 11;
/// A fixed address the exec tests allocate before the exec.
const PROBE: u64 = 0x0000_3000_0000_0000;

fn free_frames() -> u64 {
    sys::host_info(HOST_FREE_FRAMES).unwrap_or(0)
}

fn write(address: u64, value: u64) {
    // SAFETY: callers pass addresses of regions they allocated read-write (or, in a child
    // that is meant to fault, one it may not write).
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

fn read(address: u64) -> u64 {
    // SAFETY: as for `write`.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// `memory_by_kind`: every kind is there, they add up to the managed frames without the
/// remainder hiding a miscount, and touching memory moves it from free to object pages.
fn memory_by_kind_accounts_for_every_frame() -> Result<(), String> {
    let kinds = |m: &sys::MemoryByKind| -> u64 { m.kinds().iter().map(|(_, p)| p).sum() };
    let before = sys::memory_by_kind().map_err(|e| format!("memory_by_kind: {e}"))?;
    check!(
        kinds(&before) == before.total,
        "the kinds add up to {} pages of {}",
        kinds(&before),
        before.total
    );
    // (Device buffers need a disk, which this test's boot has none of; the remainder may be
    // nothing.)
    for (kind, pages) in &before.kinds()[..4] {
        check!(*pages > 0, "no pages of {kind}: {before:?}");
    }
    check!(
        before.kernel_page_tables > 0,
        "no kernel page tables: {before:?}"
    );
    check!(
        before.other < before.total / 16,
        "{} pages unaccounted for of {}",
        before.other,
        before.total
    );
    check!(
        before.kernel_image_bytes > 64 * 1024 && before.boot_module_bytes > 64 * 1024,
        "the image and the boot modules: {before:?}"
    );
    let size = 256 * PAGE;
    let base = sys::vm_allocate(0, size, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    for i in 0..256 {
        write(base + i * PAGE, i + 1);
    }
    let touched = sys::memory_by_kind().map_err(|e| format!("memory_by_kind: {e}"))?;
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(base, size) }.map_err(|e| format!("deallocate: {e}"))?;
    let after = sys::memory_by_kind().map_err(|e| format!("memory_by_kind: {e}"))?;
    check!(
        touched.object_pages >= before.object_pages + 256 && touched.free + 256 <= before.free,
        "256 pages touched: object pages {} -> {}, free {} -> {}",
        before.object_pages,
        touched.object_pages,
        before.free,
        touched.free
    );
    check!(
        touched.other.abs_diff(before.other) < 16,
        "touching pages moved the unaccounted pages {} -> {}",
        before.other,
        touched.other
    );
    check!(
        after.object_pages + 256 <= touched.object_pages,
        "deallocating gave back {} object pages of 256",
        touched.object_pages - after.object_pages
    );
    Ok(())
}

fn allocate_touch_deallocate() -> Result<(), String> {
    // Twice: the first round also makes the page tables for the area (kept, like the
    // hardware's, until the task ends) and grows this task's own stack; the second must give
    // back exactly what it took.
    for round in 0..2 {
        let before = free_frames();
        let size = 64 * PAGE;
        let base = sys::vm_allocate(0, size, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
        check!(
            base % PAGE == 0 && base >= VM_ANYWHERE_BASE,
            "odd address {base:#x}"
        );
        for i in 0..64 {
            check!(read(base + i * PAGE) == 0, "page {i} not zero-filled");
            write(base + i * PAGE + 8, i + 1);
        }
        for i in 0..64 {
            check!(
                read(base + i * PAGE + 8) == i + 1,
                "page {i} lost its contents"
            );
        }
        let taken = before - free_frames();
        check!(taken >= 64, "64 touched pages took {taken} frames");
        // Every touched page has its record, as a resident page of its object.
        let resident = host(HOST_VM_RESIDENT_PAGES);
        // SAFETY: nothing of ours lives in the region.
        unsafe { sys::vm_deallocate(base, size) }.map_err(|e| format!("deallocate: {e}"))?;
        let gone = resident - host(HOST_VM_RESIDENT_PAGES);
        check!(
            gone == 64,
            "deallocating 64 pages took {gone} off the page queue"
        );
        check!(
            round == 0 || free_frames() == before,
            "round {round}: {before} free before, {} after",
            free_frames()
        );
        check!(
            sys::vm_region(base).map(|r| r.start > base).unwrap_or(true),
            "region still listed"
        );
    }
    Ok(())
}

fn allocate_fixed_and_overlap() -> Result<(), String> {
    let at = 0x0000_2000_0000_0000;
    let got = sys::vm_allocate(at, 4 * PAGE, 0).map_err(|e| format!("fixed: {e}"))?;
    check!(got == at, "fixed allocation landed at {got:#x}");
    check!(
        sys::vm_allocate(at + PAGE, PAGE, 0) == Err(KernReturn::NoSpace),
        "overlap accepted"
    );
    // Size rounds up to whole pages.
    let odd = sys::vm_allocate(0, 10, VM_ANYWHERE).map_err(|e| format!("odd size: {e}"))?;
    let r = sys::vm_region(odd).map_err(|e| format!("region: {e}"))?;
    check!(
        r.end - r.start == PAGE,
        "a 10-byte allocation is {} bytes",
        r.end - r.start
    );
    // SAFETY: nothing of ours lives in these regions.
    unsafe {
        sys::vm_deallocate(at, 4 * PAGE).map_err(|e| format!("deallocate: {e}"))?;
        sys::vm_deallocate(odd, PAGE).map_err(|e| format!("deallocate: {e}"))?;
    }
    Ok(())
}

fn deallocate_part_of_a_region() -> Result<(), String> {
    let base = sys::vm_allocate(0, 8 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    for i in 0..8 {
        write(base + i * PAGE, 100 + i);
    }
    let before = free_frames();
    // SAFETY: nothing of ours lives in pages 2..5.
    unsafe { sys::vm_deallocate(base + 2 * PAGE, 3 * PAGE) }
        .map_err(|e| format!("deallocate: {e}"))?;
    check!(
        free_frames() >= before + 3,
        "the middle three pages were not freed"
    );
    let first = sys::vm_region(base).map_err(|e| format!("region: {e}"))?;
    check!(
        (first.start, first.end) == (base, base + 2 * PAGE),
        "left part is {:#x}..{:#x}",
        first.start,
        first.end
    );
    let second = sys::vm_region(base + 2 * PAGE).map_err(|e| format!("region: {e}"))?;
    check!(
        (second.start, second.end) == (base + 5 * PAGE, base + 8 * PAGE),
        "right part is {:#x}..{:#x}",
        second.start,
        second.end
    );
    check!(
        second.offset == 5 * PAGE,
        "right part's object offset {:#x}",
        second.offset
    );
    for i in [0, 1, 5, 6, 7] {
        check!(read(base + i * PAGE) == 100 + i, "page {i} changed");
    }
    // SAFETY: as above.
    unsafe { sys::vm_deallocate(base, 8 * PAGE) }.map_err(|e| format!("deallocate all: {e}"))?;
    Ok(())
}

/// Spawns a child in `role` and returns its exit status (`u64::MAX`: the kernel ended it).
fn child_status(role: u64) -> Result<u64, String> {
    let task = Task::spawn("vm_test", None, role).map_err(|e| format!("spawn: {e}"))?;
    task.wait().map_err(|e| format!("wait: {e}"))
}

pub fn child(argument: u64) -> i32 {
    let role = argument & 0xffff;
    match role {
        EXEC_CHECK => {
            let gone = sys::vm_region(PROBE)
                .map(|r| r.start > PROBE)
                .unwrap_or(true);
            return if gone { 77 } else { 1 };
        }
        EXEC_SEND => {
            let mut buffer = libipc::ipc::MessageBuffer::new();
            let to = (argument >> 16) as u32;
            let message = libipc::ipc::OutMessage::new(4343, to);
            return match libipc::ipc::send(&message, &mut buffer, None) {
                Ok(()) => 0,
                Err(_) => 1,
            };
        }
        _ => {}
    }
    let Ok(base) = sys::vm_allocate(0, PAGE, VM_ANYWHERE) else {
        return 2;
    };
    write(base, 7);
    match role {
        WRITE_READ_ONLY => {
            if sys::vm_protect(base, PAGE, false, VM_PROT_READ).is_err() || read(base) != 7 {
                return 3;
            }
            write(base, 8); // must fault
            4
        }
        READ_NO_ACCESS => {
            if sys::vm_protect(base, PAGE, false, 0).is_err() {
                return 3;
            }
            read(base) as i32 // must fault
        }
        WRITE_TEXT => {
            let text = child as *const () as u64 & !(PAGE - 1);
            write(text, 0); // must fault: program text is read-only
            4
        }
        _ => 9,
    }
}

fn protection_is_enforced() -> Result<(), String> {
    check!(
        child_status(WRITE_READ_ONLY)? == u64::MAX,
        "a write to read-only memory was allowed"
    );
    check!(
        child_status(READ_NO_ACCESS)? == u64::MAX,
        "a read of no-access memory was allowed"
    );
    // Protection can be given back: read-only, then read-write again.
    let base = sys::vm_allocate(0, PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    write(base, 1);
    sys::vm_protect(base, PAGE, false, VM_PROT_READ).map_err(|e| format!("protect: {e}"))?;
    check!(read(base) == 1, "read-only page lost its contents");
    sys::vm_protect(base, PAGE, false, VM_PROT_READ | VM_PROT_WRITE)
        .map_err(|e| format!("unprotect: {e}"))?;
    write(base, 2);
    check!(read(base) == 2, "write after unprotect lost");
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(base, PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn maximum_protection_only_shrinks() -> Result<(), String> {
    let base = sys::vm_allocate(0, 2 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    sys::vm_protect(base, PAGE, true, VM_PROT_READ).map_err(|e| format!("set maximum: {e}"))?;
    let r = sys::vm_region(base).map_err(|e| format!("region: {e}"))?;
    check!(
        r.max_protection == 1 && r.protection == 1,
        "after lowering the maximum: {r:?}"
    );
    check!(
        sys::vm_protect(base, PAGE, false, VM_PROT_READ | VM_PROT_WRITE)
            == Err(KernReturn::ProtectionFailure),
        "protection raised above the maximum"
    );
    // The second page is its own region now, untouched.
    let second = sys::vm_region(base + PAGE).map_err(|e| format!("region: {e}"))?;
    check!(
        second.start == base + PAGE && second.protection == 3,
        "second page: {second:?}"
    );
    check!(
        sys::vm_protect(base, 4 * PAGE, false, VM_PROT_READ) == Err(KernReturn::InvalidAddress),
        "protect over a hole"
    );
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(base, 2 * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn program_text_stays_read_only() -> Result<(), String> {
    let text = child as *const () as u64 & !(PAGE - 1);
    check!(
        sys::vm_protect(text, PAGE, false, VM_PROT_READ | VM_PROT_WRITE)
            == Err(KernReturn::ProtectionFailure),
        "program text (shared by every task running it) made writable"
    );
    check!(
        child_status(WRITE_TEXT)? == u64::MAX,
        "a write to program text was allowed"
    );
    Ok(())
}

fn inheritance_and_behavior() -> Result<(), String> {
    let base = sys::vm_allocate(0, 4 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    sys::vm_inherit(base, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    sys::vm_behavior_set(base + PAGE, 2 * PAGE, VM_BEHAVIOR_SEQUENTIAL)
        .map_err(|e| format!("behavior: {e}"))?;
    let a = sys::vm_region(base).map_err(|e| format!("region: {e}"))?;
    let b = sys::vm_region(base + PAGE).map_err(|e| format!("region: {e}"))?;
    let c = sys::vm_region(base + 3 * PAGE).map_err(|e| format!("region: {e}"))?;
    check!(
        a.end == base + PAGE && a.inheritance == VM_INHERIT_SHARE as u8 && a.behavior == 0,
        "first page: {a:?}"
    );
    check!(
        b.end == base + 3 * PAGE
            && b.inheritance == VM_INHERIT_COPY as u8
            && b.behavior == VM_BEHAVIOR_SEQUENTIAL as u8,
        "middle pages: {b:?}"
    );
    check!(
        c.behavior == 0 && c.inheritance == VM_INHERIT_COPY as u8,
        "last page: {c:?}"
    );
    check!(
        sys::vm_inherit(base, PAGE, 9) == Err(KernReturn::InvalidArgument),
        "inheritance 9"
    );
    check!(
        sys::vm_behavior_set(base, PAGE, 9) == Err(KernReturn::InvalidArgument),
        "behavior 9"
    );
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(base, 4 * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn regions_are_listed() -> Result<(), String> {
    // The program's own regions: stack, then text, rodata, data (and what it allocated),
    // in order, without overlaps; nothing above the last.
    let mut address = 0;
    let mut count = 0;
    let mut last_end = 0;
    let mut stack = None;
    while let Ok(r) = sys::vm_region(address) {
        check!(
            r.start >= last_end && r.end > r.start,
            "regions out of order: {r:?}"
        );
        check!(r.start >= USER_BASE, "a region below user space: {r:?}");
        if r.end == USER_STACK_TOP {
            stack = Some(r.start);
        }
        last_end = r.end;
        address = r.end;
        count += 1;
        check!(count < 100, "too many regions");
    }
    check!(count >= 4, "only {count} regions");
    check!(
        stack == Some(USER_STACK_TOP - USER_STACK_SIZE),
        "no stack region right below the program: {stack:?}"
    );
    check!(
        sys::vm_region(last_end) == Err(KernReturn::InvalidAddress),
        "a region above the last one listed"
    );
    Ok(())
}

fn bad_arguments() -> Result<(), String> {
    let cases: [(&str, Result<u64, KernReturn>, KernReturn); 8] = [
        (
            "zero size",
            sys::vm_allocate(0, 0, VM_ANYWHERE),
            KernReturn::InvalidArgument,
        ),
        (
            "unknown flag",
            sys::vm_allocate(0, PAGE, 8),
            KernReturn::InvalidArgument,
        ),
        (
            "misaligned address",
            sys::vm_allocate(0x3000_0000_0001, PAGE, 0),
            KernReturn::InvalidArgument,
        ),
        (
            "kernel address",
            sys::vm_allocate(0xffff_8000_0000_0000, PAGE, 0),
            KernReturn::InvalidAddress,
        ),
        (
            "below user space",
            sys::vm_allocate(0x1000, PAGE, 0),
            KernReturn::InvalidAddress,
        ),
        (
            "wrapping range",
            sys::vm_allocate(0x7fff_ffff_f000, 0x10_0000, 0),
            KernReturn::InvalidAddress,
        ),
        (
            "larger than user space",
            sys::vm_allocate(0, u64::MAX, VM_ANYWHERE),
            KernReturn::InvalidArgument,
        ),
        (
            "region info in kernel memory",
            unsafe_region_into(0xffff_8000_0000_0000),
            KernReturn::InvalidAddress,
        ),
    ];
    for (what, got, want) in cases {
        check!(got == Err(want), "{what}: {got:?}, expected {want:?}");
    }
    check!(
        sys::vm_protect(0x40_0000, PAGE, false, 8) == Err(KernReturn::InvalidArgument),
        "protection 8"
    );
    // SAFETY: the range is not ours; the kernel must refuse it before touching anything.
    let r = unsafe { sys::vm_deallocate(0xffff_8000_0000_0000, PAGE) };
    check!(
        r == Err(KernReturn::InvalidAddress),
        "deallocate of kernel memory: {r:?}"
    );
    check!(
        sys::vm_region(USER_END - PAGE) == Err(KernReturn::InvalidAddress),
        "a region at the top of user space"
    );
    // Asking for more than memory holds is an error for the asker; touching it all would
    // be its own end (the kernel keeps a reserve).
    let huge =
        sys::vm_allocate(0, 1 << 40, VM_ANYWHERE).map_err(|e| format!("1 TiB reservation: {e}"))?;
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(huge, 1 << 40) }.map_err(|e| format!("deallocate 1 TiB: {e}"))?;
    Ok(())
}

fn host(selector: u64) -> u64 {
    sys::host_info(selector).unwrap_or(u64::MAX)
}

/// Forks; in the child runs `child` and exits with its status; in the parent returns the
/// child's exit status.
fn in_child(child: impl FnOnce() -> i32) -> Result<u64, String> {
    match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => sys::task_exit(child()),
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status
        }
    }
}

fn fork_isolates_writes() -> Result<(), String> {
    let base = sys::vm_allocate(0, 4 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    for i in 0..4 {
        write(base + i * PAGE, 10 + i);
    }
    let status = in_child(|| {
        // The child sees the memory as it was at the fork, and its writes are its own.
        if (0..4).any(|i| read(base + i * PAGE) != 10 + i) {
            return 1;
        }
        write(base, 99);
        if read(base) != 99 || read(base + PAGE) != 11 {
            return 2;
        }
        0
    })?;
    check!(status == 0, "child saw the wrong memory (status {status})");
    check!(
        read(base) == 10,
        "the child's write reached the parent: {}",
        read(base)
    );
    // The parent's writes after a fork stay its own too.
    let status = {
        match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
            sys::Forked::Child => {
                // Whenever this runs, the parent's later write must not show.
                sys::task_exit(if read(base + 2 * PAGE) == 12 { 0 } else { 3 })
            }
            sys::Forked::Parent(task) => {
                write(base + 2 * PAGE, 55);
                sys::task_wait(task).map_err(|e| format!("wait: {e}"))?
            }
        }
    };
    check!(
        status == 0,
        "the parent's write after fork reached the child (status {status})"
    );
    check!(read(base + 2 * PAGE) == 55, "the parent lost its own write");
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(base, 4 * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn fork_copies_nothing_until_written() -> Result<(), String> {
    const PAGES: u64 = 2048; // 8 MiB
    let base =
        sys::vm_allocate(0, PAGES * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    for i in 0..PAGES {
        write(base + i * PAGE, i);
    }
    let (copies, frames) = (host(HOST_VM_COPIES_ON_WRITE), host(HOST_FREE_FRAMES));
    let status = in_child(|| {
        // Everything reads through to the parent's pages; one write copies one page.
        let (before, free) = (host(HOST_VM_COPIES_ON_WRITE), host(HOST_FREE_FRAMES));
        if (0..PAGES).step_by(97).any(|i| read(base + i * PAGE) != i) {
            return 1;
        }
        if host(HOST_VM_COPIES_ON_WRITE) != before || free - host(HOST_FREE_FRAMES) > 64 {
            return 2; // reading copied pages
        }
        write(base + 5 * PAGE, 7);
        if host(HOST_VM_COPIES_ON_WRITE) != before + 1 {
            return 3;
        }
        0
    })?;
    check!(status == 0, "child status {status}");
    // The child counted exactly one copy for its write; besides it, only stack pages the two
    // tasks wrote after the fork were copied.
    let copied = host(HOST_VM_COPIES_ON_WRITE) - copies;
    check!(copied < 16, "{copied} pages copied for one written page");
    check!(
        read(base + 5 * PAGE) == 5,
        "the child's write reached the parent"
    );
    // The child is gone: the parent's memory collapses back into one object, and nothing of
    // the 8 MiB was duplicated (within the page tables and stack the fork used).
    check!(
        frames.abs_diff(host(HOST_FREE_FRAMES)) < 64,
        "{frames} free before, {} after",
        host(HOST_FREE_FRAMES)
    );
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(base, PAGES * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn fork_by_inheritance() -> Result<(), String> {
    let shared = sys::vm_allocate(0, PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    let hidden = sys::vm_allocate(0, PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    sys::vm_inherit(shared, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit share: {e}"))?;
    sys::vm_inherit(hidden, PAGE, VM_INHERIT_NONE).map_err(|e| format!("inherit none: {e}"))?;
    write(shared, 1);
    write(hidden, 2);
    let status = in_child(|| {
        write(shared, 42);
        // The region inherited as none is not there: this read ends the child.
        read(hidden) as i32
    })?;
    check!(
        status == u64::MAX,
        "the child read memory it did not inherit (status {status})"
    );
    check!(
        read(shared) == 42,
        "a shared region's write did not reach the parent"
    );
    check!(read(hidden) == 2, "the parent's own region changed");
    // SAFETY: nothing of ours lives in these regions.
    unsafe {
        sys::vm_deallocate(shared, PAGE).map_err(|e| format!("deallocate: {e}"))?;
        sys::vm_deallocate(hidden, PAGE).map_err(|e| format!("deallocate: {e}"))?;
    }
    Ok(())
}

/// A region a first child got a copy of, then shared with a second child: what the second
/// child writes reaches the parent, never the first child's copy (a fork leaves both sides of
/// a copy on the one object until one writes, so the region's own memory is made before it
/// is shared).
fn a_copy_stays_still_when_the_region_is_shared_later() -> Result<(), String> {
    let region = sys::vm_allocate(0, PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    // Where the parent tells the first child to look (on several CPUs it could run first).
    let flag = sys::vm_allocate(0, PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    sys::vm_inherit(flag, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    write(region, 1);
    let first = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            while read(flag) != 1 {
                core::hint::spin_loop();
            }
            sys::task_exit(read(region) as i32)
        }
        sys::Forked::Parent(task) => task,
    };
    sys::vm_inherit(region, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    let status = in_child(|| {
        write(region, 7);
        0
    })?;
    check!(status == 0, "the second child failed (status {status})");
    let parent_reads = read(region);
    write(flag, 1);
    let first_reads = sys::task_wait(first).map_err(|e| format!("wait: {e}"));
    let _ = sys::port_deallocate(first);
    let first_reads = first_reads?;
    check!(
        parent_reads == 7,
        "the shared region's write did not reach the parent: {parent_reads}"
    );
    check!(
        first_reads == 1,
        "the first child's copy read {first_reads}, not the 1 of its fork"
    );
    // SAFETY: nothing of ours lives in these regions.
    unsafe {
        sys::vm_deallocate(region, PAGE).map_err(|e| format!("deallocate: {e}"))?;
        sys::vm_deallocate(flag, PAGE).map_err(|e| format!("deallocate: {e}"))?;
    }
    Ok(())
}

/// A region shared with a child stays the child's when the parent deallocates it.
fn shared_region_outlives_its_deallocation() -> Result<(), String> {
    use libipc::process::{self, Fork};
    let shared =
        sys::vm_allocate(0, 4 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    sys::vm_inherit(shared, 4 * PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    fill(shared, 4, 0x5a5a);
    let port = libipc::ipc::ReceiveRight::allocate().map_err(|e| format!("port: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let name = send.name();
    let status = match process::fork().map_err(|e| format!("fork: {e}"))? {
        Fork::Child => {
            // Touch the pages, give the parent a port to answer on, wait for it to
            // deallocate the region, check the pages.
            let ok = matches(shared, 4, 0x5a5a);
            let Ok(mine) = libipc::ipc::ReceiveRight::allocate() else {
                process::exit(2)
            };
            let mut buffer = libipc::ipc::MessageBuffer::new();
            let Ok(hello) = libipc::ipc::OutMessage::new(1, name)
                .carry(mine.name(), libipc::abi::message::Disposition::MakeSend)
            else {
                process::exit(3)
            };
            let _ = libipc::ipc::send(&hello, &mut buffer, None);
            if libipc::ipc::receive(mine.name(), &mut buffer, Some(5000)).is_err() {
                process::exit(4);
            }
            process::exit(if ok && matches(shared, 4, 0x5a5a) {
                0
            } else {
                1
            })
        }
        Fork::Parent(child) => {
            let mut buffer = libipc::ipc::MessageBuffer::new();
            let hello = libipc::ipc::receive(port.name(), &mut buffer, Some(5000))
                .map_err(|e| format!("child's word: {e:?}"))?;
            let (child_port, _) = hello.rights().next().ok_or("no port from the child")?;
            let child_port = libipc::ipc::SendRight::from_raw(child_port);
            let before = free_frames();
            // SAFETY: nothing of ours lives in the region any more.
            unsafe { sys::vm_deallocate(shared, 4 * PAGE) }
                .map_err(|e| format!("deallocate: {e}"))?;
            let freed = free_frames().saturating_sub(before);
            check!(
                freed < 4,
                "the parent's deallocation freed {freed} frames the child still maps"
            );
            // Fresh memory takes whatever frames are free: had the shared pages been freed,
            // this would overwrite what the child still maps.
            let scribble = sys::vm_allocate(0, 64 * PAGE, VM_ANYWHERE)
                .map_err(|e| format!("allocate: {e}"))?;
            fill(scribble, 64, 0xdead);
            libipc::ipc::send(
                &libipc::ipc::OutMessage::new(2, child_port.name()),
                &mut buffer,
                None,
            )
            .map_err(|e| format!("go: {e:?}"))?;
            let status = process::wait(&child).map_err(|e| format!("wait: {e}"))?;
            // SAFETY: nothing of ours lives in the region.
            unsafe { sys::vm_deallocate(scribble, 64 * PAGE) }
                .map_err(|e| format!("deallocate: {e}"))?;
            status
        }
    };
    check!(
        status == 0,
        "the child lost its shared pages when the parent deallocated them (status {status})"
    );
    Ok(())
}

/// A region another task shares, copied at a fork and in a message: the sharers go on
/// sharing it, and the copies hold still whoever writes.
fn copy_of_a_shared_region() -> Result<(), String> {
    use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight, SendRight};
    use libipc::process::{self, Fork};
    let shared =
        sys::vm_allocate(0, 2 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    sys::vm_inherit(shared, 2 * PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    write(shared, 1); // the second page stays untouched until after the copy
    let port = ReceiveRight::allocate().map_err(|e| format!("port: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let name = send.name();
    let sharer = match process::fork().map_err(|e| format!("fork: {e}"))? {
        Fork::Child => {
            // The sharer: gives the parent a port, waits for its word, then checks that the
            // parent's writes made after the copy reached it, and writes one of its own.
            let Ok(mine) = ReceiveRight::allocate() else {
                process::exit(2)
            };
            let mut buffer = MessageBuffer::new();
            let Ok(hello) = OutMessage::new(1, name)
                .carry(mine.name(), libipc::abi::message::Disposition::MakeSend)
            else {
                process::exit(3)
            };
            let _ = ipc::send(&hello, &mut buffer, None);
            if ipc::receive(mine.name(), &mut buffer, Some(5000)).is_err() {
                process::exit(4);
            }
            let seen = (read(shared), read(shared + PAGE));
            write(shared, 3);
            process::exit(if seen == (2, 4) { 0 } else { 1 })
        }
        Fork::Parent(sharer) => sharer,
    };
    let mut buffer = MessageBuffer::new();
    let hello = ipc::receive(port.name(), &mut buffer, Some(5000))
        .map_err(|e| format!("sharer's word: {e:?}"))?;
    let (sharer_port, _) = hello.rights().next().ok_or("no port from the sharer")?;
    let sharer_port = SendRight::from_raw(sharer_port);
    sys::vm_inherit(shared, 2 * PAGE, VM_INHERIT_COPY).map_err(|e| format!("inherit: {e}"))?;
    let copy_status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        // Whenever this runs, the memory is as it was at the fork.
        sys::Forked::Child => sys::task_exit(if (read(shared), read(shared + PAGE)) == (1, 0) {
            0
        } else {
            1
        }),
        sys::Forked::Parent(copy) => {
            write(shared, 2);
            write(shared + PAGE, 4);
            let status = sys::task_wait(copy).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(copy);
            status?
        }
    };
    // A copy in a message, in flight while the sharer writes.
    let regions = [(shared, (2 * PAGE) as u32, false)];
    let copy = OutMessage::new(77, name)
        .with_memory(&regions)
        .map_err(|e| format!("{e:?}"))?;
    ipc::send(&copy, &mut buffer, None).map_err(|e| format!("send the copy: {e:?}"))?;
    ipc::send(&OutMessage::new(2, sharer_port.name()), &mut buffer, None)
        .map_err(|e| format!("go: {e:?}"))?;
    let sharer_status = process::wait(&sharer).map_err(|e| format!("wait: {e}"))?;
    let m = ipc::receive(port.name(), &mut buffer, Some(1000))
        .map_err(|e| format!("receive the copy: {e:?}"))?;
    let (address, _) = m.memory().next().ok_or("the copy did not arrive")?;
    let in_message = (read(address), read(address + PAGE));
    // SAFETY: the region just arrived; nothing of ours lives in it.
    unsafe { sys::vm_deallocate(address, 2 * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    check!(
        in_message == (2, 4),
        "the copy in a message saw a write made after the send: {in_message:?}"
    );
    check!(
        copy_status == 0,
        "the copy saw writes made after the fork (status {copy_status})"
    );
    check!(
        sharer_status == 0,
        "the sharer lost the parent's writes made after the copy (status {sharer_status})"
    );
    check!(
        read(shared) == 3,
        "the sharer's write did not reach the parent: {}",
        read(shared)
    );
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(shared, 2 * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn forked_child_keeps_send_rights() -> Result<(), String> {
    use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight};
    let port = ReceiveRight::allocate().map_err(|e| format!("allocate: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let name = send.name();
    let status = in_child(|| {
        // The same name works in the child: send rights are inherited under their names.
        let mut buffer = MessageBuffer::new();
        match ipc::send(&OutMessage::new(4242, name), &mut buffer, None) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    })?;
    check!(status == 0, "the child could not send (status {status})");
    let mut buffer = MessageBuffer::new();
    let m = ipc::receive(port.name(), &mut buffer, Some(1000))
        .map_err(|e| format!("receive: {e:?}"))?;
    check!(m.id() == 4242, "got id {}", m.id());
    Ok(())
}

fn fork_generations_stay_bounded() -> Result<(), String> {
    let base = sys::vm_allocate(0, 16 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    for i in 0..16 {
        write(base + i * PAGE, i);
    }
    // A page both share: the parent's word there says it has written (on several CPUs the
    // child could run first).
    let flag = sys::vm_allocate(0, PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    sys::vm_inherit(flag, PAGE, VM_INHERIT_SHARE).map_err(|e| format!("inherit: {e}"))?;
    // Each generation's parent writes a page while its child lives (both sides then have a
    // shadow in front of what they shared: the fork's copies, made late), and another after.
    let generation = |n: u64| -> Result<(), String> {
        let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
            sys::Forked::Child => {
                while read(flag) != n + 1 {
                    core::hint::spin_loop();
                }
                write(base + (n % 16) * PAGE, n);
                sys::task_exit(0)
            }
            sys::Forked::Parent(task) => {
                write(base + ((n + 7) % 16) * PAGE, n);
                write(flag, n + 1);
                let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
                let _ = sys::port_deallocate(task);
                status?
            }
        };
        check!(status == 0, "generation {n}: child status {status}");
        write(base + ((n + 3) % 16) * PAGE, n);
        Ok(())
    };
    for n in 0..20 {
        generation(n)?;
    }
    let (objects, frames) = (host(HOST_VM_OBJECTS), host(HOST_FREE_FRAMES));
    let delayed = host(HOST_VM_DELAYED_COPIES);
    for n in 20..1020 {
        generation(n)?;
    }
    let after = (host(HOST_VM_OBJECTS), host(HOST_FREE_FRAMES));
    // No object and no frame lost (more may be free after: the kernel's once-a-second passes
    // give back table and heap pages whenever they fall, and on several CPUs they fall
    // elsewhere in the loop).
    check!(
        after.0 == objects && after.1 >= frames,
        "objects and free frames: {:?} before 1,000 generations, {after:?} after",
        (objects, frames)
    );
    check!(
        host(HOST_VM_COLLAPSES) >= 1000 && host(HOST_VM_DELAYED_COPIES) - delayed >= 1000,
        "only {} collapses, {} copies made at a write",
        host(HOST_VM_COLLAPSES),
        host(HOST_VM_DELAYED_COPIES) - delayed
    );
    // SAFETY: nothing of ours lives in the regions.
    unsafe { sys::vm_deallocate(base, 16 * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    // SAFETY: as above.
    unsafe { sys::vm_deallocate(flag, PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn exec_replaces_the_program() -> Result<(), String> {
    use libipc::process::{self, Fork};
    sys::vm_allocate(PROBE, PAGE, 0).map_err(|e| format!("allocate probe: {e}"))?;
    let status = match process::fork().map_err(|e| format!("fork: {e}"))? {
        Fork::Child => {
            let error = process::exec("vm_test", EXEC_CHECK);
            libipc::println!("vm_test: exec failed: {error}");
            process::exit(2)
        }
        Fork::Parent(child) => process::wait(&child).map_err(|e| format!("wait: {e}"))?,
    };
    check!(
        status == 77,
        "the exec'd program saw the old memory or did not run (status {status})"
    );
    // SAFETY: nothing of ours lives in the probe.
    unsafe { sys::vm_deallocate(PROBE, PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn exec_keeps_port_rights() -> Result<(), String> {
    use libipc::ipc::{self, MessageBuffer, ReceiveRight};
    use libipc::process::{self, Fork};
    let port = ReceiveRight::allocate().map_err(|e| format!("allocate: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let status = match process::fork().map_err(|e| format!("fork: {e}"))? {
        Fork::Child => {
            process::exec("vm_test", EXEC_SEND | (u64::from(send.name()) << 16));
            process::exit(2)
        }
        Fork::Parent(child) => process::wait(&child).map_err(|e| format!("wait: {e}"))?,
    };
    check!(
        status == 0,
        "the exec'd program could not send (status {status})"
    );
    let mut buffer = MessageBuffer::new();
    let m = ipc::receive(port.name(), &mut buffer, Some(1000))
        .map_err(|e| format!("receive: {e:?}"))?;
    check!(m.id() == 4343, "got id {}", m.id());
    Ok(())
}

fn exec_of_a_missing_program_fails_cleanly() -> Result<(), String> {
    let marker = sys::vm_allocate(0, PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    write(marker, 31337);
    let error = libipc::process::exec("no-such-program", 0);
    check!(
        error == KernReturn::InvalidArgument,
        "exec of a missing program: {error}"
    );
    check!(
        read(marker) == 31337,
        "the failed exec changed this task's memory"
    );
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(marker, PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

const MIB: u64 = 1 << 20;

/// Fills `pages` pages at `base` with a pattern derived from `seed`.
fn fill(base: u64, pages: u64, seed: u64) {
    for i in 0..pages {
        for word in [0, 255, 511] {
            write(base + i * PAGE + word * 8, seed ^ (i << 16) ^ word);
        }
    }
}

fn matches(base: u64, pages: u64, seed: u64) -> bool {
    (0..pages).all(|i| {
        [0, 255, 511]
            .iter()
            .all(|&word| read(base + i * PAGE + word * 8) == seed ^ (i << 16) ^ word)
    })
}

/// Sends the region `[base, base + size)` to `port` (out of line) and receives it back;
/// returns where it arrived. A moved region must have left the sender before it is
/// received (it may then arrive at the same address).
fn round_trip(port: u32, base: u64, size: u64, move_out: bool) -> Result<u64, String> {
    use libipc::ipc::{self, MessageBuffer, OutMessage};
    let mut buffer = MessageBuffer::new();
    let regions = [(base, size as u32, move_out)];
    let message = OutMessage::new(77, port)
        .with_memory(&regions)
        .map_err(|e| format!("{e:?}"))?;
    ipc::send(&message, &mut buffer, None).map_err(|e| format!("send: {e:?}"))?;
    let still_there = sys::vm_region(base).is_ok_and(|r| r.start <= base);
    check!(
        still_there != move_out,
        "after the send, the region is {}the sender's",
        if still_there { "still " } else { "no longer " }
    );
    let m = ipc::receive(port, &mut buffer, Some(1000)).map_err(|e| format!("receive: {e:?}"))?;
    let (address, arrived) = m.memory().next().ok_or("no region arrived")?;
    check!(
        arrived as u64 == size && address != 0,
        "region arrived as {address:#x} ({arrived} bytes)"
    );
    Ok(address)
}

fn out_of_line_move_changes_owner() -> Result<(), String> {
    use libipc::ipc::ReceiveRight;
    let port = ReceiveRight::allocate().map_err(|e| format!("allocate port: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let base = sys::vm_allocate(0, MIB, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    fill(base, 256, 0xabc);
    let (copies, frames) = (host(HOST_VM_COPIES_ON_WRITE), host(HOST_FREE_FRAMES));
    let arrived = round_trip(send.name(), base, MIB, true)?;
    check!(
        matches(arrived, 256, 0xabc),
        "the moved megabyte arrived changed"
    );
    check!(
        host(HOST_VM_COPIES_ON_WRITE) == copies,
        "moving copied {} pages",
        host(HOST_VM_COPIES_ON_WRITE) - copies
    );
    check!(
        frames.abs_diff(host(HOST_FREE_FRAMES)) < 16,
        "moving took {} frames",
        frames.abs_diff(host(HOST_FREE_FRAMES))
    );
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(arrived, MIB) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn out_of_line_copy_is_copy_on_write() -> Result<(), String> {
    use libipc::ipc::ReceiveRight;
    let port = ReceiveRight::allocate().map_err(|e| format!("allocate port: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let base = sys::vm_allocate(0, 64 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    fill(base, 64, 0x123);
    let copies = host(HOST_VM_COPIES_ON_WRITE);
    let arrived = round_trip(send.name(), base, 64 * PAGE, false)?;
    check!(
        matches(arrived, 64, 0x123) && matches(base, 64, 0x123),
        "contents differ after the copy"
    );
    check!(
        host(HOST_VM_COPIES_ON_WRITE) == copies,
        "sending copied {} pages",
        host(HOST_VM_COPIES_ON_WRITE) - copies
    );
    write(arrived + 3 * PAGE, 1);
    check!(
        host(HOST_VM_COPIES_ON_WRITE) == copies + 1,
        "one write copied {} pages",
        host(HOST_VM_COPIES_ON_WRITE) - copies
    );
    check!(
        matches(base, 64, 0x123),
        "the receiver's write reached the sender"
    );
    write(base + 5 * PAGE, 2);
    check!(
        read(arrived + 5 * PAGE) == 0x123 ^ (5 << 16),
        "the sender's write reached the receiver"
    );
    // SAFETY: nothing of ours lives in these regions.
    unsafe {
        sys::vm_deallocate(arrived, 64 * PAGE).map_err(|e| format!("deallocate: {e}"))?;
        sys::vm_deallocate(base, 64 * PAGE).map_err(|e| format!("deallocate: {e}"))?;
    }
    Ok(())
}

fn out_of_line_between_tasks() -> Result<(), String> {
    use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight};
    let port = ReceiveRight::allocate().map_err(|e| format!("allocate port: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let name = send.name();
    let status = in_child(|| {
        let Ok(base) = sys::vm_allocate(0, MIB, VM_ANYWHERE) else {
            return 1;
        };
        fill(base, 256, 0x777);
        let mut buffer = MessageBuffer::new();
        let regions = [(base, MIB as u32, true)];
        let Ok(message) = OutMessage::new(78, name).with_memory(&regions) else {
            return 2;
        };
        match ipc::send(&message, &mut buffer, None) {
            Ok(()) => 0,
            Err(_) => 3,
        }
    })?;
    check!(status == 0, "child status {status}");
    let mut buffer = MessageBuffer::new();
    let m = ipc::receive(port.name(), &mut buffer, Some(1000))
        .map_err(|e| format!("receive: {e:?}"))?;
    let (arrived, size) = m.memory().next().ok_or("no region")?;
    check!(
        size as u64 == MIB && matches(arrived, 256, 0x777),
        "the child's megabyte arrived changed"
    );
    // SAFETY: nothing of ours lives in the region.
    unsafe { sys::vm_deallocate(arrived, MIB) }.map_err(|e| format!("deallocate: {e}"))?;
    Ok(())
}

fn undelivered_out_of_line_memory_is_freed() -> Result<(), String> {
    use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight};
    // Once to warm up (page tables, this task's stack), then measured.
    for round in 0..2 {
        let frames = host(HOST_FREE_FRAMES);
        let port = ReceiveRight::allocate().map_err(|e| format!("allocate port: {e}"))?;
        let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
        let base = sys::vm_allocate(0, MIB, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
        fill(base, 256, 1);
        let mut buffer = MessageBuffer::new();
        let regions = [(base, MIB as u32, true)];
        let message = OutMessage::new(79, send.name())
            .with_memory(&regions)
            .map_err(|e| format!("{e:?}"))?;
        ipc::send(&message, &mut buffer, None).map_err(|e| format!("send: {e:?}"))?;
        // Destroying the port destroys the queued message and the megabyte in it.
        drop(port);
        drop(send);
        check!(
            round == 0 || host(HOST_FREE_FRAMES) == frames,
            "frames {frames} before, {} after",
            host(HOST_FREE_FRAMES)
        );
    }
    Ok(())
}

/// `VmRegion` with the result written to `address`.
fn unsafe_region_into(address: u64) -> Result<u64, KernReturn> {
    // SAFETY: the kernel validates `address` before writing; it must refuse kernel memory.
    unsafe { sys::syscall2(Syscall::VmRegion as u64, 0, address) }.into_result()
}

/// Forks sleeping children until the kernel refuses: the refusal is `ResourceShortage`, the
/// kernel heap and the page tables never pass the kernel's budget for tasks (without the
/// budget, forks went on until the kernel's last frames were gone), the refusal has a reason
/// (the budget spent, or free memory down to the line new tasks need), and the system still
/// works after it. Since idle tasks' page tables are taken under pressure
/// (`pmap_collect::Pass::Pressure`), a sleeping child costs the kernel little and the
/// children's own pages usually end it first.
fn a_fork_bomb_is_refused_within_the_kernel_budget() -> Result<(), String> {
    let total = sys::host_info(HOST_TOTAL_FRAMES).map_err(|e| format!("{e}"))?;
    let kernel_memory = || {
        sys::host_info(HOST_HEAP_BYTES).unwrap_or(0).div_ceil(PAGE)
            + sys::host_info(HOST_TABLE_FRAMES).unwrap_or(0)
            + sys::host_info(HOST_TABLES_PROMISED).unwrap_or(0)
    };
    let mut forked = 0u64;
    // Children asleep for a second lose their page tables (`kern::pmap_collect`), which
    // frees room for more forks; tables freed after the refusal are added back below, as
    // they were in use when the kernel refused.
    let collected = || sys::host_info(HOST_TABLES_COLLECTED).unwrap_or(0);
    let mut collected_before;
    let refusal = loop {
        collected_before = collected();
        match sys::task_fork() {
            Ok(sys::Forked::Child) => {
                libipc::rt::sleep_ms(3_600_000);
                sys::task_exit(0)
            }
            // No port kept: the next child would inherit it (thousands of rights each).
            Ok(sys::Forked::Parent(task)) => {
                let _ = sys::port_deallocate(task);
                forked += 1;
                check!(forked < 1_000_000, "a million forks and no refusal");
            }
            Err(e) => break e,
        }
    };
    let (used, free, promised) = (
        kernel_memory() + (collected() - collected_before),
        free_frames(),
        sys::host_info(HOST_TABLES_PROMISED).unwrap_or(0),
    );
    check!(
        refusal == KernReturn::ResourceShortage,
        "fork {} failed with {refusal:?}, not ResourceShortage",
        forked + 1
    );
    check!(forked >= 100, "only {forked} forks before the refusal");
    check!(
        used * 100 <= total * (KERNEL_MEMORY_BUDGET_PERCENT + 2),
        "after {forked} forks heap and tables hold {used} of {total} pages: past the budget \
         of {KERNEL_MEMORY_BUDGET_PERCENT} %"
    );
    let budget_spent = used * 100 >= total * (KERNEL_MEMORY_BUDGET_PERCENT - 2);
    // Free memory as the kernel counts it for new tasks: less what the children made and
    // not yet started will take.
    let memory_short = free.saturating_sub(FRAMES_PER_PROMISED_TABLE * promised) * 10 <= total;
    check!(
        budget_spent || memory_short,
        "refused after {forked} forks with heap and tables at {used} of {total} pages and \
         {free} pages free ({promised} tables promised to children not started): neither \
         the budget spent nor memory short"
    );
    // The system still works: memory can be had and touched.
    let base = sys::vm_allocate(0, 16 * PAGE, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    for i in 0..16 {
        write(base + i * PAGE, i);
    }
    // SAFETY: the region was allocated above and nothing refers to it.
    unsafe { sys::vm_deallocate(base, 16 * PAGE) }.map_err(|e| format!("deallocate: {e}"))?;
    libipc::println!(
        "vm_test: {forked} forks before the refusal; heap and tables {used} of {total} pages, \
         {free} free"
    );
    Ok(())
}

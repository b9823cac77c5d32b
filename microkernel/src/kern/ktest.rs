//! In-kernel self-tests, chosen with `test=all` or `test=name,...`, each reporting
//! `ktest <name> ok` or `ktest <name> FAILED: <reason>`, then `N passed, M failed`.

use crate::arch::{self, percpu};
use crate::boot::cmdline::TestSelection;
use crate::kprintln;
use crate::vm::kernel_space::{self, phys_to_virt};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

type TestResult = Result<(), String>;
type SelfTest = fn() -> TestResult;

/// Every self-test, by name.
const TESTS: &[(&str, SelfTest)] = &[
    ("frame_allocator", frame_allocator),
    ("heap", heap),
    ("heap_on_scattered_frames", heap_on_scattered_frames),
    ("timer", timer),
    ("percpu", percpu_area),
    ("breakpoint", breakpoint),
    ("kernel_mappings", kernel_mappings),
    ("page_mappings", page_mappings),
    ("freed_tables_hold_only_zeros", freed_tables_hold_only_zeros),
    (
        "a_forked_childs_first_page_is_premapped",
        a_forked_childs_first_page_is_premapped,
    ),
    ("forked_children_share_a_page", forked_children_share_a_page),
    (
        "tasks_running_one_program_share_its_text_table",
        tasks_running_one_program_share_its_text_table,
    ),
    (
        "a_dead_childs_copy_is_merged_at_once",
        a_dead_childs_copy_is_merged_at_once,
    ),
];

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

/// Runs the selected tests; returns how many failed (an unknown name counts as a failure).
pub fn run(selection: &TestSelection<'_>) -> usize {
    let (mut passed, mut failed) = (0, 0);
    for name in selection.names() {
        if !TESTS.iter().any(|(known, _)| *known == name) {
            kprintln!("ktest {name} FAILED: no such test");
            failed += 1;
        }
    }
    for (name, test) in TESTS.iter().filter(|(name, _)| selection.includes(name)) {
        match test() {
            Ok(()) => {
                kprintln!("ktest {name} ok");
                passed += 1;
            }
            Err(why) => {
                kprintln!("ktest {name} FAILED: {why}");
                failed += 1;
            }
        }
    }
    kprintln!("{passed} passed, {failed} failed");
    failed
}

/// Allocates most of free memory frame by frame, writes each frame's own address into it,
/// checks them all, frees them, and expects the free count back; then a contiguous DMA run.
fn frame_allocator() -> TestResult {
    let (free_before, total) = kernel_space::frame_counts();
    check!(
        free_before > 0 && free_before <= total,
        "bad counts: {free_before} free of {total}"
    );
    let want = free_before.saturating_sub(256).min(64 * 1024);
    let mut frames: Vec<u64> = Vec::new();
    frames
        .try_reserve(want)
        .map_err(|_| "no heap for the frame list")?;
    let (free_mid, _) = kernel_space::frame_counts();
    for _ in 0..want {
        let frame = kernel_space::allocate_frame().ok_or("allocation failed with frames free")?;
        check!(
            frame % 4096 == 0 && frame >= 0x10_0000,
            "bad frame {frame:#x}"
        );
        // SAFETY: the frame was just allocated to this test and is mapped by the direct map.
        unsafe { (phys_to_virt(frame) as *mut u64).write(frame ^ 0x5a5a_5a5a) };
        frames.push(frame);
    }
    for &frame in &frames {
        // SAFETY: as above; the frame is still ours.
        let value = unsafe { (phys_to_virt(frame) as *const u64).read() };
        check!(
            value == frame ^ 0x5a5a_5a5a,
            "frame {frame:#x} handed out twice (found {value:#x})"
        );
    }
    check!(
        kernel_space::frame_counts().0 == free_mid - want,
        "free count did not drop by {want}"
    );
    for &frame in &frames {
        kernel_space::free_frame(frame).map_err(|e| format!("free of {frame:#x}: {e}"))?;
    }
    check!(
        kernel_space::free_frame(frames[0]).is_err(),
        "double free accepted"
    );
    drop(frames);
    let run = kernel_space::allocate_contiguous(16, 64 * 1024).ok_or("no 16-frame DMA run")?;
    check!(run % (64 * 1024) == 0, "DMA run {run:#x} misaligned");
    kernel_space::free_contiguous(run, 16).map_err(|e| format!("{e}"))?;
    let (free_after, _) = kernel_space::frame_counts();
    check!(
        free_after == free_before,
        "free frames {free_before} before, {free_after} after"
    );
    Ok(())
}

/// Small and large allocations of many sizes, contents checked, everything given back.
fn heap() -> TestResult {
    let before = kernel_space::heap_stats().ok_or("no heap")?;
    let mut boxes: Vec<Box<[u8]>> = Vec::new();
    for i in 0..2000usize {
        let size = 1 + (i * 37) % 3000 + if i % 100 == 0 { 20_000 } else { 0 };
        let fill = (i % 251) as u8;
        boxes.push(alloc::vec![fill; size].into_boxed_slice());
    }
    for (i, b) in boxes.iter().enumerate() {
        check!(
            b.iter().all(|&x| x == (i % 251) as u8),
            "allocation {i} was overwritten"
        );
    }
    let during = kernel_space::heap_stats().ok_or("no heap")?;
    check!(
        during.bytes_in_use > before.bytes_in_use,
        "heap statistics do not count allocations"
    );
    drop(boxes);
    let after = kernel_space::heap_stats().ok_or("no heap")?;
    check!(
        after.bytes_in_use == before.bytes_in_use,
        "{} bytes in use before, {} after freeing everything",
        before.bytes_in_use,
        after.bytes_in_use
    );
    check!(
        after.large_pages == before.large_pages,
        "large allocations not returned"
    );
    let mut v: Vec<u64> = Vec::new();
    check!(
        v.try_reserve(1 << 40).is_err(),
        "a 8 TiB reservation succeeded"
    );
    Ok(())
}

/// With every free frame taken and every other one given back (no two free frames side by
/// side, as after hours of paging), a heap block of 64 pages is still made (in the kernel
/// map, of single frames), holds its contents, and its frames come back when it is freed.
fn heap_on_scattered_frames() -> TestResult {
    let (mut taken, mut kept) = (Vec::new(), Vec::new());
    let room = kernel_space::frame_counts().0 + 64;
    if taken.try_reserve(room).is_err() || kept.try_reserve(room).is_err() {
        return Err("no room to list the frames".into());
    }
    while taken.len() < taken.capacity() {
        match kernel_space::allocate_frame() {
            Some(frame) => taken.push(frame),
            None => break,
        }
    }
    taken.sort_unstable();
    for (i, &frame) in taken.iter().enumerate() {
        if i % 2 == 0 {
            kernel_space::free_contiguous(frame, 1).map_err(|e| format!("{e}"))?;
        } else {
            kept.push(frame);
        }
    }
    // `taken` and `kept` stay until the end: their own frames, freed, would lie side by side.
    let result = (|| {
        if let Some(run) = kernel_space::allocate_contiguous(2, 4096) {
            let _ = kernel_space::free_contiguous(run, 2);
            return Err("two free frames side by side: memory is not scattered".into());
        }
        let free = kernel_space::frame_counts().0;
        let mut block: Vec<u64> = Vec::new();
        block
            .try_reserve_exact(64 * 512)
            .map_err(|_| format!("no 64-page heap block with {free} scattered frames free"))?;
        block.extend((0..64 * 512).map(|i| i * 0x9e37_79b9));
        check!(
            crate::vm::kernel_map::contains(block.as_ptr() as u64),
            "the block is not in the kernel map"
        );
        // 64 frames, and a page table when the block starts a new 2 MiB of the map.
        let tables = (free - kernel_space::frame_counts().0).wrapping_sub(64);
        check!(
            tables <= 1,
            "the block took {} frames, not 64",
            free - kernel_space::frame_counts().0
        );
        check!(
            block
                .iter()
                .enumerate()
                .all(|(i, &x)| x == i as u64 * 0x9e37_79b9),
            "the block lost its contents"
        );
        drop(block);
        check!(
            kernel_space::frame_counts().0 + tables == free,
            "freeing the block gave back {} of its 64 frames",
            kernel_space::frame_counts().0 + tables + 64 - free
        );
        Ok(())
    })();
    for &frame in &kept {
        kernel_space::free_contiguous(frame, 1).map_err(|e| format!("{e}"))?;
    }
    drop((taken, kept));
    result
}

/// The APIC timer interrupts: ticks advance while the CPU halts.
fn timer() -> TestResult {
    let start = percpu::ticks();
    let tsc = arch::rdtsc();
    // At 100 Hz, 5 ticks take 50 ms; allow far more halts than that needs.
    for _ in 0..10_000 {
        if percpu::ticks() >= start + 5 {
            break;
        }
        arch::wait_for_interrupt();
    }
    let ticks = percpu::ticks() - start;
    check!(ticks >= 5, "only {ticks} timer ticks after 10000 halts");
    check!(arch::rdtsc() > tsc, "the TSC did not advance");
    Ok(())
}

/// GS points at this CPU's own area.
fn percpu_area() -> TestResult {
    let cpu = percpu::current();
    check!(
        cpu.is_self_consistent(),
        "gs:[0] does not point at the per-CPU area"
    );
    check!(cpu.index() == 0, "boot CPU has index {}", cpu.index());
    check!(
        cpu.kernel_stack_top() == crate::arch::entry::boot_stack().1,
        "wrong kernel stack top"
    );
    Ok(())
}

/// A breakpoint trap returns through the trap path with every register intact.
fn breakpoint() -> TestResult {
    let before = percpu::current().breakpoints();
    let (mut a, mut b) = (0x1111_2222_3333_4444u64, 0x5555_6666_7777_8888u64);
    // SAFETY: int3 traps to the breakpoint handler, which counts it and returns; the asm
    // declares the registers it uses.
    unsafe { core::arch::asm!("int3", inout("r12") a, inout("rsi") b) };
    a ^= 0x1111_2222_3333_4444;
    b ^= 0x5555_6666_7777_8888;
    check!(a == 0 && b == 0, "registers changed across the trap");
    let after = percpu::current().breakpoints();
    check!(
        after == before + 1,
        "breakpoint counter went from {before} to {after}"
    );
    Ok(())
}

/// The kernel's tables map text read-only and executable, data writable and not executable.
fn kernel_mappings() -> TestResult {
    use crate::arch::paging::{flags, PageTables, TableMemory};
    struct Tables;
    impl TableMemory for Tables {
        fn table(&mut self, phys: u64) -> &mut [u64; 512] {
            // SAFETY: page-table pages are mapped by the direct map; this test only reads them.
            unsafe { &mut *(phys_to_virt(phys) as *mut [u64; 512]) }
        }
        fn allocate_table(&mut self) -> Option<u64> {
            None
        }
    }
    let mut memory = Tables;
    let mut tables = PageTables::new(kernel_space::kernel_root(), &mut memory);
    let text = kernel_mappings as SelfTest as usize as u64;
    let (_, text_flags) = tables.translate(text).ok_or("kernel text unmapped")?;
    check!(text_flags & flags::WRITABLE == 0, "kernel text is writable");
    check!(
        text_flags & flags::NO_EXECUTE == 0,
        "kernel text is not executable"
    );
    static DATA: u64 = 0;
    let data = &raw const DATA as u64;
    let (_, rodata_flags) = tables.translate(data).ok_or("kernel rodata unmapped")?;
    check!(
        rodata_flags & flags::WRITABLE == 0,
        "kernel read-only data is writable"
    );
    let (stack_bottom, _) = crate::arch::entry::boot_stack();
    check!(
        tables.translate(stack_bottom).is_none(),
        "the stack's guard page is mapped"
    );
    let (_, stack_flags) = tables
        .translate(stack_bottom + 4096)
        .ok_or("boot stack unmapped")?;
    check!(stack_flags & flags::WRITABLE != 0, "the stack is read-only");
    if crate::arch::cpu::features().nx {
        check!(
            stack_flags & flags::NO_EXECUTE != 0,
            "the stack is executable"
        );
    }
    let frame = kernel_space::allocate_frame().ok_or("no frame")?;
    let translated = tables.translate(phys_to_virt(frame)).map(|(p, _)| p);
    kernel_space::free_frame(frame).map_err(|e| format!("{e}"))?;
    check!(
        translated == Some(frame),
        "direct map of {frame:#x} gives {translated:x?}"
    );
    Ok(())
}

/// A page mapped by a thousand address spaces (as a page shared by a thousand forked
/// children) is taken from all of them at the cost of those thousand mappings, not of every
/// page of every space; the hardware's accessed and dirty bits read through its mappings.
fn page_mappings() -> TestResult {
    use crate::arch::paging;
    use crate::vm::map::Protection;
    use crate::vm::pmap::{self, Pmap};
    const SPACES: usize = 1000;
    // Frames free or held by the heap (whose pages, and the mapping lists' room, it keeps).
    let available = || {
        kernel_space::frame_counts().0 + kernel_space::heap_stats().map_or(0, |s| s.pages_held())
    };
    let free_before = available();
    let shared = kernel_space::allocate_frame().ok_or("no frame")?;
    let mut spaces: Vec<Pmap> = Vec::new();
    let mut own: Vec<u64> = Vec::new();
    spaces.try_reserve(SPACES).map_err(|_| "no heap")?;
    own.try_reserve(SPACES).map_err(|_| "no heap")?;
    for _ in 0..SPACES {
        let mut space = Pmap::new().map_err(|_| "no memory for page tables")?;
        let frame = kernel_space::allocate_frame().ok_or("no frame")?;
        space
            .enter(0x40_0000, shared, Protection::READ)
            .map_err(|e| format!("{e}"))?;
        space
            .enter(0x40_1000, frame, Protection::READ_WRITE)
            .map_err(|e| format!("{e}"))?;
        spaces.push(space);
        own.push(frame);
    }
    check!(
        pmap::mapping_count(shared) == SPACES,
        "{} mappings of the shared page",
        pmap::mapping_count(shared)
    );
    // A translation kept with the change stamp (as the IPC fast path keeps a waiting
    // receiver's buffer page) holds until any pmap changes: a pageout, an unmap, a remap.
    let stamp = pmap::stamp();
    check!(stamp != 0, "the change stamp reads 0 (no translation)");
    let visits = pmap::mapping_visits();
    let removed = pmap::remove_everywhere(shared);
    check!(pmap::stamp() != stamp, "a pageout left the change stamp");
    let stamp = pmap::stamp();
    spaces[1].remove(0x40_1000, 0x40_2000);
    check!(pmap::stamp() != stamp, "an unmap left the change stamp");
    let stamp = pmap::stamp();
    spaces[1]
        .enter(0x40_1000, own[1], Protection::READ)
        .map_err(|e| format!("{e}"))?;
    check!(pmap::stamp() != stamp, "a remap left the change stamp");
    let visited = pmap::mapping_visits() - visits;
    check!(
        removed == SPACES && visited == SPACES as u64,
        "removed {removed}, visited {visited} mappings"
    );
    for space in &spaces {
        check!(
            space.translate(0x40_0000).is_none(),
            "the shared page is still mapped"
        );
        check!(
            space.translate(0x40_1000).is_some(),
            "a space's own page went too"
        );
    }
    // Accessed and dirty bits, through the mappings of one space's own page.
    check!(
        pmap::referenced_and_modified(own[0]) == (false, false),
        "an untouched page reads as used"
    );
    spaces[0].activate();
    // SAFETY: the active tables map 0x40_1000 writable to `own[0]`, a frame of this test's;
    // the kernel half is the kernel's in every space, so this code and its stack stay mapped.
    unsafe { core::ptr::write_volatile(0x40_1008 as *mut u64, 42) };
    // SAFETY: the kernel's own tables map everything the kernel uses.
    unsafe { paging::activate(kernel_space::kernel_root()) };
    check!(
        pmap::referenced_and_modified(own[0]) == (true, true),
        "a written page does not read as used and dirty"
    );
    check!(
        pmap::referenced_and_modified(own[0]) == (false, true),
        "the accessed bit was not cleared"
    );
    check!(
        pmap::referenced_and_modified(own[1]) == (false, false),
        "another space's page reads as used"
    );
    for space in spaces {
        space.destroy();
    }
    for frame in own.into_iter().chain(core::iter::once(shared)) {
        check!(
            pmap::mapping_count(frame) == 0,
            "a destroyed space left a mapping of {frame:#x}"
        );
        kernel_space::free_frame(frame).map_err(|e| format!("{e}"))?;
    }
    let free_after = available();
    check!(
        free_after == free_before,
        "frames (free or the heap's) {free_before} before, {free_after} after"
    );
    Ok(())
}

/// Page-table pages and roots freed by a task's end or by its tables' collection are kept
/// apart for new tables without being cleared again: every entry in them must have been
/// emptied, the leaves (through the mapping lists), the links between tables and a root's
/// copies of the kernel's entries, with whatever bits the CPU set in them as it walked.
fn freed_tables_hold_only_zeros() -> TestResult {
    use crate::arch::paging;
    use crate::vm::map::Protection;
    use crate::vm::page::Dropped;
    use crate::vm::pmap::{self, Pmap};
    // Addresses under different PDPTs, PDs and page tables.
    const PAGES: [u64; 5] = [
        0x40_0000,
        0x40_1000,
        0x4000_0000,
        0x80_0000_0000,
        0x7fff_ffff_f000,
    ];
    let frame = kernel_space::allocate_frame().ok_or("no frame")?;
    let mut spaces = Vec::new();
    for _ in 0..2 {
        let mut space = Pmap::new().map_err(|_| "no memory for page tables")?;
        for page in PAGES {
            space
                .enter(page, frame, Protection::READ_WRITE)
                .map_err(|e| format!("{e}"))?;
        }
        // One page taken away on its own (as pageout does), before the end.
        space.remove(0x40_1000, 0x40_2000);
        // The CPU walks them, setting accessed and dirty bits along the way.
        space.activate();
        for page in PAGES.iter().filter(|&&p| p != 0x40_1000) {
            // The kernel half is the kernel's in every space: this code and its stack stay
            // mapped.
            // SAFETY: the active tables map `page` writable to `frame`, this test's.
            unsafe { core::ptr::write_volatile((page + 8) as *mut u64, 7) };
        }
        // SAFETY: the kernel's own tables map everything the kernel uses.
        unsafe { paging::activate(kernel_space::kernel_root()) };
        spaces.push(space);
    }
    let tables = spaces[0].table_pages();
    check!(
        tables >= 8,
        "only {tables} table pages for five scattered pages"
    );
    let before = kernel_space::cleared_frames_hold_only_zeros()
        .map_err(|f| format!("a cleared frame {f:#x} was not clear before the test"))?;
    let mut second = spaces.pop().ok_or("no space")?;
    second.discard(Dropped::InPlace);
    spaces.pop().ok_or("no space")?.destroy();
    let after = kernel_space::cleared_frames_hold_only_zeros()
        .map_err(|f| format!("table page {f:#x} was kept apart as cleared but holds a word"))?;
    let room = crate::vm::frame_allocator::CLEAN_FRAMES - before;
    // Both spaces' tables, and the root of the one that ended.
    check!(
        after - before == (2 * tables + 1).min(room),
        "{} table pages kept apart, of {} freed ({before} before)",
        after - before,
        2 * tables + 1
    );
    second.destroy();
    kernel_space::cleared_frames_hold_only_zeros()
        .map_err(|f| format!("root {f:#x} was kept apart as cleared but holds a word"))?;
    check!(
        pmap::mapping_count(frame) == 0,
        "a mapping of the test's frame is left"
    );
    kernel_space::free_frame(frame).map_err(|e| format!("{e}"))?;
    Ok(())
}

/// A fork makes no object: both sides keep the one they share and need a copy. A parent
/// that then writes every page of its copy gets one shadow at its first write (each write
/// copies the page into it), and when its child ends, the object the two shared is the
/// parent's shadow's alone and is merged into it at once (noted as the child's entry lets
/// it go, merged on the kernel's way out), its pages that the parent has copies of freed,
/// not left until the parent's next fork or fault. A second fork whose child ends without
/// writing leaves the parent writing its own object again: no shadow, no page copied.
fn a_dead_childs_copy_is_merged_at_once() -> TestResult {
    use crate::base::object_table::Table;
    use crate::vm::address_space::{collapse, AddressSpace};
    use crate::vm::map::{Protection, PAGE_SIZE};
    use crate::vm::object::VmObject;
    use crate::vm::statistics;
    const PAGES: u64 = 8;
    const BASE: u64 = 0x40_0000;
    let mut objects: Table<VmObject> = Table::new();
    let mut parent = AddressSpace::new().map_err(|_| "no memory for an address space")?;
    // Writes every page of the region (a page of the parent's own each).
    let write_all = |space: &mut AddressSpace, objects: &mut Table<VmObject>, what: &str| {
        (0..PAGES).try_for_each(|page| {
            space
                .frame_for(objects, BASE + page * PAGE_SIZE, Protection::READ_WRITE)
                .map(drop)
                .map_err(|e| format!("{what}: {e:?}"))
        })
    };
    let result = (|| -> TestResult {
        parent
            .allocate(&mut objects, Some(BASE), 0, PAGES * PAGE_SIZE)
            .map_err(|e| format!("allocate: {e}"))?;
        write_all(&mut parent, &mut objects, "touch")?;
        let child = parent
            .fork(&mut objects)
            .map_err(|e| format!("fork: {e}"))?;
        check!(
            objects.len() == 1,
            "{} objects after the fork: it made some",
            objects.len()
        );
        let needing = |space: &AddressSpace| space.map().entries().iter().all(|e| e.needs_copy);
        check!(
            needing(&parent) && needing(&child),
            "after the fork, an entry does not need its copy"
        );
        let delayed = statistics::read(&statistics::DELAYED_COPIES);
        write_all(&mut parent, &mut objects, "write after the fork")?;
        // Anything noted before is not this test's.
        while crate::vm::notes::take_collapse_front().is_some() {}
        check!(
            objects.len() == 2 && statistics::read(&statistics::DELAYED_COPIES) == delayed + 1,
            "{} objects after the parent's writes, {} copies made late: not one shadow",
            objects.len(),
            statistics::read(&statistics::DELAYED_COPIES) - delayed
        );
        child.destroy(&mut objects);
        let free_before = kernel_space::frame_counts().0;
        let fronts: Vec<_> = core::iter::from_fn(crate::vm::notes::take_collapse_front).collect();
        check!(
            fronts.len() == 1,
            "{} objects noted to merge as the child went",
            fronts.len()
        );
        for front in fronts {
            collapse(&mut objects, front);
        }
        check!(
            objects.len() == 1,
            "{} objects after the merge: the shared one stayed",
            objects.len()
        );
        let freed = kernel_space::frame_counts().0 - free_before;
        check!(
            freed == PAGES as usize,
            "{freed} frames freed, not the {PAGES} pages the parent had copies of"
        );
        for page in 0..PAGES {
            let frame = parent
                .frame_for(&mut objects, BASE + page * PAGE_SIZE, Protection::READ)
                .map_err(|e| format!("read after the merge: {e:?}"))?;
            check!(frame != 0, "page {page} has no frame");
        }
        // A child that ends without writing: the parent's writes find its object its own.
        let child = parent
            .fork(&mut objects)
            .map_err(|e| format!("second fork: {e}"))?;
        let frames = |space: &AddressSpace| -> Vec<u64> {
            (0..PAGES)
                .map(|page| {
                    space
                        .pmap()
                        .translate(BASE + page * PAGE_SIZE)
                        .map_or(0, |(f, _)| f)
                })
                .collect()
        };
        let frames_before = frames(&parent);
        child.destroy(&mut objects);
        let (delayed, copies) = (
            statistics::read(&statistics::DELAYED_COPIES),
            statistics::read(&statistics::COPIES_ON_WRITE),
        );
        write_all(&mut parent, &mut objects, "write after the second child")?;
        let frames_after = frames(&parent);
        check!(
            objects.len() == 1
                && statistics::read(&statistics::DELAYED_COPIES) == delayed
                && statistics::read(&statistics::COPIES_ON_WRITE) == copies
                && frames_after == frames_before,
            "the parent of a child that never wrote copied: {} objects, {} shadows and {} \
             pages copied, frames the same: {}",
            objects.len(),
            statistics::read(&statistics::DELAYED_COPIES) - delayed,
            statistics::read(&statistics::COPIES_ON_WRITE) - copies,
            frames_after == frames_before
        );
        Ok(())
    })();
    parent.destroy(&mut objects);
    check!(
        objects.is_empty(),
        "{} memory objects outlived the space",
        objects.len()
    );
    result
}

/// `premap` (what fork does for the child's first instruction) maps a resident page of the
/// chain read-only, as a read fault would, and nothing else: not a write, not a page nobody
/// has, not an address outside the map.
fn a_forked_childs_first_page_is_premapped() -> TestResult {
    use crate::arch::paging::flags;
    use crate::base::object_table::Table;
    use crate::vm::address_space::AddressSpace;
    use crate::vm::map::{Protection, PAGE_SIZE};
    use crate::vm::object::VmObject;
    const BASE: u64 = 0x40_0000;
    let mut objects: Table<VmObject> = Table::new();
    let mut parent = AddressSpace::new().map_err(|_| "no memory for an address space")?;
    let result = (|| -> TestResult {
        parent
            .allocate(&mut objects, Some(BASE), 0, 2 * PAGE_SIZE)
            .map_err(|e| format!("allocate: {e}"))?;
        let frame = parent
            .frame_for(&mut objects, BASE, Protection::READ_WRITE)
            .map_err(|e| format!("touch: {e:?}"))?;
        let mut child = parent
            .fork(&mut objects)
            .map_err(|e| format!("fork: {e}"))?;
        let outcome = (|| -> TestResult {
            check!(
                child.pmap().translate(BASE).is_none(),
                "the child maps the page before premap"
            );
            check!(
                !child.premap(&objects, BASE, Protection::WRITE),
                "premap mapped a page for a write"
            );
            check!(
                !child.premap(&objects, BASE + PAGE_SIZE, Protection::READ),
                "premap mapped a page nobody has (it would have to zero-fill it)"
            );
            check!(
                !child.premap(&objects, BASE + 2 * PAGE_SIZE, Protection::READ),
                "premap mapped an address outside the map"
            );
            check!(
                child.premap(&objects, BASE + 8, Protection::READ),
                "premap did not map the parent's resident page"
            );
            let (phys, page_flags) = child.pmap().translate(BASE).ok_or("not mapped after")?;
            check!(
                phys & !0xfff == frame & !0xfff && page_flags & flags::WRITABLE == 0,
                "mapped {phys:#x} with flags {page_flags:#x}, not {frame:#x} read-only"
            );
            Ok(())
        })();
        child.destroy(&mut objects);
        outcome
    })();
    parent.destroy(&mut objects);
    result
}

/// Two spaces loaded with one program's text (as the loader maps it) share the page table
/// that maps it: a page one faults in translates in the other with no fault of its own, and
/// has one mapping in all; pageout takes it from both at once; a space whose text changes
/// leaves the table and maps its text itself, the other keeping it; a fork shares it; and
/// the table's pages go back with the last space.
fn tasks_running_one_program_share_its_text_table() -> TestResult {
    use crate::base::object_table::Table;
    use crate::vm::address_space::{release_object, AddressSpace, FaultError};
    use crate::vm::map::{MapEntry, Protection, PAGE_SIZE};
    use crate::vm::object::{ObjectKind, VmObject};
    use crate::vm::pmap;
    use crate::vm::shared_text::SharedText;
    const TEXT: u64 = 0x40_0000;
    const DATA: u64 = 0x70_0000;
    const PAGES: u64 = 4;
    let page = |n: u64| TEXT + n * PAGE_SIZE;
    let read = |space: &mut AddressSpace, objects: &mut Table<VmObject>, n: u64| {
        space
            .frame_for(objects, page(n), Protection::READ)
            .map_err(|e| format!("fault on text page {n}: {e:?}"))
    };
    let translates = |space: &AddressSpace, n: u64| space.pmap().translate(page(n)).map(|(f, _)| f);
    let tables_before = pmap::table_frames();
    let base = kernel_space::allocate_contiguous(PAGES as usize, PAGE_SIZE).ok_or("no frames")?;
    let mut objects: Table<VmObject> = Table::new();
    let file = objects
        .insert(VmObject::new(
            ObjectKind::Physical { base },
            PAGES * PAGE_SIZE,
        ))
        .map_err(|_| "no heap")?;
    let load = |objects: &mut Table<VmObject>| -> Result<AddressSpace, String> {
        let mut space = AddressSpace::new().map_err(|_| "no memory for an address space")?;
        objects.get_mut(file).ok_or("no file")?.add_reference();
        let mut text = MapEntry::new(TEXT, page(PAGES), file, 0, Protection::READ_EXECUTE);
        text.max_protection = Protection::READ_EXECUTE;
        space.enter(text).map_err(|e| format!("enter: {e:?}"))?;
        space
            .allocate(objects, Some(DATA), 0, PAGE_SIZE)
            .map_err(|e| format!("allocate: {e}"))?;
        Ok(space)
    };
    let mut spaces: Vec<AddressSpace> = Vec::new();
    let result = (|| -> TestResult {
        spaces.push(load(&mut objects)?);
        spaces.push(load(&mut objects)?);
        let text = SharedText::of(spaces[0].map(), &objects).ok_or("no shared table made")?;
        check!(text.base() == TEXT, "a table for {:#x}", text.base());
        check!(
            spaces[0].share_text(&text) && spaces[1].share_text(&text),
            "a space loaded with the program does not match its table"
        );
        drop(text);
        let [a, b, ..] = spaces.as_mut_slice() else {
            return Err("fewer than two spaces".into());
        };
        check!(
            a.pmap().linked() == Some(TEXT) && b.pmap().linked() == Some(TEXT),
            "a space sharing the table did not link it"
        );
        check!(
            b.pmap().translate(page(1)).is_none(),
            "a page nobody faulted in translates"
        );
        let one = read(a, &mut objects, 1)?;
        check!(
            translates(b, 1) == Some(one),
            "a page the other space faulted in does not translate here"
        );
        // Its tables gone (an idle task's, collected), a space links the shared table again
        // at its next fault there.
        b.discard_translations(crate::vm::page::Dropped::InPlace);
        check!(
            b.pmap().linked().is_none(),
            "discarded tables still link the table"
        );
        read(b, &mut objects, 1)?;
        check!(
            b.pmap().linked() == Some(TEXT),
            "a fault did not link the table again"
        );
        let two = read(a, &mut objects, 2)?;
        check!(
            translates(b, 2) == Some(two),
            "a page the other space faulted in does not translate here"
        );
        check!(
            pmap::mapping_count(one) == 1 && pmap::mapping_count(two) == 1,
            "shared text pages have {} and {} mappings, not one each",
            pmap::mapping_count(one),
            pmap::mapping_count(two)
        );
        check!(
            a.frame_for(&mut objects, page(1), Protection::WRITE) == Err(FaultError::Protection),
            "program text was written"
        );
        check!(
            pmap::remove_everywhere(one) == 1,
            "pageout took the shared page from more than its one mapping"
        );
        check!(
            a.pmap().translate(page(1)).is_none() && b.pmap().translate(page(1)).is_none(),
            "a page taken from the shared table still translates"
        );
        // A fork shares the text object and the table.
        let child = a.fork(&mut objects).map_err(|e| format!("fork: {e}"))?;
        let forked = child.shared_text().is_some()
            && child.map().lookup(TEXT).is_some_and(|e| e.object == file);
        spaces.push(child);
        check!(
            forked,
            "a forked child does not share the text and its table"
        );
        // One space's text changes: it leaves the table, the other keeps it.
        let [a, b, ..] = spaces.as_mut_slice() else {
            return Err("fewer than two spaces".into());
        };
        b.deallocate(&mut objects, page(0), page(1))
            .map_err(|e| format!("deallocate: {e}"))?;
        check!(
            b.pmap().linked().is_none(),
            "a space whose text changed still links the table"
        );
        read(b, &mut objects, 2)?;
        check!(
            b.shared_text().is_none() && pmap::mapping_count(two) == 2,
            "a space whose text changed did not map it itself ({} mappings)",
            pmap::mapping_count(two)
        );
        check!(
            translates(a, 2) == Some(two),
            "the other space lost the shared table"
        );
        // Something new in the span: the space leaves the table at its fault there.
        a.allocate(&mut objects, Some(page(PAGES + 4)), 0, PAGE_SIZE)
            .map_err(|e| format!("allocate: {e}"))?;
        a.frame_for(&mut objects, page(PAGES + 4), Protection::READ_WRITE)
            .map_err(|e| format!("fault: {e:?}"))?;
        check!(
            a.shared_text().is_none() && a.pmap().linked().is_none(),
            "a space that mapped more in the span still shares the table"
        );
        Ok(())
    })();
    for space in spaces.drain(..) {
        space.destroy(&mut objects);
    }
    release_object(&mut objects, file);
    let _ = kernel_space::free_contiguous(base, PAGES as usize);
    result?;
    check!(
        objects.is_empty(),
        "{} memory objects outlived the spaces",
        objects.len()
    );
    check!(
        pmap::table_frames() == tables_before,
        "{} page-table frames before, {} after",
        tables_before,
        pmap::table_frames()
    );
    Ok(())
}

/// A page shared by a thousand forked children (forked as `task_fork` forks memory), each of
/// which has touched it and has pages of its own, is taken from all of them at the cost of
/// their mappings of it alone; their own pages stay, and the next touch maps it again.
fn forked_children_share_a_page() -> TestResult {
    use crate::base::object_table::Table;
    use crate::vm::address_space::AddressSpace;
    use crate::vm::map::{Inheritance, Protection, PAGE_SIZE};
    use crate::vm::object::VmObject;
    use crate::vm::pmap;
    const CHILDREN: usize = 1000;
    const SHARED: u64 = 0x40_0000;
    const PRIVATE: u64 = 0x80_0000;
    let mut objects: Table<VmObject> = Table::new();
    let mut parent = AddressSpace::new().map_err(|_| "no memory for an address space")?;
    let mut children: Vec<AddressSpace> = Vec::new();
    children.try_reserve(CHILDREN).map_err(|_| "no heap")?;
    let result = (|| -> TestResult {
        parent
            .allocate(&mut objects, Some(SHARED), 0, PAGE_SIZE)
            .map_err(|e| format!("allocate: {e}"))?;
        parent
            .allocate(&mut objects, Some(PRIVATE), 0, 4 * PAGE_SIZE)
            .map_err(|e| format!("allocate: {e}"))?;
        parent
            .update(&mut objects, SHARED, SHARED + PAGE_SIZE, |e| {
                e.inheritance = Inheritance::Share
            })
            .map_err(|e| format!("inherit: {e}"))?;
        let shared = parent
            .frame_for(&mut objects, SHARED, Protection::READ_WRITE)
            .map_err(|e| format!("touch: {e:?}"))?;
        for page in 0..4 {
            parent
                .frame_for(
                    &mut objects,
                    PRIVATE + page * PAGE_SIZE,
                    Protection::READ_WRITE,
                )
                .map_err(|e| format!("touch: {e:?}"))?;
        }
        for _ in 0..CHILDREN {
            let mut child = parent
                .fork(&mut objects)
                .map_err(|e| format!("fork: {e}"))?;
            let frame = child.frame_for(&mut objects, SHARED, Protection::READ);
            // A write to copied memory gives the child a page of its own.
            let own = child.frame_for(&mut objects, PRIVATE, Protection::READ_WRITE);
            children.push(child);
            check!(
                frame == Ok(shared),
                "a child maps {frame:?}, not the shared page"
            );
            check!(own.is_ok(), "a child's write to its own memory: {own:?}");
        }
        check!(
            pmap::mapping_count(shared) == CHILDREN + 1,
            "{} mappings of the shared page",
            pmap::mapping_count(shared)
        );
        let visits = pmap::mapping_visits();
        let removed = pmap::remove_everywhere(shared);
        let visited = pmap::mapping_visits() - visits;
        check!(
            removed == CHILDREN + 1 && visited == (CHILDREN + 1) as u64,
            "removed {removed}, visited {visited} mappings"
        );
        for child in &children {
            check!(
                child.pmap().translate(SHARED).is_none(),
                "a child still maps the shared page"
            );
            check!(
                child.pmap().translate(PRIVATE).is_some(),
                "a child's own page went too"
            );
        }
        let again = children[0].frame_for(&mut objects, SHARED, Protection::READ);
        check!(
            again == Ok(shared),
            "the page did not stay with its object: {again:?}"
        );
        Ok(())
    })();
    for child in children {
        child.destroy(&mut objects);
    }
    parent.destroy(&mut objects);
    check!(
        objects.is_empty(),
        "{} memory objects outlived every space",
        objects.len()
    );
    result
}

//! The kernel heap: slab size classes for small objects, whole page runs for large ones.
//!
//! Objects of up to 2048 bytes come from eight power-of-two size classes, refilled one 4 KiB
//! page at a time from a `PageSource`. Because pages are 4096-aligned and objects sit at
//! multiples of their class size, every object is aligned to its class size, so choosing the
//! smallest class of at least `max(size, align)` satisfies any alignment. Anything larger is
//! a run of whole pages taken from, and given back to, the page source. Allocation never
//! panics: a failure is a null pointer, which the kernel's fallible paths (`try_reserve`,
//! slab caches) turn into an error for whoever asked.
//!
//! Each class takes its memory in *slabs*: one page for the classes of up to 512 bytes, 4
//! pages for 1024 and 8 for 2048, aligned to their size, each starting with a header: its own
//! free objects and how many are in use. A slab whose objects are all free again goes back
//! to the source, but one per class, kept for the next allocation so that a single object
//! made and freed over and over does not take and give pages each time. The header costs one
//! object of each slab (two of 16 bytes): 1/16 of a 2048-byte slab, 1/256 of a 16-byte one.
//! A task that made 65,535 ports and messages used to leave their 40 MiB with the heap
//! (issue 17's B2); now they go back to the frame allocator when it exits.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

/// Size of the pages the heap takes from its source.
pub const PAGE_SIZE: usize = 4096;

/// The object sizes of the small-object classes, smallest first: the powers of two, sizes
/// between them (48, 96, 192, 384; 816 and 1360, five and three of which fill a page), and
/// 320, which a thread's record (296 bytes) fits. With powers of two alone an object took
/// up to twice its size: a thread 512 bytes, a task's records 3.5 KiB of pages for 2.4 KiB
/// of data. No object crosses a page boundary (a slab's pages are only virtually
/// contiguous, and a device given a heap object, as virtio's indirect descriptor lists, is
/// given the physical address of its start).
pub const SIZE_CLASSES: [usize; 15] = [
    16, 32, 48, 64, 96, 128, 192, 256, 320, 384, 512, 816, 1024, 1360, 2048,
];

const CLASS_COUNT: usize = SIZE_CLASSES.len();

/// Largest request served from a size class; larger ones get whole pages.
const LARGEST_CLASS: usize = SIZE_CLASSES[CLASS_COUNT - 1];

/// Where the heap gets its memory: in the kernel, frames from the frame allocator seen through
/// the direct map.
pub trait PageSource {
    /// The virtual address of `count` contiguous, 4096-aligned, writable pages that nobody
    /// else uses until they are given back, or `None` if there is no memory.
    fn allocate_pages(&mut self, count: usize) -> Option<NonNull<u8>>;

    /// As `allocate_pages`, at an address that is a multiple of `count` pages (`count` a
    /// power of two up to 64): a slab, whose header is found from any of its objects.
    fn allocate_aligned_pages(&mut self, count: usize) -> Option<NonNull<u8>>;

    /// Gives back pages.
    ///
    /// # Safety
    /// `ptr` came from `allocate_pages(count)` or `allocate_aligned_pages(count)` on this
    /// source with the same `count`, and nothing uses the pages any more.
    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, count: usize);
}

/// A snapshot of the heap's use of memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Sum of the sizes callers asked for, over live allocations.
    pub bytes_in_use: usize,
    /// Number of live allocations.
    pub allocations: usize,
    /// Pages held by each size class (same order as `SIZE_CLASSES`), free objects included.
    pub class_pages: [usize; CLASS_COUNT],
    /// Pages in live large allocations.
    pub large_pages: usize,
    /// Allocations refused so far, for lack of memory or an unsupported layout.
    pub failed_allocations: usize,
}

impl HeapStats {
    /// All pages the heap holds from its source.
    pub fn pages_held(&self) -> usize {
        self.class_pages.iter().sum::<usize>() + self.large_pages
    }
}

/// A free object of a size class: its first bytes link to the next free one.
struct FreeObject {
    next: Option<NonNull<FreeObject>>,
}

/// Pages of a slab of each class (same order as [`SIZE_CLASSES`]): a power of two (a slab
/// is aligned to its size), 15 objects or more a slab.
pub const SLAB_PAGES: [usize; CLASS_COUNT] = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 4, 4, 8, 8];

/// The start of a slab: its freed objects, its place on the class's list of slabs with free
/// objects, its objects in use, and where its never-used objects begin (a slab is carved as
/// it is used, so a fresh one costs no more than its header).
#[repr(C)]
struct SlabHeader {
    free: Option<NonNull<FreeObject>>,
    next: Option<NonNull<SlabHeader>>,
    prev: Option<NonNull<SlabHeader>>,
    in_use: u32,
    /// Offset of the first object never handed out; the slab's size once all have been.
    fresh: u32,
}

/// Bytes a slab's header takes: the first object sits at this offset or the class size,
/// whichever is more.
const HEADER_BYTES: usize = 32;
const _: () = assert!(core::mem::size_of::<SlabHeader>() == HEADER_BYTES);

/// Bytes of a slab of class `class`.
const fn slab_bytes(class: usize) -> usize {
    SLAB_PAGES[class] * PAGE_SIZE
}

/// The alignment of every object of class `class`: the largest power of two its size is a
/// multiple of (objects sit at multiples of the size past an offset aligned as much, in a
/// slab aligned to its own size).
const fn class_align(class: usize) -> usize {
    1 << SIZE_CLASSES[class].trailing_zeros()
}

/// The offset of the first object in a slab of class `class`: past the header, aligned as
/// the class's objects are.
const fn first_object(class: usize) -> usize {
    HEADER_BYTES.next_multiple_of(class_align(class))
}

/// Where the object after the one at `offset` of a slab of class `class` lies: right after
/// it, or at the next page if it would cross into it.
const fn next_object(class: usize, offset: usize) -> usize {
    let size = SIZE_CLASSES[class];
    let next = offset + size;
    if next % PAGE_SIZE + size > PAGE_SIZE {
        next.next_multiple_of(PAGE_SIZE)
    } else {
        next
    }
}

/// Objects in a slab of class `class`: as many as fit each of its pages whole (the first
/// after the header).
pub const fn objects_per_slab(class: usize) -> usize {
    let mut count = 0;
    let mut offset = first_object(class);
    while offset + SIZE_CLASSES[class] <= slab_bytes(class) {
        count += 1;
        offset = next_object(class, offset);
    }
    count
}

/// The end of the last object of a slab of each class: a slab whose never-used objects
/// begin there has none left. A table, so the allocator divides nothing.
const SLAB_END: [usize; CLASS_COUNT] = {
    let mut table = [0; CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        let mut offset = first_object(class);
        while offset + SIZE_CLASSES[class] <= slab_bytes(class) {
            offset = next_object(class, offset);
        }
        table[class] = offset;
        class += 1;
    }
    table
};

/// [`SLAB_END`] of class `class`.
#[inline(always)]
fn slab_end(class: usize) -> usize {
    SLAB_END[class]
}

/// [`class_align`] of each class, for [`Placement::of`].
const CLASS_ALIGN: [usize; CLASS_COUNT] = {
    let mut table = [0; CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        table[class] = class_align(class);
        class += 1;
    }
    table
};

/// Requests of up to `16 * i` bytes go to class `SMALLEST_CLASS[i]` (if it is aligned
/// enough: [`Placement::of`]).
const SMALLEST_CLASS: [u8; LARGEST_CLASS / 16 + 1] = {
    let mut table = [0u8; LARGEST_CLASS / 16 + 1];
    let mut i = 0;
    let mut class = 0;
    while i < table.len() {
        while SIZE_CLASSES[class] < i * 16 {
            class += 1;
        }
        table[i] = class as u8;
        i += 1;
    }
    table
};

/// Where a layout is served from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Size class index.
    Class(usize),
    /// A run of this many pages.
    Pages(usize),
}

impl Placement {
    /// `None` for layouts the heap cannot serve: alignment beyond a page for a large object
    /// (page runs are only page-aligned).
    fn of(layout: Layout) -> Option<Self> {
        if layout.size() <= LARGEST_CLASS && layout.align() <= LARGEST_CLASS {
            // The smallest class the size fits (every class is 16-aligned), or a larger one
            // aligned enough (the largest is aligned to its size, at least the alignment).
            let mut class = usize::from(SMALLEST_CLASS[(layout.size() + 15) >> 4]);
            if layout.align() > 16 {
                while CLASS_ALIGN[class] < layout.align() {
                    class += 1;
                }
            }
            Some(Placement::Class(class))
        } else if layout.align() <= PAGE_SIZE {
            Some(Placement::Pages(layout.size().div_ceil(PAGE_SIZE).max(1)))
        } else {
            None
        }
    }
}

/// The heap proper, single-threaded; `LockedHeap` shares it.
///
/// Invariants: for each class `c`, `partial[c]` links (through their headers) exactly the
/// slabs of that class with a free object; each slab's `free` links distinct unused objects
/// of that slab, at multiples of the class size past its header and below `fresh` (the
/// objects from `fresh` on are unused too), and `in_use` counts the rest; at most one slab
/// is on the list with none in use (`empty_kept[c]` says whether one is). The counts in `stats` match the pages held and the live allocations.
pub struct Heap<S: PageSource> {
    source: S,
    partial: [Option<NonNull<SlabHeader>>; CLASS_COUNT],
    empty_kept: [bool; CLASS_COUNT],
    stats: HeapStats,
}

// SAFETY: the slab pointers point into pages the heap owns exclusively (taken from its
// source and never shared), so moving the heap to another CPU moves that ownership with it.
unsafe impl<S: PageSource + Send> Send for Heap<S> {}

impl<S: PageSource> Heap<S> {
    /// An empty heap that takes pages from `source` as it needs them.
    pub const fn new(source: S) -> Self {
        Self {
            source,
            partial: [None; CLASS_COUNT],
            empty_kept: [false; CLASS_COUNT],
            stats: HeapStats {
                bytes_in_use: 0,
                allocations: 0,
                class_pages: [0; CLASS_COUNT],
                large_pages: 0,
                failed_allocations: 0,
            },
        }
    }

    /// Memory for `layout`, or null if the source is out of pages or the layout asks for
    /// more than page alignment on a large object.
    pub fn allocate(&mut self, layout: Layout) -> *mut u8 {
        let memory = match Placement::of(layout) {
            Some(Placement::Class(class)) => self.allocate_object(class),
            Some(Placement::Pages(count)) => self.source.allocate_pages(count).inspect(|_| {
                self.stats.large_pages += count;
            }),
            None => None,
        };
        match memory {
            Some(memory) => {
                self.stats.bytes_in_use += layout.size();
                self.stats.allocations += 1;
                memory.as_ptr()
            }
            None => {
                self.stats.failed_allocations += 1;
                ptr::null_mut()
            }
        }
    }

    /// Releases memory from `allocate`. Null is ignored.
    ///
    /// # Safety
    /// `ptr` is null or came from `allocate(layout)` (or `reallocate` to `layout`) on this
    /// heap with the same layout, was not released already, and is not used afterwards.
    pub unsafe fn deallocate(&mut self, ptr: *mut u8, layout: Layout) {
        let Some(memory) = NonNull::new(ptr) else {
            return;
        };
        match Placement::of(layout) {
            Some(Placement::Class(class)) => {
                // SAFETY: forwarded from the caller: a live object of this class.
                unsafe { self.free_object(memory.cast(), class) }
            }
            Some(Placement::Pages(count)) => {
                // SAFETY: the caller guarantees `ptr` came from `allocate` with this layout,
                // which took exactly `count` pages from the source, and is no longer used.
                unsafe { self.source.free_pages(memory, count) };
                self.stats.large_pages -= count;
            }
            // `allocate` never succeeds for such a layout, so the caller broke the contract.
            None => {
                debug_assert!(false, "deallocate of a layout never allocated");
                return;
            }
        }
        self.stats.bytes_in_use -= layout.size();
        self.stats.allocations -= 1;
    }

    /// Resizes an allocation to `new_size` bytes (same alignment), in place when the new
    /// size is served by the same class or the same number of pages. Returns null, leaving
    /// the old allocation alone, on failure.
    ///
    /// # Safety
    /// As `deallocate` for `ptr` and `layout`; `ptr` is not null; `new_size` is not zero.
    pub unsafe fn reallocate(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            self.stats.failed_allocations += 1;
            return ptr::null_mut();
        };
        if Placement::of(layout) == Placement::of(new_layout) {
            self.stats.bytes_in_use = self.stats.bytes_in_use - layout.size() + new_size;
            return ptr;
        }
        let new = self.allocate(new_layout);
        if !new.is_null() {
            // SAFETY: `ptr` is live for `layout.size()` bytes (caller), `new` for `new_size`;
            // they are distinct allocations so they do not overlap.
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: forwarded from the caller, and `ptr` is not used again here.
            unsafe { self.deallocate(ptr, layout) };
        }
        new
    }

    /// The current statistics.
    pub fn stats(&self) -> HeapStats {
        self.stats
    }

    /// An object of class `class`: from the first slab on its list, or a fresh slab.
    fn allocate_object(&mut self, class: usize) -> Option<NonNull<u8>> {
        let mut page = match self.partial[class] {
            Some(page) => page,
            None => self.refill(class)?,
        };
        // SAFETY: pages on the list are this class's, with a valid header (type invariant),
        // and nothing else refers to the header while the heap is borrowed mutably.
        let header = unsafe { page.as_mut() };
        let object = match header.free {
            Some(object) => {
                // SAFETY: the slab's freed objects are unused memory of it holding a
                // `FreeObject` written when they were linked in.
                header.free = unsafe { object.as_ref() }.next;
                object.cast::<u8>()
            }
            None => {
                let offset = header.fresh as usize;
                debug_assert!(offset < slab_end(class));
                header.fresh = next_object(class, offset) as u32;
                // SAFETY: `offset` is below the slab's size (it is on the list, with no
                // freed object), so the pointer stays inside the slab.
                unsafe { page.cast::<u8>().add(offset) }
            }
        };
        if header.in_use == 0 {
            // The slab kept empty is in use again.
            self.empty_kept[class] = false;
        }
        header.in_use += 1;
        if header.free.is_none() && header.fresh as usize >= slab_end(class) {
            // SAFETY: the slab is on the list of this class.
            unsafe { self.unlink(class, page) };
        }
        Some(object)
    }

    /// A fresh slab for class `class`, its objects free, first on the class's list.
    fn refill(&mut self, class: usize) -> Option<NonNull<SlabHeader>> {
        let page = self.source.allocate_aligned_pages(SLAB_PAGES[class])?;
        debug_assert!((page.as_ptr() as usize).is_multiple_of(slab_bytes(class)));
        let header = page.cast::<SlabHeader>();
        // SAFETY: the slab is writable and ours alone (`PageSource` contract), and starts
        // with `HEADER_BYTES` bytes no object uses, page-aligned.
        unsafe {
            header.write(SlabHeader {
                free: None,
                next: None,
                prev: None,
                in_use: 0,
                fresh: first_object(class) as u32,
            })
        };
        // SAFETY: a slab of this class not on any list.
        unsafe { self.link(class, header) };
        self.stats.class_pages[class] += SLAB_PAGES[class];
        Some(header)
    }

    /// Gives back an object of class `class`; its slab goes back to the source when none of
    /// its objects is in use, unless it is the class's only empty slab.
    ///
    /// # Safety
    /// `object` is a live object of this heap's class `class`, not used afterwards.
    unsafe fn free_object(&mut self, object: NonNull<FreeObject>, class: usize) {
        let address = object.as_ptr() as usize;
        let slab = address & !(slab_bytes(class) - 1);
        debug_assert!({
            let offset = address - slab;
            let first = if offset < PAGE_SIZE {
                first_object(class)
            } else {
                offset & !(PAGE_SIZE - 1)
            };
            offset >= first && (offset - first).is_multiple_of(SIZE_CLASSES[class])
        });
        let mut page = NonNull::new(slab as *mut SlabHeader).expect("an object's slab is not at 0");
        // SAFETY: the object lies in a slab of this class, which starts with its header
        // (type invariant); the heap is borrowed mutably, so nothing else refers to it.
        let header = unsafe { page.as_mut() };
        let was_full = header.free.is_none() && header.fresh as usize >= slab_end(class);
        // SAFETY: the caller gives the object back, so it is unused; it is at least 16 bytes
        // and aligned to its class size, enough for a `FreeObject`.
        unsafe { object.write(FreeObject { next: header.free }) };
        header.free = Some(object);
        header.in_use -= 1;
        let empty = header.in_use == 0;
        if was_full {
            // SAFETY: a page of this class that was on no list (it had no free object).
            unsafe { self.link(class, page) };
        }
        if !empty {
            return;
        }
        if !self.empty_kept[class] {
            self.empty_kept[class] = true;
            return;
        }
        // SAFETY: the slab is on the list: it has a free object.
        unsafe { self.unlink(class, page) };
        // SAFETY: none of the slab's objects is in use and it is on no list, so nothing
        // refers into it; it came from `allocate_aligned_pages` with this count.
        unsafe { self.source.free_pages(page.cast(), SLAB_PAGES[class]) };
        self.stats.class_pages[class] -= SLAB_PAGES[class];
    }

    /// Puts slab `page` first on class `class`'s list.
    ///
    /// # Safety
    /// `page` is a slab of that class with a valid header, on no list.
    unsafe fn link(&mut self, class: usize, mut page: NonNull<SlabHeader>) {
        let old = self.partial[class];
        // SAFETY: the caller's page; the heap's mutable borrow makes the access exclusive.
        unsafe {
            page.as_mut().prev = None;
            page.as_mut().next = old;
        }
        if let Some(mut old) = old {
            // SAFETY: pages on the list have valid headers (type invariant).
            unsafe { old.as_mut().prev = Some(page) };
        }
        self.partial[class] = Some(page);
    }

    /// Takes slab `page` off class `class`'s list.
    ///
    /// # Safety
    /// `page` is on that list.
    unsafe fn unlink(&mut self, class: usize, mut page: NonNull<SlabHeader>) {
        // SAFETY: pages on the list, and their neighbours, have valid headers.
        unsafe {
            let (prev, next) = (page.as_ref().prev, page.as_ref().next);
            match prev {
                Some(mut prev) => prev.as_mut().next = next,
                None => self.partial[class] = next,
            }
            if let Some(mut next) = next {
                next.as_mut().prev = prev;
            }
            page.as_mut().prev = None;
            page.as_mut().next = None;
        }
    }
}

/// The global allocator: a heap behind a spin lock, absent until `init`.
///
/// Allocation before `init` returns null. The lock is not interrupt-safe: interrupt handlers
/// must not allocate (the kernel is not preemptible, so nothing else can take it recursively).
pub struct LockedHeap<S: PageSource> {
    heap: spin::Mutex<Option<Heap<S>>>,
}

impl<S: PageSource> LockedHeap<S> {
    /// A heap with no memory, usable as a `static` before any page source exists.
    pub const fn empty() -> Self {
        Self {
            heap: spin::Mutex::new(None),
        }
    }

    /// Gives the heap its page source.
    ///
    /// # Panics
    /// If called twice: replacing the heap would orphan every live allocation.
    pub fn init(&self, source: S) {
        let mut heap = self.heap.lock();
        assert!(heap.is_none(), "kernel heap initialised twice");
        *heap = Some(Heap::new(source));
    }

    /// The heap's statistics, or `None` before `init`.
    pub fn stats(&self) -> Option<HeapStats> {
        self.heap.lock().as_ref().map(Heap::stats)
    }
}

// SAFETY: `Heap` returns memory that is valid for the layout, aligned, and not handed out
// again until deallocated; it never unwinds; the lock serialises all access to it.
unsafe impl<S: PageSource + Send> GlobalAlloc for LockedHeap<S> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.heap.lock().as_mut() {
            Some(heap) => heap.allocate(layout),
            None => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.heap.lock().as_mut() {
            // SAFETY: `GlobalAlloc::dealloc`'s contract: `ptr` came from `alloc` with this
            // layout, which (being non-null) was served by this heap.
            Some(heap) => unsafe { heap.deallocate(ptr, layout) },
            None => debug_assert!(false, "dealloc before the heap was initialised"),
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match self.heap.lock().as_mut() {
            // SAFETY: `GlobalAlloc::realloc`'s contract: `ptr` is a live allocation of this
            // heap with `layout`, and `new_size` is non-zero.
            Some(heap) => unsafe { heap.reallocate(ptr, layout, new_size) },
            None => ptr::null_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc, dealloc};
    use std::collections::HashMap;

    /// Pages from the host allocator, with a limit and a record of every call.
    #[derive(Default)]
    struct TestSource {
        /// Pages it may still hand out.
        budget: usize,
        /// Live runs: address → page count.
        live: HashMap<usize, usize>,
        allocate_calls: usize,
        free_calls: usize,
    }

    impl TestSource {
        fn with_budget(budget: usize) -> Self {
            let mut source = Self::default();
            source.budget = budget;
            source
        }

        /// Runs are aligned to their size (a power of two) or a page: what
        /// `allocate_aligned_pages` needs.
        fn layout(count: usize) -> std::alloc::Layout {
            let align = if count.is_power_of_two() {
                count * PAGE_SIZE
            } else {
                PAGE_SIZE
            };
            std::alloc::Layout::from_size_align(count * PAGE_SIZE, align).unwrap()
        }

        fn pages_live(&self) -> usize {
            self.live.values().sum()
        }
    }

    impl PageSource for TestSource {
        fn allocate_pages(&mut self, count: usize) -> Option<NonNull<u8>> {
            self.allocate_calls += 1;
            if count > self.budget {
                return None;
            }
            // SAFETY: the layout has a non-zero size (count ≥ 1 in every heap call).
            let page = NonNull::new(unsafe { alloc(Self::layout(count)) })?;
            // Fill with garbage so the heap cannot rely on zeroed pages.
            // SAFETY: freshly allocated, `count` pages long.
            unsafe { page.as_ptr().write_bytes(0xa5, count * PAGE_SIZE) };
            self.budget -= count;
            self.live.insert(page.as_ptr() as usize, count);
            Some(page)
        }

        fn allocate_aligned_pages(&mut self, count: usize) -> Option<NonNull<u8>> {
            // Host allocations of a layout aligned to the run's size.
            let page = self.allocate_pages(count)?;
            assert!((page.as_ptr() as usize).is_multiple_of(count * PAGE_SIZE));
            Some(page)
        }

        unsafe fn free_pages(&mut self, ptr: NonNull<u8>, count: usize) {
            self.free_calls += 1;
            assert_eq!(self.live.remove(&(ptr.as_ptr() as usize)), Some(count));
            self.budget += count;
            // SAFETY: allocated in `allocate_pages` with this count (checked above).
            unsafe { dealloc(ptr.as_ptr(), Self::layout(count)) };
        }
    }

    impl Drop for TestSource {
        fn drop(&mut self) {
            for (&address, &count) in &self.live {
                // SAFETY: every live run was allocated with this layout and the heap that
                // used it is being dropped.
                unsafe { dealloc(address as *mut u8, Self::layout(count)) };
            }
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn placement_picks_smallest_class_covering_size_and_alignment() {
        let class = |size, align| Placement::of(layout(size, align));
        let index = |size| SIZE_CLASSES.iter().position(|&s| s == size).unwrap();
        assert!(class(0, 1) == Some(Placement::Class(0)));
        assert!(class(16, 8) == Some(Placement::Class(0)));
        assert!(class(17, 1) == Some(Placement::Class(1)));
        assert!(class(33, 8) == Some(Placement::Class(index(48))));
        // 48-byte objects are only 16-aligned.
        assert!(class(33, 32) == Some(Placement::Class(index(64))));
        assert!(class(8, 64) == Some(Placement::Class(index(64))));
        assert!(class(296, 8) == Some(Placement::Class(index(320))));
        assert!(class(296, 128) == Some(Placement::Class(index(384))));
        assert!(class(1025, 8) == Some(Placement::Class(index(1360))));
        assert!(class(1361, 8) == Some(Placement::Class(index(2048))));
        assert!(class(600, 8) == Some(Placement::Class(index(816))));
        assert!(class(2048, 2048) == Some(Placement::Class(index(2048))));
        assert!(class(16, 2048) == Some(Placement::Class(index(2048))));
        assert!(class(2049, 1) == Some(Placement::Pages(1)));
        assert!(class(1, 4096) == Some(Placement::Pages(1)));
        assert!(class(4097, 16) == Some(Placement::Pages(2)));
        assert!(class(1, 8192).is_none());
    }

    /// A live allocation in the tests: where, how big, and the byte it was filled with.
    struct Block {
        ptr: *mut u8,
        layout: Layout,
        fill: u8,
    }

    fn fill(block: &Block) {
        // SAFETY: the block is live and `layout.size()` bytes long.
        unsafe { block.ptr.write_bytes(block.fill, block.layout.size()) };
    }

    fn check(block: &Block) {
        // SAFETY: the block is live and `layout.size()` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(block.ptr, block.layout.size()) };
        assert!(
            bytes.iter().all(|&b| b == block.fill),
            "block {:p}",
            block.ptr
        );
    }

    #[test]
    fn many_sizes_and_alignments_do_not_overlap() {
        let mut heap = Heap::new(TestSource::with_budget(10_000));
        let mut blocks = Vec::new();
        let mut fill_byte = 0u8;
        for round in 0..4 {
            for size in [
                1, 7, 16, 24, 33, 100, 128, 200, 511, 1000, 2048, 3000, 5000, 9000,
            ] {
                for align in [1, 2, 8, 16, 64, 256, 4096] {
                    let layout = layout(size, align);
                    let ptr = heap.allocate(layout);
                    assert!(!ptr.is_null());
                    assert_eq!(ptr as usize % align, 0);
                    fill_byte = fill_byte.wrapping_add(1);
                    let block = Block {
                        ptr,
                        layout,
                        fill: fill_byte,
                    };
                    fill(&block);
                    blocks.push(block);
                }
            }
            // Free every other block and check the rest survived everyone's writes.
            let mut index = 0;
            blocks.retain(|block| {
                index += 1;
                check(block);
                if (index + round) % 2 == 0 {
                    // SAFETY: allocated above with this layout and dropped from the list.
                    unsafe { heap.deallocate(block.ptr, block.layout) };
                    false
                } else {
                    true
                }
            });
        }
        let mut ranges: Vec<_> = blocks
            .iter()
            .map(|b| (b.ptr as usize, b.ptr as usize + b.layout.size()))
            .collect();
        ranges.sort();
        assert!(ranges.windows(2).all(|pair| pair[0].1 <= pair[1].0));
        let expected: usize = blocks.iter().map(|b| b.layout.size()).sum();
        assert_eq!(heap.stats().bytes_in_use, expected);
        assert_eq!(heap.stats().allocations, blocks.len());
        for block in blocks.drain(..) {
            check(&block);
            // SAFETY: allocated above with this layout.
            unsafe { heap.deallocate(block.ptr, block.layout) };
        }
        assert_eq!(heap.stats().bytes_in_use, 0);
        assert_eq!(heap.stats().large_pages, 0);
        // Every paged class is down to the one page it keeps.
        assert!((0..CLASS_COUNT).all(|c| heap.stats().class_pages[c] <= SLAB_PAGES[c]));
    }

    #[test]
    fn freed_objects_are_reused() {
        let mut heap = Heap::new(TestSource::with_budget(100));
        let layout = layout(40, 8);
        let class = 2; // 48 bytes
        let first = heap.allocate(layout);
        let second = heap.allocate(layout);
        assert_eq!(second as usize, first as usize + 48);
        // The page's header sits before its first object.
        assert_eq!(first as usize % PAGE_SIZE, 32);
        // SAFETY: allocated above with this layout.
        unsafe { heap.deallocate(first, layout) };
        assert_eq!(heap.allocate(layout), first);
        // 84 objects per page: the class takes a second page only after 84 allocations.
        assert_eq!(objects_per_slab(class), 84);
        for _ in 2..84 {
            assert!(!heap.allocate(layout).is_null());
        }
        assert_eq!(heap.stats().class_pages[class], 1);
        assert!(!heap.allocate(layout).is_null());
        assert_eq!(heap.stats().class_pages[class], 2);
        assert_eq!(heap.stats().pages_held(), 2);
    }

    #[test]
    fn objects_of_a_class_not_a_power_of_two_stay_inside_their_slab_and_aligned() {
        let mut heap = Heap::new(TestSource::with_budget(100));
        let class = 8; // 320 bytes, 64-aligned, two pages a slab
        let layout = layout(296, 64);
        let per_slab = objects_per_slab(class);
        // Twelve on the first page after the header, twelve on the second: none crosses.
        assert_eq!(per_slab, 24);
        let objects: Vec<_> = (0..per_slab + 1).map(|_| heap.allocate(layout)).collect();
        let slab = objects[0] as usize & !(2 * PAGE_SIZE - 1);
        for (i, &object) in objects[..per_slab].iter().enumerate() {
            let expected = if i < 12 {
                64 + i * 320
            } else {
                PAGE_SIZE + (i - 12) * 320
            };
            assert_eq!(object as usize, slab + expected);
        }
        // The next one starts a second slab.
        assert_eq!(heap.stats().class_pages[class], 4);
        assert_eq!(objects[per_slab] as usize % (2 * PAGE_SIZE), 64);
        for object in objects {
            // SAFETY: allocated above with this layout.
            unsafe { heap.deallocate(object, layout) };
        }
        assert_eq!(heap.stats().class_pages[class], 2);
    }

    #[test]
    fn no_object_crosses_a_page() {
        let mut heap = Heap::new(TestSource::with_budget(1_000));
        for (class, &size) in SIZE_CLASSES.iter().enumerate() {
            let layout = layout(size, 8);
            let objects: Vec<_> = (0..2 * objects_per_slab(class))
                .map(|_| heap.allocate(layout))
                .collect();
            for &object in &objects {
                let start = object as usize;
                assert_eq!(
                    start / PAGE_SIZE,
                    (start + size - 1) / PAGE_SIZE,
                    "class {size}"
                );
            }
            for object in objects {
                // SAFETY: allocated above with this layout.
                unsafe { heap.deallocate(object, layout) };
            }
        }
    }

    #[test]
    fn empty_pages_go_back_to_the_source_but_one_per_class() {
        let mut heap = Heap::new(TestSource::with_budget(2000));
        for (class, size) in SIZE_CLASSES.iter().copied().enumerate() {
            let layout = layout(size, 8);
            let count = objects_per_slab(class) * 10 + 1;
            let mut objects: Vec<*mut u8> = (0..count).map(|_| heap.allocate(layout)).collect();
            assert!(objects.iter().all(|p| !p.is_null()));
            assert_eq!(
                heap.stats().class_pages[class],
                11 * SLAB_PAGES[class],
                "class {size}"
            );
            // Freed in an order that empties pages in the middle first.
            objects.sort_by_key(|&p| (p as usize / slab_bytes(class)) % 3);
            for &object in &objects {
                // SAFETY: allocated above with this layout, freed once.
                unsafe { heap.deallocate(object, layout) };
            }
            assert_eq!(
                heap.stats().class_pages[class],
                SLAB_PAGES[class],
                "class {size}"
            );
            // The kept page serves the next allocation without the source.
            let calls = heap.source.allocate_calls;
            let again = heap.allocate(layout);
            assert_eq!(heap.source.allocate_calls, calls);
            // SAFETY: allocated above with this layout.
            unsafe { heap.deallocate(again, layout) };
        }
        assert_eq!(heap.source.pages_live(), SLAB_PAGES.iter().sum::<usize>());
        assert_eq!(heap.stats().bytes_in_use, 0);
    }

    #[test]
    fn one_object_made_and_freed_over_and_over_keeps_its_page() {
        let mut heap = Heap::new(TestSource::with_budget(10));
        let layout = layout(100, 8);
        for _ in 0..1000 {
            let object = heap.allocate(layout);
            assert!(!object.is_null());
            // SAFETY: allocated just above with this layout.
            unsafe { heap.deallocate(object, layout) };
        }
        assert_eq!(heap.source.allocate_calls, 1);
        assert_eq!(heap.source.free_calls, 0);
        // A second page filled and emptied goes back; the first stays.
        let class = 5; // 128 bytes
        let objects: Vec<_> = (0..objects_per_slab(class) + 1)
            .map(|_| heap.allocate(layout))
            .collect();
        assert_eq!(heap.stats().class_pages[class], 2);
        for object in objects {
            // SAFETY: allocated above with this layout.
            unsafe { heap.deallocate(object, layout) };
        }
        assert_eq!(heap.stats().class_pages[class], 1);
        assert_eq!(heap.source.free_calls, 1);
    }

    #[test]
    fn a_page_with_a_freed_object_serves_before_a_new_page() {
        let mut heap = Heap::new(TestSource::with_budget(10));
        let layout = layout(512, 8);
        let class = 10; // 512 bytes, two pages a slab
        let per_slab = objects_per_slab(class);
        assert_eq!(per_slab, 15);
        let objects: Vec<_> = (0..2 * per_slab).map(|_| heap.allocate(layout)).collect();
        assert_eq!(heap.stats().class_pages[class], 4);
        // SAFETY: allocated above with this layout.
        unsafe { heap.deallocate(objects[3], layout) };
        assert_eq!(heap.allocate(layout), objects[3]);
        assert_eq!(heap.stats().class_pages[class], 4);
    }

    #[test]
    fn large_allocations_go_back_to_the_source() {
        let mut heap = Heap::new(TestSource::with_budget(100));
        let layout = layout(3 * PAGE_SIZE + 1, 4096);
        let ptr = heap.allocate(layout);
        assert!(!ptr.is_null());
        assert_eq!(heap.stats().large_pages, 4);
        assert_eq!(heap.source.pages_live(), 4);
        // SAFETY: allocated above with this layout.
        unsafe { heap.deallocate(ptr, layout) };
        assert_eq!(heap.source.free_calls, 1);
        assert_eq!(heap.source.pages_live(), 0);
        assert_eq!(heap.stats().large_pages, 0);
        assert_eq!(heap.stats(), HeapStats::default());
    }

    #[test]
    fn exhausted_source_gives_null() {
        let mut heap = Heap::new(TestSource::with_budget(3));
        assert!(heap.allocate(layout(4 * PAGE_SIZE, 8)).is_null());
        assert!(heap.allocate(layout(1, 8192)).is_null());
        let big = heap.allocate(layout(2 * PAGE_SIZE, 8));
        assert!(!big.is_null());
        // One page left: the 256-byte class gets its 15 objects from it; the 320-byte class
        // needs a slab of 2 pages, the 2048-byte class one of 8.
        let objects: Vec<_> = (0..15).map(|_| heap.allocate(layout(250, 8))).collect();
        assert!(objects.iter().all(|p| !p.is_null()));
        assert!(heap.allocate(layout(300, 8)).is_null());
        assert!(heap.allocate(layout(2000, 8)).is_null());
        assert!(heap.allocate(layout(16, 8)).is_null());
        let stats = heap.stats();
        assert_eq!(stats.failed_allocations, 5);
        assert_eq!(stats.allocations, 16);
        assert_eq!(stats.bytes_in_use, 2 * PAGE_SIZE + 15 * 250);
        // Freeing an object lets the same class allocate again without the source.
        // SAFETY: allocated above with this layout.
        unsafe { heap.deallocate(objects[2], layout(250, 8)) };
        assert_eq!(heap.allocate(layout(200, 8)), objects[2]);
    }

    #[test]
    fn reallocate_in_place_or_moves_contents() {
        let mut heap = Heap::new(TestSource::with_budget(100));
        let old = layout(20, 4);
        let ptr = heap.allocate(old);
        // SAFETY: 20 live bytes.
        unsafe { ptr.write_bytes(7, 20) };
        // SAFETY: live allocation with `old`.
        let same = unsafe { heap.reallocate(ptr, old, 30) };
        assert_eq!(same, ptr);
        assert_eq!(heap.stats().bytes_in_use, 30);
        // SAFETY: live allocation, now of 30 bytes.
        let moved = unsafe { heap.reallocate(same, layout(30, 4), 5000) };
        assert_ne!(moved, ptr);
        // SAFETY: `moved` holds 5000 bytes, the first 20 copied.
        assert!(unsafe { std::slice::from_raw_parts(moved, 20) }
            .iter()
            .all(|&b| b == 7));
        assert_eq!(heap.stats().bytes_in_use, 5000);
        assert_eq!(heap.stats().large_pages, 2);
        // SAFETY: live allocation of 5000 bytes.
        unsafe { heap.deallocate(moved, layout(5000, 4)) };
        assert_eq!(heap.stats().allocations, 0);
    }

    #[test]
    fn locked_heap_is_null_until_init() {
        let heap: LockedHeap<TestSource> = LockedHeap::empty();
        assert_eq!(heap.stats(), None);
        // SAFETY: a non-zero-size layout.
        assert!(unsafe { heap.alloc(layout(8, 8)) }.is_null());
        heap.init(TestSource::with_budget(10));
        // SAFETY: a non-zero-size layout.
        let ptr = unsafe { heap.alloc(layout(8, 8)) };
        assert!(!ptr.is_null());
        // SAFETY: allocated above with this layout; new size non-zero.
        let ptr = unsafe { heap.realloc(ptr, layout(8, 8), 100) };
        assert!(!ptr.is_null());
        let stats = heap.stats().unwrap();
        assert_eq!((stats.allocations, stats.bytes_in_use), (1, 100));
        // SAFETY: allocated above, now 100 bytes.
        unsafe { heap.dealloc(ptr, layout(100, 8)) };
        assert_eq!(heap.stats().unwrap().allocations, 0);
    }

    #[test]
    #[should_panic(expected = "initialised twice")]
    fn locked_heap_init_twice_panics() {
        let heap: LockedHeap<TestSource> = LockedHeap::empty();
        heap.init(TestSource::default());
        heap.init(TestSource::default());
    }
}

//! The user heap: first-fit allocators (`linked_list_allocator`) over a fixed arena in `.bss`
//! and, once that is full, over a large region reserved with `vm_allocate`.
//!
//! Most programs never leave the [`ARENA_SIZE`] arena. A program that needs more (a pager
//! keeping what the kernel pages out, say) gets a second heap: at the first allocation the
//! arena cannot satisfy, the runtime reserves [`REGION_SIZE`] bytes of virtual memory
//! anywhere in the task's space. Reserving costs nothing until touched (the kernel fills
//! pages with zeros on demand), so the heap grows as far as it is used. Running out of both
//! (or failing to reserve) is an allocation failure, never a panic here: `try_reserve` and
//! its kind report it; other allocations turn it into a panic of their own.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;
use spin::{Mutex, MutexGuard};

use crate::abi::syscall::VM_ANYWHERE;
use crate::sys;

/// Size of the heap arena in `.bss`.
pub const ARENA_SIZE: usize = 256 * 1024;

/// Virtual memory the heap reserves when the arena is full: 1 GiB.
pub const REGION_SIZE: usize = 1 << 30;

/// The arena's bytes. Only the heap touches them, through the pointer it is given once. Not
/// page-aligned: the arena then starts right after the program's small statics, so a small
/// program's first heap blocks share their page.
#[repr(align(16))]
struct Arena(UnsafeCell<[MaybeUninit<u8>; ARENA_SIZE]>);

// SAFETY: the arena is handed to `HEAPS` exactly once (under its lock) and never accessed
// directly afterwards; `HEAPS`'s mutex serialises all use.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([MaybeUninit::uninit(); ARENA_SIZE]));

/// The two heaps: the arena's (empty, size 0, until first locked) and the reserved
/// region's (empty until the arena first fails an allocation; `region_tried` then says the
/// reservation was attempted, so a failed one is not retried on every allocation).
struct Heaps {
    arena: Heap,
    region: Heap,
    region_tried: bool,
}

static HEAPS: Mutex<Heaps> = Mutex::new(Heaps {
    arena: Heap::empty(),
    region: Heap::empty(),
    region_tried: false,
});

impl Heaps {
    /// A block for `layout`: from the arena, else from the region (reserved now if need be).
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        if let Ok(block) = self.arena.allocate_first_fit(layout) {
            return Some(block);
        }
        if !self.region_tried {
            self.region_tried = true;
            if let Ok(base) = sys::vm_allocate(0, REGION_SIZE as u64, VM_ANYWHERE) {
                // The kernel just mapped `REGION_SIZE` fresh bytes at `base` for this task.
                // SAFETY: nothing else knows the region, and the region heap is empty: it is
                // handed over this once.
                unsafe { self.region.init(base as *mut u8, REGION_SIZE) };
            }
        }
        self.region.allocate_first_fit(layout).ok()
    }

    /// Whether `block` lies in the arena.
    fn in_arena(&self, block: NonNull<u8>) -> bool {
        let address = block.as_ptr() as usize;
        let bottom = self.arena.bottom() as usize;
        bottom <= address && address < bottom + self.arena.size()
    }
}

/// Locks the heaps, giving the arena its memory first if that has not happened yet.
fn lock() -> MutexGuard<'static, Heaps> {
    let mut heaps = HEAPS.lock();
    if heaps.arena.size() == 0 {
        // SAFETY: the arena heap is empty, so (under the lock) the static arena, writable
        // through its UnsafeCell and used by nothing else, is handed over this once.
        unsafe { heaps.arena.init(ARENA.0.get().cast::<u8>(), ARENA_SIZE) };
    }
    heaps
}

/// Bytes of the heap in use and free, arena and region together: (used, free). The region
/// counts only once reserved.
pub fn usage() -> (usize, usize) {
    let heaps = lock();
    (
        heaps.arena.used() + heaps.region.used(),
        heaps.arena.free() + heaps.region.free(),
    )
}

/// The global allocator [`program!`](crate::program) installs; forwards to the heaps.
pub struct GlobalHeap;

// SAFETY: blocks come from `linked_list_allocator`, which returns blocks of at least the
// layout's size and alignment that do not overlap any live block of the same heap; the two
// heaps manage disjoint memory, and all access is serialised by `HEAPS`'s lock.
unsafe impl GlobalAlloc for GlobalHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        lock()
            .allocate(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(block) = NonNull::new(ptr) else {
            return;
        };
        let mut heaps = lock();
        if heaps.in_arena(block) {
            // SAFETY: the caller passes a block this allocator returned with this layout
            // (GlobalAlloc's contract); it lies in the arena, so the arena heap gave it.
            unsafe { heaps.arena.deallocate(block, layout) };
        } else {
            // SAFETY: as above; every block outside the arena came from the region heap.
            unsafe { heaps.region.deallocate(block, layout) };
        }
    }
}

/// Touches `bytes` of heap, then frees them to the allocator, which keeps the pages: a server
/// that must not need memory later (a pager, when memory is short) takes it at start-up.
/// `false` if the heap could not give that much.
pub fn prefault(bytes: usize) -> bool {
    let mut block: alloc::vec::Vec<u8> = alloc::vec::Vec::new();
    if block.try_reserve_exact(bytes).is_err() {
        return false;
    }
    let base = block.as_mut_ptr();
    for offset in (0..bytes).step_by(crate::abi::syscall::PAGE_SIZE as usize) {
        // SAFETY: `offset` is inside the block's reserved capacity; writing a byte there
        // (volatile, so it happens) faults the page in.
        unsafe { core::ptr::write_volatile(base.add(offset), 0) };
    }
    true
}

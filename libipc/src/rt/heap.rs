//! The user heap: a first-fit allocator (`linked_list_allocator`) over a fixed arena in `.bss`.
//!
//! There is no `vm_allocate` system call yet, so the heap cannot grow: [`ARENA_SIZE`] bytes is
//! all a program gets, and running out is an allocation failure (a panic). Once `vm_allocate`
//! exists the arena becomes memory the runtime asks the kernel for, growing on demand.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;
use spin::{Mutex, MutexGuard};

/// Size of the heap arena.
pub const ARENA_SIZE: usize = 256 * 1024;

/// The arena's bytes. Only the heap touches them, through the pointer it is given once.
#[repr(align(4096))]
struct Arena(UnsafeCell<[MaybeUninit<u8>; ARENA_SIZE]>);

// SAFETY: the arena is handed to `HEAP` exactly once (under its lock) and never accessed
// directly afterwards; `HEAP`'s mutex serialises all use.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([MaybeUninit::uninit(); ARENA_SIZE]));

/// The allocator state; empty (size 0) until [`init`].
static HEAP: Mutex<Heap> = Mutex::new(Heap::empty());

/// Locks the heap, giving it the arena first if that has not happened yet.
fn lock() -> MutexGuard<'static, Heap> {
    let mut heap = HEAP.lock();
    if heap.size() == 0 {
        // SAFETY: the heap is empty, so (under the lock) the static arena, writable through its
        // UnsafeCell and used by nothing else, is handed over this once.
        unsafe { heap.init(ARENA.0.get().cast::<u8>(), ARENA_SIZE) };
    }
    heap
}

/// Sets up the heap (the runtime calls this before the program's main).
pub fn init() {
    drop(lock());
}

/// Bytes of the arena in use and free: (used, free).
pub fn usage() -> (usize, usize) {
    let heap = lock();
    (heap.used(), heap.free())
}

/// The global allocator [`program!`](crate::program) installs; forwards to the arena heap.
pub struct GlobalHeap;

// SAFETY: blocks come from `linked_list_allocator`, which returns blocks of at least the
// layout's size and alignment that do not overlap any live block; all access is serialised
// by `HEAP`'s lock.
unsafe impl GlobalAlloc for GlobalHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        lock()
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: the caller passes a block this allocator returned with this layout
            // (GlobalAlloc's contract), so it came from `allocate_first_fit` on this heap.
            unsafe { lock().deallocate(ptr, layout) };
        }
    }
}

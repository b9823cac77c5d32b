//! What `virtio-drivers` needs of the kernel: DMA memory (contiguous frames seen through the
//! direct map), device registers mapped uncached, and buffers' physical addresses.
//!
//! Every buffer the kernel hands a device lies in the direct map (the kernel heap, frames),
//! so sharing one is a subtraction; there is no IOMMU and no bounce buffer.

use crate::vm::kernel_space;
use core::ptr::NonNull;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

pub struct KernelHal;

// SAFETY: `dma_alloc` returns zeroed, physically contiguous, page-aligned frames that nothing
// else uses until `dma_dealloc`; `share` returns the physical address of a direct-mapped
// buffer, which is where the device must access it; `mmio_phys_to_virt` maps registers
// uncached.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(phys) = kernel_space::allocate_device_run(pages, 4096) else {
            return (0, NonNull::dangling());
        };
        let virt = kernel_space::phys_to_virt(phys) as *mut u8;
        // SAFETY: the `pages` frames just allocated are direct-mapped and ours alone.
        unsafe { core::ptr::write_bytes(virt, 0, pages * 4096) };
        (phys, NonNull::new(virt).expect("direct-mapped address"))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        match kernel_space::free_device_run(paddr, pages) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let virt = kernel_space::map_device_memory(paddr, size as u64);
        NonNull::new(virt as *mut u8).expect("direct-mapped address")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        kernel_space::direct_map_phys(buffer.as_ptr() as *mut u8 as u64)
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

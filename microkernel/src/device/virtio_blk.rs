//! The virtio-blk driver: requests of whole pages, each one device operation however the
//! pages lie in physical memory (a descriptor per page, through indirect descriptors), many
//! in flight, completions taken from the used ring when the device interrupts.
//!
//! The transport and the ring are `virtio-drivers`'; the request format is the driver's own,
//! because the crate's block driver takes one contiguous buffer per request.

use super::hal::KernelHal;
use super::pci::Ecam;
use alloc::vec::Vec;
use bitflags::bitflags;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::Hal;

/// Requests the driver keeps in flight at once (each has a slot for its header and status,
/// and takes one descriptor of the ring: its chain is indirect).
pub const MAX_IN_FLIGHT: usize = 32;

/// Descriptors in the ring. Larger than [`MAX_IN_FLIGHT`] because a chain may not be longer
/// than the queue even when it is indirect (virtio 1.1, 2.7.5.3.1; `virtio-drivers` refuses
/// it): a request of [`MAX_PAGES`] pages is a chain of `MAX_PAGES + 2` descriptors.
pub const QUEUE_SIZE: usize = 128;

/// Bytes in a sector, the unit of a request's position.
pub const SECTOR_SIZE: u64 = 512;

/// Pages one request may carry (fewer if the device allows fewer segments: its `seg_max`,
/// which does not count the header and the status).
pub const MAX_PAGES: usize = 64;

const _: () = assert!(MAX_PAGES + 2 <= QUEUE_SIZE && MAX_IN_FLIGHT <= 32);

const PAGE_SIZE: usize = 4096;

/// The common configuration's offsets (virtio 1.x, 4.1.4.3) the driver writes itself: the
/// MSI-X vectors, which the transport does not set.
const COMMON_MSIX_CONFIG: u64 = 0x10;
const COMMON_QUEUE_SELECT: u64 = 0x16;
const COMMON_QUEUE_MSIX_VECTOR: u64 = 0x1a;
/// "No vector": the device raises no interrupt for that source.
const NO_VECTOR: u16 = 0xffff;

bitflags! {
    /// The feature bits the driver negotiates.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const SEG_MAX = 1 << 2;
        const READ_ONLY = 1 << 5;
        const RING_INDIRECT_DESC = 1 << 28;
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// A request's header (virtio 5.2.6): its type and first sector.
#[repr(C)]
struct Header {
    kind: u32,
    reserved: u32,
    sector: u64,
}

const KIND_READ: u32 = 0;
const KIND_WRITE: u32 = 1;

/// Why the disk could not be set up.
#[derive(Debug)]
pub enum SetupError {
    Transport,
    Queue,
    NoIndirectDescriptors,
}

/// A request in flight (kept in its slot, where its header and status live): its ring token
/// and the frames it moves.
struct InFlight {
    write: bool,
    token: u16,
    frames: Vec<u64>,
    request: usize,
}

/// What the device did with a request.
pub struct Done {
    /// The number the request was submitted with.
    pub request: usize,
    pub ok: bool,
    pub write: bool,
    pub frames: Vec<u64>,
}

pub struct VirtioBlk {
    transport: PciTransport,
    queue: VirtQueue<KernelHal, QUEUE_SIZE>,
    capacity_sectors: u64,
    read_only: bool,
    /// Pages one request may carry: [`MAX_PAGES`], or fewer if the device says so.
    max_pages: usize,
    /// One DMA page: the headers of the requests (16 bytes a slot), then their status bytes.
    dma_virt: u64,
    /// Slots whose header and status a request in flight uses, one bit each.
    slots_used: u32,
    /// Requests in flight, by slot.
    in_flight: [Option<InFlight>; MAX_IN_FLIGHT],
    /// Whether the device interrupts through MSI-X (else completions are polled).
    interrupts: bool,
}

impl VirtioBlk {
    /// Sets up the virtio-blk device at `function`: features, the ring, and (with `msix`,
    /// when the device has MSI-X routed) its queue's interrupt on MSI-X entry 0.
    pub fn new(
        ecam: &mut Ecam,
        function: DeviceFunction,
        msix: bool,
    ) -> Result<VirtioBlk, SetupError> {
        ecam.enable_bus_master(function);
        // SAFETY: the clone is used by the transport's set-up alone (capabilities, BARs),
        // on this CPU, before anyone else touches the function's configuration.
        let mut root = PciRoot::new(unsafe {
            <Ecam as virtio_drivers::transport::pci::bus::ConfigurationAccess>::unsafe_clone(ecam)
        });
        let mut transport = PciTransport::new::<KernelHal, Ecam>(&mut root, function)
            .map_err(|_| SetupError::Transport)?;
        if transport.device_type() != DeviceType::Block {
            return Err(SetupError::Transport);
        }
        let wanted = Features::READ_ONLY
            | Features::SEG_MAX
            | Features::RING_INDIRECT_DESC
            | Features::RING_EVENT_IDX
            | Features::VERSION_1;
        let features = transport.begin_init(wanted);
        if !features.contains(Features::RING_INDIRECT_DESC) {
            return Err(SetupError::NoIndirectDescriptors);
        }
        let low: u32 = transport
            .read_config_space(0)
            .map_err(|_| SetupError::Transport)?;
        let high: u32 = transport
            .read_config_space(4)
            .map_err(|_| SetupError::Transport)?;
        let seg_max: u32 = if features.contains(Features::SEG_MAX) {
            transport
                .read_config_space(12)
                .map_err(|_| SetupError::Transport)?
        } else {
            u32::MAX
        };
        let queue = VirtQueue::new(
            &mut transport,
            0,
            true,
            features.contains(Features::RING_EVENT_IDX),
        )
        .map_err(|_| SetupError::Queue)?;
        let interrupts = msix
            && common_config(ecam, function).is_some_and(|common| {
                // SAFETY: `common` maps the device's common configuration (found by
                // `common_config`); these are its MSI-X vector fields.
                unsafe {
                    write16(common + COMMON_MSIX_CONFIG, NO_VECTOR);
                    write16(common + COMMON_QUEUE_SELECT, 0);
                    write16(common + COMMON_QUEUE_MSIX_VECTOR, 0);
                    read16(common + COMMON_QUEUE_MSIX_VECTOR) == 0
                }
            });
        transport.finish_init();
        let (dma_phys, dma_virt) = KernelHal::dma_alloc(1, virtio_drivers::BufferDirection::Both);
        if dma_phys == 0 {
            return Err(SetupError::Queue);
        }
        Ok(VirtioBlk {
            transport,
            queue,
            capacity_sectors: u64::from(low) | (u64::from(high) << 32),
            read_only: features.contains(Features::READ_ONLY),
            max_pages: MAX_PAGES.min(seg_max.max(1) as usize),
            dma_virt: dma_virt.as_ptr() as u64,
            slots_used: 0,
            in_flight: core::array::from_fn(|_| None),
            interrupts,
        })
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_sectors * SECTOR_SIZE
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn interrupts(&self) -> bool {
        self.interrupts
    }

    /// Pages one request may carry.
    pub fn max_pages(&self) -> usize {
        self.max_pages
    }

    /// Whether another request may go in flight.
    pub fn has_room(&self) -> bool {
        self.slots_used.count_ones() < MAX_IN_FLIGHT as u32
    }

    pub fn in_flight(&self) -> usize {
        self.slots_used.count_ones() as usize
    }

    /// Starts moving `frames` (whole pages, in order) to or from the disk from `sector`;
    /// `request` comes back with it in [`Done`].
    /// `Err` gives the frames back when the ring is full, the kernel heap is exhausted or the
    /// request is malformed (the caller has checked the range).
    pub fn submit(
        &mut self,
        write: bool,
        sector: u64,
        frames: Vec<u64>,
        request: usize,
    ) -> Result<(), Vec<u64>> {
        if frames.is_empty() || frames.len() > self.max_pages || (write && self.read_only) {
            return Err(frames);
        }
        let slot = (!self.slots_used).trailing_zeros() as usize;
        if slot >= MAX_IN_FLIGHT {
            return Err(frames);
        }
        let header = Header {
            kind: if write { KIND_WRITE } else { KIND_READ },
            reserved: 0,
            sector,
        };
        // SAFETY: slot `slot` is free: its header and status are this request's alone.
        unsafe {
            core::ptr::write_volatile(self.header(slot), header);
            core::ptr::write_volatile(self.status(slot), 0xff);
        }
        // SAFETY: the slices are the slot's header and status and the caller's frames,
        // memory nobody else touches until the request is popped in `complete`.
        let token = unsafe { self.on_ring(slot, &frames, write, RingOp::Add) };
        let token = match token {
            Some(Ok(token)) => token as u16,
            _ => return Err(frames),
        };
        self.slots_used |= 1 << slot;
        self.in_flight[slot] = Some(InFlight {
            write,
            token,
            frames,
            request,
        });
        if self.queue.should_notify() {
            self.transport.notify(0);
        }
        Ok(())
    }

    /// Takes the requests the device has finished.
    pub fn complete(&mut self, mut done: impl FnMut(Done)) {
        if !self.interrupts {
            // Polled (no MSI-X): reading the ISR acknowledges a legacy interrupt.
            let _ = self.transport.ack_interrupt();
        }
        while let Some(token) = self.queue.peek_used() {
            let slot = self
                .in_flight
                .iter()
                .position(|r| r.as_ref().is_some_and(|r| r.token == token));
            let Some((slot, request)) = slot.and_then(|s| Some((s, self.in_flight[s].take()?)))
            else {
                log::error!("virtio-blk: the device finished request {token}, which is not ours");
                return;
            };
            // SAFETY: the same buffers `submit` added for this token.
            let popped =
                unsafe { self.on_ring(slot, &request.frames, request.write, RingOp::Pop(token)) };
            if popped.is_none() {
                // No kernel memory for the lists to pop it: it stays finished in the ring and
                // in flight here, and is taken at the next interrupt or timer tick.
                self.in_flight[slot] = Some(request);
                crate::vm::kernel_space::want_device_work();
                return;
            }
            // SAFETY: the slot's status byte, which the device wrote before it put the
            // request in the used ring.
            let status = unsafe { core::ptr::read_volatile(self.status(slot)) };
            self.slots_used &= !(1 << slot);
            done(Done {
                request: request.request,
                ok: matches!(popped, Some(Ok(_))) && status == 0,
                write: request.write,
                frames: request.frames,
            });
        }
    }

    fn header(&self, slot: usize) -> *mut Header {
        (self.dma_virt + slot as u64 * 16) as *mut Header
    }

    fn status(&self, slot: usize) -> *mut u8 {
        (self.dma_virt + (MAX_IN_FLIGHT * 16 + slot) as u64) as *mut u8
    }

    /// Adds a request to the ring (the result: its token) or pops the finished request
    /// `token` (the result: the bytes the device wrote), given its device-readable buffers
    /// (the header and, for a write, the pages) and device-writable ones (for a read the
    /// pages, then the status). `None` when the kernel heap has no room for the lists.
    ///
    /// # Safety
    /// The slot's header and status and the frames must be memory no one else uses while the
    /// device may (from the add until the pop), and a pop must name the buffers of the add
    /// that returned `token`.
    unsafe fn on_ring(
        &mut self,
        slot: usize,
        frames: &[u64],
        write: bool,
        op: RingOp,
    ) -> Option<virtio_drivers::Result<u32>> {
        let mut inputs: Vec<&[u8]> = Vec::new();
        let mut outputs: Vec<&mut [u8]> = Vec::new();
        inputs.try_reserve_exact(1 + frames.len()).ok()?;
        outputs.try_reserve_exact(1 + frames.len()).ok()?;
        if matches!(op, RingOp::Add) {
            // `VirtQueue::add` allocates the indirect descriptor list (16 bytes a buffer) on
            // the heap and unwraps the result: with the heap out of frames the kernel
            // panicked there (NONAIM's 2,000 users, before admission counted promised
            // tables). An allocation of the same size made and freed just before leaves
            // its room in the heap (a slab with a free object of that class), so the
            // driver's cannot fail; without it the request waits like one the ring has no
            // room for.
            let mut probe: Vec<u128> = Vec::new();
            probe.try_reserve_exact(frames.len() + 2).ok()?;
        }
        // SAFETY: per the contract; the header and status lie in the driver's DMA page and the
        // frames are whole direct-mapped pages.
        unsafe {
            inputs.push(core::slice::from_raw_parts(
                self.header(slot) as *const u8,
                16,
            ));
            for &frame in frames {
                let page = crate::vm::kernel_space::phys_to_virt(frame) as *mut u8;
                if write {
                    inputs.push(core::slice::from_raw_parts(page, PAGE_SIZE));
                } else {
                    outputs.push(core::slice::from_raw_parts_mut(page, PAGE_SIZE));
                }
            }
            outputs.push(core::slice::from_raw_parts_mut(self.status(slot), 1));
        }
        Some(match op {
            // SAFETY: per the contract, the buffers stay the request's until it is popped.
            RingOp::Add => unsafe { self.queue.add(&inputs, &mut outputs) }.map(u32::from),
            // SAFETY: per the contract, these are the buffers added for `token`.
            RingOp::Pop(token) => unsafe { self.queue.pop_used(token, &inputs, &mut outputs) },
        })
    }
}

/// What [`VirtioBlk::on_ring`] does with a request's buffers.
enum RingOp {
    Add,
    Pop(u16),
}

/// The virtual address of `function`'s virtio common configuration (mapped uncached), from
/// its vendor capability of type 1.
fn common_config(ecam: &Ecam, function: DeviceFunction) -> Option<u64> {
    use virtio_drivers::transport::pci::bus::ConfigurationAccess;
    const VENDOR: u8 = 0x09;
    const COMMON: u8 = 1;
    ecam.capabilities(function, VENDOR).find_map(|at| {
        let head = ecam.read_word(function, at);
        if (head >> 24) as u8 != COMMON {
            return None;
        }
        let bar = ecam.read_word(function, at + 4) as u8;
        let offset = u64::from(ecam.read_word(function, at + 8));
        let base = ecam.bar_address(function, bar)?;
        Some(crate::vm::kernel_space::map_device_memory(
            base + offset,
            0x40,
        ))
    })
}

/// # Safety
/// `at` is a mapped device register of 2 bytes.
unsafe fn write16(at: u64, value: u16) {
    // SAFETY: per the contract.
    unsafe { core::ptr::write_volatile(at as *mut u16, value) }
}

/// # Safety
/// As for [`write16`].
unsafe fn read16(at: u64) -> u16 {
    // SAFETY: per the contract.
    unsafe { core::ptr::read_volatile(at as *const u16) }
}

//! Devices: the kernel's drivers, behind device ports (Mach's device interface, served in
//! `kern::device_port`). This module owns every device's state; the rest of the kernel reaches
//! it through [`Devices`]: find a device by name, check and start a transfer of whole pages,
//! take the transfers the devices have finished.
//!
//! The one driver is virtio-blk on PCI (QEMU's `q35`: configuration space through ECAM, found
//! in ACPI's MCFG table), interrupting through MSI-X on [`DEVICE_VECTOR`]. Transfers move
//! frames straight to or from the disk (DMA, no copy), many at once; requests beyond what
//! the device holds wait in a queue here.

pub mod acpi;
#[cfg(test)]
mod acpi_props;
#[cfg(target_os = "none")]
mod hal;
#[cfg(target_os = "none")]
mod pci;
pub mod requests;
#[cfg(test)]
mod requests_props;
#[cfg(target_os = "none")]
mod virtio_blk;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use libipc::device::{DeviceError, DeviceStatus};

/// The interrupt vector devices signal completions on.
#[cfg(target_os = "none")]
pub use crate::arch::trap::DEVICE_VECTOR;

/// Bytes in a disk sector, the unit of a transfer's position.
pub const SECTOR_SIZE: u64 = 512;

const PAGE_SIZE: u64 = 4096;

/// A device, by its place in [`Devices`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceIndex(pub u8);

/// Checks a transfer of `length` bytes at byte `offset` of a device described by `status`:
/// the first sector, or why it cannot be done. Nothing is started.
pub fn check_transfer(
    status: &DeviceStatus,
    offset: u64,
    length: u64,
    write: bool,
) -> Result<u64, DeviceError> {
    if !offset.is_multiple_of(u64::from(status.block_size.max(1))) {
        return Err(DeviceError::BadOffset);
    }
    if length == 0 || !length.is_multiple_of(PAGE_SIZE) || length > status.max_transfer {
        return Err(DeviceError::BadSize);
    }
    if offset
        .checked_add(length)
        .is_none_or(|end| end > status.size)
    {
        return Err(DeviceError::OutOfRange);
    }
    if write && status.read_only {
        return Err(DeviceError::ReadOnly);
    }
    Ok(offset / SECTOR_SIZE)
}

/// What the devices have done, for `vm_statistics` and the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    pub reads: u64,
    pub writes: u64,
    pub pages_read: u64,
    pub pages_written: u64,
    pub errors: u64,
    /// Operations by pages moved: `[i]` counts those of `i + 1` pages (the last, more).
    pub by_pages: [u64; 16],
    /// Requests that waited for room in a device's ring.
    pub queued: u64,
}

impl DeviceCounters {
    fn count(&mut self, write: bool, pages: usize, ok: bool) {
        if write {
            self.writes += 1;
            self.pages_written += pages as u64;
        } else {
            self.reads += 1;
            self.pages_read += pages as u64;
        }
        self.by_pages[pages.clamp(1, 16) - 1] += 1;
        if !ok {
            self.errors += 1;
        }
    }
}

/// A transfer the devices have finished: the tag it was started with, whether it worked,
/// and its frames, the caller's again.
pub struct Finished<T> {
    pub tag: T,
    pub ok: bool,
    pub write: bool,
    pub frames: Vec<u64>,
}

/// A transfer waiting for room in its device's ring.
struct Waiting {
    device: usize,
    request: usize,
    write: bool,
    sector: u64,
    frames: Vec<u64>,
}

struct Disk {
    name: &'static str,
    status: DeviceStatus,
    #[cfg(target_os = "none")]
    driver: virtio_blk::VirtioBlk,
}

/// Every device, the transfers in flight (with the tag of type `T` each was started with)
/// and those waiting for room.
pub struct Devices<T> {
    disks: Vec<Disk>,
    /// Tags of the transfers started and not yet finished, by request number (a slot
    /// reused once its transfer has finished).
    tags: Vec<Option<T>>,
    waiting: VecDeque<Waiting>,
    /// Transfers that could not be started, to be reported finished (failed).
    failed: Vec<(usize, bool, Vec<u64>)>,
    counters: DeviceCounters,
}

/// The names of the disks, in probe order.
const DISK_NAMES: [&str; 4] = ["disk0", "disk1", "disk2", "disk3"];

impl<T> Default for Devices<T> {
    fn default() -> Self {
        Devices::new()
    }
}

impl<T> Devices<T> {
    /// No devices (until [`probe`](Devices::probe)).
    pub const fn new() -> Self {
        Devices {
            disks: Vec::new(),
            tags: Vec::new(),
            waiting: VecDeque::new(),
            failed: Vec::new(),
            counters: DeviceCounters {
                reads: 0,
                writes: 0,
                pages_read: 0,
                pages_written: 0,
                errors: 0,
                by_pages: [0; 16],
                queued: 0,
            },
        }
    }

    /// The device called `name`.
    pub fn find(&self, name: &str) -> Option<DeviceIndex> {
        let index = self.disks.iter().position(|d| d.name == name)?;
        Some(DeviceIndex(index as u8))
    }

    pub fn count(&self) -> usize {
        self.disks.len()
    }

    pub fn status(&self, device: DeviceIndex) -> Option<DeviceStatus> {
        self.disks.get(usize::from(device.0)).map(|d| d.status)
    }

    pub fn counters(&self) -> DeviceCounters {
        self.counters
    }

    /// Transfers started and not yet finished (in a ring or waiting for one).
    pub fn in_flight(&self) -> usize {
        self.tags.iter().filter(|t| t.is_some()).count()
    }

    /// Checks a transfer on `device`: its first sector, or why it cannot be done.
    pub fn check(
        &self,
        device: DeviceIndex,
        offset: u64,
        length: u64,
        write: bool,
    ) -> Result<u64, DeviceError> {
        let status = self.status(device).ok_or(DeviceError::NoSuchDevice)?;
        check_transfer(&status, offset, length, write)
    }

    /// Starts moving `frames` (whole pages, in order) to or from `device` from `sector` (a
    /// transfer [`check`](Devices::check) accepted); `tag` comes back with it in
    /// [`Finished`]. `Err` gives tag and frames back when the kernel heap has no room to
    /// keep track of it.
    pub fn start(
        &mut self,
        device: DeviceIndex,
        write: bool,
        sector: u64,
        frames: Vec<u64>,
        tag: T,
    ) -> Result<(), (T, Vec<u64>)> {
        let device = usize::from(device.0);
        if device >= self.disks.len() || self.waiting.try_reserve(1).is_err() {
            return Err((tag, frames));
        }
        let request = match self.tags.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.tags.try_reserve(1).is_ok() => {
                self.tags.push(None);
                self.tags.len() - 1
            }
            None => return Err((tag, frames)),
        };
        self.tags[request] = Some(tag);
        note_busy(true);
        self.waiting.push_back(Waiting {
            device,
            request,
            write,
            sector,
            frames,
        });
        self.submit_waiting();
        Ok(())
    }

    /// Takes the transfers the devices have finished, each handed to `out`, and starts
    /// waiting ones in the room they leave. Called when a device interrupts.
    pub fn finish(&mut self, mut out: impl FnMut(Finished<T>)) {
        let Devices {
            disks,
            tags,
            counters,
            failed,
            ..
        } = self;
        let mut finished = |request: usize, ok: bool, write: bool, frames: Vec<u64>| {
            counters.count(write, frames.len(), ok);
            if let Some(tag) = tags.get_mut(request).and_then(Option::take) {
                out(Finished {
                    tag,
                    ok,
                    write,
                    frames,
                });
            }
        };
        for (request, write, frames) in failed.drain(..) {
            finished(request, false, write, frames);
        }
        #[cfg(target_os = "none")]
        for disk in disks.iter_mut() {
            disk.driver
                .complete(|done| finished(done.request, done.ok, done.write, done.frames));
        }
        #[cfg(not(target_os = "none"))]
        let _ = disks;
        self.submit_waiting();
        note_busy(self.tags.iter().any(Option::is_some));
    }

    /// Hands waiting transfers to devices with room in their rings, in order. One the
    /// device cannot take although it has nothing in flight (no kernel memory for the
    /// request's lists) fails instead of waiting for a completion that will not come.
    fn submit_waiting(&mut self) {
        let mut blocked = 0u32;
        let mut index = 0;
        while index < self.waiting.len() {
            let device = self.waiting[index].device;
            if blocked & (1 << device) != 0 {
                index += 1;
                continue;
            }
            let w = self.waiting.remove(index).expect("in range");
            match self.submit(w.device, w.write, w.sector, w.frames, w.request) {
                Ok(()) => {}
                Err((frames, idle)) if idle && self.failed.try_reserve(1).is_ok() => {
                    self.failed.push((w.request, w.write, frames));
                    #[cfg(target_os = "none")]
                    crate::vm::kernel_space::want_device_work();
                }
                Err((frames, _)) => {
                    self.counters.queued += 1;
                    self.waiting.insert(index, Waiting { frames, ..w });
                    blocked |= 1 << device;
                    index += 1;
                }
            }
        }
    }

    /// Gives one transfer to its device's driver; `Err` with the frames and whether the
    /// device has nothing in flight.
    #[cfg(target_os = "none")]
    fn submit(
        &mut self,
        device: usize,
        write: bool,
        sector: u64,
        frames: Vec<u64>,
        request: usize,
    ) -> Result<(), (Vec<u64>, bool)> {
        let driver = &mut self.disks[device].driver;
        if !driver.has_room() {
            return Err((frames, false));
        }
        driver
            .submit(write, sector, frames, request)
            .map_err(|frames| (frames, driver.in_flight() == 0))
    }

    /// On the host there are no drivers: every transfer fails at once.
    #[cfg(not(target_os = "none"))]
    fn submit(
        &mut self,
        _device: usize,
        _write: bool,
        _sector: u64,
        frames: Vec<u64>,
        _request: usize,
    ) -> Result<(), (Vec<u64>, bool)> {
        Err((frames, true))
    }
}

/// The time-stamp counter when the devices last went from idle to busy (some transfer
/// started and not finished), 0 while idle.
static BUSY_SINCE: AtomicU64 = AtomicU64::new(0);
/// Cycles the devices were busy before `BUSY_SINCE`: with the pages moved, what they can
/// do per second of work (the task swapper's measure of paging capacity).
static BUSY_CYCLES: AtomicU64 = AtomicU64::new(0);

/// The time-stamp counter (guest instructions under QEMU's `-icount`).
pub fn cycles() -> u64 {
    // SAFETY: `rdtsc` only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Some transfer is (`busy`) or none is in flight now.
fn note_busy(busy: bool) {
    let since = BUSY_SINCE.load(Ordering::Relaxed);
    match (busy, since) {
        (true, 0) => BUSY_SINCE.store(cycles().max(1), Ordering::Relaxed),
        (false, since) if since != 0 => {
            BUSY_CYCLES.fetch_add(cycles().saturating_sub(since), Ordering::Relaxed);
            BUSY_SINCE.store(0, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Cycles so far during which some transfer was in flight (up to `now`, a [`cycles`]
/// reading).
pub fn busy_cycles(now: u64) -> u64 {
    let since = BUSY_SINCE.load(Ordering::Relaxed);
    BUSY_CYCLES.load(Ordering::Relaxed)
        + if since != 0 {
            now.saturating_sub(since)
        } else {
            0
        }
}

/// Set when a device has no interrupt (no MSI-X): the timer tick then looks for its
/// completions.
#[cfg(target_os = "none")]
static POLLED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether some device's completions are looked for on each timer tick.
#[cfg(target_os = "none")]
pub fn polled() -> bool {
    POLLED.load(core::sync::atomic::Ordering::Relaxed)
}

/// Physical memory read through the direct map (firmware tables outside RAM mapped first).
#[cfg(target_os = "none")]
struct DirectMap;

#[cfg(target_os = "none")]
impl acpi::PhysicalMemory for DirectMap {
    fn read(&self, address: u64, into: &mut [u8]) {
        let virt = crate::vm::kernel_space::map_device_memory(address, into.len() as u64);
        for (i, byte) in into.iter_mut().enumerate() {
            // SAFETY: `map_device_memory` mapped `[address, address + len)`; firmware tables
            // are plain memory, read a byte at a time.
            *byte = unsafe { core::ptr::read_volatile((virt + i as u64) as *const u8) };
        }
    }
}

/// The processors ACPI's MADT lists (through the RSDP at `rsdp`, or found in the BIOS area).
#[cfg(target_os = "none")]
pub fn processors<const N: usize>(
    rsdp: Option<u64>,
) -> Result<acpi::Processors<N>, acpi::AcpiError> {
    let rsdp = rsdp
        .or_else(|| acpi::scan_for_rsdp(&DirectMap))
        .ok_or(acpi::AcpiError::BadRsdp)?;
    acpi::find_processors(&DirectMap, rsdp)
}

#[cfg(target_os = "none")]
impl<T> Devices<T> {
    /// Finds the devices: PCI configuration space from ACPI's MCFG (through the RSDP at
    /// `rsdp`, or found in the BIOS area), then every virtio-blk function on bus 0, its
    /// interrupt routed to [`DEVICE_VECTOR`] on the CPU with APIC id `apic_id`.
    pub fn probe(&mut self, rsdp: Option<u64>, apic_id: u32) {
        use crate::vm::kernel_space::map_device_memory;
        const VIRTIO_VENDOR: u16 = 0x1af4;
        const BLOCK_TRANSITIONAL: u16 = 0x1001;
        const BLOCK_MODERN: u16 = 0x1042;
        let Some(rsdp) = rsdp.or_else(|| acpi::scan_for_rsdp(&DirectMap)) else {
            log::info!("devices: no ACPI tables, so no PCI devices");
            return;
        };
        let window = match acpi::find_ecam(&DirectMap, rsdp) {
            Ok(window) => window,
            Err(error) => {
                log::info!("devices: no PCI Express configuration space ({error:?})");
                return;
            }
        };
        // Bus 0 only: 32 devices of 8 functions, 4 KiB each.
        let base = map_device_memory(window.base, 1 << 20);
        // SAFETY: bus 0's configuration space was just mapped at `base`, for good.
        let mut ecam = unsafe { pci::Ecam::new(base) };
        let mut functions: Vec<_> = Vec::new();
        for found in ecam.functions() {
            if functions.try_reserve(1).is_ok() {
                functions.push(found);
            }
        }
        for (function, vendor, device) in functions {
            let block =
                vendor == VIRTIO_VENDOR && (device == BLOCK_TRANSITIONAL || device == BLOCK_MODERN);
            if !block || self.disks.len() >= DISK_NAMES.len() || self.disks.try_reserve(1).is_err()
            {
                continue;
            }
            let msix = ecam.route_msix(function, apic_id, DEVICE_VECTOR, map_device_memory);
            let driver = match virtio_blk::VirtioBlk::new(&mut ecam, function, msix) {
                Ok(driver) => driver,
                Err(error) => {
                    log::warn!(
                        "devices: virtio-blk at 00:{:02x}.{}: cannot set it up: {error:?}",
                        function.device,
                        function.function
                    );
                    continue;
                }
            };
            let name = DISK_NAMES[self.disks.len()];
            let status = DeviceStatus {
                size: driver.capacity_bytes(),
                block_size: SECTOR_SIZE as u32,
                read_only: driver.read_only(),
                max_transfer: libipc::device::MAX_TRANSFER
                    .min(driver.max_pages() as u64 * PAGE_SIZE),
            };
            if !driver.interrupts() {
                POLLED.store(true, core::sync::atomic::Ordering::Relaxed);
            }
            crate::kprintln!(
                "devices: {name}: virtio-blk at 00:{:02x}.{}, {} MiB{}, {}",
                function.device,
                function.function,
                status.size >> 20,
                if status.read_only { ", read-only" } else { "" },
                if driver.interrupts() {
                    "MSI-X interrupts"
                } else {
                    "polled on the timer tick"
                }
            );
            self.disks.push(Disk {
                name,
                status,
                driver,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libipc::device::MAX_TRANSFER;

    fn disk(size: u64) -> DeviceStatus {
        DeviceStatus {
            size,
            block_size: 512,
            read_only: false,
            max_transfer: MAX_TRANSFER,
        }
    }

    #[test]
    fn transfers_inside_the_device_start_at_their_sector() {
        let status = disk(1 << 20);
        assert_eq!(check_transfer(&status, 0, 4096, false), Ok(0));
        assert_eq!(check_transfer(&status, 8192, 16384, true), Ok(16));
        assert_eq!(check_transfer(&status, 512, 4096, false), Ok(1));
        assert_eq!(
            check_transfer(&status, (1 << 20) - 4096, 4096, true),
            Ok(2040)
        );
    }

    #[test]
    fn bad_transfers_are_refused_with_the_reason() {
        let status = disk(1 << 20);
        assert_eq!(
            check_transfer(&status, 100, 4096, false),
            Err(DeviceError::BadOffset)
        );
        assert_eq!(
            check_transfer(&status, 0, 0, false),
            Err(DeviceError::BadSize)
        );
        assert_eq!(
            check_transfer(&status, 0, 1000, false),
            Err(DeviceError::BadSize)
        );
        assert_eq!(
            check_transfer(&status, 0, MAX_TRANSFER + 4096, false),
            Err(DeviceError::BadSize)
        );
        assert_eq!(
            check_transfer(&status, 1 << 20, 4096, false),
            Err(DeviceError::OutOfRange)
        );
        assert_eq!(
            check_transfer(&status, u64::MAX - 511, 4096, false),
            Err(DeviceError::OutOfRange)
        );
        let read_only = DeviceStatus {
            read_only: true,
            ..status
        };
        assert_eq!(
            check_transfer(&read_only, 0, 4096, true),
            Err(DeviceError::ReadOnly)
        );
        assert_eq!(check_transfer(&read_only, 0, 4096, false), Ok(0));
    }

    #[test]
    fn a_device_is_found_by_its_name() {
        let devices: Devices<u32> = Devices::new();
        assert_eq!(devices.find("disk0"), None);
        assert_eq!(devices.count(), 0);
        assert_eq!(
            devices.check(DeviceIndex(0), 0, 4096, false),
            Err(DeviceError::NoSuchDevice)
        );
        // The first disk is called what clients open.
        assert_eq!(DISK_NAMES[0], libipc::device::FIRST_DISK);
    }
}

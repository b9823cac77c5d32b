//! Device ports: the kernel's server for the device master port (`device_master.open`) and
//! each device's port (`device.read`, `write`, `get_status`), speaking `libipc::device`'s
//! interface without its stubs (as the kernel speaks the memory-object protocol).
//!
//! The devices' state is `device::Devices`'; this is the glue between it and IPC: decode a
//! request, check it, hand its pages to the device, and reply once the device has finished
//! (the caller waits in its receive, with no kernel stack).

use super::receiver::KernelReceiver;
use crate::device::requests::{self, DeviceCall, DevicePort, DeviceRefusal, DeviceTable};
use crate::device::{DeviceIndex, Finished};
use crate::ipc::message::CarriedRight;
use crate::ipc::message::{KMessage, Parts};
use crate::ipc::port::{KernelObject, Port, PortId, Receiver};
use crate::ipc::request::Request;
use crate::ipc::space::{PortName, Rights};
use crate::kern::kernel::Kernel;
use crate::kern::memory::pager::{encode_values, first_region};
use crate::kern::task::TaskId;
use crate::vm::address_space::MapCopy;
use crate::vm::map::PAGE_SIZE;
use crate::vm::transit::{self, TakeError};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use libipc::abi::body::{reply_id, status};
use libipc::abi::syscall::{transfer, USER_BASE, USER_END};
use libipc::abi::KernReturn;
use libipc::device::{ids, written_tag, DeviceError};

/// What the kernel keeps with a device transfer until it finishes: the reply right, and for
/// a write from borrowed frames the memory they belong to (released when written, given
/// back if the write fails).
pub struct DeviceTag {
    reply: CarriedRight,
    borrowed: Option<MapCopy>,
}

/// What the reply to a request carries besides its values.
enum Carry {
    Nothing,
    Right(CarriedRight),
    Memory(MapCopy),
}

impl KernelReceiver for DevicePort {
    type View<'k> = &'k dyn DeviceTable;
    type Call = DeviceCall;
    type Refusal = DeviceRefusal;

    fn view(self, kernel: &Kernel) -> &dyn DeviceTable {
        &kernel.devices
    }

    fn decode(
        self,
        devices: &&dyn DeviceTable,
        request: &Request<'_>,
    ) -> Result<DeviceCall, DeviceRefusal> {
        requests::decode(self, *devices, request)
    }

    fn invoke(
        self,
        kernel: &mut Kernel,
        _port: PortId,
        decoded: Result<DeviceCall, DeviceRefusal>,
        mut parts: Parts<'_>,
    ) {
        let reply = parts.reply.take();
        kernel.release_destination(parts.destination.take());
        let id = parts.id;
        let memory = first_region(parts.memory);
        kernel.release_parts(&mut parts);
        let Some(reply) = reply else {
            // Decoding refused it (`NoReply`): nothing is done.
            if let Some(copy) = memory {
                copy.release(kernel.vm.objects_mut());
            }
            return;
        };
        kernel.carry_out_device_call(reply, id, decoded, memory);
    }
}

impl Kernel {
    /// Carries out device request `id` as decoding left it, answering `reply`; `memory`:
    /// the region it came with (a write's pages).
    #[inline(always)]
    fn carry_out_device_call(
        &mut self,
        reply: CarriedRight,
        id: u32,
        decoded: Result<DeviceCall, DeviceRefusal>,
        memory: Option<MapCopy>,
    ) {
        let kernel = self;
        // The region goes with a write, or back with a refused one; else it is let go.
        let memory = match (decoded, memory) {
            (Ok(DeviceCall::Write { device, sector }), Some(copy)) => {
                return kernel.device_write(device, reply, sector, copy);
            }
            (Err(DeviceRefusal::WriteRefused(error)), Some(copy)) => {
                return kernel.write_failed(reply, error, Carry::Memory(copy));
            }
            (_, memory) => memory,
        };
        if let Some(copy) = memory {
            copy.release(kernel.vm.objects_mut());
        }
        match decoded {
            Ok(DeviceCall::Open(device)) => match kernel.device_port_right(device) {
                Some(right) => kernel.device_reply(reply, id, &status::OK, Carry::Right(right)),
                None => kernel.device_error(reply, id, DeviceError::NoSuchDevice),
            },
            Ok(DeviceCall::GetStatus(s)) => {
                kernel.device_reply(reply, id, &(status::OK, s), Carry::Nothing)
            }
            Ok(DeviceCall::Read {
                device,
                sector,
                length,
            }) => kernel.device_read(device, reply, sector, length),
            Err(DeviceRefusal::Error(error) | DeviceRefusal::WriteRefused(error)) => {
                kernel.device_error(reply, id, error)
            }
            Err(DeviceRefusal::Status(code)) => {
                kernel.device_reply(reply, id, &code, Carry::Nothing)
            }
            // Decoded with a region, which the message has (both come from it).
            Ok(DeviceCall::Write { .. }) | Err(DeviceRefusal::NoReply) => kernel.release(reply),
        }
    }

    /// `DeviceTransfer` of collocated server `task` (see `libipc::abi::syscall`): the
    /// `device.read` or `device.write` a message to device port `device` (a name of
    /// `task`'s) would make, its reply to go to `task`'s receive right `reply`, made as a
    /// call: the pages of a write move out of `task`'s map `[address, +length)` as a moved
    /// out-of-line region would, the request is checked as the message's would be
    /// (`requests::transfer`) and carried out the same way, refusals answered in the reply.
    pub fn device_transfer(&mut self, task: TaskId, a: [u64; 6]) -> Result<u64, KernReturn> {
        let [device, reply, offset, address, length, write] = a;
        let write = match write {
            transfer::READ => false,
            transfer::WRITE => true,
            _ => return Err(KernReturn::InvalidArgument),
        };
        let name = |raw: u64| PortName::try_from(raw).map_err(|_| KernReturn::InvalidName);
        let (device, reply) = (name(device)?, name(reply)?);
        let t = self.tasks.get(task).ok_or(KernReturn::InvalidArgument)?;
        let port = t
            .ipc
            .port_with(device, Rights::SEND)
            .ok_or(KernReturn::InvalidName)?;
        let own = t
            .ipc
            .port_with(reply, Rights::RECEIVE)
            .ok_or(KernReturn::InvalidName)?;
        let index = match self.ipc.port(port).map(|p| p.receiver) {
            Some(Receiver::Kernel(KernelObject::Device(index))) => DeviceIndex(index),
            _ => return Err(KernReturn::InvalidName),
        };
        // A write's pages, as a moved region: whole pages of the caller's own map.
        let memory = match write {
            false => None,
            true => {
                let end = address
                    .checked_add(length)
                    .filter(|&end| end <= USER_END && address >= USER_BASE)
                    .ok_or(KernReturn::InvalidAddress)?;
                if length == 0 || address % PAGE_SIZE != 0 || length % PAGE_SIZE != 0 {
                    return Err(KernReturn::InvalidArgument);
                }
                let t = self
                    .tasks
                    .get_mut(task)
                    .ok_or(KernReturn::InvalidArgument)?;
                Some(
                    t.space
                        .copy_out_range(self.vm.objects_mut(), address, end, true)?,
                )
            }
        };
        let decoded = requests::transfer(index, &self.devices, write, offset, length);
        // The reply right a message would have carried: a send-once right made from `reply`.
        if let Some(p) = self.ipc.port_mut(own) {
            p.send_once_rights += 1;
        }
        let id = match write {
            true => ids::WRITE,
            false => ids::READ,
        };
        DIRECT_TRANSFERS.fetch_add(1, Ordering::Relaxed);
        self.carry_out_device_call(CarriedRight::SendOnce(own), id, decoded, memory);
        Ok(0)
    }
}

/// Device transfers started by `DeviceTransfer` since boot (collocated servers' calls).
static DIRECT_TRANSFERS: AtomicU64 = AtomicU64::new(0);

/// Device transfers started without a message since boot (`HOST_DIRECT_DEVICE_CALLS`).
pub fn direct_transfers() -> u64 {
    DIRECT_TRANSFERS.load(Ordering::Relaxed)
}

impl Kernel {
    /// Makes the device master port and a port for each device the kernel found (at start-up,
    /// before any task).
    pub fn make_device_ports(&mut self) -> Result<(), crate::base::object_table::OutOfMemory> {
        let master = self
            .ipc
            .insert_port(Port::new(Receiver::Kernel(KernelObject::DeviceMaster)))?;
        self.device_master = Some(master);
        for index in 0..self.devices.count() {
            let port = self
                .ipc
                .insert_port(Port::new(Receiver::Kernel(KernelObject::Device(
                    index as u8,
                ))))?;
            self.device_ports
                .try_reserve(1)
                .map_err(|_| crate::base::object_table::OutOfMemory)?;
            self.device_ports.push(port);
        }
        Ok(())
    }

    /// A new send right to the device master port, for a holder of the host port.
    pub fn device_master_right(&mut self) -> Option<CarriedRight> {
        let port = self.device_master?;
        self.make_send_right(port)
    }

    /// A new send right to kernel port `port` (the kernel holds its receive right).
    fn make_send_right(&mut self, port: crate::ipc::port::PortId) -> Option<CarriedRight> {
        let p = self.ipc.port_mut(port)?;
        p.send_rights += 1;
        p.make_send_count += 1;
        Some(CarriedRight::Send(port))
    }

    /// A send right to `device`'s port.
    fn device_port_right(&mut self, device: DeviceIndex) -> Option<CarriedRight> {
        let port = *self.device_ports.get(usize::from(device.0))?;
        self.make_send_right(port)
    }

    /// Starts a read that decoding checked (`sector`: its first).
    fn device_read(&mut self, device: DeviceIndex, reply: CarriedRight, sector: u64, length: u64) {
        let pages = (length / crate::vm::map::PAGE_SIZE) as usize;
        let mut frames = Vec::new();
        if frames.try_reserve_exact(pages).is_err() {
            return self.device_error(reply, ids::READ, DeviceError::NoMemory);
        }
        for _ in 0..pages {
            match crate::vm::kernel_space::allocate_user_frame() {
                Some(frame) => frames.push(frame),
                None => {
                    free_frames(frames);
                    return self.device_error(reply, ids::READ, DeviceError::NoMemory);
                }
            }
        }
        let tag = DeviceTag {
            reply,
            borrowed: None,
        };
        if let Err((tag, frames)) = self.devices.start(device, false, sector, frames, tag) {
            free_frames(frames);
            self.device_error(tag.reply, ids::READ, DeviceError::NoMemory);
        }
    }

    /// Starts a write of `copy` that decoding checked (`sector`: its first).
    fn device_write(
        &mut self,
        device: DeviceIndex,
        reply: CarriedRight,
        sector: u64,
        copy: MapCopy,
    ) {
        // Pages in transit (a return the default pager passes on to the disk) are written
        // where they are; others are taken out of the message's memory, or copied.
        if let Some(frames) = transit::borrow_frames(self.vm.objects(), &copy) {
            let tag = DeviceTag {
                reply,
                borrowed: Some(copy),
            };
            if let Err((tag, _)) = self.devices.start(device, true, sector, frames, tag) {
                let DeviceTag { reply, borrowed } = tag;
                let copy = borrowed.expect("borrowed above");
                self.write_failed(reply, DeviceError::NoMemory, Carry::Memory(copy));
            }
            return;
        }
        let frames = match transit::take_frames(self.vm.objects_mut(), copy) {
            Ok(frames) => frames,
            Err((copy, why)) => {
                let error = match why {
                    TakeError::NotResident => DeviceError::NotResident,
                    TakeError::NoMemory => DeviceError::NoMemory,
                };
                return self.write_failed(reply, error, Carry::Memory(copy));
            }
        };
        let tag = DeviceTag {
            reply,
            borrowed: None,
        };
        if let Err((tag, frames)) = self.devices.start(device, true, sector, frames, tag) {
            self.write_failed_frames(tag.reply, DeviceError::NoMemory, frames);
        }
    }

    /// Replies to the transfers the devices have finished (called on the way out of the
    /// kernel after a device interrupt).
    pub fn device_work(&mut self) {
        let mut finished: Vec<Finished<DeviceTag>> = Vec::new();
        // Room for every transfer that can finish now, first: without it the finished ones
        // stay with the devices until the next try (at the next kernel exit).
        if finished.try_reserve(self.devices.in_flight()).is_err() {
            crate::vm::kernel_space::want_device_work();
            return;
        }
        self.devices.finish(|f| finished.push(f));
        for f in finished {
            let DeviceTag { reply, borrowed } = f.tag;
            match (f.write, f.ok, borrowed) {
                (false, true, _) => match transit::from_frames(self.vm.objects_mut(), f.frames) {
                    Ok(copy) => {
                        self.device_reply(reply, ids::READ, &status::OK, Carry::Memory(copy))
                    }
                    Err(frames) => {
                        free_frames(frames);
                        self.device_error(reply, ids::READ, DeviceError::NoMemory);
                    }
                },
                (false, false, _) => {
                    free_frames(f.frames);
                    self.device_error(reply, ids::READ, DeviceError::Io);
                }
                // Borrowed frames belong to the message's memory: it goes, or goes back.
                (true, true, Some(copy)) => {
                    copy.release(self.vm.objects_mut());
                    self.write_done(reply);
                }
                (true, false, Some(copy)) => {
                    self.write_failed(reply, DeviceError::Io, Carry::Memory(copy))
                }
                (true, true, None) => {
                    free_frames(f.frames);
                    self.write_done(reply);
                }
                (true, false, None) => self.write_failed_frames(reply, DeviceError::Io, f.frames),
            }
        }
    }

    fn write_done(&mut self, reply: CarriedRight) {
        self.device_reply(
            reply,
            ids::WRITE,
            &(status::OK, written_tag::DONE),
            Carry::Nothing,
        );
    }

    /// Answers a write that did not happen with its pages (from their frames).
    fn write_failed_frames(&mut self, reply: CarriedRight, error: DeviceError, frames: Vec<u64>) {
        match transit::from_frames(self.vm.objects_mut(), frames) {
            Ok(copy) => self.write_failed(reply, error, Carry::Memory(copy)),
            Err(frames) => {
                // No kernel memory even to give the pages back: the data is lost, and said so.
                log::error!(
                    "device: a failed write's {} pages could not be given back",
                    frames.len()
                );
                free_frames(frames);
                self.device_error(reply, ids::WRITE, error);
            }
        }
    }

    fn write_failed(&mut self, reply: CarriedRight, error: DeviceError, carry: Carry) {
        self.device_reply(
            reply,
            ids::WRITE,
            &(status::OK, written_tag::FAILED, error),
            carry,
        );
    }

    fn device_error(&mut self, reply: CarriedRight, id: u32, error: DeviceError) {
        self.device_reply(reply, id, &(status::ERROR, error), Carry::Nothing);
    }

    /// Sends the reply to request `id` through `reply`: `values`, then a right or memory.
    fn device_reply<T: serde::Serialize>(
        &mut self,
        reply: CarriedRight,
        id: u32,
        values: &T,
        carry: Carry,
    ) {
        let mut body = Vec::new();
        if encode_values(values, &mut body).is_err() {
            self.release_carry(carry);
            self.release(reply);
            return;
        }
        let (rights, memory) = match carry {
            Carry::Nothing => (None, None),
            Carry::Right(right) => (Some(right), None),
            Carry::Memory(copy) => (None, Some(copy)),
        };
        let rights: &[CarriedRight] = match &rights {
            Some(right) => core::slice::from_ref(right),
            None => &[],
        };
        let Some(mut message): Option<KMessage> =
            self.kernel_message(reply_id(id), rights, memory, body)
        else {
            self.release(reply);
            return;
        };
        message.destination = Some(reply);
        self.kernel_send(reply.port(), message);
    }

    fn release_carry(&mut self, carry: Carry) {
        match carry {
            Carry::Nothing => {}
            Carry::Right(right) => self.release(right),
            Carry::Memory(copy) => copy.release(self.vm.objects_mut()),
        }
    }
}

fn free_frames(frames: Vec<u64>) {
    for frame in frames {
        let _ = crate::vm::kernel_space::free_frame(frame);
    }
}

//! The default pager's server: the memory-object protocol on one side, the disk's device port
//! on the other, and the library's cluster maps and segments between them.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hashbrown::HashMap;

use crate::{
    parse_config, plan_read, plan_write, DeviceRun, InFlight, ObjectMap, PlanError, ReadRun,
    Segments, Statistics, Tag, PAGE_SIZE,
};
use libipc::device::device as disk_port;
use libipc::device::{device_master, DeviceError, Written, FIRST_DISK};
use libipc::hosted::DirectPager;
use libipc::interface::{
    decode_reply, Deferred, Dispatch, Dispatched, Outbox, Pages, PortSet, ReceiveRight,
    RemoteError, Replied, Reply, SendRight,
};
use libipc::ipc::{Name, Received};
use libipc::pager::default_pager as default_pager_protocol;
use libipc::pager::{
    backing_store, memory_object, object_of, Attributes, BackingStoreInfo, PagerError, Returned,
    Supply, BACKING_STORE_NAME, DEFAULT_PAGER_NAME,
};
use libipc::println;

/// Device transfers the pager keeps in flight at most (each has a reply port of its own);
/// more wait in a queue.
const MAX_IN_FLIGHT: usize = 64;

/// Transfers waiting for a reply port at most; a return beyond is refused (the kernel keeps
/// its pages), a request answered with an error.
const MAX_QUEUED: usize = 1024;

/// The pager's error codes in `PagerError::Failed`.
pub mod failure {
    /// A write of the cluster failed earlier: its data is not on the disk.
    pub const CLUSTER_ERROR: u32 = 1;
    /// The disk failed the read.
    pub const IO: u32 = 2;
    /// No memory for the request.
    pub const NO_MEMORY: u32 = 3;
}

/// A memory object the pager keeps pages of.
struct Object {
    map: ObjectMap,
    /// Its port: dropping it destroys the port, which leaves the set.
    port: ReceiveRight,
    /// Its control port (kept for the object's life).
    control: Option<SendRight>,
    /// Device transfers of its pages in flight or queued.
    transfers: usize,
    /// Reads that found pages being written: asked again when a write of the object ends.
    waiting_reads: Vec<(u64, u64, Deferred<Supply, PagerError>)>,
    /// The kernel terminated it: its clusters go once its transfers have ended.
    terminated: bool,
}

/// A device transfer: what it is for.
enum Transfer {
    /// A `data_return`'s pages going to their cluster.
    Write {
        object: Name,
        run: DeviceRun,
        reply: Deferred<Returned, PagerError>,
    },
    /// The run of present pages at the start of a `data_request`.
    Read {
        object: Name,
        run: DeviceRun,
        reply: Deferred<Supply, PagerError>,
    },
}

/// A transfer not yet sent: the transfer and, for a write, its pages.
struct Queued {
    transfer: Transfer,
    pages: Option<Pages>,
}

pub struct Pager {
    set: PortSet,
    port: Name,
    disk: libipc::device::Transfers,
    segments: Segments,
    /// The cluster size objects were last given (reported by `backing_store.info`).
    cluster_pages: u32,
    /// Whose turn it is among the cluster sizes (`Segments::cluster_for_new_object`).
    turn: usize,
    objects: HashMap<Name, Object>,
    /// Reply ports for device transfers, each in the set; `free` lists the idle ones.
    reply_ports: Vec<ReceiveRight>,
    by_reply_port: HashMap<Name, usize>,
    free: heapless::Vec<usize, MAX_IN_FLIGHT>,
    /// The transfers in flight, each under the tag its reply port's slot records.
    in_flight: InFlight<Transfer, MAX_IN_FLIGHT>,
    slot_tags: [Option<Tag>; MAX_IN_FLIGHT],
    /// Transfers waiting for an idle reply port: at most `MAX_QUEUED`, their room taken at
    /// start (on the heap, not inline: the pager may be built on a collocated server's stack).
    queued: alloc::collections::VecDeque<Queued>,
    statistics: Statistics,
    /// Set while returns are refused because every segment is full (said once on the
    /// console, and again when space comes back).
    full: bool,
}

impl Pager {
    fn object_transfers_ended(&mut self, name: Name) {
        let Some(object) = self.objects.get_mut(&name) else {
            return;
        };
        object.transfers -= 1;
        if object.terminated && object.transfers == 0 {
            if let Some(object) = self.objects.remove(&name) {
                self.release(object);
            }
        }
    }

    /// Frees a terminated object's clusters and ports.
    fn release(&mut self, mut object: Object) {
        let held = object.map.clusters_held();
        if let Err(error) = object.map.free_all(&mut self.segments) {
            println!("default_pager: freeing an object's clusters: {error}");
        }
        for (_, _, reply) in object.waiting_reads.drain(..) {
            let _ = reply.send(Err(PagerError::OutOfRange));
        }
        let Object { port, control, .. } = object;
        drop((port, control));
        self.statistics.record_segments(&self.segments);
        if self.full && self.segments.free_clusters() > 0 {
            self.full = false;
            println!(
                "default_pager: {} clusters free again; returns are taken",
                self.segments.free_clusters()
            );
        }
        let _ = held;
    }

    /// Sends `queued` to the disk now if a reply port is idle, else queues it.
    fn start(&mut self, queued: Queued) {
        let Some(slot) = self.free.pop() else {
            if self.queued.len() >= MAX_QUEUED {
                // Fixed room, full: the transfer is refused (nothing is lost).
                self.transfer_refused(queued);
            } else {
                // Within the room taken at start: no allocation.
                self.queued.push_back(queued);
            }
            return;
        };
        let reply_port = self.reply_ports[slot].name();
        let Queued { transfer, pages } = queued;
        let sent = match (&transfer, pages) {
            (Transfer::Write { run, .. }, Some(pages)) => {
                self.disk.write(reply_port, run.device_offset, pages)
            }
            (Transfer::Read { run, .. }, _) => {
                self.disk.read(reply_port, run.device_offset, run.bytes())
            }
            (Transfer::Write { .. }, None) => unreachable!("a write carries its pages"),
        };
        match sent {
            Ok(()) => match self.in_flight.insert(transfer) {
                Ok(tag) => self.slot_tags[slot] = Some(tag),
                // A free slot means a free entry: the table has a slot's capacity.
                Err(_) => unreachable!("more transfers in flight than reply ports"),
            },
            Err(error) => {
                // The kernel's device port always takes a request; failing to send one means
                // the kernel refused the message itself.
                println!("default_pager: cannot send a device request: {error:?}");
                let _ = self.free.push(slot);
                self.transfer_failed(transfer, None);
            }
        }
    }

    /// A transfer the pager has no room to queue: a write's return is refused (the kernel
    /// keeps the pages; the cluster's place is given back if it was new), a read answered
    /// with an error.
    fn transfer_refused(&mut self, queued: Queued) {
        let Queued { transfer, pages } = queued;
        match transfer {
            Transfer::Write { object, run, reply } => {
                if let Some(o) = self.objects.get_mut(&object) {
                    let _ = o.map.cancel_write(run.object_pages(), &mut self.segments);
                }
                self.statistics.record_refused_return();
                let _ = match pages {
                    Some(pages) => reply.send(Ok(Returned::Refused(pages))),
                    None => reply.send(Err(PagerError::Failed(failure::NO_MEMORY))),
                };
                self.write_ended(object);
            }
            Transfer::Read { object, reply, .. } => {
                let _ = reply.send(Err(PagerError::Failed(failure::NO_MEMORY)));
                self.object_transfers_ended(object);
            }
        }
    }

    /// A transfer that did not happen: its client learns so (a write's pages, when they came
    /// back, are refused to the kernel; else the pages were lost in the send and the kernel
    /// gets an error).
    fn transfer_failed(&mut self, transfer: Transfer, pages: Option<Pages>) {
        self.statistics.record_io_error();
        match transfer {
            Transfer::Write { object, run, reply } => {
                if let Some(o) = self.objects.get_mut(&object) {
                    let _ = o.map.mark_failed(run.object_pages());
                }
                let _ = match pages {
                    Some(pages) => {
                        self.statistics.record_refused_return();
                        reply.send(Ok(Returned::Refused(pages)))
                    }
                    None => reply.send(Err(PagerError::Failed(failure::IO))),
                };
                self.write_ended(object);
            }
            Transfer::Read { object, run, reply } => {
                // The data is lost; the cluster's blocks are bad and never used again.
                if let Some(o) = self.objects.get_mut(&object) {
                    let _ = o.map.mark_unreadable(run.object_pages());
                }
                println!(
                    "default_pager: lost {} page(s) of an object at offset {:#x} (disk offset \
                     {:#x}): their read failed; faults on them get memory errors",
                    run.pages, run.object_offset, run.device_offset
                );
                let _ = reply.send(Err(PagerError::Failed(failure::IO)));
                self.object_transfers_ended(object);
            }
        }
    }

    /// A write of `object` ended: reads that waited for it are asked again.
    fn write_ended(&mut self, object: Name) {
        let waiting = match self.objects.get_mut(&object) {
            Some(o) => core::mem::take(&mut o.waiting_reads),
            None => Vec::new(),
        };
        for (offset, length, reply) in waiting {
            self.read(object, offset, length, reply);
        }
        self.object_transfers_ended(object);
    }

    /// A device reply on reply port `slot`.
    fn device_reply(&mut self, slot: usize, reply: &Received<'_>) {
        let Some(transfer) = self.slot_tags[slot]
            .take()
            .and_then(|tag| self.in_flight.remove(tag))
        else {
            return;
        };
        // The slot was taken from the list: there is room to give it back.
        let _ = self.free.push(slot);
        match transfer {
            Transfer::Write {
                object,
                run,
                reply: answer,
            } => {
                match decode_reply::<Written, DeviceError>(reply, disk_port::ids::write) {
                    Ok(Written::Done) => {
                        if let Some(o) = self.objects.get_mut(&object) {
                            let _ = o.map.mark_written(run.object_pages());
                        }
                        self.statistics.record_write(run.pages);
                        self.statistics.record_cluster_out();
                        let _ = answer.send(Ok(Returned::Stored));
                        self.write_ended(object);
                    }
                    Ok(Written::Failed(error, pages)) => {
                        // Said once, then every hundredth time: a failing disk is retried
                        // every second.
                        if self.statistics.io_errors().is_multiple_of(100) {
                            println!(
                                "default_pager: writing {} pages at disk offset {:#x} failed: \
                                 {error:?}; the return is refused, the kernel keeps the pages \
                                 ({} I/O errors so far)",
                                run.pages,
                                run.device_offset,
                                self.statistics.io_errors() + 1
                            );
                        }
                        self.transfer_failed(
                            Transfer::Write {
                                object,
                                run,
                                reply: answer,
                            },
                            Some(pages),
                        );
                    }
                    Err(error) => {
                        println!("default_pager: a device write failed: {error}");
                        self.transfer_failed(
                            Transfer::Write {
                                object,
                                run,
                                reply: answer,
                            },
                            None,
                        );
                    }
                }
            }
            Transfer::Read {
                object,
                run,
                reply: answer,
            } => match decode_reply::<Pages, DeviceError>(reply, disk_port::ids::read) {
                Ok(pages) => {
                    self.statistics.record_read(run.pages);
                    self.statistics.record_cluster_in();
                    let _ = answer.send(Ok(Supply::Data(pages)));
                    self.object_transfers_ended(object);
                }
                Err(error) if run.pages > 1 => {
                    // Which page is bad? The first alone: supplied if it reads (the kernel
                    // asks again for the rest), lost if not. Only pages on failing blocks
                    // are lost.
                    println!(
                        "default_pager: reading {} pages at disk offset {:#x} failed: {}; \
                         reading the first alone",
                        run.pages,
                        run.device_offset,
                        describe(&error)
                    );
                    self.statistics.record_io_error();
                    self.start(Queued {
                        transfer: Transfer::Read {
                            object,
                            run: DeviceRun { pages: 1, ..run },
                            reply: answer,
                        },
                        pages: None,
                    });
                }
                Err(error) => {
                    println!(
                        "default_pager: reading {} pages at disk offset {:#x} failed: {}",
                        run.pages,
                        run.device_offset,
                        describe(&error)
                    );
                    self.transfer_failed(
                        Transfer::Read {
                            object,
                            run,
                            reply: answer,
                        },
                        None,
                    );
                }
            },
        }
        if let Some(next) = self.queued.pop_front() {
            self.start(next);
        }
    }

    /// Answers a `data_request` for `[offset, offset + length)` of `object`.
    fn read(&mut self, name: Name, offset: u64, length: u64, reply: Deferred<Supply, PagerError>) {
        let Some(object) = self.objects.get_mut(&name) else {
            let _ = reply.send(Err(PagerError::OutOfRange));
            return;
        };
        // The kernel's cluster is the object's: a request lies inside one of its clusters.
        let plan = match plan_read(&object.map, &self.segments, offset, length) {
            Ok(plan) => plan,
            Err(PlanError::WriteInFlight) => {
                if object.waiting_reads.try_reserve(1).is_ok() {
                    object.waiting_reads.push((offset, length, reply));
                } else {
                    let _ = reply.send(Err(PagerError::Failed(failure::NO_MEMORY)));
                }
                return;
            }
            Err(PlanError::ClusterError) => {
                let _ = reply.send(Err(PagerError::Failed(failure::CLUSTER_ERROR)));
                return;
            }
            Err(_) => {
                let _ = reply.send(Err(PagerError::OutOfRange));
                return;
            }
        };
        match plan.runs().first() {
            // Only absent pages: zero fill them all.
            Some(ReadRun::Absent { .. }) if plan.runs().len() == 1 => {
                let _ = reply.send(Ok(Supply::Unavailable));
            }
            // Absent pages first, present ones after: zeros for the absent run (the kernel
            // asks again for the rest when it needs them).
            Some(ReadRun::Absent { pages, .. }) => {
                match Pages::allocate(u64::from(*pages) * PAGE_SIZE) {
                    Ok(zeros) => {
                        let _ = reply.send(Ok(Supply::Data(zeros)));
                    }
                    Err(_) => {
                        let _ = reply.send(Err(PagerError::Failed(failure::NO_MEMORY)));
                    }
                }
            }
            Some(ReadRun::Device(run)) => {
                object.transfers += 1;
                let run = *run;
                self.start(Queued {
                    transfer: Transfer::Read {
                        object: name,
                        run,
                        reply,
                    },
                    pages: None,
                });
            }
            None => {
                let _ = reply.send(Ok(Supply::Unavailable));
            }
        }
    }
}

/// A remote error in words.
fn describe(error: &RemoteError<DeviceError>) -> String {
    match error {
        RemoteError::Server(e) => format!("{e:?}"),
        other => format!("{other}"),
    }
}

impl default_pager_protocol::Server for Pager {
    fn create(
        &mut self,
        object: ReceiveRight,
        control: SendRight,
        size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        self.cluster_pages = self.segments.cluster_for_new_object(&mut self.turn);
        let map = match ObjectMap::new(size, self.cluster_pages) {
            Ok(map) => map,
            Err(_) => return reply.err(PagerError::Failed(failure::NO_MEMORY)),
        };
        if self.objects.try_reserve(1).is_err() {
            return reply.err(PagerError::Failed(failure::NO_MEMORY));
        }
        if let Err(error) = self.set.insert(&object) {
            return reply.err(PagerError::Failed(error as u32));
        }
        let record = Object {
            map,
            port: object,
            control: Some(control),
            transfers: 0,
            waiting_reads: Vec::new(),
            terminated: false,
        };
        self.objects.insert(record.port.name(), record);
        reply.ok(Attributes {
            cluster_pages: self.cluster_pages,
        })
    }
}

impl backing_store::Server for Pager {
    fn info(&mut self, reply: Reply<'_, BackingStoreInfo, PagerError>) -> Replied {
        self.statistics.record_segments(&self.segments);
        let s = &self.statistics;
        let transfers = self.in_flight.len() + self.queued.len();
        reply.ok(BackingStoreInfo {
            objects: self.objects.len() as u64,
            clusters_total: self.segments.total_clusters(),
            clusters_used: self.segments.used_clusters(),
            clusters_peak: s.peak_clusters_used(),
            cluster_pages: u64::from(self.cluster_pages),
            pages_in: s.pages_in(),
            pages_out: s.pages_out(),
            clusters_in: s.clusters_in(),
            clusters_out: s.clusters_out(),
            device_reads: s.device_reads(),
            device_writes: s.device_writes(),
            refused_returns: s.refused_returns(),
            io_errors: s.io_errors(),
            transfers: transfers as u64,
            operations_by_pages: core::array::from_fn(|i| s.operations_of(i as u32 + 1)),
            segment_clusters_used: core::array::from_fn(|i| {
                self.segments
                    .get(i)
                    .map_or(0, |s| u64::from(s.used_clusters()))
            }),
        })
    }
}

/// The `memory_object` server for one object.
struct ObjectServer<'p> {
    pager: &'p mut Pager,
    object: Name,
}

impl memory_object::Server for ObjectServer<'_> {
    fn init(
        &mut self,
        control: SendRight,
        size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        let cluster_pages = self.pager.cluster_pages;
        let Some(object) = self.pager.objects.get_mut(&self.object) else {
            return reply.err(PagerError::OutOfRange);
        };
        object.control = Some(control);
        if object.map.grow(size).is_err() {
            return reply.err(PagerError::Failed(failure::NO_MEMORY));
        }
        reply.ok(Attributes { cluster_pages })
    }

    fn data_request(
        &mut self,
        offset: u64,
        length: u64,
        _access: u32,
        reply: Reply<'_, Supply, PagerError>,
    ) -> Replied {
        let (deferred, replied) = reply.defer();
        self.pager.read(self.object, offset, length, deferred);
        replied
    }

    fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
        if let Some(object) = self.pager.objects.get_mut(&self.object) {
            object.terminated = true;
            if object.transfers == 0 {
                if let Some(object) = self.pager.objects.remove(&self.object) {
                    self.pager.release(object);
                }
            }
        }
        reply.ok(())
    }

    fn data_return(
        &mut self,
        offset: u64,
        data: Pages,
        _dirty: bool,
        reply: Reply<'_, Returned, PagerError>,
    ) -> Replied {
        let pager = &mut *self.pager;
        let Some(object) = pager.objects.get_mut(&self.object) else {
            return reply.err(PagerError::OutOfRange);
        };
        if offset + data.len() > object.map.size() && object.map.grow(offset + data.len()).is_err()
        {
            pager.statistics.record_refused_return();
            return reply.ok(Returned::Refused(data));
        }
        let plan = match plan_write(&mut object.map, &mut pager.segments, offset, data.len()) {
            Ok(plan) if plan.runs().len() == 1 => plan,
            Ok(_) => {
                // A contiguous return is one run on disk; anything else is a bookkeeping bug.
                pager.statistics.record_refused_return();
                return reply.ok(Returned::Refused(data));
            }
            Err(PlanError::Full) => {
                if !pager.full {
                    pager.full = true;
                    println!(
                        "default_pager: paging space full ({} clusters in use); returns are \
                         refused and the kernel keeps the pages until space is freed",
                        pager.segments.used_clusters()
                    );
                }
                pager.statistics.record_refused_return();
                return reply.ok(Returned::Refused(data));
            }
            Err(error) => {
                println!("default_pager: cannot place a return at {offset:#x}: {error}");
                pager.statistics.record_refused_return();
                return reply.ok(Returned::Refused(data));
            }
        };
        let run = plan.runs()[0];
        object.transfers += 1;
        pager.statistics.record_segments(&pager.segments);
        let (deferred, replied) = reply.defer();
        pager.start(Queued {
            transfer: Transfer::Write {
                object: self.object,
                run,
                reply: deferred,
            },
            pages: Some(data),
        });
        replied
    }
}

impl Dispatch for Pager {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        let port = object_of(request);
        if port == self.port {
            return match default_pager_protocol::dispatch(self, request, outbox) {
                Dispatched::NotMine => backing_store::dispatch(self, request, outbox),
                dispatched => dispatched,
            };
        }
        if let Some(&slot) = self.by_reply_port.get(&port) {
            self.device_reply(slot, request);
            return Dispatched::Handled;
        }
        self.with_object(port, |s| memory_object::dispatch(s, request, outbox))
            .unwrap_or(Dispatched::NotMine)
    }
}

impl DirectPager for Pager {
    fn with_object<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn memory_object::Server) -> R,
    ) -> Option<R> {
        if !self.objects.contains_key(&port) {
            return None;
        }
        Some(serve(&mut ObjectServer {
            pager: self,
            object: port,
        }))
    }

    fn with_default_pager<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn default_pager_protocol::Server) -> R,
    ) -> Option<R> {
        (port == self.port).then(|| serve(self))
    }
}

/// Reads the kernel's `swap=` option, if given.
fn swap_option() -> Option<String> {
    let mut buffer = [0u8; 256];
    let length = libipc::sys::kernel_option("swap", &mut buffer).ok()?;
    core::str::from_utf8(&buffer[..length])
        .ok()
        .map(String::from)
}

/// The program's start: finds the disk through the name service's device master port,
/// registers, and serves until its ports fail.
#[cfg(feature = "program")]
pub fn main(args: libipc::rt::StartArgs) -> i32 {
    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        println!("default_pager: started without a name service");
        return 1;
    };
    let master = match names.lookup(libipc::device::DEVICE_MASTER_NAME.into()) {
        Ok(master) => master,
        Err(error) => {
            println!(
                "default_pager: no device master port ({error:?}); zpager stays the default pager"
            );
            return 0;
        }
    };
    let (mut pager, port) = match Pager::open(master) {
        Ok(started) => started,
        Err(status) => return status,
    };
    // The maps' memory is taken now, while memory is plentiful, and kept (the kernel never
    // pages out the default pager's pages).
    if !libipc::rt::heap::prefault(1 << 20) {
        println!("default_pager: could not take 1 MiB of memory at start");
    }
    let name = registered_name(args.arg1);
    let registered = port
        .make_send()
        .map_err(|e| format!("{e}"))
        .and_then(|send| {
            names
                .register(name.into(), &send)
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(error) = registered {
        println!("default_pager: cannot register as {name}: {error}");
        return 1;
    }
    // Paging waits on this pager: it runs before ordinary threads when it has work.
    let _ = libipc::sys::thread_set_priority(libipc::abi::syscall::PAGER_PRIORITY);
    let set = pager.set.name();
    let served = libipc::interface::serve(&set, &mut pager);
    drop((names, port));
    match served {
        Ok(()) => 0,
        Err(error) => {
            println!("default_pager: receiving failed: {error:?}");
            1
        }
    }
}

/// The name it registers under by its second start argument: 1, behind zpager stacked in
/// front as a compressed cache (it sends on what it cannot keep), so the backing store;
/// else the default pager.
fn registered_name(argument: u64) -> &'static str {
    match argument {
        1 => BACKING_STORE_NAME,
        _ => DEFAULT_PAGER_NAME,
    }
}

/// The default pager collocated in the kernel ([`libipc::hosted::Start`]), with the
/// program's start arguments and, third, a send right to the device master port (the kernel
/// gives every collocated server one: it is kernel code, as trusted as the drivers), so it
/// does not look the port up. It registers with the name service as the program does,
/// sending the request without waiting for the answer (which it cannot). Its service port
/// is its default-pager port.
pub fn hosted(
    args: libipc::rt::StartArgs,
) -> Result<libipc::hosted::Started, libipc::abi::KernReturn> {
    use libipc::abi::KernReturn;
    let master = u32::try_from(args.arg2)
        .ok()
        .filter(|&name| name != 0)
        .ok_or(KernReturn::InvalidArgument)?;
    let (pager, port) =
        Pager::open(SendRight::from_raw(master)).map_err(|_| KernReturn::Failure)?;
    let service = port.make_send()?;
    libipc::hosted::register(&args, registered_name(args.arg1), &service);
    let set = pager.set.name();
    Ok(libipc::hosted::Started::pager(set, pager, port, service))
}

impl Pager {
    /// Opens the disk through `master` (the device master port), lays out the paging
    /// segments by the kernel's `swap=` option and makes the ports: the pager and its
    /// default-pager port (in its set). `Err`: the exit status (0 when there is no disk:
    /// zpager stays the default pager), said on the console.
    fn open(master: SendRight) -> Result<(Pager, ReceiveRight), i32> {
        let mut master = device_master::Client::new(master);
        let disk = match master.open(FIRST_DISK.into()) {
            Ok(disk) => disk,
            Err(RemoteError::Server(DeviceError::NoSuchDevice)) => {
                println!("default_pager: no disk; zpager stays the default pager");
                return Err(0);
            }
            Err(error) => {
                println!("default_pager: cannot open {FIRST_DISK}: {error}");
                return Err(1);
            }
        };
        let mut status_client = disk_port::Client::new(disk);
        let status = match status_client.get_status() {
            Ok(status) => status,
            Err(error) => {
                println!("default_pager: cannot read {FIRST_DISK}'s status: {error}");
                return Err(1);
            }
        };
        let disk = status_client.into_transport().into_server();
        let layout =
            swap_option().unwrap_or_else(|| alloc::format!("{}", crate::DEFAULT_CLUSTER_PAGES));
        let specs = match parse_config(&layout, status.size) {
            Ok(specs) => specs,
            Err(error) => {
                println!("default_pager: swap={layout}: {error}");
                return Err(1);
            }
        };
        let mut segments = Segments::new();
        for spec in specs.iter() {
            let added = spec
                .into_segment(0)
                .map_err(|e| format!("{e}"))
                .and_then(|segment| segments.add(segment).map_err(|e| format!("{e}")));
            if let Err(error) = added {
                println!("default_pager: swap={layout}: {error}");
                return Err(1);
            }
        }
        let cluster_pages = segments.cluster_for_new_object(&mut 0);
        let set = PortSet::allocate();
        let port = ReceiveRight::allocate();
        let (Ok(set), Ok(port)) = (set, port) else {
            println!("default_pager: cannot allocate its ports");
            return Err(1);
        };
        let mut reply_ports = Vec::new();
        let mut by_reply_port = HashMap::new();
        for slot in 0..MAX_IN_FLIGHT {
            let Ok(reply) = ReceiveRight::allocate() else {
                println!("default_pager: cannot allocate its reply ports");
                return Err(1);
            };
            if set.insert(&reply).is_err() {
                println!("default_pager: cannot add a reply port to its set");
                return Err(1);
            }
            by_reply_port.insert(reply.name(), slot);
            reply_ports.push(reply);
        }
        for segment in segments.iter() {
            println!(
                "default_pager: segment of {FIRST_DISK} at {} MiB: {} MiB in clusters of {} pages, priority {}",
                segment.start() >> 20,
                (segment.end() - segment.start()) >> 20,
                segment.cluster_pages(),
                segment.priority()
            );
        }
        if set.insert(&port).is_err() {
            println!("default_pager: cannot add its port to its set");
            return Err(1);
        }
        let mut queued = alloc::collections::VecDeque::new();
        if queued.try_reserve_exact(MAX_QUEUED).is_err() {
            println!("default_pager: no memory for its transfer queue");
            return Err(1);
        }
        let pager = Pager {
            port: port.name(),
            set,
            disk: libipc::device::Transfers::new(disk),
            segments,
            cluster_pages,
            turn: 0,
            objects: HashMap::new(),
            reply_ports,
            by_reply_port,
            free: (0..MAX_IN_FLIGHT).rev().collect(),
            in_flight: InFlight::new(),
            slot_tags: [None; MAX_IN_FLIGHT],
            queued,
            statistics: Statistics::new(),
            full: false,
        };
        Ok((pager, port))
    }
}

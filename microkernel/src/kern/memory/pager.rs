//! External pagers: memory objects whose pages come from a user-space pager over the
//! clustered memory-object protocol (`libipc::pager`): mapping an object, asking for a
//! cluster on a fault, taking the pager's answers and calls, and surviving pagers that die,
//! never answer, or answer wrongly.
//!
//! The kernel is the client of `memory_object` (it sends `init`, `data_request` and
//! `terminate` to the pager's port, each request with a reply port of its own, a kernel
//! port that names the request) and the server of `memory_control` (on each object's
//! control port). Threads that need an absent page wait on the object without a kernel
//! stack and fault again when woken; a system call that touched the page is restarted.

use super::pager_requests::{
    decode_answer, decode_control, AnswerCall, AnswerRefusal, AnswerView, ControlCall, ControlView,
    DataAnswer, InitAnswer, ReturnAnswer,
};
use crate::base::queue::Fifo;
use crate::ipc::message::{CarriedRight, KMessage, Parts};
use crate::ipc::port::{KernelObject, Port, PortId, Receiver};
use crate::ipc::request::Request;
use crate::kern::kernel::Kernel;
use crate::kern::loader::Exit;
use crate::kern::receiver::KernelReceiver;
use crate::kern::task::TaskId;
use crate::kern::thread::{Continuation, ThreadId, ThreadState};
use crate::vm::address_space::release_object;
use crate::vm::address_space::{take_frames, Arrived, FaultError, MapCopy, ObjectId};
use crate::vm::cluster::{default_pager_request_range, request_range};
use crate::vm::kernel_space::{self, phys_to_virt};
use crate::vm::map::{Protection, Strategy, PAGE_SIZE};
use crate::vm::object::{ObjectKind, VmObject};
use crate::vm::page::page_flags::PREFETCHED;
use crate::vm::statistics::{self, count};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use libipc::abi::message::{descriptor_kind, Descriptor, MsgReturn, DESCRIPTOR_SIZE};
use libipc::abi::syscall::Syscall;
use libipc::abi::KernReturn;
use libipc::pager::{ids, ControlError, ObjectStatistics};

pub use super::pager_requests::ReplyKind;

/// A memory-object call of the kernel's to a pager (`memory_object`, and the `create` of
/// `default_pager` and `program_pager`), with what it carries: a message to a task pager, a call of its routine to a
/// collocated one.
pub enum EmmiCall {
    /// `init`, with a send right to the object's control port.
    Init { control: CarriedRight, size: u64 },
    /// `data_request` (`access`: `VM_PROT_*` bits).
    DataRequest {
        offset: u64,
        length: u64,
        access: u32,
    },
    /// `terminate`.
    Terminate,
    /// `data_return` of the pages `copy` holds.
    DataReturn {
        offset: u64,
        copy: MapCopy,
        dirty: bool,
    },
    /// `default_pager.create`: the object port's receive right and a send right to its
    /// control port.
    Create {
        object: CarriedRight,
        control: CarriedRight,
        size: u64,
    },
    /// `program_pager.create` of boot-archive file `name`, `size` bytes, whose pages `file`
    /// holds; the rights as for `Create`.
    CreateProgram {
        object: CarriedRight,
        control: CarriedRight,
        name: alloc::string::String,
        size: u64,
        file: MapCopy,
    },
}

impl EmmiCall {
    /// Gives back what the call carries (it goes nowhere).
    pub fn release(self, kernel: &mut Kernel) {
        match self {
            EmmiCall::Init { control, .. } => kernel.release(control),
            EmmiCall::DataRequest { .. } | EmmiCall::Terminate => {}
            EmmiCall::DataReturn { copy, .. } => copy.release(&mut kernel.vm.objects),
            EmmiCall::Create {
                object, control, ..
            } => {
                kernel.release(object);
                kernel.release(control);
            }
            EmmiCall::CreateProgram {
                object,
                control,
                file,
                ..
            } => {
                kernel.release(object);
                kernel.release(control);
                file.release(&mut kernel.vm.objects);
            }
        }
    }
}

/// Pages returned to one pager and not yet answered, at most.
const RETURNS_IN_FLIGHT: u32 = 256;

/// How long a thread waits for a pager before it gets a memory error, in timer ticks
/// (`pager_timeout=` on the command line, in milliseconds; 5 s by default).
static TIMEOUT_TICKS: AtomicU64 = AtomicU64::new(500);

/// Sets the pager timeout (from the command line).
pub fn set_timeout_ms(ms: u64) {
    TIMEOUT_TICKS.store(
        ms.div_ceil(1000 / crate::arch::apic::HZ).max(1),
        Ordering::Relaxed,
    );
}

fn timeout() -> u64 {
    TIMEOUT_TICKS.load(Ordering::Relaxed)
}

/// How long a thread waits for the default pager (timer ticks: 60 s). The default pager is
/// trusted (VM-privileged) and its death is seen at once, so a long wait means a busy disk
/// (a deep queue on a slow or throttled one), not a silent pager: a heavy load slows down
/// rather than ending tasks with memory errors.
const DEFAULT_PAGER_TIMEOUT_TICKS: u64 = 6000;

fn now() -> u64 {
    crate::arch::percpu::ticks()
}

/// Where an object's pager stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// `init` sent, no answer yet: faults wait.
    Initializing,
    Ready,
    /// The pager's port died (or it refused `init`): absent pages are memory errors.
    Dead,
}

/// A request sent and not answered.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub start: u64,
    pub end: u64,
    /// The page whose fault asked (the others are read-ahead).
    pub faulting: u64,
    pub sent_at: u64,
    /// The kernel port the answer comes to.
    pub reply: PortId,
}

/// Pages returned (`data_return`) and not answered yet: faults on them wait for the answer.
#[derive(Clone, Copy, Debug)]
pub struct PendingReturn {
    pub start: u64,
    pub end: u64,
    pub reply: PortId,
    /// The transit object carrying the pages (the kernel holds a reference until the
    /// answer, so the pages stay readable while they travel).
    pub transit: ObjectId,
}

/// The kernel's side of one pager-backed object.
pub struct PagerLink {
    /// The pager's port for the object (the kernel holds one send right while it is alive).
    pub port: PortId,
    /// The object's control port (its receive right is the kernel's).
    pub control: PortId,
    pub state: LinkState,
    pub cluster_pages: u32,
    pub pending: Vec<Pending>,
    /// Threads waiting for a page of the object (or for `init`).
    pub waiters: Fifo<ThreadId>,
    pub returns: Vec<PendingReturn>,
    /// Pages in `returns`.
    pub in_flight: u32,
    /// The object is the default pager's (anonymous memory paged out).
    pub default_pager: bool,
    /// No returns before this tick: the pager refused one (for the default pager's objects,
    /// [`DEFAULT_PAGER_PAUSED_UNTIL`] counts instead).
    pub paused_until: u64,
    /// Requests and returns sent for the object (`prefetch_used` is the object's own).
    pub statistics: libipc::pager::ObjectStatistics,
    /// Pages the pager could not supply: the first page of each request it answered with an
    /// error. Requests for other pages stop short of them, so a lost page fails its own
    /// faults only, not those of its neighbours in a cluster. A page stays noted (a fault on
    /// it still asks for it; it is only never asked for ahead).
    pub lost: Vec<u64>,
}

/// Lost pages (`PagerLink::lost`) noted per object at most; past that an error answer
/// fails the whole request.
const MAX_LOST_PAGES: usize = 64;

/// Pages returned to pagers and not yet answered, over all objects: the pageout daemon
/// counts them toward its free target (they will be free once their pagers have them), so it
/// does not send nearly all memory out when memory is spread over many objects.
static PAGES_IN_FLIGHT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Pages returned to pagers and not yet answered.
pub fn pages_in_flight() -> u64 {
    PAGES_IN_FLIGHT.load(core::sync::atomic::Ordering::Relaxed)
}

/// Counts `pages` more (or, with `answered`, fewer) pages in flight to pagers.
pub(super) fn count_in_flight(pages: u64, answered: bool) {
    use core::sync::atomic::Ordering::Relaxed;
    if answered {
        let _ = PAGES_IN_FLIGHT.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(pages)));
    } else {
        PAGES_IN_FLIGHT.fetch_add(pages, Relaxed);
    }
}

/// After a pager refuses a return (its store or disk is full, a write failed), the kernel
/// sends it no more for this long (timer ticks: 1 s), then tries again: work resumes by
/// itself once space is freed, and a full pager is not asked again and again meanwhile.
const REFUSAL_PAUSE_TICKS: u64 = 100;

/// The tick before which no returns go to the default pager (set by its refusals: one
/// pager serves every anonymous object, so a refusal for one holds for all).
static DEFAULT_PAGER_PAUSED_UNTIL: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(0);

impl PagerLink {
    /// A link to the pager behind `port` for an object whose control port is `control`,
    /// waiting for the pager's attributes.
    fn new(port: PortId, control: PortId) -> PagerLink {
        PagerLink {
            port,
            control,
            state: LinkState::Initializing,
            cluster_pages: libipc::pager::DEFAULT_CLUSTER_PAGES,
            pending: Vec::new(),
            waiters: Fifo::new(),
            returns: Vec::new(),
            in_flight: 0,
            default_pager: false,
            paused_until: 0,
            statistics: libipc::pager::ObjectStatistics::default(),
            lost: Vec::new(),
        }
    }

    fn pending_at(&self, offset: u64) -> Option<usize> {
        self.pending
            .iter()
            .position(|p| (p.start..p.end).contains(&offset))
    }

    /// Whether the page at `offset` is on its way to the pager.
    pub fn returning(&self, offset: u64) -> bool {
        self.returns
            .iter()
            .any(|r| (r.start..r.end).contains(&offset))
    }

    /// Whether returns wait only for answers on their way: its `init` (a new default-pager
    /// object's create) or the returns in flight. Its pages keep their places meanwhile.
    pub fn busy_for_now(&self) -> bool {
        self.state == LinkState::Initializing || self.in_flight >= RETURNS_IN_FLIGHT
    }

    /// Whether pages may be returned to it now.
    pub fn takes_returns(&self) -> bool {
        let paused_until = if self.default_pager {
            DEFAULT_PAGER_PAUSED_UNTIL.load(core::sync::atomic::Ordering::Relaxed)
        } else {
            self.paused_until
        };
        self.state == LinkState::Ready
            && self.in_flight < RETURNS_IN_FLIGHT
            && (paused_until == 0 || now() >= paused_until)
    }

    /// Pauses returns to the pager after a refusal; `true` if they were not paused already
    /// (the first refusal of a spell, worth a console line).
    fn pause_returns(&mut self) -> bool {
        let until = now() + REFUSAL_PAUSE_TICKS;
        let previous = if self.default_pager {
            DEFAULT_PAGER_PAUSED_UNTIL.swap(until, core::sync::atomic::Ordering::Relaxed)
        } else {
            core::mem::replace(&mut self.paused_until, until)
        };
        // A refusal within a pause's length of the last one continues the same spell.
        previous == 0 || previous + REFUSAL_PAUSE_TICKS < now()
    }
}

/// How a thread waiting for a page goes on once the page is there (or cannot be had).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// A fault in user mode at `address`: the instruction runs again (a memory error ends
    /// the task).
    Fault { address: u64 },
    /// A system call that touched the page: it runs again (a memory error is its result).
    Syscall,
    /// The receive of a `mach_msg` whose buffer needed the page: the receive runs again
    /// (whatever the call had sent is not sent again).
    Receive,
    /// A thread about to run whose task's page-table root could not be built (its tables
    /// were collected while it was idle): it runs as it was once memory is free (waits for
    /// memory only).
    Run,
}

pub(crate) use crate::ipc::request::encode_values;

/// Takes the first out-of-line region of a message.
pub(crate) fn first_region(memory: &mut [Option<MapCopy>]) -> Option<MapCopy> {
    memory.iter_mut().find_map(Option::take)
}

/// An object's control port as a kernel receiver: its pager's `memory_control` calls.
#[derive(Clone, Copy, Debug)]
pub struct ControlPort(pub ObjectId);

impl KernelReceiver for ControlPort {
    type View<'k> = Option<ControlView>;
    type Call = ControlCall;
    type Refusal = ControlError;

    fn view(self, kernel: &Kernel) -> Option<ControlView> {
        let link = kernel.vm.pagers.get(&self.0)?;
        Some(ControlView {
            cluster: u64::from(link.cluster_pages) * PAGE_SIZE,
            size: kernel
                .vm
                .objects
                .get(self.0)
                .map_or(0, |o| o.size().next_multiple_of(PAGE_SIZE)),
        })
    }

    fn decode(
        self,
        view: &Option<ControlView>,
        request: &Request<'_>,
    ) -> Result<ControlCall, ControlError> {
        decode_control(*view, request)
    }

    fn invoke(
        self,
        kernel: &mut Kernel,
        _port: PortId,
        decoded: Result<ControlCall, ControlError>,
        mut parts: Parts<'_>,
    ) {
        let reply = parts.reply.take();
        kernel.release_destination(parts.destination.take());
        let answer = decoded.and_then(|call| kernel.control_call(self.0, call, parts.memory));
        if answer.is_err() {
            count(&statistics::PAGER_REJECTS);
        }
        if let Some(right) = reply {
            kernel.control_reply(right, parts.id, answer);
        }
        kernel.release_parts(&mut parts);
    }
}

/// The port a pager's answer to one kernel request comes to, as a kernel receiver: the
/// request's object, offset and kind. It takes one message and is destroyed.
#[derive(Clone, Copy, Debug)]
pub struct AnswerPort {
    pub object: ObjectId,
    pub offset: u64,
    pub kind: ReplyKind,
}

impl KernelReceiver for AnswerPort {
    type View<'k> = AnswerView;
    type Call = AnswerCall;
    type Refusal = AnswerRefusal;

    fn view(self, kernel: &Kernel) -> AnswerView {
        let link = kernel.vm.pagers.get(&self.object);
        let pending = link.and_then(|link| match self.kind {
            ReplyKind::Init => None,
            ReplyKind::Data => link
                .pending
                .iter()
                .find(|p| p.start == self.offset)
                .map(|p| p.start..p.end),
            ReplyKind::Return => link
                .returns
                .iter()
                .find(|r| r.start == self.offset)
                .map(|r| r.start..r.end),
        });
        AnswerView {
            linked: link.is_some(),
            pending,
        }
    }

    fn decode(self, view: &AnswerView, request: &Request<'_>) -> Result<AnswerCall, AnswerRefusal> {
        decode_answer(self.kind, view, request)
    }

    fn invoke(
        self,
        kernel: &mut Kernel,
        port: PortId,
        decoded: Result<AnswerCall, AnswerRefusal>,
        mut parts: Parts<'_>,
    ) {
        let reply = parts.reply.take();
        kernel.release_destination(parts.destination.take());
        kernel.destroy_port(port);
        if let Some(right) = reply {
            kernel.release(right);
        }
        let AnswerPort {
            object,
            offset,
            kind,
        } = self;
        match decoded {
            Ok(AnswerCall::Init(answer)) => kernel.init_answered(object, answer),
            Ok(AnswerCall::Data(answer)) => {
                kernel.data_answered(object, offset, answer, parts.memory)
            }
            Ok(AnswerCall::Return(answer)) => {
                kernel.return_answered(object, offset, answer, parts.memory)
            }
            Err(AnswerRefusal::Malformed) => {
                count(&statistics::PAGER_REJECTS);
                kernel.answer_failed(object, offset, kind);
            }
            Err(AnswerRefusal::Unexpected) => count(&statistics::PAGER_REJECTS),
            Err(AnswerRefusal::Unlinked) => {}
        }
        kernel.release_parts(&mut parts);
    }
}

impl Kernel {
    /// `vm_map`: maps `[offset, offset + size)` of the memory object behind send right
    /// `name` of `task`'s into its address space; the object is created (and its pager sent
    /// `init`) the first time the port is mapped by anyone.
    pub fn map_memory_object(
        &mut self,
        task: TaskId,
        address: Option<u64>,
        size: u64,
        name: u32,
        offset: u64,
        protection: Protection,
    ) -> Result<u64, KernReturn> {
        use crate::ipc::space::{Object, Rights};
        let t = self.tasks.get(task).ok_or(KernReturn::InvalidArgument)?;
        let entry = t.ipc.lookup(name).ok_or(KernReturn::InvalidName)?;
        let Object::Port(port) = entry.object else {
            return Err(KernReturn::InvalidRight);
        };
        if !entry.rights.contains(Rights::SEND) {
            return Err(KernReturn::InvalidRight);
        }
        // A pager is a task: kernel ports (a task's, a control port) are no memory objects.
        if !matches!(
            self.ipc.port(port).map(|p| p.receiver),
            Some(Receiver::Task(_) | Receiver::InTransit)
        ) {
            return Err(KernReturn::InvalidRight);
        }
        let end = offset
            .checked_add(size)
            .ok_or(KernReturn::InvalidArgument)?;
        let object = match self.vm.pager_ports.get(&port).copied() {
            Some(object) => {
                let o = self
                    .vm
                    .objects
                    .get_mut(object)
                    .ok_or(KernReturn::InvalidArgument)?;
                o.add_reference();
                o.grow(end);
                object
            }
            None => self.new_pager_object(port, end)?,
        };
        let t = self
            .tasks
            .get_mut(task)
            .ok_or(KernReturn::InvalidArgument)?;
        match t.space.map_object(
            address,
            libipc::abi::syscall::VM_ANYWHERE_BASE,
            size,
            object,
            offset,
            protection,
        ) {
            Ok(start) => Ok(start),
            Err(e) => {
                crate::vm::address_space::release_object(&mut self.vm.objects, object);
                self.reap_pagers();
                Err(e)
            }
        }
    }

    /// A new object over pager port `port`, `size` bytes so far, with its control port; its
    /// `init` is on its way.
    fn new_pager_object(&mut self, port: PortId, size: u64) -> Result<ObjectId, KernReturn> {
        let shortage = KernReturn::ResourceShortage;
        self.vm.pager_ports.try_reserve(1).map_err(|_| shortage)?;
        self.vm.pagers.try_reserve(1).map_err(|_| shortage)?;
        let object = self
            .vm
            .objects
            .insert(VmObject::new(ObjectKind::Pager, size))
            .map_err(|_| shortage)?;
        let control =
            match self
                .ipc
                .insert_port(Port::new(Receiver::Kernel(KernelObject::MemoryControl(
                    object,
                )))) {
                Ok(control) => control,
                Err(_) => {
                    self.vm.objects.remove(object);
                    return Err(KernReturn::ResourceShortage);
                }
            };
        if let Some(p) = self.ipc.port_mut(port) {
            p.send_rights += 1;
        }
        self.vm.pager_ports.insert(port, object);
        self.vm.pagers.insert(object, PagerLink::new(port, control));
        // The pager gets a send right to the control port with `init`.
        let sent = self
            .pager_reply_port(object, 0, ReplyKind::Init)
            .map(|reply| {
                if let Some(c) = self.ipc.port_mut(control) {
                    c.send_rights += 1;
                    c.make_send_count += 1;
                }
                let control = CarriedRight::Send(control);
                self.call_pager(port, EmmiCall::Init { control, size }, Some(reply));
            });
        if sent.is_err() {
            // The object stays; faults on it find no pager and wait out their timeout.
            log::error!("vm: no memory to send init to a pager");
        }
        Ok(object)
    }

    /// A kernel port for the answer to the request of kind `kind` at `offset` of `object`,
    /// with the one send-once right that travels in the request.
    pub(super) fn pager_reply_port(
        &mut self,
        object: ObjectId,
        offset: u64,
        kind: ReplyKind,
    ) -> Result<PortId, ()> {
        let mut port = Port::new(Receiver::Kernel(KernelObject::PagerReply {
            object,
            offset,
            kind,
        }));
        port.send_once_rights = 1;
        self.ipc.insert_port(port).map_err(|_| ())
    }

    /// Makes memory-object call `call` on the pager whose port is `port`, its answer to come
    /// to `reply`. A collocated pager that takes calls has it as a call of its routine
    /// (`colloc::queue_pager_call`: no message is built); any other pager gets a message.
    pub(super) fn call_pager(&mut self, port: PortId, call: EmmiCall, reply: Option<PortId>) {
        let (call, reply) = match crate::kern::colloc::direct_pager(self, port) {
            None => (call, reply),
            Some(pager) => {
                match crate::kern::colloc::queue_pager_call(self, pager, port, call, reply) {
                    Ok(()) => return,
                    Err(not_taken) => not_taken,
                }
            }
        };
        let mut body = Vec::new();
        let encoded = match &call {
            EmmiCall::Init { size, .. } | EmmiCall::Create { size, .. } => {
                encode_values(size, &mut body)
            }
            EmmiCall::DataRequest {
                offset,
                length,
                access,
            } => encode_values(&(offset, length, access), &mut body),
            EmmiCall::Terminate => encode_values(&(), &mut body),
            EmmiCall::DataReturn { offset, dirty, .. } => {
                encode_values(&(offset, dirty), &mut body)
            }
            EmmiCall::CreateProgram { name, size, .. } => {
                encode_values(&(name.as_str(), size), &mut body)
            }
        };
        if encoded.is_err() {
            // No memory for the values: the call is released unanswered (a return's pages
            // are taken back, a request's waiters get an error).
            call.release(self);
            if let Some(reply) = reply {
                self.release(CarriedRight::SendOnce(reply));
            }
            return;
        }
        match call {
            EmmiCall::Init { control, .. } => {
                self.send_to_pager(port, ids::INIT, &[control], None, body, reply)
            }
            EmmiCall::DataRequest { .. } => {
                self.send_to_pager(port, ids::DATA_REQUEST, &[], None, body, reply)
            }
            EmmiCall::Terminate => self.send_to_pager(port, ids::TERMINATE, &[], None, body, reply),
            EmmiCall::DataReturn { copy, .. } => {
                self.send_to_pager(port, ids::DATA_RETURN, &[], Some(copy), body, reply)
            }
            EmmiCall::Create {
                object, control, ..
            } => self.send_to_pager(port, ids::CREATE, &[object, control], None, body, reply),
            EmmiCall::CreateProgram {
                object,
                control,
                file,
                ..
            } => {
                let carry = [object, control];
                self.send_to_pager(port, ids::CREATE_PROGRAM, &carry, Some(file), body, reply)
            }
        }
    }

    /// Sends a request to a pager's port: `id`, the rights `carry`, then out-of-line
    /// `memory`, data `values` (length-prefixed), the reply right `reply`. Kernel requests
    /// never wait for room. If the message cannot be made, what it would have carried is
    /// released (the memory freed, the reply port destroyed).
    pub(super) fn send_to_pager(
        &mut self,
        port: PortId,
        id: u32,
        carry: &[CarriedRight],
        memory: Option<MapCopy>,
        values: Vec<u8>,
        reply: Option<PortId>,
    ) {
        match self.kernel_message(id, carry, memory, values) {
            Some(mut message) => {
                message.reply = reply.map(CarriedRight::SendOnce);
                self.kernel_send(port, message);
            }
            None => {
                if let Some(reply) = reply {
                    self.destroy_port(reply);
                }
            }
        }
    }

    /// A message of the kernel's: `values` (encoded with [`encode_values`]) after a
    /// descriptor for each of `carry` and for `memory`. `None` (the rights and the memory
    /// released) when the kernel heap has no room for it.
    pub(crate) fn kernel_message(
        &mut self,
        id: u32,
        carry: &[CarriedRight],
        memory: Option<MapCopy>,
        values: Vec<u8>,
    ) -> Option<KMessage> {
        let count = carry.len() + usize::from(memory.is_some());
        let mut body = values;
        let mut rights = Vec::new();
        let mut regions = Vec::new();
        if count > 0 {
            let mut with = Vec::new();
            let room = with
                .try_reserve(4 + count * DESCRIPTOR_SIZE + body.len())
                .is_ok()
                && rights.try_reserve(count).is_ok()
                && regions.try_reserve(count).is_ok();
            if !room {
                for &right in carry {
                    self.release(right);
                }
                if let Some(copy) = memory {
                    copy.release(&mut self.vm.objects);
                }
                return None;
            }
            with.extend_from_slice(&(count as u32).to_le_bytes());
            for &right in carry {
                let descriptor = Descriptor {
                    kind: descriptor_kind::PORT,
                    ..Descriptor::default()
                };
                with.extend_from_slice(&descriptor.to_bytes());
                rights.push(Some(right));
                regions.push(None);
            }
            if let Some(copy) = memory {
                let descriptor = Descriptor {
                    size: copy.size as u32,
                    kind: descriptor_kind::OUT_OF_LINE,
                    ..Descriptor::default()
                };
                with.extend_from_slice(&descriptor.to_bytes());
                rights.push(None);
                regions.push(Some(copy));
            }
            with.extend_from_slice(&body);
            body = with;
        }
        Some(KMessage {
            id,
            complex: count > 0,
            reply: None,
            rights,
            memory: regions,
            body,
            destination: None,
            charge: None,
        })
    }

    /// Blocks `thread` until the page at `offset` of pager object `object` is there, asking
    /// the pager for it (and its cluster's likely neighbours) unless it was asked already.
    /// `Err` when it cannot come (the pager is dead): the caller reports a memory error.
    pub fn wait_for_page(
        &mut self,
        thread: ThreadId,
        object: ObjectId,
        offset: u64,
        strategy: Strategy,
        access: Protection,
        resume: Resume,
    ) -> Result<(), FaultError> {
        let size = self.vm.objects.get(object).map_or(0, VmObject::size);
        let link = self.vm.pagers.get(&object).ok_or(FaultError::MemoryError)?;
        let mut served = false;
        match link.state {
            LinkState::Dead => return Err(FaultError::MemoryError),
            LinkState::Initializing => {}
            // On its way out: served from the page in flight, or the answer wakes us.
            LinkState::Ready if link.returning(offset) => {
                served = self.serve_from_return(object, offset);
            }
            // Already asked for: the answer wakes us.
            LinkState::Ready if link.pending_at(offset).is_some() => {}
            LinkState::Ready => self.request(object, offset, strategy, access, size)?,
        }
        let trusted = self.served_by_a_system_pager(object);
        let link = self
            .vm
            .pagers
            .get_mut(&object)
            .ok_or(FaultError::MemoryError)?;
        let wait_limit = if trusted {
            timeout().max(DEFAULT_PAGER_TIMEOUT_TICKS)
        } else {
            timeout()
        };
        link.waiters.push_back(&mut self.threads, thread);
        // A blocked receiver switching to this wait drops its receive deadline.
        self.sched.disarm(&mut self.threads, thread);
        if let Some(t) = self.threads.get_mut(thread) {
            match resume {
                Resume::Fault { .. } | Resume::Run => {}
                Resume::Syscall => t.frame.rip -= 2,
                Resume::Receive => {
                    use libipc::abi::message::options;
                    t.frame.rip -= 2;
                    t.frame.rax = Syscall::MachMsg as u64;
                    t.frame.rsi &= !(options::SEND | options::SEND_TIMEOUT);
                }
            }
        }
        self.block(
            thread,
            Continuation::PageWait {
                object,
                offset,
                resume,
            },
            Some(now() + wait_limit),
        );
        if served {
            // The page is back already: the thread goes on at once (and faults it in).
            self.wake_page_waiters(object, Some(offset..offset + PAGE_SIZE));
        }
        Ok(())
    }

    /// Sends the `data_request` for a fault at `offset`: the cluster's run of absent pages
    /// the strategy predicts.
    fn request(
        &mut self,
        object: ObjectId,
        offset: u64,
        strategy: Strategy,
        access: Protection,
        size: u64,
    ) -> Result<(), FaultError> {
        let (o, link) = match (self.vm.objects.get(object), self.vm.pagers.get(&object)) {
            (Some(o), Some(link)) => (o, link),
            _ => return Err(FaultError::MemoryError),
        };
        // Pages absent from the object and its pager's hands: for a default-pager object,
        // only those the pager holds.
        let anonymous = o.kind() == ObjectKind::Anonymous;
        let absent = |at| {
            !o.has_page(at)
                && link.pending_at(at).is_none()
                && !link.returning(at)
                && (!anonymous || o.is_paged_out(at))
                && (link.lost.is_empty() || !link.lost.contains(&at))
        };
        let range = if anonymous {
            default_pager_request_range(offset, strategy, link.cluster_pages, size, absent)
        } else {
            request_range(offset, strategy, link.cluster_pages, size, absent)
        };
        let port = link.port;
        let reply = self
            .pager_reply_port(object, range.start, ReplyKind::Data)
            .map_err(|()| FaultError::OutOfMemory)?;
        let pages = (range.end - range.start) / PAGE_SIZE;
        let link = self
            .vm
            .pagers
            .get_mut(&object)
            .ok_or(FaultError::MemoryError)?;
        if link.pending.try_reserve(1).is_err() {
            self.destroy_port(reply);
            return Err(FaultError::OutOfMemory);
        }
        link.pending.push(Pending {
            start: range.start,
            end: range.end,
            faulting: offset,
            sent_at: now(),
            reply,
        });
        link.statistics.requests += 1;
        link.statistics.pages_requested += pages;
        link.statistics.prefetched += pages - 1;
        count(&statistics::REQUESTS_BY_PAGES[pages.min(16) as usize]);
        statistics::add(&statistics::PREFETCHED, pages - 1);
        let call = EmmiCall::DataRequest {
            offset: range.start,
            length: range.end - range.start,
            access: u32::from(access.bits()),
        };
        self.call_pager(port, call, Some(reply));
        Ok(())
    }

    /// What the pager's answer to `init` makes of the object.
    fn init_answered(&mut self, object: ObjectId, answer: InitAnswer) {
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        match answer {
            InitAnswer::Ready { cluster_pages } => {
                link.cluster_pages = cluster_pages;
                link.state = LinkState::Ready;
            }
            InitAnswer::BadCluster { asked } => {
                let used = libipc::pager::DEFAULT_CLUSTER_PAGES;
                log::warn!("vm: pager asked for clusters of {asked} pages; using {used}");
                count(&statistics::PAGER_REJECTS);
                link.state = LinkState::Ready;
                // The pager is told, on the object's port, with the valid range.
                let port = link.port;
                let refused = libipc::pager::AttributesRefused {
                    asked,
                    used,
                    max_cluster_pages: libipc::pager::MAX_CLUSTER_PAGES,
                };
                let mut body = Vec::new();
                if encode_values(&refused, &mut body).is_ok() {
                    if let Some(message) =
                        self.kernel_message(ids::ATTRIBUTES_REFUSED, &[], None, body)
                    {
                        self.kernel_send(port, message);
                    }
                }
            }
            InitAnswer::Refused { status } => {
                log::warn!(
                    "vm: a pager refused init (reply status {status}, {} frames free); its \
                     object gives memory errors",
                    crate::vm::kernel_space::free_frames()
                );
                link.state = LinkState::Dead;
            }
        }
        self.wake_page_waiters(object, None);
    }

    /// The answer to the `data_request` at `offset`, with the message's regions.
    fn data_answered(
        &mut self,
        object: ObjectId,
        offset: u64,
        answer: DataAnswer,
        memory: &mut [Option<MapCopy>],
    ) {
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        let Some(i) = link.pending.iter().position(|p| p.start == offset) else {
            count(&statistics::PAGER_REJECTS);
            return;
        };
        let request = link.pending.remove(i);
        let asked = request.start..request.end;
        match (answer, first_region(memory)) {
            (DataAnswer::Supply, Some(copy)) => {
                self.install(object, request.start, Some(copy), Some(request))
            }
            (DataAnswer::Supply | DataAnswer::BadSupply, copy) => {
                log::warn!(
                    "vm: pager supplied {:#x} bytes for a request of {:#x}",
                    copy.as_ref().map_or(0, |c| c.size),
                    asked.end - asked.start
                );
                if let Some(copy) = copy {
                    copy.release(&mut self.vm.objects);
                }
                count(&statistics::PAGER_REJECTS);
                self.fail_waiters(object, asked);
            }
            (DataAnswer::Zeros, _) => {
                self.install_zeros(object, asked.start, (asked.end - asked.start) / PAGE_SIZE)
            }
            (DataAnswer::BadTag, _) => {
                count(&statistics::PAGER_REJECTS);
                self.fail_waiters(object, asked);
            }
            (DataAnswer::Error(error), _) => {
                if let Some(error) = error {
                    log::debug!("vm: pager error {error:?} at {:#x}", asked.start);
                }
                self.request_failed(object, asked);
            }
        }
    }

    /// The pager answered the request for `asked` with an error. The error is the first
    /// page's: the others may be fine (a disk pager whose read of the run failed on one
    /// block). Its waiters get a memory error; the others' ask again, in requests that stop
    /// short of the lost page (`PagerLink::lost`). With no room to note it (at most
    /// [`MAX_LOST_PAGES`], so that a pager failing everything costs little memory and its
    /// faults little time), the whole request fails, as asking again could ask for it again.
    fn request_failed(&mut self, object: ObjectId, asked: core::ops::Range<u64>) {
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        let noted = link.lost.contains(&asked.start)
            || (link.lost.len() < MAX_LOST_PAGES && link.lost.try_reserve(1).is_ok() && {
                link.lost.push(asked.start);
                true
            });
        if !noted {
            self.fail_waiters(object, asked);
            return;
        }
        let first = asked.start..asked.start + PAGE_SIZE;
        self.fail_waiters(object, first.clone());
        self.wake_page_waiters(object, Some(first.end..asked.end));
    }

    /// The answer to the request at `offset` never came (its reply right was destroyed: the
    /// pager dropped it, or died): the threads waiting for it get a memory error.
    pub fn pager_reply_dropped(
        &mut self,
        port: PortId,
        object: ObjectId,
        offset: u64,
        kind: ReplyKind,
    ) {
        self.destroy_port(port);
        self.answer_failed(object, offset, kind);
    }

    fn answer_failed(&mut self, object: ObjectId, offset: u64, kind: ReplyKind) {
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        match kind {
            ReplyKind::Init => {
                link.state = LinkState::Dead;
                self.fail_waiters(object, 0..u64::MAX);
            }
            ReplyKind::Data => {
                if let Some(i) = link.pending.iter().position(|p| p.start == offset) {
                    let request = link.pending.remove(i);
                    self.fail_waiters(object, request.start..request.end);
                }
            }
            ReplyKind::Return => {
                if let Some(i) = link.returns.iter().position(|r| r.start == offset) {
                    let r = link.returns.remove(i);
                    link.in_flight -= ((r.end - r.start) / PAGE_SIZE) as u32;
                    count_in_flight((r.end - r.start) / PAGE_SIZE, true);
                    // Whatever the pager did with them, it did not say they are safe: the
                    // kernel's reference to them puts them back, dirty.
                    log::warn!(
                        "vm: a pager gave no answer for {} returned pages at {:#x}; kept",
                        (r.end - r.start) / PAGE_SIZE,
                        r.start
                    );
                    self.take_back_return(object, r);
                    self.wake_page_waiters(object, Some(r.start..r.end));
                }
            }
        }
    }

    /// The answer to the `data_return` at `offset`, with the message's regions: the pages
    /// are safe with the pager, or come back (refused) and stay dirty here.
    fn return_answered(
        &mut self,
        object: ObjectId,
        offset: u64,
        answer: ReturnAnswer,
        memory: &mut [Option<MapCopy>],
    ) {
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        let Some(i) = link.returns.iter().position(|r| r.start == offset) else {
            count(&statistics::PAGER_REJECTS);
            return;
        };
        let r = link.returns.remove(i);
        link.in_flight -= ((r.end - r.start) / PAGE_SIZE) as u32;
        count_in_flight((r.end - r.start) / PAGE_SIZE, true);
        match (answer, first_region(memory)) {
            (ReturnAnswer::Stored, _) => release_object(&mut self.vm.objects, r.transit),
            (ReturnAnswer::Refused, Some(copy)) => {
                count(&statistics::RETURNS_REFUSED);
                let first = self
                    .vm
                    .pagers
                    .get_mut(&object)
                    .is_some_and(PagerLink::pause_returns);
                if first {
                    log::warn!(
                        "vm: a pager refused {} pages (kept dirty); no returns to it for {} ms \
                         at a time until it takes them",
                        copy.size / PAGE_SIZE,
                        REFUSAL_PAUSE_TICKS * 10
                    );
                }
                self.reinstall_dirty(object, r.start, copy);
                release_object(&mut self.vm.objects, r.transit);
            }
            (ReturnAnswer::Refused | ReturnAnswer::RefusedWithoutPages, copy) => {
                count(&statistics::PAGER_REJECTS);
                if let Some(copy) = copy {
                    copy.release(&mut self.vm.objects);
                }
                log::warn!("vm: a pager refused returned pages without giving them back; kept");
                self.take_back_return(object, r);
            }
            (ReturnAnswer::Failed, _) => {
                // An error, or an answer that makes no sense: the pages were not stored, and
                // the kernel's reference to them puts them back, dirty.
                count(&statistics::PAGER_REJECTS);
                log::warn!(
                    "vm: a pager failed a return of pages at {:#x}; kept",
                    r.start
                );
                self.take_back_return(object, r);
            }
        }
        self.wake_page_waiters(object, Some(r.start..r.end));
    }

    /// Puts the pages of return `r` back into `object`, dirty, from the kernel's reference to
    /// them (the pager never said they are safe).
    fn take_back_return(&mut self, object: ObjectId, r: PendingReturn) {
        match MapCopy::whole_object(r.transit, r.end - r.start) {
            Ok(copy) => self.reinstall_dirty(object, r.start, copy),
            Err(_) => {
                log::error!("vm: no memory to take back pages in flight; they are lost");
                release_object(&mut self.vm.objects, r.transit);
            }
        }
    }

    /// A fault on the page at `offset` of `object`, on its way to the pager in return `r`:
    /// a copy of it goes back into the object at once (clean: the pager is storing the same
    /// data; if it refuses, the copy here is made dirty like any page still resident).
    /// `false` if it cannot be had that way (no memory, or the page is not in the transit
    /// object).
    fn serve_from_return(&mut self, object: ObjectId, offset: u64) -> bool {
        let Some(link) = self.vm.pagers.get(&object) else {
            return false;
        };
        let Some(r) = link
            .returns
            .iter()
            .find(|r| (r.start..r.end).contains(&offset))
        else {
            return false;
        };
        let Some(source) = self
            .vm
            .objects
            .get(r.transit)
            .and_then(|t| t.resident_page(offset - r.start))
        else {
            return false;
        };
        let Some(frame) = kernel_space::allocate_user_frame() else {
            return false;
        };
        crate::vm::address_space::copy_frame(source, frame);
        let installed = self.vm.objects.get_mut(object).is_some_and(|o| {
            !o.has_page(offset) && offset < o.size() && o.insert_page(offset, frame).is_ok()
        });
        if !installed {
            let _ = kernel_space::free_frame(frame);
            return false;
        }
        kernel_space::with_mappings(|m| m.set_owner(frame / PAGE_SIZE, object.to_raw(), offset));
        count(&statistics::RETURN_HITS);
        true
    }

    /// Puts pages a pager refused back into `object` from `offset`, dirty (their only copy).
    /// A page still resident (its copy was returned by a clean) keeps its contents and is
    /// marked dirty again.
    fn reinstall_dirty(&mut self, object: ObjectId, offset: u64, copy: MapCopy) {
        use crate::vm::page::page_flags::DIRTY;
        let Ok(frames) = take_frames(&mut self.vm.objects, copy) else {
            log::error!("vm: no memory to take back refused pages; they are lost");
            return;
        };
        let mut at = offset;
        for arrived in frames {
            let resident = self
                .vm
                .objects
                .get(object)
                .and_then(|o| o.resident_page(at));
            let frame = match resident {
                Some(frame) => {
                    if let Arrived::Frame(copy) = arrived {
                        let _ = kernel_space::free_frame(copy);
                    }
                    Some(frame)
                }
                None => self.install_page(object, at, arrived, None),
            };
            if let Some(frame) = frame {
                kernel_space::with_mappings(|m| m.note_flags(frame / PAGE_SIZE, DIRTY));
            }
            at += PAGE_SIZE;
        }
    }

    /// Carries out a decoded `memory_control` call with the message's regions; its answer
    /// (the reply's status and error).
    fn control_call(
        &mut self,
        object: ObjectId,
        call: ControlCall,
        memory: &mut [Option<MapCopy>],
    ) -> Result<Option<ObjectStatistics>, ControlError> {
        match call {
            ControlCall::Statistics => Ok(Some(self.object_statistics(object))),
            call => self.control_change(object, call, memory).map(|()| None),
        }
    }

    /// The figures of the pager object a region mapping `object` reads through to (itself,
    /// or behind copy-on-write copies of it); zeros when there is none.
    pub fn region_pager_statistics(&self, object: ObjectId) -> ObjectStatistics {
        let mut at = Some(object);
        while let Some(object) = at {
            if self.vm.pagers.contains_key(&object) {
                return self.object_statistics(object);
            }
            at = self
                .vm
                .objects
                .get(object)
                .and_then(|o| o.backing())
                .map(|(b, _)| b);
        }
        ObjectStatistics::default()
    }

    /// What the kernel did with pager object `object` (zeros for an object with no pager).
    pub fn object_statistics(&self, object: ObjectId) -> ObjectStatistics {
        let mut statistics = self
            .vm
            .pagers
            .get(&object)
            .map_or_else(ObjectStatistics::default, |link| link.statistics);
        statistics.prefetch_used = self
            .vm
            .objects
            .get(object)
            .map_or(0, |o| u64::from(o.prefetch_used()));
        statistics
    }

    /// Carries out a `memory_control` call that changes the object.
    fn control_change(
        &mut self,
        object: ObjectId,
        call: ControlCall,
        memory: &mut [Option<MapCopy>],
    ) -> Result<(), ControlError> {
        match call {
            ControlCall::Statistics => Ok(()),
            ControlCall::Supply { offset } => {
                self.install(object, offset, first_region(memory), None);
                Ok(())
            }
            ControlCall::Lock {
                range,
                clean,
                flush,
            } => self.lock(object, range, clean, flush),
            ControlCall::Unavailable { range } => {
                self.install_zeros(object, range.start, (range.end - range.start) / PAGE_SIZE);
                Ok(())
            }
            ControlCall::Error { range, code } => {
                log::debug!("vm: pager error {code} at {:#x}", range.start);
                self.forget_pending(object, range.clone());
                self.fail_waiters(object, range);
                Ok(())
            }
            ControlCall::SetAttributes { cluster_pages } => {
                if let Some(link) = self.vm.pagers.get_mut(&object) {
                    link.cluster_pages = cluster_pages;
                }
                Ok(())
            }
        }
    }

    /// Replies to a `memory_control` call through `right`.
    fn control_reply(
        &mut self,
        right: CarriedRight,
        id: u32,
        answer: Result<Option<ObjectStatistics>, ControlError>,
    ) {
        use libipc::abi::body::status;
        let mut body = Vec::new();
        let known = (ids::DATA_SUPPLY..=ids::STATISTICS).contains(&id);
        let encoded = match answer {
            Ok(None) => encode_values(&status::OK, &mut body),
            Ok(Some(statistics)) => encode_values(&(status::OK, statistics), &mut body),
            Err(_) if !known => encode_values(&status::UNKNOWN_ROUTINE, &mut body),
            Err(e) => encode_values(&(status::ERROR, e), &mut body),
        };
        if encoded.is_err() {
            self.release(right);
            return;
        }
        let port = right.port();
        let message = KMessage {
            id: id.wrapping_add(100),
            complex: false,
            reply: None,
            rights: Vec::new(),
            memory: Vec::new(),
            body,
            destination: Some(right),
            charge: None,
        };
        self.kernel_send(port, message);
    }

    /// Moves the pages of `copy` (or zeros, with no copy) into `object` from `offset`:
    /// pages already resident keep their contents; past the object's end nothing goes.
    /// For the answer to `request`, its read-ahead pages are marked prefetched.
    fn install(
        &mut self,
        object: ObjectId,
        offset: u64,
        copy: Option<MapCopy>,
        request: Option<Pending>,
    ) {
        let Some(copy) = copy else {
            return;
        };
        let frames = match take_frames(&mut self.vm.objects, copy) {
            Ok(frames) => frames,
            Err(_) => {
                // No memory to take them: the pages stay absent, asked for again later.
                self.wake_page_waiters(object, None);
                return;
            }
        };
        let mut at = offset;
        for arrived in frames {
            self.install_page(object, at, arrived, request);
            at += PAGE_SIZE;
        }
        self.wake_page_waiters(object, None);
    }

    /// Zero-fills `pages` pages of `object` from `offset` that are not resident.
    fn install_zeros(&mut self, object: ObjectId, offset: u64, pages: u64) {
        for i in 0..pages {
            self.install_page(object, offset + i * PAGE_SIZE, Arrived::Zero, None);
            count(&statistics::UNAVAILABLE);
        }
        self.wake_page_waiters(object, None);
    }

    /// Puts the page that arrived (a frame, or zeros) in `object` at `offset`, unless a page
    /// is there; the frame it put there. A missing page stays absent (asked for again).
    fn install_page(
        &mut self,
        object: ObjectId,
        offset: u64,
        arrived: Arrived,
        request: Option<Pending>,
    ) -> Option<u64> {
        let given = match arrived {
            Arrived::Frame(frame) => Some(frame),
            Arrived::Zero => None,
            Arrived::Missing => return None,
        };
        let Some(o) = self.vm.objects.get_mut(object) else {
            if let Some(frame) = given {
                let _ = kernel_space::free_frame(frame);
            }
            return None;
        };
        if o.has_page(offset) || offset >= o.size() {
            if let Some(frame) = given {
                let _ = kernel_space::free_frame(frame);
            }
            return None;
        }
        let frame = match given {
            Some(frame) => {
                count(&statistics::PAGEINS);
                frame
            }
            None => {
                let frame = kernel_space::allocate_user_frame()?;
                // SAFETY: a fresh frame, mapped by the direct map, owned by nobody yet.
                unsafe {
                    core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, PAGE_SIZE as usize)
                };
                frame
            }
        };
        if o.insert_page(offset, frame).is_err() {
            let _ = kernel_space::free_frame(frame);
            return None;
        }
        kernel_space::with_mappings(|m| {
            m.set_owner(frame / PAGE_SIZE, object.to_raw(), offset);
            if request.is_some_and(|r| r.faulting != offset) {
                m.note_flags(frame / PAGE_SIZE, PREFETCHED);
            }
        });
        Some(frame)
    }

    /// `lock_request`: returns the dirty pages of `range` (inside one cluster) to the pager
    /// if `clean` (copies, unless they are flushed too), then drops its resident pages if
    /// `flush`.
    fn lock(
        &mut self,
        object: ObjectId,
        range: core::ops::Range<u64>,
        clean: bool,
        flush: bool,
    ) -> Result<(), ControlError> {
        if clean {
            // Runs of contiguous dirty pages, each one return.
            let mut at = range.start;
            while at < range.end {
                if !self.dirty_page(object, at) {
                    at += PAGE_SIZE;
                    continue;
                }
                let start = at;
                while at < range.end && self.dirty_page(object, at) {
                    at += PAGE_SIZE;
                }
                if !self.return_pages(object, start, at, !flush) {
                    return Err(ControlError::NoMemory);
                }
            }
        }
        if flush {
            self.flush(object, range);
        }
        Ok(())
    }

    /// Whether the page at `offset` of `object` is resident and written since its pager
    /// last had it (the hardware's dirty bits are read into its record on the way).
    fn dirty_page(&self, object: ObjectId, offset: u64) -> bool {
        self.vm
            .objects
            .get(object)
            .and_then(|o| o.resident_page(offset))
            .is_some_and(crate::vm::address_space::frame_is_dirty)
    }

    /// Takes the resident pages in `range` of `object` from every task that maps them and
    /// frees them (`lock_request`'s flush).
    fn flush(&mut self, object: ObjectId, range: core::ops::Range<u64>) {
        let Some(o) = self.vm.objects.get_mut(object) else {
            return;
        };
        o.remove_pages(range.start, range.end, |frame| {
            crate::vm::pmap::remove_everywhere(frame);
            let _ = kernel_space::free_frame(frame);
        });
    }

    /// Forgets the requests overlapping `range` (answered some other way).
    fn forget_pending(&mut self, object: ObjectId, range: core::ops::Range<u64>) {
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        let mut replies = Vec::new();
        link.pending.retain(|p| {
            let overlaps = p.start < range.end && range.start < p.end;
            if overlaps && replies.try_reserve(1).is_ok() {
                replies.push(p.reply);
                return false;
            }
            true
        });
        for reply in replies {
            self.destroy_port(reply);
        }
    }

    /// Wakes the threads waiting on `object` (those for pages in `range`, or all): each
    /// faults again, finding its page or asking anew.
    ///
    /// Every supply wakes threads: done straight off the queue, with no list made. (Waking
    /// ends no task, so no other waiter leaves the queue meanwhile; `fail_waiters`, which
    /// may end tasks, takes its threads off first.)
    fn wake_page_waiters(&mut self, object: ObjectId, range: Option<core::ops::Range<u64>>) {
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        let mut waiting = core::mem::take(&mut link.waiters);
        let mut keep = Fifo::new();
        while let Some(thread) = waiting.pop_front(&mut self.threads) {
            let wanted = match self.threads.get(thread).map(|t| t.continuation) {
                Some(Continuation::PageWait { offset, .. }) => {
                    range.as_ref().is_none_or(|r| r.contains(&offset))
                }
                _ => true,
            };
            if !wanted {
                keep.push_back(&mut self.threads, thread);
                continue;
            }
            self.sched.disarm(&mut self.threads, thread);
            if let Some(t) = self.threads.get_mut(thread) {
                t.continuation = Continuation::ReturnToUser;
                t.state = ThreadState::Ready;
            }
            self.make_ready(thread);
        }
        if let Some(link) = self.vm.pagers.get_mut(&object) {
            link.waiters = keep;
        }
    }

    /// Gives the threads waiting for pages of `object` in `range` a memory error.
    fn fail_waiters(&mut self, object: ObjectId, range: core::ops::Range<u64>) {
        for thread in self.take_page_waiters(object, Some(range)) {
            self.sched.disarm(&mut self.threads, thread);
            self.page_error(thread);
        }
    }

    /// Takes the threads waiting on `object` (for pages in `range`, or all) off its queue.
    fn take_page_waiters(
        &mut self,
        object: ObjectId,
        range: Option<core::ops::Range<u64>>,
    ) -> Vec<ThreadId> {
        let mut taken = Vec::new();
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return taken;
        };
        let mut keep = Fifo::new();
        while let Some(thread) = link.waiters.pop_front(&mut self.threads) {
            let wanted = match self.threads.get(thread).map(|t| t.continuation) {
                Some(Continuation::PageWait { offset, .. }) => {
                    range.as_ref().is_none_or(|r| r.contains(&offset))
                }
                _ => true,
            };
            if wanted && taken.try_reserve(1).is_ok() {
                taken.push(thread);
            } else {
                keep.push_back(&mut self.threads, thread);
            }
        }
        link.waiters = keep;
        taken
    }

    /// `thread`, waiting for a page, gets a memory error: a fault ends its task, a system
    /// call returns the error.
    fn page_error(&mut self, thread: ThreadId) {
        count(&statistics::MEMORY_ERRORS);
        let Some(t) = self.threads.get_mut(thread) else {
            return;
        };
        let Continuation::PageWait { resume, .. } = t.continuation else {
            return;
        };
        match resume {
            Resume::Fault { address } => {
                let (task, rip) = (t.task, t.frame.rip);
                t.continuation = Continuation::ReturnToUser;
                self.terminate_task(
                    task,
                    Exit::Fault(format_args!(
                        "#PF page fault at {address:#x} (rip={rip:#x}): {}",
                        FaultError::MemoryError
                    )),
                );
            }
            // (Only a wait for memory resumes this way, never a wait for a page.)
            Resume::Run => {
                let task = t.task;
                t.continuation = Continuation::ReturnToUser;
                self.terminate_task(
                    task,
                    Exit::Fault(format_args!("{}", FaultError::MemoryError)),
                );
            }
            Resume::Syscall | Resume::Receive => {
                t.frame.rip += 2;
                let code = if resume == Resume::Receive {
                    MsgReturn::RcvInvalidData as u64
                } else if t.frame.rax == Syscall::MachMsg as u64 {
                    MsgReturn::SendInvalidMemory as u64
                } else {
                    KernReturn::MemoryError as u64
                };
                self.finish_wait(thread, code, 0);
                self.make_ready(thread);
            }
        }
    }

    /// A page wait ran out of time: the pager has not answered. Requests for the page older
    /// than the timeout are forgotten (a later fault asks again) and the thread gets a
    /// memory error.
    pub fn page_wait_expired(&mut self, thread: ThreadId) {
        let Some(Continuation::PageWait { object, offset, .. }) =
            self.threads.get(thread).map(|t| t.continuation)
        else {
            return;
        };
        count(&statistics::PAGER_TIMEOUTS);
        self.remove_page_waiter(thread, object);
        let cutoff = now().saturating_sub(timeout());
        let stale = self.vm.pagers.get(&object).and_then(|link| {
            link.pending
                .iter()
                .find(|p| (p.start..p.end).contains(&offset) && p.sent_at <= cutoff)
                .map(|p| p.start..p.end)
        });
        if let Some(range) = stale {
            self.forget_pending(object, range);
        }
        self.page_error(thread);
    }

    /// Whether `object`'s pager is one the host port installed: the default pager, or the
    /// program pager (the task serving `program_pager`), whose objects are program text.
    /// Both are trusted, and their death is seen at once; under heavy load their queues are
    /// long (a thousand tasks faulting on text at once), so their waits get the default
    /// pager's patience instead of ending busy tasks with memory errors.
    fn served_by_a_system_pager(&self, object: ObjectId) -> bool {
        let Some(link) = self.vm.pagers.get(&object) else {
            return false;
        };
        if link.default_pager {
            return true;
        }
        let pager = self.ipc.port(link.port).map(|p| p.receiver);
        matches!((self.vm.program_pager_task, pager), (Some(program), Some(Receiver::Task(task))) if program == task)
    }

    /// Takes `thread` off `object`'s waiters (its wait was cancelled).
    pub fn remove_page_waiter(&mut self, thread: ThreadId, object: ObjectId) {
        if let Some(link) = self.vm.pagers.get_mut(&object) {
            link.waiters.remove(&mut self.threads, thread);
        }
    }

    /// A new port for `object`, whose receive right is about to travel to a pager (in
    /// `default_pager.create` or `program_pager.create`), the kernel holding a send right,
    /// with the object's control port (a send right made for the pager) and its link,
    /// `Initializing` until the pager answers.
    pub(super) fn new_object_port(
        &mut self,
        object: ObjectId,
    ) -> Result<(PortId, PortId), KernReturn> {
        let shortage = KernReturn::ResourceShortage;
        self.vm.pagers.try_reserve(1).map_err(|_| shortage)?;
        self.vm.pager_ports.try_reserve(1).map_err(|_| shortage)?;
        let port = self
            .ipc
            .insert_port(Port::new(Receiver::InTransit))
            .map_err(|_| shortage)?;
        let Ok(control) =
            self.ipc
                .insert_port(Port::new(Receiver::Kernel(KernelObject::MemoryControl(
                    object,
                ))))
        else {
            self.destroy_port(port);
            return Err(shortage);
        };
        if let Some(p) = self.ipc.port_mut(port) {
            p.send_rights += 1; // the kernel's, for its requests
            p.make_send_count += 1;
        }
        if let Some(c) = self.ipc.port_mut(control) {
            c.send_rights += 1; // the pager's
            c.make_send_count += 1;
        }
        self.vm.pager_ports.insert(port, object);
        self.vm.pagers.insert(object, PagerLink::new(port, control));
        Ok((port, control))
    }

    /// A pager object over boot-archive file `name` (`size` bytes at physical `base`),
    /// served by program pager `pager`: sent `program_pager.create` with the file's
    /// contents (a copy-on-write view of the archive). Faults on it wait for the answer.
    pub fn program_pager_object(
        &mut self,
        pager: PortId,
        name: &str,
        base: u64,
        size: u64,
    ) -> Result<ObjectId, KernReturn> {
        let shortage = KernReturn::ResourceShortage;
        let object = self
            .vm
            .objects
            .insert(VmObject::new(ObjectKind::Pager, size))
            .map_err(|_| shortage)?;
        let file_size = size;
        let size = size.next_multiple_of(PAGE_SIZE);
        // The view the pager reads: a shadow in front of the archive's pages, so a write of
        // the pager's would copy, never touch the archive.
        let file = self
            .vm
            .objects
            .insert(VmObject::new(ObjectKind::Physical { base }, size))
            .map_err(|_| shortage);
        let view = file.and_then(|file| {
            self.vm
                .objects
                .insert(VmObject::shadow(file, 0, size))
                .map_err(|_| {
                    self.vm.objects.remove(file);
                    shortage
                })
        });
        let view = match view {
            Ok(view) => view,
            Err(e) => {
                self.vm.objects.remove(object);
                return Err(e);
            }
        };
        let mut file_name = alloc::string::String::new();
        let made = file_name
            .try_reserve_exact(name.len())
            .map_err(|_| shortage)
            .and_then(|()| MapCopy::whole_object(view, size).map_err(|_| shortage));
        file_name.push_str(name);
        let copy = match made {
            Ok(copy) => copy,
            Err(e) => {
                crate::vm::address_space::release_object(&mut self.vm.objects, view);
                self.vm.objects.remove(object);
                return Err(e);
            }
        };
        let (port, control) = match self.new_object_port(object) {
            Ok(ports) => ports,
            Err(e) => {
                copy.release(&mut self.vm.objects);
                self.vm.objects.remove(object);
                return Err(e);
            }
        };
        match self.pager_reply_port(object, 0, ReplyKind::Init) {
            Ok(reply) => {
                let call = EmmiCall::CreateProgram {
                    object: CarriedRight::Receive(port),
                    control: CarriedRight::Send(control),
                    name: file_name,
                    size: file_size,
                    file: copy,
                };
                self.call_pager(pager, call, Some(reply));
            }
            Err(()) => {
                // The object stays; faults on it find no pager and wait out their timeout.
                copy.release(&mut self.vm.objects);
                log::error!("vm: no memory to send create to the program pager");
            }
        }
        Ok(object)
    }

    /// `host_set_program_pager`: the port behind `task`'s send right `name` becomes the
    /// program pager (programs loaded from now on page in through it).
    pub fn set_program_pager(&mut self, task: TaskId, name: u32) -> Result<(), KernReturn> {
        let (port, server) = self.pager_port_of(task, name)?;
        if let Some(p) = self.ipc.port_mut(port) {
            p.send_rights += 1;
        }
        self.vm.program_pager_task = Some(server);
        if let Some(old) = self.vm.program_pager.replace(port) {
            self.release_send_right(old);
        }
        log::info!("vm: program pager registered");
        Ok(())
    }

    /// The port behind `task`'s send right `name`, if a task receives from it (a pager's),
    /// and that task.
    fn pager_port_of(&self, task: TaskId, name: u32) -> Result<(PortId, TaskId), KernReturn> {
        use crate::ipc::space::{Object, Rights};
        let t = self.tasks.get(task).ok_or(KernReturn::InvalidArgument)?;
        let entry = t.ipc.lookup(name).ok_or(KernReturn::InvalidName)?;
        let (Object::Port(port), true) = (entry.object, entry.rights.contains(Rights::SEND)) else {
            return Err(KernReturn::InvalidRight);
        };
        match self.ipc.port(port).map(|p| p.receiver) {
            Some(Receiver::Task(server)) => Ok((port, server)),
            _ => Err(KernReturn::InvalidRight),
        }
    }

    /// `host_set_default_pager`: the port behind `task`'s send right `name` becomes the
    /// default pager, its receiver VM-privileged. A previous default pager is let go.
    pub fn set_default_pager(&mut self, task: TaskId, name: u32) -> Result<(), KernReturn> {
        let (port, server) = self.pager_port_of(task, name)?;
        if let Some(p) = self.ipc.port_mut(port) {
            p.send_rights += 1;
        }
        if let Some((old, _)) = self.vm.default_pager.replace((port, server)) {
            self.release_send_right(old);
        }
        log::info!("vm: default pager registered");
        Ok(())
    }

    /// `host_set_backing_store`: the task holding the receive right behind `task`'s send
    /// right `name` is a backing store behind the default pager (the disk pager behind
    /// zpager stacked in front of it): VM-privileged like the default pager, since the
    /// default pager's returns wait on it.
    pub fn set_backing_store(&mut self, task: TaskId, name: u32) -> Result<(), KernReturn> {
        let (_, server) = self.pager_port_of(task, name)?;
        self.vm.backing_store = Some(server);
        log::info!("vm: backing store registered");
        Ok(())
    }

    /// The pager's port for `object` died: nothing more will come; waiting threads and later
    /// faults on absent pages get memory errors. Resident pages stay.
    pub fn pager_died(&mut self, port: PortId) {
        let Some(object) = self.vm.pager_ports.remove(&port) else {
            return;
        };
        let Some(link) = self.vm.pagers.get_mut(&object) else {
            return;
        };
        link.state = LinkState::Dead;
        count_in_flight(u64::from(link.in_flight), true);
        link.in_flight = 0;
        let returns = core::mem::take(&mut link.returns);
        let replies: Vec<PortId> = core::mem::take(&mut link.pending)
            .into_iter()
            .map(|p| p.reply)
            .collect();
        for reply in replies {
            self.destroy_port(reply);
        }
        // Pages on their way to the dead pager come back, dirty: nothing in flight is lost.
        for r in returns {
            self.destroy_port(r.reply);
            self.take_back_return(object, r);
        }
        self.fail_waiters(object, 0..u64::MAX);
    }

    /// Returns the changed pages of `object` (unreferenced, kept for this) to its pager, a
    /// run of dirty pages within a cluster per `data_return`, then frees it. The returns go
    /// before the `terminate` that follows, on the same port. Pages that cannot be sent (no
    /// memory, a pager gone) are dropped with the object, as every page was before.
    fn write_back_and_free(&mut self, object: ObjectId) {
        let cluster = self.vm.pagers.get(&object).and_then(|link| {
            (link.state == LinkState::Ready).then(|| u64::from(link.cluster_pages) * PAGE_SIZE)
        });
        if let (Some(cluster), Some(o)) = (cluster, self.vm.objects.get(object)) {
            let mut dirty: Vec<u64> = Vec::new();
            if dirty.try_reserve_exact(o.resident_count()).is_ok() {
                dirty.extend(o.resident_offsets());
                dirty.retain(|&offset| self.dirty_page(object, offset));
                dirty.sort_unstable();
            }
            let mut i = 0;
            while i < dirty.len() {
                let start = dirty[i];
                let cluster_end = start - start % cluster + cluster;
                let mut end = start + PAGE_SIZE;
                i += 1;
                while i < dirty.len() && dirty[i] == end && end < cluster_end {
                    end += PAGE_SIZE;
                    i += 1;
                }
                self.return_pages(object, start, end, false);
            }
        }
        if let Some(mut o) = self.vm.objects.remove(object) {
            // A pager's object has no backing.
            let _ = crate::vm::address_space::free_object(&mut o);
        }
    }

    /// Terminates the pager objects freed since the last call: the pager is told, the
    /// control port and unanswered requests go, the kernel's send right is released.
    pub fn reap_pagers(&mut self) {
        if !crate::vm::kernel_space::take_pagers_released() {
            return;
        }
        let released = crate::vm::notes::take_released();
        for (object, write_back) in released {
            if write_back {
                self.write_back_and_free(object);
            }
            let Some(mut link) = self.vm.pagers.remove(&object) else {
                continue;
            };
            // Threads still waiting (their region went meanwhile) fault again and find
            // nothing there.
            while let Some(thread) = link.waiters.pop_front(&mut self.threads) {
                self.sched.disarm(&mut self.threads, thread);
                if let Some(t) = self.threads.get_mut(thread) {
                    t.continuation = Continuation::ReturnToUser;
                    t.state = ThreadState::Ready;
                }
                self.make_ready(thread);
            }
            for pending in link.pending {
                self.destroy_port(pending.reply);
            }
            count_in_flight(u64::from(link.in_flight), true);
            for pending in link.returns {
                self.destroy_port(pending.reply);
                release_object(&mut self.vm.objects, pending.transit);
            }
            self.destroy_port(link.control);
            if link.state != LinkState::Dead || self.vm.pager_ports.get(&link.port) == Some(&object)
            {
                self.vm.pager_ports.remove(&link.port);
                self.call_pager(link.port, EmmiCall::Terminate, None);
                self.release_send_right(link.port);
            }
        }
    }
}

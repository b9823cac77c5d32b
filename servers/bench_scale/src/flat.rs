//! More costs that must stay flat as tasks are added (issue 18): a context switch, as a
//! round trip of `thread_yield` between two threads of the driver; a page moved out of line
//! through a message (its map entry leaves the sender's map and enters the receiver's); and
//! the reverse map's `remove_everywhere`, which a pager's flush (`lock_request`) of a mapped
//! page goes through.

use core::sync::atomic::{AtomicBool, Ordering};

use alloc::vec::Vec;
use libipc::abi::message::Disposition;

use libipc::abi::syscall::{HOST_MAPPING_VISITS, HOST_THREADS, PAGE_SIZE, VM_ANYWHERE};
use libipc::abi::syscall::{VM_PROT_READ, VM_PROT_WRITE};
use libipc::bench::measure::{time_iterations, timestamp};
use libipc::bench::stats::Summary;
use libipc::interface::{Outbox, Pages, Replied, Reply, SendRight};
use libipc::ipc::{receive, send, MessageBuffer, OutMessage, ReceiveRight};
use libipc::pager::{memory_control, memory_object, Attributes, PagerError, Returned, Supply};
use libipc::sys;

use crate::Failure;

/// Bytes of the yielding partner's stack (it makes system calls only).
const STACK_BYTES: u64 = 16 * 1024;
/// The message that carries the moved page.
const PAGE_ID: u32 = 0x5ca1_e001;

/// Set to end the partner; cleared by the partner as it ends.
static STOP: AtomicBool = AtomicBool::new(false);
static PARTNER_RUNS: AtomicBool = AtomicBool::new(false);

/// The yielding partner: gives the processor back at once, until [`STOP`].
extern "C" fn partner(_: u64) -> ! {
    PARTNER_RUNS.store(true, Ordering::Release);
    while !STOP.load(Ordering::Acquire) {
        sys::thread_yield();
    }
    PARTNER_RUNS.store(false, Ordering::Release);
    sys::thread_exit(0)
}

/// `thread_yield` round trips with a partner thread that yields back at once: each is two
/// context switches (to the partner and back) and two yields. The partner has ended when
/// this returns.
pub fn switch_round_trip(warm_up: usize, timed: usize) -> Result<Summary, Failure> {
    let threads = || sys::host_info(HOST_THREADS).unwrap_or(0);
    let before = threads();
    let stack = sys::vm_allocate(0, STACK_BYTES, VM_ANYWHERE)
        .map_err(|e| alloc::format!("a stack for the partner: {e:?}"))?;
    STOP.store(false, Ordering::Release);
    // A function is entered with its stack 8 bytes off 16 (the call's return address).
    let top = stack + STACK_BYTES - 8;
    // SAFETY: the partner runs on a stack no one else uses and shares only the two atomics.
    unsafe { sys::thread_create(partner as *const () as usize as u64, top, 0) }
        .map_err(|e| alloc::format!("thread_create: {e:?}"))?;
    while !PARTNER_RUNS.load(Ordering::Acquire) {
        sys::thread_yield();
    }
    let summary = time_iterations(warm_up, timed, || {
        sys::thread_yield();
        Ok(())
    });
    STOP.store(true, Ordering::Release);
    // Gone when the kernel counts the threads there were before it (it uses its stack up
    // to its exit call).
    while PARTNER_RUNS.load(Ordering::Acquire) || threads() > before {
        sys::thread_yield();
    }
    // SAFETY: the partner has ended; nothing else uses its stack.
    let _ = unsafe { sys::vm_deallocate(stack, STACK_BYTES) };
    summary
}

/// A page of the driver's, written, sent moved out of line to a port of its own and
/// received back, then written again: the send takes the map entry out of the driver's map,
/// the receive enters it anew (the page itself stays in its object), and the write faults
/// it in.
pub fn page_move_round_trip(warm_up: usize, timed: usize) -> Result<Summary, Failure> {
    let port = ReceiveRight::allocate().map_err(|e| alloc::format!("a port: {e:?}"))?;
    let mut buffer = MessageBuffer::new();
    let mut page = Pages::allocate(PAGE_SIZE).map_err(|e| alloc::format!("a page: {e:?}"))?;
    page.as_mut_slice()[0] = 1;
    let mut round = || -> Result<(), Failure> {
        let (address, size) = core::mem::replace(&mut page, Pages::empty()).into_raw();
        let memory = [(address, size as u32, true)];
        let message = OutMessage::new(PAGE_ID, 0)
            .to(port.name(), Disposition::MakeSend)
            .with_memory(&memory)
            .map_err(|e| alloc::format!("the message: {e:?}"))?;
        send(&message, &mut buffer, Some(1_000)).map_err(|e| alloc::format!("send: {e:?}"))?;
        let received = receive(port.name(), &mut buffer, Some(1_000))
            .map_err(|e| alloc::format!("receive: {e:?}"))?;
        let Some((address, size)) = received.memory().next() else {
            return Err("the page did not come back".into());
        };
        // SAFETY: the kernel mapped these pages into our map for this message; nothing
        // else refers to them.
        page = unsafe { Pages::from_raw(address, u64::from(size)) };
        let bytes = page.as_mut_slice();
        if bytes[0] == 0 {
            return Err("the page came back without what was written".into());
        }
        bytes[0] = bytes[0].wrapping_add(1) | 1;
        Ok(())
    };
    time_iterations(warm_up, timed, &mut round)
}

/// The driver as the pager of a one-page object it maps itself: it answers the kernel's
/// `init` (keeping the control port) and, were a page asked for, supplies it.
#[derive(Default)]
struct FlushPager {
    control: Option<SendRight>,
}

impl memory_object::Server for FlushPager {
    fn init(
        &mut self,
        control: SendRight,
        _size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        self.control = Some(control);
        reply.ok(Attributes { cluster_pages: 1 })
    }

    fn data_request(
        &mut self,
        _offset: u64,
        _length: u64,
        _access: u32,
        reply: Reply<'_, Supply, PagerError>,
    ) -> Replied {
        reply.ok(Supply::Unavailable)
    }

    fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
        reply.ok(())
    }

    fn data_return(
        &mut self,
        _offset: u64,
        _data: Pages,
        _dirty: bool,
        reply: Reply<'_, Returned, PagerError>,
    ) -> Replied {
        reply.ok(Returned::Stored)
    }
}

/// Serves the next message on `object` (waiting up to a second).
fn serve_one(
    pager: &mut FlushPager,
    object: &ReceiveRight,
    buffer: &mut MessageBuffer,
    outbox: &mut Outbox,
) -> Result<(), Failure> {
    let request = receive(object.name(), buffer, Some(1_000))
        .map_err(|e| alloc::format!("the kernel's message to the pager: {e:?}"))?;
    memory_object::dispatch(pager, &request, outbox);
    if let Some(reply) = outbox.take_reply() {
        libipc::ipc::send_message(&reply, Some(1_000))
            .map_err(|e| alloc::format!("the pager's reply: {e:?}"))?;
    }
    Ok(())
}

/// A pager's flush of one page its object has mapped in one task: the driver maps a
/// one-page object of its own, supplies the page (`data_supply`), touches it (so the page is
/// mapped here), and then times `lock_request(flush)`, which takes the page from every map
/// that has it (`remove_everywhere`, one mapping) and frees it.
pub fn flush_page(warm_up: usize, timed: usize) -> Result<Summary, Failure> {
    let object = ReceiveRight::allocate().map_err(|e| alloc::format!("a port: {e:?}"))?;
    let send = object
        .make_send()
        .map_err(|e| alloc::format!("a send right: {e:?}"))?;
    let protection = VM_PROT_READ | VM_PROT_WRITE;
    let base = sys::vm_map(0, PAGE_SIZE, VM_ANYWHERE, send.name(), 0, protection)
        .map_err(|e| alloc::format!("vm_map: {e:?}"))?;
    drop(send);
    let (mut pager, mut buffer) = (FlushPager::default(), MessageBuffer::new());
    let mut outbox = alloc::boxed::Box::new(Outbox::new());
    serve_one(&mut pager, &object, &mut buffer, &mut outbox)?;
    let Some(control) = pager.control.take() else {
        return Err("the kernel's first message was not init".into());
    };
    let mut control = memory_control::Client::new(control);
    let visits = || sys::host_info(HOST_MAPPING_VISITS).unwrap_or(0);
    let before = visits();
    let mut samples = Vec::new();
    samples
        .try_reserve_exact(timed)
        .map_err(|_| Failure::from("no heap for the samples"))?;
    for i in 0..warm_up + timed {
        let mut page = Pages::allocate(PAGE_SIZE).map_err(|e| alloc::format!("a page: {e:?}"))?;
        page.as_mut_slice()[0] = 7;
        control
            .data_supply(0, page)
            .map_err(|e| alloc::format!("data_supply: {e:?}"))?;
        // SAFETY: `base` is the object's page, mapped readable here; it is resident, so the
        // touch maps it without asking the pager.
        let byte = unsafe { core::ptr::read_volatile(base as *const u8) };
        if byte != 7 {
            return Err(alloc::format!("the supplied page reads {byte}, not 7"));
        }
        let start = timestamp();
        let flushed = control.lock_request(0, PAGE_SIZE, false, true);
        let end = timestamp();
        flushed.map_err(|e| alloc::format!("lock_request: {e:?}"))?;
        if i >= warm_up {
            samples.push(end.wrapping_sub(start));
        }
    }
    let visited = visits() - before;
    // SAFETY: the mapping is ours and nothing refers to it.
    let _ = unsafe { sys::vm_deallocate(base, PAGE_SIZE) };
    // (The kernel's `terminate` goes to the port, which goes with it.)
    drop(object);
    if visited < (warm_up + timed) as u64 {
        return Err(alloc::format!(
            "{visited} reverse-map visits for {} flushes of a mapped page",
            warm_up + timed
        ));
    }
    Summary::of(&mut samples).ok_or_else(|| Failure::from("no timed flushes"))
}

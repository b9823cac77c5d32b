//! The benchmarks' pager: the parent serves `memory_object` for one object, answering every
//! `data_request` at once with freshly filled pages, while a forked child maps the object and
//! measures.

use alloc::boxed::Box;
use alloc::format;
use libipc::abi::syscall::{VM_ANYWHERE, VM_PROT_READ, VM_PROT_WRITE};
use libipc::bench::measure::Failure;
use libipc::interface::{Dispatch, Dispatched, Outbox, Pages, Replied, Reply, SendRight};
use libipc::ipc::{self, MessageBuffer, Name, ReceiveRight, Received};
use libipc::pager::{memory_object, Attributes, PagerError, Returned, Supply};
use libipc::sys::{self, Forked};

pub const PAGE: u64 = 4096;

/// How long the pager waits for its next message before it gives up on the child, in
/// milliseconds (of guest time: instructions under `-icount`).
const SERVE_LIMIT_MS: u64 = 20_000;

/// The child's exit status when it could not map the object.
const NOT_MAPPED: i32 = 100;

/// The word at byte `offset` of the object: what the pager writes and the child checks.
pub fn pattern(offset: u64) -> u64 {
    offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a
}

/// The word at `address`, read as the program's touch of a page.
pub fn read(address: u64) -> u64 {
    // SAFETY: callers pass addresses inside the object the child mapped readable; a fault
    // there is what is being measured.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Whether page `page` of the mapping at `base` holds the pattern (its first word).
pub fn holds_pattern(base: u64, page: u64) -> bool {
    read(base + page * PAGE) == pattern(page * PAGE)
}

/// A pager of one object that supplies every page asked for, filled with [`pattern`].
struct BenchPager {
    cluster_pages: u32,
    terminated: bool,
}

impl memory_object::Server for BenchPager {
    fn init(
        &mut self,
        control: SendRight,
        _size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        // The benchmarks make no calls on the control port.
        drop(control);
        reply.ok(Attributes {
            cluster_pages: self.cluster_pages,
        })
    }

    fn data_request(
        &mut self,
        offset: u64,
        length: u64,
        _access: u32,
        reply: Reply<'_, Supply, PagerError>,
    ) -> Replied {
        let Ok(mut pages) = Pages::allocate(length) else {
            return reply.err(PagerError::Failed(1));
        };
        for (i, word) in pages.as_mut_slice().chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&pattern(offset + i as u64 * 8).to_le_bytes());
        }
        reply.ok(Supply::Data(pages))
    }

    /// Nothing here makes memory pressure; a page returned all the same is given back.
    fn data_return(
        &mut self,
        _offset: u64,
        data: Pages,
        _dirty: bool,
        reply: Reply<'_, Returned, PagerError>,
    ) -> Replied {
        reply.ok(Returned::Refused(data))
    }

    fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
        self.terminated = true;
        reply.ok(())
    }
}

impl Dispatch for BenchPager {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        match memory_object::dispatch(self, request, outbox) {
            _ if self.terminated => Dispatched::Stop,
            other => other,
        }
    }
}

/// Serves `pager` on `port` until the kernel terminates its object. A reply carrying pages
/// leaves from inside `data_request` (a reply with memory is sent at once); the others wait
/// in the outbox until the loop sends them.
fn serve(pager: &mut BenchPager, port: Name) -> Result<(), Failure> {
    let mut buffer = Box::new(MessageBuffer::new());
    let mut send_buffer = Box::new(MessageBuffer::new());
    let mut outbox = Box::new(Outbox::new());
    loop {
        if let Some(reply) = outbox.take_reply() {
            let _ = ipc::send(&reply, &mut send_buffer, Some(0));
        }
        let received = ipc::receive(port, &mut buffer, Some(SERVE_LIMIT_MS))
            .map_err(|e| format!("pager receive: {e:?}"))?;
        match pager.dispatch(&received, &mut outbox) {
            Dispatched::Stop => {
                if let Some(reply) = outbox.take_reply() {
                    let _ = ipc::send(&reply, &mut send_buffer, Some(0));
                }
                return Ok(());
            }
            Dispatched::NotMine => {
                libipc::interface::reject_unknown(&received, &mut outbox);
            }
            Dispatched::Handled => {}
        }
    }
}

/// Forks a child that maps `pages` pages (read-write) of an object this task serves with
/// clusters of `cluster_pages` pages, and runs `child` on the mapping's address (its result
/// is the child's exit status; it prints its own figures and failures); serves until the
/// object is terminated (the child's end unmaps it), then checks that the child exited 0.
pub fn with_pager(
    cluster_pages: u32,
    pages: u64,
    child: impl FnOnce(u64) -> i32,
) -> Result<(), Failure> {
    let port = ReceiveRight::allocate().map_err(|e| format!("allocate port: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        Forked::Child => {
            // The child holds the send right under the same name (not the receive right).
            let protection = VM_PROT_READ | VM_PROT_WRITE;
            let status = match sys::vm_map(0, pages * PAGE, VM_ANYWHERE, send.name(), 0, protection)
            {
                Ok(base) => child(base),
                Err(_) => NOT_MAPPED,
            };
            sys::task_exit(status)
        }
        Forked::Parent(task) => {
            drop(send);
            let mut pager = BenchPager {
                cluster_pages,
                terminated: false,
            };
            let served = serve(&mut pager, port.name());
            // Normally the child is gone by now (its end released the object).
            if served.is_err() {
                let _ = sys::task_terminate(task);
            }
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            served?;
            match status? {
                0 => Ok(()),
                status if status == NOT_MAPPED as u64 => {
                    Err("the child could not map the object".into())
                }
                status => Err(format!("the child exited with {status}")),
            }
        }
    }
}

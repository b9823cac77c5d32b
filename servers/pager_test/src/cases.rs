//! The cases, and the test pager they drive.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use libipc::abi::message::{options, Disposition, MessageHeader, HEADER_SIZE};
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;
use libipc::interface::{
    Deferred, Dispatch, Dispatched, Outbox, Pages, RemoteError, Replied, Reply, SendRight,
};
use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight, Received};
use libipc::pager::{
    memory_control, memory_object, Attributes, ControlError, PagerError, Returned, Supply,
};
use libipc::sys;

pub use libipc::rt::selftest::Case;

pub const ALL: &[(&str, Case)] = &[
    ("fault_in_through_a_pager", fault_in_through_a_pager),
    ("read_ahead_by_strategy", read_ahead_by_strategy),
    (
        "clusters_are_aligned_and_clipped",
        clusters_are_aligned_and_clipped,
    ),
    ("unavailable_is_zero_filled", unavailable_is_zero_filled),
    ("data_error_is_a_memory_error", data_error_is_a_memory_error),
    (
        "pager_death_is_a_memory_error",
        pager_death_is_a_memory_error,
    ),
    ("silent_pager_times_out", silent_pager_times_out),
    (
        "wrong_size_supply_is_rejected",
        wrong_size_supply_is_rejected,
    ),
    (
        "bad_control_calls_are_rejected",
        bad_control_calls_are_rejected,
    ),
    (
        "invalid_init_attributes_are_refused_to_the_pager",
        invalid_init_attributes_are_refused_to_the_pager,
    ),
    ("supply_ahead_and_flush", supply_ahead_and_flush),
    (
        "a_flood_of_unrequested_supplies_costs_nothing",
        a_flood_of_unrequested_supplies_costs_nothing,
    ),
    (
        "system_calls_on_paged_memory_run_again",
        system_calls_on_paged_memory_run_again,
    ),
    (
        "blocked_receiver_buffer_paged_in",
        blocked_receiver_buffer_paged_in,
    ),
    ("terminate_when_unmapped", terminate_when_unmapped),
    (
        "clean_pages_are_reclaimed_under_pressure",
        clean_pages_are_reclaimed_under_pressure,
    ),
    ("lock_request_cleans", lock_request_cleans),
    (
        "read_only_mappings_refuse_writes",
        read_only_mappings_refuse_writes,
    ),
    (
        "lock_request_cleans_and_flushes",
        lock_request_cleans_and_flushes,
    ),
    (
        "a_page_on_its_way_out_is_served_from_it",
        a_page_on_its_way_out_is_served_from_it,
    ),
    (
        "writes_during_cleans_are_never_lost",
        writes_during_cleans_are_never_lost,
    ),
];

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

const PAGE: u64 = 4096;
/// What a task the kernel ended reports to `task_wait`.
const KILLED: u64 = u64::MAX;
/// The id of the message the child of `blocked_receiver_buffer_paged_in` calls the pager with.
const HELLO: u32 = 7100;

/// The word at byte `offset` of every pattern object.
fn pattern(offset: u64) -> u64 {
    offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a
}

/// Pages of pattern from object offset `offset`.
fn pattern_pages(offset: u64, length: u64) -> Pages {
    let mut pages = Pages::allocate(length).expect("memory for a supply");
    for (i, word) in pages.as_mut_slice().chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&pattern(offset + i as u64 * 8).to_le_bytes());
    }
    pages
}

fn read(address: u64) -> u64 {
    // SAFETY: callers pass addresses inside the object they mapped (touching it is the test).
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

fn write(address: u64, value: u64) {
    // SAFETY: as for `read`; the mapping is writable.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

/// Whether page `page` of the mapping at `base` holds the pattern (three words checked).
fn holds_pattern(base: u64, page: u64) -> bool {
    [0, 255, 511].iter().all(|&word| {
        let offset = page * PAGE + word * 8;
        read(base + offset) == pattern(offset)
    })
}

fn statistics() -> VmStatistics {
    sys::vm_statistics().unwrap_or_default()
}

/// What the test pager answers to `data_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// The pattern.
    Data,
    Unavailable,
    /// `PagerError::Failed`.
    Error,
    /// Nothing: the reply is held until the test ends.
    Silent,
    /// Twice the pages asked for.
    Oversize,
    /// Destroys its port, as a pager that dies does.
    Die,
}

/// A pager for one object, as a case sets it up.
/// The answers to a pager's own `memory_control` calls, in order.
type ControlResults = Vec<Result<(), RemoteError<ControlError>>>;

struct TestPager {
    cluster_pages: u32,
    answer: Answer,
    /// Requests as (first page, pages).
    requests: Vec<(u64, u64)>,
    control: Option<memory_control::Client>,
    held: Vec<Deferred<Supply, PagerError>>,
    terminated: bool,
    /// Before answering the first request, flush this page.
    flush_on_request: Option<u64>,
    /// Before answering a request that starts at page `.0`, clean page `.1` (and flush it,
    /// if `.2`).
    clean_on_request: Option<(u64, u64, bool)>,
    /// Before answering every request, clean this page (no flush).
    clean_every_request: Option<u64>,
    /// Returns received: (page, its first word, dirty).
    returns: Vec<(u64, u64, bool)>,
    /// Keep returned pages (answer `Stored`), rather than give them back.
    store_returns: bool,
    /// Hold the answers to returns (until the test ends), rather than answer.
    hold_returns: bool,
    held_returns: Vec<Deferred<Returned, PagerError>>,
    /// The answer to the request that triggered a clean-and-flush (`clean_on_request`),
    /// held until the flushed page's return arrives: on several CPUs the child could
    /// otherwise run on before this pager has the page, and find it still on its way out.
    answer_after_return: Option<(Deferred<Supply, PagerError>, u64, u64)>,
    /// How the child maps the object (`VM_PROT_*`).
    protection: u64,
    /// What a `data_supply` on the control port got after `terminate`.
    supply_after_terminate: Option<Result<(), RemoteError<ControlError>>>,
    /// At `init`, make these calls on the control port and keep their results.
    at_init: fn(&mut memory_control::Client) -> ControlResults,
    init_results: ControlResults,
    /// The port it serves (taken and destroyed by `Answer::Die`).
    port: Option<ReceiveRight>,
    hellos: u32,
    /// What the kernel said of invalid attributes in the answer to `init`.
    refused: Option<libipc::pager::AttributesRefused>,
    /// The object's figures as `memory_control.statistics` gave them at the last request.
    last_statistics: Option<libipc::pager::ObjectStatistics>,
}

impl TestPager {
    fn new(cluster_pages: u32, answer: Answer) -> TestPager {
        TestPager {
            cluster_pages,
            answer,
            requests: Vec::new(),
            control: None,
            held: Vec::new(),
            terminated: false,
            flush_on_request: None,
            clean_on_request: None,
            clean_every_request: None,
            returns: Vec::new(),
            store_returns: false,
            hold_returns: false,
            held_returns: Vec::new(),
            answer_after_return: None,
            supply_after_terminate: None,
            protection: VM_PROT_READ | VM_PROT_WRITE,
            at_init: |_| Vec::new(),
            init_results: Vec::new(),
            port: None,
            hellos: 0,
            refused: None,
            last_statistics: None,
        }
    }
}

impl memory_object::Server for TestPager {
    fn init(
        &mut self,
        control: SendRight,
        _size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        let mut client = memory_control::Client::new(control);
        self.init_results = (self.at_init)(&mut client);
        self.control = Some(client);
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
        self.requests.push((offset / PAGE, length / PAGE));
        if let Some(control) = self.control.as_mut() {
            self.last_statistics = control.statistics().ok();
        }
        if let Some(page) = self.flush_on_request.take() {
            if let Some(control) = self.control.as_mut() {
                let _ = control.lock_request(page * PAGE, PAGE, false, true);
            }
        }
        if let Some(page) = self.clean_every_request {
            if let Some(control) = self.control.as_mut() {
                let _ = control.lock_request(page * PAGE, PAGE, true, false);
            }
        }
        if let Some((trigger, page, flush)) = self.clean_on_request {
            if offset / PAGE == trigger {
                self.clean_on_request = None;
                if let Some(control) = self.control.as_mut() {
                    let _ = control.lock_request(page * PAGE, PAGE, true, flush);
                }
                if flush
                    && self.store_returns
                    && !self.hold_returns
                    && matches!(self.answer, Answer::Data)
                {
                    let (deferred, replied) = reply.defer();
                    self.answer_after_return = Some((deferred, offset, length));
                    return replied;
                }
            }
        }
        match self.answer {
            Answer::Data => reply.ok(Supply::Data(pattern_pages(offset, length))),
            Answer::Unavailable => reply.ok(Supply::Unavailable),
            Answer::Error => reply.err(PagerError::Failed(5)),
            Answer::Oversize => reply.ok(Supply::Data(pattern_pages(offset, 2 * length))),
            Answer::Silent => {
                let (deferred, replied) = reply.defer();
                self.held.push(deferred);
                replied
            }
            Answer::Die => {
                drop(self.port.take());
                let (deferred, replied) = reply.defer();
                drop(deferred);
                replied
            }
        }
    }

    /// Recorded; then kept (`store_returns`) or given back.
    fn data_return(
        &mut self,
        offset: u64,
        data: Pages,
        dirty: bool,
        reply: Reply<'_, Returned, PagerError>,
    ) -> Replied {
        let first = u64::from_le_bytes(data.as_slice()[..8].try_into().expect("a page"));
        self.returns.push((offset / PAGE, first, dirty));

        if self.hold_returns {
            drop(data);
            let (deferred, replied) = reply.defer();
            self.held_returns.push(deferred);
            return replied;
        }
        if let Some((answer, offset, length)) = self.answer_after_return.take() {
            // The return is answered first, at once (not through the loop, after this
            // routine): the kernel lets the page go before the child can run again.
            drop(data);
            let (stored, replied) = reply.defer();
            let _ = stored.send(Ok(Returned::Stored));
            let _ = answer.send(Ok(Supply::Data(pattern_pages(offset, length))));
            return replied;
        }
        if self.store_returns {
            drop(data);
            reply.ok(Returned::Stored)
        } else {
            reply.ok(Returned::Refused(data))
        }
    }

    fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
        self.terminated = true;
        // The object is gone: the kernel manages it no more, and a supply must fail.
        if let Some(control) = self.control.as_mut() {
            self.supply_after_terminate = Some(control.data_supply(0, pattern_pages(0, PAGE)));
        }
        reply.ok(())
    }
}

impl Dispatch for TestPager {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        if request.id() == HELLO {
            return self.hello(request);
        }
        if let Some(refused) = libipc::pager::AttributesRefused::from_request(request) {
            self.refused = Some(refused);
            return Dispatched::Handled;
        }
        match memory_object::dispatch(self, request, outbox) {
            _ if self.terminated => Dispatched::Stop,
            other => other,
        }
    }
}

impl TestPager {
    /// The child of `blocked_receiver_buffer_paged_in` calls with its buffer on page 0: the
    /// page is flushed, then answered, so the answer finds the buffer gone.
    fn hello(&mut self, request: &Received<'_>) -> Dispatched {
        self.hellos += 1;
        if let Some(control) = self.control.as_mut() {
            let _ = control.lock_request(0, PAGE, false, true);
        }
        if let Some((reply, _)) = request.reply() {
            let answer = OutMessage::new(HELLO + 100, 0).to(reply, Disposition::MoveSendOnce);
            let _ = ipc::send_message(&answer, Some(0));
        }
        Dispatched::Handled
    }
}

/// Serves `pager` on `port` until the kernel terminates its object (or `limit_ms` passes
/// without a message, or the port dies).
fn serve(pager: &mut TestPager, port: u32, limit_ms: u64) -> Result<(), String> {
    let mut buffer = Box::new(MessageBuffer::new());
    let mut outbox = Box::new(Outbox::new());
    loop {
        if let Some(reply) = outbox.take_reply() {
            let _ = ipc::send_message(&reply, Some(0));
        }
        let received = match ipc::receive(port, &mut buffer, Some(limit_ms)) {
            Ok(received) => received,
            Err(_) if pager.port.is_none() && pager.answer == Answer::Die => return Ok(()),
            Err(e) => return Err(format!("pager receive: {e:?}")),
        };
        if pager.dispatch(&received, &mut outbox) == Dispatched::Stop {
            if let Some(reply) = outbox.take_reply() {
                let _ = ipc::send_message(&reply, Some(0));
            }
            return Ok(());
        }
    }
}

/// Forks a child that maps `pages` pages of an object `pager` serves and runs `child` on
/// it (given the mapping's address; its result is the child's exit status); serves until
/// the object is terminated. Returns the child's status (`KILLED` if the kernel ended it).
fn with_pager(
    pager: &mut TestPager,
    pages: u64,
    child: impl FnOnce(u64) -> i32,
) -> Result<u64, String> {
    with_pager_limit(pager, pages, 5000, |base, _| child(base))
}

/// As `with_pager`, the child also given its name for the object's port, the pager giving
/// up after `limit_ms` without a message. A child still alive when the object is
/// terminated is ended (its status is then `KILLED`).
fn with_pager_limit(
    pager: &mut TestPager,
    pages: u64,
    limit_ms: u64,
    child: impl FnOnce(u64, u32) -> i32,
) -> Result<u64, String> {
    let port = ReceiveRight::allocate().map_err(|e| format!("allocate port: {e}"))?;
    let send = port.make_send().map_err(|e| format!("make send: {e}"))?;
    let name = port.name();
    match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let prot = pager.protection;
            let status = match sys::vm_map(0, pages * PAGE, VM_ANYWHERE, send.name(), 0, prot) {
                Ok(base) => child(base, send.name()),
                Err(_) => 100,
            };
            sys::task_exit(status)
        }
        sys::Forked::Parent(task) => {
            drop(send);
            pager.port = Some(port);
            let served = serve(pager, name, limit_ms);
            // Normally the child is gone by now (its end released the object).
            let _ = sys::task_terminate(task);
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            pager.held.clear();
            pager.held_returns.clear();
            pager.port = None;
            served?;
            status
        }
    }
}

fn fault_in_through_a_pager() -> Result<(), String> {
    let before = statistics();
    let mut pager = TestPager::new(4, Answer::Data);
    let status = with_pager(&mut pager, 16, |base| {
        if !(0..16).all(|page| holds_pattern(base, page)) {
            return 1;
        }
        // Written pages keep what was written.
        write(base + 3 * PAGE, 42);
        if read(base + 3 * PAGE) != 42 || !holds_pattern(base, 4) {
            return 2;
        }
        // The region's object's figures: 8 requests of 2 pages, each second page asked
        // for ahead and then used.
        match sys::vm_region(base) {
            Ok(r)
                if (
                    r.pager_requests,
                    r.pager_pages_requested,
                    r.pager_prefetched,
                    r.pager_prefetch_used,
                    r.pager_returns,
                ) == (8, 16, 8, 8, 0) =>
            {
                0
            }
            _ => 3,
        }
    })?;
    check!(
        status == 0,
        "the child read the wrong data (status {status})"
    );
    // Normal access: the faulting page and the next, eight times.
    let expected: Vec<(u64, u64)> = (0..8).map(|i| (2 * i, 2)).collect();
    check!(pager.requests == expected, "requests {:?}", pager.requests);
    // The pager's own view, through its control port, as the last request came: that one
    // counted, seven pages asked for ahead already used (the eighth not yet faulted on).
    let at_last = libipc::pager::ObjectStatistics {
        requests: 8,
        pages_requested: 16,
        prefetched: 8,
        prefetch_used: 7,
        returns: 0,
        pages_returned: 0,
    };
    check!(
        pager.last_statistics == Some(at_last),
        "memory_control.statistics at the last request: {:?}, not {at_last:?}",
        pager.last_statistics
    );
    let after = statistics();
    check!(
        after.pageins - before.pageins == 16,
        "{} pages in",
        after.pageins - before.pageins
    );
    check!(
        after.requests_by_pages[2] - before.requests_by_pages[2] == 8,
        "requests by size {:?}",
        after.requests_by_pages
    );
    check!(
        after.prefetched - before.prefetched == 8
            && after.prefetch_used - before.prefetch_used == 8,
        "prefetched {} used {}",
        after.prefetched - before.prefetched,
        after.prefetch_used - before.prefetch_used
    );
    Ok(())
}

fn read_ahead_by_strategy() -> Result<(), String> {
    let cases = [
        (VM_BEHAVIOR_NORMAL, (5, 2)),
        (VM_BEHAVIOR_SEQUENTIAL, (5, 3)),
        (VM_BEHAVIOR_REVERSE, (4, 2)),
        (VM_BEHAVIOR_RANDOM, (5, 1)),
    ];
    for (behavior, expected) in cases {
        let mut pager = TestPager::new(4, Answer::Data);
        let status = with_pager(&mut pager, 32, |base| {
            if sys::vm_behavior_set(base, 32 * PAGE, behavior).is_err() {
                return 1;
            }
            if !holds_pattern(base, 5) {
                return 2;
            }
            0
        })?;
        check!(status == 0, "behavior {behavior}: child status {status}");
        check!(
            pager.requests == [expected],
            "behavior {behavior}: requests {:?}, expected {expected:?}",
            pager.requests
        );
    }
    Ok(())
}

fn clusters_are_aligned_and_clipped() -> Result<(), String> {
    // (cluster pages, object pages, pages touched in order, requests expected)
    type Case<'a> = (u32, u64, &'a [u64], &'a [(u64, u64)]);
    let cases: [Case<'_>; 4] = [
        // Mid-cluster, then behind a resident page, then the cluster's first page.
        (8, 16, &[12, 9, 8], &[(12, 4), (9, 3), (8, 1)]),
        // The object's end cuts the cluster.
        (8, 10, &[9], &[(9, 1)]),
        // Large clusters.
        (16, 32, &[3], &[(3, 13)]),
        // One-page clusters.
        (1, 8, &[2, 3], &[(2, 1), (3, 1)]),
    ];
    for (cluster, pages, touched, expected) in cases {
        let mut pager = TestPager::new(cluster, Answer::Data);
        let status = with_pager(&mut pager, pages, |base| {
            if sys::vm_behavior_set(base, pages * PAGE, VM_BEHAVIOR_SEQUENTIAL).is_err() {
                return 1;
            }
            if !touched.iter().all(|&page| holds_pattern(base, page)) {
                return 2;
            }
            0
        })?;
        check!(status == 0, "cluster {cluster}: child status {status}");
        check!(
            pager.requests == expected,
            "cluster {cluster}, touching {touched:?}: requests {:?}, expected {expected:?}",
            pager.requests
        );
    }
    Ok(())
}

fn unavailable_is_zero_filled() -> Result<(), String> {
    let before = statistics();
    let mut pager = TestPager::new(4, Answer::Unavailable);
    let status = with_pager(&mut pager, 4, |base| {
        let zero = (0..4).all(|page| (0..512).all(|w| read(base + page * PAGE + w * 8) == 0));
        if zero {
            0
        } else {
            1
        }
    })?;
    check!(status == 0, "pages were not zero (status {status})");
    check!(
        statistics().unavailable - before.unavailable == 4,
        "{} pages counted unavailable",
        statistics().unavailable - before.unavailable
    );
    Ok(())
}

fn data_error_is_a_memory_error() -> Result<(), String> {
    let before = statistics();
    // A fault in user mode: the task is ended with a report.
    let mut pager = TestPager::new(4, Answer::Error);
    let status = with_pager(&mut pager, 4, |base| {
        read(base);
        0
    })?;
    check!(status == KILLED, "the faulting child ended with {status}");
    // A system call reading the page: it fails with a memory error.
    let mut pager = TestPager::new(4, Answer::Error);
    let status = with_pager(&mut pager, 4, |base| {
        // SAFETY: the bytes are only passed to the kernel, which reads them through the map.
        let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, 16) };
        match sys::debug_write(bytes) {
            Err(KernReturn::MemoryError) => 0,
            Err(_) => 1,
            Ok(()) => 2,
        }
    })?;
    check!(status == 0, "debug_write of an error page: status {status}");
    let errors = statistics().memory_errors - before.memory_errors;
    check!(errors == 2, "{errors} memory errors counted");
    Ok(())
}

fn pager_death_is_a_memory_error() -> Result<(), String> {
    let before = statistics();
    let mut pager = TestPager::new(4, Answer::Die);
    let status = with_pager(&mut pager, 4, |base| {
        read(base);
        0
    })?;
    check!(status == KILLED, "the faulting child ended with {status}");
    let after = statistics();
    check!(
        after.pager_timeouts == before.pager_timeouts,
        "the error came from a timeout, not the death"
    );
    check!(
        after.memory_errors - before.memory_errors == 1,
        "{} memory errors",
        after.memory_errors - before.memory_errors
    );
    Ok(())
}

fn silent_pager_times_out() -> Result<(), String> {
    let before = statistics();
    let mut pager = TestPager::new(4, Answer::Silent);
    let status = with_pager(&mut pager, 4, |base| {
        read(base);
        0
    })?;
    check!(status == KILLED, "the faulting child ended with {status}");
    let timeouts = statistics().pager_timeouts - before.pager_timeouts;
    check!(timeouts == 1, "{timeouts} timeouts");
    Ok(())
}

fn wrong_size_supply_is_rejected() -> Result<(), String> {
    let before = statistics();
    let mut pager = TestPager::new(4, Answer::Oversize);
    let status = with_pager(&mut pager, 8, |base| {
        read(base);
        0
    })?;
    check!(status == KILLED, "the faulting child ended with {status}");
    let rejects = statistics().pager_rejects - before.pager_rejects;
    check!(rejects == 1, "{rejects} rejects");
    Ok(())
}

/// A pager that answers `init` with clusters of 6 pages (not a power of two) is told so,
/// with the size the kernel uses instead and the largest valid one, and gets requests of at
/// most that size.
fn invalid_init_attributes_are_refused_to_the_pager() -> Result<(), String> {
    let mut pager = TestPager::new(6, Answer::Data);
    let status = with_pager(&mut pager, 16, |base| {
        if (0..16).all(|page| holds_pattern(base, page)) {
            0
        } else {
            1
        }
    })?;
    check!(
        status == 0,
        "the child read the wrong data (status {status})"
    );
    let expected = libipc::pager::AttributesRefused {
        asked: 6,
        used: libipc::pager::DEFAULT_CLUSTER_PAGES,
        max_cluster_pages: libipc::pager::MAX_CLUSTER_PAGES,
    };
    check!(
        pager.refused == Some(expected),
        "the pager was told {:?}, not {expected:?}",
        pager.refused
    );
    check!(
        pager
            .requests
            .iter()
            .all(|&(_, pages)| pages <= u64::from(expected.used)),
        "requests {:?} beyond clusters of {}",
        pager.requests,
        expected.used
    );
    Ok(())
}

fn bad_control_calls_are_rejected() -> Result<(), String> {
    let before = statistics();
    let mut pager = TestPager::new(4, Answer::Data);
    pager.at_init = |control| {
        vec![
            control.data_supply(3, pattern_pages(0, PAGE)),
            control.data_supply(100 * PAGE, pattern_pages(100 * PAGE, PAGE)),
            control.data_supply(3 * PAGE, pattern_pages(3 * PAGE, 2 * PAGE)),
            control.data_unavailable(0, 0),
            control.set_attributes(Attributes { cluster_pages: 3 }),
            control.data_supply(PAGE, pattern_pages(PAGE, PAGE)),
        ]
    };
    let status = with_pager(
        &mut pager,
        8,
        |base| {
            if holds_pattern(base, 1) {
                0
            } else {
                1
            }
        },
    )?;
    check!(
        status == 0,
        "the supplied page read wrong (status {status})"
    );
    let expected = [
        Err(RemoteError::Server(ControlError::BadOffset)),
        Err(RemoteError::Server(ControlError::BadOffset)),
        Err(RemoteError::Server(ControlError::BadSize)),
        Err(RemoteError::Server(ControlError::BadSize)),
        Err(RemoteError::Server(ControlError::BadAttributes)),
        Ok(()),
    ];
    check!(
        pager.init_results == expected,
        "answers {:?}",
        pager.init_results
    );
    check!(
        pager.requests.is_empty(),
        "a supplied page was asked for: {:?}",
        pager.requests
    );
    let rejects = statistics().pager_rejects - before.pager_rejects;
    check!(rejects == 5, "{rejects} rejects");
    Ok(())
}

/// A pager that floods its object with data nobody asked for: every cluster supplied twenty
/// times over, and as many supplies past the object's end (while the child waits before its
/// first touch: a fault waiting for `init` meanwhile would time out under this suite's short
/// pager timeout). The first supply of each page is
/// kept, the rest (their pages) are let go, the ones past the end are refused; the object is
/// read right and no page is asked for; and every frame comes back afterwards.
fn a_flood_of_unrequested_supplies_costs_nothing() -> Result<(), String> {
    const ROUNDS: u64 = 20;
    let before = statistics();
    let free_before = sys::host_info(HOST_FREE_FRAMES).unwrap_or(0);
    let mut pager = TestPager::new(4, Answer::Data);
    pager.at_init = |control| {
        let mut results = Vec::new();
        for _ in 0..ROUNDS {
            for cluster in 0..4 {
                let offset = cluster * 4 * PAGE;
                results.push(control.data_supply(offset, pattern_pages(offset, 4 * PAGE)));
            }
            results.push(control.data_supply(64 * PAGE, pattern_pages(0, PAGE)));
        }
        results
    };
    let status = with_pager(&mut pager, 16, |base| {
        libipc::rt::sleep_ms(2000);
        if (0..16).all(|page| holds_pattern(base, page)) {
            0
        } else {
            1
        }
    })?;
    check!(
        status == 0,
        "the flooded object read wrong (status {status})"
    );
    check!(
        pager.requests.is_empty(),
        "pages were asked for although all were supplied: {:?}",
        pager.requests
    );
    let refused = pager
        .init_results
        .iter()
        .filter(|r| **r == Err(RemoteError::Server(ControlError::BadOffset)))
        .count();
    let taken = pager.init_results.iter().filter(|r| r.is_ok()).count();
    check!(
        refused == ROUNDS as usize && taken == 4 * ROUNDS as usize,
        "{taken} supplies taken and {refused} refused of {}; others: {:?}",
        pager.init_results.len(),
        pager
            .init_results
            .iter()
            .filter(|r| r.is_err() && **r != Err(RemoteError::Server(ControlError::BadOffset)))
            .take(3)
            .collect::<Vec<_>>()
    );
    let rejects = statistics().pager_rejects - before.pager_rejects;
    check!(rejects == ROUNDS, "{rejects} rejects");
    // The object is gone with the child; the pages of every supply with it.
    let free_after = sys::host_info(HOST_FREE_FRAMES).unwrap_or(0);
    check!(
        free_after + 16 >= free_before,
        "{} frames fewer after the flood ({free_before} before, {free_after} after)",
        free_before.saturating_sub(free_after)
    );
    Ok(())
}

fn supply_ahead_and_flush() -> Result<(), String> {
    let mut pager = TestPager::new(4, Answer::Data);
    pager.at_init = |control| vec![control.data_supply(2 * PAGE, pattern_pages(2 * PAGE, PAGE))];
    pager.flush_on_request = Some(2);
    let status = with_pager(&mut pager, 4, |base| {
        // Page 2 came ahead; page 0 is asked for, and its pager flushes page 2 meanwhile,
        // so page 2 is asked for next.
        let ok = holds_pattern(base, 2) && holds_pattern(base, 0) && holds_pattern(base, 2);
        if ok {
            0
        } else {
            1
        }
    })?;
    check!(status == 0, "child status {status}");
    check!(
        pager.init_results == [Ok(())] && pager.requests == [(0, 2), (2, 2)],
        "answers {:?}, requests {:?}",
        pager.init_results,
        pager.requests
    );
    Ok(())
}

fn system_calls_on_paged_memory_run_again() -> Result<(), String> {
    let mut pager = TestPager::new(1, Answer::Data);
    let status = with_pager(&mut pager, 4, |base| {
        // The kernel writes a region's description into page 0, which is not there yet.
        // SAFETY: the kernel writes `RegionInfo::SIZE` bytes into the mapped page.
        let r = unsafe { sys::syscall2(Syscall::VmRegion as u64, base, base) };
        if r.into_result() != Ok(base) || read(base) != base || !holds_pattern(base, 1) {
            return 1;
        }
        // A message waits on a port and is received into page 2, not there yet either.
        let Ok(port) = ReceiveRight::allocate() else {
            return 2;
        };
        let Ok(send) = port.make_send() else {
            return 3;
        };
        let mut buffer = MessageBuffer::new();
        if ipc::send(&OutMessage::new(55, send.name()), &mut buffer, None).is_err() {
            return 4;
        }
        let target = base + 2 * PAGE;
        // SAFETY: the kernel writes at most one page into page 2 of the mapping.
        let r = unsafe {
            sys::mach_msg(
                target as *mut u8,
                options::RECEIVE,
                0,
                PAGE as usize,
                port.name(),
                0,
            )
        };
        if r.into_result().is_err() {
            return 5;
        }
        let header = MessageHeader::from_bytes(
            // SAFETY: the kernel wrote a header there.
            unsafe { &*(target as *const [u8; HEADER_SIZE]) },
        );
        if header.id != 55 {
            return 6;
        }
        0
    })?;
    check!(status == 0, "child status {status}");
    check!(
        pager.requests == [(0, 1), (1, 1), (2, 1)],
        "requests {:?}",
        pager.requests
    );
    Ok(())
}

fn blocked_receiver_buffer_paged_in() -> Result<(), String> {
    let mut pager = TestPager::new(1, Answer::Data);
    let status = with_pager_limit(&mut pager, 2, 5000, |base, object| {
        // The object's port is the pager's; calling it with HELLO goes to the test pager.
        let Ok(reply) = ReceiveRight::allocate() else {
            return 1;
        };
        // The request is written on page 0 (faulted in now); the pager flushes that page
        // before it answers, so the answer finds a blocked receiver whose buffer is gone.
        let message = OutMessage::new(HELLO, object).reply_to(reply.name());
        // SAFETY: page 0 of the mapping is the message buffer, one page long.
        let buffer = unsafe { &mut *(base as *mut MessageBuffer) };
        let Ok(size) = message.encode(&mut buffer.0) else {
            return 3;
        };
        // SAFETY: the buffer holds `size` bytes and has room for a page.
        let r = unsafe {
            sys::mach_msg(
                base as *mut u8,
                options::SEND | options::RECEIVE,
                size,
                PAGE as usize,
                reply.name(),
                0,
            )
        };
        if r.into_result().is_err() {
            return 4;
        }
        let header = MessageHeader::from_bytes(
            // SAFETY: the kernel wrote the answer's header there.
            unsafe { &*(base as *const [u8; HEADER_SIZE]) },
        );
        if header.id != HELLO + 100 {
            return 5;
        }
        0
    })?;
    check!(status == 0, "child status {status}");
    check!(
        pager.hellos == 1,
        "the pager was called {} times (a receive run again sent again)",
        pager.hellos
    );
    check!(
        pager.requests == [(0, 1), (0, 1)],
        "requests {:?}",
        pager.requests
    );
    Ok(())
}

fn terminate_when_unmapped() -> Result<(), String> {
    let mut pager = TestPager::new(4, Answer::Data);
    // The child unmaps the object, then waits for good: the terminate must come from the
    // unmapping, not from the child's end (the pager then ends the child).
    let status = with_pager_limit(&mut pager, 4, 2000, |base, _| {
        read(base);
        // SAFETY: nothing of the child's lives in the mapping.
        if unsafe { sys::vm_deallocate(base, 4 * PAGE) }.is_err() {
            return 1;
        }
        let Ok(port) = ReceiveRight::allocate() else {
            return 2;
        };
        let mut buffer = MessageBuffer::new();
        let _ = ipc::receive(port.name(), &mut buffer, None);
        3
    })?;
    check!(pager.terminated, "no terminate");
    check!(
        matches!(
            pager.supply_after_terminate,
            Some(Err(RemoteError::Transport(_)))
        ),
        "a supply to the terminated object got {:?}",
        pager.supply_after_terminate
    );
    check!(
        status == KILLED,
        "the child had ended ({status}) before the terminate came"
    );
    Ok(())
}

fn clean_pages_are_reclaimed_under_pressure() -> Result<(), String> {
    // Twice the free memory, read once: the pageout daemon must drop clean pages (their
    // pager has them) to go on, and pages dropped come back from the pager when read again.
    let before = statistics();
    let pages = 2 * before.free_frames;
    let mut pager = TestPager::new(8, Answer::Data);
    let status = with_pager(&mut pager, pages, |base| {
        if sys::vm_behavior_set(base, pages * PAGE, VM_BEHAVIOR_SEQUENTIAL).is_err() {
            return 1;
        }
        if let Some(page) = (0..pages).find(|&page| !holds_pattern(base, page)) {
            libipc::println!("pager_test: page {page} of {pages} read wrong");
            return 2;
        }
        // The first pages went long ago.
        if !(0..16).all(|page| holds_pattern(base, page)) {
            return 3;
        }
        0
    })?;
    check!(status == 0, "child status {status}");
    let after = statistics();
    let reclaimed = after.reclaimed - before.reclaimed;
    let requested = after.requested_pages() - before.requested_pages();
    check!(
        reclaimed >= pages / 2,
        "{reclaimed} pages reclaimed reading {pages}"
    );
    check!(
        requested >= pages + 16,
        "{requested} pages requested for {pages} pages read and 16 read again"
    );
    check!(
        after.memory_errors == before.memory_errors,
        "memory errors under pressure"
    );
    Ok(())
}

/// A child writes 42 to page 0, then reads page 2; the pager cleans (and, with `flush`,
/// flushes) page 0 before it answers for page 2, then the child reads page 0 again. The
/// child must read page 0 as expected afterwards, and the pager must have got page 0 back,
/// dirty, holding 42.
fn clean_case(pager: &mut TestPager, flush: bool) -> Result<(), String> {
    pager.clean_on_request = Some((2, 0, flush));
    pager.store_returns = true;
    let status = with_pager(pager, 4, |base| {
        if sys::vm_behavior_set(base, 4 * PAGE, VM_BEHAVIOR_RANDOM).is_err() {
            return 1;
        }
        write(base, 42);
        if !holds_pattern(base, 2) {
            return 2;
        }
        // Cleaned, page 0 stays with what was written; flushed, it comes back from the
        // pager (the test pager supplies its pattern, not what it was returned).
        let expected = if flush { pattern(0) } else { 42 };
        if read(base) == expected {
            0
        } else {
            3
        }
    })?;
    check!(status == 0, "child status {status}");
    check!(
        pager.returns == [(0, 42, true)],
        "returns {:?} (expected page 0, dirty, holding 42)",
        pager.returns
    );
    Ok(())
}

fn lock_request_cleans() -> Result<(), String> {
    let mut pager = TestPager::new(1, Answer::Data);
    clean_case(&mut pager, false)?;
    // Page 0 stayed: no second request for it.
    check!(
        pager.requests == [(0, 1), (2, 1)],
        "requests {:?}",
        pager.requests
    );
    Ok(())
}

fn lock_request_cleans_and_flushes() -> Result<(), String> {
    let mut pager = TestPager::new(1, Answer::Data);
    clean_case(&mut pager, true)?;
    // Page 0 went: asked for again.
    check!(
        pager.requests == [(0, 1), (2, 1), (0, 1)],
        "requests {:?}",
        pager.requests
    );
    Ok(())
}

fn read_only_mappings_refuse_writes() -> Result<(), String> {
    // Read-only: reads page in; a write ends the task with a protection fault.
    let mut pager = TestPager::new(4, Answer::Data);
    pager.protection = VM_PROT_READ;
    let status = with_pager(&mut pager, 4, |base| {
        if !holds_pattern(base, 1) {
            return 1;
        }
        write(base, 1);
        2
    })?;
    check!(
        status == KILLED,
        "the write to a read-only mapping: status {status}"
    );
    check!(pager.requests == [(1, 2)], "requests {:?}", pager.requests);
    Ok(())
}

/// The child writes 42 to page 0, then reads page 2; before answering for page 2 the pager
/// cleans and flushes page 0 (it leaves, returned) and holds the return's answer. The
/// child's read of page 0 must find 42 at once, from the page on its way out: no request
/// for it, no wait for the pager's answer (which never comes).
fn a_page_on_its_way_out_is_served_from_it() -> Result<(), String> {
    let mut pager = TestPager::new(1, Answer::Data);
    pager.clean_on_request = Some((2, 0, true));
    pager.hold_returns = true;
    let status = with_pager(&mut pager, 4, |base| {
        if sys::vm_behavior_set(base, 4 * PAGE, VM_BEHAVIOR_RANDOM).is_err() {
            return 1;
        }
        write(base, 42);
        if !holds_pattern(base, 2) {
            return 2;
        }
        if read(base) == 42 {
            0
        } else {
            3
        }
    })?;
    check!(status == 0, "child status {status}");
    check!(
        pager.returns == [(0, 42, true)],
        "returns {:?} (expected page 0, dirty, holding 42)",
        pager.returns
    );
    check!(
        pager.requests == [(0, 1), (2, 1)],
        "requests {:?}: page 0 was asked for again",
        pager.requests
    );
    Ok(())
}

/// The clean-in-place window: a thread of the child writes a counter into page 0 without
/// pause, bound to the second CPU when there is one, while the child's other thread reads
/// the object's other pages one by one and the pager cleans page 0 before it answers each
/// request. A clean write-protects the page on every CPU, copies it and marks it clean; a
/// write that slipped in after the copy without faulting (through a translation some CPU
/// kept writable) would leave the page marked clean with contents the pager never got.
/// Once the writer has stopped, one more request cleans page 0 a last time: the last page 0
/// the pager got must hold the writer's last value. (Without a second CPU it runs too; the
/// window is then never open.) Two shootdowns close the window: the clean's own, and the
/// one its dirty check makes as it clears the page's Accessed bits, after which the
/// writer's CPU waits for the kernel lock until the clean is over. With both made local
/// only, page 0 came back once in 47 cleans.
fn writes_during_cleans_are_never_lost() -> Result<(), String> {
    const PAGES: u64 = 48;
    /// Statuses from here on carry the writer's last value (modulo `SPAN`).
    const VALUE: u64 = 1000;
    const SPAN: u64 = 1_000_000;
    let mut pager = TestPager::new(1, Answer::Data);
    pager.clean_every_request = Some(0);
    pager.store_returns = true;
    // This task (the pager) and the child's reader share the first CPU, so the writer has
    // the second to itself: switching to another thread there would reload its tables and
    // drop every translation it kept, closing the window this case is about.
    let several = sys::host_info(HOST_CPUS).unwrap_or(1) > 1;
    if several {
        sys::thread_bind(Some(0)).map_err(|e| format!("bind: {e}"))?;
    }
    let status = with_pager(&mut pager, PAGES, |base| {
        static STOP: AtomicBool = AtomicBool::new(false);
        static LAST: AtomicU64 = AtomicU64::new(0);
        static DONE: AtomicBool = AtomicBool::new(false);
        extern "C" fn writer(base: u64) -> ! {
            if sys::host_info(HOST_CPUS).unwrap_or(1) > 1 {
                let _ = sys::thread_bind(Some(1));
            }
            let mut value = 0;
            while !STOP.load(Ordering::Acquire) {
                value += 1;
                write(base, value);
                LAST.store(value, Ordering::Release);
            }
            DONE.store(true, Ordering::Release);
            sys::thread_exit(0)
        }
        if sys::vm_behavior_set(base, PAGES * PAGE, VM_BEHAVIOR_RANDOM).is_err() {
            return 1;
        }
        // Page 0 in (its request cleans nothing yet), then the writer on its own stack.
        write(base, 0);
        let Ok(stack) = sys::vm_allocate(0, 16 * PAGE, VM_ANYWHERE) else {
            return 2;
        };
        // SAFETY: the writer runs `writer` on a stack nothing else uses and shares page 0
        // and the atomics above with this thread.
        let started = unsafe {
            sys::thread_create(
                writer as *const () as usize as u64,
                stack + 16 * PAGE - 8,
                base,
            )
        };
        if started.is_err() {
            return 3;
        }
        if sys::host_info(HOST_CPUS).unwrap_or(1) > 1 {
            let _ = sys::thread_bind(Some(0));
        }
        // Each page is a request, and each request a clean of page 0 while it is written.
        for page in 1..PAGES - 1 {
            if !holds_pattern(base, page) {
                return 4;
            }
        }
        STOP.store(true, Ordering::Release);
        while !DONE.load(Ordering::Acquire) {
            sys::thread_yield();
        }
        let last = LAST.load(Ordering::Acquire);
        if read(base) != last || last == 0 {
            return 5;
        }
        // The last clean, the writer stopped.
        if !holds_pattern(base, PAGES - 1) {
            return 6;
        }
        (VALUE + last % SPAN) as i32
    });
    if several {
        sys::thread_bind(None).map_err(|e| format!("unbind: {e}"))?;
    }
    let status = status?;
    check!(
        status >= VALUE,
        "child status {status} (returns {:?})",
        pager.returns
    );
    let page_0: Vec<&(u64, u64, bool)> = pager.returns.iter().filter(|r| r.0 == 0).collect();
    check!(
        page_0.len() >= 2,
        "page 0 came back only {} times: {:?}",
        page_0.len(),
        pager.returns
    );
    let &&(_, first, dirty) = page_0.last().expect("checked");
    check!(
        dirty && VALUE + first % SPAN == status,
        "the pager's last page 0 holds {first} (dirty: {dirty}); the writer's last value \
         (modulo {SPAN}) was {}: a write after a clean was lost",
        status - VALUE
    );
    Ok(())
}

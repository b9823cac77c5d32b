//! The cases, and what they share: starting a zpager through a tiny name service, making
//! objects as the kernel does, and pages with contents that can be checked.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use libipc::abi::syscall::{PAGE_SIZE, VM_ANYWHERE, VM_PROT_READ, VM_PROT_WRITE};
use libipc::interface::{Outbox, Pages, RemoteError, Replied, Reply, SendRight};
use libipc::ipc::{self, MessageBuffer, ReceiveRight, Task};
use libipc::names::{self, NameError};
use libipc::pager::{
    default_pager, memory_object, Attributes, PagerError, Returned, Supply, DEFAULT_PAGER_NAME,
};
use libipc::sys;

pub use libipc::rt::selftest::Case;

pub const ALL: &[(&str, Case)] = &[
    (
        "registers_under_the_default_pager_name",
        registers_under_the_default_pager_name,
    ),
    (
        "create_answers_default_attributes",
        create_answers_default_attributes,
    ),
    ("returned_pages_come_back", returned_pages_come_back),
    ("zero_pages_read_as_zeros", zero_pages_read_as_zeros),
    (
        "a_page_returned_twice_keeps_the_newest",
        a_page_returned_twice_keeps_the_newest,
    ),
    (
        "never_returned_is_unavailable",
        never_returned_is_unavailable,
    ),
    (
        "incompressible_pages_come_back",
        incompressible_pages_come_back,
    ),
    (
        "the_store_grows_past_the_heap_arena",
        the_store_grows_past_the_heap_arena,
    ),
    ("objects_are_kept_apart", objects_are_kept_apart),
    (
        "clean_return_keeps_the_held_copy",
        clean_return_keeps_the_held_copy,
    ),
    (
        "requests_outside_the_object_are_errors",
        requests_outside_the_object_are_errors,
    ),
    ("terminate_drops_the_object", terminate_drops_the_object),
    (
        "a_full_store_refuses_and_loses_nothing",
        a_full_store_refuses_and_loses_nothing,
    ),
];

/// Run with little memory (`init_arg=1 mem=...`): the kernel pages this task's memory out to
/// a zpager made the default pager.
pub const PRESSURE: &[(&str, Case)] = &[(
    "the_kernel_pages_out_to_zpager",
    the_kernel_pages_out_to_zpager,
)];

/// The host port the kernel gave this task (its first start argument, as the first task).
pub static HOST: AtomicU32 = AtomicU32::new(0);

/// The task port of the zpager made the kernel's default pager, if any: it must outlive
/// every case (the pages of this task it holds are lost with it), so `main` ends it last,
/// when nothing paged out is needed any more.
pub static DEFAULT_PAGER_TASK: AtomicU32 = AtomicU32::new(0);

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

const PAGE: u64 = PAGE_SIZE;
/// Bytes in a page, as an index.
const PAGE_BYTES: usize = PAGE_SIZE as usize;
/// How long to wait for zpager to register.
const REGISTER_TIMEOUT_MS: u64 = 5000;

/// The name service a test's zpager registers with: it keeps the one registration and
/// knows no other name.
#[derive(Default)]
struct Registry {
    registered: Option<(String, SendRight)>,
}

impl names::Server for Registry {
    fn register(
        &mut self,
        name: String,
        port: SendRight,
        reply: Reply<'_, (), NameError>,
    ) -> Replied {
        if self.registered.is_some() {
            return reply.err(NameError::Duplicate);
        }
        self.registered = Some((name, port));
        reply.ok(())
    }

    fn lookup(&mut self, _name: String, reply: Reply<'_, SendRight, NameError>) -> Replied {
        reply.err(NameError::Unknown)
    }

    fn lookup_wait(&mut self, _name: String, reply: Reply<'_, SendRight, NameError>) -> Replied {
        reply.err(NameError::Unknown)
    }
}

/// A zpager a case started, and what it registered. Dropped, it ends the zpager (unless
/// it was kept).
struct Zpager {
    task: Option<Task>,
    /// The name zpager registered its port under.
    name: String,
    pager: default_pager::Client,
}

impl Zpager {
    /// Lets this zpager run on when dropped; its task port's name (the caller ends it).
    fn keep(&mut self) -> u32 {
        let task = self.task.take().expect("a zpager's task is kept once");
        let name = task.port().name();
        // The task port stays ours under `name`.
        core::mem::forget(task);
        name
    }
}

impl Drop for Zpager {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            let _ = task.terminate();
            let _ = task.wait();
        }
    }
}

/// Starts a zpager that keeps at most `limit` bytes (0: no limit of its own) and takes the
/// port it registers.
fn start_zpager(limit: u64) -> Result<Zpager, String> {
    let service = ReceiveRight::allocate().map_err(|e| format!("name service port: {e}"))?;
    let give = service
        .make_send()
        .map_err(|e| format!("name service send right: {e}"))?;
    let task = Task::spawn("zpager", Some(&give), limit).map_err(|e| format!("spawn: {e}"))?;
    drop(give);
    let mut registry = Registry::default();
    let mut buffer = Box::new(MessageBuffer::new());
    let mut outbox = Box::new(Outbox::new());
    let registered = match ipc::receive(service.name(), &mut buffer, Some(REGISTER_TIMEOUT_MS)) {
        Ok(request) => {
            names::dispatch(&mut registry, &request, &mut outbox);
            if let Some(reply) = outbox.take_reply() {
                let _ = ipc::send_message(&reply, Some(0));
            }
            registry.registered.take()
        }
        Err(_) => None,
    };
    let Some((name, port)) = registered else {
        let _ = task.terminate();
        let _ = task.wait();
        return Err("zpager did not register".into());
    };
    Ok(Zpager {
        task: Some(task),
        name,
        pager: default_pager::Client::new(port),
    })
}

/// An object as the kernel holds it: a send right to its port (zpager has the receive
/// right) and the control port zpager got a send right to.
struct Object {
    client: memory_object::Client,
    _control: ReceiveRight,
}

/// Creates an object of `pages` pages with `zpager`: the kernel's side of `create`.
fn create(zpager: &mut Zpager, pages: u64) -> Result<(Object, Attributes), String> {
    let port = ReceiveRight::allocate().map_err(|e| format!("object port: {e}"))?;
    let send = port
        .make_send()
        .map_err(|e| format!("object send right: {e}"))?;
    let control = ReceiveRight::allocate().map_err(|e| format!("control port: {e}"))?;
    let control_send = control
        .make_send()
        .map_err(|e| format!("control send right: {e}"))?;
    let attributes = zpager
        .pager
        .create(port, &control_send, pages * PAGE)
        .map_err(|e| format!("create: {e:?}"))?;
    let object = Object {
        client: memory_object::Client::new(send),
        _control: control,
    };
    Ok((object, attributes))
}

/// A zpager (keeping at most `limit` bytes, 0: any) with one object of `pages` pages.
fn zpager_with_object(limit: u64, pages: u64) -> Result<(Zpager, Object), String> {
    let mut zpager = start_zpager(limit)?;
    let (object, _) = create(&mut zpager, pages)?;
    Ok((zpager, object))
}

/// What a page is made of.
#[derive(Clone, Copy, Debug)]
enum Fill {
    Zero,
    /// Compressible: short lines that repeat with `seed` in them.
    Text(u64),
    /// Incompressible: xorshift output from `seed`.
    Noise(u64),
}

impl Fill {
    fn write(self, page: &mut [u8]) {
        match self {
            Fill::Zero => page.fill(0),
            Fill::Text(seed) => {
                for (i, line) in page.chunks_exact_mut(32).enumerate() {
                    line.fill(b' ');
                    line[..8].copy_from_slice(&seed.to_le_bytes());
                    line[8..12].copy_from_slice(&(i as u32 % 7).to_le_bytes());
                    line[31] = b'\n';
                }
            }
            Fill::Noise(seed) => {
                let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                for word in page.chunks_exact_mut(8) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    word.copy_from_slice(&state.to_le_bytes());
                }
            }
        }
    }

    /// The page's bytes.
    fn bytes(self) -> Vec<u8> {
        let mut page = alloc::vec![0xa5; PAGE_BYTES];
        self.write(&mut page);
        page
    }
}

/// Fresh pages filled as `fills` says, one page each.
fn pages_of(fills: &[Fill]) -> Result<Pages, String> {
    let mut pages = Pages::allocate(fills.len() as u64 * PAGE).map_err(|e| format!("{e}"))?;
    for (page, fill) in pages.as_mut_slice().chunks_exact_mut(PAGE_BYTES).zip(fills) {
        fill.write(page);
    }
    Ok(pages)
}

/// Returns pages filled as `fills` says at page `first` (dirty), expecting them stored.
fn give(object: &mut Object, first: u64, fills: &[Fill]) -> Result<(), String> {
    match object
        .client
        .data_return(first * PAGE, pages_of(fills)?, true)
    {
        Ok(Returned::Stored) => Ok(()),
        Ok(Returned::Refused(_)) => Err(format!("the return at page {first} was refused")),
        Err(e) => Err(format!("data_return at page {first}: {e:?}")),
    }
}

/// Asks for `count` pages from page `first`.
fn request(object: &mut Object, first: u64, count: u64) -> Result<Supply, String> {
    object
        .client
        .data_request(first * PAGE, count * PAGE, VM_PROT_READ as u32)
        .map_err(|e| format!("data_request of {count} pages at page {first}: {e:?}"))
}

/// Asks for `count` pages from page `first` and checks they hold `fills`.
fn expect(object: &mut Object, first: u64, fills: &[Fill]) -> Result<(), String> {
    let count = fills.len() as u64;
    let Supply::Data(pages) = request(object, first, count)? else {
        return Err(format!(
            "{count} pages at page {first}: unavailable, data expected"
        ));
    };
    check!(
        pages.len() == count * PAGE,
        "{count} pages at page {first}: {} bytes supplied",
        pages.len()
    );
    for (i, (page, fill)) in pages
        .as_slice()
        .chunks_exact(PAGE_BYTES)
        .zip(fills)
        .enumerate()
    {
        check!(
            page == fill.bytes().as_slice(),
            "page {} holds the wrong data ({fill:?} expected)",
            first + i as u64
        );
    }
    Ok(())
}

/// Checks that `count` pages from page `first` are unavailable.
fn expect_unavailable(object: &mut Object, first: u64, count: u64) -> Result<(), String> {
    match request(object, first, count)? {
        Supply::Unavailable => Ok(()),
        Supply::Data(_) => Err(format!(
            "{count} pages at page {first}: data, unavailable expected"
        )),
    }
}

fn registers_under_the_default_pager_name() -> Result<(), String> {
    let zpager = start_zpager(0)?;
    check!(
        zpager.name == DEFAULT_PAGER_NAME,
        "registered as {:?}",
        zpager.name
    );
    Ok(())
}

fn create_answers_default_attributes() -> Result<(), String> {
    let mut zpager = start_zpager(0)?;
    for pages in [1, 64, 1 << 20] {
        let (_, attributes) = create(&mut zpager, pages)?;
        check!(
            attributes == Attributes::default() && attributes.cluster_pages == 4,
            "{pages} pages: {attributes:?}"
        );
    }
    Ok(())
}

fn returned_pages_come_back() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 64)?;
    let first = [Fill::Text(1), Fill::Text(2), Fill::Text(3), Fill::Text(4)];
    let second = [Fill::Text(5), Fill::Text(6), Fill::Text(7), Fill::Text(8)];
    give(&mut object, 0, &first)?;
    give(&mut object, 8, &second)?;
    expect(&mut object, 0, &first)?;
    expect(&mut object, 8, &second)?;
    // Part of a cluster, and the store keeps its copy after a supply.
    expect(&mut object, 9, &second[1..3])?;
    expect(&mut object, 0, &first)?;
    // The last cluster of the object.
    give(&mut object, 60, &second)?;
    expect(&mut object, 63, &second[3..])
}

fn zero_pages_read_as_zeros() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 16)?;
    let mixed = [Fill::Zero, Fill::Text(1), Fill::Zero, Fill::Noise(2)];
    give(&mut object, 0, &mixed)?;
    expect(&mut object, 0, &mixed)?;
    // Pages that are all zeros: the kernel is told to fill them itself.
    give(&mut object, 4, &[Fill::Zero; 4])?;
    expect_unavailable(&mut object, 4, 4)?;
    // A page that held data and comes back as zeros holds zeros.
    give(&mut object, 1, &[Fill::Zero])?;
    expect(
        &mut object,
        0,
        &[Fill::Zero, Fill::Zero, Fill::Zero, Fill::Noise(2)],
    )?;
    give(&mut object, 3, &[Fill::Zero])?;
    expect_unavailable(&mut object, 0, 4)
}

fn a_page_returned_twice_keeps_the_newest() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 16)?;
    give(
        &mut object,
        4,
        &[Fill::Text(1), Fill::Text(2), Fill::Text(3), Fill::Text(4)],
    )?;
    give(&mut object, 5, &[Fill::Noise(9)])?;
    give(&mut object, 6, &[Fill::Text(10), Fill::Text(11)])?;
    expect(
        &mut object,
        4,
        &[
            Fill::Text(1),
            Fill::Noise(9),
            Fill::Text(10),
            Fill::Text(11),
        ],
    )?;
    give(&mut object, 5, &[Fill::Text(12)])?;
    expect(&mut object, 5, &[Fill::Text(12)])
}

fn never_returned_is_unavailable() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 16)?;
    expect_unavailable(&mut object, 0, 4)?;
    give(&mut object, 4, &[Fill::Text(1), Fill::Text(2)])?;
    expect_unavailable(&mut object, 0, 4)?;
    expect_unavailable(&mut object, 8, 4)?;
    expect_unavailable(&mut object, 6, 2)?;
    // A range where some pages are held: the others read as zeros.
    give(&mut object, 14, &[Fill::Text(3)])?;
    expect(
        &mut object,
        12,
        &[Fill::Zero, Fill::Zero, Fill::Text(3), Fill::Zero],
    )?;
    expect(
        &mut object,
        4,
        &[Fill::Text(1), Fill::Text(2), Fill::Zero, Fill::Zero],
    )
}

fn incompressible_pages_come_back() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 64)?;
    let noise: Vec<Fill> = (0..16).map(|i| Fill::Noise(100 + i)).collect();
    for (cluster, fills) in noise.chunks(4).enumerate() {
        give(&mut object, cluster as u64 * 4, fills)?;
    }
    for (cluster, fills) in noise.chunks(4).enumerate() {
        expect(&mut object, cluster as u64 * 4, fills)?;
    }
    Ok(())
}

fn the_store_grows_past_the_heap_arena() -> Result<(), String> {
    // 512 KiB that do not compress: twice the runtime's 256 KiB arena, so zpager's heap
    // must grow into memory it reserves.
    let (_zpager, mut object) = zpager_with_object(0, 128)?;
    let noise: Vec<Fill> = (0..128).map(|i| Fill::Noise(1000 + i)).collect();
    for (cluster, fills) in noise.chunks(4).enumerate() {
        give(&mut object, cluster as u64 * 4, fills)?;
    }
    for (cluster, fills) in noise.chunks(4).enumerate() {
        expect(&mut object, cluster as u64 * 4, fills)?;
    }
    Ok(())
}

fn objects_are_kept_apart() -> Result<(), String> {
    let mut zpager = start_zpager(0)?;
    let (mut one, _) = create(&mut zpager, 8)?;
    let (mut two, _) = create(&mut zpager, 8)?;
    give(&mut one, 0, &[Fill::Text(1), Fill::Text(2)])?;
    give(&mut two, 0, &[Fill::Noise(3), Fill::Text(4)])?;
    give(&mut two, 4, &[Fill::Text(5)])?;
    expect(&mut one, 0, &[Fill::Text(1), Fill::Text(2)])?;
    expect(&mut two, 0, &[Fill::Noise(3), Fill::Text(4)])?;
    expect_unavailable(&mut one, 4, 4)?;
    one.client
        .terminate()
        .map_err(|e| format!("terminate: {e:?}"))?;
    expect(&mut two, 0, &[Fill::Noise(3), Fill::Text(4)])?;
    expect(&mut two, 4, &[Fill::Text(5)])
}

fn clean_return_keeps_the_held_copy() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 8)?;
    give(&mut object, 0, &[Fill::Text(1)])?;
    // A clean page is the one zpager holds: nothing is stored again.
    let clean = pages_of(&[Fill::Text(2)])?;
    match object.client.data_return(0, clean, false) {
        Ok(Returned::Stored) => {}
        other => return Err(format!("clean return of a held page: {other:?}")),
    }
    expect(&mut object, 0, &[Fill::Text(1)])?;
    // A clean page it does not hold (zero-filled, say) is stored.
    let clean = pages_of(&[Fill::Text(3)])?;
    match object.client.data_return(PAGE, clean, false) {
        Ok(Returned::Stored) => {}
        other => return Err(format!("clean return of a new page: {other:?}")),
    }
    expect(&mut object, 0, &[Fill::Text(1), Fill::Text(3)])
}

fn requests_outside_the_object_are_errors() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 8)?;
    let access = VM_PROT_READ as u32;
    for (offset, length) in [
        (1, PAGE),
        (0, 0),
        (0, PAGE + 1),
        (8 * PAGE, PAGE),
        (4 * PAGE, 8 * PAGE),
    ] {
        match object.client.data_request(offset, length, access) {
            Err(RemoteError::Server(PagerError::OutOfRange)) => {}
            other => {
                return Err(format!(
                    "request {offset:#x}+{length:#x}: {other:?}, OutOfRange expected"
                ))
            }
        }
    }
    let answer = object
        .client
        .data_return(8 * PAGE, pages_of(&[Fill::Text(1)])?, true);
    check!(
        answer == Err(RemoteError::Server(PagerError::OutOfRange)),
        "return past the end: {answer:?}"
    );
    // The object still works.
    give(&mut object, 4, &[Fill::Text(2)])?;
    expect(&mut object, 4, &[Fill::Text(2)])
}

fn terminate_drops_the_object() -> Result<(), String> {
    let (_zpager, mut object) = zpager_with_object(0, 8)?;
    // zpager reports what the object held: 4 pages, 1 of them zero.
    give(
        &mut object,
        0,
        &[Fill::Zero, Fill::Text(1), Fill::Text(2), Fill::Noise(3)],
    )?;
    object
        .client
        .terminate()
        .map_err(|e| format!("terminate: {e:?}"))?;
    // The object's port is gone with it.
    let after = object
        .client
        .data_request(0, 4 * PAGE, (VM_PROT_READ | VM_PROT_WRITE) as u32);
    check!(
        matches!(after, Err(RemoteError::Transport(_))),
        "a request after terminate: {after:?}"
    );
    Ok(())
}

fn a_full_store_refuses_and_loses_nothing() -> Result<(), String> {
    // Room for two incompressible pages and a compressed one (a text page takes a few
    // hundred bytes at most), not for three incompressible ones.
    let (_zpager, mut object) = zpager_with_object(2 * PAGE + 1024, 16)?;
    give(&mut object, 0, &[Fill::Noise(1), Fill::Noise(2)])?;
    // Two more pages, where only a compressed one would fit: both come back, as they were.
    let fills = [Fill::Text(3), Fill::Noise(4)];
    match object.client.data_return(4 * PAGE, pages_of(&fills)?, true) {
        Ok(Returned::Refused(pages)) => {
            check!(pages.len() == 2 * PAGE, "{} bytes given back", pages.len());
            let expected = [fills[0].bytes(), fills[1].bytes()].concat();
            check!(
                pages.as_slice() == expected.as_slice(),
                "the pages given back changed"
            );
        }
        other => return Err(format!("return over the limit: {other:?}")),
    }
    // Neither page was kept; the first two are still there.
    expect_unavailable(&mut object, 4, 4)?;
    expect(&mut object, 0, &[Fill::Noise(1), Fill::Noise(2)])?;
    // Zeros in place of a page make room.
    give(&mut object, 0, &[Fill::Zero])?;
    give(&mut object, 4, &fills)?;
    expect(&mut object, 4, &fills)?;
    expect(&mut object, 0, &[Fill::Zero, Fill::Noise(2)])
}

/// Bytes of memory `the_kernel_pages_out_to_zpager` writes: more than the machine has.
const PRESSURE_BYTES: u64 = 48 << 20;

/// The word at byte `offset` of the memory `the_kernel_pages_out_to_zpager` writes: it
/// repeats within a page (so it compresses) and differs from page to page.
fn pressure_word(offset: u64) -> u64 {
    ((offset / PAGE) << 8) | ((offset / 8) % 4)
}

fn the_kernel_pages_out_to_zpager() -> Result<(), String> {
    let mut zpager = start_zpager(0)?;
    let host = HOST.load(Ordering::Relaxed);
    sys::host_set_default_pager(host, zpager.pager.transport().server().name())
        .map_err(|e| format!("host_set_default_pager: {e}"))?;
    // From now on pages of this task may be with zpager: it must outlive the cases.
    DEFAULT_PAGER_TASK.store(zpager.keep(), Ordering::Relaxed);
    let before = sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))?;
    let base =
        sys::vm_allocate(0, PRESSURE_BYTES, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
    let words = PRESSURE_BYTES / 8;
    for i in 0..words {
        // SAFETY: the region is ours, mapped read-write just above.
        unsafe { core::ptr::write_volatile((base + i * 8) as *mut u64, pressure_word(i * 8)) };
    }
    let mut wrong = 0u64;
    for i in 0..words {
        // SAFETY: as above.
        let word = unsafe { core::ptr::read_volatile((base + i * 8) as *const u64) };
        wrong += u64::from(word != pressure_word(i * 8));
    }
    let after = sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))?;
    // SAFETY: nothing of ours lives in the region; zpager is told to drop the object.
    unsafe { sys::vm_deallocate(base, PRESSURE_BYTES) }.map_err(|e| format!("deallocate: {e}"))?;
    // zpager reports the object when it handles the kernel's terminate. It serves its ports
    // in the order they joined its set: once an object made now is served, that is done.
    let (mut probe, _) = create(&mut zpager, 1)?;
    probe
        .client
        .terminate()
        .map_err(|e| format!("terminate: {e:?}"))?;
    let (pageouts, pageins) = (
        after.pageouts - before.pageouts,
        after.pageins - before.pageins,
    );
    libipc::println!(
        "zpager_test: {} MiB written and read back: {pageouts} pages out, {pageins} pages in, {wrong} words wrong",
        PRESSURE_BYTES >> 20
    );
    check!(wrong == 0, "{wrong} words read back wrong");
    check!(
        pageouts > 0 && pageins > 0,
        "{pageouts} pages out, {pageins} in: no pressure"
    );
    Ok(())
}

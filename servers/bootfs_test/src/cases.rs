//! The cases: programs loaded after the program pager was registered, and archive files read
//! through bootfs's file interface.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering};
use libipc::abi::archive::pattern_mismatch;
use libipc::abi::syscall::VmStatistics;
use libipc::file::{file, file_server, FileError, MAX_READ};
use libipc::interface::{RemoteError, SendRight};
use libipc::ipc::Task;
use libipc::sys;

/// bootfs's port (set by main before the cases run).
pub static BOOTFS: AtomicU32 = AtomicU32::new(0);

pub use libipc::rt::selftest::Case;

pub const ALL: &[(&str, Case)] = &[
    (
        "spawned_text_pages_in_through_the_pager",
        spawned_text_pages_in_through_the_pager,
    ),
    ("text_is_shared_between_tasks", text_is_shared_between_tasks),
    (
        "exec_maps_text_through_the_pager",
        exec_maps_text_through_the_pager,
    ),
    (
        "archive_files_read_through_the_file_interface",
        archive_files_read_through_the_file_interface,
    ),
    (
        "bad_file_requests_are_refused",
        bad_file_requests_are_refused,
    ),
    (
        "archive_files_map_through_the_standard_open",
        archive_files_map_through_the_standard_open,
    ),
];

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

fn statistics() -> Result<VmStatistics, String> {
    sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))
}

fn run(program: &str, argument: u64) -> Result<u64, String> {
    let task = Task::spawn(program, None, argument).map_err(|e| format!("spawn {program}: {e}"))?;
    task.wait().map_err(|e| format!("wait {program}: {e}"))
}

fn spawned_text_pages_in_through_the_pager() -> Result<(), String> {
    let before = statistics()?;
    let status = run("hello", 0)?;
    check!(status == 0, "hello exited with {status}");
    let after = statistics()?;
    let requests = after.requests() - before.requests();
    let pages = after.requested_pages() - before.requested_pages();
    check!(requests > 0, "hello's text came in without a request");
    check!(
        after.pageins - before.pageins >= pages && pages > requests,
        "{requests} requests for {pages} pages, {} pages in: text is not paged in clusters",
        after.pageins - before.pageins
    );
    Ok(())
}

fn text_is_shared_between_tasks() -> Result<(), String> {
    // hello's text is resident from the case before: a second task maps the same pages.
    let before = statistics()?;
    let status = run("hello", 0)?;
    check!(status == 0, "hello exited with {status}");
    let after = statistics()?;
    check!(
        after.pageins == before.pageins,
        "{} pages paged in again for a second hello",
        after.pageins - before.pageins
    );
    Ok(())
}

fn exec_maps_text_through_the_pager() -> Result<(), String> {
    let before = statistics()?;
    // bench_vm with role 1 exits at once: a program not run before, exec'd by a fork.
    let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let error = sys::task_exec("bench_vm", 1);
            libipc::println!("bootfs_test: exec failed: {error}");
            sys::task_exit(2)
        }
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status?
        }
    };
    check!(status == 0, "the exec'd child exited with {status}");
    let after = statistics()?;
    check!(
        after.requests() > before.requests(),
        "exec'd text came in without a request"
    );
    Ok(())
}

/// The pattern file of the boot manifest that NONAIM's `file_test` reads.
const DATA_FILE: &str = "nonaim_data";

/// Opens `name` through bootfs: the file's client, or the error.
fn open(name: &str) -> Result<file::Client, RemoteError<FileError>> {
    // bootfs's right is main's, borrowed for the call and kept afterwards.
    let mut server = file_server::Client::new(SendRight::from_raw(BOOTFS.load(Ordering::Relaxed)));
    let opened = server.open(name.into());
    let _ = server.into_transport().into_server().into_raw();
    opened.map(file::Client::new)
}

fn archive_files_read_through_the_file_interface() -> Result<(), String> {
    let mut data = open(DATA_FILE).map_err(|e| format!("open {DATA_FILE}: {e:?}"))?;
    let size = data.size().map_err(|e| format!("size: {e:?}"))?;
    check!(size >= 64 * 1024, "{DATA_FILE} is only {size} bytes");
    // Sixteen whole reads from the start, then one across a word boundary, then the end.
    for page in 0..16u64 {
        let offset = page * u64::from(MAX_READ);
        let bytes = data
            .read(offset, MAX_READ)
            .map_err(|e| format!("read at {offset}: {e:?}"))?;
        let bytes = bytes.into_vec();
        check!(
            bytes.len() == MAX_READ as usize,
            "read at {offset}: {} bytes",
            bytes.len()
        );
        if let Some(wrong) = pattern_mismatch(offset, &bytes) {
            return Err(format!(
                "{DATA_FILE}: wrong byte at {}",
                offset + wrong as u64
            ));
        }
    }
    let odd = data
        .read(4093, 100)
        .map_err(|e| format!("read at 4093: {e:?}"))?
        .into_vec();
    check!(
        odd.len() == 100 && pattern_mismatch(4093, &odd).is_none(),
        "an unaligned read is wrong"
    );
    let tail = data
        .read(size - 3, 10)
        .map_err(|e| format!("read at the end: {e:?}"))?
        .into_vec();
    check!(
        tail.len() == 3 && pattern_mismatch(size - 3, &tail).is_none(),
        "a read across the end gave {} bytes",
        tail.len()
    );
    let end = data
        .read(size, 10)
        .map_err(|e| format!("read at the size: {e:?}"))?;
    check!(
        end.0.is_empty(),
        "a read at the end gave {} bytes",
        end.0.len()
    );
    // A program is a file too: an ELF from its first byte.
    let mut hello = open("hello").map_err(|e| format!("open hello: {e:?}"))?;
    let head = hello
        .read(0, 4)
        .map_err(|e| format!("read hello: {e:?}"))?
        .into_vec();
    check!(head == b"\x7fELF", "hello starts with {head:?}");
    Ok(())
}

fn bad_file_requests_are_refused() -> Result<(), String> {
    let refused = |name: &str, expected: FileError| match open(name) {
        Err(RemoteError::Server(e)) if e == expected => Ok(()),
        Err(e) => Err(format!("open {name:?}: {e:?}, not {expected:?}")),
        Ok(_) => Err(format!("open {name:?} succeeded")),
    };
    refused("no_such_file", FileError::NoSuchFile)?;
    refused("", FileError::BadName)?;
    refused(&"n".repeat(48), FileError::BadName)?;
    let mut data = open(DATA_FILE).map_err(|e| format!("open {DATA_FILE}: {e:?}"))?;
    let size = data.size().map_err(|e| format!("size: {e:?}"))?;
    match data.read(size + 1, 1) {
        Err(RemoteError::Server(FileError::PastEnd { size: told })) if told == size => {}
        other => return Err(format!("a read past the end: {other:?}")),
    }
    match data.read(u64::MAX, 1) {
        Err(RemoteError::Server(FileError::PastEnd { .. })) => {}
        other => return Err(format!("a read at offset 2^64-1: {other:?}")),
    }
    match data.read(0, MAX_READ + 1) {
        Err(RemoteError::Server(FileError::TooLong { max: MAX_READ })) => {}
        other => return Err(format!("a read of {} bytes: {other:?}", MAX_READ + 1)),
    }
    // A file's request on the server's own port is no routine of its.
    let mut wrong = file::Client::new(SendRight::from_raw(BOOTFS.load(Ordering::Relaxed)));
    let answer = wrong.size();
    let _ = wrong.into_transport().into_server().into_raw();
    check!(
        matches!(answer, Err(RemoteError::UnknownRoutine)),
        "size on the server's port: {answer:?}"
    );
    // And bootfs still serves.
    let again = data
        .read(0, 8)
        .map_err(|e| format!("read after the refusals: {e:?}"))?;
    check!(
        pattern_mismatch(0, &again.0).is_none(),
        "the read after the refusals is wrong"
    );
    Ok(())
}

/// Any archive file maps as a memory object, through the open-object interface every kit
/// pager serves (`memory_object_server.open`): every byte as the file interface reads it.
fn archive_files_map_through_the_standard_open() -> Result<(), String> {
    use libipc::abi::syscall::{PAGE_SIZE, VM_ANYWHERE, VM_PROT_READ};
    use libipc::pager::{memory_object_server, PagerError};
    let size = open(DATA_FILE)
        .and_then(|mut f| f.size())
        .map_err(|e| format!("size of {DATA_FILE}: {e:?}"))?;
    // bootfs's right is main's, borrowed for the calls and kept afterwards.
    let mut pager =
        memory_object_server::Client::new(SendRight::from_raw(BOOTFS.load(Ordering::Relaxed)));
    let object = pager.open(DATA_FILE.into());
    let unknown = pager.open("no_such_file".into());
    let _ = pager.into_transport().into_server().into_raw();
    let object = object.map_err(|e| format!("open {DATA_FILE}: {e}"))?;
    check!(
        matches!(unknown, Err(RemoteError::Server(PagerError::OutOfRange))),
        "opening no file gave {unknown:?}"
    );
    let length = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let base = sys::vm_map(0, length, VM_ANYWHERE, object.name(), 0, VM_PROT_READ)
        .map_err(|e| format!("vm_map: {e}"))?;
    // SAFETY: the object is mapped readable at `base` for `length` >= `size` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, size as usize) };
    let wrong = pattern_mismatch(0, bytes);
    // SAFETY: the mapping is this case's; `bytes` is not used after this.
    unsafe { sys::vm_deallocate(base, length) }.map_err(|e| format!("unmap: {e}"))?;
    match wrong {
        Some(at) => Err(format!("{DATA_FILE} mapped: wrong byte at {at}")),
        None => Ok(()),
    }
}

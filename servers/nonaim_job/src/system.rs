//! The jobs that use the system: page_test (1 MiB allocated, touched, checked, freed),
//! brk_test (a break grown by 256 KiB in 4 KiB steps and shrunk), fork_test (20 forks),
//! exec_test (5 forks and execs of `nonaim_exit`), pipe_test (200 round trips of 64 bytes
//! with a child over ports), shm_test (64 KiB shared with a child, 4 times) and file_test
//! (256 KiB of a boot-archive file read in 4 KiB reads through bootfs's file interface).
//! Each checks what it did; a fork that fails is retried after a pause and counted.

use alloc::format;
use alloc::string::String;
use libipc::abi::archive::pattern_mismatch;
use libipc::abi::message::{notify, Disposition};
use libipc::abi::syscall::{PAGE_SIZE, VM_ANYWHERE, VM_INHERIT_SHARE};
use libipc::file::{file, file_server, FileError, MAX_READ};
use libipc::interface::{RemoteError, SendRight};
use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight};
use libipc::process::{self, Fork};
use libipc::{println, sys};
use nonaim::guest::{fork_retrying, pause_before_retry};
use nonaim::jobdata::{
    exec_argument, file_test_start, fork_child_status, page_test_offset,
    page_test_untouched_offset, page_word, pipe_bytes, shared_word, BRK_TEST_BYTES,
    EXEC_TEST_CHILDREN, FORK_TEST_CHILDREN, PAGE_TEST_BYTES, PIPE_BYTES, PIPE_ROUND_TRIPS,
    SHM_BYTES, SHM_ROUNDS,
};
use nonaim::mix::{exit_status_for, Ended, Job, JobArgument, Verdict};

/// Why a job did not pass.
enum Failure {
    /// It did its work and the result is wrong.
    Wrong(String),
    /// It could not get what it needed (memory, a port, a fork) even after retries.
    NoResources(String),
}

type Done = Result<(), Failure>;

/// `Failure::NoResources` for step `what` that failed with `error`.
fn short<E: core::fmt::Display>(what: &'static str) -> impl Fn(E) -> Failure {
    move |error| Failure::NoResources(format!("{what}: {error}"))
}

/// The status `wait` gives for a task the kernel ended (a fault: out of memory when its pager
/// could not answer, say).
const ENDED_BY_THE_KERNEL: u64 = u64::MAX;

/// The failure of a child that exited with `status` where `expected` was due: the kernel
/// ending it is a lack of resources, anything else a wrong result.
fn child_failure(what: &str, status: u64, expected: u64) -> Failure {
    if status == ENDED_BY_THE_KERNEL {
        Failure::NoResources(format!("{what} was ended by the kernel"))
    } else {
        Failure::Wrong(format!("{what} exited with {status}, not {expected}"))
    }
}

/// Runs system job `argument.job`: its verdict and the forks it retried.
pub fn run(argument: JobArgument) -> (Verdict, u32) {
    let seed = argument.seed;
    let mut retried = 0;
    let done = match argument.job {
        Job::PageTest => page_test(seed),
        Job::BrkTest => brk_test(seed),
        Job::ForkTest => fork_test(seed, &mut retried),
        Job::ExecTest => exec_test(seed, &mut retried),
        Job::PipeTest => pipe_test(seed, &mut retried),
        Job::ShmTest => shm_test(seed, &mut retried),
        Job::FileTest => file_test(seed, argument.files),
        job => Err(Failure::Wrong(format!("{job} is not a system job"))),
    };
    let job = argument.job;
    match done {
        Ok(()) => (Verdict::Passed, retried),
        Err(Failure::Wrong(why)) => {
            println!("nonaim_job: {job}: WRONG RESULT: {why} (seed {seed})");
            (Verdict::Wrong, retried)
        }
        Err(Failure::NoResources(why)) => {
            println!("nonaim_job: {job}: out of resources: {why}");
            (Verdict::NoResources, retried)
        }
    }
}

/// Frees `[base, base + size)`.
fn free(base: u64, size: u64) -> Result<(), libipc::abi::KernReturn> {
    // SAFETY: callers pass memory they allocated themselves and reach only through
    // `write_word` and `read_word` with addresses: no reference into it outlives this call.
    unsafe { sys::vm_deallocate(base, size) }
}

fn write_word(address: u64, value: u64) {
    // Volatile: the store is the work (it faults the page in), never to be left out.
    // SAFETY: callers pass an 8-byte-aligned address inside a region they allocated
    // read-write and still hold.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

fn read_word(address: u64) -> u64 {
    // Volatile: the load must reach memory, not a value the compiler remembers.
    // SAFETY: as for `write_word`.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// page_test: 1 MiB allocated; one word written in each page (a page fault each), every
/// page read back, a word no one wrote checked to be zero, the memory freed.
fn page_test(seed: u32) -> Done {
    const BYTES: u64 = PAGE_TEST_BYTES;
    let base = sys::vm_allocate(0, BYTES, VM_ANYWHERE).map_err(short("vm_allocate 1 MiB"))?;
    let pages = BYTES / PAGE_SIZE;
    let place = |page: u64| base + page * PAGE_SIZE + page_test_offset(page);
    for page in 0..pages {
        write_word(place(page), page_word(seed, page));
    }
    for page in 0..pages {
        let found = read_word(place(page));
        if found != page_word(seed, page) {
            return Err(Failure::Wrong(format!("page {page} holds {found:#x}")));
        }
        let other = base + page * PAGE_SIZE + page_test_untouched_offset(page);
        if read_word(other) != 0 {
            return Err(Failure::Wrong(format!(
                "page {page}: a word never written is not 0"
            )));
        }
    }
    free(base, BYTES).map_err(|e| Failure::Wrong(format!("vm_deallocate of the 1 MiB: {e}")))
}

/// brk_test: a break grown by 256 KiB in 4 KiB steps (each step a `vm_allocate` at the
/// break's address, written), all of it checked, then shrunk a step at a time (each step a
/// `vm_deallocate` of the top page), the page below the break checked each time.
fn brk_test(seed: u32) -> Done {
    const BYTES: u64 = BRK_TEST_BYTES;
    const STEPS: u64 = BYTES / PAGE_SIZE;
    // A place with room for the whole break: reserved, then let go, then grown into.
    let base = sys::vm_allocate(0, BYTES, VM_ANYWHERE).map_err(short("vm_allocate 256 KiB"))?;
    free(base, BYTES)
        .map_err(|e| Failure::Wrong(format!("vm_deallocate of the reservation: {e}")))?;
    for step in 0..STEPS {
        let page = base + step * PAGE_SIZE;
        if let Err(e) = sys::vm_allocate(page, PAGE_SIZE, 0) {
            let _ = free(base, step * PAGE_SIZE);
            return Err(Failure::NoResources(format!(
                "growing the break at step {step}: {e}"
            )));
        }
        write_word(page, page_word(seed, step));
        write_word(page + PAGE_SIZE - 8, !page_word(seed, step));
    }
    let check = |step: u64| {
        let page = base + step * PAGE_SIZE;
        let (first, last) = (read_word(page), read_word(page + PAGE_SIZE - 8));
        if first != page_word(seed, step) || last != !page_word(seed, step) {
            return Err(Failure::Wrong(format!(
                "page {step} of the break holds {first:#x}"
            )));
        }
        Ok(())
    };
    for step in 0..STEPS {
        check(step)?;
    }
    for step in (0..STEPS).rev() {
        free(base + step * PAGE_SIZE, PAGE_SIZE)
            .map_err(|e| Failure::Wrong(format!("shrinking the break at step {step}: {e}")))?;
        if step > 0 {
            check(step - 1)?;
        }
    }
    // Nothing is left where the break was.
    match sys::vm_region(base) {
        Ok(region) if region.start < base + BYTES => Err(Failure::Wrong(format!(
            "memory left at {:#x} after the break shrank",
            region.start
        ))),
        _ => Ok(()),
    }
}

/// Waits for `child`; its status, or `Failure::Wrong` if the wait itself failed.
fn wait(child: &libipc::ipc::Task) -> Result<u64, Failure> {
    process::wait(child).map_err(|e| Failure::Wrong(format!("wait: {e}")))
}

/// fork_test: 20 children forked, each exiting at once with its own status, each waited for.
fn fork_test(seed: u32, retried: &mut u32) -> Done {
    for child in 0..FORK_TEST_CHILDREN {
        let expected = fork_child_status(seed, child);
        match fork_retrying(retried).map_err(short("fork"))? {
            Fork::Child => process::exit(expected as i32),
            Fork::Parent(task) => {
                let status = wait(&task)?;
                if status != expected {
                    return Err(child_failure("a forked child", status, expected));
                }
            }
        }
    }
    Ok(())
}

/// exec_test: 5 children forked, each exec'ing `nonaim_exit`, which exits with a status its
/// argument gives; an exec that fails is retried after a pause (the child says so with
/// `Verdict::ExecFailed`).
fn exec_test(seed: u32, retried: &mut u32) -> Done {
    for child in 0..EXEC_TEST_CHILDREN {
        let argument = exec_argument(seed, child);
        let expected = exit_status_for(argument) as u64;
        let mut attempt = 0;
        loop {
            let status = match fork_retrying(retried).map_err(short("fork"))? {
                Fork::Child => {
                    let _ = process::exec("nonaim_exit", argument);
                    process::exit(Verdict::ExecFailed.status(0))
                }
                Fork::Parent(task) => wait(&task)?,
            };
            if status == expected {
                break;
            }
            let exec_failed = matches!(
                Ended::of(status),
                Ended::Job {
                    verdict: Verdict::ExecFailed,
                    ..
                }
            );
            if !exec_failed {
                return Err(child_failure("nonaim_exit", status, expected));
            }
            if !pause_before_retry(attempt, retried) {
                return Err(Failure::NoResources(String::from("exec of nonaim_exit")));
            }
            attempt += 1;
        }
    }
    Ok(())
}

/// The message id of pipe_test's requests (its replies: 100 more, as MIG's).
const PIPE_REQUEST: u32 = 7300;
/// pipe_test: 200 round trips of 64 bytes with a forked child over ports. The parent's port
/// is the pipe: the child inherits a send right to it (fork keeps send rights under their
/// names) and calls it with each request and a reply right to a port of its own; the parent
/// checks each request and answers. The parent gave its own send right away, so when the
/// child is gone, for whatever reason, the port's no-senders notification ends the parent's
/// wait; a parent that dies destroys the child's reply right, which ends the child's.
fn pipe_test(seed: u32, retried: &mut u32) -> Done {
    let pipe = ReceiveRight::allocate().map_err(short("a port"))?;
    let send = pipe.make_send().map_err(short("a send right"))?;
    sys::port_request_notification(pipe.name(), notify::NO_SENDERS, pipe.name())
        .map_err(short("the no-senders notification"))?;
    let child = match fork_retrying(retried).map_err(short("fork"))? {
        Fork::Child => process::exit(pipe_child(seed, send.name())),
        Fork::Parent(task) => task,
    };
    drop(send);
    let mut buffer = alloc::boxed::Box::new(MessageBuffer::new());
    let (mut rounds, mut wrong) = (0u32, None);
    let mut reply: Option<u32> = None;
    let mut answer = [0u8; PIPE_BYTES];
    loop {
        let message = reply.map(|to| {
            OutMessage::new(PIPE_REQUEST + 100, to)
                .to(to, Disposition::MoveSendOnce)
                .with_body(&answer)
        });
        let request = match ipc::reply_and_receive(message.as_ref(), pipe.name(), &mut buffer) {
            Ok(request) => request,
            Err(e) => {
                wrong = Some(format!("receiving from the pipe: {e:?}"));
                break;
            }
        };
        if request.id() == notify::NO_SENDERS {
            break;
        }
        let expected = pipe_bytes(seed, rounds, 0);
        let Some((to, _)) = request.reply() else {
            wrong = Some(format!("request {rounds} has no reply right"));
            break;
        };
        if request.id() != PIPE_REQUEST || request.body.get(..PIPE_BYTES) != Some(&expected[..]) {
            wrong = Some(format!("request {rounds} is not what the child sent"));
            let _ = sys::port_deallocate(to);
            break;
        }
        answer = pipe_bytes(seed, rounds, 1);
        reply = Some(to);
        rounds += 1;
    }
    // Dropping the pipe (and any right held) ends a child still waiting.
    drop(pipe);
    let status = wait(&child)?;
    if status == ENDED_BY_THE_KERNEL {
        return Err(child_failure("the pipe's child", status, 0));
    }
    if let Some(why) = wrong {
        return Err(Failure::Wrong(why));
    }
    match Ended::of(status) {
        Ended::Job {
            verdict: Verdict::Passed,
            ..
        } if rounds == PIPE_ROUND_TRIPS => Ok(()),
        Ended::Job {
            verdict: Verdict::NoResources,
            ..
        } => Err(Failure::NoResources(String::from(
            "the pipe's child had no port",
        ))),
        _ => Err(Failure::Wrong(format!(
            "{rounds} round trips, the child exited with {status}"
        ))),
    }
}

/// The child's side of pipe_test: its exit status.
fn pipe_child(seed: u32, pipe: u32) -> i32 {
    let Ok(reply) = ReceiveRight::allocate() else {
        return Verdict::NoResources.status(0);
    };
    let mut buffer = alloc::boxed::Box::new(MessageBuffer::new());
    for round in 0..PIPE_ROUND_TRIPS {
        let request = pipe_bytes(seed, round, 0);
        let message = OutMessage::new(PIPE_REQUEST, pipe)
            .reply_to(reply.name())
            .with_body(&request);
        match ipc::call(&message, reply.name(), &mut buffer, None) {
            Ok(answer)
                if answer.id() == PIPE_REQUEST + 100
                    && answer.body.get(..PIPE_BYTES) == Some(&pipe_bytes(seed, round, 1)[..]) => {}
            _ => return Verdict::Wrong.status(0),
        }
    }
    Verdict::Passed.status(0)
}

/// shm_test: 64 KiB inherited shared by a child, 4 times: each child writes every word, the
/// parent reads every word after the child's exit.
fn shm_test(seed: u32, retried: &mut u32) -> Done {
    const BYTES: u64 = SHM_BYTES;
    let base = sys::vm_allocate(0, BYTES, VM_ANYWHERE).map_err(short("vm_allocate 64 KiB"))?;
    sys::vm_inherit(base, BYTES, VM_INHERIT_SHARE)
        .map_err(|e| Failure::Wrong(format!("vm_inherit share: {e}")))?;
    for round in 0..SHM_ROUNDS {
        let child = match fork_retrying(retried).map_err(short("fork"))? {
            Fork::Child => {
                for index in 0..BYTES / 8 {
                    write_word(base + index * 8, shared_word(seed, round, index));
                }
                process::exit(0)
            }
            Fork::Parent(task) => task,
        };
        let status = wait(&child)?;
        if status != 0 {
            return Err(child_failure("the writing child", status, 0));
        }
        for index in 0..BYTES / 8 {
            let found = read_word(base + index * 8);
            if found != shared_word(seed, round, index) {
                return Err(Failure::Wrong(format!(
                    "round {round}: word {index} holds {found:#x}, not the child's"
                )));
            }
        }
    }
    free(base, BYTES).map_err(|e| Failure::Wrong(format!("vm_deallocate of the 64 KiB: {e}")))
}

/// A file request's failure: the server's lack of resources or a broken connection are
/// resources; any other refusal is wrong (the requests are valid).
fn file_failure(what: &'static str) -> impl Fn(RemoteError<FileError>) -> Failure {
    move |error| match error {
        RemoteError::Server(FileError::NoResources) | RemoteError::Transport(_) => {
            Failure::NoResources(format!("{what}: {error:?}"))
        }
        error => Failure::Wrong(format!("{what}: {error:?}")),
    }
}

/// file_test: the boot archive's pattern file opened through bootfs (`files` names the send
/// right to it this task inherited), its size checked, and 256 KiB from a page its seed picks
/// read in 4 KiB reads, every byte checked against the pattern.
fn file_test(seed: u32, files: u32) -> Done {
    if files == 0 {
        return Err(Failure::Wrong(String::from("no file server was passed")));
    }
    let mut server = file_server::Client::new(SendRight::from_raw(files));
    let opened = server.open(nonaim::DATA_FILE.into());
    // The right is the user process's too: this task keeps its name until it exits.
    let _ = server.into_transport().into_server().into_raw();
    let opened = opened.map_err(|e| match file_failure("open")(e) {
        Failure::Wrong(why) => Failure::Wrong(format!("{why} (name {:?})", nonaim::DATA_FILE)),
        short => short,
    })?;
    let mut data = file::Client::new(opened);
    let size = data.size().map_err(file_failure("size"))?;
    if size != nonaim::DATA_FILE_BYTES {
        return Err(Failure::Wrong(format!(
            "{} is {size} bytes, not {}",
            nonaim::DATA_FILE,
            nonaim::DATA_FILE_BYTES
        )));
    }
    let start = file_test_start(seed, size);
    for offset in (start..start + nonaim::FILE_TEST_BYTES).step_by(MAX_READ as usize) {
        let bytes = data
            .read(offset, MAX_READ)
            .map_err(file_failure("read"))?
            .into_vec();
        if bytes.len() != MAX_READ as usize {
            return Err(Failure::Wrong(format!(
                "read at {offset}: {} bytes",
                bytes.len()
            )));
        }
        if let Some(at) = pattern_mismatch(offset, &bytes) {
            return Err(Failure::Wrong(wrong_read(offset, &bytes, at)));
        }
    }
    Ok(())
}

/// What is wrong with `bytes`, read from `offset` of the pattern file and first wrong at
/// `at`: where, how much, what was found, and where the bytes lie in this task's memory (a
/// run that starts or ends at a page boundary there points at paging, not at the file).
fn wrong_read(offset: u64, bytes: &[u8], at: usize) -> String {
    use libipc::abi::archive::pattern_byte;
    let wrong: alloc::vec::Vec<usize> = (at..bytes.len())
        .filter(|&i| bytes[i] != pattern_byte(offset + i as u64))
        .collect();
    let last = wrong.last().copied().unwrap_or(at);
    let found = &bytes[at..bytes.len().min(at + 8)];
    // The bytes of the read before, in the same places: the reply never reached the
    // receive buffer, which still held the last one.
    let stale = offset >= u64::from(MAX_READ)
        && wrong
            .iter()
            .all(|&i| bytes[i] == pattern_byte(offset - u64::from(MAX_READ) + i as u64));
    format!(
        "read at {offset}: {} wrong bytes from {at} to {last} (found {found:02x?}, expected \
         {:02x?}{}); the read lies at {:#x} in memory",
        wrong.len(),
        (at..bytes.len().min(at + 8))
            .map(|i| pattern_byte(offset + i as u64))
            .collect::<alloc::vec::Vec<u8>>(),
        if stale {
            ": the previous read's bytes"
        } else {
            ""
        },
        bytes.as_ptr() as u64
    )
}

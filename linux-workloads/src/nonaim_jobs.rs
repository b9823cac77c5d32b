//! NONAIM's job program on Linux: `/init nonaim-job WORD` (a user process's child execs it for
//! every job, the word being `nonaim::mix::JobArgument`'s), and `/init nonaim-exit ARGUMENT`
//! (what exec_test's children exec). The compute jobs are `nonaim::compute`, the same code as
//! the guest's; the system jobs do what `servers/nonaim_job`'s do with Linux's calls (mmap,
//! brk, fork, exec, pipes, a shared mapping, read), writing and checking the same data
//! (`nonaim::jobdata`).

use std::ffi::CString;
use std::fs::File;
use std::io::Read;

use linux_workloads::job_status;

use crate::system::{map_anonymous, Sharing};
use nonaim::jobdata::{
    exec_argument, file_test_start, fork_child_status, page_test_offset,
    page_test_untouched_offset, page_word, pipe_bytes, shared_word, BRK_TEST_BYTES,
    EXEC_TEST_CHILDREN, FILE_READ_BYTES, FORK_TEST_CHILDREN, PAGE, PAGE_TEST_BYTES, PIPE_BYTES,
    PIPE_ROUND_TRIPS, SHM_BYTES, SHM_ROUNDS,
};
use nonaim::mix::{exit_status_for, retry_pause_ms, Job, JobArgument, Verdict, MAX_ATTEMPTS};

/// The program every job execs: this one (`/init` in the guest; any path on a host test).
pub const PROGRAM: &str = "/proc/self/exe";
/// Its first argument for a job.
pub const JOB: &str = "nonaim-job";
/// Its first argument for exec_test's child.
pub const EXIT: &str = "nonaim-exit";
/// Names the directory of file_test's pattern file in place of `/` (host tests).
pub const DATA_DIR_VARIABLE: &str = "NONAIM_DATA_DIR";

/// Where file_test's pattern file is: the initramfs's root holds the boot archive's data
/// files.
pub fn data_file() -> String {
    let dir = std::env::var(DATA_DIR_VARIABLE).unwrap_or_default();
    format!("{dir}/{}", nonaim::DATA_FILE)
}

/// The time-stamp counter: guest instructions under QEMU's `-icount shift=0`.
pub fn timestamp() -> u64 {
    // SAFETY: rdtsc only reads the counter (Linux leaves it readable in user mode).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Why a job did not pass.
enum Failure {
    Wrong(String),
    NoResources(String),
}

type Done = Result<(), Failure>;

fn os_error(what: &str) -> Failure {
    Failure::NoResources(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Killed(i32),
}

/// Waits for child `pid`.
pub fn wait_for(pid: libc::pid_t) -> Result<ChildEnd, String> {
    let mut status = 0;
    loop {
        // SAFETY: `pid` is a child of this process not yet waited for; `status` is valid.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid: {error}"));
        }
    }
    Ok(if libc::WIFEXITED(status) {
        ChildEnd::Exited(libc::WEXITSTATUS(status))
    } else {
        ChildEnd::Killed(libc::WTERMSIG(status))
    })
}

/// Pauses after failed attempt `attempt` (from 0), counting the retry; `false` when the
/// attempts are used up (as the guest's `nonaim::guest::pause_before_retry`).
pub fn pause_before_retry(attempt: u32, retried: &mut u32) -> bool {
    if attempt + 1 >= MAX_ATTEMPTS {
        return false;
    }
    *retried += 1;
    std::thread::sleep(std::time::Duration::from_millis(retry_pause_ms(attempt)));
    true
}

/// `fork`, tried again after a pause when it fails: `Ok(0)` in the child, the child's pid in
/// the parent.
pub fn fork_retrying(retried: &mut u32) -> Result<libc::pid_t, std::io::Error> {
    let mut attempt = 0;
    loop {
        // SAFETY: the callers are single-threaded; the child runs only this program's code
        // and leaves with `_exit` or `exec`.
        match unsafe { libc::fork() } {
            -1 => {
                let error = std::io::Error::last_os_error();
                if !pause_before_retry(attempt, retried) {
                    return Err(error);
                }
                attempt += 1;
            }
            pid => return Ok(pid),
        }
    }
}

/// Ends this process at once with `status` (a forked child: none of the parent's exit
/// handlers run, nothing buffered is written twice).
pub fn exit_now(status: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(status) }
}

/// `execv(PROGRAM, ["/init", first, second])`; returns only if it failed.
pub fn exec_self(first: &str, second: &str) -> std::io::Error {
    let strings = [PROGRAM, "/init", first, second].map(|s| CString::new(s).expect("no NUL"));
    let argv = [
        strings[1].as_ptr(),
        strings[2].as_ptr(),
        strings[3].as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: the path and the NULL-terminated argument list are valid C strings that
    // outlive the call.
    unsafe { libc::execv(strings[0].as_ptr(), argv.as_ptr()) };
    std::io::Error::last_os_error()
}

/// `/init nonaim-exit ARGUMENT`: the status exec_test expects.
pub fn exit_program(argument: &str) -> i32 {
    match argument.parse::<u64>() {
        Ok(argument) => exit_status_for(argument),
        Err(_) => 255,
    }
}

/// `/init nonaim-job WORD`: runs the job and returns its exit status.
pub fn job_program(word: &str) -> i32 {
    let argument = match word.parse::<u64>().ok().map(JobArgument::decode) {
        Some(Ok(argument)) => argument,
        _ => {
            println!("nonaim_job: bad argument {word}");
            return job_status::encode(Verdict::BadArgument, 0);
        }
    };
    let (job, seed) = (argument.job, argument.seed);
    let before = timestamp();
    let mut retried = 0;
    let done = match nonaim::compute::run(job, seed) {
        Some(Ok(_)) => Ok(()),
        Some(Err(nonaim::compute::Wrong(what))) => Err(Failure::Wrong(what.to_string())),
        None => system_job(job, seed, &mut retried),
    };
    let work = timestamp() - before;
    let verdict = match done {
        Ok(()) => Verdict::Passed,
        Err(Failure::Wrong(why)) => {
            println!("nonaim_job: {job}: WRONG RESULT: {why} (seed {seed})");
            Verdict::Wrong
        }
        Err(Failure::NoResources(why)) => {
            println!("nonaim_job: {job}: out of resources: {why}");
            Verdict::NoResources
        }
    };
    if argument.measure {
        println!("nonaim: job {job} work {work} instructions ({verdict:?})");
        println!("bench nonaim.work.{job} {work} instructions");
    }
    job_status::encode(verdict, retried)
}

fn system_job(job: Job, seed: u32, retried: &mut u32) -> Done {
    match job {
        Job::PageTest => page_test(seed),
        Job::BrkTest => brk_test(seed),
        Job::ForkTest => fork_test(seed, retried),
        Job::ExecTest => exec_test(seed, retried),
        Job::PipeTest => pipe_test(seed, retried),
        Job::ShmTest => shm_test(seed, retried),
        Job::FileTest => file_test(seed),
        job => Err(Failure::Wrong(format!("{job} is not a system job"))),
    }
}

/// A fresh anonymous mapping of `bytes`, private or shared.
fn map(bytes: u64, sharing: Sharing) -> Result<u64, Failure> {
    map_anonymous(bytes as usize, sharing)
        .map(|base| base as u64)
        .map_err(|e| Failure::NoResources(format!("mmap: {e}")))
}

fn unmap(base: u64, bytes: u64) -> Done {
    // SAFETY: callers pass a mapping of their own, reached only through `write_word` and
    // `read_word` with addresses; nothing refers to it after this.
    if unsafe { libc::munmap(base as *mut libc::c_void, bytes as usize) } != 0 {
        return Err(Failure::Wrong(format!(
            "munmap: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn write_word(address: u64, value: u64) {
    // Volatile: the store is the work (it faults the page in), never to be left out.
    // SAFETY: callers pass an 8-byte-aligned address inside memory they mapped read-write.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

fn read_word(address: u64) -> u64 {
    // SAFETY: as for `write_word`.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// page_test: 1 MiB mapped, a word written in every page, all read back, an untouched word
/// checked to be zero, unmapped.
fn page_test(seed: u32) -> Done {
    let base = map(PAGE_TEST_BYTES, Sharing::Private)?;
    let pages = PAGE_TEST_BYTES / PAGE;
    for page in 0..pages {
        write_word(
            base + page * PAGE + page_test_offset(page),
            page_word(seed, page),
        );
    }
    for page in 0..pages {
        let found = read_word(base + page * PAGE + page_test_offset(page));
        if found != page_word(seed, page) {
            return Err(Failure::Wrong(format!("page {page} holds {found:#x}")));
        }
        if read_word(base + page * PAGE + page_test_untouched_offset(page)) != 0 {
            return Err(Failure::Wrong(format!(
                "page {page}: a word never written is not 0"
            )));
        }
    }
    unmap(base, PAGE_TEST_BYTES)
}

/// brk_test: the break grown by 256 KiB a page at a time with `sbrk` (each page written),
/// all of it checked, then shrunk a page at a time, the page below checked each time.
fn brk_test(seed: u32) -> Done {
    let steps = BRK_TEST_BYTES / PAGE;
    // SAFETY: sbrk(0) only reads the break.
    let start = unsafe { libc::sbrk(0) } as u64;
    // The break need not be page-aligned: the pages start at the next boundary.
    let base = start.next_multiple_of(PAGE);
    // SAFETY: grows the break to the boundary; this job's memory, which no allocation uses
    // (none happens until the break is back where it was, but on the failure paths).
    if base != start && unsafe { libc::sbrk((base - start) as libc::intptr_t) } as isize == -1 {
        return Err(os_error("sbrk to a page boundary"));
    }
    for step in 0..steps {
        // SAFETY: as above: a page more of this job's break.
        if unsafe { libc::sbrk(PAGE as libc::intptr_t) } as isize == -1 {
            return Err(os_error("growing the break"));
        }
        let page = base + step * PAGE;
        write_word(page, page_word(seed, step));
        write_word(page + PAGE - 8, !page_word(seed, step));
    }
    let check = |step: u64| {
        let page = base + step * PAGE;
        let (first, last) = (read_word(page), read_word(page + PAGE - 8));
        if first != page_word(seed, step) || last != !page_word(seed, step) {
            return Err(Failure::Wrong(format!(
                "page {step} of the break holds {first:#x}"
            )));
        }
        Ok(())
    };
    for step in 0..steps {
        check(step)?;
    }
    for step in (0..steps).rev() {
        // SAFETY: gives back the top page of what this job grew; nothing refers to it.
        if unsafe { libc::sbrk(-(PAGE as libc::intptr_t)) } as isize == -1 {
            return Err(Failure::Wrong(format!(
                "shrinking the break at step {step}: {}",
                std::io::Error::last_os_error()
            )));
        }
        if step > 0 {
            check(step - 1)?;
        }
    }
    // SAFETY: sbrk(0) only reads the break.
    let end = unsafe { libc::sbrk(0) } as u64;
    if end != base {
        return Err(Failure::Wrong(format!(
            "the break is at {end:#x} after shrinking, not {base:#x}"
        )));
    }
    Ok(())
}

/// The failure of a child that ended with `end` where status `expected` was due: killed (the
/// OOM killer) is a lack of resources, anything else a wrong result.
fn child_failure(what: &str, end: ChildEnd, expected: i32) -> Failure {
    match end {
        ChildEnd::Killed(signal) => {
            Failure::NoResources(format!("{what} was killed by signal {signal}"))
        }
        ChildEnd::Exited(status) => {
            Failure::Wrong(format!("{what} exited with {status}, not {expected}"))
        }
    }
}

fn fork_or_fail(retried: &mut u32) -> Result<libc::pid_t, Failure> {
    fork_retrying(retried).map_err(|e| Failure::NoResources(format!("fork: {e}")))
}

fn wait_or_fail(pid: libc::pid_t) -> Result<ChildEnd, Failure> {
    wait_for(pid).map_err(Failure::Wrong)
}

/// fork_test: 20 children, each exiting at once with its own status, each waited for.
fn fork_test(seed: u32, retried: &mut u32) -> Done {
    for child in 0..FORK_TEST_CHILDREN {
        let expected = fork_child_status(seed, child) as i32;
        match fork_or_fail(retried)? {
            0 => exit_now(expected),
            pid => {
                let end = wait_or_fail(pid)?;
                if end != ChildEnd::Exited(expected) {
                    return Err(child_failure("a forked child", end, expected));
                }
            }
        }
    }
    Ok(())
}

/// exec_test: 5 children, each exec'ing `/init nonaim-exit ARGUMENT`, which exits with the
/// status its argument gives; an exec that fails is retried after a pause.
fn exec_test(seed: u32, retried: &mut u32) -> Done {
    for child in 0..EXEC_TEST_CHILDREN {
        let argument = exec_argument(seed, child);
        let expected = exit_status_for(argument);
        let mut attempt = 0;
        loop {
            let end = match fork_or_fail(retried)? {
                0 => {
                    exec_self(EXIT, &argument.to_string());
                    exit_now(job_status::encode(Verdict::ExecFailed, 0))
                }
                pid => wait_or_fail(pid)?,
            };
            if end == ChildEnd::Exited(expected) {
                break;
            }
            if end != ChildEnd::Exited(job_status::encode(Verdict::ExecFailed, 0)) {
                return Err(child_failure("nonaim-exit", end, expected));
            }
            if !pause_before_retry(attempt, retried) {
                return Err(Failure::NoResources("exec of nonaim-exit".to_string()));
            }
            attempt += 1;
        }
    }
    Ok(())
}

/// A pipe: its read and write ends.
fn pipe() -> Result<[libc::c_int; 2], Failure> {
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors.
    if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
        return Err(os_error("pipe"));
    }
    Ok(ends)
}

fn close(fd: libc::c_int) {
    // SAFETY: closes a descriptor this process opened and uses no more.
    unsafe { libc::close(fd) };
}

/// Reads exactly `buffer.len()` bytes; `false` at end of file or on an error.
fn read_exactly(fd: libc::c_int, buffer: &mut [u8]) -> bool {
    let mut at = 0;
    while at < buffer.len() {
        // SAFETY: the pointer and length describe the unfilled part of `buffer`.
        let n = unsafe {
            libc::read(
                fd,
                buffer[at..].as_mut_ptr() as *mut libc::c_void,
                buffer.len() - at,
            )
        };
        if n <= 0 {
            return false;
        }
        at += n as usize;
    }
    true
}

fn write_all(fd: libc::c_int, bytes: &[u8]) -> bool {
    let mut at = 0;
    while at < bytes.len() {
        // SAFETY: the pointer and length describe the unwritten part of `bytes`.
        let n = unsafe {
            libc::write(
                fd,
                bytes[at..].as_ptr() as *const libc::c_void,
                bytes.len() - at,
            )
        };
        if n <= 0 {
            return false;
        }
        at += n as usize;
    }
    true
}

/// pipe_test: 200 round trips of 64 bytes with a forked child over two pipes: the child
/// writes each request, the parent checks it and writes the answer, which the child checks.
fn pipe_test(seed: u32, retried: &mut u32) -> Done {
    let requests = pipe()?;
    let answers = pipe()?;
    let pid = match fork_or_fail(retried) {
        Ok(pid) => pid,
        Err(failure) => {
            requests.into_iter().chain(answers).for_each(close);
            return Err(failure);
        }
    };
    if pid == 0 {
        close(requests[0]);
        close(answers[1]);
        let mut answer = [0u8; PIPE_BYTES];
        for round in 0..PIPE_ROUND_TRIPS {
            if !write_all(requests[1], &pipe_bytes(seed, round, 0))
                || !read_exactly(answers[0], &mut answer)
                || answer != pipe_bytes(seed, round, 1)
            {
                exit_now(job_status::encode(Verdict::Wrong, 0));
            }
        }
        exit_now(0);
    }
    close(requests[1]);
    close(answers[0]);
    let (mut rounds, mut wrong) = (0u32, None);
    let mut request = [0u8; PIPE_BYTES];
    while rounds < PIPE_ROUND_TRIPS {
        if !read_exactly(requests[0], &mut request) {
            wrong = Some(format!("the pipe ended after {rounds} round trips"));
            break;
        }
        if request != pipe_bytes(seed, rounds, 0) {
            wrong = Some(format!("request {rounds} is not what the child sent"));
            break;
        }
        if !write_all(answers[1], &pipe_bytes(seed, rounds, 1)) {
            wrong = Some(format!("answering request {rounds}"));
            break;
        }
        rounds += 1;
    }
    // Closing ends a child still waiting.
    close(requests[0]);
    close(answers[1]);
    let end = wait_or_fail(pid)?;
    if let ChildEnd::Killed(_) = end {
        return Err(child_failure("the pipe's child", end, 0));
    }
    if let Some(why) = wrong {
        return Err(Failure::Wrong(why));
    }
    if end != ChildEnd::Exited(0) {
        return Err(child_failure("the pipe's child", end, 0));
    }
    Ok(())
}

/// shm_test: 64 KiB of a shared mapping written by a child, 4 times; the parent reads every
/// word after each child's exit.
fn shm_test(seed: u32, retried: &mut u32) -> Done {
    let base = map(SHM_BYTES, Sharing::Shared)?;
    for round in 0..SHM_ROUNDS {
        let pid = fork_or_fail(retried)?;
        if pid == 0 {
            for index in 0..SHM_BYTES / 8 {
                write_word(base + index * 8, shared_word(seed, round, index));
            }
            exit_now(0);
        }
        let end = wait_or_fail(pid)?;
        if end != ChildEnd::Exited(0) {
            return Err(child_failure("the writing child", end, 0));
        }
        for index in 0..SHM_BYTES / 8 {
            let found = read_word(base + index * 8);
            if found != shared_word(seed, round, index) {
                return Err(Failure::Wrong(format!(
                    "round {round}: word {index} holds {found:#x}, not the child's"
                )));
            }
        }
    }
    unmap(base, SHM_BYTES)
}

/// file_test: the pattern file opened, its size checked, 256 KiB from a place its seed
/// picks read in 4 KiB reads, every byte checked against the pattern.
fn file_test(seed: u32) -> Done {
    let path = data_file();
    let mut file = File::open(&path).map_err(|e| Failure::Wrong(format!("opening {path}: {e}")))?;
    let size = file
        .metadata()
        .map_err(|e| Failure::Wrong(format!("the size of {path}: {e}")))?
        .len();
    if size != nonaim::DATA_FILE_BYTES {
        return Err(Failure::Wrong(format!(
            "{path} is {size} bytes, not {}",
            nonaim::DATA_FILE_BYTES
        )));
    }
    let start = file_test_start(seed, size);
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(start))
        .map_err(|e| Failure::Wrong(format!("seeking {path}: {e}")))?;
    let mut bytes = [0u8; FILE_READ_BYTES as usize];
    for offset in (start..start + nonaim::FILE_TEST_BYTES).step_by(FILE_READ_BYTES as usize) {
        file.read_exact(&mut bytes)
            .map_err(|e| Failure::Wrong(format!("read at {offset}: {e}")))?;
        if let Some(at) = libipc::abi::archive::pattern_mismatch(offset, &bytes) {
            return Err(Failure::Wrong(format!(
                "read at {offset}: byte {at} is {:#04x}, not {:#04x}",
                bytes[at],
                libipc::abi::archive::pattern_byte(offset + at as u64)
            )));
        }
    }
    Ok(())
}

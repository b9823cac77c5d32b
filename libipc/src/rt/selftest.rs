//! In-guest test suites: runs named cases and reports them in the guest report protocol
//! (`ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`), and the
//! helpers that run a suite, or any work, with a default pager started for it.

use alloc::string::String;

/// One case: `Err` says what went wrong.
pub type Case = fn() -> Result<(), String>;

/// Runs every case in order, printing a line for each and the summary; returns the number
/// that failed (the program's exit status).
pub fn run(cases: &[(&str, Case)]) -> i32 {
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        match case() {
            Ok(()) => {
                crate::println!("ktest {name} ok");
                passed += 1;
            }
            Err(why) => {
                crate::println!("ktest {name} FAILED: {why}");
                failed += 1;
            }
        }
    }
    #[cfg(target_os = "none")]
    report_calls_without_messages();
    crate::println!("{passed} passed, {failed} failed");
    failed
}

/// Says how the kernel reached collocated servers during the suite (tests check that a
/// collocated pager was called without messages, and that one run as a task was not).
#[cfg(target_os = "none")]
fn report_calls_without_messages() {
    use crate::abi::syscall::{
        HOST_DIRECT_DEVICE_CALLS, HOST_DIRECT_PAGER_CALLS, HOST_SHORT_CIRCUITS,
    };
    let count = |selector| crate::sys::host_info(selector).unwrap_or(0);
    crate::println!(
        "selftest: without messages: {} calls short-circuited, {} memory-object calls, {} \
         device transfers",
        count(HOST_SHORT_CIRCUITS),
        count(HOST_DIRECT_PAGER_CALLS),
        count(HOST_DIRECT_DEVICE_CALLS)
    );
}

/// Runs `cases` (as [`run`] does) with a pager the suite needs: starts boot-archive program
/// `program`, which registers its port under `name` with the name service it is given (see
/// [`spawn_registered`](crate::names::spawn_registered)), makes it the kernel's pager with
/// `set(host, port)` (`sys::host_set_default_pager` or `sys::host_set_program_pager`; `host`
/// is the host port, which a first task gets), and ends it after the cases (pagers serve for
/// good). Reports a failure to start it and returns 1.
#[cfg(target_os = "none")]
pub fn run_with_pager(
    host: u32,
    program: &str,
    name: &str,
    set: SetPager,
    cases: &[(&str, Case)],
) -> i32 {
    with_pager(host, program, name, set, || run(cases))
}

/// Runs `work` (its result is the exit status) with pager `program` started and made the
/// kernel's pager as [`run_with_pager`] does, and ends the pager afterwards. Reports a
/// failure to start it and returns 1 without running `work`.
#[cfg(target_os = "none")]
pub fn with_pager(
    host: u32,
    program: &str,
    name: &str,
    set: SetPager,
    work: impl FnOnce() -> i32,
) -> i32 {
    with_pager_port(host, program, name, set, |_| work())
}

/// [`with_pager`], giving `work` a send right to the pager's port (bootfs's, say, which
/// serves the file interface too).
#[cfg(target_os = "none")]
pub fn with_pager_port(
    host: u32,
    program: &str,
    name: &str,
    set: SetPager,
    work: impl FnOnce(&crate::ipc::SendRight) -> i32,
) -> i32 {
    let Some((pager, port)) = start_pager(host, program, name, &[], 0, set) else {
        return 1;
    };
    let status = work(&port);
    let _ = pager.terminate();
    status
}

/// A function that makes a port a kernel pager of some kind through the host port
/// (`sys::host_set_default_pager`, `host_set_program_pager`, `host_set_backing_store`).
#[cfg(target_os = "none")]
type SetPager = fn(u32, u32) -> Result<(), crate::abi::KernReturn>;

/// Starts boot-archive program `program` (its second start argument `argument`), answers
/// its lookups of the names in `answers`, waits for it to register under `name`, and makes
/// its port the kernel's with `set(host, port)`. `None` (said on the console, the program
/// ended) if a step fails.
#[cfg(target_os = "none")]
fn start_pager(
    host: u32,
    program: &str,
    name: &str,
    answers: &[(&str, &crate::ipc::SendRight)],
    argument: u64,
    set: SetPager,
) -> Option<(crate::ipc::Task, crate::ipc::SendRight)> {
    let started = crate::names::spawn_registered_answering(program, name, 5000, answers, argument);
    let (pager, port) = match started {
        Ok(started) => started,
        Err(e) => {
            crate::println!("selftest: starting {program}: {e}");
            return None;
        }
    };
    if let Err(e) = set(host, port.name()) {
        crate::println!("selftest: making {program} the kernel's {name}: {e}");
        let _ = pager.terminate();
        return None;
    }
    Some((pager, port))
}

/// The port of the pager [`run_with_disk_pager`] started (0 before), for cases that ask it
/// for its counters.
#[cfg(target_os = "none")]
static PAGER: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The task port of the pager [`run_with_disk_pager`] started (0 before).
#[cfg(target_os = "none")]
static PAGER_TASK: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The default pager's task port while [`run_with_disk_pager`] runs its cases (a case may
/// check that the kernel refuses to swap it out).
#[cfg(target_os = "none")]
pub fn pager_task() -> Option<crate::ipc::Name> {
    Some(PAGER_TASK.load(core::sync::atomic::Ordering::Relaxed)).filter(|&n| n != 0)
}

/// The default pager's port while [`run_with_disk_pager`] runs its cases.
#[cfg(target_os = "none")]
pub fn pager_port() -> Option<crate::ipc::Name> {
    Some(PAGER.load(core::sync::atomic::Ordering::Relaxed)).filter(|&n| n != 0)
}

/// Runs `cases` with the disk default pager (`default_pager`) as the kernel's default
/// pager: started with the device master port (from `host`, the host port a first task
/// gets) answered to its lookup, ended after the cases. Reports a failure to start it and
/// returns 1.
#[cfg(target_os = "none")]
pub fn run_with_disk_pager(host: u32, cases: &[(&str, Case)]) -> i32 {
    with_disk_pager(host, || run(cases))
}

/// Runs `work` (its result is the exit status) with the disk default pager started and made
/// the kernel's default pager as [`run_with_disk_pager`] does ([`pager_port`] is its port
/// meanwhile), and ends the pager afterwards. Reports a failure to start it and returns 1
/// without running `work`.
#[cfg(target_os = "none")]
pub fn with_disk_pager(host: u32, work: impl FnOnce() -> i32) -> i32 {
    use crate::device::DEVICE_MASTER_NAME;
    use crate::pager::DEFAULT_PAGER_NAME;
    let Some(master) = device_master(host) else {
        return 1;
    };
    let answers = [(DEVICE_MASTER_NAME, &master)];
    let set = crate::sys::host_set_default_pager;
    let Some((pager, port)) =
        start_pager(host, "default_pager", DEFAULT_PAGER_NAME, &answers, 0, set)
    else {
        return 1;
    };
    PAGER.store(port.name(), core::sync::atomic::Ordering::Relaxed);
    PAGER_TASK.store(pager.port().name(), core::sync::atomic::Ordering::Relaxed);
    let status = work();
    let _ = pager.terminate();
    status
}

/// Runs `cases` with zpager (a budget of `cache_bytes`) stacked in front of the disk pager
/// as a compressed cache: `default_pager` started as the backing store, zpager as the
/// kernel's default pager sending it what it cannot keep. [`pager_port`] is the disk
/// pager's port. Reports a failure to start them and returns 1.
#[cfg(target_os = "none")]
pub fn run_with_stacked_pagers(host: u32, cache_bytes: u64, cases: &[(&str, Case)]) -> i32 {
    use crate::device::DEVICE_MASTER_NAME;
    use crate::pager::{BACKING_STORE_NAME, DEFAULT_PAGER_NAME, STACKED};
    use crate::sys::{host_set_backing_store, host_set_default_pager};
    let Some(master) = device_master(host) else {
        return 1;
    };
    let answers = [(DEVICE_MASTER_NAME, &master)];
    let Some((disk, disk_port)) = start_pager(
        host,
        "default_pager",
        BACKING_STORE_NAME,
        &answers,
        1,
        host_set_backing_store,
    ) else {
        return 1;
    };
    let answers = [(BACKING_STORE_NAME, &disk_port)];
    let argument = cache_bytes | STACKED;
    let Some((cache, _)) = start_pager(
        host,
        "zpager",
        DEFAULT_PAGER_NAME,
        &answers,
        argument,
        host_set_default_pager,
    ) else {
        let _ = disk.terminate();
        return 1;
    };
    PAGER.store(disk_port.name(), core::sync::atomic::Ordering::Relaxed);
    let failed = run(cases);
    let _ = (cache.terminate(), disk.terminate());
    failed
}

/// Whether the kernel has a disk (the first one opens), as bootstrap decides it; `host` is the
/// host port. For workloads that pick the disk pager when there is one, else zpager.
#[cfg(target_os = "none")]
pub fn disk_present(host: u32) -> bool {
    use crate::device::{device_master, FIRST_DISK};
    crate::sys::host_device_master(host).is_ok_and(|master| {
        device_master::Client::new(crate::ipc::SendRight::from_raw(master))
            .open(FIRST_DISK.into())
            .is_ok()
    })
}

/// A send right to the device master port, from the host port (said on the console if not).
#[cfg(target_os = "none")]
fn device_master(host: u32) -> Option<crate::ipc::SendRight> {
    match crate::sys::host_device_master(host) {
        Ok(master) => Some(crate::ipc::SendRight::from_raw(master)),
        Err(e) => {
            crate::println!("selftest: no device master port: {e}");
            None
        }
    }
}

/// The counters of the disk pager the suite started ([`pager_port`]).
#[cfg(target_os = "none")]
pub fn backing_store_info() -> Result<crate::pager::BackingStoreInfo, String> {
    use crate::pager::backing_store;
    let port = pager_port().ok_or_else(|| String::from("no disk default pager"))?;
    // The suite's right, borrowed for the call and kept afterwards.
    let mut client = backing_store::Client::new(crate::ipc::SendRight::from_raw(port));
    let info = client
        .info()
        .map_err(|e| alloc::format!("backing_store.info: {e}"));
    let _ = client.into_transport().into_server().into_raw();
    info
}

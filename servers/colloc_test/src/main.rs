//! `colloc_test`: the same suite against the echo server collocated in the kernel (`echo`,
//! started by bootstrap) and as a task (`echo_task`, started here): answers at once, deferred
//! replies, rights passing, quotas, the server's identity in the task list, calls of a
//! second collocated server (`echo.peer`: direct calls from the collocated build, its failure
//! in one), and a server that fails (a panic; with the argument `fault`, the collocated server
//! faults instead). One `ktest colloc_<build>_<case> ok` / `FAILED: why` line per case, then `N passed,
//! M failed`; the exit status is the number of failures.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod suite {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    use echo::{service, EchoError};
    use libipc::interface::RemoteError;
    use libipc::ipc::{MessageBuffer, OutMessage, ReceiveRight, SendRight, Task};
    use libipc::{println, sys};

    type Echo = service::Client;
    type Result<T> = core::result::Result<T, String>;
    /// A case run against one server.
    type Case = fn(&mut Echo) -> Result<()>;

    fn remote<T>(what: &str, result: core::result::Result<T, RemoteError<EchoError>>) -> Result<T> {
        result.map_err(|e| format!("{what}: {e:?}"))
    }

    fn expect<T: PartialEq + core::fmt::Debug>(what: &str, got: T, want: T) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what}: got {got:?}, want {want:?}"))
        }
    }

    fn null(echo: &mut Echo) -> Result<()> {
        for _ in 0..100 {
            remote("null", echo.null())?;
        }
        Ok(())
    }

    fn short_circuits() -> Result<u64> {
        sys::host_info(libipc::abi::syscall::HOST_SHORT_CIRCUITS)
            .map_err(|e| format!("host_info: {e}"))
    }

    /// The null calls, counted: each call to the collocated server is short-circuited (the
    /// kernel calls the server at once), none to the task.
    fn null_counted(echo: &mut Echo, collocated: bool) -> Result<()> {
        let before = short_circuits()?;
        null(echo)?;
        let short = short_circuits()? - before;
        expect(
            "calls short-circuited",
            short,
            if collocated { 100 } else { 0 },
        )
    }

    fn echo_bytes(echo: &mut Echo) -> Result<()> {
        for len in [0usize, 1, 16, 100, 4000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let back = remote("echo", echo.echo(bytes.clone()))?;
            expect(&format!("{len} bytes back"), back, bytes)?;
        }
        Ok(())
    }

    /// Starts a copy of this program that calls `hold` on `server` (given to it as its first
    /// start argument) and exits with 0 when it is answered with place 0.
    fn held_child(server: &SendRight) -> Result<u32> {
        sys::task_spawn_with_args("colloc_test", server.name(), 0, "hold")
            .map_err(|e| format!("spawn: {e}"))
    }

    /// The child half of [`held_child`]: its exit status.
    pub fn hold(server: u32) -> i32 {
        match Echo::new(SendRight::from_raw(server)).hold() {
            Ok(0) => 0,
            Ok(_) => 2,
            Err(_) => 3,
        }
    }

    /// Releases until `count` held calls were answered (the children may not have called
    /// yet), for at most two seconds.
    fn release(echo: &mut Echo, count: u32) -> Result<()> {
        let mut released = 0;
        for _ in 0..200 {
            released += remote("release", echo.release())?;
            if released >= count {
                return expect("released", released, count);
            }
            libipc::rt::sleep_ms(10);
        }
        Err(format!("only {released} of {count} held calls came"))
    }

    fn deferred(echo: &mut Echo, server: &SendRight) -> Result<()> {
        let child = held_child(server)?;
        // The child's call waits: the server answers others meanwhile.
        libipc::rt::sleep_ms(20);
        remote("null while one is held", echo.null())?;
        release(echo, 1)?;
        expect("the held child's status", sys::task_wait(child), Ok(0))?;
        // A held client that dies: its answer goes nowhere, the server goes on.
        let doomed = held_child(server)?;
        libipc::rt::sleep_ms(20);
        sys::task_terminate(doomed).map_err(|e| format!("terminate: {e}"))?;
        let _ = sys::task_wait(doomed);
        release(echo, 1)?;
        remote("null after", echo.null())
    }

    fn rights(echo: &mut Echo) -> Result<()> {
        expect(
            "give before keep",
            echo.give().map(drop),
            Err(RemoteError::Server(EchoError::NothingKept)),
        )?;
        let port = ReceiveRight::allocate().map_err(|e| format!("port: {e}"))?;
        let send = port.make_send().map_err(|e| format!("send right: {e}"))?;
        remote("keep", echo.keep(&send))?;
        drop(send);
        let given: SendRight = remote("give", echo.give())?;
        let message =
            OutMessage::new(4242, 0).to(given.name(), libipc::abi::message::Disposition::CopySend);
        libipc::ipc::send_message(&message, Some(1000)).map_err(|e| format!("send: {e:?}"))?;
        let mut buffer = MessageBuffer::new();
        let received = libipc::ipc::receive(port.name(), &mut buffer, Some(1000))
            .map_err(|e| format!("receive: {e:?}"))?;
        expect("the message through the given right", received.id(), 4242)
    }

    /// Memory out of line, both ways: pages the server made and filled, and pages we give it.
    fn memory(echo: &mut Echo) -> Result<()> {
        const BYTES: u32 = 3 * 4096;
        let pages = remote("fill", echo.fill(BYTES, 7))?;
        expect("pages made", pages.len(), u64::from(BYTES))?;
        let wrong = pages.as_slice().iter().filter(|&&b| b != 7).count();
        expect("bytes that are not 7", wrong, 0)?;
        drop(pages);
        let mut ours =
            libipc::interface::Pages::allocate(2 * 4096).map_err(|e| format!("allocating: {e}"))?;
        for (i, byte) in ours.as_mut_slice().iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let want: u64 = (0..2 * 4096u64).map(|i| i % 251).sum();
        expect("the sum of our pages", remote("sum", echo.sum(ours))?, want)?;
        // Again, so the server's memory is used after it let the first pages go.
        let again = remote("fill", echo.fill(4096, 1))?;
        expect(
            "a page of ones",
            again.as_slice().iter().map(|&b| u64::from(b)).sum::<u64>(),
            4096,
        )
    }

    fn quota(echo: &mut Echo) -> Result<()> {
        const ASKED: u32 = 1_000_000;
        let made = remote("ports", echo.ports(ASKED))?;
        // A space holds 65,535 names: a stop well below that is the quota's (the test boots
        // with 32 MiB, a quota of 4 MiB).
        if made == 0 || made >= 60_000 {
            return Err(format!("made {made} of {ASKED} ports: no quota stopped it"));
        }
        // The server goes on, and so does everyone else.
        remote("null at the quota", echo.null())?;
        let mine = ReceiveRight::allocate().map_err(|e| format!("a port of ours: {e}"))?;
        drop(mine);
        expect(
            "ports dropped",
            remote("drop_ports", echo.drop_ports())?,
            made,
        )?;
        expect("ports made again", remote("ports", echo.ports(10))?, 10)?;
        expect(
            "dropped again",
            remote("drop_ports", echo.drop_ports())?,
            10,
        )?;
        println!("colloc_test: the quota stopped the server at {made} ports");
        Ok(())
    }

    /// The server's task is in the task list under `name`.
    fn identity(name: &str) -> Result<()> {
        let tasks = sys::host_tasks(256).map_err(|e| format!("host_tasks: {e}"))?;
        let found = tasks
            .iter()
            .any(|t| libipc::abi::swapper::name_str(&t.name) == name);
        expect(&format!("a task named {name}"), found, true)
    }

    fn crash_task(echo: &mut Echo, task: &Task) -> Result<()> {
        if echo.crash(false).is_ok() {
            return Err("crash answered".into());
        }
        expect(
            "the server's status",
            task.wait(),
            Ok(libipc::rt::PANIC_EXIT_STATUS as u64),
        )
    }

    /// The collocated server fails (`fault`: by a page fault, else a panic): its caller gets
    /// an error, the kernel goes on, and its port is dead.
    fn crash_collocated(echo: &mut Echo, fault: bool) -> Result<()> {
        if echo.crash(fault).is_ok() {
            return Err("crash answered".into());
        }
        if echo.null().is_ok() {
            return Err("the failed server still answers".into());
        }
        expect(
            "a task named echo after the failure",
            identity("echo").is_ok(),
            false,
        )
    }

    /// Bad device transfers without a message: refused one by one, and a task's refused as
    /// no call at all.
    fn device_refusals(echo: &mut Echo, collocated: bool) -> Result<()> {
        use libipc::abi::KernReturn::{self, *};
        let codes = remote("device_refusals", echo.device_refusals())?;
        let want: [KernReturn; 4] = match collocated {
            true => [InvalidName, InvalidName, InvalidName, InvalidArgument],
            false => [InvalidSyscall; 4],
        };
        expect(
            "the kernel's codes",
            codes,
            want.iter().map(|&code| code as u32).collect::<Vec<_>>(),
        )
    }

    fn direct_calls() -> Result<u64> {
        sys::host_info(libipc::abi::syscall::HOST_DIRECT_SERVER_CALLS)
            .map_err(|e| format!("host_info: {e}"))
    }

    /// The server calls the collocated peer (`echo.peer`) through its client stub: from the
    /// collocated build each plain call is a direct call of the peer's routine (counted by
    /// the kernel), from the task build a message. Collocated, a call whose reply the peer
    /// keeps is answered "no reply yet" (the caller never waits; the peer kept it: its
    /// `release` counts it), and a call of itself (running already) is not taken.
    fn peer(echo: &mut Echo, server: &SendRight, peer: &SendRight, collocated: bool) -> Result<()> {
        use echo::{PeerCall, PeerOutcome};
        let before = direct_calls()?;
        for call in [PeerCall::Null, PeerCall::Echo, PeerCall::Null] {
            let outcome = remote("call_peer", echo.call_peer(peer, call))?;
            expect(
                &format!("{call:?} on the peer"),
                outcome,
                PeerOutcome::Answered,
            )?;
        }
        let direct = direct_calls()? - before;
        expect("direct calls", direct, if collocated { 3 } else { 0 })?;
        if !collocated {
            return Ok(());
        }
        let held = remote("call_peer", echo.call_peer(peer, PeerCall::Hold))?;
        expect("hold on the peer", held, PeerOutcome::NoReplyYet)?;
        let mut peer_client = Echo::new(SendRight::from_raw(peer.name()));
        let released = remote("the peer's release", peer_client.release());
        core::mem::forget(peer_client);
        expect("calls the peer kept", released?, 1)?;
        let before = direct_calls()?;
        let own = remote("call_peer", echo.call_peer(server, PeerCall::Null))?;
        expect("a call of itself", own, PeerOutcome::NoReplyYet)?;
        expect("direct calls of itself", direct_calls()? - before, 0)
    }

    /// The collocated peer fails in a direct call (a panic): its caller, the collocated
    /// server, gets "no reply" and goes on; the peer is gone.
    fn peer_crash(echo: &mut Echo, peer: &SendRight) -> Result<()> {
        use echo::{PeerCall, PeerOutcome};
        let crash = PeerCall::Crash { fault: false };
        let outcome = remote("call_peer", echo.call_peer(peer, crash))?;
        expect("the crashing peer", outcome, PeerOutcome::NoReply)?;
        remote("null after the peer failed", echo.null())?;
        // (Our right to the peer's port is a dead name now: the request may not even go.)
        if echo.call_peer(peer, PeerCall::Null) == Ok(PeerOutcome::Answered) {
            return Err("the failed peer still answers".into());
        }
        expect(
            "a task named echo.peer after the failure",
            identity("echo.peer").is_ok(),
            false,
        )
    }

    /// Runs the suite against server `server` (`build`: collocated or task); counts into
    /// `passed` and `failed`.
    fn suite(
        build: &str,
        server: &SendRight,
        name: &str,
        peer_server: &SendRight,
        tally: &mut (u32, u32),
    ) {
        let mut echo = Echo::new(SendRight::from_raw(server.name()));
        let collocated = build == "collocated";
        report(build, "null", null_counted(&mut echo, collocated), tally);
        let cases: [(&str, Case); 4] = [
            ("echo", echo_bytes),
            ("rights", rights),
            ("memory", memory),
            ("quota", quota),
        ];
        report(
            build,
            "device_refusals",
            device_refusals(&mut echo, collocated),
            tally,
        );
        for (case, run) in cases {
            report(build, case, run(&mut echo), tally);
            if case == "echo" {
                report(build, "deferred", deferred(&mut echo, server), tally);
            }
        }
        report(build, "identity", identity(name), tally);
        report(
            build,
            "peer",
            peer(&mut echo, server, peer_server, collocated),
            tally,
        );
        // The client's right is `server`'s, borrowed.
        core::mem::forget(echo);
    }

    fn report(build: &str, case: &str, result: Result<()>, tally: &mut (u32, u32)) {
        match result {
            Ok(()) => {
                println!("ktest colloc_{build}_{case} ok");
                tally.0 += 1;
            }
            Err(why) => {
                println!("ktest colloc_{build}_{case} FAILED: {why}");
                tally.1 += 1;
            }
        }
    }

    /// The suite; with `fault` only the collocated server's fault and the task's suite.
    pub fn run(mut names: libipc::names::Client, fault: bool) -> i32 {
        let collocated = match names.lookup("echo".into()) {
            Ok(port) => port,
            Err(error) => {
                println!("colloc_test: no collocated echo server: {error:?}");
                return 1;
            }
        };
        let peer = match names.lookup("echo.peer".into()) {
            Ok(port) => port,
            Err(error) => {
                println!("colloc_test: no collocated echo.peer server: {error:?}");
                return 1;
            }
        };
        let mut tally = (0, 0);
        if !fault {
            suite("collocated", &collocated, "echo", &peer, &mut tally);
        }
        match libipc::names::spawn_registered("echo_task", echo::TASK_NAME, 5000) {
            Ok((task, port)) => {
                suite("task", &port, "echo_task", &peer, &mut tally);
                let mut echo = Echo::new(port);
                report("task", "crash", crash_task(&mut echo, &task), &mut tally);
            }
            Err(error) => {
                println!("ktest colloc_task_start FAILED: {error}");
                tally.1 += 1;
            }
        }
        let mut echo = Echo::new(SendRight::from_raw(collocated.name()));
        if !fault {
            let crashed = peer_crash(&mut echo, &peer);
            report("collocated", "peer_crash", crashed, &mut tally);
        }
        let case = if fault { "fault" } else { "crash" };
        report(
            "collocated",
            case,
            crash_collocated(&mut echo, fault),
            &mut tally,
        );
        core::mem::forget(echo);
        println!("{} passed, {} failed", tally.0, tally.1);
        tally.1 as i32
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let mut buffer = [0u8; libipc::abi::syscall::ARGS_MAX];
    if libipc::rt::args(&mut buffer) == "hold" {
        return suite::hold(args.arg0 as u32);
    }
    let Some(names) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("colloc_test: started without the name service");
        return 1;
    };
    let fault = libipc::rt::args(&mut buffer) == "fault";
    suite::run(names, fault)
}

/// On the host the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}

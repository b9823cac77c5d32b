//! `echo`: a small server built both ways, as a task (`servers/boot.toml` entry
//! `echo_task`) and collocated in the kernel (`echo`). Its routines are what a collocated
//! server must keep doing as a task does: answer at once (`null`, `echo`), keep a reply for
//! later (`hold`, answered by `release`), take and give rights (`keep`, `give`), hold kernel
//! objects against its quota (`ports`), send and take memory out of line (`fill`, `sum`),
//! and fail (`crash`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;

use serde::{Deserialize, Serialize};

/// Why the server refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EchoError {
    /// `give` with no right kept.
    NothingKept,
    /// `fill` could not allocate the memory.
    NoMemory,
    /// `time_null`'s calls of the peer failed.
    PeerFailed,
}

/// What `call_peer` calls on the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerCall {
    /// `null`.
    Null,
    /// `echo` of a few bytes, which must come back.
    Echo,
    /// `hold` (a reply kept for later).
    Hold,
    /// `crash(fault)`.
    Crash { fault: bool },
}

/// How a call of `call_peer` on the peer went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerOutcome {
    /// Answered as it should be.
    Answered,
    /// No answer yet: the peer kept its reply, or could not take the call now (what a
    /// collocated caller, which never waits, gets instead of waiting).
    NoReplyYet,
    /// The peer dropped the call (it failed).
    NoReply,
    /// Anything else: what went wrong.
    Failed(String),
}

/// The spread of `time_null`'s timed calls, in `rdtsc` counts (guest instructions under
/// `--icount`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTimes {
    pub min: u64,
    pub median: u64,
    pub max: u64,
}

/// The name its task build registers under (the collocated build is registered by
/// bootstrap under its archive name, `echo`).
pub const TASK_NAME: &str = "echo_task";

libipc::interface! {
    /// The echo server's interface (ids 3100..).
    pub mod service = 3100 {
        type Error = EchoError;

        /// Does nothing: the null call of `ipc.collocated_rpc`.
        ///
        /// Reply: `()`.
        fn null() -> ();

        /// Returns `bytes`.
        ///
        /// Reply: the same bytes.
        fn echo(bytes: Vec<u8>) -> Vec<u8>;

        /// Waits for the next `release`.
        ///
        /// Reply (deferred until a `release`): this call's place among those released
        /// together, from 0.
        fn hold() -> u32;

        /// Answers every `hold` waiting.
        ///
        /// Reply: how many there were (those whose clients died count too).
        fn release() -> u32;

        /// Keeps `port` (a copy of the right), in place of the one kept before.
        ///
        /// Reply: `()`.
        fn keep(port: SendRight) -> ();

        /// Gives a copy of the right `keep` kept.
        ///
        /// Reply: the right, or `NothingKept`.
        fn give() -> SendRight;

        /// Makes `count` ports and holds them, stopping at the first refusal (its kernel
        /// memory quota, say).
        ///
        /// Reply: how many it made; it now holds that many more.
        fn ports(count: u32) -> u32;

        /// Destroys every port `ports` made.
        ///
        /// Reply: how many there were.
        fn drop_ports() -> u32;

        /// Fails: panics, or with `fault` reads unmapped memory (a page fault).
        ///
        /// Reply: none (the server is gone).
        fn crash(fault: bool) -> ();

        /// Makes `bytes` bytes (whole pages) of memory of its own holding `byte` each.
        ///
        /// Reply: the pages, moved out of line.
        fn fill(bytes: u32, byte: u8) -> Pages;

        /// Adds up the bytes of `pages` (received out of line), then lets them go.
        ///
        /// Reply: the sum.
        fn sum(pages: Pages) -> u64;

        /// Makes `DeviceTransfer` calls the kernel must refuse: on a name it does not hold,
        /// on its own port (no device), with a reply name it does not hold, and with a
        /// transfer kind that is neither read nor write.
        ///
        /// Reply: the kernel's code for each, in that order (a task's are all
        /// `InvalidSyscall`: the call is a collocated server's only).
        fn device_refusals() -> Vec<u32>;

        /// Calls `call` on the echo server `peer` through the client stub: collocated, the
        /// call is direct when the peer is collocated too.
        ///
        /// Reply: how it went.
        fn call_peer(peer: SendRight, call: PeerCall) -> PeerOutcome;

        /// Calls `null` on the echo server `peer` through the client stub `warm_up` times,
        /// then `timed` times each timed on its own: `ipc.collocated_rpc` when both are
        /// collocated (a direct call).
        ///
        /// Reply: the spread, or `PeerFailed`.
        fn time_null(peer: SendRight, warm_up: u32, timed: u32) -> CallTimes;
    }
}

#[cfg(target_os = "none")]
pub use server::{hosted, start, Echo};

#[cfg(target_os = "none")]
mod server {
    use alloc::vec::Vec;

    use alloc::format;

    use super::{service, CallTimes, EchoError, PeerCall, PeerOutcome};
    use libipc::abi::message::MsgReturn;
    use libipc::abi::KernReturn;
    use libipc::bench::measure::time_iterations;
    use libipc::interface::direct::Visit;
    use libipc::interface::{Deferred, Dispatch, Dispatched, Outbox, Pages, Replied, Reply};
    use libipc::interface::{IpcError, RemoteError, TransportError};
    use libipc::ipc::{Name, ReceiveRight, Received, SendRight};

    /// The server's state.
    #[derive(Default)]
    pub struct Echo {
        held: Vec<Deferred<u32, EchoError>>,
        kept: Option<SendRight>,
        ports: Vec<ReceiveRight>,
    }

    impl Dispatch for Echo {
        fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
            service::dispatch(self, request, outbox)
        }

        fn local(&mut self, _port: Name, visit: &mut Visit<'_>) -> bool {
            service::local(self, visit)
        }
    }

    impl service::Server for Echo {
        fn null(&mut self, reply: Reply<'_, (), EchoError>) -> Replied {
            reply.ok(())
        }

        fn echo(&mut self, bytes: Vec<u8>, reply: Reply<'_, Vec<u8>, EchoError>) -> Replied {
            reply.ok(bytes)
        }

        fn hold(&mut self, reply: Reply<'_, u32, EchoError>) -> Replied {
            let (deferred, replied) = reply.defer();
            self.held.push(deferred);
            replied
        }

        fn release(&mut self, reply: Reply<'_, u32, EchoError>) -> Replied {
            let held = core::mem::take(&mut self.held);
            let count = held.len() as u32;
            for (place, deferred) in held.into_iter().enumerate() {
                // A client that died is not waiting any more: nothing to do about it.
                let _ = deferred.send(Ok(place as u32));
            }
            reply.ok(count)
        }

        fn keep(&mut self, port: SendRight, reply: Reply<'_, (), EchoError>) -> Replied {
            self.kept = Some(port);
            reply.ok(())
        }

        fn give(&mut self, reply: Reply<'_, SendRight, EchoError>) -> Replied {
            match &self.kept {
                Some(port) => reply.ok(port),
                None => reply.err(EchoError::NothingKept),
            }
        }

        fn ports(&mut self, count: u32, reply: Reply<'_, u32, EchoError>) -> Replied {
            let mut made = 0;
            while made < count {
                if self.ports.try_reserve(1).is_err() {
                    break;
                }
                match ReceiveRight::allocate() {
                    Ok(port) => self.ports.push(port),
                    Err(_) => break,
                }
                made += 1;
            }
            reply.ok(made)
        }

        fn drop_ports(&mut self, reply: Reply<'_, u32, EchoError>) -> Replied {
            let count = self.ports.len() as u32;
            self.ports.clear();
            reply.ok(count)
        }

        fn crash(&mut self, fault: bool, _reply: Reply<'_, (), EchoError>) -> Replied {
            if fault {
                // SAFETY: none: this read faults on purpose (nothing is mapped at the
                // dangling address, 8, as nothing is at 0), which is what the caller asked.
                let value = unsafe { core::ptr::read_volatile(core::ptr::dangling::<u64>()) };
                panic!("echo: read {value:#x} from address 8");
            }
            panic!("echo: crash requested");
        }

        fn fill(&mut self, bytes: u32, byte: u8, reply: Reply<'_, Pages, EchoError>) -> Replied {
            match Pages::allocate(u64::from(bytes)) {
                Ok(mut pages) => {
                    pages.as_mut_slice().fill(byte);
                    reply.ok(pages)
                }
                Err(_) => reply.err(EchoError::NoMemory),
            }
        }

        fn sum(&mut self, pages: Pages, reply: Reply<'_, u64, EchoError>) -> Replied {
            let sum = pages.as_slice().iter().map(|&b| u64::from(b)).sum();
            reply.ok(sum)
        }

        fn device_refusals(&mut self, reply: Reply<'_, Vec<u32>, EchoError>) -> Replied {
            use libipc::abi::syscall::Syscall;
            const NOT_HELD: u32 = 0x7fff_fff0;
            let Ok(port) = ReceiveRight::allocate() else {
                return reply.err(EchoError::NoMemory);
            };
            // A send right to a port that is no device's, under the receive right's name.
            let send = port.make_send();
            let code = |result: Result<(), KernReturn>| match result {
                Ok(()) => KernReturn::Success as u32,
                Err(error) => error as u32,
            };
            let own = port.name();
            let mut codes = Vec::new();
            for (device, reply_port) in [(NOT_HELD, own), (own, own), (own, NOT_HELD)] {
                // SAFETY: a read takes none of our memory.
                let result =
                    unsafe { libipc::sys::device_transfer(device, reply_port, 0, 0, 4096, false) };
                codes.push(code(result));
            }
            // SAFETY: a read touches none of our memory; the kind is checked before anything
            // else, and this one is neither read nor write.
            let raw = unsafe {
                libipc::sys::syscall6(
                    Syscall::DeviceTransfer as u64,
                    u64::from(own),
                    u64::from(own),
                    0,
                    0,
                    4096,
                    7,
                )
            };
            codes.push(raw.code as u32);
            drop((send, port));
            reply.ok(codes)
        }

        fn call_peer(
            &mut self,
            peer: SendRight,
            what: PeerCall,
            reply: Reply<'_, PeerOutcome, EchoError>,
        ) -> Replied {
            reply.ok(call(&mut service::Client::new(peer), what))
        }

        fn time_null(
            &mut self,
            peer: SendRight,
            warm_up: u32,
            timed: u32,
            reply: Reply<'_, CallTimes, EchoError>,
        ) -> Replied {
            let mut peer = service::Client::new(peer);
            let summary = time_iterations(warm_up as usize, timed as usize, || {
                peer.null().map_err(|e| format!("null: {e:?}"))
            });
            match summary {
                Ok(s) => reply.ok(CallTimes {
                    min: s.min,
                    median: s.median,
                    max: s.max,
                }),
                Err(_) => reply.err(EchoError::PeerFailed),
            }
        }
    }

    /// `call_peer`'s call, made.
    fn call(peer: &mut service::Client, call: PeerCall) -> PeerOutcome {
        let done = match call {
            PeerCall::Null => peer.null(),
            PeerCall::Echo => match peer.echo(b"peer".to_vec()) {
                Ok(bytes) if bytes != b"peer" => {
                    return PeerOutcome::Failed(format!("echoed {bytes:?}"))
                }
                other => other.map(drop),
            },
            PeerCall::Hold => peer.hold().map(drop),
            PeerCall::Crash { fault } => peer.crash(fault),
        };
        match done {
            Ok(()) => PeerOutcome::Answered,
            Err(RemoteError::NoReply) => PeerOutcome::NoReply,
            Err(RemoteError::Transport(TransportError::Ipc(IpcError::Msg(
                MsgReturn::RcvTimedOut,
            )))) => PeerOutcome::NoReplyYet,
            Err(error) => PeerOutcome::Failed(format!("{error:?}")),
        }
    }

    /// The server and its port, made: what both builds start with.
    pub fn start() -> Result<(Echo, ReceiveRight), KernReturn> {
        Ok((Echo::default(), ReceiveRight::allocate()?))
    }

    /// The collocated start ([`libipc::hosted::Start`]): bootstrap registers its port.
    pub fn hosted(_args: libipc::rt::StartArgs) -> Result<libipc::hosted::Started, KernReturn> {
        let (echo, port) = start()?;
        let service = port.make_send()?;
        Ok(libipc::hosted::Started::new(
            port.name(),
            echo,
            port,
            service,
        ))
    }
}

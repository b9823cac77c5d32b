//! The name service: servers register a send right to their port under a name, clients
//! look names up. The name server (`servers/names`, a task or collocated in the kernel)
//! serves it; bootstrap starts it first and gives every task it starts a port of its own
//! there as its first start argument ([`Client::from_start_args`], [`admin`]).
//!
//! ```ignore
//! let mut names = libipc::names::Client::from_start_args(&args).expect("started by bootstrap");
//! let port = libipc::ipc::ReceiveRight::allocate()?;
//! names.register("echo".into(), &port.make_send()?)?;
//! let echo = names.lookup("echo".into())?; // a send right to `port`
//! ```

use serde::{Deserialize, Serialize};

/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Why the name service refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameError {
    /// No port is registered under the name.
    Unknown,
    /// Another port is already registered under the name.
    Duplicate,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// The name is empty.
    Empty,
    /// The service's table is full.
    TableFull,
}

/// Checks a name as the service does: 1 to [`MAX_NAME_LEN`] bytes.
pub fn check_name(name: &str) -> Result<(), NameError> {
    match name.len() {
        0 => Err(NameError::Empty),
        n if n > MAX_NAME_LEN => Err(NameError::TooLong),
        _ => Ok(()),
    }
}

crate::interface! {
    /// The generated interface (ids 400.., as Mach's bootstrap subsystem).
    pub mod service = 400 {
        type Error = NameError;

        /// Registers `port` under `name` (the service keeps a copy of the right, until its
        /// port dies).
        ///
        /// Reply: `()`, or `Empty`, `TooLong`, `Duplicate` (the name is taken) or `TableFull`.
        fn register(name: String, port: SendRight) -> ();

        /// Looks `name` up.
        ///
        /// Reply: a send right to the port registered under `name`, or `Empty`, `TooLong` or
        /// `Unknown`.
        fn lookup(name: String) -> SendRight;

        /// Looks `name` up, waiting until it is registered: for a client started before
        /// its server. The caller bounds the wait itself ([`Client::lookup_waiting`](super::Client::lookup_waiting) sends
        /// this with a reply port of its own and stops receiving at its timeout).
        ///
        /// Reply: as `lookup`'s, deferred until the name is registered; `Unknown` if the
        /// service cannot keep more waiting lookups (it answers its oldest one so).
        fn lookup_wait(name: String) -> SendRight;
    }
}

pub use service::{dispatch, ids, Client, Dispatcher, Server, BASE};

crate::interface! {
    /// bootstrap → the name server, on its admin port, which only bootstrap holds (ids
    /// 450..): the programs it starts, and the services it registers for them.
    pub mod admin = 450 {
        type Error = NameError;

        /// A new port of the name service for a program about to start, to give it as its
        /// first start argument. `devices`: its lookups of the device master port are
        /// answered (`servers/boot.toml`'s `devices = true`). When the port has no senders
        /// left (the program, and whoever it handed its right to, are gone), the server
        /// sends `watcher` one [`CLIENT_GONE`](super::CLIENT_GONE) message and lets both go.
        ///
        /// Reply: a send right to the new port, or `TableFull`.
        fn client(devices: bool, watcher: SendRight) -> SendRight;

        /// Registers `port` under `name`, as `service.register` does (for a server that
        /// cannot wait for the answer itself: one collocated in the kernel).
        ///
        /// Reply: as `service.register`'s.
        fn register(name: String, port: SendRight) -> ();
    }
}

/// The id of the message (no body, no reply) a name server sends a client's watcher when
/// the client is gone ([`admin::Client::client`]).
pub const CLIENT_GONE: u32 = 499;

/// The name the name server (its task build) registers its admin port under with the
/// service its starter gives it ([`spawn_registered_answering`]), after looking the host
/// port up under [`HOST_NAME`].
pub const ADMIN_NAME: &str = "names.admin";

/// The name under which the starter of the name server (its task build) answers its lookup
/// with the host port (the name server needs it to make registered pagers the kernel's).
pub const HOST_NAME: &str = "host";

#[cfg(all(feature = "transport", target_os = "none"))]
impl Client {
    /// The client of the name service whose send right a task's creator passed as the first
    /// start argument; `None` if it passed none.
    pub fn from_start_args(args: &crate::rt::StartArgs) -> Option<Client> {
        let name = u32::try_from(args.arg0).ok().filter(|&n| n != 0)?;
        Some(Client::new(crate::ipc::SendRight::from_raw(name)))
    }

    /// Looks `name` up, waiting up to `timeout_ms` for it to be registered (`lookup_wait`,
    /// its reply received on a port of its own, which goes at the timeout so that a late
    /// answer goes nowhere). A timeout is
    /// `RemoteError::Transport(TransportError::Ipc(IpcError::Msg(MsgReturn::RcvTimedOut)))`.
    pub fn lookup_waiting(
        &mut self,
        name: &str,
        timeout_ms: u64,
    ) -> Result<crate::ipc::SendRight, crate::interface::RemoteError<NameError>> {
        use crate::interface::{decode_reply, PortTransport, TransportError};
        use crate::ipc::{self, MessageBuffer, ReceiveRight, SendRight};
        let reply = ReceiveRight::allocate().map_err(TransportError::ReplyPort)?;
        // The request goes through our send right to the service, borrowed.
        let server = self.transport().server().name();
        let mut asking =
            service::AsyncClient::with_transport(PortTransport::new(SendRight::from_raw(server)));
        let sent = asking.lookup_wait(reply.name(), name.into());
        core::mem::forget(asking);
        sent?;
        let mut buffer = alloc::boxed::Box::new(MessageBuffer::new());
        let received = ipc::receive(reply.name(), &mut buffer, Some(timeout_ms))
            .map_err(TransportError::Ipc)?;
        decode_reply::<SendRight, NameError>(&received, ids::lookup_wait)
    }
}

/// Starts `program` from the boot archive with a send right to a name service of the
/// caller's own (its first start argument, as bootstrap gives), serves that service until
/// the program registers `expected`, and returns the program's task and the right it
/// registered. Other registrations are refused (`Duplicate`), lookups answered `Unknown`.
/// For first tasks that start a server without bootstrap: tests and benchmarks starting a
/// pager. `OperationTimedOut` if nothing comes for `timeout_ms`.
#[cfg(all(feature = "transport", target_os = "none"))]
pub fn spawn_registered(
    program: &str,
    expected: &str,
    timeout_ms: u64,
) -> Result<(crate::ipc::Task, crate::ipc::SendRight), crate::abi::KernReturn> {
    spawn_registered_answering(program, expected, timeout_ms, &[], 0)
}

/// [`spawn_registered`], answering the program's lookups of the names in `answers` with
/// their rights (the device master port, for the disk default pager), `argument` its second
/// start argument.
#[cfg(all(feature = "transport", target_os = "none"))]
pub fn spawn_registered_answering(
    program: &str,
    expected: &str,
    timeout_ms: u64,
    answers: &[(&str, &crate::ipc::SendRight)],
    argument: u64,
) -> Result<(crate::ipc::Task, crate::ipc::SendRight), crate::abi::KernReturn> {
    use crate::abi::KernReturn;
    use crate::interface::{Outbox, Replied, Reply};
    use crate::ipc::{self, MessageBuffer, ReceiveRight, SendRight, Task};
    use alloc::boxed::Box;
    use alloc::string::String;

    struct One<'a> {
        expected: &'a str,
        registered: Option<SendRight>,
        answers: &'a [(&'a str, &'a SendRight)],
    }

    impl Server for One<'_> {
        fn register(
            &mut self,
            name: String,
            port: SendRight,
            reply: Reply<'_, (), NameError>,
        ) -> Replied {
            if name == self.expected && self.registered.is_none() {
                self.registered = Some(port);
                reply.ok(())
            } else {
                reply.err(NameError::Duplicate)
            }
        }

        fn lookup(&mut self, name: String, reply: Reply<'_, SendRight, NameError>) -> Replied {
            match self.answers.iter().find(|(n, _)| *n == name) {
                Some((_, right)) => reply.ok(right),
                None => reply.err(NameError::Unknown),
            }
        }

        fn lookup_wait(&mut self, name: String, reply: Reply<'_, SendRight, NameError>) -> Replied {
            // Nothing else is ever registered here: no waiting.
            self.lookup(name, reply)
        }
    }

    let port = ReceiveRight::allocate()?;
    let task = {
        let send = port.make_send()?;
        Task::spawn(program, Some(&send), argument)?
    };
    let mut service = One {
        expected,
        registered: None,
        answers,
    };
    let mut buffer = Box::new(MessageBuffer::new());
    let mut outbox = Box::new(Outbox::new());
    loop {
        if let Some(reply) = outbox.take_reply() {
            // A reply that cannot go (the program died) is nobody's loss.
            let _ = ipc::send_message(&reply, Some(0));
        }
        if let Some(right) = service.registered.take() {
            return Ok((task, right));
        }
        let request = ipc::receive(port.name(), &mut buffer, Some(timeout_ms))
            .map_err(|_| KernReturn::OperationTimedOut)?;
        dispatch(&mut service, &request, &mut outbox);
    }
}

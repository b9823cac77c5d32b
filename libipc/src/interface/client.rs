//! The client side: what a generated client stub does with a call, over a [`Transport`].

use alloc::boxed::Box;
use core::fmt;

use serde::de::DeserializeOwned;

use super::rights::{self, IpcError, ReceiveRight, SendRight};
use super::wire::{reply_id, status, Decoder, Encoder, Malformed, Wire, MAX_BODY};
use crate::abi::message::notify;
use crate::abi::KernReturn;
use crate::ipc::message::{MessageBuffer, MessageError, Name, OutMessage, Received};

/// Why a remote call did not return the routine's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteError<E> {
    /// The request was not sent or the reply not received.
    Transport(TransportError),
    /// The server could not decode the request (it answered so).
    BadRequest,
    /// The reply is not what the routine promises (or the server could not encode it).
    BadReply,
    /// The server has no routine with this id (it runs another version of the interface).
    UnknownRoutine,
    /// The server dropped the request without replying (the reply right was destroyed).
    NoReply,
    /// The routine's own error.
    Server(E),
}

/// Why a transport could not carry a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// `mach_msg` failed, or the request could not be built.
    Ipc(IpcError),
    /// The client's reply port could not be allocated.
    ReplyPort(KernReturn),
    /// The kernel refused a request made as a call rather than a message (a collocated
    /// server's device transfer, `device::Transfers`).
    Refused(KernReturn),
}

impl From<IpcError> for TransportError {
    fn from(e: IpcError) -> Self {
        TransportError::Ipc(e)
    }
}

impl<E> From<TransportError> for RemoteError<E> {
    fn from(e: TransportError) -> Self {
        RemoteError::Transport(e)
    }
}

impl<E: fmt::Debug> fmt::Display for RemoteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::Transport(e) => write!(f, "transport failed: {e:?}"),
            RemoteError::BadRequest => f.write_str("the server could not decode the request"),
            RemoteError::BadReply => f.write_str("malformed reply"),
            RemoteError::UnknownRoutine => f.write_str("the server has no such routine"),
            RemoteError::NoReply => f.write_str("the server dropped the request"),
            RemoteError::Server(e) => write!(f, "{e:?}"),
        }
    }
}

/// Carries a request to a server and brings its reply back: the one thing a client stub needs
/// from the machine. [`PortTransport`] does it with `mach_msg`; tests (or a collocated server)
/// can call a dispatch function instead.
pub trait Transport {
    /// Sends `request` (whose destination and reply port the transport fills in) and returns
    /// the reply, received into `buffer`. The reply's rights are the caller's.
    fn call<'b>(
        &mut self,
        request: &OutMessage<'_>,
        buffer: &'b mut MessageBuffer,
    ) -> Result<Received<'b>, TransportError>;

    /// Sends `request` without waiting, its reply to come to `reply` (a receive right of the
    /// caller's, given as a send-once right). Transports that can only call refuse.
    fn send(&mut self, request: &OutMessage<'_>, reply: Name) -> Result<(), TransportError> {
        let _ = (request, reply);
        Err(TransportError::Ipc(IpcError::Msg(
            crate::abi::message::MsgReturn::SendInvalidDest,
        )))
    }

    /// The send right (a name of the caller's) a direct call between collocated servers
    /// may go through ([`direct`](super::direct)); `None` (the default) when calls are
    /// messages only.
    fn direct_port(&self) -> Option<Name> {
        None
    }
}

/// Calls through a send right to the server's port and waits on a reply port of the
/// client's own, allocated at the first call.
#[derive(Debug)]
pub struct PortTransport {
    server: SendRight,
    reply: Option<ReceiveRight>,
}

impl PortTransport {
    /// Calls through `server`, a send right to the server's port.
    pub fn new(server: SendRight) -> Self {
        PortTransport {
            server,
            reply: None,
        }
    }

    /// The server's port.
    pub fn server(&self) -> &SendRight {
        &self.server
    }

    /// Gives back the send right to the server's port (the reply port goes).
    pub fn into_server(self) -> SendRight {
        self.server
    }
}

impl Transport for PortTransport {
    #[cfg(target_os = "none")]
    fn call<'b>(
        &mut self,
        request: &OutMessage<'_>,
        buffer: &'b mut MessageBuffer,
    ) -> Result<Received<'b>, TransportError> {
        use crate::abi::message::Disposition;
        let reply = match &self.reply {
            Some(reply) => reply.name(),
            None => {
                let port = ReceiveRight::allocate().map_err(TransportError::ReplyPort)?;
                self.reply.insert(port).name()
            }
        };
        let request = request
            .to(self.server.name(), Disposition::CopySend)
            .reply_to(reply);
        Ok(crate::ipc::transport::call(&request, reply, buffer, None)?)
    }

    /// In the kernel's build (a collocated server's client), the server's port: the kernel
    /// takes the call directly when the server is collocated too.
    #[cfg(all(feature = "collocated", target_os = "none"))]
    #[inline(always)]
    fn direct_port(&self) -> Option<Name> {
        Some(self.server.name())
    }

    #[cfg(target_os = "none")]
    fn send(&mut self, request: &OutMessage<'_>, reply: Name) -> Result<(), TransportError> {
        use crate::abi::message::Disposition;
        let request = request
            .to(self.server.name(), Disposition::CopySend)
            .reply_to(reply);
        Ok(crate::ipc::transport::send_message(&request, None)?)
    }

    /// On the host there is no kernel: every call fails as if the server were gone.
    #[cfg(not(target_os = "none"))]
    fn call<'b>(
        &mut self,
        _request: &OutMessage<'_>,
        _buffer: &'b mut MessageBuffer,
    ) -> Result<Received<'b>, TransportError> {
        let _ = (&self.server, &self.reply);
        Err(TransportError::Ipc(IpcError::Msg(
            crate::abi::message::MsgReturn::SendInvalidDest,
        )))
    }
}

/// Room to build a request and receive its reply.
struct Buffers {
    body: [u8; MAX_BODY],
    message: MessageBuffer,
}

/// What every generated client is: a transport and buffers (allocated at the first call),
/// with the one generic `call` the generated methods go through.
pub struct Stub<T> {
    transport: T,
    buffers: Option<Box<Buffers>>,
}

impl<T: Transport> Stub<T> {
    /// A stub calling through `transport`; its buffers come with the first call.
    pub fn new(transport: T) -> Self {
        Stub {
            transport,
            buffers: None,
        }
    }

    /// The transport calls go through.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport calls go through, to change.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back (the buffers go).
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Calls routine `id` with the arguments `encode` writes; decodes the reply as an `R`
    /// or the routine's `E`.
    pub fn call<R: Wire, E: DeserializeOwned>(
        &mut self,
        id: u32,
        encode: impl FnOnce(&mut Encoder<'_>) -> Result<(), MessageError>,
    ) -> Result<R, RemoteError<E>> {
        let buffers = self.buffers.get_or_insert_with(|| {
            Box::new(Buffers {
                body: [0; MAX_BODY],
                message: MessageBuffer::new(),
            })
        });
        let Buffers { body, message } = &mut **buffers;
        let mut encoder = Encoder::new(body);
        let request = encode(&mut encoder)
            .and_then(|()| encoder.message(id))
            .map_err(|e| RemoteError::Transport(TransportError::Ipc(IpcError::Message(e))))?;
        let reply = self.transport.call(&request, message)?;
        decode_reply(&reply, id)
    }

    /// Sends routine `id` with the arguments `encode` writes, without waiting: the reply
    /// comes to `reply` (read it with [`decode_reply`]).
    pub fn send(
        &mut self,
        id: u32,
        reply: Name,
        encode: impl FnOnce(&mut Encoder<'_>) -> Result<(), MessageError>,
    ) -> Result<(), TransportError> {
        let buffers = self.buffers.get_or_insert_with(|| {
            Box::new(Buffers {
                body: [0; MAX_BODY],
                message: MessageBuffer::new(),
            })
        });
        let mut encoder = Encoder::new(&mut buffers.body);
        let request = encode(&mut encoder)
            .and_then(|()| encoder.message(id))
            .map_err(|e| TransportError::Ipc(IpcError::Message(e)))?;
        self.transport.send(&request, reply)
    }
}

/// Reads the reply to request `id`; whatever its shape, its rights end up owned or released.
pub fn decode_reply<R: Wire, E: DeserializeOwned>(
    reply: &Received<'_>,
    id: u32,
) -> Result<R, RemoteError<E>> {
    // A reply carries no reply right of its own; one that does is malformed, but the right is
    // still ours to give back.
    let stray = reply.reply();
    if let Some((name, kind)) = stray {
        rights::release(name, Some(kind));
    }
    let mut decoder = Decoder::new(reply);
    if reply.id() == notify::SEND_ONCE {
        return Err(RemoteError::NoReply);
    }
    if reply.id() != reply_id(id) || stray.is_some() {
        return Err(RemoteError::BadReply);
    }
    let result = read_reply(&mut decoder).map_err(|Malformed| RemoteError::BadReply)?;
    decoder
        .finish()
        .map_err(|Malformed| RemoteError::BadReply)?;
    result
}

fn read_reply<R: Wire, E: DeserializeOwned>(
    decoder: &mut Decoder<'_>,
) -> Result<Result<R, RemoteError<E>>, Malformed> {
    Ok(match decoder.data::<u8>()? {
        status::OK => Ok(R::decode(decoder)?),
        status::ERROR => Err(RemoteError::Server(decoder.data()?)),
        status::BAD_REQUEST => Err(RemoteError::BadRequest),
        status::UNKNOWN_ROUTINE => Err(RemoteError::UnknownRoutine),
        status::REPLY_FAILED => Err(RemoteError::BadReply),
        _ => return Err(Malformed),
    })
}

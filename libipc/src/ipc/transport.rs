//! Sending and receiving through `mach_msg`.

use super::message::{MessageBuffer, MessageError, Name, OutMessage, Received};
use crate::abi::message::{options, MsgReturn};
use crate::sys;

/// Why a send or receive failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcError {
    /// The kernel's answer.
    Msg(MsgReturn),
    /// A code this library does not know.
    Unknown(u64),
    /// The message could not be built or read.
    Message(MessageError),
}

impl From<MessageError> for IpcError {
    fn from(e: MessageError) -> Self {
        IpcError::Message(e)
    }
}

#[inline]
fn check(result: sys::SyscallResult) -> Result<usize, IpcError> {
    if result.code == MsgReturn::Success as u64 {
        return Ok(result.value as usize);
    }
    match u32::try_from(result.code)
        .ok()
        .and_then(MsgReturn::from_raw)
    {
        Some(MsgReturn::Success) => Ok(result.value as usize),
        Some(code) => Err(IpcError::Msg(code)),
        None => Err(IpcError::Unknown(result.code)),
    }
}

/// Timeout option bits and value for `mach_msg`.
fn timeout_bits(timeout_ms: Option<u64>, bit: u64) -> (u64, u64) {
    match timeout_ms {
        Some(ms) => (bit, ms),
        None => (0, 0),
    }
}

/// Sends `message` (waiting for room if the queue is full, up to `timeout_ms`).
pub fn send(
    message: &OutMessage<'_>,
    buffer: &mut MessageBuffer,
    timeout_ms: Option<u64>,
) -> Result<(), IpcError> {
    let size = message.encode(&mut buffer.0)?;
    let (bits, timeout) = timeout_bits(timeout_ms, options::SEND_TIMEOUT);
    // SAFETY: the buffer holds `size` encoded bytes and is not written by a send.
    check(unsafe {
        sys::mach_msg(
            buffer.0.as_mut_ptr(),
            options::SEND | bits,
            size,
            0,
            0,
            timeout,
        )
    })
    .map(drop)
}

/// Sends `message` (waiting for room up to `timeout_ms`) from a buffer of its own: a small
/// one on the stack for the usual small message, so no 8 KiB buffer is cleared for it.
pub fn send_message(message: &OutMessage<'_>, timeout_ms: Option<u64>) -> Result<(), IpcError> {
    const SMALL: usize = 256;
    if message.size() > SMALL {
        return send(message, &mut MessageBuffer::new(), timeout_ms);
    }
    let mut buffer = [0u8; SMALL];
    let size = message.encode(&mut buffer)?;
    let (bits, timeout) = timeout_bits(timeout_ms, options::SEND_TIMEOUT);
    // SAFETY: the buffer holds `size` encoded bytes and is not written by a send.
    check(unsafe {
        sys::mach_msg(
            buffer.as_mut_ptr(),
            options::SEND | bits,
            size,
            0,
            0,
            timeout,
        )
    })
    .map(drop)
}

/// Receives a message from port or port set `from` into `buffer`.
pub fn receive(
    from: Name,
    buffer: &mut MessageBuffer,
    timeout_ms: Option<u64>,
) -> Result<Received<'_>, IpcError> {
    let (bits, timeout) = timeout_bits(timeout_ms, options::RECEIVE_TIMEOUT);
    let limit = buffer.0.len();
    // SAFETY: the kernel writes at most `limit` bytes into the buffer.
    let size = check(unsafe {
        sys::mach_msg(
            buffer.0.as_mut_ptr(),
            options::RECEIVE | bits,
            0,
            limit,
            from,
            timeout,
        )
    })?;
    Ok(Received::parse(&buffer.0, size)?)
}

/// Sends `message` and waits for the answer on `reply_port` (which `message` should name as
/// its reply port), in one system call: the remote procedure call.
#[inline]
pub fn call<'b>(
    message: &OutMessage<'_>,
    reply_port: Name,
    buffer: &'b mut MessageBuffer,
    timeout_ms: Option<u64>,
) -> Result<Received<'b>, IpcError> {
    let size = message.encode(&mut buffer.0)?;
    let (bits, timeout) = timeout_bits(timeout_ms, options::RECEIVE_TIMEOUT);
    let limit = buffer.0.len();
    // SAFETY: the buffer holds the encoded message and receives at most `limit` bytes.
    let received = check(unsafe {
        sys::mach_msg(
            buffer.0.as_mut_ptr(),
            options::SEND | options::RECEIVE | bits,
            size,
            limit,
            reply_port,
            timeout,
        )
    })?;
    Ok(Received::parse(&buffer.0, received)?)
}

/// Sends `reply` (if any) and waits for the next message on `from`, in one system call: the
/// server side of a call.
#[inline]
pub fn reply_and_receive<'b>(
    reply: Option<&OutMessage<'_>>,
    from: Name,
    buffer: &'b mut MessageBuffer,
) -> Result<Received<'b>, IpcError> {
    let mut option = options::RECEIVE;
    let mut size = 0;
    if let Some(reply) = reply {
        size = reply.encode(&mut buffer.0)?;
        option |= options::SEND;
    }
    let limit = buffer.0.len();
    // SAFETY: as in `call`.
    let received =
        check(unsafe { sys::mach_msg(buffer.0.as_mut_ptr(), option, size, limit, from, 0) })?;
    Ok(Received::parse(&buffer.0, received)?)
}

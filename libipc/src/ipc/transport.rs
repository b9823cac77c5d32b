//! Sending and receiving through `mach_msg`.

use super::message::{MessageBuffer, MessageError, Name, OutMessage, Received};
use crate::abi::message::{options, registers, MsgReturn};
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

/// Sends `message` (if any) and/or receives into `buffer` from `from`, in registers where
/// the message is short: the one `mach_msg` of `call`, `reply_and_receive` and `receive`.
#[inline(always)]
fn exchange<'b>(
    message: Option<&OutMessage<'_>>,
    option: u64,
    from: Name,
    buffer: &'b mut MessageBuffer,
    timeout: u64,
) -> Result<Received<'b>, IpcError> {
    let arrived = exchange_raw(message, option, from, buffer, timeout)?;
    Ok(arrived.read(buffer)?)
}

/// Where a received message is: in the buffer (`size` bytes), or in registers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arrived {
    Buffer(usize),
    Registers([u64; 4], usize),
}

impl Arrived {
    /// The message, read from where it is (one in registers has its body laid into
    /// `buffer`).
    #[inline(always)]
    pub(crate) fn read(self, buffer: &mut MessageBuffer) -> Result<Received<'_>, MessageError> {
        match self {
            Arrived::Buffer(size) => Received::parse(&buffer.0, size),
            Arrived::Registers(words, size) => {
                Received::from_registers(&mut buffer.0, &words, size)
            }
        }
    }
}

/// [`exchange`] up to where the message arrived, holding no borrow of `buffer` (a caller
/// can look at the buffer after an error).
#[inline(always)]
pub(crate) fn exchange_raw(
    message: Option<&OutMessage<'_>>,
    mut option: u64,
    from: Name,
    buffer: &mut MessageBuffer,
    timeout: u64,
) -> Result<Arrived, IpcError> {
    let mut words = [0; 4];
    let mut size = 0;
    if let Some(message) = message {
        option |= options::SEND;
        match message.in_registers() {
            Some((short, short_size)) => {
                (words, size) = (short, short_size);
                option |= options::SEND_REGISTERS;
            }
            None => size = message.encode(&mut buffer.0)?,
        }
    }
    let limit = buffer.0.len();
    // SAFETY: the buffer holds the encoded message (if it is not in registers) and receives
    // at most `limit` bytes.
    let received = check(unsafe {
        sys::mach_msg_registers(
            buffer.0.as_mut_ptr(),
            option | options::RECEIVE | options::RECEIVE_REGISTERS,
            size,
            limit,
            from,
            timeout,
            &mut words,
        )
    })?;
    // A message that came in registers is read from them; one that came in memory is in
    // the buffer.
    let received = received as u64;
    if received & registers::IN_REGISTERS != 0 {
        // The size is below `registers::MAX_SIZE`, so its low half is all of it (and takes
        // the flag off in one instruction).
        const _: () = assert!(registers::IN_REGISTERS > u32::MAX as u64);
        let size = received as u32 as usize;
        return Ok(Arrived::Registers(words, size));
    }
    Ok(Arrived::Buffer(received as usize))
}

/// Receives a message from port or port set `from` into `buffer`.
pub fn receive(
    from: Name,
    buffer: &mut MessageBuffer,
    timeout_ms: Option<u64>,
) -> Result<Received<'_>, IpcError> {
    let (bits, timeout) = timeout_bits(timeout_ms, options::RECEIVE_TIMEOUT);
    exchange(None, bits, from, buffer, timeout)
}

/// Sends `message` and waits for the answer on `reply_port` (which `message` should name as
/// its reply port), in one system call: the remote procedure call. A short message (no
/// rights or memory, a body of at most 16 bytes) goes, and a short answer comes, in
/// registers.
#[inline]
pub fn call<'b>(
    message: &OutMessage<'_>,
    reply_port: Name,
    buffer: &'b mut MessageBuffer,
    timeout_ms: Option<u64>,
) -> Result<Received<'b>, IpcError> {
    let (bits, timeout) = timeout_bits(timeout_ms, options::RECEIVE_TIMEOUT);
    exchange(Some(message), bits, reply_port, buffer, timeout)
}

/// Sends `reply` (if any) and waits for the next message on `from`, in one system call: the
/// server side of a call. Short messages go in registers, as in [`call`].
#[inline]
pub fn reply_and_receive<'b>(
    reply: Option<&OutMessage<'_>>,
    from: Name,
    buffer: &'b mut MessageBuffer,
) -> Result<Received<'b>, IpcError> {
    exchange(reply, 0, from, buffer, 0)
}

//! The fast path of `mach_msg` for the common call and reply: a small simple message sent
//! to a port where a receiver already waits, by a thread that then waits on a port of its
//! own. The message goes straight from the sender's buffer into the receiver's, the sender
//! blocks, and the receiver runs at once (hand-off), with none of the general path's queues,
//! allocations or repeated lookups.
//!
//! Every condition is checked before anything changes; if one fails the general path runs
//! instead, from the start, and must give the same result. So this path only ever does what
//! the general path would have done.

use super::mach_msg::MsgOutcome;
use super::port::Receiver;
use super::space::{Object, Rights};
use crate::kern::kernel::Kernel;
use crate::kern::task::TaskId;
use crate::kern::thread::{Continuation, ReceiveArgs, ReceiveFrom, ThreadId, ThreadState};
use crate::vm::kernel_space::phys_to_virt;
use crate::vm::map::{Protection, PAGE_SIZE};
use core::mem::MaybeUninit;
use libipc::abi::message::{options, Disposition, MessageHeader, ReceivedRight, HEADER_SIZE};
use libipc::abi::syscall::USER_END;

/// Largest message the fast path carries.
const FAST_MAX: usize = 256;

/// Whether `[address, address + len)` is in user space within one page.
fn one_user_page(address: u64, len: u64) -> bool {
    let Some(end) = address.checked_add(len) else {
        return false;
    };
    end <= USER_END && len > 0 && address / PAGE_SIZE == (end - 1) / PAGE_SIZE
}

impl Kernel {
    /// Runs a call or reply-and-receive on the fast path if it qualifies (`None`: use the
    /// general path; nothing has changed).
    pub fn call_fast_path(
        &mut self,
        thread: ThreadId,
        task: TaskId,
        a: [u64; 6],
    ) -> Option<MsgOutcome> {
        let [buffer, option, send_size, receive_limit, receive_name, _] = a;
        if option != options::SEND | options::RECEIVE
            || send_size < HEADER_SIZE as u64
            || send_size > FAST_MAX as u64
            || send_size % 4 != 0
            || !one_user_page(buffer, send_size)
        {
            return None;
        }
        let size = send_size as usize;

        // The message, read through the sender's map (faulting the page in is harmless: the
        // general path would do the same).
        let mut staging = [const { MaybeUninit::<u8>::uninit() }; FAST_MAX];
        let bytes: &mut [u8] = {
            let t = self.tasks.get_mut(task)?;
            let frame = t
                .space
                .frame_for(
                    &mut self.objects,
                    buffer & !(PAGE_SIZE - 1),
                    Protection::READ,
                )
                .ok()?;
            let source = phys_to_virt(frame) + (buffer & (PAGE_SIZE - 1));
            // SAFETY: the bytes lie in the sender's direct-mapped frame (checked above); `staging`
            // is a distinct kernel buffer of room enough, its first `size` bytes set by the copy.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    source as *const u8,
                    staging.as_mut_ptr() as *mut u8,
                    size,
                );
                core::slice::from_raw_parts_mut(staging.as_mut_ptr() as *mut u8, size)
            }
        };
        let header = MessageHeader::from_bytes(bytes[..HEADER_SIZE].try_into().ok()?);
        if header.is_complex() || header.bits & !0xffff != 0 {
            return None;
        }
        let remote = Disposition::from_raw(header.remote_disposition())?;
        let make_reply = match header.local_disposition() {
            0 if header.local_port == 0 => false,
            21 => true, // MakeSendOnce
            _ => return None,
        };

        // The sender's names: destination, reply port, receive port.
        let space = &self.tasks.get(task)?.ipc;
        let destination = space.lookup(header.remote_port)?;
        let Object::Port(destination_port) = destination.object else {
            return None;
        };
        let needed = match remote {
            Disposition::CopySend => Rights::SEND,
            Disposition::MoveSendOnce => Rights::SEND_ONCE,
            _ => return None,
        };
        if !destination.rights.contains(needed) {
            return None;
        }
        let reply_port = if make_reply {
            let reply = space.lookup(header.local_port)?;
            let Object::Port(port) = reply.object else {
                return None;
            };
            if !reply.rights.contains(Rights::RECEIVE) {
                return None;
            }
            Some(port)
        } else {
            None
        };
        let own = space.lookup(receive_name as u32)?;
        let Object::Port(own_port) = own.object else {
            return None;
        };
        if !own.rights.contains(Rights::RECEIVE) {
            return None;
        }

        // The ports: a receiver waiting directly on the destination, nothing queued for the
        // sender (so it will wait), everything alive.
        let d = self.ports.get(destination_port)?;
        if !matches!(d.receiver, Receiver::Task(_)) || !d.messages.is_empty() {
            return None;
        }
        let receiver = d.receivers.front()?;
        if !self
            .ports
            .get(own_port)
            .is_some_and(|p| p.messages.is_empty())
        {
            return None;
        }
        if let Some(reply_port) = reply_port {
            self.ports.get(reply_port)?;
        }
        let r = self.threads.get(receiver)?;
        let Continuation::Receive(args) = r.continuation else {
            return None;
        };
        let (receiver_task, receiver_name) = (r.task, args.name);
        if args.limit < send_size as u32 || !one_user_page(args.buffer, send_size) {
            return None;
        }
        let ReceiveFrom::Port(_) = args.from else {
            return None;
        };
        // The receiver's buffer, writable (faulted in as the general path would).
        let target = {
            let rt = self.tasks.get_mut(receiver_task)?;
            let page = args.buffer & !(PAGE_SIZE - 1);
            let frame = rt
                .space
                .frame_for(&mut self.objects, page, Protection::WRITE)
                .ok()?;
            phys_to_virt(frame) + (args.buffer & (PAGE_SIZE - 1))
        };
        // The reply right's name in the receiver's space: the last step that can fail.
        let reply_name = match reply_port {
            Some(port) => Some(
                self.tasks
                    .get_mut(receiver_task)?
                    .ipc
                    .insert_send_once(port)
                    .ok()?,
            ),
            None => None,
        };

        // Commit: nothing fails from here.
        if let Some(port) = reply_port {
            if let Some(p) = self.ports.get_mut(port) {
                p.send_once_rights += 1;
            }
        }
        if remote == Disposition::MoveSendOnce {
            // Used up by this message.
            if let Some(t) = self.tasks.get_mut(task) {
                if t.ipc.take_reply(header.remote_port).is_none() {
                    let _ = t.ipc.take_send_once(header.remote_port);
                }
            }
            if let Some(p) = self.ports.get_mut(destination_port) {
                p.send_once_rights = p.send_once_rights.saturating_sub(1);
            }
        }
        let out = MessageHeader {
            bits: if reply_name.is_some() {
                ReceivedRight::SendOnce as u32
            } else {
                0
            },
            size: send_size as u32,
            remote_port: reply_name.unwrap_or(0),
            local_port: receiver_name,
            voucher: 0,
            id: header.id,
        };
        bytes[..HEADER_SIZE].copy_from_slice(&out.to_bytes());
        // SAFETY: `target` has `size` writable bytes inside the receiver's frame (one page,
        // checked above), mapped by the direct map and distinct from `bytes`.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), target as *mut u8, size) };
        if let Some(p) = self.ports.get_mut(destination_port) {
            p.receivers.pop_front(&mut self.threads);
        }
        self.finish_wait(receiver, 0, send_size);
        // The sender waits for its answer; the receiver runs now.
        let args = ReceiveArgs {
            buffer,
            limit: receive_limit.min(u64::from(u32::MAX)) as u32,
            from: ReceiveFrom::Port(own_port),
            name: receive_name as u32,
            deadline: None,
        };
        if let Some(p) = self.ports.get_mut(own_port) {
            p.receivers.push_back(&mut self.threads, thread);
        }
        self.block(thread, Continuation::Receive(args), None);
        if let Some(t) = self.threads.get_mut(receiver) {
            t.state = ThreadState::Running;
        }
        self.current = Some(receiver);
        Some(MsgOutcome::Blocked)
    }
}

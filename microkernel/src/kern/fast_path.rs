//! The fast path of `mach_msg` for the common call and reply: a small simple message sent
//! to a port where a receiver already waits, by a thread that then waits on a port of its
//! own. The message goes straight from the sender's buffer into the receiver's, the sender
//! blocks, and the receiver runs at once (hand-off), with none of the general path's queues,
//! allocations or repeated lookups.
//!
//! Every condition is checked before anything changes; if one fails the general path runs
//! instead, from the start, and must give the same result. So this path only ever does what
//! the general path would have done. Once the ids are checked it works on the thread and port
//! records themselves (the wait queues' links, the continuations, the results) rather than
//! through the `Kernel` helpers that would look the same objects up again; the message goes
//! from the sender's page to the receiver's in one copy, with the header rewritten on the way,
//! or, a short message in registers (`libipc::abi::message::registers`), from the sender's
//! saved registers to the receiver's without touching either task's memory.

use crate::arch::trap::TrapFrame;
use crate::ipc::port::Receiver;
use crate::ipc::space::Rights;
use crate::ipc::PortHint;
use crate::kern::kernel::Kernel;
use crate::kern::thread::{
    Continuation, KeptPage, PackedFrom, ReceiveArgs, ReceiveCall, TaskRecord, Thread, ThreadId,
    ThreadRecord, ThreadState,
};
use crate::vm::kernel_space::phys_to_virt;
use crate::vm::map::{Protection, PAGE_SIZE};
use crate::vm::pmap::Pmap;
use libipc::abi::message::{
    options, registers, Disposition, MessageHeader, ReceivedRight, HEADER_SIZE,
};
use libipc::abi::syscall::{Syscall, USER_END};

/// Largest message the fast path carries.
const FAST_MAX: usize = 256;

/// Whether `[address, address + len)` is in user space within one page (`USER_END` is a
/// page boundary, so a range that starts below it and stays in its page ends at or below it).
#[inline(always)]
fn one_user_page(address: u64, len: u64) -> bool {
    const _: () = assert!(USER_END.is_multiple_of(PAGE_SIZE));
    address < USER_END && len > 0 && len <= PAGE_SIZE - (address & (PAGE_SIZE - 1))
}

/// Body bytes copied word by word (no `memmove` call): a null RPC's request and reply.
const INLINE_BODY: usize = 32;

/// Copies a body of `len` bytes (a multiple of 4) from `source` to `target`, which may
/// overlap (a task may send into its own buffer): a small body is read whole before any of
/// it is written.
///
/// # Safety
/// `len` bytes must be readable at `source` and writable at `target`.
#[inline(always)]
unsafe fn copy_body(source: *const u8, target: *mut u8, len: usize) {
    if len > INLINE_BODY {
        // SAFETY: as the caller vouches; `copy` allows overlap.
        unsafe { core::ptr::copy(source, target, len) };
        return;
    }
    // Straight-line reads then writes (a loop here becomes a `memmove` call again): up to
    // four 8-byte words, then the last 4 bytes if `len` is an odd number of words.
    let (words, tail) = (len / 8, !len.is_multiple_of(8));
    let (from, to) = (source as *const u64, target as *mut u64);
    let read = |i: usize| {
        // SAFETY: word `i < len / 8` (each call) lies in the `len` readable bytes.
        unsafe { from.add(i).read_unaligned() }
    };
    let w = [
        if words > 0 { read(0) } else { 0 },
        if words > 1 { read(1) } else { 0 },
        if words > 2 { read(2) } else { 0 },
        if words > 3 { read(3) } else { 0 },
    ];
    // SAFETY: as above.
    let last = tail.then(|| unsafe { (source.add(len - 4) as *const u32).read_unaligned() });
    for (i, word) in w.iter().enumerate() {
        if i < words {
            // SAFETY: word `i < len / 8` lies in the `len` writable bytes.
            unsafe { to.add(i).write_unaligned(*word) };
        }
    }
    if let Some(last) = last {
        // SAFETY: the last 4 of the `len` writable bytes.
        unsafe { (target.add(len - 4) as *mut u32).write_unaligned(last) };
    }
}

/// The header bits of the usual call: a copy of a send right, a send-once reply right made
/// from the caller's receive right.
pub(crate) const USUAL_CALL: u32 =
    Disposition::CopySend as u32 | (Disposition::MakeSendOnce as u32) << 8;
/// The header bits of the usual reply: the send-once right moved, no reply right.
pub(crate) const USUAL_REPLY: u32 = Disposition::MoveSendOnce as u32;

/// Where the sender's message lies when it is in memory.
#[derive(Clone, Copy)]
struct SourcePage {
    /// Direct-map address of the buffer's page.
    page: u64,
    /// Whether the page is mapped writable (so it can be kept for the sender's receive).
    writable: bool,
    /// Direct-map address of the message.
    source: u64,
    /// `pmap::stamp()` read before the translation.
    stamp: u64,
}

/// What is left of a fast-path message once its records are let go, each step rare in a
/// call-and-reply loop: a reply right taken from a name other than the reply slot, a reply
/// port other than the receive port counted, the receiver's timeout disarmed, the sender
/// linked after the thread queued before it.
struct RareSteps {
    sender: TaskRecord,
    reply_name: Option<u32>,
    reply_port: Option<crate::ipc::port::PortId>,
    timed: Option<ThreadId>,
    tail: Option<(ThreadId, ThreadId)>,
}

impl RareSteps {
    #[inline(always)]
    fn any(&self) -> bool {
        self.reply_name.is_some()
            || self.reply_port.is_some()
            || self.timed.is_some()
            || self.tail.is_some()
    }
}

/// A hand-off the fast path made: the receiver, now the current thread, whose saved
/// registers and page tables the way out resumes. One word (so an `Option` of it comes back
/// in a register): the receiver's boxed record, valid while the kernel lock is held and no
/// thread or task is removed.
pub struct Handoff {
    thread: ThreadRecord,
}

impl Handoff {
    /// The receiver's saved registers and its task's page tables.
    ///
    /// # Safety
    /// The receiver is still live (nothing removed it since the hand-off).
    #[inline(always)]
    pub unsafe fn frame_and_pmap(self) -> (*const TrapFrame, *const Pmap) {
        // SAFETY: per the contract the receiver is live, so its task is; both boxed, and
        // nothing else holds either while the way out reads them.
        let thread = unsafe { self.thread.get() };
        // SAFETY: as above.
        let pmap: *const Pmap = unsafe { thread.task_record.get() }.space.pmap();
        (&thread.frame, pmap)
    }
}

impl Kernel {
    /// Tried first for every system call, straight from the entry: the running thread's
    /// call, if it is a `mach_msg` the fast path takes (`None`: `dispatch` runs it; nothing
    /// has changed). The fast path never meets an absent page (it leaves such a call to the
    /// general path), so `dispatch`'s page-wait check has nothing to do after it.
    ///
    /// `registers` are the call's `rsi`, `rdx` and `r8` (`mach_msg`'s options, send size and
    /// receive name), as the entry passes them on in registers.
    ///
    /// # Safety
    /// `frame` must be the running thread's saved registers (as the syscall entry passes
    /// them): its record is reached through it, with no lookup; `registers` the ones saved
    /// there.
    #[inline(always)]
    pub unsafe fn syscall_fast_path(
        &mut self,
        frame: *mut TrapFrame,
        registers: [u64; 3],
    ) -> Option<Handoff> {
        const _: () = assert!(core::mem::offset_of!(Thread, frame) == 0);
        debug_assert!(self
            .current()
            .and_then(|thread| self.threads.get(thread))
            .is_some_and(|t| core::ptr::eq(&t.frame, frame)));
        // SAFETY: per the contract, `frame` is the first field of the running thread's boxed
        // (`repr(C)`) record, live while the kernel lock is held.
        let t = unsafe { &mut *(frame as *mut Thread) };
        let f = &t.frame;
        if f.rax != Syscall::MachMsg as u64 {
            return None;
        }
        debug_assert_eq!(registers, [f.rsi, f.rdx, f.r8]);
        let (option, bits) = (registers[0], f.r12 as u32);
        let t = ThreadRecord::new(t);
        // One copy of the path for each place a message can be, so neither carries the
        // other's steps, and for a message in registers one each for the usual call and the
        // usual reply, whose header bits are then known in advance. Each reads the call's
        // arguments itself, so that none of them lives across another copy's calls.
        // The usual call and reply send and receive in registers with no timeout: those
        // options, compared whole, pick their copies; every other message goes out of line.
        const IN_REGISTERS: u64 =
            options::SEND | options::RECEIVE | options::SEND_REGISTERS | options::RECEIVE_REGISTERS;
        match (option, bits) {
            (IN_REGISTERS, USUAL_CALL) => self.call_fast_path::<true, USUAL_CALL>(t, registers),
            (IN_REGISTERS, USUAL_REPLY) => self.call_fast_path::<true, USUAL_REPLY>(t, registers),
            _ => self.other_fast_path(t),
        }
    }

    /// The fast path's copies for messages other than the usual call and reply, out of line:
    /// the copy for a message in memory alone calls functions (to translate the buffers), and
    /// the values any of them holds would otherwise take the registers of the usual copies
    /// (the header's bits, which only the copy for any bits reads again, were kept on the
    /// stack for it on every call while it was inline).
    #[inline(never)]
    fn other_fast_path(&mut self, t: ThreadRecord) -> Option<Handoff> {
        // The three registers read again from the frame: passed on, they would be stored on
        // the stack for this call on every system call's way.
        let registers = {
            // SAFETY: the running thread's record (the caller's), live; this reference ends
            // here.
            let f = &unsafe { t.get() }.frame;
            [f.rsi, f.rdx, f.r8]
        };
        if registers[0] & options::SEND_REGISTERS == 0 {
            self.call_fast_path::<false, 0>(t, registers)
        } else {
            self.call_fast_path::<true, 0>(t, registers)
        }
    }

    /// Tried after the fast path declined a system call, when collocated servers exist: a
    /// call to one, short-circuited (`colloc::short_circuit`), after which the caller resumes
    /// at once with the reply in its registers. `None`: `dispatch` runs the call; if the
    /// request was served but its reply goes elsewhere, only the receive is left to it (the
    /// send bit is cleared in the caller's saved options, as a receive run again has it).
    ///
    /// # Safety
    /// As for [`Kernel::syscall_fast_path`].
    #[inline(never)]
    pub unsafe fn collocated_fast_path(&mut self, frame: *mut TrapFrame) -> Option<Handoff> {
        use crate::kern::colloc::ShortCircuit;
        // SAFETY: per the contract, `frame` is the first field of the running thread's boxed
        // record; the short circuit removes no thread but a failed server's, never the
        // caller's.
        let t = unsafe { &mut *(frame as *mut Thread) };
        let f = &t.frame;
        if f.rax != Syscall::MachMsg as u64
            || f.r12 as u32 != USUAL_CALL
            || f.rsi & options::SEND_REGISTERS == 0
        {
            return None;
        }
        let (record, a, words) = (
            t.task_record,
            f.syscall_arguments(),
            [f.r12, f.r13, f.r14, f.r15],
        );
        let t: *mut Thread = t;
        // SAFETY: `record` is the running thread's task's, live, and nothing else holds it.
        match unsafe { crate::kern::colloc::short_circuit(self, record, a, words) } {
            ShortCircuit::NotTaken => None,
            ShortCircuit::Replied(reply, size) => {
                // SAFETY: as above.
                let f = unsafe { &mut (*t).frame };
                (f.r12, f.r13, f.r14, f.r15) = (reply[0], reply[1], reply[2], reply[3]);
                f.rax = libipc::abi::message::MsgReturn::Success as u64;
                f.rdx = size;
                // The caller goes on (its task is live: only a server's ended).
                // SAFETY: as above.
                Some(Handoff {
                    thread: ThreadRecord::new(unsafe { &mut *t }),
                })
            }
            ShortCircuit::Sent => {
                // SAFETY: as above.
                unsafe { (*t).frame.rsi &= !options::SEND };
                None
            }
        }
    }

    /// Runs a call or reply-and-receive on the fast path if it qualifies (`None`: use the
    /// general path; nothing has changed). `sender_thread` is the running thread's record,
    /// and the path holds its task's by pointer too (`task_record`) rather than looking
    /// either up. Both are boxed (they do not move) and nothing here removes a thread or task.
    /// `SENT_IN_REGISTERS` says where the message is (the option bit the caller tested);
    /// `BITS` is the header's bits when this copy is for one header (0: any): the caller
    /// chose the copy by the bits of a message in registers, so this copy does not test them.
    #[inline(always)]
    fn call_fast_path<const SENT_IN_REGISTERS: bool, const BITS: u32>(
        &mut self,
        sender_thread: ThreadRecord,
        [option, send_size, receive_name]: [u64; 3],
    ) -> Option<Handoff> {
        let (sender_record, buffer, words) = {
            // SAFETY: the running thread's record (the caller's), live; this reference ends
            // here.
            let t = unsafe { sender_thread.get() };
            let f = &t.frame;
            (t.task_record, f.rdi, [f.r12, f.r13, f.r14, f.r15])
        };
        const IN_REGISTERS: u64 = options::SEND_REGISTERS | options::RECEIVE_REGISTERS;
        if option & !IN_REGISTERS != options::SEND | options::RECEIVE {
            return None;
        }
        // A size from a header to the most this copy carries, in 4-byte words, in one
        // comparison: past the header, a multiple of 4 rotated right by 2 is its word count,
        // and anything else has a low bit rotated to the top (the header is whole words).
        const _: () = assert!(HEADER_SIZE.is_multiple_of(4));
        let max = if SENT_IN_REGISTERS {
            registers::MAX_SIZE
        } else {
            FAST_MAX
        };
        let words_past_header = send_size.wrapping_sub(HEADER_SIZE as u64).rotate_right(2);
        if words_past_header > ((max - HEADER_SIZE) / 4) as u64 {
            return None;
        }
        let size = send_size as usize;
        // Names are 32 bits; the general path reads the argument's low half too.
        let receive_name = receive_name as u32;
        // The caller chose the copy by this bit.
        let sent_in_registers = SENT_IN_REGISTERS;
        debug_assert_eq!(option & options::SEND_REGISTERS != 0, sent_in_registers);

        // No task is removed while the fast path runs, and the only other task it touches is
        // the receiver's, checked to be another one.
        // SAFETY: the running thread is live, so its (boxed) task is; no other use (above).
        let sender = unsafe { sender_record.get() };
        // The message: in the sender's registers, or its header in the sender's page
        // (faulting it in is harmless: the general path would do the same).
        let (header, source) = if sent_in_registers {
            (registers::header(&words, send_size as u32), None)
        } else {
            if !one_user_page(buffer, send_size) {
                return None;
            }
            // Translating may fault a page in: for the default pager, from the last frames.
            // (A message in registers touches no memory, so that copy skips this.)
            crate::kern::entry::note_privilege(self);
            // Read before the sender's page is translated: the page kept for its wait below.
            let stamp = crate::vm::pmap::stamp();
            let (frame, writable) = sender
                .space
                .frame_and_writable(
                    self.vm.objects_mut(),
                    buffer & !(PAGE_SIZE - 1),
                    Protection::READ,
                )
                .ok()?;
            let page = phys_to_virt(frame);
            let source = page + (buffer & (PAGE_SIZE - 1));
            // Six `u32`s (`repr(C)`): every bit pattern is a valid `MessageHeader`.
            // SAFETY: the header lies in the sender's direct-mapped frame (one page, checked).
            let header = unsafe { (source as *const MessageHeader).read_unaligned() };
            (
                header,
                Some(SourcePage {
                    page,
                    writable,
                    source,
                    stamp,
                }),
            )
        };
        // The copy for one header's bits knows them (and what follows from them) in advance:
        // the caller chose it by them.
        const {
            assert!(
                BITS == 0 || SENT_IN_REGISTERS,
                "only a message in registers"
            )
        };
        debug_assert!(BITS == 0 || header.bits == BITS);
        let bits = if BITS == 0 { header.bits } else { BITS };
        if bits & !0xffff != 0 {
            return None; // complex, or bits the general path refuses
        }
        let header = MessageHeader { bits, ..header };
        let remote = Disposition::from_raw(header.remote_disposition())?;
        if !matches!(remote, Disposition::CopySend | Disposition::MoveSendOnce) {
            return None;
        }
        let make_reply = match header.local_disposition() {
            0 if header.local_port == 0 => false,
            21 => true, // MakeSendOnce
            _ => return None,
        };

        // The sender's names: destination, reply port, receive port.
        let space = &sender.ipc;
        // A send-once right (a reply) is usually the one in the reply slot, which is then
        // taken without looking again.
        // Each port with the hint of its record kept beside its name (`PortHint`).
        let (destination_port, in_reply_slot, destination_hint) =
            if remote == Disposition::MoveSendOnce {
                space.send_once_port(header.remote_port)?
            } else {
                let (port, hint) = space.port_and_hint_with(header.remote_port, Rights::SEND)?;
                (port, false, hint)
            };
        let (own_port, own_hint) = space.port_and_hint_with(receive_name, Rights::RECEIVE)?;
        // The reply port: the receive port in the usual call (replies come to the port it
        // receives on), or another one, checked here and counted after the held records are
        // let go.
        let (reply_port, other_reply) = if !make_reply {
            (None, None)
        } else if header.local_port == receive_name {
            (Some(own_port), None)
        } else if BITS == USUAL_CALL {
            // The copy for the usual call takes only a reply to the receive port, so that
            // it knows where the reply right comes from; another goes to the copy for any
            // bits (the call in tail position: nothing held lives across it).
            return self.other_fast_path(sender_thread);
        } else {
            let port = space.port_with(header.local_port, Rights::RECEIVE)?;
            (Some(port), (port != own_port).then_some(port))
        };
        if own_port == destination_port || other_reply == Some(destination_port) {
            return None;
        }
        if let Some(port) = other_reply {
            self.ipc.port(port)?;
        }

        // From here on each record is looked up once and held: the two ports, the two
        // threads, the two tasks.
        // The ports: through their hints when both are good, else from the table (and their
        // hints kept for the next call: the reply slot's right is used up by this one).
        let stamp = self.ipc.hint_stamp();
        let (d, own) = if destination_hint.is_good(stamp) && own_hint.is_good(stamp) {
            // SAFETY: both hints are good, and of two different ports (checked above), so
            // neither reference aliases the other; nothing else refers to either.
            unsafe { (destination_hint.port(), own_hint.port()) }
        } else {
            let (d, own) = self.ipc.port_pair_mut(destination_port, own_port)?;
            if !in_reply_slot && remote == Disposition::CopySend {
                if let Some(hint) = PortHint::of_destination(d, stamp) {
                    space.set_hint(header.remote_port, Rights::SEND, hint);
                }
            }
            space.set_hint(receive_name, Rights::RECEIVE, PortHint::new(own, stamp));
            (d, own)
        };
        // A receiver waiting directly on the destination, nothing queued for the sender (so
        // it will wait).
        if !matches!(d.receiver, Receiver::Task(_))
            || !d.messages.is_empty()
            || !own.messages.is_empty()
        {
            return None;
        }
        let receiver = d.receivers.front()?;
        let record = match d.first_receiver.get() {
            // The thread now at the head of the queue is live (queued threads are) and its
            // record boxed, so still where the port saw it.
            // SAFETY: it was tagged from a thread's record (below).
            Some((id, record)) if id == receiver => unsafe { record.untag::<Thread>() },
            _ => {
                let record = ThreadRecord::new(self.threads.get_mut(receiver)?);
                d.first_receiver.set(Some((receiver, record.tag())));
                record
            }
        };
        // SAFETY: the receiver is live (above); no other thread record is in use here.
        let r = unsafe { record.get() };
        // The receiver's task, another than the sender's. So the receiver is another thread
        // than the sender (a running thread waits in no queue anyway), and `s` below does not
        // alias `r`.
        let receiver_record = r.task_record;
        if receiver_record == sender_record {
            return None;
        }
        // SAFETY: the sender's boxed record (checked by the caller, not removed since), never
        // `r`'s (its task is another), so `s` and `r` do not alias.
        let s = unsafe { sender_thread.get() };
        // A thread queued on a port a task receives from waits in a receive from that port
        // (waits for a task's end queue only on task ports, which the kernel receives), so
        // neither is tested here.
        debug_assert!(matches!(
            r.continuation,
            Continuation::Receive(args) if args.from == PackedFrom::port(destination_port)
        ));
        // The rest of its receive, in its saved registers.
        let call = ReceiveCall::of(&r.frame);
        if call.limit < send_size
            // A message in registers goes to a receiver that takes it there; one in memory
            // goes into the receiver's buffer.
            || (if sent_in_registers { !call.registers } else { !one_user_page(call.buffer, send_size) })
        {
            return None;
        }
        // SAFETY: the receiver is live (just looked up), so its task is, and that task is not
        // the sender's (checked above): no other reference to it is in use.
        let rt = unsafe { receiver_record.get() };
        // A task the swapper stopped comes back through the general path (the message
        // swaps it in there), and so does one whose page-table root was freed while it was
        // idle (the general path builds it again before it runs).
        if rt.cold {
            return None;
        }
        // Another task than `rt` (checked above).
        let st = sender;
        // The receiver's buffer for a message in memory, writable (faulted in as the general
        // path would), and the reply right's name in its space: the last steps that can
        // fail. The buffer's page is kept translated since it began to wait, unless any pmap
        // changed since.
        let target = match source {
            None => None,
            Some(_) => {
                let kept = match r.continuation {
                    Continuation::Receive(args) => args.kept,
                    _ => None,
                };
                let page = match KeptPage::get(kept) {
                    Some(page) => page,
                    None => {
                        let page = call.buffer & !(PAGE_SIZE - 1);
                        let frame = rt
                            .space
                            .frame_for(self.vm.objects_mut(), page, Protection::WRITE)
                            .ok()?;
                        phys_to_virt(frame)
                    }
                };
                Some(page + (call.buffer & (PAGE_SIZE - 1)))
            }
        };
        // The reply right in the receiver's reply slot; a receiver still holding an earlier
        // one there (a deferred reply) is left to the general path, which names the right
        // anew (no call here, so the records stay in registers).
        let reply_name = match reply_port {
            // The hint of the receive port goes with a right made from it (the usual call),
            // for the receiver's reply.
            Some(port) if port == own_port => rt
                .ipc
                .insert_reply_with(port, PortHint::of_hinted(own, stamp))?,
            Some(port) => rt.ipc.insert_reply(port)?,
            None => 0,
        };

        // Commit: nothing fails from here. The message: the body as it is, the header as the
        // receiver sees it.
        let out = MessageHeader {
            bits: if reply_port.is_some() {
                ReceivedRight::SendOnce as u32
            } else {
                0
            },
            size: send_size as u32,
            remote_port: reply_name,
            local_port: call.name,
            voucher: 0,
            id: header.id,
        };
        match (source, target) {
            (Some(source), Some(target)) => {
                // A task may send into its own buffer: `copy` allows overlap (the header was
                // read).
                // SAFETY: `size` readable bytes at `source`, writable ones at `target`, each
                // in one direct-mapped page (checked above).
                unsafe {
                    copy_body(
                        (source.source as *const u8).add(HEADER_SIZE),
                        (target as *mut u8).add(HEADER_SIZE),
                        size - HEADER_SIZE,
                    );
                    (target as *mut MessageHeader).write_unaligned(out);
                }
                r.frame.rdx = send_size;
            }
            _ => {
                // Register to register: the header as `registers` lays it out, the body words
                // as they came.
                // (The id, the body and the size read again from the sender's registers.)
                r.frame.r12 = if BITS != 0 {
                    // The copy for one header's bits knows the low half is `BITS`: the
                    // received bits replace it in one addition.
                    debug_assert_eq!(s.frame.r12 as u32, BITS);
                    s.frame.r12.wrapping_sub(u64::from(BITS)) + u64::from(out.bits)
                } else {
                    u64::from(out.bits) | (s.frame.r12 & !0xffff_ffff)
                };
                r.frame.r13 = u64::from(out.remote_port) | u64::from(out.local_port) << 32;
                r.frame.r14 = s.frame.r14;
                r.frame.r15 = s.frame.r15;
                r.frame.rdx = s.frame.rdx | registers::IN_REGISTERS;
            }
        }
        // The rights: the one the message went with used up, a send-once right made for the
        // reply.
        let mut other_reply_name = None;
        if remote == Disposition::MoveSendOnce {
            if in_reply_slot {
                st.ipc.clear_reply();
            } else {
                // A right under another name than the reply slot's is taken once the held
                // records are let go (below). (A name in registers read again from them.)
                other_reply_name = Some(if SENT_IN_REGISTERS {
                    s.frame.r13 as u32
                } else {
                    header.remote_port
                });
            }
            // The sender held one (its name was found as a send-once right above).
            debug_assert!(d.send_once_rights > 0);
            d.send_once_rights -= 1;
        }
        if reply_port == Some(own_port) {
            own.send_once_rights += 1;
        }
        // The receiver leaves the destination's wait queue (it is the head) and runs now with
        // its result; the sender waits on its own port for the answer.
        d.receivers.pop_front_unlinked(r.queue_next);
        let receiver_timed = r.timer.deadline.is_some();
        r.queue_next = None;
        r.queue_previous = None;
        r.frame.rax = 0;
        r.continuation = Continuation::ReturnToUser;
        r.state = ThreadState::Running;
        // (The sender's id read where it is kept, not held across the path.)
        // SAFETY: the sender is the running thread (the caller's contract).
        let thread = unsafe { self.sched.current().unwrap_unchecked() };
        let previous_tail = own.receivers.push_back_unlinked(thread);
        // A running thread is in no queue, and every queue clears both links of a thread it
        // lets go: its `next` is already none.
        debug_assert!(s.queue_next.is_none());
        s.queue_previous = previous_tail;
        s.state = ThreadState::Blocked;
        // The rest of its receive stays in its saved registers (`ReceiveCall::of`).
        s.continuation = Continuation::Receive(ReceiveArgs {
            from: PackedFrom::port(own_port),
            deadline: None,
            // Its buffer is the one it sent from: that page, if mapped writable.
            kept: match source {
                Some(SourcePage {
                    page,
                    writable: true,
                    stamp,
                    ..
                }) => core::num::NonZeroU64::new(stamp).map(|stamp| KeptPage { page, stamp }),
                _ => None,
            },
        });
        self.sched.hand_off(receiver);
        let handoff = Handoff { thread: record };
        // The rarer steps that need a table again, the held records let go: out of line, so
        // that the usual path keeps its records in registers (no value lives across a call).
        let rare = RareSteps {
            sender: sender_record,
            reply_name: other_reply_name,
            reply_port: other_reply,
            timed: receiver_timed.then_some(receiver),
            tail: previous_tail.map(|tail| (tail, thread)),
        };
        if rare.any() {
            return Some(self.fast_path_rare_steps(rare, handoff));
        }
        Some(handoff)
    }

    /// The fast path's last steps when it has any of them (see [`RareSteps`]); returns
    /// `handoff` (passed through, so that nothing the fast path holds lives across this call).
    #[cold]
    #[inline(never)]
    fn fast_path_rare_steps(&mut self, rare: RareSteps, handoff: Handoff) -> Handoff {
        if let Some(name) = rare.reply_name {
            // SAFETY: the sender's task (the running thread's) is live, and the fast path
            // that held it has let it go.
            let _ = unsafe { rare.sender.get() }.ipc.take_send_once(name);
        }
        if let Some(port) = rare.reply_port.and_then(|port| self.ipc.port_mut(port)) {
            port.send_once_rights += 1;
        }
        if let Some(receiver) = rare.timed {
            self.sched.disarm(&mut self.threads, receiver);
        }
        if let Some((tail, thread)) = rare.tail {
            if let Some(tail) = self.threads.get_mut(tail) {
                tail.queue_next = Some(thread);
            }
        }
        handoff
    }
}

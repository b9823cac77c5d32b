//! Hostile and malformed input from a task: every bad argument must come back as an error
//! code, change nothing, and leave the kernel and this task working.

use crate::cases::{check, err};
use alloc::format;
use alloc::string::String;
use libipc::abi::message::{
    options, Descriptor, Disposition, MessageHeader, MsgReturn, COMPLEX, DESCRIPTOR_SIZE,
    HEADER_SIZE,
};
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;
use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight};
use libipc::sys;

/// A raw `mach_msg` send of `bytes` (as laid out by the caller).
fn raw_send(bytes: &mut [u8]) -> Result<(), MsgReturn> {
    // SAFETY: the kernel reads `bytes.len()` bytes from the buffer and writes nothing.
    let r = unsafe { sys::mach_msg(bytes.as_mut_ptr(), options::SEND, bytes.len(), 0, 0, 0) };
    decode(r.code)
}

fn decode(code: u64) -> Result<(), MsgReturn> {
    match MsgReturn::from_raw(code as u32) {
        Some(MsgReturn::Success) => Ok(()),
        Some(other) => Err(other),
        None => Err(MsgReturn::SendInvalidData),
    }
}

fn header(bits: u32, size: usize, remote: u32, local: u32) -> [u8; HEADER_SIZE] {
    MessageHeader {
        bits,
        size: size as u32,
        remote_port: remote,
        local_port: local,
        voucher: 0,
        id: 1,
    }
    .to_bytes()
}

pub fn hostile_messages() -> Result<(), String> {
    let port = ReceiveRight::allocate().map_err(err("allocate"))?;
    let send = port.make_send().map_err(err("make send"))?;
    let n = port.name();
    let copy_send = MessageHeader::bits(Disposition::CopySend, None, false);
    let mut msg = [0u8; 64];

    // Buffers the kernel must refuse to read.
    for (address, what) in [
        (0xffff_8000_0000_0000u64, "kernel"),
        (0x1000, "unmapped"),
        (u64::MAX - 8, "wrapping"),
    ] {
        // SAFETY: the kernel validates the address and reads nothing it may not.
        let r = unsafe { sys::mach_msg(address as *mut u8, options::SEND, 32, 0, 0, 0) };
        check!(
            decode(r.code) == Err(MsgReturn::SendInvalidData),
            "{what} buffer: {:#x}",
            r.code
        );
    }
    // Sizes.
    msg[..HEADER_SIZE].copy_from_slice(&header(copy_send, 24, n, 0));
    check!(
        raw_send(&mut msg[..8]) == Err(MsgReturn::SendMsgTooSmall),
        "8-byte message accepted"
    );
    check!(
        raw_send(&mut msg[..30]) == Err(MsgReturn::SendMsgTooSmall),
        "unaligned size accepted"
    );
    // SAFETY: the kernel checks the size before reading.
    let r = unsafe { sys::mach_msg(msg.as_mut_ptr(), options::SEND, 100_000, 0, 0, 0) };
    check!(
        decode(r.code) == Err(MsgReturn::SendTooLarge),
        "huge size: {:#x}",
        r.code
    );
    // Option bits the kernel does not know: refused, and the (good) message is not sent.
    for unknown in [0x4u64, 0x8000, 1 << 40] {
        // SAFETY: the kernel reads at most 24 bytes of `msg` (it reads none here).
        let r = unsafe { sys::mach_msg(msg.as_mut_ptr(), options::SEND | unknown, 24, 0, 0, 0) };
        check!(
            decode(r.code) == Err(MsgReturn::InvalidOptions),
            "option bit {unknown:#x}: {:#x}",
            r.code
        );
    }
    let mut probe = MessageBuffer::new();
    check!(
        matches!(
            ipc::receive(n, &mut probe, Some(0)),
            Err(ipc::IpcError::Msg(MsgReturn::RcvTimedOut))
        ),
        "a message sent with unknown option bits was queued"
    );
    // Destinations and dispositions.
    msg[..HEADER_SIZE].copy_from_slice(&header(copy_send, 24, 0x12345, 0));
    check!(
        raw_send(&mut msg[..24]) == Err(MsgReturn::SendInvalidDest),
        "unheld destination accepted"
    );
    msg[..HEADER_SIZE].copy_from_slice(&header(99, 24, n, 0));
    check!(
        raw_send(&mut msg[..24]) == Err(MsgReturn::SendInvalidHeader),
        "disposition 99 accepted"
    );
    msg[..HEADER_SIZE].copy_from_slice(&header(Disposition::MoveReceive as u32, 24, n, 0));
    check!(
        raw_send(&mut msg[..24]) == Err(MsgReturn::SendInvalidHeader),
        "move-receive destination accepted"
    );
    let with_reply = MessageHeader::bits(
        Disposition::CopySend,
        Some(Disposition::MakeSendOnce),
        false,
    );
    msg[..HEADER_SIZE].copy_from_slice(&header(with_reply, 24, n, 0x7777));
    check!(
        raw_send(&mut msg[..24]) == Err(MsgReturn::SendInvalidReply),
        "unheld reply accepted"
    );
    // Descriptors.
    let complex = copy_send | COMPLEX;
    let size = HEADER_SIZE + 4 + DESCRIPTOR_SIZE;
    msg[..HEADER_SIZE].copy_from_slice(&header(complex, size, n, 0));
    msg[24..28].copy_from_slice(&1000u32.to_le_bytes());
    check!(
        raw_send(&mut msg[..size]) == Err(MsgReturn::SendInvalidData),
        "1000 descriptors accepted"
    );
    msg[24..28].copy_from_slice(&1u32.to_le_bytes());
    let descriptor = |d: Descriptor, msg: &mut [u8; 64]| {
        msg[28..28 + DESCRIPTOR_SIZE].copy_from_slice(&d.to_bytes())
    };
    descriptor(Descriptor::port(0x4242, Disposition::CopySend), &mut msg);
    check!(
        raw_send(&mut msg[..size]) == Err(MsgReturn::SendInvalidRight),
        "unheld right accepted"
    );
    descriptor(Descriptor::port(n, Disposition::MoveReceive), &mut msg);
    check!(
        raw_send(&mut msg[..size]) == Err(MsgReturn::SendInvalidRight),
        "port's receive right sent to itself"
    );
    // Out-of-line memory the sender does not have, or misaligned, or with unknown flags.
    for (ool, want, what) in [
        (
            Descriptor::out_of_line(0x1000, 4096, false),
            MsgReturn::SendInvalidMemory,
            "below user space",
        ),
        (
            Descriptor::out_of_line(0x7000_0000_0000, 4096, false),
            MsgReturn::SendInvalidMemory,
            "unmapped",
        ),
        (
            Descriptor::out_of_line(0x40_0010, 4096, false),
            MsgReturn::SendInvalidMemory,
            "misaligned",
        ),
        (
            Descriptor::out_of_line(0xffff_8000_0000_0000, 4096, true),
            MsgReturn::SendInvalidMemory,
            "kernel memory",
        ),
        (
            Descriptor {
                flags: 0x80,
                ..Descriptor::out_of_line(0x40_0000, 4096, false)
            },
            MsgReturn::SendInvalidData,
            "unknown flag",
        ),
    ] {
        descriptor(ool, &mut msg);
        let got = raw_send(&mut msg[..size]);
        check!(got == Err(want), "out-of-line region {what}: {got:?}");
    }
    let bogus = Descriptor {
        kind: 77,
        ..Descriptor::port(n, Disposition::CopySend)
    };
    descriptor(bogus, &mut msg);
    check!(
        raw_send(&mut msg[..size]) == Err(MsgReturn::SendInvalidData),
        "descriptor kind 77 accepted"
    );
    // Using one send reference twice in one message (only one is held).
    let size2 = HEADER_SIZE + 4 + 2 * DESCRIPTOR_SIZE;
    let mut msg2 = [0u8; 80];
    msg2[..HEADER_SIZE].copy_from_slice(&header(complex, size2, n, 0));
    msg2[24..28].copy_from_slice(&2u32.to_le_bytes());
    msg2[28..44].copy_from_slice(&Descriptor::port(n, Disposition::MoveSend).to_bytes());
    msg2[44..60].copy_from_slice(&Descriptor::port(n, Disposition::MoveSend).to_bytes());
    // The destination itself takes no reference with CopySend; two MoveSends need two.
    check!(
        raw_send(&mut msg2[..size2]) == Err(MsgReturn::SendInvalidRight),
        "one reference moved twice"
    );
    check!(
        sys::port_get_refs(n, RIGHT_SEND) == Ok(1),
        "a refused message changed the rights"
    );

    // Receiving.
    let mut buffer = MessageBuffer::new();
    let r = ipc::receive(send.name() ^ 0x100, &mut buffer, Some(0));
    check!(
        matches!(r, Err(ipc::IpcError::Msg(MsgReturn::RcvInvalidName))),
        "receive on an unheld name"
    );
    let r = ipc::receive(0, &mut buffer, Some(0));
    check!(
        matches!(r, Err(ipc::IpcError::Msg(MsgReturn::RcvInvalidName))),
        "receive on name 0"
    );
    // A message larger than the receive buffer stays queued.
    let body = [7u8; 100];
    ipc::send(&OutMessage::new(5, n).with_body(&body), &mut buffer, None).map_err(err("send"))?;
    // SAFETY: the kernel writes at most 24 bytes.
    let r = unsafe { sys::mach_msg(buffer.0.as_mut_ptr(), options::RECEIVE, 0, 24, n, 0) };
    check!(
        decode(r.code) == Err(MsgReturn::RcvTooLarge) && r.value == 124,
        "small buffer: {:#x} {}",
        r.code,
        r.value
    );
    let m = ipc::receive(n, &mut buffer, Some(0)).map_err(err("receive after too large"))?;
    check!(
        m.body.len() == 100,
        "message changed: {} bytes",
        m.body.len()
    );
    // Receiving into read-only or unmapped memory fails cleanly (the message is discarded).
    static READ_ONLY: [u8; 256] = [0; 256];
    for (address, what) in [
        (READ_ONLY.as_ptr() as u64, "read-only"),
        (0x2000, "unmapped"),
    ] {
        ipc::send(&OutMessage::new(6, n), &mut buffer, None).map_err(err("send"))?;
        // SAFETY: the kernel checks the buffer before writing; it must refuse these.
        let r = unsafe { sys::mach_msg(address as *mut u8, options::RECEIVE, 0, 256, n, 0) };
        check!(
            decode(r.code) == Err(MsgReturn::RcvInvalidData),
            "{what} receive buffer: {:#x}",
            r.code
        );
    }
    // After all that, the port still works.
    ipc::send(&OutMessage::new(8, n).with_body(b"fine"), &mut buffer, None)
        .map_err(err("final send"))?;
    let m = ipc::receive(n, &mut buffer, Some(0)).map_err(err("final receive"))?;
    check!(
        m.id() == 8 && &m.body[..4] == b"fine",
        "final message wrong"
    );
    Ok(())
}

pub fn hostile_calls() -> Result<(), String> {
    // SAFETY: an unknown call number touches nothing.
    let r = unsafe { sys::syscall0(999) };
    check!(
        r.code == KernReturn::InvalidSyscall as u64,
        "call 999: {:#x}",
        r.code
    );
    // SAFETY: the kernel checks the length and address before reading.
    let r = unsafe { sys::syscall2(Syscall::DebugWrite as u64, 0x40_0000, 5000) };
    check!(
        r.into_result() == Err(KernReturn::InvalidArgument),
        "5000-byte console write"
    );
    // SAFETY: as above.
    let r = unsafe { sys::syscall2(Syscall::DebugWrite as u64, 0xffff_8000_0000_0000, 16) };
    check!(
        r.into_result() == Err(KernReturn::InvalidAddress),
        "console write from kernel memory"
    );
    // SAFETY: as above.
    let r = unsafe { sys::syscall2(Syscall::DebugWrite as u64, 0x3000, 16) };
    check!(
        r.into_result() == Err(KernReturn::InvalidAddress),
        "console write from unmapped memory"
    );
    check!(
        sys::port_deallocate(0xdead) == Err(KernReturn::InvalidName),
        "deallocate of an unheld name"
    );
    let port = ReceiveRight::allocate().map_err(err("allocate"))?;
    check!(
        sys::port_deallocate(port.name()) == Err(KernReturn::InvalidRight),
        "deallocate of a receive right"
    );
    // A send right whose receive right is elsewhere: a task port.
    let child =
        libipc::ipc::Task::spawn("ipc_test", None, crate::roles::EXIT).map_err(err("spawn"))?;
    let send_only = child.port();
    let own_send = port.make_send().map_err(err("make send"))?;
    check!(
        sys::port_allocate(7) == Err(KernReturn::InvalidValue),
        "port kind 7"
    );
    check!(
        sys::port_get_refs(port.name(), 9) == Err(KernReturn::InvalidValue),
        "right kind 9"
    );
    check!(
        sys::port_move(send_only.name(), 0) == Err(KernReturn::InvalidRight),
        "moving a send right into a set"
    );
    check!(
        sys::port_request_notification(port.name(), 12345, port.name())
            == Err(KernReturn::InvalidValue),
        "notification kind"
    );
    check!(
        sys::task_spawn("no-such-program", 0, 0) == Err(KernReturn::InvalidArgument),
        "spawn of a missing program"
    );
    // SAFETY: the kernel checks the name's length and address.
    let r = unsafe { sys::syscall4(Syscall::TaskSpawn as u64, 0x40_0000, 1000, 0, 0) };
    check!(
        r.into_result() == Err(KernReturn::InvalidArgument),
        "1000-byte program name"
    );
    // SAFETY: as above.
    let r = unsafe { sys::syscall4(Syscall::TaskSpawn as u64, 0xffff_ffff_8000_0000, 8, 0, 0) };
    check!(
        r.into_result() == Err(KernReturn::InvalidAddress),
        "program name in kernel memory"
    );
    check!(
        sys::task_spawn("ipc_test", 0xbad, 0) == Err(KernReturn::InvalidName),
        "spawn giving an unheld right"
    );
    check!(
        sys::task_wait(own_send.name()) == Err(KernReturn::InvalidRight),
        "wait on a non-task port"
    );
    check!(child.wait() == Ok(0), "the child did not exit cleanly");
    check!(
        sys::task_terminate(0x5151) == Err(KernReturn::InvalidName),
        "terminate an unheld name"
    );
    check!(
        sys::host_info(1000) == Err(KernReturn::InvalidArgument),
        "host info 1000"
    );
    Ok(())
}

/// The last page of user space, where a `syscall` in its last two bytes returns to the first
/// address past it: `USER_END`, a page below the canonical end, so still canonical.
const LAST_PAGE: u64 = USER_END - 4096;

/// A child that runs `syscall` (`host_info`) in the last two bytes of user space: its return
/// address is the first one past user space, unmapped but canonical (the page below `2^47`
/// is never user memory, so `sysret` is never given a non-canonical `rip`; on Intel's CPUs
/// that faults in the kernel, on the user's stack). The call is made, the child faults on
/// its return and ends as a faulting task; the kernel and this task go on. And no task can
/// map the page below the canonical end, which would let a `syscall` return past it.
pub fn a_system_call_at_the_top_of_user_space_ends_only_its_task() -> Result<(), String> {
    check!(
        sys::vm_allocate(CANONICAL_LOWER_END - 4096, 4096, 0) == Err(KernReturn::InvalidAddress),
        "the page below the canonical end ({:#x}) could be mapped",
        CANONICAL_LOWER_END - 4096
    );
    match sys::task_fork().map_err(err("fork"))? {
        sys::Forked::Child => {
            if sys::vm_allocate(LAST_PAGE, 4096, 0).is_err() {
                sys::task_exit(2);
            }
            let code = LAST_PAGE;
            // SAFETY: the page is this child's, mapped writable just now; nothing else uses it.
            let page = unsafe { core::slice::from_raw_parts_mut(code as *mut u8, 4096) };
            page.fill(0x90); // nop
                             // mov eax, HostInfo; xor edi, edi (selector 0), then nops up to the syscall that
                             // fills the page's last two bytes.
            let start = 4096 - 16;
            page[start] = 0xb8;
            page[start + 1..start + 5].copy_from_slice(&(Syscall::HostInfo as u32).to_le_bytes());
            page[start + 5] = 0x31;
            page[start + 6] = 0xff;
            page[4094] = 0x0f;
            page[4095] = 0x05;
            if sys::vm_protect(code, 4096, false, VM_PROT_READ | VM_PROT_EXECUTE).is_err() {
                sys::task_exit(3);
            }
            // SAFETY: the page holds the code just written, executable; it never returns (it
            // runs off the end of user space), and the child ends either way.
            let run: extern "C" fn() = unsafe { core::mem::transmute(code + start as u64) };
            run();
            sys::task_exit(4)
        }
        sys::Forked::Parent(child) => {
            let status = sys::task_wait(child).map_err(err("wait"))?;
            let _ = sys::port_deallocate(child);
            check!(
                status == u64::MAX,
                "the child that made a system call at the top of user space ended with {status}, \
                 not as a faulting task (2: it could not map the page)"
            );
            // And the kernel goes on: a system call answers.
            check!(
                sys::host_info(HOST_TASKS).is_ok(),
                "host_info failed after the child's end"
            );
            Ok(())
        }
    }
}

/// A system call made right after an exception taken in user mode (a page fault on a fresh
/// page, resolved) returns through `sysret` all the same: `rcx` then holds the address after
/// the `syscall`, as `sysret` leaves it. The syscall entry does not store the frame's vector
/// (the way back from the fault leaves it the syscall's); if that way back did not, the call
/// would return through `iretq` with the `rcx` the fault saved (a marker here).
pub fn a_system_call_after_a_fault_returns_through_sysret() -> Result<(), String> {
    const PAGES: u64 = 3;
    const MARKER: u64 = 0x5a5a_0000_1234;
    let base = sys::vm_allocate(0, PAGES * 4096, VM_ANYWHERE).map_err(err("vm_allocate"))?;
    for page in 0..PAGES {
        let target = base + page * 4096;
        let (code, rcx, after): (u64, u64, u64);
        // SAFETY: `target` is this task's fresh page, mapped writable (its first touch faults
        // it in); `host_info` touches no memory and the registers it changes are declared.
        unsafe {
            core::arch::asm!(
                "mov rcx, r8",
                "mov qword ptr [rsi], 1",
                "lea r9, [rip + 2f]",
                "syscall",
                "2:",
                in("r8") MARKER,
                in("rsi") target,
                out("r9") after,
                inlateout("rax") Syscall::HostInfo as u64 => code,
                in("rdi") HOST_TASKS,
                lateout("rdx") _,
                lateout("rcx") rcx,
                lateout("r11") _,
                options(nostack),
            );
        }
        check!(
            code == 0,
            "host_info after the fault on page {page}: code {code:#x}"
        );
        check!(
            rcx == after,
            "after a fault on page {page}, a system call came back with rcx {rcx:#x}, not the \
             return address {after:#x} (so not through sysret)"
        );
    }
    // SAFETY: the pages are this task's, mapped above, and nothing refers to them now.
    unsafe { sys::vm_deallocate(base, PAGES * 4096) }.map_err(err("vm_deallocate"))?;
    Ok(())
}

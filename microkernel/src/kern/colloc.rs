//! Running collocated servers: the servers linked in, starting one, running those with
//! messages waiting, and the kernel entry their system calls come through. Their state is
//! `colloc::Servers`, reached through its methods.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicPtr, Ordering};

use libipc::abi::message::Disposition;
use libipc::abi::message::{options, registers, MsgReturn, ReceivedRight, HEADER_SIZE};
use libipc::abi::syscall::VM_ANYWHERE_BASE;
use libipc::abi::KernReturn;
use libipc::hosted::{Answer, Hosted, PagerCall, Start};
use libipc::interface::direct::{Direct, Visit};
use libipc::interface::Served;
use libipc::rt::StartArgs;
use libipc::sys::SyscallResult;

use crate::arch::paging;
use crate::arch::recover::{self, Abandoned, Point};
use crate::ipc::message::CarriedRight;
use crate::ipc::port::{Port, PortId, Receiver};
use crate::ipc::space::{PortName, Rights};
use crate::kern::fast_path::{USUAL_CALL, USUAL_REPLY};
use crate::kern::kernel::Kernel;
use crate::kern::loader::Exit;
use crate::kern::memory::pager::EmmiCall;
use crate::kern::syscall::Caller;
use crate::kern::task::TaskId;
use crate::kern::thread::TaskRecord;
use crate::vm::address_space::MapCopy;

/// A collocated server, as the kernel holds it.
pub type Server = Box<dyn Hosted>;

/// The kernel's record of its collocated servers.
pub type KernelServers = crate::colloc::Servers<Server, TaskId, Caller, QueuedCall>;

/// A memory-object call of the kernel's queued for a collocated pager: made as a call of its
/// routine ([`Hosted::pager_call`]) when the pager next runs (at a point where the kernel is
/// between operations, as for a message: the answer changes the object whose operation
/// made the call).
pub struct QueuedCall {
    /// The port the call is on (the object's, or the default pager's for `create`).
    port: PortId,
    call: EmmiCall,
    /// The kernel port its answer comes to, with its one send-once right.
    reply: Option<PortId>,
}

/// The servers linked into this kernel, by the name `servers/boot.toml` starts them under.
const LINKED: &[(&str, Start)] = &[
    ("echo", echo::hosted),
    // A second instance: the peer of `echo`'s direct calls (`colloc_test`).
    ("echo.peer", echo::hosted),
    ("names", names::serve::hosted),
    ("zpager", zpager::pager::hosted),
    ("bootfs", bootfs::serve::hosted),
    ("default_pager", default_pager::serve::hosted),
];

/// The server running now: whose system calls `libipc_collocated_syscall` runs, whose name
/// a panic reports, and where its run is abandoned to when its own code fails.
struct Active {
    kernel: *mut Kernel,
    caller: Caller,
    name: &'static str,
    point: *const Point,
    /// In one of its system calls: a failure now is the kernel's, not the server's.
    in_kernel: bool,
}

impl Active {
    /// Server `caller`, `name`, about to run: its point not yet recorded, in its own code.
    fn new(kernel: &mut Kernel, caller: Caller, name: &'static str) -> Active {
        Active {
            kernel,
            caller,
            name,
            point: core::ptr::null(),
            in_kernel: false,
        }
    }
}

/// One kernel lock and one CPU: one chain of servers running at a time. Null when none.
static ACTIVE: AtomicPtr<Active> = AtomicPtr::new(core::ptr::null_mut());

/// Runs `f` (a server's code) as the server `caller`, `name`: its system calls reach
/// `kernel` through [`libipc_collocated_syscall`]. The kernel is not used here until `f`
/// returns, so the server's calls are its only users meanwhile. `Err` when the server's own
/// code failed (a panic or a fault outside its system calls, see [`abandon_failed_server`]):
/// then what `f` held is leaked, and the kernel is as the server's last call left it.
fn enter<R>(
    kernel: &mut Kernel,
    caller: Caller,
    name: &'static str,
    f: impl FnOnce() -> R,
) -> Result<R, Abandoned> {
    let has_memory = kernel
        .tasks
        .get(caller.task)
        .is_some_and(|t| !t.space.map().is_empty());
    enter_as(kernel, caller, name, has_memory, f)
}

/// [`enter`] when whether the server has memory of its own (a map not empty) is known: a
/// direct call's caller read it already.
#[inline(always)]
fn enter_as<R>(
    kernel: &mut Kernel,
    caller: Caller,
    name: &'static str,
    has_memory: bool,
    f: impl FnOnce() -> R,
) -> Result<R, Abandoned> {
    // While the server runs, the memory it takes is its own task's: the last free pages if
    // it is VM-privileged (a collocated default pager), whichever thread it runs on.
    let privileged = crate::vm::kernel_space::privileged();
    let server_privileged = kernel.memory_privileged(Some(caller.task));
    if server_privileged != privileged {
        crate::vm::kernel_space::set_privileged(server_privileged);
    }
    // The server's own memory (its map: what it allocated or received out of line) is
    // reachable while it runs: its tables are loaded whenever its map has anything (now, or
    // after the call that gave it memory: see `libipc_collocated_syscall`), and the tables
    // loaded before are loaded again after.
    let loaded = paging::loaded_root();
    let roots_freed = crate::vm::pmap::roots_freed();
    if has_memory {
        if let Some(t) = kernel.tasks.get(caller.task) {
            t.space.pmap().activate();
        }
    }
    let mut active = Active::new(kernel, caller, name);
    let active = core::ptr::addr_of_mut!(active);
    let previous = ACTIVE.swap(active, Ordering::Relaxed);
    let mut f = Some(f);
    let mut result = None;
    // The servers' own stack, unless one runs already (a direct call from a running server
    // shares the stack it is on).
    let stack = match previous.is_null() {
        true => crate::arch::entry::server_stack().1,
        false => 0,
    };
    // SAFETY: `active` lives until the end of this function; the point is recorded before
    // the server runs. The servers' stack is mapped (but its guard page), its top aligned,
    // and used by nothing else while no other server runs.
    let done = unsafe {
        recover::call(
            |point| (*active).point = point,
            stack,
            || {
                if let Some(f) = f.take() {
                    result = Some(f());
                }
            },
        )
    };
    ACTIVE.store(previous, Ordering::Relaxed);
    if server_privileged != privileged {
        crate::vm::kernel_space::set_privileged(privileged);
    }
    if paging::loaded_root() != loaded {
        // The tables loaded before the server ran are loaded again, unless a root was freed
        // meanwhile: what the server did may have ended the task whose tables they were (a
        // pager's error ends the tasks waiting for its page), and a freed root holds nothing,
        // not even the kernel half. Then the kernel's own tables are loaded instead: every
        // way back to user mode loads the tables of the thread it resumes, and a server
        // whose call this was faults its own tables in again (`resolve_server_fault`).
        let root = if crate::vm::pmap::roots_freed() == roots_freed {
            loaded
        } else {
            crate::vm::kernel_space::kernel_root()
        };
        // SAFETY: `root` is live (no root was freed since it was loaded) or the kernel's, and
        // the kernel half of every table is the kernel's.
        unsafe { paging::activate(root) };
    }
    match (done, result) {
        (Ok(()), Some(result)) => Ok(result),
        // (Abandoned, the closure's captures are leaked with the rest of the run.)
        _ => Err(Abandoned),
    }
}

/// A page fault in kernel mode at `address` (`error`: the exception's code): if a collocated
/// server's own code made it on its own memory (its map), resolves it as a task's fault is
/// resolved, and the instruction runs again (`true`). A page its pager must supply cannot be
/// waited for here: then, and for any other fault, `false` (the server fails).
pub fn resolve_server_fault(address: u64, error: u64) -> bool {
    let active = ACTIVE.load(Ordering::Relaxed);
    if active.is_null() || address >= libipc::abi::syscall::USER_END {
        return false;
    }
    // SAFETY: a non-null `ACTIVE` is the `Active` of an `enter` still on the stack.
    let active = unsafe { &*active };
    if active.in_kernel {
        return false;
    }
    // SAFETY: the server's own code is running (not one of its calls), so the `&mut Kernel`
    // that `enter` holds unused is in use nowhere: this is its only user until it returns.
    let kernel = unsafe { &mut *active.kernel };
    let access = crate::kern::entry::fault_access(error);
    let Kernel { tasks, vm, .. } = kernel;
    tasks.get_mut(active.caller.task).is_some_and(|t| {
        // (Loaded already, as its map is not empty; made sure of.)
        t.space.pmap().activate();
        t.space
            .resolve_fault(
                vm.objects_mut(),
                address & !(crate::vm::map::PAGE_SIZE - 1),
                access,
            )
            .is_ok()
    })
}

/// Called when kernel code fails (a panic, or an exception in kernel mode): if it is a
/// collocated server's own code (not a system call it made, where the kernel's state may
/// be half changed), reports the server by name and abandons its run: its task ends and
/// the kernel goes on. Returns otherwise (the kernel then stops).
pub fn abandon_failed_server(what: core::fmt::Arguments<'_>) {
    let active = ACTIVE.load(Ordering::Relaxed);
    if active.is_null() {
        return;
    }
    // SAFETY: a non-null `ACTIVE` is the `Active` of an `enter` still on the stack.
    let active = unsafe { &*active };
    let (name, point, in_kernel) = (active.name, active.point, active.in_kernel);
    if in_kernel || point.is_null() {
        return;
    }
    {
        // Dropped before the jump below, which runs no destructors: the console lock the
        // writer may hold goes first.
        let mut out = crate::kern::console::emergency();
        use core::fmt::Write;
        let _ = writeln!(
            out,
            "collocated server {name} failed: {what}; its task ends, the kernel goes on"
        );
    }
    // SAFETY: `point` is the recovery point of that `enter`, whose frame is below on this
    // stack; the frames between are the server's own code (not in a system call), which
    // holds nothing of the kernel's.
    unsafe { recover::abandon(point) }
}

/// The name of the collocated server running now, if any (for the panic report).
pub fn running_server() -> Option<&'static str> {
    let active = ACTIVE.load(Ordering::Relaxed);
    if active.is_null() {
        return None;
    }
    // SAFETY: a non-null `ACTIVE` points at the `Active` of an `enter` still on the stack
    // (it is reset before that frame goes).
    Some(unsafe { (*active).name })
}

/// Runs `f` on the kernel for the running server (as `caller`), marked as the kernel's work
/// meanwhile (a failure in it is the kernel's, not the server's); `None` when no server
/// runs.
#[inline(always)]
fn as_running_server<R>(f: impl FnOnce(&mut Kernel, Caller) -> R) -> Option<R> {
    let active = ACTIVE.load(Ordering::Relaxed);
    if active.is_null() {
        return None;
    }
    // SAFETY: `active` is the `Active` of the innermost `enter` on the stack; its kernel
    // pointer came from the `&mut Kernel` that `enter` holds unused until the server
    // returns, so this is the only reference in use.
    let (kernel, caller, outer) = unsafe {
        let outer = (*active).in_kernel;
        (*active).in_kernel = true;
        (&mut *(*active).kernel, (*active).caller, outer)
    };
    let result = f(kernel, caller);
    // SAFETY: as above; `active` is still that `Active`.
    unsafe { (*active).in_kernel = outer };
    Some(result)
}

/// The kernel entry of collocated servers' system calls (declared by `libipc`'s
/// `collocated` transport): the call, run as the running server's task.
#[no_mangle]
pub fn libipc_collocated_syscall(
    number: u64,
    arguments: [u64; 6],
    words: &mut [u64; 4],
) -> SyscallResult {
    let done = as_running_server(|kernel, caller| {
        let done =
            crate::kern::syscall::dispatch_collocated(kernel, caller, number, arguments, words);
        // Memory the call gave the server (allocated, or received out of line) is reachable
        // when its code runs again: its tables are loaded once its map has anything (else
        // an address of its map could reach whatever the tables loaded before map there).
        if let Some(t) = kernel.tasks.get(caller.task) {
            if !t.space.map().is_empty() {
                t.space.pmap().activate();
            }
        }
        done
    });
    // Server code run outside `enter` (an object dropped as its task ended): its calls have
    // no task to run as.
    let (code, value) = done.unwrap_or((KernReturn::InvalidSyscall as u64, 0));
    SyscallResult { code, value }
}

/// The kernel entry of collocated servers' direct calls (`libipc::interface::direct`,
/// declared by `libipc`'s `collocated` transport): the running server calls a routine of the
/// collocated server receiving on `port` (a send right of its own) as a typed call. The
/// callee runs as its own task, on the caller's thread and stack, with a recovery point of
/// its own: a failure of its code ends it, and the caller is told (`ServerFailed`). Not
/// taken (nothing happens, the caller sends a message instead) when the port is no
/// collocated server's, messages wait on it (a direct call would overtake them), or its
/// server runs now (a call back into the chain that runs).
#[no_mangle]
pub fn libipc_collocated_direct(port: u32, visit: &mut Visit<'_>) -> u32 {
    let result = as_running_server(|kernel, caller| direct_call(kernel, caller, port, visit));
    let result = result.unwrap_or(Direct::NotTaken);
    result as u32
}

/// [`libipc_collocated_direct`] as the kernel, for server `caller`.
#[inline(always)]
fn direct_call(kernel: &mut Kernel, caller: Caller, port: u32, visit: &mut Visit<'_>) -> Direct {
    let Some(t) = kernel.tasks.get(caller.task) else {
        return Direct::NotTaken;
    };
    let Some((destination, hint)) = t.ipc.port_and_hint_with(port, Rights::SEND) else {
        return Direct::NotTaken;
    };
    // The port through the hint kept beside the caller's name for it, as the IPC fast path
    // reaches it, or from the table (and a hint kept for the next call).
    let stamp = kernel.ipc.hint_stamp();
    let d: &Port = if hint.is_good(stamp) {
        // SAFETY: the hint is good at the current stamp, and nothing else refers to the
        // port here (this reference ends before the kernel is used again).
        unsafe { hint.port() }
    } else {
        let Some(d) = kernel.ipc.port_mut(destination) else {
            return Direct::NotTaken;
        };
        if let Some(hint) = crate::ipc::PortHint::of_destination(d, stamp) {
            t.ipc.set_hint(port, Rights::SEND, hint);
        }
        d
    };
    let Receiver::Task(server_task) = d.receiver else {
        return Direct::NotTaken;
    };
    if !d.messages.is_empty() {
        return Direct::NotTaken;
    }
    let Some((place, (mut server, callee, name, hint))) = kernel.colloc.take_for_call(server_task)
    else {
        return Direct::NotTaken;
    };
    // The server's name for its port: the last call's, checked, or looked up.
    let st = kernel
        .tasks
        .get(server_task)
        .expect("a server's task is live");
    let local = match hint {
        Some((p, n))
            if p == destination.to_raw()
                && st.ipc.port_with(n, Rights::RECEIVE) == Some(destination) =>
        {
            n
        }
        _ => {
            let n = st.ipc.name_of(destination).unwrap_or(0);
            kernel
                .colloc
                .note_call_port(server_task, destination.to_raw(), n);
            n
        }
    };
    let has_memory = !st.space.map().is_empty();
    let called = enter_as(kernel, callee, name, has_memory, || {
        server.direct(local, visit)
    });
    let Ok(called) = called else {
        end_failed(kernel, server_task, server, name);
        return Direct::ServerFailed;
    };
    if let Some(orphan) = kernel.colloc.put_back_at(place, server_task, server) {
        drop_server(orphan);
    }
    match called {
        true => Direct::Called,
        false => Direct::NotTaken,
    }
}

/// Forgets the collocated server of `task`, if it is one (its task is ending): its object
/// is dropped (unless it is running: then whoever runs it drops it), and the calls queued
/// for it are released unanswered (a return's pages go back to their object, a request's
/// waiters get an error).
pub fn forget_server(kernel: &mut Kernel, task: TaskId) {
    let Some((server, calls)) = kernel.colloc.remove(task) else {
        return;
    };
    if let Some(server) = server {
        drop_server(server);
    }
    for queued in calls {
        release_call(kernel, queued);
    }
}

/// Gives back what queued call `queued` carries, its reply right included: the kernel
/// takes the call as unanswered.
fn release_call(kernel: &mut Kernel, queued: QueuedCall) {
    queued.call.release(kernel);
    if let Some(reply) = queued.reply {
        kernel.release(CarriedRight::SendOnce(reply));
    }
}

/// The collocated pager that receives on pager port `port`, if one does and it takes
/// memory-object calls without a message ([`queue_pager_call`]).
#[inline(always)]
pub fn direct_pager(kernel: &Kernel, port: PortId) -> Option<TaskId> {
    if !kernel.colloc.any_takes_calls() {
        return None;
    }
    match kernel.ipc.port(port)?.receiver {
        Receiver::Task(task) if kernel.colloc.takes_calls(task) => Some(task),
        _ => None,
    }
}

/// Queues memory-object call `call` on pager port `port` (its answer to come to `reply`)
/// for `pager` ([`direct_pager`]: the collocated pager receiving on `port`); gives them
/// back, for a message, when there is no memory to queue it.
pub fn queue_pager_call(
    kernel: &mut Kernel,
    pager: TaskId,
    port: PortId,
    call: EmmiCall,
    reply: Option<PortId>,
) -> Result<(), (EmmiCall, Option<PortId>)> {
    kernel
        .colloc
        .queue_call(pager, QueuedCall { port, call, reply })
        .map_err(|queued| (queued.call, queued.reply))
}

/// Puts what queued call `queued` carries into the space (and map) of pager `task`, as
/// receiving its message would: the call as the pager's routine gets it, and its name for
/// the reply right (0: none). `None` when something could not be put there: then the call
/// is released unanswered (what was placed taken back), as a message the pager could not
/// receive whole is answered with an error.
fn place_call(kernel: &mut Kernel, task: TaskId, queued: QueuedCall) -> Option<(PagerCall, u32)> {
    let Some(on) = kernel
        .tasks
        .get(task)
        .and_then(|t| t.ipc.name_of(queued.port))
    else {
        release_call(kernel, queued);
        return None;
    };
    let QueuedCall { call, reply, .. } = queued;
    let reply = match reply {
        None => 0,
        Some(reply) => match place_rights(kernel, task, [CarriedRight::SendOnce(reply)]) {
            Some([name]) => name,
            // (The right was released: the call is unanswered.)
            None => {
                call.release(kernel);
                return None;
            }
        },
    };
    let abandon =
        |kernel: &mut Kernel| take_back(kernel, task, &[(reply, Disposition::MoveSendOnce)]);
    let placed = match call {
        EmmiCall::DataRequest {
            offset,
            length,
            access,
        } => PagerCall::DataRequest {
            object: on,
            offset,
            length,
            access,
        },
        EmmiCall::Terminate => PagerCall::Terminate { object: on },
        EmmiCall::Init { control, size } => {
            let Some([control]) = place_rights(kernel, task, [control]) else {
                abandon(kernel);
                return None;
            };
            PagerCall::Init {
                object: on,
                control,
                size,
            }
        }
        EmmiCall::DataReturn {
            offset,
            copy,
            dirty,
        } => {
            let Some(data) = place_memory(kernel, task, copy) else {
                abandon(kernel);
                return None;
            };
            PagerCall::DataReturn {
                object: on,
                offset,
                data,
                dirty,
            }
        }
        EmmiCall::Create {
            object,
            control,
            size,
        } => {
            let Some([object, control]) = place_rights(kernel, task, [object, control]) else {
                abandon(kernel);
                return None;
            };
            PagerCall::Create {
                pager: on,
                object,
                control,
                size,
            }
        }
        EmmiCall::CreateProgram {
            object,
            control,
            name,
            size,
            file,
        } => {
            let Some([object, control]) = place_rights(kernel, task, [object, control]) else {
                file.release(kernel.vm.objects_mut());
                abandon(kernel);
                return None;
            };
            let Some(file) = place_memory(kernel, task, file) else {
                let placed = [
                    (object, Disposition::MoveReceive),
                    (control, Disposition::MoveSend),
                ];
                take_back(kernel, task, &placed);
                abandon(kernel);
                return None;
            };
            PagerCall::CreateProgram {
                pager: on,
                object,
                control,
                name,
                size,
                file,
            }
        }
    };
    Some((placed, reply))
}

/// Puts `rights` into `task`'s space, in order: their names there. `None` when one cannot
/// be put there: then those placed are taken back and let go, as are the rest.
fn place_rights<const N: usize>(
    kernel: &mut Kernel,
    task: TaskId,
    rights: [CarriedRight; N],
) -> Option<[u32; N]> {
    let mut names = [0; N];
    for (i, &right) in rights.iter().enumerate() {
        match kernel.copyout(task, right) {
            Ok(name) => names[i] = name,
            // (`copyout` let go of this one.)
            Err(()) => {
                for &later in &rights[i + 1..] {
                    kernel.release(later);
                }
                for (&name, &right) in names[..i].iter().zip(&rights[..i]) {
                    take_back(kernel, task, &[(name, disposition(right))]);
                }
                return None;
            }
        }
    }
    Some(names)
}

/// Puts the pages of `copy` into `task`'s map: their address and length there. `None` (the
/// pages let go: a return's are the kernel's still, in transit) when there is no room.
fn place_memory(kernel: &mut Kernel, task: TaskId, copy: MapCopy) -> Option<(u64, u64)> {
    let length = copy.size;
    let placed = match kernel.tasks.get_mut(task) {
        Some(t) => t.space.copy_in_range(VM_ANYWHERE_BASE, copy),
        None => Err((copy, KernReturn::InvalidArgument)),
    };
    match placed {
        Ok(address) => Some((address, length)),
        Err((copy, _)) => {
            copy.release(kernel.vm.objects_mut());
            None
        }
    }
}

/// Takes the rights `names` (with the dispositions that move them) back out of `task`'s
/// space and lets them go (0: nothing).
fn take_back(kernel: &mut Kernel, task: TaskId, names: &[(u32, Disposition)]) {
    for &(name, disposition) in names {
        if name != 0 {
            if let Some(right) = kernel.copyin(task, name, disposition) {
                kernel.release(right);
            }
        }
    }
}

/// The disposition that moves `right` out of a space.
fn disposition(right: CarriedRight) -> Disposition {
    match right {
        CarriedRight::Receive(_) => Disposition::MoveReceive,
        CarriedRight::Send(_) => Disposition::MoveSend,
        CarriedRight::SendOnce(_) => Disposition::MoveSendOnce,
    }
}

/// Drops a server object outside any server's identity (its task is ending): the system
/// calls its drop makes are refused, and its rights go with its task's space.
pub fn drop_server(server: Server) {
    let previous = ACTIVE.swap(core::ptr::null_mut(), Ordering::Relaxed);
    drop(server);
    ACTIVE.store(previous, Ordering::Relaxed);
}

/// Whether a server of that name is linked into the kernel.
pub fn is_linked(name: &str) -> bool {
    LINKED.iter().any(|(linked, _)| *linked == name)
}

/// Starts the linked server `name` as a collocated task for `parent`, giving it a copy of
/// `give` (a send right of the parent's, or 0) and `argument`. Returns the parent's names
/// for a send right to the new task's port and, with `hand_service`, for one to the
/// server's service port (else 0: the server registers itself, as its program does).
pub fn spawn(
    kernel: &mut Kernel,
    parent: TaskId,
    name: &str,
    give: PortName,
    argument: u64,
    hand_service: bool,
) -> Result<(PortName, PortName), KernReturn> {
    let &(name, start) = LINKED
        .iter()
        .find(|(linked, _)| *linked == name)
        .ok_or(KernReturn::InvalidArgument)?;
    let give = match give {
        0 => None,
        name => Some(kernel.send_right_of(parent, name)?),
    };
    let caller = kernel.create_collocated_task(name)?;
    if kernel.colloc.add(name, caller.task, caller).is_err() {
        kernel.terminate_task(caller.task, Exit::Terminated(format_args!("no memory")));
        return Err(KernReturn::ResourceShortage);
    }
    let fail = |kernel: &mut Kernel, error: KernReturn| {
        kernel.terminate_task(
            caller.task,
            Exit::Terminated(format_args!("its start failed: {error}")),
        );
        Err(error)
    };
    let given = match give {
        None => 0,
        Some(port) => {
            if let Some(p) = kernel.ipc.port_mut(port) {
                p.send_rights += 1;
            }
            match kernel.copyout(caller.task, CarriedRight::Send(port)) {
                Ok(name) => name,
                Err(()) => return fail(kernel, KernReturn::ResourceShortage),
            }
        }
    };
    // Third, the device master port: a collocated server is kernel code, as trusted as the
    // drivers (the disk pager opens its disk through it).
    let master = match kernel.device_master_right() {
        Some(right) => match kernel.copyout(caller.task, right) {
            Ok(name) => name,
            Err(()) => return fail(kernel, KernReturn::ResourceShortage),
        },
        None => 0,
    };
    let args = StartArgs::new(u64::from(given), argument, u64::from(master));
    let started = match enter(kernel, caller, name, || start(args)) {
        Ok(Ok(started)) => started,
        Ok(Err(error)) => return fail(kernel, error),
        Err(Abandoned) => return fail(kernel, KernReturn::Failure),
    };
    let service = if hand_service {
        match kernel.move_send_right(caller.task, started.service, parent) {
            Ok(service) => service,
            Err(error) => {
                drop_server(started.server);
                return fail(kernel, error);
            }
        }
    } else {
        kernel.drop_send_right(caller.task, started.service);
        0
    };
    let task_port = match kernel.make_task_port(parent, caller.task) {
        Ok(port) => port,
        Err(error) => {
            drop_server(started.server);
            return fail(kernel, error);
        }
    };
    let takes_calls = started.server.takes_pager_calls();
    kernel
        .colloc
        .started(caller.task, started.server, takes_calls);
    log::info!("colloc: {name} runs collocated in the kernel");
    Ok((task_port, service))
}

/// Runs every collocated server that has messages waiting, until none has (a server's sends
/// may give another, or itself, more). A server that stops, or whose port fails, ends with
/// its task.
pub fn run_pending(kernel: &mut Kernel) {
    while let Some((mut server, task, caller, name)) = kernel.colloc.take_pending() {
        // The kernel takes each message for the server itself (no receive call of the
        // server's) and hands it over, until none is left; then it makes the calls queued
        // for it (after the messages, which were mostly sent earlier: none of them waits
        // behind a stream of the kernel's calls).
        let (buffer, limit, from) = server.inbox();
        let served = loop {
            let size = match kernel.receive_now(task, from, buffer as u64, limit as u64) {
                Ok(size) => (size, false),
                // Delivered all the same, with a right missing: served as such.
                Err(MsgReturn::RcvBodyError) => (delivered_size(buffer), true),
                Err(MsgReturn::RcvTimedOut) => break Ok(Ok(Served::Idle)),
                Err(error) => break Ok(Err(error)),
            };
            match enter(kernel, caller, name, || {
                server.dispatch_delivered(size.0, size.1)
            }) {
                Ok(Served::Idle) => continue,
                Ok(Served::Stopped) => break Ok(Ok(Served::Stopped)),
                Err(Abandoned) => break Err(Abandoned),
            }
        };
        let served = match served {
            Ok(Ok(Served::Idle)) => make_calls(kernel, &mut server, task, caller, name),
            other => other,
        };
        let Ok(served) = served else {
            end_failed(kernel, task, server, name);
            continue;
        };
        if let Some(orphan) = kernel.colloc.put_back(task, server) {
            drop_server(orphan);
            continue;
        }
        match served {
            Ok(Served::Idle) => {}
            Ok(Served::Stopped) => {
                kernel.terminate_task(task, Exit::Status(0));
            }
            Err(error) => {
                kernel.terminate_task(
                    task,
                    Exit::Fault(format_args!(
                        "collocated server {name} cannot receive: {error:?}"
                    )),
                );
            }
        }
    }
}

/// Makes the calls queued for pager `server` (of `task`, running as `caller`, `name`), each
/// as a call of its routine, until none is left. `Err` when the server's own code failed.
fn make_calls(
    kernel: &mut Kernel,
    server: &mut Server,
    task: TaskId,
    caller: Caller,
    name: &'static str,
) -> Result<Result<Served, MsgReturn>, Abandoned> {
    while let Some(queued) = kernel.colloc.take_call(task) {
        let Some((call, reply)) = place_call(kernel, task, queued) else {
            continue;
        };
        enter(kernel, caller, name, || server.pager_call(call, reply))?;
    }
    Ok(Ok(Served::Idle))
}

/// Ends collocated server `name` (of `task`, taken out as `server`) whose own code failed:
/// its state is whatever the failure left, so it is leaked, not dropped. Its task ends: its
/// ports die, so its callers (the one it was serving, whose reply right it held, and those
/// queued) get errors.
fn end_failed(kernel: &mut Kernel, task: TaskId, server: Server, name: &str) {
    if let Some(server) = kernel.colloc.put_back(task, server) {
        core::mem::forget(server);
    }
    if let Some((server, calls)) = kernel.colloc.remove(task) {
        core::mem::forget(server);
        for queued in calls {
            release_call(kernel, queued);
        }
    }
    kernel.terminate_task(
        task,
        Exit::Fault(format_args!("collocated server {name} failed")),
    );
}

/// The size of the message a receive left in `buffer` (its header's), for one delivered
/// with a right missing.
fn delivered_size(buffer: *mut u8) -> usize {
    let mut header = [0u8; HEADER_SIZE];
    // SAFETY: the buffer is the server's inbox, at least a header long, which the kernel
    // just wrote a message into.
    unsafe { core::ptr::copy_nonoverlapping(buffer, header.as_mut_ptr(), HEADER_SIZE) };
    libipc::abi::message::MessageHeader::from_bytes(&header).size as usize
}

/// What [`short_circuit`] did with a `mach_msg`.
pub enum ShortCircuit {
    /// Not a call it takes: the general path runs it (nothing changed).
    NotTaken,
    /// Done: the reply, as the caller's receive in registers gets it (`r12`..`r15`, and
    /// its size for `rdx`, `IN_REGISTERS` set); `rax` is `Success`.
    Replied([u64; 4], u64),
    /// The request was served, but its reply went elsewhere (kept for later, or sent through
    /// the kernel): the caller goes on to its receive.
    Sent,
}

/// The short circuit of a call to a collocated server: a `mach_msg` (arguments `a`) of the
/// task whose record is `sender`, that sends a
/// short request in registers (`words`) to an idle collocated server, with a send-once reply
/// right made from the port it then receives on, is served by calling the server at once: no
/// message is queued or copied, and a short reply comes back in the caller's registers
/// without ever being queued either. Every condition is checked before anything changes;
/// anything else is the general path's.
///
/// # Safety
/// `sender` must be the record of the caller's live task, not otherwise in use.
#[inline(always)]
pub unsafe fn short_circuit(
    kernel: &mut Kernel,
    sender: TaskRecord,
    a: [u64; 6],
    words: [u64; 4],
) -> ShortCircuit {
    use ShortCircuit::NotTaken;
    let [_, option, send_size, _, receive_name, _] = a;
    const CALL: u64 =
        options::SEND | options::RECEIVE | options::SEND_REGISTERS | options::RECEIVE_REGISTERS;
    let size = send_size as usize;
    if option & !options::RECEIVE_TIMEOUT != CALL
        || !(HEADER_SIZE..=registers::MAX_SIZE).contains(&size)
        || !size.is_multiple_of(4)
    {
        return NotTaken;
    }
    let header = registers::header(&words, send_size as u32);
    let receive_name = receive_name as PortName;
    if header.bits != USUAL_CALL || header.local_port != receive_name {
        return NotTaken;
    }
    // The caller's names: the server's port, and its own (where the reply comes).
    // SAFETY: per the contract; the reference is not used past these lookups.
    let space = unsafe { &sender.get().ipc };
    let (Some(destination), Some(own)) = (
        space.port_with(header.remote_port, Rights::SEND),
        space.port_with(receive_name, Rights::RECEIVE),
    ) else {
        return NotTaken;
    };
    let Some(d) = kernel.ipc.port(destination) else {
        return NotTaken;
    };
    let Receiver::Task(server_task) = d.receiver else {
        return NotTaken;
    };
    if !d.messages.is_empty() || destination == own {
        return NotTaken;
    }
    match kernel.ipc.port(own) {
        Some(o) if o.messages.is_empty() => {}
        _ => return NotTaken,
    }
    // The server: idle, so the call is served in order (and another task's: a server's
    // own calls are never short-circuited, as it is running).
    let Some((mut server, caller, name, hint)) = kernel.colloc.take_idle(server_task) else {
        return NotTaken;
    };
    // Commit: the reply right goes into the server's space, the request as its receive in
    // registers would see it.
    let st = kernel
        .tasks
        .get_mut(server_task)
        .expect("a server's task is live");
    let (local, noted) = match hint {
        Some((port, name))
            if port == destination.to_raw()
                && st.ipc.port_with(name, Rights::RECEIVE) == Some(destination) =>
        {
            (name, true)
        }
        _ => (st.ipc.name_of(destination).unwrap_or(0), false),
    };
    let Ok(reply) = st.ipc.insert_send_once(own) else {
        kernel.colloc.put_back(server_task, server);
        return NotTaken;
    };
    if !noted {
        kernel
            .colloc
            .note_call_port(server_task, destination.to_raw(), local);
    }
    if let Some(o) = kernel.ipc.port_mut(own) {
        o.send_once_rights += 1;
    }
    let request = [
        u64::from(ReceivedRight::SendOnce as u32) | (words[0] & !0xffff_ffff),
        u64::from(reply) | u64::from(local) << 32,
        words[2],
        words[3],
    ];
    let answer = enter(kernel, caller, name, || {
        server.call_in_registers(request, size)
    });
    let Ok(answer) = answer else {
        // (The reply right goes with its task: the caller's receive gets the send-once
        // notification.)
        end_failed(kernel, server_task, server, name);
        return ShortCircuit::Sent;
    };
    if let Some(orphan) = kernel.colloc.put_back(server_task, server) {
        drop_server(orphan);
    }
    let result = match answer {
        Answer::Reply(reply_words, reply_size) => {
            let out = registers::header(&reply_words, reply_size as u32);
            let taken = kernel.tasks.get_mut(server_task).and_then(|st| {
                // The reply slot's, unless it was taken by a reply kept for later.
                st.ipc
                    .take_reply(reply)
                    .or_else(|| st.ipc.take_send_once(reply).ok())
            });
            if out.bits != USUAL_REPLY || out.remote_port != reply || taken != Some(own) {
                // Not the reply to this call after all (the server's bug): it is dropped, and
                // the reply right with it, so the caller's receive gets the send-once
                // notification rather than waiting for ever.
                log::warn!("collocated server {name} answered a call with a stray reply");
                if let Some(port) = taken {
                    kernel.release(CarriedRight::SendOnce(port));
                }
                return ShortCircuit::Sent;
            }
            if let Some(o) = kernel.ipc.port_mut(own) {
                o.send_once_rights -= 1;
            }
            // The reply as the caller's receive in registers sees it: no reply right, its
            // own port as the local one.
            ShortCircuit::Replied(
                [
                    reply_words[0] & !0xffff_ffff,
                    u64::from(receive_name) << 32,
                    reply_words[2],
                    reply_words[3],
                ],
                reply_size as u64 | registers::IN_REGISTERS,
            )
        }
        Answer::Elsewhere => ShortCircuit::Sent,
        Answer::Stopped => {
            kernel.terminate_task(server_task, Exit::Status(0));
            ShortCircuit::Sent
        }
    };
    if kernel.colloc.any_pending() {
        run_pending(kernel);
    }
    result
}

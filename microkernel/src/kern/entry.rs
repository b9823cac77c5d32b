//! Entries from user mode: system calls, and interrupts and exceptions taken in user mode.
//! Each takes the kernel lock, does its work, and ends in the dispatcher: none returns. And
//! what a trap in kernel mode means ([`trap_in_kernel`]): `arch` comes up only through here
//! (and the start-up entries in `startup`).

use super::kernel::{Kernel, KernelGuard, KERNEL};
use super::{sched, syscall};
use crate::arch::trap::{self, TrapFrame};
use crate::arch::{apic, percpu};
use crate::vm::address_space::FaultError;
use crate::vm::map::Protection;
use core::sync::atomic::{AtomicU64, Ordering};
use libipc::abi::report::ExitCode;

/// Called by the syscall entry with the running thread's saved registers, and three of the
/// user registers as they came (the entry changes none of them): `mach_msg`'s options, send
/// size and receive name, for the fast path to test without loading them again (`_rcx` is
/// the return address `syscall` left there, not an argument).
///
/// # Safety
/// Only the syscall entry calls this, with `frame` pointing at the running thread's frame,
/// where it just saved the registers, and `rsi`, `rdx` and `r8` as saved there.
pub unsafe extern "C" fn syscall_from_user(
    frame: *mut TrapFrame,
    rsi: u64,
    rdx: u64,
    _rcx: u64,
    r8: u64,
) -> ! {
    // The lock is usually free on entry: tried once first, so that the usual case runs
    // straight through rather than through the retry loop.
    let (mut guard, registers) = match KERNEL.try_lock() {
        Some(guard) => (guard, [rsi, rdx, r8]),
        // The three registers read again from the frame after the wait, so that they need
        // not be kept across it (which would store them on every call).
        // SAFETY: per the contract, the running thread's frame.
        None => (lock_contended(), unsafe {
            [(*frame).rsi, (*frame).rdx, (*frame).r8]
        }),
    };
    debug_assert!(guard.is_some());
    // SAFETY: a system call comes from a user thread, and user threads exist only once
    // start-up has set the kernel state, which is never taken away again.
    let kernel = unsafe { guard.as_mut().unwrap_unchecked() };
    // (The fast path notes the caller's privilege itself, where it may need a page.)
    // SAFETY: per the contract: the entry saved the registers into the running thread's frame
    // (the per-CPU frame end `return_to_user` set when it resumed that thread).
    if let Some(handoff) = unsafe { kernel.syscall_fast_path(frame, registers) } {
        if kernel.way_out_work() {
            // Pagers to reap, pageout wanted, threads waiting for memory: `run` does that
            // first, as after any other call (the receiver is current: it runs next).
            sched::run(guard)
        }
        sched::resume_handoff::<true>(guard, handoff)
    }
    if !kernel.colloc.is_empty() {
        // SAFETY: as for the fast path: the frame the entry passed, found again where it
        // is kept (so that `frame` need not live across the fast path).
        if let Some(handoff) = unsafe { kernel.collocated_fast_path(trap::running_frame()) } {
            if kernel.way_out_work() {
                sched::run(guard)
            }
            sched::resume_handoff::<false>(guard, handoff)
        }
    }
    note_privilege(kernel);
    syscall::dispatch(kernel);
    sched::run(guard)
}

/// Waits for the kernel lock in a system call's entry (out of line: the entry usually finds
/// it free). The CPU holding it may have taken this CPU's thread meanwhile (`tlb::stop`,
/// served while waiting): the call then does not run, and the dispatcher picks what runs.
#[cold]
#[inline(never)]
fn lock_contended() -> KernelGuard {
    let guard = lock_kernel(true, true);
    if guard.as_ref().is_some_and(|k| k.current().is_none()) {
        sched::run(guard)
    }
    guard
}

/// Takes the kernel lock, serving this CPU's cross-CPU requests while another CPU holds it
/// (`in_syscall`: this CPU waits in a system call's entry). Every CPU waits for the lock
/// through this, so a CPU holding it that asks the others for something gets an answer.
/// After a short spin the CPU halts until the holder leaves, unless `!may_sleep`: an
/// interrupt's entry, whose vector is still in service (acknowledged once the lock is
/// held), so that no interrupt of its priority or below could wake it.
#[inline(never)]
pub fn lock_kernel(in_syscall: bool, may_sleep: bool) -> KernelGuard {
    if let Some(guard) = KERNEL.try_lock() {
        return guard;
    }
    let from = crate::arch::rdtsc();
    let mut spun_from = from;
    let spin_cycles = (crate::arch::apic::tsc_hz() / SPINS_PER_SECOND).max(MIN_SPIN_CYCLES);
    let guard = loop {
        crate::arch::tlb::serve(in_syscall);
        core::hint::spin_loop();
        if let Some(guard) = KERNEL.try_lock() {
            break guard;
        }
        if may_sleep && crate::arch::rdtsc().saturating_sub(spun_from) > spin_cycles {
            if let Some(guard) = sleep_for_lock() {
                break guard;
            }
            spun_from = crate::arch::rdtsc();
        }
    };
    LOCK_WAITS.fetch_add(1, Ordering::Relaxed);
    LOCK_WAIT_CYCLES.fetch_add(crate::arch::rdtsc().saturating_sub(from), Ordering::Relaxed);
    guard
}

/// A waiter spins for the lock this long (a 20,000th of a second) before it halts.
const SPINS_PER_SECOND: u64 = 20_000;
const MIN_SPIN_CYCLES: u64 = 50_000;

/// CPUs halted waiting for the kernel lock, a bit each: the CPU leaving the kernel wakes one
/// (`wake_a_lock_sleeper`). On a host with fewer cores than the guest has CPUs, a spinning
/// waiter would hold a host core while the host has descheduled the lock's holder.
static LOCK_SLEEPERS: AtomicU64 = AtomicU64::new(0);

/// Halts this CPU until the lock's holder leaves (or any interrupt comes), having said so
/// in [`LOCK_SLEEPERS`]; the lock if it was free after all. Interrupts are taken while it
/// halts (`trap_in_kernel`: the timer, devices; a cross-CPU request is served by the loop
/// after, which knows how this CPU entered).
#[cold]
fn sleep_for_lock() -> Option<KernelGuard> {
    let bit = 1u64 << (percpu::current().index() % 64);
    LOCK_SLEEPERS.fetch_or(bit, Ordering::SeqCst);
    // The holder may have left between the last try and the mark: try once more.
    if let Some(guard) = KERNEL.try_lock() {
        LOCK_SLEEPERS.fetch_and(!bit, Ordering::SeqCst);
        return Some(guard);
    }
    crate::arch::wait_for_interrupt();
    x86_64::instructions::interrupts::disable();
    LOCK_SLEEPERS.fetch_and(!bit, Ordering::SeqCst);
    None
}

/// Wakes one CPU halted waiting for the kernel lock, if there is one (the caller has just
/// let the lock go).
#[inline(always)]
pub fn wake_a_lock_sleeper() {
    let sleepers = LOCK_SLEEPERS.load(Ordering::Relaxed);
    if sleepers != 0 {
        wake_one_of(sleepers);
    }
}

#[cold]
#[inline(never)]
fn wake_one_of(sleepers: u64) {
    let index = sleepers.trailing_zeros() as usize;
    if LOCK_SLEEPERS.fetch_and(!(1 << index), Ordering::SeqCst) & (1 << index) != 0 {
        if let Some(cpu) = percpu::cpu(index) {
            apic::send_ipi(cpu.apic_id(), crate::arch::tlb::CROSS_CALL_VECTOR);
        }
    }
}

/// Times a CPU found the kernel lock held and waited for it, since start-up ...
pub static LOCK_WAITS: AtomicU64 = AtomicU64::new(0);
/// ... and the time-stamp counter cycles it waited, all CPUs together: the lock's
/// contention (`HOST_LOCK_WAITS`, `HOST_LOCK_WAIT_CYCLES`).
pub static LOCK_WAIT_CYCLES: AtomicU64 = AtomicU64::new(0);

/// Called by the trap entry for an interrupt or exception taken in user mode. `frame` is the
/// running thread's frame, except for vectors with their own stack (NMI, double fault,
/// machine check), whose frame is copied into the thread.
///
/// # Safety
/// Only the trap entry calls this, with `frame` pointing at the registers it just saved.
pub unsafe extern "C" fn trap_from_user(frame: *mut TrapFrame) -> ! {
    // SAFETY: per the contract the entry just saved the registers in `frame`, which stays
    // valid until this CPU answers a `tlb::stop` (inside `lock_kernel`, below).
    let entered_for = unsafe { (*frame).vector };
    // An exception may wait halted for the lock; an interrupt (in service until it is
    // acknowledged, under the lock) spins.
    let mut guard = lock_kernel(false, entered_for < 32);
    let kernel = guard.as_mut().expect("kernel state");
    note_privilege(kernel);
    let Some(current) = kernel.current() else {
        // Another CPU took this CPU's thread while it waited for the lock (`tlb::stop`): the
        // thread's registers are saved (or it is gone, and `frame` with it), and the trap is
        // no longer its business. An interrupt is still acknowledged.
        let vector = entered_for;
        if trap::is_timer(vector) {
            timer_tick();
        } else if vector >= 32 {
            acknowledge_other_interrupt(vector);
        }
        sched::run(guard)
    };
    let thread = kernel.threads.get_mut(current).expect("running thread");
    if !core::ptr::eq(frame, &thread.frame) {
        // SAFETY: per the contract, `frame` is the register frame the trap entry just pushed
        // on an interrupt stack; it is valid, initialised, and distinct from the thread's.
        thread.frame = unsafe { (*frame).clone() };
    }
    let vector = thread.frame.vector;
    if trap::is_timer(vector) {
        timer_tick();
        kernel.tick();
    } else if vector == 14 {
        page_fault(kernel);
    } else if vector < 32 {
        let (mnemonic, name) = trap::exception_name(vector);
        let rip = thread.frame.rip;
        let error = thread.frame.error_code;
        let task = thread.task;
        kernel.terminate_task(
            task,
            super::loader::Exit::Fault(format_args!(
                "{mnemonic} {name} at rip={rip:#x} (error code {error:#x})"
            )),
        );
    } else {
        acknowledge_other_interrupt(vector);
    }
    sched::run(guard)
}

/// Marks whether the task that entered the kernel is VM-privileged for memory
/// ([`Kernel::memory_privileged`]): it may take the last free pages.
#[inline(always)]
pub(crate) fn note_privilege(kernel: &Kernel) {
    if kernel.vm.has_default_pager() {
        let task = kernel
            .current()
            .and_then(|t| kernel.threads.get(t))
            .map(|t| t.task);
        crate::vm::kernel_space::set_privileged(kernel.memory_privileged(task));
    }
}

fn page_fault(kernel: &mut Kernel) {
    let address = trap::read_cr2();
    let current = kernel.current().expect("running thread");
    let thread = kernel.threads.get(current).expect("running thread");
    let error = thread.frame.error_code;
    let (task_id, rip) = (thread.task, thread.frame.rip);
    let access = fault_access(error);
    let task = kernel.tasks.get_mut(task_id).expect("thread's task");
    let mut outcome = task
        .space
        .resolve_fault(kernel.vm.objects_mut(), address, access)
        .map(drop);
    let resume = crate::kern::memory::pager::Resume::Fault { address };
    if let Err(FaultError::Absent {
        object,
        offset,
        strategy,
    }) = outcome
    {
        // The thread waits for the pager without a kernel stack; the instruction runs again.
        outcome = kernel.wait_for_page(current, object, offset, strategy, access, resume);
    }
    if outcome == Err(FaultError::OutOfMemory) && kernel.wait_for_memory(current, resume) {
        // It faults again once the pageout daemon has freed pages.
        outcome = Ok(());
    }
    match outcome {
        // The faulting instruction runs again when the thread resumes.
        Ok(()) => {}
        Err(why) => kernel.terminate_task(
            task_id,
            super::loader::Exit::Fault(format_args!(
                "#PF page fault: {} of {address:#x} at rip={rip:#x}: {why}",
                match access {
                    Protection::EXECUTE => "instruction fetch",
                    Protection::WRITE => "write",
                    _ => "read",
                }
            )),
        ),
    }
}

/// Called by the trap dispatcher for a trap taken in kernel mode: the idle loop's interrupts,
/// a collocated server's faults, and faults of the kernel's own, which are fatal.
pub fn trap_in_kernel(frame: &mut TrapFrame) {
    match frame.vector {
        // A collocated server touching its own memory for the first time (or after a fork
        // made it copy-on-write): resolved as a task's fault, and the instruction runs again.
        14 if frame.cs & 3 == 0
            && crate::kern::colloc::resolve_server_fault(trap::read_cr2(), frame.error_code) => {}
        v if v < 32 => fatal_exception(frame),
        v if trap::is_timer(v) => {
            timer_tick();
            // Only the idle loop takes interrupts in kernel mode, and it holds no lock (another
            // CPU may).
            if let Some(mut kernel) = KERNEL.try_lock() {
                if let Some(kernel) = kernel.as_mut() {
                    kernel.expire_timeouts(percpu::ticks());
                }
            }
        }
        v if v == u64::from(trap::DEVICE_VECTOR) => device_interrupt(),
        v if v == u64::from(crate::arch::tlb::CROSS_CALL_VECTOR) => {
            // A request, or a wake-up. Interrupts come in kernel mode only where the CPU
            // halts (idle, or waiting for the lock), and each goes on to wait for the lock,
            // which serves the request knowing how the CPU entered.
            apic::end_of_interrupt();
        }
        v => {
            log::warn!("unexpected interrupt vector {v:#x}");
            apic::end_of_interrupt();
        }
    }
}

/// The access a page fault's error code says was refused.
pub fn fault_access(error: u64) -> Protection {
    if error & 16 != 0 {
        Protection::EXECUTE
    } else if error & 2 != 0 {
        Protection::WRITE
    } else {
        Protection::READ
    }
}

/// Handles an interrupt taken in user mode that is not the kernel's business beyond
/// acknowledging it (spurious, legacy, devices); true if it was one.
fn acknowledge_other_interrupt(vector: u64) -> bool {
    match vector {
        v if trap::is_spurious(v) => true,
        v if v == u64::from(trap::DEVICE_VECTOR) => {
            device_interrupt();
            true
        }
        v if v == u64::from(crate::arch::tlb::CROSS_CALL_VECTOR) => {
            apic::end_of_interrupt();
            true
        }
        v if (32..256).contains(&v) && !trap::is_timer(v) => {
            log::warn!("unexpected interrupt vector {v:#x}");
            apic::end_of_interrupt();
            true
        }
        _ => false,
    }
}

/// A device finished transfers: the kernel replies to them on its way out (`sched::run`).
fn device_interrupt() {
    crate::vm::kernel_space::want_device_work();
    apic::end_of_interrupt();
}

/// Counts a timer tick, notes console input and polled devices' work, and acknowledges the
/// interrupt.
fn timer_tick() {
    let cpu = percpu::current();
    cpu.tick();
    if cpu.index() != 0 {
        // The boot CPU polls for everyone.
        apic::end_of_interrupt();
        return;
    }
    if super::console::poll_input() {
        crate::vm::kernel_space::want_console_input();
    }
    if crate::device::polled() {
        crate::vm::kernel_space::want_device_work();
    }
    apic::end_of_interrupt();
}

/// A CPU exception in kernel mode: reported with every register, and the kernel ends with
/// [`ExitCode::Panic`], unless it was a collocated server's, which ends only its task.
fn fatal_exception(frame: &TrapFrame) -> ! {
    {
        // Dropped before a collocated server's recovery, which jumps away without running
        // destructors: the console lock the writer may hold goes first.
        let mut out = super::console::emergency();
        trap::describe_exception(frame, &mut out);
    }
    if frame.cs & 3 == 0 {
        let (mnemonic, name) = trap::exception_name(frame.vector);
        // A collocated server's own fault ends its task, not the kernel.
        crate::kern::colloc::abandon_failed_server(format_args!(
            "exception {mnemonic} {name} at rip {:#x}",
            frame.rip
        ));
    }
    use core::fmt::Write;
    let _ = writeln!(
        super::console::emergency(),
        "kernel stopped: fatal exception"
    );
    crate::arch::exit_qemu(ExitCode::Panic)
}

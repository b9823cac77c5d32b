//! Other CPUs' translations and threads: TLB shootdown, and stopping a CPU's user thread.
//!
//! Each CPU records the page-table root it has loaded (`PerCpu::loaded_root`). The kernel
//! uses no PCIDs, so a CPU's TLB holds translations of that root alone (and the kernel's,
//! which are global): a change to a task's tables concerns only the CPUs that have its root
//! loaded now. The CPU making the change posts a request in each such CPU's mailbox, sends it
//! [`CROSS_CALL_VECTOR`], and waits until it is done. A CPU serves its mailbox whenever it
//! waits for the kernel lock, when the interrupt reaches it idle, and while it waits to post
//! requests itself; a CPU in user mode is interrupted, enters the kernel and waits for the
//! lock (held by the poster), so it serves there, its registers saved. That last property is
//! also what [`stop`] uses: once a CPU answers, it has left its user thread.
//!
//! With one CPU online every function here is the local flush alone.

use super::percpu::{self, PerCpu};
use core::sync::atomic::{AtomicU64, Ordering};

/// Vector of the cross-CPU request interrupt.
pub const CROSS_CALL_VECTOR: u8 = 0xf0;

/// What a request asks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u64)]
enum Request {
    /// Drop the translation of `address` if `root` is loaded.
    FlushPage = 1,
    /// Drop every translation if `root` is loaded (its tables were freed or rebuilt).
    FlushSpace = 2,
    /// Load the kernel's own tables if `root` is loaded (it is about to be freed).
    LeaveSpace = 3,
    /// Drop the translation of `address` whatever is loaded: a kernel page (global), or a
    /// page of a page table several tasks' tables share.
    FlushKernelPage = 4,
    /// Nothing but answer: the CPU has left user mode.
    Stop = 5,
}

/// The kernel's own page-table root (for [`Request::LeaveSpace`]).
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

/// Serialises posters: one request in flight at a time, whoever posts it.
static POSTING: spin::Mutex<()> = spin::Mutex::new(());

/// Requests posted and interrupts sent (for reports and the shootdown benchmark).
static SENT: AtomicU64 = AtomicU64::new(0);

/// Notes the kernel's root, loaded by a CPU told to leave a task's tables.
pub fn init(kernel_root: u64) {
    KERNEL_ROOT.store(kernel_root, Ordering::Relaxed);
}

/// Cross-CPU requests made since start-up.
pub fn requests_sent() -> u64 {
    SENT.load(Ordering::Relaxed)
}

fn invalidate(address: u64) {
    x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(address));
}

fn reload() {
    let root = super::paging::loaded_root();
    // SAFETY: reloading the same root keeps every mapping; it only drops the TLB's copies.
    unsafe { super::paging::activate(root) };
}

/// Drops the translation of user `address` in the tables at `root`, here and on every other
/// CPU that has them loaded.
#[inline]
pub fn flush_page(root: u64, address: u64) {
    invalidate(address);
    if percpu::online() > 1 {
        post_where_loaded(Request::FlushPage, root, address);
    }
}

/// Drops every translation of the tables at `root` (their lower half was freed or rebuilt),
/// here and on every other CPU that has them loaded.
pub fn flush_space(root: u64) {
    if super::paging::loaded_root() == root {
        reload();
    }
    if percpu::online() > 1 {
        post_where_loaded(Request::FlushSpace, root, 0);
    }
}

/// Makes every CPU that has the tables at `root` loaded (this one too) load the kernel's own
/// instead: `root` is about to be freed.
pub fn leave_space(root: u64) {
    if super::paging::loaded_root() == root {
        // SAFETY: the kernel's own tables map everything the kernel uses.
        unsafe { super::paging::activate(KERNEL_ROOT.load(Ordering::Relaxed)) };
    }
    if percpu::online() > 1 {
        post_where_loaded(Request::LeaveSpace, root, 0);
    }
}

/// Drops the translation of kernel `address` on every CPU.
pub fn flush_kernel_page(address: u64) {
    invalidate(address);
    if percpu::online() > 1 {
        post_to_others(|_| true, Request::FlushKernelPage, 0, address);
    }
}

/// Drops the translation of user `address` on every CPU, whatever tables it has loaded: the
/// entry is in a page table that several tasks' tables link (`vm::shared_text`), so any
/// CPU running one of them may hold it.
pub fn flush_shared_page(address: u64) {
    invalidate(address);
    if percpu::online() > 1 {
        post_to_others(|_| true, Request::FlushKernelPage, 0, address);
    }
}

/// Makes CPU `index` leave user mode (the thread it runs was taken from it, and is about to
/// be freed or held): returns once it waits in the kernel with the thread's registers saved,
/// and says whether it had entered through a system call, which has not run.
pub fn stop(index: usize) -> bool {
    let Some(target) = percpu::cpu(index) else {
        return false;
    };
    if index == percpu::index() {
        return false;
    }
    let _posting = lock_posting();
    post(target, Request::Stop, 0, 0)
}

fn post_where_loaded(request: Request, root: u64, address: u64) {
    post_to_others(
        |cpu| cpu.loaded_root.load(Ordering::Relaxed) == root,
        request,
        root,
        address,
    );
}

fn post_to_others(which: impl Fn(&PerCpu) -> bool, request: Request, root: u64, address: u64) {
    let me = percpu::index();
    let mut posting = None;
    for index in 0..percpu::online() {
        let Some(cpu) = percpu::cpu(index) else {
            continue;
        };
        if index != me && which(cpu) {
            if posting.is_none() {
                posting = Some(lock_posting());
            }
            post(cpu, request, root, address);
        }
    }
}

/// Takes the right to post, serving this CPU's own mailbox while another CPU posts.
fn lock_posting() -> spin::MutexGuard<'static, ()> {
    loop {
        if let Some(guard) = POSTING.try_lock() {
            return guard;
        }
        serve(false);
        core::hint::spin_loop();
    }
}

/// Posts `request` to `target`, interrupts it and waits for its answer (serving this CPU's
/// mailbox meanwhile); whether the target was in a system call's entry.
fn post(target: &PerCpu, request: Request, root: u64, address: u64) -> bool {
    let number = target.request.load(Ordering::Relaxed) + 1;
    target.request_kind.store(request as u64, Ordering::Relaxed);
    target.request_root.store(root, Ordering::Relaxed);
    target.request_address.store(address, Ordering::Relaxed);
    target.request.store(number, Ordering::Release);
    SENT.fetch_add(1, Ordering::Relaxed);
    super::apic::send_ipi(target.apic_id(), CROSS_CALL_VECTOR);
    while target.acked.load(Ordering::Acquire) != number {
        serve(false);
        core::hint::spin_loop();
    }
    target.acked_in_syscall.load(Ordering::Relaxed)
}

/// Carries out the request posted to this CPU, if there is one. `in_syscall`: the CPU waits
/// in a system call's entry (the call has not run).
#[inline]
pub fn serve(in_syscall: bool) {
    let me = percpu::current();
    let number = me.request.load(Ordering::Acquire);
    if number == me.acked.load(Ordering::Relaxed) {
        return;
    }
    let root = me.request_root.load(Ordering::Relaxed);
    let address = me.request_address.load(Ordering::Relaxed);
    let loaded = me.loaded_root.load(Ordering::Relaxed) == root;
    let kind = me.request_kind.load(Ordering::Relaxed);
    if loaded && me.running() == 0 && kind != Request::FlushKernelPage as u64 {
        // No thread here (idle, or its thread was taken): rather than flush, leave the
        // tables for the kernel's, so that later changes to them need not ask this CPU at
        // all (Linux's lazy TLB does the same). Whatever runs next loads its own.
        // SAFETY: the kernel's own tables map everything the kernel uses.
        unsafe { super::paging::activate(KERNEL_ROOT.load(Ordering::Relaxed)) };
        me.acked_in_syscall.store(in_syscall, Ordering::Relaxed);
        me.acked.store(number, Ordering::Release);
        return;
    }
    match kind {
        k if k == Request::FlushPage as u64 && loaded => invalidate(address),
        k if k == Request::FlushSpace as u64 && loaded => reload(),
        k if k == Request::LeaveSpace as u64 && loaded => {
            // SAFETY: the kernel's own tables map everything the kernel uses.
            unsafe { super::paging::activate(KERNEL_ROOT.load(Ordering::Relaxed)) }
        }
        k if k == Request::FlushKernelPage as u64 => invalidate(address),
        _ => {}
    }
    me.acked_in_syscall.store(in_syscall, Ordering::Relaxed);
    me.acked.store(number, Ordering::Release);
}

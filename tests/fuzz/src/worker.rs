//! A fuzzing worker: a forked task that issues random and mutated system calls and messages
//! (bad names, rights, sizes, pointers, out-of-line regions, port sets, pager answers and
//! `memory_control` calls on objects it maps from its own ports), then exits. Every call is
//! one the kernel must refuse or carry out without harm to anyone else; the worker only keeps
//! out of calls that would end or block it for good (exit, exec of a real program, waits
//! without a timeout) and out of its own stack and code. Before each call it writes what it
//! is about to do into the shared `Progress` page, so a hang names its call.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use fuzz::rng::Rng;
use libipc::abi::message::{
    descriptor_kind, options, out_of_line_flags, Descriptor, MessageHeader, COMPLEX,
    DESCRIPTOR_SIZE, HEADER_SIZE, MAX_DESCRIPTORS, MAX_MESSAGE_SIZE,
};
use libipc::abi::syscall::*;
use libipc::sys::{self, Forked};

/// Per worker in the shared page: calls made, then the call being made (its number and six
/// arguments).
const SLOT_WORDS: usize = 8;

/// The shared record of every worker's progress (a page inherited shared, so the supervisor
/// reads what its forked workers write).
pub struct Progress {
    words: &'static [AtomicU64],
}

impl Progress {
    pub fn new(workers: usize) -> Progress {
        let size = (workers * SLOT_WORDS * 8).next_multiple_of(PAGE_SIZE as usize) as u64;
        let address = sys::vm_allocate(0, size, VM_ANYWHERE).expect("fuzz: a progress page");
        sys::vm_inherit(address, size, VM_INHERIT_SHARE).expect("fuzz: a shared page");
        // The region is ours, zero-filled, page-aligned and never unmapped; the workers write
        // it while the supervisor reads, all through atomics.
        let words = {
            // SAFETY: as just said.
            unsafe { core::slice::from_raw_parts(address as *const AtomicU64, size as usize / 8) }
        };
        Progress { words }
    }

    fn slot(&self, worker: usize) -> &[AtomicU64] {
        &self.words[worker * SLOT_WORDS..(worker + 1) * SLOT_WORDS]
    }

    pub fn reset(&self, worker: usize) {
        for word in self.slot(worker) {
            word.store(0, Ordering::Relaxed);
        }
    }

    fn note(&self, worker: usize, number: u64, a: &[u64; 6]) {
        let slot = self.slot(worker);
        slot[0].fetch_add(1, Ordering::Relaxed);
        slot[1].store(number, Ordering::Relaxed);
        for (word, value) in slot[2..].iter().zip(a) {
            word.store(*value, Ordering::Relaxed);
        }
    }

    /// Calls worker `worker` made (or began).
    pub fn calls(&self, worker: usize) -> u64 {
        self.slot(worker)[0].load(Ordering::Relaxed)
    }

    /// Its last call, as text.
    pub fn describe(&self, worker: usize) -> alloc::string::String {
        let s = self.slot(worker);
        let w = |i: usize| s[i].load(Ordering::Relaxed);
        alloc::format!(
            "call {} syscall {} ({:?}) args {:#x} {:#x} {:#x} {:#x} {:#x} {:#x}",
            w(0),
            w(1),
            Syscall::from_raw(w(1)),
            w(2),
            w(3),
            w(4),
            w(5),
            w(6),
            w(7)
        )
    }
}

/// Bytes of the worker's arena, where its memory calls and out-of-line regions land.
const ARENA: u64 = 4 << 20;

/// How often each kind of call is made (`call`'s arms, in order): messages, receives,
/// pager messages, port calls, memory calls, mapping its own ports, forks, spawns, task
/// calls, host queries, kernel options, thread and console calls, exec and spawn of no
/// program, any call number.
pub const WEIGHTS: [u32; 14] = [30, 6, 6, 14, 12, 4, 3, 2, 2, 3, 2, 4, 3, 8];

/// Bytes kept unmapped after the arena.
const GUARD: u64 = 64 * PAGE_SIZE;

/// Names the worker holds or held, and its memory.
struct Worker<'p> {
    index: usize,
    /// Which kinds of call it makes (bit `i`: `WEIGHTS[i]`'s).
    mix: u32,
    /// The one call number its calls of any number make, if chosen.
    raw_call: Option<u64>,
    progress: &'p Progress,
    names: Vec<u32>,
    /// Reply rights of messages received (a pager's answer goes to one).
    replies: Vec<u32>,
    arena: u64,
    read_only: u64,
    buffer: Vec<u8>,
    /// Two writable pages, then a guard page.
    scratch: u64,
}

/// What a worker does: `calls` calls, then exit. With `leak`, it first forks a task that
/// holds ports and memory and outlives the round (the census must see it).
pub fn run(
    seed: u64,
    round: u32,
    index: usize,
    calls: u64,
    (leak, mix, raw_call): (bool, u32, Option<u64>),
    progress: &Progress,
) -> ! {
    let mut rng = Rng::new(seed, (u64::from(round) << 8) | index as u64);
    if leak {
        if let Ok(Forked::Child) = sys::task_fork() {
            for _ in 0..8 {
                let _ = sys::port_allocate(PORT_KIND_RECEIVE);
            }
            if let Ok(address) = sys::vm_allocate(0, 16 * PAGE_SIZE, VM_ANYWHERE) {
                // SAFETY: our own fresh region: touching it makes its pages resident.
                unsafe { core::ptr::write_bytes(address as *mut u8, 1, 16 * PAGE_SIZE as usize) };
            }
            libipc::rt::sleep_ms(3_600_000);
            sys::task_exit(0);
        }
    }
    let mut worker = Worker::new(index, mix, progress);
    worker.raw_call = raw_call;
    for _ in 0..calls {
        worker.call(&mut rng);
    }
    sys::task_exit(0)
}

impl<'p> Worker<'p> {
    fn new(index: usize, mix: u32, progress: &'p Progress) -> Worker<'p> {
        let mut names = Vec::new();
        for _ in 0..4 {
            if let Ok(name) = sys::port_allocate(PORT_KIND_RECEIVE) {
                let _ = sys::port_insert_send(name);
                names.push(name);
            }
        }
        if let Ok(set) = sys::port_allocate(PORT_KIND_SET) {
            names.push(set);
        }
        // The arena, then GUARD bytes nobody may touch: wild ranges from inside the arena
        // reach at most into the guard, never into the worker's heap (which a hole there
        // could later hold).
        let arena = sys::vm_allocate(0, ARENA + GUARD, VM_ANYWHERE).unwrap_or(0);
        let _ = sys::vm_protect(arena + ARENA, GUARD, false, 0);
        // Where calls write: two pages of their own (not the heap, whose bookkeeping a write
        // past the end would break), then a page nobody may touch.
        let scratch = sys::vm_allocate(0, 3 * PAGE_SIZE, VM_ANYWHERE).unwrap_or(0);
        let _ = sys::vm_protect(scratch + 2 * PAGE_SIZE, PAGE_SIZE, false, 0);
        let read_only = sys::vm_allocate(0, PAGE_SIZE, VM_ANYWHERE).unwrap_or(0);
        let _ = sys::vm_protect(read_only, PAGE_SIZE, false, VM_PROT_READ);
        Worker {
            index,
            mix,
            raw_call: None,
            progress,
            names,
            replies: Vec::new(),
            arena,
            read_only,
            buffer: alloc::vec![0; MAX_MESSAGE_SIZE + 64],
            scratch,
        }
    }

    /// A name: mostly one held, sometimes one near it, a reply right, or anything.
    fn name(&self, rng: &mut Rng) -> u32 {
        match rng.below(10) {
            0 => rng.edgy() as u32,
            1 => self.names.first().map_or(0, |n| n ^ (1 << rng.below(12))),
            2 if !self.replies.is_empty() => rng.pick(&self.replies),
            _ if !self.names.is_empty() => rng.pick(&self.names),
            _ => rng.below(0x1000) as u32,
        }
    }

    /// An address to read from or write to: the scratch buffer (where a call may write),
    /// the arena, the read-only page, or places nobody may touch. Never this task's stack,
    /// code or data.
    fn address(&self, rng: &mut Rng) -> u64 {
        let scratch = self.scratch;
        match rng.below(9) {
            0 | 1 => scratch + rng.below(PAGE_SIZE) / 8 * 8,
            2 => scratch + 2 * PAGE_SIZE - rng.below(16),
            3 | 4 => self.arena + rng.below(ARENA / PAGE_SIZE) * PAGE_SIZE,
            5 => self.read_only + rng.below(PAGE_SIZE),
            6 => 0xffff_8000_0000_0000 + rng.below(1 << 30),
            7 => USER_END - rng.below(3) * PAGE_SIZE - rng.below(64),
            _ => rng.pick(&[0, 8, 0x1000, u64::MAX - 7, USER_BASE - PAGE_SIZE]),
        }
    }

    /// A size: small, page multiples, or edges.
    fn size(&self, rng: &mut Rng) -> u64 {
        match rng.below(4) {
            0 => rng.below(64),
            1 => (1 + rng.below(16)) * PAGE_SIZE,
            2 => rng.below(2 * PAGE_SIZE),
            _ => rng.edgy(),
        }
    }

    /// A range inside the arena (whole pages), or a wild one (never over this worker's
    /// own heap, stack or code: a call that unmapped those would end the worker, not test
    /// the kernel).
    fn arena_range(&self, rng: &mut Rng) -> (u64, u64) {
        if rng.one_in(6) {
            let start = match rng.below(5) {
                0 => 0xffff_8000_0000_0000 + rng.below(1 << 30),
                1 => USER_END - rng.below(3) * PAGE_SIZE - rng.below(64),
                2 | 3 => {
                    let start = self.arena + rng.below(ARENA);
                    let most = self.arena + ARENA + GUARD - start;
                    return (start, self.size(rng).min(most));
                }
                // Below the lowest user address: at most up to 4 MiB, where this worker's
                // stack begins.
                _ => {
                    let start = rng.pick(&[0, 0x1000, USER_BASE - PAGE_SIZE]);
                    return (start, self.size(rng).min(2 * USER_BASE - start));
                }
            };
            return (start, self.size(rng));
        }
        let pages = ARENA / PAGE_SIZE;
        let first = rng.below(pages);
        let count = 1 + rng.below((pages - first).min(64));
        (self.arena + first * PAGE_SIZE, count * PAGE_SIZE)
    }

    fn raw(&self, number: Syscall, a: [u64; 6]) -> sys::SyscallResult {
        self.raw_number(number as u64, a)
    }

    /// System call `number` (known or not) with `a`, noted in the progress page first.
    /// Addresses passed are in memory this worker owns and does not otherwise use (the
    /// scratch pages, the arena, the read-only page) or in memory it may not touch, which
    /// the kernel must refuse; the calls that could end or block it for good are not made
    /// (`call`). An edge value of the calls of any number could, rarely, name its own
    /// memory: a worker that corrupted itself would only end, and the round still checks
    /// that it gave everything back.
    fn raw_number(&self, number: u64, a: [u64; 6]) -> sys::SyscallResult {
        self.progress.note(self.index, number, &a);
        // SAFETY: the kernel checks every address; what this worker passes is above.
        unsafe { sys::syscall6(number, a[0], a[1], a[2], a[3], a[4], a[5]) }
    }

    fn call(&mut self, rng: &mut Rng) {
        use Syscall::*;
        let mut weights = WEIGHTS;
        for (i, weight) in weights.iter_mut().enumerate() {
            if self.mix & (1 << i) == 0 {
                *weight = 0;
            }
        }
        match rng.weighted(&weights) {
            0 => self.message(rng),
            1 => self.receive(rng),
            2 => self.pager(rng),
            3 => {
                let call = rng.pick(&[
                    PortAllocate,
                    PortDeallocate,
                    PortDestroy,
                    PortInsertSend,
                    PortGetRefs,
                    PortMove,
                    PortRequestNotification,
                ]);
                let a = [
                    u64::from(self.name(rng)),
                    if rng.one_in(2) {
                        u64::from(self.name(rng))
                    } else {
                        rng.below(6)
                    },
                    u64::from(self.name(rng)),
                    0,
                    0,
                    0,
                ];
                let a = match call {
                    PortAllocate => [rng.below(3), 0, 0, 0, 0, 0],
                    PortRequestNotification => [
                        a[0],
                        {
                            let wild = rng.next_u64();
                            rng.pick(&[0o106, 0o110, 0o107, wild])
                        },
                        a[2],
                        0,
                        0,
                        0,
                    ],
                    _ => a,
                };
                let r = self.raw(call, a);
                if call == PortAllocate && r.code == 0 && self.names.len() < 64 {
                    self.names.push(r.value as u32);
                }
            }
            4 => {
                let call = rng.pick(&[
                    VmAllocate,
                    VmDeallocate,
                    VmProtect,
                    VmInherit,
                    VmBehaviorSet,
                    VmRegion,
                    VmStatistics,
                ]);
                let (start, size) = self.arena_range(rng);
                let a = match call {
                    // Anywhere, or over the arena (a fixed region where one is: refused).
                    VmAllocate => [start, size.min(8 << 20), rng.below(3), 0, 0, 0],
                    VmProtect => [start, size, rng.below(3), rng.below(9), 0, 0],
                    VmInherit | VmBehaviorSet => [start, size, rng.below(5), 0, 0, 0],
                    VmRegion => [start, self.address(rng), 0, 0, 0, 0],
                    VmStatistics => [self.address(rng), 0, 0, 0, 0, 0],
                    _ => [start, size, 0, 0, 0, 0],
                };
                let r = self.raw(call, a);
                if call == VmAllocate && r.code == 0 && a[2] & VM_ANYWHERE != 0 {
                    // Given back at once, so the worker's memory stays bounded.
                    let _ = self.raw(VmDeallocate, [r.value, a[1], 0, 0, 0, 0]);
                }
            }
            5 => self.map_own_port(rng),
            6 => self.fork(rng),
            7 => self.spawn(rng),
            8 => {
                let call = rng.pick(&[TaskWait, TaskTerminate]);
                // Only names that are no task of ours: a sibling's task port is one of the
                // names a fork copied, and stopping siblings is the supervisor's job.
                let name = 0x7000_0000 | rng.below(0x1000) as u32;
                let a = [u64::from(name), rng.below(2), 0, 0, 0, 0];
                let _ = self.raw(call, a);
            }
            9 => {
                let call = rng.pick(&[HostInfo, HostTasks, SwapperInfo, BootArchive]);
                let a = [
                    match call {
                        HostInfo => rng.below(32),
                        _ => self.address(rng),
                    },
                    rng.below(64),
                    0,
                    0,
                    0,
                    0,
                ];
                let _ = self.raw(call, a);
            }
            10 => {
                let key = self.address(rng);
                let a = [key, rng.below(40), self.address(rng), rng.below(300), 0, 0];
                let _ = self.raw(KernelOption, a);
            }
            11 => {
                let call = rng.pick(&[ThreadSetPriority, ThreadYield, ConsoleRead, DebugWrite]);
                let a = match call {
                    ThreadSetPriority => [rng.edgy(), 0, 0, 0, 0, 0],
                    // Without waiting: input typed meanwhile is the fuzzer's to take.
                    ConsoleRead => [self.address(rng), rng.below(5000), 0, 0, 0, 0],
                    DebugWrite if rng.one_in(8) => [self.read_only, 0, 0, 0, 0, 0],
                    DebugWrite => [self.address(rng), rng.below(2) * 5000, 0, 0, 0, 0],
                    _ => [0; 6],
                };
                let _ = self.raw(call, a);
                let _ = self.raw(ThreadSetPriority, [8, 0, 0, 0, 0, 0]);
            }
            12 => {
                // Exec and spawn of programs that are not there, from good and bad names.
                let name: &[u8] =
                    rng.pick(&[&b"no_such_program"[..], b"", b"\xff\xfe", &[b'x'; 60]]);
                let length = name.len() as u64;
                let pointer = if rng.one_in(3) {
                    self.address(rng)
                } else {
                    name.as_ptr() as u64
                };
                let call = rng.pick(&[TaskExec, TaskSpawn]);
                let a = [pointer, length, 0, 0, self.address(rng), rng.below(300)];
                let r = self.raw(call, a);
                if call == TaskSpawn && r.code == 0 {
                    let _ = sys::task_terminate(r.value as u32);
                    let _ = sys::port_deallocate(r.value as u32);
                }
            }
            _ => {
                // Any call number at all, with anything in its arguments; but not the ones
                // that would end this worker, unmap or protect its own memory, fork it into a
                // second fuzzer, wait with no end or stop a sibling (the calls above make
                // those with arguments that cannot); nor start a thread at a random address,
                // whose fault would end the worker too.
                let number = match self.raw_call {
                    Some(number) => number,
                    None => rng.below(48),
                };
                let call = Syscall::from_raw(number);
                if matches!(
                    call,
                    Some(
                        VmDeallocate
                            | VmProtect
                            | VmMap
                            | TaskExit
                            | ThreadExit
                            | ThreadCreate
                            | TaskFork
                            | TaskExec
                            | TaskWait
                            | TaskTerminate
                            | TaskSwap
                            | MachMsg
                            | ConsoleRead
                            | HostShutdown
                    )
                ) {
                    return;
                }
                let a = [
                    rng.edgy(),
                    rng.edgy(),
                    rng.edgy(),
                    rng.edgy(),
                    rng.edgy(),
                    rng.edgy(),
                ];
                let _ = self.raw_number(number, a);
            }
        }
    }

    /// A message built at random (mostly well-formed enough to reach the kernel's deeper
    /// checks), sent with a zero timeout, sometimes with a receive after it.
    fn message(&mut self, rng: &mut Rng) {
        let dispositions = [16u8, 17, 18, 19, 20, 21];
        let disposition = |rng: &mut Rng| {
            if rng.one_in(10) {
                rng.below(256) as u8
            } else {
                rng.pick(&dispositions)
            }
        };
        let complex = rng.one_in(3);
        let count = if complex {
            if rng.one_in(20) {
                rng.edgy() as usize
            } else {
                rng.below(6) as usize
            }
        } else {
            0
        };
        let local = if rng.one_in(2) {
            0
        } else {
            u32::from(disposition(rng))
        };
        let mut bits = u32::from(disposition(rng)) | (local << 8);
        if complex {
            bits |= COMPLEX;
        }
        if rng.one_in(20) {
            bits ^= 1 << rng.below(32);
        }
        let header = MessageHeader {
            bits,
            size: 0,
            remote_port: self.name(rng),
            local_port: if local == 0 && !rng.one_in(10) {
                0
            } else {
                self.name(rng)
            },
            voucher: 0,
            id: {
                let wild = rng.next_u64() as u32;
                rng.pick(&[
                    0,
                    1,
                    libipc::pager::ids::DATA_SUPPLY,
                    libipc::pager::ids::LOCK_REQUEST,
                    wild,
                ])
            },
        };
        let mut length = HEADER_SIZE;
        if complex {
            self.buffer[length..length + 4].copy_from_slice(&(count as u32).to_le_bytes());
            length += 4;
            for _ in 0..count.min(MAX_DESCRIPTORS + 2) {
                if length + DESCRIPTOR_SIZE > MAX_MESSAGE_SIZE {
                    break;
                }
                let kind = disposition(rng);
                let d = self.descriptor(rng, kind);
                self.buffer[length..length + DESCRIPTOR_SIZE].copy_from_slice(&d.to_bytes());
                length += DESCRIPTOR_SIZE;
            }
        }
        let most = if rng.one_in(8) { 2048 } else { 64 };
        let body = rng.below(most) as usize;
        for byte in &mut self.buffer[length..length + body] {
            *byte = rng.below(256) as u8;
        }
        length += body;
        let mut size = length.next_multiple_of(4) as u64;
        if rng.one_in(10) {
            size = rng.edgy();
        }
        let header = MessageHeader {
            size: size as u32,
            ..header
        };
        self.buffer[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
        self.send(rng, size);
    }

    fn descriptor(&self, rng: &mut Rng, disposition: u8) -> Descriptor {
        match rng.below(5) {
            0..=2 => Descriptor {
                value: u64::from(self.name(rng)),
                size: 0,
                disposition,
                flags: 0,
                reserved: 0,
                kind: descriptor_kind::PORT,
            },
            3 => {
                let (start, size) = self.arena_range(rng);
                Descriptor {
                    value: start,
                    size: size.min(u64::from(u32::MAX)) as u32,
                    disposition: 0,
                    flags: rng.below(3) as u8,
                    reserved: 0,
                    kind: descriptor_kind::OUT_OF_LINE,
                }
            }
            // Anything, but never moving memory out of this worker (a wild region could be
            // its heap): only the arena's regions move.
            _ => Descriptor {
                value: rng.edgy(),
                size: rng.edgy() as u32,
                disposition,
                flags: rng.below(256) as u8 & !out_of_line_flags::DEALLOCATE,
                reserved: rng.below(2) as u8,
                kind: rng.below(256) as u8,
            },
        }
    }

    /// Sends the `size` bytes in the buffer; never waits for room, and a receive after it
    /// (sometimes) waits at most a millisecond.
    fn send(&mut self, rng: &mut Rng, size: u64) {
        let mut option = options::SEND | options::SEND_TIMEOUT;
        let receive_name = if rng.one_in(4) {
            option |= options::RECEIVE | options::RECEIVE_TIMEOUT;
            self.name(rng)
        } else {
            0
        };
        if rng.one_in(30) {
            option |= 1 << rng.below(64);
        }
        let a = [
            self.buffer.as_mut_ptr() as u64,
            option,
            size,
            self.buffer.len() as u64 - rng.below(2) * rng.below(8192),
            u64::from(receive_name),
            rng.below(2),
        ];
        // A receive writes at most the limit, which is the buffer's length or less.
        let r = self.raw(Syscall::MachMsg, a);
        if r.code == 0 && option & options::RECEIVE != 0 {
            self.received();
        }
    }

    /// Receives (without waiting long) on one of its names, keeping the rights that came.
    fn receive(&mut self, rng: &mut Rng) {
        let name = self.name(rng);
        let limit = if rng.one_in(5) {
            rng.below(64)
        } else {
            self.buffer.len() as u64
        };
        let buffer = if rng.one_in(10) {
            self.address(rng)
        } else {
            self.buffer.as_mut_ptr() as u64
        };
        let a = [
            buffer,
            options::RECEIVE | options::RECEIVE_TIMEOUT,
            0,
            limit.min(self.buffer.len() as u64),
            u64::from(name),
            rng.below(2),
        ];
        let r = self.raw(Syscall::MachMsg, a);
        if r.code == 0 && buffer == self.buffer.as_ptr() as u64 {
            self.received();
        }
    }

    /// Takes the names a received message brought (its reply right, port descriptors).
    fn received(&mut self) {
        let header =
            MessageHeader::from_bytes(self.buffer[..HEADER_SIZE].try_into().expect("header size"));
        if header.remote_port != 0 && self.replies.len() < 32 {
            self.replies.push(header.remote_port);
        }
        if header.bits & COMPLEX == 0 {
            return;
        }
        let count = u32::from_le_bytes(self.buffer[24..28].try_into().expect("4")) as usize;
        for i in 0..count.min(MAX_DESCRIPTORS) {
            let at = 28 + i * DESCRIPTOR_SIZE;
            let Some(bytes) = self.buffer.get(at..at + DESCRIPTOR_SIZE) else {
                break;
            };
            let d = Descriptor::from_bytes(bytes.try_into().expect("descriptor"));
            if d.kind == descriptor_kind::PORT && d.value != 0 && self.names.len() < 64 {
                self.names.push(d.value as u32);
            }
        }
    }

    /// Maps one of its own ports as a memory object: the kernel sends it `init`, and the
    /// worker becomes a (lying) pager of an object it never touches.
    fn map_own_port(&mut self, rng: &mut Rng) {
        let object = self.name(rng);
        let size = if rng.one_in(8) {
            rng.edgy()
        } else {
            (1 + rng.below(64)) * PAGE_SIZE
        };
        let a = [
            0,
            size,
            VM_ANYWHERE | (rng.below(2) * 2),
            u64::from(object),
            rng.below(4) * PAGE_SIZE + rng.below(2),
            rng.below(8),
        ];
        let r = self.raw(Syscall::VmMap, a);
        if r.code == 0 && rng.one_in(2) {
            // Exactly the region made (a wild size would unmap whatever lies above it).
            if let Ok(region) = sys::vm_region(r.value) {
                let length = region.end - region.start;
                let _ = self.raw(Syscall::VmDeallocate, [region.start, length, 0, 0, 0, 0]);
            }
        }
    }

    /// A pager's side of the protocol, mutated: an answer to a reply right the kernel sent,
    /// or a `memory_control` call on a control port that came in an `init`.
    fn pager(&mut self, rng: &mut Rng) {
        use libipc::pager::ids;
        let mut values = [0u8; 48];
        let mut n = 0;
        let mut put = |value: u64, n: &mut usize| {
            // postcard's varint.
            let mut v = value;
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                values[*n] = if v == 0 { byte } else { byte | 0x80 };
                *n += 1;
                if v == 0 || *n >= values.len() - 1 {
                    break;
                }
            }
        };
        let page = |rng: &mut Rng| rng.below(64) * PAGE_SIZE;
        let (id, memory) = match rng.below(8) {
            // An answer: init's attributes, a supply (with pages), unavailable, an error,
            // a return's stored or refused.
            0 => {
                put(0, &mut n);
                put(
                    {
                        let wild = rng.edgy();
                        rng.pick(&[1, 2, 4, 8, 3, 64, wild])
                    },
                    &mut n,
                );
                (ids::INIT + 100, false)
            }
            1 => {
                put(0, &mut n);
                put(0, &mut n);
                (ids::DATA_REQUEST + 100, true)
            }
            2 => {
                put(rng.below(3), &mut n);
                put(rng.below(3), &mut n);
                (ids::DATA_REQUEST + 100, false)
            }
            3 => {
                put(0, &mut n);
                put(rng.below(3), &mut n);
                (ids::DATA_RETURN + 100, rng.one_in(2))
            }
            // memory_control calls.
            4 => {
                put(page(rng), &mut n);
                (ids::DATA_SUPPLY, true)
            }
            5 => {
                put(page(rng), &mut n);
                put(
                    {
                        let wild = rng.edgy();
                        rng.pick(&[PAGE_SIZE, 4 * PAGE_SIZE, 0, wild])
                    },
                    &mut n,
                );
                put(rng.below(2), &mut n);
                put(rng.below(2), &mut n);
                (ids::LOCK_REQUEST, false)
            }
            6 => {
                put(page(rng), &mut n);
                put(
                    {
                        let wild = rng.edgy();
                        rng.pick(&[PAGE_SIZE, 2 * PAGE_SIZE, wild])
                    },
                    &mut n,
                );
                put(rng.below(9), &mut n);
                (rng.pick(&[ids::DATA_UNAVAILABLE, ids::DATA_ERROR]), false)
            }
            _ => {
                put(rng.pick(&[1, 4, 16, 32, 5]), &mut n);
                (ids::SET_ATTRIBUTES, false)
            }
        };
        // Mutations: a flipped byte, a cut.
        if rng.one_in(4) {
            let at = rng.below(n as u64 + 1) as usize;
            values[at] ^= 1 << rng.below(8);
        }
        if rng.one_in(6) {
            n = rng.below(n as u64 + 1) as usize;
        }
        let destination = if rng.one_in(2) && !self.replies.is_empty() {
            rng.pick(&self.replies)
        } else {
            self.name(rng)
        };
        // Answers go through the send-once reply right (moved); calls through a send right
        // (copied), with a reply right made from one of our ports.
        let answer = id >= ids::INIT + 100;
        let remote = if answer { 18 } else { 19 };
        let local = if answer || rng.one_in(3) { 0 } else { 21 };
        let complex = memory;
        let mut length = HEADER_SIZE;
        if complex {
            let (start, size) = if rng.one_in(4) {
                self.arena_range(rng)
            } else {
                (self.arena, (1 + rng.below(4)) * PAGE_SIZE)
            };
            self.buffer[length..length + 4].copy_from_slice(&1u32.to_le_bytes());
            let d = Descriptor::out_of_line(start, size as u32, false);
            self.buffer[length + 4..length + 4 + DESCRIPTOR_SIZE].copy_from_slice(&d.to_bytes());
            length += 4 + DESCRIPTOR_SIZE;
        }
        self.buffer[length..length + 2].copy_from_slice(&(n as u16).to_le_bytes());
        self.buffer[length + 2..length + 2 + n].copy_from_slice(&values[..n]);
        length = (length + 2 + n).next_multiple_of(4);
        let header = MessageHeader {
            bits: remote | (local << 8) | if complex { COMPLEX } else { 0 },
            size: length as u32,
            remote_port: destination,
            local_port: if local == 0 {
                0
            } else {
                self.names.first().copied().unwrap_or(0)
            },
            voucher: 0,
            id,
        };
        self.buffer[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
        let a = [
            self.buffer.as_mut_ptr() as u64,
            options::SEND | options::SEND_TIMEOUT,
            length as u64,
            0,
            0,
            0,
        ];
        let _ = self.raw(Syscall::MachMsg, a);
    }

    /// A fork whose child exits at once (a fork bomb is not the fuzzer's business: the
    /// kernel's budget for it is tested elsewhere).
    fn fork(&mut self, _rng: &mut Rng) {
        self.progress
            .note(self.index, Syscall::TaskFork as u64, &[0; 6]);
        match sys::task_fork() {
            Ok(Forked::Child) => sys::task_exit(0),
            Ok(Forked::Parent(child)) => {
                let _ = sys::task_wait_timeout(child, 10_000);
                let _ = sys::port_deallocate(child);
            }
            Err(_) => {}
        }
    }

    /// Spawns `nonaim_exit` (which exits at once, quietly) with arguments good or bad.
    fn spawn(&mut self, rng: &mut Rng) {
        let name = b"nonaim_exit";
        let args = self.address(rng);
        let a = [
            name.as_ptr() as u64,
            name.len() as u64,
            u64::from(self.name(rng)),
            rng.next_u64(),
            args,
            {
                let wild = rng.edgy();
                rng.pick(&[0, 16, 256, 257, wild])
            },
        ];
        let r = self.raw(Syscall::TaskSpawn, a);
        if r.code == 0 {
            let child = r.value as u32;
            let _ = sys::task_wait_timeout(child, 10_000);
            let _ = sys::port_deallocate(child);
        }
    }
}

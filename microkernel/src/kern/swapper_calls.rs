//! The system calls of the task swapper and of task reports: `task_swap` (swap a task out
//! or in by hand), `swapper_info` (its state, counters and trace) and `host_tasks` (`ps`).

use super::kernel::Kernel;
use super::swapper::Why;
use super::syscall::{Caller, Outcome};
use super::task::TaskId;
use super::thread::ThreadState;
use super::user::{copy_out, UserSlice};
use alloc::vec::Vec;
use libipc::abi::swapper::{
    name_bytes, SwapEvent, SwapperInfo, TaskInfo, SWAP_IN, SWAP_OUT, TRACE_LEN,
};
use libipc::abi::KernReturn;

/// Most task records one `host_tasks` call writes.
const MAX_TASK_RECORDS: usize = 8192;

pub fn task_swap(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let [name, operation, ..] = a;
    let task = caller.task;
    let target = match kernel.task_of_port(task, name as u32) {
        Ok(target) => target,
        Err(e) => return Outcome::Return(Err(e)),
    };
    Outcome::Return(match operation {
        SWAP_OUT if target == task => Err(KernReturn::InvalidArgument),
        SWAP_OUT => kernel.swap_out(target, Why::Asked).map(|()| 0),
        SWAP_IN => match kernel.tasks.get(target) {
            Some(t) if t.swapped_out => {
                kernel.swap_in(target, Why::Asked);
                Ok(0)
            }
            Some(_) => Err(KernReturn::Failure),
            None => Err(KernReturn::InvalidArgument),
        },
        _ => Err(KernReturn::InvalidArgument),
    })
}

pub fn swapper_info(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let out = match UserSlice::new(a[0], SwapperInfo::SIZE as u64).validate(SwapperInfo::SIZE) {
        Ok(out) => out,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let s = &kernel.swapper;
    let rates = s.rates();
    let c = s.counters;
    let mut info = SwapperInfo {
        enabled: u64::from(s.config.enabled),
        short_rate: rates.short,
        long_rate: rates.long,
        highest_rate: rates.highest,
        capacity: rates.capacity,
        start: rates.start,
        stop: rates.stop,
        busy_short: rates.busy_short,
        busy_long: rates.busy_long,
        swap_outs: c.swap_outs,
        swap_ins: c.swap_ins,
        ins_rate_fell: c.ins_rate_fell,
        ins_room: c.ins_room,
        ins_message: c.ins_message,
        ins_starved: c.ins_starved,
        asked: c.asked,
        none_eligible: c.none_eligible,
        swapped_out: s.swapped_out().count() as u64,
        trace_len: 0,
        trace: [SwapEvent::default(); TRACE_LEN],
    };
    for (slot, event) in info.trace.iter_mut().zip(s.trace()) {
        *slot = SwapEvent {
            tick: event.tick,
            task: u64::from(event.task.index()),
            out: u64::from(event.out),
            why: event.why as u64,
            pages: event.pages,
            short_rate: event.short_rate,
            long_rate: event.long_rate,
            threshold: event.threshold,
            name: name_bytes(kernel.tasks.get(event.task).map_or("(ended)", |t| t.name())),
        };
        info.trace_len += 1;
    }
    let bytes: Vec<u8> = info
        .to_words()
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    Outcome::Return(copy_out(&mut t.space, kernel.vm.objects_mut(), out, &bytes).map(|()| 0))
}

pub fn host_tasks(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let [buffer, count, ..] = a;
    let task = caller.task;
    let count = (count as usize).min(MAX_TASK_RECORDS);
    let size = count * TaskInfo::SIZE;
    let out = match UserSlice::new(buffer, size as u64).validate(MAX_TASK_RECORDS * TaskInfo::SIZE)
    {
        Ok(out) => out,
        Err(e) => return Outcome::Return(Err(e)),
    };
    let mut bytes = Vec::new();
    if bytes.try_reserve_exact(size).is_err() {
        return Outcome::Return(Err(KernReturn::ResourceShortage));
    }
    let ids: Vec<TaskId> = kernel.tasks.iter().map(|(id, _)| id).collect();
    for &id in ids.iter().take(count) {
        let info = task_info(kernel, id);
        bytes.extend(info.to_words().iter().flat_map(|w| w.to_le_bytes()));
    }
    let total = ids.len() as u64;
    let Some(t) = kernel.tasks.get_mut(task) else {
        return Outcome::NoReturn;
    };
    Outcome::Return(
        copy_out(
            &mut t.space,
            kernel.vm.objects_mut(),
            out.split_at(bytes.len()).0,
            &bytes,
        )
        .map(|()| total),
    )
}

/// What `ps` shows of `task`.
fn task_info(kernel: &Kernel, task: TaskId) -> TaskInfo {
    let Some(t) = kernel.tasks.get(task) else {
        return TaskInfo::default();
    };
    let held = t
        .threads
        .iter()
        .filter(|&&th| {
            kernel
                .threads
                .get(th)
                .is_some_and(|th| th.state == ThreadState::Held)
        })
        .count();
    let map = t.space.map();
    let paged_out = map
        .entries()
        .iter()
        .map(|e| {
            let len = e.end - e.start;
            kernel
                .vm
                .objects()
                .get(e.object)
                .map_or(0, |o| o.paged_out_in(e.offset, e.offset + len))
        })
        .sum();
    TaskInfo {
        id: u64::from(task.index()),
        threads: t.threads.len() as u64,
        resident_pages: t.space.pmap().resident() as u64,
        paged_out_pages: paged_out,
        virtual_bytes: map.entries().iter().map(|e| e.end - e.start).sum(),
        swapped_out: u64::from(t.swapped_out),
        held_threads: held as u64,
        privileged: u64::from(kernel.is_vm_privileged(task)),
        job: u64::from(t.job),
        table_pages: t.space.pmap().table_pages() as u64,
        kernel_bytes: super::quota::held_bytes(t) + received_bytes(kernel, t) as u64,
        name: name_bytes(t.name()),
    }
}

/// The kernel memory of the ports `t` receives on and the messages queued there (what `ps`
/// shows beyond `quota::held_bytes`; see `TaskInfo::kernel_bytes`).
fn received_bytes(kernel: &Kernel, t: &super::task::Task) -> usize {
    use crate::ipc::port::Port;
    use crate::ipc::space::{Object, Rights};
    t.ipc
        .entries()
        .filter(|(_, e)| e.rights.contains(Rights::RECEIVE))
        .filter_map(|(_, e)| match e.object {
            Object::Port(port) => kernel.ipc.port(port),
            _ => None,
        })
        .map(|p| {
            core::mem::size_of::<Port>()
                + p.messages
                    .iter()
                    .map(|m| core::mem::size_of_val(m) + m.body.capacity())
                    .sum::<usize>()
        })
        .sum()
}

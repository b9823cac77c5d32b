//! What the kernel reports of the task swapper (`SwapperInfo`) and of tasks (`HostTasks`),
//! as fixed words, and the `TaskSwap` operations.

/// `TaskSwap` operations.
pub const SWAP_OUT: u64 = 0;
pub const SWAP_IN: u64 = 1;

/// Bytes of a task's name in reports (longer names are cut).
pub const NAME_BYTES: usize = 32;

/// Why the swapper moved a task (`SwapEvent::why`).
pub const WHY_THRASHING: u64 = 0;
pub const WHY_RATE_FELL: u64 = 1;
pub const WHY_MESSAGE: u64 = 2;
pub const WHY_STARVED: u64 = 3;
pub const WHY_ASKED: u64 = 4;
pub const WHY_ROOM: u64 = 6;

/// A reason's name, for reports.
pub fn why_name(why: u64) -> &'static str {
    match why {
        WHY_THRASHING => "paging above the start threshold",
        WHY_RATE_FELL => "paging below the stop threshold",
        WHY_MESSAGE => "a message for it",
        WHY_STARVED => "out for the longest time allowed",
        WHY_ASKED => "asked (task_swap)",
        WHY_ROOM => "free memory holds it again",
        _ => "?",
    }
}

/// A name cut or padded to [`NAME_BYTES`].
pub fn name_bytes(name: &str) -> [u8; NAME_BYTES] {
    let mut bytes = [0; NAME_BYTES];
    let n = name.len().min(NAME_BYTES);
    bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
    bytes
}

/// The name in `bytes` (up to the first 0).
pub fn name_str(bytes: &[u8; NAME_BYTES]) -> &str {
    let n = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
    let mut s = &bytes[..n];
    loop {
        match core::str::from_utf8(s) {
            Ok(s) => return s,
            Err(e) => s = &s[..e.valid_up_to()],
        }
    }
}

fn name_words(name: &[u8; NAME_BYTES]) -> [u64; 4] {
    core::array::from_fn(|i| u64::from_le_bytes(name[i * 8..i * 8 + 8].try_into().expect("8")))
}

fn words_name(words: &[u64]) -> [u8; NAME_BYTES] {
    let mut name = [0; NAME_BYTES];
    for (i, w) in words.iter().take(4).enumerate() {
        name[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    name
}

/// One decision of the swapper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwapEvent {
    /// Timer tick (100 a second).
    pub tick: u64,
    /// The task's index in the kernel's table (as `TaskInfo::id`).
    pub task: u64,
    /// 1 for a swap-out, 0 for a swap-in.
    pub out: u64,
    /// `WHY_*`.
    pub why: u64,
    /// Pages resident when it went out.
    pub pages: u64,
    /// Paging rates then, pages per second: 5 s and 30 s averages, and the threshold
    /// crossed.
    pub short_rate: u64,
    pub long_rate: u64,
    pub threshold: u64,
    pub name: [u8; NAME_BYTES],
}

impl SwapEvent {
    pub const WORDS: usize = 12;

    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut w = [0; Self::WORDS];
        w[..8].copy_from_slice(&[
            self.tick,
            self.task,
            self.out,
            self.why,
            self.pages,
            self.short_rate,
            self.long_rate,
            self.threshold,
        ]);
        w[8..].copy_from_slice(&name_words(&self.name));
        w
    }

    pub fn from_words(w: &[u64]) -> SwapEvent {
        SwapEvent {
            tick: w[0],
            task: w[1],
            out: w[2],
            why: w[3],
            pages: w[4],
            short_rate: w[5],
            long_rate: w[6],
            threshold: w[7],
            name: words_name(&w[8..12]),
        }
    }
}

/// Trace entries in a [`SwapperInfo`] (the newest).
pub const TRACE_LEN: usize = 32;

/// The swapper's state, counters and trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwapperInfo {
    /// 0 when switched off (`swapper=off`).
    pub enabled: u64,
    /// Pages paged in and out per second, 5 s and 30 s averages; the highest 5 s average.
    pub short_rate: u64,
    pub long_rate: u64,
    pub highest_rate: u64,
    /// The paging device's measured capacity (pages per busy second), 0 if unmeasured.
    pub capacity: u64,
    /// Swapping starts above `start` and tasks come back below `stop` (pages per second).
    pub start: u64,
    pub stop: u64,
    /// The paging device's busy time, percent, 5 s and 30 s averages (with a device, the
    /// thresholds are 30% and 10% of it).
    pub busy_short: u64,
    pub busy_long: u64,
    pub swap_outs: u64,
    pub swap_ins: u64,
    pub ins_rate_fell: u64,
    pub ins_room: u64,
    pub ins_message: u64,
    pub ins_starved: u64,
    /// Moves asked for with `TaskSwap`.
    pub asked: u64,
    /// Passes that wanted a task out and found none eligible.
    pub none_eligible: u64,
    /// Tasks out now.
    pub swapped_out: u64,
    /// Entries of `trace` in use (oldest first).
    pub trace_len: u64,
    pub trace: [SwapEvent; TRACE_LEN],
}

impl SwapperInfo {
    const HEAD: usize = 19;
    pub const WORDS: usize = Self::HEAD + TRACE_LEN * SwapEvent::WORDS;
    pub const SIZE: usize = Self::WORDS * 8;

    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut w = [0; Self::WORDS];
        w[..Self::HEAD].copy_from_slice(&[
            self.enabled,
            self.short_rate,
            self.long_rate,
            self.highest_rate,
            self.capacity,
            self.start,
            self.stop,
            self.busy_short,
            self.busy_long,
            self.swap_outs,
            self.swap_ins,
            self.ins_rate_fell,
            self.ins_room,
            self.ins_message,
            self.ins_starved,
            self.asked,
            self.none_eligible,
            self.swapped_out,
            self.trace_len,
        ]);
        for (i, e) in self.trace.iter().enumerate() {
            let at = Self::HEAD + i * SwapEvent::WORDS;
            w[at..at + SwapEvent::WORDS].copy_from_slice(&e.to_words());
        }
        w
    }

    pub fn from_words(w: &[u64; Self::WORDS]) -> SwapperInfo {
        SwapperInfo {
            enabled: w[0],
            short_rate: w[1],
            long_rate: w[2],
            highest_rate: w[3],
            capacity: w[4],
            start: w[5],
            stop: w[6],
            busy_short: w[7],
            busy_long: w[8],
            swap_outs: w[9],
            swap_ins: w[10],
            ins_rate_fell: w[11],
            ins_room: w[12],
            ins_message: w[13],
            ins_starved: w[14],
            asked: w[15],
            none_eligible: w[16],
            swapped_out: w[17],
            trace_len: w[18].min(TRACE_LEN as u64),
            trace: core::array::from_fn(|i| {
                let at = Self::HEAD + i * SwapEvent::WORDS;
                SwapEvent::from_words(&w[at..at + SwapEvent::WORDS])
            }),
        }
    }

    /// The trace entries in use, oldest first.
    pub fn events(&self) -> &[SwapEvent] {
        &self.trace[..self.trace_len as usize]
    }
}

/// One task, as `HostTasks` reports it (`ps`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskInfo {
    /// Its index in the kernel's task table.
    pub id: u64,
    pub threads: u64,
    /// Pages its page tables map.
    pub resident_pages: u64,
    /// Pages of its memory the default pager holds (paged out).
    pub paged_out_pages: u64,
    /// Bytes its map covers.
    pub virtual_bytes: u64,
    /// 1 if the swapper has it out.
    pub swapped_out: u64,
    /// Threads held (ready to run once the task is back).
    pub held_threads: u64,
    /// 1 for a VM-privileged task (a pager, the backing store): never swapped.
    pub privileged: u64,
    /// Its job (tasks forked from one spawned task share it).
    pub job: u64,
    /// Pages its page tables take below the root (0 while swapped out: they are freed).
    pub table_pages: u64,
    /// Kernel memory it holds, in bytes: its records, its threads', its name space's and
    /// map's tables, its page tables (root included), and the ports it receives on with the
    /// messages queued there.
    pub kernel_bytes: u64,
    pub name: [u8; NAME_BYTES],
}

impl TaskInfo {
    pub const WORDS: usize = 15;
    pub const SIZE: usize = Self::WORDS * 8;

    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut w = [0; Self::WORDS];
        w[..8].copy_from_slice(&[
            self.id,
            self.threads,
            self.resident_pages,
            self.paged_out_pages,
            self.virtual_bytes,
            self.swapped_out,
            self.held_threads,
            self.privileged,
        ]);
        w[8] = self.job;
        w[9] = self.table_pages;
        w[10] = self.kernel_bytes;
        w[11..].copy_from_slice(&name_words(&self.name));
        w
    }

    pub fn from_words(w: &[u64]) -> TaskInfo {
        TaskInfo {
            id: w[0],
            threads: w[1],
            resident_pages: w[2],
            paged_out_pages: w[3],
            virtual_bytes: w[4],
            swapped_out: w[5],
            held_threads: w[6],
            privileged: w[7],
            job: w[8],
            table_pages: w[9],
            kernel_bytes: w[10],
            name: words_name(&w[11..15]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_go_through_words_unchanged() {
        let mut info = SwapperInfo {
            enabled: 1,
            short_rate: 2,
            capacity: 900,
            swap_outs: 3,
            trace_len: 2,
            ..SwapperInfo::default()
        };
        info.trace[1] = SwapEvent {
            tick: 7,
            task: 4,
            out: 1,
            why: WHY_THRASHING,
            pages: 512,
            short_rate: 300,
            long_rate: 200,
            threshold: 270,
            name: name_bytes("sheeptest"),
        };
        let back = SwapperInfo::from_words(&info.to_words());
        assert_eq!(back, info);
        assert_eq!(name_str(&back.events()[1].name), "sheeptest");
        let task = TaskInfo {
            id: 3,
            threads: 1,
            resident_pages: 10,
            table_pages: 4,
            kernel_bytes: 23_456,
            name: name_bytes("a name longer than thirty-two bytes, cut"),
            ..TaskInfo::default()
        };
        let back = TaskInfo::from_words(&task.to_words());
        assert_eq!(back, task);
        assert_eq!(name_str(&back.name), "a name longer than thirty-two by");
    }
}

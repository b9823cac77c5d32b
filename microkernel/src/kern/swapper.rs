//! The task swapper's policy: when paging is too heavy, which task to suspend so that its
//! pages age out and leave in clusters, and when to bring suspended tasks back, first out,
//! first in. Pure code over readings the kernel takes once a second (host-tested); the
//! kernel applies its decisions (`kern::sched`: stopping and restarting threads, discarding
//! page tables).
//!
//! As OSF/1's swapper: short and long paging-rate averages (5 s and 30 s), swapping starts
//! above 30% of a reference rate and tasks come back below 10%, a task must have been
//! resident 6 s to be chosen, at least 4 tasks stay active, VM-privileged tasks (pagers)
//! are never chosen, and the largest resident task goes. Beyond OSF, with a paging device
//! the thresholds are fractions of its measured capacity, not of the highest rate seen:
//! paging is heavy when it keeps the device busy more than 30% of the time (5 s average;
//! 10% over 30 s), calm below 10%, so they mean the same on a slow disk and a fast one (on
//! which no rate is heavy); the capacity (pages it moves per second of being busy) turns
//! them into rates for reports. Without a device (a memory-only pager) the highest rate
//! seen stands in, as in OSF. A task also comes back as soon as free memory holds what it
//! had; and one kept out longer than a bound comes back even while paging stays heavy, so
//! nobody starves.

use libipc::abi::swapper::{
    WHY_ASKED, WHY_MESSAGE, WHY_RATE_FELL, WHY_ROOM, WHY_STARVED, WHY_THRASHING,
};

/// Timer ticks per second.
pub const TICKS_PER_SECOND: u64 = 100;

/// Rates are kept in pages per second, in fixed point with this many fraction bits.
const FRACTION_BITS: u32 = 8;

/// Free pages beyond a swapped-out task's own that bring it back (its stack, its page
/// tables, what it touches anew).
const ROOM_MARGIN_PAGES: u64 = 64;

/// Trace entries kept (the newest).
pub const TRACE_LEN: usize = 32;

/// The policy's settings (OSF's values by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub enabled: bool,
    /// The short and long averages' windows, in seconds.
    pub short_seconds: u64,
    pub long_seconds: u64,
    /// Swapping starts above this percentage of the reference rate (the 5 s average; the
    /// 30 s one must be above the stop level: the load lasts), and tasks come back below
    /// the stop percentage.
    pub start_percent: u64,
    pub stop_percent: u64,
    /// A task must have been resident this long to be swapped out.
    pub min_resident_ticks: u64,
    /// A task stays out at least this long before paging's fall brings it back.
    pub min_swapped_ticks: u64,
    /// A task out this long comes back whatever the paging rate (no starvation).
    pub max_swapped_ticks: u64,
    /// Tasks that are not VM-privileged and not swapped out never fall below this.
    pub min_active: usize,
    /// A task with fewer resident pages frees too little to be worth stopping.
    pub min_pages: u64,
    /// Device readings with the device busy less than this percentage of the time say
    /// too little of its capacity to be used for it.
    pub capacity_min_busy_percent: u64,
}

impl Config {
    pub const OSF: Config = Config {
        enabled: true,
        short_seconds: 5,
        long_seconds: 30,
        start_percent: 30,
        stop_percent: 10,
        min_resident_ticks: 6 * TICKS_PER_SECOND,
        min_swapped_ticks: 2 * TICKS_PER_SECOND,
        max_swapped_ticks: 30 * TICKS_PER_SECOND,
        min_active: 4,
        min_pages: 64,
        capacity_min_busy_percent: 20,
    };
}

/// Cumulative counters the kernel reads once a second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// The tick it was taken at.
    pub now: u64,
    /// Pages paged in and out so far.
    pub paged: u64,
    /// Pages the paging device has moved so far.
    pub device_pages: u64,
    /// A clock in cycles (the time-stamp counter) now, and the cycles so far during which
    /// the paging device had a transfer in flight.
    pub cycles: u64,
    pub device_busy_cycles: u64,
    /// Free pages now, above what the pageout daemon keeps free.
    pub free_pages: u64,
}

/// A task the swapper may choose, as the kernel sees it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<T> {
    pub task: T,
    /// Pages its page tables map.
    pub resident_pages: u64,
    /// The tick it was created or last swapped in at.
    pub resident_since: u64,
    /// A pager or the backing store: never swapped.
    pub privileged: bool,
}

/// What the swapper wants done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<T> {
    SwapOut(T),
    SwapIn(T),
}

/// Why a task went out or came back (the trace and the counters say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Why {
    /// Out: paging above the start threshold; this was the largest eligible task.
    Thrashing = WHY_THRASHING as u8,
    /// In: paging fell below the stop threshold; it was the first out.
    RateFell = WHY_RATE_FELL as u8,
    /// In: a message arrived for one of its threads.
    Message = WHY_MESSAGE as u8,
    /// In: it had been out for the longest time allowed.
    Starved = WHY_STARVED as u8,
    /// Out or in: asked for (`task_swap`).
    Asked = WHY_ASKED as u8,
    /// In: free memory holds the pages it had when it went out (other tasks ended or
    /// shrank), whatever the rates' averages still say.
    Room = WHY_ROOM as u8,
}

/// One decision, as traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<T> {
    pub tick: u64,
    pub task: T,
    /// Out (true) or in.
    pub out: bool,
    pub why: Why,
    /// The task's resident pages when it went out (0 for swap-ins).
    pub pages: u64,
    /// Rates at that moment, pages per second: the short and long averages and the
    /// threshold crossed (start for outs, stop for ins).
    pub short_rate: u64,
    pub long_rate: u64,
    pub threshold: u64,
}

/// What the swapper has done, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub swap_outs: u64,
    pub swap_ins: u64,
    /// Swap-ins by cause.
    pub ins_rate_fell: u64,
    pub ins_room: u64,
    pub ins_message: u64,
    pub ins_starved: u64,
    pub asked: u64,
    /// Passes in which swapping was wanted but no task was eligible.
    pub none_eligible: u64,
}

/// The swapper's state: rates, the tasks out (oldest first), counters and the trace.
pub struct Swapper<T> {
    pub config: Config,
    last: Option<Reading>,
    /// Averages in fixed point (pages per second << FRACTION_BITS).
    short: u64,
    long: u64,
    /// The highest short average seen.
    highest: u64,
    /// The paging device's busy fraction (1 << UTILIZATION_BITS: always busy), 5 s and 30 s
    /// averages; `device` once a device has moved pages.
    busy_short: u64,
    busy_long: u64,
    device: bool,
    /// The paging device's capacity, pages per busy second (fixed point), once measured.
    capacity: Option<u64>,
    /// Tasks swapped out, first out first, with the tick each went and the pages it had.
    out: alloc::collections::VecDeque<(T, u64, u64)>,
    pub counters: Counters,
    trace: [Option<Event<T>>; TRACE_LEN],
    /// Events ever traced (the next goes at this modulo `TRACE_LEN`).
    traced: u64,
}

/// The averages, thresholds and capacity, in pages per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub short: u64,
    pub long: u64,
    pub highest: u64,
    /// 0 while unmeasured.
    pub capacity: u64,
    pub start: u64,
    pub stop: u64,
    /// The paging device's busy time, percent: 5 s and 30 s averages.
    pub busy_short: u64,
    pub busy_long: u64,
}

/// Fraction bits of the device's busy fraction.
const UTILIZATION_BITS: u32 = 16;

impl<T: Copy + Eq> Swapper<T> {
    pub fn new(config: Config) -> Self {
        Swapper {
            config,
            last: None,
            short: 0,
            long: 0,
            highest: 0,
            busy_short: 0,
            busy_long: 0,
            device: false,
            capacity: None,
            out: alloc::collections::VecDeque::new(),
            counters: Counters::default(),
            trace: [None; TRACE_LEN],
            traced: 0,
        }
    }

    /// Takes the counters read at `reading.now`: updates the averages (and the device's
    /// capacity) over the time since the last reading.
    pub fn sample(&mut self, reading: Reading) {
        let Some(last) = self.last.replace(reading) else {
            return;
        };
        let ticks = reading.now.saturating_sub(last.now);
        if ticks == 0 {
            return;
        }
        let per_second = |count: u64, ticks: u64| {
            (count.saturating_mul(TICKS_PER_SECOND) << FRACTION_BITS) / ticks.max(1)
        };
        let rate = per_second(reading.paged.saturating_sub(last.paged), ticks);
        let seconds = ticks.div_ceil(TICKS_PER_SECOND).max(1);
        self.short = approach(self.short, rate, seconds, self.config.short_seconds);
        self.long = approach(self.long, rate, seconds, self.config.long_seconds);
        self.highest = self.highest.max(self.short);
        let cycles = reading.cycles.saturating_sub(last.cycles);
        let busy = reading
            .device_busy_cycles
            .saturating_sub(last.device_busy_cycles)
            .min(cycles);
        let moved = reading.device_pages.saturating_sub(last.device_pages);
        self.device |= moved > 0;
        let utilization = match cycles {
            0 => 0,
            cycles => ((u128::from(busy) << UTILIZATION_BITS) / u128::from(cycles)) as u64,
        };
        self.busy_short = approach(
            self.busy_short,
            utilization,
            seconds,
            self.config.short_seconds,
        );
        self.busy_long = approach(
            self.busy_long,
            utilization,
            seconds,
            self.config.long_seconds,
        );
        if utilization * 100 >= self.config.capacity_min_busy_percent << UTILIZATION_BITS {
            let measured = (per_second(moved, ticks) << UTILIZATION_BITS) / utilization;
            self.capacity = Some(self.capacity.map_or(measured, |c| c.max(measured)));
        }
    }

    /// The rates now, whole pages per second.
    pub fn rates(&self) -> Rates {
        let reference = self.capacity.unwrap_or(self.highest);
        Rates {
            short: self.short >> FRACTION_BITS,
            long: self.long >> FRACTION_BITS,
            highest: self.highest >> FRACTION_BITS,
            capacity: self.capacity.unwrap_or(0) >> FRACTION_BITS,
            start: (reference * self.config.start_percent / 100) >> FRACTION_BITS,
            stop: (reference * self.config.stop_percent / 100) >> FRACTION_BITS,
            busy_short: (self.busy_short * 100) >> UTILIZATION_BITS,
            busy_long: (self.busy_long * 100) >> UTILIZATION_BITS,
        }
    }

    fn reference(&self) -> u64 {
        self.capacity.unwrap_or(self.highest)
    }

    /// Whether paging is heavy enough to swap a task out: the short average above the start
    /// level and the long one above the stop level (of the device's busy time, or without a
    /// device of the highest rate seen).
    pub fn thrashing(&self) -> bool {
        let (start, stop) = (self.config.start_percent, self.config.stop_percent);
        if self.device {
            return self.busy_short * 100 > start << UTILIZATION_BITS
                && self.busy_long * 100 > stop << UTILIZATION_BITS;
        }
        let reference = self.reference();
        reference > 0 && self.short * 100 > reference * start && self.long * 100 > reference * stop
    }

    /// Whether paging is light enough for tasks to come back.
    pub fn calm(&self) -> bool {
        if self.device {
            return self.busy_short * 100 < self.config.stop_percent << UTILIZATION_BITS;
        }
        self.short * 100 < self.reference() * self.config.stop_percent
    }

    /// Whether free memory holds `pages` and a margin besides.
    fn room_for(&self, pages: u64) -> bool {
        self.last
            .is_some_and(|r| r.free_pages >= pages + ROOM_MARGIN_PAGES)
    }

    /// What to do now, given every task (swapped-out ones included or not: those out are
    /// known here). One action a pass at most: a swap-in when the first task out has waited
    /// its longest, or paging is calm, or free memory holds what it had; else a swap-out
    /// when paging is heavy.
    pub fn decide(&mut self, now: u64, tasks: &[Candidate<T>]) -> Option<Action<T>> {
        if !self.config.enabled {
            // Switched off: only a message or a hand brings back a task swapped by hand.
            return None;
        }
        if let Some(&(task, since, pages)) = self.out.front() {
            let waited = now.saturating_sub(since);
            if waited >= self.config.max_swapped_ticks
                || (waited >= self.config.min_swapped_ticks
                    && (self.calm() || self.room_for(pages)))
            {
                return Some(Action::SwapIn(task));
            }
        }
        if !self.thrashing() {
            return None;
        }
        let active = tasks
            .iter()
            .filter(|c| !c.privileged && !self.is_out(c.task))
            .count();
        if active <= self.config.min_active {
            self.counters.none_eligible += 1;
            return None;
        }
        let chosen = tasks
            .iter()
            .filter(|c| {
                !c.privileged
                    && !self.is_out(c.task)
                    && c.resident_pages >= self.config.min_pages
                    && now.saturating_sub(c.resident_since) >= self.config.min_resident_ticks
            })
            .max_by_key(|c| c.resident_pages);
        match chosen {
            Some(c) => Some(Action::SwapOut(c.task)),
            None => {
                self.counters.none_eligible += 1;
                None
            }
        }
    }

    /// Why the first task out is coming back now (for the decision `decide` just made).
    pub fn why_in(&self, now: u64) -> Why {
        match self.out.front() {
            Some(&(_, since, _)) if now.saturating_sub(since) >= self.config.max_swapped_ticks => {
                Why::Starved
            }
            _ if self.calm() => Why::RateFell,
            _ => Why::Room,
        }
    }

    /// Whether any task is out (the kernel's wake paths look no further when none is).
    #[inline(always)]
    pub fn any_out(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn is_out(&self, task: T) -> bool {
        self.out.iter().any(|&(t, _, _)| t == task)
    }

    /// Tasks out, first out first, with the tick each went.
    pub fn swapped_out(&self) -> impl Iterator<Item = (T, u64)> + '_ {
        self.out.iter().map(|&(t, since, _)| (t, since))
    }

    /// `task` went out at `now` (with `pages` resident). Returns false, recording nothing,
    /// if the queue of tasks out cannot grow.
    pub fn note_out(&mut self, task: T, now: u64, pages: u64, why: Why) -> bool {
        if self.out.try_reserve(1).is_err() {
            return false;
        }
        self.out.push_back((task, now, pages));
        self.counters.swap_outs += 1;
        if why == Why::Asked {
            self.counters.asked += 1;
        }
        let threshold = self.rates().start;
        self.record(now, task, true, why, pages, threshold);
        true
    }

    /// `task` came back at `now`.
    pub fn note_in(&mut self, task: T, now: u64, why: Why) {
        let Some(i) = self.out.iter().position(|&(t, _, _)| t == task) else {
            return;
        };
        self.out.remove(i);
        let c = &mut self.counters;
        c.swap_ins += 1;
        match why {
            Why::RateFell => c.ins_rate_fell += 1,
            Why::Room => c.ins_room += 1,
            Why::Message => c.ins_message += 1,
            Why::Starved => c.ins_starved += 1,
            Why::Asked => c.asked += 1,
            Why::Thrashing => {}
        }
        let threshold = self.rates().stop;
        self.record(now, task, false, why, 0, threshold);
    }

    /// `task` is gone (it ended while out): forgotten, not counted as a swap-in.
    pub fn forget(&mut self, task: T) {
        self.out.retain(|&(t, _, _)| t != task);
    }

    fn record(&mut self, tick: u64, task: T, out: bool, why: Why, pages: u64, threshold: u64) {
        let rates = self.rates();
        self.trace[(self.traced % TRACE_LEN as u64) as usize] = Some(Event {
            tick,
            task,
            out,
            why,
            pages,
            short_rate: rates.short,
            long_rate: rates.long,
            threshold,
        });
        self.traced += 1;
    }

    /// The trace, oldest first.
    pub fn trace(&self) -> impl Iterator<Item = Event<T>> + '_ {
        let start = self.traced.saturating_sub(TRACE_LEN as u64);
        (start..self.traced).filter_map(|i| self.trace[(i % TRACE_LEN as u64) as usize])
    }
}

/// An exponential average moved towards `rate` for `seconds` seconds with a window of
/// `window` seconds (each second takes 1/window of the gap).
fn approach(average: u64, rate: u64, seconds: u64, window: u64) -> u64 {
    let window = window.max(1);
    let mut a = average;
    for _ in 0..seconds.min(window * 4) {
        if rate >= a {
            a += (rate - a).div_ceil(window);
        } else {
            a -= (a - rate).div_ceil(window);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = TICKS_PER_SECOND;

    fn swapper() -> Swapper<u32> {
        Swapper::new(Config::OSF)
    }

    /// Feeds `seconds` one-second readings paging `rate` pages a second, the device busy
    /// `busy_percent` of the time moving the same pages; returns the last tick.
    fn run(s: &mut Swapper<u32>, from: u64, seconds: u64, rate: u64, busy_percent: u64) -> u64 {
        let mut r = s.last.unwrap_or(Reading {
            now: from,
            ..Reading::default()
        });
        if s.last.is_none() {
            s.sample(r);
        }
        for _ in 0..seconds {
            r.now += S;
            r.paged += rate;
            if busy_percent > 0 {
                r.device_pages += rate;
            }
            r.cycles += 1_000_000_000;
            r.device_busy_cycles += 10_000_000 * busy_percent;
            s.sample(r);
        }
        r.now
    }

    fn task(task: u32, pages: u64, since: u64) -> Candidate<u32> {
        Candidate {
            task,
            resident_pages: pages,
            resident_since: since,
            privileged: false,
        }
    }

    #[test]
    fn the_averages_follow_the_rate_the_short_one_faster() {
        let mut s = swapper();
        run(&mut s, 0, 5, 1000, 0);
        let r = s.rates();
        assert!(r.short > 600 && r.short < 800, "{r:?}");
        assert!(r.long > 100 && r.long < 200, "{r:?}");
        run(&mut s, 0, 60, 1000, 0);
        let r = s.rates();
        assert!(r.short >= 990 && r.long > 850, "{r:?}");
        run(&mut s, 0, 10, 0, 0);
        let r = s.rates();
        assert!(r.short < 150 && r.long > 600, "{r:?}");
        assert_eq!(r.highest, 1000);
    }

    #[test]
    fn without_a_device_the_thresholds_are_osfs_fractions_of_the_highest_rate_seen() {
        let mut s = swapper();
        run(&mut s, 0, 60, 1000, 0);
        let r = s.rates();
        assert_eq!((r.capacity, r.start, r.stop), (0, 300, 100));
        assert!(s.thrashing());
    }

    #[test]
    fn with_a_device_the_thresholds_are_fractions_of_its_measured_capacity() {
        // 500 pages a second with the device busy half the time: it can move 1,000.
        let mut s = swapper();
        run(&mut s, 0, 40, 500, 50);
        let r = s.rates();
        assert_eq!(r.capacity, 1000);
        assert_eq!((r.start, r.stop), (300, 100));
        assert!(r.busy_short >= 49 && r.busy_long >= 35, "{r:?}");
        assert!(s.thrashing());
        // The same load on a device ten times faster is no reason to swap.
        let mut fast = swapper();
        run(&mut fast, 0, 40, 500, 5);
        assert!(!fast.thrashing(), "{:?}", fast.rates());
        // Busy 5%: too little to measure; one reading busy enough gives the capacity.
        assert_eq!(fast.rates().capacity, 0);
        let mut r = fast.last.unwrap();
        r.now += S;
        r.cycles += 1_000_000_000;
        r.paged += 500;
        r.device_pages += 2500;
        r.device_busy_cycles += 250_000_000;
        fast.sample(r);
        assert_eq!(fast.rates().capacity, 10_000);
        assert!(!fast.thrashing(), "{:?}", fast.rates());
        assert!(fast.calm());
    }

    #[test]
    fn a_brief_burst_does_not_start_swapping() {
        let mut s = swapper();
        let now = run(&mut s, 0, 5, 1000, 50);
        // The short average is high, the long one is not yet above the stop level.
        assert!(s.short * 100 > s.reference() * 30);
        let tasks = [1, 2, 3, 4, 5].map(|t| task(t, 100, 0));
        let long_ok = s.long * 100 > s.reference() * 10;
        assert_eq!(s.decide(now, &tasks).is_some(), long_ok);
        let mut quiet = swapper();
        let now = run(&mut quiet, 0, 60, 0, 0);
        assert_eq!(quiet.decide(now, &tasks), None);
    }

    #[test]
    fn the_largest_eligible_task_goes_out() {
        let mut s = swapper();
        let now = run(&mut s, 0, 60, 1000, 50);
        let mut priv_big = task(9, 10_000, 0);
        priv_big.privileged = true;
        let tasks = [
            priv_big,
            task(1, 100, 0),
            task(2, 900, now - S), // too young
            task(3, 500, 0),
            task(4, 10, 0), // too small
            task(5, 300, 0),
        ];
        assert_eq!(s.decide(now, &tasks), Some(Action::SwapOut(3)));
    }

    #[test]
    fn at_least_four_active_tasks_are_kept() {
        let mut s = swapper();
        let now = run(&mut s, 0, 60, 1000, 50);
        let tasks = [1, 2, 3, 4, 5].map(|t| task(t, 100 * u64::from(t), 0));
        assert_eq!(s.decide(now, &tasks), Some(Action::SwapOut(5)));
        assert!(s.note_out(5, now, 500, Why::Thrashing));
        assert_eq!(s.decide(now + 1, &tasks), None);
        assert_eq!(s.counters.none_eligible, 1);
        assert_eq!(s.decide(now, &tasks[..4]), None);
    }

    #[test]
    fn tasks_come_back_first_out_first_in_once_paging_is_calm() {
        let mut s = swapper();
        let now = run(&mut s, 0, 60, 1000, 50);
        let tasks: Vec<_> = (1..=8).map(|t| task(t, 100 * u64::from(t), 0)).collect();
        for expected in [8, 7, 6] {
            assert_eq!(s.decide(now, &tasks), Some(Action::SwapOut(expected)));
            s.note_out(expected, now, 0, Why::Thrashing);
        }
        // Still heavy: nobody comes back before the bound.
        assert_eq!(s.decide(now + 10 * S, &tasks), Some(Action::SwapOut(5)));
        // 20 s of calm: the short average falls below the stop level before the bound.
        let now = run(&mut s, 0, 20, 0, 0);
        assert!(s.calm());
        for expected in [8, 7, 6] {
            assert_eq!(s.decide(now, &tasks), Some(Action::SwapIn(expected)));
            assert_eq!(s.why_in(now), Why::RateFell);
            s.note_in(expected, now, Why::RateFell);
        }
        assert_eq!(s.decide(now, &tasks), None);
        assert_eq!(s.counters.ins_rate_fell, 3);
    }

    #[test]
    fn a_task_comes_back_once_free_memory_holds_it_whatever_the_averages() {
        let mut s = swapper();
        let now = run(&mut s, 0, 60, 1000, 50);
        let tasks: Vec<_> = (1..=6).map(|t| task(t, 100 * u64::from(t), 0)).collect();
        s.note_out(6, now, 600, Why::Thrashing);
        let mut r = s.last.unwrap();
        r.now = now + Config::OSF.min_swapped_ticks;
        r.paged += 1000 * 2;
        r.free_pages = 600 + ROOM_MARGIN_PAGES - 1;
        s.sample(r);
        assert!(s.thrashing());
        // Not quite room: another goes out instead.
        assert_eq!(s.decide(r.now, &tasks), Some(Action::SwapOut(5)));
        r.now += S;
        r.free_pages += 1;
        s.sample(r);
        assert_eq!(s.decide(r.now, &tasks), Some(Action::SwapIn(6)));
        assert_eq!(s.why_in(r.now), Why::Room);
        s.note_in(6, r.now, Why::Room);
        assert_eq!(s.counters.ins_room, 1);
    }

    #[test]
    fn a_task_out_too_long_comes_back_even_under_heavy_paging() {
        let mut s = swapper();
        let now = run(&mut s, 0, 60, 1000, 50);
        let tasks: Vec<_> = (1..=6).map(|t| task(t, 100 * u64::from(t), 0)).collect();
        s.note_out(6, now, 600, Why::Thrashing);
        let later = now + Config::OSF.max_swapped_ticks - 1;
        assert_eq!(s.decide(later, &tasks), Some(Action::SwapOut(5)));
        s.note_out(5, later, 500, Why::Thrashing);
        let later = now + Config::OSF.max_swapped_ticks;
        assert!(s.thrashing());
        assert_eq!(s.decide(later, &tasks), Some(Action::SwapIn(6)));
        assert_eq!(s.why_in(later), Why::Starved);
        s.note_in(6, later, Why::Starved);
        // Back in, it is too young to go again: another task goes if one must.
        let mut back = tasks.clone();
        back[5].resident_since = later;
        assert_eq!(s.decide(later, &back), Some(Action::SwapOut(4)));
        assert_eq!(s.counters.ins_starved, 1);
    }

    #[test]
    fn a_message_brings_a_task_back_out_of_turn() {
        let mut s = swapper();
        s.note_out(1, 0, 10, Why::Thrashing);
        s.note_out(2, 0, 10, Why::Thrashing);
        s.note_in(2, 5, Why::Message);
        assert!(!s.is_out(2) && s.is_out(1));
        assert_eq!(s.counters.ins_message, 1);
        let trace: Vec<_> = s.trace().collect();
        assert_eq!(trace.len(), 3);
        assert!(!trace[2].out && trace[2].why == Why::Message && trace[2].task == 2);
    }

    #[test]
    fn switched_off_it_swaps_nothing_and_leaves_tasks_swapped_by_hand_be() {
        let mut s = Swapper::new(Config {
            enabled: false,
            ..Config::OSF
        });
        let now = run(&mut s, 0, 60, 1000, 50);
        let tasks: Vec<_> = (1..=8).map(|t| task(t, 1000, 0)).collect();
        assert_eq!(s.decide(now, &tasks), None);
        s.note_out(3, now, 0, Why::Asked);
        let later = now + Config::OSF.max_swapped_ticks;
        assert_eq!(s.decide(later, &tasks), None);
        assert!(s.is_out(3));
    }

    #[test]
    fn a_task_that_ends_while_out_is_forgotten_and_the_trace_keeps_the_newest() {
        let mut s = swapper();
        for t in 0..40 {
            s.note_out(t, u64::from(t), 1, Why::Asked);
        }
        s.forget(0);
        assert!(!s.is_out(0));
        assert_eq!(s.swapped_out().count(), 39);
        let trace: Vec<_> = s.trace().collect();
        assert_eq!(trace.len(), TRACE_LEN);
        assert_eq!(trace[0].task, 40 - TRACE_LEN as u32);
        assert_eq!(trace[TRACE_LEN - 1].task, 39);
    }
}

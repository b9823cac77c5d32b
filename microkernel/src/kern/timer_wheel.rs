//! Deadlines of waiting threads: a timer wheel of intrusive lists.
//!
//! A thread waits with at most one deadline, so its record carries the links (no allocation:
//! arming a timeout cannot fail), and a wait that ends early unlinks its timer in O(1):
//! nothing stale accumulates however often waits are cut short. Each tick looks only at the
//! bucket of that tick.

/// Buckets; deadlines `d` and `d + SLOTS` share one.
pub const SLOTS: usize = 256;

/// Where the wheel keeps its links and deadlines: in the waiting objects.
pub trait TimerLinks<K: Copy + PartialEq> {
    fn timer(&self, element: K) -> Timer<K>;
    fn set_timer(&mut self, element: K, timer: Timer<K>);
}

/// An element's timer state: its deadline (if armed) and its neighbours in its bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer<K> {
    pub deadline: Option<u64>,
    pub previous: Option<K>,
    pub next: Option<K>,
}

impl<K> Timer<K> {
    /// Not armed.
    pub const DISARMED: Timer<K> = Timer {
        deadline: None,
        previous: None,
        next: None,
    };
}

impl<K> Default for Timer<K> {
    fn default() -> Self {
        Self::DISARMED
    }
}

pub struct TimerWheel<K> {
    heads: [Option<K>; SLOTS],
    /// Ticks up to this one have been expired.
    expired_until: u64,
    armed: usize,
}

impl<K: Copy + PartialEq> Default for TimerWheel<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + PartialEq> TimerWheel<K> {
    pub const fn new() -> Self {
        TimerWheel {
            heads: [None; SLOTS],
            expired_until: 0,
            armed: 0,
        }
    }

    pub fn armed(&self) -> usize {
        self.armed
    }

    /// Arms `element`'s timer for tick `deadline` (re-arming moves it).
    pub fn insert(&mut self, links: &mut impl TimerLinks<K>, element: K, deadline: u64) {
        self.remove(links, element);
        let slot = (deadline % SLOTS as u64) as usize;
        let head = self.heads[slot];
        if let Some(head) = head {
            let mut t = links.timer(head);
            t.previous = Some(element);
            links.set_timer(head, t);
        }
        links.set_timer(
            element,
            Timer {
                deadline: Some(deadline),
                previous: None,
                next: head,
            },
        );
        self.heads[slot] = Some(element);
        self.armed += 1;
    }

    /// Disarms `element`'s timer if armed.
    pub fn remove(&mut self, links: &mut impl TimerLinks<K>, element: K) {
        let t = links.timer(element);
        let Some(deadline) = t.deadline else { return };
        match t.previous {
            Some(previous) => {
                let mut p = links.timer(previous);
                p.next = t.next;
                links.set_timer(previous, p);
            }
            None => self.heads[(deadline % SLOTS as u64) as usize] = t.next,
        }
        if let Some(next) = t.next {
            let mut n = links.timer(next);
            n.previous = t.previous;
            links.set_timer(next, n);
        }
        links.set_timer(element, Timer::default());
        self.armed -= 1;
    }

    /// Disarms and returns, one at a time, every element whose deadline is at or before
    /// `now`; call until `None`.
    pub fn pop_expired(&mut self, links: &mut impl TimerLinks<K>, now: u64) -> Option<K> {
        if self.armed == 0 {
            self.expired_until = now;
            return None;
        }
        // Visit the buckets of the ticks not yet expired (all of them after a long gap).
        let first = self.expired_until.saturating_add(1).min(now);
        let span = (now - first + 1).min(SLOTS as u64);
        for tick in first..first + span {
            let mut cursor = self.heads[(tick % SLOTS as u64) as usize];
            while let Some(element) = cursor {
                let t = links.timer(element);
                if t.deadline.is_some_and(|d| d <= now) {
                    self.remove(links, element);
                    return Some(element);
                }
                cursor = t.next;
            }
        }
        self.expired_until = now;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Links(Vec<Timer<usize>>);

    impl TimerLinks<usize> for Links {
        fn timer(&self, e: usize) -> Timer<usize> {
            self.0[e]
        }
        fn set_timer(&mut self, e: usize, t: Timer<usize>) {
            self.0[e] = t;
        }
    }

    fn expired(w: &mut TimerWheel<usize>, l: &mut Links, now: u64) -> Vec<usize> {
        let mut out: Vec<usize> = core::iter::from_fn(|| w.pop_expired(l, now)).collect();
        out.sort();
        out
    }

    #[test]
    fn expires_in_deadline_order_by_tick() {
        let mut l = Links(vec![Timer::default(); 8]);
        let mut w = TimerWheel::new();
        w.insert(&mut l, 0, 5);
        w.insert(&mut l, 1, 3);
        w.insert(&mut l, 2, 5 + SLOTS as u64); // same bucket as 0, a lap later
        w.insert(&mut l, 3, 10);
        assert_eq!(expired(&mut w, &mut l, 2), Vec::<usize>::new());
        assert_eq!(expired(&mut w, &mut l, 5), vec![0, 1]);
        assert_eq!(w.armed(), 2);
        assert_eq!(expired(&mut w, &mut l, 300), vec![2, 3]);
        assert_eq!(w.armed(), 0);
    }

    #[test]
    fn early_removal_leaves_nothing_behind() {
        let mut l = Links(vec![Timer::default(); 4]);
        let mut w = TimerWheel::new();
        for round in 0..10_000u64 {
            w.insert(&mut l, (round % 4) as usize, round + 50);
            w.remove(&mut l, (round % 4) as usize);
        }
        assert_eq!(w.armed(), 0);
        assert!(w.heads.iter().all(Option::is_none));
        // Removing a disarmed timer is harmless.
        w.remove(&mut l, 1);
        assert_eq!(w.armed(), 0);
    }

    #[test]
    fn removal_from_the_middle_of_a_bucket() {
        let mut l = Links(vec![Timer::default(); 4]);
        let mut w = TimerWheel::new();
        for e in 0..4 {
            w.insert(&mut l, e, 7);
        }
        w.remove(&mut l, 2);
        w.remove(&mut l, 3); // the head
        assert_eq!(expired(&mut w, &mut l, 7), vec![0, 1]);
    }

    #[test]
    fn rearming_moves_the_timer() {
        let mut l = Links(vec![Timer::default(); 2]);
        let mut w = TimerWheel::new();
        w.insert(&mut l, 0, 4);
        w.insert(&mut l, 0, 40);
        assert_eq!(expired(&mut w, &mut l, 10), Vec::<usize>::new());
        assert_eq!(expired(&mut w, &mut l, 40), vec![0]);
    }
}

//! Intrusive FIFO queues of kernel objects and the O(1) priority run queues built from them.
//!
//! The link lives in the queued object (a thread is in at most one queue at a time: a run
//! queue or one wait queue), so queueing never allocates and so can never fail.

/// Where the queue finds the `next` link of an element.
pub trait Links<K: Copy + PartialEq> {
    fn next(&self, element: K) -> Option<K>;
    fn set_next(&mut self, element: K, next: Option<K>);
}

/// A first-in, first-out list threaded through its elements.
#[derive(Clone, Copy, Debug)]
pub struct Fifo<K> {
    head: Option<K>,
    tail: Option<K>,
}

impl<K> Default for Fifo<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> Fifo<K> {
    pub const fn new() -> Self {
        Fifo {
            head: None,
            tail: None,
        }
    }
}

impl<K: Copy + PartialEq> Fifo<K> {
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Elements queued, counted by walking the links (no count is kept: queueing is on the
    /// IPC fast path).
    pub fn len(&self, links: &impl Links<K>) -> usize {
        let mut count = 0;
        let mut cursor = self.head;
        while let Some(element) = cursor {
            count += 1;
            cursor = links.next(element);
        }
        count
    }

    pub fn front(&self) -> Option<K> {
        self.head
    }

    pub fn push_back(&mut self, links: &mut impl Links<K>, element: K) {
        links.set_next(element, None);
        match self.tail {
            Some(tail) => links.set_next(tail, Some(element)),
            None => self.head = Some(element),
        }
        self.tail = Some(element);
    }

    pub fn pop_front(&mut self, links: &mut impl Links<K>) -> Option<K> {
        let head = self.head?;
        self.head = links.next(head);
        if self.head.is_none() {
            self.tail = None;
        }
        links.set_next(head, None);
        Some(head)
    }

    /// Takes the head off a non-empty list for a caller that holds the head's record (found
    /// through `front`): `next` is the head's link, which the caller read and must now clear
    /// itself.
    pub fn pop_front_unlinked(&mut self, next: Option<K>) {
        debug_assert!(self.head.is_some());
        self.head = next;
        if next.is_none() {
            self.tail = None;
        }
    }

    /// Appends `element`, whose own link the caller clears, for a caller that sets the
    /// links itself: returns the previous tail, whose link must now name `element`.
    pub fn push_back_unlinked(&mut self, element: K) -> Option<K> {
        let previous = self.tail;
        if previous.is_none() {
            self.head = Some(element);
        }
        self.tail = Some(element);
        previous
    }

    /// Unlinks `element` wherever it is (O(position)); false if it is not queued here.
    pub fn remove(&mut self, links: &mut impl Links<K>, element: K) -> bool {
        let mut previous: Option<K> = None;
        let mut cursor = self.head;
        while let Some(current) = cursor {
            let next = links.next(current);
            if current == element {
                match previous {
                    Some(p) => links.set_next(p, next),
                    None => self.head = next,
                }
                if self.tail == Some(current) {
                    self.tail = previous;
                }
                links.set_next(current, None);
                return true;
            }
            previous = Some(current);
            cursor = next;
        }
        false
    }
}

/// Number of scheduling priorities; 0 is the lowest.
pub const PRIORITY_LEVELS: usize = 64;

/// One FIFO per priority and a bitmap of the non-empty ones: enqueue, dequeue and finding the
/// highest ready priority are O(1) whatever the number of threads.
pub struct RunQueues<K> {
    levels: [Fifo<K>; PRIORITY_LEVELS],
    non_empty: u64,
}

impl<K> Default for RunQueues<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> RunQueues<K> {
    pub const fn new() -> Self {
        RunQueues {
            levels: [const { Fifo::new() }; PRIORITY_LEVELS],
            non_empty: 0,
        }
    }

    /// The highest priority with a ready element.
    pub fn highest(&self) -> Option<u8> {
        (self.non_empty != 0).then(|| 63 - self.non_empty.leading_zeros() as u8)
    }
}

impl<K: Copy + PartialEq> RunQueues<K> {
    /// Queues `element` at the back of its priority's FIFO.
    pub fn enqueue(&mut self, links: &mut impl Links<K>, element: K, priority: u8) {
        let p = usize::from(priority).min(PRIORITY_LEVELS - 1);
        self.levels[p].push_back(links, element);
        self.non_empty |= 1 << p;
    }

    /// Takes the first element of the highest non-empty priority.
    pub fn dequeue(&mut self, links: &mut impl Links<K>) -> Option<(K, u8)> {
        let p = self.highest()?;
        let level = &mut self.levels[usize::from(p)];
        let element = level.pop_front(links)?;
        if level.is_empty() {
            self.non_empty &= !(1 << p);
        }
        Some((element, p))
    }

    /// Unlinks `element` queued at `priority`.
    pub fn remove(&mut self, links: &mut impl Links<K>, element: K, priority: u8) -> bool {
        let p = usize::from(priority).min(PRIORITY_LEVELS - 1);
        let removed = self.levels[p].remove(links, element);
        if self.levels[p].is_empty() {
            self.non_empty &= !(1 << p);
        }
        removed
    }

    pub fn len(&self, links: &impl Links<K>) -> usize {
        self.levels.iter().map(|level| level.len(links)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.non_empty == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct VecLinks(Vec<Option<usize>>);

    impl Links<usize> for VecLinks {
        fn next(&self, e: usize) -> Option<usize> {
            self.0[e]
        }
        fn set_next(&mut self, e: usize, next: Option<usize>) {
            self.0[e] = next;
        }
    }

    #[test]
    fn fifo_order_and_removal() {
        let mut links = VecLinks(vec![None; 8]);
        let mut q = Fifo::new();
        for e in 0..5 {
            q.push_back(&mut links, e);
        }
        assert!(q.remove(&mut links, 0));
        assert!(q.remove(&mut links, 4));
        assert!(q.remove(&mut links, 2));
        assert!(!q.remove(&mut links, 2));
        assert_eq!(q.len(&links), 2);
        q.push_back(&mut links, 6);
        let order: Vec<usize> = core::iter::from_fn(|| q.pop_front(&mut links)).collect();
        assert_eq!(order, vec![1, 3, 6]);
        assert!(q.is_empty());
    }

    #[test]
    fn unlinked_operations_match_the_linked_ones() {
        let mut links = VecLinks(vec![None; 8]);
        let mut q = Fifo::new();
        assert_eq!(q.push_back_unlinked(3), None);
        q.push_back(&mut links, 5);
        let previous = q.push_back_unlinked(6);
        assert_eq!(previous, Some(5));
        links.set_next(5, Some(6));
        assert_eq!(q.len(&links), 3);
        let next = links.next(3);
        assert_eq!(q.front(), Some(3));
        q.pop_front_unlinked(next);
        links.set_next(3, None);
        let order: Vec<usize> = core::iter::from_fn(|| q.pop_front(&mut links)).collect();
        assert_eq!(order, vec![5, 6]);
        assert!(q.is_empty());
    }

    #[test]
    fn highest_priority_first_fifo_within_a_level() {
        let mut links = VecLinks(vec![None; 8]);
        let mut rq = RunQueues::new();
        rq.enqueue(&mut links, 0, 10);
        rq.enqueue(&mut links, 1, 40);
        rq.enqueue(&mut links, 2, 10);
        rq.enqueue(&mut links, 3, 63);
        rq.enqueue(&mut links, 4, 200); // clamped to 63
        assert_eq!(rq.highest(), Some(63));
        let order: Vec<(usize, u8)> = core::iter::from_fn(|| rq.dequeue(&mut links)).collect();
        assert_eq!(order, vec![(3, 63), (4, 63), (1, 40), (0, 10), (2, 10)]);
        assert!(rq.is_empty());
        assert_eq!(rq.highest(), None);
    }

    #[test]
    fn removing_the_last_element_clears_its_level() {
        let mut links = VecLinks(vec![None; 4]);
        let mut rq = RunQueues::new();
        rq.enqueue(&mut links, 1, 5);
        rq.enqueue(&mut links, 2, 7);
        assert!(rq.remove(&mut links, 2, 7));
        assert_eq!(rq.highest(), Some(5));
        assert_eq!(rq.len(&links), 1);
    }
}

//! Intrusive FIFO queues of kernel objects and the O(1) priority run queues built from them.
//!
//! The link lives in the queued object (a thread is in at most one queue at a time: a run
//! queue or one wait queue), so queueing never allocates and so can never fail.

/// Where the queue finds the links of an element: `next`, and `previous`, which is right for
/// every queued element but the head (the head's is whatever it was: popping the head
/// touches only the head, as the IPC fast path does) and `None` for an element not queued.
pub trait Links<K: Copy + PartialEq> {
    fn next(&self, element: K) -> Option<K>;
    fn set_next(&mut self, element: K, next: Option<K>);
    fn previous(&self, element: K) -> Option<K>;
    fn set_previous(&mut self, element: K, previous: Option<K>);
}

/// A first-in, first-out list threaded through its elements. `tail` means something only
/// while the list is not empty (`head` is some): taking the last element off leaves it as it
/// was, one store fewer on the IPC fast path, where a server's queue empties at every call.
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
        let previous = self.push_back_unlinked(element);
        links.set_previous(element, previous);
        if let Some(tail) = previous {
            links.set_next(tail, Some(element));
        }
    }

    pub fn pop_front(&mut self, links: &mut impl Links<K>) -> Option<K> {
        let head = self.head?;
        self.head = links.next(head);
        links.set_next(head, None);
        links.set_previous(head, None);
        Some(head)
    }

    /// Takes the head off a non-empty list for a caller that holds the head's record (found
    /// through `front`): `next` is the head's link, which the caller read and must now clear
    /// itself, with its `previous`.
    pub fn pop_front_unlinked(&mut self, next: Option<K>) {
        debug_assert!(self.head.is_some());
        self.head = next;
    }

    /// Appends `element`, whose own link the caller clears, for a caller that sets the
    /// links itself: returns the previous tail, whose link must now name `element`, and
    /// which must be `element`'s `previous`.
    pub fn push_back_unlinked(&mut self, element: K) -> Option<K> {
        let previous = if self.head.is_none() {
            self.head = Some(element);
            None
        } else {
            self.tail
        };
        self.tail = Some(element);
        previous
    }

    /// Unlinks `element` wherever it is, in constant time (the head is popped, any other
    /// element is unlinked through its `previous`); false if it is not queued. It must not
    /// be queued in another list.
    pub fn remove(&mut self, links: &mut impl Links<K>, element: K) -> bool {
        if self.head == Some(element) {
            self.pop_front(links);
            return true;
        }
        let Some(previous) = links.previous(element) else {
            return false;
        };
        let next = links.next(element);
        links.set_next(previous, next);
        match next {
            Some(next) => links.set_previous(next, Some(previous)),
            None => self.tail = Some(previous),
        }
        links.set_next(element, None);
        links.set_previous(element, None);
        true
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

    /// The element `dequeue` would take, left queued.
    pub fn first(&self) -> Option<K> {
        self.levels[usize::from(self.highest()?)].front()
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

    struct VecLinks(Vec<Option<usize>>, Vec<Option<usize>>);

    impl VecLinks {
        fn new(n: usize) -> Self {
            VecLinks(vec![None; n], vec![None; n])
        }
    }

    impl Links<usize> for VecLinks {
        fn next(&self, e: usize) -> Option<usize> {
            self.0[e]
        }
        fn set_next(&mut self, e: usize, next: Option<usize>) {
            self.0[e] = next;
        }
        fn previous(&self, e: usize) -> Option<usize> {
            self.1[e]
        }
        fn set_previous(&mut self, e: usize, previous: Option<usize>) {
            self.1[e] = previous;
        }
    }

    #[test]
    fn removal_anywhere_keeps_the_order_of_the_rest() {
        // Every order of removing three of six elements, with pops and pushes between.
        for first in 0..6 {
            for second in 0..6 {
                let mut links = VecLinks::new(8);
                let mut q = Fifo::new();
                for e in 0..6 {
                    q.push_back(&mut links, e);
                }
                let mut expected: Vec<usize> = (0..6).collect();
                for e in [first, second] {
                    let queued = expected.contains(&e);
                    assert_eq!(q.remove(&mut links, e), queued, "{first} {second}");
                    expected.retain(|&x| x != e);
                }
                assert_eq!(q.pop_front(&mut links), expected.first().copied());
                expected.remove(0);
                // The new head's `previous` is stale; removing it still works.
                if let Some(&head) = expected.first() {
                    assert!(q.remove(&mut links, head));
                    expected.remove(0);
                }
                q.push_back(&mut links, 7);
                expected.push(7);
                let order: Vec<usize> = core::iter::from_fn(|| q.pop_front(&mut links)).collect();
                assert_eq!(order, expected, "{first} {second}");
            }
        }
    }

    /// Links that count how many links are read.
    struct CountingLinks(VecLinks, core::cell::Cell<usize>);

    impl Links<usize> for CountingLinks {
        fn next(&self, e: usize) -> Option<usize> {
            self.1.set(self.1.get() + 1);
            self.0.next(e)
        }
        fn set_next(&mut self, e: usize, next: Option<usize>) {
            self.0.set_next(e, next);
        }
        fn previous(&self, e: usize) -> Option<usize> {
            self.1.set(self.1.get() + 1);
            self.0.previous(e)
        }
        fn set_previous(&mut self, e: usize, previous: Option<usize>) {
            self.0.set_previous(e, previous);
        }
    }

    #[test]
    fn removal_reads_a_constant_number_of_links_wherever_the_element_is() {
        let mut links = CountingLinks(VecLinks::new(10_000), core::cell::Cell::new(0));
        let mut q = Fifo::new();
        for e in 0..10_000 {
            q.push_back(&mut links, e);
        }
        for e in [9_999, 5_000, 1, 0, 7_777] {
            links.1.set(0);
            assert!(q.remove(&mut links, e));
            assert!(
                links.1.get() <= 2,
                "removing {e} read {} links",
                links.1.get()
            );
        }
        assert_eq!(q.len(&links), 9_995);
    }

    #[test]
    fn fifo_order_and_removal() {
        let mut links = VecLinks::new(8);
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
        let mut links = VecLinks::new(8);
        let mut q = Fifo::new();
        assert_eq!(q.push_back_unlinked(3), None);
        q.push_back(&mut links, 5);
        let previous = q.push_back_unlinked(6);
        assert_eq!(previous, Some(5));
        links.set_next(5, Some(6));
        links.set_previous(6, Some(5));
        assert_eq!(q.len(&links), 3);
        let next = links.next(3);
        assert_eq!(q.front(), Some(3));
        q.pop_front_unlinked(next);
        links.set_next(3, None);
        links.set_previous(3, None);
        // Unlinked as the linked operations would have: 6 can be removed from the middle.
        q.push_back(&mut links, 7);
        assert!(q.remove(&mut links, 6));
        q.push_back(&mut links, 6);
        let order: Vec<usize> = core::iter::from_fn(|| q.pop_front(&mut links)).collect();
        assert_eq!(order, vec![5, 7, 6]);
        assert!(q.is_empty());
    }

    #[test]
    fn an_emptied_list_starts_afresh_whatever_its_old_tail() {
        let mut links = VecLinks::new(8);
        let mut q = Fifo::new();
        q.push_back(&mut links, 1);
        assert_eq!(q.pop_front(&mut links), Some(1));
        // The old tail (1) is not linked to what comes next.
        q.push_back(&mut links, 2);
        assert_eq!((links.next(1), links.previous(2)), (None, None));
        q.push_back(&mut links, 3);
        // Emptied the fast path's way, then filled again its way.
        let next = links.next(2);
        q.pop_front_unlinked(next);
        links.set_next(2, None);
        let next = links.next(3);
        q.pop_front_unlinked(next);
        assert!(q.is_empty());
        assert_eq!(q.push_back_unlinked(4), None);
        assert_eq!(q.push_back_unlinked(5), Some(4));
        links.set_next(4, Some(5));
        links.set_previous(5, Some(4));
        let order: Vec<usize> = core::iter::from_fn(|| q.pop_front(&mut links)).collect();
        assert_eq!(order, vec![4, 5]);
    }

    #[test]
    fn highest_priority_first_fifo_within_a_level() {
        let mut links = VecLinks::new(8);
        let mut rq = RunQueues::new();
        rq.enqueue(&mut links, 0, 10);
        rq.enqueue(&mut links, 1, 40);
        rq.enqueue(&mut links, 2, 10);
        rq.enqueue(&mut links, 3, 63);
        rq.enqueue(&mut links, 4, 200); // clamped to 63
        assert_eq!(rq.highest(), Some(63));
        // `first` names what `dequeue` takes, and takes nothing.
        assert_eq!(rq.first(), Some(3));
        assert_eq!(rq.first(), Some(3));
        let order: Vec<(usize, u8)> = core::iter::from_fn(|| rq.dequeue(&mut links)).collect();
        assert_eq!(order, vec![(3, 63), (4, 63), (1, 40), (0, 10), (2, 10)]);
        assert_eq!(rq.first(), None);
        assert!(rq.is_empty());
        assert_eq!(rq.highest(), None);
    }

    #[test]
    fn removing_the_last_element_clears_its_level() {
        let mut links = VecLinks::new(4);
        let mut rq = RunQueues::new();
        rq.enqueue(&mut links, 1, 5);
        rq.enqueue(&mut links, 2, 7);
        assert!(rq.remove(&mut links, 2, 7));
        assert_eq!(rq.highest(), Some(5));
        assert_eq!(rq.len(&links), 1);
    }
}

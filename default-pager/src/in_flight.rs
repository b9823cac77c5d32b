//! The table of requests in flight: device operations issued and not yet completed, each
//! under a tag the completion hands back.
//!
//! Its capacity is fixed when the pager is built, so issuing a request never allocates: when
//! the table is full the pager stops taking work until a completion frees an entry.

use heapless::LinearMap;

/// Names one request in flight, e.g. as the device request's id. Tags are handed out in
/// increasing order (wrapping), skipping those in use, so a stale completion is unlikely to
/// match a newer request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(u32);

impl Tag {
    /// The tag as a number (to send with the device request).
    pub const fn value(self) -> u32 {
        self.0
    }

    /// The tag a completion carries back.
    pub const fn from_value(value: u32) -> Tag {
        Tag(value)
    }
}

/// At most `N` requests in flight, each with what the pager needs to finish it (`T`: the
/// object, the pages, the reply to send...).
#[derive(Debug)]
pub struct InFlight<T, const N: usize> {
    requests: LinearMap<Tag, T, N>,
    /// The tag to try first for the next request.
    next: u32,
}

impl<T, const N: usize> Default for InFlight<T, N> {
    fn default() -> Self {
        InFlight::new()
    }
}

impl<T, const N: usize> InFlight<T, N> {
    /// An empty table.
    pub const fn new() -> InFlight<T, N> {
        InFlight {
            requests: LinearMap::new(),
            next: 0,
        }
    }

    /// Records a request and returns its tag, or gives `request` back when the table is
    /// full.
    pub fn insert(&mut self, request: T) -> Result<Tag, T> {
        if self.requests.len() == N {
            return Err(request);
        }
        // Fewer than N tags are in use, so one of the next N is free.
        let mut tag = Tag(self.next);
        while self.requests.contains_key(&tag) {
            tag = Tag(tag.0.wrapping_add(1));
        }
        self.next = tag.0.wrapping_add(1);
        match self.requests.insert(tag, request) {
            Ok(_) => Ok(tag),
            // Cannot happen: there was room.
            Err((_, request)) => Err(request),
        }
    }

    /// Takes the request of `tag` out (its completion came), or `None` for an unknown tag.
    pub fn remove(&mut self, tag: Tag) -> Option<T> {
        self.requests.remove(&tag)
    }

    pub fn get(&self, tag: Tag) -> Option<&T> {
        self.requests.get(&tag)
    }

    pub fn get_mut(&mut self, tag: Tag) -> Option<&mut T> {
        self.requests.get_mut(&tag)
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.requests.len() == N
    }

    /// The requests in flight with their tags, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Tag, &T)> {
        self.requests.iter().map(|(tag, request)| (*tag, request))
    }

    /// The tag of a request `matches` accepts, e.g. a write in flight on a cluster a read
    /// must wait for.
    pub fn find(&self, mut matches: impl FnMut(&T) -> bool) -> Option<Tag> {
        self.iter()
            .find(|(_, request)| matches(request))
            .map(|(tag, _)| tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_full() {
        let mut table: InFlight<&str, 2> = InFlight::new();
        let first = table.insert("a").unwrap();
        let second = table.insert("b").unwrap();
        assert_ne!(first, second);
        assert!(table.is_full());
        assert_eq!(table.insert("c"), Err("c"));
        assert_eq!(table.get(second), Some(&"b"));
        assert_eq!(table.remove(first), Some("a"));
        assert_eq!(table.remove(first), None);
        assert_eq!(table.len(), 1);
        let third = table.insert("c").unwrap();
        assert_eq!(table.get(third), Some(&"c"));
        assert_eq!(table.find(|request| *request == "b"), Some(second));
        assert_eq!(table.find(|request| *request == "z"), None);
    }

    #[test]
    fn tags_increase_and_skip_those_in_use() {
        let mut table: InFlight<u32, 4> = InFlight::new();
        let tags: std::vec::Vec<u32> = (0..3).map(|n| table.insert(n).unwrap().value()).collect();
        assert_eq!(tags, [0, 1, 2]);
        table.remove(Tag::from_value(1)).unwrap();
        // Tag 1 is free again, but the next one handed out is 3: no early reuse.
        assert_eq!(table.insert(9).unwrap().value(), 3);
        // Wrapping around skips tags in use.
        table.next = u32::MAX;
        table.remove(Tag::from_value(3)).unwrap();
        assert_eq!(table.insert(10).unwrap().value(), u32::MAX);
        assert_eq!(table.insert(11).unwrap().value(), 1);
        assert_eq!(table.get(Tag::from_value(0)), Some(&0));
    }
}

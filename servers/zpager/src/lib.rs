//! zpager's store, host-tested: the pages of each memory object, kept LZ4-compressed in
//! memory, with fallible allocation and a byte budget.
//!
//! A page is kept one of three ways: an all-zero page as a marker with no bytes, a page that
//! compresses as its LZ4 block, any other page as a plain copy. Storing a run of pages is all
//! or nothing: everything is compressed and every allocation made before the object changes,
//! so a store that cannot take the pages (no memory, or over its budget) leaves the object
//! as it was and the caller gives the pages back to the kernel ([`StoreError`]).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(target_os = "none")]
pub mod pager;

use alloc::vec::Vec;

use hashbrown::HashMap;
use libipc::abi::syscall::PAGE_SIZE;
use libipc::pager::MAX_CLUSTER_PAGES;

/// Bytes in a page, as an index.
const PAGE: usize = PAGE_SIZE as usize;

pub use libipc::pager::STACKED;

/// `PagerError::Failed` codes zpager answers with.
pub mod failure {
    /// No memory for the pages of a supply.
    pub const NO_MEMORY: u32 = 1;
    /// A stored page did not decompress to a whole page (a bug: it never should).
    pub const CORRUPT: u32 = 2;
    /// The backing store zpager is stacked in front of failed a request.
    pub const BACKING: u32 = 3;
}

/// Why the store did not do what it was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The range is not whole pages inside the object, or is longer than a cluster may be.
    BadRange,
    /// An allocation failed.
    NoMemory,
    /// The pages would take the store past its byte budget.
    OverBudget,
    /// A stored page did not decompress to a whole page.
    Corrupt,
}

/// How one page is kept.
#[derive(Debug)]
enum Kept {
    /// All zero: nothing to keep.
    Zero,
    /// Its LZ4 block.
    Compressed(Vec<u8>),
    /// A copy: compressing did not make it smaller.
    Plain(Vec<u8>),
}

impl Kept {
    /// Bytes of contents it holds (what the budget counts).
    fn bytes(&self) -> usize {
        match self {
            Kept::Zero => 0,
            Kept::Compressed(bytes) | Kept::Plain(bytes) => bytes.len(),
        }
    }

    fn is_zero(&self) -> bool {
        matches!(self, Kept::Zero)
    }

    /// Writes the page into `out` (one page).
    fn expand(&self, out: &mut [u8]) -> Result<(), StoreError> {
        match self {
            Kept::Zero => out.fill(0),
            Kept::Plain(bytes) => out.copy_from_slice(bytes),
            Kept::Compressed(block) => match lz4_flex::block::decompress_into(block, out) {
                Ok(PAGE) => {}
                _ => return Err(StoreError::Corrupt),
            },
        }
        Ok(())
    }
}

/// The pages kept for one memory object: page index → page, for pages inside the object's
/// size. `bytes` and `zero_pages` always sum up what `pages` holds.
#[derive(Debug)]
pub struct ObjectPages {
    /// The object's size in pages.
    size_pages: u64,
    pages: HashMap<u64, Kept>,
    bytes: usize,
    zero_pages: usize,
}

impl ObjectPages {
    /// No pages yet, for an object of `size` bytes (rounded up to whole pages).
    pub fn new(size: u64) -> ObjectPages {
        ObjectPages {
            size_pages: size.div_ceil(PAGE_SIZE),
            pages: HashMap::new(),
            bytes: 0,
            zero_pages: 0,
        }
    }

    /// Pages kept (zero pages included).
    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Of those, the all-zero pages (kept as markers).
    pub fn zero_pages(&self) -> usize {
        self.zero_pages
    }

    /// Bytes the kept pages take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the store keeps page `page` (an index) of the object.
    pub fn holds(&self, page: u64) -> bool {
        self.pages.contains_key(&page)
    }

    /// The first page and the number of pages of `[offset, offset + length)`, if that is a
    /// run of one to [`MAX_CLUSTER_PAGES`] whole pages inside the object.
    fn range(&self, offset: u64, length: u64) -> Result<(u64, u64), StoreError> {
        let aligned = offset.is_multiple_of(PAGE_SIZE) && length.is_multiple_of(PAGE_SIZE);
        let (first, count) = (offset / PAGE_SIZE, length / PAGE_SIZE);
        let inside = first
            .checked_add(count)
            .is_some_and(|end| end <= self.size_pages);
        if aligned && (1..=u64::from(MAX_CLUSTER_PAGES)).contains(&count) && inside {
            Ok((first, count))
        } else {
            Err(StoreError::BadRange)
        }
    }
}

/// What the store has done since it started, and what it holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Pages held now, in all objects (zero pages included).
    pub pages: u64,
    /// Of those, all-zero pages (held as markers without bytes).
    pub zero_pages: u64,
    /// Bytes the held pages take (compressed, or plain when compressing did not help).
    pub bytes: u64,
    /// Returns stored.
    pub returns: u64,
    /// Returns refused (no memory, or over the budget).
    pub refusals: u64,
    /// Pages in the returns stored.
    pub pages_returned: u64,
    /// Requests answered (with data or unavailable).
    pub requests: u64,
    /// Of those, the ones answered unavailable.
    pub unavailable: u64,
    /// Pages supplied with data.
    pub pages_supplied: u64,
}

/// The store: compresses pages into objects' [`ObjectPages`] and reads them back, keeping
/// the bytes held at most `limit` and the [`Statistics`].
#[derive(Debug)]
pub struct Store {
    /// Room for one page's LZ4 block (its worst case).
    scratch: Vec<u8>,
    limit: usize,
    statistics: Statistics,
}

impl Store {
    /// An empty store that holds at most `limit` bytes of page contents (zero pages and
    /// the bookkeeping not counted).
    pub fn new(limit: usize) -> Result<Store, StoreError> {
        let scratch = zeroed(lz4_flex::block::get_maximum_output_size(PAGE))?;
        Ok(Store {
            scratch,
            limit,
            statistics: Statistics::default(),
        })
    }

    pub fn statistics(&self) -> Statistics {
        self.statistics
    }

    /// Stores the pages of `data` (whole pages) at `offset` of `object`, replacing what it
    /// held there; all or nothing. `dirty` false says the pages were not written since
    /// they were last stored: when the object holds them all, they are not stored again.
    pub fn put(
        &mut self,
        object: &mut ObjectPages,
        offset: u64,
        data: &[u8],
        dirty: bool,
    ) -> Result<(), StoreError> {
        let (first, count) = object.range(offset, data.len() as u64)?;
        let outcome = self.put_pages(object, first, count, data, dirty);
        match outcome {
            Ok(()) => {
                self.statistics.returns += 1;
                self.statistics.pages_returned += count;
            }
            Err(_) => self.statistics.refusals += 1,
        }
        outcome
    }

    fn put_pages(
        &mut self,
        object: &mut ObjectPages,
        first: u64,
        count: u64,
        data: &[u8],
        dirty: bool,
    ) -> Result<(), StoreError> {
        let held = |page: &u64| object.pages.contains_key(page);
        if !dirty && (first..first + count).all(|page| held(&page)) {
            return Ok(());
        }
        // Everything that can fail, first.
        let mut kept = Vec::new();
        kept.try_reserve_exact(data.len() / PAGE)
            .map_err(|_| StoreError::NoMemory)?;
        for page in data.chunks_exact(PAGE) {
            kept.push(self.compress(page)?);
        }
        let replaced: usize = (first..first + count)
            .filter_map(|page| object.pages.get(&page))
            .map(Kept::bytes)
            .sum();
        let added: usize = kept.iter().map(Kept::bytes).sum();
        let total = self.statistics.bytes as usize - replaced + added;
        if total > self.limit {
            return Err(StoreError::OverBudget);
        }
        let new_pages = (first..first + count).filter(|page| !held(page)).count();
        object
            .pages
            .try_reserve(new_pages)
            .map_err(|_| StoreError::NoMemory)?;
        // Then the change, which cannot fail: the map has room for the new pages.
        for (page, kept) in (first..).zip(kept) {
            self.account(object, &kept, 1);
            if let Some(old) = object.pages.insert(page, kept) {
                self.account(object, &old, -1);
            }
        }
        Ok(())
    }

    /// Counts `kept` in (`sign` 1) or out (-1) of `object`'s and the store's sums.
    fn account(&mut self, object: &mut ObjectPages, kept: &Kept, sign: i64) {
        let (bytes, zero) = (kept.bytes() as i64 * sign, i64::from(kept.is_zero()) * sign);
        object.bytes = (object.bytes as i64 + bytes) as usize;
        object.zero_pages = (object.zero_pages as i64 + zero) as usize;
        let statistics = &mut self.statistics;
        statistics.bytes = (statistics.bytes as i64 + bytes) as u64;
        statistics.zero_pages = (statistics.zero_pages as i64 + zero) as u64;
        statistics.pages = (statistics.pages as i64 + sign) as u64;
    }

    /// How `page` (one page) is best kept, in fresh memory.
    fn compress(&mut self, page: &[u8]) -> Result<Kept, StoreError> {
        if page.iter().all(|&byte| byte == 0) {
            return Ok(Kept::Zero);
        }
        match lz4_flex::block::compress_into(page, &mut self.scratch) {
            Ok(length) if length < PAGE => Ok(Kept::Compressed(copy(&self.scratch[..length])?)),
            _ => Ok(Kept::Plain(copy(page)?)),
        }
    }

    /// Checks a request for `[offset, offset + length)` of `object` and counts it; whether
    /// any page of it holds data (else the answer is "unavailable": the kernel fills the
    /// pages with zeros, which is what absent and zero pages hold alike).
    pub fn request(
        &mut self,
        object: &ObjectPages,
        offset: u64,
        length: u64,
    ) -> Result<bool, StoreError> {
        let (first, count) = object.range(offset, length)?;
        let has_data = (first..first + count)
            .any(|page| object.pages.get(&page).is_some_and(|kept| !kept.is_zero()));
        self.statistics.requests += 1;
        if !has_data {
            self.statistics.unavailable += 1;
        }
        Ok(has_data)
    }

    /// Writes the pages at `offset` of `object` into `out` (whole pages): held pages as
    /// they were stored, others as zeros. The store keeps its copies.
    pub fn read(
        &mut self,
        object: &ObjectPages,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        let (first, _) = object.range(offset, out.len() as u64)?;
        for (page, out) in (first..).zip(out.chunks_exact_mut(PAGE)) {
            match object.pages.get(&page) {
                Some(kept) => kept.expand(out)?,
                None => out.fill(0),
            }
        }
        self.statistics.pages_supplied += (out.len() / PAGE) as u64;
        Ok(())
    }

    /// Drops the pages `[first, first + count)` of `object` (newer copies went elsewhere).
    pub fn drop_pages(&mut self, object: &mut ObjectPages, first: u64, count: u64) {
        for page in first..first + count {
            if let Some(kept) = object.pages.remove(&page) {
                self.account(object, &kept, -1);
            }
        }
    }

    /// Drops `object`'s pages (the object is gone).
    pub fn remove(&mut self, object: ObjectPages) {
        for kept in object.pages.values() {
            let statistics = &mut self.statistics;
            statistics.bytes -= kept.bytes() as u64;
            statistics.zero_pages -= u64::from(kept.is_zero());
            statistics.pages -= 1;
        }
    }
}

/// `length` zero bytes, allocated fallibly.
fn zeroed(length: usize) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(length)
        .map_err(|_| StoreError::NoMemory)?;
    bytes.resize(length, 0);
    Ok(bytes)
}

/// A copy of `bytes`, allocated fallibly.
fn copy(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut copy = Vec::new();
    copy.try_reserve_exact(bytes.len())
        .map_err(|_| StoreError::NoMemory)?;
    copy.extend_from_slice(bytes);
    Ok(copy)
}

/// Where the pages of a request are, when zpager is stacked in front of a backing store (the
/// disk pager): zpager keeps what fits its budget, and returns it cannot keep go on to the
/// backing store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The first `pages` pages of the request are in the store or nowhere (zeros): answer
    /// from the store. `whole` says no page of the request is in the backing store, so
    /// "unavailable" may answer for all of it when none holds data.
    Store { pages: u64, whole: bool },
    /// The first `pages` pages are in the backing store only: ask it.
    Backing { pages: u64 },
}

/// Which part of the request `[first, first + count)` (page indexes, `count` at least 1)
/// to answer first, and from where: `on_backing(page)` says whether the backing store holds
/// the newest copy of a page (the store's copy, if any, is newer otherwise).
pub fn route(first: u64, count: u64, on_backing: impl Fn(u64) -> bool) -> Route {
    let pages = first..first + count.max(1);
    if on_backing(first) {
        let run = pages.take_while(|&page| on_backing(page)).count() as u64;
        return Route::Backing { pages: run };
    }
    let run = pages.clone().take_while(|&page| !on_backing(page)).count() as u64;
    Route::Store {
        pages: run,
        whole: run == count.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of compressible text: `seed` in every line.
    fn text_page(seed: u64) -> Vec<u8> {
        let mut page = Vec::new();
        while page.len() < PAGE {
            page.extend_from_slice(format!("page {seed:016x} line {:04}\n", page.len()).as_bytes());
        }
        page.truncate(PAGE);
        page
    }

    /// A page that does not compress (xorshift output).
    fn noise_page(seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let mut page = Vec::with_capacity(PAGE);
        while page.len() < PAGE {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            page.extend_from_slice(&state.to_le_bytes());
        }
        page
    }

    fn read_back(store: &mut Store, object: &ObjectPages, page: u64, pages: usize) -> Vec<u8> {
        let mut out = vec![0xa5; pages * PAGE];
        store.read(object, page * PAGE_SIZE, &mut out).unwrap();
        out
    }

    #[test]
    fn pages_round_trip_compressed_or_plain() {
        let mut store = Store::new(usize::MAX).unwrap();
        let mut object = ObjectPages::new(16 * PAGE_SIZE);
        let data = [text_page(1), noise_page(2), text_page(3), noise_page(4)].concat();
        store.put(&mut object, 4 * PAGE_SIZE, &data, true).unwrap();
        assert_eq!(read_back(&mut store, &object, 4, 4), data);
        // A part of the run, too.
        assert_eq!(read_back(&mut store, &object, 5, 2), data[PAGE..3 * PAGE]);
        // Text pages shrink; noise pages are kept as they are.
        assert_eq!(object.pages(), 4);
        assert!(
            object.bytes() < 2 * PAGE + PAGE / 2,
            "{} bytes",
            object.bytes()
        );
        assert!(object.bytes() > 2 * PAGE);
        assert!(matches!(object.pages[&5], Kept::Plain(_)));
        assert!(matches!(object.pages[&4], Kept::Compressed(_)));
        let statistics = store.statistics();
        assert_eq!(
            (statistics.pages, statistics.bytes),
            (4, object.bytes() as u64)
        );
        assert_eq!((statistics.returns, statistics.pages_returned), (1, 4));
        assert_eq!(statistics.pages_supplied, 6);
    }

    #[test]
    fn zero_pages_are_markers_and_never_data() {
        let mut store = Store::new(usize::MAX).unwrap();
        let mut object = ObjectPages::new(8 * PAGE_SIZE);
        let zero = vec![0; PAGE];
        store
            .put(&mut object, 0, &[zero.clone(), zero.clone()].concat(), true)
            .unwrap();
        assert_eq!(
            (object.pages(), object.zero_pages(), object.bytes()),
            (2, 2, 0)
        );
        // Only zeros: the kernel fills the pages itself.
        assert_eq!(store.request(&object, 0, 2 * PAGE_SIZE), Ok(false));
        let data = [text_page(7), zero.clone()].concat();
        store.put(&mut object, 2 * PAGE_SIZE, &data, true).unwrap();
        assert_eq!(store.request(&object, 0, 4 * PAGE_SIZE), Ok(true));
        assert_eq!(
            read_back(&mut store, &object, 0, 4),
            [zero.clone(), zero.clone(), data.clone()].concat()
        );
        let statistics = store.statistics();
        assert_eq!((statistics.requests, statistics.unavailable), (2, 1));
        assert_eq!((statistics.pages, statistics.zero_pages), (4, 3));
    }

    #[test]
    fn a_page_stored_again_replaces_the_old_one() {
        let mut store = Store::new(usize::MAX).unwrap();
        let mut object = ObjectPages::new(4 * PAGE_SIZE);
        store
            .put(&mut object, PAGE_SIZE, &noise_page(1), true)
            .unwrap();
        store
            .put(&mut object, PAGE_SIZE, &text_page(2), true)
            .unwrap();
        assert_eq!(read_back(&mut store, &object, 1, 1), text_page(2));
        assert_eq!(object.pages(), 1);
        assert_eq!(store.statistics().bytes, object.bytes() as u64);
        // Replaced by zeros: no data left.
        store.put(&mut object, PAGE_SIZE, &[0; PAGE], true).unwrap();
        assert_eq!(store.request(&object, 0, 4 * PAGE_SIZE), Ok(false));
        assert_eq!((store.statistics().bytes, store.statistics().pages), (0, 1));
        // A clean page it holds is not stored again (it is the same page).
        store
            .put(&mut object, PAGE_SIZE, &text_page(3), true)
            .unwrap();
        store
            .put(&mut object, PAGE_SIZE, &text_page(4), false)
            .unwrap();
        assert_eq!(read_back(&mut store, &object, 1, 1), text_page(3));
        // A clean page it does not hold is.
        store.put(&mut object, 0, &text_page(5), false).unwrap();
        assert_eq!(read_back(&mut store, &object, 0, 1), text_page(5));
    }

    #[test]
    fn pages_never_stored_read_as_zeros() {
        let mut store = Store::new(usize::MAX).unwrap();
        let mut object = ObjectPages::new(8 * PAGE_SIZE);
        assert_eq!(store.request(&object, 0, 4 * PAGE_SIZE), Ok(false));
        store
            .put(&mut object, 2 * PAGE_SIZE, &text_page(1), true)
            .unwrap();
        assert_eq!(
            store.request(&object, 4 * PAGE_SIZE, 4 * PAGE_SIZE),
            Ok(false)
        );
        assert_eq!(store.request(&object, 0, 4 * PAGE_SIZE), Ok(true));
        let back = read_back(&mut store, &object, 0, 4);
        assert!(back[..2 * PAGE].iter().all(|&b| b == 0));
        assert_eq!(back[2 * PAGE..3 * PAGE], text_page(1));
        assert!(back[3 * PAGE..].iter().all(|&b| b == 0));
    }

    #[test]
    fn ranges_outside_the_object_are_refused() {
        let mut store = Store::new(usize::MAX).unwrap();
        let mut object = ObjectPages::new(4 * PAGE_SIZE + 1);
        let page = text_page(1);
        for (offset, length) in [
            (1, PAGE_SIZE),
            (0, 0),
            (0, PAGE_SIZE + 8),
            (5 * PAGE_SIZE, PAGE_SIZE),
            (u64::MAX - PAGE_SIZE + 1, PAGE_SIZE),
            (0, 17 * PAGE_SIZE),
        ] {
            assert_eq!(
                store.request(&object, offset, length),
                Err(StoreError::BadRange),
                "{offset:#x}+{length:#x}"
            );
        }
        // The size is rounded up: page 4 is inside.
        store.put(&mut object, 4 * PAGE_SIZE, &page, true).unwrap();
        assert_eq!(
            store.put(&mut object, 5 * PAGE_SIZE, &page, true),
            Err(StoreError::BadRange)
        );
        assert_eq!(store.statistics().requests, 0);
    }

    #[test]
    fn over_the_budget_nothing_changes() {
        let mut store = Store::new(2 * PAGE + 100).unwrap();
        let mut object = ObjectPages::new(8 * PAGE_SIZE);
        let first = [noise_page(1), noise_page(2)].concat();
        store.put(&mut object, 0, &first, true).unwrap();
        // Two more pages, one of them over the budget: neither is stored.
        let more = [text_page(3), noise_page(4)].concat();
        assert_eq!(
            store.put(&mut object, 2 * PAGE_SIZE, &more, true),
            Err(StoreError::OverBudget)
        );
        assert_eq!(
            store.request(&object, 2 * PAGE_SIZE, 2 * PAGE_SIZE),
            Ok(false)
        );
        // Replacing a page by a smaller one counts only the difference.
        store.put(&mut object, 0, &text_page(5), true).unwrap();
        store
            .put(&mut object, 2 * PAGE_SIZE, &text_page(3), true)
            .unwrap();
        assert_eq!(read_back(&mut store, &object, 1, 1), noise_page(2));
        let statistics = store.statistics();
        assert_eq!((statistics.returns, statistics.refusals), (3, 1));
        assert!(statistics.bytes <= 2 * PAGE as u64 + 100);
    }

    #[test]
    fn removing_an_object_gives_its_bytes_back() {
        let mut store = Store::new(usize::MAX).unwrap();
        let mut kept = ObjectPages::new(4 * PAGE_SIZE);
        let mut gone = ObjectPages::new(4 * PAGE_SIZE);
        store.put(&mut kept, 0, &text_page(1), true).unwrap();
        let data = [noise_page(2), vec![0; PAGE], text_page(3)].concat();
        store.put(&mut gone, 0, &data, true).unwrap();
        store.remove(gone);
        let statistics = store.statistics();
        assert_eq!(
            (statistics.pages, statistics.zero_pages, statistics.bytes),
            (1, 0, kept.bytes() as u64)
        );
        assert_eq!(read_back(&mut store, &kept, 0, 1), text_page(1));
    }

    #[test]
    fn requests_are_routed_by_where_their_first_pages_are() {
        let on_disk = |pages: &'static [u64]| move |page: u64| pages.contains(&page);
        assert_eq!(
            route(0, 4, on_disk(&[])),
            Route::Store {
                pages: 4,
                whole: true
            }
        );
        assert_eq!(
            route(0, 4, on_disk(&[2])),
            Route::Store {
                pages: 2,
                whole: false
            }
        );
        assert_eq!(
            route(4, 4, on_disk(&[4, 5, 7])),
            Route::Backing { pages: 2 }
        );
        assert_eq!(route(8, 1, on_disk(&[8])), Route::Backing { pages: 1 });
    }

    #[test]
    fn dropped_pages_leave_the_store_and_its_sums() {
        let mut store = Store::new(1 << 20).unwrap();
        let mut object = ObjectPages::new(4 * PAGE_SIZE);
        let mut data = vec![0u8; 2 * PAGE];
        data[0] = 7;
        data[PAGE] = 9;
        store.put(&mut object, 0, &data, true).unwrap();
        assert!(object.holds(0) && object.holds(1));
        store.drop_pages(&mut object, 1, 1);
        assert!(object.holds(0) && !object.holds(1));
        assert_eq!(store.statistics().pages, 1);
        assert_eq!(object.pages(), 1);
    }
}

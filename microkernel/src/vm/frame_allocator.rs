//! Physical frame allocator: a two-level bitmap over physical memory, lowest free frame first.
//!
//! One bit per 4 KiB frame says whether it is free; a summary bitmap has one bit per 64-frame
//! word that holds any free frame, so finding the lowest free frame reads a few summary words
//! and then one frame word. A third bitmap records which frames are managed at all (handed in
//! by `add_free_range` and not taken out by `remove_range`), so that freeing a frame the
//! allocator never owned (a firmware hole, device memory) is refused instead of silently
//! adding it to the free set.

use core::fmt;

/// Size of one physical frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// Frames per bitmap word, and frame words per summary word.
const WORD_BITS: usize = 64;

/// Why `free` or `free_contiguous` refused. Each one is a caller bug; the allocator's state is
/// left unchanged so that the bug does not turn into two owners of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The address is not the start of a frame.
    Unaligned,
    /// A frame lies beyond the managed memory, or was never added or has been removed.
    NotManaged,
    /// A frame is already free: a double free.
    AlreadyFree,
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreeError::Unaligned => "address is not frame-aligned",
            FreeError::NotManaged => "frame is not managed by the allocator",
            FreeError::AlreadyFree => "frame is already free",
        })
    }
}

/// The physical frame allocator.
///
/// Invariants:
/// - a frame's `free_bits` bit is set only if its `managed_bits` bit is set, and bits for
///   frames at or beyond `frames` are never set;
/// - bit `w` of `summary` is set exactly when `free_bits[w] != 0`;
/// - `free` is the number of set bits in `free_bits`, `total` the number in `managed_bits`;
/// - every summary word below `hint` is zero (the lowest free frame is at or after
///   `hint * 64 * 64`).
pub struct FrameAllocator {
    /// One bit per frame, 1 = free.
    free_bits: &'static mut [u64],
    /// One bit per frame, 1 = owned by this allocator (free or handed out).
    managed_bits: &'static mut [u64],
    /// One bit per `free_bits` word, 1 = that word has a free frame.
    summary: &'static mut [u64],
    /// Number of frames the bitmaps cover: those wholly below `max_phys`.
    frames: usize,
    free: usize,
    total: usize,
    /// Lowest summary word that may be non-zero.
    hint: usize,
    /// Free frames kept apart from the bitmaps because they hold only zeros (page-table
    /// pages emptied entry by entry as their tables went, [`FrameAllocator::free_clean`]):
    /// a new table takes one without clearing 4 KiB. Counted in `free`; any allocation
    /// takes them once the bitmaps have nothing.
    clean: [u32; CLEAN_FRAMES],
    clean_len: usize,
}

/// The most cleared frames kept apart.
pub const CLEAN_FRAMES: usize = 64;

/// Number of frame-bitmap words covering `frames` frames.
const fn frame_words(frames: usize) -> usize {
    frames.div_ceil(WORD_BITS)
}

/// Bits `[low, high)` of a word, `low < high <= 64`.
const fn bit_mask(low: usize, high: usize) -> u64 {
    let width = high - low;
    if width == WORD_BITS {
        !0
    } else {
        ((1u64 << width) - 1) << low
    }
}

/// The words covering bits `[first, end)`, each with the mask of those bits inside it.
fn word_masks(first: usize, end: usize) -> impl Iterator<Item = (usize, u64)> {
    let words = if first < end {
        first / WORD_BITS..(end - 1) / WORD_BITS + 1
    } else {
        0..0
    };
    words.map(move |word| {
        let word_start = word * WORD_BITS;
        let low = first.max(word_start) - word_start;
        let high = end.min(word_start + WORD_BITS) - word_start;
        (word, bit_mask(low, high))
    })
}

/// Index of the lowest set bit at or after bit `from` in `bits`.
fn next_set_bit(bits: &[u64], from: usize) -> Option<usize> {
    let mut word = from / WORD_BITS;
    let mut value = *bits.get(word)? & (!0u64 << (from % WORD_BITS));
    loop {
        if value != 0 {
            return Some(word * WORD_BITS + value.trailing_zeros() as usize);
        }
        word += 1;
        value = *bits.get(word)?;
    }
}

impl FrameAllocator {
    /// Words of storage needed to manage the frames below `max_phys`: the free and managed
    /// bitmaps plus the summary.
    pub const fn storage_words(max_phys: u64) -> usize {
        let words = frame_words((max_phys / FRAME_SIZE) as usize);
        2 * words + words.div_ceil(WORD_BITS)
    }

    /// An allocator for the frames wholly below `max_phys`, none of them free or managed yet.
    ///
    /// # Panics
    /// If `storage` is shorter than `storage_words(max_phys)`: a boot-time sizing bug.
    pub fn new(storage: &'static mut [u64], max_phys: u64) -> Self {
        let frames = (max_phys / FRAME_SIZE) as usize;
        let words = frame_words(frames);
        assert!(
            storage.len() >= Self::storage_words(max_phys),
            "frame allocator storage too small: {} words, {} needed",
            storage.len(),
            Self::storage_words(max_phys)
        );
        // The storage may come straight from firmware memory: start from a known state.
        storage.fill(0);
        let (free_bits, rest) = storage.split_at_mut(words);
        let (managed_bits, rest) = rest.split_at_mut(words);
        let (summary, _) = rest.split_at_mut(words.div_ceil(WORD_BITS));
        Self {
            free_bits,
            managed_bits,
            summary,
            frames,
            free: 0,
            total: 0,
            hint: 0,
            clean: [0; CLEAN_FRAMES],
            clean_len: 0,
        }
    }

    /// Hands the whole frames inside `[start, end)` to the allocator as free (start is rounded
    /// up, end down, and the range is clipped to `max_phys`). Frames already managed are left
    /// as they are, so overlapping firmware map entries cannot free a frame in use.
    pub fn add_free_range(&mut self, start: u64, end: u64) {
        let first = start.div_ceil(FRAME_SIZE);
        let end = end / FRAME_SIZE;
        let (first, end) = self.clip(first, end);
        for (word, mask) in word_masks(first, end) {
            let added = mask & !self.managed_bits[word];
            self.managed_bits[word] |= added;
            self.free_bits[word] |= added;
            let count = added.count_ones() as usize;
            self.total += count;
            self.free += count;
            self.update_summary(word);
        }
    }

    /// Takes every frame overlapping `[start, end)` out of the allocator: it is no longer
    /// free, nor counted, nor accepted by `free` (for the bitmap's own storage, the kernel
    /// image, boot modules).
    pub fn remove_range(&mut self, start: u64, end: u64) {
        let first = start / FRAME_SIZE;
        let end = end.div_ceil(FRAME_SIZE);
        let (first, end) = self.clip(first, end);
        for (word, mask) in word_masks(first, end) {
            let removed = mask & self.managed_bits[word];
            let was_free = removed & self.free_bits[word];
            self.managed_bits[word] &= !removed;
            self.free_bits[word] &= !removed;
            self.total -= removed.count_ones() as usize;
            self.free -= was_free.count_ones() as usize;
            self.update_summary(word);
        }
    }

    /// Allocates the lowest free frame and returns its physical address.
    ///
    /// First fit on purpose: during early boot callers rely on low frames coming first.
    pub fn allocate(&mut self) -> Option<u64> {
        let Some(word) = self.first_free_word() else {
            return self.take_clean();
        };
        let bit = self.free_bits[word].trailing_zeros() as usize;
        self.free_bits[word] &= !(1u64 << bit);
        self.update_summary(word);
        self.free -= 1;
        Some(Self::address(word * WORD_BITS + bit))
    }

    /// Allocates `count` physically contiguous frames, the first aligned to `align` bytes (a
    /// power of two; anything up to `FRAME_SIZE` means frame alignment), and returns the
    /// address of the lowest such run. For DMA buffers and large pages.
    pub fn allocate_contiguous(&mut self, count: usize, align: u64) -> Option<u64> {
        if count == 0 || !align.is_power_of_two() {
            return None;
        }
        let align_frames = usize::try_from((align / FRAME_SIZE).max(1)).ok()?;
        let mut candidate = self.hint * WORD_BITS * WORD_BITS;
        loop {
            let first_free = self.next_free_frame(candidate)?;
            let start = first_free.checked_next_multiple_of(align_frames)?;
            let end = start.checked_add(count)?;
            if end > self.frames {
                return None;
            }
            match self.first_not_free(start, end) {
                // The run is blocked at `hole`: no run starting at or before it can fit.
                Some(hole) => candidate = hole + 1,
                None => {
                    for (word, mask) in word_masks(start, end) {
                        self.free_bits[word] &= !mask;
                        self.update_summary(word);
                    }
                    self.free -= count;
                    return Some(Self::address(start));
                }
            }
        }
    }

    /// Returns one allocated frame to the free set.
    pub fn free(&mut self, phys: u64) -> Result<(), FreeError> {
        self.free_contiguous(phys, 1)
    }

    /// Returns one allocated frame that holds only zeros: kept apart for
    /// [`FrameAllocator::allocate_clean`] while there is room, else freed as any other.
    pub fn free_clean(&mut self, phys: u64) -> Result<(), FreeError> {
        if self.clean_len == CLEAN_FRAMES {
            return self.free(phys);
        }
        if !phys.is_multiple_of(FRAME_SIZE) {
            return Err(FreeError::Unaligned);
        }
        let frame = usize::try_from(phys / FRAME_SIZE).map_err(|_| FreeError::NotManaged)?;
        if frame >= self.frames {
            return Err(FreeError::NotManaged);
        }
        let (word, bit) = (frame / WORD_BITS, 1u64 << (frame % WORD_BITS));
        if self.managed_bits[word] & bit == 0 {
            return Err(FreeError::NotManaged);
        }
        if self.free_bits[word] & bit != 0 || self.clean[..self.clean_len].contains(&(frame as u32))
        {
            return Err(FreeError::AlreadyFree);
        }
        self.clean[self.clean_len] = frame as u32;
        self.clean_len += 1;
        self.free += 1;
        Ok(())
    }

    /// A free frame and whether it holds only zeros: a cleared one if there is one, else
    /// the lowest free frame (whose contents are whatever was left in it).
    pub fn allocate_clean(&mut self) -> Option<(u64, bool)> {
        match self.take_clean() {
            Some(phys) => Some((phys, true)),
            None => self.allocate().map(|phys| (phys, false)),
        }
    }

    /// The cleared frame freed last, if any.
    fn take_clean(&mut self) -> Option<u64> {
        self.clean_len = self.clean_len.checked_sub(1)?;
        self.free -= 1;
        Some(Self::address(self.clean[self.clean_len] as usize))
    }

    /// Cleared frames kept apart now.
    pub fn clean_frames(&self) -> usize {
        self.clean_len
    }

    /// The cleared frames kept apart, their addresses.
    pub fn clean_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.clean[..self.clean_len]
            .iter()
            .map(|&frame| Self::address(frame as usize))
    }

    /// Returns `count` allocated frames starting at `phys` to the free set. Either all of them
    /// are freed or, on error, none.
    pub fn free_contiguous(&mut self, phys: u64, count: usize) -> Result<(), FreeError> {
        if !phys.is_multiple_of(FRAME_SIZE) {
            return Err(FreeError::Unaligned);
        }
        let first = usize::try_from(phys / FRAME_SIZE).map_err(|_| FreeError::NotManaged)?;
        let end = first.checked_add(count).ok_or(FreeError::NotManaged)?;
        if end > self.frames {
            return Err(FreeError::NotManaged);
        }
        // Check the whole run before changing anything.
        for (word, mask) in word_masks(first, end) {
            if self.managed_bits[word] & mask != mask {
                return Err(FreeError::NotManaged);
            }
            if self.free_bits[word] & mask != 0 {
                return Err(FreeError::AlreadyFree);
            }
        }
        for (word, mask) in word_masks(first, end) {
            self.free_bits[word] |= mask;
            self.update_summary(word);
        }
        self.free += count;
        Ok(())
    }

    /// Number of frames currently free.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Number of frames managed: free plus handed out.
    pub fn total_frames(&self) -> usize {
        self.total
    }

    /// Whether the frame containing `phys` is free.
    pub fn is_free(&self, phys: u64) -> bool {
        let frame = phys / FRAME_SIZE;
        frame < self.frames as u64 && {
            let frame = frame as usize;
            self.free_bits[frame / WORD_BITS] & (1u64 << (frame % WORD_BITS)) != 0
        }
    }

    /// Physical address of frame number `frame`.
    fn address(frame: usize) -> u64 {
        frame as u64 * FRAME_SIZE
    }

    /// Frame range `[first, end)` clipped to the frames the bitmaps cover, as indices.
    fn clip(&self, first: u64, end: u64) -> (usize, usize) {
        let limit = self.frames as u64;
        (first.min(limit) as usize, end.min(limit) as usize)
    }

    /// Restores the summary invariant for frame word `word`.
    fn update_summary(&mut self, word: usize) {
        let index = word / WORD_BITS;
        let bit = 1u64 << (word % WORD_BITS);
        if self.free_bits[word] != 0 {
            self.summary[index] |= bit;
            self.hint = self.hint.min(index);
        } else {
            self.summary[index] &= !bit;
        }
    }

    /// Lowest frame word with a free frame; advances `hint` past the empty summary words.
    fn first_free_word(&mut self) -> Option<usize> {
        while let Some(&summary) = self.summary.get(self.hint) {
            if summary != 0 {
                return Some(self.hint * WORD_BITS + summary.trailing_zeros() as usize);
            }
            self.hint += 1;
        }
        None
    }

    /// Lowest free frame at or after `frame`.
    fn next_free_frame(&self, frame: usize) -> Option<usize> {
        if frame >= self.frames {
            return None;
        }
        let word = frame / WORD_BITS;
        let here = self.free_bits[word] & (!0u64 << (frame % WORD_BITS));
        if here != 0 {
            return Some(word * WORD_BITS + here.trailing_zeros() as usize);
        }
        let word = next_set_bit(self.summary, word + 1)?;
        Some(word * WORD_BITS + self.free_bits[word].trailing_zeros() as usize)
    }

    /// Lowest frame in `[first, end)` that is not free, if any.
    fn first_not_free(&self, first: usize, end: usize) -> Option<usize> {
        word_masks(first, end).find_map(|(word, mask)| {
            let taken = !self.free_bits[word] & mask;
            (taken != 0).then(|| word * WORD_BITS + taken.trailing_zeros() as usize)
        })
    }

    /// Checks every invariant listed on the type.
    #[cfg(test)]
    fn check_invariants(&self) {
        let words = frame_words(self.frames);
        assert_eq!(self.free_bits.len(), words);
        let mut free = 0;
        let mut total = 0;
        for word in 0..words {
            assert_eq!(self.free_bits[word] & !self.managed_bits[word], 0);
            let summary_bit = self.summary[word / WORD_BITS] >> (word % WORD_BITS) & 1;
            assert_eq!(
                summary_bit == 1,
                self.free_bits[word] != 0,
                "summary of word {word}"
            );
            free += self.free_bits[word].count_ones() as usize;
            total += self.managed_bits[word].count_ones() as usize;
        }
        if !self.frames.is_multiple_of(WORD_BITS) {
            let beyond = !bit_mask(0, self.frames % WORD_BITS);
            assert_eq!(self.managed_bits[words - 1] & beyond, 0);
        }
        for &frame in &self.clean[..self.clean_len] {
            let frame = frame as usize;
            let bit = 1u64 << (frame % WORD_BITS);
            assert_ne!(
                self.managed_bits[frame / WORD_BITS] & bit,
                0,
                "clean frame managed"
            );
            assert_eq!(
                self.free_bits[frame / WORD_BITS] & bit,
                0,
                "clean frame apart"
            );
        }
        assert_eq!(free + self.clean_len, self.free);
        assert_eq!(total, self.total);
        assert!(self.summary[..self.hint.min(self.summary.len())]
            .iter()
            .all(|&word| word == 0));
    }
}

impl fmt::Debug for FrameAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("frames", &self.frames)
            .field("free", &self.free)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// The frames the kernel keeps back from users, by the memory it manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserves {
    /// Frames only the kernel's own allocations may take.
    pub kernel: usize,
    /// Frames above that only the default pager may take (it frees memory by taking it).
    pub pager: usize,
    /// Free frames below which the pageout daemon runs (the reserves included).
    pub target: usize,
}

/// The reserves and the pageout target for `total` frames: a sixteenth of memory for the
/// kernel (2 MiB at most), a thirty-second for the default pager (1 MiB at most), and a
/// thirty-second (at least 256 KiB, at most 16 MiB) above them as the daemon's slack, so a
/// small machine is not in pageout at rest (at 8 MiB the fixed reserves of large machines,
/// 3 MiB, plus 1 MiB of slack, were all its free memory).
pub fn reserves(total: usize) -> Reserves {
    let kernel = (total / 16).clamp(64, 512);
    let pager = (total / 32).clamp(32, 256);
    let slack = (total / 32).clamp(64, 4096);
    Reserves {
        kernel,
        pager,
        target: kernel + pager + slack,
    }
}

/// Whether `heap` heap pages and `tables` page-table frames exceed the kernel's budget for
/// tasks (`KERNEL_MEMORY_BUDGET_PERCENT` of `total` managed frames).
pub fn kernel_memory_over_budget(heap: usize, tables: usize, total: usize) -> bool {
    use libipc::abi::syscall::KERNEL_MEMORY_BUDGET_PERCENT;
    heap.saturating_add(tables).saturating_mul(100)
        > total.saturating_mul(KERNEL_MEMORY_BUDGET_PERCENT as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_memory_budget_is_a_share_of_memory() {
        // 128 MiB: about 29,400 frames, 11,760 for heap and tables together.
        assert!(!kernel_memory_over_budget(4000, 7760, 29_400));
        assert!(kernel_memory_over_budget(4000, 7761, 29_400));
        assert!(!kernel_memory_over_budget(0, 0, 0));
        assert!(kernel_memory_over_budget(usize::MAX, 1, 100));
    }

    #[test]
    fn reserves_scale_with_memory_and_leave_small_machines_room() {
        // 8 MiB managed (about 4 MiB free at rest after the boot archive): under 1 MiB kept.
        let small = reserves(2048);
        assert_eq!(
            small,
            Reserves {
                kernel: 128,
                pager: 64,
                target: 256
            }
        );
        // 256 MiB and more: the large machine's fixed reserves.
        let large = reserves(65536);
        assert_eq!(
            (large.kernel, large.pager, large.target),
            (512, 256, 512 + 256 + 2048)
        );
        // Tiny: floors.
        assert_eq!(
            reserves(256),
            Reserves {
                kernel: 64,
                pager: 32,
                target: 160
            }
        );
        assert!(reserves(1 << 24).target <= 512 + 256 + 4096);
    }

    const MIB: u64 = 1 << 20;

    /// An allocator over `max_phys` bytes with nothing free yet; the storage is leaked, as the
    /// kernel's lives forever.
    #[test]
    fn cleared_frames_are_kept_apart_counted_free_and_handed_out_first_to_tables() {
        let mut frames = allocator(16 * FRAME_SIZE);
        frames.add_free_range(0, 16 * FRAME_SIZE);
        let a = frames.allocate().unwrap();
        let b = frames.allocate().unwrap();
        let free = frames.free_frames();
        frames.free_clean(a).unwrap();
        frames.free_clean(b).unwrap();
        assert_eq!((frames.free_frames(), frames.clean_frames()), (free + 2, 2));
        frames.check_invariants();
        // Twice: refused. (A plain `free` of a cleared frame is not caught: the bitmap does
        // not know it, and looking through the cleared ones would cost every free.)
        assert_eq!(frames.free_clean(b), Err(FreeError::AlreadyFree));
        // Plain allocation takes the bitmap's lowest, not a cleared frame.
        assert_eq!(frames.allocate(), Some(2 * FRAME_SIZE));
        // Tables take the cleared ones, the last freed first; then plain frames.
        assert_eq!(frames.allocate_clean(), Some((b, true)));
        assert_eq!(frames.allocate_clean(), Some((a, true)));
        assert_eq!(frames.allocate_clean(), Some((3 * FRAME_SIZE, false)));
        assert_eq!(frames.free_frames(), free - 2);
        frames.check_invariants();
    }

    #[test]
    fn when_the_bitmap_is_empty_cleared_frames_serve_any_allocation() {
        let mut frames = allocator(2 * FRAME_SIZE);
        frames.add_free_range(0, 2 * FRAME_SIZE);
        let (a, b) = (frames.allocate().unwrap(), frames.allocate().unwrap());
        assert_eq!(frames.allocate(), None);
        frames.free_clean(b).unwrap();
        assert_eq!(frames.allocate(), Some(b));
        assert_eq!(frames.allocate(), None);
        frames.free(a).unwrap();
        assert_eq!(frames.free_frames(), 1);
        frames.check_invariants();
    }

    #[test]
    fn a_full_set_of_cleared_frames_frees_the_rest_plainly() {
        let mut frames = allocator(128 * FRAME_SIZE);
        frames.add_free_range(0, 128 * FRAME_SIZE);
        let taken: Vec<u64> = (0..CLEAN_FRAMES + 1)
            .map(|_| frames.allocate().unwrap())
            .collect();
        for &frame in &taken {
            frames.free_clean(frame).unwrap();
        }
        assert_eq!(frames.clean_frames(), CLEAN_FRAMES);
        assert!(frames.is_free(taken[CLEAN_FRAMES]));
        assert_eq!(frames.free_frames(), 128);
        frames.check_invariants();
    }

    fn allocator(max_phys: u64) -> FrameAllocator {
        let storage = vec![!0u64; FrameAllocator::storage_words(max_phys)].leak();
        FrameAllocator::new(storage, max_phys)
    }

    #[test]
    fn storage_words_counts_all_levels() {
        assert_eq!(FrameAllocator::storage_words(0), 0);
        assert_eq!(FrameAllocator::storage_words(FRAME_SIZE), 3);
        // 4 GiB: 2^20 frames, 2^14 words per bitmap, 2^8 summary words.
        assert_eq!(FrameAllocator::storage_words(4 << 30), 2 * 16384 + 256);
        // A partial frame at the top is not managed.
        assert_eq!(
            FrameAllocator::storage_words(64 * FRAME_SIZE + 1),
            FrameAllocator::storage_words(64 * FRAME_SIZE)
        );
    }

    #[test]
    fn starts_empty_even_with_dirty_storage() {
        let mut frames = allocator(MIB);
        assert_eq!(frames.free_frames(), 0);
        assert_eq!(frames.total_frames(), 0);
        assert_eq!(frames.allocate(), None);
        assert!(!frames.is_free(0));
        frames.check_invariants();
    }

    #[test]
    fn first_fit_order() {
        let mut frames = allocator(MIB);
        frames.add_free_range(0x40000, 0x50000);
        frames.add_free_range(0x10000, 0x12000);
        assert_eq!(frames.total_frames(), 16 + 2);
        assert_eq!(frames.allocate(), Some(0x10000));
        assert_eq!(frames.allocate(), Some(0x11000));
        assert_eq!(frames.allocate(), Some(0x40000));
        frames.free(0x10000).unwrap();
        assert_eq!(frames.allocate(), Some(0x10000));
        assert_eq!(frames.allocate(), Some(0x41000));
        frames.check_invariants();
    }

    #[test]
    fn add_free_range_rounds_inward_and_clips() {
        let mut frames = allocator(16 * FRAME_SIZE);
        frames.add_free_range(0x1001, 0x3fff);
        assert_eq!(frames.total_frames(), 1);
        assert!(frames.is_free(0x2000));
        assert!(!frames.is_free(0x1000) && !frames.is_free(0x3000));
        frames.add_free_range(0xe000, u64::MAX);
        assert_eq!(frames.total_frames(), 3);
        assert!(!frames.is_free(0x10000));
        // Overlapping ranges are not counted twice and do not free allocated frames.
        assert_eq!(frames.allocate(), Some(0x2000));
        frames.add_free_range(0, 0x3000);
        // Frames 0 and 1 are new; frame 2 was already managed.
        assert_eq!(frames.total_frames(), 5);
        assert!(!frames.is_free(0x2000));
        frames.check_invariants();
    }

    #[test]
    fn exhausting_and_refilling_gives_the_count_back() {
        let mut frames = allocator(4 * MIB);
        frames.add_free_range(0, 4 * MIB);
        let total = frames.total_frames();
        assert_eq!(total, 1024);
        let mut taken = Vec::new();
        while let Some(frame) = frames.allocate() {
            taken.push(frame);
        }
        assert_eq!(taken.len(), total);
        assert_eq!(frames.free_frames(), 0);
        assert!(taken.windows(2).all(|pair| pair[0] + FRAME_SIZE == pair[1]));
        for &frame in taken.iter().rev() {
            frames.free(frame).unwrap();
        }
        assert_eq!(frames.free_frames(), total);
        frames.check_invariants();
        assert_eq!(frames.allocate(), Some(0));
    }

    #[test]
    fn contiguous_runs_with_alignment_across_words() {
        let mut frames = allocator(4 * MIB);
        frames.add_free_range(0, 4 * MIB);
        // Break up the low memory so the first fitting run straddles a word boundary.
        for frame in [0u64, 60, 100] {
            frames.remove_range(frame * FRAME_SIZE, (frame + 1) * FRAME_SIZE);
        }
        // 70 frames: [1, 60) is too short, [61, 100) too, first fit is 101.
        assert_eq!(
            frames.allocate_contiguous(70, FRAME_SIZE),
            Some(101 * FRAME_SIZE)
        );
        // 8-frame alignment (32 KiB): frame 1 is free but the first aligned run starts at 8.
        assert_eq!(
            frames.allocate_contiguous(4, 8 * FRAME_SIZE),
            Some(8 * FRAME_SIZE)
        );
        // Alignment smaller than a frame means frame alignment.
        assert_eq!(frames.allocate_contiguous(2, 1), Some(FRAME_SIZE));
        // 2 MiB large page: frame 512, crossing many words.
        assert_eq!(frames.allocate_contiguous(512, 2 * MIB), Some(2 * MIB));
        assert_eq!(frames.allocate_contiguous(512, 2 * MIB), None);
        assert_eq!(frames.allocate_contiguous(1, 3 * FRAME_SIZE), None);
        assert_eq!(frames.allocate_contiguous(0, FRAME_SIZE), None);
        assert_eq!(frames.allocate_contiguous(2000, FRAME_SIZE), None);
        for frame in (101..171).chain(8..12).chain(1..3).chain(512..1024) {
            assert!(!frames.is_free(frame * FRAME_SIZE), "frame {frame}");
        }
        assert!(frames.is_free(3 * FRAME_SIZE));
        assert_eq!(frames.free_frames(), 1021 - 70 - 4 - 2 - 512);
        frames.free_contiguous(2 * MIB, 512).unwrap();
        assert_eq!(frames.allocate_contiguous(512, 2 * MIB), Some(2 * MIB));
        frames.check_invariants();
    }

    #[test]
    fn double_and_foreign_frees_are_rejected() {
        let mut frames = allocator(MIB);
        frames.add_free_range(0x10000, 0x20000);
        let frame = frames.allocate().unwrap();
        assert_eq!(frames.free(frame + 1), Err(FreeError::Unaligned));
        assert_eq!(frames.free(frame), Ok(()));
        assert_eq!(frames.free(frame), Err(FreeError::AlreadyFree));
        // Below max_phys but never added: a hole in the memory map.
        assert_eq!(frames.free(0x1000), Err(FreeError::NotManaged));
        assert_eq!(frames.free(MIB), Err(FreeError::NotManaged));
        assert_eq!(frames.free(!0xfff), Err(FreeError::NotManaged));
        assert_eq!(
            frames.free_contiguous(0x1f000, usize::MAX),
            Err(FreeError::NotManaged)
        );
        // A run that is partly free is refused as a whole.
        let run = frames.allocate_contiguous(4, FRAME_SIZE).unwrap();
        frames.free(run + 2 * FRAME_SIZE).unwrap();
        assert_eq!(frames.free_contiguous(run, 4), Err(FreeError::AlreadyFree));
        assert!(!frames.is_free(run));
        assert_eq!(frames.free_contiguous(run, 0), Ok(()));
        frames.check_invariants();
        assert_eq!(frames.free_frames(), 16 - 3);
    }

    #[test]
    fn remove_range_takes_frames_out() {
        let mut frames = allocator(MIB);
        frames.add_free_range(0, MIB);
        let allocated = frames.allocate_contiguous(4, FRAME_SIZE).unwrap();
        assert_eq!(allocated, 0);
        // Rounds outward: frames 2..=5 overlap, two of them allocated.
        frames.remove_range(0x2fff, 0x5001);
        assert_eq!(frames.total_frames(), 256 - 4);
        assert_eq!(frames.free_frames(), 256 - 4 - 2);
        assert_eq!(frames.free(0x2000), Err(FreeError::NotManaged));
        assert_eq!(frames.free(0x1000), Ok(()));
        assert_eq!(frames.allocate(), Some(0x1000));
        assert_eq!(frames.allocate(), Some(0x6000));
        // Removing beyond max_phys and twice is harmless.
        frames.remove_range(0x2000, u64::MAX);
        assert_eq!(frames.total_frames(), 2);
        assert_eq!(frames.free_frames(), 0);
        assert_eq!(frames.allocate(), None);
        frames.check_invariants();
    }

    /// A tiny deterministic generator so the randomised test needs no crates.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, limit: u64) -> u64 {
            self.next() % limit
        }
    }

    /// The obvious implementation: one state per frame, linear searches.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Model {
        Unmanaged,
        Free,
        Allocated,
    }

    fn model_contiguous(model: &[Model], count: usize, align_frames: usize) -> Option<usize> {
        (0..model.len()).step_by(align_frames).find(|&start| {
            start + count <= model.len()
                && model[start..start + count]
                    .iter()
                    .all(|&m| m == Model::Free)
        })
    }

    #[test]
    fn randomised_against_model() {
        // Not a multiple of 64 * 64 frames, so the last words are partial.
        const FRAMES: usize = 5000;
        for seed in [1u64, 0x9e37_79b9_7f4a_7c15, 12345] {
            let mut rng = XorShift(seed);
            let mut frames = allocator(FRAMES as u64 * FRAME_SIZE + 123);
            let mut model = vec![Model::Unmanaged; FRAMES];
            for step in 0..20_000 {
                let frame = rng.below(FRAMES as u64 + 10) as usize;
                let span_limit = if rng.below(4) == 0 { 300 } else { 8 };
                let span = 1 + rng.below(span_limit) as usize;
                match rng.below(100) {
                    0..=2 => {
                        frames.add_free_range(
                            frame as u64 * FRAME_SIZE,
                            (frame + span) as u64 * FRAME_SIZE,
                        );
                        for m in model.iter_mut().skip(frame).take(span) {
                            if *m == Model::Unmanaged {
                                *m = Model::Free;
                            }
                        }
                    }
                    3 => {
                        frames.remove_range(
                            frame as u64 * FRAME_SIZE,
                            (frame + span) as u64 * FRAME_SIZE,
                        );
                        for m in model.iter_mut().skip(frame).take(span) {
                            *m = Model::Unmanaged;
                        }
                    }
                    4..=44 => {
                        let expected = model.iter().position(|&m| m == Model::Free);
                        let got = frames.allocate();
                        assert_eq!(got, expected.map(|f| f as u64 * FRAME_SIZE), "step {step}");
                        if let Some(f) = expected {
                            model[f] = Model::Allocated;
                        }
                    }
                    45..=54 => {
                        let align_frames = 1usize << rng.below(7);
                        let count = span.min(80);
                        let expected = model_contiguous(&model, count, align_frames);
                        let got =
                            frames.allocate_contiguous(count, align_frames as u64 * FRAME_SIZE);
                        assert_eq!(got, expected.map(|f| f as u64 * FRAME_SIZE), "step {step}");
                        if let Some(f) = expected {
                            model[f..f + count].fill(Model::Allocated);
                        }
                    }
                    55..=89 => {
                        let expected = match model.get(frame) {
                            None | Some(Model::Unmanaged) => Err(FreeError::NotManaged),
                            Some(Model::Free) => Err(FreeError::AlreadyFree),
                            Some(Model::Allocated) => Ok(()),
                        };
                        assert_eq!(frames.free(frame as u64 * FRAME_SIZE), expected);
                        if expected.is_ok() {
                            model[frame] = Model::Free;
                        }
                    }
                    _ => {
                        let run = model.get(frame..frame + span);
                        let expected = match run {
                            None => Err(FreeError::NotManaged),
                            Some(run) if run.contains(&Model::Unmanaged) => {
                                // The implementation reports the first offending word's
                                // problem; only check that it refuses.
                                Err(FreeError::NotManaged)
                            }
                            Some(run) if run.contains(&Model::Free) => Err(FreeError::AlreadyFree),
                            Some(_) => Ok(()),
                        };
                        let got = frames.free_contiguous(frame as u64 * FRAME_SIZE, span);
                        assert_eq!(got.is_ok(), expected.is_ok(), "step {step}");
                        if expected.is_ok() {
                            model[frame..frame + span].fill(Model::Free);
                        }
                    }
                }
                if step % 97 == 0 {
                    frames.check_invariants();
                    let free = model.iter().filter(|&&m| m == Model::Free).count();
                    let total = model.iter().filter(|&&m| m != Model::Unmanaged).count();
                    assert_eq!(frames.free_frames(), free);
                    assert_eq!(frames.total_frames(), total);
                    for (f, m) in model.iter().enumerate() {
                        assert_eq!(frames.is_free(f as u64 * FRAME_SIZE), *m == Model::Free);
                    }
                }
            }
        }
    }
}

//! Fuzzes the kernel's program (ELF) checker: whatever it accepts lies in user space and in
//! the file, segments apart, the entry in executable code.
#![no_main]

use decoder_fuzz::kern::program::{parse, MAX_SEGMENTS};
use decoder_fuzz::vm::map::{Protection, PAGE_SIZE};
use libfuzzer_sys::fuzz_target;
use libipc::abi::syscall::{USER_END, USER_IMAGE_BASE};

fuzz_target!(|data: &[u8]| {
    let Ok(image) = parse(data) else {
        return;
    };
    let segments: Vec<_> = image.segments().copied().collect();
    assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
    for (i, s) in segments.iter().enumerate() {
        assert!(s.memsz > 0 && s.filesz <= s.memsz);
        assert!(s.vaddr >= USER_IMAGE_BASE);
        assert!(s
            .vaddr
            .checked_add(s.memsz)
            .is_some_and(|end| end <= USER_END));
        assert!(s
            .offset
            .checked_add(s.filesz)
            .is_some_and(|end| end <= data.len() as u64));
        assert_eq!(s.vaddr % PAGE_SIZE, s.offset % PAGE_SIZE);
        let (start, end) = s.pages();
        for other in &segments[..i] {
            let (other_start, other_end) = other.pages();
            assert!(end <= other_start || other_end <= start);
        }
    }
    assert!(segments
        .iter()
        .any(|s| s.protection.allows(Protection::EXECUTE)
            && s.vaddr <= image.entry
            && image.entry < s.vaddr + s.memsz));
});

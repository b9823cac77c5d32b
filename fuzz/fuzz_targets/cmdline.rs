//! Fuzzes the kernel command line: the bytes as the boot loader gives them (cut to valid
//! text and whole words) and the options parsed from them, which keep their limits.
#![no_main]

use decoder_fuzz::boot::cmdline::{parse, TestSelection, MAX_PROBLEMS, MAX_PROGRAM_OPTION};
use decoder_fuzz::boot::{BootInfo, BootPath, MAX_CMDLINE};
use libfuzzer_sys::fuzz_target;
use libipc::abi::archive::NAME_MAX;

fuzz_target!(|data: &[u8]| {
    let mut info = Box::new(BootInfo::new(BootPath::Pvh, 0));
    info.set_cmdline(data);
    let line = info.cmdline();
    assert!(line.len() <= MAX_CMDLINE);
    assert!(data.starts_with(line.as_bytes()));
    for line in [line, &String::from_utf8_lossy(data)] {
        let parsed = parse(line);
        let problems = parsed.problems().count();
        assert!(problems <= MAX_PROBLEMS);
        assert!(problems == MAX_PROBLEMS || parsed.dropped_problems() == 0);
        for problem in parsed.problems() {
            let _ = problem.to_string();
        }
        assert_ne!(parsed.mem_limit(), Some(0));
        assert_ne!(parsed.pager_timeout_ms(), Some(0));
        for value in [parsed.swap(), parsed.args(), parsed.sh(), parsed.zcache()]
            .into_iter()
            .flatten()
        {
            assert!(!value.is_empty() && value.len() <= MAX_PROGRAM_OPTION);
        }
        assert!(parsed
            .init()
            .is_none_or(|name| !name.is_empty() && name.len() <= NAME_MAX));
        if let Some(TestSelection::Named(list)) = parsed.tests() {
            assert!(list
                .split(',')
                .all(|name| !name.is_empty() && name != "all"));
        }
    }
});

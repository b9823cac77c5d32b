//! NONAIM's pure parts, host-tested: the arguments (`args`), the job mix, its weights, the
//! seeded draw and what passes between a user process and a job (`mix`), the compute jobs
//! (`compute`, free of libipc so that it also builds for Linux), what the system jobs write
//! and expect on either system (`jobdata`), and the figures (`figures`). The driver (`main.rs`, program `nonaim`), the job program (`nonaim_job`)
//! and the exec target (`nonaim_exit`) are the guest side; what they share there is
//! `guest` (built for the guest only).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod args;
pub mod compute;
pub mod figures;
#[cfg(target_os = "none")]
pub mod guest;
pub mod jobdata;
pub mod mix;

/// The boot archive's pattern file that file_test reads (a `[[file]]` of `servers/boot.toml`).
pub const DATA_FILE: &str = "nonaim_data";
/// Its size: 1 MiB.
pub const DATA_FILE_BYTES: u64 = 1 << 20;
/// Bytes file_test reads, from a page-aligned offset its seed picks.
pub const FILE_TEST_BYTES: u64 = 256 * 1024;

#[cfg(test)]
mod tests {
    #[test]
    fn the_manifest_holds_the_data_file_at_its_size() {
        let manifest = include_str!("../../boot.toml");
        let entry = format!(
            "[[file]]\nname = \"{}\"\npattern_bytes = {}\n",
            super::DATA_FILE,
            super::DATA_FILE_BYTES
        );
        assert!(manifest.contains(&entry), "boot.toml lacks:\n{entry}");
        for program in ["nonaim", "nonaim_job", "nonaim_exit"] {
            let entry = format!("name = \"{program}\"\npackage = \"{program}\"\n");
            assert!(
                manifest.contains(&entry),
                "boot.toml lacks program {program}"
            );
        }
    }
}

//! Console output for user programs: `print!`/`println!` format into a buffer on the stack and
//! hand it to the kernel with `DebugWrite`, one call per [`PRINT_BUFFER_SIZE`] bytes.
//!
//! [`ChunkWriter`] is the buffering, independent of where the bytes go, so it is tested on the
//! host; the macros and [`_print`] exist only in the runtime proper.

use core::fmt;

use crate::abi::syscall::DEBUG_WRITE_MAX;

/// Size of `print!`'s stack buffer: a line shorter than this reaches the console in one
/// `DebugWrite` (so lines of different tasks do not interleave), longer output in several.
pub const PRINT_BUFFER_SIZE: usize = 512;

const _: () = assert!(PRINT_BUFFER_SIZE <= DEBUG_WRITE_MAX);

/// Collects formatted text in an `N`-byte buffer and passes it to `sink` whenever the buffer is
/// full and on [`ChunkWriter::flush`]; every chunk is non-empty and at most `N` bytes.
/// Chunks may split a UTF-8 sequence: the console takes bytes.
pub struct ChunkWriter<F: FnMut(&[u8]), const N: usize> {
    buffer: [u8; N],
    len: usize,
    sink: F,
}

impl<F: FnMut(&[u8]), const N: usize> ChunkWriter<F, N> {
    pub fn new(sink: F) -> Self {
        const { assert!(N > 0) };
        ChunkWriter {
            buffer: [0; N],
            len: 0,
            sink,
        }
    }

    /// Passes what is buffered to the sink.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.sink)(&self.buffer[..self.len]);
            self.len = 0;
        }
    }

    fn write_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = bytes.len().min(N - self.len);
            self.buffer[self.len..self.len + take].copy_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
            if self.len == N {
                self.flush();
            }
        }
    }
}

impl<F: FnMut(&[u8]), const N: usize> fmt::Write for ChunkWriter<F, N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write_bytes(text.as_bytes());
        Ok(())
    }
}

/// Formats `args` to the kernel console. Console errors are ignored, as printing has no one
/// to report them to; use [`crate::sys::debug_write`] to see them.
#[cfg(all(feature = "transport", target_os = "none"))]
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    use fmt::Write as _;
    let mut writer = ChunkWriter::<_, PRINT_BUFFER_SIZE>::new(|chunk: &[u8]| {
        let _ = crate::sys::debug_write(chunk);
    });
    let _ = writer.write_fmt(args);
    writer.flush();
}

/// Prints to the kernel console (`DebugWrite`), like `std::print!`.
#[cfg(all(feature = "transport", target_os = "none"))]
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::rt::print::_print(::core::format_args!($($arg)*))
    };
}

/// Prints to the kernel console (`DebugWrite`) with a newline, like `std::println!`.
#[cfg(all(feature = "transport", target_os = "none"))]
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($arg:tt)*) => {
        $crate::rt::print::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    fn chunks_of<const N: usize>(write: impl FnOnce(&mut dyn fmt::Write)) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        let mut writer = ChunkWriter::<_, N>::new(|chunk: &[u8]| chunks.push(chunk.to_vec()));
        write(&mut writer);
        writer.flush();
        chunks
    }

    #[test]
    fn short_output_is_one_chunk() {
        let chunks = chunks_of::<16>(|w| writeln!(w, "a{}c", 1).unwrap());
        assert_eq!(chunks, [b"a1c\n".to_vec()]);
    }

    #[test]
    fn nothing_written_means_no_chunk() {
        assert!(chunks_of::<16>(|_| {}).is_empty());
        assert!(chunks_of::<16>(|w| w.write_str("").unwrap()).is_empty());
    }

    #[test]
    fn long_output_is_split_at_the_buffer_size() {
        let text: std::string::String = (0..100).map(|i| char::from(b'a' + i % 26)).collect();
        let chunks = chunks_of::<16>(|w| {
            w.write_str(&text[..10]).unwrap();
            w.write_str(&text[10..]).unwrap();
        });
        assert!(chunks
            .iter()
            .all(|chunk| !chunk.is_empty() && chunk.len() <= 16));
        assert_eq!(chunks.len(), 7);
        assert_eq!(chunks.concat(), text.as_bytes());
    }

    #[test]
    fn exactly_full_buffer_flushes_once() {
        let chunks = chunks_of::<4>(|w| w.write_str("abcd").unwrap());
        assert_eq!(chunks, [b"abcd".to_vec()]);
    }

    #[test]
    fn print_buffer_fits_one_debug_write() {
        let text = [b'x'; 3 * PRINT_BUFFER_SIZE + 1];
        let chunks = chunks_of::<PRINT_BUFFER_SIZE>(|w| {
            w.write_str(core::str::from_utf8(&text).unwrap()).unwrap()
        });
        assert_eq!(chunks.len(), 4);
        assert!(chunks.iter().all(|chunk| chunk.len() <= DEBUG_WRITE_MAX));
    }
}

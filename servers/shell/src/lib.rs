//! The shell's pure parts, tested on the host: the line editor (bytes from the console in,
//! echo and finished lines out, with backspace, Ctrl-U, Ctrl-C, Ctrl-D and a history under
//! the arrow keys) and the command line's parsing (commands separated by `;`, words by
//! spaces, a program's arguments joined by commas as `args=` gives them).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

/// Longest line the editor keeps (longer input is cut, with a bell).
pub const MAX_LINE: usize = 256;
/// Lines the history keeps.
pub const HISTORY: usize = 32;

/// What a byte of input finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A line (without its end).
    Line(String),
    /// Ctrl-C: the line so far is dropped.
    Interrupt,
    /// Ctrl-D on an empty line: no more input.
    End,
}

/// Where an escape sequence (the arrow keys: `ESC [ A`) has got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    Started,
    Bracket,
}

/// A line editor: feed it console bytes, it says what to echo and when a line is done.
pub struct Editor {
    line: String,
    history: Vec<String>,
    /// The history entry shown, counted back from the newest.
    browsing: Option<usize>,
    escape: Escape,
    /// The last byte ended a line with `\r`: a `\n` right after it is the same end.
    after_return: bool,
}

impl Default for Editor {
    fn default() -> Self {
        Self::new()
    }
}

impl Editor {
    pub fn new() -> Editor {
        Editor {
            line: String::new(),
            history: Vec::new(),
            browsing: None,
            escape: Escape::None,
            after_return: false,
        }
    }

    /// The line being edited.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Takes one byte; what to echo goes to `echo`.
    pub fn feed(&mut self, byte: u8, echo: &mut impl FnMut(&[u8])) -> Option<Event> {
        let after_return = core::mem::replace(&mut self.after_return, false);
        match (self.escape, byte) {
            (Escape::Started, b'[') => {
                self.escape = Escape::Bracket;
                return None;
            }
            (Escape::Bracket, b'A') => {
                self.escape = Escape::None;
                self.browse(true, echo);
                return None;
            }
            (Escape::Bracket, b'B') => {
                self.escape = Escape::None;
                self.browse(false, echo);
                return None;
            }
            (Escape::Started | Escape::Bracket, _) => {
                // Another sequence (other keys): ignored up to its final byte.
                if byte.is_ascii_alphabetic() || byte == b'~' || self.escape == Escape::Started {
                    self.escape = Escape::None;
                }
                return None;
            }
            (Escape::None, _) => {}
        }
        match byte {
            0x1b => self.escape = Escape::Started,
            b'\n' if after_return => {}
            b'\r' | b'\n' => {
                self.after_return = byte == b'\r';
                echo(b"\n");
                let line = core::mem::take(&mut self.line);
                self.browsing = None;
                if !line.trim().is_empty() && self.history.last() != Some(&line) {
                    if self.history.len() == HISTORY {
                        self.history.remove(0);
                    }
                    self.history.push(line.clone());
                }
                return Some(Event::Line(line));
            }
            0x7f | 0x08 if self.line.pop().is_some() => echo(b"\x08 \x08"),
            0x7f | 0x08 => {}
            0x15 => self.erase(echo),
            0x03 => {
                echo(b"^C\n");
                self.line.clear();
                self.browsing = None;
                return Some(Event::Interrupt);
            }
            0x04 if self.line.is_empty() => return Some(Event::End),
            0x20..=0x7e => {
                if self.line.len() < MAX_LINE {
                    self.line.push(byte as char);
                    echo(&[byte]);
                } else {
                    echo(b"\x07");
                }
            }
            _ => {}
        }
        None
    }

    /// Erases the line on the screen and in the editor.
    fn erase(&mut self, echo: &mut impl FnMut(&[u8])) {
        for _ in 0..self.line.len() {
            echo(b"\x08 \x08");
        }
        self.line.clear();
    }

    /// Shows the previous (`back`) or next history entry in place of the line.
    fn browse(&mut self, back: bool, echo: &mut impl FnMut(&[u8])) {
        let next = match (self.browsing, back) {
            (None, true) if !self.history.is_empty() => Some(0),
            (None, _) => return,
            (Some(i), true) if i + 1 < self.history.len() => Some(i + 1),
            (Some(i), true) => Some(i),
            (Some(0), false) => None,
            (Some(i), false) => Some(i - 1),
        };
        self.erase(echo);
        self.browsing = next;
        if let Some(i) = next {
            self.line = self.history[self.history.len() - 1 - i].clone();
            echo(self.line.as_bytes());
        }
    }
}

/// The commands of a line: split at `;`, each split into words; empty ones dropped.
pub fn commands(line: &str) -> Vec<Vec<&str>> {
    line.split(';')
        .map(|c| c.split_whitespace().collect::<Vec<_>>())
        .filter(|words| !words.is_empty())
        .collect()
}

/// A program's arguments as its arguments block holds them: the words joined by commas
/// (`sheeptest 4 4M 1` and `sheeptest 4,4M,1` both give `4,4M,1`). `Err` if longer than
/// `max` bytes.
pub fn program_args(words: &[&str], max: usize) -> Result<String, usize> {
    let joined = words.join(",");
    if joined.len() > max {
        Err(joined.len())
    } else {
        Ok(joined)
    }
}

/// Pages as KiB, for tables.
pub fn kib(pages: u64) -> u64 {
    pages * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_in(editor: &mut Editor, input: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let mut echoed = Vec::new();
        let mut events = Vec::new();
        for &b in input {
            if let Some(e) = editor.feed(b, &mut |bytes: &[u8]| echoed.extend_from_slice(bytes)) {
                events.push(e);
            }
        }
        (events, echoed)
    }

    #[test]
    fn lines_end_at_return_or_newline_once_each() {
        let mut e = Editor::new();
        let (events, echoed) = type_in(&mut e, b"ps\r\nhelp\nx\r");
        assert_eq!(
            events,
            [
                Event::Line("ps".into()),
                Event::Line("help".into()),
                Event::Line("x".into())
            ]
        );
        assert_eq!(echoed, b"ps\nhelp\nx\n");
        // The `\n` of a `\r\n` after the `\r` that ended a line ends nothing; a blank line
        // is a line too (the prompt comes again).
        let (events, _) = type_in(&mut e, b"\n\r");
        assert_eq!(events, [Event::Line(String::new())]);
    }

    #[test]
    fn backspace_ctrl_u_and_control_bytes_edit_the_line() {
        let mut e = Editor::new();
        let (events, echoed) = type_in(&mut e, b"psx\x7f\x01 a\x08\x08\r");
        assert_eq!(events, [Event::Line("ps".into())]);
        assert_eq!(echoed, b"psx\x08 \x08 a\x08 \x08\x08 \x08\n");
        let (events, _) = type_in(&mut e, b"garbage\x15vmstat\r");
        assert_eq!(events, [Event::Line("vmstat".into())]);
        // Backspace on an empty line echoes nothing.
        let (_, echoed) = type_in(&mut e, b"\x7f");
        assert!(echoed.is_empty());
    }

    #[test]
    fn ctrl_c_drops_the_line_and_ctrl_d_ends_input_only_on_an_empty_line() {
        let mut e = Editor::new();
        let (events, _) = type_in(&mut e, b"sheep\x03");
        assert_eq!(events, [Event::Interrupt]);
        assert_eq!(e.line(), "");
        let (events, _) = type_in(&mut e, b"ps\x04\r\x04");
        assert_eq!(events, [Event::Line("ps".into()), Event::End]);
    }

    #[test]
    fn the_arrow_keys_walk_the_history() {
        let mut e = Editor::new();
        type_in(&mut e, b"one\rtwo\rtwo\rthree\r");
        let (_, echoed) = type_in(&mut e, b"x\x1b[A");
        assert_eq!(e.line(), "three");
        assert_eq!(echoed, b"x\x08 \x08three");
        type_in(&mut e, b"\x1b[A\x1b[A\x1b[A");
        // "two" was kept once; the oldest stays shown.
        assert_eq!(e.line(), "one");
        type_in(&mut e, b"\x1b[B");
        assert_eq!(e.line(), "two");
        type_in(&mut e, b"\x1b[B\x1b[B");
        assert_eq!(e.line(), "");
        // Other sequences (an arrow to the right, a function key) are ignored.
        let (events, _) = type_in(&mut e, b"\x1b[C\x1b[15~ps\r");
        assert_eq!(events, [Event::Line("ps".into())]);
    }

    #[test]
    fn lines_are_cut_at_their_limit_with_a_bell() {
        let mut e = Editor::new();
        let long = [b'a'; MAX_LINE + 3];
        let (_, echoed) = type_in(&mut e, &long);
        assert_eq!(e.line().len(), MAX_LINE);
        assert_eq!(&echoed[MAX_LINE..], b"\x07\x07\x07");
    }

    #[test]
    fn commands_split_at_semicolons_and_arguments_join_with_commas() {
        assert_eq!(
            commands(" ps ;; vmstat 1 3; sheeptest 4 4M 1 "),
            vec![
                vec!["ps"],
                vec!["vmstat", "1", "3"],
                vec!["sheeptest", "4", "4M", "1"]
            ]
        );
        assert!(commands(" ; ").is_empty());
        assert_eq!(program_args(&["4", "4M", "1"], 256).unwrap(), "4,4M,1");
        assert_eq!(program_args(&["4,4M,1"], 256).unwrap(), "4,4M,1");
        assert_eq!(program_args(&[], 256).unwrap(), "");
        assert_eq!(program_args(&["abcdef"], 4), Err(6));
        assert_eq!(kib(3), 12);
    }
}

//! What the user sees while a suite runs. On a terminal: a line under the output with a
//! spinner, the boot's elapsed time, which boot of how many and its label, and the last line
//! the guest printed; the figures and remarks scroll above it. Elsewhere (a pipe, CI) no bar
//! at all: the same figures and remarks as plain lines, and a line when each boot starts and
//! ends.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Longest guest line shown in the bar (the terminal's width cuts it further).
const MESSAGE_CHARS: usize = 160;

/// The bar of a suite's boots (cheap to clone: clones share the bar).
#[derive(Clone, Debug)]
pub struct Progress {
    bar: ProgressBar,
    animated: bool,
}

impl Progress {
    /// A bar for `boots` boots, drawn on standard error when `wanted` and standard error is a
    /// terminal; otherwise hidden, with plain lines instead.
    pub fn new(boots: usize, wanted: bool) -> Progress {
        let animated = wanted && std::io::stderr().is_terminal();
        if !animated {
            return Progress::plain();
        }
        let bar = ProgressBar::with_draw_target(Some(boots as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] boot {pos}/{len} {prefix}: {wide_msg}",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar,
            animated: true,
        }
    }

    /// No bar: plain lines.
    pub fn plain() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
            animated: false,
        }
    }

    /// Whether a bar is drawn.
    pub fn is_animated(&self) -> bool {
        self.animated
    }

    /// The next boot starts: the bar counts it, shows `label` and starts its clock.
    pub fn start_boot(&self, label: &str) {
        self.bar.inc(1);
        self.bar.set_prefix(label.to_string());
        self.bar.reset_elapsed();
        self.bar.set_message("starting QEMU");
    }

    /// A line of the guest's: printed above the bar if `show`, and the bar's message.
    pub fn guest_line(&self, line: &str, show: bool) {
        if show {
            self.println(line);
        }
        if self.animated {
            self.bar.set_message(shorten(line, MESSAGE_CHARS));
        }
    }

    /// Prints `text` on standard output, above the bar if there is one.
    pub fn println(&self, text: &str) {
        if self.animated {
            self.bar.suspend(|| println!("{text}"));
        } else {
            println!("{text}");
        }
    }

    /// Prints `text` on standard error, above the bar if there is one.
    pub fn eprintln(&self, text: &str) {
        if self.animated {
            self.bar.suspend(|| eprintln!("{text}"));
        } else {
            eprintln!("{text}");
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `text` cut to `chars` characters, with `...` when cut.
pub fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_shortened_on_a_character_boundary() {
        assert_eq!(shorten("bench a.b 1 x", 40), "bench a.b 1 x");
        assert_eq!(shorten("abcdef", 3), "abc...");
        assert_eq!(shorten("ééééé", 2), "éé...");
    }

    #[test]
    fn without_a_terminal_there_is_no_bar() {
        // Tests run with standard error captured or piped, never a terminal here, and a
        // plain progress never draws.
        assert!(!Progress::plain().is_animated());
        let progress = Progress::new(3, false);
        assert!(!progress.is_animated());
        progress.start_boot("mem16m");
        progress.guest_line("sheeptest: elapsed 1.00 s", false);
        progress.finish();
    }
}

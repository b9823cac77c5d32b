//! Joins kernel arguments into one command line for QEMU's `-append` and Limine's `cmdline:`.
//!
//! The kernel splits its command line on spaces and knows no quoting, so an argument that holds
//! whitespace could not reach it intact: such arguments are refused rather than silently split.
//! No shell is involved (QEMU gets the line as one argv entry), so nothing else needs escaping.

use anyhow::{bail, Result};

/// Joins `args` with single spaces, refusing empty arguments and arguments with whitespace
/// (including newlines, which would also break `limine.conf`).
pub fn join<S: AsRef<str>>(args: &[S]) -> Result<String> {
    let mut line = String::new();
    for arg in args {
        let arg = arg.as_ref();
        if arg.is_empty() {
            bail!("empty kernel argument: the kernel splits its command line on spaces");
        }
        if arg.chars().any(char::is_whitespace) {
            bail!(
                "kernel argument {arg:?} contains whitespace: the kernel splits its command \
                 line on spaces and has no quoting, pass it as separate arguments"
            );
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(arg);
    }
    Ok(line)
}

/// Checks a command line that was given whole (not as separate arguments), e.g. by a test.
pub fn check_line(line: &str) -> Result<()> {
    if line.contains(['\n', '\r']) {
        bail!("kernel command line {line:?} contains a line break");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_with_single_spaces() {
        assert_eq!(
            join(&["test=all", "log=debug"]).unwrap(),
            "test=all log=debug"
        );
        assert_eq!(join::<&str>(&[]).unwrap(), "");
        assert_eq!(join(&["mem=64M"]).unwrap(), "mem=64M");
    }

    #[test]
    fn keeps_characters_qemu_and_limine_take_verbatim() {
        // Commas, quotes and `$` go through unchanged: QEMU gets the line as one argv entry.
        assert_eq!(
            join(&["test=a,b", "x=\"y\"", "$z"]).unwrap(),
            "test=a,b x=\"y\" $z"
        );
    }

    #[test]
    fn refuses_whitespace_and_empty_arguments() {
        let error = join(&["test=all", "a b"]).unwrap_err().to_string();
        assert!(
            error.contains("\"a b\"") && error.contains("whitespace"),
            "{error}"
        );
        assert!(join(&["x\ny"]).is_err());
        assert!(join(&["tab\there"]).is_err());
        assert!(join(&[""]).is_err());
    }

    #[test]
    fn whole_lines_must_not_break() {
        assert!(check_line("test=all log=info").is_ok());
        assert!(check_line("test=all\ncrash=panic").is_err());
    }
}

//! Joins kernel arguments into one command line for QEMU's `-append` and Limine's `cmdline:`.
//!
//! The kernel splits its command line on spaces except inside double quotes, so an option
//! whose value holds spaces (`sh=ps; vmstat 1 3`, given as one argument) is passed quoted
//! (`sh="ps; vmstat 1 3"`); other arguments with whitespace, or values with a double quote
//! and a space, could not reach it intact and are refused rather than silently split. No
//! shell is involved (QEMU gets the line as one argv entry), so nothing else needs escaping.

use anyhow::{bail, Result};

/// Joins `args` with single spaces, quoting the value of a `key=value` argument that holds
/// spaces; refuses empty arguments, line breaks (which would also break `limine.conf`), and
/// whitespace anywhere else.
pub fn join<S: AsRef<str>>(args: &[S]) -> Result<String> {
    let mut line = String::new();
    for arg in args {
        let arg = arg.as_ref();
        if arg.is_empty() {
            bail!("empty kernel argument: the kernel splits its command line on spaces");
        }
        if !line.is_empty() {
            line.push(' ');
        }
        if !arg.chars().any(char::is_whitespace) {
            line.push_str(arg);
            continue;
        }
        match arg.split_once('=') {
            Some((key, value))
                if !key.is_empty()
                    && !key.chars().any(char::is_whitespace)
                    && !value.contains(['"', '\n', '\r', '\t']) =>
            {
                line.push_str(key);
                line.push_str("=\"");
                line.push_str(value);
                line.push('"');
            }
            _ => bail!(
                "kernel argument {arg:?} contains whitespace: the kernel splits its command \
                 line on spaces; only a `key=value` argument whose value has spaces (and no \
                 double quote, tab or line break) can be passed, quoted; pass the rest as \
                 separate arguments"
            ),
        }
    }
    check_length(&line)?;
    Ok(line)
}

/// Refuses a line longer than the kernel keeps (it would use only its first whole words;
/// QEMU's direct boot mangles much longer ones before the kernel runs).
fn check_length(line: &str) -> Result<()> {
    use libipc::abi::syscall::KERNEL_CMDLINE_MAX;
    if line.len() > KERNEL_CMDLINE_MAX {
        bail!(
            "the kernel command line is {} bytes long; the kernel takes at most \
             {KERNEL_CMDLINE_MAX}: shorten it (a long `sh=` script can come from a file: \
             `cargo image run < script`)",
            line.len()
        );
    }
    Ok(())
}

/// Checks a command line that was given whole (not as separate arguments), e.g. by a test.
pub fn check_line(line: &str) -> Result<()> {
    if line.contains(['\n', '\r']) {
        bail!("kernel command line {line:?} contains a line break");
    }
    check_length(line)
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
        assert!(join(&["sh=a \"b\""]).is_err());
        assert!(join(&["sh=a\tb"]).is_err());
        assert!(join(&["=a b"]).is_err());
    }

    #[test]
    fn refuses_lines_longer_than_the_kernel_keeps() {
        use libipc::abi::syscall::KERNEL_CMDLINE_MAX;
        let fits = format!("args={}", "a".repeat(KERNEL_CMDLINE_MAX - 5));
        assert_eq!(join(&[&fits]).unwrap().len(), KERNEL_CMDLINE_MAX);
        let long = format!("args={}", "a".repeat(KERNEL_CMDLINE_MAX));
        let error = join(&[&long]).unwrap_err().to_string();
        assert!(error.contains("at most 1024"), "{error}");
        assert!(check_line(&long).is_err());
        assert!(check_line(&fits).is_ok());
    }

    #[test]
    fn quotes_a_value_with_spaces() {
        assert_eq!(
            join(&["init=bootstrap", "sh=ps; vmstat 1 3"]).unwrap(),
            "init=bootstrap sh=\"ps; vmstat 1 3\""
        );
    }

    #[test]
    fn whole_lines_must_not_break() {
        assert!(check_line("test=all log=info").is_ok());
        assert!(check_line("test=all\ncrash=panic").is_err());
    }
}

//! What the Linux guest runs, read from its kernel command line (`/proc/cmdline`):
//! `workload=NAME` (`sheeptest` or `nonaim`), `args=A,B,...` (the workload's arguments, as the
//! microkernel's `args=`) and `workload_memory=SIZE` (the memory cgroup's limit for the
//! workload, K/M/G suffixes; absent: no limit).

use core::fmt;

/// The workloads the program knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Seed 004's sheeptest, with `servers/sheeptest`'s fill and checks.
    Sheeptest,
    /// NONAIM, with `servers/nonaim`'s jobs, mix and figures.
    Nonaim,
}

impl Workload {
    /// The name on the command line (`workload=`).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Sheeptest => "sheeptest",
            Workload::Nonaim => "nonaim",
        }
    }
}

/// The run the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub workload: Workload,
    /// The workload's arguments, split at commas (none when `args=` is absent or empty).
    pub args: Vec<String>,
    /// The workload's memory limit in bytes (`memory.max` of its cgroup).
    pub memory_limit: Option<u64>,
}

/// Why the command line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionsError {
    NoWorkload,
    UnknownWorkload(String),
    BadMemory(String),
    Repeated(&'static str),
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::NoWorkload => write!(f, "no workload= on the kernel command line"),
            OptionsError::UnknownWorkload(name) => {
                write!(f, "unknown workload `{name}` (known: sheeptest, nonaim)")
            }
            OptionsError::BadMemory(text) => write!(
                f,
                "workload_memory=`{text}` is not a size (bytes with a K, M or G suffix, at \
                 least 1M)"
            ),
            OptionsError::Repeated(key) => write!(f, "{key}= is given more than once"),
        }
    }
}

/// Reads a kernel command line (words separated by whitespace; other words are the kernel's).
pub fn parse(cmdline: &str) -> Result<Options, OptionsError> {
    let mut workload = None;
    let mut args = None;
    let mut memory = None;
    for word in cmdline.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let (slot, key): (&mut Option<&str>, &'static str) = match key {
            "workload" => (&mut workload, "workload"),
            "args" => (&mut args, "args"),
            "workload_memory" => (&mut memory, "workload_memory"),
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(OptionsError::Repeated(key));
        }
    }
    let workload = match workload.ok_or(OptionsError::NoWorkload)? {
        "sheeptest" => Workload::Sheeptest,
        "nonaim" => Workload::Nonaim,
        other => return Err(OptionsError::UnknownWorkload(other.to_string())),
    };
    let args = match args {
        Some("") | None => Vec::new(),
        Some(list) => list.split(',').map(str::to_string).collect(),
    };
    let memory_limit = match memory {
        None => None,
        Some(text) => match sheeptest::parse_size(text) {
            Some(bytes) if bytes >= 1 << 20 => Some(bytes),
            _ => return Err(OptionsError::BadMemory(text.to_string())),
        },
    };
    Ok(Options {
        workload,
        args,
        memory_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sheeptest_run_among_the_kernels_own_words() {
        let options = parse(
            "console=ttyS0 quiet panic=-1 workload=sheeptest args=4,4M,1 \
             workload_memory=16M\n",
        )
        .unwrap();
        assert_eq!(
            options,
            Options {
                workload: Workload::Sheeptest,
                args: vec!["4".into(), "4M".into(), "1".into()],
                memory_limit: Some(16 << 20),
            }
        );
        assert_eq!(options.workload.name(), "sheeptest");
    }

    #[test]
    fn a_nonaim_run_keeps_its_schedule() {
        let options = parse("quiet workload=nonaim args=1,2,5 workload_memory=110000K").unwrap();
        assert_eq!(options.workload, Workload::Nonaim);
        assert_eq!(options.workload.name(), "nonaim");
        assert_eq!(options.args, ["1", "2", "5"]);
        assert_eq!(options.memory_limit, Some(110_000 << 10));
    }

    #[test]
    fn arguments_and_the_limit_may_be_left_out() {
        let options = parse("workload=sheeptest").unwrap();
        assert!(options.args.is_empty());
        assert_eq!(options.memory_limit, None);
        assert!(parse("workload=sheeptest args=").unwrap().args.is_empty());
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(parse("console=ttyS0"), Err(OptionsError::NoWorkload));
        assert_eq!(
            parse("workload=aim3"),
            Err(OptionsError::UnknownWorkload("aim3".into()))
        );
        assert_eq!(
            parse("workload=sheeptest workload_memory=lots"),
            Err(OptionsError::BadMemory("lots".into()))
        );
        assert_eq!(
            parse("workload=sheeptest workload_memory=4K"),
            Err(OptionsError::BadMemory("4K".into()))
        );
        assert_eq!(
            parse("workload=sheeptest args=1 args=2"),
            Err(OptionsError::Repeated("args"))
        );
        let message = parse("workload=x").unwrap_err().to_string();
        assert!(message.contains("sheeptest, nonaim"), "{message}");
        assert!(message.contains("unknown workload `x`"), "{message}");
    }
}

//! Which boots a suite takes and with which kernel arguments, and how their figures merge
//! into one list.
//!
//! Most suites boot once. A suite that measures something fixed at boot for several values
//! (`pager-disk`: the disk pager's cluster size, set by the kernel's `swap=` option) boots
//! once per value, with arguments of its own for each boot; every boot runs the same program
//! and prints figures whose names say which boot they come from, and the suite's JSON holds
//! them all.

use anyhow::{bail, Result};
use libipc::abi::syscall::PROGRAM_NAME_MAX;

use super::Measurement;

/// A suite that needs more than one plain boot.
struct Special {
    suite: &'static str,
    /// The program, when it is not `bench_<suite>` (a workload that reports its own figures).
    program: Option<&'static str>,
    /// Kernel arguments every boot gets unless the user gives the same key.
    defaults: &'static [&'static str],
    /// One boot each; none: one unlabelled boot with the common arguments.
    boots: &'static [SpecialBoot],
    /// Runs only with a disk (the disk default pager).
    needs_disk: bool,
    /// Processors QEMU gives the guest (`-smp`); each boot's `cpus=` may use fewer.
    cpus: u32,
    /// Figures renamed once every boot's are in: a metric starting with the first prefix
    /// starts with the second instead (a figure a workload prints under its own name that
    /// the suite reports under the name its issue gave it).
    renames: &'static [(&'static str, &'static str)],
}

/// One boot of a [`Special`] suite.
struct SpecialBoot {
    /// Names its serial log.
    label: &'static str,
    /// Another program than the suite's (a workload measured beside the suite's program).
    program: Option<&'static str>,
    /// Its own kernel arguments, whose keys the user may not give.
    args: &'static [&'static str],
}

/// A boot of the suite's program with `args`.
const fn boot(label: &'static str, args: &'static [&'static str]) -> SpecialBoot {
    SpecialBoot {
        label,
        program: None,
        args,
    }
}

const SPECIALS: &[Special] = &[
    Special {
        suite: "pager-disk",
        program: None,
        // Four times the memory is about 100 MiB to scan: tens of seconds under TCG.
        defaults: &["mem=32M"],
        // The default layout (no `swap=`) has clusters of 8 pages.
        boots: &[
            boot("cluster1", &["swap=1"]),
            boot("cluster2", &["swap=2"]),
            boot("cluster4", &["swap=4"]),
            boot("cluster8", &[]),
        ],
        needs_disk: true,
        cpus: 1,
        renames: &[],
    },
    // Seed 004's sheeptest, 4 x 4 MiB, over a sweep of memory sizes around the paper's
    // 16 MiB; the host names each boot's figures by its memory (`bench::runs`, which also
    // boots each with the swapper off, and on Linux; `--mem N` keeps one point).
    Special {
        suite: "sheeptest",
        program: Some("sheeptest"),
        defaults: &["args=4,4M,1"],
        boots: &[
            boot("mem12m", &["mem=12M"]),
            boot("mem16m", &["mem=16M"]),
            boot("mem20m", &["mem=20M"]),
            boot("mem24m", &["mem=24M"]),
            boot("mem32m", &["mem=32M"]),
        ],
        needs_disk: true,
        cpus: 1,
        renames: &[],
    },
    // NONAIM (seed 004 §4): the default schedule, 1 to 2,000 simulated users, in 128 MiB;
    // one boot, which `bench::runs` makes again with the task swapper off and, with
    // `--linux`, on Linux (figures `nonaim.jpm.500u`, `.off`, `.linux`). `args=` (a shorter
    // schedule, `args=1,2,5`) is the user's.
    // The kernel fuzzer (tests/fuzz): a million random and mutated calls, ten rounds of
    // three workers; `--calls N` (or `args=`) sets the count. Figures `fuzz.calls`,
    // `fuzz.kernel_panics`, `fuzz.leaked_frames`, `fuzz.leaked_heap_bytes`, `fuzz.hangs`.
    Special {
        suite: "fuzz",
        program: Some("fuzz"),
        defaults: &["args=calls=100000,rounds=10"],
        boots: &[],
        needs_disk: false,
        cpus: 1,
        renames: &[],
    },
    Special {
        suite: "nonaim",
        program: Some("nonaim"),
        defaults: &["mem=128M"],
        boots: &[],
        needs_disk: true,
        cpus: 1,
        renames: &[],
    },
    Special {
        suite: "smp",
        program: Some("bench_smp"),
        defaults: &[],
        // QEMU gives four CPUs to every boot; the kernel uses one, two or four of them, and
        // the program names its figures by the count (`smp.rpc_cross_cpu.cpus2`). Then
        // NONAIM on as many, 20 and 50 users in 128 MiB (its figures tagged by the count,
        // `nonaim.jpm.50u.cpus2`), whose peak is the suite's `smp.nonaim_jpm.cpus2`.
        boots: &[
            boot("cpus1", &["cpus=1"]),
            boot("cpus2", &["cpus=2"]),
            boot("cpus4", &["cpus=4"]),
            NONAIM_ON_1,
            NONAIM_ON_2,
            NONAIM_ON_4,
        ],
        needs_disk: true,
        cpus: 4,
        renames: &[("nonaim.peak_jpm.", "smp.nonaim_jpm.")],
    },
];

/// NONAIM in the `smp` suite on `cpus=N`.
const fn nonaim_on(label: &'static str, args: &'static [&'static str]) -> SpecialBoot {
    SpecialBoot {
        label,
        program: Some("nonaim"),
        args,
    }
}
const NONAIM_ON_1: SpecialBoot = nonaim_on(
    "nonaim-cpus1",
    &["cpus=1", "mem=128M", "args=20,50,tag=cpus1"],
);
const NONAIM_ON_2: SpecialBoot = nonaim_on(
    "nonaim-cpus2",
    &["cpus=2", "mem=128M", "args=20,50,tag=cpus2"],
);
const NONAIM_ON_4: SpecialBoot = nonaim_on(
    "nonaim-cpus4",
    &["cpus=4", "mem=128M", "args=20,50,tag=cpus4"],
);

/// How a suite runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The boot-archive program: `bench_<suite>`, `-` read as `_`.
    pub program: String,
    /// The arguments every boot shares: `init=<program>`, the suite's defaults, the user's.
    pub common: Vec<String>,
    pub boots: Vec<PlannedBoot>,
    /// Processors QEMU gives each boot (`-smp`).
    pub cpus: u32,
    /// Prefixes of figure names and what they become ([`rename_prefixes`]).
    pub renames: &'static [(&'static str, &'static str)],
}

impl Plan {
    /// One unlabelled boot with the `common` arguments.
    fn one_boot(program: String, common: Vec<String>) -> Plan {
        let boots = vec![PlannedBoot {
            label: None,
            program: program.clone(),
            args: common.clone(),
        }];
        Plan {
            program,
            common,
            boots,
            cpus: 1,
            renames: &[],
        }
    }
}

/// One boot of a [`Plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedBoot {
    /// Names the boot's serial log; `None` for the one boot of a plain suite.
    pub label: Option<String>,
    /// The program it boots (the plan's, or the boot's own).
    pub program: String,
    /// The whole command line's arguments: the plan's common ones (`init=` naming the
    /// boot's program), then the boot's own.
    pub args: Vec<String>,
}

/// The program that runs suite `suite`: `bench_<suite>` with each `-` read as `_`. Refuses
/// names the archive could not hold or that would not make one word on the kernel command
/// line.
pub fn program_name(suite: &str) -> Result<String> {
    let valid = !suite.is_empty()
        && suite
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        bail!(
            "suite name {suite:?}: use lower-case letters, digits, `_` and `-` (e.g. `ipc`, \
             `pager-disk`)"
        );
    }
    let program = format!("bench_{}", suite.replace('-', "_"));
    if program.len() > PROGRAM_NAME_MAX {
        bail!(
            "suite name {suite:?} is too long: program {program} exceeds {PROGRAM_NAME_MAX} bytes"
        );
    }
    Ok(program)
}

/// `key` of `key=value` (the whole argument if it has no `=`).
fn key(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(key, _)| key)
}

/// The boots of `suite` with the user's kernel arguments `user_args`; `has_disk` says whether
/// the run attaches a disk.
pub fn of(suite: &str, user_args: &[String], has_disk: bool) -> Result<Plan> {
    let special = SPECIALS.iter().find(|s| s.suite == suite);
    let program = match special.and_then(|s| s.program) {
        Some(program) => program.to_string(),
        None => program_name(suite)?,
    };
    if let Some(arg) = user_args.iter().find(|a| key(a) == "init") {
        bail!("kernel argument {arg}: `bench` chooses init= itself (init={program})");
    }
    let mut common = vec![format!("init={program}")];
    let Some(special) = special else {
        common.extend(user_args.iter().cloned());
        return Ok(Plan::one_boot(program, common));
    };
    if special.needs_disk && !has_disk {
        bail!("suite {suite} pages to the disk: it cannot run with --no-disk");
    }
    for boot in special.boots {
        for arg in boot.args {
            if let Some(given) = user_args.iter().find(|a| key(a) == key(arg)) {
                bail!(
                    "kernel argument {given}: suite {suite} sets {}= itself, once per boot",
                    key(arg)
                );
            }
        }
    }
    let defaults = special
        .defaults
        .iter()
        .filter(|d| !user_args.iter().any(|a| key(a) == key(d)));
    common.extend(defaults.map(|d| d.to_string()));
    common.extend(user_args.iter().cloned());
    if special.boots.is_empty() {
        return Ok(Plan {
            cpus: special.cpus,
            renames: special.renames,
            ..Plan::one_boot(program, common)
        });
    }
    let boots = special
        .boots
        .iter()
        .map(|boot| {
            let program = boot.program.map_or_else(|| program.clone(), str::to_string);
            let init = format!("init={program}");
            PlannedBoot {
                label: Some(boot.label.to_string()),
                args: core::iter::once(init)
                    .chain(common.iter().skip(1).cloned())
                    .chain(boot.args.iter().map(|a| a.to_string()))
                    .collect(),
                program,
            }
        })
        .collect();
    Ok(Plan {
        program,
        common,
        boots,
        cpus: special.cpus,
        renames: special.renames,
    })
}

/// `figures` with each name that starts with the first of a pair in `renames` starting
/// with the second instead.
pub fn rename_prefixes(figures: Vec<Measurement>, renames: &[(&str, &str)]) -> Vec<Measurement> {
    figures
        .into_iter()
        .map(|figure| {
            let renamed = renames.iter().find_map(|(from, to)| {
                figure
                    .metric
                    .strip_prefix(from)
                    .map(|rest| format!("{to}{rest}"))
            });
            match renamed {
                Some(metric) => Measurement { metric, ..figure },
                None => figure,
            }
        })
        .collect()
}

/// The figures of every boot in boot order; an error names a metric two boots both printed
/// (each boot's figures must say which boot they come from).
pub fn merge(boots: Vec<Vec<Measurement>>) -> Result<Vec<Measurement>, String> {
    let mut all: Vec<Measurement> = Vec::new();
    for figures in boots {
        for figure in figures {
            if all.iter().any(|m| m.metric == figure.metric) {
                return Err(format!(
                    "metric {} was printed by more than one boot",
                    figure.metric
                ));
            }
            all.push(figure);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Number;
    use std::str::FromStr;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    fn figure(metric: &str, value: &str) -> Measurement {
        Measurement {
            metric: metric.to_string(),
            value: Number::from_str(value).unwrap(),
            unit: "x".to_string(),
        }
    }

    #[test]
    fn suite_names_map_to_programs() {
        assert_eq!(program_name("ipc").unwrap(), "bench_ipc");
        assert_eq!(program_name("vm_2").unwrap(), "bench_vm_2");
        assert_eq!(program_name("pager-disk").unwrap(), "bench_pager_disk");
        for bad in ["", "IPC", "a b", "a=b", "../x", "a.b", &"x".repeat(42)] {
            assert!(program_name(bad).is_err(), "{bad:?}");
        }
        assert!(program_name(&"x".repeat(41)).is_ok());
    }

    #[test]
    fn a_plain_suite_boots_once_with_the_users_arguments() {
        let plan = of("ipc", &args(&["log=warn"]), true).unwrap();
        assert_eq!(plan.program, "bench_ipc");
        assert_eq!(plan.common, args(&["init=bench_ipc", "log=warn"]));
        assert_eq!(
            plan.boots,
            [PlannedBoot {
                label: None,
                program: "bench_ipc".into(),
                args: args(&["init=bench_ipc", "log=warn"]),
            }]
        );
        assert!(of("ipc", &args(&["init=hello"]), true).is_err());
    }

    #[test]
    fn the_smp_suite_boots_on_four_cpus_using_one_two_and_four() {
        let plan = of("smp", &args(&["log=warn"]), true).unwrap();
        assert_eq!((plan.program.as_str(), plan.cpus), ("bench_smp", 4));
        let boots: Vec<_> = plan
            .boots
            .iter()
            .map(|b| (b.program.as_str(), b.args.join(" ")))
            .collect();
        assert_eq!(
            boots,
            [
                ("bench_smp", "init=bench_smp log=warn cpus=1".to_string()),
                ("bench_smp", "init=bench_smp log=warn cpus=2".to_string()),
                ("bench_smp", "init=bench_smp log=warn cpus=4".to_string()),
                (
                    "nonaim",
                    "init=nonaim log=warn cpus=1 mem=128M args=20,50,tag=cpus1".to_string()
                ),
                (
                    "nonaim",
                    "init=nonaim log=warn cpus=2 mem=128M args=20,50,tag=cpus2".to_string()
                ),
                (
                    "nonaim",
                    "init=nonaim log=warn cpus=4 mem=128M args=20,50,tag=cpus4".to_string()
                ),
            ]
        );
        assert!(of("smp", &args(&["cpus=3"]), true).is_err());
        assert!(
            of("smp", &args(&[]), false).is_err(),
            "NONAIM needs the disk"
        );
        assert_eq!(of("ipc", &args(&[]), true).unwrap().cpus, 1);
        // NONAIM's peak on N CPUs is the suite's `smp.nonaim_jpm.cpusN`; the rest stay.
        let renamed = rename_prefixes(
            vec![
                figure("nonaim.peak_jpm.cpus2", "70000.5"),
                figure("nonaim.jpm.50u.cpus2", "70000.5"),
            ],
            plan.renames,
        );
        let names: Vec<_> = renamed.iter().map(|f| f.metric.as_str()).collect();
        assert_eq!(names, ["smp.nonaim_jpm.cpus2", "nonaim.jpm.50u.cpus2"]);
        assert_eq!(renamed[0].value, figure("x", "70000.5").value);
    }

    #[test]
    fn pager_disk_boots_once_per_cluster_size() {
        let plan = of("pager-disk", &args(&["log=warn"]), true).unwrap();
        assert_eq!(plan.program, "bench_pager_disk");
        assert_eq!(
            plan.common,
            args(&["init=bench_pager_disk", "mem=32M", "log=warn"])
        );
        let boots: Vec<(Option<&str>, String)> = plan
            .boots
            .iter()
            .map(|b| (b.label.as_deref(), b.args.join(" ")))
            .collect();
        assert_eq!(
            boots,
            [
                (
                    Some("cluster1"),
                    "init=bench_pager_disk mem=32M log=warn swap=1".to_string()
                ),
                (
                    Some("cluster2"),
                    "init=bench_pager_disk mem=32M log=warn swap=2".to_string()
                ),
                (
                    Some("cluster4"),
                    "init=bench_pager_disk mem=32M log=warn swap=4".to_string()
                ),
                (
                    Some("cluster8"),
                    "init=bench_pager_disk mem=32M log=warn".to_string()
                ),
            ]
        );
    }

    #[test]
    fn the_user_may_change_a_default_but_not_what_varies() {
        let smaller = of("pager-disk", &args(&["mem=16M"]), true).unwrap();
        assert_eq!(smaller.common, args(&["init=bench_pager_disk", "mem=16M"]));
        assert!(smaller.boots.iter().all(|b| b
            .args
            .iter()
            .filter(|a| a.starts_with("mem="))
            .count()
            == 1));

        let swap = of("pager-disk", &args(&["swap=0+8M"]), true).unwrap_err();
        assert!(swap.to_string().contains("sets swap= itself"), "{swap}");
        let no_disk = of("pager-disk", &[], false).unwrap_err();
        assert!(no_disk.to_string().contains("--no-disk"), "{no_disk}");
        assert!(of("pager-disk", &args(&["init=x"]), true).is_err());
    }

    #[test]
    fn merging_keeps_boot_order_and_refuses_a_metric_twice() {
        let merged = merge(vec![
            vec![figure("a.one.cluster1", "1"), figure("a.fault", "7")],
            vec![],
            vec![figure("a.one.cluster4", "0.25"), figure("a.one", "0.25")],
        ])
        .unwrap();
        let names: Vec<&str> = merged.iter().map(|m| m.metric.as_str()).collect();
        assert_eq!(
            names,
            ["a.one.cluster1", "a.fault", "a.one.cluster4", "a.one"]
        );

        let twice =
            merge(vec![vec![figure("a.one", "1")], vec![figure("a.one", "2")]]).unwrap_err();
        assert!(twice.contains("a.one"), "{twice}");
    }

    #[test]
    fn sheeptest_runs_itself_over_a_sweep_of_memory_sizes() {
        let plan = of("sheeptest", &[], true).unwrap();
        assert_eq!(plan.program, "sheeptest");
        assert_eq!(plan.common, args(&["init=sheeptest", "args=4,4M,1"]));
        let boots: Vec<_> = plan
            .boots
            .iter()
            .map(|b| (b.label.clone().unwrap(), b.args.last().unwrap().clone()))
            .collect();
        assert_eq!(
            boots,
            [
                ("mem12m".to_string(), "mem=12M".to_string()),
                ("mem16m".to_string(), "mem=16M".to_string()),
                ("mem20m".to_string(), "mem=20M".to_string()),
                ("mem24m".to_string(), "mem=24M".to_string()),
                ("mem32m".to_string(), "mem=32M".to_string()),
            ]
        );
        assert!(of("sheeptest", &[], false).is_err());
        assert!(of("sheeptest", &args(&["mem=32M"]), true).is_err());
        let theirs = of("sheeptest", &args(&["args=8,3M,3"]), true).unwrap();
        assert_eq!(theirs.common, args(&["init=sheeptest", "args=8,3M,3"]));
    }

    #[test]
    fn fuzz_boots_the_fuzzer_once_with_a_million_calls_unless_told() {
        let plan = of("fuzz", &[], false).unwrap();
        assert_eq!(plan.program, "fuzz");
        assert_eq!(
            plan.common,
            args(&["init=fuzz", "args=calls=100000,rounds=10"])
        );
        assert_eq!(plan.boots.len(), 1);
        let theirs = of("fuzz", &args(&["args=calls=50,seed=3"]), false).unwrap();
        assert_eq!(theirs.common, args(&["init=fuzz", "args=calls=50,seed=3"]));
        assert_eq!(
            crate::bench::fuzz_calls_args(10_000_000),
            "args=calls=250000,rounds=40"
        );
        assert_eq!(
            crate::bench::fuzz_calls_args(1_000_000),
            "args=calls=100000,rounds=10"
        );
        assert_eq!(crate::bench::fuzz_calls_args(5), "args=calls=1,rounds=10");
    }

    #[test]
    fn nonaim_boots_once_in_128m_with_the_users_schedule() {
        let plan = of("nonaim", &args(&["log=warn"]), true).unwrap();
        assert_eq!(plan.program, "nonaim");
        assert_eq!(plan.common, args(&["init=nonaim", "mem=128M", "log=warn"]));
        assert_eq!(
            plan.boots,
            [PlannedBoot {
                label: None,
                program: "nonaim".into(),
                args: args(&["init=nonaim", "mem=128M", "log=warn"]),
            }]
        );
        // A smaller memory and a shorter schedule are the user's to choose.
        let smaller = of("nonaim", &args(&["mem=64M", "args=1,2"]), true).unwrap();
        assert_eq!(
            smaller.common,
            args(&["init=nonaim", "mem=64M", "args=1,2"])
        );
        assert_eq!(smaller.boots[0].args, smaller.common);
        assert!(of("nonaim", &[], false).is_err());
    }
}

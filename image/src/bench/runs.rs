//! The boots a suite's run is made of, beyond its [`plan`](super::plan): for the workloads
//! that compare systems (sheeptest, NONAIM), each planned boot of our kernel again with the
//! task swapper off (`swapper=off`) and, with `--linux`, on Linux in the same QEMU; the
//! suffix that keeps each boot's figures apart (the guest programs print the same names in
//! every boot, so the host renames them: the boot's label, then `off` or `linux`); the memory
//! a Linux boot's workload gets (what the workload had free on our kernel at the same point,
//! [`linux_args`]); and sheeptest's memory sweep or, with `--mem N`, its one point.

use anyhow::{bail, Result};

use super::plan::{Plan, PlannedBoot};
use super::Measurement;

/// Suites whose figures are compared across systems: booted with the swapper on and off,
/// and on Linux with `--linux`.
pub const COMPARED: &[&str] = &["sheeptest", "nonaim"];

/// The disk throttle of a suite when the user gives none: sheeptest's paging should cost
/// what it costs on a disk (and the swapper measures the disk's capacity), not what a host
/// page cache costs. None under `icount`: QEMU's throttle paces host time, while an idle
/// guest's clock under `-icount ... sleep=off` jumps ahead to its next timer, so the guest
/// sees a disk thousands of times slower, and waits for memory time out in guest seconds.
pub fn default_iops(suite: &str, icount: bool) -> Option<u32> {
    (suite == "sheeptest" && !icount).then_some(400)
}

/// The system a boot runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// Our kernel as configured (the task swapper on).
    Ours,
    /// Our kernel with `swapper=off`.
    OursSwapperOff,
    /// Debian's kernel with `linux-workloads` as its init.
    Linux,
}

impl System {
    /// The figures' suffix and the label's (`None` for our kernel as configured).
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            System::Ours => None,
            System::OursSwapperOff => Some("off"),
            System::Linux => Some("linux"),
        }
    }

    /// As shown in plots and tables.
    pub fn title(self) -> &'static str {
        match self {
            System::Ours => "swapper on",
            System::OursSwapperOff => "swapper off",
            System::Linux => "Linux",
        }
    }

    /// The system a (renamed) figure comes from: its last name part says.
    pub fn of_metric(metric: &str) -> System {
        match metric.rsplit('.').next() {
            Some("off") => System::OursSwapperOff,
            Some("linux") => System::Linux,
            _ => System::Ours,
        }
    }
}

/// One boot to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub system: System,
    /// The planned boot's label: the point of a sweep this run is at.
    pub point: Option<String>,
    /// Names its serial log: the planned boot's label, `-off` or `-linux` added.
    pub label: Option<String>,
    /// The program it runs (the planned boot's).
    pub program: String,
    /// Our kernel's arguments (the planned boot's, `swapper=off` added); for
    /// [`System::Linux`] still ours, which [`crate::linux::cmdline_for`] translates.
    pub args: Vec<String>,
    /// Appended to every figure's metric (with a `.`), if any.
    pub suffix: Option<String>,
}

/// Our kernel's arguments for a compared suite under `-icount`: an idle CPU polls, as
/// Linux's does there (`crate::linux::ICOUNT_ARGS`), so that both count the instructions
/// run while waiting for the disk rather than jumps of the idle clock.
pub const ICOUNT_ARGS: &[&str] = &["idle=poll"];

/// The runs of `plan` for suite `suite`: each planned boot as it is; for a compared suite,
/// then each with the swapper off, then each on Linux if `linux` (and under `icount`, our
/// kernel's boots with [`ICOUNT_ARGS`]). A suite that is not compared refuses `linux`.
pub fn expand(suite: &str, plan: &Plan, linux: bool, icount: bool) -> Result<Vec<Run>> {
    let compared = COMPARED.contains(&suite);
    if linux && !compared {
        bail!(
            "--linux: suite {suite} has no Linux counterpart (the suites compared with Linux: \
             {})",
            COMPARED.join(", ")
        );
    }
    let mut systems = vec![System::Ours];
    if compared {
        systems.push(System::OursSwapperOff);
        if linux {
            systems.push(System::Linux);
        }
    }
    if compared {
        if let Some(arg) = plan.common.iter().find(|a| key(a) == "swapper") {
            bail!("kernel argument {arg}: suite {suite} boots with the swapper on and off itself");
        }
    }
    let extra: &[&str] = if compared && icount { ICOUNT_ARGS } else { &[] };
    if let Some(arg) = plan
        .common
        .iter()
        .find(|a| extra.iter().any(|e| key(e) == key(a)))
    {
        bail!("kernel argument {arg}: suite {suite} sets it itself under --icount");
    }
    let mut runs = Vec::new();
    for system in systems {
        for boot in &plan.boots {
            let mut run = run_of(boot, system, compared);
            if system != System::Linux {
                run.args.extend(extra.iter().map(|arg| arg.to_string()));
            }
            runs.push(run);
        }
    }
    Ok(runs)
}

fn run_of(boot: &PlannedBoot, system: System, compared: bool) -> Run {
    let mut args = boot.args.clone();
    if system == System::OursSwapperOff {
        args.push("swapper=off".to_string());
    }
    let parts: Vec<&str> = boot
        .label
        .as_deref()
        .into_iter()
        .chain(system.suffix())
        .collect();
    let label = (!parts.is_empty()).then(|| parts.join("-"));
    let suffix = (compared && !parts.is_empty()).then(|| parts.join("."));
    Run {
        system,
        point: boot.label.clone(),
        label,
        program: boot.program.clone(),
        args,
        suffix,
    }
}

/// The measure a workload reports of the memory free to it at the start (KiB): a figure
/// `<suite>.free_kib.<run>`.
pub const FREE_MEMORY_MEASURE: &str = "free_kib";

/// What our kernel's boot at the same point left free for the workload, in KiB, from its
/// figures (before renaming).
pub fn free_memory(figures: &[Measurement]) -> Option<u64> {
    figures.iter().find_map(|figure| {
        let measure = figure.metric.split('.').nth(1)?;
        (measure == FREE_MEMORY_MEASURE).then(|| figure.value.as_u64())?
    })
}

/// A Linux run's arguments (still ours, for [`crate::linux::cmdline_for`]): its workload is
/// given `free_kib` KiB (what it had free on our kernel at the same point, kernel and servers
/// being outside Linux's memory cgroup as Linux's own kernel is) in place of the point's
/// `mem=`; with nothing known, the point's memory as it is.
pub fn linux_args(run: &Run, free_kib: Option<u64>) -> Vec<String> {
    let Some(free_kib) = free_kib else {
        return run.args.clone();
    };
    run.args
        .iter()
        .map(|arg| {
            if key(arg) == "mem" {
                format!("mem={free_kib}K")
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// `figures` with `suffix` appended to each metric.
pub fn rename(figures: Vec<Measurement>, suffix: Option<&str>) -> Vec<Measurement> {
    let Some(suffix) = suffix else {
        return figures;
    };
    figures
        .into_iter()
        .map(|figure| Measurement {
            metric: format!("{}.{suffix}", figure.metric),
            ..figure
        })
        .collect()
}

/// `key` of `key=value`.
fn key(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(key, _)| key)
}

/// The guest memory (QEMU's `-m`, MiB) for suite `suite` when the user asked for `mem`.
/// sheeptest's `--mem N` is the memory of its one point (the kernel's `mem=`), so QEMU keeps
/// its default unless N is more.
pub fn qemu_memory(suite: &str, mem: Option<u32>) -> u32 {
    const DEFAULT: u32 = 256;
    match (suite, mem) {
        ("sheeptest", Some(mem)) => mem.max(DEFAULT),
        (_, Some(mem)) => mem,
        // A hundred thousand blocked tasks and more: issue 18's gigabyte.
        ("scale", None) => 1024,
        (_, None) => DEFAULT,
    }
}

/// sheeptest with `--mem N`: one boot in `mem=NM` with the paper's proportion, 4 workers
/// of a quarter of the memory each (unless the user gave `args=`), instead of the sweep.
/// Other suites' plans are left as they are.
pub fn at_memory(suite: &str, plan: Plan, mem: Option<u32>, user_args: &[String]) -> Result<Plan> {
    let (Some(mem), "sheeptest") = (mem, suite) else {
        return Ok(plan);
    };
    if mem < 8 {
        bail!("--mem {mem}: our kernel needs at least 8 MiB");
    }
    let user_gave_args = user_args.iter().any(|a| key(a) == "args");
    let mut common = plan.common;
    if !user_gave_args {
        common.retain(|a| key(a) != "args");
        common.push(format!("args=4,{}K,1", mem * 256));
    }
    let mut args = common.clone();
    args.push(format!("mem={mem}M"));
    Ok(Plan {
        common,
        boots: vec![PlannedBoot {
            label: Some(format!("mem{mem}m")),
            program: plan.program.clone(),
            args,
        }],
        program: plan.program,
        cpus: plan.cpus,
        renames: plan.renames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan;
    use serde_json::Number;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_compared_suite_boots_each_point_with_the_swapper_on_then_off_then_on_linux() {
        let plan = plan::of("sheeptest", &[], true).unwrap();
        let runs = expand("sheeptest", &plan, true, false).unwrap();
        assert_eq!(runs.len(), 3 * plan.boots.len());
        let first = &runs[0];
        assert_eq!(first.system, System::Ours);
        assert_eq!(first.label.as_deref(), Some("mem12m"));
        assert_eq!(first.suffix.as_deref(), Some("mem12m"));
        assert!(!first.args.contains(&"swapper=off".to_string()));
        let off = &runs[plan.boots.len()];
        assert_eq!(off.system, System::OursSwapperOff);
        assert_eq!(off.label.as_deref(), Some("mem12m-off"));
        assert_eq!(off.suffix.as_deref(), Some("mem12m.off"));
        assert_eq!(off.args.last().unwrap(), "swapper=off");
        let linux = runs.last().unwrap();
        assert_eq!(linux.system, System::Linux);
        assert_eq!(linux.suffix.as_deref(), Some("mem32m.linux"));
        assert!(!linux.args.contains(&"swapper=off".to_string()));

        let without_linux = expand("sheeptest", &plan, false, false).unwrap();
        assert!(without_linux.iter().all(|r| r.system != System::Linux));
        assert_eq!(without_linux.len(), 2 * plan.boots.len());
    }

    #[test]
    fn a_compared_suite_of_one_unlabelled_boot_suffixes_only_the_other_systems() {
        let plan = Plan {
            program: "nonaim".into(),
            common: strings(&["init=nonaim", "args=1,2,4"]),
            boots: vec![PlannedBoot {
                label: None,
                program: "nonaim".into(),
                args: strings(&["init=nonaim", "args=1,2,4"]),
            }],
            cpus: 1,
            renames: &[],
        };
        let runs = expand("nonaim", &plan, true, false).unwrap();
        let seen: Vec<(Option<&str>, Option<&str>)> = runs
            .iter()
            .map(|r| (r.label.as_deref(), r.suffix.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (None, None),
                (Some("off"), Some("off")),
                (Some("linux"), Some("linux"))
            ]
        );
    }

    #[test]
    fn other_suites_boot_as_planned_and_refuse_linux() {
        let plan = plan::of("pager-disk", &[], true).unwrap();
        let runs = expand("pager-disk", &plan, false, false).unwrap();
        assert_eq!(runs.len(), plan.boots.len());
        assert!(runs
            .iter()
            .all(|r| r.suffix.is_none() && r.system == System::Ours));
        assert_eq!(runs[0].label.as_deref(), Some("cluster1"));
        let error = expand("pager-disk", &plan, true, false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no Linux counterpart"), "{error}");
    }

    #[test]
    fn under_icount_our_kernel_polls_when_idle_as_linux_does() {
        let plan = plan::of("sheeptest", &[], true).unwrap();
        let runs = expand("sheeptest", &plan, true, true).unwrap();
        for run in &runs {
            let polls = run.args.contains(&"idle=poll".to_string());
            assert_eq!(polls, run.system != System::Linux, "{run:?}");
        }
        let linux = runs.iter().find(|r| r.system == System::Linux).unwrap();
        let line = crate::linux::cmdline_for(&linux.args, true).unwrap();
        assert!(line.contains(&"idle=poll".to_string()), "{line:?}");
        let ipc = plan::of("ipc", &[], true).unwrap();
        let plain = expand("ipc", &ipc, false, true).unwrap();
        assert!(!plain[0].args.contains(&"idle=poll".to_string()));
        let theirs = plan::of("sheeptest", &strings(&["idle=halt"]), true).unwrap();
        assert!(expand("sheeptest", &theirs, false, true).is_err());
        assert!(expand("sheeptest", &theirs, false, false).is_ok());
    }

    #[test]
    fn the_swapper_is_the_suites_to_set() {
        let plan = plan::of("sheeptest", &strings(&["swapper=off"]), true).unwrap();
        let error = expand("sheeptest", &plan, false, false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("swapper on and off itself"), "{error}");
    }

    #[test]
    fn figures_are_renamed_by_suffix_and_systems_read_back() {
        let figure = Measurement {
            metric: "sheeptest.elapsed_s.4x4m".into(),
            value: "1.5".parse::<Number>().unwrap(),
            unit: "s".into(),
        };
        let renamed = rename(vec![figure.clone()], Some("mem16m.off"));
        assert_eq!(renamed[0].metric, "sheeptest.elapsed_s.4x4m.mem16m.off");
        assert_eq!(
            (&renamed[0].value, &renamed[0].unit),
            (&figure.value, &figure.unit)
        );
        assert!(
            super::super::parse_line(&format!("bench {} 1 s", renamed[0].metric))
                .unwrap()
                .is_ok()
        );
        assert_eq!(rename(vec![figure.clone()], None), [figure]);
        assert_eq!(
            System::of_metric("a.b.4x4m.mem16m.off"),
            System::OursSwapperOff
        );
        assert_eq!(System::of_metric("nonaim.jpm.8u.linux"), System::Linux);
        assert_eq!(System::of_metric("nonaim.jpm.8u"), System::Ours);
    }

    #[test]
    fn linux_gets_what_our_workload_had_free_at_the_same_point() {
        let plan = plan::of("sheeptest", &[], true).unwrap();
        let runs = expand("sheeptest", &plan, true, false).unwrap();
        let ours = &runs[1];
        let linux = runs
            .iter()
            .find(|r| r.system == System::Linux && r.point == ours.point)
            .unwrap();
        assert_eq!(ours.point.as_deref(), Some("mem16m"));
        let figures = vec![
            Measurement {
                metric: "sheeptest.instructions.4x4m".into(),
                value: Number::from(123u64),
                unit: "instructions".into(),
            },
            Measurement {
                metric: "sheeptest.free_kib.4x4m".into(),
                value: Number::from(11712u64),
                unit: "KiB".into(),
            },
        ];
        let free = free_memory(&figures);
        assert_eq!(free, Some(11712));
        let args = linux_args(linux, free);
        assert!(args.contains(&"mem=11712K".to_string()), "{args:?}");
        assert!(!args.contains(&"mem=16M".to_string()));
        let line = crate::linux::cmdline_for(&args, false).unwrap();
        assert!(
            line.contains(&"workload_memory=11712K".to_string()),
            "{line:?}"
        );
        assert_eq!(linux_args(linux, None), linux.args);
        assert_eq!(free_memory(&figures[..1]), None);
    }

    #[test]
    fn mem_picks_one_point_of_sheeptest_with_workers_a_quarter_of_it() {
        let plan = plan::of("sheeptest", &[], true).unwrap();
        let one = at_memory("sheeptest", plan.clone(), Some(16), &[]).unwrap();
        assert_eq!(
            one.boots,
            [PlannedBoot {
                label: Some("mem16m".into()),
                program: "sheeptest".into(),
                args: strings(&["init=sheeptest", "args=4,4096K,1", "mem=16M"]),
            }]
        );
        let user = strings(&["args=8,3M,3"]);
        let theirs = plan::of("sheeptest", &user, true).unwrap();
        let one = at_memory("sheeptest", theirs, Some(256), &user).unwrap();
        assert_eq!(
            one.boots[0].args,
            strings(&["init=sheeptest", "args=8,3M,3", "mem=256M"])
        );
        assert_eq!(
            at_memory("sheeptest", plan.clone(), None, &[]).unwrap(),
            plan
        );
        assert!(at_memory("sheeptest", plan, Some(4), &[]).is_err());
        let ipc = plan::of("ipc", &[], true).unwrap();
        assert_eq!(at_memory("ipc", ipc.clone(), Some(64), &[]).unwrap(), ipc);
    }

    #[test]
    fn qemu_memory_follows_mem_except_for_sheeptests_points() {
        assert_eq!(qemu_memory("ipc", None), 256);
        assert_eq!(qemu_memory("ipc", Some(1024)), 1024);
        assert_eq!(qemu_memory("scale", None), 1024);
        assert_eq!(qemu_memory("scale", Some(512)), 512);
        assert_eq!(qemu_memory("sheeptest", Some(16)), 256);
        assert_eq!(qemu_memory("sheeptest", Some(512)), 512);
        assert_eq!(default_iops("sheeptest", false), Some(400));
        assert_eq!(default_iops("sheeptest", true), None);
        assert_eq!(default_iops("pager-disk", false), None);
    }
}

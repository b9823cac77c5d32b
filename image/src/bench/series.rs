//! The figures of the compared suites (sheeptest, NONAIM) read as series, for the CSV table
//! beside the JSON and for the plots: which system each comes from (`bench::runs`' suffixes),
//! what it measures, and its x: the memory size of a sheeptest boot (`...mem16m`, MiB) or
//! the simulated users of a NONAIM figure (`nonaim.jpm.8u`, the format of the NONAIM
//! program's figures).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::runs::{System, COMPARED};
use super::Measurement;
use crate::plot::{Chart, Series};

/// What a figure's name says beyond its value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// The system, for a compared suite's figure.
    pub system: Option<System>,
    /// The measure: the name part after the suite (`elapsed_s`, `jpm`).
    pub measure: String,
    /// sheeptest's run (`4x4m`).
    pub workload: Option<String>,
    pub memory_mib: Option<u32>,
    pub users: Option<u32>,
}

/// Reads `metric` of suite `suite`.
pub fn read(suite: &str, metric: &str) -> Reading {
    let parts: Vec<&str> = metric.split('.').collect();
    let number = |prefix: &str, suffix: &str| {
        parts.iter().skip(2).find_map(|part| {
            let digits = part.strip_prefix(prefix)?.strip_suffix(suffix)?;
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten()
        })
    };
    let compared = COMPARED.contains(&suite);
    Reading {
        system: compared.then(|| System::of_metric(metric)),
        measure: parts.get(1).copied().unwrap_or_default().to_string(),
        workload: (suite == "sheeptest")
            .then(|| parts.get(2).map(|w| w.to_string()))
            .flatten()
            .filter(|w| w.contains('x')),
        memory_mib: (suite == "sheeptest").then(|| number("mem", "m")).flatten(),
        users: (suite == "nonaim").then(|| number("", "u")).flatten(),
    }
}

/// `<workspace>/target/bench/<suite>.csv`.
pub fn csv_path(suite: &str) -> PathBuf {
    crate::target_dir()
        .join("bench")
        .join(format!("{suite}.csv"))
}

/// `<workspace>/target/bench/<suite>.svg`.
pub fn svg_path(suite: &str) -> PathBuf {
    crate::target_dir()
        .join("bench")
        .join(format!("{suite}.svg"))
}

/// sheeptest's x axis: our kernel's `mem=`; Linux's workload is limited (memory cgroup) to
/// what ours had free at the same point (`bench::runs::linux_args`).
pub const MEMORY_AXIS: &str =
    "memory, MiB (ours: mem=; Linux: its workload held to what ours had free there)";

/// The CSV header.
pub const CSV_HEADER: &str = "metric,value,unit,system,memory_mib,users";

/// One row per figure: its metric, value and unit, then (for a compared suite) its system,
/// memory size and users where its name has them, else empty cells.
pub fn csv(suite: &str, figures: &[Measurement]) -> String {
    let mut text = format!("{CSV_HEADER}\n");
    for figure in figures {
        let reading = read(suite, &figure.metric);
        let optional = |n: Option<u32>| n.map_or(String::new(), |n| n.to_string());
        let _ = writeln!(
            text,
            "{},{},{},{},{},{}",
            cell(&figure.metric),
            figure.value,
            cell(&figure.unit),
            cell(reading.system.map_or("", System::title)),
            optional(reading.memory_mib),
            optional(reading.users),
        );
    }
    text
}

/// A CSV cell: quoted (quotes doubled) when it holds a comma, a quote or a line break.
pub fn cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The charts of suite `suite`'s figures (none for a suite that is not compared): sheeptest's
/// elapsed time (instructions under `icount`) and disk operations against memory, NONAIM's
/// jobs per minute against users on a logarithmic axis; one series per system (and per
/// sheeptest run, if there are several).
pub fn charts(suite: &str, figures: &[Measurement], icount: bool) -> Vec<Chart> {
    match suite {
        "sheeptest" => {
            let time = if icount {
                ("instructions", "guest instructions", "instructions")
            } else {
                ("elapsed_s", "elapsed time", "elapsed (s)")
            };
            [time, ("disk_ops", "disk operations", "disk operations")]
                .into_iter()
                .filter_map(|(measure, what, y_label)| {
                    chart(
                        suite,
                        figures,
                        measure,
                        |r| r.memory_mib,
                        |workloads| Chart {
                            title: format!("sheeptest {workloads}: {what} against memory"),
                            x_label: MEMORY_AXIS.into(),
                            y_label: y_label.into(),
                            log_x: false,
                            series: Vec::new(),
                        },
                    )
                })
                .collect()
        }
        "nonaim" => chart(
            suite,
            figures,
            "jpm",
            |r| r.users,
            |_| Chart {
                title: "NONAIM: jobs per minute against simulated users".into(),
                x_label: "simulated users".into(),
                y_label: "jobs per minute".into(),
                log_x: true,
                series: Vec::new(),
            },
        )
        .into_iter()
        .collect(),
        _ => Vec::new(),
    }
}

/// The chart of `measure` (x from `x_of`), made by `make` from the runs' names; `None` if no
/// figure has both.
fn chart(
    suite: &str,
    figures: &[Measurement],
    measure: &str,
    x_of: impl Fn(&Reading) -> Option<u32>,
    make: impl Fn(&str) -> Chart,
) -> Option<Chart> {
    // (system, sheeptest run) and the point.
    type Keyed = ((System, Option<String>), (f64, f64));
    let mut keyed: Vec<Keyed> = Vec::new();
    for figure in figures {
        let reading = read(suite, &figure.metric);
        let (Some(system), Some(x), Some(y)) =
            (reading.system, x_of(&reading), figure.value.as_f64())
        else {
            continue;
        };
        if reading.measure == measure {
            keyed.push(((system, reading.workload), (f64::from(x), y)));
        }
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut workloads: Vec<String> = keyed.iter().filter_map(|((_, w), _)| w.clone()).collect();
    workloads.sort();
    workloads.dedup();
    let mut chart = make(&workloads.join(", "));
    for ((system, workload), point) in keyed {
        let name = match (&workload, workloads.len() > 1) {
            (Some(workload), true) => format!("{} ({workload})", system.title()),
            _ => system.title().to_string(),
        };
        match chart.series.last_mut() {
            Some(series) if series.name == name => series.points.push(point),
            _ => chart.series.push(Series {
                name,
                points: vec![point],
            }),
        }
    }
    (!chart.series.is_empty()).then_some(chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Number;
    use std::str::FromStr;

    fn figure(metric: &str, value: &str, unit: &str) -> Measurement {
        Measurement {
            metric: metric.into(),
            value: Number::from_str(value).unwrap(),
            unit: unit.into(),
        }
    }

    /// sheeptest's figures from three memory sizes and the three systems, as the suite
    /// writes them.
    fn sheeptest_figures() -> Vec<Measurement> {
        let mut figures = Vec::new();
        for (suffix, scale) in [("", 1.0), (".off", 0.9), (".linux", 0.2)] {
            for (memory, seconds, ops) in [(12, 9.0, 2950), (16, 6.2, 2690), (32, 0.2, 0)] {
                let run = format!("4x4m.mem{memory}m{suffix}");
                figures.push(figure(
                    &format!("sheeptest.elapsed_s.{run}"),
                    &format!("{:.2}", seconds * scale),
                    "s",
                ));
                figures.push(figure(
                    &format!("sheeptest.disk_ops.{run}"),
                    &ops.to_string(),
                    "operations",
                ));
                figures.push(figure(
                    &format!("sheeptest.instructions.{run}"),
                    "1000",
                    "instructions",
                ));
            }
        }
        figures
    }

    #[test]
    fn names_are_read_into_system_measure_and_x() {
        assert_eq!(
            read("sheeptest", "sheeptest.disk_ops.4x4m.mem16m.off"),
            Reading {
                system: Some(System::OursSwapperOff),
                measure: "disk_ops".into(),
                workload: Some("4x4m".into()),
                memory_mib: Some(16),
                users: None,
            }
        );
        let linux = read("nonaim", "nonaim.jpm.128u.linux");
        assert_eq!(
            (linux.system, linux.measure.as_str(), linux.users),
            (Some(System::Linux), "jpm", Some(128))
        );
        let peak = read("nonaim", "nonaim.peak_jpm");
        assert_eq!((peak.system, peak.users), (Some(System::Ours), None));
        let ipc = read("ipc", "ipc.null_rpc_round_trip");
        assert_eq!((ipc.system, ipc.memory_mib, ipc.users), (None, None, None));
        assert_eq!(
            read("sheeptest", "sheeptest.elapsed_s.4x4m").memory_mib,
            None
        );
    }

    #[test]
    fn the_csv_has_a_row_per_figure_with_its_system_and_x() {
        let figures = vec![
            figure("sheeptest.elapsed_s.4x4m.mem16m", "6.25", "s"),
            figure("sheeptest.disk_ops.4x4m.mem16m.linux", "19", "operations"),
            figure("sheeptest.swap_outs.4x4m.mem12m.off", "0", "tasks"),
        ];
        assert_eq!(
            csv("sheeptest", &figures),
            "metric,value,unit,system,memory_mib,users\n\
             sheeptest.elapsed_s.4x4m.mem16m,6.25,s,swapper on,16,\n\
             sheeptest.disk_ops.4x4m.mem16m.linux,19,operations,Linux,16,\n\
             sheeptest.swap_outs.4x4m.mem12m.off,0,tasks,swapper off,12,\n"
        );
        let nonaim = csv(
            "nonaim",
            &[figure("nonaim.jpm.8u.off", "1234.5", "jobs/min")],
        );
        assert!(
            nonaim.ends_with("nonaim.jpm.8u.off,1234.5,jobs/min,swapper off,,8\n"),
            "{nonaim}"
        );
        let ipc = csv(
            "ipc",
            &[figure("ipc.null_rpc_round_trip", "596", "instructions")],
        );
        assert!(
            ipc.ends_with("\nipc.null_rpc_round_trip,596,instructions,,,\n"),
            "{ipc}"
        );
    }

    #[test]
    fn cells_are_quoted_when_they_must_be() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn sheeptest_plots_time_and_disk_operations_per_system_against_memory() {
        let drawn = charts("sheeptest", &sheeptest_figures(), false);
        assert_eq!(drawn.len(), 2);
        assert_eq!(
            drawn[0].title,
            "sheeptest 4x4m: elapsed time against memory"
        );
        assert_eq!(drawn[0].x_label, MEMORY_AXIS);
        assert!(!drawn[0].log_x);
        let names: Vec<&str> = drawn[0].series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["swapper on", "swapper off", "Linux"]);
        assert_eq!(
            drawn[0].series[0].points,
            [(12.0, 9.0), (16.0, 6.2), (32.0, 0.2)]
        );
        assert_eq!(drawn[1].series[2].points[0], (12.0, 2950.0));
        let icount = charts("sheeptest", &sheeptest_figures(), true);
        assert_eq!(icount[0].y_label, "instructions");
        assert!(crate::plot::svg(&icount).is_ok());
    }

    #[test]
    fn nonaim_plots_jobs_per_minute_against_users_on_a_log_axis() {
        let mut figures = Vec::new();
        for (suffix, factor) in [("", 1.0), (".off", 0.8), (".linux", 1.2)] {
            for users in [1, 2, 4, 8, 16, 32, 64, 128] {
                let jpm =
                    1000.0 * factor * f64::from(users).min(8.0) / (1.0 + f64::from(users) / 64.0);
                figures.push(figure(
                    &format!("nonaim.jpm.{users}u{suffix}"),
                    &format!("{jpm:.1}"),
                    "jobs/min",
                ));
                figures.push(figure(
                    &format!("nonaim.failed.{users}u{suffix}"),
                    "0",
                    "jobs",
                ));
            }
            figures.push(figure(
                &format!("nonaim.peak_jpm{suffix}"),
                "8000",
                "jobs/min",
            ));
            figures.push(figure(
                &format!("nonaim.max_users_without_failure{suffix}"),
                "128",
                "users",
            ));
        }
        let drawn = charts("nonaim", &figures, false);
        assert_eq!(drawn.len(), 1);
        let chart = &drawn[0];
        assert!(chart.log_x);
        assert_eq!(chart.x_label, "simulated users");
        assert_eq!(chart.series.len(), 3);
        assert!(chart.series.iter().all(|s| s.points.len() == 8));
        assert_eq!(chart.series[2].name, "Linux");
        assert_eq!(chart.series[2].points[0], (1.0, 1181.5));
        let svg = crate::plot::svg(&drawn).unwrap();
        assert!(svg.contains("simulated users"));
    }

    #[test]
    fn several_sheeptest_runs_get_a_series_each_and_other_suites_none() {
        let figures = vec![
            figure("sheeptest.elapsed_s.4x4m.mem16m", "6", "s"),
            figure("sheeptest.elapsed_s.4x64m.mem256m", "70", "s"),
        ];
        let drawn = charts("sheeptest", &figures, false);
        assert_eq!(drawn.len(), 1, "no disk operations, no chart of them");
        let names: Vec<&str> = drawn[0].series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["swapper on (4x4m)", "swapper on (4x64m)"]);
        assert!(charts("ipc", &figures, false).is_empty());
        assert!(charts("sheeptest", &[], false).is_empty());
    }
}

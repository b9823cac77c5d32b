//! Wall-time figures timed by the host: the guest prints `stopwatch <group>.<name> start`
//! and later `stopwatch <group>.<name> stop`, and the figure `<group>.<name>` is the host's
//! time between seeing the two lines, in seconds to the millisecond.
//!
//! The host sees a line when it reaches the serial log, which it reads every
//! [`POLL`](super::POLL): each end is late by at most that plus the serial path, the same at
//! both ends. Under `-icount` guest time is not wall time and the guest's own clock cannot
//! time the disk; without it, this is what the scan costs a person waiting for it.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Number;

use super::Measurement;

/// The unit of stopwatch figures.
pub const UNIT: &str = "seconds";

/// Which end of a timed span a line marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Start,
    Stop,
}

/// Reads one (cleaned) serial line: `None` if it is no `stopwatch ` line, else its metric and
/// edge or why the line is malformed.
pub fn parse_line(line: &str) -> Option<Result<(String, Edge), String>> {
    let rest = line.trim_end().strip_prefix("stopwatch ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let [metric, edge] = fields[..] else {
        return Some(Err(format!(
            "`{line}`: expected `stopwatch <metric> start` or `... stop`"
        )));
    };
    if !super::is_metric(metric) {
        return Some(Err(format!(
            "`{line}`: metric {metric:?} is not `<group>.<name>` in lower case, digits and `_`"
        )));
    }
    let edge = match edge {
        "start" => Edge::Start,
        "stop" => Edge::Stop,
        _ => {
            return Some(Err(format!(
                "`{line}`: {edge:?} is neither `start` nor `stop`"
            )))
        }
    };
    Some(Ok((metric.to_string(), edge)))
}

/// The figures timed by `lines` (each with when the host saw it, from any fixed instant), in
/// the order their spans stopped, and the complaints: malformed lines, a metric started
/// twice or timed twice, a stop with no start, a start never stopped.
pub fn figures(lines: &[(Duration, String)]) -> (Vec<Measurement>, Vec<String>) {
    let mut started: BTreeMap<String, Duration> = BTreeMap::new();
    let mut measurements: Vec<Measurement> = Vec::new();
    let mut problems = Vec::new();
    for (at, line) in lines {
        let (metric, edge) = match parse_line(line) {
            None => continue,
            Some(Err(why)) => {
                problems.push(why);
                continue;
            }
            Some(Ok(parsed)) => parsed,
        };
        match edge {
            Edge::Start if started.contains_key(&metric) => {
                problems.push(format!("stopwatch {metric} started twice"));
            }
            Edge::Start if measurements.iter().any(|m| m.metric == metric) => {
                problems.push(format!("stopwatch {metric} timed twice"));
            }
            Edge::Start => {
                started.insert(metric, *at);
            }
            Edge::Stop => match started.remove(&metric) {
                Some(start) => measurements.push(Measurement {
                    value: seconds(at.saturating_sub(start)),
                    metric,
                    unit: UNIT.to_string(),
                }),
                None => problems.push(format!("stopwatch {metric} stopped but never started")),
            },
        }
    }
    for metric in started.into_keys() {
        problems.push(format!("stopwatch {metric} started but never stopped"));
    }
    (measurements, problems)
}

/// `elapsed` in seconds to the millisecond, as a JSON number.
fn seconds(elapsed: Duration) -> Number {
    let text = format!("{}.{:03}", elapsed.as_secs(), elapsed.subsec_millis());
    Number::from_str(&text).expect("digits, a point and digits make a number")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, line: &str) -> (Duration, String) {
        (Duration::from_millis(ms), line.to_string())
    }

    #[test]
    fn lines_parse() {
        assert_eq!(
            parse_line("stopwatch pager.scan.cluster4 start\r"),
            Some(Ok(("pager.scan.cluster4".to_string(), Edge::Start)))
        );
        assert_eq!(
            parse_line("stopwatch a.b stop"),
            Some(Ok(("a.b".to_string(), Edge::Stop)))
        );
        assert_eq!(parse_line("bench a.b 1 x"), None);
        assert_eq!(parse_line("stopwatches a.b start"), None);
        for bad in [
            "stopwatch a.b",
            "stopwatch a.b go",
            "stopwatch ab start",
            "stopwatch A.b start",
            "stopwatch a.b start now",
        ] {
            assert!(matches!(parse_line(bad), Some(Err(_))), "{bad:?}");
        }
    }

    #[test]
    fn spans_become_seconds_in_the_order_they_stop() {
        let lines = [
            at(1_000, "stopwatch a.outer start"),
            at(1_500, "bench_x: a remark"),
            at(2_000, "stopwatch a.inner start"),
            at(2_250, "stopwatch a.inner stop"),
            at(13_345, "stopwatch a.outer stop"),
        ];
        let (figures, problems) = figures(&lines);
        assert!(problems.is_empty(), "{problems:?}");
        let shown: Vec<(String, String, String)> = figures
            .into_iter()
            .map(|m| (m.metric, m.value.to_string(), m.unit))
            .collect();
        assert_eq!(
            shown,
            [
                ("a.inner".into(), "0.25".into(), "seconds".into()),
                ("a.outer".into(), "12.345".into(), "seconds".into()),
            ]
        );
    }

    #[test]
    fn unpaired_and_repeated_spans_are_problems() {
        let lines = [
            at(0, "stopwatch a.never_stopped start"),
            at(1, "stopwatch a.never_started stop"),
            at(2, "stopwatch a.twice start"),
            at(3, "stopwatch a.twice start"),
            at(4, "stopwatch a.twice stop"),
            at(5, "stopwatch a.twice start"),
            at(6, "stopwatch a.twice stop"),
            at(7, "stopwatch a.bad edge"),
        ];
        let (figures, problems) = figures(&lines);
        assert_eq!(figures.len(), 1, "{figures:?}");
        let all = problems.join("\n");
        for expected in [
            "a.never_stopped started but never stopped",
            "a.never_started stopped but never started",
            "a.twice started twice",
            "a.twice timed twice",
            "neither `start` nor `stop`",
        ] {
            assert!(all.contains(expected), "{expected:?} not in:\n{all}");
        }
    }
}

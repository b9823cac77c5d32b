//! Line charts of benchmark figures as SVG (with `plotters`' SVG backend: text goes out as
//! `<text>` elements sized by plotters' built-in metrics, so no fonts are needed on the
//! host): one or more charts stacked in one picture, each with its series as lines with a
//! marker at every point, a legend, axis descriptions, and a linear or logarithmic x axis.

use std::ops::Range;

use anyhow::{anyhow, bail, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One line: a name for the legend and its points (x, y), drawn in x order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One chart of a picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// A logarithmic x axis (every x must then be positive).
    pub log_x: bool,
    pub series: Vec<Series>,
}

/// Width of a picture and height of each chart in it, in pixels.
pub const WIDTH: u32 = 900;
pub const CHART_HEIGHT: u32 = 420;

/// Series colours in order (the first series is the first colour): blue, red, green,
/// purple, orange, brown.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

/// The SVG text of `charts` stacked top to bottom; an error if there is nothing to draw (no
/// charts, a chart without series or a series without points) or a log axis has an x that
/// is not positive.
pub fn svg(charts: &[Chart]) -> Result<String> {
    if charts.is_empty() {
        bail!("no charts to plot");
    }
    for chart in charts {
        check(chart)?;
    }
    let mut text = String::new();
    {
        let height = CHART_HEIGHT * charts.len() as u32;
        let root = SVGBackend::with_string(&mut text, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let areas = root.split_evenly((charts.len(), 1));
        for (area, chart) in areas.iter().zip(charts) {
            let (x, y) = ranges(chart);
            if chart.log_x {
                draw(area, chart, x.log_scale(), y)?;
            } else {
                draw(area, chart, x, y)?;
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(text)
}

fn check(chart: &Chart) -> Result<()> {
    if chart.series.is_empty() {
        bail!("chart {:?} has no data to plot", chart.title);
    }
    for series in &chart.series {
        if series.points.is_empty() {
            bail!(
                "chart {:?}: series {:?} has no points",
                chart.title,
                series.name
            );
        }
        for &(x, y) in &series.points {
            if !x.is_finite() || !y.is_finite() {
                bail!("chart {:?}: point ({x}, {y}) is not finite", chart.title);
            }
            if chart.log_x && x <= 0.0 {
                bail!(
                    "chart {:?}: x = {x} cannot go on a logarithmic axis",
                    chart.title
                );
            }
        }
    }
    Ok(())
}

/// The axes' ranges: every point inside, y from 0 with a tenth of headroom, a single x
/// widened so the axis has a length.
fn ranges(chart: &Chart) -> (Range<f64>, Range<f64>) {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in points {
        (x_min, x_max, y_max) = (x_min.min(x), x_max.max(x), y_max.max(y));
    }
    if x_min == x_max {
        (x_min, x_max) = if chart.log_x {
            (x_min / 2.0, x_max * 2.0)
        } else {
            (x_min - 1.0, x_max + 1.0)
        };
    }
    let y_top = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    (x_min..x_max, 0.0..y_top)
}

fn draw<X>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &Chart,
    x: X,
    y: Range<f64>,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut context = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x, y)
        .map_err(plot_error)?;
    context
        .configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .x_label_formatter(&|value| number(*value))
        .y_label_formatter(&|value| number(*value))
        .draw()
        .map_err(plot_error)?;
    for (index, series) in chart.series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let mut points = series.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        context
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(plot_error)?
            .label(series.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        context
            .draw_series(
                points
                    .into_iter()
                    .map(|point| Circle::new(point, 4, colour.filled())),
            )
            .map_err(plot_error)?;
    }
    context
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// A tick's text: short enough for the axis. From ten thousand up with a k, M or G suffix
/// (`250M`, `1.5G`); whole numbers without a fraction, others with at most three decimals.
pub fn number(value: f64) -> String {
    let trimmed = |text: String| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    };
    for (from, scale, suffix) in [(1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")] {
        if value.abs() >= from {
            return format!("{}{suffix}", trimmed(format!("{:.2}", value / scale)));
        }
    }
    if value == value.trunc() {
        return format!("{}", value as i64);
    }
    trimmed(format!("{value:.3}"))
}

fn plot_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow!("drawing the plot: {error:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, points: &[(f64, f64)]) -> Series {
        Series {
            name: name.to_string(),
            points: points.to_vec(),
        }
    }

    fn chart(log_x: bool, series: Vec<Series>) -> Chart {
        Chart {
            title: "sheeptest 4x4m: elapsed time".into(),
            x_label: "memory (MiB)".into(),
            y_label: "elapsed (s)".into(),
            log_x,
            series,
        }
    }

    /// Lines drawn in `colour` (a `<polyline>` with that stroke): a series' line and its
    /// legend sample.
    fn lines_in(svg: &str, colour: RGBColor) -> usize {
        let stroke = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            colour.0, colour.1, colour.2
        );
        svg.split("<polyline")
            .skip(1)
            .filter(|element| element.split('>').next().unwrap().contains(&stroke))
            .count()
    }

    /// The text of every `<text>` element.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|element| {
                let body = element.split_once('>').unwrap().1;
                body.split("</text>").next().unwrap().trim().to_string()
            })
            .collect()
    }

    #[test]
    fn every_series_is_a_line_with_its_legend_and_the_axes_are_described() {
        let svg = svg(&[chart(
            false,
            vec![
                series("swapper on", &[(12.0, 9.0), (16.0, 6.2), (32.0, 0.2)]),
                series("swapper off", &[(16.0, 5.3), (12.0, 6.0), (32.0, 0.1)]),
                series("Linux", &[(12.0, 1.0), (16.0, 0.3), (32.0, 0.2)]),
            ],
        )])
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        let texts = texts(&svg);
        for (index, name) in ["swapper on", "swapper off", "Linux"].iter().enumerate() {
            assert!(texts.iter().any(|t| t == name), "legend {name}: {texts:?}");
            assert_eq!(
                lines_in(&svg, COLOURS[index]),
                2,
                "line and legend of {name}"
            );
        }
        for label in [
            "memory (MiB)",
            "elapsed (s)",
            "sheeptest 4x4m: elapsed time",
        ] {
            assert!(texts.iter().any(|t| t == label), "{label}: {texts:?}");
        }
        assert_eq!(svg.matches("<circle").count(), 9, "a marker per point");
    }

    #[test]
    fn a_log_axis_takes_decades_and_charts_stack() {
        let jobs = chart(
            true,
            vec![series(
                "swapper on",
                &[
                    (1.0, 300.0),
                    (10.0, 2000.0),
                    (100.0, 1500.0),
                    (1000.0, 400.0),
                ],
            )],
        );
        let other = chart(false, vec![series("Linux", &[(16.0, 2.0)])]);
        let svg = svg(&[jobs, other]).unwrap();
        assert!(
            svg.contains(&format!("height=\"{}\"", 2 * CHART_HEIGHT)),
            "two charts high"
        );
        let texts = texts(&svg);
        for tick in ["1", "10", "100", "1000"] {
            assert!(
                texts.iter().any(|t| t == tick),
                "log tick {tick}: {texts:?}"
            );
        }
    }

    #[test]
    fn tick_numbers_are_short() {
        assert_eq!(number(10.0), "10");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.123456), "0.123");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(9999.0), "9999");
        assert_eq!(number(25_000.0), "25k");
        assert_eq!(number(300_000_000.0), "300M");
        assert_eq!(number(2_877_300_032.0), "2.88G");
        assert_eq!(number(1_500_000_000.0), "1.5G");
    }

    #[test]
    fn nothing_to_plot_is_a_clear_error() {
        let error = svg(&[]).unwrap_err().to_string();
        assert!(error.contains("no charts"), "{error}");
        let error = svg(&[chart(false, vec![])]).unwrap_err().to_string();
        assert!(error.contains("has no data to plot"), "{error}");
        let error = svg(&[chart(false, vec![series("Linux", &[])])])
            .unwrap_err()
            .to_string();
        assert!(error.contains("series \"Linux\" has no points"), "{error}");
        let error = svg(&[chart(true, vec![series("x", &[(0.0, 1.0)])])])
            .unwrap_err()
            .to_string();
        assert!(error.contains("logarithmic"), "{error}");
        let error = svg(&[chart(false, vec![series("x", &[(f64::NAN, 1.0)])])])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not finite"), "{error}");
    }
}

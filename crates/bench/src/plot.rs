//! The growth curves as SVG plots (docs/perf-bootstrap.svg,
//! docs/perf-tasks.svg): medians joined by lines, each point with a bar
//! from its 10th to its 90th percentile, on log-log axes.
//!
//! Text goes into the SVG as `<text>` elements in a generic font family,
//! laid out by plotters' own estimate of glyph widths: no font file is read
//! and nothing links fontconfig.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, ensure};
use plotters::coord::combinators::{BindKeyPoints, IntoLogRange};
use plotters::prelude::*;

use crate::stats::Samples;
use crate::suite::{Base, Report};
use crate::tasks::TASK_BYTES;

/// The file names of the two plots.
pub const BOOTSTRAP_SVG: &str = "perf-bootstrap.svg";
/// See [`BOOTSTRAP_SVG`].
pub const TASKS_SVG: &str = "perf-tasks.svg";

/// Writes both growth curves of `report` into `dir` and returns their paths.
pub fn write_curves(dir: &Path, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
    let ms = 1e3;
    let curve = report.bootstrap.iter().filter(|p| p.base == Base::Minimal);
    let real = report.bootstrap.iter().filter(|p| p.base == Base::Real);
    let bootstrap = Plot {
        title: "Cold bootstrap against runtime SO size (simulator)",
        caption: &report.machine,
        x_label: "runtime SO size",
        y_label: "ms",
        x_format: format_size,
        legend: SeriesLabelPosition::UpperLeft,
        series: vec![
            Series {
                label: "cold bootstrap: build() of a runner, minimal runtime SO padded",
                points: curve
                    .clone()
                    .map(|p| (p.size as f64, &p.cold, ms))
                    .collect(),
            },
            Series {
                label: "floor: FNV-1a + copy + write + chmod + rename + dlopen",
                points: curve.map(|p| (p.size as f64, &p.floor, ms)).collect(),
            },
            Series {
                label: "cold bootstrap, the real runtime SO padded",
                points: real.map(|p| (p.size as f64, &p.cold, ms)).collect(),
            },
        ],
    };
    let batch_label = format!("batch of n fill tasks ({TASK_BYTES} B each), per task");
    let tasks = Plot {
        title: "Cost per task against tasks in one exec (simulator)",
        caption: &report.machine,
        x_label: "tasks in the batch (n)",
        y_label: "µs per task",
        x_format: format_count,
        legend: SeriesLabelPosition::LowerLeft,
        series: vec![
            Series {
                label: &batch_label,
                points: report
                    .tasks
                    .iter()
                    .map(|p| (p.tasks as f64, &p.batch, 1e6 / p.tasks as f64))
                    .collect(),
            },
            Series {
                label: "floor: empty-kernel launch→sync round trip / n",
                points: report
                    .tasks
                    .iter()
                    .map(|p| (p.tasks as f64, &p.round_trip, 1e6 / p.tasks as f64))
                    .collect(),
            },
        ],
    };
    let mut written = Vec::new();
    for (name, plot) in [(BOOTSTRAP_SVG, &bootstrap), (TASKS_SVG, &tasks)] {
        let path = dir.join(name);
        write_svg(&path, plot)?;
        written.push(path);
    }
    Ok(written)
}

/// One line of a plot: what it is and its points.
pub struct Series<'a> {
    /// The legend.
    pub label: &'a str,
    /// `(x, samples, scale)` in increasing `x`: the samples of the point
    /// at `x`, and what a sample in seconds is multiplied by to give `y`
    /// (e.g. `1e6 / n` for µs per task of a batch of n).
    pub points: Vec<(f64, &'a Samples, f64)>,
}

/// A whole plot.
pub struct Plot<'a> {
    /// Above the chart.
    pub title: &'a str,
    /// Under the title: the run it comes from.
    pub caption: &'a str,
    /// The x axis.
    pub x_label: &'a str,
    /// The y axis.
    pub y_label: &'a str,
    /// How an x value is written on the axis.
    pub x_format: fn(f64) -> String,
    /// The lines.
    pub series: Vec<Series<'a>>,
    /// Where the legend goes: where the lines leave room.
    pub legend: SeriesLabelPosition,
}

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;
const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

fn value(d: Duration, scale: f64) -> f64 {
    d.as_secs_f64() * scale
}

/// Draws `plot` into the SVG file `path`.
pub fn write_svg(path: &Path, plot: &Plot<'_>) -> anyhow::Result<()> {
    ensure!(
        plot.series.iter().all(|s| !s.points.is_empty()),
        "{}: a series without points",
        plot.title
    );
    let xs = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = plot.series.iter().flat_map(|s| {
        s.points.iter().flat_map(|&(_, samples, scale)| {
            [
                value(samples.quantile(0.1), scale),
                value(samples.quantile(0.9), scale),
            ]
        })
    });
    let (x_min, x_max) = bounds(xs);
    let (y_min, y_max) = bounds(ys);
    ensure!(
        x_min > 0.0 && y_min > 0.0,
        "{}: a log axis needs positive values",
        plot.title
    );
    // Room of a factor of two on either side of the data.
    let x_range = x_min / 2.0..x_max * 2.0;
    let y_range = y_min / 2.0..y_max * 2.0;
    // The x axis is labelled at the measured points, not at powers of ten.
    let mut x_ticks: Vec<f64> = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    x_ticks.sort_by(f64::total_cmp);
    x_ticks.dedup();
    draw(path, plot, x_range, x_ticks, y_range).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn draw(
    path: &Path,
    plot: &Plot<'_>,
    x_range: std::ops::Range<f64>,
    x_ticks: Vec<f64>,
    y_range: std::ops::Range<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(56);
    top.draw(&Text::new(
        plot.title.to_owned(),
        (16, 8),
        ("sans-serif", 20).into_font(),
    ))?;
    top.draw(&Text::new(
        plot.caption.to_owned(),
        (16, 34),
        ("sans-serif", 13)
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55)),
    ))?;
    let mut chart = ChartBuilder::on(&body)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            x_range.log_scale().with_key_points(x_ticks),
            y_range.log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label)
        .y_desc(plot.y_label)
        .x_label_formatter(&|x| (plot.x_format)(*x))
        .y_label_formatter(&|y| format_number(*y))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    for (series, colour) in plot.series.iter().zip(COLOURS.iter().cycle()) {
        let colour = *colour;
        let medians = series
            .points
            .iter()
            .map(|&(x, s, scale)| (x, value(s.median(), scale)));
        chart
            .draw_series(LineSeries::new(medians.clone(), colour.stroke_width(2)))?
            .label(series.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(medians.map(|p| Circle::new(p, 3, colour.filled())))?;
        chart.draw_series(series.points.iter().map(|&(x, s, scale)| {
            ErrorBar::new_vertical(
                x,
                value(s.quantile(0.1), scale),
                value(s.median(), scale),
                value(s.quantile(0.9), scale),
                colour.stroke_width(1),
                8,
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(plot.legend.clone())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}

/// A plain number with two significant digits below 100 and none after
/// the point above: `0.0025`, `0.25`, `2.3`, `12`, `4,000`.
pub fn format_number(v: f64) -> String {
    if v >= 100.0 {
        crate::report::count(v.round() as i64)
    } else if v > 0.0 {
        // Digits after the point for two significant ones.
        let decimals = (1 - v.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        "0".into()
    }
}

/// A byte count in KiB or MiB: `64 KiB`, `1 MiB`, `16 MiB`.
pub fn format_size(v: f64) -> String {
    let mib = v / f64::from(1 << 20);
    if mib >= 1.0 {
        format!("{} MiB", format_number(mib).trim_end_matches(".0"))
    } else {
        format!("{} KiB", format_number(v / 1024.0).trim_end_matches(".0"))
    }
}

/// A count: `1`, `1,000`, `100,000`.
pub fn format_count(v: f64) -> String {
    crate::report::count(v.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_with_both_series_and_the_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.svg");
        let fast = Samples::new((1..=10).map(Duration::from_micros).collect());
        let slow = Samples::new((1..=10).map(|i| Duration::from_micros(10 * i)).collect());
        let plot = Plot {
            title: "a title",
            caption: "a caption",
            x_label: "tasks",
            y_label: "µs per task",
            x_format: format_count,
            legend: SeriesLabelPosition::UpperRight,
            series: vec![
                Series {
                    label: "fast one",
                    points: vec![(1.0, &fast, 1e6), (10.0, &fast, 1e5), (100.0, &fast, 1e4)],
                },
                Series {
                    label: "slow one",
                    points: vec![(1.0, &slow, 1e6), (100.0, &slow, 1e4)],
                },
            ],
        };
        write_svg(&path, &plot).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for text in ["a title", "a caption", "fast one", "slow one", "tasks"] {
            assert!(svg.contains(text), "no {text:?} in the SVG");
        }
        // Three points on one line and two on the other (the error bars
        // draw circles of their own, of another radius).
        assert_eq!(svg.matches(r#"r="3""#).count(), 5, "{svg}");
    }

    #[test]
    fn an_empty_series_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plot = Plot {
            title: "t",
            caption: "c",
            x_label: "x",
            y_label: "y",
            x_format: format_count,
            legend: SeriesLabelPosition::UpperRight,
            series: vec![Series {
                label: "none",
                points: vec![],
            }],
        };
        let err = write_svg(&dir.path().join("p.svg"), &plot).unwrap_err();
        assert!(err.to_string().contains("without points"), "{err}");
        assert!(!dir.path().join("p.svg").exists());
    }

    #[test]
    fn axis_numbers() {
        assert_eq!(format_number(4000.0), "4,000");
        assert_eq!(format_number(123.4), "123");
        assert_eq!(format_number(12.3), "12");
        assert_eq!(format_number(2.34), "2.3");
        assert_eq!(format_number(1.0), "1.0");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(0.0025), "0.0025");
        assert_eq!(format_count(1.0), "1");
        assert_eq!(format_count(100_000.0), "100,000");
        assert_eq!(format_size(65536.0), "64 KiB");
        assert_eq!(format_size(f64::from(1 << 20)), "1 MiB");
        assert_eq!(format_size(f64::from(16 << 20)), "16 MiB");
    }
}

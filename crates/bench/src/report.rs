//! The results table: one row per metric, with its floor, the ratio and
//! the goal, printed as Markdown so it can go into `docs/performance.md`
//! as it is.

use std::fmt::{self, Write as _};
use std::time::Duration;

/// Whether a row meets its goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The goal holds.
    Met,
    /// The goal does not hold.
    Missed,
    /// Not measured in this run (the artifact is not built).
    NotBuilt,
    /// A row with no goal: a point of a curve, or a number too small for
    /// a ratio to mean anything.
    NoGoal,
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub fn of(ok: bool) -> Self {
        if ok {
            Self::Met
        } else {
            Self::Missed
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Met => "met",
            Self::Missed => "MISSED",
            Self::NotBuilt => "not built",
            Self::NoGoal => "—",
        })
    }
}

/// One metric.
#[derive(Clone, Debug)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// The measured value.
    pub measured: String,
    /// What it is compared with, measured in the same run where there is
    /// such a floor.
    pub floor: String,
    /// `measured / floor`, or empty.
    pub ratio: String,
    /// The goal.
    pub goal: String,
    /// Met or not.
    pub verdict: Verdict,
}

/// The table of `rows` in Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let header = [
        "metric",
        "measured",
        "floor / reference",
        "ratio",
        "goal",
        "verdict",
    ];
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| [&r.metric[..], &r.measured, &r.floor, &r.ratio, &r.goal, ""])
        .collect();
    // A verdict stands out in bold; a row without a goal has none.
    let verdicts: Vec<String> = rows
        .iter()
        .map(|r| match r.verdict {
            Verdict::NoGoal => r.verdict.to_string(),
            v => format!("**{v}**"),
        })
        .collect();
    let mut widths = header.map(str::len);
    for (row, verdict) in cells.iter().zip(&verdicts) {
        for (i, cell) in row.iter().enumerate().take(5) {
            widths[i] = widths[i].max(cell.chars().count());
        }
        widths[5] = widths[5].max(verdict.chars().count());
    }
    let mut line = |cells: [&str; 6]| {
        out.push('|');
        for (cell, width) in cells.iter().zip(widths) {
            let pad = width - cell.chars().count();
            let _ = write!(out, " {cell}{} |", " ".repeat(pad));
        }
        out.push('\n');
    };
    line(header);
    let rules = widths.map(|w| "-".repeat(w));
    line(rules.each_ref().map(String::as_str));
    for (row, verdict) in cells.iter().zip(&verdicts) {
        let mut row = *row;
        row[5] = verdict;
        line(row);
    }
    out
}

/// A duration with a unit that keeps three significant digits.
pub fn duration(d: Duration) -> String {
    seconds(d.as_secs_f64())
}

/// [`duration`] of a time in seconds, which may be a fraction of a
/// nanosecond (a cost shared by many).
pub fn seconds(s: f64) -> String {
    let ns = s * 1e9;
    if ns < 1.0 {
        format!("{ns:.3} ns")
    } else if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A byte count with thousands separators, e.g. `67,792 B`.
pub fn bytes(n: i64) -> String {
    format!("{} B", count(n))
}

/// A number with thousands separators, e.g. `100,000`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{grouped}")
}

/// `a / b` as a multiple, e.g. `1.42×`.
pub fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_grouping() {
        assert_eq!(duration(Duration::from_nanos(42)), "42.0 ns");
        assert_eq!(duration(Duration::from_nanos(13_300)), "13.3 µs");
        assert_eq!(duration(Duration::from_micros(4_210)), "4.21 ms");
        assert_eq!(seconds(1.52e-10), "0.152 ns");
        assert_eq!(bytes(67_792), "67,792 B");
        assert_eq!(bytes(-1_048_576), "-1,048,576 B");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(ratio(3.0, 2.0), "1.50×");
    }

    #[test]
    fn the_table_aligns_every_column() {
        let row = Row {
            metric: "m".into(),
            measured: "1 µs".into(),
            floor: "f".into(),
            ratio: "1.00×".into(),
            goal: "≤ 1.5×".into(),
            verdict: Verdict::Missed,
        };
        let text = table(&[row]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
        assert!(lines[2].contains("**MISSED**"));
    }

    #[test]
    fn a_row_without_a_goal_has_a_dash_and_stays_aligned() {
        let row = |verdict| Row {
            metric: "m".into(),
            measured: "1 ns".into(),
            floor: "f".into(),
            ratio: String::new(),
            goal: "none".into(),
            verdict,
        };
        let text = table(&[row(Verdict::NoGoal), row(Verdict::Met)]);
        let lines: Vec<&str> = text.lines().collect();
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
        assert!(lines[2].contains("| —       |"), "{text}");
        assert!(lines[3].contains("**met**"), "{text}");
    }
}

//! Rows 17's and 19's scaling curves (issue 23) as SVG, drawn from the bench's own JSON: after a
//! run into `BENCH_DIR/plots/`, and with `bench/run --plot FILE.json[,FILE.json...]` into
//! `docs/perf/` from saved figures (so the checked-in pictures come from the checked-in numbers).
//!
//! Each JSON object whose key is `scale_<measure>_<messages>` (row 17) or
//! `idlecurve_<measure>_<connections>` (row 19) is a point; several files are merged (a `--quick`
//! or full run, and a `--huge` run for the 1,000,000 point), a later file's value replacing an
//! earlier one's for the same key. One SVG per operation, one panel per measure (cold or first,
//! and warm; or per connection and total), one line per server; both axes logarithmic. A
//! server's null (not measured) leaves its line short.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::client::Result;

/// One picture: file name, title, what the x axis counts, its panels (measure key, caption),
/// and where the legend goes (clear of the lines).
type Chart = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    SeriesLabelPosition,
);

/// Row 17's x axis.
const MESSAGES: &str = "messages in the mailbox";

/// The pictures.
const CHARTS: &[Chart] = &[
    (
        "scaling-select.svg",
        "SELECT",
        MESSAGES,
        &[
            ("select_cold", "cold: first SELECT of the mailbox"),
            ("select_warm", "warm: median of the next SELECTs"),
        ],
        SeriesLabelPosition::UpperLeft,
    ),
    (
        "scaling-fetch.svg",
        "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        MESSAGES,
        &[("fetch_first", "first"), ("fetch_warm", "warm")],
        SeriesLabelPosition::UpperLeft,
    ),
    (
        "scaling-search-unseen.svg",
        "SEARCH UNSEEN",
        MESSAGES,
        &[
            ("search_unseen_first", "first"),
            ("search_unseen_warm", "warm"),
        ],
        SeriesLabelPosition::UpperLeft,
    ),
    (
        "scaling-search-subject.svg",
        "SEARCH SUBJECT \"Budget draft\"",
        MESSAGES,
        &[
            ("search_subject_first", "first"),
            ("search_subject_warm", "warm"),
        ],
        SeriesLabelPosition::UpperLeft,
    ),
    (
        "scaling-memory.svg",
        "Server memory (PSS of its process tree)",
        MESSAGES,
        &[
            ("mem_held", "one session has the mailbox selected"),
            ("mem_after", "after that session logged out"),
        ],
        SeriesLabelPosition::UpperLeft,
    ),
    (
        "scaling-idle.svg",
        "Idle connections (INBOX selected, in IDLE): server memory (PSS of its process tree)",
        "IDLE connections",
        &[
            (
                "idlecurve_kib_per_conn",
                "per connection (growth over the baseline / N)",
            ),
            ("idlecurve_total_mib", "total"),
        ],
        // Dovecot's per-connection line runs along the top.
        SeriesLabelPosition::MiddleRight,
    ),
];

/// The servers' JSON fields, their names in the legend and their colours.
const SERVERS: &[(&str, &str, RGBColor)] = &[
    ("mailcove", "mailcove", RGBColor(0x1f, 0x77, 0xb4)),
    ("dovecot", "Dovecot", RGBColor(0xd6, 0x27, 0x28)),
    ("mailcove_pg", "mailcove-pg", RGBColor(0x2c, 0xa0, 0x2c)),
];

/// measure -> server field -> messages -> value (and the measure's unit).
#[derive(Default)]
struct Points {
    values: BTreeMap<String, BTreeMap<&'static str, BTreeMap<u64, f64>>>,
    units: BTreeMap<String, String>,
}

/// `scale_select_cold_1000` -> (`select_cold`, 1000); `idlecurve_total_mib_50000` ->
/// (`idlecurve_total_mib`, 50000).
fn split_key(key: &str) -> Option<(&str, u64)> {
    let rest = key
        .strip_prefix("scale_")
        .or_else(|| key.starts_with("idlecurve_").then_some(key))?;
    let (measure, n) = rest.rsplit_once('_')?;
    Some((measure, n.parse().ok()?))
}

fn points(jsons: &[String]) -> Result<Points> {
    let mut p = Points::default();
    for text in jsons {
        let rows: serde_json::Value = serde_json::from_str(text)?;
        for row in rows
            .as_array()
            .ok_or("the bench's JSON is an array of rows")?
        {
            let Some((measure, n)) = row["key"].as_str().and_then(split_key) else {
                continue;
            };
            if let Some(unit) = row["unit"].as_str() {
                p.units.insert(measure.to_string(), unit.to_string());
            }
            for (field, ..) in SERVERS {
                if let Some(v) = row[*field].as_f64().filter(|v| *v > 0.0) {
                    p.values
                        .entry(measure.to_string())
                        .or_default()
                        .entry(field)
                        .or_default()
                        .insert(n, v);
                }
            }
        }
    }
    Ok(p)
}

/// 1000 -> "1k", 1000000 -> "1M".
fn count_label(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{}k", x / 1e3)
    } else {
        format!("{x}")
    }
}

fn value_label(y: f64) -> String {
    let s = format!("{y:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Tick values for a logarithmic axis over `lo..hi`: 1, 2 and 5 times the powers of ten in it,
/// or every digit times them when that gives fewer than three.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let within = |mults: &[f64]| -> Vec<f64> {
        let mut v = Vec::new();
        let mut decade = 10f64.powi(lo.log10().floor() as i32);
        while decade <= hi {
            for m in mults {
                let t = m * decade;
                if t >= lo && t <= hi {
                    v.push(t);
                }
            }
            decade *= 10.0;
        }
        v
    };
    let coarse = within(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 {
        coarse
    } else {
        within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

/// Draws every chart that has at least one point into `dir`; the files written.
pub fn plot(jsons: &[String], dir: &Path) -> Result<Vec<PathBuf>> {
    let p = points(jsons)?;
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (file, title, x_desc, panels, legend) in CHARTS {
        if !panels.iter().any(|(m, _)| p.values.contains_key(*m)) {
            continue;
        }
        let path = dir.join(file);
        draw(&p, &path, title, x_desc, panels, legend)?;
        written.push(path);
    }
    Ok(written)
}

fn draw(
    p: &Points,
    path: &Path,
    title: &str,
    x_desc: &str,
    panels: &[(&str, &str)],
    legend: &SeriesLabelPosition,
) -> Result<()> {
    let root = SVGBackend::new(path, (900, 340)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let areas = root.split_evenly((1, panels.len()));
    // One x range for the whole picture: every panel on the same sizes.
    let xs: Vec<f64> = panels
        .iter()
        .filter_map(|(m, _)| p.values.get(*m))
        .flat_map(|by| by.values().flat_map(|pts| pts.keys().map(|&n| n as f64)))
        .collect();
    let x_lo = xs.iter().copied().fold(f64::INFINITY, f64::min) / 1.6;
    let x_hi = xs.iter().copied().fold(0.0, f64::max) * 1.6;
    // Ticks at the measured sizes only.
    let mut x_ticks = xs.clone();
    x_ticks.sort_by(f64::total_cmp);
    x_ticks.dedup();
    for ((measure, caption), area) in panels.iter().zip(areas.iter()) {
        let Some(by_server) = p.values.get(*measure) else {
            continue;
        };
        let ys: Vec<f64> = by_server
            .values()
            .flat_map(|pts| pts.values().copied())
            .collect();
        let y_lo = ys.iter().copied().fold(f64::INFINITY, f64::min) / 1.8;
        let y_hi = ys.iter().copied().fold(0.0, f64::max) * 1.8;
        let unit = p.units.get(*measure).map_or("", String::as_str);
        let mut chart = ChartBuilder::on(area)
            .caption(*caption, ("sans-serif", 14))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (x_lo..x_hi).log_scale().with_key_points(x_ticks.clone()),
                (y_lo..y_hi).log_scale().with_key_points(ticks(y_lo, y_hi)),
            )?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(unit)
            .x_label_formatter(&|x| count_label(*x))
            .y_label_formatter(&|y| value_label(*y))
            .light_line_style(WHITE.mix(0.0))
            .x_labels(x_ticks.len())
            .y_labels(20)
            .draw()?;
        for (field, name, color) in SERVERS {
            let Some(pts) = by_server.get(field) else {
                continue;
            };
            let line: Vec<(f64, f64)> = pts.iter().map(|(&n, &v)| (n as f64, v)).collect();
            let color = *color;
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)).point_size(4))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

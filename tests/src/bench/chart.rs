//! The chart people would rather look at than the table: for each size-dependent section, seconds per GiB
//! (left) and peak RSS (right) against database size, one line per contender. SVG from `plotters`' own
//! backend with its built-in text layout, so it needs no font or system library.

use std::path::Path;

use plotters::prelude::*;

use super::results::{human, Results};

/// One contender's points in one section: (size in MiB, seconds per GiB, peak RSS in MiB).
struct Series {
    name: String,
    points: Vec<(f64, f64, f64)>,
}

/// The sections with timed processes, in table order, each with its contenders' series.
fn sections(r: &Results) -> Vec<(&'static str, Vec<Series>)> {
    let mut out: Vec<(&'static str, Vec<Series>)> = Vec::new();
    for l in &r.lines {
        let (Some(size), Some(spg), Some(rss)) = (l.size_bytes, l.secs_per_gib, l.peak_rss_mib)
        else {
            continue;
        };
        let mib = size as f64 / (1u64 << 20) as f64;
        let i = match out.iter().position(|(s, _)| *s == l.section) {
            Some(i) => i,
            None => {
                out.push((l.section, Vec::new()));
                out.len() - 1
            }
        };
        let series = &mut out[i].1;
        match series.iter_mut().find(|s| s.name == l.contender) {
            Some(s) => s.points.push((mib, spg, rss)),
            None => series.push(Series {
                name: l.contender.clone(),
                points: vec![(mib, spg, rss)],
            }),
        }
    }
    for (_, series) in &mut out {
        for s in series.iter_mut() {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
    out
}

/// Draws the chart into `path` (nothing when no section has timed processes yet).
///
/// # Errors
/// The SVG could not be drawn or written.
pub fn draw(r: &Results, path: &Path) -> Result<(), String> {
    let secs = sections(r);
    if secs.is_empty() {
        return Ok(());
    }
    let e = |e: &dyn std::fmt::Display| format!("chart {}: {e}", path.display());
    let root = SVGBackend::new(path, (1400, 360 * secs.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let rows = root.split_evenly((secs.len(), 2));
    let sizes: Vec<String> = r.sizes_bytes.iter().map(|s| human(*s)).collect();
    for (row, (section, series)) in secs.iter().enumerate() {
        let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
        let (lo, hi) = xs.fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        for (col, (what, pick)) in [
            (
                "seconds per GiB",
                (|p: &(f64, f64, f64)| p.1) as fn(&(f64, f64, f64)) -> f64,
            ),
            ("peak RSS (MiB)", |p| p.2),
        ]
        .into_iter()
        .enumerate()
        {
            let ymax = series
                .iter()
                .flat_map(|s| s.points.iter().map(pick))
                .fold(0f64, f64::max)
                * 1.15;
            let mut chart = ChartBuilder::on(&rows[row * 2 + col])
                .caption(format!("{section}: {what}"), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d((lo / 1.5..hi * 1.5).log_scale(), 0f64..ymax.max(1e-3))
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_desc(format!(
                    "database size, MiB (measured: {})",
                    sizes.join(", ")
                ))
                .y_desc(what)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(|x| e(&x))?;
            for (i, s) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0, pick(p))).collect();
                let drawn = chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(|x| e(&x))?;
                if col == 1 {
                    drawn.label(s.name.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(|x| e(&x))?;
            }
            if col == 1 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|x| e(&x))?;
            }
        }
    }
    root.present().map_err(|x| e(&x))
}

#[cfg(test)]
mod tests {
    use super::super::proc::Measured;
    use super::*;

    #[test]
    fn the_chart_has_a_line_per_contender_in_each_section() -> Result<(), String> {
        let mut r = Results {
            sizes_bytes: vec![64 << 20, 1 << 30],
            ..Results::default()
        };
        for size in [64u64 << 20, 1 << 30] {
            r.at_size = Some(size);
            let runs = [
                vec![Measured {
                    secs: 1.0,
                    rss: 30 << 20,
                }],
                vec![Measured {
                    secs: 0.5,
                    rss: 2 << 20,
                }],
            ];
            r.throughput(
                "restore",
                &["sqlite-vol restore", "cp + fsync"],
                &runs,
                size,
                1,
                "",
            );
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("chart.svg");
        draw(&r, &path)?;
        let svg = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        for text in [
            "restore: seconds per GiB",
            "restore: peak RSS (MiB)",
            "sqlite-vol restore",
            "cp + fsync",
        ] {
            assert!(svg.contains(text), "no {text:?} in the chart");
        }
        Ok(())
    }
}

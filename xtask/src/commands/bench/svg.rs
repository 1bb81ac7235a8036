//! The boot timeline as an SVG: one bar per boot (and the median), one
//! colour per phase, the probe and LAB-INIT-READY marked.

use super::timeline::{PHASES, Timeline};
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 30.0;
const ROW: f64 = 26.0;
const BAR: f64 = 18.0;
const TOP: f64 = 50.0;
/// One colour per phase of [`PHASES`] (a merged phase takes its last).
const COLOURS: [&str; 7] = [
    "#9e9e9e", "#8d6e63", "#ffb74d", "#e57373", "#64b5f6", "#81c784", "#4db6ac",
];

/// XML text escaping.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The colour of a phase: that of the last of its names in [`PHASES`].
fn colour(name: &str) -> &'static str {
    let last = name.rsplit(" + ").next().unwrap_or(name);
    PHASES
        .iter()
        .position(|(n, _)| *n == last)
        .map_or("#cccccc", |i| COLOURS[i])
}

/// A "nice" tick step for an axis of `max` seconds (about 8 ticks).
fn tick_step(max: f64) -> f64 {
    let raw = (max / 8.0).max(1e-3);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// The SVG of `rows` (label, timeline), titled `title`, with `note` under
/// the legend.
pub fn render(title: &str, rows: &[(String, Timeline)], note: &str) -> String {
    let max = rows
        .iter()
        .flat_map(|(_, t)| t.phases.iter().map(|p| p.end))
        .fold(0.0, f64::max)
        .max(0.1);
    let step = tick_step(max);
    let axis_max = (max / step).ceil() * step;
    let x = |t: f64| LEFT + t / axis_max * (WIDTH - LEFT - RIGHT);
    let bars_bottom = TOP + rows.len() as f64 * ROW;
    let legend_top = bars_bottom + 40.0;
    let height = legend_top + (PHASES.len() as f64 / 2.0).ceil() * 20.0 + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // Axis and grid.
    let mut t = 0.0;
    while t <= axis_max + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#e0e0e0"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(t),
            TOP - 6.0,
            bars_bottom,
            bars_bottom + 16.0,
            format_seconds(t, step)
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">seconds after QEMU was started (host clock)</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        bars_bottom + 32.0
    );
    for (i, (label, timeline)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + BAR - 5.0,
            esc(label)
        );
        for p in &timeline.phases {
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{y}" width="{:.1}" height="{BAR}" fill="{}"><title>{}: {:.3} to {:.3} s ({:.0} ms)</title></rect>"#,
                x(p.start),
                (x(p.end) - x(p.start)).max(0.5),
                colour(&p.name),
                esc(&p.name),
                p.start,
                p.end,
                (p.end - p.start) * 1000.0
            );
        }
        if let Some((_, probe)) = timeline.marks.iter().find(|(k, _)| k == "probe") {
            let _ = writeln!(
                s,
                r#"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="black" stroke-width="2"><title>probe line at {3:.3} s</title></line>"#,
                x(*probe),
                y - 2.0,
                y + BAR + 2.0,
                probe
            );
        }
    }
    // Legend.
    for (i, (name, _)) in PHASES.iter().enumerate() {
        let lx = LEFT + (i % 2) as f64 * 380.0;
        let ly = legend_top + (i / 2) as f64 * 20.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{:.1}" width="14" height="14" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            ly - 11.0,
            COLOURS[i],
            lx + 20.0,
            ly,
            esc(name)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="{:.1}" font-size="11">{}</text>"#,
        height - 14.0,
        esc(note)
    );
    s.push_str("</svg>\n");
    s
}

/// An axis label: as many decimals as the step needs.
fn format_seconds(t: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{t:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::timeline::Phase;

    fn timeline() -> Timeline {
        Timeline {
            marks: vec![("probe".into(), 0.8), ("ready".into(), 0.9)],
            phases: vec![
                Phase {
                    name: "QEMU start-up + SeaBIOS".into(),
                    start: 0.0,
                    end: 0.1,
                },
                Phase {
                    name: "kernel init".into(),
                    start: 0.1,
                    end: 0.9,
                },
            ],
            clock_zero: None,
            probe_residual: None,
        }
    }

    #[test]
    fn one_rect_per_phase_and_a_probe_tick() {
        let svg = render("boot <1>", &[("round 1".into(), timeline())], "a & b");
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Background, 2 phases, 7 legend boxes.
        assert_eq!(svg.matches("<rect ").count(), 1 + 2 + 7);
        assert!(svg.contains("probe line at 0.800 s"));
        assert!(svg.contains("boot &lt;1&gt;") && svg.contains("a &amp; b"));
        // A merged phase takes the colour of its last part.
        assert!(svg.contains(&format!(
            r#"fill="{}"><title>QEMU start-up + SeaBIOS"#,
            COLOURS[1]
        )));
    }

    #[test]
    fn ticks() {
        assert_eq!(tick_step(0.9), 0.2);
        assert_eq!(tick_step(1.6), 0.2);
        assert_eq!(tick_step(8.0), 1.0);
        assert_eq!(format_seconds(0.4, 0.2), "0.4");
        assert_eq!(format_seconds(3.0, 1.0), "3");
    }
}

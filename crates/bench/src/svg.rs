//! The plot, written by hand as SVG: throughput (MiB/s, log scale) against file size (log scale) for import and
//! export, Ferry as solid lines and the curl reference dashed, in one colour per direction.

use std::fmt::Write as _;

use crate::figures::TransferPoint;
use crate::report::mib;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 58.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

struct Series {
    label: &'static str,
    colour: &'static str,
    dashed: bool,
    values: Vec<(f64, f64)>,
}

/// The SVG document for `points` (sorted by size here); `subtitle` names the machine and date.
pub fn plot(points: &[TransferPoint], subtitle: &str) -> String {
    let mut points: Vec<&TransferPoint> = points.iter().collect();
    points.sort_by_key(|p| p.size);
    points.dedup_by_key(|p| p.size);
    let series = [
        ("import, Ferry", "#1f6fb4", false, 0),
        ("import, curl", "#1f6fb4", true, 1),
        ("export, Ferry", "#c8402a", false, 2),
        ("export, curl", "#c8402a", true, 3),
    ]
    .map(|(label, colour, dashed, which)| Series {
        label,
        colour,
        dashed,
        values: points
            .iter()
            .map(|p| {
                let secs = [p.import_ferry, p.import_reference, p.export_ferry, p.export_reference][which];
                (p.size as f64, p.rate(secs))
            })
            .filter(|(_, rate)| rate.is_finite() && *rate > 0.0)
            .collect(),
    });
    let rates: Vec<f64> = series.iter().flat_map(|s| s.values.iter().map(|v| v.1)).collect();
    let sizes: Vec<f64> = points.iter().map(|p| p.size as f64).collect();
    let (Some(min_size), Some(max_size)) = (sizes.first().copied(), sizes.last().copied()) else {
        return empty(subtitle);
    };
    if rates.is_empty() {
        return empty(subtitle);
    }
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min).log10().floor();
    let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max).log10().ceil().max(lo + 1.0);
    // Half an octave of room on each side so the end points are not on the frame.
    let (x_lo, x_hi) = (min_size.log2() - 0.5, max_size.log2().max(min_size.log2() + 1.0) + 0.5);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |size: f64| LEFT + (size.log2() - x_lo) / (x_hi - x_lo) * plot_w;
    let y = |rate: f64| TOP + plot_h - (rate.log10() - lo) / (hi - lo) * plot_h;

    let mut svg = header(subtitle);
    // Grid and axes.
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444" stroke-width="1"/>"##
    );
    let mut decade = lo;
    while decade <= hi + 1e-9 {
        let rate = 10f64.powf(decade);
        let yy = y(rate);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            format_rate(rate)
        );
        decade += 1.0;
    }
    for size in &sizes {
        let xx = x(*size);
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            mib(*size as u64)
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">file size (log scale)</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    );
    let _ = writeln!(
        svg,
        r##"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" class="axis">MiB/s (log scale)</text>"##,
        TOP + plot_h / 2.0
    );
    // Lines, points and the legend.
    for (n, s) in series.iter().enumerate() {
        let dash = if s.dashed { r#" stroke-dasharray="7 5""# } else { "" };
        let path: Vec<String> =
            s.values.iter().map(|(size, rate)| format!("{:.1},{:.1}", x(*size), y(*rate))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.2"{dash}/>"#,
            path.join(" "),
            s.colour
        );
        for (size, rate) in &s.values {
            let fill = if s.dashed { "#fff" } else { s.colour };
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{fill}" stroke="{}" stroke-width="1.8"><title>{}: {} at {}</title></circle>"#,
                x(*size),
                y(*rate),
                s.colour,
                escape(s.label),
                format_rate(*rate),
                mib(*size as u64)
            );
        }
        let ly = TOP + 14.0 + n as f64 * 24.0;
        let lx = LEFT + plot_w + 16.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2.2"{dash}/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            lx + 30.0,
            s.colour,
            lx + 38.0,
            ly + 4.0,
            escape(s.label)
        );
    }
    svg += "</svg>\n";
    svg
}

fn format_rate(rate: f64) -> String {
    if rate >= 1.0 { format!("{rate:.0}") } else { format!("{rate}") }
}

fn header(subtitle: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">
<style>.tick {{ font-size: 11px; fill: #333; }} .axis {{ font-size: 12px; fill: #222; }} .legend {{ font-size: 12px; fill: #222; }} .title {{ font-size: 15px; font-weight: bold; fill: #111; }} .sub {{ font-size: 11px; fill: #555; }}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="{LEFT}" y="20" class="title">Ferry import and export throughput against file size</text>
<text x="{LEFT}" y="36" class="sub">{}</text>
"##,
        escape(subtitle)
    )
}

fn empty(subtitle: &str) -> String {
    let mut svg = header(subtitle);
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="{}" class="axis">no points measured</text>"#, HEIGHT / 2.0);
    svg += "</svg>\n";
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(size: u64, secs: f64) -> TransferPoint {
        TransferPoint {
            size,
            files: 8,
            import_ferry: secs,
            import_reference: secs / 2.0,
            export_ferry: secs * 2.0,
            export_reference: secs,
        }
    }

    #[test]
    fn every_series_has_a_line_and_a_point_per_size() {
        let svg = plot(&[point(1 << 20, 1.0), point(64 << 10, 0.5), point(256 << 20, 4.0)], "a & b");
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 12);
        assert!(svg.contains("a &amp; b"));
        assert!(svg.contains(">64 KiB<") && svg.contains(">256 MiB<"));
    }

    #[test]
    fn no_points_still_makes_a_document() {
        assert!(plot(&[], "x").contains("no points measured"));
    }
}

//! A case's timeline as an inline SVG (no script): one row per lane that has events, a time
//! axis in ms with ticks, each event a mark whose `<title>` (the browser's tooltip) is its
//! time, lane and text. Events of one lane closer than a few pixels are drawn as one wider
//! mark with their count, its tooltip listing them, so dense stretches stay readable.
//!
//! CSS classes a consumer may rely on: `timeline` on the `<svg>`, `lane-<lane>` on each mark
//! (`module`, `harness`, `radio`, `packet`, `text`), `cluster` on marks that stand for several
//! events.

use std::fmt::Write as _;

use super::text::h;
use crate::model::{Lane, TimelineEvent};

/// Drawing width in SVG units (the SVG scales to the page).
const WIDTH: f64 = 960.0;
/// Left margin: lane names.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const ROW: f64 = 22.0;
const TOP: f64 = 6.0;
/// Room under the rows for the axis and its labels.
const AXIS: f64 = 26.0;
/// Events of a lane closer than this (SVG units) are drawn as one mark.
const CLUSTER_PX: f64 = 5.0;
/// Lines a cluster's tooltip lists at most.
const TOOLTIP_MAX: usize = 15;

/// CSS for the timeline (part of the page's style sheet).
pub(crate) const CSS: &str = r#"
svg.timeline { width: 100%; height: auto; max-width: 960px; display: block; margin: .5em 0;
  font: 11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
svg.timeline .row { fill: var(--bg-alt); }
svg.timeline .lane-name { fill: var(--muted); }
svg.timeline .axis { stroke: #999; stroke-width: 1; }
svg.timeline .tick { stroke: #ccc; stroke-width: 1; stroke-dasharray: 2 3; }
svg.timeline .tick-label { fill: var(--muted); text-anchor: middle; }
svg.timeline .ev { stroke: #fff; stroke-width: .5; }
svg.timeline .ev:hover { stroke: #000; stroke-width: 1.5; }
svg.timeline .count { fill: #fff; text-anchor: middle; font-size: 9px; pointer-events: none; }
svg.timeline .lane-module { fill: #1d1d1f; }
svg.timeline .lane-harness { fill: #0b57d0; }
svg.timeline .lane-radio { fill: #e65100; }
svg.timeline .lane-packet { fill: #2e7d32; }
svg.timeline .lane-text { fill: #888; }
"#;

/// The SVG for a timeline; empty when there is no event.
pub(crate) fn render(events: &[TimelineEvent]) -> String {
    let mut out = String::new();
    if !events.is_empty() {
        let _ = write_svg(&mut out, events);
    }
    out
}

fn write_svg(o: &mut String, events: &[TimelineEvent]) -> std::fmt::Result {
    let lanes: Vec<Lane> =
        Lane::ALL.into_iter().filter(|l| events.iter().any(|e| e.lane == *l)).collect();
    let finite = || events.iter().map(|e| e.t_ms).filter(|t| t.is_finite());
    let t_min = finite().fold(0.0_f64, f64::min);
    let t_max = finite().fold(0.0_f64, f64::max);
    let (lo, hi, step) = axis(t_min, t_max);
    let plot = WIDTH - LEFT - RIGHT;
    let x_of = |t: f64| LEFT + (t.clamp(lo, hi) - lo) / (hi - lo) * plot;
    let rows_h = ROW * lanes.len() as f64;
    let height = TOP + rows_h + AXIS;

    writeln!(
        o,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" \
         role=\"img\" aria-label=\"Timeline: {} events from {} to {} ms\">",
        events.len(),
        num(t_min),
        num(t_max)
    )?;
    // Rows with their names.
    for (i, lane) in lanes.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        writeln!(
            o,
            "<rect class=\"row\" x=\"{LEFT}\" y=\"{}\" width=\"{plot}\" height=\"{}\"/>\
             <text class=\"lane-name\" x=\"{}\" y=\"{}\">{}</text>",
            num(y + 1.0),
            num(ROW - 2.0),
            num(4.0),
            num(y + ROW / 2.0 + 4.0),
            lane.as_str()
        )?;
    }
    // Axis and ticks.
    let axis_y = TOP + rows_h + 2.0;
    writeln!(
        o,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/>",
        num(axis_y),
        num(LEFT + plot)
    )?;
    let mut k = (lo / step).ceil() as i64;
    while (k as f64) * step <= hi + step * 1e-9 {
        let t = k as f64 * step;
        let x = x_of(t);
        writeln!(
            o,
            "<line class=\"tick\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\
             <text class=\"tick-label\" x=\"{0}\" y=\"{3}\">{4}</text>",
            num(x),
            num(TOP),
            num(axis_y + 4.0),
            num(axis_y + 15.0),
            tick_label(t, step)
        )?;
        k += 1;
    }
    writeln!(
        o,
        "<text class=\"tick-label\" x=\"{}\" y=\"{}\" style=\"text-anchor: end\">ms</text>",
        num(WIDTH - 2.0),
        num(axis_y + 15.0)
    )?;
    // Events, lane by lane, clustered.
    for (i, lane) in lanes.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let mut in_lane: Vec<&TimelineEvent> = events.iter().filter(|e| e.lane == *lane).collect();
        in_lane.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        for cluster in clusters(&in_lane, &x_of) {
            write_mark(o, *lane, y, &cluster, &x_of)?;
        }
    }
    writeln!(o, "</svg>")
}

/// Splits time-sorted events into runs whose neighbours are closer than [`CLUSTER_PX`].
fn clusters<'a>(
    events: &[&'a TimelineEvent],
    x_of: &impl Fn(f64) -> f64,
) -> Vec<Vec<&'a TimelineEvent>> {
    let mut out: Vec<Vec<&TimelineEvent>> = Vec::new();
    let mut last_x = f64::NEG_INFINITY;
    for e in events {
        let x = x_of(e.t_ms);
        match out.last_mut() {
            Some(c) if x - last_x < CLUSTER_PX => c.push(e),
            _ => out.push(vec![e]),
        }
        last_x = x;
    }
    out
}

fn write_mark(
    o: &mut String,
    lane: Lane,
    y: f64,
    cluster: &[&TimelineEvent],
    x_of: &impl Fn(f64) -> f64,
) -> std::fmt::Result {
    let (Some(first), Some(last)) = (cluster.first(), cluster.last()) else { return Ok(()) };
    let lane_name = lane.as_str();
    let mut title = String::new();
    if cluster.len() > 1 {
        let _ = writeln!(
            title,
            "{} {lane_name} events, {} to {} ms:",
            cluster.len(),
            signed(first.t_ms),
            signed(last.t_ms)
        );
    }
    for (i, e) in cluster.iter().take(TOOLTIP_MAX).enumerate() {
        if i > 0 {
            title.push('\n');
        }
        let _ = write!(title, "{} ms {lane_name}: {}", signed(e.t_ms), e.text);
    }
    if cluster.len() > TOOLTIP_MAX {
        let _ = write!(title, "\n… and {} more", cluster.len() - TOOLTIP_MAX);
    }
    let title = h_title(&title);
    let (x0, x1) = (x_of(first.t_ms), x_of(last.t_ms));
    let top = y + 4.0;
    let height = ROW - 8.0;
    if cluster.len() == 1 {
        writeln!(
            o,
            "<rect class=\"ev lane-{lane_name}\" x=\"{}\" y=\"{}\" width=\"3\" height=\"{}\" \
             rx=\"1\"><title>{title}</title></rect>",
            num(x0 - 1.5),
            num(top),
            num(height)
        )
    } else {
        let width = (x1 - x0).max(0.0) + 12.0;
        let cx = (x0 + x1) / 2.0;
        writeln!(
            o,
            "<g class=\"cluster\"><rect class=\"ev lane-{lane_name}\" x=\"{}\" y=\"{}\" \
             width=\"{}\" height=\"{}\" rx=\"3\"><title>{title}</title></rect>\
             <text class=\"count\" x=\"{}\" y=\"{}\">{}</text></g>",
            num(cx - width / 2.0),
            num(top),
            num(width),
            num(height),
            num(cx),
            num(top + height / 2.0 + 3.0),
            cluster.len()
        )
    }
}

/// Escapes a tooltip: like [`h`] per line, keeping line ends (SVG `<title>` shows them).
fn h_title(s: &str) -> String {
    s.split('\n').map(h).collect::<Vec<_>>().join("\n")
}

/// The axis: from `lo` to `hi` (rounded out to whole ticks) and the tick step, about 5 to 10
/// ticks, steps of 1, 2 or 5 times a power of ten.
fn axis(t_min: f64, t_max: f64) -> (f64, f64, f64) {
    let t_max = t_max.max(t_min + 1.0);
    let span = t_max - t_min;
    let raw = span / 8.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(pow * 10.0);
    // A little before 0 (a packet just before the case started) does not cost a whole tick.
    let lo = if t_min < 0.0 && t_min > -step { t_min } else { (t_min / step).floor() * step };
    let mut hi = (t_max / step).ceil() * step;
    if hi <= lo {
        hi = lo + step;
    }
    (lo, hi, step)
}

fn tick_label(t: f64, step: f64) -> String {
    if step >= 1.0 { format!("{}", t.round() as i64) } else { format!("{t:.1}") }
}

/// A time offset with its sign: `+3.25`, `-1.5`, `+0`.
fn signed(v: f64) -> String {
    let n = num(v);
    if n.starts_with('-') { n } else { format!("+{n}") }
}

/// A number for an SVG attribute or label: at most 2 decimals, no trailing zeros.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn ev(t_ms: f64, lane: Lane, text: &str) -> TimelineEvent {
        TimelineEvent { t_ms, lane, text: text.into() }
    }

    #[test]
    fn nothing_for_no_events() {
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(0.0, 100.0), (0.0, 100.0, 20.0));
        assert_eq!(axis(0.0, 0.0), (0.0, 1.0, 0.2));
        assert_eq!(axis(-3.0, 2500.0), (-3.0, 2500.0, 500.0));
        assert_eq!(axis(-700.0, 2500.0), (-1000.0, 2500.0, 500.0));
        assert_eq!(axis(0.0, 37.0), (0.0, 40.0, 5.0));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.256), "1.26");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(f64::NAN), "0");
    }

    #[test]
    fn one_row_per_lane_with_events_and_escaped_tooltips() {
        let svg = render(&[
            ev(0.0, Lane::Harness, "set wlan.ssid <lab>"),
            ev(50.0, Lane::Packet, "ARP request"),
            ev(100.0, Lane::Harness, "get wlan.ssid"),
        ]);
        assert_eq!(svg.matches("<rect class=\"row\"").count(), 2);
        assert!(svg.contains(">harness</text>") && svg.contains(">packet</text>"));
        assert!(!svg.contains(">radio</text>"));
        assert!(svg.contains("<title>+0 ms harness: set wlan.ssid &lt;lab&gt;</title>"));
        assert_eq!(svg.matches("class=\"ev lane-").count(), 3);
        assert!(svg.contains(">100</text>"), "{svg}");
    }

    #[test]
    fn dense_events_are_clustered() {
        let mut events: Vec<TimelineEvent> =
            (0..40).map(|i| ev(1000.0 + f64::from(i) * 0.1, Lane::Packet, "DNS query")).collect();
        events.push(ev(0.0, Lane::Packet, "first"));
        events.push(ev(2000.0, Lane::Packet, "last"));
        let svg = render(&events);
        assert_eq!(svg.matches("<g class=\"cluster\">").count(), 1);
        assert!(
            svg.contains(
                "<title>40 packet events, +1000 to +1003.9 ms:\n+1000 ms packet: DNS query"
            )
        );
        assert!(svg.contains("… and 25 more</title>"));
        assert!(svg.contains(">40</text>"));
        assert_eq!(svg.matches("class=\"ev lane-packet\"").count(), 3);
    }
}

//! Small helpers shared by the renderers: visible text, durations, slugs, grouping.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use crate::model::{ClauseStatus, Direction, StepOutcome, TranscriptEntry, Verdict};

/// `text` with every control character made visible: `\r`, `\n`, `\t` as such, the others
/// (C0, DEL, C1) as `\xHH`. This is how the model stores transcript text, so text that is
/// already escaped passes through unchanged; a raw escape byte never reaches a report.
pub(crate) fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`visible`], but keeps line ends (`\n`, and `\r\n` as `\n`): for multi-line messages.
pub(crate) fn visible_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || (c == '\r' && chars.peek() == Some(&'\n')) {
            if c == '\r' {
                chars.next();
            }
            out.push('\n');
        } else {
            push_visible(&mut out, c);
        }
    }
    Cow::Owned(out)
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => {
            // Every control character (Cc) is below U+0100.
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// One transcript entry as a line of text: `+12.3ms tx get wlan.ssid`.
pub(crate) fn transcript_line(entry: &TranscriptEntry) -> String {
    format!("+{:.1}ms {} {}", entry.t_ms, direction(entry.dir), visible(&entry.text))
}

pub(crate) fn direction(dir: Direction) -> &'static str {
    match dir {
        Direction::Tx => "tx",
        Direction::Rx => "rx",
        Direction::Note => "note",
    }
}

/// A duration for people: `1m 2s 345ms`, `0s`.
pub(crate) fn duration(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

/// The serialized (snake_case) name of a verdict: usable as a CSS class.
pub(crate) fn verdict_slug(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
        Verdict::Skipped => "skipped",
        Verdict::KnownDeviation => "known_deviation",
    }
}

/// The serialized (snake_case) name of a clause status: usable as a CSS class.
pub(crate) fn status_slug(s: ClauseStatus) -> &'static str {
    match s {
        ClauseStatus::Uncovered => "uncovered",
        ClauseStatus::NotRun => "not_run",
        ClauseStatus::Pass => "pass",
        ClauseStatus::KnownDeviation => "known_deviation",
        ClauseStatus::Error => "error",
        ClauseStatus::Fail => "fail",
    }
}

pub(crate) fn outcome(o: StepOutcome) -> &'static str {
    match o {
        StepOutcome::Ok => "ok",
        StepOutcome::Failed => "failed",
        StepOutcome::Error => "error",
        StepOutcome::NotRun => "not run",
    }
}

/// Fail or error: the verdicts that make a run red.
pub(crate) fn is_failing(v: Verdict) -> bool {
    matches!(v, Verdict::Fail | Verdict::Error)
}

/// Items grouped by a key, groups in the order their key first appears.
pub(crate) fn group_by<T>(items: &[T], key: impl Fn(&T) -> &str) -> Vec<(&str, Vec<&T>)> {
    let mut groups: Vec<(&str, Vec<&T>)> = Vec::new();
    for item in items {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    groups
}

/// Escapes text for HTML content or a quoted attribute; control characters become `\xHH`.
pub(crate) fn h(s: &str) -> String {
    escape(&visible(s))
}

/// Like [`h`], keeping line ends (for `white-space: pre-wrap` blocks).
pub(crate) fn h_lines(s: &str) -> String {
    escape(&visible_lines(s))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_escapes_controls_only() {
        assert_eq!(visible("plain <b>"), "plain <b>");
        assert_eq!(visible("a\x1b[31mb\r\n\u{7f}\u{85}é"), "a\\x1b[31mb\\r\\n\\x7f\\x85é");
        assert_eq!(visible_lines("one\r\ntwo\nthree\x00"), "one\ntwo\nthree\\x00");
    }

    #[test]
    fn transcript_lines() {
        let e = TranscriptEntry { t_ms: 12.34, dir: Direction::Tx, text: "get wlan.ssid".into() };
        assert_eq!(transcript_line(&e), "+12.3ms tx get wlan.ssid");
    }
}

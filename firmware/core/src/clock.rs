//! Wall-clock time: the module's real-time clock (`time.rtc`) and the timestamps
//! `system.cmd.timestamp` puts on log messages.
//!
//! The RTC counts seconds since 1970-01-01 UTC. It starts at 0 at boot and runs from the
//! core's clock; `set time.rtc <seconds>` sets it (protocol-facts §3: set in epoch seconds).
//! Nothing keeps it across a reboot (no battery-backed clock is assumed).
//!
//! Timestamps (protocol-facts §2: `[2014-04-23 | 19:40:23: Opened: 0]`): `utc` prints the
//! RTC's date and time, `local` the same moved by `time.zone` (`[+|-]H[:M]`, -12:30 to
//! +12:30). A bracketed message keeps its brackets around the stamp (`[<stamp>: Opened: 0]`);
//! any other message gets `<stamp>: ` in front (assumed: the sources show bracketed ones only).

use alloc::format;
use alloc::string::String;

/// `YYYY-MM-DD | HH:MM:SS` for `epoch_s` seconds since 1970-01-01 (negative: before it).
pub fn stamp(epoch_s: i64) -> String {
    let days = epoch_s.div_euclid(86_400);
    let secs = epoch_s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} | {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `time.zone` as an offset in seconds: `[+|-]H[:M]`, within -12:30..=+12:30.
pub fn zone_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h * 60 + m;
    (m < 60 && minutes <= 12 * 60 + 30).then_some(sign * minutes * 60)
}

/// `text` with the stamp in front, as the module's logs print it.
pub fn stamped(stamp: &str, text: &str) -> String {
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => format!("[{stamp}: {inner}]"),
        None => format!("{stamp}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::epoch(0, "1970-01-01 | 00:00:00")]
    #[case::doc_example(1_398_281_623, "2014-04-23 | 19:33:43")]
    #[case::leap_day(951_782_400, "2000-02-29 | 00:00:00")]
    #[case::end_of_2099(4_102_444_799, "2099-12-31 | 23:59:59")]
    #[case::before_1970(-1, "1969-12-31 | 23:59:59")]
    fn stamps(#[case] epoch: i64, #[case] want: &str) {
        assert_eq!(stamp(epoch), want);
    }

    #[rstest]
    #[case("0", Some(0))]
    #[case("+5:30", Some(19_800))]
    #[case("-8", Some(-28_800))]
    #[case("12:30", Some(45_000))]
    #[case("12:31", None)]
    #[case("13", None)]
    #[case("5:60", None)]
    #[case("", None)]
    #[case("+", None)]
    #[case("x", None)]
    fn zones(#[case] text: &str, #[case] want: Option<i64>) {
        assert_eq!(zone_offset(text), want);
    }

    #[test]
    fn bracketed_messages_keep_their_brackets() {
        let s = "2014-04-23 | 19:40:23";
        assert_eq!(stamped(s, "[Opened: 0]"), "[2014-04-23 | 19:40:23: Opened: 0]");
        assert_eq!(stamped(s, "Closing: 0"), "2014-04-23 | 19:40:23: Closing: 0");
    }
}

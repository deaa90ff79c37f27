//! Percent-decoding of the path of a request (`GET /command/get%20wlan.ssid`).

use alloc::vec::Vec;

/// A `%` not followed by two hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadEscape;

/// Decodes `%XX` escapes; `+` becomes a space when `plus_is_space` (the command path, where
/// form-style encoders write spaces as `+`; a literal `+` is then `%2B`: assumed, the
/// chapter says only "URL-encoded").
pub fn percent_decode(text: &[u8], plus_is_space: bool) -> Result<Vec<u8>, BadEscape> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'%' => {
                let hi = text.get(i + 1).and_then(|b| hex(*b)).ok_or(BadEscape)?;
                let lo = text.get(i + 2).and_then(|b| hex(*b)).ok_or(BadEscape)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("ver", true, Ok("ver"))]
    #[case("get%20wlan.ssid", true, Ok("get wlan.ssid"))]
    #[case("get+wlan.ssid", true, Ok("get wlan.ssid"))]
    #[case("a+b", false, Ok("a+b"))]
    #[case("%2B%2b", true, Ok("++"))]
    #[case("%41%7a", true, Ok("Az"))]
    #[case("", true, Ok(""))]
    #[case("%", true, Err(BadEscape))]
    #[case("%4", true, Err(BadEscape))]
    #[case("%zz", true, Err(BadEscape))]
    #[case("ab%g1", true, Err(BadEscape))]
    fn decodes(#[case] text: &str, #[case] plus: bool, #[case] want: Result<&str, BadEscape>) {
        let got = percent_decode(text.as_bytes(), plus);
        assert_eq!(got, want.map(|w| w.as_bytes().to_vec()));
    }

    #[test]
    fn decodes_any_byte() {
        assert_eq!(percent_decode(b"%00%FF", false), Ok(alloc::vec![0, 0xff]));
    }
}

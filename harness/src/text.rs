//! Byte and text conventions shared by spec tables, rigs, peers and transcripts: the
//! escapes of raw bytes, BSSIDs. A leaf module (it imports nothing of the crate), so the
//! parsers that use it do not depend on each other.

/// Renders bytes for a transcript: printable ASCII as is, CR/LF/TAB as `\r` `\n` `\t`,
/// anything else as `\xHH`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02X}")),
        }
    }
    s
}

/// Decodes the escapes of `raw` and `expect_raw`: `\r \n \t \\ \" \0 \xHH`.
pub fn unescape_raw(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('"') => out.push(b'"'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let b = (hex.len() == 2)
                    .then(|| u8::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| format!("`\\x{hex}` is not a hex byte (two hex digits)"))?;
                out.push(b);
            }
            Some(other) => return Err(format!("unknown escape `\\{other}`")),
            None => return Err("a lone backslash ends the text".to_string()),
        }
    }
    Ok(out)
}

/// Parses `02:00:00:00:01:01`.
pub fn parse_bssid(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for slot in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Formats a BSSID as the lab control channel and reports print it.
pub fn format_bssid(b: &[u8; 6]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_transcript_bytes() {
        assert_eq!(escape_bytes(b"ok\r\n\x00\xff\\"), r"ok\r\n\x00\xFF\\");
    }

    #[test]
    fn unescapes_what_escape_bytes_writes() {
        let bytes = b"ok\r\n\x00\xff\\\"";
        assert_eq!(unescape_raw(&escape_bytes(bytes)).as_deref(), Ok(&bytes[..]));
        assert!(unescape_raw("\\q").is_err());
        assert!(unescape_raw("\\x4").is_err());
        assert!(unescape_raw("end\\").is_err());
    }

    #[test]
    fn parses_and_formats_bssids() {
        assert_eq!(parse_bssid("02:00:00:00:01:0A"), Some([2, 0, 0, 0, 1, 10]));
        assert_eq!(format_bssid(&[2, 0, 0, 0, 1, 10]), "02:00:00:00:01:0a");
        assert_eq!(parse_bssid("02:00:00:00:01"), None);
        assert_eq!(parse_bssid("02:00:00:00:01:01:07"), None);
        assert_eq!(parse_bssid("2:00:00:00:01:01"), None);
    }
}

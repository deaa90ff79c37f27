//! The NVM image: how saved variables are laid out in non-volatile memory.
//!
//! A text image, so a person can read a simulated module's NVM file:
//!
//! ```text
//! GECKO-NVM 1
//! wlan.ssid=lab%20net
//! CRC 1c291ca3
//! ```
//!
//! Values are percent-encoded (every byte outside `!`..=`~`, and `%` and `=`). The CRC-32
//! covers every byte before the `CRC` line, so a torn or damaged image is detected and the
//! module boots with defaults instead of half a configuration.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

const MAGIC: &str = "GECKO-NVM 1\n";

/// Why an NVM image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvmError {
    /// The image does not start with the expected magic line.
    BadMagic,
    /// The CRC line is missing or does not match the content.
    BadCrc,
    /// A line is not `name=value` or holds a bad percent escape.
    BadLine { line: usize },
}

impl fmt::Display for NvmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("not an NVM image (bad magic line)"),
            Self::BadCrc => f.write_str("NVM image damaged (CRC mismatch)"),
            Self::BadLine { line } => write!(f, "NVM image line {line} is malformed"),
        }
    }
}

/// Builds an image from `(name, stored value)` pairs.
pub fn encode<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut text = String::from(MAGIC);
    for (name, value) in entries {
        text.push_str(name);
        text.push('=');
        for &b in value {
            if (b'!'..=b'~').contains(&b) && b != b'%' && b != b'=' {
                text.push(b as char);
            } else {
                let _ = write!(text, "%{b:02X}");
            }
        }
        text.push('\n');
    }
    let crc = crc32(text.as_bytes());
    let _ = writeln!(text, "CRC {crc:08x}");
    text.into_bytes()
}

/// Reads an image back into `(name, stored value)` pairs.
pub fn decode(image: &[u8]) -> Result<Vec<(String, Vec<u8>)>, NvmError> {
    let text = core::str::from_utf8(image).map_err(|_| NvmError::BadMagic)?;
    let body = text.strip_prefix(MAGIC).ok_or(NvmError::BadMagic)?;
    let crc_at = text.rfind("CRC ").ok_or(NvmError::BadCrc)?;
    let stated = text[crc_at + 4..].trim_end_matches('\n');
    let stated = u32::from_str_radix(stated, 16).map_err(|_| NvmError::BadCrc)?;
    if crc_at < MAGIC.len() || crc32(&image[..crc_at]) != stated {
        return Err(NvmError::BadCrc);
    }
    let body = &body[..crc_at - MAGIC.len()];
    let mut entries = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let bad = NvmError::BadLine { line: i + 2 };
        let (name, value) = line.split_once('=').ok_or(bad)?;
        let mut bytes = Vec::with_capacity(value.len());
        let mut raw = value.bytes();
        while let Some(b) = raw.next() {
            if b == b'%' {
                let hi = raw.next().and_then(|h| (h as char).to_digit(16)).ok_or(bad)?;
                let lo = raw.next().and_then(|h| (h as char).to_digit(16)).ok_or(bad)?;
                bytes.push((hi * 16 + lo) as u8);
            } else {
                bytes.push(b);
            }
        }
        entries.push((String::from(name), bytes));
    }
    Ok(entries)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trips_awkward_values() {
        let entries: Vec<(&str, &[u8])> = vec![
            ("wlan.ssid", b"lab net=%1"),
            ("wlan.passkey", b"p\"ss\tw\nor\xff"),
            ("softap.passkey", b""),
        ];
        let image = encode(entries.iter().copied());
        let back = decode(&image).expect("decodes");
        let back: Vec<(&str, &[u8])> =
            back.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        assert_eq!(back, entries);
    }

    #[test]
    fn detects_damage() {
        let mut image = encode([("wlan.ssid", b"abc".as_slice())]);
        let at = image.iter().position(|&b| b == b'a').expect("has an a");
        image[at] = b'b';
        assert_eq!(decode(&image), Err(NvmError::BadCrc));
    }

    #[test]
    fn detects_truncation_and_foreign_data() {
        let image = encode([("wlan.ssid", b"abc".as_slice())]);
        assert!(decode(&image[..image.len() - 3]).is_err());
        assert_eq!(decode(b"hello"), Err(NvmError::BadMagic));
        assert_eq!(decode(b""), Err(NvmError::BadMagic));
    }
}

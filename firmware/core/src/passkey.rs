//! Network passkeys (`wlan.passkey`, `softap.passkey`, `setup.web.passkey`), exactly as the
//! chapter's "Passkeys" section gives them:
//!
//! * printable ASCII (codes 32 to 127), 8 to 63 characters;
//! * encoded ASCII: `\0 \s \\ \t \n \r \" \xHH`, where the *decoded* length must be 8 to 63
//!   (the encoded text may be longer);
//! * a pre-generated PSK of exactly 64 hexadecimal characters;
//! * double quotes around the value to insert spaces (removed by the tokenizer);
//! * the getter prints every non-printable byte as `\xHH`.
//!
//! Choices the chapter does not make (marked `assumed` in the spec tables): an empty value
//! clears the passkey; an unknown escape or a malformed `\x` is an invalid argument, a
//! decoded length outside 8 to 63 is a bounds error.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Shortest decoded passphrase.
pub const MIN_LEN: usize = 8;
/// Longest decoded passphrase.
pub const MAX_LEN: usize = 63;
/// Length of a pre-generated PSK in hex characters.
pub const PSK_HEX_LEN: usize = 64;

/// Why a passkey argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasskeyError {
    /// A backslash is followed by something that is not one of the listed encodings.
    BadEscape { at: usize },
    /// A raw character outside the printable range 32 to 127.
    NotPrintable { at: usize },
    /// The decoded passphrase is shorter than 8 or longer than 63 bytes.
    Length { decoded: usize },
}

impl fmt::Display for PasskeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadEscape { at } => write!(f, "invalid encoding at character {at}"),
            Self::NotPrintable { at } => write!(f, "character {at} is not printable ASCII"),
            Self::Length { decoded } => {
                write!(f, "decoded length {decoded} is outside {MIN_LEN}..={MAX_LEN}")
            }
        }
    }
}

/// A validated passkey: the decoded bytes of a passphrase, or the 64 hex characters of a PSK.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Passkey(Vec<u8>);

impl Passkey {
    /// Parses a command argument (quotes already removed by the tokenizer).
    pub fn parse(arg: &str) -> Result<Self, PasskeyError> {
        if arg.is_empty() {
            return Ok(Self(Vec::new()));
        }
        if arg.len() == PSK_HEX_LEN && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self(arg.as_bytes().to_vec()));
        }
        let decoded = decode(arg)?;
        if !(MIN_LEN..=MAX_LEN).contains(&decoded.len()) {
            return Err(PasskeyError::Length { decoded: decoded.len() });
        }
        Ok(Self(decoded))
    }

    /// Rebuilds a passkey from bytes stored in NVM (already validated when they were set).
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is a 64-hex pre-generated PSK rather than a passphrase.
    pub fn is_psk(&self) -> bool {
        self.0.len() == PSK_HEX_LEN
    }
}

/// Decodes the encoded-ASCII escapes of the chapter's table.
fn decode(arg: &str) -> Result<Vec<u8>, PasskeyError> {
    let bytes = arg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            if !(32..=127).contains(&b) {
                return Err(PasskeyError::NotPrintable { at: i });
            }
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&code) = bytes.get(i + 1) else {
            return Err(PasskeyError::BadEscape { at: i });
        };
        let value = match code {
            b'0' => 0x00,
            b's' => b' ',
            b'\\' => b'\\',
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            b'"' => b'"',
            b'x' => {
                let hex = bytes.get(i + 2..i + 4).ok_or(PasskeyError::BadEscape { at: i })?;
                let hi = hex_val(hex[0]).ok_or(PasskeyError::BadEscape { at: i })?;
                let lo = hex_val(hex[1]).ok_or(PasskeyError::BadEscape { at: i })?;
                out.push(hi << 4 | lo);
                i += 4;
                continue;
            }
            _ => return Err(PasskeyError::BadEscape { at: i }),
        };
        out.push(value);
        i += 2;
    }
    Ok(out)
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Renders stored bytes as the getter prints them: printable ASCII (32 to 126) as is,
/// everything else as `\xHH`.
pub fn render(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (32..=126).contains(&b) {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain("password", b"password".as_slice())]
    #[case::symbols("~!@#$#@#@#^&(()", b"~!@#$#@#@#^&(()".as_slice())]
    #[case::chapter_example(r#"p\"ss\tw\nor\xFF"#, b"p\"ss\tw\nor\xff".as_slice())]
    #[case::null_and_space(r"\0abc\sdefg", b"\0abc defg".as_slice())]
    #[case::backslash(r"back\\slash", b"back\\slash".as_slice())]
    #[case::cr(r"abcdefg\r", b"abcdefg\r".as_slice())]
    #[case::hex_lower(r"\x41\x42\x43\x44\x45\x46\x47\x48", b"ABCDEFGH".as_slice())]
    #[case::spaces_from_quotes("my pass word", b"my pass word".as_slice())]
    #[case::del_is_in_range("abcdefg\x7f", b"abcdefg\x7f".as_slice())]
    #[case::min_len("12345678", b"12345678".as_slice())]
    fn accepts(#[case] arg: &str, #[case] want: &[u8]) {
        assert_eq!(Passkey::parse(arg).map(|p| p.0), Ok(want.to_vec()));
    }

    #[test]
    fn accepts_63_and_refuses_64_printable() {
        let ok = "a".repeat(63);
        assert_eq!(Passkey::parse(&ok).map(|p| p.0.len()), Ok(63));
        let long = "g".repeat(64);
        assert_eq!(Passkey::parse(&long), Err(PasskeyError::Length { decoded: 64 }));
    }

    #[test]
    fn encoded_may_be_longer_than_63_if_decoded_fits() {
        let arg = r"\x41".repeat(63); // 252 encoded characters, 63 decoded
        assert_eq!(Passkey::parse(&arg).map(|p| p.0.len()), Ok(63));
        let arg = r"\x41".repeat(64);
        assert_eq!(Passkey::parse(&arg), Err(PasskeyError::Length { decoded: 64 }));
    }

    #[test]
    fn psk_is_64_hex() {
        let psk = "e2e04dcb82891a286e5d524b63f4963ac1f8dc49852bd6b97441d9545054d270";
        let key = Passkey::parse(psk).expect("valid psk");
        assert!(key.is_psk());
        assert_eq!(render(key.as_bytes()), psk);
    }

    #[rstest]
    #[case::short("1234567", PasskeyError::Length { decoded: 7 })]
    #[case::short_after_decoding(r"\x41\x42\x43", PasskeyError::Length { decoded: 3 })]
    #[case::unknown_escape(r"abcdefgh\q", PasskeyError::BadEscape { at: 8 })]
    #[case::bad_hex(r"abcdefgh\xZZ", PasskeyError::BadEscape { at: 8 })]
    #[case::short_hex(r"abcdefgh\x4", PasskeyError::BadEscape { at: 8 })]
    #[case::lone_backslash("abcdefgh\\", PasskeyError::BadEscape { at: 8 })]
    #[case::control_char("abcd\u{1}efgh", PasskeyError::NotPrintable { at: 4 })]
    #[case::non_ascii("abcdéfgh", PasskeyError::NotPrintable { at: 4 })]
    fn refuses(#[case] arg: &str, #[case] want: PasskeyError) {
        assert_eq!(Passkey::parse(arg), Err(want));
    }

    #[rstest]
    #[case(b"plain text".as_slice(), "plain text")]
    #[case(b"a\rb\nc\td\0".as_slice(), r"a\x0Db\x0Ac\x09d\x00")]
    #[case(b"\xff\x7f".as_slice(), r"\xFF\x7F")]
    fn renders_non_printables_as_hex(#[case] bytes: &[u8], #[case] want: &str) {
        assert_eq!(render(bytes), want);
    }

    #[test]
    fn empty_clears() {
        assert_eq!(Passkey::parse("").map(|p| p.0), Ok(alloc::vec![]));
    }
}

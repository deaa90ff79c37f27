//! The opening handshake (RFC 6455 §4.2): checks the upgrade headers of a client's request
//! and builds the server's `101 Switching Protocols` answer.
//!
//! The HTTP server parses the request; this module sees only its header fields, so it works
//! with any request parser. The method and path are the router's business.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use sha1::{Digest, Sha1};

/// The GUID the key is hashed with (§1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The one protocol version the server speaks (§4.4).
pub const VERSION: &str = "13";

/// Why an upgrade request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Upgrade: websocket`.
    NoUpgrade,
    /// `Connection` does not name the `Upgrade` token.
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` missing or not 13: answered 426 with the version the server
    /// speaks (§4.4).
    Version,
    /// `Sec-WebSocket-Key` missing, repeated, or not the base64 of 16 bytes.
    Key,
}

impl HandshakeError {
    /// The HTTP status the server answers with.
    pub const fn status(self) -> u16 {
        match self {
            HandshakeError::Version => 426,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::NoUpgrade => "no Upgrade: websocket",
            HandshakeError::NoConnectionUpgrade => "no Connection: Upgrade",
            HandshakeError::Version => "unsupported Sec-WebSocket-Version",
            HandshakeError::Key => "invalid Sec-WebSocket-Key",
        })
    }
}

/// A valid upgrade request: what the server answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Accept`.
    pub accept: String,
}

impl Upgrade {
    /// The `101 Switching Protocols` response (no subprotocol, no extension).
    pub fn response(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
        out.extend_from_slice(b"Sec-WebSocket-Accept: ");
        out.extend_from_slice(self.accept.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out
    }
}

/// Whether a request asks for a WebSocket at all (`Upgrade: websocket`): the router sends
/// such a request to [`check`], anything else to plain HTTP.
pub fn wants_upgrade<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> bool {
    headers
        .into_iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("upgrade") && has_token(value, "websocket"))
}

/// Checks the upgrade headers of a request (names case-insensitive, `Upgrade` and
/// `Connection` as comma-separated token lists).
pub fn check<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Upgrade, HandshakeError> {
    let (mut upgrade, mut connection, mut version) = (false, false, false);
    let mut key: Option<&[u8]> = None;
    let mut keys = 0;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = trim(value) == VERSION.as_bytes();
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(trim(value));
            keys += 1;
        }
    }
    if !upgrade {
        return Err(HandshakeError::NoUpgrade);
    }
    if !connection {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if !version {
        return Err(HandshakeError::Version);
    }
    match key {
        Some(key) if keys == 1 && valid_key(key) => Ok(Upgrade { accept: accept_key(key) }),
        _ => Err(HandshakeError::Key),
    }
}

/// `Sec-WebSocket-Accept` for a key: base64 of the SHA-1 of the key and the GUID (§4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64(&sha.finalize())
}

/// Whether a key is the base64 of 16 bytes (§4.1: 22 characters, the last of which leaves
/// no bits over, then `==`).
fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|b| BASE64.contains(b))
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &value[start..end]
}

/// Whether a comma-separated list holds `token` (ignoring case).
fn has_token(value: &[u8], token: &str) -> bool {
    value.split(|b| *b == b',').any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (only the 20 bytes of a digest are ever encoded here).
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn headers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static [u8])> {
        extra.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    }

    #[test]
    fn rfc_example_accept() {
        // RFC 6455 §1.3.
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[rstest]
    #[case(b"", "")]
    #[case(b"f", "Zg==")]
    #[case(b"fo", "Zm8=")]
    #[case(b"foo", "Zm9v")]
    #[case(b"foobar", "Zm9vYmFy")]
    fn base64_rfc4648_vectors(#[case] bytes: &[u8], #[case] want: &str) {
        assert_eq!(base64(bytes), want);
    }

    #[test]
    fn a_browser_request_upgrades() {
        let h = headers(&[
            ("Host", "10.77.0.10"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Origin", "http://10.77.0.10"),
            ("Sec-WebSocket-Version", "13"),
        ]);
        assert!(wants_upgrade(h.iter().copied()));
        let up = check(h).expect("upgrades");
        assert_eq!(
            up.response(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[rstest]
    #[case::no_upgrade(&[("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")], HandshakeError::NoUpgrade)]
    #[case::upgrade_other(&[("Upgrade", "h2c"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")], HandshakeError::NoUpgrade)]
    #[case::no_connection(&[("Upgrade", "WebSocket"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")], HandshakeError::NoConnectionUpgrade)]
    #[case::version_8(&[("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-version", "8"), ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")], HandshakeError::Version)]
    #[case::no_version(&[("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")], HandshakeError::Version)]
    #[case::no_key(&[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")], HandshakeError::Key)]
    #[case::short_key(&[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZQ==")], HandshakeError::Key)]
    #[case::key_bits_over(&[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZR==")], HandshakeError::Key)]
    #[case::two_keys(&[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")], HandshakeError::Key)]
    fn refuses(#[case] h: &[(&'static str, &'static str)], #[case] want: HandshakeError) {
        assert_eq!(check(headers(h)), Err(want));
        assert_eq!(want.status(), if want == HandshakeError::Version { 426 } else { 400 });
    }
}

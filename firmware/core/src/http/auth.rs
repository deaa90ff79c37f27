//! HTTP Basic credentials (`Authorization: Basic base64(user:password)`) and base64.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Encodes bytes as standard base64 (with padding).
pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 (with padding); `None` for anything else.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Whether an `Authorization` header value carries exactly these credentials. The scheme
/// name is matched without regard to case (RFC 7617); anything malformed is no match.
pub fn basic_matches(header: &[u8], username: &str, password: &str) -> bool {
    let Some(space) = header.iter().position(|b| *b == b' ') else { return false };
    let (scheme, rest) = header.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return false;
    }
    let token = rest.trim_ascii();
    let Some(decoded) = base64_decode(token) else { return false };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else { return false };
    let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
    user == username.as_bytes() && pass == password.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("Basic YWRtaW46c2VjcmV0", true)] // admin:secret
    #[case("basic YWRtaW46c2VjcmV0", true)]
    #[case("Basic   YWRtaW46c2VjcmV0  ", true)]
    #[case("Basic YWRtaW46d3Jvbmc=", false)] // admin:wrong
    #[case("Basic b3RoZXI6c2VjcmV0", false)] // other:secret
    #[case("Basic YWRtaW5zZWNyZXQ=", false)] // adminsecret: no colon
    #[case("Basic !!!!", false)]
    #[case("Bearer YWRtaW46c2VjcmV0", false)]
    #[case("Basic", false)]
    #[case("", false)]
    fn basic(#[case] header: &str, #[case] want: bool) {
        assert_eq!(basic_matches(header.as_bytes(), "admin", "secret"), want);
    }

    #[test]
    fn a_password_may_hold_a_colon() {
        let header = alloc::format!("Basic {}", base64_encode(b"admin:a:b"));
        assert!(basic_matches(header.as_bytes(), "admin", "a:b"));
    }

    #[rstest]
    #[case(b"", "")]
    #[case(b"ver", "dmVy")]
    #[case(b"get wlan.ssid", "Z2V0IHdsYW4uc3NpZA==")]
    fn base64_round_trip(#[case] bytes: &[u8], #[case] text: &str) {
        assert_eq!(base64_encode(bytes), text);
        assert_eq!(base64_decode(text.as_bytes()).as_deref(), Some(bytes));
    }

    #[rstest]
    #[case("dmVy=")]
    #[case("d")]
    #[case("dm!y")]
    fn bad_base64(#[case] text: &str) {
        assert_eq!(base64_decode(text.as_bytes()), None);
    }
}

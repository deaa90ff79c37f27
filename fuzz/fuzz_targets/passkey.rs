//! Arbitrary text as a passkey argument.
//!
//! Checked:
//! * `Passkey::parse` never panics;
//! * an accepted value is empty, a passphrase whose decoded length is 8 to 63, or a PSK of
//!   exactly 64 hex characters (kept as typed);
//! * `render` prints only printable ASCII, for accepted keys and for any bytes, and a PSK
//!   renders as typed;
//! * a passphrase without backslashes can be typed back as the getter printed it;
//! * a refused length really is outside 8 to 63.
#![no_main]

use gecko_core::passkey::{self, MAX_LEN, MIN_LEN, PSK_HEX_LEN, Passkey, PasskeyError};
use libfuzzer_sys::fuzz_target;

fn printable(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let lossy;
    let arg = match std::str::from_utf8(data) {
        Ok(arg) => arg,
        Err(_) => {
            lossy = String::from_utf8_lossy(data).into_owned();
            &lossy
        }
    };

    match Passkey::parse(arg) {
        Ok(key) => {
            let bytes = key.as_bytes();
            let is_hex_psk = bytes.len() == PSK_HEX_LEN && bytes.iter().all(u8::is_ascii_hexdigit);
            assert!(
                bytes.is_empty() || (MIN_LEN..=MAX_LEN).contains(&bytes.len()) || is_hex_psk,
                "accepted {arg:?} as {bytes:?}"
            );
            assert_eq!(bytes.is_empty(), arg.is_empty());
            assert_eq!(key.is_psk(), is_hex_psk);
            let shown = passkey::render(bytes);
            assert!(printable(&shown), "render gave {shown:?}");
            if key.is_psk() {
                assert_eq!(bytes, arg.as_bytes(), "a PSK is kept as typed");
                assert_eq!(shown, arg);
            } else if !bytes.is_empty() && !bytes.contains(&b'\\') {
                assert_eq!(
                    Passkey::parse(&shown).as_ref().map(Passkey::as_bytes),
                    Ok(bytes),
                    "the getter's {shown:?} does not read back"
                );
            }
        }
        Err(PasskeyError::Length { decoded }) => {
            assert!(!(MIN_LEN..=MAX_LEN).contains(&decoded), "refused length {decoded}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    assert!(printable(&passkey::render(data)));
});

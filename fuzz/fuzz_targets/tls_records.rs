//! Arbitrary bytes as one direction of a TLS connection, and as a capture of TCP segments.
//!
//! The first input byte is a control byte: its value + 1 is the chunk size the bytes are fed
//! in. Checked:
//! * nothing panics, whatever the bytes;
//! * what the reader yields does not depend on how the bytes are split: a second reader fed
//!   them all at once yields the same messages and stops with the same error;
//! * a stopped reader yields nothing more;
//! * the bytes as TCP segments of one connection (cut at the control byte's value) and as a
//!   ClientHello check of a spec table can be read without panicking.
#![no_main]

use std::time::{Duration, SystemTime};

use gecko_hil::capture::tls::{TlsReader, connections};
use gecko_hil::capture::{CapturedPacket, PacketExpect};
use libfuzzer_sys::fuzz_target;

/// An Ethernet + IPv4 + TCP frame from 10.77.0.77:40000 to 10.77.0.5:4433 carrying `payload`.
fn segment(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 5, 2, 0, 0, 0, 0, 0x4d, 0x08, 0x00];
    let total = u16::try_from(40 + payload.len()).unwrap_or(u16::MAX);
    f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 77, 10, 77, 0, 5]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&4433u16.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else { return };
    let chunk = usize::from(control) + 1;

    let mut split = TlsReader::new();
    let mut got = Vec::new();
    for c in bytes.chunks(chunk) {
        let stopped = split.error().is_some();
        let out = split.feed(c);
        assert!(!(stopped && !out.is_empty()), "a stopped reader yielded more");
        got.extend(out);
    }
    let mut whole = TlsReader::new();
    let all = whole.feed(bytes);
    assert_eq!(got, all, "chunking changed the messages");
    assert_eq!(split.error(), whole.error(), "chunking changed the error");

    let t0 = SystemTime::UNIX_EPOCH;
    let cut = usize::from(control).min(bytes.len());
    let packets = [
        CapturedPacket::new(t0, segment(1000, &bytes[..cut])),
        CapturedPacket::new(t0 + Duration::from_millis(1), segment(1000 + cut as u32, &bytes[cut..])),
        // A retransmission of all of it.
        CapturedPacket::new(t0 + Duration::from_millis(2), segment(1000, bytes)),
    ];
    let seen = connections(&packets);
    assert!(seen.iter().all(|s| s.packet < packets.len()));
    #[derive(serde::Deserialize)]
    struct T {
        e: PacketExpect,
    }
    let e = match toml::from_str::<T>(
        r#"e = { sequence = [{ tls = "client_hello", suites = "chapter", max_version = "1.2" }, { tls = "server_hello", suite = "0xC02F" }] }"#,
    ) {
        Ok(t) => t.e,
        Err(err) => panic!("the fuzz target's own expectation does not parse: {err}"),
    };
    let _ = e.check(&packets);
});

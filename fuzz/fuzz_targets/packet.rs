//! The harness's packet decoder on arbitrary bytes: it never panics, decoding is
//! deterministic, every summary renders, and the packet expectations of spec tables can be
//! checked against any capture without panicking.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use gecko_hil::capture::decode::{Body, decode};
use gecko_hil::capture::{CapturedPacket, PacketExpect};
use libfuzzer_sys::fuzz_target;

fn expectations() -> &'static [PacketExpect] {
    static PARSED: OnceLock<Vec<PacketExpect>> = OnceLock::new();
    PARSED.get_or_init(parse_expectations)
}

fn parse_expectations() -> Vec<PacketExpect> {
    #[derive(serde::Deserialize)]
    struct T {
        packets: Vec<PacketExpect>,
    }
    let text = r#"packets = [
        { sequence = [{ dhcp = "discover" }, { dhcp = "request", from_mac = "02:77:00:00:00:32" }] },
        { none = { dns_response = "lab-host.lab", rcode = "nxdomain" } },
        { gap = { first = { arp = "request" }, second = { icmp = "echo-request", to = "10.77.0.1" }, max_ms = 5 } },
        { count = { of = { tcp = "syn", port = 80 }, max = 0 } },
    ]"#;
    match toml::from_str::<T>(text) {
        Ok(t) => t.packets,
        Err(e) => panic!("the fuzz target's own expectations do not parse: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let first = decode(data);
    let second = decode(data);
    assert_eq!(first, second, "decoding is not deterministic");
    let summary = first.to_string();
    assert_eq!(summary, second.to_string());
    assert!(!summary.contains('\n'), "a summary is one line: {summary:?}");
    if let Body::Udp { payload } = &first.body {
        assert!(payload.len() <= data.len());
    }

    // The same bytes as a small capture (split at the first byte's value), checked against
    // expectations of every kind.
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let t0 = SystemTime::UNIX_EPOCH;
    let packets = [
        CapturedPacket::new(t0, data[..cut].to_vec()),
        CapturedPacket::new(t0 + Duration::from_millis(3), data[cut..].to_vec()),
        CapturedPacket::new(t0 + Duration::from_millis(4), data.to_vec()),
    ];
    for e in expectations() {
        let a = e.check(&packets);
        assert_eq!(a, e.check(&packets), "checking is not deterministic");
    }
});

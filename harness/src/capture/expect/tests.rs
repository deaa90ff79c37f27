//! Packet expectations: parsing from spec-table TOML, and checking against the lab capture.

use std::time::{Duration, SystemTime};

use rstest::rstest;
use serde::Deserialize;

use super::*;
use crate::capture::testdata::*;
use crate::capture::tests::hex;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    packets: Vec<PacketExpect>,
}

fn parse(toml_text: &str) -> Result<Vec<PacketExpect>, String> {
    toml::from_str::<Table>(toml_text).map(|t| t.packets).map_err(|e| e.message().to_string())
}

fn one(toml_text: &str) -> PacketExpect {
    let mut v = parse(&format!("packets = [{toml_text}]")).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn m(kind: MatchKind) -> PacketMatch {
    PacketMatch::new(kind)
}

/// The golden lab capture, one packet every 10 ms from t0.
fn lab() -> Vec<CapturedPacket> {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    ALL.iter()
        .enumerate()
        .map(|(i, (bytes, _))| {
            CapturedPacket::new(t0 + Duration::from_millis(10 * i as u64), hex(bytes))
        })
        .collect()
}

#[test]
fn the_documented_table_parses() {
    let doc = include_str!("../expect.rs");
    let toml_text: String = doc
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| l.strip_prefix("//!").unwrap_or(l).trim_start_matches(' '))
        .collect::<Vec<_>>()
        .join("\n");
    let v = parse(&toml_text).unwrap();
    assert_eq!(v.len(), 4);
    assert_eq!(
        v[0],
        PacketExpect::Sequence(vec![
            m(MatchKind::Dhcp(DhcpKind::Discover)),
            m(MatchKind::Dhcp(DhcpKind::Offer)),
            m(MatchKind::Dhcp(DhcpKind::Request)),
            m(MatchKind::Dhcp(DhcpKind::Ack)),
        ])
    );
    assert_eq!(
        v[2],
        PacketExpect::Gap {
            first: m(MatchKind::Dhcp(DhcpKind::Discover)),
            second: m(MatchKind::Dhcp(DhcpKind::Request)),
            min_ms: None,
            max_ms: Some(2000),
        }
    );
    for e in &v {
        // The documented table holds for the lab capture.
        e.check(&lab()).unwrap();
    }
}

#[test]
fn qualifiers_parse() {
    let e = one(
        r#"{ none = { dns_response = "Lab-Host.lab.", rcode = "nxdomain", qtype = "a", port = 53 } }"#,
    );
    let PacketExpect::None(pm) = e else { panic!() };
    assert_eq!(pm.kind, MatchKind::DnsResponse("lab-host.lab".into()));
    assert_eq!((pm.rcode, pm.qtype, pm.port), (Some(Rcode::NXDOMAIN), Some(1), Some(53)));

    let e = one(
        r#"{ sequence = [{ icmp = "echo-request", to = "10.77.0.1", from = "10.77.0.77", from_mac = "02:77:00:00:00:32" }] }"#,
    );
    let PacketExpect::Sequence(v) = e else { panic!() };
    assert_eq!(v[0].dst, Some("10.77.0.1".parse().unwrap()));
    assert_eq!(v[0].src, Some("10.77.0.77".parse().unwrap()));
    assert_eq!(v[0].from_mac, Some("02:77:00:00:00:32".parse().unwrap()));
    assert_eq!(
        v[0].to_string(),
        r#"{ icmp = "echo-request", from_mac = "02:77:00:00:00:32", src = "10.77.0.77", dst = "10.77.0.1" }"#
    );
}

#[rstest]
#[case::unknown_key(r#"{ none = { dhcp = "ack", colour = "red" } }"#, "unknown field `colour`")]
#[case::no_kind(r#"{ none = { src = "10.77.0.1" } }"#, "a packet match needs one of dhcp")]
#[case::two_kinds(r#"{ none = { dhcp = "ack", arp = "request" } }"#, "only one of")]
#[case::bad_dhcp(r#"{ none = { dhcp = "acknowledge" } }"#, "unknown variant `acknowledge`")]
#[case::bad_icmp(r#"{ none = { icmp = "echo_request" } }"#, "unknown variant `echo_request`")]
#[case::rcode_on_query(
    r#"{ none = { dns_query = "a.lab", rcode = "nxdomain" } }"#,
    "rcode applies to dns_response only"
)]
#[case::port_on_arp(r#"{ none = { arp = "request", port = 1 } }"#, "port applies to")]
#[case::hostname_on_dns(
    r#"{ none = { dns_query = "a.lab", hostname = "x" } }"#,
    "hostname applies to dhcp only"
)]
#[case::bad_ip(r#"{ none = { arp = "request", dst = "10.77.0" } }"#, "invalid IPv4 address")]
#[case::bad_mac(r#"{ none = { arp = "request", from_mac = "02:77" } }"#, "is not a MAC address")]
#[case::bad_qtype(
    r#"{ none = { dns_query = "a.lab", qtype = "AXFRX" } }"#,
    "qtype \"AXFRX\" unknown"
)]
#[case::unknown_expect(r#"{ sometimes = { dhcp = "ack" } }"#, "unknown variant `sometimes`")]
#[case::gap_unbounded(
    r#"{ gap = { first = { dhcp = "discover" }, second = { dhcp = "offer" } } }"#,
    "gap: give at least one of min and max"
)]
#[case::gap_inverted(r#"{ gap = { first = { dhcp = "discover" }, second = { dhcp = "offer" }, min_ms = 5, max_ms = 1 } }"#, "gap: min 5 is above max 1")]
#[case::gap_unknown(
    r#"{ gap = { first = { dhcp = "discover" }, second = { dhcp = "offer" }, max = 1 } }"#,
    "unexpected keys in table: max"
)]
#[case::empty_sequence(r#"{ sequence = [] }"#, "sequence: give at least one packet")]
#[case::count_unbounded(
    r#"{ count = { of = { dhcp = "ack" } } }"#,
    "count: give at least one of min and max"
)]
fn bad_tables_are_rejected(#[case] text: &str, #[case] needle: &str) {
    let err = parse(&format!("packets = [{text}]")).unwrap_err();
    assert!(err.contains(needle), "{err}");
}

fn ok(text: &str) {
    if let Err(e) = one(text).check(&lab()) {
        panic!("{text}: {e}");
    }
}

fn fails(text: &str) -> String {
    one(text).check(&lab()).expect_err(text)
}

#[rstest]
#[case::dora(r#"{ sequence = [{ dhcp = "discover" }, { dhcp = "offer" }, { dhcp = "request" }, { dhcp = "ack" }] }"#)]
#[case::dhcp_fields(r#"{ sequence = [{ dhcp = "request", requested_ip = "10.77.0.77", server_id = "10.77.0.1", hostname = "gecko-module", from_mac = "02:77:00:00:00:32" }, { dhcp = "ack", yiaddr = "10.77.0.77" }] }"#)]
#[case::dns(r#"{ sequence = [{ dns_query = "lab-host.lab", qtype = "A" }, { dns_response = "LAB-HOST.lab", rcode = "noerror", qtype = "A" }] }"#)]
#[case::nx(r#"{ sequence = [{ dns_response = "nope.lab", rcode = "nxdomain" }] }"#)]
#[case::arp(r#"{ sequence = [{ arp = "request", dst = "10.77.0.1" }, { arp = "reply", src = "10.77.0.1" }] }"#)]
#[case::ping(r#"{ sequence = [{ icmp = "echo-request", to = "10.77.0.1" }, { icmp = "echo-reply", to = "10.77.0.77" }] }"#)]
#[case::tcp(r#"{ sequence = [{ tcp = "syn", port = 80 }, { tcp = "rst" }] }"#)]
#[case::udp(r#"{ count = { of = { udp = "any", port = 53 }, min = 8, max = 8 } }"#)]
#[case::no_evil(r#"{ none = { dns_query = "evil.lab" } }"#)]
#[case::no_nak(r#"{ none = { dhcp = "nak" } }"#)]
#[case::no_syn_ack(r#"{ none = { tcp = "syn-ack" } }"#)]
#[case::gap(r#"{ gap = { first = { dhcp = "discover" }, second = { dhcp = "request" }, min_ms = 20, max_ms = 20 } }"#)]
#[case::count(r#"{ count = { of = { arp = "request" }, min = 2 } }"#)]
fn expectations_that_hold(#[case] text: &str) {
    ok(text);
}

#[test]
fn a_missing_packet_lists_what_was_seen() {
    let msg =
        fails(r#"{ sequence = [{ dhcp = "discover" }, { dhcp = "ack" }, { dhcp = "offer" }] }"#);
    assert_eq!(
        msg,
        "expected packet { dhcp = \"offer\" } after { dhcp = \"discover\" } (#1 at +0.0 ms), \
         then { dhcp = \"ack\" } (#4 at +30.0 ms), not seen; seen instead (4 of 19 packets):\n  \
         #1 +0.0 ms DHCP DISCOVER 0.0.0.0:68 > 255.255.255.255:67 client 02:77:00:00:00:32 xid 0xcf4ae763 hostname \"gecko-module\"\n  \
         #2 +10.0 ms DHCP OFFER 10.77.0.1:67 > 10.77.0.77:68 client 02:77:00:00:00:32 xid 0xcf4ae763 yiaddr 10.77.0.77 server 10.77.0.1\n  \
         #3 +20.0 ms DHCP REQUEST 0.0.0.0:68 > 255.255.255.255:67 client 02:77:00:00:00:32 xid 0xcf4ae763 requested 10.77.0.77 server 10.77.0.1 hostname \"gecko-module\"\n  \
         #4 +30.0 ms DHCP ACK 10.77.0.1:67 > 10.77.0.77:68 client 02:77:00:00:00:32 xid 0xcf4ae763 yiaddr 10.77.0.77 server 10.77.0.1 hostname \"gecko-module\""
    );
}

#[rstest]
#[case::wrong_rcode(
    r#"{ sequence = [{ dns_response = "lab-host.lab", rcode = "nxdomain", qtype = "A" }] }"#,
    "seen instead (8 of 19 packets)"
)]
#[case::other_protocol(r#"{ sequence = [{ dhcp = "release" }] }"#, "#4 +30.0 ms DHCP ACK")]
#[case::nothing_of_it(r#"{ sequence = [{ tcp = "fin" }] }"#, "seen instead (2 of 19 packets)")]
#[case::no_nx(
    r#"{ none = { dns_response = "nope.lab", rcode = "nxdomain" } }"#,
    "seen #13 at +120.0 ms: DNS response A nope.lab NXDOMAIN"
)]
#[case::gap_too_long(
    r#"{ gap = { first = { dhcp = "discover" }, second = { dhcp = "ack" }, max_ms = 25 } }"#,
    "was 30.0 ms, expected at most 25 ms"
)]
#[case::gap_too_short(
    r#"{ gap = { first = { arp = "request" }, second = { arp = "reply" }, min_ms = 100 } }"#,
    "was 10.0 ms, expected at least 100 ms"
)]
#[case::gap_second_missing(
    r#"{ gap = { first = { tcp = "syn" }, second = { tcp = "syn-ack" }, max_ms = 100 } }"#,
    "gap: expected packet { tcp = \"syn-ack\" } after { tcp = \"syn\" } (#17 at +160.0 ms), not seen"
)]
#[case::count_high(
    r#"{ count = { of = { arp = "request" }, max = 1 } }"#,
    "expected at most 1 packets { arp = \"request\" }, seen 2:\n  #5"
)]
#[case::count_zero(
    r#"{ count = { of = { icmp = "unreachable" }, min = 1, max = 1 } }"#,
    "expected exactly 1 packets { icmp = \"unreachable\" }, seen 0; seen instead (2 of 19"
)]
#[case::wrong_mac(
    r#"{ sequence = [{ arp = "request", from_mac = "02:77:00:00:00:99" }] }"#,
    "seen instead (3 of 19 packets)"
)]
fn expectations_that_fail(#[case] text: &str, #[case] needle: &str) {
    let msg = fails(text);
    assert!(msg.contains(needle), "{msg}");
}

#[test]
fn an_empty_capture_says_so() {
    let e = one(r#"{ sequence = [{ dhcp = "discover" }] }"#);
    let msg = e.check(&[]).unwrap_err();
    assert_eq!(msg, "expected packet { dhcp = \"discover\" }, not seen; no packet was captured");
    assert!(one(r#"{ none = { dhcp = "discover" } }"#).check(&[]).is_ok());
}

#[test]
fn long_lists_are_cut() {
    let many: Vec<CapturedPacket> = (0..25).flat_map(|_| lab()).collect();
    let msg = one(r#"{ sequence = [{ dhcp = "inform" }] }"#).check(&many).unwrap_err();
    assert!(msg.ends_with("\n  … and 90 more"), "{msg}");
    assert_eq!(msg.lines().count(), 1 + 10 + 1);
}

// --- TLS hellos, on an OpenSSL handshake ---------------------------------------------------

#[rstest]
#[case::chapter_suites(r#"{ sequence = [{ tls = "client_hello", dst = "127.0.0.1", port = 14434, suites = "chapter", max_version = "1.2", sni = "lab-host.lab" }, { tls = "server_hello", suite = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", version = "1.2" }] }"#, None)]
#[case::by_number(
    r#"{ count = { of = { tls = "server_hello", suite = "0xc02b" }, min = 1, max = 1 } }"#,
    None
)]
#[case::not_offered(
    r#"{ sequence = [{ tls = "client_hello", suites = ["0xC02F"] }] }"#,
    Some(
        "expected packet { tls = \"client_hello\", suites = [\"0xC02F\"] }, not seen; seen instead (2 of 7 packets):\n  #4 +3.0 ms TCP 127.0.0.1:43840 > 127.0.0.1:14434 [PSH,ACK] seq"
    )
)]
#[case::other_suite(
    r#"{ sequence = [{ tls = "server_hello", suite = "0xC02F" }] }"#,
    Some("| TLS ServerHello version 1.2 suite 0xC02B TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
)]
#[case::tls13(r#"{ none = { tls = "client_hello", max_version = "1.3" } }"#, None)]
#[case::hello_seen(
    r#"{ none = { tls = "client_hello" } }"#,
    Some("expected no packet { tls = \"client_hello\" }, seen #4 at +3.0 ms")
)]
fn expectations_on_the_openssl_handshake(#[case] text: &str, #[case] error: Option<&str>) {
    #[derive(serde::Deserialize)]
    struct T {
        e: PacketExpect,
    }
    let e = toml::from_str::<T>(&format!("e = {text}")).unwrap().e;
    match (e.check(&crate::capture::tls::testdata::packets()), error) {
        (Ok(()), None) => {}
        (Err(got), Some(want)) => assert!(got.contains(want), "{got}"),
        (got, want) => panic!("{text}: got {got:?}, wanted an error containing {want:?}"),
    }
}

#[rstest]
#[case::suites_on_server_hello(
    r#"{ tls = "server_hello", suites = "chapter" }"#,
    "suites applies to tls = \"client_hello\" only"
)]
#[case::suite_on_client_hello(
    r#"{ tls = "client_hello", suite = "0xC02F" }"#,
    "suite applies to tls = \"server_hello\" only"
)]
#[case::unknown_set(
    r#"{ tls = "client_hello", suites = "all" }"#,
    "suites = \"all\": write \"chapter\""
)]
#[case::unknown_suite(
    r#"{ tls = "client_hello", suites = ["TLS_FOO"] }"#,
    "cipher suite \"TLS_FOO\" unknown"
)]
#[case::empty_list(r#"{ tls = "client_hello", suites = [] }"#, "give at least one suite")]
#[case::bad_version(r#"{ tls = "server_hello", version = "2" }"#, "TLS version \"2\" unknown")]
#[case::bad_kind(r#"{ tls = "finished" }"#, "unknown variant")]
#[case::sni_on_tcp(r#"{ tcp = "syn", sni = "x" }"#, "sni applies to tls = \"client_hello\" only")]
fn bad_tls_matches_are_refused(#[case] text: &str, #[case] error: &str) {
    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[allow(dead_code)] // read by Debug on failure only
        m: crate::capture::PacketMatch,
    }
    let e = toml::from_str::<T>(&format!("m = {text}")).unwrap_err();
    assert!(e.to_string().contains(error), "{text}: {e}");
}

//! Tests of the decoder (golden bytes from a real lab capture, truncations, malformed input)
//! and of the live capture (on `lo`, as root).

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rstest::rstest;

use super::decode::*;
use super::testdata::*;
use super::*;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub(crate) const CLIENT: Mac = Mac([0x02, 0x77, 0, 0, 0, 0x32]);
const ROUTER_MAC: Mac = Mac([0x02, 0x77, 0, 0, 0, 0x01]);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const LEASED: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 77);

fn dhcp_of(bytes: &[u8]) -> Dhcp<'_> {
    match decode(bytes).body {
        Body::Dhcp(d) => d,
        other => panic!("not DHCP: {other:?}"),
    }
}

#[rstest]
#[case::discover(DHCP_DISCOVER, DhcpType::Discover, Ipv4Addr::UNSPECIFIED, None, None)]
#[case::offer(DHCP_OFFER, DhcpType::Offer, LEASED, None, Some(ROUTER))]
#[case::request(DHCP_REQUEST, DhcpType::Request, Ipv4Addr::UNSPECIFIED, Some(LEASED), Some(ROUTER))]
#[case::ack(DHCP_ACK, DhcpType::Ack, LEASED, None, Some(ROUTER))]
fn dhcp_golden(
    #[case] bytes: &str,
    #[case] kind: DhcpType,
    #[case] yiaddr: Ipv4Addr,
    #[case] requested: Option<Ipv4Addr>,
    #[case] server: Option<Ipv4Addr>,
) {
    let bytes = hex(bytes);
    let d = dhcp_of(&bytes);
    assert_eq!(d.message_type, Some(kind));
    assert_eq!(d.client_mac, CLIENT);
    assert_eq!(d.xid, 0xcf4a_e763);
    assert_eq!(d.yiaddr, yiaddr);
    assert_eq!(d.requested_ip, requested);
    assert_eq!(d.server_id, server);
    assert_eq!(d.op, if matches!(kind, DhcpType::Offer | DhcpType::Ack) { 2 } else { 1 });
    let f = decode(&bytes);
    assert_eq!(f.ports.map(|(s, _)| s), Some(if d.op == 1 { 68 } else { 67 }));
}

#[test]
fn dhcp_options() {
    let discover = hex(DHCP_DISCOVER);
    assert_eq!(dhcp_of(&discover).hostname.as_deref(), Some("gecko-module"));
    let offer = hex(DHCP_OFFER);
    // udhcpc reported "lease time 43200" (dnsmasq's 12h).
    assert_eq!(dhcp_of(&offer).lease_time, Some(43_200));
    let f = decode(&discover);
    assert_eq!(f.eth.unwrap().dst, Mac::BROADCAST);
    assert_eq!(f.ip.unwrap().dst, Ipv4Addr::BROADCAST);
}

#[rstest]
#[case::request(ARP_REQUEST, ArpOp::Request, CLIENT, LEASED, ROUTER)]
#[case::reply(ARP_REPLY, ArpOp::Reply, ROUTER_MAC, ROUTER, LEASED)]
#[case::from_router(ARP_REQUEST_FROM_ROUTER, ArpOp::Request, ROUTER_MAC, ROUTER, LEASED)]
fn arp_golden(
    #[case] bytes: &str,
    #[case] op: ArpOp,
    #[case] sender_mac: Mac,
    #[case] sender_ip: Ipv4Addr,
    #[case] target_ip: Ipv4Addr,
) {
    let bytes = hex(bytes);
    let Body::Arp(a) = decode(&bytes).body else { panic!("not ARP") };
    assert_eq!(
        (a.op, a.sender_mac, a.sender_ip, a.target_ip),
        (op, sender_mac, sender_ip, target_ip)
    );
}

#[rstest]
#[case::query_a(DNS_QUERY_A, 0x2d06, false, "lab-host.lab", 1, Rcode::NOERROR, &[])]
#[case::query_aaaa(DNS_QUERY_AAAA, 0x4634, false, "lab-host.lab", 28, Rcode::NOERROR, &[])]
#[case::response_a(DNS_RESPONSE_A, 0x2d06, true, "lab-host.lab", 1, Rcode::NOERROR, &[Ipv4Addr::new(10, 77, 0, 10)])]
#[case::response_aaaa(DNS_RESPONSE_AAAA_NX, 0x4634, true, "lab-host.lab", 28, Rcode::NXDOMAIN, &[])]
#[case::nope(DNS_RESPONSE_NOPE_NX, 0x29b2, true, "nope.lab", 1, Rcode::NXDOMAIN, &[])]
fn dns_golden(
    #[case] bytes: &str,
    #[case] id: u16,
    #[case] response: bool,
    #[case] name: &str,
    #[case] qtype: u16,
    #[case] rcode: Rcode,
    #[case] answers: &[Ipv4Addr],
) {
    let bytes = hex(bytes);
    let Body::Dns(d) = decode(&bytes).body else { panic!("not DNS") };
    assert_eq!((d.id, d.response, d.rcode, d.opcode), (id, response, rcode, 0));
    assert_eq!(d.question, Some(Question { name: name.into(), qtype }));
    assert_eq!(d.a_answers, answers);
}

#[rstest]
#[case::request(ICMP_ECHO_REQUEST, LEASED, ROUTER, true)]
#[case::reply(ICMP_ECHO_REPLY, ROUTER, LEASED, false)]
fn icmp_golden(
    #[case] bytes: &str,
    #[case] src: Ipv4Addr,
    #[case] dst: Ipv4Addr,
    #[case] req: bool,
) {
    let bytes = hex(bytes);
    let f = decode(&bytes);
    let ip = f.ip.unwrap();
    assert_eq!((ip.src, ip.dst, ip.protocol), (src, dst, 1));
    let want = if req {
        Icmp::EchoRequest { id: 30671, seq: 0 }
    } else {
        Icmp::EchoReply { id: 30671, seq: 0 }
    };
    assert_eq!(f.body, Body::Icmp(want));
}

#[rstest]
#[case::syn(TCP_SYN, (38794, 80), TcpFlags::SYN)]
#[case::rst_ack(TCP_RST_ACK, (80, 38794), TcpFlags::RST | TcpFlags::ACK)]
fn tcp_golden(#[case] bytes: &str, #[case] ports: (u16, u16), #[case] flags: u8) {
    let bytes = hex(bytes);
    let f = decode(&bytes);
    assert_eq!(f.ports, Some(ports));
    let Body::Tcp(t) = f.body else { panic!("not TCP") };
    assert_eq!(t.flags, TcpFlags(flags));
    assert_eq!(t.payload_len, 0);
}

#[test]
fn golden_summaries() {
    for (bytes, summary) in ALL {
        assert_eq!(decode(&hex(bytes)).to_string(), summary);
    }
}

#[test]
fn golden_pcap_file_holds_the_same_packets() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/capture/testdata/lab.pcap");
    let mut file = pcap::Capture::from_file(&path).unwrap();
    let mut n = 0;
    while let Ok(p) = file.next_packet() {
        assert_eq!(p.data, hex(ALL[n].0), "packet {n}");
        n += 1;
    }
    assert_eq!(n, ALL.len());
}

/// Every prefix of every golden packet decodes without panic, deterministically; a prefix
/// that cuts into a layer is undecodable (never a wrong value).
#[test]
fn truncated_packets_are_undecodable_not_panics() {
    for (bytes, _) in ALL {
        let bytes = hex(bytes);
        for len in 0..bytes.len() {
            let f = decode(&bytes[..len]);
            assert_eq!(f, decode(&bytes[..len]));
            let _ = f.to_string();
            // An ARP frame here is padded past its 42 bytes, the others end with their last layer.
            let arp_done = matches!(f.body, Body::Arp(_)) && len >= 42;
            if !arp_done {
                assert!(
                    matches!(f.body, Body::Undecodable { .. }),
                    "{len} of {} bytes: {f:?}",
                    bytes.len()
                );
            }
        }
    }
}

fn undecodable(bytes: &[u8]) -> String {
    match decode(bytes).body {
        Body::Undecodable { reason } => reason.to_string(),
        other => panic!("decoded: {other:?}"),
    }
}

/// The DNS response for lab-host.lab with its first byte of UDP payload at `DNS_AT`.
const DNS_AT: usize = 14 + 20 + 8;

#[test]
fn malformed_packets_say_why() {
    assert_eq!(undecodable(&[0; 5]), "Ethernet: truncated (5 bytes, needs 6)");

    let mut ip = hex(ICMP_ECHO_REQUEST);
    ip[14] = 0x43; // IHL 3 words
    assert_eq!(undecodable(&ip), "IPv4: header length 12 < 20");
    ip[14] = 0x65; // version 6
    assert_eq!(undecodable(&ip), "IPv4: version 6 in an IPv4 EtherType");

    let mut udp = hex(DNS_QUERY_A);
    udp[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&[0, 4]);
    assert_eq!(undecodable(&udp), "UDP: length 4 < 8");

    let mut arp = hex(ARP_REQUEST);
    arp[14 + 5] = 16; // plen
    assert!(undecodable(&arp).starts_with("ARP: not Ethernet/IPv4"));

    // A compression pointer to itself.
    let mut dns = hex(DNS_QUERY_A);
    dns[DNS_AT + 12] = 0xc0;
    dns[DNS_AT + 13] = 12;
    assert_eq!(undecodable(&dns), "DNS name: compression loop");

    // A DHCP option running past the end.
    let mut dhcp = hex(DHCP_DISCOVER);
    let opts = 14 + 20 + 8 + 240;
    dhcp[opts + 1] = 200;
    assert_eq!(undecodable(&dhcp), "DHCP: option 53 of length 200 runs past the end");
}

#[test]
fn other_protocols_are_described() {
    let mut v6 = hex(ICMP_ECHO_REQUEST);
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(decode(&v6).body, Body::Other("IPv6".into()));

    let mut gre = hex(ICMP_ECHO_REQUEST);
    gre[14 + 9] = 47;
    assert_eq!(decode(&gre).body, Body::Other("IP protocol 47".into()));
    assert_eq!(decode(&gre).to_string(), "IP protocol 47 10.77.0.77 > 10.77.0.1");

    let mut frag = hex(ICMP_ECHO_REQUEST);
    frag[14 + 6] = 0x20; // more fragments
    assert_eq!(decode(&frag).body, Body::Other("IPv4 fragment (protocol 1, offset 0)".into()));

    // Plain UDP elsewhere, with Ethernet padding after the datagram.
    let mut udp = hex(DNS_QUERY_A);
    udp[14 + 20..14 + 20 + 4].copy_from_slice(&[0x13, 0x88, 0x13, 0x89]);
    udp.extend_from_slice(&[0xee; 10]);
    let f = decode(&udp);
    assert_eq!(f.ports, Some((5000, 5001)));
    let Body::Udp { payload } = f.body else { panic!("{f:?}") };
    assert_eq!(payload.len(), udp.len() - 10 - DNS_AT);
}

#[test]
fn vlan_tagged_frames_are_looked_into() {
    let plain = hex(ARP_REQUEST);
    let mut tagged = plain[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    tagged.extend_from_slice(&plain[12..]);
    assert_eq!(decode(&tagged).body, decode(&plain).body);
}

#[rstest]
#[case("02:77:00:00:00:32", Ok(CLIENT))]
#[case("02-77-00-00-00-32", Ok(CLIENT))]
#[case("02:77:00:00:00", Err(()))]
#[case("02:77:00:00:00:32:00", Err(()))]
#[case("02:77:00:00:00:3g", Err(()))]
#[case("2:77:00:00:00:32", Err(()))]
fn mac_parses(#[case] text: &str, #[case] want: Result<Mac, ()>) {
    assert_eq!(text.parse::<Mac>().map_err(|_| ()), want);
    if let Ok(m) = want {
        assert_eq!(m.to_string(), "02:77:00:00:00:32");
    }
}

#[rstest]
#[case("passkeys/ascii/min-length", "captures/passkeys__ascii__min-length.pcap")]
#[case("dhcp/lease renew", "captures/dhcp__lease_renew.pcap")]
#[case("../etc", "captures/..__etc.pcap")]
fn capture_file_names(#[case] id: &str, #[case] want: &str) {
    assert_eq!(capture_file_name(id), want);
}

#[test]
fn timeline_events_are_relative_to_the_case_start() {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let packets = [
        CapturedPacket::new(start - Duration::from_millis(2), hex(ARP_REQUEST)),
        CapturedPacket::new(start + Duration::from_micros(12_500), hex(ARP_REPLY)),
    ];
    let events = timeline_events(&packets, start);
    assert_eq!(events.len(), 2);
    assert!((events[0].t_ms + 2.0).abs() < 1e-9);
    assert!((events[1].t_ms - 12.5).abs() < 1e-9);
    assert_eq!(events[1].lane, crate::model::Lane::Packet);
    assert_eq!(events[1].text, "ARP reply 10.77.0.1 is-at 02:77:00:00:00:01 to 10.77.0.77");
}

#[test]
fn a_missing_namespace_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("no-such-netns");
    let err = Capture::start(Some(&ns), "lo", &dir.path().join("x.pcap")).unwrap_err();
    assert!(matches!(err, CaptureError::Namespace { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-netns"), "{err}");

    // A file that is not a namespace.
    let not_ns = dir.path().join("plain");
    std::fs::write(&not_ns, "").unwrap();
    let err = Capture::start(Some(&not_ns), "lo", &dir.path().join("x.pcap")).unwrap_err();
    assert!(matches!(err, CaptureError::Setns { .. }), "{err:?}");
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn a_missing_interface_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Capture::start(None, "gecko-nope0", &dir.path().join("x.pcap")).unwrap_err();
    if is_root() {
        assert!(matches!(err, CaptureError::NoSuchInterface { .. }), "{err:?}");
        assert!(err.to_string().starts_with("no such interface \"gecko-nope0\""), "{err}");
    } else {
        // Without privileges libpcap refuses before it looks for the interface.
        assert!(matches!(err, CaptureError::NotPermitted { .. }), "{err:?}");
        assert!(err.to_string().contains("needs root or CAP_NET_RAW"), "{err}");
    }
}

#[test]
fn loopback_capture_sees_a_udp_datagram() {
    if !is_root() {
        println!(
            "SKIPPED loopback_capture_sees_a_udp_datagram: live capture needs root or \
             CAP_NET_RAW, and this test runs as uid {}",
            nix::unistd::geteuid()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lo.pcap");
    let before = SystemTime::now();
    let cap = Capture::start(None, "lo", &file).unwrap();
    assert_eq!(cap.interface(), "lo");
    assert_eq!(cap.file(), file);

    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let marker = format!("gecko-hil capture test {}", std::process::id());
    tx.send_to(marker.as_bytes(), rx.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 128];
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = rx.recv_from(&mut buf).unwrap();
    // No pause: what reached the interface before `stop` is read before the thread ends.

    let stopping = std::time::Instant::now();
    let packets = cap.stop().unwrap();
    assert!(stopping.elapsed() < Duration::from_millis(500), "stop took {:?}", stopping.elapsed());

    let ports = (tx.local_addr().unwrap().port(), rx.local_addr().unwrap().port());
    let ours: Vec<&CapturedPacket> = packets
        .iter()
        .filter(|p| {
            let f = p.decode();
            f.ports == Some(ports)
                && matches!(f.body, Body::Udp { payload } if payload == marker.as_bytes())
        })
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "captured: {:?}",
        packets.iter().map(|p| p.decode().to_string()).collect::<Vec<_>>()
    );
    let ours = ours[0];
    assert!(ours.ts >= before - Duration::from_secs(1), "timestamp {:?}", ours.ts);
    let f = ours.decode();
    assert_eq!(f.ip.unwrap().src, Ipv4Addr::LOCALHOST);
    assert_eq!(f.ip.unwrap().dst, Ipv4Addr::LOCALHOST);

    // The savefile holds the same packets.
    let mut saved = pcap::Capture::from_file(&file).unwrap();
    let mut n = 0;
    while let Ok(p) = saved.next_packet() {
        assert_eq!(p.data, packets[n].data.as_slice());
        n += 1;
    }
    assert_eq!(n, packets.len());
}

#[test]
fn an_idle_capture_stops_promptly() {
    if !is_root() {
        println!("SKIPPED an_idle_capture_stops_promptly: live capture needs root or CAP_NET_RAW");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start(None, "lo", &dir.path().join("idle.pcap")).unwrap();
    let t = std::time::Instant::now();
    let _ = cap.stop().unwrap();
    assert!(t.elapsed() < Duration::from_millis(500), "stop took {:?}", t.elapsed());
    // Dropping without stop does not hang either.
    let cap = Capture::start(None, "lo", &dir.path().join("idle2.pcap")).unwrap();
    drop(cap);
    assert!(dir.path().join("idle2.pcap").is_file());
}

//! Lab peers and clients on real lab namespaces: every peer kind against a client in the
//! same lab (and one across the bridge from a peer namespace), byte-exact echo of 64 KiB,
//! refusals, a flood of 1000 connections, and nothing left behind.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip`, `dnsmasq` and /dev/net/tun; without
//! them every test prints why it is skipped.
#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use common::{lab, say, serial};
use gecko_hil::lab::NETNS_DIR;
use gecko_hil::peers::{
    ClientAction, Clients, Closed, DEFAULT_PEER_ADDR, FloodSpec, PeerCheck, PeerError, PeerSpec,
    Peers, TcpClient, UdpClient, flood, pattern,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const HOST: Ipv4Addr = DEFAULT_PEER_ADDR;
const SHORT: Duration = Duration::from_secs(10);

/// 64 KiB that are not the source pattern (so an echo cannot pass by accident).
fn data_64k() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn tcp_echo_is_byte_exact_both_ways() {
    let _g = serial();
    let Some((lab, _dir)) = lab("tcp_echo_is_byte_exact_both_ways") else { return };
    let peers = Peers::start(&lab, &[PeerSpec::tcp_echo(7000)]).expect("start");
    assert_eq!(peers.get(0).unwrap().local_addr(), SocketAddr::from((HOST, 7000)));
    let data = data_64k();
    let mut c = TcpClient::connect(&lab, HOST, 7000).expect("connect");
    // Send from one thread while receiving on this one: 64 KiB may not fit the buffers.
    let mut writer = c.stream().try_clone().expect("clone");
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || writer.write_all(&data))
    };
    let got = c.receive(data.len(), SHORT).expect("receive");
    sender.join().expect("join").expect("send");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo differs");
    c.close();
    peers.check(0, &PeerCheck::received(data.as_slice())).expect("peer received");
    peers.check(0, &PeerCheck::received_len(65536)).expect("length");
    peers.check(0, &PeerCheck::connections(1)).expect("one connection");
    let recs = peers.get(0).unwrap().records();
    assert_eq!(recs[0].sent, data);
    // The peer closes when the client does.
    let deadline = Instant::now() + SHORT;
    while peers.get(0).unwrap().records()[0].closed.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(peers.get(0).unwrap().records()[0].closed, Some(Closed::ByRemote));
    // A wrong check fails with a useful message.
    let e = peers.check(0, &PeerCheck { within_ms: Some(10), ..PeerCheck::received("x") });
    let e = e.unwrap_err();
    assert!(e.is_mismatch(), "{e}");
    assert!(e.to_string().contains("expected 1 bytes, received 65536"), "{e}");
}

#[test]
fn tcp_echo_close_after_and_delay() {
    let _g = serial();
    let Some((lab, _dir)) = lab("tcp_echo_close_after_and_delay") else { return };
    let peers = Peers::start(
        &lab,
        &[PeerSpec::tcp_echo(7000).close_after(5), PeerSpec::tcp_echo(7001).delay_ms(300)],
    )
    .expect("start");
    let mut c = TcpClient::connect(&lab, HOST, 7000).expect("connect");
    c.send(b"hello world").expect("send");
    c.expect(b"hello", SHORT).expect("first 5 bytes echoed");
    c.expect_closed(SHORT).expect("closed after 5 bytes");
    peers.check(0, &PeerCheck::received("hello")).expect("kept 5 bytes");
    assert_eq!(peers.get(0).unwrap().records()[0].closed, Some(Closed::CloseAfter));

    let mut c = TcpClient::connect(&lab, HOST, 7001).expect("connect");
    let t = Instant::now();
    c.send(b"ping").expect("send");
    c.expect(b"ping", SHORT).expect("echo");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(300), "answered after {took:?}");
    assert!(took < Duration::from_millis(1500), "answered after {took:?}");
}

#[test]
fn tcp_sink_and_source() {
    let _g = serial();
    let Some((lab, _dir)) = lab("tcp_sink_and_source") else { return };
    let peers = Peers::start(
        &lab,
        &[
            PeerSpec::tcp_sink(7001),
            PeerSpec::tcp_source(7002, 4096),
            PeerSpec::tcp_source(7003, 100).keep_open(),
            PeerSpec::tcp_sink(7004).close_after(3),
        ],
    )
    .expect("start");
    // Sink: keeps everything, answers nothing.
    let mut c = TcpClient::connect(&lab, HOST, 7001).expect("connect");
    c.send(b"hello\r\n").expect("send");
    c.send(b"\x00\xff").expect("send");
    peers.check(0, &PeerCheck::received(&b"hello\r\n\x00\xff"[..])).expect("sink");
    assert_eq!(c.receive(1, Duration::from_millis(100)).expect("receive"), b"");
    c.close();

    // Source: the pattern, then FIN; the client's bytes are recorded too.
    let mut c = TcpClient::connect(&lab, HOST, 7002).expect("connect");
    c.send(b"req").expect("send");
    let (got, ended) = c.receive_to_end(SHORT).expect("receive");
    assert!(ended, "source did not close");
    assert_eq!(got, pattern(4096));
    c.close();
    peers.check(1, &PeerCheck::received("req")).expect("source recorded");
    let deadline = Instant::now() + SHORT;
    while peers.get(1).unwrap().records()[0].closed.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(peers.get(1).unwrap().records()[0].closed, Some(Closed::SourceDone));
    assert_eq!(peers.get(1).unwrap().records()[0].sent, pattern(4096));

    // Source kept open: the pattern, no close.
    let mut c = TcpClient::connect(&lab, HOST, 7003).expect("connect");
    c.expect(&pattern(100), SHORT).expect("pattern");
    c.expect_closed(Duration::from_millis(200)).unwrap_err();

    // Sink closing after 3 bytes.
    let mut c = TcpClient::connect(&lab, HOST, 7004).expect("connect");
    c.send(b"abcdef").expect("send");
    c.expect_closed(SHORT).expect("closed");
    peers.check(3, &PeerCheck::received("abc")).expect("3 bytes");
}

#[test]
fn refuse_gives_econnrefused() {
    let _g = serial();
    let Some((lab, _dir)) = lab("refuse_gives_econnrefused") else { return };
    let peers = Peers::start(&lab, &[PeerSpec::tcp_refuse(7004)]).expect("start");
    let e = TcpClient::connect(&lab, HOST, 7004).expect_err("refused");
    assert!(e.is_refused(), "{e}");
    let source = std::error::Error::source(&e).expect("source");
    let io = source.downcast_ref::<std::io::Error>().expect("io error");
    assert_eq!(io.raw_os_error(), Some(nix::libc::ECONNREFUSED));
    drop(peers);
    // A spec action expecting the refusal passes; one expecting a connection fails.
    let mut clients = Clients::new(&lab, HOST);
    clients.run(&ClientAction::ConnectRefused(7004)).expect("refused as expected");
    clients.run(&ClientAction::Connect(7004)).unwrap_err();
}

#[test]
fn udp_echo_and_sink_from_several_sources() {
    let _g = serial();
    let Some((lab, _dir)) = lab("udp_echo_and_sink_from_several_sources") else { return };
    let peers =
        Peers::start(&lab, &[PeerSpec::udp_echo(7003), PeerSpec::udp_sink(7005)]).expect("start");
    let clients = UdpClient::several(&lab, 3).expect("bind");
    let locals = clients.local_addrs();
    // Two lab addresses (router, lab host), then another port.
    assert_eq!(locals.len(), 3);
    assert_ne!(locals[0].ip(), locals[1].ip());
    let echo = SocketAddr::from((HOST, 7003));
    for i in 0..3 {
        let msg = format!("ping {i}");
        clients.send_from(i, echo, msg.as_bytes()).expect("send");
        let (got, from) = clients.recv_from(i, SHORT).expect("reply");
        assert_eq!(got, msg.as_bytes());
        assert_eq!(from, echo);
    }
    peers.check(0, &PeerCheck::connections(3)).expect("three senders");
    let ping1 = PeerCheck { connection: Some(1), ..PeerCheck::received("ping 1") };
    peers.check(0, &ping1).expect("per sender");
    let recs = peers.get(0).unwrap().records();
    assert_eq!(recs.iter().map(|r| r.remote).collect::<Vec<_>>(), locals);
    assert!(recs.iter().all(|r| r.datagrams == 1 && r.sent == r.received));

    clients.send_all(SocketAddr::from((HOST, 7005)), b"data").expect("send");
    peers.check(1, &PeerCheck::received("datadatadata")).expect("sink");
    peers.check(1, &PeerCheck::connections(3)).expect("three senders");
}

#[test]
fn client_from_a_peer_namespace_crosses_the_bridge() {
    let _g = serial();
    let Some((lab, _dir)) = lab("client_from_a_peer_namespace") else { return };
    let peers = Peers::start(&lab, &[PeerSpec::tcp_echo(7000)]).expect("start");
    let peer = lab.add_peer("client").expect("peer");
    let out = peer
        .command("ip")
        .args(["addr", "add", "10.77.0.20/24", "dev", "eth0"])
        .output()
        .expect("ip");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let echoed = peer
        .run_in(|| -> std::io::Result<Vec<u8>> {
            let mut s = TcpStream::connect_timeout(&SocketAddr::from((HOST, 7000)), SHORT)?;
            s.set_read_timeout(Some(SHORT))?;
            s.write_all(b"across\r\n")?;
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf)?;
            Ok(buf.to_vec())
        })
        .expect("enter peer")
        .expect("echo");
    assert_eq!(echoed, b"across\r\n");
    let recs = peers.get(0).unwrap().records();
    assert_eq!(recs[0].remote.ip(), Ipv4Addr::new(10, 77, 0, 20));
}

#[test]
fn flood_of_1000_connections() {
    let _g = serial();
    let Some((lab, _dir)) = lab("flood_of_1000_connections") else { return };
    let peers =
        Peers::start(&lab, &[PeerSpec::tcp_echo(7000), PeerSpec::tcp_refuse(7001)]).expect("start");
    let timeout = Duration::from_secs(10);
    let t = Instant::now();
    let report = flood(&lab, HOST, 7000, 1000, timeout).expect("flood");
    say(&format!("{report}"));
    assert!(t.elapsed() < timeout + Duration::from_secs(1), "took {:?}", t.elapsed());
    assert_eq!(report.requested, 1000);
    assert_eq!(
        report.attempted,
        report.connected + report.refused + report.timed_out + report.failed
    );
    assert_eq!(report.attempted, 1000, "{report}");
    assert_eq!(report.connected, 1000, "{report}");
    peers
        .check(0, &PeerCheck { within_ms: Some(30_000), ..PeerCheck::connections(1000) })
        .expect("the peer accepted them all");
    // All closed afterwards: the peer sees every one end. (A correctness bound, not a speed
    // target: a busy 2-core CI machine may take a while to deliver 1,000 FINs.)
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = peers.get(0).unwrap().records().iter().filter(|r| r.closed.is_none()).count();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} connections still open");
        std::thread::sleep(Duration::from_millis(10));
    }

    let report = flood(&lab, HOST, 7001, 200, Duration::from_secs(5)).expect("flood");
    assert_eq!(report.refused, 200, "{report}");

    // As a spec action with a bound.
    let mut clients = Clients::new(&lab, HOST);
    let spec = |max| {
        ClientAction::Flood(FloodSpec {
            port: 7000,
            connections: 50,
            timeout_ms: 5000,
            expect_connected_max: Some(max),
            expect_connected_min: None,
        })
    };
    clients.run(&spec(50)).expect("within bound");
    let e = clients.run(&spec(8)).unwrap_err();
    assert!(e.to_string().contains("expected at most 8 connected"), "{e}");
    assert_eq!(clients.floods().len(), 2);
}

#[test]
fn spec_client_actions() {
    let _g = serial();
    let Some((lab, _dir)) = lab("spec_client_actions") else { return };
    let peers = Peers::start(&lab, &[PeerSpec::tcp_echo(7000), PeerSpec::tcp_source(7002, 1000)])
        .expect("start");
    let mut clients = Clients::new(&lab, HOST);
    let act: Vec<ClientAction> = [
        "client = { connect = 7000 }",
        r#"client = { send = 'hi\r\n\x00' }"#,
        r#"client = { receive = 'hi\r\n\x00' }"#,
        "client = { close = true }",
        "client = { connect = 7002 }",
        "client = { receive_pattern = 1000 }",
        "client = { expect_closed = true }",
        "client = { udp_send = { port = 7009, data = 'x', sources = 2 } }",
    ]
    .iter()
    .map(|t| {
        #[derive(serde::Deserialize)]
        struct S {
            client: ClientAction,
        }
        toml::from_str::<S>(t).expect("parse").client
    })
    .collect();
    for a in &act {
        clients.run(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
    }
    peers.check(0, &PeerCheck::received(&b"hi\r\n\x00"[..])).expect("echo peer");
    // Wrong expectations fail (not infrastructure errors).
    clients.run(&act[0]).expect("connect");
    clients.run(&act[1]).expect("send");
    let e =
        clients.run(&ClientAction::Receive(gecko_hil::peers::Bytes(b"ho".to_vec()))).unwrap_err();
    assert!(matches!(e, gecko_hil::peers::ClientError::Fail(_)), "{e}");
}

#[test]
fn start_errors() {
    let _g = serial();
    let Some((lab, _dir)) = lab("start_errors") else { return };
    let e = Peers::start(&lab, &[PeerSpec::tcp_echo(7000).at(Ipv4Addr::new(10, 77, 0, 99))])
        .unwrap_err();
    assert!(matches!(e, PeerError::AddressNotInLab { .. }), "{e}");
    let e = Peers::start(&lab, &[PeerSpec::tcp_echo(7000).at(Ipv4Addr::new(192, 0, 2, 1))])
        .unwrap_err();
    assert!(e.to_string().contains("not an address of the lab"), "{e}");
    let e =
        Peers::start(&lab, &[PeerSpec::tcp_echo(7000), PeerSpec::tcp_refuse(7000)]).unwrap_err();
    assert!(e.to_string().contains("taken by peer 0"), "{e}");
    // TCP and UDP on the same port are fine.
    let p = Peers::start(&lab, &[PeerSpec::tcp_echo(7000), PeerSpec::udp_echo(7000)]);
    drop(p.expect("tcp and udp"));
    // A port something else in the lab listens on.
    let listener = lab.run_in(|| TcpListener::bind((HOST, 7010))).unwrap().expect("bind");
    let e = Peers::start(&lab, &[PeerSpec::tcp_sink(7001), PeerSpec::tcp_sink(7010)]).unwrap_err();
    assert!(matches!(e, PeerError::PortInUse { .. }), "{e}");
    drop(listener);
    // The first peer of the failed start was stopped: its port is free again.
    drop(Peers::start(&lab, &[PeerSpec::tcp_sink(7001)]).expect("port free"));
    // Loopback inside the lab is allowed.
    let p = Peers::start(&lab, &[PeerSpec::tcp_echo(7000).at(Ipv4Addr::LOCALHOST)]).expect("lo");
    let mut c = TcpClient::connect(&lab, Ipv4Addr::LOCALHOST, 7000).expect("connect");
    c.send(b"lo").expect("send");
    c.expect(b"lo", SHORT).expect("echo");
    drop(p);
}

/// This process's threads, once the count holds still: a thread just joined can stay
/// listed in /proc for a moment after it ended.
fn threads() -> usize {
    let count = || std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
    let mut last = count();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn nothing_left_after_drop() {
    let _g = serial();
    let Some((lab, dir)) = lab("nothing_left_after_drop") else { return };
    let (threads_before, fds_before) = (threads(), fds());
    let name = lab.netns_name().to_string();
    {
        let mut peers = Peers::start(
            &lab,
            &[
                PeerSpec::tcp_echo(7000),
                PeerSpec::tcp_sink(7001),
                PeerSpec::tcp_source(7002, 10).keep_open(),
                PeerSpec::tcp_refuse(7004),
                PeerSpec::udp_echo(7003),
                PeerSpec::udp_sink(7005),
            ],
        )
        .expect("start");
        assert_eq!(threads(), threads_before + 6);
        // Connections still open when the peers stop.
        let _c1 = TcpClient::connect(&lab, HOST, 7000).expect("connect");
        let mut c2 = TcpClient::connect(&lab, HOST, 7002).expect("connect");
        c2.expect(&pattern(10), SHORT).expect("pattern");
        let t = Instant::now();
        peers.stop().expect("stop");
        assert!(t.elapsed() < Duration::from_millis(500), "stop took {:?}", t.elapsed());
        assert!(peers.iter().all(|p| !p.is_running()));
        let recs = peers.get(2).unwrap().records();
        assert_eq!(recs[0].closed, Some(Closed::Stopped));
        // The peers' sides are closed: the clients see the end.
        c2.expect_closed(SHORT).expect("closed by stop");
    }
    assert_eq!(threads(), threads_before, "threads left");
    assert_eq!(fds(), fds_before, "descriptors left");
    // Dropping without stop() also stops.
    {
        let _peers = Peers::start(&lab, &[PeerSpec::tcp_echo(7000)]).expect("start");
        let _ = flood(&lab, HOST, 7000, 20, SHORT).expect("flood");
    }
    assert_eq!(threads(), threads_before, "threads left after drop");
    assert_eq!(fds(), fds_before, "descriptors left after drop");
    drop(lab);
    assert!(!Path::new(NETNS_DIR).join(&name).exists(), "namespace {name} left");
    drop(dir);
}

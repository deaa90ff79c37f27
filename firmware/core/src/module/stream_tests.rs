//! Streams and sockets: `stream_*`, `tcp_client`, `tcp_server`, `udp_client`, `udp_server`,
//! driven through the module's bytes, `net_event`s and `tick`s.

use super::*;
use crate::net::{ACCEPTED_BASE, ConnFailure, Security};
use crate::streams::NETWORK_MAX;
use alloc::vec;
use rstest::rstest;

use super::tests::board;

const T0: Instant = Instant::ZERO;
const PEER: Ipv4 = [10, 0, 0, 1];

use super::frames::*;

struct Rig {
    m: Module,
    now: Instant,
}

impl Rig {
    /// Machine format, every log, static IP `10.0.0.5` (no DHCP), then `setup`.
    fn new(setup: &[&str]) -> Self {
        let mut rig = Self { m: Module::boot(board(), None, T0), now: T0 };
        rig.m.feed(b"set system.cmd.format machine\r\n", T0);
        rig.m.take_output();
        let base = [
            "set system.print_level all",
            "set wlan.ssid lab",
            "set wlan.passkey password1",
            "set wlan.dhcp.enabled 0",
            "set wlan.static.ip 10.0.0.5",
            "set wlan.static.gateway 10.0.0.1",
            "set wlan.static.dns 10.0.0.1",
        ];
        for line in base.iter().chain(setup) {
            let out = rig.send(line);
            assert_eq!(out.last(), Some(&resp(0, "Set OK")), "{line}");
        }
        rig
    }

    /// [`Rig::new`] with the network brought up.
    fn up(setup: &[&str]) -> Self {
        let mut rig = Self::new(setup);
        let (out, _) = rig.join();
        assert_eq!(out.last(), Some(&success()));
        rig
    }

    /// `network_up` through to the association: what it printed and asked for from then.
    fn join(&mut self) -> (Vec<F>, Vec<NetRequest>) {
        self.join_with("network_up")
    }

    /// [`Rig::join`] with another command line (`network_up wlan`).
    fn join_with(&mut self, line: &str) -> (Vec<F>, Vec<NetRequest>) {
        let rig = self;
        rig.send(line);
        let id = match rig.reqs().as_slice() {
            [NetRequest::Scan { id, .. }] => *id,
            other => panic!("unexpected {other:?}"),
        };
        let bss = lab_bss(Security::Wpa2Aes);
        rig.event(NetEvent::ScanDone { id, results: vec![bss] });
        let attempt = rig.m.join_counters().1;
        let out = rig.event(NetEvent::Associated { attempt });
        (out, rig.reqs())
    }

    fn send(&mut self, line: &str) -> Vec<F> {
        self.bytes(format!("{line}\r\n").as_bytes())
    }

    fn bytes(&mut self, bytes: &[u8]) -> Vec<F> {
        self.m.feed(bytes, self.now);
        frames(&self.m.take_output())
    }

    fn event(&mut self, event: NetEvent) -> Vec<F> {
        self.m.net_event(event, self.now);
        frames(&self.m.take_output())
    }

    fn advance(&mut self, ms: u64) -> Vec<F> {
        self.now = self.now + Duration::from_millis(ms);
        self.m.tick(self.now);
        frames(&self.m.take_output())
    }

    /// Moves the clock to the next timer and runs it.
    fn fire(&mut self) -> Vec<F> {
        let at = self.m.poll_at().expect("a timer runs");
        self.advance((at - self.now).as_millis())
    }

    fn reqs(&mut self) -> Vec<NetRequest> {
        let mut got = Vec::new();
        while let Some(action) = self.m.next_action() {
            match action {
                Action::Net(req) => got.push(req),
                other => panic!("unexpected action {other:?}"),
            }
        }
        got
    }

    /// `tcpc 10.0.0.1 <port>` answered by the platform: returns the handle.
    fn tcpc(&mut self, port: u16) -> usize {
        self.tcpc_from(port, 40000 + port % 20000)
    }

    /// [`Rig::tcpc`], the platform choosing `local_port`.
    fn tcpc_from(&mut self, port: u16, local_port: u16) -> usize {
        self.send(&format!("tcpc 10.0.0.1 {port}"));
        let conn = match self.reqs().as_slice() {
            [NetRequest::TcpConnect { conn, .. }] => *conn,
            other => panic!("unexpected {other:?}"),
        };
        let out = self.event(NetEvent::TcpConnected { conn, local_port });
        match out.last() {
            Some(F::R(0, h)) => h.parse().expect("a handle"),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// `tcps start` answered: returns the listener id.
    fn tcps(&mut self) -> ConnId {
        assert_eq!(self.send("tcps start").last(), Some(&success()));
        match self.reqs().as_slice() {
            [NetRequest::TcpListen { listener, port: 3000 }] => *listener,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// `udps start` answered: returns (handle, conn).
    fn udps(&mut self) -> (usize, ConnId) {
        assert_eq!(self.send("udps start"), vec![]);
        let conn = match self.reqs().as_slice() {
            [NetRequest::UdpOpen { conn, local_port: 3000 }] => *conn,
            other => panic!("unexpected {other:?}"),
        };
        let out = self.event(NetEvent::UdpOpened { conn, local_port: 3000 });
        match out.last() {
            Some(F::R(0, h)) => (h.parse().expect("a handle"), conn),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn conn(&self, handle: usize) -> ConnId {
        self.m.streams.get(handle).expect("open").conn
    }

    fn recv(&mut self, handle: usize, data: &[u8]) -> Vec<F> {
        let conn = self.conn(handle);
        self.event(NetEvent::Received { conn, data: data.to_vec(), from: (PEER, 80) })
    }
}

// ---------------------------------------------------------------------------------------------
// tcp_client
// ---------------------------------------------------------------------------------------------

#[test]
fn tcp_client_connects_and_answers_the_handle() {
    let mut rig = Rig::up(&["set tcp.client.local_port 5555"]);
    assert_eq!(rig.send("tcp_client 10.0.0.1 80"), vec![log(S, "[Opening: 10.0.0.1:80]")]);
    assert_eq!(
        rig.reqs(),
        vec![NetRequest::TcpConnect { conn: ConnId(1), to: PEER, port: 80, local_port: 5555 }]
    );
    let out = rig.event(NetEvent::TcpConnected { conn: ConnId(1), local_port: 5555 });
    assert_eq!(out, vec![log(S, "[Opened: 0]"), resp(0, "0")]);
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info\r\n# 0 TCPC 10.0.0.1:80 (5555)")]);
}

#[test]
fn tcp_client_brings_the_network_up_and_resolves_the_host() {
    let mut rig = Rig::new(&[]);
    let out = rig.send("tcpc example.com 7");
    assert_eq!(out, vec![log(S, "[Opening: example.com:7]"), log(S, "[Associating to lab]")]);
    let id = match rig.reqs().as_slice() {
        [NetRequest::Scan { id, .. }] => *id,
        other => panic!("unexpected {other:?}"),
    };
    let bss = lab_bss(Security::Open);
    rig.event(NetEvent::ScanDone { id, results: vec![bss] });
    rig.reqs();
    let attempt = rig.m.join_counters().1;
    rig.event(NetEvent::Associated { attempt });
    let reqs = rig.reqs();
    let id = match reqs.last() {
        Some(NetRequest::Resolve { id, name }) if name == "example.com" => *id,
        other => panic!("unexpected {other:?}"),
    };
    rig.event(NetEvent::Resolved { id, address: Some([10, 0, 0, 9]) });
    let conn = match rig.reqs().as_slice() {
        [NetRequest::TcpConnect { conn, to: [10, 0, 0, 9], port: 7, local_port: 0 }] => *conn,
        other => panic!("unexpected {other:?}"),
    };
    let out = rig.event(NetEvent::TcpConnected { conn, local_port: 49152 });
    assert_eq!(out, vec![log(S, "[Opened: 0]"), resp(0, "0")]);
}

#[test]
fn tcp_client_host_not_found_is_open_failed() {
    let mut rig = Rig::up(&[]);
    rig.send("tcpc nowhere.lab 80");
    let id = match rig.reqs().as_slice() {
        [NetRequest::Resolve { id, .. }] => *id,
        other => panic!("unexpected {other:?}"),
    };
    let out = rig.event(NetEvent::Resolved { id, address: None });
    assert_eq!(out, vec![log(E, "Host not found: nowhere.lab"), log(S, "[Open failed]"), failed()]);
}

#[test]
fn tcp_client_retries_every_retry_period_then_fails() {
    let mut rig = Rig::up(&[
        "set tcp.client.retries 2",
        "set tcp.client.retry_period 1000",
        "set tcp.client.connect_timeout 2000",
    ]);
    rig.send("tcpc 10.0.0.1 80");
    let connect = |conn| NetRequest::TcpConnect { conn, to: PEER, port: 80, local_port: 0 };
    assert_eq!(rig.reqs(), vec![connect(ConnId(1))]);
    // Attempt 1: refused.
    let out = rig.event(NetEvent::ConnFailed { conn: ConnId(1), reason: ConnFailure::Refused });
    assert_eq!(out, vec![log(I, "Connect failed: refused"), log(I, "Retrying in 1000 ms")]);
    assert_eq!(rig.m.poll_at(), Some(rig.now + Duration::from_millis(1000)));
    assert_eq!(rig.fire(), vec![]);
    assert_eq!(rig.reqs(), vec![connect(ConnId(2))]);
    // Attempt 2: no answer within connect_timeout.
    assert_eq!(rig.m.poll_at(), Some(rig.now + Duration::from_millis(2000)));
    let out = rig.fire();
    assert_eq!(out, vec![log(I, "Connect timed out"), log(I, "Retrying in 1000 ms")]);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(2) }]);
    rig.fire();
    assert_eq!(rig.reqs(), vec![connect(ConnId(3))]);
    // Attempt 3 (the second retry): refused, no more.
    let out = rig.event(NetEvent::ConnFailed { conn: ConnId(3), reason: ConnFailure::Unreachable });
    assert_eq!(out, vec![log(I, "Connect failed: unreachable"), log(S, "[Open failed]"), failed()]);
    assert_eq!(rig.now, T0 + Duration::from_millis(4000));
    // A late answer to the timed-out attempt is closed, not a stream.
    assert_eq!(rig.event(NetEvent::TcpConnected { conn: ConnId(2), local_port: 1 }), vec![]);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(2) }]);
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")]);
}

#[test]
fn tcp_client_with_zero_retries_tries_once() {
    let mut rig = Rig::up(&["set tcp.client.retries 0"]);
    rig.send("tcpc 10.0.0.1 80");
    rig.reqs();
    let out = rig.fire();
    assert_eq!(out, vec![log(I, "Connect timed out"), log(S, "[Open failed]"), failed()]);
    assert_eq!(rig.now, T0 + Duration::from_millis(5000), "tcp.client.connect_timeout default");
}

#[test]
fn commands_typed_while_connecting_run_afterwards() {
    let mut rig = Rig::up(&[]);
    rig.send("tcpc 10.0.0.1 80");
    assert_eq!(rig.send("ver"), vec![], "stashed");
    let out = rig.event(NetEvent::TcpConnected { conn: ConnId(1), local_port: 1 });
    assert_eq!(out.len(), 3);
    assert_eq!(out[1], resp(0, "0"));
}

#[rstest]
#[case::port_zero("tcpc 10.0.0.1 0")]
#[case::port_big("tcpc 10.0.0.1 65536")]
#[case::port_word("tcpc 10.0.0.1 http")]
#[case::udp_port("udpc 10.0.0.1 -1")]
#[case::tcps_port("tcps start 0")]
#[case::tcps_word("tcps begin")]
#[case::udps_word("udps begin")]
#[case::udps_port("udps start x")]
#[case::udps_write_ip("udps write 10.0.0 80 3")]
fn bad_open_arguments_are_code_7(#[case] line: &str) {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.send(line), vec![bad_args()]);
    assert_eq!(rig.reqs(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// The 8-stream limit and its exceptions
// ---------------------------------------------------------------------------------------------

#[test]
fn the_ninth_stream_fails_with_a_reason() {
    let mut rig = Rig::up(&[]);
    for i in 0..NETWORK_MAX {
        assert_eq!(rig.tcpc(1000 + i as u16), i);
    }
    assert_eq!(rig.send("tcpc 10.0.0.1 80"), vec![log(E, "No free stream handles"), failed()]);
    assert_eq!(rig.send("udpc 10.0.0.1 80"), vec![log(E, "No free stream handles"), failed()]);
    assert_eq!(rig.send("udps start"), vec![log(E, "No free stream handles"), failed()]);
    assert_eq!(rig.reqs(), vec![]);
    // Closing one frees its handle, the lowest free is reused.
    assert_eq!(rig.send("close 3").last(), Some(&success()));
    rig.reqs();
    assert_eq!(rig.tcpc(80), 3);
}

#[test]
fn a_udp_server_is_one_stream_for_many_senders() {
    let mut rig = Rig::up(&[]);
    let (h, conn) = rig.udps();
    assert_eq!(h, 0);
    for i in 0..20u8 {
        let from = ([10, 0, 0, 100 + i], 6000 + u16::from(i));
        rig.event(NetEvent::Received { conn, data: vec![i], from });
    }
    for i in 1..NETWORK_MAX {
        assert_eq!(rig.tcpc(2000 + i as u16), i);
    }
    assert_eq!(rig.send("tcpc 10.0.0.1 80"), vec![log(E, "No free stream handles"), failed()]);
    let list = rig.send("list");
    let F::R(0, body) = &list[0] else { panic!("{list:?}") };
    assert_eq!(body.matches("UDPS").count(), 1);
    assert!(body.contains("# 0 UDPS 10.0.0.5:3000 10.0.0.119:6019"), "{body}");
}

#[test]
fn a_tcp_server_with_no_client_uses_no_stream() {
    let mut rig = Rig::up(&[]);
    rig.tcps();
    for i in 0..NETWORK_MAX {
        assert_eq!(rig.tcpc(1000 + i as u16), i);
    }
    // A client arriving now finds no free handle: closed at once.
    let conn = ConnId(ACCEPTED_BASE);
    let out = rig.event(NetEvent::TcpAccepted { listener: ConnId(1), conn, peer: (PEER, 5000) });
    assert_eq!(out, vec![log(E, "No free stream handles")]);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn }]);
}

#[test]
fn the_ninth_server_client_is_closed_while_eight_keep_working() {
    let mut rig = Rig::up(&["set tcp.server.max_clients 8"]);
    let listener = rig.tcps();
    for i in 0..NETWORK_MAX as u32 {
        let peer = (PEER, 5000 + i as u16);
        let out =
            rig.event(NetEvent::TcpAccepted { listener, conn: ConnId(ACCEPTED_BASE + i), peer });
        assert_eq!(out, vec![log(S, &format!("[Opened: {i}]"))]);
    }
    let ninth = ConnId(ACCEPTED_BASE + 8);
    let out = rig.event(NetEvent::TcpAccepted { listener, conn: ninth, peer: (PEER, 6000) });
    assert_eq!(out, vec![log(I, "TCP server: too many clients")]);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ninth }]);
    // The eight others still read and write.
    rig.recv(5, b"hello");
    assert_eq!(rig.send("read 5 100"), vec![resp(0, "hello")]);
    assert_eq!(rig.bytes(b"write 7 2\r\nok"), vec![]);
    assert_eq!(
        rig.reqs(),
        vec![NetRequest::Send { conn: ConnId(ACCEPTED_BASE + 7), data: b"ok".to_vec(), to: None }]
    );
    assert_eq!(
        rig.event(NetEvent::Sent { conn: ConnId(ACCEPTED_BASE + 7), len: 2 }),
        vec![success()]
    );
}

#[test]
fn the_ninth_client_is_refused_by_the_limit_even_when_max_clients_allows() {
    let mut rig = Rig::up(&["set tcp.server.max_clients 8"]);
    let listener = rig.tcps();
    rig.tcpc(80);
    for i in 0..7u32 {
        let peer = (PEER, 5000 + i as u16);
        rig.event(NetEvent::TcpAccepted { listener, conn: ConnId(ACCEPTED_BASE + i), peer });
    }
    let conn = ConnId(ACCEPTED_BASE + 7);
    let out = rig.event(NetEvent::TcpAccepted { listener, conn, peer: (PEER, 1) });
    assert_eq!(out, vec![log(E, "No free stream handles")]);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn }]);
}

#[test]
fn max_clients_closes_extra_clients() {
    let mut rig = Rig::up(&["set tcp.server.max_clients 2"]);
    let listener = rig.tcps();
    for i in 0..3u32 {
        rig.event(NetEvent::TcpAccepted {
            listener,
            conn: ConnId(ACCEPTED_BASE + i),
            peer: (PEER, 1),
        });
    }
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(ACCEPTED_BASE + 2) }]);
}

// ---------------------------------------------------------------------------------------------
// stream_list, stream_poll
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_list() {
    let mut rig = Rig::up(&[]);
    let listener = rig.tcps();
    rig.event(NetEvent::TcpAccepted { listener, conn: ConnId(ACCEPTED_BASE), peer: (PEER, 63835) });
    rig.send("udpc 10.0.0.1 50007");
    rig.reqs();
    let conn = ConnId(2);
    rig.event(NetEvent::UdpOpened { conn, local_port: 15672 });
    rig.tcpc_from(50007, 13171);
    let (_, udps) = rig.udps();
    rig.event(NetEvent::Received { conn: udps, data: b"x".to_vec(), from: ([10, 0, 0, 7], 99) });
    let out = rig.send("stream_list");
    let F::R(0, body) = &out[0] else { panic!("{out:?}") };
    insta::assert_snapshot!(body.replace("\r\n", "\n"));
}

#[test]
fn stream_poll_states() {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.send("poll"), vec![resp(0, "")]);
    let a = rig.tcpc(1);
    let b = rig.tcpc(2);
    let c = rig.tcpc(3);
    rig.recv(b, b"data");
    rig.recv(c, b"last");
    let conn = rig.conn(c);
    assert_eq!(rig.event(NetEvent::Closed { conn }), vec![log(S, "[Closed: 2]")]);
    assert_eq!(rig.send(&format!("poll {a}")), vec![resp(0, "0")]);
    assert_eq!(rig.send("poll 1"), vec![resp(0, "1")]);
    assert_eq!(rig.send("poll all"), vec![resp(0, "0:0,1:1,2:2")]);
    rig.send("read 2 2");
    rig.send("read 2 2");
    // Drained after the peer closed: the handle is free.
    assert_eq!(rig.send("poll 2"), vec![bad_args()]);
    assert_eq!(rig.send("poll"), vec![resp(0, "0:0,1:1")]);
    assert_eq!(rig.send("poll 9"), vec![bad_args()]);
    assert_eq!(rig.send("poll x"), vec![bad_args()]);
}

#[test]
fn poll_answers_2_for_a_closed_stream_with_data_left() {
    let mut rig = Rig::up(&["set bus.command.read_timeout 0"]);
    let h = rig.tcpc(1);
    rig.recv(h, b"ab");
    let conn = rig.conn(h);
    rig.event(NetEvent::ConnFailed { conn, reason: ConnFailure::Refused });
    assert_eq!(rig.send("poll 0"), vec![resp(0, "2")]);
    assert_eq!(rig.send("read 0 1"), vec![resp(0, "a")]);
    assert_eq!(rig.send("read 0 1"), vec![resp(0, "b")]);
    assert_eq!(rig.send("read 0 1"), vec![bad_args()]);
}

// ---------------------------------------------------------------------------------------------
// stream_read
// ---------------------------------------------------------------------------------------------

#[test]
fn read_returns_buffered_bytes_up_to_size() {
    let mut rig = Rig::up(&[]);
    let h = rig.tcpc(1);
    rig.recv(h, b"hello ");
    rig.recv(h, b"world\r\n");
    assert_eq!(rig.send("stream_read 0 8"), vec![resp(0, "hello wo")]);
    assert_eq!(rig.send("read 0 100"), vec![resp(0, "rld\r\n")]);
}

#[test]
fn read_waits_read_timeout_then_answers_empty() {
    let mut rig = Rig::up(&["set bus.command.read_timeout 250"]);
    rig.tcpc(1);
    assert_eq!(rig.send("read 0 10"), vec![]);
    assert_eq!(rig.m.poll_at(), Some(rig.now + Duration::from_millis(250)));
    assert_eq!(rig.advance(249), vec![]);
    assert_eq!(rig.advance(1), vec![resp(0, "")]);
}

#[test]
fn read_waiting_is_answered_by_data() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    assert_eq!(rig.send("read 0 3"), vec![]);
    assert_eq!(rig.recv(0, b"abcdef"), vec![resp(0, "abc")]);
    assert_eq!(rig.send("read 0 10"), vec![resp(0, "def")]);
}

#[test]
fn read_waiting_is_ended_by_the_peer_closing() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    rig.send("read 0 3");
    let conn = rig.conn(0);
    assert_eq!(rig.event(NetEvent::Closed { conn }), vec![log(S, "[Closed: 0]"), resp(0, "")]);
    assert_eq!(rig.send("read 0 3"), vec![bad_args()]);
}

#[test]
fn a_peer_closing_under_another_origins_read_is_broadcast_and_answers_that_read() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    let http = Origin::Http(3);
    rig.m.execute(http, b"read 0 3", rig.now);
    assert_eq!(rig.m.take_replies(http), vec![], "the read waits");
    let conn = rig.conn(0);
    // The serial console, which follows asynchronous logs, sees the close...
    assert_eq!(rig.event(NetEvent::Closed { conn }), vec![log(S, "[Closed: 0]")]);
    // ...and the waiting read gets its answer alone.
    assert_eq!(
        rig.m.take_replies(http),
        vec![Reply::Response { code: ResultCode(0), body: Vec::new() }]
    );
}

#[rstest]
#[case::no_stream("read 0 10")]
#[case::handle_word("read a 10")]
#[case::negative("read -1 10")]
#[case::size_zero("read 0 0")]
#[case::size_word("read 0 ten")]
fn read_bad_arguments(#[case] line: &str) {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.send(line), vec![bad_args()]);
}

#[test]
fn tcp_receive_is_flow_controlled_never_dropped() {
    let mut rig = Rig::up(&["set bus.command.rx_bufsize 256"]);
    let h = rig.tcpc(1);
    let conn = rig.conn(h);
    // Half the buffer: the platform is asked to stop reading.
    assert_eq!(rig.recv(h, &[b'x'; 100]), vec![]);
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.recv(h, &[b'y'; 100]), vec![]);
    assert_eq!(rig.reqs(), vec![NetRequest::Flow { conn, accept: false }]);
    // Bytes already on their way are kept, even past the buffer size.
    assert_eq!(rig.recv(h, &[b'z'; 100]), vec![]);
    assert_eq!(rig.m.streams.get(0).map(|s| (s.buffered(), s.dropped)), Some((300, 0)));
    let mut want = "x".repeat(100);
    want.push_str(&"y".repeat(100));
    want.push_str(&"z".repeat(100));
    assert_eq!(rig.send("read 0 1000"), vec![resp(0, &want)]);
    // Drained: the platform may read again.
    assert_eq!(rig.reqs(), vec![NetRequest::Flow { conn, accept: true }]);
}

// ---------------------------------------------------------------------------------------------
// stream_write
// ---------------------------------------------------------------------------------------------

fn send_req(conn: ConnId, data: &[u8]) -> NetRequest {
    NetRequest::Send { conn, data: data.to_vec(), to: None }
}

#[test]
fn write_takes_exactly_size_raw_bytes_and_answers_after_sent() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    assert_eq!(rig.bytes(b"write 0 6\r\n"), vec![]);
    assert_eq!(rig.bytes(b"ab\r\n"), vec![], "CR LF are data");
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.bytes(b"\x00z"), vec![]);
    assert_eq!(rig.reqs(), vec![send_req(ConnId(1), b"ab\r\n\x00z")]);
    assert_eq!(rig.event(NetEvent::Sent { conn: ConnId(1), len: 6 }), vec![success()]);
    assert_eq!(rig.m.streams.get(0).map(|s| s.tx_bytes), Some(6));
}

#[test]
fn write_the_platform_took_only_part_of_fails() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    rig.bytes(b"write 0 6\r\nabcdef");
    assert_eq!(rig.reqs(), vec![send_req(ConnId(1), b"abcdef")]);
    let out = rig.event(NetEvent::Sent { conn: ConnId(1), len: 0 });
    assert_eq!(out, vec![log(E, "Write failed: 0 of 6 bytes sent"), resp(1, "Command failed")]);
}

#[test]
fn write_after_a_lone_cr_keeps_a_leading_lf_out_of_the_data() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    rig.bytes(b"stream_write 0 2\r\nhi");
    assert_eq!(rig.reqs(), vec![send_req(ConnId(1), b"hi")]);
    rig.event(NetEvent::Sent { conn: ConnId(1), len: 2 });
    rig.bytes(b"write 0 2\r");
    rig.bytes(b"\nX");
    rig.bytes(b"\n");
    assert_eq!(rig.reqs(), vec![send_req(ConnId(1), b"X\n")]);
}

#[test]
fn write_longer_than_declared_runs_the_rest_as_a_command() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    assert_eq!(rig.bytes(b"write 0 3\r\nabcdef\r\n"), vec![]);
    assert_eq!(rig.reqs(), vec![send_req(ConnId(1), b"abc")]);
    let out = rig.event(NetEvent::Sent { conn: ConnId(1), len: 3 });
    assert_eq!(out, vec![success(), resp(3, "Unknown command")]);
}

#[test]
fn write_shorter_than_declared_aborts_after_5_s_without_a_byte() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    rig.bytes(b"write 0 5\r\nab");
    assert_eq!(rig.advance(4000), vec![]);
    rig.bytes(b"c");
    assert_eq!(rig.advance(4999), vec![], "each byte restarts the wait");
    let out = rig.advance(1);
    assert_eq!(out, vec![log(E, "Write aborted: 2 bytes missing"), failed()]);
    assert_eq!(rig.reqs(), vec![]);
    // Back to commands.
    assert_eq!(rig.send("poll 0"), vec![resp(0, "0")]);
}

#[rstest]
#[case::zero("write 0 0", 7)]
#[case::size_word("write 0 many", 7)]
#[case::handle_word("write x 3", 7)]
#[case::above_rx_bufsize("write 0 4097", 9)]
fn write_bad_size_answers_at_once_without_a_data_phase(#[case] line: &str, #[case] code: u8) {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    let out = rig.send(line);
    assert_eq!(out.len(), 1);
    assert!(matches!(&out[0], F::R(c, _) if *c == code), "{out:?}");
    assert_eq!(rig.send("ver").len(), 1, "the next line is a command");
}

#[test]
fn write_to_a_bad_or_closed_handle_swallows_the_data_then_code_7() {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.bytes(b"write 3 4\r\nver\r"), vec![bad_args()]);
    let h = rig.tcpc(1);
    rig.recv(h, b"left");
    let conn = rig.conn(h);
    rig.event(NetEvent::Closed { conn });
    assert_eq!(rig.bytes(b"write 0 2\r\nab"), vec![bad_args()]);
    assert_eq!(rig.reqs(), vec![]);
}

#[rstest]
#[case::checked("1", resp(9, "Bounds error"))]
#[case::unchecked("0", success())]
fn write_not_taken_in_write_timeout(#[case] check: &str, #[case] want: F) {
    let mut rig = Rig::up(&[&format!("set bus.command.write_check_enabled {check}")]);
    rig.tcpc(1);
    rig.bytes(b"write 0 1\r\nz");
    rig.reqs();
    assert_eq!(rig.m.poll_at(), Some(rig.now + Duration::from_millis(100)));
    let out = rig.fire();
    assert_eq!(out.last(), Some(&want));
}

#[test]
fn write_fails_when_the_connection_drops_before_sent() {
    let mut rig = Rig::up(&[]);
    rig.tcpc(1);
    rig.bytes(b"write 0 1\r\nz");
    let out = rig.event(NetEvent::ConnFailed { conn: ConnId(1), reason: ConnFailure::Refused });
    assert_eq!(out, vec![failed(), log(S, "[Closed: 0]")]);
}

// ---------------------------------------------------------------------------------------------
// stream_close
// ---------------------------------------------------------------------------------------------

#[test]
fn close_one_and_all() {
    let mut rig = Rig::up(&[]);
    for p in 1..=3 {
        rig.tcpc(p);
    }
    let out = rig.send("stream_close 1");
    assert_eq!(out, vec![log(I, "Closing: 1"), log(S, "[Closed: 1]"), success()]);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(2) }]);
    assert_eq!(rig.send("close 1"), vec![bad_args()]);
    assert_eq!(rig.send("read 1 1"), vec![bad_args()]);
    // The late `Closed` of a closed stream changes nothing.
    assert_eq!(rig.event(NetEvent::Closed { conn: ConnId(2) }), vec![]);
    let out = rig.send("close all");
    assert_eq!(
        out,
        vec![
            log(I, "Closing: 0"),
            log(S, "[Closed: 0]"),
            log(I, "Closing: 2"),
            log(S, "[Closed: 2]"),
            success()
        ]
    );
    assert_eq!(
        rig.reqs(),
        vec![NetRequest::Close { conn: ConnId(1) }, NetRequest::Close { conn: ConnId(3) }]
    );
    assert_eq!(rig.send("close all"), vec![success()]);
    assert_eq!(rig.send("close x"), vec![bad_args()]);
    assert_eq!(rig.send("close"), vec![resp(4, "Too few args")]);
}

// ---------------------------------------------------------------------------------------------
// tcp_server
// ---------------------------------------------------------------------------------------------

#[test]
fn tcp_server_start_stop() {
    let mut rig = Rig::up(&[]);
    let out = rig.send("tcp_server start 4000");
    assert_eq!(out, vec![log(I, "TCP server listening on port 4000"), success()]);
    assert_eq!(rig.reqs(), vec![NetRequest::TcpListen { listener: ConnId(1), port: 4000 }]);
    let out = rig.send("tcps start");
    assert_eq!(out, vec![log(E, "TCP server already running"), failed()]);
    rig.event(NetEvent::TcpAccepted {
        listener: ConnId(1),
        conn: ConnId(ACCEPTED_BASE),
        peer: (PEER, 9),
    });
    assert_eq!(
        rig.send("list"),
        vec![resp(0, "! # Type Info\r\n# 0 TCPS 10.0.0.5:4000 10.0.0.1:9")]
    );
    let out = rig.send("tcps stop");
    assert_eq!(
        out,
        vec![log(I, "Closing: 0"), log(S, "[Closed: 0]"), log(I, "TCP server stopped"), success()]
    );
    assert_eq!(
        rig.reqs(),
        vec![
            NetRequest::TcpUnlisten { listener: ConnId(1) },
            NetRequest::Close { conn: ConnId(ACCEPTED_BASE) }
        ]
    );
    // A client the platform accepted after the stop is closed.
    rig.event(NetEvent::TcpAccepted {
        listener: ConnId(1),
        conn: ConnId(ACCEPTED_BASE + 1),
        peer: (PEER, 9),
    });
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(ACCEPTED_BASE + 1) }]);
    assert_eq!(rig.send("tcps stop"), vec![success()]);
    assert_eq!(rig.send("tcps stop now"), vec![resp(5, "Too many args")]);
}

#[test]
fn tcp_server_listen_failure_stops_it() {
    let mut rig = Rig::up(&[]);
    let listener = rig.tcps();
    let out = rig.event(NetEvent::ConnFailed { conn: listener, reason: ConnFailure::PortInUse });
    assert_eq!(out, vec![log(E, "TCP server: listen failed: port in use")]);
    assert_eq!(rig.tcps(), ConnId(2), "can start again");
}

#[test]
fn tcp_server_closes_idle_clients() {
    let mut rig = Rig::up(&["set tcp.server.idle_timeout 10"]);
    let listener = rig.tcps();
    for i in 0..2u32 {
        rig.event(NetEvent::TcpAccepted {
            listener,
            conn: ConnId(ACCEPTED_BASE + i),
            peer: (PEER, 1),
        });
    }
    rig.advance(6000);
    rig.recv(1, b"alive");
    let out = rig.fire();
    assert_eq!(rig.now, T0 + Duration::from_secs(10));
    assert_eq!(
        out,
        vec![log(I, "TCP server: client 0 idle"), log(I, "Closing: 0"), log(S, "[Closed: 0]")]
    );
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(ACCEPTED_BASE) }]);
    assert_eq!(rig.m.poll_at(), Some(T0 + Duration::from_secs(16)));
}

#[test]
fn tcp_server_start_brings_the_network_up() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.send("tcps start"), vec![log(S, "[Associating to lab]")]);
    assert!(matches!(rig.reqs().as_slice(), [NetRequest::Scan { .. }]));
}

// ---------------------------------------------------------------------------------------------
// udp_client, udp_server
// ---------------------------------------------------------------------------------------------

#[test]
fn udp_client_sends_to_its_remote() {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.send("udp_client 10.0.0.1 50007"), vec![log(S, "[Opening: 10.0.0.1:50007]")]);
    assert_eq!(rig.reqs(), vec![NetRequest::UdpOpen { conn: ConnId(1), local_port: 0 }]);
    let out = rig.event(NetEvent::UdpOpened { conn: ConnId(1), local_port: 15672 });
    assert_eq!(out, vec![log(S, "[Opened: 0]"), resp(0, "0")]);
    rig.bytes(b"write 0 4\r\nping");
    let want =
        NetRequest::Send { conn: ConnId(1), data: b"ping".to_vec(), to: Some((PEER, 50007)) };
    assert_eq!(rig.reqs(), vec![want]);
    rig.event(NetEvent::Sent { conn: ConnId(1), len: 4 });
    rig.event(NetEvent::Received { conn: ConnId(1), data: b"pong".to_vec(), from: (PEER, 50007) });
    assert_eq!(rig.send("read 0 2"), vec![resp(0, "po")], "one datagram");
    assert_eq!(rig.send("read 0 9"), vec![resp(0, "ng")]);
}

#[test]
fn udp_client_open_failure_and_timeout() {
    let mut rig = Rig::up(&[]);
    rig.send("udpc 10.0.0.1 9");
    let out = rig.event(NetEvent::ConnFailed { conn: ConnId(1), reason: ConnFailure::NoSocket });
    assert_eq!(
        out,
        vec![log(E, "UDP open failed: no free socket"), log(S, "[Open failed]"), failed()]
    );
    rig.reqs();
    rig.send("udpc 10.0.0.1 9");
    rig.reqs();
    let out = rig.fire();
    assert_eq!(out, vec![log(S, "[Open failed]"), log(E, "UDP open timed out"), failed()]);
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(2) }]);
}

#[test]
fn udp_server_read_names_the_sender_and_write_picks_the_client() {
    let mut rig = Rig::up(&[]);
    let (h, conn) = rig.udps();
    let a = ([10, 0, 0, 7], 1111);
    rig.event(NetEvent::Received { conn, data: b"from a".to_vec(), from: a });
    assert_eq!(rig.send("udp_server read 100"), vec![resp(0, "10.0.0.7 1111\r\nfrom a")]);
    assert_eq!(rig.send("udps read 100"), vec![]);
    assert_eq!(rig.advance(100), vec![resp(0, "")]);
    rig.bytes(b"udps write 10.0.0.8 2222 3\r\nxyz");
    let want = NetRequest::Send { conn, data: b"xyz".to_vec(), to: Some(([10, 0, 0, 8], 2222)) };
    assert_eq!(rig.reqs(), vec![want]);
    assert_eq!(rig.event(NetEvent::Sent { conn, len: 3 }), vec![success()]);
    // stream_write replies to the last sender.
    rig.bytes(format!("write {h} 2\r\nok").as_bytes());
    let want = NetRequest::Send { conn, data: b"ok".to_vec(), to: Some(a) };
    assert_eq!(rig.reqs(), vec![want]);
}

#[rstest]
#[case::last_sender("0", ([10, 0, 0, 8], 2))]
#[case::locked_to_first("1", ([10, 0, 0, 7], 1))]
fn udp_server_reply_target(#[case] lock: &str, #[case] want: Endpoint) {
    let mut rig = Rig::up(&[&format!("set udp.server.lock_client {lock}")]);
    let (h, conn) = rig.udps();
    for from in [([10, 0, 0, 7], 1), ([10, 0, 0, 8], 2)] {
        rig.event(NetEvent::Received { conn, data: b"x".to_vec(), from });
    }
    rig.bytes(format!("write {h} 1\r\n!").as_bytes());
    assert_eq!(rig.reqs(), vec![NetRequest::Send { conn, data: b"!".to_vec(), to: Some(want) }]);
}

#[test]
fn udp_server_without_a_client_uses_remote_host_or_fails() {
    let mut rig = Rig::up(&[]);
    let (h, conn) = rig.udps();
    let out = rig.bytes(format!("write {h} 1\r\n!").as_bytes());
    assert_eq!(out, vec![log(E, "UDP server: no client to send to"), failed()]);
    rig.send("set udp.server.remote_host 10.0.0.9");
    rig.send("set udp.server.remote_port 7777");
    rig.bytes(format!("write {h} 1\r\n!").as_bytes());
    let to = Some(([10, 0, 0, 9], 7777));
    assert_eq!(rig.reqs(), vec![NetRequest::Send { conn, data: b"!".to_vec(), to }]);
}

#[test]
fn udp_server_start_stop_and_misuse() {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.send("udps read 10"), vec![log(E, "UDP server not running"), failed()]);
    assert_eq!(
        rig.bytes(b"udps write 10.0.0.1 1 1\r\nz"),
        vec![log(E, "UDP server not running"), failed()]
    );
    let (h, conn) = rig.udps();
    assert_eq!(rig.send("udps start"), vec![log(E, "UDP server already running"), failed()]);
    assert_eq!(rig.send("udps read"), vec![resp(4, "Too few args")]);
    assert_eq!(rig.send("udps write 10.0.0.1 1 1 1"), vec![resp(5, "Too many args")]);
    let out = rig.send("udps stop");
    assert_eq!(
        out,
        vec![log(I, &format!("Closing: {h}")), log(S, &format!("[Closed: {h}]")), success()]
    );
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn }]);
    assert_eq!(rig.send("udps stop"), vec![success()]);
}

#[test]
fn new_commands_have_their_shortcuts() {
    for (name, short) in [
        ("stream_list", "list"),
        ("stream_read", "read"),
        ("stream_write", "write"),
        ("stream_close", "close"),
        ("stream_poll", "poll"),
        ("tcp_client", "tcpc"),
        ("tcp_server", "tcps"),
        ("udp_client", "udpc"),
        ("udp_server", "udps"),
    ] {
        assert_eq!(command::lookup(short).map(|c| c.name), Some(name));
    }
}

// ---------------------------------------------------------------------------------------------
// Auto start, network down
// ---------------------------------------------------------------------------------------------

const AUTO_TCPC: [&str; 3] = [
    "set tcp.client.auto_start 1",
    "set tcp.client.remote_host 10.0.0.1",
    "set tcp.client.remote_port 80",
];

#[test]
fn auto_tcp_client_opens_in_the_background_when_the_network_comes_up() {
    let mut rig = Rig::new(&AUTO_TCPC);
    let (out, reqs) = rig.join();
    assert_eq!(out[out.len() - 2..], [log(S, "[Opening: 10.0.0.1:80]"), success()]);
    assert_eq!(
        reqs[2..],
        [NetRequest::TcpConnect { conn: ConnId(1), to: PEER, port: 80, local_port: 0 }]
    );
    // The console is free meanwhile.
    assert_eq!(rig.send("poll"), vec![resp(0, "")]);
    let out = rig.event(NetEvent::TcpConnected { conn: ConnId(1), local_port: 777 });
    assert_eq!(out, vec![log(S, "[Opened: 0]")], "no response: no command asked");
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info\r\n# 0 TCPC 10.0.0.1:80 (777)")]);
    // auto_retries 0: no reconnect once it drops.
    assert_eq!(rig.event(NetEvent::Closed { conn: ConnId(1) }), vec![log(S, "[Closed: 0]")]);
    assert_eq!(rig.m.poll_at(), None);
}

#[test]
fn auto_tcp_client_reconnects_up_to_auto_retries() {
    let mut setup = AUTO_TCPC.to_vec();
    setup.extend(["set tcp.client.auto_retries 1", "set tcp.client.retries 0"]);
    let mut rig = Rig::new(&setup);
    rig.join();
    rig.event(NetEvent::TcpConnected { conn: ConnId(1), local_port: 777 });
    assert_eq!(
        rig.event(NetEvent::ConnFailed { conn: ConnId(1), reason: ConnFailure::Refused }),
        vec![log(S, "[Closed: 0]")]
    );
    assert_eq!(rig.m.poll_at(), Some(rig.now + Duration::from_millis(1000)), "retry_period");
    assert_eq!(rig.fire(), vec![log(S, "[Opening: 10.0.0.1:80]")]);
    assert_eq!(
        rig.reqs(),
        vec![NetRequest::TcpConnect { conn: ConnId(2), to: PEER, port: 80, local_port: 0 }]
    );
    let out = rig.event(NetEvent::ConnFailed { conn: ConnId(2), reason: ConnFailure::Refused });
    assert_eq!(out, vec![log(I, "Connect failed: refused"), log(S, "[Open failed]")]);
    assert_eq!(rig.m.poll_at(), None, "rounds used up");
}

#[test]
fn auto_tcp_client_closed_by_command_does_not_reconnect() {
    let mut setup = AUTO_TCPC.to_vec();
    setup.push("set tcp.client.auto_retries 255");
    let mut rig = Rig::new(&setup);
    rig.join();
    rig.event(NetEvent::TcpConnected { conn: ConnId(1), local_port: 777 });
    rig.send("close 0");
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(1) }]);
    assert_eq!(rig.event(NetEvent::Closed { conn: ConnId(1) }), vec![]);
    assert_eq!(rig.m.poll_at(), None);
}

#[test]
fn auto_tcp_client_resolves_a_host_name() {
    let mut rig = Rig::new(&[
        "set tcp.client.auto_start 1",
        "set tcp.client.remote_host echo.lab",
        "set tcp.client.remote_port 7",
    ]);
    let (_, reqs) = rig.join();
    let id = match reqs.last() {
        Some(NetRequest::Resolve { id, name }) if name == "echo.lab" => *id,
        other => panic!("unexpected {other:?}"),
    };
    rig.event(NetEvent::Resolved { id, address: Some([10, 0, 0, 9]) });
    let want =
        NetRequest::TcpConnect { conn: ConnId(1), to: [10, 0, 0, 9], port: 7, local_port: 0 };
    assert_eq!(rig.reqs(), vec![want]);
}

#[test]
fn auto_servers_start_with_the_network() {
    let mut rig = Rig::new(&["set tcp.server.auto_start 1", "set udp.server.auto_start 1"]);
    let (out, reqs) = rig.join();
    assert!(out.contains(&log(I, "TCP server listening on port 3000")), "{out:?}");
    assert_eq!(
        reqs[2..],
        [
            NetRequest::TcpListen { listener: ConnId(1), port: 3000 },
            NetRequest::UdpOpen { conn: ConnId(2), local_port: 3000 }
        ]
    );
    assert_eq!(
        rig.event(NetEvent::UdpOpened { conn: ConnId(2), local_port: 3000 }),
        vec![log(S, "[Opened: 0]")]
    );
    assert_eq!(rig.send("tcps start"), vec![log(E, "TCP server already running"), failed()]);
}

#[rstest]
#[case::wlan(&["set tcp.client.auto_interface wlan"], true)]
#[case::default_is_wlan(&[], true)]
#[case::softap(&["set tcp.client.auto_interface softap"], false)]
#[case::default_is_softap(&["set network.default_interface softap"], false)]
#[case::wlan_overrides_default(
    &["set network.default_interface softap", "set tcp.client.auto_interface wlan"],
    true
)]
fn auto_start_runs_on_its_auto_interface(#[case] extra: &[&str], #[case] on_wlan: bool) {
    let mut setup = AUTO_TCPC.to_vec();
    setup.extend_from_slice(extra);
    let mut rig = Rig::new(&setup);
    let (out, reqs) = rig.join_with("network_up wlan");
    let connects = reqs.iter().filter(|r| matches!(r, NetRequest::TcpConnect { .. })).count();
    assert_eq!(connects, usize::from(on_wlan), "{reqs:?}");
    let waits = log(I, "tcp.client: auto start waits for softap");
    assert_eq!(out.contains(&waits), !on_wlan, "{out:?}");
}

#[rstest]
#[case::tcp_server("tcp.server", "tcp.server.auto_start 1")]
#[case::udp_server("udp.server", "udp.server.auto_start 1")]
fn auto_servers_follow_their_auto_interface(#[case] prefix: &str, #[case] start: &str) {
    let iface = format!("set {prefix}.auto_interface softap");
    let start = format!("set {start}");
    let mut rig = Rig::new(&[start.as_str(), iface.as_str()]);
    let (out, reqs) = rig.join();
    assert!(out.contains(&log(I, &format!("{prefix}: auto start waits for softap"))), "{out:?}");
    assert!(
        !reqs
            .iter()
            .any(|r| matches!(r, NetRequest::TcpListen { .. } | NetRequest::UdpOpen { .. })),
        "{reqs:?}"
    );
}

/// An auto UDP client whose host name does not resolve: the Resolve it asks for, answered
/// "not found"; returns what the module printed.
fn udpc_not_found(rig: &mut Rig, reqs: &[NetRequest]) -> Vec<F> {
    let id = match reqs.last() {
        Some(NetRequest::Resolve { id, name }) if name == "gone.lab" => *id,
        other => panic!("unexpected {other:?}"),
    };
    rig.event(NetEvent::Resolved { id, address: None })
}

const AUTO_UDPC: [&str; 3] = [
    "set udp.client.auto_start 1",
    "set udp.client.remote_host gone.lab",
    "set udp.client.remote_port 9",
];

#[test]
fn auto_udp_client_retries_every_second_with_auto_retry() {
    let mut setup = AUTO_UDPC.to_vec();
    setup.push("set udp.client.auto_retry 1");
    let mut rig = Rig::new(&setup);
    let (_, reqs) = rig.join();
    let out = udpc_not_found(&mut rig, &reqs);
    assert_eq!(
        out,
        vec![
            log(E, "Host not found: gone.lab"),
            log(S, "[Open failed]"),
            log(I, "Retrying every 1000 ms")
        ]
    );
    for _ in 0..3 {
        assert_eq!(rig.m.poll_at(), Some(rig.now + AUTO_RETRY));
        assert_eq!(rig.fire(), vec![], "the retries are silent");
        let reqs = rig.reqs();
        assert_eq!(udpc_not_found(&mut rig, &reqs), vec![]);
    }
    // This time the name resolves: the stream opens and the retries end.
    rig.fire();
    let id = match rig.reqs().as_slice() {
        [NetRequest::Resolve { id, .. }] => *id,
        other => panic!("unexpected {other:?}"),
    };
    rig.event(NetEvent::Resolved { id, address: Some(PEER) });
    let conn = match rig.reqs().as_slice() {
        [NetRequest::UdpOpen { conn, local_port: 0 }] => *conn,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        rig.event(NetEvent::UdpOpened { conn, local_port: 5000 }),
        vec![log(S, "[Opened: 0]")]
    );
    assert_eq!(rig.m.poll_at(), None);
}

#[test]
fn auto_udp_client_retries_only_a_failed_lookup() {
    let mut rig = Rig::new(&[
        "set udp.client.auto_start 1",
        "set udp.client.remote_host 10.0.0.1",
        "set udp.client.auto_retry 1",
    ]);
    let (_, reqs) = rig.join();
    let conn = match reqs.last() {
        Some(NetRequest::UdpOpen { conn, .. }) => *conn,
        other => panic!("unexpected {other:?}"),
    };
    let out = rig.event(NetEvent::ConnFailed { conn, reason: ConnFailure::NoSocket });
    assert_eq!(out, vec![log(I, "Connect failed: no free socket"), log(S, "[Open failed]")]);
    assert_eq!(rig.m.poll_at(), None, "no retry: the socket, not the name, failed");
}

#[test]
fn auto_udp_client_without_auto_retry_gives_up() {
    let mut rig = Rig::new(&AUTO_UDPC);
    let (_, reqs) = rig.join();
    let out = udpc_not_found(&mut rig, &reqs);
    assert_eq!(out, vec![log(E, "Host not found: gone.lab"), log(S, "[Open failed]")]);
    assert_eq!(rig.m.poll_at(), None);
}

#[test]
fn auto_udp_client_retries_end_when_the_network_goes_down() {
    let mut setup = AUTO_UDPC.to_vec();
    setup.push("set udp.client.auto_retry 1");
    let mut rig = Rig::new(&setup);
    let (_, reqs) = rig.join();
    udpc_not_found(&mut rig, &reqs);
    rig.send("network_down");
    rig.reqs();
    assert_eq!(rig.m.poll_at(), None);
}

#[test]
fn network_down_closes_every_stream_and_the_server() {
    let mut rig = Rig::up(&[]);
    let listener = rig.tcps();
    rig.tcpc(80);
    rig.event(NetEvent::TcpAccepted { listener, conn: ConnId(ACCEPTED_BASE), peer: (PEER, 1) });
    let out = rig.send("network_down");
    assert_eq!(out[out.len() - 3..], [log(S, "[Closed: 0]"), log(S, "[Closed: 1]"), success()]);
    let reqs = rig.reqs();
    assert!(reqs.contains(&NetRequest::TcpUnlisten { listener }), "{reqs:?}");
    assert!(reqs.contains(&NetRequest::Close { conn: ConnId(2) }), "{reqs:?}");
    assert!(reqs.contains(&NetRequest::Close { conn: ConnId(ACCEPTED_BASE) }), "{reqs:?}");
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")]);
}

// ---------------------------------------------------------------------------------------------
// Serial STREAM mode
// ---------------------------------------------------------------------------------------------

/// Boots from NVM in STREAM mode (machine framing, static IP, auto-join, an auto TCP client to
/// 10.0.0.1:80) and runs the join; returns the rig with the client's connection open.
fn streaming(extra: &[(&str, &str)]) -> (Rig, ConnId) {
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("system.cmd.echo", b"0"),
        ("system.cmd.header_enabled", b"1"),
        ("system.cmd.prompt_enabled", b"0"),
        ("system.print_level", b"all"),
        ("bus.mode", b"stream"),
        ("wlan.ssid", b"lab"),
        ("wlan.passkey", b"password1"),
        ("wlan.dhcp.enabled", b"0"),
        ("wlan.static.ip", b"10.0.0.5"),
        ("wlan.auto_join.enabled", b"1"),
        ("tcp.client.auto_start", b"1"),
        ("tcp.client.remote_host", b"10.0.0.1"),
        ("tcp.client.remote_port", b"80"),
    ];
    entries.extend(extra.iter().map(|(n, v)| (*n, v.as_bytes())));
    let image = nvm::encode(entries);
    let mut rig = Rig { m: Module::boot(board(), Some(&image), T0), now: T0 };
    let out = frames(&rig.m.take_output());
    assert_eq!(out.last(), Some(&log(S, "[Ready]")), "banner and [Ready], then streaming");
    let id = match rig.reqs().as_slice() {
        [NetRequest::Scan { id, .. }] => *id,
        other => panic!("unexpected {other:?}"),
    };
    let bss = lab_bss(Security::Wpa2Aes);
    assert_eq!(rig.event(NetEvent::ScanDone { id, results: vec![bss] }), vec![], "no logs");
    let attempt = rig.m.join_counters().1;
    assert_eq!(rig.event(NetEvent::Associated { attempt }), vec![]);
    let conn = match rig.reqs().last() {
        Some(NetRequest::TcpConnect { conn, to: PEER, port: 80, .. }) => *conn,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(rig.event(NetEvent::TcpConnected { conn, local_port: 1234 }), vec![]);
    (rig, conn)
}

#[test]
fn stream_mode_moves_bytes_both_ways() {
    let (mut rig, conn) = streaming(&[]);
    // Bus → network: flushed after bus.stream.flush_time (20 ms), CR LF and all.
    rig.m.feed(b"list\r\n", rig.now);
    assert_eq!(rig.m.take_output(), b"", "no echo, not a command");
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.m.poll_at(), Some(rig.now + Duration::from_millis(20)));
    rig.now = rig.now + Duration::from_millis(20);
    rig.m.tick(rig.now);
    assert_eq!(rig.reqs(), vec![send_req(conn, b"list\r\n")]);
    // Network → bus: raw.
    let data = b"R000003\r\nhi".to_vec();
    rig.m.net_event(NetEvent::Received { conn, data: data.clone(), from: (PEER, 80) }, rig.now);
    assert_eq!(rig.m.take_output(), data);
}

#[test]
fn stream_mode_flushes_at_flush_count() {
    let (mut rig, conn) = streaming(&[("bus.stream.flush_count", "4")]);
    rig.m.feed(b"abcdef", rig.now);
    assert_eq!(rig.reqs(), vec![send_req(conn, b"abcd")]);
}

#[test]
fn break_in_after_silence_then_exit() {
    let (mut rig, conn) = streaming(&[("bus.stream.cmd_seq", "$$$")]);
    rig.now = rig.now + Duration::from_millis(3000);
    rig.m.feed(b"$$", rig.now);
    assert_eq!(rig.m.take_output(), b"");
    let out = rig.bytes(b"$list\r\n");
    assert_eq!(
        out,
        vec![log(S, "[Command mode]"), resp(0, "! # Type Info\r\n# 0 TCPC 10.0.0.1:80 (1234)")]
    );
    assert_eq!(rig.reqs(), vec![], "the sequence is not data");
    let out = rig.send("read 0 10");
    assert_eq!(out, vec![log(E, "Stream 0 streams to the bus"), failed()]);
    let out = rig.bytes(b"write 0 2\r\nab");
    assert_eq!(out, vec![log(E, "Stream 0 streams to the bus"), failed()]);
    // Data received meanwhile waits, and comes out after `exit`.
    rig.event(NetEvent::Received { conn, data: b"later".to_vec(), from: (PEER, 80) });
    rig.m.feed(b"exit\r\nxy", rig.now);
    assert_eq!(rig.m.take_output(), b"R000009\r\nSuccess\r\nlater");
    rig.fire();
    assert_eq!(rig.reqs(), vec![send_req(conn, b"xy")]);
}

#[test]
fn no_break_in_without_three_seconds_of_silence() {
    let (mut rig, conn) = streaming(&[("bus.stream.cmd_seq", "$$$")]);
    rig.now = rig.now + Duration::from_millis(3000);
    rig.m.feed(b"x", rig.now);
    rig.fire();
    rig.now = rig.now + Duration::from_millis(2979);
    rig.m.feed(b"$$$", rig.now);
    assert_eq!(rig.m.take_output(), b"");
    rig.fire();
    assert_eq!(rig.reqs(), vec![send_req(conn, b"x"), send_req(conn, b"$$$")]);
}

#[test]
fn a_broken_sequence_is_data() {
    let (mut rig, conn) = streaming(&[("bus.stream.cmd_seq", "$$$")]);
    rig.now = rig.now + Duration::from_millis(5000);
    rig.m.feed(b"$$x", rig.now);
    rig.fire();
    assert_eq!(rig.reqs(), vec![send_req(conn, b"$$x")]);
}

#[test]
fn stream_mode_server_takes_one_client() {
    let mut rig = Rig::up(&[]);
    rig.m.svc.bus.configured = true;
    let listener = rig.tcps();
    rig.event(NetEvent::TcpAccepted { listener, conn: ConnId(ACCEPTED_BASE), peer: (PEER, 1) });
    rig.event(NetEvent::TcpAccepted { listener, conn: ConnId(ACCEPTED_BASE + 1), peer: (PEER, 2) });
    assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: ConnId(ACCEPTED_BASE + 1) }]);
}

#[test]
fn exit_outside_stream_mode_fails() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.send("exit"), vec![log(E, "Not in stream mode"), failed()]);
}

// ---------------------------------------------------------------------------------------------
// TLS: the layer between the services and the platform, over a toy engine whose "records"
// are readable (the real engine, mbedTLS, is tested in its own crate and against OpenSSL
// peers through the simulated module).
// ---------------------------------------------------------------------------------------------

mod tls {
    use super::*;
    use crate::tls::{
        Progress, Role, Suite, TlsCode, TlsConfig, TlsEngine, TlsFailure, TlsSession, TlsVersion,
    };
    use alloc::boxed::Box;

    /// A client says `HELLO`, the server `READY`; application data is `E` + plaintext; a peer
    /// that says `FAIL` fails the handshake as an untrusted certificate would.
    struct Toy {
        client: bool,
        up: bool,
        out: Vec<u8>,
        plain: Vec<u8>,
    }

    impl TlsSession for Toy {
        fn start(&mut self) -> Progress {
            if self.client {
                self.out.extend_from_slice(b"HELLO");
            }
            Progress::Handshaking
        }
        fn feed(&mut self, ciphertext: &[u8]) -> Progress {
            match (self.up, ciphertext) {
                (false, b"FAIL") => Progress::Failed(TlsFailure::new(
                    TlsCode::UntrustedCertificate,
                    crate::tls::state::SERVER_CERTIFICATE,
                    -9984,
                )),
                (false, b"READY") if self.client => {
                    self.up = true;
                    Progress::Established
                }
                (false, b"HELLO") if !self.client => {
                    self.out.extend_from_slice(b"READY");
                    self.up = true;
                    Progress::Established
                }
                (false, _) => Progress::Handshaking,
                (true, data) => {
                    self.plain.extend_from_slice(data.strip_prefix(b"E").unwrap_or(data));
                    Progress::Established
                }
            }
        }
        fn eof(&mut self) -> Progress {
            Progress::Failed(TlsFailure::new(TlsCode::ReceiveFailed, self.state(), -0x7280))
        }
        fn write(&mut self, plaintext: &[u8]) -> Result<(), TlsFailure> {
            self.out.push(b'E');
            self.out.extend_from_slice(plaintext);
            Ok(())
        }
        fn close_notify(&mut self) {
            self.out.extend_from_slice(b"BYE");
        }
        fn take_ciphertext(&mut self) -> Vec<u8> {
            core::mem::take(&mut self.out)
        }
        fn take_plaintext(&mut self) -> Vec<u8> {
            core::mem::take(&mut self.plain)
        }
        fn state(&self) -> u8 {
            if self.up { 15 } else { 2 }
        }
        fn negotiated(&self) -> Option<(Suite, TlsVersion)> {
            self.up.then_some((crate::tls::SUITES[0], TlsVersion::Tls1_2))
        }
    }

    struct ToyEngine;

    impl TlsEngine for ToyEngine {
        fn session(&mut self, config: &TlsConfig) -> Result<Box<dyn TlsSession>, TlsFailure> {
            let client = matches!(config.role, Role::Client { .. });
            Ok(Box::new(Toy { client, up: false, out: Vec::new(), plain: Vec::new() }))
        }
    }

    fn rig() -> Rig {
        let mut rig = Rig::up(&["set network.tls.ca_cert_verify_enabled 0"]);
        rig.m.set_tls(Box::new(ToyEngine));
        rig
    }

    /// `tls_client` to port 443 up to the TCP connection: the conn.
    fn connect(rig: &mut Rig) -> ConnId {
        assert_eq!(rig.send("tls_client 10.0.0.1 443"), vec![log(S, "[Opening: 10.0.0.1:443]")]);
        match rig.reqs().as_slice() {
            [NetRequest::TcpConnect { conn, port: 443, .. }] => *conn,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tls_client_answers_the_handle_only_after_the_handshake() {
        let mut rig = rig();
        let conn = connect(&mut rig);
        assert_eq!(rig.event(NetEvent::TcpConnected { conn, local_port: 5000 }), vec![]);
        assert_eq!(rig.reqs(), vec![send_req(conn, b"HELLO")], "the ClientHello goes out");
        let out =
            rig.event(NetEvent::Received { conn, data: b"READY".to_vec(), from: (PEER, 443) });
        assert_eq!(out, vec![log(S, "[Opened: 0]"), resp(0, "0")]);
        assert_eq!(
            rig.send("list"),
            vec![resp(0, "! # Type Info\r\n# 0 TLSC 10.0.0.1:443 (5000)")]
        );
    }

    #[test]
    fn application_data_is_encrypted_out_and_decrypted_in_and_sent_counts_plaintext() {
        let mut rig = rig();
        let conn = connect(&mut rig);
        rig.event(NetEvent::TcpConnected { conn, local_port: 5000 });
        rig.event(NetEvent::Sent { conn, len: 5 });
        rig.event(NetEvent::Received { conn, data: b"READY".to_vec(), from: (PEER, 443) });
        rig.reqs();
        assert_eq!(rig.bytes(b"write 0 3\r\nabc"), vec![]);
        assert_eq!(rig.reqs(), vec![send_req(conn, b"Eabc")]);
        assert_eq!(rig.event(NetEvent::Sent { conn, len: 4 }), vec![success()]);
        rig.event(NetEvent::Received { conn, data: b"Exyz".to_vec(), from: (PEER, 443) });
        assert_eq!(rig.send("read 0 10"), vec![resp(0, "xyz")]);
        assert_eq!(rig.send("close 0").last(), Some(&success()));
        assert_eq!(
            rig.reqs(),
            vec![send_req(conn, b"BYE"), NetRequest::Close { conn }],
            "close_notify, then the TCP close"
        );
    }

    #[test]
    fn a_failed_handshake_prints_the_chapters_error_and_fails_without_retrying() {
        let mut rig = rig();
        let conn = connect(&mut rig);
        rig.event(NetEvent::TcpConnected { conn, local_port: 5000 });
        rig.reqs();
        let out = rig.event(NetEvent::Received { conn, data: b"FAIL".to_vec(), from: (PEER, 443) });
        assert_eq!(
            out,
            vec![
                log(E, "Error with TLS handshake: 5035 (state: 3, code: -9984)"),
                log(S, "[Open failed]"),
                failed()
            ]
        );
        assert_eq!(rig.reqs(), vec![NetRequest::Close { conn }]);
        assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")]);
    }

    #[test]
    fn a_handshake_longer_than_handshake_timeout_fails_with_5031() {
        let mut rig = rig();
        rig.send("set network.tls.handshake_timeout 2000");
        let conn = connect(&mut rig);
        rig.event(NetEvent::TcpConnected { conn, local_port: 5000 });
        rig.reqs();
        assert_eq!(rig.advance(1999), vec![]);
        let out = rig.advance(1);
        assert_eq!(
            out,
            vec![
                log(E, "Error with TLS handshake: 5031 (state: 2, code: 0)"),
                log(S, "[Open failed]"),
                failed()
            ]
        );
        assert_eq!(rig.reqs(), vec![NetRequest::Close { conn }]);
    }

    #[test]
    fn the_peer_closing_during_the_handshake_is_the_engines_eof_failure() {
        let mut rig = rig();
        let conn = connect(&mut rig);
        rig.event(NetEvent::TcpConnected { conn, local_port: 5000 });
        rig.reqs();
        let out = rig.event(NetEvent::Closed { conn });
        assert_eq!(out[0], log(E, "Error with TLS handshake: 5001 (state: 2, code: -29312)"));
        assert_eq!(rig.reqs(), vec![], "the platform is done with it already");
    }

    #[test]
    fn without_an_engine_tls_is_feature_unavailable() {
        let mut rig = Rig::up(&["set network.tls.ca_cert_verify_enabled 0"]);
        let conn = connect(&mut rig);
        let out = rig.event(NetEvent::TcpConnected { conn, local_port: 5000 });
        assert_eq!(out[0], log(E, "Error with TLS handshake: 5004 (state: 0, code: 0)"));
    }

    #[test]
    fn a_missing_ca_file_fails_before_connecting() {
        let mut rig = Rig::up(&["set network.tls.ca_cert missing.pem"]);
        rig.m.set_tls(Box::new(ToyEngine));
        let out = rig.send("tls_client 10.0.0.1 443");
        assert_eq!(
            out,
            vec![
                log(S, "[Opening: 10.0.0.1:443]"),
                log(E, "Error with TLS handshake: 5016 (state: 0, code: 0)"),
                log(S, "[Open failed]"),
                failed()
            ]
        );
        assert_eq!(rig.reqs(), vec![]);
    }

    #[test]
    fn a_tls_server_without_its_certificate_does_not_start() {
        let mut rig = rig();
        let out = rig.send("tls_server start");
        assert_eq!(
            out,
            vec![log(E, "Error with TLS handshake: 5014 (state: 0, code: 0)"), failed()]
        );
    }

    #[test]
    fn a_tls_server_client_is_a_tlss_stream_once_its_handshake_is_over() {
        let mut rig = rig();
        for (name, data) in [("srv.pem", b"CERT".as_slice()), ("srv.key", b"KEY".as_slice())] {
            let new = crate::fs::NewFile {
                name: name.into(),
                size: data.len(),
                version: crate::fs::Version::parse("1.0.0").expect("a version"),
                kind: 0xfe,
                flags: 0,
                crc: None,
            };
            rig.m.svc.files.fs.create(new, data).expect("created");
        }
        rig.send("set tcp.server.tls_cert srv.pem");
        rig.send("set tcp.server.tls_key srv.key");
        assert_eq!(rig.send("tls_server start").last(), Some(&success()));
        let listener = match rig.reqs().as_slice() {
            [NetRequest::TcpListen { listener, port: 3000 }] => *listener,
            other => panic!("unexpected {other:?}"),
        };
        let conn = ConnId(ACCEPTED_BASE);
        let peer = (PEER, 50000);
        assert_eq!(rig.event(NetEvent::TcpAccepted { listener, conn, peer }), vec![]);
        assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")], "not a stream yet");
        let out = rig.event(NetEvent::Received { conn, data: b"HELLO".to_vec(), from: peer });
        assert_eq!(
            out,
            vec![
                log(
                    3,
                    "TLS client 10.0.0.1:50000: TLSv1.2 MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
                ),
                log(S, "[Opened: 0]")
            ]
        );
        assert_eq!(rig.reqs(), vec![send_req(conn, b"READY")]);
        assert_eq!(
            rig.send("list"),
            vec![resp(0, "! # Type Info\r\n# 0 TLSS 10.0.0.5:3000 10.0.0.1:50000")]
        );
        // A second client that fails its handshake is logged and closed; no stream.
        let bad = ConnId(ACCEPTED_BASE + 1);
        rig.event(NetEvent::TcpAccepted { listener, conn: bad, peer: (PEER, 50001) });
        let out = rig.event(NetEvent::Received { conn: bad, data: b"FAIL".to_vec(), from: peer });
        assert_eq!(
            out,
            vec![log(
                E,
                "TLS client 10.0.0.1:50001: Error with TLS handshake: 5035 (state: 3, code: -9984)"
            )]
        );
        assert_eq!(rig.reqs(), vec![NetRequest::Close { conn: bad }]);
    }
}

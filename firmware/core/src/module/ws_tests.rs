//! The WebSocket parts of the HTTP server (`/stream`, `/cmdstream`), driven through
//! `net_event`s (an accepted client, its bytes, its close) and checked on the bytes the
//! module sends (`NetRequest::Send`).

use super::*;
use crate::msgpack::{Id, Request, encode_response};
use crate::net::{ACCEPTED_BASE, Security};
use crate::streams::NETWORK_MAX;
use crate::ws::frame::{Opcode, encode, encode_close, encode_masked};
use alloc::vec;

use super::frames::*;
use super::tests::board;

const T0: Instant = Instant::ZERO;
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

struct Rig {
    m: Module,
    now: Instant,
    listener: ConnId,
    next_client: u32,
}

/// What the module did on one connection.
#[derive(Debug, Default, PartialEq, Eq)]
struct Wire {
    sent: Vec<u8>,
    closed: bool,
}

fn upgrade_request(method: &str, path: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: m\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

fn switching() -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
    )
    .into_bytes()
}

fn client(op: Opcode, payload: &[u8]) -> Vec<u8> {
    encode_masked(op, true, payload, MASK)
}

impl Rig {
    fn up() -> Self {
        let mut rig = Self {
            m: Module::boot(board(), None, T0),
            now: T0,
            listener: ConnId::NONE,
            next_client: 0,
        };
        rig.m.feed(b"set system.cmd.format machine\r\n", T0);
        rig.m.take_output();
        for line in [
            "set system.print_level all",
            "set wlan.ssid lab",
            "set wlan.passkey password1",
            "set wlan.dhcp.enabled 0",
            "set wlan.static.ip 10.0.0.5",
            "set wlan.static.gateway 10.0.0.1",
            "set http.server.enabled 1",
        ] {
            assert_eq!(rig.send(line).last(), Some(&resp(0, "Set OK")), "{line}");
        }
        rig.send("network_up");
        let id = match rig.reqs().as_slice() {
            [NetRequest::Scan { id, .. }] => *id,
            other => panic!("unexpected {other:?}"),
        };
        let bss = lab_bss(Security::Wpa2Aes);
        rig.event(NetEvent::ScanDone { id, results: vec![bss] });
        let attempt = rig.m.join_counters().1;
        rig.event(NetEvent::Associated { attempt });
        rig.listener = rig
            .reqs()
            .iter()
            .find_map(|r| match r {
                NetRequest::TcpListen { listener, port: 80 } => Some(*listener),
                _ => None,
            })
            .expect("the HTTP server listens");
        rig
    }

    fn send(&mut self, line: &str) -> Vec<F> {
        self.m.feed(format!("{line}\r\n").as_bytes(), self.now);
        frames(&self.m.take_output())
    }

    fn event(&mut self, event: NetEvent) -> Vec<F> {
        self.m.net_event(event, self.now);
        frames(&self.m.take_output())
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

    fn bytes(&mut self, conn: ConnId, data: &[u8]) -> Vec<F> {
        self.event(NetEvent::Received { conn, data: data.to_vec(), from: ([10, 0, 0, 9], 50000) })
    }

    /// What went out on `conn`; each send is answered with `Sent`.
    fn wire(&mut self, conn: ConnId) -> Wire {
        let mut wire = Wire::default();
        for req in self.reqs() {
            match req {
                NetRequest::Send { conn: c, data, .. } if c == conn => {
                    assert!(!wire.closed, "bytes after the close");
                    let len = data.len();
                    wire.sent.extend(data);
                    self.m.net_event(NetEvent::Sent { conn, len }, self.now);
                }
                NetRequest::Close { conn: c } if c == conn => wire.closed = true,
                _ => {}
            }
        }
        wire
    }

    /// A client upgrades on `path`: the connection and the module's answer.
    fn open(&mut self, method: &str, path: &str) -> (ConnId, Wire) {
        self.next_client += 1;
        let conn = ConnId(ACCEPTED_BASE + self.next_client);
        let listener = self.listener;
        self.event(NetEvent::TcpAccepted { listener, conn, peer: ([10, 0, 0, 9], 50000) });
        self.bytes(conn, upgrade_request(method, path).as_bytes());
        (conn, self.wire(conn))
    }

    fn stream(&mut self) -> ConnId {
        let (conn, wire) = self.open("GET", "/stream");
        assert_eq!(wire, Wire { sent: switching(), closed: false });
        conn
    }
}

#[test]
fn get_and_post_stream_open_a_webs_stream_listed_and_counted() {
    let mut rig = Rig::up();
    rig.stream();
    let (_, wire) = rig.open("POST", "/stream");
    assert_eq!(wire.sent, switching(), "POST /stream upgrades too");
    let list = rig.send("stream_list");
    assert_eq!(
        list.last(),
        Some(&resp(
            0,
            "! # Type Info\r\n# 0 WEBS 10.0.0.9:50000 (80)\r\n# 1 WEBS 10.0.0.9:50000 (80)"
        ))
    );
}

#[test]
fn a_message_is_read_with_stream_read_in_any_chunking() {
    let mut rig = Rig::up();
    let conn = rig.stream();
    let bytes = [
        encode_masked(Opcode::Text, false, b"hel", MASK),
        client(Opcode::Ping, b"p"),
        encode_masked(Opcode::Continuation, true, b"lo", MASK),
        client(Opcode::Binary, &[0, 255]),
    ]
    .concat();
    for b in &bytes {
        rig.bytes(conn, &[*b]);
    }
    assert_eq!(rig.wire(conn).sent, encode(Opcode::Pong, true, b"p"), "ping answered");
    assert_eq!(rig.send("stream_poll 0").last(), Some(&resp(0, "1")));
    rig.m.feed(b"stream_read 0 100\r\n", rig.now);
    let out = rig.m.take_output();
    assert!(out.ends_with(b"hello\x00\xff\r\n"), "{out:?}");
}

#[test]
fn stream_write_sends_one_frame_text_or_binary() {
    let mut rig = Rig::up();
    let conn = rig.stream();
    rig.m.feed(b"stream_write 0 5\r\nhello", rig.now);
    assert_eq!(rig.wire(conn).sent, encode(Opcode::Text, true, b"hello"));
    assert_eq!(frames(&rig.m.take_output()).last(), Some(&success()));
    rig.m.feed(b"stream_write 0 2\r\n\xff\x00", rig.now);
    assert_eq!(rig.wire(conn).sent, encode(Opcode::Binary, true, &[0xff, 0]));
    assert_eq!(frames(&rig.m.take_output()).last(), Some(&success()));
}

#[test]
fn a_read_waiting_is_answered_by_a_message() {
    let mut rig = Rig::up();
    let conn = rig.stream();
    rig.send("set bus.command.read_timeout 2000");
    rig.m.feed(b"stream_read 0 10\r\n", rig.now);
    assert_eq!(rig.m.take_output(), b"");
    let out = rig.bytes(conn, &client(Opcode::Text, b"hi"));
    assert_eq!(out.last(), Some(&resp(0, "hi")));
}

#[test]
fn stream_close_sends_a_close_frame_then_closes() {
    let mut rig = Rig::up();
    let conn = rig.stream();
    let out = rig.send("stream_close 0");
    assert_eq!(out.last(), Some(&success()));
    assert_eq!(rig.wire(conn), Wire { sent: encode_close(1000, ""), closed: true });
    assert_eq!(rig.send("stream_poll 0").last(), Some(&bad_args()));
}

#[test]
fn the_peers_close_frame_is_echoed_and_ends_the_stream() {
    let mut rig = Rig::up();
    let conn = rig.stream();
    let out = rig.bytes(conn, &client(Opcode::Close, &[0x03, 0xe8]));
    assert!(out.contains(&log(S, "[Closed: 0]")), "{out:?}");
    assert_eq!(rig.wire(conn), Wire { sent: encode_close(1000, ""), closed: true });
    assert_eq!(rig.send("stream_list").last(), Some(&resp(0, "! # Type Info")));
}

#[test]
fn data_before_the_close_stays_readable() {
    let mut rig = Rig::up();
    let conn = rig.stream();
    rig.bytes(conn, &[client(Opcode::Text, b"last"), client(Opcode::Close, &[])].concat());
    assert_eq!(rig.wire(conn), Wire { sent: vec![0x88, 0], closed: true });
    assert_eq!(rig.send("stream_poll 0").last(), Some(&resp(0, "2")));
    rig.m.feed(b"stream_read 0 10\r\n", rig.now);
    assert!(rig.m.take_output().ends_with(b"last\r\n"));
}

#[rstest::rstest]
#[case::unmasked(encode(Opcode::Text, true, b"x"), 1002)]
#[case::reserved_opcode(vec![0x83, 0x80, 1, 2, 3, 4], 1002)]
#[case::invalid_utf8(client(Opcode::Text, &[0xc3, 0x28]), 1007)]
#[case::too_big(vec![0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0], 1009)]
fn hostile_frames_fail_the_connection(#[case] bytes: Vec<u8>, #[case] code: u16) {
    let mut rig = Rig::up();
    let conn = rig.stream();
    let out = rig.bytes(conn, &bytes);
    assert!(out.contains(&log(S, "[Closed: 0]")), "{out:?}");
    let wire = rig.wire(conn);
    assert!(wire.closed);
    assert_eq!(&wire.sent[..2], &[0x88, wire.sent.len() as u8 - 2]);
    assert_eq!(u16::from_be_bytes([wire.sent[2], wire.sent[3]]), code);
}

#[test]
fn no_free_handle_is_404() {
    let mut rig = Rig::up();
    for _ in 0..NETWORK_MAX {
        rig.stream();
    }
    let (_, wire) = rig.open("GET", "/stream");
    assert!(wire.closed);
    assert!(wire.sent.starts_with(b"HTTP/1.1 404 "), "{}", String::from_utf8_lossy(&wire.sent));
    let (_, wire) = rig.open("GET", "/cmdstream");
    assert_eq!(wire.sent, switching(), "a command stream is not a stream");
}

#[rstest::rstest]
#[case::no_upgrade("GET /stream HTTP/1.1\r\n\r\n", 400)]
#[case::put("PUT /stream HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 405)]
#[case::post_cmdstream("POST /cmdstream HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 405)]
#[case::bad_key(
    "GET /cmdstream HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n\r\n",
    400
)]
#[case::version(
    "GET /stream HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    426
)]
fn refused_upgrades(#[case] raw: &str, #[case] status: u16) {
    let mut rig = Rig::up();
    rig.next_client += 1;
    let conn = ConnId(ACCEPTED_BASE + rig.next_client);
    let listener = rig.listener;
    rig.event(NetEvent::TcpAccepted { listener, conn, peer: ([10, 0, 0, 9], 50000) });
    rig.bytes(conn, raw.as_bytes());
    let wire = rig.wire(conn);
    assert!(wire.closed);
    let text = String::from_utf8_lossy(&wire.sent);
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
    if status == 426 {
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"), "{text}");
    }
}

fn command(command: &str, data: Option<&[u8]>, id: Option<u64>) -> Vec<u8> {
    let request = Request {
        command: command.into(),
        data: data.map(<[u8]>::to_vec),
        id: id.map(Id::Unsigned),
    };
    client(Opcode::Binary, &request.encode())
}

/// The response message (a non-empty body ends with CR LF).
fn answer(id: Option<u64>, code: u8, body: &[u8]) -> Vec<u8> {
    let mut text = body.to_vec();
    if !text.is_empty() {
        text.extend_from_slice(b"\r\n");
    }
    encode(Opcode::Binary, true, &encode_response(id.map(Id::Unsigned), code, &text))
}

#[test]
fn cmdstream_runs_many_commands_on_one_connection() {
    let mut rig = Rig::up();
    let (conn, wire) = rig.open("GET", "/cmdstream");
    assert_eq!(wire.sent, switching());
    rig.bytes(conn, &command("get http.server.port", None, Some(1)));
    assert_eq!(rig.wire(conn).sent, answer(Some(1), 0, b"80"));
    rig.bytes(conn, &[command("nosuch", None, Some(2)), command("set x", None, None)].concat());
    assert_eq!(
        rig.wire(conn).sent,
        [answer(Some(2), 3, b"Unknown command"), answer(None, 4, b"Too few args")].concat()
    );
    assert_eq!(rig.m.take_output(), b"", "nothing on the serial console");
}

#[test]
fn cmdstream_data_feeds_the_data_phase() {
    let mut rig = Rig::up();
    let (cmd, _) = rig.open("GET", "/cmdstream");
    let stream = rig.stream();
    rig.bytes(cmd, &command("stream_write 0 5", Some(b"hello"), Some(9)));
    assert_eq!(rig.wire(stream).sent, encode(Opcode::Text, true, b"hello"));
    assert_eq!(rig.wire(cmd).sent, answer(Some(9), 0, b"Success"));
}

#[rstest::rstest]
#[case::not_msgpack(client(Opcode::Binary, b"\xc1"), answer(None, 2, b"malformed msgpack"))]
#[case::text_json(
    client(Opcode::Text, br#"{"command":"ver"}"#),
    answer(None, 2, b"malformed msgpack")
)]
#[case::no_command(client(Opcode::Binary, &[0x81, 0xa2, b'i', b'd', 0x05]), answer(Some(5), 2, b"no command"))]
fn malformed_messages_get_a_parse_error(#[case] bytes: Vec<u8>, #[case] want: Vec<u8>) {
    let mut rig = Rig::up();
    let (conn, _) = rig.open("GET", "/cmdstream");
    rig.bytes(conn, &bytes);
    assert_eq!(rig.wire(conn), Wire { sent: want, closed: false });
    rig.bytes(conn, &command("get http.server.port", None, None));
    assert_eq!(rig.wire(conn).sent, answer(None, 0, b"80"), "the connection goes on");
}

#[test]
fn cmdstream_closes_when_the_network_goes_down() {
    let mut rig = Rig::up();
    let (conn, _) = rig.open("GET", "/cmdstream");
    rig.send("network_down");
    assert_eq!(rig.wire(conn), Wire { sent: encode_close(1001, ""), closed: true });
}

#[test]
fn the_sent_of_a_pong_is_not_taken_for_a_waiting_writes() {
    let mut rig = Rig::up();
    let conn = rig.stream();
    // A pong goes out; before the platform has taken it, a write is handed over too.
    rig.bytes(conn, &client(Opcode::Ping, b"p"));
    let pong = encode(Opcode::Pong, true, b"p");
    assert_eq!(rig.reqs(), vec![NetRequest::Send { conn, data: pong.clone(), to: None }]);
    rig.m.feed(b"stream_write 0 5\r\nhello", rig.now);
    let frame = encode(Opcode::Text, true, b"hello");
    assert_eq!(rig.reqs(), vec![NetRequest::Send { conn, data: frame.clone(), to: None }]);
    // The pong's `Sent` (3 bytes) is the part's own: the write (7 bytes) still waits.
    assert_eq!(rig.event(NetEvent::Sent { conn, len: pong.len() }), vec![]);
    let out = rig.event(NetEvent::Sent { conn, len: frame.len() });
    assert_eq!(out.last(), Some(&success()), "{out:?}");
}

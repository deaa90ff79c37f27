//! The simulated module's WebSocket parts reached by a real WebSocket client (tungstenite):
//! a lab, the module joined with `http.server.enabled`, and the client connecting from inside
//! the lab's network namespace to `ws://<module>/stream` (a WEBS stream the console reads and
//! writes) and `ws://<module>/cmdstream` (msgpack commands). Needs root; without it the test
//! says so and returns.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::channel::Request;
use gecko_hil::session::Session;
use serde::{Deserialize, Serialize};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// Runs a console command (with `data` for its data phase); its reply's text (code 0).
fn console_data(session: &mut Session, line: &str, data: Option<&[u8]>) -> String {
    let request = Request { line, data, timeout: Duration::from_secs(10) };
    let reply = session.under_test().execute(&request).unwrap();
    assert_eq!(reply.code.0, 0, "{line}: {}", reply.text());
    reply.text()
}

fn console(session: &mut Session, line: &str) -> String {
    console_data(session, line, None)
}

/// A WebSocket to `ws://<ip><path>` from inside the lab (the listener may take a moment).
fn open(session: &Session, ip: &str, path: &str) -> WebSocket<TcpStream> {
    let lab = session.lab().unwrap();
    let addr = format!("{ip}:80");
    let deadline = Instant::now() + Duration::from_secs(3);
    let stream = loop {
        match lab.run_in(|| TcpStream::connect(&addr)).unwrap() {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("connect to {addr}: {e}"),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (socket, response) = tungstenite::client(format!("ws://{ip}{path}"), stream).unwrap();
    assert_eq!(response.status(), 101);
    socket
}

/// The next data, pong or close message (a ping is answered by the client itself).
fn next(socket: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match socket.read().unwrap() {
            Message::Ping(_) | Message::Frame(_) => {}
            other => return other,
        }
    }
}

#[derive(Serialize)]
struct Command<'a> {
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_bytes_opt")]
    data: Option<&'a [u8]>,
    id: u32,
}

/// `data` as msgpack binary.
mod serde_bytes_opt {
    pub fn serialize<S: serde::Serializer>(v: &Option<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Response {
    id: u32,
    code: u8,
    response: String,
}

fn command(
    socket: &mut WebSocket<TcpStream>,
    command: &str,
    data: Option<&[u8]>,
    id: u32,
) -> Response {
    let message = rmp_serde::to_vec_named(&Command { command, data, id }).unwrap();
    socket.send(Message::binary(message)).unwrap();
    match next(socket) {
        Message::Binary(bytes) => rmp_serde::from_slice(&bytes).unwrap(),
        other => panic!("{command}: expected a binary response, got {other:?}"),
    }
}

#[test]
fn a_websocket_client_uses_stream_and_cmdstream() {
    if !common::is_root() {
        eprintln!("SKIPPED a_websocket_client_uses_stream_and_cmdstream: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
            common::sim_binary()
        ),
    );
    let mut session = Session::open(&rig, &dir.path().join("run")).unwrap();
    for line in [
        "set wlan.ssid lab",
        "set wlan.passkey labpass123",
        "set http.server.enabled 1",
        "set bus.command.read_timeout 3000",
    ] {
        assert_eq!(console(&mut session, line), "Set OK");
    }
    assert_eq!(console(&mut session, "network_up"), "Success");
    let ip = console(&mut session, "get wlan.network.ip");

    // /stream: a WEBS stream the console reads and writes.
    let mut stream = open(&session, &ip, "/stream");
    let list = console(&mut session, "stream_list");
    assert!(list.contains("# 0 WEBS "), "{list}");
    stream.send(Message::text("hello from the lab")).unwrap();
    assert_eq!(console(&mut session, "stream_read 0 100"), "hello from the lab");
    assert_eq!(console_data(&mut session, "stream_write 0 5", Some(b"hello")), "Success");
    assert_eq!(next(&mut stream), Message::text("hello"));
    stream.send(Message::Ping(b"keepalive".to_vec().into())).unwrap();
    assert_eq!(next(&mut stream), Message::Pong(b"keepalive".to_vec().into()));
    // A message longer than one TCP segment arrives whole.
    let big = "x".repeat(3000);
    stream.send(Message::text(big.clone())).unwrap();
    let mut got = String::new();
    while got.len() < big.len() {
        got.push_str(&console(&mut session, "stream_read 0 4000"));
    }
    assert_eq!(got, big);

    // /cmdstream: msgpack commands, several on one connection.
    let mut cmd = open(&session, &ip, "/cmdstream");
    let want = Response { id: 7, code: 0, response: "lab\r\n".into() };
    assert_eq!(command(&mut cmd, "get wlan.ssid", None, 7), want);
    let got = command(&mut cmd, "stream_write 0 2", Some(b"ok"), 8);
    assert_eq!((got.id, got.code), (8, 0), "{got:?}");
    assert_eq!(next(&mut stream), Message::text("ok"));
    assert_eq!(command(&mut cmd, "nosuch", None, 9).code, 3);

    // stream_close: a close frame with 1000 reaches the client.
    assert_eq!(console(&mut session, "stream_close 0"), "Success");
    match next(&mut stream) {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

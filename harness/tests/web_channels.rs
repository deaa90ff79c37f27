//! The REST and WebSocket command stream channels against a small server on a real socket
//! that speaks the chapter's wire format (`POST /command`, `GET /log`, `/cmdstream`), and,
//! where the machine can make one, inside a lab network namespace the harness cannot reach
//! from its own.
//!
//! The server answers each command with code 0 and `<command>|<data>` (code 3 for
//! `no_such_command`), queues a log line per command for `/log`, and can be told to misbehave.
#![allow(clippy::unwrap_used)] // tests may panic

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gecko_hil::channel::cmdstream::CmdStreamChannel;
use gecko_hil::channel::rest::{Credentials, HttpTarget, RestChannel};
use gecko_hil::channel::{Channel, ChannelError, Request};
use gecko_hil::lab::{Lab, check_preconditions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the test server behaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Basic credentials it requires (`user:pass`).
    credentials: Option<String>,
    /// Answer every command with this status and body instead.
    broken: Option<(u16, String)>,
    /// Never answer commands.
    silent: bool,
}

#[derive(Default)]
struct State {
    logs: Vec<String>,
    /// Every command body received.
    seen: Vec<serde_json::Value>,
}

struct Server {
    addr: SocketAddrV4,
    state: Arc<Mutex<State>>,
}

fn json_reply(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The answer to one command line and its data: (code, response).
fn answer(command: &str, data: &[u8]) -> (u8, Vec<u8>) {
    if command == "no_such_command" {
        return (3, b"Unknown command\r\n".to_vec());
    }
    let mut response = format!("{command}|").into_bytes();
    response.extend_from_slice(data);
    response.extend_from_slice(b"\r\n");
    (0, response)
}

fn serve_http(mut stream: TcpStream, behaviour: &Behaviour, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    let mut length = 0;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if lower.starts_with("authorization:") {
            authorization = Some(line["authorization:".len()..].trim().to_string());
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    if let Some(want) = &behaviour.credentials {
        let want = format!("Basic {}", BASE64.encode(want));
        if authorization.as_deref() != Some(want.as_str()) {
            let _ = stream.write_all(&json_reply(401, ""));
            return;
        }
    }
    let reply = if head.starts_with("GET /log ") {
        let logs = std::mem::take(&mut state.lock().unwrap().logs);
        json_reply(200, &serde_json::json!({ "logs": logs }).to_string())
    } else if head.starts_with("POST /command ") {
        if behaviour.silent {
            // Never answer: hold the connection until the client gives up and closes it.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            return;
        }
        if let Some((status, text)) = &behaviour.broken {
            json_reply(*status, text)
        } else {
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let flags = request["flags"].as_u64().unwrap();
            let command = request["command"].as_str().unwrap().to_string();
            let data = request["data"].as_str().unwrap_or("");
            let data = if flags & 4 != 0 {
                BASE64.decode(data).unwrap()
            } else {
                data.as_bytes().to_vec()
            };
            let (code, response) = answer(&command, &data);
            let mut st = state.lock().unwrap();
            st.seen.push(request);
            st.logs.push(format!("ran {command}"));
            // A response JSON cannot carry as text goes in base64 even when not asked.
            let (flags, response) = match String::from_utf8(response) {
                Ok(text) if flags & 2 == 0 => (0, text),
                Ok(text) => (1, BASE64.encode(text)),
                Err(e) => (1, BASE64.encode(e.as_bytes())),
            };
            let id = st.seen.len();
            json_reply(
                200,
                &serde_json::json!({ "id": id, "code": code, "flags": flags, "response": response })
                    .to_string(),
            )
        }
    } else {
        json_reply(404, "")
    };
    let _ = stream.write_all(&reply);
}

#[derive(serde::Deserialize)]
struct WsCommand {
    command: String,
    #[serde(default)]
    data: Option<serde_bytes_like::Data>,
    id: u32,
}

/// String or binary `data`, as the channel sends it.
mod serde_bytes_like {
    pub struct Data(pub Vec<u8>);
    impl<'de> serde::Deserialize<'de> for Data {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Data;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("str or bin")
                }
                fn visit_str<E>(self, v: &str) -> Result<Data, E> {
                    Ok(Data(v.as_bytes().to_vec()))
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Data, E> {
                    Ok(Data(v.to_vec()))
                }
            }
            d.deserialize_any(V)
        }
    }
}

#[derive(serde::Serialize)]
struct WsReply<'a> {
    id: u32,
    code: u8,
    response: WsText<'a>,
}

/// A response as a msgpack string, or binary when it is not UTF-8.
enum WsText<'a> {
    Str(&'a str),
    Bin(&'a [u8]),
}

impl serde::Serialize for WsText<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WsText::Str(t) => s.serialize_str(t),
            WsText::Bin(b) => s.serialize_bytes(b),
        }
    }
}

/// One WebSocket connection: answers each command; before the reply to a command `late`,
/// sends a reply with an older id first (what a command that timed out would leave behind).
fn serve_ws(stream: TcpStream, state: &Mutex<State>) {
    let mut ws = tungstenite::accept(stream).unwrap();
    loop {
        let message = match ws.read() {
            Ok(tungstenite::Message::Binary(b)) => b,
            Ok(tungstenite::Message::Close(_)) | Err(_) => return,
            Ok(_) => continue,
        };
        let command: WsCommand = rmp_serde::from_slice(&message).unwrap();
        let data = command.data.map(|d| d.0).unwrap_or_default();
        let (code, response) = answer(&command.command, &data);
        state.lock().unwrap().logs.push(format!("ran {}", command.command));
        if command.command == "late" {
            let stale = WsReply { id: command.id - 1, code: 9, response: WsText::Str("stale") };
            ws.send(tungstenite::Message::binary(rmp_serde::to_vec_named(&stale).unwrap()))
                .unwrap();
        }
        let response = match std::str::from_utf8(&response) {
            Ok(t) => WsText::Str(t),
            Err(_) => WsText::Bin(&response),
        };
        let reply = WsReply { id: command.id, code, response };
        ws.send(tungstenite::Message::binary(rmp_serde::to_vec_named(&reply).unwrap())).unwrap();
    }
}

/// Starts the server on `listener`; WebSocket upgrades (peeked) go to [`serve_ws`].
fn start(listener: TcpListener, behaviour: Behaviour) -> Server {
    let addr = match listener.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("{other}"),
    };
    let state = Arc::new(Mutex::new(State::default()));
    let shared = Arc::clone(&state);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (behaviour, state) = (behaviour.clone(), Arc::clone(&shared));
            std::thread::spawn(move || {
                let mut peek = [0; 64];
                let n = stream.peek(&mut peek).unwrap_or(0);
                if peek[..n].starts_with(b"GET /cmdstream") {
                    serve_ws(stream, &state);
                } else {
                    serve_http(stream, &behaviour, &state);
                }
            });
        }
    });
    Server { addr, state }
}

fn local(behaviour: Behaviour) -> Server {
    start(TcpListener::bind("127.0.0.1:0").unwrap(), behaviour)
}

fn target(server: &Server, credentials: Option<Credentials>) -> HttpTarget {
    HttpTarget { addr: server.addr, credentials, netns: None }
}

fn request<'a>(line: &'a str, data: Option<&'a [u8]>) -> Request<'a> {
    Request { line, data, timeout: Duration::from_secs(2) }
}

#[test]
fn rest_commands_carry_data_and_logs_and_base64() {
    let server = local(Behaviour::default());
    let mut rest = RestChannel::connect(target(&server, None)).unwrap();
    let reply = rest.execute(&request("get wlan.ssid", None)).unwrap();
    assert_eq!((reply.code.0, reply.text()), (0, "get wlan.ssid|".to_string()));
    let logs: Vec<&str> = reply.logs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(logs, ["ran get wlan.ssid"]);
    assert!(reply.timing.first_byte.is_some());

    let reply = rest.execute(&request("stream_write 0 3", Some(b"\xff\x00a"))).unwrap();
    assert_eq!(reply.body, b"stream_write 0 3|\xff\x00a\r\n", "binary data survives via base64");
    let reply = rest.execute(&request("no_such_command", None)).unwrap();
    assert_eq!((reply.code.0, reply.text()), (3, "Unknown command".to_string()));

    let mut rest = rest.with_base64_responses(true);
    let reply = rest.execute(&request("w", Some(b"\x80\x81"))).unwrap();
    assert_eq!(reply.body, b"w|\x80\x81\r\n", "a base64 response is decoded");
    let seen = &server.state.lock().unwrap().seen;
    let flags: Vec<u64> = seen.iter().map(|r| r["flags"].as_u64().unwrap()).collect();
    assert_eq!(flags, [0, 4, 0, 6]);
}

#[test]
fn rest_sends_credentials() {
    let server =
        local(Behaviour { credentials: Some("admin:s3cret".into()), ..Behaviour::default() });
    let good = Credentials { username: "admin".into(), password: "s3cret".into() };
    let mut rest = RestChannel::connect(target(&server, Some(good))).unwrap();
    assert_eq!(rest.execute(&request("ver", None)).unwrap().code.0, 0);
    let bad = Credentials { username: "admin".into(), password: "nope".into() };
    let mut rest = RestChannel::connect(target(&server, Some(bad))).unwrap();
    let e = rest.execute(&request("ver", None)).unwrap_err();
    assert!(
        matches!(&e, ChannelError::Malformed { reason, .. } if reason == "HTTP status 401"),
        "{e}"
    );
    assert!(!e.is_infrastructure(), "a refusal is the module's answer");
}

#[test]
fn rest_faults_are_told_apart() {
    let server =
        local(Behaviour { broken: Some((200, "{\"id\":1}".into())), ..Behaviour::default() });
    let e = RestChannel::connect(target(&server, None))
        .unwrap()
        .execute(&request("ver", None))
        .unwrap_err();
    assert!(matches!(e, ChannelError::Malformed { .. }) && !e.is_infrastructure(), "{e}");

    let server = local(Behaviour { silent: true, ..Behaviour::default() });
    let mut rest = RestChannel::connect(target(&server, None)).unwrap();
    let quick = Request { line: "ver", data: None, timeout: Duration::from_millis(300) };
    let e = rest.execute(&quick).unwrap_err();
    assert!(matches!(e, ChannelError::Timeout { .. }), "{e}");

    // Nothing listens there any more: refused, the link's fault.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = HttpTarget {
        addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
        credentials: None,
        netns: None,
    };
    let e = RestChannel::connect(closed).unwrap().execute(&request("ver", None)).unwrap_err();
    assert!(matches!(e, ChannelError::Link { .. }) && e.is_infrastructure(), "{e}");
}

#[test]
fn cmdstream_runs_many_commands_on_one_connection() {
    let server = local(Behaviour::default());
    let mut ws = CmdStreamChannel::connect(target(&server, None), Duration::from_secs(2)).unwrap();
    for i in 0..20 {
        let line = format!("get n{i}");
        let reply = ws.execute(&request(&line, None)).unwrap();
        assert_eq!(reply.text(), format!("{line}|"));
        let logs: Vec<&str> = reply.logs.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(logs, [format!("ran {line}")]);
    }
    let reply = ws.execute(&request("stream_write 1 2", Some(b"\xfe\xff"))).unwrap();
    assert_eq!(reply.body, b"stream_write 1 2|\xfe\xff\r\n");
    let reply = ws.execute(&request("late", None)).unwrap();
    assert_eq!(
        (reply.code.0, reply.text()),
        (0, "late|".to_string()),
        "the stale reply is skipped"
    );
    assert_eq!(ws.execute(&request("no_such_command", None)).unwrap().code.0, 3);
}

#[test]
fn cmdstream_to_a_closed_port_is_a_link_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = HttpTarget {
        addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
        credentials: None,
        netns: None,
    };
    let e = CmdStreamChannel::connect(closed, Duration::from_secs(1)).unwrap_err();
    assert!(e.is_infrastructure(), "{e}");
}

/// A server inside a lab namespace, on the lab bridge's address: reachable only from inside.
#[test]
fn both_channels_reach_a_server_inside_a_lab_namespace() {
    if let Err(e) = check_preconditions() {
        let _ = writeln!(std::io::stderr(), "SKIPPED: needs root ({e})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::create(dir.path(), "webchan").unwrap();
    let router = lab.router_ip();
    let listener = lab.run_in(move || TcpListener::bind((router, 0))).unwrap().unwrap();
    let server = start(listener, Behaviour::default());
    let inside = HttpTarget { addr: server.addr, credentials: None, netns: Some(lab.netns_path()) };

    let mut rest = RestChannel::connect(inside.clone()).unwrap();
    // Called from this thread (outside the namespace), several times: each request is a new
    // connection, all made inside.
    for _ in 0..3 {
        assert_eq!(rest.execute(&request("ver", None)).unwrap().text(), "ver|");
    }
    let mut ws = CmdStreamChannel::connect(inside, Duration::from_secs(2)).unwrap();
    assert_eq!(ws.execute(&request("ver", None)).unwrap().text(), "ver|");

    // The same address from this process's own namespace is not the server.
    let outside = HttpTarget { addr: server.addr, credentials: None, netns: None };
    let quick = Request { line: "ver", data: None, timeout: Duration::from_millis(500) };
    let e = RestChannel::connect(outside).unwrap().execute(&quick).unwrap_err();
    assert!(!matches!(e, ChannelError::Malformed { .. }), "reached it from outside: {e}");
}

//! The HTTP server and its REST API, driven through `net_event`s (accepted clients, their
//! bytes, their close) and checked on the bytes the module sends (`NetRequest::Send`).

use super::*;
use crate::http::auth::base64_encode;
use crate::net::{ACCEPTED_BASE, Security};
use alloc::vec;
use rstest::rstest;

use super::frames::*;
use super::tests::board;

const T0: Instant = Instant::ZERO;

struct Rig {
    m: Module,
    now: Instant,
    /// The HTTP server's listener once it listens.
    listener: ConnId,
    next_client: u32,
}

/// What the module did on one client's connection.
#[derive(Debug, PartialEq, Eq)]
struct Wire {
    sent: Vec<u8>,
    closed: bool,
}

impl Wire {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }

    fn status(&self) -> u16 {
        let text = self.text();
        text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    fn body(&self) -> String {
        let text = self.text();
        text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split_once("\r\n\r\n").map(|(h, _)| h).unwrap_or("");
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    }
}

impl Rig {
    /// Machine format, every log, static IP `10.0.0.5`, the HTTP server enabled, `setup`,
    /// then the network up: the server listens.
    fn up(setup: &[&str]) -> Self {
        let mut rig = Self::down(setup);
        let out = rig.join();
        assert!(out.contains(&log(I, "HTTP and REST API server listening on port: 80")), "{out:?}");
        let reqs = rig.reqs();
        rig.listener = reqs
            .iter()
            .find_map(|r| match r {
                NetRequest::TcpListen { listener, port: 80 } => Some(*listener),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no listener in {reqs:?}"));
        rig
    }

    /// [`Rig::up`] before the network comes up.
    fn down(setup: &[&str]) -> Self {
        let mut rig = Self {
            m: Module::boot(board(), None, T0),
            now: T0,
            listener: ConnId::NONE,
            next_client: 0,
        };
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
            "set http.server.enabled 1",
        ];
        for line in base.iter().chain(setup) {
            let out = rig.send(line);
            assert_eq!(out.last(), Some(&resp(0, "Set OK")), "{line}");
        }
        rig
    }

    fn join(&mut self) -> Vec<F> {
        self.send("network_up");
        let id = match self.reqs().as_slice() {
            [NetRequest::Scan { id, .. }] => *id,
            other => panic!("unexpected {other:?}"),
        };
        let bss = lab_bss(Security::Wpa2Aes);
        self.event(NetEvent::ScanDone { id, results: vec![bss] });
        let attempt = self.m.join_counters().1;
        self.event(NetEvent::Associated { attempt })
    }

    fn send(&mut self, line: &str) -> Vec<F> {
        self.m.feed(format!("{line}\r\n").as_bytes(), self.now);
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

    /// Network requests since the last call; file stores succeed at once.
    fn reqs(&mut self) -> Vec<NetRequest> {
        let mut got = Vec::new();
        while let Some(action) = self.m.next_action() {
            match action {
                Action::Net(req) => got.push(req),
                Action::StoreFiles(_) => self.m.files_stored(Ok(()), self.now),
                other => panic!("unexpected action {other:?}"),
            }
        }
        got
    }

    /// A client connects.
    fn connect(&mut self) -> ConnId {
        self.next_client += 1;
        let conn = ConnId(ACCEPTED_BASE + self.next_client);
        let listener = self.listener;
        self.event(NetEvent::TcpAccepted { listener, conn, peer: ([10, 0, 0, 9], 50000) });
        conn
    }

    fn bytes(&mut self, conn: ConnId, data: &[u8]) {
        self.event(NetEvent::Received { conn, data: data.to_vec(), from: ([10, 0, 0, 9], 50000) });
    }

    /// What the module sent on `conn` since the last call, and whether it closed it; the
    /// other requests are kept for [`Rig::reqs`]... and dropped here.
    fn wire(&mut self, conn: ConnId) -> Wire {
        let mut wire = Wire { sent: Vec::new(), closed: false };
        for req in self.reqs() {
            match req {
                NetRequest::Send { conn: c, data, .. } if c == conn => {
                    assert!(!wire.closed, "bytes after the close");
                    wire.sent.extend(data);
                }
                NetRequest::Close { conn: c } if c == conn => wire.closed = true,
                _ => {}
            }
        }
        wire
    }

    /// One whole request on a fresh connection; the response.
    fn request(&mut self, raw: &str) -> Wire {
        self.request_bytes(raw.as_bytes())
    }

    fn request_bytes(&mut self, raw: &[u8]) -> Wire {
        let conn = self.connect();
        self.bytes(conn, raw);
        self.wire(conn)
    }

    fn get(&mut self, path: &str) -> Wire {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: m\r\n\r\n"))
    }

    fn post(&mut self, body: &str) -> Wire {
        self.request(&format!(
            "POST /command HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// Creates a file over the console.
    fn file(&mut self, flags: &str, name: &str, contents: &[u8]) {
        let line = format!("file_create {flags} {name} {}", contents.len());
        self.m.feed(format!("{line}\r\n").as_bytes(), self.now);
        self.m.feed(contents, self.now);
        self.reqs();
        let out = frames(&self.m.take_output());
        assert_eq!(out.last(), Some(&resp(0, "Success")), "{line}: {out:?}");
    }
}

fn json(id: u32, code: u8, response: &str) -> String {
    crate::http::json::command_response(id, code, response.as_bytes(), false)
}

// ---------------------------------------------------------------------------------------------
// Life of the server
// ---------------------------------------------------------------------------------------------

#[test]
fn it_listens_when_the_network_comes_up_and_stops_when_it_goes_down() {
    let mut rig = Rig::up(&[]);
    let conn = rig.connect();
    assert_eq!(rig.send("network_down").last(), Some(&success()));
    let reqs = rig.reqs();
    assert!(reqs.contains(&NetRequest::TcpUnlisten { listener: rig.listener }), "{reqs:?}");
    assert!(reqs.contains(&NetRequest::Close { conn }), "{reqs:?}");
}

#[test]
fn it_does_not_listen_when_disabled() {
    let mut rig = Rig::down(&["set http.server.enabled 0"]);
    let out = rig.join();
    assert!(!out.iter().any(|f| matches!(f, F::L(_, t) if t.contains("HTTP"))), "{out:?}");
    let reqs = rig.reqs();
    assert!(!reqs.iter().any(|r| matches!(r, NetRequest::TcpListen { .. })), "{reqs:?}");
}

#[test]
fn enabling_and_moving_it_while_the_network_is_up_takes_effect_at_once() {
    let mut rig = Rig::down(&["set http.server.enabled 0"]);
    rig.join();
    rig.reqs();
    let out = rig.send("set http.server.port 8080");
    assert_eq!(out, vec![resp(0, "Set OK")]);
    assert_eq!(rig.reqs(), vec![]);
    let out = rig.send("set http.server.enabled 1");
    assert_eq!(
        out,
        vec![log(I, "HTTP and REST API server listening on port: 8080"), resp(0, "Set OK")]
    );
    let listener = match rig.reqs().as_slice() {
        [NetRequest::TcpListen { listener, port: 8080 }] => *listener,
        other => panic!("unexpected {other:?}"),
    };
    rig.send("set http.server.enabled 0");
    assert_eq!(rig.reqs(), vec![NetRequest::TcpUnlisten { listener }]);
}

#[test]
fn it_and_the_tcp_server_listen_side_by_side_and_http_clients_are_no_streams() {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.send("tcp_server start 3000").last(), Some(&success()));
    let reqs = rig.reqs();
    assert!(matches!(reqs.as_slice(), [NetRequest::TcpListen { port: 3000, .. }]), "{reqs:?}");
    let conn = rig.connect();
    rig.bytes(conn, b"GET /command/get%20wlan.ssid HTTP/1.1\r\n");
    assert_eq!(rig.send("stream_list"), vec![resp(0, "! # Type Info")]);
    rig.bytes(conn, b"\r\n");
    assert_eq!(rig.wire(conn).body(), json(1, 0, "lab\r\n"));
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::version(
    "/command/ver",
    200,
    0,
    "Gecko OS-4.2.0, Built:2024-01-01 for SIM, Board:SIM-01\r\n"
)]
#[case::encoded("/command/get%20wlan.ssid", 200, 0, "lab\r\n")]
#[case::plus("/command/get+wlan.ssid", 200, 0, "lab\r\n")]
#[case::set("/command/set%20wlan.ssid%20other", 200, 0, "Set OK\r\n")]
#[case::unknown("/command/nosuch", 400, 3, "Unknown command\r\n")]
#[case::too_few("/command/set", 400, 4, "Too few args\r\n")]
#[case::failed("/command/exit", 500, 1, "Command failed\r\n")]
fn get_command(#[case] path: &str, #[case] status: u16, #[case] code: u8, #[case] response: &str) {
    let mut rig = Rig::up(&[]);
    let wire = rig.get(path);
    assert!(wire.closed);
    assert_eq!((wire.status(), wire.body()), (status, json(1, code, response)));
    assert_eq!(wire.header("Content-Type").as_deref(), Some("application/json"));
    assert_eq!(wire.header("Connection").as_deref(), Some("close"));
}

#[test]
fn each_command_gets_a_new_id_and_nothing_shows_on_the_console() {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.get("/command/ver").status(), 200);
    assert_eq!(rig.get("/command/get%20wl%20s").body(), json(2, 0, "lab\r\n"));
    assert_eq!(frames(&rig.m.take_output()), vec![]);
}

#[rstest]
#[case::plain(r#"{"flags":0,"command":"get wlan.ssid","data":""}"#, 200, json(1, 0, "lab\r\n"))]
#[case::no_flags(r#"{"command":"get wlan.ssid"}"#, 200, json(1, 0, "lab\r\n"))]
#[case::command_base64(
    r#"{"flags":1,"command":"Z2V0IHdsYW4uc3NpZA=="}"#,
    200,
    json(1, 0, "lab\r\n")
)]
#[case::response_base64(r#"{"flags":2,"command":"get wlan.ssid"}"#, 200, r#"{"id":1,"code":0,"flags":1,"response":"bGFiDQo="}"#.to_string())]
#[case::all_flags(r#"{"flags":7,"command":"Z2V0IHdsYW4uc3NpZA==","data":""}"#, 200, r#"{"id":1,"code":0,"flags":1,"response":"bGFiDQo="}"#.to_string())]
#[case::malformed_json(r#"{"flags":0,"command":"ver""#, 400, "400 Bad Request".to_string())]
#[case::bad_base64(r#"{"flags":1,"command":"!!"}"#, 400, "400 Bad Request".to_string())]
#[case::unknown_flags(r#"{"flags":8,"command":"ver"}"#, 400, "400 Bad Request".to_string())]
#[case::no_command(r#"{"flags":0}"#, 400, "400 Bad Request".to_string())]
#[case::empty_command(r#"{"command":"  "}"#, 400, "400 Bad Request".to_string())]
#[case::line_end_in_command(r#"{"command":"ver\r\nreboot"}"#, 400, "400 Bad Request".to_string())]
fn post_command(#[case] body: &str, #[case] status: u16, #[case] want: String) {
    let mut rig = Rig::up(&[]);
    let wire = rig.post(body);
    assert!(wire.closed);
    assert_eq!((wire.status(), wire.body()), (status, want));
}

#[rstest]
#[case::plain(r#"{"flags":0,"command":"file_create -u a.txt 5","data":"hello"}"#)]
#[case::base64(r#"{"flags":4,"command":"file_create -u a.txt 5","data":"aGVsbG8="}"#)]
fn post_data_feeds_the_data_phase(#[case] body: &str) {
    let mut rig = Rig::up(&[]);
    let wire = rig.post(body);
    assert_eq!((wire.status(), wire.body()), (200, json(1, 0, "Success\r\n")));
    let file = rig.get("/a.txt");
    assert_eq!((file.status(), file.body()), (200, "hello".to_string()));
    assert_eq!(file.header("Content-Type").as_deref(), Some("text/plain"));
}

#[test]
fn a_client_that_leaves_while_its_command_runs_gets_nothing_and_frees_its_slot() {
    let mut rig = Rig::up(&["set http.server.max_clients 1"]);
    let conn = rig.connect();
    rig.bytes(conn, b"GET /command/nlo%20slow.lab HTTP/1.1\r\n\r\n");
    let id = match rig.reqs().as_slice() {
        [NetRequest::Resolve { id, .. }] => *id,
        other => panic!("unexpected {other:?}"),
    };
    rig.event(NetEvent::Closed { conn });
    rig.event(NetEvent::Resolved { id, address: Some([10, 0, 0, 7]) });
    assert_eq!(rig.wire(conn), Wire { sent: vec![], closed: false });
    assert!(rig.m.outbox.is_empty(), "{:?}", rig.m.outbox);
    assert_eq!(rig.get("/command/ver").status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Hostile and odd requests
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::garbage(b"hello\r\n\r\n".to_vec(), 400)]
#[case::bad_escape(b"GET /command/get%2 HTTP/1.1\r\n\r\n".to_vec(), 400)]
#[case::no_command(b"GET /command/ HTTP/1.1\r\n\r\n".to_vec(), 400)]
#[case::bare_command(b"GET /command HTTP/1.1\r\n\r\n".to_vec(), 400)]
#[case::oversized_body(b"POST /command HTTP/1.1\r\nContent-Length: 4097\r\n\r\n".to_vec(), 413)]
#[case::chunked(b"POST /command HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 501)]
#[case::put(b"PUT /command/ver HTTP/1.1\r\n\r\n".to_vec(), 405)]
#[case::post_file(b"POST /index.html HTTP/1.1\r\n\r\n".to_vec(), 405)]
#[case::stream(b"GET /stream HTTP/1.1\r\n\r\n".to_vec(), 400)]
#[case::cmdstream(b"GET /cmdstream HTTP/1.1\r\n\r\n".to_vec(), 400)]
fn refused_requests(#[case] raw: Vec<u8>, #[case] status: u16) {
    let mut rig = Rig::up(&[]);
    let wire = rig.request_bytes(&raw);
    assert!(wire.closed);
    assert_eq!(wire.status(), status, "{}", wire.text());
}

#[test]
fn a_header_flood_is_refused() {
    let mut rig = Rig::up(&[]);
    let mut raw = String::from("GET /command/ver HTTP/1.1\r\n");
    for i in 0..40 {
        raw.push_str(&format!("X-{i}: y\r\n"));
    }
    raw.push_str("\r\n");
    assert_eq!(rig.request(&raw).status(), 431);
}

#[test]
fn a_body_of_4_kb_is_taken() {
    let mut rig = Rig::up(&[]);
    let pad = "x".repeat(4096 - r#"{"command":"ver","pad":""}"#.len());
    let body = format!(r#"{{"command":"ver","pad":"{pad}"}}"#);
    assert_eq!(body.len(), 4096);
    assert_eq!(rig.post(&body).status(), 200);
}

#[test]
fn a_half_request_is_closed_after_the_idle_timeout_without_a_response() {
    let mut rig = Rig::up(&["set http.server.max_clients 1"]);
    let conn = rig.connect();
    rig.bytes(conn, b"GET /command/ver HTTP/1.1\r\n");
    assert_eq!(rig.m.poll_at(), Some(rig.now + HTTP_IDLE_TIMEOUT));
    rig.advance(HTTP_IDLE_TIMEOUT.as_millis() - 1);
    assert_eq!(rig.wire(conn), Wire { sent: vec![], closed: false });
    rig.advance(1);
    assert_eq!(rig.wire(conn), Wire { sent: vec![], closed: true });
    // Its slot is free again.
    assert_eq!(rig.get("/command/ver").status(), 200);
}

#[test]
fn each_byte_restarts_the_idle_time() {
    let mut rig = Rig::up(&[]);
    let conn = rig.connect();
    for chunk in [&b"GET /comm"[..], b"and/ver HTTP/1.1\r\n", b"\r\n"] {
        rig.advance(HTTP_IDLE_TIMEOUT.as_millis() - 1);
        rig.bytes(conn, chunk);
    }
    assert_eq!(rig.wire(conn).status(), 200);
}

#[test]
fn clients_beyond_max_clients_get_503_and_are_closed() {
    let mut rig = Rig::up(&["set http.server.max_clients 2"]);
    let a = rig.connect();
    let b = rig.connect();
    rig.reqs();
    let c = rig.connect();
    let wire = rig.wire(c);
    assert!(wire.closed);
    assert_eq!(wire.status(), 503);
    // The first two are still served.
    for conn in [a, b] {
        rig.bytes(conn, b"GET /command/ver HTTP/1.1\r\n\r\n");
        assert_eq!(rig.wire(conn).status(), 200);
    }
}

#[test]
fn bytes_after_the_request_are_ignored() {
    let mut rig = Rig::up(&[]);
    let wire = rig.request("GET /command/ver HTTP/1.1\r\n\r\nGET /command/reboot HTTP/1.1\r\n\r\n");
    assert_eq!(wire.status(), 200);
    assert_eq!(rig.m.next_action(), None);
}

// ---------------------------------------------------------------------------------------------
// /log
// ---------------------------------------------------------------------------------------------

#[test]
fn log_returns_the_buffered_lines_then_starts_empty() {
    let mut rig = Rig::up(&[]);
    let wire = rig.get("/log");
    assert_eq!(wire.status(), 200);
    let body = wire.body();
    assert!(body.starts_with(r#"{"logs":["#), "{body}");
    assert!(body.contains(r#""HTTP and REST API server listening on port: 80""#), "{body}");
    assert_eq!(rig.get("/log").body(), r#"{"logs":[]}"#);
}

#[test]
fn log_holds_the_log_lines_of_http_commands_and_broadcast_lines() {
    let mut rig = Rig::up(&[]);
    rig.get("/log");
    // A command of HTTP's own that logs: its line goes to the ring, not the console.
    rig.get("/command/exit");
    assert_eq!(frames(&rig.m.take_output()), vec![]);
    // A broadcast line (a TCP server client opening a stream) goes to both.
    rig.send("tcp_server start 3000");
    let listener = match rig.reqs().as_slice() {
        [NetRequest::TcpListen { listener, .. }] => *listener,
        other => panic!("unexpected {other:?}"),
    };
    let conn = ConnId(ACCEPTED_BASE + 100);
    let out = rig.event(NetEvent::TcpAccepted { listener, conn, peer: ([10, 0, 0, 9], 1) });
    assert_eq!(out, vec![log(S, "[Opened: 0]")]);
    assert_eq!(rig.get("/log").body(), r#"{"logs":["Not in stream mode","[Opened: 0]"]}"#);
}

#[test]
fn log_keeps_the_newest_lines_when_full() {
    let mut rig = Rig::up(&[]);
    rig.get("/log");
    for _ in 0..LOG_LINES + 3 {
        rig.get("/command/exit");
    }
    let body = rig.get("/log").body();
    let lines = body.matches("Not in stream mode").count();
    assert_eq!(lines, LOG_LINES);
}

#[test]
fn log_lines_are_cut_to_their_maximum() {
    let mut rig = Rig::up(&[]);
    rig.m.svc.http_server.log_line(&"é".repeat(LOG_LINE_MAX));
    let body = rig.get("/log").body();
    let Ok(crate::http::json::Json::Object(fields)) = crate::http::json::parse(body.as_bytes())
    else {
        panic!("{body}")
    };
    let crate::http::json::Json::Array(lines) = &fields[0].1 else { panic!("{body}") };
    let Some(crate::http::json::Json::String(last)) = lines.last() else { panic!("{body}") };
    assert_eq!(last.len(), LOG_LINE_MAX);
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

#[test]
fn files_root_gzip_and_not_found() {
    let mut rig = Rig::up(&[]);
    rig.file("", "webapp/index.html", b"<h1>root</h1>");
    rig.file("", "app.js.gz", b"\x1f\x8bzz");
    let root = rig.get("/");
    assert_eq!((root.status(), root.body()), (200, "<h1>root</h1>".to_string()));
    assert_eq!(root.header("Content-Type").as_deref(), Some("text/html"));
    let js = rig.get("/app.js");
    assert_eq!(js.status(), 200);
    assert_eq!(js.header("Content-Encoding").as_deref(), Some("gzip"));
    assert_eq!(js.header("Content-Type").as_deref(), Some("application/javascript"));
    assert!(js.sent.ends_with(b"\x1f\x8bzz"));
    let missing = rig.get("/nosuch.html");
    assert_eq!((missing.status(), missing.body()), (404, "404 Not Found".to_string()));
    rig.send("set http.server.notfound_filename missing.html");
    rig.file("", "missing.html", b"gone");
    let missing = rig.get("/nosuch.html");
    assert_eq!((missing.status(), missing.body()), (404, "gone".to_string()));
}

// ---------------------------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------------------------

const AUTH: [&str; 2] = ["set http.server.username admin", "set http.server.password secret"];

fn with_auth(path: &str, user: &str, pass: &str) -> String {
    let token = base64_encode(format!("{user}:{pass}").as_bytes());
    format!("GET {path} HTTP/1.1\r\nAuthorization: Basic {token}\r\n\r\n")
}

#[test]
fn without_credentials_the_api_answers_401_with_the_realm_and_the_denied_page() {
    let mut rig = Rig::up(&AUTH);
    let wire = rig.get("/command/ver");
    assert_eq!(wire.status(), 401);
    assert_eq!(wire.header("WWW-Authenticate").as_deref(), Some("Basic realm=Gecko OS"));
    assert_eq!(wire.body(), "401 Unauthorized");
    rig.file("", "webapp/unauthorized.html", b"<p>no</p>");
    let wire = rig.get("/log");
    assert_eq!((wire.status(), wire.body()), (401, "<p>no</p>".to_string()));
    rig.send("set http.server.auth_title Lab");
    assert_eq!(
        rig.get("/command/ver").header("WWW-Authenticate").as_deref(),
        Some("Basic realm=Lab")
    );
}

#[rstest]
#[case::right("admin", "secret", 200)]
#[case::wrong_password("admin", "nope", 401)]
#[case::wrong_user("root", "secret", 401)]
fn credentials(#[case] user: &str, #[case] pass: &str, #[case] status: u16) {
    let mut rig = Rig::up(&AUTH);
    assert_eq!(rig.request(&with_auth("/command/ver", user, pass)).status(), status);
}

#[test]
fn only_a_username_or_only_a_password_is_no_authorization() {
    for setup in [[AUTH[0]], [AUTH[1]]] {
        let mut rig = Rig::up(&setup);
        assert_eq!(rig.get("/command/ver").status(), 200);
    }
}

#[test]
fn files_need_authorization_unless_created_unprotected() {
    let mut rig = Rig::up(&AUTH);
    rig.file("", "secret.txt", b"s");
    rig.file("-u", "open.txt", b"o");
    assert_eq!(rig.get("/secret.txt").status(), 401);
    assert_eq!(rig.get("/open.txt").status(), 200);
    assert_eq!(rig.request(&with_auth("/secret.txt", "admin", "secret")).status(), 200);
    assert_eq!(rig.get("/nosuch.txt").status(), 404);
    // Without authorization every file is served.
    rig.send("set http.server.password \"\"");
    assert_eq!(rig.get("/secret.txt").status(), 200);
}

#[rstest]
#[case::all("*", &[("/command/reboot", false), ("/log", true), ("/command/ver", true)])]
#[case::log_stream("/log,/stream", &[("/log", true), ("/stream", true), ("/command/ver", false)])]
#[case::get_wlan("get wl*", &[("/command/get%20wlan.ssid", true), ("/command/get%20system.version", false), ("/log", false)])]
#[case::help("help variables,help commands", &[("/command/help%20commands", true), ("/command/help", false), ("/command/help%20ver", false)])]
#[case::getters("/stream,help *,get *", &[("/stream", true), ("/command/help%20ver", true), ("/command/get%20wl%20s", true), ("/command/set%20wl%20s%20x", false)])]
#[case::empty(" ", &[("/log", false), ("/command/ver", false)])]
fn whitelist(#[case] file: &str, #[case] calls: &[(&str, bool)]) {
    let mut rig = Rig::up(&AUTH);
    rig.file("", "http_whitelist.csv", file.as_bytes());
    for (path, open) in calls {
        // `*` alone would run reboot: take that one as not to be asked.
        if *path == "/command/reboot" {
            continue;
        }
        let status = rig.get(path).status();
        assert_eq!(status != 401, *open, "{file:?}: {path} answered {status}");
    }
}

// ---------------------------------------------------------------------------------------------
// CORS and the API switch
// ---------------------------------------------------------------------------------------------

#[test]
fn cors_allowed_origin_gets_the_header_and_a_mismatch_is_closed_with_no_bytes() {
    let mut rig = Rig::up(&["set http.server.cors_origin http://app.lab"]);
    let ok = rig.request("GET /command/ver HTTP/1.1\r\nOrigin: http://app.lab\r\n\r\n");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.header("Access-Control-Allow-Origin").as_deref(), Some("http://app.lab"));
    let no_origin = rig.get("/command/ver");
    assert_eq!(no_origin.header("Access-Control-Allow-Origin").as_deref(), Some("http://app.lab"));
    let bad = rig.request("GET /command/ver HTTP/1.1\r\nOrigin: http://evil.lab\r\n\r\n");
    assert_eq!(bad, Wire { sent: vec![], closed: true });
}

#[test]
fn cors_wildcard_allows_any_origin() {
    let mut rig = Rig::up(&["set http.server.cors_origin *"]);
    let ok = rig.request("GET /command/ver HTTP/1.1\r\nOrigin: http://any.lab\r\n\r\n");
    assert_eq!(ok.header("Access-Control-Allow-Origin").as_deref(), Some("*"));
}

#[test]
fn options_is_the_preflight_with_cors_and_405_without() {
    let mut rig = Rig::up(&[]);
    assert_eq!(rig.request("OPTIONS /command HTTP/1.1\r\n\r\n").status(), 405);
    assert_eq!(rig.get("/command/ver").header("Access-Control-Allow-Origin"), None);
    rig.send("set http.server.cors_origin http://app.lab");
    let wire = rig.request("OPTIONS /command HTTP/1.1\r\nOrigin: http://app.lab\r\n\r\n");
    assert_eq!(wire.status(), 200);
    assert_eq!(wire.header("Access-Control-Allow-Methods").as_deref(), Some("GET, POST, OPTIONS"));
    assert_eq!(
        wire.header("Access-Control-Allow-Headers").as_deref(),
        Some("Authorization, Content-Type")
    );
}

#[test]
fn with_the_api_disabled_api_calls_are_403_and_files_still_served() {
    let mut rig = Rig::up(&["set http.server.api_enabled 0"]);
    rig.file("-u", "a.txt", b"a");
    for path in ["/command/ver", "/log", "/stream"] {
        assert_eq!(rig.get(path).status(), 403, "{path}");
    }
    assert_eq!(rig.get("/a.txt").status(), 200);
}

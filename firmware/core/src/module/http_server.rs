//! The HTTP server and its REST API (chapter, "HTTP Server with RESTful API", "HTTP Server
//! Security and Authorization", "CORS"): its listener and clients (owned in the connection
//! table as `Owner::HttpListener` and `Owner::HttpClient`), the routes, Basic authorization
//! with `http_whitelist.csv`, CORS, and the `/log` ring.
//!
//! A part of its own: [`HttpServer`] owns its state and settings ([`HttpServerConfig`]) and
//! works through a [`Ctx`]; the file system comes in as an argument. A command it accepts
//! goes out as an [`HttpStep`]: the module runs it for `Origin::Http(id)` and hands its
//! replies back through `Module::route_front_end_replies` ([`HttpServer::reply`]).
//!
//! # Behaviour
//!
//! * **Life.** It listens on `http.server.port` while `http.server.enabled` is 1 and the
//!   network is up (also when either changes while the module runs), logging
//!   `HTTP and REST API server listening on port: <port>` (protocol-facts §4); it stops, without
//!   a word, when the network goes down. No network stream is associated with it: its
//!   connections are not in the stream table.
//! * **One request per connection** (the chapter's REST procedure): the response is sent
//!   with `Connection: close` and the connection is closed.
//! * **Clients.** At most `http.server.max_clients` at once. The next one is answered
//!   `503 Service Unavailable` and closed (assumed). A client whose request is not whole
//!   [`HTTP_IDLE_TIMEOUT`] after it connected or last sent a byte is closed without a response
//!   (assumed); a client whose command runs is not timed out (the command's own timeouts end
//!   it).
//! * **Routes.** `GET /command/<url-encoded command line>` and `POST /command` (JSON,
//!   `crate::http::json`); `GET /log`; `/stream` and `/cmdstream` (the WebSocket upgrades,
//!   [`HttpServer::upgrade`], then websocket.rs owns the connection); `OPTIONS` (CORS
//!   preflight); `GET /<file>` from the file system (`GET /` is `http.server.root_filename`;
//!   `x.js` is served from a stored `x.js.gz` with `Content-Encoding: gzip`; a missing file is
//!   `http.server.notfound_filename` with status 404, or a plain 404 when that is missing
//!   too). Another method is 405 (assumed).
//! * **Statuses of a command** (assumed: the chapter names 200, 400 and 500 only): 200 when
//!   the command succeeded (code 0); 400 when the request is malformed (bad JSON, base64,
//!   flags, URL encoding, an empty line) or the command line is (codes 2-7 and 9: parse
//!   error, unknown command, argument errors, bounds); 500 when the command ran and failed
//!   (code 1, and 8). The body is the JSON response in every case the command ran.
//!   `response` is the body followed by `\r\n` (none for an empty body), as the machine
//!   format frames it (protocol-facts §6: `"Command failed\r\n"`).
//! * **The API switched off** (`http.server.api_enabled` 0): `/command`, `/log`, `/stream` and
//!   `/cmdstream` answer `403 Forbidden` (assumed); files are still served.
//! * **`/log`** returns the lines buffered since the last `GET /log` and empties the ring
//!   (assumed): [`LOG_LINES`] lines at most, each cut at [`LOG_LINE_MAX`] bytes, the oldest
//!   replaced by the newest. The broadcast sink and the log lines of HTTP commands feed it.
//! * **Authorization** when both `http.server.username` and `http.server.password` are set:
//!   a request without matching Basic credentials gets 401, `WWW-Authenticate: Basic
//!   realm=<http.server.auth_title>` and the file `http.server.denied_filename` as its body
//!   (a plain 401 body when it is missing). Files created with `-u` need none; API calls
//!   listed in `http_whitelist.csv` need none (`crate::http::whitelist`: a command is matched
//!   by its command line, `/log`, `/stream`, `/cmdstream` by their path). The preflight
//!   (`OPTIONS`) needs none: browsers send it without credentials. A missing file is 404
//!   before any authorization.
//! * **CORS** with `http.server.cors_origin` set: a request whose `Origin` header is neither
//!   that value nor allowed by `*` is closed at once, with no response bytes (chapter); every
//!   response carries `Access-Control-Allow-Origin: <cors_origin>`; `OPTIONS` answers 200 with
//!   the methods and headers the API uses. A request without `Origin` is served (assumed:
//!   clients that are not browsers send none). With `cors_origin` empty `Origin` is not
//!   checked, no CORS header is sent and `OPTIONS` is 405 (assumed).

use super::*;
use crate::config::HttpServerConfig;
use crate::http::auth::basic_matches;
use crate::http::json::{self, CommandRequest};
use crate::http::request::{Method, Request, RequestReader};
use crate::http::response::Response;
use crate::http::whitelist::{self, Whitelist};
use crate::http::{content_type, url};
use crate::ws::handshake::{self, Upgrade};
use conns::{Open, Owner};
use ctx::Ctx;

/// How long a client may take to send a whole request (from its connect or its last byte).
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines the `/log` ring holds.
pub const LOG_LINES: usize = 32;
/// Longest line the `/log` ring keeps, bytes (longer ones are cut).
pub const LOG_LINE_MAX: usize = 256;

/// The HTTP server service.
#[derive(Debug)]
pub(super) struct HttpServer {
    cfg: HttpServerConfig,
    /// The listener and its port while the server runs.
    /// The listener, its port, and whether it speaks TLS (the HTTPS server).
    listening: Option<(ConnId, u16, bool)>,
    clients: Vec<Client>,
    /// The last request id given out (`Origin::Http(id)`, the response's `id`).
    last_id: u32,
    /// The `/log` ring.
    logs: VecDeque<String>,
}

#[derive(Debug)]
struct Client {
    /// `None` once the client is gone while its command still runs: the command's replies
    /// are then dropped.
    conn: Option<ConnId>,
    reader: RequestReader,
    /// Its address (a WebSocket stream lists it).
    peer: Endpoint,
    /// When it connected or last sent a byte.
    since: Instant,
    running: Option<Running>,
}

/// A command a client's request runs.
#[derive(Debug)]
struct Running {
    id: u32,
    /// Answer with the response in base64 (request flag 0x02).
    base64: bool,
    /// The request's `data`, for the command's data phase.
    data: Vec<u8>,
}

/// What the server asks of the module.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HttpStep {
    /// Run this command line for `Origin::Http(id)`.
    Run { id: u32, line: Vec<u8> },
    /// Hand these bytes to the data phase of `Origin::Http(id)`'s command.
    Data { id: u32, bytes: Vec<u8> },
    /// A WebSocket upgrade: the connection is no longer the server's (websocket.rs).
    Upgrade { conn: ConnId, route: WsRoute, upgrade: Upgrade, peer: Endpoint, port: u16 },
}

/// A request the server answers itself, or a command it hands over.
enum Outcome {
    Respond(Response),
    /// Close without a response (CORS origin mismatch).
    Drop,
    Run(Running, Vec<u8>),
    /// A valid WebSocket handshake on `/stream` or `/cmdstream`.
    Upgrade(WsRoute, Upgrade),
}

impl HttpServer {
    pub(super) fn new(vars: &Vars) -> Self {
        Self {
            cfg: HttpServerConfig::from_vars(vars),
            listening: None,
            clients: Vec::new(),
            last_id: 0,
            logs: VecDeque::new(),
        }
    }

    /// `http.server.*` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = HttpServerConfig::from_vars(vars);
    }

    /// Listens or stops as `http.server.enabled`, its port, `http.server.tls_enabled` and the
    /// network say; returns a new listener that must speak TLS (the module hands it to the
    /// TLS layer).
    pub(super) fn sync(&mut self, network_up: bool, ctx: &mut Ctx<'_>) -> Option<ConnId> {
        let tls = self.cfg.tls.enabled;
        let want = (self.cfg.enabled && network_up).then_some((self.cfg.port, tls));
        match (self.listening, want) {
            (Some((_, port, was_tls)), Some(want)) if (port, was_tls) == want => None,
            (None, None) => None,
            (_, want) => {
                self.stop(ctx);
                let (port, tls) = want?;
                let listener = ctx.open_conn(Open::Listen { port }, Owner::HttpListener);
                self.listening = Some((listener, port, tls));
                let what = if tls { "HTTPS" } else { "HTTP" };
                ctx.log(
                    console::level::INFO,
                    format!("{what} and REST API server listening on port: {port}"),
                );
                tls.then_some(listener)
            }
        }
    }

    /// Stops listening and closes every client.
    pub(super) fn stop(&mut self, ctx: &mut Ctx<'_>) {
        if let Some((listener, ..)) = self.listening.take() {
            ctx.close_conn(listener);
        }
        for client in &mut self.clients {
            if let Some(conn) = client.conn.take() {
                ctx.close_conn(conn);
            }
        }
        self.clients.retain(|c| c.running.is_some());
    }

    /// Whether `Origin::Http(id)` is a request of this server (its replies come here).
    pub(super) fn owns(&self, id: u32) -> bool {
        self.clients.iter().any(|c| c.running.as_ref().is_some_and(|r| r.id == id))
    }

    /// A log line for `/log`: the oldest goes when the ring is full.
    pub(super) fn log_line(&mut self, text: &str) {
        if self.logs.len() == LOG_LINES {
            self.logs.pop_front();
        }
        let mut end = text.len().min(LOG_LINE_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.logs.push_back(text[..end].to_string());
    }

    fn connected(&self) -> usize {
        self.clients.iter().filter(|c| c.conn.is_some()).count()
    }

    /// An event for the listener: a client, or the listener failed.
    pub(super) fn listener_event(&mut self, event: &NetEvent, now: Instant, ctx: &mut Ctx<'_>) {
        match event {
            NetEvent::TcpAccepted { listener, conn, peer } => {
                ctx.conns.set(*conn, Owner::HttpClient);
                if self.listening.is_none_or(|(l, ..)| l != *listener) {
                    return ctx.close_conn(*conn);
                }
                if self.connected() >= self.cfg.max_clients {
                    return self.answer(*conn, Response::plain(503), ctx);
                }
                self.clients.push(Client {
                    conn: Some(*conn),
                    reader: RequestReader::new(),
                    peer: *peer,
                    since: now,
                    running: None,
                });
            }
            NetEvent::ConnFailed { conn, .. } | NetEvent::Closed { conn }
                if self.listening.is_some_and(|(l, ..)| l == *conn) =>
            {
                let why = match event {
                    NetEvent::ConnFailed { reason, .. } => conn_failure_text(*reason),
                    _ => "closed",
                };
                ctx.log(console::level::ERROR, format!("HTTP server: listen failed: {why}"));
                self.listening = None;
            }
            _ => {}
        }
    }

    /// An event for a client's connection.
    pub(super) fn client_event(
        &mut self,
        event: &NetEvent,
        files: &FileSystem,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) -> Option<HttpStep> {
        match event {
            NetEvent::Received { conn, data, .. } => {
                let i = self.clients.iter().position(|c| c.conn == Some(*conn))?;
                let client = &mut self.clients[i];
                if client.running.is_some() {
                    // One request per connection: what follows it is ignored.
                    return None;
                }
                client.since = now;
                match client.reader.feed(data) {
                    Ok(None) => None,
                    Ok(Some(request)) => match self.route(&request, files) {
                        Outcome::Respond(response) => {
                            self.clients.remove(i);
                            self.answer(*conn, response, ctx);
                            None
                        }
                        Outcome::Drop => {
                            self.clients.remove(i);
                            ctx.close_conn(*conn);
                            None
                        }
                        Outcome::Run(running, line) => {
                            let id = running.id;
                            self.clients[i].running = Some(running);
                            Some(HttpStep::Run { id, line })
                        }
                        Outcome::Upgrade(route, upgrade) => {
                            let client = self.clients.remove(i);
                            let port = self.listening.map_or(self.cfg.port, |(_, p, _)| p);
                            let peer = client.peer;
                            Some(HttpStep::Upgrade { conn: *conn, route, upgrade, peer, port })
                        }
                    },
                    Err(e) => {
                        self.clients.remove(i);
                        let response = self.decorate(Response::plain(e.status()));
                        self.answer(*conn, response, ctx);
                        None
                    }
                }
            }
            NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. } => {
                // The peer left (the table already forgot the connection).
                for client in &mut self.clients {
                    if client.conn == Some(*conn) {
                        client.conn = None;
                    }
                }
                self.clients.retain(|c| c.conn.is_some() || c.running.is_some());
                None
            }
            _ => None,
        }
    }

    /// A reply of `Origin::Http(id)`'s command: its log lines go to the ring, its data phase
    /// gets the request's `data`, its response goes to the client, which is then closed.
    pub(super) fn reply(&mut self, id: u32, reply: Reply, ctx: &mut Ctx<'_>) -> Option<HttpStep> {
        let i = self.clients.iter().position(|c| c.running.as_ref().is_some_and(|r| r.id == id))?;
        match reply {
            Reply::Log { text, .. } => {
                self.log_line(&text);
                None
            }
            Reply::Data { .. } => {
                let running = self.clients[i].running.as_mut()?;
                Some(HttpStep::Data { id, bytes: core::mem::take(&mut running.data) })
            }
            Reply::Response { code, body } => {
                let client = self.clients.remove(i);
                let running = client.running?;
                let conn = client.conn?;
                let mut text = body;
                if !text.is_empty() {
                    text.extend_from_slice(b"\r\n");
                }
                let json = json::command_response(id, code.0, &text, running.base64);
                let status = match code {
                    ResultCode::SUCCESS => 200,
                    ResultCode::FAILED | ResultCode::BUFFER_OVERFLOW => 500,
                    _ => 400,
                };
                let response = Response::with_body(status, "application/json", json.into_bytes());
                self.answer(conn, self.decorate(response), ctx);
                None
            }
        }
    }

    /// Sends `response` and closes the connection.
    fn answer(&self, conn: ConnId, response: Response, ctx: &mut Ctx<'_>) {
        let data = response.encode();
        ctx.act(Action::Net(NetRequest::Send { conn, data, to: None }));
        ctx.close_conn(conn);
    }

    /// Adds what every response carries: the CORS header.
    fn decorate(&self, mut response: Response) -> Response {
        if !self.cfg.cors_origin.is_empty() {
            response.header("Access-Control-Allow-Origin", self.cfg.cors_origin.clone());
        }
        response
    }

    /// Whether the request's `Origin` may be served.
    fn origin_allowed(&self, request: &Request) -> bool {
        let allowed = &self.cfg.cors_origin;
        match request.header("origin") {
            _ if allowed.is_empty() => true,
            None => true,
            Some(origin) => allowed == "*" || origin.trim_ascii() == allowed.as_bytes(),
        }
    }

    fn authorized(&self, request: &Request) -> bool {
        !self.cfg.auth_enabled()
            || request
                .header("authorization")
                .is_some_and(|h| basic_matches(h, &self.cfg.username, &self.cfg.password))
    }

    /// 401 with the realm and the denied page.
    fn denied(&self, files: &FileSystem) -> Response {
        let mut response = match served(files, &self.cfg.denied_filename) {
            Some((file, _)) => {
                Response::with_body(401, content_type(&self.cfg.denied_filename), file.to_vec())
            }
            None => Response::plain(401),
        };
        response.header("WWW-Authenticate", format!("Basic realm={}", self.cfg.auth_title));
        response
    }

    /// Whether an API call (a path, or a command line) may go on: authorized, or whitelisted.
    fn api_allowed(&self, request: &Request, call: &[u8], files: &FileSystem) -> bool {
        self.authorized(request)
            || served(files, whitelist::FILE_NAME)
                .is_some_and(|(list, _)| Whitelist::parse(list).allows(call))
    }

    fn route(&mut self, request: &Request, files: &FileSystem) -> Outcome {
        if !self.origin_allowed(request) {
            return Outcome::Drop;
        }
        let outcome = self.route_allowed(request, files);
        match outcome {
            Outcome::Respond(response) => Outcome::Respond(self.decorate(response)),
            other => other,
        }
    }

    fn route_allowed(&mut self, request: &Request, files: &FileSystem) -> Outcome {
        let path = request.path();
        if request.method == Method::Options {
            return Outcome::Respond(self.preflight());
        }
        let api = |p: &[u8]| {
            p == b"/command"
                || p.starts_with(b"/command/")
                || p == b"/log"
                || p == b"/stream"
                || p == b"/cmdstream"
        };
        if !api(path) {
            return Outcome::Respond(self.file(request, files));
        }
        if !self.cfg.api_enabled {
            return Outcome::Respond(Response::plain(403));
        }
        match path {
            b"/log" => {
                if !self.api_allowed(request, path, files) {
                    return Outcome::Respond(self.denied(files));
                }
                if request.method != Method::Get {
                    return Outcome::Respond(Response::plain(405));
                }
                let body = json::logs_response(self.logs.iter().map(String::as_str));
                self.logs.clear();
                Outcome::Respond(Response::with_body(200, "application/json", body.into_bytes()))
            }
            b"/stream" | b"/cmdstream" => {
                if !self.api_allowed(request, path, files) {
                    return Outcome::Respond(self.denied(files));
                }
                let route = if path == b"/stream" { WsRoute::Stream } else { WsRoute::CmdStream };
                self.upgrade(request, route)
            }
            _ => self.command(request, files),
        }
    }

    /// `/stream` and `/cmdstream`: the WebSocket upgrades (RFC 6455 §4.2). A browser opens
    /// a WebSocket with `GET`; the chapter's `POST /stream` is taken as the same upgrade
    /// sent with `POST` (assumed), so both methods upgrade `/stream` (`/cmdstream`: `GET`
    /// only, as the chapter's `ws://<host>/cmdstream`). A request with no `Upgrade:
    /// websocket` is malformed (400); a bad handshake is 400, a version other than 13 is 426
    /// with `Sec-WebSocket-Version: 13`; another method is 405.
    fn upgrade(&self, request: &Request, route: WsRoute) -> Outcome {
        let method_ok = match route {
            WsRoute::Stream => matches!(request.method, Method::Get | Method::Post),
            WsRoute::CmdStream => request.method == Method::Get,
        };
        if !method_ok {
            return Outcome::Respond(Response::plain(405));
        }
        let headers = || request.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        if !handshake::wants_upgrade(headers()) {
            return Outcome::Respond(Response::plain(400));
        }
        match handshake::check(headers()) {
            Ok(upgrade) => Outcome::Upgrade(route, upgrade),
            Err(e) => {
                let mut response = Response::plain(e.status());
                if e == handshake::HandshakeError::Version {
                    response.header("Sec-WebSocket-Version", handshake::VERSION);
                }
                Outcome::Respond(response)
            }
        }
    }

    /// An upgrade that found no stream handle: 404 ("no available stream handles").
    pub(super) fn no_handle(&self, conn: ConnId, ctx: &mut Ctx<'_>) {
        self.answer(conn, self.decorate(Response::plain(404)), ctx);
    }

    /// `OPTIONS`: the CORS preflight.
    fn preflight(&self) -> Response {
        if self.cfg.cors_origin.is_empty() {
            let mut response = Response::plain(405);
            response.header("Allow", "GET, POST");
            return response;
        }
        let mut response = Response::new(200);
        response
            .header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            .header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            .header("Access-Control-Max-Age", "600");
        response
    }

    /// `GET /command/<line>`, `POST /command`.
    fn command(&mut self, request: &Request, files: &FileSystem) -> Outcome {
        let path = request.path();
        let bad = Outcome::Respond(Response::plain(400));
        let parsed = match (request.method, path.strip_prefix(b"/command/")) {
            (Method::Get, Some(encoded)) => match url::percent_decode(encoded, true) {
                Ok(line) => CommandRequest { flags: 0, command: line, data: Vec::new() },
                Err(_) => return bad,
            },
            (Method::Post, None) => match CommandRequest::parse(&request.body) {
                Ok(parsed) => parsed,
                Err(_) => return bad,
            },
            (Method::Get | Method::Post, _) => return bad,
            _ => return Outcome::Respond(Response::plain(405)),
        };
        let line = parsed.command.trim_ascii();
        if line.is_empty() || line.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return bad;
        }
        if !self.api_allowed(request, line, files) {
            return Outcome::Respond(self.denied(files));
        }
        self.last_id = self.last_id.wrapping_add(1).max(1);
        let running = Running {
            id: self.last_id,
            base64: parsed.flags & json::FLAG_RESPONSE_BASE64 != 0,
            data: parsed.data,
        };
        Outcome::Run(running, line.to_vec())
    }

    /// `GET /<file>`.
    fn file(&self, request: &Request, files: &FileSystem) -> Response {
        if request.method != Method::Get {
            let mut response = Response::plain(405);
            response.header("Allow", "GET");
            return response;
        }
        let path = request.path();
        let name = match path {
            b"/" => Ok(self.cfg.root_filename.as_bytes().to_vec()),
            _ => url::percent_decode(path.strip_prefix(b"/").unwrap_or(path), false),
        };
        let Ok(name) = name.map(String::from_utf8) else { return Response::plain(400) };
        let Ok(name) = name else { return self.not_found(files) };
        let gz = format!("{name}.gz");
        let (found, gzip) = match served(files, &name) {
            Some(found) => (found, false),
            None => match served(files, &gz) {
                Some(found) => (found, true),
                None => return self.not_found(files),
            },
        };
        let (data, unprotected) = found;
        if !unprotected && !self.authorized(request) {
            return self.denied(files);
        }
        let mut response = Response::with_body(200, content_type(&name), data.to_vec());
        if gzip {
            response.header("Content-Encoding", "gzip");
        }
        response
    }

    fn not_found(&self, files: &FileSystem) -> Response {
        match served(files, &self.cfg.notfound_filename) {
            Some((data, _)) => {
                Response::with_body(404, content_type(&self.cfg.notfound_filename), data.to_vec())
            }
            None => Response::plain(404),
        }
    }

    /// When the next client that has not sent a whole request times out.
    pub(super) fn poll_at(&self) -> Option<Instant> {
        self.clients
            .iter()
            .filter(|c| c.conn.is_some() && c.running.is_none())
            .map(|c| c.since + HTTP_IDLE_TIMEOUT)
            .min()
    }

    /// Closes the clients that timed out.
    pub(super) fn tick(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        self.clients.retain(|c| {
            let idle = c.running.is_none() && c.since + HTTP_IDLE_TIMEOUT <= now;
            if let (true, Some(conn)) = (idle, c.conn) {
                ctx.close_conn(conn);
            }
            !idle
        });
    }
}

/// A whole file's contents and whether it is unprotected (`file_create -u`).
fn served<'a>(files: &'a FileSystem, name: &str) -> Option<(&'a [u8], bool)> {
    let file = files.get(name).filter(|f| f.is_complete())?;
    Some((file.data(), file.flags & fs::FLAG_UNPROTECTED != 0))
}

impl Module {
    /// Starts or stops the server as its settings and the network say.
    pub(super) fn http_server_sync(&mut self) {
        let up = self.svc.network.local_ip() != [0; 4];
        let Some(listener) = self.with_ctx(|s, ctx| s.http_server.sync(up, ctx)) else { return };
        let (tls, log_clients) =
            (self.svc.http_server.cfg.tls.clone(), self.svc.http_server.cfg.tls_log_clients);
        match self.tls_server_config(&tls) {
            Ok(config) => self.svc.tls.listener(listener, config, log_clients),
            Err(failure) => {
                // No certificate or key: an HTTPS server cannot serve at all.
                self.log(console::level::ERROR, &failure.to_string());
                self.with_ctx(|s, ctx| s.http_server.stop(ctx));
            }
        }
    }

    pub(super) fn http_listener_event(&mut self, event: &NetEvent, now: Instant) {
        self.with_ctx(|s, ctx| s.http_server.listener_event(event, now, ctx));
    }

    pub(super) fn http_client_event(&mut self, event: &NetEvent, now: Instant) {
        let step = self.with_ctx(|s, ctx| s.http_server.client_event(event, &s.files.fs, now, ctx));
        self.http_step(step, now);
    }

    /// Replies of an HTTP request's command (see `route_front_end_replies`).
    pub(super) fn http_replies(&mut self, id: u32, replies: Vec<Reply>, now: Instant) {
        for reply in replies {
            let step = self.with_ctx(|s, ctx| s.http_server.reply(id, reply, ctx));
            self.http_step(step, now);
        }
    }

    fn http_step(&mut self, step: Option<HttpStep>, now: Instant) {
        match step {
            Some(HttpStep::Run { id, line }) => self.execute_here(Origin::Http(id), &line, now),
            Some(HttpStep::Data { id, bytes }) => {
                self.data_here(Origin::Http(id), &bytes, now);
            }
            Some(HttpStep::Upgrade { conn, route, upgrade, peer, port }) => {
                let opened = self.ws_open(conn, route, &upgrade, peer, port, now);
                if opened.is_err() {
                    self.with_ctx(|s, ctx| s.http_server.no_handle(conn, ctx));
                }
            }
            None => {}
        }
    }

    pub(super) fn http_server_poll_at(&self) -> Option<Instant> {
        self.svc.http_server.poll_at()
    }

    pub(super) fn http_server_tick(&mut self, now: Instant) {
        self.with_ctx(|s, ctx| s.http_server.tick(now, ctx));
    }
}

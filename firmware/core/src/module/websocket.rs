//! The HTTP server's WebSocket parts (chapter, "WebSocket Server", "WebSocket Stream",
//! "WebSocket Command Stream"): after the HTTP server has accepted an upgrade on `/stream`
//! or `/cmdstream` ([`Module::ws_open`]), the connection is a WebSocket ([`crate::ws`]) and
//! belongs here.
//!
//! * **`/stream`** opens a `WEBS` stream in the stream table: listed by `stream_list`,
//!   counted in the 8 network streams, read with `stream_read`, polled, written with
//!   `stream_write` (one data frame per write), closed with `stream_close` (a close frame,
//!   then the TCP close). The connection stays `Owner::Stream`; only its received bytes
//!   pass through the WebSocket decoder first (`sockets.rs` asks [`WebSockets::receive`]).
//!   The peer's close frame, or a protocol error, ends the stream as a TCP peer's close does.
//! * **`/cmdstream`** (its connections are `Owner::CmdStream`): every data message is a
//!   msgpack command message ([`crate::msgpack`]); each runs as its own
//!   `Origin::CmdStream(n)` (`n` counts messages, module-wide), its `data` answers the
//!   command's data phase, and its response goes back as a binary frame
//!   (`Module::route_front_end_replies` hands the replies here).
//!
//! Decisions (assumed; the chapter is silent):
//!
//! * `stream_write` sends a text frame when its data is UTF-8, else a binary frame (a browser
//!   gets a string for text). Received text and binary messages are both stream data.
//! * A cmdstream connection is not a stream (not listed, not counted). Messages of one
//!   connection run concurrently, as separate origins; responses come in the order the
//!   commands finish and carry their `id`. A message that is not a command message is
//!   answered with code 2 (parse error), its `id` when it had a readable one, and the
//!   decoder's reason as the response. A non-empty `response` ends with CR LF, as the machine
//!   format frames a body and as the REST API's `response` does. `data` beyond what the data phase wants is ignored; a
//!   command given less waits for the rest like any data phase and fails (code 1) when it
//!   does not come. Log lines a cmdstream command causes are not sent on the WebSocket (the
//!   response map has no place for them): they go to the `/log` ring, as a REST command's.
//! * When the network goes down the cmdstream connections close with it (WEBS streams close
//!   as every network stream does). Switching the HTTP server off (`http.server.enabled` 0)
//!   stops new upgrades only: WebSockets already open stay, as a stream does.
//! * An upgraded connection is no longer an HTTP client: it does not count against
//!   `http.server.max_clients` and has no HTTP idle timeout.

use super::*;
use crate::msgpack::{self, Id, Request};
use crate::ws::{self, Connection, End, Message, Opcode};
use alloc::collections::BTreeMap;
use ctx::Ctx;

/// Which WebSocket service a connection was upgraded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsRoute {
    /// `/stream`: a WEBS stream.
    Stream,
    /// `/cmdstream`: commands in msgpack.
    CmdStream,
}

/// Why an upgrade was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsRefused {
    /// No stream handle is free (`POST /stream`: HTTP 404).
    NoHandle,
}

/// One WebSocket connection.
#[derive(Debug)]
struct WsConn {
    ws: Connection,
    route: WsRoute,
    /// What each send still unanswered by [`NetEvent::Sent`] was, oldest first: `true` for a
    /// frame of the part's own (pong, close, cmdstream response), whose `Sent` is not a
    /// `stream_write`'s.
    sends: VecDeque<bool>,
}

/// A cmdstream message whose command runs.
#[derive(Debug)]
struct InFlight {
    conn: ConnId,
    id: Option<Id>,
    data: Option<Vec<u8>>,
}

/// The WebSocket part: its connections and the cmdstream messages in flight.
#[derive(Debug, Default)]
pub(super) struct WebSockets {
    conns: BTreeMap<ConnId, WsConn>,
    /// By the `n` of their `Origin::CmdStream(n)`.
    in_flight: BTreeMap<u32, InFlight>,
    last_message: u32,
}

/// What received bytes brought, for the module to route.
#[derive(Debug, Default)]
pub(super) struct WsReceived {
    pub(super) messages: Vec<Message>,
    /// The connection ended: the stream closes as after a peer's close.
    pub(super) ended: bool,
}

impl WebSockets {
    pub(super) fn is_ws(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    fn send(&mut self, conn: ConnId, bytes: Vec<u8>, own: bool, ctx: &mut Ctx<'_>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.sends.push_back(own);
        }
        ctx.act(Action::Net(NetRequest::Send { conn, data: bytes, to: None }));
    }

    /// Takes an upgraded connection and sends the handshake's answer (`101`).
    fn open(&mut self, conn: ConnId, route: WsRoute, answer: Vec<u8>, ctx: &mut Ctx<'_>) {
        let ws = Connection::new(ws::MESSAGE_MAX);
        self.conns.insert(conn, WsConn { ws, route, sends: VecDeque::new() });
        self.send(conn, answer, true, ctx);
    }

    /// Bytes on a WebSocket: pongs and the close answer are sent, the connection closed at
    /// its end; the messages go back to the module.
    pub(super) fn receive(&mut self, conn: ConnId, bytes: &[u8], ctx: &mut Ctx<'_>) -> WsReceived {
        let Some(c) = self.conns.get_mut(&conn) else { return WsReceived::default() };
        let got = c.ws.receive(bytes);
        self.send(conn, got.reply, true, ctx);
        let ended = match got.end {
            None => false,
            Some(end) => {
                let why = match end {
                    End::Peer(Some(code)) => format!("closed by the peer ({code})"),
                    End::Peer(None) => "closed by the peer".to_string(),
                    End::Failed(e) => format!("{e} ({})", e.close_code()),
                };
                ctx.log(console::level::INFO, format!("WebSocket: {why}"));
                self.conns.remove(&conn);
                ctx.close_conn(conn);
                true
            }
        };
        WsReceived { messages: got.messages, ended }
    }

    /// A `Sent` for a WebSocket connection: whether it answers a frame of the part's own
    /// (then nobody else wants it).
    pub(super) fn own_sent(&mut self, conn: ConnId) -> bool {
        self.conns.get_mut(&conn).and_then(|c| c.sends.pop_front()).unwrap_or(false)
    }

    /// A data frame for `stream_write`: text when the data is UTF-8, else binary.
    pub(super) fn data_frame(&mut self, conn: ConnId, data: &[u8]) -> Option<Vec<u8>> {
        let c = self.conns.get_mut(&conn)?;
        let opcode = if core::str::from_utf8(data).is_ok() { Opcode::Text } else { Opcode::Binary };
        let frame = c.ws.frame(opcode, true, data);
        c.sends.push_back(false);
        Some(frame)
    }

    /// The server closes a connection: its close frame goes out before the TCP close (which
    /// the caller makes).
    pub(super) fn close(&mut self, conn: ConnId, code: u16, ctx: &mut Ctx<'_>) {
        let Some(mut c) = self.conns.remove(&conn) else { return };
        let frame = c.ws.close(code);
        if !frame.is_empty() {
            ctx.act(Action::Net(NetRequest::Send { conn, data: frame, to: None }));
        }
    }

    /// The connection is gone (the platform's close or failure).
    pub(super) fn forget(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// The network went down: the cmdstream connections close (WEBS streams close with the
    /// other network streams).
    pub(super) fn network_down(&mut self, ctx: &mut Ctx<'_>) {
        let cmd: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.route == WsRoute::CmdStream)
            .map(|(conn, _)| *conn)
            .collect();
        for conn in cmd {
            self.close(conn, ws::frame::close::GOING_AWAY, ctx);
            ctx.close_conn(conn);
        }
    }

    /// A cmdstream message: the command to run as a new origin, or the answer to a message
    /// that is not a command message (sent here).
    fn message(
        &mut self,
        conn: ConnId,
        message: &Message,
        ctx: &mut Ctx<'_>,
    ) -> Option<(Origin, String)> {
        match Request::decode(message.as_bytes()) {
            Ok(Request { command, data, id }) => {
                self.last_message = self.last_message.wrapping_add(1);
                let n = self.last_message;
                self.in_flight.insert(n, InFlight { conn, id, data });
                Some((Origin::CmdStream(n), command))
            }
            Err(rejected) => {
                let why = format!("{}", rejected.error);
                self.respond(conn, rejected.id, ResultCode::PARSE_ERROR, why.as_bytes(), ctx);
                None
            }
        }
    }

    /// A response message on `conn`: a non-empty body ends with CR LF, as the machine format
    /// frames it (and as the REST API's `response`).
    fn respond(
        &mut self,
        conn: ConnId,
        id: Option<Id>,
        code: ResultCode,
        body: &[u8],
        ctx: &mut Ctx<'_>,
    ) {
        let Some(c) = self.conns.get(&conn) else { return };
        let mut text = body.to_vec();
        if !text.is_empty() {
            text.extend_from_slice(b"\r\n");
        }
        let answer = msgpack::encode_response(id, code.0, &text);
        let frame = c.ws.send(&Message::Binary(answer));
        self.send(conn, frame, true, ctx);
    }

    /// Whether this part owns `Origin::CmdStream(n)`.
    pub(super) fn owns(&self, n: u32) -> bool {
        self.in_flight.contains_key(&n)
    }

    /// The data of message `n`, for its command's data phase.
    fn data_of(&self, n: u32) -> Vec<u8> {
        self.in_flight.get(&n).and_then(|m| m.data.clone()).unwrap_or_default()
    }

    /// Message `n`'s command answered: its response goes back on its connection (if still
    /// open).
    fn answered(&mut self, n: u32, code: ResultCode, body: &[u8], ctx: &mut Ctx<'_>) {
        let Some(m) = self.in_flight.remove(&n) else { return };
        self.respond(m.conn, m.id, code, body, ctx);
    }
}

impl Module {
    /// The HTTP server accepted a WebSocket upgrade (a valid handshake, see
    /// [`crate::ws::handshake`]) on `conn` for `route`: sends the `101` answer and takes the
    /// connection over. `/stream`
    /// needs a free stream handle: without one nothing is sent and the HTTP server answers
    /// 404 ("no available stream handles").
    pub(super) fn ws_open(
        &mut self,
        conn: ConnId,
        route: WsRoute,
        upgrade: &ws::handshake::Upgrade,
        peer: Endpoint,
        port: u16,
        now: Instant,
    ) -> Result<(), WsRefused> {
        if route == WsRoute::Stream && self.streams.network_full() {
            return Err(WsRefused::NoHandle);
        }
        self.with_ctx(|s, ctx| s.websockets.open(conn, route, upgrade.response(), ctx));
        match route {
            WsRoute::Stream => {
                let stream =
                    Stream::new(StreamType::Webs, conn, (self.local_ip(), port), Some(peer));
                // Not full (checked above): a handle is free.
                self.add_stream(stream, now);
            }
            WsRoute::CmdStream => self.conns.set(conn, conns::Owner::CmdStream),
        }
        Ok(())
    }

    /// Bytes for a WEBS stream: decoded; the messages' bytes are the stream's data.
    pub(super) fn ws_stream_received(
        &mut self,
        conn: ConnId,
        from: Endpoint,
        data: &[u8],
        now: Instant,
    ) {
        // Its log lines are nobody's command's.
        let got =
            self.in_origin(None, |m| m.with_ctx(|s, ctx| s.websockets.receive(conn, data, ctx)));
        for m in got.messages {
            self.stream_data(conn, from, m.as_bytes(), now);
        }
        if got.ended {
            self.stream_closed(conn, now);
        }
    }

    /// An event for a cmdstream connection.
    pub(super) fn cmdstream_event(&mut self, event: &NetEvent, now: Instant) {
        match event {
            NetEvent::Received { conn, data, .. } => {
                let conn = *conn;
                let got = self.with_ctx(|s, ctx| s.websockets.receive(conn, data, ctx));
                for m in &got.messages {
                    let run = self.with_ctx(|s, ctx| s.websockets.message(conn, m, ctx));
                    if let Some((origin, command)) = run {
                        self.in_origin(Some(origin), |m| {
                            if m.pending.is_some() {
                                m.queued.push_back((origin, command.into_bytes()));
                            } else {
                                m.run_line(command.as_bytes(), now);
                            }
                        });
                    }
                }
            }
            NetEvent::Sent { conn, .. } => {
                self.svc.websockets.own_sent(*conn);
            }
            NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. } => {
                self.svc.websockets.forget(*conn);
            }
            _ => {}
        }
    }

    /// Hands replies for a cmdstream origin to the part: the data phase gets the message's
    /// data, the response goes back on the WebSocket, log lines go to the `/log` ring.
    pub(super) fn cmdstream_reply(&mut self, n: u32, reply: Reply, now: Instant) {
        match reply {
            // As a REST command's: to the `/log` ring.
            Reply::Log { text, .. } => self.svc.http_server.log_line(&text),
            Reply::Data { .. } => {
                let data = self.svc.websockets.data_of(n);
                let origin = Origin::CmdStream(n);
                self.data_here(origin, &data, now);
            }
            Reply::Response { code, body } => {
                self.with_ctx(|s, ctx| s.websockets.answered(n, code, &body, ctx));
            }
        }
    }

    /// Closes the WebSocket of a WEBS stream being closed: its close frame first.
    pub(super) fn ws_closing(&mut self, conn: ConnId) {
        self.with_ctx(|s, ctx| s.websockets.close(conn, ws::frame::close::NORMAL, ctx));
    }
}

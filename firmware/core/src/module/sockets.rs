//! Streams and sockets: the `stream_*`, `tcp_*` and `udp_*` commands and the connection
//! events. Decisions (assumed where no source gives them; see also [`crate::streams`]):
//!
//! * Logs: `[Opening: <host>:<port>]`, `[Opened: <handle>]`, `[Open failed]` and
//!   `[Closed: <handle>]` at level 1 (status); `Closing: <handle>` at level 3; reasons
//!   (`No free stream handles`, `Host not found: …`, `Connect failed: …`) at 2 or 3.
//! * `tcp_client` retry sequence: one attempt, then up to `tcp.client.retries` more, each
//!   `tcp.client.retry_period` ms after the previous one failed (refused, or no
//!   [`NetEvent::TcpConnected`] within `tcp.client.connect_timeout` ms, after which the
//!   attempt's connection is closed). The host is resolved once.
//! * `stream_write <handle> <size>`: `size` must be 1 to `bus.command.rx_bufsize` (0 or not a
//!   number: code 7; too big: code 9), checked before the data phase, which then always
//!   takes `size` bytes; the handle is checked after it (bad or closed: code 7), so the data
//!   never runs as commands. Bytes beyond `size` are command input again. No byte for
//!   [`DATA_TIMEOUT`]: code 1, the partial data is dropped. The answer waits for
//!   [`NetEvent::Sent`] up to `bus.command.write_timeout` ms: then `Success`, or code 9 when
//!   `bus.command.write_check_enabled` (else `Success`: the platform has the data).
//! * `stream_read <handle> <size>`: up to `size` bytes (UDP: of one datagram), raw in the
//!   body; empty body (success) when nothing came within `bus.command.read_timeout` ms.
//! * `stream_close` frees the handle at once (it sends [`NetRequest::Close`] and does not wait
//!   for [`NetEvent::Closed`]).
//! * `tcp_server start [port]` answers `Success` after [`NetRequest::TcpListen`] (the contract
//!   has no success event; a later failure logs and stops the server); `start` while running
//!   is code 1. `stop` (also when not running) answers `Success` and closes every TCPS client.
//!   More than `tcp.server.max_clients` clients, or no free handle: the new client is closed
//!   at once. `tcp.server.idle_timeout` (s, 0 never) closes a client with no data either way.
//! * `udp_server start [port]` answers the UDPS stream's handle, like `udp_client`. `udp_server
//!   read <size>` answers `<ip> <port>` of the datagram's sender, CR LF, then the data (empty
//!   body when nothing came). Replies (`stream_write` on the UDPS handle) go to the first
//!   sender with `udp.server.lock_client`, else to the latest; before any client sent, to
//!   `udp.server.remote_host`:`udp.server.remote_port` if both are set (an address), else the
//!   write fails (code 1). `udp_client` keeps datagrams from any sender.

use super::*;
use crate::config::SocketsConfig;
use ctx::Ctx;

/// What a client command opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Client {
    /// `tcp_client`: a TCPC stream.
    Tcp,
    /// `tls_client`: a TLSC stream (TCP, then the TLS handshake).
    Tls,
    /// `udp_client`: a UDPC stream.
    Udp,
}

/// What a stream or socket command waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum StreamWait {
    /// `tcp_client`: a connect attempt (`waiting: false`, deadline `tcp.client.connect_timeout`)
    /// or the wait before the next (`waiting: true`, deadline `tcp.client.retry_period`).
    Connect {
        conn: ConnId,
        deadline: Instant,
        host: String,
        to: Endpoint,
        /// Attempts made so far.
        tries: u32,
        waiting: bool,
        /// `tls_client`: TLS on the connection.
        tls: bool,
    },
    /// `udp_client`, `udp_server start`: waiting for [`NetEvent::UdpOpened`].
    UdpOpen { conn: ConnId, deadline: Instant, kind: StreamType, remote: Option<Endpoint> },
    /// `stream_read`, `udp_server read`: nothing buffered yet; waits `bus.command.read_timeout`.
    Read { handle: usize, size: usize, deadline: Instant, with_sender: bool },
    /// The data phase of `stream_write`, `udp_server write`: [`DATA_TIMEOUT`] after the last
    /// byte it aborts.
    Data { phase: DataPhase, deadline: Instant, target: WriteTarget },
    /// The write was handed to the platform; waiting for [`NetEvent::Sent`]
    /// (`bus.command.write_timeout`).
    Write {
        conn: ConnId,
        handle: usize,
        deadline: Instant,
        /// Bytes handed to the platform; a `Sent` for fewer is a failed write.
        len: usize,
    },
}

impl StreamWait {
    pub(super) fn deadline(&self) -> Instant {
        match self {
            StreamWait::Connect { deadline, .. }
            | StreamWait::UdpOpen { deadline, .. }
            | StreamWait::Read { deadline, .. }
            | StreamWait::Data { deadline, .. }
            | StreamWait::Write { deadline, .. } => *deadline,
        }
    }
}

/// Where the bytes of a data phase go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum WriteTarget {
    /// `stream_write <handle>`.
    Stream(usize),
    /// `udp_server write <ip> <port>`.
    UdpClient(Endpoint),
    /// `file_create` without `-o`: the data is the file.
    File(NewFile),
}

/// How long the data phase of a write waits for the next byte before it aborts (assumed).
pub const DATA_TIMEOUT: Duration = Duration::from_millis(5_000);

/// How long `udp_client` and `udp_server start` wait for the platform's UDP socket (assumed).
pub const UDP_OPEN_TIMEOUT: Duration = Duration::from_millis(5_000);

pub(super) fn conn_failure_text(reason: crate::net::ConnFailure) -> &'static str {
    use crate::net::ConnFailure;
    match reason {
        ConnFailure::Refused => "refused",
        ConnFailure::NoSocket => "no free socket",
        ConnFailure::Unreachable => "unreachable",
        ConnFailure::PortInUse => "port in use",
        ConnFailure::Tls(_) => "TLS handshake failed",
    }
}

/// A stream handle: a decimal number.
pub(super) fn parse_handle(arg: &str) -> Option<usize> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok()
}

/// A read or write size: a decimal number from 1.
pub(super) fn parse_size(arg: &str) -> Option<usize> {
    parse_handle(arg).filter(|n| *n > 0)
}

/// A port: 1 to 65535.
pub(super) fn parse_port(arg: &str) -> Option<u16> {
    parse_handle(arg).and_then(|n| u16::try_from(n).ok()).filter(|p| *p > 0)
}

/// The stream commands' part: their settings (`bus.command.*`, `tcp.client.*`) and the
/// receive path of network streams. The commands themselves wait in their origin
/// (`StreamWait`) and are `impl Module` below.
#[derive(Debug)]
pub(super) struct Sockets {
    cfg: SocketsConfig,
}

/// Where received data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Delivery {
    /// The stream streams to the bus (STREAM mode): straight out, not buffered.
    pub(super) bus: bool,
    /// `udp.server.lock_client`: a UDP server answers its first client only.
    pub(super) lock_client: bool,
}

impl Sockets {
    pub(super) fn new(vars: &Vars) -> Self {
        Self { cfg: SocketsConfig::from_vars(vars) }
    }

    /// `bus.command.*` or `tcp.client.*` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = SocketsConfig::from_vars(vars);
    }

    pub(super) fn cfg(&self) -> &SocketsConfig {
        &self.cfg
    }

    /// Data for stream `h`: buffered up to `bus.command.rx_bufsize` (the rest dropped,
    /// logged), the peer paused at half full; data for the bus is only counted (a UDP server
    /// still learns whom to answer).
    pub(super) fn received(
        &self,
        h: usize,
        from: Endpoint,
        data: &[u8],
        to: Delivery,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) {
        if to.bus {
            ctx.streams.received(h, from, &[], 0, to.lock_client, now);
            if let Some(s) = ctx.streams.get_mut(h) {
                s.rx_bytes += data.len() as u64;
            }
            return;
        }
        let cap = self.cfg.bus.rx_bufsize;
        let dropped = ctx.streams.received(h, from, data, cap, to.lock_client, now);
        if dropped > 0 {
            ctx.log(
                console::level::INFO,
                format!("Stream {h}: receive buffer full, {dropped} bytes dropped"),
            );
        }
        if let Some(s) = ctx.streams.get_mut(h)
            && !s.kind.is_udp()
            && !s.paused
            && s.buffered() >= cap / 2
        {
            s.paused = true;
            let conn = s.conn;
            ctx.act(Action::Net(NetRequest::Flow { conn, accept: false }));
        }
    }
}

impl Module {
    pub(super) fn local_ip(&self) -> Ipv4 {
        self.svc.network.local_ip()
    }

    pub(super) fn stream_command(
        &mut self,
        id: CommandId,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let bad = Some((ResultCode::BAD_ARGS, None));
        match id {
            CommandId::StreamList => {
                self.buffer_as("stream_list");
                Some((ResultCode::SUCCESS, Some(self.streams.list_body())))
            }
            CommandId::StreamPoll => match args.first().map(String::as_str) {
                None | Some("all") => Some((ResultCode::SUCCESS, Some(self.streams.poll_all()))),
                Some(h) => match parse_handle(h).and_then(|h| self.streams.get(h)) {
                    Some(s) => Some((ResultCode::SUCCESS, Some(s.poll().to_string()))),
                    None => bad,
                },
            },
            CommandId::StreamClose => {
                if args[0] == "all" {
                    let handles: Vec<usize> = self.streams.iter().map(|(h, _)| h).collect();
                    for h in handles {
                        self.close_stream(h, now);
                    }
                } else {
                    match parse_handle(&args[0]).filter(|h| self.streams.get(*h).is_some()) {
                        Some(h) => self.close_stream(h, now),
                        None => return bad,
                    }
                }
                Some((ResultCode::SUCCESS, Some("Success".to_string())))
            }
            CommandId::StreamRead => {
                let (Some(h), Some(size)) = (parse_handle(&args[0]), parse_size(&args[1])) else {
                    return bad;
                };
                if self.streams.get(h).is_none() {
                    return bad;
                }
                if self.is_bus_stream(h) {
                    return Some(self.bus_stream_refused(h));
                }
                self.read(h, size, false, now)
            }
            CommandId::StreamWrite => {
                let Some(h) = parse_handle(&args[0]) else { return bad };
                self.write(WriteTarget::Stream(h), &args[1], now)
            }
            CommandId::TcpClient | CommandId::TlsClient | CommandId::UdpClient => {
                let Some(port) = parse_port(&args[1]) else { return bad };
                let host = vars::unescape_plain(&args[0]);
                if self.streams.network_full() {
                    self.log(console::level::ERROR, "No free stream handles");
                    return Some((ResultCode::FAILED, None));
                }
                self.log(console::level::STATUS, &format!("[Opening: {host}:{port}]"));
                let client = match id {
                    CommandId::UdpClient => Client::Udp,
                    CommandId::TlsClient => Client::Tls,
                    _ => Client::Tcp,
                };
                self.with_network(AfterUp::Open { client, host, port }, now);
                None
            }
            CommandId::TcpServer => self.tcp_server_command(args, false, now),
            CommandId::TlsServer => self.tcp_server_command(args, true, now),
            CommandId::UdpServer => self.udp_server(args, now),
            _ => Some((ResultCode::UNKNOWN_COMMAND, None)),
        }
    }

    /// Adds a stream for a connection the platform opened (see [`ctx::Ctx::add_stream`]).
    pub(super) fn add_stream(&mut self, stream: Stream, now: Instant) -> Option<usize> {
        self.with_ctx(|_, ctx| ctx.add_stream(stream, now))
    }

    pub(super) fn read(
        &mut self,
        handle: usize,
        size: usize,
        with_sender: bool,
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let Some(stream) = self.streams.get(handle) else {
            return Some((ResultCode::BAD_ARGS, None));
        };
        if stream.source.is_some() {
            return self.local_read(handle, size, now);
        }
        if stream.buffered() > 0 {
            self.answer_read(handle, size, with_sender, now);
            return None;
        }
        let timeout = self.svc.sockets.cfg().bus.read_timeout;
        if timeout.as_millis() == 0 {
            return Some((ResultCode::SUCCESS, None));
        }
        let deadline = now + timeout;
        self.pending =
            Some(Pending::Stream(StreamWait::Read { handle, size, deadline, with_sender }));
        None
    }

    /// Answers a read with what is buffered (maybe nothing); frees a peer-closed stream once
    /// it is empty.
    pub(super) fn answer_read(
        &mut self,
        handle: usize,
        size: usize,
        with_sender: bool,
        now: Instant,
    ) {
        let Some(stream) = self.streams.get_mut(handle) else {
            return self.finish(ResultCode::SUCCESS, None, now);
        };
        let chunk = stream.read(size);
        let cap = self.svc.sockets.cfg().bus.rx_bufsize;
        if stream.paused && stream.buffered() < cap / 4 {
            stream.paused = false;
            let conn = stream.conn;
            self.actions.push_back(Action::Net(NetRequest::Flow { conn, accept: true }));
        }
        let Some(stream) = self.streams.get_mut(handle) else {
            return self.finish(ResultCode::SUCCESS, None, now);
        };
        if stream.closed && stream.buffered() == 0 {
            self.streams.remove(handle);
        }
        let mut body = Vec::new();
        if let Some(chunk) = chunk {
            if with_sender {
                let (ip, port) = chunk.from;
                body.extend_from_slice(format!("{} {port}\r\n", wlan::ip_text(ip)).as_bytes());
            }
            body.extend_from_slice(&chunk.data);
        }
        self.finish_bytes(&body, now);
    }

    pub(super) fn write(
        &mut self,
        target: WriteTarget,
        size: &str,
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let Some(size) = parse_size(size) else { return Some((ResultCode::BAD_ARGS, None)) };
        if size > self.svc.sockets.cfg().bus.rx_bufsize {
            return Some((ResultCode::BOUNDS_ERROR, None));
        }
        self.start_data(size, target, now);
        None
    }

    /// Starts a data phase: the command waits for `size` bytes from its origin.
    pub(super) fn start_data(&mut self, size: usize, target: WriteTarget, now: Instant) {
        let skip_lf = self.origin_after_cr();
        let phase = DataPhase::new(size, skip_lf);
        self.pending =
            Some(Pending::Stream(StreamWait::Data { phase, deadline: now + DATA_TIMEOUT, target }));
        self.emit(Reply::Data { want: size });
    }

    /// The data phase has all its bytes: send them.
    pub(super) fn data_complete(&mut self, now: Instant) {
        let Some(Pending::Stream(StreamWait::Data { phase, target, .. })) = self.pending.take()
        else {
            return;
        };
        let data = phase.into_data();
        if let WriteTarget::File(new) = target {
            return self.create_file(new, &data, now);
        }
        if let WriteTarget::Stream(h) = target
            && self.streams.get(h).is_some_and(|s| s.source.is_some())
        {
            return self.local_write(h, &data, now);
        }
        if let WriteTarget::Stream(h) = target
            && self.is_bus_stream(h)
        {
            let (code, _) = self.bus_stream_refused(h);
            return self.finish(code, None, now);
        }
        let (handle, to) = match target {
            WriteTarget::Stream(h) => match self.streams.get(h) {
                Some(s) if !s.closed => {
                    let to = match s.kind {
                        StreamType::Udpc => s.remote,
                        StreamType::Udps => s.remote.or_else(|| self.udp_server_default()),
                        _ => None,
                    };
                    if s.kind == StreamType::Udps && to.is_none() {
                        self.log(console::level::ERROR, "UDP server: no client to send to");
                        return self.finish(ResultCode::FAILED, None, now);
                    }
                    (h, to)
                }
                _ => return self.finish(ResultCode::BAD_ARGS, None, now),
            },
            WriteTarget::UdpClient(to) => match self.streams.handles_of(StreamType::Udps).first() {
                Some(&h) => (h, Some(to)),
                None => {
                    self.log(console::level::ERROR, "UDP server not running");
                    return self.finish(ResultCode::FAILED, None, now);
                }
            },
            WriteTarget::File(_) => return,
        };
        let Some(stream) = self.streams.get_mut(handle) else { return };
        stream.tx_bytes += data.len() as u64;
        stream.last_activity = now;
        let conn = stream.conn;
        // A WEBS stream's data goes in one data frame.
        let data = match stream.kind {
            StreamType::Webs => match self.svc.websockets.data_frame(conn, &data) {
                Some(frame) => frame,
                None => return self.finish(ResultCode::BAD_ARGS, None, now),
            },
            _ => data,
        };
        let len = data.len();
        self.actions.push_back(Action::Net(NetRequest::Send { conn, data, to }));
        let deadline = now + self.svc.sockets.cfg().bus.write_timeout;
        self.pending = Some(Pending::Stream(StreamWait::Write { conn, handle, deadline, len }));
    }

    /// Closes a stream on the command's behalf and frees its handle.
    pub(super) fn close_stream(&mut self, handle: usize, now: Instant) {
        let Some(stream) = self.streams.remove(handle) else { return };
        if let Some(Local::FileWrite { name, size, written, .. }) = &stream.source
            && written < size
        {
            self.svc.files.fs.abort(name);
            let note = format!("File {name}: closed after {written} of {size} bytes, discarded");
            self.log(console::level::ERROR, &note);
        }
        // Closed on purpose: an auto-started client does not reconnect.
        if stream.source.is_none() {
            self.svc.autos.stream_closed_on_purpose(stream.conn);
        }
        if !stream.closed && stream.source.is_none() {
            if stream.kind == StreamType::Webs {
                self.ws_closing(stream.conn);
            }
            self.close_conn(stream.conn);
        }
        self.log(console::level::INFO, &format!("Closing: {handle}"));
        self.log(console::level::STATUS, &format!("[Closed: {handle}]"));
        // Only a timer closes a stream while a read waits (idle client): the read ends empty.
        let reading = |p: &Pending| matches!(p, Pending::Stream(StreamWait::Read { handle: h, .. }) if *h == handle);
        if let Some(origin) = self.owner(reading) {
            self.in_origin(Some(origin), |m| m.finish(ResultCode::SUCCESS, None, now));
        }
    }

    /// A stream command's timer ran out.
    pub(super) fn stream_timed_out(&mut self, wait: StreamWait, now: Instant) {
        let note = match wait {
            StreamWait::Connect { host, to, tries, waiting: true, tls, .. } => {
                return self.tcp_attempt(host, to, tries, tls, now);
            }
            StreamWait::Connect { conn, host, to, tries, waiting: false, tls, .. } => {
                self.close_conn(conn);
                self.log(console::level::INFO, "Connect timed out");
                return self.tcp_retry(host, to, tries, tls, now);
            }
            StreamWait::UdpOpen { conn, kind, .. } => {
                self.close_conn(conn);
                if kind == StreamType::Udpc {
                    self.log(console::level::STATUS, "[Open failed]");
                }
                "UDP open timed out".to_string()
            }
            StreamWait::Read { .. } => return self.finish(ResultCode::SUCCESS, None, now),
            StreamWait::Data { phase, .. } => {
                format!("Write aborted: {} bytes missing", phase.missing())
            }
            StreamWait::Write { .. } => {
                if self.svc.sockets.cfg().bus.write_check {
                    self.log(console::level::ERROR, "Write not taken in time");
                    return self.finish(ResultCode::BOUNDS_ERROR, None, now);
                }
                return self.finish(ResultCode::SUCCESS, Some("Success"), now);
            }
        };
        self.log(console::level::ERROR, &note);
        self.finish(ResultCode::FAILED, None, now);
    }

    /// An event for an open stream's connection: data, a write taken, or the end.
    pub(super) fn stream_conn_event(&mut self, event: &NetEvent, now: Instant) {
        match event {
            NetEvent::Received { conn, data, from } => {
                if self.svc.websockets.is_ws(*conn) {
                    return self.ws_stream_received(*conn, *from, data, now);
                }
                self.stream_data(*conn, *from, data, now);
            }
            NetEvent::Sent { conn, .. }
                if self.svc.websockets.is_ws(*conn) && self.svc.websockets.own_sent(*conn) => {}
            NetEvent::Sent { conn, len } => {
                if let Some(Pending::Stream(StreamWait::Write { conn: want, len: asked, .. })) =
                    &self.pending
                    && want == conn
                {
                    if len < asked {
                        let line = format!("Write failed: {len} of {asked} bytes sent");
                        self.log(console::level::ERROR, &line);
                        self.finish(ResultCode::FAILED, None, now);
                    } else {
                        self.finish(ResultCode::SUCCESS, Some("Success"), now);
                    }
                }
            }
            NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. } => {
                self.svc.websockets.forget(*conn);
                self.stream_closed(*conn, now);
            }
            _ => {}
        }
    }

    /// Data for the stream on `conn` (a WEBS stream's: the payload of its messages): to the
    /// bus in STREAM mode, else buffered, and a read waiting for it answered.
    pub(super) fn stream_data(&mut self, conn: ConnId, from: Endpoint, data: &[u8], now: Instant) {
        let Some(h) = self.streams.by_conn(conn) else { return };
        let to = Delivery {
            bus: self.svc.bus.streams_conn(conn),
            lock_client: self.svc.udp_server.lock_client(),
        };
        self.with_ctx(|s, ctx| s.sockets.received(h, from, data, to, now, ctx));
        if to.bus {
            self.serial.raw(data);
            return;
        }
        if let Some(Pending::Stream(StreamWait::Read { handle, size, with_sender, .. })) =
            self.pending.clone()
            && handle == h
            && self.streams.get(h).is_some_and(|s| s.buffered() > 0)
        {
            self.answer_read(h, size, with_sender, now);
        }
    }

    /// A stream's connection ended (the peer closed it, it failed, or the network went
    /// down): a write waiting on it fails, the stream is marked closed (kept while it holds
    /// data), a read waiting on it is answered, and auto start may reconnect.
    pub(super) fn stream_closed(&mut self, conn: ConnId, now: Instant) {
        // A command waiting on this connection is answered in its origin.
        let owner = self.event_owner(&NetEvent::Closed { conn });
        if owner.is_some() && owner != self.ctx {
            return self.in_origin(owner, |m| m.stream_closed(conn, now));
        }
        if let Some(Pending::Stream(StreamWait::Write { conn: want, .. })) = &self.pending
            && *want == conn
        {
            self.finish(ResultCode::FAILED, None, now);
        }
        self.svc.autos.stream_dropped(conn, now);
        let Some(h) = self.streams.by_conn(conn) else { return };
        let Some(stream) = self.streams.get_mut(h) else { return };
        if stream.closed {
            return;
        }
        stream.closed = true;
        let empty = stream.buffered() == 0;
        if empty {
            self.streams.remove(h);
        }
        // The close is the peer's doing, not the waiting command's: every origin that
        // follows asynchronous logs sees it, the command gets only its answer.
        self.in_origin(None, |m| m.log(console::level::STATUS, &format!("[Closed: {h}]")));
        if let Some(Pending::Stream(StreamWait::Read { handle, size, with_sender, .. })) =
            self.pending.clone()
            && handle == h
        {
            self.answer_read(h, size, with_sender, now);
        }
    }
}

//! Serial STREAM mode (chapter, "Serial STREAM Mode"; protocol-facts §1.6). Decisions (assumed):
//!
//! * `bus.mode` is read at boot (`set` + `save` + `reboot`). The banner and `[Ready]` print,
//!   then the bus streams: no prompt, no echo, no logs.
//! * The first stream an auto start opens (`tcp.client`, `udp.client`, `udp.server`, or the
//!   first client of an auto-started TCP server) streams to the bus; when it closes, the next
//!   auto-started stream to open takes over. Meanwhile bus bytes are dropped.
//! * Bus bytes are sent when `bus.stream.flush_count` are waiting, or `bus.stream.flush_time`
//!   ms after the first waiting byte (after the latest with `bus.stream.flush_time_reset`);
//!   UDP clients send to their remote, the UDP server to its reply target (see `udp_server`).
//!   Received data goes to the bus as it comes (not through the receive buffer).
//! * Break-in: `bus.stream.cmd_seq` (empty: disabled) arriving after at least 3 s without a
//!   bus byte switches to command mode (log `[Command mode]`); the bytes of the sequence are
//!   not sent. A partial match is held back until the next byte decides it. `exit` answers
//!   `Success` and returns to streaming; data that came meanwhile is written out first.
//!   `exit` when not booted in STREAM mode: code 1.
//! * The streaming stream is listed by `stream_list` but `stream_read`/`stream_write` on it
//!   answer code 1 (logged). In STREAM mode the TCP server takes one client at a time.
//!
//! A part of its own: [`Bus`] owns the STREAM mode state and its settings (`bus.mode`,
//! `bus.stream.*`), its flush timer, and works on the stream table and the platform's actions
//! through a [`Ctx`]. The serial console stays the module's: the bus hands back what goes to
//! it (the rest of a line after the break-in, what a stream received meanwhile).

use super::*;
use crate::config::StreamModeConfig;
use ctx::Ctx;

/// Serial STREAM mode (`bus.mode stream`, read at boot).
#[derive(Debug)]
pub(super) struct Bus {
    cfg: StreamModeConfig,
    /// `bus.mode` was `stream` at boot.
    pub(super) configured: bool,
    /// The bus streams now (not broken in to command mode).
    streaming: bool,
    /// The connection of the stream that streams to the bus.
    conn: Option<ConnId>,
    /// Bus bytes not yet sent.
    tx: Vec<u8>,
    flush_at: Option<Instant>,
    /// When the last bus byte came (boot counts as one).
    last_rx: Instant,
    /// Bytes of `bus.stream.cmd_seq` matched so far (held back from the stream).
    seq_match: usize,
    /// `exit` ended with a lone CR: an LF right after it is part of that line end.
    skip_lf: bool,
}

impl Bus {
    /// After 3 s without a bus byte the break-in sequence may start.
    const BREAK_IN_SILENCE: Duration = Duration::from_millis(3_000);

    pub(super) fn new(vars: &Vars, now: Instant) -> Self {
        Self {
            cfg: StreamModeConfig::from_vars(vars),
            configured: false,
            streaming: false,
            conn: None,
            tx: Vec::new(),
            flush_at: None,
            last_rx: now,
            seq_match: 0,
            skip_lf: false,
        }
    }

    /// `bus.mode`, `bus.stream.*` changed (`bus.mode` takes effect at the next boot).
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = StreamModeConfig::from_vars(vars);
    }

    /// Booted: with `bus.mode stream` the bus streams from now (after the banner).
    pub(super) fn boot(&mut self, now: Instant) {
        if self.cfg.stream_mode {
            self.configured = true;
            self.streaming = true;
            self.last_rx = now;
        }
    }

    /// The bus carries stream data now (no prompt, no echo, no logs).
    pub(super) fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// Data received on `conn` goes straight to the bus.
    pub(super) fn streams_conn(&self, conn: ConnId) -> bool {
        self.streaming && self.conn == Some(conn)
    }

    /// An auto-started stream on `conn` opened: it streams to the bus if none does.
    pub(super) fn claim(&mut self, conn: ConnId, streams: &Streams) {
        if self.configured && self.handle(streams).is_none() {
            self.conn = Some(conn);
        }
    }

    /// The handle of the stream that streams to the bus.
    pub(super) fn handle(&self, streams: &Streams) -> Option<usize> {
        self.conn.and_then(|c| streams.by_conn(c))
    }

    /// `stream_read`/`stream_write` on the streaming stream: refused, logged.
    pub(super) fn refused(&self, handle: usize, ctx: &mut Ctx<'_>) -> (ResultCode, Option<String>) {
        ctx.log(console::level::ERROR, format!("Stream {handle} streams to the bus"));
        (ResultCode::FAILED, None)
    }

    /// Bytes from the bus while it streams; `udp_default`: where the UDP server replies
    /// before any client sent. Returns where command mode began (the break-in sequence
    /// ended there): the bytes from there on are console input.
    pub(super) fn bytes(
        &mut self,
        bytes: &[u8],
        now: Instant,
        udp_default: Option<Endpoint>,
        ctx: &mut Ctx<'_>,
    ) -> Option<usize> {
        let seq = self.cfg.cmd_seq.clone();
        for (i, &b) in bytes.iter().enumerate() {
            if core::mem::take(&mut self.skip_lf) && b == b'\n' {
                continue;
            }
            let silent = now - self.last_rx >= Self::BREAK_IN_SILENCE;
            self.last_rx = now;
            let matched = self.seq_match;
            if matched > 0 || (silent && !seq.is_empty()) {
                if seq.get(matched) == Some(&b) {
                    self.seq_match += 1;
                    if self.seq_match == seq.len() {
                        self.seq_match = 0;
                        self.flush(udp_default, ctx);
                        self.streaming = false;
                        ctx.log(console::level::STATUS, "[Command mode]");
                        return Some(i + 1);
                    }
                    continue;
                }
                self.seq_match = 0;
                self.push(&seq[..matched], now, udp_default, ctx);
            }
            self.push(&[b], now, udp_default, ctx);
        }
        None
    }

    fn push(
        &mut self,
        bytes: &[u8],
        now: Instant,
        udp_default: Option<Endpoint>,
        ctx: &mut Ctx<'_>,
    ) {
        if bytes.is_empty() {
            return;
        }
        self.tx.extend_from_slice(bytes);
        if self.flush_at.is_none() || self.cfg.flush_time_reset {
            self.flush_at = Some(now + self.cfg.flush_time);
        }
        if self.tx.len() >= self.cfg.flush_count {
            self.flush(udp_default, ctx);
        }
    }

    /// When the bytes waiting for the stream must go.
    pub(super) fn poll_at(&self) -> Option<Instant> {
        self.flush_at
    }

    pub(super) fn tick(&mut self, now: Instant, udp_default: Option<Endpoint>, ctx: &mut Ctx<'_>) {
        if self.flush_at.is_some_and(|at| at <= now) {
            self.flush(udp_default, ctx);
        }
    }

    /// Sends the waiting bus bytes on the streaming stream (dropped when there is none).
    fn flush(&mut self, udp_default: Option<Endpoint>, ctx: &mut Ctx<'_>) {
        self.flush_at = None;
        let data = core::mem::take(&mut self.tx);
        let Some(h) = self.handle(ctx.streams) else { return };
        let Some(stream) = ctx.streams.get_mut(h) else { return };
        if data.is_empty() || stream.closed {
            return;
        }
        stream.tx_bytes += data.len() as u64;
        let (kind, conn, remote) = (stream.kind, stream.conn, stream.remote);
        let to = match kind {
            StreamType::Udpc => remote,
            StreamType::Udps => remote.or(udp_default),
            _ => None,
        };
        if kind == StreamType::Udps && to.is_none() {
            return;
        }
        ctx.act(Action::Net(NetRequest::Send { conn, data, to }));
    }

    /// `exit`: back to streaming (`after_cr`: the line ended with a lone CR). Returns what
    /// the stream received meanwhile, to go out on the bus first.
    pub(super) fn resume(&mut self, after_cr: bool, ctx: &mut Ctx<'_>) -> Vec<u8> {
        self.streaming = true;
        self.skip_lf = after_cr;
        let mut out = Vec::new();
        if let Some(h) = self.handle(ctx.streams)
            && let Some(stream) = ctx.streams.get_mut(h)
        {
            while let Some(chunk) = stream.read(usize::MAX) {
                out.extend_from_slice(&chunk.data);
            }
        }
        out
    }
}

impl Module {
    pub(super) fn claim_bus(&mut self, conn: ConnId) {
        self.svc.bus.claim(conn, &self.streams);
    }

    pub(super) fn bus_handle(&self) -> Option<usize> {
        self.svc.bus.handle(&self.streams)
    }

    pub(super) fn is_bus_stream(&self, handle: usize) -> bool {
        self.bus_handle() == Some(handle)
    }

    pub(super) fn bus_stream_refused(&mut self, handle: usize) -> (ResultCode, Option<String>) {
        self.with_ctx(|s, ctx| s.bus.refused(handle, ctx))
    }

    /// Bytes from the bus while it streams; after a break-in the rest is console input.
    pub(super) fn bus_bytes(&mut self, bytes: &[u8], now: Instant) {
        let udp_default = self.udp_server_default();
        if let Some(rest) = self.with_ctx(|s, ctx| s.bus.bytes(bytes, now, udp_default, ctx)) {
            self.feed(&bytes[rest..], now);
        }
    }

    pub(super) fn bus_poll_at(&self) -> Option<Instant> {
        self.svc.bus.poll_at()
    }

    pub(super) fn bus_tick(&mut self, now: Instant) {
        let udp_default = self.udp_server_default();
        self.with_ctx(|s, ctx| s.bus.tick(now, udp_default, ctx));
    }

    /// `exit`: back to streaming; what the stream received meanwhile goes out first.
    pub(super) fn bus_resume(&mut self) {
        let after_cr = self.serial.take_after_cr();
        let pending = self.with_ctx(|s, ctx| s.bus.resume(after_cr, ctx));
        if !pending.is_empty() {
            self.serial.raw(&pending);
        }
    }
}

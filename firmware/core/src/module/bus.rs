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

use super::*;

/// Serial STREAM mode (`bus.mode stream`, read at boot): see the `impl Module` block on it.
#[derive(Debug, Default)]
pub(super) struct Bus {
    /// `bus.mode` was `stream` at boot.
    pub(super) configured: bool,
    /// The bus streams now (not broken in to command mode).
    pub(super) streaming: bool,
    /// The connection of the stream that streams to the bus.
    pub(super) conn: Option<ConnId>,
    /// Bus bytes not yet sent.
    pub(super) tx: Vec<u8>,
    pub(super) flush_at: Option<Instant>,
    /// When the last bus byte came (boot counts as one).
    pub(super) last_rx: Instant,
    /// Bytes of `bus.stream.cmd_seq` matched so far (held back from the stream).
    pub(super) seq_match: usize,
    /// `exit` ended with a lone CR: an LF right after it is part of that line end.
    pub(super) skip_lf: bool,
}

impl Module {
    /// After 3 s without a bus byte the break-in sequence may start.
    const BREAK_IN_SILENCE: Duration = Duration::from_millis(3_000);

    pub(super) fn claim_bus(&mut self, conn: ConnId) {
        if self.bus.configured && self.bus_handle().is_none() {
            self.bus.conn = Some(conn);
        }
    }

    pub(super) fn bus_handle(&self) -> Option<usize> {
        self.bus.conn.and_then(|c| self.streams.by_conn(c))
    }

    pub(super) fn is_bus_stream(&self, handle: usize) -> bool {
        self.bus_handle() == Some(handle)
    }

    pub(super) fn bus_stream_refused(&mut self, handle: usize) -> (ResultCode, Option<String>) {
        self.log(console::level::ERROR, &format!("Stream {handle} streams to the bus"));
        (ResultCode::FAILED, None)
    }

    /// Bytes from the bus while it streams.
    pub(super) fn bus_bytes(&mut self, bytes: &[u8], now: Instant) {
        let seq = self.cfg.bus.cmd_seq.clone();
        for (i, &b) in bytes.iter().enumerate() {
            if core::mem::take(&mut self.bus.skip_lf) && b == b'\n' {
                continue;
            }
            let silent = now - self.bus.last_rx >= Self::BREAK_IN_SILENCE;
            self.bus.last_rx = now;
            let matched = self.bus.seq_match;
            if matched > 0 || (silent && !seq.is_empty()) {
                if seq.get(matched) == Some(&b) {
                    self.bus.seq_match += 1;
                    if self.bus.seq_match == seq.len() {
                        self.bus.seq_match = 0;
                        self.bus_flush();
                        self.bus.streaming = false;
                        self.log(console::level::STATUS, "[Command mode]");
                        return self.feed(&bytes[i + 1..], now);
                    }
                    continue;
                }
                self.bus.seq_match = 0;
                self.bus_push(&seq[..matched], now);
            }
            self.bus_push(&[b], now);
        }
    }

    pub(super) fn bus_push(&mut self, bytes: &[u8], now: Instant) {
        if bytes.is_empty() {
            return;
        }
        self.bus.tx.extend_from_slice(bytes);
        let flush_time = self.cfg.bus.flush_time;
        if self.bus.flush_at.is_none() || self.cfg.bus.flush_time_reset {
            self.bus.flush_at = Some(now + flush_time);
        }
        if self.bus.tx.len() >= self.cfg.bus.flush_count {
            self.bus_flush();
        }
    }

    /// Sends the waiting bus bytes on the streaming stream (dropped when there is none).
    /// When the bytes waiting for the stream must go.
    pub(super) fn bus_poll_at(&self) -> Option<Instant> {
        self.bus.flush_at
    }

    pub(super) fn bus_tick(&mut self, now: Instant) {
        if self.bus.flush_at.is_some_and(|at| at <= now) {
            self.bus_flush();
        }
    }

    pub(super) fn bus_flush(&mut self) {
        self.bus.flush_at = None;
        let data = core::mem::take(&mut self.bus.tx);
        let Some(h) = self.bus_handle() else { return };
        let Some(stream) = self.streams.get_mut(h) else { return };
        if data.is_empty() || stream.closed {
            return;
        }
        stream.tx_bytes += data.len() as u64;
        let (kind, conn, remote) = (stream.kind, stream.conn, stream.remote);
        let to = match kind {
            StreamType::Udpc => remote,
            StreamType::Udps => remote.or_else(|| self.udp_server_default()),
            _ => None,
        };
        if kind == StreamType::Udps && to.is_none() {
            return;
        }
        self.actions.push_back(Action::Net(NetRequest::Send { conn, data, to }));
    }

    /// `exit`: back to streaming; what the stream received meanwhile goes out first.
    pub(super) fn bus_resume(&mut self) {
        self.bus.streaming = true;
        self.bus.skip_lf = self.serial.take_after_cr();
        if let Some(h) = self.bus_handle()
            && let Some(stream) = self.streams.get_mut(h)
        {
            while let Some(chunk) = stream.read(usize::MAX) {
                self.serial.raw(&chunk.data);
            }
        }
    }
}

//! The stream table: the handles `stream_*` commands act on, and the buffers behind them.
//!
//! A stream is opened by a command (`tcp_client`, `udp_client`, `udp_server start`,
//! `file_open`, `file_create -o`, a buffered command response) or by the platform accepting a
//! client on the module's TCP server; it gets the lowest free handle,
//! counting from 0. The table only keeps state: the [`crate::Module`] asks the platform for
//! connections ([`crate::net`]) and feeds what comes back here.
//!
//! # Limits (chapter, "Stream Limitations")
//!
//! At most [`NETWORK_MAX`] network streams are open at once. A UDP server is one stream however
//! many clients send to it; a TCP server with no client uses none; each client connected to
//! the TCP server is one stream. The types that are not network streams ([`StreamType::File`],
//! [`StreamType::Cmd`]: local streams, [`Local`]) do not count; at most [`LOCAL_MAX`] of them
//! are open at once (assumed), so handles stay below `NETWORK_MAX + LOCAL_MAX` (16).
//!
//! # Decisions (assumed; no source gives them)
//!
//! * **Receive buffer.** Each stream buffers `bus.command.rx_bufsize` bytes. A TCP stream
//!   never loses bytes: at half the buffer the module asks the platform to stop reading the
//!   connection ([`crate::net::NetRequest::Flow`], the peer then waits on the TCP window) and
//!   lets it read again once reads bring the buffer below a quarter; bytes already on their
//!   way are kept even past the buffer size. A UDP datagram that does not fit is **dropped**
//!   whole and counted ([`Stream::dropped`]); the module logs it.
//! * **Peer close.** A stream the peer closed (or reset) stays in the table, marked closed,
//!   while it still holds unread data (poll answers `2`, `read` returns the rest); once it is
//!   empty its handle is freed, and any later use of the handle is code 7.
//! * **`stream_poll`** answers `2` once the peer closed the stream (reading returns what is
//!   left), else `1` when data is waiting, else `0`. `poll all` (or `poll` alone) answers one
//!   `<handle>:<state>` item per stream, comma-separated, in handle order (`0:1,2:0`); an
//!   empty body with no streams.
//! * **`stream_list` info**: `TCPC`/`UDPC`: `<remote ip>:<port> (<local port>)`, the
//!   parenthesised number being the module's local port; `TCPS`: `<local ip>:<server port>
//!   <client ip>:<port>`; `UDPS`: `<local ip>:<port>`, then ` <ip>:<port>` of the client
//!   replies go to, once there is one. `FILE`: `<name>-<version> (<size>, <position>)` as in
//!   the chapter's example; the second number (the chapter does not say) is the read
//!   position, or for a file being written the bytes written so far. `CMD`: `<command>
//!   (<size>, <position>)`, the command word whose response the stream holds.
//! * **Local streams** answer `stream_poll` with `1` while bytes remain to be read and `2` at
//!   the end (nothing more will come, as for a closed network stream); a FILE stream being
//!   written answers `0`. They stay open at the end until `stream_close`.

use crate::net::{ConnId, Ipv4};
use crate::time::Instant;
use crate::wlan::ip_text;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// At most this many network streams at once (chapter, "Stream Limitations").
pub const NETWORK_MAX: usize = 8;
/// At most this many local (FILE and CMD) streams at once (assumed).
pub const LOCAL_MAX: usize = 8;

/// An address and port.
pub type Endpoint = (Ipv4, u16);

/// A stream type, named as `stream_list` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamType {
    Tcpc,
    /// A client connected to the module's TCP server.
    Tcps,
    Udpc,
    Udps,
    Tlsc,
    Tlss,
    Webc,
    Webs,
    Http,
    File,
    Cmd,
}

impl StreamType {
    pub const fn name(self) -> &'static str {
        match self {
            StreamType::Tcpc => "TCPC",
            StreamType::Tcps => "TCPS",
            StreamType::Udpc => "UDPC",
            StreamType::Udps => "UDPS",
            StreamType::Tlsc => "TLSC",
            StreamType::Tlss => "TLSS",
            StreamType::Webc => "WEBC",
            StreamType::Webs => "WEBS",
            StreamType::Http => "HTTP",
            StreamType::File => "FILE",
            StreamType::Cmd => "CMD",
        }
    }

    /// Whether it counts against [`NETWORK_MAX`].
    pub const fn is_network(self) -> bool {
        !matches!(self, StreamType::File | StreamType::Cmd)
    }

    pub const fn is_udp(self) -> bool {
        matches!(self, StreamType::Udpc | StreamType::Udps)
    }
}

/// Bytes received, with their sender (UDP: one datagram per chunk; TCP: chunks are merged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub from: Endpoint,
    pub data: Vec<u8>,
}

/// What a local stream (not a network connection) reads from or writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// `file_open`: reads file `name`; `label` is `<name>-<version>`.
    FileRead { name: String, label: String, size: usize, pos: usize },
    /// `file_create -o`: `written` of the file's `size` bytes so far.
    FileWrite { name: String, label: String, size: usize, written: usize },
    /// A buffered command response (`system.cmd.buffered`).
    Cmd { command: String, data: Vec<u8>, pos: usize },
}

impl Local {
    /// (size, position) as `stream_list` shows them.
    fn progress(&self) -> (usize, usize) {
        match self {
            Local::FileRead { size, pos, .. } => (*size, *pos),
            Local::FileWrite { size, written, .. } => (*size, *written),
            Local::Cmd { data, pos, .. } => (data.len(), *pos),
        }
    }
}

/// One open stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    pub kind: StreamType,
    /// FILE and CMD streams: what they read or write (network streams: `None`).
    pub source: Option<Local>,
    /// The platform's connection id.
    pub conn: ConnId,
    pub local: Endpoint,
    /// TCPC/UDPC: the peer; TCPS: the client; UDPS: where replies go (see
    /// [`Streams::received`]).
    pub remote: Option<Endpoint>,
    rx: VecDeque<Chunk>,
    rx_len: usize,
    /// The peer closed or reset the connection.
    pub closed: bool,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Bytes dropped because the receive buffer was full (UDP only).
    pub dropped: u64,
    /// The platform was asked to stop reading this connection (TCP flow control).
    pub paused: bool,
    /// Last time data moved either way (for `tcp.server.idle_timeout`).
    pub last_activity: Instant,
}

impl Stream {
    pub fn new(kind: StreamType, conn: ConnId, local: Endpoint, remote: Option<Endpoint>) -> Self {
        Self {
            kind,
            source: None,
            conn,
            local,
            remote,
            rx: VecDeque::new(),
            rx_len: 0,
            closed: false,
            rx_bytes: 0,
            tx_bytes: 0,
            dropped: 0,
            paused: false,
            last_activity: Instant::ZERO,
        }
    }

    /// A local stream (conn 0: no connection).
    pub fn local(local: Local) -> Self {
        let kind = match local {
            Local::Cmd { .. } => StreamType::Cmd,
            _ => StreamType::File,
        };
        Self { source: Some(local), ..Self::new(kind, ConnId::NONE, ([0; 4], 0), None) }
    }

    /// Bytes waiting to be read.
    pub fn buffered(&self) -> usize {
        self.rx_len
    }

    /// The `stream_poll` state.
    /// `2` once the peer closed (whether or not data is left: the host learns both that it
    /// must read the rest and that nothing more comes; a drained closed stream is freed, so
    /// `1` first would hide the close), else `1` with data waiting, else `0`.
    pub fn poll(&self) -> u8 {
        if let Some(local) = &self.source {
            let (size, pos) = local.progress();
            return match local {
                Local::FileWrite { .. } => 0,
                _ if pos < size => 1,
                _ => 2,
            };
        }
        if self.closed {
            2
        } else if self.rx_len > 0 {
            1
        } else {
            0
        }
    }

    /// The `stream_list` info column.
    pub fn info(&self) -> String {
        let ep = |(ip, port): Endpoint| {
            let mut s = ip_text(ip);
            let _ = write!(s, ":{port}");
            s
        };
        let mut s = String::new();
        if let Some(local) = &self.source {
            let (size, pos) = local.progress();
            match local {
                Local::FileRead { label, .. } | Local::FileWrite { label, .. } => s.push_str(label),
                Local::Cmd { command, .. } => s.push_str(command),
            }
            let _ = write!(s, " ({size}, {pos})");
            return s;
        }
        match self.kind {
            StreamType::Tcps | StreamType::Tlss => {
                s.push_str(&ep(self.local));
                if let Some(r) = self.remote {
                    s.push(' ');
                    s.push_str(&ep(r));
                }
            }
            StreamType::Udps => {
                s.push_str(&ep(self.local));
                if let Some(r) = self.remote {
                    s.push(' ');
                    s.push_str(&ep(r));
                }
            }
            _ => {
                if let Some(r) = self.remote {
                    s.push_str(&ep(r));
                }
                let _ = write!(s, " ({})", self.local.1);
            }
        }
        s
    }

    /// Buffers received bytes, up to `cap` bytes in all; returns how many were dropped.
    fn push(&mut self, from: Endpoint, data: &[u8], cap: usize, now: Instant) -> usize {
        self.last_activity = now;
        let room = cap.saturating_sub(self.rx_len);
        let keep = if self.kind.is_udp() {
            if data.len() <= room { data.len() } else { 0 }
        } else {
            // TCP is flow controlled: what arrives is kept.
            data.len()
        };
        if keep > 0 {
            self.rx_bytes += keep as u64;
            self.rx_len += keep;
            match self.rx.back_mut() {
                Some(last) if !self.kind.is_udp() => last.data.extend_from_slice(&data[..keep]),
                _ => self.rx.push_back(Chunk { from, data: data[..keep].to_vec() }),
            }
        }
        let dropped = data.len() - keep;
        self.dropped += dropped as u64;
        dropped
    }

    /// Takes up to `size` bytes (UDP: from one datagram only; the rest of it stays), with
    /// their sender.
    pub fn read(&mut self, size: usize) -> Option<Chunk> {
        if self.kind.is_udp() {
            let first = self.rx.front_mut()?;
            let n = size.min(first.data.len());
            let data: Vec<u8> = first.data.drain(..n).collect();
            let from = first.from;
            if first.data.is_empty() {
                self.rx.pop_front();
            }
            self.rx_len -= n;
            return Some(Chunk { from, data });
        }
        let mut out = Vec::new();
        let mut from = None;
        while out.len() < size {
            let Some(first) = self.rx.front_mut() else { break };
            from.get_or_insert(first.from);
            let n = (size - out.len()).min(first.data.len());
            out.extend(first.data.drain(..n));
            if first.data.is_empty() {
                self.rx.pop_front();
            }
        }
        self.rx_len -= out.len();
        from.map(|from| Chunk { from, data: out })
    }
}

/// The stream table (the ids of the connections are handed out by the module's connection
/// table).
#[derive(Debug, Default)]
pub struct Streams {
    slots: Vec<Option<Stream>>,
}

impl Streams {
    pub fn new() -> Self {
        Self::default()
    }

    /// Network streams open now.
    pub fn network_count(&self) -> usize {
        self.iter().filter(|(_, s)| s.kind.is_network()).count()
    }

    /// Whether another network stream may open.
    pub fn network_full(&self) -> bool {
        self.network_count() >= NETWORK_MAX
    }

    /// Whether another local (FILE, CMD) stream may open.
    pub fn local_full(&self) -> bool {
        self.iter().filter(|(_, s)| !s.kind.is_network()).count() >= LOCAL_MAX
    }

    /// Adds a stream at the lowest free handle; `None` when [`NETWORK_MAX`] network streams
    /// (for a network stream) or [`LOCAL_MAX`] local streams (for a local one) are open.
    pub fn open(&mut self, stream: Stream) -> Option<usize> {
        let full = if stream.kind.is_network() { self.network_full() } else { self.local_full() };
        if full {
            return None;
        }
        match self.slots.iter().position(Option::is_none) {
            Some(h) => {
                self.slots[h] = Some(stream);
                Some(h)
            }
            None => {
                self.slots.push(Some(stream));
                Some(self.slots.len() - 1)
            }
        }
    }

    pub fn get(&self, handle: usize) -> Option<&Stream> {
        self.slots.get(handle).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, handle: usize) -> Option<&mut Stream> {
        self.slots.get_mut(handle).and_then(Option::as_mut)
    }

    /// The handle of the network stream on connection `conn`.
    pub fn by_conn(&self, conn: ConnId) -> Option<usize> {
        self.iter().find(|(_, s)| s.kind.is_network() && s.conn == conn).map(|(h, _)| h)
    }

    /// Frees a handle.
    pub fn remove(&mut self, handle: usize) -> Option<Stream> {
        let stream = self.slots.get_mut(handle)?.take();
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        stream
    }

    /// Open streams, in handle order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Stream)> {
        self.slots.iter().enumerate().filter_map(|(h, s)| s.as_ref().map(|s| (h, s)))
    }

    /// Handles of the open streams of `kind`.
    pub fn handles_of(&self, kind: StreamType) -> Vec<usize> {
        self.iter().filter(|(_, s)| s.kind == kind).map(|(h, _)| h).collect()
    }

    /// Buffers bytes received on `handle` (capacity `cap`); returns the count dropped. A UDP
    /// server stream also learns where replies go: the first sender when `lock_client`,
    /// else the latest.
    pub fn received(
        &mut self,
        handle: usize,
        from: Endpoint,
        data: &[u8],
        cap: usize,
        lock_client: bool,
        now: Instant,
    ) -> usize {
        let Some(s) = self.get_mut(handle) else { return 0 };
        if s.kind == StreamType::Udps && !(lock_client && s.remote.is_some()) {
            s.remote = Some(from);
        }
        s.push(from, data, cap, now)
    }

    /// The body of `stream_list`.
    pub fn list_body(&self) -> String {
        let mut body = String::from("! # Type Info");
        for (h, s) in self.iter() {
            let _ = write!(body, "\r\n# {h} {} {}", s.kind.name(), s.info());
        }
        body
    }

    /// The body of `stream_poll all`.
    pub fn poll_all(&self) -> String {
        let mut body = String::new();
        for (h, s) in self.iter() {
            if !body.is_empty() {
                body.push(',');
            }
            let _ = write!(body, "{h}:{}", s.poll());
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    fn tcpc(conn: u32) -> Stream {
        Stream::new(
            StreamType::Tcpc,
            ConnId(conn),
            ([10, 0, 0, 5], 50000),
            Some(([10, 0, 0, 1], 80)),
        )
    }

    #[test]
    fn handles_are_lowest_free_first() {
        let mut t = Streams::new();
        assert_eq!(t.open(tcpc(1)), Some(0));
        assert_eq!(t.open(tcpc(2)), Some(1));
        assert_eq!(t.open(tcpc(3)), Some(2));
        t.remove(1);
        assert_eq!(t.open(tcpc(4)), Some(1));
        assert_eq!(t.by_conn(ConnId(4)), Some(1));
    }

    #[test]
    fn network_limit_leaves_other_types_alone() {
        let mut t = Streams::new();
        for c in 0..NETWORK_MAX as u32 {
            assert!(t.open(tcpc(c + 1)).is_some());
        }
        assert_eq!(t.open(tcpc(99)), None);
        let file =
            |n: usize| Stream::local(Local::Cmd { command: format!("c{n}"), data: vec![], pos: 0 });
        for n in 0..LOCAL_MAX {
            assert_eq!(t.open(file(n)), Some(NETWORK_MAX + n));
        }
        assert_eq!(t.open(file(99)), None, "local streams have their own limit");
        assert_eq!(t.by_conn(ConnId(0)), None, "local streams have no connection");
    }

    #[test]
    fn local_streams_list_and_poll() {
        let mut t = Streams::new();
        let read = Local::FileRead { name: "a".into(), label: "a-1.0.0.0".into(), size: 3, pos: 0 };
        let h = t.open(Stream::local(read)).expect("opens");
        let w =
            Local::FileWrite { name: "b".into(), label: "b-1.0.1.3".into(), size: 9, written: 4 };
        t.open(Stream::local(w));
        t.open(Stream::local(Local::Cmd { command: "ls".into(), data: b"xy".to_vec(), pos: 2 }));
        assert_eq!(
            t.list_body(),
            "! # Type Info\r\n# 0 FILE a-1.0.0.0 (3, 0)\r\n# 1 FILE b-1.0.1.3 (9, 4)\r\n# 2 CMD ls (2, 2)"
        );
        assert_eq!(t.poll_all(), "0:1,1:0,2:2");
        if let Some(Stream { source: Some(Local::FileRead { pos, .. }), .. }) = t.get_mut(h) {
            *pos = 3;
        }
        assert_eq!(t.get(h).map(Stream::poll), Some(2));
    }

    #[test]
    fn tcp_keeps_every_byte_and_merges() {
        let mut s = tcpc(1);
        let from = ([10, 0, 0, 1], 80);
        assert_eq!(s.push(from, b"abc", 5, Instant::ZERO), 0);
        // Past the buffer size: flow control has stopped the platform, in-flight bytes stay.
        assert_eq!(s.push(from, b"defg", 5, Instant::ZERO), 0);
        assert_eq!(s.buffered(), 7);
        assert_eq!(s.read(4).map(|c| c.data), Some(b"abcd".to_vec()));
        assert_eq!(s.read(4).map(|c| c.data), Some(b"efg".to_vec()));
        assert_eq!(s.read(4), None);
        assert_eq!((s.rx_bytes, s.dropped), (7, 0));
    }

    #[test]
    fn udp_datagrams_stay_whole() {
        let mut s = Stream::new(StreamType::Udps, ConnId(1), ([10, 0, 0, 5], 3000), None);
        let a = ([10, 0, 0, 7], 1000);
        let b = ([10, 0, 0, 8], 2000);
        assert_eq!(s.push(a, b"hello", 8, Instant::ZERO), 0);
        assert_eq!(s.push(b, b"world", 8, Instant::ZERO), 5, "does not fit whole");
        assert_eq!(s.push(b, b"ok", 8, Instant::ZERO), 0);
        assert_eq!(s.read(3), Some(Chunk { from: a, data: b"hel".to_vec() }));
        assert_eq!(s.read(9), Some(Chunk { from: a, data: b"lo".to_vec() }));
        assert_eq!(s.read(9), Some(Chunk { from: b, data: vec![b'o', b'k'] }));
    }
}

//! TLS in captured TCP connections: the record layer and the two handshake messages a
//! conformance check reads in clear, ClientHello and ServerHello.
//!
//! * [`TlsReader`]: one direction of one connection, sans-IO. Bytes go in as they arrive (any
//!   chunking: a record may span segments, a handshake message may span records); records and
//!   handshake messages come out. After ChangeCipherSpec the handshake is encrypted and only
//!   record headers are read. Bytes that are not TLS stop the reader with a
//!   [`TlsError`]; nothing panics, and buffers are bounded.
//! * [`connections`]: a capture's TCP connections reassembled per direction (in sequence
//!   order, retransmissions and overlaps dropped, out-of-order segments held until the gap
//!   fills), each direction that starts like TLS fed to a reader; every message is tied to
//!   the packet that completed it.
//!
//! Only what the lab needs: no decryption here (see [`super::keylog`]), no TLS 1.3
//! encrypted handshake, no SSLv2 hellos.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;

use super::CapturedPacket;
use super::decode::{self, Body, TcpFlags};

/// Record content types (RFC 5246 §6.2.1).
pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;
/// Handshake message types.
pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
/// Extension numbers read here.
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
/// The renegotiation "signalling cipher suite value" (RFC 5746), which mbedTLS and OpenSSL add
/// to the suites they offer; not a suite.
pub const SCSV_RENEGOTIATION: u16 = 0x00FF;

/// The longest record fragment (2^14 plus the expansion a cipher may add, RFC 5246 §6.2.3).
pub const RECORD_MAX: usize = (1 << 14) + 2048;
/// The longest handshake message reassembled; longer ones are skipped, not buffered.
const HANDSHAKE_MAX: usize = 1 << 18;
/// Bytes held out of order per direction at most (more, and the rest of the stream is lost).
const OUT_OF_ORDER_MAX: usize = 1 << 20;

/// The chapter's 12 cipher suites (its "TLS support" list, in its order), by IANA number and
/// IANA name (the chapter writes them with mbedTLS's `MBEDTLS_` prefix).
pub const CHAPTER_SUITES: [(u16, &str); 12] = [
    (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
];

/// A few more names, so that what a peer offers besides the chapter's suites reads well.
const OTHER_SUITES: [(u16, &str); 8] = [
    (SCSV_RENEGOTIATION, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// The IANA name of a suite this module knows, if any.
pub fn suite_name(id: u16) -> Option<&'static str> {
    CHAPTER_SUITES.iter().chain(OTHER_SUITES.iter()).find(|(n, _)| *n == id).map(|(_, s)| *s)
}

/// A suite as written in a spec table: its IANA name (`TLS_…`, the chapter's `MBEDTLS_TLS_…`
/// too, any case) or its number (`0xC02F`).
pub fn parse_suite(text: &str) -> Result<u16, String> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u16::from_str_radix(hex, 16).map_err(|_| format!("{text:?} is not a suite number"));
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("MBEDTLS_").unwrap_or(&upper);
    CHAPTER_SUITES
        .iter()
        .chain(OTHER_SUITES.iter())
        .find(|(_, n)| *n == name)
        .map(|(id, _)| *id)
        .ok_or_else(|| {
            format!("cipher suite {text:?} unknown (an IANA name of the chapter's 12, or 0xC02F)")
        })
}

/// `0xC02F TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, or `0x1234` for a suite not known here.
pub fn suite_text(id: u16) -> String {
    match suite_name(id) {
        Some(name) => format!("0x{id:04X} {name}"),
        None => format!("0x{id:04X}"),
    }
}

/// A protocol version on the wire (`0x0303` is TLS 1.2); in spec tables `"1.2"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Version(pub u16);

impl TryFrom<String> for Version {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl Version {
    pub const TLS10: Version = Version(0x0301);
    pub const TLS11: Version = Version(0x0302);
    pub const TLS12: Version = Version(0x0303);
    pub const TLS13: Version = Version(0x0304);

    /// GREASE values (RFC 8701) are placeholders, not versions.
    fn is_grease(self) -> bool {
        self.0 & 0x0f0f == 0x0a0a && self.0 >> 8 == self.0 & 0xff
    }
}

impl fmt::Display for Version {
    /// `1.2`, `SSL 3.0`, or `0x7f1c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x0300 => write!(f, "SSL 3.0"),
            0x0301..=0x0304 => write!(f, "1.{}", self.0 - 0x0301),
            v => write!(f, "0x{v:04x}"),
        }
    }
}

impl std::str::FromStr for Version {
    type Err = String;

    /// `1.0` to `1.3` (also with a `TLS` prefix: `TLS1.2`, `TLS 1.2`).
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_prefix("tls").unwrap_or(&t).trim_start_matches([' ', 'v']);
        match t {
            "1.0" => Ok(Version::TLS10),
            "1.1" => Ok(Version::TLS11),
            "1.2" => Ok(Version::TLS12),
            "1.3" => Ok(Version::TLS13),
            _ => Err(format!("TLS version {s:?} unknown (1.0, 1.1, 1.2 or 1.3)")),
        }
    }
}

/// What a ClientHello offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: Version,
    /// The client's random (signed over by a server's key exchange).
    pub random: [u8; 32],
    /// Cipher suites in the order offered (signalling values included).
    pub suites: Vec<u16>,
    /// Extension numbers in the order sent.
    pub extensions: Vec<u16>,
    /// The `supported_versions` extension's list, if sent.
    pub supported_versions: Option<Vec<Version>>,
    /// The first `host_name` of the `server_name` extension (SNI), if sent.
    pub sni: Option<String>,
}

impl ClientHello {
    /// The highest version offered: the highest of `supported_versions` (GREASE left out)
    /// when sent, else the legacy version field.
    pub fn max_version(&self) -> Version {
        self.supported_versions
            .as_ref()
            .and_then(|v| v.iter().copied().filter(|v| !v.is_grease()).max())
            .unwrap_or(self.legacy_version)
    }
}

/// What a ServerHello chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: Version,
    pub suite: u16,
    pub extensions: Vec<u16>,
    /// The `supported_versions` extension's one version (TLS 1.3), if sent.
    pub selected_version: Option<Version>,
}

impl ServerHello {
    /// The version negotiated: `supported_versions` when sent, else the version field.
    pub fn version(&self) -> Version {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// A handshake message read in clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    ClientHello(ClientHello),
    ServerHello(ServerHello),
    /// Any other type, not looked into (`len` is its body length).
    Other {
        msg_type: u8,
        len: usize,
    },
}

/// What a reader found, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMessage {
    Handshake(Handshake),
    /// A plaintext alert (level 1 warning, 2 fatal; RFC 5246 §7.2 descriptions).
    Alert {
        level: u8,
        description: u8,
    },
    ChangeCipherSpec,
    /// A record of encrypted bytes (application data, or an encrypted handshake or alert).
    Encrypted {
        content_type: u8,
        len: usize,
    },
}

/// Why a direction stopped being read as TLS.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("content type {0} is not TLS")]
    ContentType(u8),
    #[error("record version 0x{0:04x} is not TLS")]
    RecordVersion(u16),
    #[error("record length {0} exceeds {RECORD_MAX}")]
    RecordLength(usize),
    #[error("{what} malformed: {detail}")]
    Malformed { what: &'static str, detail: String },
}

fn malformed(what: &'static str, detail: impl Into<String>) -> TlsError {
    TlsError::Malformed { what, detail: detail.into() }
}

/// One direction of a TLS connection, read as bytes arrive. Sans-IO, bounded, never panics.
#[derive(Clone, Debug, Default)]
pub struct TlsReader {
    /// Bytes of a record not yet complete.
    pending: Vec<u8>,
    /// Handshake bytes of a message not yet complete.
    handshake: Vec<u8>,
    /// Body bytes still to skip of a handshake message longer than [`HANDSHAKE_MAX`].
    skip: usize,
    /// After ChangeCipherSpec: records are encrypted.
    encrypted: bool,
    failed: Option<TlsError>,
}

impl TlsReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Why reading stopped, if it did (the bytes after are ignored).
    pub fn error(&self) -> Option<&TlsError> {
        self.failed.as_ref()
    }

    /// Reads `bytes` (the next bytes of the stream) and returns the messages they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<TlsMessage> {
        let mut out = Vec::new();
        if self.failed.is_some() {
            return out;
        }
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        while self.pending.len() - at >= 5 {
            let h = &self.pending[at..at + 5];
            let (ct, version, len) = (
                h[0],
                u16::from_be_bytes([h[1], h[2]]),
                usize::from(u16::from_be_bytes([h[3], h[4]])),
            );
            let fail = if !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&ct) {
                Some(TlsError::ContentType(ct))
            } else if version >> 8 != 3 {
                Some(TlsError::RecordVersion(version))
            } else if len > RECORD_MAX {
                Some(TlsError::RecordLength(len))
            } else {
                None
            };
            if let Some(e) = fail {
                self.stop(e);
                return out;
            }
            if self.pending.len() - at - 5 < len {
                break;
            }
            let body = self.pending[at + 5..at + 5 + len].to_vec();
            at += 5 + len;
            if let Err(e) = self.record(ct, &body, &mut out) {
                self.stop(e);
                return out;
            }
        }
        self.pending.drain(..at);
        out
    }

    fn stop(&mut self, e: TlsError) {
        self.failed = Some(e);
        self.pending = Vec::new();
        self.handshake = Vec::new();
    }

    fn record(&mut self, ct: u8, body: &[u8], out: &mut Vec<TlsMessage>) -> Result<(), TlsError> {
        if self.encrypted && ct != CHANGE_CIPHER_SPEC {
            out.push(TlsMessage::Encrypted { content_type: ct, len: body.len() });
            return Ok(());
        }
        match ct {
            CHANGE_CIPHER_SPEC => {
                self.encrypted = true;
                out.push(TlsMessage::ChangeCipherSpec);
            }
            ALERT => {
                if body.len() != 2 {
                    return Err(malformed("alert", format!("{} bytes, not 2", body.len())));
                }
                out.push(TlsMessage::Alert { level: body[0], description: body[1] });
            }
            HANDSHAKE => self.handshake_bytes(body, out)?,
            _ => out.push(TlsMessage::Encrypted { content_type: ct, len: body.len() }),
        }
        Ok(())
    }

    fn handshake_bytes(
        &mut self,
        mut body: &[u8],
        out: &mut Vec<TlsMessage>,
    ) -> Result<(), TlsError> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(body.len());
                self.skip -= n;
                body = &body[n..];
            }
            if body.is_empty() && (self.skip > 0 || self.handshake.len() < 4) {
                return Ok(());
            }
            if self.handshake.len() < 4 {
                let n = (4 - self.handshake.len()).min(body.len());
                self.handshake.extend_from_slice(&body[..n]);
                body = &body[n..];
                if self.handshake.len() < 4 {
                    return Ok(());
                }
            }
            let msg_type = self.handshake[0];
            let len = (usize::from(self.handshake[1]) << 16)
                | (usize::from(self.handshake[2]) << 8)
                | usize::from(self.handshake[3]);
            if len > HANDSHAKE_MAX {
                // Too long to keep: report it and skip its body.
                out.push(TlsMessage::Handshake(Handshake::Other { msg_type, len }));
                self.skip = len;
                self.handshake.clear();
                continue;
            }
            let n = (4 + len - self.handshake.len()).min(body.len());
            self.handshake.extend_from_slice(&body[..n]);
            body = &body[n..];
            if self.handshake.len() < 4 + len {
                return Ok(());
            }
            let msg = std::mem::take(&mut self.handshake);
            out.push(TlsMessage::Handshake(parse_handshake(msg_type, &msg[4..])?));
            if body.is_empty() {
                return Ok(());
            }
        }
    }
}

/// Parses one handshake message body of type `msg_type`.
pub fn parse_handshake(msg_type: u8, body: &[u8]) -> Result<Handshake, TlsError> {
    Ok(match msg_type {
        CLIENT_HELLO => Handshake::ClientHello(client_hello(body)?),
        SERVER_HELLO => Handshake::ServerHello(server_hello(body)?),
        t => Handshake::Other { msg_type: t, len: body.len() },
    })
}

/// A cursor over bytes that reports short reads as [`TlsError::Malformed`].
struct Reader<'a> {
    what: &'static str,
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], TlsError> {
        if self.b.len() < n {
            return Err(malformed(
                self.what,
                format!("{field} needs {n} bytes, {} left", self.b.len()),
            ));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self, field: &str) -> Result<u8, TlsError> {
        Ok(self.take(1, field)?[0])
    }
    fn u16(&mut self, field: &str) -> Result<u16, TlsError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a `width`-byte length prefix.
    fn vec(&mut self, width: usize, field: &str) -> Result<&'a [u8], TlsError> {
        let len = match width {
            1 => usize::from(self.u8(field)?),
            _ => usize::from(self.u16(field)?),
        };
        self.take(len, field)
    }
    fn u16_list(b: &'a [u8], what: &'static str, field: &str) -> Result<Vec<u16>, TlsError> {
        if !b.len().is_multiple_of(2) {
            return Err(malformed(what, format!("{field} has an odd length {}", b.len())));
        }
        Ok(b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
    }
}

/// Extensions as (number, data), in order; none when the message ends before them.
fn extensions<'a>(r: &mut Reader<'a>) -> Result<Vec<(u16, &'a [u8])>, TlsError> {
    if r.b.is_empty() {
        return Ok(Vec::new());
    }
    let mut list = Reader { what: r.what, b: r.vec(2, "extensions")? };
    let mut out = Vec::new();
    while !list.b.is_empty() {
        let ty = list.u16("extension type")?;
        let data = list.vec(2, "extension data")?;
        out.push((ty, data));
    }
    Ok(out)
}

fn client_hello(body: &[u8]) -> Result<ClientHello, TlsError> {
    let what = "ClientHello";
    let mut r = Reader { what, b: body };
    let legacy_version = Version(r.u16("version")?);
    let mut random = [0u8; 32];
    random.copy_from_slice(r.take(32, "random")?);
    r.vec(1, "session id")?;
    let suites = Reader::u16_list(r.vec(2, "cipher suites")?, what, "cipher suites")?;
    r.vec(1, "compression methods")?;
    let exts = extensions(&mut r)?;
    let mut hello = ClientHello {
        legacy_version,
        random,
        suites,
        extensions: exts.iter().map(|(t, _)| *t).collect(),
        supported_versions: None,
        sni: None,
    };
    for (ty, data) in exts {
        let mut e = Reader { what, b: data };
        match ty {
            EXT_SUPPORTED_VERSIONS => {
                let list = e.vec(1, "supported_versions")?;
                let v = Reader::u16_list(list, what, "supported_versions")?;
                hello.supported_versions = Some(v.into_iter().map(Version).collect());
            }
            EXT_SERVER_NAME if !data.is_empty() => {
                let mut names = Reader { what, b: e.vec(2, "server_name list")? };
                while !names.b.is_empty() {
                    let kind = names.u8("server_name type")?;
                    let name = names.vec(2, "server_name")?;
                    if kind == 0 && hello.sni.is_none() {
                        hello.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(hello)
}

fn server_hello(body: &[u8]) -> Result<ServerHello, TlsError> {
    let what = "ServerHello";
    let mut r = Reader { what, b: body };
    let legacy_version = Version(r.u16("version")?);
    r.take(32, "random")?;
    r.vec(1, "session id")?;
    let suite = r.u16("cipher suite")?;
    r.u8("compression method")?;
    let exts = extensions(&mut r)?;
    let mut selected_version = None;
    for (ty, data) in &exts {
        if *ty == EXT_SUPPORTED_VERSIONS {
            let mut e = Reader { what, b: data };
            selected_version = Some(Version(e.u16("supported_versions")?));
        }
    }
    Ok(ServerHello {
        legacy_version,
        suite,
        extensions: exts.iter().map(|(t, _)| *t).collect(),
        selected_version,
    })
}

impl fmt::Display for Handshake {
    /// One line: `ClientHello version 1.2 max 1.2 sni "x" suites [0xC02B, …]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handshake::ClientHello(h) => {
                write!(f, "ClientHello version {} max {}", h.legacy_version, h.max_version())?;
                if let Some(sni) = &h.sni {
                    write!(f, " sni {sni:?}")?;
                }
                let suites: Vec<String> = h.suites.iter().map(|s| format!("0x{s:04X}")).collect();
                write!(f, " suites [{}]", suites.join(", "))
            }
            Handshake::ServerHello(h) => {
                write!(f, "ServerHello version {} suite {}", h.version(), suite_text(h.suite))
            }
            Handshake::Other { msg_type, len } => {
                write!(f, "handshake type {msg_type} ({len} bytes)")
            }
        }
    }
}

/// One end of a TCP connection.
pub type Endpoint = (Ipv4Addr, u16);

/// A handshake message seen in a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Index of the packet whose payload completed it.
    pub packet: usize,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub message: TlsMessage,
}

/// One direction of a TCP connection being reassembled.
#[derive(Default)]
struct Direction {
    /// The next sequence number expected (set by the SYN or the first payload).
    next: Option<u32>,
    /// Segments after a gap, by sequence number.
    held: BTreeMap<u32, Vec<u8>>,
    held_bytes: usize,
    /// `None` until the first payload says whether this is TLS; `Some(None)`: not TLS.
    reader: Option<Option<TlsReader>>,
}

impl Direction {
    /// Takes a segment's payload at `seq`; returns the bytes now in order.
    fn segment(&mut self, seq: u32, payload: &[u8]) -> Vec<u8> {
        let next = *self.next.get_or_insert(seq);
        let mut out = Vec::new();
        // Offset of `seq` from `next`, modulo 2^32: ahead when below 2^31.
        let ahead = seq.wrapping_sub(next);
        if ahead == 0 || ahead > 1 << 31 {
            let behind = next.wrapping_sub(seq) as usize;
            if behind < payload.len() {
                out.extend_from_slice(&payload[behind..]);
            }
        } else if self.held_bytes + payload.len() <= OUT_OF_ORDER_MAX {
            self.held_bytes += payload.len();
            self.held.entry(seq).or_insert_with(|| payload.to_vec());
            return out;
        }
        let mut next = next.wrapping_add(out.len() as u32);
        // Held segments the new bytes reach.
        while let Some((&s, _)) = self.held.iter().find(|(s, _)| {
            let d = s.wrapping_sub(next);
            d == 0 || d > 1 << 31
        }) {
            let data = self.held.remove(&s).unwrap_or_default();
            self.held_bytes -= data.len();
            let behind = next.wrapping_sub(s) as usize;
            if behind < data.len() {
                out.extend_from_slice(&data[behind..]);
                next = next.wrapping_add((data.len() - behind) as u32);
            }
        }
        self.next = Some(next);
        out
    }
}

/// Whether a stream's first bytes look like a TLS record (a content type and version 3.x).
fn looks_like_tls(first: &[u8]) -> bool {
    match first {
        [ct, 3, ..] => (CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(ct),
        [ct] => (CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(ct),
        _ => false,
    }
}

/// Every TLS message in a capture's TCP connections, in packet order, each with the packet
/// that completed it. Directions whose first payload byte is not a TLS content type are
/// not read. Never panics.
pub fn connections(packets: &[CapturedPacket]) -> Vec<Seen> {
    let mut dirs: HashMap<(Endpoint, Endpoint), Direction> = HashMap::new();
    let mut seen = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let frame = p.decode();
        let (Body::Tcp(tcp), Some(ip), Some((sport, dport))) = (&frame.body, frame.ip, frame.ports)
        else {
            continue;
        };
        let key = ((ip.src, sport), (ip.dst, dport));
        if tcp.flags.has(TcpFlags::SYN) {
            // A new connection on these ports starts over.
            dirs.insert(
                key,
                Direction { next: Some(tcp.seq.wrapping_add(1)), ..Direction::default() },
            );
            continue;
        }
        let payload = decode::tcp_payload(&p.data);
        if payload.is_empty() {
            continue;
        }
        let dir = dirs.entry(key).or_default();
        let bytes = dir.segment(tcp.seq, payload);
        if bytes.is_empty() {
            continue;
        }
        let reader = dir.reader.get_or_insert_with(|| looks_like_tls(&bytes).then(TlsReader::new));
        if let Some(reader) = reader {
            for message in reader.feed(&bytes) {
                seen.push(Seen { packet: i, src: key.0, dst: key.1, message });
            }
        }
    }
    seen
}

#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests;

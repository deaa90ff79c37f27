//! Decodes captured Ethernet frames into the few protocols the lab speaks.
//!
//! Ethernet II → ARP; IPv4 → UDP → DHCP (ports 67/68) or DNS (port 53); ICMP echo; TCP (ports
//! and flags). Anything else becomes [`Body::Other`] with a short description; bytes that are
//! too short or inconsistent become [`Body::Undecodable`] with the reason. Decoding never
//! panics, reads nothing but its input, and is deterministic.
//!
//! Checksums are not verified (captures of outgoing packets carry offloaded, unfinished
//! checksums). IPv4 options are skipped; fragments other than a whole datagram are `Other`.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for Mac {
    type Err = String;

    /// `02:00:00:aa:bb:cc` (or with `-`), case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a MAC address (like 02:00:00:aa:bb:cc)");
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

/// A decoded frame: the layers that could be read, and what they carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The Ethernet header (absent only when the frame is shorter than one).
    pub eth: Option<Ethernet>,
    /// The IPv4 header, for IPv4 packets.
    pub ip: Option<Ipv4>,
    /// Source and destination port, for UDP and TCP.
    pub ports: Option<(u16, u16)>,
    /// The innermost layer decoded.
    pub body: Body<'a>,
}

/// An Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ethernet {
    pub dst: Mac,
    pub src: Mac,
    /// The EtherType (after one 802.1Q tag, if any).
    pub ethertype: u16,
}

/// The fields of an IPv4 header that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
}

/// What a frame carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    Arp(Arp),
    Dhcp(Dhcp<'a>),
    Dns(Dns),
    Icmp(Icmp),
    Tcp(Tcp),
    /// UDP that is neither DHCP nor DNS.
    Udp {
        payload: &'a [u8],
    },
    /// A protocol this decoder does not look into (`IPv6`, `LLDP`, `IP protocol 47`, ...).
    Other(String),
    /// Bytes too short or inconsistent for the layer they claim to be.
    Undecodable {
        reason: DecodeError,
    },
}

/// Why bytes are not the packet they claim to be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the layer's fields need.
    #[error("{layer}: truncated ({len} bytes, needs {needs})")]
    Truncated { layer: &'static str, len: usize, needs: usize },
    /// A length field so large that offsets overflow.
    #[error("{layer}: length overflow")]
    LengthOverflow { layer: &'static str },
    /// Fields that contradict each other or the layer (a header length below its minimum).
    #[error("{layer}: {detail}")]
    Malformed { layer: &'static str, detail: String },
}

impl DecodeError {
    fn malformed(layer: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed { layer, detail: detail.into() }
    }
}

/// An ARP packet (Ethernet/IPv4 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: ArpOp,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

/// The ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
    Other(u16),
}

/// A DHCP (or plain BOOTP) message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dhcp<'a> {
    /// BOOTP op: 1 request (client to server), 2 reply.
    pub op: u8,
    pub xid: u32,
    pub ciaddr: Ipv4Addr,
    /// "Your" address: the address offered or acknowledged.
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// The client hardware address (`chaddr`, for Ethernet).
    pub client_mac: Mac,
    /// Option 53; `None` for plain BOOTP.
    pub message_type: Option<DhcpType>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 12.
    pub hostname: Option<Cow<'a, str>>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
}

/// The DHCP message type (option 53).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhcpType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
    Other(u8),
}

impl DhcpType {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => DhcpType::Discover,
            2 => DhcpType::Offer,
            3 => DhcpType::Request,
            4 => DhcpType::Decline,
            5 => DhcpType::Ack,
            6 => DhcpType::Nak,
            7 => DhcpType::Release,
            8 => DhcpType::Inform,
            v => DhcpType::Other(v),
        }
    }
}

impl fmt::Display for DhcpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DhcpType::Discover => "DISCOVER",
            DhcpType::Offer => "OFFER",
            DhcpType::Request => "REQUEST",
            DhcpType::Decline => "DECLINE",
            DhcpType::Ack => "ACK",
            DhcpType::Nak => "NAK",
            DhcpType::Release => "RELEASE",
            DhcpType::Inform => "INFORM",
            DhcpType::Other(v) => return write!(f, "type {v}"),
        };
        f.write_str(s)
    }
}

/// A DNS message: header, first question, A answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dns {
    pub id: u16,
    /// QR: a response (else a query).
    pub response: bool,
    pub opcode: u8,
    pub rcode: Rcode,
    /// The first question, if there is one.
    pub question: Option<Question>,
    /// Number of answer records.
    pub answer_count: u16,
    /// The addresses of the A records among the answers (those that could be read).
    pub a_answers: Vec<Ipv4Addr>,
}

/// A DNS question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Dotted, without the final dot (`lab-host.lab`); the root is `.`.
    pub name: String,
    pub qtype: u16,
}

/// A DNS response code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rcode(pub u8);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const FORMERR: Rcode = Rcode(1);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const NOTIMP: Rcode = Rcode(4);
    pub const REFUSED: Rcode = Rcode(5);

    /// The lower-case name (`nxdomain`), `rcode<N>` for others.
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self.0 {
            0 => "noerror",
            1 => "formerr",
            2 => "servfail",
            3 => "nxdomain",
            4 => "notimp",
            5 => "refused",
            n => return Cow::Owned(format!("rcode{n}")),
        })
    }
}

/// The name of a DNS record type (`A`, `AAAA`, ...), `TYPE<N>` for others.
pub fn qtype_name(t: u16) -> Cow<'static, str> {
    Cow::Borrowed(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        65 => "HTTPS",
        255 => "ANY",
        n => return Cow::Owned(format!("TYPE{n}")),
    })
}

/// An ICMP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmp {
    EchoRequest {
        id: u16,
        seq: u16,
    },
    EchoReply {
        id: u16,
        seq: u16,
    },
    /// Type 3, with its code (3: port unreachable).
    Unreachable {
        code: u8,
    },
    Other {
        icmp_type: u8,
        code: u8,
    },
}

/// A TCP segment's header fields that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp {
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Bytes of payload.
    pub payload_len: usize,
}

/// TCP flags (the low 8 bits of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;

    pub fn has(self, flag: u8) -> bool {
        self.0 & flag == flag
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::SYN, "SYN"),
            (Self::FIN, "FIN"),
            (Self::RST, "RST"),
            (Self::PSH, "PSH"),
            (Self::ACK, "ACK"),
            (Self::URG, "URG"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.has(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

// --- Decoding -------------------------------------------------------------------------------

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const DHCP_MAGIC: [u8; 4] = [99, 130, 83, 99];

/// Big-endian reads that fail with a reason instead of panicking.
#[derive(Clone, Copy)]
struct Bytes<'a> {
    what: &'static str,
    b: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn new(what: &'static str, b: &'a [u8]) -> Self {
        Bytes { what, b }
    }

    fn need(&self, end: usize) -> Result<(), DecodeError> {
        if self.b.len() < end {
            Err(DecodeError::Truncated { layer: self.what, len: self.b.len(), needs: end })
        } else {
            Ok(())
        }
    }

    fn slice(&self, at: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = at.checked_add(len).ok_or(DecodeError::LengthOverflow { layer: self.what })?;
        self.need(end)?;
        Ok(&self.b[at..end])
    }

    fn array<const N: usize>(&self, at: usize) -> Result<[u8; N], DecodeError> {
        let s = self.slice(at, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u8(&self, at: usize) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(at)?[0])
    }

    fn u16(&self, at: usize) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(at)?))
    }

    fn u32(&self, at: usize) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(at)?))
    }

    fn ip(&self, at: usize) -> Result<Ipv4Addr, DecodeError> {
        Ok(Ipv4Addr::from(self.array::<4>(at)?))
    }

    fn mac(&self, at: usize) -> Result<Mac, DecodeError> {
        Ok(Mac(self.array(at)?))
    }

    fn rest(&self, at: usize) -> Result<&'a [u8], DecodeError> {
        self.need(at)?;
        Ok(&self.b[at..])
    }
}

/// The payload of a TCP segment in an Ethernet frame (empty when the frame is not an unfragmented
/// IPv4 TCP segment, or is cut short): the bytes a stream reassembler needs, which [`Tcp`]
/// does not keep. Never panics.
pub fn tcp_payload(bytes: &[u8]) -> &[u8] {
    fn inner(bytes: &[u8]) -> Result<&[u8], DecodeError> {
        let b = Bytes::new("Ethernet", bytes);
        let (ethertype, at) = match b.u16(12)? {
            ETHERTYPE_VLAN => (b.u16(16)?, 18),
            t => (t, 14),
        };
        if ethertype != ETHERTYPE_IPV4 {
            return Ok(&[]);
        }
        let ip = Bytes::new("IPv4", b.rest(at)?);
        let ihl = usize::from(ip.u8(0)? & 0x0f) * 4;
        let total = usize::from(ip.u16(2)?);
        if ip.u8(9)? != PROTO_TCP || ip.u16(6)? & 0x3fff != 0 || ihl < 20 || total < ihl {
            return Ok(&[]);
        }
        let tcp = Bytes::new("TCP", ip.slice(ihl, total - ihl)?);
        let off = usize::from(tcp.u8(12)? >> 4) * 4;
        if off < 20 {
            return Ok(&[]);
        }
        tcp.rest(off)
    }
    inner(bytes).unwrap_or(&[])
}

/// Decodes an Ethernet II frame. Never panics.
pub fn decode(bytes: &[u8]) -> Frame<'_> {
    let mut frame = Frame { eth: None, ip: None, ports: None, body: Body::Other(String::new()) };
    frame.body = match decode_into(bytes, &mut frame) {
        Ok(body) => body,
        Err(reason) => Body::Undecodable { reason },
    };
    frame
}

fn decode_into<'a>(bytes: &'a [u8], frame: &mut Frame<'a>) -> Result<Body<'a>, DecodeError> {
    let b = Bytes::new("Ethernet", bytes);
    let dst = b.mac(0)?;
    let src = b.mac(6)?;
    let mut ethertype = b.u16(12)?;
    let mut at = 14;
    if ethertype == ETHERTYPE_VLAN {
        ethertype = b.u16(16)?;
        at = 18;
    }
    frame.eth = Some(Ethernet { dst, src, ethertype });
    let payload = b.rest(at)?;
    match ethertype {
        ETHERTYPE_ARP => arp(payload).map(Body::Arp),
        ETHERTYPE_IPV4 => ipv4(payload, frame),
        ETHERTYPE_IPV6 => Ok(Body::Other("IPv6".into())),
        t if t <= 1500 => Ok(Body::Other(format!("802.3 frame, length {t}"))),
        0x88cc => Ok(Body::Other("LLDP".into())),
        t => Ok(Body::Other(format!("EtherType 0x{t:04x}"))),
    }
}

fn arp(payload: &[u8]) -> Result<Arp, DecodeError> {
    let b = Bytes::new("ARP", payload);
    let (htype, ptype, hlen, plen) = (b.u16(0)?, b.u16(2)?, b.u8(4)?, b.u8(5)?);
    if (htype, ptype, hlen, plen) != (1, ETHERTYPE_IPV4, 6, 4) {
        return Err(DecodeError::malformed(
            "ARP",
            format!(
                "not Ethernet/IPv4 (htype {htype}, ptype 0x{ptype:04x}, hlen {hlen}, plen {plen})"
            ),
        ));
    }
    let op = match b.u16(6)? {
        1 => ArpOp::Request,
        2 => ArpOp::Reply,
        n => ArpOp::Other(n),
    };
    Ok(Arp {
        op,
        sender_mac: b.mac(8)?,
        sender_ip: b.ip(14)?,
        target_mac: b.mac(18)?,
        target_ip: b.ip(24)?,
    })
}

fn ipv4<'a>(payload: &'a [u8], frame: &mut Frame<'a>) -> Result<Body<'a>, DecodeError> {
    let b = Bytes::new("IPv4", payload);
    let vihl = b.u8(0)?;
    if vihl >> 4 != 4 {
        let version = vihl >> 4;
        return Err(DecodeError::malformed(
            "IPv4",
            format!("version {version} in an IPv4 EtherType"),
        ));
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return Err(DecodeError::malformed("IPv4", format!("header length {ihl} < 20")));
    }
    let total = usize::from(b.u16(2)?);
    if total < ihl {
        return Err(DecodeError::malformed(
            "IPv4",
            format!("total length {total} < header length {ihl}"),
        ));
    }
    b.need(ihl)?;
    let flags_frag = b.u16(6)?;
    let ttl = b.u8(8)?;
    let protocol = b.u8(9)?;
    let src = b.ip(12)?;
    let dst = b.ip(16)?;
    frame.ip = Some(Ipv4 { src, dst, protocol, ttl });
    // Ethernet pads short frames: the datagram ends at `total`.
    let data = Bytes::new("IPv4", b.slice(0, total)?).rest(ihl)?;
    let more_fragments = flags_frag & 0x2000 != 0;
    let offset = flags_frag & 0x1fff;
    if more_fragments || offset != 0 {
        return Ok(Body::Other(format!(
            "IPv4 fragment (protocol {protocol}, offset {})",
            usize::from(offset) * 8
        )));
    }
    match protocol {
        PROTO_ICMP => icmp(data).map(Body::Icmp),
        PROTO_UDP => udp(data, frame),
        PROTO_TCP => tcp(data, frame).map(Body::Tcp),
        2 => Ok(Body::Other("IGMP".into())),
        p => Ok(Body::Other(format!("IP protocol {p}"))),
    }
}

fn icmp(data: &[u8]) -> Result<Icmp, DecodeError> {
    let b = Bytes::new("ICMP", data);
    let (icmp_type, code) = (b.u8(0)?, b.u8(1)?);
    Ok(match icmp_type {
        8 | 0 => {
            let (id, seq) = (b.u16(4)?, b.u16(6)?);
            if icmp_type == 8 { Icmp::EchoRequest { id, seq } } else { Icmp::EchoReply { id, seq } }
        }
        3 => Icmp::Unreachable { code },
        _ => Icmp::Other { icmp_type, code },
    })
}

fn udp<'a>(data: &'a [u8], frame: &mut Frame<'a>) -> Result<Body<'a>, DecodeError> {
    let b = Bytes::new("UDP", data);
    let (sport, dport, len) = (b.u16(0)?, b.u16(2)?, usize::from(b.u16(4)?));
    if len < 8 {
        return Err(DecodeError::malformed("UDP", format!("length {len} < 8")));
    }
    frame.ports = Some((sport, dport));
    let payload = b.slice(8, len - 8)?;
    let is = |p: u16| sport == p || dport == p;
    if (is(67) || is(68)) && (sport == 67 || sport == 68) && (dport == 67 || dport == 68) {
        dhcp(payload).map(Body::Dhcp)
    } else if is(53) {
        dns(payload).map(Body::Dns)
    } else {
        Ok(Body::Udp { payload })
    }
}

fn tcp(data: &[u8], frame: &mut Frame<'_>) -> Result<Tcp, DecodeError> {
    let b = Bytes::new("TCP", data);
    let (sport, dport) = (b.u16(0)?, b.u16(2)?);
    let (seq, ack) = (b.u32(4)?, b.u32(8)?);
    let off = usize::from(b.u8(12)? >> 4) * 4;
    let flags = TcpFlags(b.u8(13)?);
    if off < 20 {
        return Err(DecodeError::malformed("TCP", format!("header length {off} < 20")));
    }
    b.need(off)?;
    frame.ports = Some((sport, dport));
    Ok(Tcp { seq, ack, flags, payload_len: data.len() - off })
}

fn dhcp(payload: &[u8]) -> Result<Dhcp<'_>, DecodeError> {
    let b = Bytes::new("DHCP", payload);
    b.need(240)?;
    let op = b.u8(0)?;
    let (htype, hlen) = (b.u8(1)?, b.u8(2)?);
    if (htype, hlen) != (1, 6) {
        return Err(DecodeError::malformed(
            "DHCP",
            format!("hardware type {htype}/length {hlen}, not Ethernet"),
        ));
    }
    let mut msg = Dhcp {
        op,
        xid: b.u32(4)?,
        ciaddr: b.ip(12)?,
        yiaddr: b.ip(16)?,
        siaddr: b.ip(20)?,
        giaddr: b.ip(24)?,
        client_mac: b.mac(28)?,
        message_type: None,
        requested_ip: None,
        server_id: None,
        hostname: None,
        lease_time: None,
    };
    if b.array::<4>(236)? != DHCP_MAGIC {
        return Ok(msg); // plain BOOTP
    }
    let mut at = 240;
    while at < payload.len() {
        let code = b.u8(at)?;
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = usize::from(b.u8(at + 1)?);
        let value = b.slice(at + 2, len).map_err(|_| {
            DecodeError::malformed(
                "DHCP",
                format!("option {code} of length {len} runs past the end"),
            )
        })?;
        let v = Bytes::new("DHCP option", value);
        let ip = || -> Result<Ipv4Addr, DecodeError> {
            if len != 4 {
                return Err(DecodeError::malformed(
                    "DHCP",
                    format!("option {code} has length {len}, not 4"),
                ));
            }
            v.ip(0)
        };
        match code {
            53 => {
                if len != 1 {
                    return Err(DecodeError::malformed(
                        "DHCP",
                        format!("message type option has length {len}, not 1"),
                    ));
                }
                msg.message_type = Some(DhcpType::from_u8(v.u8(0)?));
            }
            50 => msg.requested_ip = Some(ip()?),
            54 => msg.server_id = Some(ip()?),
            51 if len == 4 => msg.lease_time = Some(v.u32(0)?),
            12 => msg.hostname = Some(String::from_utf8_lossy(value)),
            _ => {}
        }
        at += 2 + len;
    }
    Ok(msg)
}

/// The longest name DNS allows (in presentation form, roughly).
const DNS_NAME_MAX: usize = 255;

fn dns(payload: &[u8]) -> Result<Dns, DecodeError> {
    let b = Bytes::new("DNS", payload);
    let id = b.u16(0)?;
    let flags = b.u16(2)?;
    let (qd, an) = (b.u16(4)?, b.u16(6)?);
    let mut msg = Dns {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        rcode: Rcode((flags & 0x000f) as u8),
        question: None,
        answer_count: an,
        a_answers: Vec::new(),
    };
    let mut at = 12;
    for i in 0..qd {
        let (name, next) = dns_name(payload, at)?;
        let qtype = b.u16(next)?;
        b.need(next + 4)?;
        if i == 0 {
            msg.question = Some(Question { name, qtype });
        }
        at = next + 4;
    }
    for _ in 0..an {
        // Answers are read as far as they go: a short answer section ends the list.
        let Ok((_, next)) = dns_name(payload, at) else { break };
        let (Ok(rtype), Ok(class), Ok(rdlen)) = (b.u16(next), b.u16(next + 2), b.u16(next + 8))
        else {
            break;
        };
        let Ok(rdata) = b.slice(next + 10, usize::from(rdlen)) else { break };
        if rtype == 1 && class == 1 && rdata.len() == 4 {
            msg.a_answers.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        at = next + 10 + usize::from(rdlen);
    }
    Ok(msg)
}

/// Reads a (possibly compressed) name at `at`; returns it and the offset after it in place.
fn dns_name(msg: &[u8], at: usize) -> Result<(String, usize), DecodeError> {
    let b = Bytes::new("DNS name", msg);
    let mut name = String::new();
    let mut pos = at;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = b.u8(pos)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let after = end.unwrap_or(pos + 1);
                    if name.is_empty() {
                        name.push('.');
                    }
                    return Ok((name, after));
                }
                let label = b.slice(pos + 1, usize::from(len))?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &c in label {
                    if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                        name.push(char::from(c));
                    } else {
                        name.push_str(&format!("\\{c:03}"));
                    }
                }
                if name.len() > DNS_NAME_MAX * 4 {
                    return Err(DecodeError::malformed("DNS name", "too long"));
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(b.u16(pos)? & 0x3fff);
                jumps += 1;
                if jumps > 32 {
                    return Err(DecodeError::malformed("DNS name", "compression loop"));
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => {
                let kind = len & 0xc0;
                return Err(DecodeError::malformed(
                    "DNS name",
                    format!("label type 0x{kind:02x} unknown"),
                ));
            }
        }
    }
}

// --- Summaries ------------------------------------------------------------------------------

impl fmt::Display for Frame<'_> {
    /// A one-line summary: `DHCP DISCOVER 0.0.0.0 > 255.255.255.255 client 02:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            match (self.ip, self.ports) {
                (Some(ip), Some((sp, dp))) => write!(f, "{}:{sp} > {}:{dp}", ip.src, ip.dst),
                (Some(ip), None) => write!(f, "{} > {}", ip.src, ip.dst),
                (None, _) => match self.eth {
                    Some(e) => write!(f, "{} > {}", e.src, e.dst),
                    None => Ok(()),
                },
            }
        };
        match &self.body {
            Body::Arp(a) => match a.op {
                ArpOp::Request => {
                    write!(
                        f,
                        "ARP request who-has {} tell {} ({})",
                        a.target_ip, a.sender_ip, a.sender_mac
                    )
                }
                ArpOp::Reply => {
                    write!(f, "ARP reply {} is-at {} to {}", a.sender_ip, a.sender_mac, a.target_ip)
                }
                ArpOp::Other(n) => write!(f, "ARP op {n} from {}", a.sender_ip),
            },
            Body::Dhcp(d) => {
                match d.message_type {
                    Some(t) => write!(f, "DHCP {t} ")?,
                    None => write!(f, "BOOTP {} ", if d.op == 1 { "request" } else { "reply" })?,
                }
                addrs(f)?;
                write!(f, " client {} xid 0x{:08x}", d.client_mac, d.xid)?;
                if !d.yiaddr.is_unspecified() {
                    write!(f, " yiaddr {}", d.yiaddr)?;
                }
                if let Some(ip) = d.requested_ip {
                    write!(f, " requested {ip}")?;
                }
                if let Some(ip) = d.server_id {
                    write!(f, " server {ip}")?;
                }
                if let Some(h) = &d.hostname {
                    write!(f, " hostname {h:?}")?;
                }
                Ok(())
            }
            Body::Dns(d) => {
                write!(f, "DNS {} ", if d.response { "response" } else { "query" })?;
                match &d.question {
                    Some(q) => write!(f, "{} {}", qtype_name(q.qtype), q.name)?,
                    None => write!(f, "(no question)")?,
                }
                if d.response {
                    write!(f, " {}", d.rcode.name().to_ascii_uppercase())?;
                    for a in &d.a_answers {
                        write!(f, " A {a}")?;
                    }
                }
                write!(f, " id 0x{:04x} ", d.id)?;
                addrs(f)
            }
            Body::Icmp(i) => {
                match i {
                    Icmp::EchoRequest { id, seq } => {
                        write!(f, "ICMP echo-request id {id} seq {seq} ")?
                    }
                    Icmp::EchoReply { id, seq } => write!(f, "ICMP echo-reply id {id} seq {seq} ")?,
                    Icmp::Unreachable { code } => write!(f, "ICMP unreachable code {code} ")?,
                    Icmp::Other { icmp_type, code } => {
                        write!(f, "ICMP type {icmp_type} code {code} ")?
                    }
                }
                addrs(f)
            }
            Body::Tcp(t) => {
                write!(f, "TCP ")?;
                addrs(f)?;
                write!(f, " [{}] seq {}", t.flags, t.seq)?;
                if t.flags.has(TcpFlags::ACK) {
                    write!(f, " ack {}", t.ack)?;
                }
                write!(f, " len {}", t.payload_len)
            }
            Body::Udp { payload } => {
                write!(f, "UDP ")?;
                addrs(f)?;
                write!(f, " len {}", payload.len())
            }
            Body::Other(what) => {
                write!(f, "{what} ")?;
                addrs(f)
            }
            Body::Undecodable { reason } => write!(f, "undecodable: {reason}"),
        }
    }
}

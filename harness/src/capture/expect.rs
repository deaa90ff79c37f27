//! Packet expectations: what a case's capture must (or must not) contain.
//!
//! In a spec table (TOML), a list of [`PacketExpect`], each a table with one key:
//!
//! ```toml
//! packets = [
//!   # These appear in this order (other packets may come in between).
//!   { sequence = [{ dhcp = "discover" }, { dhcp = "offer" }, { dhcp = "request" }, { dhcp = "ack" }] },
//!   # No packet matches.
//!   { none = { dns_query = "evil.lab" } },
//!   # Time from the first packet matching `first` to the next one matching `second`.
//!   { gap = { first = { dhcp = "discover" }, second = { dhcp = "request" }, max_ms = 2000 } },
//!   # How many packets match (min and max are both optional, at least one is given).
//!   { count = { of = { arp = "request", dst = "10.77.0.1" }, min = 1, max = 3 } },
//! ]
//! ```
//!
//! A [`PacketMatch`] has exactly one kind key, and optional qualifiers:
//!
//! | key | values |
//! |---|---|
//! | `dhcp` | `discover`, `offer`, `request`, `decline`, `ack`, `nak`, `release`, `inform` |
//! | `dns_query` | a name (`lab-host.lab`; case and a final dot do not matter) |
//! | `dns_response` | a name, as above |
//! | `arp` | `request`, `reply` |
//! | `icmp` | `echo-request`, `echo-reply`, `unreachable` |
//! | `tcp` | `syn` (SYN without ACK), `syn-ack`, `rst`, `fin`, `any` |
//! | `udp` | `any` (any UDP, DHCP and DNS included) |
//! | `tls` | `client_hello`, `server_hello` (read from the reassembled TCP connection: the packet that completes the message matches) |
//!
//! | qualifier | meaning |
//! |---|---|
//! | `from_mac` | Ethernet source address (`02:00:00:aa:bb:cc`) |
//! | `src` (or `from`) | IPv4 source; for ARP the sender address |
//! | `dst` (or `to`) | IPv4 destination; for ARP the target address |
//! | `port` | TCP or UDP port, either side (`tcp`, `udp`, `dns_*` only) |
//! | `rcode` | DNS response code: `noerror`, `formerr`, `servfail`, `nxdomain`, `notimp`, `refused` (`dns_response` only) |
//! | `qtype` | DNS question type, e.g. `A`, `AAAA` (`dns_query`, `dns_response` only) |
//! | `yiaddr`, `requested_ip`, `server_id`, `hostname` | DHCP fields (`dhcp` only) |
//! | `suites` | the suites offered, in any order: `"chapter"` (exactly the chapter's 12) or a list of IANA names or numbers (`["TLS_RSA_WITH_AES_128_CBC_SHA", "0xC02F"]`); the renegotiation signalling value 0x00FF that mbedTLS and OpenSSL add is not a suite and is ignored (`client_hello` only) |
//! | `max_version` | the highest version offered, `"1.0"` to `"1.3"` (`supported_versions` if sent, else the version field; `client_hello` only) |
//! | `sni` | the server name sent (`client_hello` only) |
//! | `suite` | the suite chosen, IANA name or number (`server_hello` only) |
//! | `version` | the version chosen (`server_hello` only) |
//!
//! Unknown keys, two kind keys, no kind key or a qualifier on the wrong kind are errors at load.

use std::fmt;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::SystemTime;

use serde::Deserialize;

use super::CapturedPacket;
use super::decode::{self, ArpOp, Body, DhcpType, Frame, Icmp, Mac, Rcode, TcpFlags};
use super::tls::{self, Handshake, TlsMessage, Version};

/// One packet expectation of a case.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawExpect")]
pub enum PacketExpect {
    /// These appear in this order; other packets may be in between.
    Sequence(Vec<PacketMatch>),
    /// No packet matches.
    None(PacketMatch),
    /// From the first packet matching `first` to the next packet matching `second` takes
    /// between `min_ms` and `max_ms` (each bound optional, at least one given).
    Gap { first: PacketMatch, second: PacketMatch, min_ms: Option<u64>, max_ms: Option<u64> },
    /// Between `min` and `max` packets match (each bound optional, at least one given).
    Count { of: PacketMatch, min: Option<usize>, max: Option<usize> },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawExpect {
    Sequence(Vec<PacketMatch>),
    None(PacketMatch),
    Gap {
        first: PacketMatch,
        second: PacketMatch,
        #[serde(default)]
        min_ms: Option<u64>,
        #[serde(default)]
        max_ms: Option<u64>,
    },
    Count {
        of: PacketMatch,
        #[serde(default)]
        min: Option<usize>,
        #[serde(default)]
        max: Option<usize>,
    },
}

fn check_bounds<T: PartialOrd + fmt::Display>(
    what: &str,
    min: Option<&T>,
    max: Option<&T>,
) -> Result<(), String> {
    match (min, max) {
        (None, None) => Err(format!("{what}: give at least one of min and max")),
        (Some(lo), Some(hi)) if lo > hi => Err(format!("{what}: min {lo} is above max {hi}")),
        _ => Ok(()),
    }
}

impl TryFrom<RawExpect> for PacketExpect {
    type Error = String;

    fn try_from(raw: RawExpect) -> Result<Self, String> {
        Ok(match raw {
            RawExpect::Sequence(v) => {
                if v.is_empty() {
                    return Err("sequence: give at least one packet".into());
                }
                PacketExpect::Sequence(v)
            }
            RawExpect::None(m) => PacketExpect::None(m),
            RawExpect::Gap { first, second, min_ms, max_ms } => {
                check_bounds("gap", min_ms.as_ref(), max_ms.as_ref())?;
                PacketExpect::Gap { first, second, min_ms, max_ms }
            }
            RawExpect::Count { of, min, max } => {
                check_bounds("count", min.as_ref(), max.as_ref())?;
                PacketExpect::Count { of, min, max }
            }
        })
    }
}

/// What a packet must be to match.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawMatch")]
pub struct PacketMatch {
    pub kind: MatchKind,
    pub from_mac: Option<Mac>,
    pub src: Option<Ipv4Addr>,
    pub dst: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub rcode: Option<Rcode>,
    /// DNS question type, e.g. 1 for `A`.
    pub qtype: Option<u16>,
    pub yiaddr: Option<Ipv4Addr>,
    pub requested_ip: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    /// The TLS hello qualifiers (`tls` only; boxed, as most matches have none).
    pub tls: Box<TlsQualifiers>,
}

/// What a TLS hello must say, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsQualifiers {
    /// ClientHello: the suites offered (as a set, the signalling value 0x00FF left out).
    pub suites: Option<SuiteSet>,
    /// ClientHello: the highest version offered.
    pub max_version: Option<Version>,
    /// ClientHello: the server name sent.
    pub sni: Option<String>,
    /// ServerHello: the suite chosen.
    pub suite: Option<u16>,
    /// ServerHello: the version chosen.
    pub version: Option<Version>,
}

/// A set of cipher suites, as written in a spec table: `"chapter"` or a list of IANA names or
/// numbers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSuites")]
pub enum SuiteSet {
    /// The chapter's 12 (`"chapter"`).
    Chapter,
    /// These, sorted and without duplicates.
    Exactly(Vec<u16>),
}

impl SuiteSet {
    /// The suites, sorted.
    pub fn ids(&self) -> Vec<u16> {
        match self {
            SuiteSet::Chapter => {
                let mut v: Vec<u16> = tls::CHAPTER_SUITES.iter().map(|(id, _)| *id).collect();
                v.sort_unstable();
                v
            }
            SuiteSet::Exactly(v) => v.clone(),
        }
    }

    /// The set as text: `the chapter's 12` or `[0x002F, 0xC02F]`.
    pub fn describe(&self) -> String {
        match self {
            SuiteSet::Chapter => "the chapter's 12 suites".into(),
            SuiteSet::Exactly(ids) => {
                let ids: Vec<String> = ids.iter().map(|s| format!("0x{s:04X}")).collect();
                format!("[{}]", ids.join(", "))
            }
        }
    }

    /// Whether `offered` is this set, in any order (0x00FF and repeats aside).
    pub fn is(&self, offered: &[u16]) -> bool {
        let mut got: Vec<u16> =
            offered.iter().copied().filter(|s| *s != tls::SCSV_RENEGOTIATION).collect();
        got.sort_unstable();
        got.dedup();
        got == self.ids()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSuites {
    Name(String),
    List(Vec<String>),
}

impl TryFrom<RawSuites> for SuiteSet {
    type Error = String;
    fn try_from(raw: RawSuites) -> Result<Self, String> {
        match raw {
            RawSuites::Name(n) if n == "chapter" => Ok(SuiteSet::Chapter),
            RawSuites::Name(n) => Err(format!(
                "suites = {n:?}: write \"chapter\" or a list of suites ([\"0xC02F\", ...])"
            )),
            RawSuites::List(names) => {
                let mut ids =
                    names.iter().map(|n| tls::parse_suite(n)).collect::<Result<Vec<_>, _>>()?;
                ids.sort_unstable();
                ids.dedup();
                if ids.is_empty() {
                    return Err("suites: give at least one suite".into());
                }
                Ok(SuiteSet::Exactly(ids))
            }
        }
    }
}

/// The TLS handshake messages a `tls` match looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsKind {
    ClientHello,
    ServerHello,
}

/// The kind of packet a [`PacketMatch`] looks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchKind {
    Dhcp(DhcpKind),
    /// A DNS query for this name (lower case, no final dot).
    DnsQuery(String),
    /// A DNS response for this name (lower case, no final dot).
    DnsResponse(String),
    Arp(ArpKind),
    Icmp(IcmpKind),
    Tcp(TcpKind),
    /// Any UDP datagram.
    Udp,
    /// A TCP segment that completes this TLS handshake message.
    Tls(TlsKind),
}

/// DHCP message types, as written in spec tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DhcpKind {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
}

impl DhcpKind {
    fn as_type(self) -> DhcpType {
        match self {
            DhcpKind::Discover => DhcpType::Discover,
            DhcpKind::Offer => DhcpType::Offer,
            DhcpKind::Request => DhcpType::Request,
            DhcpKind::Decline => DhcpType::Decline,
            DhcpKind::Ack => DhcpType::Ack,
            DhcpKind::Nak => DhcpType::Nak,
            DhcpKind::Release => DhcpType::Release,
            DhcpKind::Inform => DhcpType::Inform,
        }
    }
}

/// ARP operations, as written in spec tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArpKind {
    Request,
    Reply,
}

/// ICMP messages, as written in spec tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IcmpKind {
    EchoRequest,
    EchoReply,
    Unreachable,
}

/// TCP segments, as written in spec tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpKind {
    /// SYN without ACK: a connection attempt.
    Syn,
    SynAck,
    Rst,
    Fin,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum UdpKind {
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RcodeName {
    Noerror,
    Formerr,
    Servfail,
    Nxdomain,
    Notimp,
    Refused,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    dhcp: Option<DhcpKind>,
    dns_query: Option<String>,
    dns_response: Option<String>,
    arp: Option<ArpKind>,
    icmp: Option<IcmpKind>,
    tcp: Option<TcpKind>,
    udp: Option<UdpKind>,
    tls: Option<TlsKind>,
    from_mac: Option<String>,
    #[serde(alias = "from")]
    src: Option<Ipv4Addr>,
    #[serde(alias = "to")]
    dst: Option<Ipv4Addr>,
    port: Option<u16>,
    rcode: Option<RcodeName>,
    qtype: Option<String>,
    yiaddr: Option<Ipv4Addr>,
    requested_ip: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    hostname: Option<String>,
    suites: Option<SuiteSet>,
    max_version: Option<String>,
    sni: Option<String>,
    suite: Option<String>,
    version: Option<String>,
}

const KIND_KEYS: &str = "dhcp, dns_query, dns_response, arp, icmp, tcp, udp, tls";

fn dns_name_key(name: &str) -> Result<String, String> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if n.is_empty() || n.contains(char::is_whitespace) {
        return Err(format!("{name:?} is not a DNS name"));
    }
    Ok(n)
}

fn qtype_number(name: &str) -> Result<u16, String> {
    let upper = name.to_ascii_uppercase();
    for t in [1, 2, 5, 6, 12, 15, 16, 28, 33, 65, 255] {
        if decode::qtype_name(t) == upper {
            return Ok(t);
        }
    }
    upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("qtype {name:?} unknown (A, AAAA, CNAME, PTR, TXT, ... or TYPE<n>)"))
}

impl TryFrom<RawMatch> for PacketMatch {
    type Error = String;

    fn try_from(r: RawMatch) -> Result<Self, String> {
        let mut kinds = Vec::new();
        if let Some(k) = r.dhcp {
            kinds.push(MatchKind::Dhcp(k));
        }
        if let Some(n) = &r.dns_query {
            kinds.push(MatchKind::DnsQuery(dns_name_key(n)?));
        }
        if let Some(n) = &r.dns_response {
            kinds.push(MatchKind::DnsResponse(dns_name_key(n)?));
        }
        if let Some(k) = r.arp {
            kinds.push(MatchKind::Arp(k));
        }
        if let Some(k) = r.icmp {
            kinds.push(MatchKind::Icmp(k));
        }
        if let Some(k) = r.tcp {
            kinds.push(MatchKind::Tcp(k));
        }
        if let Some(UdpKind::Any) = r.udp {
            kinds.push(MatchKind::Udp);
        }
        if let Some(k) = r.tls {
            kinds.push(MatchKind::Tls(k));
        }
        let kind = match kinds.len() {
            0 => return Err(format!("a packet match needs one of {KIND_KEYS}")),
            1 => kinds.remove(0),
            _ => return Err(format!("a packet match takes only one of {KIND_KEYS}")),
        };
        let is_dns = matches!(kind, MatchKind::DnsQuery(_) | MatchKind::DnsResponse(_));
        let is_dhcp = matches!(kind, MatchKind::Dhcp(_));
        let only = |present: bool, key: &str, ok: bool, kinds: &str| {
            if present && !ok { Err(format!("{key} applies to {kinds} only")) } else { Ok(()) }
        };
        only(
            r.rcode.is_some(),
            "rcode",
            matches!(kind, MatchKind::DnsResponse(_)),
            "dns_response",
        )?;
        only(r.qtype.is_some(), "qtype", is_dns, "dns_query and dns_response")?;
        only(
            r.port.is_some(),
            "port",
            is_dns || matches!(kind, MatchKind::Tcp(_) | MatchKind::Udp | MatchKind::Tls(_)),
            "tcp, udp, tls, dns_query and dns_response",
        )?;
        let client = matches!(kind, MatchKind::Tls(TlsKind::ClientHello));
        let server = matches!(kind, MatchKind::Tls(TlsKind::ServerHello));
        only(r.suites.is_some(), "suites", client, "tls = \"client_hello\"")?;
        only(r.max_version.is_some(), "max_version", client, "tls = \"client_hello\"")?;
        only(r.sni.is_some(), "sni", client, "tls = \"client_hello\"")?;
        only(r.suite.is_some(), "suite", server, "tls = \"server_hello\"")?;
        only(r.version.is_some(), "version", server, "tls = \"server_hello\"")?;
        let tls = Box::new(TlsQualifiers {
            suites: r.suites,
            max_version: r.max_version.as_deref().map(str::parse).transpose()?,
            sni: r.sni,
            suite: r.suite.as_deref().map(tls::parse_suite).transpose()?,
            version: r.version.as_deref().map(str::parse).transpose()?,
        });
        for (present, key) in [
            (r.yiaddr.is_some(), "yiaddr"),
            (r.requested_ip.is_some(), "requested_ip"),
            (r.server_id.is_some(), "server_id"),
            (r.hostname.is_some(), "hostname"),
        ] {
            only(present, key, is_dhcp, "dhcp")?;
        }
        Ok(PacketMatch {
            kind,
            from_mac: r.from_mac.as_deref().map(str::parse).transpose()?,
            src: r.src,
            dst: r.dst,
            port: r.port,
            rcode: r.rcode.map(|n| Rcode(n as u8)),
            qtype: r.qtype.as_deref().map(qtype_number).transpose()?,
            yiaddr: r.yiaddr,
            requested_ip: r.requested_ip,
            server_id: r.server_id,
            hostname: r.hostname,
            tls,
        })
    }
}

impl PacketMatch {
    /// A match of this kind with no qualifier.
    pub fn new(kind: MatchKind) -> Self {
        PacketMatch {
            kind,
            from_mac: None,
            src: None,
            dst: None,
            port: None,
            rcode: None,
            qtype: None,
            yiaddr: None,
            requested_ip: None,
            server_id: None,
            hostname: None,
            tls: Box::default(),
        }
    }

    /// Whether a decoded frame matches (a `tls` match never matches a frame alone: see
    /// [`PacketMatch::matches_with`]).
    pub fn matches(&self, f: &Frame<'_>) -> bool {
        self.matches_with(f, &[])
    }

    /// Whether a decoded frame, which completed these TLS handshake messages, matches.
    pub fn matches_with(&self, f: &Frame<'_>, tls: &[Handshake]) -> bool {
        let kind = match &self.kind {
            MatchKind::Tls(k) => tls.iter().any(|h| self.hello_matches(*k, h)),
            _ => self.kind_matches(f),
        };
        kind && self.qualifiers_match(f)
    }

    fn hello_matches(&self, kind: TlsKind, h: &Handshake) -> bool {
        let q = &self.tls;
        match (kind, h) {
            (TlsKind::ClientHello, Handshake::ClientHello(c)) => {
                q.suites.as_ref().is_none_or(|s| s.is(&c.suites))
                    && q.max_version.is_none_or(|v| c.max_version() == v)
                    && q.sni.as_deref().is_none_or(|n| c.sni.as_deref() == Some(n))
            }
            (TlsKind::ServerHello, Handshake::ServerHello(s)) => {
                q.suite.is_none_or(|id| s.suite == id) && q.version.is_none_or(|v| s.version() == v)
            }
            _ => false,
        }
    }

    /// Whether the frame is of the protocol this match is about (for "seen instead" lists).
    fn same_family(&self, f: &Frame<'_>) -> bool {
        match (&self.kind, &f.body) {
            (MatchKind::Dhcp(_), Body::Dhcp(_))
            | (MatchKind::DnsQuery(_) | MatchKind::DnsResponse(_), Body::Dns(_))
            | (MatchKind::Arp(_), Body::Arp(_))
            | (MatchKind::Icmp(_), Body::Icmp(_))
            | (MatchKind::Tcp(_), Body::Tcp(_)) => true,
            (MatchKind::Udp, _) => f.ip.is_some_and(|ip| ip.protocol == 17),
            _ => false,
        }
    }

    fn same_family_with(&self, d: &Decoded<'_>) -> bool {
        match self.kind {
            MatchKind::Tls(_) => d
                .tls
                .iter()
                .any(|h| matches!(h, Handshake::ClientHello(_) | Handshake::ServerHello(_))),
            _ => self.same_family(&d.frame),
        }
    }

    fn kind_matches(&self, f: &Frame<'_>) -> bool {
        match (&self.kind, &f.body) {
            (MatchKind::Dhcp(k), Body::Dhcp(d)) => d.message_type == Some(k.as_type()),
            (MatchKind::DnsQuery(name), Body::Dns(d)) => !d.response && dns_name_is(d, name),
            (MatchKind::DnsResponse(name), Body::Dns(d)) => d.response && dns_name_is(d, name),
            (MatchKind::Arp(k), Body::Arp(a)) => match k {
                ArpKind::Request => a.op == ArpOp::Request,
                ArpKind::Reply => a.op == ArpOp::Reply,
            },
            (MatchKind::Icmp(k), Body::Icmp(i)) => matches!(
                (k, i),
                (IcmpKind::EchoRequest, Icmp::EchoRequest { .. })
                    | (IcmpKind::EchoReply, Icmp::EchoReply { .. })
                    | (IcmpKind::Unreachable, Icmp::Unreachable { .. })
            ),
            (MatchKind::Tcp(k), Body::Tcp(t)) => {
                let fl = t.flags;
                match k {
                    TcpKind::Syn => fl.has(TcpFlags::SYN) && !fl.has(TcpFlags::ACK),
                    TcpKind::SynAck => fl.has(TcpFlags::SYN | TcpFlags::ACK),
                    TcpKind::Rst => fl.has(TcpFlags::RST),
                    TcpKind::Fin => fl.has(TcpFlags::FIN),
                    TcpKind::Any => true,
                }
            }
            (MatchKind::Udp, _) => f.ip.is_some_and(|ip| ip.protocol == 17) && f.ports.is_some(),
            _ => false,
        }
    }

    fn qualifiers_match(&self, f: &Frame<'_>) -> bool {
        let (src, dst) = match (&f.body, f.ip) {
            (Body::Arp(a), _) => (Some(a.sender_ip), Some(a.target_ip)),
            (_, Some(ip)) => (Some(ip.src), Some(ip.dst)),
            _ => (None, None),
        };
        let opt_eq = |want: Option<Ipv4Addr>, got: Option<Ipv4Addr>| want.is_none() || want == got;
        if !opt_eq(self.src, src) || !opt_eq(self.dst, dst) {
            return false;
        }
        if self.from_mac.is_some_and(|mac| f.eth.map(|e| e.src) != Some(mac)) {
            return false;
        }
        if self.port.is_some_and(|port| !f.ports.is_some_and(|(s, d)| s == port || d == port)) {
            return false;
        }
        match &f.body {
            Body::Dns(d) => {
                (self.rcode.is_none() || self.rcode == Some(d.rcode))
                    && (self.qtype.is_none() || self.qtype == d.question.as_ref().map(|q| q.qtype))
            }
            Body::Dhcp(d) => {
                opt_eq(self.yiaddr, Some(d.yiaddr))
                    && opt_eq(self.requested_ip, d.requested_ip)
                    && opt_eq(self.server_id, d.server_id)
                    && self.hostname.as_deref().is_none_or(|h| d.hostname.as_deref() == Some(h))
            }
            _ => true,
        }
    }
}

fn dns_name_is(d: &decode::Dns, name: &str) -> bool {
    d.question.as_ref().is_some_and(|q| q.name.trim_end_matches('.').eq_ignore_ascii_case(name))
}

impl fmt::Display for PacketMatch {
    /// As written in a spec table: `{ dhcp = "request", from_mac = "02:…" }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lower = |s: String| s.to_ascii_lowercase();
        let (key, value) = match &self.kind {
            MatchKind::Dhcp(k) => ("dhcp", lower(k.as_type().to_string())),
            MatchKind::DnsQuery(n) => ("dns_query", n.clone()),
            MatchKind::DnsResponse(n) => ("dns_response", n.clone()),
            MatchKind::Arp(ArpKind::Request) => ("arp", "request".into()),
            MatchKind::Arp(ArpKind::Reply) => ("arp", "reply".into()),
            MatchKind::Icmp(IcmpKind::EchoRequest) => ("icmp", "echo-request".into()),
            MatchKind::Icmp(IcmpKind::EchoReply) => ("icmp", "echo-reply".into()),
            MatchKind::Icmp(IcmpKind::Unreachable) => ("icmp", "unreachable".into()),
            MatchKind::Tcp(k) => (
                "tcp",
                match k {
                    TcpKind::Syn => "syn",
                    TcpKind::SynAck => "syn-ack",
                    TcpKind::Rst => "rst",
                    TcpKind::Fin => "fin",
                    TcpKind::Any => "any",
                }
                .into(),
            ),
            MatchKind::Udp => ("udp", "any".into()),
            MatchKind::Tls(TlsKind::ClientHello) => ("tls", "client_hello".into()),
            MatchKind::Tls(TlsKind::ServerHello) => ("tls", "server_hello".into()),
        };
        write!(f, "{{ {key} = {value:?}")?;
        let mut kv = |k: &str, v: Option<String>| match v {
            Some(v) => write!(f, ", {k} = {v:?}"),
            None => Ok(()),
        };
        kv("from_mac", self.from_mac.map(|m| m.to_string()))?;
        kv("src", self.src.map(|a| a.to_string()))?;
        kv("dst", self.dst.map(|a| a.to_string()))?;
        kv("rcode", self.rcode.map(|r| r.name().into_owned()))?;
        kv("qtype", self.qtype.map(|t| decode::qtype_name(t).into_owned()))?;
        kv("yiaddr", self.yiaddr.map(|a| a.to_string()))?;
        kv("requested_ip", self.requested_ip.map(|a| a.to_string()))?;
        kv("server_id", self.server_id.map(|a| a.to_string()))?;
        kv("hostname", self.hostname.clone())?;
        kv("max_version", self.tls.max_version.map(|v| v.to_string()))?;
        kv("sni", self.tls.sni.clone())?;
        kv("suite", self.tls.suite.map(|s| format!("0x{s:04X}")))?;
        kv("version", self.tls.version.map(|v| v.to_string()))?;
        if let Some(p) = self.port {
            write!(f, ", port = {p}")?;
        }
        match &self.tls.suites {
            Some(SuiteSet::Chapter) => write!(f, ", suites = \"chapter\"")?,
            Some(SuiteSet::Exactly(ids)) => {
                let ids: Vec<String> = ids.iter().map(|s| format!("\"0x{s:04X}\"")).collect();
                write!(f, ", suites = [{}]", ids.join(", "))?;
            }
            None => {}
        }
        write!(f, " }}")
    }
}

/// How many packets a "seen instead" list shows.
const SEEN_MAX: usize = 10;

struct Decoded<'a> {
    ts: SystemTime,
    frame: Frame<'a>,
    /// The TLS handshake messages this packet completed.
    tls: Vec<Handshake>,
}

impl Decoded<'_> {
    fn matches(&self, m: &PacketMatch) -> bool {
        m.matches_with(&self.frame, &self.tls)
    }
}

impl PacketExpect {
    /// Checks the expectation against a case's packets (oldest first). The error says what
    /// was expected and what was seen instead (a short list of decoded packets, numbered
    /// from 1, with their time since the first packet).
    pub fn check(&self, packets: &[CapturedPacket]) -> Result<(), String> {
        let mut decoded: Vec<Decoded<'_>> = packets
            .iter()
            .map(|p| Decoded { ts: p.ts, frame: p.decode(), tls: Vec::new() })
            .collect();
        if self.is_about_tls() {
            for seen in tls::connections(packets) {
                if let (TlsMessage::Handshake(h), Some(d)) =
                    (seen.message, decoded.get_mut(seen.packet))
                {
                    d.tls.push(h);
                }
            }
        }
        let t0 = decoded.first().map(|d| d.ts);
        let at = |i: usize| -> String {
            let ms = match (t0, decoded.get(i)) {
                (Some(t0), Some(d)) => {
                    d.ts.duration_since(t0).unwrap_or_default().as_secs_f64() * 1e3
                }
                _ => 0.0,
            };
            format!("#{} at +{ms:.1} ms", i + 1)
        };
        let find = |m: &PacketMatch, from: usize| -> Option<usize> {
            decoded.iter().enumerate().skip(from).find(|(_, d)| d.matches(m)).map(|(i, _)| i)
        };
        match self {
            PacketExpect::Sequence(matches) => {
                let mut from = 0;
                let mut found: Vec<String> = Vec::new();
                for m in matches {
                    match find(m, from) {
                        Some(i) => {
                            found.push(format!("{m} ({})", at(i)));
                            from = i + 1;
                        }
                        None => {
                            let mut msg = format!("expected packet {m}");
                            if found.is_empty() {
                                msg.push_str(", not seen");
                            } else {
                                let _ = write!(msg, " after {}, not seen", found.join(", then "));
                            }
                            msg.push_str(&seen_instead(&decoded, m, t0));
                            return Err(msg);
                        }
                    }
                }
                Ok(())
            }
            PacketExpect::None(m) => match find(m, 0) {
                None => Ok(()),
                Some(i) => {
                    Err(format!("expected no packet {m}, seen {}: {}", at(i), summary(&decoded[i])))
                }
            },
            PacketExpect::Gap { first, second, min_ms, max_ms } => {
                let Some(i) = find(first, 0) else {
                    return Err(format!(
                        "gap: expected packet {first}, not seen{}",
                        seen_instead(&decoded, first, t0)
                    ));
                };
                let Some(j) = find(second, i + 1) else {
                    return Err(format!(
                        "gap: expected packet {second} after {first} ({}), not seen{}",
                        at(i),
                        seen_instead(&decoded, second, t0)
                    ));
                };
                let gap = decoded[j].ts.duration_since(decoded[i].ts).unwrap_or_default();
                let gap_ms = gap.as_secs_f64() * 1e3;
                let too_short = min_ms.is_some_and(|lo| gap_ms < lo as f64);
                let too_long = max_ms.is_some_and(|hi| gap_ms > hi as f64);
                if too_short || too_long {
                    Err(format!(
                        "gap from {first} ({}) to {second} ({}) was {gap_ms:.1} ms, expected {}",
                        at(i),
                        at(j),
                        bounds_text(*min_ms, *max_ms, " ms")
                    ))
                } else {
                    Ok(())
                }
            }
            PacketExpect::Count { of, min, max } => {
                let hits: Vec<usize> = decoded
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.matches(of))
                    .map(|(i, _)| i)
                    .collect();
                let n = hits.len();
                if min.is_some_and(|lo| n < lo) || max.is_some_and(|hi| n > hi) {
                    let mut msg = format!(
                        "expected {} packets {of}, seen {n}",
                        bounds_text(min.map(|v| v as u64), max.map(|v| v as u64), "")
                    );
                    if n == 0 {
                        msg.push_str(&seen_instead(&decoded, of, t0));
                    } else {
                        msg.push(':');
                        list(&mut msg, hits.iter().map(|&i| (i, &decoded[i])), n, t0);
                    }
                    Err(msg)
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl PacketExpect {
    /// Whether a match in it looks for TLS (only then are connections reassembled).
    fn is_about_tls(&self) -> bool {
        let tls = |m: &PacketMatch| matches!(m.kind, MatchKind::Tls(_));
        match self {
            PacketExpect::Sequence(v) => v.iter().any(tls),
            PacketExpect::None(m) | PacketExpect::Count { of: m, .. } => tls(m),
            PacketExpect::Gap { first, second, .. } => tls(first) || tls(second),
        }
    }
}

/// A packet's one-line summary, with the TLS messages it completed.
fn summary(d: &Decoded<'_>) -> String {
    let mut s = d.frame.to_string();
    for h in &d.tls {
        let _ = write!(s, " | TLS {h}");
    }
    s
}

fn bounds_text(min: Option<u64>, max: Option<u64>, unit: &str) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) if lo == hi => format!("exactly {lo}{unit}"),
        (Some(lo), Some(hi)) => format!("{lo} to {hi}{unit}"),
        (Some(lo), None) => format!("at least {lo}{unit}"),
        (None, Some(hi)) => format!("at most {hi}{unit}"),
        (None, None) => "any".into(),
    }
}

/// `; seen instead (N packets of that protocol): …` or all packets when none is of it.
fn seen_instead(decoded: &[Decoded<'_>], m: &PacketMatch, t0: Option<SystemTime>) -> String {
    if decoded.is_empty() {
        return "; no packet was captured".into();
    }
    let family: Vec<(usize, &Decoded<'_>)> =
        decoded.iter().enumerate().filter(|(_, d)| m.same_family_with(d)).collect();
    let mut msg = String::new();
    if family.is_empty() {
        let n = decoded.len();
        let _ = write!(msg, "; none of that protocol among {n} packet{}:", plural(n));
        list(&mut msg, decoded.iter().enumerate(), n, t0);
    } else {
        let n = family.len();
        let _ = write!(msg, "; seen instead ({n} of {} packets):", decoded.len());
        list(&mut msg, family.into_iter(), n, t0);
    }
    msg
}

fn list<'d, 'a: 'd>(
    msg: &mut String,
    items: impl Iterator<Item = (usize, &'d Decoded<'a>)>,
    total: usize,
    t0: Option<SystemTime>,
) {
    for (i, d) in items.take(SEEN_MAX) {
        let ms = t0
            .map(|t0| d.ts.duration_since(t0).unwrap_or_default().as_secs_f64() * 1e3)
            .unwrap_or(0.0);
        let _ = write!(msg, "\n  #{} +{ms:.1} ms {}", i + 1, summary(d));
    }
    if total > SEEN_MAX {
        let _ = write!(msg, "\n  … and {} more", total - SEEN_MAX);
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests;

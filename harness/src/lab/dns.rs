//! A minimal DNS client for the lab: one A question over UDP, the answer's code and
//! addresses. Enough to check that the lab's resolver serves its names (readiness, tests);
//! not a general resolver.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// Response codes this client names (RFC 1035 §4.1.1).
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_REFUSED: u8 = 5;

/// Why a query could not be built or a response not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("`{0}` is not a valid DNS name")]
    InvalidName(String),
    #[error("short DNS message ({0} bytes)")]
    Short(usize),
    #[error("DNS response to another query")]
    OtherQuery,
    #[error("DNS message is not a response")]
    NotResponse,
    #[error("truncated DNS response")]
    Truncated,
}

/// What the server said about a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The response code (`RCODE_*`).
    pub rcode: u8,
    /// Whether the server claims authority (dnsmasq sets it for its local names).
    pub authoritative: bool,
    /// The A records in the answer section.
    pub addrs: Vec<Ipv4Addr>,
}

impl DnsAnswer {
    pub fn is_nxdomain(&self) -> bool {
        self.rcode == RCODE_NXDOMAIN
    }
}

/// Builds a query for the A record of `name`, recursion desired.
pub fn build_query(id: u16, name: &str) -> Result<Vec<u8>, DnsError> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(DnsError::InvalidName(name.to_string()));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    Ok(q)
}

/// Skips a (possibly compressed) name at `at`; returns the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

/// Parses a response to the query with this `id`.
pub fn parse_response(id: u16, msg: &[u8]) -> Result<DnsAnswer, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Short(msg.len()));
    }
    if be16(msg, 0) != Some(id) {
        return Err(DnsError::OtherQuery);
    }
    if msg[2] & 0x80 == 0 {
        return Err(DnsError::NotResponse);
    }
    let authoritative = msg[2] & 0x04 != 0;
    let rcode = msg[3] & 0x0F;
    let qdcount = be16(msg, 4).unwrap_or(0);
    let ancount = be16(msg, 6).unwrap_or(0);
    let bad = || DnsError::Truncated;
    let mut at = 12;
    for _ in 0..qdcount {
        at = skip_name(msg, at).ok_or_else(bad)? + 4;
    }
    let mut addrs = Vec::new();
    for _ in 0..ancount {
        at = skip_name(msg, at).ok_or_else(bad)?;
        let rtype = be16(msg, at).ok_or_else(bad)?;
        let rdlen = usize::from(be16(msg, at + 8).ok_or_else(bad)?);
        let data = msg.get(at + 10..at + 10 + rdlen).ok_or_else(bad)?;
        if rtype == 1 && rdlen == 4 {
            addrs.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + rdlen;
    }
    Ok(DnsAnswer { rcode, authoritative, addrs })
}

/// Asks `server` for the A record of `name` over UDP, once, waiting at most `timeout`.
/// Run it inside the lab (`Lab::run_in`) to reach the lab's resolver.
pub fn query_a(server: SocketAddr, name: &str, timeout: Duration) -> io::Result<DnsAnswer> {
    let id = (std::process::id() as u16) ^ (name.len() as u16).rotate_left(8) ^ 0x5a5a;
    let query =
        build_query(id, name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_read_timeout(Some(timeout))?;
    socket.connect(server)?;
    socket.send(&query)?;
    let mut buf = [0u8; 1500];
    loop {
        let n = socket.recv(&mut buf)?;
        match parse_response(id, &buf[..n]) {
            Ok(answer) => return Ok(answer),
            // A stray datagram (another id): keep waiting until the timeout.
            Err(DnsError::OtherQuery) => continue,
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_layout() {
        let q = build_query(0x1234, "lab-host.lab").expect("valid");
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..21], b"\x08lab-host");
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        assert_eq!(build_query(1, "a..b"), Err(DnsError::InvalidName("a..b".into())));
    }

    #[test]
    fn parses_answer_with_compression() {
        let mut r = build_query(7, "x.lab").expect("valid");
        r[2] = 0x85; // response, authoritative, RD
        r[3] = 0x80;
        r[7] = 1; // one answer
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 77, 0, 5]);
        let a = parse_response(7, &r).expect("parses");
        assert_eq!(a.rcode, RCODE_NOERROR);
        assert!(a.authoritative);
        assert_eq!(a.addrs, vec![Ipv4Addr::new(10, 77, 0, 5)]);
        assert_eq!(parse_response(8, &r), Err(DnsError::OtherQuery));
        assert_eq!(parse_response(7, &r[..11]), Err(DnsError::Short(11)));
        let mut query = r.clone();
        query[2] = 0x01;
        assert_eq!(parse_response(7, &query), Err(DnsError::NotResponse));
        r[3] = 0x83;
        r.truncate(r.len() - 3);
        assert_eq!(parse_response(7, &r), Err(DnsError::Truncated));
    }
}

//! A serial console exported over the network (`ser2net` and the like): the address
//! (`tcp://HOST:PORT`, `rfc2217://HOST:PORT`) and the [`ByteLink`] on a TCP connection.
//!
//! `tcp://` is a raw TCP accepter: the bytes are the console's, as they are, and the line
//! settings are the server's. `rfc2217://` is a telnet accepter with the COM-PORT-OPTION
//! (RFC 2217): the telnet layer is [`rfc2217::Client`], and at connect the rig's baud rate,
//! 8N1 and flow control are sent and the server's answers checked (a server that does not
//! apply the baud rate is an error then, not garbled bytes later). The serial channel uses
//! this link in place of a local port, so framing, transcripts and timing are the same.

use super::ChannelError;
use super::console::{ByteLink, SLICE};
use super::rfc2217::{self, Answer, Client, ComPort, Request};
use crate::interrupt;
use serialport::FlowControl;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How the console bytes travel on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetProtocol {
    /// Raw TCP: the console's bytes, nothing else.
    Tcp,
    /// Telnet with COM-PORT-OPTION (RFC 2217).
    Rfc2217,
}

impl NetProtocol {
    fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Rfc2217 => "rfc2217",
        }
    }
}

/// Where a console exported over the network is: `tcp://HOST:PORT` or `rfc2217://HOST:PORT`
/// (an IPv6 address in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetPort {
    pub protocol: NetProtocol,
    pub host: String,
    pub port: u16,
}

/// Why a string is no [`NetPort`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetPortError {
    #[error("`{0}` is not `tcp://HOST:PORT` or `rfc2217://HOST:PORT`")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` needs a port: `HOST:PORT`, PORT 1-65535")]
    Port(String),
    #[error("`{0}` has more than a host and a port (no user, path or query)")]
    Extra(String),
}

impl std::str::FromStr for NetPort {
    type Err = NetPortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (protocol, rest) = if let Some(rest) = s.strip_prefix("tcp://") {
            (NetProtocol::Tcp, rest)
        } else if let Some(rest) = s.strip_prefix("rfc2217://") {
            (NetProtocol::Rfc2217, rest)
        } else {
            return Err(NetPortError::Scheme(s.to_string()));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) || rest.chars().any(char::is_whitespace) {
            return Err(NetPortError::Extra(s.to_string()));
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, after) =
                    v6.split_once(']').ok_or_else(|| NetPortError::NoHost(s.to_string()))?;
                let port = after.strip_prefix(':').ok_or_else(|| NetPortError::Port(s.into()))?;
                (host, port)
            }
            None => rest.rsplit_once(':').ok_or_else(|| NetPortError::Port(s.to_string()))?,
        };
        if host.is_empty() || host.contains([':', '[', ']']) && !rest.starts_with('[') {
            return Err(NetPortError::NoHost(s.to_string()));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(NetPortError::Port(s.to_string())),
        };
        Ok(Self { protocol, host: host.to_string(), port })
    }
}

impl std::fmt::Display for NetPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.protocol.scheme();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl NetPort {
    /// The addresses the host resolves to (none is an error).
    pub fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            let text = format!("host `{}` resolves to no address", self.host);
            return Err(std::io::Error::new(ErrorKind::NotFound, text));
        }
        Ok(addrs)
    }
}

/// The line settings sent to an RFC 2217 server (always 8 data bits, no parity, 1 stop bit:
/// the module's console).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineSettings {
    pub baud: u32,
    pub flow_control: FlowControl,
}

/// A console over a TCP connection.
#[derive(Debug)]
pub struct NetLink {
    stream: TcpStream,
    /// The URL, for messages and reports.
    name: String,
    /// The telnet layer (`rfc2217://` only).
    telnet: Option<Client>,
    /// Console bytes decoded and not yet handed out.
    data: Vec<u8>,
}

impl NetLink {
    /// Connects (each address the host resolves to in turn, up to `timeout` each) and, for
    /// `rfc2217://`, negotiates and applies `settings`, waiting up to `timeout` for the
    /// server's answers. Console output waiting at the server is purged, as opening a local
    /// port clears its buffers.
    pub fn connect(
        port: &NetPort,
        settings: &LineSettings,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let name = port.to_string();
        let error = |source: std::io::Error| ChannelError::Link { link: name.clone(), source };
        let addrs = port.resolve().map_err(error)?;
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(stream) = stream else {
            return Err(error(last.unwrap_or_else(|| std::io::Error::other("no address"))));
        };
        let setup = |s: &TcpStream| -> std::io::Result<()> {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(SLICE))?;
            s.set_write_timeout(Some(Duration::from_secs(10)))
        };
        setup(&stream).map_err(error)?;
        let mut link = Self { stream, name, telnet: None, data: Vec::new() };
        if port.protocol == NetProtocol::Rfc2217 {
            link.negotiate(settings, timeout)?;
        }
        Ok(link)
    }

    fn error(&self, kind: ErrorKind, text: String) -> ChannelError {
        ChannelError::Link { link: self.name.clone(), source: std::io::Error::new(kind, text) }
    }

    fn io_error(&self, source: std::io::Error) -> ChannelError {
        ChannelError::Link { link: self.name.clone(), source }
    }

    /// The telnet opening, then the line settings, each answer checked.
    fn negotiate(&mut self, settings: &LineSettings, timeout: Duration) -> Result<(), ChannelError> {
        let mut client = Client::new();
        let opening = client.start();
        self.telnet = Some(client);
        self.send(&opening)?;
        let deadline = Instant::now() + timeout;
        let mut answers = Vec::new();
        while self.client().com_port() == ComPort::Pending {
            if Instant::now() >= deadline {
                return Err(self.error(
                    ErrorKind::TimedOut,
                    format!(
                        "no answer to COM-PORT-OPTION within {timeout:?}: is this a `telnet(rfc2217)` accepter? (a raw `tcp` accepter is `tcp://`)"
                    ),
                ));
            }
            self.fill(&mut answers)?;
        }
        if self.client().com_port() == ComPort::Refused {
            return Err(self.error(
                ErrorKind::Unsupported,
                "the server refuses COM-PORT-OPTION (RFC 2217): give the accepter `telnet(rfc2217)`, or use `tcp://` for a raw accepter".to_string(),
            ));
        }
        let control = match settings.flow_control {
            FlowControl::None => rfc2217::CONTROL_NONE,
            FlowControl::Software => rfc2217::CONTROL_XONXOFF,
            FlowControl::Hardware => rfc2217::CONTROL_HARDWARE,
        };
        let requests = [
            Request::Baud(settings.baud),
            Request::DataSize(8),
            Request::Parity(rfc2217::PARITY_NONE),
            Request::StopSize(rfc2217::STOPSIZE_1),
            Request::Control(control),
            Request::Purge(rfc2217::PURGE_BOTH),
        ];
        let mut wire = Vec::new();
        for request in requests {
            request.encode_into(&mut wire);
        }
        self.send(&wire)?;
        // Each setting answered with the value applied; the purge answered last.
        let mut applied = Applied::default();
        loop {
            for answer in answers.drain(..) {
                applied.take(answer);
            }
            if applied.complete() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(self.error(
                    ErrorKind::TimedOut,
                    format!(
                        "the server did not answer all the line settings within {timeout:?} (answered: {applied:?})"
                    ),
                ));
            }
            self.fill(&mut answers)?;
        }
        let want = Applied {
            baud: Some(settings.baud),
            data_size: Some(8),
            parity: Some(rfc2217::PARITY_NONE),
            stop_size: Some(rfc2217::STOPSIZE_1),
            control: Some(control),
            purged: true,
        };
        if applied.baud != want.baud {
            return Err(self.error(
                ErrorKind::Unsupported,
                format!(
                    "the server refused the baud rate {} (it applied {})",
                    settings.baud,
                    applied.baud.unwrap_or(0)
                ),
            ));
        }
        if applied != want {
            return Err(self.error(
                ErrorKind::Unsupported,
                format!("the server applied {applied:?} instead of {want:?}"),
            ));
        }
        // What the module sent before the purge is stale, as a local port's clear drops it.
        self.data.clear();
        Ok(())
    }

    fn client(&self) -> &Client {
        self.telnet.as_ref().expect("negotiate sets the client first")
    }

    fn send(&mut self, wire: &[u8]) -> Result<(), ChannelError> {
        self.stream.write_all(wire).map_err(|e| self.io_error(e))
    }

    /// Takes wire bytes (console data to `self.data`, COM-PORT answers to `answers`) and
    /// sends what the negotiation answers.
    fn take_wire(&mut self, wire: &[u8], answers: &mut Vec<Answer>) -> Result<(), ChannelError> {
        let Some(client) = self.telnet.as_mut() else {
            self.data.extend_from_slice(wire);
            return Ok(());
        };
        let mut reply = Vec::new();
        client.receive(wire, &mut self.data, &mut reply);
        answers.extend(client.take_answers());
        if !reply.is_empty() {
            self.send(&reply)?;
        }
        Ok(())
    }

    /// Reads what arrives within a slice (possibly nothing).
    fn fill(&mut self, answers: &mut Vec<Answer>) -> Result<(), ChannelError> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(self.closed()),
            Ok(n) => self.take_wire(&buf[..n], answers),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    fn closed(&self) -> ChannelError {
        self.error(ErrorKind::UnexpectedEof, "the server closed the connection".to_string())
    }

    fn hand_out(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data.drain(..n);
        n
    }
}

/// The line settings an RFC 2217 server says it applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Applied {
    baud: Option<u32>,
    data_size: Option<u8>,
    parity: Option<u8>,
    stop_size: Option<u8>,
    control: Option<u8>,
    purged: bool,
}

impl Applied {
    fn take(&mut self, answer: Answer) {
        match answer {
            Answer::Baud(v) => self.baud = Some(v),
            Answer::DataSize(v) => self.data_size = Some(v),
            Answer::Parity(v) => self.parity = Some(v),
            Answer::StopSize(v) => self.stop_size = Some(v),
            Answer::Control(v) => self.control = Some(v),
            Answer::Purge(_) => self.purged = true,
            // Line and modem state notifications, signatures, flow suspend/resume: nothing
            // the console needs.
            _ => {}
        }
    }

    fn complete(&self) -> bool {
        self.baud.is_some()
            && self.data_size.is_some()
            && self.parity.is_some()
            && self.stop_size.is_some()
            && self.control.is_some()
            && self.purged
    }
}

impl ByteLink for NetLink {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        if self.telnet.is_some() {
            let mut wire = Vec::with_capacity(bytes.len() + 8);
            rfc2217::escape_into(bytes, &mut wire);
            self.send(&wire)
        } else {
            self.send(bytes)
        }
    }

    fn read_slice(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        if interrupt::requested() {
            return Err(ChannelError::Interrupted);
        }
        if self.data.is_empty() {
            // Notifications (line state, modem state) are tolerated and dropped.
            self.fill(&mut Vec::new())?;
        }
        Ok(self.hand_out(buf))
    }

    fn drain(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.stream.set_nonblocking(true).map_err(|e| self.io_error(e))?;
        let mut buf = [0u8; 4096];
        let result = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break Err(self.closed()),
                Ok(n) => {
                    if let Err(e) = self.take_wire(&buf[..n], &mut Vec::new()) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(self.io_error(e)),
            }
        };
        let restored = self.stream.set_nonblocking(false).map_err(|e| self.io_error(e));
        result.and(restored)?;
        Ok(std::mem::take(&mut self.data))
    }
}

impl NetLink {
    /// The URL the link was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::tcp("tcp://lab-host:3001", NetProtocol::Tcp, "lab-host", 3001)]
    #[case::rfc2217("rfc2217://10.0.0.5:2217", NetProtocol::Rfc2217, "10.0.0.5", 2217)]
    #[case::trailing_slash("rfc2217://127.0.0.1:4000/", NetProtocol::Rfc2217, "127.0.0.1", 4000)]
    #[case::ipv6("tcp://[::1]:3001", NetProtocol::Tcp, "::1", 3001)]
    fn parses_urls(
        #[case] url: &str,
        #[case] protocol: NetProtocol,
        #[case] host: &str,
        #[case] port: u16,
    ) {
        let parsed: NetPort = url.parse().expect("valid");
        assert_eq!(parsed, NetPort { protocol, host: host.into(), port });
        assert_eq!(parsed.to_string(), url.trim_end_matches('/'));
    }

    #[rstest]
    #[case::scheme("telnet://h:1", "is not `tcp://HOST:PORT` or `rfc2217://HOST:PORT`")]
    #[case::no_port("tcp://h", "needs a port")]
    #[case::port_zero("tcp://h:0", "needs a port")]
    #[case::port_big("tcp://h:70000", "needs a port")]
    #[case::port_sign("tcp://h:+80", "needs a port")]
    #[case::no_host("rfc2217://:2217", "has no host")]
    #[case::bare_ipv6("tcp://::1:80", "has no host")]
    #[case::path("tcp://h:1/dev/ttyUSB0", "more than a host and a port")]
    #[case::user("tcp://me@h:1", "more than a host and a port")]
    #[case::space("tcp://h :1", "more than a host and a port")]
    fn rejects_malformed_urls(#[case] url: &str, #[case] message: &str) {
        let e = url.parse::<NetPort>().expect_err("malformed");
        assert!(e.to_string().contains(message), "{url}: {e}");
    }

    #[test]
    fn a_refused_connection_is_a_link_error() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind")
            .port();
        let target = NetPort { protocol: NetProtocol::Tcp, host: "127.0.0.1".into(), port };
        let settings = LineSettings { baud: 115_200, flow_control: FlowControl::None };
        let e = NetLink::connect(&target, &settings, Duration::from_secs(2)).expect_err("refused");
        assert!(e.is_infrastructure(), "{e}");
        assert!(e.to_string().contains(&format!("tcp://127.0.0.1:{port}")), "{e}");
    }
}

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
use super::rfc2217::{self, Answer, Client, ComPort, ComPortRequest};
use crate::interrupt;
use serialport::FlowControl;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long a raw connection is watched after connecting for the server to turn it away.
const RAW_SETTLE: Duration = Duration::from_millis(60);

/// Whether the server took the connection and closed it again (busy, not absent): the
/// client reads the end of the stream, or its write or read meets the closed connection.
fn turned_away(e: &ChannelError) -> bool {
    matches!(e, ChannelError::Link { source, .. }
    if matches!(
        source.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    ))
}

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
    /// A purge was asked for and not answered yet.
    awaiting_purge: bool,
}

impl NetLink {
    /// Connects (each address the host resolves to in turn, up to `timeout` each) and, for
    /// `rfc2217://`, negotiates and applies `settings`, waiting up to `timeout` for the
    /// server's answers. Console output waiting at the server is purged, as opening a local
    /// port clears its buffers.
    ///
    /// A server that takes the connection and then turns the client away (ser2net does for
    /// a few milliseconds after the previous client left, while it closes the device; or
    /// for as long as another client holds it) is asked again until `timeout` has passed.
    pub fn connect(
        port: &NetPort,
        settings: &LineSettings,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let deadline = Instant::now() + timeout;
        loop {
            match Self::attempt(port, settings, timeout) {
                Err(e) if turned_away(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                done => return done,
            }
        }
    }

    fn attempt(
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
        let mut link = Self { stream, name, telnet: None, data: Vec::new(), awaiting_purge: false };
        match port.protocol {
            NetProtocol::Rfc2217 => link.negotiate(settings, timeout)?,
            NetProtocol::Tcp => link.settle()?,
        }
        Ok(link)
    }

    /// A raw connection has no answer that says the server took it: reads for a moment, so
    /// a server that turns the client away (and closes) says so here. What the module sent
    /// meanwhile is dropped, as opening a local port clears its buffers.
    fn settle(&mut self) -> Result<(), ChannelError> {
        let until = Instant::now() + RAW_SETTLE;
        while Instant::now() < until {
            self.fill(&mut Vec::new())?;
        }
        self.data.clear();
        Ok(())
    }

    fn error(&self, kind: ErrorKind, text: String) -> ChannelError {
        ChannelError::Link { link: self.name.clone(), source: std::io::Error::new(kind, text) }
    }

    fn io_error(&self, source: std::io::Error) -> ChannelError {
        ChannelError::Link { link: self.name.clone(), source }
    }

    /// The telnet opening, then the line settings, each answer checked.
    fn negotiate(
        &mut self,
        settings: &LineSettings,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let mut client = Client::new();
        let opening = client.start();
        self.telnet = Some(client);
        // Until the purge is answered, output is read byte by byte to drop what came first.
        self.awaiting_purge = true;
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
            ComPortRequest::Baud(settings.baud),
            ComPortRequest::DataSize(8),
            ComPortRequest::Parity(rfc2217::PARITY_NONE),
            ComPortRequest::StopSize(rfc2217::STOPSIZE_1),
            ComPortRequest::Control(control),
            ComPortRequest::Purge(rfc2217::PURGE_BOTH),
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
        let fields = [
            ("data size", applied.data_size, want.data_size),
            ("parity", applied.parity, want.parity),
            ("stop size", applied.stop_size, want.stop_size),
            ("flow control", applied.control, want.control),
        ];
        let wrong: Vec<String> = fields
            .iter()
            .filter(|(_, got, want)| got != want)
            .map(|(name, got, want)| {
                format!("{name} {} (asked {})", got.unwrap_or(0), want.unwrap_or(0))
            })
            .collect();
        if !wrong.is_empty() {
            return Err(self.error(
                ErrorKind::Unsupported,
                format!("the server applied other line settings: {}", wrong.join(", ")),
            ));
        }
        Ok(())
    }

    fn client(&self) -> &Client {
        self.telnet.as_ref().expect("negotiate sets the client first")
    }

    fn send(&mut self, wire: &[u8]) -> Result<(), ChannelError> {
        self.stream.write_all(wire).map_err(|e| self.io_error(e))
    }

    /// Takes wire bytes (console data to `self.data`, COM-PORT answers to `answers`); what
    /// the negotiation answers goes to `reply`, for the caller to send.
    fn take_wire(&mut self, wire: &[u8], answers: &mut Vec<Answer>, reply: &mut Vec<u8>) {
        let Some(client) = self.telnet.as_mut() else {
            self.data.extend_from_slice(wire);
            return;
        };
        if self.awaiting_purge {
            // What the module sent before the purge is stale (a local port's clear drops it
            // too), what follows it is not: byte by byte to tell them apart.
            for b in wire {
                client.receive(std::slice::from_ref(b), &mut self.data, reply);
                for answer in client.take_answers() {
                    if matches!(answer, Answer::Purge(_)) {
                        self.data.clear();
                        self.awaiting_purge = false;
                    }
                    answers.push(answer);
                }
            }
        } else {
            client.receive(wire, &mut self.data, reply);
            answers.extend(client.take_answers());
        }
    }

    /// Reads what arrives within a slice (possibly nothing).
    fn fill(&mut self, answers: &mut Vec<Answer>) -> Result<(), ChannelError> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(self.closed()),
            Ok(n) => {
                let mut reply = Vec::new();
                self.take_wire(&buf[..n], answers, &mut reply);
                if reply.is_empty() { Ok(()) } else { self.send(&reply) }
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// The server closed the connection; what it said last, if it was not read yet
    /// (`ser2net` says why it turns a client away: `Port's device already in use`).
    fn closed(&self) -> ChannelError {
        let said = String::from_utf8_lossy(&self.data);
        let text = match said.trim() {
            "" => "the server closed the connection".to_string(),
            said => format!("the server closed the connection, saying `{}`", said.escape_debug()),
        };
        self.error(ErrorKind::UnexpectedEof, text)
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
        // Negotiation answers are sent once the socket blocks again (a full send buffer
        // must not fail them).
        let mut reply = Vec::new();
        let result = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break Err(self.closed()),
                Ok(n) => self.take_wire(&buf[..n], &mut Vec::new(), &mut reply),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(self.io_error(e)),
            }
        };
        let restored = self.stream.set_nonblocking(false).map_err(|e| self.io_error(e));
        result.and(restored)?;
        if !reply.is_empty() {
            self.send(&reply)?;
        }
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

    const IAC: u8 = rfc2217::IAC;

    /// A COM-PORT answer from the server: `IAC SB 44 code value IAC SE`.
    fn answer(code: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![IAC, 250, 44, code];
        rfc2217::escape_into(value, &mut out);
        out.extend_from_slice(&[IAC, 240]);
        out
    }

    /// All the answers of a server that applies `baud`, 8N1, no flow control.
    fn applies(baud: u32) -> Vec<u8> {
        applies_with(baud, rfc2217::CONTROL_NONE)
    }

    /// All the answers of a server that applies `baud`, 8N1 and `control`.
    fn applies_with(baud: u32, control: u8) -> Vec<u8> {
        let mut out = vec![IAC, 253, 44];
        out.extend(answer(112, &[3]));
        out.extend(answer(101, &baud.to_be_bytes()));
        for (code, value) in [(102, 8), (103, 1), (104, 1), (105, control)] {
            out.extend(answer(code, &[value]));
        }
        out
    }

    /// What ser2net says when it turns a client away.
    fn busy() -> Vec<u8> {
        [&[IAC, 253, 44][..], b"Port's device already in use\r\n"].concat()
    }

    /// A server on loopback that takes one connection per script: sends the script (and
    /// with `true` closes its side), then reads until the client goes. What the last client
    /// sent.
    fn server(scripts: Vec<(Vec<u8>, bool)>) -> (NetPort, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            for (script, hang_up) in scripts {
                let (mut stream, _) = listener.accept().expect("accept");
                stream.write_all(&script).expect("send the script");
                if hang_up {
                    stream.shutdown(std::net::Shutdown::Write).expect("close");
                }
                got.clear();
                let _ = stream.read_to_end(&mut got);
            }
            got
        });
        (NetPort { protocol: NetProtocol::Rfc2217, host: "127.0.0.1".into(), port }, thread)
    }

    /// What an RFC 2217 server answers at connect, and what the client makes of it.
    #[rstest]
    #[case::applied(vec![(applies(115_200), false)], Ok(()))]
    #[case::other_baud(
        vec![(applies(9600), false)],
        Err("the server refused the baud rate 115200 (it applied 9600)")
    )]
    #[case::no_com_port(vec![(vec![IAC, 254, 44], false)], Err("the server refuses COM-PORT-OPTION"))]
    #[case::turned_away_once(vec![(busy(), true), (applies(115_200), false)], Ok(()))]
    #[case::silent(vec![(vec![], false)], Err("no answer to COM-PORT-OPTION within 300ms"))]
    #[case::other_parity(
        vec![([applies(115_200), answer(103, &[3])].concat(), false)],
        Err("the server applied other line settings: parity 3 (asked 1)")
    )]
    fn checks_the_server_answers(
        #[case] scripts: Vec<(Vec<u8>, bool)>,
        #[case] want: Result<(), &str>,
    ) {
        let (target, server) = server(scripts);
        let settings = LineSettings { baud: 115_200, flow_control: FlowControl::None };
        let got = NetLink::connect(&target, &settings, Duration::from_millis(300));
        match (got, want) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(want)) => {
                assert!(e.is_infrastructure(), "{e}");
                assert!(e.to_string().contains(want), "{e}");
            }
            (got, want) => panic!("{:?} instead of {want:?}", got.map(|_| ())),
        }
        server.join().expect("server");
    }

    #[rstest]
    #[case::rfc2217(NetProtocol::Rfc2217)]
    #[case::tcp(NetProtocol::Tcp)]
    fn a_server_that_stays_busy_is_asked_until_the_timeout(#[case] protocol: NetProtocol) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let busy_server = std::thread::spawn(move || {
            listener.set_nonblocking(true).expect("nonblocking");
            let mut turned_away = 0;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).expect("blocking");
                        stream.write_all(&busy()).expect("send");
                        stream.shutdown(std::net::Shutdown::Write).expect("close");
                        let _ = stream.read_to_end(&mut Vec::new());
                        turned_away += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            turned_away
        });
        let target = NetPort { protocol, host: "127.0.0.1".into(), port };
        let settings = LineSettings { baud: 115_200, flow_control: FlowControl::None };
        let started = Instant::now();
        let e = NetLink::connect(&target, &settings, Duration::from_millis(300))
            .expect_err("always busy");
        let took = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let turned_away = busy_server.join().expect("server");
        assert!(e.to_string().contains("already in use"), "{e}");
        assert!(e.is_infrastructure(), "{e}");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
        assert!(turned_away >= 2, "asked {turned_away} times");
    }

    #[test]
    fn console_bytes_cross_the_telnet_layer_unchanged() {
        // Output the module sent before the purge is stale.
        let mut script = b"stale".to_vec();
        script.extend(applies_with(115_200, rfc2217::CONTROL_HARDWARE));
        // After the settings: console output with a 0xff byte, escaped, and a notification.
        script.extend_from_slice(&[b'R', b'0', IAC, IAC, b'!']);
        script.extend(answer(106, &[0x60]));
        script.extend_from_slice(b"\r\n");
        let (target, server) = server(vec![(script, false)]);
        let settings = LineSettings { baud: 115_200, flow_control: FlowControl::Hardware };
        let mut link = NetLink::connect(&target, &settings, Duration::from_secs(5)).expect("up");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"\r\n") {
            assert!(Instant::now() < deadline, "got only {got:?}");
            let n = link.read_slice(&mut buf).expect("read");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, [b'R', b'0', IAC, b'!', b'\r', b'\n']);
        link.write_all(&[b'a', IAC, b'b']).expect("write");
        drop(link);
        let sent = server.join().expect("server");
        // The opening, the settings (hardware flow control), then the data with IAC doubled.
        assert!(sent.starts_with(&[IAC, 251, 0, IAC, 251, 3, IAC, 251, 44]), "{sent:?}");
        assert!(sent.windows(7).any(|w| w == [IAC, 250, 44, 5, 3, IAC, 240]), "{sent:?}");
        assert!(sent.ends_with(&[b'a', IAC, IAC, b'b']), "{sent:?}");
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

//! Clients the harness opens towards the module, from inside the lab: TCP connections, UDP
//! sockets on several lab addresses, connection floods, and the spec tables' actions.

use super::misbehave::{self, Identity, Misbehaved};
use super::tls::{Expect, Link, TlsConnectSpec, TlsRecord};
use super::vocab::TlsMisbehaveSpec;
use super::{
    ClientAction, FloodSpec, PeerError, UdpSendSpec, check_lab_addr, describe_mismatch, pattern,
};
use crate::lab::Lab;
use crate::pki::Pki;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a [`TcpClient::connect`] waits for the module.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most connections one [`flood`] opens.
pub const FLOOD_MAX: usize = 10_000;
/// The most threads one [`flood`] connects from at once.
pub const FLOOD_THREADS: usize = 256;

fn connect_err(lab: &Lab, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> PeerError + '_ {
    move |source| PeerError::Connect { addr, netns: lab.netns_name().to_string(), source }
}

/// A TCP connection from the lab to the module (or to anything in the lab), plain or TLS
/// (after [`TcpClient::start_tls`]).
#[derive(Debug)]
pub struct TcpClient {
    stream: Link,
    remote: SocketAddr,
    tls: Option<TlsRecord>,
}

impl TcpClient {
    /// Connects from inside the lab to `ip:port`, waiting up to [`CONNECT_TIMEOUT`].
    /// A refusal is an error for which [`PeerError::is_refused`] holds.
    pub fn connect(lab: &Lab, ip: Ipv4Addr, port: u16) -> Result<TcpClient, PeerError> {
        Self::connect_timeout(lab, SocketAddr::from((ip, port)), CONNECT_TIMEOUT)
    }

    pub fn connect_timeout(
        lab: &Lab,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpClient, PeerError> {
        let timeout = timeout.max(Duration::from_millis(1));
        // The host asks the module for its address first: that request teaches a module that
        // was just reset the host's (see `Lab::forget_neighbour`).
        if let std::net::IpAddr::V4(ip) = addr.ip() {
            lab.forget_neighbour(ip)?;
        }
        let stream = lab
            .run_in(|| TcpStream::connect_timeout(&addr, timeout))?
            .map_err(connect_err(lab, addr))?;
        let _ = stream.set_nodelay(true);
        Ok(TcpClient { stream: Link::Tcp(stream), remote: addr, tls: None })
    }

    /// Connects and does a TLS handshake as `spec` says. `Ok(Err(reason))`: the handshake
    /// failed (OpenSSL's reason); `Err`: the harness could not try.
    pub fn connect_tls(
        lab: &Lab,
        ip: Ipv4Addr,
        spec: &TlsConnectSpec,
        pki: Option<&Pki>,
    ) -> Result<Result<TcpClient, String>, PeerError> {
        let c = Self::connect(lab, ip, spec.port)?;
        c.start_tls(spec, pki)
    }

    /// A TLS handshake on this plain connection (see [`TcpClient::connect_tls`]).
    pub fn start_tls(
        self,
        spec: &TlsConnectSpec,
        pki: Option<&Pki>,
    ) -> Result<Result<TcpClient, String>, PeerError> {
        let Link::Tcp(stream) = self.stream else {
            return Ok(Err("already TLS".into()));
        };
        let remote = self.remote;
        let tried = super::tls::connect(spec, pki, stream).map_err(|m| PeerError::Io {
            what: format!("TLS to {remote}"),
            source: std::io::Error::other(m),
        })?;
        Ok(tried.map(|(s, record)| TcpClient {
            stream: Link::Tls(Box::new(s)),
            remote,
            tls: Some(record),
        }))
    }

    /// What the TLS handshake negotiated (`None` for plain TCP).
    pub fn tls(&self) -> Option<&TlsRecord> {
        self.tls.as_ref()
    }

    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.stream.tcp().local_addr()
    }
    /// The TCP connection (under TLS, the one TLS runs on).
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Sends all of `data` (waiting up to 10 s for room).
    pub fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.stream.tcp().set_write_timeout(Some(Duration::from_secs(10)))?;
        self.stream.write_all(data)
    }

    /// Reads until `n` bytes came, the stream ended or `timeout` passed; returns what came.
    pub fn receive(&mut self, n: usize, timeout: Duration) -> std::io::Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::with_capacity(n.min(1 << 20));
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream.tcp().set_read_timeout(Some(left))?;
            let want = (n - got.len()).min(buf.len());
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Reads until the other side closes (or `timeout`); returns what came and whether the
    /// stream ended.
    pub fn receive_to_end(&mut self, timeout: Duration) -> std::io::Result<(Vec<u8>, bool)> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok((got, false));
            }
            self.stream.tcp().set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok((got, true)),
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok((got, false));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Exactly `expected` next, within `timeout`; `Err` says what came instead.
    pub fn expect(&mut self, expected: &[u8], timeout: Duration) -> Result<(), ClientError> {
        let got = self
            .receive(expected.len(), timeout)
            .map_err(|e| ClientError::Fail(format!("receive from {}: {e}", self.remote)))?;
        if got == expected {
            Ok(())
        } else {
            Err(ClientError::Fail(format!(
                "from {} within {timeout:?}: {}",
                self.remote,
                describe_mismatch(expected, &got)
            )))
        }
    }

    /// The other side closes (end of stream, no more bytes) within `timeout`.
    pub fn expect_closed(&mut self, timeout: Duration) -> Result<(), ClientError> {
        match self.receive_to_end(timeout) {
            Ok((got, true)) if got.is_empty() => Ok(()),
            Ok((got, ended)) => Err(ClientError::Fail(format!(
                "{} {}after {} more bytes (`{}`)",
                self.remote,
                if ended { "closed " } else { "did not close " },
                got.len(),
                crate::text::escape_bytes(&got[..got.len().min(64)])
            ))),
            // A reset is a close too.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            Err(e) => Err(ClientError::Fail(format!("receive from {}: {e}", self.remote))),
        }
    }

    /// Half-closes: sends FIN (TLS: close_notify first), can still receive.
    pub fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.stream.shutdown_write()
    }

    /// Closes the connection (TLS: close_notify first).
    pub fn close(mut self) {
        self.stream.close();
    }
}

/// UDP sockets inside the lab, each on its own source address or port ("several clients").
#[derive(Debug)]
pub struct UdpClient {
    sockets: Vec<UdpSocket>,
}

impl UdpClient {
    /// One socket per source (each a lab address or loopback; port 0: any free port).
    pub fn bind(lab: &Lab, sources: &[SocketAddr]) -> Result<UdpClient, PeerError> {
        for s in sources {
            match s {
                SocketAddr::V4(v4) => check_lab_addr(lab, *v4.ip())?,
                SocketAddr::V6(_) => {
                    return Err(PeerError::Io {
                        what: format!("bind {s}"),
                        source: std::io::Error::other("the lab has no IPv6"),
                    });
                }
            }
        }
        let sockets = lab.run_in(|| {
            sources
                .iter()
                .map(|a| {
                    UdpSocket::bind(a).map_err(PeerError::io(format!("bind udp {a} in the lab")))
                })
                .collect::<Result<Vec<_>, _>>()
        })??;
        Ok(UdpClient { sockets })
    }

    /// `n` sockets: on distinct lab addresses first (the router, then the lab hosts), then
    /// on distinct ports of those.
    pub fn several(lab: &Lab, n: usize) -> Result<UdpClient, PeerError> {
        let mut addrs: Vec<Ipv4Addr> = vec![lab.router_ip()];
        for h in &lab.config().hosts {
            if !addrs.contains(&h.addr) && !h.addr.is_loopback() {
                addrs.push(h.addr);
            }
        }
        let sources: Vec<SocketAddr> =
            (0..n).map(|i| SocketAddr::from((addrs[i % addrs.len()], 0))).collect();
        Self::bind(lab, &sources)
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().filter_map(|s| s.local_addr().ok()).collect()
    }
    pub fn socket(&self, i: usize) -> Option<&UdpSocket> {
        self.sockets.get(i)
    }

    /// Sends one datagram from source `i`.
    pub fn send_from(&self, i: usize, to: SocketAddr, data: &[u8]) -> std::io::Result<()> {
        let s =
            self.sockets.get(i).ok_or_else(|| std::io::Error::other(format!("no source {i}")))?;
        let n = s.send_to(data, to)?;
        if n == data.len() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("sent {n} of {} bytes", data.len())))
        }
    }

    /// Sends one datagram from every source, in order.
    pub fn send_all(&self, to: SocketAddr, data: &[u8]) -> std::io::Result<()> {
        (0..self.sockets.len()).try_for_each(|i| self.send_from(i, to, data))
    }

    /// The next datagram source `i` receives, within `timeout`.
    pub fn recv_from(&self, i: usize, timeout: Duration) -> std::io::Result<(Vec<u8>, SocketAddr)> {
        let s =
            self.sockets.get(i).ok_or_else(|| std::io::Error::other(format!("no source {i}")))?;
        s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let mut buf = vec![0u8; 65536];
        let (n, from) = s.recv_from(&mut buf)?;
        buf.truncate(n);
        Ok((buf, from))
    }
}

/// What a [`flood`] saw. `attempted = connected + refused + timed_out + failed`; the
/// `requested - attempted` connections it had no time left to start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FloodReport {
    pub requested: usize,
    pub attempted: usize,
    pub connected: usize,
    pub refused: usize,
    pub timed_out: usize,
    /// Other errors (unreachable, out of file descriptors, …).
    pub failed: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl std::fmt::Display for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "flood: {} requested, {} attempted, {} connected, {} refused, {} timed out, {} failed \
             in {:?}",
            self.requested,
            self.attempted,
            self.connected,
            self.refused,
            self.timed_out,
            self.failed,
            self.elapsed
        )?;
        if let Some(e) = &self.first_error {
            write!(f, " (first error: {e})")?;
        }
        Ok(())
    }
}

/// Opens `n` TCP connections to `ip:port` from inside the lab at once (up to
/// [`FLOOD_THREADS`] connects in flight), all within `timeout`; keeps the ones that connect
/// open until every attempt is done, then closes them all. Returns within about `timeout`.
pub fn flood(
    lab: &Lab,
    ip: Ipv4Addr,
    port: u16,
    n: usize,
    timeout: Duration,
) -> Result<FloodReport, PeerError> {
    if n > FLOOD_MAX {
        return Err(PeerError::Io {
            what: format!("flood of {n} connections"),
            source: std::io::Error::other(format!("at most {FLOOD_MAX}")),
        });
    }
    let addr = SocketAddr::from((ip, port));
    let started = Instant::now();
    let deadline = started + timeout;
    let next = AtomicUsize::new(0);
    let report = Mutex::new(FloodReport { requested: n, ..FloodReport::default() });
    let open: Mutex<Vec<TcpStream>> = Mutex::new(Vec::with_capacity(n));
    lab.run_in(|| {
        // Threads started here are in the lab's namespace too (they inherit this thread's).
        std::thread::scope(|s| {
            for w in 0..n.min(FLOOD_THREADS) {
                let worker = || loop {
                    if next.fetch_add(1, Ordering::Relaxed) >= n {
                        return;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left < Duration::from_millis(1) {
                        return;
                    }
                    let result = TcpStream::connect_timeout(&addr, left);
                    let mut r = report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    r.attempted += 1;
                    match result {
                        Ok(stream) => {
                            r.connected += 1;
                            drop(r);
                            open.lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(stream);
                        }
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => r.refused += 1,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
                        {
                            r.timed_out += 1;
                        }
                        Err(e) => {
                            r.failed += 1;
                            r.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("flood-{w}"))
                    .stack_size(64 * 1024)
                    .spawn_scoped(s, worker);
                if spawned.is_err() && w == 0 {
                    // Not even one thread: connect from this one.
                    worker();
                }
            }
        });
    })?;
    for stream in open.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let mut report = report.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Why a client action did not go as the case wanted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The module did not do what the case expects: the case fails.
    #[error("{0}")]
    Fail(String),
    /// The harness could not do the action: an infrastructure error.
    #[error(transparent)]
    Infra(#[from] PeerError),
}

/// Runs a case's [`ClientAction`]s against the module at `module_ip`. TCP actions after a
/// `connect` use the newest connection. Closes everything on drop.
#[derive(Debug)]
pub struct Clients<'lab> {
    lab: &'lab Lab,
    module_ip: Ipv4Addr,
    tcp: Vec<TcpClient>,
    timeout: Duration,
    floods: Vec<FloodReport>,
    pki: Option<Arc<Pki>>,
}

impl<'lab> Clients<'lab> {
    pub fn new(lab: &'lab Lab, module_ip: Ipv4Addr) -> Self {
        Clients {
            lab,
            module_ip,
            tcp: Vec::new(),
            timeout: Duration::from_secs(2),
            floods: Vec::new(),
            pki: None,
        }
    }

    /// The run's PKI, for `tls_connect`'s certificates.
    pub fn with_pki(mut self, pki: Arc<Pki>) -> Self {
        self.pki = Some(pki);
        self
    }

    /// How long `receive`, `expect_closed` and UDP replies wait (default 2 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn module_ip(&self) -> Ipv4Addr {
        self.module_ip
    }
    /// The open TCP connections, oldest first.
    pub fn connections(&mut self) -> &mut [TcpClient] {
        &mut self.tcp
    }
    /// The reports of the floods run so far.
    pub fn floods(&self) -> &[FloodReport] {
        &self.floods
    }

    fn newest(&mut self, what: &str) -> Result<&mut TcpClient, ClientError> {
        self.tcp
            .last_mut()
            .ok_or_else(|| ClientError::Fail(format!("`{what}` needs a `connect` before it")))
    }

    /// Does `action`; `Ok` carries a line for the transcript.
    pub fn run(&mut self, action: &ClientAction) -> Result<String, ClientError> {
        let ip = self.module_ip;
        let timeout = self.timeout;
        match action {
            ClientAction::Connect(port) => match TcpClient::connect(self.lab, ip, *port) {
                Ok(c) => {
                    let line = format!("connected to {ip}:{port}");
                    self.tcp.push(c);
                    Ok(line)
                }
                Err(e @ PeerError::Connect { .. }) => Err(ClientError::Fail(e.to_string())),
                Err(e) => Err(e.into()),
            },
            ClientAction::ConnectRefused(port) => match TcpClient::connect(self.lab, ip, *port) {
                Ok(_) => Err(ClientError::Fail(format!(
                    "connect to {ip}:{port}: connected, expected it refused"
                ))),
                Err(e) if e.is_refused() => Ok(format!("connect to {ip}:{port}: refused")),
                Err(e @ PeerError::Connect { .. }) => {
                    Err(ClientError::Fail(format!("{e} (expected it refused)")))
                }
                Err(e) => Err(e.into()),
            },
            ClientAction::Send(bytes) => {
                let c = self.newest("send")?;
                c.send(&bytes.0)
                    .map_err(|e| ClientError::Fail(format!("send to {}: {e}", c.remote)))?;
                Ok(format!("sent {} bytes to {}", bytes.0.len(), c.remote))
            }
            ClientAction::Receive(bytes) => {
                let c = self.newest("receive")?;
                c.expect(&bytes.0, timeout)?;
                Ok(format!("received {} bytes from {}", bytes.0.len(), c.remote))
            }
            ClientAction::ReceivePattern(n) => {
                let c = self.newest("receive_pattern")?;
                c.expect(&pattern(*n), timeout)?;
                Ok(format!("received the {n}-byte pattern from {}", c.remote))
            }
            ClientAction::ExpectClosed(_) => {
                let c = self.newest("expect_closed")?;
                c.expect_closed(timeout)?;
                Ok(format!("{} closed", c.remote))
            }
            ClientAction::ReceiveToClose(spec) => {
                let c = self.newest("receive_to_close")?;
                let within = spec.within_ms.map_or(timeout, Duration::from_millis);
                let (got, ended) = match c.receive_to_end(within) {
                    Ok(done) => done,
                    // A reset ends the stream too.
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => (Vec::new(), true),
                    Err(e) => {
                        return Err(ClientError::Fail(format!("receive from {}: {e}", c.remote)));
                    }
                };
                let text = crate::text::escape_bytes(&got[..got.len().min(400)]);
                if !ended {
                    return Err(ClientError::Fail(format!(
                        "{} did not close within {within:?}; received {} bytes (`{text}`)",
                        c.remote,
                        got.len()
                    )));
                }
                if !spec.regex.0.is_match(&got) {
                    return Err(ClientError::Fail(format!(
                        "{} sent {} bytes before closing that do not match `{}`: `{text}`",
                        c.remote,
                        got.len(),
                        spec.regex.0.as_str()
                    )));
                }
                let line = format!(
                    "received {} bytes from {} until it closed: `{text}`",
                    got.len(),
                    c.remote
                );
                // The connection is over: close our side too, so the module's socket is free
                // at once (the next action's newest connection is the one before it).
                if let Some(c) = self.tcp.pop() {
                    c.close();
                }
                Ok(line)
            }
            ClientAction::Close(_) => {
                let c = self.tcp.pop().ok_or_else(|| {
                    ClientError::Fail("`close` needs a `connect` before it".into())
                })?;
                let line = format!("closed the connection to {}", c.remote);
                c.close();
                Ok(line)
            }
            ClientAction::UdpSend(spec) => self.udp_send(spec),
            ClientAction::Flood(spec) => self.flood(spec),
            ClientAction::TlsConnect(spec) => self.tls_connect(spec),
            ClientAction::TlsHostile(spec) => self.tls_hostile(spec),
        }
    }

    fn tls_hostile(&mut self, spec: &TlsMisbehaveSpec) -> Result<String, ClientError> {
        let ip = self.module_ip;
        let identity = match (spec.client_cert, self.pki.as_deref()) {
            (Some(m), Some(pki)) => Some(Identity::from_pki(pki, m).map_err(|e| {
                ClientError::Infra(PeerError::Io {
                    what: format!("the client certificate {}", m.name()),
                    source: std::io::Error::other(e),
                })
            })?),
            (Some(m), None) => {
                return Err(ClientError::Infra(PeerError::Io {
                    what: format!("the client certificate {}", m.name()),
                    source: std::io::Error::other("this run has no lab PKI"),
                }));
            }
            (None, _) => None,
        };
        let mut c = match TcpClient::connect(self.lab, ip, spec.port) {
            Ok(c) => c,
            Err(e @ PeerError::Connect { .. }) => return Err(ClientError::Fail(e.to_string())),
            Err(e) => return Err(e.into()),
        };
        let Link::Tcp(stream) = &mut c.stream else {
            return Err(ClientError::Fail("a new connection is not plain TCP".into()));
        };
        // The module's RSA decryption and signature checks take a while on a slow board.
        let timeout = self.timeout.max(Duration::from_secs(5));
        let outcome = misbehave::run(stream, spec, identity.as_ref(), timeout);
        let remote = c.remote;
        c.close();
        match outcome {
            Ok(line) => Ok(format!("TLS to {remote}: {line}")),
            Err(Misbehaved::Server(why)) => {
                Err(ClientError::Fail(format!("TLS to {remote}: {why}")))
            }
            Err(Misbehaved::Harness(why)) => Err(ClientError::Infra(PeerError::Io {
                what: format!("TLS to {remote}"),
                source: std::io::Error::other(why),
            })),
        }
    }

    fn tls_connect(&mut self, spec: &TlsConnectSpec) -> Result<String, ClientError> {
        let ip = self.module_ip;
        let port = spec.port;
        let plain = match TcpClient::connect(self.lab, ip, port) {
            Ok(c) => c,
            Err(e @ PeerError::Connect { .. }) => return Err(ClientError::Fail(e.to_string())),
            Err(e) => return Err(e.into()),
        };
        match (plain.start_tls(spec, self.pki.as_deref())?, spec.expect) {
            (Ok(c), Expect::Ok) => {
                let line = match c.tls() {
                    Some(t) => format!(
                        "TLS to {ip}:{port}: {} {}{}",
                        t.version.map_or("?", super::TlsVersion::as_str),
                        t.suite.as_deref().unwrap_or("?"),
                        if spec.client_cert.is_some() { " (client certificate sent)" } else { "" }
                    ),
                    None => format!("TLS to {ip}:{port}"),
                };
                self.tcp.push(c);
                Ok(line)
            }
            (Ok(c), Expect::Fail) => {
                let got = c.tls().and_then(|t| t.suite.clone()).unwrap_or_default();
                c.close();
                Err(ClientError::Fail(format!(
                    "TLS to {ip}:{port}: the handshake succeeded ({got}), expected it to fail"
                )))
            }
            (Err(why), Expect::Ok) => {
                Err(ClientError::Fail(format!("TLS to {ip}:{port}: handshake failed: {why}")))
            }
            (Err(why), Expect::Fail) => match &spec.error {
                Some(text) if !why.contains(text.as_str()) => Err(ClientError::Fail(format!(
                    "TLS to {ip}:{port}: the handshake failed, but not with `{text}`: {why}"
                ))),
                _ => Ok(format!("TLS to {ip}:{port}: handshake failed as expected: {why}")),
            },
        }
    }

    fn udp_send(&mut self, spec: &UdpSendSpec) -> Result<String, ClientError> {
        let to = SocketAddr::from((self.module_ip, spec.port));
        let clients = UdpClient::several(self.lab, spec.sources.max(1))?;
        clients
            .send_all(to, &spec.data.0)
            .map_err(|e| ClientError::Fail(format!("udp send to {to}: {e}")))?;
        let Some(reply) = &spec.reply else {
            return Ok(format!("sent a datagram to {to} from {:?}", clients.local_addrs()));
        };
        let within = spec.within_ms.map_or(self.timeout, Duration::from_millis);
        for (i, local) in clients.local_addrs().into_iter().enumerate() {
            match clients.recv_from(i, within) {
                Ok((got, from)) if got == reply.0 && from == to => {}
                Ok((got, from)) => {
                    return Err(ClientError::Fail(format!(
                        "udp reply to {local} from {from}: {}",
                        describe_mismatch(&reply.0, &got)
                    )));
                }
                Err(e) => {
                    return Err(ClientError::Fail(format!(
                        "no udp reply from {to} to {local} within {within:?} ({e})"
                    )));
                }
            }
        }
        Ok(format!("{} source(s) got the reply from {to}", clients.len()))
    }

    fn flood(&mut self, spec: &FloodSpec) -> Result<String, ClientError> {
        let report = flood(
            self.lab,
            self.module_ip,
            spec.port,
            spec.connections,
            Duration::from_millis(spec.timeout_ms),
        )?;
        let line = report.to_string();
        self.floods.push(report.clone());
        if let Some(max) = spec.expect_connected_max
            && report.connected > max
        {
            return Err(ClientError::Fail(format!("{line}: expected at most {max} connected")));
        }
        if let Some(min) = spec.expect_connected_min
            && report.connected < min
        {
            return Err(ClientError::Fail(format!("{line}: expected at least {min} connected")));
        }
        Ok(line)
    }
}

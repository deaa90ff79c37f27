//! Benchmarks. `hil bench serial`: command round trip through the harness against a module,
//! beside a raw floor on the same port (write the command bytes, read the framed reply,
//! nothing else). `hil bench transports`: the same for every transport, each beside its own
//! floor on the same module, serial beside a pexpect loop too, and REST under as many
//! clients at once as the module admits. `hil bench boards`: boot time to an answering
//! console and command round trip on the simulated module and the emulated board, side by side.
//! `hil bench tls` ([`tls`]): handshake time per TLS suite, the module beside OpenSSL, and
//! file throughput over HTTP and HTTPS.

pub mod tls;

use crate::channel::rest::HttpTarget;
use crate::channel::{Channel, Request};
use crate::rig::Rig;
use crate::session::Session;
use crate::transport::Transport;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a benchmark could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error(transparent)]
    Channel(#[from] crate::channel::ChannelError),
    #[error(transparent)]
    Run(#[from] crate::runner::RunError),
    #[error("the raw port: {0}")]
    Io(#[from] std::io::Error),
    #[error("lab peers: {0}")]
    Peers(#[from] crate::peers::PeerError),
    #[error(transparent)]
    Check(#[from] crate::peers::CheckError),
    #[error("rig `{rig}` has no lab network with an access point to join")]
    NoLab { rig: String },
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    #[error("lab PKI: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("certificate files on the module: {0}")]
    ModuleFile(#[from] crate::pki::ModuleFileError),
    /// The module, the suite or the arguments did not do what the benchmark needs.
    #[error("{0}")]
    Unexpected(String),
}

fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), BenchError> {
    if ok { Ok(()) } else { Err(BenchError::Unexpected(why())) }
}

/// Latency percentiles of one series.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub samples: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats { p50: at(0.50), p99: at(0.99), samples: samples.len() }
}

/// Both series.
#[derive(Clone, Copy, Debug)]
pub struct SerialBench {
    pub harness: Stats,
    pub raw: Stats,
}

/// Measures `iterations` round trips of `get wlan.ssid` each way.
pub fn serial(rig: &Rig, workdir: &Path, iterations: usize) -> Result<SerialBench, BenchError> {
    check(iterations >= 10, || "use at least 10 iterations".to_string())?;
    let mut session = Session::open(rig, workdir)?;
    session.control.resync(crate::channel::ConsoleFormat::Machine, rig.reboot_timeout)?;
    // A known value, so the raw floor knows how many bytes the reply has.
    let request = Request { line: "set wlan.ssid bench", data: None, timeout: rig.command_timeout };
    session.control.execute(&request)?;
    let request = Request { line: "get wlan.ssid", data: None, timeout: rig.command_timeout };
    let mut harness = Vec::with_capacity(iterations);
    for i in 0..iterations + iterations / 10 {
        let t = Instant::now();
        let reply = session.control.execute(&request)?;
        let took = t.elapsed();
        check(reply.code.0 == 0 && reply.text() == "bench", || {
            format!("unexpected reply {reply:?}")
        })?;
        if i >= iterations / 10 {
            harness.push(took);
        }
        if i % 1000 == 0 {
            session.control.restart();
        }
    }
    let port = session.control.endpoint();
    let Session { control, sim, .. } = session;
    drop(control);
    let expected: &[u8] = b"R000007\r\nbench\r\n";
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(&port)?;
    let mut raw = Vec::with_capacity(iterations);
    let mut buf = [0u8; 256];
    for i in 0..iterations + iterations / 10 {
        let t = Instant::now();
        file.write_all(b"get wlan.ssid\r\n")?;
        let mut got = 0;
        while got < expected.len() {
            let n = file.read(&mut buf[got..])?;
            check(n > 0, || "port closed".to_string())?;
            got += n;
        }
        let took = t.elapsed();
        check(&buf[..got] == expected, || format!("unexpected raw reply {:?}", &buf[..got]))?;
        if i >= iterations / 10 {
            raw.push(took);
        }
    }
    drop(sim);
    Ok(SerialBench { harness: stats(harness), raw: stats(raw) })
}

/// What `bench boards` measured on one rig.
#[derive(Clone, Debug)]
pub struct BoardBench {
    pub rig: String,
    /// Start of the module (process or QEMU, and a sim rig's lab) until its console answers,
    /// once per boot.
    pub boots: Vec<Duration>,
    /// `version` round trips through the harness, after warm-up.
    pub round_trip: Stats,
}

impl BoardBench {
    /// The fastest and the median boot.
    pub fn boot_min_median(&self) -> (Duration, Duration) {
        let mut b = self.boots.clone();
        b.sort_unstable();
        (b[0], b[b.len() / 2])
    }
}

/// Boots the rig's module `boots` times (each until its console answers a command) and, on
/// the last, times `iterations` round trips of `version` after a tenth as many as warm-up.
pub fn board(
    rig: &Rig,
    workdir: &Path,
    boots: usize,
    iterations: usize,
) -> Result<BoardBench, BenchError> {
    check(boots >= 1, || "boot at least once".to_string())?;
    check(iterations >= 10, || "use at least 10 iterations".to_string())?;
    let mut times = Vec::with_capacity(boots);
    let mut last = None;
    for i in 0..boots {
        let dir = workdir.join(format!("boot-{i}"));
        std::fs::create_dir_all(&dir)?;
        // The previous module is stopped first: one module at a time.
        drop(last.take());
        let t = Instant::now();
        let session = Session::open(rig, &dir)?;
        times.push(t.elapsed());
        last = Some(session);
    }
    let Some(mut session) = last else {
        return Err(BenchError::Unexpected("no boot".to_string()));
    };
    let request = Request { line: "version", data: None, timeout: rig.command_timeout };
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations + iterations / 10 {
        let t = Instant::now();
        let reply = session.control.execute(&request)?;
        let took = t.elapsed();
        check(reply.code.0 == 0 && !reply.text().is_empty(), || {
            format!("unexpected reply {reply:?}")
        })?;
        if i >= iterations / 10 {
            samples.push(took);
        }
    }
    drop(session);
    Ok(BoardBench { rig: rig.name.clone(), boots: times, round_trip: stats(samples) })
}

/// The table of `bench boards`: one row per rig, then the ratio of each rig to the first.
pub fn boards_report(benches: &[BoardBench]) -> Vec<String> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut out = vec![format!(
        "{:<14} {:>12} {:>12} {:>12} {:>12}",
        "rig", "boot min", "boot median", "rtt p50", "rtt p99"
    )];
    for b in benches {
        let (min, median) = b.boot_min_median();
        out.push(format!(
            "{:<14} {:>9.1} ms {:>9.1} ms {:>9.1} µs {:>9.1} µs",
            b.rig,
            ms(min),
            ms(median),
            us(b.round_trip.p50),
            us(b.round_trip.p99)
        ));
    }
    if let Some((first, rest)) = benches.split_first() {
        let (fmin, fmed) = first.boot_min_median();
        for b in rest {
            let (min, median) = b.boot_min_median();
            out.push(format!(
                "{:<14} {:>10.2}x {:>11.2}x {:>11.2}x {:>11.2}x",
                format!("{}/{}", b.rig, first.rig),
                ms(min) / ms(fmin),
                ms(median) / ms(fmed),
                us(b.round_trip.p50) / us(first.round_trip.p50),
                us(b.round_trip.p99) / us(first.round_trip.p99)
            ));
        }
    }
    out
}

/// What `bench suite` measured.
#[derive(Clone, Debug)]
pub struct SuiteBench {
    /// Mean time to bring up a rig instance and reach a synced console.
    pub setup: Duration,
    pub cases: usize,
    /// Suite wall time for each `--jobs` value measured.
    pub runs: Vec<(usize, Duration)>,
}

/// Times rig setup and the whole suite at each of `jobs`.
pub fn suite(
    specs: &crate::spec::Specs,
    rig: &Rig,
    workdir: &Path,
    jobs: &[usize],
) -> Result<SuiteBench, BenchError> {
    let mut setups = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        let session = Session::open(rig, &workdir.join(format!("setup-{i}")))?;
        setups.push(t.elapsed());
        drop(session);
    }
    let setup = setups.iter().sum::<Duration>() / setups.len() as u32;
    let mut runs = Vec::new();
    let mut cases = 0;
    for &j in jobs {
        let options = crate::runner::RunOptions {
            selection: crate::spec::Selection::default(),
            // As `hil run` does by default.
            retries: 1,
            reports_root: workdir.join(format!("reports-{j}")),
            progress: false,
            jobs: j,
            transports: None,
        };
        let t = Instant::now();
        let (run, _) = crate::runner::run(specs, rig, &options)?;
        runs.push((j, t.elapsed()));
        check(run.totals.is_green(), || {
            format!("the suite is not green with --jobs {j}: {:?}", run.totals)
        })?;
        cases = run.cases.len();
    }
    Ok(SuiteBench { setup, cases, runs })
}

/// What `bench streams` measured, in bytes per second.
#[derive(Clone, Copy, Debug)]
pub struct StreamsBench {
    pub bytes: usize,
    /// `stream_write` over serial into a TCP stream to a lab sink.
    pub serial_write: f64,
    /// `stream_read` over serial from a TCP stream fed by a lab source.
    pub serial_read: f64,
    /// A plain TCP socket from the lab router's address to the same sink.
    pub raw: f64,
    /// STREAM mode: bytes written on the pty reaching a lab sink.
    pub stream_mode_in: f64,
    /// STREAM mode: bytes from a lab source arriving on the pty.
    pub stream_mode_out: f64,
}

/// The median and range of repeated measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// Of at least one value (an empty set gives zeros); the median of an even count is the
    /// mean of the middle two.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        let (Some(&min), Some(&max)) = (v.first(), v.last()) else {
            return Self { median: 0.0, min: 0.0, max: 0.0 };
        };
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
        Self { median, min, max }
    }
}

fn rate(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64().max(1e-9)
}

/// Sends a command that must succeed; its body.
fn exec(s: &mut Session, line: &str, data: Option<&[u8]>) -> Result<String, BenchError> {
    let timeout = Duration::from_secs(30);
    let reply = s.control.execute(&Request { line, data, timeout })?;
    check(reply.code.0 == 0, || format!("`{line}` answered {}: {}", reply.code, reply.text()))?;
    Ok(String::from_utf8_lossy(&reply.body).into_owned())
}

fn raw_link(s: &mut Session) -> Result<&mut dyn crate::channel::RawLink, BenchError> {
    s.control.raw().ok_or(BenchError::Unexpected("the serial channel has no raw access".into()))
}

/// Sends `reboot` as raw bytes (a module in stream mode cannot be resynced) and waits for it.
fn reboot(s: &mut Session) -> Result<(), BenchError> {
    let link = raw_link(s)?;
    link.write_raw(b"reboot\r\n")?;
    let got = link.read_raw(&mut |b| b.ends_with(b"Rebooting\r\n"), Duration::from_secs(5))?;
    check(got.ends_with(b"Rebooting\r\n"), || format!("no reboot: {got:?}"))?;
    Ok(())
}

/// Moves `bytes` through a module TCP stream each way, driven over serial, and the same
/// amount through a plain socket to the same lab peer.
pub fn streams(rig: &Rig, workdir: &Path, bytes: usize) -> Result<StreamsBench, BenchError> {
    use crate::peers::{PeerCheck, PeerSpec, Peers, TcpClient, pattern};
    let ap = rig
        .lab
        .as_ref()
        .and_then(|l| l.aps.first().cloned())
        .ok_or_else(|| BenchError::NoLab { rig: rig.name.clone() })?;
    let mut session = Session::open(rig, workdir)?;
    let lab = session.lab.as_ref().map(|l| std::sync::Arc::clone(&l.lab));
    let lab = lab.ok_or_else(|| BenchError::NoLab { rig: rig.name.clone() })?;
    let timeout = Duration::from_secs(30);
    let s = &mut session;
    exec(s, &format!("set wlan.ssid {}", ap.ssid), None)?;
    if !ap.passkey.is_empty() {
        exec(s, &format!("set wlan.passkey {}", ap.passkey), None)?;
    }
    exec(s, "set bus.command.read_timeout 2000", None)?;
    exec(s, "network_up", None)?;
    let (sink_port, source_port) = (7100, 7101);
    let peers = Peers::start(
        &lab,
        &[PeerSpec::tcp_sink(sink_port), PeerSpec::tcp_source(source_port, bytes as u64)],
    )?;
    let data = pattern(bytes as u64);
    let chunk = 4096;
    // What the sink received on its n-th connection, in full, within 60 s.
    let on = |n: usize| PeerCheck {
        received_pattern: Some(bytes as u64),
        connection: Some(n),
        within_ms: Some(60_000),
        ..PeerCheck::default()
    };

    // Module → sink, over serial.
    let handle =
        exec(s, &format!("tcp_client {} {sink_port}", crate::peers::DEFAULT_PEER_ADDR), None)?;
    let handle = handle.trim().to_string();
    let t = Instant::now();
    for piece in data.chunks(chunk) {
        exec(s, &format!("stream_write {handle} {}", piece.len()), Some(piece))?;
    }
    peers.check(0, &on(0))?;
    let serial_write = rate(bytes, t.elapsed());
    exec(s, &format!("stream_close {handle}"), None)?;

    // Source → module, over serial.
    let t = Instant::now();
    let handle =
        exec(s, &format!("tcp_client {} {source_port}", crate::peers::DEFAULT_PEER_ADDR), None)?;
    let handle = handle.trim().to_string();
    let mut got = Vec::with_capacity(bytes);
    while got.len() < bytes {
        let reply = s.control.execute(&Request {
            line: &format!("stream_read {handle} {chunk}"),
            data: None,
            timeout,
        })?;
        check(reply.code.0 == 0, || format!("stream_read answered {}", reply.code))?;
        // The body is the data followed by the response's line end.
        let body = reply.body.strip_suffix(b"\r\n").unwrap_or(&reply.body);
        check(!body.is_empty() || t.elapsed() < timeout, || format!("no data within {timeout:?}"))?;
        got.extend_from_slice(body);
    }
    let serial_read = rate(bytes, t.elapsed());
    check(got == data, || "stream_read returned other bytes than the source sent".to_string())?;

    // The same bytes through a plain socket from the lab router to the same sink.
    let mut client = TcpClient::connect(&lab, crate::peers::DEFAULT_PEER_ADDR, sink_port)?;
    let t = Instant::now();
    client.send(&data)?;
    peers.check(0, &on(1))?;
    let raw = rate(bytes, t.elapsed());
    drop(client);

    // STREAM mode: the auto-started TCP client carries the bus. First to a sink, then from a
    // source; the module reboots into stream mode for each.
    let stream_peers =
        Peers::start(&lab, &[PeerSpec::tcp_sink(7102), PeerSpec::tcp_source(7103, bytes as u64)])?;
    for (name, value) in [
        ("wlan.auto_join.enabled", "1"),
        ("tcp.client.auto_start", "1"),
        ("tcp.client.remote_host", "10.77.0.5"),
        ("tcp.client.remote_port", "7102"),
        ("bus.stream.cmd_seq", "$$$"),
        ("bus.mode", "stream"),
    ] {
        exec(s, &format!("set {name} {value}"), None)?;
    }
    exec(s, "save", None)?;
    let connected = |n: usize| PeerCheck {
        connections: Some(n),
        within_ms: Some(15_000),
        ..PeerCheck::default()
    };
    reboot(s)?;
    stream_peers.check(0, &connected(1))?;
    let t = Instant::now();
    for piece in data.chunks(chunk) {
        raw_link(s)?.write_raw(piece)?;
    }
    let all_in = PeerCheck { connection: Some(0), ..on(0) };
    stream_peers.check(0, &all_in)?;
    let stream_mode_in = rate(bytes, t.elapsed());

    // Break in (3 s of silence, then the sequence), point the client at the source, reboot.
    std::thread::sleep(Duration::from_millis(3_200));
    raw_link(s)?.write_raw(b"$$$")?;
    std::thread::sleep(Duration::from_millis(200));
    s.control.resync(crate::channel::ConsoleFormat::Machine, Duration::from_secs(5))?;
    exec(s, "set tcp.client.remote_port 7103", None)?;
    exec(s, "save", None)?;
    reboot(s)?;
    let link = raw_link(s)?;
    let mut first = None;
    let mut got = Vec::with_capacity(bytes);
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < bytes && Instant::now() < deadline {
        let piece = link.read_raw(&mut |b| !b.is_empty(), Duration::from_millis(200))?;
        if !piece.is_empty() {
            first.get_or_insert_with(Instant::now);
        }
        got.extend_from_slice(&piece);
    }
    check(got == data, || {
        format!("STREAM mode delivered {} of {bytes} bytes, or other bytes", got.len())
    })?;
    let stream_mode_out = rate(bytes, first.map_or(Duration::ZERO, |f| f.elapsed()));
    Ok(StreamsBench { bytes, serial_write, serial_read, raw, stream_mode_in, stream_mode_out })
}

/// The command every series of `bench transports` sends.
pub const TRANSPORTS_COMMAND: &str = "get wlan.ssid";

/// What `bench transports` runs.
#[derive(Clone, Debug)]
pub struct TransportsOptions {
    /// Timed round trips per series (a tenth more go first as warm-up).
    pub iterations: usize,
    /// REST load: the clients at once, set as `http.server.max_clients` for the run.
    pub rest_clients: usize,
    /// REST load: how long each client sends.
    pub rest_time: Duration,
    /// The pexpect loop (`harness/bench/pexpect_roundtrip.py`).
    pub pexpect_script: PathBuf,
}

/// A measurement, or why it was not made.
#[derive(Clone, Debug)]
pub enum Measured<T> {
    Done(T),
    Skipped(String),
}

/// One transport's round trips through its channel and its floor.
#[derive(Clone, Debug)]
pub struct TransportPair {
    pub transport: Transport,
    /// Through the harness's [`Channel`] for the transport.
    pub channel: Stats,
    /// The least the same exchange takes by hand, on the same module.
    pub floor: Stats,
}

/// What the floor of each transport does (for the table's legend).
pub fn floor_description(transport: Transport) -> &'static str {
    match transport {
        Transport::Serial => "write the line on the pty, read the R frame",
        Transport::Rest => "hand-written HTTP/1.1 POST /command over a TcpStream, read to close",
        Transport::CmdStream => "plain tungstenite: one msgpack message out, one reply in",
        Transport::Terminal => "raw TCP: write the line, read the R frame",
    }
}

/// What the harness's channel does per command beyond its floor (for the legend).
pub fn channel_description(transport: Transport) -> &'static str {
    match transport {
        Transport::Serial => "framer, log lines, transcript",
        Transport::Rest => "reqwest POST /command, then GET /log for the command's log lines",
        Transport::CmdStream => "msgpack over the open WebSocket, then GET /log",
        Transport::Terminal => "the console reader shared with serial, log lines, transcript",
    }
}

/// REST requests from several clients at once.
#[derive(Clone, Debug)]
pub struct RestLoad {
    pub clients: usize,
    /// `http.server.max_clients` before the run set it to `clients`.
    pub max_clients_before: String,
    pub elapsed: Duration,
    /// Requests whose connection was opened (or tried).
    pub sent: usize,
    /// Complete 200 JSON answers with code 0 and the right response.
    pub answered: usize,
    /// Answered 503 (the client limit).
    pub refused: usize,
    /// Everything else: refused or reset connections, timeouts, other statuses, wrong bodies.
    pub failed: usize,
    /// The first few failures, for a look.
    pub failures: Vec<String>,
    /// Latency of the answered requests.
    pub latency: Option<Stats>,
    /// The REST ids (the module counts every command it runs for HTTP) of a request just
    /// before and just after the load: the module ran `after - before - 1` in between.
    pub ids_around: (u32, u32),
    /// Whether the answered requests' ids are all different and between the two.
    pub ids_consistent: bool,
}

impl RestLoad {
    /// Requests that did not get their answer.
    pub fn lost(&self) -> usize {
        self.sent - self.answered
    }

    /// Commands the module ran while the load ran, by its own count.
    pub fn module_ran(&self) -> u32 {
        self.ids_around.1.saturating_sub(self.ids_around.0).saturating_sub(1)
    }

    /// The module's count agrees with the answers.
    pub fn counts_agree(&self) -> bool {
        self.ids_consistent && self.module_ran() as usize == self.answered
    }

    pub fn per_second(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What `bench transports` measured.
#[derive(Clone, Debug)]
pub struct TransportsBench {
    /// The response every series got (the module's `wlan.ssid`).
    pub expected: String,
    pub iterations: usize,
    pub warmup: usize,
    /// In the order of [`Transport::ALL`].
    pub pairs: Vec<TransportPair>,
    /// The pexpect loop on the serial console's pty.
    pub pexpect: Measured<Stats>,
    pub rest_load: RestLoad,
}

/// Runs `warmup + iterations` round trips (`once` times one and checks its reply); the
/// timed ones' statistics.
fn series(
    iterations: usize,
    warmup: usize,
    mut once: impl FnMut(usize) -> Result<Duration, BenchError>,
) -> Result<Stats, BenchError> {
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let took = once(i)?;
        if i >= warmup {
            samples.push(took);
        }
    }
    Ok(stats(samples))
}

/// Round trips of [`TRANSPORTS_COMMAND`] through the session's channel under test.
fn channel_series(
    session: &mut Session,
    expected: &str,
    iterations: usize,
    warmup: usize,
) -> Result<Stats, BenchError> {
    let timeout = session.rig.command_timeout;
    let request = Request { line: TRANSPORTS_COMMAND, data: None, timeout };
    series(iterations, warmup, |i| {
        if i % 1000 == 999 {
            // The transcript would otherwise grow with every round trip.
            session.restart_transcript();
        }
        let t = Instant::now();
        let reply = session.under_test().execute(&request)?;
        let took = t.elapsed();
        check(reply.code.0 == 0 && reply.text() == expected, || {
            format!("unexpected reply {reply:?}")
        })?;
        Ok(took)
    })
}

/// Where the module's HTTP server is (its network and server are up).
fn http_target(session: &mut Session) -> Result<HttpTarget, BenchError> {
    let ip = exec(session, "get wlan.network.ip", None)?;
    let port = exec(session, "get http.server.port", None)?;
    let addr = format!("{}:{}", ip.trim(), port.trim());
    let addr = addr
        .parse()
        .map_err(|_| BenchError::Unexpected(format!("`{addr}` is not the server's address")))?;
    let netns = session.lab.as_ref().map(|l| l.lab.netns_path());
    Ok(HttpTarget { addr, credentials: session.rig.http.credentials.clone(), netns })
}

/// Runs `f` inside the target's network namespace (here when it has none).
fn in_netns<T: Send>(
    netns: Option<&Path>,
    f: impl FnOnce() -> Result<T, BenchError> + Send,
) -> Result<T, BenchError> {
    match netns {
        Some(ns) => crate::lab::netns::run_in_netns(ns, f)?,
        None => f(),
    }
}

/// The `Authorization` header line for `credentials`, or nothing.
fn basic_auth(credentials: Option<&crate::channel::rest::Credentials>) -> String {
    use base64::Engine as _;
    credentials.map_or_else(String::new, |c| {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password));
        format!("Authorization: Basic {token}\r\n")
    })
}

/// A whole `POST /command` request for `line`, written by hand.
pub fn rest_request(target: &HttpTarget, line: &str) -> Vec<u8> {
    // As the REST channel sends it: the chapter's field order.
    let command = serde_json::Value::from(line);
    let body = format!(r#"{{"flags":0,"command":{command}}}"#);
    format!(
        "POST /command HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{body}",
        target.addr,
        body.len(),
        basic_auth(target.credentials.as_ref())
    )
    .into_bytes()
}

/// An HTTP/1.1 response read to its close: the status and the body (after the head; the
/// module sends `Content-Length` and closes, so the rest of the bytes is the body).
pub fn parse_http_response(bytes: &[u8]) -> Result<(u16, &[u8]), String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of head in {} bytes", bytes.len()))?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "a head that is not UTF-8")?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    check_http(version.starts_with("HTTP/1."), || format!("not HTTP/1.x: `{status_line}`"))?;
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("no status in `{status_line}`"))?;
    let body = &bytes[end + 4..];
    let length = head.lines().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>())
    });
    match length {
        Some(Ok(n)) if n == body.len() => Ok((status, body)),
        Some(Ok(n)) => Err(format!("Content-Length {n}, but {} body bytes", body.len())),
        Some(Err(_)) => Err("a Content-Length that is not a number".into()),
        None => Ok((status, body)),
    }
}

fn check_http(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}

/// Whether a structured response is `want` (which ends in CRLF), its line end optional:
/// REST responses carry the machine format's CRLF, cmdstream ones do not.
fn same(response: &str, want: &str) -> bool {
    response == want || Some(response) == want.strip_suffix("\r\n")
}

/// A REST command reply's id, code and response.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
pub struct RestAnswer {
    pub id: u32,
    pub code: u8,
    pub response: String,
}

/// A complete `POST /command` answer: 200 and the JSON reply.
pub fn parse_rest_answer(bytes: &[u8]) -> Result<RestAnswer, String> {
    let (status, body) = parse_http_response(bytes)?;
    check_http(status == 200, || format!("HTTP status {status}"))?;
    serde_json::from_slice(body).map_err(|e| format!("not a command reply: {e}"))
}

/// One hand-written REST request on a new connection, read to close: the time and the bytes.
fn rest_once(addr: SocketAddr, request: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request)?;
    let mut reply = Vec::with_capacity(256);
    stream.read_to_end(&mut reply)?;
    Ok(reply)
}

/// The REST floor: the same `POST /command` the channel sends, by hand, one connection each.
fn rest_floor(
    target: &HttpTarget,
    expected: &str,
    iterations: usize,
    warmup: usize,
    timeout: Duration,
) -> Result<Stats, BenchError> {
    let request = rest_request(target, TRANSPORTS_COMMAND);
    let addr = SocketAddr::V4(target.addr);
    let want = format!("{expected}\r\n");
    in_netns(target.netns.as_deref(), || {
        series(iterations, warmup, |_| {
            let t = Instant::now();
            let reply = rest_once(addr, &request, timeout)?;
            let took = t.elapsed();
            let answer = parse_rest_answer(&reply).map_err(BenchError::Unexpected)?;
            check(answer.code == 0 && same(&answer.response, &want), || {
                format!("unexpected REST answer {answer:?}")
            })?;
            Ok(took)
        })
    })
}

/// A command stream message `{command, id}` in MessagePack, built by hand.
pub fn msgpack_command(line: &str, id: u32) -> Vec<u8> {
    let mut m = vec![0x82, 0xa7];
    m.extend_from_slice(b"command");
    match line.len() {
        n @ 0..32 => m.push(0xa0 | n as u8),
        n @ 32..256 => m.extend_from_slice(&[0xd9, n as u8]),
        n => {
            m.push(0xda);
            m.extend_from_slice(&(n.min(u16::MAX.into()) as u16).to_be_bytes());
        }
    }
    m.extend_from_slice(line.as_bytes());
    m.extend_from_slice(&[0xa2, b'i', b'd', 0xce]);
    m.extend_from_slice(&id.to_be_bytes());
    m
}

/// The cmdstream floor: plain tungstenite on a socket opened in the namespace.
fn cmdstream_floor(
    target: &HttpTarget,
    expected: &str,
    iterations: usize,
    warmup: usize,
    timeout: Duration,
) -> Result<Stats, BenchError> {
    use tungstenite::Message;
    let addr = SocketAddr::V4(target.addr);
    let want = format!("{expected}\r\n");
    let url = format!("ws://{}/cmdstream", target.addr);
    let auth = basic_auth(target.credentials.as_ref());
    in_netns(target.netns.as_deref(), || {
        let ws_error = |e: tungstenite::Error| BenchError::Unexpected(format!("{url}: {e}"));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(&url).map_err(ws_error)?;
        if let Some(value) = auth.strip_prefix("Authorization: ") {
            let value = value.trim_end().parse().map_err(|e| {
                BenchError::Unexpected(format!("credentials as a header value: {e}"))
            })?;
            request.headers_mut().insert("authorization", value);
        }
        let (mut ws, _) = tungstenite::client(request, stream)
            .map_err(|e| BenchError::Unexpected(format!("{url}: handshake: {e}")))?;
        #[derive(serde::Deserialize)]
        struct Answer {
            id: u32,
            code: u8,
            response: String,
        }
        let stats = series(iterations, warmup, |i| {
            let id = i as u32 + 1;
            let t = Instant::now();
            ws.send(Message::binary(msgpack_command(TRANSPORTS_COMMAND, id))).map_err(ws_error)?;
            let bytes = loop {
                match ws.read().map_err(ws_error)? {
                    Message::Binary(b) => break b,
                    Message::Close(_) => {
                        return Err(BenchError::Unexpected(format!("{url}: closed")));
                    }
                    _ => continue,
                }
            };
            let took = t.elapsed();
            let answer: Answer = rmp_serde::from_slice(&bytes)
                .map_err(|e| BenchError::Unexpected(format!("not a command stream reply: {e}")))?;
            check(answer.id == id && answer.code == 0 && same(&answer.response, &want), || {
                format!(
                    "unexpected reply id {} code {} {:?}",
                    answer.id, answer.code, answer.response
                )
            })?;
            Ok(took)
        })?;
        let _ = ws.close(None);
        let _ = ws.flush();
        Ok(stats)
    })
}

/// Reads from `stream` until what was read ends with `frame`; all of it.
fn read_until_ends_with(stream: &mut impl Read, frame: &[u8]) -> Result<Vec<u8>, BenchError> {
    let mut got = Vec::with_capacity(frame.len());
    let mut buf = [0u8; 512];
    while !got.ends_with(frame) {
        let n = stream.read(&mut buf)?;
        check(n > 0, || format!("closed after {:?}", String::from_utf8_lossy(&got)))?;
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// The machine-format frame of a code-0 response `body` (`R0` + 5-digit length + CRLF).
pub fn machine_frame(body: &str) -> Vec<u8> {
    let body = format!("{body}\r\n");
    format!("R0{:05}\r\n{body}", body.len()).into_bytes()
}

/// The terminal floor: a raw TCP connection to the remote terminal, lines in, frames out.
fn terminal_floor(
    addr: SocketAddr,
    netns: Option<&Path>,
    password: Option<String>,
    expected: &str,
    iterations: usize,
    warmup: usize,
    timeout: Duration,
) -> Result<Stats, BenchError> {
    let frame = machine_frame(expected);
    let line = format!("{TRANSPORTS_COMMAND}\r\n");
    in_netns(netns, || {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        if let Some(password) = &password {
            stream.write_all(format!("{password}\r\n").as_bytes())?;
        }
        series(iterations, warmup, |i| {
            let t = Instant::now();
            stream.write_all(line.as_bytes())?;
            let got = read_until_ends_with(&mut stream, &frame)?;
            let took = t.elapsed();
            // The first reply may follow what the terminal greets a client with (a prompt,
            // the answer to the password).
            check(i == 0 || got == frame, || {
                format!("unexpected terminal reply {:?}", String::from_utf8_lossy(&got))
            })?;
            Ok(took)
        })
    })
}

/// The serial floor: write the line on the pty, read the frame (the port must be free).
fn serial_floor(
    port: &Path,
    expected: &str,
    iterations: usize,
    warmup: usize,
) -> Result<Stats, BenchError> {
    let frame = machine_frame(expected);
    let line = format!("{TRANSPORTS_COMMAND}\r\n");
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(port)?;
    series(iterations, warmup, |_| {
        let t = Instant::now();
        file.write_all(line.as_bytes())?;
        let got = read_until_ends_with(&mut file, &frame)?;
        let took = t.elapsed();
        check(got == frame, || {
            format!("unexpected raw reply {:?}", String::from_utf8_lossy(&got))
        })?;
        Ok(took)
    })
}

/// What `harness/bench/pexpect_roundtrip.py` prints.
#[derive(Debug, serde::Deserialize)]
struct PexpectOutput {
    round_trips_ns: Vec<u64>,
}

/// The timed round trips in the pexpect script's JSON output; `iterations` of them.
pub fn parse_pexpect_output(text: &str, iterations: usize) -> Result<Vec<Duration>, String> {
    let out: PexpectOutput = serde_json::from_str(text.trim())
        .map_err(|e| format!("not the pexpect script's output: {e}"))?;
    check_http(out.round_trips_ns.len() == iterations, || {
        format!("{} round trips, {iterations} expected", out.round_trips_ns.len())
    })?;
    Ok(out.round_trips_ns.into_iter().map(Duration::from_nanos).collect())
}

/// Why pexpect cannot run here, if it cannot (python3 missing, pexpect not importable).
fn pexpect_missing() -> Option<String> {
    let probe = std::process::Command::new("python3").args(["-c", "import pexpect"]).output();
    match probe {
        Err(e) => Some(format!(
            "python3 cannot be started ({e}); install Python 3 and `pip install pexpect`"
        )),
        Ok(out) if !out.status.success() => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why.lines().last().unwrap_or("import failed").trim().to_string();
            Some(format!(
                "python3 cannot import pexpect ({why}); install it with `pip install pexpect`"
            ))
        }
        Ok(_) => None,
    }
}

/// The pexpect loop on the module's pty (the port must be free).
fn pexpect_series(
    script: &Path,
    port: &Path,
    expected: &str,
    iterations: usize,
    warmup: usize,
) -> Result<Measured<Stats>, BenchError> {
    if let Some(why) = pexpect_missing() {
        return Ok(Measured::Skipped(why));
    }
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--port")
        .arg(port)
        .args(["--command", TRANSPORTS_COMMAND, "--expect", expected])
        .args(["--iterations", &iterations.to_string(), "--warmup", &warmup.to_string()])
        .output()
        .map_err(|e| BenchError::Unexpected(format!("python3 {}: {e}", script.display())))?;
    check(out.status.success(), || {
        format!(
            "python3 {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let samples = parse_pexpect_output(&String::from_utf8_lossy(&out.stdout), iterations)
        .map_err(BenchError::Unexpected)?;
    Ok(Measured::Done(stats(samples)))
}

/// How one request of the load ended.
enum LoadOutcome {
    Answered { id: u32, took: Duration },
    Refused,
    Failed(String),
}

/// One load client: requests back to back until `until`.
fn load_client(
    addr: SocketAddr,
    request: &[u8],
    want: &str,
    until: Instant,
    timeout: Duration,
) -> Vec<LoadOutcome> {
    let mut outcomes = Vec::new();
    while Instant::now() < until {
        let t = Instant::now();
        let outcome = match rest_once(addr, request, timeout) {
            Err(e) => LoadOutcome::Failed(format!("connection: {e}")),
            Ok(bytes) => {
                let took = t.elapsed();
                match parse_http_response(&bytes) {
                    Ok((503, _)) => LoadOutcome::Refused,
                    Ok(_) => match parse_rest_answer(&bytes) {
                        Ok(a) if a.code == 0 && same(&a.response, want) => {
                            LoadOutcome::Answered { id: a.id, took }
                        }
                        Ok(a) => LoadOutcome::Failed(format!("answer {a:?}")),
                        Err(e) => LoadOutcome::Failed(e),
                    },
                    Err(e) => LoadOutcome::Failed(e),
                }
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// `clients` threads in the namespace, each sending REST requests back to back for `time`;
/// the module's REST ids just before and after bracket what it ran.
fn rest_load(
    session: &mut Session,
    target: &HttpTarget,
    expected: &str,
    clients: usize,
    time: Duration,
) -> Result<RestLoad, BenchError> {
    check((1..=8).contains(&clients), || format!("{clients} clients: the module admits 1..=8"))?;
    // The remote terminal's listener would keep sockets listening that the HTTP server's
    // clients need (the simulated module shares 16 TCP sockets among its listeners).
    exec(session, "set remote_terminal.enabled 0", None)?;
    let max_clients_before = exec(session, "get http.server.max_clients", None)?.trim().to_string();
    exec(session, &format!("set http.server.max_clients {clients}"), None)?;
    let timeout = session.rig.command_timeout;
    let request = rest_request(target, TRANSPORTS_COMMAND);
    let addr = SocketAddr::V4(target.addr);
    let want = format!("{expected}\r\n");
    let netns = target.netns.as_deref();
    let probe_id = || -> Result<u32, BenchError> {
        let bytes = in_netns(netns, || Ok(rest_once(addr, &request, timeout)?))?;
        Ok(parse_rest_answer(&bytes).map_err(BenchError::Unexpected)?.id)
    };
    let before = probe_id()?;
    let start = Instant::now();
    let until = start + time;
    let per_client: Vec<Result<Vec<LoadOutcome>, BenchError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (request, want) = (&request, &want);
                s.spawn(move || {
                    in_netns(netns, || Ok(load_client(addr, request, want, until, timeout)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(BenchError::Unexpected("a load client panicked".into()))
                })
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let after = probe_id()?;
    let mut load = RestLoad {
        clients,
        max_clients_before,
        elapsed,
        sent: 0,
        answered: 0,
        refused: 0,
        failed: 0,
        failures: Vec::new(),
        latency: None,
        ids_around: (before, after),
        ids_consistent: true,
    };
    let mut latencies = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for outcome in per_client.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten() {
        load.sent += 1;
        match outcome {
            LoadOutcome::Answered { id, took } => {
                load.answered += 1;
                latencies.push(took);
                load.ids_consistent &= id > before && id < after && ids.insert(id);
            }
            LoadOutcome::Refused => load.refused += 1,
            LoadOutcome::Failed(why) => {
                load.failed += 1;
                if load.failures.len() < 5 {
                    load.failures.push(why);
                }
            }
        }
    }
    load.latency = (!latencies.is_empty()).then(|| stats(latencies));
    Ok(load)
}

/// Measures every transport's channel beside its floor on one simulated module in a lab,
/// the serial console beside pexpect, and REST under load.
pub fn transports(
    rig: &Rig,
    workdir: &Path,
    options: &TransportsOptions,
) -> Result<TransportsBench, BenchError> {
    let (iterations, warmup) = (options.iterations, options.iterations / 10);
    check(iterations >= 10, || "use at least 10 iterations".to_string())?;
    check(rig.lab.is_some(), || {
        format!("rig `{}` has no [lab]: the network transports need one", rig.name)
    })?;
    let mut session = Session::open(rig, workdir)?;
    let timeout = rig.command_timeout;
    // REST first: it puts the module on the lab network with its HTTP server up, which the
    // other network transports keep.
    session.use_transport(Transport::Rest)?;
    let expected = exec(&mut session, TRANSPORTS_COMMAND, None)?.trim_end().to_string();
    let target = http_target(&mut session)?;
    let mut pairs = Vec::new();

    let channel = channel_series(&mut session, &expected, iterations, warmup)?;
    let floor = rest_floor(&target, &expected, iterations, warmup, timeout)?;
    pairs.push(TransportPair { transport: Transport::Rest, channel, floor });

    session.use_transport(Transport::CmdStream)?;
    let channel = channel_series(&mut session, &expected, iterations, warmup)?;
    let floor = cmdstream_floor(&target, &expected, iterations, warmup, timeout)?;
    pairs.push(TransportPair { transport: Transport::CmdStream, channel, floor });

    // The terminal connects once the module is set up; the serial console is off while it is
    // logged in, and it takes one client at a time: its floor comes after it has left.
    session.use_transport(Transport::Terminal)?;
    session.prepare_under_test(&[], crate::channel::ConsoleFormat::Machine)?;
    let channel = channel_series(&mut session, &expected, iterations, warmup)?;
    session.use_transport(Transport::Serial)?;
    session.control.resync(crate::channel::ConsoleFormat::Machine, rig.reboot_timeout)?;
    let port = exec(&mut session, "get remote_terminal.port", None)?;
    let port: u16 = port
        .trim()
        .parse()
        .map_err(|_| BenchError::Unexpected(format!("remote_terminal.port is `{port}`")))?;
    let password = exec(&mut session, "get remote_terminal.password", None)?;
    let login = Some(password.trim_end()).filter(|p| !p.is_empty()).map(str::to_string);
    let addr = SocketAddr::V4(std::net::SocketAddrV4::new(*target.addr.ip(), port));
    let netns = target.netns.as_deref();
    let floor = terminal_floor(addr, netns, login, &expected, iterations, warmup, timeout)?;
    let terminal = TransportPair { transport: Transport::Terminal, channel, floor };
    // The serial console's parser is back once the module has seen the floor's client leave.
    session.control.resync(crate::channel::ConsoleFormat::Machine, rig.reboot_timeout)?;

    let rest_load =
        rest_load(&mut session, &target, &expected, options.rest_clients, options.rest_time)?;

    let channel = channel_series(&mut session, &expected, iterations, warmup)?;
    let port = session.control.endpoint();
    let Session { control, sim, lab, .. } = session;
    drop(control);
    let port = PathBuf::from(port);
    let floor = serial_floor(&port, &expected, iterations, warmup)?;
    pairs.insert(0, TransportPair { transport: Transport::Serial, channel, floor });
    pairs.push(terminal);
    let pexpect = pexpect_series(&options.pexpect_script, &port, &expected, iterations, warmup)?;
    drop(sim);
    drop(lab);
    Ok(TransportsBench { expected, iterations, warmup, pairs, pexpect, rest_load })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The lines `hil bench transports` prints: the per-transport table with each ratio, the
/// pexpect comparison and the REST load.
pub fn transports_report(b: &TransportsBench) -> Vec<String> {
    let mut out = vec![
        format!(
            "command round trip `{TRANSPORTS_COMMAND}` (answer `{}`), {} timed round trips per series after {} warm-up, one module",
            b.expected, b.iterations, b.warmup
        ),
        format!(
            "  {:<10} {:>10} {:>10}   {:>10} {:>10}   {:>13} {:>7}",
            "", "harness", "", "floor", "", "harness/floor", ""
        )
        .trim_end()
        .to_string(),
        format!(
            "  {:<10} {:>10} {:>10}   {:>10} {:>10}   {:>13} {:>7}",
            "transport", "p50 µs", "p99 µs", "p50 µs", "p99 µs", "p50", "p99"
        ),
    ];
    for p in &b.pairs {
        out.push(format!(
            "  {:<10} {:>10.1} {:>10.1}   {:>10.1} {:>10.1}   {:>12.2}x {:>6.2}x",
            p.transport.name(),
            micros(p.channel.p50),
            micros(p.channel.p99),
            micros(p.floor.p50),
            micros(p.floor.p99),
            micros(p.channel.p50) / micros(p.floor.p50),
            micros(p.channel.p99) / micros(p.floor.p99)
        ));
    }
    out.push("  harness = the transport's Channel as `hil run` uses it:".into());
    for p in &b.pairs {
        out.push(format!("    {:<10} {}", p.transport.name(), channel_description(p.transport)));
    }
    out.push("  floor = the same exchange by hand, on the same module:".into());
    for p in &b.pairs {
        out.push(format!("    {:<10} {}", p.transport.name(), floor_description(p.transport)));
    }
    let serial = b.pairs.iter().find(|p| p.transport == Transport::Serial).map(|p| p.channel);
    match (&b.pexpect, serial) {
        (Measured::Done(p), Some(h)) => {
            out.push(
                "serial through the harness vs. a pexpect loop (pexpect.fdpexpect on the same pty, expecting the R frame):"
                    .into(),
            );
            out.push(format!(
                "  pexpect p50 {:.1} µs   p99 {:.1} µs;   harness/pexpect p50 {:.2}x   p99 {:.2}x",
                micros(p.p50),
                micros(p.p99),
                micros(h.p50) / micros(p.p50),
                micros(h.p99) / micros(p.p99)
            ));
        }
        (Measured::Skipped(why), _) => {
            out.push(format!("!! harness vs. pexpect SKIPPED: {why}"));
        }
        (Measured::Done(_), None) => out.push("!! harness vs. pexpect: no serial series".into()),
    }
    let l = &b.rest_load;
    out.push(format!(
        "REST load: http.server.max_clients set to {} for this run (it was {}), the remote terminal off; {} clients sending back to back for {:.2} s",
        l.clients,
        l.max_clients_before,
        l.clients,
        l.elapsed.as_secs_f64()
    ));
    out.push(format!(
        "  {} requests: {} answered 200 with code 0 and the response, {} refused (503), {} failed: {} lost",
        l.sent,
        l.answered,
        l.refused,
        l.failed,
        l.lost()
    ));
    for why in &l.failures {
        out.push(format!("    failed: {why}"));
    }
    let latency = l.latency.map_or_else(
        || "no answers".to_string(),
        |s| format!("latency p50 {:.1} µs   p99 {:.1} µs", micros(s.p50), micros(s.p99)),
    );
    out.push(format!("  {:.0} requests/s answered; {latency}", l.per_second()));
    let (before, after) = l.ids_around;
    out.push(format!(
        "  the module ran {} commands in between (REST ids {before} and {after} around the load): {}",
        l.module_ran(),
        if l.counts_agree() {
            "agrees with the answers".to_string()
        } else if !l.ids_consistent {
            "DISAGREES: answers carried repeated ids or ids outside the load".to_string()
        } else {
            format!("DISAGREES: {} answered", l.answered)
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_table_has_each_rig_and_the_ratio_to_the_first() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let sim = BoardBench {
            rig: "sim".into(),
            boots: vec![ms(40), ms(20), ms(30), ms(25), ms(90)],
            round_trip: Stats { p50: us(100), p99: us(400), samples: 200 },
        };
        let board = BoardBench {
            rig: "qemu-an386".into(),
            boots: vec![ms(300), ms(200), ms(250)],
            round_trip: Stats { p50: us(1000), p99: us(1200), samples: 200 },
        };
        assert_eq!(sim.boot_min_median(), (ms(20), ms(30)));
        insta::assert_snapshot!("boards_table", boards_report(&[sim, board]).join("\n"));
    }

    #[rstest::rstest]
    #[case::one(&[3.0], (3.0, 3.0, 3.0))]
    #[case::odd(&[5.0, 1.0, 3.0], (3.0, 1.0, 5.0))]
    #[case::even(&[4.0, 1.0, 2.0, 10.0], (3.0, 1.0, 10.0))]
    #[case::none(&[], (0.0, 0.0, 0.0))]
    fn spreads(#[case] values: &[f64], #[case] want: (f64, f64, f64)) {
        let s = Spread::of(values.iter().copied());
        assert_eq!((s.median, s.min, s.max), want);
    }

    #[rstest::rstest]
    #[case::two(r#"{"command":"get wlan.ssid","warmup":1,"round_trips_ns":[1500,2000000]}"#, 2, Ok(vec![1500, 2_000_000]))]
    #[case::trailing_line("{\"round_trips_ns\":[7]}\n", 1, Ok(vec![7]))]
    #[case::too_few(r#"{"round_trips_ns":[1]}"#, 2, Err("1 round trips, 2 expected"))]
    #[case::negative(
        r#"{"round_trips_ns":[-1]}"#,
        1,
        Err(
            "not the pexpect script's output: invalid value: integer `-1`, expected u64 at line 1 column 21"
        )
    )]
    #[case::not_json(
        "Traceback (most recent call last):",
        1,
        Err("not the pexpect script's output: expected value at line 1 column 1")
    )]
    #[case::no_field(
        r#"{"samples":[1]}"#,
        1,
        Err("not the pexpect script's output: missing field `round_trips_ns` at line 1 column 15")
    )]
    fn reads_pexpect_output(
        #[case] text: &str,
        #[case] iterations: usize,
        #[case] want: Result<Vec<u64>, &str>,
    ) {
        let got = parse_pexpect_output(text, iterations);
        let want =
            want.map(|v| v.into_iter().map(Duration::from_nanos).collect()).map_err(str::to_string);
        assert_eq!(got, want);
    }

    const OK_BODY: &str = r#"{"id":12,"code":0,"flags":0,"response":"gecko-lab\r\n"}"#;

    fn response(status: &str, headers: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.1 {status}\r\n{headers}\r\n{body}").into_bytes()
    }

    #[rstest::rstest]
    #[case::ok(
        response("200 OK", &format!("Content-Length: {}\r\nConnection: close\r\n", OK_BODY.len()), OK_BODY),
        Ok(RestAnswer { id: 12, code: 0, response: "gecko-lab\r\n".into() })
    )]
    #[case::no_length(
        response("200 OK", "", OK_BODY),
        Ok(RestAnswer { id: 12, code: 0, response: "gecko-lab\r\n".into() })
    )]
    #[case::cut_short(
        response("200 OK", "content-length: 90\r\n", OK_BODY),
        Err(format!("Content-Length 90, but {} body bytes", OK_BODY.len()))
    )]
    #[case::busy(response("503 Service Unavailable", "Content-Length: 0\r\n", ""), Err("HTTP status 503".into()))]
    #[case::no_head_end(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n".to_vec(), Err("no end of head in 36 bytes".into()))]
    #[case::empty(Vec::new(), Err("no end of head in 0 bytes".into()))]
    #[case::not_http(b"SSH-2.0\r\n\r\n".to_vec(), Err("not HTTP/1.x: `SSH-2.0`".into()))]
    #[case::no_status(b"HTTP/1.1 OK\r\n\r\n".to_vec(), Err("no status in `HTTP/1.1 OK`".into()))]
    #[case::bad_length(response("200 OK", "Content-Length: x\r\n", ""), Err("a Content-Length that is not a number".into()))]
    #[case::not_a_reply(
        response("200 OK", "", "{}"),
        Err("not a command reply: missing field `id` at line 1 column 2".into())
    )]
    fn reads_rest_answers(#[case] bytes: Vec<u8>, #[case] want: Result<RestAnswer, String>) {
        assert_eq!(parse_rest_answer(&bytes), want);
    }

    #[test]
    fn hand_written_rest_requests_carry_their_body_and_credentials() {
        let target = HttpTarget {
            addr: "10.77.0.100:80".parse().expect("address"),
            credentials: Some(crate::channel::rest::Credentials {
                username: "admin".into(),
                password: "secret".into(),
            }),
            netns: None,
        };
        let request = String::from_utf8(rest_request(&target, "get wlan.ssid")).expect("utf-8");
        insta::assert_snapshot!(request.replace("\r\n", "\u{23ce}\n"), @r#"
        POST /command HTTP/1.1⏎
        Host: 10.77.0.100:80⏎
        Content-Type: application/json⏎
        Content-Length: 37⏎
        Authorization: Basic YWRtaW46c2VjcmV0⏎
        Connection: close⏎
        ⏎
        {"flags":0,"command":"get wlan.ssid"}
        "#);
        let body = request.split_once("\r\n\r\n").expect("head end").1;
        let channel = crate::channel::rest::command_body("get wlan.ssid", None, false);
        assert_eq!(body.as_bytes(), channel, "the floor sends what the REST channel sends");
    }

    #[rstest::rstest]
    #[case::short("get wlan.ssid", 7)]
    #[case::empty("", 0)]
    #[case::str8(&"x".repeat(40), 40)]
    #[case::str16(&"y".repeat(300), 300)]
    fn hand_built_msgpack_commands_decode(#[case] line: &str, #[case] id: u32) {
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Message {
            command: String,
            id: u32,
        }
        let got: Message = rmp_serde::from_slice(&msgpack_command(line, id)).expect("msgpack");
        assert_eq!(got, Message { command: line.to_string(), id });
    }

    #[rstest::rstest]
    #[case::text("bench", b"R000007\r\nbench\r\n")]
    #[case::empty("", b"R000002\r\n\r\n")]
    fn machine_frames(#[case] body: &str, #[case] want: &[u8]) {
        assert_eq!(machine_frame(body), want);
    }

    #[rstest::rstest]
    #[case::crlf("gecko-lab\r\n", true)]
    #[case::bare("gecko-lab", true)]
    #[case::other("gecko", false)]
    #[case::lf_only("gecko-lab\n", false)]
    fn structured_responses_compare_with_or_without_line_end(
        #[case] response: &str,
        #[case] want: bool,
    ) {
        assert_eq!(same(response, "gecko-lab\r\n"), want);
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn sample(pexpect: Measured<Stats>, refused: usize) -> TransportsBench {
        let s = |p50, p99| Stats { p50: us(p50), p99: us(p99), samples: 100 };
        let pair = |transport, channel, floor| TransportPair { transport, channel, floor };
        TransportsBench {
            expected: "gecko-lab".into(),
            iterations: 100,
            warmup: 10,
            pairs: vec![
                pair(Transport::Serial, s(80, 200), s(50, 100)),
                pair(Transport::Rest, s(900, 3000), s(300, 1000)),
                pair(Transport::CmdStream, s(700, 2000), s(100, 500)),
                pair(Transport::Terminal, s(120, 400), s(90, 300)),
            ],
            pexpect,
            rest_load: RestLoad {
                clients: 8,
                max_clients_before: "4".into(),
                elapsed: Duration::from_secs(3),
                sent: 3000 + refused,
                answered: 3000,
                refused,
                failed: 0,
                failures: Vec::new(),
                latency: Some(s(2000, 9000)),
                ids_around: (10, 3011),
                ids_consistent: true,
            },
        }
    }

    #[test]
    fn the_transports_report_has_each_ratio_pexpect_and_the_load() {
        let pexpect = Measured::Done(Stats { p50: us(320), p99: us(400), samples: 100 });
        insta::assert_snapshot!(transports_report(&sample(pexpect, 0)).join("\n"));
    }

    #[test]
    fn the_transports_report_says_loudly_what_it_skipped_and_lost() {
        let pexpect = Measured::Skipped("python3 cannot import pexpect (ModuleNotFoundError: No module named 'pexpect'); install it with `pip install pexpect`".into());
        insta::assert_snapshot!(transports_report(&sample(pexpect, 2)).join("\n"));
    }

    #[test]
    fn the_load_counts_agree_only_when_the_module_ran_what_was_answered() {
        let mut load = sample(Measured::Skipped(String::new()), 0).rest_load;
        assert_eq!((load.module_ran(), load.lost()), (3000, 0));
        assert!(load.counts_agree());
        load.ids_around.1 += 1;
        assert!(!load.counts_agree(), "a command ran whose answer did not come");
        load.ids_around.1 -= 1;
        load.ids_consistent = false;
        assert!(!load.counts_agree());
    }
}

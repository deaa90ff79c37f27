//! `hil bench serial`: command round trip through the harness against a module, beside a
//! raw floor on the same port (write the command bytes, read the framed reply, nothing else).

use crate::channel::{Channel, Request};
use crate::rig::Rig;
use crate::session::Session;
use std::io::{Read, Write};
use std::path::Path;
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

#[cfg(test)]
mod tests {
    use super::Spread;

    #[rstest::rstest]
    #[case::one(&[3.0], (3.0, 3.0, 3.0))]
    #[case::odd(&[5.0, 1.0, 3.0], (3.0, 1.0, 5.0))]
    #[case::even(&[4.0, 1.0, 2.0, 10.0], (3.0, 1.0, 10.0))]
    #[case::none(&[], (0.0, 0.0, 0.0))]
    fn spreads(#[case] values: &[f64], #[case] want: (f64, f64, f64)) {
        let s = Spread::of(values.iter().copied());
        assert_eq!((s.median, s.min, s.max), want);
    }
}

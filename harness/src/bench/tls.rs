//! `hil bench tls`: TLS handshake time for each of the chapter's suites, the module's HTTPS
//! server beside an OpenSSL server with the same certificate, and the throughput of a file
//! fetched from the module's HTTP server over plain TCP and over TLS.
//!
//! Every client is OpenSSL inside the lab's namespace. The OpenSSL server is the lab's
//! `tls_server` peer on the lab host's address, so its clients reach it without crossing the
//! lab's bridge: the ratio is the module's TLS and network stack against a host's.

use super::{BenchError, Spread, check, exec, in_netns, parse_http_response, rate};
use crate::peers::{PeerSpec, Peers, SuiteName, TlsConnectSpec, TlsVersion};
use crate::pki::{KeyAlg, MaterialRef, Pki, PkiRef};
use crate::rig::Rig;
use crate::session::Session;
use openssl::ssl::{Ssl, SslContext, SslStream};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The chapter's cipher suites by IANA name, in the order of `gecko_core::tls::SUITES` (a
/// test keeps the two equal; the harness meets the firmware only on the wire).
pub const SUITES: [&str; 12] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
];

/// The suite of the HTTPS throughput runs.
pub const THROUGHPUT_SUITE: &str = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";

/// The file the throughput runs fetch.
pub const FILE_NAME: &str = "bench.bin";

/// The module's HTTP and HTTPS ports here, and the OpenSSL servers' (RSA, P-256).
const HTTP_PORT: u16 = 80;
const HTTPS_PORT: u16 = 443;
const OPENSSL_PORTS: (u16, u16) = (4433, 4434);

/// How long a server just (re)started may refuse connections.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The key type a suite's server certificate needs: P-256 for ECDSA, RSA otherwise.
pub fn key_for(iana: &str) -> KeyAlg {
    if iana.contains("_ECDSA_") { KeyAlg::P256 } else { KeyAlg::Rsa2048 }
}

/// The lab materials for a key type: the server certificate and the CA that signed it.
fn materials(key: KeyAlg) -> (&'static str, &'static str) {
    match key {
        KeyAlg::Rsa2048 => ("server-rsa", "ca-rsa"),
        KeyAlg::Rsa1024 => ("server-rsa1024", "ca-rsa"),
        KeyAlg::P256 => ("server-p256", "ca-p256"),
    }
}

/// The certificate and key file names on the module for a key type.
fn module_files(key: KeyAlg) -> (&'static str, &'static str) {
    match key {
        KeyAlg::Rsa2048 => ("srv-rsa.pem", "srv-rsa.key"),
        KeyAlg::Rsa1024 => ("srv-rsa1024.pem", "srv-rsa1024.key"),
        KeyAlg::P256 => ("srv-p256.pem", "srv-p256.key"),
    }
}

fn key_name(key: KeyAlg) -> &'static str {
    match key {
        KeyAlg::Rsa2048 => "RSA",
        KeyAlg::Rsa1024 => "RSA-1024",
        KeyAlg::P256 => "P-256",
    }
}

/// What `bench tls` runs.
#[derive(Clone, Copy, Debug)]
pub struct TlsOptions {
    /// Timed handshakes per suite and server.
    pub handshakes: usize,
    /// Handshakes before them, not timed.
    pub warmup: usize,
    /// The size of the file fetched.
    pub bytes: usize,
    /// Fetches over each of HTTP and HTTPS.
    pub runs: usize,
}

/// The median and the 95th percentile of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
}

impl Percentiles {
    /// The samples at rank round((n - 1) · q) when sorted; zeros for no samples.
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).copied().unwrap_or_default()
        };
        Self { p50: at(0.50), p95: at(0.95) }
    }
}

/// One suite's handshakes.
#[derive(Clone, Debug)]
pub struct SuiteHandshakes {
    /// OpenSSL's name of the suite.
    pub suite: String,
    pub key: KeyAlg,
    /// Against the module's HTTPS server.
    pub module: Percentiles,
    /// Against an OpenSSL server with the same certificate.
    pub openssl: Percentiles,
}

/// The file fetches, in bytes per second per run.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// OpenSSL's name of the HTTPS runs' suite.
    pub suite: String,
    pub plain: Vec<f64>,
    pub tls: Vec<f64>,
}

/// What `bench tls` measured.
#[derive(Clone, Debug)]
pub struct TlsBench {
    pub handshakes: usize,
    pub warmup: usize,
    pub bytes: usize,
    pub suites: Vec<SuiteHandshakes>,
    pub throughput: Throughput,
}

fn suite_name(iana: &str) -> Result<SuiteName, BenchError> {
    iana.parse().map_err(|e| BenchError::Unexpected(format!("suite {iana}: {e}")))
}

/// An OpenSSL client context asking for exactly `suite` at TLS 1.2, verifying the server's
/// certificate with `ca` (at the lab's now).
fn client(pki: &Pki, suite: &SuiteName, ca: &str) -> Result<SslContext, BenchError> {
    let ca: MaterialRef = ca.parse()?;
    let spec = TlsConnectSpec {
        version: Some(TlsVersion::Tls12),
        cipher: Some(suite.clone()),
        ca: Some(ca),
        ..TlsConnectSpec::new(HTTPS_PORT)
    };
    crate::peers::client_context(&spec, Some(pki))
        .map_err(|e| BenchError::Unexpected(format!("client for {}: {e}", suite.openssl())))
}

/// A TCP connection to `addr`; a server that refuses is asked again until `ready` passes
/// (it may just have been started).
fn connect(addr: SocketAddr, ready: Instant) -> Result<TcpStream, BenchError> {
    let timeout = crate::peers::HANDSHAKE_TIMEOUT;
    loop {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused && Instant::now() < ready => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(BenchError::Unexpected(format!("connect to {addr}: {e}")));
            }
        }
    }
}

/// A TLS handshake over `stream`, checked to have negotiated `suite` at TLS 1.2.
fn handshake(
    stream: TcpStream,
    ctx: &SslContext,
    suite: &SuiteName,
) -> Result<SslStream<TcpStream>, BenchError> {
    let addr = stream.peer_addr()?;
    let fail =
        |why: String| BenchError::Unexpected(format!("{} with {addr}: {why}", suite.openssl()));
    let ssl = Ssl::new(ctx).map_err(|e| fail(e.to_string()))?;
    let tls = ssl.connect(stream).map_err(|e| fail(format!("handshake: {e}")))?;
    let got = tls.ssl().current_cipher().map(|c| c.name());
    let version = tls.ssl().version_str();
    check(got == Some(suite.openssl()) && version == "TLSv1.2", || {
        format!("{addr} negotiated {got:?} at {version}, not {} at TLSv1.2", suite.openssl())
    })?;
    Ok(tls)
}

/// `warmup` then `timed` handshakes with the server at `addr`, each on a new connection
/// closed with close_notify: TCP connect to handshake done.
fn handshakes(
    netns: &Path,
    addr: SocketAddr,
    ctx: &SslContext,
    suite: &SuiteName,
    o: &TlsOptions,
) -> Result<Percentiles, BenchError> {
    in_netns(Some(netns), || {
        let ready = Instant::now() + READY_TIMEOUT;
        let mut samples = Vec::with_capacity(o.handshakes);
        for i in 0..o.warmup + o.handshakes {
            let t = Instant::now();
            let stream = connect(addr, ready)?;
            let mut tls = handshake(stream, ctx, suite)?;
            let took = t.elapsed();
            let _ = tls.shutdown();
            if i >= o.warmup {
                samples.push(took);
            }
        }
        Ok(Percentiles::of(samples))
    })
}

/// `GET /<FILE_NAME>` over `link`: the time from sending the request to the last byte, the
/// response checked to be 200 with exactly `want`.
fn fetch(
    link: &mut (impl Read + Write),
    host: SocketAddr,
    want: &[u8],
) -> Result<Duration, BenchError> {
    let request = format!("GET /{FILE_NAME} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let t = Instant::now();
    link.write_all(request.as_bytes())?;
    let mut response = Vec::with_capacity(want.len() + 256);
    link.read_to_end(&mut response)?;
    let took = t.elapsed();
    let (status, body) = parse_http_response(&response)
        .map_err(|e| BenchError::Unexpected(format!("GET /{FILE_NAME} from {host}: {e}")))?;
    check(status == 200 && body == want, || {
        format!(
            "GET /{FILE_NAME} from {host}: status {status}, {} body bytes ({} expected){}",
            body.len(),
            want.len(),
            if body.len() == want.len() { ", other bytes" } else { "" }
        )
    })?;
    Ok(took)
}

/// `runs` fetches of the file, each on a new connection (TLS when `tls` is given); bytes
/// per second of each.
fn fetches(
    netns: &Path,
    addr: SocketAddr,
    tls: Option<(&SslContext, &SuiteName)>,
    want: &[u8],
    runs: usize,
) -> Result<Vec<f64>, BenchError> {
    in_netns(Some(netns), || {
        let ready = Instant::now() + READY_TIMEOUT;
        (0..runs)
            .map(|_| {
                let stream = connect(addr, ready)?;
                let took = match tls {
                    Some((ctx, suite)) => fetch(&mut handshake(stream, ctx, suite)?, addr, want)?,
                    None => fetch(&mut { stream }, addr, want)?,
                };
                Ok(rate(want.len(), took))
            })
            .collect()
    })
}

/// Puts `key`'s certificate and key files in the HTTPS server's settings and restarts it
/// (a certificate is read when the server starts).
fn serve_with(s: &mut Session, key: KeyAlg) -> Result<(), BenchError> {
    let (cert, key) = module_files(key);
    exec(s, &format!("set http.server.tls_cert {cert}"), None)?;
    exec(s, &format!("set http.server.tls_key {key}"), None)?;
    exec(s, "set http.server.enabled 0", None)?;
    exec(s, "set http.server.enabled 1", None)?;
    Ok(())
}

/// Runs `bench tls` on one simulated module in a lab, with a lab PKI made in `workdir`.
pub fn run(rig: &Rig, workdir: &Path, o: &TlsOptions) -> Result<TlsBench, BenchError> {
    check(o.handshakes >= 1 && o.runs >= 1, || "use at least 1 handshake and 1 run".into())?;
    check(o.bytes >= 1, || "the file needs at least 1 byte".into())?;
    let ap = rig
        .lab
        .as_ref()
        .and_then(|l| l.aps.first().cloned())
        .ok_or_else(|| BenchError::NoLab { rig: rig.name.clone() })?;
    std::fs::create_dir_all(workdir)?;
    let pki = Pki::generate(&workdir.join("pki"))?;
    let mut session = Session::open(rig, workdir)?;
    let lab = session.lab.as_ref().map(|l| std::sync::Arc::clone(&l.lab));
    let lab = lab.ok_or_else(|| BenchError::NoLab { rig: rig.name.clone() })?;
    let netns = lab.netns_path();
    let s = &mut session;
    exec(s, &format!("set wlan.ssid {}", ap.ssid), None)?;
    if !ap.passkey.is_empty() {
        exec(s, &format!("set wlan.passkey {}", ap.passkey), None)?;
    }
    exec(s, "set bus.command.read_timeout 3000", None)?;
    exec(s, &format!("set time.rtc {}", crate::pki::LAB_NOW), None)?;

    // The certificates, and the file (unprotected: served without credentials).
    let mut files = Vec::new();
    for key in [KeyAlg::Rsa2048, KeyAlg::P256] {
        let (material, _) = materials(key);
        let (cert, key_file) = module_files(key);
        files.push((cert.to_string(), material.parse::<PkiRef>()?));
        files.push((key_file.to_string(), format!("{material}.key").parse::<PkiRef>()?));
    }
    crate::pki::put_on_module(&mut s.control, &pki, &files, true, Duration::from_secs(30))?;
    let data = crate::peers::pattern(o.bytes as u64);
    exec(s, &format!("file_delete {FILE_NAME}"), None).ok();
    exec(s, &format!("file_create -u {FILE_NAME} {}", o.bytes), Some(&data))?;

    // Plain HTTP first, then the same server over TLS.
    exec(s, "set http.server.tls_enabled 0", None)?;
    exec(s, &format!("set http.server.port {HTTP_PORT}"), None)?;
    exec(s, "set http.server.enabled 1", None)?;
    exec(s, "network_up", None)?;
    let ip = exec(s, "get wlan.network.ip", None)?;
    let ip: std::net::Ipv4Addr = ip
        .trim()
        .parse()
        .map_err(|_| BenchError::Unexpected(format!("wlan.network.ip is `{}`", ip.trim())))?;
    let plain = fetches(&netns, (ip, HTTP_PORT).into(), None, &data, o.runs)?;

    let (cert, key) = module_files(KeyAlg::Rsa2048);
    exec(s, &format!("set http.server.tls_cert {cert}"), None)?;
    exec(s, &format!("set http.server.tls_key {key}"), None)?;
    exec(s, &format!("set http.server.port {HTTPS_PORT}"), None)?;
    exec(s, "set http.server.tls_enabled 1", None)?;
    let module: SocketAddr = (ip, HTTPS_PORT).into();
    let suite = suite_name(THROUGHPUT_SUITE)?;
    let ctx = client(&pki, &suite, materials(key_for(THROUGHPUT_SUITE)).1)?;
    let tls = fetches(&netns, module, Some((&ctx, &suite)), &data, o.runs)?;
    let throughput = Throughput { suite: suite.openssl().to_string(), plain, tls };

    // Handshakes: the module and an OpenSSL server with each certificate.
    let host = crate::peers::DEFAULT_PEER_ADDR;
    let server = |port, key| -> Result<PeerSpec, BenchError> {
        Ok(PeerSpec::tls_server(port, materials(key).0.parse()?))
    };
    let peers = Peers::start_with_pki(
        &lab,
        &[server(OPENSSL_PORTS.0, KeyAlg::Rsa2048)?, server(OPENSSL_PORTS.1, KeyAlg::P256)?],
        Some(&pki),
    )?;
    let mut serving = KeyAlg::Rsa2048;
    let mut suites = Vec::with_capacity(SUITES.len());
    for iana in SUITES {
        let suite = suite_name(iana)?;
        let key = key_for(iana);
        if key != serving {
            serve_with(s, key)?;
            serving = key;
        }
        let ctx = client(&pki, &suite, materials(key).1)?;
        let module = handshakes(&netns, module, &ctx, &suite, o)?;
        let port = if key == KeyAlg::Rsa2048 { OPENSSL_PORTS.0 } else { OPENSSL_PORTS.1 };
        let openssl = handshakes(&netns, (host, port).into(), &ctx, &suite, o)?;
        suites.push(SuiteHandshakes { suite: suite.openssl().to_string(), key, module, openssl });
    }
    drop(peers);
    drop(session);
    Ok(TlsBench { handshakes: o.handshakes, warmup: o.warmup, bytes: o.bytes, suites, throughput })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The lines `hil bench tls` prints: handshake times per suite with the module/OpenSSL
/// ratio, then the throughput over HTTP and HTTPS with the TLS/plain ratio.
pub fn report(b: &TlsBench) -> Vec<String> {
    let mut out = vec![
        format!(
            "TLS 1.2 handshakes, TCP connect to handshake done, {} per suite and server after {} warm-up handshakes, each on a new connection",
            b.handshakes, b.warmup
        ),
        "  client: OpenSSL in the lab namespace, offering only the suite, verifying the certificate".into(),
        "  module: its HTTPS server; openssl: an OpenSSL server (lab tls_server peer) with the same certificate".into(),
        format!("  {:<30} {:<5}   {:^17}   {:^17}   {:^15}", "", "", "module", "openssl", "module/openssl")
            .trim_end()
            .to_string(),
        format!(
            "  {:<30} {:<5}   {:>8} {:>8}   {:>8} {:>8}   {:>7} {:>7}",
            "suite", "cert", "p50 ms", "p95 ms", "p50 ms", "p95 ms", "p50", "p95"
        ),
    ];
    for h in &b.suites {
        out.push(format!(
            "  {:<30} {:<5}   {:>8.2} {:>8.2}   {:>8.2} {:>8.2}   {:>6.2}x {:>6.2}x",
            h.suite,
            key_name(h.key),
            ms(h.module.p50),
            ms(h.module.p95),
            ms(h.openssl.p50),
            ms(h.openssl.p95),
            ms(h.module.p50) / ms(h.openssl.p50),
            ms(h.module.p95) / ms(h.openssl.p95)
        ));
    }
    let t = &b.throughput;
    let mb = |r: f64| r / 1e6;
    let (plain, tls) = (Spread::of(t.plain.iter().copied()), Spread::of(t.tls.iter().copied()));
    out.push(format!(
        "GET /{FILE_NAME} ({} bytes) from the module's HTTP server, {} runs each, median (min..max), MB = 10^6 bytes; request sent to last byte, each on a new connection (its handshake not counted)",
        b.bytes,
        t.plain.len()
    ));
    out.push(format!(
        "  {:<44} {:>8.2} MB/s ({:.2}..{:.2})",
        "plain HTTP",
        mb(plain.median),
        mb(plain.min),
        mb(plain.max)
    ));
    out.push(format!(
        "  {:<44} {:>8.2} MB/s ({:.2}..{:.2})",
        format!("HTTPS {}", t.suite),
        mb(tls.median),
        mb(tls.min),
        mb(tls.max)
    ));
    out.push(format!("  {:<44} {:>8.2}x", "TLS/plain (medians)", tls.median / plain.median));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suites_are_the_firmwares() {
        let firmware: Vec<&str> = gecko_core::tls::SUITES
            .iter()
            .map(|s| s.name.strip_prefix("MBEDTLS_").unwrap_or(s.name))
            .collect();
        assert_eq!(SUITES.to_vec(), firmware);
        for iana in SUITES {
            assert!(suite_name(iana).is_ok(), "OpenSSL knows {iana}");
        }
    }

    #[rstest::rstest]
    #[case::ecdsa("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", KeyAlg::P256)]
    #[case::ecdhe_rsa("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", KeyAlg::Rsa2048)]
    #[case::dhe("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", KeyAlg::Rsa2048)]
    #[case::rsa("TLS_RSA_WITH_AES_128_CBC_SHA", KeyAlg::Rsa2048)]
    fn each_suite_gets_the_certificate_it_needs(#[case] iana: &str, #[case] want: KeyAlg) {
        assert_eq!(key_for(iana), want);
    }

    #[rstest::rstest]
    #[case::one(&[7], (7, 7))]
    #[case::twenty(&(1..=20).collect::<Vec<_>>(), (11, 19))]
    #[case::unsorted(&[5, 1, 3], (3, 5))]
    #[case::none(&[], (0, 0))]
    fn percentiles(#[case] ms: &[u64], #[case] want: (u64, u64)) {
        let p = Percentiles::of(ms.iter().map(|&m| Duration::from_millis(m)).collect());
        assert_eq!((p.p50, p.p95), (Duration::from_millis(want.0), Duration::from_millis(want.1)));
    }

    #[test]
    fn a_rig_without_a_lab_says_so_before_starting_anything() {
        let rig = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rigs/sim-nolab.toml");
        let rig = crate::rig::load(&rig).expect("rig");
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("bench");
        let options = TlsOptions { handshakes: 20, warmup: 2, bytes: 1024, runs: 5 };
        let err = run(&rig, &work, &options).expect_err("no lab");
        assert!(matches!(err, BenchError::NoLab { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("rig `{}` has no lab network with an access point to join", rig.name)
        );
        assert!(!work.exists(), "nothing written");
    }

    #[rstest::rstest]
    #[case::no_handshakes(TlsOptions { handshakes: 0, warmup: 2, bytes: 1024, runs: 5 }, "use at least 1 handshake and 1 run")]
    #[case::no_runs(TlsOptions { handshakes: 20, warmup: 2, bytes: 1024, runs: 0 }, "use at least 1 handshake and 1 run")]
    #[case::empty_file(TlsOptions { handshakes: 20, warmup: 2, bytes: 0, runs: 5 }, "the file needs at least 1 byte")]
    fn bad_options_are_refused(#[case] options: TlsOptions, #[case] want: &str) {
        let rig = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rigs/sim.toml");
        let rig = crate::rig::load(&rig).expect("rig");
        let dir = tempfile::tempdir().expect("temp dir");
        let err = run(&rig, &dir.path().join("bench"), &options).expect_err("refused");
        assert_eq!(err.to_string(), want);
    }

    #[test]
    fn the_tls_report_has_each_suite_its_ratio_and_the_throughput() {
        let us = Duration::from_micros;
        let p = |p50, p95| Percentiles { p50: us(p50), p95: us(p95) };
        let suites = SUITES
            .iter()
            .zip(1u64..)
            .map(|(iana, i)| SuiteHandshakes {
                suite: suite_name(iana).expect("suite").openssl().to_string(),
                key: key_for(iana),
                module: p(10_000 + 500 * i, 12_000 + 500 * i),
                openssl: p(1_000 + 100 * i, 1_500 + 100 * i),
            })
            .collect();
        let b = TlsBench {
            handshakes: 20,
            warmup: 2,
            bytes: 131_072,
            suites,
            throughput: Throughput {
                suite: "ECDHE-RSA-AES128-GCM-SHA256".into(),
                plain: vec![20e6, 25e6, 22e6, 24e6, 21e6],
                tls: vec![8e6, 10e6, 9e6, 11e6, 7e6],
            },
        };
        insta::assert_snapshot!("tls_report", report(&b).join("\n"));
    }
}

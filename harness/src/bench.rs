//! `hil bench serial`: command round trip through the harness against a module, beside a
//! raw floor on the same port (write the command bytes, read the framed reply, nothing else).

use crate::channel::{Channel, Request};
use crate::rig::Rig;
use crate::session::Session;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

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
pub fn serial(rig: &Rig, workdir: &Path, iterations: usize) -> anyhow::Result<SerialBench> {
    anyhow::ensure!(iterations >= 10, "use at least 10 iterations");
    let mut session = Session::open(rig, workdir)?;
    session.channel.resync(crate::channel::ConsoleFormat::Machine, rig.reboot_timeout)?;
    // A known value, so the raw floor knows how many bytes the reply has.
    let request = Request { line: "set wlan.ssid bench", data: None, timeout: rig.command_timeout };
    session.channel.execute(&request)?;
    let request = Request { line: "get wlan.ssid", data: None, timeout: rig.command_timeout };
    let mut harness = Vec::with_capacity(iterations);
    for i in 0..iterations + iterations / 10 {
        let t = Instant::now();
        let reply = session.channel.execute(&request)?;
        let took = t.elapsed();
        anyhow::ensure!(reply.code.0 == 0 && reply.text() == "bench", "unexpected reply {reply:?}");
        if i >= iterations / 10 {
            harness.push(took);
        }
        if i % 1000 == 0 {
            session.channel.restart();
        }
    }
    let port = session.channel.endpoint();
    let Session { channel, sim, .. } = session;
    drop(channel);
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
            anyhow::ensure!(n > 0, "port closed");
            got += n;
        }
        let took = t.elapsed();
        anyhow::ensure!(&buf[..got] == expected, "unexpected raw reply {:?}", &buf[..got]);
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
) -> anyhow::Result<SuiteBench> {
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
            retries: 0,
            reports_root: workdir.join(format!("reports-{j}")),
            progress: false,
            jobs: j,
        };
        let t = Instant::now();
        let (run, _) = crate::runner::run(specs, rig, &options)?;
        runs.push((j, t.elapsed()));
        anyhow::ensure!(
            run.totals.is_green(),
            "the suite is not green with --jobs {j}: {:?}",
            run.totals
        );
        cases = run.cases.len();
    }
    Ok(SuiteBench { setup, cases, runs })
}

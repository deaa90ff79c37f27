//! Shared rigs through labgrid: its coordinator, exporters and places are the lab's engine,
//! not a scheduler of ours. A rig names a place (or tags); [`hold`] reserves one
//! (`labgrid-client reserve`, then `wait` with the rig's deadline), acquires it, and reads
//! the console it exports (a `NetworkSerialPort`: the exporter's ser2net, RFC 2217). The
//! [`Held`] place is released when it is dropped, on every way out; a holding record in
//! [`RECORDS_DIR`] names the owner process, so that [`sweep_stale`] releases what a killed
//! harness left.
//!
//! Everything goes through the `labgrid-client` program (`pip install labgrid`): its
//! command line is labgrid's stable interface. Failures are infrastructure errors with the
//! reason labgrid gave: an unreachable coordinator, a place held by someone else, no place
//! within the time, a place that exports no console.

use crate::lab::owner::ProcessId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where holding records are (`/run` is emptied at boot; a place held then is the
/// coordinator's to forget).
pub const RECORDS_DIR: &str = "/run/gecko-hil/labgrid";
/// How long one `labgrid-client` call may take before it counts as hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The `labgrid-client` program: `$LABGRID_CLIENT`, else the first on `PATH`.
pub fn find_client() -> Option<PathBuf> {
    match std::env::var_os("LABGRID_CLIENT") {
        Some(p) => Some(PathBuf::from(p)),
        None => crate::lab::netns::find_tool("labgrid-client"),
    }
}

/// Which place a rig wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaceFilter {
    /// This place, by name.
    Name(String),
    /// Any place with all these tags (`key=value`).
    Tags(Vec<(String, String)>),
}

impl PlaceFilter {
    /// The filter as `labgrid-client reserve` takes it (a place name is the `name` tag).
    fn args(&self) -> Vec<String> {
        match self {
            PlaceFilter::Name(name) => vec![format!("name={name}")],
            PlaceFilter::Tags(tags) => tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        }
    }
}

impl PlaceFilter {
    fn matches(&self, place: &PlaceInfo) -> bool {
        match self {
            PlaceFilter::Name(n) => &place.name == n,
            PlaceFilter::Tags(tags) => tags.iter().all(|t| place.tags.contains(t)),
        }
    }
}

impl std::fmt::Display for PlaceFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceFilter::Name(name) => write!(f, "place `{name}`"),
            PlaceFilter::Tags(_) => write!(f, "a place tagged {}", self.args().join(" ")),
        }
    }
}

/// A rig's `[labgrid]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabgridSpec {
    /// `host:port` of the coordinator; `None`: labgrid's own default (`LG_COORDINATOR`).
    pub coordinator: Option<String>,
    pub filter: PlaceFilter,
    /// How long to wait for a place before giving up.
    pub wait: Duration,
    /// The `labgrid-client` program (default: found on `PATH`).
    pub client: PathBuf,
}

/// What went wrong with labgrid: always the lab's fault, never the module's.
#[derive(Debug, thiserror::Error)]
pub enum LabgridError {
    #[error(
        "`{client}` cannot be started ({source}); install labgrid (`pip install labgrid`) or name the program in the rig's [labgrid] client"
    )]
    NoClient {
        client: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the labgrid coordinator at {coordinator} cannot be reached: {detail}")]
    Unreachable { coordinator: String, detail: String },
    #[error("no labgrid place ({filter}) could be had within {} s{holders}", waited.as_secs())]
    NotAvailable { filter: String, waited: Duration, holders: String },
    #[error("labgrid place `{place}`: {detail}")]
    Place { place: String, detail: String },
    #[error("labgrid: `labgrid-client {args}`: {detail}")]
    Client { args: String, detail: String },
    #[error("stopped (a signal) while `labgrid-client {args}` ran")]
    Interrupted { args: String },
}

/// A console exported by a labgrid place: ser2net's RFC 2217 port on the exporter's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConsole {
    pub host: String,
    pub port: u16,
}

/// A place this process holds (reserved and acquired); released on drop.
#[derive(Debug)]
pub struct Held {
    spec: LabgridSpec,
    token: String,
    place: String,
    console: NetConsole,
    released: bool,
}

/// The record of a held place, for [`sweep_stale`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HoldingRecord {
    owner: ProcessId,
    coordinator: Option<String>,
    client: PathBuf,
    place: String,
    token: String,
}

impl HoldingRecord {
    fn path(coordinator: Option<&str>, place: &str) -> PathBuf {
        let coordinator = coordinator.unwrap_or("default").replace(['/', ':'], "_");
        Path::new(RECORDS_DIR).join(format!("{coordinator}-{place}"))
    }
}

impl Held {
    pub fn place(&self) -> &str {
        &self.place
    }
    pub fn token(&self) -> &str {
        &self.token
    }
    /// The place's serial console, as its exporter serves it.
    pub fn console(&self) -> &NetConsole {
        &self.console
    }

    /// Releases the place and cancels its reservation (also done on drop).
    pub fn release(mut self) -> Result<(), LabgridError> {
        self.release_now()
    }

    fn release_now(&mut self) -> Result<(), LabgridError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        let released = release(&self.spec, &self.place, &self.token);
        let _ = std::fs::remove_file(HoldingRecord::path(
            self.spec.coordinator.as_deref(),
            &self.place,
        ));
        released
    }
}

/// Releases `place` and cancels its reservation `token` (whatever became of it).
fn release(spec: &LabgridSpec, place: &str, token: &str) -> Result<(), LabgridError> {
    let released = call(spec, &["-p", place, "release"]).map(drop);
    let _ = call(spec, &["cancel-reservation", token]);
    released
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Err(e) = self.release_now() {
            eprintln!("warning: {e}");
        }
    }
}

/// Reserves a place matching the rig's filter (waiting up to `spec.wait`), acquires it and
/// reads its console.
pub fn hold(spec: &LabgridSpec) -> Result<Held, LabgridError> {
    // What a killed harness of this machine left is released first.
    for line in sweep_stale() {
        eprintln!("{line}");
    }
    let mut args = vec!["reserve".to_string(), "--shell".to_string()];
    args.extend(spec.filter.args());
    let out = call(spec, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let token = parse_token(&out).ok_or_else(|| LabgridError::Client {
        args: args.join(" "),
        detail: format!("no `LG_TOKEN=` in its answer `{}`", out.trim()),
    })?;
    // `wait` ends when the reservation is allocated; it is stopped at the rig's deadline.
    let allocated = match run(spec, &["wait", &token], spec.wait, true) {
        Ok(out) => parse_allocation(&out),
        Err(e) => {
            let _ = call(spec, &["cancel-reservation", &token]);
            return Err(match e {
                RunError::TimedOut => LabgridError::NotAvailable {
                    filter: spec.filter.to_string(),
                    waited: spec.wait,
                    holders: holders(spec),
                },
                RunError::Failed(e) => e,
            });
        }
    };
    // Recorded before it is acquired: a harness killed from here on leaves a record the next
    // start sweeps.
    if let (Some(owner), Some(place)) = (ProcessId::current(), &allocated) {
        let record = HoldingRecord {
            owner,
            coordinator: spec.coordinator.clone(),
            client: spec.client.clone(),
            place: place.clone(),
            token: token.clone(),
        };
        let _ = write_record(&record);
    }
    let place_ref = format!("+{token}");
    let acquired = call(spec, &["-p", &place_ref, "acquire"]);
    let shown = acquired.and_then(|_| call(spec, &["-p", &place_ref, "show"]));
    let shown = match shown {
        Ok(s) => s,
        Err(e) => {
            let _ = release(spec, &place_ref, &token);
            return Err(e);
        }
    };
    let place = parse_place_name(&shown).or(allocated).unwrap_or_else(|| place_ref.clone());
    let mut held = Held {
        spec: spec.clone(),
        token,
        place: place.clone(),
        console: NetConsole { host: String::new(), port: 0 },
        released: false,
    };
    // From here on, dropping `held` releases the place.
    held.console = parse_console(&shown).ok_or_else(|| LabgridError::Place {
        place,
        detail: "it exports no serial console (a NetworkSerialPort with host and port): \
                 add a RawSerialPort or USBSerialPort to its exporter's group"
            .into(),
    })?;
    Ok(held)
}

/// Releases the places whose holding process is gone (killed outright); returns one line per
/// place released.
pub fn sweep_stale() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(RECORDS_DIR) else { return Vec::new() };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(record) = serde_json::from_str::<HoldingRecord>(&text) else {
            // Not ours, or half written by a process that died: leave it to a person.
            continue;
        };
        if record.owner.is_running() {
            continue;
        }
        let spec = LabgridSpec {
            coordinator: record.coordinator.clone(),
            filter: PlaceFilter::Name(record.place.clone()),
            wait: Duration::ZERO,
            client: record.client.clone(),
        };
        let released = release(&spec, &record.place, &record.token);
        // A holder killed between its reservation and its acquire left nothing to release.
        let never_acquired = |e: &LabgridError| e.to_string().contains("is not acquired");
        match released {
            Err(e) if never_acquired(&e) => {
                let _ = std::fs::remove_file(&path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
                swept.push(format!(
                    "released labgrid place `{}`, held by process {} which is gone",
                    record.place, record.owner.pid
                ));
            }
            Err(e) => {
                swept.push(format!("could not release labgrid place `{}`: {e}", record.place))
            }
        }
    }
    swept
}

fn write_record(record: &HoldingRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(RECORDS_DIR)?;
    let path = HoldingRecord::path(record.coordinator.as_deref(), &record.place);
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string(record).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, &path)
}

/// The places matching the rig's filter, free or not.
pub fn matching_places(spec: &LabgridSpec) -> Result<Vec<String>, LabgridError> {
    let out = call(spec, &["-v", "places"])?;
    Ok(parse_places(&out).into_iter().filter(|p| spec.filter.matches(p)).map(|p| p.name).collect())
}

/// Who holds the places matching the filter, for the error message (`; held: a by x, ...`).
fn holders(spec: &LabgridSpec) -> String {
    let Ok(out) = call(spec, &["-v", "places"]) else { return String::new() };
    let places = parse_places(&out);
    let wanted: Vec<String> = places
        .iter()
        .filter(|p| spec.filter.matches(p))
        .map(|p| match &p.acquired {
            Some(by) => format!("`{}` is acquired by {by}", p.name),
            None => format!("`{}` is reserved or free", p.name),
        })
        .collect();
    if wanted.is_empty() {
        "; no place matches it".into()
    } else {
        format!("; {}", wanted.join(", "))
    }
}

/// How a `labgrid-client` call ended badly.
enum RunError {
    TimedOut,
    Failed(LabgridError),
}

/// One `labgrid-client` call with the standard timeout; its standard output.
pub(crate) fn call(spec: &LabgridSpec, args: &[&str]) -> Result<String, LabgridError> {
    run(spec, args, CALL_TIMEOUT, false).map_err(|e| match e {
        RunError::TimedOut => LabgridError::Client {
            args: args.join(" "),
            detail: format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
        },
        RunError::Failed(e) => e,
    })
}

/// One `labgrid-client` call, killed at `timeout`; with `interruptible`, also when the run is
/// stopped (a wait for a place; never a release, which must finish).
fn run(
    spec: &LabgridSpec,
    args: &[&str],
    timeout: Duration,
    interruptible: bool,
) -> Result<String, RunError> {
    let mut cmd = Command::new(&spec.client);
    if let Some(c) = &spec.coordinator {
        cmd.args(["-x", c]);
    }
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| {
        RunError::Failed(LabgridError::NoClient {
            client: spec.client.display().to_string(),
            source,
        })
    })?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::TimedOut);
            }
            // A run stopped while it waits for a place stops waiting (and cancels).
            Ok(None) if interruptible && crate::interrupt::requested() => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Failed(LabgridError::Interrupted { args: args.join(" ") }));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                return Err(RunError::Failed(LabgridError::Client {
                    args: args.join(" "),
                    detail: e.to_string(),
                }));
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| {
        RunError::Failed(LabgridError::Client { args: args.join(" "), detail: e.to_string() })
    })?;
    judge(spec, args, out).map_err(RunError::Failed)
}

/// A finished call: its output, or the error labgrid reported, classified.
pub(crate) fn judge(
    spec: &LabgridSpec,
    args: &[&str],
    out: Output,
) -> Result<String, LabgridError> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail = last_line(&stderr).unwrap_or_else(|| out.status.to_string());
    if is_unreachable(&stderr) {
        return Err(LabgridError::Unreachable {
            coordinator: spec.coordinator.clone().unwrap_or_else(|| "(LG_COORDINATOR)".into()),
            detail,
        });
    }
    if let [.., "-p", place, _] = args {
        return Err(LabgridError::Place { place: (*place).to_string(), detail });
    }
    Err(LabgridError::Client { args: args.join(" "), detail })
}

/// labgrid's words for a coordinator that does not answer (gRPC connection errors).
fn is_unreachable(stderr: &str) -> bool {
    ["failed to connect", "Connection refused", "UNAVAILABLE", "Could not connect"]
        .iter()
        .any(|w| stderr.contains(w))
}

fn last_line(text: &str) -> Option<String> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

/// `export LG_TOKEN=ABC123` (from `reserve --shell`).
fn parse_token(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let token = l.trim().strip_prefix("export LG_TOKEN=")?;
        (!token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric()))
            .then(|| token.to_string())
    })
}

/// The place a reservation was given (`wait` prints the reservation: `allocations:` then
/// `main: <place>`).
fn parse_allocation(out: &str) -> Option<String> {
    let block = out.rsplit("allocations:").next().filter(|_| out.contains("allocations:"))?;
    block.lines().find_map(|l| {
        let place = l.trim().strip_prefix("main:")?.trim();
        let place = place.trim_matches(|c| c == '[' || c == ']' || c == '\'');
        (!place.is_empty()).then(|| place.to_string())
    })
}

/// `Place 'name':` (from `show`).
fn parse_place_name(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let rest = l.strip_prefix("Place '")?;
        Some(rest.split_once("':")?.0.to_string())
    })
}

/// The host and port of the first acquired `NetworkSerialPort` (from `show`: a Python dict
/// per resource).
fn parse_console(out: &str) -> Option<NetConsole> {
    let mut blocks = out.split("Acquired resource ").skip(1);
    blocks.find_map(|block| {
        if !block.contains("'cls': 'NetworkSerialPort'") {
            return None;
        }
        let host = quoted_value(block, "'host': ")?;
        let port = block.split("'port': ").nth(1)?;
        let port: String = port.chars().take_while(char::is_ascii_digit).collect();
        Some(NetConsole { host, port: port.parse().ok().filter(|p| *p != 0)? })
    })
}

fn quoted_value(block: &str, key: &str) -> Option<String> {
    let rest = block.split(key).nth(1)?.strip_prefix('\'')?;
    Some(rest.split_once('\'')?.0.to_string())
}

/// One place of `-v places`.
#[derive(Debug, PartialEq, Eq)]
struct PlaceInfo {
    name: String,
    tags: Vec<(String, String)>,
    acquired: Option<String>,
}

fn parse_places(out: &str) -> Vec<PlaceInfo> {
    let mut places: Vec<PlaceInfo> = Vec::new();
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("Place '").and_then(|r| r.split_once("':")) {
            places.push(PlaceInfo { name: name.0.to_string(), tags: Vec::new(), acquired: None });
            continue;
        }
        let Some(place) = places.last_mut() else { continue };
        let line = line.trim();
        if let Some(tags) = line.strip_prefix("tags:") {
            place.tags = tags
                .split(',')
                .filter_map(|t| t.trim().split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        } else if let Some(by) = line.strip_prefix("acquired:") {
            let by = by.trim();
            place.acquired = (by != "None" && !by.is_empty()).then(|| by.to_string());
        }
    }
    places
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    const SHOW: &str = "Place 'sim-b':
  tags: kind=sim
  matches:
    lab1/sim-b/*
  acquired: vm/root
  acquired resources:
    lab1/sim-b/NetworkSerialPort/RawSerialPort
  created: 2026-12-06 22:14:11.908074
  reservation: BREQHZ6VC3
Acquired resource 'RawSerialPort' (lab1/sim-b/NetworkSerialPort/RawSerialPort):
  {'acquired': 'sim-b',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'path': '/dev/pts/1',
                        'proxy': 'localhost',
                        'proxy_required': False},
              'host': '127.0.0.1',
              'port': 41235,
              'speed': 115200}}
";

    #[test]
    fn show_gives_the_place_and_its_console() {
        assert_eq!(parse_place_name(SHOW).as_deref(), Some("sim-b"));
        assert_eq!(parse_console(SHOW), Some(NetConsole { host: "127.0.0.1".into(), port: 41235 }));
    }

    #[rstest::rstest]
    #[case::no_resource("Place 'a':\n  acquired: vm/root\n")]
    #[case::not_started(&SHOW.replace("41235", "None"))]
    #[case::other_class(&SHOW.replace("NetworkSerialPort'", "NetworkPowerPort'"))]
    #[case::garbage("Acquired resource {{{ 'cls': 'NetworkSerialPort' 'host': ")]
    fn a_place_without_a_usable_console_has_none(#[case] show: &str) {
        assert_eq!(parse_console(show), None);
    }

    #[test]
    fn wait_gives_the_allocated_place() {
        let out = "Reservation 'BREQHZ6VC3':\n  owner: vm/root\n  token: BREQHZ6VC3\n  state: allocated\n  filters:\n    main: kind=sim\n  allocations:\n    main: sim-place-b\n  created: 2026-12-06 22:14:17.550903\n";
        assert_eq!(parse_allocation(out).as_deref(), Some("sim-place-b"));
        let waiting = "Reservation 'X':\n  state: waiting\n  filters:\n    main: kind=sim\n";
        assert_eq!(parse_allocation(waiting), None);
    }

    #[rstest::rstest]
    #[case("export LG_TOKEN=BREQHZ6VC3\n", Some("BREQHZ6VC3"))]
    #[case("Reservation 'X':\n  token: X\n", None)]
    #[case("export LG_TOKEN=$(rm -rf)\n", None)]
    fn reserve_gives_a_token(#[case] out: &str, #[case] token: Option<&str>) {
        assert_eq!(parse_token(out).as_deref(), token);
    }

    #[test]
    fn places_list_says_who_holds_what() {
        let out = "Place 'sim-a':\n  tags: kind=sim, rack=2\n  acquired: lab/alice\nPlace 'sim-b':\n  tags: kind=sim\n  acquired: None\n";
        assert_eq!(
            parse_places(out),
            vec![
                PlaceInfo {
                    name: "sim-a".into(),
                    tags: vec![("kind".into(), "sim".into()), ("rack".into(), "2".into())],
                    acquired: Some("lab/alice".into()),
                },
                PlaceInfo {
                    name: "sim-b".into(),
                    tags: vec![("kind".into(), "sim".into())],
                    acquired: None
                },
            ]
        );
    }

    #[test]
    fn filters_read_as_reserve_takes_them() {
        assert_eq!(PlaceFilter::Name("sim-a".into()).args(), ["name=sim-a"]);
        let tags =
            PlaceFilter::Tags(vec![("kind".into(), "sim".into()), ("rack".into(), "2".into())]);
        assert_eq!(tags.args(), ["kind=sim", "rack=2"]);
        assert_eq!(tags.to_string(), "a place tagged kind=sim rack=2");
    }
}

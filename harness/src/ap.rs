//! Access points the harness controls: add and remove networks, inject radio faults, read
//! the radio's event log for the timeline.
//!
//! [`AccessPoints`] is the driver trait; [`SimAccessPoints`] implements it over the lab
//! control channel of a simulated module (`gecko-sim --lab-socket PATH`, line-delimited
//! JSON; the protocol is written down in the firmware's `sim::lab` module), or of a board's
//! radio equipment (`gecko-sim radio`), which serves the same channel. A real rig would
//! implement it over hostapd's control interface.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An access point, as the lab describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApConfig {
    pub ssid: String,
    /// `02:00:00:00:01:01`.
    pub bssid: String,
    pub channel: u8,
    /// A Gecko OS security name: `open`, `wep`, `wpa-aes`, `wpa-tkip`, `wpa2-aes`,
    /// `wpa2-mixed`, `wpa2-tkip`; or `wpa3-sae`, which the module sees and cannot join.
    /// The module's scans find channels 1 to 14 only.
    pub security: String,
    /// WPA passphrase (8 to 63 characters) or 64 hex digits; WEP key; empty when open.
    #[serde(default)]
    pub passkey: String,
    /// dBm.
    #[serde(default = "default_rssi")]
    pub rssi: i16,
    /// Answers only probes that name its SSID.
    #[serde(default)]
    pub hidden: bool,
}

fn default_rssi() -> i16 {
    -50
}

/// A fault to inject into the radio.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Reject the next `count` associations.
    RejectAssociation { count: u32 },
    /// Give no answer to the next `count` scans or probes.
    IgnoreProbes { count: u32 },
    /// Hold the next `count` association answers back `ms` milliseconds.
    DelayAssociation { ms: u64, count: u32 },
    /// The AP drops its clients now (it stays on the air).
    DropAp { bssid: String },
    /// Drop DHCP frames both ways: the next `count`, or all until cleared (`None`).
    DhcpSilent {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        count: Option<u32>,
    },
    /// The module's next `count` writes to `store` fail (a failing flash part).
    StoreFail { store: FaultStore, count: u32 },
    /// Until the faults are cleared, the module's TLS stack may hold at most `bytes` at once
    /// (a module short of RAM: `TLS malloc failed`).
    TlsHeap { bytes: usize },
}

/// A storage area of the module a [`Fault::StoreFail`] hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStore {
    /// The settings (`save`).
    Nvm,
    /// The file system.
    Files,
}

/// The id the lab gave an injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultId(pub u64);

/// How often a fault acted, and whether it still can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStatus {
    pub fired: u32,
    pub armed: bool,
}

/// One entry of the radio's event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadioEvent {
    /// Increasing; ask for events after the last one seen.
    pub seq: u64,
    /// Wall clock, milliseconds since the UNIX epoch.
    pub unix_ms: u64,
    pub text: String,
}

/// What the radio says about the module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadioState {
    /// BSSID of the AP the module is associated with.
    pub associated: Option<String>,
    /// The module's IPv4 address, when it has one.
    pub ip: Option<String>,
}

/// Why the access points could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ApError {
    #[error("lab socket {path}: cannot connect: {source}")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("lab socket {path}: {op}: {source}")]
    Io { path: PathBuf, op: &'static str, source: std::io::Error },
    #[error("lab socket {path}: no answer to `{op}` within {timeout:?}")]
    Timeout { path: PathBuf, op: &'static str, timeout: Duration },
    #[error("lab socket {path}: connection closed before the answer to `{op}`")]
    Closed { path: PathBuf, op: &'static str },
    #[error("lab socket {path}: malformed answer to `{op}`: {reason} (line: {line:?})")]
    Malformed { path: PathBuf, op: &'static str, reason: String, line: String },
    /// The lab understood and refused.
    #[error("lab socket {path}: `{op}` refused: {error}")]
    Refused { path: PathBuf, op: &'static str, error: String },
}

/// The lab's access points and radio, whatever implements them.
pub trait AccessPoints {
    /// Puts an AP on the air (replacing one with the same BSSID).
    fn add_ap(&mut self, ap: &ApConfig) -> Result<(), ApError>;
    /// Takes an AP off the air; a module associated with it loses its link.
    fn remove_ap(&mut self, bssid: &str) -> Result<(), ApError>;
    /// Moves an AP to another channel, where alone it answers from then on; a module
    /// associated with it loses its link.
    fn move_ap(&mut self, bssid: &str, channel: u8) -> Result<(), ApError>;
    /// The APs on the air.
    fn list_aps(&mut self) -> Result<Vec<ApConfig>, ApError>;
    /// Arms a fault.
    fn inject_fault(&mut self, fault: &Fault) -> Result<FaultId, ApError>;
    /// How often a fault acted.
    fn fault_status(&mut self, id: FaultId) -> Result<FaultStatus, ApError>;
    /// Disarms every fault.
    fn clear_faults(&mut self) -> Result<(), ApError>;
    /// Radio events with `seq > since`, oldest first.
    fn events_since(&mut self, since: u64) -> Result<Vec<RadioEvent>, ApError>;
    /// Association and address of the module, as the lab sees them.
    fn state(&mut self) -> Result<RadioState, ApError>;
}

/// The access points of a simulated module, over its lab socket. Connects on first use and
/// again after a failure; one request at a time.
#[derive(Debug)]
pub struct SimAccessPoints {
    path: PathBuf,
    timeout: Duration,
    conn: Option<BufReader<UnixStream>>,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl SimAccessPoints {
    /// Default time to wait for an answer.
    pub const TIMEOUT: Duration = Duration::from_secs(5);

    /// For the lab socket at `path` (nothing is opened yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), timeout: Self::TIMEOUT, conn: None }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&mut self) -> Result<&mut BufReader<UnixStream>, ApError> {
        if self.conn.is_none() {
            // The socket's file appears when the module binds it, a moment before it listens:
            // until then a connect is refused. Refusals for longer than that are an answer.
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            let stream = loop {
                match UnixStream::connect(&self.path) {
                    Err(e)
                        if e.kind() == std::io::ErrorKind::ConnectionRefused
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    other => break other,
                }
            }
            .map_err(|source| ApError::Connect { path: self.path.clone(), source })?;
            for r in [
                stream.set_read_timeout(Some(self.timeout)),
                stream.set_write_timeout(Some(self.timeout)),
            ] {
                r.map_err(|source| ApError::Connect { path: self.path.clone(), source })?;
            }
            self.conn = Some(BufReader::new(stream));
        }
        self.conn.as_mut().ok_or_else(|| ApError::Closed { path: self.path.clone(), op: "connect" })
    }

    /// Sends one request, returns the answer's fields (without `ok`).
    fn call(
        &mut self,
        op: &'static str,
        request: serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ApError> {
        let result = self.exchange(op, &request);
        if result.is_err() {
            // The stream may hold half an answer: start afresh next time.
            self.conn = None;
        }
        let line = result?;
        let path = self.path.clone();
        let answer: Answer = serde_json::from_str(&line).map_err(|e| ApError::Malformed {
            path: path.clone(),
            op,
            reason: e.to_string(),
            line: line.clone(),
        })?;
        if answer.ok {
            Ok(answer.rest)
        } else {
            let error = answer.error.unwrap_or_else(|| "no reason given".to_string());
            Err(ApError::Refused { path, op, error })
        }
    }

    fn exchange(
        &mut self,
        op: &'static str,
        request: &serde_json::Value,
    ) -> Result<String, ApError> {
        let (path, timeout) = (self.path.clone(), self.timeout);
        let io_error = |op, source: std::io::Error| {
            if matches!(
                source.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                ApError::Timeout { path: path.clone(), op, timeout }
            } else {
                ApError::Io { path: path.clone(), op, source }
            }
        };
        let conn = self.connect()?;
        let mut text = request.to_string();
        text.push('\n');
        conn.get_mut().write_all(text.as_bytes()).map_err(|e| io_error(op, e))?;
        let mut line = String::new();
        let n = conn.read_line(&mut line).map_err(|e| io_error(op, e))?;
        if n == 0 || !line.ends_with('\n') {
            return Err(ApError::Closed { path: path.clone(), op });
        }
        Ok(line.trim_end().to_string())
    }

    fn field<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        answer: &mut serde_json::Map<String, serde_json::Value>,
        name: &str,
    ) -> Result<T, ApError> {
        let value = answer.remove(name).unwrap_or(serde_json::Value::Null);
        serde_json::from_value(value.clone()).map_err(|e| ApError::Malformed {
            path: self.path.clone(),
            op,
            reason: format!("field `{name}`: {e}"),
            line: value.to_string(),
        })
    }
}

impl AccessPoints for SimAccessPoints {
    fn add_ap(&mut self, ap: &ApConfig) -> Result<(), ApError> {
        self.call("add_ap", serde_json::json!({"op": "add_ap", "ap": ap})).map(drop)
    }

    fn remove_ap(&mut self, bssid: &str) -> Result<(), ApError> {
        self.call("remove_ap", serde_json::json!({"op": "remove_ap", "bssid": bssid})).map(drop)
    }

    fn move_ap(&mut self, bssid: &str, channel: u8) -> Result<(), ApError> {
        let request = serde_json::json!({"op": "move_ap", "bssid": bssid, "channel": channel});
        self.call("move_ap", request).map(drop)
    }

    fn list_aps(&mut self) -> Result<Vec<ApConfig>, ApError> {
        let mut answer = self.call("list_aps", serde_json::json!({"op": "list_aps"}))?;
        self.field("list_aps", &mut answer, "aps")
    }

    fn inject_fault(&mut self, fault: &Fault) -> Result<FaultId, ApError> {
        let mut answer = self.call("fault", serde_json::json!({"op": "fault", "fault": fault}))?;
        self.field("fault", &mut answer, "id")
    }

    fn fault_status(&mut self, id: FaultId) -> Result<FaultStatus, ApError> {
        let mut answer =
            self.call("fault_status", serde_json::json!({"op": "fault_status", "id": id}))?;
        Ok(FaultStatus {
            fired: self.field("fault_status", &mut answer, "fired")?,
            armed: self.field("fault_status", &mut answer, "armed")?,
        })
    }

    fn clear_faults(&mut self) -> Result<(), ApError> {
        self.call("clear_faults", serde_json::json!({"op": "clear_faults"})).map(drop)
    }

    fn events_since(&mut self, since: u64) -> Result<Vec<RadioEvent>, ApError> {
        let mut answer =
            self.call("events", serde_json::json!({"op": "events", "since": since}))?;
        self.field("events", &mut answer, "events")
    }

    fn state(&mut self) -> Result<RadioState, ApError> {
        let mut answer = self.call("state", serde_json::json!({"op": "state"}))?;
        Ok(RadioState {
            associated: self.field("state", &mut answer, "associated")?,
            ip: self.field("state", &mut answer, "ip")?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::mpsc;

    /// A fake lab: answers each request line with the next canned answer (`None`: say
    /// nothing and keep the connection), and reports the requests it saw.
    fn fake_lab(
        answers: Vec<Option<&'static str>>,
    ) -> (tempfile::TempDir, PathBuf, mpsc::Receiver<serde_json::Value>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            for answer in answers {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    return;
                }
                tx.send(serde_json::from_str(&line).unwrap()).unwrap();
                match answer {
                    Some(a) => writer.write_all(format!("{a}\n").as_bytes()).unwrap(),
                    None => std::thread::sleep(Duration::from_secs(2)),
                }
            }
        });
        (dir, path, rx)
    }

    fn lab_ap() -> ApConfig {
        ApConfig {
            ssid: "lab".into(),
            bssid: "02:00:00:00:01:01".into(),
            channel: 6,
            security: "wpa2-aes".into(),
            passkey: "labpass123".into(),
            rssi: -40,
            hidden: false,
        }
    }

    #[test]
    fn requests_and_answers() {
        let (_dir, path, seen) = fake_lab(vec![
            Some(r#"{"ok":true}"#),
            Some(r#"{"ok":true,"id":3}"#),
            Some(r#"{"ok":true,"fired":2,"armed":false}"#),
            Some(
                r#"{"ok":true,"events":[{"seq":4,"unix_ms":1764000000000,"text":"associate 02:00:00:00:01:01: ok"}]}"#,
            ),
            Some(r#"{"ok":true,"associated":"02:00:00:00:01:01","ip":null}"#),
            Some(
                r#"{"ok":true,"aps":[{"ssid":"lab","bssid":"02:00:00:00:01:01","channel":6,"security":"wpa2-aes","passkey":"labpass123","rssi":-40,"hidden":false}]}"#,
            ),
            Some(r#"{"ok":true}"#),
            Some(r#"{"ok":true}"#),
        ]);
        let mut aps = SimAccessPoints::new(&path);
        aps.add_ap(&lab_ap()).unwrap();
        let sent = seen.recv().unwrap();
        assert_eq!(sent["op"], "add_ap");
        assert_eq!(sent["ap"]["security"], "wpa2-aes");
        let id = aps.inject_fault(&Fault::RejectAssociation { count: 2 }).unwrap();
        assert_eq!(id, FaultId(3));
        assert_eq!(
            seen.recv().unwrap(),
            serde_json::json!({"op":"fault","fault":{"kind":"reject_association","count":2}})
        );
        assert_eq!(aps.fault_status(id).unwrap(), FaultStatus { fired: 2, armed: false });
        assert_eq!(seen.recv().unwrap(), serde_json::json!({"op":"fault_status","id":3}));
        let events = aps.events_since(3).unwrap();
        assert_eq!(events[0].seq, 4);
        assert_eq!(seen.recv().unwrap(), serde_json::json!({"op":"events","since":3}));
        let state = aps.state().unwrap();
        assert_eq!(state.associated.as_deref(), Some("02:00:00:00:01:01"));
        assert_eq!(state.ip, None);
        assert_eq!(aps.list_aps().unwrap(), vec![lab_ap()]);
        aps.move_ap("02:00:00:00:01:01", 11).unwrap();
        aps.inject_fault(&Fault::DhcpSilent { count: None }).unwrap_err();
        // (the fake answered `{"ok":true}` without an id: malformed)
        let requests: Vec<serde_json::Value> = seen.try_iter().collect();
        let moved = serde_json::json!({"op":"move_ap","bssid":"02:00:00:00:01:01","channel":11});
        assert!(requests.contains(&moved), "{requests:?}");
    }

    #[test]
    fn dhcp_silent_without_count_leaves_it_out() {
        let json = serde_json::to_value(Fault::DhcpSilent { count: None }).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "dhcp_silent"}));
    }

    #[test]
    fn refusals_and_timeouts_name_the_socket() {
        let (_dir, path, _seen) = fake_lab(vec![
            Some(r#"{"ok":false,"error":"no AP with BSSID 02:00:00:00:09:09"}"#),
            None,
        ]);
        let mut aps = SimAccessPoints::new(&path).with_timeout(Duration::from_millis(200));
        let err = aps.remove_ap("02:00:00:00:09:09").unwrap_err();
        assert!(matches!(err, ApError::Refused { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()) && text.contains("no AP"), "{text}");
        let err = aps.clear_faults().unwrap_err();
        assert!(matches!(err, ApError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("lab.sock"), "{err}");
    }

    #[test]
    fn a_missing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut aps = SimAccessPoints::new(dir.path().join("absent.sock"));
        let err = aps.list_aps().unwrap_err();
        assert!(matches!(err, ApError::Connect { .. }), "{err}");
        assert!(err.to_string().contains("absent.sock"), "{err}");
    }
}

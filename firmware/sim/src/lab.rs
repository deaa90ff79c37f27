//! The lab control channel of the simulated module: access points, faults and the radio
//! event log, on a Unix stream socket (`gecko-sim --lab-socket PATH`). It belongs to the
//! simulated module's platform, never to the firmware console: the module's command set
//! knows nothing of it. A board's radio equipment (`gecko-sim radio`, [`crate::equipment`])
//! serves the same channel ([`serve_lines`], [`apply_line`]); there the faults that act
//! inside a module (`store_fail`, `tls_heap`) are refused, and `state`'s `ip` is the
//! address the board's frames show.
//!
//! # Protocol
//!
//! The access points are kept in `<socket>.aps` ([`aps_file`]) and put back on the air when
//! the module's process starts again on the same socket: they outlive a power cut of the
//! module, as real ones do. Faults and the event log do not.
//!
//! Line-delimited JSON: each request is one JSON object on one line (`\n`-terminated), and
//! each gets exactly one answer line. Answers carry `"ok": true` and the fields below, or
//! `{"ok":false,"error":"what was wrong"}`. A malformed line gets an error answer; the
//! connection stays open. Several clients may be connected at once (up to
//! [`MAX_CLIENTS`]); requests are applied in the order they are read.
//!
//! | request | answer |
//! |---|---|
//! | `{"op":"add_ap","ap":AP}` | `{"ok":true}` (an AP with the same BSSID is replaced) |
//! | `{"op":"remove_ap","bssid":"02:00:00:00:01:01"}` | `{"ok":true}`; associated module gets `LinkLost` |
//! | `{"op":"move_ap","bssid":"02:00:00:00:01:01","channel":11}` | `{"ok":true}`; the AP now answers on that channel only; an associated module gets `LinkLost` |
//! | `{"op":"list_aps"}` | `{"ok":true,"aps":[AP,...]}` |
//! | `{"op":"fault","fault":FAULT}` | `{"ok":true,"id":N}` |
//! | `{"op":"fault_status","id":N}` | `{"ok":true,"fired":K,"armed":bool}` |
//! | `{"op":"clear_faults"}` | `{"ok":true}` (every fault disarmed; counts stay readable) |
//! | `{"op":"events","since":SEQ}` | `{"ok":true,"events":[{"seq":1,"unix_ms":1764000000000,"text":"..."}]}` (`seq > since`, oldest first; `since` defaults to 0) |
//! | `{"op":"state"}` | `{"ok":true,"associated":"02:00:00:00:01:01"\|null,"ip":"10.77.0.100"\|null}` |
//!
//! `AP` = `{"ssid":"lab","bssid":"02:00:00:00:01:01","channel":6,"security":"wpa2-aes",
//! "passkey":"labpass123","rssi":-40,"hidden":false}`; `security` is a Gecko OS name
//! (`open`, `wep`, `wpa-aes`, `wpa-tkip`, `wpa2-aes`, `wpa2-mixed`, `wpa2-tkip`, any case), or
//! `wpa3-sae`, which scans show and the module cannot join;
//! `passkey` (default empty: open networks only) is a WPA passphrase of 8 to 63 characters or
//! 64 hex digits, or a WEP key; `rssi` defaults to -50 dBm, `hidden` to false. `ssid` is 1 to
//! 32 bytes, `channel` 1 to 196 (scans find channels 1 to 14 only: the channel mask has no
//! bits for others).
//!
//! Scans and probes answer after the dwell time × the channels scanned, ten times faster
//! than a real radio (`SCAN_TIME_SCALE` in the radio module).
//!
//! `FAULT` is one of (`count` defaults to 1):
//! * `{"kind":"reject_association","count":N}`: the next N associations are rejected.
//! * `{"kind":"ignore_probes","count":N}`: the next N scans/probes get no answer at all.
//! * `{"kind":"delay_association","ms":M,"count":N}`: the next N association answers come
//!   M ms late (so the core's join timeout can expire first).
//! * `{"kind":"drop_ap","bssid":"..."}`: that AP drops its clients now (`LinkLost`); it
//!   stays on the air. Fires once, at once (`fired` is 1).
//! * `{"kind":"dhcp_silent","count":N}`: the next N DHCP frames (either way) are dropped;
//!   without `count`, all of them until `clear_faults`.
//! * `{"kind":"store_fail","store":"nvm"|"files","count":N}`: the module's next N writes to
//!   that store fail (the settings `save` writes, or the file system), as a failing flash
//!   part would; what was stored before stays.
//! * `{"kind":"tls_heap","bytes":N}`: from now until `clear_faults`, the module's TLS stack
//!   may hold at most N bytes at once (a module short of RAM: `TLS malloc failed`); cleared,
//!   the budget is the one the module started with (`--tls-heap`).
//!
//! `fired` counts how often a fault acted; `armed` says whether it still can.
//!
//! Event texts are for people (the harness shows them on its timeline); for example
//! `probe ssid="lab": active, 2 probes/channel, channels 1-11 (0x07ff), dwell 100 ms, answer
//! in 110 ms`, `probe ssid="lab": 1 found`, `associate 02:00:00:00:01:01: ok`,
//! `associate: failed AuthFailed`, `fault 1 reject_association fired (1/2)`,
//! `link lost 02:00:00:00:01:01`.

use super::netstack::SharedRef;
use super::radio::{AccessPoint, FaultKind, Radio, Store};
use async_io::Async;
use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, io::BufReader};
use gecko_core::net::Security;
use gecko_core::vars::{format_mac, parse_mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::format;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

/// Clients served at the same time.
pub const MAX_CLIENTS: usize = 4;
/// Longest request line accepted.
pub const LINE_MAX: usize = 64 * 1024;

/// An access point as the protocol spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApSpec {
    pub ssid: String,
    pub bssid: String,
    pub channel: u8,
    pub security: String,
    #[serde(default)]
    pub passkey: String,
    #[serde(default = "default_rssi")]
    pub rssi: i16,
    #[serde(default)]
    pub hidden: bool,
}

fn default_rssi() -> i16 {
    -50
}

fn one() -> u32 {
    1
}

/// A storage area as the protocol spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreName {
    Nvm,
    Files,
}

/// A fault as the protocol spells it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultSpec {
    RejectAssociation {
        #[serde(default = "one")]
        count: u32,
    },
    IgnoreProbes {
        #[serde(default = "one")]
        count: u32,
    },
    DelayAssociation {
        ms: u64,
        #[serde(default = "one")]
        count: u32,
    },
    DropAp {
        bssid: String,
    },
    DhcpSilent {
        #[serde(default)]
        count: Option<u32>,
    },
    StoreFail {
        store: StoreName,
        #[serde(default = "one")]
        count: u32,
    },
    TlsHeap {
        bytes: usize,
    },
}

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    AddAp {
        ap: ApSpec,
    },
    RemoveAp {
        bssid: String,
    },
    MoveAp {
        bssid: String,
        channel: u8,
    },
    // Unit variants would accept unknown fields: these are empty structs.
    ListAps {},
    Fault {
        fault: FaultSpec,
    },
    FaultStatus {
        id: u32,
    },
    ClearFaults {},
    Events {
        #[serde(default)]
        since: u64,
    },
    State {},
}

fn mac(text: &str) -> Result<[u8; 6], String> {
    parse_mac(text).ok_or_else(|| format!("not a MAC address: {text:?}"))
}

impl ApSpec {
    /// Checks the fields and builds the radio's AP.
    pub fn to_access_point(&self) -> Result<AccessPoint, String> {
        let security = Security::from_name(&self.security)
            .ok_or_else(|| format!("unknown security type: {:?}", self.security))?;
        if self.ssid.is_empty() || self.ssid.len() > 32 {
            return Err(format!("ssid must be 1 to 32 bytes, not {}", self.ssid.len()));
        }
        if !(1..=196).contains(&self.channel) {
            return Err(format!("channel must be 1 to 196, not {}", self.channel));
        }
        let key = &self.passkey;
        match security {
            Security::Open => {}
            Security::Wep => {
                if key.is_empty() {
                    return Err("a WEP AP needs a passkey".to_string());
                }
            }
            _ => {
                let hex = key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit());
                if !hex && !(8..=63).contains(&key.len()) {
                    return Err("a WPA passkey is 8 to 63 characters or 64 hex digits".to_string());
                }
            }
        }
        Ok(AccessPoint {
            ssid: self.ssid.clone(),
            bssid: mac(&self.bssid)?,
            channel: self.channel,
            security,
            passkey: self.passkey.clone(),
            rssi: self.rssi,
            hidden: self.hidden,
        })
    }

    fn from_access_point(ap: &AccessPoint) -> Self {
        Self {
            ssid: ap.ssid.clone(),
            bssid: format_mac(&ap.bssid),
            channel: ap.channel,
            security: ap.security.name().to_ascii_lowercase(),
            passkey: ap.passkey.clone(),
            rssi: ap.rssi,
            hidden: ap.hidden,
        }
    }
}

impl FaultSpec {
    fn to_kind(&self) -> Result<FaultKind, String> {
        Ok(match self {
            FaultSpec::RejectAssociation { count } => {
                FaultKind::RejectAssociation { count: *count }
            }
            FaultSpec::IgnoreProbes { count } => FaultKind::IgnoreProbes { count: *count },
            FaultSpec::DelayAssociation { ms, count } => {
                FaultKind::DelayAssociation { ms: *ms, count: *count }
            }
            FaultSpec::DropAp { bssid } => FaultKind::DropAp { bssid: mac(bssid)? },
            FaultSpec::DhcpSilent { count } => FaultKind::DhcpSilent { count: *count },
            FaultSpec::StoreFail { store, count } => FaultKind::StoreFail {
                store: match store {
                    StoreName::Nvm => Store::Nvm,
                    StoreName::Files => Store::Files,
                },
                count: *count,
            },
            FaultSpec::TlsHeap { bytes } => {
                FaultKind::TlsHeap { bytes: *bytes, refused_before: gecko_tls::heap_refusals() }
            }
        })
    }
}

fn error(what: impl core::fmt::Display) -> Value {
    json!({"ok": false, "error": what.to_string()})
}

/// Answers one request line (without its newline) against the radio; `ip` is the module's
/// address now. Never fails: a bad line gets an error answer.
pub fn handle_line(radio: &mut Radio, ip: Option<[u8; 4]>, line: &str) -> String {
    let answer = match serde_json::from_str::<Request>(line) {
        Ok(request) => handle(radio, ip, request).unwrap_or_else(error),
        Err(e) => error(format!("bad request: {e}")),
    };
    answer.to_string()
}

fn handle(radio: &mut Radio, ip: Option<[u8; 4]>, request: Request) -> Result<Value, String> {
    Ok(match request {
        Request::AddAp { ap } => {
            radio.add_ap(ap.to_access_point()?);
            json!({"ok": true})
        }
        Request::RemoveAp { bssid } => {
            radio.remove_ap(mac(&bssid)?).map_err(|e| e.0)?;
            json!({"ok": true})
        }
        Request::MoveAp { bssid, channel } => {
            if !(1..=196).contains(&channel) {
                return Err(format!("channel must be 1 to 196, not {channel}"));
            }
            radio.move_ap(mac(&bssid)?, channel).map_err(|e| e.0)?;
            json!({"ok": true})
        }
        Request::ListAps {} => {
            let aps: Vec<ApSpec> = radio.aps().iter().map(ApSpec::from_access_point).collect();
            json!({"ok": true, "aps": aps})
        }
        Request::Fault { fault } => {
            let kind = fault.to_kind()?;
            if let FaultKind::TlsHeap { bytes, .. } = kind {
                gecko_tls::set_heap_budget(Some(bytes));
            }
            let id = radio.inject(kind).map_err(|e| e.0)?;
            json!({"ok": true, "id": id})
        }
        Request::FaultStatus { id } => {
            let fault = radio.fault(id).ok_or_else(|| format!("no fault with id {id}"))?;
            let fired = match fault.kind {
                FaultKind::TlsHeap { refused_before, .. } => {
                    u32::try_from(gecko_tls::heap_refusals().saturating_sub(refused_before))
                        .unwrap_or(u32::MAX)
                }
                _ => fault.fired,
            };
            json!({"ok": true, "fired": fired, "armed": fault.armed()})
        }
        Request::ClearFaults {} => {
            radio.clear_faults();
            gecko_tls::set_heap_budget(crate::tls_heap_default());
            json!({"ok": true})
        }
        Request::Events { since } => {
            let events: Vec<Value> = radio
                .events_since(since)
                .into_iter()
                .map(|e| json!({"seq": e.seq, "unix_ms": e.unix_ms, "text": e.text}))
                .collect();
            json!({"ok": true, "events": events})
        }
        Request::State {} => {
            let associated = radio.associated().map(|m| format_mac(&m));
            let ip = ip.map(|a| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]));
            json!({"ok": true, "associated": associated, "ip": ip})
        }
    })
}

/// Binds the lab socket; a stale socket file at `path` is replaced.
///
/// The socket is bound under a temporary name and renamed to `path` once it listens: the
/// file appears at `bind(2)`, before `listen(2)`, and a harness that connects as soon as the
/// file is there would otherwise be refused now and then (a busy machine can hold the
/// process between the two calls).
pub fn bind(path: &Path) -> io::Result<Async<UnixListener>> {
    use std::os::unix::fs::FileTypeExt;
    let remove_stale = |p: &Path| -> io::Result<()> {
        match std::fs::symlink_metadata(p) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(p),
            _ => Ok(()),
        }
    };
    remove_stale(path)?;
    // Next to `path` (a rename stays on one file system), and no longer than its name, so a
    // path short enough for a socket address makes a short enough temporary one.
    let tmp = path.with_file_name(format!(".s{}", std::process::id() % 100_000));
    remove_stale(&tmp)?;
    let listener = UnixListener::bind(&tmp)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Async::new(listener)
}

/// Where the access points are kept between runs of the module: `<socket>.aps`. Access
/// points are lab equipment: when the module's process is killed and started again (a power
/// cut), they are still on the air.
pub fn aps_file(socket: &Path) -> std::path::PathBuf {
    let mut name = std::ffi::OsString::from(socket.as_os_str());
    name.push(".aps");
    name.into()
}

/// Puts the access points kept in `file` (if any) on the air; what was wrong, if anything.
pub fn load_aps(radio: &mut Radio, file: &Path) -> Result<usize, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let specs: Vec<ApSpec> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    for spec in &specs {
        radio.add_ap(spec.to_access_point().map_err(|e| format!("{}: {e}", file.display()))?);
    }
    Ok(specs.len())
}

/// Keeps the radio's access points in `file` (written whole, then renamed).
fn save_aps(radio: &Radio, file: &Path) {
    let specs: Vec<ApSpec> = radio.aps().iter().map(ApSpec::from_access_point).collect();
    let Ok(text) = serde_json::to_string(&specs) else { return };
    let mut tmp = std::ffi::OsString::from(file.as_os_str());
    tmp.push(".tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, file);
    }
}

/// Answers one request line against the radio (as [`handle_line`]) and keeps the access
/// points in `aps` ([`aps_file`]) when the line changed them.
pub fn apply_line(
    radio: &mut Radio,
    ip: Option<[u8; 4]>,
    line: &str,
    aps: Option<&Path>,
) -> String {
    let before = radio.aps().to_vec();
    let answer = handle_line(radio, ip, line);
    if let Some(file) = aps
        && radio.aps() != before.as_slice()
    {
        save_aps(radio, file);
    }
    answer
}

/// Serves the lab socket forever. `ip` reads the module's current address; `aps` is where
/// the access points are kept across restarts ([`aps_file`]).
pub async fn serve(
    listener: &Async<UnixListener>,
    shared: &SharedRef,
    ip: &dyn Fn() -> Option<[u8; 4]>,
    aps: Option<&Path>,
) -> ! {
    let apply = |text: &str| {
        let ip = ip();
        let mut s = shared.borrow_mut();
        let answer = apply_line(&mut s.radio, ip, text, aps);
        s.wake_all();
        answer
    };
    serve_lines(listener, &apply).await
}

/// Serves the lab socket forever for any owner of the radio: `apply` answers each request
/// line (without its newline; [`apply_line`] does the radio's part). The radio equipment of
/// a board (`crate::equipment`) serves the same channel this way.
pub async fn serve_lines(listener: &Async<UnixListener>, apply: &dyn Fn(&str) -> String) -> ! {
    let client = || async {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                let _ = serve_client(stream, apply).await;
            }
        }
    };
    embassy_futures::join::join4(client(), client(), client(), client()).await;
    unreachable!("the lab clients loop forever")
}

async fn serve_client(
    stream: Async<std::os::unix::net::UnixStream>,
    apply: &dyn Fn(&str) -> String,
) -> io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader).take(LINE_MAX as u64 + 1).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(());
        }
        let answer = if line.len() > LINE_MAX {
            // Too long: skip to the end of the line, then say so.
            while line.last() != Some(&b'\n') {
                line.clear();
                if reader.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(());
                }
            }
            error(format!("request longer than {LINE_MAX} bytes")).to_string()
        } else {
            match core::str::from_utf8(&line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => apply(text.trim()),
                Err(_) => error("request is not UTF-8").to_string(),
            }
        };
        writer.write_all(answer.as_bytes()).await?;
        writer.write_all(b"\n").await?;
        writer.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ask(radio: &mut Radio, line: &str) -> Value {
        serde_json::from_str(&handle_line(radio, Some([10, 77, 0, 100]), line)).unwrap()
    }

    const AP: &str = r#"{"op":"add_ap","ap":{"ssid":"lab","bssid":"02:00:00:00:01:01","channel":6,"security":"wpa2-aes","passkey":"labpass123","rssi":-40,"hidden":false}}"#;

    #[test]
    fn the_socket_appears_listening_and_replaces_a_stale_one() {
        let dir = std::env::temp_dir().join(format!("gecko-lab-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lab.sock");
        // A socket file left by a killed process: nobody listens on it.
        drop(UnixListener::bind(&path).unwrap());
        assert!(std::os::unix::net::UnixStream::connect(&path).is_err());
        let listener = bind(&path).unwrap();
        std::os::unix::net::UnixStream::connect(&path).unwrap();
        assert!(listener.get_ref().accept().is_ok());
        // Only the socket is left in the folder: no temporary name.
        let names: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("lab.sock")]);
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_lines_get_an_error_answer() {
        let mut radio = Radio::new();
        for line in [
            "",
            "not json",
            "{}",
            r#"{"op":"nope"}"#,
            r#"{"op":"fault"}"#,
            r#"{"op":"fault","fault":{"kind":"reject_association","cnt":2}}"#,
            r#"{"op":"fault","fault":{"kind":"drop_ap","bssid":"zz"}}"#,
            r#"{"op":"fault_status","id":99}"#,
            r#"{"op":"remove_ap","bssid":"02:00:00:00:01:01"}"#,
            r#"{"op":"add_ap","ap":{"ssid":"lab","bssid":"02:00:00:00:01:01","channel":6,"security":"wpa9"}}"#,
            r#"{"op":"add_ap","ap":{"ssid":"lab","bssid":"02:00:00:00:01:01","channel":6,"security":"wpa2-aes","passkey":"short"}}"#,
            r#"{"op":"add_ap","ap":{"ssid":"","bssid":"02:00:00:00:01:01","channel":6,"security":"open"}}"#,
            r#"{"op":"list_aps","extra":1}"#,
            r#"{"op":"move_ap","bssid":"02:00:00:00:01:01","channel":11}"#,
            r#"{"op":"move_ap","bssid":"02:00:00:00:01:01"}"#,
            "[1,2,3]",
        ] {
            let answer = ask(&mut radio, line);
            assert_eq!(answer["ok"], false, "{line}: {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{line}: {answer}");
        }
    }

    #[test]
    fn access_points_are_kept_for_the_next_process() {
        let dir = std::env::temp_dir().join(format!("gecko-lab-aps-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = aps_file(&dir.join("lab.sock"));
        assert_eq!(file, dir.join("lab.sock.aps"));
        let mut radio = Radio::new();
        assert_eq!(load_aps(&mut radio, &file), Ok(0), "nothing kept yet");
        ask(&mut radio, AP);
        ask(&mut radio, r#"{"op":"move_ap","bssid":"02:00:00:00:01:01","channel":11}"#);
        save_aps(&radio, &file);
        let mut next = Radio::new();
        assert_eq!(load_aps(&mut next, &file), Ok(1));
        assert_eq!(next.aps(), radio.aps(), "the same AP, on its new channel");
        std::fs::write(&file, "[{").expect("write");
        let e = load_aps(&mut Radio::new(), &file).expect_err("damaged");
        assert!(e.contains("lab.sock.aps"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn store_faults_hit_only_their_store_and_only_count_times() {
        let mut radio = Radio::new();
        let fault = r#"{"op":"fault","fault":{"kind":"store_fail","store":"files","count":2}}"#;
        assert_eq!(ask(&mut radio, fault), json!({"ok": true, "id": 1}));
        assert!(!radio.store_fails(Store::Nvm), "another store");
        assert!(radio.store_fails(Store::Files));
        assert!(radio.store_fails(Store::Files));
        assert!(!radio.store_fails(Store::Files), "used up");
        assert_eq!(
            ask(&mut radio, r#"{"op":"fault_status","id":1}"#),
            json!({"ok": true, "fired": 2, "armed": false})
        );
        let bad = r#"{"op":"fault","fault":{"kind":"store_fail","store":"eeprom"}}"#;
        assert_eq!(ask(&mut radio, bad)["ok"], false);
    }

    #[test]
    fn requests_round_trip() {
        let mut radio = Radio::new();
        assert_eq!(ask(&mut radio, AP), json!({"ok": true}));
        let aps = ask(&mut radio, r#"{"op":"list_aps"}"#);
        assert_eq!(aps["aps"][0]["bssid"], "02:00:00:00:01:01");
        assert_eq!(aps["aps"][0]["security"], "wpa2-aes");
        let fault =
            ask(&mut radio, r#"{"op":"fault","fault":{"kind":"reject_association","count":2}}"#);
        assert_eq!(fault, json!({"ok": true, "id": 1}));
        let fault = ask(&mut radio, r#"{"op":"fault","fault":{"kind":"dhcp_silent"}}"#);
        assert_eq!(fault, json!({"ok": true, "id": 2}));
        assert!(radio.drop_dhcp_frame());
        assert_eq!(
            ask(&mut radio, r#"{"op":"fault_status","id":2}"#),
            json!({"ok": true, "fired": 1, "armed": true})
        );
        assert_eq!(ask(&mut radio, r#"{"op":"clear_faults"}"#), json!({"ok": true}));
        assert_eq!(
            ask(&mut radio, r#"{"op":"fault_status","id":1}"#),
            json!({"ok": true, "fired": 0, "armed": false})
        );
        let events = ask(&mut radio, r#"{"op":"events","since":0}"#);
        let list = events["events"].as_array().unwrap();
        assert!(list.len() >= 4, "{events}");
        let last = list.last().unwrap()["seq"].as_u64().unwrap();
        let none = ask(&mut radio, &format!(r#"{{"op":"events","since":{last}}}"#));
        assert_eq!(none, json!({"ok": true, "events": []}));
        assert_eq!(
            ask(&mut radio, r#"{"op":"state"}"#),
            json!({"ok": true, "associated": null, "ip": "10.77.0.100"})
        );
        assert_eq!(
            ask(&mut radio, r#"{"op":"move_ap","bssid":"02:00:00:00:01:01","channel":0}"#)["ok"],
            false
        );
        assert_eq!(
            ask(&mut radio, r#"{"op":"move_ap","bssid":"02:00:00:00:01:01","channel":11}"#),
            json!({"ok": true})
        );
        assert_eq!(ask(&mut radio, r#"{"op":"list_aps"}"#)["aps"][0]["channel"], 11);
        let dropped = ask(
            &mut radio,
            r#"{"op":"fault","fault":{"kind":"drop_ap","bssid":"02:00:00:00:01:01"}}"#,
        );
        assert_eq!(dropped, json!({"ok": true, "id": 3}));
        assert_eq!(
            ask(&mut radio, r#"{"op":"remove_ap","bssid":"02:00:00:00:01:01"}"#),
            json!({"ok": true})
        );
    }
}

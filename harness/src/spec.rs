//! Spec tables and the clause inventory: loaded from TOML, validated, turned into typed
//! values once. Every error names the file, the line and (where there is one) the key.
//! The format is described in `specs/README.md`.
//!
//! Time in a case is waited for, never slept: `wait` polls a condition ([`wait::Condition`])
//! up to a deadline, `hold` checks one stays true for a time a clause prescribes, `idle_ms`
//! keeps the line silent for a prescribed guard time; `sleep_ms` is refused.

use crate::channel::ConsoleFormat;
use crate::model::Basis;
use regex::Regex;
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::source::{Source, SpecError};
pub use crate::text::unescape_raw;

// ---------------------------------------------------------------- inventory

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    clause: Vec<Spanned<RawClause>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClause {
    id: Spanned<String>,
    section: String,
    source: Spanned<String>,
    kind: ClauseKind,
    lines: Spanned<[u32; 2]>,
    text: String,
    /// Why no input can make this module do what the clause states (an error code its TLS
    /// stack cannot produce): it stays uncovered, listed apart, and no case may cite it.
    #[serde(default)]
    unreachable: Option<String>,
}

/// What a clause states, which decides what a case must do to check it (see
/// `coverage::weak_citations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClauseKind {
    /// A service or capability exists ("the SMTP client sends email").
    Feature,
    /// What the module does: sequences, output, protocol, timing, the effect of a variable.
    Behaviour,
    /// A variable: its name, shortcut, default, bounds, value syntax, persistence.
    Variable,
    /// A command: its name, shortcut, arguments, reply text.
    Command,
}

impl ClauseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClauseKind::Feature => "feature",
            ClauseKind::Behaviour => "behaviour",
            ClauseKind::Variable => "variable",
            ClauseKind::Command => "command",
        }
    }
}

/// One checkable statement of a source document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub id: String,
    pub section: String,
    /// `chapter` or `protocol-facts`.
    pub source: String,
    pub kind: ClauseKind,
    pub lines: [u32; 2],
    pub text: String,
    /// Why no input can reach it on this module, when none can.
    pub unreachable: Option<String>,
    pub origin: Origin,
}

/// Where something was defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The traceability inventory: every clause of every `clauses*.toml`.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub clauses: Vec<Clause>,
    index: HashMap<String, usize>,
}

impl Inventory {
    pub fn get(&self, id: &str) -> Option<&Clause> {
        self.index.get(id).map(|&i| &self.clauses[i])
    }

    fn add_file(&mut self, source: &Source) -> Result<(), SpecError> {
        let raw: RawInventory = source.parse()?;
        for clause in raw.clause {
            let offset = clause.span().start;
            let c = clause.into_inner();
            let id_at = c.id.span().start;
            let id = c.id.into_inner();
            if !valid_id(&id, &['.', '-', '_']) {
                return Err(source.error(
                    id_at,
                    Some("id"),
                    format!("clause id `{id}` must be lower case letters, digits, `.`, `-`, `_`"),
                ));
            }
            if let Some(&first) = self.index.get(&id) {
                let first = &self.clauses[first].origin;
                return Err(source.error(
                    id_at,
                    Some("id"),
                    format!("duplicate clause id `{id}` (first defined at {first})"),
                ));
            }
            let src = c.source.get_ref().as_str();
            if src != "chapter" && src != "protocol-facts" {
                return Err(source.error(
                    c.source.span().start,
                    Some("source"),
                    format!("`{src}` is not `chapter` or `protocol-facts`"),
                ));
            }
            let [a, b] = *c.lines.get_ref();
            if a == 0 || b < a {
                return Err(source.error(
                    c.lines.span().start,
                    Some("lines"),
                    format!("[{a}, {b}] is not a line range (1-based, first <= last)"),
                ));
            }
            self.index.insert(id.clone(), self.clauses.len());
            self.clauses.push(Clause {
                id,
                section: c.section,
                source: c.source.into_inner(),
                kind: c.kind,
                lines: [a, b],
                text: c.text,
                unreachable: c.unreachable,
                origin: Origin { file: source.path.clone(), line: source.line_of(offset) },
            });
        }
        Ok(())
    }
}

fn valid_id(id: &str, extra: &[char]) -> bool {
    !id.is_empty()
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c))
}

// ---------------------------------------------------------------- cases

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpecFile {
    section: Spanned<String>,
    title: String,
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: Spanned<String>,
    title: String,
    clauses: Spanned<Vec<Spanned<String>>>,
    basis: Basis,
    note: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    transports: Option<Vec<Spanned<String>>>,
    format: Option<ConsoleFormat>,
    timeout_ms: Option<u64>,
    setup: Option<RawSetup>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
    requires: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    packets: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    peers: Vec<crate::peers::PeerSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    factory_reset: Option<bool>,
    #[serde(default)]
    set: toml::Table,
    #[serde(default)]
    save: bool,
    #[serde(default)]
    reboot: bool,
    /// `{ "<file on the module>" = "<PKI name>" }`.
    pki_files: Option<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    send: Option<String>,
    data: Option<String>,
    code: Option<u8>,
    body: Option<String>,
    body_regex: Option<Spanned<String>>,
    log_regex: Option<Spanned<String>>,
    logs: Option<Vec<Spanned<String>>>,
    took_ms: Option<Spanned<[u64; 2]>>,
    timeout_ms: Option<u64>,
    get: Option<toml::Table>,
    reboot: Option<bool>,
    factory_reset: Option<bool>,
    power_cycle: Option<bool>,
    /// Refused with a pointer to `wait`, `hold` and `idle_ms` (a fixed sleep waits for
    /// nothing in particular, and flakes when the machine is slow).
    sleep_ms: Option<u64>,
    wait: Option<Spanned<toml::Table>>,
    hold: Option<Spanned<toml::Table>>,
    idle_ms: Option<u64>,
    hold_ms: Option<u64>,
    poll_ms: Option<Spanned<u64>>,
    after_ms: Option<Spanned<[u64; 2]>>,
    prescribed_by: Option<Spanned<String>>,
    raw: Option<String>,
    expect_raw: Option<String>,
    expect_raw_regex: Option<Spanned<String>>,
    within_ms: Option<u64>,
    add_ap: Option<Spanned<crate::rig::RawAp>>,
    remove_ap: Option<Spanned<String>>,
    move_ap: Option<Spanned<RawMoveAp>>,
    fault: Option<crate::ap::Fault>,
    expect_fired: Option<u32>,
    client: Option<crate::peers::ClientAction>,
    check_peer: Option<usize>,
    check: Option<crate::peers::PeerCheck>,
}

/// `move_ap = { bssid = "02:00:00:00:01:01", channel = 11 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMoveAp {
    bssid: Spanned<String>,
    channel: Spanned<u8>,
}

/// Lab capabilities a case can require.
pub const REQUIREMENTS: &[&str] = &["lab"];

/// A conformance case, validated.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub section: String,
    pub section_title: String,
    pub title: String,
    pub clauses: Vec<String>,
    pub basis: Basis,
    pub note: Option<String>,
    pub tags: Vec<String>,
    /// Empty: every transport.
    pub transports: Vec<crate::transport::Transport>,
    pub format: ConsoleFormat,
    pub timeout: Duration,
    pub setup: Setup,
    pub steps: Vec<Step>,
    /// What the rig must have (`lab`).
    pub requires: Vec<String>,
    /// Packet expectations, checked against the case's capture.
    pub packets: Vec<crate::capture::expect::PacketExpect>,
    /// Lab peers running while the case runs.
    pub peers: Vec<crate::peers::PeerSpec>,
    pub origin: Origin,
}

impl Case {
    pub fn runs_on(&self, transport: crate::transport::Transport) -> bool {
        self.transports.is_empty() || self.transports.contains(&transport)
    }

    /// Whether it uses the lab PKI (files from it, a TLS peer, a TLS client): then its setup
    /// sets the module's clock to [`crate::pki::LAB_NOW`].
    pub fn uses_pki(&self) -> bool {
        !self.setup.pki_files.is_empty()
            || self.peers.iter().any(|p| matches!(p, crate::peers::PeerSpec::TlsServer { .. }))
            || self.steps.iter().any(|s| {
                matches!(
                    s,
                    Step::Client(
                        crate::peers::ClientAction::TlsConnect(_)
                            | crate::peers::ClientAction::TlsHostile(_)
                    )
                )
            })
    }
}

/// What to do before the steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    pub factory_reset: bool,
    pub set: Vec<(String, String)>,
    pub save: bool,
    pub reboot: bool,
    /// Files created on the module from the run's PKI (after `set`, before `save`), in order:
    /// file name on the module, PKI name.
    pub pki_files: Vec<(String, crate::pki::PkiRef)>,
}

/// How a reply body is checked.
#[derive(Clone, Debug)]
pub enum BodyExpect {
    Exact(String),
    Regex(Regex),
}

/// How raw bytes are checked.
#[derive(Clone, Debug)]
pub enum RawExpect {
    Exact(Vec<u8>),
    Regex(regex::bytes::Regex),
    Nothing,
}

/// One step of a case.
#[derive(Clone, Debug)]
pub enum Step {
    Send {
        line: String,
        data: Option<Vec<u8>>,
        code: u8,
        body: Option<BodyExpect>,
        /// Log lines that must be printed while the command runs, in this order.
        logs: Vec<Regex>,
        /// How long the reply may take: (min, max).
        took: Option<(Duration, Duration)>,
        /// Overrides the rig's command timeout (for commands that take long by design).
        timeout: Option<Duration>,
    },
    Get(Vec<(String, String)>),
    Reboot,
    FactoryReset,
    /// Cut the module's power and restore it (see `Session::power_cycle`).
    PowerCycle,
    /// Poll until the condition holds; fail at the deadline with the last value seen.
    Wait {
        condition: wait::Condition,
        timeout: Duration,
        poll: Duration,
        /// The condition must come true this long after the previous step ended: (min, max).
        after: Option<(Duration, Duration)>,
    },
    /// The condition must hold on every poll for the whole duration, which a clause of the
    /// chapter prescribes (`prescribed_by`), e.g. no retry within a retry delay.
    Hold {
        condition: wait::Condition,
        duration: Duration,
        poll: Duration,
        prescribed_by: String,
    },
    /// Nothing is sent to the module for this long: a guard time the chapter prescribes
    /// (`prescribed_by`), such as the silence before STREAM mode's break-in sequence.
    Idle {
        duration: Duration,
        prescribed_by: String,
    },
    Raw {
        bytes: Vec<u8>,
        expect: RawExpect,
        within: Duration,
    },
    AddAp(crate::rig::ApSpec),
    RemoveAp([u8; 6]),
    /// Move an AP to another channel (it answers only there from then on).
    MoveAp {
        bssid: [u8; 6],
        channel: u8,
    },
    Fault {
        fault: crate::ap::Fault,
        expect_fired: Option<u32>,
    },
    /// A lab client acting on the module (connect, send, flood, ...).
    Client(crate::peers::ClientAction),
    /// What a lab peer of the case must have seen.
    CheckPeer {
        index: usize,
        check: crate::peers::PeerCheck,
    },
}

impl Step {
    /// The condition of a `wait` or `hold` step.
    pub fn condition(&self) -> Option<&wait::Condition> {
        match self {
            Step::Wait { condition, .. } | Step::Hold { condition, .. } => Some(condition),
            _ => None,
        }
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Step::Send { line, data: None, .. } => format!("send `{line}`"),
            Step::Send { line, data: Some(d), .. } => format!("send `{line}` + {} bytes", d.len()),
            Step::Get(vars) => {
                let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
                format!("get {}", names.join(", "))
            }
            Step::Reboot => "reboot".to_string(),
            Step::FactoryReset => "factory reset".to_string(),
            Step::PowerCycle => "power cycle".to_string(),
            Step::Wait { condition, timeout, .. } => {
                format!("wait up to {} ms for {condition}", timeout.as_millis())
            }
            Step::Hold { condition, duration, .. } => {
                format!("hold {} ms: {condition}", duration.as_millis())
            }
            Step::Idle { duration, prescribed_by } => {
                format!("idle {} ms ({prescribed_by})", duration.as_millis())
            }
            Step::Raw { bytes, .. } => format!("raw `{}`", crate::channel::escape_bytes(bytes)),
            Step::AddAp(ap) => format!("add AP `{}`", ap.ssid),
            Step::RemoveAp(b) => format!("remove AP {}", crate::rig::format_bssid(b)),
            Step::MoveAp { bssid, channel } => {
                format!("move AP {} to channel {channel}", crate::rig::format_bssid(bssid))
            }
            Step::Fault { fault, .. } => format!("fault {fault:?}"),
            Step::Client(action) => format!("client {action:?}"),
            Step::CheckPeer { index, .. } => format!("check peer {index}"),
        }
    }
}

fn table_pairs(
    source: &Source,
    at: usize,
    key: &str,
    table: toml::Table,
) -> Result<Vec<(String, String)>, SpecError> {
    table
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => if b { "1" } else { "0" }.to_string(),
                other => {
                    return Err(source.error(
                        at,
                        Some(key),
                        format!(
                            "value of `{name}` must be a string, integer or boolean, not {}",
                            other.type_str()
                        ),
                    ));
                }
            };
            Ok((name, text))
        })
        .collect()
}

fn regex(source: &Source, key: &str, re: Spanned<String>) -> Result<Regex, SpecError> {
    let at = re.span().start;
    Regex::new(re.get_ref()).map_err(|e| source.error(at, Some(key), format!("invalid regex: {e}")))
}

fn step(source: &Source, inventory: &Inventory, raw: Spanned<RawStep>) -> Result<Step, SpecError> {
    let at = raw.span().start;
    let s = raw.into_inner();
    if s.sleep_ms.is_some() {
        return Err(source.error(
            at,
            Some("sleep_ms"),
            "a fixed sleep waits for nothing in particular: `wait` for what it waited for, \
             `hold` a condition for a prescribed time, or keep the line `idle_ms` for a \
             prescribed guard time (see specs/README.md)",
        ));
    }
    let actions: Vec<&str> = [
        ("send", s.send.is_some()),
        ("get", s.get.is_some()),
        ("reboot", s.reboot.is_some()),
        ("factory_reset", s.factory_reset.is_some()),
        ("power_cycle", s.power_cycle.is_some()),
        ("wait", s.wait.is_some()),
        ("hold", s.hold.is_some()),
        ("idle_ms", s.idle_ms.is_some()),
        ("raw", s.raw.is_some()),
        ("add_ap", s.add_ap.is_some()),
        ("remove_ap", s.remove_ap.is_some()),
        ("move_ap", s.move_ap.is_some()),
        ("fault", s.fault.is_some()),
        ("client", s.client.is_some()),
        ("check_peer", s.check_peer.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    let action =
        match actions.as_slice() {
            [one] => *one,
            [] => return Err(source.error(
                at,
                None,
                "step has no action: give one of send, get, reboot, factory_reset, power_cycle, wait, hold, idle_ms, raw, or a lab step",
            )),
            many => {
                return Err(source.error(
                    at,
                    Some(many[1]),
                    format!(
                        "step has more than one action ({}); split it into several steps",
                        many.join(", ")
                    ),
                ));
            }
        };
    // Keys that belong to another action are errors, so a typo'd step never half-runs.
    let allowed: &[&str] = match action {
        "send" => {
            &["data", "code", "body", "body_regex", "log_regex", "logs", "took_ms", "timeout_ms"]
        }
        "raw" => &["expect_raw", "expect_raw_regex", "within_ms"],
        "wait" => &["timeout_ms", "poll_ms", "after_ms"],
        "hold" => &["hold_ms", "poll_ms", "prescribed_by"],
        "idle_ms" => &["prescribed_by"],
        "fault" => &["expect_fired"],
        "check_peer" => &["check"],
        _ => &[],
    };
    let extras = [
        ("data", s.data.is_some()),
        ("code", s.code.is_some()),
        ("body", s.body.is_some()),
        ("body_regex", s.body_regex.is_some()),
        ("log_regex", s.log_regex.is_some()),
        ("logs", s.logs.is_some()),
        ("took_ms", s.took_ms.is_some()),
        ("timeout_ms", s.timeout_ms.is_some()),
        ("expect_raw", s.expect_raw.is_some()),
        ("expect_raw_regex", s.expect_raw_regex.is_some()),
        ("within_ms", s.within_ms.is_some()),
        ("expect_fired", s.expect_fired.is_some()),
        ("check", s.check.is_some()),
        ("hold_ms", s.hold_ms.is_some()),
        ("poll_ms", s.poll_ms.is_some()),
        ("after_ms", s.after_ms.is_some()),
        ("prescribed_by", s.prescribed_by.is_some()),
    ];
    if let Some((key, _)) = extras.iter().find(|(k, present)| *present && !allowed.contains(k)) {
        return Err(source.error(
            at,
            Some(key),
            format!("`{key}` does not go with a `{action}` step"),
        ));
    }
    Ok(match action {
        "send" => {
            if s.body.is_some() && s.body_regex.is_some() {
                return Err(source.error(
                    at,
                    Some("body_regex"),
                    "give `body` or `body_regex`, not both",
                ));
            }
            let body = match (s.body, s.body_regex) {
                (Some(b), _) => Some(BodyExpect::Exact(b)),
                (None, Some(re)) => Some(BodyExpect::Regex(regex(source, "body_regex", re)?)),
                (None, None) => None,
            };
            if s.log_regex.is_some() && s.logs.is_some() {
                return Err(source.error(at, Some("logs"), "give `log_regex` or `logs`, not both"));
            }
            let mut logs = Vec::new();
            for re in s.log_regex.into_iter().chain(s.logs.into_iter().flatten()) {
                logs.push(regex(source, "logs", re)?);
            }
            let took = match s.took_ms {
                None => None,
                Some(t) => {
                    let [min, max] = *t.get_ref();
                    if min > max {
                        return Err(source.error(
                            t.span().start,
                            Some("took_ms"),
                            format!("[{min}, {max}] is not a range (min <= max)"),
                        ));
                    }
                    Some((Duration::from_millis(min), Duration::from_millis(max)))
                }
            };
            let code = s.code.unwrap_or(0);
            if code > 9 {
                return Err(source.error(
                    at,
                    Some("code"),
                    format!("result code {code} is not 0-9"),
                ));
            }
            Step::Send {
                line: s.send.unwrap_or_default(),
                data: s.data.map(String::into_bytes),
                code,
                body,
                logs,
                took,
                timeout: s.timeout_ms.map(Duration::from_millis),
            }
        }
        "get" => {
            let pairs = table_pairs(source, at, "get", s.get.unwrap_or_default())?;
            if pairs.is_empty() {
                return Err(source.error(at, Some("get"), "names no variable"));
            }
            Step::Get(pairs)
        }
        "reboot" | "factory_reset" | "power_cycle" => {
            if [s.reboot, s.factory_reset, s.power_cycle].contains(&Some(false)) {
                return Err(source.error(
                    at,
                    Some(action),
                    "only `true` makes sense here; remove the step instead",
                ));
            }
            match action {
                "reboot" => Step::Reboot,
                "factory_reset" => Step::FactoryReset,
                _ => Step::PowerCycle,
            }
        }
        "wait" => {
            let Some(table) = s.wait else { return unreachable_step(source, at) };
            let condition = condition(source, "wait", table)?;
            let Some(timeout) = s.timeout_ms else {
                return Err(source.error(
                    at,
                    Some("timeout_ms"),
                    "a `wait` step needs its deadline: `timeout_ms = <ms>`",
                ));
            };
            let after = match s.after_ms {
                None => None,
                Some(a) => {
                    let [min, max] = *a.get_ref();
                    if min > max {
                        return Err(source.error(
                            a.span().start,
                            Some("after_ms"),
                            format!("[{min}, {max}] is not a range (min <= max)"),
                        ));
                    }
                    if max > timeout {
                        return Err(source.error(
                            a.span().start,
                            Some("after_ms"),
                            format!("the window ends after the deadline (timeout_ms = {timeout})"),
                        ));
                    }
                    Some((Duration::from_millis(min), Duration::from_millis(max)))
                }
            };
            Step::Wait {
                condition,
                timeout: Duration::from_millis(timeout),
                poll: poll_interval(source, s.poll_ms)?,
                after,
            }
        }
        "hold" => {
            let Some(table) = s.hold else { return unreachable_step(source, at) };
            let condition = condition(source, "hold", table)?;
            let Some(ms) = s.hold_ms else {
                return Err(source.error(
                    at,
                    Some("hold_ms"),
                    "a `hold` step needs how long the condition must hold: `hold_ms = <ms>`",
                ));
            };
            Step::Hold {
                condition,
                duration: Duration::from_millis(ms),
                poll: poll_interval(source, s.poll_ms)?,
                prescribed_by: prescribed_by(source, inventory, at, "hold", s.prescribed_by)?,
            }
        }
        "idle_ms" => Step::Idle {
            duration: Duration::from_millis(s.idle_ms.unwrap_or(0)),
            prescribed_by: prescribed_by(source, inventory, at, "idle_ms", s.prescribed_by)?,
        },
        "add_ap" => match s.add_ap {
            Some(ap) => Step::AddAp(crate::rig::ap_spec(source, ap, "add_ap")?),
            None => unreachable_step(source, at)?,
        },
        "remove_ap" => {
            let raw = s.remove_ap.map(Spanned::into_inner).unwrap_or_default();
            let bssid = crate::rig::parse_bssid(&raw).ok_or_else(|| {
                source.error(at, Some("remove_ap"), format!("`{raw}` is not a MAC address"))
            })?;
            Step::RemoveAp(bssid)
        }
        "move_ap" => match s.move_ap {
            Some(m) => {
                let m = m.into_inner();
                let bssid = crate::rig::parse_bssid(m.bssid.get_ref()).ok_or_else(|| {
                    source.error(
                        m.bssid.span().start,
                        Some("move_ap.bssid"),
                        format!("`{}` is not a MAC address", m.bssid.get_ref()),
                    )
                })?;
                let channel = *m.channel.get_ref();
                if !(1..=14).contains(&channel) {
                    return Err(source.error(
                        m.channel.span().start,
                        Some("move_ap.channel"),
                        format!("channel {channel} is not 1-14"),
                    ));
                }
                Step::MoveAp { bssid, channel }
            }
            None => unreachable_step(source, at)?,
        },
        "fault" => match s.fault {
            Some(fault) => Step::Fault { fault, expect_fired: s.expect_fired },
            None => unreachable_step(source, at)?,
        },
        "client" => match s.client {
            Some(crate::peers::ClientAction::TlsConnect(t)) => {
                t.validate().map_err(|m| source.error(at, Some("client.tls_connect"), m))?;
                Step::Client(crate::peers::ClientAction::TlsConnect(t))
            }
            Some(crate::peers::ClientAction::TlsHostile(t)) => {
                t.validate().map_err(|m| source.error(at, Some("client.tls_hostile"), m))?;
                Step::Client(crate::peers::ClientAction::TlsHostile(t))
            }
            Some(action) => Step::Client(action),
            None => unreachable_step(source, at)?,
        },
        "check_peer" => match (s.check_peer, s.check) {
            (Some(index), Some(check)) => Step::CheckPeer { index, check },
            (_, None) => {
                return Err(source.error(
                    at,
                    Some("check"),
                    "a `check_peer` step needs `check = { ... }`",
                ));
            }
            (None, _) => unreachable_step(source, at)?,
        },
        _ => {
            let bytes = unescape_raw(&s.raw.unwrap_or_default())
                .map_err(|m| source.error(at, Some("raw"), m))?;
            let expect = match (s.expect_raw, s.expect_raw_regex) {
                (Some(_), Some(_)) => {
                    return Err(source.error(
                        at,
                        Some("expect_raw_regex"),
                        "give `expect_raw` or `expect_raw_regex`, not both",
                    ));
                }
                (Some(e), None) => RawExpect::Exact(
                    unescape_raw(&e).map_err(|m| source.error(at, Some("expect_raw"), m))?,
                ),
                (None, Some(re)) => {
                    let re_at = re.span().start;
                    RawExpect::Regex(regex::bytes::Regex::new(re.get_ref()).map_err(|e| {
                        source.error(re_at, Some("expect_raw_regex"), format!("invalid regex: {e}"))
                    })?)
                }
                (None, None) => RawExpect::Nothing,
            };
            Step::Raw { bytes, expect, within: Duration::from_millis(s.within_ms.unwrap_or(1000)) }
        }
    })
}

/// Default time between two polls of a `wait` or `hold`.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);

fn poll_interval(source: &Source, poll: Option<Spanned<u64>>) -> Result<Duration, SpecError> {
    match poll {
        None => Ok(DEFAULT_POLL),
        Some(p) if (10..=1000).contains(p.get_ref()) => Ok(Duration::from_millis(*p.get_ref())),
        Some(p) => Err(source.error(
            p.span().start,
            Some("poll_ms"),
            format!("{} ms is not a poll interval (10 to 1000 ms)", p.get_ref()),
        )),
    }
}

/// The clause that prescribes a fixed duration: required, and in the inventory.
fn prescribed_by(
    source: &Source,
    inventory: &Inventory,
    at: usize,
    action: &str,
    clause: Option<Spanned<String>>,
) -> Result<String, SpecError> {
    let Some(clause) = clause else {
        return Err(source.error(
            at,
            Some("prescribed_by"),
            format!(
                "an `{action}` step spends a fixed time: name the clause that prescribes it \
                 (`prescribed_by = \"<clause id>\"`), or `wait` for an effect instead"
            ),
        ));
    };
    let cat = clause.span().start;
    let clause = clause.into_inner();
    if inventory.get(&clause).is_none() {
        return Err(source.error(
            cat,
            Some("prescribed_by"),
            format!("clause `{clause}` is not in the inventory (specs/clauses*.toml)"),
        ));
    }
    Ok(clause)
}

/// A `wait` or `hold` table as a typed condition; errors point at its line and key.
fn condition(
    source: &Source,
    action: &str,
    table: Spanned<toml::Table>,
) -> Result<wait::Condition, SpecError> {
    let at = table.span().start;
    wait::parse(table.into_inner()).map_err(|e| {
        let key = e.key.map_or_else(|| action.to_string(), |k| format!("{action}.{k}"));
        source.error(at, Some(&key), e.message)
    })
}

/// `[case.setup] pki_files`: module file names to PKI names, every name known.
fn pki_files(
    source: &Source,
    case_id: &str,
    table: Spanned<toml::Table>,
) -> Result<Vec<(String, crate::pki::PkiRef)>, SpecError> {
    let at = table.span().start;
    let err =
        |m: String| source.error(at, Some("setup.pki_files"), format!("case `{case_id}`: {m}"));
    table
        .into_inner()
        .into_iter()
        .map(|(file, value)| {
            if file.is_empty() || file.contains(char::is_whitespace) || file.contains('"') {
                return Err(err(format!("`{file}` cannot be a file name on the module")));
            }
            let toml::Value::String(name) = value else {
                return Err(err(format!("the PKI name of `{file}` must be a string")));
            };
            let pki = name
                .parse()
                .map_err(|e: crate::pki::PkiError| err(format!("file `{file}`: {e}")))?;
            Ok((file, pki))
        })
        .collect()
}

/// A step whose action key was seen but whose value is absent cannot happen; reported as an
/// error rather than a panic all the same.
fn unreachable_step(source: &Source, at: usize) -> Result<Step, SpecError> {
    Err(source.error(at, None, "internal: step action vanished while loading"))
}

fn case(
    source: &Source,
    section: &str,
    section_title: &str,
    inventory: &Inventory,
    raw: Spanned<RawCase>,
) -> Result<Case, SpecError> {
    let at = raw.span().start;
    let c = raw.into_inner();
    let id_at = c.id.span().start;
    let id = c.id.into_inner();
    if !id.starts_with(&format!("{section}/")) || !valid_id(&id, &['/', '.', '-', '_']) {
        return Err(source.error(id_at, Some("id"), format!("case id `{id}` must start with `{section}/` and use lower case letters, digits, `/`, `.`, `-`, `_`")));
    }
    let clauses_at = c.clauses.span().start;
    if c.clauses.get_ref().is_empty() {
        return Err(source.error(
            clauses_at,
            Some("clauses"),
            "a case must cite at least one clause",
        ));
    }
    let mut clauses = Vec::new();
    for clause in c.clauses.into_inner() {
        let cat = clause.span().start;
        let clause = clause.into_inner();
        if inventory.get(&clause).is_none() {
            return Err(source.error(
                cat,
                Some("clauses"),
                format!("clause `{clause}` is not in the inventory (specs/clauses*.toml)"),
            ));
        }
        clauses.push(clause);
    }
    if c.basis == Basis::Assumed && c.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(source.error(
            at,
            Some("note"),
            "an assumed case must say in `note` what was chosen and why",
        ));
    }
    let mut transports = Vec::new();
    for t in c.transports.unwrap_or_default() {
        let tat = t.span().start;
        let t = t.get_ref().parse().map_err(|e: crate::transport::TransportError| {
            source.error(tat, Some("transports"), e.to_string())
        })?;
        transports.push(t);
    }
    let setup = c.setup.unwrap_or_default();
    let pki_files = match setup.pki_files {
        Some(t) => pki_files(source, &id, t)?,
        None => Vec::new(),
    };
    let setup = Setup {
        factory_reset: setup.factory_reset.unwrap_or(true),
        set: table_pairs(source, at, "setup.set", setup.set)?,
        save: setup.save,
        reboot: setup.reboot,
        pki_files,
    };
    if c.step.is_empty() {
        return Err(source.error(at, Some("step"), "a case needs at least one step"));
    }
    let steps =
        c.step.into_iter().map(|s| step(source, inventory, s)).collect::<Result<Vec<_>, _>>()?;
    // Fixed durations alone must fit the case's timeout, or the case could never pass.
    let timeout_ms = c.timeout_ms.unwrap_or(DEFAULT_CASE_TIMEOUT_MS);
    let fixed_ms: u64 = steps
        .iter()
        .map(|s| match s {
            Step::Hold { duration, .. } | Step::Idle { duration, .. } => duration.as_millis(),
            _ => 0,
        })
        .map(|ms| u64::try_from(ms).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add);
    if fixed_ms >= timeout_ms {
        return Err(source.error(
            at,
            Some("timeout_ms"),
            format!(
                "the case's `hold_ms` and `idle_ms` steps take {fixed_ms} ms, more than its \
                 timeout ({timeout_ms} ms): raise `timeout_ms`"
            ),
        ));
    }
    let mut requires = Vec::new();
    for r in c.requires.unwrap_or_default() {
        let rat = r.span().start;
        let r = r.into_inner();
        if !REQUIREMENTS.contains(&r.as_str()) {
            let known = REQUIREMENTS.join(", ");
            return Err(source.error(
                rat,
                Some("requires"),
                format!("unknown requirement `{r}` (known: {known})"),
            ));
        }
        requires.push(r);
    }
    let lab_steps = steps.iter().any(|s| {
        matches!(
            s,
            Step::AddAp(_)
                | Step::RemoveAp(_)
                | Step::MoveAp { .. }
                | Step::Fault { .. }
                | Step::Client(_)
                | Step::CheckPeer { .. }
        ) || s.condition().is_some_and(wait::Condition::needs_lab)
    });
    for s in &steps {
        let peer = match s {
            Step::CheckPeer { index, .. } => Some(*index),
            s => match s.condition() {
                Some(wait::Condition::Peer { index, .. }) => Some(*index),
                _ => None,
            },
        };
        let tls_check = match s {
            Step::CheckPeer { index, check } => Some((index, check)),
            s => match s.condition() {
                Some(wait::Condition::Peer { index, check }) => Some((index, check)),
                _ => None,
            },
        };
        if let Some((index, check)) = tls_check
            && check.checks_tls()
            && let Some(p) = c.peers.get(*index)
            && !matches!(p, crate::peers::PeerSpec::TlsServer { .. })
        {
            return Err(source.error(
                at,
                Some("check_peer"),
                format!(
                    "case `{id}`: peer {index} is a {} peer; `handshake`, `handshake_error`, \
                     `version`, `suite` and `client_cert` check tls_server peers",
                    p.kind()
                ),
            ));
        }
        if let Some(index) = peer
            && index >= c.peers.len()
        {
            let n = c.peers.len();
            return Err(source.error(
                at,
                Some("check_peer"),
                format!("peer {index} does not exist (the case has {n} peers, counted from 0)"),
            ));
        }
    }
    for p in &c.peers {
        if let crate::peers::PeerSpec::TlsHostile(h) = p
            && let Err(m) = h.validate()
        {
            return Err(source.error(at, Some("peers"), format!("tls_hostile: {m}")));
        }
    }
    if (lab_steps || !c.packets.is_empty() || !c.peers.is_empty())
        && !requires.iter().any(|r| r == "lab")
    {
        return Err(source.error(
            at,
            Some("requires"),
            "a case with access-point, fault or packet steps must say `requires = [\"lab\"]`",
        ));
    }
    let mut packets = Vec::new();
    for p in c.packets {
        let pat = p.span().start;
        let expect: crate::capture::expect::PacketExpect =
            toml::Value::Table(p.into_inner()).try_into().map_err(|e: toml::de::Error| {
                source.error(pat, Some("packets"), e.message().trim().to_string())
            })?;
        packets.push(expect);
    }
    Ok(Case {
        id,
        section: section.to_string(),
        section_title: section_title.to_string(),
        title: c.title,
        clauses,
        basis: c.basis,
        note: c.note,
        tags: c.tags,
        transports,
        format: c.format.unwrap_or_default(),
        timeout: Duration::from_millis(timeout_ms),
        setup,
        steps,
        requires,
        packets,
        peers: c.peers,
        origin: Origin { file: source.path.clone(), line: source.line_of(at) },
    })
}

/// The id of the `[[case]]` whose text holds 1-based `line`, if any (a plain scan of the
/// text, for error messages only).
fn case_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let upto = line.min(lines.len());
    let start = lines[..upto].iter().rposition(|l| l.trim() == "[[case]]")?;
    lines[start + 1..].iter().take_while(|l| l.trim() != "[[case]]").find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == "id").then(|| value.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// A case's timeout when it names none.
pub const DEFAULT_CASE_TIMEOUT_MS: u64 = 10_000;

/// Everything under a specs directory.
#[derive(Clone, Debug, Default)]
pub struct Specs {
    pub inventory: Inventory,
    pub cases: Vec<Case>,
}

/// Whether a file in the specs folder is an inventory.
fn is_inventory(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("clauses"))
}

/// Loads and validates every file of a specs directory.
pub fn load_dir(dir: &Path) -> Result<Specs, SpecError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SpecError {
        file: dir.to_path_buf(),
        line: 0,
        key: None,
        message: format!("cannot read the specs folder: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut inventory = Inventory::default();
    for f in files.iter().filter(|f| is_inventory(f)) {
        inventory.add_file(&Source::read(f)?)?;
    }
    let mut specs = Specs { inventory, cases: Vec::new() };
    for f in files.iter().filter(|f| !is_inventory(f)) {
        load_file(&mut specs, &Source::read(f)?)?;
    }
    Ok(specs)
}

/// Loads one case file into `specs` (whose inventory must be loaded).
pub fn load_file(specs: &mut Specs, source: &Source) -> Result<(), SpecError> {
    let raw: RawSpecFile = source.parse().map_err(|mut e| {
        // Errors inside a case's typed values (peers, clients, PKI names) name the case.
        if let Some(id) = case_at_line(&source.text, e.line) {
            e.message = format!("case `{id}`: {}", e.message);
        }
        e
    })?;
    let section_at = raw.section.span().start;
    let section = raw.section.into_inner();
    if !valid_id(&section, &['-', '_']) {
        return Err(source.error(
            section_at,
            Some("section"),
            format!("section `{section}` must be lower case letters, digits, `-`, `_`"),
        ));
    }
    for c in raw.case {
        let case = case(source, &section, &raw.title, &specs.inventory, c)?;
        if let Some(first) = specs.cases.iter().find(|other| other.id == case.id) {
            return Err(SpecError {
                file: source.path.clone(),
                line: case.origin.line,
                key: Some("id".to_string()),
                message: format!(
                    "duplicate case id `{}` (first defined at {})",
                    case.id, first.origin
                ),
            });
        }
        specs.cases.push(case);
    }
    Ok(())
}

/// Which cases a run takes.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Case id prefixes (`serial/framing`); empty: all.
    pub prefixes: Vec<String>,
    pub tags: Vec<String>,
    /// Clause ids or prefixes of them.
    pub clauses: Vec<String>,
}

impl Selection {
    pub fn matches(&self, case: &Case) -> bool {
        let by_id = self.prefixes.is_empty()
            || self.prefixes.iter().any(|p| {
                case.id == *p
                    || case.id.starts_with(&format!("{}/", p.trim_end_matches('/')))
                    || case.id.starts_with(p.as_str())
            });
        let by_tag = self.tags.is_empty() || self.tags.iter().any(|t| case.tags.contains(t));
        let by_clause = self.clauses.is_empty()
            || self
                .clauses
                .iter()
                .any(|c| case.clauses.iter().any(|cc| cc == c || cc.starts_with(c.as_str())));
        by_id && by_tag && by_clause
    }

    /// Describes the selection for reports.
    pub fn describe(&self) -> String {
        let mut parts = self.prefixes.clone();
        parts.extend(self.tags.iter().map(|t| format!("tag:{t}")));
        parts.extend(self.clauses.iter().map(|c| format!("clause:{c}")));
        if parts.is_empty() { "all".to_string() } else { parts.join(" ") }
    }
}

#[cfg(test)]
mod tests;
pub mod wait;

//! Conditions of `wait` and `hold` steps: what the runner polls until it holds (`wait`) or
//! checks stays true for a prescribed time (`hold`). Parsed once from the step's table; every
//! error names the key.
//!
//! ```toml
//! wait = { send = "stream_poll 0", body = "1" }                # a reply (command re-sent)
//! wait = { send = "get wlan.network.status", body = "2", logs = ['^\[Associated\]$'] }
//! wait = { log = '^\[Command mode\]$' }                         # a log line (polls `version`)
//! wait = { stream = { type = "TCPS", poll = "data" } }          # a stream and its state
//! wait = { stream = { type = "TCPC", gone = true } }            # no such stream any more
//! wait = { peer = 0, connections = 1 }                          # what a lab peer saw
//! wait = { peer = 0, handshake = "ok", suite = "AES128-SHA" }   # ... a TLS peer's handshake
//! wait = { client = { connect = 3000 } }                        # a lab client's connect works
//! wait = { packets = { count = { of = { dns_query = "x.lab" }, min = 3 } } }  # the capture so far
//! ```

use super::BodyExpect;
use crate::capture::expect::PacketExpect;
use crate::peers::{Bytes, ClientAction, PeerCheck};
use regex::Regex;
use serde::Deserialize;
use std::fmt;

/// The command a log-only condition polls with: it answers at once and changes nothing, and
/// its reply carries the log lines printed since the last command.
pub const LOG_POLL_COMMAND: &str = "version";

/// What a `wait` or `hold` step watches.
#[derive(Clone, Debug)]
pub enum Condition {
    /// A command's reply (the command is sent again on every poll): code, body, and log lines
    /// seen in this order across the polls of the step.
    Reply { line: String, code: u8, body: Option<BodyExpect>, logs: Vec<Regex> },
    /// A stream in `stream_list`, and optionally its `stream_poll` state.
    Stream(StreamCondition),
    /// What a lab peer of the case saw (the matchers of `check_peer`).
    Peer { index: usize, check: PeerCheck },
    /// A lab client's action succeeds (tried again on every poll).
    Client(ClientAction),
    /// The case's packet capture so far meets the expectation.
    Packets(PacketExpect),
}

impl Condition {
    /// Whether the condition watches the lab (peers, clients, the capture).
    pub fn needs_lab(&self) -> bool {
        matches!(self, Condition::Peer { .. } | Condition::Client(_) | Condition::Packets(_))
    }
}

/// A stream in `stream_list` (`# <handle> <type> <info>` rows).
#[derive(Clone, Debug)]
pub struct StreamCondition {
    pub handle: Option<usize>,
    /// `TCPC`, `TCPS`, `UDPC`, `UDPS`, ...
    pub kind: Option<String>,
    /// A regex over the info column (`10.77.0.5:7000 (40123)`).
    pub info: Option<Regex>,
    /// The condition is that no listed stream matches.
    pub gone: bool,
    /// What `stream_poll <handle>` of the first matching stream must answer.
    pub poll: Option<PollState>,
}

/// `stream_poll` answers: 0 nothing to read, 1 data waiting, 2 closed by the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollState {
    Empty,
    Data,
    Closed,
}

impl PollState {
    /// The body `stream_poll` answers in this state.
    pub fn body(self) -> &'static str {
        match self {
            PollState::Empty => "0",
            PollState::Data => "1",
            PollState::Closed => "2",
        }
    }
}

impl StreamCondition {
    /// Whether a `stream_list` row (`# 0 TCPC 10.77.0.5:7000 (40123)`) is a stream this
    /// condition is about; returns its handle.
    pub fn matches_row(&self, row: &str) -> Option<usize> {
        let rest = row.strip_prefix("# ")?;
        let mut parts = rest.splitn(3, ' ');
        let handle: usize = parts.next()?.parse().ok()?;
        let kind = parts.next()?;
        let info = parts.next().unwrap_or("");
        let ok = self.handle.is_none_or(|h| h == handle)
            && self.kind.as_deref().is_none_or(|k| k == kind)
            && self.info.as_ref().is_none_or(|re| re.is_match(info));
        ok.then_some(handle)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Reply { line, code, body, logs } => {
                write!(f, "`{line}`")?;
                match body {
                    Some(BodyExpect::Exact(b)) => write!(f, " to answer `{b}`")?,
                    Some(BodyExpect::Regex(re)) => write!(f, " to match /{re}/")?,
                    None => write!(f, " to answer code {code}")?,
                }
                if !logs.is_empty() {
                    let logs: Vec<String> = logs.iter().map(|l| format!("/{l}/")).collect();
                    write!(f, " with logs {}", logs.join(", "))?;
                }
                Ok(())
            }
            Condition::Stream(s) => {
                let mut what = vec![];
                if let Some(h) = s.handle {
                    what.push(format!("handle {h}"));
                }
                if let Some(k) = &s.kind {
                    what.push(k.clone());
                }
                if let Some(re) = &s.info {
                    what.push(format!("info /{re}/"));
                }
                let what = if what.is_empty() { "any".to_string() } else { what.join(" ") };
                if s.gone {
                    write!(f, "no {what} stream in `stream_list`")
                } else if let Some(p) = s.poll {
                    write!(f, "a {what} stream with `stream_poll` {p:?}")
                } else {
                    write!(f, "a {what} stream in `stream_list`")
                }
            }
            Condition::Peer { index, check } => write!(f, "peer {index} to see {}", peer(check)),
            Condition::Client(action) => write!(f, "client {action:?} to succeed"),
            Condition::Packets(p) => write!(f, "packets: {}", packets(p)),
        }
    }
}

/// A packet expectation in words, its packet matches as written in spec tables.
fn packets(p: &PacketExpect) -> String {
    let bounds = |min: &Option<usize>, max: &Option<usize>| match (min, max) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "any number of".to_string(),
    };
    match p {
        PacketExpect::Sequence(seq) => {
            let seq: Vec<String> = seq.iter().map(ToString::to_string).collect();
            format!("in order {}", seq.join(", "))
        }
        PacketExpect::None(m) => format!("none of {m}"),
        PacketExpect::Gap { first, second, min_ms, max_ms } => format!(
            "{first} then {second} {} ms apart",
            bounds(&min_ms.map(|v| v as usize), &max_ms.map(|v| v as usize))
        ),
        PacketExpect::Count { of, min, max } => format!("{} {of}", bounds(min, max)),
    }
}

fn peer(check: &PeerCheck) -> String {
    let mut parts = vec![];
    if let Some(n) = check.connections {
        parts.push(format!("{n} connection(s)"));
    }
    if let Some(b) = &check.received {
        parts.push(format!("`{}`", crate::channel::escape_bytes(&b.0)));
    }
    if let Some(n) = check.received_len {
        parts.push(format!("{n} bytes"));
    }
    if let Some(n) = check.received_pattern {
        parts.push(format!("{n} bytes of the pattern"));
    }
    if let Some(h) = check.handshake {
        parts.push(format!(
            "handshake {}",
            if h == crate::peers::Expect::Ok { "ok" } else { "failed" }
        ));
    }
    if let Some(e) = &check.handshake_error {
        parts.push(format!("handshake error `{e}`"));
    }
    if let Some(v) = check.version {
        parts.push(v.to_string());
    }
    if let Some(s) = &check.suite {
        parts.push(s.openssl().to_string());
    }
    if let Some(c) = check.client_cert {
        parts.push(format!("{} client certificate", if c { "a" } else { "no" }));
    }
    if let Some(s) = &check.offered_suites {
        parts.push(format!("offered {}", s.describe()));
    }
    if let Some(v) = check.offered_max_version {
        parts.push(format!("offered TLS up to {v}"));
    }
    parts.join(", ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    send: Option<String>,
    code: Option<u8>,
    body: Option<String>,
    body_regex: Option<String>,
    log: Option<String>,
    logs: Option<Vec<String>>,
    stream: Option<RawStream>,
    peer: Option<usize>,
    received: Option<Bytes>,
    received_len: Option<u64>,
    received_pattern: Option<u64>,
    connections: Option<usize>,
    connection: Option<usize>,
    handshake: Option<crate::peers::Expect>,
    handshake_error: Option<String>,
    version: Option<crate::peers::TlsVersion>,
    suite: Option<crate::peers::SuiteName>,
    client_cert: Option<bool>,
    client: Option<ClientAction>,
    packets: Option<PacketExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    handle: Option<usize>,
    #[serde(rename = "type")]
    kind: Option<String>,
    info: Option<String>,
    #[serde(default)]
    gone: bool,
    poll: Option<PollState>,
}

/// A condition problem: the key (inside the condition table) and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct ConditionError {
    pub key: Option<String>,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConditionError {
    ConditionError { key: Some(key.to_string()), message: message.into() }
}

fn regex(key: &str, text: &str) -> Result<Regex, ConditionError> {
    Regex::new(text).map_err(|e| err(key, format!("invalid regex: {e}")))
}

/// Parses the table of a `wait` or `hold` step.
pub fn parse(table: toml::Table) -> Result<Condition, ConditionError> {
    let raw: RawCondition =
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            let message = e.message().trim().to_string();
            ConditionError { key: crate::source::unknown_key(&message), message }
        })?;
    let logs_given = raw.log.is_some() || raw.logs.is_some();
    let subjects: Vec<&str> = [
        ("send", raw.send.is_some()),
        ("stream", raw.stream.is_some()),
        ("peer", raw.peer.is_some()),
        ("client", raw.client.is_some()),
        ("packets", raw.packets.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    let subject = match subjects.as_slice() {
        [one] => *one,
        [] if logs_given => "log",
        [] => {
            return Err(ConditionError {
                key: None,
                message: "says nothing to wait for: give one of send, log, logs, stream, peer, \
                          client, packets"
                    .into(),
            });
        }
        many => {
            return Err(err(
                many[1],
                format!("watches more than one thing ({}); use one step each", many.join(", ")),
            ));
        }
    };
    // Keys that belong to another subject are errors, so a typo never half-works.
    let allowed: &[&str] = match subject {
        "send" => &["code", "body", "body_regex", "log", "logs"],
        "log" => &["log", "logs"],
        "peer" => &[
            "received",
            "received_len",
            "received_pattern",
            "connections",
            "connection",
            "handshake",
            "handshake_error",
            "version",
            "suite",
            "client_cert",
        ],
        _ => &[],
    };
    let extras = [
        ("code", raw.code.is_some()),
        ("body", raw.body.is_some()),
        ("body_regex", raw.body_regex.is_some()),
        ("log", raw.log.is_some()),
        ("logs", raw.logs.is_some()),
        ("received", raw.received.is_some()),
        ("received_len", raw.received_len.is_some()),
        ("received_pattern", raw.received_pattern.is_some()),
        ("connections", raw.connections.is_some()),
        ("connection", raw.connection.is_some()),
        ("handshake", raw.handshake.is_some()),
        ("handshake_error", raw.handshake_error.is_some()),
        ("version", raw.version.is_some()),
        ("suite", raw.suite.is_some()),
        ("client_cert", raw.client_cert.is_some()),
    ];
    if let Some((key, _)) = extras.iter().find(|(k, present)| *present && !allowed.contains(k)) {
        return Err(err(key, format!("`{key}` does not go with a `{subject}` condition")));
    }
    Ok(match subject {
        "send" | "log" => {
            if raw.body.is_some() && raw.body_regex.is_some() {
                return Err(err("body_regex", "give `body` or `body_regex`, not both"));
            }
            if raw.log.is_some() && raw.logs.is_some() {
                return Err(err("logs", "give `log` or `logs`, not both"));
            }
            let body = match (raw.body, raw.body_regex) {
                (Some(b), _) => Some(BodyExpect::Exact(b)),
                (None, Some(re)) => Some(BodyExpect::Regex(regex("body_regex", &re)?)),
                (None, None) => None,
            };
            let mut logs = vec![];
            for re in raw.log.into_iter().chain(raw.logs.into_iter().flatten()) {
                logs.push(regex("logs", &re)?);
            }
            if logs.is_empty() && body.is_none() && raw.code.is_none() {
                return Err(err(
                    "send",
                    "a reply condition needs `code`, `body`, `body_regex` or `logs`",
                ));
            }
            let code = raw.code.unwrap_or(0);
            if code > 9 {
                return Err(err("code", format!("result code {code} is not 0-9")));
            }
            let line = raw.send.unwrap_or_else(|| LOG_POLL_COMMAND.to_string());
            Condition::Reply { line, code, body, logs }
        }
        "stream" => {
            let Some(s) = raw.stream else { return Err(vanished()) };
            if s.gone && s.poll.is_some() {
                return Err(err("stream.poll", "a stream that is `gone` has no poll state"));
            }
            let info = s.info.as_deref().map(|re| regex("stream.info", re)).transpose()?;
            if let Some(k) = &s.kind
                && (k.is_empty() || !k.chars().all(|c| c.is_ascii_uppercase()))
            {
                return Err(err(
                    "stream.type",
                    format!("`{k}` is not a stream type (TCPC, UDPS, ...)"),
                ));
            }
            Condition::Stream(StreamCondition {
                handle: s.handle,
                kind: s.kind,
                info,
                gone: s.gone,
                poll: s.poll,
            })
        }
        "peer" => {
            let check = PeerCheck {
                received: raw.received,
                received_len: raw.received_len,
                received_pattern: raw.received_pattern,
                connections: raw.connections,
                connection: raw.connection,
                within_ms: Some(0),
                handshake: raw.handshake,
                handshake_error: raw.handshake_error,
                version: raw.version,
                suite: raw.suite,
                client_cert: raw.client_cert,
                ..PeerCheck::default()
            };
            check.validate().map_err(|m| err("peer", m))?;
            Condition::Peer { index: raw.peer.unwrap_or(0), check }
        }
        "client" => match raw.client {
            Some(
                a @ (ClientAction::Connect(_)
                | ClientAction::ConnectRefused(_)
                | ClientAction::UdpSend(_)),
            ) => Condition::Client(a),
            Some(_) => {
                return Err(err(
                    "client",
                    "only `connect`, `connect_refused` and `udp_send` can be tried again until \
                     they work",
                ));
            }
            None => return Err(vanished()),
        },
        _ => match raw.packets {
            Some(p) => Condition::Packets(p),
            None => return Err(vanished()),
        },
    })
}

fn vanished() -> ConditionError {
    ConditionError { key: None, message: "internal: the condition's subject vanished".into() }
}

//! Planning a run: every selected case × every transport of the run, each either to run or
//! skipped with its reason, decided before anything is sent.
//!
//! A case applies to a transport when the case does not exclude it (`transports` of the
//! spec table) and the transport has what the case's steps use ([`crate::transport::Capabilities`]): raw
//! bytes, the console's human format, log lines. A case applies to a rig when the rig has
//! what it needs (the lab network, power control). What does not apply is reported as
//! skipped, with the reason, never as a failure.

use crate::channel::ConsoleFormat;
use crate::rig::{Dut, Rig};
use crate::spec::wait::Condition;
use crate::spec::{Case, Step};
use crate::transport::{LogDelivery, ResponseFormat, Transport};

/// Why a case does not run over a transport or on a rig.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    #[error("not for the {transport} transport (the case is for {})", list(.listed))]
    NotListed { transport: Transport, listed: Vec<Transport> },
    #[error("raw bytes need a transport with raw access ({transport} has none)")]
    RawBytes { transport: Transport },
    #[error(
        "the human console format needs a console transport ({transport} answers in structured replies)"
    )]
    HumanFormat { transport: Transport },
    #[error("expected log lines need a transport that delivers logs ({transport} delivers none)")]
    Logs { transport: Transport },
    /// A network transport runs over the network and HTTP server its setup prepared over the
    /// control channel; this part of the case would take them away or see them changed.
    #[error(
        "{at} (`{what}`) {effect}; the {transport} transport needs the network and HTTP server its setup prepares"
    )]
    Disturbs { transport: Transport, at: String, what: String, effect: Effect },
    #[error(
        "the {transport} transport needs the module on a network; this rig has no [lab] with an access point it can join"
    )]
    NoNetwork { transport: Transport },
    #[error(
        "the setup joins `{ssid}`, not a network of this rig's lab, so the {transport} transport could not reach the module"
    )]
    ForeignNetwork { transport: Transport, ssid: String },
    #[error("needs the lab network; this rig has no [lab]")]
    NoLab,
    /// The transport reaches the module over its network, which only the lab provides.
    #[error(
        "the {transport} transport reaches the module over the lab network; this rig has no [lab]"
    )]
    TransportNeedsLab { transport: Transport },
    /// The case does what would cut the remote terminal off under its own steps, or checks
    /// what only the serial console has.
    #[error("not over the remote terminal: {0}")]
    Terminal(TerminalConflict),
    #[error("power-cycles the module; this rig has no [power]")]
    NoPower,
    /// A fault that acts inside the module (its flash, its heap): only the simulated
    /// module's lab reaches there; a board's lab equipment is its radio.
    #[error(
        "injects `{0}`, a fault inside the module that only the simulated module's lab reaches"
    )]
    InsideFault(&'static str),
}

/// What a step or the setup does to a network transport's footing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reboot, factory reset, power cycle: the network and the server go down.
    Restart,
    /// `network_down`, `network_restart`.
    NetworkDown,
    /// Removes, moves or faults access points: the module's link may drop.
    Radio,
    /// `load`: the saved settings come back, the transport's setup is undone.
    Load,
    /// Reads or sets `http.server.*`, which the transport's setup sets.
    ServerSettings,
    /// Reads or sets the network settings or state (`wlan.ssid`, `wlan.passkey`,
    /// `wlan.network.*`) or brings the network up, when the transport's setup chose the
    /// network: what the case sees is the setup's doing.
    NetworkSettings,
    /// `bus.mode stream`: the serial console, the control channel, stops taking commands.
    StreamMode,
    /// `network_up` expected to fail, or checked for what joining prints: the network is up
    /// already, so it answers at once.
    JoinObserved,
    /// Packet checks: the transport's own traffic (its setup's join and DHCP, HTTP to the
    /// module) would be on the lab network with the case's.
    Packets,
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Effect::Restart => "restarts the module",
            Effect::NetworkDown => "takes the network down or restarts it",
            Effect::Radio => "changes the access points the module's network runs on",
            Effect::Load => "reloads the saved settings, undoing the transport's setup",
            Effect::ServerSettings => "reads or changes http.server.*, which the transport's setup sets",
            Effect::NetworkSettings => {
                "reads or changes the network, which the transport's setup joins (the case chooses none)"
            }
            Effect::StreamMode => "puts the bus in STREAM mode, where the control channel cannot prepare the transport",
            Effect::JoinObserved => {
                "looks at the join itself (a failure, its log lines or time), but the transport's setup has already joined"
            }
            Effect::Packets => {
                "checks the lab network's packets, among which the transport's own traffic would be"
            }
        })
    }
}

/// The transports that reach the module through its HTTP server (REST, the command stream),
/// prepared over the control channel before the steps.
fn uses_http_server(transport: Transport) -> bool {
    matches!(transport, Transport::Rest | Transport::CmdStream)
}

/// Variables whose reading or setting matters to a network transport, by name (a trailing
/// dot: the group) and shortcut.
const WATCHED: &[(&str, &str, Effect)] = &[
    ("http.server.", "ht s", Effect::ServerSettings),
    ("wlan.ssid", "wl s", Effect::NetworkSettings),
    ("wlan.passkey", "wl p", Effect::NetworkSettings),
    ("wlan.network.", "wl n", Effect::NetworkSettings),
    ("wlan.join.result", "wl j s", Effect::NetworkSettings),
    ("bus.mode", "bu m", Effect::StreamMode),
];

/// Shortcuts that begin like a watched one but name another variable (`wl s a` is
/// `wlan.scan.active_dwell`, not `wlan.ssid`).
const NOT_WATCHED: &[&str] = &["wl s a", "wl s c", "wl s n", "wl s p", "wl s r", "wl s t"];

/// The settings a case may set itself and then read back: after a `set` that succeeds, a
/// `get` sees the case's value, not the one the transport's setup joined with. (Setting them
/// changes the next join, not the network the transport runs over.)
const SETTABLE: &[&str] = &["wlan.ssid", "wlan.passkey"];

/// What `get`/`set` of the variable named by `args` (a name or shortcut and, for `set`, the
/// value) does to a network transport, with the watched variable (or group) it names.
/// `bus.mode` only matters when set to `stream`.
fn variable_effect(args: &[&str], set: bool) -> Option<(&'static str, Effect)> {
    let first = args.first()?.to_ascii_lowercase();
    let words: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let hit = WATCHED.iter().find(|&&(name, shortcut, _)| {
        let named = (first.contains('.') || !set && args.len() == 1)
            && (first == name.trim_end_matches('.')
                || name.ends_with('.') && first.starts_with(name)
                // A group get (`get wlan`, `get http.server`).
                || !set && name.starts_with(&format!("{first}.")));
        let short: Vec<&str> = shortcut.split(' ').collect();
        let by_shortcut = !first.contains('.')
            && (words.iter().take(short.len()).eq(short.iter())
                && !NOT_WATCHED.iter().any(|n| words.iter().copied().take(3).eq(n.split(' ')))
                // A group get by shortcut (`get wl`).
                || !set && words.len() < short.len() && short.starts_with(&words));
        named || by_shortcut
    })?;
    match *hit {
        (_, _, Effect::StreamMode) if !(set && words.iter().skip(1).any(|w| *w == "stream")) => {
            None
        }
        (name, _, effect) => Some((name, effect)),
    }
}

/// What running `line` does to a network transport: the effect, and for `get`/`set` the
/// watched variable and whether it is set.
fn line_effect(line: &str) -> Option<(Effect, Option<(&'static str, bool)>)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (command, args) = words.split_first()?;
    let plain = |effect| Some((effect, None));
    match command.to_ascii_lowercase().as_str() {
        "reboot" | "factory_reset" | "fac" => plain(Effect::Restart),
        "network_down" | "ndo" | "network_restart" | "nre" => plain(Effect::NetworkDown),
        "network_up" | "nup" => plain(Effect::NetworkSettings),
        "load" => plain(Effect::Load),
        // Every variable, `http.server.*` among them.
        "get" if args.first().is_some_and(|a| a.eq_ignore_ascii_case("all")) => {
            plain(Effect::ServerSettings)
        }
        "get" => variable_effect(args, false).map(|(name, e)| (e, Some((name, false)))),
        "set" => variable_effect(args, true).map(|(name, e)| (e, Some((name, true)))),
        _ => None,
    }
}

/// Whether the case leaves a network transport the footing its setup prepares: nothing
/// restarts the module, takes the network down, reloads settings, touches the HTTP server's
/// settings or puts the bus in STREAM mode; and when the case does not choose a network in
/// its setup (the transport's setup then joins the lab's), nothing reads the network's
/// settings or state, except `wlan.ssid`/`wlan.passkey` after the case set them itself.
fn network_transport_allows(case: &Case, transport: Transport) -> Result<(), NotApplicable> {
    let disturbs = |at: String, what: &str, effect| {
        Err(NotApplicable::Disturbs { transport, at, what: what.to_string(), effect })
    };
    let chooses_network = case.setup.set.iter().any(|(name, _)| name == "wlan.ssid");
    // The settable variables the case has set so far (the setup's count).
    let mut own: Vec<&'static str> = Vec::new();
    for (name, value) in &case.setup.set {
        match variable_effect(&[name, value], true) {
            Some((var, Effect::NetworkSettings)) => own.push(var),
            Some((_, effect)) => {
                return disturbs("the setup".into(), &format!("{name} = {value}"), effect);
            }
            None => {}
        }
    }
    if !case.packets.is_empty() {
        return disturbs("the case".into(), "packets", Effect::Packets);
    }
    for (i, step) in case.steps.iter().enumerate() {
        let at = || format!("step {}", i + 1);
        // Each line the step sends, whether it is expected to succeed, and whether nothing
        // but its reply is checked (no log lines, no reply time).
        let lines: Vec<(String, bool, bool)> = match step {
            Step::Send { line, code, logs, took, .. } => {
                vec![(line.clone(), *code == 0, logs.is_empty() && took.is_none())]
            }
            Step::Get(pairs) => {
                pairs.iter().map(|(name, _)| (format!("get {name}"), true, true)).collect()
            }
            Step::Wait { condition: Condition::Reply { line, .. }, .. }
            | Step::Hold { condition: Condition::Reply { line, .. }, .. } => {
                vec![(line.clone(), false, false)]
            }
            Step::Reboot => return disturbs(at(), "reboot", Effect::Restart),
            Step::FactoryReset => return disturbs(at(), "factory_reset", Effect::Restart),
            Step::PowerCycle => return disturbs(at(), "power_cycle", Effect::Restart),
            Step::RemoveAp(_) | Step::MoveAp { .. } | Step::Fault { .. } => {
                return disturbs(at(), &step.describe(), Effect::Radio);
            }
            _ => Vec::new(),
        };
        for (line, succeeds, plain) in lines {
            let Some((effect, var)) = line_effect(&line) else { continue };
            // `network_up` over a network that is up already answers at once: a case that
            // expects it to fail, or looks at what joining prints, would see otherwise.
            let joins = var.is_none();
            let allowed = effect == Effect::NetworkSettings
                && (chooses_network && (!joins || succeeds && plain)
                    || match var {
                        Some((name, true)) if SETTABLE.contains(&name) => {
                            if succeeds {
                                own.push(name);
                            }
                            true
                        }
                        Some((name, false)) => own.contains(&name),
                        _ => false,
                    });
            if !allowed {
                let effect = if chooses_network && joins { Effect::JoinObserved } else { effect };
                return disturbs(at(), &line, effect);
            }
        }
    }
    Ok(())
}

/// Whether the rig can put the module on a network a network transport reaches: a lab whose
/// access points include the one the case joins, if it chooses one.
fn network_on_rig(case: &Case, transport: Transport, rig: &Rig) -> Result<(), NotApplicable> {
    let Some(lab) = &rig.lab else { return Err(NotApplicable::NoNetwork { transport }) };
    match case.setup.set.iter().find(|(name, _)| name == "wlan.ssid") {
        Some((_, ssid)) if !lab.aps.iter().any(|ap| &ap.ssid == ssid) => {
            Err(NotApplicable::ForeignNetwork { transport, ssid: ssid.clone() })
        }
        Some(_) => Ok(()),
        // The transport's setup joins one of the lab's, an open one when the case sets the
        // passkey itself.
        None => {
            let keep = case.setup.set.iter().any(|(name, _)| name == "wlan.passkey");
            match lab.network_to_join(keep) {
                Some(_) => Ok(()),
                None => Err(NotApplicable::NoNetwork { transport }),
            }
        }
    }
}

/// Why a case cannot run over the remote terminal, which needs the network up and its own
/// settings unchanged for the whole case, and is a console of its own beside the serial one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TerminalConflict {
    #[error("the case restarts the module (`{0}`), which ends the terminal's connection")]
    Restarts(String),
    #[error("the case takes the network down or restarts it (`{0}`), and the terminal with it")]
    NetworkDown(String),
    #[error(
        "the case changes the radio or the access points, which may drop the network the terminal runs on"
    )]
    Radio,
    #[error("the case changes the remote terminal's settings (`{0}`) under its own steps")]
    OwnSettings(String),
    #[error("the case checks how the network comes up, and the terminal needs it up first")]
    NetworkUp,
    #[error(
        "the case sets `{0}`, which acts when the network comes up: while the terminal is got ready, before the case's steps"
    )]
    AutoStart(String),
    #[error(
        "the case sets `{0}`, which decides how the network comes up, and the terminal needs it up before the case's steps"
    )]
    JoinSettings(String),
    #[error(
        "the case reads `{0}`, which getting the terminal ready changes (enabled, the network up)"
    )]
    ReadsSetup(String),
    #[error("the case puts the serial bus in STREAM mode; its bytes are the serial bus's")]
    StreamMode,
    #[error(
        "the case checks the packet capture, which would hold the terminal's own traffic (the setup's join and DHCP, its TCP connection)"
    )]
    Capture,
}

/// The command words (names and shortcuts) by what they do to the remote terminal.
const RESTARTS: &[&str] = &["reboot", "factory_reset", "fac"];
const NETWORK_DOWN: &[&str] = &["network_down", "ndo", "network_restart", "nre"];
const NETWORK_UP: &[&str] = &["network_up", "nup"];

/// Whether `case` can run over the remote terminal (see [`TerminalConflict`]).
pub fn terminal_conflict(case: &Case) -> Result<(), TerminalConflict> {
    use TerminalConflict as C;
    let setup_sets =
        |prefix: &str| case.setup.set.iter().any(|(n, v)| n == prefix && v == "stream");
    if setup_sets("bus.mode") {
        return Err(C::StreamMode);
    }
    if let Some((name, _)) =
        case.setup.set.iter().find(|(n, v)| n.ends_with(".auto_start") && v != "0")
    {
        return Err(C::AutoStart(name.clone()));
    }
    if let Some((name, _)) = case
        .setup
        .set
        .iter()
        .find(|(n, _)| n.starts_with("wlan.") && n != "wlan.ssid" && n != "wlan.passkey")
    {
        return Err(C::JoinSettings(name.clone()));
    }
    let watches_capture =
        case.steps.iter().any(|s| matches!(s.condition(), Some(Condition::Packets(_))));
    if !case.packets.is_empty() || watches_capture {
        return Err(C::Capture);
    }
    let mut lines: Vec<&str> = Vec::new();
    let mut raw_lines: Vec<String> = Vec::new();
    for step in &case.steps {
        match step {
            Step::Reboot => return Err(C::Restarts("reboot".into())),
            Step::FactoryReset => return Err(C::Restarts("factory_reset".into())),
            Step::PowerCycle => return Err(C::Restarts("power_cycle".into())),
            Step::AddAp(_) | Step::RemoveAp(_) | Step::MoveAp { .. } | Step::Fault { .. } => {
                return Err(C::Radio);
            }
            Step::Send { line, logs, code, took, .. } => {
                let word = line.split_whitespace().next().unwrap_or("");
                // A network that comes up with log lines, in a time, or not at all is one
                // the case watches come up.
                if NETWORK_UP.contains(&word) && (!logs.is_empty() || *code != 0 || took.is_some())
                {
                    return Err(C::NetworkUp);
                }
                lines.push(line);
            }
            // Raw bytes are command lines too (`reboot\r\n`).
            Step::Raw { bytes, .. } => {
                let text = String::from_utf8_lossy(bytes);
                raw_lines.extend(text.split(['\r', '\n']).map(str::to_string));
            }
            Step::Wait { condition: Condition::Reply { line, .. }, .. }
            | Step::Hold { condition: Condition::Reply { line, .. }, .. } => lines.push(line),
            _ => {}
        }
    }
    lines.extend(raw_lines.iter().map(String::as_str));
    for &line in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let word = words.first().copied().unwrap_or("");
        if RESTARTS.contains(&word) {
            return Err(C::Restarts(line.to_string()));
        }
        if NETWORK_DOWN.contains(&word) {
            return Err(C::NetworkDown(line.to_string()));
        }
        if word == "set"
            && let Some(name) = words.get(1)
        {
            // `re …` is the remote terminal's shortcut group; `wl …` the WLAN's.
            if name.starts_with("remote_terminal.") || *name == "re" {
                return Err(C::OwnSettings(line.to_string()));
            }
        }
    }
    // What getting the terminal ready changed: it is enabled and the network is up, so the
    // network's status variables and the listings that hold them differ from a fresh
    // module's (`wlan.ssid` and `wlan.passkey` are put back, see `Session`).
    let mut reads: Vec<String> = Vec::new();
    for step in &case.steps {
        if let Step::Get(pairs) = step {
            reads.extend(pairs.iter().map(|(n, _)| n.clone()));
        }
    }
    reads.extend(lines.iter().filter_map(|l| Some(l.strip_prefix("get ")?.trim().to_string())));
    for read in reads {
        let name = read.as_str();
        let changed = ["all", "wlan", "wl", "re", "wlan.join", "wl j", "wlan.join.result"]
            .contains(&name)
            || ["wl j s", "wlan.info", "wl i"].contains(&name)
            || ["remote_terminal", "re ", "wlan.network", "wl n"]
                .iter()
                .any(|p| name.starts_with(p));
        if changed {
            return Err(C::ReadsSetup(read));
        }
    }
    Ok(())
}

fn list(transports: &[Transport]) -> String {
    transports.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

/// Whether `case` can run over `transport`: what its steps use against what the transport
/// can do.
pub fn applies(case: &Case, transport: Transport) -> Result<(), NotApplicable> {
    if !case.runs_on(transport) {
        return Err(NotApplicable::NotListed { transport, listed: case.transports.clone() });
    }
    let can = transport.capabilities();
    if !can.raw_bytes && case.steps.iter().any(|s| matches!(s, Step::Raw { .. })) {
        return Err(NotApplicable::RawBytes { transport });
    }
    if can.responses != ResponseFormat::Console && case.format == ConsoleFormat::Human {
        return Err(NotApplicable::HumanFormat { transport });
    }
    let expects_logs = case.steps.iter().any(|s| match s {
        Step::Send { logs, .. } => !logs.is_empty(),
        Step::Wait { condition, .. } | Step::Hold { condition, .. } => {
            matches!(condition, Condition::Reply { logs, .. } if !logs.is_empty())
        }
        _ => false,
    });
    if can.logs == LogDelivery::None && expects_logs {
        return Err(NotApplicable::Logs { transport });
    }
    if uses_http_server(transport) {
        network_transport_allows(case, transport)?;
    }
    if transport == Transport::Terminal {
        terminal_conflict(case).map_err(NotApplicable::Terminal)?;
    }
    Ok(())
}

/// Whether the rig can carry `transport`: one that reaches the module over its network
/// needs the rig's lab.
pub fn rig_carries(transport: Transport, rig: &Rig) -> Result<(), NotApplicable> {
    if transport.capabilities().needs_network && rig.lab.is_none() {
        return Err(NotApplicable::TransportNeedsLab { transport });
    }
    Ok(())
}

/// Whether the rig has what `case` needs.
pub fn rig_allows(case: &Case, rig: &Rig) -> Result<(), NotApplicable> {
    if case.requires.iter().any(|r| r == "lab") && rig.lab.is_none() {
        return Err(NotApplicable::NoLab);
    }
    if case.steps.iter().any(|s| matches!(s, Step::PowerCycle)) {
        match rig.dut {
            // The emulated board is reset through QEMU's monitor; its retained RAM stays.
            Dut::Sim { .. } | Dut::Qemu { .. } => {}
            Dut::Hardware { .. } if rig.power.is_some() => {}
            Dut::Hardware { .. } => return Err(NotApplicable::NoPower),
        }
    }
    if !matches!(rig.dut, Dut::Sim { .. }) {
        for step in &case.steps {
            match step {
                Step::Fault { fault: crate::ap::Fault::StoreFail { .. }, .. } => {
                    return Err(NotApplicable::InsideFault("store_fail"));
                }
                Step::Fault { fault: crate::ap::Fault::TlsHeap { .. }, .. } => {
                    return Err(NotApplicable::InsideFault("tls_heap"));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// One case over one transport, as planned.
#[derive(Clone, Debug)]
pub struct Planned<'a> {
    pub case: &'a Case,
    pub transport: Transport,
    /// Why it does not run, if it does not.
    pub skip: Option<NotApplicable>,
}

/// Plans `cases` over `transports`: transport by transport (a session switches transport
/// as rarely as possible), cases in file order within each.
pub fn plan<'a>(cases: &[&'a Case], transports: &[Transport], rig: &Rig) -> Vec<Planned<'a>> {
    transports
        .iter()
        .flat_map(|&transport| {
            cases.iter().map(move |&case| Planned {
                case,
                transport,
                skip: applies(case, transport)
                    .and_then(|()| match transport {
                        // The HTTP server's transports say which network they miss below.
                        Transport::Terminal => rig_carries(transport, rig),
                        _ => Ok(()),
                    })
                    .and_then(|()| rig_allows(case, rig))
                    .and_then(|()| match uses_http_server(transport) {
                        true => network_on_rig(case, transport, rig),
                        false => Ok(()),
                    })
                    .err(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const INVENTORY: &str = "[[clause]]\nid = \"a.one\"\nsection = \"A\"\nsource = \"chapter\"\nlines = [1, 2]\nkind = \"behaviour\"\ntext = \"one\"\n";

    /// A case from its spec table text (the `[[case]]` header and required keys added).
    fn case(body: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("clauses.toml"), INVENTORY).expect("write");
        let text = format!(
            "section = \"x\"\ntitle = \"X\"\n\n[[case]]\nid = \"x/one\"\ntitle = \"one\"\nclauses = [\"a.one\"]\nbasis = \"documented\"\n{body}"
        );
        std::fs::write(dir.path().join("x.toml"), text).expect("write");
        let mut specs = crate::spec::load_dir(dir.path()).expect("valid spec");
        specs.cases.remove(0)
    }

    const SEND: &str = "[[case.step]]\nsend = \"version\"\n";
    const RAW: &str = "[[case.step]]\nraw = \"x\\r\\n\"\nexpect_raw = \"x\"\n";
    const LOGS: &str = "[[case.step]]\nsend = \"tcpc 10.0.0.1 7\"\nlogs = [\"Opened\"]\n";
    const NUP_LOGS: &str = "[[case.step]]\nsend = \"nup\"\nlogs = [\"Joined\"]\n";
    const WAIT_LOG: &str = "[[case.step]]\nwait = { log = \"Joined\" }\ntimeout_ms = 100\n";
    const LOGS_OWN_NETWORK: &str = "[case.setup]\nset = { \"wlan.ssid\" = \"gecko-lab\" }\n[[case.step]]\nsend = \"nup\"\n[[case.step]]\nsend = \"tcpc 10.77.0.5 7\"\nlogs = [\"Connected\"]\n";
    const REBOOT: &str = "[[case.step]]\nsend = \"version\"\n[[case.step]]\nreboot = true\n";
    const FAC: &str = "[[case.step]]\nsend = \"fac 02:00:00:00:00:01\"\n";
    const POWER: &str = "[[case.step]]\npower_cycle = true\n";
    const NDO: &str = "[[case.step]]\nsend = \"version\"\n[[case.step]]\nsend = \"network_down\"\n";
    const LOAD: &str = "[[case.step]]\nsend = \"load\"\n";
    const SERVER: &str = "[[case.step]]\nsend = \"set ht s o 8080\"\nbody = \"Set OK\"\n";
    const SERVER_GROUP: &str = "[[case.step]]\nsend = \"get http\"\n";
    const SERVER_SETUP: &str = "[case.setup]\nset = { \"http.server.enabled\" = \"0\" }\n[[case.step]]\nsend = \"version\"\n";
    const SSID: &str = "[[case.step]]\nget = { \"wlan.ssid\" = \"\" }\n";
    const SSID_SHORT: &str = "[[case.step]]\nsend = \"set wl s hello\"\n[[case.step]]\nget = { \"wlan.ssid\" = \"hello\" }\n";
    const SSID_REFUSED: &str = "[[case.step]]\nsend = \"set wlan.ssid 123456789012345678901234567890123\"\ncode = 9\n[[case.step]]\nget = { \"wlan.ssid\" = \"\" }\n";
    const PASSKEY_SETUP: &str = "[case.setup]\nset = { \"wlan.passkey\" = \"12345678\" }\n[[case.step]]\nget = { \"wlan.passkey\" = \"12345678\" }\n";
    const NET_STATE_AFTER_SET: &str =
        "[[case.step]]\nsend = \"set wlan.ssid x\"\n[[case.step]]\nsend = \"get wl n s\"\n";
    const GET_ALL: &str = "[[case.step]]\nsend = \"get all\"\n";
    const JOIN_RESULT: &str = "[[case.step]]\nsend = \"get wl j s\"\n";
    const SCAN_SHORT: &str = "[[case.step]]\nsend = \"set wl s a 100\"\n[[case.step]]\nsend = \"get wlan.scan.retries\"\n[[case.step]]\nsend = \"get wlan.mac\"\n";
    const OWN_NETWORK_STATE: &str = "[case.setup]\nset = { \"wlan.ssid\" = \"gecko-lab\" }\n[[case.step]]\nsend = \"network_up\"\n[[case.step]]\nget = { \"wlan.network.status\" = \"2\" }\n";
    const JOIN_FAILS: &str = "[case.setup]\nset = { \"wlan.ssid\" = \"gecko-lab\", \"wlan.passkey\" = \"wrongpass99\" }\n[[case.step]]\nsend = \"network_up\"\ncode = 1\n";
    const PACKETS: &str = "requires = [\"lab\"]\npackets = [{ none = { dhcp = \"discover\" } }]\n[[case.step]]\nsend = \"version\"\n";
    const STREAM_MODE: &str = "[case.setup]\nset = { \"bus.mode\" = \"stream\" }\nsave = true\nreboot = true\n[[case.step]]\nsend = \"version\"\n";
    const COMMAND_MODE: &str = "[[case.step]]\nsend = \"set bus.mode command\"\n";
    const RADIO: &str = "requires = [\"lab\"]\n[[case.step]]\nsend = \"version\"\n[[case.step]]\nremove_ap = \"02:00:00:00:01:01\"\n";
    const HUMAN: &str = "format = \"human\"\n[[case.step]]\nsend = \"version\"\n";
    const ONLY_REST: &str = "transports = [\"rest\"]\n[[case.step]]\nsend = \"version\"\n";

    use Transport::{CmdStream, Rest, Serial, Terminal};

    #[rstest]
    #[case::plain_everywhere(SEND, &[Serial, Rest, CmdStream, Terminal], "")]
    #[case::raw_on_serial(RAW, &[Serial], "")]
    #[case::raw_on_terminal(RAW, &[Terminal], "")]
    #[case::raw_over_rest(RAW, &[Rest], "raw bytes need a transport with raw access (rest has none)")]
    #[case::raw_over_the_stream(RAW, &[CmdStream], "raw bytes need a transport with raw access (websocket has none)")]
    #[case::logs_of_a_stream_command(LOGS, &[Serial, Terminal, Rest, CmdStream], "")]
    #[case::logs_inline_or_polled(LOGS_OWN_NETWORK, &[Serial, Terminal, Rest, CmdStream], "")]
    #[case::awaited_logs(WAIT_LOG, &[Serial, Terminal, Rest, CmdStream], "")]
    #[case::network_up_without_choosing_one(NUP_LOGS, &[Rest], "step 1 (`nup`) reads or changes the network, which the transport's setup joins (the case chooses none); the rest transport needs the network and HTTP server its setup prepares")]
    #[case::reboot_step(REBOOT, &[Rest, CmdStream], "step 2 (`reboot`) restarts the module; the serial transport needs the network and HTTP server its setup prepares")]
    #[case::reboot_on_consoles(REBOOT, &[Serial], "")]
    #[case::factory_reset_by_shortcut(FAC, &[Rest], "step 1 (`fac 02:00:00:00:00:01`) restarts the module; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::power_cycle(POWER, &[CmdStream], "step 1 (`power_cycle`) restarts the module; the websocket transport needs the network and HTTP server its setup prepares")]
    #[case::network_down(NDO, &[Rest], "step 2 (`network_down`) takes the network down or restarts it; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::load(LOAD, &[Rest], "step 1 (`load`) reloads the saved settings, undoing the transport's setup; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::server_settings(SERVER, &[Rest], "step 1 (`set ht s o 8080`) reads or changes http.server.*, which the transport's setup sets; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::server_group_get(SERVER_GROUP, &[Rest], "step 1 (`get http`) reads or changes http.server.*, which the transport's setup sets; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::server_setup(SERVER_SETUP, &[Rest], "the setup (`http.server.enabled = 0`) reads or changes http.server.*, which the transport's setup sets; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::ssid_get(SSID, &[Rest], "step 1 (`get wlan.ssid`) reads or changes the network, which the transport's setup joins (the case chooses none); the rest transport needs the network and HTTP server its setup prepares")]
    #[case::ssid_set_then_read_back(SSID_SHORT, &[Rest, CmdStream], "")]
    #[case::ssid_read_after_a_refused_set(SSID_REFUSED, &[Rest], "step 2 (`get wlan.ssid`) reads or changes the network, which the transport's setup joins (the case chooses none); the rest transport needs the network and HTTP server its setup prepares")]
    #[case::passkey_set_in_setup(PASSKEY_SETUP, &[Rest], "")]
    #[case::network_state_is_never_the_case_s(NET_STATE_AFTER_SET, &[Rest], "step 2 (`get wl n s`) reads or changes the network, which the transport's setup joins (the case chooses none); the rest transport needs the network and HTTP server its setup prepares")]
    #[case::scan_shortcut_is_not_the_ssid(SCAN_SHORT, &[Rest, CmdStream], "")]
    #[case::get_all(GET_ALL, &[Rest], "step 1 (`get all`) reads or changes http.server.*, which the transport's setup sets; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::join_result(JOIN_RESULT, &[Rest], "step 1 (`get wl j s`) reads or changes the network, which the transport's setup joins (the case chooses none); the rest transport needs the network and HTTP server its setup prepares")]
    #[case::network_state_of_its_own_network(OWN_NETWORK_STATE, &[Rest], "")]
    #[case::a_join_expected_to_fail(JOIN_FAILS, &[Rest], "step 1 (`network_up`) looks at the join itself (a failure, its log lines or time), but the transport's setup has already joined; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::packets(PACKETS, &[Rest], "the case (`packets`) checks the lab network's packets, among which the transport's own traffic would be; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::stream_mode(STREAM_MODE, &[Rest], "the setup (`bus.mode = stream`) puts the bus in STREAM mode, where the control channel cannot prepare the transport; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::command_mode_is_fine(COMMAND_MODE, &[Rest], "")]
    #[case::radio(RADIO, &[Rest], "step 2 (`remove AP 02:00:00:00:01:01`) changes the access points the module's network runs on; the rest transport needs the network and HTTP server its setup prepares")]
    #[case::network_rules_are_not_serial_s(NDO, &[Serial], "")]
    #[case::network_down_cuts_the_terminal(NDO, &[Terminal], "not over the remote terminal: the case takes the network down or restarts it (`network_down`), and the terminal with it")]
    #[case::human_on_consoles(HUMAN, &[Serial, Terminal], "")]
    #[case::human_over_rest(HUMAN, &[Rest], "the human console format needs a console transport (rest answers in structured replies)")]
    #[case::listed_transport(ONLY_REST, &[Rest], "")]
    #[case::unlisted_transport(ONLY_REST, &[Serial, Terminal], "not for the serial transport (the case is for rest)")]
    fn a_case_applies_to_a_transport_by_what_its_steps_use(
        #[case] body: &str,
        #[case] transports: &[Transport],
        #[case] skip: &str,
    ) {
        let case = case(body);
        for &t in transports {
            let got = applies(&case, t).err().map(|e| e.to_string()).unwrap_or_default();
            let want = skip.replace("serial", t.name());
            assert_eq!(got, want, "over {t}");
        }
    }

    #[rstest]
    #[case::commands(SEND, "")]
    #[case::raw_bytes(RAW, "")]
    #[case::reboot_step("[[case.step]]\nreboot = true\n", "restarts the module (`reboot`)")]
    #[case::reboot_raw(
        "[[case.step]]\nraw = \"reboot\\r\\n\"\nexpect_raw = \"x\"\n",
        "restarts the module (`reboot`)"
    )]
    #[case::reboot_sent("[[case.step]]\nsend = \"reboot\"\n", "restarts the module (`reboot`)")]
    #[case::power("[[case.step]]\npower_cycle = true\n", "restarts the module (`power_cycle`)")]
    #[case::network_down(
        "[[case.step]]\nsend = \"ndo\"\n",
        "takes the network down or restarts it (`ndo`)"
    )]
    #[case::polled_restart(
        "[[case.step]]\nwait = { send = \"network_restart\", body = \"x\" }\ntimeout_ms = 100\n",
        "takes the network down"
    )]
    #[case::fault(
        "requires = [\"lab\"]\n[[case.step]]\nfault = { kind = \"dhcp_silent\" }\n",
        "changes the radio"
    )]
    #[case::own_settings(
        "[[case.step]]\nsend = \"set remote_terminal.port 2001\"\n",
        "changes the remote terminal's settings"
    )]
    #[case::own_shortcut(
        "[[case.step]]\nsend = \"set re p 2001\"\n",
        "changes the remote terminal's settings"
    )]
    #[case::watches_up(
        "[[case.step]]\nsend = \"network_up\"\nlogs = [\"x\"]\n",
        "checks how the network comes up"
    )]
    #[case::failing_up(
        "[[case.step]]\nsend = \"network_up\"\ncode = 1\n",
        "checks how the network comes up"
    )]
    #[case::capture(
        "requires = [\"lab\"]\npackets = [{ none = { dhcp = \"discover\" } }]\n[[case.step]]\nsend = \"version\"\n",
        "packet capture"
    )]
    #[case::auto_start(
        "[case.setup]\nset = { \"udp.client.auto_start\" = \"1\" }\n[[case.step]]\nsend = \"version\"\n",
        "sets `udp.client.auto_start`"
    )]
    #[case::join_settings(
        "[case.setup]\nset = { \"wlan.scan.channel_mask\" = \"1\" }\n[[case.step]]\nsend = \"version\"\n",
        "sets `wlan.scan.channel_mask`"
    )]
    #[case::plain_up("[[case.step]]\nsend = \"network_up\"\nbody = \"Success\"\n", "")]
    #[case::stream_mode(
        "[case.setup]\nset = { \"bus.mode\" = \"stream\" }\n[[case.step]]\nsend = \"version\"\n",
        "STREAM mode"
    )]
    #[case::reads_status(
        "[[case.step]]\nget = { \"wlan.network.status\" = \"0\" }\n",
        "reads `wlan.network.status`"
    )]
    #[case::reads_all("[[case.step]]\nsend = \"get all\"\n", "reads `all`")]
    #[case::reads_a_setting(
        "[[case.step]]\nsend = \"set wlan.join.retries 2\"\n[[case.step]]\nget = { \"wlan.join.retries\" = \"2\" }\n",
        ""
    )]
    #[case::reads_a_shortcut("[[case.step]]\nsend = \"get wl n i\"\n", "reads `wl n i`")]
    #[case::reads_ssid("[[case.step]]\nget = { \"wlan.ssid\" = \"\" }\n", "")]
    fn some_cases_cannot_run_over_the_remote_terminal(#[case] body: &str, #[case] skip: &str) {
        let got = applies(&case(body), Terminal).err().map(|e| e.to_string()).unwrap_or_default();
        if skip.is_empty() {
            assert_eq!(got, "");
        } else {
            assert!(got.starts_with("not over the remote terminal: "), "{got}");
            assert!(got.contains(skip), "{got}");
        }
        assert_eq!(applies(&case(body), Serial), Ok(()), "serial takes them all");
    }

    #[test]
    fn the_terminal_needs_a_lab_rig() {
        let without = rig("name = \"r\"\n[dut]\nkind = \"sim\"\n");
        let e = rig_carries(Terminal, &without).expect_err("no lab");
        assert_eq!(
            e.to_string(),
            "the terminal transport reaches the module over the lab network; this rig has no [lab]"
        );
        assert_eq!(rig_carries(Serial, &without), Ok(()));
        let with = rig("name = \"r\"\n[dut]\nkind = \"sim\"\n[lab]\n");
        assert_eq!(rig_carries(Terminal, &with), Ok(()));
    }

    fn rig(text: &str) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rig.toml");
        std::fs::write(&path, text).expect("write");
        crate::rig::load(&path).expect("valid rig")
    }

    #[rstest]
    #[case::lab_on_a_lab_rig("requires = [\"lab\"]\n[[case.step]]\nsend = \"version\"\n", true, "")]
    #[case::lab_without(
        "requires = [\"lab\"]\n[[case.step]]\nsend = \"version\"\n",
        false,
        "needs the lab network; this rig has no [lab]"
    )]
    #[case::power_on_a_sim("[[case.step]]\npower_cycle = true\n", false, "")]
    fn a_case_applies_to_a_rig_by_what_it_has(
        #[case] body: &str,
        #[case] lab: bool,
        #[case] skip: &str,
    ) {
        let lab = if lab { "[lab]\n" } else { "" };
        let rig = rig(&format!("name = \"r\"\n[dut]\nkind = \"sim\"\n{lab}"));
        let got = rig_allows(&case(body), &rig).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(got, skip);
    }

    #[test]
    fn power_cycles_need_power_control_on_hardware() {
        let rig = rig("name = \"r\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"/dev/null\"\n");
        let e =
            rig_allows(&case("[[case.step]]\npower_cycle = true\n"), &rig).expect_err("no power");
        assert_eq!(e, NotApplicable::NoPower);
    }

    #[rstest]
    #[case::store_fail(
        "fault = { kind = \"store_fail\", store = \"nvm\", count = 1 }",
        "store_fail"
    )]
    #[case::tls_heap("fault = { kind = \"tls_heap\", bytes = 1000 }", "tls_heap")]
    fn faults_inside_the_module_need_the_simulated_module(
        #[case] step: &str,
        #[case] kind: &'static str,
    ) {
        let body = format!("requires = [\"lab\"]\n[[case.step]]\n{step}\n");
        let on_sim = rig("name = \"r\"\n[dut]\nkind = \"sim\"\n[lab]\n");
        assert_eq!(rig_allows(&case(&body), &on_sim), Ok(()));
        let board = rig(
            "name = \"r\"\n[dut]\nkind = \"qemu\"\nmachine = \"mps2-an386\"\nimage = \"x\"\n[lab]\n",
        );
        assert_eq!(rig_allows(&case(&body), &board), Err(NotApplicable::InsideFault(kind)));
    }

    const LAB_RIG: &str = "name = \"r\"\n[dut]\nkind = \"sim\"\n[lab]\n[[lab.ap]]\nssid = \"gecko-lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"open\"\n";

    #[rstest]
    #[case::lab_network(LAB_RIG, SEND, "")]
    #[case::the_case_s_lab_network(LAB_RIG, OWN_NETWORK_STATE, "")]
    #[case::no_lab(
        "name = \"r\"\n[dut]\nkind = \"sim\"\n",
        SEND,
        "the rest transport needs the module on a network; this rig has no [lab] with an access point it can join"
    )]
    #[case::a_passkey_of_its_own_needs_an_open_network(
        "name = \"r\"\n[dut]\nkind = \"sim\"\n[lab]\n[[lab.ap]]\nssid = \"gecko-lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
        PASSKEY_SETUP,
        "the rest transport needs the module on a network; this rig has no [lab] with an access point it can join"
    )]
    #[case::a_foreign_network(
        LAB_RIG,
        "[case.setup]\nset = { \"wlan.ssid\" = \"hello\" }\n[[case.step]]\nsend = \"version\"\n",
        "the setup joins `hello`, not a network of this rig's lab, so the rest transport could not reach the module"
    )]
    fn web_transports_need_a_lab_network(
        #[case] rig_text: &str,
        #[case] body: &str,
        #[case] skip: &str,
    ) {
        let (rig, case) = (rig(rig_text), case(body));
        let planned = plan(&[&case], &[Serial, Rest], &rig);
        assert!(planned[0].skip.is_none(), "serial needs no network");
        let got = planned[1].skip.as_ref().map(ToString::to_string).unwrap_or_default();
        assert_eq!(got, skip);
    }

    #[test]
    fn plans_transport_by_transport_with_reasons() {
        let (plain, raw) = (case(SEND), case(RAW));
        let rig = rig(LAB_RIG);
        let planned = plan(&[&plain, &raw], &[Serial, Rest], &rig);
        let got: Vec<(Transport, bool)> =
            planned.iter().map(|p| (p.transport, p.skip.is_none())).collect();
        assert_eq!(got, [(Serial, true), (Serial, true), (Rest, true), (Rest, false)]);
        assert_eq!(planned[3].skip, Some(NotApplicable::RawBytes { transport: Rest }));
    }
}

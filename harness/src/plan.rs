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
    /// The emulated board keeps its settings and files in RAM for now: a power cycle would
    /// lose what a module keeps, so the case could only fail.
    #[error(
        "power-cycles the module; this board keeps its settings in RAM, so they cannot survive it"
    )]
    VolatileStore,
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
            Dut::Sim { .. } => {}
            Dut::Qemu { .. } => return Err(NotApplicable::VolatileStore),
            Dut::Hardware { .. } if rig.power.is_some() => {}
            Dut::Hardware { .. } => return Err(NotApplicable::NoPower),
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
                    .and_then(|()| rig_carries(transport, rig))
                    .and_then(|()| rig_allows(case, rig))
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
    const WAIT_LOG: &str = "[[case.step]]\nwait = { log = \"Joined\" }\ntimeout_ms = 100\n";
    const HUMAN: &str = "format = \"human\"\n[[case.step]]\nsend = \"version\"\n";
    const ONLY_REST: &str = "transports = [\"rest\"]\n[[case.step]]\nsend = \"version\"\n";

    use Transport::{CmdStream, Rest, Serial, Terminal};

    #[rstest]
    #[case::plain_everywhere(SEND, &[Serial, Rest, CmdStream, Terminal], "")]
    #[case::raw_on_serial(RAW, &[Serial], "")]
    #[case::raw_on_terminal(RAW, &[Terminal], "")]
    #[case::raw_over_rest(RAW, &[Rest], "raw bytes need a transport with raw access (rest has none)")]
    #[case::raw_over_the_stream(RAW, &[CmdStream], "raw bytes need a transport with raw access (websocket has none)")]
    #[case::logs_inline_or_polled(LOGS, &[Serial, Terminal, Rest], "")]
    #[case::logs_over_the_stream(LOGS, &[CmdStream], "expected log lines need a transport that delivers logs (websocket delivers none)")]
    #[case::awaited_logs_over_the_stream(WAIT_LOG, &[CmdStream], "expected log lines need a transport that delivers logs (websocket delivers none)")]
    #[case::awaited_logs_on_consoles(WAIT_LOG, &[Serial, Terminal, Rest], "")]
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

    #[test]
    fn plans_transport_by_transport_with_reasons() {
        let (plain, raw) = (case(SEND), case(RAW));
        let rig = rig("name = \"r\"\n[dut]\nkind = \"sim\"\n[lab]\n");
        let planned = plan(&[&plain, &raw], &[Serial, Rest], &rig);
        let got: Vec<(Transport, bool)> =
            planned.iter().map(|p| (p.transport, p.skip.is_none())).collect();
        assert_eq!(got, [(Serial, true), (Serial, true), (Rest, true), (Rest, false)]);
        assert_eq!(planned[3].skip, Some(NotApplicable::RawBytes { transport: Rest }));
    }
}

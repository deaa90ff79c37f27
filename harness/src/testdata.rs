//! A small synthetic run for the report tests: two sections, every verdict, an assumed basis,
//! a stale deviation, hostile module output, and clauses of every status.

use crate::model::*;

fn entry(t_ms: f64, dir: Direction, text: &str) -> TranscriptEntry {
    TranscriptEntry { t_ms, dir, text: text.into() }
}

fn step(index: usize, action: &str, outcome: StepOutcome, message: Option<&str>) -> StepResult {
    StepResult {
        index,
        action: action.into(),
        outcome,
        message: message.map(Into::into),
        duration_ms: 4,
    }
}

fn event(t_ms: f64, lane: Lane, text: &str) -> TimelineEvent {
    TimelineEvent { t_ms, lane, text: text.into() }
}

fn case(id: &str, section: &str, title: &str, clauses: &[&str], verdict: Verdict) -> CaseResult {
    CaseResult {
        id: id.into(),
        section: section.into(),
        title: title.into(),
        clauses: clauses.iter().map(|c| (*c).into()).collect(),
        basis: Basis::Documented,
        note: None,
        tags: vec![],
        transport: crate::model::Transport::Serial,
        verdict,
        reason: None,
        deviation: None,
        stale_deviation: false,
        attempts: 1,
        start_ms: 0,
        duration_ms: 0,
        steps: vec![],
        transcript: vec![],
        timeline: vec![],
        capture: None,
        place: None,
    }
}

fn clause(
    id: &str,
    section: &str,
    lines: [u32; 2],
    text: &str,
    cases: &[&CaseResult],
) -> ClauseResult {
    ClauseResult {
        id: id.into(),
        section: section.into(),
        source: if id.starts_with("serial.") { "protocol-facts" } else { "chapter" }.into(),
        lines,
        text: text.into(),
        cases: cases.iter().map(|c| c.id.clone()).collect(),
        status: ClauseStatus::roll_up(cases.iter().map(|c| c.verdict)),
        coverage: Some(Coverage::of(cases.iter().map(|c| Some(c.verdict)))),
    }
}

/// The sample run.
pub(crate) fn sample_run() -> RunResult {
    use Direction::*;

    let mut min = case(
        "passkeys/ascii/min-length",
        "passkeys",
        "A printable passkey of 8 characters is accepted",
        &["passkeys.ascii.length", "serial.line.crlf"],
        Verdict::Pass,
    );
    min.tags = vec!["wlan".into()];
    min.start_ms = 10;
    min.duration_ms = 120;
    min.steps = vec![
        step(0, "setup: factory_reset", StepOutcome::Ok, None),
        step(1, "send \"set wlan.passkey 12345678\"", StepOutcome::Ok, None),
        step(2, "get wlan.passkey", StepOutcome::Ok, None),
    ];
    min.transcript = vec![
        entry(0.0, Tx, "set wlan.passkey 12345678"),
        entry(3.25, Rx, "R000008\\r\\nSet OK\\r\\n"),
        entry(5.0, Tx, "get wlan.passkey"),
        entry(7.75, Rx, "R000010\\r\\n12345678\\r\\n"),
    ];

    min.capture = Some("captures/passkeys__ascii__min-length.pcap".into());
    min.timeline = vec![
        event(
            -1.5,
            Lane::Packet,
            "ARP request who-has 10.77.0.1 tell 10.77.0.77 (02:77:00:00:00:32)",
        ),
        event(0.0, Lane::Harness, "set wlan.passkey 12345678"),
        event(3.25, Lane::Module, "R000008 Set OK"),
        event(4.0, Lane::Radio, "scan: 3 networks"),
        event(5.0, Lane::Harness, "get wlan.passkey"),
        event(7.75, Lane::Module, "R000010 12345678 <b>"),
        event(60.0, Lane::Text, "reboot wait"),
    ];
    // A burst of packets: drawn as one cluster.
    for i in 0..12 {
        let t = 80.0 + f64::from(i) * 0.25;
        min.timeline.push(event(
            t,
            Lane::Packet,
            &format!("DNS query A lab-host.lab id 0x{i:04x}"),
        ));
    }
    min.timeline.push(event(118.0, Lane::Packet, "DHCP ACK 10.77.0.1:67 > 10.77.0.77:68"));

    let mut long = case(
        "passkeys/ascii/too-long",
        "passkeys",
        "A printable passkey of 64 characters is rejected",
        &["passkeys.ascii.length", "passkeys.reject"],
        Verdict::Fail,
    );
    long.start_ms = 130;
    long.duration_ms = 95;
    long.reason = Some("step 1: body was \"Set OK\", expected \"Command failed\"".into());
    long.steps = vec![
        step(0, "setup: factory_reset", StepOutcome::Ok, None),
        step(
            1,
            "send \"set wlan.passkey <64 x a>\"",
            StepOutcome::Failed,
            Some("body was \"Set OK\"\nexpected \"Command failed\""),
        ),
        step(2, "get wlan.passkey", StepOutcome::NotRun, None),
    ];
    long.transcript = vec![
        entry(0.0, Note, "factory reset | wait for [Ready]"),
        entry(1.5, Tx, "set wlan.passkey aaaa"),
        entry(4.0, Rx, "R000008\\r\\n<script>alert('pwn')</script>\\r\\n"),
        entry(4.5, Rx, "\\x1b[31mred\\x1b[0m & `ticks` | pipe"),
        // A raw escape byte that slipped through: never shown raw.
        entry(5.0, Rx, "raw \x1b[2J\x07 bell </pre></details>"),
    ];

    let mut hex = case(
        "passkeys/hex/uppercase",
        "passkeys",
        "An uppercase 64-digit hex passkey is taken as a PSK",
        &["passkeys.hex"],
        Verdict::KnownDeviation,
    );
    hex.basis = Basis::Assumed;
    hex.note = Some(
        "The chapter does not say whether hex digits may be upper case; we assume they may.".into(),
    );
    hex.start_ms = 230;
    hex.duration_ms = 80;
    hex.reason = Some("step 2: get wlan.passkey was \"ABCD\", expected \"abcd\"".into());
    hex.deviation = Some("Firmware 4.2 keeps the case of hex passkeys (BUG-123)".into());
    hex.steps = vec![
        step(1, "send \"set wlan.passkey ABCD\"", StepOutcome::Ok, None),
        step(2, "get wlan.passkey", StepOutcome::Failed, Some("was \"ABCD\"")),
    ];

    let mut max = case(
        "passkeys/ascii/max-length",
        "passkeys",
        "A printable passkey of 63 characters is accepted",
        &["passkeys.ascii.length"],
        Verdict::Pass,
    );
    max.start_ms = 320;
    max.duration_ms = 70;
    max.deviation = Some("Older firmware rejected 63 characters".into());
    max.stale_deviation = true;

    let mut echo = case(
        "serial/echo/default",
        "serial",
        "The command line is echoed by default",
        &["serial.echo"],
        Verdict::Error,
    );
    echo.start_ms = 400;
    echo.duration_ms = 1500;
    echo.attempts = 2;
    echo.reason = Some("port lost: /dev/ttyUSB0 disappeared".into());
    echo.steps = vec![step(1, "raw \"get wl s\\r\\n\"", StepOutcome::Error, Some("port lost"))];
    echo.transcript = vec![
        entry(0.0, Note, "attempt 2 after port loss"),
        entry(0.5, Tx, "get wl s\\r\\n"),
        entry(1000.0, Note, "read failed: No such device (os error 19)"),
    ];

    let mut prompt = case(
        "serial/prompt/after-response",
        "serial",
        "The prompt follows every response",
        &["serial.prompt"],
        Verdict::Skipped,
    );
    prompt.start_ms = 1900;
    prompt.reason = Some("run interrupted".into());

    let clauses = vec![
        clause(
            "passkeys.ascii.length",
            "Passkeys",
            [978, 982],
            "ASCII passwords must be 8-63 characters long.",
            &[&min, &long, &max],
        ),
        clause(
            "passkeys.reject",
            "Passkeys",
            [983, 983],
            "A passkey of the wrong length is rejected with <Command failed> & not stored.",
            &[&long],
        ),
        clause(
            "passkeys.hex",
            "Passkeys",
            [984, 986],
            "A 64-character hex string is taken as the PSK.",
            &[&hex],
        ),
        clause("passkeys.wep", "Passkeys", [990, 991], "WEP keys are not supported.", &[]),
        clause(
            "serial.echo",
            "Serial framing, prompt, echo",
            [43, 43],
            "system.cmd.echo (sy c e), default on, echoes the command line before the response.",
            &[&echo],
        ),
        clause(
            "serial.prompt",
            "Serial framing, prompt, echo",
            [42, 42],
            "The prompt '> ' is printed after each response when system.cmd.prompt_enabled is 1.",
            &[&prompt],
        ),
        clause(
            "serial.line.crlf",
            "Serial framing, prompt, echo",
            [40, 40],
            "The host terminates a command line with CR LF.",
            &[&min],
        ),
    ];

    let cases = vec![min, long, hex, max, echo, prompt];
    RunResult {
        schema: SCHEMA.into(),
        run_id: "20250101-120000-sim-a".into(),
        started_at: "2025-01-01T12:00:00Z".into(),
        finished_at: "2025-01-01T12:00:02Z".into(),
        duration_ms: 2150,
        interrupted: true,
        rig: RigInfo {
            name: "sim-a".into(),
            path: "rigs/sim-a.toml".into(),
            kind: "sim".into(),
            port: "/dev/pts/7".into(),
        },
        module_version: Some("Gecko OS 4.2.1 <b>sim</b>".into()),
        module_mac: None,
        places: Vec::new(),
        selection: "all".into(),
        transports: vec![crate::model::Transport::Serial],
        totals: Totals::count(&cases),
        cases,
        clauses,
    }
}

/// The sample run over serial and REST: after the serial results, one REST result per case,
/// two of which differ from serial (a pass that fails, a pass that fails as a stale deviation's
/// case), the raw-byte case skipped by plan.
pub(crate) fn sample_multi_transport_run() -> RunResult {
    let mut run = sample_run();
    run.transports = vec![Transport::Serial, Transport::Rest];
    let mut rest: Vec<CaseResult> = run.cases.clone();
    for case in &mut rest {
        case.transport = Transport::Rest;
        case.start_ms += 2000;
        case.transcript.clear();
        case.timeline.clear();
        case.capture = None;
        match case.id.as_str() {
            "passkeys/ascii/min-length" => {
                case.verdict = Verdict::Fail;
                case.reason = Some(
                    "step 1 (send \"set wlan.passkey 12345678\"): malformed reply: HTTP status 500"
                        .into(),
                );
            }
            "passkeys/ascii/max-length" => {
                case.verdict = Verdict::Fail;
                case.stale_deviation = false;
                case.reason = Some("step 1: expected body `Set OK`, got `Command failed`".into());
            }
            "serial/echo/default" => {
                case.verdict = Verdict::Skipped;
                case.attempts = 1;
                case.reason =
                    Some("raw bytes need a transport with raw access (rest has none)".into());
            }
            _ => {}
        }
    }
    run.cases.extend(rest);
    run.totals = Totals::count(&run.cases);
    run
}

#[test]
fn sample_has_every_verdict_and_status() {
    let run = sample_run();
    for v in
        [Verdict::Pass, Verdict::Fail, Verdict::Error, Verdict::Skipped, Verdict::KnownDeviation]
    {
        assert!(run.cases.iter().any(|c| c.verdict == v), "{v:?}");
    }
    for s in [
        ClauseStatus::Uncovered,
        ClauseStatus::NotRun,
        ClauseStatus::Pass,
        ClauseStatus::KnownDeviation,
        ClauseStatus::Error,
        ClauseStatus::Fail,
    ] {
        assert!(run.clauses.iter().any(|c| c.status == s), "{s:?}");
    }
    assert_eq!(run.totals.stale_deviations, 1);
}

use super::*;
use rstest::rstest;

const INVENTORY: &str = r#"
[[clause]]
id = "a.one"
section = "A"
source = "chapter"
kind = "behaviour"
lines = [1, 2]
text = "one"
"#;

fn inventory() -> Inventory {
    let mut inv = Inventory::default();
    inv.add_file(&Source { path: "clauses.toml".into(), text: INVENTORY.to_string() })
        .expect("valid inventory");
    inv
}

fn load(text: &str) -> Result<Specs, SpecError> {
    let mut specs = Specs { inventory: inventory(), cases: vec![] };
    load_file(&mut specs, &Source { path: "specs/x.toml".into(), text: text.to_string() })?;
    Ok(specs)
}

const GOOD: &str = r#"section = "x"
title = "X"

[[case]]
id = "x/one"
title = "one"
clauses = ["a.one"]
basis = "documented"

[case.setup]
set = { "wlan.ssid" = "lab", "system.cmd.echo" = true }

[[case.step]]
send = "get wlan.ssid"
body = "lab"

[[case.step]]
raw = "ver\r\n"
expect_raw_regex = "^R0"

[[case.step]]
get = { "wlan.ssid" = "lab" }
"#;

#[test]
fn loads_a_good_file() {
    let specs = load(GOOD).expect("loads");
    let case = &specs.cases[0];
    assert_eq!(case.id, "x/one");
    assert_eq!(case.origin.line, 4);
    assert!(case.setup.factory_reset);
    assert_eq!(
        case.setup.set,
        vec![("wlan.ssid".into(), "lab".into()), ("system.cmd.echo".into(), "1".into())]
    );
    assert_eq!(case.steps.len(), 3);
    assert!(matches!(&case.steps[1], Step::Raw { bytes, .. } if bytes == b"ver\r\n"));
}

#[rstest]
#[case::unknown_case_key(GOOD.replace("basis = \"documented\"", "basis = \"documented\"\nbogus = 1"), 9, Some("bogus"), "unknown field")]
#[case::unknown_step_key(GOOD.replace("body = \"lab\"", "bdy = \"lab\""), 15, Some("bdy"), "unknown field")]
#[case::unknown_clause(GOOD.replace("clauses = [\"a.one\"]", "clauses = [\"a.two\"]"), 7, Some("clauses"), "not in the inventory")]
#[case::assumed_without_note(GOOD.replace("\"documented\"", "\"assumed\""), 4, Some("note"), "assumed")]
#[case::two_actions(GOOD.replace("body = \"lab\"", "reboot = true"), 13, Some("reboot"), "more than one action")]
#[case::power_cycle_false(GOOD.replace("send = \"get wlan.ssid\"\nbody = \"lab\"", "power_cycle = false"), 13, Some("power_cycle"), "only `true`")]
#[case::foreign_key(GOOD.replace("expect_raw_regex = \"^R0\"", "body = \"x\""), 17, Some("body"), "does not go with a `raw` step")]
#[case::bad_regex(GOOD.replace("\"^R0\"", "\"(\""), 19, Some("expect_raw_regex"), "invalid regex")]
#[case::bad_id(GOOD.replace("id = \"x/one\"", "id = \"y/one\""), 5, Some("id"), "must start with `x/`")]
#[case::bad_escape(GOOD.replace(r#"raw = "ver\r\n""#, r#"raw = "ver\\q""#), 17, Some("raw"), "unknown escape")]
#[case::bad_basis(GOOD.replace("\"documented\"", "\"maybe\""), 8, Some("basis"), "unknown variant")]
#[case::toml_syntax(GOOD.replace("title = \"one\"", "title = one\""), 6, Some("title"), "")]
fn reports_file_line_and_key(
    #[case] text: String,
    #[case] line: usize,
    #[case] key: Option<&str>,
    #[case] fragment: &str,
) {
    let err = load(&text).expect_err("must be refused");
    assert_eq!(err.file, PathBuf::from("specs/x.toml"));
    assert_eq!((err.line, err.key.as_deref()), (line, key), "{err}");
    assert!(err.message.contains(fragment), "{err}");
    assert!(err.to_string().starts_with(&format!("specs/x.toml:{line}")), "{err}");
}

#[test]
fn refuses_duplicate_case_ids() {
    let twice = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[case]]").expect("has a case")..]);
    let err = load(&twice).expect_err("duplicate");
    assert!(
        err.message.contains("duplicate case id `x/one` (first defined at specs/x.toml:4)"),
        "{err}"
    );
    assert_eq!(err.line, 24);
}

#[test]
fn refuses_duplicate_clauses() {
    let mut inv = inventory();
    let err = inv
        .add_file(&Source { path: "c2.toml".into(), text: INVENTORY.to_string() })
        .expect_err("duplicate");
    assert_eq!(err.line, 3);
    assert!(err.message.contains("first defined at clauses.toml:2"), "{err}");
}

#[rstest]
#[case::unknown_kind(INVENTORY.replace("\"behaviour\"", "\"vibe\""), 6, Some("kind"), "unknown variant `vibe`, expected one of `feature`, `behaviour`, `variable`, `command`")]
#[case::missing_kind(INVENTORY.replace("kind = \"behaviour\"\n", ""), 2, None, "missing field `kind`")]
fn inventory_errors_name_file_line_and_key(
    #[case] text: String,
    #[case] line: usize,
    #[case] key: Option<&str>,
    #[case] fragment: &str,
) {
    let err = Inventory::default()
        .add_file(&Source { path: "clauses.toml".into(), text })
        .expect_err("must be refused");
    assert_eq!((err.line, err.key.as_deref()), (line, key), "{err}");
    assert!(err.message.contains(fragment), "{err}");
}

#[test]
fn clause_kind_is_loaded() {
    assert_eq!(inventory().get("a.one").map(|c| c.kind), Some(ClauseKind::Behaviour));
}

#[rstest]
#[case(r"a\r\n", b"a\r\n".as_slice())]
#[case(r"\x00\xff\t", b"\x00\xff\t".as_slice())]
#[case(r#"q\"\\"#, b"q\"\\".as_slice())]
fn unescapes_raw(#[case] text: &str, #[case] want: &[u8]) {
    assert_eq!(unescape_raw(text).as_deref(), Ok(want));
}

#[test]
fn selects_by_prefix_tag_and_clause() {
    let specs = load(GOOD).expect("loads");
    let case = &specs.cases[0];
    let sel = |p: &[&str], t: &[&str], c: &[&str]| Selection {
        prefixes: p.iter().map(|s| s.to_string()).collect(),
        tags: t.iter().map(|s| s.to_string()).collect(),
        clauses: c.iter().map(|s| s.to_string()).collect(),
    };
    assert!(sel(&[], &[], &[]).matches(case));
    assert!(sel(&["x"], &[], &[]).matches(case));
    assert!(sel(&["x/one"], &[], &[]).matches(case));
    assert!(!sel(&["y"], &[], &[]).matches(case));
    assert!(!sel(&[], &["wlan"], &[]).matches(case));
    assert!(sel(&[], &[], &["a."]).matches(case));
    assert!(!sel(&[], &[], &["b"]).matches(case));
}

const LAB: &str = r#"section = "x"
title = "X"

[[case]]
id = "x/lab"
title = "lab"
clauses = ["a.one"]
basis = "documented"
requires = ["lab"]

[[case.step]]
add_ap = { ssid = "other", bssid = "02:00:00:00:02:01", channel = 11, security = "open" }

[[case.step]]
fault = { kind = "reject_association", count = 2 }
expect_fired = 2

[[case.step]]
remove_ap = "02:00:00:00:02:01"

[[case.step]]
move_ap = { bssid = "02:00:00:00:01:01", channel = 11 }

[[case.packets]]
sequence = [{ dhcp = "discover" }, { dhcp = "request" }]
"#;

#[test]
fn loads_lab_steps() {
    let specs = load(LAB).expect("loads");
    let case = &specs.cases[0];
    assert_eq!(case.requires, vec!["lab".to_string()]);
    assert!(matches!(&case.steps[0], Step::AddAp(ap) if ap.channel == 11 && ap.security == "open"));
    assert!(matches!(
        &case.steps[1],
        Step::Fault {
            fault: crate::ap::Fault::RejectAssociation { count: 2 },
            expect_fired: Some(2)
        }
    ));
    assert!(matches!(&case.steps[2], Step::RemoveAp(b) if *b == [2, 0, 0, 0, 2, 1]));
    assert!(matches!(&case.steps[3], Step::MoveAp { bssid: [2, 0, 0, 0, 1, 1], channel: 11 }));
    assert_eq!(case.steps[3].describe(), "move AP 02:00:00:00:01:01 to channel 11");
    assert_eq!(case.packets.len(), 1);
    assert!(
        matches!(&case.packets[0], crate::capture::expect::PacketExpect::Sequence(v) if v.len() == 2)
    );
}

#[rstest]
#[case::no_requires(LAB.replace("requires = [\"lab\"]\n", ""), Some("requires"), "must say")]
#[case::unknown_requirement(LAB.replace("[\"lab\"]", "[\"radio\"]"), Some("requires"), "unknown requirement")]
#[case::bad_fault(LAB.replace("reject_association", "explode"), Some("fault"), "unknown variant")]
#[case::fault_field(LAB.replace("count = 2 }", "count = 2, ms = 3 }"), Some("ms"), "unknown field")]
#[case::bad_channel(LAB.replace("channel = 11", "channel = 99"), Some("add_ap.channel"), "not 1-14")]
#[case::move_bad_channel(LAB.replace("channel = 11 }\n", "channel = 15 }\n"), Some("move_ap.channel"), "not 1-14")]
#[case::move_bad_bssid(LAB.replace("bssid = \"02:00:00:00:01:01\"", "bssid = \"02:00\""), Some("move_ap.bssid"), "not a MAC")]
#[case::move_no_channel(LAB.replace(", channel = 11 }\n", " }\n"), Some("move_ap"), "channel")]
#[case::move_extra(LAB.replace("channel = 11 }\n", "channel = 11, ssid = \"x\" }\n"), Some("ssid"), "unknown field `ssid`")]
#[case::bad_packet(LAB.replace("dhcp = \"discover\"", "dhcp = \"hello\""), Some("packets"), "")]
#[case::bad_tls_packet(LAB.replace("dhcp = \"discover\"", "tls = \"client_hello\", suite = \"0xC02F\""), Some("packets"), "suite applies to tls = \"server_hello\" only")]
#[case::tls_hostile_alert_without_description(LAB.replace("requires = [\"lab\"]\n", "requires = [\"lab\"]\npeers = [{ kind = \"tls_hostile\", port = 4433, act = \"alert\" }]\n"), Some("peers"), "tls_hostile: `act = \"alert\"` needs `description`")]
#[case::tls_hostile_unknown_act(LAB.replace("requires = [\"lab\"]\n", "requires = [\"lab\"]\npeers = [{ kind = \"tls_hostile\", port = 4433, act = \"dance\" }]\n"), Some("peers"), "unknown variant `dance`")]
#[case::expect_fired_elsewhere(LAB.replace("remove_ap = \"02:00:00:00:02:01\"", "reboot = true\nexpect_fired = 1"), Some("expect_fired"), "does not go with")]
fn refuses_bad_lab_steps(#[case] text: String, #[case] key: Option<&str>, #[case] fragment: &str) {
    let err = load(&text).expect_err("must be refused");
    assert_eq!(err.key.as_deref(), key, "{err}");
    assert!(err.message.contains(fragment), "{err}");
    assert!(err.line > 0, "{err}");
}

const WAITS: &str = r#"section = "x"
title = "X"

[[case]]
id = "x/waits"
title = "waits"
clauses = ["a.one"]
basis = "documented"
requires = ["lab"]
peers = [{ kind = "tcp_echo", port = 7000 }]

[[case.step]]
wait = { send = "get wlan.network.status", body = "2", logs = ['^\[Associated\]$'] }
timeout_ms = 5000

[[case.step]]
wait = { stream = { type = "TCPC", info = '^10\.77\.0\.5:7000 ', poll = "data" } }
timeout_ms = 3000
poll_ms = 50
after_ms = [100, 2000]

[[case.step]]
wait = { peer = 0, connections = 1 }
timeout_ms = 3000

[[case.step]]
wait = { client = { connect = 3000 } }
timeout_ms = 3000

[[case.step]]
wait = { packets = { count = { of = { dns_query = "x.lab" }, min = 3 } } }
timeout_ms = 3000

[[case.step]]
wait = { log = '^\[Ready\]$' }
timeout_ms = 3000

[[case.step]]
hold = { send = "get wlan.network.status", body = "0" }
hold_ms = 1500
prescribed_by = "a.one"

[[case.step]]
idle_ms = 3200
prescribed_by = "a.one"
"#;

#[test]
fn loads_waits_holds_and_idles() {
    use wait::{Condition, PollState};
    let specs = load(WAITS).expect("loads");
    let steps = &specs.cases[0].steps;
    assert!(matches!(
        &steps[0],
        Step::Wait { condition: Condition::Reply { line, code: 0, body: Some(BodyExpect::Exact(b)), logs }, timeout, poll, after: None }
            if line == "get wlan.network.status" && b == "2" && logs.len() == 1
                && *timeout == Duration::from_secs(5) && *poll == DEFAULT_POLL
    ));
    match &steps[1] {
        Step::Wait { condition: Condition::Stream(s), poll, after, .. } => {
            assert_eq!(s.kind.as_deref(), Some("TCPC"));
            assert_eq!(s.poll, Some(PollState::Data));
            assert!(!s.gone);
            assert_eq!(*poll, Duration::from_millis(50));
            assert_eq!(*after, Some((Duration::from_millis(100), Duration::from_millis(2000))));
            assert_eq!(s.matches_row("# 3 TCPC 10.77.0.5:7000 (40123)"), Some(3));
            assert_eq!(s.matches_row("# 3 UDPC 10.77.0.5:7000 (40123)"), None);
            assert_eq!(s.matches_row("# 3 TCPC 10.77.0.6:7000 (40123)"), None);
            assert_eq!(s.matches_row("! # Type Info"), None);
        }
        other => panic!("not a stream wait: {other:?}"),
    }
    assert!(matches!(
        &steps[2],
        Step::Wait { condition: Condition::Peer { index: 0, check }, .. } if check.connections == Some(1)
    ));
    assert!(matches!(
        &steps[3],
        Step::Wait { condition: Condition::Client(crate::peers::ClientAction::Connect(3000)), .. }
    ));
    assert!(matches!(&steps[4], Step::Wait { condition: Condition::Packets(_), .. }));
    assert!(matches!(
        &steps[5],
        Step::Wait { condition: Condition::Reply { line, body: None, logs, .. }, .. }
            if line == wait::LOG_POLL_COMMAND && logs.len() == 1
    ));
    assert!(matches!(
        &steps[6],
        Step::Hold { duration, prescribed_by, .. }
            if *duration == Duration::from_millis(1500) && prescribed_by == "a.one"
    ));
    assert!(matches!(
        &steps[7],
        Step::Idle { duration, prescribed_by }
            if *duration == Duration::from_millis(3200) && prescribed_by == "a.one"
    ));
    assert_eq!(
        steps[1].describe(),
        "wait up to 3000 ms for a TCPC info /^10\\.77\\.0\\.5:7000 / stream with `stream_poll` Data"
    );
    assert_eq!(steps[7].describe(), "idle 3200 ms (a.one)");
}

#[rstest]
#[case::sleep_refused(GOOD.replace("get = { \"wlan.ssid\" = \"lab\" }", "sleep_ms = 100"), 21, Some("sleep_ms"), "`wait` for what it waited for")]
#[case::wait_needs_deadline(WAITS.replace("timeout_ms = 5000\n", ""), 12, Some("timeout_ms"), "needs its deadline")]
#[case::wait_bad_regex(WAITS.replace("body = \"2\", logs", "body_regex = \"(\", logs"), 13, Some("wait.body_regex"), "invalid regex")]
#[case::wait_unknown_key(WAITS.replace("body = \"0\"", "bdy = \"0\""), 39, Some("hold.bdy"), "unknown field")]
#[case::wait_two_subjects(WAITS.replace("wait = { peer = 0,", "wait = { send = \"x\", peer = 0,"), 23, Some("wait.peer"), "more than one thing")]
#[case::wait_nothing(WAITS.replace("wait = { log = '^\\[Ready\\]$' }", "wait = {}"), 35, Some("wait"), "nothing to wait for")]
#[case::wait_foreign_key(WAITS.replace("wait = { peer = 0, connections = 1 }", "wait = { peer = 0, body = \"x\" }"), 23, Some("wait.body"), "does not go with a `peer`")]
#[case::wait_bad_peer_check(WAITS.replace("connections = 1 }", "connection = 1 }"), 23, Some("wait.peer"), "a peer check needs")]
#[case::wait_missing_peer(WAITS.replace("wait = { peer = 0,", "wait = { peer = 4,"), 4, Some("check_peer"), "peer 4 does not exist")]
#[case::wait_client_receive(WAITS.replace("client = { connect = 3000 }", "client = { receive = \"x\" }"), 27, Some("wait.client"), "only `connect`")]
#[case::wait_bad_stream_type(WAITS.replace("type = \"TCPC\"", "type = \"tcp\""), 17, Some("wait.stream.type"), "not a stream type")]
#[case::wait_gone_with_poll(WAITS.replace("poll = \"data\"", "poll = \"data\", gone = true"), 17, Some("wait.stream.poll"), "no poll state")]
#[case::wait_window_past_deadline(WAITS.replace("after_ms = [100, 2000]", "after_ms = [100, 4000]"), 20, Some("after_ms"), "after the deadline")]
#[case::wait_window_backwards(WAITS.replace("after_ms = [100, 2000]", "after_ms = [2000, 100]"), 20, Some("after_ms"), "not a range")]
#[case::wait_bad_poll(WAITS.replace("poll_ms = 50", "poll_ms = 5"), 19, Some("poll_ms"), "not a poll interval")]
#[case::hold_needs_clause(WAITS.replace("hold_ms = 1500\nprescribed_by = \"a.one\"\n", "hold_ms = 1500\n"), 38, Some("prescribed_by"), "name the clause")]
#[case::hold_needs_duration(WAITS.replace("hold_ms = 1500\n", ""), 38, Some("hold_ms"), "how long")]
#[case::idle_unknown_clause(WAITS.replace("idle_ms = 3200\nprescribed_by = \"a.one\"", "idle_ms = 3200\nprescribed_by = \"a.two\""), 45, Some("prescribed_by"), "not in the inventory")]
#[case::idle_needs_clause(WAITS.replace("idle_ms = 3200\nprescribed_by = \"a.one\"", "idle_ms = 3200"), 43, Some("prescribed_by"), "name the clause")]
#[case::fixed_durations_past_the_timeout(WAITS.replace("idle_ms = 3200\n", "idle_ms = 9000\n"), 4, Some("timeout_ms"), "take 10500 ms, more than its timeout (10000 ms)")]
#[case::idle_foreign_key(WAITS.replace("idle_ms = 3200\n", "idle_ms = 3200\ntimeout_ms = 4\n"), 43, Some("timeout_ms"), "does not go with a `idle_ms`")]
fn refuses_bad_waits(
    #[case] text: String,
    #[case] line: usize,
    #[case] key: Option<&str>,
    #[case] fragment: &str,
) {
    let err = load(&text).expect_err("must be refused");
    assert_eq!((err.line, err.key.as_deref()), (line, key), "{err}");
    assert!(err.message.contains(fragment), "{err}");
}

#[test]
fn a_lab_wait_needs_the_lab() {
    let text = WAITS
        .replace("requires = [\"lab\"]\n", "")
        .replace("peers = [{ kind = \"tcp_echo\", port = 7000 }]\n", "");
    let text = text.replace(
        "wait = { peer = 0, connections = 1 }\ntimeout_ms = 3000",
        "idle_ms = 1\nprescribed_by = \"a.one\"",
    );
    let err = load(&text).expect_err("lab waits without the lab");
    assert_eq!(err.key.as_deref(), Some("requires"), "{err}");
}

const TLS: &str = r#"section = "x"
title = "X"

[[case]]
id = "x/tls"
title = "tls"
clauses = ["a.one"]
basis = "documented"
requires = ["lab"]
peers = [
  { kind = "tls_server", port = 4433, cert = "server-rsa-chained", client_ca = "ca-p256", min_version = "TLSv1.0", max_version = "TLSv1.2", ciphers = ["AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] },
  { kind = "tcp_echo", port = 7000 },
]

[case.setup]
pki_files = { "ca.pem" = "ca-rsa", "client.key" = "client-p256.key", "client.der" = "client-p256.der" }

[[case.step]]
check_peer = 0
check = { handshake = "ok", version = "TLSv1.2", suite = "MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", client_cert = true }

[[case.step]]
client = { tls_connect = { port = 443, version = "TLSv1.2", cipher = "AES256-SHA", ca = "ca-rsa", client_cert = "client-rsa" } }

[[case.step]]
client = { tls_connect = { port = 443, expect = "fail", error = "certificate has expired" } }

[[case.step]]
wait = { peer = 0, handshake = "ok", version = "TLSv1.2", client_cert = true }
timeout_ms = 3000
"#;

#[test]
fn loads_tls_vocabulary() {
    use crate::peers::{ClientAction, Expect, PeerSpec, TlsVersion};
    let specs = load(TLS).expect("loads");
    let case = &specs.cases[0];
    assert!(case.uses_pki());
    let files: Vec<(&str, String)> =
        case.setup.pki_files.iter().map(|(f, r)| (f.as_str(), r.to_string())).collect();
    assert_eq!(
        files,
        vec![
            ("ca.pem", "ca-rsa".to_string()),
            ("client.key", "client-p256.key".to_string()),
            ("client.der", "client-p256.der".to_string()),
        ]
    );
    let PeerSpec::TlsServer { cert, client_ca, min_version, ciphers, .. } = &case.peers[0] else {
        panic!("{:?}", case.peers[0])
    };
    assert_eq!(cert.name(), "server-rsa-chained");
    assert_eq!(client_ca.map(|c| c.name()), Some("ca-p256"));
    assert_eq!(*min_version, Some(TlsVersion::Tls10));
    let names: Vec<&str> = ciphers.iter().map(|c| c.openssl()).collect();
    assert_eq!(names, ["AES128-SHA", "ECDHE-RSA-AES128-GCM-SHA256"]);
    let Step::CheckPeer { check, .. } = &case.steps[0] else { panic!() };
    assert_eq!(check.suite.as_ref().map(|s| s.openssl()), Some("ECDHE-RSA-AES128-GCM-SHA256"));
    assert_eq!((check.handshake, check.client_cert), (Some(Expect::Ok), Some(true)));
    let Step::Client(ClientAction::TlsConnect(t)) = &case.steps[2] else { panic!() };
    assert_eq!((t.expect, t.error.as_deref()), (Expect::Fail, Some("certificate has expired")));
    let Some(wait::Condition::Peer { check, .. }) = case.steps[3].condition() else { panic!() };
    assert_eq!(check.version, Some(TlsVersion::Tls12));
    assert!(case.steps[3].describe().contains("handshake ok, TLSv1.2, a client certificate"));
    // A case without TLS does not touch the PKI (nor the module's clock).
    assert!(!load(GOOD).expect("loads").cases[0].uses_pki());
}

#[rstest]
#[case::unknown_file_material(TLS.replace("\"client-p256.key\"", "\"client-p384.key\""), "case `x/tls`: file `client.key`: no PKI material `client-p384.key`")]
#[case::bad_file_name(TLS.replace("\"ca.pem\"", "\"my ca.pem\""), "case `x/tls`: `my ca.pem` cannot be a file name")]
#[case::unknown_peer_cert(TLS.replace("cert = \"server-rsa-chained\"", "cert = \"server-rsa-chain\""), "case `x/tls`: no PKI material `server-rsa-chain`")]
#[case::peer_cert_form(TLS.replace("cert = \"server-rsa-chained\"", "cert = \"server-rsa.key\""), "case `x/tls`: no PKI material `server-rsa.key`")]
#[case::unknown_client_ca(TLS.replace("ca = \"ca-rsa\", client_cert", "ca = \"ca-nobody\", client_cert"), "case `x/tls`: no PKI material `ca-nobody`")]
#[case::unknown_suite(TLS.replace("\"AES128-SHA\", \"TLS_", "\"AES129-SHA\", \"TLS_"), "OpenSSL knows no cipher suite `AES129-SHA`")]
#[case::unknown_version(TLS.replace("min_version = \"TLSv1.0\"", "min_version = \"SSLv3\""), "unknown TLS version `SSLv3`")]
#[case::error_without_fail(TLS.replace("expect = \"fail\", ", ""), "`error` goes with `expect = \"fail\"`")]
#[case::tls_check_on_tcp_peer(TLS.replace("check_peer = 0", "check_peer = 1"), "case `x/tls`: peer 1 is a tcp_echo peer")]
#[case::tls_wait_on_tcp_peer(TLS.replace("wait = { peer = 0,", "wait = { peer = 1,"), "case `x/tls`: peer 1 is a tcp_echo peer")]
#[case::tls_wait_bad_suite(TLS.replace("version = \"TLSv1.2\", client_cert = true }", "suite = \"NOPE\" }"), "OpenSSL knows no cipher suite `NOPE`")]
#[case::failed_with_suite(TLS.replace("handshake = \"ok\"", "handshake = \"failed\""), "a failed handshake negotiated nothing")]
fn refuses_bad_tls_vocabulary(#[case] text: String, #[case] fragment: &str) {
    let err = load(&text).expect_err("must be refused");
    assert!(err.to_string().contains(fragment), "{err}");
    assert!(err.line > 0, "{err}");
}

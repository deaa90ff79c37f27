//! The networking commands and the Network Up Sequence (steps 1–7), driven through the
//! module's bytes, `net_event`s and `tick`s.

use super::*;
use crate::net::{AssocFailure, Bss, Ipv4Config, ScanParams, ScanType, Security};
use crate::wlan::JoinResult;
use alloc::vec;
use rstest::rstest;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

const T0: Instant = Instant::ZERO;
const LAB_BSSID: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];

use super::tests::board;

fn lab() -> Bss {
    Bss {
        ssid: "lab".to_string(),
        bssid: LAB_BSSID,
        channel: 6,
        rssi: -40,
        security: Security::Wpa2Aes,
    }
}

fn dhcp_config() -> Ipv4Config {
    Ipv4Config {
        address: [10, 0, 0, 5],
        netmask: [255, 255, 255, 0],
        gateway: [10, 0, 0, 1],
        dns: vec![[10, 0, 0, 1], [8, 8, 8, 8]],
    }
}

use super::frames::*;

/// A module in machine format with every log printed, and its clock.
struct Rig {
    m: Module,
    now: Instant,
}

impl Rig {
    /// Boots with empty NVM, switches to machine format with logs, runs `setup` (each line
    /// must answer `Set OK`).
    fn new(setup: &[&str]) -> Self {
        let mut rig = Self { m: Module::boot(board(), None, T0), now: T0 };
        // Answered in human format, with echo: not frames.
        rig.m.feed(b"set system.cmd.format machine\r\n", T0);
        rig.m.take_output();
        for line in ["set system.print_level all"].iter().chain(setup) {
            let out = rig.send(line);
            assert_eq!(out.last(), Some(&resp(0, "Set OK")), "{line}");
        }
        rig
    }

    /// The usual lab settings: `wlan.ssid lab`, a passkey.
    fn lab(extra: &[&str]) -> Self {
        let mut setup = vec!["set wlan.ssid lab", "set wlan.passkey password1"];
        setup.extend_from_slice(extra);
        Self::new(&setup)
    }

    /// Boots from an NVM image holding machine framing, all logs and `settings`; returns
    /// the rig and what booting printed.
    fn boot(settings: &[(&str, &str)]) -> (Self, Vec<F>) {
        let mut entries: Vec<(&str, &[u8])> = vec![
            ("system.cmd.echo", b"0"),
            ("system.cmd.header_enabled", b"1"),
            ("system.cmd.prompt_enabled", b"0"),
            ("system.print_level", b"all"),
        ];
        entries.extend(settings.iter().map(|(n, v)| (*n, v.as_bytes())));
        let image = nvm::encode(entries);
        let mut m = Module::boot(board(), Some(&image), T0);
        let out = frames(&m.take_output());
        (Self { m, now: T0 }, out)
    }

    fn send(&mut self, line: &str) -> Vec<F> {
        self.m.feed(format!("{line}\r\n").as_bytes(), self.now);
        frames(&self.m.take_output())
    }

    fn event(&mut self, event: NetEvent) -> Vec<F> {
        self.m.net_event(event, self.now);
        frames(&self.m.take_output())
    }

    /// Moves the clock by `ms` and runs the timers.
    fn advance(&mut self, ms: u64) -> Vec<F> {
        self.now = self.now + Duration::from_millis(ms);
        self.m.tick(self.now);
        frames(&self.m.take_output())
    }

    /// Moves the clock to the next timer and runs it.
    fn fire(&mut self) -> Vec<F> {
        let at = self.m.poll_at().expect("a timer runs");
        assert!(at >= self.now, "a timer in the past");
        self.advance((at - self.now).as_millis())
    }

    /// Every network request asked for since the last call (other actions are a failure).
    fn reqs(&mut self) -> Vec<NetRequest> {
        let mut got = Vec::new();
        while let Some(action) = self.m.next_action() {
            match action {
                Action::Net(req) => got.push(req),
                other => panic!("unexpected action {other:?}"),
            }
        }
        got
    }

    fn get(&self, name: &str) -> String {
        self.m.vars().render(vars::by_name(name).expect("known variable"))
    }

    /// Runs a whole successful join by DHCP from `network_up` (probe, attempt `attempt`).
    fn join(&mut self) -> Vec<F> {
        let mut all = self.send("network_up");
        let reqs = self.reqs();
        match reqs.as_slice() {
            [NetRequest::Scan { id, .. }] => {
                let id = *id;
                all.extend(self.event(NetEvent::ScanDone { id, results: vec![lab()] }));
            }
            [NetRequest::Associate { .. }] => {}
            other => panic!("unexpected requests {other:?}"),
        }
        let attempt = self.m.join_counters().1;
        all.extend(self.event(NetEvent::Associated { attempt }));
        all.extend(self.event(NetEvent::DhcpBound { attempt, config: dhcp_config() }));
        self.reqs();
        all
    }
}

fn scan(id: u32, ssid: &str) -> NetRequest {
    NetRequest::Scan { id, ssid: Some(ssid.to_string()), bssid: None, params: ScanParams::DEFAULT }
}

fn associate(attempt: u32, bss: Bss, passkey: &[u8]) -> NetRequest {
    NetRequest::Associate { attempt, bss, passkey: passkey.to_vec() }
}

// ---------------------------------------------------------------------------------------------
// Steps 1–7: the whole sequence
// ---------------------------------------------------------------------------------------------

#[test]
fn network_up_probes_associates_gets_an_address_and_answers_success() {
    let mut rig = Rig::lab(&[]);
    assert_eq!(rig.get("wlan.join.result"), "unknown");
    assert_eq!(rig.send("network_up"), vec![log(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
    assert_eq!(rig.get("wlan.join.result"), "joining");
    assert_eq!(rig.get("wlan.network.status"), "0");

    let out = rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    assert_eq!(out, vec![log(I, "Security type from probe: WPA2-AES")]);
    assert_eq!(rig.reqs(), vec![associate(1, lab(), b"password1")]);
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(5000)), "wlan.join.timeout ms");

    let out = rig.event(NetEvent::Associated { attempt: 1 });
    assert_eq!(out, vec![log(I, "Obtaining IPv4 address via DHCP")]);
    assert_eq!(rig.reqs(), vec![NetRequest::StartDhcp { attempt: 1 }]);
    assert_eq!(rig.get("wlan.network.status"), "1");
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(15_000)), "wlan.dhcp.timeout s");

    let out = rig.event(NetEvent::DhcpBound { attempt: 1, config: dhcp_config() });
    assert_eq!(out, vec![log(I, "IPv4 address: 10.0.0.5"), log(S, "[Associated]"), success()]);
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.m.poll_at(), None);
    for (name, want) in [
        ("wlan.network.status", "2"),
        ("wlan.network.ip", "10.0.0.5"),
        ("wlan.network.netmask", "255.255.255.0"),
        ("wlan.network.gateway", "10.0.0.1"),
        ("wlan.network.dns", "10.0.0.1,8.8.8.8"),
        ("wlan.join.result", "success"),
    ] {
        assert_eq!(rig.get(name), want, "{name}");
    }
    assert_eq!(rig.m.join_counters(), (1, 1, 0));
}

#[test]
fn static_configuration_uses_the_wlan_static_variables() {
    let mut rig = Rig::lab(&[
        "set wlan.dhcp.enabled 0",
        "set wlan.static.ip 192.168.7.20",
        "set wlan.static.netmask 255.255.0.0",
        "set wlan.static.gateway 192.168.7.1",
        "set wlan.static.dns 192.168.7.2",
    ]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    let out = rig.event(NetEvent::Associated { attempt: 1 });
    assert_eq!(out, vec![log(I, "IPv4 address: 192.168.7.20"), log(S, "[Associated]"), success()]);
    let config = Ipv4Config {
        address: [192, 168, 7, 20],
        netmask: [255, 255, 0, 0],
        gateway: [192, 168, 7, 1],
        dns: vec![[192, 168, 7, 2]],
    };
    assert_eq!(rig.reqs(), vec![NetRequest::StaticIp(config)]);
    assert_eq!(rig.get("wlan.network.dns"), "192.168.7.2");
    assert_eq!(rig.get("wlan.network.gateway"), "192.168.7.1");
    assert_eq!(rig.get("wlan.network.status"), "2");
}

#[test]
fn static_configuration_without_dns_has_an_empty_dns_list() {
    let mut rig = Rig::lab(&["set wlan.dhcp.enabled 0", "set wlan.static.ip 192.168.7.20"]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    rig.event(NetEvent::Associated { attempt: 1 });
    let Some(NetRequest::StaticIp(config)) = rig.reqs().pop() else { panic!("static ip") };
    assert!(config.dns.is_empty());
    assert_eq!(rig.get("wlan.network.dns"), "");
}

#[test]
fn ssid_not_set_fails_at_once() {
    let mut rig = Rig::new(&["set wlan.auto_join.enabled 1"]);
    let out = rig.send("network_up");
    assert_eq!(out, vec![log(E, "wlan.ssid is not set"), failed()]);
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.m.poll_at(), None, "no auto-join retry for a configuration error");
    assert_eq!(rig.get("wlan.join.result"), "ssid_not_set");
}

#[rstest]
#[case::secured_needs_a_passkey(Security::Wpa2Aes, Some("password_not_set"))]
#[case::open_joins_without(Security::Open, None)]
fn empty_passkey(#[case] security: Security, #[case] fails: Option<&str>) {
    let mut rig = Rig::new(&["set wlan.ssid lab"]);
    rig.send("network_up");
    rig.reqs();
    let out = rig.event(NetEvent::ScanDone { id: 1, results: vec![Bss { security, ..lab() }] });
    match fails {
        Some(result) => {
            assert_eq!(out.last(), Some(&failed()));
            assert!(out.contains(&log(E, "wlan.passkey is not set")), "{out:?}");
            assert_eq!(rig.reqs(), vec![]);
            assert_eq!(rig.get("wlan.join.result"), result);
        }
        None => assert_eq!(rig.reqs(), vec![associate(1, Bss { security, ..lab() }, b"")]),
    }
}

// Step 3: the probe.

#[rstest]
#[case::nothing_heard(&[], vec![])]
#[case::other_ssid(&[], vec![Bss { ssid: "other".into(), ..lab() }])]
#[case::other_security(&["set wlan.security wpa-aes"], vec![lab()])]
#[case::other_bssid(&["set wlan.bssid 02:00:00:00:09:09"], vec![lab()])]
fn probe_without_a_match_fails_with_not_found(#[case] extra: &[&str], #[case] results: Vec<Bss>) {
    let mut rig = Rig::lab(extra);
    rig.send("network_up");
    let [NetRequest::Scan { id, .. }] = rig.reqs()[..] else { panic!("a probe") };
    let out = rig.event(NetEvent::ScanDone { id, results });
    assert_eq!(out, vec![log(I, "Network not found"), log(S, "Join failed"), failed()]);
    assert_eq!(rig.reqs(), vec![], "no association without details");
    assert_eq!(rig.get("wlan.join.result"), "not_found");
    assert_eq!(rig.m.join_counters(), (0, 0, 0));
}

/// What `wlan.scan.*` settings turn into, for the probe and for `wlan_scan` alike.
#[rstest]
#[case::defaults(&[], ScanParams::DEFAULT)]
#[case::active(
    &["set wlan.scan.channel_mask 33", "set wlan.scan.active_dwell 250", "set wlan.scan.num_probes 5"],
    ScanParams { channel_mask: 33, kind: ScanType::Active, dwell_ms: 250, num_probes: 5 }
)]
#[case::passive_uses_the_passive_dwell(
    &["set wlan.scan.type passive", "set wlan.scan.passive_dwell 300", "set wlan.scan.active_dwell 20"],
    ScanParams { kind: ScanType::Passive, dwell_ms: 300, ..ScanParams::DEFAULT }
)]
#[case::shortcuts(
    &["set wl s t passive", "set wl s c 16383"],
    ScanParams { channel_mask: 16383, kind: ScanType::Passive, dwell_ms: 110, num_probes: 2 }
)]
fn the_probe_and_wlan_scan_carry_the_scan_variables(
    #[case] extra: &[&str],
    #[case] want: ScanParams,
) {
    let mut rig = Rig::lab(extra);
    rig.send("wlan_scan");
    let [NetRequest::Scan { id, params, ssid: None, .. }] = rig.reqs()[..] else {
        panic!("a scan")
    };
    assert_eq!(params, want);
    rig.event(NetEvent::ScanDone { id, results: vec![] });
    rig.send("network_up");
    let [NetRequest::Scan { params, .. }] = rig.reqs()[..] else { panic!("a probe") };
    assert_eq!(params, want);
}

#[test]
fn a_slow_scan_is_waited_for_twice_its_listening_time() {
    // 14 channels × 1000 ms: 14 s of listening, waited for 28 s.
    let mut rig =
        Rig::lab(&["set wlan.scan.channel_mask 16383", "set wlan.scan.active_dwell 1000"]);
    rig.send("scan");
    rig.reqs();
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(28_000)));
    assert_eq!(rig.advance(28_000), vec![log(E, "Scan timed out"), failed()]);
}

/// `wlan.scan.retries`: a probe that finds nothing (or gets no answer) is repeated that many
/// more times before step 3 fails.
#[rstest]
#[case::no_retry_fails_at_once(0, 1, false)]
#[case::found_by_the_retry(1, 1, true)]
#[case::found_by_the_last_retry(3, 3, true)]
#[case::retries_run_out(2, 3, false)]
fn scan_retries_repeat_a_probe_that_found_nothing(
    #[case] retries: u32,
    #[case] empty_probes: u32,
    #[case] joins: bool,
) {
    let setting = format!("set wlan.scan.retries {retries}");
    let mut rig = Rig::lab(&[&setting]);
    rig.send("network_up");
    let mut probes = 0;
    loop {
        let reqs = rig.reqs();
        let [NetRequest::Scan { id, .. }] = reqs[..] else { panic!("a probe: {reqs:?}") };
        probes += 1;
        let results = if probes > empty_probes { vec![lab()] } else { vec![] };
        let out = rig.event(NetEvent::ScanDone { id, results });
        if probes > empty_probes {
            assert_eq!(rig.reqs(), vec![associate(1, lab(), b"password1")]);
            break;
        }
        if probes > retries {
            assert_eq!(out, vec![log(I, "Network not found"), log(S, "Join failed"), failed()]);
            assert_eq!(rig.reqs(), vec![]);
            break;
        }
        let again = format!("Probing again ({probes} of {retries})");
        assert_eq!(out, vec![log(I, "Network not found"), log(I, &again)]);
    }
    assert_eq!(probes, (empty_probes + 1).min(retries + 1));
    let want = if joins { "joining" } else { "not_found" };
    assert_eq!(rig.get("wlan.join.result"), want);
}

#[test]
fn scan_retries_also_repeat_an_unanswered_probe_and_ignore_its_late_answer() {
    let mut rig = Rig::lab(&["set wlan.scan.retries 1"]);
    rig.send("network_up");
    let [NetRequest::Scan { id: first, .. }] = rig.reqs()[..] else { panic!("a probe") };
    assert_eq!(rig.fire(), vec![log(I, "Probe timed out"), log(I, "Probing again (1 of 1)")]);
    let [NetRequest::Scan { id: second, .. }] = rig.reqs()[..] else { panic!("a probe") };
    assert_ne!(first, second);
    assert_eq!(rig.event(NetEvent::ScanDone { id: first, results: vec![lab()] }), vec![]);
    assert_eq!(rig.reqs(), vec![]);
    rig.event(NetEvent::ScanDone { id: second, results: vec![lab()] });
    assert_eq!(rig.reqs(), vec![associate(1, lab(), b"password1")]);
}

#[rstest]
#[case::only_unsupported(vec![Bss { security: Security::Wpa3Sae, ..lab() }], None)]
#[case::supported_wins_over_stronger(
    vec![Bss { security: Security::Wpa3Sae, rssi: -20, bssid: [2, 0, 0, 0, 3, 1], ..lab() }, lab()],
    Some(lab())
)]
fn security_not_supported_ends_the_sequence(#[case] results: Vec<Bss>, #[case] joins: Option<Bss>) {
    // Neither probe repeats nor auto-join retries follow: the network's security is what it is.
    let mut rig = Rig::lab(&[
        "set wlan.scan.retries 3",
        "set wlan.auto_join.enabled 1",
        "set wlan.auto_join.retry_delay 1",
    ]);
    rig.send("network_up");
    let [NetRequest::Scan { id, .. }] = rig.reqs()[..] else { panic!("a probe") };
    let out = rig.event(NetEvent::ScanDone { id, results });
    match joins {
        Some(bss) => assert_eq!(rig.reqs(), vec![associate(1, bss, b"password1")]),
        None => {
            assert_eq!(out, vec![log(E, "Security type not supported: WPA3-SAE"), failed()]);
            assert_eq!(rig.reqs(), vec![]);
            assert_eq!(rig.get("wlan.join.result"), "security_not_supported");
            assert_eq!(rig.m.poll_at(), None, "no retry waits");
            assert_eq!(rig.m.join_counters(), (0, 0, 0));
        }
    }
}

#[test]
fn stored_details_on_a_stale_channel_fail_the_pass_then_the_next_pass_probes() {
    let mut rig = Rig::lab(&["set wlan.join.retries 2"]);
    rig.join();
    rig.send("network_down");
    rig.reqs();
    // The AP moved to channel 11: the stored details (channel 6) reach nothing.
    let out = rig.send("network_up");
    assert_eq!(out, vec![log(S, "[Associating to lab]")]);
    for attempt in 2..=3 {
        assert_eq!(rig.reqs(), vec![associate(attempt, lab(), b"password1")]);
        let reason = AssocFailure::NotFound;
        rig.event(NetEvent::AssociationFailed { attempt, reason });
    }
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.get("wlan.join.result"), "failed");
    // The failed pass forgot the details: the next network_up probes again.
    rig.send("network_up");
    let [NetRequest::Scan { id, .. }] = rig.reqs()[..] else { panic!("a probe") };
    let moved = Bss { channel: 11, ..lab() };
    rig.event(NetEvent::ScanDone { id, results: vec![moved.clone()] });
    assert_eq!(rig.reqs(), vec![associate(4, moved, b"password1")]);
}

#[test]
fn probe_by_bssid_when_set_and_strongest_match_wins() {
    let mut rig = Rig::lab(&["set wlan.bssid 02:00:00:00:01:01", "set wlan.security wpa2-aes"]);
    rig.send("network_up");
    assert_eq!(
        rig.reqs(),
        vec![NetRequest::Scan {
            id: 1,
            ssid: None,
            bssid: Some(LAB_BSSID),
            params: ScanParams::DEFAULT
        }]
    );
    let weak = Bss { rssi: -80, channel: 1, ..lab() };
    let strong = Bss { rssi: -30, channel: 11, ..lab() };
    let wrong = Bss { bssid: [2, 0, 0, 0, 9, 9], rssi: -10, ..lab() };
    rig.event(NetEvent::ScanDone { id: 1, results: vec![weak, wrong, strong.clone()] });
    assert_eq!(rig.reqs(), vec![associate(1, strong, b"password1")]);
}

#[test]
fn probe_timeout_fails_with_not_found_and_a_late_answer_is_ignored() {
    let mut rig = Rig::lab(&[]);
    rig.send("network_up");
    rig.reqs();
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(10_000)));
    assert_eq!(rig.advance(9_999), vec![]);
    assert_eq!(rig.advance(1), vec![log(I, "Probe timed out"), log(S, "Join failed"), failed()]);
    assert_eq!(rig.get("wlan.join.result"), "not_found");
    assert_eq!(rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] }), vec![]);
    assert_eq!(rig.reqs(), vec![]);
}

// Steps 1 and 4: association attempts.

#[rstest]
#[case::one(1)]
#[case::three(3)]
#[case::five(5)]
fn join_retries_exhausted(
    #[case] retries: u32,
    #[values(AssocFailure::AuthFailed, AssocFailure::Rejected, AssocFailure::NotFound)]
    reason: AssocFailure,
) {
    let mut rig = Rig::lab(&[&format!("set wlan.join.retries {retries}")]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    for attempt in 1..=retries {
        // Only the pass's first attempt is probed; later ones reuse the details.
        assert_eq!(rig.reqs(), vec![associate(attempt, lab(), b"password1")], "{attempt}");
        assert_eq!(rig.m.join_counters(), (attempt, attempt, 0));
        let out = rig.event(NetEvent::AssociationFailed { attempt, reason });
        assert!(matches!(&out[0], F::L(I, t) if t.starts_with("Association failed: ")), "{out:?}");
        if attempt < retries {
            assert_eq!(out.len(), 1, "{out:?}");
        } else {
            assert_eq!(out[1..], [log(S, "Join failed"), failed()]);
        }
    }
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.get("wlan.join.result"), "failed");
    assert_eq!(rig.get("wlan.network.status"), "0");
}

#[test]
fn association_fails_then_succeeds() {
    let mut rig = Rig::lab(&[]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    let out =
        rig.event(NetEvent::AssociationFailed { attempt: 1, reason: AssocFailure::AuthFailed });
    assert_eq!(out, vec![log(I, "Association failed: authentication failed")]);
    assert_eq!(rig.reqs(), vec![associate(2, lab(), b"password1")]);
    rig.event(NetEvent::Associated { attempt: 2 });
    assert_eq!(rig.reqs(), vec![NetRequest::StartDhcp { attempt: 2 }]);
    let out = rig.event(NetEvent::DhcpBound { attempt: 2, config: dhcp_config() });
    assert_eq!(out.last(), Some(&success()));
    assert_eq!(rig.m.join_counters(), (2, 2, 0));
}

#[test]
fn association_timeout_disassociates_and_a_late_associated_is_ignored() {
    let mut rig = Rig::lab(&["set wlan.join.timeout 1000"]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(1000)));
    assert_eq!(rig.advance(999), vec![]);
    assert_eq!(rig.advance(1), vec![log(I, "Association timed out")]);
    assert_eq!(
        rig.reqs(),
        vec![NetRequest::Disassociate, associate(2, lab(), b"password1")],
        "the timed-out attempt counts; the next one follows"
    );
    // The answer to attempt 1 comes too late.
    assert_eq!(rig.event(NetEvent::Associated { attempt: 1 }), vec![]);
    assert_eq!(
        rig.event(NetEvent::AssociationFailed { attempt: 1, reason: AssocFailure::Rejected }),
        vec![]
    );
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.get("wlan.network.status"), "0");
    rig.event(NetEvent::Associated { attempt: 2 });
    assert_eq!(rig.reqs(), vec![NetRequest::StartDhcp { attempt: 2 }]);
}

#[test]
fn association_timeouts_exhaust_the_retries() {
    let mut rig = Rig::lab(&["set wlan.join.retries 2", "set wlan.join.timeout 100"]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    rig.fire();
    assert_eq!(rig.reqs(), vec![NetRequest::Disassociate, associate(2, lab(), b"password1")]);
    let out = rig.fire();
    assert_eq!(out, vec![log(I, "Association timed out"), log(S, "Join failed"), failed()]);
    assert_eq!(rig.reqs(), vec![NetRequest::Disassociate]);
    assert_eq!(rig.get("wlan.join.result"), "failed");
}

// Step 5: DHCP.

#[test]
fn dhcp_timeout_fails_the_join_and_a_late_lease_is_ignored() {
    let mut rig = Rig::lab(&["set wlan.dhcp.timeout 2"]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    rig.event(NetEvent::Associated { attempt: 1 });
    rig.reqs();
    assert_eq!(rig.advance(1_999), vec![]);
    let out = rig.advance(1);
    assert_eq!(out, vec![log(I, "DHCP timed out"), log(S, "Join failed"), failed()]);
    assert_eq!(rig.reqs(), vec![NetRequest::IpDown, NetRequest::Disassociate]);
    assert_eq!(rig.get("wlan.join.result"), "failed");
    assert_eq!(rig.get("wlan.network.status"), "0");
    assert_eq!(rig.event(NetEvent::DhcpBound { attempt: 1, config: dhcp_config() }), vec![]);
    assert_eq!(rig.get("wlan.network.ip"), "0.0.0.0");
}

#[test]
fn link_lost_during_dhcp_fails_the_join() {
    let mut rig = Rig::lab(&[]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    rig.event(NetEvent::Associated { attempt: 1 });
    rig.reqs();
    let out = rig.event(NetEvent::LinkLost);
    assert_eq!(out, vec![log(S, "[Disassociated]"), log(S, "Join failed"), failed()]);
    assert_eq!(rig.reqs(), vec![NetRequest::IpDown]);
}

// Step 2: first time?

#[test]
fn previously_joined_network_skips_the_probe() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    assert_eq!(
        rig.send("network_down"),
        vec![log(S, "[Disassociated]"), log(I, "Network down"), success()]
    );
    assert_eq!(rig.reqs(), vec![NetRequest::IpDown, NetRequest::Disassociate]);
    assert_eq!(rig.get("wlan.network.ip"), "0.0.0.0");
    assert_eq!(rig.get("wlan.network.dns"), "");
    assert_eq!(rig.send("network_up"), vec![log(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![associate(2, lab(), b"password1")], "no probe");
}

#[test]
fn changed_settings_probe_again() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.send("network_down");
    rig.reqs();
    rig.send("set wlan.security wpa2-aes");
    rig.send("network_up");
    assert_eq!(rig.reqs(), vec![scan(2, "lab")]);
}

#[test]
fn stored_details_that_fail_are_forgotten() {
    let mut rig = Rig::lab(&["set wlan.join.retries 1"]);
    rig.join();
    rig.send("network_down");
    rig.reqs();
    rig.send("network_up");
    assert_eq!(rig.reqs(), vec![associate(2, lab(), b"password1")]);
    let out = rig.event(NetEvent::AssociationFailed { attempt: 2, reason: AssocFailure::NotFound });
    assert_eq!(out.last(), Some(&failed()));
    rig.send("network_up");
    assert_eq!(rig.reqs(), vec![scan(2, "lab")], "probe again");
}

// Step 6: auto-join retries.

#[test]
fn auto_join_retry_waits_the_delay_then_runs_the_sequence_again() {
    let mut rig = Rig::lab(&["set wlan.auto_join.enabled 1", "set wlan.auto_join.retry_delay 3"]);
    rig.send("network_up");
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
    let out = rig.event(NetEvent::ScanDone { id: 1, results: vec![] });
    assert_eq!(
        out,
        vec![log(I, "Network not found"), log(S, "Join failed"), log(I, "Retrying in 3 s")],
        "no answer yet: retries remain"
    );
    assert_eq!(rig.get("wlan.join.result"), "joining");
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(3000)));
    assert_eq!(rig.advance(2_999), vec![]);
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.advance(1), vec![log(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![scan(2, "lab")], "each pass probes again");
    assert_eq!(rig.m.join_counters(), (0, 1, 1));
    rig.event(NetEvent::ScanDone { id: 2, results: vec![lab()] });
    // The auto-join retry also incremented the join retry count (step 6).
    assert_eq!(rig.reqs(), vec![associate(2, lab(), b"password1")]);
    rig.event(NetEvent::Associated { attempt: 2 });
    let out = rig.event(NetEvent::DhcpBound { attempt: 2, config: dhcp_config() });
    assert_eq!(out.last(), Some(&success()));
    assert_eq!(rig.m.join_counters(), (1, 2, 1));
}

#[test]
fn auto_join_retry_after_association_failures_resets_the_attempt_count() {
    let mut rig = Rig::lab(&[
        "set wlan.auto_join.enabled 1",
        "set wlan.auto_join.retry_delay 1",
        "set wlan.join.retries 2",
    ]);
    rig.send("network_up");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    for attempt in [1, 2] {
        rig.reqs();
        rig.event(NetEvent::AssociationFailed { attempt, reason: AssocFailure::Rejected });
    }
    assert_eq!(rig.m.join_counters(), (2, 3, 1));
    rig.fire();
    assert_eq!(rig.m.join_counters(), (0, 3, 1));
    assert_eq!(rig.reqs(), vec![scan(2, "lab")]);
    rig.event(NetEvent::ScanDone { id: 2, results: vec![lab()] });
    assert_eq!(rig.reqs(), vec![associate(4, lab(), b"password1")]);
}

#[rstest]
#[case::one(1)]
#[case::three(3)]
fn auto_join_retries_exhausted(#[case] retries: u32) {
    let mut rig = Rig::lab(&[
        "set wlan.auto_join.enabled 1",
        &format!("set wlan.auto_join.retries {retries}"),
        "set wlan.auto_join.retry_delay 2",
    ]);
    rig.send("network_up");
    let mut probes = 0;
    let last = loop {
        let reqs = rig.reqs();
        let [NetRequest::Scan { id, .. }] = reqs[..] else { panic!("a probe: {reqs:?}") };
        probes += 1;
        let out = rig.event(NetEvent::ScanDone { id, results: vec![] });
        if out.last() == Some(&failed()) {
            break out;
        }
        assert_eq!(out.last(), Some(&log(I, "Retrying in 2 s")));
        rig.fire();
    };
    assert_eq!(probes, retries + 1, "the first pass and one per retry");
    assert_eq!(last, vec![log(I, "Network not found"), log(S, "Join failed"), failed()]);
    assert_eq!(rig.m.join_counters().2, retries);
    assert_eq!(rig.m.poll_at(), None);
    assert_eq!(rig.get("wlan.join.result"), "not_found");
}

#[test]
fn auto_join_retries_zero_retries_forever_and_answers_after_the_first_pass() {
    let mut rig = Rig::lab(&[
        "set wlan.auto_join.enabled 1",
        "set wlan.auto_join.retries 0",
        "set wlan.auto_join.retry_delay 1",
    ]);
    rig.send("network_up");
    for pass in 1..=20u32 {
        let reqs = rig.reqs();
        let [NetRequest::Scan { id, .. }] = reqs[..] else { panic!("a probe: {reqs:?}") };
        let out = rig.event(NetEvent::ScanDone { id, results: vec![] });
        assert_eq!(out.contains(&failed()), pass == 1, "pass {pass}: {out:?}");
        assert_eq!(rig.get("wlan.join.result"), "joining");
        rig.fire();
    }
    // Input is taken again once the command was answered.
    assert_eq!(rig.send("get wlan.join.result"), vec![resp(0, "joining")]);
}

#[test]
fn network_down_stops_auto_join_retries() {
    let (mut rig, _) = Rig::boot(&[("wlan.ssid", "lab"), ("wlan.auto_join.enabled", "1")]);
    let [NetRequest::Scan { id, .. }] = rig.reqs()[..] else { panic!("a probe") };
    let out = rig.event(NetEvent::ScanDone { id, results: vec![] });
    assert_eq!(out.last(), Some(&log(I, "Retrying in 3 s")));
    assert!(rig.m.poll_at().is_some());
    assert_eq!(rig.send("network_down"), vec![log(I, "Network down"), success()]);
    assert_eq!(rig.m.poll_at(), None);
    assert_eq!(rig.advance(60_000), vec![]);
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.get("wlan.join.result"), "aborted");
}

#[test]
fn network_down_aborts_an_association_in_progress() {
    let (mut rig, _) = Rig::boot(&[
        ("wlan.ssid", "lab"),
        ("wlan.passkey", "password1"),
        ("wlan.auto_join.enabled", "1"),
    ]);
    let [NetRequest::Scan { id, .. }] = rig.reqs()[..] else { panic!("a probe") };
    rig.event(NetEvent::ScanDone { id, results: vec![lab()] });
    assert_eq!(rig.reqs(), vec![associate(1, lab(), b"password1")]);
    assert_eq!(rig.send("network_down"), vec![log(I, "Network down"), success()]);
    assert_eq!(rig.reqs(), vec![NetRequest::Disassociate]);
    assert_eq!(rig.event(NetEvent::Associated { attempt: 1 }), vec![]);
    assert_eq!(rig.m.poll_at(), None);
    assert_eq!(rig.get("wlan.join.result"), "aborted");
}

// Boot and link loss.

#[test]
fn auto_join_at_boot_starts_the_sequence_right_away() {
    let (mut rig, out) = Rig::boot(&[("wlan.ssid", "lab"), ("wlan.auto_join.enabled", "1")]);
    assert_eq!(out[out.len() - 2..], [log(S, "[Ready]"), log(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
}

#[test]
fn auto_join_at_boot_prints_associating_before_the_prompt() {
    let image = nvm::encode([("wlan.ssid", b"lab".as_slice()), ("wlan.auto_join.enabled", b"1")]);
    let mut m = Module::boot(board(), Some(&image), T0);
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    assert!(out.ends_with("[Ready]\r\n[Associating to lab]\r\n> "), "{out:?}");
}

#[test]
fn no_auto_join_at_boot_when_disabled() {
    let (mut rig, out) = Rig::boot(&[("wlan.ssid", "lab")]);
    assert_eq!(out.last(), Some(&log(S, "[Ready]")));
    assert_eq!(rig.reqs(), vec![]);
    assert_eq!(rig.m.poll_at(), None);
}

#[test]
fn link_lost_with_auto_join_rejoins_with_the_stored_details() {
    let mut rig = Rig::lab(&["set wlan.auto_join.enabled 1"]);
    rig.join();
    let out = rig.event(NetEvent::LinkLost);
    assert_eq!(out, vec![log(S, "[Disassociated]"), log(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![NetRequest::IpDown, associate(2, lab(), b"password1")]);
    assert_eq!(rig.get("wlan.network.ip"), "0.0.0.0");
    assert_eq!(rig.get("wlan.network.status"), "0");
    assert_eq!(rig.get("wlan.join.result"), "joining");
    rig.event(NetEvent::Associated { attempt: 2 });
    rig.event(NetEvent::DhcpBound { attempt: 2, config: dhcp_config() });
    assert_eq!(rig.get("wlan.network.status"), "2");
}

#[test]
fn link_lost_without_auto_join_stays_down() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    assert_eq!(rig.event(NetEvent::LinkLost), vec![log(S, "[Disassociated]")]);
    assert_eq!(rig.reqs(), vec![NetRequest::IpDown]);
    assert_eq!(rig.m.poll_at(), None);
    assert_eq!(rig.get("wlan.network.status"), "0");
    assert_eq!(rig.get("wlan.network.gateway"), "0.0.0.0");
}

// ---------------------------------------------------------------------------------------------
// network_up / network_down / network_restart
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::interactive("network_up -s", 1, Some("Interactive setup (network_up -s) is not supported"))]
#[case::interactive_wlan(
    "nup -s wlan",
    1,
    Some("Interactive setup (network_up -s) is not supported")
)]
#[case::softap("network_up softap", 1, Some("The softap interface is not supported"))]
#[case::softap_down("network_down softap", 1, Some("The softap interface is not supported"))]
#[case::bad_interface("nup eth0", 7, None)]
#[case::unknown_flag("nup -x", 6, None)]
#[case::two_interfaces("nup wlan wlan", 5, None)]
#[case::scan_flag("scan -x", 6, None)]
#[case::lookup_no_host("nlo", 4, None)]
#[case::ping_no_target("ping", 4, None)]
#[case::ping_flag("ping -x", 6, None)]
fn refused_network_commands(#[case] line: &str, #[case] code: u8, #[case] note: Option<&str>) {
    let mut rig = Rig::lab(&[]);
    let out = rig.send(line);
    let text = ResultCode(code).text().expect("known code");
    let mut want: Vec<F> = note.map(|n| log(E, n)).into_iter().collect();
    want.push(resp(code, text));
    assert_eq!(out, want);
    assert_eq!(rig.reqs(), vec![]);
}

#[test]
fn default_interface_softap_is_not_supported() {
    let mut rig = Rig::lab(&["set network.default_interface softap"]);
    assert_eq!(rig.send("nup").last(), Some(&failed()));
    assert_eq!(rig.send("nup wlan"), vec![log(S, "[Associating to lab]")]);
}

#[test]
fn network_up_when_up_answers_success_at_once() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    assert_eq!(rig.send("nup"), vec![success()]);
    assert_eq!(rig.send("network_up wlan"), vec![success()]);
    assert_eq!(rig.reqs(), vec![]);
}

#[test]
fn network_down_when_down_answers_success() {
    let mut rig = Rig::lab(&[]);
    assert_eq!(rig.send("network_down"), vec![success()]);
    assert_eq!(rig.send("ndo wlan"), vec![success()]);
    assert_eq!(rig.reqs(), vec![]);
}

#[test]
fn network_restart_goes_down_then_up() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    let out = rig.send("nre");
    assert_eq!(
        out,
        vec![log(S, "[Disassociated]"), log(I, "Network down"), log(S, "[Associating to lab]")]
    );
    assert_eq!(
        rig.reqs(),
        vec![NetRequest::IpDown, NetRequest::Disassociate, associate(2, lab(), b"password1")]
    );
    rig.event(NetEvent::Associated { attempt: 2 });
    let out = rig.event(NetEvent::DhcpBound { attempt: 2, config: dhcp_config() });
    assert_eq!(out.last(), Some(&success()));
}

#[test]
fn network_restart_when_down_just_comes_up() {
    let mut rig = Rig::lab(&[]);
    assert_eq!(rig.send("network_restart"), vec![log(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
}

#[test]
fn input_during_network_up_is_stashed_until_it_answers() {
    let mut rig = Rig::lab(&[]);
    assert_eq!(
        rig.send("network_up\r\nget wlan.network.status"),
        vec![log(S, "[Associating to lab]")]
    );
    assert_eq!(rig.send("ver"), vec![]);
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.event(NetEvent::Associated { attempt: 1 });
    let out = rig.event(NetEvent::DhcpBound { attempt: 1, config: dhcp_config() });
    assert_eq!(out[out.len() - 3..out.len() - 1], [success(), resp(0, "2")]);
    assert!(matches!(out.last(), Some(F::R(0, v)) if v.starts_with("Gecko OS")), "{out:?}");
}

#[test]
fn network_up_joins_a_sequence_already_running() {
    let (mut rig, _) = Rig::boot(&[
        ("wlan.ssid", "lab"),
        ("wlan.passkey", "password1"),
        ("wlan.auto_join.enabled", "1"),
    ]);
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
    assert_eq!(rig.send("network_up"), vec![], "waits for the running sequence");
    assert_eq!(rig.reqs(), vec![]);
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.event(NetEvent::Associated { attempt: 1 });
    let out = rig.event(NetEvent::DhcpBound { attempt: 1, config: dhcp_config() });
    assert_eq!(out.last(), Some(&success()));
}

#[test]
fn status_variables_are_read_only() {
    let mut rig = Rig::lab(&[]);
    for name in ["wlan.join.result", "wlan.network.status", "wlan.network.ip", "wlan.network.dns"] {
        assert_eq!(rig.send(&format!("set {name} 1")), vec![resp(6, "Unknown variable or option")]);
    }
}

#[test]
fn join_result_names_are_the_table_values() {
    let def = vars::Var::WlanJoinResult.def();
    let vars::Kind::Enum(words) = def.kind else { panic!("an enum") };
    let names: Vec<&str> = JoinResult::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(words, names.as_slice());
    assert_eq!(def.default, JoinResult::Unknown.name());
}

// ---------------------------------------------------------------------------------------------
// wlan_scan
// ---------------------------------------------------------------------------------------------

fn scan_results() -> Vec<Bss> {
    vec![
        Bss {
            ssid: "far away".into(),
            bssid: [2, 0, 0, 0, 2, 2],
            channel: 11,
            rssi: -87,
            security: Security::Open,
        },
        lab(),
        Bss {
            ssid: String::new(),
            bssid: [2, 0, 0, 0, 3, 3],
            channel: 1,
            rssi: -60,
            security: Security::Wpa2Mixed,
        },
        Bss {
            ssid: "guest-net-with-a-long-name".into(),
            bssid: [0xa4, 0x5e, 0x60, 0xc1, 0x0f, 0xee],
            channel: 13,
            rssi: -101,
            security: Security::WpaTkip,
        },
    ]
}

#[rstest]
#[case::plain("wlan_scan", "scan")]
#[case::verbose("scan -v", "scan_verbose")]
fn scan_output(#[case] line: &str, #[case] snapshot: &str) {
    let mut rig = Rig::lab(&[]);
    assert_eq!(rig.send(line), vec![]);
    let params = ScanParams::DEFAULT;
    assert_eq!(rig.reqs(), vec![NetRequest::Scan { id: 1, ssid: None, bssid: None, params }]);
    let out = rig.event(NetEvent::ScanDone { id: 1, results: scan_results() });
    let [F::R(0, body)] = &out[..] else { panic!("one response: {out:?}") };
    assert!(body.lines().all(|l| l.starts_with('!') || l.starts_with('#')));
    insta::assert_snapshot!(snapshot, body.replace("\r\n", "\n"));
    // The scan does not touch the interface.
    assert_eq!(rig.get("wlan.network.status"), "0");
    assert_eq!(rig.get("wlan.join.result"), "unknown");
}

#[rstest]
#[case::none(vec![], "! 0 networks")]
#[case::one(vec![lab()], "! 1 network\r\n#  0  6  -40 02:00:00:00:01:01 WPA2-AES     3 lab")]
fn scan_counts(#[case] results: Vec<Bss>, #[case] want: &str) {
    let mut rig = Rig::lab(&[]);
    rig.send("scan");
    rig.reqs();
    assert_eq!(rig.event(NetEvent::ScanDone { id: 1, results }), vec![resp(0, want)]);
}

#[test]
fn scan_timeout_is_command_failed() {
    let mut rig = Rig::lab(&[]);
    rig.send("scan");
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(10_000)));
    assert_eq!(rig.advance(10_000), vec![log(E, "Scan timed out"), failed()]);
    assert_eq!(rig.event(NetEvent::ScanDone { id: 1, results: vec![] }), vec![]);
}

#[test]
fn scan_in_human_format() {
    let mut m = Module::boot(board(), None, T0);
    m.take_output();
    m.feed(b"scan\r\n", T0);
    assert_eq!(m.take_output(), b"scan\r\n");
    m.net_event(NetEvent::ScanDone { id: 1, results: vec![lab()] }, T0);
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    assert_eq!(out, "! 1 network\r\n#  0  6  -40 02:00:00:00:01:01 WPA2-AES     3 lab\r\n> ");
}

// ---------------------------------------------------------------------------------------------
// network_lookup, ping
// ---------------------------------------------------------------------------------------------

#[test]
fn lookup_of_an_address_answers_itself() {
    let mut rig = Rig::lab(&[]);
    assert_eq!(rig.send("network_lookup 10.1.2.3"), vec![resp(0, "10.1.2.3")]);
    assert_eq!(rig.reqs(), vec![]);
}

#[test]
fn lookup_brings_the_network_up_first() {
    let mut rig = Rig::lab(&[]);
    assert_eq!(rig.send("nlo example.com"), vec![log(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.event(NetEvent::Associated { attempt: 1 });
    rig.reqs();
    let out = rig.event(NetEvent::DhcpBound { attempt: 1, config: dhcp_config() });
    assert_eq!(out, vec![log(I, "IPv4 address: 10.0.0.5"), log(S, "[Associated]")]);
    assert_eq!(rig.reqs(), vec![NetRequest::Resolve { id: 2, name: "example.com".into() }]);
    let out = rig.event(NetEvent::Resolved { id: 2, address: Some([93, 184, 216, 34]) });
    assert_eq!(out, vec![resp(0, "93.184.216.34")]);
}

#[test]
fn lookup_fails_when_the_network_does_not_come_up() {
    let mut rig = Rig::lab(&[]);
    rig.send("nlo example.com");
    rig.reqs();
    let out = rig.event(NetEvent::ScanDone { id: 1, results: vec![] });
    assert_eq!(out.last(), Some(&failed()));
    assert_eq!(rig.reqs(), vec![]);
}

#[test]
fn lookup_of_an_unknown_name_fails() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    assert_eq!(rig.send("nlo nowhere.invalid"), vec![]);
    assert_eq!(rig.reqs(), vec![NetRequest::Resolve { id: 2, name: "nowhere.invalid".into() }]);
    let out = rig.event(NetEvent::Resolved { id: 2, address: None });
    assert_eq!(out, vec![log(E, "Host not found: nowhere.invalid"), failed()]);
}

#[test]
fn lookup_times_out_after_network_dns_timeout_milliseconds() {
    let mut rig = Rig::lab(&["set network.dns.timeout 750"]);
    rig.join();
    rig.send("nlo slow.example");
    rig.reqs();
    assert_eq!(rig.advance(749), vec![]);
    assert_eq!(rig.advance(1), vec![log(E, "DNS lookup timed out: slow.example"), failed()]);
    assert_eq!(rig.event(NetEvent::Resolved { id: 2, address: Some([1, 2, 3, 4]) }), vec![]);
}

#[test]
fn ping_gateway() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    assert_eq!(rig.send("ping -g"), vec![]);
    assert_eq!(rig.reqs(), vec![NetRequest::Ping { id: 2, to: [10, 0, 0, 1] }]);
    let out = rig.event(NetEvent::PingReply { id: 2, rtt_ms: 3 });
    assert_eq!(out, vec![resp(0, "Ping reply from 10.0.0.1: 3 ms")]);
}

#[test]
fn ping_address_brings_the_network_up_first() {
    let mut rig = Rig::lab(&[]);
    rig.send("ping 10.0.0.9");
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.event(NetEvent::Associated { attempt: 1 });
    rig.event(NetEvent::DhcpBound { attempt: 1, config: dhcp_config() });
    let reqs = rig.reqs();
    assert_eq!(reqs.last(), Some(&NetRequest::Ping { id: 2, to: [10, 0, 0, 9] }));
}

#[test]
fn ping_host_resolves_then_pings() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.send("ping example.com");
    assert_eq!(rig.reqs(), vec![NetRequest::Resolve { id: 2, name: "example.com".into() }]);
    assert_eq!(rig.event(NetEvent::Resolved { id: 2, address: Some([1, 2, 3, 4]) }), vec![]);
    assert_eq!(rig.reqs(), vec![NetRequest::Ping { id: 3, to: [1, 2, 3, 4] }]);
    let out = rig.event(NetEvent::PingReply { id: 3, rtt_ms: 12 });
    assert_eq!(out, vec![resp(0, "Ping reply from 1.2.3.4: 12 ms")]);
}

#[test]
fn ping_times_out_after_one_second() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.send("ping 10.0.0.1");
    rig.reqs();
    assert_eq!(rig.advance(999), vec![]);
    assert_eq!(rig.advance(1), vec![log(E, "Ping timed out: 10.0.0.1"), failed()]);
    assert_eq!(rig.event(NetEvent::PingReply { id: 2, rtt_ms: 1500 }), vec![]);
}

#[test]
fn ping_gateway_without_a_gateway_fails() {
    let mut rig = Rig::lab(&["set wlan.dhcp.enabled 0", "set wlan.static.ip 10.0.0.7"]);
    rig.send("nup");
    rig.reqs();
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.event(NetEvent::Associated { attempt: 1 });
    rig.reqs();
    assert_eq!(rig.send("ping -g"), vec![log(E, "No gateway"), failed()]);
    assert_eq!(rig.reqs(), vec![]);
}

#[test]
fn poll_at_is_the_earliest_timer() {
    let (mut rig, _) = Rig::boot(&[("wlan.ssid", "lab"), ("wlan.auto_join.enabled", "1")]);
    rig.reqs();
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(10_000)), "the probe");
    rig.advance(5_000);
    rig.send("scan");
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(10_000)), "the probe, not the scan");
    rig.advance(5_000);
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(13_000)), "the auto-join delay");
    rig.fire();
    assert_eq!(rig.m.poll_at(), Some(Instant::from_millis(15_000)), "the scan");
    assert_eq!(rig.fire(), vec![log(E, "Scan timed out"), failed()]);
}

#[test]
fn a_log_while_a_person_types_gets_its_own_line_and_the_line_comes_back() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.m.feed(b"set system.cmd.echo 1\r\nget wl\x1b[D", rig.now);
    rig.m.take_output();
    rig.m.net_event(NetEvent::LinkLost, rig.now);
    let out = rig.m.take_output();
    let log = "L100017\r\n[Disassociated]\r\n";
    assert_eq!(out, format!("\r\n{log}get wl\x08").as_bytes(), "no prompt: it is disabled");
    // Nothing typed (the line was erased): the log is printed as it is.
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.m.feed(b"set system.cmd.echo 1\r\nget wl\x7f\x7f\x7f\x7f\x7f\x7f", rig.now);
    rig.m.take_output();
    rig.m.net_event(NetEvent::LinkLost, rig.now);
    assert_eq!(rig.m.take_output(), log.as_bytes());
}

// ---------------------------------------------------------------------------------------------
// Commands from several origins at once
// ---------------------------------------------------------------------------------------------

const HTTP: Origin = Origin::Http(7);

fn response(code: u8, body: &str) -> Reply {
    Reply::Response { code: ResultCode(code), body: body.as_bytes().to_vec() }
}

fn log_reply(level: u8, text: &str) -> Reply {
    Reply::Log { level, text: text.to_string() }
}

#[test]
fn two_origins_in_flight_each_get_only_their_own_replies_and_logs() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    // The serial console starts a lookup that waits for DNS.
    assert_eq!(rig.send("nlo slow.lab"), vec![]);
    assert_eq!(rig.reqs(), vec![NetRequest::Resolve { id: 2, name: "slow.lab".into() }]);

    // Meanwhile an HTTP request runs a quick command, then a lookup of its own.
    rig.m.execute(HTTP, b"get wlan.ssid", rig.now);
    assert_eq!(rig.m.take_replies(HTTP), vec![response(0, "lab")]);
    rig.m.execute(HTTP, b"nlo nowhere.lab", rig.now);
    assert_eq!(rig.reqs(), vec![NetRequest::Resolve { id: 3, name: "nowhere.lab".into() }]);
    assert_eq!(frames(&rig.m.take_output()), vec![], "nothing of HTTP's on the console");

    // The HTTP lookup fails first: its log line and its failure go to HTTP alone.
    let out = rig.event(NetEvent::Resolved { id: 3, address: None });
    assert_eq!(out, vec![], "the serial console still waits, and sees nothing of HTTP's");
    assert_eq!(
        rig.m.take_replies(HTTP),
        vec![log_reply(E, "Host not found: nowhere.lab"), response(1, "Command failed")]
    );

    // The serial lookup answers on the console, and HTTP gets nothing more.
    let out = rig.event(NetEvent::Resolved { id: 2, address: Some([10, 0, 0, 9]) });
    assert_eq!(out, vec![resp(0, "10.0.0.9")]);
    assert_eq!(rig.m.take_replies(HTTP), vec![]);
    assert_eq!(rig.m.take_replies(Origin::Serial), vec![], "the serial origin renders to bytes");
}

#[test]
fn a_timer_answers_the_origin_whose_command_waits() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.m.execute(HTTP, b"nlo quiet.lab", rig.now);
    assert_eq!(rig.reqs(), vec![NetRequest::Resolve { id: 2, name: "quiet.lab".into() }]);
    // The console stays free while HTTP's lookup waits.
    assert_eq!(rig.send("get wlan.ssid"), vec![resp(0, "lab")]);
    let out = rig.fire();
    assert_eq!(out, vec![], "the DNS timeout belongs to HTTP's command");
    let replies = rig.m.take_replies(HTTP);
    assert_eq!(replies.last(), Some(&response(1, "Command failed")), "{replies:?}");
}

#[test]
fn an_origin_waiting_for_the_network_gets_the_answer_while_asynchronous_logs_are_broadcast() {
    let mut rig = Rig::lab(&[]);
    rig.m.execute(HTTP, b"network_up", rig.now);
    // The line the command itself caused goes to its origin.
    assert_eq!(rig.m.take_replies(HTTP), vec![log_reply(S, "[Associating to lab]")]);
    assert_eq!(rig.reqs(), vec![scan(1, "lab")]);
    rig.event(NetEvent::ScanDone { id: 1, results: vec![lab()] });
    rig.reqs();
    rig.event(NetEvent::Associated { attempt: 1 });
    rig.reqs();
    // What the network does on its own is broadcast: the console shows it.
    let out = rig.event(NetEvent::DhcpBound { attempt: 1, config: dhcp_config() });
    assert_eq!(out, vec![log(I, "IPv4 address: 10.0.0.5"), log(S, "[Associated]")]);
    assert_eq!(rig.m.take_replies(HTTP), vec![response(0, "Success")]);
}

#[test]
fn a_data_phase_takes_the_bytes_of_its_own_origin() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.send("tcp_client 10.0.0.1 7");
    let Some(NetRequest::TcpConnect { conn, .. }) = rig.reqs().first().cloned() else {
        panic!("a connect")
    };
    let out = rig.event(NetEvent::TcpConnected { conn, local_port: 40000 });
    assert_eq!(out.last(), Some(&resp(0, "0")));
    rig.m.execute(HTTP, b"stream_write 0 5", rig.now);
    assert_eq!(rig.m.take_replies(HTTP), vec![Reply::Data { want: 5 }]);
    // Serial input meanwhile is a command of its own, not data.
    assert_eq!(rig.send("get wlan.ssid"), vec![resp(0, "lab")]);
    assert_eq!(rig.m.data(HTTP, b"hello and more", rig.now), 5);
    assert_eq!(rig.reqs(), vec![NetRequest::Send { conn, data: b"hello".to_vec(), to: None }]);
    rig.event(NetEvent::Sent { conn, len: 5 });
    assert_eq!(rig.m.take_replies(HTTP), vec![response(0, "Success")]);
    assert_eq!(frames(&rig.m.take_output()), vec![]);
}

#[test]
fn a_second_command_of_an_origin_waits_behind_its_first() {
    let mut rig = Rig::lab(&[]);
    rig.join();
    rig.m.execute(HTTP, b"nlo first.lab", rig.now);
    rig.m.execute(HTTP, b"get wlan.ssid", rig.now);
    assert_eq!(rig.m.take_replies(HTTP), vec![], "the second waits for the first");
    assert_eq!(rig.reqs(), vec![NetRequest::Resolve { id: 2, name: "first.lab".into() }]);
    rig.event(NetEvent::Resolved { id: 2, address: Some([10, 0, 0, 8]) });
    assert_eq!(rig.m.take_replies(HTTP), vec![response(0, "10.0.0.8"), response(0, "lab")]);
    // Another origin's empty line gets no answer (the prompt is the serial console's).
    rig.m.execute(Origin::Terminal(1), b"", rig.now);
    assert_eq!(rig.m.take_replies(Origin::Terminal(1)), vec![]);
    assert_eq!(frames(&rig.m.take_output()), vec![]);
}

//! A run on a rig with a lab network, end to end: the module joins through the simulated
//! radio, gets a lease from the lab's dnsmasq, the case's capture shows it, and afterwards
//! nothing of the lab is left. Needs root; without it the test says so and returns.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::model::Verdict;
use gecko_hil::runner::run;
use gecko_hil::spec::load_dir;

const CASES: &str = r#"
[[case]]
id = "t/join"
title = "joins and gets a lease"
clauses = ["t.one"]
basis = "documented"
requires = ["lab"]
packets = [{ sequence = [{ dhcp = "discover" }, { dhcp = "ack" }] }]
[case.setup]
set = { "wlan.ssid" = "lab", "wlan.passkey" = "labpass123" }
[[case.step]]
fault = { kind = "reject_association", count = 1 }
expect_fired = 1
[[case.step]]
send = "network_up"
body = "Success"

[[case]]
id = "t/unfired"
title = "a fault that never fires makes the case an error"
clauses = ["t.one"]
basis = "documented"
requires = ["lab"]
[[case.step]]
fault = { kind = "dhcp_silent" }
[[case.step]]
send = "version"
"#;

#[test]
fn a_lab_run_joins_captures_and_cleans_up() {
    if !common::is_root() {
        eprintln!("SKIPPED a_lab_run_joins_captures_and_cleans_up: lab networking needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), CASES)).unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
            common::sim_binary()
        ),
    );
    let options = common::options(dir.path().join("r"), 0, 2);
    let (result, report_dir) = run(&specs, &rig, &options).unwrap();
    let join = &result.cases[0];
    assert_eq!(join.verdict, Verdict::Pass, "{:?}", join.reason);
    let capture = join.capture.as_deref().unwrap();
    assert!(report_dir.join(capture).metadata().unwrap().len() > 24, "the capture has packets");
    assert!(join.timeline.iter().any(|e| e.lane == gecko_hil::model::Lane::Radio));
    assert!(join.timeline.iter().any(|e| e.lane == gecko_hil::model::Lane::Packet));
    let unfired = &result.cases[1];
    assert_eq!(unfired.verdict, Verdict::Error);
    assert!(unfired.reason.as_deref().unwrap().contains("never fired"), "{:?}", unfired.reason);
    assert!(common::our_namespaces().is_empty(), "left behind: {:?}", common::our_namespaces());
}

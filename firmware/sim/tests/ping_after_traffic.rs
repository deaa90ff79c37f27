//! A ping right after a reboot that followed traffic: the module accepts a connection from
//! the lab (so its stack sends an ARP request), the next case reboots it, brings it up with
//! a static address and pings the gateway at once. The stack lives on across the reboot, and
//! with it smoltcp's one-second ARP silence; the echo request must still leave before the
//! core's ping timeout. Needs root; without it the test says so and returns.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::model::Verdict;
use gecko_hil::runner::run;
use gecko_hil::spec::load_dir;

/// A case whose module accepts a connection from the lab client.
fn accept_case(n: u32) -> String {
    format!(
        r#"
[[case]]
id = "t/accept-{n}"
title = "the module accepts a connection"
clauses = ["t.one"]
basis = "documented"
requires = ["lab"]
[case.setup]
set = {{ "wlan.ssid" = "lab", "wlan.passkey" = "labpass123", "http.server.enabled" = "1" }}
[[case.step]]
send = "network_up"
body = "Success"
[[case.step]]
client = {{ connect = 80 }}
"#
    )
}

/// The `dhcp/static` case of the suite: static address, then `ping -g` at once.
fn static_ping_case(n: u32) -> String {
    format!(
        r#"
[[case]]
id = "t/static-ping-{n}"
title = "a static address, then a ping of the gateway"
clauses = ["t.one"]
basis = "documented"
requires = ["lab"]
[case.setup]
set = {{ "wlan.ssid" = "lab", "wlan.passkey" = "labpass123", "wlan.dhcp.enabled" = "0", "wlan.static.ip" = "10.77.0.50", "wlan.static.netmask" = "255.255.255.0", "wlan.static.gateway" = "10.77.0.1", "wlan.static.dns" = "10.77.0.1" }}
[[case.step]]
send = "network_up"
body = "Success"
[[case.step]]
send = "ping -g"
body_regex = '\APing reply from 10\.77\.0\.1: \d+ ms\z'
"#
    )
}

#[test]
fn a_ping_after_a_reboot_that_followed_a_connection_is_answered() {
    if !common::is_root() {
        eprintln!(
            "SKIPPED a_ping_after_a_reboot_that_followed_a_connection_is_answered: needs root"
        );
        return;
    }
    let cases: String = (1..=3).map(|n| accept_case(n) + &static_ping_case(n)).collect();
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), &cases)).unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
            common::sim_binary()
        ),
    );
    // One rig, in order: each ping case runs right after a case with a connection.
    let options = common::options(dir.path().join("r"), 0, 1);
    let (result, _) = run(&specs, &rig, &options).unwrap();
    let ids: Vec<&str> = result.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    for case in &result.cases {
        assert_eq!(case.verdict, Verdict::Pass, "{}: {:?}", case.id, case.reason);
    }
}

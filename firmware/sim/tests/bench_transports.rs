//! `hil bench transports` end to end with few iterations: every transport's channel and floor
//! answer on one simulated module in a lab, the pexpect loop runs (where Python has pexpect),
//! and the REST load loses nothing and agrees with the module's count. Needs root; without it
//! the test says so and returns.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::bench::{Measured, TransportsOptions, transports};
use gecko_hil::transport::Transport;
use std::time::Duration;

#[test]
fn bench_transports_measures_every_transport_on_one_module() {
    if !common::is_root() {
        eprintln!(
            "SKIPPED bench_transports_measures_every_transport_on_one_module: lab networking needs root"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
            common::sim_binary()
        ),
    );
    let options = TransportsOptions {
        iterations: 20,
        rest_clients: 8,
        rest_time: Duration::from_millis(500),
        pexpect_script: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../harness/bench/pexpect_roundtrip.py"
        )
        .into(),
    };
    let b = transports(&rig, &dir.path().join("run"), &options).unwrap();
    assert_eq!(b.expected, "lab");
    let names: Vec<Transport> = b.pairs.iter().map(|p| p.transport).collect();
    assert_eq!(names, Transport::ALL.to_vec());
    for p in &b.pairs {
        assert_eq!((p.channel.samples, p.floor.samples), (20, 20), "{}", p.transport);
        assert!(p.channel.p50 > Duration::ZERO && p.floor.p50 > Duration::ZERO);
    }
    let pexpect_here = std::process::Command::new("python3")
        .args(["-c", "import pexpect"])
        .status()
        .is_ok_and(|s| s.success());
    match &b.pexpect {
        Measured::Done(s) => assert_eq!(s.samples, 20),
        Measured::Skipped(why) => {
            assert!(!pexpect_here, "pexpect is importable, yet: {why}");
            assert!(why.contains("pip install pexpect"), "{why}");
        }
    }
    let load = &b.rest_load;
    assert!(load.answered > 0, "{load:?}");
    assert_eq!(load.lost(), 0, "{load:?}");
    assert!(load.counts_agree(), "{load:?}");
    assert_eq!(load.max_clients_before, "4");
}

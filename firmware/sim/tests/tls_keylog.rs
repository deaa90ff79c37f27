//! The simulated module's TLS secrets decrypt its capture: a run in which the module, as TLS
//! client, exchanges data with a lab TLS server writes its session secrets (NSS key log), the
//! run gathers them into `<run>/keylog.txt`, and tshark, given that file, decrypts the case's
//! capture and finds the application data both ways. Needs root and tshark; without root the
//! test says so and returns, without tshark it fails under CI (`.ci/run` installs it).
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::capture::keylog::{KEYLOG_FILE, decrypt};
use gecko_hil::model::Verdict;
use gecko_hil::runner::run;
use gecko_hil::spec::load_dir;

const CASES: &str = r#"
[[case]]
id = "t/tls"
title = "TLS data both ways"
clauses = ["t.one"]
basis = "documented"
requires = ["lab"]
peers = [{ kind = "tls_server", port = 4433, cert = "server-p256", max_version = "TLSv1.2" }]
[case.setup]
set = { "wlan.ssid" = "lab", "network.tls.ca_cert" = "ca.pem", "bus.command.read_timeout" = "3000" }
pki_files = { "ca.pem" = "ca-p256" }
[[case.step]]
send = "network_up"
body = "Success"
[[case.step]]
send = "tls_client 10.77.0.5 4433"
body = "0"
[[case.step]]
send = "stream_write 0 19"
data = "secret from module!"
body = "Success"
[[case.step]]
wait = { stream = { handle = 0, poll = "data" } }
timeout_ms = 3000
[[case.step]]
send = "stream_read 0 100"
body = "secret from module!"
[[case.step]]
send = "stream_close 0"
body = "Success"
"#;

#[test]
fn the_modules_key_log_decrypts_its_capture() {
    if !common::is_root() {
        eprintln!("SKIPPED the_modules_key_log_decrypts_its_capture: needs root");
        return;
    }
    if std::process::Command::new("tshark").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "tshark is missing (apt-get install tshark)");
        eprintln!("SKIPPED the_modules_key_log_decrypts_its_capture: no tshark");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), CASES)).unwrap();
    let rig = common::open_lab_rig(dir.path());
    let options = common::options(dir.path().join("r"), 0, 1);
    let (result, report_dir) = run(&specs, &rig, &options).unwrap();
    assert_eq!(result.cases[0].verdict, Verdict::Pass, "{:?}", result.cases[0].reason);
    let keylog = report_dir.join(KEYLOG_FILE);
    let lines = std::fs::read_to_string(&keylog).unwrap();
    assert!(lines.lines().any(|l| l.starts_with("CLIENT_RANDOM ")), "key log: {lines:?}");
    let pcap = report_dir.join("captures").join("t__tls.pcap");
    let data = decrypt(&pcap, &keylog).unwrap();
    let from = |client: bool| -> Vec<u8> {
        data.iter().filter(|d| d.from_client == client).flat_map(|d| d.data.clone()).collect()
    };
    assert_eq!(from(true), b"secret from module!", "what the module sent, decrypted");
    assert_eq!(from(false), b"secret from module!", "the server's echo, decrypted");
    // Without the secrets, the capture holds no plaintext.
    let raw = std::fs::read(&pcap).unwrap();
    assert!(!raw.windows(19).any(|w| w == b"secret from module!"), "plaintext on the wire");
}

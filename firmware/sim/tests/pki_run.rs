//! A run that uses the lab PKI, end to end on the simulated module: the run's PKI is written
//! into `<run>/pki/`, the setup's `pki_files` land on the module byte for byte (as their
//! sizes in `ls` and the transcript show), the module's clock is set to the lab's now, a
//! `tls_server` peer starts with a PKI certificate; a case without the PKI touches neither
//! the clock nor the PKI. Needs root; without it the test says so and returns.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::model::{Direction, Verdict};
use gecko_hil::pki::{LAB_NOW, PkiRef};
use gecko_hil::runner::run;
use gecko_hil::spec::load_dir;

const CASES: &str = r#"
[[case]]
id = "t/pki"
title = "PKI files and the lab's now"
clauses = ["t.one"]
basis = "documented"
requires = ["lab"]
peers = [{ kind = "tls_server", port = 4433, cert = "server-rsa-chained", client_ca = "ca-p256" }]
[case.setup]
pki_files = { "ca.pem" = "ca-rsa", "client.der" = "client-p256.der", "client.key" = "client-p256.key" }
[[case.step]]
send = "ls"
body_regex = '^! # Size Version Filename\n# 0 \d+ 1\.0\.0\.0 ca\.pem\n# 1 \d+ 1\.0\.0\.0 client\.der\n# 2 \d+ 1\.0\.0\.0 client\.key$'
[[case.step]]
send = "get time.rtc"
body_regex = '^17802720[0-5]\d$'
[[case.step]]
check_peer = 0
check = { connections = 0 }

[[case]]
id = "t/plain"
title = "no PKI: the clock is left alone"
clauses = ["t.one"]
basis = "documented"
[[case.step]]
send = "get time.rtc"
body_regex = '^\d+$'
"#;

#[test]
fn a_run_puts_pki_files_on_the_module_at_the_lab_now() {
    if !common::is_root() {
        eprintln!("SKIPPED a_run_puts_pki_files_on_the_module_at_the_lab_now: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), CASES)).unwrap();
    let rig = common::open_lab_rig(dir.path());
    let options = common::options(dir.path().join("r"), 0, 1);
    let (result, report_dir) = run(&specs, &rig, &options).unwrap();
    let pki_case = &result.cases[0];
    assert_eq!(pki_case.verdict, Verdict::Pass, "{:?}", pki_case.reason);
    let sent: Vec<&str> = pki_case
        .transcript
        .iter()
        .filter(|e| e.dir == Direction::Tx)
        .map(|e| e.text.as_str())
        .collect();
    // Each file's size is its PKI bytes' size, as written into the run's folder.
    for (file, name, on_disk) in [
        ("ca.pem", "ca-rsa", "ca-rsa.pem"),
        ("client.der", "client-p256.der", "client-p256.der"),
        ("client.key", "client-p256.key", "client-p256.key.pem"),
    ] {
        let _: PkiRef = name.parse().unwrap();
        let len = std::fs::metadata(report_dir.join("pki").join(on_disk)).unwrap().len();
        let line = format!("file_create {file} {len}");
        assert!(sent.iter().any(|t| t.starts_with(&line)), "no `{line}` in {sent:?}");
    }
    let clock = format!("set time.rtc {LAB_NOW}");
    assert!(sent.iter().any(|t| t.starts_with(&clock)), "no `{clock}` in {sent:?}");
    let plain = &result.cases[1];
    assert_eq!(plain.verdict, Verdict::Pass, "{:?}", plain.reason);
    assert!(
        !plain.transcript.iter().any(|e| e.text.contains("time.rtc 17")),
        "the clock was set for a case without the PKI"
    );
}

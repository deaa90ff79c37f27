//! A run over the remote terminal on a rig with a lab network: the control channel sets the
//! module up (terminal enabled, network up), the harness connects from inside the lab, and a
//! case that would cut the terminal off is skipped with its reason. Needs root; without it the
//! test says so and returns. (A file of its own: lab tests in one process would see each
//! other's namespaces.)
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::model::Verdict;
use gecko_hil::runner::run;
use gecko_hil::spec::load_dir;

const TERMINAL_CASES: &str = r#"
[[case]]
id = "t/over-terminal"
title = "commands and raw bytes over the remote terminal, set up over the serial console"
clauses = ["t.one"]
basis = "documented"
[case.setup]
set = { "system.print_level" = "0" }
[[case.step]]
send = "set tcp.server.port 3100"
body = "Set OK"
[[case.step]]
get = { "tcp.server.port" = "3100", "system.print_level" = "0" }
[[case.step]]
raw = "get tcp.server.port\r\n"
expect_raw = "R000006\r\n3100\r\n"

[[case]]
id = "t/restarts"
title = "a case that reboots cannot run over the terminal"
clauses = ["t.one"]
basis = "documented"
[[case.step]]
reboot = true
"#;

#[test]
fn cases_run_over_the_remote_terminal_from_inside_the_lab() {
    if !common::is_root() {
        eprintln!("SKIPPED cases_run_over_the_remote_terminal_from_inside_the_lab: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), TERMINAL_CASES)).unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\ntransports = [\"serial\", \"terminal\"]\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n[lab]\n[[lab.ap]]\nssid = \"lab\"\nbssid = \"02:00:00:00:01:01\"\nchannel = 6\nsecurity = \"wpa2-aes\"\npasskey = \"labpass123\"\n",
            common::sim_binary()
        ),
    );
    let mut options = common::options(dir.path().join("r"), 0, 1);
    options.transports = Some(vec![gecko_hil::transport::Transport::Terminal]);
    let (result, _) = run(&specs, &rig, &options).unwrap();
    let over = &result.cases[0];
    assert_eq!(over.verdict, Verdict::Pass, "{:?}", over.reason);
    assert_eq!(over.transport, gecko_hil::transport::Transport::Terminal);
    let lines: Vec<&str> = over.transcript.iter().map(|e| e.text.as_str()).collect();
    assert!(lines.contains(&"[terminal] set tcp.server.port 3100"), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("[terminal] connected to terminal 10.77.0.")));
    let skipped = &result.cases[1];
    assert_eq!(skipped.verdict, Verdict::Skipped);
    let reason = skipped.reason.as_deref().unwrap();
    assert!(reason.contains("restarts the module"), "{reason}");
    assert!(common::our_namespaces().is_empty(), "left behind: {:?}", common::our_namespaces());
}

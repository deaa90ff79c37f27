//! The runner end to end: spec folder in, verdicts and report files out.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::model::Verdict;
use gecko_hil::runner::{RunOptions, run};
use gecko_hil::spec::{Selection, load_dir};

const CASES: &str = r#"
[[case]]
id = "t/pass"
title = "passes"
clauses = ["t.one"]
basis = "documented"
[[case.step]]
send = "set wlan.ssid x"
body = "Set OK"
[[case.step]]
get = { "wlan.ssid" = "x" }

[[case]]
id = "t/fail"
title = "the module answers something else"
clauses = ["t.one", "t.two"]
basis = "documented"
[[case.step]]
send = "get wlan.ssid"
body = "not what it says"

[[case]]
id = "t/deviation"
title = "listed as a known deviation"
clauses = ["t.two"]
basis = "documented"
[[case.step]]
send = "version"
code = 3

[[case]]
id = "t/rest-only"
title = "not for serial"
clauses = ["t.two"]
basis = "documented"
transports = ["rest"]
[[case.step]]
send = "version"
"#;

#[test]
fn verdicts_reports_and_deviations() {
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), CASES)).unwrap();
    std::fs::write(
        dir.path().join("dev.toml"),
        "[[deviation]]\ncase = \"t/deviation\"\nreason = \"answers 0\"\n",
    )
    .unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\nexpectations = \"dev.toml\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n",
            common::sim_binary()
        ),
    );
    let options = common::options(dir.path().join("reports"), 1, 1);
    let (result, report_dir) = run(&specs, &rig, &options).unwrap();
    let verdict = |id: &str| result.cases.iter().find(|c| c.id == id).unwrap().verdict;
    assert_eq!(verdict("t/pass"), Verdict::Pass);
    assert_eq!(verdict("t/fail"), Verdict::Fail);
    assert_eq!(verdict("t/deviation"), Verdict::KnownDeviation);
    assert_eq!(verdict("t/rest-only"), Verdict::Skipped);
    // Planned out before anything was sent, with the reason and the transport.
    let rest_only = result.cases.iter().find(|c| c.id == "t/rest-only").unwrap();
    assert_eq!(
        rest_only.reason.as_deref(),
        Some("not for the serial transport (the case is for rest)")
    );
    assert_eq!(rest_only.transport, gecko_hil::transport::Transport::Serial);
    assert_eq!(result.transports, [gecko_hil::transport::Transport::Serial]);
    let fail = result.cases.iter().find(|c| c.id == "t/fail").unwrap();
    assert!(
        fail.reason.as_deref().unwrap().contains("expected body `not what it says`"),
        "{:?}",
        fail.reason
    );
    assert!(!fail.transcript.is_empty());
    assert_eq!(
        result.clauses.iter().find(|c| c.id == "t.two").unwrap().status,
        gecko_hil::model::ClauseStatus::Fail
    );
    assert!(result.module_version.as_deref().unwrap().contains("Board:SIM-01"));
    for f in ["results.json", "junit.xml", "summary.md", "report.html"] {
        assert!(report_dir.join(f).is_file(), "{f}");
    }
    assert!(dir.path().join("reports/latest/results.json").is_file());
    let junit = std::fs::read_to_string(report_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    assert!(!result.totals.is_green());
}

#[test]
fn a_stale_deviation_turns_the_run_red() {
    let dir = tempfile::tempdir().unwrap();
    let cases = &CASES[..CASES.find("[[case]]\nid = \"t/fail\"").unwrap()];
    let specs = load_dir(&common::specs_dir(dir.path(), cases)).unwrap();
    std::fs::write(
        dir.path().join("dev.toml"),
        "[[deviation]]\ncase = \"t/pass\"\nreason = \"was broken\"\n",
    )
    .unwrap();
    let rig = common::write_rig(
        dir.path(),
        &format!(
            "name = \"t\"\nexpectations = \"dev.toml\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n",
            common::sim_binary()
        ),
    );
    let options = common::options(dir.path().join("r"), 0, 1);
    let (result, _) = run(&specs, &rig, &options).unwrap();
    assert_eq!(result.totals.pass, 1);
    assert_eq!(result.totals.stale_deviations, 1);
    assert!(!result.totals.is_green());
}

#[test]
fn a_missing_module_binary_makes_errors_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), CASES)).unwrap();
    let rig = common::write_rig(
        dir.path(),
        "name = \"t\"\n[dut]\nkind = \"sim\"\nbinary = \"/nonexistent/gecko-sim\"\n",
    );
    let options = RunOptions {
        selection: Selection { prefixes: vec!["t/pass".into()], ..Selection::default() },
        ..common::options(dir.path().join("r"), 0, 1)
    };
    let (result, dir) = run(&specs, &rig, &options).unwrap();
    assert_eq!(result.cases.len(), 1);
    assert_eq!(result.cases[0].verdict, Verdict::Error);
    assert!(
        result.cases[0].reason.as_deref().unwrap().contains("/nonexistent/gecko-sim"),
        "{:?}",
        result.cases[0].reason
    );
    assert!(dir.join("report.html").is_file(), "the report is written even so");
}

#[test]
fn parallel_jobs_give_the_same_verdicts_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), CASES)).unwrap();
    let rig = common::sim_rig(dir.path());
    let run_with = |jobs: usize| {
        let options = common::options(dir.path().join(format!("r{jobs}")), 0, jobs);
        let (result, _) = run(&specs, &rig, &options).unwrap();
        result.cases.iter().map(|c| (c.id.clone(), c.verdict)).collect::<Vec<_>>()
    };
    let one = run_with(1);
    assert_eq!(one.len(), 4);
    assert_eq!(run_with(3), one);
    assert!(dir.path().join("r3").read_dir().unwrap().count() > 0);
}

#[test]
fn a_module_left_unreachable_does_not_turn_every_later_case_into_an_error() {
    const BREAKS: &str = r#"
[[case]]
id = "t/breaks-the-console"
title = "leaves the module's bus in stream mode"
clauses = ["t.one"]
basis = "documented"
[case.setup]
set = { "bus.mode" = "stream" }
save = true
[[case.step]]
raw = 'reboot\r\n'
expect_raw = 'R000011\r\nRebooting\r\n'
[[case.step]]
send = "version"

[[case]]
id = "t/next"
title = "the case after it"
clauses = ["t.one"]
basis = "documented"
[[case.step]]
get = { "bus.mode" = "command" }

[[case]]
id = "t/after-next"
title = "the one after that"
clauses = ["t.one"]
basis = "documented"
[[case.step]]
get = { "bus.mode" = "command" }
"#;
    let dir = tempfile::tempdir().unwrap();
    let specs = load_dir(&common::specs_dir(dir.path(), BREAKS)).unwrap();
    let rig = common::sim_rig(dir.path());
    let verdicts = |retries: u32| {
        let options = common::options(dir.path().join(format!("r{retries}")), retries, 1);
        let (result, _) = run(&specs, &rig, &options).unwrap();
        result.cases.iter().map(|c| c.verdict).collect::<Vec<_>>()
    };
    // Without retries one case pays for the broken state, the next runs on a fresh module.
    assert_eq!(verdicts(0), vec![Verdict::Fail, Verdict::Error, Verdict::Pass]);
    // With a retry, the case after it passes on a fresh module too.
    assert_eq!(verdicts(1), vec![Verdict::Fail, Verdict::Pass, Verdict::Pass]);
}

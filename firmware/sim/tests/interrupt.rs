//! A run stopped by Ctrl-C still writes its (partial) report. Its own test binary: the
//! interrupt flag is process-wide.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::model::Verdict;
use gecko_hil::runner::run;
use gecko_hil::spec::load_dir;

#[test]
fn an_interrupted_run_writes_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let cases = r#"
[[case]]
id = "t/a"
title = "a"
clauses = ["t.one"]
basis = "documented"
[[case.step]]
send = "version"
"#;
    let specs = load_dir(&common::specs_dir(dir.path(), cases)).unwrap();
    let rig = common::sim_rig(dir.path());
    gecko_hil::interrupt::request();
    let options = common::options(dir.path().join("r"), 0, 1);
    let (result, report_dir) = run(&specs, &rig, &options).unwrap();
    assert!(result.interrupted);
    assert_eq!(result.cases[0].verdict, Verdict::Skipped);
    let back = gecko_hil::report::load_results(&report_dir.join("results.json")).unwrap();
    assert!(back.interrupted);
}

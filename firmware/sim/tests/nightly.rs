//! Two nightly runs on the simulated module, as `hil nightly` makes them: the second finds the
//! first, and only what newly fails counts against it.
#![allow(clippy::unwrap_used)]

mod common;

use gecko_hil::campaign::{CampaignOptions, nightly};
use gecko_hil::report::nightly::{DIFF_VS_PREVIOUS, NIGHTLY_MD, Thresholds};
use gecko_hil::spec::{Selection, load_dir};

/// Four quick console cases; `{flip}` is what `t/flip` expects `set wlan.ssid y` to answer.
fn cases(flip: &str) -> String {
    format!(
        r#"
[[case]]
id = "t/pass"
title = "passes"
clauses = ["t.one"]
basis = "documented"
[[case.step]]
send = "set wlan.ssid x"
body = "Set OK"

[[case]]
id = "t/flip"
title = "passes on the first night only"
clauses = ["t.two"]
basis = "documented"
[[case.step]]
send = "set wlan.ssid y"
body = "{flip}"

[[case]]
id = "t/fail"
title = "fails every night"
clauses = ["t.two"]
basis = "documented"
[[case.step]]
send = "get wlan.ssid"
body = "not what it says"

[[case]]
id = "t/deviation"
title = "a known deviation"
clauses = ["t.two"]
basis = "documented"
[[case.step]]
send = "version"
code = 3
"#
    )
}

#[test]
fn the_second_night_fails_only_on_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dev.toml"),
        "[[deviation]]\ncase = \"t/deviation\"\nreason = \"answers 0\"\n",
    )
    .unwrap();
    let rig_path = dir.path().join("rig.toml");
    std::fs::write(
        &rig_path,
        format!(
            "name = \"sim\"\nexpectations = \"dev.toml\"\n[dut]\nkind = \"sim\"\nbinary = \"{}\"\n",
            common::sim_binary()
        ),
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let options = CampaignOptions {
        selection: Selection { prefixes: vec!["t/".into()], ..Selection::default() },
        retries: 0,
        jobs: 1,
        transports: None,
        progress: false,
    };
    let night = |flip: &str| {
        let specs = load_dir(&common::specs_dir(dir.path(), &cases(flip))).unwrap();
        nightly(&specs, std::slice::from_ref(&rig_path), &reports, &options, Thresholds::default())
            .unwrap()
    };

    let first = night("Set OK");
    let one = &first.night.rigs[0];
    assert!(first.night.broken.is_empty(), "{:?}", first.night.broken);
    assert_eq!(one.previous, None);
    let keys = |v: &[gecko_hil::report::nightly::Entry]| {
        v.iter().map(|e| e.key.clone()).collect::<Vec<_>>()
    };
    // No previous nightly: every failure counts.
    assert_eq!(keys(&one.new_failures), ["t/fail"], "{one:?}");
    assert!(first.night.is_fatal());
    assert!(first.folder.join(NIGHTLY_MD).is_file());
    assert!(first.folder.join("sim/results.json").is_file());
    assert!(!first.folder.join("sim").join(DIFF_VS_PREVIOUS).exists());

    let second = night("something else");
    let two = &second.night.rigs[0];
    let stamp = first.folder.file_name().unwrap().to_str().unwrap();
    assert_eq!(two.previous.as_ref().map(|p| p.nightly.as_str()), Some(stamp));
    assert_eq!(keys(&two.new_failures), ["t/flip"], "{two:?}");
    assert_eq!(keys(&two.still_failing), ["t/fail"]);
    assert_eq!(keys(&two.known_deviations), ["t/deviation"]);
    assert_eq!(two.known_deviations[0].reason.as_deref(), Some("answers 0"));
    assert!(second.night.is_fatal(), "a new failure fails the night");
    let diff = std::fs::read_to_string(second.folder.join("sim").join(DIFF_VS_PREVIOUS)).unwrap();
    assert!(
        diff.contains("## New failures (1)") && diff.contains("`t/flip` (pass → fail)"),
        "{diff}"
    );
    let summary = std::fs::read_to_string(second.folder.join(NIGHTLY_MD)).unwrap();
    assert!(summary.contains("**Failed: sim (1 new failure).**"), "{summary}");

    // The same again: the failure is old now, and nothing else is new.
    let third = night("something else");
    assert!(!third.night.is_fatal(), "{:?}", third.night.rigs[0]);
    assert_eq!(keys(&third.night.rigs[0].still_failing), ["t/flip", "t/fail"]);
}

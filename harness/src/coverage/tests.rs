use super::*;
use crate::model::Coverage::{Checked, Named, Uncovered};
use crate::model::Verdict::{Error, Fail, KnownDeviation, Pass, Skipped};
use rstest::rstest;
use std::path::Path;

#[rstest]
#[case::no_citation(&[], Uncovered)]
#[case::cited_no_run(&[None], Named)]
#[case::cited_twice_no_run(&[None, None], Named)]
#[case::passed(&[Some(Pass)], Checked)]
#[case::failed(&[Some(Fail)], Named)]
#[case::errored(&[Some(Error)], Named)]
#[case::skipped(&[Some(Skipped)], Named)]
#[case::known_deviation(&[Some(KnownDeviation)], Named)]
#[case::all_bad(&[Some(Fail), Some(Skipped), Some(KnownDeviation), None], Named)]
#[case::one_pass_among_failures(&[Some(Fail), Some(Pass), Some(Error)], Checked)]
#[case::pass_and_not_in_run(&[None, Some(Pass)], Checked)]
fn classification(#[case] citations: &[Option<Verdict>], #[case] want: Coverage) {
    assert_eq!(classify(citations.iter().copied()), want);
}

#[test]
fn tallies_keep_section_order_and_sum() {
    let sections = tally_sections([
        ("chapter", "B", Checked),
        ("chapter", "A", Named),
        ("chapter", "B", Uncovered),
        ("protocol-facts", "B", Checked),
    ]);
    let names: Vec<(&str, &str)> =
        sections.iter().map(|s| (s.source.as_str(), s.section.as_str())).collect();
    assert_eq!(names, [("chapter", "B"), ("chapter", "A"), ("protocol-facts", "B")]);
    assert_eq!(sections[0].tally, Tally { checked: 1, named: 0, uncovered: 1 });
    let chapter = total(&sections, Some("chapter"));
    assert_eq!((chapter.cited(), chapter.total()), (2, 3));
    assert_eq!(total(&sections, None), Tally { checked: 2, named: 1, uncovered: 1 });
}

const INVENTORY: &str = r#"
[[clause]]
id = "smtp.send"
section = "SMTP Client"
source = "chapter"
kind = "feature"
lines = [10, 10]
text = "The SMTP client sends email."

[[clause]]
id = "vars.email"
section = "Variables: email"
source = "protocol-facts"
kind = "variable"
lines = [20, 20]
text = "email.smtp.host exists."

[[clause]]
id = "cmd.set"
section = "Commands"
source = "protocol-facts"
kind = "command"
lines = [30, 30]
text = "set answers Set OK."

[[clause]]
id = "tcp.connect"
section = "TCP Client"
source = "chapter"
kind = "behaviour"
lines = [40, 40]
text = "tcp_client connects."

[[clause]]
id = "tls.error.5011"
section = "TLS Errors"
source = "chapter"
kind = "behaviour"
lines = [50, 50]
text = "5011 ERROR_NO_SESSION_FOUND."
unreachable = "session resumption is not built"
"#;

/// A specs folder in a temporary directory: the inventory above and `cases` as `x.toml`.
fn specs(cases: &str) -> (tempfile::TempDir, Specs) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("clauses.toml"), INVENTORY).expect("write inventory");
    std::fs::write(dir.path().join("x.toml"), format!("section = \"x\"\ntitle = \"X\"\n{cases}"))
        .expect("write cases");
    let specs = crate::spec::load_dir(dir.path()).expect("specs load");
    (dir, specs)
}

/// One case citing `smtp.send` with the given steps (TOML) and case keys.
fn case_toml(id: &str, keys: &str, steps: &str) -> String {
    format!(
        "\n[[case]]\nid = \"x/{id}\"\ntitle = \"t\"\nclauses = [\"smtp.send\"]\n\
         basis = \"documented\"\n{keys}\n{steps}\n"
    )
}

const STEP_SET: &str = "[[case.step]]\nsend = \"set email.smtp.host h\"\nbody = \"Set OK\"";
const STEP_GET: &str = "[[case.step]]\nget = { \"email.smtp.host\" = \"h\" }";

#[rstest]
#[case::get_step_only("", STEP_GET, true)]
#[case::set_then_get("", &format!("{STEP_SET}\n{STEP_GET}"), true)]
#[case::bounds_refused("", "[[case.step]]\nsend = \"set email.smtp.port 70000\"\ncode = 5", true)]
#[case::save_reboot_get("", &format!("{STEP_SET}\n[[case.step]]\nsend = \"save\"\nbody = \"Success\"\n[[case.step]]\nreboot = true\n{STEP_GET}"), true)]
#[case::load_and_factory_reset("", &format!("[[case.step]]\nsend = \"load\"\n[[case.step]]\nfactory_reset = true\n{STEP_GET}"), true)]
#[case::power_cycle_and_pause("", &format!("[[case.step]]\npower_cycle = true\n[[case.step]]\nidle_ms = 10\nprescribed_by = \"cmd.set\"\n{STEP_GET}"), true)]
#[case::wait_for_a_variable(
    "",
    "[[case.step]]\nwait = { send = \"get email.smtp.host\", body = \"h\" }\ntimeout_ms = 100",
    true
)]
#[case::wait_for_a_stream("", &format!("{STEP_SET}\n[[case.step]]\nwait = {{ stream = {{ type = \"TCPC\" }} }}\ntimeout_ms = 100"), false)]
#[case::shortcut_case_insensitive("", "[[case.step]]\nsend = \"GET em s h\"", true)]
#[case::only_reboots("", "[[case.step]]\nreboot = true", false)]
#[case::other_command("", &format!("{STEP_SET}\n[[case.step]]\nsend = \"smtp_send a@b c\""), false)]
#[case::set_with_log_check(
    "",
    "[[case.step]]\nsend = \"set system.cmd.timestamp utc\"\nlogs = ['^x$']",
    false
)]
#[case::set_with_reply_time(
    "",
    "[[case.step]]\nsend = \"set wlan.ssid x\"\ntook_ms = [0, 10]",
    false
)]
#[case::raw_bytes("", &format!("{STEP_SET}\n[[case.step]]\nraw = \"get em s h\\r\\n\"\nexpect_raw_regex = \"^R0\""), false)]
#[case::needs_the_lab("requires = [\"lab\"]", STEP_GET, false)]
#[case::lab_step("requires = [\"lab\"]", &format!("{STEP_SET}\n[[case.step]]\nclient = {{ connect = 25 }}"), false)]
fn variable_case_definition(#[case] keys: &str, #[case] steps: &str, #[case] want: bool) {
    let (_dir, specs) = specs(&case_toml("c", keys, steps));
    assert_eq!(is_variable_case(&specs.cases[0]), want, "steps:\n{steps}");
}

#[test]
fn feature_cited_only_by_variable_cases_is_flagged_with_file_and_line() {
    let cases = [case_toml("get", "", STEP_GET), case_toml("set", "", STEP_SET)].concat();
    let (dir, specs) = specs(&cases);
    let weak = weak_citations(&specs);
    assert_eq!(weak.len(), 1, "{weak:?}");
    let w = &weak[0];
    assert_eq!((w.clause.as_str(), w.kind), ("smtp.send", ClauseKind::Feature));
    let x = dir.path().join("x.toml");
    assert_eq!(
        w.cases,
        [
            ("x/get".to_string(), Origin { file: x.clone(), line: 4 }),
            ("x/set".to_string(), Origin { file: x.clone(), line: 13 }),
        ]
    );
    let text = w.to_string();
    assert!(text.starts_with("feature clause `smtp.send` ("), "{text}");
    assert!(text.contains(&format!("{}:4: case `x/get`", x.display())), "{text}");
    assert!(text.contains(&format!("{}:13: case `x/set`", x.display())), "{text}");
}

#[test]
fn one_case_that_observes_the_feature_clears_it() {
    let cases = [
        case_toml("get", "", STEP_GET),
        case_toml("send", "", "[[case.step]]\nsend = \"smtp_send a@b c\"\nbody = \"Success\""),
    ]
    .concat();
    let (_dir, specs) = specs(&cases);
    assert_eq!(weak_citations(&specs), []);
}

#[test]
fn variable_and_command_clauses_may_rest_on_variable_cases() {
    let case = format!(
        "\n[[case]]\nid = \"x/host\"\ntitle = \"t\"\nclauses = [\"vars.email\", \"cmd.set\"]\n\
         basis = \"documented\"\n{STEP_SET}\n"
    );
    let (_dir, specs) = specs(&case);
    assert!(is_variable_case(&specs.cases[0]));
    assert_eq!(weak_citations(&specs), []);
}

/// The project's own spec tables keep the rule (`hil check` enforces it too).
#[test]
fn the_project_specs_cite_no_feature_through_variable_cases_only() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let specs = crate::spec::load_dir(&dir).expect("the project's specs load");
    let weak: Vec<String> = weak_citations(&specs).iter().map(ToString::to_string).collect();
    assert!(weak.is_empty(), "{}", weak.join("\n"));
}

fn sample_specs() -> (tempfile::TempDir, Specs) {
    let cases = [
        case_toml("get", "", STEP_GET).replace("[\"smtp.send\"]", "[\"vars.email\", \"cmd.set\"]"),
        case_toml("connect", "", "[[case.step]]\nsend = \"tcp_client h 1\"")
            .replace("[\"smtp.send\"]", "[\"tcp.connect\"]"),
    ]
    .concat();
    specs(&cases)
}

#[test]
fn list_snapshot_without_a_run() {
    let (_dir, specs) = sample_specs();
    insta::assert_snapshot!("list_coverage_static", render_list(&specs, None, true));
}

#[test]
fn list_snapshot_with_a_run() {
    let (_dir, specs) = sample_specs();
    let mut run = crate::testdata::sample_run();
    // The run passed x/get and failed x/connect; smtp.send stays uncovered.
    let mut pass = run.cases[0].clone();
    pass.id = "x/get".into();
    pass.verdict = Pass;
    let mut fail = run.cases[0].clone();
    fail.id = "x/connect".into();
    fail.verdict = Fail;
    run.cases = vec![pass, fail];
    let r = RunRef { run: &run, path: "reports/latest/results.json".into() };
    insta::assert_snapshot!("list_coverage_with_run", render_list(&specs, Some(&r), true));
}

#[test]
fn report_coverage_comes_from_the_verdicts() {
    let run = crate::testdata::sample_run();
    for (clause, coverage) in of_run(&run) {
        assert_eq!(clause.coverage, Some(coverage), "{}", clause.id);
    }
    let all = total(&run_sections(&run), None);
    assert_eq!(all.total(), run.clauses.len());
    assert!(all.checked > 0 && all.named > 0 && all.uncovered > 0, "{all:?}");
}

#[test]
fn a_case_counts_with_every_transport_it_ran_over() {
    // Skipped over one transport, passed over another: the clause is checked.
    let verdicts = std::collections::HashMap::from([("x/a", vec![Skipped, Pass])]);
    assert_eq!(classify_cases(["x/a"].into_iter(), &verdicts), Checked);
    assert_eq!(classify_cases(["x/b"].into_iter(), &verdicts), Named);
    assert_eq!(classify_cases(std::iter::empty(), &verdicts), Uncovered);
}

#[test]
fn an_unreachable_clause_is_listed_apart_and_may_not_be_cited() {
    let (_dir, specs) = specs(&case_toml("get", "", STEP_GET));
    assert_eq!(unreachable_cited(&specs), Vec::<String>::new());
    let list = render_list(&specs, None, true);
    assert!(list.contains("(1 of them unreachable on this module)"), "{list}");
    assert!(
        list.contains("  tls.error.5011  5011 ERROR_NO_SESSION_FOUND.\n      why: session resumption is not built"),
        "{list}"
    );
    let uncovered =
        list.split("\nuncovered:\n").nth(1).and_then(|s| s.split("\nunreachable").next());
    assert!(!uncovered.unwrap_or("").contains("tls.error.5011"), "{list}");

    let citing = "\n[[case]]\nid = \"x/tls\"\ntitle = \"t\"\nclauses = [\"tls.error.5011\"]\nbasis = \"documented\"\n[[case.step]]\nsend = \"ver\"\n";
    let (_dir2, cited) = self::specs(citing);
    let found = unreachable_cited(&cited);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("clause `tls.error.5011` ("), "{}", found[0]);
    assert!(found[0].contains("cited by `x/tls` ("), "{}", found[0]);
}

//! `junit.xml`: one `<testsuite>` per section (in run order), one `<testcase>` per case.
//!
//! * `name` = the case id, with `@<transport>` for a transport other than serial
//!   (`tcp/echo@rest`: a case run over several transports has one testcase each),
//!   `classname` = section, `time` = the case's duration.
//! * fail → `<failure>`, error → `<error>` (message = the reason, text = the failing steps);
//!   skipped → `<skipped>` with the reason; known deviation → `<skipped type="known_deviation">`
//!   with the expectations file's text (and what actually happened as its text).
//! * The transcript goes into the case's `<system-out>`, one line per entry
//!   (`+12.3ms tx get wlan.ssid`, control characters as `\xHH`).
//! * Every suite carries the run's properties (run id, rig, module version, ...); a case carries
//!   its basis and clauses, its attempts when retried, and `stale_deviation` when its
//!   expectations entry is stale.

use std::time::Duration;

use quick_junit::{
    NonSuccessKind, Property, Report, SerializeError, TestCase, TestCaseStatus, TestSuite,
};

use super::text::{self, visible, visible_lines};
use crate::model::{Basis, CaseResult, RunResult, StepOutcome, Verdict};

/// Renders `junit.xml`.
pub fn render_junit(run: &RunResult) -> Result<String, SerializeError> {
    build_report(run).to_string()
}

/// The `quick-junit` report for a run (for callers that want to add to it).
pub fn build_report(run: &RunResult) -> Report {
    let mut report = Report::new(format!("gecko-hil {}", run.run_id));
    report.set_time(Duration::from_millis(run.duration_ms));
    let properties = run_properties(run);
    for (section, cases) in text::group_by(&run.cases, |c| c.section.as_str()) {
        let mut suite = TestSuite::new(section);
        suite.extra.insert("timestamp".into(), run.started_at.as_str().into());
        suite.extra.insert("hostname".into(), run.rig.name.as_str().into());
        suite.add_properties(properties.iter().cloned());
        let time: u64 = cases.iter().map(|c| c.duration_ms).sum();
        suite.set_time(Duration::from_millis(time));
        suite.add_test_cases(cases.into_iter().map(test_case));
        report.add_test_suite(suite);
    }
    report
}

fn run_properties(run: &RunResult) -> Vec<Property> {
    let mut p = vec![
        Property::new("run_id", &run.run_id),
        Property::new("schema", &run.schema),
        Property::new("rig", &run.rig.name),
        Property::new("rig_kind", &run.rig.kind),
        Property::new("rig_path", &run.rig.path),
        Property::new("port", &run.rig.port),
        Property::new("module_version", visible(run.module_version.as_deref().unwrap_or(""))),
        Property::new("selection", &run.selection),
        Property::new("started_at", &run.started_at),
        Property::new("finished_at", &run.finished_at),
    ];
    if run.interrupted {
        p.push(Property::new("interrupted", "true"));
    }
    p
}

fn test_case(case: &CaseResult) -> TestCase {
    let reason = case.reason.as_deref().map(visible);
    let status = match case.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Fail | Verdict::Error => {
            let kind = if case.verdict == Verdict::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_type(text::verdict_slug(case.verdict));
            s.set_message(reason.as_deref().unwrap_or(case.verdict.as_str()));
            let steps = failing_steps(case);
            if !steps.is_empty() {
                s.set_description(steps);
            }
            s
        }
        Verdict::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_type("skipped");
            s.set_message(reason.as_deref().unwrap_or("skipped"));
            s
        }
        Verdict::KnownDeviation => {
            let mut s = TestCaseStatus::skipped();
            s.set_type("known_deviation");
            let deviation = case.deviation.as_deref().map(visible);
            s.set_message(format!(
                "known deviation: {}",
                deviation.as_deref().unwrap_or("(no reason given)")
            ));
            let mut description = String::new();
            if let Some(reason) = &reason {
                description.push_str(reason);
            }
            let steps = failing_steps(case);
            if !steps.is_empty() {
                if !description.is_empty() {
                    description.push('\n');
                }
                description.push_str(&steps);
            }
            if !description.is_empty() {
                s.set_description(description);
            }
            s
        }
    };

    let mut tc = TestCase::new(case.key(), status);
    tc.set_classname(case.section.as_str());
    tc.set_time(Duration::from_millis(case.duration_ms));
    tc.add_property(Property::new(
        "basis",
        match case.basis {
            Basis::Documented => "documented",
            Basis::Assumed => "assumed",
        },
    ));
    tc.add_property(Property::new("clauses", case.clauses.join(" ")));
    tc.add_property(Property::new("transport", case.transport.name()));
    if case.attempts > 1 {
        tc.add_property(Property::new("attempts", case.attempts.to_string()));
    }
    if case.stale_deviation {
        let deviation = case.deviation.as_deref().map(visible);
        tc.add_property(Property::new(
            "stale_deviation",
            format!(
                "listed as a known deviation ({}), yet passed: remove the entry",
                deviation.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    if !case.transcript.is_empty() {
        let mut out: String =
            case.transcript.iter().map(|e| text::transcript_line(e) + "\n").collect();
        if out.ends_with('\n') {
            out.pop();
        }
        tc.set_system_out(out);
    }
    tc
}

/// The steps that failed or errored, one per line: `step 2 get wlan.passkey: failed: was "x"`.
fn failing_steps(case: &CaseResult) -> String {
    case.steps
        .iter()
        .filter(|s| matches!(s.outcome, StepOutcome::Failed | StepOutcome::Error))
        .map(|s| {
            let mut line =
                format!("step {} {}: {}", s.index, visible(&s.action), text::outcome(s.outcome));
            if let Some(m) = &s.message {
                line.push_str(": ");
                line.push_str(&visible_lines(m));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::testdata::sample_run;

    #[test]
    fn junit_snapshot() {
        let xml = render_junit(&sample_run()).unwrap();
        insta::assert_snapshot!("junit_xml", xml);
    }

    #[test]
    fn each_transport_of_a_case_is_its_own_testcase() {
        let xml = render_junit(&crate::testdata::sample_multi_transport_run()).unwrap();
        for name in ["passkeys/ascii/min-length", "passkeys/ascii/min-length@rest"] {
            assert_eq!(xml.matches(&format!("<testcase name=\"{name}\"")).count(), 1, "{name}");
        }
        assert!(xml.contains(r#"<property name="transport" value="rest"/>"#), "{xml}");
    }

    #[test]
    fn junit_counts_and_escaping() {
        let xml = render_junit(&sample_run()).unwrap();
        assert!(xml.contains(r#"<testsuites name="gecko-hil 20250101-120000-sim-a" tests="6" skipped="2" failures="1" errors="1""#), "{xml}");
        assert!(!xml.contains("<script>"));
        assert!(xml.contains("&lt;script&gt;"));
        assert!(!xml.contains('\x1b'));
        assert!(xml.contains(r"\x1b[2J\x07"));
    }
}

//! Comparing two runs (`before`, usually the baseline, and `after`).
//!
//! Results are matched by case id and transport ([`crate::model::CaseResult::key`]: `tcp/echo@rest`), so a
//! case run over several transports is compared transport by transport. "Failing" means fail
//! or error.
//!
//! * new failures: failing now and not failing before, including cases new in `after`;
//! * fixed: failing before, passing now;
//! * still failing: failing in both;
//! * other changes: any other change of verdict of a case in both runs (e.g. pass → skipped,
//!   fail → known deviation);
//! * new cases / removed cases: in only one of the runs (a new failing case is listed both here
//!   and under new failures).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::markdown::{code, md};
use super::text;
use crate::model::{RunResult, Totals, Verdict};

/// What identifies a run in a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: String,
    pub rig: String,
    pub module_version: Option<String>,
    pub selection: String,
    pub interrupted: bool,
    pub totals: Totals,
}

impl RunSummary {
    fn of(run: &RunResult) -> Self {
        RunSummary {
            run_id: run.run_id.clone(),
            rig: run.rig.name.clone(),
            module_version: run.module_version.clone(),
            selection: run.selection.clone(),
            interrupted: run.interrupted,
            totals: run.totals,
        }
    }
}

/// One case over one transport in a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffEntry {
    pub id: String,
    /// The case id with its transport, as [`crate::model::CaseResult::key`] gives it.
    pub key: String,
    pub title: String,
    /// `None`: the case is not in the `before` run.
    pub before: Option<Verdict>,
    /// `None`: the case is not in the `after` run.
    pub after: Option<Verdict>,
    /// The reason of the run the entry is about (`after`, or `before` for a removed case).
    pub reason: Option<String>,
}

/// The difference between two runs. Every list is in the order of the `after` run's cases
/// (removed cases: of the `before` run's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDiff {
    pub before: RunSummary,
    pub after: RunSummary,
    pub new_failures: Vec<DiffEntry>,
    pub fixed: Vec<DiffEntry>,
    pub still_failing: Vec<DiffEntry>,
    pub other_changes: Vec<DiffEntry>,
    pub new_cases: Vec<DiffEntry>,
    pub removed_cases: Vec<DiffEntry>,
}

impl RunDiff {
    /// Something fails now that did not before.
    pub fn has_regressions(&self) -> bool {
        !self.new_failures.is_empty()
    }
}

/// Compares two runs.
pub fn diff_runs(before: &RunResult, after: &RunResult) -> RunDiff {
    let keyed = |run: &'_ RunResult| -> HashMap<(String, crate::model::Transport), Verdict> {
        run.cases.iter().map(|c| ((c.id.clone(), c.transport), c.verdict)).collect()
    };
    let (old, new) = (keyed(before), keyed(after));

    let mut diff = RunDiff {
        before: RunSummary::of(before),
        after: RunSummary::of(after),
        new_failures: Vec::new(),
        fixed: Vec::new(),
        still_failing: Vec::new(),
        other_changes: Vec::new(),
        new_cases: Vec::new(),
        removed_cases: Vec::new(),
    };

    for case in &after.cases {
        let was = old.get(&(case.id.clone(), case.transport)).copied();
        let entry = DiffEntry {
            id: case.id.clone(),
            key: case.key(),
            title: case.title.clone(),
            before: was,
            after: Some(case.verdict),
            reason: case.reason.clone(),
        };
        let failing_now = text::is_failing(case.verdict);
        let failing_before = was.is_some_and(text::is_failing);
        if was.is_none() {
            diff.new_cases.push(entry.clone());
        }
        if failing_now && !failing_before {
            diff.new_failures.push(entry);
        } else if failing_now && failing_before {
            diff.still_failing.push(entry);
        } else if failing_before && case.verdict == Verdict::Pass {
            diff.fixed.push(entry);
        } else if was.is_some_and(|w| w != case.verdict) {
            diff.other_changes.push(entry);
        }
    }
    for case in &before.cases {
        if !new.contains_key(&(case.id.clone(), case.transport)) {
            diff.removed_cases.push(DiffEntry {
                id: case.id.clone(),
                key: case.key(),
                title: case.title.clone(),
                before: Some(case.verdict),
                after: None,
                reason: case.reason.clone(),
            });
        }
    }
    diff
}

/// Renders a diff as Markdown (for a PR comment or a CI job summary).
pub fn render_diff_markdown(diff: &RunDiff) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_diff(&mut out, diff);
    out
}

fn write_diff(o: &mut String, d: &RunDiff) -> std::fmt::Result {
    writeln!(o, "# Run {} compared with {}\n", code(&d.after.run_id), code(&d.before.run_id))?;
    if d.has_regressions() {
        writeln!(
            o,
            "**{} new failure{}.**\n",
            d.new_failures.len(),
            if d.new_failures.len() == 1 { "" } else { "s" }
        )?;
    } else {
        writeln!(o, "**No new failures.**\n")?;
    }

    writeln!(o, "| | Before | After |\n|---|---|---|")?;
    writeln!(o, "| Run | {} | {} |", cell_code(&d.before.run_id), cell_code(&d.after.run_id))?;
    writeln!(o, "| Rig | {} | {} |", md(&d.before.rig), md(&d.after.rig))?;
    let version = |v: &Option<String>| match v {
        Some(v) => md(v),
        None => "*did not answer*".to_string(),
    };
    writeln!(
        o,
        "| Module version | {} | {} |",
        version(&d.before.module_version),
        version(&d.after.module_version)
    )?;
    writeln!(
        o,
        "| Selection | {} | {} |",
        cell_code(&d.before.selection),
        cell_code(&d.after.selection)
    )?;
    let (b, a) = (&d.before.totals, &d.after.totals);
    for (name, x, y) in [
        ("Pass", b.pass, a.pass),
        ("Fail", b.fail, a.fail),
        ("Error", b.error, a.error),
        ("Skipped", b.skipped, a.skipped),
        ("Known deviation", b.known_deviation, a.known_deviation),
        ("Stale deviations", b.stale_deviations, a.stale_deviations),
        ("Total", b.total(), a.total()),
    ] {
        writeln!(o, "| {name} | {x} | {y}{} |", delta(x, y))?;
    }
    if d.before.interrupted || d.after.interrupted {
        let yes = |i: bool| if i { "**yes**" } else { "no" };
        writeln!(
            o,
            "| Interrupted | {} | {} |",
            yes(d.before.interrupted),
            yes(d.after.interrupted)
        )?;
    }
    writeln!(o)?;

    write_list(o, "New failures", &d.new_failures)?;
    write_list(o, "Fixed", &d.fixed)?;
    write_list(o, "Still failing", &d.still_failing)?;
    write_list(o, "Other changes", &d.other_changes)?;
    write_list(o, "New cases", &d.new_cases)?;
    write_list(o, "Removed cases", &d.removed_cases)?;
    Ok(())
}

fn write_list(o: &mut String, heading: &str, entries: &[DiffEntry]) -> std::fmt::Result {
    writeln!(o, "## {heading} ({})\n", entries.len())?;
    if entries.is_empty() {
        return writeln!(o, "None.\n");
    }
    for e in entries {
        write!(o, "- {} {}: {}", code(&e.key), transition(e.before, e.after), md(&e.title))?;
        if let Some(reason) = &e.reason {
            write!(o, " — {}", md(reason))?;
        }
        writeln!(o)?;
    }
    writeln!(o)
}

fn transition(before: Option<Verdict>, after: Option<Verdict>) -> String {
    let name = |v: Option<Verdict>| v.map_or("absent", Verdict::as_str);
    format!("({} → {})", name(before), name(after))
}

fn delta(before: usize, after: usize) -> String {
    match after.cmp(&before) {
        std::cmp::Ordering::Equal => String::new(),
        std::cmp::Ordering::Greater => format!(" (+{})", after - before),
        std::cmp::Ordering::Less => format!(" (-{})", before - after),
    }
}

fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::model::Totals;
    use crate::testdata::sample_run;

    /// The sample run as it might have looked the day before.
    fn earlier_run() -> RunResult {
        let mut run = sample_run();
        run.run_id = "20241231-120000-sim-a".into();
        run.module_version = Some("Gecko OS 4.2.0".into());
        run.interrupted = false;
        let mut removed = run.cases[0].clone();
        removed.id = "passkeys/ascii/removed".into();
        removed.title = "A case that no longer exists".into();
        for case in &mut run.cases {
            match case.id.as_str() {
                // passing now: fixed.
                "passkeys/ascii/min-length" => {
                    case.verdict = Verdict::Fail;
                    case.reason = Some("step 2: timeout".into());
                }
                // failing now: a new failure.
                "passkeys/ascii/too-long" => {
                    case.verdict = Verdict::Pass;
                    case.reason = None;
                }
                // erroring now: still failing.
                "serial/echo/default" => case.verdict = Verdict::Fail,
                // skipped now: another change.
                "serial/prompt/after-response" => {
                    case.verdict = Verdict::Pass;
                    case.reason = None;
                }
                _ => {}
            }
        }
        // Not in the earlier run: a new case.
        run.cases.retain(|c| c.id != "passkeys/hex/uppercase");
        run.cases.push(removed);
        run.totals = Totals::count(&run.cases);
        run
    }

    #[test]
    fn diff_classifies_cases() {
        let d = diff_runs(&earlier_run(), &sample_run());
        let ids = |v: &[DiffEntry]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.new_failures), ["passkeys/ascii/too-long"]);
        assert_eq!(ids(&d.fixed), ["passkeys/ascii/min-length"]);
        assert_eq!(ids(&d.still_failing), ["serial/echo/default"]);
        assert_eq!(ids(&d.other_changes), ["serial/prompt/after-response"]);
        assert_eq!(ids(&d.new_cases), ["passkeys/hex/uppercase"]);
        assert_eq!(ids(&d.removed_cases), ["passkeys/ascii/removed"]);
        assert!(d.has_regressions());

        let same = diff_runs(&sample_run(), &sample_run());
        assert!(!same.has_regressions());
        assert!(
            same.fixed.is_empty() && same.new_cases.is_empty() && same.other_changes.is_empty()
        );
        assert_eq!(ids(&same.still_failing), ["passkeys/ascii/too-long", "serial/echo/default"]);
    }

    #[test]
    fn a_new_failing_case_is_a_new_failure() {
        let mut before = sample_run();
        before.cases.retain(|c| c.id != "passkeys/ascii/too-long");
        let d = diff_runs(&before, &sample_run());
        assert_eq!(d.new_failures.len(), 1);
        assert_eq!(d.new_failures[0].before, None);
        assert_eq!(d.new_cases.len(), 1);
    }

    #[test]
    fn each_transport_of_a_case_is_compared_with_itself() {
        let before = crate::testdata::sample_multi_transport_run();
        let mut after = before.clone();
        let rest = after
            .cases
            .iter_mut()
            .find(|c| c.id == "serial/echo/default" && c.transport == crate::model::Transport::Rest)
            .expect("a rest result");
        rest.verdict = Verdict::Fail;
        let d = diff_runs(&before, &after);
        let keys: Vec<&str> = d.new_failures.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["serial/echo/default@rest"]);
        assert!(d.new_cases.is_empty() && d.removed_cases.is_empty(), "{d:?}");
        after.cases.retain(|c| c.transport != crate::model::Transport::Rest);
        let removed = diff_runs(&before, &after).removed_cases;
        assert!(removed.iter().all(|e| e.key.ends_with("@rest")) && !removed.is_empty());
    }

    #[test]
    fn diff_markdown_snapshot() {
        let d = diff_runs(&earlier_run(), &sample_run());
        insta::assert_snapshot!("diff_md", render_diff_markdown(&d));
    }
}

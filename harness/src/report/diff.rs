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
//!
//! Every case whose verdict differs between the runs is shown with both runs' transcripts of
//! it, so a difference between two rigs (the simulated module and an emulated board) can be
//! read side by side.
//!
//! With [`DiffOptions::common_only`], only the cases both runs ran (same id and transport) are
//! compared: a case only one run selected (the board ran fewer sections, or only serial) is
//! left out and counted, not listed as new or removed.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::markdown::{code, fenced, md};
use super::text;
use crate::model::{CaseResult, RunResult, Totals, TranscriptEntry, Transport, Verdict};

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
#[derive(Clone, Debug, PartialEq)]
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
    /// The `before` run's transcript of the case (empty when absent there).
    pub before_transcript: Vec<TranscriptEntry>,
    /// The `after` run's transcript of the case (empty when absent there).
    pub after_transcript: Vec<TranscriptEntry>,
}

impl DiffEntry {
    /// The case is in both runs with a different verdict: its transcripts are worth reading.
    pub fn verdict_changed(&self) -> bool {
        matches!((self.before, self.after), (Some(b), Some(a)) if b != a)
    }
}

/// How to compare two runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Compare only the cases (id and transport) both runs ran; the others are counted in
    /// [`RunDiff::left_out`] instead of listed as new or removed.
    pub common_only: bool,
}

/// Cases left out of a diff restricted to the common cases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Results only in the `before` run.
    pub only_before: usize,
    /// Results only in the `after` run.
    pub only_after: usize,
}

/// The difference between two runs. Every list is in the order of the `after` run's cases
/// (removed cases: of the `before` run's).
#[derive(Clone, Debug, PartialEq)]
pub struct RunDiff {
    pub before: RunSummary,
    pub after: RunSummary,
    pub new_failures: Vec<DiffEntry>,
    pub fixed: Vec<DiffEntry>,
    pub still_failing: Vec<DiffEntry>,
    pub other_changes: Vec<DiffEntry>,
    pub new_cases: Vec<DiffEntry>,
    pub removed_cases: Vec<DiffEntry>,
    /// `Some` when only the common cases were compared: what was left out.
    pub left_out: Option<LeftOut>,
}

impl RunDiff {
    /// How many results differ in verdict or presence (what a one-line summary counts).
    pub fn changed(&self) -> usize {
        [&self.new_failures, &self.fixed, &self.still_failing, &self.other_changes]
            .into_iter()
            .flatten()
            .filter(|e| e.verdict_changed())
            .count()
            + self.new_cases.len()
            + self.removed_cases.len()
    }

    /// One line for a terminal: `3 differ (1 new failure, 1 fixed) among 40 common results`.
    pub fn one_line(&self) -> String {
        let compared = self.after.totals.total() - self.left_out.map_or(0, |l| l.only_after);
        format!(
            "{} vs {}: {} result{} differ{} ({} new failure{}, {} fixed) among {compared} compared",
            self.after.rig,
            self.before.rig,
            self.changed(),
            if self.changed() == 1 { "" } else { "s" },
            if self.changed() == 1 { "s" } else { "" },
            self.new_failures.len(),
            if self.new_failures.len() == 1 { "" } else { "s" },
            self.fixed.len(),
        )
    }

    /// Something fails now that did not before.
    pub fn has_regressions(&self) -> bool {
        !self.new_failures.is_empty()
    }
}

/// Compares two runs, every case of both.
pub fn diff_runs(before: &RunResult, after: &RunResult) -> RunDiff {
    diff_runs_with(before, after, DiffOptions::default())
}

/// Compares two runs as `options` say.
pub fn diff_runs_with(before: &RunResult, after: &RunResult, options: DiffOptions) -> RunDiff {
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
        left_out: options.common_only.then(LeftOut::default),
    };

    for case in &after.cases {
        let old_case = old.get(&(case.id.clone(), case.transport)).copied();
        if old_case.is_none()
            && let Some(left_out) = &mut diff.left_out
        {
            left_out.only_after += 1;
            continue;
        }
        let was = old_case.map(|c| c.verdict);
        let entry = DiffEntry {
            id: case.id.clone(),
            key: case.key(),
            title: case.title.clone(),
            before: was,
            after: Some(case.verdict),
            reason: case.reason.clone(),
            before_transcript: old_case.map(|c| c.transcript.clone()).unwrap_or_default(),
            after_transcript: case.transcript.clone(),
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
            if let Some(left_out) = &mut diff.left_out {
                left_out.only_before += 1;
                continue;
            }
            diff.removed_cases.push(DiffEntry {
                id: case.id.clone(),
                key: case.key(),
                title: case.title.clone(),
                before: Some(case.verdict),
                after: None,
                reason: case.reason.clone(),
                before_transcript: case.transcript.clone(),
                after_transcript: Vec::new(),
            });
        }
    }
    diff
}

/// A run's results by case id and transport.
fn keyed(run: &RunResult) -> HashMap<(String, Transport), &CaseResult> {
    run.cases.iter().map(|c| ((c.id.clone(), c.transport), c)).collect()
}

/// Renders a diff as Markdown (for a PR comment or a CI job summary).
pub fn render_diff_markdown(diff: &RunDiff) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_diff(&mut out, diff);
    out
}

fn write_diff(o: &mut String, d: &RunDiff) -> std::fmt::Result {
    writeln!(
        o,
        "# Run {} ({}) compared with {} ({})\n",
        code(&d.after.run_id),
        md(&d.after.rig),
        code(&d.before.run_id),
        md(&d.before.rig)
    )?;
    if let Some(l) = d.left_out {
        writeln!(
            o,
            "Only the results both runs have (same case and transport) are compared; left out: \
             {} only in {}, {} only in {}.\n",
            l.only_before,
            code(&d.before.run_id),
            l.only_after,
            code(&d.after.run_id)
        )?;
    }
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
    write_transcripts(o, d)?;
    Ok(())
}

/// Both runs' transcripts of every case whose verdict differs.
fn write_transcripts(o: &mut String, d: &RunDiff) -> std::fmt::Result {
    let changed: Vec<&DiffEntry> = [&d.new_failures, &d.fixed, &d.still_failing, &d.other_changes]
        .into_iter()
        .flatten()
        .filter(|e| e.verdict_changed())
        .collect();
    writeln!(o, "## Transcripts of the cases whose verdict differs ({})\n", changed.len())?;
    if changed.is_empty() {
        return writeln!(o, "None.\n");
    }
    for e in changed {
        writeln!(o, "### {} {}\n", code(&e.key), transition(e.before, e.after))?;
        for (run, rig, transcript) in [
            (&d.before.run_id, &d.before.rig, &e.before_transcript),
            (&d.after.run_id, &d.after.rig, &e.after_transcript),
        ] {
            writeln!(o, "{} ({}):\n", code(run), md(rig))?;
            if transcript.is_empty() {
                writeln!(o, "No transcript.\n")?;
            } else {
                let lines: Vec<String> = transcript.iter().map(text::transcript_line).collect();
                writeln!(o, "{}\n", fenced(&lines.join("\n")))?;
            }
        }
    }
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

    /// A board run of a subset over serial only, against the simulated module's run of every
    /// case over serial and REST: one case passes on the sim and fails on the board.
    fn sim_and_board() -> (RunResult, RunResult) {
        use crate::model::{Direction, TranscriptEntry};
        let sim = crate::testdata::sample_multi_transport_run();
        let mut board = sample_run();
        board.run_id = "20250101-130000-qemu-an386".into();
        board.rig.name = "qemu-an386".into();
        board.cases.retain(|c| c.id != "serial/prompt/after-response");
        let case = board
            .cases
            .iter_mut()
            .find(|c| c.id == "passkeys/ascii/min-length")
            .expect("the sample has it");
        case.verdict = Verdict::Fail;
        case.reason = Some("step 1: expected `Set OK`, got `Command failed`".into());
        case.transcript = vec![
            TranscriptEntry {
                t_ms: 0.0,
                dir: Direction::Tx,
                text: "set wlan.passkey 12345678\r\n".into(),
            },
            TranscriptEntry { t_ms: 8.5, dir: Direction::Rx, text: "Command failed\r\n> ".into() },
        ];
        board.totals = Totals::count(&board.cases);
        (sim, board)
    }

    #[test]
    fn common_only_leaves_out_what_one_run_did_not_run() {
        let (sim, board) = sim_and_board();
        let all = diff_runs(&sim, &board);
        assert!(!all.removed_cases.is_empty() && all.left_out.is_none());

        let d = diff_runs_with(&sim, &board, DiffOptions { common_only: true });
        assert!(d.new_cases.is_empty() && d.removed_cases.is_empty(), "{d:?}");
        // Every REST result and the serial prompt case are only in the sim's run.
        let rest = sim.cases.iter().filter(|c| c.transport == Transport::Rest).count();
        assert_eq!(d.left_out, Some(LeftOut { only_before: rest + 1, only_after: 0 }));
        let keys: Vec<&str> = d.new_failures.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["passkeys/ascii/min-length"]);
        let e = &d.new_failures[0];
        assert!(e.verdict_changed());
        assert_eq!(e.after_transcript.len(), 2);
        assert_eq!(e.before_transcript, sim.cases[0].transcript);
        assert_eq!(d.changed(), 1);
        assert_eq!(
            d.one_line(),
            "qemu-an386 vs sim-a: 1 result differs (1 new failure, 0 fixed) among 5 compared"
        );
    }

    #[test]
    fn cross_rig_diff_markdown_snapshot() {
        let (sim, board) = sim_and_board();
        let d = diff_runs_with(&sim, &board, DiffOptions { common_only: true });
        insta::assert_snapshot!("diff_cross_rig_md", render_diff_markdown(&d));
    }

    #[test]
    fn diff_markdown_snapshot() {
        let d = diff_runs(&earlier_run(), &sample_run());
        insta::assert_snapshot!("diff_md", render_diff_markdown(&d));
    }
}

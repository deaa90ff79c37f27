//! Nightly runs: each rig's run compared with the same rig's previous nightly run.
//!
//! What counts against a night ([`RigNight::is_fatal`]) is only what is new: a result that
//! fails or errors now and did not last night (or is new and fails), or a run that did not
//! reach its end. A failure that was already there is listed as still failing; a known
//! deviation (the rig's expectations file) is listed with its reason; neither is fatal.
//! Without a previous nightly of the rig every failure counts, since none is known to be old.
//!
//! A case got **slower** when its duration grew by more than [`Thresholds::ratio`] and by at
//! least [`Thresholds::floor_ms`]: the ratio alone would flag a 2 ms case taking 5 ms, the
//! floor alone a 60 s case taking 60.3 s.

use std::fmt::Write as _;

use serde::Serialize;

use super::diff::{DiffEntry, diff_runs};
use super::markdown::{code, md};
use super::text;
use crate::model::{CaseResult, RunResult, Totals, Verdict};

/// The summary file of a nightly folder.
pub const NIGHTLY_MD: &str = "nightly.md";
/// The full diff against the previous nightly, in a rig's folder.
pub const DIFF_VS_PREVIOUS: &str = "diff-vs-previous.md";

/// When a case counts as slower.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    /// The new duration is more than this times the old one (1.5: +50%).
    pub ratio: f64,
    /// ... and at least this many milliseconds longer.
    pub floor_ms: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { ratio: 1.5, floor_ms: 200 }
    }
}

/// One result in a nightly list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// The case id with its transport ([`CaseResult::key`]).
    pub key: String,
    pub title: String,
    /// `None`: not in the previous run (or there is none).
    pub before: Option<Verdict>,
    pub after: Verdict,
    /// Why it failed now, or the expectations file's reason for a known deviation.
    pub reason: Option<String>,
}

impl Entry {
    /// A diff's entry of a result the later run has (`None` for a removed case).
    pub(crate) fn of_diff(e: &DiffEntry) -> Option<Self> {
        Some(Entry {
            key: e.key.clone(),
            title: e.title.clone(),
            before: e.before,
            after: e.after?,
            reason: e.reason.clone(),
        })
    }

    fn of_case(c: &CaseResult, reason: Option<&String>) -> Self {
        Entry {
            key: c.key(),
            title: c.title.clone(),
            before: None,
            after: c.verdict,
            reason: reason.cloned(),
        }
    }
}

/// A case that took longer than last night.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Slower {
    pub key: String,
    pub title: String,
    pub before_ms: u64,
    pub after_ms: u64,
}

/// The previous nightly a run is compared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Previous {
    /// The nightly folder's name (its stamp).
    pub nightly: String,
    pub run_id: String,
}

/// One rig's night.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RigNight {
    pub rig: String,
    /// The rig's folder in the nightly folder.
    pub folder: String,
    pub run_id: String,
    pub module_version: Option<String>,
    pub interrupted: bool,
    pub totals: Totals,
    pub previous: Option<Previous>,
    pub new_failures: Vec<Entry>,
    pub fixed: Vec<Entry>,
    pub still_failing: Vec<Entry>,
    pub known_deviations: Vec<Entry>,
    /// Listed as deviations in the expectations file, yet passed: the entry is stale.
    pub stale_deviations: Vec<Entry>,
    /// Slowest increase first.
    pub slower: Vec<Slower>,
}

impl RigNight {
    /// Something is new and wrong: a new failure or error, or the run did not reach its end.
    pub fn is_fatal(&self) -> bool {
        !self.new_failures.is_empty() || self.interrupted
    }
}

/// A rig whose run could not be made at all (its module did not start, a bad rig file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The rig file.
    pub rig: String,
    pub error: String,
}

/// A whole night: every rig of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Night {
    /// The nightly folder's name: `YYYYmmdd-HHMMSS` (UTC).
    pub stamp: String,
    pub thresholds: Thresholds,
    pub rigs: Vec<RigNight>,
    pub broken: Vec<Broken>,
}

impl Night {
    /// The night failed: a rig has something new and wrong, or could not run.
    pub fn is_fatal(&self) -> bool {
        !self.broken.is_empty() || self.rigs.iter().any(RigNight::is_fatal)
    }
}

/// Compares a rig's run (in `folder` of the nightly folder) with its previous nightly, if
/// there is one (`(nightly folder name, run)`).
pub fn assess(
    run: &RunResult,
    folder: &str,
    previous: Option<(&str, &RunResult)>,
    thresholds: Thresholds,
) -> RigNight {
    let known_deviations = run
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::KnownDeviation)
        .map(|c| Entry::of_case(c, c.deviation.as_ref()))
        .collect();
    let stale_deviations = run
        .cases
        .iter()
        .filter(|c| c.stale_deviation)
        .map(|c| Entry::of_case(c, c.deviation.as_ref()))
        .collect();
    let mut night = RigNight {
        rig: run.rig.name.clone(),
        folder: folder.to_string(),
        run_id: run.run_id.clone(),
        module_version: run.module_version.clone(),
        interrupted: run.interrupted,
        totals: run.totals,
        previous: None,
        new_failures: Vec::new(),
        fixed: Vec::new(),
        still_failing: Vec::new(),
        known_deviations,
        stale_deviations,
        slower: Vec::new(),
    };
    match previous {
        None => {
            night.new_failures = run
                .cases
                .iter()
                .filter(|c| text::is_failing(c.verdict))
                .map(|c| Entry::of_case(c, c.reason.as_ref()))
                .collect();
        }
        Some((nightly, before)) => {
            night.previous =
                Some(Previous { nightly: nightly.to_string(), run_id: before.run_id.clone() });
            let d = diff_runs(before, run);
            let entries = |v: &[DiffEntry]| v.iter().filter_map(Entry::of_diff).collect();
            night.new_failures = entries(&d.new_failures);
            night.fixed = entries(&d.fixed);
            night.still_failing = entries(&d.still_failing);
            night.slower = slower(before, run, thresholds);
        }
    }
    night
}

/// The results of `after` that took longer than in `before` by both thresholds; a result
/// skipped in either run has no duration worth comparing.
pub fn slower(before: &RunResult, after: &RunResult, thresholds: Thresholds) -> Vec<Slower> {
    let old: std::collections::HashMap<String, &CaseResult> =
        before.cases.iter().map(|c| (c.key(), c)).collect();
    let mut out: Vec<Slower> = after
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Skipped)
        .filter_map(|c| {
            let was = old.get(&c.key()).filter(|o| o.verdict != Verdict::Skipped)?;
            let (b, a) = (was.duration_ms, c.duration_ms);
            let grew = a as f64 > b as f64 * thresholds.ratio
                && a.saturating_sub(b) >= thresholds.floor_ms
                && a > b;
            grew.then(|| Slower { key: c.key(), title: c.title.clone(), before_ms: b, after_ms: a })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.after_ms - s.before_ms));
    out
}

/// `nightly.md`: a table of the rigs, then per rig what is new, fixed, still failing, known
/// and slower.
pub fn render_night(night: &Night) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_night(&mut out, night);
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_night(o: &mut String, n: &Night) -> std::fmt::Result {
    writeln!(o, "# Nightly {}\n", md(&n.stamp))?;
    let fatal: Vec<String> = n
        .rigs
        .iter()
        .filter(|r| r.is_fatal())
        .map(|r| {
            let mut why = Vec::new();
            if !r.new_failures.is_empty() {
                let k = r.new_failures.len();
                why.push(format!("{k} new failure{}", plural(k)));
            }
            if r.interrupted {
                why.push("interrupted".into());
            }
            format!("{} ({})", md(&r.rig), why.join(", "))
        })
        .chain(n.broken.iter().map(|b| format!("{} (did not run)", code(&b.rig))))
        .collect();
    if fatal.is_empty() {
        writeln!(o, "**No new failures.**\n")?;
    } else {
        writeln!(o, "**Failed: {}.**\n", fatal.join("; "))?;
    }
    writeln!(
        o,
        "Slower: a case that took more than {:.0}% longer than in the previous nightly, and at \
         least {} ms longer.\n",
        (n.thresholds.ratio - 1.0) * 100.0,
        n.thresholds.floor_ms
    )?;
    writeln!(
        o,
        "| Rig | Compared with | Pass | Fail | Error | Known deviation | New failures | Fixed | \
         Still failing | Slower |\n|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for r in &n.rigs {
        let previous = match &r.previous {
            Some(p) => code(&p.nightly).replace('|', "\\|"),
            None => "*no previous nightly*".into(),
        };
        let t = &r.totals;
        writeln!(
            o,
            "| {} | {previous} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md(&r.rig),
            t.pass,
            t.fail,
            t.error,
            t.known_deviation,
            r.new_failures.len(),
            r.fixed.len(),
            r.still_failing.len(),
            r.slower.len()
        )?;
    }
    writeln!(o)?;
    for b in &n.broken {
        writeln!(o, "## {} did not run\n\n{}\n", code(&b.rig), md(&b.error))?;
    }
    for r in &n.rigs {
        write_rig(o, r)?;
    }
    Ok(())
}

fn write_rig(o: &mut String, r: &RigNight) -> std::fmt::Result {
    writeln!(o, "## {}\n", md(&r.rig))?;
    let version = r.module_version.as_deref().map_or("*did not answer*".into(), md);
    writeln!(
        o,
        "Run {} in {}; module: {version}.",
        code(&r.run_id),
        code(&format!("{}/", r.folder))
    )?;
    if r.interrupted {
        writeln!(o, "**The run was interrupted**: the cases it did not reach are skipped.")?;
    }
    match &r.previous {
        Some(p) => writeln!(
            o,
            "Compared with the nightly {} (run {}); the full comparison, with transcripts, is \
             {}.\n",
            code(&p.nightly),
            code(&p.run_id),
            code(&format!("{}/{DIFF_VS_PREVIOUS}", r.folder))
        )?,
        None => writeln!(
            o,
            "No previous nightly for this rig: every failure and error counts as new.\n"
        )?,
    }
    // Without a previous run there is no transition to show.
    let compared = r.previous.is_some();
    write_entries(o, "New failures", &r.new_failures, compared)?;
    write_entries(o, "Fixed", &r.fixed, compared)?;
    write_entries(o, "Still failing", &r.still_failing, compared)?;
    write_entries(o, "Known deviations", &r.known_deviations, false)?;
    if !r.stale_deviations.is_empty() {
        writeln!(
            o,
            "Listed as deviations yet passing (remove them from the rig's expectations file): \
             {}.\n",
            r.stale_deviations.iter().map(|e| code(&e.key)).collect::<Vec<_>>().join(", ")
        )?;
    }
    writeln!(o, "### Slower ({})\n", r.slower.len())?;
    if r.slower.is_empty() {
        return writeln!(o, "None.\n");
    }
    writeln!(o, "| Case | Before | After | Change |\n|---|---|---|---|")?;
    for s in &r.slower {
        writeln!(
            o,
            "| {} | {} ms | {} ms | +{} ms (×{:.1}) |",
            code(&s.key).replace('|', "\\|"),
            s.before_ms,
            s.after_ms,
            s.after_ms - s.before_ms,
            s.after_ms as f64 / s.before_ms.max(1) as f64
        )?;
    }
    writeln!(o)
}

fn write_entries(
    o: &mut String,
    heading: &str,
    entries: &[Entry],
    transition: bool,
) -> std::fmt::Result {
    writeln!(o, "### {heading} ({})\n", entries.len())?;
    if entries.is_empty() {
        return writeln!(o, "None.\n");
    }
    for e in entries {
        let verdict = if transition {
            format!("{} → {}", e.before.map_or("absent", Verdict::as_str), e.after.as_str())
        } else {
            e.after.as_str().to_string()
        };
        write!(o, "- {} ({verdict}): {}", code(&e.key), md(&e.title))?;
        if let Some(reason) = &e.reason {
            write!(o, " — {}", md(reason))?;
        }
        writeln!(o)?;
    }
    writeln!(o)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::model::Transport;
    use crate::testdata::sample_run;
    use rstest::rstest;

    /// The sample run, complete, as last night's: every case passed, each in 100 ms.
    fn last_night() -> RunResult {
        let mut run = sample_run();
        run.run_id = "20250101-020000-sim-a".into();
        run.interrupted = false;
        for c in &mut run.cases {
            c.verdict = Verdict::Pass;
            c.reason = None;
            c.deviation = None;
            c.stale_deviation = false;
            c.duration_ms = 100;
        }
        run.totals = Totals::count(&run.cases);
        run
    }

    /// Tonight: one case newly fails, one case newly deviates (known), one got slower.
    fn tonight() -> RunResult {
        let mut run = last_night();
        run.run_id = "20250102-020000-sim-a".into();
        for c in &mut run.cases {
            match c.id.as_str() {
                "passkeys/ascii/too-long" => {
                    c.verdict = Verdict::Fail;
                    c.reason = Some("step 1: expected `Command failed`, got `Set OK`".into());
                }
                "passkeys/ascii/max-length" => {
                    c.verdict = Verdict::KnownDeviation;
                    c.deviation = Some("the board truncates at 63".into());
                }
                "serial/echo/default" => c.duration_ms = 450,
                _ => {}
            }
        }
        run.totals = Totals::count(&run.cases);
        run
    }

    fn keys(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn a_failure_new_tonight_is_fatal_and_a_known_deviation_is_not() {
        let night = assess(
            &tonight(),
            "sim-a",
            Some(("20250101-020000", &last_night())),
            Thresholds::default(),
        );
        assert_eq!(keys(&night.new_failures), ["passkeys/ascii/too-long"]);
        assert_eq!(keys(&night.known_deviations), ["passkeys/ascii/max-length"]);
        assert_eq!(night.known_deviations[0].reason.as_deref(), Some("the board truncates at 63"));
        assert!(night.fixed.is_empty() && night.still_failing.is_empty());
        assert!(night.is_fatal());
        // Tomorrow the same failure is old: listed, not fatal.
        let again = assess(
            &tonight(),
            "sim-a",
            Some(("20250102-020000", &tonight())),
            Thresholds::default(),
        );
        assert!(again.new_failures.is_empty(), "{again:?}");
        assert_eq!(keys(&again.still_failing), ["passkeys/ascii/too-long"]);
        assert!(!again.is_fatal());
        // And fixed the night after.
        let fixed = assess(&last_night(), "sim-a", Some(("x", &tonight())), Thresholds::default());
        assert_eq!(keys(&fixed.fixed), ["passkeys/ascii/too-long"]);
        assert!(!fixed.is_fatal());
    }

    #[test]
    fn without_a_previous_nightly_every_failure_counts() {
        let night = assess(&tonight(), "sim-a", None, Thresholds::default());
        assert_eq!(night.previous, None);
        assert_eq!(keys(&night.new_failures), ["passkeys/ascii/too-long"]);
        assert!(night.slower.is_empty());
        assert!(night.is_fatal());
        assert!(!assess(&last_night(), "sim-a", None, Thresholds::default()).is_fatal());
    }

    #[test]
    fn an_interrupted_run_is_fatal() {
        let mut run = last_night();
        run.interrupted = true;
        assert!(
            assess(&run, "sim-a", Some(("x", &last_night())), Thresholds::default()).is_fatal()
        );
    }

    #[test]
    fn a_new_case_that_fails_is_a_new_failure() {
        let mut before = last_night();
        before.cases.retain(|c| c.id != "passkeys/ascii/too-long");
        let night = assess(&tonight(), "sim-a", Some(("x", &before)), Thresholds::default());
        assert_eq!(keys(&night.new_failures), ["passkeys/ascii/too-long"]);
        assert_eq!(night.new_failures[0].before, None);
    }

    #[rstest]
    #[case::grew_by_both(100, 400, true)]
    #[case::ratio_only(2, 10, false)]
    #[case::floor_only(60_000, 60_300, false)]
    #[case::just_over_both(400, 601, true)]
    #[case::at_the_ratio(400, 600, false)]
    #[case::faster(400, 100, false)]
    fn slower_needs_both_the_ratio_and_the_floor(
        #[case] before_ms: u64,
        #[case] after_ms: u64,
        #[case] slower_expected: bool,
    ) {
        let (mut before, mut after) = (last_night(), last_night());
        before.cases[0].duration_ms = before_ms;
        after.cases[0].duration_ms = after_ms;
        let found = slower(&before, &after, Thresholds::default());
        assert_eq!(!found.is_empty(), slower_expected, "{found:?}");
    }

    #[test]
    fn slower_compares_each_transport_with_itself_and_ignores_skipped() {
        let mut before = crate::testdata::sample_multi_transport_run();
        for c in &mut before.cases {
            c.duration_ms = 100;
        }
        let mut after = before.clone();
        for c in &mut after.cases {
            if c.transport == Transport::Rest {
                c.duration_ms = 1000;
            }
        }
        let found = slower(&before, &after, Thresholds { ratio: 1.5, floor_ms: 200 });
        let not_skipped = after
            .cases
            .iter()
            .filter(|c| c.transport == Transport::Rest && c.verdict != Verdict::Skipped)
            .count();
        assert_eq!(found.len(), not_skipped);
        assert!(found.iter().all(|s| s.key.ends_with("@rest")), "{found:?}");
    }

    #[test]
    fn nightly_markdown_snapshot() {
        let thresholds = Thresholds::default();
        let mut board = tonight();
        board.rig.name = "qemu-an386".into();
        let passing = board.cases.iter_mut().find(|c| c.id == "serial/echo/default").unwrap();
        passing.stale_deviation = true;
        passing.deviation = Some("echo was doubled".into());
        board.run_id = "20250102-020000-qemu-an386".into();
        let night = Night {
            stamp: "20250102-020000".into(),
            thresholds,
            rigs: vec![
                assess(&tonight(), "sim-a", Some(("20250101-020000", &last_night())), thresholds),
                assess(&board, "qemu-an386", None, thresholds),
            ],
            broken: vec![Broken {
                rig: "rigs/lab-bench.toml".into(),
                error: "cannot open /dev/ttyUSB0: no such file".into(),
            }],
        };
        assert!(night.is_fatal());
        assert_eq!(keys(&night.rigs[1].stale_deviations), ["serial/echo/default"]);
        insta::assert_snapshot!("nightly_md", render_night(&night));
    }

    #[test]
    fn a_quiet_night_says_so() {
        let thresholds = Thresholds::default();
        let night = Night {
            stamp: "20250102-020000".into(),
            thresholds,
            rigs: vec![assess(&last_night(), "sim-a", Some(("x", &last_night())), thresholds)],
            broken: vec![],
        };
        assert!(!night.is_fatal());
        let text = render_night(&night);
        assert!(text.contains("**No new failures.**"), "{text}");
        assert!(text.contains("### Slower (0)\n\nNone."), "{text}");
    }
}

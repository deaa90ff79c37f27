//! Release qualification: the whole suite on every board, each clause of the chapter's
//! inventory judged per board, the boards' identities, the differences against a baseline
//! run, and a verdict.
//!
//! A clause's verdict on a board comes from the results of the cases that cite it (every
//! transport): **fail** if one failed, else **error** if one errored, else **known
//! deviation** if one is a deviation the rig's expectations file lists (with its reason), else
//! **pass** if one passed, else **not covered** (no citing case, or all skipped there). A
//! clause the inventory marks `unreachable` is **unreachable**, with that reason, whatever
//! the run did (`hil check` refuses a case citing one).
//!
//! **Qualified** only when every board's run failed nothing, errored nothing, reached its end
//! and ran the whole suite (selection `all`): a subset proves nothing about the rest.

use std::fmt::Write as _;

use serde::Serialize;

use super::diff::{DiffOptions, diff_runs_with};
use super::markdown::{code, md};
use super::nightly::Entry;
use crate::model::{RunResult, Totals, Verdict};
use crate::spec::Clause;

/// The Markdown report of a qualification folder.
pub const QUALIFICATION_MD: &str = "qualification.md";
/// The same, as data.
pub const QUALIFICATION_JSON: &str = "qualification.json";
/// The full diff against the baseline, in a board's folder.
pub const DIFF_VS_BASELINE: &str = "diff-vs-baseline.md";

/// A clause's verdict on one board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClauseVerdict {
    Pass,
    Fail,
    Error,
    KnownDeviation,
    NotCovered,
    Unreachable,
}

impl ClauseVerdict {
    /// In the order the reports count them.
    pub const ALL: [ClauseVerdict; 6] = [
        ClauseVerdict::Pass,
        ClauseVerdict::Fail,
        ClauseVerdict::Error,
        ClauseVerdict::KnownDeviation,
        ClauseVerdict::NotCovered,
        ClauseVerdict::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClauseVerdict::Pass => "pass",
            ClauseVerdict::Fail => "fail",
            ClauseVerdict::Error => "error",
            ClauseVerdict::KnownDeviation => "known deviation",
            ClauseVerdict::NotCovered => "not covered",
            ClauseVerdict::Unreachable => "unreachable",
        }
    }
}

/// A clause on one board: its verdict and what explains it (the failing or deviating
/// results, each `case-key: reason`; the unreachable reason).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BoardClause {
    pub verdict: ClauseVerdict,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
}

/// One clause of the inventory, per board (in the order of [`Qualification::boards`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClauseRow {
    pub id: String,
    pub section: String,
    /// `chapter` or `protocol-facts`.
    pub source: String,
    pub boards: Vec<BoardClause>,
}

/// What identifies a board and its run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Board {
    pub rig: String,
    pub rig_file: String,
    /// `sim`, `qemu`, `hardware`.
    pub kind: String,
    pub port: String,
    /// The module's `version` line, as the run recorded it.
    pub firmware_version: Option<String>,
    /// `wlan.mac`, as the run recorded it.
    pub mac: Option<String>,
    pub run_id: String,
    /// The board's folder in the qualification folder.
    pub folder: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub selection: String,
    pub interrupted: bool,
    pub totals: Totals,
    pub baseline: Option<BaselineDiff>,
}

/// A board's run against the baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineDiff {
    pub run_id: String,
    pub rig: String,
    /// Only the results both runs have were compared (the baseline is of another rig).
    pub common_only: bool,
    pub new_failures: Vec<Entry>,
    pub fixed: Vec<Entry>,
    /// Any other change of verdict.
    pub other_changes: Vec<Entry>,
    pub new_cases: usize,
    pub removed_cases: usize,
}

/// A whole qualification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Qualification {
    /// The qualification folder's name: `YYYYmmdd-HHMMSS` (UTC).
    pub stamp: String,
    /// The baseline as given.
    pub baseline: String,
    pub boards: Vec<Board>,
    pub clauses: Vec<ClauseRow>,
    pub qualified: bool,
    /// Why not, one reason a line; empty when qualified.
    pub reasons: Vec<String>,
}

/// A board's run, where it is, and the baseline run to compare it with (if any).
#[derive(Clone, Copy, Debug)]
pub struct BoardRun<'a> {
    pub run: &'a RunResult,
    /// Its folder in the qualification folder.
    pub folder: &'a str,
    pub baseline: Option<&'a RunResult>,
}

/// Judges every clause of `inventory` on every board and decides the verdict.
pub fn qualify(
    stamp: &str,
    baseline: &str,
    inventory: &[Clause],
    boards: &[BoardRun<'_>],
) -> Qualification {
    let clauses = inventory
        .iter()
        .map(|c| ClauseRow {
            id: c.id.clone(),
            section: c.section.clone(),
            source: c.source.clone(),
            boards: boards.iter().map(|b| judge(c, b.run)).collect(),
        })
        .collect();
    let mut reasons = Vec::new();
    for b in boards {
        let (rig, t) = (&b.run.rig.name, b.run.totals);
        if t.fail > 0 {
            reasons.push(format!("{rig}: {} failed", t.fail));
        }
        if t.error > 0 {
            reasons.push(format!("{rig}: {} errored", t.error));
        }
        if b.run.interrupted {
            reasons.push(format!("{rig}: the run was interrupted"));
        }
        if b.run.selection != "all" {
            reasons.push(format!(
                "{rig}: only part of the suite ran (selection `{}`)",
                b.run.selection
            ));
        }
    }
    if boards.is_empty() {
        reasons.push("no board ran".into());
    }
    Qualification {
        stamp: stamp.to_string(),
        baseline: baseline.to_string(),
        boards: boards.iter().map(board).collect(),
        clauses,
        qualified: reasons.is_empty(),
        reasons,
    }
}

/// One clause on one board's run.
fn judge(clause: &Clause, run: &RunResult) -> BoardClause {
    if let Some(why) = &clause.unreachable {
        return BoardClause { verdict: ClauseVerdict::Unreachable, why: vec![why.clone()] };
    }
    let citing: Vec<_> = run.cases.iter().filter(|c| c.clauses.contains(&clause.id)).collect();
    let with = |v: Verdict| citing.iter().filter(move |c| c.verdict == v);
    let explain = |v: Verdict, deviation: bool| -> Vec<String> {
        with(v)
            .map(|c| {
                let reason = if deviation { &c.deviation } else { &c.reason };
                format!("{}: {}", c.key(), reason.as_deref().unwrap_or("no reason recorded"))
            })
            .collect()
    };
    for (v, verdict, deviation) in [
        (Verdict::Fail, ClauseVerdict::Fail, false),
        (Verdict::Error, ClauseVerdict::Error, false),
        (Verdict::KnownDeviation, ClauseVerdict::KnownDeviation, true),
    ] {
        if with(v).next().is_some() {
            return BoardClause { verdict, why: explain(v, deviation) };
        }
    }
    if with(Verdict::Pass).next().is_some() {
        return BoardClause { verdict: ClauseVerdict::Pass, why: Vec::new() };
    }
    BoardClause { verdict: ClauseVerdict::NotCovered, why: Vec::new() }
}

fn board(b: &BoardRun<'_>) -> Board {
    let run = b.run;
    Board {
        rig: run.rig.name.clone(),
        rig_file: run.rig.path.clone(),
        kind: run.rig.kind.clone(),
        port: run.rig.port.clone(),
        firmware_version: run.module_version.clone(),
        mac: run.module_mac.clone(),
        run_id: run.run_id.clone(),
        folder: b.folder.to_string(),
        started_at: run.started_at.clone(),
        duration_ms: run.duration_ms,
        selection: run.selection.clone(),
        interrupted: run.interrupted,
        totals: run.totals,
        baseline: b.baseline.map(|base| against(base, run)),
    }
}

/// A board's run against the baseline: every result when both are of the same rig, else
/// only the results both have.
fn against(base: &RunResult, run: &RunResult) -> BaselineDiff {
    let common_only = base.rig.name != run.rig.name;
    let d = diff_runs_with(base, run, DiffOptions { common_only });
    let entries = |v: &[super::diff::DiffEntry]| v.iter().filter_map(Entry::of_diff).collect();
    BaselineDiff {
        run_id: base.run_id.clone(),
        rig: base.rig.name.clone(),
        common_only,
        new_failures: entries(&d.new_failures),
        fixed: entries(&d.fixed),
        other_changes: entries(&d.other_changes),
        new_cases: d.new_cases.len(),
        removed_cases: d.removed_cases.len(),
    }
}

/// `qualification.json`: the qualification as pretty JSON.
pub fn render_json(q: &Qualification) -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(q)?;
    json.push('\n');
    Ok(json)
}

/// `qualification.md`: fit to attach to a release.
pub fn render_markdown(q: &Qualification) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_markdown(&mut out, q);
    out
}

fn cell(s: &str) -> String {
    md(s)
}

fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// A table's header: `head` (its first columns), one column per board, and the separator
/// row (`sep` for the first columns).
fn board_columns(o: &mut String, q: &Qualification, head: &str, sep: &str) -> std::fmt::Result {
    write!(o, "{head}")?;
    for b in &q.boards {
        write!(o, " {} |", cell(&b.rig))?;
    }
    write!(o, "\n{sep}")?;
    for _ in &q.boards {
        write!(o, "---|")?;
    }
    writeln!(o)
}

fn write_markdown(o: &mut String, q: &Qualification) -> std::fmt::Result {
    writeln!(o, "# Qualification {}\n", md(&q.stamp))?;
    if q.qualified {
        writeln!(
            o,
            "**Qualified**: every board ran the whole suite with no failure and no error.\n"
        )?;
    } else {
        writeln!(o, "**Not qualified**:\n")?;
        for r in &q.reasons {
            writeln!(o, "- {}", md(r))?;
        }
        writeln!(o)?;
    }

    // Boards, one column each.
    writeln!(o, "## Boards\n")?;
    board_columns(o, q, "| |", "|---|")?;
    let unknown = |v: &Option<String>| v.as_deref().map_or("*did not answer*".to_string(), cell);
    /// A row of the boards' table: its name and each board's cell.
    type Row<'a> = (&'a str, Box<dyn Fn(&Board) -> String + 'a>);
    let rows: [Row<'_>; 11] = [
        ("Rig file", Box::new(|b| cell_code(&b.rig_file))),
        ("Kind", Box::new(|b| cell(&b.kind))),
        ("Firmware version", Box::new(|b| unknown(&b.firmware_version))),
        ("MAC", Box::new(|b| unknown(&b.mac))),
        ("Run", Box::new(|b| format!("{} in {}", cell_code(&b.run_id), cell_code(&b.folder)))),
        ("Started", Box::new(|b| cell(&b.started_at))),
        ("Duration", Box::new(|b| format!("{:.1} s", b.duration_ms as f64 / 1000.0))),
        ("Selection", Box::new(|b| cell_code(&b.selection))),
        (
            "Results",
            Box::new(|b| {
                let t = b.totals;
                format!(
                    "{} pass, {} fail, {} error, {} skipped, {} known deviation",
                    t.pass, t.fail, t.error, t.skipped, t.known_deviation
                )
            }),
        ),
        ("Stale deviations", Box::new(|b| b.totals.stale_deviations.to_string())),
        ("Interrupted", Box::new(|b| if b.interrupted { "**yes**".into() } else { "no".into() })),
    ];
    for (name, value) in &rows {
        write!(o, "| {name} |")?;
        for b in &q.boards {
            write!(o, " {} |", value(b))?;
        }
        writeln!(o)?;
    }
    writeln!(o)?;

    // Clause counts per board.
    writeln!(o, "## Clauses\n")?;
    writeln!(
        o,
        "Every clause of the inventory (`specs/clauses.toml`), judged per board by the cases \
         that cite it: fail, else error, else known deviation, else pass; not covered when no \
         citing case ran; unreachable when no input can cause it on this module.\n"
    )?;
    board_columns(o, q, "| Clauses |", "|---|")?;
    for v in ClauseVerdict::ALL {
        write!(o, "| {} |", v.as_str())?;
        for i in 0..q.boards.len() {
            let n = q.clauses.iter().filter(|c| c.boards[i].verdict == v).count();
            write!(o, " {n} |")?;
        }
        writeln!(o)?;
    }
    write!(o, "| total |")?;
    for _ in &q.boards {
        write!(o, " {} |", q.clauses.len())?;
    }
    writeln!(o, "\n")?;

    board_columns(o, q, "| Clause | Section |", "|---|---|")?;
    for c in &q.clauses {
        write!(o, "| {} | {} |", cell_code(&c.id), cell(&c.section))?;
        for b in &c.boards {
            let v = b.verdict.as_str();
            match b.verdict {
                ClauseVerdict::Fail | ClauseVerdict::Error => write!(o, " **{v}** |")?,
                _ => write!(o, " {v} |")?,
            }
        }
        writeln!(o)?;
    }
    writeln!(o)?;

    // The reasons behind every verdict that is not a plain pass or not covered.
    for (heading, verdicts) in [
        ("Failing clauses", &[ClauseVerdict::Fail, ClauseVerdict::Error][..]),
        ("Known deviations", &[ClauseVerdict::KnownDeviation][..]),
    ] {
        let mut lines = Vec::new();
        for c in &q.clauses {
            for (b, bc) in q.boards.iter().zip(&c.boards) {
                if verdicts.contains(&bc.verdict) {
                    lines.push(format!(
                        "- {} on {} ({}):",
                        code(&c.id),
                        md(&b.rig),
                        bc.verdict.as_str()
                    ));
                    lines.extend(bc.why.iter().map(|w| format!("  - {}", md(w))));
                }
            }
        }
        writeln!(o, "### {heading}\n")?;
        if lines.is_empty() {
            writeln!(o, "None.\n")?;
        } else {
            writeln!(o, "{}\n", lines.join("\n"))?;
        }
    }
    writeln!(o, "### Unreachable clauses\n")?;
    let unreachable: Vec<&ClauseRow> = q
        .clauses
        .iter()
        .filter(|c| c.boards.first().is_some_and(|b| b.verdict == ClauseVerdict::Unreachable))
        .collect();
    if unreachable.is_empty() {
        writeln!(o, "None.\n")?;
    } else {
        for c in unreachable {
            let why = c.boards.first().and_then(|b| b.why.first()).map_or("", String::as_str);
            writeln!(o, "- {}: {}", code(&c.id), md(why))?;
        }
        writeln!(o)?;
    }

    // Against the baseline.
    writeln!(o, "## Against the baseline\n")?;
    writeln!(o, "Baseline: {}.\n", code(&q.baseline))?;
    for b in &q.boards {
        writeln!(o, "### {}\n", md(&b.rig))?;
        let Some(d) = &b.baseline else {
            writeln!(o, "No baseline run of this board.\n")?;
            continue;
        };
        write!(o, "Compared with run {} ({})", code(&d.run_id), md(&d.rig))?;
        if d.common_only {
            write!(o, ", only the results both runs have")?;
        }
        writeln!(
            o,
            ": {} new failure{}, {} fixed, {} other change{}, {} new case{}, {} removed; \
             the full comparison is {}.\n",
            d.new_failures.len(),
            if d.new_failures.len() == 1 { "" } else { "s" },
            d.fixed.len(),
            d.other_changes.len(),
            if d.other_changes.len() == 1 { "" } else { "s" },
            d.new_cases,
            if d.new_cases == 1 { "" } else { "s" },
            d.removed_cases,
            code(&format!("{}/{DIFF_VS_BASELINE}", b.folder))
        )?;
        for (heading, entries) in [
            ("New failures", &d.new_failures),
            ("Fixed", &d.fixed),
            ("Other changes", &d.other_changes),
        ] {
            if entries.is_empty() {
                continue;
            }
            writeln!(o, "{heading}:\n")?;
            for e in entries.iter() {
                let before = e.before.map_or("absent", Verdict::as_str);
                write!(
                    o,
                    "- {} ({before} → {}): {}",
                    code(&e.key),
                    e.after.as_str(),
                    md(&e.title)
                )?;
                if let Some(reason) = &e.reason {
                    write!(o, " — {}", md(reason))?;
                }
                writeln!(o)?;
            }
            writeln!(o)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::spec::{ClauseKind, Origin};
    use crate::testdata::sample_run;

    fn clause(id: &str, section: &str, unreachable: Option<&str>) -> Clause {
        Clause {
            id: id.into(),
            section: section.into(),
            source: "chapter".into(),
            kind: ClauseKind::Behaviour,
            lines: [1, 1],
            text: format!("The text of {id}."),
            unreachable: unreachable.map(Into::into),
            origin: Origin { file: "specs/clauses.toml".into(), line: 1 },
        }
    }

    /// The sample run's clauses, one unreachable clause and one no case cites.
    fn inventory() -> Vec<Clause> {
        let mut clauses: Vec<Clause> =
            sample_run().clauses.iter().map(|c| clause(&c.id, &c.section, None)).collect();
        clauses.push(clause(
            "tls.errors.session-resume",
            "SSL/TLS errors",
            Some("The module keeps no session cache, so it never resumes a session."),
        ));
        clauses.push(clause("ntp.client", "NTP client", None));
        clauses
    }

    /// The simulated module, complete: the sample run, finished, with its identity.
    fn sim() -> RunResult {
        let mut run = sample_run();
        run.interrupted = false;
        run.module_version = Some("Gecko OS 4.2.1 sim".into());
        run.module_mac = Some("02:00:5e:10:00:01".into());
        run
    }

    /// The emulated board: everything passes but a known deviation.
    fn board() -> RunResult {
        let mut run = sim();
        run.run_id = "20250101-121000-qemu-an386".into();
        run.rig.name = "qemu-an386".into();
        run.rig.path = "rigs/qemu-an386.toml".into();
        run.rig.kind = "qemu".into();
        run.module_version = Some("Gecko OS 4.2.1 qemu-an386".into());
        run.module_mac = None;
        for c in &mut run.cases {
            c.stale_deviation = false;
            c.reason = None;
            c.verdict = if c.id == "passkeys/ascii/max-length" {
                c.deviation = Some("the board's UART drops the 64th byte".into());
                Verdict::KnownDeviation
            } else {
                c.deviation = None;
                Verdict::Pass
            };
        }
        run.totals = Totals::count(&run.cases);
        run
    }

    /// The sim's run of the last release: one case failed then, one did not exist.
    fn baseline() -> RunResult {
        let mut run = sample_run();
        run.run_id = "20241201-120000-sim-a".into();
        for c in &mut run.cases {
            if c.id == "passkeys/ascii/min-length" {
                c.verdict = Verdict::Fail;
                c.reason = Some("step 1: timeout".into());
            }
        }
        run.cases.retain(|c| c.id != "passkeys/hex/uppercase");
        run.totals = Totals::count(&run.cases);
        run
    }

    fn find<'a>(q: &'a Qualification, id: &str) -> &'a ClauseRow {
        q.clauses.iter().find(|c| c.id == id).unwrap()
    }

    #[test]
    fn each_clause_gets_a_verdict_per_board() {
        let (sim, board, base) = (sim(), board(), sample_run());
        let inventory = inventory();
        let q = qualify(
            "20250101-130000",
            "reports/qualify/20241201-130000",
            &inventory,
            &[
                BoardRun { run: &sim, folder: "sim-a", baseline: Some(&base) },
                BoardRun { run: &board, folder: "qemu-an386", baseline: None },
            ],
        );
        assert_eq!(q.clauses.len(), inventory.len());
        let unreachable = find(&q, "tls.errors.session-resume");
        assert!(unreachable.boards.iter().all(|b| b.verdict == ClauseVerdict::Unreachable));
        assert!(unreachable.boards[0].why[0].contains("no session cache"));
        assert!(
            find(&q, "ntp.client").boards.iter().all(|b| b.verdict == ClauseVerdict::NotCovered)
        );
        // Every clause of the sample run keeps its worst verdict on the sim.
        for c in &sim.clauses {
            let v = find(&q, &c.id).boards[0].verdict;
            let expected = match c.status {
                crate::model::ClauseStatus::Fail => ClauseVerdict::Fail,
                crate::model::ClauseStatus::Error => ClauseVerdict::Error,
                crate::model::ClauseStatus::KnownDeviation => ClauseVerdict::KnownDeviation,
                crate::model::ClauseStatus::Pass => ClauseVerdict::Pass,
                crate::model::ClauseStatus::NotRun | crate::model::ClauseStatus::Uncovered => {
                    ClauseVerdict::NotCovered
                }
            };
            assert_eq!(v, expected, "{}", c.id);
        }
        // The board's deviation carries the expectations file's reason.
        let deviating: Vec<&ClauseRow> = q
            .clauses
            .iter()
            .filter(|c| c.boards[1].verdict == ClauseVerdict::KnownDeviation)
            .collect();
        assert!(!deviating.is_empty());
        assert!(deviating.iter().all(|c| c.boards[1].why
            == ["passkeys/ascii/max-length: the board's UART drops the 64th byte"]));
        assert!(!q.qualified);
        assert!(q.reasons.iter().any(|r| r.starts_with("sim-a: ") && r.ends_with("failed")));
        assert!(q.boards[0].baseline.as_ref().is_some_and(|d| !d.common_only));
        assert!(q.clauses.iter().all(|c| c.boards[1].verdict != ClauseVerdict::Fail));
    }

    #[test]
    fn qualified_only_with_every_board_clean_and_complete() {
        let (b, inventory) = (board(), inventory());
        let runs = [BoardRun { run: &b, folder: "qemu-an386", baseline: None }];
        let q = qualify("s", "b", &inventory, &runs);
        assert!(q.qualified, "{:?}", q.reasons);
        assert!(q.reasons.is_empty());

        let mut partial = board();
        partial.selection = "serial/".into();
        let q = qualify("s", "b", &inventory, &[BoardRun { run: &partial, ..runs[0] }]);
        assert_eq!(q.reasons, ["qemu-an386: only part of the suite ran (selection `serial/`)"]);

        let mut errored = board();
        errored.cases[0].verdict = Verdict::Error;
        errored.totals = Totals::count(&errored.cases);
        errored.interrupted = true;
        let q = qualify("s", "b", &inventory, &[BoardRun { run: &errored, ..runs[0] }]);
        assert_eq!(q.reasons, ["qemu-an386: 1 errored", "qemu-an386: the run was interrupted"]);
        assert!(!qualify("s", "b", &inventory, &[]).qualified);
    }

    #[test]
    fn a_baseline_of_another_rig_compares_the_common_results() {
        let (base, b) = (sim(), board());
        let inventory = inventory();
        let q = qualify(
            "s",
            "b",
            &inventory,
            &[BoardRun { run: &b, folder: "qemu-an386", baseline: Some(&base) }],
        );
        let d = q.boards[0].baseline.as_ref().unwrap();
        assert!(d.common_only);
        assert_eq!(d.rig, "sim-a");
        let fixed: Vec<&str> = d.fixed.iter().map(|e| e.key.as_str()).collect();
        assert!(fixed.contains(&"passkeys/ascii/too-long"), "{fixed:?}");
    }

    #[test]
    fn the_json_holds_the_verdict_and_every_clause() {
        let (b, inventory) = (board(), inventory());
        let q = qualify(
            "s",
            "b",
            &inventory,
            &[BoardRun { run: &b, folder: "qemu-an386", baseline: None }],
        );
        let value: serde_json::Value = serde_json::from_str(&render_json(&q).unwrap()).unwrap();
        assert_eq!(value["qualified"], true);
        assert_eq!(value["clauses"].as_array().unwrap().len(), inventory.len());
        assert_eq!(value["boards"][0]["firmware_version"], "Gecko OS 4.2.1 qemu-an386");
        assert_eq!(
            value["clauses"].as_array().unwrap().last().unwrap()["boards"][0]["verdict"],
            "not_covered"
        );
    }

    #[test]
    fn qualification_markdown_snapshot() {
        let (sim, board, base) = (sim(), board(), baseline());
        let q = qualify(
            "20250101-130000",
            "reports/qualify/20241201-130000",
            &inventory(),
            &[
                BoardRun { run: &sim, folder: "sim-a", baseline: Some(&base) },
                BoardRun { run: &board, folder: "qemu-an386", baseline: None },
            ],
        );
        insta::assert_snapshot!("qualification_md", render_markdown(&q));
    }
}

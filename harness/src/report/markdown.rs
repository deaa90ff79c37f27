//! `summary.md`: what a person reads first (CI job summary, PR comment, terminal).
//!
//! Run header, totals, a table per section, the failures and errors with the tail of their
//! transcript, known and stale deviations, skip reasons, the assumed-basis count and clause
//! coverage per clause section (checked by a passing case / only named / uncovered). Text from the module or the harness is escaped: control
//! characters shown as `\xHH`, Markdown and HTML punctuation backslash-escaped outside code.

use std::fmt::Write as _;

use super::matrix;
use super::text::{self, visible};
use crate::coverage;
use crate::model::{
    Basis, CaseResult, ClauseResult, ClauseStatus, Coverage, RunResult, StepOutcome, Totals,
    Verdict,
};

/// How many transcript entries a failure shows (the last ones).
pub const TRANSCRIPT_TAIL: usize = 12;

/// How many only-named clauses the coverage section lists by id.
pub const NAMED_SHOWN: usize = 30;

/// Renders `summary.md`.
pub fn render_summary(run: &RunResult) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_summary(&mut out, run);
    out
}

fn write_summary(o: &mut String, run: &RunResult) -> std::fmt::Result {
    writeln!(o, "# Conformance run {}\n", code(&run.run_id))?;

    let t = &run.totals;
    if run.is_green() {
        writeln!(o, "**GREEN**: nothing failed, nothing errored, no stale deviation.\n")?;
    } else {
        writeln!(o, "**NOT GREEN**: {}.\n", run.red_reasons().join(", "))?;
    }
    if run.interrupted {
        writeln!(
            o,
            "> **Interrupted:** the run was stopped before every selected case ran; \
             the cases that did not run are reported as skipped.\n"
        )?;
    }

    writeln!(o, "| | |\n|---|---|")?;
    writeln!(
        o,
        "| Rig | {} ({}), port {}, {} |",
        cell(&run.rig.name),
        cell(&run.rig.kind),
        cell_code(&run.rig.port),
        cell_code(&run.rig.path)
    )?;
    let version = match &run.module_version {
        Some(v) => cell(v),
        None => "*did not answer*".to_string(),
    };
    writeln!(o, "| Module version | {version} |")?;
    writeln!(o, "| Selection | {} |", cell_code(&run.selection))?;
    writeln!(o, "| Started | {} |", cell(&run.started_at))?;
    writeln!(o, "| Finished | {} |", cell(&run.finished_at))?;
    writeln!(o, "| Duration | {} |", text::duration(run.duration_ms))?;
    writeln!(o)?;

    writeln!(o, "## Totals\n")?;
    writeln!(o, "| Pass | Fail | Error | Skipped | Known deviation | Total | Stale deviations |")?;
    writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|")?;
    writeln!(
        o,
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        t.pass,
        t.fail,
        t.error,
        t.skipped,
        t.known_deviation,
        t.total(),
        t.stale_deviations
    )?;

    write_places(o, run)?;
    write_sections(o, run)?;
    write_transports(o, run)?;
    write_failures(o, run)?;
    write_deviations(o, run)?;
    write_skipped(o, run)?;
    write_basis(o, run)?;
    write_coverage(o, run)?;

    writeln!(o, "---\n")?;
    writeln!(o, "Every case, with steps and transcript: `report.html`; the data: `results.json`.")?;
    Ok(())
}

/// A run spread over labgrid places: each place, the module behind it, and its results.
fn write_places(o: &mut String, run: &RunResult) -> std::fmt::Result {
    if run.places.is_empty() {
        return Ok(());
    }
    writeln!(
        o,
        "## By place
"
    )?;
    writeln!(o, "| Place | Module | MAC | Console | Pass | Fail | Error | Deviation | Ran |")?;
    writeln!(o, "|---|---|---|---|---:|---:|---:|---:|---:|")?;
    for p in &run.places {
        let t = Totals::count(run.cases.iter().filter(|c| c.place.as_deref() == Some(&p.place)));
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            code(&p.place),
            p.module_version.as_deref().map_or_else(|| "*did not answer*".into(), cell),
            p.module_mac.as_deref().map_or_else(String::new, cell_code),
            cell_code(&p.console),
            t.pass,
            t.fail,
            t.error,
            t.known_deviation,
            t.total() - t.skipped
        )?;
    }
    writeln!(o)
}

fn write_sections(o: &mut String, run: &RunResult) -> std::fmt::Result {
    writeln!(o, "## By section\n")?;
    writeln!(o, "| Section | Pass | Fail | Error | Skipped | Deviation | Total |")?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|")?;
    let row = |o: &mut String, name: &str, t: &Totals| {
        writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            t.pass,
            t.fail,
            t.error,
            t.skipped,
            t.known_deviation,
            t.total()
        )
    };
    for (section, cases) in text::group_by(&run.cases, |c| c.section.as_str()) {
        row(o, &cell(section), &Totals::count(cases))?;
    }
    row(o, "**All**", &Totals::count(&run.cases))?;
    writeln!(o)
}

/// With several transports: totals per transport, the cases whose outcome differs by
/// transport, and the whole case × transport matrix (folded).
fn write_transports(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let Some(m) = matrix::matrix(run) else { return Ok(()) };
    writeln!(o, "## By transport\n")?;
    writeln!(o, "| Transport | Pass | Fail | Error | Skipped | Deviation | Total |")?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|")?;
    for &t in &m.transports {
        let n = Totals::count(run.cases.iter().filter(|c| c.transport == t));
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            t.name(),
            n.pass,
            n.fail,
            n.error,
            n.skipped,
            n.known_deviation,
            n.total()
        )?;
    }
    writeln!(o)?;
    let header = |o: &mut String| {
        let names: Vec<&str> = m.transports.iter().map(|t| t.name()).collect();
        writeln!(o, "| Case | {} |", names.join(" | "))?;
        writeln!(o, "|---|{}", "---|".repeat(names.len()))
    };
    let row = |o: &mut String, r: &matrix::Row<'_>| {
        let cells: Vec<String> = r
            .cells
            .iter()
            .map(|c| match c {
                None => "—".to_string(),
                Some(c) if text::is_failing(c.verdict) => format!("**{}**", c.verdict.as_str()),
                Some(c) => c.verdict.as_str().to_string(),
            })
            .collect();
        writeln!(o, "| {} | {} |", cell_code(r.id), cells.join(" | "))
    };
    let differing: Vec<&matrix::Row<'_>> = m.differing().collect();
    writeln!(o, "### Outcome differs by transport ({})\n", differing.len())?;
    if differing.is_empty() {
        writeln!(o, "None: every case that ran over several transports had one outcome.\n")?;
    } else {
        header(o)?;
        for r in differing {
            row(o, r)?;
        }
        writeln!(o)?;
    }
    writeln!(o, "<details><summary>Every case by transport ({})</summary>\n", m.rows.len())?;
    header(o)?;
    for r in &m.rows {
        row(o, r)?;
    }
    writeln!(o, "\n</details>\n")
}

fn write_failures(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let failing: Vec<&CaseResult> =
        run.cases.iter().filter(|c| text::is_failing(c.verdict)).collect();
    writeln!(o, "## Failures and errors ({})\n", failing.len())?;
    if failing.is_empty() {
        writeln!(o, "None.\n")?;
    }
    for case in failing {
        writeln!(
            o,
            "### {} {}: {}\n",
            case.verdict.as_str().to_uppercase(),
            code(&case.key()),
            md(&case.title)
        )?;
        let reason = case.reason.as_deref().unwrap_or("(no reason given)");
        writeln!(o, "- Reason: {}", md(reason))?;
        if let Some(place) = &case.place {
            writeln!(o, "- Place: {}", code(place))?;
        }
        for step in case
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, StepOutcome::Failed | StepOutcome::Error))
        {
            write!(
                o,
                "- Step {} {}: {}",
                step.index,
                code(&step.action),
                text::outcome(step.outcome)
            )?;
            if let Some(m) = &step.message {
                write!(o, ": {}", md(m))?;
            }
            writeln!(o)?;
        }
        writeln!(o, "- Clauses: {}", list_code(&case.clauses))?;
        writeln!(o, "- Basis: {}", basis(case.basis))?;
        if case.attempts > 1 {
            writeln!(o, "- Attempts: {}", case.attempts)?;
        }
        writeln!(o)?;
        let n = case.transcript.len();
        if n == 0 {
            writeln!(o, "No transcript.\n")?;
        } else {
            let tail = &case.transcript[n.saturating_sub(TRANSCRIPT_TAIL)..];
            if tail.len() == n {
                writeln!(o, "Transcript ({n} entr{}):\n", if n == 1 { "y" } else { "ies" })?;
            } else {
                writeln!(o, "Transcript, the last {} of {n} entries:\n", tail.len())?;
            }
            let lines: Vec<String> = tail.iter().map(text::transcript_line).collect();
            writeln!(o, "{}\n", fenced(&lines.join("\n")))?;
        }
    }
    Ok(())
}

fn write_deviations(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let known: Vec<&CaseResult> =
        run.cases.iter().filter(|c| c.verdict == Verdict::KnownDeviation).collect();
    writeln!(o, "## Known deviations ({})\n", known.len())?;
    if known.is_empty() {
        writeln!(o, "None.")?;
    }
    for case in known {
        write!(
            o,
            "- {}: {}",
            code(&case.key()),
            md(case.deviation.as_deref().unwrap_or("(no reason given)"))
        )?;
        if let Some(reason) = &case.reason {
            write!(o, " (this run: {})", md(reason))?;
        }
        writeln!(o)?;
    }
    writeln!(o)?;

    let stale: Vec<&CaseResult> = run.cases.iter().filter(|c| c.stale_deviation).collect();
    writeln!(o, "## Stale deviations ({})\n", stale.len())?;
    if stale.is_empty() {
        writeln!(o, "None.")?;
    }
    for case in stale {
        writeln!(
            o,
            "- {}: listed as a known deviation ({}), yet passed: remove the entry from the rig's \
             expectations file.",
            code(&case.key()),
            md(case.deviation.as_deref().unwrap_or("no reason given")),
        )?;
    }
    writeln!(o)
}

fn write_skipped(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let skipped: Vec<&CaseResult> =
        run.cases.iter().filter(|c| c.verdict == Verdict::Skipped).collect();
    if skipped.is_empty() {
        return Ok(());
    }
    writeln!(o, "## Skipped ({})\n", skipped.len())?;
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for case in skipped {
        let reason = case.reason.as_deref().unwrap_or("(no reason given)");
        match reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => reasons.push((reason, 1)),
        }
    }
    for (reason, n) in reasons {
        writeln!(o, "- {}: {n}", md(reason))?;
    }
    writeln!(o)
}

fn write_basis(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let assumed: Vec<&CaseResult> =
        run.cases.iter().filter(|c| c.basis == Basis::Assumed).collect();
    writeln!(o, "## Basis\n")?;
    write!(
        o,
        "{} of {} cases rest on an **assumed** expectation (the sources are silent or disagree; \
         each case's note says what was chosen)",
        assumed.len(),
        run.cases.len()
    )?;
    let t = Totals::count(assumed.iter().copied());
    let parts: Vec<String> = [
        (t.pass, "pass"),
        (t.fail, "fail"),
        (t.error, "error"),
        (t.skipped, "skipped"),
        (t.known_deviation, "known deviation"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() { writeln!(o, ".\n") } else { writeln!(o, ": {}.\n", parts.join(", ")) }
}

fn write_coverage(o: &mut String, run: &RunResult) -> std::fmt::Result {
    writeln!(o, "## Clause coverage\n")?;
    if run.clauses.is_empty() {
        return writeln!(o, "No clause inventory in this run.\n");
    }
    let clauses = coverage::of_run(run);
    let all = coverage::total(&coverage::run_sections(run), None);
    writeln!(
        o,
        "**{} of {} clauses checked** by a passing case of this run; {} only named (cited, \
         but no citing case passed); {} uncovered (no case of this run's selection cites \
         them). Status: the worst verdict of the citing cases.\n",
        all.checked,
        all.total(),
        all.named,
        all.uncovered
    )?;
    writeln!(
        o,
        "| Clause section | Checked | Only named | Uncovered | Pass | Deviation | Error | Fail | \
         Not run |"
    )?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let row = |o: &mut String, name: &str, rows: &[&(&ClauseResult, Coverage)]| {
        let mut tally = coverage::Tally::default();
        rows.iter().for_each(|(_, cov)| tally.add(*cov));
        let n = |s: ClauseStatus| rows.iter().filter(|(c, _)| c.status == s).count();
        writeln!(
            o,
            "| {name} | {}/{} | {} | {} | {} | {} | {} | {} | {} |",
            tally.checked,
            tally.total(),
            tally.named,
            tally.uncovered,
            n(ClauseStatus::Pass),
            n(ClauseStatus::KnownDeviation),
            n(ClauseStatus::Error),
            n(ClauseStatus::Fail),
            n(ClauseStatus::NotRun),
        )
    };
    for (section, rows) in text::group_by(&clauses, |(c, _)| c.section.as_str()) {
        row(o, &cell(section), &rows)?;
    }
    let rows: Vec<&(&ClauseResult, Coverage)> = clauses.iter().collect();
    row(o, "**All**", &rows)?;
    writeln!(o)?;

    let named: Vec<&(&ClauseResult, Coverage)> =
        clauses.iter().filter(|(_, cov)| *cov == Coverage::Named).collect();
    if !named.is_empty() {
        writeln!(o, "### Only named ({})\n", named.len())?;
        for (c, _) in named.iter().take(NAMED_SHOWN) {
            writeln!(o, "- {} ({}): {}", code(&c.id), c.status.as_str(), md(&c.text))?;
        }
        if named.len() > NAMED_SHOWN {
            writeln!(o, "- … and {} more (see `report.html`)", named.len() - NAMED_SHOWN)?;
        }
        writeln!(o)?;
    }
    Ok(())
}

fn basis(b: Basis) -> &'static str {
    match b {
        Basis::Documented => "documented",
        Basis::Assumed => "**assumed**",
    }
}

/// Text for Markdown prose: control characters visible (`\xHH`), punctuation that Markdown or
/// HTML would interpret backslash-escaped (CommonMark allows a backslash before any ASCII
/// punctuation).
pub(crate) fn md(s: &str) -> String {
    let s = visible(s);
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let escape = match c {
            // A backslash is literal unless punctuation follows (or it ends a line: a hard
            // break), so `\x1b` stays as it is.
            '\\' => chars.peek().is_none_or(char::is_ascii_punctuation),
            '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' | '~' | '!' => true,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for a table cell (same as [`md`]: `|` is escaped there too).
fn cell(s: &str) -> String {
    md(s)
}

/// An inline code span that survives any content: the delimiter is one backtick longer than
/// the longest run of backticks inside.
pub(crate) fn code(s: &str) -> String {
    let s = visible(s);
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() { " " } else { "" };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A code span inside a table cell, where a `|` would end the cell even inside code.
fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

fn list_code(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ")
}

/// A fenced `text` code block whose fence is longer than any backtick run inside.
pub(crate) fn fenced(body: &str) -> String {
    let fence = "`".repeat((longest_run(body, '`') + 1).max(3));
    format!("{fence}text\n{body}\n{fence}")
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for x in s.chars() {
        if x == c {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::testdata::sample_run;

    #[test]
    fn summary_snapshot() {
        insta::assert_snapshot!("summary_md", render_summary(&sample_run()));
    }

    #[test]
    fn summary_with_transports_snapshot() {
        let md = render_summary(&crate::testdata::sample_multi_transport_run());
        let start = md.find("## By transport").expect("a transport section");
        let end = md.find("## Known deviations").expect("deviations");
        insta::assert_snapshot!("summary_md_transports", &md[start..end]);
        assert!(md.contains("### FAIL `passkeys/ascii/min-length@rest`"), "keyed by transport");
    }

    #[test]
    fn a_run_over_labgrid_places_names_them_and_their_modules() {
        let mut run = sample_run();
        run.places = ["gecko-lab-0", "gecko-lab-1"]
            .iter()
            .enumerate()
            .map(|(i, p)| crate::model::PlaceIdentity {
                place: (*p).into(),
                console: format!("rfc2217://10.0.0.{i}:2217"),
                module_version: (i == 0).then(|| "Gecko OS-0.1.0".into()),
                module_mac: Some(format!("02:00:5e:20:00:0{i}")),
            })
            .collect();
        for (i, c) in run.cases.iter_mut().enumerate() {
            if c.verdict != Verdict::Skipped {
                c.place = Some(format!("gecko-lab-{}", i % 2));
            }
        }
        let md = render_summary(&run);
        let start = md.find("## By place").expect("a place section");
        let end = md.find("## By section").expect("sections");
        insta::assert_snapshot!("summary_md_places", &md[start..end]);
        assert!(md.contains("- Place: `gecko-lab-"), "failures name their place: {md}");
        assert!(!render_summary(&sample_run()).contains("## By place"));
    }

    #[test]
    fn one_transport_has_no_transport_section() {
        assert!(!render_summary(&sample_run()).contains("## By transport"));
    }

    #[test]
    fn green_run_says_so() {
        let mut run = sample_run();
        run.cases.retain(|c| c.verdict == Verdict::Pass && !c.stale_deviation);
        run.totals = Totals::count(&run.cases);
        run.interrupted = false;
        let md = render_summary(&run);
        assert!(md.contains("**GREEN**"), "{md}");
        assert!(!md.contains("Interrupted"));
        assert!(md.contains("## Failures and errors (0)\n\nNone."));
    }

    #[test]
    fn an_interrupted_run_is_not_green_even_with_nothing_failed() {
        let mut run = sample_run();
        run.cases.retain(|c| c.verdict == Verdict::Pass && !c.stale_deviation);
        run.totals = Totals::count(&run.cases);
        run.interrupted = true;
        let md = render_summary(&run);
        assert!(md.contains("**NOT GREEN**: interrupted."), "{md}");
        assert!(md.contains("> **Interrupted:**"), "{md}");
    }

    #[test]
    fn escaping() {
        assert_eq!(md("a <b> | c_d \x1b"), "a \\<b\\> \\| c\\_d \\x1b");
        assert_eq!(md("a\\"), "a\\\\");
        assert_eq!(md("a\\*"), "a\\\\\\*");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(fenced("```\nx"), "````text\n```\nx\n````");
    }
}

//! `report.html`: one self-contained page (inline CSS, no script, no external asset) that opens
//! from disk.
//!
//! Header and totals, then the conformance matrix (clauses checked by a passing case / only
//! named / uncovered per clause section, then every clause of the inventory, grouped by
//! clause section, its status and coverage, linked to the cases citing it), then every case with
//! its verdict, clauses, basis, reason, steps, a link to its packet capture, its timeline (an
//! inline SVG, see [`super::timeline`]) and transcript (in `<details>`, open for failures and
//! errors).
//!
//! Every piece of text is escaped: `& < > " '` as entities, control characters shown as `\xHH`
//! (module output can contain anything). Anchors: `#clause-<id>`, `#case-<id>` (characters
//! other than `A-Z a-z 0-9 . - /` encoded as `_HH`).
//!
//! CSS classes a consumer may rely on: `st st-<status>` on the matrix status cell
//! (`uncovered`, `not_run`, `pass`, `known_deviation`, `error`, `fail`), `cov cov-<coverage>`
//! on its coverage cell (`checked`, `named`, `uncovered`) and `v v-<verdict>` on
//! verdict badges (`pass`, `fail`, `error`, `skipped`, `known_deviation`); `capture` on the
//! link to a case's pcap file (relative to the run folder); `timeline` on the timeline SVG.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::text::{self, h, h_lines};
use super::timeline;
use crate::coverage;
use crate::model::{
    Basis, CaseResult, ClauseResult, ClauseStatus, Coverage, Direction, RunResult, StepOutcome,
    Totals, Verdict,
};

const CSS: &str = r#"
:root { --fg: #1d1d1f; --muted: #666; --line: #d8d8d8; --bg-alt: #f7f7f8;
  --pass: #2e7d32; --fail: #c62828; --error: #6a1b9a; --dev: #f9a825;
  --uncovered: #bdbdbd; --notrun: #eeeeee; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  margin: 0 auto; padding: 1em 2em 4em; max-width: 1400px; }
h1 { font-size: 1.6em; margin: .2em 0 .4em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 2px solid var(--line); padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
h4 { font-size: 1em; margin: 0 0 .4em; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
a { color: #0b57d0; text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid var(--line); padding: .3em .55em; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.all td { font-weight: 600; background: var(--bg-alt); }
.banner { padding: .5em .8em; border-radius: 4px; font-weight: 600; margin: .4em 0; }
.banner.green { background: #e8f5e9; color: var(--pass); border: 1px solid var(--pass); }
.banner.red { background: #ffebee; color: var(--fail); border: 1px solid var(--fail); }
.banner.interrupted { background: #fff8e1; color: #8d6e00; border: 1px solid var(--dev); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .6em 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
nav { margin: .8em 0; color: var(--muted); }
.v, .st { font-weight: 600; white-space: nowrap; }
.v { display: inline-block; padding: 0 .45em; border-radius: 3px; font-size: .9em; }
.v-pass, .st-pass { background: var(--pass); color: #fff; }
.v-fail, .st-fail { background: var(--fail); color: #fff; }
.v-error, .st-error { background: var(--error); color: #fff; }
.v-known_deviation, .st-known_deviation { background: var(--dev); color: #1d1d1f; }
.v-skipped, .st-not_run { background: var(--notrun); color: var(--muted); }
.st-uncovered { background: var(--uncovered); color: #333; }
.cov { white-space: nowrap; }
td.cov-checked { color: var(--pass); font-weight: 600; }
td.cov-named { color: var(--fail); font-weight: 600; }
td.cov-uncovered { color: var(--muted); }
th.v, th.st { display: table-cell; border-radius: 0; }
table.matrix { width: 100%; }
table.transports tr.differs td { background: #fff3e0; }
span.differs { color: var(--fail); font-weight: 600; font-size: .85em; }
table.matrix td.text { width: 55%; }
table.matrix td.cases a { display: inline-block; margin: 0 .3em .2em 0; }
table.matrix tr:target, article.case:target { outline: 3px solid #0b57d0; }
.src { color: var(--muted); font-size: .85em; }
.legend span { margin-right: .4em; padding: 0 .45em; border-radius: 3px; }
article.case { border: 1px solid var(--line); border-left: 6px solid var(--line); border-radius: 4px;
  padding: .7em 1em; margin: .8em 0; }
article.case.c-pass { border-left-color: var(--pass); }
article.case.c-fail { border-left-color: var(--fail); }
article.case.c-error { border-left-color: var(--error); }
article.case.c-known_deviation { border-left-color: var(--dev); }
article.case.c-skipped { border-left-color: var(--notrun); }
article.case dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .3em 0; }
article.case dt { color: var(--muted); }
article.case dd { margin: 0; }
.pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.assumed { background: #fff3cd; color: #8d6e00; font-weight: 600; padding: 0 .35em; border-radius: 3px; }
.note { color: var(--muted); }
.stale { color: var(--fail); font-weight: 600; }
table.steps td.o-failed { color: var(--fail); font-weight: 600; }
table.steps td.o-error { color: var(--error); font-weight: 600; }
table.steps td.o-not_run { color: var(--muted); }
details { margin-top: .5em; }
summary { cursor: pointer; color: var(--muted); }
pre.transcript { background: var(--bg-alt); border: 1px solid var(--line); padding: .6em .8em;
  overflow-x: auto; white-space: pre; margin: .4em 0; }
pre.transcript .d-tx { color: #0b57d0; }
pre.transcript .d-rx { color: #1d1d1f; }
pre.transcript .d-note { color: var(--muted); font-style: italic; }
@media print { details { display: block; } article.case { break-inside: avoid; } }
"#;

/// Renders `report.html`.
pub fn render_html(run: &RunResult) -> String {
    render_html_with_keylog(run, None)
}

/// Renders `report.html` for a run folder that holds a TLS key log at `keylog` (relative to
/// it, e.g. `keylog.txt`): each case's capture names it too, since the two together let
/// Wireshark decrypt the case's TLS connections.
pub fn render_html_with_keylog(run: &RunResult, keylog: Option<&str>) -> String {
    let mut out = String::with_capacity(32 * 1024);
    // Writing to a String cannot fail.
    let _ = write_page(&mut out, run, keylog);
    out
}

fn write_page(o: &mut String, run: &RunResult, keylog: Option<&str>) -> std::fmt::Result {
    let verdict_word = if run.is_green() { "GREEN" } else { "NOT GREEN" };
    writeln!(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(o, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")?;
    writeln!(o, "<title>{verdict_word}: conformance run {}</title>", h(&run.run_id))?;
    writeln!(o, "<style>{CSS}{}</style>\n</head>\n<body>", timeline::CSS)?;

    write_header(o, run)?;
    writeln!(o, "<main>")?;
    write_totals(o, run)?;
    write_transport_matrix(o, run)?;
    write_matrix(o, run)?;
    write_cases(o, run, keylog)?;
    writeln!(o, "</main>\n</body>\n</html>")
}

fn write_header(o: &mut String, run: &RunResult) -> std::fmt::Result {
    writeln!(o, "<header>\n<h1>Conformance run <code>{}</code></h1>", h(&run.run_id))?;
    if run.is_green() {
        writeln!(
            o,
            "<p class=\"banner green\">GREEN: nothing failed, nothing errored, no stale deviation.</p>"
        )?;
    } else {
        writeln!(o, "<p class=\"banner red\">NOT GREEN: {}.</p>", run.red_reasons().join(", "))?;
    }
    if run.interrupted {
        writeln!(
            o,
            "<p class=\"banner interrupted\">Interrupted: the run was stopped before every \
             selected case ran; the cases that did not run are reported as skipped.</p>"
        )?;
    }
    writeln!(o, "<dl class=\"meta\">")?;
    writeln!(
        o,
        "<dt>Rig</dt><dd>{} ({}), port <code>{}</code>, <code>{}</code></dd>",
        h(&run.rig.name),
        h(&run.rig.kind),
        h(&run.rig.port),
        h(&run.rig.path)
    )?;
    match &run.module_version {
        Some(v) => writeln!(o, "<dt>Module version</dt><dd>{}</dd>", h(v))?,
        None => writeln!(o, "<dt>Module version</dt><dd><em>did not answer</em></dd>")?,
    }
    for p in &run.places {
        writeln!(
            o,
            "<dt>Place <code>{}</code></dt><dd>{} · MAC <code>{}</code> · console <code>{}</code></dd>",
            h(&p.place),
            h(p.module_version.as_deref().unwrap_or("did not answer")),
            h(p.module_mac.as_deref().unwrap_or("?")),
            h(&p.console)
        )?;
    }
    writeln!(o, "<dt>Selection</dt><dd><code>{}</code></dd>", h(&run.selection))?;
    let transports: Vec<&str> = run.transports.iter().map(|t| t.name()).collect();
    writeln!(o, "<dt>Transports</dt><dd>{}</dd>", h(&transports.join(", ")))?;
    writeln!(o, "<dt>Started</dt><dd>{}</dd>", h(&run.started_at))?;
    writeln!(o, "<dt>Finished</dt><dd>{}</dd>", h(&run.finished_at))?;
    writeln!(o, "<dt>Duration</dt><dd>{}</dd>", text::duration(run.duration_ms))?;
    writeln!(o, "<dt>Schema</dt><dd><code>{}</code></dd>", h(&run.schema))?;
    writeln!(o, "</dl>")?;
    let transports = if super::matrix::matrix(run).is_some() {
        " · <a href=\"#transports\">By transport</a>"
    } else {
        ""
    };
    writeln!(
        o,
        "<nav><a href=\"#totals\">Totals</a>{transports} · <a href=\"#matrix\">Conformance matrix</a> · \
         <a href=\"#cases\">Cases</a></nav>\n</header>"
    )
}

/// The anchor of each case entry: `case-<id>` for a case's first result, then
/// `case-<id>@<transport>` for its others (as [`write_cases`] writes them).
fn case_anchors(run: &RunResult) -> HashMap<(&str, crate::model::Transport), String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = HashMap::new();
    for (_, cases) in text::group_by(&run.cases, |c| c.section.as_str()) {
        for case in cases {
            let id = if seen.insert(case.id.as_str()) {
                anchor("case-", &case.id)
            } else {
                anchor("case-", &format!("{}@{}", case.id, case.transport))
            };
            out.insert((case.id.as_str(), case.transport), id);
        }
    }
    out
}

/// With several transports: every case × transport, its verdict linking to its entry, the
/// cases whose outcome differs by transport marked (`tr.differs`) and listed first.
fn write_transport_matrix(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let Some(m) = super::matrix::matrix(run) else { return Ok(()) };
    let anchors = case_anchors(run);
    let differing = m.differing().count();
    writeln!(o, "<section id=\"transports\">\n<h2>By transport</h2>")?;
    writeln!(
        o,
        "<p>{} cases over {} transports; <strong>{differing}</strong> with an outcome that \
         differs by transport (skipped by plan does not count).</p>",
        m.rows.len(),
        m.transports.len()
    )?;
    write!(o, "<table class=\"transports\">\n<thead><tr><th>Case</th>")?;
    for t in &m.transports {
        write!(o, "<th>{}</th>", h(t.name()))?;
    }
    writeln!(o, "</tr></thead>\n<tbody>")?;
    let rows = m.rows.iter().filter(|r| r.differs).chain(m.rows.iter().filter(|r| !r.differs));
    for r in rows {
        let class = if r.differs { " class=\"differs\"" } else { "" };
        write!(o, "<tr{class}><td><code>{}</code>", h(r.id))?;
        if r.differs {
            write!(o, " <span class=\"differs\">differs by transport</span>")?;
        }
        write!(o, "</td>")?;
        for (cell, t) in r.cells.iter().zip(&m.transports) {
            match cell {
                None => write!(o, "<td>—</td>")?,
                Some(c) => {
                    let slug = text::verdict_slug(c.verdict);
                    let href = anchors.get(&(r.id, *t)).cloned().unwrap_or_default();
                    let title = c.reason.as_deref().unwrap_or(c.verdict.as_str());
                    write!(
                        o,
                        "<td><a class=\"v v-{slug}\" href=\"#{href}\" title=\"{}\">{}</a></td>",
                        h(title),
                        c.verdict.as_str()
                    )?;
                }
            }
        }
        writeln!(o, "</tr>")?;
    }
    writeln!(o, "</tbody>\n<tfoot>")?;
    for (name, verdict) in [
        ("pass", Verdict::Pass),
        ("fail", Verdict::Fail),
        ("error", Verdict::Error),
        ("skipped", Verdict::Skipped),
        ("known deviation", Verdict::KnownDeviation),
    ] {
        write!(o, "<tr class=\"all\"><td>{name}</td>")?;
        for t in &m.transports {
            let n = run.cases.iter().filter(|c| c.transport == *t && c.verdict == verdict).count();
            write!(o, "<td class=\"n\">{n}</td>")?;
        }
        writeln!(o, "</tr>")?;
    }
    writeln!(o, "</tfoot>\n</table>\n</section>")
}

fn write_totals(o: &mut String, run: &RunResult) -> std::fmt::Result {
    writeln!(o, "<section id=\"totals\">\n<h2>Totals</h2>")?;
    writeln!(
        o,
        "<table class=\"totals\">\n<thead><tr><th>Section</th><th class=\"n v v-pass\">pass</th>\
         <th class=\"n v v-fail\">fail</th><th class=\"n v v-error\">error</th>\
         <th class=\"n v v-skipped\">skipped</th>\
         <th class=\"n v v-known_deviation\">known deviation</th><th class=\"n\">total</th>\
         </tr></thead>\n<tbody>"
    )?;
    let row = |o: &mut String, class: &str, name: &str, t: &Totals| {
        writeln!(
            o,
            "<tr{class}><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            t.pass,
            t.fail,
            t.error,
            t.skipped,
            t.known_deviation,
            t.total()
        )
    };
    for (section, cases) in text::group_by(&run.cases, |c| c.section.as_str()) {
        let name = format!("<a href=\"#{}\">{}</a>", anchor("section-", section), h(section));
        row(o, "", &name, &Totals::count(cases))?;
    }
    row(o, " class=\"all\"", "All", &run.totals)?;
    writeln!(o, "</tbody>\n</table>")?;

    let stale: Vec<&CaseResult> = run.cases.iter().filter(|c| c.stale_deviation).collect();
    if stale.is_empty() {
        writeln!(o, "<p>No stale deviation.</p>")?;
    } else {
        writeln!(
            o,
            "<p class=\"stale\">Stale deviations ({}): listed as known deviations, yet passing; \
             remove their entries from the rig's expectations file:</p>\n<ul>",
            stale.len()
        )?;
        for c in stale {
            writeln!(
                o,
                "<li>{}: {}</li>",
                case_link(c),
                h(c.deviation.as_deref().unwrap_or("(no reason given)"))
            )?;
        }
        writeln!(o, "</ul>")?;
    }
    let assumed = run.cases.iter().filter(|c| c.basis == Basis::Assumed).count();
    writeln!(
        o,
        "<p>{assumed} of {} cases rest on an <span class=\"assumed\">assumed</span> expectation \
         (the sources are silent or disagree; the case's note says what was chosen).</p>",
        run.cases.len()
    )?;
    writeln!(o, "</section>")
}

fn write_matrix(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let verdicts: HashMap<&str, Verdict> =
        run.cases.iter().map(|c| (c.id.as_str(), c.verdict)).collect();
    writeln!(o, "<section id=\"matrix\">\n<h2>Conformance matrix</h2>")?;
    let coverage: HashMap<&str, Coverage> =
        coverage::of_run(run).into_iter().map(|(c, cov)| (c.id.as_str(), cov)).collect();
    write_coverage_table(o, run)?;
    writeln!(o, "<p>A clause's status is the worst verdict of the cases citing it.</p>")?;
    write!(o, "<p class=\"legend\">")?;
    for s in [
        ClauseStatus::Uncovered,
        ClauseStatus::NotRun,
        ClauseStatus::Pass,
        ClauseStatus::KnownDeviation,
        ClauseStatus::Error,
        ClauseStatus::Fail,
    ] {
        write!(o, "<span class=\"st st-{}\">{}</span>", text::status_slug(s), s.as_str())?;
    }
    writeln!(o, "</p>")?;

    for (section, clauses) in text::group_by(&run.clauses, |c| c.section.as_str()) {
        let checked = clauses
            .iter()
            .filter(|c| coverage.get(c.id.as_str()) == Some(&Coverage::Checked))
            .count();
        writeln!(
            o,
            "<h3 id=\"{}\">{} <small class=\"src\">{checked}/{} checked</small></h3>",
            anchor("clauses-", section),
            h(section),
            clauses.len()
        )?;
        writeln!(
            o,
            "<table class=\"matrix\">\n<thead><tr><th>Clause</th><th>Lines</th><th>Text</th>\
             <th>Status</th><th>Coverage</th><th>Cases</th></tr></thead>\n<tbody>"
        )?;
        for clause in clauses {
            let cov = coverage.get(clause.id.as_str()).copied().unwrap_or(Coverage::Uncovered);
            write_clause_row(o, clause, cov, &verdicts)?;
        }
        writeln!(o, "</tbody>\n</table>")?;
    }
    writeln!(o, "</section>")
}

/// Checked / only named / uncovered per clause section, with a total row.
fn write_coverage_table(o: &mut String, run: &RunResult) -> std::fmt::Result {
    let sections = coverage::run_sections(run);
    let all = coverage::total(&sections, None);
    writeln!(
        o,
        "<p><strong>{} of {} clauses checked</strong> by a passing case of this run; {} only \
         named (cited, but no citing case passed); {} uncovered (no case of this run's \
         selection cites them).</p>",
        all.checked,
        all.total(),
        all.named,
        all.uncovered
    )?;
    writeln!(
        o,
        "<table class=\"coverage\">\n<thead><tr><th>Clause section</th>\
         <th class=\"n cov cov-checked\">checked</th><th class=\"n cov cov-named\">only named</th>\
         <th class=\"n cov cov-uncovered\">uncovered</th><th class=\"n\">total</th></tr></thead>\n\
         <tbody>"
    )?;
    let row = |o: &mut String, class: &str, name: &str, t: &coverage::Tally| {
        writeln!(
            o,
            "<tr{class}><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            t.checked,
            t.named,
            t.uncovered,
            t.total()
        )
    };
    for s in &sections {
        let name = format!("<a href=\"#{}\">{}</a>", anchor("clauses-", &s.section), h(&s.section));
        row(o, "", &name, &s.tally)?;
    }
    row(o, " class=\"all\"", "All", &all)?;
    writeln!(o, "</tbody>\n</table>")
}

fn coverage_slug(c: Coverage) -> &'static str {
    match c {
        Coverage::Checked => "checked",
        Coverage::Named => "named",
        Coverage::Uncovered => "uncovered",
    }
}

fn write_clause_row(
    o: &mut String,
    clause: &ClauseResult,
    coverage: Coverage,
    verdicts: &HashMap<&str, Verdict>,
) -> std::fmt::Result {
    let [first, last] = clause.lines;
    let lines = if first == last { first.to_string() } else { format!("{first}–{last}") };
    write!(
        o,
        "<tr id=\"{}\"><td class=\"id\"><code>{}</code><div class=\"src\">{}</div></td>\
         <td class=\"n\">{lines}</td><td class=\"text\">{}</td>\
         <td class=\"st st-{}\">{}</td><td class=\"cov cov-{}\">{}</td><td class=\"cases\">",
        anchor("clause-", &clause.id),
        h(&clause.id),
        h(&clause.source),
        h(&clause.text),
        text::status_slug(clause.status),
        clause.status.as_str(),
        coverage_slug(coverage),
        coverage.as_str()
    )?;
    for id in &clause.cases {
        match verdicts.get(id.as_str()) {
            Some(v) => write!(
                o,
                "<a class=\"v v-{}\" href=\"#{}\" title=\"{}\">{}</a>",
                text::verdict_slug(*v),
                anchor("case-", id),
                v.as_str(),
                h(id)
            )?,
            None => write!(o, "<span class=\"v\">{}</span>", h(id))?,
        }
    }
    writeln!(o, "</td></tr>")
}

fn write_cases(o: &mut String, run: &RunResult, keylog: Option<&str>) -> std::fmt::Result {
    let clause_ids: std::collections::HashSet<&str> =
        run.clauses.iter().map(|c| c.id.as_str()).collect();
    writeln!(o, "<section id=\"cases\">\n<h2>Cases</h2>")?;
    // A case run over several transports has an entry for each: links go to its first,
    // the others are `case-<id>@<transport>`.
    let anchors = case_anchors(run);
    for (section, cases) in text::group_by(&run.cases, |c| c.section.as_str()) {
        writeln!(o, "<h3 id=\"{}\">{}</h3>", anchor("section-", section), h(section))?;
        for case in cases {
            let id = anchors.get(&(case.id.as_str(), case.transport)).cloned().unwrap_or_default();
            write_case(o, case, &id, &clause_ids, keylog)?;
        }
    }
    writeln!(o, "</section>")
}

fn write_case(
    o: &mut String,
    case: &CaseResult,
    id: &str,
    clause_ids: &std::collections::HashSet<&str>,
    keylog: Option<&str>,
) -> std::fmt::Result {
    let slug = text::verdict_slug(case.verdict);
    writeln!(o, "<article class=\"case c-{slug}\" id=\"{id}\">")?;
    write!(
        o,
        "<h4><span class=\"v v-{slug}\">{}</span> <code>{}</code> {}",
        case.verdict.as_str(),
        h(&case.id),
        h(&case.title)
    )?;
    if case.stale_deviation {
        write!(o, " <span class=\"stale\">stale deviation</span>")?;
    }
    writeln!(o, "</h4>\n<dl>")?;

    write!(o, "<dt>Clauses</dt><dd>")?;
    if case.clauses.is_empty() {
        write!(o, "none")?;
    }
    for (i, id) in case.clauses.iter().enumerate() {
        if i > 0 {
            write!(o, ", ")?;
        }
        if clause_ids.contains(id.as_str()) {
            write!(o, "<a href=\"#{}\"><code>{}</code></a>", anchor("clause-", id), h(id))?;
        } else {
            write!(o, "<code>{}</code>", h(id))?;
        }
    }
    writeln!(o, "</dd>")?;

    match case.basis {
        Basis::Documented => write!(o, "<dt>Basis</dt><dd>documented")?,
        Basis::Assumed => write!(o, "<dt>Basis</dt><dd><span class=\"assumed\">assumed</span>")?,
    }
    if let Some(note) = &case.note {
        write!(o, "<div class=\"note pre\">{}</div>", h_lines(note))?;
    }
    writeln!(o, "</dd>")?;

    if let Some(reason) = &case.reason {
        writeln!(o, "<dt>Reason</dt><dd class=\"pre\">{}</dd>", h_lines(reason))?;
    }
    if let Some(deviation) = &case.deviation {
        write!(o, "<dt>Deviation</dt><dd class=\"pre\">{}", h_lines(deviation))?;
        if case.stale_deviation {
            write!(
                o,
                "<div class=\"stale\">Listed as a known deviation, yet passed: remove the entry \
                 from the rig's expectations file.</div>"
            )?;
        }
        writeln!(o, "</dd>")?;
    }
    write!(
        o,
        "<dt>Run</dt><dd>transport <code>{}</code> · started +{} · took {}",
        h(case.transport.name()),
        text::duration(case.start_ms),
        text::duration(case.duration_ms)
    )?;
    if case.attempts != 1 {
        write!(o, " · {} attempts", case.attempts)?;
    }
    if let Some(place) = &case.place {
        write!(o, " · place <code>{}</code>", h(place))?;
    }
    writeln!(o, "</dd>")?;
    if !case.tags.is_empty() {
        let tags: Vec<String> =
            case.tags.iter().map(|t| format!("<code>{}</code>", h(t))).collect();
        writeln!(o, "<dt>Tags</dt><dd>{}</dd>", tags.join(" "))?;
    }
    if let Some(capture) = &case.capture {
        match relative_href(capture) {
            Some(href) => writeln!(
                o,
                "<dt>Capture</dt><dd><a class=\"capture\" href=\"{href}\"><code>{}</code></a> \
                 (pcap, next to this report)</dd>",
                h(capture)
            )?,
            None => writeln!(o, "<dt>Capture</dt><dd><code>{}</code> (pcap)</dd>", h(capture))?,
        }
        if let Some(keylog) = keylog {
            let link = match relative_href(keylog) {
                Some(href) => {
                    format!("<a class=\"keylog\" href=\"{href}\"><code>{}</code></a>", h(keylog))
                }
                None => format!("<code>{}</code>", h(keylog)),
            };
            writeln!(
                o,
                "<dt>TLS key log</dt><dd>{link} (the run's TLS secrets: with the capture, \
                 Wireshark decrypts its TLS connections)</dd>"
            )?;
        }
    }
    writeln!(o, "</dl>")?;

    if !case.steps.is_empty() {
        writeln!(
            o,
            "<table class=\"steps\">\n<thead><tr><th class=\"n\">#</th><th>Action</th>\
             <th>Outcome</th><th>Message</th><th class=\"n\">ms</th></tr></thead>\n<tbody>"
        )?;
        for s in &case.steps {
            let index = if s.index == 0 { "setup".to_string() } else { s.index.to_string() };
            writeln!(
                o,
                "<tr><td class=\"n\">{index}</td><td><code>{}</code></td>\
                 <td class=\"o-{}\">{}</td><td class=\"pre\">{}</td><td class=\"n\">{}</td></tr>",
                h(&s.action),
                outcome_slug(s.outcome),
                text::outcome(s.outcome),
                s.message.as_deref().map(h_lines).unwrap_or_default(),
                s.duration_ms
            )?;
        }
        writeln!(o, "</tbody>\n</table>")?;
    }

    if !case.timeline.is_empty() {
        writeln!(
            o,
            "<div class=\"timeline\"><div class=\"src\">Timeline ({} events; hover a mark for \
             its text)</div>\n{}</div>",
            case.timeline.len(),
            timeline::render(&case.timeline)
        )?;
    }

    let n = case.transcript.len();
    if n > 0 {
        let open = if text::is_failing(case.verdict) { " open" } else { "" };
        writeln!(
            o,
            "<details{open}><summary>Transcript ({n} entr{})</summary>",
            if n == 1 { "y" } else { "ies" }
        )?;
        write!(o, "<pre class=\"transcript\">")?;
        for (i, e) in case.transcript.iter().enumerate() {
            if i > 0 {
                o.push('\n');
            }
            let class = match e.dir {
                Direction::Tx => "d-tx",
                Direction::Rx => "d-rx",
                Direction::Note => "d-note",
            };
            write!(o, "<span class=\"{class}\">{}</span>", h(&text::transcript_line(e)))?;
        }
        writeln!(o, "</pre>\n</details>")?;
    }
    writeln!(o, "</article>")
}

fn outcome_slug(o: StepOutcome) -> &'static str {
    match o {
        StepOutcome::Ok => "ok",
        StepOutcome::Failed => "failed",
        StepOutcome::Error => "error",
        StepOutcome::NotRun => "not_run",
    }
}

/// A link target for a file of the run folder: only a relative path without `..` (no scheme,
/// no absolute path), each character other than `A-Z a-z 0-9 . - _ /` percent-encoded.
fn relative_href(path: &str) -> Option<String> {
    let relative = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains(':')
        && !path.contains('\\')
        && path.split('/').all(|part| part != "..");
    if !relative {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}

fn case_link(c: &CaseResult) -> String {
    format!("<a href=\"#{}\"><code>{}</code></a>", anchor("case-", &c.id), h(&c.id))
}

/// A fragment id: `prefix` + `id` with every character other than `A-Z a-z 0-9 . - /`
/// encoded as `_HH` (UTF-8 bytes), so it is safe in an attribute and in a URL fragment.
pub(crate) fn anchor(prefix: &str, id: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + id.len());
    out.push_str(prefix);
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/') {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "_{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::testdata::sample_run;

    #[test]
    fn html_escapes_module_output() {
        let page = render_html(&sample_run());
        // The only `<script` would come from module text: there must be none.
        assert!(!page.to_ascii_lowercase().contains("<script"), "raw <script> in report.html");
        assert!(page.contains("&lt;script&gt;alert(&#39;pwn&#39;)&lt;/script&gt;"));
        assert!(!page.contains("</pre></details>\n</pre>"));
        assert!(page.contains("\\x1b[2J\\x07 bell &lt;/pre&gt;&lt;/details&gt;"));
        assert!(page.contains("Gecko OS 4.2.1 &lt;b&gt;sim&lt;/b&gt;"));
        // No control character at all, except line ends.
        assert!(!page.chars().any(|c| c.is_control() && c != '\n'), "control character in page");
    }

    #[test]
    fn html_has_the_matrix() {
        let run = sample_run();
        let page = render_html(&run);
        for clause in &run.clauses {
            assert!(
                page.contains(&format!("<tr id=\"clause-{}\">", clause.id)),
                "clause {} has no row",
                clause.id
            );
            assert!(page.contains(&format!("<code>{}</code>", clause.id)));
        }
        for status in ["uncovered", "not_run", "pass", "known_deviation", "error", "fail"] {
            assert!(page.contains(&format!("<td class=\"st st-{status}\">")), "status {status}");
        }
        for coverage in ["checked", "named", "uncovered"] {
            assert!(page.contains(&format!("<td class=\"cov cov-{coverage}\">")), "{coverage}");
        }
        assert!(page.contains("<strong>2 of 7 clauses checked</strong>"), "coverage totals");
        for case in &run.cases {
            assert!(page.contains(&format!("id=\"case-{}\"", case.id)), "case {}", case.id);
            assert!(
                page.contains(&format!("href=\"#case-{}\"", case.id)) || case.clauses.is_empty()
            );
        }
        assert!(page.contains("<span class=\"assumed\">assumed</span>"));
        assert!(page.contains("Interrupted"));
        assert!(page.contains("stale deviation"));
    }

    #[test]
    fn a_case_over_two_transports_has_an_entry_for_each() {
        let mut run = sample_run();
        let mut again = run.cases[0].clone();
        again.transport = crate::model::Transport::Terminal;
        run.cases.insert(1, again);
        run.transports.push(crate::model::Transport::Terminal);
        let page = render_html(&run);
        let id = &run.cases[0].id;
        assert_eq!(page.matches(&format!("id=\"case-{id}\"")).count(), 1);
        let second = anchor("case-", &format!("{id}@terminal"));
        assert_eq!(page.matches(&format!("id=\"{second}\"")).count(), 1);
        assert!(page.contains("<dt>Transports</dt><dd>serial, terminal</dd>"));
    }

    #[test]
    fn html_has_the_case_by_transport_matrix() {
        let run = crate::testdata::sample_multi_transport_run();
        let page = render_html(&run);
        let start = page.find("<section id=\"transports\">").expect("a transport matrix");
        let end = start + page[start..].find("</section>").expect("closed") + "</section>".len();
        insta::assert_snapshot!("report_html_transports", &page[start..end]);
        assert_eq!(page.matches("<tr class=\"differs\">").count(), 2);
        // Every link of the matrix goes to an entry on the page.
        for href in page[start..end].split("href=\"#").skip(1) {
            let target = &href[..href.find('"').expect("quoted")];
            assert!(page.contains(&format!("id=\"{target}\"")), "no entry {target}");
        }
        assert!(!render_html(&sample_run()).contains("id=\"transports\""), "one transport");
    }

    #[test]
    fn html_is_self_contained() {
        let page = render_html(&sample_run());
        for needle in ["src=", "<link", "@import", "url(", "http://", "https://"] {
            assert!(!page.contains(needle), "report.html refers outside itself: {needle}");
        }
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
        // Balanced blocks.
        for tag in ["article", "details", "table", "section", "pre", "dl"] {
            let opens = page.matches(&format!("<{tag}")).count();
            let closes = page.matches(&format!("</{tag}>")).count();
            assert_eq!(opens, closes, "<{tag}> not balanced");
        }
    }

    #[test]
    fn anchors_are_safe() {
        assert_eq!(anchor("case-", "passkeys/ascii/min-length"), "case-passkeys/ascii/min-length");
        assert_eq!(anchor("c-", "a b\"<é_"), "c-a_20b_22_3C_C3_A9_5F");
    }

    #[test]
    fn html_draws_timelines_and_links_captures() {
        let run = sample_run();
        let page = render_html(&run);
        let with = run.cases.iter().filter(|c| !c.timeline.is_empty()).count();
        assert!(with > 0);
        assert_eq!(page.matches("<svg class=\"timeline\"").count(), with);
        assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
        assert!(
            page.contains(
                "<a class=\"capture\" href=\"captures/passkeys__ascii__min-length.pcap\">"
            )
        );
        assert!(page.contains("<title>+"), "no tooltip");
    }

    #[test]
    fn a_key_log_is_named_beside_each_capture() {
        let run = sample_run();
        let captures = run.cases.iter().filter(|c| c.capture.is_some()).count();
        assert!(captures > 0);
        let without = render_html(&run);
        assert!(!without.contains("TLS key log"));
        let with = render_html_with_keylog(&run, Some("keylog.txt"));
        assert_eq!(
            with.matches("<dt>TLS key log</dt><dd><a class=\"keylog\" href=\"keylog.txt\">")
                .count(),
            captures
        );
    }

    #[test]
    fn capture_links_stay_in_the_run_folder() {
        assert_eq!(relative_href("captures/a__b.pcap").as_deref(), Some("captures/a__b.pcap"));
        assert_eq!(relative_href("captures/a b#.pcap").as_deref(), Some("captures/a%20b%23.pcap"));
        for bad in ["/etc/passwd", "../x.pcap", "captures/../../x", "javascript:alert(1)", ""] {
            assert_eq!(relative_href(bad), None, "{bad}");
        }
    }

    #[test]
    fn html_snapshot() {
        insta::assert_snapshot!("report_html", render_html(&sample_run()));
    }
}

//! Clause coverage that means checked.
//!
//! A clause is **checked** when a case that cites it passed, **only named** when cases cite
//! it but none of them passed (or, without a run, none has run yet), and **uncovered** when
//! no case cites it. Citations themselves must be honest: a case cites only the clauses its
//! steps check. [`weak_citations`] finds the commonest dishonest kind, a feature or
//! behaviour clause whose only citations are cases that do nothing but get and set
//! variables ([`is_variable_case`]); `hil check` refuses those.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use crate::model::{ClauseResult, Coverage, RunResult, Verdict};
use crate::spec::wait::Condition;
use crate::spec::{Case, ClauseKind, Origin, Specs, Step};

/// Classifies one clause from its citing cases (see [`Coverage::of`]).
pub fn classify(citations: impl IntoIterator<Item = Option<Verdict>>) -> Coverage {
    Coverage::of(citations)
}

/// Counts of clauses by [`Coverage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub checked: usize,
    pub named: usize,
    pub uncovered: usize,
}

impl Tally {
    pub fn add(&mut self, coverage: Coverage) {
        match coverage {
            Coverage::Checked => self.checked += 1,
            Coverage::Named => self.named += 1,
            Coverage::Uncovered => self.uncovered += 1,
        }
    }

    /// Checked or only named: some case cites it.
    pub fn cited(&self) -> usize {
        self.checked + self.named
    }

    pub fn total(&self) -> usize {
        self.checked + self.named + self.uncovered
    }

    fn merge(&mut self, other: &Tally) {
        self.checked += other.checked;
        self.named += other.named;
        self.uncovered += other.uncovered;
    }
}

/// The tally of one clause section (sections keep the inventory's order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionTally {
    /// `chapter` or `protocol-facts`.
    pub source: String,
    pub section: String,
    pub tally: Tally,
}

/// Tallies clauses by (source, section), in the order sections first appear.
pub fn tally_sections<'a>(
    clauses: impl IntoIterator<Item = (&'a str, &'a str, Coverage)>,
) -> Vec<SectionTally> {
    let mut out: Vec<SectionTally> = Vec::new();
    for (source, section, coverage) in clauses {
        match out.iter_mut().find(|s| s.source == source && s.section == section) {
            Some(s) => s.tally.add(coverage),
            None => {
                let mut tally = Tally::default();
                tally.add(coverage);
                out.push(SectionTally { source: source.into(), section: section.into(), tally });
            }
        }
    }
    out
}

/// The sum over sections (of one source, or all when `source` is `None`).
pub fn total(sections: &[SectionTally], source: Option<&str>) -> Tally {
    let mut t = Tally::default();
    for s in sections.iter().filter(|s| source.is_none_or(|src| s.source == src)) {
        t.merge(&s.tally);
    }
    t
}

/// Every clause of a run with its coverage, from the run's own verdicts (so an old
/// results.json, written before coverage was recorded, renders the same).
pub fn of_run(run: &RunResult) -> Vec<(&ClauseResult, Coverage)> {
    let verdicts = verdicts_by_id(run);
    run.clauses
        .iter()
        .map(|c| (c, classify_cases(c.cases.iter().map(String::as_str), &verdicts)))
        .collect()
}

/// Every verdict of each case id: a case runs once per transport of the run.
fn verdicts_by_id(run: &RunResult) -> HashMap<&str, Vec<Verdict>> {
    let mut verdicts: HashMap<&str, Vec<Verdict>> = HashMap::new();
    for c in &run.cases {
        verdicts.entry(c.id.as_str()).or_default().push(c.verdict);
    }
    verdicts
}

/// A clause from its citing cases, each with all of its verdicts (none: not run).
fn classify_cases<'a>(
    cases: impl Iterator<Item = &'a str>,
    verdicts: &HashMap<&str, Vec<Verdict>>,
) -> Coverage {
    classify(cases.flat_map(|id| match verdicts.get(id) {
        Some(all) => all.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
        None => vec![None],
    }))
}

/// The sections of a run's clauses.
pub fn run_sections(run: &RunResult) -> Vec<SectionTally> {
    tally_sections(
        of_run(run).into_iter().map(|(c, cov)| (c.source.as_str(), c.section.as_str(), cov)),
    )
}

/// Coverage of the inventory by today's spec tables. With a run, each citing case counts
/// with its verdict in that run (matched by case id; a case the run did not have counts as
/// not run), so a citation dropped since the run no longer proves anything.
pub fn of_specs<'a>(
    specs: &'a Specs,
    run: Option<&RunResult>,
) -> Vec<(&'a crate::spec::Clause, Coverage)> {
    let verdicts = run.map(verdicts_by_id).unwrap_or_default();
    let mut citing: HashMap<&str, Vec<&str>> = HashMap::new();
    for case in &specs.cases {
        for clause in &case.clauses {
            citing.entry(clause.as_str()).or_default().push(case.id.as_str());
        }
    }
    specs
        .inventory
        .clauses
        .iter()
        .map(|c| {
            let cases = citing.get(c.id.as_str()).map(Vec::as_slice).unwrap_or_default();
            (c, classify_cases(cases.iter().copied(), &verdicts))
        })
        .collect()
}

/// The run `hil list --coverage --results` compares with, as its header line names it.
#[derive(Debug)]
pub struct RunRef<'a> {
    pub run: &'a RunResult,
    /// Where it was read from.
    pub path: String,
}

/// The text of `hil list --coverage`: per source and section, clauses cited vs. uncovered;
/// with a run, how many of the cited ones it checked. `list_uncovered` appends the ids.
pub fn render_list(specs: &Specs, run: Option<&RunRef<'_>>, list_uncovered: bool) -> String {
    let clauses = of_specs(specs, run.map(|r| r.run));
    let sections = tally_sections(
        clauses.iter().map(|(c, cov)| (c.source.as_str(), c.section.as_str(), *cov)),
    );
    // Section names are indented by two under their source.
    let width = sections.iter().map(|s| s.section.len() + 2).max().unwrap_or(0).max(24);
    let mut o = String::new();
    match run {
        None => {
            let _ = writeln!(
                o,
                "Cited: some case cites the clause. Give --results <run> to see which of \
                 them a run checked."
            );
            let _ = writeln!(o, "\n{:width$}  {:>9}  {:>9}", "", "cited", "uncovered");
        }
        Some(r) => {
            let _ = writeln!(
                o,
                "Cited: some case cites the clause. Checked: a case citing it passed in run {} \
                 ({}); only named: cited, but no citing case passed there.",
                r.run.run_id, r.path
            );
            let _ = writeln!(
                o,
                "\n{:width$}  {:>9}  {:>9}  {:>10}  {:>9}",
                "", "cited", "checked", "only named", "uncovered"
            );
        }
    }
    let row = |o: &mut String, name: &str, t: &Tally| {
        let cited = format!("{}/{}", t.cited(), t.total());
        let _ = write!(o, "{name:width$}  {cited:>9}");
        if run.is_some() {
            let checked = format!("{}/{}", t.checked, t.total());
            let _ = write!(o, "  {checked:>9}  {:>10}", t.named);
        }
        let _ = writeln!(o, "  {:>9}", t.uncovered);
    };
    for source in ["chapter", "protocol-facts"] {
        let rows: Vec<&SectionTally> = sections.iter().filter(|s| s.source == source).collect();
        if rows.is_empty() {
            continue;
        }
        row(&mut o, &format!("{source}:"), &total(&sections, Some(source)));
        for s in rows {
            row(&mut o, &format!("  {}", s.section), &s.tally);
        }
    }
    let all = total(&sections, None);
    row(&mut o, "total:", &all);
    let pct = |n: usize| if all.total() == 0 { 0.0 } else { 100.0 * n as f64 / all.total() as f64 };
    let _ = write!(
        o,
        "\n{}/{} clauses cited ({:.0}%) by {} cases",
        all.cited(),
        all.total(),
        pct(all.cited()),
        specs.cases.len()
    );
    if run.is_some() {
        let _ = write!(
            o,
            "; {} checked by a passing case ({:.0}%), {} only named",
            all.checked,
            pct(all.checked),
            all.named
        );
    }
    let unreachable: Vec<_> = clauses.iter().filter(|(c, _)| c.unreachable.is_some()).collect();
    let _ = writeln!(
        o,
        "; {} uncovered ({} of them unreachable on this module).",
        all.uncovered,
        unreachable.len()
    );
    if list_uncovered {
        if run.is_some() {
            o.push_str("\nonly named (cited, not checked by that run):\n");
            for (c, _) in clauses.iter().filter(|(_, cov)| *cov == Coverage::Named) {
                let _ = writeln!(o, "  {}  {}", c.id, c.text);
            }
        }
        o.push_str("\nuncovered:\n");
        for (c, _) in
            clauses.iter().filter(|(c, cov)| *cov == Coverage::Uncovered && c.unreachable.is_none())
        {
            let _ = writeln!(o, "  {}  {}", c.id, c.text);
        }
        o.push_str("\nunreachable (no input can cause it on this module):\n");
        for (c, _) in &unreachable {
            let _ = writeln!(
                o,
                "  {}  {}\n      why: {}",
                c.id,
                c.text,
                c.unreachable.as_deref().unwrap_or("")
            );
        }
    }
    o
}

// ---------------------------------------------------------------- citation rule

/// Command words of the console that only read or write the variable store. Shortcuts
/// included (`fac`); `reboot` and `factory_reset` only reset it.
const VARIABLE_COMMANDS: &[&str] =
    &["get", "set", "save", "load", "reboot", "factory_reset", "fac"];

/// What one step does, as far as [`is_variable_case`] is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepRole {
    /// Reads or writes variables (`get`, `set`, `save`, `load`).
    Variable,
    /// Neither observes nor drives anything beyond the variable store: reboot, factory
    /// reset, power cycle, a pause.
    Neutral,
    /// Observes or drives something else: other commands, raw bytes on the wire, expected
    /// log lines or reply times, the radio, lab peers and clients.
    Other,
}

fn step_role(step: &Step) -> StepRole {
    // Every variant is named, so a new kind of step has to be placed here deliberately.
    match step {
        Step::Get(_) => StepRole::Variable,
        Step::Send { line, data, logs, took, .. } => {
            let word = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            let plain = data.is_none() && logs.is_empty() && took.is_none();
            if plain && VARIABLE_COMMANDS.contains(&word.as_str()) {
                StepRole::Variable
            } else {
                StepRole::Other
            }
        }
        // Polling a variable until it reads a value is still a variable read; anything else a
        // wait or hold watches (streams, peers, the capture, other replies) is behaviour.
        Step::Wait { condition, .. } | Step::Hold { condition, .. } => match condition {
            Condition::Reply { line, logs, .. } if logs.is_empty() => {
                let word = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                if VARIABLE_COMMANDS.contains(&word.as_str()) {
                    StepRole::Variable
                } else {
                    StepRole::Other
                }
            }
            _ => StepRole::Other,
        },
        Step::Reboot | Step::FactoryReset | Step::PowerCycle | Step::Idle { .. } => {
            StepRole::Neutral
        }
        Step::Raw { .. }
        | Step::AddAp(_)
        | Step::RemoveAp(_)
        | Step::MoveAp { .. }
        | Step::Fault { .. }
        | Step::Client(_)
        | Step::CheckPeer { .. } => StepRole::Other,
    }
}

/// A **variable get/set case**: at least one step gets or sets variables (a `get` step, or a
/// `send` of `get`, `set`, `save`, `load`, `reboot` or `factory_reset` with no expected log
/// lines, reply time or data), every other step is a reboot, factory reset, power cycle or
/// pause, and the case needs no lab (no `requires = ["lab"]`, peers or packet checks). Such
/// a case can observe only the variable store and the replies to those commands, so it
/// checks variable and command clauses, never whether a feature works.
pub fn is_variable_case(case: &Case) -> bool {
    let no_lab = case.requires.is_empty() && case.peers.is_empty() && case.packets.is_empty();
    let roles: Vec<StepRole> = case.steps.iter().map(step_role).collect();
    no_lab && roles.contains(&StepRole::Variable) && roles.iter().all(|r| *r != StepRole::Other)
}

/// A feature or behaviour clause that only variable get/set cases cite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeakCitation {
    pub clause: String,
    pub kind: ClauseKind,
    /// Where the clause is defined.
    pub defined: Origin,
    /// The citing cases: id and where each is defined.
    pub cases: Vec<(String, Origin)>,
}

impl fmt::Display for WeakCitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} clause `{}` ({}) is cited only by variable get/set cases, which cannot check it:",
            self.kind.as_str(),
            self.clause,
            self.defined
        )?;
        for (id, origin) in &self.cases {
            writeln!(f, "  {origin}: case `{id}`")?;
        }
        write!(
            f,
            "  cite the variable's own clause there instead, or add a case whose steps observe \
             the {}",
            self.kind.as_str()
        )
    }
}

/// Clauses the inventory calls unreachable that a case cites anyway: one of the two is wrong.
/// Each entry names the clause, where it is defined, and the citing cases.
pub fn unreachable_cited(specs: &Specs) -> Vec<String> {
    specs
        .inventory
        .clauses
        .iter()
        .filter(|c| c.unreachable.is_some())
        .filter_map(|c| {
            let cases: Vec<String> = specs
                .cases
                .iter()
                .filter(|case| case.clauses.contains(&c.id))
                .map(|case| format!("`{}` ({})", case.id, case.origin))
                .collect();
            (!cases.is_empty()).then(|| {
                format!(
                    "clause `{}` ({}) is marked unreachable but cited by {}: remove the mark or the citation",
                    c.id,
                    c.origin,
                    cases.join(", ")
                )
            })
        })
        .collect()
}

/// Every feature or behaviour clause whose citations all come from variable get/set cases,
/// in inventory order.
pub fn weak_citations(specs: &Specs) -> Vec<WeakCitation> {
    let mut citing: HashMap<&str, Vec<&Case>> = HashMap::new();
    for case in &specs.cases {
        for clause in &case.clauses {
            citing.entry(clause.as_str()).or_default().push(case);
        }
    }
    specs
        .inventory
        .clauses
        .iter()
        .filter(|c| matches!(c.kind, ClauseKind::Feature | ClauseKind::Behaviour))
        .filter_map(|c| {
            let cases = citing.get(c.id.as_str())?;
            cases.iter().all(|case| is_variable_case(case)).then(|| WeakCitation {
                clause: c.id.clone(),
                kind: c.kind,
                defined: c.origin.clone(),
                cases: cases.iter().map(|case| (case.id.clone(), case.origin.clone())).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;

//! The result model: what a run produced. `results.json` is this, serialized; every other
//! report format is rendered from it (so `hil report` can re-render an old run).
//!
//! Schema: [`SCHEMA`] names the version; fields are only ever added.

use serde::{Deserialize, Serialize};

pub use crate::transport::Transport;

fn serial_only() -> Vec<Transport> {
    vec![Transport::Serial]
}

/// The schema name written into `results.json`.
pub const SCHEMA: &str = "gecko-hil/results/v1";

/// The outcome of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The module did what the spec says.
    Pass,
    /// The module answered wrongly (a product defect).
    Fail,
    /// The case could not be judged: port lost, lab service down, harness fault, timeout of
    /// the infrastructure (not a verdict on the product).
    Error,
    /// Not run (with a reason: not selected for this transport, run interrupted, ...).
    Skipped,
    /// Failed in a way the rig's expectations file lists, with its reason.
    KnownDeviation,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
            Verdict::KnownDeviation => "known deviation",
        }
    }
}

/// Whether a case's expectation is stated by a source or chosen by the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Documented,
    Assumed,
}

/// One whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `YYYYmmdd-HHMMSS-<rig>`; also the folder name under `reports/`.
    pub run_id: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// The run was stopped (a signal, its parent gone) before every selected case ran; the
    /// rest are skipped.
    pub interrupted: bool,
    pub rig: RigInfo,
    /// What the module said about itself (`version`), if it answered.
    pub module_version: Option<String>,
    /// The module's MAC address (`get wlan.mac`), if it answered; with the version, what
    /// identifies the board in a qualification (absent in runs of older harnesses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_mac: Option<String>,
    /// The labgrid places the run's cases were spread over, with the module each held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub places: Vec<PlaceIdentity>,
    /// The selection as given on the command line (`all` when none).
    pub selection: String,
    /// The transports the run planned its cases over, in order (results of runs from
    /// before this field: `serial`).
    #[serde(default = "serial_only")]
    pub transports: Vec<Transport>,
    pub totals: Totals,
    pub cases: Vec<CaseResult>,
    /// Every clause of the inventory with the verdicts of the cases that cite it.
    pub clauses: Vec<ClauseResult>,
}

/// A labgrid place of a run and the module behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceIdentity {
    pub place: String,
    /// The console it exports (`rfc2217://host:port`).
    pub console: String,
    pub module_version: Option<String>,
    pub module_mac: Option<String>,
}

impl RunResult {
    /// Green: nothing failed or errored, no stale deviation, and the run reached its end (an
    /// interrupted run proves nothing about the cases it did not reach).
    pub fn is_green(&self) -> bool {
        self.totals.is_green() && !self.interrupted
    }

    /// Why the run is not green, for the reports' banners.
    pub fn red_reasons(&self) -> Vec<String> {
        let mut why = self.totals.red_reasons();
        if self.interrupted {
            why.insert(0, "interrupted".into());
        }
        why
    }
}

/// The rig a run used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RigInfo {
    pub name: String,
    /// The rig file.
    pub path: String,
    /// `sim` or `hardware`.
    pub kind: String,
    /// The serial port the run talked to.
    pub port: String,
}

/// Counts by verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub skipped: usize,
    pub known_deviation: usize,
    /// Cases the expectations file lists as deviations that passed: the entry is stale.
    pub stale_deviations: usize,
}

impl Totals {
    /// Counts by verdict over any set of cases.
    pub fn count<'a>(cases: impl IntoIterator<Item = &'a CaseResult>) -> Self {
        let mut t = Totals::default();
        for c in cases {
            match c.verdict {
                Verdict::Pass => t.pass += 1,
                Verdict::Fail => t.fail += 1,
                Verdict::Error => t.error += 1,
                Verdict::Skipped => t.skipped += 1,
                Verdict::KnownDeviation => t.known_deviation += 1,
            }
            if c.stale_deviation {
                t.stale_deviations += 1;
            }
        }
        t
    }

    pub fn total(&self) -> usize {
        self.pass + self.fail + self.error + self.skipped + self.known_deviation
    }

    /// A run is green when nothing failed, nothing errored and no deviation entry is stale.
    pub fn is_green(&self) -> bool {
        self.fail == 0 && self.error == 0 && self.stale_deviations == 0
    }

    /// Why a run is not green, in words (`["2 failed", "1 stale deviation"]`); empty when green.
    pub fn red_reasons(&self) -> Vec<String> {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let mut why = Vec::new();
        if self.fail > 0 {
            why.push(format!("{} failed", self.fail));
        }
        if self.error > 0 {
            why.push(format!("{} errored", self.error));
        }
        if self.stale_deviations > 0 {
            why.push(format!(
                "{} stale deviation{}",
                self.stale_deviations,
                plural(self.stale_deviations)
            ));
        }
        why
    }
}

/// One case's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    /// The spec file's section (the JUnit classname).
    pub section: String,
    pub title: String,
    pub clauses: Vec<String>,
    pub basis: Basis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The transport it ran over (or was planned for, when skipped). With several
    /// transports in a run, a case has one result per transport: `id` and `transport`
    /// together name a result.
    pub transport: Transport,
    pub verdict: Verdict,
    /// Why it failed, errored or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The expectations file's reason, when the case is listed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation: Option<String>,
    /// Listed as a deviation, yet passed.
    #[serde(default)]
    pub stale_deviation: bool,
    /// Runs made (more than 1 only after infrastructure errors).
    pub attempts: u32,
    /// Start, in milliseconds since the run started.
    pub start_ms: u64,
    pub duration_ms: u64,
    pub steps: Vec<StepResult>,
    /// The exchange with the module, of the last attempt.
    pub transcript: Vec<TranscriptEntry>,
    /// What happened during the last attempt, on one time axis: module output, commands,
    /// radio events, packets, remarks. Sorted by time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEvent>,
    /// The packet capture of the last attempt: a pcap file, relative to the run folder
    /// (`captures/<case id, "/" as "__">.pcap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
    /// The labgrid place it ran on, when the rig shares its modules through labgrid (see
    /// [`RunResult::places`] for the module behind it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
}

impl CaseResult {
    /// What names this result among a run's: the case id, and `@<transport>` for a transport
    /// other than serial (`tcp/echo@rest`). A serial result keeps the bare id, as in runs
    /// from before there were other transports, so JUnit histories and diffs carry on.
    pub fn key(&self) -> String {
        match self.transport {
            Transport::Serial => self.id.clone(),
            other => format!("{}@{}", self.id, other.name()),
        }
    }
}

/// One event of a case's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Milliseconds since the case started (fractional; may be negative for a packet captured
    /// just before).
    pub t_ms: f64,
    pub lane: Lane,
    /// What happened, one line (e.g. a decoded packet's summary).
    pub text: String,
}

/// The row of the timeline an event is drawn on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Module output: log lines and replies.
    Module,
    /// What the harness did: commands sent, resets.
    Harness,
    /// Events of the simulated radio (scans, associations, ...).
    Radio,
    /// Captured packets (decoded summaries).
    Packet,
    /// Anything else.
    Text,
}

impl Lane {
    /// Every lane, in the order the timeline draws them (top to bottom).
    pub const ALL: [Lane; 5] = [Lane::Module, Lane::Harness, Lane::Radio, Lane::Packet, Lane::Text];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Module => "module",
            Lane::Harness => "harness",
            Lane::Radio => "radio",
            Lane::Packet => "packet",
            Lane::Text => "text",
        }
    }
}

/// One step of a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// 0 is setup; steps count from 1.
    pub index: usize,
    /// What the step did, e.g. `send "get wlan.ssid"`.
    pub action: String,
    pub outcome: StepOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub duration_ms: u64,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    Failed,
    Error,
    NotRun,
}

/// One entry of a transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// Milliseconds since the case started.
    pub t_ms: f64,
    pub dir: Direction,
    /// The bytes as text (non-printables escaped as `\xHH`, CR/LF as `\r\n`).
    pub text: String,
}

/// Who produced a transcript entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Host to module.
    Tx,
    /// Module to host.
    Rx,
    /// A remark of the harness (resync, reboot wait, retry).
    Note,
}

/// One clause of the inventory and how the run covered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClauseResult {
    pub id: String,
    pub section: String,
    /// `chapter` or `protocol-facts`.
    pub source: String,
    pub lines: [u32; 2],
    pub text: String,
    /// Ids of the cases that cite it (in this run's selection).
    pub cases: Vec<String>,
    pub status: ClauseStatus,
    /// Whether a passing case checked it (absent in runs of older harnesses; reports compute
    /// it from the verdicts of `cases` either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

/// What a run proved about a clause; unlike [`ClauseStatus`] (the worst verdict), this asks
/// whether any case checked it at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// A case that passed cites it: the run checked it.
    Checked,
    /// Cited, but no citing case passed (each failed, errored, was skipped, is a known
    /// deviation, or did not run): the clause is only named.
    Named,
    /// No case cites it.
    Uncovered,
}

impl Coverage {
    /// Classifies one clause from its citing cases: each is `Some(verdict)` when it ran (or
    /// was skipped) in the run at hand, `None` when there is no run of it.
    pub fn of(citations: impl IntoIterator<Item = Option<Verdict>>) -> Self {
        let mut coverage = Coverage::Uncovered;
        for verdict in citations {
            if verdict == Some(Verdict::Pass) {
                return Coverage::Checked;
            }
            coverage = Coverage::Named;
        }
        coverage
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Checked => "checked",
            Coverage::Named => "only named",
            Coverage::Uncovered => "uncovered",
        }
    }
}

/// The roll-up of a clause's cases: the worst verdict wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClauseStatus {
    /// No case cites it.
    Uncovered,
    /// Cited, but every citing case was skipped.
    NotRun,
    Pass,
    KnownDeviation,
    Error,
    Fail,
}

impl ClauseStatus {
    /// Rolls up the verdicts of the cases citing a clause.
    pub fn roll_up(verdicts: impl IntoIterator<Item = Verdict>) -> Self {
        let mut status = ClauseStatus::Uncovered;
        for v in verdicts {
            let s = match v {
                Verdict::Pass => ClauseStatus::Pass,
                Verdict::Fail => ClauseStatus::Fail,
                Verdict::Error => ClauseStatus::Error,
                Verdict::Skipped => ClauseStatus::NotRun,
                Verdict::KnownDeviation => ClauseStatus::KnownDeviation,
            };
            status = status.max(s);
        }
        status
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClauseStatus::Uncovered => "uncovered",
            ClauseStatus::NotRun => "not run",
            ClauseStatus::Pass => "pass",
            ClauseStatus::KnownDeviation => "known deviation",
            ClauseStatus::Error => "error",
            ClauseStatus::Fail => "fail",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_verdict_wins() {
        use Verdict::*;
        assert_eq!(ClauseStatus::roll_up([]), ClauseStatus::Uncovered);
        assert_eq!(ClauseStatus::roll_up([Skipped]), ClauseStatus::NotRun);
        assert_eq!(ClauseStatus::roll_up([Pass, Skipped]), ClauseStatus::Pass);
        assert_eq!(ClauseStatus::roll_up([Pass, KnownDeviation]), ClauseStatus::KnownDeviation);
        assert_eq!(ClauseStatus::roll_up([Pass, Error, Fail]), ClauseStatus::Fail);
        assert_eq!(ClauseStatus::roll_up([Error, Pass]), ClauseStatus::Error);
    }
}

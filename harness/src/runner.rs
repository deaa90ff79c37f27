//! Runs selected cases against a rig and builds the [`RunResult`].
//!
//! Verdicts keep the product apart from the infrastructure: a wrong code, body or value, no
//! reply in time, or bytes that are no reply make a case **fail**; a lost port, a module
//! process that died, a setup the harness could not do, make it an **error** (retried up to
//! `retries` times, after reconnecting). Ctrl-C stops the run between steps; the cases not
//! run are reported as skipped and the report is still written.

use crate::ap::AccessPoints;
use crate::channel::{Channel, ChannelError, ConsoleFormat, Request};
use crate::interrupt;
use crate::model::{
    CaseResult, ClauseResult, ClauseStatus, RigInfo, RunResult, SCHEMA, StepOutcome, StepResult,
    Totals, Verdict,
};
use crate::plan::Planned;
use crate::rig::Rig;
use crate::session::Session;
use crate::spec::{BodyExpect, Case, RawExpect, Selection, Specs, Step};
use crate::transport::{Transport, TransportError};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

/// How a run goes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub selection: Selection,
    /// Extra attempts for a case that ends in an infrastructure error.
    pub retries: u32,
    /// Where `<run-id>/` and `latest` go.
    pub reports_root: PathBuf,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// Rig instances to run cases on in parallel (simulated rigs only).
    pub jobs: usize,
    /// The transports to run the cases over (`hil run --transport`); `None`: the rig's.
    pub transports: Option<Vec<Transport>>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "rig `{rig}` offers {offered}; the {transport} transport is not among them (its `transports` key)"
    )]
    NotOnRig { rig: String, transport: Transport, offered: String },
    #[error("rig `{rig}` has one module: --jobs must be 1 (only simulated rigs can be multiplied)")]
    OneModule { rig: String },
    #[error("cannot create {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the report: {0}")]
    Report(#[from] crate::report::ReportError),
}

/// The transports a run uses: those asked for, each implemented and offered by the rig, or
/// the rig's.
pub fn run_transports(rig: &Rig, asked: Option<&[Transport]>) -> Result<Vec<Transport>, RunError> {
    let Some(asked) = asked.filter(|a| !a.is_empty()) else { return Ok(rig.transports.clone()) };
    let mut out = Vec::new();
    for &transport in asked {
        transport.ensure_implemented()?;
        if !rig.transports.contains(&transport) {
            let offered = rig.transports.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ");
            return Err(RunError::NotOnRig { rig: rig.name.clone(), transport, offered });
        }
        if !out.contains(&transport) {
            out.push(transport);
        }
    }
    Ok(out)
}

/// Why a step did not pass.
#[derive(Debug)]
enum Trouble {
    /// The module answered wrongly (or not at all).
    Product(String),
    /// The harness or the link failed.
    Infra(String),
    /// Ctrl-C.
    Interrupted,
}

impl From<ChannelError> for Trouble {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Interrupted => Trouble::Interrupted,
            e if e.is_infrastructure() => Trouble::Infra(e.to_string()),
            e => Trouble::Product(e.to_string()),
        }
    }
}

type StepResultT = Result<(), Trouble>;

/// A lab control channel failure is the infrastructure's.
fn infra(e: crate::ap::ApError) -> Trouble {
    Trouble::Infra(e.to_string())
}

/// Picks the cases of `specs` the selection names, in file order.
pub fn select<'a>(specs: &'a Specs, selection: &Selection) -> Vec<&'a Case> {
    specs.cases.iter().filter(|c| selection.matches(c)).collect()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A run id from the start time and the rig name, unique within `root`.
fn run_id(root: &std::path::Path, started: SystemTime, rig: &str) -> String {
    let stamp: String = rfc3339(started).chars().filter(char::is_ascii_digit).collect();
    let base = format!("{}-{}-{}", &stamp[..8], &stamp[8..14], rig);
    let mut id = base.clone();
    let mut n = 2;
    while root.join(&id).exists() {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// Runs the selected cases and writes the report. Returns the result and the report folder.
pub fn run(
    specs: &Specs,
    rig: &Rig,
    options: &RunOptions,
) -> Result<(RunResult, PathBuf), RunError> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let transports = run_transports(rig, options.transports.as_deref())?;
    let folder = |path: &PathBuf| {
        std::fs::create_dir_all(path)
            .map_err(|source| RunError::Folder { path: path.clone(), source })
    };
    folder(&options.reports_root)?;
    let run_id = run_id(&options.reports_root, started, &rig.name);
    let run_dir = options.reports_root.join(&run_id);
    folder(&run_dir)?;
    let cases = select(specs, &options.selection);
    // Which case runs over which transport is decided here, before anything is sent.
    let planned = crate::plan::plan(&cases, &transports, rig);

    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(planned.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let jobs = options.jobs.clamp(1, planned.len().max(1));
    if jobs > 1 && !matches!(rig.dut, crate::rig::Dut::Sim { .. }) {
        return Err(RunError::OneModule { rig: rig.name.clone() });
    }
    // Each worker has its own rig instance (its own simulated module); cases are handed out
    // from one queue, results come back tagged with their index so the report keeps file order.
    let queue = Mutex::new(planned.into_iter().enumerate().collect::<VecDeque<_>>());
    let first_contact: Mutex<Option<(Option<String>, String)>> = Mutex::new(None);
    let (tx, rx) = mpsc::channel::<(usize, CaseResult)>();
    let mut indexed = Vec::with_capacity(cases.len());
    std::thread::scope(|scope| {
        for worker in 0..jobs {
            let tx = tx.clone();
            let (queue, first_contact, run_dir) = (&queue, &first_contact, &run_dir);
            scope.spawn(move || {
                let dir = if jobs == 1 {
                    run_dir.join("module")
                } else {
                    run_dir.join(format!("module-{worker}"))
                };
                let mut session = Session::open(rig, &dir);
                if let Ok(s) = &mut session {
                    let mut first = first_contact.lock().unwrap_or_else(|e| e.into_inner());
                    if first.is_none() {
                        *first = Some((s.module_version(), s.control.endpoint()));
                    }
                }
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some((index, Planned { case, transport, skip })) = next else { break };
                    let start_ms = clock.elapsed().as_millis() as u64;
                    let result = if interrupt::requested() {
                        skipped(case, transport, start_ms, "run interrupted before this case")
                    } else if let Some(why) = skip {
                        skipped(case, transport, start_ms, &why.to_string())
                    } else {
                        match &mut session {
                            Err(e) => {
                                errored(case, transport, start_ms, &format!("no session: {e}"))
                            }
                            Ok(s) => match s.use_transport(transport) {
                                Err(e) => errored(case, transport, start_ms, &e.to_string()),
                                Ok(()) => run_with_retries(s, case, options.retries, start_ms),
                            },
                        }
                    };
                    if tx.send((index, apply_deviation(rig, result))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (index, result) in rx {
            // With several transports, say which one a result is for.
            let name = if transports.len() > 1 {
                format!("{} over {}", result.id, result.transport)
            } else {
                result.id.clone()
            };
            bar.set_message(name.clone());
            if matches!(result.verdict, Verdict::Fail | Verdict::Error) || result.stale_deviation {
                let what = if result.stale_deviation {
                    "passes but is listed as a deviation"
                } else {
                    result.verdict.as_str()
                };
                bar.suspend(|| {
                    eprintln!("{what}: {name} — {}", result.reason.as_deref().unwrap_or(""))
                });
            }
            indexed.push((index, result));
            bar.inc(1);
        }
    });
    bar.finish_and_clear();
    indexed.sort_by_key(|(i, _)| *i);
    let results: Vec<CaseResult> = indexed.into_iter().map(|(_, r)| r).collect();
    let (module_version, port) =
        first_contact.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_default();

    let finished = SystemTime::now();
    let run = RunResult {
        schema: SCHEMA.to_string(),
        run_id,
        started_at: rfc3339(started),
        finished_at: rfc3339(finished),
        duration_ms: clock.elapsed().as_millis() as u64,
        interrupted: interrupt::requested(),
        rig: RigInfo {
            name: rig.name.clone(),
            path: rig.path.display().to_string(),
            kind: rig.kind().to_string(),
            port,
        },
        module_version,
        selection: options.selection.describe(),
        transports,
        totals: Totals::count(&results),
        clauses: clause_results(specs, &results),
        cases: results,
    };
    let dir = crate::report::write_run(&run, &options.reports_root)?;
    Ok((run, dir))
}

/// Rolls case verdicts up to every clause of the inventory.
pub fn clause_results(specs: &Specs, results: &[CaseResult]) -> Vec<ClauseResult> {
    specs
        .inventory
        .clauses
        .iter()
        .map(|c| {
            let citing: Vec<&CaseResult> =
                results.iter().filter(|r| r.clauses.contains(&c.id)).collect();
            ClauseResult {
                id: c.id.clone(),
                section: c.section.clone(),
                source: c.source.clone(),
                lines: c.lines,
                text: c.text.clone(),
                // Once per case, however many transports it ran over.
                cases: citing.iter().fold(Vec::new(), |mut ids, r| {
                    if !ids.contains(&r.id) {
                        ids.push(r.id.clone());
                    }
                    ids
                }),
                status: ClauseStatus::roll_up(citing.iter().map(|r| r.verdict)),
                coverage: Some(crate::coverage::classify(citing.iter().map(|r| Some(r.verdict)))),
            }
        })
        .collect()
}

fn base_result(case: &Case, transport: Transport, start_ms: u64) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        section: case.section.clone(),
        title: case.title.clone(),
        clauses: case.clauses.clone(),
        basis: case.basis,
        note: case.note.clone(),
        tags: case.tags.clone(),
        transport,
        verdict: Verdict::Skipped,
        reason: None,
        deviation: None,
        stale_deviation: false,
        attempts: 0,
        start_ms,
        duration_ms: 0,
        steps: Vec::new(),
        transcript: Vec::new(),
        timeline: Vec::new(),
        capture: None,
    }
}

fn skipped(case: &Case, transport: Transport, start_ms: u64, reason: &str) -> CaseResult {
    CaseResult { reason: Some(reason.to_string()), ..base_result(case, transport, start_ms) }
}

fn errored(case: &Case, transport: Transport, start_ms: u64, reason: &str) -> CaseResult {
    CaseResult {
        verdict: Verdict::Error,
        reason: Some(reason.to_string()),
        ..base_result(case, transport, start_ms)
    }
}

fn apply_deviation(rig: &Rig, mut result: CaseResult) -> CaseResult {
    if let Some(d) = rig.deviations.get(&result.id) {
        match result.verdict {
            Verdict::Fail => {
                result.verdict = Verdict::KnownDeviation;
                result.deviation = Some(d.reason.clone());
            }
            Verdict::Pass => {
                result.stale_deviation = true;
                result.deviation = Some(format!(
                    "{} (listed at {}: remove the entry, the case passes now)",
                    d.reason, d.origin
                ));
            }
            _ => result.deviation = Some(d.reason.clone()),
        }
    }
    result
}

fn run_with_retries(session: &mut Session, case: &Case, retries: u32, start_ms: u64) -> CaseResult {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut result = run_case(session, case, start_ms);
        result.attempts = attempt;
        if result.verdict != Verdict::Error || interrupt::requested() {
            return result;
        }
        if attempt > retries {
            // Out of attempts: still start the next case on a fresh connection (and a fresh
            // simulated module), so one broken state does not turn every later case into an
            // error.
            if let Err(e) = session.reopen() {
                session.note(format!("reconnecting for the next case failed: {e}"));
            }
            return result;
        }
        if let Err(e) = session.reopen() {
            result.reason =
                Some(format!("{}; reconnecting failed: {e}", result.reason.unwrap_or_default()));
            return result;
        }
    }
}

/// Runs one case once.
fn run_case(session: &mut Session, case: &Case, start_ms: u64) -> CaseResult {
    let started = Instant::now();
    let wall_start = SystemTime::now();
    session.restart_transcript();
    let deadline = started + case.timeout;
    let run_dir = session.run_dir().to_path_buf();
    // The lab goes back to the rig's access points with no faults; lab cases get a capture.
    let mut trouble = None;
    let mut capture = None;
    let mut radio_seq = 0;
    if let Some(lab) = &mut session.lab {
        match prepare_lab(lab, &run_dir, case) {
            Ok((c, seq)) => (capture, radio_seq) = (c, seq),
            Err(e) => trouble = Some(Trouble::Infra(format!("lab: {e}"))),
        }
    }
    // Lab peers for the case, and the lab itself for clients that act on the module.
    let lab = session.lab.as_ref().map(|l| std::sync::Arc::clone(&l.lab));
    let mut peers = None;
    if trouble.is_none()
        && !case.peers.is_empty()
        && let Some(lab) = &lab
    {
        match crate::peers::Peers::start(lab, &case.peers) {
            Ok(p) => peers = Some(p),
            Err(e) => trouble = Some(Trouble::Infra(format!("lab peers: {e}"))),
        }
    }
    let mut ctx = Ctx {
        session,
        case,
        deadline,
        resync_test: true,
        resync_control: true,
        faults: Vec::new(),
        lab: lab.as_deref(),
        peers,
        clients: None,
        radio_seq,
        radio_events: Vec::new(),
        wall_start,
    };
    let mut steps = Vec::new();

    let t = Instant::now();
    let setup = if trouble.is_some() { Ok(()) } else { ctx.setup() };
    let setup_failed = setup.is_err();
    steps.push(step_result(0, "setup".to_string(), &setup, t));
    if let Err(e) = setup {
        // Whatever went wrong while preparing, the case could not be judged.
        trouble = Some(match e {
            Trouble::Product(m) | Trouble::Infra(m) => Trouble::Infra(format!("setup: {m}")),
            Trouble::Interrupted => Trouble::Interrupted,
        });
    }
    for (i, step) in case.steps.iter().enumerate() {
        if setup_failed || trouble.is_some() {
            steps.push(StepResult {
                index: i + 1,
                action: step.describe(),
                outcome: StepOutcome::NotRun,
                message: None,
                duration_ms: 0,
            });
            continue;
        }
        let t = Instant::now();
        let outcome = if Instant::now() > ctx.deadline {
            Err(Trouble::Product(format!("case timed out after {} ms", case.timeout.as_millis())))
        } else {
            ctx.step(step)
        };
        steps.push(step_result(i + 1, step.describe(), &outcome, t));
        if let Err(e) = outcome {
            let prefix = format!("step {} ({})", i + 1, step.describe());
            trouble = Some(match e {
                Trouble::Product(m) => Trouble::Product(format!("{prefix}: {m}")),
                Trouble::Infra(m) => Trouble::Infra(format!("{prefix}: {m}")),
                Trouble::Interrupted => Trouble::Interrupted,
            });
        }
    }
    if trouble.is_none()
        && let Err(e) = ctx.check_faults()
    {
        trouble = Some(e);
    }
    let packets = match capture.take().map(crate::capture::Capture::stop) {
        None => Vec::new(),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            trouble.get_or_insert(Trouble::Infra(format!("capture: {e}")));
            Vec::new()
        }
    };
    if trouble.is_none() {
        for expect in &case.packets {
            if let Err(m) = expect.check(&packets) {
                trouble = Some(Trouble::Product(format!("packets: {m}")));
                break;
            }
        }
    }
    let exit = ctx.session.sim_exit();
    let (verdict, reason) = match (trouble, exit) {
        (_, Some(status)) => {
            (Verdict::Error, Some(format!("the simulated module exited ({status})")))
        }
        (None, None) => (Verdict::Pass, None),
        (Some(Trouble::Product(m)), None) => (Verdict::Fail, Some(m)),
        (Some(Trouble::Infra(m)), None) => (Verdict::Error, Some(m)),
        (Some(Trouble::Interrupted), None) => (Verdict::Skipped, Some("interrupted".to_string())),
    };
    let transcript = ctx.session.restart_transcript();
    let transport = ctx.session.transport();
    let lab_case = case.requires.iter().any(|r| r == "lab");
    let mut timeline = Vec::new();
    if lab_case {
        timeline = transcript_timeline(&transcript);
        timeline.append(&mut ctx.radio_events);
        if let Some(lab) = &mut ctx.session.lab {
            timeline.extend(radio_timeline(lab, ctx.radio_seq, wall_start));
        }
        timeline.extend(crate::capture::timeline_events(&packets, wall_start));
        timeline.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    }
    let capture = (ctx.session.lab.is_some() && lab_case)
        .then(|| crate::capture::capture_file_name(&case.id));
    CaseResult {
        verdict,
        reason,
        duration_ms: started.elapsed().as_millis() as u64,
        steps,
        transcript,
        timeline,
        capture,
        ..base_result(case, transport, start_ms)
    }
}

/// Why the lab could not be prepared for a case: the infrastructure's fault.
#[derive(Debug, thiserror::Error)]
enum LabPrepError {
    #[error(transparent)]
    Radio(#[from] crate::ap::ApError),
    #[error("cannot create {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
}

/// Resets the lab for a case and starts its capture (lab cases only). Returns the capture and
/// the radio event sequence number to read the case's radio events from.
fn prepare_lab(
    lab: &mut crate::session::LabSession,
    run_dir: &std::path::Path,
    case: &Case,
) -> Result<(Option<crate::capture::Capture>, u64), LabPrepError> {
    use crate::ap::AccessPoints;
    lab.reset()?;
    let seq = lab.aps.events_since(0)?.last().map_or(0, |e| e.seq);
    if !case.requires.iter().any(|r| r == "lab") {
        return Ok((None, seq));
    }
    let file = run_dir.join(crate::capture::capture_file_name(&case.id));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|source| LabPrepError::Folder { path: dir.to_path_buf(), source })?;
    }
    let netns = lab.lab.netns_path();
    let capture = crate::capture::Capture::start(Some(&netns), lab.lab.bridge_name(), &file)?;
    Ok((Some(capture), seq))
}

/// The transcript on the timeline: what the harness sent, what the module answered.
fn transcript_timeline(
    transcript: &[crate::model::TranscriptEntry],
) -> Vec<crate::model::TimelineEvent> {
    use crate::model::{Direction, Lane, TimelineEvent};
    transcript
        .iter()
        .map(|e| TimelineEvent {
            t_ms: e.t_ms,
            lane: match e.dir {
                Direction::Rx => Lane::Module,
                Direction::Tx | Direction::Note => Lane::Harness,
            },
            text: e.text.clone(),
        })
        .collect()
}

/// The radio's events of this case on the timeline.
fn radio_timeline(
    lab: &mut crate::session::LabSession,
    since: u64,
    wall_start: SystemTime,
) -> Vec<crate::model::TimelineEvent> {
    use crate::ap::AccessPoints;
    let start_ms =
        wall_start.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    lab.aps
        .events_since(since)
        .unwrap_or_default()
        .into_iter()
        .map(|e| crate::model::TimelineEvent {
            t_ms: e.unix_ms as f64 - start_ms,
            lane: crate::model::Lane::Radio,
            text: e.text,
        })
        .collect()
}

fn step_result(
    index: usize,
    action: String,
    outcome: &StepResultT,
    started: Instant,
) -> StepResult {
    let (outcome, message) = match outcome {
        Ok(()) => (StepOutcome::Ok, None),
        Err(Trouble::Product(m)) => (StepOutcome::Failed, Some(m.clone())),
        Err(Trouble::Infra(m)) => (StepOutcome::Error, Some(m.clone())),
        Err(Trouble::Interrupted) => (StepOutcome::Error, Some("interrupted".to_string())),
    };
    StepResult {
        index,
        action,
        outcome,
        message,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Quotes a setup value for a command line when it holds spaces or is empty.
fn quote(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '\t']) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

/// Which of a session's channels a command goes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// The control channel (the serial console): setup.
    Control,
    /// The channel under test: the case's steps.
    UnderTest,
}

struct Ctx<'a, 'l> {
    session: &'a mut Session,
    case: &'a Case,
    deadline: Instant,
    /// The channel under test may not be in the case's format (after a reboot, raw bytes).
    resync_test: bool,
    /// The control channel may not be in its format.
    resync_control: bool,
    /// Faults injected by this case: id, expected firings, description.
    faults: Vec<(crate::ap::FaultId, Option<u32>, String)>,
    /// The lab network, when the rig has one.
    lab: Option<&'l crate::lab::Lab>,
    /// The case's lab peers (stopped when the case ends).
    peers: Option<crate::peers::Peers>,
    /// Lab clients acting on the module, made at the first `client` step.
    clients: Option<crate::peers::Clients<'l>>,
    /// The radio log's position at the start of the case (or of the last power cycle).
    radio_seq: u64,
    /// Radio events of simulated modules a power cycle ended.
    radio_events: Vec<crate::model::TimelineEvent>,
    wall_start: SystemTime,
}

impl Ctx<'_, '_> {
    fn remaining(&self, cap: Duration) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .min(cap)
            .max(Duration::from_millis(1))
    }

    fn format(&self) -> ConsoleFormat {
        self.case.format
    }

    /// Brings a channel's console back to its format if a reboot or raw bytes may have
    /// changed it: the channel under test to the case's format; the control channel to
    /// machine format, or, when the two are one (serial), to the case's.
    fn sync_via(&mut self, via: Via) -> StepResultT {
        let via = if self.session.shares_control() { Via::UnderTest } else { via };
        let (pending, format) = match via {
            Via::UnderTest => (self.resync_test, self.format()),
            Via::Control => (self.resync_control, ConsoleFormat::Machine),
        };
        if !pending {
            return Ok(());
        }
        let timeout = self.session.rig.reboot_timeout;
        let channel: &mut dyn Channel = match via {
            Via::UnderTest => self.session.under_test(),
            Via::Control => &mut self.session.control,
        };
        channel.resync(format, timeout).map_err(|e| match e {
            ChannelError::Interrupted => Trouble::Interrupted,
            ChannelError::Timeout { .. } => {
                Trouble::Product(format!("the module did not come back to {format:?} format: {e}"))
            }
            e => Trouble::from(e),
        })?;
        match via {
            // One channel for both: both are in sync.
            Via::UnderTest if self.session.shares_control() => {
                (self.resync_test, self.resync_control) = (false, false);
            }
            Via::UnderTest => self.resync_test = false,
            Via::Control => self.resync_control = false,
        }
        Ok(())
    }

    fn sync(&mut self) -> StepResultT {
        self.sync_via(Via::UnderTest)
    }

    /// The module restarted (or raw bytes went to its console): every channel resyncs
    /// before its next command.
    fn module_restarted(&mut self) {
        (self.resync_test, self.resync_control) = (true, true);
    }

    /// Sends a command over the channel under test, waiting up to `timeout` (default: the
    /// rig's command timeout), never past the case's deadline.
    fn exec_with(
        &mut self,
        line: &str,
        data: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<crate::channel::Reply, Trouble> {
        self.exec_via(Via::UnderTest, line, data, timeout)
    }

    fn exec_via(
        &mut self,
        via: Via,
        line: &str,
        data: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<crate::channel::Reply, Trouble> {
        self.sync_via(via)?;
        let timeout = self.remaining(timeout.unwrap_or(self.session.rig.command_timeout));
        let request = Request { line, data, timeout };
        Ok(match via {
            Via::UnderTest => self.session.under_test().execute(&request)?,
            Via::Control => self.session.control.execute(&request)?,
        })
    }

    /// Sends a command over the channel under test that must succeed.
    fn exec_ok(&mut self, line: &str) -> Result<String, Trouble> {
        self.exec_ok_via(Via::UnderTest, line)
    }

    fn exec_ok_via(&mut self, via: Via, line: &str) -> Result<String, Trouble> {
        let reply = self.exec_via(via, line, None, None)?;
        if reply.code.0 != 0 {
            return Err(Trouble::Product(format!(
                "`{line}` answered code {} `{}`",
                reply.code,
                reply.text()
            )));
        }
        Ok(reply.text())
    }

    /// The case's setup, over the control channel: whatever the case does to the transport
    /// under test, it cannot cut off its own setup.
    fn setup(&mut self) -> StepResultT {
        let control = Via::Control;
        self.sync_via(control)?;
        let setup = &self.case.setup;
        if setup.factory_reset {
            self.factory_reset(control)?;
        }
        for (name, value) in &setup.set {
            self.exec_ok_via(control, &format!("set {name} {}", quote(value)))?;
        }
        if setup.save {
            self.exec_ok_via(control, "save")?;
        }
        if setup.reboot {
            self.reboot(control)?;
        }
        // The steps start on a channel in the case's format.
        self.sync()
    }

    fn reboot(&mut self, via: Via) -> StepResultT {
        self.exec_ok_via(via, "reboot")?;
        self.session.note("waiting for the module to come back");
        self.module_restarted();
        self.sync_via(via)
    }

    fn factory_reset(&mut self, via: Via) -> StepResultT {
        let mac = self.exec_ok_via(via, "get wlan.mac")?;
        self.exec_ok_via(via, &format!("factory_reset {mac}"))?;
        self.session.note("waiting for the module to come back");
        self.module_restarted();
        self.sync_via(via)
    }

    fn lab(&mut self) -> Result<&mut crate::session::LabSession, Trouble> {
        self.session.lab.as_mut().ok_or_else(|| {
            Trouble::Infra("this rig has no lab network for access points and faults".into())
        })
    }

    /// Every injected fault must have fired (else the case proved nothing: an error), and as
    /// often as the case expects (else the module behaved otherwise: a failure).
    fn check_faults(&mut self) -> StepResultT {
        let faults = std::mem::take(&mut self.faults);
        for (id, expect, what) in faults {
            let status = self.lab()?.aps.fault_status(id).map_err(infra)?;
            match expect {
                Some(n) if status.fired != n => {
                    return Err(Trouble::Product(format!(
                        "fault {what} fired {} times, expected {n}",
                        status.fired
                    )));
                }
                None if status.fired == 0 => {
                    return Err(Trouble::Infra(format!(
                        "fault {what} never fired, so the case proves nothing"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> StepResultT {
        match step {
            Step::Send { line, data, code, body, logs, took, timeout } => {
                let reply = self.exec_with(line, data.as_deref(), *timeout)?;
                let text = reply.text();
                if reply.code.0 != *code {
                    return Err(Trouble::Product(format!(
                        "expected code {code}, got {} with body `{text}`",
                        reply.code
                    )));
                }
                match body {
                    Some(BodyExpect::Exact(want)) if text != *want => {
                        return Err(Trouble::Product(format!(
                            "expected body `{want}`, got `{text}`"
                        )));
                    }
                    Some(BodyExpect::Regex(re)) if !re.is_match(&text) => {
                        return Err(Trouble::Product(format!(
                            "body `{text}` does not match /{re}/"
                        )));
                    }
                    _ => {}
                }
                // Each expected log line must appear, after the one before it.
                let mut from = 0;
                for re in logs {
                    match reply.logs[from..].iter().position(|l| re.is_match(&l.text)) {
                        Some(i) => from += i + 1,
                        None => {
                            let seen: Vec<&str> =
                                reply.logs.iter().map(|l| l.text.as_str()).collect();
                            return Err(Trouble::Product(format!(
                                "no log line matches /{re}/ (in order; logs: {seen:?})"
                            )));
                        }
                    }
                }
                if let Some((min, max)) = took {
                    let t = reply.timing.total;
                    if t < *min || t > *max {
                        return Err(Trouble::Product(format!(
                            "the reply took {} ms, expected {}..={} ms",
                            t.as_millis(),
                            min.as_millis(),
                            max.as_millis()
                        )));
                    }
                }
                Ok(())
            }
            Step::Get(pairs) => {
                for (name, want) in pairs {
                    let got = self.exec_ok(&format!("get {name}"))?;
                    if got != *want {
                        return Err(Trouble::Product(format!(
                            "{name} is `{got}`, expected `{want}`"
                        )));
                    }
                }
                Ok(())
            }
            Step::Reboot => self.reboot(Via::UnderTest),
            Step::FactoryReset => self.factory_reset(Via::UnderTest),
            Step::PowerCycle => {
                // A simulated module's faults and radio log go with its process: the faults
                // must have fired by now, and its events are kept for the timeline.
                if matches!(self.session.rig.dut, crate::rig::Dut::Sim { .. }) {
                    self.check_faults()?;
                    if let Some(lab) = &mut self.session.lab {
                        let events = radio_timeline(lab, self.radio_seq, self.wall_start);
                        self.radio_events.extend(events);
                        self.radio_seq = 0;
                    }
                }
                self.session.power_cycle().map_err(|e| Trouble::Infra(e.to_string()))?;
                self.module_restarted();
                self.sync()
            }
            Step::Sleep(d) => {
                let until = Instant::now() + *d;
                while Instant::now() < until {
                    if interrupt::requested() {
                        return Err(Trouble::Interrupted);
                    }
                    std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
                }
                Ok(())
            }
            Step::Raw { bytes, expect, within } => self.raw(bytes, expect, *within),
            Step::AddAp(ap) => {
                let config = crate::session::ap_config(ap);
                self.lab()?.aps.add_ap(&config).map_err(infra)
            }
            Step::RemoveAp(bssid) => {
                let bssid = crate::rig::format_bssid(bssid);
                self.lab()?.aps.remove_ap(&bssid).map_err(infra)
            }
            Step::MoveAp { bssid, channel } => {
                let bssid = crate::rig::format_bssid(bssid);
                self.lab()?.aps.move_ap(&bssid, *channel).map_err(infra)
            }
            Step::Client(action) => {
                if self.clients.is_none() {
                    let lab = self
                        .lab
                        .ok_or_else(|| Trouble::Infra("this rig has no lab network".into()))?;
                    let state = self.lab()?.aps.state().map_err(infra)?;
                    let ip = state
                        .ip
                        .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
                        .ok_or_else(|| {
                            Trouble::Product(
                                "the module has no IPv4 address for lab clients to reach".into(),
                            )
                        })?;
                    self.clients = Some(crate::peers::Clients::new(lab, ip));
                }
                let Some(clients) = self.clients.as_mut() else {
                    return Err(Trouble::Infra("no lab clients".into()));
                };
                match clients.run(action) {
                    Ok(line) => {
                        self.session.note(format!("lab client: {line}"));
                        Ok(())
                    }
                    Err(crate::peers::ClientError::Fail(m)) => Err(Trouble::Product(m)),
                    Err(crate::peers::ClientError::Infra(e)) => Err(Trouble::Infra(e.to_string())),
                }
            }
            Step::CheckPeer { index, check } => match &self.peers {
                Some(peers) => peers.check(*index, check).map_err(|e| {
                    if e.is_mismatch() {
                        Trouble::Product(e.to_string())
                    } else {
                        Trouble::Infra(e.to_string())
                    }
                }),
                None => Err(Trouble::Infra("the case's lab peers are not running".into())),
            },
            Step::Fault { fault, expect_fired } => {
                let id = self.lab()?.aps.inject_fault(fault).map_err(infra)?;
                self.faults.push((id, *expect_fired, format!("{fault:?}")));
                Ok(())
            }
        }
    }

    fn raw(&mut self, bytes: &[u8], expect: &RawExpect, within: Duration) -> StepResultT {
        self.module_restarted();
        let transport = self.session.transport();
        let Some(link) = self.session.under_test().raw() else {
            // Planning skips such cases; getting here is the harness's fault.
            return Err(Trouble::Infra(format!(
                "the {transport} transport has no raw byte access"
            )));
        };
        link.write_raw(bytes)?;
        match expect {
            RawExpect::Exact(want) => {
                let n = want.len();
                let mut got = link.read_raw(&mut |b| b.len() >= n, within)?;
                // Anything that follows at once is part of the answer too.
                got.extend(link.read_raw(&mut |_| false, Duration::from_millis(30))?);
                if got != *want {
                    return Err(Trouble::Product(format!(
                        "expected bytes `{}`, got `{}`",
                        crate::channel::escape_bytes(want),
                        crate::channel::escape_bytes(&got)
                    )));
                }
            }
            RawExpect::Regex(re) => {
                let got = link.read_raw(&mut |b| re.is_match(b), within)?;
                if !re.is_match(&got) {
                    return Err(Trouble::Product(format!(
                        "bytes `{}` do not match /{re}/ within {} ms",
                        crate::channel::escape_bytes(&got),
                        within.as_millis()
                    )));
                }
            }
            RawExpect::Nothing => {
                link.read_raw(&mut |_| false, within)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clause_lists_a_case_once_and_rolls_up_every_transport() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inventory = "[[clause]]\nid = \"a.one\"\nsection = \"A\"\nsource = \"chapter\"\nlines = [1, 2]\nkind = \"behaviour\"\ntext = \"one\"\n";
        std::fs::write(dir.path().join("clauses.toml"), inventory).expect("write");
        let case = "section = \"x\"\ntitle = \"X\"\n[[case]]\nid = \"x/one\"\ntitle = \"one\"\nclauses = [\"a.one\"]\nbasis = \"documented\"\n[[case.step]]\nsend = \"version\"\n";
        std::fs::write(dir.path().join("x.toml"), case).expect("write");
        let specs = crate::spec::load_dir(dir.path()).expect("valid");
        let case = &specs.cases[0];
        let over = |transport, verdict| CaseResult { verdict, ..base_result(case, transport, 0) };
        let results =
            [over(Transport::Serial, Verdict::Pass), over(Transport::Terminal, Verdict::Fail)];
        let clauses = clause_results(&specs, &results);
        assert_eq!(clauses[0].cases, ["x/one"]);
        assert_eq!(clauses[0].status, ClauseStatus::Fail);
    }

    #[test]
    fn a_run_uses_the_rig_transports_unless_told_otherwise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rig.toml");
        std::fs::write(&path, "name = \"r\"\n[dut]\nkind = \"sim\"\n").expect("write");
        let rig = crate::rig::load(&path).expect("valid");
        assert_eq!(run_transports(&rig, None).expect("rig's"), [Transport::Serial]);
        let asked = [Transport::Serial, Transport::Serial];
        assert_eq!(run_transports(&rig, Some(&asked)).expect("once"), [Transport::Serial]);
        let e = run_transports(&rig, Some(&[Transport::Terminal])).expect_err("not yet");
        assert_eq!(
            e.to_string(),
            "the terminal transport is not implemented yet (available: serial)"
        );
    }
}

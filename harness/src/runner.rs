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
use crate::spec::wait::Condition;
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
    #[error(
        "rig `{rig}` has one module: --jobs must be 1 (only simulated modules, emulated boards and [labgrid] rigs, one place per job, run cases in parallel)"
    )]
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
    // Simulated modules and emulated boards are started per worker (each in its own lab);
    // labgrid rigs hold one place per worker.
    let shared = matches!(
        rig.dut,
        crate::rig::Dut::Sim { .. }
            | crate::rig::Dut::Qemu { .. }
            | crate::rig::Dut::Hardware { port: crate::rig::PortSpec::Labgrid(_) }
    );
    if jobs > 1 && !shared {
        return Err(RunError::OneModule { rig: rig.name.clone() });
    }
    // Each worker has its own rig instance (its own simulated module); cases are handed out
    // from one queue, results come back tagged with their index so the report keeps file order.
    let queue = WorkQueue::new(planned.into_iter().enumerate().collect(), jobs);
    // The module's version, MAC and port, asked once, of the first module that answers.
    type Contact = (Option<String>, Option<String>, String);
    let first_contact: Mutex<Option<Contact>> = Mutex::new(None);
    // The labgrid places the workers hold, with the module behind each.
    let places: Mutex<Vec<crate::model::PlaceIdentity>> = Mutex::new(Vec::new());
    let (tx, rx) = mpsc::channel::<(usize, CaseResult)>();
    let mut indexed = Vec::with_capacity(cases.len());
    std::thread::scope(|scope| {
        for worker in 0..jobs {
            let tx = tx.clone();
            let (queue, first_contact, run_dir, places) =
                (&queue, &first_contact, &run_dir, &places);
            scope.spawn(move || {
                let dir = if jobs == 1 {
                    run_dir.join("module")
                } else {
                    run_dir.join(format!("module-{worker}"))
                };
                let open = || {
                    let mut session = Session::open(rig, &dir);
                    if let Ok(s) = &mut session {
                        let mut first = first_contact.lock().unwrap_or_else(|e| e.into_inner());
                        if first.is_none() {
                            *first =
                                Some((s.module_version(), s.module_mac(), s.control.endpoint()));
                        }
                        if let Some(held) = &s.place {
                            let mut places = places.lock().unwrap_or_else(|e| e.into_inner());
                            if !places.iter().any(|p| p.place == held.place()) {
                                places.push(crate::model::PlaceIdentity {
                                    place: held.place().to_string(),
                                    console: s.control.endpoint(),
                                    module_version: s.module_version(),
                                    module_mac: s.module_mac(),
                                });
                            }
                        }
                    }
                    session
                };
                let mut session = open();
                // Whether this worker has given up on its module (it still errors the cases
                // no other worker is left to run).
                let mut gave_up = false;
                while let Some((index, planned)) = queue.next() {
                    let Planned { case, transport, skip } = planned;
                    let start_ms = clock.elapsed().as_millis() as u64;
                    let mut result = if interrupt::requested() {
                        skipped(case, transport, start_ms, "run interrupted before this case")
                    } else if let Some(why) = skip {
                        skipped(case, transport, start_ms, &why.to_string())
                    } else {
                        if session.is_err() && !gave_up {
                            // A module that did not start (a loaded machine, a port that was
                            // busy) gets a second chance before its cases are given away.
                            session = open();
                        }
                        match &mut session {
                            Err(e) => {
                                if !gave_up {
                                    gave_up = true;
                                    let planned = Planned { case, transport, skip: None };
                                    if queue.give_back(index, planned) {
                                        break;
                                    }
                                }
                                errored(case, transport, start_ms, &format!("no session: {e}"))
                            }
                            // A transport that cannot be prepared may be a session left
                            // broken (a module that died, a reopen that failed): one fresh
                            // start before the case is given up.
                            Ok(s) => match s.use_transport(transport).or_else(|first| {
                                s.reopen()
                                    .and_then(|()| s.use_transport(transport))
                                    .map_err(|again| format!("{first}; after reopening: {again}"))
                            }) {
                                Err(e) => errored(case, transport, start_ms, &e),
                                Ok(()) => run_with_retries(s, case, options.retries, start_ms),
                            },
                        }
                    };
                    if result.verdict != Verdict::Skipped
                        && let Ok(s) = &session
                    {
                        result.place = s.place.as_ref().map(|p| p.place().to_string());
                    }
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
    let (module_version, module_mac, port) =
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
        module_mac,
        places: places.into_inner().unwrap_or_else(|e| e.into_inner()),
        selection: options.selection.describe(),
        transports,
        totals: Totals::count(&results),
        clauses: clause_results(specs, &results),
        cases: results,
    };
    let dir = crate::report::write_run(&run, &options.reports_root)?;
    Ok((run, dir))
}

/// The run's cases, handed out to the workers in order.
///
/// A worker whose module cannot be started gives its case back and stops, as long as another
/// worker is still taking cases; the last worker left runs (or errors) everything. Whether a
/// worker is still taking cases is decided under the same lock as the hand-back, so a case
/// given back is never left behind by a worker that just saw the queue empty.
#[derive(Debug)]
struct WorkQueue<T> {
    inner: Mutex<(VecDeque<(usize, T)>, usize)>,
}

impl<T> WorkQueue<T> {
    fn new(items: VecDeque<(usize, T)>, workers: usize) -> Self {
        Self { inner: Mutex::new((items, workers)) }
    }

    /// The next case; `None` once there is none left (the worker then stops taking cases).
    fn next(&self) -> Option<(usize, T)> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let next = inner.0.pop_front();
        if next.is_none() {
            inner.1 = inner.1.saturating_sub(1);
        }
        next
    }

    /// Gives a case back for another worker and stops this one, if another is still taking
    /// cases (`true`); otherwise keeps it with the caller (`false`).
    fn give_back(&self, index: usize, item: T) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.1 <= 1 {
            return false;
        }
        inner.1 -= 1;
        inner.0.push_front((index, item));
        true
    }
}

/// A case whose outcome was not the same in every repetition of a run (`hil run --repeat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeChange {
    pub id: String,
    /// The transport it ran over (a case runs once per transport of the run).
    pub transport: Transport,
    /// Its verdict in each repetition, in order (`None`: not in that repetition's results).
    pub verdicts: Vec<Option<Verdict>>,
    /// The reason of its first repetition that did not pass, for the summary.
    pub first_reason: Option<String>,
}

/// The cases (each over each of its transports) whose verdict changed between repetitions,
/// in the order of their first appearance. A case missing from a repetition's results counts
/// as changed.
pub fn outcome_changes(runs: &[RunResult]) -> Vec<OutcomeChange> {
    let mut keys: Vec<(&str, Transport)> = Vec::new();
    for run in runs {
        for c in &run.cases {
            if !keys.contains(&(c.id.as_str(), c.transport)) {
                keys.push((&c.id, c.transport));
            }
        }
    }
    keys.into_iter()
        .filter_map(|(id, transport)| {
            let results: Vec<Option<&CaseResult>> = runs
                .iter()
                .map(|r| r.cases.iter().find(|c| c.id == id && c.transport == transport))
                .collect();
            let verdicts: Vec<Option<Verdict>> =
                results.iter().map(|c| c.map(|c| c.verdict)).collect();
            let first = verdicts.first().copied().flatten();
            if verdicts.iter().all(|v| *v == first) {
                return None;
            }
            let first_reason = results
                .iter()
                .flatten()
                .find(|c| c.verdict != Verdict::Pass)
                .and_then(|c| c.reason.clone());
            Some(OutcomeChange { id: id.to_string(), transport, verdicts, first_reason })
        })
        .collect()
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
        place: None,
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
    // The run's PKI (made at its first use), for TLS peers, clients and files.
    let mut pki = None;
    if trouble.is_none() && case.uses_pki() {
        match crate::pki::Pki::for_run(&run_dir) {
            Ok(p) => pki = Some(p),
            Err(e) => trouble = Some(Trouble::Infra(format!("lab PKI: {e}"))),
        }
    }
    // Lab peers for the case, and the lab itself for clients that act on the module.
    let lab = session.lab.as_ref().map(|l| std::sync::Arc::clone(&l.lab));
    let mut peers = None;
    if trouble.is_none()
        && !case.peers.is_empty()
        && let Some(lab) = &lab
    {
        match crate::peers::Peers::start_with_pki(lab, &case.peers, pki.as_deref()) {
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
        pki,
        radio_seq,
        radio_events: Vec::new(),
        wall_start,
        capture: capture.take(),
        step_ended: Instant::now(),
    };
    let mut steps = Vec::new();

    let t = Instant::now();
    let setup = if trouble.is_some() { Ok(()) } else { ctx.setup() };
    let setup_failed = setup.is_err();
    ctx.step_ended = Instant::now();
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
        ctx.step_ended = Instant::now();
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
    let packets = match ctx.capture.take().map(crate::capture::Capture::stop) {
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
            (Verdict::Error, Some(format!("the module's process exited ({status})")))
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

/// Judges when a polled condition came true against an `after_ms` window, all times counted
/// from the end of the previous step: `last_false` is when the last poll that saw it false
/// began (none: the first poll saw it true), `true_by` when the poll that saw it true
/// answered. It came true somewhere in between; only a certain miss fails: seen true before
/// `min`, or still false after `max`.
fn judge_window(
    last_false: Option<Duration>,
    true_by: Duration,
    (min, max): (Duration, Duration),
) -> Result<(), String> {
    let ms = |d: Duration| d.as_millis();
    if true_by < min {
        return Err(format!(
            "came true within {} ms of the previous step, expected after {}..={} ms",
            ms(true_by),
            ms(min),
            ms(max)
        ));
    }
    if let Some(f) = last_false
        && f > max
    {
        return Err(format!(
            "still false {} ms after the previous step, expected true by {} ms (true by {} ms)",
            ms(f),
            ms(max),
            ms(true_by)
        ));
    }
    Ok(())
}

/// A reply's code and body against a step's expectation (`send` steps, reply conditions).
fn check_reply(
    got: crate::code::ResultCode,
    text: &str,
    code: u8,
    body: Option<&BodyExpect>,
) -> Result<(), String> {
    if got.0 != code {
        return Err(format!("expected code {code}, got {got} with body `{text}`"));
    }
    match body {
        Some(BodyExpect::Exact(want)) if text != want => {
            Err(format!("expected body `{want}`, got `{text}`"))
        }
        Some(BodyExpect::Regex(re)) if !re.is_match(text) => {
            Err(format!("body `{text}` does not match /{re}/"))
        }
        _ => Ok(()),
    }
}

/// Each expected log line must appear in `seen`, after the one before it.
fn check_logs(logs: &[regex::Regex], seen: &[&str]) -> Result<(), String> {
    let mut from = 0;
    for re in logs {
        match seen[from..].iter().position(|l| re.is_match(l)) {
            Some(i) => from += i + 1,
            None => return Err(format!("no log line matches /{re}/ (in order; logs: {seen:?})")),
        }
    }
    Ok(())
}

/// What the polls of one `wait` or `hold` step saw.
#[derive(Debug, Default)]
struct Watch {
    /// The last value seen, for the failure message.
    seen: String,
    /// Log lines from every reply of the step, in order.
    logs: Vec<String>,
}

/// A reply as the failure messages of waits show it: `[<code>] <body>` on one line.
fn reply_text(code: u8, text: &str) -> String {
    format!("[{code}] {}", text.replace('\n', "\\n"))
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
    /// The run's PKI, when the case uses it.
    pki: Option<std::sync::Arc<crate::pki::Pki>>,
    /// The radio log's position at the start of the case (or of the last power cycle).
    radio_seq: u64,
    /// Radio events of simulated modules a power cycle ended.
    radio_events: Vec<crate::model::TimelineEvent>,
    wall_start: SystemTime,
    /// The case's packet capture (lab cases), live for `packets` conditions.
    capture: Option<crate::capture::Capture>,
    /// When the previous step ended: `after_ms` windows count from here.
    step_ended: Instant,
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
    /// machine format, or, when the two are one (serial) or share the module's console
    /// format (the remote terminal), to the case's.
    fn sync_via(&mut self, via: Via) -> StepResultT {
        let via = if self.session.shares_control() { Via::UnderTest } else { via };
        let control_format =
            if self.session.shares_format() { self.format() } else { ConsoleFormat::Machine };
        let (pending, format) = match via {
            Via::UnderTest => (self.resync_test, self.format()),
            Via::Control => (self.resync_control, control_format),
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

    /// Sends a command over the channel under test, waiting the rig's command timeout.
    fn exec(&mut self, line: &str, data: Option<&[u8]>) -> Result<crate::channel::Reply, Trouble> {
        self.exec_with(line, data, None)
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
        self.session.release_under_test();
        self.sync_via(control)?;
        let setup = &self.case.setup;
        if setup.factory_reset {
            self.factory_reset(control)?;
        }
        for (name, value) in &setup.set {
            self.exec_ok_via(control, &format!("set {name} {}", quote(value)))?;
        }
        self.pki_files(control)?;
        if setup.save {
            self.exec_ok_via(control, "save")?;
        }
        if setup.reboot {
            self.reboot(control)?;
        }
        if self.pki.is_some() {
            // Certificates are valid or not at the lab's now, on both sides.
            self.exec_ok_via(control, &format!("set time.rtc {}", crate::pki::LAB_NOW))?;
        }
        // A channel under test of its own gets ready after what the setup did: a network
        // transport's network and HTTP server come up again and it reopens; the remote
        // terminal connects.
        if !self.session.shares_control() {
            let case = self.case;
            let format = self.format();
            self.session
                .prepare_under_test(&case.setup.set, format)
                .map_err(|e| Trouble::Infra(e.to_string()))?;
            // A console that shares the module's format is in the case's already (the
            // control channel put it there before the setup's `set`s, as for serial).
            self.resync_test = !self.session.shares_format();
        }
        // The steps start on a channel in the case's format.
        self.sync()
    }

    /// Creates the setup's `pki_files` on the module with `file_create` (a file left from
    /// before is deleted first when the setup keeps the module's state).
    fn pki_files(&mut self, via: Via) -> StepResultT {
        let case = self.case;
        if case.setup.pki_files.is_empty() {
            return Ok(());
        }
        let pki = self.pki.clone().ok_or_else(|| Trouble::Infra("no lab PKI".into()))?;
        self.sync_via(via)?;
        let timeout = self.remaining(self.session.rig.command_timeout);
        let channel: &mut dyn Channel = match via {
            Via::UnderTest => self.session.under_test(),
            Via::Control => &mut self.session.control,
        };
        let replace = !case.setup.factory_reset;
        crate::pki::put_on_module(channel, &pki, &case.setup.pki_files, replace, timeout).map_err(
            |e| match e {
                crate::pki::ModuleFileError::Channel(e) => Trouble::from(e),
                e @ crate::pki::ModuleFileError::Refused { .. } => Trouble::Product(e.to_string()),
                e @ crate::pki::ModuleFileError::Pki(_) => Trouble::Infra(e.to_string()),
            },
        )
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
                let seen: Vec<&str> = reply.logs.iter().map(|l| l.text.as_str()).collect();
                check_reply(reply.code, &reply.text(), *code, body.as_ref())
                    .and_then(|()| check_logs(logs, &seen))
                    .map_err(Trouble::Product)?;
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
            Step::Wait { condition, timeout, poll, after } => {
                self.wait(condition, *timeout, *poll, *after)
            }
            Step::Hold { condition, duration, poll, prescribed_by } => {
                self.hold(condition, *duration, *poll, prescribed_by)
            }
            Step::Idle { duration, prescribed_by } => {
                let until = Instant::now() + *duration;
                if until > self.deadline {
                    return Err(Trouble::Infra(format!(
                        "idling {} ms would pass the case's timeout (raise its timeout_ms)",
                        duration.as_millis()
                    )));
                }
                self.session.note(format!(
                    "idle {} ms: a guard time ({prescribed_by})",
                    duration.as_millis()
                ));
                self.pause_until(until)
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
            Step::Client(action) => match self.client(action)? {
                Ok(()) => Ok(()),
                Err(m) => Err(Trouble::Product(m)),
            },
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

    /// Runs a lab client action: `Ok(Err(_))` when the module did not do its part.
    fn client(
        &mut self,
        action: &crate::peers::ClientAction,
    ) -> Result<Result<(), String>, Trouble> {
        if self.clients.is_none() {
            let lab =
                self.lab.ok_or_else(|| Trouble::Infra("this rig has no lab network".into()))?;
            let state = self.lab()?.aps.state().map_err(infra)?;
            let ip = state.ip.and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok());
            let Some(ip) = ip else {
                return Ok(Err("the module has no IPv4 address for lab clients to reach".into()));
            };
            let mut clients = crate::peers::Clients::new(lab, ip);
            if let Some(pki) = &self.pki {
                clients = clients.with_pki(std::sync::Arc::clone(pki));
            }
            self.clients = Some(clients);
        }
        let Some(clients) = self.clients.as_mut() else {
            return Err(Trouble::Infra("no lab clients".into()));
        };
        match clients.run(action) {
            Ok(line) => {
                self.session.note(format!("lab client: {line}"));
                Ok(Ok(()))
            }
            Err(crate::peers::ClientError::Fail(m)) => Ok(Err(m)),
            Err(crate::peers::ClientError::Infra(e)) => Err(Trouble::Infra(e.to_string())),
        }
    }

    /// Sleeps in short slices until `until`, noticing Ctrl-C.
    fn pause_until(&self, until: Instant) -> StepResultT {
        loop {
            if interrupt::requested() {
                return Err(Trouble::Interrupted);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10).min(until - now));
        }
    }

    /// Polls `condition` until it holds, at most `timeout` (and never past the case's
    /// deadline). With `after`, it must come true within that window after the previous step
    /// ended: too early when a poll saw it true before `min`, too late when a poll that began
    /// after `max` still saw it false.
    fn wait(
        &mut self,
        condition: &Condition,
        timeout: Duration,
        poll: Duration,
        after: Option<(Duration, Duration)>,
    ) -> StepResultT {
        let clock = self.step_ended;
        let started = Instant::now();
        let deadline = (started + timeout).min(self.deadline);
        let mut watch = Watch::default();
        // When the last poll that saw the condition false began.
        let mut last_false: Option<Instant> = None;
        let mut polls = 0u32;
        loop {
            let asked = Instant::now();
            let holds = self.observe(condition, &mut watch)?;
            let answered = Instant::now();
            polls += 1;
            if holds {
                let ms = |t: Instant| t.saturating_duration_since(clock).as_millis();
                let earliest = last_false.map_or(0, ms);
                self.session.note(format!(
                    "waited for {condition}: true after {polls} poll(s), between {earliest} and {} ms after the previous step",
                    ms(answered)
                ));
                if let Some(window) = after {
                    let since = |t: Instant| t.saturating_duration_since(clock);
                    judge_window(last_false.map(since), since(answered), window)
                        .map_err(|m| Trouble::Product(format!("{m}; last seen: {}", watch.seen)))?;
                }
                return Ok(());
            }
            last_false = Some(asked);
            if answered >= deadline {
                let waited = answered.saturating_duration_since(started);
                return Err(Trouble::Product(format!(
                    "waited {:.1} s for {condition} ({polls} polls); last seen: {}",
                    waited.as_secs_f64(),
                    watch.seen
                )));
            }
            self.pause_until((asked + poll).min(deadline))?;
        }
    }

    /// Polls `condition` for `duration`; it must hold on every poll.
    fn hold(
        &mut self,
        condition: &Condition,
        duration: Duration,
        poll: Duration,
        prescribed_by: &str,
    ) -> StepResultT {
        let started = Instant::now();
        let end = started + duration;
        if end > self.deadline {
            // The spec's durations do not fit its timeout: the case cannot tell anything.
            return Err(Trouble::Infra(format!(
                "holding {condition} for {} ms would pass the case's timeout (raise its timeout_ms)",
                duration.as_millis()
            )));
        }
        self.session
            .note(format!("hold {condition} for {} ms ({prescribed_by})", duration.as_millis()));
        let mut watch = Watch::default();
        let mut polls = 0u32;
        loop {
            let asked = Instant::now();
            let holds = self.observe(condition, &mut watch)?;
            polls += 1;
            if !holds {
                return Err(Trouble::Product(format!(
                    "{condition} stopped holding after {} ms of {} ms (poll {polls}); seen: {}",
                    asked.saturating_duration_since(started).as_millis(),
                    duration.as_millis(),
                    watch.seen
                )));
            }
            if asked >= end {
                return Ok(());
            }
            self.pause_until((asked + poll).min(end))?;
        }
    }

    /// Looks once at what `condition` watches; records what it saw in `watch.seen`.
    /// Sends a poll's command: a reply, or `None` when the module's answer was wrong or
    /// late (what was seen goes to `watch`; the next poll may do better).
    fn poll_exec(
        &mut self,
        line: &str,
        watch: &mut Watch,
    ) -> Result<Option<crate::channel::Reply>, Trouble> {
        match self.exec(line, None) {
            Ok(reply) => Ok(Some(reply)),
            Err(Trouble::Product(m)) => {
                watch.seen = m;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A reply that does not come in time is a value seen, not a failure: the next poll
    /// may get one.
    fn observe(&mut self, condition: &Condition, watch: &mut Watch) -> Result<bool, Trouble> {
        match condition {
            Condition::Reply { line, code, body, logs } => {
                let Some(reply) = self.poll_exec(line, watch)? else { return Ok(false) };
                let text = reply.text();
                watch.logs.extend(reply.logs.iter().map(|l| l.text.clone()));
                watch.seen = format!("`{}`", reply_text(reply.code.0, &text));
                let seen: Vec<&str> = watch.logs.iter().map(String::as_str).collect();
                let holds = check_reply(reply.code, &text, *code, body.as_ref())
                    .and_then(|()| check_logs(logs, &seen));
                if !logs.is_empty() {
                    watch.seen = format!("{}; logs so far: {:?}", watch.seen, watch.logs);
                }
                Ok(holds.is_ok())
            }
            Condition::Stream(s) => {
                let Some(reply) = self.poll_exec("stream_list", watch)? else { return Ok(false) };
                let text = reply.text();
                watch.seen = format!("`stream_list`: `{}`", reply_text(reply.code.0, &text));
                if reply.code.0 != 0 {
                    return Ok(false);
                }
                let found = text.lines().find_map(|row| s.matches_row(row));
                match (found, s.gone, s.poll) {
                    (Some(_), true, _) => Ok(false),
                    (None, true, _) => Ok(true),
                    (None, false, _) => Ok(false),
                    (Some(_), false, None) => Ok(true),
                    (Some(h), false, Some(state)) => {
                        let line = format!("stream_poll {h}");
                        let Some(reply) = self.poll_exec(&line, watch)? else {
                            return Ok(false);
                        };
                        let polled = reply.text();
                        watch.seen = format!(
                            "{}; `stream_poll {h}`: `{}`",
                            watch.seen,
                            reply_text(reply.code.0, &polled)
                        );
                        Ok(reply.code.0 == 0 && polled == state.body())
                    }
                }
            }
            Condition::Peer { index, check } => match &self.peers {
                Some(peers) => match peers.check(*index, check) {
                    Ok(()) => Ok(true),
                    Err(e) if e.is_mismatch() => {
                        watch.seen = e.to_string();
                        Ok(false)
                    }
                    Err(e) => Err(Trouble::Infra(e.to_string())),
                },
                None => Err(Trouble::Infra("the case's lab peers are not running".into())),
            },
            Condition::Client(action) => match self.client(action)? {
                Ok(()) => Ok(true),
                Err(m) => {
                    watch.seen = m;
                    Ok(false)
                }
            },
            Condition::Packets(expect) => {
                let Some(capture) = &self.capture else {
                    return Err(Trouble::Infra("this case has no packet capture".into()));
                };
                match capture.with_packets(|p| expect.check(p)) {
                    Ok(()) => Ok(true),
                    Err(m) => {
                        watch.seen = m;
                        Ok(false)
                    }
                }
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
        // Writing drops whatever waits unread; with nothing to write, the step reads what is
        // there (data a lab client sent to the bus a moment ago must not be thrown away).
        if !bytes.is_empty() {
            link.write_raw(bytes)?;
        }
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
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn the_queue_hands_cases_out_in_order() {
        let q = WorkQueue::new((0..3).map(|i| (i, i * 10)).collect(), 1);
        assert_eq!(
            (q.next(), q.next(), q.next(), q.next()),
            (Some((0, 0)), Some((1, 10)), Some((2, 20)), None)
        );
    }

    #[test]
    fn a_worker_without_a_module_gives_its_case_to_one_that_is_still_working() {
        let q = WorkQueue::new((0..2).map(|i| (i, i)).collect(), 2);
        let (first, _) = (q.next(), q.next());
        assert_eq!(first, Some((0, 0)));
        // The worker that took case 0 has no module: it hands it back and stops.
        assert!(q.give_back(0, 0));
        // The other worker gets it after its own.
        assert_eq!(q.next(), Some((0, 0)));
        assert_eq!(q.next(), None);
    }

    #[test]
    fn the_last_worker_keeps_its_case_even_without_a_module() {
        let q = WorkQueue::new((0..2).map(|i| (i, i)).collect(), 2);
        let taken = q.next();
        assert_eq!(taken, Some((0, 0)));
        // The other worker took the last case and then saw the queue empty: it is gone.
        assert_eq!(q.next(), Some((1, 1)));
        assert_eq!(q.next(), None);
        // Nobody would run a case given back now, so the caller keeps it (and errors it).
        assert!(!q.give_back(0, 0));
        assert_eq!(q.next(), None);
    }

    fn with_verdicts(verdicts: &[(&str, Verdict)]) -> RunResult {
        let mut run = crate::testdata::sample_run();
        let template = run.cases[0].clone();
        run.cases = verdicts
            .iter()
            .map(|(id, v)| CaseResult {
                id: (*id).to_string(),
                verdict: *v,
                reason: (*v != Verdict::Pass).then(|| format!("{id} went wrong")),
                ..template.clone()
            })
            .collect();
        run
    }

    #[test]
    fn same_outcomes_every_time_are_no_change() {
        let a = with_verdicts(&[("x/a", Verdict::Pass), ("x/b", Verdict::Fail)]);
        assert_eq!(outcome_changes(&[a.clone(), a.clone(), a]), vec![]);
        assert_eq!(outcome_changes(&[]), vec![]);
    }

    #[test]
    fn a_verdict_that_differs_once_is_a_change() {
        let pass = with_verdicts(&[("x/a", Verdict::Pass), ("x/b", Verdict::Pass)]);
        let flaky = with_verdicts(&[("x/a", Verdict::Pass), ("x/b", Verdict::Fail)]);
        let changes = outcome_changes(&[pass.clone(), flaky, pass]);
        assert_eq!(
            changes,
            vec![OutcomeChange {
                id: "x/b".into(),
                transport: Transport::Serial,
                verdicts: vec![Some(Verdict::Pass), Some(Verdict::Fail), Some(Verdict::Pass)],
                first_reason: Some("x/b went wrong".into()),
            }]
        );
    }

    #[test]
    fn a_case_missing_from_a_repetition_is_a_change() {
        let both = with_verdicts(&[("x/a", Verdict::Pass), ("x/b", Verdict::Pass)]);
        let one = with_verdicts(&[("x/a", Verdict::Pass)]);
        let changes = outcome_changes(&[both, one]);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].id, "x/b");
        assert_eq!(changes[0].verdicts, vec![Some(Verdict::Pass), None]);
        assert_eq!(changes[0].first_reason, None);
    }

    #[test]
    fn each_transport_of_a_case_is_compared_with_itself() {
        let over = |rest: Verdict| {
            let mut run = with_verdicts(&[("x/a", Verdict::Pass), ("x/a", rest)]);
            run.cases[1].transport = Transport::Rest;
            run
        };
        let changes = outcome_changes(&[over(Verdict::Pass), over(Verdict::Fail)]);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!((changes[0].id.as_str(), changes[0].transport), ("x/a", Transport::Rest));
        assert_eq!(outcome_changes(&[over(Verdict::Skipped), over(Verdict::Skipped)]), vec![]);
    }

    #[test]
    fn error_then_fail_is_a_change() {
        let e = with_verdicts(&[("x/a", Verdict::Error)]);
        let f = with_verdicts(&[("x/a", Verdict::Fail)]);
        assert_eq!(outcome_changes(&[e, f]).len(), 1);
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn windows_fail_only_on_a_certain_miss() {
        let window = (ms(900), ms(1500));
        // Seen false at 800, true by 1000: inside.
        assert_eq!(judge_window(Some(ms(800)), ms(1000), window), Ok(()));
        // True by 950 though the last false poll began at 850: may have come at 900.
        assert_eq!(judge_window(Some(ms(850)), ms(950), window), Ok(()));
        // Seen true already at 500: too early.
        let e = judge_window(Some(ms(400)), ms(500), window).unwrap_err();
        assert!(e.contains("within 500 ms"), "{e}");
        // True on the first poll, at 100 ms: too early.
        assert!(judge_window(None, ms(100), window).is_err());
        // Still false at 1600: too late, even though it was true by 1700.
        let e = judge_window(Some(ms(1600)), ms(1700), window).unwrap_err();
        assert!(e.contains("still false 1600 ms after"), "{e}");
        // False at 1450, true by 1550: it may have come by 1500.
        assert_eq!(judge_window(Some(ms(1450)), ms(1550), window), Ok(()));
    }
}

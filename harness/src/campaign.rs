//! Campaigns: the suite on several rigs, each run in a folder named after its rig inside one
//! stamped folder: nightly runs (`<reports>/nightly/<stamp>/<rig>/` and `nightly.md`, see
//! [`crate::report::nightly`]) and release qualification (`<reports>/qualify/<stamp>/<rig>/`
//! and `qualification.md`, see [`crate::report::qualify`]).
//!
//! Stamps are `YYYYmmdd-HHMMSS` in UTC, so folder names sort by time; the previous nightly of
//! a rig is the newest earlier folder holding a complete run of a rig of that name. A rig
//! that cannot run (its rig file, its module) is reported and the other rigs still run.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::model::RunResult;
use crate::report::nightly::{self, Broken, Night, Thresholds};
use crate::report::qualify::{self, BoardRun, Qualification};
use crate::report::{self, DiffOptions, RESULTS_JSON, ReportError};
use crate::rig::Rig;
use crate::runner::{self, RunOptions};
use crate::spec::{Selection, Specs};
use crate::transport::Transport;

/// The folder of nightly runs under the reports root.
pub const NIGHTLY_DIR: &str = "nightly";
/// The folder of qualifications under the reports root.
pub const QUALIFY_DIR: &str = "qualify";

/// How each rig's run goes.
#[derive(Clone, Debug)]
pub struct CampaignOptions {
    pub selection: Selection,
    pub retries: u32,
    /// Module instances at once, on simulated rigs (other rigs have one module).
    pub jobs: usize,
    /// `None`: each rig's own transports.
    pub transports: Option<Vec<Transport>>,
    pub progress: bool,
}

/// What went wrong around the runs (a rig's own failure is reported, not returned).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("rig name {name:?} ({}) cannot name a folder", rig.display())]
    RigName { rig: PathBuf, name: String },
    #[error("{} and {} are both rig `{name}`: each rig of a campaign needs its own name", first.display(), second.display())]
    SameName { name: String, first: PathBuf, second: PathBuf },
    #[error("baseline {}: no results.json there, nor in a folder inside it", path.display())]
    NoBaseline { path: PathBuf },
    #[error("cannot render {}: {message}", path.display())]
    Render { path: PathBuf, message: String },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CampaignError {
    let path = path.to_path_buf();
    move |source| CampaignError::Io { action, path, source }
}

/// A nightly, written: the night and its folder.
#[derive(Debug)]
pub struct NightlyOutcome {
    pub night: Night,
    pub folder: PathBuf,
}

/// A qualification, written: it and its folder.
#[derive(Debug)]
pub struct QualifyOutcome {
    pub qualification: Qualification,
    pub folder: PathBuf,
}

/// `YYYYmmdd-HHMMSS`, UTC.
pub fn stamp(t: SystemTime) -> String {
    let digits: String = humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{}-{}", &digits[..8], &digits[8..14])
}

/// A new stamped folder in `root` (`-2`, `-3`, ... when one of that second exists).
fn new_folder(root: &Path) -> Result<(String, PathBuf), CampaignError> {
    fs::create_dir_all(root).map_err(io("cannot create", root))?;
    let base = stamp(SystemTime::now());
    let mut name = base.clone();
    for n in 2.. {
        let dir = root.join(&name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((name, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => name = format!("{base}-{n}"),
            Err(e) => return Err(io("cannot create", &dir)(e)),
        }
    }
    unreachable!("the loop returns")
}

/// The rigs, loaded, each with a name that can be a folder and no two alike. A rig file that
/// does not load is broken, not fatal.
fn load_rigs(paths: &[PathBuf]) -> Result<(Vec<Rig>, Vec<Broken>), CampaignError> {
    let (mut rigs, mut broken) = (Vec::new(), Vec::new());
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        let rig = match crate::rig::load(path) {
            Ok(rig) => rig,
            Err(e) => {
                broken.push(Broken { rig: path.display().to_string(), error: e.to_string() });
                continue;
            }
        };
        let mut parts = Path::new(&rig.name).components();
        let folder_like = matches!(parts.next(), Some(Component::Normal(_)))
            && parts.next().is_none()
            && !rig.name.starts_with('.')
            && !rig.name.contains(['/', '\\'])
            && rig.name != report::LATEST;
        if !folder_like {
            return Err(CampaignError::RigName { rig: path.clone(), name: rig.name });
        }
        if let Some(first) = seen.insert(rig.name.clone(), path.clone()) {
            return Err(CampaignError::SameName { name: rig.name, first, second: path.clone() });
        }
        rigs.push(rig);
    }
    Ok((rigs, broken))
}

/// Runs the selection on `rig` into `folder/<rig name>/`. A run that cannot be made is the
/// rig's trouble: its message comes back as the error.
fn run_rig(
    specs: &Specs,
    rig: &Rig,
    folder: &Path,
    options: &CampaignOptions,
) -> Result<(RunResult, PathBuf), String> {
    let run_options = RunOptions {
        selection: options.selection.clone(),
        retries: options.retries,
        // The run writes `folder/<run id>/` and `folder/latest`; it is moved to its rig's name.
        reports_root: folder.to_path_buf(),
        progress: options.progress,
        jobs: match &rig.dut {
            crate::rig::Dut::Sim { .. } => options.jobs,
            // Every place that matches the rig (busy ones are waited for, up to its `wait_s`).
            crate::rig::Dut::Hardware { port: crate::rig::PortSpec::Labgrid(spec) } => {
                crate::labgrid::matching_places(spec).map_or(1, |p| p.len().max(1))
            }
            _ => 1,
        },
        transports: options.transports.clone(),
    };
    let (run, written) = runner::run(specs, rig, &run_options).map_err(|e| e.to_string())?;
    let _ = fs::remove_file(folder.join(report::LATEST));
    let dir = folder.join(&rig.name);
    fs::rename(&written, &dir)
        .map_err(|e| format!("cannot move {} to {}: {e}", written.display(), dir.display()))?;
    Ok((run, dir))
}

/// The newest complete run of rig `rig` in a nightly folder of `root` older than `stamp`,
/// with its folder's name.
pub fn previous_nightly(root: &Path, stamp: &str, rig: &str) -> Option<(String, RunResult)> {
    let mut names: Vec<String> = fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && n.as_str() < stamp)
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    names.into_iter().find_map(|name| {
        let run = report::load_results(&root.join(&name).join(rig).join(RESULTS_JSON)).ok()?;
        (!run.interrupted && run.rig.name == rig).then_some((name, run))
    })
}

fn write(path: &Path, text: &str) -> Result<(), CampaignError> {
    fs::write(path, text).map_err(io("cannot write", path))
}

/// Runs the selection on each rig into `<reports_root>/nightly/<stamp>/`, compares each run
/// with the rig's previous nightly (`<rig>/diff-vs-previous.md`) and writes `nightly.md` and
/// `nightly.json`.
pub fn nightly(
    specs: &Specs,
    rig_paths: &[PathBuf],
    reports_root: &Path,
    options: &CampaignOptions,
    thresholds: Thresholds,
) -> Result<NightlyOutcome, CampaignError> {
    let (rigs, broken) = load_rigs(rig_paths)?;
    let root = reports_root.join(NIGHTLY_DIR);
    let (stamp, folder) = new_folder(&root)?;
    let mut night = Night { stamp: stamp.clone(), thresholds, rigs: Vec::new(), broken };
    for rig in &rigs {
        if crate::interrupt::requested() {
            break;
        }
        eprintln!("nightly: rig `{}` ({})", rig.name, rig.path.display());
        let (run, dir) = match run_rig(specs, rig, &folder, options) {
            Ok(done) => done,
            Err(error) => {
                night.broken.push(Broken { rig: rig.path.display().to_string(), error });
                continue;
            }
        };
        let previous = previous_nightly(&root, &stamp, &rig.name);
        if let Some((_, before)) = &previous {
            let diff = report::diff_runs(before, &run);
            write(&dir.join(nightly::DIFF_VS_PREVIOUS), &report::render_diff_markdown(&diff))?;
        }
        night.rigs.push(nightly::assess(
            &run,
            &rig.name,
            previous.as_ref().map(|(name, run)| (name.as_str(), run)),
            thresholds,
        ));
    }
    write(&folder.join(nightly::NIGHTLY_MD), &nightly::render_night(&night))?;
    let json_path = folder.join("nightly.json");
    let json = serde_json::to_string_pretty(&night)
        .map_err(|e| CampaignError::Render { path: json_path.clone(), message: e.to_string() })?;
    write(&json_path, &format!("{json}\n"))?;
    Ok(NightlyOutcome { night, folder })
}

/// The baseline of a qualification: one run for every board, or one per rig name (a
/// qualification folder, or any folder of run folders).
#[derive(Debug)]
pub enum Baseline {
    One(Box<RunResult>),
    PerRig(HashMap<String, RunResult>),
}

impl Baseline {
    /// A run folder or its `results.json` is one run; a folder of run folders, one per rig.
    pub fn load(path: &Path) -> Result<Baseline, CampaignError> {
        if path.is_file() {
            return Ok(Baseline::One(Box::new(report::load_results(path)?)));
        }
        let own = path.join(RESULTS_JSON);
        if own.is_file() {
            return Ok(Baseline::One(Box::new(report::load_results(&own)?)));
        }
        let mut per_rig = HashMap::new();
        let entries = fs::read_dir(path).map_err(io("cannot read", path))?;
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        dirs.sort();
        for dir in dirs {
            let results = dir.join(RESULTS_JSON);
            // `latest` is a link to one of the others.
            if dir.file_name().is_some_and(|n| n == report::LATEST) || !results.is_file() {
                continue;
            }
            let run = report::load_results(&results)?;
            per_rig.insert(run.rig.name.clone(), run);
        }
        if per_rig.is_empty() {
            return Err(CampaignError::NoBaseline { path: path.to_path_buf() });
        }
        Ok(Baseline::PerRig(per_rig))
    }

    /// The baseline run for a board of rig `rig`.
    pub fn for_rig(&self, rig: &str) -> Option<&RunResult> {
        match self {
            Baseline::One(run) => Some(run),
            Baseline::PerRig(runs) => runs.get(rig),
        }
    }
}

/// Runs the selection (the whole suite, to qualify) on each rig into
/// `<reports_root>/qualify/<stamp>/`, compares each with the baseline
/// (`<rig>/diff-vs-baseline.md`) and writes `qualification.md` and `qualification.json`.
pub fn qualify(
    specs: &Specs,
    rig_paths: &[PathBuf],
    reports_root: &Path,
    baseline_path: &Path,
    options: &CampaignOptions,
) -> Result<QualifyOutcome, CampaignError> {
    // The baseline first: a wrong path should not cost a whole suite's time.
    let baseline = Baseline::load(baseline_path)?;
    let (rigs, mut broken) = load_rigs(rig_paths)?;
    let (stamp, folder) = new_folder(&reports_root.join(QUALIFY_DIR))?;
    let mut runs = Vec::new();
    for rig in &rigs {
        if crate::interrupt::requested() {
            break;
        }
        eprintln!("qualify: rig `{}` ({})", rig.name, rig.path.display());
        match run_rig(specs, rig, &folder, options) {
            Ok((run, dir)) => {
                if let Some(base) = baseline.for_rig(&rig.name) {
                    let common_only = base.rig.name != run.rig.name;
                    let diff = report::diff_runs_with(base, &run, DiffOptions { common_only });
                    write(
                        &dir.join(qualify::DIFF_VS_BASELINE),
                        &report::render_diff_markdown(&diff),
                    )?;
                }
                runs.push((run, rig.name.clone()));
            }
            Err(error) => broken.push(Broken { rig: rig.path.display().to_string(), error }),
        }
    }
    let boards: Vec<BoardRun<'_>> = runs
        .iter()
        .map(|(run, name)| BoardRun { run, folder: name, baseline: baseline.for_rig(name) })
        .collect();
    let mut q = qualify::qualify(
        &stamp,
        &baseline_path.display().to_string(),
        &specs.inventory.clauses,
        &boards,
    );
    for b in &broken {
        q.qualified = false;
        q.reasons.push(format!("{} did not run: {}", b.rig, b.error));
    }
    if crate::interrupt::requested() && runs.len() < rigs.len() {
        q.qualified = false;
        q.reasons.push("stopped before every board ran".into());
    }
    let json_path = folder.join(qualify::QUALIFICATION_JSON);
    let json = qualify::render_json(&q)
        .map_err(|e| CampaignError::Render { path: json_path.clone(), message: e.to_string() })?;
    write(&json_path, &json)?;
    write(&folder.join(qualify::QUALIFICATION_MD), &qualify::render_markdown(&q))?;
    Ok(QualifyOutcome { qualification: q, folder })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::testdata::sample_run;

    fn put(root: &Path, stamp: &str, folder: &str, run: &RunResult) {
        let dir = root.join(stamp).join(folder);
        report::write_files(run, &dir).unwrap();
    }

    #[test]
    fn stamps_sort_by_time() {
        let t = humantime::parse_rfc3339("2026-12-06T23:05:09Z").unwrap();
        assert_eq!(stamp(t), "20261206-230509");
    }

    #[test]
    fn the_previous_nightly_is_the_newest_earlier_complete_run_of_the_rig() {
        let root = tempfile::tempdir().unwrap();
        let mut run = sample_run();
        run.interrupted = false;
        put(root.path(), "20250101-020000", "sim-a", &run);
        put(root.path(), "20250102-020000", "sim-a", &run);
        let mut interrupted = run.clone();
        interrupted.interrupted = true;
        put(root.path(), "20250103-020000", "sim-a", &interrupted);
        let mut other = run.clone();
        other.rig.name = "qemu-an386".into();
        put(root.path(), "20250103-020000", "qemu-an386", &other);
        // Tonight's own folder and later ones do not count.
        put(root.path(), "20250104-020000", "sim-a", &run);

        let found =
            |rig: &str| previous_nightly(root.path(), "20250104-020000", rig).map(|(name, _)| name);
        assert_eq!(found("sim-a").as_deref(), Some("20250102-020000"));
        assert_eq!(found("qemu-an386").as_deref(), Some("20250103-020000"));
        assert_eq!(found("bench"), None);
        assert_eq!(previous_nightly(&root.path().join("none"), "2", "sim-a").map(|p| p.0), None);
    }

    #[test]
    fn a_baseline_is_one_run_or_one_per_rig() {
        let root = tempfile::tempdir().unwrap();
        let run = sample_run();
        put(root.path(), "q", "sim-a", &run);
        let mut other = run.clone();
        other.rig.name = "qemu-an386".into();
        put(root.path(), "q", "qemu-an386", &other);

        let one = Baseline::load(&root.path().join("q/sim-a")).unwrap();
        assert!(matches!(one, Baseline::One(_)));
        assert_eq!(one.for_rig("anything").unwrap().rig.name, "sim-a");
        let file = Baseline::load(&root.path().join("q/sim-a").join(RESULTS_JSON)).unwrap();
        assert!(matches!(file, Baseline::One(_)));

        let per_rig = Baseline::load(&root.path().join("q")).unwrap();
        assert_eq!(per_rig.for_rig("qemu-an386").unwrap().rig.name, "qemu-an386");
        assert!(per_rig.for_rig("bench").is_none());

        let err = Baseline::load(root.path()).unwrap_err();
        assert!(matches!(err, CampaignError::NoBaseline { .. }), "{err}");
    }

    #[test]
    fn rigs_need_distinct_folder_names_and_a_bad_rig_file_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rigs/sim.toml");
        let missing = dir.path().join("missing.toml");
        let (rigs, broken) = load_rigs(&[sim.clone(), missing]).unwrap();
        assert_eq!(rigs.len(), 1);
        assert_eq!(broken.len(), 1);
        assert!(broken[0].rig.ends_with("missing.toml"), "{broken:?}");
        let err = load_rigs(&[sim.clone(), sim]).unwrap_err();
        assert!(matches!(err, CampaignError::SameName { .. }), "{err}");
    }
}

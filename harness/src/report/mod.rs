//! Reports of a run, all rendered from one [`RunResult`]:
//!
//! * `results.json`: the model itself (see `harness/docs/results-json.md`); [`load_results`]
//!   reads it back, so an old run can be re-rendered.
//! * `junit.xml` ([`junit`]): one testsuite per section, for CI.
//! * `summary.md` ([`markdown`]): what a person reads first.
//! * `report.html` ([`html`]): one self-contained page with the clause matrix and every case.
//!
//! [`diff`] compares two runs.
//!
//! Layout on disk: `<reports_root>/<run_id>/{results.json,junit.xml,summary.md,report.html}` and
//! `<reports_root>/latest`, a relative symlink to the newest run folder.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::model::{RunResult, SCHEMA};

pub mod diff;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod matrix;
pub mod nightly;
pub mod qualify;
mod text;
mod timeline;

pub use diff::{
    DiffEntry, DiffOptions, LeftOut, RunDiff, RunSummary, diff_runs, diff_runs_with,
    render_diff_markdown,
};
pub use html::{render_html, render_html_with_keylog};
pub use junit::render_junit;
pub use markdown::render_summary;

/// The model, serialized.
pub const RESULTS_JSON: &str = "results.json";
/// JUnit XML for CI.
pub const JUNIT_XML: &str = "junit.xml";
/// The Markdown summary.
pub const SUMMARY_MD: &str = "summary.md";
/// The self-contained HTML report.
pub const REPORT_HTML: &str = "report.html";
/// The name of the link to the newest run folder under the reports root.
pub const LATEST: &str = "latest";

/// Every file [`write_files`] writes, in the order it writes them.
pub const FILES: [&str; 4] = [RESULTS_JSON, JUNIT_XML, SUMMARY_MD, REPORT_HTML];

/// What went wrong writing or reading reports. Every variant names the file or folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `cannot write`.
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `results.json` is not valid JSON or does not fit the model.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Json { path: PathBuf, line: usize, column: usize, message: String },
    /// `results.json` is of another schema (or none).
    #[error("{}: {}", path.display(), schema_message(found.as_deref()))]
    Schema { path: PathBuf, found: Option<String> },
    /// A report could not be rendered.
    #[error("cannot render {}: {message}", path.display())]
    Render { path: PathBuf, message: String },
    /// The run id cannot be a folder name (empty, a path, `latest`, starts with a dot).
    #[error("{}: run id {run_id:?} cannot name a folder here", path.display())]
    InvalidRunId { path: PathBuf, run_id: String },
}

fn schema_message(found: Option<&str>) -> String {
    match found {
        Some(found) => format!("unknown schema {found:?}; this harness reads {SCHEMA:?}"),
        None => format!("no \"schema\" field; a results.json of this harness has {SCHEMA:?}"),
    }
}

impl ReportError {
    /// The file or folder the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReportError::Io { path, .. }
            | ReportError::Json { path, .. }
            | ReportError::Schema { path, .. }
            | ReportError::Render { path, .. }
            | ReportError::InvalidRunId { path, .. } => path,
        }
    }

    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReportError {
        let path = path.to_path_buf();
        move |source| ReportError::Io { action, path, source }
    }
}

/// Writes the four reports into `reports_root/<run_id>/` (created if needed) and points
/// `reports_root/latest` at that folder. Returns the run folder.
///
/// `latest` is a relative symlink (`latest -> <run_id>`), replaced atomically (a temporary
/// symlink renamed over it), so readers never see it missing. On platforms without Unix
/// symlinks it is a plain file holding the run id instead.
pub fn write_run(run: &RunResult, reports_root: &Path) -> Result<PathBuf, ReportError> {
    check_run_id(&run.run_id, reports_root)?;
    let dir = reports_root.join(&run.run_id);
    fs::create_dir_all(&dir).map_err(ReportError::io("cannot create", &dir))?;
    crate::capture::keylog::gather(&dir)
        .map_err(ReportError::io("cannot gather the TLS key logs in", &dir))?;
    write_files(run, &dir)?;
    point_latest(reports_root, &run.run_id)?;
    Ok(dir)
}

/// Writes `results.json`, `junit.xml`, `summary.md` and `report.html` into `dir` (created if
/// needed). When `dir` holds a TLS key log ([`crate::capture::keylog::KEYLOG_FILE`]), the
/// HTML report names it beside each case's capture. Everything is rendered before anything is written; each file is written to a
/// temporary file in `dir` and renamed into place, so a reader sees either the old or the new
/// file, never half of one.
pub fn write_files(run: &RunResult, dir: &Path) -> Result<(), ReportError> {
    let rendered = [
        (RESULTS_JSON, render_json(run, &dir.join(RESULTS_JSON))?),
        (
            JUNIT_XML,
            render_junit(run).map_err(|e| ReportError::Render {
                path: dir.join(JUNIT_XML),
                message: e.to_string(),
            })?,
        ),
        (SUMMARY_MD, render_summary(run)),
        (
            REPORT_HTML,
            render_html_with_keylog(
                run,
                crate::capture::keylog::run_keylog(dir)
                    .map(|_| crate::capture::keylog::KEYLOG_FILE),
            ),
        ),
    ];
    fs::create_dir_all(dir).map_err(ReportError::io("cannot create", dir))?;
    for (name, contents) in &rendered {
        write_atomic(&dir.join(name), contents.as_bytes())?;
    }
    Ok(())
}

/// `results.json` as written: pretty JSON, ending with a line end.
pub fn render_json(run: &RunResult, path: &Path) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(run)
        .map_err(|e| ReportError::Render { path: path.to_path_buf(), message: e.to_string() })?;
    json.push('\n');
    Ok(json)
}

/// Reads a `results.json`. Errors name the file; JSON errors give line and column; a file of
/// another schema (or none) is rejected before its fields are looked at.
pub fn load_results(path: &Path) -> Result<RunResult, ReportError> {
    let text = fs::read_to_string(path).map_err(ReportError::io("cannot read", path))?;
    parse_results(&text, path)
}

/// [`load_results`] on text already read; `path` is only used in errors.
pub fn parse_results(text: &str, path: &Path) -> Result<RunResult, ReportError> {
    /// Only the schema; every other field is skipped (but the JSON syntax is still checked).
    #[derive(Deserialize)]
    struct Probe {
        schema: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_str(text).map_err(|e| json_error(path, &e))?;
    match probe.schema {
        Some(serde_json::Value::String(s)) if s == SCHEMA => {}
        Some(serde_json::Value::String(s)) => {
            return Err(ReportError::Schema { path: path.to_path_buf(), found: Some(s) });
        }
        Some(other) => {
            return Err(ReportError::Schema {
                path: path.to_path_buf(),
                found: Some(other.to_string()),
            });
        }
        None => return Err(ReportError::Schema { path: path.to_path_buf(), found: None }),
    }
    serde_json::from_str(text).map_err(|e| json_error(path, &e))
}

fn json_error(path: &Path, e: &serde_json::Error) -> ReportError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    ReportError::Json { path: path.to_path_buf(), line, column, message }
}

fn check_run_id(run_id: &str, reports_root: &Path) -> Result<(), ReportError> {
    let mut components = Path::new(run_id).components();
    let single_normal =
        matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
    let ok = single_normal
        && !run_id.starts_with('.')
        && run_id != LATEST
        && !run_id.contains(['/', '\\'])
        && !run_id.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(ReportError::InvalidRunId {
            path: reports_root.to_path_buf(),
            run_id: run_id.to_string(),
        })
    }
}

/// A name for a temporary file next to `final_name`, unique within this machine.
fn temp_name(final_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{final_name}.tmp-{}-{n}", std::process::id())
}

/// Writes `contents` to `path` through a temporary file in the same folder and a rename.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(temp_name(&name));
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(ReportError::Io { action: "cannot write", path: tmp, source });
    }
    if let Err(source) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(ReportError::Io { action: "cannot replace", path: path.to_path_buf(), source });
    }
    Ok(())
}

/// Points `reports_root/latest` at `run_id` (a folder in `reports_root`).
#[cfg(unix)]
fn point_latest(reports_root: &Path, run_id: &str) -> Result<(), ReportError> {
    let latest = reports_root.join(LATEST);
    let tmp = reports_root.join(temp_name(LATEST));
    std::os::unix::fs::symlink(run_id, &tmp).map_err(ReportError::io("cannot create", &tmp))?;
    if let Err(source) = fs::rename(&tmp, &latest) {
        let _ = fs::remove_file(&tmp);
        return Err(ReportError::Io { action: "cannot replace", path: latest, source });
    }
    Ok(())
}

/// Points `reports_root/latest` at `run_id`: without Unix symlinks, a file holding the id.
#[cfg(not(unix))]
fn point_latest(reports_root: &Path, run_id: &str) -> Result<(), ReportError> {
    write_atomic(&reports_root.join(LATEST), format!("{run_id}\n").as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::testdata::sample_run;

    #[test]
    fn write_files_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let run = sample_run();
        write_files(&run, dir.path()).unwrap();
        for name in FILES {
            assert!(dir.path().join(name).is_file(), "{name} missing");
        }
        let loaded = load_results(&dir.path().join(RESULTS_JSON)).unwrap();
        assert_eq!(loaded, run);
        // No temporary files left behind.
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["junit.xml", "report.html", "results.json", "summary.md"]);
    }

    #[test]
    fn a_run_folder_with_a_key_log_gets_it_named_in_the_html_report() {
        let dir = tempfile::tempdir().unwrap();
        let run = sample_run();
        write_files(&run, dir.path()).unwrap();
        let page = || fs::read_to_string(dir.path().join(REPORT_HTML)).unwrap();
        assert!(!page().contains("TLS key log"));
        fs::write(dir.path().join(crate::capture::keylog::KEYLOG_FILE), "CLIENT_RANDOM 00 00\n")
            .unwrap();
        write_files(&run, dir.path()).unwrap();
        assert!(page().contains("href=\"keylog.txt\""), "no key log link");
    }

    #[test]
    fn write_files_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = sample_run();
        write_files(&run, dir.path()).unwrap();
        run.selection = "passkeys".into();
        write_files(&run, dir.path()).unwrap();
        assert_eq!(load_results(&dir.path().join(RESULTS_JSON)).unwrap(), run);
    }

    #[cfg(unix)]
    #[test]
    fn write_run_points_latest_at_the_newest_run() {
        let root = tempfile::tempdir().unwrap();
        let mut run = sample_run();
        let first = write_run(&run, root.path()).unwrap();
        assert_eq!(first, root.path().join(&run.run_id));
        let latest = root.path().join(LATEST);
        assert_eq!(fs::read_link(&latest).unwrap(), Path::new(&run.run_id));
        assert!(latest.join(REPORT_HTML).is_file());

        run.run_id = "20250102-090000-sim-a".into();
        let second = write_run(&run, root.path()).unwrap();
        assert_eq!(fs::read_link(&latest).unwrap(), Path::new(&run.run_id));
        assert_eq!(load_results(&latest.join(RESULTS_JSON)).unwrap(), run);
        assert!(first.join(RESULTS_JSON).is_file() && second.join(RESULTS_JSON).is_file());

        let mut names: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["20250101-120000-sim-a", "20250102-090000-sim-a", "latest"]);
    }

    #[test]
    fn write_run_rejects_run_ids_that_are_not_a_folder_name() {
        let root = tempfile::tempdir().unwrap();
        for bad in ["", ".", "..", "../x", "a/b", "latest", ".hidden", "/abs"] {
            let mut run = sample_run();
            run.run_id = bad.into();
            let err = write_run(&run, root.path()).unwrap_err();
            assert!(matches!(err, ReportError::InvalidRunId { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn load_results_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_JSON);
        fs::write(&path, "{\n  \"schema\": \"gecko-hil/results/v1\",\n  \"run_id\": 5\n}\n")
            .unwrap();
        let err = load_results(&path).unwrap_err();
        let ReportError::Json { line, column, .. } = &err else { panic!("{err:?}") };
        assert_eq!((*line, *column), (3, 13));
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("{}:3:13: invalid type", path.display())), "{shown}");
        assert_eq!(err.path(), path);

        fs::write(&path, "{\n  \"schema\": \"gecko-hil/results/v1\",\n  oops").unwrap();
        let err = load_results(&path).unwrap_err();
        assert!(matches!(err, ReportError::Json { line: 3, .. }), "{err:?}");
    }

    #[test]
    fn load_results_rejects_other_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_JSON);
        fs::write(&path, r#"{"schema": "gecko-hil/results/v2", "whatever": []}"#).unwrap();
        let err = load_results(&path).unwrap_err();
        assert!(
            matches!(&err, ReportError::Schema { found: Some(s), .. } if s == "gecko-hil/results/v2")
        );
        assert!(err.to_string().contains("unknown schema \"gecko-hil/results/v2\""), "{err}");

        fs::write(&path, r#"{"run_id": "x"}"#).unwrap();
        let err = load_results(&path).unwrap_err();
        assert!(matches!(&err, ReportError::Schema { found: None, .. }), "{err:?}");
    }

    #[test]
    fn load_results_names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.json");
        let err = load_results(&path).unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot read {}", path.display())), "{err}");
    }

    #[test]
    fn the_documented_example_loads() {
        let doc = include_str!("../../docs/results-json.md");
        let start = doc.find("```json\n").unwrap() + "```json\n".len();
        let len = doc[start..].find("```").unwrap();
        let run = parse_results(&doc[start..start + len], Path::new("results-json.md")).unwrap();
        assert_eq!(run.totals, crate::model::Totals::count(&run.cases));
        // Rendering it works too.
        let dir = tempfile::tempdir().unwrap();
        write_files(&run, dir.path()).unwrap();
    }

    #[test]
    fn later_fields_are_ignored_when_loading() {
        // Fields are only ever added: a newer v1 file with extra fields still loads.
        let run = sample_run();
        let mut value = serde_json::to_value(&run).unwrap();
        value["added_later"] = serde_json::json!({"x": 1});
        let loaded = parse_results(&value.to_string(), Path::new("r.json")).unwrap();
        assert_eq!(loaded, run);
    }
}

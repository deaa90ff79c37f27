//! `hil`: run conformance cases against a module, list cases and coverage, render reports.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use gecko_hil::model::Verdict;
use gecko_hil::runner::{self, RunOptions};
use gecko_hil::spec::{self, Selection, Specs};
use gecko_hil::{bench, interrupt, probe, report, rig};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Prints to stdout. A reader that went away (`hil check | head`) ends the program quietly
/// instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*)
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }};
}

macro_rules! sayln {
    ($($arg:tt)*) => {{
        say!($($arg)*);
        say!("\n");
    }};
}

#[derive(Debug, Parser)]
#[command(
    name = "hil",
    version,
    about = "Gecko OS module conformance: run spec tables against a rig"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run cases against a rig and write a report.
    Run(RunArgs),
    /// List cases, clauses or clause coverage.
    List(ListArgs),
    /// Re-render a run's report, or compare two runs.
    Report(ReportArgs),
    /// Validate spec tables and rig files without running anything.
    Check(CheckArgs),
    /// Benchmarks.
    Bench(BenchArgs),
    /// Flash firmware onto a hardware rig's module through its [probe], and reset it.
    Flash(FlashArgs),
    /// List the debug probes attached to this machine.
    Probes,
    /// Run the suite on each rig into reports/nightly/<stamp>/ and compare each run with the
    /// rig's previous nightly; fails only on what is new (nightly.md says what).
    Nightly(NightlyArgs),
    /// Run the whole suite on each rig into reports/qualify/<stamp>/: every clause per board,
    /// the boards' identities, the differences against a baseline, a verdict.
    Qualify(QualifyArgs),
}

/// What `hil nightly` and `hil qualify` share: which rigs, and how each run goes.
#[derive(Debug, Args)]
struct CampaignArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// A rig file (repeatable); each runs into a folder named after the rig.
    #[arg(long = "rig", default_values = ["rigs/sim.toml"])]
    rigs: Vec<PathBuf>,
    /// The reports root (`nightly/` and `qualify/` go under it).
    #[arg(long, default_value = "reports")]
    reports: PathBuf,
    /// Extra attempts for cases that end in an infrastructure error.
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// Module instances at once on simulated rigs ([labgrid] rigs run on every place that matches them; other rigs on one).
    #[arg(long, short, default_value_t = 1)]
    jobs: usize,
    /// Run the cases over this transport (repeatable). Default: each rig's `transports`.
    #[arg(long = "transport", value_name = "NAME")]
    transports: Vec<gecko_hil::transport::Transport>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

impl CampaignArgs {
    fn options(&self) -> gecko_hil::campaign::CampaignOptions {
        gecko_hil::campaign::CampaignOptions {
            selection: self.select.selection(),
            retries: self.retries,
            jobs: self.jobs,
            transports: (!self.transports.is_empty()).then(|| self.transports.clone()),
            progress: !self.no_progress && std::io::stderr().is_terminal(),
        }
    }
}

#[derive(Debug, Args)]
struct NightlyArgs {
    #[command(flatten)]
    campaign: CampaignArgs,
    /// A case is slower when it took more than this times its previous duration ...
    #[arg(long, default_value_t = 1.5)]
    slower_ratio: f64,
    /// ... and at least this many milliseconds longer.
    #[arg(long, default_value_t = 200)]
    slower_ms: u64,
}

#[derive(Debug, Args)]
struct QualifyArgs {
    #[command(flatten)]
    campaign: CampaignArgs,
    /// The run to compare with: a run folder (or its results.json), or a folder of run
    /// folders such as an earlier reports/qualify/<stamp> (each board with its rig's run).
    #[arg(long)]
    baseline: PathBuf,
}

#[derive(Debug, Args)]
struct FlashArgs {
    /// The rig file (a hardware rig with a [probe] section).
    #[arg(long)]
    rig: PathBuf,
    /// The image to write (ELF, or Intel HEX by its extension); default: the rig's
    /// `probe.firmware`.
    #[arg(long)]
    firmware: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SelectArgs {
    /// Case id prefixes (`serial/framing`); none: every case.
    filters: Vec<String>,
    /// Only cases with this tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only cases citing this clause or clause prefix (repeatable).
    #[arg(long = "clause", id = "clause_filter")]
    clauses: Vec<String>,
    /// The spec tables folder.
    #[arg(long, default_value = "specs")]
    specs: PathBuf,
}

impl SelectArgs {
    fn selection(&self) -> Selection {
        Selection {
            prefixes: self.filters.clone(),
            tags: self.tags.clone(),
            clauses: self.clauses.clone(),
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// The rig file.
    #[arg(long, default_value = "rigs/sim.toml")]
    rig: PathBuf,
    /// Where reports go (`<run-id>/` and `latest`).
    #[arg(long, default_value = "reports")]
    reports: PathBuf,
    /// Extra attempts for cases that end in an infrastructure error.
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Run cases on this many rig instances at once (simulated rigs; on a [labgrid] rig,
    /// the same as --places).
    #[arg(long, short, default_value_t = 1)]
    jobs: usize,
    /// On a [labgrid] rig: hold this many places matching it and spread the cases over
    /// them; one report, each result naming its place.
    #[arg(long, value_name = "N")]
    places: Option<usize>,
    /// Run the cases over this transport (repeatable: each case over each, where it
    /// applies): serial, rest, websocket, terminal. Default: the rig's `transports`.
    #[arg(long = "transport", value_name = "NAME")]
    transports: Vec<gecko_hil::transport::Transport>,
    /// First flash the rig's firmware through its [probe] (hardware rigs).
    #[arg(long)]
    flash: bool,
    /// With --flash: this image instead of the rig's `probe.firmware`.
    #[arg(long, requires = "flash")]
    firmware: Option<PathBuf>,
    /// Run the selection this many times (each on fresh rig instances) and report every case
    /// whose outcome changed between repetitions; exits non-zero if any did.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// List the clauses of the inventory instead of cases.
    #[arg(long, conflicts_with = "coverage")]
    clauses: bool,
    /// Show cited / uncovered clauses by section (with --results: which a run checked).
    #[arg(long)]
    coverage: bool,
    /// With --coverage or --clauses: list the clauses no case cites (with --results also
    /// those only named).
    #[arg(long)]
    uncovered: bool,
    /// With --coverage: a run (folder or results.json, e.g. reports/latest) whose passing
    /// cases count as checking the clauses they cite today.
    #[arg(long, requires = "coverage")]
    results: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// A run folder (or its results.json); `reports/latest` by default.
    #[arg(default_value = "reports/latest")]
    run: PathBuf,
    /// Compare with this older run (or a run on another rig): new failures, fixed, still
    /// failing, with both runs' transcripts of every case whose verdict differs.
    #[arg(long)]
    diff: Option<PathBuf>,
    /// With --diff: compare only the results both runs have (same case and transport), e.g.
    /// a board that ran a few sections over serial against the simulated module's full run.
    #[arg(long, requires = "diff")]
    common: bool,
    /// With --diff: write the Markdown to this file and print a one-line summary instead.
    #[arg(long, requires = "diff")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[arg(long, default_value = "specs")]
    specs: PathBuf,
    /// Rig files to validate (default: every rigs/*.toml that is not an expectations file).
    #[arg(long = "rig")]
    rigs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(subcommand)]
    which: BenchCmd,
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// Command round trip through the harness vs. a raw floor on the same port.
    Serial {
        #[arg(long, default_value = "rigs/sim.toml")]
        rig: PathBuf,
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
    },
    /// Command round trip per transport (serial, REST, cmdstream, terminal) through the
    /// harness vs. each one's raw floor on the same module, serial vs. a pexpect loop, and
    /// REST requests per second with several clients at once (lab rig, root).
    Transports {
        #[arg(long, default_value = "rigs/sim.toml")]
        rig: PathBuf,
        /// Timed round trips per series (a tenth more go first as warm-up).
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        /// REST clients at once; set as http.server.max_clients (1..=8) for the run.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=8))]
        rest_clients: u8,
        /// How long the REST clients send, seconds.
        #[arg(long, default_value_t = 3.0)]
        rest_seconds: f64,
        /// The pexpect loop (Python 3 with pexpect).
        #[arg(long, default_value = "harness/bench/pexpect_roundtrip.py")]
        pexpect_script: PathBuf,
    },
    /// Bytes per second through a module TCP stream driven over serial, vs. a plain socket.
    Streams {
        #[arg(long, default_value = "rigs/sim.toml")]
        rig: PathBuf,
        /// How many bytes each way.
        #[arg(long, default_value_t = 1_048_576)]
        bytes: usize,
        /// Runs (each on a fresh module); medians are reported, with the spread.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
        runs: u32,
    },
    /// TLS handshake time per suite (p50, p95), the module's HTTPS server vs. an OpenSSL
    /// server with the same certificate, and a file's throughput over HTTP vs. HTTPS (lab
    /// rig, root).
    Tls {
        #[arg(long, default_value = "rigs/sim.toml")]
        rig: PathBuf,
        /// Timed handshakes per suite and server.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        handshakes: u32,
        /// Handshakes before them, not timed.
        #[arg(long, default_value_t = 2)]
        warmup: u32,
        /// Size of the file fetched (the module's file system holds 256 KiB in all).
        #[arg(long, default_value_t = 131_072, value_parser = clap::value_parser!(u32).range(1..=262_144))]
        bytes: u32,
        /// Fetches over each of HTTP and HTTPS.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
    },
    /// Boot time until the console answers (min, median) and `version` round trip (p50,
    /// p99) on each rig, with each rig's ratio to the first (the simulated module).
    Boards {
        /// The rigs, the reference first.
        #[arg(long = "rig", default_values = ["rigs/sim.toml", "rigs/qemu-an386.toml"])]
        rigs: Vec<PathBuf>,
        /// Boots per rig.
        #[arg(long, default_value_t = 5)]
        boots: usize,
        /// Timed round trips (a tenth more go first as warm-up).
        #[arg(long, default_value_t = 200)]
        iterations: usize,
    },
    /// Rig setup time, cases per second, and suite time at several --jobs values.
    Suite {
        #[arg(long, default_value = "rigs/sim.toml")]
        rig: PathBuf,
        #[arg(long, default_value = "specs")]
        specs: PathBuf,
        /// The --jobs values to compare.
        #[arg(long, value_delimiter = ',', default_value = "1,4")]
        jobs: Vec<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread or child starts. A run stops in order on a signal (its report is
    // written); commands that start labs or modules without polling for it remove them and
    // exit at once.
    match &cli.command {
        Cmd::Run(_) | Cmd::Nightly(_) | Cmd::Qualify(_) => interrupt::install(),
        Cmd::Bench(_) => interrupt::install_with(interrupt::OnSignal::Exit),
        _ => {}
    }
    let result = dispatch(cli.command);
    // A run a signal stopped exits with 128 + its number, whatever else went wrong.
    if let Some(code) = interrupt::exit_code() {
        if let Err(e) = result {
            eprintln!("error: {e:#}");
        }
        return ExitCode::from(code);
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Run(args) => run(args),
        Cmd::List(args) => list(args),
        Cmd::Report(args) => report_cmd(args),
        Cmd::Check(args) => check(args),
        Cmd::Nightly(args) => nightly(args),
        Cmd::Qualify(args) => qualify(args),
        Cmd::Flash(args) => {
            let rig = rig::load(&args.rig)?;
            flash(&rig, args.firmware.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Probes => {
            let probes = probe::list();
            if probes.is_empty() {
                sayln!("no debug probes attached");
            }
            for p in probes {
                sayln!("{p}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench(args) => match args.which {
            BenchCmd::Serial { rig, iterations } => bench_serial(&rig, iterations),
            BenchCmd::Boards { rigs, boots, iterations } => bench_boards(&rigs, boots, iterations),
            BenchCmd::Suite { rig, specs, jobs } => bench_suite(&rig, &specs, &jobs),
            BenchCmd::Streams { rig, bytes, runs } => bench_streams(&rig, bytes, runs),
            BenchCmd::Tls { rig, handshakes, warmup, bytes, runs } => {
                let options = bench::tls::TlsOptions {
                    handshakes: handshakes as usize,
                    warmup: warmup as usize,
                    bytes: bytes as usize,
                    runs: runs as usize,
                };
                bench_tls(&rig, &options)
            }
            BenchCmd::Transports {
                rig,
                iterations,
                rest_clients,
                rest_seconds,
                pexpect_script,
            } => {
                let options = bench::TransportsOptions {
                    iterations,
                    rest_clients: rest_clients.into(),
                    rest_time: std::time::Duration::try_from_secs_f64(rest_seconds)
                        .map_err(|e| anyhow::anyhow!("--rest-seconds {rest_seconds}: {e}"))?,
                    pexpect_script,
                };
                bench_transports(&rig, &options)
            }
        },
    }
}

fn load_specs(dir: &Path) -> Result<Specs> {
    Ok(spec::load_dir(dir)?)
}

/// Flashes the rig's module through its probe: `firmware`, else the rig's `probe.firmware`.
fn flash(rig: &rig::Rig, firmware: Option<&Path>) -> Result<()> {
    let spec = rig.probe.as_ref().ok_or_else(|| {
        anyhow::anyhow!("rig {} has no [probe] section to flash through", rig.path.display())
    })?;
    let image = match firmware {
        Some(f) => f.to_path_buf(),
        None => spec.firmware.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "no firmware to flash: give --firmware <IMAGE>, or `firmware` in the [probe] of {}",
                rig.path.display()
            )
        })?,
    };
    eprintln!("flashing {} onto the `{}` ...", image.display(), spec.chip);
    let used = probe::flash(spec, &image)?;
    eprintln!("flashed and reset through {used}");
    Ok(())
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let specs = load_specs(&args.select.specs)?;
    let rig = rig::load(&args.rig)?;
    let labgrid = matches!(rig.dut, rig::Dut::Hardware { port: rig::PortSpec::Labgrid(_) });
    let jobs = match args.places {
        Some(_) if !labgrid => {
            anyhow::bail!(
                "--places is for a rig with a [labgrid] place ({} has none)",
                rig.path.display()
            )
        }
        Some(n) => n.max(1),
        None => args.jobs,
    };
    let transports = runner::run_transports(&rig, Some(&args.transports))?;
    if args.flash {
        flash(&rig, args.firmware.as_deref())?;
    }
    let selection = args.select.selection();
    let count = runner::select(&specs, &selection).len();
    anyhow::ensure!(count > 0, "no case matches the selection `{}`", selection.describe());
    let over: Vec<&str> = transports.iter().map(|t| t.name()).collect();
    eprintln!(
        "running {count} cases over {} on rig `{}` ({})",
        over.join(" and "),
        rig.name,
        rig.path.display()
    );
    let options = RunOptions {
        selection,
        retries: args.retries,
        reports_root: args.reports,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
        jobs,
        transports: Some(transports),
    };
    if args.repeat > 1 {
        return repeat(&specs, &rig, &options, args.repeat);
    }
    let (run, dir) = runner::run(&specs, &rig, &options)?;
    let t = run.totals;
    sayln!(
        "{} passed, {} failed, {} errors, {} skipped, {} known deviations{}",
        t.pass,
        t.fail,
        t.error,
        t.skipped,
        t.known_deviation,
        if t.stale_deviations > 0 {
            format!(", {} stale deviations", t.stale_deviations)
        } else {
            String::new()
        }
    );
    sayln!("module: {}", run.module_version.as_deref().unwrap_or("(no answer)"));
    sayln!("report: {}", dir.join("report.html").display());
    Ok(if run.interrupted {
        ExitCode::from(interrupt::exit_code().unwrap_or(130))
    } else if t.is_green() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `hil run --repeat N`: the selection N times; a summary of outcomes that changed.
fn repeat(specs: &Specs, rig: &rig::Rig, options: &RunOptions, times: u32) -> Result<ExitCode> {
    let mut runs = Vec::new();
    let mut last_dir = None;
    for i in 1..=times {
        let (run, dir) = runner::run(specs, rig, options)?;
        let t = run.totals;
        sayln!(
            "repetition {i}/{times}: {} passed, {} failed, {} errors, {} skipped in {:.1} s ({})",
            t.pass,
            t.fail,
            t.error,
            t.skipped,
            run.duration_ms as f64 / 1000.0,
            dir.display()
        );
        let interrupted = run.interrupted;
        runs.push(run);
        last_dir = Some(dir);
        if interrupted {
            break;
        }
    }
    let summary = repeat_summary(&runs);
    say!("{summary}");
    if let Some(dir) = last_dir {
        let file = dir.join("repeat.md");
        std::fs::write(&file, &summary).with_context(|| format!("writing {}", file.display()))?;
        sayln!("summary: {}", file.display());
    }
    let changed = !runner::outcome_changes(&runs).is_empty();
    let red = runs.iter().any(|r| !r.totals.is_green());
    Ok(if runs.iter().any(|r| r.interrupted) {
        ExitCode::from(130)
    } else if changed || red {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The text of a repeat summary (stdout and `repeat.md` of the last repetition).
fn repeat_summary(runs: &[gecko_hil::model::RunResult]) -> String {
    let mut out = String::new();
    let changes = runner::outcome_changes(runs);
    let cases = runs.first().map_or(0, |r| r.cases.len());
    let secs: Vec<f64> = runs.iter().map(|r| r.duration_ms as f64 / 1000.0).collect();
    let mean = secs.iter().sum::<f64>() / secs.len().max(1) as f64;
    let (min, max) = secs.iter().fold((f64::MAX, 0f64), |(a, b), s| (a.min(*s), b.max(*s)));
    let _ = writeln!(
        out,
        "# Repeated run\n\n{} repetitions of {cases} cases: {} changed outcome(s); \
         time per repetition {mean:.1} s (min {min:.1}, max {max:.1})\n",
        runs.len(),
        changes.len()
    );
    for run in runs {
        let t = run.totals;
        let _ = writeln!(
            out,
            "- {}: {} passed, {} failed, {} errors, {} skipped, {:.1} s",
            run.run_id,
            t.pass,
            t.fail,
            t.error,
            t.skipped,
            run.duration_ms as f64 / 1000.0
        );
    }
    if !changes.is_empty() {
        let _ = writeln!(out, "\nChanged outcomes:\n");
        for c in &changes {
            let verdicts: Vec<&str> =
                c.verdicts.iter().map(|v| v.map_or("absent", Verdict::as_str)).collect();
            let _ = writeln!(out, "- {} over {}: {}", c.id, c.transport, verdicts.join(", "));
            if let Some(reason) = &c.first_reason {
                let _ = writeln!(out, "  - {reason}");
            }
        }
    }
    let always: Vec<&str> = runs
        .first()
        .map(|r| {
            r.cases
                .iter()
                .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
                .filter(|c| !changes.iter().any(|x| x.id == c.id && x.transport == c.transport))
                .map(|c| c.id.as_str())
                .collect()
        })
        .unwrap_or_default();
    if !always.is_empty() {
        let _ = writeln!(out, "\nFailing in every repetition: {}", always.join(", "));
    }
    out
}

fn list(args: ListArgs) -> Result<ExitCode> {
    let specs = load_specs(&args.select.specs)?;
    let mut out = String::new();
    let cited: BTreeMap<&str, usize> =
        specs.cases.iter().flat_map(|c| c.clauses.iter()).fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.as_str()).or_default() += 1;
            m
        });
    if args.coverage {
        let run = match &args.results {
            Some(path) => {
                let path = results_path(path);
                Some((report::load_results(&path)?, path.display().to_string()))
            }
            None => None,
        };
        let run_ref =
            run.as_ref().map(|(run, path)| gecko_hil::coverage::RunRef { run, path: path.clone() });
        out = gecko_hil::coverage::render_list(&specs, run_ref.as_ref(), args.uncovered);
    } else if args.clauses {
        for c in &specs.inventory.clauses {
            let n = cited.get(c.id.as_str()).copied().unwrap_or(0);
            if args.uncovered && n > 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "{}  [{} cases]  {}  {}:{}-{}  {}",
                c.id,
                n,
                c.kind.as_str(),
                c.source,
                c.lines[0],
                c.lines[1],
                c.text
            );
        }
    } else {
        let selection = args.select.selection();
        for case in runner::select(&specs, &selection) {
            let basis = match case.basis {
                gecko_hil::model::Basis::Documented => "documented",
                gecko_hil::model::Basis::Assumed => "assumed",
            };
            let _ = writeln!(
                out,
                "{}  [{basis}]  {}  ({})",
                case.id,
                case.title,
                case.clauses.join(", ")
            );
        }
    }
    emit(&out)
}

/// Prints to stdout; a reader that went away (`hil list | head`) is not an error.
fn emit(text: &str) -> Result<ExitCode> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS).context("writing to stdout"),
    }
}

fn results_path(run: &Path) -> PathBuf {
    if run.is_dir() { run.join("results.json") } else { run.to_path_buf() }
}

fn report_cmd(args: ReportArgs) -> Result<ExitCode> {
    let path = results_path(&args.run);
    let run = report::load_results(&path)?;
    match args.diff {
        Some(old) => {
            let old = report::load_results(&results_path(&old))?;
            let options = report::DiffOptions { common_only: args.common };
            let diff = report::diff_runs_with(&old, &run, options);
            let markdown = report::render_diff_markdown(&diff);
            match &args.out {
                Some(out) => {
                    std::fs::write(out, markdown)
                        .with_context(|| format!("cannot write {}", out.display()))?;
                    sayln!("{}: {}", out.display(), diff.one_line());
                }
                None => say!("{markdown}"),
            }
            Ok(if diff.has_regressions() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        None => {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
            report::write_files(&run, &dir)?;
            sayln!("re-rendered {}", dir.display());
            let bad = run
                .cases
                .iter()
                .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
                .count();
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn nightly(args: NightlyArgs) -> Result<ExitCode> {
    let specs = load_specs(&args.campaign.select.specs)?;
    anyhow::ensure!(
        args.slower_ratio >= 1.0 && args.slower_ratio.is_finite(),
        "--slower-ratio {} must be at least 1",
        args.slower_ratio
    );
    let thresholds =
        report::nightly::Thresholds { ratio: args.slower_ratio, floor_ms: args.slower_ms };
    let c = &args.campaign;
    let done = gecko_hil::campaign::nightly(&specs, &c.rigs, &c.reports, &c.options(), thresholds)?;
    for r in &done.night.rigs {
        let previous = r
            .previous
            .as_ref()
            .map_or("no previous nightly".into(), |p| format!("vs {}", p.nightly));
        sayln!(
            "{}: {} new failures, {} fixed, {} still failing, {} known deviations, {} slower ({previous})",
            r.rig,
            r.new_failures.len(),
            r.fixed.len(),
            r.still_failing.len(),
            r.known_deviations.len(),
            r.slower.len()
        );
    }
    for b in &done.night.broken {
        sayln!("{}: did not run: {}", b.rig, b.error);
    }
    sayln!("summary: {}", done.folder.join(report::nightly::NIGHTLY_MD).display());
    Ok(if done.night.is_fatal() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn qualify(args: QualifyArgs) -> Result<ExitCode> {
    let specs = load_specs(&args.campaign.select.specs)?;
    let c = &args.campaign;
    let done =
        gecko_hil::campaign::qualify(&specs, &c.rigs, &c.reports, &args.baseline, &c.options())?;
    let q = &done.qualification;
    if q.qualified {
        sayln!("qualified");
    } else {
        sayln!("not qualified: {}", q.reasons.join("; "));
    }
    sayln!("report: {}", done.folder.join(report::qualify::QUALIFICATION_MD).display());
    Ok(if q.qualified { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let specs = load_specs(&args.specs)?;
    let weak = gecko_hil::coverage::weak_citations(&specs);
    for w in &weak {
        eprintln!("error: {w}");
    }
    anyhow::ensure!(
        weak.is_empty(),
        "{}: {} feature or behaviour clauses are cited only by variable get/set cases",
        args.specs.display(),
        weak.len()
    );
    let contradictions = gecko_hil::coverage::unreachable_cited(&specs);
    for c in &contradictions {
        eprintln!("error: {c}");
    }
    anyhow::ensure!(
        contradictions.is_empty(),
        "{}: {} clauses marked unreachable are cited",
        args.specs.display(),
        contradictions.len()
    );
    sayln!(
        "{}: {} cases, {} clauses: ok",
        args.specs.display(),
        specs.cases.len(),
        specs.inventory.clauses.len()
    );
    let mut rigs = args.rigs;
    if rigs.is_empty() {
        for entry in std::fs::read_dir("rigs").context("listing rigs/")? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".toml") && !name.ends_with(".expectations.toml") {
                rigs.push(path);
            }
        }
        rigs.sort();
    }
    for path in rigs {
        let rig = rig::load(&path)?;
        for (case, d) in &rig.deviations {
            anyhow::ensure!(
                specs.cases.iter().any(|c| &c.id == case),
                "{}: deviation for unknown case `{case}`",
                d.origin
            );
        }
        sayln!("{}: rig `{}` ({}): ok", path.display(), rig.name, rig.kind());
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_serial(rig_path: &Path, iterations: usize) -> Result<ExitCode> {
    let rig = rig::load(rig_path)?;
    let workdir = std::env::temp_dir().join(format!("hil-bench-{}", std::process::id()));
    let result = bench::serial(&rig, &workdir, iterations);
    let _ = std::fs::remove_dir_all(&workdir);
    let b = result?;
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    sayln!("serial round trip `get wlan.ssid`, {} samples each (after warm-up)", b.harness.samples);
    sayln!(
        "  harness (channel + framer + transcript): p50 {:8.1} µs   p99 {:8.1} µs",
        us(b.harness.p50),
        us(b.harness.p99)
    );
    sayln!(
        "  raw floor (write bytes, read reply):     p50 {:8.1} µs   p99 {:8.1} µs",
        us(b.raw.p50),
        us(b.raw.p99)
    );
    sayln!(
        "  ratio harness/raw: p50 {:.2}x   p99 {:.2}x",
        us(b.harness.p50) / us(b.raw.p50),
        us(b.harness.p99) / us(b.raw.p99)
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_boards(rig_paths: &[PathBuf], boots: usize, iterations: usize) -> Result<ExitCode> {
    let mut benches = Vec::with_capacity(rig_paths.len());
    for path in rig_paths {
        let rig = rig::load(path)?;
        let workdir = std::env::temp_dir().join(format!(
            "hil-bench-boards-{}-{}",
            std::process::id(),
            rig.name
        ));
        let result = bench::board(&rig, &workdir, boots, iterations);
        let _ = std::fs::remove_dir_all(&workdir);
        benches.push(result.with_context(|| format!("bench boards on {}", path.display()))?);
    }
    sayln!(
        "boot to an answering console ({boots} boots), `version` round trip ({iterations} after warm-up)"
    );
    for line in bench::boards_report(&benches) {
        sayln!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_transports(rig_path: &Path, options: &bench::TransportsOptions) -> Result<ExitCode> {
    let rig = rig::load(rig_path)?;
    let workdir = std::env::temp_dir().join(format!("hil-bench-transports-{}", std::process::id()));
    let result = bench::transports(&rig, &workdir, options);
    let b = match result {
        Ok(b) => {
            let _ = std::fs::remove_dir_all(&workdir);
            b
        }
        // The module's log stays for a look.
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("bench transports failed; its files: {}", workdir.display())));
        }
    };
    for line in bench::transports_report(&b) {
        sayln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_tls(rig_path: &Path, options: &bench::tls::TlsOptions) -> Result<ExitCode> {
    let rig = rig::load(rig_path)?;
    let workdir = std::env::temp_dir().join(format!("hil-bench-tls-{}", std::process::id()));
    let b = match bench::tls::run(&rig, &workdir, options) {
        Ok(b) => {
            let _ = std::fs::remove_dir_all(&workdir);
            b
        }
        // The module's log and the PKI stay for a look.
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("bench tls failed; its files: {}", workdir.display())));
        }
    };
    for line in bench::tls::report(&b) {
        sayln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_suite(rig_path: &Path, specs_dir: &Path, jobs: &[usize]) -> Result<ExitCode> {
    let rig = rig::load(rig_path)?;
    let specs = load_specs(specs_dir)?;
    let workdir = std::env::temp_dir().join(format!("hil-bench-suite-{}", std::process::id()));
    let result = bench::suite(&specs, &rig, &workdir, jobs);
    let _ = std::fs::remove_dir_all(&workdir);
    let b = result?;
    sayln!(
        "rig `{}`: setup (start, connect, sync) {:.1} ms (mean of 5)",
        rig.name,
        b.setup.as_secs_f64() * 1e3
    );
    let base = b.runs.first().map(|r| r.1.as_secs_f64()).unwrap_or(1.0);
    for (j, t) in &b.runs {
        let secs = t.as_secs_f64();
        sayln!(
            "  --jobs {j}: {} cases in {secs:.2} s = {:.0} cases/s   ({:.2}x the first)",
            b.cases,
            b.cases as f64 / secs,
            base / secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_streams(rig_path: &Path, bytes: usize, runs: u32) -> Result<ExitCode> {
    let rig = rig::load(rig_path)?;
    let mut all = Vec::new();
    for run in 0..runs {
        let workdir =
            std::env::temp_dir().join(format!("hil-bench-streams-{}-{run}", std::process::id()));
        let result = bench::streams(&rig, &workdir, bytes);
        match result {
            Ok(b) => {
                let _ = std::fs::remove_dir_all(&workdir);
                all.push(b);
            }
            // The failed run's folder (its module log) stays for a look.
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "run {} of {runs} failed ({} finished); its files: {}",
                    run + 1,
                    all.len(),
                    workdir.display()
                )));
            }
        }
    }
    let kib = |r: f64| r / 1024.0;
    // Each run's ratio pairs the module with the raw socket of the same moment, so machine
    // load cancels out of it better than out of the rates; both are medians over the runs.
    let line = |name: &str, rate: fn(&bench::StreamsBench) -> f64, vs_raw: bool| {
        let rates = bench::Spread::of(all.iter().map(rate));
        let ratio = bench::Spread::of(all.iter().map(|b| rate(b) / b.raw));
        let mut text = format!(
            "  {name:<26}{:9.1} KiB/s ({:.1}..{:.1})",
            kib(rates.median),
            kib(rates.min),
            kib(rates.max)
        );
        if vs_raw {
            text.push_str(&format!(
                "   {:.3}x raw ({:.3}..{:.3})",
                ratio.median, ratio.min, ratio.max
            ));
        }
        text
    };
    sayln!(
        "{bytes} bytes each way through a TCP stream of the module (4 KiB per command), median of {runs} runs (min..max):"
    );
    sayln!("{}", line("stream_write over serial:", |b| b.serial_write, true));
    sayln!("{}", line("stream_read over serial:", |b| b.serial_read, true));
    sayln!("{}", line("raw socket, same peer:", |b| b.raw, false));
    sayln!("STREAM mode (the bus is the stream), over the pty:");
    sayln!("{}", line("pty to TCP peer:", |b| b.stream_mode_in, true));
    sayln!("{}", line("TCP peer to pty:", |b| b.stream_mode_out, true));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn run_args(argv: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Cmd::Run(args) => Ok(args),
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn repeat_parses_with_selections() {
        let args =
            run_args(&["hil", "run", "--repeat", "5", "--jobs", "4", "udp/", "dns/"]).unwrap();
        assert_eq!(args.repeat, 5);
        assert_eq!(args.jobs, 4);
        assert_eq!(args.select.filters, vec!["udp/".to_string(), "dns/".to_string()]);
        assert_eq!(run_args(&["hil", "run"]).unwrap().repeat, 1);
    }

    #[test]
    fn nightly_and_qualify_take_rigs_filters_and_thresholds() {
        let cli = Cli::try_parse_from([
            "hil",
            "nightly",
            "--rig",
            "rigs/sim.toml",
            "--rig",
            "rigs/qemu-an386.toml",
            "--tag",
            "wlan",
            "--slower-ratio",
            "2",
            "--slower-ms",
            "500",
            "serial/",
        ])
        .unwrap();
        let Cmd::Nightly(args) = cli.command else { panic!("not nightly") };
        assert_eq!(args.campaign.rigs.len(), 2);
        assert_eq!(args.campaign.select.filters, ["serial/"]);
        assert_eq!(args.campaign.select.tags, ["wlan"]);
        assert_eq!((args.slower_ratio, args.slower_ms), (2.0, 500));
        let Cmd::Nightly(args) = Cli::try_parse_from(["hil", "nightly"]).unwrap().command else {
            panic!("not nightly")
        };
        assert_eq!(args.campaign.rigs, [PathBuf::from("rigs/sim.toml")]);
        assert_eq!((args.slower_ratio, args.slower_ms), (1.5, 200));
        assert!(Cli::try_parse_from(["hil", "qualify"]).is_err(), "--baseline is required");
        assert!(Cli::try_parse_from(["hil", "qualify", "--baseline", "reports/qualify/x"]).is_ok());
    }

    #[test]
    fn repeat_refuses_zero_and_words() {
        assert!(run_args(&["hil", "run", "--repeat", "0"]).is_err());
        assert!(run_args(&["hil", "run", "--repeat", "often"]).is_err());
    }

    #[test]
    fn repeat_summary_names_changed_cases() {
        let mut a = gecko_hil_sample();
        let mut b = a.clone();
        a.run_id = "one".into();
        b.run_id = "two".into();
        let id = b.cases[0].id.clone();
        b.cases[0].verdict =
            if a.cases[0].verdict == Verdict::Pass { Verdict::Fail } else { Verdict::Pass };
        b.cases[0].reason = Some("expected `x`, got nothing".into());
        let text = repeat_summary(&[a, b]);
        assert!(text.contains("2 repetitions of"), "{text}");
        assert!(text.contains("changed outcome(s)"), "{text}");
        assert!(text.contains(&format!("- {id} over serial: ")), "{text}");
        assert!(text.contains("- one: ") && text.contains("- two: "), "{text}");
    }

    /// A minimal run result: one passing case.
    fn gecko_hil_sample() -> gecko_hil::model::RunResult {
        serde_json::from_str(SAMPLE).unwrap()
    }

    const SAMPLE: &str = r#"{
      "schema": "gecko-hil/results/v1", "run_id": "r", "started_at": "2026-01-01T00:00:00Z",
      "finished_at": "2026-01-01T00:00:01Z", "duration_ms": 1000, "interrupted": false,
      "rig": { "name": "sim", "path": "rigs/sim.toml", "kind": "sim", "port": "/dev/pts/1" },
      "module_version": null, "selection": "all",
      "totals": { "pass": 1, "fail": 0, "error": 0, "skipped": 0, "known_deviation": 0, "stale_deviations": 0 },
      "clauses": [],
      "cases": [{ "id": "x/a", "section": "x", "title": "a", "clauses": ["c"], "basis": "documented",
        "note": null, "tags": [], "transport": "serial", "verdict": "pass", "reason": null,
        "deviation": null, "stale_deviation": false, "attempts": 1, "start_ms": 0, "duration_ms": 5,
        "steps": [], "transcript": [], "timeline": [], "capture": null }]
    }"#;
}

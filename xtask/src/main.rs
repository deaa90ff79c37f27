//! `cargo xtask`: the one entry point for automation. Needs nothing but cargo.
//!
//! * `conformance [hil run args]`: build the simulated module and the harness, run every
//!   case against `rigs/sim.toml`, exit non-zero on failures or errors.
//! * `sim [--console PATH] [--nvm FILE]`: start a simulated module and say how to attach.
//! * `ci`: what CI runs: fmt, clippy, tests, the bare-metal build, spec validation,
//!   conformance.
//! * `bench serial`: command round trip through the harness vs. a raw floor (release build).

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the conformance suite against the simulated module (extra args go to `hil run`).
    Conformance {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start a simulated module and print how to attach a terminal to it.
    Sim {
        /// Where to put the console symlink.
        #[arg(long, default_value = "target/sim/console")]
        console: PathBuf,
        /// The NVM file (saved settings survive restarts of the simulated module).
        #[arg(long, default_value = "target/sim/nvm")]
        nvm: PathBuf,
    },
    /// Everything CI checks.
    Ci,
    /// Benchmarks (release builds).
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Serial command round trip: harness vs. raw floor on the same pty.
    Serial {
        #[arg(long, default_value_t = 5000)]
        iterations: usize,
    },
    /// Rig setup time, cases per second, suite time with --jobs 1 vs --jobs 4.
    Suite {
        /// The rig to measure.
        #[arg(long, default_value = "rigs/sim.toml")]
        rig: String,
    },
}

const BARE_METAL_TARGET: &str = "thumbv7em-none-eabihf";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command, failing with its description if it fails.
fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {what}");
    let status = cmd.status().with_context(|| format!("cannot start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn build_tools(release: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "-p", "gecko-firmware", "-p", "gecko-hil", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    run("build the simulated module and the harness", &mut cmd)?;
    Ok(root().join("target").join(if release { "release" } else { "debug" }))
}

fn conformance(args: &[String]) -> Result<ExitCode> {
    let bin = build_tools(false)?;
    eprintln!("==> conformance against rigs/sim.toml");
    let mut cmd = Command::new(bin.join("hil"));
    cmd.current_dir(root()).args(["run", "--rig", "rigs/sim.toml"]).args(args);
    let status = cmd.status().context("cannot start hil")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn sim(console: &Path, nvm: &Path) -> Result<ExitCode> {
    let mut cmd = cargo();
    cmd.args(["build", "-p", "gecko-firmware", "--bin", "gecko-sim"]);
    run("build the simulated module", &mut cmd)?;
    let console = root().join(console);
    let nvm = root().join(nvm);
    if let Some(dir) = console.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Some(dir) = nvm.parent() {
        std::fs::create_dir_all(dir)?;
    }
    println!("Simulated module console: {}", console.display());
    println!("Attach a terminal in another shell, for example:");
    println!("  picocom -b 115200 {}      (quit: Ctrl-A Ctrl-X)", console.display());
    println!("  screen {} 115200          (quit: Ctrl-A k)", console.display());
    println!("  python3 -m serial.tools.miniterm {} 115200", console.display());
    println!("Saved settings go to {}. Ctrl-C here stops the module.", nvm.display());
    let status = Command::new(root().join("target/debug/gecko-sim"))
        .arg("--console")
        .arg(&console)
        .arg("--nvm")
        .arg(&nvm)
        .status()
        .context("cannot start gecko-sim")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn bare_metal() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "add", BARE_METAL_TARGET])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !installed {
        eprintln!();
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!! WARNING: `rustup target add {BARE_METAL_TARGET}` failed.");
        eprintln!("!! The bare-metal build check of the firmware core is SKIPPED.");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!();
        return Ok(());
    }
    run(
        &format!("firmware core builds for {BARE_METAL_TARGET} (no_std)"),
        cargo().args([
            "build",
            "-p",
            "gecko-firmware",
            "--lib",
            "--no-default-features",
            "--target",
            BARE_METAL_TARGET,
        ]),
    )
}

fn ci() -> Result<ExitCode> {
    run("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    run("tests", cargo().args(["test", "--workspace"]))?;
    bare_metal()?;
    let bin = build_tools(false)?;
    run("validate specs and rigs", Command::new(bin.join("hil")).current_dir(root()).arg("check"))?;
    let code = conformance(&["--no-progress".to_string()])?;
    if code != ExitCode::SUCCESS {
        bail!("conformance against the simulated module failed");
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_serial(iterations: usize) -> Result<ExitCode> {
    let bin = build_tools(true)?;
    let status = Command::new(bin.join("hil"))
        .current_dir(root())
        .args([
            "bench",
            "serial",
            "--rig",
            "rigs/sim.toml",
            "--iterations",
            &iterations.to_string(),
        ])
        .status()
        .context("cannot start hil")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn bench_suite(rig: &str) -> Result<ExitCode> {
    let bin = build_tools(true)?;
    let status = Command::new(bin.join("hil"))
        .current_dir(root())
        .args(["bench", "suite", "--rig", rig, "--jobs", "1,4"])
        .status()
        .context("cannot start hil")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Conformance { args } => conformance(&args),
        Task::Sim { console, nvm } => sim(&console, &nvm),
        Task::Ci => ci(),
        Task::Bench { which: Bench::Serial { iterations } } => bench_serial(iterations),
        Task::Bench { which: Bench::Suite { rig } } => bench_suite(&rig),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

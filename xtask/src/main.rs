//! `cargo xtask`: the one entry point for automation. Needs nothing but cargo.
//!
//! * `conformance [hil run args]`: build the simulated module and the harness, run every
//!   case against `rigs/sim.toml` (or the rig given with `--rig`; a QEMU rig's board image is
//!   built first), exit non-zero on failures or errors.
//! * `sim [--console PATH] [--nvm FILE] [--lab]`: start a simulated module and say how to
//!   attach; with `--lab`, inside a lab network (namespace, bridge, TAP, DHCP/DNS; needs root).
//! * `lab exec -- CMD…`: run a program inside the lab of the running `sim --lab`.
//! * `lab forward [HOST:]PORT:MODULE_PORT…`: forward loopback ports of this host to the
//!   module in the lab of the running `sim --lab`, until that lab ends.
//! * `build`: build the simulated module and the harness (what `conformance` and `sim` run).
//! * `build-board BOARD`: build a board's firmware image (release, the board's target),
//!   print its size (text, data, bss, flash, static RAM) and fail if it is over the board's
//!   budget. Boards: `qemu-an386`, `esp32c6`.
//! * `flash --rig RIG`: build the rig's board image, flash it through the rig's debug probe
//!   (probe-rs; xtask is built again with its `flash` feature, in `target/xtask-flash`),
//!   and wait for the module's `[Ready]` on the rig's console.
//! * `eth-selftest`: the emulated board's Ethernet end to end: its `eth-selftest` image in
//!   QEMU, the NIC on a unix datagram socket, a peer answering the board's ARP request
//!   ([`eth_selftest`]).
//! * `ci`: what CI runs: fmt, clippy, the core's bare-metal builds (Cortex-M4F and RISC-V,
//!   the boards' targets), the board images (clippy, build, size budgets), tests, the
//!   `flash` feature's clippy and its no-probe test (in `target/xtask-flash`), a type check
//!   of the fuzz targets, spec validation, conformance against the simulated module, then the
//!   whole suite on the emulated board in its lab, three boards at once (QEMU; skipped
//!   loudly when `qemu-system-arm` is missing), and
//!   `diff-vs-sim.md` in the board run's folder: the
//!   results both runs have whose verdict differs, with both transcripts (not a failure).
//! * `nightly [hil nightly args]`: the suite on each `--rig` (default: the simulated module,
//!   plus the emulated board when `qemu-system-arm` is installed) into
//!   `reports/nightly/<stamp>/<rig>/`, each run compared with the rig's previous nightly;
//!   `nightly.md` lists new failures, fixed, still failing, known deviations and slower
//!   cases; non-zero only for what is new.
//! * `qualify --baseline <report dir> [hil qualify args]`: the whole suite on the same
//!   boards into `reports/qualify/<stamp>/`: `qualification.md` (+ `.json`), every clause per
//!   board, the boards' identities, the differences against the baseline, a verdict.
//! * `bench serial`: command round trip through the harness vs. a raw floor (release build).
//! * `bench boards`: boot time to an answering console (min, median of 5) and `version`
//!   round trip (p50, p99) on the simulated module and the emulated board, with the ratio.
//! * `bench transports`: the same per transport (serial, REST, cmdstream, terminal) beside
//!   each one's floor, serial vs. pexpect, REST requests/s with 8 clients (release build).
//! * `bench tls`: TLS handshake time per suite, the module's HTTPS server vs. an OpenSSL
//!   server, and a file's throughput over HTTP vs. HTTPS (release build).
//!
//! SIGINT, SIGTERM and SIGHUP (or the parent process going) end every task the same way:
//! the signal is passed on to the program it runs (`hil`, a build), labs and simulated
//! modules are removed, and xtask exits with 128 + the signal's number
//! (`gecko_hil::interrupt`). `cargo xtask` is this process: cargo replaces itself with it
//! once xtask is built.

#[cfg(feature = "flash")]
mod flash;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use gecko_hil::interrupt::{self, Forwarded};
use gecko_hil::lab::{self, Lab};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

mod eth_selftest;

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
        /// Run the module inside a lab network: its own namespace, a bridge with the lab
        /// router (10.77.0.1, DHCP and DNS by dnsmasq), the module on a TAP. Needs root.
        #[arg(long)]
        lab: bool,
        /// With --lab: the module's lab control socket.
        #[arg(long, default_value = "target/sim/lab.sock", requires = "lab")]
        lab_socket: PathBuf,
        /// With --lab: the lab's files (dnsmasq's config, leases, log) and `lab.ns`, the
        /// name of its namespace for `lab exec`.
        #[arg(long, default_value = DEFAULT_LAB_DIR, requires = "lab")]
        lab_dir: PathBuf,
    },
    /// The lab network of a running `cargo xtask sim --lab`.
    Lab {
        #[command(subcommand)]
        which: LabTask,
    },
    /// Build the simulated module and the harness, as `conformance` and `sim` do.
    Build,
    /// Build a board's firmware image (release), print its size and static RAM use, and
    /// fail if either is over the board's budget.
    BuildBoard {
        /// The board (`firmware/boards/<board>`): qemu-an386, esp32c6.
        board: String,
    },
    /// The emulated board's Ethernet: boot its eth-selftest image in QEMU with the NIC on a
    /// unix datagram socket and answer its ARP request from a peer on the other end.
    EthSelftest,
    /// Build a hardware rig's board image, flash it through the rig's debug probe and wait
    /// for the module's `[Ready]` on the rig's console.
    Flash {
        /// The rig (`rigs/esp32c6.toml`): its [probe], its console; its file name names the
        /// board (`firmware/boards/<name>`).
        #[arg(long)]
        rig: PathBuf,
        /// Flash this image instead of building the rig's board.
        #[arg(long)]
        image: Option<PathBuf>,
        /// How long to wait for `[Ready]` after the reset, in seconds (default: the rig's
        /// `reboot_ms`).
        #[arg(long)]
        wait_s: Option<u64>,
    },
    /// Everything CI checks.
    Ci,
    /// The suite on each rig into reports/nightly/<stamp>/, each run compared with the rig's
    /// previous nightly (default rigs: the simulated module, and the emulated board when
    /// `qemu-system-arm` is installed; extra args go to `hil nightly`).
    Nightly {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The whole suite on every board available into reports/qualify/<stamp>/, with a
    /// verdict (`--baseline <report dir>` required; extra args go to `hil qualify`).
    Qualify {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A labgrid lab on this machine (a coordinator, simulated modules exported through
    /// ser2net by one exporter, a place per module) and the suite run through it, spread
    /// over its places (extra args go to `hil run`). Needs labgrid (`pip install labgrid`,
    /// or LABGRID_CLIENT) and ser2net.
    LabgridLab {
        /// How many places (simulated modules).
        #[arg(long, default_value_t = 2)]
        places: usize,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks (release builds).
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
}

#[derive(Debug, Subcommand)]
enum LabTask {
    /// Run a program inside the lab (`cargo xtask lab exec -- curl http://10.77.0.100/`).
    Exec {
        /// The lab's folder, as given to `sim --lab-dir`.
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        lab_dir: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Forward loopback ports of this host to the module in the lab, until the lab ends
    /// (`cargo xtask lab forward 8080:80`, then open http://127.0.0.1:8080/ in a browser).
    Forward {
        /// The lab's folder, as given to `sim --lab-dir`.
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        lab_dir: PathBuf,
        /// `[HOST:]PORT:MODULE_PORT`: HOST is a loopback address (default 127.0.0.1).
        #[arg(required = true)]
        ports: Vec<lab::forward::ForwardSpec>,
    },
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Serial command round trip: harness vs. raw floor on the same pty.
    Serial {
        #[arg(long, default_value_t = 5000)]
        iterations: usize,
    },
    /// Stream throughput over serial vs. a raw socket (lab rig, root).
    Streams,
    /// Command round trip per transport vs. its raw floor, serial vs. pexpect, REST
    /// requests/s with 8 clients (lab rig, root).
    Transports {
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
    },
    /// TLS handshake time per suite (p50, p95): the module's HTTPS server vs. an OpenSSL
    /// server with the same certificate; a file's throughput over HTTP vs. HTTPS (lab rig,
    /// root).
    Tls {
        /// Timed handshakes per suite and server (after 2 warm-ups).
        #[arg(long, default_value_t = 20)]
        handshakes: u32,
        /// Size of the file fetched.
        #[arg(long, default_value_t = 131_072)]
        bytes: u32,
    },
    /// Boot time to an answering console and command round trip: the simulated module vs.
    /// the emulated board (QEMU mps2-an386), with the board/sim ratio.
    Boards {
        /// Boots per rig (min and median reported).
        #[arg(long, default_value_t = 5)]
        boots: usize,
        /// Timed `version` round trips (after warm-up).
        #[arg(long, default_value_t = 200)]
        iterations: usize,
    },
    /// Rig setup time, cases per second, suite time with --jobs 1 vs --jobs 4.
    Suite {
        /// The rig to measure.
        #[arg(long, default_value = "rigs/sim.toml")]
        rig: String,
    },
}

/// The targets of the planned boards: Cortex-M4F (QEMU mps2-an386) and RISC-V (ESP32-C6).
const BARE_METAL_TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "riscv32imac-unknown-none-elf"];

/// The package of the simulated module (the `gecko-sim` binary around the firmware core).
const FIRMWARE_PACKAGE: &str = "gecko-sim";
/// The package of the harness (`hil`).
const HARNESS_PACKAGE: &str = "gecko-hil";
/// The simulated module's binary, `target/<profile>/gecko-sim`.
const SIM_BIN: &str = "gecko-sim";

const DEFAULT_LAB_DIR: &str = "target/sim/lab";

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

/// Runs a command (signals to xtask passed on to it), failing with its description if it
/// fails or a signal stopped xtask meanwhile.
fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {what}");
    let started = std::time::Instant::now();
    let status = Forwarded::status(cmd).with_context(|| format!("cannot start: {what}"))?;
    if let Some(signal) = interrupt::signal() {
        bail!("{what}: stopped ({})", signal.as_str());
    }
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    // Where a slow CI run spends its time, step by step.
    eprintln!("==> {what}: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs a program to its end (signals passed on) and exits as it did.
fn pass_through(cmd: &mut Command, what: &str) -> Result<ExitCode> {
    let status = Forwarded::status(cmd).with_context(|| format!("cannot start {what}"))?;
    Ok(ExitCode::from(interrupt::code_of(status)))
}

fn build_tools(release: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "-p", FIRMWARE_PACKAGE, "-p", HARNESS_PACKAGE, "--bins"]);
    if release {
        cmd.arg("--release");
    }
    run("build the simulated module and the harness", &mut cmd)?;
    Ok(root().join("target").join(if release { "release" } else { "debug" }))
}

fn conformance(args: &[String]) -> Result<ExitCode> {
    let bin = build_tools(false)?;
    let rig = rig_arg(args);
    if let Some(board) = rig.and_then(board_of_rig) {
        build_board(board)?;
    }
    let rig_name = rig.unwrap_or("rigs/sim.toml");
    eprintln!("==> conformance against {rig_name}");
    let started = std::time::Instant::now();
    let mut cmd = Command::new(bin.join("hil"));
    cmd.current_dir(root()).arg("run");
    if rig.is_none() {
        cmd.args(["--rig", "rigs/sim.toml"]);
    }
    let code = pass_through(cmd.args(args), "hil")?;
    eprintln!(
        "==> conformance against {rig_name}: ended in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(code)
}

/// `hil nightly` or `hil qualify` with `args`, on the rigs they name (default: the
/// simulated module, and the emulated board when QEMU is installed), board images built.
fn campaign(subcommand: &str, args: &[String]) -> Result<ExitCode> {
    let bin = build_tools(false)?;
    let mut rigs: Vec<String> = rig_args(args).into_iter().map(String::from).collect();
    let mut cmd = Command::new(bin.join("hil"));
    cmd.current_dir(root()).arg(subcommand);
    if rigs.is_empty() {
        rigs.push("rigs/sim.toml".into());
        if has_program("qemu-system-arm") {
            rigs.push("rigs/qemu-an386.toml".into());
        } else {
            warn_loudly(&[
                "`qemu-system-arm` is not installed (apt-get install qemu-system-arm).",
                "The emulated board (rigs/qemu-an386.toml) is left out of this run.",
            ]);
        }
        for rig in &rigs {
            cmd.args(["--rig", rig]);
        }
    }
    for board in rigs.iter().filter_map(|r| board_of_rig(r)) {
        build_board(board)?;
    }
    eprintln!("==> {subcommand} on {}", rigs.join(", "));
    pass_through(cmd.args(args), "hil")
}

/// Where `labgrid-lab` keeps its lab (coordinator state, exporter config, logs, modules).
const LABGRID_LAB_DIR: &str = "target/labgrid-lab";

/// Starts the one-machine labgrid lab, runs `hil run` through it over `places` places,
/// stops the lab; the exit code and the run's folder.
fn labgrid_lab(places: usize, args: &[String]) -> Result<(ExitCode, Option<PathBuf>)> {
    let client = gecko_hil::labgrid::find_client().context(
        "`labgrid-client` not found: install labgrid (`pip install labgrid`) or set LABGRID_CLIENT",
    )?;
    if gecko_hil::lab::netns::find_tool("ser2net").is_none() {
        bail!(
            "`ser2net` is not installed (apt-get install ser2net): labgrid exports consoles with it"
        );
    }
    let bin = build_tools(false)?;
    let dir = root().join(LABGRID_LAB_DIR);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("==> labgrid lab: a coordinator, {places} simulated modules, an exporter");
    let started = Instant::now();
    let lab = gecko_hil::labgrid_lab::TestLab::start(
        &dir,
        &client,
        &bin.join("gecko-sim"),
        places,
        "gecko-lab",
    )?;
    eprintln!(
        "==> labgrid lab: coordinator {}, places {} (up in {:.1} s)",
        lab.coordinator(),
        lab.places().join(", "),
        started.elapsed().as_secs_f64()
    );
    let rig = dir.join("labgrid.toml");
    std::fs::write(
        &rig,
        format!(
            "# Written by `cargo xtask labgrid-lab`: the places of its one-machine lab.\n\
             name = \"labgrid-lab\"\n\
             description = \"simulated modules behind labgrid places, consoles through ser2net\"\n\
             [dut]\nkind = \"hardware\"\n\
             [labgrid]\ncoordinator = \"{}\"\ntags = {{ lab = \"gecko-lab\" }}\nwait_s = 30\nclient = \"{}\"\n",
            lab.coordinator(),
            client.display()
        ),
    )
    .with_context(|| format!("cannot write {}", rig.display()))?;
    let before = latest_run();
    let mut cmd = Command::new(bin.join("hil"));
    cmd.current_dir(root()).arg("run").arg("--rig").arg(&rig);
    cmd.args(["--places", &places.to_string()]).args(args);
    eprintln!("==> conformance through labgrid ({places} places)");
    let code = pass_through(&mut cmd, "hil")?;
    drop(lab);
    let run = new_run(before.as_deref(), "the labgrid lab").ok();
    Ok((code, run))
}

/// The labgrid lab's run spread its results over every place, each result naming one, and
/// the run lists the module behind each place.
fn check_sharded(run: &Path, places: usize) -> Result<()> {
    let path = run.join(gecko_hil::report::RESULTS_JSON);
    let result = gecko_hil::report::load_results(&path)?;
    let ran: Vec<_> =
        result.cases.iter().filter(|c| c.verdict != gecko_hil::model::Verdict::Skipped).collect();
    if let Some(c) = ran.iter().find(|c| c.place.is_none()) {
        bail!("{}: case {} ran on no place", path.display(), c.id);
    }
    let mut used: Vec<&str> = ran.iter().filter_map(|c| c.place.as_deref()).collect();
    used.sort_unstable();
    used.dedup();
    let listed: Vec<&str> = result.places.iter().map(|p| p.place.as_str()).collect();
    if used.len() != places || listed.len() != places {
        bail!(
            "{}: the cases ran on {used:?}, the run lists {listed:?}; expected {places} places",
            path.display()
        );
    }
    if let Some(p) = result.places.iter().find(|p| p.module_mac.is_none()) {
        bail!("{}: the module behind {} has no MAC in the report", path.display(), p.place);
    }
    eprintln!("==> labgrid lab: {} results over {}", ran.len(), used.join(", "));
    Ok(())
}

/// Every rig named by `--rig PATH` or `--rig=PATH` among `hil` arguments.
fn rig_args(args: &[String]) -> Vec<&str> {
    let mut rigs = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--rig" {
            rigs.extend(iter.next().map(String::as_str));
        } else if let Some(path) = arg.strip_prefix("--rig=") {
            rigs.push(path);
        }
    }
    rigs
}

/// The rig named by `--rig PATH` or `--rig=PATH` among `hil run` arguments.
fn rig_arg(args: &[String]) -> Option<&str> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--rig" {
            return iter.next().map(String::as_str);
        }
        if let Some(path) = arg.strip_prefix("--rig=") {
            return Some(path);
        }
    }
    None
}

/// The board whose image a rig boots (rigs named after the board: `rigs/qemu-an386.toml`).
fn board_of_rig(rig: &str) -> Option<&'static str> {
    let stem = Path::new(rig).file_stem()?.to_str()?;
    BOARDS.iter().find(|b| b.name == stem).map(|b| b.name)
}

/// A board crate under `firmware/boards/`.
#[derive(Debug)]
struct Board {
    /// What `build-board` takes.
    name: &'static str,
    package: &'static str,
    target: &'static str,
    /// The board's RAM: start address and size (what counts as static RAM).
    ram: (u64, u64),
    /// The most flash the image may take (bytes the image carries: code, read-only and
    /// initialised data).
    flash_budget: u64,
    /// The most RAM the image's sections may take (data, bss, heap, code run from RAM; not
    /// a `.stack` section, which gets the rest).
    ram_budget: u64,
    /// The partition table flashed with the image (ESP-IDF CSV), relative to the workspace.
    partitions: Option<&'static str>,
    /// The probe-rs chip of a board `cargo xtask flash` writes (a rig's `[probe] chip`).
    chip: Option<&'static str>,
}

const KIB: u64 = 1024;

const BOARDS: [Board; 2] = [
    Board {
        name: "qemu-an386",
        package: "gecko-board-qemu-an386",
        target: "thumbv7em-none-eabihf",
        ram: (0x2000_0000, 4096 * KIB),
        // 4 MiB of each on the machine; the budgets keep the image near what it is (645 KB
        // of flash, 136 KB of it mbedTLS; 2.75 MB of RAM: the 2 MiB heap, which the socket
        // pool and TLS sessions use, and 608 KiB of retained settings and files).
        flash_budget: 768 * KIB,
        ram_budget: 2944 * KIB,
        partitions: None,
        chip: None,
    },
    Board {
        name: "esp32c6",
        package: "gecko-board-esp32c6",
        target: "riscv32imac-unknown-none-elf",
        // HP SRAM: 512 KiB.
        ram: (0x4080_0000, 512 * KIB),
        // The app partition is 1984 KiB (`partitions.csv`); the image is about 1.24 MB (the
        // Wi-Fi driver's libraries are 0.5 MB of it, mbedTLS 0.16 MB).
        flash_budget: 1536 * KIB,
        // At least 64 KiB of the 512 KiB stay for the main stack.
        ram_budget: 448 * KIB,
        partitions: Some("firmware/boards/esp32c6/partitions.csv"),
        chip: Some("esp32c6"),
    },
];

/// Builds a board's image (release) and prints its size; returns the image's path.
fn build_board(name: &str) -> Result<PathBuf> {
    let Some(board) = BOARDS.iter().find(|b| b.name == name) else {
        let known: Vec<_> = BOARDS.iter().map(|b| b.name).collect();
        bail!("unknown board `{name}` (boards: {})", known.join(", "));
    };
    run(
        &format!("build {} for {}", board.package, board.target),
        cargo().args(["build", "--release", "-p", board.package, "--target", board.target]),
    )?;
    let image = root().join("target").join(board.target).join("release").join(board.package);
    let size = image_size(&image, board.ram)?;
    println!("{}: {}", board.name, image.display());
    println!(
        "  text {} B, data {} B, bss {} B; flash {} B of {} B budget; static RAM {} B of {} B \
         budget{}",
        size.text,
        size.data,
        size.bss,
        size.flash,
        board.flash_budget,
        size.ram,
        board.ram_budget,
        if size.stack > 0 { format!(" (stack {} B)", size.stack) } else { String::new() }
    );
    check_budget(board, &size)?;
    Ok(image)
}

/// Fails when an image is over its board's budget.
fn check_budget(board: &Board, size: &ImageSize) -> Result<()> {
    if size.flash > board.flash_budget {
        bail!(
            "{}: the image takes {} B of flash, over the budget of {} B",
            board.name,
            size.flash,
            board.flash_budget
        );
    }
    if size.ram > board.ram_budget {
        bail!(
            "{}: the image takes {} B of static RAM, over the budget of {} B",
            board.name,
            size.ram,
            board.ram_budget
        );
    }
    Ok(())
}

/// The console of a hardware rig as a local device path, checked to exist: a rig naming a
/// port that is not there fails here, before anything is built or flashed.
fn rig_console(rig: &gecko_hil::rig::Rig) -> Result<PathBuf> {
    use gecko_hil::rig::{Dut, PortSpec};
    let shown = rig.path.display();
    match &rig.dut {
        Dut::Hardware { port: PortSpec::Path(path) } => {
            if !path.exists() {
                bail!(
                    "the console of rig {shown}, {}, does not exist. Is the board plugged in? \
                     (ls /dev/serial/by-id/ lists the serial ports attached)",
                    path.display()
                );
            }
            Ok(path.clone())
        }
        Dut::Hardware { port: PortSpec::UsbSerial(serial) } => {
            gecko_hil::rig::find_usb_serial(serial)
                .with_context(|| format!("the console of rig {shown}"))
        }
        Dut::Hardware { .. } => {
            bail!("rig {shown}: `cargo xtask flash` needs the console on a local serial port")
        }
        _ => bail!("rig {shown} is not a hardware rig (`kind = \"hardware\"`): nothing to flash"),
    }
}

/// `cargo xtask flash`: checks the rig, builds its board's image (unless one is given),
/// then flashes it through xtask built with the `flash` feature.
fn flash_task(rig_path: &Path, image: Option<&Path>, wait_s: Option<u64>) -> Result<ExitCode> {
    let rig = gecko_hil::rig::load(rig_path)?;
    if rig.probe.is_none() {
        bail!("rig {} has no [probe] section to flash through", rig_path.display());
    }
    let port = rig_console(&rig)?;
    // The rig's board: by the rig's file name, else by its probe's chip.
    let stem = rig_path.file_stem().and_then(|s| s.to_str());
    let chip = rig.probe.as_ref().map(|p| p.chip.to_ascii_lowercase());
    let board = BOARDS
        .iter()
        .find(|b| stem == Some(b.name))
        .or_else(|| BOARDS.iter().find(|b| b.chip.is_some() && b.chip == chip.as_deref()));
    let image = match (image, board) {
        (Some(image), _) => image.to_path_buf(),
        (None, Some(board)) => build_board(board.name)?,
        (None, None) => bail!(
            "rig {} names no board (neither its file name nor its chip is one of {}): give --image",
            rig_path.display(),
            BOARDS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
        ),
    };
    let partitions = board.and_then(|b| b.partitions).map(|p| root().join(p));
    let wait = Duration::from_secs(wait_s.unwrap_or(rig.reboot_timeout.as_secs().max(1)));
    flash_image(&rig, &port, &image, partitions.as_deref(), wait)
}

#[cfg(feature = "flash")]
fn flash_image(
    rig: &gecko_hil::rig::Rig,
    port: &Path,
    image: &Path,
    partitions: Option<&Path>,
    wait: Duration,
) -> Result<ExitCode> {
    flash::flash_and_wait(rig, port, image, partitions, wait)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs xtask again with the `flash` feature (its own target folder) on the built image.
#[cfg(not(feature = "flash"))]
fn flash_image(
    rig: &gecko_hil::rig::Rig,
    _port: &Path,
    image: &Path,
    _partitions: Option<&Path>,
    wait: Duration,
) -> Result<ExitCode> {
    // A target folder of its own: the `flash` feature changes probe-rs's features (the
    // plugin turns its defaults on), which would otherwise rebuild the harness in `target/`.
    const FLASH_TARGET_DIR: &str = "target/xtask-flash";
    let mut cmd = cargo();
    cmd.env("CARGO_TARGET_DIR", root().join(FLASH_TARGET_DIR)).args([
        "run",
        "--quiet",
        "-p",
        "xtask",
        "--features",
        "flash",
        "--",
        "flash",
        "--rig",
    ]);
    cmd.arg(&rig.path).arg("--image").arg(image).arg("--wait-s").arg(wait.as_secs().to_string());
    eprintln!("==> building xtask with probe-rs (first time: a few minutes) and flashing");
    pass_through(&mut cmd, "xtask flash")
}

/// An image's loaded sections by kind, as `size` (Berkeley format) counts them.
#[derive(Debug, Default, PartialEq, Eq)]
struct ImageSize {
    /// Code and read-only data.
    text: u64,
    /// Initialised data (in flash, copied to RAM at boot).
    data: u64,
    /// Zeroed data (RAM only; includes the heap and the stack when they are statics).
    bss: u64,
    /// What the image carries: every loaded section with contents (text + data).
    flash: u64,
    /// The board's RAM the sections take, but a `.stack` section.
    ram: u64,
    /// A `.stack` section in RAM (the ESP32-C6's runtime gives it what is left).
    stack: u64,
}

/// Counts an image's sections; `ram` is the board's RAM (start, size).
fn image_size(path: &Path, ram: (u64, u64)) -> Result<ImageSize> {
    use object::elf;
    use object::read::elf::{ElfFile32, FileHeader, SectionHeader};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = ElfFile32::<object::Endianness>::parse(&*bytes)
        .with_context(|| format!("{} is not a 32-bit ELF image", path.display()))?;
    let endian = file.endian();
    let sections = file
        .elf_header()
        .sections(endian, &*bytes)
        .with_context(|| format!("{}: cannot read the section headers", path.display()))?;
    let mut size = ImageSize::default();
    for section in sections.iter() {
        let flags = section.sh_flags(endian);
        if flags & elf::SHF_ALLOC == 0 {
            continue;
        }
        let len = u64::from(section.sh_size(endian));
        let nobits = section.sh_type(endian) == elf::SHT_NOBITS;
        let addr = u64::from(section.sh_addr(endian));
        let in_ram = len > 0 && addr >= ram.0 && addr + len <= ram.0 + ram.1;
        let name = sections.section_name(endian, section).unwrap_or_default();
        if in_ram && name == b".stack" {
            size.stack += len;
        } else if in_ram {
            size.ram += len;
        }
        if !nobits {
            size.flash += len;
        }
        if nobits {
            // Zeroed RAM; a gap in a flash mapping is not RAM at all.
            if in_ram {
                size.bss += len;
            }
        } else if flags & elf::SHF_WRITE != 0 {
            size.data += len;
        } else {
            size.text += len;
        }
    }
    Ok(size)
}

/// Where `sim` and `sim --lab` take the simulated module from.
fn sim_binary() -> PathBuf {
    root().join("target/debug").join(SIM_BIN)
}

fn sim(console: &Path, nvm: &Path, lab: Option<(&Path, &Path)>) -> Result<ExitCode> {
    // The same build as `conformance` (one set of features, one set of artifacts).
    build_tools(false)?;
    let console = root().join(console);
    let nvm = root().join(nvm);
    if let Some(dir) = console.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Some(dir) = nvm.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Some((lab_socket, lab_dir)) = lab {
        return sim_lab(&console, &nvm, &root().join(lab_socket), &root().join(lab_dir));
    }
    println!("Simulated module console: {}", console.display());
    println!("Attach a terminal in another shell, for example:");
    println!("  picocom -b 115200 {}      (quit: Ctrl-A Ctrl-X)", console.display());
    println!("  screen {} 115200          (quit: Ctrl-A k)", console.display());
    println!("  python3 -m serial.tools.miniterm {} 115200", console.display());
    println!("Saved settings go to {}. Ctrl-C here stops the module.", nvm.display());
    pass_through(
        Command::new(sim_binary()).arg("--console").arg(&console).arg("--nvm").arg(&nvm),
        "gecko-sim",
    )
}

/// Where `sim --lab` writes the name of its lab's namespace, for `lab exec`.
fn lab_ns_file(lab_dir: &Path) -> PathBuf {
    lab_dir.join("lab.ns")
}

/// The namespace of the running `sim --lab` with this lab dir, if one runs (its owner alive:
/// that very process, by the lab's ownership record).
fn running_lab(lab_dir: &Path) -> Option<String> {
    let name = std::fs::read_to_string(lab_ns_file(lab_dir)).ok()?.trim().to_string();
    lab::netns::lab_in_use(&name).then_some(name)
}

/// Whether this gecko-sim has the lab flags (`--tap`, `--lab-socket`).
fn sim_has_lab_flags(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--help")
        .output()
        .map(|o| {
            let help = String::from_utf8_lossy(&o.stdout);
            help.contains("--tap") && help.contains("--lab-socket")
        })
        .unwrap_or(false)
}

/// The address the lab's DHCP last gave out (the module is its only client), from the lease file.
fn module_lease(lab: &Lab) -> Option<String> {
    lease_in(&lab.lease_file())
}

fn lease_in(lease_file: &Path) -> Option<String> {
    let leases = std::fs::read_to_string(lease_file).ok()?;
    // "<expiry> <mac> <ip> <hostname> <client-id>"; the newest lease last.
    leases.lines().rev().find_map(|l| l.split_whitespace().nth(2)).map(str::to_string)
}

/// Puts the access points of the default rig (`rigs/sim.toml`) on the air and says how to
/// join them.
fn add_rig_aps(lab_socket: &Path) {
    use gecko_hil::ap::AccessPoints;
    let rig = match gecko_hil::rig::load(&root().join("rigs/sim.toml")) {
        Ok(rig) => rig,
        Err(e) => return eprintln!("warning: no access points: {e}"),
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while !lab_socket.exists() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut aps = gecko_hil::ap::SimAccessPoints::new(lab_socket);
    println!("Access points (from rigs/sim.toml); to join one, on the console:");
    for ap in rig.lab.map(|l| l.aps).unwrap_or_default() {
        let config = gecko_hil::session::ap_config(&ap);
        if let Err(e) = aps.add_ap(&config) {
            return eprintln!("warning: cannot add access point {}: {e}", ap.ssid);
        }
        let passkey = if ap.passkey.is_empty() {
            String::new()
        } else {
            format!("; set wlan.passkey {}", ap.passkey)
        };
        let hidden = if ap.hidden { " (hidden)" } else { "" };
        println!(
            "  {}{hidden}, {}: set wlan.ssid {}{passkey}; network_up",
            ap.ssid, ap.security, ap.ssid
        );
    }
}

fn sim_lab(console: &Path, nvm: &Path, lab_socket: &Path, lab_dir: &Path) -> Result<ExitCode> {
    // Labs of runs that were killed outright go first (each one said on stderr): a dead
    // owner's lab never blocks this one.
    for swept in Lab::sweep_stale().context("cannot set up the lab network")? {
        eprintln!("{swept}");
    }
    if let Some(other) = running_lab(lab_dir) {
        bail!(
            "a lab is already running (namespace {other}, from another `cargo xtask sim --lab` \
             that is still running, with lab dir {}); stop it first",
            lab_dir.display()
        );
    }
    let binary = sim_binary();
    // A new lab starts with the rig's access points only, not those of an earlier session.
    let mut kept = lab_socket.as_os_str().to_owned();
    kept.push(".aps");
    let _ = std::fs::remove_file(kept);
    let started = Instant::now();
    let lab =
        Lab::create(lab_dir, "cargo xtask sim --lab").context("cannot set up the lab network")?;
    eprintln!("==> lab {} up in {:.0?}", lab.netns_name(), started.elapsed());
    let ns_file = lab_ns_file(lab_dir);
    std::fs::write(&ns_file, format!("{}\n", lab.netns_name()))
        .with_context(|| format!("cannot write {}", ns_file.display()))?;
    // Remove lab.ns however this function ends (the lab itself goes when `lab` drops).
    struct NsFile(PathBuf, String);
    impl Drop for NsFile {
        fn drop(&mut self) {
            let ours = std::fs::read_to_string(&self.0).is_ok_and(|s| s.trim() == self.1);
            if ours {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }
    let _ns_file = NsFile(ns_file, lab.netns_name().to_string());

    let mut cmd = lab.command(&binary);
    cmd.arg("--console").arg(console).arg("--nvm").arg(nvm).arg("--exit-on-stdin-eof");
    let with_network = sim_has_lab_flags(&binary);
    if with_network {
        let _ = std::fs::remove_file(lab_socket);
        cmd.arg("--tap").arg(lab.tap_name()).arg("--lab-socket").arg(lab_socket);
    } else {
        eprintln!(
            "warning: this gecko-sim has no --tap/--lab-socket yet: the module runs without \
             network, the lab (router, DHCP, DNS) is up anyway"
        );
    }
    // Its own process group: Ctrl-C comes to us, and we stop it before taking the lab down.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start gecko-sim in the lab")?;
    let (lines_tx, lines) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
    }

    let ns = lab.netns_name().to_string();
    println!("Lab network {} (namespace {ns}), router {}:", lab.subnet(), lab.router_ip());
    println!(
        "  DHCP and DNS: dnsmasq on {} (names: {})",
        lab.router_ip(),
        lab.config()
            .hosts
            .iter()
            .map(|h| format!("{} {}", h.name, h.addr))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  its log: {}", lab.dnsmasq_log().display());
    println!("Simulated module console: {}", console.display());
    println!("Attach a terminal in another shell, for example:");
    println!("  picocom -b 115200 {}      (quit: Ctrl-A Ctrl-X)", console.display());
    println!("  screen {} 115200          (quit: Ctrl-A k)", console.display());
    if with_network {
        println!(
            "Module on {} (bridge br0); lab control socket: {}",
            lab.tap_name(),
            lab_socket.display()
        );
    }
    if with_network {
        add_rig_aps(lab_socket);
    }
    println!("Run any program inside the lab, for example:");
    println!("  cargo xtask lab exec -- curl http://<module address>/");
    println!("  cargo xtask lab exec -- ip addr");
    println!(
        "Saved settings go to {}. Ctrl-C here stops the module and removes the lab.",
        nvm.display()
    );

    let mut announced_lease = None;
    let status = loop {
        while let Ok(line) = lines.try_recv() {
            println!("gecko-sim: {line}");
        }
        if let Some(status) = child.try_wait().context("gecko-sim")? {
            break Some(status);
        }
        if interrupt::requested() {
            break None;
        }
        let lease = module_lease(&lab);
        if let Some(addr) = lease.as_deref()
            && lease != announced_lease
        {
            println!("Module address (DHCP): {addr}");
            println!(
                "  its web pages and REST API (with `set http.server.enabled 1`): http://{addr}/"
            );
            println!("  inside the lab: cargo xtask lab exec -- curl http://{addr}/");
            println!(
                "  from this host's browser: cargo xtask lab forward 8080:80, then \
                 http://127.0.0.1:8080/"
            );
            announced_lease = lease;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let code = match status {
        Some(status) => {
            eprintln!("gecko-sim ended ({status})");
            if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        None => {
            // A signal: let the module take its console link away, then make sure it is gone.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            ExitCode::from(interrupt::exit_code().unwrap_or(130))
        }
    };
    drop(child);
    let started = Instant::now();
    drop(lab);
    eprintln!("==> lab {ns} removed in {:.0?}", started.elapsed());
    Ok(code)
}

/// Forwards loopback ports into the running lab until it ends (or a signal stops this).
fn lab_forward(lab_dir: &Path, ports: &[lab::forward::ForwardSpec]) -> Result<ExitCode> {
    let lab_dir = root().join(lab_dir);
    let Some(ns) = running_lab(&lab_dir) else {
        bail!(
            "no lab is running ({} names none that is alive); start one with `cargo xtask sim --lab`",
            lab_ns_file(&lab_dir).display()
        );
    };
    let netns = Path::new(lab::NETNS_DIR).join(&ns);
    let leases = lab_dir.join("dnsmasq.leases");
    let mut forwards = Vec::new();
    for spec in ports {
        let file = leases.clone();
        let module = move || lease_in(&file).and_then(|a| a.parse().ok());
        let forward = lab::forward::Forward::start(*spec, &netns, module)
            .with_context(|| format!("cannot forward {}", spec.listen))?;
        let local = forward.local_addr();
        let to = lease_in(&leases).unwrap_or_else(|| "<module, once it has an address>".into());
        println!("Forwarding {local} -> {to}:{} in lab {ns}", spec.module_port);
        if spec.module_port == 80 {
            println!("  open http://{local}/ in a browser");
        }
        forwards.push(forward);
    }
    println!("Ctrl-C stops the forward; it also ends when the lab does.");
    while running_lab(&lab_dir).as_deref() == Some(ns.as_str()) {
        if interrupt::requested() {
            return Ok(ExitCode::from(interrupt::exit_code().unwrap_or(130)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let served: usize = forwards.iter().map(lab::forward::Forward::served).sum();
    eprintln!("lab {ns} ended: forward stopped ({served} connections forwarded)");
    Ok(ExitCode::SUCCESS)
}

fn lab_exec(lab_dir: &Path, command: &[String]) -> Result<ExitCode> {
    let lab_dir = root().join(lab_dir);
    let Some(ns) = running_lab(&lab_dir) else {
        bail!(
            "no lab is running ({} names none that is alive); start one with `cargo xtask sim --lab`",
            lab_ns_file(&lab_dir).display()
        );
    };
    let (ip, _) = lab::check_preconditions().context("cannot enter the lab")?;
    let (program, args) = command.split_first().context("no command given")?;
    pass_through(
        Command::new(ip).args(["netns", "exec", &ns, program]).args(args),
        &format!("{program} in lab {ns}"),
    )
}

/// Builds the firmware core and the runner for each bare-metal target a board is planned on
/// (`no_std`: nothing in them may need the standard library). A target that cannot be
/// installed is reported loudly and skipped, except under CI, where it fails.
fn bare_metal() -> Result<()> {
    for target in BARE_METAL_TARGETS {
        let installed = Command::new("rustup")
            .args(["target", "add", target])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !installed {
            if in_ci() {
                bail!("`rustup target add {target}` failed: the bare-metal build check cannot run");
            }
            eprintln!();
            eprintln!(
                "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            );
            eprintln!("!! WARNING: `rustup target add {target}` failed.");
            eprintln!("!! The bare-metal build check of the firmware core for it is SKIPPED.");
            eprintln!(
                "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            );
            eprintln!();
            continue;
        }
        run(
            &format!(
                "firmware core, runner, radio link and LAN9118 driver build for {target} (no_std)"
            ),
            cargo().args([
                "build",
                "-p",
                "gecko-core",
                "-p",
                "gecko-runner",
                "-p",
                "gecko-radio-link",
                "-p",
                "lan9118",
                "--lib",
                "--target",
                target,
            ]),
        )?;
    }
    Ok(())
}

/// The sections CI runs through the labgrid lab (the ones a console alone can serve: its
/// places have no lab network).
const LABGRID_CI_SECTIONS: [&str; 3] = ["serial/", "variables/", "passkeys/"];

/// Emulated boards CI runs the suite on at once (each in its own lab, with its own radio
/// equipment).
const BOARD_CI_JOBS: &str = "3";

fn ci() -> Result<ExitCode> {
    run("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    bare_metal()?;
    // The board image before the tests: the harness's QEMU test boots it.
    for board in &BOARDS {
        run(
            &format!("clippy {} for {}", board.package, board.target),
            cargo().args([
                "clippy",
                "--release",
                "-p",
                board.package,
                "--target",
                board.target,
                // Test images too (qemu-an386's `eth-selftest`).
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
        build_board(board.name)?;
    }
    run("tests", cargo().args(["test", "--workspace"]))?;
    // `cargo xtask flash`'s probe-rs path (the `flash` feature, in the target folder that
    // command uses): clippy, and its test without a probe attached.
    for (what, args) in [
        (
            "clippy xtask --features flash",
            &[
                "clippy",
                "-p",
                "xtask",
                "--features",
                "flash",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ][..],
        ),
        (
            "xtask flash without a probe",
            &["test", "-p", "xtask", "--features", "flash", "--bin", "xtask", "flash"][..],
        ),
    ] {
        run(what, cargo().env("CARGO_TARGET_DIR", root().join("target/xtask-flash")).args(args))?;
    }
    // The fuzz targets are outside the workspace (they need nightly to run); make sure they
    // still build against today's APIs.
    run(
        "fuzz targets type-check",
        // In the workspace's target dir (with its profile) most dependencies are checked
        // already; without libFuzzer's C++ (the default feature `cargo fuzz` builds with).
        cargo().args([
            "check",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
            "--no-default-features",
            "--target-dir",
            "target",
        ]),
    )?;
    let bin = build_tools(false)?;
    run("validate specs and rigs", Command::new(bin.join("hil")).current_dir(root()).arg("check"))?;
    // Four simulated modules at once: the suite runs every case over four transports and
    // spends its time waiting on the modules and the lab, not on the CPU.
    let before_sim = latest_run();
    let code = conformance(&["--no-progress", "--jobs", "4"].map(String::from))?;
    if code != ExitCode::SUCCESS {
        bail!("conformance against the simulated module failed");
    }
    let sim_run = new_run(before_sim.as_deref(), "the simulated module")?;
    // Shared rigs: the same sections as the board's, through a labgrid lab of two places.
    if gecko_hil::labgrid::find_client().is_some() || in_ci() {
        let args: Vec<String> =
            ["--no-progress"].into_iter().chain(LABGRID_CI_SECTIONS).map(String::from).collect();
        let (code, run) = labgrid_lab(2, &args)?;
        if code != ExitCode::SUCCESS {
            bail!("conformance through the labgrid lab failed");
        }
        let run = run.context("the labgrid lab's run wrote no report")?;
        check_sharded(&run, 2)?;
    } else {
        warn_loudly(&[
            "labgrid is not installed (pip install labgrid, or set LABGRID_CLIENT).",
            "The run through a labgrid lab (`cargo xtask labgrid-lab`) is SKIPPED.",
        ]);
    }
    if !has_program("qemu-system-arm") {
        if in_ci() {
            bail!("`qemu-system-arm` is not installed: the emulated board cannot be tested");
        }
        warn_loudly(&[
            "`qemu-system-arm` is not installed (apt-get install qemu-system-arm).",
            "The conformance run on the emulated board (rigs/qemu-an386.toml) is SKIPPED.",
        ]);
        return Ok(ExitCode::SUCCESS);
    }
    let args: Vec<String> =
        ["--rig", "rigs/qemu-an386.toml", "--no-progress", "--jobs", BOARD_CI_JOBS]
            .map(String::from)
            .to_vec();
    let code = conformance(&args)?;
    // The comparison is written even when the board's run failed: it is where to look first.
    match new_run(Some(&sim_run), "the emulated board") {
        Ok(board_run) => diff_vs_sim(&sim_run, &board_run)?,
        // A run that failed before writing reports: its own failure is the one to report.
        Err(e) if code != ExitCode::SUCCESS => {
            eprintln!("==> no comparison with the simulated module: {e:#}");
        }
        Err(e) => return Err(e),
    }
    if code != ExitCode::SUCCESS {
        bail!("conformance against the emulated board (rigs/qemu-an386.toml) failed");
    }
    Ok(ExitCode::SUCCESS)
}

/// The name of the report file comparing a board's run with the simulated module's.
const DIFF_VS_SIM: &str = "diff-vs-sim.md";

/// The run folder `reports/latest` points at, if any.
fn latest_run() -> Option<PathBuf> {
    let reports = root().join("reports");
    let target = std::fs::read_link(reports.join(gecko_hil::report::LATEST)).ok()?;
    Some(reports.join(target))
}

/// The run folder a run just wrote: `reports/latest`, which must have moved from `before`.
fn new_run(before: Option<&Path>, what: &str) -> Result<PathBuf> {
    match latest_run() {
        Some(dir) if Some(dir.as_path()) != before => Ok(dir),
        _ => bail!("the run against {what} wrote no report folder (reports/latest did not move)"),
    }
}

/// Writes `<board run>/diff-vs-sim.md`: the results both runs have (the board's sections,
/// over serial) whose verdict differs, with both transcripts. A difference does not fail CI:
/// the board's known differences are in its expectations file, which its run applied.
fn diff_vs_sim(sim_run: &Path, board_run: &Path) -> Result<()> {
    use gecko_hil::report;
    let sim = report::load_results(&sim_run.join(report::RESULTS_JSON))?;
    let board = report::load_results(&board_run.join(report::RESULTS_JSON))?;
    let diff = report::diff_runs_with(&sim, &board, report::DiffOptions { common_only: true });
    let out = board_run.join(DIFF_VS_SIM);
    std::fs::write(&out, report::render_diff_markdown(&diff))
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("==> {}: {}", out.display(), diff.one_line());
    Ok(())
}

/// Whether `program --version` runs.
/// Under CI (`CI` set, as `.ci/run` does), a check that cannot run is a failure, not a
/// skip: a green run must not hide a missing install step.
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn has_program(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A warning nobody scrolling past CI output can miss.
fn warn_loudly(lines: &[&str]) {
    let bar = "!".repeat(75);
    eprintln!();
    eprintln!("{bar}");
    for line in lines {
        eprintln!("!! WARNING: {line}");
    }
    eprintln!("{bar}");
    eprintln!();
}

fn bench_serial(iterations: usize) -> Result<ExitCode> {
    let bin = build_tools(true)?;
    pass_through(
        Command::new(bin.join("hil")).current_dir(root()).args([
            "bench",
            "serial",
            "--rig",
            "rigs/sim.toml",
            "--iterations",
            &iterations.to_string(),
        ]),
        "hil",
    )
}

fn bench_boards(boots: usize, iterations: usize) -> Result<ExitCode> {
    let bin = build_tools(true)?;
    build_board("qemu-an386")?;
    pass_through(
        Command::new(bin.join("hil")).current_dir(root()).args([
            "bench",
            "boards",
            "--rig",
            "rigs/sim.toml",
            "--rig",
            "rigs/qemu-an386.toml",
            "--boots",
            &boots.to_string(),
            "--iterations",
            &iterations.to_string(),
        ]),
        "hil",
    )
}

fn bench_streams() -> Result<ExitCode> {
    let bin = build_tools(true)?;
    pass_through(
        Command::new(bin.join("hil")).current_dir(root()).args([
            "bench",
            "streams",
            "--rig",
            "rigs/sim.toml",
        ]),
        "hil",
    )
}

fn bench_transports(iterations: usize) -> Result<ExitCode> {
    let bin = build_tools(true)?;
    pass_through(
        Command::new(bin.join("hil")).current_dir(root()).args([
            "bench",
            "transports",
            "--rig",
            "rigs/sim.toml",
            "--iterations",
            &iterations.to_string(),
        ]),
        "hil",
    )
}

fn bench_tls(handshakes: u32, bytes: u32) -> Result<ExitCode> {
    let bin = build_tools(true)?;
    pass_through(
        Command::new(bin.join("hil")).current_dir(root()).args([
            "bench",
            "tls",
            "--rig",
            "rigs/sim.toml",
            "--handshakes",
            &handshakes.to_string(),
            "--bytes",
            &bytes.to_string(),
        ]),
        "hil",
    )
}

fn bench_suite(rig: &str) -> Result<ExitCode> {
    let bin = build_tools(true)?;
    pass_through(
        Command::new(bin.join("hil"))
            .current_dir(root())
            .args(["bench", "suite", "--rig", rig, "--jobs", "1,4"]),
        "hil",
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread or child starts.
    interrupt::install();
    let result = match cli.command {
        Task::Conformance { args } => conformance(&args),
        Task::Sim { console, nvm, lab, lab_socket, lab_dir } => {
            sim(&console, &nvm, lab.then_some((lab_socket.as_path(), lab_dir.as_path())))
        }
        Task::Lab { which: LabTask::Exec { lab_dir, command } } => lab_exec(&lab_dir, &command),
        Task::Lab { which: LabTask::Forward { lab_dir, ports } } => lab_forward(&lab_dir, &ports),
        Task::Build => build_tools(false).map(|_| ExitCode::SUCCESS),
        Task::BuildBoard { board } => build_board(&board).map(|_| ExitCode::SUCCESS),
        Task::EthSelftest => eth_selftest::run(),
        Task::Flash { rig, image, wait_s } => flash_task(&rig, image.as_deref(), wait_s),
        Task::Ci => ci(),
        Task::LabgridLab { places, args } => labgrid_lab(places, &args).map(|(code, _)| code),
        Task::Nightly { args } => campaign("nightly", &args),
        Task::Qualify { args } => campaign("qualify", &args),
        Task::Bench { which: Bench::Serial { iterations } } => bench_serial(iterations),
        Task::Bench { which: Bench::Suite { rig } } => bench_suite(&rig),
        Task::Bench { which: Bench::Boards { boots, iterations } } => {
            bench_boards(boots, iterations)
        }
        Task::Bench { which: Bench::Streams } => bench_streams(),
        Task::Bench { which: Bench::Transports { iterations } } => bench_transports(iterations),
        Task::Bench { which: Bench::Tls { handshakes, bytes } } => bench_tls(handshakes, bytes),
    };
    // A task a signal stopped exits with 128 + its number, whatever else went wrong.
    let stopped = interrupt::exit_code();
    match result {
        Ok(code) => stopped.map_or(code, ExitCode::from),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(stopped.unwrap_or(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn conformance_finds_the_rig_among_hil_args() {
        assert_eq!(
            rig_arg(&args(&["serial/", "--rig", "rigs/qemu-an386.toml"])),
            Some("rigs/qemu-an386.toml")
        );
        assert_eq!(rig_arg(&args(&["--rig=rigs/sim.toml", "serial/"])), Some("rigs/sim.toml"));
        assert_eq!(rig_arg(&args(&["--no-progress", "serial/"])), None);
        assert_eq!(board_of_rig("rigs/qemu-an386.toml"), Some("qemu-an386"));
        assert_eq!(board_of_rig("rigs/sim.toml"), None);
    }

    #[test]
    fn campaigns_find_every_rig_among_hil_args() {
        let given = args(&["--rig", "rigs/sim.toml", "serial/", "--rig=rigs/qemu-an386.toml"]);
        assert_eq!(rig_args(&given), ["rigs/sim.toml", "rigs/qemu-an386.toml"]);
        assert!(rig_args(&args(&["--baseline", "reports/qualify/x", "serial/"])).is_empty());
    }

    #[test]
    fn image_size_counts_sections_like_size() {
        // The running test binary is an ELF too, but 64-bit: the board images are 32-bit.
        let exe = std::env::current_exe().expect("test binary");
        let err = image_size(&exe, (0, 1)).expect_err("not a 32-bit image");
        assert!(format!("{err:#}").contains("not a 32-bit ELF image"), "{err:#}");
        let mut checked = 0;
        for board in &BOARDS {
            let image =
                root().join("target").join(board.target).join("release").join(board.package);
            if !image.exists() {
                eprintln!("SKIPPED {}: no image at {}", board.name, image.display());
                continue;
            }
            let size = image_size(&image, board.ram).expect("a board image");
            assert!(size.text > 10_000, "{size:?}");
            assert_eq!(size.flash, size.text + size.data, "{size:?}");
            // The heap is a zeroed static in RAM.
            assert!(size.ram >= size.data + 256 * 1024, "{size:?}");
            assert!(size.ram + size.stack <= board.ram.1, "{size:?}");
            checked += 1;
        }
        eprintln!("checked {checked} board images");
    }

    #[test]
    fn an_image_over_its_budget_fails_the_build() {
        let board = &BOARDS[1];
        let size = |flash, ram| ImageSize { flash, ram, ..ImageSize::default() };
        assert!(check_budget(board, &size(board.flash_budget, board.ram_budget)).is_ok());
        let e = check_budget(board, &size(board.flash_budget + 1, 0)).expect_err("over");
        assert_eq!(
            e.to_string(),
            format!(
                "esp32c6: the image takes {} B of flash, over the budget of {} B",
                board.flash_budget + 1,
                board.flash_budget
            )
        );
        let e = check_budget(board, &size(0, board.ram_budget + 1)).expect_err("over");
        assert!(e.to_string().contains("of static RAM, over the budget"), "{e}");
    }

    /// A rig whose console is not there fails before anything is built or flashed.
    #[test]
    fn flashing_a_rig_whose_port_is_missing_says_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rig = dir.path().join("esp32c6.toml");
        let port =
            "/dev/serial/by-id/usb-Espressif_USB_JTAG_serial_debug_unit_F0:F5:BD:00:00:01-if00";
        std::fs::write(
            &rig,
            format!(
                "name = \"esp32c6\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"{port}\"\n\
                 [probe]\nchip = \"esp32c6\"\nselector = \"303a:1001:F0:F5:BD:00:00:01\"\n"
            ),
        )
        .expect("rig file");
        let e = flash_task(&rig, None, None).expect_err("no such port");
        let text = format!("{e:#}");
        assert!(
            text.contains(&format!("{port}, does not exist. Is the board plugged in?")),
            "{text}"
        );
        // No [probe]: said before the port is looked at.
        std::fs::write(
            &rig,
            format!("name = \"x\"\n[dut]\nkind = \"hardware\"\n[serial]\nport = \"{port}\"\n"),
        )
        .expect("rig file");
        let e = flash_task(&rig, None, None).expect_err("no probe section");
        assert!(e.to_string().contains("has no [probe] section"), "{e}");
    }

    #[test]
    fn the_example_rig_is_an_esp32c6_hardware_rig_with_a_probe() {
        let rig = gecko_hil::rig::load(&root().join("rigs/esp32c6.toml")).expect("valid rig");
        let probe = rig.probe.expect("a [probe]");
        assert_eq!(probe.chip, "esp32c6");
        assert!(probe.selector.is_some_and(|s| s.starts_with("303a:1001:")));
        assert_eq!(board_of_rig("rigs/esp32c6.toml"), Some("esp32c6"));
    }
}

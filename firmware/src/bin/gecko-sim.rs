//! The simulated Gecko OS module: the firmware core on Linux, its console on a pty.

use clap::Parser;
use gecko_firmware::sim::{self, SimConfig};
use std::path::PathBuf;

/// A simulated Gecko OS module. Prints `console: <pty>` once the console is open.
#[derive(Debug, Parser)]
#[command(name = "gecko-sim", version)]
struct Args {
    /// Put a symlink to the console's pseudo-terminal here (stable across runs).
    #[arg(long)]
    console: Option<PathBuf>,
    /// Keep saved settings in this file (default: in memory, lost when the process ends).
    #[arg(long)]
    nvm: Option<PathBuf>,
    /// The module's MAC address.
    #[arg(long, default_value = "02:00:5e:10:00:01", value_parser = parse_mac)]
    mac: [u8; 6],
    /// Exit when standard input reaches its end (a harness that starts the module holds
    /// the other end of a pipe, so the module never outlives it).
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    gecko_firmware::vars::parse_mac(s).ok_or_else(|| format!("not a MAC address: {s}"))
}

fn main() {
    let args = Args::parse();
    if let Some(link) = args.console.clone() {
        // On Ctrl-C or SIGTERM, take the console link away before leaving.
        let handler = ctrlc::set_handler(move || {
            sim::remove_link(&link);
            std::process::exit(130);
        });
        if let Err(e) = handler {
            eprintln!("gecko-sim: cannot install the signal handler: {e}");
        }
    }
    if args.exit_on_stdin_eof {
        let link = args.console.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            if let Some(link) = link {
                sim::remove_link(&link);
            }
            std::process::exit(0);
        });
    }
    sim::run(SimConfig {
        console_link: args.console,
        nvm: args.nvm,
        board: sim::sim_board(args.mac),
    })
}

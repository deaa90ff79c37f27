//! The simulated Gecko OS module: the firmware core on Linux, its console on a pty.

use clap::Parser;
use gecko_sim::{self as sim, SimConfig};
use std::path::PathBuf;

/// A simulated Gecko OS module. Prints `console: <pty>` once the console is open, then
/// `lab socket: <path>` when the lab control channel is served.
#[derive(Debug, Parser)]
#[command(name = "gecko-sim", version)]
struct Args {
    /// Put a symlink to the console's pseudo-terminal here (stable across runs).
    #[arg(long)]
    console: Option<PathBuf>,
    /// Keep saved settings in this file (default: in memory, lost when the process ends).
    #[arg(long)]
    nvm: Option<PathBuf>,
    /// Keep the module's files (`file_create`, `ls`) in this file, so they survive a restart
    /// of the process (default: in memory).
    #[arg(long, value_name = "PATH")]
    files: Option<PathBuf>,
    /// The module's MAC address.
    #[arg(long, default_value = "02:00:5e:10:00:01", value_parser = parse_mac)]
    mac: [u8; 6],
    /// Exit when standard input reaches its end (a harness that starts the module holds
    /// the other end of a pipe, so the module never outlives it).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Connect the module's Wi-Fi link to this TAP device (it must exist already). Without
    /// it (and without --lab-socket) the module has no network: requests go unanswered.
    #[arg(long, value_name = "NAME")]
    tap: Option<String>,
    /// Serve the lab control channel (access points, faults, radio events; line-delimited
    /// JSON) on a Unix socket here.
    #[arg(long, value_name = "PATH")]
    lab_socket: Option<PathBuf>,
    /// Append each TLS session's secrets here in the NSS key log format, so captures of the
    /// lab can be decrypted (the simulated module only; a board never writes them).
    #[arg(long, value_name = "PATH")]
    tls_keylog: Option<PathBuf>,
    /// The bytes the TLS stack may allocate at once (default: no limit); past it a handshake
    /// fails with `TLS malloc failed`, as on a module short of RAM.
    #[arg(long, value_name = "BYTES")]
    tls_heap: Option<usize>,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    gecko_core::vars::parse_mac(s).ok_or_else(|| format!("not a MAC address: {s}"))
}

fn main() {
    let args = Args::parse();
    if args.console.is_some() || args.lab_socket.is_some() {
        // On Ctrl-C or SIGTERM, take the console link and the lab socket away before leaving.
        let (link, lab) = (args.console.clone(), args.lab_socket.clone());
        let handler = ctrlc::set_handler(move || {
            for path in link.iter().chain(lab.iter()) {
                sim::remove_link(path);
            }
            std::process::exit(130);
        });
        if let Err(e) = handler {
            eprintln!("gecko-sim: cannot install the signal handler: {e}");
        }
    }
    if args.exit_on_stdin_eof {
        let (link, lab) = (args.console.clone(), args.lab_socket.clone());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            for path in link.iter().chain(lab.iter()) {
                sim::remove_link(path);
            }
            std::process::exit(0);
        });
    }
    sim::run(SimConfig {
        console_link: args.console,
        nvm: args.nvm,
        files: args.files,
        board: sim::sim_board(args.mac),
        tap: args.tap,
        lab_socket: args.lab_socket,
        tls_keylog: args.tls_keylog,
        tls_heap: args.tls_heap,
    })
}

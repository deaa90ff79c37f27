//! The simulated Gecko OS module: the firmware core on Linux, its console on a pty; or
//! (`gecko-sim radio`) the simulated radio as lab equipment for a board.

use clap::{Parser, Subcommand};
use gecko_sim::{self as sim, SimConfig};
use std::path::PathBuf;

/// A simulated Gecko OS module. Prints `console: <pty>` once the console is open, then
/// `lab socket: <path>` when the lab control channel is served.
#[derive(Debug, Parser)]
#[command(name = "gecko-sim", version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
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

#[derive(Debug, Subcommand)]
enum Mode {
    /// The simulated radio as lab equipment for a board without Wi-Fi (QEMU mps2-an386):
    /// the radio link on a stream socket the board's UART attaches to, the board's Ethernet
    /// frames relayed to the lab's TAP device while it is associated, the lab control
    /// channel. Prints `radio socket: …`, `frames: …` and last `lab socket: …` once all of
    /// them are served.
    Radio(RadioArgs),
}

#[derive(Debug, clap::Args)]
struct RadioArgs {
    /// Listen here for the board's UART (QEMU: `-chardev socket,id=radio,path=PATH,reconnect=1
    /// -serial pty -serial chardev:radio`).
    #[arg(long, value_name = "PATH")]
    radio_socket: PathBuf,
    /// Bind this datagram socket for the board's Ethernet frames (QEMU's `-netdev dgram`
    /// `remote.path`).
    #[arg(long, value_name = "PATH")]
    frames: PathBuf,
    /// The board's datagram socket, where its frames go (QEMU's `-netdev dgram`
    /// `local.path`).
    #[arg(long, value_name = "PATH")]
    board_frames: PathBuf,
    /// Relay the board's frames to and from this TAP device (it must exist). Without it the
    /// board's frames reach no network.
    #[arg(long, value_name = "NAME")]
    tap: Option<String>,
    /// Serve the lab control channel here (access points, faults, radio events).
    #[arg(long, value_name = "PATH")]
    lab_socket: PathBuf,
    /// Exit when standard input reaches its end.
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

/// Runs the radio equipment; its sockets are removed on Ctrl-C, SIGTERM and end of input.
fn radio(args: RadioArgs) -> ! {
    let config = sim::equipment::EquipmentConfig {
        radio_socket: args.radio_socket,
        frames: args.frames,
        board_frames: args.board_frames,
        tap: args.tap,
        lab_socket: args.lab_socket,
    };
    let sockets = sim::equipment::sockets(&config);
    let paths = sockets.clone();
    let handler = ctrlc::set_handler(move || {
        for path in &paths {
            sim::remove_link(path);
        }
        std::process::exit(130);
    });
    if let Err(e) = handler {
        eprintln!("gecko-sim radio: cannot install the signal handler: {e}");
    }
    if args.exit_on_stdin_eof {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            for path in &sockets {
                sim::remove_link(path);
            }
            std::process::exit(0);
        });
    }
    sim::equipment::run(config)
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    gecko_core::vars::parse_mac(s).ok_or_else(|| format!("not a MAC address: {s}"))
}

fn main() {
    let args = Args::parse();
    if let Some(Mode::Radio(radio_args)) = args.mode {
        radio(radio_args);
    }
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

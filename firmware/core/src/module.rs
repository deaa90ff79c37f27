//! The module: the sans-IO core's composition root.
//!
//! [`Module`] holds the system state (variables, settings, time), the origins commands come
//! from ([`crate::origin`]) and the services, and routes to them: command lines to the
//! service of the command, platform events to the service that owns them (connection
//! events through the one connection table, `conns`), timers through `TIMERS`. Each service
//! lives in a file under `module/`: `network` (WLAN, network up, DNS, ping), `sockets`
//! (the stream commands: read, write, close, list, poll), `tcp_client` (also `udp_client`),
//! `tcp_server`, `udp_server`, `auto` (auto start), `files`, `bus` (STREAM mode), `terminal`
//! (the remote terminal, a front end with a console per connection), `system`
//! (variables, help, clock); `origins` answers origins, `conns` owns the connections.
//!
//! How a service plugs in (the network, the TCP and UDP servers, STREAM mode, auto start
//! and files do; the stream commands in part): it is a part, a struct in `Services` that
//!
//! * owns its state and its typed settings (from [`crate::config`]), read at boot and again
//!   when one of the variables it reads changes (`system::readers` maps each variable to
//!   the parts that read it; a test checks the map against what each part's settings read);
//! * decides its commands (`run_line` hands them over) and says what the module must still
//!   do for the origin (answer, wait for the network, take a data phase, close a stream);
//! * gets the events of the connections it owns (its `conns::Owner`);
//! * runs its own timers (its `poll_at` and tick, listed in `TIMERS`);
//! * reaches what the services share (the connection table and its one open/close path,
//!   the stream table, request ids and the DNS client, the platform's actions, the log of
//!   the origin being served) only through the `ctx::Ctx` the module lends it for one call
//!   (`Module::with_ctx`). What it needs of another part comes in as an argument; what
//!   another part must do goes out in its return value, and the module routes it.
//!
//! What a command waits for (`Pending`) is its origin's and stays with the origins. The
//! stream commands (`sockets`, `tcp_client`) are a part for their settings and the receive
//! path only: their commands, like the system commands, are still `impl Module` blocks over
//! the origins' state and the shared tables.
//!
//! The API a platform (the simulated module, a board's runner) uses:
//!
//! * [`Module::boot`] / [`Module::boot_from`]: a fresh module from what storage holds.
//! * [`Module::feed`] / [`Module::take_output`]: the serial console's bytes in and out.
//! * [`Module::execute`], [`Module::data`], [`Module::take_replies`]: a command for another
//!   origin (remote terminal, HTTP, cmdstream, auto start), its data phase, its replies.
//! * [`Module::next_action`] and the completions [`Module::nvm_stored`],
//!   [`Module::files_stored`], [`Module::net_event`]: work for the platform and its answers.
//! * [`Module::poll_at`] / [`Module::tick`]: the core's timers; time is always passed in.
//!
//! A reboot is the platform dropping this value and booting a new one from NVM.

use crate::clock;
use crate::command::{self, CommandDef, CommandId};
use crate::config::{AutoStart, Interface, Settings, Timestamp};
use crate::console::{self, DataPhase, Edit, Format, SerialConsole};
use crate::fs::{self, FileSystem, FsError, NewFile, Version};
use crate::net::{ConnId, Ipv4, NetEvent, NetRequest, RequestIds};
use crate::nvm;
use crate::origin::{Origin, Reply};
use crate::result::ResultCode;
use crate::streams::{Endpoint, Local, Stream, StreamType, Streams};
use crate::time::{Duration, Instant};
use crate::vars::{self, SetError, VARIABLES, Var, VarId, Vars};
use crate::wlan::{self, Settled, Wlan};
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

/// What the firmware knows about the board it runs on; the platform supplies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardInfo {
    /// Product and OS name, e.g. `Gecko OS`.
    pub product: String,
    /// Firmware version, e.g. `4.2.0`.
    pub version: String,
    /// Build stamp printed after `Built:`.
    pub build: String,
    /// Platform name printed after `for`.
    pub platform: String,
    /// Board name printed after `Board:`.
    pub board: String,
    /// The WLAN MAC address (`wlan.mac`; also the argument `factory_reset` demands).
    pub mac: [u8; 6],
}

impl BoardInfo {
    /// The line `version` prints and the boot banner starts with: comma-separated product
    /// and version, build, board (protocol-facts §2).
    pub fn version_line(&self) -> String {
        format!(
            "{}-{}, Built:{} for {}, Board:{}",
            self.product, self.version, self.build, self.platform, self.board
        )
    }
}

/// Work the platform must do for the module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write this image to NVM, then call [`Module::nvm_stored`].
    StoreNvm(Vec<u8>),
    /// Replace the stored file system with this image ([`crate::fs`]), then call
    /// [`Module::files_stored`].
    StoreFiles(Vec<u8>),
    /// Send any remaining output, then boot a new module from NVM.
    Reboot,
    /// Erase NVM and the stored files, then reboot.
    FactoryReset,
    /// Work for the radio or the IP stack (see [`crate::net`]).
    Net(crate::net::NetRequest),
}

/// A command that answers later; input meanwhile is stashed. Each service keeps what its
/// commands wait for: [`network::NetWait`], [`sockets::StreamWait`], [`files::FilesWait`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// `save`: waiting for [`Module::nvm_stored`].
    Save,
    Net(NetWait),
    Stream(StreamWait),
    Files(FilesWait),
}

impl Pending {
    fn deadline(&self) -> Option<Instant> {
        match self {
            Pending::Save => None,
            Pending::Net(wait) => wait.deadline(),
            Pending::Stream(wait) => Some(wait.deadline()),
            Pending::Files(_) => None,
        }
    }
}

#[derive(Debug)]
pub struct Module {
    // --- The system: board, variables and their typed settings, time, actions. ---
    board: BoardInfo,
    vars: Vars,
    /// The settings still the module's own (the console's framing), read from `vars` again
    /// when one of theirs changes.
    cfg: Settings,
    /// Values as of the last boot or successful `save`: what `load` returns to.
    saved: Vars,
    actions: VecDeque<Action>,
    /// Set once a reboot is asked for: further input is dropped.
    halted: bool,
    booted_at: Instant,
    /// The latest time the platform passed in (log timestamps are taken from it).
    clock: Instant,
    /// `time.rtc`: its value in epoch seconds when it was set, and when.
    rtc: (i64, Instant),

    // --- Origins (module/origins.rs): who a command runs for, and where its replies go. ---
    /// The serial console front end (line editor, framing): renders what the serial origin
    /// and the broadcast sink get.
    serial: SerialConsole,
    /// The origin whose command is being run or advanced (`None`: nobody's, e.g. a timer or
    /// an event no command waits for; its log lines are broadcast). `pending` and `buffer`
    /// belong to it; the other origins' are parked in `jobs`.
    ctx: Option<Origin>,
    pending: Option<Pending>,
    /// The command being run answers through a CMD stream (`system.cmd.buffered`).
    buffer: Option<&'static str>,
    /// The commands of the origins not being served right now that wait for something.
    jobs: Vec<Job>,
    /// Serial input that arrived while a serial command waited for the platform.
    stash: Vec<u8>,
    /// Command lines of other origins that arrived while their previous command waited.
    queued: VecDeque<(Origin, Vec<u8>)>,
    /// Replies for origins other than the serial console, until they take them (or
    /// `route_front_end_replies` hands them to the part that owns the origin).
    outbox: Vec<(Origin, Reply)>,

    // --- Services (module/*.rs) and the parts they share through a `ctx::Ctx`. ---
    /// The services that are parts of their own. TLS, the application clients and the soft
    /// AP's services join here as the HTTP server did: their state and settings in a part,
    /// their commands in `run_line`, their connections under a `conns::Owner`, their timers
    /// in `TIMERS`, their settings' variables in `system::readers`.
    svc: Services,
    /// Ids for requests the platform answers by id (shared by the WLAN, DNS and ping).
    ids: RequestIds,
    /// Every connection and the service that owns it (conns.rs).
    conns: conns::ConnTable,
    /// The stream table: TCP and UDP clients and servers, FILE and CMD streams (sockets.rs).
    streams: Streams,
}

/// The services that are parts of their own (each in its file under `module/`): each owns
/// its state and its settings, handles its commands, its connections' events and its timers,
/// and reaches what it shares only through the [`ctx::Ctx`] it is lent.
#[derive(Debug)]
pub(super) struct Services {
    /// WLAN and the Network Up Sequence, DHCP, DNS and ping (network.rs).
    network: Network,
    /// The TCP server (tcp_server.rs).
    tcp_server: TcpServer,
    /// The UDP server (udp_server.rs).
    udp_server: UdpServer,
    /// Serial STREAM mode (bus.rs).
    bus: Bus,
    /// Streams the `*.auto_start` variables open in the background (auto.rs).
    autos: Autos,
    /// The file system and its store (files.rs; FILE streams read and write it).
    files: Files,
    /// The stream commands' settings and the network streams' receive path (sockets.rs).
    sockets: Sockets,
    /// The HTTP server, its REST API and its `/log` ring (http_server.rs).
    http_server: HttpServer,
    /// The HTTP server's WebSockets: `/stream` (WEBS streams) and `/cmdstream`
    /// (websocket.rs).
    websockets: WebSockets,
    /// The remote terminal: its listener, its client and that client's console (terminal.rs).
    terminal: Terminal,
    /// TLS over the TCP connections of the services that ask for it (tls.rs).
    tls: TlsLayer,
}

impl Services {
    fn new(vars: &Vars, files: Files, now: Instant) -> Self {
        Self {
            network: Network::new(vars),
            tcp_server: TcpServer::new(vars),
            udp_server: UdpServer::new(vars),
            bus: Bus::new(vars, now),
            autos: Autos::new(vars),
            files,
            sockets: Sockets::new(vars),
            http_server: HttpServer::new(vars),
            websockets: WebSockets::default(),
            terminal: Terminal::new(vars),
            tls: TlsLayer::new(vars),
        }
    }
}

/// A command of an origin that waits for something, while another origin is served.
#[derive(Debug)]
struct Job {
    origin: Origin,
    pending: Option<Pending>,
    buffer: Option<&'static str>,
}

/// What the platform found in its storage at boot ([`Module::boot_from`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stored<'a> {
    /// The settings image; `None` when nothing was saved (or it was erased).
    pub nvm: Option<&'a [u8]>,
    /// Why the settings could not be read: logged, and the module starts from defaults.
    pub nvm_fault: Option<&'a str>,
    /// The file system image ([`crate::fs`]); `None` when there are no files.
    pub files: Option<&'a [u8]>,
    /// Why the files could not be read: logged, and the module starts with none.
    pub files_fault: Option<&'a str>,
}

impl Module {
    /// Boots: loads the NVM image (if any and valid), prints the banner and `[Ready]`; no
    /// files.
    pub fn boot(board: BoardInfo, nvm_image: Option<&[u8]>, now: Instant) -> Self {
        Self::boot_from(board, Stored { nvm: nvm_image, ..Stored::default() }, now)
    }

    /// Boots from what the platform stored. What could not be read, or does not decode, is
    /// logged after the banner. Files that could not be read (or decode) leave the file
    /// system locked: file changes are refused until `factory_reset` erases the store, so a
    /// store that failed once to read is never overwritten with an empty file system.
    pub fn boot_from(board: BoardInfo, stored: Stored<'_>, now: Instant) -> Self {
        let mut notes = Vec::new();
        let mut vars = restore_settings(&stored, &mut notes);
        let (fs, files_locked) = files::restore_files(&stored, &mut notes);
        vars.set_internal(Var::WlanMac, vars::format_mac(&board.mac).as_bytes());
        vars.set_internal(Var::SystemVersion, board.version_line().as_bytes());
        let svc = Services::new(&vars, Files::new(fs, files_locked), now);
        let mut module = Self {
            saved: vars.clone(),
            cfg: Settings::from_vars(&vars),
            vars,
            board,
            serial: SerialConsole::new(),
            actions: VecDeque::new(),
            ctx: None,
            pending: None,
            jobs: Vec::new(),
            stash: Vec::new(),
            queued: VecDeque::new(),
            outbox: Vec::new(),
            halted: false,
            booted_at: now,
            clock: now,
            rtc: (0, now),
            ids: RequestIds::default(),
            streams: Streams::new(),
            svc,
            conns: conns::ConnTable::default(),
            buffer: None,
        };
        let banner = module.board.version_line();
        module.log(console::level::STATUS, &banner);
        for note in notes {
            module.log(console::level::ERROR, &note);
        }
        module.log(console::level::STATUS, "[Ready]");
        module.svc.bus.boot(now);
        module.sync_net_vars();
        if let Some(change) = module.with_ctx(|s, ctx| s.network.boot(now, ctx)) {
            module.net_changed(change, now);
        }
        if !module.svc.bus.is_streaming() {
            module.serial.prompt(module.format());
        }
        module
    }

    /// Feeds bytes received on the serial bus (the serial console's input).
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        self.clock = self.clock.max(now);
        self.in_origin(Some(Origin::Serial), |m| m.feed_serial(bytes, now));
        self.route_front_end_replies(now);
    }

    /// Runs one command line for `origin` (no line editing, no echo). Its replies are taken
    /// with [`Module::take_replies`] (the serial origin's are rendered into
    /// [`Module::take_output`]). While the origin's previous command still waits, the line
    /// waits behind it.
    pub fn execute(&mut self, origin: Origin, line: &[u8], now: Instant) {
        self.clock = self.clock.max(now);
        if self.halted {
            return;
        }
        self.execute_here(origin, line, now);
        self.route_front_end_replies(now);
    }

    /// [`Module::execute`] without routing the replies (a front end's own path).
    fn execute_here(&mut self, origin: Origin, line: &[u8], now: Instant) {
        self.in_origin(Some(origin), |m| {
            if m.pending.is_some() {
                m.queued.push_back((origin, line.to_vec()));
            } else {
                m.run_line(line, now);
            }
        });
        self.route_front_end_replies(now);
    }

    /// Hands `origin`'s command the bytes of its data phase ([`Reply::Data`]); returns how
    /// many it took (none when no data phase waits; the rest belong to what follows).
    pub fn data(&mut self, origin: Origin, bytes: &[u8], now: Instant) -> usize {
        self.clock = self.clock.max(now);
        if self.halted {
            return 0;
        }
        let used = self.data_here(origin, bytes, now);
        self.route_front_end_replies(now);
        used
    }

    /// [`Module::data`] without routing the replies (a front end's own path).
    fn data_here(&mut self, origin: Origin, bytes: &[u8], now: Instant) -> usize {
        self.in_origin(Some(origin), |m| {
            let Some(Pending::Stream(StreamWait::Data { phase, deadline, .. })) = &mut m.pending
            else {
                return 0;
            };
            let used = phase.feed(bytes);
            *deadline = now + DATA_TIMEOUT;
            if phase.is_complete() {
                m.data_complete(now);
            }
            used
        })
    }

    /// The replies for `origin` so far, oldest first (the serial origin's go to
    /// [`Module::take_output`] instead).
    pub fn take_replies(&mut self, origin: Origin) -> Vec<Reply> {
        let (mine, rest) =
            core::mem::take(&mut self.outbox).into_iter().partition(|(o, _)| *o == origin);
        self.outbox = rest;
        mine.into_iter().map(|(_, reply)| reply).collect()
    }

    /// Bytes to send on the serial bus, oldest first.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.serial.take_output()
    }

    /// The next piece of work for the platform.
    pub fn next_action(&mut self) -> Option<Action> {
        // The TLS layer's own flights go first; a service's request on a TLS connection is
        // encrypted on its way out (see `tls`).
        if let Some(request) = self.svc.tls.next_raw() {
            return Some(Action::Net(request));
        }
        match self.actions.pop_front()? {
            Action::Net(request) => {
                let (now, then) = self.svc.tls.outgoing(request);
                if let Some(then) = then {
                    self.actions.push_front(Action::Net(then));
                }
                Some(Action::Net(now))
            }
            action => Some(action),
        }
    }

    /// Reports how [`Action::StoreNvm`] went; `Err` carries a reason for the log.
    pub fn nvm_stored(&mut self, result: Result<(), &str>, now: Instant) {
        self.clock = self.clock.max(now);
        let owner = self.owner(|p| *p == Pending::Save);
        self.in_origin(owner, |m| m.nvm_stored_here(result, now));
        self.route_front_end_replies(now);
    }

    /// Reports how [`Action::StoreFiles`] went; `Err` carries a reason for the log. A
    /// change that could not be stored is undone (a file written through a `-o` stream is
    /// discarded and its stream closed), so the files in the core are always those stored.
    pub fn files_stored(&mut self, result: Result<(), &str>, now: Instant) {
        self.clock = self.clock.max(now);
        let owner = self.owner(|p| matches!(p, Pending::Files(FilesWait::StoreFiles { .. })));
        self.in_origin(owner, |m| m.files_stored_here(result, now));
        self.route_front_end_replies(now);
    }

    /// The file system as it is now (for tests and diagnostics).
    pub fn files(&self) -> &FileSystem {
        &self.svc.files.fs
    }

    /// Reports what the radio or IP stack did (see [`crate::net`]).
    pub fn net_event(&mut self, event: NetEvent, now: Instant) {
        self.clock = self.clock.max(now);
        if self.halted {
            return;
        }
        for event in self.tls_incoming(event, now) {
            let owner = self.event_owner(&event);
            self.in_origin(owner, |m| m.net_event_here(event, now));
        }
        self.route_front_end_replies(now);
    }

    fn net_event_here(&mut self, event: NetEvent, now: Instant) {
        // Each event goes to the service that owns it: the answer to a network command's own
        // request (scan, lookup, ping) to that command, lookups of auto start to it,
        // connection events to the connection's owner (see `conns`), the rest to the WLAN.
        if self.answers_net_command(&event) {
            return self.net_command_event(event, now);
        }
        if let NetEvent::Resolved { id, address } = &event
            && self.svc.autos.resolving(*id)
        {
            return self.auto_resolved(*id, *address, now);
        }
        if let Some(conn) = conns::event_conn(&event) {
            return self.conn_event(conn, &event, now);
        }
        self.wlan_event(&event, now);
    }

    /// When [`Module::tick`] must next be called, if a timer is running.
    pub fn poll_at(&self) -> Option<Instant> {
        TIMERS.iter().filter_map(|(poll_at, _)| poll_at(self)).min()
    }

    /// Runs the timers that are due at `now`.
    pub fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.halted {
            return;
        }
        for (_, tick) in TIMERS {
            tick(self, now);
        }
        self.route_front_end_replies(now);
    }

    /// The join counters (join attempt count of the current pass, join retry count, auto
    /// join retry count; see [`crate::wlan`]), for tests and diagnostics.
    pub fn join_counters(&self) -> (u32, u32, u32) {
        self.svc.network.wlan().counters()
    }

    /// The variables as they are now (for tests and the platform's diagnostics).
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    fn format(&self) -> Format {
        self.cfg.console.format
    }

    /// Runs one command line for the current origin.
    fn run_line(&mut self, line: &[u8], now: Instant) {
        let args = match command::tokenize(line) {
            Ok(args) => args,
            Err(_) => return self.respond(ResultCode::PARSE_ERROR, None),
        };
        let Some((word, args)) = args.split_first() else {
            // An empty line: human terminals get a fresh prompt, machines nothing; another
            // origin gets no answer.
            match self.ctx {
                Some(Origin::Serial) => self.serial.prompt(self.format()),
                Some(origin @ Origin::Terminal(_)) => {
                    self.svc.terminal.prompt(origin, self.format());
                }
                _ => {}
            }
            return;
        };
        self.buffer = None;
        let Some(def) = command::lookup(word) else {
            return self.respond(ResultCode::UNKNOWN_COMMAND, None);
        };
        if args.len() < def.min_args {
            return self.respond(ResultCode::TOO_FEW_ARGS, None);
        }
        if def.max_args.is_some_and(|max| args.len() > max) {
            return self.respond(ResultCode::TOO_MANY_ARGS, None);
        }
        // Each command goes to its service: the system commands here and in system.rs, the
        // network commands to network.rs, the stream commands to sockets.rs (which hands
        // `tcp_server` to tcp_server.rs, `udp_server` to udp_server.rs and opens clients
        // through tcp_client.rs), files to files.rs, `exit` to bus.rs. Commands of services to come (the soft AP,
        // application clients) get an arm here.
        let (code, body) = match def.id {
            CommandId::Version => (ResultCode::SUCCESS, Some(self.board.version_line())),
            CommandId::Help => {
                self.buffer_as("help");
                self.help(args)
            }
            CommandId::Get => self.get(args, now),
            CommandId::Set => self.set(args),
            CommandId::Save => {
                let image = nvm::encode(
                    self.vars.changed_saved().map(|(id, value)| (id.def().name, value)),
                );
                self.actions.push_back(Action::StoreNvm(image));
                self.pending = Some(Pending::Save);
                return;
            }
            CommandId::Load => {
                for &var in Var::ALL {
                    if var.def().saved {
                        self.vars.set_internal(var, self.saved.raw(var.id()));
                    }
                }
                self.settings_changed(Var::ALL);
                (ResultCode::SUCCESS, Some("Success".to_string()))
            }
            CommandId::Reboot => {
                self.respond(ResultCode::SUCCESS, Some("Rebooting"));
                self.halt(Action::Reboot);
                return;
            }
            CommandId::FactoryReset => {
                if vars::parse_mac(&args[0]) != Some(self.board.mac) {
                    (ResultCode::BAD_ARGS, None)
                } else {
                    self.respond(ResultCode::SUCCESS, Some("Factory reset"));
                    self.halt(Action::FactoryReset);
                    return;
                }
            }
            CommandId::NetworkUp
            | CommandId::NetworkDown
            | CommandId::NetworkRestart
            | CommandId::NetworkLookup
            | CommandId::Ping
            | CommandId::WlanScan => match self.network_command(def.id, args, now) {
                Some(answer) => answer,
                // Pending: answered when the work completes.
                None => return,
            },
            CommandId::Exit => {
                if !self.svc.bus.configured {
                    self.log(console::level::ERROR, "Not in stream mode");
                    (ResultCode::FAILED, None)
                } else {
                    self.respond(ResultCode::SUCCESS, Some("Success"));
                    self.bus_resume();
                    return;
                }
            }
            CommandId::FileCreate | CommandId::FileDelete | CommandId::FileOpen | CommandId::Ls => {
                match self.file_command(def.id, args, now) {
                    Some(answer) => answer,
                    None => return,
                }
            }
            CommandId::StreamClose
            | CommandId::StreamList
            | CommandId::StreamPoll
            | CommandId::StreamRead
            | CommandId::StreamWrite
            | CommandId::TcpClient
            | CommandId::TcpServer
            | CommandId::TlsClient
            | CommandId::TlsServer
            | CommandId::UdpClient
            | CommandId::UdpServer => match self.stream_command(def.id, args, now) {
                Some(answer) => answer,
                None => return,
            },
        };
        self.respond(code, body.as_deref());
    }
}

/// The services' timers, in the order [`Module::tick`] runs them: when each is next due, and
/// what runs it (each does nothing when nothing of it is due). TLS (handshake timeouts), the
/// application clients and the soft AP's services add theirs here.
type Timer = (fn(&Module) -> Option<Instant>, fn(&mut Module, Instant));
const TIMERS: &[Timer] = &[
    // Commands waiting in any origin (lookups, connects, reads, data phases, writes).
    (Module::commands_poll_at, Module::commands_tick),
    // The TCP server: idle clients.
    (Module::tcp_server_poll_at, Module::tcp_server_tick),
    // The HTTP server: clients that have not sent a whole request in time.
    (Module::http_server_poll_at, Module::http_server_tick),
    // Auto start's background openers.
    (Module::auto_poll_at, Module::auto_tick),
    // The remote terminal: its idle client.
    (Module::terminal_poll_at, Module::terminal_tick),
    // TLS: handshakes that take too long.
    (Module::tls_poll_at, Module::tls_tick),
    // STREAM mode: the bus's flush timer.
    (Module::bus_poll_at, Module::bus_tick),
    // The WLAN: the Network Up Sequence's timers.
    (Module::wlan_poll_at, Module::wlan_tick),
];

mod auto;
mod bus;
mod conns;
mod ctx;
mod files;
mod http_server;
mod network;
mod origins;
mod sockets;
mod system;
mod tcp_client;
mod tcp_server;
mod terminal;
mod tls;
mod udp_server;
mod websocket;

pub use auto::AUTO_RETRY;
use auto::Autos;
use bus::Bus;
use files::{Files, FilesWait};
use http_server::HttpServer;
pub use http_server::{HTTP_IDLE_TIMEOUT, LOG_LINE_MAX, LOG_LINES};
use network::{AfterUp, NetWait, Network};
pub use sockets::{DATA_TIMEOUT, UDP_OPEN_TIMEOUT};
use sockets::{Sockets, StreamWait, WriteTarget, conn_failure_text, parse_size};
use system::restore_settings;
use tcp_server::TcpServer;
use terminal::Terminal;
use tls::TlsLayer;
use udp_server::UdpServer;
use websocket::WebSockets;
pub use websocket::{WsRefused, WsRoute};

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod frames;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod terminal_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod ws_tests;

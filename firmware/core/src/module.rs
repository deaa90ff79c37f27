//! The module: the sans-IO state machine behind the serial console.
//!
//! The platform feeds it bytes from the bus ([`Module::feed`]) with the current time, drains
//! the bytes to send back ([`Module::take_output`]) and carries out the [`Action`]s it asks
//! for ([`Module::next_action`]), reporting completion where an action asks for it. A reboot
//! is the platform dropping this value and booting a new one from NVM.

use crate::clock;
use crate::command::{self, CommandDef, CommandId};
use crate::config::{AutoStart, Interface, Settings, Timestamp};
use crate::console::{self, DataPhase, Edit, Format, SerialConsole};
use crate::fs::{self, FileSystem, FsError, NewFile, Version};
use crate::net::{ConnId, Ipv4, NetEvent, NetRequest};
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

/// A command that answers later; input meanwhile is stashed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Save,
    /// [`Action::StoreFiles`] is out; `body` answers once it is stored.
    StoreFiles {
        body: String,
    },
    /// Waiting for the Network Up Sequence to settle, then doing the rest of the command.
    NetUp(AfterUp),
    /// `wlan_scan`.
    Scan {
        id: u32,
        deadline: Instant,
        verbose: bool,
    },
    /// `network_lookup`, or the name lookup of `ping <host>`, `tcp_client`, `udp_client`.
    Lookup {
        id: u32,
        deadline: Instant,
        host: String,
        then: Then,
    },
    /// `ping`.
    Ping {
        id: u32,
        deadline: Instant,
        to: Ipv4,
    },
    /// `tcp_client`: a connect attempt (`waiting: false`, deadline `tcp.client.connect_timeout`)
    /// or the wait before the next (`waiting: true`, deadline `tcp.client.retry_period`).
    Connect {
        conn: ConnId,
        deadline: Instant,
        host: String,
        to: Endpoint,
        /// Attempts made so far.
        tries: u32,
        waiting: bool,
    },
    /// `udp_client`, `udp_server start`: waiting for [`NetEvent::UdpOpened`].
    UdpOpen {
        conn: ConnId,
        deadline: Instant,
        kind: StreamType,
        remote: Option<Endpoint>,
    },
    /// `stream_read`, `udp_server read`: nothing buffered yet; waits `bus.command.read_timeout`.
    Read {
        handle: usize,
        size: usize,
        deadline: Instant,
        with_sender: bool,
    },
    /// The data phase of `stream_write`, `udp_server write`: [`DATA_TIMEOUT`] after the last
    /// byte it aborts.
    Data {
        phase: DataPhase,
        deadline: Instant,
        target: WriteTarget,
    },
    /// The write was handed to the platform; waiting for [`NetEvent::Sent`]
    /// (`bus.command.write_timeout`).
    Write {
        conn: ConnId,
        handle: usize,
        deadline: Instant,
        /// Bytes handed to the platform; a `Sent` for fewer is a failed write.
        len: usize,
    },
}

/// What a name lookup is for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Then {
    /// `network_lookup`: answer the address.
    Answer,
    Ping,
    Open {
        udp: bool,
        port: u16,
    },
}

/// Where the bytes of a data phase go.
#[derive(Clone, Debug, PartialEq, Eq)]
enum WriteTarget {
    /// `stream_write <handle>`.
    Stream(usize),
    /// `udp_server write <ip> <port>`.
    UdpClient(Endpoint),
    /// `file_create` without `-o`: the data is the file.
    File(NewFile),
}

/// The module's TCP server while it listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TcpServer {
    listener: ConnId,
    port: u16,
    /// Started by `tcp.server.auto_start`: its first client may stream to the bus.
    auto: bool,
}

/// A stream an `*.auto_start` variable opens when the network comes up, in the background
/// (the console stays free): `tcp.client.*` (`TCPC`, with the connect retry sequence and
/// `tcp.client.auto_retries`), `udp.client.*` (`UDPC`), `udp.server.*` (`UDPS`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Auto {
    kind: StreamType,
    /// Clients: `remote_host`; the UDP server: empty.
    host: String,
    /// Clients: `remote_port`; the UDP server: its local port.
    port: u16,
    /// Clients: the resolved remote.
    to: Option<Endpoint>,
    /// Connect attempts in this round (the TCP client's retry sequence).
    tries: u32,
    /// Rounds retried after the first (`tcp.client.auto_retries`).
    rounds: u32,
    phase: AutoPhase,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum AutoPhase {
    Resolve {
        id: u32,
        deadline: Instant,
    },
    Connect {
        conn: ConnId,
        deadline: Instant,
    },
    UdpOpen {
        conn: ConnId,
        deadline: Instant,
    },
    /// Before the next connect attempt or round.
    Wait {
        until: Instant,
        next_round: bool,
    },
    /// The TCP client's stream is open on `conn` (watched to reconnect when it drops).
    Open {
        conn: ConnId,
    },
}

impl AutoPhase {
    /// The connection of a connect attempt or a UDP open in progress.
    fn attempt(&self) -> Option<ConnId> {
        match self {
            AutoPhase::Connect { conn, .. } | AutoPhase::UdpOpen { conn, .. } => Some(*conn),
            _ => None,
        }
    }
}

impl Auto {
    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            AutoPhase::Resolve { deadline, .. }
            | AutoPhase::Connect { deadline, .. }
            | AutoPhase::UdpOpen { deadline, .. } => Some(deadline),
            AutoPhase::Wait { until, .. } => Some(until),
            AutoPhase::Open { .. } => None,
        }
    }
}

/// How long the data phase of a write waits for the next byte before it aborts (assumed).
pub const DATA_TIMEOUT: Duration = Duration::from_millis(5_000);
/// How often an auto-started UDP client tries again with `udp.client.auto_retry`
/// (protocol-facts: every 1.0 s).
pub const AUTO_RETRY: Duration = Duration::from_millis(1_000);
/// How long `udp_client` and `udp_server start` wait for the platform's UDP socket (assumed).
pub const UDP_OPEN_TIMEOUT: Duration = Duration::from_millis(5_000);

impl Pending {
    fn deadline(&self) -> Option<Instant> {
        match self {
            Pending::Scan { deadline, .. }
            | Pending::Lookup { deadline, .. }
            | Pending::Ping { deadline, .. }
            | Pending::Connect { deadline, .. }
            | Pending::UdpOpen { deadline, .. }
            | Pending::Read { deadline, .. }
            | Pending::Data { deadline, .. }
            | Pending::Write { deadline, .. } => Some(*deadline),
            Pending::Save | Pending::NetUp(_) | Pending::StoreFiles { .. } => None,
        }
    }
}

/// What a command that needs the network does once it is up.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AfterUp {
    /// `network_up`, `network_restart`: answer `Success`.
    Respond,
    Lookup(String),
    Ping(PingTarget),
    /// `tcp_client`, `udp_client`.
    Open {
        udp: bool,
        host: String,
        port: u16,
    },
    /// `tcp_server start`.
    TcpServer(u16),
    /// `udp_server start`.
    UdpServer(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PingTarget {
    Gateway,
    Addr(Ipv4),
    Host(String),
}

/// The module's command core.
#[derive(Debug)]
pub struct Module {
    board: BoardInfo,
    vars: Vars,
    /// The services' typed settings, read from `vars` whenever a variable changes.
    cfg: Settings,
    /// Values as of the last boot or successful `save`: what `load` returns to.
    saved: Vars,
    /// The serial console front end (line editor, framing): renders what the serial origin
    /// and the broadcast sink get.
    serial: SerialConsole,
    actions: VecDeque<Action>,
    /// The origin whose command is being run or advanced (`None`: nobody's, e.g. a timer or
    /// an event no command waits for; its log lines are broadcast). `pending` and `buffer`
    /// belong to it; the other origins' are parked in `jobs`.
    ctx: Option<Origin>,
    pending: Option<Pending>,
    /// The commands of the origins not being served right now that wait for something.
    jobs: Vec<Job>,
    /// Serial input that arrived while a serial command waited for the platform.
    stash: Vec<u8>,
    /// Command lines of other origins that arrived while their previous command waited.
    queued: VecDeque<(Origin, Vec<u8>)>,
    /// Replies for origins other than the serial console, until they take them.
    outbox: Vec<(Origin, Reply)>,
    /// Set once a reboot is asked for: further input is dropped.
    halted: bool,
    booted_at: Instant,
    /// The latest time the platform passed in (log timestamps are taken from it).
    clock: Instant,
    /// `time.rtc`: its value in epoch seconds when it was set, and when.
    rtc: (i64, Instant),
    wlan: Wlan,
    streams: Streams,
    tcp_server: Option<TcpServer>,
    /// Streams the `*.auto_start` variables open in the background.
    autos: Vec<Auto>,
    /// Whether the network was up at the last [`Module::apply`] (to see it come and go).
    net_was_up: bool,
    /// Serial STREAM mode.
    bus: Bus,
    /// The file system (FILE streams read and write it).
    fs: FileSystem,
    /// Why the stored files could not be loaded; file changes are refused meanwhile.
    files_locked: Option<String>,
    /// The file system before the change being stored, put back if the store fails, and
    /// the `-o` stream (handle, bytes written before) whose write completed the file.
    files_before: Option<(FileSystem, Option<(usize, usize)>)>,
    /// The command being run answers through a CMD stream (`system.cmd.buffered`).
    buffer: Option<&'static str>,
}

/// A command of an origin that waits for something, while another origin is served.
#[derive(Debug)]
struct Job {
    origin: Origin,
    pending: Option<Pending>,
    buffer: Option<&'static str>,
}

/// Serial STREAM mode (`bus.mode stream`, read at boot): see the `impl Module` block on it.
#[derive(Debug, Default)]
struct Bus {
    /// `bus.mode` was `stream` at boot.
    configured: bool,
    /// The bus streams now (not broken in to command mode).
    streaming: bool,
    /// The connection of the stream that streams to the bus.
    conn: Option<ConnId>,
    /// Bus bytes not yet sent.
    tx: Vec<u8>,
    flush_at: Option<Instant>,
    /// When the last bus byte came (boot counts as one).
    last_rx: Instant,
    /// Bytes of `bus.stream.cmd_seq` matched so far (held back from the stream).
    seq_match: usize,
    /// `exit` ended with a lone CR: an LF right after it is part of that line end.
    skip_lf: bool,
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
        let mut vars = Vars::defaults();
        let mut notes = Vec::new();
        if let Some(fault) = stored.nvm_fault {
            notes.push(format!("NVM read failed: {fault}; using defaults"));
        }
        if let Some(image) = stored.nvm {
            match nvm::decode(image) {
                Ok(entries) => {
                    for (name, value) in entries {
                        let restored =
                            vars::by_name(&name).is_some_and(|id| vars.restore(id, &value));
                        if !restored {
                            notes.push(format!("NVM: ignored saved value of {name}"));
                        }
                    }
                }
                Err(e) => notes.push(format!("NVM: {e}; using defaults")),
            }
        }
        let (fs, files_locked) = match (stored.files_fault, stored.files.map(FileSystem::decode)) {
            (Some(fault), _) => {
                (FileSystem::new(), Some(format!("file store read failed: {fault}")))
            }
            (None, None) => (FileSystem::new(), None),
            (None, Some(Ok(fs))) => (fs, None),
            (None, Some(Err(e))) => (FileSystem::new(), Some(format!("{e}"))),
        };
        if let Some(why) = &files_locked {
            notes.push(format!("Files: {why}; file changes refused until factory_reset"));
        }
        vars.set_internal(Var::WlanMac, vars::format_mac(&board.mac).as_bytes());
        vars.set_internal(Var::SystemVersion, board.version_line().as_bytes());
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
            wlan: Wlan::new(),
            streams: Streams::new(),
            tcp_server: None,
            autos: Vec::new(),
            net_was_up: false,
            bus: Bus::default(),
            fs,
            files_locked,
            files_before: None,
            buffer: None,
        };
        let banner = module.board.version_line();
        module.log(console::level::STATUS, &banner);
        for note in notes {
            module.log(console::level::ERROR, &note);
        }
        module.log(console::level::STATUS, "[Ready]");
        if module.cfg.bus.stream_mode {
            module.bus = Bus { configured: true, streaming: true, last_rx: now, ..Bus::default() };
        }
        module.sync_net_vars();
        if module.cfg.wlan.auto_join {
            let mut out = wlan::Out::default();
            module.wlan.up(&module.cfg.wlan, now, &mut out);
            module.apply(out, now);
        }
        if !module.bus.streaming {
            module.serial.prompt(module.format());
        }
        module
    }

    /// Feeds bytes received on the serial bus (the serial console's input).
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        self.clock = self.clock.max(now);
        self.in_origin(Some(Origin::Serial), |m| m.feed_serial(bytes, now));
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
        self.in_origin(Some(origin), |m| {
            if m.pending.is_some() {
                m.queued.push_back((origin, line.to_vec()));
            } else {
                m.run_line(line, now);
            }
        });
    }

    /// Hands `origin`'s command the bytes of its data phase ([`Reply::Data`]); returns how
    /// many it took (none when no data phase waits; the rest belong to what follows).
    pub fn data(&mut self, origin: Origin, bytes: &[u8], now: Instant) -> usize {
        self.clock = self.clock.max(now);
        if self.halted {
            return 0;
        }
        self.in_origin(Some(origin), |m| {
            let Some(Pending::Data { phase, deadline, .. }) = &mut m.pending else { return 0 };
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

    fn feed_serial(&mut self, bytes: &[u8], now: Instant) {
        let mut i = 0;
        while i < bytes.len() {
            if self.halted {
                return;
            }
            if self.bus.streaming {
                return self.bus_bytes(&bytes[i..], now);
            }
            if let Some(Pending::Data { phase, deadline, .. }) = &mut self.pending {
                i += phase.feed(&bytes[i..]);
                *deadline = now + DATA_TIMEOUT;
                if phase.is_complete() {
                    self.data_complete(now);
                }
                continue;
            }
            if self.pending.is_some() {
                self.stash.extend_from_slice(&bytes[i..]);
                return;
            }
            let b = bytes[i];
            i += 1;
            match self.serial.edit(b, self.format()) {
                Edit::Pending => {}
                Edit::Overflow => self.respond(ResultCode::BUFFER_OVERFLOW, None),
                Edit::Line(line) => self.run_line(&line, now),
            }
        }
    }

    /// Bytes to send on the serial bus, oldest first.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.serial.take_output()
    }

    /// The next piece of work for the platform.
    pub fn next_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Reports how [`Action::StoreNvm`] went; `Err` carries a reason for the log.
    pub fn nvm_stored(&mut self, result: Result<(), &str>, now: Instant) {
        self.clock = self.clock.max(now);
        let owner = self.owner(|p| *p == Pending::Save);
        self.in_origin(owner, |m| m.nvm_stored_here(result, now));
    }

    fn nvm_stored_here(&mut self, result: Result<(), &str>, now: Instant) {
        if self.pending != Some(Pending::Save) {
            return;
        }
        self.pending = None;
        match result {
            Ok(()) => {
                self.saved = self.vars.clone();
                self.respond(ResultCode::SUCCESS, Some("Success"));
            }
            Err(reason) => {
                self.log(console::level::ERROR, &format!("NVM write failed: {reason}"));
                self.respond(ResultCode::FAILED, None);
            }
        }
        self.resume(now);
    }

    /// Reports how [`Action::StoreFiles`] went; `Err` carries a reason for the log. A
    /// change that could not be stored is undone (a file written through a `-o` stream is
    /// discarded and its stream closed), so the files in the core are always those stored.
    pub fn files_stored(&mut self, result: Result<(), &str>, now: Instant) {
        self.clock = self.clock.max(now);
        let owner = self.owner(|p| matches!(p, Pending::StoreFiles { .. }));
        self.in_origin(owner, |m| m.files_stored_here(result, now));
    }

    fn files_stored_here(&mut self, result: Result<(), &str>, now: Instant) {
        let Some(Pending::StoreFiles { body }) = self.pending.clone() else { return };
        let before = self.files_before.take();
        match result {
            Ok(()) => self.finish(ResultCode::SUCCESS, Some(&body), now),
            Err(reason) => {
                self.log(console::level::ERROR, &format!("File store failed: {reason}"));
                if let Some((fs, stream)) = before {
                    self.fs = fs;
                    if let Some((handle, written_before)) = stream {
                        if let Some(Stream {
                            source: Some(Local::FileWrite { written, .. }), ..
                        }) = self.streams.get_mut(handle)
                        {
                            *written = written_before;
                        }
                        self.close_stream(handle, now);
                    }
                }
                self.finish(ResultCode::FAILED, None, now);
            }
        }
    }

    /// The file system as it is now (for tests and diagnostics).
    pub fn files(&self) -> &FileSystem {
        &self.fs
    }

    /// Reports what the radio or IP stack did (see [`crate::net`]).
    pub fn net_event(&mut self, event: NetEvent, now: Instant) {
        self.clock = self.clock.max(now);
        if self.halted {
            return;
        }
        let owner = self.event_owner(&event);
        self.in_origin(owner, |m| m.net_event_here(event, now));
    }

    fn net_event_here(&mut self, event: NetEvent, now: Instant) {
        match (&event, self.pending.clone()) {
            (NetEvent::ScanDone { id, results }, Some(Pending::Scan { id: want, verbose, .. }))
                if *id == want =>
            {
                let body = wlan::scan_body(results, verbose);
                return self.finish(ResultCode::SUCCESS, Some(&body), now);
            }
            (
                NetEvent::Resolved { id, address },
                Some(Pending::Lookup { id: want, host, then, .. }),
            ) if *id == want => {
                return match (address, then) {
                    (Some(address), Then::Ping) => self.ping(*address, now),
                    (Some(address), Then::Answer) => {
                        self.finish(ResultCode::SUCCESS, Some(&wlan::ip_text(*address)), now)
                    }
                    (Some(address), Then::Open { udp, port }) => {
                        self.open_to(udp, host, (*address, port), now)
                    }
                    (None, then) => {
                        self.log(console::level::ERROR, &format!("Host not found: {host}"));
                        if matches!(then, Then::Open { .. }) {
                            self.log(console::level::STATUS, "[Open failed]");
                        }
                        self.finish(ResultCode::FAILED, None, now)
                    }
                };
            }
            (NetEvent::PingReply { id, rtt_ms }, Some(Pending::Ping { id: want, to, .. }))
                if *id == want =>
            {
                let body = format!("Ping reply from {}: {rtt_ms} ms", wlan::ip_text(to));
                return self.finish(ResultCode::SUCCESS, Some(&body), now);
            }
            _ => {}
        }
        if self.stream_event(&event, now) {
            return;
        }
        let mut out = wlan::Out::default();
        self.wlan.event(&event, &self.cfg.wlan, now, &mut out);
        self.apply(out, now);
    }

    /// When [`Module::tick`] must next be called, if a timer is running.
    pub fn poll_at(&self) -> Option<Instant> {
        let command = self
            .jobs
            .iter()
            .filter_map(|j| j.pending.as_ref())
            .chain(self.pending.as_ref())
            .filter_map(Pending::deadline)
            .min();
        let auto = self.autos.iter().filter_map(Auto::deadline).min();
        [command, self.wlan.poll_at(), self.idle_deadline(), auto, self.bus.flush_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers that are due at `now`.
    pub fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.halted {
            return;
        }
        let due: Vec<Origin> = self
            .jobs
            .iter()
            .filter(|j| j.pending.as_ref().and_then(Pending::deadline).is_some_and(|at| at <= now))
            .map(|j| j.origin)
            .collect();
        for origin in due {
            self.in_origin(Some(origin), |m| {
                if let Some(pending) = m.pending.clone()
                    && pending.deadline().is_some_and(|at| at <= now)
                {
                    m.timed_out(pending, now);
                }
            });
        }
        self.close_idle_clients(now);
        self.auto_tick(now);
        if self.bus.flush_at.is_some_and(|at| at <= now) {
            self.bus_flush();
        }
        let mut out = wlan::Out::default();
        self.wlan.tick(&self.cfg.wlan, now, &mut out);
        self.apply(out, now);
    }

    /// The join counters (join attempt count of the current pass, join retry count, auto
    /// join retry count; see [`crate::wlan`]), for tests and diagnostics.
    pub fn join_counters(&self) -> (u32, u32, u32) {
        self.wlan.counters()
    }

    /// The variables as they are now (for tests and the platform's diagnostics).
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    fn format(&self) -> Format {
        self.cfg.console.format
    }

    /// A log line: the current command's origin gets it, or the broadcast sink when no
    /// command caused it.
    fn log(&mut self, level: u8, text: &str) {
        let text = match self.timestamp() {
            Some(stamp) => clock::stamped(&stamp, text),
            None => text.to_string(),
        };
        self.emit(Reply::Log { level, text });
    }

    /// Hands a reply to the current origin: the serial console renders it now, another
    /// origin finds it in [`Module::take_replies`]. Without an origin it is broadcast.
    fn emit(&mut self, reply: Reply) {
        match self.ctx {
            None => self.broadcast(reply),
            Some(Origin::Serial) => self.render_serial(reply),
            Some(origin) => self.outbox.push((origin, reply)),
        }
    }

    /// Log lines no command caused reach every interested consumer: the serial console
    /// today (an HTTP `/log` ring would be the second).
    fn broadcast(&mut self, reply: Reply) {
        if let Reply::Log { .. } = reply {
            self.render_serial(reply);
        }
    }

    fn render_serial(&mut self, reply: Reply) {
        let format = self.format();
        match reply {
            // The bus carries only stream data while it streams.
            Reply::Log { .. } if self.bus.streaming => {}
            Reply::Log { level, text } => self.serial.log(format, level, &text),
            Reply::Response { code, body } => self.serial.response(format, code, &body),
            // The serial console's bytes go to the data phase as they arrive.
            Reply::Data { .. } => {}
        }
    }

    /// Responds with `code`; `body` defaults to the code's text for errors and to nothing
    /// for success.
    fn respond(&mut self, code: ResultCode, body: Option<&str>) {
        if let Some(command) = self.buffer.take()
            && code.is_success()
        {
            return self.respond_buffered(command, body.unwrap_or(""));
        }
        let body = body.unwrap_or(if code.is_success() { "" } else { code.text().unwrap_or("") });
        self.emit(Reply::Response { code, body: body.as_bytes().to_vec() });
    }

    /// Responds with a body of raw bytes (`stream_read`).
    fn respond_bytes(&mut self, code: ResultCode, body: &[u8]) {
        self.emit(Reply::Response { code, body: body.to_vec() });
    }

    /// Serves `origin` (its command's pending state and buffering become current) while `f`
    /// runs, then parks it again and goes back to the origin served before.
    fn in_origin<R>(&mut self, origin: Option<Origin>, f: impl FnOnce(&mut Self) -> R) -> R {
        if origin == self.ctx {
            return f(self);
        }
        let before = self.ctx;
        self.park();
        self.unpark(origin);
        let result = f(self);
        self.park();
        self.unpark(before);
        result
    }

    fn park(&mut self) {
        let pending = self.pending.take();
        let buffer = self.buffer.take();
        if let Some(origin) = self.ctx.take()
            && (pending.is_some() || buffer.is_some())
        {
            self.jobs.push(Job { origin, pending, buffer });
        }
    }

    fn unpark(&mut self, origin: Option<Origin>) {
        self.ctx = origin;
        if let Some(i) = self.jobs.iter().position(|j| Some(j.origin) == origin) {
            let job = self.jobs.swap_remove(i);
            self.pending = job.pending;
            self.buffer = job.buffer;
        }
    }

    /// The origin whose waiting command `wants` matches (the one served now first).
    fn owner(&self, wants: impl Fn(&Pending) -> bool) -> Option<Origin> {
        if self.pending.as_ref().is_some_and(&wants) {
            return self.ctx;
        }
        self.jobs.iter().find(|j| j.pending.as_ref().is_some_and(&wants)).map(|j| j.origin)
    }

    /// The origin whose waiting command an event answers, if any.
    fn event_owner(&self, event: &NetEvent) -> Option<Origin> {
        let handle_of = |conn: ConnId| self.streams.by_conn(conn);
        self.owner(|p| match (p, event) {
            (Pending::Scan { id, .. }, NetEvent::ScanDone { id: got, .. })
            | (Pending::Lookup { id, .. }, NetEvent::Resolved { id: got, .. })
            | (Pending::Ping { id, .. }, NetEvent::PingReply { id: got, .. }) => id == got,
            (
                Pending::Connect { conn, .. } | Pending::UdpOpen { conn, .. },
                NetEvent::TcpConnected { conn: got, .. }
                | NetEvent::UdpOpened { conn: got, .. }
                | NetEvent::Closed { conn: got }
                | NetEvent::ConnFailed { conn: got, .. },
            ) => conn == got,
            (
                Pending::Write { conn, .. },
                NetEvent::Sent { conn: got, .. }
                | NetEvent::Closed { conn: got }
                | NetEvent::ConnFailed { conn: got, .. },
            ) => conn == got,
            (
                Pending::Read { handle, .. },
                NetEvent::Received { conn, .. }
                | NetEvent::Closed { conn }
                | NetEvent::ConnFailed { conn, .. },
            ) => handle_of(*conn) == Some(*handle),
            _ => false,
        })
    }

    /// The current origin's command is answered: run what it sent meanwhile.
    fn resume(&mut self, now: Instant) {
        match self.ctx {
            Some(Origin::Serial) => {
                let stash = core::mem::take(&mut self.stash);
                self.feed_serial(&stash, now);
            }
            Some(origin) => {
                while self.pending.is_none()
                    && !self.halted
                    && let Some(i) = self.queued.iter().position(|(o, _)| *o == origin)
                {
                    if let Some((_, line)) = self.queued.remove(i) {
                        self.run_line(&line, now);
                    }
                }
            }
            None => {}
        }
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
            if self.ctx == Some(Origin::Serial) {
                self.serial.prompt(self.format());
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
                self.settings_changed();
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
                if !self.bus.configured {
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
            | CommandId::UdpClient
            | CommandId::UdpServer => match self.stream_command(def.id, args, now) {
                Some(answer) => answer,
                None => return,
            },
        };
        self.respond(code, body.as_deref());
    }

    /// Carries out what the WLAN state machine asked for and answers a command waiting on it.
    fn apply(&mut self, out: wlan::Out, now: Instant) {
        for request in out.requests {
            self.actions.push_back(Action::Net(request));
        }
        for (level, text) in &out.logs {
            self.log(*level, text);
        }
        self.sync_net_vars();
        let up = self.wlan.is_up();
        if up != core::mem::replace(&mut self.net_was_up, up) {
            if up { self.network_came_up(now) } else { self.network_went_down(now) }
        }
        if let Some(settled) = out.settled {
            // Every origin whose command waits for the network goes on, the current one first.
            let waiting = |p: &Option<Pending>| matches!(p, Some(Pending::NetUp(_)));
            let others: Vec<Origin> =
                self.jobs.iter().filter(|j| waiting(&j.pending)).map(|j| j.origin).collect();
            if waiting(&self.pending) {
                self.settled(settled, now);
            }
            for origin in others {
                self.in_origin(Some(origin), |m| m.settled(settled, now));
            }
        }
    }

    /// The Network Up Sequence settled: go on with the command that waited for it.
    fn settled(&mut self, settled: Settled, now: Instant) {
        let Some(Pending::NetUp(after)) = self.pending.clone() else { return };
        match (settled, after) {
            (Settled::Failed, AfterUp::Open { .. }) => {
                self.log(console::level::STATUS, "[Open failed]");
                self.finish(ResultCode::FAILED, None, now);
            }
            (Settled::Failed, _) => self.finish(ResultCode::FAILED, None, now),
            (Settled::Up, AfterUp::Open { udp, host, port }) => match vars::parse_ipv4(&host) {
                Some(ip) => self.open_to(udp, host, (ip, port), now),
                None => self.lookup(host, Then::Open { udp, port }, now),
            },
            (Settled::Up, AfterUp::TcpServer(port)) => {
                if self.tcp_server.is_some() {
                    // Auto-started while the command waited for the network.
                    self.log(console::level::ERROR, "TCP server already running");
                    return self.finish(ResultCode::FAILED, None, now);
                }
                self.start_tcp_server(port, false);
                self.finish(ResultCode::SUCCESS, Some("Success"), now);
            }
            (Settled::Up, AfterUp::UdpServer(port)) => {
                let conn = self.streams.next_conn();
                self.actions.push_back(Action::Net(NetRequest::UdpOpen { conn, local_port: port }));
                let deadline = now + UDP_OPEN_TIMEOUT;
                self.pending =
                    Some(Pending::UdpOpen { conn, deadline, kind: StreamType::Udps, remote: None });
            }
            (Settled::Up, AfterUp::Respond) => {
                self.finish(ResultCode::SUCCESS, Some("Success"), now)
            }
            (Settled::Up, AfterUp::Lookup(host)) => self.lookup(host, Then::Answer, now),
            (Settled::Up, AfterUp::Ping(PingTarget::Addr(to))) => self.ping(to, now),
            (Settled::Up, AfterUp::Ping(PingTarget::Host(host))) => {
                self.lookup(host, Then::Ping, now)
            }
            (Settled::Up, AfterUp::Ping(PingTarget::Gateway)) => {
                match self.wlan.ip().map(|ip| ip.gateway).filter(|gw| *gw != [0; 4]) {
                    Some(gateway) => self.ping(gateway, now),
                    None => {
                        self.log(console::level::ERROR, "No gateway");
                        self.finish(ResultCode::FAILED, None, now);
                    }
                }
            }
        }
    }

    /// Answers the pending command and runs the input stashed meanwhile.
    fn finish(&mut self, code: ResultCode, body: Option<&str>, now: Instant) {
        self.pending = None;
        self.respond(code, body);
        self.resume(now);
    }

    /// [`Module::finish`] with a body of raw bytes.
    fn finish_bytes(&mut self, body: &[u8], now: Instant) {
        self.pending = None;
        self.respond_bytes(ResultCode::SUCCESS, body);
        self.resume(now);
    }

    /// Brings the network up (if it is not) and then does `after`.
    fn with_network(&mut self, after: AfterUp, now: Instant) {
        self.pending = Some(Pending::NetUp(after));
        let mut out = wlan::Out::default();
        self.wlan.up(&self.cfg.wlan, now, &mut out);
        self.apply(out, now);
    }

    fn lookup(&mut self, host: String, then: Then, now: Instant) {
        let id = self.wlan.next_id();
        self.actions.push_back(Action::Net(NetRequest::Resolve { id, name: host.clone() }));
        // `network.dns.timeout` is in milliseconds (assumed; its range is 100 to 60000).
        let timeout = self.cfg.dns.timeout.as_millis();
        let deadline = now + Duration::from_millis(timeout);
        self.pending = Some(Pending::Lookup { id, deadline, host, then });
    }

    fn ping(&mut self, to: Ipv4, now: Instant) {
        let id = self.wlan.next_id();
        self.actions.push_back(Action::Net(NetRequest::Ping { id, to }));
        self.pending = Some(Pending::Ping { id, deadline: now + wlan::PING_TIMEOUT, to });
    }

    /// The read-only status variables from the WLAN state.
    fn sync_net_vars(&mut self) {
        let status = (self.wlan.status() as u8).to_string();
        self.vars.set_internal(Var::WlanNetworkStatus, status.as_bytes());
        self.vars.set_internal(Var::WlanJoinResult, self.wlan.result().name().as_bytes());
        let (ip, netmask, gateway, dns) = match self.wlan.ip() {
            Some(c) => (
                wlan::ip_text(c.address),
                wlan::ip_text(c.netmask),
                wlan::ip_text(c.gateway),
                c.dns.iter().map(|d| wlan::ip_text(*d)).collect::<Vec<_>>().join(","),
            ),
            None => {
                let zero = wlan::ip_text([0; 4]);
                (zero.clone(), zero.clone(), zero, String::new())
            }
        };
        self.vars.set_internal(Var::WlanNetworkIp, ip.as_bytes());
        self.vars.set_internal(Var::WlanNetworkNetmask, netmask.as_bytes());
        self.vars.set_internal(Var::WlanNetworkGateway, gateway.as_bytes());
        self.vars.set_internal(Var::WlanNetworkDns, dns.as_bytes());
    }

    /// Checks the interface argument of the `network_*` commands: `wlan` (or
    /// `network.default_interface` when none is given) goes on; `softap` is code 1 (not
    /// supported yet), anything else code 7.
    fn wlan_interface(&mut self, arg: Option<&String>) -> Result<(), ResultCode> {
        let iface = arg.map_or(self.cfg.default_interface.name(), String::as_str);
        match iface {
            "wlan" => Ok(()),
            "softap" => {
                self.log(console::level::ERROR, "The softap interface is not supported");
                Err(ResultCode::FAILED)
            }
            _ => Err(ResultCode::BAD_ARGS),
        }
    }

    fn network_command(
        &mut self,
        id: CommandId,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        match id {
            CommandId::NetworkUp => {
                let mut interactive = false;
                let mut iface = None;
                for arg in args {
                    match arg.as_str() {
                        "-s" => interactive = true,
                        flag if flag.starts_with('-') => {
                            return Some((ResultCode::UNKNOWN_OPTION, None));
                        }
                        _ if iface.is_none() => iface = Some(arg),
                        _ => return Some((ResultCode::TOO_MANY_ARGS, None)),
                    }
                }
                if let Err(code) = self.wlan_interface(iface) {
                    return Some((code, None));
                }
                if interactive {
                    self.log(
                        console::level::ERROR,
                        "Interactive setup (network_up -s) is not supported",
                    );
                    return Some((ResultCode::FAILED, None));
                }
                self.with_network(AfterUp::Respond, now);
                None
            }
            CommandId::NetworkDown | CommandId::NetworkRestart => {
                if let Err(code) = self.wlan_interface(args.first()) {
                    return Some((code, None));
                }
                let mut out = wlan::Out::default();
                self.wlan.down(&mut out);
                out.settled = None;
                self.apply(out, now);
                if id == CommandId::NetworkDown {
                    return Some((ResultCode::SUCCESS, Some("Success".to_string())));
                }
                self.with_network(AfterUp::Respond, now);
                None
            }
            CommandId::WlanScan => {
                let verbose = match args.first().map(String::as_str) {
                    None => false,
                    Some("-v") => true,
                    Some(_) => return Some((ResultCode::UNKNOWN_OPTION, None)),
                };
                self.buffer_as("wlan_scan");
                let id = self.wlan.next_id();
                let params = self.cfg.wlan.scan;
                self.actions.push_back(Action::Net(NetRequest::Scan {
                    id,
                    ssid: None,
                    bssid: None,
                    params,
                }));
                let deadline = now + wlan::scan_timeout(&params);
                self.pending = Some(Pending::Scan { id, deadline, verbose });
                None
            }
            CommandId::NetworkLookup => {
                let host = vars::unescape_plain(&args[0]);
                // An address answers itself: no lookup, no network needed.
                if let Some(ip) = vars::parse_ipv4(&host) {
                    return Some((ResultCode::SUCCESS, Some(wlan::ip_text(ip))));
                }
                self.with_network(AfterUp::Lookup(host), now);
                None
            }
            CommandId::Ping => {
                let target = match args[0].as_str() {
                    "-g" => PingTarget::Gateway,
                    arg => {
                        let host = vars::unescape_plain(arg);
                        match vars::parse_ipv4(&host) {
                            Some(ip) => PingTarget::Addr(ip),
                            None if host.starts_with('-') => {
                                return Some((ResultCode::UNKNOWN_OPTION, None));
                            }
                            None => PingTarget::Host(host),
                        }
                    }
                };
                self.with_network(AfterUp::Ping(target), now);
                None
            }
            _ => Some((ResultCode::UNKNOWN_COMMAND, None)),
        }
    }

    fn halt(&mut self, action: Action) {
        self.halted = true;
        self.actions.push_back(action);
    }

    fn get(&mut self, args: &[String], now: Instant) -> (ResultCode, Option<String>) {
        let uptime = (now - self.booted_at).as_millis() / 1000;
        self.vars.set_internal(Var::TimeUptime, uptime.to_string().as_bytes());
        let rtc = self.rtc_now(now).max(0);
        self.vars.set_internal(Var::TimeRtc, rtc.to_string().as_bytes());
        if let [only] = args
            && only == "all"
        {
            self.buffer_as("get");
            return (ResultCode::SUCCESS, Some(self.listing((0..VARIABLES.len()).map(VarId))));
        }
        match vars::resolve(args, 0) {
            Some((id, used)) if used == args.len() => {
                (ResultCode::SUCCESS, Some(self.vars.render(id)))
            }
            Some(_) => (ResultCode::TOO_MANY_ARGS, None),
            None => match args {
                [prefix] => match vars::group(prefix) {
                    Some(ids) => {
                        self.buffer_as("get");
                        let ids: Vec<VarId> = ids.collect();
                        (ResultCode::SUCCESS, Some(self.listing(ids.into_iter())))
                    }
                    None => (ResultCode::UNKNOWN_OPTION, None),
                },
                _ => (ResultCode::UNKNOWN_OPTION, None),
            },
        }
    }

    fn listing(&self, ids: impl Iterator<Item = VarId>) -> String {
        let mut body = String::new();
        for id in ids {
            if !body.is_empty() {
                body.push_str("\r\n");
            }
            let _ = write!(body, "{}: {}", id.def().name, self.vars.render(id));
        }
        body
    }

    fn set(&mut self, args: &[String]) -> (ResultCode, Option<String>) {
        let Some((id, used)) = vars::resolve(args, 1) else {
            // A shortcut spread over every word names a variable but leaves no value.
            if vars::resolve(args, 0).is_some_and(|(_, used)| used == args.len()) {
                return (ResultCode::TOO_FEW_ARGS, None);
            }
            return (ResultCode::UNKNOWN_OPTION, None);
        };
        match args.len() - used {
            0 => return (ResultCode::TOO_FEW_ARGS, None),
            1 => {}
            _ => return (ResultCode::TOO_MANY_ARGS, None),
        }
        match self.vars.set(id, &args[used]) {
            Ok(()) => {
                match id.var() {
                    Var::SystemCmdFormat => self.apply_format(),
                    Var::TimeRtc => {
                        let value = self.vars.int(Var::TimeRtc);
                        self.rtc = (value, self.clock);
                        self.vars.set_internal(Var::TimeLastSet, value.to_string().as_bytes());
                    }
                    _ => {}
                }
                self.settings_changed();
                (ResultCode::SUCCESS, Some("Set OK".to_string()))
            }
            Err(SetError::Invalid) => (ResultCode::BAD_ARGS, None),
            Err(SetError::OutOfRange) => (ResultCode::BOUNDS_ERROR, None),
            Err(SetError::ReadOnly) => (ResultCode::UNKNOWN_OPTION, None),
        }
    }

    /// A variable changed: every service reads its settings again.
    fn settings_changed(&mut self) {
        self.cfg = Settings::from_vars(&self.vars);
    }

    /// `time.rtc` now, in epoch seconds (see [`crate::clock`]).
    fn rtc_now(&self, now: Instant) -> i64 {
        let (at_set, set_at) = self.rtc;
        let elapsed = now.as_millis().saturating_sub(set_at.as_millis()) / 1000;
        at_set.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// The stamp `system.cmd.timestamp` puts on log messages now, if any.
    fn timestamp(&self) -> Option<String> {
        let rtc = self.rtc_now(self.clock);
        match self.cfg.console.timestamp {
            Timestamp::Utc => Some(clock::stamp(rtc)),
            Timestamp::Local => {
                Some(clock::stamp(rtc.saturating_add(self.cfg.console.zone_offset)))
            }
            Timestamp::None => None,
        }
    }

    /// `system.cmd.format` sets the four framing variables (protocol-facts §1.2).
    fn apply_format(&mut self) {
        let machine = self.vars.text(Var::SystemCmdFormat) == "machine";
        let (on, off) = (b"1".as_slice(), b"0".as_slice());
        self.vars.set_internal(Var::SystemCmdEcho, if machine { off } else { on });
        self.vars.set_internal(Var::SystemCmdHeaderEnabled, if machine { on } else { off });
        self.vars.set_internal(Var::SystemCmdPromptEnabled, if machine { off } else { on });
        self.vars.set_internal(Var::SystemPrintLevel, if machine { b"0" } else { b"all" });
    }

    fn help(&self, args: &[String]) -> (ResultCode, Option<String>) {
        let width = command::COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut body = String::new();
        let line = |body: &mut String, text: &str| {
            if !body.is_empty() {
                body.push_str("\r\n");
            }
            body.push_str(text);
        };
        match args.first().map(String::as_str) {
            None => {
                line(&mut body, "help commands  : list all commands");
                line(&mut body, "help variables : list all variables");
                line(&mut body, "help <command> : how to use a command");
            }
            Some("commands") => {
                for c in command::COMMANDS {
                    line(&mut body, &format!("{:width$} : {}", c.name, c.short));
                }
            }
            Some("variables") => {
                let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
                for v in VARIABLES {
                    line(&mut body, &format!("{:width$} : {}", v.name, v.short));
                }
            }
            Some(word) => {
                let Some(CommandDef { name, short, usage, summary, .. }) = command::lookup(word)
                else {
                    return (ResultCode::UNKNOWN_COMMAND, None);
                };
                line(&mut body, &format!("{name} ({short})"));
                line(&mut body, &format!("Usage: {usage}"));
                line(&mut body, summary);
            }
        }
        (ResultCode::SUCCESS, Some(body))
    }
}

/// Streams and sockets: the `stream_*`, `tcp_*` and `udp_*` commands and the connection
/// events. Decisions (assumed where no source gives them; see also [`crate::streams`]):
///
/// * Logs: `[Opening: <host>:<port>]`, `[Opened: <handle>]`, `[Open failed]` and
///   `[Closed: <handle>]` at level 1 (status); `Closing: <handle>` at level 3; reasons
///   (`No free stream handles`, `Host not found: …`, `Connect failed: …`) at 2 or 3.
/// * `tcp_client` retry sequence: one attempt, then up to `tcp.client.retries` more, each
///   `tcp.client.retry_period` ms after the previous one failed (refused, or no
///   [`NetEvent::TcpConnected`] within `tcp.client.connect_timeout` ms, after which the
///   attempt's connection is closed). The host is resolved once.
/// * `stream_write <handle> <size>`: `size` must be 1 to `bus.command.rx_bufsize` (0 or not a
///   number: code 7; too big: code 9), checked before the data phase, which then always
///   takes `size` bytes; the handle is checked after it (bad or closed: code 7), so the data
///   never runs as commands. Bytes beyond `size` are command input again. No byte for
///   [`DATA_TIMEOUT`]: code 1, the partial data is dropped. The answer waits for
///   [`NetEvent::Sent`] up to `bus.command.write_timeout` ms: then `Success`, or code 9 when
///   `bus.command.write_check_enabled` (else `Success`: the platform has the data).
/// * `stream_read <handle> <size>`: up to `size` bytes (UDP: of one datagram), raw in the
///   body; empty body (success) when nothing came within `bus.command.read_timeout` ms.
/// * `stream_close` frees the handle at once (it sends [`NetRequest::Close`] and does not wait
///   for [`NetEvent::Closed`]).
/// * `tcp_server start [port]` answers `Success` after [`NetRequest::TcpListen`] (the contract
///   has no success event; a later failure logs and stops the server); `start` while running
///   is code 1. `stop` (also when not running) answers `Success` and closes every TCPS client.
///   More than `tcp.server.max_clients` clients, or no free handle: the new client is closed
///   at once. `tcp.server.idle_timeout` (s, 0 never) closes a client with no data either way.
/// * `udp_server start [port]` answers the UDPS stream's handle, like `udp_client`. `udp_server
///   read <size>` answers `<ip> <port>` of the datagram's sender, CR LF, then the data (empty
///   body when nothing came). Replies (`stream_write` on the UDPS handle) go to the first
///   sender with `udp.server.lock_client`, else to the latest; before any client sent, to
///   `udp.server.remote_host`:`udp.server.remote_port` if both are set (an address), else the
///   write fails (code 1). `udp_client` keeps datagrams from any sender.
impl Module {
    fn local_ip(&self) -> Ipv4 {
        self.wlan.ip().map_or([0; 4], |c| c.address)
    }

    fn stream_command(
        &mut self,
        id: CommandId,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let bad = Some((ResultCode::BAD_ARGS, None));
        match id {
            CommandId::StreamList => {
                self.buffer_as("stream_list");
                Some((ResultCode::SUCCESS, Some(self.streams.list_body())))
            }
            CommandId::StreamPoll => match args.first().map(String::as_str) {
                None | Some("all") => Some((ResultCode::SUCCESS, Some(self.streams.poll_all()))),
                Some(h) => match parse_handle(h).and_then(|h| self.streams.get(h)) {
                    Some(s) => Some((ResultCode::SUCCESS, Some(s.poll().to_string()))),
                    None => bad,
                },
            },
            CommandId::StreamClose => {
                if args[0] == "all" {
                    let handles: Vec<usize> = self.streams.iter().map(|(h, _)| h).collect();
                    for h in handles {
                        self.close_stream(h, now);
                    }
                } else {
                    match parse_handle(&args[0]).filter(|h| self.streams.get(*h).is_some()) {
                        Some(h) => self.close_stream(h, now),
                        None => return bad,
                    }
                }
                Some((ResultCode::SUCCESS, Some("Success".to_string())))
            }
            CommandId::StreamRead => {
                let (Some(h), Some(size)) = (parse_handle(&args[0]), parse_size(&args[1])) else {
                    return bad;
                };
                if self.streams.get(h).is_none() {
                    return bad;
                }
                if self.is_bus_stream(h) {
                    return Some(self.bus_stream_refused(h));
                }
                self.read(h, size, false, now)
            }
            CommandId::StreamWrite => {
                let Some(h) = parse_handle(&args[0]) else { return bad };
                self.write(WriteTarget::Stream(h), &args[1], now)
            }
            CommandId::TcpClient | CommandId::UdpClient => {
                let Some(port) = parse_port(&args[1]) else { return bad };
                let host = vars::unescape_plain(&args[0]);
                if self.streams.network_full() {
                    self.log(console::level::ERROR, "No free stream handles");
                    return Some((ResultCode::FAILED, None));
                }
                self.log(console::level::STATUS, &format!("[Opening: {host}:{port}]"));
                let udp = id == CommandId::UdpClient;
                self.with_network(AfterUp::Open { udp, host, port }, now);
                None
            }
            CommandId::TcpServer => match (args[0].as_str(), args.get(1)) {
                ("start", port) => {
                    let port = match port.map(|p| parse_port(p)) {
                        Some(Some(p)) => p,
                        Some(None) => return bad,
                        None => self.cfg.tcp_server.port,
                    };
                    if self.tcp_server.is_some() {
                        self.log(console::level::ERROR, "TCP server already running");
                        return Some((ResultCode::FAILED, None));
                    }
                    self.with_network(AfterUp::TcpServer(port), now);
                    None
                }
                ("stop", None) => {
                    if let Some(server) = self.tcp_server.take() {
                        let listener = server.listener;
                        self.actions.push_back(Action::Net(NetRequest::TcpUnlisten { listener }));
                        for h in self.streams.handles_of(StreamType::Tcps) {
                            self.close_stream(h, now);
                        }
                        self.log(console::level::INFO, "TCP server stopped");
                    }
                    Some((ResultCode::SUCCESS, Some("Success".to_string())))
                }
                ("stop", Some(_)) => Some((ResultCode::TOO_MANY_ARGS, None)),
                _ => bad,
            },
            CommandId::UdpServer => self.udp_server(args, now),
            _ => Some((ResultCode::UNKNOWN_COMMAND, None)),
        }
    }

    fn udp_server(
        &mut self,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let bad = Some((ResultCode::BAD_ARGS, None));
        let server = self.streams.handles_of(StreamType::Udps).first().copied();
        let (want, sub) = match args[0].as_str() {
            "start" => (1..=2, 0),
            "stop" => (1..=1, 1),
            "read" => (2..=2, 2),
            "write" => (4..=4, 3),
            _ => return bad,
        };
        if args.len() < *want.start() {
            return Some((ResultCode::TOO_FEW_ARGS, None));
        }
        if args.len() > *want.end() {
            return Some((ResultCode::TOO_MANY_ARGS, None));
        }
        match sub {
            0 => {
                let port = match args.get(1).map(|p| parse_port(p)) {
                    Some(Some(p)) => p,
                    Some(None) => return bad,
                    None => self.cfg.udp_server.port,
                };
                if server.is_some() {
                    self.log(console::level::ERROR, "UDP server already running");
                    return Some((ResultCode::FAILED, None));
                }
                if self.streams.network_full() {
                    self.log(console::level::ERROR, "No free stream handles");
                    return Some((ResultCode::FAILED, None));
                }
                self.with_network(AfterUp::UdpServer(port), now);
                None
            }
            1 => {
                if let Some(h) = server {
                    self.close_stream(h, now);
                }
                Some((ResultCode::SUCCESS, Some("Success".to_string())))
            }
            2 => {
                let Some(size) = parse_size(&args[1]) else { return bad };
                let Some(h) = server else {
                    self.log(console::level::ERROR, "UDP server not running");
                    return Some((ResultCode::FAILED, None));
                };
                self.read(h, size, true, now)
            }
            _ => {
                let (Some(ip), Some(port)) = (vars::parse_ipv4(&args[1]), parse_port(&args[2]))
                else {
                    return bad;
                };
                self.write(WriteTarget::UdpClient((ip, port)), &args[3], now)
            }
        }
    }

    /// Opens a client stream to `to` once the network is up and the host resolved.
    fn open_to(&mut self, udp: bool, host: String, to: Endpoint, now: Instant) {
        if udp {
            let conn = self.streams.next_conn();
            self.actions.push_back(Action::Net(NetRequest::UdpOpen { conn, local_port: 0 }));
            let deadline = now + UDP_OPEN_TIMEOUT;
            self.pending =
                Some(Pending::UdpOpen { conn, deadline, kind: StreamType::Udpc, remote: Some(to) });
        } else {
            self.tcp_attempt(host, to, 0, now);
        }
    }

    fn tcp_attempt(&mut self, host: String, to: Endpoint, tries: u32, now: Instant) {
        let conn = self.streams.next_conn();
        let local_port = self.cfg.tcp_client.local_port;
        self.actions.push_back(Action::Net(NetRequest::TcpConnect {
            conn,
            to: to.0,
            port: to.1,
            local_port,
        }));
        let deadline = now + self.cfg.tcp_client.connect_timeout;
        self.pending =
            Some(Pending::Connect { conn, deadline, host, to, tries: tries + 1, waiting: false });
    }

    /// A connect attempt failed: wait and retry, or give up.
    fn tcp_retry(&mut self, host: String, to: Endpoint, tries: u32, now: Instant) {
        if tries > self.cfg.tcp_client.retries {
            self.log(console::level::STATUS, "[Open failed]");
            return self.finish(ResultCode::FAILED, None, now);
        }
        let period = self.cfg.tcp_client.retry_period;
        self.log(console::level::INFO, &format!("Retrying in {} ms", period.as_millis()));
        let deadline = now + period;
        self.pending =
            Some(Pending::Connect { conn: ConnId::NONE, deadline, host, to, tries, waiting: true });
    }

    /// Adds a stream for a connection the platform opened; `None` (and the connection closed)
    /// when no handle is free.
    fn add_stream(&mut self, stream: Stream, now: Instant) -> Option<usize> {
        let conn = stream.conn;
        let mut stream = stream;
        stream.last_activity = now;
        match self.streams.open(stream) {
            Some(h) => {
                self.log(console::level::STATUS, &format!("[Opened: {h}]"));
                Some(h)
            }
            None => {
                self.actions.push_back(Action::Net(NetRequest::Close { conn }));
                self.log(console::level::ERROR, "No free stream handles");
                None
            }
        }
    }

    fn read(
        &mut self,
        handle: usize,
        size: usize,
        with_sender: bool,
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let Some(stream) = self.streams.get(handle) else {
            return Some((ResultCode::BAD_ARGS, None));
        };
        if stream.source.is_some() {
            return self.local_read(handle, size);
        }
        if stream.buffered() > 0 {
            self.answer_read(handle, size, with_sender, now);
            return None;
        }
        let timeout = self.cfg.bus.read_timeout;
        if timeout.as_millis() == 0 {
            return Some((ResultCode::SUCCESS, None));
        }
        let deadline = now + timeout;
        self.pending = Some(Pending::Read { handle, size, deadline, with_sender });
        None
    }

    /// Answers a read with what is buffered (maybe nothing); frees a peer-closed stream once
    /// it is empty.
    fn answer_read(&mut self, handle: usize, size: usize, with_sender: bool, now: Instant) {
        let Some(stream) = self.streams.get_mut(handle) else {
            return self.finish(ResultCode::SUCCESS, None, now);
        };
        let chunk = stream.read(size);
        let cap = self.cfg.bus.rx_bufsize;
        if stream.paused && stream.buffered() < cap / 4 {
            stream.paused = false;
            let conn = stream.conn;
            self.actions.push_back(Action::Net(NetRequest::Flow { conn, accept: true }));
        }
        let Some(stream) = self.streams.get_mut(handle) else {
            return self.finish(ResultCode::SUCCESS, None, now);
        };
        if stream.closed && stream.buffered() == 0 {
            self.streams.remove(handle);
        }
        let mut body = Vec::new();
        if let Some(chunk) = chunk {
            if with_sender {
                let (ip, port) = chunk.from;
                body.extend_from_slice(format!("{} {port}\r\n", wlan::ip_text(ip)).as_bytes());
            }
            body.extend_from_slice(&chunk.data);
        }
        self.finish_bytes(&body, now);
    }

    fn write(
        &mut self,
        target: WriteTarget,
        size: &str,
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let Some(size) = parse_size(size) else { return Some((ResultCode::BAD_ARGS, None)) };
        if size > self.cfg.bus.rx_bufsize {
            return Some((ResultCode::BOUNDS_ERROR, None));
        }
        self.start_data(size, target, now);
        None
    }

    /// Starts a data phase: the command waits for `size` bytes from its origin.
    fn start_data(&mut self, size: usize, target: WriteTarget, now: Instant) {
        let skip_lf = self.ctx == Some(Origin::Serial) && self.serial.take_after_cr();
        let phase = DataPhase::new(size, skip_lf);
        self.pending = Some(Pending::Data { phase, deadline: now + DATA_TIMEOUT, target });
        self.emit(Reply::Data { want: size });
    }

    /// The data phase has all its bytes: send them.
    fn data_complete(&mut self, now: Instant) {
        let Some(Pending::Data { phase, target, .. }) = self.pending.take() else { return };
        let data = phase.into_data();
        if let WriteTarget::File(new) = target {
            return self.create_file(new, &data, now);
        }
        if let WriteTarget::Stream(h) = target
            && self.streams.get(h).is_some_and(|s| s.source.is_some())
        {
            return self.local_write(h, &data, now);
        }
        if let WriteTarget::Stream(h) = target
            && self.is_bus_stream(h)
        {
            let (code, _) = self.bus_stream_refused(h);
            return self.finish(code, None, now);
        }
        let (handle, to) = match target {
            WriteTarget::Stream(h) => match self.streams.get(h) {
                Some(s) if !s.closed => {
                    let to = match s.kind {
                        StreamType::Udpc => s.remote,
                        StreamType::Udps => s.remote.or_else(|| self.udp_server_default()),
                        _ => None,
                    };
                    if s.kind == StreamType::Udps && to.is_none() {
                        self.log(console::level::ERROR, "UDP server: no client to send to");
                        return self.finish(ResultCode::FAILED, None, now);
                    }
                    (h, to)
                }
                _ => return self.finish(ResultCode::BAD_ARGS, None, now),
            },
            WriteTarget::UdpClient(to) => match self.streams.handles_of(StreamType::Udps).first() {
                Some(&h) => (h, Some(to)),
                None => {
                    self.log(console::level::ERROR, "UDP server not running");
                    return self.finish(ResultCode::FAILED, None, now);
                }
            },
            WriteTarget::File(_) => return,
        };
        let Some(stream) = self.streams.get_mut(handle) else { return };
        stream.tx_bytes += data.len() as u64;
        stream.last_activity = now;
        let conn = stream.conn;
        let len = data.len();
        self.actions.push_back(Action::Net(NetRequest::Send { conn, data, to }));
        let deadline = now + self.cfg.bus.write_timeout;
        self.pending = Some(Pending::Write { conn, handle, deadline, len });
    }

    /// `udp.server.remote_host`:`udp.server.remote_port`, when both are set.
    fn udp_server_default(&self) -> Option<Endpoint> {
        self.cfg.udp_server.remote
    }

    /// Closes a stream on the command's behalf and frees its handle.
    fn close_stream(&mut self, handle: usize, now: Instant) {
        let Some(stream) = self.streams.remove(handle) else { return };
        if let Some(Local::FileWrite { name, size, written, .. }) = &stream.source
            && written < size
        {
            self.fs.abort(name);
            let note = format!("File {name}: closed after {written} of {size} bytes, discarded");
            self.log(console::level::ERROR, &note);
        }
        // Closed on purpose: an auto-started client does not reconnect.
        self.autos.retain(|a| {
            stream.source.is_some() || a.phase != AutoPhase::Open { conn: stream.conn }
        });
        if !stream.closed && stream.source.is_none() {
            self.actions.push_back(Action::Net(NetRequest::Close { conn: stream.conn }));
        }
        self.log(console::level::INFO, &format!("Closing: {handle}"));
        self.log(console::level::STATUS, &format!("[Closed: {handle}]"));
        // Only a timer closes a stream while a read waits (idle client): the read ends empty.
        let reading = |p: &Pending| matches!(p, Pending::Read { handle: h, .. } if *h == handle);
        if let Some(origin) = self.owner(reading) {
            self.in_origin(Some(origin), |m| m.finish(ResultCode::SUCCESS, None, now));
        }
    }

    /// A command timer ran out.
    fn timed_out(&mut self, pending: Pending, now: Instant) {
        let (level, note) = match pending {
            Pending::Scan { .. } => (console::level::ERROR, "Scan timed out".to_string()),
            Pending::Lookup { host, then, .. } => {
                self.log(console::level::ERROR, &format!("DNS lookup timed out: {host}"));
                if matches!(then, Then::Open { .. }) {
                    self.log(console::level::STATUS, "[Open failed]");
                }
                return self.finish(ResultCode::FAILED, None, now);
            }
            Pending::Ping { to, .. } => {
                (console::level::ERROR, format!("Ping timed out: {}", wlan::ip_text(to)))
            }
            Pending::Connect { host, to, tries, waiting: true, .. } => {
                return self.tcp_attempt(host, to, tries, now);
            }
            Pending::Connect { conn, host, to, tries, waiting: false, .. } => {
                self.actions.push_back(Action::Net(NetRequest::Close { conn }));
                self.log(console::level::INFO, "Connect timed out");
                return self.tcp_retry(host, to, tries, now);
            }
            Pending::UdpOpen { conn, kind, .. } => {
                self.actions.push_back(Action::Net(NetRequest::Close { conn }));
                if kind == StreamType::Udpc {
                    self.log(console::level::STATUS, "[Open failed]");
                }
                (console::level::ERROR, "UDP open timed out".to_string())
            }
            Pending::Read { .. } => return self.finish(ResultCode::SUCCESS, None, now),
            Pending::Data { phase, .. } => {
                let note = format!("Write aborted: {} bytes missing", phase.missing());
                (console::level::ERROR, note)
            }
            Pending::Write { .. } => {
                if self.cfg.bus.write_check {
                    self.log(console::level::ERROR, "Write not taken in time");
                    return self.finish(ResultCode::BOUNDS_ERROR, None, now);
                }
                return self.finish(ResultCode::SUCCESS, Some("Success"), now);
            }
            Pending::Save | Pending::NetUp(_) | Pending::StoreFiles { .. } => {
                (console::level::ERROR, String::new())
            }
        };
        self.log(level, &note);
        self.finish(ResultCode::FAILED, None, now);
    }

    /// Connection events; `true` when the event was about a connection.
    fn stream_event(&mut self, event: &NetEvent, now: Instant) -> bool {
        if self.auto_event(event, now) {
            return true;
        }
        match event {
            NetEvent::TcpConnected { conn, local_port } => {
                match self.pending.clone() {
                    Some(Pending::Connect { conn: want, to, waiting: false, .. })
                        if want == *conn =>
                    {
                        let local = (self.local_ip(), *local_port);
                        let stream = Stream::new(StreamType::Tcpc, *conn, local, Some(to));
                        match self.add_stream(stream, now) {
                            Some(h) => self.finish(ResultCode::SUCCESS, Some(&h.to_string()), now),
                            None => {
                                self.log(console::level::STATUS, "[Open failed]");
                                self.finish(ResultCode::FAILED, None, now);
                            }
                        }
                    }
                    // Late (the attempt was given up): not wanted.
                    _ => self.actions.push_back(Action::Net(NetRequest::Close { conn: *conn })),
                }
            }
            NetEvent::UdpOpened { conn, local_port } => match self.pending.clone() {
                Some(Pending::UdpOpen { conn: want, kind, remote, .. }) if want == *conn => {
                    let local = (self.local_ip(), *local_port);
                    match self.add_stream(Stream::new(kind, *conn, local, remote), now) {
                        Some(h) => self.finish(ResultCode::SUCCESS, Some(&h.to_string()), now),
                        None => {
                            if kind == StreamType::Udpc {
                                self.log(console::level::STATUS, "[Open failed]");
                            }
                            self.finish(ResultCode::FAILED, None, now);
                        }
                    }
                }
                _ => self.actions.push_back(Action::Net(NetRequest::Close { conn: *conn })),
            },
            NetEvent::TcpAccepted { listener, conn, peer } => {
                let close = Action::Net(NetRequest::Close { conn: *conn });
                let Some(server) = self.tcp_server.filter(|s| s.listener == *listener) else {
                    self.actions.push_back(close);
                    return true;
                };
                let clients = self.streams.handles_of(StreamType::Tcps).len();
                // In STREAM mode a server takes one client (chapter, "Stream Limitations").
                let max = if self.bus.configured { 1 } else { self.cfg.tcp_server.max_clients };
                if clients >= max {
                    self.actions.push_back(close);
                    self.log(console::level::INFO, "TCP server: too many clients");
                    return true;
                }
                let local = (self.local_ip(), server.port);
                let stream = Stream::new(StreamType::Tcps, *conn, local, Some(*peer));
                if self.add_stream(stream, now).is_some() && server.auto {
                    self.claim_bus(*conn);
                }
            }
            NetEvent::Received { conn, data, from } => {
                let Some(h) = self.streams.by_conn(*conn) else { return true };
                if self.bus.streaming && self.bus.conn == Some(*conn) {
                    // Straight to the bus; a UDP server still learns whom to answer.
                    let lock = self.cfg.udp_server.lock_client;
                    self.streams.received(h, *from, &[], 0, lock, now);
                    if let Some(s) = self.streams.get_mut(h) {
                        s.rx_bytes += data.len() as u64;
                    }
                    self.serial.raw(data);
                    return true;
                }
                let cap = self.cfg.bus.rx_bufsize;
                let lock = self.cfg.udp_server.lock_client;
                let dropped = self.streams.received(h, *from, data, cap, lock, now);
                if dropped > 0 {
                    let note = format!("Stream {h}: receive buffer full, {dropped} bytes dropped");
                    self.log(console::level::INFO, &note);
                }
                if let Some(s) = self.streams.get_mut(h)
                    && !s.kind.is_udp()
                    && !s.paused
                    && s.buffered() >= cap / 2
                {
                    s.paused = true;
                    self.actions
                        .push_back(Action::Net(NetRequest::Flow { conn: *conn, accept: false }));
                }
                if let Some(Pending::Read { handle, size, with_sender, .. }) = self.pending.clone()
                    && handle == h
                    && self.streams.get(h).is_some_and(|s| s.buffered() > 0)
                {
                    self.answer_read(h, size, with_sender, now);
                }
            }
            NetEvent::Sent { conn, len } => {
                if let Some(Pending::Write { conn: want, len: asked, .. }) = &self.pending
                    && want == conn
                {
                    if len < asked {
                        let line = format!("Write failed: {len} of {asked} bytes sent");
                        self.log(console::level::ERROR, &line);
                        self.finish(ResultCode::FAILED, None, now);
                    } else {
                        self.finish(ResultCode::SUCCESS, Some("Success"), now);
                    }
                }
            }
            NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. } => {
                self.conn_ended(event, *conn, now);
            }
            _ => return false,
        }
        true
    }

    /// A connection failed or closed: a connect attempt, a listener, a UDP open or a stream.
    fn conn_ended(&mut self, event: &NetEvent, conn: ConnId, now: Instant) {
        // A command waiting on this connection is answered in its origin.
        let owner = self.event_owner(event);
        if owner.is_some() && owner != self.ctx {
            return self.in_origin(owner, |m| m.conn_ended(event, conn, now));
        }
        let reason = match event {
            NetEvent::ConnFailed { reason, .. } => Some(*reason),
            _ => None,
        };
        match self.pending.clone() {
            Some(Pending::Connect { conn: want, host, to, tries, waiting: false, .. })
                if want == conn =>
            {
                let why = reason.map_or("closed", conn_failure_text);
                self.log(console::level::INFO, &format!("Connect failed: {why}"));
                return self.tcp_retry(host, to, tries, now);
            }
            Some(Pending::UdpOpen { conn: want, kind, .. }) if want == conn => {
                let why = reason.map_or("closed", conn_failure_text);
                self.log(console::level::ERROR, &format!("UDP open failed: {why}"));
                if kind == StreamType::Udpc {
                    self.log(console::level::STATUS, "[Open failed]");
                }
                return self.finish(ResultCode::FAILED, None, now);
            }
            Some(Pending::Write { conn: want, .. }) if want == conn => {
                self.finish(ResultCode::FAILED, None, now);
            }
            _ => {}
        }
        if let Some(server) = self.tcp_server
            && server.listener == conn
        {
            let why = reason.map_or("closed", conn_failure_text);
            self.log(console::level::ERROR, &format!("TCP server: listen failed: {why}"));
            self.tcp_server = None;
            return;
        }
        let Some(h) = self.streams.by_conn(conn) else { return };
        let Some(stream) = self.streams.get_mut(h) else { return };
        if stream.closed {
            return;
        }
        stream.closed = true;
        let empty = stream.buffered() == 0;
        if empty {
            self.streams.remove(h);
        }
        self.log(console::level::STATUS, &format!("[Closed: {h}]"));
        if let Some(Pending::Read { handle, size, with_sender, .. }) = self.pending.clone()
            && handle == h
        {
            self.answer_read(h, size, with_sender, now);
        }
    }

    /// When the next TCP server client becomes idle (`tcp.server.idle_timeout`, s; 0 never).
    fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.cfg.tcp_server.idle_timeout;
        if idle.as_millis() == 0 {
            return None;
        }
        self.streams
            .iter()
            .filter(|(_, s)| s.kind == StreamType::Tcps && !s.closed)
            .map(|(_, s)| s.last_activity + idle)
            .min()
    }

    fn close_idle_clients(&mut self, now: Instant) {
        let idle = self.cfg.tcp_server.idle_timeout;
        if idle.as_millis() == 0 {
            return;
        }
        let idle: Vec<usize> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                s.kind == StreamType::Tcps && !s.closed && s.last_activity + idle <= now
            })
            .map(|(h, _)| h)
            .collect();
        for h in idle {
            self.log(console::level::INFO, &format!("TCP server: client {h} idle"));
            self.close_stream(h, now);
        }
    }
}

/// Auto start (`tcp.client.auto_start`, `tcp.server.auto_start`, `udp.client.auto_start`,
/// `udp.server.auto_start`). Decisions (assumed):
///
/// * They run each time the network comes up (after the Network Up Sequence reaches step 7),
///   in the background: the console stays free and no command is answered; progress shows
///   only in logs (`[Opening: …]`, `[Opened: N]`, `[Open failed]`).
/// * Each runs on the interface its `*.auto_interface` names; `default` means
///   `network.default_interface`. Only the WLAN interface exists here, so one set to the soft
///   AP does not start when the WLAN comes up (log `<prefix>: auto start waits for softap`).
/// * The TCP client needs `tcp.client.remote_host` and a non-zero `remote_port`; it runs the
///   same connect retry sequence as `tcp_client`. When that sequence fails, or the open
///   stream drops (peer close or reset), a new round starts after `tcp.client.retry_period`
///   ms, up to `tcp.client.auto_retries` rounds (0: none, 255: forever); the round counter
///   resets when the network goes down. Closing the stream with `stream_close` ends it (no
///   reconnect).
/// * The UDP client needs `udp.client.remote_host` (its `remote_port` defaults to 3000); the
///   UDP server opens on `udp.server.port`. With `udp.client.auto_retry` the UDP client looks
///   the name up again every second for as long as the network stays up when it does not
///   resolve (protocol-facts: "retries every 1.0 s, only detects DNS failure"); the first
///   failure is logged (`Host not found: …`, `[Open failed]`, `Retrying every 1000 ms`), the
///   retries are silent until one opens the stream (`[Opened: N]`). Any other failure, and
///   every failure without `auto_retry` or of the UDP server, ends it.
/// * When the network goes down every network stream is closed (`[Closed: N]`, a
///   [`NetRequest::Close`] to the platform), the TCP server stops listening and the
///   background openers are dropped.
impl Module {
    /// Whether a service's auto start runs on the WLAN interface (`prefix` names the service
    /// in the log line when it waits for another interface).
    fn auto_on_wlan(&mut self, prefix: &str, auto: &AutoStart) -> bool {
        let iface = auto.interface.resolve(self.cfg.default_interface);
        let wlan = iface == Interface::Wlan;
        if !wlan && auto.enabled {
            let name = iface.name();
            self.log(console::level::INFO, &format!("{prefix}: auto start waits for {name}"));
        }
        wlan
    }

    fn network_came_up(&mut self, now: Instant) {
        let tcps = self.cfg.tcp_server.auto.clone();
        if tcps.enabled && self.tcp_server.is_none() && self.auto_on_wlan("tcp.server", &tcps) {
            self.start_tcp_server(self.cfg.tcp_server.port, true);
        }
        let has_udps = !self.streams.handles_of(StreamType::Udps).is_empty();
        let udps = self.cfg.udp_server.auto.clone();
        if udps.enabled && !has_udps && self.auto_on_wlan("udp.server", &udps) {
            self.auto_begin(StreamType::Udps, String::new(), self.cfg.udp_server.port, now);
        }
        let clients = [
            ("udp.client", StreamType::Udpc, self.cfg.udp_client.auto.clone()),
            ("tcp.client", StreamType::Tcpc, self.cfg.tcp_client.auto.clone()),
        ];
        for (prefix, kind, auto) in clients {
            if auto.enabled
                && !auto.host.is_empty()
                && auto.port != 0
                && self.auto_on_wlan(prefix, &auto)
            {
                self.auto_begin(kind, auto.host, auto.port, now);
            }
        }
    }

    fn network_went_down(&mut self, now: Instant) {
        self.autos.clear();
        if let Some(server) = self.tcp_server.take() {
            let listener = server.listener;
            self.actions.push_back(Action::Net(NetRequest::TcpUnlisten { listener }));
        }
        let open: Vec<ConnId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.kind.is_network() && !s.closed)
            .map(|(_, s)| s.conn)
            .collect();
        for conn in open {
            self.actions.push_back(Action::Net(NetRequest::Close { conn }));
            self.conn_ended(&NetEvent::Closed { conn }, conn, now);
        }
    }

    fn start_tcp_server(&mut self, port: u16, auto: bool) {
        let listener = self.streams.next_conn();
        self.actions.push_back(Action::Net(NetRequest::TcpListen { listener, port }));
        self.tcp_server = Some(TcpServer { listener, port, auto });
        self.log(console::level::INFO, &format!("TCP server listening on port {port}"));
    }

    /// Starts (or restarts, for a new round) a background opener.
    fn auto_begin(&mut self, kind: StreamType, host: String, port: u16, now: Instant) {
        let auto = Auto {
            kind,
            host,
            port,
            to: None,
            tries: 0,
            rounds: 0,
            phase: AutoPhase::Wait { until: now, next_round: false },
        };
        self.autos.push(auto);
        let i = self.autos.len() - 1;
        self.auto_start_round(i, now);
    }

    /// Resolves (clients with a name) or goes straight to connecting / opening.
    fn auto_start_round(&mut self, i: usize, now: Instant) {
        let auto = &mut self.autos[i];
        auto.tries = 0;
        if auto.kind == StreamType::Udps {
            return self.auto_connect(i, now);
        }
        let (host, port) = (auto.host.clone(), auto.port);
        if !self.auto_quiet(i) {
            self.log(console::level::STATUS, &format!("[Opening: {host}:{port}]"));
        }
        match vars::parse_ipv4(&host) {
            Some(ip) => {
                self.autos[i].to = Some((ip, port));
                self.auto_connect(i, now);
            }
            None => {
                let id = self.wlan.next_id();
                self.actions.push_back(Action::Net(NetRequest::Resolve { id, name: host }));
                let timeout = self.cfg.dns.timeout.as_millis();
                let deadline = now + Duration::from_millis(timeout);
                self.autos[i].phase = AutoPhase::Resolve { id, deadline };
            }
        }
    }

    /// One connect attempt (TCP) or the socket open (UDP).
    fn auto_connect(&mut self, i: usize, now: Instant) {
        let conn = self.streams.next_conn();
        let auto = &mut self.autos[i];
        match (auto.kind, auto.to) {
            (StreamType::Tcpc, Some(to)) => {
                auto.tries += 1;
                let local_port = self.cfg.tcp_client.local_port;
                let timeout = self.cfg.tcp_client.connect_timeout;
                let request = NetRequest::TcpConnect { conn, to: to.0, port: to.1, local_port };
                self.actions.push_back(Action::Net(request));
                let deadline = now + timeout;
                self.autos[i].phase = AutoPhase::Connect { conn, deadline };
            }
            (kind, _) => {
                let local_port = if kind == StreamType::Udps { auto.port } else { 0 };
                self.actions.push_back(Action::Net(NetRequest::UdpOpen { conn, local_port }));
                let deadline = now + UDP_OPEN_TIMEOUT;
                auto.phase = AutoPhase::UdpOpen { conn, deadline };
            }
        }
    }

    /// An attempt failed: the next attempt of the retry sequence, a new round, or the end.
    fn auto_failed(&mut self, i: usize, now: Instant) {
        let auto = &self.autos[i];
        let period = self.cfg.tcp_client.retry_period;
        if auto.kind == StreamType::Tcpc
            && matches!(auto.phase, AutoPhase::Connect { .. })
            && auto.tries <= self.cfg.tcp_client.retries
        {
            self.autos[i].phase = AutoPhase::Wait { until: now + period, next_round: false };
            return;
        }
        let kind = auto.kind;
        let dns_failed = matches!(auto.phase, AutoPhase::Resolve { .. });
        let quiet = self.auto_quiet(i);
        if kind != StreamType::Udps && !quiet {
            self.log(console::level::STATUS, "[Open failed]");
        }
        if kind == StreamType::Udpc && dns_failed && self.cfg.udp_client.auto_retry {
            if !quiet {
                self.log(console::level::INFO, "Retrying every 1000 ms");
            }
            let auto = &mut self.autos[i];
            auto.rounds = auto.rounds.saturating_add(1);
            auto.phase = AutoPhase::Wait { until: now + AUTO_RETRY, next_round: true };
            return;
        }
        self.auto_round_over(i, now);
    }

    /// A UDP client retrying its lookup (`udp.client.auto_retry`) after the first failure
    /// says nothing until it opens: the first failure was logged in full, and four lines a
    /// second for as long as the name does not resolve would bury everything else.
    fn auto_quiet(&self, i: usize) -> bool {
        let auto = &self.autos[i];
        auto.kind == StreamType::Udpc && auto.rounds > 0
    }

    /// The retry sequence failed or the stream dropped: another round, or the end.
    fn auto_round_over(&mut self, i: usize, now: Instant) {
        let auto = &self.autos[i];
        let limit = self.cfg.tcp_client.auto_retries;
        if auto.kind == StreamType::Tcpc && (limit == 255 || auto.rounds < limit) {
            let period = self.cfg.tcp_client.retry_period;
            let auto = &mut self.autos[i];
            auto.rounds += 1;
            auto.phase = AutoPhase::Wait { until: now + period, next_round: true };
        } else {
            self.autos.remove(i);
        }
    }

    /// Events for the background openers; `true` when one took it.
    fn auto_event(&mut self, event: &NetEvent, now: Instant) -> bool {
        let find =
            |autos: &[Auto], f: &dyn Fn(&AutoPhase) -> bool| autos.iter().position(|a| f(&a.phase));
        match event {
            NetEvent::Resolved { id, address } => {
                let Some(i) = find(
                    &self.autos,
                    &|p| matches!(p, AutoPhase::Resolve { id: w, .. } if w == id),
                ) else {
                    return false;
                };
                match address {
                    Some(ip) => {
                        self.autos[i].to = Some((*ip, self.autos[i].port));
                        self.auto_connect(i, now);
                    }
                    None => {
                        let host = self.autos[i].host.clone();
                        if !self.auto_quiet(i) {
                            self.log(console::level::ERROR, &format!("Host not found: {host}"));
                        }
                        self.auto_failed(i, now);
                    }
                }
            }
            NetEvent::TcpConnected { conn, local_port }
            | NetEvent::UdpOpened { conn, local_port } => {
                let c = *conn;
                let Some(i) = self.autos.iter().position(|a| a.phase.attempt() == Some(c)) else {
                    return false;
                };
                let auto = self.autos[i].clone();
                let local = (self.local_ip(), *local_port);
                let remote = if auto.kind == StreamType::Udps { None } else { auto.to };
                match self.add_stream(Stream::new(auto.kind, c, local, remote), now) {
                    Some(_) if auto.kind == StreamType::Tcpc => {
                        self.autos[i].phase = AutoPhase::Open { conn: c };
                        self.claim_bus(c);
                    }
                    Some(_) => {
                        self.autos.remove(i);
                        self.claim_bus(c);
                    }
                    None => self.auto_failed(i, now),
                }
            }
            NetEvent::ConnFailed { conn, .. } | NetEvent::Closed { conn } => {
                let c = *conn;
                if let Some(i) = self.autos.iter().position(|a| a.phase.attempt() == Some(c)) {
                    if let NetEvent::ConnFailed { reason, .. } = event {
                        let why = conn_failure_text(*reason);
                        self.log(console::level::INFO, &format!("Connect failed: {why}"));
                    }
                    self.auto_failed(i, now);
                    return true;
                }
                // The auto client's stream dropped: the stream table handles it, then maybe
                // a new round.
                if let Some(i) = find(&self.autos, &|p| *p == AutoPhase::Open { conn: c }) {
                    self.auto_round_over(i, now);
                }
                return false;
            }
            _ => return false,
        }
        true
    }

    fn auto_tick(&mut self, now: Instant) {
        while let Some(i) = self.autos.iter().position(|a| a.deadline().is_some_and(|d| d <= now)) {
            match self.autos[i].phase.clone() {
                AutoPhase::Resolve { .. } => {
                    let host = self.autos[i].host.clone();
                    if !self.auto_quiet(i) {
                        self.log(console::level::ERROR, &format!("DNS lookup timed out: {host}"));
                    }
                    self.auto_failed(i, now);
                }
                AutoPhase::Connect { conn, .. } | AutoPhase::UdpOpen { conn, .. } => {
                    self.actions.push_back(Action::Net(NetRequest::Close { conn }));
                    self.log(console::level::INFO, "Connect timed out");
                    self.auto_failed(i, now);
                }
                AutoPhase::Wait { next_round: true, .. } => self.auto_start_round(i, now),
                AutoPhase::Wait { next_round: false, .. } => self.auto_connect(i, now),
                AutoPhase::Open { .. } => {}
            }
        }
    }
}

/// Files and the local streams: `file_create`, `file_open`, `file_delete`, `ls`, FILE and CMD
/// streams (chapter, "Network Connections and Streams": streams are associated with open files
/// and with the command buffering feature; protocol-facts §1.5, §3). The file system itself
/// and its limits are in [`crate::fs`]. Decisions (assumed where no source gives them):
///
/// * `file_create [-u] [-e] [-o] <name> <size> [<version> [<type> [<crc>]]]`. Arguments that
///   do not parse are refused at once, as `stream_write` refuses a bad size: unknown option
///   code 6; size 0 or not a number, bad version, type or CRC code 7; a size over
///   [`fs::CAPACITY`] code 9. Without `-o` a data phase follows, exactly as for
///   `stream_write` (the same [`DATA_TIMEOUT`]: a short write is aborted with code 1 and
///   nothing is created); the name and space are checked after it, so data that follows a
///   well-formed command never runs as commands (after a refused one it does, as after a
///   refused `stream_write`). With `-o` everything is checked at once and the answer is the handle of a
///   FILE stream opened for writing (log `[Opened: N]`); `stream_write` fills it, and the
///   write that completes the file answers `Success` once the file is stored. Writing past
///   the size: code 9, nothing written. Closing the stream before the file is complete
///   discards it (logged). The stream stays open after the file is complete until
///   `stream_close`.
/// * File errors are logged as `File <name>: <reason>`; a bad name is code 7 (for every
///   file command); a name taken, a missing file or a CRC mismatch code 1; no space or too
///   many files code 9.
/// * A change the platform fails to store is undone and answers code 1 (`File store
///   failed: …`); a file completed through a `-o` stream is then discarded and the stream
///   closed. When the stored files could not be read at boot, every file change answers
///   code 1 until `factory_reset` erases the store (reading and listing still work).
/// * `file_open <name>` answers the handle of a FILE stream for reading (log `[Opened: N]`);
///   `stream_read` answers at once up to `<size>` bytes from the position (at most
///   `bus.command.rx_bufsize` per read; an empty body at the end). Writing to it, or to a CMD
///   stream: code 1, logged; the data phase is still taken off the bus first.
/// * `file_delete` of an open file (for reading or being written): code 1, logged.
/// * Each change of the files (created, deleted) is stored by the platform
///   ([`Action::StoreFiles`]) before the command answers, so files survive a reboot or a
///   power cut once the answer is out. `factory_reset` erases them too (the platform erases
///   the stored image), so a factory-reset module has no user files.
/// * `system.cmd.buffered`: `help`, `ls`, `stream_list`, `wlan_scan`, `get all` and group
///   getters, when they succeed, open a CMD stream holding their response text and answer
///   `<handle> <size>` (size in bytes) instead; no log line. Errors answer as usual. No free
///   local handle: code 1, `No free stream handles`.
/// * STREAM mode does not support FILE (chapter): when the module booted with
///   `bus.mode stream`, `file_open` and `file_create -o` answer code 1 with the log
///   `FILE streams are not supported in STREAM mode` (in command mode after break-in);
///   `file_create` without `-o`, `file_delete` and `ls` open no stream and work. A FILE stream
///   is never the streaming stream: only auto-started network streams claim the bus.
impl Module {
    /// Marks the command being run as answering through a CMD stream, when buffering is on.
    fn buffer_as(&mut self, command: &'static str) {
        if self.cfg.console.buffered {
            self.buffer = Some(command);
        }
    }

    /// Answers `<handle> <size>` of a CMD stream holding `text`.
    fn respond_buffered(&mut self, command: &'static str, text: &str) {
        let data = text.as_bytes().to_vec();
        let size = data.len();
        let stream = Stream::local(Local::Cmd { command: command.to_string(), data, pos: 0 });
        match self.streams.open(stream) {
            Some(h) => self.respond(ResultCode::SUCCESS, Some(&format!("{h} {size}"))),
            None => {
                self.log(console::level::ERROR, "No free stream handles");
                self.respond(ResultCode::FAILED, None);
            }
        }
    }

    /// Logs a file error and gives its result code.
    fn file_failed(&mut self, name: &str, e: FsError) -> ResultCode {
        self.log(console::level::ERROR, &format!("File {name}: {e}"));
        match e {
            FsError::BadName => ResultCode::BAD_ARGS,
            FsError::TooManyFiles | FsError::NoSpace { .. } | FsError::TooLong { .. } => {
                ResultCode::BOUNDS_ERROR
            }
            FsError::Exists | FsError::NotFound | FsError::BadCrc { .. } => ResultCode::FAILED,
        }
    }

    /// STREAM mode does not support FILE streams.
    fn file_stream_refused(&mut self) -> bool {
        if self.bus.configured {
            self.log(console::level::ERROR, "FILE streams are not supported in STREAM mode");
        }
        self.bus.configured
    }

    /// Hands the files to the platform; the command answers `body` once they are stored,
    /// or fails and `before` comes back (see [`Module::files_stored`]).
    fn store_files(&mut self, body: &str, before: FileSystem, stream: Option<(usize, usize)>) {
        self.actions.push_back(Action::StoreFiles(self.fs.encode()));
        self.files_before = Some((before, stream));
        self.pending = Some(Pending::StoreFiles { body: body.to_string() });
    }

    /// Refuses a file change while the stored files could not be loaded; `true` if refused.
    fn files_refused(&mut self) -> bool {
        let Some(why) = self.files_locked.clone() else { return false };
        self.log(console::level::ERROR, &format!("Files: {why}; factory_reset erases them"));
        true
    }

    /// A name `file_open`/`file_delete` can look up: a bad one is code 7, like `file_create`.
    fn valid_file_name(&mut self, name: &str) -> bool {
        let valid = fs::valid_name(name);
        if !valid {
            self.file_failed(name, FsError::BadName);
        }
        valid
    }

    /// Opens a local stream and logs `[Opened: N]`; `None` (logged) when no handle is free.
    fn open_local(&mut self, local: Local) -> Option<usize> {
        match self.streams.open(Stream::local(local)) {
            Some(h) => {
                self.log(console::level::STATUS, &format!("[Opened: {h}]"));
                Some(h)
            }
            None => {
                self.log(console::level::ERROR, "No free stream handles");
                None
            }
        }
    }

    /// Whether a FILE stream has `name` open.
    fn file_is_open(&self, name: &str) -> bool {
        self.streams.iter().any(|(_, s)| match &s.source {
            Some(Local::FileRead { name: n, .. } | Local::FileWrite { name: n, .. }) => n == name,
            _ => false,
        })
    }

    fn file_command(
        &mut self,
        id: CommandId,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let failed = Some((ResultCode::FAILED, None));
        match id {
            CommandId::Ls => {
                let verbose = match args.first().map(String::as_str) {
                    None => false,
                    Some("-v") => true,
                    Some(_) => return Some((ResultCode::UNKNOWN_OPTION, None)),
                };
                self.buffer_as("ls");
                Some((ResultCode::SUCCESS, Some(self.fs.list(verbose))))
            }
            CommandId::FileOpen => {
                let name = vars::unescape_plain(&args[0]);
                if !self.valid_file_name(&name) {
                    return Some((ResultCode::BAD_ARGS, None));
                }
                if self.file_stream_refused() {
                    return failed;
                }
                let Some(file) = self.fs.get(&name) else {
                    let code = self.file_failed(&name, FsError::NotFound);
                    return Some((code, None));
                };
                let (label, size) = (file.label(), file.size());
                match self.open_local(Local::FileRead { name, label, size, pos: 0 }) {
                    Some(h) => Some((ResultCode::SUCCESS, Some(h.to_string()))),
                    None => failed,
                }
            }
            CommandId::FileDelete => {
                let name = vars::unescape_plain(&args[0]);
                if !self.valid_file_name(&name) {
                    return Some((ResultCode::BAD_ARGS, None));
                }
                if self.files_refused() {
                    return failed;
                }
                if self.file_is_open(&name) {
                    self.log(console::level::ERROR, &format!("File {name}: file is open"));
                    return failed;
                }
                let before = self.fs.clone();
                if let Err(e) = self.fs.delete(&name) {
                    let code = self.file_failed(&name, e);
                    return Some((code, None));
                }
                self.store_files("Success", before, None);
                None
            }
            _ => self.file_create(args, now),
        }
    }

    fn file_create(
        &mut self,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let bad = Some((ResultCode::BAD_ARGS, None));
        let (mut flags, mut open) = (0, false);
        let mut rest = Vec::new();
        for arg in args {
            match arg.as_str() {
                "-u" if rest.is_empty() => flags |= fs::FLAG_UNPROTECTED,
                "-e" if rest.is_empty() => flags |= fs::FLAG_ESSENTIAL,
                "-o" if rest.is_empty() => open = true,
                flag if flag.starts_with('-') && rest.is_empty() => {
                    return Some((ResultCode::UNKNOWN_OPTION, None));
                }
                _ => rest.push(arg.as_str()),
            }
        }
        let (name, size, version, kind, crc) = match rest.as_slice() {
            [] | [_] => return Some((ResultCode::TOO_FEW_ARGS, None)),
            [name, size, more @ ..] if more.len() <= 3 => {
                (*name, *size, more.first(), more.get(1), more.get(2))
            }
            _ => return Some((ResultCode::TOO_MANY_ARGS, None)),
        };
        let Some(size) = parse_size(size) else { return bad };
        let version = match version.map(|v| Version::parse(v)) {
            None => Version::DEFAULT,
            Some(Some(v)) => v,
            Some(None) => return bad,
        };
        let kind = match kind.map(|k| fs::parse_number(k).and_then(|k| u8::try_from(k).ok())) {
            None => fs::DEFAULT_TYPE,
            Some(Some(k)) => k,
            Some(None) => return bad,
        };
        let crc = match crc.map(|c| fs::parse_number(c).and_then(|c| u16::try_from(c).ok())) {
            None => None,
            Some(Some(c)) => Some(c),
            Some(None) => return bad,
        };
        let name = vars::unescape_plain(name);
        if size > fs::CAPACITY {
            let code =
                self.file_failed(&name, FsError::NoSpace { need: size, free: self.fs.free() });
            return Some((code, None));
        }
        let new = NewFile { name, size, version, kind, flags, crc };
        if !open {
            self.start_data(size, WriteTarget::File(new), now);
            return None;
        }
        if self.file_stream_refused() || self.files_refused() {
            return Some((ResultCode::FAILED, None));
        }
        let name = new.name.clone();
        let version = new.version;
        if let Err(e) = self.fs.begin(new) {
            let code = self.file_failed(&name, e);
            return Some((code, None));
        }
        let label = format!("{name}-{version}");
        match self.open_local(Local::FileWrite { name: name.clone(), label, size, written: 0 }) {
            Some(h) => Some((ResultCode::SUCCESS, Some(h.to_string()))),
            None => {
                self.fs.abort(&name);
                Some((ResultCode::FAILED, None))
            }
        }
    }

    /// The data phase of `file_create` (no `-o`) is complete.
    fn create_file(&mut self, new: NewFile, data: &[u8], now: Instant) {
        let name = new.name.clone();
        if self.files_refused() {
            return self.finish(ResultCode::FAILED, None, now);
        }
        let before = self.fs.clone();
        match self.fs.create(new, data) {
            Ok(()) => self.store_files("Success", before, None),
            Err(e) => {
                let code = self.file_failed(&name, e);
                self.finish(code, None, now);
            }
        }
    }

    /// `stream_write` to a local stream, after its data phase.
    fn local_write(&mut self, handle: usize, data: &[u8], now: Instant) {
        let Some(stream) = self.streams.get_mut(handle) else { return };
        let Some(Local::FileWrite { name, written, size, .. }) = &mut stream.source else {
            let what = if stream.kind == StreamType::Cmd {
                "a command response"
            } else {
                "opened for reading"
            };
            self.log(console::level::ERROR, &format!("Stream {handle}: {what}, not writable"));
            return self.finish(ResultCode::FAILED, None, now);
        };
        let name = name.clone();
        let written_before = *written;
        // Only the write that completes the file changes what is stored.
        let before = (written_before + data.len() == *size).then(|| self.fs.clone());
        match self.fs.append(&name, data) {
            Ok(complete) => {
                *written += data.len();
                stream.tx_bytes += data.len() as u64;
                if let (true, Some(before)) = (complete, before) {
                    self.store_files("Success", before, Some((handle, written_before)));
                } else {
                    self.finish(ResultCode::SUCCESS, Some("Success"), now);
                }
            }
            Err(e) => {
                let code = self.file_failed(&name, e);
                if matches!(e, FsError::BadCrc { .. }) {
                    // The file is gone: so is its stream (nothing left to discard or log).
                    if let Some(Stream {
                        source: Some(Local::FileWrite { written, size, .. }),
                        ..
                    }) = self.streams.get_mut(handle)
                    {
                        *written = *size;
                    }
                    self.close_stream(handle, now);
                }
                self.finish(code, None, now);
            }
        }
    }

    /// `stream_read` on a local stream: answers at once.
    fn local_read(&mut self, handle: usize, size: usize) -> Option<(ResultCode, Option<String>)> {
        let size = size.min(self.cfg.bus.rx_bufsize);
        let Some(stream) = self.streams.get_mut(handle) else {
            return Some((ResultCode::BAD_ARGS, None));
        };
        let body = match &mut stream.source {
            Some(Local::FileRead { name, pos, .. }) => {
                let data = self.fs.get(name).map_or(&[][..], |f| f.data());
                let from = (*pos).min(data.len());
                let to = from + size.min(data.len() - from);
                *pos = to;
                data[from..to].to_vec()
            }
            Some(Local::Cmd { data, pos, .. }) => {
                let from = (*pos).min(data.len());
                let to = from + size.min(data.len() - from);
                *pos = to;
                data[from..to].to_vec()
            }
            _ => {
                let line = format!("Stream {handle}: opened for writing, not readable");
                self.log(console::level::ERROR, &line);
                return Some((ResultCode::FAILED, None));
            }
        };
        if let Some(stream) = self.streams.get_mut(handle) {
            stream.rx_bytes += body.len() as u64;
        }
        self.respond_bytes(ResultCode::SUCCESS, &body);
        None
    }
}

/// Serial STREAM mode (chapter, "Serial STREAM Mode"; protocol-facts §1.6). Decisions (assumed):
///
/// * `bus.mode` is read at boot (`set` + `save` + `reboot`). The banner and `[Ready]` print,
///   then the bus streams: no prompt, no echo, no logs.
/// * The first stream an auto start opens (`tcp.client`, `udp.client`, `udp.server`, or the
///   first client of an auto-started TCP server) streams to the bus; when it closes, the next
///   auto-started stream to open takes over. Meanwhile bus bytes are dropped.
/// * Bus bytes are sent when `bus.stream.flush_count` are waiting, or `bus.stream.flush_time`
///   ms after the first waiting byte (after the latest with `bus.stream.flush_time_reset`);
///   UDP clients send to their remote, the UDP server to its reply target (see `udp_server`).
///   Received data goes to the bus as it comes (not through the receive buffer).
/// * Break-in: `bus.stream.cmd_seq` (empty: disabled) arriving after at least 3 s without a
///   bus byte switches to command mode (log `[Command mode]`); the bytes of the sequence are
///   not sent. A partial match is held back until the next byte decides it. `exit` answers
///   `Success` and returns to streaming; data that came meanwhile is written out first.
///   `exit` when not booted in STREAM mode: code 1.
/// * The streaming stream is listed by `stream_list` but `stream_read`/`stream_write` on it
///   answer code 1 (logged). In STREAM mode the TCP server takes one client at a time.
impl Module {
    /// After 3 s without a bus byte the break-in sequence may start.
    const BREAK_IN_SILENCE: Duration = Duration::from_millis(3_000);

    fn claim_bus(&mut self, conn: ConnId) {
        if self.bus.configured && self.bus_handle().is_none() {
            self.bus.conn = Some(conn);
        }
    }

    fn bus_handle(&self) -> Option<usize> {
        self.bus.conn.and_then(|c| self.streams.by_conn(c))
    }

    fn is_bus_stream(&self, handle: usize) -> bool {
        self.bus_handle() == Some(handle)
    }

    fn bus_stream_refused(&mut self, handle: usize) -> (ResultCode, Option<String>) {
        self.log(console::level::ERROR, &format!("Stream {handle} streams to the bus"));
        (ResultCode::FAILED, None)
    }

    /// Bytes from the bus while it streams.
    fn bus_bytes(&mut self, bytes: &[u8], now: Instant) {
        let seq = self.cfg.bus.cmd_seq.clone();
        for (i, &b) in bytes.iter().enumerate() {
            if core::mem::take(&mut self.bus.skip_lf) && b == b'\n' {
                continue;
            }
            let silent = now - self.bus.last_rx >= Self::BREAK_IN_SILENCE;
            self.bus.last_rx = now;
            let matched = self.bus.seq_match;
            if matched > 0 || (silent && !seq.is_empty()) {
                if seq.get(matched) == Some(&b) {
                    self.bus.seq_match += 1;
                    if self.bus.seq_match == seq.len() {
                        self.bus.seq_match = 0;
                        self.bus_flush();
                        self.bus.streaming = false;
                        self.log(console::level::STATUS, "[Command mode]");
                        return self.feed(&bytes[i + 1..], now);
                    }
                    continue;
                }
                self.bus.seq_match = 0;
                self.bus_push(&seq[..matched], now);
            }
            self.bus_push(&[b], now);
        }
    }

    fn bus_push(&mut self, bytes: &[u8], now: Instant) {
        if bytes.is_empty() {
            return;
        }
        self.bus.tx.extend_from_slice(bytes);
        let flush_time = self.cfg.bus.flush_time;
        if self.bus.flush_at.is_none() || self.cfg.bus.flush_time_reset {
            self.bus.flush_at = Some(now + flush_time);
        }
        if self.bus.tx.len() >= self.cfg.bus.flush_count {
            self.bus_flush();
        }
    }

    /// Sends the waiting bus bytes on the streaming stream (dropped when there is none).
    fn bus_flush(&mut self) {
        self.bus.flush_at = None;
        let data = core::mem::take(&mut self.bus.tx);
        let Some(h) = self.bus_handle() else { return };
        let Some(stream) = self.streams.get_mut(h) else { return };
        if data.is_empty() || stream.closed {
            return;
        }
        stream.tx_bytes += data.len() as u64;
        let (kind, conn, remote) = (stream.kind, stream.conn, stream.remote);
        let to = match kind {
            StreamType::Udpc => remote,
            StreamType::Udps => remote.or_else(|| self.udp_server_default()),
            _ => None,
        };
        if kind == StreamType::Udps && to.is_none() {
            return;
        }
        self.actions.push_back(Action::Net(NetRequest::Send { conn, data, to }));
    }

    /// `exit`: back to streaming; what the stream received meanwhile goes out first.
    fn bus_resume(&mut self) {
        self.bus.streaming = true;
        self.bus.skip_lf = self.serial.take_after_cr();
        if let Some(h) = self.bus_handle()
            && let Some(stream) = self.streams.get_mut(h)
        {
            while let Some(chunk) = stream.read(usize::MAX) {
                self.serial.raw(&chunk.data);
            }
        }
    }
}

fn conn_failure_text(reason: crate::net::ConnFailure) -> &'static str {
    use crate::net::ConnFailure;
    match reason {
        ConnFailure::Refused => "refused",
        ConnFailure::NoSocket => "no free socket",
        ConnFailure::Unreachable => "unreachable",
        ConnFailure::PortInUse => "port in use",
    }
}

/// A stream handle: a decimal number.
fn parse_handle(arg: &str) -> Option<usize> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok()
}

/// A read or write size: a decimal number from 1.
fn parse_size(arg: &str) -> Option<usize> {
    parse_handle(arg).filter(|n| *n > 0)
}

/// A port: 1 to 65535.
fn parse_port(arg: &str) -> Option<u16> {
    parse_handle(arg).and_then(|n| u16::try_from(n).ok()).filter(|p| *p > 0)
}

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod frames;
#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

//! The module: the sans-IO state machine behind the serial console.
//!
//! The platform feeds it bytes from the bus ([`Module::feed`]) with the current time, drains
//! the bytes to send back ([`Module::take_output`]) and carries out the [`Action`]s it asks
//! for ([`Module::next_action`]), reporting completion where an action asks for it. A reboot
//! is the platform dropping this value and booting a new one from NVM.

use crate::command::{self, CommandDef, CommandId};
use crate::console::{self, Edit, Format, LineEditor};
use crate::net::{Ipv4, NetEvent, NetRequest};
use crate::nvm;
use crate::result::ResultCode;
use crate::time::{Duration, Instant};
use crate::vars::{self, SetError, VARIABLES, VarId, Vars};
use crate::wlan::{self, Config, Settled, Wlan};
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
    /// Send any remaining output, then boot a new module from NVM.
    Reboot,
    /// Erase NVM, then reboot.
    FactoryReset,
    /// Work for the radio or the IP stack (see [`crate::net`]).
    Net(crate::net::NetRequest),
}

/// A command that answers later; input meanwhile is stashed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Save,
    /// Waiting for the Network Up Sequence to settle, then doing the rest of the command.
    NetUp(AfterUp),
    /// `wlan_scan`.
    Scan {
        id: u32,
        deadline: Instant,
        verbose: bool,
    },
    /// `network_lookup`, or the name lookup of `ping <host>` (`ping`).
    Lookup {
        id: u32,
        deadline: Instant,
        host: String,
        ping: bool,
    },
    /// `ping`.
    Ping {
        id: u32,
        deadline: Instant,
        to: Ipv4,
    },
}

impl Pending {
    fn deadline(&self) -> Option<Instant> {
        match self {
            Pending::Scan { deadline, .. }
            | Pending::Lookup { deadline, .. }
            | Pending::Ping { deadline, .. } => Some(*deadline),
            Pending::Save | Pending::NetUp(_) => None,
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
    /// Values as of the last boot or successful `save`: what `load` returns to.
    saved: Vars,
    editor: LineEditor,
    out: Vec<u8>,
    actions: VecDeque<Action>,
    pending: Option<Pending>,
    /// Input that arrived while a command waited for the platform.
    stash: Vec<u8>,
    /// Set once a reboot is asked for: further input is dropped.
    halted: bool,
    booted_at: Instant,
    wlan: Wlan,
}

impl Module {
    /// Boots: loads the NVM image (if any and valid), prints the banner and `[Ready]`.
    pub fn boot(board: BoardInfo, nvm_image: Option<&[u8]>, now: Instant) -> Self {
        let mut vars = Vars::defaults();
        let mut notes = Vec::new();
        if let Some(image) = nvm_image {
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
        vars.set_internal("wlan.mac", vars::format_mac(&board.mac).as_bytes());
        vars.set_internal("system.version", board.version_line().as_bytes());
        let mut module = Self {
            saved: vars.clone(),
            vars,
            board,
            editor: LineEditor::new(),
            out: Vec::new(),
            actions: VecDeque::new(),
            pending: None,
            stash: Vec::new(),
            halted: false,
            booted_at: now,
            wlan: Wlan::new(),
        };
        let banner = module.board.version_line();
        module.log(console::level::STATUS, &banner);
        for note in notes {
            module.log(console::level::ERROR, &note);
        }
        module.log(console::level::STATUS, "[Ready]");
        module.sync_net_vars();
        if module.vars.flag("wlan.auto_join.enabled") {
            let cfg = Config::from_vars(&module.vars);
            let mut out = wlan::Out::default();
            module.wlan.up(&cfg, now, &mut out);
            module.apply(out, now);
        }
        if module.format().prompt {
            module.out.extend_from_slice(b"> ");
        }
        module
    }

    /// Feeds bytes received on the serial bus.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        if self.halted {
            return;
        }
        if self.pending.is_some() {
            self.stash.extend_from_slice(bytes);
            return;
        }
        for (i, &b) in bytes.iter().enumerate() {
            let echo = self.format().echo;
            match self.editor.feed(b, echo, &mut self.out) {
                Edit::Pending => {}
                Edit::Overflow => self.respond(ResultCode::BUFFER_OVERFLOW, None),
                Edit::Line(line) => self.execute(&line, now),
            }
            if self.halted {
                return;
            }
            if self.pending.is_some() {
                self.stash.extend_from_slice(&bytes[i + 1..]);
                return;
            }
        }
    }

    /// Bytes to send on the serial bus, oldest first.
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }

    /// The next piece of work for the platform.
    pub fn next_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Reports how [`Action::StoreNvm`] went; `Err` carries a reason for the log.
    pub fn nvm_stored(&mut self, result: Result<(), &str>, now: Instant) {
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
        let stash = core::mem::take(&mut self.stash);
        self.feed(&stash, now);
    }

    /// Reports what the radio or IP stack did (see [`crate::net`]).
    pub fn net_event(&mut self, event: NetEvent, now: Instant) {
        if self.halted {
            return;
        }
        match (&event, self.pending.clone()) {
            (NetEvent::ScanDone { id, results }, Some(Pending::Scan { id: want, verbose, .. }))
                if *id == want =>
            {
                let body = wlan::scan_body(results, verbose);
                return self.finish(ResultCode::SUCCESS, Some(&body), now);
            }
            (
                NetEvent::Resolved { id, address },
                Some(Pending::Lookup { id: want, host, ping, .. }),
            ) if *id == want => {
                return match address {
                    Some(address) if ping => self.ping(*address, now),
                    Some(address) => {
                        self.finish(ResultCode::SUCCESS, Some(&wlan::ip_text(*address)), now)
                    }
                    None => {
                        self.log(console::level::ERROR, &format!("Host not found: {host}"));
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
        let cfg = Config::from_vars(&self.vars);
        let mut out = wlan::Out::default();
        self.wlan.event(&event, &cfg, now, &mut out);
        self.apply(out, now);
    }

    /// When [`Module::tick`] must next be called, if a timer is running.
    pub fn poll_at(&self) -> Option<Instant> {
        let command = self.pending.as_ref().and_then(Pending::deadline);
        match (command, self.wlan.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn tick(&mut self, now: Instant) {
        if self.halted {
            return;
        }
        if let Some(pending) = self.pending.clone()
            && pending.deadline().is_some_and(|at| at <= now)
        {
            let note = match pending {
                Pending::Scan { .. } => "Scan timed out".to_string(),
                Pending::Lookup { host, .. } => format!("DNS lookup timed out: {host}"),
                Pending::Ping { to, .. } => format!("Ping timed out: {}", wlan::ip_text(to)),
                Pending::Save | Pending::NetUp(_) => String::new(),
            };
            self.log(console::level::ERROR, &note);
            self.finish(ResultCode::FAILED, None, now);
        }
        let cfg = Config::from_vars(&self.vars);
        let mut out = wlan::Out::default();
        self.wlan.tick(&cfg, now, &mut out);
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
        let level = match self.vars.text("system.print_level") {
            "all" => 255,
            n => n.parse().unwrap_or(255),
        };
        Format {
            echo: self.vars.flag("system.cmd.echo"),
            header: self.vars.flag("system.cmd.header_enabled"),
            prompt: self.vars.flag("system.cmd.prompt_enabled"),
            print_level: level,
        }
    }

    fn log(&mut self, level: u8, text: &str) {
        self.format().log(&mut self.out, level, text);
    }

    /// Responds with `code`; `body` defaults to the code's text for errors and to nothing
    /// for success.
    fn respond(&mut self, code: ResultCode, body: Option<&str>) {
        let body = body.unwrap_or(if code.is_success() { "" } else { code.text().unwrap_or("") });
        self.format().response(&mut self.out, code, body);
    }

    fn execute(&mut self, line: &[u8], now: Instant) {
        let args = match command::tokenize(line) {
            Ok(args) => args,
            Err(_) => return self.respond(ResultCode::PARSE_ERROR, None),
        };
        let Some((word, args)) = args.split_first() else {
            // An empty line: human terminals get a fresh prompt, machines nothing.
            if self.format().prompt {
                self.out.extend_from_slice(b"> ");
            }
            return;
        };
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
            CommandId::Help => self.help(args),
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
                for (i, def) in VARIABLES.iter().enumerate() {
                    if def.saved {
                        let id = VarId(i);
                        self.vars.set_internal(def.name, self.saved.raw(id));
                    }
                }
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
        if let Some(settled) = out.settled {
            self.settled(settled, now);
        }
    }

    /// The Network Up Sequence settled: go on with the command that waited for it.
    fn settled(&mut self, settled: Settled, now: Instant) {
        let Some(Pending::NetUp(after)) = self.pending.clone() else { return };
        match (settled, after) {
            (Settled::Failed, _) => self.finish(ResultCode::FAILED, None, now),
            (Settled::Up, AfterUp::Respond) => {
                self.finish(ResultCode::SUCCESS, Some("Success"), now)
            }
            (Settled::Up, AfterUp::Lookup(host)) => self.lookup(host, false, now),
            (Settled::Up, AfterUp::Ping(PingTarget::Addr(to))) => self.ping(to, now),
            (Settled::Up, AfterUp::Ping(PingTarget::Host(host))) => self.lookup(host, true, now),
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
        let stash = core::mem::take(&mut self.stash);
        self.feed(&stash, now);
    }

    /// Brings the network up (if it is not) and then does `after`.
    fn with_network(&mut self, after: AfterUp, now: Instant) {
        self.pending = Some(Pending::NetUp(after));
        let cfg = Config::from_vars(&self.vars);
        let mut out = wlan::Out::default();
        self.wlan.up(&cfg, now, &mut out);
        self.apply(out, now);
    }

    fn lookup(&mut self, host: String, ping: bool, now: Instant) {
        let id = self.wlan.next_id();
        self.actions.push_back(Action::Net(NetRequest::Resolve { id, name: host.clone() }));
        // `network.dns.timeout` is in milliseconds (assumed; its range is 100 to 60000).
        let timeout = self.vars.text("network.dns.timeout").parse().unwrap_or(5000);
        let deadline = now + Duration::from_millis(timeout);
        self.pending = Some(Pending::Lookup { id, deadline, host, ping });
    }

    fn ping(&mut self, to: Ipv4, now: Instant) {
        let id = self.wlan.next_id();
        self.actions.push_back(Action::Net(NetRequest::Ping { id, to }));
        self.pending = Some(Pending::Ping { id, deadline: now + wlan::PING_TIMEOUT, to });
    }

    /// The read-only status variables from the WLAN state.
    fn sync_net_vars(&mut self) {
        let status = (self.wlan.status() as u8).to_string();
        self.vars.set_internal("wlan.network.status", status.as_bytes());
        self.vars.set_internal("wlan.join.result", self.wlan.result().name().as_bytes());
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
        self.vars.set_internal("wlan.network.ip", ip.as_bytes());
        self.vars.set_internal("wlan.network.netmask", netmask.as_bytes());
        self.vars.set_internal("wlan.network.gateway", gateway.as_bytes());
        self.vars.set_internal("wlan.network.dns", dns.as_bytes());
    }

    /// Checks the interface argument of the `network_*` commands: `wlan` (or
    /// `network.default_interface` when none is given) goes on; `softap` is code 1 (not
    /// supported yet), anything else code 7.
    fn wlan_interface(&mut self, arg: Option<&String>) -> Result<(), ResultCode> {
        let iface = arg.map_or(self.vars.text("network.default_interface"), String::as_str);
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
                let id = self.wlan.next_id();
                self.actions.push_back(Action::Net(NetRequest::Scan {
                    id,
                    ssid: None,
                    bssid: None,
                }));
                let deadline = now + wlan::SCAN_TIMEOUT;
                self.pending = Some(Pending::Scan { id, deadline, verbose });
                None
            }
            CommandId::NetworkLookup => {
                let host = command::unescape_plain(&args[0]);
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
                        let host = command::unescape_plain(arg);
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
        self.vars.set_internal("time.uptime", uptime.to_string().as_bytes());
        if let [only] = args
            && only == "all"
        {
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
                if id.def().name == "system.cmd.format" {
                    self.apply_format();
                }
                (ResultCode::SUCCESS, Some("Set OK".to_string()))
            }
            Err(SetError::Invalid) => (ResultCode::BAD_ARGS, None),
            Err(SetError::OutOfRange) => (ResultCode::BOUNDS_ERROR, None),
            Err(SetError::ReadOnly) => (ResultCode::UNKNOWN_OPTION, None),
        }
    }

    /// `system.cmd.format` sets the four framing variables (protocol-facts §1.2).
    fn apply_format(&mut self) {
        let machine = self.vars.text("system.cmd.format") == "machine";
        let (on, off) = (b"1".as_slice(), b"0".as_slice());
        self.vars.set_internal("system.cmd.echo", if machine { off } else { on });
        self.vars.set_internal("system.cmd.header_enabled", if machine { on } else { off });
        self.vars.set_internal("system.cmd.prompt_enabled", if machine { off } else { on });
        self.vars.set_internal("system.print_level", if machine { b"0" } else { b"all" });
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

#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod tests;

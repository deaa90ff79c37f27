//! The system commands: variables (`get`, `set`, the settings they feed), `help`, the clock
//! (`time.*`, log timestamps), and stopping the module (reboot, factory reset).

use super::*;

impl Module {
    pub(super) fn halt(&mut self, action: Action) {
        self.halted = true;
        self.actions.push_back(action);
    }

    pub(super) fn get(&mut self, args: &[String], now: Instant) -> (ResultCode, Option<String>) {
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

    pub(super) fn listing(&self, ids: impl Iterator<Item = VarId>) -> String {
        let mut body = String::new();
        for id in ids {
            if !body.is_empty() {
                body.push_str("\r\n");
            }
            let _ = write!(body, "{}: {}", id.def().name, self.vars.render(id));
        }
        body
    }

    pub(super) fn set(&mut self, args: &[String]) -> (ResultCode, Option<String>) {
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
                let var = id.var();
                match var {
                    Var::SystemCmdFormat => {
                        self.apply_format();
                        self.settings_changed(&FORMAT_VARS);
                    }
                    Var::TimeRtc => {
                        let value = self.vars.int(Var::TimeRtc);
                        self.rtc = (value, self.clock);
                        self.vars.set_internal(Var::TimeLastSet, value.to_string().as_bytes());
                    }
                    _ => {}
                }
                self.settings_changed(&[var]);
                (ResultCode::SUCCESS, Some("Set OK".to_string()))
            }
            Err(SetError::Invalid) => (ResultCode::BAD_ARGS, None),
            Err(SetError::OutOfRange) => (ResultCode::BOUNDS_ERROR, None),
            Err(SetError::ReadOnly) => (ResultCode::UNKNOWN_OPTION, None),
        }
    }

    /// Variables changed: each part whose settings read one of them reads its settings
    /// again, once (see [`readers`]).
    pub(super) fn settings_changed(&mut self, changed: &[Var]) {
        let mut parts: Vec<Part> = Vec::new();
        for part in changed.iter().flat_map(|var| readers(*var)) {
            if !parts.contains(part) {
                parts.push(*part);
            }
        }
        let terminal = parts.contains(&Part::Terminal);
        let vars = &self.vars;
        for part in parts.iter().copied() {
            match part {
                Part::Module => self.cfg = Settings::from_vars(vars),
                Part::Network => self.svc.network.configure(vars),
                Part::TcpServer => self.svc.tcp_server.configure(vars),
                Part::UdpServer => self.svc.udp_server.configure(vars),
                Part::Bus => self.svc.bus.configure(vars),
                Part::Autos => self.svc.autos.configure(vars),
                Part::Sockets => self.svc.sockets.configure(vars),
                Part::HttpServer => self.svc.http_server.configure(vars),
                Part::Terminal => self.svc.terminal.configure(vars),
                Part::Tls => self.svc.tls.configure(vars),
            }
        }
        if parts.contains(&Part::HttpServer) {
            // Enabled, disabled or moved while the network is up: it follows at once.
            self.http_server_sync();
        }
        if terminal {
            self.terminal_sync();
        }
    }

    /// `time.rtc` now, in epoch seconds (see [`crate::clock`]).
    pub(super) fn rtc_now(&self, now: Instant) -> i64 {
        let (at_set, set_at) = self.rtc;
        let elapsed = now.as_millis().saturating_sub(set_at.as_millis()) / 1000;
        at_set.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// The stamp `system.cmd.timestamp` puts on log messages now, if any.
    pub(super) fn timestamp(&self) -> Option<String> {
        let rtc = self.rtc_now(self.clock);
        match self.cfg.console.timestamp {
            Timestamp::Utc => Some(clock::stamp(rtc)),
            Timestamp::Local => {
                Some(clock::stamp(rtc.saturating_add(self.cfg.console.zone_offset)))
            }
            Timestamp::None => None,
        }
    }

    /// `system.cmd.format` sets the four framing variables (protocol-facts §1.2): those in
    /// [`FORMAT_VARS`].
    pub(super) fn apply_format(&mut self) {
        let machine = self.vars.text(Var::SystemCmdFormat) == "machine";
        let (on, off) = (b"1".as_slice(), b"0".as_slice());
        self.vars.set_internal(Var::SystemCmdEcho, if machine { off } else { on });
        self.vars.set_internal(Var::SystemCmdHeaderEnabled, if machine { on } else { off });
        self.vars.set_internal(Var::SystemCmdPromptEnabled, if machine { off } else { on });
        self.vars.set_internal(Var::SystemPrintLevel, if machine { b"0" } else { b"all" });
    }

    pub(super) fn help(&self, args: &[String]) -> (ResultCode, Option<String>) {
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

    /// How `save`'s [`Action::StoreNvm`] went.
    pub(super) fn nvm_stored_here(&mut self, result: Result<(), &str>, now: Instant) {
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
}

/// The variables `system.cmd.format` sets.
const FORMAT_VARS: [Var; 4] = [
    Var::SystemCmdEcho,
    Var::SystemCmdHeaderEnabled,
    Var::SystemCmdPromptEnabled,
    Var::SystemPrintLevel,
];

/// The parts that read their settings from the variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    /// What is still the module's own ([`Settings`]): the console's framing.
    Module,
    Network,
    TcpServer,
    UdpServer,
    Bus,
    Autos,
    Sockets,
    HttpServer,
    Terminal,
    Tls,
}

/// The parts whose settings read `var`: a change of it makes them, and only them, read
/// their settings again (`set`, `load`; boot and `factory_reset` start from a fresh module).
pub(super) fn readers(var: Var) -> &'static [Part] {
    let name = var.def().name;
    let under = |prefix: &str| name.starts_with(prefix);
    if under("wlan.") || under("network.dns.") {
        &[Part::Network]
    } else if name == "network.default_interface" {
        &[Part::Network, Part::Autos, Part::Terminal]
    } else if under("network.tls.") {
        &[Part::Tls]
    } else if under("remote_terminal.") {
        &[Part::Terminal]
    } else if under("tcp.server.") {
        &[Part::TcpServer]
    } else if under("http.server.") {
        &[Part::HttpServer]
    } else if under("udp.server.") {
        &[Part::UdpServer]
    } else if name == "bus.mode" || under("bus.stream.") {
        &[Part::Bus]
    } else if under("tcp.client.") {
        &[Part::Autos, Part::Sockets]
    } else if under("udp.client.") {
        &[Part::Autos]
    } else if under("bus.command.") {
        &[Part::Sockets]
    } else if under("system.cmd.") || name == "system.print_level" || name == "time.zone" {
        &[Part::Module]
    } else {
        &[]
    }
}

/// The saved settings from NVM over the defaults; what cannot be read or restored is noted
/// for the boot log.
pub(super) fn restore_settings(stored: &Stored<'_>, notes: &mut Vec<String>) -> Vars {
    let mut vars = Vars::defaults();
    if let Some(fault) = stored.nvm_fault {
        notes.push(format!("NVM read failed: {fault}; using defaults"));
    }
    if let Some(image) = stored.nvm {
        match nvm::decode(image) {
            Ok(entries) => {
                for (name, value) in entries {
                    let restored = vars::by_name(&name).is_some_and(|id| vars.restore(id, &value));
                    if !restored {
                        notes.push(format!("NVM: ignored saved value of {name}"));
                    }
                }
            }
            Err(e) => notes.push(format!("NVM: {e}; using defaults")),
        }
    }
    vars
}

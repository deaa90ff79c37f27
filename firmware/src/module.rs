//! The module: the sans-IO state machine behind the serial console.
//!
//! The platform feeds it bytes from the bus ([`Module::feed`]) with the current time, drains
//! the bytes to send back ([`Module::take_output`]) and carries out the [`Action`]s it asks
//! for ([`Module::next_action`]), reporting completion where an action asks for it. A reboot
//! is the platform dropping this value and booting a new one from NVM.

use crate::command::{self, CommandDef, CommandId};
use crate::console::{self, Edit, Format, LineEditor};
use crate::nvm;
use crate::result::ResultCode;
use crate::time::Instant;
use crate::vars::{self, SetError, VARIABLES, VarId, Vars};
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Save,
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
        };
        let banner = module.board.version_line();
        module.log(console::level::STATUS, &banner);
        for note in notes {
            module.log(console::level::ERROR, &note);
        }
        module.log(console::level::STATUS, "[Ready]");
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
    pub fn net_event(&mut self, event: crate::net::NetEvent, now: Instant) {
        let _ = (event, now);
    }

    /// When [`Module::tick`] must next be called, if a timer is running.
    pub fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// Runs the timers that are due at `now`.
    pub fn tick(&mut self, now: Instant) {
        let _ = now;
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
        };
        self.respond(code, body.as_deref());
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
mod tests;

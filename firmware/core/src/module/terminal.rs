//! The remote terminal (chapter, "Remote Terminal Access"): the command interface over a
//! TCP (telnet) connection, configured by `remote_terminal.*`.
//!
//! A part of its own: [`Terminal`] owns its listener and its one client (both in the
//! connection table, `Owner::TerminalListener` and `Owner::TerminalClient`), its settings
//! and the client's idle timer. It listens on `remote_terminal.port` while
//! `remote_terminal.enabled` is 1 and the network is up on its interface (a change of the
//! settings takes effect at once), and stops when the network goes down.
//!
//! A client's command lines run as [`Origin::Terminal`] with a fresh number per connection
//! (a reply that arrives for an earlier connection is dropped); their replies, log lines
//! included, are framed by a [`Console`] as the serial console frames them
//! (`system.cmd.format`), and so are the log lines no command caused, as on the serial
//! console. The data phase of `stream_write`, `file_create`, ... takes the bytes typed next on
//! the connection. Telnet commands from the client are dropped ([`crate::telnet`]).
//!
//! What the chapter leaves open, chosen here (the spec cases say `assumed`):
//!
//! * **Password**: with `remote_terminal.password` set, the client first gets `Password: `;
//!   the line it sends (not echoed) is compared; a match answers `Password OK` then the
//!   prompt (as the console's after boot), a mismatch answers `Invalid password` and closes
//!   the connection. Without a password the client gets the prompt at once.
//! * **One client**: a second client is answered `Remote terminal busy` and closed; the
//!   first keeps its connection.
//! * **Serial console**: while a client is logged in, the local serial command parser is off
//!   (protocol-facts §1.6): a line typed on the serial console is not run; it is answered
//!   with code 1 (`Command failed`) and the log line [`SERIAL_OFF`], so a person or a host
//!   at the UART learns why (line editing and echo go on; STREAM mode data still flows).
//!   Log lines no command caused still reach the serial console. The parser is back as soon
//!   as the client leaves.
//! * **Idle timeout**: `remote_terminal.timeout` seconds with no traffic either way (input,
//!   replies, log lines) close the connection without a word; 0 never does.

use super::*;
use crate::config::TerminalConfig;
use crate::console::Console;
use crate::telnet;
use conns::{Open, Owner};
use ctx::Ctx;

/// What the client gets when it connects while another is logged in (assumed).
pub const BUSY: &str = "Remote terminal busy\r\n";
/// The password prompt (assumed).
pub const PASSWORD_PROMPT: &str = "Password: ";
/// The answer to the right password (assumed).
pub const PASSWORD_OK: &str = "Password OK\r\n";
/// The answer to a wrong password, before the connection closes (assumed).
pub const PASSWORD_WRONG: &str = "Invalid password\r\n";

/// Logged on the serial console for a line typed while a client is logged in (assumed).
pub const SERIAL_OFF: &str = "Serial commands are off while a remote terminal is connected";

/// Input held while a command waits before the connection is no longer read.
pub const STASH_MAX: usize = 2048;

/// Longest password line kept; longer ones are wrong (the variable holds at most 32).
const PASSWORD_LINE_MAX: usize = 64;

/// The remote terminal service.
#[derive(Debug)]
pub(super) struct Terminal {
    cfg: TerminalConfig,
    /// The listener and its port, while listening.
    listening: Option<(ConnId, u16)>,
    client: Option<Client>,
    /// The number of the last connection's origin.
    last_number: u8,
}

/// The connected client.
#[derive(Debug)]
struct Client {
    conn: ConnId,
    number: u8,
    /// `Some(line so far)` while the password is awaited.
    login: Option<Vec<u8>>,
    /// The password line ended with CR: an LF right after it belongs to it.
    login_cr: bool,
    telnet: telnet::Filter,
    console: Console,
    /// Input that arrived while the client's command waited.
    stash: Vec<u8>,
    /// Reading was stopped (the stash is full) until the stash is taken.
    paused: bool,
    last_activity: Instant,
}

/// What a byte of input was for, while the client logs in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Login {
    /// Logged in (or no password): the rest is commands.
    Done,
    /// More of the password line is awaited.
    Pending,
    /// Wrong password: the connection was closed.
    Refused,
}

impl Terminal {
    pub(super) fn new(vars: &Vars) -> Self {
        Self { cfg: TerminalConfig::from_vars(vars), listening: None, client: None, last_number: 0 }
    }

    /// `remote_terminal.*` or `network.default_interface` changed.
    pub(super) fn configure(&mut self, vars: &Vars) {
        self.cfg = TerminalConfig::from_vars(vars);
    }

    /// The port it should listen on now, given whether the WLAN network is up.
    fn wanted_port(&self, wlan_up: bool) -> Option<u16> {
        (self.cfg.enabled && wlan_up && self.cfg.interface == Interface::Wlan)
            .then_some(self.cfg.port)
    }

    /// Listens, stops or moves to another port as the settings and the network say.
    pub(super) fn sync(&mut self, wlan_up: bool, ctx: &mut Ctx<'_>) {
        let want = self.wanted_port(wlan_up);
        if self.listening.map(|(_, port)| port) == want {
            return;
        }
        if let Some((listener, _)) = self.listening.take() {
            ctx.close_conn(listener);
        }
        if let Some(port) = want {
            let listener = ctx.open_conn(Open::Listen { port }, Owner::TerminalListener);
            self.listening = Some((listener, port));
            ctx.log(console::level::INFO, format!("Remote terminal listening on port {port}"));
        }
    }

    /// The network went down: the listener and the client go with it.
    pub(super) fn network_down(&mut self, ctx: &mut Ctx<'_>) -> Option<Origin> {
        if let Some((listener, _)) = self.listening.take() {
            ctx.close_conn(listener);
        }
        let client = self.client.take()?;
        ctx.close_conn(client.conn);
        Some(Origin::Terminal(client.number))
    }

    /// The origin of the logged-in client: it has the command interface, and the serial
    /// console's parser is off.
    pub(super) fn active(&self) -> Option<Origin> {
        self.client.as_ref().filter(|c| c.login.is_none()).map(|c| Origin::Terminal(c.number))
    }

    /// The connected client's origin, logged in or not.
    pub(super) fn origin(&self) -> Option<Origin> {
        self.client.as_ref().map(|c| Origin::Terminal(c.number))
    }

    fn client_of(&mut self, origin: Origin) -> Option<&mut Client> {
        self.client.as_mut().filter(|c| Origin::Terminal(c.number) == origin)
    }

    fn is_listener(&self, conn: ConnId) -> bool {
        self.listening.is_some_and(|(l, _)| l == conn)
    }

    /// An event of the listener: a client, or the listener failed.
    /// A client without a password to give gets the prompt (`format`) at once.
    pub(super) fn listener_event(
        &mut self,
        event: &NetEvent,
        format: Format,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) {
        match event {
            NetEvent::TcpAccepted { listener, conn, .. } => {
                let ours = self.is_listener(*listener);
                if !ours || self.client.is_some() {
                    if ours {
                        let data = BUSY.as_bytes().to_vec();
                        ctx.act(Action::Net(NetRequest::Send { conn: *conn, data, to: None }));
                    }
                    ctx.act(Action::Net(NetRequest::Close { conn: *conn }));
                    return;
                }
                ctx.conns.set(*conn, Owner::TerminalClient);
                self.last_number = self.last_number.wrapping_add(1);
                let password = !self.cfg.password.is_empty();
                let mut client = Client {
                    conn: *conn,
                    number: self.last_number,
                    login: password.then(Vec::new),
                    login_cr: false,
                    telnet: telnet::Filter::new(),
                    console: Console::new(),
                    stash: Vec::new(),
                    paused: false,
                    last_activity: now,
                };
                if password {
                    client.console.raw(PASSWORD_PROMPT.as_bytes());
                } else {
                    client.console.prompt(format);
                }
                self.client = Some(client);
            }
            NetEvent::ConnFailed { conn, reason } if self.is_listener(*conn) => {
                let why = conn_failure_text(*reason);
                ctx.log(console::level::ERROR, format!("Remote terminal: listen failed: {why}"));
                self.listening = None;
            }
            NetEvent::Closed { conn } if self.is_listener(*conn) => self.listening = None,
            _ => {}
        }
    }

    /// Bytes from the client, telnet commands removed; `None` if `conn` is not the client.
    pub(super) fn received(&mut self, conn: ConnId, data: &[u8], now: Instant) -> Option<Vec<u8>> {
        let client = self.client.as_mut().filter(|c| c.conn == conn)?;
        client.last_activity = now;
        Some(client.telnet.data(data))
    }

    /// The client is gone (it closed, or the connection failed): its origin.
    pub(super) fn client_closed(&mut self, conn: ConnId) -> Option<Origin> {
        let client = self.client.take_if(|c| c.conn == conn)?;
        Some(Origin::Terminal(client.number))
    }

    /// Closes the client's connection (idle, wrong password): its origin.
    fn close_client(&mut self, ctx: &mut Ctx<'_>) -> Option<Origin> {
        let client = self.client.take()?;
        ctx.close_conn(client.conn);
        Some(Origin::Terminal(client.number))
    }

    /// Feeds the password line one byte at a time; `format` for the prompt that follows a
    /// right password.
    pub(super) fn login_byte(&mut self, b: u8, format: Format, ctx: &mut Ctx<'_>) -> Login {
        let Some(client) = self.client.as_mut() else { return Login::Refused };
        let Some(line) = client.login.as_mut() else { return Login::Done };
        match b {
            b'\r' | b'\n' => {}
            _ => {
                if line.len() < PASSWORD_LINE_MAX {
                    line.push(b);
                } else {
                    // Too long to be the password: keep it wrong.
                    line.push(0);
                    line.truncate(PASSWORD_LINE_MAX + 1);
                }
                return Login::Pending;
            }
        }
        client.login_cr = b == b'\r';
        let typed = client.login.take().unwrap_or_default();
        if typed == self.cfg.password.as_bytes() {
            client.console.raw(PASSWORD_OK.as_bytes());
            client.console.prompt(format);
            Login::Done
        } else {
            client.console.raw(PASSWORD_WRONG.as_bytes());
            self.flush(ctx);
            self.close_client(ctx);
            Login::Refused
        }
    }

    /// Whether the line just typed ended with a lone CR (see [`Console::take_after_cr`]);
    /// the password line's CR counts too, so its LF never becomes an empty command.
    pub(super) fn take_after_cr(&mut self, origin: Origin) -> bool {
        self.client_of(origin).is_some_and(|c| c.console.take_after_cr())
    }

    /// One byte for the client's line editor.
    pub(super) fn edit(&mut self, origin: Origin, b: u8, format: Format) -> Edit {
        let Some(client) = self.client_of(origin) else { return Edit::Pending };
        if core::mem::take(&mut client.login_cr) && b == b'\n' {
            return Edit::Pending;
        }
        client.console.edit(b, format)
    }

    /// Keeps input that arrived while the client's command waits; past [`STASH_MAX`] the
    /// platform stops reading the connection (TCP holds the rest) until it is taken.
    pub(super) fn stash(&mut self, origin: Origin, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let Some(client) = self.client_of(origin) else { return };
        client.stash.extend_from_slice(bytes);
        if client.stash.len() >= STASH_MAX && !client.paused {
            client.paused = true;
            ctx.act(Action::Net(NetRequest::Flow { conn: client.conn, accept: false }));
        }
    }

    /// The input held while the command waited; reading goes on if it was stopped.
    pub(super) fn take_stash(&mut self, origin: Origin, ctx: &mut Ctx<'_>) -> Vec<u8> {
        let Some(client) = self.client_of(origin) else { return Vec::new() };
        if core::mem::take(&mut client.paused) {
            ctx.act(Action::Net(NetRequest::Flow { conn: client.conn, accept: true }));
        }
        core::mem::take(&mut client.stash)
    }

    /// A reply for `origin`'s client (dropped if that client is gone), framed as the console
    /// frames it.
    pub(super) fn reply(&mut self, origin: Origin, reply: Reply, format: Format, now: Instant) {
        let Some(client) = self.client_of(origin) else { return };
        client.last_activity = now;
        match reply {
            Reply::Log { level, text } => client.console.log(format, level, &text),
            Reply::Response { code, body } => client.console.response(format, code, &body),
            // The bytes typed next go to the data phase.
            Reply::Data { .. } => {}
        }
    }

    /// A log line no command caused, for the logged-in client.
    pub(super) fn broadcast(&mut self, level: u8, text: &str, format: Format) {
        if let Some(client) = self.client.as_mut().filter(|c| c.login.is_none()) {
            client.console.log(format, level, text);
        }
    }

    /// The prompt alone (after an empty line).
    pub(super) fn prompt(&mut self, origin: Origin, format: Format) {
        if let Some(client) = self.client_of(origin) {
            client.console.prompt(format);
        }
    }

    /// Sends what the client's console has for it.
    pub(super) fn flush(&mut self, ctx: &mut Ctx<'_>) {
        let Some(client) = self.client.as_mut() else { return };
        let data = client.console.take_output();
        if !data.is_empty() {
            ctx.act(Action::Net(NetRequest::Send { conn: client.conn, data, to: None }));
        }
    }

    /// When the client becomes idle (`remote_terminal.timeout`, s; 0 never).
    pub(super) fn poll_at(&self) -> Option<Instant> {
        let timeout = self.cfg.timeout;
        let client = self.client.as_ref()?;
        (timeout.as_millis() > 0).then(|| client.last_activity + timeout)
    }

    /// Closes the client if it is idle at `now`: its origin.
    pub(super) fn close_if_idle(&mut self, now: Instant, ctx: &mut Ctx<'_>) -> Option<Origin> {
        if self.poll_at().is_some_and(|at| at <= now) {
            return self.close_client(ctx);
        }
        None
    }
}

impl Module {
    /// The network went up or down, or the settings changed: the listener follows.
    pub(super) fn terminal_sync(&mut self) {
        let up = self.svc.network.wlan().ip().is_some();
        if up {
            self.with_ctx(|s, ctx| s.terminal.sync(true, ctx));
        } else if let Some(origin) = self.with_ctx(|s, ctx| s.terminal.network_down(ctx)) {
            self.terminal_ended(origin);
        }
    }

    /// An event of the listener or of the client.
    pub(super) fn terminal_conn_event(&mut self, event: &NetEvent, now: Instant) {
        match event {
            NetEvent::Received { conn, data, .. } => {
                if let Some(bytes) = self.svc.terminal.received(*conn, data, now) {
                    self.terminal_input(&bytes, now);
                }
            }
            NetEvent::Closed { conn } | NetEvent::ConnFailed { conn, .. }
                if let Some(origin) = self.svc.terminal.client_closed(*conn) =>
            {
                self.terminal_ended(origin);
            }
            // The platform took what was sent.
            NetEvent::Sent { .. } => {}
            _ => {
                let format = self.format();
                self.with_ctx(|s, ctx| s.terminal.listener_event(event, format, now, ctx));
            }
        }
    }

    /// The client's input: the password, a data phase, input held while its command waits,
    /// or line editing and commands, in the order it was typed.
    fn terminal_input(&mut self, bytes: &[u8], now: Instant) {
        let Some(origin) = self.svc.terminal.origin() else { return };
        let mut i = 0;
        while i < bytes.len() {
            if self.halted || self.svc.terminal.origin() != Some(origin) {
                return;
            }
            if self.svc.terminal.active().is_none() {
                let format = self.format();
                let b = bytes[i];
                i += 1;
                match self.with_ctx(|s, ctx| s.terminal.login_byte(b, format, ctx)) {
                    Login::Pending | Login::Done => continue,
                    Login::Refused => return self.terminal_ended(origin),
                }
            }
            if self.data_phase_waits(origin) {
                i += self.data(origin, &bytes[i..], now);
                continue;
            }
            if self.origin_waits(origin) {
                let rest = &bytes[i..];
                self.with_ctx(|s, ctx| s.terminal.stash(origin, rest, ctx));
                return;
            }
            let b = bytes[i];
            i += 1;
            match self.svc.terminal.edit(origin, b, self.format()) {
                Edit::Pending => {}
                Edit::Overflow => {
                    self.in_origin(Some(origin), |m| m.respond(ResultCode::BUFFER_OVERFLOW, None));
                }
                Edit::Line(line) => self.execute(origin, &line, now),
            }
        }
    }

    /// The client's command was answered: go on with what it typed meanwhile.
    pub(super) fn terminal_resume(&mut self, origin: Origin, now: Instant) {
        let stash = self.with_ctx(|s, ctx| s.terminal.take_stash(origin, ctx));
        if !stash.is_empty() {
            self.terminal_input(&stash, now);
        }
    }

    /// A client is gone: lines it queued are dropped, the serial parser is back.
    fn terminal_ended(&mut self, origin: Origin) {
        self.queued.retain(|(o, _)| *o != origin);
    }

    /// Whether `origin`'s command waits (for the platform, the network, its data).
    fn origin_waits(&self, origin: Origin) -> bool {
        if self.ctx == Some(origin) {
            return self.pending.is_some();
        }
        self.jobs.iter().any(|j| j.origin == origin && j.pending.is_some())
    }

    /// Whether `origin`'s command waits for its data phase.
    fn data_phase_waits(&self, origin: Origin) -> bool {
        let is_data =
            |p: &Option<Pending>| matches!(p, Some(Pending::Stream(StreamWait::Data { .. })));
        if self.ctx == Some(origin) {
            return is_data(&self.pending);
        }
        self.jobs.iter().any(|j| j.origin == origin && is_data(&j.pending))
    }

    pub(super) fn terminal_poll_at(&self) -> Option<Instant> {
        self.svc.terminal.poll_at()
    }

    pub(super) fn terminal_tick(&mut self, now: Instant) {
        if let Some(origin) = self.with_ctx(|s, ctx| s.terminal.close_if_idle(now, ctx)) {
            self.terminal_ended(origin);
        }
    }

    /// Sends what the client's console holds.
    pub(super) fn terminal_flush(&mut self) {
        self.with_ctx(|s, ctx| s.terminal.flush(ctx));
    }
}

//! Answering origins: replies for the origin being served (see [`crate::origin`]), the
//! broadcast sink, and serving one origin while the others' waiting commands stay parked.

use super::*;

impl Module {
    /// A log line: the current command's origin gets it, or the broadcast sink when no
    /// command caused it.
    pub(super) fn log(&mut self, level: u8, text: &str) {
        let text = match self.timestamp() {
            Some(stamp) => clock::stamped(&stamp, text),
            None => text.to_string(),
        };
        self.emit(Reply::Log { level, text });
    }

    /// Hands a reply to the current origin: the serial console renders it now, another
    /// origin finds it in [`Module::take_replies`]. Without an origin it is broadcast.
    pub(super) fn emit(&mut self, reply: Reply) {
        match self.ctx {
            None => self.broadcast(reply),
            Some(Origin::Serial) => self.render_serial(reply),
            Some(origin) => self.outbox.push((origin, reply)),
        }
    }

    /// Log lines no command caused reach every interested consumer: the serial console and
    /// the HTTP server's `/log` ring.
    pub(super) fn broadcast(&mut self, reply: Reply) {
        if let Reply::Log { text, .. } = &reply {
            self.svc.http_server.log_line(text);
            self.render_serial(reply);
        }
    }

    /// Hands the replies waiting for front-end origins to the part that owns each origin:
    /// one arm per origin kind. Called after every entry point that can produce replies
    /// (feed, execute, data, net_event, tick, the store completions). A part may run more
    /// (a data phase), so this goes on until no front end's reply waits. Origins no part owns
    /// (auto start, an HTTP id the server did not give out) stay for `take_replies`.
    pub(super) fn route_front_end_replies(&mut self, now: Instant) {
        loop {
            let owned = |m: &Self, origin: &Origin| match origin {
                Origin::Http(id) => m.svc.http_server.owns(*id),
                // No part owns these (yet): their replies wait for `take_replies`.
                Origin::Serial | Origin::Terminal(_) | Origin::CmdStream(_) | Origin::AutoStart => {
                    false
                }
            };
            let Some(first) = self.outbox.iter().position(|(o, _)| owned(self, o)) else {
                return;
            };
            let origin = self.outbox[first].0;
            let (mine, rest): (Vec<_>, Vec<_>) =
                core::mem::take(&mut self.outbox).into_iter().partition(|(o, _)| *o == origin);
            self.outbox = rest;
            let replies = mine.into_iter().map(|(_, reply)| reply).collect();
            match origin {
                Origin::Http(id) => self.http_replies(id, replies, now),
                Origin::Serial | Origin::Terminal(_) | Origin::CmdStream(_) | Origin::AutoStart => {
                }
            }
        }
    }

    pub(super) fn render_serial(&mut self, reply: Reply) {
        let format = self.format();
        match reply {
            // The bus carries only stream data while it streams.
            Reply::Log { .. } if self.svc.bus.is_streaming() => {}
            Reply::Log { level, text } => self.serial.log(format, level, &text),
            Reply::Response { code, body } => self.serial.response(format, code, &body),
            // The serial console's bytes go to the data phase as they arrive.
            Reply::Data { .. } => {}
        }
    }

    /// Responds with `code`; `body` defaults to the code's text for errors and to nothing
    /// for success.
    pub(super) fn respond(&mut self, code: ResultCode, body: Option<&str>) {
        if let Some(command) = self.buffer.take()
            && code.is_success()
        {
            return self.respond_buffered(command, body.unwrap_or(""));
        }
        let body = body.unwrap_or(if code.is_success() { "" } else { code.text().unwrap_or("") });
        self.emit(Reply::Response { code, body: body.as_bytes().to_vec() });
    }

    /// Responds with a body of raw bytes (`stream_read`).
    pub(super) fn respond_bytes(&mut self, code: ResultCode, body: &[u8]) {
        self.emit(Reply::Response { code, body: body.to_vec() });
    }

    /// Serves `origin` (its command's pending state and buffering become current) while `f`
    /// runs, then parks it again and goes back to the origin served before.
    pub(super) fn in_origin<R>(
        &mut self,
        origin: Option<Origin>,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
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

    pub(super) fn park(&mut self) {
        let pending = self.pending.take();
        let buffer = self.buffer.take();
        if let Some(origin) = self.ctx.take()
            && (pending.is_some() || buffer.is_some())
        {
            self.jobs.push(Job { origin, pending, buffer });
        }
    }

    pub(super) fn unpark(&mut self, origin: Option<Origin>) {
        self.ctx = origin;
        if let Some(i) = self.jobs.iter().position(|j| Some(j.origin) == origin) {
            let job = self.jobs.swap_remove(i);
            self.pending = job.pending;
            self.buffer = job.buffer;
        }
    }

    /// The origin whose waiting command `wants` matches (the one served now first).
    pub(super) fn owner(&self, wants: impl Fn(&Pending) -> bool) -> Option<Origin> {
        if self.pending.as_ref().is_some_and(&wants) {
            return self.ctx;
        }
        self.jobs.iter().find(|j| j.pending.as_ref().is_some_and(&wants)).map(|j| j.origin)
    }

    /// The origin whose waiting command an event answers, if any.
    pub(super) fn event_owner(&self, event: &NetEvent) -> Option<Origin> {
        let handle_of = |conn: ConnId| self.streams.by_conn(conn);
        self.owner(|p| match (p, event) {
            (Pending::Net(NetWait::Scan { id, .. }), NetEvent::ScanDone { id: got, .. })
            | (Pending::Net(NetWait::Lookup { id, .. }), NetEvent::Resolved { id: got, .. })
            | (Pending::Net(NetWait::Ping { id, .. }), NetEvent::PingReply { id: got, .. }) => {
                id == got
            }
            (
                Pending::Stream(StreamWait::Connect { conn, .. })
                | Pending::Stream(StreamWait::UdpOpen { conn, .. }),
                NetEvent::TcpConnected { conn: got, .. }
                | NetEvent::UdpOpened { conn: got, .. }
                | NetEvent::Closed { conn: got }
                | NetEvent::ConnFailed { conn: got, .. },
            ) => conn == got,
            (
                Pending::Stream(StreamWait::Write { conn, .. }),
                NetEvent::Sent { conn: got, .. }
                | NetEvent::Closed { conn: got }
                | NetEvent::ConnFailed { conn: got, .. },
            ) => conn == got,
            (
                Pending::Stream(StreamWait::Read { handle, .. }),
                NetEvent::Received { conn, .. }
                | NetEvent::Closed { conn }
                | NetEvent::ConnFailed { conn, .. },
            ) => handle_of(*conn) == Some(*handle),
            _ => false,
        })
    }

    /// The current origin's command is answered: run what it sent meanwhile.
    pub(super) fn resume(&mut self, now: Instant) {
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

    /// Answers the pending command and runs the input stashed meanwhile.
    pub(super) fn finish(&mut self, code: ResultCode, body: Option<&str>, now: Instant) {
        self.pending = None;
        self.respond(code, body);
        self.resume(now);
    }

    /// [`Module::finish`] with a body of raw bytes.
    pub(super) fn finish_bytes(&mut self, body: &[u8], now: Instant) {
        self.pending = None;
        self.respond_bytes(ResultCode::SUCCESS, body);
        self.resume(now);
    }

    /// The serial console's input: a data phase, stream data in STREAM mode, input held
    /// while a serial command waits, or line editing and commands.
    pub(super) fn feed_serial(&mut self, bytes: &[u8], now: Instant) {
        let mut i = 0;
        while i < bytes.len() {
            if self.halted {
                return;
            }
            if self.svc.bus.is_streaming() {
                return self.bus_bytes(&bytes[i..], now);
            }
            if let Some(Pending::Stream(StreamWait::Data { phase, deadline, .. })) =
                &mut self.pending
            {
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

    /// The earliest deadline of a command waiting in any origin.
    pub(super) fn commands_poll_at(&self) -> Option<Instant> {
        let waiting = self.jobs.iter().filter_map(|j| j.pending.as_ref());
        waiting.chain(self.pending.as_ref()).filter_map(Pending::deadline).min()
    }

    /// Ends the waiting commands whose deadline passed, each in its origin.
    pub(super) fn commands_tick(&mut self, now: Instant) {
        let due = |p: &Option<Pending>| {
            p.as_ref().and_then(Pending::deadline).is_some_and(|at| at <= now)
        };
        let origins: Vec<Origin> =
            self.jobs.iter().filter(|j| due(&j.pending)).map(|j| j.origin).collect();
        for origin in origins {
            self.in_origin(Some(origin), |m| {
                let Some(pending) = m.pending.clone().filter(|_| due(&m.pending)) else { return };
                match pending {
                    Pending::Net(wait) => m.net_timed_out(wait, now),
                    Pending::Stream(wait) => m.stream_timed_out(wait, now),
                    // Waits for the platform, which always answers.
                    Pending::Save | Pending::Files(_) => {}
                }
            });
        }
    }
}

//! Files and the local streams: `file_create`, `file_open`, `file_delete`, `ls`, FILE and CMD
//! streams (chapter, "Network Connections and Streams": streams are associated with open files
//! and with the command buffering feature; protocol-facts §1.5, §3). The file system itself
//! and its limits are in [`crate::fs`]. Decisions (assumed where no source gives them):
//!
//! * `file_create [-u] [-e] [-o] <name> <size> [<version> [<type> [<crc>]]]`. Arguments that
//!   do not parse are refused at once, as `stream_write` refuses a bad size: unknown option
//!   code 6; size 0 or not a number, bad version, type or CRC code 7; a size over
//!   [`fs::CAPACITY`] code 9. Without `-o` a data phase follows, exactly as for
//!   `stream_write` (the same [`DATA_TIMEOUT`]: a short write is aborted with code 1 and
//!   nothing is created); the name and space are checked after it, so data that follows a
//!   well-formed command never runs as commands (after a refused one it does, as after a
//!   refused `stream_write`). With `-o` everything is checked at once and the answer is the handle of a
//!   FILE stream opened for writing (log `[Opened: N]`); `stream_write` fills it, and the
//!   write that completes the file answers `Success` once the file is stored. Writing past
//!   the size: code 9, nothing written. Closing the stream before the file is complete
//!   discards it (logged). The stream stays open after the file is complete until
//!   `stream_close`.
//! * File errors are logged as `File <name>: <reason>`; a bad name is code 7 (for every
//!   file command); a name taken, a missing file or a CRC mismatch code 1; no space or too
//!   many files code 9.
//! * A change the platform fails to store is undone and answers code 1 (`File store
//!   failed: …`); a file completed through a `-o` stream is then discarded and the stream
//!   closed. When the stored files could not be read at boot, every file change answers
//!   code 1 until `factory_reset` erases the store (reading and listing still work).
//! * `file_open <name>` answers the handle of a FILE stream for reading (log `[Opened: N]`);
//!   `stream_read` answers at once up to `<size>` bytes from the position (at most
//!   `bus.command.rx_bufsize` per read; an empty body at the end). Writing to it, or to a CMD
//!   stream: code 1, logged; the data phase is still taken off the bus first.
//! * `file_delete` of an open file (for reading or being written): code 1, logged.
//! * Each change of the files (created, deleted) is stored by the platform
//!   ([`Action::StoreFiles`]) before the command answers, so files survive a reboot or a
//!   power cut once the answer is out. `factory_reset` erases them too (the platform erases
//!   the stored image), so a factory-reset module has no user files.
//! * `system.cmd.buffered`: `help`, `ls`, `stream_list`, `wlan_scan`, `get all` and group
//!   getters, when they succeed, open a CMD stream holding their response text and answer
//!   `<handle> <size>` (size in bytes) instead; no log line. Errors answer as usual. No free
//!   local handle: code 1, `No free stream handles`.
//! * STREAM mode does not support FILE (chapter): when the module booted with
//!   `bus.mode stream`, `file_open` and `file_create -o` answer code 1 with the log
//!   `FILE streams are not supported in STREAM mode` (in command mode after break-in);
//!   `file_create` without `-o`, `file_delete` and `ls` open no stream and work. A FILE stream
//!   is never the streaming stream: only auto-started network streams claim the bus.
//!
//! A part of its own: [`Files`] owns the file system, its lock and the change being stored,
//! decides the file commands and the writes and reads of FILE streams through a [`Ctx`]
//! (FILE streams live in the stream table), and says what the module must do for the
//! command (answer, take a data phase, wait for the store, close a stream). CMD streams
//! (`system.cmd.buffered`) are the console's and stay with the module.

use super::*;
use ctx::Ctx;

/// The files service.
#[derive(Debug)]
pub(super) struct Files {
    /// The file system (FILE streams read and write it).
    pub(super) fs: FileSystem,
    /// Why the stored files could not be loaded; file changes are refused meanwhile.
    locked: Option<String>,
    /// The file system before the change being stored, put back if the store fails, and
    /// the `-o` stream (handle, bytes written before) whose write completed the file.
    before: Option<(FileSystem, Option<(usize, usize)>)>,
}

/// What a file command waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum FilesWait {
    /// [`Action::StoreFiles`] is out; `body` answers once it is stored.
    StoreFiles { body: String },
}

/// What the files service asks of the module for the command it serves.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FileStep {
    /// Answer now.
    Answer(ResultCode, Option<String>),
    /// Answer success with these raw bytes (a read of a local stream).
    Bytes(Vec<u8>),
    /// `file_create` without `-o`: take a data phase of `size` bytes for the file.
    Data(NewFile),
    /// [`Action::StoreFiles`] is out: wait, then answer `body` ([`Files::stored`]).
    Store(String),
    /// Close this stream, then answer with this code (a FILE stream whose file is gone).
    CloseThen(usize, ResultCode),
}

impl Files {
    pub(super) fn new(fs: FileSystem, locked: Option<String>) -> Self {
        Self { fs, locked, before: None }
    }

    /// Logs a file error and gives its result code.
    fn failed(name: &str, e: FsError, ctx: &mut Ctx<'_>) -> ResultCode {
        ctx.log(console::level::ERROR, format!("File {name}: {e}"));
        match e {
            FsError::BadName => ResultCode::BAD_ARGS,
            FsError::TooManyFiles | FsError::NoSpace { .. } | FsError::TooLong { .. } => {
                ResultCode::BOUNDS_ERROR
            }
            FsError::Exists | FsError::NotFound | FsError::BadCrc { .. } => ResultCode::FAILED,
        }
    }

    /// STREAM mode does not support FILE streams.
    fn stream_refused(stream_mode: bool, ctx: &mut Ctx<'_>) -> bool {
        if stream_mode {
            ctx.log(console::level::ERROR, "FILE streams are not supported in STREAM mode");
        }
        stream_mode
    }

    /// Hands the files to the platform; the command answers `body` once they are stored,
    /// or fails and `before` comes back (see [`Files::stored`]).
    fn store(
        &mut self,
        body: &str,
        before: FileSystem,
        stream: Option<(usize, usize)>,
        ctx: &mut Ctx<'_>,
    ) -> FileStep {
        ctx.act(Action::StoreFiles(self.fs.encode()));
        self.before = Some((before, stream));
        FileStep::Store(body.to_string())
    }

    /// Refuses a file change while the stored files could not be loaded; `true` if refused.
    fn refused(&self, ctx: &mut Ctx<'_>) -> bool {
        let Some(why) = &self.locked else { return false };
        ctx.log(console::level::ERROR, format!("Files: {why}; factory_reset erases them"));
        true
    }

    /// A name `file_open`/`file_delete` can look up: a bad one is code 7, like `file_create`.
    fn valid_name(name: &str, ctx: &mut Ctx<'_>) -> bool {
        let valid = fs::valid_name(name);
        if !valid {
            Self::failed(name, FsError::BadName, ctx);
        }
        valid
    }

    /// Opens a local stream and logs `[Opened: N]`; `None` (logged) when no handle is free.
    fn open_local(local: Local, ctx: &mut Ctx<'_>) -> Option<usize> {
        match ctx.streams.open(Stream::local(local)) {
            Some(h) => {
                ctx.log(console::level::STATUS, format!("[Opened: {h}]"));
                Some(h)
            }
            None => {
                ctx.log(console::level::ERROR, "No free stream handles");
                None
            }
        }
    }

    /// Whether a FILE stream has `name` open.
    fn is_open(name: &str, streams: &Streams) -> bool {
        streams.iter().any(|(_, s)| match &s.source {
            Some(Local::FileRead { name: n, .. } | Local::FileWrite { name: n, .. }) => n == name,
            _ => false,
        })
    }

    /// `ls`, `file_open`, `file_delete`, `file_create`; `stream_mode`: booted in STREAM mode
    /// (no FILE streams).
    pub(super) fn command(
        &mut self,
        id: CommandId,
        args: &[String],
        stream_mode: bool,
        ctx: &mut Ctx<'_>,
    ) -> FileStep {
        let failed = FileStep::Answer(ResultCode::FAILED, None);
        match id {
            CommandId::Ls => {
                let verbose = match args.first().map(String::as_str) {
                    None => false,
                    Some("-v") => true,
                    Some(_) => return FileStep::Answer(ResultCode::UNKNOWN_OPTION, None),
                };
                FileStep::Answer(ResultCode::SUCCESS, Some(self.fs.list(verbose)))
            }
            CommandId::FileOpen => {
                let name = vars::unescape_plain(&args[0]);
                if !Self::valid_name(&name, ctx) {
                    return FileStep::Answer(ResultCode::BAD_ARGS, None);
                }
                if Self::stream_refused(stream_mode, ctx) {
                    return failed;
                }
                let Some(file) = self.fs.get(&name) else {
                    let code = Self::failed(&name, FsError::NotFound, ctx);
                    return FileStep::Answer(code, None);
                };
                let (label, size) = (file.label(), file.size());
                match Self::open_local(Local::FileRead { name, label, size, pos: 0 }, ctx) {
                    Some(h) => FileStep::Answer(ResultCode::SUCCESS, Some(h.to_string())),
                    None => failed,
                }
            }
            CommandId::FileDelete => {
                let name = vars::unescape_plain(&args[0]);
                if !Self::valid_name(&name, ctx) {
                    return FileStep::Answer(ResultCode::BAD_ARGS, None);
                }
                if self.refused(ctx) {
                    return failed;
                }
                if Self::is_open(&name, ctx.streams) {
                    ctx.log(console::level::ERROR, format!("File {name}: file is open"));
                    return failed;
                }
                let before = self.fs.clone();
                if let Err(e) = self.fs.delete(&name) {
                    let code = Self::failed(&name, e, ctx);
                    return FileStep::Answer(code, None);
                }
                self.store("Success", before, None, ctx)
            }
            _ => self.create_command(args, stream_mode, ctx),
        }
    }

    fn create_command(
        &mut self,
        args: &[String],
        stream_mode: bool,
        ctx: &mut Ctx<'_>,
    ) -> FileStep {
        let bad = FileStep::Answer(ResultCode::BAD_ARGS, None);
        let (mut flags, mut open) = (0, false);
        let mut rest = Vec::new();
        for arg in args {
            match arg.as_str() {
                "-u" if rest.is_empty() => flags |= fs::FLAG_UNPROTECTED,
                "-e" if rest.is_empty() => flags |= fs::FLAG_ESSENTIAL,
                "-o" if rest.is_empty() => open = true,
                flag if flag.starts_with('-') && rest.is_empty() => {
                    return FileStep::Answer(ResultCode::UNKNOWN_OPTION, None);
                }
                _ => rest.push(arg.as_str()),
            }
        }
        let (name, size, version, kind, crc) = match rest.as_slice() {
            [] | [_] => return FileStep::Answer(ResultCode::TOO_FEW_ARGS, None),
            [name, size, more @ ..] if more.len() <= 3 => {
                (*name, *size, more.first(), more.get(1), more.get(2))
            }
            _ => return FileStep::Answer(ResultCode::TOO_MANY_ARGS, None),
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
                Self::failed(&name, FsError::NoSpace { need: size, free: self.fs.free() }, ctx);
            return FileStep::Answer(code, None);
        }
        let new = NewFile { name, size, version, kind, flags, crc };
        if !open {
            return FileStep::Data(new);
        }
        if Self::stream_refused(stream_mode, ctx) || self.refused(ctx) {
            return FileStep::Answer(ResultCode::FAILED, None);
        }
        let name = new.name.clone();
        let version = new.version;
        if let Err(e) = self.fs.begin(new) {
            let code = Self::failed(&name, e, ctx);
            return FileStep::Answer(code, None);
        }
        let label = format!("{name}-{version}");
        let local = Local::FileWrite { name: name.clone(), label, size, written: 0 };
        match Self::open_local(local, ctx) {
            Some(h) => FileStep::Answer(ResultCode::SUCCESS, Some(h.to_string())),
            None => {
                self.fs.abort(&name);
                FileStep::Answer(ResultCode::FAILED, None)
            }
        }
    }

    /// The data phase of `file_create` (no `-o`) is complete.
    pub(super) fn create(&mut self, new: NewFile, data: &[u8], ctx: &mut Ctx<'_>) -> FileStep {
        let name = new.name.clone();
        if self.refused(ctx) {
            return FileStep::Answer(ResultCode::FAILED, None);
        }
        let before = self.fs.clone();
        match self.fs.create(new, data) {
            Ok(()) => self.store("Success", before, None, ctx),
            Err(e) => FileStep::Answer(Self::failed(&name, e, ctx), None),
        }
    }

    /// `stream_write` to a local stream, after its data phase.
    pub(super) fn write(&mut self, handle: usize, data: &[u8], ctx: &mut Ctx<'_>) -> FileStep {
        let Some(stream) = ctx.streams.get_mut(handle) else {
            return FileStep::Answer(ResultCode::SUCCESS, None);
        };
        let Some(Local::FileWrite { name, written, size, .. }) = &mut stream.source else {
            let what = if stream.kind == StreamType::Cmd {
                "a command response"
            } else {
                "opened for reading"
            };
            ctx.log(console::level::ERROR, format!("Stream {handle}: {what}, not writable"));
            return FileStep::Answer(ResultCode::FAILED, None);
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
                    self.store("Success", before, Some((handle, written_before)), ctx)
                } else {
                    FileStep::Answer(ResultCode::SUCCESS, Some("Success".to_string()))
                }
            }
            Err(e) => {
                let code = Self::failed(&name, e, ctx);
                if matches!(e, FsError::BadCrc { .. }) {
                    // The file is gone: so is its stream (nothing left to discard or log).
                    if let Some(Stream {
                        source: Some(Local::FileWrite { written, size, .. }),
                        ..
                    }) = ctx.streams.get_mut(handle)
                    {
                        *written = *size;
                    }
                    return FileStep::CloseThen(handle, code);
                }
                FileStep::Answer(code, None)
            }
        }
    }

    /// `stream_read` on a local stream: answers at once, at most `cap`
    /// (`bus.command.rx_bufsize`) bytes.
    pub(super) fn read(
        &self,
        handle: usize,
        size: usize,
        cap: usize,
        ctx: &mut Ctx<'_>,
    ) -> FileStep {
        let size = size.min(cap);
        let Some(stream) = ctx.streams.get_mut(handle) else {
            return FileStep::Answer(ResultCode::BAD_ARGS, None);
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
                ctx.log(console::level::ERROR, line);
                return FileStep::Answer(ResultCode::FAILED, None);
            }
        };
        stream.rx_bytes += body.len() as u64;
        FileStep::Bytes(body)
    }

    /// How [`Action::StoreFiles`] went for the change that answers `body`: answer it, or
    /// undo the change (a `-o` stream whose write completed the file is closed).
    pub(super) fn stored(
        &mut self,
        result: Result<(), &str>,
        body: String,
        ctx: &mut Ctx<'_>,
    ) -> FileStep {
        let before = self.before.take();
        match result {
            Ok(()) => FileStep::Answer(ResultCode::SUCCESS, Some(body)),
            Err(reason) => {
                ctx.log(console::level::ERROR, format!("File store failed: {reason}"));
                if let Some((fs, stream)) = before {
                    self.fs = fs;
                    if let Some((handle, written_before)) = stream {
                        if let Some(Stream {
                            source: Some(Local::FileWrite { written, .. }), ..
                        }) = ctx.streams.get_mut(handle)
                        {
                            *written = written_before;
                        }
                        return FileStep::CloseThen(handle, ResultCode::FAILED);
                    }
                }
                FileStep::Answer(ResultCode::FAILED, None)
            }
        }
    }
}

impl Module {
    /// Marks the command being run as answering through a CMD stream, when buffering is on.
    pub(super) fn buffer_as(&mut self, command: &'static str) {
        if self.cfg.console.buffered {
            self.buffer = Some(command);
        }
    }

    /// Answers `<handle> <size>` of a CMD stream holding `text`.
    pub(super) fn respond_buffered(&mut self, command: &'static str, text: &str) {
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

    /// Does what the files service asked for the command being run; `None` when the
    /// command answered or waits.
    fn file_step(&mut self, step: FileStep, now: Instant) -> Option<(ResultCode, Option<String>)> {
        match step {
            FileStep::Answer(code, body) => Some((code, body)),
            FileStep::Bytes(body) => {
                self.respond_bytes(ResultCode::SUCCESS, &body);
                None
            }
            FileStep::Data(new) => {
                self.start_data(new.size, WriteTarget::File(new), now);
                None
            }
            FileStep::Store(body) => {
                self.pending = Some(Pending::Files(FilesWait::StoreFiles { body }));
                None
            }
            FileStep::CloseThen(handle, code) => {
                self.close_stream(handle, now);
                Some((code, None))
            }
        }
    }

    /// Like [`Module::file_step`] for a command whose wait ended (a data phase, a store):
    /// the answer finishes it.
    fn file_step_finish(&mut self, step: FileStep, now: Instant) {
        if let Some((code, body)) = self.file_step(step, now) {
            self.finish(code, body.as_deref(), now);
        }
    }

    pub(super) fn file_command(
        &mut self,
        id: CommandId,
        args: &[String],
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        if id == CommandId::Ls && matches!(args.first().map(String::as_str), None | Some("-v")) {
            self.buffer_as("ls");
        }
        let stream_mode = self.svc.bus.configured;
        let step = self.with_ctx(|s, ctx| s.files.command(id, args, stream_mode, ctx));
        self.file_step(step, now)
    }

    /// The data phase of `file_create` (no `-o`) is complete.
    pub(super) fn create_file(&mut self, new: NewFile, data: &[u8], now: Instant) {
        let step = self.with_ctx(|s, ctx| s.files.create(new, data, ctx));
        self.file_step_finish(step, now);
    }

    /// `stream_write` to a local stream, after its data phase.
    pub(super) fn local_write(&mut self, handle: usize, data: &[u8], now: Instant) {
        let step = self.with_ctx(|s, ctx| s.files.write(handle, data, ctx));
        self.file_step_finish(step, now);
    }

    /// `stream_read` on a local stream: answers at once.
    pub(super) fn local_read(
        &mut self,
        handle: usize,
        size: usize,
        now: Instant,
    ) -> Option<(ResultCode, Option<String>)> {
        let cap = self.svc.sockets.cfg().bus.rx_bufsize;
        let step = self.with_ctx(|s, ctx| s.files.read(handle, size, cap, ctx));
        self.file_step(step, now)
    }

    /// How [`Action::StoreFiles`] went: answer, or undo the change.
    pub(super) fn files_stored_here(&mut self, result: Result<(), &str>, now: Instant) {
        let Some(Pending::Files(FilesWait::StoreFiles { body })) = self.pending.clone() else {
            return;
        };
        let step = self.with_ctx(|s, ctx| s.files.stored(result, body, ctx));
        self.file_step_finish(step, now);
    }
}

/// The stored file system; `Some(why)` when it could not be read (file changes are then
/// refused until `factory_reset`), noted for the boot log.
pub(super) fn restore_files(
    stored: &Stored<'_>,
    notes: &mut Vec<String>,
) -> (FileSystem, Option<String>) {
    let (fs, files_locked) = match (stored.files_fault, stored.files.map(FileSystem::decode)) {
        (Some(fault), _) => (FileSystem::new(), Some(format!("file store read failed: {fault}"))),
        (None, None) => (FileSystem::new(), None),
        (None, Some(Ok(fs))) => (fs, None),
        (None, Some(Err(e))) => (FileSystem::new(), Some(format!("{e}"))),
    };
    if let Some(why) = &files_locked {
        notes.push(format!("Files: {why}; file changes refused until factory_reset"));
    }
    (fs, files_locked)
}

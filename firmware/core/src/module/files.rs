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

use super::*;

/// The files service's state.
#[derive(Debug)]
pub(super) struct Files {
    /// The file system (FILE streams read and write it).
    pub(super) fs: FileSystem,
    /// Why the stored files could not be loaded; file changes are refused meanwhile.
    pub(super) locked: Option<String>,
    /// The file system before the change being stored, put back if the store fails, and
    /// the `-o` stream (handle, bytes written before) whose write completed the file.
    pub(super) before: Option<(FileSystem, Option<(usize, usize)>)>,
}

/// What a file command waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum FilesWait {
    /// [`Action::StoreFiles`] is out; `body` answers once it is stored.
    StoreFiles { body: String },
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

    /// Logs a file error and gives its result code.
    pub(super) fn file_failed(&mut self, name: &str, e: FsError) -> ResultCode {
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
    pub(super) fn file_stream_refused(&mut self) -> bool {
        if self.svc.bus.configured {
            self.log(console::level::ERROR, "FILE streams are not supported in STREAM mode");
        }
        self.svc.bus.configured
    }

    /// Hands the files to the platform; the command answers `body` once they are stored,
    /// or fails and `before` comes back (see [`Module::files_stored`]).
    pub(super) fn store_files(
        &mut self,
        body: &str,
        before: FileSystem,
        stream: Option<(usize, usize)>,
    ) {
        self.actions.push_back(Action::StoreFiles(self.files.fs.encode()));
        self.files.before = Some((before, stream));
        self.pending = Some(Pending::Files(FilesWait::StoreFiles { body: body.to_string() }));
    }

    /// Refuses a file change while the stored files could not be loaded; `true` if refused.
    pub(super) fn files_refused(&mut self) -> bool {
        let Some(why) = self.files.locked.clone() else { return false };
        self.log(console::level::ERROR, &format!("Files: {why}; factory_reset erases them"));
        true
    }

    /// A name `file_open`/`file_delete` can look up: a bad one is code 7, like `file_create`.
    pub(super) fn valid_file_name(&mut self, name: &str) -> bool {
        let valid = fs::valid_name(name);
        if !valid {
            self.file_failed(name, FsError::BadName);
        }
        valid
    }

    /// Opens a local stream and logs `[Opened: N]`; `None` (logged) when no handle is free.
    pub(super) fn open_local(&mut self, local: Local) -> Option<usize> {
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
    pub(super) fn file_is_open(&self, name: &str) -> bool {
        self.streams.iter().any(|(_, s)| match &s.source {
            Some(Local::FileRead { name: n, .. } | Local::FileWrite { name: n, .. }) => n == name,
            _ => false,
        })
    }

    pub(super) fn file_command(
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
                Some((ResultCode::SUCCESS, Some(self.files.fs.list(verbose))))
            }
            CommandId::FileOpen => {
                let name = vars::unescape_plain(&args[0]);
                if !self.valid_file_name(&name) {
                    return Some((ResultCode::BAD_ARGS, None));
                }
                if self.file_stream_refused() {
                    return failed;
                }
                let Some(file) = self.files.fs.get(&name) else {
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
                let before = self.files.fs.clone();
                if let Err(e) = self.files.fs.delete(&name) {
                    let code = self.file_failed(&name, e);
                    return Some((code, None));
                }
                self.store_files("Success", before, None);
                None
            }
            _ => self.file_create(args, now),
        }
    }

    pub(super) fn file_create(
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
            let code = self
                .file_failed(&name, FsError::NoSpace { need: size, free: self.files.fs.free() });
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
        if let Err(e) = self.files.fs.begin(new) {
            let code = self.file_failed(&name, e);
            return Some((code, None));
        }
        let label = format!("{name}-{version}");
        match self.open_local(Local::FileWrite { name: name.clone(), label, size, written: 0 }) {
            Some(h) => Some((ResultCode::SUCCESS, Some(h.to_string()))),
            None => {
                self.files.fs.abort(&name);
                Some((ResultCode::FAILED, None))
            }
        }
    }

    /// The data phase of `file_create` (no `-o`) is complete.
    pub(super) fn create_file(&mut self, new: NewFile, data: &[u8], now: Instant) {
        let name = new.name.clone();
        if self.files_refused() {
            return self.finish(ResultCode::FAILED, None, now);
        }
        let before = self.files.fs.clone();
        match self.files.fs.create(new, data) {
            Ok(()) => self.store_files("Success", before, None),
            Err(e) => {
                let code = self.file_failed(&name, e);
                self.finish(code, None, now);
            }
        }
    }

    /// `stream_write` to a local stream, after its data phase.
    pub(super) fn local_write(&mut self, handle: usize, data: &[u8], now: Instant) {
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
        let before = (written_before + data.len() == *size).then(|| self.files.fs.clone());
        match self.files.fs.append(&name, data) {
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
    pub(super) fn local_read(
        &mut self,
        handle: usize,
        size: usize,
    ) -> Option<(ResultCode, Option<String>)> {
        let size = size.min(self.cfg.bus.rx_bufsize);
        let Some(stream) = self.streams.get_mut(handle) else {
            return Some((ResultCode::BAD_ARGS, None));
        };
        let body = match &mut stream.source {
            Some(Local::FileRead { name, pos, .. }) => {
                let data = self.files.fs.get(name).map_or(&[][..], |f| f.data());
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

    /// How [`Action::StoreFiles`] went: answer, or undo the change.
    pub(super) fn files_stored_here(&mut self, result: Result<(), &str>, now: Instant) {
        let Some(Pending::Files(FilesWait::StoreFiles { body })) = self.pending.clone() else {
            return;
        };
        let before = self.files.before.take();
        match result {
            Ok(()) => self.finish(ResultCode::SUCCESS, Some(&body), now),
            Err(reason) => {
                self.log(console::level::ERROR, &format!("File store failed: {reason}"));
                if let Some((fs, stream)) = before {
                    self.files.fs = fs;
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

//! Files and the local streams: `file_create`, `file_open`, `file_delete`, `ls`, FILE and CMD
//! streams, persistence through [`Action::StoreFiles`], STREAM mode; driven through the
//! module's bytes, actions and ticks.

use super::frames::*;
use super::tests::board;
use super::*;
use crate::fs::{CAPACITY, FileSystem, crc16};
use crate::streams::LOCAL_MAX;
use alloc::vec;
use rstest::rstest;

const T0: Instant = Instant::ZERO;

struct Rig {
    m: Module,
    now: Instant,
    /// Images the module asked to store, oldest first.
    stored: Vec<Vec<u8>>,
}

impl Rig {
    /// Machine format, every log, then `setup`; booted from `files` (a stored image).
    fn with_files(files: Option<&[u8]>, setup: &[&str]) -> Self {
        let m = Module::boot_from(board(), Stored { files, ..Stored::default() }, T0);
        let mut rig = Self { m, now: T0, stored: Vec::new() };
        rig.m.feed(b"set system.cmd.format machine\r\n", T0);
        rig.m.take_output();
        for line in ["set system.print_level all"].iter().chain(setup) {
            assert_eq!(rig.send(line), vec![resp(0, "Set OK")], "{line}");
        }
        rig
    }

    fn new(setup: &[&str]) -> Self {
        Self::with_files(None, setup)
    }

    fn send(&mut self, line: &str) -> Vec<F> {
        self.bytes(format!("{line}\r\n").as_bytes())
    }

    /// Feeds bytes; stores files the module asks to store (with `Ok`) and returns what it
    /// printed.
    fn bytes(&mut self, bytes: &[u8]) -> Vec<F> {
        self.m.feed(bytes, self.now);
        let mut out = frames(&self.m.take_output());
        while let Some(action) = self.m.next_action() {
            match action {
                Action::StoreFiles(image) => {
                    assert_eq!(out, vec![], "nothing answers before the files are stored");
                    self.stored.push(image);
                    self.m.files_stored(Ok(()), self.now);
                    out.extend(frames(&self.m.take_output()));
                }
                other => panic!("unexpected action {other:?}"),
            }
        }
        out
    }

    /// `file_create <args>` followed by `data`.
    fn create(&mut self, args: &str, data: &[u8]) -> Vec<F> {
        let mut bytes = format!("file_create {args}\r\n").into_bytes();
        bytes.extend_from_slice(data);
        self.bytes(&bytes)
    }

    /// `stream_write <handle> <len>` with `data`.
    fn write(&mut self, handle: usize, data: &[u8]) -> Vec<F> {
        let mut bytes = format!("stream_write {handle} {}\r\n", data.len()).into_bytes();
        bytes.extend_from_slice(data);
        self.bytes(&bytes)
    }

    fn advance(&mut self, ms: u64) -> Vec<F> {
        self.now = self.now + Duration::from_millis(ms);
        self.m.tick(self.now);
        frames(&self.m.take_output())
    }
}

// ---------------------------------------------------------------------------------------------
// file_create, ls, file_delete
// ---------------------------------------------------------------------------------------------

#[test]
fn create_with_a_data_phase_then_list() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.create("hello.txt 5", b"hello"), vec![success()]);
    assert_eq!(rig.stored.len(), 1, "stored before the answer");
    assert_eq!(rig.create("-u webapp/x.html 2 1.0.1.3 3", b"<p"), vec![success()]);
    assert_eq!(
        rig.send("ls"),
        vec![resp(
            0,
            "! # Size Version Filename\r\n# 0 5 1.0.0.0 hello.txt\r\n# 1 2 1.0.1.3 webapp/x.html"
        )]
    );
    let verbose = format!(
        "! # Type Flags CRC Size Version Filename\r\n# 0 FE - {:04X} 5 1.0.0.0 hello.txt\r\n# 1 03 u {:04X} 2 1.0.1.3 webapp/x.html",
        crc16(b"hello"),
        crc16(b"<p")
    );
    assert_eq!(rig.send("ls -v"), vec![resp(0, &verbose)]);
    assert_eq!(rig.send("ls -x"), vec![resp(6, "Unknown variable or option")]);
    // Shortcuts.
    assert_eq!(rig.bytes(b"fcr s 1\r\nZ"), vec![success()]);
    assert_eq!(rig.send("fde s"), vec![success()]);
    assert_eq!(rig.send("fde s"), vec![log(E, "File s: file not found"), failed()]);
}

#[test]
fn the_data_phase_is_binary_and_may_follow_a_lone_cr() {
    let mut rig = Rig::new(&[]);
    let data = b"\r\n\0\xff>";
    // A CR LF line end: the LF is not data.
    assert_eq!(rig.create("bin 5", data), vec![success()]);
    assert_eq!(rig.m.files().get("bin").map(|f| f.data().to_vec()), Some(data.to_vec()));
    // Bytes after the data are the next command line.
    assert_eq!(rig.bytes(b"fcr two 2\r\nokls\r\n").len(), 2);
}

#[rstest]
#[case::too_few("file_create x", 4)]
#[case::unknown_option("file_create -z x 3", 6)]
#[case::zero_size("file_create x 0", 7)]
#[case::size_not_a_number("file_create x 3k", 7)]
#[case::bad_version("file_create x 3 1.0", 7)]
#[case::bad_type("file_create x 3 1.0.0 256", 7)]
#[case::bad_crc("file_create x 3 1.0.0 0xFE 0x10000", 7)]
#[case::too_many("file_create x 3 1.0.0 1 2 3", 5)]
#[case::bigger_than_the_file_system("file_create x 300000", 9)]
fn bad_arguments_are_refused_before_any_data(#[case] line: &str, #[case] code: u8) {
    let mut rig = Rig::new(&[]);
    let out = rig.send(line);
    assert!(matches!(out.last(), Some(F::R(c, _)) if *c == code), "{out:?}");
    // No data phase: the next line is a command.
    assert_eq!(rig.send("ls"), vec![resp(0, "! # Size Version Filename")]);
    assert_eq!(rig.stored.len(), 0);
}

#[rstest]
#[case::bad_name("a//b 3", "abc", 7, "File a//b: bad file name")]
#[case::crc_mismatch(
    "c 9 1.0.0 0xFE 0x1234",
    "123456789",
    1,
    "File c: CRC mismatch: given 0x1234, contents 0x29B1"
)]
fn state_errors_come_after_the_data(
    #[case] args: &str,
    #[case] data: &str,
    #[case] code: u8,
    #[case] note: &str,
) {
    let mut rig = Rig::new(&[]);
    let out = rig.create(args, data.as_bytes());
    assert_eq!(out.first(), Some(&log(E, note)));
    assert!(matches!(out.last(), Some(F::R(c, _)) if *c == code), "{out:?}");
    assert_eq!(rig.m.files().files().count(), 0, "nothing kept");
    assert_eq!(rig.stored.len(), 0);
}

#[test]
fn a_matching_crc_is_accepted_and_an_existing_name_refused() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.create("c 9 1.0.0 0xFE 0x29B1", b"123456789"), vec![success()]);
    assert_eq!(
        rig.create("c 9 1.0.0 254 10673", b"123456789"),
        vec![log(E, "File c: file exists"), failed()]
    );
}

#[test]
fn limits_of_the_file_system() {
    let mut rig = Rig::new(&[]);
    let big = vec![b'x'; CAPACITY - 10];
    assert_eq!(rig.create(&format!("big {}", big.len()), &big), vec![success()]);
    let out = rig.create("more 11", b"01234567890");
    assert_eq!(
        out,
        vec![
            log(E, "File more: file system full: 11 bytes needed, 10 free"),
            resp(9, "Bounds error")
        ]
    );
    assert_eq!(rig.send("fde big"), vec![success()]);
    for i in 0..fs::MAX_FILES {
        assert_eq!(rig.create(&format!("f{i} 1"), b"x"), vec![success()]);
    }
    let out = rig.create("one-more 1", b"x");
    assert_eq!(out.first(), Some(&log(E, "File one-more: too many files (at most 32)")));
    assert!(matches!(out.last(), Some(F::R(9, _))));
}

#[test]
fn a_short_data_phase_is_aborted_and_creates_nothing() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.create("slow 10", b"abc"), vec![]);
    let out = rig.advance(DATA_TIMEOUT.as_millis());
    assert_eq!(out, vec![log(E, "Write aborted: 7 bytes missing"), failed()]);
    assert_eq!(rig.m.files().files().count(), 0);
    assert_eq!(rig.send("ls"), vec![resp(0, "! # Size Version Filename")]);
}

// ---------------------------------------------------------------------------------------------
// file_create -o: a FILE stream for writing
// ---------------------------------------------------------------------------------------------

#[test]
fn create_through_a_stream() {
    let mut rig = Rig::new(&[]);
    let out = rig.send("fcr -o -e w.bin 6 2.1.0.7");
    assert_eq!(out, vec![log(S, "[Opened: 0]"), resp(0, "0")]);
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info\r\n# 0 FILE w.bin-2.1.0.7 (6, 0)")]);
    assert_eq!(rig.write(0, b"abc"), vec![success()]);
    assert_eq!(rig.stored.len(), 0, "not complete yet");
    assert_eq!(rig.send("ls"), vec![resp(0, "! # Size Version Filename")], "not listed yet");
    assert_eq!(rig.send("poll 0"), vec![resp(0, "0")]);
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info\r\n# 0 FILE w.bin-2.1.0.7 (6, 3)")]);
    assert_eq!(
        rig.send("read 0 3"),
        vec![log(E, "Stream 0: opened for writing, not readable"), failed()]
    );
    // Past the size: refused whole.
    let out = rig.write(0, b"defg");
    assert_eq!(out.first(), Some(&log(E, "File w.bin: more than the file's 6 bytes")));
    assert!(matches!(out.last(), Some(F::R(9, _))));
    assert_eq!(rig.write(0, b"def"), vec![success()]);
    assert_eq!(rig.stored.len(), 1, "complete: stored");
    assert_eq!(rig.send("ls"), vec![resp(0, "! # Size Version Filename\r\n# 0 6 2.1.0.7 w.bin")]);
    assert_eq!(rig.send("close 0"), vec![log(I, "Closing: 0"), log(S, "[Closed: 0]"), success()]);
    assert_eq!(rig.m.files().get("w.bin").map(|f| f.data().to_vec()), Some(b"abcdef".to_vec()));
}

#[test]
fn closing_a_stream_early_discards_the_file() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.send("fcr -o part 10").last(), Some(&resp(0, "0")));
    assert_eq!(rig.write(0, b"abc"), vec![success()]);
    let out = rig.send("close 0");
    assert_eq!(out[0], log(E, "File part: closed after 3 of 10 bytes, discarded"));
    assert_eq!(out.last(), Some(&success()));
    assert_eq!(rig.m.files().used(), 0, "its space is free again");
    assert_eq!(rig.send("fcr -o part 10").last(), Some(&resp(0, "0")), "the name is free");
}

#[test]
fn a_stream_whose_crc_does_not_match_is_closed_and_keeps_nothing() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.send("fcr -o c 3 1.0.0 0xFE 0x0001").last(), Some(&resp(0, "0")));
    let out = rig.write(0, b"abc");
    let mismatch = format!("File c: CRC mismatch: given 0x0001, contents 0x{:04X}", crc16(b"abc"));
    assert_eq!(
        out,
        vec![log(E, &mismatch), log(I, "Closing: 0"), log(S, "[Closed: 0]"), failed()],
        "no second note that the file was discarded"
    );
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")]);
    assert_eq!(rig.m.files().files().count(), 0);
}

#[test]
fn a_name_being_written_is_taken_but_not_openable() {
    let mut rig = Rig::new(&[]);
    rig.send("fcr -o x 3");
    assert_eq!(rig.send("fcr -o x 3"), vec![log(E, "File x: file exists"), failed()]);
    assert_eq!(rig.send("fop x"), vec![log(E, "File x: file not found"), failed()]);
    assert_eq!(rig.send("fde x"), vec![log(E, "File x: file is open"), failed()]);
}

// ---------------------------------------------------------------------------------------------
// file_open: a FILE stream for reading
// ---------------------------------------------------------------------------------------------

#[test]
fn open_read_poll_and_close() {
    let mut rig = Rig::new(&[]);
    rig.create("webapp/unauthorized.html 10 1.0.1.3", b"0123456789");
    assert_eq!(
        rig.send("file_open webapp/unauthorized.html"),
        vec![log(S, "[Opened: 0]"), resp(0, "0")]
    );
    assert_eq!(
        rig.send("stream_list"),
        vec![resp(0, "! # Type Info\r\n# 0 FILE webapp/unauthorized.html-1.0.1.3 (10, 0)")]
    );
    assert_eq!(rig.send("poll 0"), vec![resp(0, "1")]);
    assert_eq!(rig.send("read 0 4"), vec![resp(0, "0123")]);
    assert_eq!(
        rig.send("list"),
        vec![resp(0, "! # Type Info\r\n# 0 FILE webapp/unauthorized.html-1.0.1.3 (10, 4)")]
    );
    assert_eq!(rig.send("read 0 100"), vec![resp(0, "456789")]);
    assert_eq!(rig.send("poll 0"), vec![resp(0, "2")], "at the end");
    assert_eq!(rig.send("read 0 100"), vec![resp(0, "")], "past the end: empty, at once");
    assert_eq!(rig.send("poll"), vec![resp(0, "0:2")]);
    let out = rig.write(0, b"xy");
    assert_eq!(out, vec![log(E, "Stream 0: opened for reading, not writable"), failed()]);
    assert_eq!(
        rig.send("fde webapp/unauthorized.html"),
        vec![log(E, "File webapp/unauthorized.html: file is open"), failed()]
    );
    assert_eq!(rig.send("close 0").last(), Some(&success()));
    assert_eq!(rig.send("fde webapp/unauthorized.html"), vec![success()]);
    assert_eq!(
        rig.send("fop webapp/unauthorized.html"),
        vec![log(E, "File webapp/unauthorized.html: file not found"), failed()]
    );
}

#[test]
fn a_read_is_capped_at_the_receive_buffer_size() {
    let mut rig = Rig::new(&["set bus.command.rx_bufsize 256"]);
    let data = vec![b'a'; 300];
    rig.create("big 300", &data);
    rig.send("fop big");
    match rig.send("read 0 1000").as_slice() {
        [F::R(0, body)] => assert_eq!(body.len(), 256),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(rig.send("read 0 1000"), vec![resp(0, &"a".repeat(44))]);
}

#[test]
fn local_streams_have_their_own_handle_limit() {
    let mut rig = Rig::new(&[]);
    rig.create("f 1", b"x");
    for h in 0..LOCAL_MAX {
        assert_eq!(rig.send("fop f").last(), Some(&resp(0, &h.to_string())));
    }
    assert_eq!(rig.send("fop f"), vec![log(E, "No free stream handles"), failed()]);
    assert_eq!(rig.m.streams.network_count(), 0);
    assert!(!rig.m.streams.network_full(), "network streams may still open");
    assert_eq!(rig.send("close all").last(), Some(&success()));
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")]);
}

// ---------------------------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------------------------

#[test]
fn files_come_back_from_the_stored_image() {
    let mut rig = Rig::new(&[]);
    rig.create("-u keep/me.txt 4 1.2.3.4 7", b"data");
    rig.create("gone 1", b"x");
    rig.send("fde gone");
    let image = rig.stored.last().expect("stored").clone();
    rig.m.feed(b"reboot\r\n", rig.now);
    assert_eq!(rig.m.next_action(), Some(Action::Reboot));
    let mut again = Rig::with_files(Some(&image), &[]);
    assert_eq!(
        again.send("ls -v").last(),
        Some(&resp(
            0,
            &format!(
                "! # Type Flags CRC Size Version Filename\r\n# 0 07 u {:04X} 4 1.2.3.4 keep/me.txt",
                crc16(b"data")
            )
        ))
    );
    again.send("fop keep/me.txt");
    assert_eq!(again.send("read 0 10"), vec![resp(0, "data")]);
}

#[rstest]
#[case::damaged(
    Stored { files: Some(b"GECKO-FS 0"), ..Stored::default() },
    "Files: not a file system image (bad magic); file changes refused until factory_reset"
)]
#[case::unreadable(
    Stored { files_fault: Some("I/O error"), ..Stored::default() },
    "Files: file store read failed: I/O error; file changes refused until factory_reset"
)]
fn files_that_could_not_be_loaded_lock_the_file_system(
    #[case] stored: Stored<'static>,
    #[case] note: &str,
) {
    let mut m = Module::boot_from(board(), stored, T0);
    let out = String::from_utf8(m.take_output()).expect("text");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], note, "logged after the banner: {out}");
    assert_eq!(m.files().files().count(), 0);
    // Changes are refused, so the store is never overwritten; reading still works.
    let mut rig = Rig { m, now: T0, stored: Vec::new() };
    rig.m.feed(b"set system.cmd.format machine\r\nset system.print_level all\r\n", T0);
    rig.m.take_output();
    let why = note
        .trim_start_matches("Files: ")
        .trim_end_matches("; file changes refused until factory_reset");
    let refused = log(E, &format!("Files: {why}; factory_reset erases them"));
    assert_eq!(rig.create("a 1", b"a"), vec![refused.clone(), failed()]);
    assert_eq!(rig.send("fcr -o a 1"), vec![refused.clone(), failed()]);
    assert_eq!(rig.send("fde a"), vec![refused, failed()]);
    assert_eq!(rig.send("ls"), vec![resp(0, "! # Size Version Filename")]);
    assert!(rig.stored.is_empty(), "nothing was stored");
}

#[test]
fn an_unreadable_nvm_is_logged_after_the_banner() {
    let stored = Stored { nvm_fault: Some("I/O error"), ..Stored::default() };
    let mut m = Module::boot_from(board(), stored, T0);
    let out = String::from_utf8(m.take_output()).expect("text");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "NVM read failed: I/O error; using defaults", "{out}");
}

/// Feeds `bytes`, fails the store the module asks for, and returns what it printed.
fn failing_store(rig: &mut Rig, bytes: &[u8]) -> Vec<F> {
    rig.m.feed(bytes, rig.now);
    assert!(matches!(rig.m.next_action(), Some(Action::StoreFiles(_))));
    rig.m.files_stored(Err("flash worn out"), rig.now);
    frames(&rig.m.take_output())
}

#[test]
fn a_failed_store_undoes_a_create() {
    let mut rig = Rig::new(&[]);
    let out = failing_store(&mut rig, b"fcr x 1\r\nx");
    assert_eq!(out, vec![log(E, "File store failed: flash worn out"), failed()]);
    assert_eq!(rig.m.files().files().count(), 0, "the file is not kept");
    assert_eq!(rig.create("x 1", b"x"), vec![success()], "so the name is free");
}

#[test]
fn a_failed_store_undoes_a_delete() {
    let mut rig = Rig::new(&[]);
    rig.create("x 1", b"x");
    let out = failing_store(&mut rig, b"fde x\r\n");
    assert_eq!(out, vec![log(E, "File store failed: flash worn out"), failed()]);
    assert_eq!(rig.send("ls"), vec![resp(0, "! # Size Version Filename\r\n# 0 1 1.0.0.0 x")]);
}

#[test]
fn a_failed_store_discards_a_file_completed_through_a_stream() {
    let mut rig = Rig::new(&[]);
    assert_eq!(rig.send("fcr -o y 4").last(), Some(&resp(0, "0")));
    assert_eq!(rig.write(0, b"ab"), vec![success()]);
    let out = failing_store(&mut rig, b"stream_write 0 2\r\ncd");
    assert_eq!(
        out,
        vec![
            log(E, "File store failed: flash worn out"),
            log(E, "File y: closed after 2 of 4 bytes, discarded"),
            log(I, "Closing: 0"),
            log(S, "[Closed: 0]"),
            failed()
        ]
    );
    assert_eq!(rig.m.files().files().count(), 0);
    assert_eq!(rig.m.files().used(), 0, "its space is free again");
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")]);
}

#[rstest]
#[case::open("fop")]
#[case::delete("fde")]
fn a_bad_name_is_code_7_for_every_file_command(#[case] command: &str) {
    let mut rig = Rig::new(&[]);
    let out = rig.send(&format!("{command} a//b"));
    assert_eq!(out, vec![log(E, "File a//b: bad file name"), resp(7, "Invalid argument")]);
}

// ---------------------------------------------------------------------------------------------
// CMD streams (system.cmd.buffered)
// ---------------------------------------------------------------------------------------------

#[test]
fn buffered_commands_answer_a_cmd_stream() {
    let mut rig = Rig::new(&[]);
    rig.create("a.txt 1", b"a");
    let text = "! # Size Version Filename\r\n# 0 1 1.0.0.0 a.txt";
    assert_eq!(rig.send("set system.cmd.buffered 1"), vec![resp(0, "Set OK")]);
    assert_eq!(rig.send("ls"), vec![resp(0, &format!("0 {}", text.len()))]);
    let listing = format!("! # Type Info\r\n# 0 CMD ls ({}, 0)", text.len());
    let answer = format!("1 {}", listing.len());
    assert_eq!(rig.send("list"), vec![resp(0, &answer)], "stream_list is buffered too");
    assert_eq!(rig.send("read 1 100"), vec![resp(0, &listing)]);
    assert_eq!(rig.send("poll 0"), vec![resp(0, "1")]);
    assert_eq!(rig.send("read 0 10"), vec![resp(0, &text[..10])]);
    assert_eq!(rig.send("read 0 100"), vec![resp(0, &text[10..])]);
    assert_eq!(rig.send("poll 0"), vec![resp(0, "2")]);
    assert_eq!(rig.send("read 0 100"), vec![resp(0, "")]);
    assert_eq!(
        rig.write(0, b"x"),
        vec![log(E, "Stream 0: a command response, not writable"), failed()]
    );
    assert_eq!(rig.send("close 0").last(), Some(&success()));
    assert_eq!(rig.send("close 1").last(), Some(&success()));
}

#[rstest]
#[case::help("help", true)]
#[case::help_commands("help commands", true)]
#[case::get_all("get all", true)]
#[case::get_group("get wlan", true)]
#[case::get_one("get wlan.ssid", false)]
#[case::version("version", false)]
#[case::errors_are_not_buffered("ls -z", false)]
#[case::unknown_group("get nothing", false)]
fn which_commands_are_buffered(#[case] line: &str, #[case] buffered: bool) {
    let mut rig = Rig::new(&["set system.cmd.buffered 1"]);
    rig.send("set system.cmd.buffered 0");
    let plain = rig.send(line);
    rig.send("set system.cmd.buffered 1");
    let out = rig.send(line);
    if !buffered {
        assert_eq!(out, plain);
        rig.send("set system.cmd.buffered 0");
        assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")], "no CMD stream");
        return;
    }
    let Some(F::R(0, text)) = plain.last() else { panic!("{plain:?}") };
    // `get all` shows system.cmd.buffered itself.
    let text = text.replace("system.cmd.buffered: 0", "system.cmd.buffered: 1");
    assert_eq!(out, vec![resp(0, &format!("0 {}", text.len()))]);
    // Read it all back, in reads of at most bus.command.rx_bufsize bytes.
    let mut got = String::new();
    loop {
        match rig.send("read 0 10000").as_slice() {
            [F::R(0, body)] if body.is_empty() => break,
            [F::R(0, body)] => got.push_str(body),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, text);
    rig.send("set system.cmd.buffered 0");
    let word = line.split(' ').next().expect("a word");
    let listed = format!("! # Type Info\r\n# 0 CMD {word} ({}, {})", text.len(), text.len());
    assert_eq!(rig.send("list"), vec![resp(0, &listed)]);
}

#[test]
fn a_buffered_command_with_no_free_handle_fails() {
    let mut rig = Rig::new(&["set system.cmd.buffered 1"]);
    for h in 0..LOCAL_MAX {
        assert_eq!(rig.send("ls"), vec![resp(0, &format!("{h} 25"))]);
    }
    assert_eq!(rig.send("ls"), vec![log(E, "No free stream handles"), failed()]);
}

// ---------------------------------------------------------------------------------------------
// STREAM mode
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_mode_opens_no_file_streams() {
    let image = nvm::encode([
        ("system.cmd.echo", b"0".as_slice()),
        ("system.cmd.header_enabled", b"1"),
        ("system.cmd.prompt_enabled", b"0"),
        ("system.print_level", b"all"),
        ("bus.mode", b"stream"),
        ("bus.stream.cmd_seq", b"$$$"),
    ]);
    let mut files = FileSystem::new();
    let new = fs::NewFile {
        name: "f".into(),
        size: 1,
        version: Version::DEFAULT,
        kind: 0,
        flags: 0,
        crc: None,
    };
    files.create(new, b"x").expect("created");
    let files = files.encode();
    let stored = Stored { nvm: Some(&image), files: Some(&files), ..Stored::default() };
    let m = Module::boot_from(board(), stored, T0);
    let mut rig = Rig { m, now: T0, stored: Vec::new() };
    rig.m.take_output();
    // Streaming: a file command is only data (dropped: no stream streams).
    assert_eq!(rig.send("fop f"), vec![]);
    rig.now = rig.now + Duration::from_millis(3000);
    assert_eq!(rig.bytes(b"$$$"), vec![log(S, "[Command mode]")]);
    let refused = log(E, "FILE streams are not supported in STREAM mode");
    assert_eq!(rig.send("fop f"), vec![refused.clone(), failed()]);
    assert_eq!(rig.send("fcr -o g 3"), vec![refused, failed()]);
    assert_eq!(rig.send("list"), vec![resp(0, "! # Type Info")]);
    // What opens no stream works.
    assert_eq!(rig.create("g 3", b"abc"), vec![success()]);
    assert_eq!(
        rig.send("ls"),
        vec![resp(0, "! # Size Version Filename\r\n# 0 1 1.0.0.0 f\r\n# 1 3 1.0.0.0 g")]
    );
    assert_eq!(rig.send("fde g"), vec![success()]);
    // Back to streaming: still no stream carries the bus.
    assert_eq!(rig.send("exit"), vec![success()]);
    assert_eq!(rig.m.bus_handle(), None);
}

// ---------------------------------------------------------------------------------------------
// The RTC and log timestamps (system.cmd.timestamp)
// ---------------------------------------------------------------------------------------------

#[test]
fn the_rtc_runs_from_when_it_was_set() {
    let mut rig = Rig::new(&["set time.rtc 1398282000"]);
    rig.now = rig.now + Duration::from_millis(2_500);
    assert_eq!(rig.send("get time.rtc"), vec![resp(0, "1398282002")]);
    assert_eq!(rig.send("get time.last_set"), vec![resp(0, "1398282000")]);
}

#[rstest]
#[case::utc(&["set system.cmd.timestamp utc"], "2014-04-23 | 19:40:23")]
#[case::local(&["set system.cmd.timestamp local", "set time.zone -7"], "2014-04-23 | 12:40:23")]
#[case::local_half_hour(
    &["set system.cmd.timestamp local", "set time.zone +5:30"],
    "2014-04-24 | 01:10:23"
)]
fn logs_carry_the_time_when_asked(#[case] setup: &[&str], #[case] stamp: &str) {
    let mut lines = vec!["set time.rtc 1398282023"];
    lines.extend_from_slice(setup);
    let mut rig = Rig::new(&lines);
    rig.create("f 1", b"f");
    let out = rig.send("fop f");
    assert_eq!(out, vec![log(S, &format!("[{stamp}: Opened: 0]")), resp(0, "0")]);
    let out = rig.send("fde nope");
    assert_eq!(out[0], log(E, &format!("{stamp}: File nope: file not found")));
}

#[test]
fn without_timestamps_logs_are_as_they_were() {
    let mut rig = Rig::new(&["set time.rtc 1398282023"]);
    rig.create("f 1", b"f");
    assert_eq!(rig.send("fop f"), vec![log(S, "[Opened: 0]"), resp(0, "0")]);
}

//! The command-line editor: bytes from the serial bus in, command lines (and echo) out.
//!
//! Always: CR, LF or CR LF end a line; backspace (0x08) and DEL (0x7f) delete; terminal
//! escape sequences are never part of a line; other bytes, control characters included, go
//! into the line as they are (a value that may not hold them is then refused, not silently
//! changed); a line longer than [`LINE_MAX`] is dropped and reported ([`Edit::Overflow`]).
//!
//! With echo on (a person at a terminal, `system.cmd.echo`), the editor is interactive
//! (protocol-facts §1.1: "TAB completion, 5-entry history (up-arrow), left-arrow/home/end/
//! backspace editing"):
//!
//! * **Cursor**: left/right arrows, Home/End (`ESC [ H`/`F`, `ESC O H`/`F`, `ESC [ 1~`/`4~`,
//!   Ctrl-A/Ctrl-E), Delete (`ESC [ 3~`); typing and backspace work at the cursor.
//! * **History**: the last [`HISTORY`] non-empty lines typed (a line that repeats the newest
//!   is not added again); up/down arrows recall them, down past the newest gives back the line
//!   being typed. Lines a host sends with echo off (passkeys among them) are not kept.
//! * **Control characters** other than the editing keys ring the bell and stay out of the
//!   line: they would not show, and every redraw would count them wrong.
//! * **TAB** at the end of the line completes the word before it with the candidates the
//!   caller's [`Completer`] gives: one candidate is completed (and a space added); several
//!   are completed to their longest common prefix, and a second TAB lists them (then the
//!   prompt and the line again); none rings the bell.
//!
//! All of it only redraws with backspaces, spaces and the characters of the line, so it works
//! on any terminal; a log line printed while a line is being typed is followed by the prompt
//! and the line again ([`LineEditor::redraw_after_output`]). With echo off (a host program)
//! the editor only collects bytes: `ESC [` sequences are swallowed, everything else (Ctrl-A,
//! Ctrl-E, TAB and other control characters included) goes into the line (assumed: no source
//! says what a non-echoing console does with them).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Longest command line the editor holds (bytes before CR/LF). Longer lines are answered
/// with code 8. Chosen to fit `set wlan.passkey` with 63 `\xHH` encodings.
pub const LINE_MAX: usize = 512;

/// Lines the history keeps (protocol-facts §1.1: five).
pub const HISTORY: usize = 5;

/// What one input byte completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Nothing yet.
    Pending,
    /// A command line (without its line end; may be empty).
    Line(Vec<u8>),
    /// A line longer than [`LINE_MAX`] ended; its content was dropped.
    Overflow,
}

/// Completion candidates for TAB.
pub trait Completer {
    /// Every word that can stand where `partial` is, after the words of `before` (the line up
    /// to the word being completed), that starts with `partial`.
    fn candidates(&self, before: &str, partial: &str) -> Vec<&'static str>;
}

/// No completion (tests, and callers with nothing to offer).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCompletion;

impl Completer for NoCompletion {
    fn candidates(&self, _: &str, _: &str) -> Vec<&'static str> {
        Vec::new()
    }
}

/// How the editor may talk back for one byte.
#[derive(Clone, Copy)]
pub struct Mode<'a> {
    /// Echo and interactive editing (a person at a terminal).
    pub echo: bool,
    /// The prompt to redraw after listing completions.
    pub prompt: &'a [u8],
    pub completer: &'a dyn Completer,
}

impl core::fmt::Debug for Mode<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mode").field("echo", &self.echo).finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// Saw ESC.
    Start,
    /// Inside a CSI sequence (`ESC [`, parameter bytes so far).
    Csi(Vec<u8>),
    /// After `ESC O` (SS3: the next byte is the key).
    Ss3,
}

/// A key that moves the cursor or the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    Delete,
}

/// The line being typed, its cursor, and the history.
#[derive(Clone, Debug, Default)]
pub struct LineEditor {
    buf: Vec<u8>,
    cursor: usize,
    overflow: bool,
    after_cr: bool,
    escape: Escape,
    history: VecDeque<Vec<u8>>,
    /// Which history entry is shown (0 = newest), and the line typed before recalling.
    recall: Option<(usize, Vec<u8>)>,
    /// The previous byte was a TAB that left several candidates.
    tabbed: bool,
}

impl LineEditor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last line ended with CR (so an LF may still follow as part of that line
    /// end); clears it. A data phase that starts after the line asks this.
    pub fn take_after_cr(&mut self) -> bool {
        core::mem::take(&mut self.after_cr)
    }

    /// Feeds one byte; echo and redraw bytes (with echo on) are appended to `out`.
    pub fn feed(&mut self, b: u8, mode: Mode<'_>, out: &mut Vec<u8>) -> Edit {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        let tabbed = core::mem::replace(&mut self.tabbed, false);
        // A line end always ends a line, even inside an unfinished escape sequence.
        if b == b'\r' || b == b'\n' {
            self.escape = Escape::None;
        }
        if self.escape != Escape::None {
            if let Some(key) = self.escape_byte(b, mode.echo)
                && mode.echo
                && !self.overflow
            {
                self.key(key, out);
            }
            return Edit::Pending;
        }
        match b {
            b'\n' if after_cr => Edit::Pending,
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                if mode.echo {
                    out.extend_from_slice(b"\r\n");
                }
                self.cursor = 0;
                self.recall = None;
                let line = core::mem::take(&mut self.buf);
                if core::mem::replace(&mut self.overflow, false) {
                    return Edit::Overflow;
                }
                let repeat = self.history.front() == Some(&line);
                if mode.echo && !line.is_empty() && !repeat {
                    self.history.push_front(line.clone());
                    self.history.truncate(HISTORY);
                }
                Edit::Line(line)
            }
            0x08 | 0x7f => {
                if !self.overflow && self.cursor > 0 {
                    self.cursor -= 1;
                    self.buf.remove(self.cursor);
                    if mode.echo {
                        out.push(0x08);
                        self.redraw_tail(out, 1);
                    }
                }
                Edit::Pending
            }
            0x1b => {
                self.escape = Escape::Start;
                Edit::Pending
            }
            0x01 if mode.echo => {
                self.key(Key::Home, out);
                Edit::Pending
            }
            0x05 if mode.echo => {
                self.key(Key::End, out);
                Edit::Pending
            }
            b'\t' if mode.echo => {
                if !self.overflow && self.cursor == self.buf.len() {
                    self.complete(mode, tabbed, out);
                }
                Edit::Pending
            }
            _ => {
                if self.overflow {
                    return Edit::Pending;
                }
                if self.buf.len() >= LINE_MAX {
                    self.overflow = true;
                    self.buf.clear();
                    self.cursor = 0;
                    return Edit::Pending;
                }
                if mode.echo && b < 0x20 {
                    out.push(0x07);
                    return Edit::Pending;
                }
                self.buf.insert(self.cursor, b);
                self.cursor += 1;
                if mode.echo {
                    out.push(b);
                    self.redraw_tail(out, 0);
                }
                Edit::Pending
            }
        }
    }

    /// Advances the escape-sequence parser (inside a sequence); the key it completed, if any.
    /// `ESC O` (SS3) keys exist only at a terminal (echo on); otherwise only `ESC` and `O` are
    /// swallowed, as they always were.
    fn escape_byte(&mut self, b: u8, echo: bool) -> Option<Key> {
        match core::mem::take(&mut self.escape) {
            Escape::None => None,
            Escape::Start => {
                self.escape = match b {
                    b'[' => Escape::Csi(Vec::new()),
                    b'O' if echo => Escape::Ss3,
                    _ => Escape::None,
                };
                None
            }
            Escape::Ss3 => match b {
                b'A'..=b'D' | b'H' | b'F' => arrow(b),
                _ => None,
            },
            Escape::Csi(mut params) => {
                if (0x40..=0x7e).contains(&b) {
                    return match (params.as_slice(), b) {
                        ([], _) => arrow(b),
                        (b"1" | b"7", b'~') => Some(Key::Home),
                        (b"4" | b"8", b'~') => Some(Key::End),
                        (b"3", b'~') => Some(Key::Delete),
                        _ => None,
                    };
                }
                // Parameter and intermediate bytes; a runaway sequence stays bounded.
                if params.len() < 16 {
                    params.push(b);
                }
                self.escape = Escape::Csi(params);
                None
            }
        }
    }

    fn key(&mut self, key: Key, out: &mut Vec<u8>) {
        match key {
            Key::Left if self.cursor > 0 => {
                self.cursor -= 1;
                out.push(0x08);
            }
            Key::Right if self.cursor < self.buf.len() => {
                out.push(self.buf[self.cursor]);
                self.cursor += 1;
            }
            Key::Home => {
                out.extend(core::iter::repeat_n(0x08, self.cursor));
                self.cursor = 0;
            }
            Key::End => {
                out.extend_from_slice(&self.buf[self.cursor..]);
                self.cursor = self.buf.len();
            }
            Key::Delete if self.cursor < self.buf.len() => {
                self.buf.remove(self.cursor);
                self.redraw_tail(out, 1);
            }
            Key::Up => {
                let next = self.recall.as_ref().map_or(0, |(i, _)| i + 1);
                if let Some(line) = self.history.get(next).cloned() {
                    let typed = match self.recall.take() {
                        Some((_, typed)) => typed,
                        None => self.buf.clone(),
                    };
                    self.recall = Some((next, typed));
                    self.replace(line, out);
                }
            }
            Key::Down => match self.recall.take() {
                Some((0, typed)) => self.replace(typed, out),
                Some((i, typed)) => {
                    let line = self.history.get(i - 1).cloned().unwrap_or_default();
                    self.recall = Some((i - 1, typed));
                    self.replace(line, out);
                }
                None => {}
            },
            Key::Left | Key::Right | Key::Delete => {}
        }
    }

    /// Whether part of a line has been typed (output printed now lands in the middle of it).
    pub fn typing(&self) -> bool {
        !self.buf.is_empty() && !self.overflow
    }

    /// After output that interrupted a line being typed (a log line, which starts on a line
    /// of its own): the prompt and the line again, the cursor where it was.
    pub fn redraw_after_output(&self, prompt: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(prompt);
        out.extend_from_slice(&self.buf);
        out.extend(core::iter::repeat_n(0x08, self.buf.len() - self.cursor));
    }

    /// Echoes the line from the cursor to its end, blanks `erased` characters after it, and
    /// moves back to the cursor.
    fn redraw_tail(&self, out: &mut Vec<u8>, erased: usize) {
        let tail = &self.buf[self.cursor..];
        out.extend_from_slice(tail);
        out.extend(core::iter::repeat_n(b' ', erased));
        out.extend(core::iter::repeat_n(0x08, tail.len() + erased));
    }

    /// Shows `line` instead of the current one, cursor at its end.
    fn replace(&mut self, line: Vec<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[self.cursor..]);
        for _ in 0..self.buf.len() {
            out.extend_from_slice(b"\x08 \x08");
        }
        out.extend_from_slice(&line);
        self.cursor = line.len();
        self.buf = line;
    }

    /// TAB at the end of the line.
    fn complete(&mut self, mode: Mode<'_>, tabbed: bool, out: &mut Vec<u8>) {
        let Ok(line) = core::str::from_utf8(&self.buf) else { return out.push(0x07) };
        let start = line.rfind(' ').map_or(0, |i| i + 1);
        let (before, partial) = line.split_at(start);
        let candidates = mode.completer.candidates(before, partial);
        let Some(first) = candidates.first() else { return out.push(0x07) };
        let common = candidates.iter().fold(first.len(), |n, c| {
            n.min(first.bytes().zip(c.bytes()).take_while(|(a, b)| a == b).count())
        });
        let mut add: Vec<u8> = first.as_bytes()[partial.len().min(common)..common].to_vec();
        if candidates.len() == 1 {
            add.push(b' ');
        }
        if add.len() + self.buf.len() > LINE_MAX {
            return out.push(0x07);
        }
        if !add.is_empty() {
            out.extend_from_slice(&add);
            self.buf.extend_from_slice(&add);
            self.cursor = self.buf.len();
            return;
        }
        if !tabbed {
            // Ambiguous and nothing to add: a second TAB lists the candidates.
            self.tabbed = true;
            return out.push(0x07);
        }
        out.extend_from_slice(b"\r\n");
        for (i, c) in candidates.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"  ");
            }
            out.extend_from_slice(c.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(mode.prompt);
        out.extend_from_slice(&self.buf);
    }
}

/// The key of a final byte `A`–`D`, `H`, `F` (CSI without parameters, or SS3).
fn arrow(b: u8) -> Option<Key> {
    match b {
        b'A' => Some(Key::Up),
        b'B' => Some(Key::Down),
        b'C' => Some(Key::Right),
        b'D' => Some(Key::Left),
        b'H' => Some(Key::Home),
        b'F' => Some(Key::End),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use rstest::rstest;

    /// Completes command names for the first word and variable names after `get`.
    struct Names;

    impl Completer for Names {
        fn candidates(&self, before: &str, partial: &str) -> Vec<&'static str> {
            let words: &[&'static str] = match before.trim_end() {
                "" => &["get", "network_up", "network_down", "set", "stream_list"],
                "get" => &["wlan.ssid", "wlan.passkey", "wlan.security"],
                _ => &[],
            };
            words.iter().copied().filter(|w| w.starts_with(partial)).collect()
        }
    }

    fn mode(echo: bool) -> Mode<'static> {
        Mode { echo, prompt: b"> ", completer: &Names }
    }

    fn feed_all(ed: &mut LineEditor, input: &[u8], echo: bool) -> (Vec<Edit>, Vec<u8>) {
        let mut out = vec![];
        let edits =
            input.iter().map(|&b| ed.feed(b, mode(echo), &mut out)).filter(|e| *e != Edit::Pending);
        (edits.collect(), out)
    }

    #[rstest]
    #[case::crlf(b"ver\r\n".as_slice(), &["ver"])]
    #[case::cr(b"ver\r".as_slice(), &["ver"])]
    #[case::lf(b"ver\n".as_slice(), &["ver"])]
    #[case::lfcr_is_two(b"ver\n\r".as_slice(), &["ver", ""])]
    #[case::two_lines(b"a\r\nb\r\n".as_slice(), &["a", "b"])]
    #[case::backspace(b"vex\x08r\r".as_slice(), &["ver"])]
    #[case::del(b"vex\x7fr\r".as_slice(), &["ver"])]
    #[case::backspace_on_empty(b"\x08\x08ver\r".as_slice(), &["ver"])]
    #[case::arrow_keys(b"v\x1b[Aer\x1b[D\r".as_slice(), &["ver"])]
    #[case::escape_cut_by_line_end(b"ab\x1b\rver\x1b[\r".as_slice(), &["ab", "ver"])]
    #[case::controls_kept(b"v\x01r\r".as_slice(), &["v\u{1}r"])]
    fn edits_lines(#[case] input: &[u8], #[case] want: &[&str]) {
        let mut ed = LineEditor::new();
        let (edits, _) = feed_all(&mut ed, input, false);
        let want: Vec<Edit> = want.iter().map(|l| Edit::Line(l.as_bytes().to_vec())).collect();
        assert_eq!(edits, want);
    }

    #[test]
    fn echoes_typing_backspace_and_line_end() {
        let mut ed = LineEditor::new();
        let (_, out) = feed_all(&mut ed, b"ab\x08c\r\n", true);
        assert_eq!(out, b"ab\x08 \x08c\r\n");
    }

    #[test]
    fn overflow_drops_line_and_recovers() {
        let mut ed = LineEditor::new();
        let mut input = vec![b'x'; LINE_MAX + 10];
        input.extend_from_slice(b"\r\nver\r\n");
        let (edits, _) = feed_all(&mut ed, &input, false);
        assert_eq!(edits, vec![Edit::Overflow, Edit::Line(b"ver".to_vec())]);
    }

    #[test]
    fn exactly_line_max_fits() {
        let mut ed = LineEditor::new();
        let mut input = vec![b'x'; LINE_MAX];
        input.push(b'\r');
        let (edits, _) = feed_all(&mut ed, &input, false);
        assert_eq!(edits, vec![Edit::Line(vec![b'x'; LINE_MAX])]);
    }

    /// Feeds `input` with echo on: the lines and everything echoed.
    fn typed(ed: &mut LineEditor, input: &[u8]) -> (Vec<String>, Vec<u8>) {
        let (edits, out) = feed_all(ed, input, true);
        let lines = edits
            .into_iter()
            .map(|e| match e {
                Edit::Line(l) => String::from_utf8(l).expect("text"),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        (lines, out)
    }

    use alloc::string::String;

    #[rstest]
    #[case::insert_in_the_middle(b"vr\x1b[De\r".as_slice(), "ver")]
    #[case::backspace_in_the_middle(b"vexr\x1b[D\x08\r".as_slice(), "ver")]
    #[case::home_and_end(b"er\x1b[Hv\x1b[F!\r".as_slice(), "ver!")]
    #[case::home_end_ss3(b"er\x1bOHv\x1bOF!\r".as_slice(), "ver!")]
    #[case::home_end_vt(b"er\x1b[1~v\x1b[4~!\r".as_slice(), "ver!")]
    #[case::ctrl_a_ctrl_e(b"er\x01v\x05!\r".as_slice(), "ver!")]
    #[case::delete_key(b"vxer\x1b[D\x1b[D\x1b[D\x1b[3~\r".as_slice(), "ver")]
    #[case::right_at_the_end(b"ver\x1b[C\x1b[C\r".as_slice(), "ver")]
    #[case::left_at_the_start(b"\x1b[Dver\r".as_slice(), "ver")]
    #[case::unknown_sequence(b"v\x1b[5~er\x1b[2J\r".as_slice(), "ver")]
    fn edits_at_the_cursor(#[case] input: &[u8], #[case] want: &str) {
        let (lines, _) = typed(&mut LineEditor::new(), input);
        assert_eq!(lines, vec![want]);
    }

    #[test]
    fn echo_redraws_the_tail_after_the_cursor() {
        let mut ed = LineEditor::new();
        let (_, out) = feed_all(&mut ed, b"vr\x1b[De", true);
        assert_eq!(out, b"vr\x08er\x08");
        let (_, out) = feed_all(&mut ed, b"\x7f", true);
        assert_eq!(out, b"\x08r \x08\x08", "backspace in the middle");
    }

    #[test]
    fn history_recalls_the_last_five_distinct_lines() {
        let mut ed = LineEditor::new();
        typed(&mut ed, b"a1\rb2\rb2\rc3\rd4\re5\rf6\r\r");
        // Up five times: f6 e5 d4 c3 b2 (a1 has gone, b2 is kept once); a sixth does nothing.
        let (lines, _) = typed(&mut ed, b"\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\r");
        assert_eq!(lines, vec!["b2"]);
        let (lines, _) = typed(&mut ed, b"\x1b[A\r");
        assert_eq!(lines, vec!["b2"], "the newest is now b2");
        // Down past the newest gives back what was being typed.
        let (lines, out) = typed(&mut ed, b"xy\x1b[A\x1b[B\r");
        assert_eq!(lines, vec!["xy"]);
        assert_eq!(out, b"xy\x08 \x08\x08 \x08b2\x08 \x08\x08 \x08xy\r\n");
    }

    #[test]
    fn without_echo_there_is_no_history_nor_editing() {
        let mut ed = LineEditor::new();
        let input = b"get x\r\x1b[A\r\x01\t\x05\r\x1bOHx\r";
        let (edits, out) = feed_all(&mut ed, input, false);
        assert_eq!(
            edits,
            vec![
                Edit::Line(b"get x".to_vec()),
                Edit::Line(vec![]),
                Edit::Line(b"\x01\t\x05".to_vec()),
                Edit::Line(b"Hx".to_vec()),
            ],
            "ESC O is swallowed, not the byte after it"
        );
        assert!(out.is_empty());
        // Nothing typed with echo off went into the history.
        let (edits, _) = feed_all(&mut ed, b"\x1b[A\r", true);
        assert_eq!(edits, vec![Edit::Line(vec![])]);
    }

    #[test]
    fn control_characters_ring_the_bell_at_a_terminal() {
        let mut ed = LineEditor::new();
        let (lines, out) = typed(&mut ed, b"a\x0eb\x1b[H\x02x\r");
        assert_eq!(lines, vec!["xab"]);
        assert_eq!(out, b"a\x07b\x08\x08\x07xab\x08\x08\r\n");
    }

    #[test]
    fn a_line_interrupted_by_output_comes_back_with_its_cursor() {
        let mut ed = LineEditor::new();
        assert!(!ed.typing());
        feed_all(&mut ed, b"get wl\x1b[D", true);
        assert!(ed.typing());
        let mut out = vec![];
        ed.redraw_after_output(b"> ", &mut out);
        assert_eq!(out, b"> get wl\x08");
    }

    #[rstest]
    #[case::unique_command(b"stre\t\r".as_slice(), "stream_list ", b"stream_list \r\n".as_slice())]
    #[case::common_prefix(b"net\t\r".as_slice(), "network_", b"network_\r\n".as_slice())]
    #[case::variable(b"get wlan.ss\t\r".as_slice(), "get wlan.ssid ", b"get wlan.ssid \r\n".as_slice())]
    #[case::nothing_matches(b"xyz\t\r".as_slice(), "xyz", b"xyz\x07\r\n".as_slice())]
    #[case::not_at_the_end(b"gt\x1b[D\t\r".as_slice(), "gt", b"gt\x08\r\n".as_slice())]
    fn tab_completes_the_last_word(#[case] input: &[u8], #[case] line: &str, #[case] echo: &[u8]) {
        let (lines, out) = typed(&mut LineEditor::new(), input);
        assert_eq!(lines, vec![line]);
        assert_eq!(out, echo);
    }

    #[test]
    fn a_second_tab_lists_the_candidates_and_redraws_the_line() {
        let mut ed = LineEditor::new();
        let (_, out) = feed_all(&mut ed, b"get wlan.s\t", true);
        assert_eq!(out, b"get wlan.s\x07", "ambiguous, nothing to add: the bell");
        let (_, out) = feed_all(&mut ed, b"\t", true);
        assert_eq!(out, b"\r\nwlan.ssid  wlan.security\r\n> get wlan.s");
        let (lines, _) = typed(&mut ed, b"ec\t\r");
        assert_eq!(lines, vec!["get wlan.security "]);
    }
}

//! The console: line editing on the way in, response and log framing on the way out, for the
//! serial console and the remote terminal alike.
//!
//! Output framing (protocol-facts §1.3): with `system.cmd.header_enabled` a response starts
//! with `R<code><5-digit length>\r\n` and a log message with `L<level><5-digit length>\r\n`;
//! the length counts the body's trailing `\r\n`, and an empty body has length 0 and no line
//! end. The prompt `> ` follows a response (never a log) when `system.cmd.prompt_enabled`,
//! and is not counted.

mod editor;
mod front;

pub use editor::{Completer, Edit, HISTORY, LINE_MAX, LineEditor, Mode, NoCompletion};
pub use front::Console;

/// The serial console is a [`Console`] on the UART.
pub type SerialConsole = Console;

use crate::command::{COMMANDS, CommandId, lookup};
use crate::result::ResultCode;
use crate::vars::VARIABLES;
use alloc::vec::Vec;
use core::fmt::Write;

/// Log levels; a log prints when `system.print_level` is at least its level.
pub mod level {
    /// Boot banner, `[Ready]`, association and link state.
    pub const STATUS: u8 = 1;
    /// Errors worth telling a person.
    pub const ERROR: u8 = 2;
    /// Progress of longer operations.
    pub const INFO: u8 = 3;
    /// Detail.
    pub const DEBUG: u8 = 4;
}

/// The framing settings in force, read from the `system.*` variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub echo: bool,
    pub header: bool,
    pub prompt: bool,
    /// 0 silences logs; 255 stands for `all`.
    pub print_level: u8,
}

impl Format {
    /// Appends a response: header (if enabled), body with its line end, prompt (if enabled).
    pub fn response(&self, out: &mut Vec<u8>, code: ResultCode, body: &str) {
        self.response_bytes(out, code, body.as_bytes());
    }

    /// [`Format::response`] with a body of raw bytes (`stream_read` data).
    pub fn response_bytes(&self, out: &mut Vec<u8>, code: ResultCode, body: &[u8]) {
        let len = if body.is_empty() { 0 } else { body.len() + 2 };
        if self.header {
            push_header(out, 'R', code.0, len);
        }
        if !body.is_empty() {
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        if self.prompt {
            out.extend_from_slice(b"> ");
        }
    }

    /// Appends a log message if the print level lets it through.
    pub fn log(&self, out: &mut Vec<u8>, level: u8, text: &str) {
        if self.print_level == 0 || level > self.print_level {
            return;
        }
        if self.header {
            push_header(out, 'L', level, text.len() + 2);
        }
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn push_header(out: &mut Vec<u8>, kind: char, digit: u8, len: usize) {
    let mut header = alloc::string::String::with_capacity(9);
    // Writing to a String cannot fail; the length is capped so the field stays five digits.
    let _ = write!(header, "{kind}{}{:05}\r\n", digit % 10, len.min(99_999));
    out.extend_from_slice(header.as_bytes());
}

/// The data phase of `stream_write` and `udp_server write`: after the command line, exactly
/// `size` bytes are taken from the bus verbatim (CR, LF and control bytes included, nothing
/// echoed). When the command line ended with a lone CR, one LF right after it is taken as the
/// rest of that line end, not as data (so `write 0 5\r\n` followed by 5 bytes works).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPhase {
    want: usize,
    buf: Vec<u8>,
    skip_lf: bool,
}

impl DataPhase {
    pub fn new(want: usize, skip_lf: bool) -> Self {
        Self { want, buf: Vec::with_capacity(want), skip_lf }
    }

    /// Takes bytes until complete; returns how many of `bytes` it used.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        if self.skip_lf && !bytes.is_empty() {
            self.skip_lf = false;
            if bytes[0] == b'\n' {
                used = 1;
            }
        }
        let n = (self.want - self.buf.len()).min(bytes.len() - used);
        self.buf.extend_from_slice(&bytes[used..used + n]);
        used + n
    }

    pub fn is_complete(&self) -> bool {
        self.buf.len() == self.want
    }

    /// Bytes still expected.
    pub fn missing(&self) -> usize {
        self.want - self.buf.len()
    }

    pub fn into_data(self) -> Vec<u8> {
        self.buf
    }
}

/// TAB completion on the console: command names for the first word; variable names after
/// `get` and `set`; command names after `help` (and its `commands`/`variables` topics).
#[derive(Clone, Copy, Debug, Default)]
pub struct Names;

impl Completer for Names {
    fn candidates(&self, before: &str, partial: &str) -> Vec<&'static str> {
        let words: Vec<&str> = before.split_whitespace().collect();
        let pool: Vec<&'static str> = match words.as_slice() {
            [] => COMMANDS.iter().map(|c| c.name).collect(),
            [command] => match lookup(command).map(|c| c.id) {
                Some(CommandId::Get | CommandId::Set) => VARIABLES.iter().map(|v| v.name).collect(),
                Some(CommandId::Help) => ["commands", "variables"]
                    .into_iter()
                    .chain(COMMANDS.iter().map(|c| c.name))
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        pool.into_iter().filter(|w| w.starts_with(partial)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use rstest::rstest;

    const MACHINE: Format = Format { echo: false, header: true, prompt: false, print_level: 0 };
    const HUMAN: Format = Format { echo: true, header: false, prompt: true, print_level: 255 };

    #[rstest]
    #[case::set_ok(MACHINE, 0, "Set OK", b"R000008\r\nSet OK\r\n".as_slice())]
    #[case::value(MACHINE, 0, "1", b"R000003\r\n1\r\n".as_slice())]
    #[case::empty(MACHINE, 0, "", b"R000000\r\n".as_slice())]
    #[case::error(MACHINE, 3, "Unknown command", b"R300017\r\nUnknown command\r\n".as_slice())]
    #[case::human(HUMAN, 0, "Set OK", b"Set OK\r\n> ".as_slice())]
    #[case::human_empty(HUMAN, 0, "", b"> ".as_slice())]
    #[case::both(Format { prompt: true, ..MACHINE }, 0, "x", b"R000003\r\nx\r\n> ".as_slice())]
    fn frames_responses(
        #[case] format: Format,
        #[case] code: u8,
        #[case] body: &str,
        #[case] want: &[u8],
    ) {
        let mut out = vec![];
        format.response(&mut out, ResultCode(code), body);
        assert_eq!(out, want);
    }

    #[test]
    fn multi_line_body_counts_inner_line_ends() {
        let mut out = vec![];
        MACHINE.response(&mut out, ResultCode::SUCCESS, "a: 1\r\nb: 2");
        assert_eq!(out, b"R000012\r\na: 1\r\nb: 2\r\n");
    }

    #[rstest]
    #[case::silenced(MACHINE, 1, b"".as_slice())]
    #[case::machine_with_logs(Format { print_level: 255, ..MACHINE }, 1, b"L100009\r\n[Ready]\r\n".as_slice())]
    #[case::human(HUMAN, 1, b"[Ready]\r\n".as_slice())]
    #[case::above_level(Format { print_level: 1, ..HUMAN }, 3, b"".as_slice())]
    fn frames_logs(#[case] format: Format, #[case] level: u8, #[case] want: &[u8]) {
        let mut out = vec![];
        format.log(&mut out, level, "[Ready]");
        assert_eq!(out, want);
    }

    #[rstest]
    #[case::crlf_then_data(true, b"\nab\r\nc".as_slice(), 5, b"ab\r\nc".as_slice())]
    #[case::lf_is_data(false, b"\nab\r\nc".as_slice(), 5, b"\nab\r\n".as_slice())]
    #[case::stops_at_size(true, b"abcdef".as_slice(), 3, b"abc".as_slice())]
    fn data_phase_takes_bytes_verbatim(
        #[case] after_cr: bool,
        #[case] input: &[u8],
        #[case] size: usize,
        #[case] want: &[u8],
    ) {
        let mut d = DataPhase::new(size, after_cr);
        let used = d.feed(input);
        assert!(d.is_complete());
        assert_eq!(used, want.len() + usize::from(after_cr && input[0] == b'\n'));
        assert_eq!(d.into_data(), want);
    }

    #[test]
    fn data_phase_across_feeds() {
        let mut d = DataPhase::new(4, true);
        assert_eq!(d.feed(b""), 0);
        assert_eq!(d.feed(b"\n"), 1);
        assert_eq!(d.feed(b"\n"), 1, "the second LF is data");
        assert_eq!(d.missing(), 3);
        assert_eq!(d.feed(b"xyz!"), 3);
        assert_eq!(d.into_data(), b"\nxyz");
    }
}

//! A console front end: the line editor on the way in, the R/L framing and the prompt on the
//! way out. The serial console is one (it renders what the core hands the serial origin and
//! the broadcast sink, [`crate::origin`], into the bytes for the UART); each remote terminal
//! connection is another, rendering its origin's replies into the bytes for its TCP
//! connection. One renderer, so both frame alike (`system.cmd.format`).

use super::{Edit, Format, LineEditor, Mode, Names};
use crate::result::ResultCode;
use alloc::vec::Vec;

/// A console: its line editor and the bytes waiting to be sent.
#[derive(Debug, Default)]
pub struct Console {
    editor: LineEditor,
    out: Vec<u8>,
}

impl Console {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one input byte to the line editor (echo and prompt as `format` says).
    pub fn edit(&mut self, b: u8, format: Format) -> Edit {
        let mode = Mode {
            echo: format.echo,
            prompt: if format.prompt { b"> " } else { b"" },
            completer: &Names,
        };
        self.editor.feed(b, mode, &mut self.out)
    }

    /// Whether the line that just ended ended with a lone CR (its LF may still come): a data
    /// phase that starts now skips that LF.
    pub fn take_after_cr(&mut self) -> bool {
        self.editor.take_after_cr()
    }

    /// A log line (already stamped). When a person was typing, the log gets a line of its
    /// own and the typed line comes back after it.
    pub fn log(&mut self, format: Format, level: u8, text: &str) {
        let at = self.out.len();
        format.log(&mut self.out, level, text);
        if format.echo && self.editor.typing() && self.out.len() > at {
            self.out.splice(at..at, *b"\r\n");
            let prompt: &[u8] = if format.prompt { b"> " } else { b"" };
            self.editor.redraw_after_output(prompt, &mut self.out);
        }
    }

    /// A response: header, body, prompt as `format` says.
    pub fn response(&mut self, format: Format, code: ResultCode, body: &[u8]) {
        format.response_bytes(&mut self.out, code, body);
    }

    /// The prompt alone (after boot, after an empty line), if prompts are on.
    pub fn prompt(&mut self, format: Format) {
        if format.prompt {
            self.out.extend_from_slice(b"> ");
        }
    }

    /// Bytes sent as they are (stream data in STREAM mode).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Bytes to send, oldest first.
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }
}

//! Result codes as the harness reads them from a module (independently of the firmware's
//! own definitions, so a firmware that gets its table wrong is caught).

use std::fmt;

/// A result code from a response header. Open: unknown values are kept and reported.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResultCode(pub u8);

impl ResultCode {
    pub const SUCCESS: Self = Self(0);
    pub const FAILED: Self = Self(1);

    /// The documented error texts, indexed by code (protocol-facts §1.4).
    pub const TEXTS: [&'static str; 10] = [
        "Success",
        "Command failed",
        "Parse error",
        "Unknown command",
        "Too few args",
        "Too many args",
        "Unknown variable or option",
        "Invalid argument",
        "Serial command line buffer overflow",
        "Bounds error",
    ];

    const NAMES: [&'static str; 10] = [
        "SUCCESS",
        "FAILED",
        "PARSE_ERROR",
        "UNKNOWN",
        "TOO_FEW_ARGS",
        "TOO_MANY_ARGS",
        "UNKNOWN_OPTION",
        "BAD_ARGS",
        "BUFFER_OVERFLOW",
        "BOUNDS_ERROR",
    ];

    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.get(usize::from(self.0)).copied()
    }

    /// The code whose error text is exactly `body` (human format has no header, so this is
    /// how its replies are classified). Code 0 has no fixed text and is never inferred.
    pub fn from_error_text(body: &str) -> Option<Self> {
        Self::TEXTS.iter().skip(1).position(|t| *t == body).map(|i| Self(i as u8 + 1))
    }
}

impl fmt::Debug for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "ResultCode({})", self.0),
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({n})", self.0),
            None => write!(f, "{} (unknown)", self.0),
        }
    }
}

//! Command result codes: the digit in the `R` response header.

use core::fmt;

/// A command result code.
///
/// An open newtype: codes the module never produces still round-trip, and `Debug` prints the
/// SDK name where one is known.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResultCode(pub u8);

impl ResultCode {
    pub const SUCCESS: Self = Self(0);
    pub const FAILED: Self = Self(1);
    pub const PARSE_ERROR: Self = Self(2);
    pub const UNKNOWN_COMMAND: Self = Self(3);
    pub const TOO_FEW_ARGS: Self = Self(4);
    pub const TOO_MANY_ARGS: Self = Self(5);
    pub const UNKNOWN_OPTION: Self = Self(6);
    pub const BAD_ARGS: Self = Self(7);
    pub const BUFFER_OVERFLOW: Self = Self(8);
    pub const BOUNDS_ERROR: Self = Self(9);

    /// The SDK name (`GOS_CMD_*` without the prefix).
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "SUCCESS",
            1 => "FAILED",
            2 => "PARSE_ERROR",
            3 => "UNKNOWN",
            4 => "TOO_FEW_ARGS",
            5 => "TOO_MANY_ARGS",
            6 => "UNKNOWN_OPTION",
            7 => "BAD_ARGS",
            8 => "BUFFER_OVERFLOW",
            9 => "BOUNDS_ERROR",
            _ => return None,
        })
    }

    /// The text printed as the response body of an error (and `Success` for code 0).
    pub const fn text(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Success",
            1 => "Command failed",
            2 => "Parse error",
            3 => "Unknown command",
            4 => "Too few args",
            5 => "Too many args",
            6 => "Unknown variable or option",
            7 => "Invalid argument",
            8 => "Serial command line buffer overflow",
            9 => "Bounds error",
            _ => return None,
        })
    }

    pub const fn is_success(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ResultCode({})", self.0),
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(text) => write!(f, "{} ({})", self.0, text),
            None => write!(f, "{}", self.0),
        }
    }
}

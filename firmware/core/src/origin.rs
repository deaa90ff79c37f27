//! Where a command came from, and what it hands back there.
//!
//! Every command runs for an [`Origin`]. What it produces — its response, the log lines it
//! causes, and the data phase it asks for — is a list of [`Reply`] values for that origin, so
//! two origins can each have a command in flight without their output mixing. Log lines no
//! command caused (the network coming up on its own, a peer closing a stream, auto start)
//! go to the broadcast sink instead.
//!
//! Who consumes what:
//!
//! * [`Origin::Serial`] and the broadcast sink are rendered by the serial console front end
//!   ([`crate::console::SerialConsole`]: line editor, R/L headers, prompt) into the bytes
//!   [`crate::Module::take_output`] returns, in the order they happen.
//! * An origin a front end owns gets its replies through that front end: the module hands
//!   them over in `Module::route_front_end_replies` (the HTTP server for `Origin::Http`, the
//!   WebSocket command stream for `Origin::CmdStream`, the remote terminal for
//!   `Origin::Terminal`), which renders them as its protocol wants. Any other origin (auto
//!   start) takes its replies with [`crate::Module::take_replies`]. A command from another
//!   origin shows nothing on the serial console, as on the real module, except the broadcast
//!   log lines it may set off (the network coming up, `[Opened: N]` of a stream it opens later
//!   in the background).
//! * The broadcast sink reaches the serial console, a logged-in remote terminal and the HTTP
//!   server's `/log` ring (see `Module::broadcast`).

use crate::result::ResultCode;
use alloc::string::String;
use alloc::vec::Vec;

/// Where a command came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The serial console (UART).
    Serial,
    /// A remote terminal (telnet) session, by its session number.
    Terminal(u8),
    /// An HTTP request (`/command`), by the HTTP server's request id.
    Http(u32),
    /// A cmdstream message (WebSocket `/cmdstream`), by a number the WebSocket part gives
    /// each message (not the message's own `id`, which is optional and may repeat).
    CmdStream(u32),
    /// A command run at boot or on network up (`setup.auto.cmd`).
    AutoStart,
}

/// One piece of a command's result, for its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A log line the command caused (`level` as in [`crate::console::level`]).
    Log { level: u8, text: String },
    /// The command's response: result code and body (the body of an error defaults to the
    /// code's text, as on the console).
    Response { code: ResultCode, body: Vec<u8> },
    /// The command waits for exactly `want` bytes of data from its origin (`stream_write`,
    /// `udp_server write`, `file_create`): hand them over with [`crate::Module::data`].
    Data { want: usize },
}

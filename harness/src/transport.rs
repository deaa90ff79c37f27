//! The ways of talking to a module, as a typed value with what each can do.
//!
//! A name from a rig file, a spec table or the command line becomes a [`Transport`] once, at
//! the edge; everything after that asks its [`Capabilities`]. Which cases apply to which
//! transport is decided from these when a run is planned (`plan`), so a case that needs
//! raw bytes is reported as skipped on a transport without them instead of failing.
//!
//! A leaf module (it imports nothing of the crate): the result model, the channels and the
//! spec tables all name transports.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A way of talking to a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Transport {
    /// The module's serial console (UART; a pty for a simulated module).
    #[serde(rename = "serial")]
    Serial,
    /// The HTTP server's REST API: a command in, JSON `code` + `response` out.
    #[serde(rename = "rest")]
    Rest,
    /// The HTTP server's WebSocket command stream (MessagePack frames).
    #[serde(rename = "websocket")]
    CmdStream,
    /// The remote terminal: the console over a TCP connection.
    #[serde(rename = "terminal")]
    Terminal,
}

/// How a transport delivers a command's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFormat {
    /// Console text: machine format (`R`/`L` headers) or human format, as the module's
    /// `system.cmd.format` says.
    Console,
    /// A structured reply: a result code and the response text (JSON, MessagePack).
    Structured,
}

/// How a transport delivers the module's log messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogDelivery {
    /// Inline on the console, between responses.
    Inline,
    /// Fetched by polling (`/log` of the HTTP server).
    Poll,
    /// Not at all.
    None,
}

/// What a transport can do, as far as spec tables care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Raw bytes to and from the console: a case can send any bytes and see echo and prompt.
    pub raw_bytes: bool,
    pub responses: ResponseFormat,
    pub logs: LogDelivery,
    /// Reaching the module needs its network up (set up over the control channel first).
    pub needs_network: bool,
}

impl Transport {
    /// Every transport, in report order.
    pub const ALL: [Transport; 4] =
        [Transport::Serial, Transport::Rest, Transport::CmdStream, Transport::Terminal];

    /// The name rig files, spec tables, the command line and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Serial => "serial",
            Transport::Rest => "rest",
            Transport::CmdStream => "websocket",
            Transport::Terminal => "terminal",
        }
    }

    pub fn capabilities(self) -> Capabilities {
        use LogDelivery as L;
        use ResponseFormat as R;
        let (raw_bytes, responses, logs, needs_network) = match self {
            Transport::Serial => (true, R::Console, L::Inline, false),
            Transport::Rest => (false, R::Structured, L::Poll, true),
            // The command stream carries no log lines; its channel polls `/log` too.
            Transport::CmdStream => (false, R::Structured, L::Poll, true),
            Transport::Terminal => (true, R::Console, L::Inline, true),
        };
        Capabilities { raw_bytes, responses, logs, needs_network }
    }

    /// Whether the harness has a channel for it yet.
    pub fn is_implemented(self) -> bool {
        matches!(
            self,
            Transport::Serial | Transport::Rest | Transport::CmdStream | Transport::Terminal
        )
    }

    /// The transports the harness has a channel for.
    pub fn implemented() -> impl Iterator<Item = Transport> {
        Self::ALL.into_iter().filter(|t| t.is_implemented())
    }

    /// Fails for a transport the harness has no channel for yet, naming those it has.
    pub fn ensure_implemented(self) -> Result<Self, TransportError> {
        if self.is_implemented() {
            Ok(self)
        } else {
            Err(TransportError::NotImplemented {
                transport: self,
                available: names(Self::implemented()),
            })
        }
    }
}

fn names(transports: impl Iterator<Item = Transport>) -> String {
    transports.map(Transport::name).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transport name that is wrong, or a transport that cannot be used yet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("unknown transport `{name}` (known: {known})")]
    Unknown { name: String, known: String },
    #[error("the {transport} transport is not implemented yet (available: {available})")]
    NotImplemented { transport: Transport, available: String },
}

impl FromStr for Transport {
    type Err = TransportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| TransportError::Unknown {
            name: s.to_string(),
            known: names(Self::ALL.into_iter()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("serial", Ok(Transport::Serial))]
    #[case("rest", Ok(Transport::Rest))]
    #[case("websocket", Ok(Transport::CmdStream))]
    #[case("terminal", Ok(Transport::Terminal))]
    #[case("Serial", Err("unknown transport `Serial` (known: serial, rest, websocket, terminal)"))]
    #[case("", Err("unknown transport `` (known: serial, rest, websocket, terminal)"))]
    fn parses_names(#[case] name: &str, #[case] want: Result<Transport, &str>) {
        let got = name.parse::<Transport>().map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_string));
    }

    #[test]
    fn names_round_trip_through_serde_and_display() {
        for t in Transport::ALL {
            let json = serde_json::to_string(&t).expect("serializes");
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(serde_json::from_str::<Transport>(&json).ok(), Some(t));
            assert_eq!(t.name().parse::<Transport>(), Ok(t));
        }
    }

    #[test]
    fn every_transport_has_a_channel() {
        for t in Transport::ALL {
            assert_eq!(t.ensure_implemented(), Ok(t));
        }
        assert_eq!(
            Transport::implemented().map(Transport::name).collect::<Vec<_>>(),
            ["serial", "rest", "websocket", "terminal"]
        );
    }
}

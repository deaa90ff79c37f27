//! The Gecko OS module firmware core: `no_std` with `alloc`, and sans-IO.
//!
//! Bytes from the serial bus, commands from other origins and completions of platform work
//! go in; bytes for the bus, replies for the origins and [`module::Action`]s come out. Time
//! is a parameter ([`time::Instant`]); the core never reads a clock and never does I/O. It
//! depends only on `no_std` crates for the HTTP server: `httparse` and `base64` (requests,
//! Basic auth), `sha1` (the WebSocket handshake) and `rmp` (the command stream's msgpack).
//!
//! * [`module`]: the [`Module`] the platform drives (`boot`, `feed`/`take_output`,
//!   `execute`/`data`/`take_replies`, `next_action`, `net_event`, `poll_at`/`tick`), the
//!   composition root of the services (one file each under `module/`). A service is a part
//!   that owns its state and settings and reaches the shared tables (connections, streams,
//!   actions, logs) only through a context the module lends it; the module routes commands,
//!   connection events and timers to it.
//! * [`origin`]: where a command came from ([`Origin`]) and what it hands back ([`Reply`]).
//! * [`console`]: the console front end (line editor, R/L framing, prompt) the serial console
//!   and each remote terminal connection use; [`telnet`]: the remote terminal's input filter.
//! * [`command`], [`vars`], [`config`]: the command table, the variables (typed ids from the
//!   one table), the services' typed settings.
//! * [`wlan`], [`streams`], [`fs`]: the network up sequence, the stream table, the file system.
//! * [`http`]: the HTTP server's codecs (request heads and bodies, responses, URL decoding,
//!   content types, Basic auth, the REST API's JSON, the whitelist), no knowledge of `Module`.
//! * [`ws`]: WebSocket (RFC 6455) for the HTTP server: handshake, frames, a connection's
//!   protocol state.
//! * [`tls`]: the contract with the platform's TLS engine (sans-IO sessions), the chapter's TLS
//!   error codes, handshake states and cipher suites.
//! * [`net`]: the contract with the platform's network (requests out, events in, [`net::ConnId`]).
//! * [`platform`]: the traits a platform implements (NVM, network driver); the async loop that
//!   drives the core over them is the `gecko-runner` crate.
//!
//! The simulated module (`gecko-sim`) and a board (`firmware/boards/`) wrap this same core
//! through that runner, so what the harness checks against the simulated module is the code
//! that would run on hardware.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod clock;
pub mod command;
pub mod config;
pub mod console;
pub mod fs;
pub mod http;
pub mod module;
pub mod msgpack;
pub mod net;
pub mod nvm;
pub mod origin;
pub mod passkey;
pub mod platform;
pub mod result;
pub mod streams;
pub mod telnet;
pub mod time;
pub mod tls;
pub mod vars;
pub mod wlan;
pub mod ws;

pub use module::{Action, BoardInfo, Module, Stored};
pub use origin::{Origin, Reply};
pub use result::ResultCode;

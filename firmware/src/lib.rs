//! Gecko OS module firmware.
//!
//! The crate has two layers:
//!
//! * The **core** ([`module`], [`wlan`], [`streams`], [`console`], [`command`], [`vars`], [`passkey`],
//!   [`nvm`], [`fs`]):
//!   `no_std` with `alloc`, and sans-IO. Bytes from the serial bus and completions of platform work go in;
//!   bytes for the bus and [`module::Action`]s come out. Time is a parameter ([`time::Instant`]);
//!   the core never reads a clock and never does I/O.
//! * The **platform** ([`platform`] traits and the async [`runner`] that drives the core over
//!   them). A board implements the traits for its UART and flash; the simulated module
//!   (feature `sim`, module `sim`) implements them on Linux with a pseudo-terminal and a file.
//!
//! Both a board and the simulated module wrap the same core, so what the harness checks
//! against the simulated module is the code that would run on hardware.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod clock;
pub mod command;
pub mod console;
pub mod fs;
pub mod module;
pub mod net;
pub mod nvm;
pub mod passkey;
pub mod platform;
pub mod result;
pub mod runner;
pub mod streams;
pub mod time;
pub mod vars;
pub mod wlan;

#[cfg(feature = "sim")]
pub mod sim;

pub use module::{Action, BoardInfo, Module, Stored};
pub use result::ResultCode;

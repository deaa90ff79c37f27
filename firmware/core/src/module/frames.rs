//! Machine-format frames for the module's tests: output split into logs and responses; and
//! the lab network the tests' scans find.

use crate::console;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One machine-format frame: a log (level, text) or a response (code, body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum F {
    L(u8, String),
    R(u8, String),
}

pub(super) fn log(level: u8, text: &str) -> F {
    F::L(level, text.to_string())
}

pub(super) fn resp(code: u8, body: &str) -> F {
    F::R(code, body.to_string())
}

pub(super) fn failed() -> F {
    resp(1, "Command failed")
}

pub(super) fn success() -> F {
    resp(0, "Success")
}

pub(super) fn bad_args() -> F {
    resp(7, "Invalid argument")
}

pub(super) const S: u8 = console::level::STATUS;
pub(super) const E: u8 = console::level::ERROR;
pub(super) const I: u8 = console::level::INFO;

/// Splits machine-format output into frames (bodies as lossy UTF-8; the tests send ASCII).
pub(super) fn frames(out: &[u8]) -> Vec<F> {
    let mut rest = out;
    let mut got = Vec::new();
    while !rest.is_empty() {
        assert!(rest.len() >= 9, "truncated header in {:?}", String::from_utf8_lossy(out));
        let header = core::str::from_utf8(&rest[..9]).expect("header");
        let digit: u8 = header[1..2].parse().expect("digit");
        let len: usize = header[2..7].parse().expect("length");
        let body = &rest[9..9 + len];
        let body = String::from_utf8_lossy(body.strip_suffix(b"\r\n").unwrap_or(b"")).into_owned();
        got.push(match &header[..1] {
            "L" => F::L(digit, body),
            "R" => F::R(digit, body),
            other => panic!("not a frame: {other:?} in {:?}", String::from_utf8_lossy(out)),
        });
        rest = &rest[9 + len..];
    }
    got
}

/// The access point the module tests join: `lab` on channel 6, with `security`.
pub(super) fn lab_bss(security: crate::net::Security) -> crate::net::Bss {
    crate::net::Bss {
        ssid: "lab".into(),
        bssid: [2, 0, 0, 0, 1, 1],
        channel: 6,
        rssi: -40,
        security,
    }
}

//! The radio link: the line protocol between a module's host processor and its radio, the
//! way a host MCU talks to a separate Wi-Fi chip over a UART. `no_std` + `alloc`, sans-IO:
//! messages become bytes ([`ToRadio::encode`], [`FromRadio::encode`]) and bytes in any
//! chunking become messages ([`Decoder`]); the platform moves the bytes.
//!
//! The messages carry the radio's part of the core's network contract
//! ([`gecko_core::net`]): [`ToRadio::from_request`] takes a [`NetRequest`] the core asked
//! for, [`FromRadio::into_event`] gives the [`NetEvent`] to feed back. The core still owns
//! every timeout; the radio only does what it is told and says what happened.
//!
//! # Wire format
//!
//! One message per line: printable ASCII (`0x20..=0x7e`), ended by `\n` (a `\r` before it is
//! ignored, an empty line too), at most [`LINE_MAX`] bytes with the `\n`. Fields are
//! separated by one space. Numbers are decimal (`rssi` may be negative); byte strings
//! (SSIDs, passkeys) are lowercase or uppercase hex, `-` when empty; an SSID or BSSID a scan
//! does not ask for is `*`; MACs are `aa:bb:cc:dd:ee:ff`. Security types: `open`, `wep`,
//! `wpa-aes`, `wpa-tkip`, `wpa2-aes`, `wpa2-mixed`, `wpa2-tkip`, `wpa3-sae`.
//!
//! Module → radio ([`ToRadio`]):
//!
//! | line | meaning |
//! |---|---|
//! | `RESET` | the module booted: forget everything (association, scans in flight); answered by `HELLO` |
//! | `SCAN id ssid\|* bssid\|* mask active\|passive dwell_ms probes` | scan (`* *`) or probe; `mask`: bit n-1 = channel n; answered by `SCANDONE id` |
//! | `ASSOC attempt ssid bssid channel rssi security passkey` | associate with that network; answered by `ASSOCIATED` or `ASSOCFAIL` |
//! | `DISASSOC` | leave the network or abort an association; not answered |
//!
//! Radio → module ([`FromRadio`]):
//!
//! | line | meaning |
//! |---|---|
//! | `HELLO version` | the radio is ready (on connection and after each `RESET`); `version` is [`PROTOCOL_VERSION`] |
//! | `SCANDONE id n [ssid bssid channel rssi security]×n` | the networks found, strongest first (at most [`MAX_RESULTS`]) |
//! | `ASSOCIATED attempt` | associated |
//! | `ASSOCFAIL attempt auth-failed\|rejected\|not-found` | not associated, and why |
//! | `LINKLOST` | the association was lost (the AP went away or dropped the module) |
//!
//! For example `SCAN 7 6c6162 * 2047 active 100 2`, `ASSOC 3 6c6162 02:00:00:00:01:01 6 -40
//! wpa2-aes 6c616270617373313233` (passkey bytes in hex), `SCANDONE 7 1 6c6162
//! 02:00:00:00:01:01 6 -40 wpa2-aes`.
//!
//! A line that is not a message gets a [`DecodeError`] of its own and the decoder goes on
//! with the next line; a line longer than [`LINE_MAX`] is skipped to its `\n` (never kept
//! whole), then reported as [`DecodeError::TooLong`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use gecko_core::net::{
    AssocFailure, Bss, Mac, NetEvent, NetRequest, ScanParams, ScanType, Security,
};

/// The protocol version `HELLO` announces.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest line, `\n` included.
pub const LINE_MAX: usize = 4096;

/// The most networks one `SCANDONE` carries (a longest result is 106 bytes, so they fit in
/// [`LINE_MAX`]); the encoder keeps the first ones, the decoder refuses more.
pub const MAX_RESULTS: usize = 32;

/// Longest SSID in bytes.
pub const SSID_MAX: usize = 32;

/// Longest passkey in bytes (64 hex digits of a PSK).
pub const PASSKEY_MAX: usize = 64;

/// A message from the module to its radio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToRadio {
    /// The module booted: the radio forgets its association and pending scans.
    Reset,
    Scan {
        id: u32,
        ssid: Option<String>,
        bssid: Option<Mac>,
        params: ScanParams,
    },
    Associate {
        attempt: u32,
        bss: Bss,
        passkey: Vec<u8>,
    },
    Disassociate,
}

/// A message from the radio to the module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromRadio {
    /// The radio is ready; the version of the protocol it speaks.
    Hello {
        version: u32,
    },
    ScanDone {
        id: u32,
        results: Vec<Bss>,
    },
    Associated {
        attempt: u32,
    },
    AssociationFailed {
        attempt: u32,
        reason: AssocFailure,
    },
    LinkLost,
}

/// Why a line is not a message. The decoder has skipped the line; the next one decodes
/// on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Longer than [`LINE_MAX`]: skipped up to its `\n`.
    TooLong,
    /// A byte outside printable ASCII.
    NotPrintable,
    /// The first word names no message of this direction.
    UnknownMessage,
    /// The line ended before this field.
    MissingField(&'static str),
    /// Words after the last field.
    ExtraField,
    /// This field is not what it must be (number out of range, bad hex, bad MAC, unknown
    /// name, a byte string too long or not UTF-8).
    BadField(&'static str),
    /// A `SCANDONE` with more than [`MAX_RESULTS`] networks.
    TooManyResults,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLong => write!(f, "line longer than {LINE_MAX} bytes"),
            Self::NotPrintable => f.write_str("byte outside printable ASCII"),
            Self::UnknownMessage => f.write_str("unknown message"),
            Self::MissingField(name) => write!(f, "missing field `{name}`"),
            Self::ExtraField => f.write_str("extra field after the last one"),
            Self::BadField(name) => write!(f, "bad field `{name}`"),
            Self::TooManyResults => write!(f, "more than {MAX_RESULTS} scan results"),
        }
    }
}

/// A message of one direction of the link.
pub trait Message: Sized {
    /// Appends the message's line, `\n` included.
    fn encode_into(&self, out: &mut String);
    /// Decodes one line (without its `\n`).
    fn decode_line(line: &[u8]) -> Result<Self, DecodeError>;
    /// The message's line, `\n` included.
    fn encode(&self) -> String {
        let mut out = String::new();
        self.encode_into(&mut out);
        out
    }
}

const SECURITY_NAMES: [(Security, &str); 8] = [
    (Security::Open, "open"),
    (Security::Wep, "wep"),
    (Security::WpaAes, "wpa-aes"),
    (Security::WpaTkip, "wpa-tkip"),
    (Security::Wpa2Aes, "wpa2-aes"),
    (Security::Wpa2Mixed, "wpa2-mixed"),
    (Security::Wpa2Tkip, "wpa2-tkip"),
    (Security::Wpa3Sae, "wpa3-sae"),
];

const REASON_NAMES: [(AssocFailure, &str); 3] = [
    (AssocFailure::AuthFailed, "auth-failed"),
    (AssocFailure::Rejected, "rejected"),
    (AssocFailure::NotFound, "not-found"),
];

fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> &'static str {
    table.iter().find(|(v, _)| *v == value).map_or("?", |(_, n)| n)
}

fn value_of<T: Copy>(table: &[(T, &'static str)], name: &[u8]) -> Option<T> {
    table.iter().find(|(_, n)| n.as_bytes() == name).map(|(v, _)| *v)
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    if bytes.is_empty() {
        out.push('-');
    }
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn push_mac(out: &mut String, mac: &Mac) {
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
}

fn push_bss(out: &mut String, bss: &Bss) {
    out.push(' ');
    push_hex(out, bss.ssid.as_bytes());
    out.push(' ');
    push_mac(out, &bss.bssid);
    let _ = write!(out, " {} {} {}", bss.channel, bss.rssi, name_of(&SECURITY_NAMES, bss.security));
}

impl Message for ToRadio {
    fn encode_into(&self, out: &mut String) {
        match self {
            Self::Reset => out.push_str("RESET"),
            Self::Scan { id, ssid, bssid, params } => {
                let _ = write!(out, "SCAN {id} ");
                match ssid {
                    Some(s) => push_hex(out, s.as_bytes()),
                    None => out.push('*'),
                }
                out.push(' ');
                match bssid {
                    Some(b) => push_mac(out, b),
                    None => out.push('*'),
                }
                let kind = match params.kind {
                    ScanType::Active => "active",
                    ScanType::Passive => "passive",
                };
                let _ = write!(
                    out,
                    " {} {kind} {} {}",
                    params.channel_mask, params.dwell_ms, params.num_probes
                );
            }
            Self::Associate { attempt, bss, passkey } => {
                let _ = write!(out, "ASSOC {attempt}");
                push_bss(out, bss);
                out.push(' ');
                push_hex(out, passkey);
            }
            Self::Disassociate => out.push_str("DISASSOC"),
        }
        out.push('\n');
    }

    fn decode_line(line: &[u8]) -> Result<Self, DecodeError> {
        let mut f = Fields::new(line)?;
        let msg = match f.word("message")? {
            b"RESET" => Self::Reset,
            b"SCAN" => {
                let id = f.number("id")?;
                let ssid = match f.word("ssid")? {
                    b"*" => None,
                    hex => Some(ssid(hex)?),
                };
                let bssid = match f.word("bssid")? {
                    b"*" => None,
                    text => Some(mac(text)?),
                };
                let channel_mask = f.number("mask")?;
                let kind = match f.word("type")? {
                    b"active" => ScanType::Active,
                    b"passive" => ScanType::Passive,
                    _ => return Err(DecodeError::BadField("type")),
                };
                let dwell_ms = f.number("dwell_ms")?;
                let num_probes = f.number("probes")?;
                Self::Scan {
                    id,
                    ssid,
                    bssid,
                    params: ScanParams { channel_mask, kind, dwell_ms, num_probes },
                }
            }
            b"ASSOC" => {
                let attempt = f.number("attempt")?;
                let bss = f.bss()?;
                let passkey = hex(f.word("passkey")?, PASSKEY_MAX, "passkey")?;
                Self::Associate { attempt, bss, passkey }
            }
            b"DISASSOC" => Self::Disassociate,
            _ => return Err(DecodeError::UnknownMessage),
        };
        f.end()?;
        Ok(msg)
    }
}

impl Message for FromRadio {
    fn encode_into(&self, out: &mut String) {
        match self {
            Self::Hello { version } => {
                let _ = write!(out, "HELLO {version}");
            }
            Self::ScanDone { id, results } => {
                let results = &results[..results.len().min(MAX_RESULTS)];
                let _ = write!(out, "SCANDONE {id} {}", results.len());
                for bss in results {
                    push_bss(out, bss);
                }
            }
            Self::Associated { attempt } => {
                let _ = write!(out, "ASSOCIATED {attempt}");
            }
            Self::AssociationFailed { attempt, reason } => {
                let _ = write!(out, "ASSOCFAIL {attempt} {}", name_of(&REASON_NAMES, *reason));
            }
            Self::LinkLost => out.push_str("LINKLOST"),
        }
        out.push('\n');
    }

    fn decode_line(line: &[u8]) -> Result<Self, DecodeError> {
        let mut f = Fields::new(line)?;
        let msg = match f.word("message")? {
            b"HELLO" => Self::Hello { version: f.number("version")? },
            b"SCANDONE" => {
                let id = f.number("id")?;
                let n: usize = f.number("count")?;
                if n > MAX_RESULTS {
                    return Err(DecodeError::TooManyResults);
                }
                let mut results = Vec::with_capacity(n);
                for _ in 0..n {
                    results.push(f.bss()?);
                }
                Self::ScanDone { id, results }
            }
            b"ASSOCIATED" => Self::Associated { attempt: f.number("attempt")? },
            b"ASSOCFAIL" => {
                let attempt = f.number("attempt")?;
                let reason = value_of(&REASON_NAMES, f.word("reason")?)
                    .ok_or(DecodeError::BadField("reason"))?;
                Self::AssociationFailed { attempt, reason }
            }
            b"LINKLOST" => Self::LinkLost,
            _ => return Err(DecodeError::UnknownMessage),
        };
        f.end()?;
        Ok(msg)
    }
}

impl ToRadio {
    /// The radio's part of a core request (scan, associate, disassociate); `None` for the
    /// IP requests, which the host's own network stack serves.
    pub fn from_request(request: &NetRequest) -> Option<Self> {
        Some(match request {
            NetRequest::Scan { id, ssid, bssid, params } => {
                Self::Scan { id: *id, ssid: ssid.clone(), bssid: *bssid, params: *params }
            }
            NetRequest::Associate { attempt, bss, passkey } => {
                Self::Associate { attempt: *attempt, bss: bss.clone(), passkey: passkey.clone() }
            }
            NetRequest::Disassociate => Self::Disassociate,
            _ => return None,
        })
    }

    /// The core request this stands for; `None` for [`ToRadio::Reset`], which is the
    /// platform's (a boot), not the core's.
    pub fn into_request(self) -> Option<NetRequest> {
        Some(match self {
            Self::Reset => return None,
            Self::Scan { id, ssid, bssid, params } => NetRequest::Scan { id, ssid, bssid, params },
            Self::Associate { attempt, bss, passkey } => {
                NetRequest::Associate { attempt, bss, passkey }
            }
            Self::Disassociate => NetRequest::Disassociate,
        })
    }
}

impl FromRadio {
    /// The radio's message for a core event (scan results, association, link loss); `None`
    /// for the IP events.
    pub fn from_event(event: &NetEvent) -> Option<Self> {
        Some(match event {
            NetEvent::ScanDone { id, results } => {
                Self::ScanDone { id: *id, results: results.clone() }
            }
            NetEvent::Associated { attempt } => Self::Associated { attempt: *attempt },
            NetEvent::AssociationFailed { attempt, reason } => {
                Self::AssociationFailed { attempt: *attempt, reason: *reason }
            }
            NetEvent::LinkLost => Self::LinkLost,
            _ => return None,
        })
    }

    /// The core event to feed back; `None` for [`FromRadio::Hello`], which is the
    /// platform's.
    pub fn into_event(self) -> Option<NetEvent> {
        Some(match self {
            Self::Hello { .. } => return None,
            Self::ScanDone { id, results } => NetEvent::ScanDone { id, results },
            Self::Associated { attempt } => NetEvent::Associated { attempt },
            Self::AssociationFailed { attempt, reason } => {
                NetEvent::AssociationFailed { attempt, reason }
            }
            Self::LinkLost => NetEvent::LinkLost,
        })
    }
}

/// The words of one line.
struct Fields<'a> {
    words: core::slice::Split<'a, u8, fn(&u8) -> bool>,
}

impl<'a> Fields<'a> {
    fn new(line: &'a [u8]) -> Result<Self, DecodeError> {
        if !line.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(DecodeError::NotPrintable);
        }
        let space: fn(&u8) -> bool = |b| *b == b' ';
        Ok(Self { words: line.split(space) })
    }

    fn word(&mut self, name: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.words.next() {
            None => Err(DecodeError::MissingField(name)),
            // Two spaces in a row, or one at an end: not a word.
            Some([]) => Err(DecodeError::BadField(name)),
            Some(word) => Ok(word),
        }
    }

    /// A decimal number: digits only (a `-` first for signed types), no `+`, in range.
    fn number<T: core::str::FromStr>(&mut self, name: &'static str) -> Result<T, DecodeError> {
        let word = self.word(name)?;
        let digits = word.strip_prefix(b"-").unwrap_or(word);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(DecodeError::BadField(name));
        }
        core::str::from_utf8(word)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(DecodeError::BadField(name))
    }

    fn bss(&mut self) -> Result<Bss, DecodeError> {
        let ssid = ssid(self.word("ssid")?)?;
        let bssid = mac(self.word("bssid")?)?;
        let channel = self.number("channel")?;
        let rssi = self.number("rssi")?;
        let security = value_of(&SECURITY_NAMES, self.word("security")?)
            .ok_or(DecodeError::BadField("security"))?;
        Ok(Bss { ssid, bssid, channel, rssi, security })
    }

    fn end(&mut self) -> Result<(), DecodeError> {
        match self.words.next() {
            None => Ok(()),
            Some(_) => Err(DecodeError::ExtraField),
        }
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A hex byte string (`-`: empty) of at most `max` bytes.
fn hex(word: &[u8], max: usize, name: &'static str) -> Result<Vec<u8>, DecodeError> {
    if word == b"-" {
        return Ok(Vec::new());
    }
    if !word.len().is_multiple_of(2) || word.len() / 2 > max {
        return Err(DecodeError::BadField(name));
    }
    word.chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(DecodeError::BadField(name))
}

fn ssid(word: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(hex(word, SSID_MAX, "ssid")?).map_err(|_| DecodeError::BadField("ssid"))
}

fn mac(word: &[u8]) -> Result<Mac, DecodeError> {
    let bad = DecodeError::BadField("bssid");
    if word.len() != 17 {
        return Err(bad);
    }
    let mut out = [0u8; 6];
    for (i, byte) in out.iter_mut().enumerate() {
        let part = &word[i * 3..i * 3 + 2];
        if i < 5 && word[i * 3 + 2] != b':' {
            return Err(bad);
        }
        *byte = hex_digit(part[0]).ok_or(bad)? << 4 | hex_digit(part[1]).ok_or(bad)?;
    }
    Ok(out)
}

/// Turns bytes in any chunking (UART reads) into messages of one direction, line by line.
/// Holds at most one partial line of [`LINE_MAX`] bytes.
#[derive(Debug)]
pub struct Decoder<M> {
    line: Vec<u8>,
    /// The current line grew past [`LINE_MAX`]: its bytes are dropped up to its `\n`.
    overlong: bool,
    _message: core::marker::PhantomData<fn() -> M>,
}

impl<M> Default for Decoder<M> {
    fn default() -> Self {
        Self { line: Vec::new(), overlong: false, _message: core::marker::PhantomData }
    }
}

impl<M: Message> Decoder<M> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes; returns the lines they complete, in order: a message, or why
    /// that line was not one. Empty lines are skipped.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<M, DecodeError>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                if core::mem::take(&mut self.overlong) {
                    out.push(Err(DecodeError::TooLong));
                } else {
                    let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
                    if !line.is_empty() {
                        out.push(M::decode_line(line));
                    }
                }
                self.line.clear();
            } else if self.overlong {
                // Skipping to the end of an overlong line.
            } else if self.line.len() + 1 >= LINE_MAX {
                self.overlong = true;
                self.line = Vec::new();
            } else {
                self.line.push(b);
            }
        }
        out
    }

    /// Drops a partial line (the other side restarted).
    pub fn clear(&mut self) {
        self.line = Vec::new();
        self.overlong = false;
    }
}

#[cfg(test)]
mod tests;

//! The variable registry: one table ([`table::VARIABLES`]) gives every variable's name,
//! shortcut, type, default and whether `save` keeps it; [`Vars`] holds the current values.
//!
//! Values are parsed once, when they are set (or loaded from NVM), into their canonical
//! stored form; getters only render.

mod table;

pub use table::{VARIABLES, Var};

use crate::passkey::{self, Passkey, PasskeyError};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

/// The type of a variable, with its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `0|off|false` or `1|on|true`; printed `0` or `1`.
    Bool,
    /// A decimal integer within `min..=max`.
    Int { min: i64, max: i64 },
    /// One of a fixed set of words (matched without regard to case, printed as listed).
    Enum(&'static [&'static str]),
    /// Text of `min..=max` bytes; `\"` and `\\` are decoded.
    Str { min: usize, max: usize },
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// A MAC address `xx:xx:xx:xx:xx:xx`.
    Mac,
    /// A passkey with the rules of [`crate::passkey`].
    Passkey,
    /// A comma-separated list of distinct words from a fixed set (for example `broadcast.data`).
    List(&'static [&'static str]),
}

/// Whether a default or a type comes from documentation or was chosen here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    Documented,
    Assumed,
}

/// Who may change a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `set` changes it.
    ReadWrite,
    /// Status: only the module changes it (`set` answers "unknown variable").
    ReadOnly,
}

/// One row of the variable table.
#[derive(Debug)]
pub struct VarDef {
    /// Full dotted name, e.g. `wlan.join.timeout`.
    pub name: &'static str,
    /// Shortcut words separated by single spaces, e.g. `wl j t`.
    pub short: &'static str,
    pub kind: Kind,
    /// The default as the getter prints it.
    pub default: &'static str,
    /// Whether `save` stores it in NVM (read-only variables are never saved).
    pub saved: bool,
    pub access: Access,
    pub basis: Basis,
}

/// Why `set` refused a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetError {
    /// Not a value of the variable's type (code 7).
    Invalid,
    /// A value of the right type outside its bounds (code 9).
    OutOfRange,
    /// The variable is read-only (answered as an unknown variable, code 6).
    ReadOnly,
}

impl From<PasskeyError> for SetError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::Length { .. } => SetError::OutOfRange,
            PasskeyError::BadEscape { .. } | PasskeyError::NotPrintable { .. } => SetError::Invalid,
        }
    }
}

/// Index of a variable in [`VARIABLES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VarId(pub usize);

impl VarId {
    pub fn def(self) -> &'static VarDef {
        &VARIABLES[self.0]
    }

    /// The typed id of the variable.
    pub fn var(self) -> Var {
        Var::ALL[self.0]
    }
}

/// Finds a variable by its full name.
pub fn by_name(name: &str) -> Option<VarId> {
    VARIABLES.iter().position(|v| v.name == name).map(VarId)
}

/// Resolves the variable named by the first words of `args`: a full name in one word, or a
/// shortcut spread over several words. Returns the variable and how many words it took.
/// The longest shortcut that leaves at least `keep` words wins.
pub fn resolve(args: &[String], keep: usize) -> Option<(VarId, usize)> {
    let first = args.first()?;
    if let Some(id) = by_name(first) {
        return Some((id, 1));
    }
    let usable = args.len().checked_sub(keep)?;
    for words in (1..=usable.min(5)).rev() {
        let mut joined = String::new();
        for (i, w) in args[..words].iter().enumerate() {
            if i > 0 {
                joined.push(' ');
            }
            joined.push_str(w);
        }
        if let Some(i) = VARIABLES.iter().position(|v| v.short == joined) {
            return Some((VarId(i), words));
        }
    }
    None
}

/// Every variable whose name starts with the group prefix (`wlan`, `wlan.join`); `None`
/// when no variable is in that group.
pub fn group(prefix: &str) -> Option<impl Iterator<Item = VarId> + '_> {
    let in_group = move |v: &&VarDef| {
        v.name.len() > prefix.len()
            && v.name.starts_with(prefix)
            && v.name.as_bytes()[prefix.len()] == b'.'
    };
    VARIABLES.iter().any(|v| in_group(&v)).then(move || {
        VARIABLES.iter().enumerate().filter(move |(_, v)| in_group(v)).map(|(i, _)| VarId(i))
    })
}

/// Parses a value for a variable of `kind` into its stored form.
pub fn parse(kind: Kind, raw: &str) -> Result<Vec<u8>, SetError> {
    let text = match kind {
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "0" | "off" | "false" => "0".to_string(),
            "1" | "on" | "true" => "1".to_string(),
            _ => return Err(SetError::Invalid),
        },
        Kind::Int { min, max } => {
            let n = parse_int(raw).ok_or(SetError::Invalid)?;
            if n < min || n > max {
                return Err(SetError::OutOfRange);
            }
            n.to_string()
        }
        Kind::Enum(words) => {
            words.iter().find(|w| w.eq_ignore_ascii_case(raw)).ok_or(SetError::Invalid)?.to_string()
        }
        Kind::Str { min, max } => {
            if raw.chars().any(|c| c.is_control()) {
                return Err(SetError::Invalid);
            }
            let text = unescape_plain(raw);
            if text.len() < min || text.len() > max {
                return Err(SetError::OutOfRange);
            }
            text
        }
        Kind::Ipv4 => {
            let octets = parse_ipv4(raw).ok_or(SetError::Invalid)?;
            let mut s = String::new();
            let _ = write!(s, "{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]);
            s
        }
        Kind::Mac => {
            let mac = parse_mac(raw).ok_or(SetError::Invalid)?;
            format_mac(&mac)
        }
        Kind::Passkey => return Ok(Passkey::parse(raw)?.as_bytes().to_vec()),
        Kind::List(words) => {
            let mut picked: Vec<&str> = Vec::new();
            for item in raw.split(',').map(str::trim) {
                let word =
                    words.iter().find(|w| w.eq_ignore_ascii_case(item)).ok_or(SetError::Invalid)?;
                if picked.contains(word) {
                    return Err(SetError::Invalid);
                }
                picked.push(word);
            }
            picked.join(",")
        }
    };
    Ok(text.into_bytes())
}

/// Renders a stored value as the getter prints it.
pub fn render(kind: Kind, stored: &[u8]) -> String {
    match kind {
        Kind::Passkey => passkey::render(stored),
        _ => String::from_utf8_lossy(stored).into_owned(),
    }
}

fn parse_int(raw: &str) -> Option<i64> {
    if let Some(hex) = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    raw.parse().ok()
}

/// Parses a dotted quad; leading zeros and out-of-range octets are refused.
pub fn parse_ipv4(raw: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = raw.split('.');
    for slot in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Parses `xx:xx:xx:xx:xx:xx` (or with `-`).
pub fn parse_mac(raw: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    // One separator throughout: `00:11-22:...` is refused.
    let sep = if raw.contains(':') { ':' } else { '-' };
    let mut parts = raw.split(sep);
    for slot in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Formats a MAC address as the module prints it (lower case, colons).
pub fn format_mac(mac: &[u8; 6]) -> String {
    let mut s = String::new();
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Current values of every variable, parallel to [`VARIABLES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vars {
    values: Vec<Vec<u8>>,
}

impl Default for Vars {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Vars {
    /// Every variable at its default.
    pub fn defaults() -> Self {
        Self { values: VARIABLES.iter().map(default_bytes).collect() }
    }

    /// The stored bytes of a variable.
    pub fn raw(&self, id: VarId) -> &[u8] {
        &self.values[id.0]
    }

    /// The value as the getter prints it.
    pub fn render(&self, id: VarId) -> String {
        render(id.def().kind, &self.values[id.0])
    }

    /// The stored text of a variable (for the module's own settings).
    pub fn text(&self, var: Var) -> &str {
        core::str::from_utf8(&self.values[var as usize]).unwrap_or("")
    }

    /// A boolean variable.
    pub fn flag(&self, var: Var) -> bool {
        self.text(var) == "1"
    }

    /// A non-negative integer variable (0 for a negative or non-integer one: the table's
    /// bounds keep the unsigned ones in range).
    pub fn num(&self, var: Var) -> u64 {
        self.text(var).parse().unwrap_or(0)
    }

    /// A signed integer variable.
    pub fn int(&self, var: Var) -> i64 {
        self.text(var).parse().unwrap_or(0)
    }

    /// Sets a variable from a command argument.
    pub fn set(&mut self, id: VarId, raw: &str) -> Result<(), SetError> {
        let def = id.def();
        if def.access == Access::ReadOnly {
            return Err(SetError::ReadOnly);
        }
        self.values[id.0] = parse(def.kind, raw)?;
        Ok(())
    }

    /// Sets a variable from the module's own code, bypassing the read-only check. The value
    /// must already be in stored form.
    pub fn set_internal(&mut self, var: Var, stored: &[u8]) {
        self.values[var as usize] = stored.to_vec();
    }

    /// Stores a value loaded from NVM, re-checking it against the variable's type. Returns
    /// `false` if the variable does not take that value (the NVM image is from another
    /// firmware or damaged) and leaves the default in place.
    pub fn restore(&mut self, id: VarId, stored: &[u8]) -> bool {
        let def = id.def();
        if !def.saved {
            return false;
        }
        let ok = match def.kind {
            Kind::Passkey => {
                stored.is_empty()
                    || (stored.len() == passkey::PSK_HEX_LEN
                        && stored.iter().all(u8::is_ascii_hexdigit))
                    || (passkey::MIN_LEN..=passkey::MAX_LEN).contains(&stored.len())
            }
            kind => core::str::from_utf8(stored)
                .ok()
                .and_then(|s| parse(kind, &escape_plain(s)).ok())
                .is_some_and(|parsed| parsed == stored),
        };
        if ok {
            self.values[id.0] = stored.to_vec();
        }
        ok
    }

    /// The saved variables whose value differs from the default, for the NVM image.
    pub fn changed_saved(&self) -> impl Iterator<Item = (VarId, &[u8])> {
        VARIABLES.iter().enumerate().filter_map(move |(i, def)| {
            let value = &self.values[i];
            (def.saved && *value != default_bytes(def)).then_some((VarId(i), value.as_slice()))
        })
    }
}

/// Decodes the escapes an ordinary string value allows: `\"` and `\\`. Any other backslash
/// is kept as it is.
pub fn unescape_plain(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && (next == '"' || next == '\\')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Re-escapes a stored plain string so that [`parse`] decodes it to the same text.
fn escape_plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Defaults are written in the table in stored form (passkey defaults are printable text).
fn default_bytes(def: &VarDef) -> Vec<u8> {
    def.default.as_bytes().to_vec()
}

#[cfg(test)]
mod tests;

//! `http_whitelist.csv`: the REST API calls that need no authorization (chapter, "Securing
//! the REST API, Whitelisting API Calls").
//!
//! The file is a comma separated list. An entry names an API call by its path (`/log`,
//! `/stream`) or a command line (`help variables`); an entry ending in `*` matches every call
//! that starts with what comes before the `*` (`get wl*`, `help *`), and `*` alone matches
//! every call. Decisions (assumed; the chapter gives examples only):
//!
//! * Spaces around an entry are ignored; line ends separate entries like commas; empty
//!   entries are skipped, so an empty file whitelists nothing.
//! * Without a trailing `*` an entry matches only the exact call (`help commands` does not
//!   match `help commands x`). A `*` elsewhere is an ordinary character.
//! * Matching is by bytes, case sensitive; a command line is compared with its runs of
//!   spaces made one and its ends trimmed. `help *` does not match a bare `help` (its prefix
//!   is `help ` with the space).

use alloc::string::String;
use alloc::vec::Vec;

/// The name of the whitelist file.
pub const FILE_NAME: &str = "http_whitelist.csv";

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The call exactly.
    Exact(String),
    /// Every call starting with this text (`""` for `*` alone).
    Prefix(String),
}

/// A parsed whitelist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Whitelist {
    entries: Vec<Entry>,
}

impl Whitelist {
    /// Parses the file's contents; bytes that are not UTF-8 are read lossily (such an entry
    /// can still match only what it spells).
    pub fn parse(contents: &[u8]) -> Self {
        let text = String::from_utf8_lossy(contents);
        let entries = text
            .split([',', '\n', '\r'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| match e.strip_suffix('*') {
                Some(prefix) => Entry::Prefix(prefix.into()),
                None => Entry::Exact(e.into()),
            })
            .collect();
        Self { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether the call (a path such as `/log`, or a command line) is whitelisted.
    pub fn allows(&self, call: &[u8]) -> bool {
        let call = normalize(call);
        self.entries.iter().any(|e| match e {
            Entry::Exact(text) => call == text.as_bytes(),
            Entry::Prefix(prefix) => call.starts_with(prefix.as_bytes()),
        })
    }
}

/// Trims the ends and makes each run of spaces (or tabs) one space.
fn normalize(call: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(call.len());
    for word in call.split(|b| *b == b' ' || *b == b'\t').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    // The chapter's examples.
    #[case("*", "/log", true)]
    #[case("*", "/stream", true)]
    #[case("*", "reboot", true)]
    #[case("/log,/stream", "/log", true)]
    #[case("/log,/stream", "/stream", true)]
    #[case("/log,/stream", "ver", false)]
    #[case("/log,/stream", "/logs", false)]
    #[case("get wl*", "get wlan.ssid", true)]
    #[case("get wl*", "get wl s", true)]
    #[case("get wl*", "get wl", true)]
    #[case("get wl*", "get system.version", false)]
    #[case("get wl*", "set wlan.ssid x", false)]
    #[case("help variables,help commands", "help variables", true)]
    #[case("help variables,help commands", "help commands", true)]
    #[case("help variables,help commands", "help", false)]
    #[case("help variables,help commands", "help commands x", false)]
    #[case("/stream,help *,get *", "/stream", true)]
    #[case("/stream,help *,get *", "help commands", true)]
    #[case("/stream,help *,get *", "get time.uptime", true)]
    #[case("/stream,help *,get *", "help", false)]
    #[case("/stream,help *,get *", "set wlan.ssid x", false)]
    #[case("/stream,help *,get *", "/log", false)]
    // Edge cases.
    #[case("", "/log", false)]
    #[case("", "", false)]
    #[case(" , ,", "ver", false)]
    #[case("  /log  ,  ver ", "/log", true)]
    #[case("  /log  ,  ver ", "ver", true)]
    #[case("/log\r\nver\n", "ver", true)]
    #[case("ver", "ver ", true)]
    #[case("get wlan.ssid", "get   wlan.ssid", true)]
    #[case("ver", "VER", false)]
    #[case("ver", "version", false)]
    #[case("ver*", "version", true)]
    #[case("v*r", "ver", false)]
    #[case("v*r", "v*r", true)]
    #[case("get", "get wlan.ssid", false)]
    fn matches(#[case] file: &str, #[case] call: &str, #[case] allowed: bool) {
        assert_eq!(
            Whitelist::parse(file.as_bytes()).allows(call.as_bytes()),
            allowed,
            "{file:?} vs {call:?}"
        );
    }

    #[test]
    fn entries_are_typed_once() {
        let list = Whitelist::parse(b" *, /log ,get wl*");
        assert_eq!(
            list.entries(),
            [Entry::Prefix("".into()), Entry::Exact("/log".into()), Entry::Prefix("get wl".into())]
        );
    }
}

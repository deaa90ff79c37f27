//! Command lines: tokenizing and the command table.
//!
//! Tokenizing follows the serial interface rules: arguments are separated by spaces or tabs;
//! a double-quoted segment keeps its spaces; a backslash makes the next character literal for
//! the tokenizer (it neither quotes nor separates) and both characters are kept, so the
//! variable that receives the argument decodes the escapes its type allows (passkeys decode
//! the full encoded-ASCII set, other strings only `\"` and `\\`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a command line could not be split into arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizeError {
    /// A double quote was opened and never closed.
    UnterminatedQuote,
    /// The line is not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for TokenizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnterminatedQuote => "unterminated double quote",
            Self::NotUtf8 => "command line is not UTF-8",
        })
    }
}

/// Splits a command line into arguments (quotes removed, backslash escapes kept).
pub fn tokenize(line: &[u8]) -> Result<Vec<String>, TokenizeError> {
    let line = core::str::from_utf8(line).map_err(|_| TokenizeError::NotUtf8)?;
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                in_token = true;
                current.push('\\');
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '"' => {
                in_token = true;
                quoted = !quoted;
            }
            ' ' | '\t' if !quoted => {
                if in_token {
                    args.push(core::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                in_token = true;
                current.push(c);
            }
        }
    }
    if quoted {
        return Err(TokenizeError::UnterminatedQuote);
    }
    if in_token {
        args.push(current);
    }
    Ok(args)
}

/// Which built-in command a table row names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandId {
    Exit,
    FactoryReset,
    FileCreate,
    FileDelete,
    FileOpen,
    Get,
    Help,
    Load,
    Ls,
    NetworkDown,
    NetworkLookup,
    NetworkRestart,
    NetworkUp,
    Ping,
    Reboot,
    Save,
    Set,
    StreamClose,
    StreamList,
    StreamPoll,
    StreamRead,
    StreamWrite,
    TcpClient,
    TcpServer,
    TlsClient,
    TlsServer,
    UdpClient,
    UdpServer,
    Version,
    WlanScan,
}

/// One row of the command table.
#[derive(Debug)]
pub struct CommandDef {
    pub name: &'static str,
    pub short: &'static str,
    pub id: CommandId,
    pub min_args: usize,
    /// `None`: the command checks the count itself (`get` and `set` take shortcut words).
    pub max_args: Option<usize>,
    pub usage: &'static str,
    pub summary: &'static str,
}

/// Every command the firmware knows, in the order `help commands` lists them.
pub const COMMANDS: &[CommandDef] = &[
    CommandDef {
        name: "exit",
        short: "exit",
        id: CommandId::Exit,
        min_args: 0,
        max_args: Some(0),
        usage: "exit",
        summary: "Leave command mode: the bus streams again (STREAM mode only)",
    },
    CommandDef {
        name: "factory_reset",
        short: "fac",
        id: CommandId::FactoryReset,
        min_args: 1,
        max_args: Some(1),
        usage: "factory_reset <MAC address>",
        summary: "Restore every variable to its default, erase saved settings and reboot",
    },
    CommandDef {
        name: "file_create",
        short: "fcr",
        id: CommandId::FileCreate,
        min_args: 2,
        max_args: Some(8),
        usage: "file_create [-u] [-e] [-o] <name> <size> [<version> [<type> [<crc>]]]",
        summary: "Create a file from the <size> bytes that follow (-o: from a FILE stream)",
    },
    CommandDef {
        name: "file_delete",
        short: "fde",
        id: CommandId::FileDelete,
        min_args: 1,
        max_args: Some(1),
        usage: "file_delete <name>",
        summary: "Delete a file",
    },
    CommandDef {
        name: "file_open",
        short: "fop",
        id: CommandId::FileOpen,
        min_args: 1,
        max_args: Some(1),
        usage: "file_open <name>",
        summary: "Open a file for reading; answers the FILE stream handle",
    },
    CommandDef {
        name: "get",
        short: "get",
        id: CommandId::Get,
        min_args: 1,
        max_args: None,
        usage: "get <variable | group | all>",
        summary: "Print a variable, every variable of a group, or all variables",
    },
    CommandDef {
        name: "help",
        short: "help",
        id: CommandId::Help,
        min_args: 0,
        max_args: Some(1),
        usage: "help [commands | variables | <command>]",
        summary: "List commands or variables, or show how to use a command",
    },
    CommandDef {
        name: "load",
        short: "load",
        id: CommandId::Load,
        min_args: 0,
        max_args: Some(0),
        usage: "load",
        summary: "Discard unsaved changes: reload variables from non-volatile memory",
    },
    CommandDef {
        name: "ls",
        short: "ls",
        id: CommandId::Ls,
        min_args: 0,
        max_args: Some(1),
        usage: "ls [-v]",
        summary: "List files: size, version, name (-v: also type, flags, CRC)",
    },
    CommandDef {
        name: "network_down",
        short: "ndo",
        id: CommandId::NetworkDown,
        min_args: 0,
        max_args: Some(1),
        usage: "network_down [wlan]",
        summary: "Bring the network interface down (leave the WLAN)",
    },
    CommandDef {
        name: "network_lookup",
        short: "nlo",
        id: CommandId::NetworkLookup,
        min_args: 1,
        max_args: Some(1),
        usage: "network_lookup <host>",
        summary: "Resolve a host name to an IPv4 address (brings the network up if needed)",
    },
    CommandDef {
        name: "network_restart",
        short: "nre",
        id: CommandId::NetworkRestart,
        min_args: 0,
        max_args: Some(1),
        usage: "network_restart [wlan]",
        summary: "Bring the network interface down, then up again",
    },
    CommandDef {
        name: "network_up",
        short: "nup",
        id: CommandId::NetworkUp,
        min_args: 0,
        max_args: Some(2),
        usage: "network_up [-s] [wlan | softap]",
        summary: "Join the WLAN network (the Network Up Sequence)",
    },
    CommandDef {
        name: "ping",
        short: "ping",
        id: CommandId::Ping,
        min_args: 1,
        max_args: Some(1),
        usage: "ping <ip address | host | -g>",
        summary: "Send one ICMP echo request (-g: to the gateway); brings the network up if needed",
    },
    CommandDef {
        name: "reboot",
        short: "reboot",
        id: CommandId::Reboot,
        min_args: 0,
        max_args: Some(0),
        usage: "reboot",
        summary: "Restart the module; saved variables are kept, unsaved ones are lost",
    },
    CommandDef {
        name: "save",
        short: "save",
        id: CommandId::Save,
        min_args: 0,
        max_args: Some(0),
        usage: "save",
        summary: "Save variables to non-volatile memory",
    },
    CommandDef {
        name: "set",
        short: "set",
        id: CommandId::Set,
        min_args: 2,
        max_args: None,
        usage: "set <variable> <value>",
        summary: "Set a variable",
    },
    CommandDef {
        name: "stream_close",
        short: "close",
        id: CommandId::StreamClose,
        min_args: 1,
        max_args: Some(1),
        usage: "stream_close <handle | all>",
        summary: "Close a stream, or every stream",
    },
    CommandDef {
        name: "stream_list",
        short: "list",
        id: CommandId::StreamList,
        min_args: 0,
        max_args: Some(0),
        usage: "stream_list",
        summary: "List open streams: handle, type, endpoints",
    },
    CommandDef {
        name: "stream_poll",
        short: "poll",
        id: CommandId::StreamPoll,
        min_args: 0,
        max_args: Some(1),
        usage: "stream_poll [<handle> | all]",
        summary: "Stream state: 0 nothing to read, 1 data waiting, 2 closed by the peer",
    },
    CommandDef {
        name: "stream_read",
        short: "read",
        id: CommandId::StreamRead,
        min_args: 2,
        max_args: Some(2),
        usage: "stream_read <handle> <size>",
        summary: "Read up to <size> bytes from a stream (waits bus.command.read_timeout ms)",
    },
    CommandDef {
        name: "stream_write",
        short: "write",
        id: CommandId::StreamWrite,
        min_args: 2,
        max_args: Some(2),
        usage: "stream_write <handle> <size>",
        summary: "Write the <size> bytes that follow the command line to a stream",
    },
    CommandDef {
        name: "tcp_client",
        short: "tcpc",
        id: CommandId::TcpClient,
        min_args: 2,
        max_args: Some(2),
        usage: "tcp_client <host> <port>",
        summary: "Open a TCP connection; answers the stream handle (brings the network up)",
    },
    CommandDef {
        name: "tcp_server",
        short: "tcps",
        id: CommandId::TcpServer,
        min_args: 1,
        max_args: Some(2),
        usage: "tcp_server <start [port] | stop>",
        summary: "Start or stop the TCP server; each client is a TCPS stream",
    },
    CommandDef {
        name: "tls_client",
        short: "tlsc",
        id: CommandId::TlsClient,
        min_args: 2,
        max_args: Some(2),
        usage: "tls_client <host> <port>",
        summary: "Open a TLS connection (network.tls.*); answers the stream handle",
    },
    CommandDef {
        name: "tls_server",
        short: "tlss",
        id: CommandId::TlsServer,
        min_args: 1,
        max_args: Some(2),
        usage: "tls_server <start [port] | stop>",
        summary: "Start or stop the TCP server with TLS (tcp.server.tls_*); each client is a TLSS stream",
    },
    CommandDef {
        name: "udp_client",
        short: "udpc",
        id: CommandId::UdpClient,
        min_args: 2,
        max_args: Some(2),
        usage: "udp_client <host> <port>",
        summary: "Open a UDP client stream to host:port; answers the stream handle",
    },
    CommandDef {
        name: "udp_server",
        short: "udps",
        id: CommandId::UdpServer,
        min_args: 1,
        max_args: Some(4),
        usage: "udp_server <start [port] | stop | read <size> | write <ip> <port> <size>>",
        summary: "Start or stop the UDP server (one UDPS stream), or read/write per client",
    },
    CommandDef {
        name: "version",
        short: "ver",
        id: CommandId::Version,
        min_args: 0,
        max_args: Some(0),
        usage: "version",
        summary: "Print the firmware version",
    },
    CommandDef {
        name: "wlan_scan",
        short: "scan",
        id: CommandId::WlanScan,
        min_args: 0,
        max_args: Some(1),
        usage: "wlan_scan [-v]",
        summary: "Scan for WLAN networks (-v: with a column header)",
    },
];

/// Finds a command by its full name or its shortcut.
pub fn lookup(word: &str) -> Option<&'static CommandDef> {
    COMMANDS.iter().find(|c| c.name == word || c.short == word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use rstest::rstest;

    fn toks(line: &str) -> Result<Vec<String>, TokenizeError> {
        tokenize(line.as_bytes())
    }

    #[rstest]
    #[case("get wlan.ssid", &["get", "wlan.ssid"])]
    #[case("  get   wlan.ssid  ", &["get", "wlan.ssid"])]
    #[case("set\twl s\t\"My SSID\"", &["set", "wl", "s", "My SSID"])]
    #[case("set wl s \"\"", &["set", "wl", "s", ""])]
    #[case(r#"set wlan.passkey p\"ss\tw\nor\xFF"#, &["set", "wlan.passkey", r#"p\"ss\tw\nor\xFF"#])]
    #[case(r#"set x "a \"quoted\" word""#, &["set", "x", r#"a \"quoted\" word"#])]
    #[case(r#"set x ab"c d"e"#, &["set", "x", "abc de"])]
    #[case("", &[])]
    #[case(r"trailing\", &[r"trailing\"])]
    fn tokenizes(#[case] line: &str, #[case] want: &[&str]) {
        let want: Vec<String> = want.iter().map(|s| String::from(*s)).collect();
        assert_eq!(toks(line), Ok(want));
    }

    #[rstest]
    #[case("set x \"open")]
    #[case("\"")]
    fn rejects_unterminated_quote(#[case] line: &str) {
        assert_eq!(toks(line), Err(TokenizeError::UnterminatedQuote));
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(tokenize(&[b'g', 0xff, 0xfe]), Err(TokenizeError::NotUtf8));
    }

    #[test]
    fn command_names_and_shortcuts_are_unique() {
        let mut words = vec![];
        for c in COMMANDS {
            words.push(c.name);
            if c.short != c.name {
                words.push(c.short);
            }
        }
        let mut sorted = words.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), words.len(), "duplicate command word in {words:?}");
        assert!(COMMANDS.iter().all(|c| c.short.len() <= 6));
    }
}

//! Telnet on the way in: the remote terminal's input filter.
//!
//! The remote terminal is a telnet server (chapter, "Remote Terminal Access") that takes a
//! plain TCP client as well. It negotiates nothing: a client's commands (`IAC` with WILL,
//! WONT, DO, DONT and their option, subnegotiations `IAC SB … IAC SE`, and the two-byte
//! commands) are dropped, so a telnet client falls back to the NVT defaults, and only the
//! data goes on. `IAC IAC` is a data byte 0xFF; `CR NUL` (the NVT's bare CR) is a CR. What
//! goes out is not escaped (assumed: replies are text, and a plain TCP client would see a
//! doubled 0xFF of `stream_read` data as two bytes).
//!
//! Sans-IO and stateful across chunks: a sequence split over two reads is still dropped.

use alloc::vec::Vec;

/// Interpret As Command.
pub const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Where the filter is in the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Data,
    /// After a CR (a NUL right after it is dropped).
    Cr,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes next.
    Option,
    /// Inside a subnegotiation.
    Sub,
    /// After IAC inside a subnegotiation.
    SubIac,
}

/// The telnet input filter of one connection.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    state: State,
}

impl Filter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The data bytes of `input`, telnet commands removed.
    pub fn data(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            self.state = match (self.state, b) {
                (State::Data | State::Cr, IAC) => State::Iac,
                (State::Cr, 0) => State::Data,
                (State::Data | State::Cr, b'\r') => {
                    out.push(b);
                    State::Cr
                }
                (State::Data | State::Cr, _) => {
                    out.push(b);
                    State::Data
                }
                (State::Iac, IAC) => {
                    out.push(IAC);
                    State::Data
                }
                (State::Iac, SB) => State::Sub,
                (State::Iac, WILL..=DONT) => State::Option,
                // A two-byte command (NOP, GA, AYT, …) or a stray SE.
                (State::Iac, _) | (State::Option, _) => State::Data,
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain(b"get wlan.ssid\r\n".as_slice(), b"get wlan.ssid\r\n".as_slice())]
    #[case::negotiation(b"\xff\xfd\x01\xff\xfb\x03ver\r\n".as_slice(), b"ver\r\n".as_slice())]
    #[case::subnegotiation(b"a\xff\xfa\x18\x00xterm\xff\xf0b".as_slice(), b"ab".as_slice())]
    #[case::iac_in_sub(b"\xff\xfa\x18\xff\xffx\xff\xf0c".as_slice(), b"c".as_slice())]
    #[case::escaped_ff(b"x\xff\xffy".as_slice(), b"x\xffy".as_slice())]
    #[case::cr_nul(b"ver\r\0".as_slice(), b"ver\r".as_slice())]
    #[case::nul_elsewhere(b"a\0b".as_slice(), b"a\0b".as_slice())]
    #[case::two_byte(b"\xff\xf1a\xff\xf6".as_slice(), b"a".as_slice())]
    #[case::cr_then_iac(b"\r\xff\xfb\x01\0".as_slice(), b"\r\0".as_slice())]
    fn keeps_only_data(#[case] input: &[u8], #[case] want: &[u8]) {
        assert_eq!(Filter::new().data(input), want);
    }

    #[test]
    fn does_not_depend_on_how_input_is_split() {
        let input = b"\xff\xfd\x01ab\r\0c\xff\xfa\x18\x00x\xff\xf0\xff\xffd\r\n";
        let whole = Filter::new().data(input);
        let mut f = Filter::new();
        let bytewise: Vec<u8> = input.iter().flat_map(|b| f.data(&[*b])).collect();
        assert_eq!(whole, bytewise);
        assert_eq!(whole, b"ab\rc\xffd\r\n");
    }
}

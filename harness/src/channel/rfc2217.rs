//! The client side of a telnet connection with the COM-PORT-OPTION of RFC 2217, as a
//! serial-over-network server (`ser2net` with a `telnet(rfc2217)` accepter) speaks it:
//! sans-IO, wire bytes in, console data and bytes to send back out.
//!
//! [`Decoder`] splits the wire into data (`IAC IAC` undone) and telnet commands, whatever
//! the chunking; [`Client`] answers the option negotiation (BINARY, SUPPRESS-GO-AHEAD and
//! COM-PORT-OPTION accepted, everything else refused) and collects the server's COM-PORT
//! answers, which the link checks against what it asked for. Both directions stay in binary
//! mode, so there is no NVT CR/NUL translation.

/// Interpret As Command.
pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

/// Telnet options the client takes part in.
pub const BINARY: u8 = 0;
pub const SUPPRESS_GO_AHEAD: u8 = 3;
pub const COM_PORT_OPTION: u8 = 44;

/// Longest sub-negotiation body kept; a longer one is hostile or broken and is cut.
const MAX_SUB: usize = 64;

/// A telnet command that is not data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Will(u8),
    Wont(u8),
    Do(u8),
    Dont(u8),
    /// `IAC SB option body IAC SE` (the body unescaped; cut at 64 bytes, see `truncated`).
    Sub {
        option: u8,
        body: Vec<u8>,
        truncated: bool,
    },
    /// Any other two-byte command (`NOP`, `GA`, `BRK`, ...).
    Other(u8),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Data,
    Iac,
    /// After `IAC WILL` (and the like): the option byte comes next.
    Verb(u8),
    /// After `IAC SB`: the option byte comes next.
    SubOption,
    SubBody,
    SubIac,
}

/// Splits wire bytes into data and commands; keeps its state across chunks.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    state: State,
    sub_option: u8,
    sub: Vec<u8>,
    truncated: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `wire`: data is appended to `data`, commands to `commands`.
    pub fn push(&mut self, wire: &[u8], data: &mut Vec<u8>, commands: &mut Vec<Command>) {
        for &b in wire {
            self.step(b, data, commands);
        }
    }

    fn step(&mut self, b: u8, data: &mut Vec<u8>, commands: &mut Vec<Command>) {
        self.state = match (self.state, b) {
            (State::Data, IAC) => State::Iac,
            (State::Data, _) => {
                data.push(b);
                State::Data
            }
            (State::Iac, IAC) => {
                data.push(IAC);
                State::Data
            }
            (State::Iac, WILL | WONT | DO | DONT) => State::Verb(b),
            (State::Iac, SB) => State::SubOption,
            (State::Iac, _) => {
                commands.push(Command::Other(b));
                State::Data
            }
            (State::Verb(verb), option) => {
                commands.push(match verb {
                    WILL => Command::Will(option),
                    WONT => Command::Wont(option),
                    DO => Command::Do(option),
                    _ => Command::Dont(option),
                });
                State::Data
            }
            (State::SubOption, option) => {
                self.sub_option = option;
                self.sub.clear();
                self.truncated = false;
                State::SubBody
            }
            (State::SubBody, IAC) => State::SubIac,
            (State::SubBody, _) => {
                self.sub_byte(b);
                State::SubBody
            }
            (State::SubIac, IAC) => {
                self.sub_byte(IAC);
                State::SubBody
            }
            (State::SubIac, SE) => {
                commands.push(Command::Sub {
                    option: self.sub_option,
                    body: std::mem::take(&mut self.sub),
                    truncated: self.truncated,
                });
                State::Data
            }
            // `IAC x` inside a sub-negotiation other than `IAC IAC` / `IAC SE`: the sender
            // broke the framing. The sub-negotiation is dropped and `x` is read as the
            // command it would be outside one (RFC 854 has no better answer).
            (State::SubIac, _) => {
                self.sub.clear();
                self.state = State::Iac;
                return self.step(b, data, commands);
            }
        };
    }

    fn sub_byte(&mut self, b: u8) {
        if self.sub.len() < MAX_SUB {
            self.sub.push(b);
        } else {
            self.truncated = true;
        }
    }
}

/// Appends `data` to `out` with every `IAC` doubled (console bytes on a telnet wire).
pub fn escape_into(data: &[u8], out: &mut Vec<u8>) {
    for &b in data {
        if b == IAC {
            out.push(IAC);
        }
        out.push(b);
    }
}

/// COM-PORT-OPTION command codes (client to server; the server answers with code + 100).
mod code {
    pub const SIGNATURE: u8 = 0;
    pub const SET_BAUDRATE: u8 = 1;
    pub const SET_DATASIZE: u8 = 2;
    pub const SET_PARITY: u8 = 3;
    pub const SET_STOPSIZE: u8 = 4;
    pub const SET_CONTROL: u8 = 5;
    pub const NOTIFY_LINESTATE: u8 = 6;
    pub const NOTIFY_MODEMSTATE: u8 = 7;
    pub const FLOWCONTROL_SUSPEND: u8 = 8;
    pub const FLOWCONTROL_RESUME: u8 = 9;
    pub const SET_LINESTATE_MASK: u8 = 10;
    pub const SET_MODEMSTATE_MASK: u8 = 11;
    pub const PURGE_DATA: u8 = 12;
    /// What the server adds to a code in its answer.
    pub const ANSWER: u8 = 100;
}

/// `SET-PARITY` value: no parity.
pub const PARITY_NONE: u8 = 1;
/// `SET-STOPSIZE` value: one stop bit.
pub const STOPSIZE_1: u8 = 1;
/// `SET-CONTROL` values for outbound flow control.
pub const CONTROL_NONE: u8 = 1;
pub const CONTROL_XONXOFF: u8 = 2;
pub const CONTROL_HARDWARE: u8 = 3;
/// `PURGE-DATA` value: both the server's receive and transmit buffers.
pub const PURGE_BOTH: u8 = 3;

/// A COM-PORT-OPTION command the client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComPortRequest {
    Baud(u32),
    DataSize(u8),
    Parity(u8),
    StopSize(u8),
    Control(u8),
    Purge(u8),
}

impl ComPortRequest {
    /// Appends `IAC SB COM-PORT-OPTION code value IAC SE`, the value escaped.
    pub fn encode_into(self, out: &mut Vec<u8>) {
        let (code, value): (u8, &[u8]) = match self {
            Self::Baud(baud) => (code::SET_BAUDRATE, &baud.to_be_bytes()),
            Self::DataSize(v) => (code::SET_DATASIZE, &[v]),
            Self::Parity(v) => (code::SET_PARITY, &[v]),
            Self::StopSize(v) => (code::SET_STOPSIZE, &[v]),
            Self::Control(v) => (code::SET_CONTROL, &[v]),
            Self::Purge(v) => (code::PURGE_DATA, &[v]),
        };
        out.extend_from_slice(&[IAC, SB, COM_PORT_OPTION, code]);
        escape_into(value, out);
        out.extend_from_slice(&[IAC, SE]);
    }
}

/// What the server said in a COM-PORT-OPTION sub-negotiation: the answer to a request (the
/// value it applied) or a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Signature(Vec<u8>),
    Baud(u32),
    DataSize(u8),
    Parity(u8),
    StopSize(u8),
    Control(u8),
    LineState(u8),
    ModemState(u8),
    FlowSuspend,
    FlowResume,
    LineStateMask(u8),
    ModemStateMask(u8),
    Purge(u8),
    /// A body that is no answer the client knows (unknown code, wrong length).
    Malformed(Vec<u8>),
}

impl Answer {
    /// Parses a COM-PORT-OPTION sub-negotiation body from the server.
    pub fn parse(body: &[u8]) -> Self {
        let malformed = || Self::Malformed(body.to_vec());
        let Some((&c, value)) = body.split_first() else { return malformed() };
        let Some(c) = c.checked_sub(code::ANSWER) else { return malformed() };
        let byte = |make: fn(u8) -> Self| match value {
            [v] => make(*v),
            _ => malformed(),
        };
        match c {
            code::SIGNATURE => Self::Signature(value.to_vec()),
            code::SET_BAUDRATE => match <[u8; 4]>::try_from(value) {
                Ok(v) => Self::Baud(u32::from_be_bytes(v)),
                Err(_) => malformed(),
            },
            code::SET_DATASIZE => byte(Self::DataSize),
            code::SET_PARITY => byte(Self::Parity),
            code::SET_STOPSIZE => byte(Self::StopSize),
            code::SET_CONTROL => byte(Self::Control),
            code::NOTIFY_LINESTATE => byte(Self::LineState),
            code::NOTIFY_MODEMSTATE => byte(Self::ModemState),
            code::FLOWCONTROL_SUSPEND if value.is_empty() => Self::FlowSuspend,
            code::FLOWCONTROL_RESUME if value.is_empty() => Self::FlowResume,
            code::SET_LINESTATE_MASK => byte(Self::LineStateMask),
            code::SET_MODEMSTATE_MASK => byte(Self::ModemStateMask),
            code::PURGE_DATA => byte(Self::Purge),
            _ => malformed(),
        }
    }
}

/// Where the server stands on COM-PORT-OPTION.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComPort {
    /// Asked, not answered yet.
    Pending,
    /// The server said `DO COM-PORT-OPTION`: requests may go.
    Accepted,
    /// The server said `DONT COM-PORT-OPTION`.
    Refused,
}

/// A set of telnet options (one bit per option byte).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Options([u64; 4]);

impl Options {
    fn has(&self, option: u8) -> bool {
        self.0[usize::from(option / 64)] & (1 << (option % 64)) != 0
    }

    /// Sets whether `option` is in the set; whether it was.
    fn set(&mut self, option: u8, on: bool) -> bool {
        let was = self.has(option);
        let bit = 1 << (option % 64);
        let word = &mut self.0[usize::from(option / 64)];
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        was
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries((0..=255u8).filter(|o| self.has(*o))).finish()
    }
}

/// The client's side of the option negotiation, with the decoder.
#[derive(Clone, Debug, Default)]
pub struct Client {
    decoder: Decoder,
    /// Options on at our end (we WILL) and at theirs (they WILL).
    ours: Options,
    theirs: Options,
    /// Requests we sent and have no answer to yet.
    asked_ours: Options,
    asked_theirs: Options,
    /// Options refused once already (a refusal is not repeated).
    refused: Options,
    answers: Vec<Answer>,
}

impl Client {
    pub fn new() -> Self {
        Self::default()
    }

    /// The client's opening: binary both ways, no go-ahead both ways, and COM-PORT-OPTION.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for option in [BINARY, SUPPRESS_GO_AHEAD, COM_PORT_OPTION] {
            self.asked_ours.set(option, true);
            out.extend_from_slice(&[IAC, WILL, option]);
        }
        for option in [BINARY, SUPPRESS_GO_AHEAD] {
            self.asked_theirs.set(option, true);
            out.extend_from_slice(&[IAC, DO, option]);
        }
        out
    }

    /// Where COM-PORT-OPTION stands.
    pub fn com_port(&self) -> ComPort {
        if self.ours.has(COM_PORT_OPTION) {
            ComPort::Accepted
        } else if self.asked_ours.has(COM_PORT_OPTION) {
            ComPort::Pending
        } else {
            ComPort::Refused
        }
    }

    /// Whether the server sends binary (its `WILL BINARY` taken).
    pub fn binary(&self) -> bool {
        self.theirs.has(BINARY)
    }

    /// The COM-PORT answers and notifications received so far, oldest first.
    pub fn take_answers(&mut self) -> Vec<Answer> {
        std::mem::take(&mut self.answers)
    }

    /// Takes wire bytes from the server: console data goes to `data`, what the negotiation
    /// answers to `reply` (to be sent as it is).
    pub fn receive(&mut self, wire: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        let mut commands = Vec::new();
        self.decoder.push(wire, data, &mut commands);
        for command in commands {
            self.handle(command, reply);
        }
    }

    fn handle(&mut self, command: Command, reply: &mut Vec<u8>) {
        // Each request is answered only when it changes the option's state and was not our
        // own request answered (RFC 854's rule against negotiation loops).
        match command {
            Command::Will(option) => {
                let asked = self.asked_theirs.set(option, false);
                if matches!(option, BINARY | SUPPRESS_GO_AHEAD) {
                    if !self.theirs.set(option, true) && !asked {
                        reply.extend_from_slice(&[IAC, DO, option]);
                    }
                } else if !self.refused.set(option, true) {
                    reply.extend_from_slice(&[IAC, DONT, option]);
                }
            }
            Command::Wont(option) => {
                let asked = self.asked_theirs.set(option, false);
                if self.theirs.set(option, false) && !asked {
                    reply.extend_from_slice(&[IAC, DONT, option]);
                }
            }
            Command::Do(option) => {
                let asked = self.asked_ours.set(option, false);
                if matches!(option, BINARY | SUPPRESS_GO_AHEAD | COM_PORT_OPTION) {
                    if !self.ours.set(option, true) && !asked {
                        reply.extend_from_slice(&[IAC, WILL, option]);
                    }
                } else if !self.refused.set(option, true) {
                    reply.extend_from_slice(&[IAC, WONT, option]);
                }
            }
            Command::Dont(option) => {
                let asked = self.asked_ours.set(option, false);
                if self.ours.set(option, false) && !asked {
                    reply.extend_from_slice(&[IAC, WONT, option]);
                }
            }
            Command::Sub { option: COM_PORT_OPTION, body, truncated } => {
                self.answers.push(if truncated {
                    Answer::Malformed(body)
                } else {
                    Answer::parse(&body)
                });
            }
            // Other sub-negotiations, NOP, GA, BRK: nothing for a console client to do.
            Command::Sub { .. } | Command::Other(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn decode(wire: &[u8]) -> (Vec<u8>, Vec<Command>) {
        let (mut data, mut commands) = (Vec::new(), Vec::new());
        Decoder::new().push(wire, &mut data, &mut commands);
        (data, commands)
    }

    #[rstest]
    #[case::plain(b"R000008\r\nSet OK\r\n", b"R000008\r\nSet OK\r\n", vec![])]
    #[case::escaped_iac(&[b'a', IAC, IAC, b'b'], &[b'a', IAC, b'b'], vec![])]
    #[case::will(&[IAC, WILL, BINARY, b'x'], b"x", vec![Command::Will(BINARY)])]
    #[case::dont(&[IAC, DONT, 1], b"", vec![Command::Dont(1)])]
    #[case::nop(&[b'a', IAC, 241, b'b'], b"ab", vec![Command::Other(241)])]
    #[case::sub(
        &[IAC, SB, COM_PORT_OPTION, 101, 0, 0, IAC, IAC, 0, IAC, SE, b'z'],
        b"z",
        vec![Command::Sub { option: COM_PORT_OPTION, body: vec![101, 0, 0, IAC, 0], truncated: false }]
    )]
    #[case::broken_sub(
        &[IAC, SB, COM_PORT_OPTION, 101, IAC, WILL, 3, b'q'],
        b"q",
        vec![Command::Will(3)]
    )]
    #[case::cut_at_the_end(&[b'a', IAC], b"a", vec![])]
    fn decodes_wire_bytes(
        #[case] wire: &[u8],
        #[case] want_data: &[u8],
        #[case] want_commands: Vec<Command>,
    ) {
        let (data, commands) = decode(wire);
        assert_eq!((data.as_slice(), commands), (want_data, want_commands));
        // Byte by byte gives the same.
        let mut decoder = Decoder::new();
        let (mut data, mut commands) = (Vec::new(), Vec::new());
        for b in wire {
            decoder.push(std::slice::from_ref(b), &mut data, &mut commands);
        }
        assert_eq!(data, want_data);
    }

    #[test]
    fn an_overlong_sub_negotiation_is_cut_and_marked() {
        let mut wire = vec![IAC, SB, COM_PORT_OPTION];
        wire.extend(std::iter::repeat_n(7, 1000));
        wire.extend_from_slice(&[IAC, SE, b'k']);
        let (data, commands) = decode(&wire);
        assert_eq!(data, b"k");
        assert!(
            matches!(&commands[..], [Command::Sub { body, truncated: true, .. }] if body.len() == MAX_SUB),
            "{commands:?}"
        );
    }

    #[test]
    fn escaped_data_decodes_to_itself() {
        let data: Vec<u8> = (0..=255).chain([IAC, IAC, 0]).collect();
        let mut wire = Vec::new();
        escape_into(&data, &mut wire);
        assert_eq!(wire.len(), data.len() + 3);
        assert_eq!(decode(&wire), (data, vec![]));
    }

    #[rstest]
    #[case::baud(ComPortRequest::Baud(115_200), &[IAC, SB, 44, 1, 0, 1, 0xc2, 0, IAC, SE])]
    #[case::baud_with_iac(ComPortRequest::Baud(0xff), &[IAC, SB, 44, 1, 0, 0, 0, IAC, IAC, IAC, SE])]
    #[case::parity(ComPortRequest::Parity(PARITY_NONE), &[IAC, SB, 44, 3, 1, IAC, SE])]
    #[case::control(ComPortRequest::Control(CONTROL_HARDWARE), &[IAC, SB, 44, 5, 3, IAC, SE])]
    #[case::purge(ComPortRequest::Purge(PURGE_BOTH), &[IAC, SB, 44, 12, 3, IAC, SE])]
    fn encodes_requests(#[case] request: ComPortRequest, #[case] want: &[u8]) {
        let mut out = Vec::new();
        request.encode_into(&mut out);
        assert_eq!(out, want);
    }

    #[rstest]
    #[case::baud(&[101, 0, 0, 0x25, 0x80], Answer::Baud(9600))]
    #[case::datasize(&[102, 8], Answer::DataSize(8))]
    #[case::parity(&[103, 1], Answer::Parity(1))]
    #[case::stopsize(&[104, 1], Answer::StopSize(1))]
    #[case::control(&[105, 3], Answer::Control(3))]
    #[case::linestate(&[106, 0x60], Answer::LineState(0x60))]
    #[case::modemstate(&[107, 0x30], Answer::ModemState(0x30))]
    #[case::suspend(&[108], Answer::FlowSuspend)]
    #[case::purge(&[112, 3], Answer::Purge(3))]
    #[case::signature(&[100, b's', b'2', b'n'], Answer::Signature(b"s2n".to_vec()))]
    #[case::short_baud(&[101, 0, 0x25], Answer::Malformed(vec![101, 0, 0x25]))]
    #[case::request_code(&[1, 0, 0, 0, 1], Answer::Malformed(vec![1, 0, 0, 0, 1]))]
    #[case::unknown(&[150, 1], Answer::Malformed(vec![150, 1]))]
    #[case::empty(&[], Answer::Malformed(vec![]))]
    fn parses_answers(#[case] body: &[u8], #[case] want: Answer) {
        assert_eq!(Answer::parse(body), want);
    }

    /// Server bytes in; what the client sends back, where COM-PORT stands, whether binary.
    #[rstest]
    #[case::all_agreed(
        &[IAC, DO, BINARY, IAC, WILL, BINARY, IAC, DO, 3, IAC, WILL, 3, IAC, DO, 44],
        &[],
        ComPort::Accepted,
        true
    )]
    #[case::echo_refused_once(&[IAC, WILL, 1, IAC, WILL, 1], &[IAC, DONT, 1], ComPort::Pending, false)]
    #[case::unknown_do_refused(&[IAC, DO, 24], &[IAC, WONT, 24], ComPort::Pending, false)]
    #[case::com_port_refused(&[IAC, DONT, 44], &[], ComPort::Refused, false)]
    #[case::binary_then_off(
        &[IAC, WILL, BINARY, IAC, WONT, BINARY],
        &[IAC, DONT, BINARY],
        ComPort::Pending,
        false
    )]
    #[case::unasked_binary_again(&[IAC, WILL, BINARY, IAC, WILL, BINARY], &[], ComPort::Pending, true)]
    fn negotiates(
        #[case] server: &[u8],
        #[case] want_reply: &[u8],
        #[case] want_com_port: ComPort,
        #[case] want_binary: bool,
    ) {
        let mut client = Client::new();
        let opening = client.start();
        assert_eq!(
            opening,
            [IAC, WILL, 0, IAC, WILL, 3, IAC, WILL, 44, IAC, DO, 0, IAC, DO, 3],
            "the opening"
        );
        let (mut data, mut reply) = (Vec::new(), Vec::new());
        client.receive(server, &mut data, &mut reply);
        assert_eq!(reply, want_reply);
        assert_eq!(client.com_port(), want_com_port);
        assert_eq!(client.binary(), want_binary);
        assert!(data.is_empty());
    }

    /// What the fuzz target checks, on pseudo-random wire bytes rich in telnet commands:
    /// the client's output does not depend on how the input is split.
    #[test]
    fn splitting_the_wire_changes_nothing() {
        let mut seed: u64 = 0x2217_0044;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = [IAC, WILL, WONT, DO, DONT, SB, SE, 44, 0, 3, 101, 112, b'a', b'\r'];
        for _ in 0..2000 {
            let len = (next() % 48) as usize;
            let wire: Vec<u8> =
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let chunk = 1 + (next() % 5) as usize;
            let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
                let mut client = Client::new();
                let (mut data, mut reply) = (Vec::new(), Vec::new());
                for piece in pieces {
                    client.receive(piece, &mut data, &mut reply);
                }
                (data, reply, client.take_answers(), client.com_port())
            };
            let whole = run(&mut std::iter::once(wire.as_slice()));
            assert_eq!(whole, run(&mut wire.chunks(chunk)), "{wire:?} in chunks of {chunk}");
            assert!(whole.0.len() <= wire.len());
        }
    }

    #[test]
    fn collects_com_port_answers_between_data() {
        let mut client = Client::new();
        let (mut data, mut reply) = (Vec::new(), Vec::new());
        let wire = [
            b'a', IAC, SB, 44, 101, 0, 0, 0x25, 0x80, IAC, SE, b'b', IAC, SB, 44, 106, 0x60, IAC,
            SE, IAC, SB, 24, 0, IAC, SE,
        ];
        client.receive(&wire, &mut data, &mut reply);
        assert_eq!(data, b"ab");
        assert_eq!(client.take_answers(), [Answer::Baud(9600), Answer::LineState(0x60)]);
        assert!(client.take_answers().is_empty());
    }
}

//! Sans-IO parser for machine-format console output.
//!
//! Bytes go in as they arrive (any split); [`Frame`]s come out. A frame is a header
//! `R|L <digit> <5 digits> \r\n` followed by exactly that many body bytes. Anything else
//! (echo, prompts, human-format text, line noise) is passed through as [`Frame::Noise`]:
//! the parser resynchronises by dropping one byte at a time until a header parses.

/// One unit of console output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A command response: `R` header.
    Response { code: u8, body: Vec<u8> },
    /// A log message: `L` header.
    Log { level: u8, body: Vec<u8> },
    /// Bytes that are not part of a frame.
    Noise(Vec<u8>),
}

const HEADER_LEN: usize = 9;

/// The machine-format frame parser.
#[derive(Clone, Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    noise: Vec<u8>,
}

/// What the start of the buffer holds.
enum Head {
    /// A complete header: kind, digit, body length.
    Header(u8, u8, usize),
    /// Could still become a header with more bytes.
    Incomplete,
    /// Cannot be a header.
    Not,
}

fn head(buf: &[u8]) -> Head {
    let Some(&kind) = buf.first() else { return Head::Incomplete };
    if kind != b'R' && kind != b'L' {
        return Head::Not;
    }
    for (i, &b) in buf.iter().enumerate().take(HEADER_LEN).skip(1) {
        let ok = match i {
            1..=6 => b.is_ascii_digit(),
            7 => b == b'\r',
            _ => b == b'\n',
        };
        if !ok {
            return Head::Not;
        }
    }
    if buf.len() < HEADER_LEN {
        return Head::Incomplete;
    }
    let digit = buf[1] - b'0';
    let len = buf[2..7].iter().fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    Head::Header(kind, digit, len)
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if the buffered bytes hold one. Noise is returned as soon as
    /// a frame header (or the end of the buffered bytes) is reached after it.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match head(&self.buf) {
                Head::Header(kind, digit, len) => {
                    if !self.noise.is_empty() {
                        return Some(Frame::Noise(std::mem::take(&mut self.noise)));
                    }
                    if self.buf.len() < HEADER_LEN + len {
                        return None;
                    }
                    let body = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
                    self.buf.drain(..HEADER_LEN + len);
                    return Some(if kind == b'R' {
                        Frame::Response { code: digit, body }
                    } else {
                        Frame::Log { level: digit, body }
                    });
                }
                Head::Incomplete => {
                    if self.buf.is_empty() && !self.noise.is_empty() {
                        return Some(Frame::Noise(std::mem::take(&mut self.noise)));
                    }
                    return None;
                }
                Head::Not => {
                    let b = self.buf.remove(0);
                    self.noise.push(b);
                }
            }
        }
    }

    /// Bytes held that are not yet a complete frame (for error messages).
    pub fn pending(&self) -> Vec<u8> {
        let mut all = self.noise.clone();
        all.extend_from_slice(&self.buf);
        all
    }

    /// Forgets everything buffered.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.noise.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::new();
        let mut out = vec![];
        for c in chunks {
            f.push(c);
            while let Some(frame) = f.next_frame() {
                out.push(frame);
            }
        }
        out
    }

    fn resp(code: u8, body: &[u8]) -> Frame {
        Frame::Response { code, body: body.to_vec() }
    }

    #[rstest]
    #[case::whole(&[b"R000008\r\nSet OK\r\n".as_slice()], vec![resp(0, b"Set OK\r\n")])]
    #[case::empty_body(&[b"R000000\r\n".as_slice()], vec![resp(0, b"")])]
    #[case::byte_by_byte(&[b"R3".as_slice(), b"0001", b"7\r", b"\nUnknown", b" command\r\n"], vec![resp(3, b"Unknown command\r\n")])]
    #[case::log_then_response(
        &[b"L100009\r\n[Ready]\r\nR000003\r\n1\r\n".as_slice()],
        vec![Frame::Log { level: 1, body: b"[Ready]\r\n".to_vec() }, resp(0, b"1\r\n")]
    )]
    #[case::echo_before(&[b"get x\r\nR000003\r\n1\r\n".as_slice()], vec![Frame::Noise(b"get x\r\n".to_vec()), resp(0, b"1\r\n")])]
    #[case::garbage_resync(&[b"\x00R00Rx\xffR000004\r\nab\r\n".as_slice()], vec![Frame::Noise(b"\x00R00Rx\xff".to_vec()), resp(0, b"ab\r\n")])]
    #[case::body_looks_like_header(&[b"R000011\r\nR000003\r\n\r\n".as_slice()], vec![resp(0, b"R000003\r\n\r\n")])]
    #[case::trailing_prompt(&[b"R000003\r\n1\r\n> ".as_slice()], vec![resp(0, b"1\r\n"), Frame::Noise(b"> ".to_vec())])]
    fn parses(#[case] chunks: &[&[u8]], #[case] want: Vec<Frame>) {
        assert_eq!(frames(chunks), want);
    }

    #[test]
    fn incomplete_body_waits() {
        let mut f = Framer::new();
        f.push(b"R000010\r\nabc");
        assert_eq!(f.next_frame(), None);
        f.push(b"defgh\r\n");
        assert_eq!(f.next_frame(), Some(resp(0, b"abcdefgh\r\n")));
    }

    #[test]
    fn a_lone_r_at_the_end_waits_for_more() {
        let mut f = Framer::new();
        f.push(b"xyR");
        assert_eq!(f.next_frame(), None);
        assert_eq!(f.pending(), b"xyR");
        f.push(b"000000\r\n");
        assert_eq!(f.next_frame(), Some(Frame::Noise(b"xy".to_vec())));
        assert_eq!(f.next_frame(), Some(resp(0, b"")));
    }
}

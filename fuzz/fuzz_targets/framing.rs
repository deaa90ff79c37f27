//! The harness's machine-format frame parser on arbitrary module output: it never panics,
//! the frames do not depend on how the bytes were split into reads, and frames plus noise
//! give back every byte (nothing is lost or invented).
#![no_main]

use gecko_hil::channel::framing::{Frame, Framer};
use libfuzzer_sys::fuzz_target;

fn parse(data: &[u8], chunk: usize) -> (Vec<Frame>, Vec<u8>) {
    let mut framer = Framer::new();
    let mut frames = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        framer.push(piece);
        while let Some(frame) = framer.next_frame() {
            frames.push(frame);
        }
    }
    (frames, framer.pending())
}

fn bytes_of(frames: &[Frame], pending: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        match f {
            Frame::Response { code, body } => {
                out.extend_from_slice(format!("R{code}{:05}\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            Frame::Log { level, body } => {
                out.extend_from_slice(format!("L{level}{:05}\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            Frame::Noise(n) => out.extend_from_slice(n),
        }
    }
    out.extend_from_slice(pending);
    out
}

/// Adjacent noise frames are one run of noise, however the reads fell.
fn merge_noise(frames: Vec<Frame>) -> Vec<Frame> {
    let mut out: Vec<Frame> = Vec::new();
    for f in frames {
        if let (Some(Frame::Noise(prev)), Frame::Noise(n)) = (out.last_mut(), &f) {
            prev.extend_from_slice(n);
            continue;
        }
        out.push(f);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let (whole, pending_whole) = parse(data, data.len());
    let (pieces, pending_pieces) = parse(data, usize::from(split % 16) + 1);
    assert_eq!(bytes_of(&whole, &pending_whole), data);
    assert_eq!(bytes_of(&pieces, &pending_pieces), data);
    let frames = |v: Vec<Frame>| -> Vec<Frame> {
        merge_noise(v).into_iter().filter(|f| !matches!(f, Frame::Noise(_))).collect()
    };
    assert_eq!(frames(whole), frames(pieces));
});

//! Arbitrary FIFO contents for the LAN9118 driver's receive path: frames as the wire would
//! deliver them and raw status and data words as a broken or hostile controller would
//! report them, in any order, through the register model, with receives into buffers of
//! any size and interrupts in between.
//!
//! Checked:
//! * `Lan9118::receive` and `on_interrupt` never panic and return after a bounded number of
//!   register reads;
//! * a delivered frame is at least an Ethernet header and fits the buffer given;
//! * when only well-formed frames went in, each comes out whole, in order, or is dropped
//!   only because it is longer than the buffer (or than any Ethernet frame);
//! * the ARP reply reader never panics on what comes out.
#![no_main]

use lan9118::model::Model;
use lan9118::{Lan9118, MAX_FRAME, MIN_FRAME, arp};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x03, 0x86];

/// Reads `n` bytes from the front of `data` (fewer at its end).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = data.split_at(n.min(data.len()));
    *data = tail;
    head
}

fn u16_of(data: &mut &[u8]) -> usize {
    let b = take(data, 2);
    usize::from(b.first().copied().unwrap_or(0)) | usize::from(b.get(1).copied().unwrap_or(0)) << 8
}

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let mut dev = Lan9118::new(Model::new());
    assert_eq!(dev.init(MAC), Ok(()));
    // Frames pushed whole, in order, while no raw words went in (after that the FIFO
    // contents are whatever the input made them).
    let mut expected: VecDeque<Vec<u8>> = VecDeque::new();
    let mut raw = false;
    let mut buf = vec![0u8; 2048];
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        match op % 4 {
            0 => {
                let len = u16_of(&mut data) % 1600;
                let mut frame = take(&mut data, len).to_vec();
                frame.resize(len.max(MIN_FRAME), 0);
                frame[..6].copy_from_slice(&MAC);
                if dev.registers().push_frame(&frame) {
                    expected.push_back(frame);
                }
            }
            1 => {
                let status = take(&mut data, 4);
                let mut w = [0u8; 4];
                w[..status.len()].copy_from_slice(status);
                let n = take(&mut data, 1).first().copied().unwrap_or(0);
                let words: Vec<u32> =
                    (0..n).map(|i| u32::from_le_bytes([i, n, w[0], w[1]])).collect();
                raw |= dev.registers().push_raw(u32::from_le_bytes(w), &words);
            }
            2 => {
                let size = u16_of(&mut data) % 2048;
                let before = dev.registers().reads;
                let got = dev.receive(&mut buf[..size]);
                // 32 frames per call, each at most the FIFO's words plus a few registers.
                assert!(dev.registers().reads - before < 32 * (2640 + 8));
                if let Some(len) = got {
                    assert!((MIN_FRAME..=size.min(MAX_FRAME)).contains(&len));
                    let _ = arp::parse_reply(&buf[..len]);
                }
                if !raw {
                    // The frames this call took from the FIFO: all dropped for their length
                    // but the last, which is the one delivered (if any).
                    let taken = expected.len() - dev.registers().rx_frames_waiting();
                    let limit = size.min(MAX_FRAME);
                    let taken: Vec<Vec<u8>> = expected.drain(..taken).collect();
                    let dropped = match got {
                        Some(len) => {
                            let Some((last, dropped)) = taken.split_last() else {
                                panic!("a frame was delivered but none left the FIFO");
                            };
                            assert_eq!(&last[..], &buf[..len]);
                            dropped
                        }
                        None => &taken[..],
                    };
                    assert!(dropped.iter().all(|f| f.len() > limit));
                }
            }
            _ => {
                let _ = dev.on_interrupt();
            }
        }
    }
});

//! An [`Nvm`] on a memory region that keeps its contents across a reset (retained RAM, or
//! NOR flash): two slots, each a header and an image. `store` writes the slot that does not
//! hold the newest image, its header last, so a reset in the middle of a store leaves the
//! previous image readable. On flash the slot's bytes are erased ([`Memory::erase`]) before
//! they are written, after its old magic is cleared (clearing bits needs no erase).
//!
//! Slot layout (little endian): magic `GNVM`, sequence number, image length, CRC-32 of the
//! image, then the image. A slot is valid when its magic, length and CRC check; `load` takes
//! the valid slot with the higher sequence number. Memory that was never written (a cold
//! start) holds no valid slot.

use super::{Nvm, NvmFault};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

/// Bytes a memory region can be read from and written to at an offset.
pub trait Memory {
    /// The region's size in bytes.
    fn size(&self) -> usize;
    /// Fills `buf` from `offset` (within the region).
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// Writes `data` at `offset` (within the region). On flash the bytes must have been
    /// erased since they were last written, except when `data` only clears bits (all zeros).
    fn write(&mut self, offset: usize, data: &[u8]);
    /// Makes `len` bytes from `offset` writable: flash erases the sectors they lie in (they
    /// then read as `0xff`); RAM needs nothing (the default). [`SlotNvm`] erases only inside
    /// the slot it is about to write, from the slot's start, so a flash region whose slots
    /// (halves) start on a sector boundary never erases the other slot.
    fn erase(&mut self, _offset: usize, _len: usize) {}
}

const MAGIC: [u8; 4] = *b"GNVM";
const HEADER: usize = 16;

/// Two slots of half the region each.
#[derive(Debug)]
pub struct SlotNvm<M> {
    memory: M,
}

impl<M: Memory> SlotNvm<M> {
    pub fn new(memory: M) -> Self {
        Self { memory }
    }

    /// The largest image a slot holds.
    pub fn capacity(&self) -> usize {
        (self.memory.size() / 2).saturating_sub(HEADER)
    }

    pub fn into_memory(self) -> M {
        self.memory
    }

    fn base(&self, slot: usize) -> usize {
        slot * (self.memory.size() / 2)
    }

    fn word(bytes: &[u8; HEADER], at: usize) -> u32 {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }

    /// The slot's sequence number and image, if the slot is valid.
    fn read_slot(&self, slot: usize) -> Option<(u32, Vec<u8>)> {
        let mut header = [0u8; HEADER];
        self.memory.read(self.base(slot), &mut header);
        let len = usize::try_from(Self::word(&header, 8)).ok()?;
        if header[..4] != MAGIC || len > self.capacity() {
            return None;
        }
        let mut image = vec![0u8; len];
        self.memory.read(self.base(slot) + HEADER, &mut image);
        (crate::nvm::crc32(&image) == Self::word(&header, 12))
            .then(|| (Self::word(&header, 4), image))
    }

    /// The newest valid slot: (slot, sequence number, image).
    fn newest(&self) -> Option<(usize, u32, Vec<u8>)> {
        let a = self.read_slot(0).map(|(seq, img)| (0, seq, img));
        let b = self.read_slot(1).map(|(seq, img)| (1, seq, img));
        match (a, b) {
            // Sequence numbers wrap: the newer is the one the other is behind.
            (Some(a), Some(b)) => Some(if b.1.wrapping_sub(a.1) < u32::MAX / 2 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

impl<M: Memory> Nvm for SlotNvm<M> {
    fn load(&mut self) -> Result<Option<Vec<u8>>, NvmFault> {
        Ok(self.newest().map(|(_, _, image)| image))
    }

    fn store(&mut self, image: &[u8]) -> Result<(), NvmFault> {
        let capacity = self.capacity();
        let len = u32::try_from(image.len()).ok().filter(|_| image.len() <= capacity).ok_or_else(
            || {
                NvmFault(format!(
                    "an image of {} bytes does not fit a slot of {capacity} bytes",
                    image.len()
                ))
            },
        )?;
        let (slot, seq) = match self.newest() {
            Some((slot, seq, _)) => (1 - slot, seq.wrapping_add(1)),
            None => (0, 1),
        };
        let base = self.base(slot);
        // The old magic goes first: a slot half written (or half erased) is never taken for a
        // valid one. Zeros only clear bits, so flash takes them without an erase.
        self.memory.write(base, &[0; 4]);
        self.memory.erase(base, HEADER + image.len());
        self.memory.write(base + HEADER, image);
        let mut rest = [0u8; HEADER - 4];
        rest[..4].copy_from_slice(&seq.to_le_bytes());
        rest[4..8].copy_from_slice(&len.to_le_bytes());
        rest[8..].copy_from_slice(&crate::nvm::crc32(image).to_le_bytes());
        self.memory.write(base + 4, &rest);
        // The magic last: from here on the new image is the newest.
        self.memory.write(base, &MAGIC);
        Ok(())
    }

    fn erase(&mut self) -> Result<(), NvmFault> {
        for slot in 0..2 {
            let base = self.base(slot);
            self.memory.write(base, &[0; 4]);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use rstest::rstest;

    /// A region that can be cut off after a number of writes (a reset during a store).
    #[derive(Clone)]
    struct Ram {
        bytes: Vec<u8>,
        writes_left: Option<usize>,
    }

    impl Memory for Ram {
        fn size(&self) -> usize {
            self.bytes.len()
        }
        fn read(&self, offset: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.bytes[offset..offset + buf.len()]);
        }
        fn write(&mut self, offset: usize, data: &[u8]) {
            match &mut self.writes_left {
                Some(0) => return,
                Some(n) => *n -= 1,
                None => {}
            }
            self.bytes[offset..offset + data.len()].copy_from_slice(data);
        }
    }

    fn ram(fill: u8) -> Ram {
        Ram { bytes: vec![fill; 256], writes_left: None }
    }

    /// NOR flash: a write only clears bits (what was not erased comes out as the AND of old
    /// and new), an erase sets whole sectors to `0xff`. Each write and each sector erased is
    /// one operation; `ops_left` cuts the power after that many.
    #[derive(Clone)]
    struct Flash {
        bytes: Vec<u8>,
        sector: usize,
        ops_left: Option<usize>,
    }

    impl Flash {
        fn new(size: usize, sector: usize) -> Self {
            Flash { bytes: vec![0xff; size], sector, ops_left: None }
        }
        fn op(&mut self) -> bool {
            match &mut self.ops_left {
                Some(0) => false,
                Some(n) => {
                    *n -= 1;
                    true
                }
                None => true,
            }
        }
    }

    impl Memory for Flash {
        fn size(&self) -> usize {
            self.bytes.len()
        }
        fn read(&self, offset: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.bytes[offset..offset + buf.len()]);
        }
        fn write(&mut self, offset: usize, data: &[u8]) {
            if self.op() {
                for (b, d) in self.bytes[offset..offset + data.len()].iter_mut().zip(data) {
                    *b &= *d;
                }
            }
        }
        fn erase(&mut self, offset: usize, len: usize) {
            let half = self.bytes.len() / 2;
            assert_eq!(offset % half, 0, "an erase starts at a slot");
            assert!(len <= half, "an erase of {len} bytes reaches past its slot");
            let end = (offset + len).div_ceil(self.sector) * self.sector;
            for start in (offset..end).step_by(self.sector) {
                if self.op() {
                    self.bytes[start..start + self.sector].fill(0xff);
                }
            }
        }
    }

    #[test]
    fn flash_is_erased_before_a_slot_is_rewritten() {
        let mut nvm = SlotNvm::new(Flash::new(256, 16));
        // Five stores: each slot is written more than once, which NOR flash only takes after
        // an erase (without it the AND of old and new bytes fails the CRC).
        for image in [&b"one"[..], b"two, longer", b"three", b"four, the longest of them", b"v"] {
            nvm.store(image).unwrap();
            let mut again = SlotNvm::new(nvm.into_memory());
            assert_eq!(again.load().unwrap().as_deref(), Some(image));
            nvm = again;
        }
        nvm.erase().unwrap();
        assert_eq!(SlotNvm::new(nvm.into_memory()).load(), Ok(None));
    }

    #[rstest]
    fn a_reset_during_a_flash_store_leaves_the_old_image_or_the_new_one(
        #[values(&b"new"[..], b"new settings that span several sectors of the slot")] new: &[u8],
    ) {
        let mut base = SlotNvm::new(Flash::new(256, 16));
        for image in [&b"old settings"[..], b"older would be wrong", b"old settings"] {
            base.store(image).unwrap();
        }
        let memory = base.into_memory();
        // Count the operations of a whole store, then cut after each number of them.
        let mut counted = SlotNvm::new(Flash { ops_left: Some(usize::MAX), ..memory.clone() });
        counted.store(new).unwrap();
        let ops = usize::MAX - counted.into_memory().ops_left.unwrap();
        assert!(ops >= 5, "a store erased and wrote: {ops} operations");
        for cut in 0..=ops {
            let mut nvm = SlotNvm::new(Flash { ops_left: Some(cut), ..memory.clone() });
            nvm.store(new).unwrap();
            let got = SlotNvm::new(Flash { ops_left: None, ..nvm.into_memory() }).load().unwrap();
            let want: &[u8] = if cut == ops { new } else { b"old settings" };
            assert_eq!(got.as_deref(), Some(want), "cut after {cut} of {ops} operations");
        }
    }

    #[rstest]
    #[case::zeroed(0x00)]
    #[case::erased_flash(0xff)]
    #[case::garbage(0x5a)]
    fn a_cold_start_holds_nothing(#[case] fill: u8) {
        assert_eq!(SlotNvm::new(ram(fill)).load(), Ok(None));
    }

    #[test]
    fn the_newest_image_is_loaded_and_survives_a_new_start() {
        let mut nvm = SlotNvm::new(ram(0));
        for image in [&b"first"[..], b"second", b"third, longer than the others"] {
            nvm.store(image).unwrap();
            assert_eq!(nvm.load().unwrap().as_deref(), Some(image));
        }
        // A reset: the same memory, a new start.
        let mut again = SlotNvm::new(nvm.into_memory());
        assert_eq!(again.load().unwrap().as_deref(), Some(&b"third, longer than the others"[..]));
        again.erase().unwrap();
        assert_eq!(SlotNvm::new(again.into_memory()).load(), Ok(None));
    }

    #[test]
    fn a_reset_during_a_store_leaves_the_old_image_or_the_new_one() {
        let mut base = SlotNvm::new(ram(0));
        base.store(b"old settings").unwrap();
        base.store(b"older would be wrong").unwrap();
        base.store(b"old settings").unwrap();
        let memory = base.into_memory();
        // A store makes four writes; cut after each number of them.
        for cut in 0..=4 {
            let mut nvm = SlotNvm::new(Ram { writes_left: Some(cut), ..memory.clone() });
            nvm.store(b"new settings").unwrap();
            let got = SlotNvm::new(Ram { writes_left: None, ..nvm.into_memory() }).load().unwrap();
            let want: &[u8] = if cut == 4 { b"new settings" } else { b"old settings" };
            assert_eq!(got.as_deref(), Some(want), "cut after {cut} writes");
        }
    }

    #[test]
    fn an_image_larger_than_a_slot_is_refused_and_the_old_one_kept() {
        let mut nvm = SlotNvm::new(ram(0));
        nvm.store(b"kept").unwrap();
        assert_eq!(nvm.capacity(), 128 - HEADER);
        assert!(nvm.store(&[1; 200]).unwrap_err().0.contains("does not fit"));
        assert_eq!(nvm.load().unwrap().as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn a_damaged_newest_slot_falls_back_to_the_other() {
        let mut nvm = SlotNvm::new(ram(0));
        nvm.store(b"one").unwrap();
        nvm.store(b"two").unwrap();
        let mut memory = nvm.into_memory();
        // Slot 1 holds "two": flip a byte of its image.
        memory.bytes[128 + HEADER] ^= 0xff;
        assert_eq!(SlotNvm::new(memory).load().unwrap().as_deref(), Some(&b"one"[..]));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut nvm = SlotNvm::new(ram(0));
        nvm.store(b"a").unwrap();
        let mut memory = nvm.into_memory();
        // Slot 0 at the last sequence number; the next store wraps to 0 in slot 1.
        memory.bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut nvm = SlotNvm::new(memory);
        nvm.store(b"b").unwrap();
        assert_eq!(nvm.load().unwrap().as_deref(), Some(&b"b"[..]));
    }
}

//! Settings and files in flash: a [`Memory`] for a partition, so [`SlotNvm`] keeps its
//! settings and file system images there (two slots each, the newest one wins, a reset in
//! the middle of a store keeps the previous image).
//!
//! NOR flash is written in 4-byte words and erased in 4 KiB sectors: [`SlotNvm`] erases a
//! slot's bytes ([`Memory::erase`]) before it writes them, and the partitions are sized so
//! each slot (a half) starts on a sector, so an erase never reaches the other slot. Writes
//! that are not word aligned are padded with `0xff`, which leaves flash bits as they are.
//!
//! [`SlotNvm`]: gecko_core::platform::SlotNvm

use alloc::rc::Rc;
use core::cell::RefCell;
use esp_bootloader_esp_idf::partitions;
use esp_storage::FlashStorage;
use gecko_core::platform::Memory;

/// The partition labels (`partitions.csv`): settings and files.
pub const SETTINGS_LABEL: &str = "gecko_set";
pub const FILES_LABEL: &str = "gecko_fs";

const SECTOR: usize = FlashStorage::SECTOR_SIZE as usize;
const WORD: usize = FlashStorage::WORD_SIZE as usize;

/// The flash, shared by the two partitions (one task uses both).
pub type Shared = Rc<RefCell<FlashStorage<'static>>>;

/// One data partition of the flash.
#[derive(Debug)]
pub struct Partition {
    flash: Shared,
    offset: usize,
    size: usize,
}

/// Why a partition cannot be used.
#[derive(Debug)]
pub enum PartitionError {
    /// The partition table could not be read.
    Table(partitions::Error),
    /// No partition has this label: the flash holds another partition table.
    Missing(&'static str),
    /// The partition does not split into two slots on sector boundaries.
    Misaligned { label: &'static str, offset: usize, size: usize },
}

impl core::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PartitionError::Table(e) => write!(f, "cannot read the partition table: {e:?}"),
            PartitionError::Missing(label) => write!(
                f,
                "no partition `{label}` in the partition table (flash the board's partitions.csv)"
            ),
            PartitionError::Misaligned { label, offset, size } => write!(
                f,
                "partition `{label}` at {offset:#x}, {size:#x} bytes, does not split into two \
                 slots on 4 KiB sectors"
            ),
        }
    }
}

/// Finds the settings' and the files' partitions in the flash's partition table.
pub fn partitions(flash: Shared) -> Result<(Partition, Partition), PartitionError> {
    let mut buf = [0u8; partitions::PARTITION_TABLE_MAX_LEN];
    let (mut settings, mut files) = (None, None);
    {
        let mut storage = flash.borrow_mut();
        let table = partitions::read_partition_table(&mut storage, &mut buf)
            .map_err(PartitionError::Table)?;
        for entry in table.iter() {
            let found = (entry.offset() as usize, entry.len() as usize);
            match entry.label_as_str() {
                SETTINGS_LABEL => settings = Some(found),
                FILES_LABEL => files = Some(found),
                _ => {}
            }
        }
    }
    let make = |label, found: Option<(usize, usize)>| {
        let (offset, size) = found.ok_or(PartitionError::Missing(label))?;
        if offset % SECTOR != 0 || size % (2 * SECTOR) != 0 || size == 0 {
            return Err(PartitionError::Misaligned { label, offset, size });
        }
        Ok(Partition { flash: flash.clone(), offset, size })
    };
    Ok((make(SETTINGS_LABEL, settings)?, make(FILES_LABEL, files)?))
}

impl Memory for Partition {
    fn size(&self) -> usize {
        self.size
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset + buf.len() <= self.size, "read past the partition");
        // `FlashStorage::read` takes any offset and length (it reads whole words inside).
        if let Err(e) = self.flash.borrow_mut().read(to_u32(self.offset + offset), buf) {
            panic!("flash read at {:#x}: {e:?}", self.offset + offset);
        }
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.size, "write past the partition");
        // Whole words: pad the ends with 0xff (programming a 1 leaves a bit as it is).
        let start = self.offset + offset;
        let first = start - start % WORD;
        let end = (start + data.len()).div_ceil(WORD) * WORD;
        let mut flash = self.flash.borrow_mut();
        let mut word = [0xffu8; 256];
        let mut at = first;
        while at < end {
            let len = (end - at).min(word.len());
            word.fill(0xff);
            for (i, b) in word[..len].iter_mut().enumerate() {
                let pos = at + i;
                if pos >= start && pos < start + data.len() {
                    *b = data[pos - start];
                }
            }
            if let Err(e) = flash.write_nor(to_u32(at), &word[..len]) {
                panic!("flash write at {at:#x}: {e:?}");
            }
            at += len;
        }
    }

    fn erase(&mut self, offset: usize, len: usize) {
        let from = self.offset + offset - offset % SECTOR;
        let to = (self.offset + offset + len).div_ceil(SECTOR) * SECTOR;
        assert!(to <= self.offset + self.size, "erase past the partition");
        if let Err(e) = self.flash.borrow_mut().erase(to_u32(from), to_u32(to)) {
            panic!("flash erase {from:#x}..{to:#x}: {e:?}");
        }
    }
}

/// Flash offsets fit 32 bits (the ESP32-C6 maps at most 16 MiB).
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

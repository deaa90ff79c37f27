//! A driver for the SMSC LAN9118 Ethernet controller (and the LAN9220, which is register
//! compatible: QEMU's `mps2-an385`/`mps2-an386` machines have one at `0x4020_0000`).
//!
//! Why a driver of our own: no Rust driver for this controller exists, and the emulated board
//! needs a network device for embassy-net. The controller's programming interface is small:
//! a page of 32-bit registers, two FIFOs per direction (data and status), and the MAC's and
//! PHY's registers behind two indirect access ports.
//!
//! How it is built:
//! - All register access goes through [`Registers`] (read or write a 32-bit register at an
//!   offset from the controller's base), which the board implements with MMIO; the crate
//!   has no `unsafe`. The tests implement it with a model of the controller ([`model`], with
//!   the `model` feature or in tests).
//! - The words on the FIFOs are decoded and encoded by pure functions ([`RxStatus`],
//!   [`rx_verdict`], [`tx_command_a`], [`tx_command_b`], [`TxStatus`]).
//! - [`Lan9118`] is the device: [`init`](Lan9118::init), [`receive`](Lan9118::receive),
//!   [`transmit`](Lan9118::transmit), [`link_up`](Lan9118::link_up),
//!   [`on_interrupt`](Lan9118::on_interrupt). It never waits without a bound and never
//!   panics on what the controller reports: a status word that claims a frame longer than
//!   the caller's buffer drops that frame (its words are read out and thrown away).
//! - [`net::Shared`] puts a `Lan9118` in a `critical_section::Mutex` together with the
//!   wakers, so a `static` of it serves both the interrupt handler
//!   ([`net::Shared::on_interrupt`]: acknowledge, wake) and embassy-net's runner task
//!   ([`net::Device`], an `embassy_net_driver::Driver`).
//!
//! Use on a board:
//! ```text
//! static ETH: lan9118::net::Shared<BoardRegs> = lan9118::net::Shared::new(BoardRegs);
//! // in the interrupt handler of the controller's line:
//! ETH.on_interrupt();
//! // at start-up, then unmask the line:
//! ETH.init(mac)?;
//! let device = ETH.device(); // hand it to embassy_net::new(...)
//! ```
//!
//! Not supported (nothing the board needs): the multicast hash filter (all multicast frames
//! are passed up, the IP stack filters), flow control (pause frames), checksum offload (the
//! LAN9220 has it, the LAN9118 and QEMU's model do not), the EEPROM, the general purpose
//! timer, power management, 16-bit bus mode, frames split over several TX buffers, and the
//! RX "fast-forward" (frames to drop are read out word by word instead: QEMU's model of
//! fast-forward moves its read position but neither frees the skipped words nor ends the
//! frame, so the next frame would be read from the wrong place).

#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "model"))]
extern crate std;

#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod net;

/// Reads and writes the controller's 32-bit registers, by byte offset from its base
/// (`0x00..0x100`). The board implements it with volatile MMIO.
pub trait Registers {
    /// Reads the register at `offset` (reading a FIFO port pops a word).
    fn read(&mut self, offset: u32) -> u32;
    /// Writes `value` to the register at `offset` (writing the TX data port pushes a word).
    fn write(&mut self, offset: u32, value: u32);
}

/// Register offsets (the datasheet's "System Control and Status Registers").
pub mod reg {
    /// RX data FIFO port (reads pop a word; `0x00..0x20` are aliases).
    pub const RX_DATA_FIFO: u32 = 0x00;
    /// TX data FIFO port (writes push a word; `0x20..0x40` are aliases).
    pub const TX_DATA_FIFO: u32 = 0x20;
    /// RX status FIFO port (reads pop a status word).
    pub const RX_STATUS_FIFO: u32 = 0x40;
    /// TX status FIFO port (reads pop a status word).
    pub const TX_STATUS_FIFO: u32 = 0x48;
    /// Chip id and revision.
    pub const ID_REV: u32 = 0x50;
    /// Interrupt pin configuration (enable, polarity, buffer type).
    pub const IRQ_CFG: u32 = 0x54;
    /// Interrupt status (write 1 to clear).
    pub const INT_STS: u32 = 0x58;
    /// Interrupt enable.
    pub const INT_EN: u32 = 0x5c;
    /// Reads [`BYTE_TEST_VALUE`](super::BYTE_TEST_VALUE) on a working, correctly wired chip.
    pub const BYTE_TEST: u32 = 0x64;
    /// FIFO levels at which the level interrupts fire.
    pub const FIFO_INT: u32 = 0x68;
    /// Receive configuration (end alignment, data offset, dump).
    pub const RX_CFG: u32 = 0x6c;
    /// Transmit configuration (transmitter on, status overrun allowed, dumps).
    pub const TX_CFG: u32 = 0x70;
    /// Hardware configuration (soft reset).
    pub const HW_CFG: u32 = 0x74;
    /// RX data path control (fast-forward; unused, see the crate doc).
    pub const RX_DP_CTRL: u32 = 0x78;
    /// RX FIFO information: status words used (23:16), data bytes used (15:0).
    pub const RX_FIFO_INF: u32 = 0x7c;
    /// TX FIFO information: status words used (23:16), data bytes free (15:0).
    pub const TX_FIFO_INF: u32 = 0x80;
    /// Power management control (bit 0: the chip is ready after a reset).
    pub const PMT_CTRL: u32 = 0x84;
    /// MAC CSR indirect access: command (busy, read/write, register index).
    pub const MAC_CSR_CMD: u32 = 0xa4;
    /// MAC CSR indirect access: data.
    pub const MAC_CSR_DATA: u32 = 0xa8;
}

/// The MAC's registers, reached through `MAC_CSR_CMD`/`MAC_CSR_DATA`.
pub mod mac {
    /// MAC control (enables, duplex, filter modes).
    pub const MAC_CR: u32 = 1;
    /// MAC address bytes 4 and 5.
    pub const ADDRH: u32 = 2;
    /// MAC address bytes 0 to 3.
    pub const ADDRL: u32 = 3;
    /// MII (PHY) access: PHY address, register, write, busy.
    pub const MII_ACC: u32 = 6;
    /// MII (PHY) data.
    pub const MII_DATA: u32 = 7;
}

/// What `BYTE_TEST` reads on a chip that answers (and is not byte swapped).
pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;

/// The largest frame handed to or taken from the controller, without the FCS (a VLAN-tagged
/// 1500-byte payload).
pub const MAX_FRAME: usize = 1518;
/// The smallest frame passed up: an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// The frame check sequence the controller appends to every received frame.
const FCS: usize = 4;

// HW_CFG
const HW_CFG_SRST: u32 = 1 << 0;
// PMT_CTRL
const PMT_READY: u32 = 1 << 0;
// IRQ_CFG: the pin is enabled, active high and push-pull (QEMU drives its line inverted
// unless both polarity and type say so); the deassertion interval is 220 us.
const IRQ_CFG_VALUE: u32 = (22 << 24) | (1 << 8) | (1 << 4) | (1 << 0);
// INT_STS / INT_EN
const INT_RSFL: u32 = 1 << 3;
const INT_TDFA: u32 = 1 << 9;
const INT_TXE: u32 = 1 << 13;
const INT_RXE: u32 = 1 << 14;
const INT_PHY: u32 = 1 << 18;
/// The interrupts always enabled: a received frame's status, errors, the PHY's link events.
const INT_BASE: u32 = INT_RSFL | INT_RXE | INT_TXE | INT_PHY;
// FIFO_INT: RX status level 0 (any frame), TX data available at 24 * 64 = 1536 free bytes
// (room for the largest frame and its command words).
const FIFO_INT_VALUE: u32 = 24 << 24;
// RX_CFG: 4-byte end alignment, no data offset; RX_DUMP empties the RX FIFOs.
const RX_CFG_DUMP: u32 = 1 << 15;
// TX_CFG: transmitter on; status overrun allowed (the driver reads TX status only to count).
const TX_CFG_VALUE: u32 = (1 << 1) | (1 << 2);
// MAC_CSR_CMD
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
// MAC_CR
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_MCPAS: u32 = 1 << 19;
const MAC_CR_FDPX: u32 = 1 << 20;
// MII_ACC: the internal PHY is at address 1.
const MII_PHY_ADDR: u32 = 1 << 11;
const MII_WRITE: u32 = 1 << 1;
const MII_BUSY: u32 = 1 << 0;
// PHY registers and bits.
const PHY_BSR: u32 = 1;
const PHY_BSR_LINK: u32 = 1 << 2;
const PHY_ANAR: u32 = 4;
const PHY_ANLPAR: u32 = 5;
const PHY_AN_FULL_DUPLEX: u32 = (1 << 8) | (1 << 6);
const PHY_INT_SOURCE: u32 = 29;
const PHY_INT_MASK: u32 = 30;
/// PHY interrupt sources enabled: auto-negotiation complete (link up), link down.
const PHY_INT_LINK: u32 = (1 << 6) | (1 << 4);

/// How many times a register is polled for a bit to clear before giving up. A soft reset
/// takes the real chip well under 1 ms; at tens of nanoseconds per read this bound is
/// several milliseconds, and it keeps a dead chip from hanging the board.
pub const POLL_LIMIT: u32 = 100_000;
/// How many frames one `receive` call inspects at most (frames it drops included), so a
/// flood of bad frames cannot keep the caller in the driver.
const RX_BATCH: usize = 32;
/// How many TX status words one `transmit` call reads at most.
const TX_STATUS_BATCH: usize = 32;

/// Why [`Lan9118::init`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `BYTE_TEST` did not read [`BYTE_TEST_VALUE`]: no chip, or a wrong bus setup.
    ByteTest {
        /// What it read instead.
        found: u32,
    },
    /// The soft reset bit stayed set.
    ResetTimeout,
    /// The chip did not report ready after the reset.
    NotReady,
    /// A MAC CSR access stayed busy.
    MacBusy,
    /// A PHY (MII) access stayed busy.
    PhyBusy,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ByteTest { found } => write!(
                f,
                "BYTE_TEST read {found:#010x}, expected {BYTE_TEST_VALUE:#010x} (no LAN9118 here?)"
            ),
            Self::ResetTimeout => f.write_str("the soft reset did not finish"),
            Self::NotReady => f.write_str("the chip did not become ready after its reset"),
            Self::MacBusy => f.write_str("a MAC register access did not finish"),
            Self::PhyBusy => f.write_str("a PHY register access did not finish"),
        }
    }
}

/// Why [`Lan9118::transmit`] did not send a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// Empty, or longer than [`MAX_FRAME`].
    BadLength(usize),
    /// The TX data FIFO has not enough room now; try again after a TX interrupt.
    NoSpace,
}

/// A decoded RX status word (datasheet: "RX Status Format").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxStatus {
    /// The frame's length in bytes as the controller counts it: FCS included.
    pub len: usize,
    /// Error status: the OR of the error bits below (and a late collision, MII error).
    pub error: bool,
    /// The frame failed the address filter (delivered only in receive-all modes).
    pub filter_fail: bool,
    /// Destination is the broadcast address.
    pub broadcast: bool,
    /// Destination is a multicast address.
    pub multicast: bool,
    /// CRC error.
    pub crc_error: bool,
    /// Shorter than 64 bytes.
    pub runt: bool,
    /// Longer than the maximum frame.
    pub too_long: bool,
    /// Length/type field does not match the length.
    pub length_error: bool,
}

impl RxStatus {
    /// Decodes a status word. Every word decodes: the length field is 14 bits.
    pub fn from_word(w: u32) -> Self {
        let bit = |n: u32| w & (1 << n) != 0;
        Self {
            len: ((w >> 16) & 0x3fff) as usize,
            error: bit(15),
            filter_fail: bit(30),
            broadcast: bit(13),
            multicast: bit(10),
            crc_error: bit(1),
            runt: bit(11),
            too_long: bit(7),
            length_error: bit(12),
        }
    }

    /// Data FIFO words the frame occupies (4-byte end alignment, no offset: how the driver
    /// configures `RX_CFG`).
    pub fn words(&self) -> usize {
        self.len.div_ceil(4)
    }
}

/// What to do with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxVerdict {
    /// Pass up this many bytes (the frame without its FCS).
    Deliver(usize),
    /// Read its words out and drop it.
    Drop(DropReason),
}

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The controller flagged an error (CRC, runt, too long, ...).
    Error,
    /// It failed the address filter.
    Filtered,
    /// Shorter than an Ethernet header plus FCS.
    TooShort,
    /// Longer than the receive buffer (or than any Ethernet frame).
    TooLong,
}

/// Decides about a frame from its status word and the room the caller has for it.
pub fn rx_verdict(status: &RxStatus, buf_len: usize) -> RxVerdict {
    if status.error || status.crc_error || status.runt || status.too_long {
        return RxVerdict::Drop(DropReason::Error);
    }
    if status.filter_fail {
        return RxVerdict::Drop(DropReason::Filtered);
    }
    if status.len < MIN_FRAME + FCS {
        return RxVerdict::Drop(DropReason::TooShort);
    }
    let payload = status.len - FCS;
    if payload > buf_len.min(MAX_FRAME) {
        return RxVerdict::Drop(DropReason::TooLong);
    }
    RxVerdict::Deliver(payload)
}

/// TX command A for a frame sent as one buffer (first and last segment), 4-byte end
/// alignment, no data offset. `len` must be at most 2047 (the field's width).
pub fn tx_command_a(len: usize) -> u32 {
    const FIRST_SEGMENT: u32 = 1 << 13;
    const LAST_SEGMENT: u32 = 1 << 12;
    FIRST_SEGMENT | LAST_SEGMENT | (len as u32 & 0x7ff)
}

/// TX command B: the packet tag (echoed in the TX status) and the frame's length. The
/// controller appends the FCS and pads short frames.
pub fn tx_command_b(tag: u16, len: usize) -> u32 {
    (u32::from(tag) << 16) | (len as u32 & 0x7ff)
}

/// TX data FIFO bytes a frame of `len` bytes needs: two command words and its data words.
pub fn tx_fifo_bytes(len: usize) -> usize {
    8 + len.div_ceil(4) * 4
}

/// The `i`th data word of `frame`: bytes in little-endian order, the last word zero-padded.
pub fn pack_word(frame: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    for (k, slot) in b.iter_mut().enumerate() {
        *slot = frame.get(i * 4 + k).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

/// A decoded TX status word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxStatus {
    /// The tag given in TX command B.
    pub tag: u16,
    /// Error status (loss of carrier, no carrier, late or excessive collisions, ...).
    pub error: bool,
}

impl TxStatus {
    /// Decodes a TX status word.
    pub fn from_word(w: u32) -> Self {
        Self { tag: (w >> 16) as u16, error: w & (1 << 15) != 0 }
    }
}

/// What [`Lan9118::on_interrupt`] found (and acknowledged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// A frame's status arrived in the RX status FIFO.
    pub rx: bool,
    /// The TX data FIFO has room for a frame again (only when armed by a full FIFO).
    pub tx_space: bool,
    /// The PHY reported a link change.
    pub link: bool,
    /// A receive error (e.g. an RX FIFO underrun).
    pub rx_error: bool,
    /// A transmit error.
    pub tx_error: bool,
}

impl Events {
    /// True when nothing fired.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Counters of what the driver did, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames passed up.
    pub rx_frames: u32,
    /// Frames dropped because the controller flagged an error or the filter failed.
    pub rx_errors: u32,
    /// Frames dropped because of their length (too short, or longer than the buffer).
    pub rx_bad_length: u32,
    /// Frames handed to the controller.
    pub tx_frames: u32,
    /// TX status words with the error bit.
    pub tx_errors: u32,
    /// Transmits refused for want of FIFO room.
    pub tx_no_space: u32,
    /// Calls of [`Lan9118::on_interrupt`] that found an interrupt to acknowledge.
    pub interrupts: u32,
}

/// The controller. Owns its register access; every method returns within a bounded number
/// of register accesses.
#[derive(Debug)]
pub struct Lan9118<R> {
    regs: R,
    int_en: u32,
    tag: u16,
    stats: Stats,
}

impl<R: Registers> Lan9118<R> {
    /// Wraps the registers; touches nothing until [`init`](Self::init).
    pub const fn new(regs: R) -> Self {
        Self {
            regs,
            int_en: 0,
            tag: 0,
            stats: Stats {
                rx_frames: 0,
                rx_errors: 0,
                rx_bad_length: 0,
                tx_frames: 0,
                tx_errors: 0,
                tx_no_space: 0,
                interrupts: 0,
            },
        }
    }

    /// The register access (for diagnostics and tests).
    pub fn registers(&mut self) -> &mut R {
        &mut self.regs
    }

    /// What the driver counted so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Resets the controller and sets it up: MAC address `mac`, broadcast and all multicast
    /// passed, full duplex when the PHY negotiated it, transmitter and receiver on, the
    /// interrupt pin active high with the RX status, error and PHY link interrupts enabled.
    /// Unmask the board's interrupt line after this returns.
    pub fn init(&mut self, mac: [u8; 6]) -> Result<(), InitError> {
        let found = self.regs.read(reg::BYTE_TEST);
        if found != BYTE_TEST_VALUE {
            return Err(InitError::ByteTest { found });
        }
        let hw_cfg = self.regs.read(reg::HW_CFG);
        self.regs.write(reg::HW_CFG, hw_cfg | HW_CFG_SRST);
        if !self.poll(reg::HW_CFG, HW_CFG_SRST, 0) {
            return Err(InitError::ResetTimeout);
        }
        if !self.poll(reg::PMT_CTRL, PMT_READY, PMT_READY) {
            return Err(InitError::NotReady);
        }
        self.int_en = 0;
        self.regs.write(reg::INT_EN, 0);
        self.regs.write(reg::INT_STS, u32::MAX);
        self.mac_write(mac::ADDRL, u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]))?;
        self.mac_write(mac::ADDRH, u32::from(mac[4]) | (u32::from(mac[5]) << 8))?;
        self.phy_write(PHY_INT_MASK, PHY_INT_LINK)?;
        // Reading the source register clears what the reset left pending.
        self.phy_read(PHY_INT_SOURCE)?;
        let common = self.phy_read(PHY_ANAR)? & self.phy_read(PHY_ANLPAR)?;
        let duplex = if common & PHY_AN_FULL_DUPLEX != 0 { MAC_CR_FDPX } else { 0 };
        self.regs.write(reg::FIFO_INT, FIFO_INT_VALUE);
        self.regs.write(reg::RX_CFG, RX_CFG_DUMP);
        self.regs.write(reg::RX_CFG, 0);
        self.regs.write(reg::TX_CFG, TX_CFG_VALUE);
        self.mac_write(mac::MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_MCPAS | duplex)?;
        self.regs.write(reg::INT_STS, u32::MAX);
        self.set_int_en(INT_BASE);
        self.regs.write(reg::IRQ_CFG, IRQ_CFG_VALUE);
        Ok(())
    }

    /// Whether the PHY reports a link (false too when the PHY does not answer).
    pub fn link_up(&mut self) -> bool {
        self.phy_read(PHY_BSR).is_ok_and(|bsr| bsr & PHY_BSR_LINK != 0)
    }

    /// Takes the next good frame into `buf` and returns its length (without the FCS), or
    /// `None` when no frame is waiting. Frames with an error status, failing the filter,
    /// shorter than a header or longer than `buf` are dropped on the way (their words read
    /// out), at most a bounded batch of them per call.
    pub fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        for _ in 0..RX_BATCH {
            let inf = self.regs.read(reg::RX_FIFO_INF);
            if (inf >> 16) & 0xff == 0 {
                return None;
            }
            let status = RxStatus::from_word(self.regs.read(reg::RX_STATUS_FIFO));
            match rx_verdict(&status, buf.len()) {
                RxVerdict::Deliver(len) => {
                    self.read_frame(&mut buf[..len], status.words());
                    self.stats.rx_frames += 1;
                    return Some(len);
                }
                RxVerdict::Drop(reason) => {
                    self.discard(status.words());
                    match reason {
                        DropReason::Error | DropReason::Filtered => self.stats.rx_errors += 1,
                        DropReason::TooShort | DropReason::TooLong => self.stats.rx_bad_length += 1,
                    }
                }
            }
        }
        None
    }

    /// Whether a frame of the largest size fits in the TX data FIFO now.
    pub fn tx_ready(&mut self) -> bool {
        self.tx_free() >= tx_fifo_bytes(MAX_FRAME)
    }

    /// Arms the "TX data available" interrupt: it fires (once) when the FIFO has room for
    /// the largest frame again. [`on_interrupt`](Self::on_interrupt) disarms it.
    pub fn arm_tx_interrupt(&mut self) {
        self.set_int_en(self.int_en | INT_TDFA);
    }

    /// Hands `frame` (destination address to payload, no FCS) to the controller, which
    /// appends the FCS and pads it to the minimum length.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        if frame.is_empty() || frame.len() > MAX_FRAME {
            return Err(TxError::BadLength(frame.len()));
        }
        self.collect_tx_status();
        if self.tx_free() < tx_fifo_bytes(frame.len()) {
            self.stats.tx_no_space += 1;
            return Err(TxError::NoSpace);
        }
        self.tag = self.tag.wrapping_add(1);
        self.regs.write(reg::TX_DATA_FIFO, tx_command_a(frame.len()));
        self.regs.write(reg::TX_DATA_FIFO, tx_command_b(self.tag, frame.len()));
        for i in 0..frame.len().div_ceil(4) {
            self.regs.write(reg::TX_DATA_FIFO, pack_word(frame, i));
        }
        self.stats.tx_frames += 1;
        Ok(())
    }

    /// The interrupt handler's part: reads which enabled interrupts fired, clears their
    /// causes (the PHY's source register, the one-shot TX interrupt) and acknowledges them.
    pub fn on_interrupt(&mut self) -> Events {
        let fired = self.regs.read(reg::INT_STS) & self.int_en;
        if fired & INT_PHY != 0 {
            // Reading the PHY's source register releases its interrupt; a PHY that does
            // not answer leaves it set, and it is acknowledged below anyway.
            let _ = self.phy_read(PHY_INT_SOURCE);
        }
        if fired & INT_TDFA != 0 {
            self.set_int_en(self.int_en & !INT_TDFA);
        }
        self.regs.write(reg::INT_STS, fired);
        if fired != 0 {
            self.stats.interrupts += 1;
        }
        Events {
            rx: fired & INT_RSFL != 0,
            tx_space: fired & INT_TDFA != 0,
            link: fired & INT_PHY != 0,
            rx_error: fired & INT_RXE != 0,
            tx_error: fired & INT_TXE != 0,
        }
    }

    fn set_int_en(&mut self, value: u32) {
        self.int_en = value;
        self.regs.write(reg::INT_EN, value);
    }

    fn tx_free(&mut self) -> usize {
        (self.regs.read(reg::TX_FIFO_INF) & 0xffff) as usize
    }

    /// Reads (and counts the errors of) the TX status words waiting, a bounded batch.
    fn collect_tx_status(&mut self) {
        for _ in 0..TX_STATUS_BATCH {
            if (self.regs.read(reg::TX_FIFO_INF) >> 16) & 0xff == 0 {
                return;
            }
            if TxStatus::from_word(self.regs.read(reg::TX_STATUS_FIFO)).error {
                self.stats.tx_errors += 1;
            }
        }
    }

    /// Reads a frame's `words` data words, keeping the first `out.len()` bytes.
    fn read_frame(&mut self, out: &mut [u8], words: usize) {
        for i in 0..words {
            let bytes = self.regs.read(reg::RX_DATA_FIFO).to_le_bytes();
            for (k, b) in bytes.into_iter().enumerate() {
                if let Some(slot) = out.get_mut(i * 4 + k) {
                    *slot = b;
                }
            }
        }
    }

    /// Reads out and drops a frame's words, no more than the data FIFO holds (a status word
    /// that claims more must not make the driver eat the next frames' data).
    fn discard(&mut self, words: usize) {
        let held = (self.regs.read(reg::RX_FIFO_INF) & 0xffff) as usize / 4;
        for _ in 0..words.min(held) {
            self.regs.read(reg::RX_DATA_FIFO);
        }
    }

    /// Polls `offset` until the bits of `mask` equal `want`; false after [`POLL_LIMIT`].
    fn poll(&mut self, offset: u32, mask: u32, want: u32) -> bool {
        (0..POLL_LIMIT).any(|_| self.regs.read(offset) & mask == want)
    }

    fn mac_write(&mut self, index: u32, value: u32) -> Result<(), InitError> {
        self.regs.write(reg::MAC_CSR_DATA, value);
        self.regs.write(reg::MAC_CSR_CMD, CSR_BUSY | index);
        if self.poll(reg::MAC_CSR_CMD, CSR_BUSY, 0) { Ok(()) } else { Err(InitError::MacBusy) }
    }

    fn mac_read(&mut self, index: u32) -> Result<u32, InitError> {
        self.regs.write(reg::MAC_CSR_CMD, CSR_BUSY | CSR_READ | index);
        if !self.poll(reg::MAC_CSR_CMD, CSR_BUSY, 0) {
            return Err(InitError::MacBusy);
        }
        Ok(self.regs.read(reg::MAC_CSR_DATA))
    }

    /// Waits until the MII port is idle.
    fn mii_idle(&mut self) -> Result<(), InitError> {
        for _ in 0..POLL_LIMIT {
            if self.mac_read(mac::MII_ACC)? & MII_BUSY == 0 {
                return Ok(());
            }
        }
        Err(InitError::PhyBusy)
    }

    fn phy_read(&mut self, index: u32) -> Result<u32, InitError> {
        self.mii_idle()?;
        self.mac_write(mac::MII_ACC, MII_PHY_ADDR | (index << 6) | MII_BUSY)?;
        self.mii_idle()?;
        Ok(self.mac_read(mac::MII_DATA)? & 0xffff)
    }

    fn phy_write(&mut self, index: u32, value: u32) -> Result<(), InitError> {
        self.mii_idle()?;
        self.mac_write(mac::MII_DATA, value & 0xffff)?;
        self.mac_write(mac::MII_ACC, MII_PHY_ADDR | (index << 6) | MII_WRITE | MII_BUSY)?;
        self.mii_idle()
    }
}

/// An ARP request and the reading of ARP replies (for a board's self-test of the link: ask
/// the lab's gateway for its address and print the answer).
pub mod arp {
    /// The length of an ARP frame for IPv4 over Ethernet (without padding).
    pub const FRAME_LEN: usize = 42;

    /// A broadcast "who has `target_ip`? tell `ip`" from `mac`.
    pub fn request(mac: [u8; 6], ip: [u8; 4], target_ip: [u8; 4]) -> [u8; FRAME_LEN] {
        let mut f = [0u8; FRAME_LEN];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        // Ethernet, IPv4, address lengths 6 and 4, operation 1 (request).
        f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
        f[22..28].copy_from_slice(&mac);
        f[28..32].copy_from_slice(&ip);
        // Target hardware address stays zero.
        f[38..42].copy_from_slice(&target_ip);
        f
    }

    /// An ARP reply for IPv4 over Ethernet: who answered, with which hardware address.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Reply {
        /// The sender's IPv4 address.
        pub ip: [u8; 4],
        /// The sender's hardware address.
        pub mac: [u8; 6],
    }

    /// Reads an ARP reply from an Ethernet frame; `None` for anything else.
    pub fn parse_reply(frame: &[u8]) -> Option<Reply> {
        let f = frame.get(..FRAME_LEN)?;
        if f[12..14] != [0x08, 0x06] || f[14..22] != [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02] {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&f[22..28]);
        let mut ip = [0u8; 4];
        ip.copy_from_slice(&f[28..32]);
        Some(Reply { ip, mac })
    }
}

#[cfg(test)]
mod tests;

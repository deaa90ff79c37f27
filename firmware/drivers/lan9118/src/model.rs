//! A model of the controller behind [`Registers`]: its FIFOs, interrupt registers, MAC CSRs
//! and PHY as the datasheet describes them (and as QEMU's `lan9118` device behaves where the
//! two agree), so the driver's tests run against something that keeps its own state.
//! Frames go in with [`Model::push_frame`] (as the wire would deliver them, FCS appended) or
//! as raw words with [`Model::push_raw`] (a hostile or broken controller); frames the driver
//! sends collect in [`Model::sent`]. Faults: a wrong `BYTE_TEST`, a reset or CSR access that
//! never finishes, a TX FIFO without room.

use crate::{Registers, reg};
use std::collections::VecDeque;
use std::vec::Vec;

/// RX status FIFO size in words (QEMU's default FIFO split).
const RX_STATUS_CAPACITY: usize = 176;
/// RX data FIFO size in words.
const RX_DATA_CAPACITY: usize = 2640;
/// TX data FIFO size in bytes.
const TX_FIFO_BYTES: u32 = 4608;
/// TX status FIFO size in words.
const TX_STATUS_CAPACITY: usize = 512;

const INT_RSFL: u32 = 1 << 3;
const INT_TDFA: u32 = 1 << 9;
const INT_TDFO: u32 = 1 << 10;
const INT_RXE: u32 = 1 << 14;
const INT_PHY: u32 = 1 << 18;

const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_MCPAS: u32 = 1 << 19;
const MAC_CR_PRMS: u32 = 1 << 18;

/// The controller's state.
#[derive(Debug, Clone)]
pub struct Model {
    /// What `BYTE_TEST` reads (a fault when not `0x87654321`).
    pub byte_test: u32,
    /// The soft reset never finishes.
    pub reset_stuck: bool,
    /// MAC CSR accesses stay busy.
    pub csr_stuck: bool,
    /// Sent frames get a TX status with the error bit (no carrier).
    pub tx_fail: bool,
    /// Register reads so far (to check that waits are bounded).
    pub reads: usize,
    /// Frames the controller sent (as handed over, without FCS).
    pub sent: Vec<Vec<u8>>,
    /// Words pushed past a full TX FIFO (an overrun the driver should never cause).
    pub tx_overruns: usize,
    hw_cfg: u32,
    irq_cfg: u32,
    int_sts: u32,
    int_en: u32,
    fifo_int: u32,
    rx_cfg: u32,
    tx_cfg: u32,
    mac_cmd: u32,
    mac_data: u32,
    mac_cr: u32,
    mac_addr: [u8; 6],
    mii_acc: u32,
    mii_data: u32,
    phy_link: bool,
    phy_int_src: u32,
    phy_int_mask: u32,
    rx_status: VecDeque<u32>,
    rx_data: VecDeque<u32>,
    tx_status: VecDeque<u32>,
    /// Bytes the TX FIFO can take; `None`: all of it (the model sends at once, as QEMU).
    tx_free_override: Option<u32>,
    tx: TxAssembly,
}

#[derive(Debug, Clone, Default)]
struct TxAssembly {
    /// Command A once seen, then command B.
    cmd_a: Option<u32>,
    cmd_b: Option<u32>,
    left: usize,
    frame: Vec<u8>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// A chip just powered up: link up, MAC address zero, nothing enabled.
    pub fn new() -> Self {
        Self {
            byte_test: crate::BYTE_TEST_VALUE,
            reset_stuck: false,
            csr_stuck: false,
            tx_fail: false,
            reads: 0,
            sent: Vec::new(),
            tx_overruns: 0,
            hw_cfg: 0x0005_0000,
            irq_cfg: 0,
            int_sts: 0,
            int_en: 0,
            fifo_int: 0x4800_0000,
            rx_cfg: 0,
            tx_cfg: 0,
            mac_cmd: 0,
            mac_data: 0,
            mac_cr: MAC_CR_PRMS,
            mac_addr: [0; 6],
            mii_acc: 0,
            mii_data: 0,
            phy_link: true,
            phy_int_src: 0,
            phy_int_mask: 0,
            rx_status: VecDeque::new(),
            rx_data: VecDeque::new(),
            tx_status: VecDeque::new(),
            tx_free_override: None,
            tx: TxAssembly::default(),
        }
    }

    /// The MAC address the driver programmed.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac_addr
    }

    /// The MAC control register.
    pub fn mac_cr(&self) -> u32 {
        self.mac_cr
    }

    /// The enabled interrupts.
    pub fn int_en(&self) -> u32 {
        self.int_en
    }

    /// TX_CFG as written.
    pub fn tx_cfg(&self) -> u32 {
        self.tx_cfg
    }

    /// The interrupt pin's level as the CPU sees it (true: asserted). Like QEMU, a pin not
    /// configured active high and push-pull is driven inverted.
    pub fn irq_line(&self) -> bool {
        let pending = self.int_sts & self.int_en != 0 && self.irq_cfg & (1 << 8) != 0;
        let active_high = self.irq_cfg & 0x11 == 0x11;
        if active_high { pending } else { !pending }
    }

    /// Words in the RX data FIFO (for alignment checks).
    pub fn rx_data_words(&self) -> usize {
        self.rx_data.len()
    }

    /// Status words in the RX status FIFO.
    pub fn rx_frames_waiting(&self) -> usize {
        self.rx_status.len()
    }

    /// Limits the TX FIFO's free bytes (`None`: the whole FIFO); raises "TX data available"
    /// when the room reaches its level.
    pub fn set_tx_free(&mut self, free: Option<u32>) {
        self.tx_free_override = free;
        self.update_tdfa();
    }

    /// The PHY's link goes up or down; the PHY raises its interrupt if the driver unmasked
    /// that source.
    pub fn set_link(&mut self, up: bool) {
        self.phy_link = up;
        self.phy_int_src |= if up { 1 << 6 } else { 1 << 4 };
        self.update_phy_int();
    }

    /// A frame arrives from the wire (`frame` without FCS). Returns whether the controller
    /// queued it: the receiver must be on, the filter must pass it (own address, broadcast,
    /// multicast when passed, anything in promiscuous mode) and the FIFOs must have room.
    pub fn push_frame(&mut self, frame: &[u8]) -> bool {
        if self.mac_cr & MAC_CR_RXEN == 0 || frame.len() < 14 || frame.len() >= 2048 {
            return false;
        }
        let dst = &frame[..6];
        let broadcast = dst == [0xff; 6];
        let multicast = dst[0] & 1 != 0 && !broadcast;
        let pass = self.mac_cr & MAC_CR_PRMS != 0
            || broadcast
            || (multicast && self.mac_cr & MAC_CR_MCPAS != 0)
            || dst == self.mac_addr;
        if !pass {
            return true;
        }
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(&crc32(frame).to_le_bytes());
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect();
        let mut status = (bytes.len() as u32) << 16;
        if broadcast {
            status |= 1 << 13;
        }
        if multicast {
            status |= 1 << 10;
        }
        self.push_raw(status, &words)
    }

    /// Puts a status word and data words in the RX FIFOs as they are (no checks of their
    /// agreement). Returns false when the FIFOs have no room.
    pub fn push_raw(&mut self, status: u32, words: &[u32]) -> bool {
        if self.rx_status.len() >= RX_STATUS_CAPACITY
            || self.rx_data.len() + words.len() > RX_DATA_CAPACITY
        {
            return false;
        }
        self.rx_status.push_back(status);
        self.rx_data.extend(words.iter().copied());
        if self.rx_status.len() > (self.fifo_int & 0xff) as usize {
            self.int_sts |= INT_RSFL;
        }
        true
    }

    fn tx_free(&self) -> u32 {
        self.tx_free_override.unwrap_or(TX_FIFO_BYTES)
    }

    fn update_tdfa(&mut self) {
        if self.tx_free() > ((self.fifo_int >> 24) & 0xff) * 64 && self.int_en & INT_TDFA != 0 {
            self.int_sts |= INT_TDFA;
        }
    }

    fn update_phy_int(&mut self) {
        if self.phy_int_src & self.phy_int_mask != 0 {
            self.int_sts |= INT_PHY;
        } else {
            self.int_sts &= !INT_PHY;
        }
    }

    fn reset(&mut self) {
        let keep = (self.byte_test, self.reset_stuck, self.csr_stuck, self.reads, self.phy_link);
        let tx_fail = self.tx_fail;
        let sent = core::mem::take(&mut self.sent);
        let irq_cfg = self.irq_cfg & 0x11;
        *self = Self::new();
        (self.byte_test, self.reset_stuck, self.csr_stuck, self.reads, self.phy_link) = keep;
        self.sent = sent;
        self.tx_fail = tx_fail;
        self.irq_cfg = irq_cfg;
        if self.reset_stuck {
            self.hw_cfg |= 1;
        }
    }

    fn phy_read(&mut self, index: u32) -> u32 {
        match index {
            0 => 0x3000,
            1 => 0x7809 | if self.phy_link { 0x0024 } else { 0 },
            2 => 0x0007,
            3 => 0xc0d1,
            4 => 0x01e1,
            5 => 0x0f71,
            29 => {
                let v = self.phy_int_src;
                self.phy_int_src = 0;
                self.update_phy_int();
                v
            }
            30 => self.phy_int_mask,
            _ => 0,
        }
    }

    fn phy_write(&mut self, index: u32, value: u32) {
        if index == 30 {
            self.phy_int_mask = value & 0xff;
            self.update_phy_int();
        }
    }

    fn mac_access(&mut self, cmd: u32) {
        let index = cmd & 0xff;
        if cmd & (1 << 30) != 0 {
            self.mac_data = match index {
                1 => self.mac_cr,
                2 => u32::from(self.mac_addr[4]) | (u32::from(self.mac_addr[5]) << 8),
                3 => u32::from_le_bytes([
                    self.mac_addr[0],
                    self.mac_addr[1],
                    self.mac_addr[2],
                    self.mac_addr[3],
                ]),
                6 => self.mii_acc,
                7 => self.mii_data,
                _ => 0,
            };
            return;
        }
        let v = self.mac_data;
        match index {
            1 => self.mac_cr = v,
            2 => {
                self.mac_addr[4] = v as u8;
                self.mac_addr[5] = (v >> 8) as u8;
            }
            3 => self.mac_addr[..4].copy_from_slice(&v.to_le_bytes()),
            6 => {
                // The PHY answers at once: the busy bit is clear when read back.
                self.mii_acc = v & !1;
                let phy_reg = (v >> 6) & 0x1f;
                if v & 2 != 0 {
                    self.phy_write(phy_reg, self.mii_data);
                } else {
                    self.mii_data = self.phy_read(phy_reg);
                }
            }
            7 => self.mii_data = v & 0xffff,
            _ => {}
        }
    }

    fn tx_push(&mut self, w: u32) {
        if self.tx_free() < 4 {
            self.tx_overruns += 1;
            self.int_sts |= INT_TDFO;
            return;
        }
        let tx = &mut self.tx;
        match (tx.cmd_a, tx.cmd_b) {
            (None, _) => {
                tx.cmd_a = Some(w);
                tx.left = (w & 0x7ff) as usize;
                tx.frame.clear();
            }
            (Some(_), None) => tx.cmd_b = Some(w),
            (Some(a), Some(b)) => {
                let take = tx.left.min(4);
                tx.frame.extend_from_slice(&w.to_le_bytes()[..take]);
                tx.left -= take;
                if tx.left == 0 {
                    let frame = core::mem::take(&mut tx.frame);
                    self.tx = TxAssembly::default();
                    // One buffer per frame (first and last segment): send it.
                    if a & (3 << 12) == 3 << 12 {
                        self.sent.push(frame);
                        if self.tx_status.len() < TX_STATUS_CAPACITY {
                            let error = if self.tx_fail { (1 << 15) | (1 << 10) } else { 0 };
                            self.tx_status.push_back((b & 0xffff_0000) | error);
                        }
                    }
                }
            }
        }
    }
}

impl Registers for Model {
    fn read(&mut self, offset: u32) -> u32 {
        self.reads += 1;
        match offset {
            0x00..0x20 => match self.rx_data.pop_front() {
                Some(w) => w,
                None => {
                    self.int_sts |= INT_RXE;
                    0
                }
            },
            reg::RX_STATUS_FIFO => self.rx_status.pop_front().unwrap_or(0),
            reg::TX_STATUS_FIFO => self.tx_status.pop_front().unwrap_or(0),
            reg::ID_REV => 0x0118_0001,
            reg::IRQ_CFG => {
                self.irq_cfg | if self.int_sts & self.int_en != 0 { 1 << 12 } else { 0 }
            }
            reg::INT_STS => self.int_sts,
            reg::INT_EN => self.int_en,
            reg::BYTE_TEST => self.byte_test,
            reg::FIFO_INT => self.fifo_int,
            reg::RX_CFG => self.rx_cfg,
            reg::TX_CFG => self.tx_cfg,
            reg::HW_CFG => self.hw_cfg,
            reg::RX_DP_CTRL => 0,
            reg::RX_FIFO_INF => {
                ((self.rx_status.len() as u32) << 16) | (self.rx_data.len() as u32 * 4)
            }
            reg::TX_FIFO_INF => ((self.tx_status.len().min(255) as u32) << 16) | self.tx_free(),
            reg::PMT_CTRL => 1,
            reg::MAC_CSR_CMD => self.mac_cmd | if self.csr_stuck { 1 << 31 } else { 0 },
            reg::MAC_CSR_DATA => self.mac_data,
            _ => 0,
        }
    }

    fn write(&mut self, offset: u32, value: u32) {
        match offset {
            0x20..0x40 => self.tx_push(value),
            reg::IRQ_CFG => self.irq_cfg = value & 0xff00_0111,
            reg::INT_STS => self.int_sts &= !value,
            reg::INT_EN => {
                self.int_en = value;
                self.update_tdfa();
            }
            reg::FIFO_INT => self.fifo_int = value,
            reg::RX_CFG => {
                if value & (1 << 15) != 0 {
                    self.rx_status.clear();
                    self.rx_data.clear();
                }
                self.rx_cfg = value & !(1 << 15);
            }
            reg::TX_CFG => self.tx_cfg = value & 0x6,
            reg::HW_CFG => {
                if value & 1 != 0 {
                    self.reset();
                } else {
                    self.hw_cfg = value;
                }
            }
            reg::MAC_CSR_CMD => {
                self.mac_cmd = value & 0x4000_00ff;
                if value & (1 << 31) != 0 {
                    self.mac_access(value);
                }
            }
            reg::MAC_CSR_DATA => self.mac_data = value,
            _ => {}
        }
    }
}

/// The Ethernet FCS (CRC-32, reflected, as it goes on the wire).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

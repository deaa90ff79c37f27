//! What the fuzz targets share: the board they boot the firmware core on.

use gecko_core::BoardInfo;

/// The board's MAC address (what `factory_reset` must name).
pub const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];

/// The board every target boots its modules on.
pub fn board() -> BoardInfo {
    BoardInfo {
        product: "Gecko OS".into(),
        version: "4.2.0".into(),
        build: "fuzz".into(),
        platform: "SIM".into(),
        board: "SIM-01".into(),
        mac: MAC,
    }
}

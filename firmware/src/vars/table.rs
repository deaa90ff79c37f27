//! The variable table. Sources: the chapter (names), protocol-facts §1–§3 (types, shortcuts,
//! defaults). Rows marked `Assumed` carry a default or type no document gives.

use super::{Access, Basis, Kind, VarDef};
use Access::{ReadOnly as RO, ReadWrite as RW};
use Basis::{Assumed as A, Documented as D};

const fn v(
    name: &'static str,
    short: &'static str,
    kind: Kind,
    default: &'static str,
    access: Access,
    basis: Basis,
) -> VarDef {
    VarDef { name, short, kind, default, saved: matches!(access, RW), access, basis }
}

const BOOL: Kind = Kind::Bool;
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const fn text(min: usize, max: usize) -> Kind {
    Kind::Str { min, max }
}

/// Every variable, sorted by name.
pub static VARIABLES: &[VarDef] = &[
    v("system.cmd.buffered", "sy c b", BOOL, "0", RW, D),
    v("system.cmd.echo", "sy c e", BOOL, "1", RW, D),
    v("system.cmd.format", "sy c f", Kind::Enum(&["human", "machine"]), "human", RW, D),
    v("system.cmd.header_enabled", "sy c h", BOOL, "0", RW, D),
    v("system.cmd.prompt_enabled", "sy c p", BOOL, "1", RW, D),
    v("system.cmd.timestamp", "sy c t", Kind::Enum(&["none", "utc", "local"]), "none", RW, A),
    v("system.print_level", "sy p", Kind::Enum(&["0", "1", "2", "3", "4", "all"]), "all", RW, D),
    v("system.version", "sy v", text(0, 128), "", RO, D),
    v("setup.web.passkey", "se w p", Kind::Passkey, "password", RW, D),
    v("softap.passkey", "so p", Kind::Passkey, "", RW, D),
    v("wlan.mac", "wl m", Kind::Mac, "00:00:00:00:00:00", RO, D),
    v("wlan.passkey", "wl p", Kind::Passkey, "", RW, A),
    v("wlan.ssid", "wl s", text(0, 32), "", RW, A),
];

use super::*;
use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rstest::rstest;

const BOOL: Kind = Kind::Bool;
const BYTE: Kind = Kind::Int { min: -1, max: 255 };
const FORMAT: Kind = Kind::Enum(&["human", "machine"]);
const LEVEL: Kind = Kind::Enum(&["0", "1", "2", "3", "4", "all"]);
const SHORT_TEXT: Kind = Kind::Str { min: 1, max: 4 };
const ITEMS: Kind = Kind::List(&["ip", "mac", "ssid"]);

fn parsed(kind: Kind, raw: &str) -> Result<String, SetError> {
    parse(kind, raw).map(|bytes| String::from_utf8(bytes).expect("stored values are UTF-8"))
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(ToOwned::to_owned).collect()
}

fn id(name: &str) -> VarId {
    by_name(name).unwrap_or_else(|| panic!("{name} is not in the table"))
}

// --- parse -----------------------------------------------------------------------------------

#[rstest]
#[case::zero(BOOL, "0", "0")]
#[case::off(BOOL, "off", "0")]
#[case::false_(BOOL, "false", "0")]
#[case::off_upper(BOOL, "OFF", "0")]
#[case::false_mixed(BOOL, "False", "0")]
#[case::one(BOOL, "1", "1")]
#[case::on(BOOL, "on", "1")]
#[case::true_(BOOL, "true", "1")]
#[case::true_upper(BOOL, "TRUE", "1")]
#[case::int_zero(BYTE, "0", "0")]
#[case::int_min(BYTE, "-1", "-1")]
#[case::int_max(BYTE, "255", "255")]
#[case::int_leading_zeros(BYTE, "007", "7")]
#[case::int_plus(BYTE, "+7", "7")]
#[case::int_hex(BYTE, "0x10", "16")]
#[case::int_hex_upper(BYTE, "0XfF", "255")]
#[case::enum_exact(FORMAT, "machine", "machine")]
#[case::enum_upper(FORMAT, "HUMAN", "human")]
#[case::enum_mixed(FORMAT, "MaChInE", "machine")]
#[case::enum_digits(LEVEL, "3", "3")]
#[case::enum_all_upper(LEVEL, "ALL", "all")]
#[case::str_min(SHORT_TEXT, "a", "a")]
#[case::str_max(SHORT_TEXT, "abcd", "abcd")]
#[case::str_space(SHORT_TEXT, "a b", "a b")]
#[case::str_escaped_quote(SHORT_TEXT, r#"a\"b"#, "a\"b")]
#[case::str_escaped_backslash(SHORT_TEXT, r"a\\b", r"a\b")]
#[case::str_other_backslash_kept(SHORT_TEXT, r"a\t", r"a\t")]
#[case::str_length_is_decoded(SHORT_TEXT, r#"\"\"\"\""#, "\"\"\"\"")]
#[case::ipv4(Kind::Ipv4, "10.10.10.1", "10.10.10.1")]
#[case::ipv4_zero(Kind::Ipv4, "0.0.0.0", "0.0.0.0")]
#[case::ipv4_broadcast(Kind::Ipv4, "255.255.255.255", "255.255.255.255")]
#[case::mac_colons(Kind::Mac, "00:11:22:aa:bb:cc", "00:11:22:aa:bb:cc")]
#[case::mac_upper(Kind::Mac, "00:11:22:AA:BB:CC", "00:11:22:aa:bb:cc")]
#[case::mac_dashes(Kind::Mac, "00-11-22-AA-bb-CC", "00:11:22:aa:bb:cc")]
#[case::list_one(ITEMS, "mac", "mac")]
#[case::list_order_kept(ITEMS, "ssid,ip,mac", "ssid,ip,mac")]
#[case::list_case_and_spaces(ITEMS, "MAC, Ip", "mac,ip")]
#[case::passkey_plain(Kind::Passkey, "password", "password")]
#[case::passkey_empty_clears(Kind::Passkey, "", "")]
#[case::passkey_decoded(Kind::Passkey, r"\x41\x42\x43\x44\x45\x46\x47\x48", "ABCDEFGH")]
#[case::passkey_psk(
    Kind::Passkey,
    "e2e04dcb82891a286e5d524b63f4963ac1f8dc49852bd6b97441d9545054d270",
    "e2e04dcb82891a286e5d524b63f4963ac1f8dc49852bd6b97441d9545054d270"
)]
fn parses_and_normalises(#[case] kind: Kind, #[case] raw: &str, #[case] stored: &str) {
    assert_eq!(parsed(kind, raw), Ok(stored.to_owned()));
}

#[rstest]
#[case::bool_two(BOOL, "2")]
#[case::bool_yes(BOOL, "yes")]
#[case::bool_empty(BOOL, "")]
#[case::bool_prefix(BOOL, "tru")]
#[case::int_word(BYTE, "abc")]
#[case::int_empty(BYTE, "")]
#[case::int_fraction(BYTE, "1.5")]
#[case::int_exponent(BYTE, "1e3")]
#[case::int_bare_hex_prefix(BYTE, "0x")]
#[case::int_bad_hex(BYTE, "0xzz")]
#[case::int_negative_hex(BYTE, "-0x1")]
#[case::int_space(BYTE, " 1")]
#[case::int_overflows_i64(BYTE, "99999999999999999999")]
#[case::enum_unknown(FORMAT, "robot")]
#[case::enum_prefix(FORMAT, "hum")]
#[case::enum_empty(FORMAT, "")]
#[case::enum_trailing_space(FORMAT, "human ")]
#[case::ipv4_leading_zero(Kind::Ipv4, "010.1.1.1")]
#[case::ipv4_leading_zero_last(Kind::Ipv4, "1.1.1.01")]
#[case::ipv4_zero_padded(Kind::Ipv4, "00.0.0.0")]
#[case::ipv4_octet_too_big(Kind::Ipv4, "256.1.1.1")]
#[case::ipv4_four_digits(Kind::Ipv4, "1000.1.1.1")]
#[case::ipv4_three_parts(Kind::Ipv4, "1.1.1")]
#[case::ipv4_five_parts(Kind::Ipv4, "1.1.1.1.1")]
#[case::ipv4_empty_part(Kind::Ipv4, "1..1.1")]
#[case::ipv4_trailing_dot(Kind::Ipv4, "1.1.1.1.")]
#[case::ipv4_letters(Kind::Ipv4, "a.b.c.d")]
#[case::ipv4_sign(Kind::Ipv4, "+1.1.1.1")]
#[case::ipv4_empty(Kind::Ipv4, "")]
#[case::mac_short_part(Kind::Mac, "0:11:22:33:44:55")]
#[case::mac_mixed_separators(Kind::Mac, "00:11-22:33-44:55")]
#[case::mac_five_parts(Kind::Mac, "00:11:22:33:44")]
#[case::mac_seven_parts(Kind::Mac, "00:11:22:33:44:55:66")]
#[case::mac_no_separators(Kind::Mac, "001122334455")]
#[case::mac_not_hex(Kind::Mac, "gg:11:22:33:44:55")]
#[case::mac_empty(Kind::Mac, "")]
#[case::list_duplicate(ITEMS, "mac,mac")]
#[case::list_duplicate_other_case(ITEMS, "ip,mac,IP")]
#[case::list_unknown(ITEMS, "mac,uuid")]
#[case::list_empty(ITEMS, "")]
#[case::list_empty_item(ITEMS, "mac,,ip")]
#[case::passkey_unknown_escape(Kind::Passkey, r"abcdefgh\q")]
#[case::passkey_control_char(Kind::Passkey, "abcd\u{1}efgh")]
fn refuses_invalid(#[case] kind: Kind, #[case] raw: &str) {
    assert_eq!(parsed(kind, raw), Err(SetError::Invalid));
}

#[rstest]
#[case::int_below(BYTE, "-2")]
#[case::int_above(BYTE, "256")]
#[case::int_hex_above(BYTE, "0x100")]
#[case::int_far_below(BYTE, "-9223372036854775808")]
#[case::str_empty_below_min(SHORT_TEXT, "")]
#[case::str_too_long(SHORT_TEXT, "abcde")]
#[case::str_too_long_decoded(SHORT_TEXT, r"a\\b\\c")]
#[case::passkey_short(Kind::Passkey, "1234567")]
#[case::passkey_long(
    Kind::Passkey,
    "ghijklmnopqrstuvwxyzghijklmnopqrstuvwxyzghijklmnopqrstuvwxyzghij"
)]
#[case::passkey_short_decoded(Kind::Passkey, r"\x41\x42\x43")]
fn refuses_out_of_range(#[case] kind: Kind, #[case] raw: &str) {
    assert_eq!(parsed(kind, raw), Err(SetError::OutOfRange));
}

#[test]
fn passkey_is_stored_decoded_and_rendered_with_hex_escapes() {
    let stored = parse(Kind::Passkey, r#"p\"ss\tw\nor\xFF"#).expect("chapter example");
    assert_eq!(stored, b"p\"ss\tw\nor\xff");
    assert_eq!(render(Kind::Passkey, &stored), r#"p"ss\x09w\x0Aor\xFF"#);
}

// --- resolve ---------------------------------------------------------------------------------

#[rstest]
#[case::full_name("wlan.ssid", 0, Some(("wlan.ssid", 1)))]
#[case::full_name_with_value("wlan.ssid lab", 1, Some(("wlan.ssid", 1)))]
#[case::full_name_wins_over_keep("wlan.ssid", 1, Some(("wlan.ssid", 1)))]
#[case::two_words("wl s", 0, Some(("wlan.ssid", 2)))]
#[case::three_words("wl o e", 0, Some(("wlan.auto_join.enabled", 3)))]
#[case::documented_static("wl t i", 0, Some(("wlan.static.ip", 3)))]
#[case::documented_bus("bu c t", 0, Some(("bus.command.read_timeout", 3)))]
#[case::documented_cors("ht s c", 0, Some(("http.server.cors_origin", 3)))]
#[case::documented_remote("re w", 0, Some(("remote_terminal.password", 2)))]
#[case::longest_wins("wl s r", 0, Some(("wlan.scan.retries", 3)))]
#[case::longest_wins_with_value("wl s r 5", 1, Some(("wlan.scan.retries", 3)))]
#[case::keep_leaves_the_value("wl s r", 1, Some(("wlan.ssid", 2)))]
#[case::keep_two("wl s r", 2, None)]
#[case::shorter_sibling("wl t", 0, Some(("wlan.tx_power", 2)))]
#[case::longer_sibling("wl t n", 0, Some(("wlan.static.netmask", 3)))]
#[case::extra_words_left("wl s lab net", 0, Some(("wlan.ssid", 2)))]
#[case::unknown_name("wlan.nope", 0, None)]
#[case::unknown_shortcut("wl q", 0, None)]
#[case::group_is_not_a_variable("wlan", 0, None)]
#[case::first_word_only("wl", 0, None)]
#[case::empty("", 0, None)]
#[case::keep_more_than_given("wl s", 3, None)]
fn resolves(#[case] line: &str, #[case] keep: usize, #[case] want: Option<(&str, usize)>) {
    let got = resolve(&words(line), keep).map(|(id, used)| (id.def().name, used));
    assert_eq!(got, want);
}

#[test]
fn every_shortcut_and_name_resolves_to_its_row() {
    for (i, def) in VARIABLES.iter().enumerate() {
        assert_eq!(resolve(&words(def.name), 0), Some((VarId(i), 1)), "{}", def.name);
        let n = def.short.split(' ').count();
        assert_eq!(resolve(&words(def.short), 0), Some((VarId(i), n)), "{}", def.short);
        let with_value = format!("{} value", def.short);
        assert_eq!(resolve(&words(&with_value), 1), Some((VarId(i), n)), "{with_value}");
    }
}

// --- group -----------------------------------------------------------------------------------

fn group_names(prefix: &str) -> Option<Vec<&'static str>> {
    group(prefix).map(|ids| ids.map(|id| id.def().name).collect())
}

#[rstest]
#[case::leaf("wlan.network", &["wlan.network.dns", "wlan.network.gateway", "wlan.network.ip",
    "wlan.network.netmask", "wlan.network.status"])]
#[case::nested("remote_terminal", &["remote_terminal.enabled", "remote_terminal.interface",
    "remote_terminal.password", "remote_terminal.port", "remote_terminal.timeout"])]
#[case::two_levels("bus.command", &["bus.command.read_timeout", "bus.command.rx_bufsize",
    "bus.command.write_check_enabled", "bus.command.write_timeout"])]
fn groups_list_their_members_in_order(#[case] prefix: &str, #[case] want: &[&str]) {
    assert_eq!(group_names(prefix).as_deref(), Some(want));
}

#[test]
fn group_wlan_is_every_wlan_variable() {
    let got = group_names("wlan").expect("wlan is a group");
    let want: Vec<&str> =
        VARIABLES.iter().map(|v| v.name).filter(|n| n.starts_with("wlan.")).collect();
    assert_eq!(got, want);
    assert!(got.contains(&"wlan.ssid") && got.contains(&"wlan.network.ip"));
}

#[rstest]
#[case::unknown("nope")]
#[case::partial_word("wlan.net")]
#[case::partial_first_word("wl")]
#[case::a_variable_not_a_group("wlan.ssid")]
#[case::trailing_dot("wlan.")]
#[case::empty("")]
fn not_a_group(#[case] prefix: &str) {
    assert!(group(prefix).is_none());
}

// --- the table -------------------------------------------------------------------------------

#[test]
fn names_are_unique_sorted_and_dotted() {
    for pair in VARIABLES.windows(2) {
        assert!(pair[0].name < pair[1].name, "{} must come before {}", pair[1].name, pair[0].name);
    }
    for def in VARIABLES {
        let parts: Vec<&str> = def.name.split('.').collect();
        assert!(parts.len() >= 2, "{} has no group", def.name);
        assert!(
            parts.iter().all(|p| !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')),
            "{}",
            def.name
        );
    }
}

#[test]
fn shortcuts_are_unique_and_follow_the_rule() {
    let mut seen: Vec<&str> = Vec::new();
    for def in VARIABLES {
        assert!(!seen.contains(&def.short), "shortcut {:?} is used twice", def.short);
        seen.push(def.short);
        assert!(by_name(def.short).is_none(), "{:?} is also a full name", def.short);
        let short: Vec<&str> = def.short.split(' ').collect();
        let parts: Vec<&str> = def.name.split('.').collect();
        assert!(short.len() <= 5, "{:?} has more than 5 words", def.short);
        assert_eq!(short.len(), parts.len(), "{:?}: one word per part of {}", def.short, def.name);
        assert_eq!(
            short[0],
            &parts[0][..2],
            "{:?}: first two characters of {}",
            def.short,
            def.name
        );
        for (word, part) in short[1..].iter().zip(&parts[1..]) {
            assert!(
                word.len() == 1 && part.contains(*word),
                "{:?}: {word:?} must be one character of {part:?}",
                def.short
            );
        }
    }
}

#[test]
fn every_default_is_a_value_of_its_kind() {
    for def in VARIABLES {
        let reparsed = match def.kind {
            Kind::Passkey => {
                passkey::Passkey::parse(def.default).map(|p| p.as_bytes().to_vec()).ok()
            }
            kind => parse(kind, def.default).ok(),
        };
        assert_eq!(reparsed.as_deref(), Some(def.default.as_bytes()), "default of {}", def.name);
    }
}

#[test]
fn kinds_are_well_formed() {
    for def in VARIABLES {
        match def.kind {
            Kind::Int { min, max } => assert!(min <= max, "{}", def.name),
            Kind::Str { min, max } => assert!(min <= max, "{}", def.name),
            Kind::Enum(words) | Kind::List(words) => {
                assert!(!words.is_empty(), "{}", def.name);
                for (i, w) in words.iter().enumerate() {
                    assert!(!w.is_empty() && !w.contains([',', ' ']), "{}: {w:?}", def.name);
                    assert!(
                        words[..i].iter().all(|o| !o.eq_ignore_ascii_case(w)),
                        "{}: {w:?} listed twice",
                        def.name
                    );
                }
            }
            Kind::Bool | Kind::Ipv4 | Kind::Mac | Kind::Passkey => {}
        }
    }
}

#[test]
fn read_only_rows_are_never_saved() {
    for def in VARIABLES.iter().filter(|d| d.access == Access::ReadOnly) {
        assert!(!def.saved, "{} is read-only but saved", def.name);
    }
}

#[test]
fn defaults_render_as_written_and_restore_from_nvm() {
    let vars = Vars::defaults();
    for (i, def) in VARIABLES.iter().enumerate() {
        assert_eq!(vars.render(VarId(i)), def.default, "{}", def.name);
        if def.saved {
            let mut fresh = Vars::defaults();
            assert!(fresh.restore(VarId(i), def.default.as_bytes()), "{}", def.name);
        }
    }
}

#[test]
fn read_only_variables_refuse_set() {
    let mut vars = Vars::defaults();
    for (i, def) in VARIABLES.iter().enumerate() {
        if def.access == Access::ReadOnly {
            assert_eq!(vars.set(VarId(i), def.default), Err(SetError::ReadOnly), "{}", def.name);
        }
    }
}

#[rstest]
#[case("system.cmd.echo", Kind::Bool, Access::ReadWrite)]
#[case("system.cmd.header_enabled", Kind::Bool, Access::ReadWrite)]
#[case("system.cmd.prompt_enabled", Kind::Bool, Access::ReadWrite)]
#[case("system.cmd.format", FORMAT, Access::ReadWrite)]
#[case("system.print_level", LEVEL, Access::ReadWrite)]
#[case("system.version", Kind::Str { min: 0, max: 128 }, Access::ReadOnly)]
#[case("wlan.mac", Kind::Mac, Access::ReadOnly)]
#[case("time.uptime", Kind::Int { min: 0, max: i64::MAX }, Access::ReadOnly)]
fn rows_the_module_uses_by_name(#[case] name: &str, #[case] kind: Kind, #[case] access: Access) {
    let def = id(name).def();
    assert_eq!((def.kind, def.access), (kind, access), "{name}");
}

#[rstest]
#[case("wlan.auto_join.enabled", "wl o e", "0")]
#[case("wlan.auto_join.retries", "wl o r", "3")]
#[case("wlan.static.ip", "wl t i", "0.0.0.0")]
#[case("bus.command.read_timeout", "bu c t", "100")]
#[case("bus.command.rx_bufsize", "bu c r", "4096")]
#[case("http.server.cors_origin", "ht s c", "")]
#[case("remote_terminal.password", "re w", "")]
#[case("remote_terminal.port", "re p", "2000")]
#[case("softap.static.ip", "so s i", "10.10.10.1")]
#[case("network.tls.ca_cert", "ne t a", "geotrust_ca.pem")]
#[case("setup.web.passkey", "se w p", "password")]
#[case("ntp.server", "nt s", "pool.ntp.org")]
fn documented_shortcuts_and_defaults(
    #[case] name: &str,
    #[case] short: &str,
    #[case] default: &str,
) {
    let def = id(name).def();
    assert_eq!((def.short, def.default), (short, default), "{name}");
}

#[test]
fn passkeys_use_the_passkey_kind() {
    for name in ["wlan.passkey", "softap.passkey", "setup.web.passkey"] {
        assert_eq!(id(name).def().kind, Kind::Passkey, "{name}");
    }
    let others = VARIABLES.iter().filter(|d| d.kind == Kind::Passkey).count();
    assert_eq!(others, 3);
}

#[test]
fn set_stores_the_normalised_value() {
    let mut vars = Vars::defaults();
    let echo = id("system.cmd.echo");
    assert_eq!(vars.set(echo, "off"), Ok(()));
    assert_eq!(vars.render(echo), "0");
    let security = id("wlan.security");
    assert_eq!(vars.set(security, "WPA2-AES"), Ok(()));
    assert_eq!(vars.render(security), "wpa2-aes");
    let retries = id("wlan.auto_join.retries");
    assert_eq!(vars.set(retries, "256"), Err(SetError::OutOfRange));
    assert_eq!(vars.set(retries, "many"), Err(SetError::Invalid));
    assert_eq!(vars.render(retries), "3", "a refused value leaves the old one");
}

#[rstest]
#[case(r#"a\"b"#, "a\"b")]
#[case(r"a\\b", r"a\b")]
#[case(r"a\tb", r"a\tb")]
#[case(r"end\", r"end\")]
fn plain_unescape(#[case] raw: &str, #[case] want: &str) {
    assert_eq!(unescape_plain(raw), want);
}

/// Each typed id is the camel-case of its variable's name, so `Var::WlanSsid` reads as
/// `wlan.ssid` and a row whose variant does not match its name is caught here.
#[test]
fn typed_ids_name_their_rows() {
    assert_eq!(Var::ALL.len(), VARIABLES.len());
    for (i, &var) in Var::ALL.iter().enumerate() {
        let want: String = var
            .def()
            .name
            .split(['.', '_'])
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase()).into_iter().chain(c).collect::<String>()
            })
            .collect();
        assert_eq!(format!("{var:?}"), want);
        assert_eq!(var.id(), VarId(i));
        assert_eq!(VarId(i).var(), var);
    }
}

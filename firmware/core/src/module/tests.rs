use super::*;
use alloc::vec;
use rstest::rstest;
use system::{Part, readers};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const MAC_TEXT: &str = "02:00:5e:10:00:01";
const VERSION: &str = "Gecko OS-4.2.0, Built:2024-01-01 for SIM, Board:SIM-01";
const T0: Instant = Instant::ZERO;

/// The board every module test boots (also used by the network tests).
pub(super) fn board() -> BoardInfo {
    BoardInfo {
        product: "Gecko OS".to_string(),
        version: "4.2.0".to_string(),
        build: "2024-01-01".to_string(),
        platform: "SIM".to_string(),
        board: "SIM-01".to_string(),
        mac: MAC,
    }
}

/// Boots from `image` at `now`; returns the module and everything it printed while booting.
fn boot_at(image: Option<&[u8]>, now: Instant) -> (Module, String) {
    let mut m = Module::boot(board(), image, now);
    let banner = take(&mut m);
    (m, banner)
}

fn boot_from(image: Option<&[u8]>) -> (Module, String) {
    boot_at(image, T0)
}

/// A freshly booted module with empty NVM, its banner already drained.
fn boot() -> Module {
    boot_from(None).0
}

/// A freshly booted module switched to machine format, output drained.
fn machine() -> Module {
    let mut m = boot();
    assert_eq!(
        send(&mut m, b"set system.cmd.format machine\r\n"),
        b"set system.cmd.format machine\r\nR000008\r\nSet OK\r\n"
    );
    m
}

fn take(m: &mut Module) -> String {
    String::from_utf8(m.take_output()).expect("the module prints UTF-8")
}

/// Feeds `bytes` at [`T0`] and returns what the module printed.
fn send(m: &mut Module, bytes: &[u8]) -> Vec<u8> {
    send_at(m, bytes, T0)
}

fn send_at(m: &mut Module, bytes: &[u8], now: Instant) -> Vec<u8> {
    m.feed(bytes, now);
    m.take_output()
}

/// [`send`] for text, returning text.
fn say(m: &mut Module, line: &str) -> String {
    String::from_utf8(send(m, line.as_bytes())).expect("the module prints UTF-8")
}

/// A machine-format response frame.
fn frame(code: u8, body: &str) -> String {
    if body.is_empty() {
        format!("R{code}00000\r\n")
    } else {
        format!("R{code}{:05}\r\n{body}\r\n", body.len() + 2)
    }
}

/// The machine-format frame of an error code with its standard text.
fn error_frame(code: u8) -> String {
    frame(code, ResultCode(code).text().expect("a known code"))
}

/// A machine-format log frame.
fn log_frame(level: u8, text: &str) -> String {
    format!("L{level}{:05}\r\n{text}\r\n", text.len() + 2)
}

/// Splits output that must be exactly one machine-format response into code and body
/// (without the body's final CRLF), checking the header's length field.
fn one_frame(out: &str) -> (u8, &str) {
    assert!(out.len() >= 9, "too short for a header: {out:?}");
    let (header, rest) = out.split_at(9);
    assert!(header.starts_with('R') && header.ends_with("\r\n"), "bad header in {out:?}");
    let code = header[1..2].parse().expect("code digit");
    let len: usize = header[2..7].parse().expect("five length digits");
    assert_eq!(len, rest.len(), "length field disagrees with the body in {out:?}");
    if len == 0 {
        return (code, "");
    }
    (code, rest.strip_suffix("\r\n").expect("body ends with CRLF"))
}

/// Runs `save` and completes the NVM write with `Ok`; returns the image written and
/// everything printed once the write completed.
fn save(m: &mut Module) -> (Vec<u8>, String) {
    send(m, b"save\r\n");
    let Some(Action::StoreNvm(image)) = m.next_action() else {
        panic!("save must ask the platform to store NVM");
    };
    m.nvm_stored(Ok(()), T0);
    (image, take(m))
}

/// Output made readable for snapshots: one quoted (Rust-escaped) string per output line, so
/// `\r\n` shows literally and a trailing prompt keeps its space.
fn show(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let mut lines = Vec::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("\r\n") {
        lines.push(format!("{:?}", &rest[..at + 2]));
        rest = &rest[at + 2..];
    }
    if !rest.is_empty() {
        lines.push(format!("{rest:?}"));
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------------------------

#[test]
fn boot_banner_in_human_format() {
    let (_, banner) = boot_from(None);
    assert_eq!(banner, format!("{VERSION}\r\n[Ready]\r\n> "));
    insta::assert_snapshot!("boot_banner_human", show(banner.as_bytes()));
}

#[test]
fn boot_sets_board_variables() {
    let mut m = machine();
    assert_eq!(say(&mut m, "get wlan.mac\r\n"), frame(0, MAC_TEXT));
    assert_eq!(say(&mut m, "get system.version\r\n"), frame(0, VERSION));
}

// ---------------------------------------------------------------------------------------------
// Human format (the defaults)
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::version("version\r\n", &format!("version\r\n{VERSION}\r\n> "))]
#[case::value("get system.cmd.echo\r\n", "get system.cmd.echo\r\n1\r\n> ")]
#[case::empty_value("get wlan.ssid\r\n", "get wlan.ssid\r\n> ")]
#[case::set("set wlan.ssid lab\r\n", "set wlan.ssid lab\r\nSet OK\r\n> ")]
#[case::error("bogus\r\n", "bogus\r\nUnknown command\r\n> ")]
#[case::error_with_args("get no.such\r\n", "get no.such\r\nUnknown variable or option\r\n> ")]
#[case::load_says_success("load\r\n", "load\r\nSuccess\r\n> ")]
#[case::empty_line("\r\n", "\r\n> ")]
#[case::two_lines("ver\r\nget sy c e\r\n", &format!("ver\r\n{VERSION}\r\n> get sy c e\r\n1\r\n> "))]
#[case::backspace("vex\x08r\r\n", &format!("vex\x08 \x08r\r\n{VERSION}\r\n> "))]
#[case::del("vex\x7fr\r\n", &format!("vex\x08 \x08r\r\n{VERSION}\r\n> "))]
#[case::backspace_on_empty_line_echoes_nothing("\x08ver\r\n", &format!("ver\r\n{VERSION}\r\n> "))]
#[case::up_with_no_history("v\x1b[Aer\r\n", &format!("ver\r\n{VERSION}\r\n> "))]
#[case::tab_completes_a_command("vers\t\r\n", &format!("version \r\n{VERSION}\r\n> "))]
#[case::tab_completes_a_variable("get system.cmd.ec\t\r\n", "get system.cmd.echo \r\n1\r\n> ")]
#[case::tab_completes_a_help_topic("help var\t\r\n", &format!("help variables \r\n{}\r\n> ", help_variables()))]
#[case::recall_and_edit(
    "get wlan.ssid\r\n\x1b[A\x1b[D\x1b[D\x1b[D\x1b[D\x7f\r\n",
    "get wlan.ssid\r\n> get wlan.ssid\x08\x08\x08\x08\x08ssid \x08\x08\x08\x08\x08\r\nUnknown variable or option\r\n> "
)]
fn human_format(#[case] input: &str, #[case] want: &str) {
    let mut m = boot();
    assert_eq!(say(&mut m, input), want);
}

/// What `help variables` answers (the body only).
fn help_variables() -> String {
    let mut m = boot();
    let out = say(&mut m, "help variables\r\n");
    let body = out.strip_prefix("help variables\r\n").expect("echo first");
    body.strip_suffix("\r\n> ").expect("then the prompt").to_string()
}

#[test]
fn a_second_tab_lists_the_commands_that_match() {
    let mut m = boot();
    assert_eq!(say(&mut m, "network_\t"), "network_\x07");
    assert_eq!(
        say(&mut m, "\t"),
        "\r\nnetwork_down  network_lookup  network_restart  network_up\r\n> network_"
    );
}

#[test]
fn human_echo_follows_typing() {
    let mut m = boot();
    assert_eq!(say(&mut m, "ve"), "ve");
    assert_eq!(say(&mut m, "r"), "r");
    assert_eq!(say(&mut m, "\r"), format!("\r\n{VERSION}\r\n> "));
    // The LF of a CR LF split across feeds is swallowed: no echo, no second line.
    assert_eq!(say(&mut m, "\n"), "");
}

// ---------------------------------------------------------------------------------------------
// Machine format
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::version("ver\r\n", &frame(0, VERSION))]
#[case::set("set wlan.ssid lab\r\n", &frame(0, "Set OK"))]
#[case::value("get system.cmd.echo\r\n", &frame(0, "0"))]
#[case::empty_string("get wlan.ssid\r\n", "R000000\r\n")]
#[case::quoted_value("set wlan.ssid \"lab net\"\r\nget wlan.ssid\r\n", &(frame(0, "Set OK") + &frame(0, "lab net")))]
#[case::empty_line("\r\n", "")]
#[case::error("bogus\r\n", "R300017\r\nUnknown command\r\n")]
#[case::framing_variables(
    "get sy c h\r\nget sy c p\r\nget sy p\r\nget sy c f\r\n",
    &(frame(0, "1") + &frame(0, "0") + &frame(0, "0") + &frame(0, "machine"))
)]
#[case::back_to_human_answers_in_human("set sy c f human\r\n", "Set OK\r\n> ")]
fn machine_format(#[case] input: &str, #[case] want: &str) {
    let mut m = machine();
    assert_eq!(say(&mut m, input), want);
}

#[test]
fn machine_header_counts_the_body_crlf() {
    let mut m = machine();
    assert_eq!(say(&mut m, "set wlan.ssid 1\r\n"), "R000008\r\nSet OK\r\n");
    assert_eq!(say(&mut m, "get wlan.ssid\r\n"), "R000003\r\n1\r\n");
    let out = say(&mut m, "ver\r\n");
    assert_eq!(one_frame(&out), (0, VERSION));
}

#[test]
fn machine_format_set_by_its_parts() {
    // The three framing variables set one by one give the same framing as `format machine`.
    let mut m = boot();
    say(&mut m, "set sy c e 0\r\n");
    say(&mut m, "set sy c p off\r\n");
    assert_eq!(say(&mut m, "set sy c h true\r\n"), frame(0, "Set OK"));
    assert_eq!(say(&mut m, "ver\r\n"), frame(0, VERSION));
}

// ---------------------------------------------------------------------------------------------
// Error codes
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::unknown_command("bogus", 3)]
#[case::help_unknown_command("help bogus", 3)]
#[case::get_without_args("get", 4)]
#[case::set_without_value("set wlan.ssid", 4)]
#[case::set_shortcut_without_value("set wl s", 4)]
#[case::factory_reset_without_mac("factory_reset", 4)]
#[case::fac_without_mac("fac", 4)]
#[case::version_with_arg("version x", 5)]
#[case::save_with_arg("save now", 5)]
#[case::set_two_values("set wlan.ssid a b", 5)]
#[case::get_extra_word("get wlan.ssid x", 5)]
#[case::get_unknown_variable("get no.such", 6)]
#[case::get_unknown_shortcut("get zz z", 6)]
#[case::get_partial_group_word("get sys", 6)]
#[case::set_unknown_variable("set no.such 1", 6)]
#[case::set_read_only("set wlan.mac 02:00:5e:10:00:02", 6)]
#[case::bool_maybe("set system.cmd.echo maybe", 7)]
#[case::enum_word("set system.cmd.format robot", 7)]
#[case::passkey_bad_escape("set wlan.passkey abcdefgh\\q", 7)]
#[case::factory_reset_wrong_mac("factory_reset 02:00:5e:10:00:02", 7)]
#[case::factory_reset_not_a_mac("factory_reset nope", 7)]
#[case::string_too_long("set wlan.ssid 123456789012345678901234567890123", 9)]
#[case::passkey_too_short("set wlan.passkey 1234567", 9)]
#[case::unterminated_quote("set wlan.ssid \"lab", 2)]
#[case::lone_quote("\"", 2)]
fn error_codes(#[case] line: &str, #[case] code: u8) {
    let mut m = machine();
    assert_eq!(say(&mut m, &format!("{line}\r\n")), error_frame(code));
    assert_eq!(m.next_action(), None);
    // The module keeps answering.
    assert_eq!(say(&mut m, "ver\r\n"), frame(0, VERSION));
}

#[rstest]
#[case::string_at_max("set wlan.ssid 12345678901234567890123456789012")]
#[case::empty_string("set wlan.ssid \"\"")]
#[case::passkey_min("set wlan.passkey 12345678")]
#[case::passkey_empty("set wlan.passkey \"\"")]
#[case::bool_words("set sy c e off")]
#[case::enum_any_case("set system.cmd.format MACHINE")]
fn bounds_that_are_accepted(#[case] line: &str) {
    let mut m = machine();
    assert_eq!(say(&mut m, &format!("{line}\r\n")), frame(0, "Set OK"));
}

#[test]
fn overlong_line_is_a_buffer_overflow_and_the_next_line_works() {
    let mut m = machine();
    let mut line = vec![b'x'; console::LINE_MAX + 1];
    line.extend_from_slice(b"\r\n");
    assert_eq!(String::from_utf8(send(&mut m, &line)).expect("utf8"), error_frame(8));
    assert_eq!(say(&mut m, "ver\r\n"), frame(0, VERSION));
}

#[test]
fn a_line_of_exactly_line_max_is_executed() {
    let mut m = machine();
    let mut line = vec![b'x'; console::LINE_MAX];
    line.extend_from_slice(b"\r\n");
    assert_eq!(String::from_utf8(send(&mut m, &line)).expect("utf8"), error_frame(3));
}

#[test]
fn every_writable_string_variable_fits_a_set_line() {
    use crate::vars::{Access, Kind, VARIABLES};
    for def in VARIABLES.iter().filter(|d| d.access != Access::ReadOnly) {
        if let Kind::Str { max, .. } = def.kind {
            // `set <name> <longest value>` and one character more still fit on a line.
            let line = "set ".len() + def.name.len() + 1 + max + 1;
            assert!(line < console::LINE_MAX, "{}: {line} bytes", def.name);
        }
    }
}

#[test]
fn longest_encoded_passkey_fits_the_line() {
    let mut m = machine();
    let line = format!("set wlan.passkey {}\r\n", r"\x41".repeat(crate::passkey::MAX_LEN));
    assert!(line.len() <= console::LINE_MAX);
    assert_eq!(say(&mut m, &line), frame(0, "Set OK"));
    assert_eq!(say(&mut m, "get wlan.passkey\r\n"), frame(0, &"A".repeat(crate::passkey::MAX_LEN)));
}

#[test]
fn passkey_getter_prints_non_printables_as_hex() {
    let mut m = machine();
    assert_eq!(say(&mut m, "set wl p p\\\"ss\\tw\\nor\\xFF\r\n"), frame(0, "Set OK"));
    assert_eq!(say(&mut m, "get wl p\r\n"), frame(0, r#"p"ss\x09w\x0Aor\xFF"#));
}

// ---------------------------------------------------------------------------------------------
// Line endings and editing
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::cr("ver\r", 1)]
#[case::lf("ver\n", 1)]
#[case::crlf("ver\r\n", 1)]
#[case::crlf_then_empty_crlf("ver\r\n\r\n", 1)]
#[case::lfcr_is_two_line_ends("ver\n\r", 1)]
#[case::cr_cr("ver\rver\r", 2)]
#[case::lf_lf("ver\nver\n", 2)]
#[case::mixed("ver\rver\nver\r\nver\n\r", 4)]
fn each_line_end_ends_one_line(#[case] input: &str, #[case] versions: usize) {
    let mut m = machine();
    assert_eq!(say(&mut m, input), frame(0, VERSION).repeat(versions));
}

#[rstest]
#[case::cr_then_lf(&["ver\r", "\n"])]
#[case::cr_then_lf_and_more(&["ver\r", "\nver\r\n"])]
#[case::byte_by_byte(&["v", "e", "r", "\r", "\n"])]
fn line_ends_split_across_feeds(#[case] pieces: &[&str]) {
    let mut m = machine();
    let out: String = pieces.iter().map(|p| say(&mut m, p)).collect();
    let lines = pieces.concat().matches("ver").count();
    assert_eq!(out, frame(0, VERSION).repeat(lines));
}

#[test]
fn empty_lines_prompt_in_human_and_are_silent_in_machine() {
    let mut m = boot();
    assert_eq!(say(&mut m, "\r\n"), "\r\n> ");
    assert_eq!(say(&mut m, "\n"), "\r\n> ");
    assert_eq!(say(&mut m, "   \r"), "   \r\n> ");
    let mut m = machine();
    assert_eq!(say(&mut m, "\r\n\n\r   \r\n"), "");
}

#[test]
fn backspace_edits_the_line_in_machine_format() {
    let mut m = machine();
    assert_eq!(say(&mut m, "vex\x08r\r\n"), frame(0, VERSION));
    assert_eq!(say(&mut m, "verx\x7f\r\n"), frame(0, VERSION));
    assert_eq!(say(&mut m, "x\x08\x08\x08ver\r\n"), frame(0, VERSION));
}

/// Output never depends on how the input is split into feeds.
#[rstest]
fn output_does_not_depend_on_chunking(#[values(1, 2, 3, 7, 64)] chunk: usize) {
    let script: &[u8] = b"set wlan.ssid \"lab net\"\r\nget wl s\nsave\r\nset wl s x\rload\r\n\
        vex\x08r\r\n\r\nget system.cmd\r\nset sy c f machine\r\nget wl s\r\nsave\nver\r\n";
    let run = |chunk: usize| {
        let (mut m, banner) = boot_from(None);
        let mut out = banner.into_bytes();
        for piece in script.chunks(chunk) {
            m.feed(piece, T0);
            while let Some(action) = m.next_action() {
                assert!(matches!(action, Action::StoreNvm(_)));
                m.nvm_stored(Ok(()), T0);
            }
            out.extend(m.take_output());
        }
        out
    };
    assert_eq!(show(&run(chunk)), show(&run(script.len())));
}

// ---------------------------------------------------------------------------------------------
// Shortcuts and getters
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::ver("ver", "version")]
#[case::fac(&format!("fac {MAC_TEXT}"), &format!("factory_reset {MAC_TEXT}"))]
#[case::help_by_shortcut("help ver", "help version")]
fn command_shortcuts(#[case] short: &str, #[case] long: &str) {
    let mut a = machine();
    let mut b = machine();
    let out = say(&mut a, &format!("{short}\r\n"));
    assert_eq!(out, say(&mut b, &format!("{long}\r\n")));
    assert_eq!(one_frame(&out).0, 0);
    assert_eq!(a.next_action(), b.next_action());
}

#[test]
fn variable_shortcuts() {
    let mut m = machine();
    assert_eq!(say(&mut m, "get sy c e\r\n"), frame(0, "0"));
    assert_eq!(say(&mut m, "set wl s lab\r\n"), frame(0, "Set OK"));
    assert_eq!(say(&mut m, "get wlan.ssid\r\n"), frame(0, "lab"));
    assert_eq!(say(&mut m, "set sy c b 1\r\n"), frame(0, "Set OK"));
    assert_eq!(say(&mut m, "get system.cmd.buffered\r\n"), frame(0, "1"));
}

/// Every variable's shortcut reads the same value as its full name (whatever the table holds).
#[test]
fn every_shortcut_gets_its_variable() {
    let mut m = machine();
    for def in VARIABLES.iter().filter(|d| !d.short.is_empty()) {
        let by_short = say(&mut m, &format!("get {}\r\n", def.short));
        let by_name = say(&mut m, &format!("get {}\r\n", def.name));
        assert_eq!(by_short, by_name, "shortcut `{}` of {}", def.short, def.name);
        assert_eq!(one_frame(&by_name).0, 0, "get {}", def.name);
    }
}

#[rstest]
#[case::system_cmd("system.cmd")]
#[case::system("system")]
#[case::wlan("wlan")]
fn group_getter_lists_only_its_group(#[case] group: &str) {
    let mut m = machine();
    let out = say(&mut m, &format!("get {group}\r\n"));
    let (code, body) = one_frame(&out);
    assert_eq!(code, 0);
    let members: Vec<&str> = VARIABLES
        .iter()
        .map(|d| d.name)
        .filter(|n| n.strip_prefix(group).is_some_and(|rest| rest.starts_with('.')))
        .collect();
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(lines.len(), members.len(), "{body}");
    for (line, name) in lines.iter().zip(&members) {
        let (got, value) = line.split_once(": ").expect("`name: value`");
        assert_eq!(got, *name);
        let id = vars::by_name(name).expect("listed variable exists");
        assert_eq!(value, m.vars().render(id));
    }
}

#[test]
fn group_getter_shows_current_values() {
    let mut m = machine();
    let out = say(&mut m, "get system.cmd\r\n");
    let (_, body) = one_frame(&out);
    assert!(body.contains("system.cmd.echo: 0"), "{body}");
    assert!(body.contains("system.cmd.format: machine"), "{body}");
    assert!(!body.contains("system.print_level"), "{body}");
}

#[test]
fn get_all_lists_every_variable_once() {
    let mut m = machine();
    say(&mut m, "set wlan.ssid \"lab net\"\r\n");
    let out = say(&mut m, "get all\r\n");
    let (code, body) = one_frame(&out);
    assert_eq!(code, 0);
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(lines.len(), VARIABLES.len());
    for (line, def) in lines.iter().zip(VARIABLES) {
        assert!(line.starts_with(&format!("{}: ", def.name)), "{line:?} for {}", def.name);
    }
    assert!(lines.contains(&"wlan.ssid: lab net"));
    assert!(lines.contains(&"wlan.mac: 02:00:5e:10:00:01"));
}

#[test]
fn help_variables_lists_every_variable_with_its_shortcut() {
    let mut m = machine();
    let out = say(&mut m, "help variables\r\n");
    let (code, body) = one_frame(&out);
    assert_eq!(code, 0);
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(lines.len(), VARIABLES.len());
    for (line, def) in lines.iter().zip(VARIABLES) {
        let (name, short) = line.split_once(" : ").expect("`name : short`");
        assert_eq!((name.trim_end(), short), (def.name, def.short));
    }
}

#[rstest]
#[case::help("help")]
#[case::help_commands("help commands")]
#[case::help_get("help get")]
fn help_snapshots(#[case] line: &str) {
    let mut m = boot();
    let out = send(&mut m, format!("{line}\r\n").as_bytes());
    insta::assert_snapshot!(line.replace(' ', "_"), show(&out));
}

#[test]
fn help_commands_lists_every_command() {
    let mut m = machine();
    let out = say(&mut m, "help commands\r\n");
    let (_, body) = one_frame(&out);
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(lines.len(), command::COMMANDS.len());
    for (line, def) in lines.iter().zip(command::COMMANDS) {
        let (name, short) = line.split_once(" : ").expect("`name : short`");
        assert_eq!((name.trim_end(), short), (def.name, def.short));
    }
}

// ---------------------------------------------------------------------------------------------
// save / load / NVM
// ---------------------------------------------------------------------------------------------

#[test]
fn save_answers_after_the_nvm_write_and_stashes_input_meanwhile() {
    let mut m = machine();
    say(&mut m, "set wlan.ssid lab\r\n");
    // Nothing is answered while the write is pending, not even the lines after `save`.
    assert_eq!(say(&mut m, "save\r\nget wlan.ssid\r\nv"), "");
    let Some(Action::StoreNvm(image)) = m.next_action() else {
        panic!("save must ask for an NVM write");
    };
    assert_eq!(m.next_action(), None);
    assert_eq!(say(&mut m, "er\r\n"), "", "input while pending is held back");

    let entries = nvm::decode(&image).expect("the module writes a valid image");
    assert!(entries.contains(&("wlan.ssid".to_string(), b"lab".to_vec())), "{entries:?}");
    assert!(entries.contains(&("system.cmd.format".to_string(), b"machine".to_vec())));
    for (name, _) in &entries {
        let id = vars::by_name(name).expect("only known variables are written");
        assert!(id.def().saved, "{name} is not a saved variable");
    }

    m.nvm_stored(Ok(()), T0);
    assert_eq!(take(&mut m), frame(0, "Success") + &frame(0, "lab") + &frame(0, VERSION));
    assert_eq!(m.next_action(), None);
}

#[test]
fn a_second_save_in_the_stash_waits_for_its_own_write() {
    let mut m = machine();
    assert_eq!(say(&mut m, "save\r\nset wl s b\r\nsave\r\nver\r\n"), "");
    assert!(matches!(m.next_action(), Some(Action::StoreNvm(_))));
    m.nvm_stored(Ok(()), T0);
    assert_eq!(take(&mut m), frame(0, "Success") + &frame(0, "Set OK"));
    let Some(Action::StoreNvm(image)) = m.next_action() else {
        panic!("the stashed save runs after the first completes");
    };
    assert!(
        nvm::decode(&image).expect("valid").contains(&("wlan.ssid".to_string(), b"b".to_vec()))
    );
    m.nvm_stored(Ok(()), T0);
    assert_eq!(take(&mut m), frame(0, "Success") + &frame(0, VERSION));
}

#[test]
fn nvm_stored_without_a_pending_save_is_ignored() {
    let mut m = machine();
    m.nvm_stored(Ok(()), T0);
    m.nvm_stored(Err("spurious"), T0);
    assert_eq!(take(&mut m), "");
    let (_, out) = save(&mut m);
    assert_eq!(out, frame(0, "Success"));
    m.nvm_stored(Ok(()), T0);
    assert_eq!(take(&mut m), "", "a write completes once");
}

#[test]
fn failed_nvm_write_is_command_failed_with_a_log_line() {
    let mut m = boot();
    say(&mut m, "set wlan.ssid lab\r\n");
    assert_eq!(say(&mut m, "save\r\n"), "save\r\n");
    assert!(matches!(m.next_action(), Some(Action::StoreNvm(_))));
    m.nvm_stored(Err("flash busy"), T0);
    assert_eq!(take(&mut m), "NVM write failed: flash busy\r\nCommand failed\r\n> ");
    // Nothing was saved: `load` goes back to the boot values.
    say(&mut m, "load\r\n");
    assert_eq!(say(&mut m, "get wlan.ssid\r\n"), "get wlan.ssid\r\n> ");
}

#[rstest]
#[case::silent(&[], &error_frame(1))]
#[case::with_logs(&["set sy p all"], &(log_frame(console::level::ERROR, "NVM write failed: flash busy") + &error_frame(1)))]
fn failed_nvm_write_in_machine_format(#[case] setup: &[&str], #[case] want: &str) {
    let mut m = machine();
    for line in setup {
        say(&mut m, &format!("{line}\r\n"));
    }
    assert_eq!(say(&mut m, "save\r\n"), "");
    assert!(matches!(m.next_action(), Some(Action::StoreNvm(_))));
    m.nvm_stored(Err("flash busy"), T0);
    assert_eq!(take(&mut m), want);
}

#[test]
fn load_restores_saved_values_and_drops_unsaved_ones() {
    let mut m = machine();
    say(&mut m, "set wlan.ssid saved\r\n");
    let (_, out) = save(&mut m);
    assert_eq!(out, frame(0, "Success"));
    say(&mut m, "set wlan.ssid unsaved\r\n");
    say(&mut m, "set wlan.passkey unsaved-key\r\n");
    assert_eq!(say(&mut m, "load\r\n"), frame(0, "Success"));
    assert_eq!(say(&mut m, "get wlan.ssid\r\n"), frame(0, "saved"));
    assert_eq!(say(&mut m, "get wlan.passkey\r\n"), frame(0, ""));
}

#[test]
fn load_also_reverts_an_unsaved_format_change() {
    let mut m = machine();
    // The machine format was never saved, so `load` returns to human and answers in it.
    assert_eq!(say(&mut m, "load\r\n"), "Success\r\n> ");
}

#[test]
fn load_keeps_read_only_values() {
    let mut m = machine();
    let (_, _) = save(&mut m);
    say(&mut m, "load\r\n");
    assert_eq!(say(&mut m, "get wlan.mac\r\n"), frame(0, MAC_TEXT));
    assert_eq!(say(&mut m, "get system.version\r\n"), frame(0, VERSION));
}

#[test]
fn reboot_answers_then_asks_for_a_reboot_and_drops_input() {
    let mut m = machine();
    assert_eq!(say(&mut m, "reboot\r\nver\r\n"), frame(0, "Rebooting"));
    assert_eq!(m.next_action(), Some(Action::Reboot));
    assert_eq!(m.next_action(), None);
    assert_eq!(say(&mut m, "ver\r\n"), "");
    assert_eq!(m.next_action(), None);
}

#[test]
fn reboot_in_human_format() {
    let mut m = boot();
    assert_eq!(say(&mut m, "reboot\r\n"), "reboot\r\nRebooting\r\n> ");
    assert_eq!(m.next_action(), Some(Action::Reboot));
}

#[test]
fn booting_from_the_stored_image_keeps_saved_values() {
    let mut m = machine();
    say(&mut m, "set wlan.ssid \"lab net\"\r\n");
    say(&mut m, "set wlan.passkey p\\\"ss\\tw\\nor\\xFF\r\n");
    let (image, _) = save(&mut m);
    say(&mut m, "set wlan.ssid unsaved\r\n");
    say(&mut m, "reboot\r\n");
    assert_eq!(m.next_action(), Some(Action::Reboot));

    let (mut m, banner) = boot_from(Some(&image));
    assert_eq!(banner, "", "saved machine format with print_level 0 boots silently");
    assert_eq!(say(&mut m, "get wlan.ssid\r\n"), frame(0, "lab net"));
    assert_eq!(say(&mut m, "get wlan.passkey\r\n"), frame(0, r#"p"ss\x09w\x0Aor\xFF"#));
    assert_eq!(say(&mut m, "get system.cmd.format\r\n"), frame(0, "machine"));
    assert_eq!(say(&mut m, "get wlan.mac\r\n"), frame(0, MAC_TEXT));
    // `load` right after boot keeps the values the image gave.
    say(&mut m, "load\r\n");
    assert_eq!(say(&mut m, "get wlan.ssid\r\n"), frame(0, "lab net"));
}

#[test]
fn saving_defaults_writes_an_empty_image() {
    let mut m = boot();
    let (image, out) = save(&mut m);
    assert_eq!(out, "Success\r\n> ");
    assert_eq!(nvm::decode(&image), Ok(vec![]));
}

#[rstest]
#[case::right_mac(MAC_TEXT)]
#[case::upper_case("02:00:5E:10:00:01")]
#[case::dashes("02-00-5e-10-00-01")]
fn factory_reset_with_the_right_mac(#[case] mac: &str) {
    let mut m = machine();
    assert_eq!(say(&mut m, &format!("factory_reset {mac}\r\nver\r\n")), frame(0, "Factory reset"));
    assert_eq!(m.next_action(), Some(Action::FactoryReset));
    assert_eq!(m.next_action(), None);
    assert_eq!(say(&mut m, "ver\r\n"), "", "input after a factory reset is dropped");
}

#[rstest]
#[case::other_mac("02:00:5e:10:00:02")]
#[case::short_mac("02:00:5e:10:00")]
#[case::long_mac("02:00:5e:10:00:01:00")]
#[case::no_separators("02005e100001")]
#[case::word("please")]
fn factory_reset_with_a_wrong_mac(#[case] mac: &str) {
    let mut m = machine();
    assert_eq!(say(&mut m, &format!("factory_reset {mac}\r\n")), error_frame(7));
    assert_eq!(m.next_action(), None);
}

fn damaged(image: &[u8]) -> Vec<u8> {
    let mut image = image.to_vec();
    let at = image.iter().position(|&b| b == b'=').expect("an entry") + 1;
    image[at] ^= 0x01;
    image
}

#[rstest]
#[case::flipped_byte(damaged(&nvm::encode([("wlan.ssid", b"lab".as_slice())])), "NVM: NVM image damaged (CRC mismatch); using defaults")]
#[case::truncated(nvm::encode([("wlan.ssid", b"lab".as_slice())])[..30].to_vec(), "NVM: NVM image damaged (CRC mismatch); using defaults")]
#[case::foreign(b"hello".to_vec(), "NVM: not an NVM image (bad magic line); using defaults")]
#[case::blank(vec![], "NVM: not an NVM image (bad magic line); using defaults")]
#[case::erased_flash(vec![0xff; 64], "NVM: not an NVM image (bad magic line); using defaults")]
fn damaged_nvm_boots_with_defaults_and_says_so(#[case] image: Vec<u8>, #[case] note: &str) {
    let (m, banner) = boot_from(Some(&image));
    assert_eq!(banner, format!("{VERSION}\r\n{note}\r\n[Ready]\r\n> "));
    assert_eq!(m.vars(), boot().vars());
}

#[rstest]
#[case::unknown_variable("no.such", b"1".as_slice())]
#[case::bad_value("system.cmd.echo", b"maybe".as_slice())]
#[case::out_of_range("wlan.ssid", b"123456789012345678901234567890123".as_slice())]
#[case::read_only("wlan.mac", b"ff:ff:ff:ff:ff:ff".as_slice())]
#[case::short_passkey("wlan.passkey", b"short".as_slice())]
fn nvm_entries_the_firmware_refuses_are_ignored_one_by_one(
    #[case] name: &str,
    #[case] value: &[u8],
) {
    let image = nvm::encode([(name, value), ("wlan.ssid", b"kept".as_slice())]);
    let (mut m, banner) = boot_from(Some(&image));
    // Only the refused entry is dropped (for wlan.ssid the later, valid entry wins).
    assert_eq!(banner, format!("{VERSION}\r\nNVM: ignored saved value of {name}\r\n[Ready]\r\n> "));
    assert_eq!(say(&mut m, "get wlan.ssid\r\n"), "get wlan.ssid\r\nkept\r\n> ");
    assert_eq!(say(&mut m, "get wlan.mac\r\n"), format!("get wlan.mac\r\n{MAC_TEXT}\r\n> "));
    assert_eq!(say(&mut m, "get sy c e\r\n"), "get sy c e\r\n1\r\n> ");
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/// Boots from an image saved after `setup` lines (typed into a module in human format).
fn boot_after(setup: &[&str]) -> (Module, String) {
    let mut m = boot();
    for line in setup {
        say(&mut m, &format!("{line}\r\n"));
    }
    let (image, _) = save(&mut m);
    boot_from(Some(&image))
}

#[rstest]
#[case::machine_with_logs(
    &["set sy c f machine", "set sy p all"],
    &(log_frame(console::level::STATUS, VERSION) + &log_frame(console::level::STATUS, "[Ready]"))
)]
#[case::machine_level_1(
    &["set sy c f machine", "set sy p 1"],
    &(log_frame(console::level::STATUS, VERSION) + &log_frame(console::level::STATUS, "[Ready]"))
)]
#[case::machine_silent(&["set sy c f machine"], "")]
#[case::machine_silent_explicit(&["set sy c f machine", "set sy p 0"], "")]
#[case::human_silent(&["set sy p 0"], "> ")]
#[case::human_with_headers(&["set sy c h 1"], &format!("L1{:05}\r\n{VERSION}\r\nL100009\r\n[Ready]\r\n> ", VERSION.len() + 2))]
fn boot_logs_follow_the_saved_format(#[case] setup: &[&str], #[case] want: &str) {
    let (_, banner) = boot_after(setup);
    assert_eq!(banner, want);
}

#[test]
fn nvm_notes_are_error_level_logs() {
    let mut image = nvm::encode([
        ("system.cmd.echo", b"0".as_slice()),
        ("system.cmd.header_enabled", b"1".as_slice()),
        ("system.cmd.prompt_enabled", b"0".as_slice()),
        ("no.such", b"1".as_slice()),
    ]);
    let (_, banner) = boot_from(Some(&image));
    let note = "NVM: ignored saved value of no.such";
    assert_eq!(
        banner,
        log_frame(console::level::STATUS, VERSION)
            + &log_frame(console::level::ERROR, note)
            + &log_frame(console::level::STATUS, "[Ready]")
    );
    // Level 1 lets status through but not errors.
    image = nvm::encode([
        ("system.cmd.echo", b"0".as_slice()),
        ("system.cmd.header_enabled", b"1".as_slice()),
        ("system.cmd.prompt_enabled", b"0".as_slice()),
        ("system.print_level", b"1".as_slice()),
        ("no.such", b"1".as_slice()),
    ]);
    let (_, banner) = boot_from(Some(&image));
    assert_eq!(
        banner,
        log_frame(console::level::STATUS, VERSION) + &log_frame(console::level::STATUS, "[Ready]")
    );
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

#[test]
fn uptime_grows_with_now() {
    let boot_time = Instant::from_millis(7_000);
    let (mut m, _) = boot_at(None, boot_time);
    send_at(&mut m, b"set sy c f machine\r\n", boot_time);
    let uptime = |m: &mut Module, ms: u64| {
        let out = send_at(m, b"get time.uptime\r\n", Instant::from_millis(ms));
        let out = String::from_utf8(out).expect("utf8");
        let (code, body) = one_frame(&out);
        assert_eq!(code, 0);
        body.parse::<u64>().expect("uptime in whole seconds")
    };
    assert_eq!(uptime(&mut m, 7_000), 0);
    assert_eq!(uptime(&mut m, 8_999), 1);
    assert_eq!(uptime(&mut m, 67_000), 60);
    assert_eq!(uptime(&mut m, 7_000 + 86_400_000), 86_400);
}

// ---------------------------------------------------------------------------------------------
// Which part reads which variable
// ---------------------------------------------------------------------------------------------

/// Each part's settings as read from `vars`, for comparing.
fn settings_of(part: Part, vars: &Vars) -> String {
    use crate::config::{
        AutoConfig, HttpServerConfig, NetworkConfig, SocketsConfig, StreamModeConfig,
        TcpServerConfig, TerminalConfig, UdpServerConfig,
    };
    match part {
        Part::Module => format!("{:?}", Settings::from_vars(vars)),
        Part::Network => format!("{:?}", NetworkConfig::from_vars(vars)),
        Part::TcpServer => format!("{:?}", TcpServerConfig::from_vars(vars)),
        Part::UdpServer => format!("{:?}", UdpServerConfig::from_vars(vars)),
        Part::Bus => format!("{:?}", StreamModeConfig::from_vars(vars)),
        Part::Autos => format!("{:?}", AutoConfig::from_vars(vars)),
        Part::Sockets => format!("{:?}", SocketsConfig::from_vars(vars)),
        Part::HttpServer => format!("{:?}", HttpServerConfig::from_vars(vars)),
        Part::Terminal => format!("{:?}", TerminalConfig::from_vars(vars)),
        Part::Tls => format!("{:?}", crate::config::TlsSettings::from_vars(vars)),
    }
}

/// Every variable a part's settings read maps to that part, so changing it makes the part
/// read its settings again: for each variable and a spread of values, a part whose settings
/// come out different must be among the variable's readers.
#[test]
fn every_variable_a_part_reads_maps_to_it() {
    const PARTS: [Part; 9] = [
        Part::Module,
        Part::Network,
        Part::TcpServer,
        Part::UdpServer,
        Part::Bus,
        Part::Autos,
        Part::Sockets,
        Part::HttpServer,
        Part::Terminal,
    ];
    const VALUES: &[&str] = &[
        "0",
        "1",
        "2",
        "7",
        "100",
        "255",
        "3000",
        "65535",
        "off",
        "on",
        "stream",
        "machine",
        "human",
        "softap",
        "wlan",
        "utc",
        "local",
        "wpa2",
        "open",
        "passive",
        "10.0.0.9",
        "00:11:22:33:44:55",
        "lab",
        "$$$",
        "all",
        "UTC+2",
    ];
    let defaults = Vars::defaults();
    let mut checked = 0;
    for &var in Var::ALL {
        for value in VALUES {
            let mut vars = Vars::defaults();
            vars.set_internal(var, value.as_bytes());
            for part in PARTS {
                if settings_of(part, &vars) != settings_of(part, &defaults) {
                    checked += 1;
                    assert!(
                        readers(var).contains(&part),
                        "{part:?} reads {} (value {value:?}) but is not among its readers {:?}",
                        var.def().name,
                        readers(var)
                    );
                }
            }
        }
    }
    // The check saw the parts read variables (a spread that changed nothing proves nothing).
    assert!(checked > 50, "only {checked} changes seen");
}

/// A `set` refreshes only the parts reading the variable: a TCP server setting leaves the
/// others' settings as they were, even if the variables changed under them.
#[test]
fn set_refreshes_only_the_readers() {
    let mut m = boot();
    // Changed behind the module's back: only a refresh of the UDP server would see it.
    m.vars.set_internal(Var::UdpServerPort, b"4321");
    m.execute(Origin::Terminal(1), b"set tcp.server.port 8080", T0);
    assert_eq!(m.svc.tcp_server.cfg().port, 8080);
    assert_ne!(m.svc.udp_server.cfg().port, 4321);
    m.execute(Origin::Terminal(1), b"set udp.server.remote_port 9", T0);
    assert_eq!(m.svc.udp_server.cfg().port, 4321);
}

#![allow(clippy::unwrap_used)]
use super::*;
use alloc::string::ToString;
use alloc::vec;
use rstest::rstest;

const LAB: Mac = [2, 0, 0, 0, 1, 1];

fn bss(ssid: &str, bssid: Mac, channel: u8, rssi: i16, security: Security) -> Bss {
    Bss { ssid: ssid.into(), bssid, channel, rssi, security }
}

fn lab() -> Bss {
    bss("lab", LAB, 6, -40, Security::Wpa2Aes)
}

fn params(channel_mask: u16, kind: ScanType, dwell_ms: u16, num_probes: u8) -> ScanParams {
    ScanParams { channel_mask, kind, dwell_ms, num_probes }
}

#[rstest]
#[case::reset(ToRadio::Reset, "RESET")]
#[case::scan_all(
    ToRadio::Scan { id: 7, ssid: None, bssid: None, params: ScanParams::DEFAULT },
    "SCAN 7 * * 2047 active 100 2"
)]
#[case::probe_ssid(
    ToRadio::Scan { id: 8, ssid: Some("lab".into()), bssid: None, params: params(1 << 5, ScanType::Passive, 120, 0) },
    "SCAN 8 6c6162 * 32 passive 120 0"
)]
#[case::probe_both(
    ToRadio::Scan { id: 4_294_967_295, ssid: Some("a b".into()), bssid: Some(LAB), params: params(0x3fff, ScanType::Active, 65535, 255) },
    "SCAN 4294967295 612062 02:00:00:00:01:01 16383 active 65535 255"
)]
#[case::probe_empty_ssid(
    ToRadio::Scan { id: 1, ssid: Some(String::new()), bssid: None, params: ScanParams::DEFAULT },
    "SCAN 1 - * 2047 active 100 2"
)]
#[case::associate(
    ToRadio::Associate { attempt: 3, bss: lab(), passkey: b"labpass123".to_vec() },
    "ASSOC 3 6c6162 02:00:00:00:01:01 6 -40 wpa2-aes 6c616270617373313233"
)]
#[case::associate_open(
    ToRadio::Associate { attempt: 0, bss: bss("\u{e9}", [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff], 196, 0, Security::Open), passkey: vec![] },
    "ASSOC 0 c3a9 aa:bb:cc:dd:ee:ff 196 0 open -"
)]
#[case::disassociate(ToRadio::Disassociate, "DISASSOC")]
fn module_messages_both_ways(#[case] message: ToRadio, #[case] line: &str) {
    assert_eq!(message.encode(), alloc::format!("{line}\n"));
    let mut decoder = Decoder::<ToRadio>::new();
    assert_eq!(decoder.feed(message.encode().as_bytes()), vec![Ok(message)]);
}

#[rstest]
#[case::hello(FromRadio::Hello { version: PROTOCOL_VERSION }, "HELLO 1")]
#[case::scan_done_empty(FromRadio::ScanDone { id: 7, results: vec![] }, "SCANDONE 7 0")]
#[case::scan_done(
    FromRadio::ScanDone { id: 9, results: vec![lab(), bss("open", [2, 0, 0, 0, 2, 1], 1, -60, Security::Open)] },
    "SCANDONE 9 2 6c6162 02:00:00:00:01:01 6 -40 wpa2-aes 6f70656e 02:00:00:00:02:01 1 -60 open"
)]
#[case::associated(FromRadio::Associated { attempt: 3 }, "ASSOCIATED 3")]
#[case::auth_failed(
    FromRadio::AssociationFailed { attempt: 1, reason: AssocFailure::AuthFailed },
    "ASSOCFAIL 1 auth-failed"
)]
#[case::rejected(
    FromRadio::AssociationFailed { attempt: 2, reason: AssocFailure::Rejected },
    "ASSOCFAIL 2 rejected"
)]
#[case::not_found(
    FromRadio::AssociationFailed { attempt: 3, reason: AssocFailure::NotFound },
    "ASSOCFAIL 3 not-found"
)]
#[case::link_lost(FromRadio::LinkLost, "LINKLOST")]
fn radio_messages_both_ways(#[case] message: FromRadio, #[case] line: &str) {
    assert_eq!(message.encode(), alloc::format!("{line}\n"));
    let mut decoder = Decoder::<FromRadio>::new();
    assert_eq!(decoder.feed(message.encode().as_bytes()), vec![Ok(message)]);
}

#[test]
fn every_security_type_round_trips() {
    for security in Security::ALL {
        let message = FromRadio::ScanDone { id: 1, results: vec![bss("x", LAB, 1, -1, security)] };
        assert_eq!(FromRadio::decode_line(message.encode().trim_end().as_bytes()), Ok(message));
    }
}

#[rstest]
#[case::unknown("HELLO? 1", DecodeError::UnknownMessage)]
#[case::lowercase("reset", DecodeError::UnknownMessage)]
#[case::wrong_direction("LINKLOST", DecodeError::UnknownMessage)]
#[case::extra("RESET now", DecodeError::ExtraField)]
#[case::missing("SCAN 7 * *", DecodeError::MissingField("mask"))]
#[case::double_space("SCAN 7  * * 2047 active 100 2", DecodeError::BadField("ssid"))]
#[case::trailing_space("DISASSOC ", DecodeError::ExtraField)]
#[case::leading_space(" RESET", DecodeError::BadField("message"))]
#[case::plus("SCAN +7 * * 2047 active 100 2", DecodeError::BadField("id"))]
#[case::negative_id("SCAN -7 * * 2047 active 100 2", DecodeError::BadField("id"))]
#[case::overflow("SCAN 4294967296 * * 2047 active 100 2", DecodeError::BadField("id"))]
#[case::mask_overflow("SCAN 1 * * 65536 active 100 2", DecodeError::BadField("mask"))]
#[case::scan_type("SCAN 1 * * 2047 loud 100 2", DecodeError::BadField("type"))]
#[case::odd_hex("SCAN 1 616 * 2047 active 100 2", DecodeError::BadField("ssid"))]
#[case::not_hex("SCAN 1 zz * 2047 active 100 2", DecodeError::BadField("ssid"))]
#[case::long_ssid(
    "SCAN 1 616161616161616161616161616161616161616161616161616161616161616161 * 2047 active 100 2",
    DecodeError::BadField("ssid")
)]
#[case::not_utf8("SCAN 1 ff * 2047 active 100 2", DecodeError::BadField("ssid"))]
#[case::bad_mac("SCAN 1 * 02:00:00:00:01 2047 active 100 2", DecodeError::BadField("bssid"))]
#[case::dash_mac("SCAN 1 * 02-00-00-00-01-01 2047 active 100 2", DecodeError::BadField("bssid"))]
#[case::channel(
    "ASSOC 3 6c6162 02:00:00:00:01:01 256 -40 wpa2-aes -",
    DecodeError::BadField("channel")
)]
#[case::rssi("ASSOC 3 6c6162 02:00:00:00:01:01 6 -40000 wpa2-aes -", DecodeError::BadField("rssi"))]
#[case::security(
    "ASSOC 3 6c6162 02:00:00:00:01:01 6 -40 WPA2-AES -",
    DecodeError::BadField("security")
)]
#[case::passkey(
    "ASSOC 3 6c6162 02:00:00:00:01:01 6 -40 wpa2-aes 6",
    DecodeError::BadField("passkey")
)]
#[case::control("RESET\x01", DecodeError::NotPrintable)]
#[case::high("RESET\u{e9}", DecodeError::NotPrintable)]
#[case::tab("SCAN\t1 * * 2047 active 100 2", DecodeError::NotPrintable)]
fn garbage_to_the_radio_is_refused(#[case] line: &str, #[case] error: DecodeError) {
    assert_eq!(ToRadio::decode_line(line.as_bytes()), Err(error));
}

#[rstest]
#[case::unknown("SCAN 1 * * 2047 active 100 2", DecodeError::UnknownMessage)]
#[case::count_short(
    "SCANDONE 9 2 6c6162 02:00:00:00:01:01 6 -40 wpa2-aes",
    DecodeError::MissingField("ssid")
)]
#[case::count_long("SCANDONE 9 0 6c6162", DecodeError::ExtraField)]
#[case::too_many("SCANDONE 9 33", DecodeError::TooManyResults)]
#[case::reason("ASSOCFAIL 1 AuthFailed", DecodeError::BadField("reason"))]
#[case::hello("HELLO", DecodeError::MissingField("version"))]
fn garbage_from_the_radio_is_refused(#[case] line: &str, #[case] error: DecodeError) {
    assert_eq!(FromRadio::decode_line(line.as_bytes()), Err(error));
}

#[test]
fn any_chunking_decodes_the_same() {
    let stream =
        "HELLO 1\r\nSCANDONE 9 1 6c6162 02:00:00:00:01:01 6 -40 wpa2-aes\n\nbogus\nLINKLOST\n";
    let whole = Decoder::<FromRadio>::new().feed(stream.as_bytes());
    assert_eq!(
        whole,
        vec![
            Ok(FromRadio::Hello { version: 1 }),
            Ok(FromRadio::ScanDone { id: 9, results: vec![lab()] }),
            Err(DecodeError::UnknownMessage),
            Ok(FromRadio::LinkLost),
        ]
    );
    for size in 1..stream.len() {
        let mut decoder = Decoder::<FromRadio>::new();
        let pieces: Vec<_> = stream.as_bytes().chunks(size).flat_map(|c| decoder.feed(c)).collect();
        assert_eq!(pieces, whole, "chunks of {size}");
    }
}

#[test]
fn an_overlong_line_is_skipped_without_being_kept() {
    let mut decoder = Decoder::<ToRadio>::new();
    // Exactly LINE_MAX with its `\n`: still a line (an unknown one here).
    let fits = "X".repeat(LINE_MAX - 1) + "\n";
    assert_eq!(decoder.feed(fits.as_bytes()), vec![Err(DecodeError::UnknownMessage)]);
    // One byte more: too long, in whatever chunks it comes, and nothing grows past the cap.
    let chunk = [b'Y'; 1000];
    for _ in 0..100 {
        assert_eq!(decoder.feed(&chunk), vec![]);
        assert!(decoder.line.capacity() <= LINE_MAX, "{}", decoder.line.capacity());
    }
    assert_eq!(decoder.feed(b"\nRESET\n"), vec![Err(DecodeError::TooLong), Ok(ToRadio::Reset)]);
    let exact = "Z".repeat(LINE_MAX) + "\nDISASSOC\n";
    assert_eq!(
        decoder.feed(exact.as_bytes()),
        vec![Err(DecodeError::TooLong), Ok(ToRadio::Disassociate)]
    );
    // A partial line dropped by `clear` does not join the next.
    assert_eq!(decoder.feed(b"RES"), vec![]);
    decoder.clear();
    assert_eq!(decoder.feed(b"DISASSOC\n"), vec![Ok(ToRadio::Disassociate)]);
}

#[test]
fn the_longest_scan_answer_fits_a_line() {
    let longest = bss(&"\u{7f}".repeat(32), LAB, 255, i16::MIN, Security::Wpa2Mixed);
    let results = vec![longest; MAX_RESULTS + 5];
    let message = FromRadio::ScanDone { id: u32::MAX, results };
    let line = message.encode();
    assert!(line.len() <= LINE_MAX, "{}", line.len());
    let decoded = Decoder::<FromRadio>::new().feed(line.as_bytes());
    let [Ok(FromRadio::ScanDone { results, .. })] = decoded.as_slice() else {
        panic!("{decoded:?}")
    };
    assert_eq!(results.len(), MAX_RESULTS, "the first ones are kept");
}

#[test]
fn core_requests_and_events_convert_for_the_radio_only() {
    let scan =
        NetRequest::Scan { id: 2, ssid: None, bssid: Some(LAB), params: ScanParams::DEFAULT };
    let associate = NetRequest::Associate { attempt: 4, bss: lab(), passkey: b"k".to_vec() };
    for request in [scan, associate, NetRequest::Disassociate] {
        let message = ToRadio::from_request(&request).unwrap();
        assert_eq!(message.into_request(), Some(request));
    }
    assert_eq!(ToRadio::from_request(&NetRequest::IpDown), None);
    assert_eq!(ToRadio::from_request(&NetRequest::StartDhcp { attempt: 1 }), None);
    assert_eq!(ToRadio::Reset.into_request(), None);
    let events = [
        NetEvent::ScanDone { id: 2, results: vec![lab()] },
        NetEvent::Associated { attempt: 4 },
        NetEvent::AssociationFailed { attempt: 4, reason: AssocFailure::Rejected },
        NetEvent::LinkLost,
    ];
    for event in events {
        let message = FromRadio::from_event(&event).unwrap();
        assert_eq!(message.into_event(), Some(event));
    }
    assert_eq!(FromRadio::from_event(&NetEvent::PingReply { id: 1, rtt_ms: 2 }), None);
    assert_eq!(FromRadio::Hello { version: 1 }.into_event(), None);
}

#[test]
fn errors_say_what_was_wrong() {
    assert_eq!(DecodeError::BadField("rssi").to_string(), "bad field `rssi`");
    assert_eq!(DecodeError::TooLong.to_string(), "line longer than 4096 bytes");
}

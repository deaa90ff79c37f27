//! The TLS reader on hand-built records: hellos of every shape, any chunking, records and
//! messages split every way, and bytes that are not TLS.

use super::*;
use crate::capture::decode;
use rstest::rstest;

#[test]
fn an_openssl_handshake_in_a_capture() {
    let seen: Vec<String> = connections(&super::testdata::packets())
        .iter()
        .map(|s| {
            let what = match &s.message {
                TlsMessage::Handshake(h) => h.to_string(),
                other => format!("{other:?}"),
            };
            format!("#{} {}:{} > {}:{} {what}", s.packet + 1, s.src.0, s.src.1, s.dst.0, s.dst.1)
        })
        .collect();
    insta::assert_snapshot!(seen.join("\n"));
}

/// The same bytes, one TCP segment cut into many (sequence numbers kept right), out of order
/// and with a retransmission: the same messages.
#[test]
fn segments_split_reordered_and_repeated_read_the_same() {
    let packets = super::testdata::packets();
    let whole: Vec<TlsMessage> = connections(&packets).into_iter().map(|s| s.message).collect();
    // Split the server's flight (packet 5) into segments of 100 bytes, rebuilding each frame.
    let frame = &packets[4].data;
    let payload = decode::tcp_payload(frame).to_vec();
    let header_len = frame.len() - payload.len();
    let Body::Tcp(t) = decode::decode(frame).body else { panic!("not TCP") };
    let mut split = packets[..4].to_vec();
    let mut pieces: Vec<CapturedPacket> = payload
        .chunks(100)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = frame[..header_len].to_vec();
            f.extend_from_slice(chunk);
            let total = u16::try_from(f.len() - 14).unwrap().to_be_bytes();
            f[16..18].copy_from_slice(&total);
            let seq = t.seq.wrapping_add(u32::try_from(i * 100).unwrap()).to_be_bytes();
            f[14 + 20 + 4..14 + 20 + 8].copy_from_slice(&seq);
            CapturedPacket::new(packets[4].ts, f)
        })
        .collect();
    pieces.swap(1, 3);
    let again = pieces[2].clone();
    pieces.insert(4, again);
    split.extend(pieces);
    split.extend_from_slice(&packets[5..]);
    let got: Vec<TlsMessage> = connections(&split).into_iter().map(|s| s.message).collect();
    assert_eq!(got, whole);
}

/// A record of `ct` carrying `body`, with record version `version`.
pub(crate) fn record(ct: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ct];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A handshake message of type `ty`.
pub(crate) fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    let mut m = vec![ty, len[1], len[2], len[3]];
    m.extend_from_slice(body);
    m
}

fn vec16(b: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(b.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut e = ty.to_be_bytes().to_vec();
    e.extend_from_slice(&vec16(data));
    e
}

/// A ClientHello body: `suites`, then the extensions given.
pub(crate) fn client_hello_body(version: u16, suites: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x11; 32]);
    b.push(0); // session id
    let s: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    b.extend_from_slice(&vec16(&s));
    b.extend_from_slice(&[1, 0]); // null compression
    if !exts.is_empty() {
        b.extend_from_slice(&vec16(&exts.concat()));
    }
    b
}

pub(crate) fn server_hello_body(version: u16, suite: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x22; 32]);
    b.push(0);
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    if !exts.is_empty() {
        b.extend_from_slice(&vec16(&exts.concat()));
    }
    b
}

fn sni(name: &str) -> Vec<u8> {
    let mut entry = vec![0];
    entry.extend_from_slice(&vec16(name.as_bytes()));
    ext(EXT_SERVER_NAME, &vec16(&entry))
}

fn versions(v: &[u16]) -> Vec<u8> {
    let list: Vec<u8> = v.iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut data = vec![u8::try_from(list.len()).unwrap()];
    data.extend_from_slice(&list);
    ext(EXT_SUPPORTED_VERSIONS, &data)
}

fn chapter_ids() -> Vec<u16> {
    CHAPTER_SUITES.iter().map(|(id, _)| *id).collect()
}

/// A module-like ClientHello, a ServerHello, a Certificate of 20 000 bytes (over two records),
/// ServerHelloDone, then ChangeCipherSpec and an encrypted record, as one byte stream.
fn flight() -> Vec<u8> {
    let mut suites = chapter_ids();
    suites.push(SCSV_RENEGOTIATION);
    let ch = handshake(
        CLIENT_HELLO,
        &client_hello_body(0x0303, &suites, &[sni("lab-host.lab"), ext(0xff01, &[0])]),
    );
    let sh = handshake(SERVER_HELLO, &server_hello_body(0x0303, 0xC02F, &[ext(0xff01, &[0])]));
    let cert = handshake(11, &vec![0xab; 20_000]);
    let done = handshake(14, &[]);
    let mut hs = sh.clone();
    hs.extend_from_slice(&cert);
    hs.extend_from_slice(&done);
    let mut stream = record(HANDSHAKE, 0x0301, &ch);
    for chunk in hs.chunks(1 << 14) {
        stream.extend_from_slice(&record(HANDSHAKE, 0x0303, chunk));
    }
    stream.extend_from_slice(&record(CHANGE_CIPHER_SPEC, 0x0303, &[1]));
    stream.extend_from_slice(&record(HANDSHAKE, 0x0303, &[0x5a; 40]));
    stream
}

fn summary(messages: &[TlsMessage]) -> String {
    messages
        .iter()
        .map(|m| match m {
            TlsMessage::Handshake(h) => h.to_string(),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_flight_reads_the_same_in_any_chunking() {
    let stream = flight();
    let whole = TlsReader::new().feed(&stream);
    insta::assert_snapshot!(summary(&whole));
    for chunk in [1, 2, 3, 5, 7, 100, 1460, 16_389] {
        let mut r = TlsReader::new();
        let got: Vec<TlsMessage> = stream.chunks(chunk).flat_map(|c| r.feed(c)).collect();
        assert_eq!(got, whole, "chunks of {chunk}");
        assert_eq!(r.error(), None);
    }
}

#[test]
fn client_hello_fields() {
    let mut suites = chapter_ids();
    suites.push(SCSV_RENEGOTIATION);
    let body =
        client_hello_body(0x0303, &suites, &[sni("a.lab"), versions(&[0x0a0a, 0x0304, 0x0303])]);
    let Handshake::ClientHello(h) = parse_handshake(CLIENT_HELLO, &body).unwrap() else {
        panic!("not a ClientHello")
    };
    assert_eq!(h.suites, suites);
    assert_eq!(h.sni.as_deref(), Some("a.lab"));
    assert_eq!(h.extensions, vec![EXT_SERVER_NAME, EXT_SUPPORTED_VERSIONS]);
    assert_eq!(h.max_version(), Version::TLS13);
    // Without supported_versions the legacy field is the maximum; no extensions at all is
    // a valid (old) hello.
    let Handshake::ClientHello(h) =
        parse_handshake(CLIENT_HELLO, &client_hello_body(0x0302, &[0x2f], &[])).unwrap()
    else {
        panic!("not a ClientHello")
    };
    assert_eq!((h.max_version(), h.sni, h.extensions.len()), (Version::TLS11, None, 0));
}

#[test]
fn server_hello_fields() {
    let body = server_hello_body(0x0303, 0x1301, &[ext(EXT_SUPPORTED_VERSIONS, &[3, 4])]);
    let Handshake::ServerHello(h) = parse_handshake(SERVER_HELLO, &body).unwrap() else {
        panic!("not a ServerHello")
    };
    assert_eq!((h.suite, h.version()), (0x1301, Version::TLS13));
}

#[rstest]
#[case::http(b"GET / HTTP/1.1\r\n".to_vec(), "content type 71 is not TLS")]
#[case::bad_version(record(HANDSHAKE, 0x0203, &[1]), "record version 0x0203 is not TLS")]
#[case::too_long({ let mut r = vec![HANDSHAKE, 3, 3, 0x48, 0x01]; r.resize(20, 0); r }, "record length 18433 exceeds 18432")]
#[case::short_alert(record(ALERT, 0x0303, &[2]), "alert malformed: 1 bytes, not 2")]
#[case::short_hello(record(HANDSHAKE, 0x0303, &handshake(CLIENT_HELLO, &[3, 3, 0])), "ClientHello malformed: random needs 32 bytes, 1 left")]
#[case::suites_past_end(record(HANDSHAKE, 0x0303, &handshake(CLIENT_HELLO, &{ let mut b = client_hello_body(0x0303, &[0x2f], &[]); b[35] = 0x40; b })), "ClientHello malformed: cipher suites needs 16386 bytes, 4 left")]
fn not_tls_stops_the_reader(#[case] bytes: Vec<u8>, #[case] error: &str) {
    let mut r = TlsReader::new();
    r.feed(&bytes);
    assert_eq!(r.error().map(ToString::to_string).as_deref(), Some(error));
    assert!(r.feed(&flight()).is_empty(), "a stopped reader reads no more");
}

#[test]
fn alerts_and_a_huge_message_are_reported() {
    let mut stream = record(ALERT, 0x0303, &[2, 40]);
    // A message announcing 16 MB: reported, its body skipped as it comes.
    stream.extend_from_slice(&record(HANDSHAKE, 0x0303, &[11, 0xff, 0xff, 0xff, 0, 0]));
    let got = TlsReader::new().feed(&stream);
    assert_eq!(
        got,
        vec![
            TlsMessage::Alert { level: 2, description: 40 },
            TlsMessage::Handshake(Handshake::Other { msg_type: 11, len: 0xff_ffff }),
        ]
    );
}

#[rstest]
#[case("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Ok(0xC02F))]
#[case("mbedtls_tls_rsa_with_aes_128_cbc_sha", Ok(0x002F))]
#[case("0xc02f", Ok(0xC02F))]
#[case("TLS_NOPE", Err(()))]
#[case("0xZZ", Err(()))]
fn suite_names(#[case] text: &str, #[case] want: Result<u16, ()>) {
    assert_eq!(parse_suite(text).map_err(|_| ()), want);
}

#[rstest]
#[case("1.2", Ok(Version::TLS12))]
#[case("TLS1.0", Ok(Version::TLS10))]
#[case("tls 1.3", Ok(Version::TLS13))]
#[case("2.0", Err(()))]
fn versions_parse(#[case] text: &str, #[case] want: Result<Version, ()>) {
    assert_eq!(text.parse::<Version>().map_err(|_| ()), want);
    if let Ok(v) = want {
        assert_eq!(v.to_string().parse::<Version>(), Ok(v));
    }
}

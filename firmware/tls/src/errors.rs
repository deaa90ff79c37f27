//! mbedTLS 3.6's errors (with the verify flags, the peer's alert and the handshake state at
//! failure) mapped onto the chapter's "TLS Error Codes", and its states onto "TLS States".
//!
//! mbedTLS 3 merged most of 2.x's per-message errors (`BAD_HS_SERVER_HELLO`, ...) into
//! `DECODE_ERROR`, `ILLEGAL_PARAMETER` and `HANDSHAKE_FAILURE`: those, and any crypto
//! failure inside a handshake message, take the chapter's `BAD_HS_*` code of the message
//! the handshake was at ([`by_state`]).

use gecko_core::tls::{TlsCode, state};
use mbedtls_rs_sys as sys;

/// Which side of the handshake the module was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Everything known about one failure, for [`map_error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// mbedTLS's (negative) error code, high- and low-level parts combined as it returns it.
    pub error: i32,
    /// The chapter's state at failure (see [`chapter_state`]).
    pub state: u8,
    pub side: Side,
    /// `MBEDTLS_X509_BADCERT_*` flags of the peer's certificate.
    pub verify_flags: u32,
    /// The description of the peer's fatal alert, when `error` is `FATAL_ALERT_MESSAGE`.
    pub alert: Option<u8>,
    /// Whether the module had a certificate of its own to send.
    pub own_cert: bool,
}

/// Every row of the chapter's table and what makes it, in the table's order: the mapping
/// [`map_error`] implements, for the spec inventory.
pub const ROWS: [(TlsCode, &str); 41] = [
    (TlsCode::Timeout, "MBEDTLS_ERR_SSL_TIMEOUT (a read timeout; the engine sets none)"),
    (
        TlsCode::ReceiveFailed,
        "MBEDTLS_ERR_SSL_CONN_EOF: the TCP connection ended during the handshake",
    ),
    (
        TlsCode::AlertNoCertificate,
        "as client, the server's fatal no_certificate/bad_certificate/unsupported_certificate/certificate_required alert, or handshake_failure after our flight when we had no certificate",
    ),
    (TlsCode::OutOfMemory, "any *_ALLOC_FAILED (the heap budget refused a block)"),
    (
        TlsCode::FeatureUnavailable,
        "*_FEATURE_UNAVAILABLE (SSL, PK, ECP, MD, X.509, PEM); a TlsConfig::max_version below TLS 1.2",
    ),
    (
        TlsCode::BadInputData,
        "SSL_BAD_INPUT_DATA; a CA, certificate or key that does not parse (X.509, PEM, PK, ASN.1 errors at setup)",
    ),
    (
        TlsCode::InvalidMac,
        "SSL_INVALID_MAC, CIPHER_AUTH_FAILED, GCM_AUTH_FAILED: a record that fails its MAC/tag",
    ),
    (TlsCode::InvalidRecord, "SSL_INVALID_RECORD: a record header that is not TLS"),
    (
        TlsCode::InvalidModulusSize,
        "verify flag BADCERT_BAD_KEY: the peer's key is too short (RSA < 2048 bits)",
    ),
    (TlsCode::UnknownCipher, "CIPHER_FEATURE_UNAVAILABLE"),
    (
        TlsCode::NoCipherChosen,
        "as server, SSL_HANDSHAKE_FAILURE while reading the ClientHello: no suite in common",
    ),
    (TlsCode::NoSessionFound, "SSL_CACHE_ENTRY_NOT_FOUND, SSL_SESSION_TICKET_EXPIRED"),
    (
        TlsCode::NoClientCertificate,
        "SSL_NO_CLIENT_CERTIFICATE: as server with Verify::Required, the client sent none",
    ),
    (
        TlsCode::CertificateTooLarge,
        "SSL_BUFFER_TOO_SMALL: our certificate chain does not fit a record",
    ),
    (TlsCode::CertificateRequired, "a server session without a certificate (checked at setup)"),
    (
        TlsCode::PrivateKeyRequired,
        "SSL_PRIVATE_KEY_REQUIRED; a certificate without a key (checked at setup)",
    ),
    (TlsCode::CaChainRequired, "SSL_CA_CHAIN_REQUIRED: Verify::Required without a CA"),
    (TlsCode::UnexpectedMessage, "SSL_UNEXPECTED_MESSAGE, SSL_UNEXPECTED_RECORD"),
    (TlsCode::FatalAlertMessage, "SSL_FATAL_ALERT_MESSAGE: any other fatal alert from the peer"),
    (
        TlsCode::PeerVerifyFailed,
        "X509_CERT_VERIFY_FAILED or SSL_BAD_CERTIFICATE with verify flags other than the ones below (key usage, extended key usage, signature hash or key type not allowed, ...)",
    ),
    (TlsCode::PeerCloseNotify, "SSL_PEER_CLOSE_NOTIFY: close_notify during the handshake"),
    (
        TlsCode::BadHsClientHello,
        "decode/parameter/handshake/version errors in state 1 (CLIENT_HELLO), except a server's no suite in common",
    ),
    (
        TlsCode::BadHsServerHello,
        "... in state 2 (SERVER_HELLO); also the server's handshake_failure alert (not that: 5032)",
    ),
    (TlsCode::BadHsCertificate, "... in states 3 and 7 (SERVER_CERTIFICATE, CLIENT_CERTIFICATE)"),
    (
        TlsCode::BadHsCertificateRequest,
        "... in state 5 (CERTIFICATE_REQUEST; mbedTLS is already in 6 when it parses the message, the session reports 5)",
    ),
    (
        TlsCode::BadHsServerKeyExchange,
        "... in state 4 (SERVER_KEY_EXCHANGE), a bad signature included",
    ),
    (TlsCode::BadHsServerHelloDone, "... in state 6 (SERVER_HELLO_DONE)"),
    (TlsCode::BadHsClientKeyExchange, "... in state 8 (CLIENT_KEY_EXCHANGE)"),
    (
        TlsCode::BadHsCertificateVerify,
        "... in state 9 (CERTIFICATE_VERIFY; mbedTLS is already in 10 when it parses the message, the session reports 9)",
    ),
    (TlsCode::BadHsChangeCipherSpec, "... in states 10 and 12 (CHANGE_CIPHER_SPEC)"),
    (TlsCode::BadHsFinished, "... in states 11 and 13 (FINISHED)"),
    (TlsCode::HandshakeTimeout, "never: the core's handshake timer"),
    (
        TlsCode::HandshakeError,
        "as client, the server's handshake_failure alert in answer to the ClientHello (no suite in common); SSL_INTERNAL_ERROR and other errors outside a handshake message",
    ),
    (TlsCode::InitFail, "SSL_BAD_CONFIG, SSL_NO_RNG, CTR_DRBG_ENTROPY_SOURCE_FAILED"),
    (
        TlsCode::BadMessage,
        "SSL_DECODE_ERROR / SSL_ILLEGAL_PARAMETER after the handshake (mbedTLS 3.6 raises neither there)",
    ),
    (TlsCode::UntrustedCertificate, "verify flag BADCERT_NOT_TRUSTED"),
    (
        TlsCode::ExpiredCertificate,
        "verify flags BADCERT_EXPIRED / BADCERT_FUTURE (against TlsConfig::now_utc)",
    ),
    (TlsCode::CertificateNameMismatch, "verify flag BADCERT_CN_MISMATCH"),
    (TlsCode::CertificateRevoked, "verify flag BADCERT_REVOKED"),
    (TlsCode::NoData, "never"),
    (TlsCode::UnsupportedExtension, "SSL_UNSUPPORTED_EXTENSION"),
];

/// The rows no session of this engine can produce, and why.
pub const UNREACHABLE: &[(TlsCode, &str)] = &[
    (
        TlsCode::Timeout,
        "the BIO never blocks and no read timeout is set; the core owns every timeout",
    ),
    (
        TlsCode::UnknownCipher,
        "every cipher of the 12 suites is compiled in; a suite outside the offer is an ILLEGAL_PARAMETER while the ServerHello is read",
    ),
    (TlsCode::NoSessionFound, "no session cache and no tickets: nothing is ever resumed"),
    (
        TlsCode::BadHsChangeCipherSpec,
        "mbedTLS's record layer rejects a malformed ChangeCipherSpec (5007) and the handshake a wrong message there (5017) before a state-10/12 error can arise",
    ),
    (TlsCode::HandshakeTimeout, "made by the core's handshake timer, not by the engine"),
    (
        TlsCode::InitFail,
        "setup inputs are checked before mbedTLS sees them and the platform's randomness cannot fail",
    ),
    (
        TlsCode::CertificateRevoked,
        "TlsConfig carries no CRL, so mbedTLS never sets BADCERT_REVOKED",
    ),
    (
        TlsCode::BadMessage,
        "TLS 1.2 in mbedTLS 3.6 raises DECODE_ERROR and ILLEGAL_PARAMETER only inside a handshake message (5021-5030); after the handshake a bad record is INVALID_RECORD or INVALID_MAC, a handshake message UNEXPECTED_MESSAGE or a refused renegotiation",
    ),
    (
        TlsCode::NoData,
        "mbedTLS 3.6 has no such error: no input is WANT_READ, the end of the TCP stream is 5001 or a close",
    ),
];

const SSL_ALLOC: [i32; 10] = [
    sys::MBEDTLS_ERR_SSL_ALLOC_FAILED,
    sys::MBEDTLS_ERR_MPI_ALLOC_FAILED,
    sys::MBEDTLS_ERR_ECP_ALLOC_FAILED,
    sys::MBEDTLS_ERR_PK_ALLOC_FAILED,
    sys::MBEDTLS_ERR_X509_ALLOC_FAILED,
    sys::MBEDTLS_ERR_ASN1_ALLOC_FAILED,
    sys::MBEDTLS_ERR_PEM_ALLOC_FAILED,
    sys::MBEDTLS_ERR_DHM_ALLOC_FAILED,
    sys::MBEDTLS_ERR_MD_ALLOC_FAILED,
    sys::MBEDTLS_ERR_CIPHER_ALLOC_FAILED,
];

/// The two parts of a combined mbedTLS error: high level (-0x1000..) and low level (-0x7F..).
fn parts(error: i32) -> (i32, i32) {
    let e = error.unsigned_abs();
    (-((e & 0xFF80) as i32), -((e & 0x7F) as i32))
}

/// Whether `code` (a high-level code) belongs to a module by its number range.
fn in_range(code: i32, lo: i32, hi: i32) -> bool {
    (lo..=hi).contains(&-code)
}

/// The chapter's code for one failure (see [`ROWS`] for the table as prose).
pub fn map_error(f: &Failure) -> TlsCode {
    use TlsCode as C;
    let (high, low) = parts(f.error);
    let is = |code: i32| f.error == code || high == code || (low != 0 && low == code);
    if SSL_ALLOC.iter().any(|&c| is(c)) {
        return C::OutOfMemory;
    }
    if f.error == sys::MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE {
        return alert_code(f);
    }
    if (is(sys::MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
        || f.error == sys::MBEDTLS_ERR_SSL_BAD_CERTIFICATE)
        && f.verify_flags != 0
    {
        return verify_code(f.verify_flags);
    }
    match f.error {
        sys::MBEDTLS_ERR_X509_CERT_VERIFY_FAILED => return C::PeerVerifyFailed,
        sys::MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE => return C::NoClientCertificate,
        sys::MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED => return C::CaChainRequired,
        sys::MBEDTLS_ERR_SSL_PRIVATE_KEY_REQUIRED => return C::PrivateKeyRequired,
        sys::MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY => return C::PeerCloseNotify,
        sys::MBEDTLS_ERR_SSL_CONN_EOF => return C::ReceiveFailed,
        sys::MBEDTLS_ERR_SSL_INVALID_MAC
        | sys::MBEDTLS_ERR_CIPHER_AUTH_FAILED
        | sys::MBEDTLS_ERR_GCM_AUTH_FAILED => {
            return C::InvalidMac;
        }
        sys::MBEDTLS_ERR_SSL_INVALID_RECORD => return C::InvalidRecord,
        sys::MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE | sys::MBEDTLS_ERR_SSL_UNEXPECTED_RECORD => {
            return C::UnexpectedMessage;
        }
        sys::MBEDTLS_ERR_SSL_TIMEOUT => return C::Timeout,
        sys::MBEDTLS_ERR_CIPHER_FEATURE_UNAVAILABLE => return C::UnknownCipher,
        sys::MBEDTLS_ERR_SSL_CACHE_ENTRY_NOT_FOUND
        | sys::MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED => {
            return C::NoSessionFound;
        }
        sys::MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL => return C::CertificateTooLarge,
        sys::MBEDTLS_ERR_SSL_UNSUPPORTED_EXTENSION => return C::UnsupportedExtension,
        sys::MBEDTLS_ERR_SSL_BAD_CONFIG
        | sys::MBEDTLS_ERR_SSL_NO_RNG
        | sys::MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED => {
            return C::InitFail;
        }
        sys::MBEDTLS_ERR_SSL_BAD_INPUT_DATA => return C::BadInputData,
        _ => {}
    }
    const FEATURE: [i32; 6] = [
        sys::MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE,
        sys::MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE,
        sys::MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE,
        sys::MBEDTLS_ERR_MD_FEATURE_UNAVAILABLE,
        sys::MBEDTLS_ERR_X509_FEATURE_UNAVAILABLE,
        sys::MBEDTLS_ERR_PEM_FEATURE_UNAVAILABLE,
    ];
    if FEATURE.contains(&high) {
        return C::FeatureUnavailable;
    }
    // Parsing the module's own CA, certificate or key (before any handshake message).
    let parse_error = in_range(high, 0x1080, 0x1480) // PEM
        || in_range(high, 0x2080, 0x2980) // X.509
        || in_range(high, 0x3880, 0x3F80) // PK
        || (high == 0 && in_range(low, 0x60, 0x6C)); // ASN.1
    if parse_error && f.state == state::HELLO_REQUEST {
        return C::BadInputData;
    }
    if matches!(f.error, sys::MBEDTLS_ERR_SSL_DECODE_ERROR | sys::MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER)
        && f.state >= state::FLUSH_BUFFERS
    {
        return C::BadMessage;
    }
    if f.error == sys::MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE
        && f.side == Side::Server
        && f.state == state::CLIENT_HELLO
    {
        return C::NoCipherChosen;
    }
    by_state(f.state)
}

/// The `BAD_HS_*` code of the handshake message the chapter's `state` reads or writes;
/// [`TlsCode::HandshakeError`] outside the messages.
pub fn by_state(chapter_state: u8) -> TlsCode {
    use TlsCode as C;
    match chapter_state {
        state::CLIENT_HELLO => C::BadHsClientHello,
        state::SERVER_HELLO => C::BadHsServerHello,
        state::SERVER_CERTIFICATE | state::CLIENT_CERTIFICATE => C::BadHsCertificate,
        state::SERVER_KEY_EXCHANGE => C::BadHsServerKeyExchange,
        state::CERTIFICATE_REQUEST => C::BadHsCertificateRequest,
        state::SERVER_HELLO_DONE => C::BadHsServerHelloDone,
        state::CLIENT_KEY_EXCHANGE => C::BadHsClientKeyExchange,
        state::CERTIFICATE_VERIFY => C::BadHsCertificateVerify,
        state::CLIENT_CHANGE_CIPHER_SPEC | state::SERVER_CHANGE_CIPHER_SPEC => {
            C::BadHsChangeCipherSpec
        }
        state::CLIENT_FINISHED | state::SERVER_FINISHED => C::BadHsFinished,
        _ => C::HandshakeError,
    }
}

/// The peer's fatal alert.
fn alert_code(f: &Failure) -> TlsCode {
    const HANDSHAKE_FAILURE: u8 = sys::MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE as u8;
    const ABOUT_OUR_CERT: [u8; 4] = [
        sys::MBEDTLS_SSL_ALERT_MSG_NO_CERT as u8,
        sys::MBEDTLS_SSL_ALERT_MSG_BAD_CERT as u8,
        sys::MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT as u8,
        sys::MBEDTLS_SSL_ALERT_MSG_CERT_REQUIRED as u8,
    ];
    match (f.side, f.alert) {
        // A server complains about a certificate: ours (it asked for one).
        (Side::Client, Some(a)) if ABOUT_OUR_CERT.contains(&a) => TlsCode::AlertNoCertificate,
        // A TLS 1.2 server that required a certificate we did not have.
        (Side::Client, Some(HANDSHAKE_FAILURE))
            if !f.own_cert && f.state >= state::CLIENT_CERTIFICATE =>
        {
            TlsCode::AlertNoCertificate
        }
        // The server's answer to our ClientHello: nothing in common.
        (Side::Client, Some(HANDSHAKE_FAILURE)) if f.state == state::SERVER_HELLO => {
            TlsCode::HandshakeError
        }
        _ => TlsCode::FatalAlertMessage,
    }
}

/// Verification flags, most telling first.
fn verify_code(flags: u32) -> TlsCode {
    if flags & sys::MBEDTLS_X509_BADCERT_REVOKED != 0 {
        TlsCode::CertificateRevoked
    } else if flags & sys::MBEDTLS_X509_BADCERT_NOT_TRUSTED != 0 {
        TlsCode::UntrustedCertificate
    } else if flags & (sys::MBEDTLS_X509_BADCERT_EXPIRED | sys::MBEDTLS_X509_BADCERT_FUTURE) != 0 {
        TlsCode::ExpiredCertificate
    } else if flags & sys::MBEDTLS_X509_BADCERT_CN_MISMATCH != 0 {
        TlsCode::CertificateNameMismatch
    } else if flags & sys::MBEDTLS_X509_BADCERT_BAD_KEY != 0 {
        TlsCode::InvalidModulusSize
    } else {
        TlsCode::PeerVerifyFailed
    }
}

/// mbedTLS's `mbedtls_ssl_states` on the chapter's 0..15: the same up to FLUSH_BUFFERS;
/// the server's NewSessionTicket belongs to its ChangeCipherSpec flight; wrap-up and
/// everything after is HANDSHAKE_OVER.
pub fn chapter_state(mbedtls_state: i32) -> u8 {
    match mbedtls_state {
        s @ 0..=14 => s as u8,
        s if s == sys::mbedtls_ssl_states_MBEDTLS_SSL_NEW_SESSION_TICKET as i32 => {
            state::SERVER_CHANGE_CIPHER_SPEC
        }
        _ => state::HANDSHAKE_OVER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use sys::*;

    const NO_ALERT: Option<u8> = None;

    fn client(error: i32, state: u8) -> Failure {
        Failure {
            error,
            state,
            side: Side::Client,
            verify_flags: 0,
            alert: NO_ALERT,
            own_cert: false,
        }
    }

    fn server(error: i32, state: u8) -> Failure {
        Failure { side: Side::Server, ..client(error, state) }
    }

    fn verify(flags: u32) -> Failure {
        Failure {
            verify_flags: flags,
            ..client(MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, state::SERVER_CERTIFICATE)
        }
    }

    fn alert(alert: u8, state: u8, own_cert: bool) -> Failure {
        Failure {
            alert: Some(alert),
            own_cert,
            ..client(MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, state)
        }
    }

    /// One case per row of the chapter's table (and the variants of a row that differ).
    #[rstest]
    #[case(client(MBEDTLS_ERR_SSL_TIMEOUT, 2), TlsCode::Timeout)]
    #[case(client(MBEDTLS_ERR_SSL_CONN_EOF, 2), TlsCode::ReceiveFailed)]
    #[case(alert(42, 12, true), TlsCode::AlertNoCertificate)]
    #[case(alert(116, 12, true), TlsCode::AlertNoCertificate)]
    #[case(alert(40, 12, false), TlsCode::AlertNoCertificate)]
    #[case(client(MBEDTLS_ERR_SSL_ALLOC_FAILED, 0), TlsCode::OutOfMemory)]
    #[case(client(MBEDTLS_ERR_X509_INVALID_FORMAT + MBEDTLS_ERR_ASN1_ALLOC_FAILED, 0), TlsCode::OutOfMemory)]
    #[case(client(MBEDTLS_ERR_MPI_ALLOC_FAILED, 8), TlsCode::OutOfMemory)]
    #[case(client(MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE, 2), TlsCode::FeatureUnavailable)]
    #[case(client(MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE, 0), TlsCode::FeatureUnavailable)]
    #[case(client(MBEDTLS_ERR_SSL_BAD_INPUT_DATA, 0), TlsCode::BadInputData)]
    #[case(client(MBEDTLS_ERR_X509_INVALID_FORMAT + MBEDTLS_ERR_ASN1_UNEXPECTED_TAG, 0), TlsCode::BadInputData)]
    #[case(client(MBEDTLS_ERR_PEM_INVALID_DATA - 0x2C, 0), TlsCode::BadInputData)]
    #[case(client(MBEDTLS_ERR_PK_KEY_INVALID_FORMAT, 0), TlsCode::BadInputData)]
    #[case(client(MBEDTLS_ERR_SSL_INVALID_MAC, 15), TlsCode::InvalidMac)]
    #[case(client(MBEDTLS_ERR_SSL_INVALID_RECORD, 2), TlsCode::InvalidRecord)]
    #[case(verify(MBEDTLS_X509_BADCERT_BAD_KEY), TlsCode::InvalidModulusSize)]
    #[case(client(MBEDTLS_ERR_CIPHER_FEATURE_UNAVAILABLE, 10), TlsCode::UnknownCipher)]
    #[case(server(MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE, 1), TlsCode::NoCipherChosen)]
    #[case(client(MBEDTLS_ERR_SSL_CACHE_ENTRY_NOT_FOUND, 1), TlsCode::NoSessionFound)]
    #[case(server(MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE, 7), TlsCode::NoClientCertificate)]
    #[case(server(MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL, 3), TlsCode::CertificateTooLarge)]
    #[case(server(MBEDTLS_ERR_SSL_PRIVATE_KEY_REQUIRED, 4), TlsCode::PrivateKeyRequired)]
    #[case(client(MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED, 3), TlsCode::CaChainRequired)]
    #[case(client(MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE, 2), TlsCode::UnexpectedMessage)]
    #[case(client(MBEDTLS_ERR_SSL_UNEXPECTED_RECORD, 15), TlsCode::UnexpectedMessage)]
    #[case(alert(48, 8, true), TlsCode::FatalAlertMessage)]
    #[case(Failure { side: Side::Server, ..alert(42, 8, true) }, TlsCode::FatalAlertMessage)]
    #[case(alert(40, 12, true), TlsCode::FatalAlertMessage)]
    #[case(verify(MBEDTLS_X509_BADCERT_EXT_KEY_USAGE), TlsCode::PeerVerifyFailed)]
    #[case(client(MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, 3), TlsCode::PeerVerifyFailed)]
    #[case(client(MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY, 2), TlsCode::PeerCloseNotify)]
    #[case(server(MBEDTLS_ERR_SSL_DECODE_ERROR, 1), TlsCode::BadHsClientHello)]
    #[case(server(MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION, 1), TlsCode::BadHsClientHello)]
    #[case(client(MBEDTLS_ERR_SSL_DECODE_ERROR, 2), TlsCode::BadHsServerHello)]
    #[case(client(MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER, 2), TlsCode::BadHsServerHello)]
    #[case(client(MBEDTLS_ERR_SSL_BAD_CERTIFICATE, 3), TlsCode::BadHsCertificate)]
    #[case(server(MBEDTLS_ERR_SSL_DECODE_ERROR, 7), TlsCode::BadHsCertificate)]
    #[case(client(MBEDTLS_ERR_SSL_DECODE_ERROR, 5), TlsCode::BadHsCertificateRequest)]
    #[case(client(MBEDTLS_ERR_ECP_VERIFY_FAILED, 4), TlsCode::BadHsServerKeyExchange)]
    #[case(client(MBEDTLS_ERR_SSL_DECODE_ERROR, 6), TlsCode::BadHsServerHelloDone)]
    #[case(server(MBEDTLS_ERR_ECP_BAD_INPUT_DATA, 8), TlsCode::BadHsClientKeyExchange)]
    #[case(server(MBEDTLS_ERR_RSA_VERIFY_FAILED, 9), TlsCode::BadHsCertificateVerify)]
    #[case(client(MBEDTLS_ERR_SSL_DECODE_ERROR, 12), TlsCode::BadHsChangeCipherSpec)]
    #[case(client(MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE, 13), TlsCode::BadHsFinished)]
    #[case(server(MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE, 11), TlsCode::BadHsFinished)]
    #[case(alert(40, 2, false), TlsCode::HandshakeError)]
    #[case(client(MBEDTLS_ERR_SSL_INTERNAL_ERROR, 0), TlsCode::HandshakeError)]
    #[case(client(MBEDTLS_ERR_SSL_BAD_CONFIG, 0), TlsCode::InitFail)]
    #[case(client(MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED, 0), TlsCode::InitFail)]
    #[case(client(MBEDTLS_ERR_SSL_DECODE_ERROR, 15), TlsCode::BadMessage)]
    #[case(verify(MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_EXPIRED), TlsCode::UntrustedCertificate)]
    #[case(verify(MBEDTLS_X509_BADCERT_EXPIRED), TlsCode::ExpiredCertificate)]
    #[case(verify(MBEDTLS_X509_BADCERT_FUTURE | MBEDTLS_X509_BADCERT_CN_MISMATCH), TlsCode::ExpiredCertificate)]
    #[case(verify(MBEDTLS_X509_BADCERT_CN_MISMATCH), TlsCode::CertificateNameMismatch)]
    #[case(verify(MBEDTLS_X509_BADCERT_REVOKED | MBEDTLS_X509_BADCERT_NOT_TRUSTED), TlsCode::CertificateRevoked)]
    #[case(client(MBEDTLS_ERR_SSL_UNSUPPORTED_EXTENSION, 2), TlsCode::UnsupportedExtension)]
    fn map_error_row(#[case] failure: Failure, #[case] code: TlsCode) {
        assert_eq!(map_error(&failure), code, "{failure:?}");
    }

    #[test]
    fn rows_cover_the_chapters_table_in_order() {
        let codes: alloc::vec::Vec<TlsCode> = ROWS.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, TlsCode::ALL);
        for (code, why) in UNREACHABLE {
            assert!(codes.contains(code) && !why.is_empty());
        }
    }

    #[test]
    fn states_follow_the_chapter() {
        for s in 0..=14 {
            assert_eq!(chapter_state(s), s as u8);
        }
        assert_eq!(
            chapter_state(mbedtls_ssl_states_MBEDTLS_SSL_HANDSHAKE_WRAPUP as i32),
            state::HANDSHAKE_OVER
        );
        assert_eq!(
            chapter_state(mbedtls_ssl_states_MBEDTLS_SSL_HANDSHAKE_OVER as i32),
            state::HANDSHAKE_OVER
        );
        assert_eq!(
            chapter_state(mbedtls_ssl_states_MBEDTLS_SSL_NEW_SESSION_TICKET as i32),
            state::SERVER_CHANGE_CIPHER_SPEC
        );
    }
}

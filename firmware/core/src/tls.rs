//! TLS as the core sees it: the contract with the platform's TLS engine, the chapter's error
//! codes and handshake states, and its cipher suites.
//!
//! The engine is sans-IO like the core: a [`TlsSession`] takes the peer's ciphertext
//! ([`TlsSession::feed`]) and the module's plaintext ([`TlsSession::write`]) and hands back
//! ciphertext for the TCP connection ([`TlsSession::take_ciphertext`]) and the peer's
//! plaintext ([`TlsSession::take_plaintext`]). The core carries the ciphertext over its TCP
//! connections and owns every timeout (`network.tls.handshake_timeout`); the engine never
//! reads a clock: the module's time (`time.rtc`) comes in [`TlsConfig::now_utc`], so
//! certificate dates are checked against the module's clock, as on a real module.
//!
//! A platform hands its engine to the module with [`crate::Module::set_tls`]; a module with
//! none answers every TLS attempt with [`TlsCode::FeatureUnavailable`].

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

macro_rules! tls_codes {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $text:literal;)*) => {
        /// The chapter's "TLS Error Codes" table: the general code of `Error with TLS
        /// handshake: <code> ...`, one variant per row.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum TlsCode {
            $($(#[$doc])* $name,)*
        }

        impl TlsCode {
            /// Every row of the table, in its order.
            pub const ALL: &'static [TlsCode] = &[$(TlsCode::$name,)*];

            /// The number the module prints.
            pub const fn number(self) -> u16 {
                match self { $(TlsCode::$name => $num,)* }
            }

            /// The name in the chapter's table (`UNTRUSTED_CERTIFICATE`).
            pub const fn name(self) -> &'static str {
                match self { $(TlsCode::$name => $text,)* }
            }

            /// The code with this number.
            pub fn from_number(n: u16) -> Option<TlsCode> {
                Self::ALL.iter().copied().find(|c| c.number() == n)
            }
        }
    };
}

tls_codes! {
    Timeout = 2, "TIMEOUT";
    ReceiveFailed = 5001, "RECEIVE_FAILED";
    AlertNoCertificate = 5002, "ALERT_NO_CERTIFICATE";
    OutOfMemory = 5003, "ERROR_OUT_OF_MEMORY";
    FeatureUnavailable = 5004, "ERROR_FEATURE_UNAVAILABLE";
    BadInputData = 5005, "ERROR_BAD_INPUT_DATA";
    InvalidMac = 5006, "ERROR_INVALID_MAC";
    InvalidRecord = 5007, "ERROR_INVALID_RECORD";
    InvalidModulusSize = 5008, "ERROR_INVALID_MODULUS_SIZE";
    UnknownCipher = 5009, "ERROR_UNKNOWN_CIPHER";
    NoCipherChosen = 5010, "ERROR_NO_CIPHER_CHOSEN";
    NoSessionFound = 5011, "ERROR_NO_SESSION_FOUND";
    NoClientCertificate = 5012, "ERROR_NO_CLIENT_CERTIFICATE";
    CertificateTooLarge = 5013, "ERROR_CERTIFICATE_TOO_LARGE";
    CertificateRequired = 5014, "ERROR_CERTIFICATE_REQUIRED";
    PrivateKeyRequired = 5015, "ERROR_PRIVATE_KEY_REQUIRED";
    CaChainRequired = 5016, "ERROR_CA_CHAIN_REQUIRED";
    UnexpectedMessage = 5017, "ERROR_UNEXPECTED_MESSAGE";
    FatalAlertMessage = 5018, "ERROR_FATAL_ALERT_MESSAGE";
    PeerVerifyFailed = 5019, "ERROR_PEER_VERIFY_FAILED";
    PeerCloseNotify = 5020, "ERROR_PEER_CLOSE_NOTIFY";
    BadHsClientHello = 5021, "ERROR_BAD_HS_CLIENT_HELLO";
    BadHsServerHello = 5022, "ERROR_BAD_HS_SERVER_HELLO";
    BadHsCertificate = 5023, "ERROR_BAD_HS_CERTIFICATE";
    BadHsCertificateRequest = 5024, "ERROR_BAD_HS_CERTIFICATE_REQUEST";
    BadHsServerKeyExchange = 5025, "ERROR_BAD_HS_SERVER_KEY_EXCHANGE";
    BadHsServerHelloDone = 5026, "ERROR_BAD_HS_SERVER_HELLO_DONE";
    BadHsClientKeyExchange = 5027, "ERROR_BAD_HS_CLIENT_KEY_EXCHANGE";
    BadHsCertificateVerify = 5028, "ERROR_BAD_HS_CERTIFICATE_VERIFY";
    BadHsChangeCipherSpec = 5029, "ERROR_BAD_HS_CHANGE_CIPHER_SPEC";
    BadHsFinished = 5030, "ERROR_BAD_HS_FINISHED";
    HandshakeTimeout = 5031, "HANDSHAKE_TIMEOUT";
    HandshakeError = 5032, "HANDSHAKE_ERROR";
    InitFail = 5033, "INIT_FAIL";
    BadMessage = 5034, "BAD_MESSAGE";
    UntrustedCertificate = 5035, "UNTRUSTED_CERTIFICATE";
    ExpiredCertificate = 5036, "EXPIRED_CERTIFICATE";
    CertificateNameMismatch = 5037, "CERTIFICATE_NAME_MISMATCH";
    CertificateRevoked = 5038, "CERTIFICATE_REVOKED";
    NoData = 5039, "NO_DATA";
    UnsupportedExtension = 5040, "ERROR_UNSUPPORTED_EXTENSION";
}

/// The chapter's "TLS States" table: where the handshake was when it failed. The engine
/// maps its own state machine onto these numbers (mbedTLS's `mbedtls_ssl_states` follow the
/// same order up to 14; everything after the last flight is 15).
pub mod state {
    pub const HELLO_REQUEST: u8 = 0;
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const SERVER_CERTIFICATE: u8 = 3;
    pub const SERVER_KEY_EXCHANGE: u8 = 4;
    pub const CERTIFICATE_REQUEST: u8 = 5;
    pub const SERVER_HELLO_DONE: u8 = 6;
    pub const CLIENT_CERTIFICATE: u8 = 7;
    pub const CLIENT_KEY_EXCHANGE: u8 = 8;
    pub const CERTIFICATE_VERIFY: u8 = 9;
    pub const CLIENT_CHANGE_CIPHER_SPEC: u8 = 10;
    pub const CLIENT_FINISHED: u8 = 11;
    pub const SERVER_CHANGE_CIPHER_SPEC: u8 = 12;
    pub const SERVER_FINISHED: u8 = 13;
    pub const FLUSH_BUFFERS: u8 = 14;
    pub const HANDSHAKE_OVER: u8 = 15;

    /// The names, by number.
    pub const NAMES: [&str; 16] = [
        "SSL_HELLO_REQUEST",
        "SSL_CLIENT_HELLO",
        "SSL_SERVER_HELLO",
        "SSL_SERVER_CERTIFICATE",
        "SSL_SERVER_KEY_EXCHANGE",
        "SSL_CERTIFICATE_REQUEST",
        "SSL_SERVER_HELLO_DONE",
        "SSL_CLIENT_CERTIFICATE",
        "SSL_CLIENT_KEY_EXCHANGE",
        "SSL_CERTIFICATE_VERIFY",
        "SSL_CLIENT_CHANGE_CIPHER_SPEC",
        "SSL_CLIENT_FINISHED",
        "SSL_SERVER_CHANGE_CIPHER_SPEC",
        "SSL_SERVER_FINISHED",
        "SSL_FLUSH_BUFFERS",
        "SSL_HANDSHAKE_OVER",
    ];
}

/// Why a TLS session failed: the chapter's code, the handshake state (see [`state`]) and the
/// engine's own error number (mbedTLS: its negative error code), printed for debugging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlsFailure {
    pub code: TlsCode,
    pub state: u8,
    pub internal: i32,
}

impl TlsFailure {
    pub const fn new(code: TlsCode, state: u8, internal: i32) -> Self {
        Self { code, state, internal }
    }
}

impl fmt::Display for TlsFailure {
    /// The chapter's TLS Error Format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error with TLS handshake: {} (state: {}, code: {})",
            self.code.number(),
            self.state,
            self.internal
        )
    }
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Tls1_0,
    Tls1_1,
    Tls1_2,
}

impl TlsVersion {
    /// The name the module logs (`TLSv1.2`).
    pub const fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls1_0 => "TLSv1.0",
            TlsVersion::Tls1_1 => "TLSv1.1",
            TlsVersion::Tls1_2 => "TLSv1.2",
        }
    }
}

/// One of the chapter's cipher suites: its IANA number and its name as the chapter writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Suite {
    pub id: u16,
    pub name: &'static str,
}

/// The chapter's "Supported TLS Cipher Suites", in its order: exactly what the module offers
/// as a client and accepts as a server.
pub const SUITES: [Suite; 12] = [
    Suite { id: 0xC02B, name: "MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
    Suite { id: 0xC02F, name: "MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
    Suite { id: 0xC023, name: "MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" },
    Suite { id: 0xC009, name: "MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" },
    Suite { id: 0xC00A, name: "MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA" },
    Suite { id: 0xC013, name: "MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" },
    Suite { id: 0x006B, name: "MBEDTLS_TLS_DHE_RSA_WITH_AES_256_CBC_SHA256" },
    Suite { id: 0x0039, name: "MBEDTLS_TLS_DHE_RSA_WITH_AES_256_CBC_SHA" },
    Suite { id: 0x003D, name: "MBEDTLS_TLS_RSA_WITH_AES_256_CBC_SHA256" },
    Suite { id: 0x0035, name: "MBEDTLS_TLS_RSA_WITH_AES_256_CBC_SHA" },
    Suite { id: 0x003C, name: "MBEDTLS_TLS_RSA_WITH_AES_128_CBC_SHA256" },
    Suite { id: 0x002F, name: "MBEDTLS_TLS_RSA_WITH_AES_128_CBC_SHA" },
];

/// The suite with this IANA number, if it is one of the chapter's.
pub fn suite(id: u16) -> Option<Suite> {
    SUITES.iter().copied().find(|s| s.id == id)
}

/// Which side of the handshake the module is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// `server_name`: the name the peer's certificate must carry (and the SNI sent), when
    /// the module connected by name; `None` when it connected to an address.
    Client {
        server_name: Option<String>,
    },
    Server,
}

/// How the peer's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Not asked for (server) or not checked (client with `ca_cert_verify_enabled` off).
    None,
    /// Asked for and checked against [`TlsConfig::ca`]; the handshake fails without one.
    Required,
}

/// What one session is made from: everything is data the core read from its variables and
/// its file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    pub role: Role,
    /// Trusted certificates (PEM, one or more, or DER), if any.
    pub ca: Option<Vec<u8>>,
    pub verify: Verify,
    /// The module's own certificate chain (PEM or DER) and private key, if any (a server
    /// needs them; a client sends them when the server asks).
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    /// The highest version offered or accepted (`network.tls.version`).
    pub max_version: TlsVersion,
    /// The module's clock (`time.rtc`), seconds since 1970 UTC: certificate dates are
    /// checked against it.
    pub now_utc: u64,
}

/// What a session did with what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The handshake goes on; it waits for the peer.
    Handshaking,
    /// The handshake is over: application data flows.
    Established,
    /// The session failed; its alert (if any) is in [`TlsSession::take_ciphertext`].
    Failed(TlsFailure),
    /// The peer sent close_notify after the handshake.
    Closed,
}

/// One TLS session over one TCP connection, driven by the core.
pub trait TlsSession {
    /// Starts the handshake (a client's ClientHello is then in the ciphertext).
    fn start(&mut self) -> Progress;
    /// Hands the engine bytes the peer sent, and drives the handshake or decrypts.
    fn feed(&mut self, ciphertext: &[u8]) -> Progress;
    /// The TCP connection ended (the peer closed or reset it): the progress after that
    /// (during the handshake a failure).
    fn eof(&mut self) -> Progress;
    /// Encrypts application data (only once established).
    fn write(&mut self, plaintext: &[u8]) -> Result<(), TlsFailure>;
    /// Queues close_notify.
    fn close_notify(&mut self);
    /// Ciphertext for the peer, oldest first.
    fn take_ciphertext(&mut self) -> Vec<u8>;
    /// The peer's application data decrypted so far.
    fn take_plaintext(&mut self) -> Vec<u8>;
    /// Where the handshake is (see [`state`]).
    fn state(&self) -> u8;
    /// The negotiated suite and version, once established.
    fn negotiated(&self) -> Option<(Suite, TlsVersion)>;
    /// Whether the engine was refused memory during this session: the module then logs
    /// `TLS malloc failed` whatever code the failure carries (mbedTLS turns some refusals
    /// into other errors, as the chapter's own example shows: 5035 after it).
    fn alloc_failed(&self) -> bool {
        false
    }
}

/// The platform's TLS stack: makes sessions.
pub trait TlsEngine {
    /// A session for `config`, or why none can be made (a certificate or key that does not
    /// parse, no memory, a version the engine cannot speak).
    fn session(&mut self, config: &TlsConfig) -> Result<Box<dyn TlsSession>, TlsFailure>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn the_table_has_41_codes_with_distinct_numbers() {
        assert_eq!(TlsCode::ALL.len(), 41);
        for (i, a) in TlsCode::ALL.iter().enumerate() {
            assert_eq!(TlsCode::from_number(a.number()), Some(*a));
            assert!(TlsCode::ALL[i + 1..].iter().all(|b| b.number() != a.number()));
        }
        assert_eq!(TlsCode::UntrustedCertificate.number(), 5035);
        assert_eq!(TlsCode::ExpiredCertificate.name(), "EXPIRED_CERTIFICATE");
    }

    #[test]
    fn failure_prints_the_chapters_format() {
        let f = TlsFailure::new(TlsCode::UntrustedCertificate, state::SERVER_CERTIFICATE, -9984);
        assert_eq!(f.to_string(), "Error with TLS handshake: 5035 (state: 3, code: -9984)");
    }

    #[test]
    fn suites_are_the_chapters_twelve() {
        assert_eq!(SUITES.len(), 12);
        assert_eq!(suite(0x002F).map(|s| s.name), Some("MBEDTLS_TLS_RSA_WITH_AES_128_CBC_SHA"));
        assert_eq!(suite(0x1301), None);
    }
}

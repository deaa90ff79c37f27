//! The module firmware's TLS engine: [`gecko_core::tls`]'s sans-IO contract over mbedTLS
//! 3.6 LTS, limited to what the chapter supports that mbedTLS 3 can speak: TLS 1.2 with
//! exactly the chapter's 12 suites, certificates checked against the module's clock.
//!
//! All C calls live in one module (`ffi_glue`); the rest is safe Rust. Failures carry the
//! chapter's code from [`map_error`] (the table is [`errors::ROWS`]), the chapter's state
//! ([`chapter_state`]) and mbedTLS's own error number.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

mod errors;
mod ffi_glue;
mod heap;
pub mod time;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use gecko_core::tls::{
    self, Progress, Role, Suite, TlsCode, TlsConfig, TlsEngine, TlsFailure, TlsSession, TlsVersion,
    Verify,
};
use mbedtls_rs_sys as sys;

pub use errors::{Failure, ROWS, Side, UNREACHABLE, by_state, chapter_state, map_error};
pub use heap::{heap_in_use, heap_peak, heap_refusals, reset_heap_peak, set_heap_budget};

use ffi_glue::{Params, SEED_LEN, Ssl};

/// The platform's randomness (OS randomness in the simulated module, a board's hardware RNG).
pub type Rng = Box<dyn FnMut(&mut [u8]) + Send>;

#[cfg(feature = "keylog")]
type KeylogSink =
    alloc::sync::Arc<critical_section::Mutex<core::cell::RefCell<Box<dyn FnMut(&str) + Send>>>>;

/// The engine: makes mbedTLS sessions from [`TlsConfig`]s.
pub struct MbedTls {
    rng: Rng,
    #[cfg(feature = "keylog")]
    keylog: Option<KeylogSink>,
}

impl core::fmt::Debug for MbedTls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MbedTls").finish_non_exhaustive()
    }
}

impl MbedTls {
    /// An engine drawing each session's DRBG seed from `rng`.
    pub fn new(rng: Rng) -> Self {
        Self {
            rng,
            #[cfg(feature = "keylog")]
            keylog: None,
        }
    }

    /// Lab builds only: every later session hands `sink` one NSS key log line
    /// (`CLIENT_RANDOM <client random> <master secret>`, hex) once its keys exist, so
    /// captures can be decrypted (Wireshark's "(Pre)-Master-Secret log").
    #[cfg(feature = "keylog")]
    pub fn set_keylog(&mut self, sink: Box<dyn FnMut(&str) + Send>) {
        self.keylog = Some(alloc::sync::Arc::new(critical_section::Mutex::new(
            core::cell::RefCell::new(sink),
        )));
    }

    fn keylog_enabled(&self) -> bool {
        #[cfg(feature = "keylog")]
        {
            self.keylog.is_some()
        }
        #[cfg(not(feature = "keylog"))]
        {
            false
        }
    }
}

/// The NSS key log line of a TLS 1.2 session.
pub(crate) fn keylog_line(client_random: &[u8], master_secret: &[u8]) -> String {
    use core::fmt::Write;
    let mut line = String::from("CLIENT_RANDOM ");
    for b in client_random {
        let _ = write!(line, "{b:02x}");
    }
    line.push(' ');
    for b in master_secret {
        let _ = write!(line, "{b:02x}");
    }
    line
}

impl TlsEngine for MbedTls {
    /// A session for `config`. mbedTLS 3 cannot speak TLS 1.0 or 1.1 (RFC 8996 removed
    /// them), so a `max_version` below 1.2 fails with [`TlsCode::FeatureUnavailable`] (a
    /// known deviation from the chapter's "TLS 1.0 to TLS 1.2").
    fn session(&mut self, config: &TlsConfig) -> Result<Box<dyn TlsSession>, TlsFailure> {
        let setup_failure =
            |code, internal| TlsFailure::new(code, tls::state::HELLO_REQUEST, internal);
        if config.max_version < TlsVersion::Tls1_2 {
            return Err(setup_failure(
                TlsCode::FeatureUnavailable,
                sys::MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE,
            ));
        }
        let (side, hostname) = match &config.role {
            Role::Client { server_name } => (Side::Client, server_name.as_deref()),
            Role::Server => (Side::Server, None),
        };
        if side == Side::Server && config.cert.is_none() {
            return Err(setup_failure(
                TlsCode::CertificateRequired,
                sys::MBEDTLS_ERR_SSL_BAD_CONFIG,
            ));
        }
        if config.cert.is_some() && config.key.is_none() {
            return Err(setup_failure(
                TlsCode::PrivateKeyRequired,
                sys::MBEDTLS_ERR_SSL_PRIVATE_KEY_REQUIRED,
            ));
        }
        if hostname.is_some_and(|h| h.contains('\0')) {
            return Err(setup_failure(TlsCode::BadInputData, sys::MBEDTLS_ERR_SSL_BAD_INPUT_DATA));
        }
        let mut seed = [0u8; SEED_LEN];
        (self.rng)(&mut seed);
        let params = Params {
            server: side == Side::Server,
            ca: config.ca.as_deref(),
            cert: config.cert.as_deref(),
            key: config.key.as_deref(),
            verify_required: config.verify == Verify::Required,
            hostname,
            now_utc: config.now_utc,
            seed,
            keylog: self.keylog_enabled(),
        };
        let own_cert = config.cert.is_some();
        let refusals = heap_refusals();
        let ssl = Ssl::new(&params).map_err(|error| {
            let failure = Failure {
                error,
                state: tls::state::HELLO_REQUEST,
                side,
                verify_flags: 0,
                alert: None,
                own_cert,
            };
            setup_failure(map_error(&failure), error)
        })?;
        Ok(Box::new(MbedTlsSession {
            ssl,
            side,
            own_cert,
            phase: Phase::Handshaking,
            plaintext: Vec::new(),
            refusals,
            #[cfg(feature = "keylog")]
            keylog: self.keylog.clone(),
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Established,
    Failed(TlsFailure),
    Closed,
}

/// One sans-IO mbedTLS session.
pub struct MbedTlsSession {
    ssl: Ssl,
    side: Side,
    own_cert: bool,
    phase: Phase,
    plaintext: Vec<u8>,
    /// The engine's count of refused allocations when the session began: one more since
    /// means this session (or one beside it) was refused memory.
    refusals: usize,
    #[cfg(feature = "keylog")]
    keylog: Option<KeylogSink>,
}

impl core::fmt::Debug for MbedTlsSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MbedTlsSession")
            .field("side", &self.side)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl MbedTlsSession {
    fn progress(&self) -> Progress {
        match self.phase {
            Phase::Handshaking => Progress::Handshaking,
            Phase::Established => Progress::Established,
            Phase::Failed(f) => Progress::Failed(f),
            Phase::Closed => Progress::Closed,
        }
    }

    /// Records the failure of an mbedTLS call; its alert (if any) is already in the output.
    fn fail(&mut self, error: i32) {
        let mut state = chapter_state(self.ssl.state());
        // mbedTLS 3.6 moves on to the next state before it parses a CertificateRequest
        // (client) or a CertificateVerify (server): a failure there belongs to the message.
        const CERTIFICATE_REQUEST_MSG: u8 = 13;
        const CERTIFICATE_VERIFY_MSG: u8 = 15;
        let parsed_late = match (self.side, self.ssl.last_handshake_type()) {
            (Side::Client, Some(CERTIFICATE_REQUEST_MSG)) => Some(tls::state::CERTIFICATE_REQUEST),
            (Side::Server, Some(CERTIFICATE_VERIFY_MSG)) => Some(tls::state::CERTIFICATE_VERIFY),
            _ => None,
        };
        if let Some(message_state) = parsed_late.filter(|s| state == s + 1) {
            state = message_state;
        }
        let alert = if error == sys::MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE {
            self.ssl.received_alert()
        } else {
            None
        };
        let failure = Failure {
            error,
            state,
            side: self.side,
            verify_flags: self.ssl.verify_flags(),
            alert,
            own_cert: self.own_cert,
        };
        self.phase = Phase::Failed(TlsFailure::new(map_error(&failure), state, error));
    }

    fn deliver_keylog(&mut self) {
        let line = self.ssl.take_keylog();
        #[cfg(feature = "keylog")]
        if let (Some(line), Some(sink)) = (line, &self.keylog) {
            critical_section::with(|cs| (sink.borrow_ref_mut(cs))(&line));
        }
        #[cfg(not(feature = "keylog"))]
        drop(line);
    }

    /// Runs the handshake as far as the input allows, then decrypts what arrived.
    fn drive(&mut self) -> Progress {
        if self.phase == Phase::Handshaking {
            loop {
                if self.ssl.handshake_over() {
                    self.phase = Phase::Established;
                    break;
                }
                let ret = self.ssl.step();
                self.deliver_keylog();
                match ret {
                    0 => {}
                    sys::MBEDTLS_ERR_SSL_WANT_READ => return Progress::Handshaking,
                    error => {
                        self.fail(error);
                        return self.progress();
                    }
                }
            }
        }
        if self.phase == Phase::Established {
            let mut buf = vec![0u8; 4096];
            loop {
                match self.ssl.read(&mut buf) {
                    n if n > 0 => self.plaintext.extend_from_slice(&buf[..n as usize]),
                    sys::MBEDTLS_ERR_SSL_WANT_READ => break,
                    // close_notify, or the end of the TCP stream after the handshake.
                    0 | sys::MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY | sys::MBEDTLS_ERR_SSL_CONN_EOF => {
                        self.phase = Phase::Closed;
                        break;
                    }
                    error => {
                        self.fail(error);
                        break;
                    }
                }
            }
        }
        self.progress()
    }
}

impl TlsSession for MbedTlsSession {
    fn start(&mut self) -> Progress {
        self.drive()
    }

    fn feed(&mut self, ciphertext: &[u8]) -> Progress {
        if matches!(self.phase, Phase::Handshaking | Phase::Established) {
            self.ssl.feed(ciphertext);
        }
        self.drive()
    }

    /// The end of the TCP stream: during the handshake 5001 RECEIVE_FAILED, afterwards the
    /// session is [`Progress::Closed`] (with or without the peer's close_notify).
    fn eof(&mut self) -> Progress {
        self.ssl.set_eof();
        self.drive()
    }

    fn write(&mut self, mut plaintext: &[u8]) -> Result<(), TlsFailure> {
        match self.phase {
            Phase::Established => {}
            Phase::Failed(f) => return Err(f),
            Phase::Handshaking | Phase::Closed => {
                let state = chapter_state(self.ssl.state());
                return Err(TlsFailure::new(
                    TlsCode::BadInputData,
                    state,
                    sys::MBEDTLS_ERR_SSL_BAD_INPUT_DATA,
                ));
            }
        }
        while !plaintext.is_empty() {
            match self.ssl.write(plaintext) {
                n if n > 0 => plaintext = &plaintext[n as usize..],
                error => {
                    self.fail(error);
                    if let Phase::Failed(f) = self.phase {
                        return Err(f);
                    }
                }
            }
        }
        Ok(())
    }

    fn close_notify(&mut self) {
        if matches!(self.phase, Phase::Established | Phase::Closed) {
            // The alert goes to the output; an error here leaves nothing more to do.
            let _ = self.ssl.close_notify();
        }
    }

    fn take_ciphertext(&mut self) -> Vec<u8> {
        self.ssl.take_output()
    }

    fn take_plaintext(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.plaintext)
    }

    fn state(&self) -> u8 {
        chapter_state(self.ssl.state())
    }

    fn negotiated(&self) -> Option<(Suite, TlsVersion)> {
        if !matches!(self.phase, Phase::Established | Phase::Closed) {
            return None;
        }
        let suite = tls::suite(u16::try_from(self.ssl.suite_id()).ok()?)?;
        let version = match self.ssl.version() {
            0x0303 => TlsVersion::Tls1_2,
            _ => return None,
        };
        Some((suite, version))
    }

    fn alloc_failed(&self) -> bool {
        heap_refusals() > self.refusals
    }
}

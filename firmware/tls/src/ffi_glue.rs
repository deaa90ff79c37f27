//! The one place that speaks mbedTLS's C API: a session's contexts in one heap block that
//! never moves (mbedTLS keeps pointers into it), the sans-IO BIO callbacks, the certificate
//! date check, the counting allocator and the key export. Everything outside this module is
//! safe Rust over [`Ssl`].
#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_uchar, c_void};
use core::ptr::{self, NonNull};

use mbedtls_rs_sys as sys;

use crate::heap;
use crate::time::{self, CertTime};

/// Bytes of the platform's randomness that seed one session's CTR-DRBG (its entropy input
/// and nonce: 48 + 24 with SHA-512 compiled in, with room to spare).
pub(crate) const SEED_LEN: usize = 128;

/// RFC 7919 `ffdhe2048`: the group a server offers in the DHE_RSA suites.
const FFDHE2048_P: [u8; 256] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xAD, 0xF8, 0x54, 0x58, 0xA2, 0xBB, 0x4A, 0x9A,
    0xAF, 0xDC, 0x56, 0x20, 0x27, 0x3D, 0x3C, 0xF1, 0xD8, 0xB9, 0xC5, 0x83, 0xCE, 0x2D, 0x36, 0x95,
    0xA9, 0xE1, 0x36, 0x41, 0x14, 0x64, 0x33, 0xFB, 0xCC, 0x93, 0x9D, 0xCE, 0x24, 0x9B, 0x3E, 0xF9,
    0x7D, 0x2F, 0xE3, 0x63, 0x63, 0x0C, 0x75, 0xD8, 0xF6, 0x81, 0xB2, 0x02, 0xAE, 0xC4, 0x61, 0x7A,
    0xD3, 0xDF, 0x1E, 0xD5, 0xD5, 0xFD, 0x65, 0x61, 0x24, 0x33, 0xF5, 0x1F, 0x5F, 0x06, 0x6E, 0xD0,
    0x85, 0x63, 0x65, 0x55, 0x3D, 0xED, 0x1A, 0xF3, 0xB5, 0x57, 0x13, 0x5E, 0x7F, 0x57, 0xC9, 0x35,
    0x98, 0x4F, 0x0C, 0x70, 0xE0, 0xE6, 0x8B, 0x77, 0xE2, 0xA6, 0x89, 0xDA, 0xF3, 0xEF, 0xE8, 0x72,
    0x1D, 0xF1, 0x58, 0xA1, 0x36, 0xAD, 0xE7, 0x35, 0x30, 0xAC, 0xCA, 0x4F, 0x48, 0x3A, 0x79, 0x7A,
    0xBC, 0x0A, 0xB1, 0x82, 0xB3, 0x24, 0xFB, 0x61, 0xD1, 0x08, 0xA9, 0x4B, 0xB2, 0xC8, 0xE3, 0xFB,
    0xB9, 0x6A, 0xDA, 0xB7, 0x60, 0xD7, 0xF4, 0x68, 0x1D, 0x4F, 0x42, 0xA3, 0xDE, 0x39, 0x4D, 0xF4,
    0xAE, 0x56, 0xED, 0xE7, 0x63, 0x72, 0xBB, 0x19, 0x0B, 0x07, 0xA7, 0xC8, 0xEE, 0x0A, 0x6D, 0x70,
    0x9E, 0x02, 0xFC, 0xE1, 0xCD, 0xF7, 0xE2, 0xEC, 0xC0, 0x34, 0x04, 0xCD, 0x28, 0x34, 0x2F, 0x61,
    0x91, 0x72, 0xFE, 0x9C, 0xE9, 0x85, 0x83, 0xFF, 0x8E, 0x4F, 0x12, 0x32, 0xEE, 0xF2, 0x81, 0x83,
    0xC3, 0xFE, 0x3B, 0x1B, 0x4C, 0x6F, 0xAD, 0x73, 0x3B, 0xB5, 0xFC, 0xBC, 0x2E, 0xC2, 0x20, 0x05,
    0xC5, 0x8E, 0xF1, 0x83, 0x7D, 0x16, 0x83, 0xB2, 0xC6, 0xF3, 0x4A, 0x26, 0xC1, 0xB2, 0xEF, 0xFA,
    0x88, 0x6B, 0x42, 0x38, 0x61, 0x28, 0x5C, 0x97, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
];
const FFDHE2048_G: [u8; 1] = [2];

/// The chapter's 12 suites, 0-terminated, as `mbedtls_ssl_conf_ciphersuites` wants them
/// (it keeps the pointer: a static).
static SUITE_LIST: [c_int; 13] = {
    let mut list = [0; 13];
    let mut i = 0;
    while i < gecko_core::tls::SUITES.len() {
        list[i] = gecko_core::tls::SUITES[i].id as c_int;
        i += 1;
    }
    list
};

/// What one session is made from, already checked by the engine.
pub(crate) struct Params<'a> {
    pub server: bool,
    pub ca: Option<&'a [u8]>,
    pub cert: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    pub verify_required: bool,
    /// Client only: the name to check (NUL-free).
    pub hostname: Option<&'a str>,
    pub now_utc: u64,
    pub seed: [u8; SEED_LEN],
    pub keylog: bool,
}

/// The sans-IO side of the BIO: what the peer sent, what goes to the peer.
#[derive(Default)]
struct Io {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
    eof: bool,
}

/// The CTR-DRBG's entropy: a session's seed, handed out once.
struct SeedPool {
    bytes: [u8; SEED_LEN],
    used: usize,
}

/// Everything mbedTLS points into, in one allocation that lives from [`Ssl::new`] to
/// [`Ssl`]'s drop and is only ever reached through [`Ssl::raw`].
struct Ctx {
    ssl: sys::mbedtls_ssl_context,
    conf: sys::mbedtls_ssl_config,
    drbg: sys::mbedtls_ctr_drbg_context,
    ca: sys::mbedtls_x509_crt,
    own: sys::mbedtls_x509_crt,
    key: sys::mbedtls_pk_context,
    io: Io,
    seed: SeedPool,
    now_utc: u64,
    keylog: Option<String>,
}

/// One mbedTLS session (context, configuration, DRBG, certificates, key, BIO buffers).
pub(crate) struct Ssl {
    raw: NonNull<Ctx>,
}

impl core::fmt::Debug for Ssl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ssl").field("state", &self.state()).finish_non_exhaustive()
    }
}

/// `0` or the (negative) error.
fn check(ret: c_int) -> Result<(), i32> {
    if ret < 0 { Err(ret) } else { Ok(()) }
}

/// PEM must end in a NUL for mbedTLS; DER is passed as is.
fn with_pem_nul(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let is_pem = bytes.windows(10).any(|w| w == b"-----BEGIN");
    if is_pem && v.last() != Some(&0) {
        v.push(0);
    }
    v
}

impl Ssl {
    /// Builds and configures a session; the error is mbedTLS's (negative) code.
    pub(crate) fn new(p: &Params<'_>) -> Result<Ssl, i32> {
        install_allocator();
        let ctx = Box::new(Ctx {
            ssl: Default::default(),
            conf: Default::default(),
            drbg: Default::default(),
            ca: Default::default(),
            own: Default::default(),
            key: Default::default(),
            io: Io::default(),
            seed: SeedPool { bytes: p.seed, used: 0 },
            now_utc: p.now_utc,
            keylog: None,
        });
        let raw = NonNull::from(Box::leak(ctx));
        let c = raw.as_ptr();
        // SAFETY: `c` is the unique pointer to a live `Ctx`; the init functions only write
        // the structs they are given. From here on `Ssl`'s drop frees them even on error.
        unsafe {
            sys::mbedtls_ctr_drbg_init(&raw mut (*c).drbg);
            sys::mbedtls_x509_crt_init(&raw mut (*c).ca);
            sys::mbedtls_x509_crt_init(&raw mut (*c).own);
            sys::mbedtls_pk_init(&raw mut (*c).key);
            sys::mbedtls_ssl_config_init(&raw mut (*c).conf);
            sys::mbedtls_ssl_init(&raw mut (*c).ssl);
        }
        let me = Ssl { raw };
        me.configure(p)?;
        Ok(me)
    }

    fn configure(&self, p: &Params<'_>) -> Result<(), i32> {
        let c = self.raw.as_ptr();
        // SAFETY: every pointer below points into the live, never-moving `Ctx` (or to
        // statics); mbedTLS keeps some of them (configuration, DRBG, certificates, key,
        // BIO, verify and key log slots), all of which live as long as the `Ctx`. The
        // buffers passed for parsing are only read during the call (mbedTLS copies them).
        unsafe {
            let drbg = (&raw mut (*c).drbg).cast::<c_void>();
            check(sys::mbedtls_ctr_drbg_seed(
                &raw mut (*c).drbg,
                Some(entropy),
                (&raw mut (*c).seed).cast(),
                ptr::null(),
                0,
            ))?;
            sys::mbedtls_ctr_drbg_set_reseed_interval(&raw mut (*c).drbg, c_int::MAX);

            if let Some(ca) = p.ca {
                let ca = with_pem_nul(ca);
                check(sys::mbedtls_x509_crt_parse(&raw mut (*c).ca, ca.as_ptr(), ca.len()))?;
            }
            let own = match (p.cert, p.key) {
                (Some(cert), Some(key)) => {
                    let cert = with_pem_nul(cert);
                    check(sys::mbedtls_x509_crt_parse(
                        &raw mut (*c).own,
                        cert.as_ptr(),
                        cert.len(),
                    ))?;
                    let key = with_pem_nul(key);
                    check(sys::mbedtls_pk_parse_key(
                        &raw mut (*c).key,
                        key.as_ptr(),
                        key.len(),
                        ptr::null(),
                        0,
                        Some(sys::mbedtls_ctr_drbg_random),
                        drbg,
                    ))?;
                    true
                }
                _ => false,
            };

            let conf = &raw mut (*c).conf;
            let endpoint =
                if p.server { sys::MBEDTLS_SSL_IS_SERVER } else { sys::MBEDTLS_SSL_IS_CLIENT };
            check(sys::mbedtls_ssl_config_defaults(
                conf,
                endpoint as c_int,
                sys::MBEDTLS_SSL_TRANSPORT_STREAM as c_int,
                sys::MBEDTLS_SSL_PRESET_DEFAULT as c_int,
            ))?;
            // TLS 1.2 only (what the inline `mbedtls_ssl_conf_{min,max}_tls_version` set).
            (*conf).private_min_tls_version =
                sys::mbedtls_ssl_protocol_version_MBEDTLS_SSL_VERSION_TLS1_2;
            (*conf).private_max_tls_version =
                sys::mbedtls_ssl_protocol_version_MBEDTLS_SSL_VERSION_TLS1_2;
            sys::mbedtls_ssl_conf_ciphersuites(conf, SUITE_LIST.as_ptr());
            sys::mbedtls_ssl_conf_rng(conf, Some(sys::mbedtls_ctr_drbg_random), drbg);
            let authmode = if p.verify_required {
                sys::MBEDTLS_SSL_VERIFY_REQUIRED
            } else {
                sys::MBEDTLS_SSL_VERIFY_NONE
            };
            sys::mbedtls_ssl_conf_authmode(conf, authmode as c_int);
            sys::mbedtls_ssl_conf_verify(conf, Some(verify_dates), (&raw mut (*c).now_utc).cast());
            if p.ca.is_some() {
                sys::mbedtls_ssl_conf_ca_chain(conf, &raw mut (*c).ca, ptr::null_mut());
            }
            if own {
                check(sys::mbedtls_ssl_conf_own_cert(conf, &raw mut (*c).own, &raw mut (*c).key))?;
            }
            if p.server {
                check(sys::mbedtls_ssl_conf_dh_param_bin(
                    conf,
                    FFDHE2048_P.as_ptr(),
                    FFDHE2048_P.len(),
                    FFDHE2048_G.as_ptr(),
                    FFDHE2048_G.len(),
                ))?;
            } else {
                sys::mbedtls_ssl_conf_session_tickets(
                    conf,
                    sys::MBEDTLS_SSL_SESSION_TICKETS_DISABLED as c_int,
                );
            }

            check(sys::mbedtls_ssl_setup(&raw mut (*c).ssl, conf))?;
            if !p.server {
                // 3.6 refuses to verify without a hostname unless it was explicitly NULL.
                match p.hostname {
                    Some(name) => {
                        let mut z = Vec::with_capacity(name.len() + 1);
                        z.extend_from_slice(name.as_bytes());
                        z.push(0);
                        check(sys::mbedtls_ssl_set_hostname(
                            &raw mut (*c).ssl,
                            z.as_ptr().cast::<c_char>(),
                        ))?;
                    }
                    None => check(sys::mbedtls_ssl_set_hostname(&raw mut (*c).ssl, ptr::null()))?,
                }
            }
            sys::mbedtls_ssl_set_bio(
                &raw mut (*c).ssl,
                (&raw mut (*c).io).cast(),
                Some(bio_send),
                Some(bio_recv),
                None,
            );
            if p.keylog {
                sys::mbedtls_ssl_set_export_keys_cb(
                    &raw mut (*c).ssl,
                    Some(export_keys),
                    (&raw mut (*c).keylog).cast(),
                );
            }
        }
        Ok(())
    }

    /// One step of the handshake: `0`, `WANT_READ` or an error.
    pub(crate) fn step(&mut self) -> i32 {
        // SAFETY: the context was set up by `new`; the BIO and callbacks point into `Ctx`.
        unsafe { sys::mbedtls_ssl_handshake_step(&raw mut (*self.raw.as_ptr()).ssl) }
    }

    /// mbedTLS's `mbedtls_ssl_states` value.
    pub(crate) fn state(&self) -> i32 {
        // SAFETY: a plain read of a field of the live context; no C code runs meanwhile.
        unsafe { (*self.raw.as_ptr()).ssl.private_state }
    }

    pub(crate) fn handshake_over(&self) -> bool {
        self.state() >= sys::mbedtls_ssl_states_MBEDTLS_SSL_HANDSHAKE_OVER as i32
    }

    fn io(&mut self) -> &mut Io {
        // SAFETY: no C code runs while this borrow lives (`&mut self`), so nothing else
        // touches the `Io` the BIO pointer also reaches.
        unsafe { &mut (*self.raw.as_ptr()).io }
    }

    /// Bytes from the peer, for the next steps or reads.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let io = self.io();
        if io.pos > 0 {
            io.input.drain(..io.pos);
            io.pos = 0;
        }
        io.input.extend_from_slice(bytes);
    }

    /// The TCP connection ended: once the input is read, the BIO reports end of stream.
    pub(crate) fn set_eof(&mut self) {
        self.io().eof = true;
    }

    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.io().output)
    }

    /// Decrypted application data into `buf`: its length, `WANT_READ` or an error.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> i32 {
        // SAFETY: `buf` is a valid writable slice of `buf.len()` bytes for the call.
        unsafe {
            sys::mbedtls_ssl_read(&raw mut (*self.raw.as_ptr()).ssl, buf.as_mut_ptr(), buf.len())
        }
    }

    /// Encrypts (a first part of) `buf`: the bytes taken or an error.
    pub(crate) fn write(&mut self, buf: &[u8]) -> i32 {
        // SAFETY: `buf` is a valid readable slice for the call; mbedTLS copies it.
        unsafe {
            sys::mbedtls_ssl_write(&raw mut (*self.raw.as_ptr()).ssl, buf.as_ptr(), buf.len())
        }
    }

    pub(crate) fn close_notify(&mut self) -> i32 {
        // SAFETY: the context is live; the alert goes to the BIO (our output buffer).
        unsafe { sys::mbedtls_ssl_close_notify(&raw mut (*self.raw.as_ptr()).ssl) }
    }

    /// The verification flags of the peer's certificate (`MBEDTLS_X509_BADCERT_*`).
    pub(crate) fn verify_flags(&self) -> u32 {
        // SAFETY: reads the live context's session; mbedTLS handles a missing session.
        let flags =
            unsafe { sys::mbedtls_ssl_get_verify_result(&raw const (*self.raw.as_ptr()).ssl) };
        // "Not verified yet" is all ones: no flags for the mapping.
        if flags == u32::MAX { 0 } else { flags }
    }

    /// After `MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE`: the description of the peer's alert,
    /// still in the input record.
    pub(crate) fn received_alert(&self) -> Option<u8> {
        // SAFETY: `in_msg` points into mbedTLS's input buffer (allocated with the context)
        // and the alert record it holds is at least 2 bytes (`in_msglen` checked).
        unsafe {
            let ssl = &raw const (*self.raw.as_ptr()).ssl;
            let msg = (*ssl).private_in_msg;
            if msg.is_null() || (*ssl).private_in_msglen < 2 {
                return None;
            }
            Some(*msg.add(1))
        }
    }

    /// The type of the handshake message mbedTLS read last, if the last record was one.
    pub(crate) fn last_handshake_type(&self) -> Option<u8> {
        // SAFETY: as in `received_alert`: `in_msg` points into the live input buffer and
        // holds `in_msglen` bytes of the last record.
        unsafe {
            let ssl = &raw const (*self.raw.as_ptr()).ssl;
            let msg = (*ssl).private_in_msg;
            if msg.is_null() || (*ssl).private_in_msglen < 1 || (*ssl).private_in_msgtype != 22 {
                return None;
            }
            Some(*msg)
        }
    }

    /// The negotiated suite's IANA number.
    pub(crate) fn suite_id(&self) -> i32 {
        // SAFETY: reads the live context.
        unsafe { sys::mbedtls_ssl_get_ciphersuite_id_from_ssl(&raw const (*self.raw.as_ptr()).ssl) }
    }

    /// The negotiated version on the wire (`0x0303` for TLS 1.2).
    // C enums are 16 bits wide on ARM EABI (short enums), 32 elsewhere.
    #[allow(clippy::unnecessary_cast)]
    pub(crate) fn version(&self) -> u32 {
        // SAFETY: a plain read of a field of the live context.
        unsafe { (*self.raw.as_ptr()).ssl.private_tls_version as u32 }
    }

    /// The NSS key log line, once the keys exist.
    pub(crate) fn take_keylog(&mut self) -> Option<String> {
        // SAFETY: no C code runs during this borrow (`&mut self`).
        unsafe { (*self.raw.as_ptr()).keylog.take() }
    }
}

impl Drop for Ssl {
    fn drop(&mut self) {
        let c = self.raw.as_ptr();
        // SAFETY: `c` came from `Box::leak` in `new` and is freed exactly once, here; the
        // SSL context goes first (it points at the configuration, which points at the
        // certificates, key and DRBG).
        unsafe {
            sys::mbedtls_ssl_free(&raw mut (*c).ssl);
            sys::mbedtls_ssl_config_free(&raw mut (*c).conf);
            sys::mbedtls_pk_free(&raw mut (*c).key);
            sys::mbedtls_x509_crt_free(&raw mut (*c).own);
            sys::mbedtls_x509_crt_free(&raw mut (*c).ca);
            sys::mbedtls_ctr_drbg_free(&raw mut (*c).drbg);
            drop(Box::from_raw(c));
        }
    }
}

/// BIO send: everything goes to the output buffer.
unsafe extern "C" fn bio_send(ctx: *mut c_void, buf: *const c_uchar, len: usize) -> c_int {
    // SAFETY: `ctx` is the session's `Io` (set in `configure`), and mbedTLS hands a
    // readable `buf` of `len` bytes; the Rust side holds no borrow while C code runs.
    let (io, bytes) = unsafe { (&mut *ctx.cast::<Io>(), core::slice::from_raw_parts(buf, len)) };
    let n = len.min(c_int::MAX as usize);
    io.output.extend_from_slice(&bytes[..n]);
    n as c_int
}

/// BIO receive: from the input buffer; `WANT_READ` when it is empty, `0` (end of stream)
/// once the TCP connection ended.
unsafe extern "C" fn bio_recv(ctx: *mut c_void, buf: *mut c_uchar, len: usize) -> c_int {
    // SAFETY: as in `bio_send`; `buf` is writable for `len` bytes.
    let (io, out) = unsafe { (&mut *ctx.cast::<Io>(), core::slice::from_raw_parts_mut(buf, len)) };
    let available = &io.input[io.pos..];
    if available.is_empty() {
        return if io.eof { 0 } else { sys::MBEDTLS_ERR_SSL_WANT_READ };
    }
    let n = available.len().min(out.len()).min(c_int::MAX as usize);
    out[..n].copy_from_slice(&available[..n]);
    io.pos += n;
    n as c_int
}

/// The CTR-DRBG's entropy source: the session's seed, once.
unsafe extern "C" fn entropy(ctx: *mut c_void, buf: *mut c_uchar, len: usize) -> c_int {
    // SAFETY: `ctx` is the session's `SeedPool`; `buf` is writable for `len` bytes.
    let (pool, out) =
        unsafe { (&mut *ctx.cast::<SeedPool>(), core::slice::from_raw_parts_mut(buf, len)) };
    let Some(chunk) = pool.bytes.get(pool.used..pool.used + len) else {
        return sys::MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
    };
    out.copy_from_slice(chunk);
    pool.used += len;
    0
}

fn cert_time(t: &sys::mbedtls_x509_time) -> CertTime {
    CertTime { year: t.year, mon: t.mon, day: t.day, hour: t.hour, min: t.min, sec: t.sec }
}

/// The verify callback: each certificate's dates against the module's clock.
unsafe extern "C" fn verify_dates(
    ctx: *mut c_void,
    crt: *mut sys::mbedtls_x509_crt,
    _depth: c_int,
    flags: *mut u32,
) -> c_int {
    // SAFETY: `ctx` is the session's `now_utc`; mbedTLS passes a parsed certificate and
    // its flags word for the duration of the call.
    unsafe {
        let now = *ctx.cast::<u64>();
        let crt = &*crt;
        *flags |= time::date_flags(&cert_time(&crt.valid_from), &cert_time(&crt.valid_to), now);
    }
    0
}

/// Key export: the NSS key log line of a TLS 1.2 master secret.
unsafe extern "C" fn export_keys(
    ctx: *mut c_void,
    kind: sys::mbedtls_ssl_key_export_type,
    secret: *const c_uchar,
    secret_len: usize,
    client_random: *const c_uchar,
    _server_random: *const c_uchar,
    _prf: sys::mbedtls_tls_prf_types,
) {
    if kind != sys::mbedtls_ssl_key_export_type_MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET {
        return;
    }
    // SAFETY: `ctx` is the session's key log slot; mbedTLS passes the 32-byte client
    // random and `secret_len` bytes of master secret for the duration of the call.
    unsafe {
        let slot = &mut *ctx.cast::<Option<String>>();
        let random = core::slice::from_raw_parts(client_random, 32);
        let secret = core::slice::from_raw_parts(secret, secret_len);
        *slot = Some(crate::keylog_line(random, secret));
    }
}

/// Installs the counting allocator (once, before mbedTLS allocates anything).
pub(crate) fn install_allocator() {
    use core::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: sets two function pointers in mbedTLS's platform layer before any
            // other thread can use mbedTLS (they wait for state 2 below).
            unsafe {
                sys::mbedtls_platform_set_calloc_free(Some(counting_calloc), Some(counting_free));
            }
            STATE.store(2, Ordering::Release);
        }
        Err(_) => {
            while STATE.load(Ordering::Acquire) != 2 {
                core::hint::spin_loop();
            }
        }
    }
}

/// Room before each block for its size (and the strictest alignment mbedTLS needs).
const HEADER: usize = 16;

unsafe extern "C" fn counting_calloc(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else { return ptr::null_mut() };
    let Some(layout_size) = total.checked_add(HEADER) else { return ptr::null_mut() };
    let Ok(layout) = core::alloc::Layout::from_size_align(layout_size, HEADER) else {
        return ptr::null_mut();
    };
    if !heap::reserve(total) {
        return ptr::null_mut();
    }
    // SAFETY: `layout` has a non-zero size; the block starts with the size header.
    unsafe {
        let block = alloc::alloc::alloc_zeroed(layout);
        if block.is_null() {
            heap::release(total);
            return ptr::null_mut();
        }
        block.cast::<usize>().write(total);
        block.add(HEADER).cast()
    }
}

unsafe extern "C" fn counting_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` came from `counting_calloc` (mbedTLS frees only what it allocated with
    // it): the header before it holds the size the layout was made from.
    unsafe {
        let block = p.cast::<u8>().sub(HEADER);
        let total = block.cast::<usize>().read();
        heap::release(total);
        alloc::alloc::dealloc(
            block,
            core::alloc::Layout::from_size_align_unchecked(total + HEADER, HEADER),
        );
    }
}

/// PSA's random source. The TLS 1.2 code compiled here draws randomness from the session's
/// DRBG only, never through PSA, so PSA has none to give.
#[unsafe(no_mangle)]
unsafe extern "C" fn mbedtls_psa_external_get_random(
    _ctx: *mut sys::mbedtls_psa_external_random_context_t,
    _output: *mut u8,
    _output_size: usize,
    _output_length: *mut usize,
) -> sys::psa_status_t {
    const PSA_ERROR_INSUFFICIENT_ENTROPY: sys::psa_status_t = -148;
    PSA_ERROR_INSUFFICIENT_ENTROPY
}

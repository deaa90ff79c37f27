//! The lab's PKI: certificate authorities, server leaves for the lab host and client
//! certificates, made fresh for every run (keys included) and written into `<run>/pki/`.
//!
//! Every material has a name spec tables use ([`MATERIALS`]); what its name claims (dates,
//! names, key usages, issuer) is what the tests in this file check with OpenSSL. Dates are
//! relative to a fixed [`LAB_NOW`], not the wall clock: the harness sets the module's clock
//! to it (`set time.rtc`) and the lab's TLS peers verify at it, so a case sees the same
//! "expired" or "valid" on every run.
//!
//! RSA-2048 keys come from OpenSSL (PKCS#8), P-256 keys from `rcgen`; `rcgen` writes and
//! signs every certificate (through `ring`, which can sign with RSA keys but not make them).
//!
//! A name selects a material and a form: `ca-rsa` (certificate, PEM), `ca-rsa.der`
//! (certificate, DER), `ca-rsa.key` (private key, PKCS#8 PEM), `ca-rsa.key.der` (PKCS#8
//! DER), `server-rsa-chained.chain` (the certificate and its intermediates, PEM).

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The lab's "now" (2026-06-01T00:00:00Z, epoch seconds): validity windows are relative to
/// it, the module's clock is set to it, and the lab peers verify certificates at it.
pub const LAB_NOW: i64 = 1_780_272_000;

/// The name the server leaves are for (the lab host, `crate::peers::DEFAULT_PEER_ADDR`).
pub const LAB_HOST_NAME: &str = "lab-host.lab";
/// The lab host's address, an IP SAN of the server leaves.
pub const LAB_HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 5);
/// The name and address of the `wrong-name` leaves.
pub const WRONG_HOST_NAME: &str = "other-host.lab";
pub const WRONG_HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 99);
/// Size of the opaque extension that makes `server-rsa-oversized` larger than a TLS record
/// (16 KB) on its own.
pub const OVERSIZED_EXTENSION_BYTES: usize = 20 * 1024;
/// The organisation in every subject.
const ORG: &str = "Gecko HIL lab";

const DAY: i64 = 86_400;

/// The key type of a material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlg {
    Rsa2048,
    /// A key too short for today's rules (a module refuses it: ERROR_INVALID_MODULUS_SIZE).
    Rsa1024,
    P256,
}

/// What a material is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    RootCa,
    IntermediateCa,
    /// For the lab host (`lab-host.lab`, 10.77.0.5) unless its flaw says otherwise.
    Server,
    Client,
}

/// Its validity window, relative to [`LAB_NOW`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Contains [`LAB_NOW`].
    Valid,
    /// Ended 30 days before it.
    Expired,
    /// Starts 30 days after it.
    NotYetValid,
}

/// What is wrong with a leaf on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    None,
    /// Names `other-host.lab` and 10.77.0.99 instead of the lab host.
    WrongName,
    /// Extended key usage clientAuth only.
    NoServerAuth,
    /// Key usage without digitalSignature (RSA: keyEncipherment only; P-256: keyAgreement).
    NoDigitalSignature,
    /// An opaque non-critical extension of [`OVERSIZED_EXTENSION_BYTES`].
    Oversized,
}

/// One material of the lab PKI: how it is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Material {
    pub name: &'static str,
    pub about: &'static str,
    pub key: KeyAlg,
    pub role: Role,
    /// The material that signs it; `None`: self-signed.
    pub issuer: Option<&'static str>,
    pub validity: Validity,
    pub flaw: Flaw,
}

const fn m(
    name: &'static str,
    about: &'static str,
    key: KeyAlg,
    role: Role,
    issuer: Option<&'static str>,
    validity: Validity,
    flaw: Flaw,
) -> Material {
    Material { name, about, key, role, issuer, validity, flaw }
}

use Flaw as F;
use KeyAlg::{P256, Rsa1024, Rsa2048};
use Role::{Client, IntermediateCa, RootCa, Server};
use Validity::{Expired, NotYetValid, Valid};

/// Every material, issuers before what they sign.
#[rustfmt::skip]
pub const MATERIALS: &[Material] = &[
    m("ca-rsa", "root CA, RSA-2048", Rsa2048, RootCa, None, Valid, F::None),
    m("ca-p256", "root CA, P-256", P256, RootCa, None, Valid, F::None),
    m("ca-int", "intermediate CA (RSA-2048) under ca-rsa", Rsa2048, IntermediateCa, Some("ca-rsa"), Valid, F::None),
    m("ca-untrusted", "a root CA (P-256) nobody trusts", P256, RootCa, None, Valid, F::None),
    m("server-rsa", "lab host, RSA, from ca-rsa", Rsa2048, Server, Some("ca-rsa"), Valid, F::None),
    m("server-p256", "lab host, P-256, from ca-p256", P256, Server, Some("ca-p256"), Valid, F::None),
    m("server-rsa-expired", "lab host, RSA, expired", Rsa2048, Server, Some("ca-rsa"), Expired, F::None),
    m("server-p256-expired", "lab host, P-256, expired", P256, Server, Some("ca-p256"), Expired, F::None),
    m("server-rsa-not-yet-valid", "lab host, RSA, not yet valid", Rsa2048, Server, Some("ca-rsa"), NotYetValid, F::None),
    m("server-p256-not-yet-valid", "lab host, P-256, not yet valid", P256, Server, Some("ca-p256"), NotYetValid, F::None),
    m("server-rsa-wrong-name", "other-host.lab / 10.77.0.99, RSA", Rsa2048, Server, Some("ca-rsa"), Valid, F::WrongName),
    m("server-p256-wrong-name", "other-host.lab / 10.77.0.99, P-256", P256, Server, Some("ca-p256"), Valid, F::WrongName),
    m("server-rsa-self-signed", "lab host, RSA, self-signed", Rsa2048, Server, None, Valid, F::None),
    m("server-p256-self-signed", "lab host, P-256, self-signed", P256, Server, None, Valid, F::None),
    m("server-rsa-no-server-auth", "lab host, RSA, EKU clientAuth only", Rsa2048, Server, Some("ca-rsa"), Valid, F::NoServerAuth),
    m("server-p256-no-server-auth", "lab host, P-256, EKU clientAuth only", P256, Server, Some("ca-p256"), Valid, F::NoServerAuth),
    m("server-rsa-no-digital-signature", "lab host, RSA, key usage keyEncipherment only", Rsa2048, Server, Some("ca-rsa"), Valid, F::NoDigitalSignature),
    m("server-p256-no-digital-signature", "lab host, P-256, key usage keyAgreement only", P256, Server, Some("ca-p256"), Valid, F::NoDigitalSignature),
    m("server-rsa-chained", "lab host, RSA, from ca-int (send its .chain)", Rsa2048, Server, Some("ca-int"), Valid, F::None),
    m("server-rsa-oversized", "lab host, RSA, from ca-rsa, a 20 KB extension", Rsa2048, Server, Some("ca-rsa"), Valid, F::Oversized),
    m("server-rsa1024", "lab host, a 1024-bit RSA key, from ca-rsa", Rsa1024, Server, Some("ca-rsa"), Valid, F::None),
    m("client-rsa", "client, RSA, from ca-rsa", Rsa2048, Client, Some("ca-rsa"), Valid, F::None),
    m("client-p256", "client, P-256, from ca-p256", P256, Client, Some("ca-p256"), Valid, F::None),
    m("client-untrusted", "client, P-256, from ca-untrusted", P256, Client, Some("ca-untrusted"), Valid, F::None),
];

/// The material named `name`.
pub fn material(name: &str) -> Option<&'static Material> {
    MATERIALS.iter().find(|m| m.name == name)
}

/// Which bytes of a material a name selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Form {
    /// The certificate, PEM (`<name>`).
    Cert,
    /// The certificate, DER (`<name>.der`).
    CertDer,
    /// The private key, PKCS#8 PEM (`<name>.key`).
    Key,
    /// The private key, PKCS#8 DER (`<name>.key.der`).
    KeyDer,
    /// The certificate and its intermediates up to (not including) the root, PEM
    /// (`<name>.chain`).
    Chain,
}

impl Form {
    const SUFFIXES: [(&'static str, Form); 4] = [
        (".key.der", Form::KeyDer),
        (".key", Form::Key),
        (".der", Form::CertDer),
        (".chain", Form::Chain),
    ];

    fn suffix(self) -> &'static str {
        Self::SUFFIXES.iter().find(|(_, f)| *f == self).map_or("", |(s, _)| s)
    }

    /// The file it is written to in `<run>/pki/`.
    fn file_suffix(self) -> &'static str {
        match self {
            Form::Cert => ".pem",
            Form::CertDer => ".der",
            Form::Key => ".key.pem",
            Form::KeyDer => ".key.der",
            Form::Chain => ".chain.pem",
        }
    }
}

/// A PKI name as spec tables write it (`client-p256.key`), parsed once: a material and a form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PkiRef {
    pub material: &'static Material,
    pub form: Form,
}

impl PkiRef {
    /// A certificate (PEM) by material name.
    pub fn cert(name: &str) -> Result<Self, PkiError> {
        Ok(PkiRef { material: known(name)?, form: Form::Cert })
    }
}

fn known(name: &str) -> Result<&'static Material, PkiError> {
    material(name).ok_or_else(|| PkiError::UnknownName(name.to_string()))
}

impl std::str::FromStr for PkiRef {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, PkiError> {
        for (suffix, form) in Form::SUFFIXES {
            if let Some(base) = s.strip_suffix(suffix)
                && let Some(material) = material(base)
            {
                return Ok(PkiRef { material, form });
            }
        }
        Ok(PkiRef {
            material: material(s).ok_or_else(|| PkiError::UnknownName(s.into()))?,
            form: Form::Cert,
        })
    }
}

/// As spec tables write it: step descriptions in reports print it.
impl std::fmt::Debug for PkiRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl std::fmt::Display for PkiRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.material.name, self.form.suffix())
    }
}

impl TryFrom<String> for PkiRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|e: PkiError| e.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for PkiRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PkiRef::try_from(s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PkiRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A material by its bare name (`server-rsa`): a certificate with its key and intermediates,
/// as a TLS peer presents or trusts it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MaterialRef(pub &'static Material);

/// Its name only: step descriptions in reports print it.
impl std::fmt::Debug for MaterialRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.name)
    }
}

impl MaterialRef {
    pub fn name(&self) -> &'static str {
        self.0.name
    }
}

impl std::str::FromStr for MaterialRef {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, PkiError> {
        known(s).map(MaterialRef)
    }
}

impl<'de> serde::Deserialize<'de> for MaterialRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for MaterialRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

/// Why the PKI could not be made or a name is not in it.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(
        "no PKI material `{0}` (materials: {names}; forms: <name>, <name>.der, <name>.key, \
         <name>.key.der, <name>.chain)",
        names = MATERIALS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
    )]
    UnknownName(String),
    #[error("make {name}: {message}")]
    Make { name: &'static str, message: String },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn make_err<E: std::fmt::Display>(name: &'static str) -> impl FnOnce(E) -> PkiError {
    move |e| PkiError::Make { name, message: e.to_string() }
}

/// One made material.
#[derive(Debug)]
struct Made {
    material: &'static Material,
    cert_der: Vec<u8>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
    /// Its issuers that are not roots, nearest first.
    intermediates: Vec<&'static str>,
}

/// A lab PKI, made once per run.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    made: BTreeMap<&'static str, Made>,
}

impl Pki {
    /// Makes every material and writes it into `dir` (created).
    pub fn generate(dir: &Path) -> Result<Pki, PkiError> {
        let mut made: BTreeMap<&'static str, Made> = BTreeMap::new();
        // Issuers' parameters and keys, to sign with.
        let mut issuers: BTreeMap<&'static str, (CertificateParams, KeyPair)> = BTreeMap::new();
        for (index, mat) in MATERIALS.iter().enumerate() {
            let name = mat.name;
            let (key, key_der) = make_key(mat)?;
            let params = params(mat, index)?;
            let cert = match (mat.issuer, &key) {
                (None, Key::Pair(key)) => {
                    params.self_signed(key.as_ref()).map_err(make_err(name))?
                }
                (None, Key::Public(_)) => {
                    return Err(PkiError::Make { name, message: "a short key cannot sign".into() });
                }
                (Some(by), key) => {
                    let (ip, ik) = issuers.get(by).ok_or_else(|| PkiError::Make {
                        name,
                        message: format!("its issuer {by} is not made yet"),
                    })?;
                    let issuer = Issuer::from_params(ip, ik);
                    match key {
                        Key::Pair(key) => params.signed_by(key.as_ref(), &issuer),
                        Key::Public(key) => params.signed_by(key, &issuer),
                    }
                    .map_err(make_err(name))?
                }
            };
            let mut intermediates = Vec::new();
            let mut up = mat.issuer;
            while let Some(i) = up.and_then(material) {
                if i.role == Role::IntermediateCa {
                    intermediates.push(i.name);
                }
                up = i.issuer;
            }
            let key_pem = pem_block("PRIVATE KEY", &key_der);
            made.insert(
                name,
                Made {
                    material: mat,
                    cert_der: cert.der().to_vec(),
                    cert_pem: cert.pem(),
                    key_der,
                    key_pem,
                    intermediates,
                },
            );
            if let (Role::RootCa | Role::IntermediateCa, Key::Pair(key)) = (mat.role, key) {
                issuers.insert(name, (params, *key));
            }
        }
        let pki = Pki { dir: dir.to_path_buf(), made };
        pki.write()?;
        Ok(pki)
    }

    /// The run's PKI in `<run_dir>/pki/`, made at the first call for that run and shared by
    /// every worker of it.
    pub fn for_run(run_dir: &Path) -> Result<Arc<Pki>, PkiError> {
        static RUNS: Mutex<Vec<(PathBuf, Arc<Pki>)>> = Mutex::new(Vec::new());
        let mut runs = RUNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, pki)) = runs.iter().find(|(d, _)| d == run_dir) {
            return Ok(Arc::clone(pki));
        }
        let pki = Arc::new(Pki::generate(&run_dir.join("pki"))?);
        runs.push((run_dir.to_path_buf(), Arc::clone(&pki)));
        Ok(pki)
    }

    /// Where its files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file `r` is written to.
    pub fn path(&self, r: &PkiRef) -> PathBuf {
        self.dir.join(format!("{}{}", r.material.name, r.form.file_suffix()))
    }

    fn get(&self, name: &str) -> Result<&Made, PkiError> {
        self.made.get(name).ok_or_else(|| PkiError::UnknownName(name.to_string()))
    }

    /// The bytes `r` names.
    pub fn bytes(&self, r: &PkiRef) -> Result<Vec<u8>, PkiError> {
        let made = self.get(r.material.name)?;
        Ok(match r.form {
            Form::Cert => made.cert_pem.clone().into_bytes(),
            Form::CertDer => made.cert_der.clone(),
            Form::Key => made.key_pem.clone().into_bytes(),
            Form::KeyDer => made.key_der.clone(),
            Form::Chain => {
                let mut pem = made.cert_pem.clone();
                for i in &made.intermediates {
                    pem.push_str(&self.get(i)?.cert_pem);
                }
                pem.into_bytes()
            }
        })
    }

    /// A material's certificate for OpenSSL.
    pub fn x509(&self, name: &str) -> Result<X509, PkiError> {
        let made = self.get(name)?;
        X509::from_der(&made.cert_der).map_err(make_err(made.material.name))
    }

    /// The intermediates a server sends after a material's certificate, nearest first.
    pub fn intermediates(&self, name: &str) -> Result<Vec<X509>, PkiError> {
        self.get(name)?.intermediates.iter().map(|i| self.x509(i)).collect()
    }

    /// A material's private key for OpenSSL.
    pub fn pkey(&self, name: &str) -> Result<PKey<Private>, PkiError> {
        let made = self.get(name)?;
        PKey::private_key_from_pkcs8(&made.key_der).map_err(make_err(made.material.name))
    }

    fn write(&self) -> Result<(), PkiError> {
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Write { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(werr(&self.dir))?;
        for mat in MATERIALS {
            for form in [Form::Cert, Form::CertDer, Form::Key, Form::KeyDer, Form::Chain] {
                let r = PkiRef { material: mat, form };
                let path = self.path(&r);
                std::fs::write(&path, self.bytes(&r)?).map_err(werr(&path))?;
            }
        }
        Ok(())
    }
}

/// A material's key as rcgen takes it: a key pair that can sign, or (a key ring refuses to
/// use, RSA-1024) only its public half, for a certificate someone else signs.
enum Key {
    Pair(Box<KeyPair>),
    Public(RsaPublic),
}

/// An RSA public key (PKCS#1 `RSAPublicKey`), for a certificate whose key rcgen need not use.
struct RsaPublic(Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

fn make_key(mat: &'static Material) -> Result<(Key, Vec<u8>), PkiError> {
    let name = mat.name;
    match mat.key {
        KeyAlg::Rsa1024 => {
            let rsa = openssl::rsa::Rsa::generate(1024).map_err(make_err(name))?;
            let public = rsa.public_key_to_der_pkcs1().map_err(make_err(name))?;
            let der = PKey::from_rsa(rsa)
                .and_then(|k| k.private_key_to_pkcs8())
                .map_err(make_err(name))?;
            Ok((Key::Public(RsaPublic(public)), der))
        }
        KeyAlg::Rsa2048 => {
            let rsa = openssl::rsa::Rsa::generate(2048).map_err(make_err(name))?;
            let der = PKey::from_rsa(rsa)
                .and_then(|k| k.private_key_to_pkcs8())
                .map_err(make_err(name))?;
            let key = KeyPair::from_pkcs8_der_and_sign_algo(
                &der.as_slice().into(),
                &rcgen::PKCS_RSA_SHA256,
            )
            .map_err(make_err(name))?;
            Ok((Key::Pair(Box::new(key)), der))
        }
        KeyAlg::P256 => {
            let key =
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(make_err(name))?;
            let der = key.serialize_der();
            Ok((Key::Pair(Box::new(key)), der))
        }
    }
}

fn params(mat: &'static Material, index: usize) -> Result<CertificateParams, PkiError> {
    let name = mat.name;
    let mut p = CertificateParams::default();
    let (from, to) = match (mat.role, mat.validity) {
        (Role::RootCa | Role::IntermediateCa, _) => (-365 * DAY, 3650 * DAY),
        (_, Validity::Valid) => (-30 * DAY, 365 * DAY),
        (_, Validity::Expired) => (-400 * DAY, -30 * DAY),
        (_, Validity::NotYetValid) => (30 * DAY, 400 * DAY),
    };
    let at = |delta: i64| {
        time::OffsetDateTime::from_unix_timestamp(LAB_NOW + delta).map_err(make_err(name))
    };
    p.not_before = at(from)?;
    p.not_after = at(to)?;
    p.serial_number = Some(SerialNumber::from(u64::try_from(index + 1).unwrap_or(u64::MAX)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORG);
    let (host, ip) = match mat.flaw {
        Flaw::WrongName => (WRONG_HOST_NAME, WRONG_HOST_IP),
        _ => (LAB_HOST_NAME, LAB_HOST_IP),
    };
    match mat.role {
        Role::RootCa | Role::IntermediateCa => {
            dn.push(DnType::CommonName, format!("Gecko HIL lab {name}"));
            p.is_ca = IsCa::Ca(match mat.role {
                Role::RootCa => BasicConstraints::Unconstrained,
                _ => BasicConstraints::Constrained(0),
            });
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        Role::Server => {
            dn.push(DnType::CommonName, host);
            p.subject_alt_names = vec![
                SanType::DnsName(host.try_into().map_err(make_err(name))?),
                SanType::IpAddress(IpAddr::V4(ip)),
            ];
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = match (mat.flaw, mat.key) {
                (Flaw::NoDigitalSignature, KeyAlg::Rsa2048 | KeyAlg::Rsa1024) => {
                    vec![KeyUsagePurpose::KeyEncipherment]
                }
                (Flaw::NoDigitalSignature, KeyAlg::P256) => vec![KeyUsagePurpose::KeyAgreement],
                (_, KeyAlg::Rsa2048 | KeyAlg::Rsa1024) => {
                    vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment]
                }
                (_, KeyAlg::P256) => vec![KeyUsagePurpose::DigitalSignature],
            };
            p.extended_key_usages = match mat.flaw {
                Flaw::NoServerAuth => vec![ExtendedKeyUsagePurpose::ClientAuth],
                _ => vec![ExtendedKeyUsagePurpose::ServerAuth],
            };
            if mat.flaw == Flaw::Oversized {
                // An unregistered OID under the "example" arc (1.3.6.1.4.1.32473, RFC 5612).
                p.custom_extensions.push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 32473, 1],
                    der_octet_string(&vec![0x5A; OVERSIZED_EXTENSION_BYTES]),
                ));
            }
        }
        Role::Client => {
            dn.push(DnType::CommonName, name);
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    p.distinguished_name = dn;
    p.use_authority_key_identifier_extension = mat.issuer.is_some();
    Ok(p)
}

/// `content` as a DER OCTET STRING (the extension's value must itself be DER).
fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

/// Why lab PKI files could not be put on a module.
#[derive(Debug, thiserror::Error)]
pub enum ModuleFileError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Channel(#[from] crate::channel::ChannelError),
    /// The module refused a file.
    #[error("`{line}` ({name}) answered code {code} `{text}`")]
    Refused { line: String, name: PkiRef, code: crate::code::ResultCode, text: String },
}

/// Creates each `(file, name)` on the module with `file_create`, holding the bytes `name`
/// stands for. With `replace`, a file of that name left from before is deleted first (the
/// name is free after, whatever `file_delete` answers: there may be no such file).
pub fn put_on_module(
    channel: &mut dyn crate::channel::Channel,
    pki: &Pki,
    files: &[(String, PkiRef)],
    replace: bool,
    timeout: std::time::Duration,
) -> Result<(), ModuleFileError> {
    use crate::channel::Request;
    for (file, name) in files {
        let bytes = pki.bytes(name)?;
        if replace {
            channel.execute(&Request {
                line: &format!("file_delete {file}"),
                data: None,
                timeout,
            })?;
        }
        let line = format!("file_create {file} {}", bytes.len());
        let reply = channel.execute(&Request { line: &line, data: Some(&bytes), timeout })?;
        if reply.code.0 != 0 {
            return Err(ModuleFileError::Refused {
                line,
                name: *name,
                code: reply.code,
                text: reply.text(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

#![allow(clippy::unwrap_used)] // tests may panic

use super::*;
use openssl::asn1::Asn1Time;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509ExtendedKeyUsage, X509KeyUsage, X509PurposeId, X509StoreContext};
use rstest::rstest;
use std::cmp::Ordering;
use std::sync::OnceLock;

/// One PKI for all tests here (made in a folder that lives as long as the test process).
fn pki() -> &'static Pki {
    static PKI: OnceLock<(tempfile::TempDir, Pki)> = OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(&dir.path().join("pki")).unwrap();
        (dir, pki)
    })
    .1
}

/// Verifies `leaf` (with its intermediates) against `roots` at [`LAB_NOW`] for `purpose`;
/// `Err` is OpenSSL's reason.
fn verify(leaf: &str, roots: &[&str], purpose: X509PurposeId) -> Result<(), String> {
    let pki = pki();
    let mut store = X509StoreBuilder::new().unwrap();
    for r in roots {
        store.add_cert(pki.x509(r).unwrap()).unwrap();
    }
    let mut param = X509VerifyParam::new().unwrap();
    param.set_time(LAB_NOW);
    param.set_purpose(purpose).unwrap();
    store.set_param(&param).unwrap();
    let store = store.build();
    let mut chain = Stack::new().unwrap();
    for i in pki.intermediates(leaf).unwrap() {
        chain.push(i).unwrap();
    }
    let cert = pki.x509(leaf).unwrap();
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, &cert, &chain, |c| {
        Ok(if c.verify_cert()? { Ok(()) } else { Err(c.error().error_string().to_string()) })
    })
    .unwrap()
}

fn at(delta: i64) -> Asn1Time {
    Asn1Time::from_unix(LAB_NOW + delta).unwrap()
}

fn sans(name: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    let cert = pki().x509(name).unwrap();
    let names = cert.subject_alt_names().unwrap();
    let dns = names.iter().filter_map(|n| n.dnsname().map(str::to_string)).collect();
    let ips = names.iter().filter_map(|n| n.ipaddress().map(<[u8]>::to_vec)).collect();
    (dns, ips)
}

#[test]
fn every_material_is_made_and_written_in_every_form() {
    let pki = pki();
    for m in MATERIALS {
        for form in [Form::Cert, Form::CertDer, Form::Key, Form::KeyDer, Form::Chain] {
            let r = PkiRef { material: m, form };
            let on_disk = std::fs::read(pki.path(&r)).unwrap();
            assert_eq!(on_disk, pki.bytes(&r).unwrap(), "{r}");
        }
        // The PEM and DER forms are the same certificate and key.
        let cert =
            X509::from_pem(&pki.bytes(&PkiRef { material: m, form: Form::Cert }).unwrap()).unwrap();
        assert_eq!(cert.to_der().unwrap(), pki.x509(m.name).unwrap().to_der().unwrap());
        let key = PKey::private_key_from_pem(
            &pki.bytes(&PkiRef { material: m, form: Form::Key }).unwrap(),
        )
        .unwrap();
        assert!(
            cert.public_key().unwrap().public_eq(&key),
            "{}: key and certificate differ",
            m.name
        );
        let bits = key.bits();
        match m.key {
            KeyAlg::Rsa2048 => assert!(key.rsa().is_ok() && bits == 2048, "{}", m.name),
            KeyAlg::Rsa1024 => assert!(key.rsa().is_ok() && bits == 1024, "{}", m.name),
            KeyAlg::P256 => assert!(key.ec_key().is_ok() && bits == 256, "{}", m.name),
        }
    }
}

#[rstest]
#[case::valid("server-rsa", Ordering::Less, Ordering::Greater)]
#[case::valid_p256("server-p256", Ordering::Less, Ordering::Greater)]
#[case::expired("server-rsa-expired", Ordering::Less, Ordering::Less)]
#[case::expired_p256("server-p256-expired", Ordering::Less, Ordering::Less)]
#[case::not_yet("server-rsa-not-yet-valid", Ordering::Greater, Ordering::Greater)]
#[case::not_yet_p256("server-p256-not-yet-valid", Ordering::Greater, Ordering::Greater)]
#[case::ca("ca-rsa", Ordering::Less, Ordering::Greater)]
#[case::client("client-p256", Ordering::Less, Ordering::Greater)]
fn dates_are_relative_to_lab_now(
    #[case] name: &str,
    #[case] not_before: Ordering,
    #[case] not_after: Ordering,
) {
    let cert = pki().x509(name).unwrap();
    let now = at(0);
    assert_eq!(cert.not_before().compare(&now).unwrap(), not_before, "{name} not_before");
    assert_eq!(cert.not_after().compare(&now).unwrap(), not_after, "{name} not_after");
}

#[rstest]
#[case("server-rsa", LAB_HOST_NAME, LAB_HOST_IP)]
#[case("server-p256", LAB_HOST_NAME, LAB_HOST_IP)]
#[case("server-rsa-chained", LAB_HOST_NAME, LAB_HOST_IP)]
#[case("server-rsa-self-signed", LAB_HOST_NAME, LAB_HOST_IP)]
#[case("server-rsa-wrong-name", WRONG_HOST_NAME, WRONG_HOST_IP)]
#[case("server-p256-wrong-name", WRONG_HOST_NAME, WRONG_HOST_IP)]
fn server_names(#[case] name: &str, #[case] host: &str, #[case] ip: Ipv4Addr) {
    let (dns, ips) = sans(name);
    assert_eq!(dns, vec![host.to_string()], "{name}");
    assert_eq!(ips, vec![ip.octets().to_vec()], "{name}");
}

#[test]
fn key_usages() {
    let pki = pki();
    let ku = |n: &str| pki.x509(n).unwrap().key_usage().unwrap();
    let eku = |n: &str| pki.x509(n).unwrap().extended_key_usage().unwrap();
    for n in ["server-rsa", "server-p256", "server-rsa-chained"] {
        assert!(ku(n).contains(X509KeyUsage::DIGITAL_SIGNATURE), "{n}");
        assert_eq!(eku(n), X509ExtendedKeyUsage::SSL_SERVER, "{n}");
    }
    assert!(ku("server-rsa").contains(X509KeyUsage::KEY_ENCIPHERMENT));
    for n in ["server-rsa-no-server-auth", "server-p256-no-server-auth"] {
        assert_eq!(eku(n), X509ExtendedKeyUsage::SSL_CLIENT, "{n}");
    }
    assert_eq!(ku("server-rsa-no-digital-signature"), X509KeyUsage::KEY_ENCIPHERMENT);
    assert_eq!(ku("server-p256-no-digital-signature"), X509KeyUsage::KEY_AGREEMENT);
    for n in ["client-rsa", "client-p256", "client-untrusted"] {
        assert_eq!(eku(n), X509ExtendedKeyUsage::SSL_CLIENT, "{n}");
    }
    assert!(ku("ca-rsa").contains(X509KeyUsage::KEY_CERT_SIGN));
}

#[rstest]
#[case::rsa("server-rsa", &["ca-rsa"], None)]
#[case::p256("server-p256", &["ca-p256"], None)]
#[case::chained("server-rsa-chained", &["ca-rsa"], None)]
#[case::oversized("server-rsa-oversized", &["ca-rsa"], None)]
#[case::other_root("server-rsa", &["ca-p256"], Some("unable to get local issuer certificate"))]
#[case::expired("server-rsa-expired", &["ca-rsa"], Some("certificate has expired"))]
#[case::expired_p256("server-p256-expired", &["ca-p256"], Some("certificate has expired"))]
#[case::not_yet("server-rsa-not-yet-valid", &["ca-rsa"], Some("certificate is not yet valid"))]
#[case::not_yet_p256("server-p256-not-yet-valid", &["ca-p256"], Some("certificate is not yet valid"))]
#[case::self_signed("server-rsa-self-signed", &["ca-rsa"], Some("self-signed certificate"))]
#[case::self_signed_p256("server-p256-self-signed", &["ca-p256"], Some("self-signed certificate"))]
#[case::no_server_auth("server-rsa-no-server-auth", &["ca-rsa"], Some("unsuitable certificate purpose"))]
#[case::no_server_auth_p256("server-p256-no-server-auth", &["ca-p256"], Some("unsuitable certificate purpose"))]
// The names are wrong, not the chain: a name check (the client's) is what fails.
#[case::wrong_name("server-rsa-wrong-name", &["ca-rsa"], None)]
fn server_chains(#[case] leaf: &str, #[case] roots: &[&str], #[case] error: Option<&str>) {
    let got = verify(leaf, roots, X509PurposeId::SSL_SERVER);
    match error {
        None => assert_eq!(got, Ok(()), "{leaf}"),
        Some(e) => assert_eq!(got, Err(e.to_string()), "{leaf}"),
    }
}

#[rstest]
#[case::rsa("client-rsa", &["ca-rsa"], true)]
#[case::p256("client-p256", &["ca-p256"], true)]
#[case::untrusted("client-untrusted", &["ca-rsa", "ca-p256"], false)]
#[case::untrusted_own_root("client-untrusted", &["ca-untrusted"], true)]
fn client_chains(#[case] leaf: &str, #[case] roots: &[&str], #[case] ok: bool) {
    assert_eq!(verify(leaf, roots, X509PurposeId::SSL_CLIENT).is_ok(), ok, "{leaf}");
}

#[test]
fn the_chain_form_holds_the_intermediate_and_only_chained_leaves_have_one() {
    let pki = pki();
    let chain: PkiRef = "server-rsa-chained.chain".parse().unwrap();
    let certs = X509::stack_from_pem(&pki.bytes(&chain).unwrap()).unwrap();
    let subjects: Vec<Vec<u8>> = certs.iter().map(|c| c.subject_name().to_der().unwrap()).collect();
    assert_eq!(
        subjects,
        vec![
            pki.x509("server-rsa-chained").unwrap().subject_name().to_der().unwrap(),
            pki.x509("ca-int").unwrap().subject_name().to_der().unwrap(),
        ]
    );
    // The intermediate alone does not make the leaf trusted: only with its root.
    assert!(verify("server-rsa-chained", &["ca-int"], X509PurposeId::SSL_SERVER).is_err());
    assert_eq!(
        X509::stack_from_pem(&pki.bytes(&"server-rsa.chain".parse().unwrap()).unwrap())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn the_oversized_leaf_is_larger_than_a_tls_record() {
    let der = pki().bytes(&"server-rsa-oversized.der".parse().unwrap()).unwrap();
    assert!(der.len() > 16 * 1024, "{} bytes", der.len());
    let normal = pki().bytes(&"server-rsa.der".parse().unwrap()).unwrap();
    assert!(normal.len() < 2048, "{} bytes", normal.len());
}

#[test]
fn a_fresh_pki_has_fresh_keys() {
    let dir = tempfile::tempdir().unwrap();
    let other = Pki::generate(dir.path()).unwrap();
    let key: PkiRef = "ca-rsa.key.der".parse().unwrap();
    assert_ne!(other.bytes(&key).unwrap(), pki().bytes(&key).unwrap());
}

#[rstest]
#[case("ca-rsa", "ca-rsa", Form::Cert)]
#[case("client-p256.key", "client-p256", Form::Key)]
#[case("client-p256.key.der", "client-p256", Form::KeyDer)]
#[case("ca-int.der", "ca-int", Form::CertDer)]
#[case("server-rsa-chained.chain", "server-rsa-chained", Form::Chain)]
fn names_parse(#[case] text: &str, #[case] material: &str, #[case] form: Form) {
    let r: PkiRef = text.parse().unwrap();
    assert_eq!((r.material.name, r.form), (material, form));
    assert_eq!(r.to_string(), text);
}

#[rstest]
#[case("ca-rsaa")]
#[case("server-rsa.pem")]
#[case("server-rsa.key.pem")]
#[case("")]
#[case(".key")]
fn unknown_names_are_errors_that_list_the_materials(#[case] text: &str) {
    let e = text.parse::<PkiRef>().unwrap_err().to_string();
    assert!(e.starts_with(&format!("no PKI material `{text}`")), "{e}");
    assert!(e.contains("client-untrusted"), "{e}");
}

#[test]
fn debug_forms_are_the_names() {
    let r: PkiRef = "client-p256.key".parse().unwrap();
    assert_eq!(format!("{r:?}"), "\"client-p256.key\"");
    let m: MaterialRef = "server-rsa".parse().unwrap();
    assert_eq!(format!("{m:?}"), "\"server-rsa\"");
    assert!("server-rsa.key".parse::<MaterialRef>().is_err());
}

//! Tests of the cluster PKI: issuance, reuse on warm starts, and clear errors.

use std::{os::unix::fs::PermissionsExt, sync::Arc};

use rustls::{
    RootCertStore,
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};
use rustls_pki_types::UnixTime;

use super::*;

fn sans() -> Vec<San> {
    serving_sans(Some("node-a"), IpAddr::V4(Ipv4Addr::UNSPECIFIED), &[])
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).expect("parse certificate").1
}

fn client_verifier(ca: &ClusterCa) -> Arc<dyn ClientCertVerifier> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der().to_vec()))
        .expect("add CA");
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier")
}

#[test]
fn client_certificates_carry_every_organisation_and_verify_against_the_ca() {
    let ca = ClusterCa::generate().expect("CA");
    let spec = LeafSpec::client("system:node:node-a", &["system:nodes", "team-a", "team-b"]);
    let leaf = ca.issue(&spec).expect("issue");

    let x509 = parse(&leaf.cert_der);
    let orgs: Vec<_> = x509
        .subject()
        .iter_organization()
        .map(|a| a.as_str().expect("utf8"))
        .collect();
    assert_eq!(orgs, ["system:nodes", "team-a", "team-b"]);
    let cn: Vec<_> = x509
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().expect("utf8"))
        .collect();
    assert_eq!(cn, ["system:node:node-a"]);
    assert!(
        ca.signed(&x509),
        "signature over the rewritten TBS must verify"
    );

    client_verifier(&ca)
        .verify_client_cert(
            &CertificateDer::from(leaf.cert_der.clone()),
            &[],
            UnixTime::now(),
        )
        .expect("webpki accepts the client certificate");
}

#[test]
fn serving_certificates_cover_the_kubernetes_names_and_extra_sans() {
    let ca = ClusterCa::generate().expect("CA");
    let extra: San = "api.example.test".parse().expect("san");
    let wanted = serving_sans(
        Some("node-a"),
        "192.0.2.7".parse().expect("ip"),
        std::slice::from_ref(&extra),
    );
    let leaf = ca
        .issue(&LeafSpec::server("kube-apiserver", wanted.clone()))
        .expect("issue");
    let have = sans_of(&parse(&leaf.cert_der));
    for name in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "node-a",
        "127.0.0.1",
        "10.43.0.1",
        "192.0.2.7",
        "api.example.test",
    ] {
        let san: San = name.parse().expect("san");
        assert!(have.contains(&san), "missing {name} in {have:?}");
    }
    assert_eq!(have.len(), wanted.len());
}

#[test]
fn a_warm_start_reuses_every_file_and_keys_are_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    let first = ClusterPki::load_or_create(&tls, &sans()).expect("first start");
    assert!(first.ca_created);
    assert_eq!(first.reissued.len(), 2, "both leaves are new: {first:?}");

    let second = ClusterPki::load_or_create(&tls, &sans()).expect("second start");
    assert!(!second.ca_created);
    assert!(second.reissued.is_empty(), "{:?}", second.reissued);
    assert_eq!(first.ca.fingerprint(), second.ca.fingerprint());
    assert_eq!(first.serving.cert_pem, second.serving.cert_pem);
    assert_eq!(first.admin.cert_pem, second.admin.cert_pem);

    for (file, mode) in [
        (CA_KEY_FILE, 0o600),
        (SERVING_KEY_FILE, 0o600),
        (ADMIN_KEY_FILE, 0o600),
        (CA_CERT_FILE, 0o644),
    ] {
        let meta = fs::metadata(tls.join(file)).expect("metadata");
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    let meta = fs::metadata(&tls).expect("metadata");
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}

#[test]
fn a_new_tls_san_reissues_the_serving_certificate_but_keeps_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    let first = ClusterPki::load_or_create(&tls, &sans()).expect("first start");
    let mut more = sans();
    more.push("203.0.113.9".parse().expect("san"));
    let second = ClusterPki::load_or_create(&tls, &more).expect("second start");
    assert_eq!(first.ca.fingerprint(), second.ca.fingerprint());
    assert_ne!(first.serving.cert_pem, second.serving.cert_pem);
    assert_eq!(first.admin.cert_pem, second.admin.cert_pem);
    assert_eq!(second.reissued.len(), 1);
    assert!(
        second.reissued[0].1.contains("203.0.113.9"),
        "{:?}",
        second.reissued
    );
}

#[test]
fn a_leaf_signed_by_another_ca_is_reissued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    ClusterPki::load_or_create(&tls, &sans()).expect("first start");
    let stranger = ClusterCa::generate().expect("other CA");
    let foreign = stranger
        .issue(&LeafSpec::client(ADMIN_USER, &[ADMIN_GROUP]))
        .expect("issue");
    fs::write(tls.join(ADMIN_CERT_FILE), &foreign.cert_pem).expect("write");
    fs::write(tls.join(ADMIN_KEY_FILE), &foreign.key_pem).expect("write");
    let second = ClusterPki::load_or_create(&tls, &sans()).expect("second start");
    assert_eq!(
        second.reissued,
        vec![(ADMIN_CERT_FILE, "not signed by the cluster CA".to_string())]
    );
}

#[test]
fn a_corrupt_ca_is_an_error_naming_the_file_never_a_new_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    ClusterPki::load_or_create(&tls, &sans()).expect("first start");
    let before = fs::read(tls.join(CA_KEY_FILE)).expect("read");
    fs::write(tls.join(CA_CERT_FILE), "garbage").expect("write");
    let err = ClusterPki::load_or_create(&tls, &sans()).expect_err("corrupt CA");
    let msg = err.to_string();
    assert!(msg.contains("tls/ca.crt"), "{msg}");
    assert!(msg.contains("not a PEM certificate"), "{msg}");
    assert_eq!(fs::read(tls.join(CA_KEY_FILE)).expect("read"), before);
}

#[test]
fn half_a_ca_is_an_error_naming_both_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    ClusterPki::load_or_create(&tls, &sans()).expect("first start");
    fs::remove_file(tls.join(CA_KEY_FILE)).expect("remove");
    let msg = ClusterPki::load_or_create(&tls, &sans())
        .expect_err("incomplete CA")
        .to_string();
    assert!(
        msg.contains("ca.crt exists but") && msg.contains("ca.key is missing"),
        "{msg}"
    );
}

#[test]
fn a_ca_key_that_belongs_to_another_certificate_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    ClusterPki::load_or_create(&tls, &sans()).expect("first start");
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    fs::write(tls.join(CA_KEY_FILE), other.serialize_pem()).expect("write");
    let msg = ClusterPki::load_or_create(&tls, &sans())
        .expect_err("mismatched key")
        .to_string();
    assert!(
        msg.contains("ca.key: does not match the certificate"),
        "{msg}"
    );
}

#[test]
fn subject_alternative_names_parse_ips_and_dns_names_and_reject_junk() {
    assert_eq!(
        "10.0.0.1".parse::<San>().expect("ip"),
        San::Ip("10.0.0.1".parse().expect("ip"))
    );
    assert_eq!(
        "::1".parse::<San>().expect("ip6"),
        San::Ip("::1".parse().expect("ip"))
    );
    assert_eq!(
        "API.Example.com".parse::<San>().expect("dns"),
        San::Dns("api.example.com".into())
    );
    assert_eq!(
        "*.apps.test".parse::<San>().expect("wildcard"),
        San::Dns("*.apps.test".into())
    );
    for bad in ["", "a..b", "-a.b", "a_b", "a b", "ä.de", "x.*.y"] {
        assert!(bad.parse::<San>().is_err(), "{bad:?} must be rejected");
    }
}

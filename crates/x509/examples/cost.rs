//! Prints the CPU cost of each issuance step (parse+verify CSR, profile, sign, lint).
//! `cargo run --release -p trustbox-x509 --example cost`
use std::time::Instant;
use trustbox_crypto::{Kek, KeyStore, SealedKeyStore};
use trustbox_types::{KeyAlgorithm, Serial};
use trustbox_x509::*;

fn main() {
    let dir = std::env::temp_dir().join(format!("tbx-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store =
        SealedKeyStore::new(&Kek::load_or_create(&dir.join("kek")).expect("kek")).expect("store");
    let now = time::OffsetDateTime::now_utc();
    let (_, rk) = store
        .generate(
            KeyAlgorithm::EcdsaP384,
            &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
        )
        .expect("k");
    let p = CaParams {
        common_name: "r".into(),
        organization: None,
        path_len: None,
        not_before: now,
        not_after: now + time::Duration::days(3650),
    };
    let root = IssuingCa::new_root(&p, rk).expect("root");
    let (_, ik) = store
        .generate(
            KeyAlgorithm::EcdsaP256,
            &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
        )
        .expect("k");
    let ca = root
        .issue_intermediate(
            &p,
            ik,
            &trustbox_types::Serial::random(),
            &trustbox_x509::UrlSet::default(),
        )
        .expect("int");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["a.example.com".to_string()]).expect("p");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let pem = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let profile = builtin_profiles().remove(0);
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        parse_csr(pem.as_bytes()).expect("csr");
    }
    println!(
        "parse+verify CSR: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    split(&pem);
    let csr = parse_csr(pem.as_bytes()).expect("csr");
    let t = Instant::now();
    for _ in 0..n {
        profile.apply(&csr, None, now).expect("plan");
    }
    println!(
        "profile: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let plan = profile.apply(&csr, None, now).expect("plan");
    let urls = UrlSet::default();
    let t = Instant::now();
    let mut der = Vec::new();
    for _ in 0..n {
        der = ca
            .issue_leaf(&Serial::random(), &plan, &csr, &urls)
            .expect("leaf");
    }
    println!(
        "build+sign: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let t = Instant::now();
    for _ in 0..n {
        lint_leaf(&der, &ca, &plan).expect("lint");
    }
    println!("lint: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[allow(dead_code)]
fn split(pem: &str) {
    use x509_parser::prelude::{FromDer, X509CertificationRequest};
    let der = trustbox_x509::pem::decode_one(pem, "CERTIFICATE REQUEST").expect("pem");
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        let _ = X509CertificationRequest::from_der(&der).expect("p");
    }
    println!(
        "  parse only: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let (_, csr) = X509CertificationRequest::from_der(&der).expect("p");
    let t = Instant::now();
    for _ in 0..n {
        csr.verify_signature().expect("v");
    }
    println!(
        "  verify only: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

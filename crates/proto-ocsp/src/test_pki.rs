//! Test support: a root, an issuing CA, leaves and delegated responders built with rcgen on
//! keys in custody, written as PEM for the real `openssl` CLI.

use crate::Responder;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
    SignatureAlgorithm, SigningKey,
};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use time::OffsetDateTime;
use trustbox_crypto::{Kek, KeyStore, SealedKeyStore, Signer};
use trustbox_types::{KeyAlgorithm, Serial};

/// A custody signer seen through rcgen's signing interface.
#[derive(Clone, Debug)]
struct CustodyKey(Arc<dyn Signer>);

impl PublicKeyData for CustodyKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key_raw()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self.0.algorithm() {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                &rcgen::PKCS_RSA_SHA256
            }
        }
    }
}

impl SigningKey for CustodyKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// Root (P-384) -> issuing CA (P-256) -> leaves, in a temp dir holding `root.pem`,
/// `int.pem`, `leaf.pem` with its key `leaf.key`, and `leaf_high.pem` (a serial with its top
/// bit set).
pub(crate) struct TestPki {
    pub dir: tempfile::TempDir,
    store: SealedKeyStore,
    pub root_der: Vec<u8>,
    pub root_key: Arc<dyn Signer>,
    pub int_der: Vec<u8>,
    pub int_key: Arc<dyn Signer>,
    /// The issuing CA's subject Name DER, as x509-parser sees it.
    pub int_subject_der: Vec<u8>,
    int_issuer: Issuer<'static, CustodyKey>,
    pub leaf_serial: Serial,
    pub leaf_high_serial: Serial,
    not_before: OffsetDateTime,
    /// notAfter of every certificate here except the root, Unix seconds.
    pub not_after: i64,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "TrustBox Test");
    dn.push(DnType::CommonName, cn);
    dn
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = Kek::load_or_create(&dir.path().join("kek")).expect("kek");
        let store = SealedKeyStore::new(&kek).expect("store");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let not_before = OffsetDateTime::from_unix_timestamp(now - 3600).expect("time");
        let not_after = now + 30 * 86_400;

        let (_, root_key) = store
            .generate(
                KeyAlgorithm::EcdsaP384,
                &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
            )
            .expect("root key");
        let mut root = CertificateParams::default();
        root.distinguished_name = name("Test Root");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.not_before = not_before;
        root.not_after = OffsetDateTime::from_unix_timestamp(now + 3650 * 86_400).expect("t");
        let root_cert = root
            .self_signed(&CustodyKey(root_key.clone()))
            .expect("root");
        let root_issuer = Issuer::new(root, CustodyKey(root_key.clone()));

        let (_, int_key) = store
            .generate(
                KeyAlgorithm::EcdsaP256,
                &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
            )
            .expect("int key");
        let mut int = CertificateParams::default();
        int.distinguished_name = name("Test Issuing CA");
        int.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        int.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        int.use_authority_key_identifier_extension = true;
        int.not_before = not_before;
        int.not_after = OffsetDateTime::from_unix_timestamp(now + 365 * 86_400).expect("t");
        let int_cert = int
            .signed_by(&CustodyKey(int_key.clone()), &root_issuer)
            .expect("intermediate");
        let int_issuer = Issuer::new(int, CustodyKey(int_key.clone()));
        let int_subject_der = {
            let (_, parsed) =
                x509_parser::parse_x509_certificate(int_cert.der()).expect("x509-parser");
            parsed.subject().as_raw().to_vec()
        };

        let mut pki = Self {
            dir,
            store,
            root_der: root_cert.der().to_vec(),
            root_key,
            int_der: int_cert.der().to_vec(),
            int_key,
            int_subject_der,
            int_issuer,
            leaf_serial: Serial::random(),
            leaf_high_serial: Serial::from_be_bytes(&[0x9a; 16]).expect("serial"),
            not_before,
            not_after,
        };
        pki.write("root.pem", &root_cert.pem());
        pki.write("int.pem", &int_cert.pem());
        let (leaf, leaf_key) = pki.leaf(&pki.leaf_serial.clone());
        pki.write("leaf.pem", &leaf);
        pki.write("leaf.key", &leaf_key);
        let (leaf_high, _) = pki.leaf(&pki.leaf_high_serial.clone());
        pki.write("leaf_high.pem", &leaf_high);
        pki
    }

    fn write(&mut self, file: &str, pem: &str) {
        std::fs::write(self.dir.path().join(file), pem).expect("write pem");
    }

    fn end_entity(&self, cn: &str, serial: &Serial) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name = name(cn);
        p.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
        p.use_authority_key_identifier_extension = true;
        p.not_before = self.not_before;
        p.not_after = OffsetDateTime::from_unix_timestamp(self.not_after).expect("time");
        p
    }

    /// A TLS server leaf with `serial`: (certificate PEM, private key PEM).
    fn leaf(&self, serial: &Serial) -> (String, String) {
        let mut p = self.end_entity("leaf.example", serial);
        p.subject_alt_names = vec![rcgen::SanType::DnsName(
            "leaf.example".try_into().expect("ia5"),
        )];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("leaf key");
        let cert = p.signed_by(&key, &self.int_issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }

    /// A delegated responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) for a new
    /// custody key of `alg`, issued by the issuing CA: (certificate DER, signer).
    pub fn responder_parts(&self, alg: KeyAlgorithm) -> (Vec<u8>, Arc<dyn Signer>) {
        let (_, key) = self
            .store
            .generate(
                alg,
                &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
            )
            .expect("responder key");
        let mut p = self.end_entity(&format!("Test OCSP {alg}"), &Serial::random());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
            vec![0x05, 0x00],
        )];
        let cert = p
            .signed_by(&CustodyKey(key.clone()), &self.int_issuer)
            .expect("responder");
        (cert.der().to_vec(), key)
    }

    /// A responder of `alg` whose certs are [responder, issuing CA].
    pub fn responder(&self, alg: KeyAlgorithm) -> Responder {
        let (cert, key) = self.responder_parts(alg);
        Responder::new(cert, key, vec![self.int_der.clone()]).expect("responder")
    }
}

/// Runs `openssl args...` in `dir`: (exit success, stdout followed by stderr).
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The DER request `openssl ocsp args... -issuer int.pem -cert <cert_file>` makes.
pub(crate) fn openssl_request(pki: &TestPki, cert_file: &str, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["ocsp"];
    all.extend_from_slice(args);
    all.extend([
        "-issuer", "int.pem", "-cert", cert_file, "-reqout", "made.der",
    ]);
    let (ok, out) = openssl(pki.dir.path(), &all);
    assert!(ok, "openssl ocsp {args:?}: {out}");
    std::fs::read(pki.dir.path().join("made.der")).expect("request written")
}

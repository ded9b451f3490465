//! Building and signing certificates through the custody boundary.
//!
//! [RFC 5280 §4](https://www.rfc-editor.org/rfc/rfc5280#section-4): v3, positive random
//! serials, SKI/AKI, basicConstraints (critical), keyUsage (critical), EKU, SAN (critical
//! when the subject is empty), CRL distribution point and AIA from configuration.

use crate::csr::ParsedCsr;
use crate::names::SubjectAltName;
use crate::X509Error;
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber, SignatureAlgorithm, SigningKey,
};
use std::sync::Arc;
use time::OffsetDateTime;
use trustbox_crypto::Signer;
use trustbox_types::{KeyAlgorithm, Serial};
use x509_parser::prelude::{FromDer, X509Certificate};

/// What the profile decided a leaf certificate holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafPlan {
    /// Subject commonName, if copied from the CSR.
    pub common_name: Option<String>,
    /// Subject alternative names, sorted.
    pub sans: Vec<SubjectAltName>,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter (clamped to the issuer's notAfter when signed).
    pub not_after: OffsetDateTime,
    /// keyUsage names.
    pub key_usage: Vec<String>,
    /// extendedKeyUsage names or OIDs.
    pub extended_key_usage: Vec<String>,
}

/// URLs stamped into issued certificates; each is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlSet {
    /// CRL distribution point.
    pub crl: Option<String>,
    /// AIA caIssuers (the issuer's certificate, DER).
    pub ca_issuers: Option<String>,
    /// AIA OCSP responder.
    pub ocsp: Option<String>,
}

/// The subject of a CA certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaParams {
    /// commonName.
    pub common_name: String,
    /// organizationName, if any.
    pub organization: Option<String>,
    /// pathLenConstraint; `None` for unconstrained.
    pub path_len: Option<u8>,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter (clamped to the parent's notAfter for intermediates).
    pub not_after: OffsetDateTime,
}

/// A CA certificate as built: its DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaCertificate {
    /// DER of the certificate.
    pub der: Vec<u8>,
}

/// A custody signer seen through rcgen's signing interface.
#[derive(Clone, Debug)]
pub(crate) struct CustodyKey(Arc<dyn Signer>);

impl CustodyKey {
    pub(crate) fn new(signer: Arc<dyn Signer>) -> Self {
        Self(signer)
    }
}

fn rcgen_algorithm(alg: KeyAlgorithm) -> &'static SignatureAlgorithm {
    match alg {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            &rcgen::PKCS_RSA_SHA256
        }
    }
}

impl PublicKeyData for CustodyKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key_raw()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        rcgen_algorithm(self.0.algorithm())
    }
}

impl SigningKey for CustodyKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A subscriber's public key, taken from its verified CSR.
struct SubjectKey<'a> {
    raw: &'a [u8],
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for SubjectKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.raw
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

thread_local! {
    /// What the last [`ProbeKey`] on this thread was asked to sign.
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// An issuer key that signs nothing: it records the to-be-signed bytes and returns a
/// placeholder signature, so a certificate is complete, and can be linted, before custody
/// is asked for the real signature.
#[derive(Clone, Debug)]
pub(crate) struct ProbeKey {
    raw: Vec<u8>,
    alg: KeyAlgorithm,
}

impl ProbeKey {
    pub(crate) fn of(signer: &dyn Signer) -> Self {
        Self {
            raw: signer.public_key_raw().to_vec(),
            alg: signer.algorithm(),
        }
    }
}

impl PublicKeyData for ProbeKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        rcgen_algorithm(self.alg)
    }
}

impl SigningKey for ProbeKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        CAPTURED.with(|c| *c.borrow_mut() = Some(msg.to_vec()));
        Ok(vec![0; 64])
    }
}

/// Reads one DER TLV at the start of `input`: (tag, header length, content length).
fn tlv(input: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (header, len) = if first < 0x80 {
        (2, first)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        (
            2 + n,
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
        )
    };
    (input.len() >= header + len).then_some((tag, header, len))
}

/// A certificate built and linted, waiting for custody's signature over its
/// tbsCertificate ([RFC 5280 §4.1](https://www.rfc-editor.org/rfc/rfc5280#section-4.1)).
pub struct UnsignedCertificate {
    tbs: Vec<u8>,
    signature_algorithm: Vec<u8>,
    preview: Vec<u8>,
    signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for UnsignedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsignedCertificate")
            .field("tbs", &format_args!("<{} bytes>", self.tbs.len()))
            .finish_non_exhaustive()
    }
}

impl UnsignedCertificate {
    /// Builds with `build`, which must sign with a [`ProbeKey`]; `signer` is the key that
    /// will sign it for real.
    fn probe(
        signer: Arc<dyn Signer>,
        build: impl FnOnce() -> Result<Vec<u8>, X509Error>,
    ) -> Result<Self, X509Error> {
        CAPTURED.with(|c| c.borrow_mut().take());
        let preview = build()?;
        let tbs = CAPTURED
            .with(|c| c.borrow_mut().take())
            .ok_or_else(|| X509Error::Build("the certificate was never signed".into()))?;
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        let malformed = || X509Error::Build("the built certificate does not parse".into());
        let (tag, header, len) = tlv(&preview).ok_or_else(malformed)?;
        let content = preview
            .get(header..header + len)
            .filter(|c| tag == 0x30 && c.starts_with(&tbs))
            .ok_or_else(malformed)?;
        let rest = &content[tbs.len()..];
        let (_, alg_header, alg_len) = tlv(rest).ok_or_else(malformed)?;
        let signature_algorithm = rest[..alg_header + alg_len].to_vec();
        Ok(Self {
            tbs,
            signature_algorithm,
            preview,
            signer,
        })
    }

    /// The certificate as it will be, with a placeholder signature: what the lints read.
    pub fn preview_der(&self) -> &[u8] {
        &self.preview
    }

    /// The DER tbsCertificate custody must sign.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The key that must sign it.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// The certificate with `signature` (made by [`Self::signer`] over [`Self::tbs`]).
    pub fn assemble(self, signature: &[u8]) -> Vec<u8> {
        let mut bits = Vec::with_capacity(signature.len() + 1);
        bits.push(0);
        bits.extend_from_slice(signature);
        let mut content = self.tbs;
        content.extend_from_slice(&self.signature_algorithm);
        content.extend_from_slice(&der(0x03, &bits));
        der(0x30, &content)
    }

    /// Signs it now, on this thread (for the rare CA and responder certificates; leaves
    /// are signed through the seam's signing pool).
    pub fn sign_now(self) -> Result<Vec<u8>, X509Error> {
        let signature = self
            .signer
            .sign(&self.tbs)
            .map_err(|e| X509Error::Build(format!("custody refused to sign: {e}")))?;
        Ok(self.assemble(&signature))
    }
}

/// A CA that can issue: its certificate and its key in custody.
pub struct IssuingCa {
    issuer: Issuer<'static, CustodyKey>,
    /// The same issuer with a [`ProbeKey`]: builds certificates before they are signed.
    probe: Issuer<'static, ProbeKey>,
    cert_der: Vec<u8>,
    subject_raw: Vec<u8>,
    ski: Vec<u8>,
    serial: Serial,
    not_after: OffsetDateTime,
    key_algorithm: KeyAlgorithm,
    path_len: Option<u32>,
}

impl std::fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuingCa")
            .field("not_after", &self.not_after)
            .field("key_algorithm", &self.key_algorithm)
            .finish_non_exhaustive()
    }
}

pub(crate) fn build_err(e: impl std::fmt::Display) -> X509Error {
    X509Error::Build(e.to_string())
}

fn ca_params(p: &CaParams, serial: &Serial) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(o) = &p.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    dn.push(DnType::CommonName, p.common_name.as_str());
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    params.not_before = p.not_before;
    params.not_after = p.not_after;
    params.is_ca = IsCa::Ca(match p.path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::Sha256;
    params
}

impl IssuingCa {
    /// Builds a self-signed root certificate for `signer` and returns the CA.
    pub fn new_root(p: &CaParams, signer: Arc<dyn Signer>) -> Result<Self, X509Error> {
        if !signer.algorithm().allowed_for_ca() {
            return Err(X509Error::Build(format!(
                "{} may not protect a CA key",
                signer.algorithm()
            )));
        }
        let probe = ProbeKey::of(signer.as_ref());
        let unsigned = UnsignedCertificate::probe(signer.clone(), || {
            let cert = ca_params(p, &Serial::random())
                .self_signed(&probe)
                .map_err(build_err)?;
            Ok(cert.der().to_vec())
        })?;
        crate::lint::lint_ca(unsigned.preview_der(), None)?;
        Self::from_certificate(unsigned.sign_now()?, signer)
    }

    /// Loads a CA from its certificate and the signer holding its key; fails if the two
    /// do not belong together.
    pub fn from_certificate(cert_der: Vec<u8>, signer: Arc<dyn Signer>) -> Result<Self, X509Error> {
        let (subject_raw, ski, serial, not_after, path_len) = {
            let (_, cert) = X509Certificate::from_der(&cert_der).map_err(build_err)?;
            let path_len = match cert.basic_constraints() {
                Ok(Some(bc)) if bc.value.ca => bc.value.path_len_constraint,
                _ => {
                    return Err(X509Error::Build(
                        "the certificate is not a CA certificate".into(),
                    ))
                }
            };
            if cert.public_key().raw != signer.public_key_spki() {
                return Err(X509Error::Build(
                    "the CA certificate does not match its key in custody".into(),
                ));
            }
            let ski = cert
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                        Some(k.0.to_vec())
                    }
                    _ => None,
                })
                .ok_or_else(|| {
                    X509Error::Build("CA certificate has no subjectKeyIdentifier".into())
                })?;
            let serial = Serial::from_be_bytes(cert.raw_serial())
                .map_err(|e| X509Error::Build(format!("CA certificate serial: {e}")))?;
            (
                cert.subject().as_raw().to_vec(),
                ski,
                serial,
                cert.validity().not_after.to_datetime(),
                path_len,
            )
        };
        let key_algorithm = signer.algorithm();
        let probe =
            Issuer::from_ca_cert_der(&cert_der.as_slice().into(), ProbeKey::of(signer.as_ref()))
                .map_err(build_err)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), CustodyKey(signer))
            .map_err(build_err)?;
        Ok(Self {
            issuer,
            probe,
            cert_der,
            subject_raw,
            ski,
            serial,
            not_after,
            key_algorithm,
            path_len,
        })
    }

    /// Its pathLenConstraint: how many CAs may follow it in a path (`None`: unlimited).
    pub fn path_len(&self) -> Option<u32> {
        self.path_len
    }

    /// The CA's certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The serial of a certificate (DER), if it parses.
    pub fn serial_of(der: &[u8]) -> Option<Serial> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Serial::from_be_bytes(cert.raw_serial()).ok()
    }

    /// The CA certificate's serial.
    pub fn serial(&self) -> &Serial {
        &self.serial
    }

    /// The CA's notAfter; nothing it signs outlives it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The CA key's algorithm.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key_algorithm
    }

    /// The CA's raw public key (the subjectPublicKey bits), as OCSP key hashes use it.
    pub fn public_key_raw(&self) -> &[u8] {
        self.issuer.key().0.public_key_raw()
    }

    #[cfg(test)]
    pub(crate) fn issuer(&self) -> &Issuer<'static, CustodyKey> {
        &self.issuer
    }

    /// The CA's key in custody.
    pub(crate) fn signer(&self) -> &Arc<dyn Signer> {
        &self.issuer.key().0
    }

    /// Builds a certificate signed by this CA with `build` (given the probing issuer) and
    /// returns it unsigned.
    pub(crate) fn prepare(
        &self,
        build: impl FnOnce(&Issuer<'static, ProbeKey>) -> Result<Vec<u8>, X509Error>,
    ) -> Result<UnsignedCertificate, X509Error> {
        UnsignedCertificate::probe(self.signer().clone(), || build(&self.probe))
    }

    /// The raw DER of the CA's subject name (the issuer name of what it signs).
    pub fn subject_raw(&self) -> &[u8] {
        &self.subject_raw
    }

    /// The CA's subjectKeyIdentifier (the authorityKeyIdentifier of what it signs).
    pub fn key_id(&self) -> &[u8] {
        &self.ski
    }

    /// Signs a subordinate CA certificate with `serial` for the key held by `subject`,
    /// carrying this CA's revocation URLs (`urls`) so relying parties can check it.
    pub fn issue_intermediate(
        &self,
        p: &CaParams,
        subject: Arc<dyn Signer>,
        serial: &Serial,
        urls: &UrlSet,
    ) -> Result<IssuingCa, X509Error> {
        if !subject.algorithm().allowed_for_ca() {
            return Err(X509Error::Build(format!(
                "{} may not protect a CA key",
                subject.algorithm()
            )));
        }
        let mut p = p.clone();
        // RFC 5280 §4.2.1.9: a CA with pathLenConstraint n admits n more CAs below it.
        match self.path_len {
            Some(0) => {
                return Err(X509Error::CaConstraint(
                    "the parent CA has pathLenConstraint 0: it may sign no CA certificates".into(),
                ))
            }
            Some(n) => {
                let most = u8::try_from(n - 1).unwrap_or(u8::MAX);
                p.path_len = Some(p.path_len.map_or(most, |asked| asked.min(most)));
            }
            None => {}
        }
        // A child never outlives its parent.
        p.not_after = p.not_after.min(self.not_after);
        let mut params = ca_params(&p, serial);
        params.use_authority_key_identifier_extension = true;
        stamp_urls(&mut params, urls);
        let unsigned = self.prepare(|issuer| {
            let cert = params
                .signed_by(&CustodyKey(subject.clone()), issuer)
                .map_err(build_err)?;
            Ok(cert.der().to_vec())
        })?;
        crate::lint::lint_ca(unsigned.preview_der(), Some(self))?;
        IssuingCa::from_certificate(unsigned.sign_now()?, subject)
    }

    /// Builds, lints and signs (on this thread) a leaf certificate for the key of `csr` as
    /// `plan` says.
    pub fn issue_leaf(
        &self,
        serial: &Serial,
        plan: &LeafPlan,
        csr: &ParsedCsr,
        urls: &UrlSet,
    ) -> Result<Vec<u8>, X509Error> {
        let unsigned = self.prepare_leaf(serial, plan, csr, urls)?;
        crate::lint::lint_leaf(unsigned.preview_der(), self, plan)?;
        unsigned.sign_now()
    }

    /// Builds a leaf certificate for the key of `csr` as `plan` says, unsigned: the caller
    /// lints [`UnsignedCertificate::preview_der`] and has custody sign it.
    pub fn prepare_leaf(
        &self,
        serial: &Serial,
        plan: &LeafPlan,
        csr: &ParsedCsr,
        urls: &UrlSet,
    ) -> Result<UnsignedCertificate, X509Error> {
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
        params.not_before = plan.not_before;
        params.not_after = plan.not_after.min(self.not_after);
        if params.not_after <= params.not_before {
            return Err(X509Error::Build(
                "the issuer expires before the certificate would start".into(),
            ));
        }
        let mut dn = DistinguishedName::new();
        if let Some(cn) = &plan.common_name {
            dn.push(DnType::CommonName, cn.as_str());
        }
        params.distinguished_name = dn;
        params.subject_alt_names = plan
            .sans
            .iter()
            .map(|s| {
                Ok(match s {
                    SubjectAltName::Dns(d) => {
                        SanType::DnsName(d.as_str().try_into().map_err(build_err)?)
                    }
                    SubjectAltName::Ip(ip) => SanType::IpAddress(*ip),
                    SubjectAltName::Uri(u) => {
                        SanType::URI(u.as_str().try_into().map_err(build_err)?)
                    }
                    SubjectAltName::Email(e) => {
                        SanType::Rfc822Name(e.as_str().try_into().map_err(build_err)?)
                    }
                })
            })
            .collect::<Result<_, X509Error>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = plan.key_usage.iter().filter_map(|k| key_usage(k)).collect();
        params.extended_key_usages = plan
            .extended_key_usage
            .iter()
            .filter_map(|k| ext_key_usage(k))
            .collect();
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        stamp_urls(&mut params, urls);
        let subject = SubjectKey {
            raw: &csr.public_key_raw,
            alg: rcgen_algorithm(csr.key_algorithm),
        };
        self.prepare(|issuer| {
            let cert = params.signed_by(&subject, issuer).map_err(build_err)?;
            Ok(cert.der().to_vec())
        })
    }
}

/// The DER SubjectPublicKeyInfo of the certificate `der`, if it parses.
pub fn spki_of(der: &[u8]) -> Option<Vec<u8>> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| c.public_key().raw.to_vec())
}

/// The raw DER issuer name, raw DER subject name and serial of the certificate `der`, if
/// it parses.
pub fn names_and_serial_of(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Serial)> {
    let (_, c) = X509Certificate::from_der(der).ok()?;
    Some((
        c.issuer().as_raw().to_vec(),
        c.subject().as_raw().to_vec(),
        Serial::from_be_bytes(c.raw_serial()).ok()?,
    ))
}

/// Adds the CRL distribution point and AIA extensions `urls` asks for.
fn stamp_urls(params: &mut CertificateParams, urls: &UrlSet) {
    if let Some(crl) = &urls.crl {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![crl.clone()],
        }];
    }
    if let Some(aia) = authority_info_access(urls) {
        params.custom_extensions.push(aia);
    }
}

fn key_usage(name: &str) -> Option<KeyUsagePurpose> {
    Some(match name {
        "digitalSignature" => KeyUsagePurpose::DigitalSignature,
        "contentCommitment" | "nonRepudiation" => KeyUsagePurpose::ContentCommitment,
        "keyEncipherment" => KeyUsagePurpose::KeyEncipherment,
        "dataEncipherment" => KeyUsagePurpose::DataEncipherment,
        "keyAgreement" => KeyUsagePurpose::KeyAgreement,
        _ => return None,
    })
}

fn ext_key_usage(name: &str) -> Option<ExtendedKeyUsagePurpose> {
    Some(match name {
        "serverAuth" => ExtendedKeyUsagePurpose::ServerAuth,
        "clientAuth" => ExtendedKeyUsagePurpose::ClientAuth,
        "codeSigning" => ExtendedKeyUsagePurpose::CodeSigning,
        "emailProtection" => ExtendedKeyUsagePurpose::EmailProtection,
        "timeStamping" => ExtendedKeyUsagePurpose::TimeStamping,
        other => ExtendedKeyUsagePurpose::Other(crate::profile::parse_eku_oid(other)?),
    })
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 5);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len < 0x1_0000 {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// authorityInfoAccess ([RFC 5280 §4.2.2.1](https://www.rfc-editor.org/rfc/rfc5280#section-4.2.2.1)).
fn authority_info_access(urls: &UrlSet) -> Option<CustomExtension> {
    const OCSP: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    const CA_ISSUERS: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let mut body = Vec::new();
    for (method, url) in [(OCSP, &urls.ocsp), (CA_ISSUERS, &urls.ca_issuers)] {
        if let Some(url) = url {
            let mut desc = method.to_vec();
            desc.extend(der(0x86, url.as_bytes()));
            body.extend(der(0x30, &desc));
        }
    }
    if body.is_empty() {
        return None;
    }
    Some(CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 1],
        der(0x30, &body),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::csr::{parse_csr, tests::make_csr};
    use crate::profile::builtin_profiles;
    use trustbox_crypto::{Kek, KeyStore, SealedKeyStore};

    pub(crate) struct TestPki {
        _dir: tempfile::TempDir,
        pub root: IssuingCa,
        pub intermediate: IssuingCa,
    }

    pub(crate) fn test_pki() -> TestPki {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SealedKeyStore::new(&Kek::load_or_create(&dir.path().join("kek")).expect("kek"))
                .expect("store");
        let now = OffsetDateTime::now_utc();
        let (_, root_key) = store
            .generate(
                KeyAlgorithm::EcdsaP384,
                &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
            )
            .expect("root key");
        let root = IssuingCa::new_root(
            &CaParams {
                common_name: "Test Root".into(),
                organization: Some("TrustBox Test".into()),
                path_len: None,
                not_before: now,
                not_after: now + time::Duration::days(3650),
            },
            root_key,
        )
        .expect("root");
        let (_, int_key) = store
            .generate(
                KeyAlgorithm::EcdsaP256,
                &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
            )
            .expect("int key");
        let intermediate = root
            .issue_intermediate(
                &CaParams {
                    common_name: "Test Issuing CA".into(),
                    organization: Some("TrustBox Test".into()),
                    path_len: Some(0),
                    not_before: now,
                    not_after: now + time::Duration::days(20000),
                },
                int_key,
                &Serial::random(),
                &UrlSet::default(),
            )
            .expect("intermediate");
        TestPki {
            _dir: dir,
            root,
            intermediate,
        }
    }

    #[test]
    fn path_length_constraints_hold_and_children_never_outlive_parents() {
        let pki = test_pki();
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SealedKeyStore::new(&Kek::load_or_create(&dir.path().join("kek")).expect("kek"))
                .expect("store");
        let now = OffsetDateTime::now_utc();
        let params = |path_len, days| CaParams {
            common_name: "Child".into(),
            organization: None,
            path_len,
            not_before: now,
            not_after: now + time::Duration::days(days),
        };
        // the test intermediate has pathLen 0 (and was asked to outlive its root)
        assert_eq!(pki.intermediate.path_len(), Some(0));
        assert!(pki.intermediate.not_after() <= pki.root.not_after());
        let (_, key) = store
            .generate(
                KeyAlgorithm::EcdsaP256,
                &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
            )
            .expect("key");
        let e = pki
            .intermediate
            .issue_intermediate(
                &params(None, 30),
                key,
                &Serial::random(),
                &UrlSet::default(),
            )
            .expect_err("no CA under pathLen 0");
        assert!(matches!(e, X509Error::CaConstraint(_)), "{e}");
        // under pathLen 2, a child asking for more (or nothing) gets 1
        let (_, key) = store
            .generate(
                KeyAlgorithm::EcdsaP256,
                &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
            )
            .expect("key");
        let mid = pki
            .root
            .issue_intermediate(
                &params(Some(2), 100),
                key,
                &Serial::random(),
                &UrlSet::default(),
            )
            .expect("mid");
        for asked in [None, Some(5)] {
            let (_, key) = store
                .generate(
                    KeyAlgorithm::EcdsaP256,
                    &trustbox_crypto::KeyOwner::new(trustbox_crypto::KeyRole::Ca, "test", "test"),
                )
                .expect("key");
            let child = mid
                .issue_intermediate(
                    &params(asked, 99_999),
                    key,
                    &Serial::random(),
                    &UrlSet::default(),
                )
                .expect("child");
            assert_eq!(child.path_len(), Some(1), "asked {asked:?}");
            assert!(child.not_after() <= mid.not_after());
        }
    }

    #[test]
    fn issues_a_leaf_that_chains_and_lints() {
        let pki = test_pki();
        assert_eq!(
            pki.intermediate.not_after(),
            pki.root.not_after(),
            "clamped to parent"
        );
        let csr = parse_csr(
            make_csr(
                Some("www.example.com"),
                &[SanType::DnsName("www.example.com".try_into().expect("ia5"))],
                &rcgen::PKCS_ECDSA_P256_SHA256,
            )
            .as_bytes(),
        )
        .expect("csr");
        let profile = builtin_profiles().remove(0);
        let plan = profile
            .apply(
                &csr,
                Some(std::time::Duration::from_secs(30 * 86400)),
                OffsetDateTime::now_utc(),
            )
            .expect("plan");
        let urls = UrlSet {
            crl: Some("http://127.0.0.1:8080/crl/x/0.crl".into()),
            ca_issuers: Some("http://127.0.0.1:8080/ca/x.cer".into()),
            ocsp: None,
        };
        let serial = Serial::random();
        let der = pki
            .intermediate
            .issue_leaf(&serial, &plan, &csr, &urls)
            .expect("leaf");
        crate::lint::lint_leaf(&der, &pki.intermediate, &plan).expect("lint clean");
        let (_, cert) = X509Certificate::from_der(&der).expect("parses");
        assert_eq!(cert.raw_serial(), serial.as_bytes());
        let (_, int) =
            X509Certificate::from_der(pki.intermediate.certificate_der()).expect("parses");
        cert.verify_signature(Some(int.public_key()))
            .expect("signed by the intermediate");
        let (_, root) = X509Certificate::from_der(pki.root.certificate_der()).expect("parses");
        int.verify_signature(Some(root.public_key()))
            .expect("signed by the root");
        root.verify_signature(None).expect("self-signed");
    }

    /// Counts the signatures custody is asked for.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn Signer>,
        signed: std::sync::atomic::AtomicUsize,
    }

    impl Signer for Counting {
        fn algorithm(&self) -> KeyAlgorithm {
            self.inner.algorithm()
        }
        fn public_key_spki(&self) -> &[u8] {
            self.inner.public_key_spki()
        }
        fn public_key_raw(&self) -> &[u8] {
            self.inner.public_key_raw()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, trustbox_crypto::CryptoError> {
            self.signed
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.sign(message)
        }
    }

    #[test]
    fn a_leaf_is_built_and_linted_before_custody_signs_it() {
        let pki = test_pki();
        let counting = Arc::new(Counting {
            inner: pki.intermediate.signer().clone(),
            signed: std::sync::atomic::AtomicUsize::new(0),
        });
        let ca = IssuingCa::from_certificate(
            pki.intermediate.certificate_der().to_vec(),
            counting.clone(),
        )
        .expect("ca");
        let csr = parse_csr(
            make_csr(
                Some("a.example.com"),
                &[SanType::DnsName("a.example.com".try_into().expect("ia5"))],
                &rcgen::PKCS_ECDSA_P256_SHA256,
            )
            .as_bytes(),
        )
        .expect("csr");
        let now = OffsetDateTime::now_utc();
        let day = Some(std::time::Duration::from_secs(86400));
        let plan = builtin_profiles()
            .remove(0)
            .apply(&csr, day, now)
            .expect("plan");
        let unsigned = ca
            .prepare_leaf(&Serial::random(), &plan, &csr, &UrlSet::default())
            .expect("built");
        // a lint failure (here: the preview is held to another plan) stops it unsigned
        let mut other = plan.clone();
        other.sans.clear();
        assert!(crate::lint::lint_leaf(unsigned.preview_der(), &ca, &other).is_err());
        crate::lint::lint_leaf(unsigned.preview_der(), &ca, &plan).expect("lint clean");
        assert_eq!(
            counting.signed.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing signed while building and linting"
        );
        let tbs = unsigned.tbs().to_vec();
        let der = unsigned.sign_now().expect("signed");
        assert_eq!(counting.signed.load(std::sync::atomic::Ordering::SeqCst), 1);
        let (_, cert) = X509Certificate::from_der(&der).expect("parses");
        assert_eq!(
            cert.tbs_certificate.as_ref(),
            tbs.as_slice(),
            "the linted TBS is the one signed"
        );
        let (_, int) = X509Certificate::from_der(ca.certificate_der()).expect("parses");
        cert.verify_signature(Some(int.public_key()))
            .expect("signed by the intermediate");
    }

    #[test]
    fn refuses_a_signer_that_does_not_match_the_certificate() {
        let a = test_pki();
        let b = test_pki();
        let key = b.intermediate.issuer.key().0.clone();
        assert!(
            IssuingCa::from_certificate(a.intermediate.certificate_der().to_vec(), key).is_err()
        );
    }

    #[test]
    fn aia_encodes_both_methods() {
        let ext = authority_info_access(&UrlSet {
            crl: None,
            ca_issuers: Some("http://x/ca".into()),
            ocsp: Some("http://x/ocsp".into()),
        })
        .expect("some");
        assert_eq!(ext.content()[0], 0x30);
        assert!(authority_info_access(&UrlSet::default()).is_none());
    }
}

//! Certificate revocation lists and delegated OCSP responder certificates, signed through
//! the custody boundary.
//!
//! CRLs are encoded here rather than by rcgen so that a million entries go straight into one
//! buffer. They follow [RFC 5280 §5](https://www.rfc-editor.org/rfc/rfc5280#section-5): v2, the
//! issuer's name, thisUpdate/nextUpdate, authorityKeyIdentifier, a monotonic cRLNumber and,
//! for partitioned CRLs, a critical issuingDistributionPoint naming the shard's own URL.
//! Entries carry reasonCode (absent for `unspecified`, as §5.3.1 asks) and invalidityDate.

use crate::build::{build_err, CustodyKey, IssuingCa};
use crate::X509Error;
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyIdMethod, KeyUsagePurpose, SerialNumber,
};
use std::sync::Arc;
use time::OffsetDateTime;
use trustbox_crypto::Signer;
use trustbox_types::{KeyAlgorithm, RevocationReason, Serial};

/// One revoked certificate as a CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// The serial's minimal big-endian bytes.
    pub serial: Vec<u8>,
    /// Revocation time, Unix seconds.
    pub revoked_at: i64,
    /// Reason, if known.
    pub reason: Option<RevocationReason>,
    /// Invalidity date, Unix seconds, if known.
    pub invalidity_date: Option<i64>,
}

/// What a CRL says besides its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSpec {
    /// cRLNumber ([RFC 5280 §5.2.3](https://www.rfc-editor.org/rfc/rfc5280#section-5.2.3)).
    pub crl_number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The URL this CRL is published at, stamped as its critical issuingDistributionPoint
    /// (the same URL as the CRL distribution point of the certificates it covers).
    pub distribution_point: Option<String>,
}

/// Length of a DER header (tag and length octets) for `len` content octets.
fn header_len(len: usize) -> usize {
    match len {
        0..=0x7f => 2,
        0x80..=0xff => 3,
        0x100..=0xffff => 4,
        0x1_0000..=0xff_ffff => 5,
        _ => 6,
    }
}

/// Appends a DER tag and definite length.
fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    push_header(out, tag, content.len());
    out.extend_from_slice(content);
}

/// The AlgorithmIdentifier DER of signatures by a key of `alg` (as the custody Signer makes
/// them: ECDSA with SHA-256/384, RSA PKCS#1 v1.5 with SHA-256 and NULL parameters, Ed25519).
fn signature_algorithm(alg: KeyAlgorithm) -> &'static [u8] {
    match alg {
        KeyAlgorithm::EcdsaP256 => &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ],
        KeyAlgorithm::EcdsaP384 => &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ],
        KeyAlgorithm::Ed25519 => &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ],
    }
}

/// Time ([RFC 5280 §5.1.2.4](https://www.rfc-editor.org/rfc/rfc5280#section-5.1.2.4)):
/// UTCTime through 2049, GeneralizedTime from 2050.
fn encode_time(out: &mut Vec<u8>, t: OffsetDateTime) -> Result<(), X509Error> {
    if (1950..2050).contains(&t.year()) {
        let f = time::macros::format_description!(
            "[year repr:last_two][month][day][hour][minute][second]Z"
        );
        push_tlv(out, 0x17, t.format(&f).map_err(build_err)?.as_bytes());
        Ok(())
    } else {
        encode_generalized_time(out, t)
    }
}

fn encode_generalized_time(out: &mut Vec<u8>, t: OffsetDateTime) -> Result<(), X509Error> {
    let f = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    push_tlv(out, 0x18, t.format(&f).map_err(build_err)?.as_bytes());
    Ok(())
}

fn timestamp(t: i64) -> Result<OffsetDateTime, X509Error> {
    OffsetDateTime::from_unix_timestamp(t).map_err(build_err)
}

/// One Extension: extnID, critical (only when true), extnValue.
fn push_extension(out: &mut Vec<u8>, oid_der: &[u8], critical: bool, value: &[u8]) {
    let content =
        oid_der.len() + if critical { 3 } else { 0 } + header_len(value.len()) + value.len();
    push_header(out, 0x30, content);
    out.extend_from_slice(oid_der);
    if critical {
        out.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    push_tlv(out, 0x04, value);
}

const OID_REASON_CODE: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x15];
const OID_INVALIDITY_DATE: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x18];
const OID_AUTHORITY_KEY_ID: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x23];
const OID_CRL_NUMBER: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x14];
const OID_ISSUING_DP: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x1c];

/// A positive INTEGER's content octets for big-endian magnitude `bytes`.
fn integer_content(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let trimmed = &bytes[start.min(bytes.len())..];
    let mut out = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    out
}

/// One revokedCertificates entry ([RFC 5280 §5.1.2.6](https://www.rfc-editor.org/rfc/rfc5280#section-5.1.2.6)):
/// userCertificate, revocationDate, and reasonCode (absent for unspecified, §5.3.1) and
/// invalidityDate (GeneralizedTime, §5.3.2) when known.
fn encode_entry(out: &mut Vec<u8>, e: &CrlEntry) -> Result<(), X509Error> {
    let mut body = Vec::with_capacity(96);
    push_tlv(&mut body, 0x02, &integer_content(&e.serial));
    encode_time(&mut body, timestamp(e.revoked_at)?)?;
    let reason = e.reason.filter(|r| *r != RevocationReason::Unspecified);
    if reason.is_some() || e.invalidity_date.is_some() {
        let mut exts = Vec::with_capacity(48);
        if let Some(r) = reason {
            push_extension(&mut exts, &OID_REASON_CODE, false, &[0x0a, 0x01, r.code()]);
        }
        if let Some(t) = e.invalidity_date {
            let mut v = Vec::with_capacity(17);
            encode_generalized_time(&mut v, timestamp(t)?)?;
            push_extension(&mut exts, &OID_INVALIDITY_DATE, false, &v);
        }
        push_tlv(&mut body, 0x30, &exts);
    }
    push_tlv(out, 0x30, &body);
    Ok(())
}

/// crlExtensions ([0] EXPLICIT): authorityKeyIdentifier, cRLNumber and, for a shard, the
/// critical issuingDistributionPoint with its fullName URI (RFC 5280 §5.2).
fn crl_extensions(key_id: &[u8], spec: &CrlSpec) -> Vec<u8> {
    let mut exts = Vec::new();
    let mut aki = Vec::new();
    push_tlv(&mut aki, 0x80, key_id);
    let mut aki_seq = Vec::new();
    push_tlv(&mut aki_seq, 0x30, &aki);
    push_extension(&mut exts, &OID_AUTHORITY_KEY_ID, false, &aki_seq);
    let mut number = Vec::new();
    push_tlv(
        &mut number,
        0x02,
        &integer_content(&spec.crl_number.to_be_bytes()),
    );
    push_extension(&mut exts, &OID_CRL_NUMBER, false, &number);
    if let Some(url) = &spec.distribution_point {
        // IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] { fullName [0]
        // GeneralNames { uniformResourceIdentifier [6] } } }
        let mut uri = Vec::new();
        push_tlv(&mut uri, 0x86, url.as_bytes());
        let mut full_name = Vec::new();
        push_tlv(&mut full_name, 0xa0, &uri);
        let mut dp = Vec::new();
        push_tlv(&mut dp, 0xa0, &full_name);
        let mut idp = Vec::new();
        push_tlv(&mut idp, 0x30, &dp);
        push_extension(&mut exts, &OID_ISSUING_DP, true, &idp);
    }
    let mut seq = Vec::new();
    push_tlv(&mut seq, 0x30, &exts);
    let mut tagged = Vec::new();
    push_tlv(&mut tagged, 0xa0, &seq);
    tagged
}

/// id-pkix-ocsp-nocheck ([RFC 6960 §4.2.2.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.2.2.1)).
const OCSP_NOCHECK: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

impl IssuingCa {
    /// Signs a CRL listing `entries`, consumed one at a time and encoded straight into one
    /// buffer (a million entries cost their DER and little more).
    pub fn sign_crl(
        &self,
        spec: &CrlSpec,
        entries: impl IntoIterator<Item = CrlEntry>,
    ) -> Result<Vec<u8>, X509Error> {
        if spec.next_update <= spec.this_update {
            return Err(X509Error::Build("nextUpdate must follow thisUpdate".into()));
        }
        let mut revoked = Vec::new();
        for e in entries {
            encode_entry(&mut revoked, &e)?;
        }
        let alg = signature_algorithm(self.key_algorithm());
        // TBSCertList (RFC 5280 §5.1.2), version v2 (1).
        let mut head = vec![0x02, 0x01, 0x01];
        head.extend_from_slice(alg);
        head.extend_from_slice(self.subject_raw());
        encode_time(&mut head, spec.this_update)?;
        encode_time(&mut head, spec.next_update)?;
        let extensions = crl_extensions(self.key_id(), spec);
        let revoked_len = if revoked.is_empty() {
            0
        } else {
            header_len(revoked.len()) + revoked.len()
        };
        let tbs_content = head.len() + revoked_len + extensions.len();
        let mut tbs = Vec::with_capacity(header_len(tbs_content) + tbs_content);
        push_header(&mut tbs, 0x30, tbs_content);
        tbs.extend_from_slice(&head);
        if !revoked.is_empty() {
            push_header(&mut tbs, 0x30, revoked.len());
            tbs.extend_from_slice(&revoked);
        }
        drop(revoked);
        tbs.extend_from_slice(&extensions);
        let signature = self.signer().sign(&tbs).map_err(build_err)?;
        // CertificateList: tbsCertList, signatureAlgorithm, signatureValue (BIT STRING).
        let bits = signature.len() + 1;
        let content = tbs.len() + alg.len() + header_len(bits) + bits;
        let mut out = Vec::with_capacity(header_len(content) + content);
        push_header(&mut out, 0x30, content);
        out.extend_from_slice(&tbs);
        drop(tbs);
        out.extend_from_slice(alg);
        push_header(&mut out, 0x03, bits);
        out.push(0);
        out.extend_from_slice(&signature);
        Ok(out)
    }

    /// Signs a delegated OCSP responder certificate for the key held by `subject`:
    /// digitalSignature, id-kp-OCSPSigning, id-pkix-ocsp-nocheck, not a CA.
    pub fn issue_ocsp_responder(
        &self,
        serial: &Serial,
        subject: Arc<dyn Signer>,
        common_name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Vec<u8>, X509Error> {
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
        params.not_before = not_before;
        params.not_after = not_after.min(self.not_after());
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &OCSP_NOCHECK,
                vec![0x05, 0x00],
            ));
        let unsigned = self.prepare(|issuer| {
            let cert = params
                .signed_by(&CustodyKey::new(subject), issuer)
                .map_err(build_err)?;
            Ok(cert.der().to_vec())
        })?;
        crate::lint::lint_ocsp_responder(unsigned.preview_der(), self)?;
        unsigned.sign_now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::test_pki;
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::revocation_list::CertificateRevocationList;

    #[test]
    fn crl_lists_entries_with_reasons_and_names_its_shard() {
        let pki = test_pki();
        let now = OffsetDateTime::now_utc();
        let der = pki
            .intermediate
            .sign_crl(
                &CrlSpec {
                    crl_number: 7,
                    this_update: now,
                    next_update: now + time::Duration::hours(24),
                    distribution_point: Some("http://127.0.0.1:8080/crl/x/0.crl".into()),
                },
                vec![
                    CrlEntry {
                        serial: vec![0x7f, 1, 2],
                        revoked_at: now.unix_timestamp() - 10,
                        reason: Some(RevocationReason::KeyCompromise),
                        invalidity_date: Some(now.unix_timestamp() - 3600),
                    },
                    CrlEntry {
                        serial: vec![0x80, 1],
                        revoked_at: now.unix_timestamp(),
                        reason: Some(RevocationReason::Unspecified),
                        invalidity_date: None,
                    },
                ],
            )
            .expect("crl");
        let (_, crl) = CertificateRevocationList::from_der(&der).expect("parses");
        let (_, ca) =
            X509Certificate::from_der(pki.intermediate.certificate_der()).expect("parses");
        crl.verify_signature(ca.public_key())
            .expect("signed by the CA");
        assert_eq!(crl.crl_number().map(|n| n.to_u64_digits()), Some(vec![7]));
        let serials: Vec<Vec<u8>> = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect();
        assert_eq!(serials, vec![vec![0x7f, 1, 2], vec![0x00, 0x80, 1]]);
        let idp = crl
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.28")
            .expect("issuingDistributionPoint");
        assert!(idp.critical);
    }

    /// rcgen's CRL encoder as the oracle: for the same inputs our TBSCertList is byte-equal.
    fn rcgen_tbs(ca: &IssuingCa, spec: &CrlSpec, entries: &[CrlEntry]) -> Vec<u8> {
        use rcgen::{
            CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint,
            RevokedCertParams,
        };
        let params = CertificateRevocationListParams {
            this_update: spec.this_update,
            next_update: spec.next_update,
            crl_number: SerialNumber::from(spec.crl_number),
            issuing_distribution_point: spec.distribution_point.as_ref().map(|u| {
                CrlIssuingDistributionPoint {
                    distribution_point: CrlDistributionPoint {
                        uris: vec![u.clone()],
                    },
                    scope: None,
                }
            }),
            revoked_certs: entries
                .iter()
                .map(|e| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&e.serial),
                    revocation_time: timestamp(e.revoked_at).expect("time"),
                    reason_code: e.reason.map(|r| match r.code() {
                        1 => rcgen::RevocationReason::KeyCompromise,
                        2 => rcgen::RevocationReason::CaCompromise,
                        4 => rcgen::RevocationReason::Superseded,
                        _ => rcgen::RevocationReason::Unspecified,
                    }),
                    invalidity_date: e.invalidity_date.map(|t| timestamp(t).expect("time")),
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let der = params
            .signed_by(ca.issuer())
            .expect("rcgen CRL")
            .der()
            .to_vec();
        let (_, crl) = CertificateRevocationList::from_der(&der).expect("parses");
        crl.tbs_cert_list.as_ref().to_vec()
    }

    #[test]
    fn encoding_matches_rcgen_byte_for_byte() {
        let pki = test_pki();
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("time");
        let entries = vec![
            CrlEntry {
                serial: vec![0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
                revoked_at: 1_789_000_000,
                reason: Some(RevocationReason::KeyCompromise),
                invalidity_date: Some(1_788_000_000),
            },
            CrlEntry {
                serial: vec![0xff, 0xee],
                revoked_at: 1_789_000_001,
                reason: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            },
            CrlEntry {
                serial: vec![0x01],
                revoked_at: 2_600_000_000,
                reason: None,
                invalidity_date: Some(2_600_000_000),
            },
            CrlEntry {
                serial: vec![0x42; 20],
                revoked_at: 1_789_000_002,
                reason: Some(RevocationReason::Superseded),
                invalidity_date: None,
            },
        ];
        for (spec, entries) in [
            (
                CrlSpec {
                    crl_number: 300,
                    this_update: now,
                    next_update: now + time::Duration::days(30_000),
                    distribution_point: Some("http://pki.example.test:8080/crl/i/3.crl".into()),
                },
                entries.clone(),
            ),
            (
                CrlSpec {
                    crl_number: 1,
                    this_update: now,
                    next_update: now + time::Duration::hours(1),
                    distribution_point: None,
                },
                Vec::new(),
            ),
        ] {
            let ours = pki
                .intermediate
                .sign_crl(&spec, entries.clone())
                .expect("ours");
            let (_, crl) = CertificateRevocationList::from_der(&ours).expect("ours parses");
            assert_eq!(
                crl.tbs_cert_list.as_ref(),
                rcgen_tbs(&pki.intermediate, &spec, &entries).as_slice(),
                "TBSCertList differs from rcgen's"
            );
            let (_, ca) =
                X509Certificate::from_der(pki.intermediate.certificate_der()).expect("parses");
            crl.verify_signature(ca.public_key()).expect("signature");
        }
    }

    #[test]
    fn header_lengths_are_minimal() {
        for len in [
            0usize, 1, 127, 128, 255, 256, 65_535, 65_536, 16_777_215, 16_777_216,
        ] {
            let mut out = Vec::new();
            push_header(&mut out, 0x30, len);
            assert_eq!(out.len(), header_len(len), "{len}");
        }
        assert_eq!(integer_content(&[0x80]), vec![0x00, 0x80]);
        assert_eq!(integer_content(&[0x00, 0x00, 0x05]), vec![0x05]);
        assert_eq!(integer_content(&[]), vec![0x00]);
    }

    #[test]
    fn responder_certificate_has_ocsp_signing_and_nocheck() {
        let pki = test_pki();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = trustbox_crypto::SealedKeyStore::new(
            &trustbox_crypto::Kek::load_or_create(&dir.path().join("kek")).expect("kek"),
        )
        .expect("store");
        let (_, key) = trustbox_crypto::KeyStore::generate(
            &store,
            trustbox_types::KeyAlgorithm::EcdsaP256,
            &trustbox_crypto::KeyOwner::new(
                trustbox_crypto::KeyRole::OcspResponder,
                "test",
                "test",
            ),
        )
        .expect("key");
        let now = OffsetDateTime::now_utc();
        let der = pki
            .intermediate
            .issue_ocsp_responder(
                &Serial::random(),
                key,
                "OCSP responder",
                now,
                now + time::Duration::days(30),
            )
            .expect("responder");
        let (_, cert) = X509Certificate::from_der(&der).expect("parses");
        let eku = cert.extended_key_usage().expect("eku").expect("present");
        assert!(eku.value.ocsp_signing);
        assert!(cert
            .extensions()
            .iter()
            .any(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.48.1.5"));
        assert!(!cert.is_ca());
    }
}

//! Certificate revocation lists and delegated OCSP responder certificates, signed through
//! the custody boundary.
//!
//! CRLs follow [RFC 5280 §5](https://www.rfc-editor.org/rfc/rfc5280#section-5): v2, the
//! issuer's name, thisUpdate/nextUpdate, authorityKeyIdentifier, a monotonic cRLNumber and,
//! for partitioned CRLs, a critical issuingDistributionPoint naming the shard's own URL.
//! Entries carry reasonCode (absent for `unspecified`, as §5.3.1 asks) and invalidityDate.

use crate::build::{build_err, CustodyKey, IssuingCa};
use crate::X509Error;
use rcgen::{
    CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CrlIssuingDistributionPoint, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use std::sync::Arc;
use time::OffsetDateTime;
use trustbox_crypto::Signer;
use trustbox_types::{RevocationReason, Serial};

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

fn rcgen_reason(r: RevocationReason) -> rcgen::RevocationReason {
    use rcgen::RevocationReason as R;
    match r {
        RevocationReason::Unspecified => R::Unspecified,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::RemoveFromCrl => R::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    }
}

fn timestamp(t: i64) -> Result<OffsetDateTime, X509Error> {
    OffsetDateTime::from_unix_timestamp(t).map_err(build_err)
}

/// id-pkix-ocsp-nocheck ([RFC 6960 §4.2.2.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.2.2.1)).
const OCSP_NOCHECK: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

impl IssuingCa {
    /// Signs a CRL listing `entries`, consumed one at a time (so a million entries are not
    /// held in two forms at once).
    pub fn sign_crl(
        &self,
        spec: &CrlSpec,
        entries: impl IntoIterator<Item = CrlEntry>,
    ) -> Result<Vec<u8>, X509Error> {
        let revoked_certs = entries
            .into_iter()
            .map(|e| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from(e.serial),
                    revocation_time: timestamp(e.revoked_at)?,
                    reason_code: e.reason.map(rcgen_reason),
                    invalidity_date: e.invalidity_date.map(timestamp).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, X509Error>>()?;
        let params = CertificateRevocationListParams {
            this_update: spec.this_update,
            next_update: spec.next_update,
            crl_number: SerialNumber::from(spec.crl_number),
            issuing_distribution_point: spec.distribution_point.as_ref().map(|url| {
                CrlIssuingDistributionPoint {
                    distribution_point: CrlDistributionPoint {
                        uris: vec![url.clone()],
                    },
                    scope: None,
                }
            }),
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(self.issuer()).map_err(build_err)?;
        Ok(crl.der().to_vec())
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
        let cert = params
            .signed_by(&CustodyKey::new(subject), self.issuer())
            .map_err(build_err)?;
        Ok(cert.der().to_vec())
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

    #[test]
    fn responder_certificate_has_ocsp_signing_and_nocheck() {
        let pki = test_pki();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = trustbox_crypto::SealedKeyStore::new(
            &trustbox_crypto::Kek::load_or_create(&dir.path().join("kek")).expect("kek"),
        )
        .expect("store");
        let (_, key) =
            trustbox_crypto::KeyStore::generate(&store, trustbox_types::KeyAlgorithm::EcdsaP256)
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

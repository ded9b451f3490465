//! Building and signing successful OCSP responses through the custody boundary.
//!
//! [RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1) (BasicOCSPResponse)
//! and [§4.2.2.2](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.2.2) (delegated
//! responders).

use crate::{CertRef, HashAlgorithm, OcspError};
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SHA_256_WITH_RSA_ENCRYPTION};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use const_oid::db::rfc8410::ID_ED_25519;
use der::asn1::{Any, BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use std::sync::Arc;
use std::time::Duration;
use trustbox_crypto::Signer;
use trustbox_types::{KeyAlgorithm, RevocationReason};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, OcspGeneralizedTime, OcspResponse, ResponderId, ResponseData, RevokedInfo,
    SingleResponse, Version,
};

/// What the responder says about one certificate
/// ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1), `CertStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued here and not revoked.
    Good,
    /// Revoked at `at` (Unix seconds), with the reason when one was recorded.
    Revoked {
        /// revocationTime, Unix seconds.
        at: i64,
        /// revocationReason; omitted from the response when `None`.
        reason: Option<RevocationReason>,
    },
    /// Not known to this responder (never issued here, or a serial TrustBox cannot hold).
    Unknown,
}

/// A delegated OCSP responder
/// ([RFC 6960 §4.2.2.2](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.2.2)): its
/// certificate (issued by the CA, id-kp-OCSPSigning, id-pkix-ocsp-nocheck) and its key in
/// custody. A CA certificate with the CA's own signer also works (the CA signs directly).
pub struct Responder {
    signer: Arc<dyn Signer>,
    /// The responder certificate followed by the extra certificates, decoded once.
    certs: Vec<Certificate>,
    /// SHA-1 of the responder's subjectPublicKey bits (ResponderID byKey).
    key_hash: Vec<u8>,
    signature_algorithm: AlgorithmIdentifierOwned,
    not_after: i64,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("algorithm", &self.signer.algorithm())
            .field("key_hash", &format_args!("{:02x?}", self.key_hash))
            .field("certs", &self.certs.len())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Fails with [`OcspError::BadResponder`] if the certificate (or one of `extra_certs`) does
    /// not parse or its public key is not the signer's. `extra_certs` (DER) follow the
    /// responder certificate in `BasicOCSPResponse.certs` (e.g. the issuing CA certificate, so
    /// `openssl ocsp -CAfile root.pem` can build the chain).
    pub fn new(
        cert_der: Vec<u8>,
        signer: Arc<dyn Signer>,
        extra_certs: Vec<Vec<u8>>,
    ) -> Result<Self, OcspError> {
        let bad = |what: &str, e: der::Error| OcspError::BadResponder(format!("{what}: {e}"));
        let cert = Certificate::from_der(&cert_der).map_err(|e| bad("responder certificate", e))?;
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let spki_der = spki.to_der().map_err(|e| bad("responder public key", e))?;
        if spki_der != signer.public_key_spki() {
            return Err(OcspError::BadResponder(
                "the responder certificate does not match its key in custody".into(),
            ));
        }
        let key_hash = HashAlgorithm::Sha1.digest(spki.subject_public_key.raw_bytes());
        let not_after = cert
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs();
        let not_after = i64::try_from(not_after)
            .map_err(|_| OcspError::BadResponder("notAfter out of range".into()))?;
        let mut certs = vec![cert];
        for (i, der) in extra_certs.iter().enumerate() {
            certs.push(
                Certificate::from_der(der)
                    .map_err(|e| bad(&format!("extra certificate {i}"), e))?,
            );
        }
        Ok(Self {
            signature_algorithm: signature_algorithm(signer.algorithm()),
            signer,
            certs,
            key_hash,
            not_after,
        })
    }

    /// The responder certificate's notAfter (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// SHA-1 of the responder's subjectPublicKey bits, as sent in ResponderID byKey.
    pub fn key_hash(&self) -> &[u8] {
        &self.key_hash
    }
}

/// The signatureAlgorithm for what the custody signer produces for `alg`
/// ([RFC 5758 §3.2](https://www.rfc-editor.org/rfc/rfc5758#section-3.2),
/// [RFC 4055 §5](https://www.rfc-editor.org/rfc/rfc4055#section-5),
/// [RFC 8410 §3](https://www.rfc-editor.org/rfc/rfc8410#section-3)).
fn signature_algorithm(alg: KeyAlgorithm) -> AlgorithmIdentifierOwned {
    let (oid, parameters) = match alg {
        KeyAlgorithm::EcdsaP256 => (ECDSA_WITH_SHA_256, None),
        KeyAlgorithm::EcdsaP384 => (ECDSA_WITH_SHA_384, None),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            (SHA_256_WITH_RSA_ENCRYPTION, Some(Any::from(Null)))
        }
        KeyAlgorithm::Ed25519 => (ID_ED_25519, None),
    };
    AlgorithmIdentifierOwned { oid, parameters }
}

/// One answer to sign.
#[derive(Clone, Copy, Debug)]
pub struct SingleAnswer<'a> {
    /// The CertID asked about; echoed unchanged.
    pub cert: &'a CertRef,
    /// The status to report.
    pub status: CertStatus,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds (not before `this_update`).
    pub next_update: i64,
}

fn generalized_time(unix: i64, what: &str) -> Result<OcspGeneralizedTime, OcspError> {
    let secs = u64::try_from(unix)
        .map_err(|_| OcspError::Encode(format!("{what} {unix} is before 1970")))?;
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|e| OcspError::Encode(format!("{what} {unix}: {e}")))
}

fn crl_reason(reason: RevocationReason) -> CrlReason {
    match reason {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    }
}

fn single_response(answer: &SingleAnswer<'_>) -> Result<SingleResponse, OcspError> {
    if answer.next_update < answer.this_update {
        return Err(OcspError::Encode("nextUpdate is before thisUpdate".into()));
    }
    let cert_status = match answer.status {
        CertStatus::Good => x509_ocsp::CertStatus::good(),
        CertStatus::Unknown => x509_ocsp::CertStatus::unknown(),
        CertStatus::Revoked { at, reason } => x509_ocsp::CertStatus::revoked(RevokedInfo {
            revocation_time: generalized_time(at, "revocationTime")?,
            revocation_reason: reason.map(crl_reason),
        }),
    };
    Ok(SingleResponse {
        cert_id: answer.cert.id.clone(),
        cert_status,
        this_update: generalized_time(answer.this_update, "thisUpdate")?,
        next_update: Some(generalized_time(answer.next_update, "nextUpdate")?),
        single_extensions: None,
    })
}

/// Builds and signs a successful `OCSPResponse` carrying a `BasicOCSPResponse`
/// ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1)).
///
/// ResponderID byKey (SHA-1 of the responder's subjectPublicKey), producedAt, one
/// SingleResponse per answer echoing its CertID (revocationTime and, when given,
/// revocationReason for revoked), the nonce extension echoed verbatim when given
/// ([§4.4.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.4.1)), the signature through the
/// custody signer (ecdsa-with-SHA256 for P-256, ecdsa-with-SHA384 for P-384,
/// sha256WithRSAEncryption with NULL parameters for RSA, Ed25519), and certs = [responder
/// certificate, extra certificates...]. All times are GeneralizedTime from Unix seconds.
pub fn sign_response(
    responder: &Responder,
    answers: &[SingleAnswer<'_>],
    produced_at: i64,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, OcspError> {
    let enc = |what: &str, e: der::Error| OcspError::Encode(format!("{what}: {e}"));
    if answers.is_empty() {
        return Err(OcspError::Encode(
            "a response needs at least one answer".into(),
        ));
    }
    let responses = answers
        .iter()
        .map(single_response)
        .collect::<Result<Vec<_>, _>>()?;
    let response_extensions = match nonce {
        Some(n) => Some(vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(n).map_err(|e| enc("nonce", e))?,
        }]),
        None => None,
    };
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(
            OctetString::new(responder.key_hash.as_slice()).map_err(|e| enc("key hash", e))?,
        ),
        produced_at: generalized_time(produced_at, "producedAt")?,
        responses,
        response_extensions,
    };
    let tbs_der = tbs.to_der().map_err(|e| enc("ResponseData", e))?;
    let signature = responder
        .signer
        .sign(&tbs_der)
        .map_err(|_| OcspError::Sign)?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: responder.signature_algorithm.clone(),
        signature: BitString::from_bytes(&signature).map_err(|e| enc("signature", e))?,
        certs: Some(responder.certs.clone()),
    };
    OcspResponse::successful(basic)
        .and_then(|r| r.to_der())
        .map_err(|e| enc("OCSPResponse", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pki::{openssl, openssl_request, TestPki};
    use crate::{parse_request, OcspRequest};
    use std::time::{SystemTime, UNIX_EPOCH};
    use x509_ocsp::OcspResponseStatus;

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64
    }

    fn request(pki: &TestPki, args: &[&str]) -> (Vec<u8>, OcspRequest) {
        let der = openssl_request(pki, "leaf.pem", args);
        let req = parse_request(&der).expect("parse");
        (der, req)
    }

    /// Signs one answer for the request's first CertID and returns the response DER.
    fn sign_one(responder: &Responder, req: &OcspRequest, status: CertStatus) -> Vec<u8> {
        let t = now();
        sign_response(
            responder,
            &[SingleAnswer {
                cert: &req.certs[0],
                status,
                this_update: t - 60,
                next_update: t + 3600,
            }],
            t,
            req.nonce.as_deref(),
        )
        .expect("sign")
    }

    /// Has `openssl ocsp` verify `resp` and report the leaf's status; returns what it printed.
    ///
    /// openssl builds a fresh request (with a fresh nonce) whenever `-cert` is given and then
    /// ignores `-reqin`, so the nonce is checked in a first run with only `-reqin req.der`
    /// (signature, responder authorisation and nonce), and the status is read in a second run
    /// with `-cert leaf.pem -no_nonce`. `digest` (e.g. `-sha256`) goes before `-cert` so openssl
    /// looks up a CertID made with that hash.
    fn openssl_verify(pki: &TestPki, resp: &[u8], req: Option<&[u8]>, digest: &[&str]) -> String {
        let dir = pki.dir.path();
        std::fs::write(dir.join("resp.der"), resp).expect("write resp");
        let mut out = String::new();
        if let Some(req) = req {
            std::fs::write(dir.join("req.der"), req).expect("write req");
            let (ok, checked) = openssl(
                dir,
                &[
                    "ocsp", "-respin", "resp.der", "-reqin", "req.der", "-CAfile", "root.pem",
                ],
            );
            assert!(ok, "openssl ocsp -reqin failed:\n{checked}");
            assert!(checked.contains("Response verify OK"), "{checked}");
            assert!(!checked.contains("WARNING"), "nonce missing: {checked}");
            out.push_str(&checked);
        }
        let mut args = vec![
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "int.pem",
            "-no_nonce",
        ];
        args.extend_from_slice(digest);
        args.extend(["-cert", "leaf.pem", "-CAfile", "root.pem"]);
        let (ok, status) = openssl(dir, &args);
        assert!(ok, "openssl ocsp failed:\n{status}");
        assert!(status.contains("Response verify OK"), "{status}");
        out.push_str(&status);
        out
    }

    #[test]
    fn openssl_verifies_good_revoked_and_unknown_with_nonce() {
        let pki = TestPki::new();
        let responder = pki.responder(KeyAlgorithm::EcdsaP256);
        let (req_der, req) = request(&pki, &[]);
        assert!(req.nonce.is_some());

        let out = openssl_verify(
            &pki,
            &sign_one(&responder, &req, CertStatus::Good),
            Some(&req_der),
            &[],
        );
        assert!(out.contains("leaf.pem: good"), "{out}");

        let revoked = CertStatus::Revoked {
            at: 1_700_000_000,
            reason: Some(RevocationReason::KeyCompromise),
        };
        let out = openssl_verify(
            &pki,
            &sign_one(&responder, &req, revoked),
            Some(&req_der),
            &[],
        );
        assert!(out.contains("leaf.pem: revoked"), "{out}");
        assert!(out.contains("Reason: keyCompromise"), "{out}");
        assert!(
            out.contains("Revocation Time: Nov 14 22:13:20 2023 GMT"),
            "{out}"
        );

        let out = openssl_verify(
            &pki,
            &sign_one(&responder, &req, CertStatus::Unknown),
            Some(&req_der),
            &[],
        );
        assert!(out.contains("leaf.pem: unknown"), "{out}");
    }

    #[test]
    fn openssl_rejects_a_response_with_the_wrong_nonce() {
        let pki = TestPki::new();
        let responder = pki.responder(KeyAlgorithm::EcdsaP256);
        let (_, req) = request(&pki, &[]);
        let resp = sign_one(&responder, &req, CertStatus::Good);
        // A second request has a fresh nonce: the first response must not satisfy it.
        let (other_der, _) = request(&pki, &[]);
        let dir = pki.dir.path();
        std::fs::write(dir.join("resp.der"), &resp).expect("write");
        std::fs::write(dir.join("other.der"), &other_der).expect("write");
        let (ok, out) = openssl(
            dir,
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-reqin",
                "other.der",
                "-CAfile",
                "root.pem",
            ],
        );
        assert!(!ok, "{out}");
        assert!(out.contains("Nonce Verify error"), "{out}");
    }

    #[test]
    fn openssl_verifies_without_nonce_and_with_sha256_cert_ids() {
        let pki = TestPki::new();
        let responder = pki.responder(KeyAlgorithm::EcdsaP256);
        let (req_der, req) = request(&pki, &["-no_nonce"]);
        assert_eq!(req.nonce, None);
        let resp = sign_one(&responder, &req, CertStatus::Good);
        let out = openssl_verify(&pki, &resp, Some(&req_der), &[]);
        assert!(out.contains("leaf.pem: good"), "{out}");
        assert!(basic_response(&resp).nonce().is_none(), "no nonce invented");

        let (req_der, req) = request(&pki, &["-sha256"]);
        assert_eq!(req.certs[0].hash, HashAlgorithm::Sha256);
        let resp = sign_one(&responder, &req, CertStatus::Good);
        let out = openssl_verify(&pki, &resp, Some(&req_der), &["-sha256"]);
        assert!(out.contains("leaf.pem: good"), "{out}");
        // Asked with SHA-1, openssl finds no matching SingleResponse in a SHA-256 answer.
        let (_, sha1_lookup) = openssl(
            pki.dir.path(),
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-issuer",
                "int.pem",
                "-no_nonce",
                "-cert",
                "leaf.pem",
                "-CAfile",
                "root.pem",
            ],
        );
        assert!(sha1_lookup.contains("No Status found"), "{sha1_lookup}");
    }

    #[test]
    fn openssl_verifies_p384_rsa_and_ed25519_responders() {
        let pki = TestPki::new();
        let (req_der, req) = request(&pki, &[]);
        for alg in [
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Ed25519,
        ] {
            let responder = pki.responder(alg);
            let resp = sign_one(&responder, &req, CertStatus::Good);
            let out = openssl_verify(&pki, &resp, Some(&req_der), &[]);
            assert!(out.contains("leaf.pem: good"), "{alg}: {out}");
            let basic = basic_response(&resp);
            assert_eq!(basic.signature_algorithm, signature_algorithm(alg), "{alg}");
        }
    }

    fn basic_response(resp: &[u8]) -> BasicOcspResponse {
        let outer = OcspResponse::from_der(resp).expect("OCSPResponse");
        assert_eq!(outer.response_status, OcspResponseStatus::Successful);
        let bytes = outer.response_bytes.expect("responseBytes");
        assert_eq!(
            bytes.response_type,
            const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC
        );
        BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("BasicOCSPResponse")
    }

    #[test]
    fn response_structure_echoes_cert_ids_nonce_and_carries_the_chain() {
        let pki = TestPki::new();
        let responder = pki.responder(KeyAlgorithm::EcdsaP256);
        let (_, req) = request(&pki, &[]);
        let (_, req256) = request(&pki, &["-sha256"]);
        let answers = [
            SingleAnswer {
                cert: &req.certs[0],
                status: CertStatus::Revoked {
                    at: 1_000,
                    reason: None,
                },
                this_update: 2_000,
                next_update: 3_000,
            },
            SingleAnswer {
                cert: &req256.certs[0],
                status: CertStatus::Good,
                this_update: 2_000,
                next_update: 2_000,
            },
        ];
        let nonce = req.nonce.as_deref();
        let resp = sign_response(&responder, &answers, 2_500, nonce).expect("sign");
        let basic = basic_response(&resp);
        let tbs = &basic.tbs_response_data;
        assert_eq!(
            tbs.responder_id,
            ResponderId::ByKey(OctetString::new(responder.key_hash()).expect("o"))
        );
        assert_eq!(
            responder.key_hash(),
            HashAlgorithm::Sha1.digest(responder.signer.public_key_raw())
        );
        assert_eq!(tbs.produced_at.0.to_unix_duration().as_secs(), 2_500);
        assert_eq!(tbs.responses.len(), 2);
        assert_eq!(tbs.responses[0].cert_id, req.certs[0].id);
        assert_eq!(tbs.responses[1].cert_id, req256.certs[0].id);
        match tbs.responses[0].cert_status {
            x509_ocsp::CertStatus::Revoked(info) => {
                assert_eq!(info.revocation_time.0.to_unix_duration().as_secs(), 1_000);
                assert_eq!(info.revocation_reason, None, "reason omitted when None");
            }
            other => panic!("{other:?}"),
        }
        let ext = tbs.response_extensions.as_ref().expect("extensions");
        assert_eq!(ext.len(), 1);
        assert_eq!(ext[0].extn_id, ID_PKIX_OCSP_NONCE);
        assert_eq!(Some(ext[0].extn_value.as_bytes()), nonce);
        let certs = basic.certs.expect("certs");
        let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().expect("der")).collect();
        assert_eq!(ders.len(), 2);
        assert_eq!(ders[1], pki.int_der);
        assert_eq!(ders[0], responder.certs[0].to_der().expect("der"));
        // The version DEFAULT v1 is omitted, as DER requires.
        let tbs_der = tbs.to_der().expect("der");
        let header_len = match tbs_der[1] {
            n if n < 0x80 => 2,
            n => 2 + usize::from(n & 0x7f),
        };
        assert_eq!(
            tbs_der[header_len], 0xa2,
            "responderID byKey [2] comes first"
        );
    }

    #[test]
    fn responder_must_match_its_key_and_parse() {
        let pki = TestPki::new();
        let (cert, key) = pki.responder_parts(KeyAlgorithm::EcdsaP256);
        let wrong = pki.root_key.clone();
        assert!(matches!(
            Responder::new(cert.clone(), wrong, vec![]),
            Err(OcspError::BadResponder(_))
        ));
        assert!(matches!(
            Responder::new(b"not a certificate".to_vec(), key.clone(), vec![]),
            Err(OcspError::BadResponder(_))
        ));
        assert!(matches!(
            Responder::new(cert.clone(), key.clone(), vec![vec![0x30, 0x00]]),
            Err(OcspError::BadResponder(_))
        ));
        let ok = Responder::new(cert, key, vec![]).expect("responder");
        assert_eq!(ok.not_after(), pki.not_after);
    }

    #[test]
    fn bad_times_and_empty_answers_are_encode_errors() {
        let pki = TestPki::new();
        let responder = pki.responder(KeyAlgorithm::EcdsaP256);
        let (_, req) = request(&pki, &["-no_nonce"]);
        let answer = |this_update, next_update, status| SingleAnswer {
            cert: &req.certs[0],
            status,
            this_update,
            next_update,
        };
        let good = CertStatus::Good;
        let cases: [(&[SingleAnswer<'_>], i64); 5] = [
            (&[], 10),
            (&[answer(10, 20, good)], -1),
            (&[answer(10, 5, good)], 10),
            (&[answer(10, 300_000_000_000, good)], 10),
            (
                &[answer(
                    10,
                    20,
                    CertStatus::Revoked {
                        at: -5,
                        reason: None,
                    },
                )],
                10,
            ),
        ];
        for (answers, produced_at) in cases {
            let e = sign_response(&responder, answers, produced_at, None).expect_err("bad");
            assert!(matches!(e, OcspError::Encode(_)), "{e}");
        }
    }
}

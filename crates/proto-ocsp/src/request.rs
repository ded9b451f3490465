//! Decoding OCSP requests: DER bodies, GET path segments, and CertID matching.
//!
//! [RFC 6960 §4.1.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.1.1) and
//! [Appendix A.1](https://www.rfc-editor.org/rfc/rfc6960#appendix-A.1).

use crate::{OcspError, MAX_REQUEST_BYTES};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use const_oid::ObjectIdentifier;
use der::asn1::Null;
use der::{Decode, Encode};
use ring::digest;
use trustbox_types::Serial;
use x509_cert::Certificate;
use x509_ocsp::CertId;

/// Hash algorithms a CertID may use
/// ([RFC 6960 §4.1.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.1.1)). SHA-1 is what
/// openssl sends by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (id-sha1, 1.3.14.3.2.26).
    Sha1,
    /// SHA-256 (id-sha256, 2.16.840.1.101.3.4.2.1).
    Sha256,
    /// SHA-384 (id-sha384, 2.16.840.1.101.3.4.2.2).
    Sha384,
    /// SHA-512 (id-sha512, 2.16.840.1.101.3.4.2.3).
    Sha512,
}

impl HashAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [HashAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// The algorithm's OBJECT IDENTIFIER.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => ID_SHA_1,
            Self::Sha256 => ID_SHA_256,
            Self::Sha384 => ID_SHA_384,
            Self::Sha512 => ID_SHA_512,
        }
    }

    /// The algorithm named by `oid`, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.oid() == *oid)
    }

    /// The digest length in octets.
    pub fn output_len(self) -> usize {
        self.ring().output_len()
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.ring(), data).as_ref().to_vec()
    }

    fn ring(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

/// One `CertID` of a request, decoded
/// ([RFC 6960 §4.1.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.1.1)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRef {
    /// The hash algorithm of both issuer hashes.
    pub hash: HashAlgorithm,
    /// Hash of the issuer's distinguished name (DER).
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey bits.
    pub issuer_key_hash: Vec<u8>,
    /// The serialNumber INTEGER's content octets exactly as sent (may carry a leading 0x00).
    pub serial_der: Vec<u8>,
    /// The CertID as decoded, echoed unchanged in the SingleResponse.
    pub(crate) id: CertId,
}

impl CertRef {
    /// The serial as TrustBox stores it, or `None` when it is zero, negative or over 20 octets
    /// (such a serial was never issued here; the responder answers `unknown`).
    pub fn serial(&self) -> Option<Serial> {
        match self.serial_der.first() {
            Some(b) if b & 0x80 == 0 => Serial::from_be_bytes(&self.serial_der).ok(),
            _ => None,
        }
    }

    fn from_cert_id(id: CertId) -> Result<Self, OcspError> {
        let oid = id.hash_algorithm.oid;
        let hash = HashAlgorithm::from_oid(&oid).ok_or_else(|| {
            OcspError::Malformed(format!("unsupported CertID hashAlgorithm {oid}"))
        })?;
        // RFC 5754 §2: the parameters are absent or NULL; anything else is not a hash we know.
        if let Some(params) = &id.hash_algorithm.parameters {
            if params.decode_as::<Null>().is_err() {
                return Err(OcspError::Malformed(
                    "CertID hashAlgorithm parameters are neither absent nor NULL".into(),
                ));
            }
        }
        let issuer_name_hash = id.issuer_name_hash.as_bytes().to_vec();
        let issuer_key_hash = id.issuer_key_hash.as_bytes().to_vec();
        let want = hash.output_len();
        if issuer_name_hash.len() != want || issuer_key_hash.len() != want {
            return Err(OcspError::Malformed(format!(
                "CertID hash lengths {}/{} do not match {hash:?} ({want} octets)",
                issuer_name_hash.len(),
                issuer_key_hash.len()
            )));
        }
        Ok(Self {
            hash,
            issuer_name_hash,
            issuer_key_hash,
            serial_der: id.serial_number.as_bytes().to_vec(),
            id,
        })
    }
}

/// A decoded `OCSPRequest`
/// ([RFC 6960 §4.1.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.1.1)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequest {
    /// The CertIDs asked about, in request order (never empty).
    pub certs: Vec<CertRef>,
    /// The nonce extension's extnValue octets exactly as sent (for RFC 8954 clients such as
    /// openssl, the DER of `Nonce ::= OCTET STRING`), to pass back to [`crate::sign_response`]
    /// which echoes them verbatim
    /// ([RFC 6960 §4.4.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.4.1)).
    pub nonce: Option<Vec<u8>>,
}

/// Parses a DER `OCSPRequest`.
///
/// Garbage, truncation, trailing data, zero CertIDs, an unknown or unsupported hashAlgorithm
/// OID, hash lengths that do not match the algorithm, or a body over [`MAX_REQUEST_BYTES`]
/// are [`OcspError::Malformed`] (never a panic). So is a serialNumber over 21 content octets,
/// which x509-cert's RFC 5280 profile refuses to decode. Signed requests are accepted (the
/// signature is ignored).
pub fn parse_request(der: &[u8]) -> Result<OcspRequest, OcspError> {
    if der.len() > MAX_REQUEST_BYTES {
        return Err(OcspError::Malformed(format!(
            "request of {} bytes exceeds {MAX_REQUEST_BYTES}",
            der.len()
        )));
    }
    let req = x509_ocsp::OcspRequest::from_der(der)
        .map_err(|e| OcspError::Malformed(format!("undecodable OCSPRequest: {e}")))?;
    let tbs = req.tbs_request;
    if tbs.request_list.is_empty() {
        return Err(OcspError::Malformed("the requestList is empty".into()));
    }
    if tbs.request_list.len() > MAX_CERT_IDS {
        return Err(OcspError::Malformed(format!(
            "{} CertIDs in one request; at most {MAX_CERT_IDS} are answered",
            tbs.request_list.len()
        )));
    }
    let certs = tbs
        .request_list
        .into_iter()
        .map(|r| CertRef::from_cert_id(r.req_cert))
        .collect::<Result<Vec<_>, _>>()?;
    let nonce = tbs.request_extensions.as_ref().and_then(|exts| {
        exts.iter()
            .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
            .map(|e| e.extn_value.as_bytes().to_vec())
    });
    if let Some(n) = &nonce {
        let len = nonce_len(n);
        if !(1..=MAX_NONCE_BYTES).contains(&len) {
            return Err(OcspError::Malformed(format!(
                "a nonce of {len} octets; RFC 8954 allows 1 to {MAX_NONCE_BYTES}"
            )));
        }
    }
    Ok(OcspRequest { certs, nonce })
}

/// Most CertIDs answered in one request: each costs a lookup and a signature's worth of
/// response, so a large list is refused rather than served.
pub const MAX_CERT_IDS: usize = 10;

/// The longest nonce accepted ([RFC 8954 §2.1](https://www.rfc-editor.org/rfc/rfc8954#section-2.1):
/// `Nonce ::= OCTET STRING (SIZE(1..32))`).
pub const MAX_NONCE_BYTES: usize = 32;

/// The nonce's length in octets: the content of the `OCTET STRING` RFC 8954 clients wrap it
/// in, or the whole extension value from clients that send it bare.
fn nonce_len(value: &[u8]) -> usize {
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest.len(),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest.len(),
        other => other.len(),
    }
}

/// Decodes the last path segment of a GET request
/// ([RFC 6960 Appendix A.1](https://www.rfc-editor.org/rfc/rfc6960#appendix-A.1): the
/// url-encoding of the base64 of the DER request) into the DER request.
///
/// Accepts percent-encoding (`%2B %2F %3D`, any case), plain standard base64 and URL-safe
/// base64, with or without padding. Standard base64 may contain `/`, so the caller must pass
/// everything after the responder's base path, not just what follows the last `/`.
pub fn decode_get_path(segment: &str) -> Result<Vec<u8>, OcspError> {
    let bad = |what: &str| OcspError::Malformed(format!("GET request path: {what}"));
    if segment.is_empty() {
        return Err(bad("empty"));
    }
    // Each request byte is at most 4/3 base64 characters, each at most 3 when percent-encoded.
    if segment.len() > (MAX_REQUEST_BYTES / 3 + 1) * 4 * 3 {
        return Err(bad("too long"));
    }
    let bytes = segment.as_bytes();
    let mut b64 = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    // Two hex digits are at most 0xff.
                    (Some(hi), Some(lo)) => {
                        i += 3;
                        (hi * 16 + lo) as u8
                    }
                    _ => return Err(bad("broken percent-encoding")),
                }
            }
            c => {
                i += 1;
                c
            }
        };
        b64.push(match c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        });
    }
    let pad = b64.iter().rev().take_while(|c| **c == b'=').count();
    if pad > 2 {
        return Err(bad("too much base64 padding"));
    }
    b64.truncate(b64.len() - pad);
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let der = ENGINE.decode(&b64).map_err(|_| bad("not base64"))?;
    if der.len() > MAX_REQUEST_BYTES {
        return Err(bad("request too large"));
    }
    Ok(der)
}

/// The hashes that identify one CA in CertIDs, for every supported algorithm
/// ([RFC 6960 §4.1.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.1.1): issuerNameHash
/// over the issuer Name DER, issuerKeyHash over the subjectPublicKey bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerKeyHashes {
    /// (algorithm, name hash, key hash), one entry per [`HashAlgorithm::ALL`].
    hashes: Vec<(HashAlgorithm, Vec<u8>, Vec<u8>)>,
}

impl IssuerKeyHashes {
    /// From the CA certificate's subject Name DER (the full SEQUENCE, as it appears as issuer
    /// in what the CA signs) and its subjectPublicKey BIT STRING contents (the raw key).
    pub fn new(subject_der: &[u8], subject_public_key_raw: &[u8]) -> Self {
        let hashes = HashAlgorithm::ALL
            .into_iter()
            .map(|h| (h, h.digest(subject_der), h.digest(subject_public_key_raw)))
            .collect();
        Self { hashes }
    }

    /// From the CA certificate's DER. The subject is re-encoded by x509-cert, which gives the
    /// certificate's own bytes for any DER-conformant certificate (every one TrustBox issues).
    pub fn from_ca_certificate(cert_der: &[u8]) -> Result<Self, OcspError> {
        let cert = Certificate::from_der(cert_der)
            .map_err(|e| OcspError::BadResponder(format!("CA certificate: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let subject = tbs
            .subject
            .to_der()
            .map_err(|e| OcspError::BadResponder(format!("CA subject: {e}")))?;
        Ok(Self::new(
            &subject,
            tbs.subject_public_key_info.subject_public_key.raw_bytes(),
        ))
    }

    /// Whether `cert` names this CA (name hash AND key hash equal under `cert.hash`).
    pub fn matches(&self, cert: &CertRef) -> bool {
        self.hashes.iter().any(|(h, name, key)| {
            *h == cert.hash && *name == cert.issuer_name_hash && *key == cert.issuer_key_hash
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pki::{openssl_request, TestPki};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use der::asn1::{Any, OctetString};
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::AlgorithmIdentifierOwned;
    use x509_ocsp::{Request, TbsRequest};

    /// An unsigned request for `ids` with no extensions, built with the x509-ocsp types.
    fn request_der(ids: Vec<CertId>) -> Vec<u8> {
        x509_ocsp::OcspRequest {
            tbs_request: TbsRequest {
                request_list: ids
                    .into_iter()
                    .map(|req_cert| Request {
                        req_cert,
                        single_request_extensions: None,
                    })
                    .collect(),
                ..Default::default()
            },
            optional_signature: None,
        }
        .to_der()
        .expect("encode request")
    }

    fn cert_id(oid: ObjectIdentifier, hash_len: usize, serial: &[u8]) -> CertId {
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid,
                parameters: Some(Any::from(Null)),
            },
            issuer_name_hash: OctetString::new(vec![1; hash_len]).expect("octets"),
            issuer_key_hash: OctetString::new(vec![2; hash_len]).expect("octets"),
            serial_number: SerialNumber::from_der(&der_integer(serial)).expect("serial"),
        }
    }

    /// A DER INTEGER with exactly these content octets.
    fn der_integer(content: &[u8]) -> Vec<u8> {
        let mut v = vec![0x02, content.len() as u8];
        v.extend_from_slice(content);
        v
    }

    fn assert_malformed(der: &[u8], why: &str) {
        match parse_request(der) {
            Err(OcspError::Malformed(_)) => {}
            other => panic!("{why}: expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn parses_openssl_requests_with_and_without_nonce_and_sha256() {
        let pki = TestPki::new();
        let hashes = IssuerKeyHashes::from_ca_certificate(&pki.int_der).expect("int hashes");
        let root_hashes = IssuerKeyHashes::from_ca_certificate(&pki.root_der).expect("root");
        for (args, hash, has_nonce) in [
            (&[][..], HashAlgorithm::Sha1, true),
            (&["-no_nonce"][..], HashAlgorithm::Sha1, false),
            (&["-sha256"][..], HashAlgorithm::Sha256, true),
            (&["-sha384", "-no_nonce"][..], HashAlgorithm::Sha384, false),
            (&["-sha512"][..], HashAlgorithm::Sha512, true),
        ] {
            let der = openssl_request(&pki, "leaf.pem", args);
            let req = parse_request(&der).expect("openssl request parses");
            assert_eq!(req.certs.len(), 1, "{args:?}");
            let cert = &req.certs[0];
            assert_eq!(cert.hash, hash, "{args:?}");
            assert_eq!(cert.serial(), Some(pki.leaf_serial.clone()), "{args:?}");
            assert!(hashes.matches(cert), "{args:?}: the issuing CA matches");
            assert!(!root_hashes.matches(cert), "{args:?}: another CA does not");
            match (&req.nonce, has_nonce) {
                // openssl sends RFC 8954 `Nonce ::= OCTET STRING` of 16 random octets.
                (Some(n), true) => {
                    assert_eq!(n.len(), 18, "{args:?}");
                    assert_eq!(&n[..2], &[0x04, 0x10], "{args:?}");
                }
                (None, false) => {}
                other => panic!("{args:?}: nonce {other:?}"),
            }
        }
    }

    #[test]
    fn matches_with_subject_and_raw_key_as_given_by_the_lead() {
        let pki = TestPki::new();
        let der = openssl_request(&pki, "leaf.pem", &["-no_nonce"]);
        let req = parse_request(&der).expect("parse");
        let hashes = IssuerKeyHashes::new(&pki.int_subject_der, pki.int_key.public_key_raw());
        assert!(hashes.matches(&req.certs[0]));
        let wrong_key = IssuerKeyHashes::new(&pki.int_subject_der, pki.root_key.public_key_raw());
        assert!(!wrong_key.matches(&req.certs[0]), "key hash must match too");
    }

    #[test]
    fn signed_requests_for_several_certificates_are_accepted() {
        let pki = TestPki::new();
        let der = openssl_request(
            &pki,
            "leaf.pem",
            &[
                "-issuer",
                "int.pem",
                "-cert",
                "leaf_high.pem",
                "-signer",
                "leaf.pem",
                "-signkey",
                "leaf.key",
            ],
        );
        let raw = x509_ocsp::OcspRequest::from_der(&der).expect("x509-ocsp decodes it");
        assert!(raw.optional_signature.is_some(), "openssl signed it");
        let req = parse_request(&der).expect("signature is ignored");
        let serials: Vec<_> = req.certs.iter().map(CertRef::serial).collect();
        assert_eq!(
            serials,
            [
                Some(pki.leaf_high_serial.clone()),
                Some(pki.leaf_serial.clone())
            ]
        );
        assert!(req.nonce.is_some());
    }

    #[test]
    fn high_bit_serial_keeps_its_leading_zero_in_serial_der() {
        let pki = TestPki::new();
        let der = openssl_request(&pki, "leaf_high.pem", &["-no_nonce"]);
        let req = parse_request(&der).expect("parse");
        let cert = &req.certs[0];
        assert_eq!(cert.serial_der[0], 0x00);
        assert_eq!(&cert.serial_der[1..], pki.leaf_high_serial.as_bytes());
        assert_eq!(cert.serial(), Some(pki.leaf_high_serial.clone()));
    }

    #[test]
    fn zero_negative_and_overlong_serials_have_no_trustbox_serial() {
        let mut long = vec![0x01];
        long.extend([0xab; 20]);
        let mut long_padded = vec![0x00, 0x80];
        long_padded.extend([0xab; 19]);
        for (content, want) in [
            (&[0x00][..], None),
            (&[0xff][..], None),
            (&[0x80, 0x01][..], None),
            (&long[..], None),
            (&[0x01][..], Serial::from_be_bytes(&[0x01]).ok()),
            (&long_padded[..], Serial::from_be_bytes(&long_padded).ok()),
        ] {
            let der = request_der(vec![cert_id(ID_SHA_1, 20, content)]);
            let req = parse_request(&der).expect("parse");
            assert_eq!(req.certs[0].serial_der, content);
            assert_eq!(req.certs[0].serial(), want, "{content:02x?}");
        }
    }

    fn request_with_nonce(value: Vec<u8>) -> Vec<u8> {
        let mut req =
            x509_ocsp::OcspRequest::from_der(&request_der(vec![cert_id(ID_SHA_1, 20, &[5])]))
                .expect("decode");
        req.tbs_request.request_extensions = Some(vec![x509_cert::ext::Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(value).expect("octets"),
        }]);
        req.to_der().expect("encode")
    }

    #[test]
    fn too_many_cert_ids_and_bad_nonce_lengths_are_malformed() {
        let ids = |n: usize| {
            (0..n)
                .map(|i| cert_id(ID_SHA_1, 20, &[1 + (i % 100) as u8]))
                .collect()
        };
        parse_request(&request_der(ids(MAX_CERT_IDS))).expect("the most allowed");
        assert_malformed(&request_der(ids(MAX_CERT_IDS + 1)), "one too many");
        assert_malformed(&request_der(ids(300)), "300 CertIDs");
        let wrapped = |n: usize| {
            let mut v = vec![0x04, n as u8];
            v.extend(vec![7u8; n]);
            v
        };
        for n in [1, 16, 32] {
            let req = parse_request(&request_with_nonce(wrapped(n))).expect("RFC 8954 nonce");
            assert_eq!(req.nonce.map(|v| v.len()), Some(n + 2));
            parse_request(&request_with_nonce(vec![9u8; n])).expect("bare nonce");
        }
        assert_malformed(&request_with_nonce(wrapped(33)), "33-byte nonce");
        assert_malformed(&request_with_nonce(wrapped(0)), "empty nonce");
        assert_malformed(&request_with_nonce(vec![9u8; 33]), "33-byte bare nonce");
        let mut long = vec![0x04, 0x81, 200];
        long.extend(vec![1u8; 200]);
        assert_malformed(&request_with_nonce(long), "200-byte nonce");
    }

    #[test]
    fn several_cert_ids_and_absent_hash_parameters_are_accepted() {
        let mut absent = cert_id(ID_SHA_256, 32, &[0x07]);
        absent.hash_algorithm.parameters = None;
        let der = request_der(vec![cert_id(ID_SHA_1, 20, &[0x05]), absent.clone()]);
        let req = parse_request(&der).expect("parse");
        assert_eq!(req.certs.len(), 2);
        assert_eq!(req.certs[1].hash, HashAlgorithm::Sha256);
        assert_eq!(req.certs[1].id, absent, "kept for the echo");
        assert_eq!(req.nonce, None);
    }

    #[test]
    fn bad_hash_algorithms_and_lengths_are_malformed() {
        let md5 = const_oid::db::rfc5912::ID_MD_5;
        assert_malformed(&request_der(vec![cert_id(md5, 16, &[1])]), "MD5");
        let unknown = ObjectIdentifier::new_unwrap("1.2.3.4");
        assert_malformed(&request_der(vec![cert_id(unknown, 20, &[1])]), "unknown");
        assert_malformed(
            &request_der(vec![cert_id(ID_SHA_1, 32, &[1])]),
            "SHA-1 with 32-octet hashes",
        );
        let mut short_key = cert_id(ID_SHA_256, 32, &[1]);
        short_key.issuer_key_hash = OctetString::new(vec![2; 20]).expect("octets");
        assert_malformed(&request_der(vec![short_key]), "key hash length");
        let mut odd_params = cert_id(ID_SHA_1, 20, &[1]);
        odd_params.hash_algorithm.parameters =
            Some(Any::encode_from(&OctetString::new(vec![1]).expect("o")).expect("any"));
        assert_malformed(&request_der(vec![odd_params]), "non-NULL parameters");
        // A good CertID does not excuse a bad one beside it.
        assert_malformed(
            &request_der(vec![cert_id(ID_SHA_1, 20, &[1]), cert_id(md5, 16, &[1])]),
            "second CertID MD5",
        );
    }

    #[test]
    fn garbage_empty_trailing_empty_list_and_oversize_are_malformed() {
        assert_malformed(b"", "empty");
        assert_malformed(b"hello, OCSP", "text");
        assert_malformed(&[0x30, 0x80, 0x00, 0x00], "BER indefinite length");
        assert_malformed(&[0xff; 64], "0xff");
        assert_malformed(&request_der(vec![]), "no CertIDs");
        let mut trailing = request_der(vec![cert_id(ID_SHA_1, 20, &[1])]);
        trailing.push(0x00);
        assert_malformed(&trailing, "trailing byte");
        // A well-formed request that is simply too big: 20 KiB of CertIDs.
        let many: Vec<CertId> = (0..350).map(|_| cert_id(ID_SHA_1, 20, &[1])).collect();
        let big = request_der(many);
        assert!(big.len() > 20 * 1024, "{}", big.len());
        assert!(x509_ocsp::OcspRequest::from_der(&big).is_ok(), "valid DER");
        assert_malformed(&big, "20 KiB");
    }

    #[test]
    fn every_truncation_and_byte_flip_of_a_real_request_is_handled() {
        let pki = TestPki::new();
        let der = openssl_request(&pki, "leaf.pem", &[]);
        for n in 0..der.len() {
            assert_malformed(&der[..n], &format!("truncated to {n}"));
        }
        for i in 0..der.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut flipped = der.clone();
                flipped[i] ^= mask;
                // A flip inside a hash, the serial or the nonce still decodes; whatever
                // decodes must honour the CertID invariants.
                if let Ok(req) = parse_request(&flipped) {
                    assert!(!req.certs.is_empty());
                    for c in &req.certs {
                        assert_eq!(c.issuer_name_hash.len(), c.hash.output_len());
                        assert_eq!(c.issuer_key_hash.len(), c.hash.output_len());
                    }
                }
            }
        }
    }

    #[test]
    fn get_paths_decode_in_every_accepted_spelling() {
        let pki = TestPki::new();
        let der = openssl_request(&pki, "leaf.pem", &[]);
        let std = STANDARD.encode(&der);
        let percent_upper = std
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let percent_lower = std
            .replace('+', "%2b")
            .replace('/', "%2f")
            .replace('=', "%3d");
        for spelling in [
            std.clone(),
            std.trim_end_matches('=').to_owned(),
            percent_upper,
            percent_lower,
            URL_SAFE.encode(&der),
            URL_SAFE_NO_PAD.encode(&der),
        ] {
            assert_eq!(
                decode_get_path(&spelling).expect(&spelling),
                der,
                "{spelling}"
            );
        }
        // Every length class of padding, including none needed.
        for len in 1..6 {
            let bytes = vec![0xfb; len];
            assert_eq!(
                decode_get_path(&STANDARD.encode(&bytes)).expect("std"),
                bytes
            );
            assert_eq!(
                decode_get_path(&URL_SAFE_NO_PAD.encode(&bytes)).expect("url"),
                bytes
            );
        }
    }

    #[test]
    fn bad_get_paths_are_malformed() {
        let too_long = STANDARD.encode(vec![0u8; MAX_REQUEST_BYTES + 1]);
        for bad in [
            "",
            "%",
            "%2",
            "%zz",
            "MEIw*",
            "MEIw===",
            "ME=Iw",
            "A",
            "é",
            too_long.as_str(),
        ] {
            assert!(
                matches!(decode_get_path(bad), Err(OcspError::Malformed(_))),
                "{bad:.40}"
            );
        }
    }
}

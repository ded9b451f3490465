//! PKCS#10 certification requests ([RFC 2986](https://www.rfc-editor.org/rfc/rfc2986)):
//! parse, check proof of possession, reject weak keys and CA requests, validate SANs.

use crate::names::{DnsName, SubjectAltName};
use crate::X509Error;
use std::net::IpAddr;
use trustbox_types::KeyAlgorithm;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509CertificationRequest};
use x509_parser::public_key::PublicKey;

const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// SHA-1 based signature algorithms we refuse on CSRs.
const WEAK_SIGNATURES: [&str; 3] = ["1.2.840.113549.1.1.5", "1.3.14.3.2.29", "1.2.840.10045.4.1"];

/// A CSR whose signature verified, with the facts the seam needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCsr {
    /// The request's DER.
    pub der: Vec<u8>,
    /// The subject's commonName, if any.
    pub common_name: Option<String>,
    /// The SANs requested in the extensionRequest attribute, validated.
    pub sans: Vec<SubjectAltName>,
    /// The subject public key's algorithm and size.
    pub key_algorithm: KeyAlgorithm,
    /// The DER SubjectPublicKeyInfo.
    pub public_key_spki: Vec<u8>,
    /// The raw subjectPublicKey bits.
    pub public_key_raw: Vec<u8>,
}

/// Parses a CSR given as PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER,
/// checks its key and verifies its signature.
pub fn parse_csr(input: &[u8]) -> Result<ParsedCsr, X509Error> {
    let der = csr_der(input)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| X509Error::MalformedCsr(format!("not a PKCS#10 request ({e})")))?;
    if !rest.is_empty() {
        return Err(X509Error::MalformedCsr(
            "trailing data after the request".into(),
        ));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let key_algorithm = key_algorithm(spki)?;

    let sig_oid = csr.signature_algorithm.algorithm.to_id_string();
    if WEAK_SIGNATURES.contains(&sig_oid.as_str()) {
        return Err(X509Error::BadCsrSignature(
            "SHA-1 signatures are not accepted".into(),
        ));
    }
    csr.verify_signature()
        .map_err(|e| X509Error::BadCsrSignature(e.to_string()))?;

    let common_name = match info.subject.iter_common_name().next() {
        Some(cn) => Some(
            cn.as_str()
                .map_err(|_| X509Error::MalformedCsr("commonName is not a string".into()))?
                .to_owned(),
        ),
        None => None,
    };

    let mut sans = Vec::new();
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            match ext {
                ParsedExtension::BasicConstraints(bc) if bc.ca => {
                    return Err(X509Error::CaRequested)
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        sans.push(parse_general_name(name)?);
                    }
                }
                ParsedExtension::ParseError { error } => {
                    return Err(X509Error::MalformedCsr(format!(
                        "requested extension does not parse: {error}"
                    )))
                }
                _ => {}
            }
        }
    }
    sans.sort();
    sans.dedup();

    Ok(ParsedCsr {
        common_name,
        sans,
        key_algorithm,
        public_key_spki: spki.raw.to_vec(),
        public_key_raw: spki.subject_public_key.data.to_vec(),
        der: der.clone(),
    })
}

fn csr_der(input: &[u8]) -> Result<Vec<u8>, X509Error> {
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(input)
            .map_err(|_| X509Error::MalformedCsr("PEM is not UTF-8".into()))?;
        let blocks = crate::pem::decode_all(text).map_err(X509Error::MalformedCsr)?;
        return blocks
            .into_iter()
            .find(|(l, _)| l == "CERTIFICATE REQUEST" || l == "NEW CERTIFICATE REQUEST")
            .map(|(_, der)| der)
            .ok_or_else(|| X509Error::MalformedCsr("no CERTIFICATE REQUEST PEM block".into()));
    }
    if trimmed.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    Err(X509Error::MalformedCsr(
        "expected a PEM CERTIFICATE REQUEST or DER".into(),
    ))
}

fn key_algorithm(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<KeyAlgorithm, X509Error> {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        OID_RSA => {
            let bits = match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => rsa.key_size(),
                _ => {
                    return Err(X509Error::MalformedCsr(
                        "RSA public key does not parse".into(),
                    ))
                }
            };
            match bits {
                2048 => Ok(KeyAlgorithm::Rsa2048),
                3072 => Ok(KeyAlgorithm::Rsa3072),
                4096 => Ok(KeyAlgorithm::Rsa4096),
                b if b < 2048 => Err(X509Error::WeakKey(format!(
                    "RSA key of {b} bits is too weak; at least 2048 bits are required"
                ))),
                b => Err(X509Error::WeakKey(format!(
                    "RSA key of {b} bits is not supported; use 2048, 3072 or 4096"
                ))),
            }
        }
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => Ok(KeyAlgorithm::EcdsaP256),
                OID_P384 => Ok(KeyAlgorithm::EcdsaP384),
                other => Err(X509Error::WeakKey(format!(
                    "elliptic curve {other:?} is not supported; use P-256 or P-384"
                ))),
            }
        }
        OID_ED25519 => Ok(KeyAlgorithm::Ed25519),
        other => Err(X509Error::WeakKey(format!(
            "public key algorithm {other} is not supported"
        ))),
    }
}

fn parse_general_name(name: &GeneralName<'_>) -> Result<SubjectAltName, X509Error> {
    match name {
        GeneralName::DNSName(d) => Ok(SubjectAltName::Dns(DnsName::parse(d)?)),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => {
                let b: [u8; 4] = [bytes[0], bytes[1], bytes[2], bytes[3]];
                Ok(SubjectAltName::Ip(IpAddr::from(b)))
            }
            16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(bytes);
                Ok(SubjectAltName::Ip(IpAddr::from(b)))
            }
            n => Err(X509Error::BadSan(format!("IP address of {n} octets"))),
        },
        GeneralName::URI(u) => SubjectAltName::uri(u),
        GeneralName::RFC822Name(e) => SubjectAltName::email(e),
        GeneralName::Invalid(_, _) => Err(X509Error::BadSan(
            "a name does not decode (invalid string)".into(),
        )),
        other => Err(X509Error::BadSan(format!("unsupported name type {other}"))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    /// A CSR for `sans` with a fresh key of `alg` (rcgen-generated).
    pub(crate) fn make_csr(
        cn: Option<&str>,
        sans: &[SanType],
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> String {
        let key = KeyPair::generate_for(alg).expect("keygen");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans.to_vec();
        params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().expect("ia5"))
    }

    #[test]
    fn parses_a_good_request() {
        let pem = make_csr(
            Some("web"),
            &[
                dns("b.example.com"),
                dns("a.example.com"),
                SanType::IpAddress("10.0.0.1".parse().expect("ip")),
            ],
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        let csr = parse_csr(pem.as_bytes()).expect("valid CSR");
        assert_eq!(csr.common_name.as_deref(), Some("web"));
        assert_eq!(csr.key_algorithm, KeyAlgorithm::EcdsaP256);
        assert_eq!(csr.sans.len(), 3);
        assert_eq!(csr.sans[0].to_string(), "dns:a.example.com");
        // DER works too
        assert!(parse_csr(&csr.der).is_ok());
    }

    #[test]
    fn detects_p384_and_ed25519() {
        let p384 = make_csr(None, &[dns("x.test")], &rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(
            parse_csr(p384.as_bytes()).expect("ok").key_algorithm,
            KeyAlgorithm::EcdsaP384
        );
        let ed = make_csr(None, &[dns("x.test")], &rcgen::PKCS_ED25519);
        assert_eq!(
            parse_csr(ed.as_bytes()).expect("ok").key_algorithm,
            KeyAlgorithm::Ed25519
        );
    }

    #[test]
    fn rejects_garbage_and_tampering() {
        assert!(matches!(
            parse_csr(b"hello"),
            Err(X509Error::MalformedCsr(_))
        ));
        assert!(matches!(
            parse_csr(&[0x30, 0x03, 0x02, 0x01]),
            Err(X509Error::MalformedCsr(_))
        ));
        let pem = make_csr(
            Some("web"),
            &[dns("a.example.com")],
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        let mut der = parse_csr(pem.as_bytes()).expect("ok").der;
        // flip a byte inside the commonName value: still parses, no longer verifies
        let pos = der
            .windows(3)
            .position(|w| w == b"web")
            .expect("cn present");
        der[pos] = b'x';
        assert!(
            matches!(parse_csr(&der), Err(X509Error::BadCsrSignature(_))),
            "{:?}",
            parse_csr(&der)
        );
    }

    #[test]
    fn rejects_ca_requests() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let mut params =
            CertificateParams::new(vec!["ca.example.com".to_string()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        assert_eq!(parse_csr(pem.as_bytes()), Err(X509Error::CaRequested));
    }

    #[test]
    fn never_panics_on_truncated_or_mutated_input() {
        let pem = make_csr(
            Some("web.example.com"),
            &[dns("web.example.com")],
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        let der = parse_csr(pem.as_bytes()).expect("ok").der;
        for len in 0..der.len() {
            assert!(
                parse_csr(&der[..len]).is_err(),
                "truncated at {len} must be refused"
            );
        }
        // every single-byte corruption either fails cleanly or (rarely) still verifies
        let mut accepted = 0;
        for pos in 0..der.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut m = der.clone();
                m[pos] ^= flip;
                if parse_csr(&m).is_ok() {
                    accepted += 1;
                }
            }
        }
        assert!(accepted < 10, "{accepted} corrupted requests were accepted");
        let text = String::from_utf8_lossy(pem.as_bytes()).replace("MI", "@@");
        assert!(parse_csr(text.as_bytes()).is_err());
    }

    #[test]
    fn rejects_malformed_sans() {
        let pem = make_csr(
            None,
            &[dns("bad name.example.com")],
            &rcgen::PKCS_ECDSA_P256_SHA256,
        );
        assert!(matches!(
            parse_csr(pem.as_bytes()),
            Err(X509Error::BadSan(_))
        ));
    }
}

//! Lint before release: a structural check of every built leaf against RFC 5280 and the plan
//! it was built from. A certificate that fails is never recorded or returned.

use crate::build::{IssuingCa, LeafPlan};
use crate::X509Error;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

/// Checks `der` (just signed by `ca` following `plan`).
pub fn lint_leaf(der: &[u8], ca: &IssuingCa, plan: &LeafPlan) -> Result<(), X509Error> {
    let fail = |m: &str| Err(X509Error::Lint(m.to_owned()));
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| X509Error::Lint(e.to_string()))?;
    if !rest.is_empty() {
        return fail("trailing data after the certificate");
    }
    if cert.version() != X509Version::V3 {
        return fail("not a v3 certificate");
    }
    let serial = cert.raw_serial();
    if serial.is_empty() || serial.len() > 20 || serial[0] & 0x80 != 0 || serial.len() < 9 {
        return fail("serial must be positive, at most 20 octets and carry at least 64 bits");
    }
    let validity = cert.validity();
    if validity.not_before.timestamp() >= validity.not_after.timestamp() {
        return fail("notBefore is not before notAfter");
    }
    if validity.not_after.timestamp() > ca.not_after().unix_timestamp() {
        return fail("certificate outlives its issuer");
    }
    if cert.issuer().as_raw() != ca.subject_raw() {
        return fail("issuer name differs from the CA's subject");
    }
    let mut seen_bc = false;
    let mut seen_ski = false;
    let mut seen_aki = false;
    let mut seen_san = false;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                seen_bc = true;
                if bc.ca || !ext.critical {
                    return fail("basicConstraints must be critical with CA:FALSE");
                }
            }
            ParsedExtension::KeyUsage(ku) => {
                if !ext.critical {
                    return fail("keyUsage must be critical");
                }
                if ku.key_cert_sign() || ku.crl_sign() {
                    return fail("leaf keyUsage may not include keyCertSign or cRLSign");
                }
                let rsa =
                    cert.public_key().algorithm.algorithm.to_id_string() == "1.2.840.113549.1.1.1";
                if ku.key_encipherment() && !rsa {
                    return fail("keyEncipherment on a non-RSA key");
                }
            }
            ParsedExtension::SubjectKeyIdentifier(_) => seen_ski = true,
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                seen_aki = true;
                if aki.key_identifier.as_ref().map(|k| k.0) != Some(ca.key_id()) {
                    return fail(
                        "authorityKeyIdentifier differs from the CA's subjectKeyIdentifier",
                    );
                }
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                seen_san = true;
                let subject_empty = cert.subject().iter().next().is_none();
                if subject_empty && !ext.critical {
                    return fail("SAN must be critical when the subject is empty");
                }
                if san.general_names.len() != plan.sans.len() {
                    return fail("SAN count differs from the plan");
                }
            }
            ParsedExtension::ParseError { .. } | ParsedExtension::UnsupportedExtension { .. }
                if ext.critical =>
            {
                return fail("a critical extension does not parse");
            }
            _ => {}
        }
    }
    if !seen_bc || !seen_ski || !seen_aki {
        return fail(
            "basicConstraints, subjectKeyIdentifier and authorityKeyIdentifier are required",
        );
    }
    if !plan.sans.is_empty() && !seen_san {
        return fail("planned SANs are missing");
    }
    if cert.subject().iter().next().is_none() && !seen_san {
        return fail("a certificate with an empty subject needs SANs");
    }
    Ok(())
}

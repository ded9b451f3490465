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
    lint_common(&cert, rest, Some(ca))?;
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

/// What every certificate we sign must satisfy, whatever it is: v3, a positive serial of
/// 64 to 160 bits, a validity that does not outlive the issuer, the issuer's name, and the
/// key identifiers (AKI equal to the issuer's SKI when there is an issuer).
fn lint_common(
    cert: &X509Certificate<'_>,
    rest: &[u8],
    issuer: Option<&IssuingCa>,
) -> Result<(), X509Error> {
    let fail = |m: &str| Err(X509Error::Lint(m.to_owned()));
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
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = Some(a.key_identifier.as_ref().map(|k| k.0.to_vec()))
            }
            ParsedExtension::ParseError { .. } | ParsedExtension::UnsupportedExtension { .. }
                if ext.critical =>
            {
                return fail("a critical extension does not parse");
            }
            _ => {}
        }
    }
    if ski.is_none() {
        return fail("subjectKeyIdentifier is required");
    }
    match issuer {
        Some(ca) => {
            if validity.not_after.timestamp() > ca.not_after().unix_timestamp() {
                return fail("certificate outlives its issuer");
            }
            if cert.issuer().as_raw() != ca.subject_raw() {
                return fail("issuer name differs from the CA's subject");
            }
            if aki.flatten().as_deref() != Some(ca.key_id()) {
                return fail("authorityKeyIdentifier differs from the CA's subjectKeyIdentifier");
            }
        }
        None => {
            if cert.issuer().as_raw() != cert.subject().as_raw() {
                return fail("a root's issuer must be its own subject");
            }
        }
    }
    Ok(())
}

/// Checks a CA certificate just signed by `parent` (`None`: self-signed root): the common
/// rules, critical basicConstraints CA:TRUE within the parent's pathLenConstraint, critical
/// keyUsage with keyCertSign and cRLSign, and no extendedKeyUsage. A failing one is never
/// stored or used.
pub fn lint_ca(der: &[u8], parent: Option<&IssuingCa>) -> Result<(), X509Error> {
    let fail = |m: &str| Err(X509Error::Lint(m.to_owned()));
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| X509Error::Lint(e.to_string()))?;
    lint_common(&cert, rest, parent)?;
    let bc = match cert.basic_constraints() {
        Ok(Some(bc)) if bc.critical && bc.value.ca => bc.value,
        _ => return fail("a CA certificate needs critical basicConstraints CA:TRUE"),
    };
    if let Some(parent_len) = parent.and_then(IssuingCa::path_len) {
        if parent_len == 0 {
            return fail("the parent's pathLenConstraint 0 admits no CA below it");
        }
        match bc.path_len_constraint {
            Some(n) if n < parent_len => {}
            _ => return fail("pathLenConstraint must be below the parent's"),
        }
    }
    match cert.key_usage() {
        Ok(Some(ku)) if ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign() => {}
        _ => return fail("a CA certificate needs critical keyUsage keyCertSign and cRLSign"),
    }
    if matches!(cert.extended_key_usage(), Ok(Some(_))) {
        return fail("CA certificates carry no extendedKeyUsage");
    }
    Ok(())
}

/// Checks a delegated OCSP responder certificate just signed by `ca` (RFC 6960 §4.2.2.2):
/// the common rules, CA:FALSE, keyUsage digitalSignature only, extendedKeyUsage exactly
/// id-kp-OCSPSigning.
pub fn lint_ocsp_responder(der: &[u8], ca: &IssuingCa) -> Result<(), X509Error> {
    let fail = |m: &str| Err(X509Error::Lint(m.to_owned()));
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| X509Error::Lint(e.to_string()))?;
    lint_common(&cert, rest, Some(ca))?;
    if let Ok(Some(bc)) = cert.basic_constraints() {
        if bc.value.ca {
            return fail("an OCSP responder certificate may not be a CA");
        }
    }
    match cert.key_usage() {
        Ok(Some(ku))
            if ku.critical
                && ku.value.digital_signature()
                && !ku.value.key_cert_sign()
                && !ku.value.crl_sign() => {}
        _ => return fail("a responder needs critical keyUsage digitalSignature only"),
    }
    match cert.extended_key_usage() {
        Ok(Some(eku))
            if eku.value.ocsp_signing
                && !eku.value.any
                && !eku.value.server_auth
                && !eku.value.client_auth
                && eku.value.other.is_empty() => {}
        _ => return fail("a responder's extendedKeyUsage must be exactly id-kp-OCSPSigning"),
    }
    Ok(())
}

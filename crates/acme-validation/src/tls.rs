//! TLS client settings for validation: any certificate chain is accepted (the target proves
//! control by what it presents, not by a trust chain, as with Let's Encrypt), but the
//! handshake signature is still checked against the presented certificate's key.
//!
//! rustls' `verify_tls12/13_signature` helpers parse the certificate with webpki, which
//! refuses the unknown critical acmeIdentifier extension every tls-alpn-01 certificate has;
//! so the key is taken from the certificate with x509-parser and checked with the
//! provider's algorithms directly (TLS 1.3 through rustls' raw-key helper).

use crate::ValidationError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls13_signature_with_raw_key, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, PeerMisbehaved, SignatureScheme,
};
use std::sync::Arc;

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Accepts any certificate chain; verifies handshake signatures with the leaf's key.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = Spki::of(cert)?;
        let algs = self
            .provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        // As webpki does: the algorithm must fit the key's AlgorithmIdentifier.
        let alg = algs
            .iter()
            .find(|alg| alg.public_key_alg_id().as_ref() == spki.algorithm)
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))?;
        alg.verify_signature(spki.key, message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = Spki::of(cert)?;
        verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.der),
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A certificate's subjectPublicKeyInfo: whole, and split as signature checks need it.
struct Spki<'a> {
    /// The DER SubjectPublicKeyInfo.
    der: &'a [u8],
    /// The content octets of its AlgorithmIdentifier.
    algorithm: &'a [u8],
    /// The subjectPublicKey bits (no unused-bits octet).
    key: &'a [u8],
}

impl<'a> Spki<'a> {
    fn of(cert: &'a CertificateDer<'_>) -> Result<Self, rustls::Error> {
        let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| bad())?;
        let der = parsed.tbs_certificate.subject_pki.raw;
        let (0x30, spki, _) = der_tlv(der).ok_or_else(bad)? else {
            return Err(bad());
        };
        let (0x30, algorithm, rest) = der_tlv(spki).ok_or_else(bad)? else {
            return Err(bad());
        };
        let (0x03, [0, key @ ..], []) = der_tlv(rest).ok_or_else(bad)? else {
            return Err(bad());
        };
        Ok(Self {
            der,
            algorithm,
            key,
        })
    }
}

/// Splits one DER TLV off `input`: its tag, contents and what follows.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (octets, rest) = rest.split_at(n);
        let len = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// A TLS 1.2/1.3 client configuration offering exactly the ALPN protocol `alpn`, accepting
/// any certificate, with session resumption off so every validation does a full handshake.
pub(crate) fn client_config(alpn: &[u8]) -> Result<Arc<ClientConfig>, ValidationError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| {
            tracing::error!(error = %e, "building the validation TLS client failed");
            ValidationError::Internal("the TLS client could not be configured")
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Maps a failed TLS handshake to an error: a TLS-level failure is `Tls` (not transient), an
/// I/O failure under it a transient `Connection` error.
pub(crate) fn handshake_error(target: &str, e: std::io::Error) -> ValidationError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ValidationError::Tls(format!("TLS handshake with {target} failed: {tls}")),
        None => ValidationError::Connection {
            detail: format!("TLS handshake with {target} broke off: {e}"),
            transient: true,
        },
    }
}

//! OCSP ([RFC 6960](https://www.rfc-editor.org/rfc/rfc6960)) wire format for TrustBox: a pure
//! core that turns request bytes into typed [`OcspRequest`]s and signed answers into response
//! bytes.
//!
//! This crate owns request decoding (POST bodies and GET path segments, RFC 6960 Appendix A),
//! matching CertIDs to a CA ([`IssuerKeyHashes`]), building and signing BasicOCSPResponses
//! through a custody [`trustbox_crypto::Signer`], and the unsigned error responses.
//!
//! It must never open a socket, read a store or a clock (times come in as Unix seconds), hold
//! private key bytes (it only calls `Signer::sign`), or panic on bytes from the network.

mod request;
mod response;
#[cfg(test)]
mod test_pki;

pub use request::{
    decode_get_path, parse_request, CertRef, HashAlgorithm, IssuerKeyHashes, OcspRequest,
};
pub use response::{sign_response, CertStatus, Responder, SingleAnswer};

/// Largest request accepted, in bytes (bigger bodies are malformedRequest).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Errors of the OCSP core. None of them carries key material; the detail strings are for
/// logs, the client only ever sees the [`ErrorStatus`] from [`OcspError::status`].
#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    /// The request could not be decoded or is not one this responder can answer
    /// (`malformedRequest`).
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
    /// The responder certificate is unusable or does not belong to its key in custody.
    #[error("unusable OCSP responder: {0}")]
    BadResponder(String),
    /// The key in custody refused to sign.
    #[error("the OCSP responder key could not sign")]
    Sign,
    /// The response could not be encoded (a time out of range, no answers, ...).
    #[error("OCSP response could not be encoded: {0}")]
    Encode(String),
}

impl OcspError {
    /// The status to answer with: `Malformed` is `malformedRequest`, everything else is the
    /// responder's fault (`internalError`).
    pub fn status(&self) -> ErrorStatus {
        match self {
            Self::Malformed(_) => ErrorStatus::MalformedRequest,
            Self::BadResponder(_) | Self::Sign | Self::Encode(_) => ErrorStatus::InternalError,
        }
    }
}

/// `OCSPResponseStatus` values other than `successful`,
/// [RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorStatus {
    /// malformedRequest (1): illegal confirmation request.
    MalformedRequest,
    /// internalError (2): internal error in issuer.
    InternalError,
    /// tryLater (3): try again later.
    TryLater,
    /// sigRequired (5): must sign the request.
    SigRequired,
    /// unauthorized (6): request unauthorized (e.g. a CA this responder does not serve).
    Unauthorized,
}

impl ErrorStatus {
    /// The ENUMERATED value on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::MalformedRequest => 1,
            Self::InternalError => 2,
            Self::TryLater => 3,
            Self::SigRequired => 5,
            Self::Unauthorized => 6,
        }
    }
}

/// The unsigned `OCSPResponse` carrying only `status`, with no `responseBytes`
/// ([RFC 6960 §4.2.1](https://www.rfc-editor.org/rfc/rfc6960#section-4.2.1)), e.g.
/// `30 03 0a 01 01` for malformedRequest.
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }: fixed five octets, so there is nothing to fail.
    vec![0x30, 0x03, 0x0a, 0x01, status.code()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;
    use x509_ocsp::OcspResponse;

    #[test]
    fn error_responses_are_the_expected_der() {
        let cases = [
            (
                ErrorStatus::MalformedRequest,
                1,
                OcspResponse::malformed_request(),
            ),
            (
                ErrorStatus::InternalError,
                2,
                OcspResponse::internal_error(),
            ),
            (ErrorStatus::TryLater, 3, OcspResponse::try_later()),
            (ErrorStatus::SigRequired, 5, OcspResponse::sig_required()),
            (ErrorStatus::Unauthorized, 6, OcspResponse::unauthorized()),
        ];
        for (status, code, reference) in cases {
            let bytes = error_response(status);
            assert_eq!(bytes, [0x30, 0x03, 0x0a, 0x01, code], "{status:?}");
            assert_eq!(bytes, reference.to_der().expect("encode"), "{status:?}");
        }
    }

    #[test]
    fn only_malformed_input_is_the_clients_fault() {
        assert_eq!(
            OcspError::Malformed("x".into()).status(),
            ErrorStatus::MalformedRequest
        );
        for e in [
            OcspError::BadResponder("x".into()),
            OcspError::Sign,
            OcspError::Encode("x".into()),
        ] {
            assert_eq!(e.status(), ErrorStatus::InternalError, "{e}");
        }
    }
}

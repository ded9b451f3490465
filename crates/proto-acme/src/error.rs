//! ACME errors (RFC 8555 §6.7): a type URN, a detail, and the HTTP status it goes with.

use serde::Serialize;

/// The error types of RFC 8555 §6.7 (and RFC 9773's `alreadyReplaced`) this server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// The request specified an account that does not exist.
    AccountDoesNotExist,
    /// The request carried a certificate already replaced by another order (RFC 9773).
    AlreadyReplaced,
    /// The request specified a certificate to be revoked that has already been revoked.
    AlreadyRevoked,
    /// The CSR is unacceptable (e.g., due to a short key).
    BadCsr,
    /// The client sent an unacceptable anti-replay nonce.
    BadNonce,
    /// The JWS was signed by a public key the server does not support.
    BadPublicKey,
    /// The revocation reason provided is not allowed by the server.
    BadRevocationReason,
    /// The JWS was signed with an algorithm the server does not support.
    BadSignatureAlgorithm,
    /// Certification authority authorization (CAA) records forbid issuance.
    Caa,
    /// A connection to the validation target could not be made.
    Connection,
    /// There was a problem with a DNS query during identifier validation.
    Dns,
    /// The request must include a value for the `externalAccountBinding` field.
    ExternalAccountRequired,
    /// Response received didn't match the challenge's requirements.
    IncorrectResponse,
    /// A contact URL for an account was invalid.
    InvalidContact,
    /// The order names a profile the server does not offer (ACME profiles extension).
    InvalidProfile,
    /// The request message was malformed.
    Malformed,
    /// The request attempted to finalize an order that is not ready.
    OrderNotReady,
    /// The request exceeds a rate limit.
    RateLimited,
    /// The server will not issue certificates for the identifier.
    RejectedIdentifier,
    /// The server experienced an internal error.
    ServerInternal,
    /// The server received a TLS error during validation.
    Tls,
    /// The client lacks sufficient authorization.
    Unauthorized,
    /// A contact URL for an account used an unsupported protocol scheme.
    UnsupportedContact,
    /// An identifier is of an unsupported type.
    UnsupportedIdentifier,
    /// Visit the `instance` URL and take actions specified there.
    UserActionRequired,
}

impl ErrorType {
    /// The type's name after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyReplaced => "alreadyReplaced",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadRevocationReason => "badRevocationReason",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::Caa => "caa",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidContact => "invalidContact",
            Self::InvalidProfile => "invalidProfile",
            Self::Malformed => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RateLimited => "rateLimited",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal => "serverInternal",
            Self::Tls => "tls",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
            Self::UserActionRequired => "userActionRequired",
        }
    }

    /// The full URN (`urn:ietf:params:acme:error:badNonce`).
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status a response with this error carries.
    pub fn status(self) -> u16 {
        match self {
            Self::AccountDoesNotExist | Self::AlreadyRevoked => 400,
            Self::Unauthorized | Self::OrderNotReady => 403,
            Self::AlreadyReplaced => 409,
            Self::RateLimited => 429,
            Self::ServerInternal => 500,
            _ => 400,
        }
    }
}

/// An ACME error as the client receives it: an RFC 7807 problem document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", kind.name())]
pub struct AcmeError {
    /// The error type.
    pub kind: ErrorType,
    /// What went wrong, for the client's operator.
    pub detail: String,
    /// The HTTP status, when not the type's usual one ([`AcmeError::with_status`]).
    pub status: Option<u16>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    detail: &'a str,
    status: u16,
}

impl AcmeError {
    /// An error of `kind`.
    pub fn new(kind: ErrorType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: None,
        }
    }

    /// The same error answered with HTTP `status` (404 for a resource that is not there).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status of the answer.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.status())
    }

    /// A `malformed` error.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Malformed, detail)
    }

    /// The problem document (`application/problem+json`).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&Problem {
            kind: self.kind.urn(),
            detail: &self.detail,
            status: self.http_status(),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_rfc_type_and_status() {
        let e = AcmeError::new(ErrorType::BadNonce, "stale nonce");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("json");
        assert_eq!(v["type"], "urn:ietf:params:acme:error:badNonce");
        assert_eq!(v["status"], 400);
        assert_eq!(v["detail"], "stale nonce");
        assert_eq!(ErrorType::Unauthorized.status(), 403);
        assert_eq!(ErrorType::RateLimited.status(), 429);
        assert_eq!(ErrorType::BadCsr.urn(), "urn:ietf:params:acme:error:badCSR");
    }
}

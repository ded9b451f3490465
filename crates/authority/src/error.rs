//! The seam's error: a kind the edge maps to a status, a stable code, a user-safe detail.

use trustbox_store::StoreError;
use trustbox_x509::X509Error;

/// How a failure maps onto a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No valid credential.
    Unauthenticated,
    /// Authenticated, but lacking the scope.
    Forbidden,
    /// The object does not exist for this tenant.
    NotFound,
    /// The request is invalid; nothing changed.
    Invalid,
    /// The request conflicts with existing state.
    Conflict,
    /// Overloaded; retry later.
    Unavailable,
    /// Our fault; details are in the log only.
    Internal,
}

/// A failure of the issuance seam.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct AuthorityError {
    /// The kind.
    pub kind: ErrorKind,
    /// A stable machine-readable code (`bad-csr`, `weak-key`, `profile-violation`, ...).
    pub code: &'static str,
    /// A message safe to show the client.
    pub detail: String,
}

impl AuthorityError {
    /// A new error.
    pub fn new(kind: ErrorKind, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            detail: detail.into(),
        }
    }

    /// An invalid-request error.
    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, detail)
    }

    /// A not-found error.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "not-found",
            format!("{what} not found"),
        )
    }

    /// A missing-scope error.
    pub fn forbidden(scope: trustbox_types::Scope) -> Self {
        Self::new(
            ErrorKind::Forbidden,
            "forbidden",
            format!("the caller lacks the {scope} scope"),
        )
    }

    /// An internal error; `cause` goes to the log, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            ErrorKind::Internal,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl From<StoreError> for AuthorityError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("object"),
            StoreError::Conflict(detail) => {
                tracing::info!(%detail, "store conflict");
                Self::new(
                    ErrorKind::Conflict,
                    "conflict",
                    "an object with that name already exists",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<X509Error> for AuthorityError {
    fn from(e: X509Error) -> Self {
        let code = match &e {
            X509Error::MalformedCsr(_) => "bad-csr",
            X509Error::BadCsrSignature(_) => "bad-csr-signature",
            X509Error::WeakKey(_) => "weak-key",
            X509Error::CaRequested => "ca-requested",
            X509Error::BadSan(_) => "bad-san",
            X509Error::ProfileViolation { .. } => "profile-violation",
            X509Error::InvalidProfile(_) => "invalid-profile",
            X509Error::ForbiddenInLeafProfile(_) => "forbidden-in-leaf-profile",
            X509Error::CaConstraint(_) => "ca-constraint",
            X509Error::Build(_) | X509Error::Lint(_) => return Self::internal(e),
        };
        Self::invalid(code, e.to_string())
    }
}

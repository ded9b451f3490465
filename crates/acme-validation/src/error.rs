//! The crate's one error type: what went wrong, as an ACME error type plus a detail that is
//! safe to show the ACME client (it describes what the validator saw, never our internals).

use std::time::Duration;
use trustbox_proto_acme::ErrorType;

/// Why a challenge did not validate. Every `Display` text is a user-safe detail.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// The challenge type cannot prove this identifier (http-01 or tls-alpn-01 for a
    /// wildcard, dns-01 for an IP address).
    #[error("{challenge} cannot validate {identifier}: {reason}")]
    NotApplicable {
        /// The challenge type's wire name.
        challenge: &'static str,
        /// The identifier, as text.
        identifier: String,
        /// Why not.
        reason: &'static str,
    },
    /// The token or key authorization handed to the validator is not well formed.
    #[error("malformed challenge: {0}")]
    Malformed(String),
    /// A DNS lookup failed or found nothing usable.
    #[error("DNS problem: {detail}")]
    Dns {
        /// What failed, naming the name and record type.
        detail: String,
        /// Whether a later attempt may succeed (SERVFAIL, resolver timeout).
        transient: bool,
    },
    /// A TCP connection could not be made, or broke before an answer arrived.
    #[error("connection problem: {detail}")]
    Connection {
        /// What failed, naming the address.
        detail: String,
        /// Whether a later attempt may succeed (refused, reset, unreachable).
        transient: bool,
    },
    /// The whole attempt ran past the configured deadline.
    #[error("validation timed out after {} ms", after.as_millis())]
    Timeout {
        /// The deadline that passed.
        after: Duration,
    },
    /// An http-01 redirect was unusable (bad `Location`, a scheme other than http/https).
    #[error("redirect problem: {0}")]
    Redirect(String),
    /// An http-01 fetch was redirected more often than allowed.
    #[error("too many redirects (more than {max})")]
    TooManyRedirects {
        /// The configured maximum.
        max: usize,
    },
    /// The http-01 resource answered with a status other than 200.
    #[error("{url} answered HTTP status {status}")]
    HttpStatus {
        /// The URL fetched last.
        url: String,
        /// The status it answered with.
        status: u16,
    },
    /// The http-01 response body exceeds the configured cap.
    #[error("the response body from {url} is larger than {limit} bytes")]
    BodyTooLarge {
        /// The URL fetched last.
        url: String,
        /// The configured cap.
        limit: usize,
    },
    /// The target answered, but not with what proves control.
    #[error("incorrect response: {0}")]
    IncorrectResponse(String),
    /// The TLS handshake failed, or did not yield what tls-alpn-01 needs (ALPN, a certificate).
    #[error("TLS problem: {0}")]
    Tls(String),
    /// The validator's configuration is unusable.
    #[error("invalid validator configuration: {0}")]
    InvalidConfig(String),
    /// The validator could not do its work for a reason of its own (causes are logged).
    #[error("internal validation error: {0}")]
    Internal(&'static str),
}

impl ValidationError {
    /// The ACME error type (RFC 8555 §6.7) to put in the challenge's `error`.
    pub fn acme_type(&self) -> ErrorType {
        match self {
            Self::NotApplicable { .. } => ErrorType::Unauthorized,
            Self::Malformed(_) => ErrorType::Malformed,
            Self::Dns { .. } => ErrorType::Dns,
            Self::Connection { .. }
            | Self::Timeout { .. }
            | Self::Redirect(_)
            | Self::TooManyRedirects { .. } => ErrorType::Connection,
            Self::HttpStatus { .. } | Self::BodyTooLarge { .. } | Self::IncorrectResponse(_) => {
                ErrorType::IncorrectResponse
            }
            Self::Tls(_) => ErrorType::Tls,
            Self::InvalidConfig(_) | Self::Internal(_) => ErrorType::ServerInternal,
        }
    }

    /// Whether retrying later may succeed: refused or reset connections, timeouts, DNS
    /// server failures and HTTP 5xx are; wrong content, bad redirects and TLS failures are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Dns { transient, .. } | Self::Connection { transient, .. } => *transient,
            Self::Timeout { .. } => true,
            Self::HttpStatus { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A short, printable excerpt of bytes received from a validation target: at most 64 bytes,
/// anything but printable ASCII escaped as `\xNN`, `...` appended when cut.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let mut out = String::new();
    for &b in bytes.iter().take(MAX) {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_transience() {
        let refused = ValidationError::Connection {
            detail: "refused".into(),
            transient: true,
        };
        assert_eq!(refused.acme_type(), ErrorType::Connection);
        assert!(refused.is_transient());
        let timeout = ValidationError::Timeout {
            after: Duration::from_secs(1),
        };
        assert_eq!(timeout.acme_type(), ErrorType::Connection);
        assert!(timeout.is_transient());
        let wrong = ValidationError::IncorrectResponse("x".into());
        assert_eq!(wrong.acme_type(), ErrorType::IncorrectResponse);
        assert!(!wrong.is_transient());
        let status = |status| ValidationError::HttpStatus {
            url: "http://a.test/".into(),
            status,
        };
        assert!(!status(404).is_transient());
        assert!(status(503).is_transient());
        assert_eq!(ValidationError::Tls("x".into()).acme_type(), ErrorType::Tls);
        assert_eq!(
            ValidationError::Internal("x").acme_type(),
            ErrorType::ServerInternal
        );
    }

    #[test]
    fn excerpt_escapes_and_cuts() {
        assert_eq!(excerpt(b"ab\n\x00c"), "ab\\x0a\\x00c");
        let long = vec![b'a'; 100];
        let e = excerpt(&long);
        assert!(e.ends_with("...") && e.len() == 67, "{e}");
    }
}

//! Identifiers and the order, authorization and challenge state machines of RFC 8555
//! §7.1.6, as pure functions: the server stores the states and applies these transitions.

use crate::error::{AcmeError, ErrorType};
use serde_json::Value;
use std::net::IpAddr;

/// What a certificate is requested for (RFC 8555 §9.7.7; `ip` from RFC 8738).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// A DNS name, lower-case, without a trailing dot; `*.` prefixed when a wildcard.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl Identifier {
    /// Whether it is a wildcard name (`*.example.com`), which only dns-01 can prove.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Self::Dns(d) if d.starts_with("*."))
    }

    /// The challenge types that can prove it: a wildcard only dns-01; an IP address
    /// http-01 and tls-alpn-01 (RFC 8738 §7); other names all three.
    pub fn challenge_types(&self) -> &'static [ChallengeType] {
        match self {
            Self::Dns(_) if self.is_wildcard() => &[ChallengeType::Dns01],
            Self::Dns(_) => &[
                ChallengeType::Http01,
                ChallengeType::Dns01,
                ChallengeType::TlsAlpn01,
            ],
            Self::Ip(_) => &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
        }
    }
}

/// Parses `{"type": "dns" | "ip", "value": ...}`; an unknown type is
/// `unsupportedIdentifier`, a value that is not a valid name or address
/// `rejectedIdentifier`.
pub fn parse_identifier(v: &Value) -> Result<Identifier, AcmeError> {
    let kind = v.get("type").and_then(Value::as_str);
    let value = v.get("value").and_then(Value::as_str);
    let (Some(kind), Some(value)) = (kind, value) else {
        return Err(AcmeError::malformed(
            "an identifier needs a string type and value",
        ));
    };
    let rejected = |why: &str| {
        AcmeError::new(
            ErrorType::RejectedIdentifier,
            format!("{kind} identifier {value:?}: {why}"),
        )
    };
    match kind {
        "dns" => {
            let name = value.to_ascii_lowercase();
            let bare = name.strip_prefix("*.").unwrap_or(&name);
            if value.ends_with('.') || bare.is_empty() || bare.len() > 253 {
                return Err(rejected("not a fully qualified name without trailing dot"));
            }
            let labels: Vec<&str> = bare.split('.').collect();
            if labels.len() < 2 {
                return Err(rejected("a name needs at least two labels"));
            }
            for label in &labels {
                let ldh = label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if label.is_empty()
                    || label.len() > 63
                    || !ldh
                    || label.starts_with('-')
                    || label.ends_with('-')
                {
                    return Err(rejected(
                        "labels are 1 to 63 letters, digits and inner hyphens",
                    ));
                }
            }
            if bare.parse::<IpAddr>().is_ok()
                || labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(rejected("an address goes in an ip identifier"));
            }
            Ok(Identifier::Dns(name))
        }
        "ip" => value
            .parse::<IpAddr>()
            .map(Identifier::Ip)
            .map_err(|_| rejected("not an IPv4 or IPv6 address")),
        other => Err(AcmeError::new(
            ErrorType::UnsupportedIdentifier,
            format!("identifier type {other:?} is not supported (dns, ip)"),
        )),
    }
}

/// The challenge types served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChallengeType {
    /// `http-01` (RFC 8555 §8.3).
    Http01,
    /// `dns-01` (RFC 8555 §8.4).
    Dns01,
    /// `tls-alpn-01` (RFC 8737).
    TlsAlpn01,
}

impl ChallengeType {
    /// The value whose wire name is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Http01, Self::Dns01, Self::TlsAlpn01]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// A challenge's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// Created; waiting for the client.
    Pending,
    /// The client responded; the server is validating.
    Processing,
    /// Validated.
    Valid,
    /// Validation failed.
    Invalid,
}

impl ChallengeStatus {
    /// The value whose wire name is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Processing, Self::Valid, Self::Invalid]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
        }
    }

    /// The client responded (POST to the challenge URL): validation starts. Responding
    /// again while processing, or to a challenge that ended, changes nothing.
    pub fn respond(self) -> Self {
        match self {
            Self::Pending => Self::Processing,
            other => other,
        }
    }

    /// Validation ended with `ok`; only a processing challenge takes it.
    pub fn validated(self, ok: bool) -> Result<Self, AcmeError> {
        match (self, ok) {
            (Self::Processing, true) => Ok(Self::Valid),
            (Self::Processing, false) => Ok(Self::Invalid),
            (other, _) => Err(AcmeError::malformed(format!(
                "a {} challenge is not being validated",
                other.as_str()
            ))),
        }
    }
}

/// An authorization's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationStatus {
    /// Waiting for one of its challenges to be validated.
    Pending,
    /// One challenge was validated.
    Valid,
    /// A challenge failed.
    Invalid,
    /// The client deactivated it.
    Deactivated,
    /// It expired.
    Expired,
    /// The server revoked it.
    Revoked,
}

impl AuthorizationStatus {
    /// The value whose wire name is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Valid,
            Self::Invalid,
            Self::Deactivated,
            Self::Expired,
            Self::Revoked,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Deactivated => "deactivated",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// The status that follows from its challenges and expiry (RFC 8555 §7.1.6): pending
    /// becomes valid when a challenge is valid and invalid when one failed; pending or
    /// valid become expired once `expired`; the other states are final.
    pub fn settle(self, challenges: &[ChallengeStatus], expired: bool) -> Self {
        match self {
            Self::Pending | Self::Valid if expired => Self::Expired,
            Self::Pending if challenges.contains(&ChallengeStatus::Valid) => Self::Valid,
            Self::Pending if challenges.contains(&ChallengeStatus::Invalid) => Self::Invalid,
            other => other,
        }
    }

    /// The client deactivates it: only a pending or valid authorization can be.
    pub fn deactivate(self) -> Result<Self, AcmeError> {
        match self {
            Self::Pending | Self::Valid => Ok(Self::Deactivated),
            other => Err(AcmeError::malformed(format!(
                "a {} authorization cannot be deactivated",
                other.as_str()
            ))),
        }
    }
}

/// An order's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Its authorizations are not all valid yet.
    Pending,
    /// Every authorization is valid: it can be finalized.
    Ready,
    /// Finalized; the certificate is being issued.
    Processing,
    /// The certificate was issued.
    Valid,
    /// An authorization failed, the order expired, or issuance failed.
    Invalid,
}

impl OrderStatus {
    /// The value whose wire name is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Ready,
            Self::Processing,
            Self::Valid,
            Self::Invalid,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Processing => "processing",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
        }
    }

    /// The status that follows from its authorizations and expiry: an order that is not
    /// yet processing becomes invalid once expired or once any authorization is neither
    /// pending nor valid, and ready once all are valid.
    pub fn settle(self, authorizations: &[AuthorizationStatus], expired: bool) -> Self {
        use AuthorizationStatus as A;
        match self {
            Self::Pending | Self::Ready => {
                if expired
                    || authorizations
                        .iter()
                        .any(|a| !matches!(a, A::Pending | A::Valid))
                {
                    Self::Invalid
                } else if !authorizations.is_empty()
                    && authorizations.iter().all(|a| *a == A::Valid)
                {
                    Self::Ready
                } else {
                    Self::Pending
                }
            }
            other => other,
        }
    }

    /// The client finalizes it (RFC 8555 §7.4): only a ready order can be.
    pub fn finalize(self) -> Result<Self, AcmeError> {
        match self {
            Self::Ready => Ok(Self::Processing),
            other => Err(AcmeError::new(
                ErrorType::OrderNotReady,
                format!("the order is {}, not ready", other.as_str()),
            )),
        }
    }

    /// Issuance ended with `ok`; only a processing order takes it.
    pub fn issued(self, ok: bool) -> Result<Self, AcmeError> {
        match (self, ok) {
            (Self::Processing, true) => Ok(Self::Valid),
            (Self::Processing, false) => Ok(Self::Invalid),
            (other, _) => Err(AcmeError::malformed(format!(
                "a {} order is not being issued",
                other.as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use AuthorizationStatus as A;
    use ChallengeStatus as C;
    use OrderStatus as O;

    #[test]
    fn identifiers_are_parsed_and_choose_their_challenges() {
        let dns =
            parse_identifier(&json!({"type": "dns", "value": "WWW.Example.com"})).expect("dns");
        assert_eq!(dns, Identifier::Dns("www.example.com".into()));
        assert_eq!(dns.challenge_types().len(), 3);
        let wild =
            parse_identifier(&json!({"type": "dns", "value": "*.example.com"})).expect("wildcard");
        assert!(wild.is_wildcard());
        assert_eq!(wild.challenge_types(), [ChallengeType::Dns01]);
        let ip = parse_identifier(&json!({"type": "ip", "value": "2001:db8::1"})).expect("ip");
        assert_eq!(
            ip.challenge_types(),
            [ChallengeType::Http01, ChallengeType::TlsAlpn01]
        );
        let kind = |v: Value| parse_identifier(&v).expect_err("refused").kind;
        assert_eq!(
            kind(json!({"type": "email", "value": "a@b.c"})),
            ErrorType::UnsupportedIdentifier
        );
        for bad in [
            "localhost",
            "a..b.com",
            "-a.example.com",
            "*.*.example.com",
            "10.0.0.1",
            "exa mple.com",
            "example.com.",
        ] {
            assert_eq!(
                kind(json!({"type": "dns", "value": bad})),
                ErrorType::RejectedIdentifier,
                "{bad}"
            );
        }
        assert_eq!(
            kind(json!({"type": "ip", "value": "300.1.1.1"})),
            ErrorType::RejectedIdentifier
        );
        assert_eq!(kind(json!({"type": "dns"})), ErrorType::Malformed);
    }

    #[test]
    fn challenges_move_pending_processing_then_valid_or_invalid() {
        assert_eq!(C::Pending.respond(), C::Processing);
        assert_eq!(C::Processing.respond(), C::Processing);
        assert_eq!(C::Valid.respond(), C::Valid, "an ended challenge stays");
        assert_eq!(C::Processing.validated(true).expect("ok"), C::Valid);
        assert_eq!(C::Processing.validated(false).expect("ok"), C::Invalid);
        assert!(C::Pending.validated(true).is_err());
        assert!(C::Invalid.validated(true).is_err());
    }

    #[test]
    fn authorizations_follow_their_challenges_and_expire() {
        assert_eq!(
            A::Pending.settle(&[C::Pending, C::Processing], false),
            A::Pending
        );
        assert_eq!(A::Pending.settle(&[C::Pending, C::Valid], false), A::Valid);
        assert_eq!(
            A::Pending.settle(&[C::Invalid, C::Pending], false),
            A::Invalid
        );
        assert_eq!(A::Valid.settle(&[C::Valid], true), A::Expired);
        assert_eq!(
            A::Pending.settle(&[C::Valid], true),
            A::Expired,
            "expiry wins"
        );
        assert_eq!(A::Revoked.settle(&[C::Valid], false), A::Revoked, "final");
        assert_eq!(A::Valid.deactivate().expect("ok"), A::Deactivated);
        assert!(A::Expired.deactivate().is_err());
    }

    #[test]
    fn orders_become_ready_when_all_authorizations_are_valid_then_finalize() {
        assert_eq!(
            O::Pending.settle(&[A::Valid, A::Pending], false),
            O::Pending
        );
        assert_eq!(O::Pending.settle(&[A::Valid, A::Valid], false), O::Ready);
        assert_eq!(
            O::Pending.settle(&[A::Valid, A::Invalid], false),
            O::Invalid
        );
        assert_eq!(
            O::Pending.settle(&[A::Valid, A::Deactivated], false),
            O::Invalid
        );
        assert_eq!(
            O::Ready.settle(&[A::Valid], true),
            O::Invalid,
            "expired before finalize"
        );
        assert_eq!(
            O::Pending.settle(&[], false),
            O::Pending,
            "no authorizations is not ready"
        );
        assert_eq!(
            O::Processing.settle(&[A::Expired], true),
            O::Processing,
            "issuance goes on"
        );
        let e = O::Pending.finalize().expect_err("not ready");
        assert_eq!((e.kind, e.kind.status()), (ErrorType::OrderNotReady, 403));
        assert_eq!(O::Ready.finalize().expect("ok"), O::Processing);
        assert_eq!(O::Processing.issued(true).expect("ok"), O::Valid);
        assert_eq!(O::Processing.issued(false).expect("ok"), O::Invalid);
        assert!(O::Valid.finalize().is_err());
        assert!(O::Ready.issued(true).is_err());
    }
}

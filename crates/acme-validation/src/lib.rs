//! ACME challenge validation, for real and failing closed: http-01
//! ([RFC 8555 §8.3](https://www.rfc-editor.org/rfc/rfc8555#section-8.3)), dns-01
//! ([§8.4](https://www.rfc-editor.org/rfc/rfc8555#section-8.4)) and tls-alpn-01
//! ([RFC 8737](https://www.rfc-editor.org/rfc/rfc8737), IP identifiers per
//! [RFC 8738](https://www.rfc-editor.org/rfc/rfc8738)).
//!
//! It owns the network side of proving control: resolving names through the resolver it is
//! given, connecting, fetching, handshaking and checking what came back. It never stores
//! state, never decides authorization status (the server applies the result), and never
//! answers `Ok` unless the target proved control. Every attempt is bounded by one deadline
//! and a limit on validations in flight.

#![forbid(unsafe_code)]

mod dns01;
mod error;
mod http01;
mod net;
#[cfg(test)]
mod testutil;
mod tls;
mod tlsalpn01;

pub use error::ValidationError;

use rustls::ClientConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use trustbox_proto_acme::{ChallengeType, Identifier};

/// Where validation looks names up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ResolverConfig {
    /// The system resolver for addresses (so `/etc/hosts` applies), and the system's DNS
    /// configuration (`/etc/resolv.conf`) for TXT.
    #[default]
    System,
    /// These DNS servers only (UDP, falling back to TCP), for every record type.
    Nameservers(Vec<SocketAddr>),
}

/// How validation behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorConfig {
    /// Where names are looked up.
    pub resolver: ResolverConfig,
    /// The deadline for one whole validation attempt, lookups and redirects included.
    pub timeout: Duration,
    /// The largest http-01 body accepted.
    pub max_body_bytes: usize,
    /// The most http-01 redirects followed.
    pub max_redirects: usize,
    /// The most validations in flight at once; more wait for a slot.
    pub max_concurrent: usize,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            resolver: ResolverConfig::System,
            timeout: Duration::from_secs(10),
            max_body_bytes: 8 * 1024,
            max_redirects: 10,
            max_concurrent: 64,
        }
    }
}

/// The ports the challenges are validated on: 80 and 443 per the RFCs; tests and lab setups
/// point them elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The port http-01 connects to first.
    pub http: u16,
    /// The port tls-alpn-01 connects to.
    pub tls: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self { http: 80, tls: 443 }
    }
}

/// Validates ACME challenges; cheap to clone (the state is shared).
#[derive(Clone, Debug)]
pub struct Validator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ValidatorConfig,
    net: net::Net,
    permits: Semaphore,
    /// For tls-alpn-01: ALPN `acme-tls/1` only.
    alpn_tls: Arc<ClientConfig>,
    /// For http-01 redirects to https: ALPN `http/1.1`.
    https_tls: Arc<ClientConfig>,
}

impl Validator {
    /// A validator with `config`; fails on a zero timeout or concurrency or an empty
    /// nameserver list.
    pub fn new(config: ValidatorConfig) -> Result<Self, ValidationError> {
        if config.timeout.is_zero() {
            return Err(ValidationError::InvalidConfig(
                "timeout must be positive".into(),
            ));
        }
        if config.max_concurrent == 0 {
            return Err(ValidationError::InvalidConfig(
                "max_concurrent must be at least 1".into(),
            ));
        }
        let net = net::Net::new(&config.resolver, config.timeout)?;
        let inner = Inner {
            permits: Semaphore::new(config.max_concurrent),
            alpn_tls: tls::client_config(tls::ACME_TLS_ALPN)?,
            https_tls: tls::client_config(b"http/1.1")?,
            net,
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ValidatorConfig {
        &self.inner.config
    }

    /// Validates one challenge; Ok(()) only when the target proved control.
    ///
    /// Waits for a slot among `max_concurrent`, then runs under the `timeout` deadline.
    pub async fn validate(
        &self,
        kind: ChallengeType,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
        ports: Ports,
    ) -> Result<(), ValidationError> {
        check_applicable(kind, identifier)?;
        check_input(token, key_authorization)?;
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| ValidationError::Internal("the validator is shut down"))?;
        let deadline = self.inner.config.timeout;
        let inner = &*self.inner;
        let attempt = async {
            match kind {
                ChallengeType::Http01 => {
                    http01::validate(inner, identifier, token, key_authorization, ports.http).await
                }
                ChallengeType::Dns01 => dns01::validate(inner, identifier, key_authorization).await,
                ChallengeType::TlsAlpn01 => {
                    tlsalpn01::validate(inner, identifier, key_authorization, ports.tls).await
                }
            }
        };
        let result = match tokio::time::timeout(deadline, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ValidationError::Timeout { after: deadline }),
        };
        match &result {
            Ok(()) => {
                tracing::debug!(challenge = kind.as_str(), identifier = %describe(identifier), "challenge validated")
            }
            Err(e) => {
                tracing::debug!(challenge = kind.as_str(), identifier = %describe(identifier), error = %e, "challenge failed")
            }
        }
        result
    }
}

/// The identifier as text, for details and logs.
pub(crate) fn describe(identifier: &Identifier) -> String {
    match identifier {
        Identifier::Dns(name) => name.clone(),
        Identifier::Ip(addr) => addr.to_string(),
    }
}

/// A wildcard is provable by dns-01 only, an IP address by http-01 and tls-alpn-01 only
/// (RFC 8555 §7.1.3, RFC 8738 §7).
fn check_applicable(kind: ChallengeType, identifier: &Identifier) -> Result<(), ValidationError> {
    let reason = match (kind, identifier) {
        (ChallengeType::Dns01, Identifier::Ip(_)) => Some("an IP address has no DNS zone to prove"),
        (ChallengeType::Http01 | ChallengeType::TlsAlpn01, _) if identifier.is_wildcard() => {
            Some("a wildcard name can only be proven with dns-01")
        }
        _ => None,
    };
    match reason {
        Some(reason) => Err(ValidationError::NotApplicable {
            challenge: kind.as_str(),
            identifier: describe(identifier),
            reason,
        }),
        None => Ok(()),
    }
}

/// The token is base64url (RFC 8555 §8.1) and the key authorization `token.thumbprint`, so
/// neither can smuggle a path, header or whitespace into a request.
fn check_input(token: &str, key_authorization: &str) -> Result<(), ValidationError> {
    let b64url = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    if token.is_empty() || token.len() > 256 || !token.bytes().all(b64url) {
        return Err(ValidationError::Malformed(
            "the token is not base64url".into(),
        ));
    }
    let shaped = key_authorization
        .split_once('.')
        .is_some_and(|(t, thumb)| t == token && !thumb.is_empty() && thumb.bytes().all(b64url));
    if !shaped {
        return Err(ValidationError::Malformed(
            "the key authorization is not token.thumbprint".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use trustbox_proto_acme::ErrorType;

    #[tokio::test]
    async fn challenge_must_fit_identifier() {
        let v = Validator::new(ValidatorConfig::default()).expect("default config is valid");
        let wildcard = Identifier::Dns("*.example.test".into());
        let ip = Identifier::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        for (kind, id) in [
            (ChallengeType::Http01, &wildcard),
            (ChallengeType::TlsAlpn01, &wildcard),
            (ChallengeType::Dns01, &ip),
        ] {
            let err = v
                .validate(kind, id, "tok", "tok.thumb", Ports::default())
                .await
                .expect_err("not applicable");
            assert!(
                matches!(err, ValidationError::NotApplicable { .. }),
                "{err}"
            );
            assert_eq!(err.acme_type(), ErrorType::Unauthorized);
        }
    }

    #[tokio::test]
    async fn malformed_input_is_refused_before_any_io() {
        let v = Validator::new(ValidatorConfig::default()).expect("default config is valid");
        let id = Identifier::Dns("example.test".into());
        for (token, ka) in [
            ("../etc", "../etc.x"),
            ("tok", "tok.thumb\r\nX: y"),
            ("tok", "other.thumb"),
            ("", ".thumb"),
        ] {
            let err = v
                .validate(ChallengeType::Http01, &id, token, ka, Ports::default())
                .await
                .expect_err("malformed");
            assert_eq!(err.acme_type(), ErrorType::Malformed, "{err}");
        }
    }

    #[test]
    fn bad_config_is_refused() {
        let zero = ValidatorConfig {
            max_concurrent: 0,
            ..ValidatorConfig::default()
        };
        assert!(Validator::new(zero).is_err());
        let empty = ValidatorConfig {
            resolver: ResolverConfig::Nameservers(vec![]),
            ..ValidatorConfig::default()
        };
        assert!(Validator::new(empty).is_err());
    }
}

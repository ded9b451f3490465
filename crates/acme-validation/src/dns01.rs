//! dns-01 ([RFC 8555 §8.4](https://www.rfc-editor.org/rfc/rfc8555#section-8.4)): a TXT
//! record at `_acme-challenge.<name>` must hold base64url(SHA-256(key authorization)).

use crate::{Inner, ValidationError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use trustbox_proto_acme::Identifier;

/// The TXT value that proves `key_authorization` (RFC 8555 §8.4).
pub(crate) fn txt_value(key_authorization: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Runs dns-01 for `identifier` (a wildcard's `*.` is dropped).
pub(crate) async fn validate(
    inner: &Inner,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), ValidationError> {
    let Identifier::Dns(name) = identifier else {
        return Err(ValidationError::NotApplicable {
            challenge: "dns-01",
            identifier: crate::describe(identifier),
            reason: "an IP address has no DNS zone to prove",
        });
    };
    let base = name.strip_prefix("*.").unwrap_or(name);
    let record = format!("_acme-challenge.{base}");
    let records = inner.net.txt(&record).await?;
    if records.is_empty() {
        return Err(ValidationError::IncorrectResponse(format!(
            "no TXT record found at {record}"
        )));
    }
    let expected = txt_value(key_authorization);
    if records.iter().any(|r| r.as_slice() == expected.as_bytes()) {
        return Ok(());
    }
    let first = records
        .first()
        .map(|r| crate::error::excerpt(r))
        .unwrap_or_default();
    Err(ValidationError::IncorrectResponse(format!(
        "incorrect TXT record \"{first}\" found at {record} ({} in all); expected \"{expected}\"",
        records.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{validator, DnsZone, KEY_AUTH, TOKEN};
    use crate::{Ports, ResolverConfig, Validator};
    use std::net::SocketAddr;
    use trustbox_proto_acme::{ChallengeType, ErrorType};

    async fn dns01(v: &Validator, name: &str) -> Result<(), ValidationError> {
        let id = Identifier::Dns(name.to_owned());
        v.validate(ChallengeType::Dns01, &id, TOKEN, KEY_AUTH, Ports::default())
            .await
    }

    fn via(dns: SocketAddr) -> Validator {
        validator(ResolverConfig::Nameservers(vec![dns]))
    }

    #[test]
    fn txt_value_is_rfc8555_example_shape() {
        let v = txt_value(KEY_AUTH);
        assert_eq!(v.len(), 43);
        assert!(!v.contains('=') && !v.contains('+') && !v.contains('/'));
    }

    #[tokio::test]
    async fn dns01_correct_txt() {
        let good = txt_value(KEY_AUTH);
        // The value split across two character-strings, beside an unrelated record.
        let zone = DnsZone::default()
            .txt("_acme-challenge.acme.test", &["unrelated"])
            .txt("_acme-challenge.acme.test", &[&good[..20], &good[20..]]);
        let (dns, _server) = zone.serve().await;
        let v = via(dns);
        dns01(&v, "acme.test").await.expect("validates");
        dns01(&v, "*.acme.test")
            .await
            .expect("wildcard uses the base name");
    }

    #[tokio::test]
    async fn dns01_wrong_txt() {
        let zone = DnsZone::default().txt("_acme-challenge.acme.test", &["not-the-digest"]);
        let (dns, _server) = zone.serve().await;
        let err = dns01(&via(dns), "acme.test").await.expect_err("wrong TXT");
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse);
        assert!(!err.is_transient());
        assert!(err.to_string().contains("not-the-digest"), "{err}");
    }

    #[tokio::test]
    async fn dns01_no_txt_at_existing_name() {
        let zone = DnsZone::default().a("_acme-challenge.acme.test", std::net::Ipv4Addr::LOCALHOST);
        let (dns, _server) = zone.serve().await;
        let err = dns01(&via(dns), "acme.test").await.expect_err("no TXT");
        assert_eq!(err.acme_type(), ErrorType::IncorrectResponse, "{err}");
    }

    #[tokio::test]
    async fn dns01_nxdomain() {
        let (dns, _server) = DnsZone::default().serve().await;
        let err = dns01(&via(dns), "acme.test").await.expect_err("NXDOMAIN");
        assert_eq!(err.acme_type(), ErrorType::Dns);
        assert!(!err.is_transient());
        assert!(err.to_string().contains("NXDOMAIN"), "{err}");
    }

    #[tokio::test]
    async fn dns01_servfail_is_transient() {
        let zone = DnsZone::default().servfail("_acme-challenge.acme.test");
        let (dns, _server) = zone.serve().await;
        let err = dns01(&via(dns), "acme.test").await.expect_err("SERVFAIL");
        assert_eq!(err.acme_type(), ErrorType::Dns);
        assert!(err.is_transient(), "{err}");
    }
}

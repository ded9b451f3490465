//! The directory (RFC 8555 §7.1.1) and the JSON of the resources a server returns.

use crate::order::{AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, OrderStatus};
use serde_json::{json, Map, Value};

/// What the directory's `meta` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryMeta {
    /// `termsOfService` URL.
    pub terms_of_service: Option<String>,
    /// `website` URL.
    pub website: Option<String>,
    /// `caaIdentities`: the domains CAA records name for this CA.
    pub caa_identities: Vec<String>,
    /// `externalAccountRequired`.
    pub external_account_required: bool,
    /// `profiles` (the ACME profiles extension): name and a description.
    pub profiles: Vec<(String, String)>,
}

/// The directory of the ACME server whose URLs start with `base` (such as
/// `https://ca.example/acme/default`), with `renewalInfo` (RFC 9773).
pub fn directory(base: &str, meta: &DirectoryMeta) -> Value {
    let base = base.trim_end_matches('/');
    let mut m = Map::new();
    if let Some(t) = &meta.terms_of_service {
        m.insert("termsOfService".into(), json!(t));
    }
    if let Some(w) = &meta.website {
        m.insert("website".into(), json!(w));
    }
    if !meta.caa_identities.is_empty() {
        m.insert("caaIdentities".into(), json!(meta.caa_identities));
    }
    m.insert(
        "externalAccountRequired".into(),
        json!(meta.external_account_required),
    );
    if !meta.profiles.is_empty() {
        let profiles: Map<String, Value> = meta
            .profiles
            .iter()
            .map(|(name, about)| (name.clone(), json!(about)))
            .collect();
        m.insert("profiles".into(), Value::Object(profiles));
    }
    json!({
        "newNonce": format!("{base}/new-nonce"),
        "newAccount": format!("{base}/new-account"),
        "newOrder": format!("{base}/new-order"),
        "revokeCert": format!("{base}/revoke-cert"),
        "keyChange": format!("{base}/key-change"),
        "renewalInfo": format!("{base}/renewal-info"),
        "meta": Value::Object(m),
    })
}

/// An identifier as the wire carries it.
pub fn identifier_json(id: &Identifier) -> Value {
    match id {
        Identifier::Dns(d) => json!({"type": "dns", "value": d}),
        Identifier::Ip(ip) => json!({"type": "ip", "value": ip.to_string()}),
    }
}

/// An order (RFC 8555 §7.1.3); times are RFC 3339 strings.
#[allow(clippy::too_many_arguments)]
pub fn order_json(
    status: OrderStatus,
    expires: &str,
    identifiers: &[Identifier],
    authorizations: &[String],
    finalize: &str,
    certificate: Option<&str>,
    profile: Option<&str>,
    error: Option<&crate::AcmeError>,
) -> Value {
    let mut v = json!({
        "status": status.as_str(),
        "expires": expires,
        "identifiers": identifiers.iter().map(identifier_json).collect::<Vec<_>>(),
        "authorizations": authorizations,
        "finalize": finalize,
    });
    if let Some(c) = certificate {
        v["certificate"] = json!(c);
    }
    if let Some(p) = profile {
        v["profile"] = json!(p);
    }
    if let Some(e) = error {
        v["error"] = serde_json::from_slice(&e.to_json()).unwrap_or(Value::Null);
    }
    v
}

/// A challenge (RFC 8555 §8): its type, URL, token and status, and when it was validated.
pub fn challenge_json(
    kind: ChallengeType,
    url: &str,
    token: &str,
    status: ChallengeStatus,
    validated: Option<&str>,
) -> Value {
    let mut v =
        json!({"type": kind.as_str(), "url": url, "token": token, "status": status.as_str()});
    if let Some(t) = validated {
        v["validated"] = json!(t);
    }
    v
}

/// An authorization (RFC 8555 §7.1.4): a wildcard's identifier is shown without `*.` and
/// flagged `wildcard`.
pub fn authorization_json(
    identifier: &Identifier,
    status: AuthorizationStatus,
    expires: &str,
    challenges: Vec<Value>,
) -> Value {
    let mut shown = identifier_json(identifier);
    if let Identifier::Dns(d) = identifier {
        if let Some(bare) = d.strip_prefix("*.") {
            shown["value"] = json!(bare);
        }
    }
    let mut v = json!({
        "identifier": shown,
        "status": status.as_str(),
        "expires": expires,
        "challenges": challenges,
    });
    if identifier.is_wildcard() {
        v["wildcard"] = json!(true);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_names_every_resource_and_its_meta() {
        let d = directory(
            "https://ca.example/acme/default/",
            &DirectoryMeta {
                terms_of_service: Some("https://ca.example/tos".into()),
                external_account_required: true,
                profiles: vec![("shortlived".into(), "7 days".into())],
                ..DirectoryMeta::default()
            },
        );
        assert_eq!(d["newNonce"], "https://ca.example/acme/default/new-nonce");
        assert_eq!(
            d["renewalInfo"],
            "https://ca.example/acme/default/renewal-info"
        );
        assert_eq!(d["meta"]["termsOfService"], "https://ca.example/tos");
        assert_eq!(d["meta"]["externalAccountRequired"], true);
        assert_eq!(d["meta"]["profiles"]["shortlived"], "7 days");
        assert!(d["meta"].get("website").is_none());
    }

    #[test]
    fn a_wildcard_authorization_shows_the_base_name() {
        let id = Identifier::Dns("*.example.com".into());
        let ch = challenge_json(
            ChallengeType::Dns01,
            "https://ca.example/acme/default/chall/1",
            "tok",
            ChallengeStatus::Pending,
            None,
        );
        let a = authorization_json(
            &id,
            AuthorizationStatus::Pending,
            "2026-12-08T00:00:00Z",
            vec![ch],
        );
        assert_eq!(a["identifier"]["value"], "example.com");
        assert_eq!(a["wildcard"], true);
        assert_eq!(a["challenges"][0]["type"], "dns-01");
        let o = order_json(
            OrderStatus::Pending,
            "2026-12-08T00:00:00Z",
            &[id],
            &["https://ca.example/acme/default/authz/1".into()],
            "https://ca.example/acme/default/order/1/finalize",
            None,
            Some("shortlived"),
            None,
        );
        assert_eq!(o["identifiers"][0]["value"], "*.example.com");
        assert_eq!(o["status"], "pending");
        assert_eq!(o["profile"], "shortlived");
        assert!(o.get("certificate").is_none());
    }
}

//! Subject alternative names, parsed and validated at the edge.

use crate::X509Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// A syntactically valid DNS name (LDH labels, optionally a leading `*.` wildcard label),
/// lower-cased. [RFC 5280 §4.2.1.6](https://www.rfc-editor.org/rfc/rfc5280#section-4.2.1.6)
/// and [RFC 1034 §3.5](https://www.rfc-editor.org/rfc/rfc1034#section-3.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DnsName(String);

impl DnsName {
    /// Parses and lower-cases `s`.
    pub fn parse(s: &str) -> Result<Self, X509Error> {
        let bad = |why: &str| X509Error::BadSan(format!("DNS name {s:?}: {why}"));
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 {
            return Err(bad("length must be 1 to 253 characters"));
        }
        let labels: Vec<&str> = name.split('.').collect();
        for (i, label) in labels.iter().enumerate() {
            if *label == "*" && i == 0 && labels.len() > 1 {
                continue;
            }
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    "labels may hold only letters, digits, '-' and '_' (and one leading '*' label)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("labels may not start or end with '-'"));
            }
        }
        Ok(Self(name))
    }

    /// The name, lower-case, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is a wildcard (`*.example.com`).
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }
}

impl TryFrom<String> for DnsName {
    type Error = X509Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DnsName> for String {
    fn from(n: DnsName) -> Self {
        n.0
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One subject alternative name of a supported type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectAltName {
    /// dNSName
    Dns(DnsName),
    /// iPAddress
    Ip(IpAddr),
    /// uniformResourceIdentifier (absolute, with a scheme; SPIFFE IDs are URIs)
    Uri(String),
    /// rfc822Name (a mailbox `local@domain`)
    Email(String),
}

impl SubjectAltName {
    /// Validates a URI SAN: an absolute URI with a scheme and no whitespace.
    pub fn uri(s: &str) -> Result<Self, X509Error> {
        let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.as_bytes()[0].is_ascii_alphabetic()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
                && !rest.is_empty()
        });
        if !scheme_ok
            || !s.is_ascii()
            || s.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(X509Error::BadSan(format!(
                "URI {s:?} is not an absolute URI"
            )));
        }
        Ok(Self::Uri(s.to_owned()))
    }

    /// Validates an e-mail SAN: `local@domain` with a valid DNS domain.
    pub fn email(s: &str) -> Result<Self, X509Error> {
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(X509Error::BadSan(format!("e-mail {s:?} has no '@'")));
        };
        if local.is_empty()
            || !local.is_ascii()
            || local
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(X509Error::BadSan(format!(
                "e-mail {s:?} has an invalid local part"
            )));
        }
        let domain = DnsName::parse(domain)?;
        if domain.is_wildcard() {
            return Err(X509Error::BadSan(format!(
                "e-mail {s:?} has a wildcard domain"
            )));
        }
        Ok(Self::Email(format!("{local}@{domain}")))
    }

    /// The type name used in the API (`dns`, `ip`, `uri`, `email`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dns(_) => "dns",
            Self::Ip(_) => "ip",
            Self::Uri(_) => "uri",
            Self::Email(_) => "email",
        }
    }

    /// The value without its type.
    pub fn value(&self) -> String {
        match self {
            Self::Dns(d) => d.to_string(),
            Self::Ip(ip) => ip.to_string(),
            Self::Uri(u) | Self::Email(u) => u.clone(),
        }
    }
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert_eq!(
            DnsName::parse("WWW.Example.COM.").expect("ok").as_str(),
            "www.example.com"
        );
        assert!(DnsName::parse("*.example.com").expect("ok").is_wildcard());
        for bad in [
            "",
            "a..b",
            "-a.com",
            "a-.com",
            "exa mple.com",
            "*",
            "a.*.com",
            "x.*",
            &"a".repeat(64),
        ] {
            assert!(DnsName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn uris_and_emails() {
        assert!(SubjectAltName::uri("spiffe://example.org/ns/default/sa/web").is_ok());
        assert!(SubjectAltName::uri("no-scheme").is_err());
        assert!(SubjectAltName::uri("https://bad host").is_err());
        assert_eq!(
            SubjectAltName::email("ops@Example.com").expect("ok"),
            SubjectAltName::Email("ops@example.com".into())
        );
        assert!(SubjectAltName::email("nobody").is_err());
        assert!(SubjectAltName::email("a@*.example.com").is_err());
    }
}

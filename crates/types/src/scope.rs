//! Token scopes: what a principal may do.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One permission a token can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Everything within the token's tenant, including tenant creation when in `default`.
    #[serde(rename = "admin")]
    Admin,
    /// Request certificates.
    #[serde(rename = "certs:issue")]
    CertsIssue,
    /// Read the certificate inventory.
    #[serde(rename = "certs:read")]
    CertsRead,
    /// Revoke certificates.
    #[serde(rename = "certs:revoke")]
    CertsRevoke,
    /// Create and manage issuers and profiles.
    #[serde(rename = "ca:admin")]
    CaAdmin,
    /// Read and verify the audit chain.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Create, list and revoke tokens.
    #[serde(rename = "tokens:admin")]
    TokensAdmin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 7] = [
        Self::Admin,
        Self::CertsIssue,
        Self::CertsRead,
        Self::CertsRevoke,
        Self::CaAdmin,
        Self::AuditRead,
        Self::TokensAdmin,
    ];

    /// The scope's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::CertsIssue => "certs:issue",
            Self::CertsRead => "certs:read",
            Self::CertsRevoke => "certs:revoke",
            Self::CaAdmin => "ca:admin",
            Self::AuditRead => "audit:read",
            Self::TokensAdmin => "tokens:admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a known scope.
#[derive(Debug, thiserror::Error)]
#[error("unknown scope {0:?} (expected admin, certs:issue, certs:read, certs:revoke, ca:admin, audit:read or tokens:admin)")]
pub struct ParseScopeError(pub String);

impl FromStr for Scope {
    type Err = ParseScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ParseScopeError(s.to_owned()))
    }
}

/// A set of scopes, kept sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// A set holding `scopes`.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut v: Vec<Scope> = scopes.into_iter().collect();
        v.sort();
        v.dedup();
        Self(v)
    }

    /// Whether the set grants `scope`; `admin` grants all.
    pub fn allows(&self, scope: Scope) -> bool {
        self.0.contains(&Scope::Admin) || self.0.contains(&scope)
    }

    /// Whether every scope of `other` is granted by this set.
    pub fn covers(&self, other: &ScopeSet) -> bool {
        other.0.iter().all(|s| self.allows(*s))
    }

    /// The scopes, sorted.
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a comma-separated list (`certs:issue,certs:read`).
    pub fn parse_list(s: &str) -> Result<Self, ParseScopeError> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Scope::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_everything() {
        let s = ScopeSet::new([Scope::Admin]);
        assert!(Scope::ALL.iter().all(|x| s.allows(*x)));
        let r = ScopeSet::new([Scope::CertsRead]);
        assert!(r.allows(Scope::CertsRead));
        assert!(!r.allows(Scope::CertsIssue));
        assert!(s.covers(&r));
        assert!(!r.covers(&s));
    }

    #[test]
    fn parses_lists() {
        let s = ScopeSet::parse_list("certs:read, certs:issue,certs:read").expect("valid list");
        assert_eq!(s.as_slice(), &[Scope::CertsIssue, Scope::CertsRead]);
        assert_eq!(s.to_string(), "certs:issue,certs:read");
        assert!(ScopeSet::parse_list("certs:everything").is_err());
    }
}

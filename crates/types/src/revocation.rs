//! Revocation reasons, [RFC 5280 §5.3.1](https://www.rfc-editor.org/rfc/rfc5280#section-5.3.1).

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// CRLReason, with the RFC's names and codes. Code 7 is unused in the RFC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    #[serde(rename = "cACompromise")]
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// removeFromCRL (8)
    #[serde(rename = "removeFromCRL")]
    RemoveFromCrl,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    #[serde(rename = "aACompromise")]
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The RFC 5280 name (`keyCompromise`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The CRLReason enumerated value.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason for a CRLReason code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// The name is not an RFC 5280 revocation reason.
#[derive(Debug, thiserror::Error)]
#[error("unknown revocation reason {0:?} (expected an RFC 5280 name such as keyCompromise or superseded)")]
pub struct ParseRevocationReasonError(pub String);

impl FromStr for RevocationReason {
    type Err = ParseRevocationReasonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseRevocationReasonError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for r in RevocationReason::ALL {
            assert_eq!(r.as_str().parse::<RevocationReason>().ok(), Some(r));
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
            let json = serde_json::to_string(&r).expect("serializes");
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert_eq!(RevocationReason::from_code(7), None);
    }
}

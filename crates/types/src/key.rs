//! Key algorithms TrustBox can hold in custody and accept in CSRs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A key algorithm with its size or curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// RSA 2048 (accepted in CSRs; not offered for CA keys).
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA 3072 with PKCS#1 v1.5 SHA-256 signatures.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA 4096 with PKCS#1 v1.5 SHA-256 signatures.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    /// Ed25519.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyAlgorithm {
    /// Every algorithm, in display order.
    pub const ALL: [KeyAlgorithm; 6] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::Ed25519,
    ];

    /// The stable name used in configuration, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::Ed25519 => "ed25519",
        }
    }

    /// The RSA modulus size in bits, for RSA algorithms.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// Whether this algorithm may protect a CA key (RSA below 3072 may not).
    pub fn allowed_for_ca(self) -> bool {
        !matches!(self, Self::Rsa2048)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a known key algorithm.
#[derive(Debug, thiserror::Error)]
#[error("unknown key algorithm {0:?} (expected one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519)")]
pub struct ParseKeyAlgorithmError(pub String);

impl FromStr for KeyAlgorithm {
    type Err = ParseKeyAlgorithmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| ParseKeyAlgorithmError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<KeyAlgorithm>().ok(), Some(alg));
        }
        assert!("rsa-1024".parse::<KeyAlgorithm>().is_err());
    }
}

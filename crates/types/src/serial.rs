//! Certificate serial numbers and fingerprints.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A certificate serial number: a positive integer of at most 20 octets
/// ([RFC 5280 §4.1.2.2](https://www.rfc-editor.org/rfc/rfc5280#section-4.1.2.2)), stored as
/// its minimal big-endian bytes and shown as lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

/// The value is not a valid serial number.
#[derive(Debug, thiserror::Error)]
#[error("invalid serial number: {0}")]
pub struct ParseSerialError(&'static str);

impl Serial {
    /// A fresh random serial with 127 bits of entropy: 16 octets, top bit clear so it is
    /// positive, never zero.
    pub fn random() -> Self {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        loop {
            let mut b = [0u8; 16];
            if rng.fill(&mut b).is_err() {
                continue;
            }
            b[0] &= 0x7f;
            // Keep the full 16 octets: a leading zero octet would shrink the encoding and
            // the entropy, so retry instead.
            if b[0] != 0 {
                return Self(b.to_vec());
            }
        }
    }

    /// A serial from big-endian unsigned bytes (leading zero octets are dropped).
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, ParseSerialError> {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let trimmed = &bytes[start..];
        if trimmed.is_empty() {
            return Err(ParseSerialError("zero is not a valid serial"));
        }
        if trimmed.len() > 20 {
            return Err(ParseSerialError("longer than 20 octets"));
        }
        Ok(Self(trimmed.to_vec()))
    }

    /// The minimal big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex without separators, the form stored and shown.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Serial {
    type Err = ParseSerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cleaned: String = s.chars().filter(|c| *c != ':').collect();
        let padded = if cleaned.len() % 2 == 1 {
            format!("0{cleaned}")
        } else {
            cleaned
        };
        let bytes = hex::decode(padded).map_err(|_| ParseSerialError("not hexadecimal"))?;
        Self::from_be_bytes(&bytes)
    }
}

impl Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Serial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The SHA-256 fingerprint of a DER certificate, as lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of `der`.
    pub fn of_der(der: &[u8]) -> Self {
        Self(hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            der,
        )))
    }

    /// The fingerprint as stored (`hex`), trusted to come from [`Fingerprint::of_der`].
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// Lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_and_long() {
        for _ in 0..100 {
            let s = Serial::random();
            assert_eq!(s.as_bytes().len(), 16);
            assert!(s.as_bytes()[0] & 0x80 == 0 && s.as_bytes()[0] != 0);
        }
        assert_ne!(Serial::random(), Serial::random());
    }

    #[test]
    fn parses_hex_with_colons_and_drops_leading_zeros() {
        let s: Serial = "00:0a:ff".parse().expect("valid");
        assert_eq!(s.as_bytes(), &[0x0a, 0xff]);
        assert_eq!(s.to_string(), "0aff");
        assert!("00".parse::<Serial>().is_err());
        assert!("zz".parse::<Serial>().is_err());
        assert!("01".repeat(21).parse::<Serial>().is_err());
    }
}

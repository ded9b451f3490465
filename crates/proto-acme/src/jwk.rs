//! Account keys as JSON Web Keys ([RFC 7517](https://www.rfc-editor.org/rfc/rfc7517)),
//! their thumbprints ([RFC 7638](https://www.rfc-editor.org/rfc/rfc7638)) and key
//! authorizations (RFC 8555 §8.1).

use crate::error::{AcmeError, ErrorType};
use crate::{b64, unb64};
use ring::signature as sig;
use serde_json::Value;

/// The smallest RSA modulus accepted for an account key.
const MIN_RSA_BITS: usize = 2048;

/// An account public key: one of the kinds the supported algorithms verify with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jwk {
    /// `kty: EC`, `crv: P-256` (ES256).
    P256 {
        /// x coordinate, 32 bytes.
        x: Vec<u8>,
        /// y coordinate, 32 bytes.
        y: Vec<u8>,
    },
    /// `kty: EC`, `crv: P-384` (ES384).
    P384 {
        /// x coordinate, 48 bytes.
        x: Vec<u8>,
        /// y coordinate, 48 bytes.
        y: Vec<u8>,
    },
    /// `kty: RSA` (RS256).
    Rsa {
        /// Modulus, big-endian.
        n: Vec<u8>,
        /// Public exponent, big-endian.
        e: Vec<u8>,
    },
    /// `kty: OKP`, `crv: Ed25519` (EdDSA).
    Ed25519 {
        /// The public key, 32 bytes.
        x: Vec<u8>,
    },
}

fn member<'a>(v: &'a Value, name: &str) -> Result<&'a str, AcmeError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| AcmeError::malformed(format!("the JWK has no string member {name:?}")))
}

fn bad_key(detail: impl Into<String>) -> AcmeError {
    AcmeError::new(ErrorType::BadPublicKey, detail)
}

impl Jwk {
    /// Parses a JWK object; a key kind, curve or size the server does not accept is
    /// `badPublicKey`, a malformed member `malformed`. Private members are refused.
    pub fn from_json(v: &Value) -> Result<Self, AcmeError> {
        if !v.is_object() {
            return Err(AcmeError::malformed("the JWK is not a JSON object"));
        }
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| v.get(*m).is_some())
        {
            return Err(bad_key("the JWK carries private key material"));
        }
        let key = match (member(v, "kty")?, v.get("crv").and_then(Value::as_str)) {
            ("EC", Some(crv)) => {
                let x = unb64("JWK x", member(v, "x")?)?;
                let y = unb64("JWK y", member(v, "y")?)?;
                match (crv, x.len(), y.len()) {
                    ("P-256", 32, 32) => Self::P256 { x, y },
                    ("P-384", 48, 48) => Self::P384 { x, y },
                    ("P-256" | "P-384", _, _) => {
                        return Err(bad_key("the EC coordinates have the wrong length"))
                    }
                    (other, _, _) => {
                        return Err(bad_key(format!(
                            "curve {other:?} is not accepted (P-256, P-384)"
                        )))
                    }
                }
            }
            ("RSA", _) => {
                let n = unb64("JWK n", member(v, "n")?)?;
                let e = unb64("JWK e", member(v, "e")?)?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < MIN_RSA_BITS {
                    return Err(bad_key(format!(
                        "RSA keys of at least {MIN_RSA_BITS} bits are accepted"
                    )));
                }
                if e.is_empty() || e.len() > 4 {
                    return Err(bad_key("the RSA public exponent is out of range"));
                }
                Self::Rsa { n, e }
            }
            ("OKP", Some("Ed25519")) => {
                let x = unb64("JWK x", member(v, "x")?)?;
                if x.len() != 32 {
                    return Err(bad_key("an Ed25519 key is 32 bytes"));
                }
                Self::Ed25519 { x }
            }
            (kty, crv) => {
                return Err(bad_key(format!(
                    "key type {kty:?}{} is not accepted",
                    crv.map(|c| format!(" with curve {c:?}"))
                        .unwrap_or_default()
                )))
            }
        };
        Ok(key)
    }

    /// The JWK's required members, canonical: the JSON its thumbprint hashes.
    pub fn to_json(&self) -> String {
        // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
        match self {
            Self::P256 { x, y } => {
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                )
            }
            Self::P384 { x, y } => {
                format!(
                    r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                )
            }
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: the account key's stable identity.
    pub fn thumbprint(&self) -> String {
        b64(ring::digest::digest(&ring::digest::SHA256, self.to_json().as_bytes()).as_ref())
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::P256 { .. } => "ES256",
            Self::P384 { .. } => "ES384",
            Self::Rsa { .. } => "RS256",
            Self::Ed25519 { .. } => "EdDSA",
        }
    }

    /// Checks `signature` over `message` made with this key under `alg`; `alg` must be the
    /// key's own algorithm.
    pub fn verify(&self, alg: &str, message: &[u8], signature: &[u8]) -> Result<(), AcmeError> {
        if alg != self.algorithm() {
            return Err(AcmeError::malformed(format!(
                "a {} key signs with {}, not {alg}",
                self.kind(),
                self.algorithm()
            )));
        }
        let point = |x: &[u8], y: &[u8]| {
            let mut p = Vec::with_capacity(1 + x.len() + y.len());
            p.push(0x04);
            p.extend_from_slice(x);
            p.extend_from_slice(y);
            p
        };
        let ok = match self {
            Self::P256 { x, y } => {
                sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point(x, y))
                    .verify(message, signature)
                    .is_ok()
            }
            Self::P384 { x, y } => {
                sig::UnparsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point(x, y))
                    .verify(message, signature)
                    .is_ok()
            }
            Self::Rsa { n, e } => sig::RsaPublicKeyComponents { n, e }
                .verify(&sig::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            Self::Ed25519 { x } => sig::UnparsedPublicKey::new(&sig::ED25519, x)
                .verify(message, signature)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(AcmeError::malformed("the JWS signature does not verify"))
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::P256 { .. } => "P-256",
            Self::P384 { .. } => "P-384",
            Self::Rsa { .. } => "RSA",
            Self::Ed25519 { .. } => "Ed25519",
        }
    }
}

/// The key authorization of a challenge `token` for `key` (RFC 8555 §8.1): what http-01
/// serves and what dns-01 and tls-alpn-01 hash.
pub fn key_authorization(token: &str, key: &Jwk) -> String {
    format!("{token}.{}", key.thumbprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_hash_the_canonical_members() {
        // RFC 7638 §3.1's example key and its published thumbprint.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs",
                "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5",
                "hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
            ),
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = Jwk::from_json(&jwk).expect("parses");
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(
            key_authorization("tok", &key),
            "tok.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn unacceptable_keys_are_bad_public_keys() {
        let bad = |v: Value| Jwk::from_json(&v).expect_err("refused").kind;
        assert_eq!(
            bad(serde_json::json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"})),
            ErrorType::BadPublicKey
        );
        assert_eq!(
            bad(serde_json::json!({"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"})),
            ErrorType::BadPublicKey,
            "1024-bit RSA"
        );
        assert_eq!(
            bad(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"})),
            ErrorType::BadPublicKey
        );
        assert_eq!(
            bad(serde_json::json!({"kty": "EC", "crv": "P-256", "x": "not base64!", "y": "AA"})),
            ErrorType::Malformed
        );
        assert_eq!(
            bad(
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[1; 32]), "d": "AA"})
            ),
            ErrorType::BadPublicKey,
            "private members"
        );
    }
}

//! Anti-replay nonces (RFC 8555 §6.5) that any replica can check without shared memory and
//! that survive a restart: a nonce is a time, random bits and an HMAC under a key every
//! replica holds. Checking one proves the server minted it and that it is fresh; using it
//! only once is the store's part (it records the [`NonceId`] of each nonce consumed until
//! the nonce would have expired anyway).

use crate::error::{AcmeError, ErrorType};
use crate::{b64, unb64};
use ring::hmac;

/// Format version, the first byte.
const VERSION: u8 = 1;
/// version (1) + issued at (8) + random (16) + HMAC-SHA256 tag (32).
const LEN: usize = 1 + 8 + 16 + 32;

/// Mints and checks nonces under one HMAC key.
pub struct NonceMinter {
    key: hmac::Key,
    max_age_s: i64,
}

impl std::fmt::Debug for NonceMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceMinter")
            .field("max_age_s", &self.max_age_s)
            .finish_non_exhaustive()
    }
}

/// What identifies a checked nonce for single use: its expiry and random part, and when it
/// stops being accepted anyway (so the record of it can be dropped then).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NonceId {
    /// The nonce's expiry as 12 hex digits, then its random part, hex: ids of nonces
    /// issued together sort together, so recording them as used appends to the end of the
    /// store's index instead of touching a random page of it per nonce.
    pub id: String,
    /// Unix seconds after which the nonce is refused whether used or not.
    pub expires_at: i64,
}

impl NonceMinter {
    /// A minter over `secret` (at least 32 bytes, the same on every replica), accepting
    /// nonces for `max_age_s` seconds.
    pub fn new(secret: &[u8], max_age_s: i64) -> Result<Self, AcmeError> {
        if secret.len() < 32 {
            return Err(AcmeError::new(
                ErrorType::ServerInternal,
                "the nonce secret is shorter than 32 bytes",
            ));
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            max_age_s: max_age_s.max(1),
        })
    }

    /// A new nonce, minted at `now` (Unix seconds) with 16 bytes of `random`.
    pub fn mint(&self, now: i64, random: [u8; 16]) -> String {
        let mut raw = Vec::with_capacity(LEN);
        raw.push(VERSION);
        raw.extend_from_slice(&now.to_be_bytes());
        raw.extend_from_slice(&random);
        let tag = hmac::sign(&self.key, &raw);
        raw.extend_from_slice(tag.as_ref());
        b64(&raw)
    }

    /// Checks that `nonce` was minted here and is not older than the maximum age at `now`;
    /// anything else is `badNonce` (the client then retries with the fresh nonce the error
    /// response carries).
    pub fn check(&self, nonce: &str, now: i64) -> Result<NonceId, AcmeError> {
        let bad = |why: &str| AcmeError::new(ErrorType::BadNonce, why.to_owned());
        let raw =
            unb64("nonce", nonce).map_err(|_| bad("the nonce is not one this server issued"))?;
        if raw.len() != LEN || raw[0] != VERSION {
            return Err(bad("the nonce is not one this server issued"));
        }
        let (body, tag) = raw.split_at(LEN - 32);
        if hmac::verify(&self.key, body, tag).is_err() {
            return Err(bad("the nonce is not one this server issued"));
        }
        let mut at = [0u8; 8];
        at.copy_from_slice(&body[1..9]);
        let issued = i64::from_be_bytes(at);
        if issued > now + 60 {
            return Err(bad("the nonce was issued in the future"));
        }
        if now - issued > self.max_age_s {
            return Err(bad("the nonce has expired"));
        }
        let expires_at = issued + self.max_age_s;
        let mut id = format!("{:012x}", expires_at.max(0));
        for b in &body[9..25] {
            id.push_str(&format!("{b:02x}"));
        }
        Ok(NonceId { id, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_checks_on_any_replica_with_the_key_until_it_expires() {
        let secret = [7u8; 32];
        let a = NonceMinter::new(&secret, 3600).expect("minter");
        let b = NonceMinter::new(&secret, 3600).expect("another replica");
        let n = a.mint(1_000, [1; 16]);
        let id = b.check(&n, 1_500).expect("valid elsewhere");
        assert_eq!(id.expires_at, 4_600);
        assert_eq!(id.id, format!("{:012x}{}", 4_600, "01".repeat(16)));
        assert_ne!(a.mint(1_000, [2; 16]), n, "random parts differ");
        let expired = b.check(&n, 4_601).expect_err("expired");
        assert_eq!(expired.kind, ErrorType::BadNonce);
    }

    #[test]
    fn forged_altered_and_foreign_nonces_are_bad() {
        let a = NonceMinter::new(&[7u8; 32], 3600).expect("minter");
        let other = NonceMinter::new(&[8u8; 32], 3600).expect("another server");
        let n = a.mint(1_000, [1; 16]);
        assert_eq!(
            other.check(&n, 1_000).expect_err("foreign").kind,
            ErrorType::BadNonce
        );
        let mut raw = unb64("n", &n).expect("b64");
        raw[5] ^= 1; // move the issue time
        assert_eq!(
            a.check(&b64(&raw), 1_000).expect_err("altered").kind,
            ErrorType::BadNonce
        );
        for junk in ["", "AAAA", "not base64!", &"A".repeat(100)] {
            assert_eq!(
                a.check(junk, 1_000).expect_err("junk").kind,
                ErrorType::BadNonce
            );
        }
        assert!(
            NonceMinter::new(&[1u8; 16], 60).is_err(),
            "short secrets are refused"
        );
    }
}

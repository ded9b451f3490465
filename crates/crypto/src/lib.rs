//! The custody boundary: the only place CA private keys exist in plaintext.
//!
//! Callers hold a [`Signer`] (sign a message, read the public key) obtained from a
//! [`KeyStore`]; they never see key bytes. The default store, [`SealedKeyStore`], keeps each
//! key as PKCS#8 sealed with AES-256-GCM under a key-encryption key file (mode 0600); the
//! plaintext is zeroized as soon as it has been loaded into the signing implementation.
//!
//! This crate must never log, serialize or put into an error any private key material.

mod der;
mod kek;
mod pool;
mod routing;
mod sealed;

pub use kek::Kek;
pub use pool::SigningPool;
pub use routing::RoutingKeyStore;
pub use sealed::{generate_subscriber_key, GeneratedKey, SealedKeyStore, SOFTWARE};

use std::fmt;
use std::sync::Arc;
use trustbox_types::KeyAlgorithm;

/// Errors at the custody boundary. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key-encryption key file could not be read or created.
    #[error("key-encryption key {path}: {reason}")]
    Kek {
        /// The KEK file's path.
        path: String,
        /// What went wrong, without secret data.
        reason: String,
    },
    /// A sealed key could not be opened (wrong KEK, corrupted blob, or wrong algorithm).
    #[error("sealed key could not be opened: {0}")]
    Unseal(&'static str),
    /// Key generation failed.
    #[error("key generation failed for {0}")]
    Generate(KeyAlgorithm),
    /// The key record names a backend this store does not serve.
    #[error("key backend {0:?} is not served by this key store")]
    Backend(String),
    /// Signing failed.
    #[error("signing failed")]
    Sign,
    /// No configured key backend has this name.
    #[error("no key backend is named {0:?}")]
    UnknownBackend(String),
}

/// A handle to a private key in custody: it can sign and show its public key, nothing more.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The key's algorithm.
    fn algorithm(&self) -> KeyAlgorithm;
    /// The DER SubjectPublicKeyInfo.
    fn public_key_spki(&self) -> &[u8];
    /// The subjectPublicKey bits of the SPKI (the raw public key).
    fn public_key_raw(&self) -> &[u8];
    /// Signs `message` with the key's signature scheme: ECDSA (DER-encoded, SHA-256 for
    /// P-256, SHA-384 for P-384), RSA PKCS#1 v1.5 with SHA-256, or Ed25519.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Whether [`Signer::sign`] may block its thread (an HSM round trip, a remote signer).
    /// Such keys sign on the [`SigningPool`]'s threads, never on an async worker.
    fn may_block(&self) -> bool {
        false
    }
}

/// What a key store hands back for the caller to persist: enough to reopen the key later,
/// and useless without the store's own secret (the KEK, an HSM login).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The backend that can open this record (`sealed-v1`).
    pub backend: String,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The backend's reference to the key: a sealed blob, or an HSM object label.
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("backend", &self.backend)
            .field("algorithm", &self.algorithm)
            .field("wrapped", &format_args!("<{} bytes>", self.wrapped.len()))
            .finish()
    }
}

/// What a key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// A CA's signing key (root or intermediate).
    Ca,
    /// A delegated OCSP responder's key.
    OcspResponder,
    /// A tenant's audit-checkpoint key.
    Audit,
}

impl KeyRole {
    /// The stable name bound into sealed keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::OcspResponder => "ocsp-responder",
            Self::Audit => "audit",
        }
    }
}

/// Who a key belongs to: its row's id, its tenant and its role. A sealed key is bound to its
/// owner, so a blob copied into another row (another CA, another tenant, another role) does
/// not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOwner {
    /// The role of the key.
    pub role: KeyRole,
    /// The owning tenant's id.
    pub tenant: String,
    /// The owning row's id (issuer, responder or audit key).
    pub id: String,
}

impl KeyOwner {
    /// The owner `id` of `tenant` in `role`.
    pub fn new(role: KeyRole, tenant: impl fmt::Display, id: impl fmt::Display) -> Self {
        Self {
            role,
            tenant: tenant.to_string(),
            id: id.to_string(),
        }
    }
}

/// A custodian of CA keys.
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// Generates a new key of `algorithm` for `owner`, returning the record to persist and a
    /// signer.
    fn generate(
        &self,
        algorithm: KeyAlgorithm,
        owner: &KeyOwner,
    ) -> Result<(KeyRecord, Arc<dyn Signer>), CryptoError>;
    /// Opens a key generated for `owner`; a record of another owner does not open.
    fn open(&self, record: &KeyRecord, owner: &KeyOwner) -> Result<Arc<dyn Signer>, CryptoError>;
    /// Re-seals a record of an older format for `owner`; `None` when it is current already.
    fn reseal(
        &self,
        record: &KeyRecord,
        owner: &KeyOwner,
    ) -> Result<Option<KeyRecord>, CryptoError>;
    /// The name issuers are configured with for this store's backend (`software`).
    fn backend_name(&self) -> &str;
    /// Whether this store opens records whose `backend` is `record_backend`.
    fn opens(&self, record_backend: &str) -> bool;
    /// The backends keys can be generated on, by name.
    fn backends(&self) -> Vec<String> {
        vec![self.backend_name().to_owned()]
    }
    /// The name of the backend that opens records of `record_backend`, if any.
    fn backend_of(&self, record_backend: &str) -> Option<String> {
        self.opens(record_backend)
            .then(|| self.backend_name().to_owned())
    }
    /// Generates a key on the backend named `backend`.
    fn generate_on(
        &self,
        backend: &str,
        algorithm: KeyAlgorithm,
        owner: &KeyOwner,
    ) -> Result<(KeyRecord, Arc<dyn Signer>), CryptoError> {
        if backend == self.backend_name() {
            self.generate(algorithm, owner)
        } else {
            Err(CryptoError::UnknownBackend(backend.to_owned()))
        }
    }
}

/// Verifies `signature` over `message` by the public key `spki` (DER SubjectPublicKeyInfo)
/// of `algorithm`, as [`Signer::sign`] makes them. For checking audit checkpoints anywhere,
/// without custody. ECDSA and Ed25519 keys only; anything else is `false`.
pub fn verify_with_spki(
    algorithm: KeyAlgorithm,
    spki: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    use ring::signature as sig;
    let (scheme, raw_len): (&dyn sig::VerificationAlgorithm, usize) = match algorithm {
        KeyAlgorithm::EcdsaP256 => (&sig::ECDSA_P256_SHA256_ASN1, 65),
        KeyAlgorithm::EcdsaP384 => (&sig::ECDSA_P384_SHA384_ASN1, 97),
        KeyAlgorithm::Ed25519 => (&sig::ED25519, 32),
        _ => return false,
    };
    let Some(raw) = spki.len().checked_sub(raw_len).map(|at| &spki[at..]) else {
        return false;
    };
    // the SPKI must be exactly the one of this raw key and algorithm
    if der::spki(algorithm, raw) != spki {
        return false;
    }
    sig::UnparsedPublicKey::new(scheme, raw)
        .verify(message, signature)
        .is_ok()
}

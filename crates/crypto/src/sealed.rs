//! Sealed software keys: PKCS#8 encrypted with AES-256-GCM under the KEK.
//!
//! Blob layout: `b"TBK2" || nonce (12) || ciphertext || tag (16)`. The associated data binds
//! the key's algorithm and its owner (role, tenant, row id), so a blob cannot be reopened as
//! another algorithm nor by another row. Blobs of the first format (`TBK1`, bound to the
//! algorithm only) are opened only to be re-sealed ([`KeyStore::reseal`]).

use crate::der::spki;
use crate::{CryptoError, Kek, KeyOwner, KeyRecord, KeyStore, Signer};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use std::sync::Arc;
use trustbox_types::KeyAlgorithm;
use zeroize::Zeroizing;

const MAGIC_V1: &[u8; 4] = b"TBK1";
const MAGIC: &[u8; 4] = b"TBK2";
const BACKEND_V1: &str = "sealed-v1";
const BACKEND: &str = "sealed-v2";
/// The backend's configured name: keys in memory, sealed at rest under the KEK.
pub const SOFTWARE: &str = "software";

/// The default key store: keys sealed under a KEK, opened into memory for signing.
pub struct SealedKeyStore {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SealedKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedKeyStore")
    }
}

impl SealedKeyStore {
    /// A store sealing under `kek`.
    pub fn new(kek: &Kek) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, kek.0.as_ref())
            .map_err(|_| CryptoError::Unseal("invalid key-encryption key"))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    fn aad_v1(alg: KeyAlgorithm) -> Vec<u8> {
        format!("trustbox-sealed-key:{}", alg.as_str()).into_bytes()
    }

    /// Length-prefixed fields, so no two owners serialize alike.
    fn aad(alg: KeyAlgorithm, owner: &KeyOwner) -> Vec<u8> {
        let mut out = b"trustbox-sealed-key-v2".to_vec();
        for field in [alg.as_str(), owner.role.as_str(), &owner.tenant, &owner.id] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    fn seal(
        &self,
        alg: KeyAlgorithm,
        owner: &KeyOwner,
        pkcs8: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Generate(alg))?;
        let mut buf = Zeroizing::new(pkcs8.to_vec());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(alg, owner)),
                buf.as_mut_slice(),
            )
            .map_err(|_| CryptoError::Generate(alg))?;
        let mut out = Vec::with_capacity(4 + NONCE_LEN + buf.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn unseal(
        &self,
        magic: &[u8; 4],
        aad: Vec<u8>,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < 4 + NONCE_LEN + 16 || &blob[..4] != magic {
            return Err(CryptoError::Unseal("not a sealed key blob"));
        }
        let nonce = Nonce::try_assume_unique_for_key(&blob[4..4 + NONCE_LEN])
            .map_err(|_| CryptoError::Unseal("bad nonce"))?;
        let mut buf = Zeroizing::new(blob[4 + NONCE_LEN..].to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| {
                CryptoError::Unseal(
                    "authentication failed (wrong KEK, another owner's key, or tampered blob)",
                )
            })?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    fn generate_pkcs8(&self, alg: KeyAlgorithm) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        generate_pkcs8(&self.rng, alg)
    }
}

/// A subscriber key the server generated because the protocol demands it (EST
/// serverkeygen, the SPIFFE Workload API). It is handed to the caller once and never stored.
pub struct GeneratedKey {
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// The private key, PKCS#8 DER (wiped when dropped).
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// The DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// The raw subjectPublicKey bits.
    pub raw: Vec<u8>,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Generates a subscriber key of `alg` (RSA takes seconds: call it off the async workers).
pub fn generate_subscriber_key(alg: KeyAlgorithm) -> Result<GeneratedKey, CryptoError> {
    let pkcs8 = generate_pkcs8(&SystemRandom::new(), alg)?;
    let signer = SoftwareSigner::from_pkcs8(alg, &pkcs8)?;
    Ok(GeneratedKey {
        algorithm: alg,
        spki: signer.public_key_spki().to_vec(),
        raw: signer.public_key_raw().to_vec(),
        pkcs8,
    })
}

fn generate_pkcs8(
    rng: &SystemRandom,
    alg: KeyAlgorithm,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let fail = |_| CryptoError::Generate(alg);
    let doc = match alg {
        KeyAlgorithm::EcdsaP256 => Zeroizing::new(
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        ),
        KeyAlgorithm::EcdsaP384 => Zeroizing::new(
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        ),
        KeyAlgorithm::Ed25519 => Zeroizing::new(
            Ed25519KeyPair::generate_pkcs8(rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        ),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            use rsa::pkcs8::EncodePrivateKey;
            let bits = alg.rsa_bits().ok_or(CryptoError::Generate(alg))?;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                .map_err(|_| CryptoError::Generate(alg))?;
            let doc = key.to_pkcs8_der().map_err(|_| CryptoError::Generate(alg))?;
            Zeroizing::new(doc.as_bytes().to_vec())
        }
    };
    Ok(doc)
}

impl KeyStore for SealedKeyStore {
    fn generate(
        &self,
        algorithm: KeyAlgorithm,
        owner: &KeyOwner,
    ) -> Result<(KeyRecord, Arc<dyn Signer>), CryptoError> {
        let pkcs8 = self.generate_pkcs8(algorithm)?;
        let signer = SoftwareSigner::from_pkcs8(algorithm, &pkcs8)?;
        let record = KeyRecord {
            backend: BACKEND.to_owned(),
            algorithm,
            wrapped: self.seal(algorithm, owner, &pkcs8)?,
        };
        Ok((record, Arc::new(signer)))
    }

    fn open(&self, record: &KeyRecord, owner: &KeyOwner) -> Result<Arc<dyn Signer>, CryptoError> {
        if record.backend != BACKEND {
            return Err(CryptoError::Backend(record.backend.clone()));
        }
        let pkcs8 = self.unseal(MAGIC, Self::aad(record.algorithm, owner), &record.wrapped)?;
        Ok(Arc::new(SoftwareSigner::from_pkcs8(
            record.algorithm,
            &pkcs8,
        )?))
    }

    fn reseal(
        &self,
        record: &KeyRecord,
        owner: &KeyOwner,
    ) -> Result<Option<KeyRecord>, CryptoError> {
        match record.backend.as_str() {
            BACKEND => Ok(None),
            BACKEND_V1 => {
                let pkcs8 =
                    self.unseal(MAGIC_V1, Self::aad_v1(record.algorithm), &record.wrapped)?;
                // Loading proves the key is usable before its old blob is replaced.
                SoftwareSigner::from_pkcs8(record.algorithm, &pkcs8)?;
                Ok(Some(KeyRecord {
                    backend: BACKEND.to_owned(),
                    algorithm: record.algorithm,
                    wrapped: self.seal(record.algorithm, owner, &pkcs8)?,
                }))
            }
            other => Err(CryptoError::Backend(other.to_owned())),
        }
    }

    fn backend_name(&self) -> &str {
        SOFTWARE
    }

    fn opens(&self, record_backend: &str) -> bool {
        matches!(record_backend, BACKEND | BACKEND_V1)
    }
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A key held in process memory by `ring` (which never exposes the private bytes).
struct SoftwareSigner {
    alg: KeyAlgorithm,
    inner: Inner,
    raw: Vec<u8>,
    spki: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SoftwareSigner {
    fn from_pkcs8(alg: KeyAlgorithm, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let bad = |_| CryptoError::Unseal("key does not match its recorded algorithm");
        let inner = match alg {
            KeyAlgorithm::EcdsaP256 => Inner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
                    .map_err(bad)?,
            ),
            KeyAlgorithm::EcdsaP384 => Inner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8, &rng)
                    .map_err(bad)?,
            ),
            KeyAlgorithm::Ed25519 => {
                Inner::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(bad)?)
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let kp = RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?;
                if Some(kp.public().modulus_len() * 8) != alg.rsa_bits() {
                    return Err(CryptoError::Unseal(
                        "RSA key size does not match its record",
                    ));
                }
                Inner::Rsa(kp)
            }
        };
        let raw = match &inner {
            Inner::Ecdsa(k) => k.public_key().as_ref().to_vec(),
            Inner::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Inner::Rsa(k) => k.public_key().as_ref().to_vec(),
        };
        let spki = spki(alg, &raw);
        Ok(Self {
            alg,
            inner,
            raw,
            spki,
            rng,
        })
    }
}

impl Signer for SoftwareSigner {
    fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    fn public_key_spki(&self) -> &[u8] {
        &self.spki
    }

    fn public_key_raw(&self) -> &[u8] {
        &self.raw
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.inner {
            Inner::Ecdsa(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Sign),
            Inner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Inner::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| CryptoError::Sign)?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SealedKeyStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = Kek::load_or_create(&dir.path().join("kek")).expect("kek");
        let store = SealedKeyStore::new(&kek).expect("store");
        (dir, store)
    }

    fn owner() -> KeyOwner {
        KeyOwner::new(crate::KeyRole::Ca, "tenant-a", "issuer-1")
    }

    #[test]
    fn a_blob_moved_to_another_owner_does_not_open() {
        let (_d, store) = store();
        let (record, _) = store
            .generate(KeyAlgorithm::EcdsaP256, &owner())
            .expect("generate");
        for other in [
            KeyOwner::new(crate::KeyRole::Ca, "tenant-a", "issuer-2"),
            KeyOwner::new(crate::KeyRole::Ca, "tenant-b", "issuer-1"),
            KeyOwner::new(crate::KeyRole::OcspResponder, "tenant-a", "issuer-1"),
            KeyOwner::new(crate::KeyRole::Audit, "tenant-a", "issuer-1"),
        ] {
            let e = store.open(&record, &other).expect_err("moved blob");
            assert!(matches!(e, CryptoError::Unseal(_)), "{other:?}: {e}");
        }
        store
            .open(&record, &owner())
            .expect("its own owner opens it");
    }

    #[test]
    fn first_format_blobs_are_resealed_for_their_owner_and_then_bound() {
        let (_d, store) = store();
        let pkcs8 = store.generate_pkcs8(KeyAlgorithm::EcdsaP256).expect("key");
        // a blob as the first format wrote it: bound to the algorithm only
        let mut nonce = [0u8; NONCE_LEN];
        store.rng.fill(&mut nonce).expect("rng");
        let mut buf = pkcs8.to_vec();
        let tag = store
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(SealedKeyStore::aad_v1(KeyAlgorithm::EcdsaP256)),
                buf.as_mut_slice(),
            )
            .expect("seal");
        let wrapped = [MAGIC_V1.as_slice(), &nonce, &buf, tag.as_ref()].concat();
        let v1 = KeyRecord {
            backend: BACKEND_V1.into(),
            algorithm: KeyAlgorithm::EcdsaP256,
            wrapped,
        };
        assert!(store.open(&v1, &owner()).is_err(), "v1 is not used as is");
        let v2 = store
            .reseal(&v1, &owner())
            .expect("reseal")
            .expect("changed");
        assert_eq!(v2.backend, BACKEND);
        let signer = store.open(&v2, &owner()).expect("opens for its owner");
        assert_eq!(signer.public_key_raw().len(), 65);
        assert!(store.reseal(&v2, &owner()).expect("reseal").is_none());
        let other = KeyOwner::new(crate::KeyRole::Ca, "tenant-b", "issuer-1");
        assert!(store.open(&v2, &other).is_err());
    }

    fn verify(alg: KeyAlgorithm, raw: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let v: &dyn signature::VerificationAlgorithm = match alg {
            KeyAlgorithm::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
            KeyAlgorithm::Ed25519 => &signature::ED25519,
            _ => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(v, raw)
            .verify(msg, sig)
            .is_ok()
    }

    #[test]
    fn every_ca_algorithm_seals_reopens_and_signs() {
        let (_d, store) = store();
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::Rsa3072,
        ] {
            let (record, signer) = store.generate(alg, &owner()).expect("generate");
            assert_eq!(&record.wrapped[..4], MAGIC);
            let reopened = store.open(&record, &owner()).expect("open");
            assert_eq!(signer.public_key_spki(), reopened.public_key_spki());
            let sig = reopened.sign(b"hello").expect("sign");
            assert!(
                verify(alg, signer.public_key_raw(), b"hello", &sig),
                "{alg}"
            );
            assert!(
                !verify(alg, signer.public_key_raw(), b"other", &sig),
                "{alg}"
            );
        }
    }

    #[test]
    fn tampered_blob_wrong_algorithm_and_wrong_kek_are_refused() {
        let (_d, store) = store();
        let (record, _) = store
            .generate(KeyAlgorithm::EcdsaP256, &owner())
            .expect("generate");
        let mut tampered = record.clone();
        let last = tampered.wrapped.len() - 1;
        tampered.wrapped[last] ^= 1;
        assert!(store.open(&tampered, &owner()).is_err());
        let mut relabeled = record.clone();
        relabeled.algorithm = KeyAlgorithm::EcdsaP384;
        assert!(store.open(&relabeled, &owner()).is_err());
        let (_d2, other) = self::store();
        let e = other
            .open(&record, &owner())
            .expect_err("another KEK must not open it");
        assert!(!format!("{e:?}").is_empty());
    }

    #[test]
    fn spki_matches_what_ring_expects() {
        let (_d, store) = store();
        let (_, signer) = store
            .generate(KeyAlgorithm::EcdsaP256, &owner())
            .expect("generate");
        let spki = signer.public_key_spki();
        assert_eq!(spki[0], 0x30);
        assert!(spki.ends_with(signer.public_key_raw()));
        assert_eq!(signer.public_key_raw().len(), 65);
    }
}

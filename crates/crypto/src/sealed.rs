//! Sealed software keys: PKCS#8 encrypted with AES-256-GCM under the KEK.
//!
//! Blob layout: `b"TBK1" || nonce (12) || ciphertext || tag (16)`, with the key algorithm's
//! name bound as associated data so a blob cannot be reopened as another algorithm.

use crate::der::spki;
use crate::{CryptoError, Kek, KeyRecord, KeyStore, Signer};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use std::sync::Arc;
use trustbox_types::KeyAlgorithm;
use zeroize::Zeroizing;

const MAGIC: &[u8; 4] = b"TBK1";
const BACKEND: &str = "sealed-v1";

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

    fn aad(alg: KeyAlgorithm) -> Vec<u8> {
        format!("trustbox-sealed-key:{}", alg.as_str()).into_bytes()
    }

    fn seal(&self, alg: KeyAlgorithm, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Generate(alg))?;
        let mut buf = Zeroizing::new(pkcs8.to_vec());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(alg)),
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

    fn unseal(&self, alg: KeyAlgorithm, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < 4 + NONCE_LEN + 16 || &blob[..4] != MAGIC {
            return Err(CryptoError::Unseal("not a sealed key blob"));
        }
        let nonce = Nonce::try_assume_unique_for_key(&blob[4..4 + NONCE_LEN])
            .map_err(|_| CryptoError::Unseal("bad nonce"))?;
        let mut buf = Zeroizing::new(blob[4 + NONCE_LEN..].to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(alg)), buf.as_mut_slice())
            .map_err(|_| CryptoError::Unseal("authentication failed (wrong KEK or tampered blob)"))?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    fn generate_pkcs8(&self, alg: KeyAlgorithm) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let fail = |_| CryptoError::Generate(alg);
        let doc = match alg {
            KeyAlgorithm::EcdsaP256 => Zeroizing::new(
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &self.rng)
                    .map_err(fail)?
                    .as_ref()
                    .to_vec(),
            ),
            KeyAlgorithm::EcdsaP384 => Zeroizing::new(
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &self.rng)
                    .map_err(fail)?
                    .as_ref()
                    .to_vec(),
            ),
            KeyAlgorithm::Ed25519 => Zeroizing::new(
                Ed25519KeyPair::generate_pkcs8(&self.rng)
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
}

impl KeyStore for SealedKeyStore {
    fn generate(
        &self,
        algorithm: KeyAlgorithm,
    ) -> Result<(KeyRecord, Arc<dyn Signer>), CryptoError> {
        let pkcs8 = self.generate_pkcs8(algorithm)?;
        let signer = SoftwareSigner::from_pkcs8(algorithm, &pkcs8)?;
        let record = KeyRecord {
            backend: BACKEND.to_owned(),
            algorithm,
            wrapped: self.seal(algorithm, &pkcs8)?,
        };
        Ok((record, Arc::new(signer)))
    }

    fn open(&self, record: &KeyRecord) -> Result<Arc<dyn Signer>, CryptoError> {
        if record.backend != BACKEND {
            return Err(CryptoError::Backend(record.backend.clone()));
        }
        let pkcs8 = self.unseal(record.algorithm, &record.wrapped)?;
        Ok(Arc::new(SoftwareSigner::from_pkcs8(
            record.algorithm,
            &pkcs8,
        )?))
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
            let (record, signer) = store.generate(alg).expect("generate");
            assert_eq!(&record.wrapped[..4], MAGIC);
            let reopened = store.open(&record).expect("open");
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
        let (record, _) = store.generate(KeyAlgorithm::EcdsaP256).expect("generate");
        let mut tampered = record.clone();
        let last = tampered.wrapped.len() - 1;
        tampered.wrapped[last] ^= 1;
        assert!(store.open(&tampered).is_err());
        let mut relabeled = record.clone();
        relabeled.algorithm = KeyAlgorithm::EcdsaP384;
        assert!(store.open(&relabeled).is_err());
        let (_d2, other) = self::store();
        let e = other
            .open(&record)
            .expect_err("another KEK must not open it");
        assert!(!format!("{e:?}").is_empty());
    }

    #[test]
    fn spki_matches_what_ring_expects() {
        let (_d, store) = store();
        let (_, signer) = store.generate(KeyAlgorithm::EcdsaP256).expect("generate");
        let spki = signer.public_key_spki();
        assert_eq!(spki[0], 0x30);
        assert!(spki.ends_with(signer.public_key_raw()));
        assert_eq!(signer.public_key_raw().len(), 65);
    }
}

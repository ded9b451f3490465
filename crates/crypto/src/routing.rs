//! The key store the seam holds: it routes each key to the backend that holds it.
//!
//! Every stored key record names its format (`sealed-v2`); the routing store opens it on the
//! backend that [`KeyStore::opens`] that format, and generates new keys on the backend an
//! issuer is configured for ([`KeyStore::generate_on`]), or on the default one. Only the
//! software backend exists today; a PKCS#11 or remote backend is one more [`KeyStore`] in
//! the list, with no change to the seam.

use crate::{CryptoError, KeyOwner, KeyRecord, KeyStore, Signer};
use std::sync::Arc;
use trustbox_types::KeyAlgorithm;

/// Backends by name, one of them the default for new keys.
#[derive(Debug)]
pub struct RoutingKeyStore {
    backends: Vec<Arc<dyn KeyStore>>,
    default: usize,
}

impl RoutingKeyStore {
    /// Routes over `backends`, generating on the one named `default` unless told otherwise.
    /// Fails when `default` is not among them or two share a name.
    pub fn new(default: &str, backends: Vec<Arc<dyn KeyStore>>) -> Result<Self, CryptoError> {
        for (i, b) in backends.iter().enumerate() {
            if backends[..i]
                .iter()
                .any(|o| o.backend_name() == b.backend_name())
            {
                return Err(CryptoError::Backend(format!(
                    "two key backends are named {:?}",
                    b.backend_name()
                )));
            }
        }
        let default = backends
            .iter()
            .position(|b| b.backend_name() == default)
            .ok_or_else(|| CryptoError::UnknownBackend(default.to_owned()))?;
        Ok(Self { backends, default })
    }

    fn named(&self, name: &str) -> Result<&Arc<dyn KeyStore>, CryptoError> {
        self.backends
            .iter()
            .find(|b| b.backend_name() == name)
            .ok_or_else(|| CryptoError::UnknownBackend(name.to_owned()))
    }

    fn holding(&self, record: &KeyRecord) -> Result<&Arc<dyn KeyStore>, CryptoError> {
        self.backends
            .iter()
            .find(|b| b.opens(&record.backend))
            .ok_or_else(|| CryptoError::Backend(record.backend.clone()))
    }
}

impl KeyStore for RoutingKeyStore {
    fn generate(
        &self,
        algorithm: KeyAlgorithm,
        owner: &KeyOwner,
    ) -> Result<(KeyRecord, Arc<dyn Signer>), CryptoError> {
        self.backends[self.default].generate(algorithm, owner)
    }

    fn open(&self, record: &KeyRecord, owner: &KeyOwner) -> Result<Arc<dyn Signer>, CryptoError> {
        self.holding(record)?.open(record, owner)
    }

    fn reseal(
        &self,
        record: &KeyRecord,
        owner: &KeyOwner,
    ) -> Result<Option<KeyRecord>, CryptoError> {
        self.holding(record)?.reseal(record, owner)
    }

    fn backend_name(&self) -> &str {
        self.backends[self.default].backend_name()
    }

    fn opens(&self, record_backend: &str) -> bool {
        self.backends.iter().any(|b| b.opens(record_backend))
    }

    fn backends(&self) -> Vec<String> {
        self.backends
            .iter()
            .map(|b| b.backend_name().to_owned())
            .collect()
    }

    fn backend_of(&self, record_backend: &str) -> Option<String> {
        self.backends
            .iter()
            .find(|b| b.opens(record_backend))
            .map(|b| b.backend_name().to_owned())
    }

    fn generate_on(
        &self,
        backend: &str,
        algorithm: KeyAlgorithm,
        owner: &KeyOwner,
    ) -> Result<(KeyRecord, Arc<dyn Signer>), CryptoError> {
        self.named(backend)?.generate(algorithm, owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kek, KeyRole, SealedKeyStore};

    /// A second backend for routing: a sealed store under another KEK, claiming its own
    /// record format.
    #[derive(Debug)]
    struct Other(SealedKeyStore);

    impl KeyStore for Other {
        fn generate(
            &self,
            algorithm: KeyAlgorithm,
            owner: &KeyOwner,
        ) -> Result<(KeyRecord, Arc<dyn Signer>), CryptoError> {
            let (mut rec, signer) = self.0.generate(algorithm, owner)?;
            rec.backend = "other-v1".into();
            Ok((rec, signer))
        }
        fn open(
            &self,
            record: &KeyRecord,
            owner: &KeyOwner,
        ) -> Result<Arc<dyn Signer>, CryptoError> {
            let mut rec = record.clone();
            rec.backend = "sealed-v2".into();
            self.0.open(&rec, owner)
        }
        fn reseal(&self, _: &KeyRecord, _: &KeyOwner) -> Result<Option<KeyRecord>, CryptoError> {
            Ok(None)
        }
        fn backend_name(&self) -> &str {
            "other"
        }
        fn opens(&self, record_backend: &str) -> bool {
            record_backend == "other-v1"
        }
    }

    fn sealed(byte: &str) -> SealedKeyStore {
        SealedKeyStore::new(&Kek::from_hex(&byte.repeat(32), "test").expect("kek")).expect("store")
    }

    #[test]
    fn keys_are_generated_where_asked_and_opened_where_they_live() {
        let routing = RoutingKeyStore::new(
            "software",
            vec![Arc::new(sealed("11")), Arc::new(Other(sealed("22")))],
        )
        .expect("routing");
        assert_eq!(routing.backends(), ["software", "other"]);
        let owner = KeyOwner::new(KeyRole::Ca, "t", "k");
        let (soft, _) = routing
            .generate(KeyAlgorithm::EcdsaP256, &owner)
            .expect("default");
        assert_eq!(soft.backend, "sealed-v2");
        let (other, s) = routing
            .generate_on("other", KeyAlgorithm::EcdsaP256, &owner)
            .expect("other");
        assert_eq!(other.backend, "other-v1");
        assert_eq!(routing.backend_of("other-v1").as_deref(), Some("other"));
        assert_eq!(routing.backend_of("sealed-v2").as_deref(), Some("software"));
        let opened = routing.open(&other, &owner).expect("opens on its backend");
        assert_eq!(opened.public_key_spki(), s.public_key_spki());
        routing.open(&soft, &owner).expect("software opens");
        assert!(matches!(
            routing.generate_on("pkcs11", KeyAlgorithm::EcdsaP256, &owner),
            Err(CryptoError::UnknownBackend(n)) if n == "pkcs11"
        ));
        let mut unknown = soft.clone();
        unknown.backend = "pkcs11-v1".into();
        assert!(matches!(
            routing.open(&unknown, &owner),
            Err(CryptoError::Backend(_))
        ));
    }

    #[test]
    fn a_bad_configuration_is_refused() {
        assert!(matches!(
            RoutingKeyStore::new("pkcs11", vec![Arc::new(sealed("11"))]),
            Err(CryptoError::UnknownBackend(_))
        ));
        assert!(RoutingKeyStore::new(
            "software",
            vec![Arc::new(sealed("11")), Arc::new(sealed("22"))]
        )
        .is_err());
    }
}

//! Where signatures are computed, so that no async worker ever waits on a key.
//!
//! A key that signs in memory (the sealed software store) signs on the caller's task: a
//! P-256 signature costs tens of microseconds of CPU, less than a thread hop. A key whose
//! signing waits ([`Signer::may_block`]: an HSM round trip, an out-of-process signer) signs
//! on a bounded pool of blocking threads; callers beyond the bound wait asynchronously for a
//! permit. The seam signs only through [`SigningPool::sign`], so such a backend can be added
//! without touching it.

use crate::{CryptoError, Signer};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The bounded pool keys that may block sign on.
#[derive(Debug)]
pub struct SigningPool {
    permits: Arc<Semaphore>,
    threads: usize,
}

impl SigningPool {
    /// A pool running at most `threads` blocking signatures at once (at least one).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            threads,
        }
    }

    /// Most blocking signatures running at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Signs `message` with `signer`: inline when the key signs in memory, else on the pool.
    /// Must be called within a Tokio runtime.
    pub async fn sign(
        &self,
        signer: &Arc<dyn Signer>,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if !signer.may_block() {
            return signer.sign(message);
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CryptoError::Sign)?;
        let signer = signer.clone();
        let message = message.to_vec();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            signer.sign(&message)
        })
        .await
        .map_err(|_| CryptoError::Sign)?
    }
}

impl Default for SigningPool {
    /// As many blocking signatures at once as the machine has cores, at least four.
    fn default() -> Self {
        Self::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .max(4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::sync::Mutex;
    use std::time::Duration;
    use trustbox_types::KeyAlgorithm;

    /// A key whose signature waits until the test releases it (like an HSM round trip), and
    /// counts how many signatures run at once.
    #[derive(Debug)]
    struct Waiting {
        started: tokio::sync::mpsc::UnboundedSender<()>,
        release: Mutex<mpsc::Receiver<()>>,
        running: AtomicUsize,
        most: AtomicUsize,
    }

    impl Signer for Waiting {
        fn algorithm(&self) -> KeyAlgorithm {
            KeyAlgorithm::EcdsaP256
        }
        fn public_key_spki(&self) -> &[u8] {
            &[]
        }
        fn public_key_raw(&self) -> &[u8] {
            &[]
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            self.started.send(()).map_err(|_| CryptoError::Sign)?;
            // Released by the async side: if this ran on the runtime's only thread, the
            // release could never be sent and the wait would time out.
            let got = self
                .release
                .lock()
                .map_err(|_| CryptoError::Sign)?
                .recv_timeout(Duration::from_secs(5));
            self.running.fetch_sub(1, Ordering::SeqCst);
            got.map_err(|_| CryptoError::Sign)?;
            Ok(message.to_vec())
        }
        fn may_block(&self) -> bool {
            true
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocking_key_signs_off_the_runtime_within_the_bound() {
        let (tx, rx) = mpsc::channel();
        let (started, mut is_started) = tokio::sync::mpsc::unbounded_channel();
        let key = Arc::new(Waiting {
            started,
            release: Mutex::new(rx),
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        });
        let signer: Arc<dyn Signer> = key.clone();
        let pool = Arc::new(SigningPool::new(1));
        let jobs: Vec<_> = (0..3u8)
            .map(|i| {
                let (pool, signer) = (pool.clone(), signer.clone());
                tokio::spawn(async move { pool.sign(&signer, &[i]).await })
            })
            .collect();
        // The runtime's only thread stays free while the key waits, so it hears that a
        // signature started and releases it; signing inline would block it until timeout.
        for _ in 0..3 {
            is_started.recv().await.expect("a signature started");
            tx.send(()).expect("release");
        }
        for (i, j) in jobs.into_iter().enumerate() {
            assert_eq!(j.await.expect("task").expect("signed"), vec![i as u8]);
        }
        assert_eq!(key.most.load(Ordering::SeqCst), 1, "the bound holds");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_in_memory_key_signs_inline() {
        let store = crate::SealedKeyStore::new(
            &crate::Kek::from_hex(&"11".repeat(32), "test").expect("kek"),
        )
        .expect("store");
        let owner = crate::KeyOwner::new(crate::KeyRole::Ca, "t", "k");
        let (_, signer) =
            crate::KeyStore::generate(&store, KeyAlgorithm::EcdsaP256, &owner).expect("key");
        assert!(!signer.may_block());
        let sig = SigningPool::new(1)
            .sign(&signer, b"tbs")
            .await
            .expect("sign");
        assert!(crate::verify_with_spki(
            KeyAlgorithm::EcdsaP256,
            signer.public_key_spki(),
            b"tbs",
            &sig
        ));
    }
}

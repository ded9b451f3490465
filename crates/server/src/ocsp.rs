//! The OCSP adapter ([RFC 6960](https://www.rfc-editor.org/rfc/rfc6960)): requests parsed
//! and answers signed by `trustbox_proto_ocsp`, statuses and responder keys obtained from
//! the seam's narrow interface for it, `OcspSource` (`ocsp_responder_for`, `serial_status`,
//! `subscribe_invalidations`, `caches_trusted`); it holds no other service.
//!
//! A request for one certificate without a nonce is a lookup and a copy once its answer is
//! cached; the answer is re-signed at half its validity and dropped as soon as the seam
//! announces a revocation (on any replica), a responder rotation or OCSP switched off.
//! Answers about serials never issued are signed per request and never cached, so a flood
//! of random serials cannot evict the real answers. Requests with a nonce, or for several
//! certificates, are signed fresh.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use trustbox_authority::{Invalidation, OcspSigning, OcspSource, ResponderLookup, SerialStatus};
use trustbox_proto_ocsp::{
    error_response, parse_request, sign_response, CertRef, CertStatus, ErrorStatus, HashAlgorithm,
    IssuerKeyHashes, Responder, SingleAnswer,
};
use trustbox_types::{IssuerId, Serial};

/// A pre-signed answer and when to sign it again.
#[derive(Debug, Clone)]
struct Cached {
    der: Bytes,
    refresh_at: i64,
}

type CacheKey = (IssuerId, Serial, u8);

/// The wire-side responder of one issuer, built once per responder certificate.
struct Active {
    signing: Arc<OcspSigning>,
    responder: Responder,
    hashes: IssuerKeyHashes,
}

/// The OCSP responder service.
pub(crate) struct OcspService {
    source: OcspSource,
    responses: RwLock<HashMap<CacheKey, Cached>>,
    responders: RwLock<HashMap<IssuerId, Arc<Active>>>,
    max_entries: usize,
}

fn hash_code(h: HashAlgorithm) -> u8 {
    match h {
        HashAlgorithm::Sha1 => 1,
        HashAlgorithm::Sha256 => 2,
        HashAlgorithm::Sha384 => 3,
        HashAlgorithm::Sha512 => 4,
    }
}

/// The cache key of a request for one certificate, when its serial is encoded canonically
/// (what every real client sends); other encodings are answered but not cached.
fn cache_key(issuer: IssuerId, cert: &CertRef) -> Option<CacheKey> {
    let serial = cert.serial()?;
    let bytes = serial.as_bytes();
    let canonical = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        cert.serial_der.len() == bytes.len() + 1
            && cert.serial_der[0] == 0
            && cert.serial_der[1..] == *bytes
    } else {
        cert.serial_der == bytes
    };
    canonical.then(|| (issuer, serial, hash_code(cert.hash)))
}

fn status_name(s: ErrorStatus) -> &'static str {
    match s {
        ErrorStatus::MalformedRequest => "malformed",
        ErrorStatus::InternalError => "internal",
        ErrorStatus::TryLater => "try_later",
        ErrorStatus::SigRequired => "sig_required",
        ErrorStatus::Unauthorized => "unauthorized",
    }
}

impl OcspService {
    /// The service over `source`, with its invalidation listener running. Must be called
    /// within a Tokio runtime.
    pub(crate) fn start(source: OcspSource) -> Arc<Self> {
        let service = Arc::new(Self {
            max_entries: source.config().ocsp_cache_entries.max(1),
            source,
            responses: RwLock::default(),
            responders: RwLock::default(),
        });
        let mut rx = service.source.subscribe_invalidations();
        let weak = Arc::downgrade(&service);
        tokio::spawn(async move {
            loop {
                let event = rx.recv().await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                match event {
                    Ok(Invalidation::Certificate { issuer, serial }) => {
                        let mut cache =
                            service.responses.write().unwrap_or_else(|e| e.into_inner());
                        for h in 1..=4 {
                            cache.remove(&(issuer, serial.clone(), h));
                        }
                    }
                    Ok(Invalidation::Issuer(issuer)) => service.forget_issuer(issuer),
                    // fell behind: whatever it missed, nothing cached may be trusted
                    Err(RecvError::Lagged(_)) => service
                        .responses
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        service
    }

    fn forget_issuer(&self, issuer: IssuerId) {
        self.responses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _, _), _| *i != issuer);
        self.responders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&issuer);
    }

    /// Answers an OCSP request (DER) for `issuer`'s responder. Always an OCSPResponse:
    /// `malformedRequest` for bad input, `unauthorized` for an issuer this responder does not
    /// serve (unknown, OCSP disabled, or CertIDs naming another CA), `tryLater` while no
    /// responder certificate exists yet, `internalError` when the store fails.
    pub(crate) async fn respond(&self, issuer: IssuerId, request: &[u8]) -> Bytes {
        let started = Instant::now();
        let (status, body) = match self.answer(issuer, request).await {
            Ok((kind, der)) => (kind, der),
            Err(status) => (status_name(status), Bytes::from(error_response(status))),
        };
        metrics::counter!("trustbox_ocsp_responses_total", "status" => status).increment(1);
        metrics::histogram!("trustbox_ocsp_seconds").record(started.elapsed().as_secs_f64());
        body
    }

    /// The responder of `issuer`, rebuilt when the seam hands out a new certificate.
    async fn active(&self, issuer: IssuerId) -> Result<Arc<Active>, ErrorStatus> {
        let signing = match self.source.ocsp_responder_for(issuer).await {
            Ok(ResponderLookup::Ready(s)) => s,
            Ok(ResponderLookup::NotServed) => return Err(ErrorStatus::Unauthorized),
            Ok(ResponderLookup::Starting) => return Err(ErrorStatus::TryLater),
            Err(e) => {
                tracing::warn!(error = %e, "OCSP responder unavailable");
                return Err(ErrorStatus::InternalError);
            }
        };
        if let Some(a) = self
            .responders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&issuer)
        {
            if a.signing.id == signing.id {
                return Ok(a.clone());
            }
        }
        let responder = Responder::new(
            signing.certificate_der.clone(),
            signing.signer.clone(),
            vec![signing.issuer_der.clone()],
        )
        .map_err(|e| {
            tracing::warn!(error = %e, "OCSP responder certificate unusable");
            ErrorStatus::InternalError
        })?;
        let active = Arc::new(Active {
            hashes: IssuerKeyHashes::new(&signing.issuer_subject_raw, &signing.issuer_key_raw),
            responder,
            signing,
        });
        self.responders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issuer, active.clone());
        Ok(active)
    }

    /// The answer and whether it came from the cache (`cached`) or was signed (`signed`).
    pub(crate) async fn answer(
        &self,
        issuer: IssuerId,
        request: &[u8],
    ) -> Result<(&'static str, Bytes), ErrorStatus> {
        let req = parse_request(request).map_err(|e| e.status())?;
        let active = self.active(issuer).await?;
        if !req.certs.iter().all(|c| active.hashes.matches(c)) {
            return Err(ErrorStatus::Unauthorized);
        }
        let now = self.source.now_s();
        let key = match (&req.nonce, req.certs.as_slice()) {
            (None, [only]) => cache_key(issuer, only),
            _ => None,
        };
        if let Some(key) = &key {
            if let Some(c) = self
                .responses
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
            {
                if now < c.refresh_at && self.source.caches_trusted() {
                    return Ok(("cached", c.der.clone()));
                }
            }
        }
        let validity = self.source.config().ocsp_validity_s.max(60);
        let next_update = (now + validity).min(active.signing.not_after);
        let mut answers = Vec::with_capacity(req.certs.len());
        for cert in &req.certs {
            let status = match cert.serial() {
                None => CertStatus::Unknown,
                Some(serial) => match self
                    .source
                    .serial_status(active.signing.tenant, issuer, &serial)
                    .await
                {
                    Ok(SerialStatus::Good) => CertStatus::Good,
                    Ok(SerialStatus::Revoked { at, reason }) => CertStatus::Revoked { at, reason },
                    Ok(SerialStatus::Unknown) => CertStatus::Unknown,
                    Err(e) => {
                        tracing::warn!(error = %e, "OCSP status lookup failed");
                        return Err(ErrorStatus::InternalError);
                    }
                },
            };
            answers.push(SingleAnswer {
                cert,
                status,
                this_update: now,
                next_update,
            });
        }
        let der =
            sign_response(&active.responder, &answers, now, req.nonce.as_deref()).map_err(|e| {
                tracing::warn!(error = %e, "OCSP response could not be signed");
                e.status()
            })?;
        let der = Bytes::from(der);
        // Only answers about real certificates are cached: a flood of random serials is
        // signed (and rate-limited) but never evicts the cached good and revoked answers.
        let known = answers
            .iter()
            .all(|a| !matches!(a.status, CertStatus::Unknown));
        if let Some(key) = key.filter(|_| known) {
            let mut cache = self.responses.write().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= self.max_entries {
                // Bounded memory: drop a tenth of the entries (arbitrary ones).
                let drop: Vec<CacheKey> =
                    cache.keys().take(cache.len() / 10 + 1).cloned().collect();
                for k in drop {
                    cache.remove(&k);
                }
            }
            cache.insert(
                key,
                Cached {
                    der: der.clone(),
                    refresh_at: now + (next_update - now) / 2,
                },
            );
        }
        Ok(("signed", der))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::TestStore;
    use trustbox_authority::{
        AuthorityConfig, BootstrapOptions, Certificate, IssuanceRequest, Services,
    };
    use trustbox_crypto::{Kek, SealedKeyStore};
    use trustbox_types::{Principal, SourceProtocol, SystemClock};

    struct Env {
        dir: tempfile::TempDir,
        /// The store under `services`, for a second replica over it.
        store: TestStore,
        services: Services,
        admin: Principal,
        issuer: IssuerId,
        name_hash: Vec<u8>,
        key_hash: Vec<u8>,
    }

    async fn env(config: AuthorityConfig) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TestStore::open(&dir.path().join("db")).await;
        let keys = SealedKeyStore::new(&Kek::load_or_create(&dir.path().join("kek")).expect("kek"))
            .expect("keys");
        let services = store.services(Arc::new(keys), Arc::new(SystemClock), config);
        let boot = services
            .administration
            .bootstrap(&BootstrapOptions::default())
            .await
            .expect("bootstrap");
        let admin = services
            .authentication
            .authenticate(&boot.admin_token.expect("token"))
            .await
            .expect("auth");
        services
            .administration
            .ensure_ocsp_responders()
            .await
            .expect("responders");
        let issuer = services
            .administration
            .list_issuers(&admin)
            .await
            .expect("issuers")
            .into_iter()
            .find(|i| !i.is_root)
            .expect("issuing CA")
            .id;
        let ResponderLookup::Ready(signing) = services
            .ocsp
            .ocsp_responder_for(issuer)
            .await
            .expect("lookup")
        else {
            panic!("the responder is ready");
        };
        let sha1 = |b: &[u8]| {
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
                .as_ref()
                .to_vec()
        };
        Env {
            name_hash: sha1(&signing.issuer_subject_raw),
            key_hash: sha1(&signing.issuer_key_raw),
            dir,
            store,
            services,
            admin,
            issuer,
        }
    }

    fn csr(name: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.serialize_request(&key).expect("csr").der().to_vec()
    }

    async fn issue(env: &Env, name: &str) -> Certificate {
        env.services
            .issuance
            .issue(IssuanceRequest {
                validity: Some(std::time::Duration::from_secs(30 * 86400)),
                ..IssuanceRequest::for_csr(env.admin.clone(), csr(name), SourceProtocol::Api)
            })
            .await
            .and_then(trustbox_authority::IssuanceOutcome::into_issued)
            .expect("issue")
            .certificate
    }

    /// DER TLV (definite length).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            out.extend([0x81, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// An OCSPRequest (SHA-1 CertID, no nonce) for `serial` of the test issuer.
    fn request(env: &Env, serial: &[u8]) -> Vec<u8> {
        let sha1 = [
            0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
        ];
        let mut s = serial.to_vec();
        if s.first().is_some_and(|b| b & 0x80 != 0) {
            s.insert(0, 0);
        }
        let cert_id = tlv(
            0x30,
            &[
                sha1.to_vec(),
                tlv(0x04, &env.name_hash),
                tlv(0x04, &env.key_hash),
                tlv(0x02, &s),
            ]
            .concat(),
        );
        tlv(0x30, &tlv(0x30, &tlv(0x30, &tlv(0x30, &cert_id))))
    }

    #[tokio::test]
    async fn cached_answers_survive_a_flood_of_random_serials() {
        let env = env(AuthorityConfig {
            ocsp_cache_entries: 64,
            ..AuthorityConfig::default()
        })
        .await;
        let ocsp = OcspService::start(env.services.ocsp.clone());
        let mut real = Vec::new();
        for n in 0..20 {
            let rec = issue(&env, &format!("o{n}.example.com")).await;
            let der = request(&env, rec.serial.as_bytes());
            assert_eq!(
                ocsp.answer(env.issuer, &der).await.expect("answer").0,
                "signed"
            );
            real.push(der);
        }
        env.services
            .administration
            .poll_changes()
            .await
            .expect("poll");
        for der in &real {
            assert_eq!(
                ocsp.answer(env.issuer, der).await.expect("answer").0,
                "cached"
            );
        }
        for n in 0u64..10_000 {
            let serial = (0x4000_0000_0000_0000u64 | n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 2)
                .to_be_bytes();
            let (kind, _) = ocsp
                .answer(env.issuer, &request(&env, &serial))
                .await
                .expect("answer");
            assert_eq!(kind, "signed", "unknown serials are answered, never cached");
        }
        // (no change poller runs here: poll once so the caches are trusted again)
        env.services
            .administration
            .poll_changes()
            .await
            .expect("poll");
        for der in &real {
            assert_eq!(
                ocsp.answer(env.issuer, der).await.expect("answer").0,
                "cached",
                "the cached answers of real certificates survive the flood"
            );
        }
    }

    /// A replica whose clock runs two hours ahead still drops its cached `good` when another
    /// replica revokes: the change feed is read by sequence number, not by time.
    #[tokio::test]
    async fn a_replica_with_a_skewed_clock_still_learns_revocations() {
        let env = env(AuthorityConfig::default()).await;
        let keys =
            SealedKeyStore::new(&Kek::load_or_create(&env.dir.path().join("kek")).expect("kek"))
                .expect("keys");
        let ahead = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
        let b = env.store.services(
            Arc::new(keys),
            Arc::new(trustbox_types::ManualClock::new(ahead)),
            AuthorityConfig::default(),
        );
        let b_ocsp = OcspService::start(b.ocsp.clone());
        let rec = issue(&env, "skew.example.com").await;
        let der = request(&env, rec.serial.as_bytes());
        b.administration.poll_changes().await.expect("first poll");
        let (_, good) = b_ocsp.answer(env.issuer, &der).await.expect("answer");
        assert_eq!(
            b_ocsp.answer(env.issuer, &der).await.expect("answer").0,
            "cached"
        );
        env.services
            .revocation
            .revoke(
                &env.admin,
                rec.id,
                trustbox_types::RevocationReason::KeyCompromise,
                None,
            )
            .await
            .expect("revoke");
        assert_eq!(
            b.administration.poll_changes().await.expect("poll"),
            1,
            "one change read"
        );
        // the invalidation reaches the adapter's listener task
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let (kind, now) = b_ocsp.answer(env.issuer, &der).await.expect("answer");
            if kind == "signed" {
                assert_ne!(now, good);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cached good was never dropped"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

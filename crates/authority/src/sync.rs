//! Cache coherence across replicas: the change feed.
//!
//! Every revocation (certificate, intermediate, token) and issuer change is appended, in the
//! same transaction, to a feed numbered in commit order. Each replica polls the feed by
//! sequence number (never by wall clock, so a skewed clock changes nothing) and drops what
//! it has cached. Caches fail closed: a replica whose last successful poll started more
//! than [`CACHE_TRUST`] ago stops answering from its caches (tokens, issuers, OCSP answers
//! and responders are read from the store again) until a poll succeeds. So a revocation
//! made anywhere stops being ignored everywhere within `CACHE_TRUST` plus one poll, even
//! when a replica cannot reach the store.

use crate::error::AuthorityError;
use crate::Authority;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use trustbox_store::ChangeRecord;
use trustbox_types::{IssuerId, Serial, TokenId};

/// How long after the start of its last successful poll a replica trusts its caches.
pub const CACHE_TRUST: Duration = Duration::from_secs(3);
/// How often the feed is polled.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Most changes read per round trip.
const PAGE: u32 = 1000;

/// The feed position of this replica.
#[derive(Debug)]
pub(crate) struct SyncState {
    /// The newest change applied; `None` before the first poll.
    seen: Mutex<Option<i64>>,
    /// The instant all other times are measured from.
    epoch: Instant,
    /// When the last successful poll started, nanoseconds after `epoch` (read on every cache
    /// hit, so an atomic rather than a lock).
    last_ok: AtomicU64,
}

impl Default for SyncState {
    fn default() -> Self {
        Self {
            seen: Mutex::new(None),
            epoch: Instant::now(),
            // caches start empty, so there is nothing stale to distrust yet
            last_ok: AtomicU64::new(0),
        }
    }
}

impl SyncState {
    fn mark_ok(&self, started: Instant) {
        let at = started.saturating_duration_since(self.epoch).as_nanos();
        self.last_ok
            .fetch_max(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Authority {
    /// Whether cached tokens, issuers and OCSP answers may be used: the change feed was read
    /// successfully less than [`CACHE_TRUST`] ago.
    pub(crate) fn caches_trusted(&self) -> bool {
        let last_ok = Duration::from_nanos(self.sync.last_ok.load(Ordering::Relaxed));
        self.sync.epoch.elapsed().saturating_sub(last_ok) < CACHE_TRUST
    }

    /// Reads the change feed from where this replica left off and drops every cached item it
    /// names. Returns how many changes were applied.
    pub(crate) async fn poll_changes(&self) -> Result<usize, AuthorityError> {
        let started = Instant::now();
        let seen = *self.sync.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut applied = 0;
        let mut at = match seen {
            Some(s) => s,
            // first poll: what happened before this replica started is not in its caches
            None => self.store.latest_change().await?,
        };
        loop {
            let page = self.store.changes_since(at, PAGE).await?;
            for change in &page {
                self.apply_change(change);
                at = change.seq;
                applied += 1;
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        *self.sync.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
        self.sync.mark_ok(started);
        Ok(applied)
    }

    fn apply_change(&self, change: &ChangeRecord) {
        let tenant = change.tenant;
        match change.kind.as_str() {
            "certificate" => {
                if let Some((issuer, serial)) = change.reference.split_once(':') {
                    if let (Ok(issuer), Ok(serial)) =
                        (issuer.parse::<IssuerId>(), serial.parse::<Serial>())
                    {
                        self.forget_ocsp_responses(issuer, &serial);
                    }
                }
                // it may be an intermediate's certificate: reload the tenant's issuers
                self.forget_tenant_issuers(tenant);
            }
            "token" => {
                if let Ok(id) = change.reference.parse::<TokenId>() {
                    self.auth_cache
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .retain(|_, (p, _, _)| p.actor.token() != Some(id));
                }
            }
            "issuer" => {
                if let Ok(id) = change.reference.parse::<IssuerId>() {
                    self.forget_issuer(tenant, id);
                    self.forget_public_issuer(id);
                    self.forget_ocsp_responder(id);
                }
            }
            other => tracing::warn!(kind = other, "unknown change kind in the feed"),
        }
    }

    /// Polls the change feed until `stop` turns true.
    pub(crate) async fn run_change_poller(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.poll_changes().await {
                tracing::warn!(error = %e, "change feed poll failed; caches distrusted after {CACHE_TRUST:?}");
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

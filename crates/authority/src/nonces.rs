//! Single-use ACME nonces, group-committed: one writer task records every nonce that
//! arrived while the last transaction ran in one transaction per tenant, so a burst of
//! requests costs one commit (one fsync on SQLite) instead of one each. Every caller still
//! waits until its nonce is durably recorded before its request goes on.

use crate::error::{AuthorityError, ErrorKind};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use trustbox_store::{Store, StoreError};
use trustbox_types::{Clock, TenantId};

type Reply = oneshot::Sender<Result<bool, StoreError>>;
type Item = (TenantId, String, i64, Reply);

/// Most nonces per transaction.
const MAX_BATCH: usize = 512;
/// Most nonces waiting; beyond it requests are shed (`Unavailable`).
const QUEUE: usize = 8192;

/// Handle to the nonce writer task.
#[derive(Clone, Debug)]
pub(crate) struct NonceBatcher {
    tx: mpsc::Sender<Item>,
}

impl NonceBatcher {
    /// Starts the writer task (within a Tokio runtime).
    pub(crate) fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, clock, rx));
        Self { tx }
    }

    /// Records nonce `id` of `tenant` (valid until `expires_at`) as used; `false` if it
    /// was used before. Returns once the record is committed.
    pub(crate) async fn consume(
        &self,
        tenant: TenantId,
        id: &str,
        expires_at: i64,
    ) -> Result<bool, AuthorityError> {
        let (reply, wait) = oneshot::channel();
        self.tx
            .try_send((tenant, id.to_owned(), expires_at, reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AuthorityError::new(
                    ErrorKind::Unavailable,
                    "overloaded",
                    "too many requests in flight; retry shortly",
                ),
                mpsc::error::TrySendError::Closed(_) => {
                    AuthorityError::internal("nonce writer stopped")
                }
            })?;
        match wait.await {
            Ok(r) => r.map_err(AuthorityError::from),
            Err(_) => Err(AuthorityError::internal("nonce writer dropped a request")),
        }
    }
}

async fn writer(store: Arc<dyn Store>, clock: Arc<dyn Clock>, mut rx: mpsc::Receiver<Item>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let mut by_tenant: HashMap<TenantId, Vec<(String, i64, Reply)>> = HashMap::new();
        for (tenant, id, exp, reply) in batch {
            by_tenant.entry(tenant).or_default().push((id, exp, reply));
        }
        let now = clock.now().unix_timestamp();
        for (tenant, items) in by_tenant {
            let nonces: Vec<(String, i64)> = items
                .iter()
                .map(|(id, exp, _)| (id.clone(), *exp))
                .collect();
            match store.consume_acme_nonces(tenant, &nonces, now).await {
                Ok(fresh) => {
                    for ((_, _, reply), f) in items.into_iter().zip(fresh) {
                        let _ = reply.send(Ok(f));
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    for (_, _, reply) in items {
                        let _ = reply.send(Err(StoreError::Backend(text.clone())));
                    }
                }
            }
        }
    }
}
